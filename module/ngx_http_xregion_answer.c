
/*
 * Answers to the caller, and the one log line of every failure.
 *
 * A caller always hears back in its own profile's format: the translated
 * answer of the destination, or an error answer from xr_encode_error() with
 * the HTTP status it chooses (the profile's error_status, else the error's
 * own, docs/errors.md).  Only when no caller profile is known (no or an
 * unknown caller identity) the answer is a small JSON document.
 *
 * Every failure logs one line at the error's level (docs/errors.md: error,
 * warn or info) naming the message id, the caller profile, the destination
 * and the error.  The core masks the personal values its error texts quote;
 * a destination's own refusal text and code are masked here (xr_mask.h):
 *
 *   xregion XR-UPSTREAM-TIMEOUT: jiangsu.medical did not answer in time,
 *   msg_id: "H31010100001202503140001", caller: shanghai.medical,
 *   txn: settle, dest: 320100 jiangsu.medical, upstream: jiangsu_medical
 */


#include "ngx_http_xregion_module.h"
#include "xr_mask.h"


#define NGX_HTTP_XREGION_MSG_LEN  (XR_ERRSTR_LEN + XR_FIELD_LEN + 16)


static ngx_int_t ngx_http_xregion_send_now(ngx_http_request_t *r,
    ngx_uint_t status, xr_str_t type, const char *data, size_t len);
static ngx_int_t ngx_http_xregion_send(ngx_http_request_t *r,
    ngx_uint_t status, xr_str_t type, const char *data, size_t len);
