/*
 * bytes <-> canonical message, and error answers in a caller's format.
 */

#include <string.h>

#include "xr_translate.h"
#include "xr_adapter.h"
#include "xr_time.h"
#include "xr_charset.h"


int
xr_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir, xr_str_t txn,
    const char *data, size_t len, xr_msg_t *msg)
{
    const xr_ptxn_t  *hint = NULL;
    xr_node_t        *wire;

    if (txn.len) {
        hint = xr_profile_txn(p, txn);
        if (hint == NULL) {
            return xr_fail(ctx, XR_E_TXN_UNSUPPORTED, "@txn",
                           "%.*s does not offer transaction %.*s",
                           (int) p->name.len, p->name.data,
                           (int) txn.len, txn.data);
        }
    }

    if (len > xr_ctx_max_body(ctx)) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "message of %zu bytes is larger than the limit of "
                       "%zu", len, xr_ctx_max_body(ctx));
    }
    if (len == 0) {
        return xr_fail(ctx, XR_E_BODY_EMPTY, NULL, NULL);
    }

    if (p->adapter->decode(ctx, p, dir, hint, data, len, &wire) != XR_OK) {
        if (ctx->err == XR_E_NONE) {
            xr_fail(ctx, XR_E_INTERNAL, NULL, "adapter failed silently");
        }
        return XR_ERROR;
    }

    return xr_map_decode(ctx, p, dir, hint, wire, msg);
}


static int
xr_encode_wire(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *ptxn, const xr_node_t *wire, xr_buf_t *out)
{
    size_t  start = out->len;

    if (p->adapter->encode(ctx, p, dir, ptxn, wire, out) != XR_OK
        || out->failed)
    {
        out->len = start;
        if (ctx->err == XR_E_NONE) {
            xr_fail(ctx, out->failed ? XR_E_BODY_TOO_LARGE : XR_E_INTERNAL,
                    NULL, "encoding failed");
        }
        return XR_ERROR;
    }
    return XR_OK;
}


int
xr_encode(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *msg,
    xr_buf_t *out)
{
    const xr_ptxn_t  *ptxn;
    xr_node_t        *wire;
    xr_wvals_t       *doc;
    size_t            start = out->len;
    int               rc;

    if (p->adapter->encode_plan) {
        /* no wire tree: the adapter writes from the plan's slots */
        rc = xr_map_encode_plan(ctx, p, msg, &ptxn, &doc);
        if (rc == XR_ERROR) {
            return XR_ERROR;
        }
        if (rc == XR_OK) {
            if (p->adapter->encode_plan(ctx, p, doc, out) != XR_OK
                || out->failed)
            {
                out->len = start;
                if (ctx->err == XR_E_NONE) {
                    xr_fail(ctx, out->failed ? XR_E_BODY_TOO_LARGE
                                             : XR_E_INTERNAL,
                            NULL, "encoding failed");
                }
                return XR_ERROR;
            }
            return XR_OK;
        }
    }

    if (xr_map_encode(ctx, p, msg, &ptxn, &wire) != XR_OK) {
        return XR_ERROR;
    }
    return xr_encode_wire(ctx, p, msg->dir, ptxn, wire, out);
}


int
xr_encode_error(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *req,
    xr_err_e err, xr_str_t err_code, xr_str_t message, xr_buf_t *out,
    int *http_status)
{
    const xr_ptxn_t  *ptxn = NULL;
    xr_msg_t          msg;
    xr_node_t        *wire;
    xr_ctx_t          ectx;
    xr_str_t          wire_code;
    size_t            start = out->len, n;

    *http_status = p->error_status ? p->error_status
                                   : xr_error_info(err)->http_status;

    xr_msg_init(&msg, XR_DIR_RESPONSE);
    msg.domain = p->domain;
    msg.ok = 0;
    msg.err_code = err_code.len ? err_code
                                : xr_str_from(xr_error_info(err)->name);
    msg.err_msg = message.len ? message
                              : xr_str_from(xr_error_info(err)->text);
    xr_time_now(&msg.time);
    msg.has_time = 1;

    if (req) {
        msg.txn = req->txn;
        msg.msg_id = req->msg_id;
        msg.origin = req->dest;
        msg.dest = req->origin;
        msg.caller = req->caller;
        if (req->txn.len) {
            ptxn = xr_profile_txn(p, req->txn);
        }
    }

    for ( ;; ) {
        /* the error being answered must not be overwritten by encoding's */
        xr_ctx_init(&ectx, ctx->pool);

        if (xr_map_encode_txn(&ectx, p, &msg, ptxn, &wire) == XR_OK
            && xr_encode_wire(&ectx, p, XR_DIR_RESPONSE, ptxn, wire, out)
               == XR_OK)
        {
            return XR_OK;
        }

        out->len = start;
        out->failed = 0;

        if (ectx.err != XR_E_FIELD_TOO_LONG || msg.err_msg.len == 0) {
            break;
        }

        /*
         * The text is longer than the profile's message field (fixed-width
         * records have 60-odd bytes): shorten it, on a UTF-8 character
         * boundary, rather than lose the envelope to the last resort.
         */
        n = msg.err_msg.len / 2;
        while (n && ((unsigned char) msg.err_msg.data[n] & 0xc0) == 0x80) {
            n--;
        }
        msg.err_msg.len = n;
    }

    /* last resort: the adapter's own minimal error document */
    out->len = start;
    out->failed = 0;
    wire_code = p->fail_value.len ? p->fail_value : xr_str_from("-1");
    if (p->errors) {
        if (xr_table_to_wire(p->errors, msg.err_code, &wire_code) != XR_OK
            && p->errors->default_wire.len)
        {
            wire_code = p->errors->default_wire;
        }
    }
    xr_ctx_init(&ectx, ctx->pool);
    if (p->adapter->encode_error
        && p->adapter->encode_error(&ectx, p, wire_code, msg.err_msg, out)
           == XR_OK)
    {
        return XR_OK;
    }
    out->len = start;
    return XR_ERROR;
}


xr_str_t
xr_profile_content_type(xr_ctx_t *ctx, const xr_profile_t *p)
{
    xr_buf_t     b;
    const char  *base;
    xr_str_t     r;

    if (p->http_content_type.len) {
        return p->http_content_type;
    }

    if (p->content_type.len) {
        base = p->content_type.data;
    } else {
        base = p->adapter->content_type;
    }

    if (!(p->adapter->flags & XR_ADAPTER_TEXT)
        || strstr(base, "charset") != NULL)
    {
        return xr_str_from(base);
    }

    xr_buf_init(&b, ctx->pool, 0);
    xr_buf_printf(&b, "%s; charset=%s", base, xr_charset_name(p->charset));
    if (b.failed) {
        return xr_str_from(base);
    }
    r.data = b.data;
    r.len = b.len;
    return r;
}
