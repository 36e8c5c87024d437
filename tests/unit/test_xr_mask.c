/*
 * Masking of personal values (core/xr_mask.c): the rules of each kind and
 * their edges, any bytes in, free text; then every error path of core/
 * and adapters/ that quotes a field's value, driven with personal fields
 * of tests/fixtures/pii (the value masked, never raw) and with their
 * non-personal twins (quoted as before); and the personal fields of the
 * real schemas.
 */

#include "xr_test.h"
#include "xr_adapter.h"
#include "xr_charset.h"
#include "xr_mask.h"
#include "xr_profile.h"
#include "xr_route.h"
#include "xr_translate.h"


static const char *
mask(unsigned kind, const char *v)
{
    static char  buf[XR_MASK_LEN];

    xr_mask(kind, xr_str_from(v), buf, sizeof(buf));
    return buf;
}


static const char *
maskn(unsigned kind, const char *v, size_t len)
{
    static char  buf[XR_MASK_LEN];
    xr_str_t     s;

    s.data = v;
    s.len = len;
    xr_mask(kind, s, buf, sizeof(buf));
    return buf;
}


static void
test_kind_names(void **state)
{
    xr_pii_e  k;

    (void) state;
    assert_int_equal(xr_pii_by_name(xr_str_from("id"), &k), XR_OK);
    assert_int_equal(k, XR_PII_ID);
    assert_int_equal(xr_pii_by_name(xr_str_from("birth"), &k), XR_OK);
    assert_int_equal(k, XR_PII_BIRTH);
    assert_int_equal(xr_pii_by_name(xr_str_from("none"), &k), XR_DECLINED);
    assert_int_equal(xr_pii_by_name(xr_str_from("ID"), &k), XR_DECLINED);
    assert_int_equal(xr_pii_by_name(xr_str_from(""), &k), XR_DECLINED);
    assert_string_equal(xr_pii_name(XR_PII_PHONE), "phone");
    assert_string_equal(xr_pii_name(XR_PII_LAST), "none");
    /* the 3-bit fields of xr_sfield_t, xr_node_t and xr_wval_t */
    assert_true(XR_PII_LAST <= 8);
}


static void
test_id(void **state)
{
    (void) state;
    assert_string_equal(mask(XR_PII_ID, "310101199001011234"),
                        "310101********1234");
    assert_string_equal(mask(XR_PII_ID, "31010119900101123X"),
                        "310101********123X");
    /* old 15-digit numbers and 30-character personal numbers: the same
       8 stars, so the mask does not tell the lengths apart */
    assert_string_equal(mask(XR_PII_ID, "310101900101123"),
                        "310101********1123");
    assert_string_equal(mask(XR_PII_ID, "320100000000000000000000001234"),
                        "320100********1234");
    /* shorter than 15: nothing kept */
    assert_string_equal(mask(XR_PII_ID, "31010119900101"), "****");
    assert_string_equal(mask(XR_PII_ID, "1"), "****");
    assert_string_equal(mask(XR_PII_ID, ""), "");
}


static void
test_card(void **state)
{
    (void) state;
    assert_string_equal(mask(XR_PII_CARD, "6217001234567890123"),
                        "621700********0123");
    assert_string_equal(mask(XR_PII_CARD, "2900123456789012"),
                        "290012********9012");
    /* 8 to 15: the last 4 only */
    assert_string_equal(mask(XR_PII_CARD, "290012345678901"), "****8901");
    assert_string_equal(mask(XR_PII_CARD, "T00001234"), "****1234");
    assert_string_equal(mask(XR_PII_CARD, "A1234567"), "****4567");
    assert_string_equal(mask(XR_PII_CARD, "1234567"), "****");
    assert_string_equal(mask(XR_PII_CARD, ""), "");
}


