/*
 * Time text <-> xr_time_t, exact both ways.
 *
 * A pattern is literal bytes and the conversions %Y (4 digits), %m %d %H %M
 * %S (2 digits) and %L (3 digits).  Nothing else follows a '%': there is no
 * "%%", a literal '%' cannot be written, and no region has needed one.
 * Conversions take exactly their number of digits; "2024-1-5" does not
 * match "%Y-%m-%d".  A pattern without %Y, %m or %d leaves 1970, 1 or 1.
 * Years run from 0001 to 9999.
 *
 * "epoch" and "epoch_ms" are decimal Unix seconds or milliseconds (an
 * optional '-' for times before 1970).  Regions' systems mean UTC+8 wall
 * time, so the conversion adds eight hours and works on days with integer
 * arithmetic only (the days-from-civil method: years counted from March, so
 * the leap day is the last day of the year, in 400-year eras of 146097
 * days).  Neither the process's TZ nor the C library's time functions are
 * involved.
 */

#include <stdio.h>
#include <string.h>
#include <time.h>

#include "xr_mask.h"
#include "xr_time.h"



/* UTC+8, China Standard Time, has no daylight saving. */
#define XR_TIME_OFFSET       (8 * 3600)
#define XR_TIME_DAY          INT64_C(86400)

/* 0001-01-01 and 9999-12-31 as days since 1970-01-01. */
#define XR_TIME_MIN_DAYS     INT64_C(-719162)
#define XR_TIME_MAX_DAYS     INT64_C(2932896)


/* "00" to "99": two digits of a formatted time at once */
static const char  xr_time_2d[] =
    "00010203040506070809101112131415161718192021222324252627282930313233"
    "34353637383940414243444546474849505152535455565758596061626364656667"
    "6869707172737475767778798081828384858687888990919293949596979899";


typedef enum {
    XR_TIME_PATTERN = 0,
    XR_TIME_EPOCH,
    XR_TIME_EPOCH_MS
} xr_time_kind_e;


static xr_time_kind_e xr_time_kind(xr_str_t pattern);
static int xr_time_leap(int year);
static int xr_time_mdays(int year, int month);
static int64_t xr_time_days_from_civil(int y, int m, int d);
static void xr_time_civil_from_days(int64_t z, int *y, int *m, int *d);
static int xr_time_valid(const xr_time_t *t);
static int xr_time_parse_epoch(xr_ctx_t *ctx, xr_str_t text,
    const char *field, unsigned pii, int ms, xr_time_t *out);
static int xr_time_parse_pattern(xr_ctx_t *ctx, xr_str_t pattern,
    xr_str_t text, const char *field, unsigned pii, xr_time_t *out);
static int xr_time_fail(xr_ctx_t *ctx, xr_str_t text, const char *field,
    unsigned pii, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));


int
xr_time_parse(xr_ctx_t *ctx, xr_str_t pattern, xr_str_t text,
    const char *field, xr_time_t *out)
{
    switch (xr_time_kind(pattern)) {

    case XR_TIME_EPOCH:
        return xr_time_parse_epoch(ctx, text, field, XR_PII_NONE, 0, out);

    case XR_TIME_EPOCH_MS:
        return xr_time_parse_epoch(ctx, text, field, XR_PII_NONE, 1, out);

    default:
        if (xr_time_pattern_check(pattern, NULL) != XR_OK) {
            return xr_fail(ctx, XR_E_CONFIG, field,
                           "bad time pattern \"%.*s\"",
                           (int) pattern.len, pattern.data);
        }
        return xr_time_parse_pattern(ctx, pattern, text, field,
                                     XR_PII_NONE, out);
    }
}


int
xr_time_parse_checked(xr_ctx_t *ctx, xr_str_t pattern, xr_str_t text,
    const char *field, unsigned pii, xr_time_t *out)
{
    switch (xr_time_kind(pattern)) {

    case XR_TIME_EPOCH:
        return xr_time_parse_epoch(ctx, text, field, pii, 0, out);

    case XR_TIME_EPOCH_MS:
        return xr_time_parse_epoch(ctx, text, field, pii, 1, out);

    default:
        return xr_time_parse_pattern(ctx, pattern, text, field, pii, out);
    }
}


