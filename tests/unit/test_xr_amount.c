/*
 * core/xr_amount.c: yuan and fen text <-> integer fen.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "xr_test.h"

#include "xr_amount.h"


#define XR_SENTINEL  INT64_C(0x5a5a5a5a5a5a5a5a)


typedef struct {
    const char        *text;
    xr_amount_unit_e   unit;
    int                negative;
    int                rc;
    xr_err_e           err;
    int64_t            fen;
} xr_amount_case_t;


static const xr_amount_case_t  xr_parse_cases[] = {

    /* yuan, accepted */
    { "145", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 14500 },
    { "145.5", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 14550 },
    { "145.50", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 14550 },
    { "145.05", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 14505 },
    { "0.07", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 7 },
    { "0.7", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 70 },
    { "0.99", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 99 },
    { "1", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 100 },
    { "1.01", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 101 },
    { "0", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 0 },
    { "0.0", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 0 },
    { "0.00", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 0 },
    { "-3.00", XR_AMOUNT_YUAN, 1, XR_OK, XR_E_NONE, -300 },
    { "-3.05", XR_AMOUNT_YUAN, 1, XR_OK, XR_E_NONE, -305 },
    { "-0.01", XR_AMOUNT_YUAN, 1, XR_OK, XR_E_NONE, -1 },
    { "-0.00", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 0 },
    { "-0", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 0 },
    { "007.00", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE, 700 },
    { "0000000000000000000012.34", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE,
      1234 },
    { "99999999999999.99", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE,
      XR_AMOUNT_MAX_FEN },
    { "-99999999999999.99", XR_AMOUNT_YUAN, 1, XR_OK, XR_E_NONE,
      -XR_AMOUNT_MAX_FEN },
    { "99999999999999", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE,
      INT64_C(9999999999999900) },
    { "12345678901234.56", XR_AMOUNT_YUAN, 0, XR_OK, XR_E_NONE,
      INT64_C(1234567890123456) },

    /* the profile's default unit is read as yuan */
    { "1.5", XR_AMOUNT_DEFAULT, 0, XR_OK, XR_E_NONE, 150 },
    { "1.234", XR_AMOUNT_DEFAULT, 0, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },

    /* yuan, not a number */
    { "", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { " 1", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1 ", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1. 5", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "+1", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "-", XR_AMOUNT_YUAN, 1, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "--1", XR_AMOUNT_YUAN, 1, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1-", XR_AMOUNT_YUAN, 1, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1e5", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1E5", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { ".5", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "-.5", XR_AMOUNT_YUAN, 1, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "5.", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { ".", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1,000", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1,000.00", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1.2.3", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1.2x", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1.234x", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "0x10", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "abc", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "NaN", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "\xef\xbc\x91", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "\xef\xbf\xa5" "1", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_FIELD_FORMAT,
      0 },

    /* yuan, precision */
    { "1.234", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "1.000", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "0.001", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "-1.234", XR_AMOUNT_YUAN, 1, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "-1.234", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "1.0000000000", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_PRECISION,
      0 },

    /* yuan, negative */
    { "-5", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_NEGATIVE, 0 },
    { "-0.01", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_NEGATIVE, 0 },
    { "-99999999999999.99", XR_AMOUNT_YUAN, 0, XR_ERROR,
      XR_E_AMOUNT_NEGATIVE, 0 },

    /* yuan, range: 14 digits of yuan and 2 of fen, NHSA's (16,2) */
    { "100000000000000", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_RANGE, 0 },
    { "100000000000000.00", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_RANGE,
      0 },
    { "-100000000000000", XR_AMOUNT_YUAN, 1, XR_ERROR, XR_E_AMOUNT_RANGE,
      0 },
    { "9999999999999999", XR_AMOUNT_YUAN, 0, XR_ERROR, XR_E_AMOUNT_RANGE,
      0 },
    { "99999999999999999999", XR_AMOUNT_YUAN, 0, XR_ERROR,
      XR_E_AMOUNT_RANGE, 0 },
    { "92233720368547758.07", XR_AMOUNT_YUAN, 0, XR_ERROR,
      XR_E_AMOUNT_RANGE, 0 },
    { "123456789012345678901234567890", XR_AMOUNT_YUAN, 0, XR_ERROR,
      XR_E_AMOUNT_RANGE, 0 },

    /* fen */
    { "14500", XR_AMOUNT_FEN, 0, XR_OK, XR_E_NONE, 14500 },
    { "0", XR_AMOUNT_FEN, 0, XR_OK, XR_E_NONE, 0 },
    { "-0", XR_AMOUNT_FEN, 0, XR_OK, XR_E_NONE, 0 },
    { "1", XR_AMOUNT_FEN, 0, XR_OK, XR_E_NONE, 1 },
    { "-1", XR_AMOUNT_FEN, 1, XR_OK, XR_E_NONE, -1 },
    { "000014500", XR_AMOUNT_FEN, 0, XR_OK, XR_E_NONE, 14500 },
    { "9999999999999999", XR_AMOUNT_FEN, 0, XR_OK, XR_E_NONE,
      XR_AMOUNT_MAX_FEN },
    { "-9999999999999999", XR_AMOUNT_FEN, 1, XR_OK, XR_E_NONE,
      -XR_AMOUNT_MAX_FEN },
    { "10000000000000000", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_AMOUNT_RANGE,
      0 },
    { "9223372036854775807", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_AMOUNT_RANGE,
      0 },
    { "9223372036854775808", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_AMOUNT_RANGE,
      0 },
    { "-9223372036854775808", XR_AMOUNT_FEN, 1, XR_ERROR,
      XR_E_AMOUNT_RANGE, 0 },
    { "-1", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_AMOUNT_NEGATIVE, 0 },
    { "145.00", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "145.5", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "1.234", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "-1.5", XR_AMOUNT_FEN, 1, XR_ERROR, XR_E_AMOUNT_PRECISION, 0 },
    { "5.", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { ".5", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1.5x", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1e3", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "-", XR_AMOUNT_FEN, 1, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "+1", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
    { "1 000", XR_AMOUNT_FEN, 0, XR_ERROR, XR_E_FIELD_FORMAT, 0 },
};


typedef struct {
    int64_t            fen;
    xr_amount_unit_e   unit;
    const char        *text;     /* NULL: XR_E_AMOUNT_RANGE */
} xr_format_case_t;


static const xr_format_case_t  xr_format_cases[] = {
    { 14500, XR_AMOUNT_YUAN, "145.00" },
    { 14550, XR_AMOUNT_YUAN, "145.50" },
    { -305, XR_AMOUNT_YUAN, "-3.05" },
    { -300, XR_AMOUNT_YUAN, "-3.00" },
    { 7, XR_AMOUNT_YUAN, "0.07" },
    { -7, XR_AMOUNT_YUAN, "-0.07" },
    { 0, XR_AMOUNT_YUAN, "0.00" },
    { 1, XR_AMOUNT_YUAN, "0.01" },
    { -1, XR_AMOUNT_YUAN, "-0.01" },
    { 99, XR_AMOUNT_YUAN, "0.99" },
    { 100, XR_AMOUNT_YUAN, "1.00" },
    { 101, XR_AMOUNT_YUAN, "1.01" },
    { 110, XR_AMOUNT_YUAN, "1.10" },
    { 150, XR_AMOUNT_DEFAULT, "1.50" },
    { XR_AMOUNT_MAX_FEN, XR_AMOUNT_YUAN, "99999999999999.99" },
    { -XR_AMOUNT_MAX_FEN, XR_AMOUNT_YUAN, "-99999999999999.99" },
    { XR_AMOUNT_MAX_FEN + 1, XR_AMOUNT_YUAN, NULL },
    { -XR_AMOUNT_MAX_FEN - 1, XR_AMOUNT_YUAN, NULL },
    { INT64_MAX, XR_AMOUNT_YUAN, NULL },
    { INT64_MIN, XR_AMOUNT_YUAN, NULL },

    { 14500, XR_AMOUNT_FEN, "14500" },
    { -7, XR_AMOUNT_FEN, "-7" },
    { 0, XR_AMOUNT_FEN, "0" },
    { XR_AMOUNT_MAX_FEN, XR_AMOUNT_FEN, "9999999999999999" },
    { -XR_AMOUNT_MAX_FEN, XR_AMOUNT_FEN, "-9999999999999999" },
    { XR_AMOUNT_MAX_FEN + 1, XR_AMOUNT_FEN, NULL },
    { -XR_AMOUNT_MAX_FEN - 1, XR_AMOUNT_FEN, NULL },
    { INT64_MAX, XR_AMOUNT_FEN, NULL },
    { INT64_MIN, XR_AMOUNT_FEN, NULL },
};


static int
parse(xr_ctx_t *ctx, const char *text, xr_amount_unit_e unit, int negative,
    const char *field, int64_t *fen)
{
    xr_ctx_clear(ctx);
    *fen = XR_SENTINEL;
    return xr_amount_parse(ctx, xr_str_from(text), unit, negative, field,
                           fen);
}


static void
test_parse_table(void **state)
{
    xr_env_t                *env = *state;
    size_t                   i;
    int64_t                  fen;
    int                      rc;
    const xr_amount_case_t  *c;

    for (i = 0; i < sizeof(xr_parse_cases) / sizeof(xr_parse_cases[0]);
         i++)
    {
        c = &xr_parse_cases[i];
        rc = parse(&env->ctx, c->text, c->unit, c->negative, "total", &fen);

        if (rc != c->rc || env->ctx.err != c->err
            || (rc == XR_OK && fen != c->fen))
        {
            print_error("case %zu \"%s\" unit %d negative %d: rc %d err %d "
                        "fen %lld (%s)\n", i, c->text, c->unit, c->negative,
                        rc, env->ctx.err, (long long) fen, env->ctx.errstr);
        }

        assert_int_equal(rc, c->rc);
        assert_int_equal(env->ctx.err, c->err);

        if (rc == XR_OK) {
            assert_true(fen == c->fen);
            assert_string_equal(env->ctx.errstr, "");

        } else {
            /* the output is left alone and the field is named */
            assert_true(fen == XR_SENTINEL);
            assert_string_equal(env->ctx.field, "total");
            assert_non_null(strstr(env->ctx.errstr, "of field total"));
        }
    }
}


static void
test_parse_length_bound(void **state)
{
    xr_env_t  *env = *state;
    int64_t    fen;
    xr_str_t   s;

    /* the text is {len, data}: nothing after len is read */
    s.data = "12.345";
    s.len = 5;
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_amount_parse(&env->ctx, s, XR_AMOUNT_YUAN, 0, "f",
                                     &fen), XR_OK);
    assert_true(fen == 1234);

    /* an embedded NUL is garbage, not an end */
    s.data = "12\0" "34";
    s.len = 5;
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_amount_parse(&env->ctx, s, XR_AMOUNT_YUAN, 0, "f",
                                     &fen), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);

    /* an empty string with no data at all */
    s.data = NULL;
    s.len = 0;
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_amount_parse(&env->ctx, s, XR_AMOUNT_YUAN, 0, "f",
                                     &fen), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
}


