/*
 * The NHSA mobile-payment envelope: xr_seal.h says what it is.
 *
 * Both directions work on the JSON adapter's wire tree: the plain message
 * is read, the member is taken out, its canonical text is signed (with
 * the other parameters) and encrypted, and the envelope is written back
 * with the same adapter; opening does the reverse and checks the
 * signature over the text it decrypted.
 */

#include <stdlib.h>
#include <string.h>

#include "xr_adapter.h"
#include "xr_node.h"
#include "xr_seal.h"


#define XR_SEAL_MAX_PARAMS  64


static xr_str_t  xr_seal_enc_data = xr_string("encData");
static xr_str_t  xr_seal_enc_type = xr_string("encType");
static xr_str_t  xr_seal_sign_data = xr_string("signData");
static xr_str_t  xr_seal_sign_type = xr_string("signType");
static xr_str_t  xr_seal_extra = xr_string("extra");
static xr_str_t  xr_seal_sm4 = xr_string("SM4");
static xr_str_t  xr_seal_sm2 = xr_string("SM2");


static int
xr_seal_key_is(xr_str_t key, xr_str_t name)
{
    return key.len == name.len && memcmp(key.data, name.data, key.len) == 0;
}


/*
 * The members a message has both sealed and in clear: all but the
 * member to seal and the envelope's own four.  Added to `to` in order.
 */

static int
xr_seal_copy_common(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_node_t *from, xr_node_t *to)
{
    xr_member_t  *m;

    for (m = from->u.obj.first; m; m = m->next) {
        if (xr_seal_key_is(m->key, p->seal_member)
            || xr_seal_key_is(m->key, xr_seal_enc_data)
            || xr_seal_key_is(m->key, xr_seal_enc_type)
            || xr_seal_key_is(m->key, xr_seal_sign_data)
            || xr_seal_key_is(m->key, xr_seal_sign_type))
        {
            continue;
        }

        if (xr_object_add(ctx, to, m->key, m->value) != XR_OK) {
            return XR_ERROR;
        }
    }

    return XR_OK;
}


static int
xr_seal_empty(const xr_node_t *v)
{
    return v == NULL || v->type == XR_NODE_NULL
           || (v->type == XR_NODE_STRING && v->u.s.len == 0);
}


static int
xr_seal_member_cmp(const void *a, const void *b)
{
    const xr_member_t  *x = *(const xr_member_t * const *) a;
    const xr_member_t  *y = *(const xr_member_t * const *) b;
    size_t              n;
    int                 c;

    n = x->key.len < y->key.len ? x->key.len : y->key.len;
    c = n ? memcmp(x->key.data, y->key.data, n) : 0;

    if (c) {
        return c;
    }

    return (x->key.len > y->key.len) - (x->key.len < y->key.len);
}


/* A copy with keys sorted and empty members left out, at every level. */

static xr_node_t *
xr_seal_sorted(xr_ctx_t *ctx, const xr_node_t *v, unsigned depth)
{
    size_t         i, n;
    xr_node_t     *copy, *item;
    xr_member_t   *m, **members;

    if (depth > xr_ctx_max_depth(ctx)) {
        xr_fail(ctx, XR_E_DEPTH, NULL, "sealed member nested too deep");
        return NULL;
    }

    if (v->type == XR_NODE_ARRAY) {
        copy = xr_node_new(ctx, XR_NODE_ARRAY);
        if (copy == NULL) {
            return NULL;
        }

        for (i = 0; i < v->u.arr.count; i++) {
            item = xr_seal_sorted(ctx, v->u.arr.items[i], depth + 1);
            if (item == NULL || xr_array_push(ctx, copy, item) != XR_OK) {
                return NULL;
            }
        }

        return copy;
    }

    if (v->type != XR_NODE_OBJECT) {
        return (xr_node_t *) v;
    }

    copy = xr_node_new(ctx, XR_NODE_OBJECT);
    if (copy == NULL) {
        return NULL;
    }

    n = v->u.obj.count;
    members = xr_palloc(ctx->pool, (n ? n : 1) * sizeof(xr_member_t *));
    if (members == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }

    for (i = 0, m = v->u.obj.first; m && i < n; m = m->next, i++) {
        members[i] = m;
    }

    n = i;
    qsort(members, n, sizeof(xr_member_t *), xr_seal_member_cmp);

    for (i = 0; i < n; i++) {
        if (xr_seal_empty(members[i]->value)) {
            continue;
        }

        item = xr_seal_sorted(ctx, members[i]->value, depth + 1);
        if (item == NULL
            || xr_object_add(ctx, copy, members[i]->key, item) != XR_OK)
        {
            return NULL;
        }
    }

    return copy;
}