int
xr_time_format(xr_ctx_t *ctx, xr_str_t pattern, const xr_time_t *t,
    xr_str_t *out)
{
    if (xr_time_pattern_check(pattern, NULL) != XR_OK && xr_time_valid(t)) {
        return xr_fail(ctx, XR_E_CONFIG, NULL, "bad time pattern \"%.*s\"",
                       (int) pattern.len, pattern.data);
    }
    return xr_time_format_checked(ctx, pattern, t, out);
}


int
xr_time_format_checked(xr_ctx_t *ctx, xr_str_t pattern, const xr_time_t *t,
    xr_str_t *out)
{
    char            buf[64], *p;
    size_t          i;
    int64_t         v;
    int             n, hour, min, sec, msec;
    xr_time_kind_e  kind;

    if (!xr_time_valid(t)) {
        return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                       "time %04d-%02d-%02d %02d:%02d:%02d.%03d is not valid",
                       t->year, t->month, t->day, t->hour, t->min, t->sec,
                       t->msec);
    }

    hour = t->has_time ? t->hour : 0;
    min = t->has_time ? t->min : 0;
    sec = t->has_time ? t->sec : 0;
    msec = t->has_time && t->has_msec ? t->msec : 0;

    kind = xr_time_kind(pattern);

    if (kind != XR_TIME_PATTERN) {
        v = xr_time_days_from_civil(t->year, t->month, t->day) * XR_TIME_DAY
            + hour * 3600 + min * 60 + sec - XR_TIME_OFFSET;
        if (kind == XR_TIME_EPOCH_MS) {
            v = v * 1000 + msec;
        }

        n = snprintf(buf, sizeof(buf), "%lld", (long long) v);

        *out = xr_pstr(ctx->pool, buf, (size_t) n);
        if (out->data == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }
        return XR_OK;
    }

    /*
     * Into a stack buffer, digits by hand: a time is written for every
     * message.  Patterns are short (checked at load); the bound is kept.
     */
    for (i = 0, n = 0; i < pattern.len && n < (int) sizeof(buf) - 4; i++) {
        if (pattern.data[i] != '%') {
            buf[n++] = pattern.data[i];
            continue;
        }

        switch (pattern.data[++i]) {
        case 'Y':
            /* a valid time's year has four digits: 0001-9999 */
            memcpy(buf + n, xr_time_2d + 2 * (t->year / 100), 2);
            memcpy(buf + n + 2, xr_time_2d + 2 * (t->year % 100), 2);
            n += 4;
            continue;
        case 'L':
            buf[n++] = (char) ('0' + msec / 100 % 10);
            buf[n++] = (char) ('0' + msec / 10 % 10);
            buf[n++] = (char) ('0' + msec % 10);
            continue;
        case 'm':
            v = t->month;
            break;
        case 'd':
            v = t->day;
            break;
        case 'H':
            v = hour;
            break;
        case 'M':
            v = min;
            break;
        default:
            v = sec;
            break;
        }
        /* every two-digit field of a valid time is 00-99 */
        memcpy(buf + n, xr_time_2d + 2 * v, 2);
        n += 2;
    }

    if (i < pattern.len) {
        return xr_fail(ctx, XR_E_CONFIG, NULL, "time pattern too long");
    }

    buf[n++] = '\0';     /* NUL-terminated, as an xr_pstr() copy was */
    p = xr_palloc(ctx->pool, (size_t) n);
    if (p == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    memcpy(p, buf, (size_t) n--);
    out->data = p;
    out->len = (size_t) n;

    return XR_OK;
}


int
xr_time_pattern_check(xr_str_t pattern, int *has_time)
{
    size_t  i;
    int     time = 0;

    switch (xr_time_kind(pattern)) {

    case XR_TIME_EPOCH:
    case XR_TIME_EPOCH_MS:
        time = 1;
        break;

    default:
        if (pattern.len == 0) {
            return XR_ERROR;
        }

        for (i = 0; i < pattern.len; i++) {
            if (pattern.data[i] != '%') {
                continue;
            }

            if (++i == pattern.len) {
                return XR_ERROR;
            }

            switch (pattern.data[i]) {
            case 'H':
                time = 1;
                break;
            case 'Y':
            case 'm':
            case 'd':
            case 'M':
            case 'S':
            case 'L':
                break;
            default:
                return XR_ERROR;
            }
        }
    }

    if (has_time) {
        *has_time = time;
    }

    return XR_OK;
}


