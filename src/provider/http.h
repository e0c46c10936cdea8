/*
 * http.h - the one HTTP client used by every LLM provider and embedder.
 *
 * A thin layer over libcurl that does the few things every provider needs and
 * none of them should repeat: send a GET or POST with headers and a body,
 * collect the whole response, classify transport failures as worth retrying or
 * not, and retry with exponential backoff and Retry-After. It knows nothing of
 * JSON or of any provider's API; mapping a 401 or a 400 to an mg_status is the
 * caller's job.
 *
 * Headers: the layer adds User-Agent (memgpt/0.1), Accept-Encoding (every
 * encoding libcurl can decode; bodies come back decoded) and, on POST, an
 * empty "Expect:". It does not add Content-Type: callers posting JSON must
 * pass "Content-Type: application/json", or libcurl labels the body
 * application/x-www-form-urlencoded. A header the caller passes wins over the
 * layer's own of the same name.
 *
 * Ownership: everything in an mg_http_request is borrowed for the duration of
 * the call. An mg_http_response is filled by the callee and owned by the
 * caller, who releases it with mg_http_response_free (safe on a response that
 * a failed call left empty, and idempotent).
 *
 * Threads: no state is shared between calls apart from libcurl's process-wide
 * initialisation, which mg_http_global_init performs exactly once however many
 * threads call it. Each call uses its own curl handle, so calls may run
 * concurrently from different threads.
 *
 * Environment (read at each call, never cached):
 *   MEMGPT_HTTP_TIMEOUT   whole-transfer timeout in seconds (default 300),
 *                         used when a request's timeout_ms is 0.
 *   MEMGPT_MAX_RETRIES    total attempts for mg_http_retry_defaults (>= 1).
 *   MEMGPT_RETRY_BASE_MS  first backoff for mg_http_retry_defaults (>= 0).
 * Invalid values are ignored in favour of the defaults.
 */
#ifndef MG_PROVIDER_HTTP_H
#define MG_PROVIDER_HTTP_H

#include <stddef.h>
#include <time.h>

#include "memgpt.h"

/* Largest response body accepted; anything bigger is refused as an error so
 * that a hostile or broken server cannot make us allocate without bound. The
 * limit applies to the decoded body (after gzip), so it also stops zip bombs. */
#define MG_HTTP_MAX_BODY ((size_t)64 * 1024 * 1024)

/* Used when a request's timeout_ms is 0 and MEMGPT_HTTP_TIMEOUT is unset. */
#define MG_HTTP_DEFAULT_TIMEOUT_MS 300000L

/* Upper bound on connection set-up (DNS + TCP + TLS); lowered to the whole
 * timeout when that is shorter. */
#define MG_HTTP_CONNECT_TIMEOUT_MS 10000L

typedef struct mg_http_request {
    const char *method;         /* "GET" or "POST" (required) */
    const char *url;            /* http:// or https:// (required) */
    const char *const *headers; /* NULL-terminated "Name: value" array, may be NULL */
    const char *body;           /* POST body, may be NULL (then body_len must be 0) */
    size_t body_len;
    long timeout_ms;            /* whole-transfer timeout; 0 = MEMGPT_HTTP_TIMEOUT or 300 s */
    const char *capture_header; /* a response header to keep (resp->captured), or NULL */
} mg_http_request;

typedef struct mg_http_response {
    long status;          /* HTTP status, 0 if no response arrived */
    char *body;           /* NUL-terminated (also when empty), owned; NULL if no response.
                             Streamed 2xx bodies are not kept: "" */
    size_t body_len;      /* bytes in body, not counting the NUL */
    double retry_after_s; /* parsed Retry-After header in seconds, -1 if absent or invalid */
    size_t delivered;     /* mg_http_perform_stream: body bytes handed to on_data */
    int cut_off;          /* mg_http_perform_stream: the transfer failed after body bytes
                             were delivered, so it was not retried */
    char *captured;       /* the value of the request's capture_header (trimmed, owned),
                             or NULL when the answer had none */
} mg_http_response;

typedef struct mg_http_retry {
    int max_attempts;   /* total tries, >= 1 (values below 1 are treated as 1) */
    long base_delay_ms; /* first backoff; doubles with every retry */
    long max_delay_ms;  /* cap for the backoff and for a server's Retry-After */
} mg_http_retry;

/* Loads and initialises libcurl for the whole process. Every perform call
 * calls it first; only the first call in the process does anything
 * (pthread_once), so any thread may call it at any time, and a process
 * that makes no request never loads libcurl (util/dynlib.h). */
void mg_http_global_init(void);

/* Fills *r with the defaults: 5 attempts, 500 ms base delay, 60 s cap, with
 * MEMGPT_MAX_RETRIES and MEMGPT_RETRY_BASE_MS overriding the first two. */
void mg_http_retry_defaults(mg_http_retry *r);

