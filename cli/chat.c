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
 *
 * The chat ends when its input does. /exit, Ctrl-D and the end of piped
 * input are the user's choice: status 0. Input that fails (a read error, a
 * terminal that closes) is not: status 1, and the reason on stderr. Either
 * way every step was committed as it ran, and the line history is saved on
 * the way out; a line not yet ended (typed without Enter on a terminal, cut
 * off by a read error in a pipe) was never sent and is dropped. A terminal
 * that closes sends SIGHUP, which ends us at its default disposition; a chat
 * that ignores it (nohup) sees only reads that return 0 or fail, while
 * select() keeps calling the dead terminal readable. So every read's outcome
 * is looked at: an interrupted read (a signal we handle) is made again, one
 * that would block is waited for, and an end or an error ends the chat.
 */
#include <editline/readline.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <unistd.h>
#include <wchar.h>

#include "cli.h"

typedef enum {
    INPUT_LINE,   /* a line to act on */
    INPUT_IDLE,   /* nothing within the idle time */
    INPUT_EOF,    /* the input ended: Ctrl-D, the end of a pipe */
    INPUT_HANGUP, /* the terminal closed */
    INPUT_FAILED  /* reading failed; errno in chat.input_errno */
} input_kind;

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
    int input_errno; /* why reading failed (INPUT_FAILED) */
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

typedef enum { WAIT_READY, WAIT_IDLE, WAIT_FAILED } wait_result;

/* Waits up to `seconds` (-1: forever) for input on stdin. A closed pipe or
 * terminal counts as ready: the read then tells how it ended. A failed
 * select() is not a timeout: taken for one, it would make the chat send
 * timed heartbeats to the model in a loop. */
static wait_result wait_input(int seconds)
{
    fd_set fds;
    FD_ZERO(&fds);
    FD_SET(STDIN_FILENO, &fds);
    struct timeval tv = {seconds, 0};
    int rc;
    do
        rc = select(STDIN_FILENO + 1, &fds, NULL, NULL, seconds < 0 ? NULL : &tv);
    while (rc < 0 && errno == EINTR);
    return rc > 0 ? WAIT_READY : rc == 0 ? WAIT_IDLE : WAIT_FAILED;
}

/* ------------------------------------------------------------- terminal */

/* How the terminal's last read went. libedit's callback interface drops
 * both the end of input and read errors (rl_callback_read_char returns as
 * if waiting for more), so libedit reads through tty_getc, which notes them
 * here. */
static struct {
    int ended; /* a read returned 0 or failed */
    int error; /* its errno; 0 for end of file */
} tty_read;

/* One byte of the terminal, or EOF once it ended or failed (noted in
 * tty_read). A read interrupted by a signal we handle (libedit's, for a
 * window resize) is made again; a descriptor left non-blocking by another
 * program is waited on. */
static int tty_read_byte(void)
{
    unsigned char byte;
    for (;;) {
        ssize_t got = read(STDIN_FILENO, &byte, 1);
        if (got == 1) return byte;
        if (got < 0 && errno == EINTR) continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK) && wait_input(-1) == WAIT_READY)
            continue;
        tty_read.ended = 1;
        tty_read.error = got < 0 ? errno : 0;
        return EOF;
    }
}

/* Decodes bytes[0..*n) in the current locale, as libedit's own reader does:
 * a character, or -1 if more bytes are needed. An invalid sequence is
 * dropped but for its last byte, which may begin the next character. */
static int decode_char(char *bytes, size_t *n)
{
    for (;;) {
        wchar_t wc;
        mbstate_t state;
        memset(&state, 0, sizeof state);
        size_t used = mbrtowc(&wc, bytes, *n, &state);
        if (used == (size_t)-2 && *n < MB_LEN_MAX) return -1;
        if (used != (size_t)-1 && used != (size_t)-2) return (int)wc;
        if (*n == 1) {
            *n = 0;
            return -1;
        }
        bytes[0] = bytes[*n - 1];
        *n = 1;
    }
}

/* libedit's rl_getc_function: one character, or EOF when the terminal
 * has no more to give. Reads stdin, the terminal the chat waits on (some
 * libedit versions pass NULL for `in`). */
static int tty_getc(FILE *in)
{
    (void)in;
    char bytes[MB_LEN_MAX];
    size_t n = 0;
    for (;;) {
        int byte = tty_read_byte();
        if (byte == EOF) return EOF;
        bytes[n++] = (char)byte;
        int c = decode_char(bytes, &n);
        if (c >= 0) return c;
    }
}

/* Why the terminal gave no more. A read of 0 is Ctrl-D when libedit is not
 * editing (canonical mode, as with echo off); a terminal that closed reads
 * 0 too (or EIO while it closes), and poll() then reports POLLHUP. */
static input_kind tty_end(chat *ch)
{
    struct pollfd p = {.fd = STDIN_FILENO, .events = POLLIN};
    if (poll(&p, 1, 0) > 0 && (p.revents & POLLHUP)) return INPUT_HANGUP;
    if (!tty_read.error) return INPUT_EOF;
    ch->input_errno = tty_read.error;
    return INPUT_FAILED;
}

static input_kind read_tty(chat *ch, char **line, int idle)
{
    edited_done = 0;
    edited_line = NULL;
    tty_read.ended = 0;
    rl_callback_handler_install("you> ", on_edited_line);
    while (!edited_done && !tty_read.ended) {
        wait_result w = wait_input(idle);
        if (w != WAIT_READY) {
            int why = errno;
            rl_callback_handler_remove();
            printf("\n");
            if (w == WAIT_IDLE) return INPUT_IDLE;
            ch->input_errno = why;
            return INPUT_FAILED;
        }
        rl_callback_read_char();
    }
    if (!edited_done) { /* ended mid-line: what was typed is dropped */
        rl_callback_handler_remove();
        printf("\n");
        return tty_end(ch);
    }
    if (!edited_line) return INPUT_EOF;
    *line = edited_line;
    return INPUT_LINE;
}

