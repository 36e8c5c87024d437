/*
 * libFuzzer target for the XML adapter.  Arbitrary bytes are decoded with a
 * UTF-8 and a GBK profile, and once more with tight limits.  The oracle:
 *
 *  - a failure sets an error and a message and returns no tree;
 *  - a success is a root object of one member, and encodes (GBK may refuse
 *    a character GB18030 decoded and GBK cannot write) to bytes that decode
 *    to the same tree and encode to the same bytes again;
 *  - the error document, built from the input, decodes and carries the
 *    code where the profile says.
 *
 * Every input gets its own pool, destroyed before returning: no leaks.
 *
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -Icore -Iadapters \
 *       tests/fuzz/fuzz_xml.c core/xr_core.c core/xr_node.c \
 *       core/xr_error.c core/xr_charset.c adapters/xr_adapter_xml.c \
 *       $(pkg-config --cflags --libs libxml-2.0) -o fuzz_xml
 */

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "xr_adapter.h"


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static void
xr_fuzz_check(int ok)
{
    if (!ok) {
        abort();
    }
}


static void
xr_fuzz_profile(xr_profile_t *p, xr_charset_e cs)
{
    memset(p, 0, sizeof(xr_profile_t));

    p->name = xr_str_from("fuzz.xml");
    p->codec = xr_str_from("xml");
    p->adapter = &xr_adapter_xml;
    p->charset = cs;
    p->result_field = xr_str_from("PACKET.HEAD.STATUS");
    p->message_field = xr_str_from("PACKET.HEAD.ERRMSG");
}


static void
xr_fuzz_round_trip(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_node_t *tree)
{
    xr_buf_t    out, again;
    xr_node_t  *back;
    int         rc;

    xr_ctx_clear(ctx);
    xr_buf_init(&out, ctx->pool, 0);

    rc = xr_adapter_xml.encode(ctx, p, XR_DIR_RESPONSE, NULL, tree, &out);

    if (rc != XR_OK) {
        xr_fuzz_check(rc == XR_ERROR && out.len == 0);
        xr_fuzz_check(p->charset == XR_CHARSET_GBK
                      && ctx->err == XR_E_CHARSET);
        return;
    }

    xr_ctx_clear(ctx);
    back = NULL;

    rc = xr_adapter_xml.decode(ctx, p, XR_DIR_RESPONSE, NULL, out.data,
                               out.len, &back);

    if (rc != XR_OK) {
        /* escaping may grow the document past the body limit */
        xr_fuzz_check(ctx->err == XR_E_BODY_TOO_LARGE);
        return;
    }

    xr_fuzz_check(xr_node_equal(tree, back));

    xr_ctx_clear(ctx);
    xr_buf_init(&again, ctx->pool, 0);

    rc = xr_adapter_xml.encode(ctx, p, XR_DIR_RESPONSE, NULL, back, &again);

    xr_fuzz_check(rc == XR_OK && again.len == out.len
                  && memcmp(again.data, out.data, out.len) == 0);
}


static void
xr_fuzz_error_doc(xr_ctx_t *ctx, const xr_profile_t *p, const uint8_t *data,
    size_t size)
{
    const xr_node_t  *status;
    xr_node_t        *tree;
    xr_buf_t          out;
    xr_str_t          code, msg;
    int               rc;

    /* the first bytes as the code, the rest as the message */
    code.data = (const char *) data;
    code.len = size < 6 ? size : 6;
    msg.data = (const char *) data + code.len;
    msg.len = size - code.len;

    xr_ctx_clear(ctx);
    xr_buf_init(&out, ctx->pool, 0);

    if (xr_adapter_xml.encode_error(ctx, p, code, msg, &out) != XR_OK) {
        /* only the code is written as given: it may not be writable */
        xr_fuzz_check(out.len == 0 && ctx->err == XR_E_CHARSET);
        return;
    }

    xr_ctx_clear(ctx);
    tree = NULL;

    rc = xr_adapter_xml.decode(ctx, p, XR_DIR_RESPONSE, NULL, out.data,
                               out.len, &tree);
    if (rc != XR_OK) {
        xr_fuzz_check(ctx->err == XR_E_BODY_TOO_LARGE);
        return;
    }

    status = xr_node_path_get(tree, p->result_field);

    if (code.len == 0) {
        /* an empty code is an empty leaf */
        xr_fuzz_check(status != NULL && status->type == XR_NODE_STRING
                      && status->u.s.len == 0);
        return;
    }

    /* GBK code bytes come back as their UTF-8 */
    if (p->charset == XR_CHARSET_UTF8) {
        xr_fuzz_check(status != NULL && status->type == XR_NODE_STRING
                      && xr_str_cmp(status->u.s, code) == 0);
    }
}


static void
xr_fuzz_one(const uint8_t *data, size_t size, xr_charset_e cs, int tight)
{
    xr_pool_t     *pool;
    xr_ctx_t       ctx;
    xr_profile_t   p;
    xr_node_t     *tree;
    int            rc;

    pool = xr_pool_create(0);
    if (pool == NULL) {
        return;
    }

    xr_ctx_init(&ctx, pool);
    xr_fuzz_profile(&p, cs);

    if (tight) {
        ctx.max_depth = 4;
        ctx.max_nodes = 24;
        ctx.max_body = 512;
    }

    tree = (xr_node_t *) &ctx;

    rc = xr_adapter_xml.decode(&ctx, &p, XR_DIR_REQUEST, NULL,
                               (const char *) data, size, &tree);

    if (rc == XR_OK) {
        xr_fuzz_check(ctx.err == XR_E_NONE);
        xr_fuzz_check(tree != NULL && tree->type == XR_NODE_OBJECT
                      && tree->u.obj.count == 1);
        xr_fuzz_round_trip(&ctx, &p, tree);

    } else {
        xr_fuzz_check(rc == XR_ERROR && tree == NULL);
        xr_fuzz_check(ctx.err != XR_E_NONE && ctx.err < XR_E_LAST
                      && ctx.errstr[0] != '\0');
    }

    if (!tight) {
        xr_fuzz_error_doc(&ctx, &p, data, size);
    }

    xr_pool_destroy(pool);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void) argc;
    (void) argv;

    return xr_adapter_xml.init() == XR_OK ? 0 : -1;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xr_fuzz_one(data, size, XR_CHARSET_UTF8, 0);
    xr_fuzz_one(data, size, XR_CHARSET_GBK, 0);
    xr_fuzz_one(data, size, XR_CHARSET_UTF8, 1);

    return 0;
}