static void ngx_http_xregion_log(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_uint_t level, ngx_str_t *message);
static ngx_uint_t ngx_http_xregion_log_level(xr_err_e err);
static void ngx_http_xregion_retry_after(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
static size_t ngx_http_xregion_clean(u_char *dst, const u_char *src,
    size_t len, ngx_uint_t log);
static xr_str_t ngx_http_xregion_masked(ngx_http_xregion_ctx_t *ctx,
    xr_str_t text);


ngx_int_t
ngx_http_xregion_answer(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    const xr_msg_t *ans)
{
    int        status;
    u_char     text[NGX_HTTP_XREGION_MSG_LEN];
    xr_ctx_t   ectx;
    xr_buf_t   out;
    xr_str_t   said;
    ngx_str_t  msg;

    ctx->ans = ans;

    xr_ctx_clear(&ctx->xr);
    xr_buf_init(&out, ctx->pool, 0);

    if (xr_encode(&ctx->xr, ctx->caller, ans, &out) != XR_OK || out.failed) {

        if (ans->ok) {
            /* the destination did the work; only the way back failed */
            return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
        }

        /*
         * A refusal that does not fit the caller's answer (its text is
         * longer than the caller's message field, say): the error answer
         * keeps the refusal's code and shortens what it must.
         */

        xr_ctx_init(&ectx, ctx->pool);
        xr_buf_init(&out, ctx->pool, 0);

        if (xr_encode_error(&ectx, ctx->caller, &ctx->req,
                            XR_E_UPSTREAM_ERROR, ans->err_code, ans->err_msg,
                            &out, &status)
            != XR_OK
            || out.failed)
        {
            return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
        }
    }

    if (ans->ok) {
        ngx_str_set(&ctx->outcome, "ok");

    } else {
        /*
         * the destination's code: only what is safe in a log or a header,
         * and its text: the caller hears them as they are, the log masked
         */
        said = ngx_http_xregion_masked(ctx, ans->err_code);

        ctx->outcome.data = ngx_pnalloc(r->pool, said.len + 4);
        if (ctx->outcome.data == NULL) {
            return NGX_ERROR;
        }

        ctx->outcome.len = ngx_http_xregion_clean(ctx->outcome.data,
                                                  (const u_char *) said.data,
                                                  said.len, 1);

        if (ctx->outcome.len == 0) {
            ngx_str_set(&ctx->outcome, "BIZ-");
        }

        said = ngx_http_xregion_masked(ctx, ans->err_msg);

        msg.data = text;
        msg.len = ngx_http_xregion_clean(text, (const u_char *) said.data,
                                         ngx_min(said.len, sizeof(text)), 1);

        ngx_http_xregion_log(r, ctx, NGX_LOG_INFO, &msg);
    }

    return ngx_http_xregion_send(r, NGX_HTTP_OK,
                                 xr_profile_content_type(&ctx->xr,
                                                         ctx->caller),
                                 out.data, out.len);
}


/*
 * err XR_E_NONE: the error the core left on ctx->xr.  fmt NULL: the core's
 * text when the error is the core's, else the error's default text.
 */

ngx_int_t
ngx_http_xregion_answer_error(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_err_e err, const char *fmt, ...)
{
    int                     status;
    u_char                  raw[NGX_HTTP_XREGION_MSG_LEN], *p;
    u_char                  text[NGX_HTTP_XREGION_MSG_LEN];
    size_t                  len;
    va_list                 args;
    xr_ctx_t                ectx;
    xr_buf_t                out;
    xr_str_t                message;
    ngx_str_t               msg;
    const xr_error_info_t  *info;

    if (err == XR_E_NONE) {
        err = ctx->xr.err != XR_E_NONE ? ctx->xr.err : XR_E_INTERNAL;
    }

    info = xr_error_info(err);

    ngx_http_xregion_metrics_error(err);

    if (fmt) {
        va_start(args, fmt);
        p = ngx_vslprintf(raw, raw + sizeof(raw), fmt, args);
        va_end(args);

    } else if (err == ctx->xr.err && ctx->xr.errstr[0]) {
        p = ngx_slprintf(raw, raw + sizeof(raw), "%s", ctx->xr.errstr);

        if (ctx->xr.field[0]
            && ngx_strstr(ctx->xr.errstr, ctx->xr.field) == NULL)
        {
            p = ngx_slprintf(p, raw + sizeof(raw), " (field %s)",
                             ctx->xr.field);
        }

    } else {
        p = ngx_slprintf(raw, raw + sizeof(raw), "%s", info->text);
    }

    len = ngx_http_xregion_clean(text, raw, p - raw, 0);

    ctx->outcome.data = (u_char *) info->name;
    ctx->outcome.len = ngx_strlen(info->name);

    msg.data = text;
    msg.len = len;

    ngx_http_xregion_log(r, ctx, ngx_http_xregion_log_level(err), &msg);

    message.data = (const char *) text;
    message.len = len;

    xr_ctx_init(&ectx, ctx->pool);
    xr_buf_init(&out, ctx->pool, 0);

    if (xr_encode_error(&ectx, ctx->caller, ctx->decoded ? &ctx->req : NULL,
                        err, (xr_str_t) xr_null_string, message, &out,
                        &status)
        != XR_OK
        || out.failed)
    {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "xregion: no error answer in the format of %V: %s",
                      &ctx->caller_name, ectx.errstr);

        return ngx_http_xregion_answer_plain(r, ctx, err, "%V", &msg);
    }

    /*
     * A rate limit speaks to the caller's HTTP client, whatever the
     * profile's error_status: 429 and Retry-After are what clients and
     * proxies back off on (Retry-After means nothing with a 200).
     */

    if (status < NGX_HTTP_OK || status > 599 || err == XR_E_RATE_LIMITED) {
        status = info->http_status;
    }

    if (err == XR_E_BUSY_RETRY || err == XR_E_UNAVAILABLE
        || err == XR_E_RATE_LIMITED || err == XR_E_AUDIT_UNAVAILABLE)
    {
        ngx_http_xregion_retry_after(r, ctx);
    }

    return ngx_http_xregion_send(r, status,
                                 xr_profile_content_type(&ectx, ctx->caller),
                                 out.data, out.len);
}


/*
 * No caller format to answer in: {"code":"XR-...","message":"..."}, with
 * the error's own HTTP status.
 */

ngx_int_t
ngx_http_xregion_answer_plain(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_err_e err, const char *fmt, ...)
{
    u_char                 *p, *body;
    u_char                  raw[NGX_HTTP_XREGION_MSG_LEN];
    u_char                  text[NGX_HTTP_XREGION_MSG_LEN];
    size_t                  len;
    va_list                 args;
    ngx_str_t               msg;
    const xr_error_info_t  *info;

    static xr_str_t  type = xr_string("application/json; charset=utf-8");

    info = xr_error_info(err);

    /* called by answer_error() when no caller format works: counted there */

    if (ctx->outcome.len == 0) {
        ngx_http_xregion_metrics_error(err);
    }

    va_start(args, fmt);
    p = ngx_vslprintf(raw, raw + sizeof(raw), fmt, args);
    va_end(args);

    len = ngx_http_xregion_clean(text, raw, p - raw, 0);

    ctx->outcome.data = (u_char *) info->name;
    ctx->outcome.len = ngx_strlen(info->name);

    msg.data = text;
    msg.len = len;

    ngx_http_xregion_log(r, ctx, ngx_http_xregion_log_level(err), &msg);

    /* the text keeps its quotes: they are escaped for JSON */

    body = ngx_pnalloc(r->pool, sizeof("{\"code\":\"\",\"message\":\"\"}\n")
                                + ctx->outcome.len + len
                                + ngx_escape_json(NULL, text, len));
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"code\":\"%V\",\"message\":\"",
                    &ctx->outcome);
    p = (u_char *) ngx_escape_json(p, text, len);
    p = ngx_cpymem(p, "\"}\n", 3);

    return ngx_http_xregion_send(r, info->http_status, type,
                                 (const char *) body, p - body);
}


