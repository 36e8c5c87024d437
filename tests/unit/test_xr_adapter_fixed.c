/*
 * Tests of the fixed-width record adapter: adapters/xr_adapter_fixed.c.
 *
 * The profiles are built here in C so the tests need no loader.  The
 * T-Union travel record (SFI 0x1E, 48 bytes) is the card sample of
 * /work/shared/samples/tunion-card-apdu-samples.txt, written out as data.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <string.h>
#include <cmocka.h>

#include "../../core/xr_core.h"
#include "../../core/xr_node.h"
#include "../../core/xr_profile.h"
#include "../../adapters/xr_adapter.h"


/* READ RECORD SFI 0x1E, record 1, without the status word 90 00 */
static const char  tunion_1e_hex[] =
    "04"                    /* type: 04 exit */
    "0000300089000340"      /* terminal */
    "01"                    /* aux type: 01 metro */
    "08001900300000"        /* line and station */
    "000001f4"              /* amount: 500 fen */
    "00000e01"              /* balance: 3585 fen */
    "20241229141740"        /* time */
    "1000"                  /* city: 1000 Beijing */
    "01011000ffffffff"      /* acquirer */
    "000000000000";         /* reserved */


/* ---- profiles -------------------------------------------------------- */

#define FX(n, o, l, e)  { xr_string(n), o, l, XR_FX_##e, xr_null_string, 0 }
#define FXF(n, o, l, e, v)  { xr_string(n), o, l, XR_FX_##e, xr_string(v), 0 }

static xr_fxfield_t  tunion_fields[] = {
    FX("type", 0, 1, BCD),
    FX("terminal", 1, 8, BCD),
    FX("aux_type", 9, 1, BCD),
    FX("line_station", 10, 7, BCD),
    FX("amount", 17, 4, BIN),
    FX("balance", 21, 4, BIN),
    FX("time", 25, 7, BCD),
    FX("city", 32, 2, BCD),
    FX("acquirer", 34, 8, HEX),
    FX("reserved", 42, 6, HEX),
};

static xr_layout_t  tunion_layout = {
    tunion_fields, 10, 48, xr_null_string, xr_null_string, NULL, 0
};

/* profile "card": no header, the record is the whole message */

static xr_ptxn_t  card_txns[] = {
    { .code = xr_string("1E"), .layout = { &tunion_layout, NULL } },
};

static xr_profile_t  card_profile;

/* profile "transit": GBK, a header, counted and running records */

static xr_fxfield_t  req_header_fields[] = {
    FX("txn", 0, 4, TEXT),
    FX("msg_id", 4, 12, NUM),
    FX("station", 16, 12, TEXT),
    FX("count", 28, 4, NUM),
};

static xr_layout_t  req_header = {
    req_header_fields, 4, 32, xr_null_string, xr_null_string, NULL, 0
};

static xr_fxfield_t  resp_header_fields[] = {
    FX("txn", 0, 4, TEXT),
    FX("result", 4, 4, TEXT),
    FX("message", 8, 9, TEXT),
    FXF("ver", 17, 2, NUM, "01"),
    FX("time", 19, 7, BCD),
};

static xr_layout_t  resp_header = {
    resp_header_fields, 5, 28, xr_null_string, xr_null_string, NULL, 0
};

static xr_fxfield_t  upload_fields[] = {
    FX("batch_no", 0, 6, NUM),
};

static xr_layout_t  upload_layout = {
    upload_fields, 1, 6, xr_string("trips"), xr_string("count"),
    &tunion_layout, 0
};

static xr_layout_t  stream_layout = {
    NULL, 0, 0, xr_string("recs"), xr_null_string, &tunion_layout, 0
};

static xr_fxfield_t  dup_fields[] = {
    FX("station", 0, 2, NUM),
};

static xr_layout_t  dup_layout = {
    dup_fields, 1, 2, xr_null_string, xr_null_string, NULL, 0
};

static xr_fxfield_t  misc_fields[] = {
    FXF("op", 0, 3, TEXT, "ABC"),
    FX("value", 3, 4, BIN),
    FX("key", 7, 3, HEX),
    FX("code", 10, 3, BCD),
    FX("seq", 13, 1, BIN),
};