static void
test_name(void **state)
{
    (void) state;
    assert_string_equal(mask(XR_PII_NAME, "张三"), "张*");
    assert_string_equal(mask(XR_PII_NAME, "欧阳娜娜"), "欧***");
    assert_string_equal(mask(XR_PII_NAME, "测试乙"), "测**");
    assert_string_equal(mask(XR_PII_NAME, "王"), "*");
    assert_string_equal(mask(XR_PII_NAME, "Li Lei"), "L*****");
    /* 10 characters: all shown as stars; 20: still 10 stars */
    assert_string_equal(mask(XR_PII_NAME, "阿卜杜热西提·买买提"),
                        "阿*********");
    assert_string_equal(mask(XR_PII_NAME, "ABCDEFGHIJKLMNOPQRST"),
                        "A**********");
    /* a 4-byte character is one character */
    assert_string_equal(mask(XR_PII_NAME, "\xf0\xa0\x80\x80" "三"),
                        "\xf0\xa0\x80\x80" "*");
    assert_string_equal(mask(XR_PII_NAME, ""), "");
}


static void
test_phone(void **state)
{
    (void) state;
    assert_string_equal(mask(XR_PII_PHONE, "13000000000"), "130****0000");
    assert_string_equal(mask(XR_PII_PHONE, "13812345678"), "138****5678");
    assert_string_equal(mask(XR_PII_PHONE, "0512-12345678"), "051****5678");
    assert_string_equal(mask(XR_PII_PHONE, "+8613812345678"), "+86****5678");
    assert_string_equal(mask(XR_PII_PHONE, "62345678"), "****");
    assert_string_equal(mask(XR_PII_PHONE, ""), "");
}


static void
test_birth(void **state)
{
    char  long_date[64];

    (void) state;
    assert_string_equal(mask(XR_PII_BIRTH, "1988-01-01"), "****-**-**");
    assert_string_equal(mask(XR_PII_BIRTH, "19880101"), "********");
    assert_string_equal(mask(XR_PII_BIRTH, "1988/13/45 x"), "****/**/** x");
    assert_string_equal(mask(XR_PII_BIRTH, "1988年01月01日"),
                        "****?**?**?");
    memset(long_date, '1', 30);
    long_date[30] = '\0';
    assert_string_equal(mask(XR_PII_BIRTH, long_date),
                        "************************...");
    assert_string_equal(mask(XR_PII_BIRTH, ""), "");
}


static void
test_no_kind(void **state)
{
    (void) state;
    assert_string_equal(mask(XR_PII_NONE, "310101199001011234"), "****");
    assert_string_equal(mask(7, "abc"), "****");
    assert_string_equal(mask(XR_PII_NONE, ""), "");
}


/* Bytes that are not printable characters are never copied. */
static void
test_any_bytes(void **state)
{
    (void) state;
    /* invalid UTF-8, a cut character, controls, a bidi override, NUL */
    assert_string_equal(maskn(XR_PII_ID, "\xff" "10101199001011234", 18),
                        "?10101********1234");
    assert_string_equal(mask(XR_PII_NAME, "\xe5\xbc"), "?*");
    assert_string_equal(mask(XR_PII_NAME, "\n张三"), "?**");
    assert_string_equal(mask(XR_PII_NAME, "\xe2\x80\xae" "abc"), "?***");
    assert_string_equal(mask(XR_PII_NAME, "\xc2\x85" "abc"), "?***");
    assert_string_equal(mask(XR_PII_NAME, "\xed\xa0\x80" "x"), "?***");
    assert_string_equal(mask(XR_PII_NAME, "\xc0\xaf" "x"), "?**");
    assert_string_equal(maskn(XR_PII_ID, "310101\0" "990010112\0" "4", 18),
                        "310101********12?4");
    assert_string_equal(maskn(XR_PII_PHONE, "138\x7f" "0013\x1b" "8000",
                              13), "138****8000");
    assert_string_equal(maskn(XR_PII_PHONE, "1380013800\x7f", 11),
                        "138****800?");
}


/* A huge value costs one pass and gives a mask of the usual size. */
static void
test_huge(void **state)
{
    size_t  n = 4 * 1024 * 1024;
    char   *big = malloc(n);

    (void) state;
    assert_non_null(big);
    memset(big, '7', n);
    memcpy(big, "110101", 6);
    memcpy(big + n - 4, "9876", 4);
    assert_string_equal(maskn(XR_PII_ID, big, n), "110101********9876");
    assert_string_equal(maskn(XR_PII_CARD, big, n), "110101********9876");
    assert_string_equal(maskn(XR_PII_PHONE, big, n), "110****9876");
    assert_string_equal(maskn(XR_PII_NAME, big, n), "1**********");
    assert_string_equal(maskn(XR_PII_BIRTH, big, n),
                        "************************...");
    free(big);
}


