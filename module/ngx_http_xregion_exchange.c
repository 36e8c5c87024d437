
/*
 * The exchange: one caller request through the gateway.
 *
 *   content handler   caller profile, Content-Length against
 *                     xregion_max_body, read the body
 *   body handler      [signature], decode (caller profile), access
 *                     rules, [rate limits], [nonce check], route,
 *                     destination profile, [circuit breaker], encode
 *                     (destination profile),
 *                     [cache lookup or idempotency claim in Redis],
 *                     subrequest to <xregion_pass><path> carrying the
 *                     translated body
 *   post subrequest   keep the destination's status and answer, wake the
 *                     main request
 *   resume            interpret the answer and reply to the caller
 *   deadline          xregion_timeout, from the decoded request on:
 *                     reply XR-UPSTREAM-TIMEOUT (XR-BUSY-RETRY while
 *                     Redis is still being asked)
 *
 * Nothing blocks: the body is read by nginx, the destination is reached by
 * the proxy module in the internal location (its timeouts, keepalive,
 * balancing and retries are nginx's own).
 *
 * The subrequest is a background one: the main request's output is not
 * queued behind it, so the deadline can answer while the proxy is still
 * waiting.  The main request (and so its pool, which holds the context)
 * lives until the subrequest ends: ngx_http_subrequest() counts it in
 * r->main->count.  A subrequest that completes after the deadline answered
 * finds the context in state DONE and changes nothing.  When the request
 * pool goes, a cleanup removes the deadline timer.
 *
 * The Redis steps (ngx_http_xregion_store.c) run between the translation
 * and the subrequest: they call back into ngx_http_xregion_forward() or
 * answer the caller themselves, from Redis's event handler, and end with
 * ngx_http_xregion_continue().  The rate limits (ngx_http_xregion_limit.c)
 * go the same way, before the replay guard: ngx_http_xregion_admit().
 */


#include "ngx_http_xregion_module.h"


static void ngx_http_xregion_body_handler(ngx_http_request_t *r);
static ngx_int_t ngx_http_xregion_var_value(ngx_http_request_t *r,
    ngx_str_t *var, xr_str_t value);
