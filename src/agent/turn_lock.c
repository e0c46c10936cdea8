/*
 * turn_lock.c - one turn of an agent at a time, across threads and
 * processes.
 *
 * The CLI and a running server may both drive one agent; an agent may ask
 * another for a reply in the middle of its own turn. Each turn therefore
 * holds an exclusive flock on HOME/locks/AGENT-UUID.lock for its duration.
 * flock belongs to the open file description, so two threads of one
 * process exclude each other as two processes do, and the kernel drops the
 * lock when a process dies, so a crash never leaves an agent locked. A turn
 * that finds the agent busy waits, up to a limit, then fails saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "agent/agent.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/timeutil.h"

mg_status agent_turn_lock(mg_agent *a, long wait_ms, int *fd_out, mg_error *err)
{
    *fd_out = -1;
    buf path = BUF_INIT;
    buf_printf(&path, "%s/locks", a->store->home);
    mkdir(buf_str(&path), 0700);
    buf_printf(&path, "/%s.lock", a->public_id);
    int fd = open(buf_str(&path), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    buf_free(&path);
    if (fd < 0) return MG_OK; /* a read-only data directory: nothing to guard against */
    int64_t deadline = mg_now_ms() + wait_ms;
    long pause_ms = 1;
    while (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        if (errno != EWOULDBLOCK && errno != EINTR) break; /* no locks here: go on */
        if (mg_now_ms() >= deadline) {
            close(fd);
            return mg_err_set(err, MG_ERR_USAGE,
                              "agent '%s' is busy with another turn (waited %.0f s)", a->name,
                              (double)wait_ms / 1000);
        }
        struct timespec ts = {pause_ms / 1000, (pause_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (pause_ms < 50) pause_ms *= 2;
    }
    *fd_out = fd;
    return MG_OK;
}

void agent_turn_unlock(int fd)
{
    if (fd >= 0) close(fd); /* closing drops the flock */
}