static xr_layout_t  misc_layout = {
    misc_fields, 5, 14, xr_null_string, xr_null_string, NULL, 0
};

static xr_fxfield_t  plain_header_fields[] = {
    FX("code", 0, 4, HEX),
};

static xr_layout_t  plain_header = {
    plain_header_fields, 1, 4, xr_null_string, xr_null_string, NULL, 0
};

static xr_map_t  txn_env_map[] = {
    { .canon = xr_string("@txn"), .env = XR_ENV_TXN,
      .wire = xr_string("txn") },
};

static xr_ptxn_t  transit_txns[] = {
    { .code = xr_string("5001"), .layout = { &upload_layout, NULL } },
    { .code = xr_string("5002"), .layout = { &stream_layout, NULL } },
    { .code = xr_string("5003"), .layout = { &dup_layout, NULL } },
    { .code = xr_string("5004"), .layout = { &misc_layout, NULL } },
};

static xr_profile_t  transit_profile;


static void
profiles_init(void)
{
    memset(&card_profile, 0, sizeof(card_profile));
    card_profile.name = xr_str_from("test.card");
    card_profile.codec = xr_str_from("fixed");
    card_profile.adapter = &xr_adapter_fixed;
    card_profile.charset = XR_CHARSET_UTF8;
    card_profile.txns = card_txns;
    card_profile.ntxns = 1;

    memset(&transit_profile, 0, sizeof(transit_profile));
    transit_profile.name = xr_str_from("test.transit");
    transit_profile.codec = xr_str_from("fixed");
    transit_profile.adapter = &xr_adapter_fixed;
    transit_profile.charset = XR_CHARSET_GBK;
    transit_profile.txns = transit_txns;
    transit_profile.ntxns = 4;
    transit_profile.env[XR_DIR_REQUEST].maps = txn_env_map;
    transit_profile.env[XR_DIR_REQUEST].nmaps = 1;
    transit_profile.env[XR_DIR_RESPONSE].maps = txn_env_map;
    transit_profile.env[XR_DIR_RESPONSE].nmaps = 1;
    transit_profile.header[XR_DIR_REQUEST] = &req_header;
    transit_profile.header[XR_DIR_RESPONSE] = &resp_header;
    transit_profile.result_field = xr_str_from("result");
    transit_profile.ok_value = xr_str_from("0000");
    transit_profile.message_field = xr_str_from("message");
}


/* ---- helpers --------------------------------------------------------- */

typedef struct {
    xr_pool_t      *pool;
    xr_ctx_t        ctx;
    unsigned char   msg[4096];
    size_t          len;
} fx_state_t;


static int
fx_setup(void **state)
{
    fx_state_t  *st;

    st = test_calloc(1, sizeof(fx_state_t));
    assert_non_null(st);
    st->pool = xr_pool_create(0);
    assert_non_null(st->pool);
    xr_ctx_init(&st->ctx, st->pool);
    profiles_init();
    *state = st;
    return 0;
}


static int
fx_teardown(void **state)
{
    fx_state_t  *st = *state;

    xr_pool_destroy(st->pool);
    test_free(st);
    return 0;
}


/* Appends hex (spaces allowed) to the message. */
static void
fx_hex(fx_state_t *st, const char *hex)
{
    unsigned  v;
    int       hi = -1;
    char      c;

    for ( ; *hex; hex++) {
        c = *hex;
        if (c == ' ') {
            continue;
        }
        if (c >= '0' && c <= '9') {
            v = c - '0';
        } else if (c >= 'a' && c <= 'f') {
            v = c - 'a' + 10;
        } else if (c >= 'A' && c <= 'F') {
            v = c - 'A' + 10;
        } else {
            fail_msg("bad hex in test data: %c", c);
            return;
        }
        if (hi < 0) {
            hi = (int) v;
        } else {
            assert_true(st->len < sizeof(st->msg));
            st->msg[st->len++] = (unsigned char) (hi << 4 | v);
            hi = -1;
        }
    }
    assert_int_equal(hi, -1);
}


