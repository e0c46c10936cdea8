/*
 * text.c - UTF-8 validation, repair and cutting.
 *
 * One decoder, utf8_next, serves all three: it reports the length of a valid
 * sequence at p, or 0 if the bytes there do not start one.
 */
#include "util/text.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util/buf.h"

static size_t utf8_next(const unsigned char *p, size_t avail)
{
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n;
    unsigned cp, min;
    if ((c & 0xE0) == 0xC0)
        n = 2, cp = c & 0x1F, min = 0x80;
    else if ((c & 0xF0) == 0xE0)
        n = 3, cp = c & 0x0F, min = 0x800;
    else if ((c & 0xF8) == 0xF0)
        n = 4, cp = c & 0x07, min = 0x10000;
    else
        return 0;
    if (n > avail) return 0;
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (p[i] & 0x3F);
    }
    if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
    return n;
}

int mg_utf8_valid(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_next(p + i, len - i);
        if (!n) return 0;
        i += n;
    }
    return 1;
}

char *mg_utf8_repair(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    buf out = BUF_INIT;
    size_t i = 0;
    while (i < len) {
        size_t n = utf8_next(p + i, len - i);
        if (n == 1 && p[i] == 0) {
            i++;
        } else if (n) {
            buf_append(&out, s + i, n);
            i += n;
        } else {
            buf_puts(&out, "\xEF\xBF\xBD");
            i++;
        }
    }
    return buf_take(&out);
}

size_t mg_utf8_cut(const char *s, size_t len, size_t max_bytes)
{
    if (len <= max_bytes) return len;
    size_t n = max_bytes;
    /* Step back over continuation bytes to the start of the cut sequence. */
    while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
        n--;
    return n;
}

size_t mg_utf8_chars(const char *s)
{
    size_t count = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) count++;
    return count;
}

int mg_text_blank(const char *s)
{
    for (; s && *s; s++)
        if (!strchr(" \t\r\n\v\f", *s)) return 0;
    return 1;
}

int mg_text_contains_ci(const char *hay, const char *needle)
{
    size_t n = strlen(needle);
    for (; hay && *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return 1;
    return 0;
}

static int hex4(const char *p, unsigned *out)
{
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        unsigned d = c >= '0' && c <= '9'   ? (unsigned)(c - '0')
                     : c >= 'a' && c <= 'f' ? (unsigned)(c - 'a' + 10)
                     : c >= 'A' && c <= 'F' ? (unsigned)(c - 'A' + 10)
                                            : 16;
        if (d == 16) return 0;
        v = v * 16 + d;
    }
    *out = v;
    return 1;
}

char *mg_json_repair(const char *s, size_t len)
{
    char *valid = mg_utf8_repair(s, len);
    buf out = BUF_INIT;
    const char *p = valid;
    while (*p) {
        if (*p != '\\') {
            buf_putc(&out, *p++);
            continue;
        }
        unsigned u, low;
        if (p[1] == 'u' && hex4(p + 2, &u)) {
            int high = u >= 0xD800 && u <= 0xDBFF;
            int paired = high && p[6] == '\\' && p[7] == 'u' && hex4(p + 8, &low) &&
                         low >= 0xDC00 && low <= 0xDFFF;
            if (paired) {
                buf_append(&out, p, 12);
                p += 12;
            } else {
                /* NUL and unpaired surrogates are what strict parsers refuse. */
                int bad = u == 0 || (u >= 0xD800 && u <= 0xDFFF);
                buf_append(&out, bad ? "\\ufffd" : p, 6);
                p += 6;
            }
        } else {
            /* Any other escape is two characters; copying both keeps an
             * escaped backslash from starting a false escape. */
            buf_putc(&out, *p++);
            if (*p) buf_putc(&out, *p++);
        }
    }
    free(valid);
    return buf_take(&out);
}

int mg_longest_prefix(const char *s, const void *table, size_t count, size_t stride)
{
    size_t best_len = 0;
    int best = -1;
    for (size_t i = 0; i < count; i++) {
        const char *prefix;
        memcpy(&prefix, (const char *)table + i * stride, sizeof prefix);
        size_t n = strlen(prefix);
        if (n > best_len && strncmp(s, prefix, n) == 0) {
            best_len = n;
            best = (int)i;
        }
    }
    return best;
}
