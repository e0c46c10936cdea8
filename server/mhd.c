/*
 * mhd.c - loading libmicrohttpd into srv_mhd (mhd.h).
 */
#include "server/mhd.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/util.h"

srv_mhd_api srv_mhd;

static pthread_once_t once = PTHREAD_ONCE_INIT;
static char load_error[256]; /* empty when the load worked */

static void load_once(void)
{
    static const char *const names[] = {"MHD_start_daemon",
                                        "MHD_stop_daemon",
                                        "MHD_quiesce_daemon",
                                        "MHD_get_daemon_info",
                                        "MHD_lookup_connection_value",
                                        "MHD_get_connection_values",
                                        "MHD_create_response_from_buffer",
                                        "MHD_create_response_from_callback",
                                        "MHD_add_response_header",
                                        "MHD_queue_response",
                                        "MHD_destroy_response",
                                        "MHD_create_post_processor",
                                        "MHD_post_process",
                                        "MHD_destroy_post_processor"};
    void *const slots[] = {&srv_mhd.start_daemon,
                           &srv_mhd.stop_daemon,
                           &srv_mhd.quiesce_daemon,
                           &srv_mhd.get_daemon_info,
                           &srv_mhd.lookup_connection_value,
                           &srv_mhd.get_connection_values,
                           &srv_mhd.create_response_from_buffer,
                           &srv_mhd.create_response_from_callback,
                           &srv_mhd.add_response_header,
                           &srv_mhd.queue_response,
                           &srv_mhd.destroy_response,
                           &srv_mhd.create_post_processor,
                           &srv_mhd.post_process,
                           &srv_mhd.destroy_post_processor};
    /* As the library does for libcurl (src/util/dynlib.c); the server keeps
     * to include/memgpt.h, so it does the same few calls itself. */
    void *lib = dlopen("libmicrohttpd.so.12", RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        snprintf(load_error, sizeof load_error, "cannot load libmicrohttpd.so.12: %s", dlerror());
        return;
    }
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        void *fn = dlsym(lib, names[i]);
        if (!fn) {
            snprintf(load_error, sizeof load_error, "libmicrohttpd.so.12 has no %s", names[i]);
            return;
        }
        memcpy(slots[i], &fn, sizeof fn); /* POSIX: dlsym's pointer is the function's */
    }
}

mg_status srv_mhd_load(mg_error *err)
{
    pthread_once(&once, load_once);
    return load_error[0] ? srv_err(err, MG_ERR_IO, "%s", load_error) : MG_OK;
}