/* A buffer shorter than XR_MASK_LEN: cut whole, terminated, in bounds. */
static void
test_small_buffer(void **state)
{
    char    buf[8];
    size_t  n;

    (void) state;
    memset(buf, 'Z', sizeof(buf));
    n = xr_mask(XR_PII_ID, xr_str_from("310101199001011234"), buf, 8);
    assert_true(n < 8);
    assert_int_equal(strlen(buf), n);
    assert_string_equal(buf, "310101");

    /* "张" is 3 bytes: it does not fit in 2 */
    n = xr_mask(XR_PII_NAME, xr_str_from("张三"), buf, 3);
    assert_int_equal(n, 0);
    assert_string_equal(buf, "");

    assert_int_equal(xr_mask(XR_PII_NAME, xr_str_from("x"), buf, 0), 0);
}


/*
 * Random values of every kind: each mask is short, valid UTF-8 without
 * controls; for printable ASCII values, the fixed rules match an
 * independent statement of them.
 */
static void
test_random_values(void **state)
{
    char      v[96], buf[XR_MASK_LEN], want[XR_MASK_LEN];
    uint32_t  seed = 12345;
    size_t    len, i, n, round;
    unsigned  kind;
    int       ascii;
    xr_ctx_t  ctx;
    xr_pool_t *pool = xr_pool_create(0);

    (void) state;
    xr_ctx_init(&ctx, pool);

    for (round = 0; round < 20000; round++) {
        seed = seed * 1103515245 + 12345;
        len = (seed >> 16) % sizeof(v);
        ascii = round % 2;
        for (i = 0; i < len; i++) {
            seed = seed * 1103515245 + 12345;
            v[i] = ascii ? (char) (0x20 + (seed >> 16) % 95)
                         : (char) (seed >> 16);
        }
        kind = (unsigned) (round % XR_PII_LAST);

        n = xr_mask(kind, (xr_str_t) { len, v }, buf, sizeof(buf));
        assert_true(n < XR_MASK_LEN);
        assert_int_equal(strlen(buf), n);
        xr_ctx_clear(&ctx);
        assert_int_equal(xr_utf8_validate(&ctx, buf, n, NULL), XR_OK);
        for (i = 0; i < n; i++) {
            assert_true((unsigned char) buf[i] >= 0x20
                        && (unsigned char) buf[i] != 0x7f);
        }

        if (!ascii || len == 0) {
            continue;
        }
        switch (kind) {
        case XR_PII_ID:
            if (len >= 15) {
                snprintf(want, sizeof(want), "%.6s********%.4s", v,
                         v + len - 4);
            } else {
                snprintf(want, sizeof(want), "****");
            }
            break;
        case XR_PII_CARD:
            if (len >= 16) {
                snprintf(want, sizeof(want), "%.6s********%.4s", v,
                         v + len - 4);
            } else if (len >= 8) {
                snprintf(want, sizeof(want), "****%.4s", v + len - 4);
            } else {
                snprintf(want, sizeof(want), "****");
            }
            break;
        case XR_PII_PHONE:
            if (len >= 11) {
                snprintf(want, sizeof(want), "%.3s****%.4s", v,
                         v + len - 4);
            } else {
                snprintf(want, sizeof(want), "****");
            }
            break;
        case XR_PII_NAME:
            want[0] = len == 1 ? '*' : v[0];
            for (i = 1; i < len && i <= 10; i++) {
                want[i] = '*';
            }
            want[len == 1 ? 1 : i] = '\0';
            break;
        default:
            continue;
        }
        assert_string_equal(buf, want);
    }
    xr_pool_destroy(pool);
}


static void
test_mask_pstr(void **state)
{
    xr_pool_t  *pool = xr_pool_create(0);
    xr_ctx_t    ctx;
    xr_str_t    out;

    (void) state;
    xr_ctx_init(&ctx, pool);
    assert_int_equal(xr_mask_pstr(&ctx, XR_PII_CARD,
                                  xr_str_from("6217001234567890123"), &out),
                     XR_OK);
    assert_true(xr_str_eq(out, "621700********0123"));
    assert_int_equal(out.data[out.len], '\0');
    xr_pool_destroy(pool);
}


