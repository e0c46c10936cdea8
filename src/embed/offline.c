/*
 * offline.c - a lexical embedder that needs no network and no model.
 *
 * Archival search must work on a fresh install with no API key, so the
 * default embedder maps text to a vector using nothing but the text. It is a
 * "feature hashing" embedder: the text is broken into features (word stems,
 * pairs of neighbouring words, character fragments of words), each feature is
 * hashed to one of `dim` buckets with a pseudo-random sign, and the bucket
 * values are summed and L2-normalized. Two texts that share features then
 * have a positive dot product in proportion to how much they share, which is
 * what a cosine ranking wants. It cannot know that a puppy is a dog; it does
 * know that "sailed" and "sailing" are the same word, that "café" is "cafe",
 * and that "recieve" is almost "receive".
 *
 * The pipeline, in the order a byte meets it:
 *
 *  1. Tokenizing. UTF-8 is decoded leniently (an invalid byte is a separator).
 *     ASCII letters and digits are word characters, folded to lower case.
 *     Latin-1 and Latin Extended-A letters fold to their unaccented base
 *     ("é" -> "e", "ß" -> "ss"), and combining accents are dropped, so both
 *     composed and decomposed "café" become "cafe". Greek and Cyrillic capitals
 *     are lower-cased. Han ideographs, kana and emoji are one-character words,
 *     because those scripts do not put spaces between words and the word-pair
 *     features below then act as character bigrams. Other code points are word
 *     characters as they are. An apostrophe inside a word is dropped ("don't"
 *     -> "dont") except a possessive "'s", which is removed ("dog's" -> "dog").
 *
 *  2. Per distinct word, once. Each word is looked up in a hash table of the
 *     words seen so far; only the first occurrence pays for the stopword test
 *     (binary search in a built-in list), the stemmer and the hashing of the
 *     stem. The stemmer is deliberately light: plurals, -ing, -ed, -ly, -ies,
 *     a final silent e, and doubled consonants, so "sails", "sailing",
 *     "sailed" and "sail" meet at "sail" and "loving", "loved", "love" at
 *     "lov". Its mistakes are mostly over-merging, and since the same rules
 *     apply to query and passage that rarely hurts a ranking.
 *
 *  3. Features. A stem is the main feature. Stopwords keep a small weight,
 *     enough to break ties between otherwise unrelated texts but never enough
 *     to make "the" a match. Adjacent content words (stopwords skipped, the
 *     chain broken at sentence punctuation) form an unordered pair feature, so
 *     "my dog's name" and "the name of my dog" share (dog, name). Each stem
 *     also contributes its character 3- and 4-grams with boundary markers,
 *     which catch typos and morphology the stemmer misses; their weights are
 *     scaled by 1/sqrt(count) so a long word does not outweigh a short one.
 *
 *  4. Counting. Stems ("sail" + "sails" + "sailing" together) and pairs are
 *     counted, and each is weighted by 1 + ln(count), so a word repeated ten
 *     times counts about three times, not ten: repetition says a passage is
 *     about something, but not ten times as much. A stem's n-grams share its
 *     weight.
 *
 *  5. Hashing into the vector. Each feature's 64-bit hash is cut into three
 *     21-bit probes; each picks a bucket (multiply-shift, so any dim works)
 *     and a sign, and carries 1/sqrt(3) of the weight. Random signs make
 *     collisions cancel in expectation instead of always inflating
 *     similarity, and three probes make a single collision cost a third of a
 *     match instead of a whole one. At 384 dimensions collisions are common
 *     (a short query and a passage share a bucket by chance for several
 *     feature pairs), and without the probes the occasional unlucky one
 *     outranks a true match; measured, three probes cut such misrankings.
 *
 * Word weights. The text alone cannot say which of its words are rare in the
 * memory being searched, and a cosine without that knowledge lets a name that
 * occurs in half the passages weigh as much as the one word that finds the
 * answer. mg_embed_offline_weighted therefore takes a weight per distinct
 * word from the caller (archival search passes inverse document frequencies
 * from its full-text index) and scales the word's stem and n-grams by it, and
 * a word pair by the geometric mean of its two words' weights. Only queries
 * are weighted: stored vectors stay independent of what else is stored, so
 * they never go stale, and the weights still act on every dot product.
 *
 * Speed comes from keeping the per-token path short (fold, FNV-1a hash while
 * copying, a probe of the word table, and one of the pair table for content
 * words) and doing everything else once per distinct word or feature: the
 * stopword search and stemmer when a word is first seen, the n-grams and
 * buckets at the end. There is no allocation per token: three hash tables,
 * the stem records and the stems' bytes are growable arrays freed before
 * returning. Measured at -O2 on generated text, about 33 MB/s for 500-byte
 * passages and 30-100 MB/s for multi-megabyte inputs (depending on how many
 * distinct words they have, i.e. on cache misses in the tables).
 *
 * Determinism: the only floating-point operations are +, -, *, / and sqrt,
 * which IEEE 754 defines exactly, in an order fixed by the input; ln() is
 * computed by a short series here instead of libm, whose last bits differ
 * between implementations. Vectors therefore match across machines.
 */
