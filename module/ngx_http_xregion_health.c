
/*
 * Health for load balancers, and the maintenance drain:
 *
 *   location = /health {
 *       xregion_health [maintenance=<file>] [redis=required|optional];
 *   }
 *
 * GET answers 200 when the instance can take every transaction, else 503,
 * with what each check found, as JSON:
 *
 *   {"status":"ok","checks":{"config":"loaded","redis":"up",
 *    "audit":"writable","sign_key":"loaded","maintenance":"off"}}
 *
 * status: "ok"; "draining" (maintenance: the instance still answers what
 * it is sent, and closes its keepalive connections, while the balancer
 * moves callers away); "unhealthy" (a check failed).  The checks read
 * state the gateway keeps anyway, nothing is asked of Redis or the disk
 * per request: Redis as this worker's connection is (hiredis reconnects
 * in the background), the audit log as its writer last found it (a failed
 * write, free space below reserve=), maintenance as the file was at the
 * last one-second tick (ngx_http_xregion_metrics.c).  Maintenance is on
 * while the file exists: `touch` it to drain the instance, remove it to
 * bring it back; it survives a reload.
 */


#include "ngx_http_xregion_module.h"


typedef struct {
    ngx_uint_t                  redis_required;
} ngx_http_xregion_health_conf_t;


static ngx_int_t ngx_http_xregion_health_handler(ngx_http_request_t *r);


char *
ngx_http_xregion_health_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_loc_conf_t *xlcf = conf;

    ngx_str_t                       *value, file;
    ngx_uint_t                       i;
    ngx_http_core_loc_conf_t        *clcf;
    ngx_http_xregion_health_conf_t  *hc;
    ngx_http_xregion_main_conf_t    *xmcf;

    xmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_xregion_module);

    hc = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_health_conf_t));
    if (hc == NULL) {
        return NGX_CONF_ERROR;
    }

    hc->redis_required = 1;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "maintenance=", 12) == 0
            && value[i].len > 12)
        {
            file.data = value[i].data + 12;
            file.len = value[i].len - 12;

            if (ngx_conf_full_name(cf->cycle, &file, 0) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            if (xmcf->maintenance_file.len
                && (xmcf->maintenance_file.len != file.len
                    || ngx_strncmp(xmcf->maintenance_file.data, file.data,
                                   file.len) != 0))
            {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "one maintenance file per instance: "
                                   "\"%V\" was given before",
                                   &xmcf->maintenance_file);
                return NGX_CONF_ERROR;
            }

            xmcf->maintenance_file = file;
            continue;
        }

        if (value[i].len == sizeof("redis=required") - 1
            && ngx_strcmp(value[i].data, "redis=required") == 0)
        {
            hc->redis_required = 1;
            continue;
        }

        if (value[i].len == sizeof("redis=optional") - 1
            && ngx_strcmp(value[i].data, "redis=optional") == 0)
        {
            hc->redis_required = 0;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_xregion_health_handler;

    xlcf->health = hc;

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_xregion_health_handler(ngx_http_request_t *r)
{
    u_char                          *p;
    size_t                           len;
    ngx_int_t                        rc, audit;
    ngx_uint_t                       ok, draining, redis_up;
    ngx_buf_t                       *b;
    ngx_chain_t                      out;
    const char                      *redis, *audit_text, *key, *status;
    ngx_http_xregion_loc_conf_t     *xlcf;
    ngx_http_xregion_main_conf_t    *xmcf;
    ngx_http_xregion_health_conf_t  *hc;
    ngx_http_xregion_audit_status_t  as;

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);
    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);
    hc = xlcf->health;

    ok = (xmcf->config != NULL);

    if (xmcf->redis == NULL) {
        redis = "off";

    } else {
        redis_up = ngx_http_xregion_redis_ready();
        redis = redis_up ? "up" : "down";

        if (!redis_up && hc->redis_required) {
            ok = 0;
        }
    }

    audit = ngx_http_xregion_audit_status(xmcf, &as);

    if (audit != NGX_OK) {
        audit_text = "off";

    } else if (as.failing) {
        audit_text = "failing";
        ok = 0;

    } else if (as.low_space) {
        audit_text = "low_space";
        ok = 0;

    } else {
        audit_text = "writable";
    }

    key = xmcf->sign_key ? "loaded" : "none";
    draining = ngx_http_xregion_metrics_draining();

    status = !ok ? "unhealthy" : (draining ? "draining" : "ok");

    len = sizeof("{\"status\":\"\",\"checks\":{\"config\":\"\",\"redis\":\"\","
                 "\"audit\":\"\",\"sign_key\":\"\",\"maintenance\":\"\"}}\n")
          + 64;

    b = ngx_create_temp_buf(r->pool, len);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_slprintf(b->pos, b->end,
                     "{\"status\":\"%s\",\"checks\":{\"config\":\"%s\","
                     "\"redis\":\"%s\",\"audit\":\"%s\",\"sign_key\":\"%s\","
                     "\"maintenance\":\"%s\"}}\n",
                     status, xmcf->config ? "loaded" : "none", redis,
                     audit_text, key, draining ? "on" : "off");
    b->last = p;
    b->last_buf = 1;
    b->last_in_chain = 1;

    r->headers_out.status = (ok && !draining) ? NGX_HTTP_OK
                                              : NGX_HTTP_SERVICE_UNAVAILABLE;
    ngx_str_set(&r->headers_out.content_type, "application/json");
    r->headers_out.content_length_n = b->last - b->pos;

    /* a balancer must see the state now, not a cached answer */
    r->keepalive = draining ? 0 : r->keepalive;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}
