/*
 * provider.h - the checks the three provider targets share
 * (fuzz_openai.c, fuzz_anthropic.c, fuzz_ollama.c).
 *
 * Each provider reads a 2xx answer through its mg_*_read_answer, the code
 * a chat call runs once the bytes have arrived, either as one JSON body or
 * as a stream reported to a sink piece by piece. The input's byte 0 picks
 * the way (odd: a stream, even: a body; "S" and "B" in the seeds) and seeds
 * the cuts; the rest is the answer.
 *
 * Properties of every answer:
 *  - a reply is well formed: text is valid UTF-8, each call has a name, an
 *    id and arguments of valid UTF-8, the token counts are not negative,
 *    and "interrupted" comes only with a failure; where the provider
 *    promises it (OpenAI, Ollama: tool_calls.h), ids are sane (1-64
 *    printable ASCII) and unique within the reply;
 *  - argument repair (mg_json_repair, what the functions layer runs before
 *    parsing a call's arguments) gives valid UTF-8 and leaves arguments
 *    that already parse unchanged;
 *  - a failure is an mg_error of the same status whose message is one line
 *    of valid UTF-8 (it ends up in JSON answers and on terminals).
 * Of a body: repairing it first (mg_json_repair) changes nothing, so a
 * stray invalid byte or \u0000 in the model's text costs that character,
 * never the reply.
 * Of a stream:
 *  - fed whole, one byte at a time, and cut where byte 0 says, it gives
 *    the same reply or the same failure, and the same pieces to the sink;
 *  - what the sink was shown is what the reply holds: each call's pieces
 *    carry the id the call has in the reply (clients match the previews to
 *    the stored call by it), and, per provider, add up to its arguments
 *    and the content pieces to its text.
 */
#ifndef MG_FUZZ_PROVIDER_H
#define MG_FUZZ_PROVIDER_H

#include "fuzz.h"

#include <jansson.h>
#include <unistd.h>

#include "provider/provider.h"
#include "provider/tool_calls.h"
#include "util/buf.h"
#include "util/text.h"

typedef mg_status (*fz_read_fn)(const char *const *pieces, const size_t *lens, size_t n,
                                const mg_stream_sink *sink, mg_llm_reply *reply, mg_error *err);

/* What a provider promises beyond the shared properties. */
typedef struct fz_provider {
    fz_read_fn read;
    int sane_ids;       /* ids are 1-64 printable ASCII and unique in a reply */
    int object_args;    /* arguments are always a JSON object's text */
    int content_pieces; /* the content pieces add up to the reply's text */
    int args_pieces;    /* a call's pieces add up to its arguments (else: the same JSON) */
} fz_provider;

/* Pinned in LLVMFuzzerInitialize, so ids made from the clock repeat. */
#define FZ_FAKE_NOW "1700000000"

static char fz_fresh_prefix[64]; /* how mg_tool_call_fresh_id's ids start */

static inline void fz_provider_init(void)
{
    setenv("MEMGPT_FAKE_NOW", FZ_FAKE_NOW, 1);
    snprintf(fz_fresh_prefix, sizeof fz_fresh_prefix, "call_%llx_%lx_",
             (unsigned long long)strtoll(FZ_FAKE_NOW, NULL, 10) * 1000, (unsigned long)getpid());
}

/* An id as compared between runs: fresh ids carry a process-wide counter. */
static inline const char *fz_id_key(const char *id)
{
    return strncmp(id, fz_fresh_prefix, strlen(fz_fresh_prefix)) == 0 ? "(fresh)" : id;
}

/* ------------------------------------------------------------ the sink */

typedef struct fz_call_log {
    int index;
    char *id, *name; /* as last reported */
    buf args;        /* the pieces, joined */
} fz_call_log;

typedef struct fz_sink_log {
    buf content;
    fz_call_log *calls;
    int ncalls;
} fz_sink_log;

static inline void fz_on_content(void *user, const char *delta, size_t len)
{
    fz_sink_log *log = user;
    FZ_CHECK(mg_utf8_valid(delta, len), "a content piece is not valid UTF-8");
    buf_append(&log->content, delta, len);
}

static inline void fz_on_tool_args(void *user, int index, const char *id, const char *name,
                                   const char *delta, size_t len)
{
    fz_sink_log *log = user;
    FZ_CHECK(index >= 0, "a call piece with index %d", index);
    FZ_CHECK(id && *id, "a call piece without an id");
    FZ_CHECK(mg_utf8_valid(delta, len), "an argument piece is not valid UTF-8");
    fz_call_log *c = NULL;
    for (int i = 0; i < log->ncalls; i++)
        if (log->calls[i].index == index) c = &log->calls[i];
    if (!c) {
        log->calls = realloc(log->calls, (size_t)(log->ncalls + 1) * sizeof *log->calls);
        if (!log->calls) abort();
        c = &log->calls[log->ncalls++];
        *c = (fz_call_log){.index = index, .args = BUF_INIT};
    }
    /* Once shown, a call's id and name stay: previews are matched by them. */
    FZ_CHECK(!c->id || strcmp(c->id, id) == 0, "call %d was shown with id '%s', then '%s'", index,
             c->id, id);
    FZ_CHECK(!c->name || !*c->name || strcmp(c->name, name ? name : "") == 0,
             "call %d was shown named '%s', then '%s'", index, c->name, name ? name : "");
    free(c->id);
    c->id = strdup(id);
    if (name && *name) {
        free(c->name);
        c->name = strdup(name);
    }
    buf_append(&c->args, delta, len);
}