/* What the log line adds for the operator, and the caller does not hear. */

void
ngx_http_xregion_detail(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    const char *fmt, ...)
{
    u_char   raw[NGX_HTTP_XREGION_MSG_LEN], *p;
    va_list  args;

    va_start(args, fmt);
    p = ngx_vslprintf(raw, raw + sizeof(raw), fmt, args);
    va_end(args);

    ctx->detail.data = ngx_pnalloc(r->pool, p - raw);
    if (ctx->detail.data == NULL) {
        ctx->detail.len = 0;
        return;
    }

    ctx->detail.len = ngx_http_xregion_clean(ctx->detail.data, raw, p - raw,
                                             1);
}


/*
 * Every answer passes here: its audit record first.  With sync=always the
 * answer is held until the record is on disk: NGX_DONE, the request is
 * neither finalized nor freed (no reference is taken, as for a Redis
 * step), and ngx_http_xregion_answer_release() sends it.
 */

static ngx_int_t
ngx_http_xregion_send(ngx_http_request_t *r, ngx_uint_t status,
    xr_str_t type, const char *data, size_t len)
{
    ngx_http_xregion_ctx_t  *ctx;

    if (r->header_sent) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "xregion: answer after the header was sent");
        return NGX_ERROR;
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx && !ctx->held) {
        ngx_http_xregion_metrics_count(r, ctx);
    }

    if (ctx && !ctx->held
        && ngx_http_xregion_audit_record(r, ctx) == NGX_AGAIN)
    {
        ctx->held = 1;
        ctx->held_status = status;
        ctx->held_type = type;
        ctx->held_data = data;
        ctx->held_len = len;
        ctx->state = NGX_HTTP_XREGION_DONE;

        return NGX_DONE;
    }

    return ngx_http_xregion_send_now(r, status, type, data, len);
}


/* The held answer, its record on disk (or the wait given up). */

void
ngx_http_xregion_answer_release(ngx_http_request_t *r)
{
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    ngx_http_xregion_continue(r,
        ngx_http_xregion_send_now(r, ctx->held_status, ctx->held_type,
                                  ctx->held_data, ctx->held_len));
}