static void
test_parse_messages(void **state)
{
    xr_env_t  *env = *state;
    int64_t    fen;
    char       longtext[200];

    parse(&env->ctx, "1.234", XR_AMOUNT_YUAN, 0, "total", &fen);
    assert_string_equal(env->ctx.errstr,
                        "amount \"1.234\" of field total has more than two "
                        "decimals");
    assert_string_equal(env->ctx.field, "total");

    parse(&env->ctx, "145.00", XR_AMOUNT_FEN, 0, "je", &fen);
    assert_int_equal(env->ctx.err, XR_E_AMOUNT_PRECISION);
    assert_string_equal(env->ctx.errstr,
                        "amount \"145.00\" of field je has decimals: fen "
                        "amounts are whole numbers");

    parse(&env->ctx, "-5", XR_AMOUNT_YUAN, 0, "fee", &fen);
    assert_string_equal(env->ctx.errstr,
                        "amount \"-5\" of field fee is negative");

    parse(&env->ctx, "1e5", XR_AMOUNT_YUAN, 0, "fee", &fen);
    assert_string_equal(env->ctx.errstr,
                        "amount \"1e5\" of field fee is not a decimal number");

    parse(&env->ctx, "100000000000000", XR_AMOUNT_YUAN, 0, "fee", &fen);
    assert_string_equal(env->ctx.errstr,
                        "amount \"100000000000000\" of field fee is out of "
                        "range");

    parse(&env->ctx, "", XR_AMOUNT_YUAN, 0, "fee", &fen);
    assert_string_equal(env->ctx.errstr, "amount \"\" of field fee is empty");

    /* no field: no "of field", and ctx->field empty */
    parse(&env->ctx, "x", XR_AMOUNT_YUAN, 0, NULL, &fen);
    assert_string_equal(env->ctx.errstr,
                        "amount \"x\" is not a decimal number");
    assert_string_equal(env->ctx.field, "");

    /* long text is cut at 40 bytes; bytes outside printable ASCII shown
     * as '?' so errstr stays readable UTF-8 */
    memset(longtext, '7', sizeof(longtext) - 1);
    longtext[sizeof(longtext) - 1] = '\0';
    longtext[10] = 'x';
    parse(&env->ctx, longtext, XR_AMOUNT_YUAN, 0, "f", &fen);
    assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
    assert_string_equal(env->ctx.errstr,
                        "amount \"7777777777x77777777777777777777777777777..."
                        "\" of field f is not a decimal number");

    parse(&env->ctx, "1\xe4\xb8\x8a\n", XR_AMOUNT_YUAN, 0, "f", &fen);
    assert_string_equal(env->ctx.errstr,
                        "amount \"1????\" of field f is not a decimal number");
}