int
xr_seal_canonical(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_node_t *value, xr_buf_t *out)
{
    xr_node_t  *sorted;

    sorted = xr_seal_sorted(ctx, value, 0);
    if (sorted == NULL) {
        return XR_ERROR;
    }

    if (p->adapter->encode(ctx, p, XR_DIR_REQUEST, NULL, sorted, out)
        != XR_OK
        || out->failed)
    {
        return ctx->err ? XR_ERROR : xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    return XR_OK;
}


/*
 * The parameters of the signing string: every top-level member but the
 * envelope's own and extra, the member replaced by its canonical text.
 */

static int
xr_seal_params(xr_ctx_t *ctx, const xr_profile_t *p, const xr_node_t *root,
    xr_str_t member_text, xr_sign_param_t *params, size_t *n)
{
    size_t        k;
    xr_buf_t      b;
    xr_member_t  *m;
    const xr_node_t  *v;

    k = 0;

    for (m = root->u.obj.first; m; m = m->next) {

        if (xr_seal_key_is(m->key, xr_seal_sign_data)
            || xr_seal_key_is(m->key, xr_seal_enc_data)
            || xr_seal_key_is(m->key, xr_seal_extra))
        {
            continue;
        }

        if (k == XR_SEAL_MAX_PARAMS) {
            return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                           "more than %d top-level parameters",
                           XR_SEAL_MAX_PARAMS);
        }

        params[k].key = m->key;

        if (xr_seal_key_is(m->key, p->seal_member)) {
            params[k++].value = member_text;
            continue;
        }

        v = m->value;

        if (xr_seal_empty(v)) {
            continue;
        }

        switch (v->type) {

        case XR_NODE_STRING:
        case XR_NODE_NUMBER:
            params[k++].value = v->u.s;
            break;

        case XR_NODE_BOOL:
            params[k++].value = v->u.b ? (xr_str_t) xr_string("true")
                                       : (xr_str_t) xr_string("false");
            break;

        default:
            xr_buf_init(&b, ctx->pool, 0);
            if (xr_seal_canonical(ctx, p, v, &b) != XR_OK) {
                return XR_ERROR;
            }
            params[k].value.data = b.data;
            params[k++].value.len = b.len;
            break;
        }
    }

    *n = k;

    return XR_OK;
}


static int
xr_seal_read(xr_ctx_t *ctx, const xr_profile_t *p, const char *data,
    size_t len, xr_node_t **root)
{
    if (p->adapter->decode(ctx, p, XR_DIR_REQUEST, NULL, data, len, root)
        != XR_OK)
    {
        return XR_ERROR;
    }

    if (*root == NULL || (*root)->type != XR_NODE_OBJECT) {
        return xr_fail(ctx, XR_E_SYNTAX, NULL,
                       "a sealed message is a JSON object");
    }

    return XR_OK;
}


