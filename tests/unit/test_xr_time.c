/*
 * core/xr_time.c: time patterns, epoch in UTC+8, ISO text, now.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "xr_test.h"

#include "xr_time.h"


#define DT   "%Y-%m-%d %H:%M:%S"
#define DTL  "%Y-%m-%d %H:%M:%S.%L"
#define D8   "%Y%m%d"


typedef struct {
    const char  *pattern;
    const char  *text;
    int          rc;
    int          year, month, day, hour, min, sec, msec;
    int          has_time, has_msec;
} xr_time_case_t;


#define OK(p, s, y, mo, d, h, mi, se, ms, ht, hm)                             \
    { p, s, XR_OK, y, mo, d, h, mi, se, ms, ht, hm }
#define BAD(p, s)                                                             \
    { p, s, XR_ERROR, 0, 0, 0, 0, 0, 0, 0, 0, 0 }


static const xr_time_case_t  xr_time_cases[] = {

    OK(DT, "2024-12-29 14:17:40", 2024, 12, 29, 14, 17, 40, 0, 1, 0),
    OK(DTL, "2024-12-29 14:17:40.123", 2024, 12, 29, 14, 17, 40, 123, 1, 1),
    OK(DTL, "2024-12-29 14:17:40.000", 2024, 12, 29, 14, 17, 40, 0, 1, 1),
    OK(DTL, "2024-12-29 14:17:40.999", 2024, 12, 29, 14, 17, 40, 999, 1, 1),
    OK(D8, "20241229", 2024, 12, 29, 0, 0, 0, 0, 0, 0),
    OK("%Y%m%d%H%M%S", "20241229141740", 2024, 12, 29, 14, 17, 40, 0, 1, 0),
    OK("%Y%m%d%H%M%S%L", "20241229141740007",
       2024, 12, 29, 14, 17, 40, 7, 1, 1),
    OK("%d/%m/%Y", "05/01/2024", 2024, 1, 5, 0, 0, 0, 0, 0, 0),
    OK("%Y\xe5\xb9\xb4%m\xe6\x9c\x88%d\xe6\x97\xa5",
       "2024\xe5\xb9\xb4" "02\xe6\x9c\x88" "29\xe6\x97\xa5",
       2024, 2, 29, 0, 0, 0, 0, 0, 0),
    OK("T%H:%M", "T23:59", 1970, 1, 1, 23, 59, 0, 0, 1, 0),

    /* leap years */
    OK(D8, "20240229", 2024, 2, 29, 0, 0, 0, 0, 0, 0),
    OK(D8, "20000229", 2000, 2, 29, 0, 0, 0, 0, 0, 0),
    OK(D8, "24000229", 2400, 2, 29, 0, 0, 0, 0, 0, 0),
    OK(D8, "00040229", 4, 2, 29, 0, 0, 0, 0, 0, 0),
    BAD(D8, "20230229"),
    BAD(D8, "19000229"),
    BAD(D8, "21000229"),
    BAD(D8, "20240230"),
    OK(D8, "20230228", 2023, 2, 28, 0, 0, 0, 0, 0, 0),

    /* month lengths */
    OK(D8, "20240131", 2024, 1, 31, 0, 0, 0, 0, 0, 0),
    BAD(D8, "20240132"),
    OK(D8, "20240430", 2024, 4, 30, 0, 0, 0, 0, 0, 0),
    BAD(D8, "20240431"),
    BAD(D8, "20240631"),
    BAD(D8, "20240931"),
    BAD(D8, "20241131"),
    OK(D8, "20241231", 2024, 12, 31, 0, 0, 0, 0, 0, 0),
    BAD(D8, "20241200"),
    BAD(D8, "20240001"),
    BAD(D8, "20241301"),
    BAD(D8, "20249901"),

    /* years */
    OK(D8, "00010101", 1, 1, 1, 0, 0, 0, 0, 0, 0),
    OK(D8, "99991231", 9999, 12, 31, 0, 0, 0, 0, 0, 0),
    BAD(D8, "00000101"),

    /* clock */
    OK(DT, "2024-12-29 00:00:00", 2024, 12, 29, 0, 0, 0, 0, 1, 0),
    OK(DT, "2024-12-29 23:59:59", 2024, 12, 29, 23, 59, 59, 0, 1, 0),
    BAD(DT, "2024-12-29 24:00:00"),
    BAD(DT, "2024-12-29 23:60:00"),
    BAD(DT, "2024-12-29 23:59:60"),
    BAD(DT, "2024-12-29 99:99:99"),

    /* exact match */
    BAD(DT, ""),
    BAD(DT, "2024-12-29"),
    BAD(DT, "2024-12-29 14:17:4"),
    BAD(DT, "2024-12-29 14:17:40 "),
    BAD(DT, " 2024-12-29 14:17:40"),
    BAD(DT, "2024-12-29T14:17:40"),
    BAD(DT, "2024/12/29 14:17:40"),
    BAD(DT, "2024-1-29 14:17:40"),
    BAD(DT, "2024-12-9 14:17:40"),
    BAD(DT, "24-12-29 14:17:40"),
    BAD(DT, "02024-12-29 14:17:40"),
    BAD(DT, "2024-12-29 14:17:40.123"),
    BAD(DTL, "2024-12-29 14:17:40.12"),
    BAD(DTL, "2024-12-29 14:17:40.1234"),
    BAD(DTL, "2024-12-29 14:17:40"),
    BAD(D8, "2024122"),
    BAD(D8, "202412290"),
    BAD(D8, "+0241229"),
    BAD(D8, "-0241229"),
    BAD(D8, " 0241229"),
    BAD(D8, "2024 229"),
    BAD(D8, "2024-229"),
    BAD(D8, "2024x229"),
    BAD(D8, "\xef\xbc\x92" "02412"),
};