int
xr_time_iso(xr_ctx_t *ctx, const xr_time_t *t, xr_str_t *out)
{
    char  buf[64];
    int   n;

    if (!t->has_time) {
        n = snprintf(buf, sizeof(buf), "%04d-%02d-%02d",
                     t->year, t->month, t->day);

    } else if (!t->has_msec) {
        n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d",
                     t->year, t->month, t->day, t->hour, t->min, t->sec);

    } else {
        n = snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03d",
                     t->year, t->month, t->day, t->hour, t->min, t->sec,
                     t->msec);
    }

    if (n < 0 || (size_t) n >= sizeof(buf)) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "time does not format");
    }

    *out = xr_pstr(ctx->pool, buf, (size_t) n);
    if (out->data == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    return XR_OK;
}



#define XR_TIME_MAX_OFFSET  (18 * 60)


int
xr_time_from_unix_ms(int64_t ms, int offset_min, xr_time_t *out)
{
    int64_t  s, msec, days, sod;

    if (offset_min < -XR_TIME_MAX_OFFSET || offset_min > XR_TIME_MAX_OFFSET
        || ms < XR_TIME_MIN_DAYS * XR_TIME_DAY * 1000
        || ms > (XR_TIME_MAX_DAYS + 1) * XR_TIME_DAY * 1000)
    {
        return XR_ERROR;
    }

    /* floor division: times before 1970 are negative */
    s = ms / 1000;
    msec = ms % 1000;
    if (msec < 0) {
        msec += 1000;
        s--;
    }
    s += (int64_t) offset_min * 60;

    days = s / XR_TIME_DAY;
    sod = s % XR_TIME_DAY;
    if (sod < 0) {
        sod += XR_TIME_DAY;
        days--;
    }

    if (days < XR_TIME_MIN_DAYS || days > XR_TIME_MAX_DAYS) {
        return XR_ERROR;
    }

    memset(out, 0, sizeof(xr_time_t));

    xr_time_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int) (sod / 3600);
    out->min = (int) (sod / 60 % 60);
    out->sec = (int) (sod % 60);
    out->msec = (int) msec;
    out->has_time = 1;
    out->has_msec = 1;

    return XR_OK;
}


int
xr_time_to_unix_ms(const xr_time_t *t, int offset_min, int64_t *out)
{
    int64_t  s;

    if (offset_min < -XR_TIME_MAX_OFFSET || offset_min > XR_TIME_MAX_OFFSET
        || !xr_time_valid(t))
    {
        return XR_ERROR;
    }

    s = xr_time_days_from_civil(t->year, t->month, t->day) * XR_TIME_DAY;
    if (t->has_time) {
        s += t->hour * 3600 + t->min * 60 + t->sec;
    }
    s -= (int64_t) offset_min * 60;

    *out = s * 1000 + (t->has_time && t->has_msec ? t->msec : 0);
    return XR_OK;
}

int
xr_time_now(xr_time_t *out)
{
    struct timespec  ts;
    int64_t          s, days, sod;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0) {
        return XR_ERROR;
    }

    s = (int64_t) ts.tv_sec + XR_TIME_OFFSET;

    days = s / XR_TIME_DAY;
    sod = s % XR_TIME_DAY;
    if (sod < 0) {
        sod += XR_TIME_DAY;
        days--;
    }

    memset(out, 0, sizeof(xr_time_t));

    xr_time_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int) (sod / 3600);
    out->min = (int) (sod / 60 % 60);
    out->sec = (int) (sod % 60);
    out->msec = (int) (ts.tv_nsec / 1000000);
    out->has_time = 1;
    out->has_msec = 1;

    return XR_OK;
}


static xr_time_kind_e
xr_time_kind(xr_str_t pattern)
{
    /* a pattern of its own for nearly every field: settle it cheaply */
    if (pattern.len == 0 || pattern.data[0] != 'e') {
        return XR_TIME_PATTERN;
    }

    if (xr_str_eq(pattern, "epoch")) {
        return XR_TIME_EPOCH;
    }

    if (xr_str_eq(pattern, "epoch_ms")) {
        return XR_TIME_EPOCH_MS;
    }

    return XR_TIME_PATTERN;
}


static int
xr_time_leap(int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}


