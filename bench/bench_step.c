/*
 * bench_step.c - the runtime overhead of one agent step, on a big agent.
 *
 *   bench_step [--messages N] [--passages N] [--turns N] [--searches N]
 *              [--search-budget SEC] [--reuse] [--no-encode] [--json FILE] DATA_DIR
 *
 * 1. Creates agent "big" in DATA_DIR (which must not hold one yet) and fills
 *    recall memory with N messages (default 100,000: user message, assistant
 *    reply with a send_message call, tool result, repeated) inside one
 *    transaction, then evicts all but the newest ~20 from the context window
 *    and stores a summary, as a long-running agent would look. Then 10,000
 *    archival passages through mg_archival_insert, in one transaction. Both
 *    insert rates are reported.
 * 2. Replaces the agent's provider by an in-process one (bench_ops below)
 *    whose chat answers at once, and times mg_agent_send over --turns turns
 *    (default 2,000). Most turns are one step (a send_message call);
 *    --searches turns of each kind (default 20, spread evenly) start with
 *    conversation_search or archival_memory_search with request_heartbeat,
 *    so they are two steps. Once conversation searches have taken
 *    --search-budget seconds (default 60) in all, the remaining ones are run
 *    as plain turns (and counted), so a slow search cannot make the run
 *    endless. The time spent inside chat is subtracted, so the figure is
 *    everything the runtime does except waiting for the LLM.
 *    Not included: encoding the request as JSON and the HTTP exchange, which
 *    the OpenAI provider adds. On every other turn the provider builds the
 *    OpenAI body with provider/openai.c's own mg_openai_chat_body (timed
 *    apart, reported as the encode figure); on the others it answers
 *    without touching the request. Both kinds of plain turn are reported:
 *    the "instant" ones are the bare runtime, the "encoding" ones show what
 *    the provider's JSON garbage does to the runtime's own time (glibc's
 *    malloc_consolidate runs in the next large allocation). --no-encode makes
 *    every turn instant. bench_send.py measures the whole real path.
 *    With --reuse, a DATA_DIR that already holds agent "big" (from an earlier
 *    run) is used as it is and step 1 is skipped: for profiling, e.g.
 *    valgrind --tool=callgrind --toggle-collect=mg_agent_send.
 * 3. Trims the context back to the newest ~20 messages, so bench_send.py
 *    finds the agent in the shape described above, and keeps DATA_DIR.
 *    Also creates agent "full" there, whose context window is 60% full
 *    (~1,200 messages, ~77k estimated tokens of gpt-4o-mini's 128k):
 *    the largest request a 128k-window agent sends routinely, for the extra
 *    "full context" case of bench_send.py.
 *
 * The agent has reflection off (reflect_every -1) so a plain turn is exactly
 * one step. Its model is openai/gpt-4o-mini (128k window): over 2,000 turns
 * the context fills up, so the memory-pressure alert and a flush (eviction +
 * summary) happen along the way; turns that flushed are reported apart.
 *
 * Text is pseudo-random English-like prose with Zipf-distributed words, from
 * a fixed seed, so runs are repeatable and FTS posting lists look realistic.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bench_util.h"
#include "agent/agent.h"
#include "context/context.h"
#include "memgpt.h"
#include "memory/recall.h"
#include "provider/openai.h"
#include "store/store.h"
#include "util/buf.h"
#include "util/timeutil.h"

/* ------------------------------------------------------------ utilities */

static void die(const char *what, const mg_error *err)
{
    fprintf(stderr, "bench_step: %s: %s\n", what, err && err->message[0] ? err->message : "failed");
    exit(1);
}

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static int encode_mode = 1;     /* 0: --no-encode */
static int encode_estimate = 1; /* this turn, the provider encodes the request as OpenAI JSON */

static int rng_range(int lo, int hi) /* inclusive */
{
    return lo + (int)(bench_rng_next(&rng_state) % (uint64_t)(hi - lo + 1));
}

/* ------------------------------------------------------------ vocabulary */

