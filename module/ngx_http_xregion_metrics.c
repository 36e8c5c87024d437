
/*
 * Metrics in Prometheus' text format, counted by every worker into one
 * shared zone ("xregion_metrics"), served by a location of its own:
 *
 *   location = /metrics { xregion_metrics; allow 127.0.0.1; deny all; }
 *
 * Counted when a transaction's answer is ready (the same place its audit
 * record is written, ngx_http_xregion_send()), or when its request ends
 * without one:
 *
 *   xregion_requests_total{domain,txn,origin,dest,outcome}
 *   xregion_request_duration_seconds{domain}     histogram, gateway time
 *   xregion_upstream_duration_seconds{domain}    histogram, the destination's
 *   xregion_errors_total{code}                   the gateway's XR- errors
 *   xregion_cache_total{result}, xregion_idempotency_total{result}
 *   xregion_breaker_state{upstream}, xregion_breaker_opened_total{upstream}
 *
 * and from the other parts: the audit writer's append (lock and write) and
 * sync times, records written and lost; each worker's Redis state and
 * counters (copied into the zone every second, since hiredis lives per
 * worker); the maintenance state (ngx_http_xregion_health.c).
 *
 * The request counters are one array over domain x transaction x origin
 * region x destination region x outcome, indexed from the configuration
 * (an unknown value has the last slot of its dimension: txn="", region
 * "unknown"); counting is one atomic add, no lock.  A reload keeps the
 * counts when the dimensions mean the same (a checksum of the names),
 * else starts them again at zero: Prometheus sees a counter reset.
 */


#include "ngx_http_xregion_module.h"

#include <time.h>


#define NGX_HTTP_XREGION_WORKERS_MAX    64

#define NGX_HTTP_XREGION_H_REQUEST      0
#define NGX_HTTP_XREGION_H_UPSTREAM     3
#define NGX_HTTP_XREGION_H_APPEND       6
#define NGX_HTTP_XREGION_H_SYNC         7
#define NGX_HTTP_XREGION_NHISTS         8

#define NGX_HTTP_XREGION_NBUCKETS       12


/* upper bounds in microseconds; the last is +Inf */
static uint64_t  ngx_http_xregion_request_buckets[NGX_HTTP_XREGION_NBUCKETS] = {
    5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
    5000000, 10000000, (uint64_t) -1
};

static uint64_t  ngx_http_xregion_io_buckets[NGX_HTTP_XREGION_NBUCKETS] = {
    10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 100000,
    (uint64_t) -1
};


typedef struct {
    ngx_atomic_t                bucket[NGX_HTTP_XREGION_NBUCKETS];
    ngx_atomic_t                sum_us;
    ngx_atomic_t                count;
} ngx_http_xregion_hist_t;


typedef struct {
    ngx_atomic_t                pid;        /* 0: no worker */
    ngx_atomic_t                configured;
    ngx_atomic_t                up;
    ngx_atomic_t                commands;
    ngx_atomic_t                errors;
    ngx_atomic_t                timeouts;
    ngx_atomic_t                declined;
    ngx_atomic_t                outages;
} ngx_http_xregion_worker_slot_t;


static ngx_str_t  ngx_http_xregion_cache_results[] = {
    ngx_string("HIT"), ngx_string("MISS"), ngx_string("EXPIRED"),
    ngx_string("BYPASS"), ngx_null_string
};

static ngx_str_t  ngx_http_xregion_idem_results[] = {
    ngx_string("NEW"), ngx_string("REPLAY"), ngx_string("WAITED"),
    ngx_string("CONFLICT"), ngx_string("BUSY"), ngx_string("UNAVAILABLE"),
    ngx_string("BYPASS"), ngx_null_string
};

#define NGX_HTTP_XREGION_NCACHE  4
#define NGX_HTTP_XREGION_NIDEM   7


