/*
 * python.c - running an Agent File's Python tools, once the user allowed it.
 *
 * Letta agents carry tools as Python source. Importing an agent never runs
 * that code; `memgpt tools enable-python` (or the API's settings) lets the
 * agent's Python tools be offered and run. Each call runs in a process of
 * its own:
 *
 *   python3 -I -c RUNNER      -I: no PYTHON* variables, no user site
 *
 * RUNNER (below) reads one JSON request on stdin (a socket, so that a
 * child that dies early cannot kill us with SIGPIPE), lowers its own limits
 * (CPU seconds, address space, file size, open files) before it touches
 * the tool's code, works in a scratch folder made for the call and removed
 * after it, defines the tool, calls it with the model's arguments and
 * writes {"ok", "result"|"error"} on file descriptor 3, so whatever the
 * tool prints (to a log file: HOME/logs/python-tools.log) cannot pass for
 * its result. The environment holds only the agent's tool variables
 * (tool_env, Letta's secrets): none of memgpt's own keys. The parent
 * enforces the wall-clock limit and kills the process group.
 *
 * This is process isolation with resource limits, not a security
 * boundary: the code runs as the user, can read what the user can read and
 * reach the network. Enable it only for agents whose tools you trust.
 */
/* pipe2 (pipes born close-on-exec, so another thread's spawn never
 * inherits them) and nftw (the scratch folder's removal). */
#define _GNU_SOURCE
#include "tools/python.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "functions/functions.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/err.h"
#include "util/spawn.h"
#include "util/timeutil.h"

#define WALL_SECONDS 30
#define CPU_SECONDS  30
#define MEMORY_BYTES (1024L << 20)
#define FILE_BYTES   (16L << 20)
#define MAX_RESULT   (4L << 20)

static const char runner[] =
    "import json, os, resource, sys\n"
    "from typing import Any, Dict, List, Optional, Tuple, Union\n"
    "req = json.loads(sys.stdin.read())\n"
    "for kind, value in ((resource.RLIMIT_CPU, req['cpu']), (resource.RLIMIT_AS, req['memory']),\n"
    "                    (resource.RLIMIT_FSIZE, req['file']), (resource.RLIMIT_NOFILE, 64)):\n"
    "    try:\n"
    "        resource.setrlimit(kind, (value, value))\n"
    "    except (ValueError, OSError):\n"
    "        pass\n"
    "os.chdir(req['cwd'])\n"
    "for key in [k for k in os.environ if k not in req['env']]:\n"
    "    del os.environ[key]  # what Python added itself (LC_CTYPE)\n"
    "out = os.fdopen(3, 'w')\n"
    "try:\n"
    "    scope = {'__name__': 'memgpt_tool', 'Any': Any, 'Dict': Dict, 'List': List,\n"
    "             'Optional': Optional, 'Tuple': Tuple, 'Union': Union, 'AgentState': object}\n"
    "    exec(compile(req['source'], '<tool ' + req['name'] + '>', 'exec'), scope)\n"
    "    fn = scope.get(req['name'])\n"
    "    if not callable(fn):\n"
    "        raise NameError('the source defines no function ' + req['name'])\n"
    "    import inspect\n"
    "    args = dict(req['arguments'])\n"
    "    if 'agent_state' in inspect.signature(fn).parameters:\n"
    "        args.setdefault('agent_state', None)\n"
    "    value = fn(**args)\n"
    "    if not isinstance(value, str):\n"
    "        value = json.dumps(value, default=str)\n"
    "    reply = {'ok': True, 'result': value}\n"
    "except BaseException as e:\n"
    "    reply = {'ok': False, 'error': type(e).__name__ + ': ' + str(e)}\n"
    "for stream in (sys.stdout, sys.stderr):\n"
    "    try:\n"
    "        stream.flush()  # into the log before we are stopped\n"
    "    except Exception:\n"
    "        pass\n"
    "out.write(json.dumps(reply))\n"
    "out.close()\n";