static int
parse(xr_ctx_t *ctx, const char *pattern, const char *text,
    const char *field, xr_time_t *t)
{
    xr_ctx_clear(ctx);
    memset(t, 0x5a, sizeof(xr_time_t));
    return xr_time_parse(ctx, xr_str_from(pattern), xr_str_from(text), field,
                         t);
}


static void
assert_time(const xr_time_t *t, int year, int month, int day, int hour,
    int min, int sec, int msec, int has_time, int has_msec)
{
    if (t->year != year || t->month != month || t->day != day
        || t->hour != hour || t->min != min || t->sec != sec
        || t->msec != msec || (int) t->has_time != has_time
        || (int) t->has_msec != has_msec)
    {
        fail_msg("got %04d-%02d-%02d %02d:%02d:%02d.%03d time %d msec %d, "
                 "want %04d-%02d-%02d %02d:%02d:%02d.%03d time %d msec %d",
                 t->year, t->month, t->day, t->hour, t->min, t->sec,
                 t->msec, t->has_time, t->has_msec, year, month, day, hour,
                 min, sec, msec, has_time, has_msec);
    }
}


static void
assert_str(xr_str_t s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.data, want, s.len) != 0) {
        fail_msg("got \"%.*s\", want \"%s\"", (int) s.len, s.data, want);
    }
}


static xr_time_t
mk(int year, int month, int day, int hour, int min, int sec, int msec,
    int has_time, int has_msec)
{
    xr_time_t  t;

    memset(&t, 0, sizeof(xr_time_t));
    t.year = year;
    t.month = month;
    t.day = day;
    t.hour = hour;
    t.min = min;
    t.sec = sec;
    t.msec = msec;
    t.has_time = has_time;
    t.has_msec = has_msec;
    return t;
}


static void
test_parse_table(void **state)
{
    xr_env_t              *env = *state;
    size_t                 i;
    int                    rc;
    xr_time_t              t;
    const xr_time_case_t  *c;

    for (i = 0; i < sizeof(xr_time_cases) / sizeof(xr_time_cases[0]); i++) {
        c = &xr_time_cases[i];
        rc = parse(&env->ctx, c->pattern, c->text, "jysj", &t);

        if (rc != c->rc) {
            fail_msg("case %zu \"%s\" with \"%s\": rc %d (%s)", i, c->text,
                     c->pattern, rc, env->ctx.errstr);
        }

        if (rc == XR_OK) {
            assert_int_equal(env->ctx.err, XR_E_NONE);
            assert_time(&t, c->year, c->month, c->day, c->hour, c->min,
                        c->sec, c->msec, c->has_time, c->has_msec);

        } else {
            assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
            assert_string_equal(env->ctx.field, "jysj");
            assert_non_null(strstr(env->ctx.errstr, "of field jysj"));
        }
    }
}