typedef struct {
    uint32_t                    layout;
    ngx_uint_t                  ncounters;
    time_t                      since;
    ngx_atomic_t                maintenance;
    ngx_http_xregion_hist_t     hist[NGX_HTTP_XREGION_NHISTS];
    ngx_atomic_t                errors[XR_E_LAST];
    ngx_atomic_t                cache[NGX_HTTP_XREGION_NCACHE];
    ngx_atomic_t                idem[NGX_HTTP_XREGION_NIDEM];
    ngx_http_xregion_worker_slot_t  workers[NGX_HTTP_XREGION_WORKERS_MAX];
    ngx_atomic_t                requests[1];    /* ncounters */
} ngx_http_xregion_metrics_sh_t;


typedef struct {
    ngx_shm_zone_t             *zone;
    ngx_http_xregion_metrics_sh_t  *sh;
    uint32_t                    layout;
    ngx_uint_t                  ntxns;      /* per domain, + 1 unknown */
    ngx_uint_t                  nregions;   /* + 1 unknown */
    ngx_uint_t                  ncounters;
    const xr_schema_t          *schemas[NGX_HTTP_XREGION_NDOMAINS];
    ngx_event_t                 tick;
} ngx_http_xregion_metrics_t;


typedef struct {
    ngx_http_request_t         *r;
    ngx_chain_t                *first;
    ngx_chain_t               **last;
    ngx_buf_t                  *b;
} ngx_http_xregion_out_t;


static ngx_int_t ngx_http_xregion_metrics_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_xregion_metrics_handler(ngx_http_request_t *r);
static void ngx_http_xregion_metrics_tick(ngx_event_t *ev);
static void ngx_http_xregion_metrics_slot(void);
static void ngx_http_xregion_hist_add(ngx_http_xregion_hist_t *h,
    uint64_t *bounds, uint64_t us);
static ngx_uint_t ngx_http_xregion_metrics_index(ngx_str_t *names,
    ngx_str_t *value, ngx_uint_t n);
static ngx_uint_t ngx_http_xregion_metrics_region(
    ngx_http_xregion_main_conf_t *xmcf, ngx_str_t *code);
static ngx_int_t ngx_http_xregion_printf(ngx_http_xregion_out_t *o,
    const char *fmt, ...);
static ngx_int_t ngx_http_xregion_print_hist(ngx_http_xregion_out_t *o,
    const char *name, const char *labels, ngx_http_xregion_hist_t *h,
    uint64_t *bounds);
static ngx_int_t ngx_http_xregion_print_requests(ngx_http_xregion_out_t *o,
    ngx_http_xregion_main_conf_t *xmcf, ngx_http_xregion_metrics_t *m);


static ngx_str_t  ngx_http_xregion_metrics_zone_name =
    ngx_string("xregion_metrics");

/* this worker's, for the counting functions called without a conf */
static ngx_http_xregion_metrics_t  *ngx_http_xregion_metrics_worker;


char *
ngx_http_xregion_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_core_loc_conf_t  *clcf;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_xregion_metrics_handler;

    return NGX_CONF_OK;
}


/*
 * Postconfiguration: the zone, sized from the configuration.  Every
 * configuration with xregion_config counts, whether or not a location
 * serves the metrics: a location added by a reload sees the counts.
 */