void tools_python(const char *foreign_json, json_t *schemas, json_t *names)
{
    json_t *foreign = json_loads(foreign_json ? foreign_json : "[]", 0, NULL);
    size_t i;
    json_t *t;
    json_array_foreach(foreign, i, t)
    {
        const char *type = json_string_value(json_object_get(t, "source_type"));
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *schema = json_object_get(t, "json_schema");
        if (!type || strcmp(type, "python") != 0 || !name ||
            !json_is_string(json_object_get(t, "source_code")) || !json_is_object(schema))
            continue;
        if (json_object_get(names, name) || mg_schema_named(schemas, name)) continue;
        json_t *offered =
            mg_function_schema(name, json_string_value(json_object_get(schema, "description")),
                               json_object_get(schema, "parameters"));
        json_array_append_new(schemas, offered);
        json_object_set_new(names, name, json_pack("{s:b}", "python", 1));
    }
    json_decref(foreign);
}

/* The source of Python tool `name` of the agent, or NULL (caller frees). */
static char *source_of(const mg_agent *agent, const char *name)
{
    json_t *foreign =
        json_loads(agent->foreign_tools_json ? agent->foreign_tools_json : "[]", 0, NULL);
    char *out = NULL;
    size_t i;
    json_t *t;
    json_array_foreach(foreign, i, t)
    {
        const char *n = json_string_value(json_object_get(t, "name"));
        const char *code = json_string_value(json_object_get(t, "source_code"));
        if (!out && n && code && strcmp(n, name) == 0) out = mg_xstrdup(code);
    }
    json_decref(foreign);
    return out;
}

static char **environment(const mg_agent *agent)
{
    json_t *env = json_loads(agent->tool_env_json ? agent->tool_env_json : "{}", 0, NULL);
    char **out = mg_xcalloc(json_object_size(env) + 1, sizeof *out);
    size_t n = 0;
    const char *k;
    json_t *v;
    json_object_foreach(env, k, v)
    {
        if (!json_is_string(v) || !*k || strchr(k, '=')) continue;
        buf b = BUF_INIT;
        buf_printf(&b, "%s=%s", k, json_string_value(v));
        out[n++] = buf_take(&b);
    }
    json_decref(env);
    return out;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    remove(path);
    return 0;
}

/* Sends all of `data` on socket fd before `deadline`, then closes it (the
 * child reads to EOF). A child that died or stopped reading ends it: the
 * socket's MSG_NOSIGNAL turns what would be SIGPIPE on a pipe into EPIPE. */
static void send_all(int fd, const char *data, size_t len, int64_t deadline)
{
    while (len) {
        ssize_t w = send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (w > 0) {
            data += w;
            len -= (size_t)w;
            continue;
        }
        if (w < 0 && errno == EINTR) continue;
        if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            int64_t left = deadline - mg_now_ms();
            struct pollfd p = {.fd = fd, .events = POLLOUT};
            if (left > 0 && poll(&p, 1, (int)left) > 0 && !(p.revents & (POLLERR | POLLHUP)))
                continue;
        }
        break;
    }
    close(fd);
}

static long wall_seconds(void)
{
    const char *v = getenv("MEMGPT_PYTHON_TIMEOUT");
    return v && atol(v) > 0 ? atol(v) : WALL_SECONDS;
}

