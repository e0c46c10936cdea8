/*
 * test_embed.c - the offline lexical embedder, and the pure pieces of
 * batched network embedding (request sizes, reading and checking rows).
 *
 * Quality tests compare similarities rather than fixed numbers, so they
 * survive retuning of the weights (including the caller's word weights of
 * mg_embed_offline_weighted): a morphological or accented variant must
 * beat an unrelated text, a paraphrase sharing words must outrank unrelated
 * sentences. Robustness tests feed junk (invalid UTF-8, random bytes, a 5 MB
 * input, very long tokens) and only require a well-formed result. The
 * throughput test prints MB/s and asserts nothing: it depends on the build
 * type and the machine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "embed/embed.h"
#include "embed/embedder.h"
#include "embed/vec.h"
#include "provider/openai.h"
#include "util/err.h"

#define DIM MG_EMBED_OFFLINE_DIM

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t rng_next(void)
{
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

static int embed(const char *s, float *out)
{
    return mg_embed_offline(s, strlen(s), out, DIM);
}

static float sim(const char *a, const char *b)
{
    float va[DIM], vb[DIM];
    embed(a, va);
    embed(b, vb);
    return mg_vec_dot(va, vb, DIM);
}

/* Every result must be either the zero vector (returned 0) or a finite unit
 * vector (returned 1). */
static void assert_well_formed(const float *v, int dim, int ret)
{
    double ss = 0.0;
    for (int i = 0; i < dim; i++) {
        assert_true(isfinite(v[i]));
        ss += (double)v[i] * v[i];
    }
    if (ret)
        assert_true(fabs(ss - 1.0) < 1e-4);
    else
        assert_true(ss == 0.0);
}

/* A few megabytes of word-like text from a fixed seed: syllables glued into
 * a vocabulary of `vocab` words, with sentence punctuation. */
static char *gen_text(size_t want, int vocab, size_t *len)
{
    static const char *syl[] = {"ka",  "lo", "mi",  "ne", "ru", "sa", "ti", "vo",
                                "ing", "ed", "str", "an", "er", "ou", "pl", "qu"};
    char *t = malloc(want + 64);
    size_t n = 0;
    while (n < want) {
        uint32_t r = rng_next();
        uint32_t w = r % (uint32_t)vocab, x = w * 2654435761u;
        for (uint32_t j = 0; j < 2 + w % 3; j++) {
            const char *p = syl[(x >> (4 * j)) & 15];
            while (*p)
                t[n++] = *p++;
        }
        t[n++] = (r >> 24) % 12 == 0 ? '.' : ' ';
    }
    t[n] = '\0';
    *len = n;
    return t;
}

/* ------------------------------------------------------------------ basic contract */

static void test_deterministic(void **state)
{
    (void)state;
    const char *s =
        "The quick brown fox jumps over the lazy dog; naïve café, 東京タワー 🙂.";
    float a[DIM], b[DIM];
    assert_int_equal(embed(s, a), 1);
    assert_int_equal(embed(s, b), 1);
    assert_memory_equal(a, b, sizeof(a));

    /* Same bytes at another address, not NUL-terminated. */
    size_t n = strlen(s);
    char *copy = malloc(n + 8);
    memcpy(copy, s, n);
    memset(copy + n, 'x', 8);
    assert_int_equal(mg_embed_offline(copy, n, b, DIM), 1);
    assert_memory_equal(a, b, sizeof(a));
    free(copy);
}

static void test_unit_norm(void **state)
{
    (void)state;
    static const char *texts[] = {"a",
                                  "x",
                                  "Hello, world!",
                                  "the the the the",
                                  "42",
                                  "I love sailing and I love boats",
                                  "ÀÉÎÕÜ ßæœ ĳ Łódź"};
    float v[DIM];
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        assert_int_equal(embed(texts[i], v), 1);
        assert_well_formed(v, DIM, 1);
    }
}

