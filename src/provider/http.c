/*
 * http.c - one HTTP layer for every LLM provider and embedder, on libcurl.
 *
 * Every provider speaks the same shape of HTTP: a POST of some JSON, a wait
 * that may last minutes while the model thinks, one JSON answer. What differs
 * is the JSON, which lives elsewhere. What is shared, and lives here, is the
 * part that is easy to get subtly wrong: timeouts, telling a flaky network from
 * a broken request, and retrying politely.
 *
 * A call is an http_call: one curl easy handle configured once from the
 * request, then performed once per attempt. Reusing the handle across
 * attempts lets curl keep a connection that survived, and keeps the per-attempt
 * work to resetting three fields. Nothing is cached between calls, so there is
 * no global state besides libcurl itself: loaded (util/dynlib.h) and
 * initialised on the first call, guarded by pthread_once.
 *
 * Classification. When no HTTP response arrives, we must decide whether trying
 * again could help. The question is answered from two sources: the CURLcode
 * (timed out, empty reply, partial transfer) and the socket's errno (refused,
 * reset, unreachable), which is more precise because the same CURLcode covers
 * both "the peer reset us" and "the TLS certificate is bad". A failed DNS
 * lookup is ambiguous from curl's side, so we ask the resolver again ourselves
 * and only treat "no such name" as final. When a response does arrive the
 * status decides, per the list in http.h; 4xx other than 408/409/429 are the
 * caller's mistakes and are never retried.
 *
 * Backoff is exponential with full jitter (a uniform draw in [0, cap)), which
 * spreads out many clients that failed at the same moment better than any
 * fixed schedule. The random numbers come from a splitmix64 seeded per call
 * from the clock, the pid and a stack address, so concurrent calls do not
 * share state or march in step, and rand() is left alone. A server's
 * Retry-After wins over the backoff, within the same cap, because the server
 * knows its own rate limits better than we do.
 *
 * Streams (mg_http_perform_stream) share all of this, with two differences
 * that follow from the body leaving as it arrives. A retry is only safe
 * while the reader has seen nothing: after the first delivered byte a
 * failure is reported as a cut-off stream instead, and the caller (who can
 * throw away what it got) decides. And a whole-transfer timeout would cut a
 * long reply that is going well, so the limit becomes one on silence
 * (curl's low-speed check at one byte per period). Error bodies are still
 * collected, bounded, since the caller needs them to name the error. The
 * status is read inside the write callback: curl has parsed the headers
 * by the time it hands over body bytes.
 *
 * Safety. Only http and https are allowed (a configured file:// URL reads
 * nothing), redirects are never followed (curl would re-send custom key headers
 * such as x-api-key to whatever host a redirect names), bodies are capped at
 * MG_HTTP_MAX_BODY after decompression, and error messages drop the URL's
 * query string, where some providers put the API key.
 */
#include "provider/http.h"

#include <curl/curl.h>
#include <errno.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "util/buf.h"
#include "util/dynlib.h"
#include "util/err.h"

#define USER_AGENT "memgpt/0.1"

/* No delay is ever longer than a day. Beyond keeping sleeps sane, this keeps
 * every millisecond count exactly representable as a double, so the jitter
 * arithmetic cannot overflow a long. */
#define MAX_SANE_DELAY_MS (24L * 3600 * 1000)

/* ------------------------------------------------------------ global init */

/* The libcurl functions used here, loaded on first use (util/dynlib.h says
 * why); filled once, by global_init_once. Each has the type its header
 * declares, whatever the installed version says. */
static struct {
    __typeof__(&curl_global_init) global_init;
    __typeof__(&curl_easy_init) easy_init;
    __typeof__(&curl_easy_setopt) easy_setopt;
    __typeof__(&curl_easy_perform) easy_perform;
    __typeof__(&curl_easy_getinfo) easy_getinfo;
    __typeof__(&curl_easy_cleanup) easy_cleanup;
    __typeof__(&curl_easy_strerror) easy_strerror;
    __typeof__(&curl_slist_append) slist_append;
    __typeof__(&curl_slist_free_all) slist_free_all;
    __typeof__(&curl_url) url;
    __typeof__(&curl_url_set) url_set;
    __typeof__(&curl_url_get) url_get;
    __typeof__(&curl_url_cleanup) url_cleanup;
    __typeof__(&curl_free) free;
} curl;