static void
test_mask_quote(void **state)
{
    char      buf[XR_MASK_LEN];
    xr_str_t  v = xr_str_from("310101199001011234"), q;

    (void) state;
    q = xr_mask_quote(XR_PII_NONE, v, buf, sizeof(buf));
    assert_ptr_equal(q.data, v.data);
    assert_int_equal(q.len, v.len);
    q = xr_mask_quote(XR_PII_ID, v, buf, sizeof(buf));
    assert_true(xr_str_eq(q, "310101********1234"));
}


/* ---- the fixture configuration of tests/fixtures/pii ----------------- */

typedef struct {
    xr_pool_t           *pool;
    xr_ctx_t             ctx;
    xr_config_t         *cfg;
    const xr_profile_t  *alpha;
    const xr_profile_t  *beta;
} xr_fix_t;


static int
setup(void **state)
{
    xr_fix_t  *f = calloc(1, sizeof(xr_fix_t));

    f->pool = xr_pool_create(0);
    xr_ctx_init(&f->ctx, f->pool);
    if (xr_config_load(&f->ctx, XR_SOURCE_DIR "/tests/fixtures/pii", &f->cfg)
        != XR_OK)
    {
        fprintf(stderr, "pii config: %s\n", f->ctx.errstr);
        return -1;
    }
    f->alpha = xr_config_profile(f->cfg, xr_str_from("alpha.pdemo"));
    f->beta = xr_config_profile(f->cfg, xr_str_from("beta.pdemo"));
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


/*
 * A request of profile p with these body members (JSON text), decoded;
 * XR_OK or XR_ERROR with the error on f->ctx.
 */
static int
decode_body(xr_fix_t *f, const xr_profile_t *p, const char *code,
    const char *members, xr_msg_t *msg)
{
    char  doc[2048];
    int   n;

    n = snprintf(doc, sizeof(doc),
                 "{\"head\":{\"txn\":\"%s\",\"id\":\"M1\"},\"b\":{%s}}",
                 code, members);
    assert_true(n > 0 && (size_t) n < sizeof(doc));
    xr_ctx_clear(&f->ctx);
    return xr_decode(&f->ctx, p, XR_DIR_REQUEST, xr_str_from("look"), doc,
                     (size_t) n, msg);
}


/* errstr holds want and none of the raw values given after it */
static void
expect_err(xr_fix_t *f, xr_err_e err, const char *field, const char *want,
    const char *raw)
{
    if (f->ctx.err != err || strstr(f->ctx.errstr, want) == NULL) {
        fail_msg("got %s \"%s\", expected %s with \"%s\"",
                 xr_error_info(f->ctx.err)->name, f->ctx.errstr,
                 xr_error_info(err)->name, want);
    }
    if (field) {
        assert_string_equal(f->ctx.field, field);
    }
    if (raw && strstr(f->ctx.errstr, raw) != NULL) {
        fail_msg("errstr \"%s\" holds the raw value \"%s\"", f->ctx.errstr,
                 raw);
    }
}


static void
test_decode_table(void **state)
{
    xr_fix_t  *f = *state;
    xr_msg_t   msg;

    assert_int_equal(decode_body(f, f->beta, "B1",
                                 "\"card\":\"2900123456789012\","
                                 "\"id\":\"310101199001011234\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_CODE_UNMAPPED, "id_no",
               "value \"310101********1234\" of field id_no has no mapping "
               "in table ids of beta.pdemo", "199001011");

    assert_int_equal(decode_body(f, f->beta, "B1",
                                 "\"card\":\"2900123456789012\","
                                 "\"ref\":\"REF-310101199001\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_CODE_UNMAPPED, "ref",
               "value \"REF-310101199001\" of field ref has no mapping in "
               "table ids of beta.pdemo", NULL);
}


static void
test_decode_int(void **state)
{
    xr_fix_t  *f = *state;
    xr_msg_t   msg;

    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"phone\":\"138-0013-8000\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_TYPE, "phone",
               "field phone (wire b.phone) is not an integer: "
               "\"138****8000\"", "0013");

    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"count\":\"138-0013-8000\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_TYPE, "count",
               "field count (wire b.count) is not an integer: "
               "\"138-0013-8000\"", NULL);
}


static void
test_decode_time(void **state)
{
    xr_fix_t  *f = *state;
    xr_msg_t   msg;

    /* the pattern does not match */
    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"birth\":\"1988/01/01\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, "birth",
               "time \"****/**/**\" of field birth does not match "
               "\"%Y%m%d\"", "1988");

    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"day\":\"1988/01/01\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, "day",
               "time \"1988/01/01\" of field day does not match "
               "\"%Y%m%d\"", NULL);

    /* out of range: which part, only for a value that is not personal */
    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"birth\":\"19880230\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, "birth",
               "time \"********\" of field birth is not a real date or "
               "time", "1988");
    assert_null(strstr(f->ctx.errstr, "day 30"));

    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"birth\":\"19881301\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, "birth", "is not a real date or time",
               "13");

    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"day\":\"19880230\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, "day",
               "time \"19880230\" of field day has day 30, not in 1988-02",
               NULL);

    /* Unix time */
    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"born\":\"5680x5600\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, "born_at",
               "time \"****x****\" of field born_at is not Unix time",
               "5680");

    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"stamp\":\"5680x5600\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, "stamp",
               "time \"5680x5600\" of field stamp is not Unix time", NULL);

    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"born\":\"9999999999999999\"", &msg),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, "born_at",
               "time \"****************\" of field born_at is out of range",
               "999");
}


