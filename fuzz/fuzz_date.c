/*
 * fuzz_date.c - the date parsers: mg_parse_time (util/timeutil.c: the
 * --from/--to of searches, the date arguments of the model's search
 * functions, the server's start_datetime/end_datetime, JSON Lines "time")
 * and the Retry-After parser of the HTTP layer
 * (mg_http_parse_retry_after, provider/http.c).
 *
 * Input: byte 0 even for mg_parse_time, odd for Retry-After; the rest is
 * the text (up to its first NUL, as both read it).
 *
 * Properties of mg_parse_time:
 *  - what memgpt.h documents is read, with the value a reference computed
 *    here from the fields gives (days from the civil date, no timegm):
 *    "YYYY-MM-DD" and "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM|-HH:MM]";
 *    other forms it accepts are extensions, checked only for consistency;
 *  - a bare date's end_of_day is the start of the next day, and changes
 *    nothing for a date-time;
 *  - what it reads, written back by mg_time_iso and read again, is the
 *    same second (from 1970 to 9999, the years it writes as it reads);
 *  - a refusal is MG_ERR_USAGE with a message that is one line of valid
 *    UTF-8, whatever bytes the text held (the message reaches JSON answers).
 * Properties of Retry-After: the delay is -1 or a finite number >= 0; an
 * IMF-fixdate gives the seconds to that moment, the same instant
 * mg_parse_time reads from the equivalent ISO text; a later `now` never
 * gives a longer delay.
 */
#include "fuzz.h"

#include <ctype.h>
#include <math.h>

#include "provider/http.h"
#include "util/text.h"
#include "util/timeutil.h"

/* Days since 1970-01-01 of a proleptic Gregorian date. */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    static const int before[12] = {0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334};
    int64_t days = (y - 1970) * 365;
    for (int64_t k = 1970; k < y; k++)
        days += (k % 4 == 0 && k % 100 != 0) || k % 400 == 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days + before[m - 1] + (m > 2 && leap) + d - 1;
}

static int days_in(int y, int m)
{
    static const int days[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return days[m - 1] + (m == 2 && leap);
}

/* n digits at *p, or -1. */
static int digits(const char **p, int n)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return -1;
        v = v * 10 + (*p)[i] - '0';
    }
    *p += n;
    return v;
}

/* The documented forms only. 1 and *ms set when `s` is one of them. */
static int reference(const char *s, int end_of_day, int64_t *ms)
{
    const char *p = s;
    int y = digits(&p, 4), mo, d, h = 0, mi = 0, sec = 0, frac = 0, off = 0, time = 0;
    if (y < 0 || *p++ != '-' || (mo = digits(&p, 2)) < 0 || *p++ != '-' || (d = digits(&p, 2)) < 0)
        return 0;
    if (*p == 'T') {
        p++;
        time = 1;
        if ((h = digits(&p, 2)) < 0 || *p++ != ':' || (mi = digits(&p, 2)) < 0) return 0;
        if (*p == ':') {
            p++;
            if ((sec = digits(&p, 2)) < 0) return 0;
            if (*p == '.') {
                int n = 0;
                for (p++; isdigit((unsigned char)*p); p++, n++)
                    if (n < 3) frac = frac * 10 + *p - '0';
                if (!n) return 0;
                for (; n < 3; n++)
                    frac *= 10;
            }
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') {
            int sign = *p++ == '-' ? -1 : 1, oh, om;
            if ((oh = digits(&p, 2)) < 0 || *p++ != ':' || (om = digits(&p, 2)) < 0) return 0;
            if (oh > 23 || om > 59) return 0;
            off = sign * (oh * 60 + om);
        }
    }
    if (*p) return 0;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in(y, mo) || h > 23 || mi > 59 ||
        sec > 60)
        return 0;
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - off * 60;
    if (!time && end_of_day) secs += 86400;
    *ms = secs * 1000 + frac;
    return 1;
}