#include "embed/embed.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"

/* ------------------------------------------------------------------ tunables */

/* Relative feature weights, chosen by measuring retrieval (mean reciprocal
 * rank) on a hand-made set of memory-style passages and queries with
 * inflections, typos, accents and 600 distractors, averaged over hash seeds.
 * Stronger n-grams helped that set further, but at the cost of matching
 * unrelated words that merely share fragments; the block's norm equal to
 * the stem's is the point where whole words still dominate. */
#define W_STEM  1.0f /* a content word's stem */
#define W_GRAMS 1.0f /* norm of all character n-grams of one stem together */
#define W_PAIR  0.3f /* two adjacent content words, unordered */
#define W_STOP  0.1f /* a stopword: a tie-breaker, never a match */

/* Buckets per feature (see add_feature); at most 3, which use 63 hash bits. */
#define PROBES      3
#define PROBE_SCALE 0.57735026918962576f /* 1 / sqrt(PROBES): keeps weights' energy */

/* Bytes of a word kept for stemming and n-grams. Longer tokens (URLs, hashes,
 * base64) are still hashed whole for their unigram, but only their first
 * MAX_WORD bytes yield n-grams; 64 covers every dictionary word. */
#define MAX_WORD 64

/* ------------------------------------------------------------------ hashing */

/* FNV-1a is used only to fold bytes into 64 bits while they are copied; its
 * weak avalanche is fixed by mix64 before any bit is used. Distinct seeds keep
 * the different feature kinds in separate hash families. */
#define FNV_PRIME 0x100000001b3ULL
#define SEED_WORD 0xcbf29ce484222325ULL
#define SEED_STEM 0x84222325cbf29ce4ULL
#define SEED_GRAM 0x6a09e667f3bcc908ULL
#define SEED_PAIR 0xbb67ae8584caa73bULL

/* A bijective 64-bit finalizer (xor-shift / multiply rounds): every input bit
 * affects every output bit. */
static inline uint64_t mix64(uint64_t x)
{
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
}

static inline uint64_t fnv_byte(uint64_t h, unsigned char c)
{
    return (h ^ c) * FNV_PRIME;
}

static uint64_t hash_bytes(uint64_t seed, const unsigned char *p, size_t n)
{
    uint64_t h = seed;
    for (size_t i = 0; i < n; i++)
        h = fnv_byte(h, p[i]);
    return mix64(h ^ n);
}

/* ------------------------------------------------------------------ counting table */

/* One distinct key seen in the text, with either a count or a 1-based index
 * into the stem records (0: not assigned yet), depending on the table. Key 0
 * marks a free slot, so real keys are never 0 (see nonzero()). */
typedef struct slot {
    uint64_t key;
    uint32_t count;
    uint32_t val;
} slot;

/* Open addressing with linear probing over a power-of-two array, kept at most
 * 3/4 full. Keys are already well mixed, so the low bits index directly. */
typedef struct table {
    slot *slots;
    size_t mask;
    size_t used;
} table;

static inline uint64_t nonzero(uint64_t key)
{
    return key ? key : 1;
}

static void table_init(table *t, size_t cap)
{
    size_t n = 64;
    while (n < cap)
        n <<= 1;
    t->slots = mg_xcalloc(n, sizeof(slot));
    t->mask = n - 1;
    t->used = 0;
}

static void table_grow(table *t)
{
    size_t oldn = t->mask + 1, n = oldn * 2;
    slot *old = t->slots;

    t->slots = mg_xcalloc(n, sizeof(slot));
    t->mask = n - 1;
    for (size_t i = 0; i < oldn; i++) {
        if (!old[i].key) continue;
        size_t j = old[i].key & t->mask;
        while (t->slots[j].key)
            j = (j + 1) & t->mask;
        t->slots[j] = old[i];
    }
    free(old);
}

/* Returns the slot for key, inserting an empty one (count 0) if absent. The
 * pointer is valid until the next table_get. */
static slot *table_get(table *t, uint64_t key)
{
    size_t i = key & t->mask;
    for (;;) {
        slot *s = &t->slots[i];
        if (s->key == key) return s;
        if (!s->key) break;
        i = (i + 1) & t->mask;
    }
    if ((t->used + 1) * 4 > (t->mask + 1) * 3) {
        table_grow(t);
        return table_get(t, key);
    }
    t->used++;
    t->slots[i].key = key;
    return &t->slots[i];
}

/* ------------------------------------------------------------------ deterministic ln */

