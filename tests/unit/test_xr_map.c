/*
 * The mapping, through the whole translate path, on the small "demo"
 * domain of tests/fixtures/mini: alpha (JSON, UTF-8, yuan) and beta (XML,
 * GBK, fen).
 */

#include "xr_test.h"
#include "xr_profile.h"
#include "xr_translate.h"
#include "xr_adapter.h"
#include "xr_charset.h"


typedef struct {
    xr_pool_t           *pool;
    xr_ctx_t             ctx;
    xr_config_t         *cfg;
    const xr_profile_t  *alpha;
    const xr_profile_t  *beta;
} xr_fix_t;


static const char  xr_pay_alpha[] =
    "{\"head\":{\"txn\":\"P1\",\"id\":\"A2024000001\",\"dest\":\"320100\","
    "\"time\":\"2024-12-29 14:17:40\"},"
    "\"body\":{\"person\":\"测试甲\",\"sex\":\"2\",\"total\":145.05,"
    "\"refund\":\"-3.10\",\"n\":\"3\",\"day\":\"20241229\","
    "\"at\":\"2024-12-29 08:00:01\",\"vip\":true,"
    "\"items\":[{\"c\":\"X01\",\"p\":14000},{\"c\":\"X02\",\"p\":505}]}}";


static int
setup(void **state)
{
    xr_fix_t  *f = calloc(1, sizeof(xr_fix_t));

    f->pool = xr_pool_create(0);
    xr_ctx_init(&f->ctx, f->pool);
    if (xr_config_load(&f->ctx, XR_SOURCE_DIR "/tests/fixtures/mini", &f->cfg)
        != XR_OK)
    {
        fprintf(stderr, "mini config: %s\n", f->ctx.errstr);
        return -1;
    }
    f->alpha = xr_config_profile(f->cfg, xr_str_from("alpha.demo"));
    f->beta = xr_config_profile(f->cfg, xr_str_from("beta.demo"));
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    xr_fix_t  *f = *state;

    xr_config_free(f->cfg);
    xr_pool_destroy(f->pool);
    free(f);
    return 0;
}


static int
decode(xr_fix_t *f, const xr_profile_t *p, xr_dir_e dir, const char *txn,
    const char *data, size_t len, xr_msg_t *msg)
{
    xr_ctx_clear(&f->ctx);
    return xr_decode(&f->ctx, p, dir, xr_str_from(txn), data, len, msg);
}


static const xr_node_t *
get(const xr_msg_t *msg, const char *name)
{
    return xr_object_get(msg->body, xr_str_from(name));
}


static void
test_decode_request(void **state)
{
    xr_fix_t         *f = *state;
    xr_msg_t          msg;
    const xr_node_t  *n;

    assert_int_equal(decode(f, f->alpha, XR_DIR_REQUEST, "", xr_pay_alpha,
                            strlen(xr_pay_alpha), &msg), XR_OK);
    assert_true(xr_str_eq(msg.txn, "pay"));
    assert_true(xr_str_eq(msg.domain, "demo"));
    assert_true(xr_str_eq(msg.msg_id, "A2024000001"));
    assert_true(xr_str_eq(msg.dest, "320100"));
    /* alpha carries no origin: it is the profile's region */
    assert_true(xr_str_eq(msg.origin, "310000"));
    assert_int_equal(msg.time.hour, 14);

    n = get(&msg, "total");
    assert_int_equal(n->type, XR_NODE_AMOUNT);
    assert_int_equal(n->u.i, 14505);
    assert_int_equal(get(&msg, "refund")->u.i, -310);
    assert_true(xr_str_eq(get(&msg, "gender")->u.s, "female"));
    assert_int_equal(get(&msg, "count")->u.i, 3);
    assert_int_equal(get(&msg, "day")->u.t.day, 29);
    assert_false(get(&msg, "day")->u.t.has_time);
    assert_int_equal(get(&msg, "at")->u.t.sec, 1);
    assert_true(get(&msg, "vip")->u.b);

    n = get(&msg, "items");
    assert_int_equal(n->type, XR_NODE_ARRAY);
    assert_int_equal(n->u.arr.count, 2);
    /* item prices are fen in alpha (amount=fen) */
    assert_int_equal(xr_object_get(n->u.arr.items[1],
                                   xr_str_from("price"))->u.i, 505);
}


