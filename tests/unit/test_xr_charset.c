/*
 * core/xr_charset.c: UTF-8 validation and length, GBK <-> UTF-8.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "xr_charset.h"


typedef struct {
    xr_pool_t  *pool;
    xr_ctx_t    ctx;
} xr_env_t;


/* Byte strings with their length, so that NUL and 0x80 can be in them. */
typedef struct {
    const char  *s;
    size_t       len;
} xr_bytes_t;

#define B(s)  { s, sizeof(s) - 1 }


static int
setup(void **state)
{
    xr_env_t  *env;

    env = test_calloc(1, sizeof(xr_env_t));
    env->pool = xr_pool_create(0);
    assert_non_null(env->pool);
    xr_ctx_init(&env->ctx, env->pool);
    *state = env;
    return 0;
}


static int
teardown(void **state)
{
    xr_env_t  *env = *state;

    xr_pool_destroy(env->pool);
    test_free(env);
    return 0;
}


static void
assert_bytes(xr_str_t s, const char *want, size_t len)
{
    size_t  i;

    if (s.len == len && (len == 0 || memcmp(s.data, want, len) == 0)) {
        return;
    }

    print_error("got:  ");
    for (i = 0; i < s.len; i++) {
        print_error("%02x", (unsigned char) s.data[i]);
    }
    print_error("\nwant: ");
    for (i = 0; i < len; i++) {
        print_error("%02x", (unsigned char) want[i]);
    }
    print_error("\n");
    fail();
}


static void
test_utf8_valid(void **state)
{
    static const xr_bytes_t  ok[] = {
        B(""),
        B("abc"),
        B("\x00"),                      /* NUL is a valid code point */
        B("\x7f"),
        B("\xc2\x80"),                  /* U+0080, smallest 2-byte */
        B("\xc3\xa9"),                  /* é */
        B("\xdf\xbf"),                  /* U+07FF */
        B("\xe0\xa0\x80"),              /* U+0800, smallest 3-byte */
        B("\xe4\xb8\x8a\xe6\xb5\xb7"),  /* 上海 */
        B("\xed\x9f\xbf"),              /* U+D7FF, below the surrogates */
        B("\xee\x80\x80"),              /* U+E000, above them */
        B("\xef\xbf\xbd"),              /* U+FFFD */
        B("\xef\xbf\xbf"),              /* U+FFFF */
        B("\xf0\x90\x80\x80"),          /* U+10000, smallest 4-byte */
        B("\xf0\x9f\x98\x80"),          /* U+1F600 emoji */
        B("\xf4\x8f\xbf\xbf"),          /* U+10FFFF, the last */
        B("a\xf0\x9f\x98\x80z\xe4\xb8\x8a"),
    };

    xr_env_t  *env = *state;
    size_t     i;

    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        xr_ctx_clear(&env->ctx);
        if (xr_utf8_validate(&env->ctx, ok[i].s, ok[i].len, "f") != XR_OK) {
            fail_msg("case %zu rejected: %s", i, env->ctx.errstr);
        }
        assert_int_equal(env->ctx.err, XR_E_NONE);
    }

    /* nothing at all */
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_utf8_validate(&env->ctx, NULL, 0, NULL), XR_OK);
}