static ngx_int_t ngx_http_xregion_exchange(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
static ngx_int_t ngx_http_xregion_read_body(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, u_char **data, size_t *len);
static ngx_int_t ngx_http_xregion_subrequest(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_buf_t *body);
static ngx_int_t ngx_http_xregion_failed(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_uint_t delivered, xr_err_e err,
    const char *fmt, ...);
static ngx_int_t ngx_http_xregion_subrequest_done(ngx_http_request_t *sr,
    void *data, ngx_int_t rc);
static void ngx_http_xregion_late_answer(ngx_http_request_t *sr,
    ngx_http_xregion_ctx_t *ctx);
static ngx_int_t ngx_http_xregion_read_answer(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_msg_t *ans);
static ngx_int_t ngx_http_xregion_fail(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_uint_t delivered, xr_err_e err,
    const char *fmt, ...);
static void ngx_http_xregion_resume(ngx_http_request_t *r);
static ngx_int_t ngx_http_xregion_outcome(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
static void ngx_http_xregion_deadline(ngx_event_t *ev);
static void ngx_http_xregion_cleanup(void *data);
static ngx_int_t ngx_http_xregion_start(ngx_http_request_t *r);


static ngx_str_t  ngx_http_xregion_post_method = ngx_string("POST");


/*
 * An answer held for its audit record before the body was read returns
 * NGX_DONE to nginx, which finalizes that (drops a reference): the held
 * answer needs one of its own.
 */

ngx_int_t
ngx_http_xregion_handler(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_http_xregion_ctx_t  *ctx;

    rc = ngx_http_xregion_start(r);

    if (rc == NGX_DONE) {
        ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

        if (ctx && ctx->held && !ctx->body_started) {
            r->main->count++;
        }
    }

    return rc;
}


static ngx_int_t
ngx_http_xregion_start(ngx_http_request_t *r)
{
    off_t                          size;
    ngx_int_t                      rc;
    ngx_str_t                      name;
    ngx_pool_cleanup_t            *cln;
    const xr_profile_t            *p;
    ngx_http_xregion_ctx_t        *ctx;
    ngx_http_xregion_loc_conf_t   *xlcf;
    ngx_http_xregion_main_conf_t  *xmcf;

    if (r != r->main) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "xregion endpoint reached by a subrequest");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (!(r->method & NGX_HTTP_POST)) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);
    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_xregion_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->request = r;
    ctx->domain_index = xlcf->domain;
    ctx->upstream_time = -1;
    ctx->max_body = xlcf->max_body;
    ctx->domain = ngx_http_xregion_domains[xlcf->domain];

    ctx->pool = ngx_http_xregion_pool_create(r->pool);
    if (ctx->pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    xr_ctx_init(&ctx->xr, ctx->pool);
    ctx->xr.max_body = xlcf->max_body;

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_xregion_cleanup;
    cln->data = ctx;

    ngx_http_set_ctx(r, ctx, ngx_http_xregion_module);

    /* the caller's profile: static, or chosen per request */

    p = xlcf->caller_profile;

    if (p == NULL) {
        if (ngx_http_complex_value(r, xlcf->caller, &name) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (name.len == 0) {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            return ngx_http_xregion_answer_plain(r, ctx, XR_E_UNAUTHORIZED,
                       "the caller is not identified (no caller profile)");
        }

        ctx->caller_name = name;

        p = xr_config_profile(xmcf->config, ngx_http_xregion_xstr(&name));

        if (p == NULL
            || xr_str_cmp(p->domain, ngx_http_xregion_xstr(&ctx->domain))
               != 0)
        {
            rc = ngx_http_discard_request_body(r);
            if (rc != NGX_OK) {
                return rc;
            }

            if (p == NULL) {
                return ngx_http_xregion_answer_plain(r, ctx,
                           XR_E_PROFILE_UNKNOWN,
                           "unknown caller profile \"%V\"", &name);
            }

            return ngx_http_xregion_answer_plain(r, ctx, XR_E_DOMAIN_MISMATCH,
                       "caller profile \"%V\" is not a %V profile",
                       &name, &ctx->domain);
        }
    }

    ctx->caller = p;
    ngx_http_xregion_nstr(&ctx->caller_name, p->name);

    if (r->headers_in.content_length_n > (off_t) xlcf->max_body) {

        /* discarding counts content_length_n down to what is still unread */
        size = r->headers_in.content_length_n;

        rc = ngx_http_discard_request_body(r);
        if (rc != NGX_OK) {
            return rc;
        }

        return ngx_http_xregion_answer_error(r, ctx, XR_E_BODY_TOO_LARGE,
                   "message of %O bytes is larger than the limit of %uz",
                   size, xlcf->max_body);
    }

    ctx->body_started = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_xregion_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    return NGX_DONE;
}


static void
ngx_http_xregion_body_handler(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    rc = ngx_http_xregion_exchange(r, ctx);

    if (rc == NGX_DONE) {
        return;
    }

    ngx_http_finalize_request(r, rc);
}


/*
 * Translates the caller's request and starts the subrequest: NGX_DONE.
 * Anything else is the result of answering the caller right away.
 */

static ngx_int_t
ngx_http_xregion_exchange(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    u_char                        *data;
    size_t                         len;
    xr_str_t                       code;
    ngx_int_t                      rc;
    ngx_http_xregion_loc_conf_t   *xlcf;
    ngx_http_xregion_main_conf_t  *xmcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    if (ctx->too_large) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_BODY_TOO_LARGE,
                   "message is larger than the limit of %uz bytes",
                   ctx->max_body);
    }

    if (ngx_http_xregion_read_body(r, ctx, &data, &len) != NGX_OK) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_INTERNAL,
                   "the request body could not be read");
    }

    if (len > ctx->max_body) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_BODY_TOO_LARGE,
                   "message of %uz bytes is larger than the limit of %uz",
                   len, ctx->max_body);
    }

    /* a caller that signs: its signature first, before anything is read */

    if (ngx_http_xregion_verify(r, ctx, data, len, &rc) != NGX_OK) {
        return rc;
    }

    /* a sealed caller's envelope: opened (signature, SM4) before anything */

    if (ctx->caller->seal.len
        && ngx_http_xregion_seal(r, ctx, ctx->caller, 1, &data, &len)
           != NGX_OK)
    {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
    }

    /* decode with the caller's profile */

    xr_msg_init(&ctx->req, XR_DIR_REQUEST);

    if (xr_decode(&ctx->xr, ctx->caller, XR_DIR_REQUEST,
                  (xr_str_t) xr_null_string, (const char *) data, len,
                  &ctx->req)
        != XR_OK)
    {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
    }

    ctx->decoded = 1;

    ngx_http_xregion_nstr(&ctx->txn, ctx->req.txn);

    if (ngx_http_xregion_var_value(r, &ctx->msg_id, ctx->req.msg_id)
        != NGX_OK
        || ngx_http_xregion_var_value(r, &ctx->origin, ctx->req.origin)
           != NGX_OK)
    {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NOMEM, NULL);
    }

    /* the destination region: what access rules and routes go by */

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    if (xr_route_region(&ctx->xr, xmcf->config, &ctx->req, &code) != XR_OK) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
    }

    ngx_http_xregion_nstr(&ctx->dest_code, code);

    if (ngx_http_xregion_access(xmcf, ctx) != NGX_OK) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_FORBIDDEN,
                   "%V may not use %V %V toward %V", &ctx->caller_name,
                   &ctx->domain, &ctx->txn, &ctx->dest_code);
    }

    /* from here on the caller waits xregion_timeout at most */

    ctx->deadline.handler = ngx_http_xregion_deadline;
    ctx->deadline.data = r;
    ctx->deadline.log = r->connection->log;

    ngx_add_timer(&ctx->deadline, xlcf->timeout);

    /* a caller refused above took nothing from its rate limit */

    rc = ngx_http_xregion_limit(r, ctx);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_xregion_admit(r, ctx);
}


