
/*
 * Filters that keep the exchange's sizes the module's to refuse, so that a
 * caller hears XR-BODY-TOO-LARGE or XR-UPSTREAM-BAD-ANSWER in its own
 * format instead of an nginx error page or a dropped connection:
 *
 *   request body filter   the caller's body, held to xregion_max_body
 *   header + body filter  the destination's answer in the exchange's
 *                         subrequest, held to subrequest_output_buffer_size;
 *                         the body filter also notes that the answer ended
 *
 * They act only on requests with an xregion context; every other request
 * passes straight through.
 */


#include "ngx_http_xregion_module.h"


static ngx_int_t ngx_http_xregion_request_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);
static ngx_int_t ngx_http_xregion_header_filter(ngx_http_request_t *r);
static ngx_int_t ngx_http_xregion_body_filter(ngx_http_request_t *r,
    ngx_chain_t *in);


static ngx_http_request_body_filter_pt   ngx_http_next_request_body_filter;
static ngx_http_output_header_filter_pt  ngx_http_next_header_filter;
static ngx_http_output_body_filter_pt    ngx_http_next_body_filter;


ngx_int_t
ngx_http_xregion_filters_init(ngx_conf_t *cf)
{
    ngx_http_next_request_body_filter = ngx_http_top_request_body_filter;
    ngx_http_top_request_body_filter = ngx_http_xregion_request_body_filter;

    ngx_http_next_header_filter = ngx_http_top_header_filter;
    ngx_http_top_header_filter = ngx_http_xregion_header_filter;

    ngx_http_next_body_filter = ngx_http_top_body_filter;
    ngx_http_top_body_filter = ngx_http_xregion_body_filter;

    return NGX_OK;
}


/*
 * A request body filter that holds the body to xregion_max_body even when
 * the caller sends it chunked, where no Content-Length told the size
 * up front: past the limit the rest is read and dropped, and the body
 * handler answers XR-BODY-TOO-LARGE in the caller's format.  Only the last
 * buffer's flag is passed on, so that nginx sees the body complete.
 */

static ngx_int_t
ngx_http_xregion_request_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    ngx_buf_t               *b;
    ngx_uint_t               last;
    ngx_chain_t             *cl, out;
    ngx_http_xregion_ctx_t  *ctx;

    if (r != r->main || in == NULL) {
        /* a flush: the save filter writes out what it holds */
        return ngx_http_next_request_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx == NULL) {
        return ngx_http_next_request_body_filter(r, in);
    }

    if (!ctx->too_large) {
        for (cl = in; cl; cl = cl->next) {
            ctx->received += cl->buf->last - cl->buf->pos;
        }

        if (ctx->received <= (off_t) ctx->max_body) {
            return ngx_http_next_request_body_filter(r, in);
        }

        ctx->too_large = 1;

        ngx_log_debug1(NGX_LOG_DEBUG_HTTP, r->connection->log, 0,
                       "xregion body over %uz bytes, dropping the rest",
                       ctx->max_body);
    }

    last = 0;

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_buf) {
            last = 1;
        }

        cl->buf->pos = cl->buf->last;
    }

    if (!last) {
        return NGX_OK;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last_buf = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_next_request_body_filter(r, &out);
}


/*
 * The destination's answer arrives in memory, at most
 * subrequest_output_buffer_size bytes.  nginx itself would fail a larger
 * one by failing the client connection too; these two filters, for the
 * exchange's subrequest only, take the overflow instead: the excess is
 * dropped and the answer is refused as XR-UPSTREAM-BAD-ANSWER.
 */

static ngx_int_t
ngx_http_xregion_header_filter(ngx_http_request_t *r)
{
    ngx_http_xregion_ctx_t    *ctx;
    ngx_http_core_loc_conf_t  *clcf;

    if (r == r->main) {
        return ngx_http_next_header_filter(r);
    }

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_xregion_module);

    if (ctx == NULL || ctx->sr != r) {
        return ngx_http_next_header_filter(r);
    }

    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (r->headers_out.content_length_n
        > (off_t) clcf->subrequest_output_buffer_size)
    {
        ctx->answer_too_large = 1;
        ctx->answered = r->headers_out.content_length_n;

        /* so that nginx's in-memory buffer takes what comes, see below */
        r->headers_out.content_length_n = -1;
    }

    return ngx_http_next_header_filter(r);
}


static ngx_int_t
ngx_http_xregion_body_filter(ngx_http_request_t *r, ngx_chain_t *in)
{
    off_t                      size;
    ngx_buf_t                 *b;
    ngx_chain_t               *cl;
    ngx_http_xregion_ctx_t    *ctx;
    ngx_http_core_loc_conf_t  *clcf;

    if (r == r->main) {
        return ngx_http_next_body_filter(r, in);
    }

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_xregion_module);

    if (ctx == NULL || ctx->sr != r) {
        return ngx_http_next_body_filter(r, in);
    }

    /*
     * An answer that fails after its header (the destination closes the
     * connection or stops sending mid-body) is ended by nginx with a flush,
     * and the subrequest is finalized with NGX_OK all the same: only the
     * last buffer, sent when the answer is complete, tells the two apart
     * when there is no Content-Length to compare with.
     */

    for (cl = in; cl; cl = cl->next) {
        if (cl->buf->last_in_chain || cl->buf->last_buf) {
            ctx->answer_done = 1;
        }
    }

    if (!ctx->answer_too_large) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        size = 0;

        for (cl = in; cl; cl = cl->next) {
            if (!ngx_buf_special(cl->buf)) {
                size += ngx_buf_size(cl->buf);
            }
        }

        if (ctx->answered + size <= (off_t) clcf->subrequest_output_buffer_size)
        {
            ctx->answered += size;
            return ngx_http_next_body_filter(r, in);
        }

        ctx->answer_too_large = 1;
        ctx->answered += size;
    }

    for (cl = in; cl; cl = cl->next) {
        b = cl->buf;

        if (ngx_buf_in_memory(b)) {
            b->pos = b->last;
        }

        if (b->in_file) {
            b->file_pos = b->file_last;
        }
    }

    return NGX_OK;
}