static void
test_parse_first_error_wins(void **state)
{
    xr_env_t  *env = *state;
    int64_t    fen = 42;

    xr_ctx_clear(&env->ctx);
    xr_fail(&env->ctx, XR_E_SYNTAX, "earlier", "earlier error");

    assert_int_equal(xr_amount_parse(&env->ctx, xr_str_from("1.234"),
                                     XR_AMOUNT_YUAN, 0, "total", &fen),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_SYNTAX);
    assert_string_equal(env->ctx.errstr, "earlier error");
    assert_string_equal(env->ctx.field, "earlier");
    assert_true(fen == 42);
}


static void
test_format_table(void **state)
{
    xr_env_t                *env = *state;
    size_t                   i;
    int                      rc;
    xr_str_t                 out;
    const xr_format_case_t  *c;

    for (i = 0; i < sizeof(xr_format_cases) / sizeof(xr_format_cases[0]);
         i++)
    {
        c = &xr_format_cases[i];
        xr_ctx_clear(&env->ctx);
        out.data = NULL;
        out.len = 0;

        rc = xr_amount_format(&env->ctx, c->fen, c->unit, &out);

        if (c->text == NULL) {
            assert_int_equal(rc, XR_ERROR);
            assert_int_equal(env->ctx.err, XR_E_AMOUNT_RANGE);
            assert_non_null(strstr(env->ctx.errstr, "out of range"));
            continue;
        }

        assert_int_equal(rc, XR_OK);
        assert_int_equal(env->ctx.err, XR_E_NONE);
        assert_int_equal(out.len, strlen(c->text));
        assert_memory_equal(out.data, c->text, out.len);
        /* from the pool, NUL-terminated like every xr_pstr() */
        assert_int_equal(out.data[out.len], '\0');
    }
}