/* 1 + ln(count) for count >= 1, using only exactly-rounded IEEE operations:
 * frexp splits off the exponent exactly, and ln of the mantissa comes from
 * the atanh series ln(x) = 2 * (t + t^3/3 + t^5/5 + ...), t = (x-1)/(x+1),
 * which for x in [0.7, 1.42) reaches double precision in ten terms. */
static float tf_weight(uint32_t count)
{
    if (count <= 1) return 1.0f;

    int e;
    double x = frexp((double)count, &e);
    if (x < 0.70710678118654752) {
        x *= 2.0;
        e--;
    }
    double t = (x - 1.0) / (x + 1.0), t2 = t * t, term = t, sum = 0.0;
    for (int k = 1; k <= 19; k += 2) {
        sum += term / k;
        term *= t2;
    }
    return (float)(1.0 + 2.0 * sum + e * 0.69314718055994531);
}

/* ------------------------------------------------------------------ stopwords */

/* Sorted (bsearch) and apostrophe-free, matching what the tokenizer emits. */
static const char *const stopwords[] = {
    "a",       "about",      "above",   "after", "again",  "against", "all",      "also",
    "am",      "an",         "and",     "any",   "are",    "as",      "at",       "be",
    "because", "been",       "before",  "being", "below",  "between", "both",     "but",
    "by",      "can",        "cannot",  "could", "did",    "didnt",   "do",       "does",
    "doesnt",  "doing",      "dont",    "down",  "during", "each",    "few",      "for",
    "from",    "further",    "had",     "has",   "have",   "having",  "he",       "her",
    "here",    "hers",       "herself", "hes",   "him",    "himself", "his",      "how",
    "i",       "if",         "im",      "in",    "into",   "is",      "isnt",     "it",
    "its",     "itself",     "ive",     "just",  "me",     "more",    "most",     "my",
    "myself",  "no",         "nor",     "not",   "now",    "of",      "off",      "on",
    "once",    "only",       "or",      "other", "ought",  "our",     "ours",     "ourselves",
    "out",     "over",       "own",     "same",  "she",    "shes",    "should",   "so",
    "some",    "such",       "than",    "that",  "thats",  "the",     "their",    "theirs",
    "them",    "themselves", "then",    "there", "theres", "these",   "they",     "theyd",
    "theyll",  "theyre",     "theyve",  "this",  "those",  "through", "to",       "too",
    "under",   "until",      "up",      "us",    "very",   "was",     "wasnt",    "we",
    "were",    "weve",       "what",    "whats", "when",   "where",   "which",    "while",
    "who",     "whom",       "why",     "will",  "with",   "wont",    "would",    "wouldnt",
    "you",     "youd",       "youll",   "your",  "youre",  "yours",   "yourself", "yourselves",
    "youve",
};

#define STOPWORD_MAX_LEN 10

/* Compares w[0..n) with the C string s, like strcmp. Inline because it runs
 * about eight times per distinct word and a library call costs more than
 * the usual first-byte decision. */
static inline int word_cmp(const char *w, size_t n, const char *s)
{
    for (size_t i = 0; i < n; i++) {
        if (!s[i] || (unsigned char)w[i] > (unsigned char)s[i]) return 1;
        if ((unsigned char)w[i] < (unsigned char)s[i]) return -1;
    }
    return s[n] ? -1 : 0;
}

int mg_embed_is_stopword(const char *w, size_t n)
{
    if (n > STOPWORD_MAX_LEN) return 0;

    size_t lo = 0, hi = sizeof(stopwords) / sizeof(stopwords[0]);
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int c = word_cmp(w, n, stopwords[mid]);
        if (c == 0) return 1;
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return 0;
}

/* ------------------------------------------------------------------ stemmer */

static int is_vowel(char c)
{
    return c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u' || c == 'y';
}

static int has_vowel(const char *w, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (is_vowel(w[i])) return 1;
    return 0;
}

static int ends_with(const char *w, size_t n, const char *suffix)
{
    size_t k = strlen(suffix);
    return n >= k && memcmp(w + n - k, suffix, k) == 0;
}

/* Strips plural endings. "ss", "us", "is" words ("glass", "status", "basis")
 * are singular already. */
static size_t stem_plural(char *w, size_t n)
{
    if (ends_with(w, n, "sses")) return n - 2;
    if (n > 4 && ends_with(w, n, "ies")) {
        w[n - 3] = 'y';
        return n - 2;
    }
    if (w[n - 1] == 's' && !ends_with(w, n, "ss") && !ends_with(w, n, "us") &&
        !ends_with(w, n, "is"))
        return n - 1;
    return n;
}

/* Strips -ing/-ed/-ly. The remaining stem must keep three letters and a vowel,
 * which protects "sing", "thing", "bring", "need", "red", "only". Sets *verb
 * when a verb ending went, because only then can a doubled consonant be an
 * artefact of inflection ("running" -> "runn" -> "run"). */