static pthread_once_t global_once = PTHREAD_ONCE_INIT;
static CURLcode global_rc = CURLE_FAILED_INIT;
static char load_error[256]; /* why libcurl could not be loaded, if it could not */

static void global_init_once(void)
{
    static const char *const names[] = {
        "curl_global_init",    "curl_easy_init",    "curl_easy_setopt",   "curl_easy_perform",
        "curl_easy_getinfo",   "curl_easy_cleanup", "curl_easy_strerror", "curl_slist_append",
        "curl_slist_free_all", "curl_url",          "curl_url_set",       "curl_url_get",
        "curl_url_cleanup",    "curl_free"};
    void *const slots[] = {&curl.global_init,   &curl.easy_init,    &curl.easy_setopt,
                           &curl.easy_perform,  &curl.easy_getinfo, &curl.easy_cleanup,
                           &curl.easy_strerror, &curl.slist_append, &curl.slist_free_all,
                           &curl.url,           &curl.url_set,      &curl.url_get,
                           &curl.url_cleanup,   &curl.free};
    if (mg_dynlib_open("libcurl.so.4", names, slots, (int)(sizeof names / sizeof *names),
                       load_error, sizeof load_error) == 0)
        global_rc = curl.global_init(CURL_GLOBAL_DEFAULT);
}

void mg_http_global_init(void)
{
    pthread_once(&global_once, global_init_once);
}

struct mg_preload {
    pthread_t thread;
};

static void *preload_main(void *unused)
{
    (void)unused;
    mg_http_global_init();
    return NULL;
}

mg_preload *mg_preload_http(void)
{
    mg_preload *p = malloc(sizeof *p);
    if (p && pthread_create(&p->thread, NULL, preload_main, NULL) == 0) return p;
    free(p);
    return NULL;
}

void mg_preload_finish(mg_preload *p)
{
    if (!p) return;
    pthread_join(p->thread, NULL);
    free(p);
}

/* ------------------------------------------------------- small parsers */

static int is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Parses exactly [s, s+n) as digits with an optional ".digits" fraction.
 * Hand-written rather than strtod because strtod follows the locale's decimal
 * separator (the CLI may call setlocale) and accepts hex, exponents and "inf".
 * Huge values saturate at 1e15 instead of growing to infinity. Returns -1 if
 * the text is not such a number. */
static double parse_decimal(const char *s, size_t n)
{
    const char *end = s + n;
    double value = 0;
    int digits = 0;
    while (s < end && is_digit(*s)) {
        if (value < 1e15) value = value * 10 + (*s - '0');
        s++, digits++;
    }
    if (!digits) return -1;
    if (s < end && *s == '.') {
        double scale = 1;
        int frac = 0;
        for (s++; s < end && is_digit(*s); s++, frac++) {
            scale /= 10;
            value += (*s - '0') * scale;
        }
        if (!frac) return -1;
    }
    return s == end ? value : -1;
}

/* Reads a two- or four-digit field already known to be digits. */
static int digits_value(const char *s, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's
 * algorithm), so the date parser needs neither timegm nor the TZ variable. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int days_in_month(int year, int month)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return days[month - 1] + (month == 2 && leap);
}

/* Index (0-based) of the three-letter name at s in a packed list, or -1. */
static int name_index(const char *list, const char *s)
{
    for (int i = 0; list[i * 3]; i++)
        if (memcmp(list + i * 3, s, 3) == 0) return i;
    return -1;
}

/* Parses exactly an IMF-fixdate, "Sun, 06 Nov 1994 08:49:37 GMT", into seconds
 * since the epoch. The shape is checked against a mask first ('a' any letter,
 * 'd' a digit, anything else literal) so the field reads below cannot wander.
 * Returns 0 on success, -1 if the text is not a valid date. */
