
/*
 * xregion: directives, configuration and process hooks.
 *
 * Everything that can be checked is checked at configuration time, so that
 * `nginx -t` fails with file:line: the profile directory (the core's
 * loader), static caller profiles, routes against upstream{} blocks and the
 * domain schemas.  Routes and static profiles are resolved once all of the
 * http{} block is known, in postconfiguration.
 */


#include "ngx_http_xregion_module.h"

#include "xr_adapter.h"
#include "xr_crypto.h"


static void *ngx_http_xregion_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_xregion_create_loc_conf(ngx_conf_t *cf);
static char *ngx_http_xregion_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child);
static ngx_int_t ngx_http_xregion_preconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_xregion_postconfiguration(ngx_conf_t *cf);
static ngx_int_t ngx_http_xregion_endpoints_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
static void ngx_http_xregion_exit(ngx_cycle_t *cycle);
static ngx_int_t ngx_http_xregion_init_process(ngx_cycle_t *cycle);
static void ngx_http_xregion_exit_process(ngx_cycle_t *cycle);

static char *ngx_http_xregion_config(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static void ngx_http_xregion_config_cleanup(void *data);
static char *ngx_http_xregion_route(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
static char *ngx_http_xregion_dest_profile_cmd(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_xregion(ngx_conf_t *cf, ngx_command_t *cmd, void *conf);
static char *ngx_http_xregion_caller_profile(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
static char *ngx_http_xregion_pass_check(ngx_conf_t *cf, void *post,
    void *data);


static ngx_conf_post_handler_pt  ngx_http_xregion_pass_p =
    ngx_http_xregion_pass_check;


static ngx_conf_enum_t  ngx_http_xregion_unavailable_values[] = {
    { ngx_string("refuse"), NGX_HTTP_XREGION_REFUSE },
    { ngx_string("pass"), NGX_HTTP_XREGION_FORWARD },
    { ngx_null_string, 0 }
};


ngx_str_t  ngx_http_xregion_domains[] = {
    ngx_string("medical"),
    ngx_string("transit"),
    ngx_string("gov"),
    ngx_null_string
};


static ngx_command_t  ngx_http_xregion_commands[] = {

    { ngx_string("xregion_config"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_xregion_config,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_route"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_xregion_route,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_dest_profile"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3,
      ngx_http_xregion_dest_profile_cmd,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_xregion,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_caller_profile"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_xregion_caller_profile,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_pass"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, pass),
      &ngx_http_xregion_pass_p },

    { ngx_string("xregion_max_body"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, max_body),
      NULL },

    { ngx_string("xregion_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, timeout),
      NULL },

    { ngx_string("xregion_allow"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_xregion_allow_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_verify"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_xregion_verify_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_xregion_redis_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_cache"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, cache),
      NULL },

    { ngx_string("xregion_cache_ttl"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE12,
      ngx_http_xregion_cache_ttl_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_idempotency"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, idempotency),
      NULL },

    { ngx_string("xregion_idempotency_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, idempotency_ttl),
      NULL },

    { ngx_string("xregion_idempotency_wait"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, idempotency_wait),
      NULL },

    { ngx_string("xregion_idempotency_unavailable"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_enum_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, idempotency_unavailable),
      &ngx_http_xregion_unavailable_values },

    { ngx_string("xregion_sign_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_xregion_sign_key_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_sign_answers"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, sign_answers),
      NULL },

    { ngx_string("xregion_seal"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_xregion_seal_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_upstream_sign"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_2MORE,
      ngx_http_xregion_upstream_sign_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_limit_caller"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_xregion_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, limit_callers),
      NULL },

    { ngx_string("xregion_limit_dest"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE123,
      ngx_http_xregion_limit_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_xregion_loc_conf_t, limit_dests),
      NULL },

    { ngx_string("xregion_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_xregion_metrics_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_health"),
      NGX_HTTP_LOC_CONF|NGX_CONF_ANY,
      ngx_http_xregion_health_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_breaker"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_xregion_breaker_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_audit"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_1MORE,
      ngx_http_xregion_audit_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_audit_regulator"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE12,
      ngx_http_xregion_audit_regulator_directive,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_audit_pull"),
      NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_xregion_audit_pull_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("xregion_replay_guard"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_xregion_replay_guard_directive,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_xregion_module_ctx = {
    ngx_http_xregion_preconfiguration,     /* preconfiguration */
    ngx_http_xregion_postconfiguration,    /* postconfiguration */

    ngx_http_xregion_create_main_conf,     /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_xregion_create_loc_conf,      /* create location configuration */
    ngx_http_xregion_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_xregion_module = {
    NGX_MODULE_V1,
    &ngx_http_xregion_module_ctx,          /* module context */
    ngx_http_xregion_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_xregion_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_xregion_exit_process,         /* exit process */
    ngx_http_xregion_exit,                 /* exit master */
    NGX_MODULE_V1_PADDING
};


ngx_int_t
ngx_http_xregion_domain(ngx_str_t *name)
{
    ngx_uint_t  i;

    for (i = 0; ngx_http_xregion_domains[i].len; i++) {
        if (name->len == ngx_http_xregion_domains[i].len
            && ngx_strncmp(name->data, ngx_http_xregion_domains[i].data,
                           name->len)
               == 0)
        {
            return i;
        }
    }

    return NGX_ERROR;
}


static void *
ngx_http_xregion_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_main_conf_t));
    if (xmcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     xmcf->config = NULL;
     *     xmcf->config_file = { 0, NULL };
     *     xmcf->config_line = 0;
     *     xmcf->pool = NULL;
     *     xmcf->tables = { ... };
     */

    if (ngx_array_init(&xmcf->routes, cf->pool, 16,
                       sizeof(ngx_http_xregion_route_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&xmcf->dests, cf->pool, 4,
                       sizeof(ngx_http_xregion_dest_t))
        != NGX_OK)
    {
        return NULL;
    }

    if (ngx_array_init(&xmcf->endpoints, cf->pool, 4,
                       sizeof(ngx_http_xregion_loc_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return xmcf;
}


static void *
ngx_http_xregion_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_xregion_loc_conf_t  *xlcf;

    xlcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_loc_conf_t));
    if (xlcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     xlcf->file = { 0, NULL };
     *     xlcf->line = 0;
     *     xlcf->core = NULL;
     *     xlcf->caller = NULL;
     *     xlcf->caller_profile = NULL;
     *     xlcf->caller_file = { 0, NULL };
     *     xlcf->caller_line = 0;
     *     xlcf->pass = { 0, NULL };
     *     xlcf->cache_ttls = NULL;
     *     xlcf->replay_nonce = NULL;
     *     xlcf->replay_timestamp = NULL;
     *     xlcf->replay_unavailable = NGX_HTTP_XREGION_REFUSE;
     *     xlcf->limit_callers = NULL;
     *     xlcf->limit_dests = NULL;
     *     xlcf->limit_by_caller = NULL;
     *     xlcf->limit_by_dest = NULL;
     */

    xlcf->domain = NGX_CONF_UNSET_UINT;
    xlcf->max_body = NGX_CONF_UNSET_SIZE;
    xlcf->timeout = NGX_CONF_UNSET_MSEC;
    xlcf->cache = NGX_CONF_UNSET;
    xlcf->cache_ttl = NGX_CONF_UNSET_MSEC;
    xlcf->idempotency = NGX_CONF_UNSET;
    xlcf->idempotency_ttl = NGX_CONF_UNSET_MSEC;
    xlcf->idempotency_wait = NGX_CONF_UNSET_MSEC;
    xlcf->idempotency_unavailable = NGX_CONF_UNSET_UINT;
    xlcf->replay_window = NGX_CONF_UNSET_MSEC;
    xlcf->sign_answers = NGX_CONF_UNSET;
    xlcf->breaker = NGX_CONF_UNSET_PTR;

    return xlcf;
}


static char *
ngx_http_xregion_merge_loc_conf(ngx_conf_t *cf, void *parent, void *child)
{
    ngx_http_xregion_loc_conf_t *prev = parent;
    ngx_http_xregion_loc_conf_t *conf = child;

    /*
     * domain is not inherited: only the location that says `xregion` is an
     * endpoint (its content handler is not inherited either)
     */

    if (conf->caller == NULL) {
        conf->caller = prev->caller;
        conf->caller_file = prev->caller_file;
        conf->caller_line = prev->caller_line;
    }

    ngx_conf_merge_str_value(conf->pass, prev->pass, "/_xregion");
    ngx_conf_merge_size_value(conf->max_body, prev->max_body, 1024 * 1024);
    ngx_conf_merge_msec_value(conf->timeout, prev->timeout, 30000);

    ngx_conf_merge_value(conf->cache, prev->cache, 1);
    ngx_conf_merge_msec_value(conf->cache_ttl, prev->cache_ttl, 60000);

    if (conf->cache_ttls == NULL) {
        conf->cache_ttls = prev->cache_ttls;
    }

    ngx_conf_merge_value(conf->idempotency, prev->idempotency, 1);
    ngx_conf_merge_msec_value(conf->idempotency_ttl, prev->idempotency_ttl,
                              86400000);
    ngx_conf_merge_msec_value(conf->idempotency_wait,
                              prev->idempotency_wait, 5000);
    ngx_conf_merge_uint_value(conf->idempotency_unavailable,
                              prev->idempotency_unavailable,
                              NGX_HTTP_XREGION_REFUSE);
    ngx_conf_merge_value(conf->sign_answers, prev->sign_answers, 0);

    if (conf->replay_window == NGX_CONF_UNSET_MSEC) {
        conf->replay_window = prev->replay_window;
        conf->replay_nonce = prev->replay_nonce;
        conf->replay_timestamp = prev->replay_timestamp;
        conf->replay_unavailable = prev->replay_unavailable;
    }

    if (conf->replay_window == NGX_CONF_UNSET_MSEC) {
        conf->replay_window = 0;
    }

    /* a level's limits replace the parent's, caller and destination apart */

    if (conf->limit_callers == NULL) {
        conf->limit_callers = prev->limit_callers;
    }

    if (conf->limit_dests == NULL) {
        conf->limit_dests = prev->limit_dests;
    }

    ngx_conf_merge_ptr_value(conf->breaker, prev->breaker, NULL);

    if (conf->idempotency_ttl == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_idempotency_ttl\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (conf->max_body == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_max_body\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    if (conf->timeout == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_timeout\" must be more than 0");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_xregion_preconfiguration(ngx_conf_t *cf)
{
    return ngx_http_xregion_add_variables(cf);
}


static ngx_int_t
ngx_http_xregion_postconfiguration(ngx_conf_t *cf)
{
    ngx_http_xregion_dest_t       *dest;
    ngx_http_xregion_route_t      *route;
    ngx_http_xregion_loc_conf_t  **endpoint;
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_xregion_module);

    if (xmcf->config == NULL) {

        if (xmcf->routes.nelts) {
            route = xmcf->routes.elts;
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_route\" needs \"xregion_config\" in "
                          "the http block in %V:%ui",
                          &route->file, route->line);
            return NGX_ERROR;
        }

        if (xmcf->endpoints.nelts) {
            endpoint = xmcf->endpoints.elts;
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion\" needs \"xregion_config\" in the "
                          "http block in %V:%ui",
                          &endpoint[0]->file, endpoint[0]->line);
            return NGX_ERROR;
        }

        if (xmcf->allow) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_allow\" needs \"xregion_config\" in "
                          "the http block");
            return NGX_ERROR;
        }

        if (xmcf->limit_sets) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_limit_caller\" and \"xregion_limit_dest\" "
                          "need \"xregion_config\" in the http block");
            return NGX_ERROR;
        }

        if (xmcf->dests.nelts) {
            dest = xmcf->dests.elts;
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_dest_profile\" needs \"xregion_config\" "
                          "in the http block in %V:%ui",
                          &dest->file, dest->line);
            return NGX_ERROR;
        }

        if (xmcf->audit) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_audit\" needs \"xregion_config\" in "
                          "the http block in %V:%ui",
                          &xmcf->audit->file, xmcf->audit->line);
            return NGX_ERROR;
        }

        return ngx_http_xregion_audit_pull_init(cf, xmcf);
    }

    xmcf->pool = ngx_http_xregion_pool_create(cf->pool);
    if (xmcf->pool == NULL) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_routes_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_endpoints_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_access_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_verify_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_sign_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_seal_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_limit_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_breaker_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_audit_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_metrics_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_audit_pull_init(cf, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    return ngx_http_xregion_filters_init(cf);
}


/*
 * Every `xregion` location after merging: its domain has a schema, it has
 * a caller profile and a static caller profile exists in that domain.
 */

static ngx_int_t
ngx_http_xregion_endpoints_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_str_t                     *domain;
    ngx_uint_t                     i;
    const xr_profile_t            *p;
    ngx_http_xregion_loc_conf_t  **endpoints, *xlcf;

    endpoints = xmcf->endpoints.elts;

    for (i = 0; i < xmcf->endpoints.nelts; i++) {
        xlcf = endpoints[i];
        domain = &ngx_http_xregion_domains[xlcf->domain];

        if (xr_config_schema(xmcf->config, ngx_http_xregion_xstr(domain))
            == NULL)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "domain \"%V\" has no schema in the xregion "
                          "configuration \"%s\" in %V:%ui", domain,
                          xmcf->config->dir, &xlcf->file, xlcf->line);
            return NGX_ERROR;
        }

        if (xlcf->caller == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_caller_profile\" is not set for this "
                          "xregion location in %V:%ui",
                          &xlcf->file, xlcf->line);
            return NGX_ERROR;
        }

        /*
         * limit_except sends the methods it limits to a location of its
         * own, which has no content handler: the endpoint would answer
         * nothing useful.  Access rules belong in front of the location.
         */

        if (xlcf->core && xlcf->core->limit_except) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"limit_except\" cannot be used in an xregion "
                          "location in %V:%ui", &xlcf->file, xlcf->line);
            return NGX_ERROR;
        }

        /*
         * xregion_max_body replaces client_max_body_size here: the size is
         * checked by the module so that a too large body is refused in the
         * caller's own format, not with nginx's error page.
         */

        if (xlcf->core) {
            xlcf->core->client_max_body_size = 0;
        }

        if (ngx_http_xregion_store_check(cf, xmcf, xlcf) != NGX_OK) {
            return NGX_ERROR;
        }

        if (xlcf->caller->lengths) {
            continue;
        }

        p = xr_config_profile(xmcf->config,
                              ngx_http_xregion_xstr(&xlcf->caller->value));
        if (p == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "unknown xregion profile \"%V\" in %V:%ui",
                          &xlcf->caller->value, &xlcf->caller_file,
                          xlcf->caller_line);
            return NGX_ERROR;
        }

        if (!xr_str_eq(p->domain, (char *) domain->data)) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "xregion profile \"%V\" belongs to domain \"%*s\", "
                          "the location serves \"%V\" in %V:%ui",
                          &xlcf->caller->value, p->domain.len,
                          p->domain.data, domain, &xlcf->caller_file,
                          xlcf->caller_line);
            return NGX_ERROR;
        }

        xlcf->caller_profile = p;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_init_process(ngx_cycle_t *cycle)
{
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_cycle_get_module_main_conf(cycle, ngx_http_xregion_module);

    if (xmcf == NULL) {
        return NGX_OK;
    }

    if (ngx_http_xregion_audit_init_process(cycle, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_xregion_metrics_init_process(cycle, xmcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (xmcf->redis == NULL || xmcf->endpoints.nelts == 0) {
        return NGX_OK;
    }

    return ngx_http_xregion_redis_init_process(cycle, xmcf->redis);
}


static void
ngx_http_xregion_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_xregion_redis_exit_process(cycle);
    ngx_http_xregion_audit_exit_process();
    ngx_http_xregion_metrics_exit_process();
    ngx_http_xregion_exit(cycle);
}


static void
ngx_http_xregion_exit(ngx_cycle_t *cycle)
{
    xr_adapters_cleanup();
    xr_crypto_cleanup();
}


static char *
ngx_http_xregion_config(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    ngx_str_t           *value, dir;
    xr_ctx_t             ctx;
    xr_pool_t           *pool;
    xr_config_t         *config;
    ngx_pool_cleanup_t  *cln;

    if (xmcf->config) {
        return "is duplicate";
    }

    value = cf->args->elts;
    dir = value[1];

    if (ngx_conf_full_name(cf->cycle, &dir, 1) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* only for the loader's error: the configuration has a pool of its own */

    pool = ngx_http_xregion_pool_create(cf->temp_pool);
    if (pool == NULL) {
        return NGX_CONF_ERROR;
    }

    xr_ctx_init(&ctx, pool);

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        return NGX_CONF_ERROR;
    }

    if (xr_config_load(&ctx, (char *) dir.data, &config) != XR_OK) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "xregion configuration \"%V\" does not load: %s",
                           &dir, ctx.errstr[0] ? ctx.errstr
                                 : xr_error_info(ctx.err)->text);
        return NGX_CONF_ERROR;
    }

    cln->handler = ngx_http_xregion_config_cleanup;
    cln->data = config;

    xmcf->config = config;
    xmcf->config_file = cf->conf_file->file.name;
    xmcf->config_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static void
ngx_http_xregion_config_cleanup(void *data)
{
    xr_config_free(data);
}


/* xregion_route <domain> [txn=<name>] <prefix|default> <upstream>; */

static char *
ngx_http_xregion_route(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    ngx_int_t                  domain;
    ngx_str_t                 *value, prefix;
    ngx_uint_t                 i, n;
    ngx_http_xregion_route_t  *route;

    value = cf->args->elts;
    n = 2;

    domain = ngx_http_xregion_domain(&value[1]);
    if (domain == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown xregion domain \"%V\", "
                           "use medical, transit or gov", &value[1]);
        return NGX_CONF_ERROR;
    }

    route = ngx_array_push(&xmcf->routes);
    if (route == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(route, sizeof(ngx_http_xregion_route_t));

    route->domain = domain;
    route->file = cf->conf_file->file.name;
    route->line = cf->conf_file->line;

    if (value[n].len > 4 && ngx_strncmp(value[n].data, "txn=", 4) == 0) {
        route->txn.len = value[n].len - 4;
        route->txn.data = value[n].data + 4;
        n++;

    } else if (cf->args->nelts == 5) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected txn=<name>",
                           &value[n]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts != n + 2) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid number of arguments in \"xregion_route\": "
                           "<domain> [txn=<name>] <prefix|default> "
                           "<upstream>");
        return NGX_CONF_ERROR;
    }

    prefix = value[n];

    if (prefix.len == 7 && ngx_strncmp(prefix.data, "default", 7) == 0) {
        prefix.len = 0;

    } else {
        if (prefix.len == 0 || prefix.len > 6) {
            goto invalid;
        }

        for (i = 0; i < prefix.len; i++) {
            if (prefix.data[i] < '0' || prefix.data[i] > '9') {
                goto invalid;
            }
        }
    }

    route->prefix = prefix;
    route->upstream = value[n + 1];

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid region prefix \"%V\": 1 to 6 digits of a "
                       "GB/T 2260 code, or \"default\"", &prefix);
    return NGX_CONF_ERROR;
}