ngx_int_t
ngx_http_xregion_metrics_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    size_t                       size;
    uint32_t                     crc;
    ngx_uint_t                   d, i;
    xr_config_t                 *cfg;
    const xr_schema_t           *s;
    ngx_http_xregion_metrics_t  *m;

    cfg = xmcf->config;

    if (cfg == NULL) {
        return NGX_OK;
    }

    m = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_metrics_t));
    if (m == NULL) {
        return NGX_ERROR;
    }

    ngx_crc32_init(crc);

    for (d = 0; d < NGX_HTTP_XREGION_NDOMAINS; d++) {
        s = xr_config_schema(cfg,
                             ngx_http_xregion_xstr(&ngx_http_xregion_domains[d]));
        m->schemas[d] = s;

        if (s == NULL) {
            continue;
        }

        if (s->ntxns + 1 > m->ntxns) {
            m->ntxns = s->ntxns + 1;
        }

        for (i = 0; i < s->ntxns; i++) {
            ngx_crc32_update(&crc, (u_char *) s->txns[i].name.data,
                             s->txns[i].name.len);
            ngx_crc32_update(&crc, (u_char *) "\n", 1);
        }
    }

    if (m->ntxns == 0) {
        m->ntxns = 1;
    }

    m->nregions = cfg->nregions + 1;

    for (i = 0; i < cfg->nregions; i++) {
        ngx_crc32_update(&crc, (u_char *) cfg->regions[i].name.data,
                         cfg->regions[i].name.len);
        ngx_crc32_update(&crc, (u_char *) "\n", 1);
    }

    ngx_crc32_final(crc);

    m->layout = crc;
    m->ncounters = NGX_HTTP_XREGION_NDOMAINS * m->ntxns * m->nregions
                   * m->nregions * NGX_HTTP_XREGION_NOUTCOMES;

    size = 8 * ngx_pagesize
           + ngx_align(sizeof(ngx_http_xregion_metrics_sh_t)
                       + m->ncounters * sizeof(ngx_atomic_t), ngx_pagesize);

    m->zone = ngx_shared_memory_add(cf, &ngx_http_xregion_metrics_zone_name,
                                    size, &ngx_http_xregion_module);
    if (m->zone == NULL) {
        return NGX_ERROR;
    }

    m->zone->init = ngx_http_xregion_metrics_init_zone;
    m->zone->data = m;

    xmcf->metrics = m;

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_metrics_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_xregion_metrics_t  *om = data;

    size_t                       len;
    ngx_slab_pool_t             *shpool;
    ngx_http_xregion_metrics_t  *m;

    m = zone->data;
    shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (om && om->sh->layout == m->layout
        && om->sh->ncounters == m->ncounters)
    {
        m->sh = om->sh;
        return NGX_OK;
    }

    if (om == NULL && zone->shm.exists) {
        m->sh = shpool->data;
        return NGX_OK;
    }

    ngx_shmtx_lock(&shpool->mutex);

    if (om) {
        ngx_slab_free_locked(shpool, om->sh);
    }

    len = sizeof(ngx_http_xregion_metrics_sh_t)
          + m->ncounters * sizeof(ngx_atomic_t);

    m->sh = ngx_slab_calloc_locked(shpool, len);

    ngx_shmtx_unlock(&shpool->mutex);

    if (m->sh == NULL) {
        return NGX_ERROR;
    }

    m->sh->layout = m->layout;
    m->sh->ncounters = m->ncounters;
    m->sh->since = ngx_time();
    shpool->data = m->sh;

    return NGX_OK;
}


ngx_int_t
ngx_http_xregion_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_http_xregion_metrics_t  *m;

    m = xmcf->metrics;

    if (m == NULL || m->sh == NULL) {
        return NGX_OK;
    }

    ngx_http_xregion_metrics_worker = m;

    m->tick.handler = ngx_http_xregion_metrics_tick;
    m->tick.data = m;
    m->tick.log = cycle->log;
    m->tick.cancelable = 1;

    ngx_http_xregion_metrics_slot();

    ngx_add_timer(&m->tick, 1000);

    return NGX_OK;
}


void
ngx_http_xregion_metrics_exit_process(void)
{
    ngx_http_xregion_metrics_t  *m;

    m = ngx_http_xregion_metrics_worker;

    if (m && ngx_worker < NGX_HTTP_XREGION_WORKERS_MAX) {
        m->sh->workers[ngx_worker].pid = 0;
    }

    ngx_http_xregion_metrics_worker = NULL;
}


/* Every second: this worker's Redis state into its slot. */

static void
ngx_http_xregion_metrics_tick(ngx_event_t *ev)
{
    ngx_http_xregion_metrics_slot();

    if (!ngx_exiting) {
        ngx_add_timer(ev, 1000);
    }
}


