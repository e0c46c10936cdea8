/*
 * cmd_serve.c - `memgpt serve`: parses the options and hands over to the
 * server (server/server.h). The server shares the data directory with the
 * CLI: agents made here are served there, and the other way round.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli.h"
#include "server/server.h"

static int number(const char *text, const char *what, int min, int max, int *out)
{
    char *end;
    long v = text ? strtol(text, &end, 10) : 0;
    if (!text || !*text || *end || v < min || v > max)
        return cli_usage("%s must be a whole number from %d to %d", what, min, max);
    *out = (int)v;
    return 0;
}

int cmd_serve(cli *c, int argc, char **argv)
{
    srv_options o = {.host = "127.0.0.1", .port = 8283, .workers = 16};
    o.password = getenv("MEMGPT_SERVER_PASSWORD");
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        int takes_value = 1, rc = 0;
        if (strcmp(a, "--host") == 0)
            o.host = v;
        else if (strcmp(a, "--port") == 0)
            rc = number(v, "--port", 0, 65535, &o.port);
        else if (strcmp(a, "--password") == 0)
            o.password = v;
        else if (strcmp(a, "--workers") == 0)
            rc = number(v, "--workers", 1, 1024, &o.workers);
        else if (strcmp(a, "--timeout") == 0)
            rc = number(v, "--timeout", 1, 3600, &o.request_timeout);
        else if (strcmp(a, "--cors-origin") == 0)
            o.cors_origin = v;
        else if (strcmp(a, "--ui-dir") == 0)
            o.ui_dir = v;
        else if (strcmp(a, "--log-format") == 0) {
            if (!v || (strcmp(v, "text") != 0 && strcmp(v, "json") != 0))
                return cli_usage("--log-format is text or json");
            o.log_format = strcmp(v, "json") == 0 ? SRV_LOG_JSON : SRV_LOG_TEXT;
        } else if (a[0] == '-')
            return cli_usage("unknown option %s", a);
        else
            return cli_usage("serve takes no arguments");
        if (rc) return rc;
        if (takes_value && !v) return cli_usage("%s needs a value", a);
        i += takes_value;
    }
    if (o.password && !*o.password) return cli_usage("the password must not be empty");
    struct stat dir;
    if (o.ui_dir && (stat(o.ui_dir, &dir) != 0 || !S_ISDIR(dir.st_mode)))
        return cli_usage("--ui-dir %s is not a folder", o.ui_dir);
    c->home = mg_home_resolve(c->home_arg);
    if (!c->home) return cli_usage("no data directory: set MEMGPT_HOME or pass --home DIR");
    o.home = c->home;
    mg_error err = {0};
    mg_status st = srv_serve(&o, &err);
    return st ? cli_fail(&err) : EXIT_OK;
}
