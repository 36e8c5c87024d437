/*
 * Canonical message: envelope names and the JSON dump used by the tool.
 */

#include <string.h>

#include "xr_msg.h"


static const char  *xr_env_names[XR_ENV_LAST] = {
    "@domain", "@txn", "@msg_id", "@origin", "@dest", "@time", "@caller",
    "@version", "@status", "@err_code", "@err_msg", "@ref_msg_id"
};


xr_env_e
xr_env_by_name(xr_str_t name)
{
    int  i;

    for (i = 0; i < XR_ENV_LAST; i++) {
        if (xr_str_eq(name, xr_env_names[i])) {
            return (xr_env_e) i;
        }
    }
    return XR_ENV_NONE;
}


const char *
xr_env_name(xr_env_e env)
{
    if ((int) env < 0 || env >= XR_ENV_LAST) {
        return "?";
    }
    return xr_env_names[env];
}


void
xr_msg_init(xr_msg_t *msg, xr_dir_e dir)
{
    memset(msg, 0, sizeof(xr_msg_t));
    msg->dir = dir;
}


static void
xr_msg_dump_str(xr_ctx_t *ctx, xr_buf_t *out, const char *key, xr_str_t v,
    int *first)
{
    xr_node_t  n;

    (void) ctx;
    if (v.data == NULL) {
        return;
    }
    n.type = XR_NODE_STRING;
    n.u.s = v;
    xr_buf_printf(out, "%s  \"%s\": ", *first ? "" : ",\n", key);
    xr_node_dump(ctx, &n, out);
    *first = 0;
}


int
xr_msg_dump(xr_ctx_t *ctx, const xr_msg_t *msg, xr_buf_t *out)
{
    xr_node_t   n;
    xr_buf_t    body;
    size_t      i;
    int         first = 1;

    xr_buf_adds(out, "{\n");
    xr_buf_printf(out, "  \"@dir\": \"%s\"",
                  msg->dir == XR_DIR_REQUEST ? "request" : "response");
    first = 0;
    xr_msg_dump_str(ctx, out, "@domain", msg->domain, &first);
    xr_msg_dump_str(ctx, out, "@txn", msg->txn, &first);
    xr_msg_dump_str(ctx, out, "@msg_id", msg->msg_id, &first);
    xr_msg_dump_str(ctx, out, "@origin", msg->origin, &first);
    xr_msg_dump_str(ctx, out, "@dest", msg->dest, &first);
    if (msg->has_time) {
        n.type = XR_NODE_TIME;
        n.u.t = msg->time;
        xr_buf_adds(out, ",\n  \"@time\": ");
        xr_node_dump(ctx, &n, out);
    }
    xr_msg_dump_str(ctx, out, "@caller", msg->caller, &first);
    xr_msg_dump_str(ctx, out, "@version", msg->version, &first);
    if (msg->dir == XR_DIR_RESPONSE) {
        xr_buf_printf(out, ",\n  \"@status\": \"%s\"",
                      msg->ok ? "ok" : "error");
        xr_msg_dump_str(ctx, out, "@err_code", msg->err_code, &first);
        xr_msg_dump_str(ctx, out, "@err_msg", msg->err_msg, &first);
        xr_msg_dump_str(ctx, out, "@ref_msg_id", msg->ref_msg_id, &first);
    }

    xr_buf_adds(out, ",\n  \"body\": ");
    if (msg->body) {
        /* indent the body by two spaces */
        xr_buf_init(&body, ctx->pool, 0);
        if (xr_node_dump(ctx, msg->body, &body) != XR_OK) {
            return XR_ERROR;
        }
        for (i = 0; i < body.len; i++) {
            xr_buf_addc(out, body.data[i]);
            if (body.data[i] == '\n') {
                xr_buf_adds(out, "  ");
            }
        }
    } else {
        xr_buf_adds(out, "{}");
    }
    xr_buf_adds(out, "\n}\n");

    if (out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}