static void
ngx_http_xregion_metrics_slot(void)
{
    ngx_uint_t                       on;
    ngx_file_info_t                  fi;
    ngx_http_xregion_metrics_t      *m;
    ngx_http_xregion_main_conf_t    *xmcf;
    ngx_http_xregion_redis_stats_t  *rs;
    ngx_http_xregion_worker_slot_t  *slot;

    m = ngx_http_xregion_metrics_worker;

    if (m == NULL || ngx_worker >= NGX_HTTP_XREGION_WORKERS_MAX) {
        return;
    }

    xmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_xregion_module);

    /* the maintenance file (xregion_health): every worker looks, one
       second apart at most */

    if (xmcf && xmcf->maintenance_file.len) {
        on = (ngx_file_info(xmcf->maintenance_file.data, &fi)
              != NGX_FILE_ERROR);

        if (on != m->sh->maintenance) {
            m->sh->maintenance = on;

            ngx_log_error(NGX_LOG_NOTICE, ngx_cycle->log, 0,
                          "xregion: maintenance %s (\"%V\" %s): health "
                          "answers %s", on ? "on" : "off",
                          &xmcf->maintenance_file,
                          on ? "exists" : "is gone",
                          on ? "503, draining" : "200 again");
        }
    }

    slot = &m->sh->workers[ngx_worker];
    rs = ngx_http_xregion_redis_stats();

    slot->pid = ngx_pid;
    slot->configured = (xmcf && xmcf->redis) ? 1 : 0;
    slot->up = ngx_http_xregion_redis_ready() ? 1 : 0;
    slot->commands = rs->commands;
    slot->errors = rs->errors;
    slot->timeouts = rs->timeouts;
    slot->declined = rs->declined;
    slot->outages = rs->outages;
}


/* The redis state other workers last reported: configured, any up. */

ngx_int_t
ngx_http_xregion_metrics_redis(ngx_uint_t *configured, ngx_uint_t *up,
    ngx_uint_t *workers)
{
    ngx_uint_t                   i;
    ngx_http_xregion_metrics_t  *m;

    *configured = 0;
    *up = 0;
    *workers = 0;

    m = ngx_http_xregion_metrics_worker;

    if (m == NULL) {
        return NGX_DECLINED;
    }

    for (i = 0; i < NGX_HTTP_XREGION_WORKERS_MAX; i++) {
        if (m->sh->workers[i].pid == 0) {
            continue;
        }

        (*workers)++;
        *configured |= m->sh->workers[i].configured;
        *up += m->sh->workers[i].up;
    }

    return NGX_OK;
}


ngx_uint_t
ngx_http_xregion_metrics_draining(void)
{
    return ngx_http_xregion_metrics_worker
           && ngx_http_xregion_metrics_worker->sh->maintenance;
}


uint64_t
ngx_http_xregion_now_us(void)
{
    struct timespec  ts;

    (void) clock_gettime(CLOCK_MONOTONIC, &ts);

    return (uint64_t) ts.tv_sec * 1000000 + (uint64_t) ts.tv_nsec / 1000;
}


/* The audit writer's times: append (lock and write) and sync. */

void
ngx_http_xregion_metrics_audit(ngx_uint_t sync, uint64_t us)
{
    ngx_http_xregion_metrics_t  *m;

    m = ngx_http_xregion_metrics_worker;

    if (m == NULL) {
        return;
    }

    ngx_http_xregion_hist_add(&m->sh->hist[sync ? NGX_HTTP_XREGION_H_SYNC
                                                : NGX_HTTP_XREGION_H_APPEND],
                              ngx_http_xregion_io_buckets, us);
}


void
ngx_http_xregion_metrics_error(xr_err_e err)
{
    if (ngx_http_xregion_metrics_worker && err > XR_E_NONE
        && err < XR_E_LAST)
    {
        (void) ngx_atomic_fetch_add(
                   &ngx_http_xregion_metrics_worker->sh->errors[err], 1);
    }
}


/* Once per transaction, when its answer is ready or it ends without. */