mg_status python_call(mg_agent *agent, const char *name, json_t *arguments, int *ok, char **text,
                      mg_error *err)
{
    *ok = 0;
    *text = NULL;
    char *source = source_of(agent, name);
    if (!source) {
        *text = mg_xstrdup("this Python tool is no longer part of the agent");
        return MG_OK;
    }
    const char *tmp = getenv("TMPDIR");
    buf dir = BUF_INIT;
    buf_printf(&dir, "%s/memgpt-tool-XXXXXX", tmp && *tmp ? tmp : "/tmp");
    char *made = mkdtemp(dir.data);
    json_t *env = json_loads(agent->tool_env_json ? agent->tool_env_json : "{}", 0, NULL);
    json_t *req =
        json_pack("{s:s, s:s, s:O, s:s, s:I, s:I, s:I, s:o}", "name", name, "source", source,
                  "arguments", arguments, "cwd", made ? made : "/", "cpu", (json_int_t)CPU_SECONDS,
                  "memory", (json_int_t)MEMORY_BYTES, "file", (json_int_t)FILE_BYTES, "env",
                  json_is_object(env) ? json_incref(env) : json_object());
    json_decref(env);
    free(source);
    char *request = json_dumps(req, JSON_COMPACT);
    json_decref(req);

    int in[2], out[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in)) in[0] = in[1] = -1;
    if (pipe2(out, O_CLOEXEC)) out[0] = out[1] = -1;
    buf log = BUF_INIT;
    buf_printf(&log, "%s/logs", agent->store->home);
    mkdir(buf_str(&log), 0700);
    buf_puts(&log, "/python-tools.log");
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&fa);
    mg_spawn_attr_init(&attr);
    posix_spawn_file_actions_adddup2(&fa, in[0], 0);
    posix_spawn_file_actions_addopen(&fa, 1, buf_str(&log), O_WRONLY | O_CREAT | O_APPEND, 0600);
    posix_spawn_file_actions_adddup2(&fa, 1, 2);
    posix_spawn_file_actions_adddup2(&fa, out[1], 3);
    char *argv[] = {"python3", "-I", "-c", (char *)runner, NULL};
    char **envp = environment(agent);
    pid_t pid = 0;
    int rc =
        in[0] < 0 || out[0] < 0 ? EMFILE : posix_spawnp(&pid, "python3", &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    for (size_t i = 0; envp[i]; i++)
        free(envp[i]);
    free(envp);
    buf_free(&log);
    if (in[0] >= 0) close(in[0]);
    if (out[1] >= 0) close(out[1]);

    buf answer = BUF_INIT;
    const char *failure = NULL;
    char why[200];
    if (rc) {
        snprintf(why, sizeof why, "cannot run python3: %s", strerror(rc));
        failure = why;
        if (in[1] >= 0) close(in[1]);
    } else {
        int64_t deadline = mg_now_ms() + wall_seconds() * 1000;
        send_all(in[1], request, strlen(request), deadline);
        for (;;) {
            int64_t left = deadline - mg_now_ms();
            struct pollfd p = {.fd = out[0], .events = POLLIN};
            int r = left > 0 ? poll(&p, 1, (int)left) : 0;
            if (r < 0 && errno == EINTR) continue;
            if (r == 0) {
                snprintf(why, sizeof why, "the tool ran out of time (%ld s) and was stopped",
                         wall_seconds());
                failure = why;
                break;
            }
            char chunk[8192];
            ssize_t got = read(out[0], chunk, sizeof chunk);
            if (got < 0 && errno == EINTR) continue;
            if (got <= 0) break;
            if (answer.len + (size_t)got > MAX_RESULT) {
                failure = "the tool's result was larger than 4 MiB";
                break;
            }
            buf_append(&answer, chunk, (size_t)got);
        }
    }
    if (out[0] >= 0) close(out[0]);
    int status = 0;
    if (pid > 0) {
        kill(-pid, SIGKILL);
        waitpid(pid, &status, 0);
    }
    free(request);
    if (made) nftw(made, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    buf_free(&dir);

    json_t *reply =
        failure ? NULL : json_loadb(answer.data ? answer.data : "", answer.len, 0, NULL);
    buf_free(&answer);
    if (failure) {
        *text = mg_xstrdup(failure);
    } else if (!json_is_object(reply)) {
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGXCPU)
            *text = mg_xstrdup("the tool used up its CPU time and was stopped");
        else if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
            *text = mg_xstrdup("the tool's process was killed");
        else
            *text = mg_xstrdup("the tool ended without a result (out of memory, or it exited)");
    } else {
        *ok = json_is_true(json_object_get(reply, "ok"));
        const char *value = json_string_value(json_object_get(reply, *ok ? "result" : "error"));
        *text = mg_xstrdup(value ? value : "");
    }
    json_decref(reply);
    (void)err;
    return MG_OK;
}
