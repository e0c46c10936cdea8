/*
 * mhd.h - the libmicrohttpd functions the server calls, loaded when it
 * starts rather than with every memgpt process (src/util/dynlib.h says why:
 * the libraries it brings cost every process ~10 ms before main).
 *
 * Every call into libmicrohttpd goes through srv_mhd, so no command but
 * `serve` maps it and the libraries it brings. srv_mhd_load fills the table
 * once per process, before anything else in server/ runs; after that it is
 * only read.
 */
#ifndef MG_SERVER_MHD_H
#define MG_SERVER_MHD_H

#include <microhttpd.h>

#include "memgpt.h"

/* Each entry has the type the installed header declares. */
typedef struct srv_mhd_api {
    __typeof__(&MHD_start_daemon) start_daemon;
    __typeof__(&MHD_stop_daemon) stop_daemon;
    __typeof__(&MHD_quiesce_daemon) quiesce_daemon;
    __typeof__(&MHD_get_daemon_info) get_daemon_info;
    __typeof__(&MHD_lookup_connection_value) lookup_connection_value;
    __typeof__(&MHD_get_connection_values) get_connection_values;
    __typeof__(&MHD_create_response_from_buffer) create_response_from_buffer;
    __typeof__(&MHD_create_response_from_callback) create_response_from_callback;
    __typeof__(&MHD_add_response_header) add_response_header;
    __typeof__(&MHD_queue_response) queue_response;
    __typeof__(&MHD_destroy_response) destroy_response;
    __typeof__(&MHD_create_post_processor) create_post_processor;
    __typeof__(&MHD_post_process) post_process;
    __typeof__(&MHD_destroy_post_processor) destroy_post_processor;
} srv_mhd_api;

/* The table; valid once srv_mhd_load succeeded. */
extern srv_mhd_api srv_mhd;

/* Loads libmicrohttpd and fills srv_mhd (once; later calls return the first
 * outcome). MG_ERR_IO, saying what is missing, when it cannot. */
mg_status srv_mhd_load(mg_error *err);

#endif