static int
xr_time_mdays(int year, int month)
{
    static const int  mdays[12] = {
        31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31
    };

    if (month == 2 && xr_time_leap(year)) {
        return 29;
    }

    return mdays[month - 1];
}


/*
 * Days since 1970-01-01 of a proleptic Gregorian date.  The year is
 * counted from March 1 so that February, with its leap day, comes last;
 * then the day of the year is a linear formula in the month.
 */

static int64_t
xr_time_days_from_civil(int y, int m, int d)
{
    int64_t  era, yoe, doy, doe, year;

    year = m <= 2 ? y - 1 : y;
    era = (year >= 0 ? year : year - 399) / 400;
    yoe = year - era * 400;                             /* 0 .. 399 */
    doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;        /* 0 .. 146096 */

    /* 719468: days from 0000-03-01 to 1970-01-01 */
    return era * 146097 + doe - 719468;
}


static void
xr_time_civil_from_days(int64_t z, int *y, int *m, int *d)
{
    int64_t  era, doe, yoe, doy, mp;

    z += 719468;
    era = (z >= 0 ? z : z - 146096) / 146097;
    doe = z - era * 146097;
    yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    mp = (5 * doy + 2) / 153;

    *d = (int) (doy - (153 * mp + 2) / 5 + 1);
    *m = (int) (mp < 10 ? mp + 3 : mp - 9);
    *y = (int) (yoe + era * 400 + (*m <= 2));
}


static int
xr_time_valid(const xr_time_t *t)
{
    if (t->year < 1 || t->year > 9999 || t->month < 1 || t->month > 12
        || t->day < 1 || t->day > xr_time_mdays(t->year, t->month))
    {
        return 0;
    }

    if (t->has_time
        && (t->hour < 0 || t->hour > 23 || t->min < 0 || t->min > 59
            || t->sec < 0 || t->sec > 59))
    {
        return 0;
    }

    if (t->has_time && t->has_msec && (t->msec < 0 || t->msec > 999)) {
        return 0;
    }

    return 1;
}


static int
xr_time_parse_epoch(xr_ctx_t *ctx, xr_str_t text, const char *field,
    unsigned pii, int ms, xr_time_t *out)
{
    size_t   i;
    int64_t  v, s, days, sod, msec;
    int      neg;

    i = 0;
    neg = 0;

    if (text.len && text.data[0] == '-') {
        neg = 1;
        i++;
    }

    if (i == text.len) {
        return xr_time_fail(ctx, text, field, pii, "is not Unix time");
    }

    /* 15 digits of milliseconds reach past year 9999 without overflow */

    v = 0;

    for ( /* void */ ; i < text.len; i++) {
        if (text.data[i] < '0' || text.data[i] > '9') {
            return xr_time_fail(ctx, text, field, pii, "is not Unix time");
        }
        if (v > INT64_C(999999999999999)) {
            return xr_time_fail(ctx, text, field, pii, "is out of range");
        }
        v = v * 10 + (text.data[i] - '0');
    }

    if (neg) {
        v = -v;
    }

    msec = 0;

    if (ms) {
        s = v / 1000;
        msec = v % 1000;
        if (msec < 0) {
            msec += 1000;
            s--;
        }

    } else {
        s = v;
    }

    s += XR_TIME_OFFSET;

    days = s / XR_TIME_DAY;
    sod = s % XR_TIME_DAY;
    if (sod < 0) {
        sod += XR_TIME_DAY;
        days--;
    }

    if (days < XR_TIME_MIN_DAYS || days > XR_TIME_MAX_DAYS) {
        return xr_time_fail(ctx, text, field, pii, "is out of range");
    }

    memset(out, 0, sizeof(xr_time_t));

    xr_time_civil_from_days(days, &out->year, &out->month, &out->day);
    out->hour = (int) (sod / 3600);
    out->min = (int) (sod / 60 % 60);
    out->sec = (int) (sod % 60);
    out->msec = (int) msec;
    out->has_time = 1;
    out->has_msec = ms ? 1 : 0;

    return XR_OK;
}