static void check_refusal(const char *text, mg_status st, const mg_error *err)
{
    FZ_CHECK(st == MG_ERR_USAGE && err->code == st, "'%s' refused with status %d", text, st);
    size_t n = strlen(err->message);
    FZ_CHECK(n && mg_utf8_valid(err->message, n), "the refusal is not valid UTF-8: %s",
             err->message);
    for (size_t i = 0; i < n; i++)
        FZ_CHECK((unsigned char)err->message[i] >= 0x20, "the refusal is not one line");
}

static void check_parse_time(const char *text)
{
    int64_t start = 0, end = 0, want;
    mg_error err = {0};
    mg_status st = mg_parse_time(text, 0, &start, &err);
    int documented = reference(text, 0, &want);
    if (documented)
        FZ_CHECK(st == MG_OK && start == want, "'%s': read as %lld (status %d), should be %lld",
                 text, (long long)start, st, (long long)want);
    if (st) {
        check_refusal(text, st, &err);
        FZ_CHECK(mg_parse_time(text, 1, &end, &err) == st, "end_of_day changed the verdict");
        return;
    }
    FZ_CHECK(mg_parse_time(text, 1, &end, &err) == MG_OK, "end_of_day refused '%s'", text);
    int bare = strlen(text) == 10;
    FZ_CHECK(end - start == (bare ? 86400000 : 0), "'%s': end of day is %lld ms after its start",
             text, (long long)(end - start));
    if (reference(text, 1, &want))
        FZ_CHECK(end == want, "'%s' with end_of_day: %lld, should be %lld", text, (long long)end,
                 (long long)want);
    if (start >= 0 && start < 253402300800000) { /* written with a 4-digit year */
        char iso[64];
        int64_t again = 0;
        mg_time_iso(start, iso, sizeof iso);
        FZ_CHECK(mg_parse_time(iso, 0, &again, &err) == MG_OK && again == start - start % 1000,
                 "'%s' read as %lld, written as %s, read back as %lld", text, (long long)start, iso,
                 (long long)again);
    }
}

static void check_retry_after(const char *text)
{
    double d = mg_http_parse_retry_after(text, 0);
    FZ_CHECK(d == -1 || (isfinite(d) && d >= 0), "'%s': a delay of %g", text, d);
    double later = mg_http_parse_retry_after(text, 1700000000);
    FZ_CHECK(later == -1 ? d == -1 : later <= d, "'%s': %g from 0, %g from later", text, d, later);
    /* An IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT", blanks around) and
     * the ISO text of the same instant. */
    const char *s = text;
    while (*s == ' ' || *s == '\t')
        s++;
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    char mon[4] = {0};
    int day, year, h, mi, sec, used = 0;
    if (d < 0 || isdigit((unsigned char)*s) ||
        sscanf(s, "%*3c, %2d %3c %4d %2d:%2d:%2d GMT%n", &day, mon, &year, &h, &mi, &sec, &used) !=
            6 ||
        !used)
        return;
    const char *m = strstr(months, mon);
    if (!m || (m - months) % 3 || year < 1970) return;
    char iso[64];
    snprintf(iso, sizeof iso, "%04d-%02d-%02dT%02d:%02d:%02dZ", year, (int)(m - months) / 3 + 1,
             day, h, mi, sec);
    int64_t ms;
    mg_error err = {0};
    FZ_CHECK(mg_parse_time(iso, 0, &ms, &err) == MG_OK, "'%s' is a Retry-After date, %s is not",
             text, iso);
    FZ_CHECK((double)(ms / 1000) == d, "'%s': %g s from the epoch, %s is %lld", text, d, iso,
             (long long)(ms / 1000));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_input in = {data, size};
    unsigned mode = fz_byte(&in);
    char *text = fz_strndup(in.p, in.n);
    if (mode & 1)
        check_retry_after(text);
    else
        check_parse_time(text);
    free(text);
    return 0;
}