static void
roundtrip(xr_ctx_t *ctx, int64_t v)
{
    static const xr_amount_unit_e  units[] = {
        XR_AMOUNT_YUAN, XR_AMOUNT_FEN, XR_AMOUNT_DEFAULT
    };

    size_t    u;
    int64_t   back;
    xr_str_t  text;

    for (u = 0; u < sizeof(units) / sizeof(units[0]); u++) {
        xr_ctx_clear(ctx);
        assert_int_equal(xr_amount_format(ctx, v, units[u], &text), XR_OK);

        back = XR_SENTINEL;
        if (xr_amount_parse(ctx, text, units[u], 1, "rt", &back) != XR_OK
            || back != v)
        {
            fail_msg("round trip of %lld unit %d: \"%.*s\" -> %lld (%s)",
                     (long long) v, units[u], (int) text.len, text.data,
                     (long long) back, ctx->errstr);
        }

        /* without negative allowed only the sign matters */
        xr_ctx_clear(ctx);
        back = XR_SENTINEL;
        if (v < 0) {
            assert_int_equal(xr_amount_parse(ctx, text, units[u], 0, "rt",
                                             &back), XR_ERROR);
            assert_int_equal(ctx->err, XR_E_AMOUNT_NEGATIVE);

        } else {
            assert_int_equal(xr_amount_parse(ctx, text, units[u], 0, "rt",
                                             &back), XR_OK);
            assert_true(back == v);
        }
    }
}


