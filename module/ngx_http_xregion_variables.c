
/*
 * $xregion_* variables: for log_format, and for the internal location the
 * exchange goes through ($xregion_upstream, $xregion_dest_path,
 * $xregion_dest_content_type, $xregion_msg_id).
 *
 * The values live on the main request's context: the internal location
 * runs in a subrequest, and the access log line of the main request is
 * written after the exchange.  None of them is cacheable, because a
 * subrequest shares its parent's variable cache and the values change
 * while the request goes on (the outcome, the upstream time).
 */


#include "ngx_http_xregion_module.h"


static ngx_int_t ngx_http_xregion_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data);
static ngx_int_t ngx_http_xregion_upstream_time_variable(
    ngx_http_request_t *r, ngx_http_variable_value_t *v, uintptr_t data);


#define ngx_http_xregion_var(name, field)                                     \
    { ngx_string(name), NULL, ngx_http_xregion_variable,                      \
      offsetof(ngx_http_xregion_ctx_t, field), NGX_HTTP_VAR_NOCACHEABLE, 0 }


static ngx_http_variable_t  ngx_http_xregion_vars[] = {

    ngx_http_xregion_var("xregion_domain", domain),
    ngx_http_xregion_var("xregion_txn", txn),
    ngx_http_xregion_var("xregion_msg_id", msg_id),
    ngx_http_xregion_var("xregion_origin", origin),
    ngx_http_xregion_var("xregion_dest", dest_code),
    ngx_http_xregion_var("xregion_route", upstream),
    ngx_http_xregion_var("xregion_upstream", upstream),
    ngx_http_xregion_var("xregion_outcome", outcome),
    ngx_http_xregion_var("xregion_caller_profile", caller_name),
    ngx_http_xregion_var("xregion_dest_profile", dest_name),
    ngx_http_xregion_var("xregion_dest_path", dest_path),
    ngx_http_xregion_var("xregion_dest_content_type", dest_content_type),
    ngx_http_xregion_var("xregion_cache", cache),
    ngx_http_xregion_var("xregion_idempotency", idempotency),
    ngx_http_xregion_var("xregion_upstream_signature", up_signature),
    ngx_http_xregion_var("xregion_upstream_timestamp", up_timestamp),
    ngx_http_xregion_var("xregion_upstream_nonce", up_nonce),
    ngx_http_xregion_var("xregion_upstream_access_key", up_access_key),
    ngx_http_xregion_var("xregion_limit", limit),
    ngx_http_xregion_var("xregion_breaker", breaker),

    { ngx_string("xregion_upstream_time"), NULL,
      ngx_http_xregion_upstream_time_variable, 0,
      NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


ngx_int_t
ngx_http_xregion_add_variables(ngx_conf_t *cf)
{
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_xregion_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    ngx_str_t               *s;
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_xregion_module);

    if (ctx == NULL) {
        v->not_found = 1;
        return NGX_OK;
    }

    s = (ngx_str_t *) ((char *) ctx + data);

    if (s->len == 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    v->len = s->len;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = s->data;

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_upstream_time_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data)
{
    u_char                  *p;
    ngx_msec_int_t           ms;
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r->main, ngx_http_xregion_module);

    if (ctx == NULL || ctx->upstream_time < 0) {
        v->not_found = 1;
        return NGX_OK;
    }

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN + 4);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ms = ctx->upstream_time;

    v->len = ngx_sprintf(p, "%T.%03M", (time_t) ms / 1000, ms % 1000) - p;
    v->valid = 1;
    v->no_cacheable = 1;
    v->not_found = 0;
    v->data = p;

    return NGX_OK;
}