/*
 * Within its rate limits: the replay guard, then the translation.
 * NGX_DONE: something is under way that will answer.
 */

ngx_int_t
ngx_http_xregion_admit(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    ngx_int_t                     rc;
    ngx_http_xregion_loc_conf_t  *xlcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    if (xlcf->replay_window) {
        rc = ngx_http_xregion_store_nonce(r, ctx);

        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    return ngx_http_xregion_prepare(r, ctx);
}


/*
 * Route, translate for the destination, then the Redis step or the
 * subrequest.  NGX_DONE: something is under way that will answer.
 */

ngx_int_t
ngx_http_xregion_prepare(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    ngx_int_t                      rc;
    xr_str_t                       code, ct;
    const xr_ptxn_t               *ptxn;
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    /* route: upstream, destination profile */

    code = ngx_http_xregion_xstr(&ctx->dest_code);

    ctx->dest_region = ngx_http_xregion_region_of(xmcf, code);

    if (ctx->dest_region == NULL) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_REGION_UNKNOWN,
                   "destination region %V is not served by this gateway",
                   &ctx->dest_code);
    }

    ctx->route = ngx_http_xregion_route_find(xmcf, ctx->domain_index,
                                             ctx->req.txn, code);
    if (ctx->route == NULL) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NO_ROUTE,
                   "no route to %*s (%V) for %V",
                   ctx->dest_region->name.len, ctx->dest_region->name.data,
                   &ctx->dest_code, &ctx->txn);
    }

    ctx->upstream = ctx->route->upstream;

    ctx->dest = ngx_http_xregion_dest_profile(xmcf, ctx->domain_index,
                                              ctx->dest_region);
    if (ctx->dest == NULL) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NO_ROUTE,
                   "%*s has no %V profile",
                   ctx->dest_region->name.len, ctx->dest_region->name.data,
                   &ctx->domain);
    }

    ngx_http_xregion_nstr(&ctx->dest_name, ctx->dest->name);

    ptxn = xr_profile_txn(ctx->dest, ctx->req.txn);
    if (ptxn == NULL) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_TXN_UNSUPPORTED,
                   "%V does not offer transaction %V",
                   &ctx->dest_name, &ctx->txn);
    }

    if (ptxn->path.len) {
        ngx_http_xregion_nstr(&ctx->dest_path, ptxn->path);

    } else {
        ngx_str_set(&ctx->dest_path, "/");
    }

    ctx->ptxn = ptxn;

    /* an open breaker refuses before anything is claimed in Redis or sent */

    rc = ngx_http_xregion_breaker(r, ctx);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* a transaction that needs a record waits for a log that takes one */

    rc = ngx_http_xregion_audit_admit(r, ctx);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    /* encode for the destination */

    xr_buf_init(&ctx->out, ctx->pool, 0);

    if (xr_encode(&ctx->xr, ctx->dest, &ctx->req, &ctx->out) != XR_OK
        || ctx->out.failed)
    {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
    }

    if (ctx->dest->seal.len) {
        u_char  *sealed = (u_char *) ctx->out.data;
        size_t   slen = ctx->out.len;

        if (ngx_http_xregion_seal(r, ctx, ctx->dest, 0, &sealed, &slen)
            != NGX_OK)
        {
            return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
        }

        ctx->out.data = (char *) sealed;
        ctx->out.len = slen;
    }

    ct = xr_profile_content_type(&ctx->xr, ctx->dest);
    ngx_http_xregion_nstr(&ctx->dest_content_type, ct);

    rc = ngx_http_xregion_store_before(r, ctx);

    if (rc != NGX_DECLINED) {
        return rc;
    }

    return ngx_http_xregion_forward(r, ctx);
}


