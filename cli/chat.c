/*
 * chat.c - `memgpt chat`: the interactive session.
 *
 * Input is read with a timeout so the agent can be woken when the user is
 * idle (a timed heartbeat). On a terminal, libedit's callback interface gives
 * line editing and history while we wait in select(); on a pipe, a small
 * buffered reader does the same without editing. Slash commands act on the
 * agent directly; anything else is a message.
 *
 * Replies stream: the agent is set to streaming, and the text of each reply
 * is printed as the model writes it (replies.c), before the step is stored;
 * the rest of the output (verbose lines, notices) is unchanged.
 */
#include <editline/readline.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>

#include "cli.h"

typedef enum { INPUT_LINE, INPUT_EOF, INPUT_IDLE } input_kind;

typedef struct chat {
    cli *c;
    mg_agent *agent;
    int verbose;
    int tty;
    char *history_path;
    cli_replies replies;
    char prefix[80]; /* "NAME> ", before each reply */
    /* pipe reader: bytes read but not yet returned as lines */
    char *pending;
    size_t pending_len, pending_cap;
} chat;

/* libedit hands the finished line to a callback; this is where it lands. */
static char *edited_line;
static int edited_done;

static void on_edited_line(char *line)
{
    edited_line = line;
    edited_done = 1;
    rl_callback_handler_remove();
}

/* Waits up to `seconds` (-1: forever) for input on stdin. 1 = ready. */
static int wait_input(int seconds)
{
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(STDIN_FILENO, &fds);
    struct timeval tv = {seconds, 0};
    int rc;
    do
        rc = select(STDIN_FILENO + 1, &fds, NULL, NULL, seconds < 0 ? NULL : &tv);
    while (rc < 0 && errno == EINTR);
    return rc > 0;
}

static input_kind read_tty(char **line, int idle)
{
    edited_done = 0;
    edited_line = NULL;
    rl_callback_handler_install("you> ", on_edited_line);
    while (!edited_done) {
        if (!wait_input(idle)) {
            rl_callback_handler_remove();
            printf("\n");
            return INPUT_IDLE;
        }
        rl_callback_read_char();
    }
    if (!edited_line) return INPUT_EOF;
    *line = edited_line;
    return INPUT_LINE;
}

/* Lines of any length: the buffer grows, so a long paste stays one message. */
static input_kind read_pipe(chat *ch, char **line, int idle)
{
    for (;;) {
        char *nl = ch->pending_len ? memchr(ch->pending, '\n', ch->pending_len) : NULL;
        if (nl) {
            size_t n = (size_t)(nl - ch->pending);
            *line = strndup(ch->pending, n);
            memmove(ch->pending, nl + 1, ch->pending_len - n - 1);
            ch->pending_len -= n + 1;
            return INPUT_LINE;
        }
        if (!wait_input(idle)) return INPUT_IDLE;
        if (ch->pending_cap - ch->pending_len < 4096) {
            ch->pending_cap = ch->pending_cap ? ch->pending_cap * 2 : 65536;
            char *bigger = realloc(ch->pending, ch->pending_cap);
            if (!bigger) return INPUT_EOF;
            ch->pending = bigger;
        }
        ssize_t got =
            read(STDIN_FILENO, ch->pending + ch->pending_len, ch->pending_cap - ch->pending_len);
        if (got <= 0) {
            if (ch->pending_len == 0) return INPUT_EOF;
            *line = strndup(ch->pending, ch->pending_len);
            ch->pending_len = 0;
            return INPUT_LINE;
        }
        ch->pending_len += (size_t)got;
    }
}

static void on_chat_event(const mg_event *ev, void *user)
{
    chat *ch = user;
    if (cli_replies_event(&ch->replies, ev)) return;
    if (ev->type == MG_EVENT_ASSISTANT) {
        printf("%s> %s\n", mg_agent_name(ch->agent), ev->text);
        fflush(stdout);
        return;
    }
    cli_print_event(ev, stdout, ch->verbose);
}

static void report(mg_status st, const mg_error *err)
{
    if (st) fprintf(stderr, "memgpt: %s\n", err->message);
}

/* After a turn: a reply line left open by a failure is ended first. */
static void turn_done(chat *ch, mg_status st, const mg_error *err)
{
    cli_replies_end(&ch->replies);
    report(st, err);
    cli_tokens_notice(ch->agent);
}

static const char *const chat_help =
    "  /help              this list\n"
    "  /memory            show core memory\n"
    "  /context           what the next request holds, in tokens\n"
    "  /search QUERY      search the conversation history\n"
    "  /archival QUERY    search archival memory\n"
    "  /pop [N]           take the last N messages (default 1) out of view\n"
    "  /retry             run the last message again\n"
    "  /rethink TEXT      replace the last inner monologue\n"
    "  /rewrite TEXT      replace the last reply\n"
    "  /summarize         evict old messages into the summary now\n"
    "  /verbose           show or hide inner monologue and function calls\n"
    "  /exit              leave (so does Ctrl-D)\n";