static size_t stem_suffix(char *w, size_t n, int *verb)
{
    *verb = 0;
    if (n > 4 && ends_with(w, n, "ied")) { /* "tried" -> "try"; "skied" pays */
        w[n - 3] = 'y';
        return n - 2;
    }
    if (n > 4 && ends_with(w, n, "eed")) return n - 1; /* "agreed" -> "agree" */
    if (ends_with(w, n, "ing") && n - 3 >= 3 && has_vowel(w, n - 3)) {
        *verb = 1;
        return n - 3;
    }
    if (ends_with(w, n, "ed") && n - 2 >= 3 && has_vowel(w, n - 2)) {
        *verb = 1;
        return n - 2;
    }
    if (n > 5 && ends_with(w, n, "ily")) {
        w[n - 3] = 'y';
        return n - 2;
    }
    /* "apply", "supply" and "multiply" are not adverbs. */
    if (ends_with(w, n, "ly") && n - 2 >= 4 && w[n - 3] != 'p') return n - 2;
    return n;
}

/* Reduces a lower-case a-z word in place; returns the new length. */
static size_t stem(char *w, size_t n)
{
    if (n <= 3) return n;

    int verb;
    n = stem_plural(w, n);
    n = stem_suffix(w, n, &verb);

    /* "stopp" -> "stop", but "fall", "miss" and "buzz" keep their pairs. */
    if (verb && n >= 2 && w[n - 1] == w[n - 2] && !is_vowel(w[n - 1]) && w[n - 1] != 'l' &&
        w[n - 1] != 's' && w[n - 1] != 'z')
        n--;

    /* A final silent e would separate "love" from "lov(ing)". */
    if (n > 3 && w[n - 1] == 'e') n--;
    return n;
}

/* ------------------------------------------------------------------ embedder state */

/* One distinct stem: its feature hash, how often it occurred (summed over all
 * the words that reduce to it), whether it is a stopword, and where its bytes
 * are kept (for n-grams). */
typedef struct stem_rec {
    uint64_t key;
    uint32_t count;
    uint32_t off;
    uint8_t len;
    uint8_t stop;
    float weight; /* the caller's factor (1 without a weight function) */
} stem_rec;

typedef struct embedder {
    table words;   /* token hash -> stem index (slot.val) */
    table stemtab; /* stem hash -> stem index (slot.val) */
    table pairs;   /* pair hash -> count (slot.count) */

    stem_rec *stems; /* distinct stems in order of first appearance */
    size_t nstems, capstems;

    unsigned char *bytes; /* the stems' bytes, back to back */
    size_t nbytes, capbytes;

    uint64_t prev; /* key of the previous content word's stem, for pairs */
    float prev_weight;
    int have_prev;

    mg_embed_weight_fn weight_fn; /* NULL: every word weighs 1 */
    void *weight_ctx;

    /* The token being built: its first MAX_WORD bytes, its full length, the
     * running hash over all of it, and whether it is plain a-z (stemmable). */
    unsigned char tok[MAX_WORD];
    size_t toklen, toktotal;
    uint64_t tokhash;
    int tokplain;
} embedder;

static void tok_reset(embedder *e)
{
    e->toklen = 0;
    e->toktotal = 0;
    e->tokhash = SEED_WORD;
    e->tokplain = 1;
}

static inline void tok_byte(embedder *e, unsigned char c)
{
    if (e->toklen < MAX_WORD) e->tok[e->toklen++] = c;
    e->toktotal++;
    e->tokhash = fnv_byte(e->tokhash, c);
}

/* Appends one character's bytes. A character that does not fit whole is not
 * kept (so the kept prefix stays valid UTF-8) but is still hashed. */
static void tok_bytes(embedder *e, const unsigned char *p, size_t n, int plain)
{
    if (e->toklen + n <= MAX_WORD && e->toklen == e->toktotal) {
        memcpy(e->tok + e->toklen, p, n);
        e->toklen += n;
    }
    for (size_t i = 0; i < n; i++)
        e->tokhash = fnv_byte(e->tokhash, p[i]);
    e->toktotal += n;
    if (!plain) e->tokplain = 0;
}

/* Returns the 1-based index of the stem record for w[0..n) with feature key
 * `key`, creating it (and keeping a copy of the bytes) on first sight. */
static uint32_t stem_intern(embedder *e, uint64_t key, const unsigned char *w, size_t n, int stop,
                            float weight)
{
    slot *s = table_get(&e->stemtab, key);
    if (s->val) {
        /* Words sharing a stem ("sail", "sailing") share the larger weight. */
        stem_rec *old = &e->stems[s->val - 1];
        if (weight > old->weight) old->weight = weight;
        return s->val;
    }

    if (e->nbytes + n > e->capbytes) {
        e->capbytes = e->capbytes ? e->capbytes * 2 : 1024;
        while (e->nbytes + n > e->capbytes)
            e->capbytes *= 2;
        e->bytes = mg_xrealloc(e->bytes, e->capbytes);
    }
    memcpy(e->bytes + e->nbytes, w, n);

    if (e->nstems == e->capstems) {
        e->capstems = e->capstems ? e->capstems * 2 : 64;
        e->stems = mg_xrealloc(e->stems, e->capstems * sizeof(stem_rec));
    }
    stem_rec *r = &e->stems[e->nstems++];
    r->key = key;
    r->count = 0;
    r->off = (uint32_t)e->nbytes;
    r->len = (uint8_t)n;
    r->stop = (uint8_t)stop;
    r->weight = weight;
    e->nbytes += n;
    return s->val = (uint32_t)e->nstems;
}

