
/*
 * Routes: domain [+ transaction] + destination region code -> upstream{}.
 *
 * xregion_route directives are collected while the http block is parsed
 * and turned into longest-prefix tables (core/xr_route.h) in
 * postconfiguration, when every upstream{} block is known.  A domain has
 * one table for all its transactions and one per transaction that has
 * routes of its own; a transaction's table is asked first.
 *
 * Destination profiles: the region whose code is the destination code, or
 * else its province (xx0000); its profile for the domain is
 * xregion_dest_profile's, or else "<region>.<domain>".
 */


#include "ngx_http_xregion_module.h"


static ngx_int_t ngx_http_xregion_route_add(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf, ngx_http_xregion_route_t *route);
static ngx_http_upstream_srv_conf_t *ngx_http_xregion_upstream(
    ngx_conf_t *cf, ngx_str_t *name);
static ngx_int_t ngx_http_xregion_dests_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);


ngx_int_t
ngx_http_xregion_routes_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_uint_t                 i;
    ngx_http_xregion_route_t  *route;

    for (i = 0; i < NGX_HTTP_XREGION_NDOMAINS; i++) {
        xr_prefix_init(&xmcf->tables[i].table, xmcf->pool);

        if (ngx_array_init(&xmcf->tables[i].txns, cf->pool, 4,
                           sizeof(ngx_http_xregion_txn_routes_t))
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    route = xmcf->routes.elts;

    for (i = 0; i < xmcf->routes.nelts; i++) {
        if (ngx_http_xregion_route_add(cf, xmcf, &route[i]) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    return ngx_http_xregion_dests_init(cf, xmcf);
}


static ngx_int_t
ngx_http_xregion_route_add(ngx_conf_t *cf, ngx_http_xregion_main_conf_t *xmcf,
    ngx_http_xregion_route_t *route)
{
    int                             rc;
    ngx_str_t                      *domain;
    ngx_uint_t                      i;
    xr_str_t                        txn;
    xr_prefix_table_t              *table;
    const xr_schema_t              *schema;
    ngx_http_xregion_route_t       *other;
    ngx_http_xregion_routes_t      *routes;
    const xr_prefix_entry_t        *e;
    ngx_http_xregion_txn_routes_t  *tr;

    static ngx_str_t  dflt = ngx_string("default");

    domain = &ngx_http_xregion_domains[route->domain];

    schema = xr_config_schema(xmcf->config, ngx_http_xregion_xstr(domain));
    if (schema == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "domain \"%V\" has no schema in the xregion "
                      "configuration \"%s\" in %V:%ui", domain,
                      xmcf->config->dir, &route->file, route->line);
        return NGX_ERROR;
    }

    if (ngx_http_xregion_upstream(cf, &route->upstream) == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "unknown upstream \"%V\" in xregion_route: routes name "
                      "upstream{} blocks in %V:%ui",
                      &route->upstream, &route->file, route->line);
        return NGX_ERROR;
    }

    routes = &xmcf->tables[route->domain];
    table = &routes->table;

    if (route->txn.len) {
        txn = ngx_http_xregion_xstr(&route->txn);

        if (xr_schema_txn(schema, txn) == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "domain \"%V\" has no transaction \"%V\" in %V:%ui",
                          domain, &route->txn, &route->file, route->line);
            return NGX_ERROR;
        }

        tr = routes->txns.elts;
        table = NULL;

        for (i = 0; i < routes->txns.nelts; i++) {
            if (xr_str_cmp(tr[i].txn, txn) == 0) {
                table = &tr[i].table;
                break;
            }
        }

        if (table == NULL) {
            tr = ngx_array_push(&routes->txns);
            if (tr == NULL) {
                return NGX_ERROR;
            }

            tr->txn = txn;
            xr_prefix_init(&tr->table, xmcf->pool);
            table = &tr->table;
        }
    }

    rc = xr_prefix_add(table, ngx_http_xregion_xstr(&route->prefix), route,
                       (int) route->line);

    if (rc == XR_DECLINED) {
        other = NULL;
        e = xr_prefix_lookup(table, ngx_http_xregion_xstr(&route->prefix));
        if (e) {
            other = e->value;
        }

        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "xregion_route \"%V%s%V %V\" overlaps the route in "
                      "%V:%ui in %V:%ui", domain,
                      route->txn.len ? " txn=" : "", &route->txn,
                      route->prefix.len ? &route->prefix : &dflt,
                      other ? &other->file : &route->file,
                      other ? other->line : 0, &route->file, route->line);
        return NGX_ERROR;
    }

    if (rc != XR_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "invalid xregion_route prefix \"%V\" in %V:%ui",
                      &route->prefix, &route->file, route->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* An upstream{} block by name; the implicit ones of proxy_pass do not count. */

static ngx_http_upstream_srv_conf_t *
ngx_http_xregion_upstream(ngx_conf_t *cf, ngx_str_t *name)
{
    ngx_uint_t                       i;
    ngx_http_upstream_srv_conf_t   **uscfp;
    ngx_http_upstream_main_conf_t   *umcf;

    umcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_upstream_module);
    if (umcf == NULL) {
        return NULL;
    }

    uscfp = umcf->upstreams.elts;

    for (i = 0; i < umcf->upstreams.nelts; i++) {
        if ((uscfp[i]->flags & NGX_HTTP_UPSTREAM_CREATE)
            && uscfp[i]->host.len == name->len
            && ngx_strncasecmp(uscfp[i]->host.data, name->data, name->len)
               == 0)
        {
            return uscfp[i];
        }
    }

    return NULL;
}