/* ----------------------------------------------------------------- pipe */

/* The first whole line of ch->pending, taken out of it. 0 if none yet. */
static int take_line(chat *ch, char **line)
{
    char *nl = ch->pending_len ? memchr(ch->pending, '\n', ch->pending_len) : NULL;
    if (!nl) return 0;
    size_t n = (size_t)(nl - ch->pending);
    *line = strndup(ch->pending, n);
    memmove(ch->pending, nl + 1, ch->pending_len - n - 1);
    ch->pending_len -= n + 1;
    return 1;
}

typedef enum { FILL_MORE, FILL_END, FILL_FAILED } fill_result;

/* Reads what stdin has into ch->pending. Lines of any length: the buffer
 * grows, so a long paste stays one message. */
static fill_result fill_pending(chat *ch)
{
    if (ch->pending_cap - ch->pending_len < 4096) {
        size_t cap = ch->pending_cap ? ch->pending_cap * 2 : 65536;
        char *bigger = realloc(ch->pending, cap);
        if (!bigger) {
            ch->input_errno = ENOMEM;
            return FILL_FAILED;
        }
        ch->pending = bigger;
        ch->pending_cap = cap;
    }
    ssize_t got =
        read(STDIN_FILENO, ch->pending + ch->pending_len, ch->pending_cap - ch->pending_len);
    if (got > 0) ch->pending_len += (size_t)got;
    if (got >= 0) return got ? FILL_MORE : FILL_END;
    /* Interrupted, or nothing after all (a non-blocking descriptor another
     * process read first): wait again. */
    if (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK) return FILL_MORE;
    ch->input_errno = errno;
    return FILL_FAILED;
}

static input_kind read_pipe(chat *ch, char **line, int idle)
{
    for (;;) {
        if (take_line(ch, line)) return INPUT_LINE;
        wait_result w = wait_input(idle);
        if (w == WAIT_IDLE) return INPUT_IDLE;
        if (w == WAIT_FAILED) {
            ch->input_errno = errno;
            return INPUT_FAILED;
        }
        fill_result f = fill_pending(ch);
        if (f == FILL_FAILED) return INPUT_FAILED;
        if (f == FILL_END) {
            if (ch->pending_len == 0) return INPUT_EOF;
            /* The last line needs no newline to be a message. */
            *line = strndup(ch->pending, ch->pending_len);
            ch->pending_len = 0;
            return INPUT_LINE;
        }
    }
}

/* ------------------------------------------------------------- the chat */

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

/* Acts on one line: a slash command or a message. Returns 0 to leave. */
static int handle_line(chat *ch, const char *line)
{
    const char *text = line;
    while (*text == ' ' || *text == '\t')
        text++;
    if (!*text) return 1;
    if (ch->tty) add_history(text);
    if (text[0] == '/') return slash_command(ch, text);
    mg_error err = {0};
    turn_done(ch, mg_agent_send(ch->agent, text, on_chat_event, ch, &err), &err);
    return 1;
}

static void timed_heartbeat(chat *ch)
{
    mg_error err = {0};
    turn_done(ch,
              mg_agent_system_event(ch->agent, MG_SYSTEM_TIMED_HEARTBEAT, on_chat_event, ch, &err),
              &err);
}

/* Reads and acts until the input ends or the user leaves. Returns the exit
 * code: see the top of this file. */
static int chat_loop(chat *ch, int provider_ok)
{
    for (;;) {
        fflush(stdout);
        int idle = provider_ok ? mg_agent_idle_heartbeat_seconds(ch->agent) : -1;
        char *line = NULL;
        input_kind kind = ch->tty ? read_tty(ch, &line, idle) : read_pipe(ch, &line, idle);
        switch (kind) {
        case INPUT_LINE: {
            int keep_going = handle_line(ch, line);
            free(line);
            if (!keep_going) return EXIT_OK;
            break;
        }
        case INPUT_IDLE:
            timed_heartbeat(ch);
            break;
        case INPUT_EOF:
            return EXIT_OK;
        case INPUT_HANGUP:
            fprintf(stderr, "memgpt: the terminal closed\n");
            return EXIT_RUNTIME;
        case INPUT_FAILED:
            fprintf(stderr, "memgpt: cannot read input: %s\n", strerror(ch->input_errno));
            return EXIT_RUNTIME;
        }
    }
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
    /* The login event's request needs libcurl: load it while the agent
     * opens. */
    mg_preload *preload = mg_preload_http();
    int rc = cli_open_agent(c, agent_name, &ch.agent);
    if (rc) {
        mg_preload_finish(preload);
        return rc;
    }
    mg_agent_set_streaming(ch.agent, 1);
    snprintf(ch.prefix, sizeof ch.prefix, "%s> ", mg_agent_name(ch.agent));
    ch.replies.prefix = ch.prefix;
    size_t len = strlen(c->home) + 16;
    ch.history_path = malloc(len);
    snprintf(ch.history_path, len, "%s/chat_history", c->home);
    if (ch.tty) {
        /* Before read_history, which sets libedit up and takes it from there. */
        rl_getc_function = tty_getc;
        read_history(ch.history_path);
    }

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

    rc = chat_loop(&ch, provider_ok);
    if (ch.tty) write_history(ch.history_path);
    free(ch.history_path);
    free(ch.pending);
    cli_replies_end(&ch.replies);
    mg_agent_free(ch.agent);
    mg_preload_finish(preload);
    return rc;
}