static void
test_parse_messages(void **state)
{
    xr_env_t  *env = *state;
    xr_time_t  t;
    char       text[128];

    parse(&env->ctx, D8, "20230229", "visit_date", &t);
    assert_string_equal(env->ctx.errstr,
                        "time \"20230229\" of field visit_date has day 29, "
                        "not in 2023-02");

    parse(&env->ctx, D8, "20231301", "visit_date", &t);
    assert_string_equal(env->ctx.errstr,
                        "time \"20231301\" of field visit_date has month 13");

    parse(&env->ctx, "%Y-%m-%d", "2024/01/05", "d", &t);
    assert_string_equal(env->ctx.errstr,
                        "time \"2024/01/05\" of field d does not match "
                        "\"%Y-%m-%d\"");

    parse(&env->ctx, DT, "2024-12-29 24:00:00", NULL, &t);
    assert_string_equal(env->ctx.errstr,
                        "time \"2024-12-29 24:00:00\" has hour 24");
    assert_string_equal(env->ctx.field, "");

    parse(&env->ctx, D8, "00000101", "d", &t);
    assert_string_equal(env->ctx.errstr,
                        "time \"00000101\" of field d has year 0000");

    /* the quoted text is cut to 40 bytes and made printable */
    memset(text, 'A', sizeof(text) - 1);
    text[sizeof(text) - 1] = '\0';
    text[0] = '\x01';
    text[1] = '\xe4';
    parse(&env->ctx, D8, text, "d", &t);
    assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
    assert_string_equal(env->ctx.errstr,
                        "time \"??AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA...\" "
                        "of field d does not match \"%Y%m%d\"");
    assert_true(strlen(env->ctx.errstr) < 100);

    parse(&env->ctx, "epoch", "12x", "ts", &t);
    assert_string_equal(env->ctx.errstr,
                        "time \"12x\" of field ts is not Unix time");

    /* first error wins */
    xr_ctx_clear(&env->ctx);
    xr_fail(&env->ctx, XR_E_SYNTAX, "x", "earlier");
    assert_int_equal(xr_time_parse(&env->ctx, xr_str_from(D8),
                                   xr_str_from("2023"), "d", &t), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_SYNTAX);
    assert_string_equal(env->ctx.errstr, "earlier");
}


static void
test_parse_bad_pattern(void **state)
{
    xr_env_t  *env = *state;
    xr_time_t  t;

    assert_int_equal(parse(&env->ctx, "%Y-%q", "2024-01", "d", &t),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);

    assert_int_equal(parse(&env->ctx, "%Y%", "2024%", "d", &t), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
}


static void
test_pattern_check(void **state)
{
    static const struct {
        const char  *pattern;
        int          rc;
        int          has_time;
    } cases[] = {
        { DT, XR_OK, 1 },
        { DTL, XR_OK, 1 },
        { D8, XR_OK, 0 },
        { "%Y-%m-%d", XR_OK, 0 },
        { "%H%M%S", XR_OK, 1 },
        { "%M%S", XR_OK, 0 },
        { "epoch", XR_OK, 1 },
        { "epoch_ms", XR_OK, 1 },
        { "Epoch", XR_OK, 0 },          /* literal text, not the keyword */
        { "epoch_s", XR_OK, 0 },
        { "date: %Y", XR_OK, 0 },
        { "%Y\xe5\xb9\xb4", XR_OK, 0 },
        { "", XR_ERROR, 0 },
        { "%", XR_ERROR, 0 },
        { "%Y%", XR_ERROR, 0 },
        { "%%", XR_ERROR, 0 },
        { "%y", XR_ERROR, 0 },
        { "%Y-%m-%e", XR_ERROR, 0 },
        { "%s", XR_ERROR, 0 },
        { "%H:%M:%S %z", XR_ERROR, 0 },
    };

    size_t  i;
    int     has_time, rc;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        has_time = -1;
        rc = xr_time_pattern_check(xr_str_from(cases[i].pattern), &has_time);
        if (rc != cases[i].rc
            || (rc == XR_OK && has_time != cases[i].has_time))
        {
            fail_msg("pattern \"%s\": rc %d has_time %d", cases[i].pattern,
                     rc, has_time);
        }
    }

    /* has_time may be NULL */
    assert_int_equal(xr_time_pattern_check(xr_str_from(DT), NULL), XR_OK);

    /* the pattern is {len, data}: a '%' beyond len is not seen */
    {
        xr_str_t  p = { 2, "%Y%" };
        assert_int_equal(xr_time_pattern_check(p, NULL), XR_OK);
    }
}