static void
test_translate_alpha_to_beta(void **state)
{
    xr_fix_t    *f = *state;
    xr_msg_t     msg, back;
    xr_buf_t     out;
    xr_str_t     utf8;
    const char  *want =
        "<?xml version=\"1.0\" encoding=\"GBK\"?>"
        "<MSG><HEAD><CODE>7001</CODE><SN>A2024000001</SN><TO>320100</TO>"
        "<TS>20241229141740</TS></HEAD>"
        "<BODY><XM>测试甲</XM><XB>F</XB><JE>14505</JE><RQ>2024-12-29</RQ>"
        "<MX><ROW><DM>X01</DM><DJ>14000</DJ></ROW>"
        "<ROW><DM>X02</DM><DJ>505</DJ></ROW></MX></BODY></MSG>";

    assert_int_equal(decode(f, f->alpha, XR_DIR_REQUEST, "", xr_pay_alpha,
                            strlen(xr_pay_alpha), &msg), XR_OK);
    xr_buf_init(&out, f->pool, 0);
    if (xr_encode(&f->ctx, f->beta, &msg, &out) != XR_OK) {
        fail_msg("encode: %s", f->ctx.errstr);
    }

    /* the bytes are GBK: convert back to compare */
    assert_int_equal(xr_charset_to_utf8(&f->ctx, XR_CHARSET_GBK, out.data,
                                        out.len, &utf8, NULL), XR_OK);
    assert_int_equal(utf8.len, strlen(want));
    assert_memory_equal(utf8.data, want, utf8.len);
    /* and not UTF-8: 测 is 0xB2 0xE2 in GBK */
    assert_non_null(memmem(out.data, out.len, "\xb2\xe2", 2));

    /* back: every field beta carries survives, amounts to the fen */
    assert_int_equal(decode(f, f->beta, XR_DIR_REQUEST, "", out.data,
                            out.len, &back), XR_OK);
    assert_true(xr_str_eq(back.txn, "pay"));
    assert_true(xr_str_eq(back.msg_id, "A2024000001"));
    assert_true(xr_node_equal(get(&back, "total"), get(&msg, "total")));
    assert_true(xr_node_equal(get(&back, "items"), get(&msg, "items")));
    assert_true(xr_node_equal(get(&back, "gender"), get(&msg, "gender")));
    assert_true(xr_node_equal(get(&back, "day"), get(&msg, "day")));
    /* beta cannot carry refund: it is gone, not invented */
    assert_null(get(&back, "refund"));
}


typedef struct {
    const char  *name;
    const char  *find;
    const char  *replace;
    xr_err_e     err;
    const char  *field;
} xr_bad_case_t;