static void
fx_raw(fx_state_t *st, const char *s, size_t n)
{
    assert_true(st->len + n <= sizeof(st->msg));
    memcpy(st->msg + st->len, s, n);
    st->len += n;
}


static void
fx_str(fx_state_t *st, const char *s)
{
    fx_raw(st, s, strlen(s));
}


static void
fx_records(fx_state_t *st, int n)
{
    while (n--) {
        fx_hex(st, tunion_1e_hex);
    }
}


/* msg_id 000000000042, station 西直门 in GBK (CE F7 D6 B1 C3 C5) */
static void
fx_header(fx_state_t *st, const char *txn, const char *count)
{
    fx_str(st, txn);
    fx_str(st, "000000000042");
    fx_hex(st, "cef7 d6b1 c3c5 2020 2020 2020");
    fx_str(st, count);
}


static int
fx_decode(fx_state_t *st, const xr_profile_t *p, const xr_ptxn_t *txn,
    xr_node_t **out)
{
    return xr_adapter_fixed.decode(&st->ctx, p, XR_DIR_REQUEST, txn,
                                   (const char *) st->msg, st->len, out);
}


static void
assert_member(const xr_node_t *obj, const char *key, const char *value)
{
    const xr_node_t  *n;

    n = xr_object_get(obj, xr_str_from(key));
    if (n == NULL) {
        fail_msg("no member \"%s\"", key);
        return;
    }
    assert_int_equal(n->type, XR_NODE_STRING);
    if (!xr_str_eq(n->u.s, value)) {
        fail_msg("member \"%s\" is \"%.*s\", expected \"%s\"", key,
                 (int) n->u.s.len, n->u.s.data, value);
    }
}


static void
assert_error(fx_state_t *st, int rc, xr_err_e err, const char *field,
    const char *text)
{
    assert_int_equal(rc, XR_ERROR);
    if (st->ctx.err != err) {
        fail_msg("error %s (%s), expected %s",
                 xr_error_info(st->ctx.err)->name, st->ctx.errstr,
                 xr_error_info(err)->name);
    }
    if (field) {
        assert_string_equal(st->ctx.field, field);
    }
    if (text && strstr(st->ctx.errstr, text) == NULL) {
        fail_msg("errstr \"%s\" lacks \"%s\"", st->ctx.errstr, text);
    }
}


static void
assert_encodes_back(fx_state_t *st, const xr_profile_t *p,
    const xr_ptxn_t *txn, const xr_node_t *tree)
{
    xr_buf_t  out;

    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode(&st->ctx, p, XR_DIR_REQUEST,
                                             txn, tree, &out), XR_OK);
    assert_int_equal(out.len, st->len);
    assert_memory_equal(out.data, st->msg, st->len);
}


/* ---- tests ----------------------------------------------------------- */

static void
test_vtable(void **state)
{
    (void) state;

    assert_int_equal(xr_adapter_fixed.version, XR_ADAPTER_VERSION);
    assert_string_equal(xr_adapter_fixed.name, "fixed");
    assert_string_equal(xr_adapter_fixed.content_type,
                        "application/octet-stream");
    assert_true(xr_adapter_fixed.flags & XR_ADAPTER_LAYOUT);
    assert_false(xr_adapter_fixed.flags & XR_ADAPTER_TEXT);
    assert_null(xr_adapter_fixed.init);
    assert_null(xr_adapter_fixed.cleanup);
}


static void
test_tunion_record(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;

    fx_hex(st, tunion_1e_hex);
    assert_int_equal(st->len, 48);

    assert_int_equal(fx_decode(st, &card_profile, &card_txns[0], &root),
                     XR_OK);
    assert_int_equal(root->type, XR_NODE_OBJECT);
    assert_int_equal(root->u.obj.count, 10);

    assert_member(root, "type", "04");
    assert_member(root, "terminal", "0000300089000340");
    assert_member(root, "aux_type", "01");
    assert_member(root, "line_station", "08001900300000");
    assert_member(root, "amount", "500");
    assert_member(root, "balance", "3585");
    assert_member(root, "time", "20241229141740");
    assert_member(root, "city", "1000");
    assert_member(root, "acquirer", "01011000FFFFFFFF");
    assert_member(root, "reserved", "000000000000");

    assert_encodes_back(st, &card_profile, &card_txns[0], root);
}