static void
test_roundtrip(void **state)
{
    xr_env_t  *env = *state;
    int64_t    v, step;
    size_t     i;
    xr_pool_t *pool;

    static const int64_t  edges[] = {
        0, 1, 9, 10, 11, 99, 100, 101, 109, 110, 199, 999, 1000, 1001,
        14500, 14505, INT64_C(100000000000000), INT64_C(999999999999999),
        INT64_C(1000000000000000), XR_AMOUNT_MAX_FEN - 101,
        XR_AMOUNT_MAX_FEN - 100, XR_AMOUNT_MAX_FEN - 99,
        XR_AMOUNT_MAX_FEN - 1, XR_AMOUNT_MAX_FEN
    };

    for (i = 0; i < sizeof(edges) / sizeof(edges[0]); i++) {
        roundtrip(&env->ctx, edges[i]);
        roundtrip(&env->ctx, -edges[i]);
    }

    /* every value around zero, then a sweep of the whole range; a pool of
     * its own per batch keeps memory flat */
    pool = xr_pool_create(0);
    env->ctx.pool = pool;

    for (v = -20000; v <= 20000; v++) {
        roundtrip(&env->ctx, v);
        if (v % 5000 == 0) {
            xr_pool_destroy(pool);
            pool = xr_pool_create(0);
            env->ctx.pool = pool;
        }
    }

    step = XR_AMOUNT_MAX_FEN / 50021;
    for (v = -XR_AMOUNT_MAX_FEN; v <= XR_AMOUNT_MAX_FEN - step; v += step) {
        roundtrip(&env->ctx, v);
        roundtrip(&env->ctx, v + 1);
    }

    xr_pool_destroy(pool);
    env->ctx.pool = env->pool;
}


/* Every yuan text with up to two decimals for 0 to 3 yuan, both ways. */

static void
test_yuan_exhaustive(void **state)
{
    xr_env_t  *env = *state;
    char       text[32];
    int        y, f;
    int64_t    fen;

    for (y = 0; y <= 3; y++) {
        for (f = 0; f <= 99; f++) {
            snprintf(text, sizeof(text), "%d.%02d", y, f);
            assert_int_equal(parse(&env->ctx, text, XR_AMOUNT_YUAN, 0, "f",
                                   &fen), XR_OK);
            assert_true(fen == y * 100 + f);

            snprintf(text, sizeof(text), "-%d.%02d", y, f);
            assert_int_equal(parse(&env->ctx, text, XR_AMOUNT_YUAN, 1, "f",
                                   &fen), XR_OK);
            assert_true(fen == -(y * 100 + f));

            snprintf(text, sizeof(text), "%d.%02d0", y, f);
            assert_int_equal(parse(&env->ctx, text, XR_AMOUNT_YUAN, 0, "f",
                                   &fen), XR_ERROR);
            assert_int_equal(env->ctx.err, XR_E_AMOUNT_PRECISION);
        }

        for (f = 0; f <= 9; f++) {
            snprintf(text, sizeof(text), "%d.%d", y, f);
            assert_int_equal(parse(&env->ctx, text, XR_AMOUNT_YUAN, 0, "f",
                                   &fen), XR_OK);
            assert_true(fen == y * 100 + f * 10);
        }
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        xr_env_test(test_parse_table),
        xr_env_test(test_parse_length_bound),
        xr_env_test(test_parse_messages),
        xr_env_test(test_parse_first_error_wins),
        xr_env_test(test_format_table),
        xr_env_test(test_roundtrip),
        xr_env_test(test_yuan_exhaustive),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