static void test_no_features(void **state)
{
    (void)state;
    static const char *texts[] = {"",
                                  " ",
                                  "   \t\n\r  ",
                                  "...!?,;:-()[]{}",
                                  "'",
                                  "\" — … « » ·",
                                  "\xcc\x81\xcc\x81"}; /* lone combining accents */
    float v[DIM];
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        for (int j = 0; j < DIM; j++)
            v[j] = 1.0f;
        assert_int_equal(embed(texts[i], v), 0);
        assert_well_formed(v, DIM, 0);
    }
    for (int j = 0; j < DIM; j++)
        v[j] = 1.0f;
    assert_int_equal(mg_embed_offline(NULL, 0, v, DIM), 0);
    assert_well_formed(v, DIM, 0);
}

static void test_odd_dims(void **state)
{
    (void)state;
    float v[7] = {9, 9, 9, 9, 9, 9, 9};
    assert_int_equal(mg_embed_offline("hello", 5, v, 0), 0);
    assert_true(v[0] == 9.0f); /* dim < 1 writes nothing */
    assert_int_equal(mg_embed_offline("hello", 5, v, 1), 1);
    assert_true(fabsf(fabsf(v[0]) - 1.0f) < 1e-6f);
    assert_int_equal(mg_embed_offline("hello world", 11, v, 7), 1);
    assert_well_formed(v, 7, 1);
}

/* ------------------------------------------------------------------ robustness */

static void test_invalid_utf8(void **state)
{
    (void)state;
    static const char *texts[] = {
        "\xff\xfe\xfd",           /* never valid */
        "abc\xc3",                /* truncated at the end */
        "abc\xe2\x82",            /* truncated 3-byte */
        "\xc0\xaf\xe0\x80\xaf",   /* overlong */
        "\xed\xa0\x80 surrogate", /* UTF-16 surrogate */
        "\xf4\x90\x80\x80 high",  /* above U+10FFFF */
        "\x80\x80\x80 lone continuations \xbf",
        "caf\xc3\xa9\xc3 mixed \xe9t\xe9",
        "don't 's ' dog's '' x'",
    };
    float v[DIM];
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        int r = embed(texts[i], v);
        assert_well_formed(v, DIM, r);
    }
    /* The valid words around invalid bytes still count. */
    assert_true(sim("abc\xff", "abc") > 0.99f);
}

static void test_binary_junk(void **state)
{
    (void)state;
    size_t n = 1u << 20;
    unsigned char *junk = malloc(n);
    float v[DIM];
    for (int round = 0; round < 4; round++) {
        for (size_t i = 0; i < n; i++) {
            unsigned char c = (unsigned char)rng_next();
            /* Round 2 is mostly high bytes, round 3 mostly letters (long tokens). */
            if (round == 2) c |= 0x80;
            if (round == 3) c = (unsigned char)('a' + c % 26);
            junk[i] = c ? c : 1;
        }
        int r = mg_embed_offline((const char *)junk, n, v, DIM);
        assert_well_formed(v, DIM, r);
    }
    free(junk);
}

static void test_long_tokens(void **state)
{
    (void)state;
    size_t n = 10000;
    char *s = malloc(n + 1);
    memset(s, 'a', n);
    s[n] = '\0';
    float a[DIM], b[DIM];
    assert_int_equal(embed(s, a), 1);
    assert_well_formed(a, DIM, 1);
    s[n - 1] = 'b'; /* differs only after the kept prefix: still a different word */
    assert_int_equal(embed(s, b), 1);
    assert_true(mg_vec_dot(a, b, DIM) < 0.999f);

    /* A long run of multi-byte letters cut at the prefix limit. */
    for (size_t i = 0; i + 2 <= n; i += 2)
        memcpy(s + i, "\xd0\x96", 2); /* Ж */
    assert_int_equal(embed(s, a), 1);
    assert_well_formed(a, DIM, 1);
    free(s);
}