static void
test_utf8_invalid(void **state)
{
    static const struct {
        xr_bytes_t  b;
        size_t      at;
    } bad[] = {
        /* overlongs */
        { B("\xc0\x80"), 0 },
        { B("\xc1\xbf"), 0 },
        { B("\xe0\x80\x80"), 0 },
        { B("\xe0\x9f\xbf"), 0 },
        { B("\xf0\x80\x80\x80"), 0 },
        { B("\xf0\x8f\xbf\xbf"), 0 },
        { B("ab\xc0\xaf"), 2 },
        /* surrogates */
        { B("\xed\xa0\x80"), 0 },
        { B("\xed\xbf\xbf"), 0 },
        { B("x\xed\xb0\x80"), 1 },
        { B("\xed\xa0\xbd\xed\xb8\x80"), 0 },   /* CESU-8 emoji */
        /* beyond U+10FFFF */
        { B("\xf4\x90\x80\x80"), 0 },
        { B("\xf5\x80\x80\x80"), 0 },
        { B("\xf7\xbf\xbf\xbf"), 0 },
        { B("\xf8\x88\x80\x80\x80"), 0 },
        { B("\xfc\x84\x80\x80\x80\x80"), 0 },
        { B("\xfe"), 0 },
        { B("\xff"), 0 },
        /* stray continuation bytes */
        { B("\x80"), 0 },
        { B("abc\xbf"), 3 },
        { B("\xe4\xb8\x8a\x8a"), 3 },
        /* truncated */
        { B("\xc3"), 0 },
        { B("a\xe4"), 1 },
        { B("ab\xe4\xb8"), 2 },
        { B("\xf0\x9f\x98"), 0 },
        { B("\xe4\xb8\x8a\xe6\xb5"), 3 },
        /* a continuation byte missing in the middle */
        { B("\xe4\x41\x8a"), 0 },
        { B("\xc3\x28"), 0 },
        { B("\xf0\x9f\x28\x80"), 0 },
        { B("\xe4\xb8\xc3\xa9"), 0 },
        /* GBK bytes are not UTF-8 */
        { B("\xc9\xcf\xba\xa3"), 0 },
    };

    xr_env_t  *env = *state;
    size_t     i;
    char       want[64];

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xr_ctx_clear(&env->ctx);
        if (xr_utf8_validate(&env->ctx, bad[i].b.s, bad[i].b.len, "name")
            != XR_ERROR)
        {
            fail_msg("case %zu accepted", i);
        }
        assert_int_equal(env->ctx.err, XR_E_CHARSET);
        assert_string_equal(env->ctx.field, "name");

        snprintf(want, sizeof(want), "invalid UTF-8 at byte %zu of field "
                 "name", bad[i].at);
        if (strcmp(env->ctx.errstr, want) != 0) {
            fail_msg("case %zu: \"%s\", want \"%s\"", i, env->ctx.errstr,
                     want);
        }
    }

    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_utf8_validate(&env->ctx, "\xff", 1, NULL), XR_ERROR);
    assert_string_equal(env->ctx.errstr, "invalid UTF-8 at byte 0");
    assert_string_equal(env->ctx.field, "");
}


/* Every code point, encoded by hand, is valid exactly when it should be. */

static void
test_utf8_all_code_points(void **state)
{
    xr_env_t       *env = *state;
    uint32_t        cp;
    unsigned char   b[4];
    size_t          n;
    int             rc, want;

    for (cp = 0; cp <= 0x10ffff; cp++) {
        if (cp < 0x80) {
            b[0] = (unsigned char) cp;
            n = 1;
        } else if (cp < 0x800) {
            b[0] = 0xc0 | (cp >> 6);
            b[1] = 0x80 | (cp & 0x3f);
            n = 2;
        } else if (cp < 0x10000) {
            b[0] = 0xe0 | (cp >> 12);
            b[1] = 0x80 | ((cp >> 6) & 0x3f);
            b[2] = 0x80 | (cp & 0x3f);
            n = 3;
        } else {
            b[0] = 0xf0 | (cp >> 18);
            b[1] = 0x80 | ((cp >> 12) & 0x3f);
            b[2] = 0x80 | ((cp >> 6) & 0x3f);
            b[3] = 0x80 | (cp & 0x3f);
            n = 4;
        }

        want = (cp >= 0xd800 && cp <= 0xdfff) ? XR_ERROR : XR_OK;

        xr_ctx_clear(&env->ctx);
        rc = xr_utf8_validate(&env->ctx, (char *) b, n, NULL);
        if (rc != want) {
            fail_msg("U+%04X: rc %d", (unsigned) cp, rc);
        }

        assert_int_equal(xr_utf8_length((char *) b, n), want == XR_OK ? 1
                                                                       : n);

        /* the same sequence cut short is never valid */
        if (n > 1) {
            xr_ctx_clear(&env->ctx);
            assert_int_equal(xr_utf8_validate(&env->ctx, (char *) b, n - 1,
                                              NULL), XR_ERROR);
        }
    }
}


static void
test_utf8_length(void **state)
{
    static const struct {
        xr_bytes_t  b;
        size_t      n;
    } cases[] = {
        { B(""), 0 },
        { B("abc"), 3 },
        { B("\xe4\xb8\x8a\xe6\xb5\xb7"), 2 },
        { B("a\xf0\x9f\x98\x80" "b"), 3 },
        { B("\xc3\xa9\xc3\xa9"), 2 },
        { B("\x00\x00"), 2 },
        /* invalid bytes count one each */
        { B("\x80\x80\x80"), 3 },
        { B("\xe4\xb8"), 2 },
        { B("a\xc0\x80"), 3 },
        { B("\xed\xa0\x80"), 3 },
        { B("\xff\xe4\xb8\x8a"), 2 },
        { B("\xe4\xb8\x8a\xbf\xbf"), 3 },
    };

    size_t  i, n;

    (void) state;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        n = xr_utf8_length(cases[i].b.s, cases[i].b.len);
        if (n != cases[i].n) {
            fail_msg("case %zu: %zu, want %zu", i, n, cases[i].n);
        }
    }
}


