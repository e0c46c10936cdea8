/*
 * cli.h - shared pieces of the memgpt command-line client.
 *
 * The CLI is a thin client of libmemgpt (include/memgpt.h). It parses
 * arguments, opens the store and agent, calls the library and prints. Exit
 * codes: 0 success, 1 runtime error, 2 usage error; every error is one line
 * on stderr, "memgpt: ...".
 */
#ifndef MG_CLI_CLI_H
#define MG_CLI_CLI_H

#include <stdio.h>

#include "memgpt.h"

enum { EXIT_OK = 0, EXIT_RUNTIME = 1, EXIT_USAGE = 2 };

typedef struct cli {
    const char *home_arg; /* --home, or NULL */
    char *home;           /* resolved */
    mg_store *store;
} cli;

/* Prints "memgpt: <message>" to stderr and returns the exit code for it. */
int cli_fail(const mg_error *err);
int cli_usage(const char *fmt, ...);

/* Opens the store (once). Returns an exit code. */
int cli_open_store(cli *c);

/* Opens the agent to act on: `name`, else $MEMGPT_AGENT, else "default",
 * which is created on first use. Returns an exit code. */
int cli_open_agent(cli *c, const char *name, mg_agent **out);

/* For a command that reads, writes little (a turn's messages) and exits: a
 * small page cache for the store (mg_store_set_cache_size: in a fresh
 * process, new cache pages cost more than reading pages again). */
void cli_one_shot(cli *c);

/* TEXT, or the contents of FILE for "@FILE". Caller frees. NULL on error
 * (already reported). */
char *cli_text_arg(const char *arg);

/* The context window to give an agent on `model` when the user named none:
 * the model table's, else the endpoint's (Ollama's /api/show), else 0 (the
 * library's conservative default), with a note on stderr saying why and what
 * happens instead (`fallback`). Asked when an agent is created or changes
 * model, never on a send. */
int cli_learn_context_window(const char *model, const char *fallback);

/* All of stdin; NULL (reported) if it cannot be read: a read error is not
 * taken for the end of the input. Caller frees. */
char *cli_read_stdin(void);

/* All of file `path`; NULL (reported) if it cannot be read. Caller frees. */
char *cli_text_arg_file(const char *path);

/* Joins argv[0..argc) with spaces; NULL (reported) without memory. Caller frees. */
char *cli_join(int argc, char **argv);

/* Prints a turn's event for a human: replies always, the rest if verbose. */
void cli_print_event(const mg_event *ev, FILE *out, int verbose);

/* Streamed replies on a terminal or pipe (replies.c): pieces are printed as
 * they arrive; the final reply event is then not printed again. */
typedef struct cli_replies {
    FILE *out;
    const char *prefix; /* printed before each reply ("a> " in chat); NULL = none */
    char *open_id;      /* the reply whose line is not yet ended; NULL if none */
    struct cli_preview *previews;
    int npreviews;
} cli_replies;

/* Returns 1 if the event was dealt with (shown, or already shown), 0 if
 * the caller should show it as usual. Call it for every event. */
int cli_replies_event(cli_replies *r, const mg_event *ev);

/* Ends an unfinished line (a turn that failed mid-reply) and frees. */
void cli_replies_end(cli_replies *r);

/* Prints a JSON answer from the library: raw when `raw` (--json) or no
 * renderer, else through `render`. Frees the JSON; returns the exit code. */
int cli_print_answer(mg_status st, char *json, const mg_error *err, int raw,
                     void (*render)(const char *));

/* Human renderings of the library's JSON. */
void cli_print_memory(const char *json);
void cli_print_context(const char *json);
void cli_print_results(const char *json, int show_role);
void cli_print_history(const char *json);  /* recall results, with roles */
void cli_print_passages(const char *json); /* archival results */

int cmd_chat(cli *c, int argc, char **argv);
int cmd_models(cli *c, int argc, char **argv);   /* cmd_models.c */
int cmd_tokenize(cli *c, int argc, char **argv); /* cmd_tokenize.c */
/* Prints, once per process, why the agent's token counts are estimates
 * although its model's tokenizer is known (rank files missing): stderr. */
void cli_tokens_notice(mg_agent *agent);                 /* cmd_tokenize.c */
int cmd_archival_load(cli *c, int argc, char **argv);    /* cmd_archival_load.c */
int cmd_archival_reembed(cli *c, int argc, char **argv); /* cmd_archival_load.c */
int cmd_agents_set(cli *c, int argc, char **argv);       /* cmd_agents_set.c */
int cmd_serve(cli *c, int argc, char **argv);            /* cmd_serve.c */
int cmd_mcp(cli *c, int argc, char **argv);              /* cmd_tools.c */
int cmd_tools(cli *c, int argc, char **argv);            /* cmd_tools.c */
int cmd_agents_export(cli *c, int argc, char **argv);    /* cmd_agent_file.c */
int cmd_agents_import(cli *c, int argc, char **argv);    /* cmd_agent_file.c */

#endif