static int parse_imf_fixdate(const char *s, size_t n, int64_t *out)
{
    static const char mask[] = "aaa, dd aaa dddd dd:dd:dd GMT";
    if (n != sizeof mask - 1) return -1;
    for (size_t i = 0; i < n; i++) {
        if (mask[i] == 'd' && !is_digit(s[i])) return -1;
        if (mask[i] != 'a' && mask[i] != 'd' && mask[i] != s[i]) return -1;
    }
    if (name_index("MonTueWedThuFriSatSun", s) < 0) return -1;
    int month = name_index("JanFebMarAprMayJunJulAugSepOctNovDec", s + 8) + 1;
    int day = digits_value(s + 5, 2), year = digits_value(s + 12, 4);
    int hour = digits_value(s + 17, 2), min = digits_value(s + 20, 2);
    int sec = digits_value(s + 23, 2);
    if (month < 1 || day < 1 || day > days_in_month(year, month)) return -1;
    if (hour > 23 || min > 59 || sec > 60) return -1; /* 60: a leap second */
    *out = days_from_civil(year, month, day) * 86400 + hour * 3600 + min * 60 + sec;
    return 0;
}

/* mg_http_parse_retry_after on a span that need not be NUL-terminated, so the
 * header callback can parse curl's buffer in place. */
static double parse_retry_after_span(const char *s, size_t n, time_t now)
{
    while (n && is_blank(*s))
        s++, n--;
    while (n && is_blank(s[n - 1]))
        n--;
    if (!n) return -1;
    if (is_digit(*s)) return parse_decimal(s, n);
    int64_t when;
    if (parse_imf_fixdate(s, n, &when) < 0) return -1;
    return when > (int64_t)now ? (double)(when - (int64_t)now) : 0;
}

double mg_http_parse_retry_after(const char *value, time_t now)
{
    return value ? parse_retry_after_span(value, strlen(value), now) : -1;
}

/* --------------------------------------------------------- environment */

/* An integer environment variable within [min, max], else `fallback`. */
static long env_long(const char *name, long min, long max, long fallback)
{
    const char *s = getenv(name);
    if (!s || !*s) return fallback;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || v < min || v > max) return fallback;
    return v;
}

/* MEMGPT_HTTP_TIMEOUT is in seconds, possibly fractional ("0.5"), because
 * that is how people think about timeouts; curl wants milliseconds. */
static long env_timeout_ms(void)
{
    const char *s = getenv("MEMGPT_HTTP_TIMEOUT");
    double secs = s ? parse_decimal(s, strlen(s)) : -1;
    if (secs <= 0) return MG_HTTP_DEFAULT_TIMEOUT_MS;
    double ms = secs * 1000;
    if (ms < 1) return 1;
    return ms > MAX_SANE_DELAY_MS ? MAX_SANE_DELAY_MS : (long)ms;
}

void mg_http_retry_defaults(mg_http_retry *r)
{
    r->max_attempts = (int)env_long("MEMGPT_MAX_RETRIES", 1, 1000, 5);
    r->base_delay_ms = env_long("MEMGPT_RETRY_BASE_MS", 0, MAX_SANE_DELAY_MS, 500);
    r->max_delay_ms = 60000;
}

/* ------------------------------------------------------------- backoff */

int mg_http_status_retryable(long status)
{
    switch (status) {
    case 408: /* request timeout */
    case 409: /* conflict: providers use it for "try again" on concurrent use */
    case 429: /* rate limited */
    case 500:
    case 502:
    case 503:
    case 504:
    case 529: /* Anthropic: overloaded */
        return 1;
    default:
        return 0;
    }
}

static long clamp_delay(long ms)
{
    if (ms < 0) return 0;
    return ms > MAX_SANE_DELAY_MS ? MAX_SANE_DELAY_MS : ms;
}

long mg_http_backoff_ms(const mg_http_retry *policy, int retry, double unit_random)
{
    long cap = clamp_delay(policy->max_delay_ms);
    long ceiling = clamp_delay(policy->base_delay_ms);
    if (ceiling > cap) ceiling = cap;
    /* Doubling stops at the cap, so huge retry numbers cannot overflow. */
    for (int i = 0; i < retry && ceiling > 0 && ceiling < cap; i++)
        ceiling = ceiling > cap / 2 ? cap : ceiling * 2;
    /* `!(x >= 0)` also catches NaN. */
    if (!(unit_random >= 0) || unit_random >= 1) unit_random = 0;
    return (long)(unit_random * (double)ceiling);
}

