
/*
 * Access rules: which caller may use which domain and transaction toward
 * which region.
 *
 *   xregion_allow <caller|*> <domain|*> [txn=<name>] <region prefix|*>;
 *
 * Deny by default: once the http{} block has one xregion_allow, a request
 * no rule allows is refused with XR-FORBIDDEN (403) in the caller's format,
 * after its message is read (the destination region is in the message) and
 * before anything is asked of Redis or the destination.  Without any rule
 * every identified caller may reach every region, and `nginx -t` says so.
 *
 * Rules are checked at configuration time against the xregion
 * configuration: a caller that is no profile, a domain without schema, a
 * transaction the domain does not have, a prefix no region has are errors
 * naming file:line.
 */


#include "ngx_http_xregion_module.h"


typedef struct {
    ngx_str_t                   caller;     /* empty: any */
    ngx_int_t                   domain;     /* -1: any */
    ngx_str_t                   txn;        /* empty: any */
    ngx_str_t                   prefix;     /* empty: any region */
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_allow_t;


char *
ngx_http_xregion_allow_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    ngx_str_t                 *value;
    ngx_uint_t                 i, n;
    ngx_http_xregion_allow_t  *rule;

    if (xmcf->allow == NULL) {
        xmcf->allow = ngx_array_create(cf->pool, 16,
                                       sizeof(ngx_http_xregion_allow_t));
        if (xmcf->allow == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(xmcf->allow);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(rule, sizeof(ngx_http_xregion_allow_t));

    value = cf->args->elts;
    n = cf->args->nelts;

    rule->file = cf->conf_file->file.name;
    rule->line = cf->conf_file->line;

    if (n == 5) {
        if (ngx_strncmp(value[3].data, "txn=", 4) != 0 || value[3].len == 4) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "\"txn=<name>\"", &value[3]);
            return NGX_CONF_ERROR;
        }

        rule->txn.data = value[3].data + 4;
        rule->txn.len = value[3].len - 4;
    }

    if (!(value[1].len == 1 && value[1].data[0] == '*')) {
        rule->caller = value[1];
    }

    rule->domain = -1;

    if (!(value[2].len == 1 && value[2].data[0] == '*')) {
        rule->domain = ngx_http_xregion_domain(&value[2]);

        if (rule->domain == NGX_ERROR) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown domain \"%V\" (medical, transit, gov "
                               "or *)", &value[2]);
            return NGX_CONF_ERROR;
        }

    } else if (rule->txn.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"txn=\" needs a domain, not \"*\"");
        return NGX_CONF_ERROR;
    }

    if (!(value[n - 1].len == 1 && value[n - 1].data[0] == '*')) {
        rule->prefix = value[n - 1];

        if (rule->prefix.len > 6) {
            goto bad_prefix;
        }

        for (i = 0; i < rule->prefix.len; i++) {
            if (rule->prefix.data[i] < '0' || rule->prefix.data[i] > '9') {
                goto bad_prefix;
            }
        }
    }

    return NGX_CONF_OK;

bad_prefix:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid region prefix \"%V\": 1 to 6 digits of a "
                       "GB/T 2260 code, or *", &value[n - 1]);

    return NGX_CONF_ERROR;
}


/* postconfiguration: every rule against the loaded configuration */