static const struct {
    xr_bytes_t  gbk;
    xr_bytes_t  utf8;
} xr_gbk_pairs[] = {
    { B(""), B("") },
    { B("abc 123"), B("abc 123") },
    { B("\xc9\xcf\xba\xa3"), B("\xe4\xb8\x8a\xe6\xb5\xb7") },       /* 上海 */
    { B("\xc9\xcf\xba\xa3\xca\xd0"),                              /* 上海市 */
      B("\xe4\xb8\x8a\xe6\xb5\xb7\xe5\xb8\x82") },
    { B("\xb1\xb1\xbe\xa9"), B("\xe5\x8c\x97\xe4\xba\xac") },       /* 北京 */
    { B("\xd2\xbd\xb1\xa3"), B("\xe5\x8c\xbb\xe4\xbf\x9d") },       /* 医保 */
    { B("abc\xc9\xcf\xba\xa3" "123"),
      B("abc\xe4\xb8\x8a\xe6\xb5\xb7" "123") },
    { B("\xa1\xa4"), B("\xc2\xb7") },                               /* · */
    { B("\xa8\xa6"), B("\xc3\xa9") },                               /* é */
    { B("\x80"), B("\xe2\x82\xac") },                               /* € */
    { B("\x80\xc9\xcf" "5\x80"),
      B("\xe2\x82\xac\xe4\xb8\x8a" "5\xe2\x82\xac") },
};


static void
test_gbk_decode(void **state)
{
    xr_env_t  *env = *state;
    size_t     i;
    xr_str_t   out;

    for (i = 0; i < sizeof(xr_gbk_pairs) / sizeof(xr_gbk_pairs[0]); i++) {
        xr_ctx_clear(&env->ctx);
        if (xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK, xr_gbk_pairs[i].gbk.s,
                               xr_gbk_pairs[i].gbk.len, &out, "name")
            != XR_OK)
        {
            fail_msg("case %zu: %s", i, env->ctx.errstr);
        }
        assert_bytes(out, xr_gbk_pairs[i].utf8.s, xr_gbk_pairs[i].utf8.len);
    }

    /* GB18030 four-byte sequences a GBK system may pass on are taken */
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK,
                                        "\x81\x30\x81\x30", 4, &out, NULL),
                     XR_OK);
    assert_bytes(out, "\xc2\x80", 2);
}


static void
test_gbk_encode(void **state)
{
    xr_env_t  *env = *state;
    size_t     i;
    xr_str_t   out;

    for (i = 0; i < sizeof(xr_gbk_pairs) / sizeof(xr_gbk_pairs[0]); i++) {
        xr_ctx_clear(&env->ctx);
        if (xr_charset_from_utf8(&env->ctx, XR_CHARSET_GBK,
                                 xr_gbk_pairs[i].utf8.s,
                                 xr_gbk_pairs[i].utf8.len, &out, "name")
            != XR_OK)
        {
            fail_msg("case %zu: %s", i, env->ctx.errstr);
        }
        assert_bytes(out, xr_gbk_pairs[i].gbk.s, xr_gbk_pairs[i].gbk.len);
    }
}