static void
test_epoch_parse(void **state)
{
    static const struct {
        const char  *pattern;
        const char  *text;
        int          rc;
        int          year, month, day, hour, min, sec, msec;
    } cases[] = {
        { "epoch", "0", XR_OK, 1970, 1, 1, 8, 0, 0, 0 },
        { "epoch", "1735452000", XR_OK, 2024, 12, 29, 14, 0, 0, 0 },
        { "epoch", "1735453060", XR_OK, 2024, 12, 29, 14, 17, 40, 0 },
        { "epoch", "1735401600", XR_OK, 2024, 12, 29, 0, 0, 0, 0 },
        { "epoch", "1735401599", XR_OK, 2024, 12, 28, 23, 59, 59, 0 },
        { "epoch", "-28800", XR_OK, 1970, 1, 1, 0, 0, 0, 0 },
        { "epoch", "-28801", XR_OK, 1969, 12, 31, 23, 59, 59, 0 },
        { "epoch", "-1", XR_OK, 1970, 1, 1, 7, 59, 59, 0 },
        { "epoch", "951782400", XR_OK, 2000, 2, 29, 8, 0, 0, 0 },
        { "epoch", "1709193600", XR_OK, 2024, 2, 29, 16, 0, 0, 0 },
        { "epoch", "1709222399", XR_OK, 2024, 2, 29, 23, 59, 59, 0 },
        { "epoch", "1709222400", XR_OK, 2024, 3, 1, 0, 0, 0, 0 },
        { "epoch", "-2203920000", XR_OK, 1900, 3, 1, 0, 0, 0, 0 },
        { "epoch", "-2203920001", XR_OK, 1900, 2, 28, 23, 59, 59, 0 },
        { "epoch", "-2208988800", XR_OK, 1900, 1, 1, 8, 0, 0, 0 },
        { "epoch", "1234567890", XR_OK, 2009, 2, 14, 7, 31, 30, 0 },
        { "epoch", "2147483647", XR_OK, 2038, 1, 19, 11, 14, 7, 0 },
        { "epoch", "4102444800", XR_OK, 2100, 1, 1, 8, 0, 0, 0 },
        { "epoch", "0001735452000", XR_OK, 2024, 12, 29, 14, 0, 0, 0 },
        { "epoch", "253402271999", XR_OK, 9999, 12, 31, 23, 59, 59, 0 },
        { "epoch", "253402272000", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "-62135625600", XR_OK, 1, 1, 1, 0, 0, 0, 0 },
        { "epoch", "-62135625601", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "9999999999999999", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "99999999999999999999", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "-9999999999999999", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "-", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "+1", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", " 1", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "1 ", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "1.5", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "1e9", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch", "--1", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },

        { "epoch_ms", "0", XR_OK, 1970, 1, 1, 8, 0, 0, 0 },
        { "epoch_ms", "1735452000123", XR_OK, 2024, 12, 29, 14, 0, 0, 123 },
        { "epoch_ms", "1735452000999", XR_OK, 2024, 12, 29, 14, 0, 0, 999 },
        { "epoch_ms", "1735452000", XR_OK, 1970, 1, 21, 10, 4, 12, 0 },
        { "epoch_ms", "-1", XR_OK, 1970, 1, 1, 7, 59, 59, 999 },
        { "epoch_ms", "-1000", XR_OK, 1970, 1, 1, 7, 59, 59, 0 },
        { "epoch_ms", "-1001", XR_OK, 1970, 1, 1, 7, 59, 58, 999 },
        { "epoch_ms", "-28800000", XR_OK, 1970, 1, 1, 0, 0, 0, 0 },
        { "epoch_ms", "253402271999999", XR_OK,
          9999, 12, 31, 23, 59, 59, 999 },
        { "epoch_ms", "253402272000000", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch_ms", "-62135625600000", XR_OK, 1, 1, 1, 0, 0, 0, 0 },
        { "epoch_ms", "-62135625600001", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch_ms", "1735452000.123", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
        { "epoch_ms", "", XR_ERROR, 0, 0, 0, 0, 0, 0, 0 },
    };

    xr_env_t  *env = *state;
    size_t     i;
    int        rc, ms;
    xr_time_t  t;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        rc = parse(&env->ctx, cases[i].pattern, cases[i].text, "ts", &t);

        if (rc != cases[i].rc) {
            fail_msg("%s \"%s\": rc %d (%s)", cases[i].pattern,
                     cases[i].text, rc, env->ctx.errstr);
        }

        if (rc != XR_OK) {
            assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
            assert_string_equal(env->ctx.field, "ts");
            continue;
        }

        ms = strcmp(cases[i].pattern, "epoch_ms") == 0;
        assert_time(&t, cases[i].year, cases[i].month, cases[i].day,
                    cases[i].hour, cases[i].min, cases[i].sec,
                    cases[i].msec, 1, ms);
    }
}


static void
test_epoch_every_day(void **state)
{
    xr_env_t  *env = *state;
    int64_t    s;
    int        y, m, d, mdays, leap;
    char       text[32];
    xr_time_t  t;

    /*
     * Walk every day from 0001-01-01 to 9999-12-31 at 23:59:59 UTC+8 and
     * check each against a calendar kept here by counting; the epoch value
     * steps by 86400.  The start is -62135625600 + 86399.
     */

    y = 1;
    m = 1;
    d = 1;

    for (s = INT64_C(-62135625600) + 86399; ; s += 86400) {
        snprintf(text, sizeof(text), "%lld", (long long) s);

        xr_ctx_clear(&env->ctx);
        if (xr_time_parse(&env->ctx, xr_str_from("epoch"), xr_str_from(text),
                          "ts", &t) != XR_OK
            || t.year != y || t.month != m || t.day != d || t.hour != 23
            || t.min != 59 || t.sec != 59)
        {
            fail_msg("epoch %s: got %04d-%02d-%02d %02d:%02d:%02d, want "
                     "%04d-%02d-%02d 23:59:59 (%s)", text, t.year, t.month,
                     t.day, t.hour, t.min, t.sec, y, m, d,
                     env->ctx.errstr);
        }

        if (y == 9999 && m == 12 && d == 31) {
            break;
        }

        leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
        mdays = (m == 2) ? 28 + leap
                         : (m == 4 || m == 6 || m == 9 || m == 11) ? 30 : 31;

        if (++d > mdays) {
            d = 1;
            if (++m > 12) {
                m = 1;
                y++;
            }
        }
    }

    assert_true(s == INT64_C(253402271999));
}


static void
test_format(void **state)
{
    static const struct {
        const char  *pattern;
        xr_time_t    t;
        const char  *text;
    } cases[] = {
        { DT, { 2024, 12, 29, 14, 17, 40, 0, 1, 0 }, "2024-12-29 14:17:40" },
        { DTL, { 2024, 12, 29, 14, 17, 40, 5, 1, 1 },
          "2024-12-29 14:17:40.005" },
        /* %L without msec, %H without time: zeros */
        { DTL, { 2024, 12, 29, 14, 17, 40, 5, 1, 0 },
          "2024-12-29 14:17:40.000" },
        { DTL, { 2024, 12, 29, 14, 17, 40, 5, 0, 0 },
          "2024-12-29 00:00:00.000" },
        { DT, { 2024, 1, 5, 0, 0, 0, 0, 0, 0 }, "2024-01-05 00:00:00" },
        { D8, { 2024, 1, 5, 13, 0, 0, 0, 1, 0 }, "20240105" },
        { D8, { 1, 1, 1, 0, 0, 0, 0, 0, 0 }, "00010101" },
        { D8, { 9999, 12, 31, 0, 0, 0, 0, 0, 0 }, "99991231" },
        { "%d/%m/%Y", { 2024, 2, 29, 0, 0, 0, 0, 0, 0 }, "29/02/2024" },
        { "%Y\xe5\xb9\xb4%m\xe6\x9c\x88",
          { 2024, 2, 29, 0, 0, 0, 0, 0, 0 },
          "2024\xe5\xb9\xb4" "02\xe6\x9c\x88" },
        { "epoch", { 1970, 1, 1, 8, 0, 0, 0, 1, 0 }, "0" },
        { "epoch", { 2024, 12, 29, 14, 0, 0, 0, 1, 0 }, "1735452000" },
        { "epoch", { 2024, 12, 29, 14, 0, 0, 999, 1, 1 }, "1735452000" },
        { "epoch", { 2024, 12, 29, 14, 0, 0, 0, 0, 0 }, "1735401600" },
        { "epoch", { 1970, 1, 1, 0, 0, 0, 0, 1, 0 }, "-28800" },
        { "epoch", { 1969, 12, 31, 23, 59, 59, 0, 1, 0 }, "-28801" },
        { "epoch", { 9999, 12, 31, 23, 59, 59, 0, 1, 0 }, "253402271999" },
        { "epoch", { 1, 1, 1, 0, 0, 0, 0, 0, 0 }, "-62135625600" },
        { "epoch_ms", { 2024, 12, 29, 14, 0, 0, 123, 1, 1 },
          "1735452000123" },
        { "epoch_ms", { 2024, 12, 29, 14, 0, 0, 123, 1, 0 },
          "1735452000000" },
        { "epoch_ms", { 1970, 1, 1, 7, 59, 59, 999, 1, 1 }, "-1" },
        { "epoch_ms", { 2024, 12, 29, 0, 0, 0, 0, 0, 0 }, "1735401600000" },
    };

    xr_env_t  *env = *state;
    size_t     i;
    xr_str_t   out;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xr_ctx_clear(&env->ctx);
        if (xr_time_format(&env->ctx, xr_str_from(cases[i].pattern),
                           &cases[i].t, &out) != XR_OK)
        {
            fail_msg("case %zu: %s", i, env->ctx.errstr);
        }
        assert_str(out, cases[i].text);
    }
}


