/*
 * libFuzzer target: the fixed-width adapter decoding arbitrary bytes
 * against a small profile built here (a GBK header carrying the
 * transaction code, a body with a counted records block, records running
 * to the end, a transaction without a body).
 *
 * Every input is decoded as a request (the header names the transaction)
 * and as an answer to a known transaction; what decodes is encoded again,
 * and what we encode must decode and encode to the same bytes.  The input
 * is also written as an error message.  One pool per input: no leaks.
 *
 *   clang -fsanitize=fuzzer,address,undefined -Icore -Iadapters \
 *       tests/fuzz/fuzz_fixed.c adapters/xr_adapter_fixed.c \
 *       core/xr_core.c core/xr_node.c core/xr_error.c core/xr_charset.c
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/xr_core.h"
#include "../../core/xr_node.h"
#include "../../core/xr_profile.h"
#include "../../adapters/xr_adapter.h"


#define FX(n, o, l, e)  { xr_string(n), o, l, XR_FX_##e, xr_null_string, 0 }

static xr_fxfield_t  fz_req_fields[] = {
    FX("txn", 0, 4, TEXT),
    FX("seq", 4, 6, NUM),
    FX("time", 10, 7, BCD),
    FX("count", 17, 3, NUM),
    FX("key", 20, 2, HEX),
};

static xr_layout_t  fz_req_header = {
    fz_req_fields, 5, 22, xr_null_string, xr_null_string, NULL, 0
};

static xr_fxfield_t  fz_resp_fields[] = {
    FX("txn", 0, 4, TEXT),
    FX("result", 4, 4, TEXT),
    FX("message", 8, 11, TEXT),
    { xr_string("ver"), 19, 2, XR_FX_NUM, xr_string("01"), 0 },
};

static xr_layout_t  fz_resp_header = {
    fz_resp_fields, 4, 24, xr_null_string, xr_null_string, NULL, 0
};

static xr_fxfield_t  fz_trip_fields[] = {
    FX("amount", 0, 4, BIN),
    FX("time", 4, 7, BCD),
    FX("station", 11, 6, TEXT),
    FX("city", 17, 2, BCD),
};

static xr_layout_t  fz_trip = {
    fz_trip_fields, 4, 19, xr_null_string, xr_null_string, NULL, 0
};

static xr_fxfield_t  fz_upload_fields[] = {
    FX("batch", 0, 4, BIN),
    FX("name", 4, 8, TEXT),
    FX("n", 12, 2, NUM),
};

static xr_layout_t  fz_upload = {
    fz_upload_fields, 3, 14, xr_string("trips"), xr_string("count"),
    &fz_trip, 0
};

static xr_layout_t  fz_upload_resp = {
    fz_upload_fields, 3, 14, xr_string("trips"), xr_string("n"),
    &fz_trip, 0
};

static xr_fxfield_t  fz_item_fields[] = {
    FX("a", 0, 2, NUM),
    FX("b", 2, 1, HEX),
    FX("c", 3, 1, BIN),
};

static xr_layout_t  fz_item = {
    fz_item_fields, 3, 4, xr_null_string, xr_null_string, NULL, 0
};

static xr_layout_t  fz_stream = {
    NULL, 0, 0, xr_string("items"), xr_null_string, &fz_item, 0
};

static xr_map_t  fz_env[] = {
    { .canon = xr_string("@txn"), .env = XR_ENV_TXN,
      .wire = xr_string("txn") },
};

static xr_ptxn_t  fz_txns[] = {
    { .code = xr_string("5001"), .layout = { &fz_upload, &fz_upload_resp } },
    { .code = xr_string("5002"), .layout = { &fz_stream, &fz_stream } },
    { .code = xr_string("5003"), .layout = { NULL, NULL } },
};

static xr_profile_t  fz_profile = {
    .name = xr_string("fuzz.transit"),
    .codec = xr_string("fixed"),
    .charset = XR_CHARSET_GBK,
    .env = { { fz_env, 1 }, { fz_env, 1 } },
    .txns = fz_txns,
    .ntxns = 3,
    .result_field = xr_string("result"),
    .message_field = xr_string("message"),
    .header = { &fz_req_header, &fz_resp_header },
};


/* decode -> encode -> decode -> encode: the two encodings are equal */
static void
fz_round(xr_pool_t *pool, xr_dir_e dir, const xr_ptxn_t *txn,
    const uint8_t *data, size_t size)
{
    xr_ctx_t    ctx;
    xr_node_t  *tree, *again;
    xr_buf_t    b1, b2;

    xr_ctx_init(&ctx, pool);
    if (xr_adapter_fixed.decode(&ctx, &fz_profile, dir, txn,
                                (const char *) data, size, &tree)
        != XR_OK)
    {
        if (ctx.err == XR_E_NONE || tree != NULL) {
            abort();
        }
        return;
    }

    xr_buf_init(&b1, pool, 0);
    if (xr_adapter_fixed.encode(&ctx, &fz_profile, dir, txn, tree, &b1)
        != XR_OK)
    {
        /* GB18030 text that GBK cannot write back is the only excuse */
        if (ctx.err != XR_E_CHARSET) {
            abort();
        }
        return;
    }

    if (xr_adapter_fixed.decode(&ctx, &fz_profile, dir, txn, b1.data, b1.len,
                                &again)
        != XR_OK)
    {
        abort();
    }

    xr_buf_init(&b2, pool, 0);
    if (xr_adapter_fixed.encode(&ctx, &fz_profile, dir, txn, again, &b2)
        != XR_OK
        || b1.len != b2.len || memcmp(b1.data, b2.data, b1.len) != 0)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xr_pool_t  *pool;
    xr_ctx_t    ctx;
    xr_buf_t    out;
    xr_str_t    msg, code = xr_string("E999");

    pool = xr_pool_create(0);
    if (pool == NULL) {
        return 0;
    }

    fz_round(pool, XR_DIR_REQUEST, NULL, data, size);
    fz_round(pool, XR_DIR_RESPONSE, &fz_txns[size % 3], data, size);

    /* any bytes as an error message: always written, always fits */
    xr_ctx_init(&ctx, pool);
    msg.data = (const char *) data;
    msg.len = size;
    xr_buf_init(&out, pool, 0);
    if (xr_adapter_fixed.encode_error(&ctx, &fz_profile, code, msg, &out)
        != XR_OK
        || out.len != fz_resp_header.size)
    {
        abort();
    }

    xr_pool_destroy(pool);
    return 0;
}