void
ngx_http_xregion_metrics_count(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    uint64_t                       us;
    ngx_uint_t                     d, t, o, dr, k;
    ngx_time_t                    *tp;
    const xr_stxn_t               *stxn;
    const xr_schema_t             *s;
    ngx_http_xregion_metrics_t    *m;
    ngx_http_xregion_metrics_sh_t *sh;
    ngx_http_xregion_main_conf_t  *xmcf;

    m = ngx_http_xregion_metrics_worker;

    if (m == NULL || ctx->counted) {
        return;
    }

    ctx->counted = 1;
    sh = m->sh;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    d = ctx->domain_index;
    s = m->schemas[d];
    t = m->ntxns - 1;

    if (s && ctx->decoded && ctx->req.txn.len) {
        stxn = xr_schema_txn(s, ctx->req.txn);

        if (stxn) {
            t = stxn - s->txns;
        }
    }

    o = ngx_http_xregion_metrics_region(xmcf, &ctx->origin);
    dr = ngx_http_xregion_metrics_region(xmcf, &ctx->dest_code);

    k = (((d * m->ntxns + t) * m->nregions + o) * m->nregions + dr)
        * NGX_HTTP_XREGION_NOUTCOMES + ngx_http_xregion_outcome_class(ctx);

    (void) ngx_atomic_fetch_add(&sh->requests[k], 1);

    tp = ngx_timeofday();
    us = ((uint64_t) (tp->sec - r->start_sec) * 1000
          + tp->msec - r->start_msec) * 1000;

    ngx_http_xregion_hist_add(&sh->hist[NGX_HTTP_XREGION_H_REQUEST + d],
                              ngx_http_xregion_request_buckets, us);

    if (ctx->upstream_time >= 0) {
        ngx_http_xregion_hist_add(&sh->hist[NGX_HTTP_XREGION_H_UPSTREAM + d],
                                  ngx_http_xregion_request_buckets,
                                  (uint64_t) ctx->upstream_time * 1000);
    }

    k = ngx_http_xregion_metrics_index(ngx_http_xregion_cache_results,
                                       &ctx->cache, NGX_HTTP_XREGION_NCACHE);
    if (k < NGX_HTTP_XREGION_NCACHE) {
        (void) ngx_atomic_fetch_add(&sh->cache[k], 1);
    }

    k = ngx_http_xregion_metrics_index(ngx_http_xregion_idem_results,
                                       &ctx->idempotency,
                                       NGX_HTTP_XREGION_NIDEM);
    if (k < NGX_HTTP_XREGION_NIDEM) {
        (void) ngx_atomic_fetch_add(&sh->idem[k], 1);
    }
}


static void
ngx_http_xregion_hist_add(ngx_http_xregion_hist_t *h, uint64_t *bounds,
    uint64_t us)
{
    ngx_uint_t  i;

    for (i = 0; i < NGX_HTTP_XREGION_NBUCKETS - 1; i++) {
        if (us <= bounds[i]) {
            break;
        }
    }

    /* buckets are stored apart; the cumulative counts are summed when read */

    (void) ngx_atomic_fetch_add(&h->bucket[i], 1);
    (void) ngx_atomic_fetch_add(&h->sum_us, us);
    (void) ngx_atomic_fetch_add(&h->count, 1);
}


static ngx_uint_t
ngx_http_xregion_metrics_index(ngx_str_t *names, ngx_str_t *value,
    ngx_uint_t n)
{
    ngx_uint_t  i;

    for (i = 0; i < n; i++) {
        if (names[i].len == value->len
            && ngx_strncmp(names[i].data, value->data, value->len) == 0)
        {
            return i;
        }
    }

    return n;
}


static ngx_uint_t
ngx_http_xregion_metrics_region(ngx_http_xregion_main_conf_t *xmcf,
    ngx_str_t *code)
{
    const xr_region_t  *region;

    if (code->len == 0) {
        return xmcf->config->nregions;
    }

    region = ngx_http_xregion_region_of(xmcf, ngx_http_xregion_xstr(code));

    return region ? (ngx_uint_t) (region - xmcf->config->regions)
                  : xmcf->config->nregions;
}


/* ---- the exposition --------------------------------------------------- */