/* splitmix64: tiny, fast, and good enough to decorrelate clients. */
static uint64_t rng_next(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

/* A uniform double in [0,1) from the top 53 bits. */
static double rng_unit(uint64_t *state)
{
    return (double)(rng_next(state) >> 11) / 9007199254740992.0;
}

static uint64_t rng_seed(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t seed = (uint64_t)ts.tv_sec ^ ((uint64_t)ts.tv_nsec << 20);
    seed ^= (uint64_t)getpid() << 40;
    seed ^= (uint64_t)(uintptr_t)&ts; /* differs between threads' stacks */
    return seed;
}

/* How long to wait before retry number `retry` (0-based): the server's
 * Retry-After if it gave one, else the jittered backoff; both capped. */
static long retry_delay_ms(const mg_http_retry *policy, int retry, double retry_after_s,
                           uint64_t *rng)
{
    if (retry_after_s < 0) return mg_http_backoff_ms(policy, retry, rng_unit(rng));
    double ms = retry_after_s * 1000;
    long cap = clamp_delay(policy->max_delay_ms);
    return ms >= (double)cap ? cap : (long)ms;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    /* A signal must not cut the wait short: finish the remainder. */
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

/* ------------------------------------------------------------ one call */

/* The state of one mg_http_perform[_retry|_stream] call, shared by its
 * attempts. */
typedef struct http_call {
    const mg_http_request *req;
    CURL *curl;
    struct curl_slist *headers;
    long timeout_ms;         /* whole transfer; for a stream, the longest silence */
    long connect_timeout_ms; /* connection set-up, <= timeout_ms */
    buf body;                /* the response body as it arrives (for a stream: errors only) */
    int too_large;           /* the body passed MG_HTTP_MAX_BODY */
    double retry_after_s;    /* from the current response's headers, -1 if none */
    char *captured;          /* the current response's req->capture_header, or NULL */
    mg_http_data_fn on_data; /* a stream: where 2xx bodies go; NULL = collect them */
    void *user;
    size_t delivered; /* this attempt: bytes handed to on_data */
    int stopped;      /* this attempt: on_data asked to stop */
    char errbuf[CURL_ERROR_SIZE];
} http_call;

/* Length of the URL without query string or fragment: what error messages
 * show, since Gemini-style APIs carry the key as ?key=. */
static int url_shown_len(const char *url)
{
    size_t n = strcspn(url, "?#");
    return n > 400 ? 400 : (int)n;
}

static mg_status validate_request(const mg_http_request *req, mg_http_response *resp, mg_error *err)
{
    if (!req || !resp) return mg_err_set(err, MG_ERR_USAGE, "http: request or response is NULL");
    if (!req->url || !*req->url) return mg_err_set(err, MG_ERR_USAGE, "http: request has no URL");
    if (!req->method || (strcmp(req->method, "GET") && strcmp(req->method, "POST")))
        return mg_err_set(err, MG_ERR_USAGE, "http: method must be GET or POST, not %s",
                          req->method ? req->method : "(null)");
    if (!req->body && req->body_len)
        return mg_err_set(err, MG_ERR_USAGE, "http: body_len is %zu but body is NULL",
                          req->body_len);
    return MG_OK;
}

/* A stream's body: 2xx goes to the reader, anything else is kept (bounded)
 * for the caller's error message. The status is known here: curl has
 * parsed the headers before it hands over body bytes. */
static size_t on_stream_body(http_call *call, char *data, size_t n)
{
    long status = 0;
    curl.easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status < 200 || status >= 300) {
        size_t room = MG_HTTP_MAX_ERROR_BODY - call->body.len;
        buf_append(&call->body, data, n < room ? n : room);
        return n;
    }
    if (n > MG_HTTP_MAX_BODY - call->delivered) {
        call->too_large = 1;
        return 0;
    }
    if (call->on_data(data, n, call->user)) {
        call->stopped = 1;
        return 0;
    }
    call->delivered += n;
    return n;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_call *call = userdata;
    size_t n = size * nmemb;
    if (call->on_data) return on_stream_body(call, data, n);
    if (n > MG_HTTP_MAX_BODY - call->body.len) {
        call->too_large = 1;
        return 0; /* anything short of n aborts the transfer */
    }
    buf_append(&call->body, data, n);
    return n;
}

/* curl hands us one header line at a time, CRLF included. */
static size_t on_header(char *data, size_t size, size_t nmemb, void *userdata)
{
    http_call *call = userdata;
    size_t n = size * nmemb;
    static const char name[] = "Retry-After:";
    size_t name_len = sizeof name - 1;
    /* A status line starts a new response (after an interim 100 Continue):
     * what an earlier response said no longer applies. */
    const char *want = call->req->capture_header;
    size_t want_len = want ? strlen(want) : 0;
    if (n >= 5 && memcmp(data, "HTTP/", 5) == 0) {
        call->retry_after_s = -1;
        free(call->captured);
        call->captured = NULL;
    } else if (n > name_len && strncasecmp(data, name, name_len) == 0) {
        call->retry_after_s = parse_retry_after_span(data + name_len, n - name_len, time(NULL));
    } else if (want && n > want_len && data[want_len] == ':' &&
               strncasecmp(data, want, want_len) == 0 && !call->captured) {
        const char *v = data + want_len + 1;
        size_t len = n - want_len - 1;
        while (len && (*v == ' ' || *v == '\t'))
            v++, len--;
        while (len && (v[len - 1] == '\r' || v[len - 1] == '\n' || v[len - 1] == ' '))
            len--;
        call->captured = mg_xcalloc(len + 1, 1);
        memcpy(call->captured, v, len);
    }
    return n;
}

/* The request's headers, plus "Expect:" on POST: without it curl sends
 * "Expect: 100-continue" for large bodies and then stalls up to a second on
 * servers and proxies that never answer it. */
static mg_status build_headers(http_call *call, mg_error *err)
{
    const char *const *h = call->req->headers;
    for (; h && *h; h++) {
        struct curl_slist *next = curl.slist_append(call->headers, *h);
        if (!next) return mg_err_set(err, MG_ERR_NOMEM, "http: out of memory for headers");
        call->headers = next;
    }
    if (strcmp(call->req->method, "POST") == 0) {
        struct curl_slist *next = curl.slist_append(call->headers, "Expect:");
        if (!next) return mg_err_set(err, MG_ERR_NOMEM, "http: out of memory for headers");
        call->headers = next;
    }
    return MG_OK;
}

static CURLcode set_method(http_call *call)
{
    CURL *c = call->curl;
    const mg_http_request *req = call->req;
    if (strcmp(req->method, "GET") == 0) return curl.easy_setopt(c, CURLOPT_HTTPGET, 1L);
    CURLcode rc = curl.easy_setopt(c, CURLOPT_POST, 1L);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->body_len);
    /* Borrowed, not copied: the request outlives the call. */
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_POSTFIELDS, req->body ? req->body : "");
    return rc;
}