static const char  xr_canon[] =
    "\"card\":\"2900123456789012\",\"id\":\"310101199001011234\","
    "\"ref\":\"REF-7\",\"name\":\"张三丰\",\"label\":\"L-42x\"";


/* Encoding a value the target's code table lacks. */
static void
test_encode_table(void **state)
{
    xr_fix_t  *f = *state;
    xr_msg_t   msg;
    xr_buf_t   out;

    assert_int_equal(decode_body(f, f->alpha, "L1", xr_canon, &msg), XR_OK);

    xr_buf_init(&out, f->pool, 0);
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_encode(&f->ctx, f->beta, &msg, &out), XR_ERROR);
    expect_err(f, XR_E_CODE_UNMAPPED, "id_no",
               "code \"310101********1234\" of field id_no has no mapping "
               "in table ids of beta.pdemo", "199001011");

    /* the twin: ref alone has no entry */
    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"ref\":\"REF-7\"", &msg), XR_OK);
    xr_buf_init(&out, f->pool, 0);
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_encode(&f->ctx, f->beta, &msg, &out), XR_ERROR);
    expect_err(f, XR_E_CODE_UNMAPPED, "ref",
               "code \"REF-7\" of field ref has no mapping in table ids of "
               "beta.pdemo", NULL);
}


/*
 * A string written as a JSON number that is not one: through the write
 * plan (xr_encode()) and through a wire tree (xr_map_encode() and the
 * adapter's encode), the two ways the JSON writer has.
 */
static void
json_not_number(xr_fix_t *f, const char *members, const char *field,
    const char *want, const char *raw)
{
    const xr_ptxn_t  *ptxn;
    xr_node_t        *wire;
    xr_msg_t          msg;
    xr_buf_t          out;

    assert_int_equal(decode_body(f, f->alpha, "L1", members, &msg), XR_OK);

    xr_buf_init(&out, f->pool, 0);
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_encode(&f->ctx, f->beta, &msg, &out), XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, field, want, raw);

    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_map_encode(&f->ctx, f->beta, &msg, &ptxn, &wire),
                     XR_OK);
    xr_buf_init(&out, f->pool, 0);
    assert_int_equal(f->beta->adapter->encode(&f->ctx, f->beta,
                                              XR_DIR_REQUEST, ptxn, wire,
                                              &out),
                     XR_ERROR);
    expect_err(f, XR_E_FIELD_FORMAT, field, want, raw);
}


static void
test_encode_json_number(void **state)
{
    xr_fix_t  *f = *state;

    json_not_number(f, "\"card\":\"2900123456789012\",\"name\":\"张三丰\"",
                    "name", "\"张**\" is not a JSON number", "三丰");
    json_not_number(f, "\"card\":\"2900123456789012\",\"label\":\"L-42x\"",
                    "label", "\"L-42x\" is not a JSON number", NULL);
}