static void
test_format_invalid(void **state)
{
    static const xr_time_t  bad[] = {
        { 0, 1, 1, 0, 0, 0, 0, 0, 0 },
        { 10000, 1, 1, 0, 0, 0, 0, 0, 0 },
        { 2024, 0, 1, 0, 0, 0, 0, 0, 0 },
        { 2024, 13, 1, 0, 0, 0, 0, 0, 0 },
        { 2024, 1, 0, 0, 0, 0, 0, 0, 0 },
        { 2023, 2, 29, 0, 0, 0, 0, 0, 0 },
        { 2024, 4, 31, 0, 0, 0, 0, 0, 0 },
        { 2024, 1, 1, 24, 0, 0, 0, 1, 0 },
        { 2024, 1, 1, -1, 0, 0, 0, 1, 0 },
        { 2024, 1, 1, 0, 60, 0, 0, 1, 0 },
        { 2024, 1, 1, 0, 0, 60, 0, 1, 0 },
        { 2024, 1, 1, 0, 0, 0, 1000, 1, 1 },
        { 2024, 1, 1, 0, 0, 0, -1, 1, 1 },
    };

    xr_env_t  *env = *state;
    size_t     i;
    xr_str_t   out;
    xr_time_t  ok = mk(2024, 1, 1, 99, 99, 99, 5000, 0, 0);

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xr_ctx_clear(&env->ctx);
        if (xr_time_format(&env->ctx, xr_str_from(DTL), &bad[i], &out)
            != XR_ERROR)
        {
            fail_msg("case %zu formatted", i);
        }
        assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);

        xr_ctx_clear(&env->ctx);
        assert_int_equal(xr_time_format(&env->ctx, xr_str_from("epoch_ms"),
                                        &bad[i], &out), XR_ERROR);
    }

    /* clock fields are not looked at for a date */
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_time_format(&env->ctx, xr_str_from(DTL), &ok, &out),
                     XR_OK);
    assert_str(out, "2024-01-01 00:00:00.000");

    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_time_format(&env->ctx, xr_str_from("%Y-%Q"), &ok,
                                    &out), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
}