static void
test_tunion_record_build(void **state)
{
    fx_state_t  *st = *state;
    xr_ctx_t    *ctx = &st->ctx;
    xr_node_t   *root;
    xr_buf_t     out;

    /* a tree written by hand: short values are padded, hex in any case */
    root = xr_node_new(ctx, XR_NODE_OBJECT);
    assert_non_null(root);

#define ADD(k, v)                                                             \
    assert_int_equal(xr_object_add(ctx, root, xr_str_from(k),                 \
                                   xr_node_string(ctx, v, strlen(v))), XR_OK)

    ADD("type", "4");
    ADD("terminal", "300089000340");
    ADD("aux_type", "1");
    ADD("line_station", "8001900300000");
    ADD("amount", "500");
    ADD("balance", "3585");
    ADD("time", "20241229141740");
    ADD("city", "1000");
    ADD("acquirer", "1011000ffffFFFF");
#undef ADD

    fx_hex(st, tunion_1e_hex);

    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode(ctx, &card_profile,
                                             XR_DIR_REQUEST, &card_txns[0],
                                             root, &out), XR_OK);
    assert_int_equal(out.len, 48);
    assert_memory_equal(out.data, st->msg, 48);
}


static void
test_gbk_header(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root, *trips;

    fx_header(st, "5001", "0001");
    fx_str(st, "000007");
    fx_records(st, 1);

    /* the exact header bytes */
    assert_memory_equal(st->msg,
                        "5001000000000042"
                        "\xce\xf7\xd6\xb1\xc3\xc5      0001", 32);

    assert_int_equal(fx_decode(st, &transit_profile, NULL, &root), XR_OK);
    assert_member(root, "txn", "5001");
    assert_member(root, "msg_id", "000000000042");
    assert_member(root, "station", "西直门");
    assert_member(root, "count", "0001");
    assert_member(root, "batch_no", "000007");

    trips = xr_object_get(root, xr_str_from("trips"));
    assert_non_null(trips);
    assert_int_equal(trips->type, XR_NODE_ARRAY);
    assert_int_equal(trips->u.arr.count, 1);
    assert_member(trips->u.arr.items[0], "amount", "500");

    /* txn NULL on encode: found from the tree's txn field */
    assert_encodes_back(st, &transit_profile, NULL, root);
}


static void
test_counted_records(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root, *trips, *count;

    fx_header(st, "5001", "0003");
    fx_str(st, "000001");
    fx_records(st, 3);

    /* the middle record differs: city 2900 Shanghai, amount 65535 */
    st->msg[32 + 6 + 48 + 32] = 0x29;
    st->msg[32 + 6 + 48 + 17 + 2] = 0xff;
    st->msg[32 + 6 + 48 + 17 + 3] = 0xff;

    assert_int_equal(fx_decode(st, &transit_profile, &transit_txns[0],
                               &root), XR_OK);
    trips = xr_object_get(root, xr_str_from("trips"));
    assert_non_null(trips);
    assert_int_equal(trips->u.arr.count, 3);
    assert_member(trips->u.arr.items[0], "city", "1000");
    assert_member(trips->u.arr.items[1], "city", "2900");
    assert_member(trips->u.arr.items[1], "amount", "65535");
    assert_member(trips->u.arr.items[2], "balance", "3585");

    assert_encodes_back(st, &transit_profile, &transit_txns[0], root);

    /* the count written is the array's, not the tree's */
    count = xr_object_get(root, xr_str_from("count"));
    count->u.s = xr_str_from("0099");
    assert_encodes_back(st, &transit_profile, &transit_txns[0], root);
}


static void
test_zero_records(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root, *trips;

    fx_header(st, "5001", "0000");
    fx_str(st, "000001");

    assert_int_equal(fx_decode(st, &transit_profile, NULL, &root), XR_OK);
    trips = xr_object_get(root, xr_str_from("trips"));
    assert_non_null(trips);
    assert_int_equal(trips->type, XR_NODE_ARRAY);
    assert_int_equal(trips->u.arr.count, 0);

    assert_encodes_back(st, &transit_profile, NULL, root);
}