static ngx_int_t
ngx_http_xregion_send_now(ngx_http_request_t *r, ngx_uint_t status,
    xr_str_t type, const char *data, size_t len)
{
    u_char                  *sealed;
    ngx_int_t                rc;
    ngx_buf_t               *b;
    ngx_chain_t              out;
    ngx_http_xregion_ctx_t  *ctx;

    /* a sealed caller gets every answer sealed, refusals included */

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx && ctx->caller && ctx->caller->seal.len) {
        sealed = (u_char *) data;

        if (ngx_http_xregion_seal(r, ctx, ctx->caller, 0, &sealed, &len)
            != NGX_OK)
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                          "xregion: the answer to %V could not be sealed: "
                          "%s", &ctx->caller_name, ctx->xr.errstr);
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        data = (const char *) sealed;
    }

    ngx_http_xregion_sign_answer(r, status, data, len);

    /* a drained instance sends its callers' next requests elsewhere */

    if (ngx_http_xregion_metrics_draining()) {
        r->keepalive = 0;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = len;

    r->headers_out.content_type.len = type.len;
    r->headers_out.content_type.data = (u_char *) type.data;
    r->headers_out.content_type_len = type.len;
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    if (len) {
        b->pos = (u_char *) data;
        b->last = b->pos + len;
        b->start = b->pos;
        b->end = b->last;
        b->memory = 1;
    }

    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/* The outcome is the error (or the destination's refusal) being logged. */

static void
ngx_http_xregion_log(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    ngx_uint_t level, ngx_str_t *message)
{
    u_char     id[64], name[64];
    ngx_str_t  msg_id, caller, dash;

    if (r->connection->log->log_level < level) {
        return;
    }

    ngx_str_set(&dash, "-");

    msg_id.data = id;
    msg_id.len = ngx_http_xregion_clean(id, ctx->msg_id.data,
                                        ngx_min(ctx->msg_id.len, sizeof(id)),
                                        1);

    /* a caller profile chosen per request may be any header's bytes */

    caller.data = name;
    caller.len = ngx_http_xregion_clean(name, ctx->caller_name.data,
                                        ngx_min(ctx->caller_name.len,
                                                sizeof(name)),
                                        1);

    ngx_log_error(level, r->connection->log, 0,
                  "xregion %V: %V%s%V%s, msg_id: \"%V\", caller: %V, "
                  "txn: %V, dest: %V %V, upstream: %V", &ctx->outcome,
                  message, ctx->detail.len ? " (" : "", &ctx->detail,
                  ctx->detail.len ? ")" : "",
                  msg_id.len ? &msg_id : &dash,
                  caller.len ? &caller : &dash,
                  ctx->txn.len ? &ctx->txn : &dash,
                  ctx->dest_code.len ? &ctx->dest_code : &dash,
                  ctx->dest_name.len ? &ctx->dest_name : &dash,
                  ctx->upstream.len ? &ctx->upstream : &dash);
}


static ngx_uint_t
ngx_http_xregion_log_level(xr_err_e err)
{
    switch (xr_error_info(err)->log_level) {

    case 0:
        return NGX_LOG_ERR;

    case 1:
        return NGX_LOG_WARN;

    default:
        return NGX_LOG_INFO;
    }
}


/*
 * Copies text that may hold a caller's bytes so that it is safe in a log
 * line and in an answer: well-formed UTF-8 only, control characters become
 * spaces; with `log` also quotes and backslashes become '?'.  dst has room
 * for len bytes.
 */

static size_t
ngx_http_xregion_clean(u_char *dst, const u_char *src, size_t len,
    ngx_uint_t log)
{
    u_char        *d;
    size_t         n;
    uint32_t       cp;
    const u_char  *p, *end, *next;

    d = dst;
    p = src;
    end = src + len;

    while (p < end) {

        if (*p < 0x80) {
            if (*p < 0x20 || *p == 0x7f) {
                *d++ = ' ';

            } else if (log && (*p == '"' || *p == '\\')) {
                *d++ = '?';

            } else {
                *d++ = *p;
            }

            p++;
            continue;
        }

        next = p;
        cp = ngx_utf8_decode((u_char **) &next, end - p);

        if (cp > 0x10ffff) {
            /* invalid or cut short: one replacement for the byte */
            *d++ = '?';
            p++;
            continue;
        }

        n = next - p;
        d = ngx_cpymem(d, p, n);
        p = next;
    }

    return d - dst;
}


/*
 * A destination's free text with the personal values of the request, and
 * any number that looks like an ID or a card, masked: what of it may be
 * logged.  Only the start of a long text is looked at: the log line
 * keeps less, and whatever a cut at that point leaves is past what it
 * keeps.
 */

static xr_str_t
ngx_http_xregion_masked(ngx_http_xregion_ctx_t *ctx, xr_str_t text)
{
    xr_ctx_t          mctx;
    xr_str_t          out;
    const xr_msg_t   *req;
    const xr_stxn_t  *stxn;

    static xr_str_t  none = xr_string("(not shown: out of memory)");

    req = NULL;
    stxn = NULL;

    if (ctx->decoded && ctx->caller) {
        req = &ctx->req;
        stxn = xr_schema_txn(ctx->caller->schema, ctx->req.txn);
    }

    if (text.len > 4 * NGX_HTTP_XREGION_MSG_LEN) {
        text.len = 4 * NGX_HTTP_XREGION_MSG_LEN;
    }

    xr_ctx_init(&mctx, ctx->pool);

    if (xr_mask_text(&mctx, stxn, req, text, &out) != XR_OK) {
        return none;
    }

    return out;
}


/*
 * A retryable refusal says when to come back: ctx->retry_after seconds (a
 * rate limit's), else 1.
 */

static void
ngx_http_xregion_retry_after(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    u_char           *p;
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return;
    }

    h->hash = 1;
    ngx_str_set(&h->key, "Retry-After");

    if (ctx->retry_after <= 1) {
        ngx_str_set(&h->value, "1");
        return;
    }

    p = ngx_pnalloc(r->pool, NGX_INT_T_LEN);
    if (p == NULL) {
        ngx_str_set(&h->value, "1");
        return;
    }

    h->value.data = p;
    h->value.len = ngx_sprintf(p, "%ui", ctx->retry_after) - p;
}