static void test_large_input(void **state)
{
    (void)state;
    size_t len;
    char *t = gen_text(5u << 20, 20000, &len);
    float v[DIM];
    assert_int_equal(mg_embed_offline(t, len, v, DIM), 1);
    assert_well_formed(v, DIM, 1);
    free(t);
}

/* ------------------------------------------------------------------ quality */

static void test_morphology(void **state)
{
    (void)state;
    float related = sim("I love sailing", "we sailed a boat");
    float unrelated = sim("I love sailing", "the tax report is due");
    assert_true(related > unrelated + 0.1f);

    /* Inflections meet at one stem. */
    assert_true(sim("sailing", "sails") > 0.99f);
    assert_true(sim("sailed", "sail") > 0.99f);
    assert_true(sim("running", "runs") > 0.99f);
    assert_true(sim("studies", "studied") > 0.99f);
    assert_true(sim("loving", "love") > 0.99f);
    assert_true(sim("named", "names") > 0.99f);
    assert_true(sim("quickly", "quick") > 0.99f);
    /* Not over-stemmed into each other. */
    assert_true(sim("sing", "sung") < 0.5f);
    assert_true(sim("boat", "boats") > sim("boat", "coats"));
}

static void test_typos_share_fragments(void **state)
{
    (void)state;
    assert_true(sim("receive", "recieve") > sim("receive", "banana") + 0.05f);
    assert_true(sim("grandmother", "grandma") > sim("grandmother", "tomato") + 0.1f);
}

static void test_paraphrase_ranking(void **state)
{
    (void)state;
    const char *query = "What is my dog's name?";
    static const char *related[] = {"Her puppy is called Rex", "the dog is named Rex"};
    static const char *unrelated[] = {
        "The quarterly tax report is due on Friday.", "I bought new running shoes yesterday.",
        "The weather in Paris was rainy all week.",   "My favourite colour is blue.",
        "She is learning to play the piano.",         "What is the capital of Australia?",
    };
    float best_related = -1.0f;
    for (size_t i = 0; i < 2; i++) {
        float s = sim(query, related[i]);
        if (s > best_related) best_related = s;
    }
    for (size_t i = 0; i < sizeof(unrelated) / sizeof(unrelated[0]); i++)
        assert_true(best_related > sim(query, unrelated[i]));

    /* Word order does not hide a shared pair of words. */
    assert_true(sim("the name of my dog", "my dog's name") > 0.9f);
}

static void test_accents(void **state)
{
    (void)state;
    assert_true(sim("café", "cafe") > 0.99f);
    assert_true(sim("CAFÉ", "cafe") > 0.99f);
    assert_true(sim("cafe\xcc\x81", "café") > 0.99f); /* decomposed e + U+0301 */
    assert_true(sim("Crème brûlée", "creme brulee") > 0.99f);
    assert_true(sim("Łódź", "lodz") > 0.99f);
    assert_true(sim("straße", "strasse") > 0.99f);
    assert_true(sim("don’t stop", "don't stop") > 0.99f); /* typographic apostrophe */
    assert_true(sim("ＨＥＬＬＯ", "hello") > 0.99f);      /* fullwidth forms */
    assert_true(sim("МОСКВА", "москва") > 0.99f);         /* Cyrillic case */
}

static void test_cjk_is_not_one_word(void **state)
{
    (void)state;
    /* Without spaces, shared characters must still count. */
    assert_true(sim("東京タワー", "東京駅") > sim("東京タワー", "大阪城"));
}

/* ------------------------------------------------------------------ threads */

typedef struct job {
    const char *text;
    float out[DIM];
} job;

static void *embed_job(void *arg)
{
    job *j = arg;
    for (int i = 0; i < 200; i++)
        mg_embed_offline(j->text, strlen(j->text), j->out, DIM);
    return NULL;
}

/* Word weights for test_weighted: ctx is a NULL-terminated list of
 * {word, weight} pairs; other words weigh 1. */