int
xr_seal_close(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_seal_keys_t *keys, const char *plain, size_t len,
    xr_buf_t *out)
{
    char             *hex;
    size_t            n;
    xr_buf_t          text, str, der, raw, enc, sig;
    xr_str_t          member_text;
    xr_node_t        *root, *env, *v;
    xr_sign_param_t   params[XR_SEAL_MAX_PARAMS + 2];

    if (xr_seal_read(ctx, p, plain, len, &root) != XR_OK) {
        return XR_ERROR;
    }

    /* an answer without the member (a refusal) is signed all the same */

    v = xr_object_get(root, p->seal_member);
    if (v && v->type != XR_NODE_OBJECT) {
        return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                       "the member \"%.*s\" to seal is not an object",
                       (int) p->seal_member.len, p->seal_member.data);
    }

    xr_buf_init(&text, ctx->pool, 0);
    if (v && xr_seal_canonical(ctx, p, v, &text) != XR_OK) {
        return XR_ERROR;
    }

    member_text.data = text.data;
    member_text.len = text.len;

    /* the envelope: the plain members in order, the member replaced */

    env = xr_node_new(ctx, XR_NODE_OBJECT);
    if (env == NULL) {
        return XR_ERROR;
    }

    if (xr_seal_copy_common(ctx, p, root, env) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_object_add(ctx, env, xr_seal_enc_type,
                      xr_node_string_ref(ctx, xr_seal_sm4.data,
                                         xr_seal_sm4.len)) != XR_OK
        || xr_object_add(ctx, env, xr_seal_sign_type,
                         xr_node_string_ref(ctx, xr_seal_sm2.data,
                                            xr_seal_sm2.len)) != XR_OK)
    {
        return XR_ERROR;
    }

    /* sign: the parameters as they go, the member in clear */

    if (xr_seal_params(ctx, p, env, member_text, params, &n) != XR_OK) {
        return XR_ERROR;
    }

    if (v) {
        params[n].key = p->seal_member;
        params[n++].value = member_text;
    }

    xr_buf_init(&str, ctx->pool, 0);
    xr_buf_init(&der, ctx->pool, 0);
    xr_buf_init(&raw, ctx->pool, 0);
    xr_buf_init(&sig, ctx->pool, 0);

    if (xr_nhsa_sign_string(ctx, params, n, keys->app_secret, &str) != XR_OK
        || str.failed
        || xr_sm2_sign(ctx, keys->own, keys->id.len ? keys->id.data : NULL,
                       keys->id.len, str.data, str.len, &der) != XR_OK
        || xr_sm2_sig_to_raw(ctx, der.data, der.len, &raw) != XR_OK
        || xr_base64_encode(raw.data, raw.len, &sig) != XR_OK
        || sig.failed)
    {
        return ctx->err ? XR_ERROR : xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    /* encrypt the member's text */

    if (v == NULL) {
        goto envelope;
    }

    xr_buf_init(&enc, ctx->pool, 0);

    if (xr_sm4_crypt(ctx, 1, XR_SM4_ECB, keys->sm4_key, NULL, text.data,
                     text.len, &enc) != XR_OK
        || enc.failed)
    {
        return ctx->err ? XR_ERROR : xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    hex = xr_palloc(ctx->pool, 2 * enc.len + 1);
    if (hex == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    xr_hex_upper((const unsigned char *) enc.data, enc.len, hex);

    if (xr_object_add(ctx, env, xr_seal_enc_data,
                      xr_node_string_ref(ctx, hex, 2 * enc.len))
        != XR_OK)
    {
        return XR_ERROR;
    }

envelope:

    if (xr_object_add(ctx, env, xr_seal_sign_data,
                      xr_node_string_ref(ctx, sig.data, sig.len)) != XR_OK)
    {
        return XR_ERROR;
    }

    if (p->adapter->encode(ctx, p, XR_DIR_REQUEST, NULL, env, out) != XR_OK
        || out->failed)
    {
        return ctx->err ? XR_ERROR : xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    return XR_OK;
}


/* Every defect of an envelope: one error, one text. */

static int
xr_seal_refuse(xr_ctx_t *ctx)
{
    xr_ctx_clear(ctx);

    return xr_fail(ctx, XR_E_BAD_SIGNATURE, NULL,
                   "the sealed message does not open (encData, signData)");
}


int
xr_seal_open(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_seal_keys_t *keys, const char *sealed, size_t len,
    xr_buf_t *out)
{
    int               rc;
    size_t            n;
    xr_buf_t          bin, text, canon, str, sig;
    xr_str_t          member_text;
    xr_node_t        *root, *plain, *member, *enc, *sd, *t;
    xr_sign_param_t   params[XR_SEAL_MAX_PARAMS + 2];

    if (xr_seal_read(ctx, p, sealed, len, &root) != XR_OK) {
        return XR_ERROR;
    }

    enc = xr_object_get(root, xr_seal_enc_data);
    sd = xr_object_get(root, xr_seal_sign_data);

    /* the member is never in clear; without encData there is none */

    if ((enc && enc->type != XR_NODE_STRING)
        || sd == NULL || sd->type != XR_NODE_STRING
        || xr_object_get(root, p->seal_member) != NULL)
    {
        return xr_seal_refuse(ctx);
    }

    t = xr_object_get(root, xr_seal_enc_type);
    if (t && (t->type != XR_NODE_STRING
              || !xr_seal_key_is(t->u.s, xr_seal_sm4)))
    {
        return xr_seal_refuse(ctx);
    }

    t = xr_object_get(root, xr_seal_sign_type);
    if (t && (t->type != XR_NODE_STRING
              || !xr_seal_key_is(t->u.s, xr_seal_sm2)))
    {
        return xr_seal_refuse(ctx);
    }

    /* decrypt and read the member */

    member = NULL;
    member_text.data = NULL;
    member_text.len = 0;

    if (enc == NULL) {
        goto verify;
    }

    xr_buf_init(&bin, ctx->pool, 0);
    xr_buf_init(&text, ctx->pool, 0);

    if (xr_hex_decode(ctx, enc->u.s.data, enc->u.s.len, &bin) != XR_OK
        || xr_sm4_crypt(ctx, 0, XR_SM4_ECB, keys->sm4_key, NULL, bin.data,
                        bin.len, &text) != XR_OK
        || text.failed)
    {
        return xr_seal_refuse(ctx);
    }

    if (p->adapter->decode(ctx, p, XR_DIR_REQUEST, NULL, text.data, text.len,
                           &member) != XR_OK
        || member == NULL || member->type != XR_NODE_OBJECT)
    {
        return xr_seal_refuse(ctx);
    }

    xr_buf_init(&canon, ctx->pool, 0);
    if (xr_seal_canonical(ctx, p, member, &canon) != XR_OK) {
        return xr_seal_refuse(ctx);
    }

    member_text.data = canon.data;
    member_text.len = canon.len;

verify:

    /* check the signature over what was decrypted */

    if (xr_seal_params(ctx, p, root, member_text, params, &n) != XR_OK) {
        return xr_seal_refuse(ctx);
    }

    if (member) {
        params[n].key = p->seal_member;
        params[n++].value = member_text;
    }

    xr_buf_init(&str, ctx->pool, 0);
    xr_buf_init(&sig, ctx->pool, 0);

    if (xr_nhsa_sign_string(ctx, params, n, keys->app_secret, &str) != XR_OK
        || str.failed
        || xr_base64_decode(ctx, sd->u.s.data, sd->u.s.len, &sig) != XR_OK)
    {
        return xr_seal_refuse(ctx);
    }

    rc = xr_sm2_verify(ctx, keys->peer, keys->id.len ? keys->id.data : NULL,
                       keys->id.len, str.data, str.len, sig.data, sig.len);
    if (rc != XR_OK) {
        return xr_seal_refuse(ctx);
    }

    /* the plain message: the envelope's members out, the member in */

    plain = xr_node_new(ctx, XR_NODE_OBJECT);
    if (plain == NULL) {
        return XR_ERROR;
    }

    if (xr_seal_copy_common(ctx, p, root, plain) != XR_OK) {
        return XR_ERROR;
    }

    if (member && xr_object_add(ctx, plain, p->seal_member, member)
                  != XR_OK)
    {
        return XR_ERROR;
    }

    if (p->adapter->encode(ctx, p, XR_DIR_REQUEST, NULL, plain, out)
        != XR_OK
        || out->failed)
    {
        return ctx->err ? XR_ERROR : xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    return XR_OK;
}