static CURLcode set_options(http_call *call)
{
    CURL *c = call->curl;
    CURLcode rc = curl.easy_setopt(c, CURLOPT_URL, call->req->url);
#if LIBCURL_VERSION_NUM >= 0x075500
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#else
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_PROTOCOLS, (long)(CURLPROTO_HTTP | CURLPROTO_HTTPS));
#endif
    /* Without NOSIGNAL curl times out DNS lookups with SIGALRM, which is not
     * safe in a threaded process. */
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_USERAGENT, USER_AGENT);
    if (call->on_data) {
        /* A stream: no limit on the whole, but on silence (see http.h). */
        long idle_s = (call->timeout_ms + 999) / 1000;
        if (!rc) rc = curl.easy_setopt(c, CURLOPT_TIMEOUT_MS, 0L);
        if (!rc) rc = curl.easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
        if (!rc) rc = curl.easy_setopt(c, CURLOPT_LOW_SPEED_TIME, idle_s);
    } else if (!rc) {
        rc = curl.easy_setopt(c, CURLOPT_TIMEOUT_MS, call->timeout_ms);
    }
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, call->connect_timeout_ms);
    /* A model can think silently for minutes; keepalive probes stop NAT boxes
     * from forgetting the idle connection meanwhile. */
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Refuses early when Content-Length already says too much; on_body
     * enforces the same limit on chunked and compressed bodies. */
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)MG_HTTP_MAX_BODY);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_ERRORBUFFER, call->errbuf);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_WRITEDATA, call);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_HEADERDATA, call);
    if (!rc) rc = curl.easy_setopt(c, CURLOPT_HTTPHEADER, call->headers);
    if (!rc) rc = set_method(call);
    return rc;
}

/* Prepares `call` for `req` (already validated); `on_data` non-NULL makes
 * it a stream. On failure the call is still safe to pass to call_close. */