typedef struct word_weight {
    const char *word;
    float weight;
} word_weight;

static float table_weight(void *ctx, const char *word, size_t n)
{
    for (const word_weight *w = ctx; w->word; w++)
        if (strlen(w->word) == n && memcmp(w->word, word, n) == 0) return w->weight;
    return 1.0f;
}

static float weighted_sim(const char *query, const word_weight *weights, const char *text)
{
    float q[DIM], t[DIM];
    mg_embed_offline_weighted(query, strlen(query), q, DIM, table_weight, (void *)weights);
    embed(text, t);
    return mg_vec_dot(q, t, DIM);
}

static void test_weighted(void **state)
{
    (void)state;
    const char *text = "The red boat sailed past the blue house, twice.";
    float plain[DIM], v[DIM];
    embed(text, plain);

    /* No weights, weights of 1 and invalid weights all give the plain vector. */
    mg_embed_offline_weighted(text, strlen(text), v, DIM, NULL, NULL);
    assert_memory_equal(plain, v, sizeof plain);
    const word_weight ones[] = {{"red", 1.0f}, {NULL, 0}};
    mg_embed_offline_weighted(text, strlen(text), v, DIM, table_weight, (void *)ones);
    assert_memory_equal(plain, v, sizeof plain);
    const word_weight junk[] = {{"red", NAN}, {"boat", -2.0f}, {"house", 1e30f}, {NULL, 0}};
    mg_embed_offline_weighted(text, strlen(text), v, DIM, table_weight, (void *)junk);
    assert_memory_equal(plain, v, sizeof plain);

    /* The word weighed most decides which text the query is closer to. Words
     * reach the callback folded, before stemming. */
    const word_weight red[] = {{"red", 8.0f}, {NULL, 0}};
    const word_weight boats[] = {{"boats", 8.0f}, {NULL, 0}};
    assert_true(weighted_sim("red boats", red, "a red car") >
                weighted_sim("red boats", red, "a blue boat"));
    assert_true(weighted_sim("Red BOATS", boats, "a blue boat") >
                weighted_sim("Red BOATS", boats, "a red car"));

    /* A weight of 0 removes a word: nothing but it shared, nothing left. */
    const word_weight no_red[] = {{"red", 0.0f}, {NULL, 0}};
    assert_true(fabsf(weighted_sim("red boats", no_red, "a red car")) < 0.15f);
    assert_true(weighted_sim("red boats", no_red, "a blue boat") > 0.3f);
}

static void test_thread_safe(void **state)
{
    (void)state;
    static const char *texts[] = {"sailing boats on the lake", "tax reports are due",
                                  "my dog is named Rex", "café au lait"};
    job jobs[4];
    pthread_t th[4];
    for (int i = 0; i < 4; i++) {
        jobs[i].text = texts[i];
        assert_int_equal(pthread_create(&th[i], NULL, embed_job, &jobs[i]), 0);
    }
    for (int i = 0; i < 4; i++)
        pthread_join(th[i], NULL);
    for (int i = 0; i < 4; i++) {
        float v[DIM];
        embed(texts[i], v);
        assert_memory_equal(v, jobs[i].out, sizeof(v));
    }
}

/* ------------------------------------------------------------------ speed (printed) */

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_throughput(void **state)
{
    (void)state;
    size_t len;
    char *t = gen_text(4u << 20, 5000, &len);
    float v[DIM];

    double t0 = now();
    mg_embed_offline(t, len, v, DIM);
    double whole = now() - t0;

    t0 = now();
    size_t chunk = 500, done = 0;
    for (size_t off = 0; off + chunk <= len; off += chunk, done += chunk)
        mg_embed_offline(t + off, chunk, v, DIM);
    double chunks = now() - t0;

    printf("    offline embedder: %.1f MB/s on one %.1f MB text, %.1f MB/s on 500-byte passages\n",
           (double)len / whole / 1e6, (double)len / 1e6, (double)done / chunks / 1e6);
    free(t);
}