static void
test_bad_values(void **state)
{
    static const xr_bad_case_t  cases[] = {
        { "three decimals", "145.05", "145.055", XR_E_AMOUNT_PRECISION,
          "total" },
        { "negative total", "145.05", "-145.05", XR_E_AMOUNT_NEGATIVE,
          "total" },
        { "amount not a number", "145.05", "\"1O5\"", XR_E_FIELD_FORMAT,
          "total" },
        { "missing required", "\"total\":145.05,", "", XR_E_FIELD_MISSING,
          "total" },
        { "unknown txn code", "\"P1\"", "\"P9\"", XR_E_TXN_UNKNOWN, "@txn" },
        { "no txn code", "\"txn\":\"P1\",", "", XR_E_FIELD_MISSING, "@txn" },
        { "unmapped code", "\"sex\":\"2\"", "\"sex\":\"7\"",
          XR_E_CODE_UNMAPPED, "gender" },
        { "object for a value", "\"n\":\"3\"", "\"n\":{\"a\":1}",
          XR_E_FIELD_TYPE, "count" },
        { "int with decimals", "\"n\":\"3\"", "\"n\":3.5", XR_E_FIELD_TYPE,
          "count" },
        { "bad date", "20241229", "20241329", XR_E_FIELD_FORMAT, "day" },
        { "too long", "测试甲", "测试甲测试甲测试甲测试甲", XR_E_FIELD_TOO_LONG,
          "person" },
        { "msg id too long", "A2024000001", "A20240000010000000000000",
          XR_E_FIELD_TOO_LONG, "@msg_id" },
        { "item not object", "{\"c\":\"X01\",\"p\":14000}", "7",
          XR_E_FIELD_TYPE, "items" },
        { "item missing code", "\"c\":\"X02\",", "", XR_E_FIELD_MISSING,
          "code" },
    };
    xr_fix_t    *f = *state;
    xr_msg_t     msg;
    char         buf[2048], *at;
    size_t       i, flen;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        at = strstr(xr_pay_alpha, cases[i].find);
        assert_non_null(at);
        flen = strlen(cases[i].find);
        snprintf(buf, sizeof(buf), "%.*s%s%s", (int) (at - xr_pay_alpha),
                 xr_pay_alpha, cases[i].replace, at + flen);

        if (decode(f, f->alpha, XR_DIR_REQUEST, "", buf, strlen(buf), &msg)
            != XR_ERROR)
        {
            fail_msg("%s: decoded", cases[i].name);
        }
        if (f->ctx.err != cases[i].err) {
            fail_msg("%s: got %s (%s)", cases[i].name,
                     xr_error_info(f->ctx.err)->name, f->ctx.errstr);
        }
        if (strcmp(f->ctx.field, cases[i].field) != 0) {
            fail_msg("%s: field \"%s\", expected \"%s\"", cases[i].name,
                     f->ctx.field, cases[i].field);
        }
    }
}


static void
test_encode_errors(void **state)
{
    xr_fix_t   *f = *state;
    xr_msg_t    msg;
    xr_buf_t    out;
    xr_node_t  *g;

    assert_int_equal(decode(f, f->alpha, XR_DIR_REQUEST, "", xr_pay_alpha,
                            strlen(xr_pay_alpha), &msg), XR_OK);

    /* beta has no code for "unknown" */
    g = (xr_node_t *) get(&msg, "gender");
    g->u.s = xr_str_from("unknown");
    xr_buf_init(&out, f->pool, 0);
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_encode(&f->ctx, f->beta, &msg, &out), XR_ERROR);
    assert_int_equal(f->ctx.err, XR_E_CODE_UNMAPPED);
    assert_string_equal(f->ctx.field, "gender");
    assert_non_null(strstr(f->ctx.errstr, "beta.demo"));

    /* beta does not offer "look" */
    msg.txn = xr_str_from("look");
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_encode(&f->ctx, f->beta, &msg, &out), XR_ERROR);
    assert_int_equal(f->ctx.err, XR_E_TXN_UNSUPPORTED);
}