static void
test_roundtrip(void **state)
{
    static const char  *patterns[] = {
        "%Y%m%d%H%M%S%L", DTL, "epoch_ms", "epoch", DT, D8
    };

    xr_env_t   *env = *state;
    xr_pool_t  *pool;
    int64_t     s, n;
    size_t      p;
    char        text[32];
    xr_time_t   t, back;
    xr_str_t    out;

    pool = xr_pool_create(0);
    env->ctx.pool = pool;
    n = 0;

    /* times from epoch_ms over the whole range, through every pattern */
    for (s = INT64_C(-62135625600000); s <= INT64_C(253402271999999);
         s += INT64_C(999999937) * 7)
    {
        snprintf(text, sizeof(text), "%lld", (long long) s);
        assert_int_equal(parse(&env->ctx, "epoch_ms", text, "t", &t), XR_OK);

        for (p = 0; p < sizeof(patterns) / sizeof(patterns[0]); p++) {
            xr_ctx_clear(&env->ctx);
            assert_int_equal(xr_time_format(&env->ctx,
                                            xr_str_from(patterns[p]), &t,
                                            &out), XR_OK);
            xr_ctx_clear(&env->ctx);
            if (xr_time_parse(&env->ctx, xr_str_from(patterns[p]), out, "t",
                              &back) != XR_OK)
            {
                fail_msg("%s: \"%.*s\" does not parse: %s", patterns[p],
                         (int) out.len, out.data, env->ctx.errstr);
            }

            /* what the pattern carries comes back */
            assert_int_equal(back.year, t.year);
            assert_int_equal(back.month, t.month);
            assert_int_equal(back.day, t.day);
            if (back.has_time) {
                assert_int_equal(back.hour, t.hour);
                assert_int_equal(back.min, t.min);
                assert_int_equal(back.sec, t.sec);
            }
            if (back.has_msec) {
                assert_int_equal(back.msec, t.msec);
            }
            if (p == 0 || p == 1 || p == 2) {
                assert_true(xr_node_equal(
                    &(xr_node_t) { .type = XR_NODE_TIME, .u.t = t },
                    &(xr_node_t) { .type = XR_NODE_TIME, .u.t = back }));
            }
        }

        if (++n % 2000 == 0) {
            xr_pool_destroy(pool);
            pool = xr_pool_create(0);
            env->ctx.pool = pool;
        }
    }

    assert_true(n > 40000);

    xr_pool_destroy(pool);
    env->ctx.pool = env->pool;
}