/* Stems the current token and returns its stem's index. Runs once per
 * distinct token, which is why it can afford the stopword search. */
static uint32_t word_add(embedder *e)
{
    unsigned char w[MAX_WORD];
    size_t n = e->toklen;
    int whole = e->toklen == e->toktotal;
    memcpy(w, e->tok, n);

    int stop = e->tokplain && whole && mg_embed_is_stopword((const char *)w, n);
    float weight = e->weight_fn ? e->weight_fn(e->weight_ctx, (const char *)w, n) : 1.0f;
    if (!(weight >= 0.0f) || weight > 1e6f) weight = 1.0f; /* NaN, negative, absurd */
    if (e->tokplain && whole && !stop) n = stem((char *)w, n);

    /* A token longer than MAX_WORD is not stemmed (its ending is not in w)
     * and is identified by the hash of all of it, not of the kept prefix. */
    uint64_t key = whole ? hash_bytes(SEED_STEM, w, n) : mix64(e->tokhash ^ SEED_STEM);
    return stem_intern(e, nonzero(key), w, n, stop, weight);
}

/* A pair's weight is the geometric mean of its words' weights, kept as the
 * bits of a float in the pair's slot.val. */
static uint32_t pair_weight_bits(const embedder *e, float wa, float wb)
{
    float w = e->weight_fn ? sqrtf(wa * wb) : 1.0f;
    uint32_t bits;
    memcpy(&bits, &w, sizeof bits);
    return bits;
}

static float pair_weight(const slot *s)
{
    float w;
    memcpy(&w, &s->val, sizeof w);
    return w;
}

/* Ends the current token: counts its stem and, for content words, the pair it
 * forms with the previous content word. */
static void tok_finish(embedder *e)
{
    if (!e->toktotal) return;

    slot *s = table_get(&e->words, nonzero(mix64(e->tokhash ^ e->toktotal)));
    if (!s->val) s->val = word_add(e);
    stem_rec *r = &e->stems[s->val - 1];
    r->count++;
    tok_reset(e);
    if (r->stop) return;

    if (e->have_prev) {
        /* Unordered, so "dog's name" and "name of the dog" share a pair. */
        uint64_t a = e->prev < r->key ? e->prev : r->key;
        uint64_t b = e->prev < r->key ? r->key : e->prev;
        uint64_t key = nonzero(mix64((a * 0x9e3779b97f4a7c15ULL + b) ^ SEED_PAIR));
        slot *p = table_get(&e->pairs, key);
        if (!p->count) p->val = pair_weight_bits(e, e->prev_weight, r->weight);
        p->count++;
    }
    e->prev = r->key;
    e->prev_weight = r->weight;
    e->have_prev = 1;
}

/* ------------------------------------------------------------------ characters */

/* What a code point does to tokenizing. */
enum {
    CH_SEP,   /* ends the current word */
    CH_BREAK, /* ends the word and the word-pair chain (sentence end) */
    CH_WORD,  /* part of a word */
    CH_SOLO,  /* a word by itself (ideographs, kana, emoji) */
    CH_APOS,  /* apostrophe: see the tokenizer */
    CH_SKIP,  /* invisible: combining accents, joiners, variation selectors */
};

/* Base letters of U+00C0..U+00FF and U+0100..U+017F. Digits stand for two
 * letters (see fold_digraph), a space for a non-letter (multiplication and
 * division signs). */
static const char latin1_fold[] = "aaaaaa1ceeeeiiiidnooooo ouuuuy23"
                                  "aaaaaa1ceeeeiiiidnooooo ouuuuy2y";
static const char latin_ext_a_fold[] = "aaaaaaccccccccddddeeeeeeeeeegggggggghhhhiiii"
                                       "iiiiii44jjkkkllllllllllnnnnnnnnnoooooo55rrrr"
                                       "rrssssssssttttttuuuuuuuuuuuuwwyyyzzzzzzs";

_Static_assert(sizeof(latin1_fold) == 64 + 1, "latin1_fold covers U+00C0..U+00FF");
_Static_assert(sizeof(latin_ext_a_fold) == 128 + 1, "latin_ext_a_fold covers U+0100..U+017F");