static void
test_responses(void **state)
{
    xr_fix_t    *f = *state;
    xr_msg_t     msg;
    xr_buf_t     out;
    xr_str_t     utf8;
    const char  *ok =
        "<?xml version=\"1.0\" encoding=\"GBK\"?><MSG><HEAD><RC>0000</RC>"
        "<TEXT></TEXT><CODE>7001</CODE><SN>B77</SN></HEAD>"
        "<BODY><LSH>S0001</LSH><JE>14505</JE></BODY></MSG>";
    const char  *bad =
        "<?xml version=\"1.0\"?><MSG><HEAD><RC>3001</RC>"
        "<TEXT>余额不足</TEXT><SN>B78</SN></HEAD></MSG>";
    const char  *want_ok =
        "{\"head\":{\"txn\":\"P1\",\"id\":\"B77\",\"code\":0,\"msg\":\"\"},"
        "\"body\":{\"pay_id\":\"S0001\",\"paid\":\"145.05\"}}";
    const char  *want_bad =
        "{\"head\":{\"txn\":\"P1\",\"id\":\"B78\",\"code\":199,"
        "\"msg\":\"余额不足\"}}";

    /* answers are GBK on beta's wire */
    assert_int_equal(xr_charset_from_utf8(&f->ctx, XR_CHARSET_GBK, ok,
                                          strlen(ok), &utf8, NULL), XR_OK);
    assert_int_equal(decode(f, f->beta, XR_DIR_RESPONSE, "pay", utf8.data,
                            utf8.len, &msg), XR_OK);
    assert_true(msg.ok);
    assert_int_equal(get(&msg, "paid")->u.i, 14505);

    xr_buf_init(&out, f->pool, 0);
    assert_int_equal(xr_encode(&f->ctx, f->alpha, &msg, &out), XR_OK);
    assert_int_equal(out.len, strlen(want_ok));
    assert_memory_equal(out.data, want_ok, out.len);

    /* a business refusal: no business fields, the code passes as BIZ- */
    assert_int_equal(xr_charset_from_utf8(&f->ctx, XR_CHARSET_GBK, bad,
                                          strlen(bad), &utf8, NULL), XR_OK);
    assert_int_equal(decode(f, f->beta, XR_DIR_RESPONSE, "pay", utf8.data,
                            utf8.len, &msg), XR_OK);
    assert_false(msg.ok);
    assert_true(xr_str_eq(msg.err_code, "BIZ-3001"));
    assert_true(xr_str_eq(msg.err_msg, "余额不足"));

    xr_buf_init(&out, f->pool, 0);
    assert_int_equal(xr_encode(&f->ctx, f->alpha, &msg, &out), XR_OK);
    assert_int_equal(out.len, strlen(want_bad));
    assert_memory_equal(out.data, want_bad, out.len);
}


static void
test_error_answer(void **state)
{
    xr_fix_t    *f = *state;
    xr_msg_t     req;
    xr_buf_t     out;
    int          status;
    const char  *want =
        "{\"head\":{\"txn\":\"P1\",\"id\":\"A2024000001\",\"code\":101,"
        "\"msg\":\"bad body\"}}";

    assert_int_equal(decode(f, f->alpha, XR_DIR_REQUEST, "", xr_pay_alpha,
                            strlen(xr_pay_alpha), &req), XR_OK);

    xr_buf_init(&out, f->pool, 0);
    assert_int_equal(xr_encode_error(&f->ctx, f->alpha, &req, XR_E_SYNTAX,
                                     xr_str_from(""),
                                     xr_str_from("bad body"), &out,
                                     &status), XR_OK);
    assert_int_equal(status, 400);
    assert_int_equal(out.len, strlen(want));
    assert_memory_equal(out.data, want, out.len);

    /* no request at all (the body did not parse): still alpha's shape */
    xr_buf_init(&out, f->pool, 0);
    assert_int_equal(xr_encode_error(&f->ctx, f->alpha, NULL,
                                     XR_E_UPSTREAM_TIMEOUT, xr_str_from(""),
                                     xr_str_from(""), &out, &status), XR_OK);
    assert_int_equal(status, 504);
    assert_non_null(memmem(out.data, out.len, "\"code\":199", 10));

    /* beta's error answer is XML with its fail code */
    xr_buf_init(&out, f->pool, 0);
    assert_int_equal(xr_encode_error(&f->ctx, f->beta, &req, XR_E_NO_ROUTE,
                                     xr_str_from(""), xr_str_from("no way"),
                                     &out, &status), XR_OK);
    assert_int_equal(status, 502);
    assert_non_null(memmem(out.data, out.len, "<RC>9999</RC>", 13));
    assert_non_null(memmem(out.data, out.len, "<CODE>7001</CODE>", 17));
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_request),
        cmocka_unit_test(test_translate_alpha_to_beta),
        cmocka_unit_test(test_bad_values),
        cmocka_unit_test(test_encode_errors),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_error_answer),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
