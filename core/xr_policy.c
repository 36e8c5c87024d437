/*
 * Cache, invalidation and idempotency keys: see xr_policy.h.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "xr_policy.h"
#include "xr_crypto.h"
#include "xr_record.h"
#include "xr_time.h"


/*
 * The canonical text of one key field in msg.  XR_DECLINED when it is
 * absent, empty or not a scalar.
 */
static int
xr_policy_value(xr_ctx_t *ctx, const xr_msg_t *msg, xr_str_t name,
    xr_str_t *v, char *num, size_t size)
{
    const xr_node_t  *n;
    xr_env_e          env;
    int               len;

    if (name.len && name.data[0] == '@') {
        env = xr_env_by_name(name);

        switch (env) {
        case XR_ENV_DOMAIN:     *v = msg->domain; break;
        case XR_ENV_TXN:        *v = msg->txn; break;
        case XR_ENV_MSG_ID:     *v = msg->msg_id; break;
        case XR_ENV_ORIGIN:     *v = msg->origin; break;
        case XR_ENV_DEST:       *v = msg->dest; break;
        case XR_ENV_CALLER:     *v = msg->caller; break;
        case XR_ENV_VERSION:    *v = msg->version; break;
        case XR_ENV_ERR_CODE:   *v = msg->err_code; break;
        case XR_ENV_ERR_MSG:    *v = msg->err_msg; break;
        case XR_ENV_REF_MSG_ID: *v = msg->ref_msg_id; break;

        case XR_ENV_STATUS:
            *v = xr_str_from(msg->ok ? "ok" : "error");
            break;

        case XR_ENV_TIME:
            if (!msg->has_time) {
                return XR_DECLINED;
            }
            return xr_time_iso(ctx, &msg->time, v);

        default:
            /* the schema loader refuses these: a hand-made schema */
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "key field %.*s is not an envelope field",
                           (int) name.len, name.data);
        }

        return v->len ? XR_OK : XR_DECLINED;
    }

    n = xr_node_path_get(msg->body, name);
    if (n == NULL) {
        return XR_DECLINED;
    }

    switch (n->type) {

    case XR_NODE_STRING:
    case XR_NODE_NUMBER:
        *v = n->u.s;
        return v->len ? XR_OK : XR_DECLINED;

    case XR_NODE_INT:
    case XR_NODE_AMOUNT:
        len = snprintf(num, size, "%" PRId64, n->u.i);
        v->data = num;
        v->len = (size_t) len;
        return XR_OK;

    case XR_NODE_BOOL:
        *v = xr_str_from(n->u.b ? "true" : "false");
        return XR_OK;

    case XR_NODE_TIME:
        return xr_time_iso(ctx, &n->u.t, v);

    default:
        return XR_DECLINED;
    }
}


int
xr_policy_key_text(xr_ctx_t *ctx, const xr_stxn_t *stxn,
    const xr_msg_t *msg, xr_buf_t *out)
{
    xr_str_t  v;
    size_t    i, len0;
    char      num[32];
    int       rc;

    if (stxn->nkey == 0) {
        return XR_DECLINED;
    }

    len0 = out->len;

    for (i = 0; i < stxn->nkey; i++) {
        rc = xr_policy_value(ctx, msg, stxn->key[i], &v, num, sizeof(num));
        if (rc != XR_OK) {
            out->len = len0;
            return rc;
        }
        /* "<len>:<value>": lengths keep "ab"+"c" apart from "a"+"bc" */
        xr_buf_printf(out, "%zu:", v.len);
        xr_buf_add(out, v.data, v.len);
    }

    if (out->failed) {
        out->len = len0;
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/* "<kind>:<domain>:<txn>:<who>:<sha256 hex of the key text>" */
static int
xr_policy_key(xr_ctx_t *ctx, char kind, const xr_schema_t *schema,
    const xr_stxn_t *stxn, const xr_msg_t *req, xr_str_t who, xr_str_t *key)
{
    xr_buf_t       text, b;
    unsigned char  md[XR_SHA256_LEN];
    char           hex[XR_SHA256_HEX_LEN];
    int            rc;

    xr_buf_init(&text, ctx->pool, 0);
    rc = xr_policy_key_text(ctx, stxn, req, &text);
    if (rc != XR_OK) {
        return rc;
    }

    if (xr_sha256(text.data, text.len, md) != XR_OK) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "SHA-256 failed");
    }
    xr_hex(md, sizeof(md), hex);

    xr_buf_init(&b, ctx->pool, 0);
    xr_buf_addc(&b, kind);
    xr_buf_addc(&b, ':');
    xr_buf_add(&b, schema->domain.data, schema->domain.len);
    xr_buf_addc(&b, ':');
    xr_buf_add(&b, stxn->name.data, stxn->name.len);
    xr_buf_addc(&b, ':');
    xr_buf_add(&b, who.data, who.len);
    xr_buf_addc(&b, ':');
    xr_buf_add(&b, hex, sizeof(hex));
    xr_buf_addc(&b, '\0');

    if (b.failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    key->data = b.data;
    key->len = b.len - 1;
    return XR_OK;
}


int
xr_policy_cache_key(xr_ctx_t *ctx, const xr_schema_t *schema,
    const xr_stxn_t *stxn, const xr_msg_t *req, xr_str_t dest,
    xr_str_t *key)
{
    return xr_policy_key(ctx, 'c', schema, stxn, req, dest, key);
}


int
xr_policy_invalidations(xr_ctx_t *ctx, const xr_schema_t *schema,
    const xr_stxn_t *write, const xr_msg_t *req, xr_str_t dest,
    xr_str_t *keys, size_t max, size_t *n)
{
    const xr_stxn_t  *t;
    size_t            i;
    int               rc;

    *n = 0;

    for (i = 0; i < write->ninvalidates; i++) {
        t = xr_schema_txn(schema, write->invalidates[i]);
        if (t == NULL) {
            /* the schema loader refuses these: a hand-made schema */
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "%.*s invalidates unknown transaction %.*s",
                           (int) write->name.len, write->name.data,
                           (int) write->invalidates[i].len,
                           write->invalidates[i].data);
        }
        if (*n == max) {
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "%.*s invalidates more than %zu transactions",
                           (int) write->name.len, write->name.data, max);
        }

        rc = xr_policy_cache_key(ctx, schema, t, req, dest, &keys[*n]);
        if (rc == XR_DECLINED) {
            continue;
        }
        if (rc != XR_OK) {
            return rc;
        }
        (*n)++;
    }

    return XR_OK;
}


int
xr_policy_idempotency_key(xr_ctx_t *ctx, const xr_schema_t *schema,
    const xr_stxn_t *stxn, const xr_msg_t *req, xr_str_t caller,
    xr_str_t *key)
{
    return xr_policy_key(ctx, 'i', schema, stxn, req, caller, key);
}


int
xr_policy_fingerprint(xr_ctx_t *ctx, const xr_msg_t *req, char out[64])
{
    xr_msg_t       m;
    xr_buf_t       b;
    unsigned char  md[XR_SHA256_LEN];

    /* only what a retry must repeat: no id, no time, no version */
    xr_msg_init(&m, XR_DIR_REQUEST);
    m.domain = req->domain;
    m.txn = req->txn;
    m.origin = req->origin;
    m.dest = req->dest;
    m.caller = req->caller;
    m.body = req->body;

    xr_buf_init(&b, ctx->pool, 0);
    if (xr_record_pack_canonical(ctx, &m, &b) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_sha256(b.data, b.len, md) != XR_OK) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "SHA-256 failed");
    }
    xr_hex(md, sizeof(md), out);
    return XR_OK;
}