static const char *const common_words[] = {
    "the",     "be",       "to",      "of",     "and",       "a",        "in",       "that",
    "have",    "i",        "it",      "for",    "not",       "on",       "with",     "he",
    "as",      "you",      "do",      "at",     "this",      "but",      "his",      "by",
    "from",    "they",     "we",      "say",    "her",       "she",      "or",       "an",
    "will",    "my",       "one",     "all",    "would",     "there",    "their",    "what",
    "so",      "up",       "out",     "if",     "about",     "who",      "get",      "which",
    "go",      "me",       "when",    "make",   "can",       "like",     "time",     "no",
    "just",    "him",      "know",    "take",   "people",    "into",     "year",     "your",
    "good",    "some",     "could",   "them",   "see",       "other",    "than",     "then",
    "now",     "look",     "only",    "come",   "its",       "over",     "think",    "also",
    "back",    "after",    "use",     "two",    "how",       "our",      "work",     "first",
    "well",    "way",      "even",    "new",    "want",      "because",  "any",      "these",
    "give",    "day",      "most",    "us",     "trip",      "dinner",   "sister",   "garden",
    "meeting", "project",  "book",    "movie",  "coffee",    "weekend",  "birthday", "doctor",
    "school",  "music",    "recipe",  "train",  "holiday",   "family",   "friend",   "office",
    "report",  "deadline", "concert", "hiking", "weather",   "running",  "painting", "kitchen",
    "camera",  "guitar",   "piano",   "beach",  "mountain",  "river",    "city",     "museum",
    "flight",  "hotel",    "budget",  "salary", "interview", "language", "lesson",   "exam",
    "garage",  "bicycle",  "dog",     "cat",    "plant",     "tomato",
};
#define NCOMMON (sizeof common_words / sizeof common_words[0])

static const char *const syllables[] = {
    "ka",  "lo",  "mi",  "ren", "tas", "vo",  "pel", "dra", "shi", "nu",
    "bar", "qui", "zen", "ost", "ler", "ma",  "tri", "gon", "eph", "ula",
    "san", "dor", "wen", "ix",  "cal", "bri", "fen", "har", "jo",  "ky",
};
#define NSYLL (sizeof syllables / sizeof syllables[0])

#define VOCAB 6000
static char *vocab[VOCAB];
static double zipf_cdf[VOCAB];

static void vocab_init(void)
{
    for (size_t i = 0; i < VOCAB; i++) {
        if (i < NCOMMON) {
            vocab[i] = mg_xstrdup(common_words[i]);
            continue;
        }
        /* Rarer words: 2-4 syllables, unique by construction of the index. */
        buf w = BUF_INIT;
        size_t n = i;
        int parts = 0;
        do {
            buf_puts(&w, syllables[n % NSYLL]);
            n /= NSYLL;
            parts++;
        } while (n > 0 || parts < 2);
        vocab[i] = buf_take(&w);
    }
    double sum = 0;
    for (int i = 0; i < VOCAB; i++)
        sum += 1.0 / pow(i + 1, 1.05);
    double acc = 0;
    for (int i = 0; i < VOCAB; i++) {
        acc += 1.0 / pow(i + 1, 1.05) / sum;
        zipf_cdf[i] = acc;
    }
}

static const char *word_zipf(void)
{
    double u = bench_rng_unit(&rng_state);
    int lo = 0, hi = VOCAB - 1;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (zipf_cdf[mid] < u)
            lo = mid + 1;
        else
            hi = mid;
    }
    return vocab[lo];
}

/* A sentence of min..max words, capitalised, with a full stop. */
static char *sentence(int min_words, int max_words)
{
    buf b = BUF_INIT;
    int n = rng_range(min_words, max_words);
    for (int i = 0; i < n; i++) {
        const char *w = word_zipf();
        if (i == 0) {
            buf_putc(&b, (char)(w[0] >= 'a' && w[0] <= 'z' ? w[0] - 32 : w[0]));
            buf_puts(&b, w + 1);
        } else {
            buf_putc(&b, ' ');
            buf_puts(&b, w);
        }
        if (i + 1 < n && bench_rng_next(&rng_state) % 9 == 0) buf_putc(&b, ',');
    }
    buf_putc(&b, '.');
    return buf_take(&b);
}

/* A search query: 2-3 words of middling frequency (what people look back for). */
static char *search_query(void)
{
    buf b = BUF_INIT;
    int n = rng_range(2, 3);
    for (int i = 0; i < n; i++)
        buf_printf(&b, "%s%s", i ? " " : "", vocab[rng_range(100, 2000)]);
    return buf_take(&b);
}

/* ------------------------------------------------------------ messages */

