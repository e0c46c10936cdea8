/*
 * dynlib.h - loading a shared library when it is first needed.
 *
 * libcurl and libmicrohttpd bring some thirty libraries with them (TLS,
 * Kerberos, LDAP, IDN, ...), and the dynamic loader maps, relocates and
 * initialises every one of them before main(): about 19 ms of CPU and 500
 * page faults per process on the 2-vCPU development machine, against 3 ms
 * for the rest of memgpt's libraries. Most commands (a search, a look at
 * memory, `memgpt check`) touch neither network library, and `send` needs
 * only libcurl. So the two are opened with dlopen the first time a request
 * or the server needs them, through a table of the functions used.
 *
 * A table is a struct of function pointers, each declared with __typeof__
 * of the function in the library's header, so a new version's signature
 * is followed at compile time. It is filled once per process (the caller
 * serialises with pthread_once) and never closed, so its pointers stay
 * valid for good.
 */
#ifndef MG_UTIL_DYNLIB_H
#define MG_UTIL_DYNLIB_H

#include <stddef.h>

/* Opens the shared library `soname` and stores the address of the function
 * names[i] through slots[i] (each the address of a function pointer of the
 * right type), for i < n. Returns 0; or -1 with the reason (which library,
 * which symbol, the loader's words) in why[0..why_size), and then no slot
 * is to be used. */
int mg_dynlib_open(const char *soname, const char *const *names, void *const *slots, int n,
                   char *why, size_t why_size);

#endif