/* The subrequest to the destination: NGX_DONE, or an answer's rc. */

ngx_int_t
ngx_http_xregion_forward(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    if (ngx_http_xregion_sign_upstream(r, ctx) != NGX_OK) {
        return ngx_http_xregion_failed(r, ctx, 0, XR_E_INTERNAL,
                   "the request to %V could not be signed", &ctx->dest_name);
    }

    if (ngx_http_xregion_subrequest(r, ctx, &ctx->out) != NGX_OK) {
        return ngx_http_xregion_failed(r, ctx, 0, XR_E_INTERNAL,
                   "the exchange with %V could not start", &ctx->dest_name);
    }

    return NGX_DONE;
}


/*
 * After a step that ran outside the request's own event handler (a Redis
 * reply, a timer): finish the request unless something is under way, and
 * run what was posted (a new subrequest is posted, not run).
 */

void
ngx_http_xregion_continue(ngx_http_request_t *r, ngx_int_t rc)
{
    ngx_connection_t  *c;

    c = r->connection;

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }

    ngx_http_run_posted_requests(c);
}


/*
 * A variable's value from the caller's message: it may end up in a header
 * of the request to the destination (X-Xregion-Msg-Id), so control
 * characters, CR and LF above all, become '?'.
 */

static ngx_int_t
ngx_http_xregion_var_value(ngx_http_request_t *r, ngx_str_t *var,
    xr_str_t value)
{
    size_t   i;
    u_char  *p;

    p = ngx_pnalloc(r->pool, value.len + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    for (i = 0; i < value.len; i++) {
        p[i] = (u_char) value.data[i];

        if (p[i] < 0x20 || p[i] == 0x7f) {
            p[i] = '?';
        }
    }

    var->len = value.len;
    var->data = p;

    return NGX_OK;
}


/*
 * The whole body as one piece of memory: the buffer itself when nginx kept
 * it in one, else a copy of the buffers and of the temporary file.
 */

static ngx_int_t
ngx_http_xregion_read_body(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    u_char **data, size_t *len)
{
    off_t         size;
    u_char       *p;
    ssize_t       n;
    ngx_buf_t    *b;
    ngx_chain_t  *cl;

    *data = (u_char *) "";
    *len = 0;

    if (r->request_body == NULL) {
        return NGX_OK;
    }

    cl = r->request_body->bufs;

    if (cl == NULL) {
        return NGX_OK;
    }

    if (cl->next == NULL && !cl->buf->in_file) {
        *data = cl->buf->pos;
        *len = cl->buf->last - cl->buf->pos;
        return NGX_OK;
    }

    size = 0;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;
        size += b->in_file ? b->file_last - b->file_pos : b->last - b->pos;
    }

    if (size > (off_t) ctx->max_body) {
        /* the caller answers XR-BODY-TOO-LARGE from *len */
        *len = (size_t) ngx_min(size, (off_t) NGX_MAX_SIZE_T_VALUE);
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, (size_t) size + 1);
    if (p == NULL) {
        return NGX_ERROR;
    }

    *data = p;

    for (cl = r->request_body->bufs; cl; cl = cl->next) {
        b = cl->buf;

        if (b->in_file) {
            n = ngx_read_file(b->file, p, (size_t) (b->file_last - b->file_pos),
                              b->file_pos);

            if (n == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (n != b->file_last - b->file_pos) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              ngx_read_file_n " read only %z of %O bytes "
                              "of the request body", n,
                              b->file_last - b->file_pos);
                return NGX_ERROR;
            }

            p += n;
            continue;
        }

        p = ngx_cpymem(p, b->pos, b->last - b->pos);
    }

    *len = p - *data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_subrequest(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    xr_buf_t *body)
{
    u_char                       *p;
    ngx_buf_t                    *b;
    ngx_str_t                     uri;
    ngx_http_request_t           *sr;
    ngx_http_request_body_t      *rb;
    ngx_http_post_subrequest_t   *ps;
    ngx_http_xregion_loc_conf_t  *xlcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    uri.len = xlcf->pass.len + ctx->dest_path.len;
    uri.data = ngx_pnalloc(r->pool, uri.len);
    if (uri.data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(uri.data, xlcf->pass.data, xlcf->pass.len);
    ngx_memcpy(p, ctx->dest_path.data, ctx->dest_path.len);

    ps = ngx_palloc(r->pool, sizeof(ngx_http_post_subrequest_t));
    if (ps == NULL) {
        return NGX_ERROR;
    }

    ps->handler = ngx_http_xregion_subrequest_done;
    ps->data = ctx;

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_ERROR;
    }

    rb = ngx_pcalloc(r->pool, sizeof(ngx_http_request_body_t));
    if (rb == NULL) {
        return NGX_ERROR;
    }

    rb->bufs = ngx_alloc_chain_link(r->pool);
    if (rb->bufs == NULL) {
        return NGX_ERROR;
    }

    if (body->len) {
        b->memory = 1;
        b->start = (u_char *) body->data;
        b->pos = b->start;
        b->last = b->start + body->len;
        b->end = b->last;
    }

    b->last_buf = 1;
    b->last_in_chain = 1;

    rb->bufs->buf = b;
    rb->bufs->next = NULL;
    rb->buf = b;
    rb->rest = 0;

    if (ngx_http_subrequest(r, &uri, NULL, &sr, ps,
                            NGX_HTTP_SUBREQUEST_IN_MEMORY
                            |NGX_HTTP_SUBREQUEST_BACKGROUND)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    sr->method = NGX_HTTP_POST;
    sr->method_name = ngx_http_xregion_post_method;

    sr->request_body = rb;
    sr->headers_in.content_length_n = body->len;
    sr->headers_in.content_length = NULL;
    sr->headers_in.chunked = 0;
    sr->headers_in.transfer_encoding = NULL;

    ctx->sr = sr;
    ctx->state = NGX_HTTP_XREGION_WAITING;

    r->write_event_handler = ngx_http_xregion_resume;

    return NGX_OK;
}


/*
 * Called when the subrequest is finalized (possibly more than once, and
 * possibly after the deadline answered).  Keeps what the destination said
 * and wakes the main request; returning NGX_OK keeps nginx from turning a
 * failed subrequest into an error page or a terminated main request: the
 * caller gets its answer from ngx_http_xregion_resume().
 */

static ngx_int_t
ngx_http_xregion_subrequest_done(ngx_http_request_t *sr, void *data,
    ngx_int_t rc)
{
    ngx_http_xregion_ctx_t *ctx = data;

    ngx_uint_t                  i;
    ngx_msec_int_t              ms;
    ngx_http_upstream_t        *u;
    ngx_http_upstream_state_t  *state;

    if (ctx->sr_done) {
        return NGX_OK;
    }

    ctx->sr_done = 1;

    ngx_log_debug3(NGX_LOG_DEBUG_HTTP, sr->connection->log, 0,
                   "xregion subrequest done rc:%i status:%ui state:%ui",
                   rc, sr->headers_out.status, ctx->state);

    u = sr->upstream;

    if (u && sr->upstream_states && sr->upstream_states->nelts) {
        state = sr->upstream_states->elts;
        ms = 0;

        for (i = 0; i < sr->upstream_states->nelts; i++) {
            if (state[i].connect_time != (ngx_msec_t) -1) {
                ctx->connected = 1;
            }

            if (state[i].response_time != (ngx_msec_t) -1) {
                ms += state[i].response_time;
            }
        }

        ctx->upstream_time = ms;
    }

    ctx->sr_rc = rc;
    ctx->sr_status = sr->headers_out.status;

    if (sr->out && sr->out->buf) {
        ctx->sr_body.data = sr->out->buf->pos;
        ctx->sr_body.len = sr->out->buf->last - sr->out->buf->pos;
    }

    if (ctx->state != NGX_HTTP_XREGION_WAITING) {

        if (ctx->claimed) {
            ngx_http_xregion_late_answer(sr, ctx);
            return NGX_OK;
        }

        ngx_log_error(NGX_LOG_INFO, sr->connection->log, 0,
                      "xregion: late answer from %V for msg_id \"%V\" "
                      "dropped, the caller was answered at the deadline",
                      &ctx->upstream, &ctx->msg_id);
        return NGX_OK;
    }

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    ctx->state = NGX_HTTP_XREGION_ANSWERING;

    sr->parent->write_event_handler = ngx_http_xregion_resume;

    if (ngx_http_post_request(sr->parent, NULL) != NGX_OK) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A money transaction's answer after the caller was told
 * XR-UPSTREAM-TIMEOUT: recorded all the same, so that the caller's retry
 * gets what the destination did instead of waiting for the claim to
 * expire.  Anything less than a whole, readable answer leaves the claim.
 */

static void
ngx_http_xregion_late_answer(ngx_http_request_t *sr,
    ngx_http_xregion_ctx_t *ctx)
{
    xr_msg_t  ans;

    if (ngx_http_xregion_read_answer(ctx->request, ctx, &ans) != NGX_OK) {
        ngx_http_xregion_store_failed(ctx->request, ctx, 1);
        return;
    }

    ngx_log_error(NGX_LOG_WARN, sr->connection->log, 0,
                  "xregion: late answer from %V for msg_id \"%V\" recorded "
                  "after the deadline: a retry gets it", &ctx->upstream,
                  &ctx->msg_id);

    ngx_http_xregion_store_after(ctx->request, ctx, &ans);
}


static void
ngx_http_xregion_resume(ngx_http_request_t *r)
{
    ngx_int_t                rc;
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx == NULL || ctx->state != NGX_HTTP_XREGION_ANSWERING) {
        return;
    }

    ctx->state = NGX_HTTP_XREGION_DONE;
    r->write_event_handler = ngx_http_request_empty_handler;

    rc = ngx_http_xregion_outcome(r, ctx);

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}


/* What the destination said, told to the caller in its own format. */

static ngx_int_t
ngx_http_xregion_outcome(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    xr_msg_t  ans;

    if (ngx_http_xregion_read_answer(r, ctx, &ans) != NGX_OK) {
        ngx_http_xregion_breaker_outcome(r, ctx, ctx->fail_err);

        return ngx_http_xregion_failed(r, ctx, ctx->fail_delivered,
                                       ctx->fail_err, "%V", &ctx->fail_text);
    }

    /* the destination answered, a refusal included */

    ngx_http_xregion_breaker_outcome(r, ctx, XR_E_NONE);

    /* cached, recorded or invalidating: as the destination said it */

    ngx_http_xregion_store_after(r, ctx, &ans);

    ngx_http_xregion_adopt(ctx, &ans);

    return ngx_http_xregion_answer(r, ctx, &ans);
}


/*
 * The subrequest's result as the destination's decoded answer: NGX_OK, or
 * NGX_DECLINED with the failure on ctx (fail_err, fail_delivered: whether
 * the destination may have seen the request, fail_text for the caller).
 */

static ngx_int_t
ngx_http_xregion_read_answer(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_msg_t *ans)
{
    ngx_int_t             rc;
    ngx_http_upstream_t  *u;

    rc = ctx->sr_rc;
    u = ctx->sr->upstream;

    if (rc == NGX_HTTP_GATEWAY_TIME_OUT) {
        ngx_http_xregion_detail(r, ctx, "%s", ctx->connected
                                ? "proxy_read_timeout"
                                : "proxy_connect_timeout");

        return ngx_http_xregion_fail(r, ctx, ctx->connected,
                   XR_E_UPSTREAM_TIMEOUT,
                   "%V did not answer in time", &ctx->dest_name);
    }

    if (u == NULL) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "xregion: the location of \"xregion_pass\" does not "
                      "proxy (status %i)", rc > 0 ? rc : (ngx_int_t)
                                                    ctx->sr_status);
        return ngx_http_xregion_fail(r, ctx, 0, XR_E_UPSTREAM_ERROR,
                   "%V could not be reached", &ctx->dest_name);
    }

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE || rc == NGX_ERROR) {

        if (!ctx->connected) {
            return ngx_http_xregion_fail(r, ctx, 0, XR_E_UPSTREAM_REFUSED,
                       "%V refused the connection", &ctx->dest_name);
        }

        return ngx_http_xregion_fail(r, ctx, 1, XR_E_UPSTREAM_ERROR,
                   "%V failed without an answer", &ctx->dest_name);
    }

    if (ctx->sr_status < NGX_HTTP_OK
        || ctx->sr_status >= NGX_HTTP_SPECIAL_RESPONSE)
    {
        return ngx_http_xregion_fail(r, ctx, 1, XR_E_UPSTREAM_ERROR,
                   "%V answered HTTP %ui", &ctx->dest_name, ctx->sr_status);
    }

    if (ctx->answer_too_large) {
        ngx_http_xregion_detail(r, ctx, "%O bytes or more, over "
                                "subrequest_output_buffer_size",
                                ngx_max(ctx->answered,
                                        u->headers_in.content_length_n));

        return ngx_http_xregion_fail(r, ctx, 1, XR_E_UPSTREAM_BAD_ANSWER,
                   "the answer of %V is too large", &ctx->dest_name);
    }

    if (u->headers_in.content_length_n >= 0
        && (off_t) ctx->sr_body.len != u->headers_in.content_length_n)
    {
        ngx_http_xregion_detail(r, ctx, "%uz of %O bytes", ctx->sr_body.len,
                                u->headers_in.content_length_n);

        return ngx_http_xregion_fail(r, ctx, 1, XR_E_UPSTREAM_ERROR,
                   "the answer of %V was cut short", &ctx->dest_name);
    }

    if (!ctx->answer_done && !ctx->sr->header_only) {
        ngx_http_xregion_detail(r, ctx, "%uz bytes, no end of the answer",
                                ctx->sr_body.len);

        return ngx_http_xregion_fail(r, ctx, 1, XR_E_UPSTREAM_ERROR,
                   "the answer of %V was cut short", &ctx->dest_name);
    }

    /* decode with the destination's profile, as the answer to our txn */

    xr_ctx_clear(&ctx->xr);
    ctx->xr.max_body = ngx_max(ctx->sr_body.len, 1);

    if (ctx->dest->seal.len
        && ngx_http_xregion_seal(r, ctx, ctx->dest, 1, &ctx->sr_body.data,
                                 &ctx->sr_body.len)
           != NGX_OK)
    {
        ngx_http_xregion_detail(r, ctx, "%s: %s",
                                xr_error_info(ctx->xr.err)->name,
                                ctx->xr.errstr);

        return ngx_http_xregion_fail(r, ctx, 1, XR_E_UPSTREAM_BAD_ANSWER,
                   "the sealed answer of %V does not open",
                   &ctx->dest_name);
    }

    if (xr_decode(&ctx->xr, ctx->dest, XR_DIR_RESPONSE, ctx->req.txn,
                  (const char *) ctx->sr_body.data, ctx->sr_body.len, ans)
        != XR_OK)
    {
        ngx_http_xregion_detail(r, ctx, "%s: %s",
                                xr_error_info(ctx->xr.err)->name,
                                ctx->xr.errstr);

        return ngx_http_xregion_fail(r, ctx, 1, XR_E_UPSTREAM_BAD_ANSWER,
                   "the answer of %V does not decode", &ctx->dest_name);
    }

    return NGX_OK;
}