ngx_int_t
ngx_http_xregion_access_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    size_t                     j, n;
    xr_str_t                   code;
    ngx_uint_t                 i;
    ngx_str_t                 *domain;
    const xr_schema_t         *schema;
    const xr_profile_t        *p;
    const xr_region_t         *region;
    ngx_http_xregion_allow_t  *rule;

    if (xmcf->allow == NULL) {
        if (xmcf->endpoints.nelts) {
            ngx_log_error(NGX_LOG_WARN, cf->log, 0,
                          "no \"xregion_allow\" rule: every identified "
                          "caller may reach every region");
        }

        return NGX_OK;
    }

    rule = xmcf->allow->elts;

    for (i = 0; i < xmcf->allow->nelts; i++) {

        if (rule[i].caller.len) {
            p = xr_config_profile(xmcf->config,
                                  ngx_http_xregion_xstr(&rule[i].caller));

            if (p == NULL) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"xregion_allow\": unknown caller \"%V\" (no "
                              "such profile) in %V:%ui", &rule[i].caller,
                              &rule[i].file, rule[i].line);
                return NGX_ERROR;
            }

            if (rule[i].domain >= 0
                && !xr_str_eq(p->domain, (char *)
                              ngx_http_xregion_domains[rule[i].domain].data))
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"xregion_allow\": caller \"%V\" is a %*s "
                              "profile, the rule is for %V in %V:%ui",
                              &rule[i].caller, p->domain.len, p->domain.data,
                              &ngx_http_xregion_domains[rule[i].domain],
                              &rule[i].file, rule[i].line);
                return NGX_ERROR;
            }
        }

        if (rule[i].domain >= 0) {
            domain = &ngx_http_xregion_domains[rule[i].domain];
            schema = xr_config_schema(xmcf->config,
                                      ngx_http_xregion_xstr(domain));

            if (schema == NULL) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"xregion_allow\": domain \"%V\" has no "
                              "schema in %V:%ui", domain, &rule[i].file,
                              rule[i].line);
                return NGX_ERROR;
            }

            if (rule[i].txn.len
                && xr_schema_txn(schema, ngx_http_xregion_xstr(&rule[i].txn))
                   == NULL)
            {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"xregion_allow\": domain \"%V\" has no "
                              "transaction \"%V\" in %V:%ui", domain,
                              &rule[i].txn, &rule[i].file, rule[i].line);
                return NGX_ERROR;
            }
        }

        if (rule[i].prefix.len == 0) {
            continue;
        }

        /*
         * a prefix some region's codes can start with: shorter than the
         * region's code ("3" for 320000), or inside it ("3201", a city of
         * the province 320000)
         */

        region = NULL;

        for (j = 0; j < xmcf->config->nregions; j++) {
            code = xmcf->config->regions[j].code;
            n = code.len;

            if (n == 0) {
                continue;       /* a format, not a place: "national" */
            }

            while (n > 2 && code.data[n - 1] == '0' && code.data[n - 2] == '0')
            {
                n -= 2;
            }

            if (ngx_strncmp(code.data, rule[i].prefix.data,
                            ngx_min(n, rule[i].prefix.len))
                == 0)
            {
                region = &xmcf->config->regions[j];
                break;
            }
        }

        if (region == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_allow\": no region of the xregion "
                          "configuration has a code starting with \"%V\" "
                          "in %V:%ui", &rule[i].prefix, &rule[i].file,
                          rule[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * NGX_OK: allowed.  NGX_DECLINED: no rule allows it (the caller answers
 * XR-FORBIDDEN).
 */

ngx_int_t
ngx_http_xregion_access(ngx_http_xregion_main_conf_t *xmcf,
    ngx_http_xregion_ctx_t *ctx)
{
    ngx_uint_t                 i;
    ngx_http_xregion_allow_t  *rule;

    if (xmcf->allow == NULL) {
        return NGX_OK;
    }

    rule = xmcf->allow->elts;

    for (i = 0; i < xmcf->allow->nelts; i++) {

        if (rule[i].caller.len
            && (rule[i].caller.len != ctx->caller_name.len
                || ngx_strncmp(rule[i].caller.data, ctx->caller_name.data,
                               ctx->caller_name.len)
                   != 0))
        {
            continue;
        }

        if (rule[i].domain >= 0
            && (ngx_uint_t) rule[i].domain != ctx->domain_index)
        {
            continue;
        }

        if (rule[i].txn.len
            && (rule[i].txn.len != ctx->txn.len
                || ngx_strncmp(rule[i].txn.data, ctx->txn.data, ctx->txn.len)
                   != 0))
        {
            continue;
        }

        if (rule[i].prefix.len
            && (ctx->dest_code.len < rule[i].prefix.len
                || ngx_strncmp(ctx->dest_code.data, rule[i].prefix.data,
                               rule[i].prefix.len)
                   != 0))
        {
            continue;
        }

        return NGX_OK;
    }

    return NGX_DECLINED;
}