static void
test_records_to_end(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root, *recs;

    fx_header(st, "5002", "0000");
    fx_records(st, 2);

    assert_int_equal(fx_decode(st, &transit_profile, NULL, &root), XR_OK);
    recs = xr_object_get(root, xr_str_from("recs"));
    assert_non_null(recs);
    assert_int_equal(recs->u.arr.count, 2);
    assert_member(recs->u.arr.items[1], "time", "20241229141740");
    assert_encodes_back(st, &transit_profile, NULL, root);

    /* a trailing partial record */
    fx_hex(st, "04 0000");
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_TRUNCATED, "recs", "partial record of 3 bytes");
}


static void
test_truncated(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root = (xr_node_t *) 1;

    /* shorter than the header */
    fx_str(st, "5001000000000042");
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_TRUNCATED, NULL, "32-byte header");
    assert_null(root);

    /* header, but not the body's fixed part */
    xr_ctx_clear(&st->ctx);
    st->len = 0;
    fx_header(st, "5001", "0000");
    fx_str(st, "0000");
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_TRUNCATED, NULL, "6-byte body");

    /* the card record one byte short */
    xr_ctx_clear(&st->ctx);
    st->len = 0;
    fx_hex(st, tunion_1e_hex);
    st->len--;
    assert_error(st, fx_decode(st, &card_profile, &card_txns[0], &root),
                 XR_E_TRUNCATED, NULL, NULL);
}


static void
test_bad_bcd(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;

    /* time's third byte 0x12 -> 0x1A */
    fx_hex(st, tunion_1e_hex);
    st->msg[25 + 2] = 0x1a;
    assert_error(st, fx_decode(st, &card_profile, &card_txns[0], &root),
                 XR_E_FIELD_FORMAT, "time", "0x1A");

    /* an F nibble before a digit is not padding */
    xr_ctx_clear(&st->ctx);
    st->msg[25 + 2] = 0x12;
    st->msg[32] = 0x1f;
    st->msg[33] = 0x00;
    assert_error(st, fx_decode(st, &card_profile, &card_txns[0], &root),
                 XR_E_FIELD_FORMAT, "city", NULL);

    /* trailing F nibbles are padding */
    xr_ctx_clear(&st->ctx);
    st->msg[32] = 0x10;
    st->msg[33] = 0xff;
    assert_int_equal(fx_decode(st, &card_profile, &card_txns[0], &root),
                     XR_OK);
    assert_member(root, "city", "10");

    st->msg[32] = 0x10;
    st->msg[33] = 0x0f;
    assert_int_equal(fx_decode(st, &card_profile, &card_txns[0], &root),
                     XR_OK);
    assert_member(root, "city", "100");
}


static void
test_trailing_bytes(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;

    fx_hex(st, tunion_1e_hex);
    fx_hex(st, "9000");
    assert_error(st, fx_decode(st, &card_profile, &card_txns[0], &root),
                 XR_E_SYNTAX, NULL, "2 trailing bytes");
}


static void
test_count_mismatch(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;

    /* says 3, holds 2 */
    fx_header(st, "5001", "0003");
    fx_str(st, "000001");
    fx_records(st, 2);
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_TRUNCATED, "trips", "3 records of 48 bytes");

    /* says 1, holds 2 */
    xr_ctx_clear(&st->ctx);
    st->len = 0;
    fx_header(st, "5001", "0001");
    fx_str(st, "000001");
    fx_records(st, 2);
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_SYNTAX, NULL, "48 trailing bytes");

    /* a count that is not a number */
    xr_ctx_clear(&st->ctx);
    st->len = 0;
    fx_header(st, "5001", "00x1");
    fx_str(st, "000001");
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_FIELD_FORMAT, "count", NULL);
}