static void
test_route(void **state)
{
    xr_fix_t   *f = *state;
    xr_msg_t    msg;
    xr_str_t    region;
    xr_node_t  *v;

    /* through the table: an issuer it does not know */
    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"6217001234567890123\"", &msg),
                     XR_OK);
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_route_region(&f->ctx, f->cfg, &msg, &region),
                     XR_ERROR);
    expect_err(f, XR_E_REGION_UNKNOWN, "@dest",
               "no region for card_no \"621700********0123\" in table city",
               "12345678");

    assert_int_equal(decode_body(f, f->alpha, "L1", "\"card\":\"2900\"",
                                 &msg),
                     XR_OK);
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_route_region(&f->ctx, f->cfg, &msg, &region),
                     XR_OK);
    assert_true(xr_str_eq(region, "310000"));

    /* the personal field is the region code itself */
    xr_msg_init(&msg, XR_DIR_REQUEST);
    msg.domain = xr_str_from("pdirect");
    msg.txn = xr_str_from("look");
    msg.body = xr_node_new(&f->ctx, XR_NODE_OBJECT);
    v = xr_node_string(&f->ctx, "310101199001011234", 18);
    assert_int_equal(xr_object_add(&f->ctx, msg.body, xr_str_from("id_no"),
                                   v), XR_OK);
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_route_region(&f->ctx, f->cfg, &msg, &region),
                     XR_ERROR);
    expect_err(f, XR_E_REGION_UNKNOWN, "@dest",
               "destination \"310101********1234\" is not a 6-digit region "
               "code", "199001011");
}


/* ---- free text ------------------------------------------------------- */

static void
test_mask_text(void **state)
{
    xr_fix_t         *f = *state;
    const xr_stxn_t  *stxn;
    xr_msg_t          msg;
    xr_str_t          out, text;

    assert_int_equal(decode_body(f, f->alpha, "L1",
                                 "\"card\":\"2900123456789012\","
                                 "\"id\":\"31010119900101123X\","
                                 "\"name\":\"张三\",\"phone\":\"13812345678\","
                                 "\"people\":[{\"n\":\"李四光\","
                                 "\"i\":\"110101\"},{\"n\":\"王\"}]",
                                 &msg),
                     XR_OK);
    stxn = xr_schema_txn(f->alpha->schema, xr_str_from("look"));
    assert_non_null(stxn);

    text = xr_str_from("证件号码31010119900101123X与姓名张三不符; "
                       "card 2900123456789012, call 13812345678; "
                       "李四光 (110101) 王; other 110101198001011111 and "
                       "320100198801010002x; msg 3100000000120250310000000102;"
                       " short 12345678901234");
    xr_ctx_clear(&f->ctx);
    assert_int_equal(xr_mask_text(&f->ctx, stxn, &msg, text, &out), XR_OK);
    assert_true(xr_str_eq(out,
                          "证件号码310101********123X与姓名张*不符; "
                          "card 290012********9012, call 138****5678; "
                          "李** (****) 王; other 110101********1111 and "
                          "320100********002x; msg 310000********0102;"
                          " short 12345678901234"));

    /* nothing to mask: the text itself */
    text = xr_str_from("余额不足 (code 42)");
    assert_int_equal(xr_mask_text(&f->ctx, stxn, &msg, text, &out), XR_OK);
    assert_ptr_equal(out.data, text.data);

    /* no message: digit runs only */
    text = xr_str_from("张三 31010119900101123X");
    assert_int_equal(xr_mask_text(&f->ctx, NULL, NULL, text, &out), XR_OK);
    assert_true(xr_str_eq(out, "张三 310101********123X"));

    /* a run right after a value is a run of its own */
    text = xr_str_from("张三110101198001011111");
    assert_int_equal(xr_mask_text(&f->ctx, stxn, &msg, text, &out), XR_OK);
    assert_true(xr_str_eq(out, "张*110101********1111"));

    /* a value inside a short run of digits */
    text = xr_str_from("8613812345678");
    assert_int_equal(xr_mask_text(&f->ctx, stxn, &msg, text, &out), XR_OK);
    assert_true(xr_str_eq(out, "86138****5678"));

    text = xr_str_from("");
    assert_int_equal(xr_mask_text(&f->ctx, stxn, &msg, text, &out), XR_OK);
    assert_int_equal(out.len, 0);
}