static mg_status call_open(http_call *call, const mg_http_request *req, mg_http_data_fn on_data,
                           void *user, mg_error *err)
{
    memset(call, 0, sizeof *call);
    call->req = req;
    call->on_data = on_data;
    call->user = user;
    call->retry_after_s = -1;
    call->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : env_timeout_ms();
    call->connect_timeout_ms = call->timeout_ms < MG_HTTP_CONNECT_TIMEOUT_MS
                                   ? call->timeout_ms
                                   : MG_HTTP_CONNECT_TIMEOUT_MS;
    mg_http_global_init();
    if (load_error[0]) return mg_err_set(err, MG_ERR_PROVIDER, "http: %s", load_error);
    if (global_rc != CURLE_OK)
        return mg_err_set(err, MG_ERR_PROVIDER, "http: libcurl failed to initialise: %s",
                          curl.easy_strerror(global_rc));
    call->curl = curl.easy_init();
    if (!call->curl) return mg_err_set(err, MG_ERR_NOMEM, "http: cannot create a curl handle");
    mg_status st = build_headers(call, err);
    if (st != MG_OK) return st;
    CURLcode rc = set_options(call);
    if (rc != CURLE_OK)
        return mg_err_set(err, MG_ERR_PROVIDER, "http: cannot configure libcurl: %s",
                          curl.easy_strerror(rc));
    return MG_OK;
}

static void call_close(http_call *call)
{
    if (call->curl) curl.easy_cleanup(call->curl);
    curl.slist_free_all(call->headers);
    buf_free(&call->body);
    free(call->captured);
    call->captured = NULL;
    call->curl = NULL;
    call->headers = NULL;
}

/* ------------------------------------------------- failure description */

/* Writes a failure's cause, cut short if it must be: a cause is one line in
 * a 512-byte message anyway. vsnprintf rather than snprintf because GCC would
 * (rightly, but uselessly) warn about the cutting. */
static void cause_set(char *cause, size_t n, const char *fmt, ...) MG_PRINTF(3, 4);

static void cause_set(char *cause, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cause, n, fmt, ap);
    va_end(ap);
}

/* Socket errors that name their cause well and are all worth a retry. */
static const char *errno_cause(long e)
{
    switch (e) {
    case ECONNREFUSED:
        return "connection refused";
    case ECONNRESET:
        return "connection reset";
    case ECONNABORTED:
        return "connection aborted";
    case EPIPE:
        return "connection closed while sending";
    case ETIMEDOUT:
        return "connection timed out";
    case ENETUNREACH:
        return "network unreachable";
    case ENETDOWN:
        return "network down";
    case EHOSTUNREACH:
        return "host unreachable";
    default:
        return NULL;
    }
}

/* Fixed descriptions for curl failures not better told by errno. */
static const struct {
    CURLcode code;
    const char *cause;
    int transient;
    int with_detail; /* append curl's own message, which says more */
} curl_causes[] = {
    {CURLE_GOT_NOTHING, "empty reply from server", 1, 0},
    {CURLE_PARTIAL_FILE, "partial transfer: the connection closed early", 1, 0},
    {CURLE_SEND_ERROR, "failed sending the request", 1, 1},
    {CURLE_RECV_ERROR, "failed receiving the response", 1, 1},
    {CURLE_HTTP2, "HTTP/2 error", 1, 1},
    {CURLE_HTTP2_STREAM, "HTTP/2 stream error", 1, 1},
    {CURLE_COULDNT_CONNECT, "could not connect", 1, 1},
    {CURLE_SSL_CONNECT_ERROR, "TLS handshake failed", 0, 1},
    {CURLE_PEER_FAILED_VERIFICATION, "TLS certificate not trusted", 0, 1},
    {CURLE_UNSUPPORTED_PROTOCOL, "unsupported protocol (only http and https)", 0, 0},
    {CURLE_URL_MALFORMAT, "malformed URL", 0, 0},
};

/* The whole-transfer timeout can only fire near timeout_ms, so a failure well
 * before it must be the connect timeout. Asking curl "were we connected?"
 * would be fooled by a reused connection. */