/* xregion_dest_profile <region-name> <domain> <profile>; */

static char *
ngx_http_xregion_dest_profile_cmd(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    ngx_int_t                 domain;
    ngx_str_t                *value;
    ngx_uint_t                i;
    ngx_http_xregion_dest_t  *dest;

    value = cf->args->elts;

    domain = ngx_http_xregion_domain(&value[2]);
    if (domain == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown xregion domain \"%V\", "
                           "use medical, transit or gov", &value[2]);
        return NGX_CONF_ERROR;
    }

    dest = xmcf->dests.elts;

    for (i = 0; i < xmcf->dests.nelts; i++) {
        if (dest[i].domain == (ngx_uint_t) domain
            && dest[i].region.len == value[1].len
            && ngx_strncmp(dest[i].region.data, value[1].data,
                           value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate destination profile for region "
                               "\"%V\" in domain \"%V\", first in %V:%ui",
                               &value[1], &value[2], &dest[i].file,
                               dest[i].line);
            return NGX_CONF_ERROR;
        }
    }

    dest = ngx_array_push(&xmcf->dests);
    if (dest == NULL) {
        return NGX_CONF_ERROR;
    }

    dest->region = value[1];
    dest->domain = domain;
    dest->name = value[3];
    dest->profile = NULL;
    dest->file = cf->conf_file->file.name;
    dest->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/* xregion <medical|transit|gov>; */