static void
test_count_limits(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;

    /* more records than nodes allowed: refused before allocating */
    st->ctx.max_nodes = 100;
    fx_header(st, "5001", "0009");
    fx_str(st, "000001");
    fx_records(st, 9);
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_BODY_TOO_LARGE, "trips", NULL);

    /* the same fits the default */
    xr_ctx_init(&st->ctx, st->pool);
    assert_int_equal(fx_decode(st, &transit_profile, NULL, &root), XR_OK);

    /* a count the body limit could never hold */
    xr_ctx_init(&st->ctx, st->pool);
    st->ctx.max_body = 1000;
    st->ctx.max_nodes = 1000000;
    st->len = 0;
    fx_header(st, "5001", "9999");
    fx_str(st, "000001");
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_BODY_TOO_LARGE, NULL, NULL);
}


static void
test_body_limits(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;

    assert_error(st, xr_adapter_fixed.decode(&st->ctx, &card_profile,
                                             XR_DIR_REQUEST, &card_txns[0],
                                             "", 0, &root),
                 XR_E_BODY_EMPTY, NULL, NULL);

    xr_ctx_init(&st->ctx, st->pool);
    st->ctx.max_body = 40;
    fx_hex(st, tunion_1e_hex);
    assert_error(st, fx_decode(st, &card_profile, &card_txns[0], &root),
                 XR_E_BODY_TOO_LARGE, NULL, NULL);
}


static void
test_text_too_long(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root, *station;
    xr_buf_t     out;

    fx_header(st, "5001", "0000");
    fx_str(st, "000001");
    assert_int_equal(fx_decode(st, &transit_profile, NULL, &root), XR_OK);

    /* six characters fill the 12 bytes exactly */
    station = xr_object_get(root, xr_str_from("station"));
    station->u.s = xr_str_from("西直门西直门");
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode(&st->ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out), XR_OK);
    assert_int_equal(out.len, 38);
    assert_memory_equal(out.data + 16,
                        "\xce\xf7\xd6\xb1\xc3\xc5\xce\xf7\xd6\xb1\xc3\xc5",
                        12);

    /* 13 bytes: refused, never cut inside a character */
    station->u.s = xr_str_from("西直门西直门A");
    xr_buf_init(&out, st->pool, 0);
    assert_error(st, xr_adapter_fixed.encode(&st->ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_TOO_LONG, "station", "13 bytes in GBK");
    assert_int_equal(out.len, 0);

    /* a character GBK cannot carry */
    xr_ctx_clear(&st->ctx);
    station->u.s = xr_str_from("\xf0\x9f\x9a\x87");
    xr_buf_init(&out, st->pool, 0);
    assert_error(st, xr_adapter_fixed.encode(&st->ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_CHARSET, "station", NULL);
}


static void
test_bad_gbk(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;

    fx_header(st, "5001", "0000");
    fx_str(st, "000001");
    st->msg[17] = 0x20;     /* a lead byte followed by a space */
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_CHARSET, "station", NULL);
}


static void
test_num_letters(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root, *batch;
    xr_buf_t     out;

    fx_header(st, "5001", "0000");
    fx_str(st, "00A001");
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_FIELD_FORMAT, "batch_no", "byte 2 (0x41)");

    xr_ctx_clear(&st->ctx);
    st->msg[34] = '0';
    assert_int_equal(fx_decode(st, &transit_profile, NULL, &root), XR_OK);

    batch = xr_object_get(root, xr_str_from("batch_no"));
    batch->u.s = xr_str_from("12a");
    xr_buf_init(&out, st->pool, 0);
    assert_error(st, xr_adapter_fixed.encode(&st->ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_FORMAT, "batch_no", NULL);

    /* short digits are padded, long ones refused */
    xr_ctx_clear(&st->ctx);
    batch->u.s = xr_str_from("42");
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode(&st->ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out), XR_OK);
    assert_memory_equal(out.data + 32, "000042", 6);

    batch->u.s = xr_str_from("1234567");
    xr_buf_init(&out, st->pool, 0);
    assert_error(st, xr_adapter_fixed.encode(&st->ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_TOO_LONG, "batch_no", NULL);
}


static void
test_unknown_txn(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root = NULL;

    fx_header(st, "9 9 ", "0000");
    fx_str(st, "000001");
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_TXN_UNKNOWN, NULL, "\"9 9\"");
    assert_null(root);
}