static char *envelope_json(const char *type, const char *key, const char *text, int64_t ms)
{
    char when[64];
    mg_time_human(ms, when, sizeof when);
    json_t *o = json_pack("{s:s, s:s, s:s}", "type", type, key, text, "time", when);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static char *args_json(const char *key, const char *value, int heartbeat)
{
    json_t *o = json_pack("{s:s}", key, value);
    if (heartbeat) json_object_set_new(o, "request_heartbeat", json_true());
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

static char *tool_result_json(const char *message, int64_t ms)
{
    char when[64];
    mg_time_human(ms, when, sizeof when);
    json_t *o = json_pack("{s:s, s:s, s:s}", "status", "OK", "message", message, "time", when);
    char *s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    return s;
}

/* Message i of the synthetic history: a (user, assistant, tool) cycle. */
static mg_msg history_message(int64_t i, int64_t ms)
{
    mg_msg m = {.time_ms = ms};
    char id[32];
    snprintf(id, sizeof id, "call_hist_%lld", (long long)(i / 3));
    switch (i % 3) {
    case 0: {
        char *text = sentence(4, 28);
        m.role = MG_ROLE_USER;
        m.kind = mg_xstrdup("user_message");
        m.content = envelope_json("user_message", "message", text, ms);
        free(text);
        break;
    }
    case 1: {
        char *reply = sentence(6, 40);
        m.role = MG_ROLE_ASSISTANT;
        m.kind = mg_xstrdup("assistant");
        m.content = sentence(5, 20);
        m.calls = mg_xcalloc(1, sizeof *m.calls);
        m.ncalls = 1;
        m.calls[0].id = mg_xstrdup(id);
        m.calls[0].name = mg_xstrdup("send_message");
        m.calls[0].arguments = args_json("message", reply, 0);
        free(reply);
        break;
    }
    default:
        m.role = MG_ROLE_TOOL;
        m.kind = mg_xstrdup("tool");
        m.content = tool_result_json("Sent.", ms);
        m.tool_call_id = mg_xstrdup(id);
        m.tool_name = mg_xstrdup("send_message");
        break;
    }
    return m;
}

/* --------------------------------------------------- in-process provider */

enum { PLAN_SEND, PLAN_CONV_SEARCH, PLAN_ARCH_SEARCH };

#define MAX_CALLS_PER_TURN 16

typedef struct bench_provider {
    mg_provider base;
    int plan;      /* what the current turn does */
    int plan_step; /* chat calls answered in this turn (tool calls only) */
    int ncalls;    /* chat calls in this turn, summarizer included */
    double enter[MAX_CALLS_PER_TURN], leave[MAX_CALLS_PER_TURN];
    double encode_sec; /* this turn: time to encode requests as OpenAI JSON */
    size_t encode_bytes;
    int summarizer_calls; /* this turn */
    int64_t serial;
} bench_provider;

/* The OpenAI request body, built by the OpenAI provider's own code: the
 * cost the HTTP provider adds on top of what the runtime does. Stored
 * messages are encoded once (provider/wire.h), so after the first step
 * this copies their texts. Returns the size. */
static size_t encode_request(const char *model, const mg_llm_request *req)
{
    size_t n;
    free(mg_openai_chat_body(model, req, 1, &n));
    return n;
}

static void one_call(mg_llm_reply *reply, int64_t serial, const char *name, char *arguments)
{
    char id[48];
    snprintf(id, sizeof id, "call_bench_%lld", (long long)serial);
    reply->calls = mg_xcalloc(1, sizeof *reply->calls);
    reply->ncalls = 1;
    reply->calls[0].id = mg_xstrdup(id);
    reply->calls[0].name = mg_xstrdup(name);
    reply->calls[0].arguments = arguments;
}

static mg_status bench_chat(mg_provider *base, const mg_llm_request *req, mg_llm_reply *reply,
                            mg_error *err)
{
    bench_provider *p = (bench_provider *)base;
    double t_enter = bench_now();
    double t0 = bench_now();
    size_t bytes = 0;
    if (encode_estimate) {
        bytes = encode_request(base->model, req);
    } else {
        bytes = strlen(req->system);
        for (int i = 0; i < req->nmessages; i++)
            bytes += 40 + (req->messages[i].content ? strlen(req->messages[i].content) : 0);
    }
    p->encode_sec += bench_now() - t0;
    p->encode_bytes += bytes;
    p->serial++;
    if (!req->tools) {
        /* The summarizer (flush): plain text. */
        p->summarizer_calls++;
        char *s = sentence(120, 160);
        reply->content = s;
    } else if (p->plan != PLAN_SEND && p->plan_step == 0) {
        char *q = search_query();
        reply->content = sentence(5, 15);
        one_call(reply, p->serial,
                 p->plan == PLAN_CONV_SEARCH ? "conversation_search" : "archival_memory_search",
                 args_json("query", q, 1));
        free(q);
        p->plan_step++;
    } else {
        char *text = sentence(6, 40);
        reply->content = sentence(5, 20);
        one_call(reply, p->serial, "send_message", args_json("message", text, 0));
        free(text);
        p->plan_step++;
    }
    /* What a provider reports: roughly a token per 4 bytes of request. */
    reply->prompt_tokens = (int)(bytes / 4);
    reply->completion_tokens = 40;
    if (p->ncalls < MAX_CALLS_PER_TURN) {
        p->enter[p->ncalls] = t_enter;
        p->leave[p->ncalls] = bench_now();
    }
    p->ncalls++;
    return MG_OK;
}

static void bench_destroy(mg_provider *base)
{
    free(base->model);
    free(base);
}

static const mg_provider_ops bench_ops = {
    .prefix = "bench", .chat = bench_chat, .destroy = bench_destroy};

static void on_event(const mg_event *ev, void *user)
{
    (*(int *)user)++;
}

/* ------------------------------------------------------------ statistics */

typedef struct series {
    double *v;
    int n, cap;
} series;

static void series_add(series *s, double x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 256;
        s->v = mg_xrealloc(s->v, (size_t)s->cap * sizeof *s->v);
    }
    s->v[s->n++] = x;
}

static void series_free(series *s)
{
    free(s->v);
    memset(s, 0, sizeof *s);
}

/* Nearest-rank percentile; sorts in place. */
static double pct(series *s, double q)
{
    if (!s->n) return NAN;
    qsort(s->v, (size_t)s->n, sizeof *s->v, bench_cmp_double);
    int k = (int)ceil(q * s->n) - 1;
    if (k < 0) k = 0;
    if (k >= s->n) k = s->n - 1;
    return s->v[k];
}

static double mean(const series *s)
{
    double sum = 0;
    for (int i = 0; i < s->n; i++)
        sum += s->v[i];
    return s->n ? sum / s->n : NAN;
}

/* {n, p50, p95, p99, max, mean} in ms (values are seconds). */
static json_t *summary_json(series *s)
{
    if (!s->n) return json_pack("{s:i}", "n", 0); /* JSON has no NaN */
    double p50 = pct(s, 0.50), p95 = pct(s, 0.95), p99 = pct(s, 0.99);
    double max = s->n ? s->v[s->n - 1] : NAN;
    return json_pack("{s:i, s:f, s:f, s:f, s:f, s:f}", "n", s->n, "p50_ms", p50 * 1e3, "p95_ms",
                     p95 * 1e3, "p99_ms", p99 * 1e3, "max_ms", max * 1e3, "mean_ms", mean(s) * 1e3);
}

static void print_row(const char *label, series *s)
{
    if (!s->n) {
        printf("  %-44s %6s\n", label, "n=0");
        return;
    }
    double p50 = pct(s, 0.50), p95 = pct(s, 0.95), p99 = pct(s, 0.99), max = s->v[s->n - 1];
    printf("  %-44s n=%-5d p50 %8.3f  p95 %8.3f  p99 %8.3f  max %8.3f ms\n", label, s->n, p50 * 1e3,
           p95 * 1e3, p99 * 1e3, max * 1e3);
}

/* ------------------------------------------------------------ phases */

static const char *const summary_text =
    "The user and the assistant have talked almost daily for a year. The user works on a "
    "software project with a hard deadline, runs on weekends, is learning the piano and the "
    "guitar, and has a sister who lives by the river in another city. They planned several "
    "trips (mountains, the beach, a museum weekend), discussed recipes and the garden "
    "(tomatoes did well), a doctor's visit that went fine, budget worries, and a job "
    "interview that led to a new role. The assistant keeps track of birthdays and deadlines "
    "and reminds the user of them.";

static int64_t populate_messages(mg_agent *agent, int64_t count, double *rate)
{
    mg_error err = {0};
    int64_t now = mg_now_ms();
    int64_t span = 365LL * 24 * 3600 * 1000, start = now - span - 3600 * 1000;
    int64_t first_id = 0, cut_id = 0;
    int64_t keep_from = count - 20; /* evict everything before the user message at/after here */
    double t0 = bench_now();
    if (store_begin(agent->store, &err)) die("begin", &err);
    for (int64_t i = 0; i < count; i++) {
        mg_msg m = history_message(i, start + i * (span / count));
        if (recall_insert(agent->store, agent->id, &m, &err)) die("recall_insert", &err);
        if (i == 0) first_id = m.id;
        if (!cut_id && i >= keep_from && i % 3 == 0) cut_id = m.id;
        mg_msg_clear(&m);
    }
    if (store_commit(agent->store, &err)) die("commit", &err);
    double t1 = bench_now();
    *rate = (double)count / (t1 - t0);

    /* A long-running agent: only the newest messages in view, the rest summarized. */
    if (store_begin(agent->store, &err)) die("begin", &err);
    if (cut_id > first_id &&
        recall_evict_range(agent->store, agent->id, first_id, cut_id - 1, &err))
        die("recall_evict_range", &err);
    free(agent->summary);
    agent->summary = mg_xstrdup(summary_text);
    agent->summarized_count = cut_id - first_id;
    if (agent_save_state(agent, &err)) die("saving state", &err);
    if (store_commit(agent->store, &err)) die("commit", &err);
    return cut_id - first_id;
}

static void populate_passages(mg_agent *agent, int count, double *rate)
{
    mg_error err = {0};
    int64_t now = mg_now_ms();
    int64_t span = 365LL * 24 * 3600 * 1000;
    double t0 = bench_now();
    if (store_begin(agent->store, &err)) die("begin", &err);
    for (int i = 0; i < count; i++) {
        buf text = BUF_INIT;
        int sentences = rng_range(2, 4);
        for (int k = 0; k < sentences; k++) {
            char *s = sentence(8, 24);
            buf_printf(&text, "%s%s", k ? " " : "", s);
            free(s);
        }
        char tags[64];
        snprintf(tags, sizeof tags, "[\"bench\", \"topic%d\"]", i % 37);
        if (mg_archival_insert(agent, buf_str(&text), tags,
                               now - span + (int64_t)i * (span / count), &err))
            die("mg_archival_insert", &err);
        buf_free(&text);
    }
    if (store_commit(agent->store, &err)) die("commit", &err);
    *rate = (double)count / (bench_now() - t0);
}

/* Takes all but the newest ~20 messages out of the context window. */
static void trim_context(mg_agent *agent)
{
    mg_error err = {0};
    int cut = agent->queue.count - 20;
    while (cut > 0 && cut < agent->queue.count &&
           !(agent->queue.items[cut].role == MG_ROLE_USER &&
             strcmp(agent->queue.items[cut].kind, "user_message") == 0))
        cut++;
    if (cut <= 0 || cut >= agent->queue.count) return;
    if (store_begin(agent->store, &err)) die("begin", &err);
    if (recall_evict_range(agent->store, agent->id, agent->queue.items[0].id,
                           agent->queue.items[cut - 1].id, &err))
        die("recall_evict_range", &err);
    agent->summarized_count += cut;
    if (agent_save_state(agent, &err)) die("saving state", &err);
    if (store_commit(agent->store, &err)) die("commit", &err);
    mg_msg_list_drop_front(&agent->queue, cut);
}

/* Agent "full": a context window filled to `fraction` with synthetic history. */
static int make_full_agent(mg_store *store, const mg_agent_config *cfg, double fraction)
{
    mg_error err = {0};
    mg_status st = mg_agent_create(store, "full", cfg, &err);
    if (st == MG_ERR_EXISTS) return -1;
    if (st) die("creating agent 'full'", &err);
    mg_agent *a;
    if (mg_agent_open(store, "full", &a, &err)) die("opening agent 'full'", &err);
    int64_t now = mg_now_ms();
    if (store_begin(store, &err)) die("begin", &err);
    for (int64_t i = 0;; i++) {
        if (i % 3 == 0) {
            mg_context_usage u;
            context_measure(a, &u);
            if (u.total >= fraction * u.window) break;
        }
        if (agent_append_message(a, history_message(i, now - (100000 - i) * 60000), NULL, &err))
            die("agent_append_message", &err);
    }
    if (store_commit(store, &err)) die("commit", &err);
    int n = a->queue.count;
    mg_agent_free(a);
    return n;
}

static void usage(void)
{
    fprintf(stderr, "usage: bench_step [--messages N] [--passages N] [--turns N] [--searches N] "
                    "[--search-budget SEC] [--reuse] [--no-encode] [--json FILE] DATA_DIR\n");
    exit(2);
}

int main(int argc, char **argv)
{
    int64_t nmessages = 100000;
    int npassages = 10000, nturns = 2000, warmup = 20, nsearches = 20;
    double search_budget = 60;
    int reuse = 0;
    const char *dir = NULL, *json_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (i + 1 < argc && strcmp(argv[i], "--messages") == 0)
            nmessages = atoll(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--passages") == 0)
            npassages = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--turns") == 0)
            nturns = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--searches") == 0)
            nsearches = atoi(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--search-budget") == 0)
            search_budget = atof(argv[++i]);
        else if (i + 1 < argc && strcmp(argv[i], "--json") == 0)
            json_path = argv[++i];
        else if (strcmp(argv[i], "--reuse") == 0)
            reuse = 1;
        else if (strcmp(argv[i], "--no-encode") == 0)
            encode_mode = 0;
        else if (argv[i][0] == '-' || dir)
            usage();
        else
            dir = argv[i];
    }
    if (!dir || nmessages < 30 || npassages < 1 || nturns < 1 || nsearches < 0) usage();
    if (nturns <= warmup * 2) warmup = 0;
    int interval = nsearches ? (nturns - warmup) / nsearches : 0;
    if (nsearches && interval < 3) usage();
    vocab_init();

    mg_error err = {0};
    mg_store *store;
    double t0 = bench_now();
    if (mg_store_open(dir, &store, &err)) die("opening the store", &err);
    double store_open_new = bench_now() - t0;
    mg_agent_config cfg = {.model = "openai/gpt-4o-mini", .reflect_every = -1};
    mg_status created = mg_agent_create(store, "big", &cfg, &err);
    if (created && !(created == MG_ERR_EXISTS && reuse)) die("creating agent 'big'", &err);
    mg_agent *agent;
    if (mg_agent_open(store, "big", &agent, &err)) die("opening agent 'big'", &err);

    double msg_rate = 0, passage_rate = 0, msg_sec = 0, passage_sec = 0;
    int64_t evicted = 0;
    if (created == MG_OK) {
        printf("bench_step: %lld messages, %d passages, %d turns (+%d warm-up) in %s\n",
               (long long)nmessages, npassages, nturns - warmup, warmup, dir);
        fflush(stdout);
        double tp = bench_now();
        evicted = populate_messages(agent, nmessages, &msg_rate);
        msg_sec = bench_now() - tp;
        tp = bench_now();
        populate_passages(agent, npassages, &passage_rate);
        passage_sec = bench_now() - tp;
    } else {
        nmessages = agent->recall_count;
        npassages = (int)agent->archival_count;
        printf("bench_step: reusing agent 'big' in %s (%lld messages, %d passages), %d turns "
               "(+%d warm-up)\n",
               dir, (long long)nmessages, npassages, nturns - warmup, warmup);
    }
    mg_agent_free(agent);
    mg_store_close(store);

    /* Cold-ish opens, as `memgpt send` does them (same process, so page cache warm). */
    series open_store = {0}, open_agent = {0};
    for (int i = 0; i < 15; i++) {
        mg_store *s2;
        mg_agent *a2;
        double a = bench_now();
        if (mg_store_open(dir, &s2, &err)) die("opening the store", &err);
        double b = bench_now();
        if (mg_agent_open(s2, "big", &a2, &err)) die("opening agent 'big'", &err);
        double c = bench_now();
        series_add(&open_store, b - a);
        series_add(&open_agent, c - b);
        mg_agent_free(a2);
        mg_store_close(s2);
    }

    if (mg_store_open(dir, &store, &err)) die("opening the store", &err);
    if (mg_agent_open(store, "big", &agent, &err)) die("opening agent 'big'", &err);
    printf("  populated: %lld messages in %.2f s (%.0f msg/s), %lld evicted, %d in context; "
           "%d passages in %.2f s (%.0f passages/s)\n",
           (long long)nmessages, msg_sec, msg_rate, (long long)evicted, agent->queue.count,
           npassages, passage_sec, passage_rate);
    fflush(stdout);

    bench_provider *bp = mg_xcalloc(1, sizeof *bp);
    bp->base.ops = &bench_ops;
    bp->base.model = mg_xstrdup("gpt-4o-mini");
    agent->provider = &bp->base; /* freed by mg_agent_free through bench_destroy */

    /* [0]: instant turns, [1]: turns whose request the provider encoded */
    series send_turn[2] = {{0}}, send_pre[2] = {{0}}, send_post[2] = {{0}}, quart[2][4] = {{{0}}};
    series conv_turn = {0}, conv_step = {0}, arch_turn = {0}, arch_step = {0}, encode = {0},
           encode_quart[4] = {{0}}, flush_turn = {0}, all_steps = {0}, with_encode = {0};
    int events = 0, flushes = 0, max_queue = 0, skipped_searches = 0;
    double conv_spent = 0;
    size_t max_request = 0;
    double bench_t0 = bench_now();
    for (int i = 0; i < nturns; i++) {
        int plan = PLAN_SEND;
        if (interval && i >= warmup && (i - warmup) % interval == interval / 3)
            plan = PLAN_CONV_SEARCH;
        else if (interval && i >= warmup && (i - warmup) % interval == interval * 2 / 3)
            plan = PLAN_ARCH_SEARCH;
        if (plan == PLAN_CONV_SEARCH && conv_spent > search_budget) {
            plan = PLAN_SEND;
            skipped_searches++;
        }
        char *text = sentence(4, 28);
        encode_estimate = encode_mode && i % 2 == 0;
        int e = encode_estimate;
        bp->plan = plan;
        bp->plan_step = 0;
        bp->ncalls = 0;
        bp->encode_sec = 0;
        bp->encode_bytes = 0;
        bp->summarizer_calls = 0;
        double a = bench_now();
        if (mg_agent_send(agent, text, on_event, &events, &err)) die("mg_agent_send", &err);
        double b = bench_now();
        free(text);
        if (agent->queue.count > max_queue) max_queue = agent->queue.count;
        if (bp->encode_bytes > max_request) max_request = bp->encode_bytes;
        int n = bp->ncalls < MAX_CALLS_PER_TURN ? bp->ncalls : MAX_CALLS_PER_TURN;
        double in_chat = 0;
        for (int k = 0; k < n; k++)
            in_chat += bp->leave[k] - bp->enter[k];
        double overhead = (b - a) - in_chat;
        if (plan == PLAN_CONV_SEARCH) conv_spent += overhead;
        if (i < warmup) continue;
        if (bp->summarizer_calls) {
            flushes++;
            series_add(&flush_turn, overhead);
            continue;
        }
        int steps = n;
        int q = (i - warmup) * 4 / (nturns - warmup);
        if (q > 3) q = 3;
        if (e) {
            series_add(&encode, bp->encode_sec / (steps ? steps : 1));
            series_add(&encode_quart[q], bp->encode_sec / (steps ? steps : 1));
        }
        if (plan == PLAN_SEND && n == 1) {
            series_add(&send_turn[e], overhead);
            series_add(&all_steps, overhead);
            series_add(&send_pre[e], bp->enter[0] - a);
            series_add(&send_post[e], b - bp->leave[0]);
            series_add(&quart[e][q], overhead);
            if (e) series_add(&with_encode, overhead + bp->encode_sec);
        } else if (n == 2) {
            /* The search step: applying the search call (and running the search),
             * committing, and preparing the next request. */
            double step1 = bp->enter[1] - bp->leave[0] + (bp->enter[0] - a);
            series_add(plan == PLAN_CONV_SEARCH ? &conv_turn : &arch_turn, overhead);
            series_add(plan == PLAN_CONV_SEARCH ? &conv_step : &arch_step, step1);
            series_add(&all_steps, step1);
            series_add(&all_steps, b - bp->leave[1]);
        }
    }
    double bench_sec = bench_now() - bench_t0;
    int final_queue = agent->queue.count;

    /* Components of a step, measured alone on the final (full) context. */
    series c_system = {0}, c_tools = {0}, c_tx = {0};
    for (int i = 0; i < 300; i++) {
        buf sys = BUF_INIT;
        mg_context_usage u;
        double a = bench_now();
        context_system_message(agent, &sys, &u);
        double b = bench_now();
        char *tools = json_dumps(agent->tools, JSON_COMPACT);
        double c = bench_now();
        if (store_begin(agent->store, &err) || agent_save_state(agent, &err) ||
            store_commit(agent->store, &err))
            die("saving state", &err);
        double d = bench_now();
        free(tools);
        buf_free(&sys);
        series_add(&c_system, b - a);
        series_add(&c_tools, c - b);
        series_add(&c_tx, d - c);
    }

    trim_context(agent);
    int64_t recall_total = agent->recall_count, archival_total = agent->archival_count;
    mg_agent_free(agent);
    int full_count = make_full_agent(store, &cfg, 0.6);
    mg_store_close(store);

    printf("  turns: %d in %.2f s; in-context queue grew to %d messages (largest request %.0f KB "
           "as JSON); %d flush turn(s); %d events\n",
           nturns, bench_sec, max_queue, (double)max_request / 1024, flushes, events);
    if (skipped_searches)
        printf(
            "  conversation_search budget (%.0f s) spent: %d search turn(s) ran as plain turns\n",
            search_budget, skipped_searches);
    printf("step overhead (mg_agent_send minus time inside the provider), ms:\n");
    print_row("plain turn = 1 step, instant provider", &send_turn[0]);
    print_row("  before the LLM call (event, check, build)", &send_pre[0]);
    print_row("  after the LLM call (apply, commit, events)", &send_post[0]);
    print_row("plain turn, provider encodes (time excluded)", &send_turn[1]);
    print_row("  before the LLM call", &send_pre[1]);
    print_row("  after the LLM call", &send_post[1]);
    print_row("  the same turns, encode time included", &with_encode);
    print_row("conversation_search turn (2 steps)", &conv_turn);
    print_row("  conversation_search step", &conv_step);
    print_row("archival_memory_search turn (2 steps)", &arch_turn);
    print_row("  archival_memory_search step", &arch_step);
    print_row("every step (all kinds of turn)", &all_steps);
    print_row("flush turns (evict + summarize)", &flush_turn);
    print_row("request JSON encode, per call (estimate)", &encode);
    printf("plain turn p50 by quarter of the run (the context grows, then flushes):\n");
    for (int q = 0; q < 4; q++)
        printf("  quarter %d: instant %.3f ms, encoding %.3f ms; encode itself %.3f ms\n", q + 1,
               pct(&quart[0][q], 0.5) * 1e3, pct(&quart[1][q], 0.5) * 1e3,
               pct(&encode_quart[q], 0.5) * 1e3);
    printf("components, alone, on the final %d-message context:\n", final_queue);
    print_row("context_system_message (built 3x per step)", &c_system);
    print_row("json_dumps(tools) (inside each build)", &c_tools);
    print_row("BEGIN + agent_save_state + COMMIT", &c_tx);
    print_row("mg_store_open (existing db)", &open_store);
    print_row("mg_agent_open (big agent, 20 in context)", &open_agent);
    printf("  data dir kept: %s (agent 'big': %lld messages, %lld passages, context trimmed to "
           "the newest ~20)\n",
           dir, (long long)recall_total, (long long)archival_total);
    if (full_count >= 0)
        printf("  agent 'full' made there too: %d messages in context (60%% of the window)\n",
               full_count);

    if (json_path) {
        json_t *out = json_pack(
            "{s:I, s:i, s:i, s:f, s:f, s:f, s:f, s:f, s:i, s:i, s:i, s:I}", "messages",
            (json_int_t)nmessages, "passages", npassages, "turns", nturns - warmup,
            "messages_per_sec", msg_rate, "passages_per_sec", passage_rate, "populate_messages_sec",
            msg_sec, "populate_passages_sec", passage_sec, "store_open_new_ms",
            store_open_new * 1e3, "max_queue", max_queue, "flushes", flushes, "final_queue",
            final_queue, "max_request_bytes", (json_int_t)max_request);
        json_object_set_new(out, "skipped_conv_searches", json_integer(skipped_searches));
        json_object_set_new(out, "plain_turn", summary_json(&send_turn[0]));
        json_object_set_new(out, "plain_pre", summary_json(&send_pre[0]));
        json_object_set_new(out, "plain_post", summary_json(&send_post[0]));
        json_object_set_new(out, "plain_turn_enc", summary_json(&send_turn[1]));
        json_object_set_new(out, "plain_pre_enc", summary_json(&send_pre[1]));
        json_object_set_new(out, "plain_post_enc", summary_json(&send_post[1]));
        json_object_set_new(out, "plain_turn_with_encode", summary_json(&with_encode));
        json_object_set_new(out, "conv_turn", summary_json(&conv_turn));
        json_object_set_new(out, "conv_step", summary_json(&conv_step));
        json_object_set_new(out, "arch_turn", summary_json(&arch_turn));
        json_object_set_new(out, "arch_step", summary_json(&arch_step));
        json_object_set_new(out, "all_steps", summary_json(&all_steps));
        json_object_set_new(out, "flush_turn", summary_json(&flush_turn));
        json_object_set_new(out, "encode", summary_json(&encode));
        json_object_set_new(out, "context_system_message", summary_json(&c_system));
        json_object_set_new(out, "tools_dump", summary_json(&c_tools));
        json_object_set_new(out, "save_state_tx", summary_json(&c_tx));
        json_object_set_new(out, "store_open", summary_json(&open_store));
        json_object_set_new(out, "agent_open", summary_json(&open_agent));
        const char *qnames[] = {"plain_turn_by_quarter", "plain_turn_enc_by_quarter"};
        for (int k = 0; k < 2; k++) {
            json_t *qs = json_array();
            for (int q = 0; q < 4; q++)
                json_array_append_new(qs, summary_json(&quart[k][q]));
            json_object_set_new(out, qnames[k], qs);
        }
        json_t *eq = json_array();
        for (int q = 0; q < 4; q++)
            json_array_append_new(eq, summary_json(&encode_quart[q]));
        json_object_set_new(out, "encode_by_quarter", eq);
        if (json_dump_file(out, json_path, JSON_INDENT(2)) != 0) {
            fprintf(stderr, "bench_step: cannot write %s\n", json_path);
            return 1;
        }
        json_decref(out);
    }

    series *all[] = {&conv_turn,  &conv_step,  &arch_turn,   &arch_step, &encode,
                     &flush_turn, &all_steps,  &with_encode, &c_system,  &c_tools,
                     &c_tx,       &open_store, &open_agent};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        series_free(all[i]);
    for (int k = 0; k < 2; k++) {
        series_free(&send_turn[k]);
        series_free(&send_pre[k]);
        series_free(&send_post[k]);
        for (int q = 0; q < 4; q++)
            series_free(&quart[k][q]);
    }
    for (int q = 0; q < 4; q++)
        series_free(&encode_quart[q]);
    for (int i = 0; i < VOCAB; i++)
        free(vocab[i]);
    return 0;
}
