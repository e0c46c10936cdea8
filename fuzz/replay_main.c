/*
 * replay_main.c - runs a fuzz target over saved inputs, without libFuzzer.
 *
 * Every fuzz target is also linked with this file, by every build and
 * every compiler, so the seed corpus and the inputs that once crashed
 * (fuzz/regressions/) run as ordinary CTest tests in `make test` and
 * `make test-sanitize`. A property a target checks aborts, which fails the
 * test; the sanitizer build adds what ASan and UBSan see.
 *
 *   fuzz_NAME_replay PATH...
 *
 * Each PATH is a file or a directory whose files (not those starting with
 * '.') are run in name order. A PATH that does not exist counts as empty (a
 * target may have no saved crashes yet), but a run that finds no input at
 * all fails: that is a mistyped path, not a pass. Each input is copied into
 * a buffer of exactly its size, as libFuzzer does, so reading past its end
 * is caught by ASan.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* Targets that need set-up define it; libFuzzer calls it once, and so do we. */
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

/* Reads a whole file into a buffer of exactly its size. */
static uint8_t *read_input(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    uint8_t *data = NULL;
    size_t cap = 0, n = 0;
    for (;;) {
        if (n == cap) {
            cap = cap ? cap * 2 : 4096;
            uint8_t *more = realloc(data, cap);
            if (!more) abort();
            data = more;
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0) break;
    }
    fclose(f);
    uint8_t *exact = malloc(n ? n : 1);
    if (!exact) abort();
    if (n) memcpy(exact, data, n);
    free(data);
    *len = n;
    return exact;
}

static int run_file(const char *path)
{
    size_t len;
    uint8_t *data = read_input(path, &len);
    if (!data) {
        fprintf(stderr, "replay: cannot read %s: %s\n", path, strerror(errno));
        exit(1);
    }
    LLVMFuzzerTestOneInput(data, len);
    free(data);
    return 1;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Runs the files of a directory in name order; returns how many. */
static int run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (!d) {
        fprintf(stderr, "replay: cannot open %s: %s\n", dir, strerror(errno));
        exit(1);
    }
    char **names = NULL;
    size_t n = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (e->d_name[0] == '.') continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 64;
            names = realloc(names, cap * sizeof *names);
            if (!names) abort();
        }
        names[n++] = strdup(e->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, by_name);
    int count = 0;
    for (size_t i = 0; i < n; i++) {
        size_t size = strlen(dir) + strlen(names[i]) + 2;
        char *path = malloc(size);
        if (!path) abort();
        snprintf(path, size, "%s/%s", dir, names[i]);
        struct stat st;
        if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) count += run_file(path);
        free(path);
        free(names[i]);
    }
    free(names);
    return count;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE|DIRECTORY...\n", argv[0]);
        return 2;
    }
    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    int count = 0;
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) continue; /* no saved inputs there (yet) */
        count += S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
    }
    if (!count) {
        fprintf(stderr, "replay: no inputs found in the paths given\n");
        return 1;
    }
    printf("%s: %d inputs, every property held\n", argv[0], count);
    return 0;
}
