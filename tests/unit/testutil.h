/*
 * testutil.h - shared fixtures for the unit tests: a throwaway data directory
 * with an open store and one agent.
 */
#ifndef MG_TESTS_TESTUTIL_H
#define MG_TESTS_TESTUTIL_H

#ifndef _XOPEN_SOURCE
#define _XOPEN_SOURCE 700 /* nftw */
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "memgpt.h"
#include "util/buf.h"

typedef struct fixture {
    char home[64];
    mg_store *store;
    mg_agent *agent;
} fixture;

static int remove_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb, (void)flag, (void)ftw;
    return remove(path);
}

static inline void make_home(char *home, size_t size)
{
    snprintf(home, size, "/tmp/memgpt-unit-XXXXXX");
    assert_non_null(mkdtemp(home));
}

static inline void remove_home(const char *home)
{
    nftw(home, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Opens a store in a fresh home with agent "t" (window 8192). */
/* v[0..dim) as embeddings were stored before one byte a dimension:
 * little-endian float32, 4 * dim bytes into out (embed/vec.c reads both). */
static inline void float32_blob(const float *v, int dim, unsigned char *out)
{
    for (int i = 0; i < dim; i++) {
        uint32_t u;
        memcpy(&u, &v[i], sizeof u);
        for (int b = 0; b < 4; b++)
            out[4 * i + b] = (unsigned char)(u >> (8 * b));
    }
}

static inline int fixture_setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    make_home(f->home, sizeof f->home);
    mg_error err = {0};
    assert_int_equal(mg_store_open(f->home, &f->store, &err), MG_OK);
    mg_agent_config cfg = {.context_window = 8192};
    assert_int_equal(mg_agent_create(f->store, "t", &cfg, &err), MG_OK);
    assert_int_equal(mg_agent_open(f->store, "t", &f->agent, &err), MG_OK);
    *state = f;
    return 0;
}

static inline int fixture_teardown(void **state)
{
    fixture *f = *state;
    mg_agent_free(f->agent);
    mg_store_close(f->store);
    remove_home(f->home);
    free(f);
    return 0;
}

#endif
