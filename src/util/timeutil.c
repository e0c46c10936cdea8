/*
 * timeutil.c - clock and formatting; parsing lives in mg_parse_time.
 */
#include "util/timeutil.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/err.h"

int64_t mg_now_ms(void)
{
    const char *fake = getenv("MEMGPT_FAKE_NOW");
    if (fake && *fake) return (int64_t)strtoll(fake, NULL, 10) * 1000;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void to_tm(int64_t ms, struct tm *tm)
{
    time_t secs = (time_t)(ms / 1000);
    gmtime_r(&secs, tm);
}

void mg_time_iso(int64_t ms, char *out, size_t size)
{
    struct tm tm;
    to_tm(ms, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void mg_time_human(int64_t ms, char *out, size_t size)
{
    struct tm tm;
    to_tm(ms, &tm);
    strftime(out, size, "%Y-%m-%d %I:%M:%S %p UTC (%A)", &tm);
}

/* Reads exactly `digits` decimal digits. */
static int read_number(const char **p, int digits, int *out)
{
    int v = 0;
    for (int i = 0; i < digits; i++) {
        if (!isdigit((unsigned char)(*p)[i])) return 0;
        v = v * 10 + ((*p)[i] - '0');
    }
    *p += digits;
    *out = v;
    return 1;
}

static int days_in_month(int year, int month)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    return month == 2 && leap ? 29 : days[month - 1];
}

mg_status mg_parse_time(const char *text, int end_of_day, int64_t *out_ms, mg_error *err)
{
    const char *p = text ? text : "";
    int y, mo, d, h = 0, mi = 0, s = 0, has_time = 0, ms = 0, offset_min = 0;
    if (!read_number(&p, 4, &y) || *p++ != '-' || !read_number(&p, 2, &mo) || *p++ != '-' ||
        !read_number(&p, 2, &d))
        goto bad;
    if (*p == 'T' || *p == ' ') {
        p++;
        if (!read_number(&p, 2, &h) || *p++ != ':' || !read_number(&p, 2, &mi)) goto bad;
        if (*p == ':' && (p++, !read_number(&p, 2, &s))) goto bad;
        if (*p == '.') { /* fractions of a second: milliseconds kept */
            p++;
            int digits = 0;
            for (; *p >= '0' && *p <= '9'; p++, digits++)
                if (digits < 3) ms = ms * 10 + (*p - '0');
            if (!digits) goto bad;
            for (; digits < 3; digits++)
                ms *= 10;
        }
        if (*p == 'Z') {
            p++;
        } else if (*p == '+' || *p == '-') { /* an offset from UTC, [+-]HH:MM or HHMM */
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (!read_number(&p, 2, &oh) || oh > 23) goto bad;
            if (*p == ':') p++;
            if (*p && (!read_number(&p, 2, &om) || om > 59)) goto bad;
            offset_min = sign * (oh * 60 + om);
        }
        has_time = 1;
    }
    if (*p != '\0') goto bad;
    if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 ||
        s > 60)
        goto bad;
    struct tm tm = {0};
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = s;
    int64_t secs = (int64_t)timegm(&tm);
    if (!has_time && end_of_day) secs += 86400;
    *out_ms = (secs - (int64_t)offset_min * 60) * 1000 + ms;
    return MG_OK;
bad:
    return mg_err_set(err, MG_ERR_USAGE,
                      "invalid date '%.64s': expected YYYY-MM-DD or "
                      "YYYY-MM-DDTHH:MM[:SS[.fff]][Z|+HH:MM]",
                      text);
}