/* Returns 0 to leave the chat. */
static int slash_command(chat *ch, const char *line)
{
    char cmd[32] = {0};
    size_t n = strcspn(line, " \t");
    if (n >= sizeof cmd) n = sizeof cmd - 1;
    memcpy(cmd, line, n);
    const char *arg = line + strcspn(line, " \t");
    while (*arg == ' ' || *arg == '\t')
        arg++;
    mg_error err = {0};
    char *json = NULL;
    mg_search search = {.query = arg, .limit = 10};

    if (!strcmp(cmd, "/exit") || !strcmp(cmd, "/quit")) return 0;
    if (!strcmp(cmd, "/help")) fputs(chat_help, stdout);
    /* Each query runs before show_json reads `json`: argument order is unspecified. */
    else if (!strcmp(cmd, "/memory")) {
        mg_status st = mg_memory_json(ch->agent, &json, &err);
        cli_print_answer(st, json, &err, 0, cli_print_memory);
    } else if (!strcmp(cmd, "/context")) {
        mg_status st = mg_context_json(ch->agent, &json, &err);
        cli_print_answer(st, json, &err, 0, cli_print_context);
    } else if (!strcmp(cmd, "/search") || !strcmp(cmd, "/archival")) {
        int history = !strcmp(cmd, "/search");
        if (!*arg) {
            printf("usage: %s QUERY\n", cmd);
            return 1;
        }
        mg_status st = history ? mg_recall_search(ch->agent, &search, &json, &err)
                               : mg_archival_search(ch->agent, &search, &json, &err);
        cli_print_answer(st, json, &err, 0, history ? cli_print_history : cli_print_passages);
    } else if (!strcmp(cmd, "/pop"))
        report(mg_agent_pop(ch->agent, *arg ? atoi(arg) : 1, &err), &err);
    else if (!strcmp(cmd, "/retry"))
        turn_done(ch, mg_agent_retry(ch->agent, on_chat_event, ch, &err), &err);
    else if (!strcmp(cmd, "/rethink"))
        report(mg_agent_rethink(ch->agent, arg, &err), &err);
    else if (!strcmp(cmd, "/rewrite"))
        report(mg_agent_rewrite(ch->agent, arg, &err), &err);
    else if (!strcmp(cmd, "/summarize"))
        turn_done(ch, mg_agent_summarize(ch->agent, on_chat_event, ch, &err), &err);
    else if (!strcmp(cmd, "/verbose")) {
        ch->verbose = !ch->verbose;
        printf("verbose output %s\n", ch->verbose ? "on" : "off");
    } else
        printf("unknown command %s (try /help)\n", cmd);
    return 1;
}

static void print_setup_hint(const mg_error *err)
{
    fprintf(stderr,
            "memgpt: %s\n"
            "  To talk to a model, set OPENAI_API_KEY (and OPENAI_BASE_URL for another "
            "OpenAI-compatible server).\n"
            "  A local Ollama works too: OPENAI_BASE_URL=http://127.0.0.1:11434/v1, and any "
            "OpenAI-compatible server (vLLM, llama.cpp, LM Studio).\n"
            "  Memory commands (/memory, /search, /archival) work without one.\n",
            err->message);
}

int cmd_chat(cli *c, int argc, char **argv)
{
    const char *agent_name = NULL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--agent") && i + 1 < argc)
            agent_name = argv[++i];
        else
            return cli_usage("unknown chat argument %s", argv[i]);
    }
    chat ch = {.c = c, .tty = isatty(STDIN_FILENO), .replies = {.out = stdout}};
    int rc = cli_open_agent(c, agent_name, &ch.agent);
    if (rc) return rc;
    mg_agent_set_streaming(ch.agent, 1);
    snprintf(ch.prefix, sizeof ch.prefix, "%s> ", mg_agent_name(ch.agent));
    ch.replies.prefix = ch.prefix;
    size_t len = strlen(c->home) + 16;
    ch.history_path = malloc(len);
    snprintf(ch.history_path, len, "%s/chat_history", c->home);
    if (ch.tty) read_history(ch.history_path);

    printf("memgpt chat with agent '%s'. Type /help for commands, /exit to leave.\n",
           mg_agent_name(ch.agent));
    fflush(stdout);
    mg_error err = {0};
    int provider_ok = mg_agent_check_provider(ch.agent, &err) == MG_OK;
    if (!provider_ok)
        print_setup_hint(&err);
    else
        turn_done(&ch, mg_agent_system_event(ch.agent, MG_SYSTEM_LOGIN, on_chat_event, &ch, &err),
                  &err);

    for (;;) {
        fflush(stdout);
        int idle = provider_ok ? mg_agent_idle_heartbeat_seconds(ch.agent) : -1;
        char *line = NULL;
        input_kind kind = ch.tty ? read_tty(&line, idle) : read_pipe(&ch, &line, idle);
        if (kind == INPUT_EOF) break;
        mg_error turn_err = {0};
        if (kind == INPUT_IDLE) {
            turn_done(&ch,
                      mg_agent_system_event(ch.agent, MG_SYSTEM_TIMED_HEARTBEAT, on_chat_event, &ch,
                                            &turn_err),
                      &turn_err);
            continue;
        }
        const char *text = line;
        while (*text == ' ' || *text == '\t')
            text++;
        int keep_going = 1;
        if (*text) {
            if (ch.tty) add_history(text);
            if (text[0] == '/')
                keep_going = slash_command(&ch, text);
            else
                turn_done(&ch, mg_agent_send(ch.agent, text, on_chat_event, &ch, &turn_err),
                          &turn_err);
        }
        free(line);
        if (!keep_going) break;
    }
    if (ch.tty) write_history(ch.history_path);
    free(ch.history_path);
    free(ch.pending);
    cli_replies_end(&ch.replies);
    mg_agent_free(ch.agent);
    return EXIT_OK;
}