static int describe_timeout(http_call *call, char *cause, size_t n)
{
    if (call->on_data) {
        /* Connection set-up has its own, shorter limit; past it, only the
         * silence limit can fire. */
        cause_set(cause, n, "no data for %ld s", (call->timeout_ms + 999) / 1000);
        return 1;
    }
    curl_off_t total_us = 0;
    curl.easy_getinfo(call->curl, CURLINFO_TOTAL_TIME_T, &total_us);
    long midpoint_ms = (call->connect_timeout_ms + call->timeout_ms) / 2;
    if (call->connect_timeout_ms < call->timeout_ms && total_us / 1000 < midpoint_ms)
        cause_set(cause, n, "could not connect within %g s", call->connect_timeout_ms / 1000.0);
    else
        cause_set(cause, n, "timed out after %g s", call->timeout_ms / 1000.0);
    return 1;
}

/* curl cannot say whether a lookup failed for good or for now, so we ask the
 * resolver once more: only "no such name" is final. This costs one lookup,
 * and only on a path that has already failed. */
static int describe_dns(http_call *call, char *cause, size_t n)
{
    char *host = NULL;
    CURLU *u = curl.url();
    if (u && curl.url_set(u, CURLUPART_URL, call->req->url, 0) == CURLUE_OK)
        curl.url_get(u, CURLUPART_HOST, &host, 0);
    curl.url_cleanup(u);
    if (!host) {
        cause_set(cause, n, "could not resolve host");
        return 1;
    }
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_socktype = SOCK_STREAM;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (res) freeaddrinfo(res);
    int final = rc == EAI_NONAME || rc == EAI_FAIL;
    cause_set(cause, n,
              final ? "unknown host %s" : "could not resolve host %s (DNS failed, temporarily)",
              host);
    curl.free(host);
    return !final;
}

/* Writes the cause of failed attempt `rc` and returns whether it is
 * transient. The order matters: our own size refusal first (curl reports it
 * as a mere write error), then the cases needing more than a table. */
static int describe_failure(http_call *call, CURLcode rc, char *cause, size_t n)
{
    if (call->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
        cause_set(cause, n, "response body larger than %zu MiB", MG_HTTP_MAX_BODY >> 20);
        return 0;
    }
    if (rc == CURLE_OPERATION_TIMEDOUT) return describe_timeout(call, cause, n);
    if (rc == CURLE_COULDNT_RESOLVE_HOST) return describe_dns(call, cause, n);

    long os_errno = 0;
    curl.easy_getinfo(call->curl, CURLINFO_OS_ERRNO, &os_errno);
    const char *by_errno = errno_cause(os_errno);
    if (by_errno) {
        cause_set(cause, n, "%s", by_errno);
        return 1;
    }
    const char *detail = call->errbuf[0] ? call->errbuf : curl.easy_strerror(rc);
    for (size_t i = 0; i < sizeof curl_causes / sizeof curl_causes[0]; i++) {
        if (curl_causes[i].code != rc) continue;
        if (curl_causes[i].with_detail)
            cause_set(cause, n, "%s (%s)", curl_causes[i].cause, detail);
        else
            cause_set(cause, n, "%s", curl_causes[i].cause);
        return curl_causes[i].transient;
    }
    cause_set(cause, n, "%s", detail);
    return 0;
}

/* ------------------------------------------------------------- attempts */

static void response_clear(mg_http_response *resp)
{
    resp->status = 0;
    resp->body = NULL;
    resp->body_len = 0;
    resp->retry_after_s = -1;
    resp->delivered = 0;
    resp->cut_off = 0;
    resp->captured = NULL;
}

/* One attempt on a prepared call. On MG_OK fills resp; otherwise leaves it
 * empty, writes the cause and sets *transient. */
static mg_status call_attempt(http_call *call, mg_http_response *resp, int *transient, char *cause,
                              size_t n)
{
    response_clear(resp);
    buf_reset(&call->body);
    call->too_large = 0;
    call->retry_after_s = -1;
    free(call->captured);
    call->captured = NULL;
    call->errbuf[0] = '\0';
    call->delivered = 0;
    call->stopped = 0;
    *transient = 0;

    CURLcode rc = curl.easy_perform(call->curl);
    resp->delivered = call->delivered;
    if (rc != CURLE_OK && call->stopped) {
        cause_set(cause, n, "the reader stopped the stream");
        return MG_ERR_PROVIDER;
    }
    if (rc != CURLE_OK && call->delivered && !call->too_large) {
        /* Part of the stream is already with the reader: not ours to retry. */
        char why[200];
        describe_failure(call, rc, why, sizeof why);
        curl.easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &resp->status);
        resp->cut_off = 1;
        cause_set(cause, n, "the stream was cut off after %zu bytes: %s", call->delivered, why);
        return MG_ERR_PROVIDER;
    }
    if (rc != CURLE_OK) {
        *transient = describe_failure(call, rc, cause, n);
        return MG_ERR_PROVIDER;
    }
    curl.easy_getinfo(call->curl, CURLINFO_RESPONSE_CODE, &resp->status);
    resp->body_len = call->body.len;
    resp->body = buf_take(&call->body);
    resp->retry_after_s = call->retry_after_s;
    resp->captured = call->captured;
    call->captured = NULL;
    return MG_OK;
}