static void
test_gbk_invalid(void **state)
{
    static const struct {
        xr_bytes_t  b;
        size_t      at;
    } bad[] = {
        { B("\xa1\x7f"), 0 },               /* 0x7f is never a trail byte */
        { B("ab\xff\xa1"), 2 },             /* 0xff is never a lead byte */
        { B("\xc9\xcf\xc9\x20"), 2 },       /* a space after a lead byte */
        { B("\xc9"), 0 },                   /* cut after the lead byte */
        { B("ab\xc9\xcf\xba"), 4 },
        { B("\x81\x30\x81"), 0 },           /* cut four-byte sequence */
    };

    xr_env_t  *env = *state;
    size_t     i;
    xr_str_t   out;
    char       want[80];

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xr_ctx_clear(&env->ctx);
        if (xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK, bad[i].b.s,
                               bad[i].b.len, &out, "xm")
            != XR_ERROR)
        {
            fail_msg("case %zu accepted", i);
        }
        assert_int_equal(env->ctx.err, XR_E_CHARSET);
        assert_string_equal(env->ctx.field, "xm");

        snprintf(want, sizeof(want), "invalid GBK byte sequence at byte %zu "
                 "of field xm", bad[i].at);
        if (strcmp(env->ctx.errstr, want) != 0) {
            fail_msg("case %zu: \"%s\", want \"%s\"", i, env->ctx.errstr,
                     want);
        }
    }

    /* a NUL byte is refused before iconv sees it */
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK,
                                        "ab\0cd", 5, &out, "xm"), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CHARSET);
    assert_string_equal(env->ctx.errstr,
                        "NUL byte in GBK text at byte 2 of field xm");

    /* empty GBK text, even without data, is empty UTF-8 */
    xr_ctx_clear(&env->ctx);
    out.data = NULL;
    out.len = 99;
    assert_int_equal(xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK, NULL, 0,
                                        &out, NULL), XR_OK);
    assert_int_equal(out.len, 0);
    assert_non_null(out.data);

    xr_ctx_clear(&env->ctx);
    out.data = NULL;
    out.len = 99;
    assert_int_equal(xr_charset_from_utf8(&env->ctx, XR_CHARSET_GBK, NULL,
                                          0, &out, NULL), XR_OK);
    assert_int_equal(out.len, 0);
}


static void
test_gbk_unrepresentable(void **state)
{
    xr_env_t  *env = *state;
    xr_str_t   out;

    /* an emoji has no GBK code */
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_from_utf8(&env->ctx, XR_CHARSET_GBK,
                                          "ab\xf0\x9f\x98\x80", 6, &out,
                                          "xm"), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CHARSET);
    assert_string_equal(env->ctx.field, "xm");
    assert_string_equal(env->ctx.errstr,
                        "character at byte 2 not representable in GBK in "
                        "field xm");

    /* nor has a private-use character */
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_from_utf8(&env->ctx, XR_CHARSET_GBK,
                                          "\xe4\xb8\x8a\xee\x80\x80", 6, &out,
                                          NULL), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CHARSET);
    assert_string_equal(env->ctx.errstr,
                        "character at byte 3 not representable in GBK");

    /* invalid UTF-8 is found before conversion */
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_from_utf8(&env->ctx, XR_CHARSET_GBK,
                                          "a\xc0\x80", 3, &out, "xm"),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CHARSET);
    assert_string_equal(env->ctx.errstr,
                        "invalid UTF-8 at byte 1 of field xm");
}


static void
test_first_error_wins(void **state)
{
    xr_env_t  *env = *state;
    xr_str_t   out;

    /*
     * An earlier error stays as it was: the encoder once rewrote errstr of
     * whatever error was already on the context.
     */
    xr_ctx_clear(&env->ctx);
    xr_fail(&env->ctx, XR_E_CHARSET, "earlier", "earlier error");

    assert_int_equal(xr_charset_from_utf8(&env->ctx, XR_CHARSET_GBK,
                                          "\xf0\x9f\x98\x80", 4, &out, "xm"),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CHARSET);
    assert_string_equal(env->ctx.errstr, "earlier error");
    assert_string_equal(env->ctx.field, "earlier");

    assert_int_equal(xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK,
                                        "\xa1\x7f", 2, &out, "xm"),
                     XR_ERROR);
    assert_string_equal(env->ctx.errstr, "earlier error");
}


static void
test_utf8_passthrough(void **state)
{
    xr_env_t  *env = *state;
    xr_str_t   out;
    const char  *s = "\xe4\xb8\x8a\xe6\xb5\xb7";

    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_to_utf8(&env->ctx, XR_CHARSET_UTF8, s, 6,
                                        &out, NULL), XR_OK);
    assert_bytes(out, s, 6);

    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_from_utf8(&env->ctx, XR_CHARSET_UTF8, s, 6,
                                          &out, NULL), XR_OK);
    assert_bytes(out, s, 6);

    /* UTF-8 in, UTF-8 out, still validated */
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_to_utf8(&env->ctx, XR_CHARSET_UTF8,
                                        "\xc9\xcf", 2, &out, "f"), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CHARSET);

    assert_string_equal(xr_charset_name(XR_CHARSET_UTF8), "UTF-8");
    assert_string_equal(xr_charset_name(XR_CHARSET_GBK), "GBK");
}