/* The failure of the exchange, kept for the caller's answer: NGX_DECLINED. */

static ngx_int_t
ngx_http_xregion_fail(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    ngx_uint_t delivered, xr_err_e err, const char *fmt, ...)
{
    u_char   text[NGX_MAX_ERROR_STR], *p;
    va_list  args;

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    ctx->fail_err = err;
    ctx->fail_delivered = delivered;

    ctx->fail_text.data = ngx_pnalloc(r->pool, p - text);
    ctx->fail_text.len = ctx->fail_text.data ? (size_t) (p - text) : 0;

    if (ctx->fail_text.len) {
        ngx_memcpy(ctx->fail_text.data, text, ctx->fail_text.len);
    }

    return NGX_DECLINED;
}


/* The caller hears its own message id; the destination's is kept. */

void
ngx_http_xregion_adopt(ngx_http_xregion_ctx_t *ctx, xr_msg_t *ans)
{
    if (ans->ref_msg_id.len == 0) {
        ans->ref_msg_id = ans->msg_id;
    }

    ans->msg_id = ctx->req.msg_id;
    ans->txn = ctx->req.txn;
    ans->origin = ctx->req.dest;
    ans->dest = ctx->req.origin;
}


/*
 * The exchange failed after the translation: the Redis claim is released
 * when the destination cannot have seen the request (delivered 0), and
 * kept until it expires when it may have.
 */

