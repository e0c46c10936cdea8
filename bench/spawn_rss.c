/*
 * spawn_rss.c - runs a command and reports its own peak RSS.
 *
 *   spawn_rss REPORT_FILE CMD [ARGS...]
 *
 * Writes "MAXRSS_KIB EXIT_CODE" to REPORT_FILE and exits with the command's
 * code. Why not os.wait4 straight from Python: Linux keeps ru_maxrss across
 * execve, and a child made by fork/vfork starts out with its parent's memory,
 * so a child of a ~20 MB Python process reports at least ~20 MB even for
 * /bin/true. This helper is a small process, so what it forks is measured
 * from ~1 MB up.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    if (argc < 3) {
        fprintf(stderr, "usage: spawn_rss REPORT_FILE CMD [ARGS...]\n");
        return 2;
    }
    pid_t pid = fork();
    if (pid < 0) {
        perror("spawn_rss: fork");
        return 126;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror("spawn_rss: exec");
        _exit(127);
    }
    int status;
    struct rusage ru;
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("spawn_rss: wait4");
        return 126;
    }
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    FILE *f = fopen(argv[1], "w");
    if (!f) {
        perror("spawn_rss: report file");
        return 126;
    }
    fprintf(f, "%ld %d\n", ru.ru_maxrss, code);
    fclose(f);
    return code;
}