static int
xr_time_parse_pattern(xr_ctx_t *ctx, xr_str_t pattern, xr_str_t text,
    const char *field, unsigned pii, xr_time_t *out)
{
    char       quoted[XR_QUOTE_MAX + 4];
    size_t     pi, ti, k, digits;
    unsigned   d0, d1;
    int        v, *dst, has_time, has_msec;
    xr_time_t  t;

    memset(&t, 0, sizeof(xr_time_t));
    t.year = 1970;
    t.month = 1;
    t.day = 1;

    has_time = 0;
    has_msec = 0;

    ti = 0;

    for (pi = 0; pi < pattern.len; pi++) {

        if (pattern.data[pi] != '%') {
            if (ti == text.len || text.data[ti] != pattern.data[pi]) {
                goto mismatch;
            }
            ti++;
            continue;
        }

        switch (pattern.data[++pi]) {
        case 'Y':
            dst = &t.year;
            digits = 4;
            break;
        case 'm':
            dst = &t.month;
            digits = 2;
            break;
        case 'd':
            dst = &t.day;
            digits = 2;
            break;
        case 'H':
            dst = &t.hour;
            digits = 2;
            has_time = 1;
            break;
        case 'M':
            dst = &t.min;
            digits = 2;
            break;
        case 'S':
            dst = &t.sec;
            digits = 2;
            break;
        default: /* 'L', the pattern is checked */
            dst = &t.msec;
            digits = 3;
            has_msec = 1;
            break;
        }

        if (text.len - ti < digits) {
            goto mismatch;
        }

        if (digits == 2) {
            /* most conversions: both digits at once */
            d0 = (unsigned) ((unsigned char) text.data[ti] - '0');
            d1 = (unsigned) ((unsigned char) text.data[ti + 1] - '0');
            if (d0 > 9 || d1 > 9) {
                goto mismatch;
            }
            *dst = (int) (d0 * 10 + d1);
            ti += 2;
            continue;
        }

        v = 0;
        for (k = 0; k < digits; k++) {
            if (text.data[ti] < '0' || text.data[ti] > '9') {
                goto mismatch;
            }
            v = v * 10 + (text.data[ti++] - '0');
        }

        *dst = v;
    }

    if (ti != text.len) {
        goto mismatch;
    }

    /* which part is out of range would tell that part of a personal date */
    if (pii != XR_PII_NONE
        && (t.year < 1 || t.month < 1 || t.month > 12 || t.day < 1
            || t.day > xr_time_mdays(t.year, t.month) || t.hour > 23
            || t.min > 59 || t.sec > 59))
    {
        return xr_time_fail(ctx, text, field, pii, "is not a real date or "
                            "time");
    }

    if (t.year < 1) {
        return xr_time_fail(ctx, text, field, pii, "has year 0000");
    }

    if (t.month < 1 || t.month > 12) {
        return xr_time_fail(ctx, text, field, pii, "has month %02d", t.month);
    }

    if (t.day < 1 || t.day > xr_time_mdays(t.year, t.month)) {
        return xr_time_fail(ctx, text, field, pii, "has day %02d, not in "
                            "%04d-%02d", t.day, t.year, t.month);
    }

    if (t.hour > 23) {
        return xr_time_fail(ctx, text, field, pii, "has hour %02d", t.hour);
    }

    if (t.min > 59) {
        return xr_time_fail(ctx, text, field, pii, "has minute %02d", t.min);
    }

    if (t.sec > 59) {
        return xr_time_fail(ctx, text, field, pii, "has second %02d", t.sec);
    }

    /* three digits cannot exceed 999 */

    if (!has_time) {
        t.hour = 0;
        t.min = 0;
        t.sec = 0;
        t.msec = 0;
        has_msec = 0;
    }

    t.has_time = has_time;
    t.has_msec = has_msec;

    *out = t;

    return XR_OK;

mismatch:

    xr_quote(pattern, quoted, sizeof(quoted));

    return xr_time_fail(ctx, text, field, pii, "does not match \"%s\"",
                        quoted);
}




static int
xr_time_fail(xr_ctx_t *ctx, xr_str_t text, const char *field,
    unsigned pii, const char *fmt, ...)
{
    char     quoted[XR_QUOTE_MAX + 4], what[128], mbuf[XR_MASK_LEN];
    va_list  ap;

    xr_quote(xr_mask_quote(pii, text, mbuf, sizeof(mbuf)), quoted,
             sizeof(quoted));

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);

    return xr_fail(ctx, XR_E_FIELD_FORMAT, field, "time \"%s\"%s%s %s",
                   quoted, field ? " of field " : "", field ? field : "",
                   what);
}