static ngx_int_t
ngx_http_xregion_failed(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    ngx_uint_t delivered, xr_err_e err, const char *fmt, ...)
{
    u_char   text[NGX_MAX_ERROR_STR], *p;
    va_list  args;

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    ngx_http_xregion_store_failed(r, ctx, delivered);

    return ngx_http_xregion_answer_error(r, ctx, err, "%*s", p - text, text);
}


static void
ngx_http_xregion_deadline(ngx_event_t *ev)
{
    ngx_http_request_t           *r;
    ngx_http_xregion_ctx_t       *ctx;
    ngx_http_xregion_loc_conf_t  *xlcf;

    r = ev->data;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx == NULL) {
        return;
    }

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    if (ctx->state == NGX_HTTP_XREGION_STORE) {
        ctx->state = NGX_HTTP_XREGION_DONE;

        if (ctx->wait.timer_set) {
            ngx_del_timer(&ctx->wait);
        }

        ngx_http_xregion_detail(r, ctx, "xregion_timeout %M ms, waiting "
                                "for redis", xlcf->timeout);

        ngx_http_xregion_continue(r,
            ngx_http_xregion_answer_error(r, ctx, XR_E_BUSY_RETRY,
                                          "the gateway's state store did "
                                          "not answer in time"));
        return;
    }

    if (ctx->state != NGX_HTTP_XREGION_WAITING) {
        return;
    }

    ctx->state = NGX_HTTP_XREGION_DONE;
    r->write_event_handler = ngx_http_request_empty_handler;

    /* the connection stays busy until the subrequest ends: do not reuse it */
    r->keepalive = 0;

    ngx_http_xregion_detail(r, ctx, "xregion_timeout %M ms", xlcf->timeout);

    ngx_http_xregion_breaker_outcome(r, ctx, XR_E_UPSTREAM_TIMEOUT);

    ngx_http_xregion_continue(r,
        ngx_http_xregion_answer_error(r, ctx, XR_E_UPSTREAM_TIMEOUT,
                                      "%V did not answer in time",
                                      &ctx->dest_name));
}


static void
ngx_http_xregion_cleanup(void *data)
{
    ngx_http_xregion_ctx_t *ctx = data;

    /*
     * A request that ends without an answer of ours (the caller left, or
     * nginx gave up on it) is recorded all the same.
     */

    if (!ctx->audited && ctx->decoded) {
        ctx->ending = 1;

        if (ctx->request->connection->error) {
            ngx_str_set(&ctx->outcome, "XR-CALLER-CLOSED");

        } else {
            ngx_str_set(&ctx->outcome, "XR-INTERNAL");
        }

        ngx_http_xregion_metrics_count(ctx->request, ctx);
        (void) ngx_http_xregion_audit_record(ctx->request, ctx);
    }

    /* a breaker's probe that never reached the destination */

    ngx_http_xregion_breaker_release(ctx);

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    if (ctx->wait.timer_set) {
        ngx_del_timer(&ctx->wait);
    }

    ctx->state = NGX_HTTP_XREGION_DONE;
}