/* ---- the real schemas ------------------------------------------------ */

typedef struct {
    const char  *domain;
    const char  *field;
    unsigned     kind;
} xr_pii_row_t;

/* every field of these names is personal in its domain, and no other */
static const xr_pii_row_t  xr_real_pii[] = {
    { "medical", "cert_no",     XR_PII_ID },
    { "medical", "id_no",       XR_PII_ID },
    { "medical", "psn_no",      XR_PII_ID },
    { "medical", "card_sn",     XR_PII_CARD },
    { "medical", "name",        XR_PII_NAME },
    { "medical", "doctor_name", XR_PII_NAME },
    { "medical", "birth_date",  XR_PII_BIRTH },
    { "transit", "card_no",     XR_PII_CARD },
    { "gov",     "card_no",     XR_PII_CARD },
    { "gov",     "id_no",       XR_PII_ID },
    { "gov",     "cert_no",     XR_PII_ID },
    { "gov",     "name",        XR_PII_NAME },
    { "gov",     "phone",       XR_PII_PHONE },
};


static size_t
check_fields(const xr_schema_t *s, const xr_sfield_t *fields, size_t n)
{
    size_t    i, k, marked = 0;
    unsigned  want;

    for (i = 0; i < n; i++) {
        if (fields[i].type == XR_FT_LIST) {
            marked += check_fields(s, fields[i].children,
                                   fields[i].nchildren);
            continue;
        }
        want = XR_PII_NONE;
        for (k = 0; k < sizeof(xr_real_pii) / sizeof(xr_real_pii[0]); k++) {
            if (xr_str_eq(s->domain, xr_real_pii[k].domain)
                && xr_str_eq(fields[i].name, xr_real_pii[k].field))
            {
                want = xr_real_pii[k].kind;
            }
        }
        if (fields[i].pii != want) {
            fail_msg("%.*s field %.*s (line %d) is pii=%s, expected %s",
                     (int) s->domain.len, s->domain.data,
                     (int) fields[i].name.len, fields[i].name.data,
                     fields[i].line, xr_pii_name(fields[i].pii),
                     xr_pii_name(want));
        }
        marked += want != XR_PII_NONE;
    }
    return marked;
}


static void
test_real_schemas(void **state)
{
    xr_pool_t          *pool = xr_pool_create(0);
    xr_ctx_t            ctx;
    xr_config_t        *cfg;
    const xr_schema_t  *s;
    size_t              i, t, marked = 0;
    int                 dir;

    (void) state;
    xr_ctx_init(&ctx, pool);
    assert_int_equal(xr_config_load(&ctx, XR_SOURCE_DIR "/config", &cfg),
                     XR_OK);
    for (i = 0; i < cfg->nschemas; i++) {
        s = &cfg->schemas[i];
        for (t = 0; t < s->ntxns; t++) {
            for (dir = 0; dir < 2; dir++) {
                marked += check_fields(s, s->txns[t].fields[dir],
                                       s->txns[t].nfields[dir]);
            }
        }
    }
    assert_int_equal(marked, 54);
    xr_config_free(cfg);
    xr_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_kind_names),
        cmocka_unit_test(test_id),
        cmocka_unit_test(test_card),
        cmocka_unit_test(test_name),
        cmocka_unit_test(test_phone),
        cmocka_unit_test(test_birth),
        cmocka_unit_test(test_no_kind),
        cmocka_unit_test(test_any_bytes),
        cmocka_unit_test(test_huge),
        cmocka_unit_test(test_small_buffer),
        cmocka_unit_test(test_random_values),
        cmocka_unit_test(test_mask_pstr),
        cmocka_unit_test(test_mask_quote),
        cmocka_unit_test_setup_teardown(test_decode_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_int, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_table, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_json_number, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_route, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mask_text, setup, teardown),
        cmocka_unit_test(test_real_schemas),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