/*
 * Every GB2312 hanzi row (0xb0-0xf7 x 0xa1-0xfe) decodes, re-encodes to
 * the same two bytes and is one character long; so do GBK's extension
 * rows 0x81-0xa0 x 0x40-0xfe.
 */

static void
test_gbk_roundtrip_rows(void **state)
{
    xr_env_t    *env = *state;
    xr_pool_t   *pool;
    unsigned     lead, trail, n;
    char         in[2];
    xr_str_t     utf8, back;

    pool = xr_pool_create(0);
    env->ctx.pool = pool;
    n = 0;

    for (lead = 0x81; lead <= 0xf7; lead++) {
        for (trail = 0x40; trail <= 0xfe; trail++) {
            if (trail == 0x7f) {
                continue;
            }
            if (lead >= 0xa1 && lead < 0xb0) {
                continue;           /* symbols, user-defined areas */
            }
            if (lead >= 0xb0 && trail < 0xa1) {
                continue;           /* GBK/4 extension: tested via 0x81 */
            }
            if (lead == 0xd7 && trail >= 0xfa) {
                continue;           /* the five unassigned GB2312 codes */
            }

            in[0] = (char) lead;
            in[1] = (char) trail;

            xr_ctx_clear(&env->ctx);
            if (xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK, in, 2, &utf8,
                                   NULL) != XR_OK)
            {
                fail_msg("%02x%02x: %s", lead, trail, env->ctx.errstr);
            }
            assert_int_equal(utf8.len, 3);
            assert_int_equal(xr_utf8_length(utf8.data, utf8.len), 1);

            xr_ctx_clear(&env->ctx);
            if (xr_charset_from_utf8(&env->ctx, XR_CHARSET_GBK, utf8.data,
                                     utf8.len, &back, NULL) != XR_OK)
            {
                fail_msg("%02x%02x back: %s", lead, trail, env->ctx.errstr);
            }
            assert_bytes(back, in, 2);
            n++;
        }

        xr_pool_destroy(pool);
        pool = xr_pool_create(0);
        env->ctx.pool = pool;
    }

    /* 6763 hanzi in GB2312 plus 32 rows of 190 */
    assert_int_equal(n, 6763 + 32 * 190);

    xr_pool_destroy(pool);
    env->ctx.pool = env->pool;
}


/* A long mixed text converts in one call, both ways, sizes exact. */

static void
test_gbk_long(void **state)
{
    xr_env_t  *env = *state;
    char       gbk[3 * 4000], utf8[4 * 4000];
    size_t     i, gl = 0, ul = 0;
    xr_str_t   out;

    for (i = 0; i < 4000; i++) {
        switch (i % 3) {
        case 0:
            memcpy(gbk + gl, "\xc9\xcf", 2);
            memcpy(utf8 + ul, "\xe4\xb8\x8a", 3);
            gl += 2;
            ul += 3;
            break;
        case 1:
            gbk[gl++] = 'x';
            utf8[ul++] = 'x';
            break;
        default:
            gbk[gl++] = '\x80';
            memcpy(utf8 + ul, "\xe2\x82\xac", 3);
            ul += 3;
            break;
        }
    }

    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK, gbk, gl,
                                        &out, NULL), XR_OK);
    assert_bytes(out, utf8, ul);

    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_from_utf8(&env->ctx, XR_CHARSET_GBK, utf8,
                                          ul, &out, NULL), XR_OK);
    assert_bytes(out, gbk, gl);

    /* all euro signs: the decoder's worst case, 1 byte -> 3 */
    memset(gbk, '\x80', 1000);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_charset_to_utf8(&env->ctx, XR_CHARSET_GBK, gbk, 1000,
                                        &out, NULL), XR_OK);
    assert_int_equal(out.len, 3000);
    assert_int_equal(xr_utf8_length(out.data, out.len), 1000);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test_setup_teardown(test_utf8_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_utf8_all_code_points, setup,
                                        teardown),
        cmocka_unit_test(test_utf8_length),
        cmocka_unit_test_setup_teardown(test_gbk_decode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gbk_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gbk_invalid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gbk_unrepresentable, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_first_error_wins, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_utf8_passthrough, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gbk_roundtrip_rows, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_gbk_long, setup, teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