mg_status mg_http_perform(const mg_http_request *req, mg_http_response *resp, int *transient,
                          mg_error *err)
{
    int ignored;
    if (!transient) transient = &ignored;
    *transient = 0;
    if (resp) response_clear(resp);
    mg_status st = validate_request(req, resp, err);
    if (st != MG_OK) return st;

    http_call call;
    st = call_open(&call, req, NULL, NULL, err);
    if (st == MG_OK) {
        char cause[256];
        st = call_attempt(&call, resp, transient, cause, sizeof cause);
        if (st != MG_OK)
            mg_err_set(err, st, "%s %.*s: %s", req->method, url_shown_len(req->url), req->url,
                       cause);
    }
    call_close(&call);
    return st;
}

/* Whether attempt `st` (with *resp when MG_OK) deserves another try. */
static int should_retry(mg_status st, const mg_http_response *resp, int transient)
{
    return st == MG_OK ? mg_http_status_retryable(resp->status) : transient;
}

/* The attempts of a prepared call, with backoff, until one deserves no
 * retry. Closes the call. */
static mg_status perform_attempts(http_call *call, const mg_http_retry *policy,
                                  mg_http_response *resp, int *attempts_out, mg_error *err)
{
    mg_http_retry defaults;
    if (!policy) {
        mg_http_retry_defaults(&defaults);
        policy = &defaults;
    }
    const mg_http_request *req = call->req;
    int max_attempts = policy->max_attempts < 1 ? 1 : policy->max_attempts;
    int attempts = 0;
    uint64_t rng = rng_seed();
    char cause[256];
    mg_status st;
    for (;;) {
        int transient;
        st = call_attempt(call, resp, &transient, cause, sizeof cause);
        attempts++;
        if (attempts >= max_attempts || resp->delivered || !should_retry(st, resp, transient))
            break;
        double retry_after = st == MG_OK ? resp->retry_after_s : -1;
        mg_http_response_free(resp);
        sleep_ms(retry_delay_ms(policy, attempts - 1, retry_after, &rng));
    }
    call_close(call);
    if (attempts_out) *attempts_out = attempts;
    if (st != MG_OK)
        mg_err_set(err, st, "%s %.*s failed after %d attempt%s: %s", req->method,
                   url_shown_len(req->url), req->url, attempts, attempts == 1 ? "" : "s", cause);
    return st;
}

static mg_status perform(const mg_http_request *req, const mg_http_retry *policy,
                         mg_http_data_fn on_data, void *user, mg_http_response *resp,
                         int *attempts_out, mg_error *err)
{
    if (attempts_out) *attempts_out = 0;
    if (resp) response_clear(resp);
    mg_status st = validate_request(req, resp, err);
    if (st != MG_OK) return st;
    http_call call;
    st = call_open(&call, req, on_data, user, err);
    if (st != MG_OK) {
        call_close(&call);
        return st;
    }
    return perform_attempts(&call, policy, resp, attempts_out, err);
}

mg_status mg_http_perform_retry(const mg_http_request *req, const mg_http_retry *policy,
                                mg_http_response *resp, int *attempts_out, mg_error *err)
{
    return perform(req, policy, NULL, NULL, resp, attempts_out, err);
}

mg_status mg_http_perform_stream(const mg_http_request *req, const mg_http_retry *policy,
                                 mg_http_data_fn on_data, void *user, mg_http_response *resp,
                                 int *attempts_out, mg_error *err)
{
    if (!on_data) return mg_err_set(err, MG_ERR_USAGE, "http: a stream needs a reader");
    return perform(req, policy, on_data, user, resp, attempts_out, err);
}

void mg_http_response_free(mg_http_response *resp)
{
    if (!resp) return;
    free(resp->body);
    free(resp->captured);
    response_clear(resp);
}