static inline void fz_sink_log_free(fz_sink_log *log)
{
    for (int i = 0; i < log->ncalls; i++) {
        free(log->calls[i].id);
        free(log->calls[i].name);
        buf_free(&log->calls[i].args);
    }
    free(log->calls);
    buf_free(&log->content);
}

/* The log as text, for comparing runs. */
static inline void fz_sink_log_text(const fz_sink_log *log, buf *out)
{
    buf_printf(out, "content=%zu:", log->content.len);
    buf_append(out, buf_str(&log->content), log->content.len);
    for (int i = 0; i < log->ncalls; i++) {
        const fz_call_log *c = &log->calls[i];
        buf_printf(out, "|call %d id=%s name=%s args=%zu:", c->index, fz_id_key(c->id),
                   c->name ? c->name : "", c->args.len);
        buf_append(out, buf_str(&c->args), c->args.len);
    }
}

/* ----------------------------------------------------------- the reply */

static inline void fz_check_error(mg_status st, const mg_error *err)
{
    FZ_CHECK(err->code == st, "failed with %d but the error says %d", st, err->code);
    size_t n = strlen(err->message);
    FZ_CHECK(n > 0, "a failure without a message");
    FZ_CHECK(mg_utf8_valid(err->message, n), "the error message is not valid UTF-8: %s",
             err->message);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK((unsigned char)err->message[i] >= 0x20, "the error message is not one line: %s",
                 err->message);
}

/* Argument repair, as mg_functions_call runs it on a call's arguments. */
static inline void fz_check_arguments(const fz_provider *p, const char *args)
{
    size_t n = strlen(args);
    char *repaired = mg_json_repair(args, n);
    FZ_CHECK(mg_utf8_valid(repaired, strlen(repaired)), "repaired arguments are not UTF-8");
    json_t *v = json_loads(args, 0, NULL);
    if (v) FZ_CHECK(strcmp(repaired, args) == 0, "repair changed arguments that parse");
    if (p->object_args) FZ_CHECK(json_is_object(v), "arguments are not an object: %s", args);
    json_decref(v);
    free(repaired);
}

static inline void fz_check_reply(const fz_provider *p, mg_status st, const mg_error *err,
                                  const mg_llm_reply *r)
{
    if (st) {
        fz_check_error(st, err);
        return;
    }
    FZ_CHECK(!r->interrupted, "a reply that succeeded says it was interrupted");
    if (r->content)
        FZ_CHECK(mg_utf8_valid(r->content, strlen(r->content)), "reply text is not UTF-8");
    if (r->raw_content) {
        json_t *raw = json_loads(r->raw_content, 0, NULL);
        FZ_CHECK(json_is_array(raw), "raw_content is not a JSON list");
        json_decref(raw);
    }
    FZ_CHECK(r->prompt_tokens >= 0 && r->completion_tokens >= 0 && r->reasoning_tokens >= 0 &&
                 r->cached_tokens >= 0,
             "negative token counts");
    FZ_CHECK(r->ncalls >= 0 && (r->ncalls == 0 || r->calls), "calls missing");
    for (int i = 0; i < r->ncalls; i++) {
        const mg_tool_call *c = &r->calls[i];
        FZ_CHECK(c->name && *c->name && mg_utf8_valid(c->name, strlen(c->name)),
                 "call %d has no name, or not UTF-8", i);
        FZ_CHECK(c->id && *c->id && mg_utf8_valid(c->id, strlen(c->id)),
                 "call %d has no id, or not UTF-8", i);
        FZ_CHECK(c->arguments && mg_utf8_valid(c->arguments, strlen(c->arguments)),
                 "call %d has no arguments, or not UTF-8", i);
        fz_check_arguments(p, c->arguments);
        if (!p->sane_ids) continue;
        json_t *id = json_string(c->id);
        FZ_CHECK(mg_tool_call_sane_id(id), "call %d has the id '%s'", i, c->id);
        json_decref(id);
        for (int k = 0; k < i; k++)
            FZ_CHECK(strcmp(r->calls[k].id, c->id) != 0, "calls %d and %d share the id '%s'", k, i,
                     c->id);
    }
}

/* Everything a run gave, as text, for comparing runs. */
static inline void fz_outcome_text(mg_status st, const mg_error *err, const mg_llm_reply *r,
                                   buf *out)
{
    buf_printf(out, "status=%d", (int)st);
    if (st) {
        buf_printf(out, " error=%s interrupted=%d", err->message, r->interrupted);
        return;
    }
    buf_printf(out, " tokens=%d/%d/%d/%d content=%s raw=%s", r->prompt_tokens, r->completion_tokens,
               r->reasoning_tokens, r->cached_tokens, r->content ? r->content : "(none)",
               r->raw_content ? r->raw_content : "(none)");
    for (int i = 0; i < r->ncalls; i++)
        buf_printf(out, "|call id=%s name=%s args=%s", fz_id_key(r->calls[i].id), r->calls[i].name,
                   r->calls[i].arguments);
}

