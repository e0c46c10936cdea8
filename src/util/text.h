/*
 * text.h - UTF-8 checks and safe cutting.
 *
 * Everything stored or sent to a provider must be valid UTF-8 (JSON requires
 * it). Input from users is validated and refused; text from the model or the
 * network is repaired (invalid bytes become U+FFFD) rather than refused, since
 * refusing would lose it.
 */
#ifndef MG_UTIL_TEXT_H
#define MG_UTIL_TEXT_H

#include <stddef.h>

/* 1 if s[0..len) is valid UTF-8 (no overlongs, surrogates or > U+10FFFF). */
int mg_utf8_valid(const char *s, size_t len);

/* A copy of s[0..len) with each invalid sequence replaced by U+FFFD and NUL
 * bytes dropped. Caller frees. */
char *mg_utf8_repair(const char *s, size_t len);

/* A copy of a JSON document from the network, made parseable without
 * changing its structure: invalid UTF-8 becomes U+FFFD, and string escapes
 * that strict parsers refuse (\u0000, lone surrogates) become \ufffd. The
 * structure of JSON is ASCII, so only string contents change. Caller frees. */
char *mg_json_repair(const char *s, size_t len);

/* The largest n <= max_bytes such that s[0..n) does not end inside a UTF-8
 * sequence. */
size_t mg_utf8_cut(const char *s, size_t len, size_t max_bytes);

/* Number of code points in a valid UTF-8 string (the unit of block limits). */
size_t mg_utf8_chars(const char *s);

/* 1 if s is empty or only ASCII white space. */
int mg_text_blank(const char *s);

/* 1 if `needle` occurs in `hay`, ASCII letters compared without case
 * (servers' error texts vary in case). NULL hay: 0. */
int mg_text_contains_ci(const char *hay, const char *needle);

/* The entry of `table` (`count` entries of `stride` bytes, each beginning
 * with a `const char *` prefix) whose prefix is the longest one `s` starts
 * with, or -1. Model tables use it, so "gpt-4o-mini" beats "gpt-4o". */
int mg_longest_prefix(const char *s, const void *table, size_t count, size_t stride);

#endif