/* Makes one attempt. `resp` is always overwritten (never read), so it need not
 * be initialised; `transient` may be NULL.
 *
 * Returns MG_OK when any HTTP response arrived, whatever its status; the body
 * is then a NUL-terminated string owned by resp. On a transport failure
 * returns MG_ERR_PROVIDER with a message naming the method, the URL (without
 * its query string, which may carry an API key) and the cause ("connection
 * refused", "timed out after 5 s", "connection reset", ...), leaves resp empty
 * (status 0, body NULL), and sets *transient to 1 when trying again could help
 * (timeouts, resets, refused connections, empty replies, partial transfers, a
 * DNS lookup that failed only temporarily), else 0. A malformed request
 * (missing URL, unknown method, body_len without body) is MG_ERR_USAGE. */
mg_status mg_http_perform(const mg_http_request *req, mg_http_response *resp, int *transient,
                          mg_error *err);

/* Like mg_http_perform, but retries transient transport failures and the
 * statuses 408, 409, 429, 500, 502, 503, 504 and 529, sleeping between
 * attempts: the server's Retry-After when it sent one, else an exponential
 * backoff with full jitter (mg_http_backoff_ms); either is capped at
 * policy->max_delay_ms. `policy` may be NULL for mg_http_retry_defaults.
 *
 * Returns MG_OK with the last response, whatever its status (a 429 that never
 * went away is still a response; the caller maps it), or MG_ERR_PROVIDER with
 * "<METHOD> <url> failed after N attempts: <cause>" when the last attempt, or
 * a non-transient one, failed in transport. `attempts_out` (may be NULL)
 * receives the number of attempts made. Only one curl handle is used for all
 * attempts, so a connection that survived can be reused. */
mg_status mg_http_perform_retry(const mg_http_request *req, const mg_http_retry *policy,
                                mg_http_response *resp, int *attempts_out, mg_error *err);

/* Receives the body of a 2xx answer as it arrives, in pieces cut wherever
 * the network cut them. Returns 0 to go on; anything else aborts the
 * transfer (the caller keeps its own reason). */
typedef int (*mg_http_data_fn)(const char *data, size_t len, void *user);

/* Largest error (non-2xx) body kept by mg_http_perform_stream; the rest is
 * read and dropped. Error bodies are a few hundred bytes in practice. */
#define MG_HTTP_MAX_ERROR_BODY ((size_t)1024 * 1024)

/* Like mg_http_perform_retry, for streamed answers (Server-Sent Events,
 * JSON lines). The body of a 2xx answer is not collected: each piece goes to
 * on_data as soon as it arrives, and resp->body stays "". Any other status is
 * collected (up to MG_HTTP_MAX_ERROR_BODY) as usual, so the caller can map
 * the error, and retried as mg_http_perform_retry retries it.
 *
 * Retries happen only while nothing has been delivered: once on_data has
 * seen a byte, a retry would deliver the start again. A transport failure
 * after that returns MG_ERR_PROVIDER ("... the stream was cut off after N
 * bytes: <cause>") with resp->status the 2xx status and resp->cut_off set,
 * so the caller can discard what it got and decide itself whether to ask
 * again. If on_data stops the transfer the result is MG_ERR_PROVIDER too,
 * with cut_off clear; the caller knows why it stopped.
 *
 * The timeout works differently from mg_http_perform: a stream may rightly
 * last longer than any whole-transfer limit, so the limit (request
 * timeout_ms, else MEMGPT_HTTP_TIMEOUT, else 300 s; rounded up to whole
 * seconds) is the longest time without receiving a byte. Servers send
 * keep-alive comments while a model thinks; those count as bytes. The total
 * delivered is capped at MG_HTTP_MAX_BODY. */
mg_status mg_http_perform_stream(const mg_http_request *req, const mg_http_retry *policy,
                                 mg_http_data_fn on_data, void *user, mg_http_response *resp,
                                 int *attempts_out, mg_error *err);

/* Frees the body and resets *resp to the empty state. NULL is fine. */
void mg_http_response_free(mg_http_response *resp);

/* Pure: whether an HTTP status is worth retrying (the list above). */
int mg_http_status_retryable(long status);

/* Pure: parses a Retry-After value, either delta-seconds (digits with an
 * optional fraction, such as "2" or "1.5") or an IMF-fixdate such as
 * "Sun, 06 Nov 1994 08:49:37 GMT", which is turned into seconds from `now`
 * (0 when the date is already past). Surrounding blanks are allowed. Returns
 * -1 for anything else, including NULL, negative numbers and the obsolete
 * RFC 850 and asctime date formats. */
double mg_http_parse_retry_after(const char *value, time_t now);

/* Pure: the delay in ms before the 0-based retry number `retry`, given
 * `unit_random` in [0,1): uniform in [0, min(base * 2^retry, max)) ("full
 * jitter"). Never negative, never above max_delay_ms, and free of overflow for
 * any retry number. */
long mg_http_backoff_ms(const mg_http_retry *policy, int retry, double unit_random);

#endif
