/*
 * static.c - serving the web app's files.
 *
 * The app is a handful of files (HTML, CSS, ES modules) compiled into the
 * binary, so `memgpt serve` needs nothing beside it and nothing from the
 * network. For work on the app, --ui-dir serves a folder instead and reads
 * each file as it is asked for, so a reload shows an edit.
 *
 * Requests are hostile: a path is looked up only if it is made of plain
 * characters with no part starting with "." (no "..", no hidden files),
 * and in a folder only regular files are read, up to MAX_FILE bytes.
 * Every answer carries an ETag, so a reload costs a 304. The compiled-in
 * index.html names the other files under "/v/<version>/", a hash of
 * them all, and those answers may be cached for good: a reload then asks
 * for the page alone, and a new build changes every address.
 */
#include "server/static.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "server/util.h"

#define MAX_PATH 256
#define MAX_FILE (8 << 20)

const char srv_static_csp[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
                              "img-src 'self' data:; connect-src 'self'; font-src 'self'; "
                              "manifest-src 'self'; base-uri 'none'; form-action 'none'; "
                              "frame-ancestors 'none'";

static const char *type_of(const char *path)
{
    static const char *const types[][2] = {{".html", "text/html; charset=utf-8"},
                                           {".js", "text/javascript; charset=utf-8"},
                                           {".mjs", "text/javascript; charset=utf-8"},
                                           {".css", "text/css; charset=utf-8"},
                                           {".svg", "image/svg+xml"},
                                           {".png", "image/png"},
                                           {".ico", "image/x-icon"},
                                           {".json", "application/json"},
                                           {".webmanifest", "application/manifest+json"},
                                           {".txt", "text/plain; charset=utf-8"}};
    const char *dot = strrchr(path, '.');
    for (size_t i = 0; dot && i < sizeof types / sizeof types[0]; i++)
        if (strcmp(dot, types[i][0]) == 0) return types[i][1];
    return "application/octet-stream";
}

static int plain_path(const char *path)
{
    size_t n = strlen(path);
    if (n < 2 || n > MAX_PATH || path[0] != '/') return 0;
    for (size_t i = 1; i < n; i++) { /* path[0] is the '/' checked above */
        char c = path[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '-' || c == '.' || c == '/';
        if (!ok || (c == '.' && path[i - 1] == '/') || (c == '/' && path[i - 1] == '/')) return 0;
    }
    return path[n - 1] != '/';
}

static int read_file(const char *dir, const char *path, srv_static_file *out)
{
    char full[1024];
    if ((size_t)snprintf(full, sizeof full, "%s%s", dir, path) >= sizeof full) return -1;
    int fd = open(full, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) return -1;
    struct stat st;
    char *data = NULL;
    if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size <= MAX_FILE) {
        data = malloc((size_t)st.st_size + 1);
        size_t got = 0;
        while (data && got < (size_t)st.st_size) {
            ssize_t n = read(fd, data + got, (size_t)st.st_size - got);
            if (n <= 0) break;
            got += (size_t)n;
        }
        if (data && got != (size_t)st.st_size) {
            free(data);
            data = NULL;
        }
    }
    close(fd);
    if (!data) return -1;
    out->owned = data;
    out->data = (const unsigned char *)data;
    out->size = (size_t)st.st_size;
    return 0;
}

int srv_static_find(const char *ui_dir, const char *path, srv_static_file *out)
{
    *out = (srv_static_file){0};
    if (strcmp(path, "/") == 0) path = "/index.html";
    if (!plain_path(path)) return -1;
    if (strncmp(path, "/v/", 3) == 0) {
        const char *rest = strchr(path + 3, '/');
        if (!rest) return -1;
        size_t n = (size_t)(rest - (path + 3));
        out->immutable = !ui_dir && n == strlen(srv_assets_version) &&
                         memcmp(path + 3, srv_assets_version, n) == 0;
        path = rest;
    }
    if (ui_dir) {
        if (read_file(ui_dir, path, out)) return -1;
    } else {
        const srv_asset *a = srv_assets;
        while (a->path && strcmp(a->path, path) != 0)
            a++;
        if (!a->path) return -1;
        out->data = a->data;
        out->size = a->size;
    }
    out->type = type_of(path);
    /* FNV-1a of the bytes: the same file gives the same tag. */
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < out->size; i++)
        h = (h ^ out->data[i]) * 1099511628211ULL;
    snprintf(out->etag, sizeof out->etag, "\"%016llx\"", (unsigned long long)h);
    return 0;
}
