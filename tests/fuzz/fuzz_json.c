/*
 * libFuzzer target for the JSON adapter: arbitrary bytes are decoded with a
 * UTF-8 and a GBK profile.  Whatever decodes must encode and decode again
 * to the same tree; whatever fails must fail cleanly (an error set, no
 * tree).  The error document is written from the input too.  Every input
 * gets its own pool, destroyed before returning.
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xr_adapter.h"


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
xr_fuzz_round_trip(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_node_t *tree)
{
    xr_buf_t    out, again;
    xr_node_t  *back;

    xr_ctx_clear(ctx);
    xr_buf_init(&out, ctx->pool, 0);

    if (xr_adapter_json.encode(ctx, p, XR_DIR_RESPONSE, NULL, tree, &out)
        != XR_OK)
    {
        /* only GBK may refuse what it decoded: GB18030 is wider than GBK */
        if (p->charset != XR_CHARSET_GBK || ctx->err != XR_E_CHARSET) {
            abort();
        }
        return;
    }

    xr_ctx_clear(ctx);
    if (xr_adapter_json.decode(ctx, p, XR_DIR_RESPONSE, NULL, out.data,
                               out.len, &back)
        != XR_OK)
    {
        /* our own output may only fail on a limit it grew past */
        if (ctx->err != XR_E_BODY_TOO_LARGE) {
            abort();
        }
        return;
    }

    if (!xr_node_equal(tree, back)) {
        abort();
    }

    /* and the output is stable */
    xr_buf_init(&again, ctx->pool, 0);
    if (xr_adapter_json.encode(ctx, p, XR_DIR_RESPONSE, NULL, back, &again)
        != XR_OK
        || again.len != out.len
        || memcmp(again.data, out.data, out.len) != 0)
    {
        abort();
    }
}


static void
xr_fuzz_one(const uint8_t *data, size_t size, xr_charset_e cs)
{
    xr_pool_t     *pool;
    xr_ctx_t       ctx;
    xr_profile_t   p;
    xr_node_t     *tree;
    xr_buf_t       out;
    xr_str_t       code, msg;
    int            rc;

    pool = xr_pool_create(0);
    if (pool == NULL) {
        return;
    }
    xr_ctx_init(&ctx, pool);

    memset(&p, 0, sizeof(p));
    p.name = xr_str_from("fuzz.json");
    p.codec = xr_str_from("json");
    p.adapter = &xr_adapter_json;
    p.charset = cs;
    p.result_field = xr_str_from("output.code");
    p.message_field = xr_str_from("output.msg");
    p.result_as = XR_WIRE_NUMBER;

    tree = (xr_node_t *) &ctx;
    rc = xr_adapter_json.decode(&ctx, &p, XR_DIR_REQUEST, NULL,
                                (const char *) data, size, &tree);

    if (rc == XR_OK) {
        if (tree == NULL || tree->type != XR_NODE_OBJECT) {
            abort();
        }
        xr_fuzz_round_trip(&ctx, &p, tree);

    } else if (rc != XR_ERROR || ctx.err == XR_E_NONE || tree != NULL) {
        abort();
    }

    /* the error document: the first bytes as the code, the rest as text */
    code.data = (const char *) data;
    code.len = size < 8 ? size : 8;
    msg.data = (const char *) data + code.len;
    msg.len = size - code.len;

    xr_ctx_clear(&ctx);
    xr_buf_init(&out, pool, 0);
    if (xr_adapter_json.encode_error(&ctx, &p, code, msg, &out) == XR_OK) {
        xr_ctx_clear(&ctx);
        if (xr_adapter_json.decode(&ctx, &p, XR_DIR_RESPONSE, NULL, out.data,
                                   out.len, &tree)
            != XR_OK
            && ctx.err != XR_E_BODY_TOO_LARGE)
        {
            abort();
        }
    }

    xr_pool_destroy(pool);
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xr_fuzz_one(data, size, XR_CHARSET_UTF8);
    xr_fuzz_one(data, size, XR_CHARSET_GBK);
    return 0;
}