static ngx_int_t
ngx_http_xregion_metrics_handler(ngx_http_request_t *r)
{
    ngx_int_t                         rc;
    ngx_uint_t                        i, d, h, configured, up, workers;
    ngx_http_xregion_out_t            o;
    ngx_http_xregion_metrics_t       *m;
    ngx_http_xregion_metrics_sh_t    *sh;
    ngx_http_xregion_main_conf_t     *xmcf;
    ngx_http_xregion_worker_slot_t   *ws;
    ngx_http_xregion_audit_status_t   as;
    ngx_http_xregion_breaker_info_t   bi;
    const xr_error_info_t            *info;
    char                              labels[64];

    static struct {
        const char  *name;
        const char  *help;
        ngx_uint_t   first;
    } hists[2] = {
        { "xregion_request_duration_seconds",
          "Time from the request's arrival to its answer.",
          NGX_HTTP_XREGION_H_REQUEST },
        { "xregion_upstream_duration_seconds",
          "Time the destination took, for transactions sent to it.",
          NGX_HTTP_XREGION_H_UPSTREAM }
    };

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);
    m = xmcf->metrics;

    if (m == NULL || m->sh == NULL) {
        return NGX_HTTP_NOT_FOUND;
    }

    sh = m->sh;

    ngx_memzero(&o, sizeof(ngx_http_xregion_out_t));
    o.r = r;
    o.last = &o.first;

    /* this worker's Redis figures are current, the others' a second old */
    ngx_http_xregion_metrics_slot();

    if (ngx_http_xregion_print_requests(&o, xmcf, m) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (h = 0; h < 2; h++) {
        if (ngx_http_xregion_printf(&o, "# HELP %s %s\n# TYPE %s histogram\n",
                                    hists[h].name, hists[h].help,
                                    hists[h].name)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        for (d = 0; d < NGX_HTTP_XREGION_NDOMAINS; d++) {
            ngx_snprintf((u_char *) labels, sizeof(labels),
                         "domain=\"%V\"%Z", &ngx_http_xregion_domains[d]);

            if (ngx_http_xregion_print_hist(&o, hists[h].name, labels,
                                            &sh->hist[hists[h].first + d],
                                            ngx_http_xregion_request_buckets)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }
    }

    if (ngx_http_xregion_printf(&o,
            "# HELP xregion_errors_total The gateway's own errors, by code "
            "(docs/errors.md).\n"
            "# TYPE xregion_errors_total counter\n")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 1; i < XR_E_LAST; i++) {
        if (sh->errors[i] == 0) {
            continue;
        }

        info = xr_error_info((xr_err_e) i);

        if (ngx_http_xregion_printf(&o, "xregion_errors_total{code=\"%s\"} "
                                    "%uA\n", info->name, sh->errors[i])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_xregion_printf(&o,
            "# HELP xregion_cache_total Cacheable queries by what the cache "
            "did.\n# TYPE xregion_cache_total counter\n")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < NGX_HTTP_XREGION_NCACHE; i++) {
        if (ngx_http_xregion_printf(&o, "xregion_cache_total{result=\"%V\"} "
                                    "%uA\n", &ngx_http_xregion_cache_results[i],
                                    sh->cache[i])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_xregion_printf(&o,
            "# HELP xregion_idempotency_total Money transactions by what "
            "the idempotency store did (REPLAY: answered with the recorded "
            "answer).\n# TYPE xregion_idempotency_total counter\n")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < NGX_HTTP_XREGION_NIDEM; i++) {
        if (ngx_http_xregion_printf(&o,
                "xregion_idempotency_total{result=\"%V\"} %uA\n",
                &ngx_http_xregion_idem_results[i], sh->idem[i])
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* Redis, per worker: each has its own connection */

    (void) ngx_http_xregion_metrics_redis(&configured, &up, &workers);

    if (ngx_http_xregion_printf(&o,
            "# HELP xregion_redis_up Whether the worker's connection to "
            "Redis is ready.\n# TYPE xregion_redis_up gauge\n")
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    for (i = 0; i < NGX_HTTP_XREGION_WORKERS_MAX; i++) {
        ws = &sh->workers[i];

        if (ws->pid == 0 || !ws->configured) {
            continue;
        }

        if (ngx_http_xregion_printf(&o,
                "xregion_redis_up{worker=\"%ui\"} %uA\n"
                "xregion_redis_commands_total{worker=\"%ui\"} %uA\n"
                "xregion_redis_errors_total{worker=\"%ui\"} %uA\n"
                "xregion_redis_timeouts_total{worker=\"%ui\"} %uA\n"
                "xregion_redis_declined_total{worker=\"%ui\"} %uA\n"
                "xregion_redis_outages_total{worker=\"%ui\"} %uA\n",
                i, ws->up, i, ws->commands, i, ws->errors, i, ws->timeouts,
                i, ws->declined, i, ws->outages)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* the audit trail */

    if (ngx_http_xregion_audit_status(xmcf, &as) == NGX_OK) {
        if (ngx_http_xregion_printf(&o,
                "# HELP xregion_audit_records_total Audit records written "
                "(lost: not written).\n"
                "# TYPE xregion_audit_records_total counter\n"
                "xregion_audit_records_total %uL\n"
                "# TYPE xregion_audit_lost_total counter\n"
                "xregion_audit_lost_total %uL\n"
                "# HELP xregion_audit_writable Whether the audit log takes "
                "records (0: money transactions are refused).\n"
                "# TYPE xregion_audit_writable gauge\n"
                "xregion_audit_writable %d\n"
                "# TYPE xregion_audit_head_seq gauge\n"
                "xregion_audit_head_seq %uL\n"
                "# TYPE xregion_audit_durable_seq gauge\n"
                "xregion_audit_durable_seq %uL\n"
                "# TYPE xregion_audit_signed_seq gauge\n"
                "xregion_audit_signed_seq %uL\n"
                "# HELP xregion_audit_append_seconds Lock, seal and write "
                "of one audit entry.\n"
                "# TYPE xregion_audit_append_seconds histogram\n",
                as.records, as.lost, !(as.failing || as.low_space),
                as.head, as.durable, as.signed_upto)
            != NGX_OK
            || ngx_http_xregion_print_hist(&o, "xregion_audit_append_seconds",
                   "", &sh->hist[NGX_HTTP_XREGION_H_APPEND],
                   ngx_http_xregion_io_buckets)
               != NGX_OK
            || ngx_http_xregion_printf(&o,
                   "# HELP xregion_audit_sync_seconds One group commit's "
                   "fdatasync().\n"
                   "# TYPE xregion_audit_sync_seconds histogram\n")
               != NGX_OK
            || ngx_http_xregion_print_hist(&o, "xregion_audit_sync_seconds",
                   "", &sh->hist[NGX_HTTP_XREGION_H_SYNC],
                   ngx_http_xregion_io_buckets)
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    /* the destinations' circuit breakers (ngx_http_xregion_breaker.c) */

    for (i = 0; ngx_http_xregion_breaker_info(i, &bi) == NGX_OK; i++) {
        if (i == 0
            && ngx_http_xregion_printf(&o,
                   "# HELP xregion_breaker_state A destination's circuit "
                   "breaker: 0 closed, 1 open, 2 half-open.\n"
                   "# TYPE xregion_breaker_state gauge\n"
                   "# TYPE xregion_breaker_opened_total counter\n")
               != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (ngx_http_xregion_printf(&o,
                "xregion_breaker_state{upstream=\"%V\"} %ui\n"
                "xregion_breaker_opened_total{upstream=\"%V\"} %ui\n",
                &bi.upstream,
                bi.state == NGX_HTTP_XREGION_BREAKER_OPEN ? (ngx_uint_t) 1
                : bi.state == NGX_HTTP_XREGION_BREAKER_HALF_OPEN
                  ? (ngx_uint_t) 2 : (ngx_uint_t) 0,
                &bi.upstream, bi.opened)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    if (ngx_http_xregion_printf(&o,
            "# HELP xregion_maintenance Whether the instance is being "
            "drained (health answers 503).\n"
            "# TYPE xregion_maintenance gauge\n"
            "xregion_maintenance %uA\n"
            "# TYPE xregion_start_time_seconds gauge\n"
            "xregion_start_time_seconds %T\n",
            sh->maintenance, sh->since)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type,
                "text/plain; version=0.0.4; charset=utf-8");
    r->headers_out.content_length_n = -1;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    if (o.b == NULL) {
        return ngx_http_send_special(r, NGX_HTTP_LAST);
    }

    o.b->last_buf = 1;
    o.b->last_in_chain = 1;

    return ngx_http_output_filter(r, o.first);
}


/* Only the request counters that are not zero: the array is sparse. */

static ngx_int_t
ngx_http_xregion_print_requests(ngx_http_xregion_out_t *o,
    ngx_http_xregion_main_conf_t *xmcf, ngx_http_xregion_metrics_t *m)
{
    ngx_uint_t          k, rest, d, t, or, dr, oc;
    ngx_atomic_uint_t   v;
    xr_str_t            txn, on, dn;
    const xr_region_t  *regions;

    static xr_str_t  unknown = xr_string("unknown");
    static xr_str_t  none = xr_string("");

    if (ngx_http_xregion_printf(o,
            "# HELP xregion_requests_total Transactions by domain, "
            "transaction, origin and destination region and outcome "
            "(docs/regulators.md).\n"
            "# TYPE xregion_requests_total counter\n")
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    regions = xmcf->config->regions;

    for (k = 0; k < m->ncounters; k++) {
        v = m->sh->requests[k];

        if (v == 0) {
            continue;
        }

        rest = k;
        oc = rest % NGX_HTTP_XREGION_NOUTCOMES;
        rest /= NGX_HTTP_XREGION_NOUTCOMES;
        dr = rest % m->nregions;
        rest /= m->nregions;
        or = rest % m->nregions;
        rest /= m->nregions;
        t = rest % m->ntxns;
        d = rest / m->ntxns;

        txn = (m->schemas[d] && t < m->schemas[d]->ntxns)
              ? m->schemas[d]->txns[t].name : none;
        on = or < m->nregions - 1 ? regions[or].name : unknown;
        dn = dr < m->nregions - 1 ? regions[dr].name : unknown;

        if (ngx_http_xregion_printf(o,
                "xregion_requests_total{domain=\"%V\",txn=\"%*s\","
                "origin=\"%*s\",dest=\"%*s\",outcome=\"%V\"} %uA\n",
                &ngx_http_xregion_domains[d], txn.len, txn.data,
                on.len, on.data, dn.len, dn.data,
                &ngx_http_xregion_outcomes[oc], v)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_print_hist(ngx_http_xregion_out_t *o, const char *name,
    const char *labels, ngx_http_xregion_hist_t *h, uint64_t *bounds)
{
    uint64_t    cum;
    ngx_uint_t  i;
    const char *sep;

    sep = labels[0] ? "," : "";
    cum = 0;

    for (i = 0; i < NGX_HTTP_XREGION_NBUCKETS; i++) {
        cum += h->bucket[i];

        if (i == NGX_HTTP_XREGION_NBUCKETS - 1) {
            if (ngx_http_xregion_printf(o, "%s_bucket{%s%sle=\"+Inf\"} %uL\n",
                                        name, labels, sep, cum)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

            break;
        }

        if (ngx_http_xregion_printf(o, "%s_bucket{%s%sle=\"%uL.%06uL\"} "
                                    "%uL\n", name, labels, sep,
                                    bounds[i] / 1000000, bounds[i] % 1000000,
                                    cum)
            != NGX_OK)
        {
            return NGX_ERROR;
        }
    }

    return ngx_http_xregion_printf(o, "%s_sum{%s} %uA.%06uA\n"
                                   "%s_count{%s} %uA\n",
                                   name, labels, h->sum_us / 1000000,
                                   h->sum_us % 1000000, name, labels,
                                   h->count);
}


/* Appends to the answer's buffers, 16 KB at a time. */

static ngx_int_t
ngx_http_xregion_printf(ngx_http_xregion_out_t *o, const char *fmt, ...)
{
    u_char       buf[2048], *p;
    size_t       len, n;
    va_list      args;
    ngx_chain_t *cl;

    va_start(args, fmt);
    p = ngx_vslprintf(buf, buf + sizeof(buf), fmt, args);
    va_end(args);

    len = p - buf;
    p = buf;

    while (len) {
        if (o->b == NULL || o->b->last == o->b->end) {
            o->b = ngx_create_temp_buf(o->r->pool, 16384);
            if (o->b == NULL) {
                return NGX_ERROR;
            }

            cl = ngx_alloc_chain_link(o->r->pool);
            if (cl == NULL) {
                return NGX_ERROR;
            }

            cl->buf = o->b;
            cl->next = NULL;
            *o->last = cl;
            o->last = &cl->next;
        }

        n = ngx_min(len, (size_t) (o->b->end - o->b->last));
        o->b->last = ngx_cpymem(o->b->last, p, n);
        p += n;
        len -= n;
    }

    return NGX_OK;
}