/* ------------------------------------------------------ batched requests */

static void test_request_size(void **state)
{
    (void)state;
    const char *t[] = {"aaaa", "bbbb", "cccc", "dddd", "eeee"};
    assert_int_equal(mg_embed_request_size(t, 0, 10, 100), 0);
    assert_int_equal(mg_embed_request_size(t, 5, 10, 100), 5);
    assert_int_equal(mg_embed_request_size(t, 5, 2, 100), 2); /* input cap */
    assert_int_equal(mg_embed_request_size(t, 5, 10, 12), 3); /* 12 bytes: 3 texts */
    assert_int_equal(mg_embed_request_size(t, 5, 10, 11), 2); /* not a byte over */
    assert_int_equal(mg_embed_request_size(t, 5, 10, 2), 1);  /* too long: alone */
    const char *big[] = {"0123456789", "x"};
    assert_int_equal(mg_embed_request_size(big, 2, 10, 4), 1); /* no overflow */
    assert_int_equal(mg_embed_request_size(big + 1, 1, 10, 4), 1);
}

/* Reads `json` as rows for n inputs; the status, with vecs checked either way. */
static mg_status read_rows(const char *json, int n, float **vecs, int *dim, mg_error *err)
{
    json_t *rows = json_loads(json, 0, NULL);
    assert_non_null(rows);
    mg_status st = mg_embed_rows_read(rows, n, "/test", vecs, dim, err);
    json_decref(rows);
    if (st)
        for (int i = 0; i < n; i++)
            assert_null(vecs[i]); /* nothing of a failed batch is handed out */
    return st;
}