static void
test_profile_errors(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;
    xr_buf_t     out;

    /* a body field named like a header field */
    fx_header(st, "5003", "0000");
    fx_str(st, "00");
    assert_error(st, fx_decode(st, &transit_profile, NULL, &root),
                 XR_E_INTERNAL, "station", "defined twice");

    xr_ctx_clear(&st->ctx);
    root = xr_node_new(&st->ctx, XR_NODE_OBJECT);
    xr_buf_init(&out, st->pool, 0);
    assert_error(st, xr_adapter_fixed.encode(&st->ctx, &transit_profile,
                                             XR_DIR_REQUEST,
                                             &transit_txns[2], root, &out),
                 XR_E_INTERNAL, "station", NULL);

    /* a field outside its layout */
    xr_ctx_clear(&st->ctx);
    tunion_fields[9].len = 7;
    st->len = 0;
    fx_hex(st, tunion_1e_hex);
    assert_error(st, fx_decode(st, &card_profile, &card_txns[0], &root),
                 XR_E_INTERNAL, "reserved", "outside");
    tunion_fields[9].len = 6;

    /* no header field carries @txn */
    xr_ctx_clear(&st->ctx);
    card_profile.header[XR_DIR_REQUEST] = &plain_header;
    assert_error(st, fx_decode(st, &card_profile, NULL, &root),
                 XR_E_INTERNAL, NULL, "@txn");
}


static void
test_misc_encodings(void **state)
{
    fx_state_t  *st = *state;
    xr_ctx_t    *ctx = &st->ctx;
    xr_node_t   *root, *v;
    xr_buf_t     out;

    root = xr_node_new(ctx, XR_NODE_OBJECT);
    xr_object_add(ctx, root, xr_str_from("txn"),
                  xr_node_string(ctx, "5004", 4));
    xr_object_add(ctx, root, xr_str_from("value"),
                  xr_node_number(ctx, "4294967295", 10));
    xr_object_add(ctx, root, xr_str_from("key"),
                  xr_node_string(ctx, "a0b", 3));
    xr_object_add(ctx, root, xr_str_from("seq"),
                  xr_node_int(ctx, XR_NODE_INT, 255));

    /* op is absent: its fill; code is absent: zeros; header blanks */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out), XR_OK);
    assert_int_equal(out.len, 46);
    assert_memory_equal(out.data, "5004000000000000            0000", 32);
    assert_memory_equal(out.data + 32,
                        "ABC\xff\xff\xff\xff\x00\x0a\x0b\x00\x00\x00\xff",
                        14);

    /* and back */
    st->len = 0;
    fx_raw(st, out.data, out.len);
    assert_int_equal(fx_decode(st, &transit_profile, NULL, &root), XR_OK);
    assert_member(root, "op", "ABC");
    assert_member(root, "value", "4294967295");
    assert_member(root, "key", "000A0B");
    assert_member(root, "code", "000000");
    assert_member(root, "seq", "255");
    assert_member(root, "station", "");

    /* a bin value that does not fit */
    v = xr_object_get(root, xr_str_from("value"));
    v->u.s = xr_str_from("4294967296");
    xr_buf_init(&out, st->pool, 0);
    assert_error(st, xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_TOO_LONG, "value", "does not fit in 4 bytes");

    xr_ctx_clear(ctx);
    v->u.s = xr_str_from("99999999999999999999999");
    assert_error(st, xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_TOO_LONG, "value", NULL);

    xr_ctx_clear(ctx);
    v->u.s = xr_str_from("-1");
    assert_error(st, xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_FORMAT, "value", NULL);

    /* hex: too many digits, not hex */
    xr_ctx_clear(ctx);
    v->u.s = xr_str_from("1");
    v = xr_object_get(root, xr_str_from("key"));
    v->u.s = xr_str_from("0102030");
    assert_error(st, xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_TOO_LONG, "key", NULL);

    xr_ctx_clear(ctx);
    v->u.s = xr_str_from("0g");
    assert_error(st, xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_FORMAT, "key", NULL);

    /* bcd: too many digits */
    xr_ctx_clear(ctx);
    v->u.s = xr_str_from("00");
    v = xr_object_get(root, xr_str_from("code"));
    v->u.s = xr_str_from("1234567");
    assert_error(st, xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_TOO_LONG, "code", NULL);

    /* a member of the wrong type */
    xr_ctx_clear(ctx);
    v->u.s = xr_str_from("1");
    v->type = XR_NODE_OBJECT;
    memset(&v->u, 0, sizeof(v->u));
    assert_error(st, xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_FIELD_TYPE, "code", NULL);

    /* an unknown code in the tree */
    xr_ctx_clear(ctx);
    v = xr_object_get(root, xr_str_from("txn"));
    v->u.s = xr_str_from("7777");
    assert_error(st, xr_adapter_fixed.encode(ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_TXN_UNKNOWN, NULL, "7777");
}


