/*
 * static.h - the web app's files: compiled in (web/, by
 * scripts/embed_web.cmake), or read from a folder for development
 * (`memgpt serve --ui-dir DIR`).
 */
#ifndef MG_SERVER_STATIC_H
#define MG_SERVER_STATIC_H

#include <stddef.h>

typedef struct srv_asset {
    const char *path; /* "/index.html" */
    const unsigned char *data;
    size_t size;
} srv_asset;

/* The compiled-in files, ended by an entry whose path is NULL (generated). */
extern const srv_asset srv_assets[];

/* A hash of the compiled-in files. Their index.html names the others as
 * "/v/<version>/<path>" (scripts/embed_web.cmake). */
extern const char srv_assets_version[];

/* One file to answer with. `data` points into srv_assets, or at `owned`
 * (read from the folder; the caller frees it). */
typedef struct srv_static_file {
    const unsigned char *data;
    size_t size;
    const char *type; /* Content-Type */
    char *owned;
    char etag[24]; /* "\"<hash>\"" */
    /* Asked for under the current version's prefix: the bytes at this
     * address never change, and may be cached for good. */
    int immutable;
} srv_static_file;

/* Finds the file for URL path `path` ("/" is "/index.html"): in `ui_dir`
 * when it is not NULL, else among the compiled-in files. A "/v/<version>"
 * prefix is dropped (any version: a page from before an upgrade still
 * gets files, only not cached for good). Paths are only letters, digits
 * and "_.-/", with no part starting with "."; anything else is not found.
 * Returns 0 and fills *out, or -1 when there is no such file. */
int srv_static_find(const char *ui_dir, const char *path, srv_static_file *out);

/* The Content-Security-Policy the app's pages are sent with: scripts,
 * styles and connections from the server itself only, nothing inline. */
extern const char srv_static_csp[];

#endif