static void
test_iso(void **state)
{
    xr_env_t  *env = *state;
    xr_str_t   out;
    xr_time_t  t;

    t = mk(2024, 12, 29, 14, 17, 40, 123, 1, 0);
    assert_int_equal(xr_time_iso(&env->ctx, &t, &out), XR_OK);
    assert_str(out, "2024-12-29T14:17:40");

    t.has_msec = 1;
    assert_int_equal(xr_time_iso(&env->ctx, &t, &out), XR_OK);
    assert_str(out, "2024-12-29T14:17:40.123");

    t = mk(2024, 2, 9, 1, 2, 3, 4, 1, 1);
    assert_int_equal(xr_time_iso(&env->ctx, &t, &out), XR_OK);
    assert_str(out, "2024-02-09T01:02:03.004");

    t = mk(2024, 2, 29, 14, 17, 40, 0, 0, 0);
    assert_int_equal(xr_time_iso(&env->ctx, &t, &out), XR_OK);
    assert_str(out, "2024-02-29");

    t = mk(1, 1, 1, 0, 0, 0, 0, 0, 0);
    assert_int_equal(xr_time_iso(&env->ctx, &t, &out), XR_OK);
    assert_str(out, "0001-01-01");
    assert_int_equal(out.data[out.len], '\0');
}


static int64_t
order(const xr_time_t *t)
{
    return ((int64_t) t->year * 10000 + t->month * 100 + t->day) * 86400000
           + t->hour * 3600000 + t->min * 60000 + t->sec * 1000 + t->msec;
}


static void
test_now(void **state)
{
    xr_time_t  a, b;
    time_t           before, after, s, local;
    struct tm        tm;
    struct timespec  ts;
    int              found;

    (void) state;

    /*
     * The same clock as xr_time_now(): time() may run on the coarse clock,
     * a tick behind, and miss the second by one at a boundary.
     */
    clock_gettime(CLOCK_REALTIME, &ts);
    before = ts.tv_sec;
    assert_int_equal(xr_time_now(&a), XR_OK);
    clock_gettime(CLOCK_REALTIME, &ts);
    after = ts.tv_sec;

    assert_true(a.has_time);
    assert_true(a.has_msec);
    assert_true(a.msec >= 0 && a.msec <= 999);

    /* UTC+8 whatever TZ says: compare with gmtime of the time + 8 hours */
    setenv("TZ", "America/New_York", 1);
    tzset();
    assert_int_equal(xr_time_now(&b), XR_OK);

    found = 0;
    for (s = before; s <= after && !found; s++) {
        local = s + 8 * 3600;
        gmtime_r(&local, &tm);
        found = tm.tm_year + 1900 == a.year && tm.tm_mon + 1 == a.month
                && tm.tm_mday == a.day && tm.tm_hour == a.hour
                && tm.tm_min == a.min && tm.tm_sec == a.sec;
    }

    if (!found) {
        fail_msg("now %04d-%02d-%02d %02d:%02d:%02d is not UTC+8 of %lld",
                 a.year, a.month, a.day, a.hour, a.min, a.sec,
                 (long long) before);
    }

    /* the second call, under another TZ, is no earlier than the first */
    assert_true(order(&b) >= order(&a));

    unsetenv("TZ");
    tzset();
}