static void test_rows_read(void **state)
{
    (void)state;
    float *v[3];
    int dim = 0;
    mg_error err = {0};
    assert_int_equal(read_rows("[[1,2],[3,4.5],[0,-1e-3]]", 3, v, &dim, &err), MG_OK);
    assert_int_equal(dim, 2);
    assert_true(v[1][1] == 4.5f && v[2][1] < 0);
    for (int i = 0; i < 3; i++)
        free(v[i]);
    const struct {
        const char *json;
        const char *says;
    } bad[] = {
        {"[[1,2],[3,4]]", "2 embeddings for 3 inputs"},
        {"[[1,2],[3,4],[5,6],[7,8]]", "4 embeddings for 3 inputs"},
        {"{\"a\":1}", "no list of embeddings"},
        {"[[1,2],[3],[5,6]]", "embedding 1 has 1 dimensions"},
        {"[[1,2],[3,4],[5,6,7]]", "embedding 2 has 3 dimensions"},
        {"[[1,2],[],[5,6]]", "embedding 1 is not a list"},
        {"[[1,2],\"xyz\",[5,6]]", "embedding 1 is not a list"},
        {"[[1,2],[3,\"4\"],[5,6]]", "embedding 1, element 1 is not a finite number"},
        {"[[1,2],[3,null],[5,6]]", "element 1 is not a finite"},
        {"[[1,2],[3,4],[5,1e39]]", "embedding 2, element 1 is not a finite"},
        {"[[1,true],[3,4],[5,6]]", "embedding 0, element 1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mg_err_clear(&err);
        assert_int_equal(read_rows(bad[i].json, 3, v, &dim, &err), MG_ERR_PROVIDER);
        if (!strstr(err.message, bad[i].says))
            fprintf(stderr, "%s -> %s (wanted %s)\n", bad[i].json, err.message, bad[i].says);
        assert_non_null(strstr(err.message, bad[i].says));
        assert_non_null(strstr(err.message, "/test"));
    }
}

/* mg_openai_embedding_rows on `json`; the rows as compact JSON, or NULL. */
static char *openai_rows(const char *json, int n, mg_error *err)
{
    json_t *resp = json_loads(json, 0, NULL), *rows = NULL;
    assert_non_null(resp);
    mg_status st = mg_openai_embedding_rows(resp, n, &rows, err);
    json_decref(resp);
    if (st) {
        assert_null(rows);
        return NULL;
    }
    char *out = json_dumps(rows, JSON_COMPACT);
    json_decref(rows);
    return out;
}

static void test_openai_rows_by_index(void **state)
{
    (void)state;
    mg_error err = {0};
    /* Out of order on the wire: put back in input order by "index". */
    char *rows = openai_rows("{\"data\":[{\"index\":2,\"embedding\":[3]},{\"index\":0,"
                             "\"embedding\":[1]},{\"index\":1,\"embedding\":[2]}]}",
                             3, &err);
    assert_string_equal(rows, "[[1],[2],[3]]");
    free(rows);
    const struct {
        const char *json;
        const char *says;
    } bad[] = {
        {"{\"data\":[{\"index\":0,\"embedding\":[1]}]}", "1 embeddings for 2 inputs"},
        {"{\"data\":{}}", "no data list"},
        {"{}", "no data list"},
        {"{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":0,\"embedding\":[2]}]}",
         "repeats an index"},
        {"{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":2,\"embedding\":[2]}]}",
         "out of range"},
        {"{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":-1,\"embedding\":[2]}]}",
         "out of range"},
        {"{\"data\":[{\"index\":0,\"embedding\":[1]},{\"embedding\":[2]}]}", "no integer index"},
        {"{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":\"1\",\"embedding\":[2]}]}",
         "no integer index"},
        {"{\"data\":[{\"index\":0,\"embedding\":[1]},{\"index\":1,\"embedding\":\"AAAA\"}]}",
         "no embedding list"},
        {"{\"data\":[{\"index\":0,\"embedding\":[1]},7]}", "no integer index"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        mg_err_clear(&err);
        assert_null(openai_rows(bad[i].json, 2, &err));
        if (!strstr(err.message, bad[i].says))
            fprintf(stderr, "%s -> %s (wanted %s)\n", bad[i].json, err.message, bad[i].says);
        assert_non_null(strstr(err.message, bad[i].says));
    }
}

static void test_offline_batch_matches_single(void **state)
{
    (void)state;
    const char *texts[] = {"the river keeper", "a lantern in winter", "", "copper violet"};
    float *vecs[4];
    int dim = 0;
    mg_error err = {0};
    assert_int_equal(mg_embed_texts("offline", texts, 4, vecs, &dim, &err), MG_OK);
    assert_int_equal(dim, DIM);
    for (int i = 0; i < 4; i++) {
        float one[DIM];
        mg_embed_offline(texts[i], strlen(texts[i]), one, DIM);
        assert_memory_equal(vecs[i], one, sizeof one);
        free(vecs[i]);
    }
    /* Unknown specs fail before anything is embedded. */
    assert_int_equal(mg_embed_texts("word2vec", texts, 4, vecs, &dim, &err), MG_ERR_USAGE);
    for (int i = 0; i < 4; i++)
        assert_null(vecs[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_deterministic),
        cmocka_unit_test(test_unit_norm),
        cmocka_unit_test(test_no_features),
        cmocka_unit_test(test_odd_dims),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_binary_junk),
        cmocka_unit_test(test_long_tokens),
        cmocka_unit_test(test_large_input),
        cmocka_unit_test(test_morphology),
        cmocka_unit_test(test_typos_share_fragments),
        cmocka_unit_test(test_paraphrase_ranking),
        cmocka_unit_test(test_accents),
        cmocka_unit_test(test_cjk_is_not_one_word),
        cmocka_unit_test(test_weighted),
        cmocka_unit_test(test_thread_safe),
        cmocka_unit_test(test_throughput),
        cmocka_unit_test(test_request_size),
        cmocka_unit_test(test_rows_read),
        cmocka_unit_test(test_openai_rows_by_index),
        cmocka_unit_test(test_offline_batch_matches_single),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