/* ------------------------------------------------------------- the runs */

/* Reads text[0..len) in the given pieces; appends what happened to `out`
 * and checks the reply and, for a stream, the sink against it. */
static inline void fz_read(const fz_provider *p, const char *text, const fz_pieces *cuts,
                           int stream, buf *out)
{
    const char **pieces = malloc((cuts->n + 1) * sizeof *pieces);
    if (!pieces) abort();
    for (size_t i = 0; i < cuts->n; i++)
        pieces[i] = text + cuts->off[i];
    fz_sink_log log = {.content = BUF_INIT};
    mg_stream_sink sink = {fz_on_content, fz_on_tool_args, &log};
    mg_llm_reply reply = {0};
    mg_error err = {0};
    mg_status st = p->read(pieces, cuts->lens, cuts->n, stream ? &sink : NULL, &reply, &err);
    fz_check_reply(p, st, &err, &reply);
    fz_outcome_text(st, &err, &reply, out);
    if (stream) {
        buf_puts(out, " || ");
        fz_sink_log_text(&log, out);
    }
    if (stream && !st) {
        for (int i = 0; i < log.ncalls; i++) {
            const fz_call_log *c = &log.calls[i];
            FZ_CHECK(c->index < reply.ncalls, "a call %d was shown, the reply has %d calls",
                     c->index, reply.ncalls);
            const mg_tool_call *tc = &reply.calls[c->index];
            FZ_CHECK(strcmp(c->id, tc->id) == 0, "call %d was shown with id '%s', stored as '%s'",
                     c->index, c->id, tc->id);
            if (c->name)
                FZ_CHECK(strcmp(c->name, tc->name) == 0,
                         "call %d was shown named '%s', stored as '%s'", c->index, c->name,
                         tc->name);
            if (p->args_pieces) {
                FZ_CHECK(strcmp(buf_str(&c->args), tc->arguments) == 0,
                         "call %d: the pieces shown add up to '%s', the arguments are '%s'",
                         c->index, buf_str(&c->args), tc->arguments);
            } else if (c->args.len) {
                json_t *shown = json_loads(buf_str(&c->args), 0, NULL);
                json_t *stored = json_loads(tc->arguments, 0, NULL);
                FZ_CHECK(json_equal(shown, stored),
                         "call %d: the pieces shown add up to '%s', the arguments are '%s'",
                         c->index, buf_str(&c->args), tc->arguments);
                json_decref(shown);
                json_decref(stored);
            }
        }
        if (p->content_pieces && log.content.len)
            FZ_CHECK(strcmp(buf_str(&log.content), reply.content ? reply.content : "") == 0,
                     "the content shown was '%s', the reply's is '%s'", buf_str(&log.content),
                     reply.content ? reply.content : "(none)");
    }
    mg_llm_reply_clear(&reply);
    fz_sink_log_free(&log);
    free(pieces);
}

static inline int fz_provider_one(const fz_provider *p, const uint8_t *data, size_t size)
{
    fz_input in = {data, size};
    unsigned mode = fz_byte(&in);
    int stream = mode & 1;
    const char *text = (const char *)in.p;
    size_t len = in.n;
    fz_pieces whole = {1, (size_t[]){0}, (size_t[]){len}};
    buf a = BUF_INIT, b = BUF_INIT;
    fz_read(p, text, &whole, stream, &a);
    if (stream) {
        fz_pieces bytes = fz_cuts(len, 0), cuts = fz_cuts(len, (mode >> 1) + 1);
        fz_read(p, text, &bytes, stream, &b);
        FZ_CHECK(strcmp(buf_str(&a), buf_str(&b)) == 0, "one byte at a time:\n  %s\nwhole:\n  %s",
                 buf_str(&b), buf_str(&a));
        buf_reset(&b);
        fz_read(p, text, &cuts, stream, &b);
        FZ_CHECK(strcmp(buf_str(&a), buf_str(&b)) == 0, "cut:\n  %s\nwhole:\n  %s", buf_str(&b),
                 buf_str(&a));
        fz_pieces_free(&bytes);
        fz_pieces_free(&cuts);
    } else {
        char *repaired = mg_json_repair(text, len);
        size_t n = strlen(repaired);
        fz_pieces one = {1, (size_t[]){0}, (size_t[]){n}};
        fz_read(p, repaired, &one, stream, &b);
        FZ_CHECK(strcmp(buf_str(&a), buf_str(&b)) == 0, "repaired first:\n  %s\nas sent:\n  %s",
                 buf_str(&b), buf_str(&a));
        free(repaired);
    }
    buf_free(&a);
    buf_free(&b);
    return 0;
}

#endif
