/*
 * libFuzzer target for the JSON adapter: arbitrary bytes are decoded with a
 * UTF-8 and a GBK profile.  Whatever decodes must encode and decode again
 * to the same tree; whatever fails must fail cleanly (an error set, no
 * tree).  The error document is written from the input too.  Every input
 * gets its own pool, destroyed before returning.
 *
 * With the UTF-8 profile jansson is the oracle: json_loadb() with
 * JSON_REJECT_DUPLICATES, top level an object, must accept exactly what we
 * accept, and then read the same tree.  Where the two differ on purpose:
 * we refuse nesting past our depth limit and more values than our node
 * limit (jansson's limits are wider); jansson refuses integers beyond
 * 64 bits and reals beyond double range (we keep the literal), after which
 * it says nothing about the rest of the text; and jansson skips a NUL byte
 * right after a number or a literal (its look-ahead buffer reads the NUL as
 * empty), where we refuse any NUL outside a string.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

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


/*
 * Whether a node's `plain` mark is true: writers copy such text unescaped.
 * Unmarked text says nothing.
 */
static int
xr_fuzz_plain_ok(const xr_node_t *n)
{
    size_t  i;

    if (!n->plain) {
        return 1;
    }
    for (i = 0; i < n->u.s.len; i++) {
        if ((unsigned char) n->u.s.data[i] < 0x20
            || (unsigned char) n->u.s.data[i] >= 0x80
            || n->u.s.data[i] == '"' || n->u.s.data[i] == '\\')
        {
            return 0;
        }
    }
    return 1;
}


/* Whether our tree and jansson's hold the same values. */
static int
xr_fuzz_same(const xr_node_t *n, json_t *j)
{
    const char   *key;
    json_t       *v, *lit;
    size_t        klen, i;
    xr_member_t  *m;
    char          text[64], *end;
    json_error_t  error;
    int           same;

    switch (json_typeof(j)) {

    case JSON_OBJECT:
        if (n->type != XR_NODE_OBJECT
            || n->u.obj.count != json_object_size(j))
        {
            return 0;
        }
        m = n->u.obj.first;
        json_object_keylen_foreach(j, key, klen, v) {
            if (m == NULL || m->key.len != klen
                || (klen && memcmp(m->key.data, key, klen) != 0)
                || !xr_fuzz_same(m->value, v))
            {
                return 0;
            }
            m = m->next;
        }
        return m == NULL;

    case JSON_ARRAY:
        if (n->type != XR_NODE_ARRAY || n->u.arr.count != json_array_size(j)) {
            return 0;
        }
        json_array_foreach(j, i, v) {
            if (!xr_fuzz_same(n->u.arr.items[i], v)) {
                return 0;
            }
        }
        return 1;

    case JSON_STRING:
        return n->type == XR_NODE_STRING
               && xr_fuzz_plain_ok(n)
               && n->u.s.len == json_string_length(j)
               && (n->u.s.len == 0
                   || memcmp(n->u.s.data, json_string_value(j), n->u.s.len)
                      == 0);

    case JSON_INTEGER:
        /* jansson took it for an integer: 64 bits, no fraction, no exponent */
        if (n->type != XR_NODE_NUMBER || n->u.s.len >= sizeof(text)
            || !xr_fuzz_plain_ok(n))
        {
            return 0;
        }
        memcpy(text, n->u.s.data, n->u.s.len);
        text[n->u.s.len] = '\0';
        if (strpbrk(text, ".eE") != NULL) {
            return 0;
        }
        return strtoll(text, &end, 10) == json_integer_value(j)
               && *end == '\0';

    case JSON_REAL:
        /* the same reading of our literal text */
        if (n->type != XR_NODE_NUMBER || !xr_fuzz_plain_ok(n)) {
            return 0;
        }
        lit = json_loadb(n->u.s.data, n->u.s.len, JSON_DECODE_ANY, &error);
        same = lit != NULL && json_is_real(lit)
               && json_real_value(lit) == json_real_value(j);
        json_decref(lit);
        return same;

    case JSON_TRUE:
    case JSON_FALSE:
        return n->type == XR_NODE_BOOL && n->u.b == json_is_true(j);

    case JSON_NULL:
        return n->type == XR_NODE_NULL;
    }

    return 0;
}


static void
xr_fuzz_oracle(const uint8_t *data, size_t size, int rc, const xr_ctx_t *ctx,
    const xr_node_t *tree)
{
    json_t        *j;
    json_error_t   error;

    j = json_loadb((const char *) data, size, JSON_REJECT_DUPLICATES,
                   &error);

    if (j == NULL && json_error_code(&error) == json_error_numeric_overflow) {
        return;
    }

    if (rc == XR_OK) {
        if (j == NULL || !json_is_object(j) || !xr_fuzz_same(tree, j)) {
            fprintf(stderr, "we accept, jansson: %s\n",
                    j == NULL ? error.text
                    : json_is_object(j) ? "another tree" : "not an object");
            abort();
        }

    } else if (j != NULL && json_is_object(j)
               && ctx->err != XR_E_DEPTH && ctx->err != XR_E_BODY_TOO_LARGE
               && memchr(data, '\0', size) == NULL)
    {
        fprintf(stderr, "jansson accepts, we: %s\n", ctx->errstr);
        abort();
    }

    json_decref(j);
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

    if (cs == XR_CHARSET_UTF8) {
        xr_fuzz_oracle(data, size, rc, &ctx, tree);
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
