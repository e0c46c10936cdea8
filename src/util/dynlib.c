/*
 * dynlib.c - dlopen and dlsym for dynlib.h's tables.
 */
#include "util/dynlib.h"

#include <dlfcn.h>
#include <stdio.h>
#include <string.h>

int mg_dynlib_open(const char *soname, const char *const *names, void *const *slots, int n,
                   char *why, size_t why_size)
{
    void *lib = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(why, why_size, "cannot load %s: %s", soname, dlerror());
        return -1;
    }
    for (int i = 0; i < n; i++) {
        void *fn = dlsym(lib, names[i]);
        if (!fn) {
            snprintf(why, why_size, "%s has no %s (too old a version?)", soname, names[i]);
            dlclose(lib);
            return -1;
        }
        /* POSIX: a data pointer from dlsym converts to a function pointer. */
        memcpy(slots[i], &fn, sizeof fn);
    }
    return 0;
}