static void
test_encode_error(void **state)
{
    fx_state_t  *st = *state;
    xr_ctx_t    *ctx = &st->ctx;
    xr_buf_t     out;

    /* 14 GBK bytes into 9: four characters and a space */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode_error(ctx, &transit_profile,
                                                   xr_str_from("E001"),
                                                   xr_str_from("交易失败"
                                                               "请重试"),
                                                   &out), XR_OK);
    assert_int_equal(out.len, 28);
    assert_memory_equal(out.data,
                        "    E001\xbd\xbb\xd2\xd7\xca\xa7\xb0\xdc 01"
                        "\0\0\0\0\0\0\0\0\0", 28);

    /* an ASCII message cut to the field, unrepresentable text as '?' */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode_error(ctx, &transit_profile,
                                                   xr_str_from("E999"),
                                                   xr_str_from("timeout at "
                                                               "the bank"),
                                                   &out), XR_OK);
    assert_memory_equal(out.data + 4, "E999timeout a", 13);

    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode_error(ctx, &transit_profile,
                                                   xr_str_from("E999"),
                                                   xr_str_from("失\xf0\x9f\x9a"
                                                               "\x87\xff败"),
                                                   &out), XR_OK);
    assert_memory_equal(out.data + 8, "\xca\xa7??\xb0\xdc   ", 9);

    /* the caller's earlier error stays */
    xr_fail(ctx, XR_E_UPSTREAM_TIMEOUT, NULL, "slow");
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_fixed.encode_error(ctx, &transit_profile,
                                                   xr_str_from("E999"),
                                                   xr_str_from("\xff"),
                                                   &out), XR_OK);
    assert_int_equal(ctx->err, XR_E_UPSTREAM_TIMEOUT);
    assert_memory_equal(out.data + 8, "?        ", 9);

    /* no response header */
    xr_ctx_clear(ctx);
    xr_buf_init(&out, st->pool, 0);
    assert_error(st, xr_adapter_fixed.encode_error(ctx, &card_profile,
                                                   xr_str_from("E999"),
                                                   xr_str_from("x"), &out),
                 XR_E_INTERNAL, NULL, NULL);
    assert_int_equal(out.len, 0);
}


static void
test_encode_limit(void **state)
{
    fx_state_t  *st = *state;
    xr_node_t   *root;
    xr_buf_t     out;

    fx_header(st, "5001", "0002");
    fx_str(st, "000001");
    fx_records(st, 2);
    assert_int_equal(fx_decode(st, &transit_profile, NULL, &root), XR_OK);

    xr_buf_init(&out, st->pool, 100);
    assert_error(st, xr_adapter_fixed.encode(&st->ctx, &transit_profile,
                                             XR_DIR_REQUEST, NULL, root,
                                             &out),
                 XR_E_BODY_TOO_LARGE, NULL, NULL);
    assert_int_equal(out.len, 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_vtable),
        cmocka_unit_test_setup_teardown(test_tunion_record, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_tunion_record_build, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_gbk_header, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_counted_records, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_zero_records, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_records_to_end, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_truncated, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_bcd, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_trailing_bytes, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_count_mismatch, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_count_limits, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_body_limits, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_text_too_long, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_bad_gbk, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_num_letters, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_txn, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_profile_errors, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_misc_encodings, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encode_error, fx_setup,
                                        fx_teardown),
        cmocka_unit_test_setup_teardown(test_encode_limit, fx_setup,
                                        fx_teardown),
    };

    return cmocka_run_group_tests_name("xr_adapter_fixed", tests, NULL,
                                       NULL);
}