/* Unix ms <-> civil time at an offset, against gmtime_r, both ways */

static void
test_unix_ms(void **state)
{
    int         off, i;
    int64_t     ms, back;
    time_t      secs;
    struct tm   tm;
    xr_time_t   t;

    static const int64_t  samples[] = {
        0, 1, 999, -1, -1000, -1001, INT64_C(1735452000123),
        INT64_C(951782400000) - 1,            /* 2000-02-29 edge, UTC */
        INT64_C(253402300799999),             /* 9999-12-31T23:59:59.999Z */
        INT64_C(-62135596800000),             /* 0001-01-01T00:00:00Z */
    };
    static const int  offsets[] = { 0, 480, -300, 345, -720, 840 };

    (void) state;

    for (i = 0; i < (int) (sizeof(samples) / sizeof(samples[0])); i++) {
        for (off = 0; off < 6; off++) {
            ms = samples[i];
            if (xr_time_from_unix_ms(ms, offsets[off], &t) != XR_OK) {
                /* only the two ends may leave the years 0001-9999 */
                assert_true(i >= 8);
                continue;
            }

            /* the civil fields are gmtime of the shifted time */
            secs = (time_t) ((ms - ((ms % 1000 + 1000) % 1000)) / 1000)
                   + offsets[off] * 60;
            assert_non_null(gmtime_r(&secs, &tm));
            assert_int_equal(t.year, tm.tm_year + 1900);
            assert_int_equal(t.month, tm.tm_mon + 1);
            assert_int_equal(t.day, tm.tm_mday);
            assert_int_equal(t.hour, tm.tm_hour);
            assert_int_equal(t.min, tm.tm_min);
            assert_int_equal(t.sec, tm.tm_sec);
            assert_int_equal(t.msec, (int) ((ms % 1000 + 1000) % 1000));

            assert_int_equal(xr_time_to_unix_ms(&t, offsets[off], &back),
                             XR_OK);
            assert_true(back == ms);
        }
    }

    /* China time: 2024-12-29T14:00:00.123+08:00 */
    assert_int_equal(xr_time_from_unix_ms(INT64_C(1735452000123), 480, &t),
                     XR_OK);
    assert_int_equal(t.year, 2024);
    assert_int_equal(t.hour, 14);
    assert_int_equal(t.msec, 123);

    /* refusals: offsets past 18 h, a day that does not exist */
    assert_int_equal(xr_time_from_unix_ms(0, 18 * 60 + 1, &t), XR_ERROR);
    assert_int_equal(xr_time_from_unix_ms(INT64_C(253402300800000) + 86400000,
                                          0, &t), XR_ERROR);
    t.month = 2;
    t.day = 30;
    assert_int_equal(xr_time_to_unix_ms(&t, 0, &back), XR_ERROR);
    t.day = 28;
    assert_int_equal(xr_time_to_unix_ms(&t, -18 * 60 - 1, &back), XR_ERROR);
}

int
main(void)
{
    const struct CMUnitTest  tests[] = {
        xr_env_test(test_parse_table),
        xr_env_test(test_parse_messages),
        xr_env_test(test_parse_bad_pattern),
        cmocka_unit_test(test_pattern_check),
        xr_env_test(test_epoch_parse),
        xr_env_test(test_epoch_every_day),
        xr_env_test(test_format),
        xr_env_test(test_format_invalid),
        xr_env_test(test_roundtrip),
        xr_env_test(test_iso),
        cmocka_unit_test(test_now),
        cmocka_unit_test(test_unix_ms),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