static const char *fold_digraph(char c)
{
    switch (c) {
    case '1':
        return "ae";
    case '2':
        return "th";
    case '3':
        return "ss";
    case '4':
        return "ij";
    case '5':
        return "oe";
    default:
        return NULL;
    }
}

static inline int ascii_word(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static inline int ascii_break(unsigned char c)
{
    return c == '.' || c == '!' || c == '?' || c == ';' || c == ':' || c == '\n';
}

/* Decodes one UTF-8 sequence at p (n >= 1 bytes available). Returns its
 * length and sets *cp, or returns 1 with *cp = UINT32_MAX for a byte that does
 * not start a valid, shortest-form, non-surrogate sequence. */
static size_t utf8_decode(const unsigned char *p, size_t n, uint32_t *cp)
{
    unsigned char c = p[0];
    size_t need;
    uint32_t v, min;

    if (c < 0x80) {
        *cp = c;
        return 1;
    } else if (c >= 0xc2 && c <= 0xdf) {
        need = 2, v = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        need = 3, v = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        need = 4, v = c & 0x07, min = 0x10000;
    } else {
        *cp = UINT32_MAX;
        return 1;
    }
    if (n < need) {
        *cp = UINT32_MAX;
        return 1;
    }
    for (size_t i = 1; i < need; i++) {
        if ((p[i] & 0xc0) != 0x80) {
            *cp = UINT32_MAX;
            return 1;
        }
        v = (v << 6) | (p[i] & 0x3f);
    }
    if (v < min || v > 0x10ffff || (v >= 0xd800 && v <= 0xdfff)) {
        *cp = UINT32_MAX;
        return 1;
    }
    *cp = v;
    return need;
}

static size_t utf8_encode(uint32_t cp, unsigned char *out)
{
    if (cp < 0x80) {
        out[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (unsigned char)(0xc0 | (cp >> 6));
        out[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (unsigned char)(0xe0 | (cp >> 12));
        out[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (unsigned char)(0xf0 | (cp >> 18));
    out[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* Classifies a non-ASCII code point (UINT32_MAX: an invalid byte). For
 * CH_WORD, *lower is the code point to emit, lower-cased where that is cheap
 * to know; U+00C0..U+017F are folded by the caller from the tables above. */
static int classify(uint32_t cp, uint32_t *lower)
{
    *lower = cp;

    if (cp == UINT32_MAX) return CH_SEP;
    if (cp == 0x2019 || cp == 0x02bc) return CH_APOS;    /* right quote, modifier apostrophe */
    if (cp < 0xc0) return cp == 0xad ? CH_SKIP : CH_SEP; /* C1, Latin-1 punctuation */
    if (cp < 0x180) return CH_WORD;                      /* folded by the caller */
    if (cp >= 0x300 && cp <= 0x36f) return CH_SKIP;      /* combining diacritics */
    if (cp >= 0x391 && cp <= 0x3a9 && cp != 0x3a2) {     /* Greek capitals */
        *lower = cp + 0x20;
        return CH_WORD;
    }
    if (cp >= 0x400 && cp <= 0x42f) { /* Cyrillic capitals */
        *lower = cp < 0x410 ? cp + 0x50 : cp + 0x20;
        return CH_WORD;
    }
    if (cp < 0x2000) return CH_WORD;
    if (cp <= 0x206f) {
        if (cp == 0x200c || cp == 0x200d) return CH_SKIP;
        return CH_SEP; /* spaces, dashes, quotes, bullets */
    }
    if (cp >= 0x20a0 && cp <= 0x20cf) return CH_SEP;    /* currency */
    if (cp >= 0x2190 && cp <= 0x2bff) return CH_SEP;    /* arrows .. symbols */
    if (cp >= 0x2e00 && cp <= 0x2e7f) return CH_SEP;    /* punctuation */
    if (cp == 0x3002) return CH_BREAK;                  /* ideographic full stop */
    if (cp >= 0x3000 && cp <= 0x303f) return CH_SEP;    /* CJK punctuation */
    if (cp >= 0x3040 && cp <= 0x30ff) return CH_SOLO;   /* kana */
    if (cp >= 0x3400 && cp <= 0x9fff) return CH_SOLO;   /* CJK ideographs */
    if (cp >= 0xf900 && cp <= 0xfaff) return CH_SOLO;   /* compatibility */
    if (cp >= 0xfe00 && cp <= 0xfe0f) return CH_SKIP;   /* variation sel. */
    if (cp == 0xfeff) return CH_SEP;                    /* BOM */
    if (cp >= 0xff66 && cp <= 0xff9f) return CH_SOLO;   /* halfwidth kana */
    if (cp >= 0x1f3fb && cp <= 0x1f3ff) return CH_SKIP; /* skin tones */
    if (cp >= 0x1f000 && cp <= 0x1faff) return CH_SOLO; /* emoji */
    if (cp >= 0x20000 && cp <= 0x3ffff) return CH_SOLO; /* CJK ext. B.. */
    if (cp >= 0xe0000 && cp <= 0xe007f) return CH_SKIP; /* tags */
    return CH_WORD;
}

/* ------------------------------------------------------------------ tokenizer */

/* Is the character at p[0..n) one that continues a word? Used to look past
 * an apostrophe. */
static int word_at(const unsigned char *p, size_t n)
{
    if (!n) return 0;
    if (p[0] < 0x80) return ascii_word(p[0]);
    uint32_t cp, lower;
    utf8_decode(p, n, &cp);
    if (cp >= 0xff01 && cp <= 0xff5e) return ascii_word((unsigned char)(cp - 0xfee0));
    return classify(cp, &lower) == CH_WORD;
}

/* Handles an apostrophe of `alen` bytes at p, with `rest` bytes after it.
 * Returns how many bytes (apostrophe included) were consumed. */
static size_t on_apostrophe(embedder *e, const unsigned char *p, size_t alen, size_t rest)
{
    const unsigned char *q = p + alen;
    if (e->toktotal && rest >= 1 && (q[0] == 's' || q[0] == 'S') && !word_at(q + 1, rest - 1)) {
        tok_finish(e); /* possessive: "dog's" -> "dog" */
        return alen + 1;
    }
    if (e->toktotal && word_at(q, rest)) return alen; /* "don't" -> "dont" */
    tok_finish(e);
    return alen;
}

/* Feeds one ASCII byte (possibly a fullwidth form mapped to ASCII). */
static inline void on_ascii(embedder *e, unsigned char c)
{
    if (ascii_word(c)) {
        tok_byte(e, (unsigned char)(c >= 'A' && c <= 'Z' ? c + 32 : c));
        e->tokplain &= c > '9';
        return;
    }
    tok_finish(e);
    if (ascii_break(c)) e->have_prev = 0;
}

/* Feeds one decoded non-ASCII code point whose bytes are p[0..n), of class
 * cls and lower-case form `lower` (see classify). */
static void on_code_point(embedder *e, uint32_t cp, int cls, uint32_t lower, const unsigned char *p,
                          size_t n)
{
    switch (cls) {
    case CH_SKIP:
        return;
    case CH_APOS: /* tokenize() routes apostrophes elsewhere; be safe */
    case CH_SEP:
        tok_finish(e);
        return;
    case CH_BREAK:
        tok_finish(e);
        e->have_prev = 0;
        return;
    case CH_SOLO:
        tok_finish(e);
        tok_bytes(e, p, n, 0);
        tok_finish(e);
        return;
    default:
        break;
    }

    if (cp >= 0xc0 && cp < 0x180) {
        char f = cp < 0x100 ? latin1_fold[cp - 0xc0] : latin_ext_a_fold[cp - 0x100];
        const char *two = fold_digraph(f);
        if (f == ' ') {
            tok_finish(e);
        } else if (two) {
            tok_byte(e, (unsigned char)two[0]);
            tok_byte(e, (unsigned char)two[1]);
        } else {
            tok_byte(e, (unsigned char)f);
        }
        return;
    }
    if (lower != cp) {
        unsigned char enc[4];
        tok_bytes(e, enc, utf8_encode(lower, enc), 0);
        return;
    }
    tok_bytes(e, p, n, 0);
}

static void tokenize(embedder *e, const unsigned char *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        unsigned char c = s[i];
        if (c < 0x80) {
            if (c == '\'') {
                i += on_apostrophe(e, s + i, 1, len - i - 1);
                continue;
            }
            on_ascii(e, c);
            i++;
            continue;
        }
        uint32_t cp, lower;
        size_t n = utf8_decode(s + i, len - i, &cp);
        if (cp >= 0xff01 && cp <= 0xff5e) { /* fullwidth ASCII */
            on_ascii(e, (unsigned char)(cp - 0xfee0));
            i += n;
            continue;
        }
        int cls = classify(cp, &lower);
        if (cls == CH_APOS) {
            i += on_apostrophe(e, s + i, n, len - i - n);
            continue;
        }
        on_code_point(e, cp, cls, lower, s + i, n);
        i += n;
    }
    tok_finish(e);
}

/* ------------------------------------------------------------------ into the vector */

/* Adds weight w for the feature with 64-bit hash h, split over PROBES
 * buckets. Each probe takes its own 21 bits of h: 20 choose the bucket by
 * multiply-shift (uniform for any dim up to 2^20, far beyond any useful
 * size) and one the sign. Spreading a feature over several buckets means one
 * unlucky collision adds a third of a feature's similarity, not all of it,
 * which matters most for short queries whose few features decide the rank. */
static inline void add_feature(float *out, int dim, uint64_t h, float w)
{
    /* The sign is a coin flip per probe, so a branch on it would be
     * mispredicted half the time; selecting from a pair is branch-free. */
    const float signed_w[2] = {-w * PROBE_SCALE, w * PROBE_SCALE};
    for (int p = 0; p < PROBES; p++, h >>= 21) {
        uint32_t b = (uint32_t)(((h & 0xfffff) * (uint64_t)(uint32_t)dim) >> 20);
        out[b] += signed_w[(h >> 20) & 1];
    }
}

/* Hash of one character n-gram. Almost all are at most 8 bytes, and packing
 * them into an integer for one mix is several times cheaper than hashing
 * byte by byte. No gram contains a 0 byte, so packing is unambiguous. */
static inline uint64_t gram_hash(const unsigned char *p, size_t n)
{
    if (n > 8) return hash_bytes(SEED_GRAM, p, n);
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return mix64(v ^ SEED_GRAM);
}

/* Adds the character 3- and 4-grams of w[0..n) with boundary markers, sharing
 * `weight` among them (each gets weight / sqrt(count), so the block's norm is
 * about `weight` whatever the word's length). Grams are cut at code point
 * boundaries. Single-character words have none: their unigram says it all. */
static void add_grams(float *out, int dim, const unsigned char *w, size_t n, float weight)
{
    unsigned char pad[MAX_WORD + 2];
    size_t start[MAX_WORD + 3];
    size_t ncp = 0;

    pad[0] = 0x02; /* ^ */
    memcpy(pad + 1, w, n);
    pad[n + 1] = 0x03; /* $ */
    for (size_t i = 0; i < n + 2; i++)
        if ((pad[i] & 0xc0) != 0x80) start[ncp++] = i;
    start[ncp] = n + 2;
    if (ncp < 4) return; /* one character plus two markers */

    size_t grams = (ncp - 2) + (ncp - 3);
    float gw = weight / sqrtf((float)grams);
    for (size_t g = 3; g <= 4; g++) {
        for (size_t i = 0; i + g <= ncp; i++)
            add_feature(out, dim, gram_hash(pad + start[i], start[i + g] - start[i]), gw);
    }
}

/* Turns the counts into weighted features: stems (with their n-grams) in
 * order of first appearance, then pairs in table order. Both orders depend
 * only on the text, so the float sums are reproducible. */
static void emit(const embedder *e, float *out, int dim)
{
    for (size_t i = 0; i < e->nstems; i++) {
        const stem_rec *r = &e->stems[i];
        float tf = tf_weight(r->count) * r->weight;
        if (r->stop) {
            add_feature(out, dim, r->key, W_STOP * tf);
            continue;
        }
        add_feature(out, dim, r->key, W_STEM * tf);
        add_grams(out, dim, e->bytes + r->off, r->len, W_GRAMS * tf);
    }
    for (size_t i = 0; i <= e->pairs.mask; i++) {
        const slot *s = &e->pairs.slots[i];
        if (s->key) add_feature(out, dim, s->key, W_PAIR * tf_weight(s->count) * pair_weight(s));
    }
}

/* ------------------------------------------------------------------ entry point */

static int embed(const char *text, size_t len, float *out, int dim, mg_embed_weight_fn weight,
                 void *ctx)
{
    if (dim < 1) return 0;
    memset(out, 0, sizeof(float) * (size_t)dim);
    if (!text || !len) return 0;

    /* Tables start with room for one entry per 4 bytes of text (at 3/4
     * load, more than the distinct words or pairs of short text), capped so a huge input does not
     * reserve memory its vocabulary may not need; they grow when needed. */
    size_t guess = len / 4 < (1u << 16) ? len / 4 : (1u << 16);
    embedder e;
    memset(&e, 0, sizeof(e));
    table_init(&e.words, guess);
    table_init(&e.stemtab, guess);
    table_init(&e.pairs, guess);
    e.weight_fn = weight;
    e.weight_ctx = ctx;
    tok_reset(&e);

    tokenize(&e, (const unsigned char *)text, len);
    int any = e.nstems > 0;
    if (any) emit(&e, out, dim);

    free(e.words.slots);
    free(e.stemtab.slots);
    free(e.pairs.slots);
    free(e.stems);
    free(e.bytes);
    if (!any) return 0;

    double ss = 0.0;
    for (int i = 0; i < dim; i++)
        ss += (double)out[i] * out[i];
    /* Features can, in principle, cancel exactly in every bucket; report that
     * as "no features" so a 1 always means a unit vector. */
    if (ss == 0.0) return 0;
    double inv = 1.0 / sqrt(ss);
    for (int i = 0; i < dim; i++)
        out[i] = (float)(out[i] * inv);
    return 1;
}

int mg_embed_offline(const char *text, size_t len, float *out, int dim)
{
    return embed(text, len, out, dim, NULL, NULL);
}

int mg_embed_offline_weighted(const char *text, size_t len, float *out, int dim,
                              mg_embed_weight_fn weight, void *ctx)
{
    return embed(text, len, out, dim, weight, ctx);
}