static ngx_int_t
ngx_http_xregion_dests_init(ngx_conf_t *cf, ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_str_t                *domain;
    ngx_uint_t                i;
    const xr_profile_t       *p;
    ngx_http_xregion_dest_t  *dest;

    dest = xmcf->dests.elts;

    for (i = 0; i < xmcf->dests.nelts; i++) {
        domain = &ngx_http_xregion_domains[dest[i].domain];

        if (xr_config_region(xmcf->config,
                             ngx_http_xregion_xstr(&dest[i].region))
            == NULL)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown xregion region \"%V\" in %V:%ui",
                          &dest[i].region, &dest[i].file, dest[i].line);
            return NGX_ERROR;
        }

        p = xr_config_profile(xmcf->config,
                              ngx_http_xregion_xstr(&dest[i].name));
        if (p == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown xregion profile \"%V\" in %V:%ui",
                          &dest[i].name, &dest[i].file, dest[i].line);
            return NGX_ERROR;
        }

        if (!xr_str_eq(p->domain, (char *) domain->data)) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "xregion profile \"%V\" belongs to domain \"%*s\", "
                          "not \"%V\" in %V:%ui", &dest[i].name,
                          p->domain.len, p->domain.data, domain,
                          &dest[i].file, dest[i].line);
            return NGX_ERROR;
        }

        dest[i].profile = p;
    }

    return NGX_OK;
}


ngx_http_xregion_route_t *
ngx_http_xregion_route_find(ngx_http_xregion_main_conf_t *xmcf,
    ngx_uint_t domain, xr_str_t txn, xr_str_t code)
{
    ngx_uint_t                      i;
    const xr_prefix_entry_t        *e;
    ngx_http_xregion_routes_t      *routes;
    ngx_http_xregion_txn_routes_t  *tr;

    if (domain >= NGX_HTTP_XREGION_NDOMAINS) {
        return NULL;
    }

    routes = &xmcf->tables[domain];
    tr = routes->txns.elts;

    for (i = 0; i < routes->txns.nelts; i++) {
        if (xr_str_cmp(tr[i].txn, txn) == 0) {
            e = xr_prefix_lookup(&tr[i].table, code);
            if (e) {
                return e->value;
            }

            break;
        }
    }

    e = xr_prefix_lookup(&routes->table, code);

    return e ? e->value : NULL;
}


const xr_region_t *
ngx_http_xregion_region_of(ngx_http_xregion_main_conf_t *xmcf, xr_str_t code)
{
    char                province[6];
    xr_str_t            p;
    const xr_region_t  *region;

    region = xr_config_region_by_code(xmcf->config, code);
    if (region || code.len != 6) {
        return region;
    }

    ngx_memcpy(province, code.data, 2);
    ngx_memcpy(province + 2, "0000", 4);

    p.data = province;
    p.len = 6;

    return xr_config_region_by_code(xmcf->config, p);
}


const xr_profile_t *
ngx_http_xregion_dest_profile(ngx_http_xregion_main_conf_t *xmcf,
    ngx_uint_t domain, const xr_region_t *region)
{
    u_char                   *p, name[128];
    ngx_str_t                *dname;
    ngx_uint_t                i;
    ngx_http_xregion_dest_t  *dest;

    dest = xmcf->dests.elts;

    for (i = 0; i < xmcf->dests.nelts; i++) {
        if (dest[i].domain == domain
            && xr_str_cmp(ngx_http_xregion_xstr(&dest[i].region),
                          region->name)
               == 0)
        {
            return dest[i].profile;
        }
    }

    dname = &ngx_http_xregion_domains[domain];

    if (region->name.len + 1 + dname->len > sizeof(name)) {
        return NULL;
    }

    p = ngx_cpymem(name, region->name.data, region->name.len);
    *p++ = '.';
    p = ngx_cpymem(p, dname->data, dname->len);

    return xr_config_profile(xmcf->config,
                             (xr_str_t) { p - name, (const char *) name });
}