static char *
ngx_http_xregion(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
{
    ngx_http_xregion_loc_conf_t *xlcf = conf;

    ngx_int_t                      domain;
    ngx_str_t                     *value;
    ngx_http_core_loc_conf_t      *clcf;
    ngx_http_xregion_loc_conf_t  **endpoint;
    ngx_http_xregion_main_conf_t  *xmcf;

    if (xlcf->domain != NGX_CONF_UNSET_UINT) {
        return "is duplicate";
    }

    value = cf->args->elts;

    domain = ngx_http_xregion_domain(&value[1]);
    if (domain == NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown xregion domain \"%V\", "
                           "use medical, transit or gov", &value[1]);
        return NGX_CONF_ERROR;
    }

    xlcf->domain = domain;
    xlcf->file = cf->conf_file->file.name;
    xlcf->line = cf->conf_file->line;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_xregion_handler;
    xlcf->core = clcf;

    xmcf = ngx_http_conf_get_module_main_conf(cf, ngx_http_xregion_module);

    endpoint = ngx_array_push(&xmcf->endpoints);
    if (endpoint == NULL) {
        return NGX_CONF_ERROR;
    }

    *endpoint = xlcf;

    return NGX_CONF_OK;
}


/*
 * xregion_caller_profile <profile | $variable>;
 *
 * A static value is resolved and checked in postconfiguration, when the
 * profiles are loaded wherever xregion_config was written; a value with
 * variables is looked up per request.
 */

static char *
ngx_http_xregion_caller_profile(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_loc_conf_t *xlcf = conf;

    ngx_str_t                         *value;
    ngx_http_compile_complex_value_t   ccv;

    if (xlcf->caller) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "empty xregion caller profile");
        return NGX_CONF_ERROR;
    }

    xlcf->caller = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (xlcf->caller == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = xlcf->caller;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    xlcf->caller_file = cf->conf_file->file.name;
    xlcf->caller_line = cf->conf_file->line;

    return NGX_CONF_OK;
}


static char *
ngx_http_xregion_pass_check(ngx_conf_t *cf, void *post, void *data)
{
    ngx_str_t  *pass = data;

    if (pass->len == 0 || pass->data[0] != '/') {
        return "must be a URI prefix starting with \"/\"";
    }

    while (pass->len > 1 && pass->data[pass->len - 1] == '/') {
        pass->len--;
    }

    if (pass->len == 1) {
        return "must name an internal location, not \"/\"";
    }

    return NGX_CONF_OK;
}
