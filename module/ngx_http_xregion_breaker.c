
/*
 * A circuit breaker per destination:
 *
 *   xregion_breaker failures=<n> window=<time> open=<time>
 *                   [max_open=<time>] [probes=<n>] | off;
 *
 * A destination is an upstream{} block the routes name: the state of each
 * is kept in the shared memory zone "xregion_breaker", one slot per
 * upstream laid out at configuration time, so that every worker sees one
 * state.  The slab pool's mutex guards the slots.  The parameters are the
 * location's: locations that send to one upstream share its state and
 * judge it each by their own line.
 *
 *   CLOSED      requests go through.  A failure of the exchange with the
 *               destination (XR-UPSTREAM-REFUSED, -TIMEOUT, -ERROR,
 *               -BAD-ANSWER) counts; any answer the destination gives,
 *               a business refusal included, ends the run.  failures=
 *               failures in a row, all within window= of the first of
 *               them, open the breaker (a run older than window= starts
 *               again at the next failure).
 *   OPEN        for open=, doubled at every re-opening up to max_open=:
 *               requests are refused with XR-UNAVAILABLE and Retry-After
 *               (the seconds until half-open), before any Redis step and
 *               before anything is sent.
 *   HALF_OPEN   once the back-off is over: the next request goes through
 *               as a probe, one at a time across the workers; the others
 *               are refused (Retry-After: 1).  A probe that fails opens it
 *               again, longer; probes= probes in a row that succeed close
 *               it.  A probe that ends without reaching the destination (a
 *               cache hit, a refusal further on, a caller gone) frees its
 *               turn; a probe never heard of again (its worker died) holds
 *               it for the location's xregion_timeout at most.
 *
 * The transitions are lazy: OPEN becomes HALF_OPEN when a request (or the
 * read API) looks after the back-off, no timer.  Every transition and every
 * probe taken changes the slot's generation: an outcome is counted only by
 * the generation that admitted its request, so requests still in flight
 * when the breaker opened do not count against the next period.  Time is
 * ngx_current_msec: the system's monotonic clock, one for every worker.
 *
 * Opening, re-opening and closing are logged at warn, naming the upstream;
 * half-opening at info.  $xregion_breaker is what the request found:
 * CLOSED, OPEN, HALF_OPEN (refused while a probe is out), PROBE.
 */


#include "ngx_http_xregion_module.h"


#define NGX_HTTP_XREGION_BREAKER_MAX_FAILURES  100000
#define NGX_HTTP_XREGION_BREAKER_MAX_PROBES    1000
#define NGX_HTTP_XREGION_BREAKER_MAX_TIME      86400000     /* 1 day, ms */

/* what a request found; beyond the states of the read API */
#define NGX_HTTP_XREGION_BREAKER_PROBE         4


/* One xregion_breaker line (not off). */
typedef struct {
    ngx_uint_t                         failures;
    ngx_msec_t                         window;
    ngx_msec_t                         open;
    ngx_msec_t                         max_open;
    ngx_uint_t                         probes;
    ngx_str_t                          file;
    ngx_uint_t                         line;
} ngx_http_xregion_breaker_conf_t;


/* In shared memory: the state of one upstream. */
typedef struct {
    ngx_uint_t                         state;
    ngx_uint_t                         fails;       /* CLOSED: in a row */
    ngx_msec_t                         first_fail;  /* when the run began */
    ngx_msec_t                         open_until;  /* OPEN: then half-open */
    ngx_msec_t                         backoff;     /* OPEN: this opening's */
    ngx_uint_t                         probes_ok;   /* HALF_OPEN */
    ngx_msec_t                         probe_until; /* HALF_OPEN: a probe is
                                                       out until; 0: none */
    ngx_uint_t                         opened;      /* re-openings too */
    uint64_t                           gen;
} ngx_http_xregion_breaker_slot_t;


typedef struct {
    uint32_t                           layout;
    ngx_uint_t                         nslots;
    ngx_http_xregion_breaker_slot_t    slot[1];
} ngx_http_xregion_breaker_sh_t;


/* Per configuration: the zone, and which slot each route sends to. */
typedef struct {
    ngx_shm_zone_t                    *shm_zone;
    ngx_slab_pool_t                   *shpool;
    ngx_http_xregion_breaker_sh_t     *sh;
    uint32_t                           layout;      /* crc32 of the names */
    ngx_uint_t                         nslots;
    ngx_str_t                         *names;       /* [nslots] upstreams */
    ngx_uint_t                        *route_slot;  /* [xmcf->routes.nelts]
                                                     */
} ngx_http_xregion_breaker_zone_t;


/* What changed, logged once the lock is released. */
typedef enum {
    NGX_HTTP_XREGION_BREAKER_SAME = 0,
    NGX_HTTP_XREGION_BREAKER_OPENS,
    NGX_HTTP_XREGION_BREAKER_REOPENS,
    NGX_HTTP_XREGION_BREAKER_CLOSES,
    NGX_HTTP_XREGION_BREAKER_HALF_OPENS
} ngx_http_xregion_breaker_event_e;


static ngx_int_t ngx_http_xregion_breaker_param(ngx_conf_t *cf,
    ngx_str_t *value, const char *name, ngx_uint_t is_time, ngx_int_t max,
    ngx_int_t *out);
static ngx_int_t ngx_http_xregion_breaker_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_http_xregion_breaker_zone_t *ngx_http_xregion_breaker_zone(void);
static void ngx_http_xregion_breaker_look(
    ngx_http_xregion_breaker_slot_t *s, ngx_msec_t now,
    ngx_http_xregion_breaker_event_e *event);
static void ngx_http_xregion_breaker_log(ngx_log_t *log,
    ngx_http_xregion_breaker_zone_t *z, ngx_uint_t i,
    ngx_http_xregion_breaker_event_e event, ngx_msec_t backoff,
    ngx_uint_t n, xr_err_e err, ngx_http_xregion_breaker_conf_t *bc);


static ngx_str_t  ngx_http_xregion_breaker_zone_name =
    ngx_string("xregion_breaker");

static ngx_str_t  ngx_http_xregion_breaker_names[] = {
    ngx_null_string,
    ngx_string("CLOSED"),
    ngx_string("OPEN"),
    ngx_string("HALF_OPEN"),
    ngx_string("PROBE")
};


/* directives */

/*
 * xregion_breaker failures=<n> window=<time> open=<time> [max_open=<time>]
 *                 [probes=<n>] | off;
 *
 * conf: the location's; ->breaker is NGX_CONF_UNSET_PTR until set, NULL
 * for off.
 */

char *
ngx_http_xregion_breaker_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_loc_conf_t *xlcf = conf;

    ngx_int_t                         n, failures, window, open, max_open,
                                      probes;
    ngx_str_t                        *value;
    ngx_uint_t                        i;
    ngx_http_xregion_breaker_conf_t  *bc;

    if (xlcf->breaker != NGX_CONF_UNSET_PTR) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2
        && value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0)
    {
        xlcf->breaker = NULL;
        return NGX_CONF_OK;
    }

    failures = NGX_CONF_UNSET;
    window = NGX_CONF_UNSET;
    open = NGX_CONF_UNSET;
    max_open = NGX_CONF_UNSET;
    probes = NGX_CONF_UNSET;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "failures=", 9) == 0) {
            n = ngx_http_xregion_breaker_param(cf, &value[i], "failures", 0,
                                        NGX_HTTP_XREGION_BREAKER_MAX_FAILURES,
                                        &failures);

        } else if (ngx_strncmp(value[i].data, "window=", 7) == 0) {
            n = ngx_http_xregion_breaker_param(cf, &value[i], "window", 1,
                                           NGX_HTTP_XREGION_BREAKER_MAX_TIME,
                                           &window);

        } else if (ngx_strncmp(value[i].data, "open=", 5) == 0) {
            n = ngx_http_xregion_breaker_param(cf, &value[i], "open", 1,
                                           NGX_HTTP_XREGION_BREAKER_MAX_TIME,
                                           &open);

        } else if (ngx_strncmp(value[i].data, "max_open=", 9) == 0) {
            n = ngx_http_xregion_breaker_param(cf, &value[i], "max_open", 1,
                                           NGX_HTTP_XREGION_BREAKER_MAX_TIME,
                                           &max_open);

        } else if (ngx_strncmp(value[i].data, "probes=", 7) == 0) {
            n = ngx_http_xregion_breaker_param(cf, &value[i], "probes", 0,
                                          NGX_HTTP_XREGION_BREAKER_MAX_PROBES,
                                          &probes);

        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "\"failures=\", \"window=\", \"open=\", "
                               "\"max_open=\", \"probes=\" or only \"off\"",
                               &value[i]);
            return NGX_CONF_ERROR;
        }

        if (n != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (failures == NGX_CONF_UNSET || window == NGX_CONF_UNSET
        || open == NGX_CONF_UNSET)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_breaker\" needs \"failures=\", "
                           "\"window=\" and \"open=\", or \"off\"");
        return NGX_CONF_ERROR;
    }

    if (max_open == NGX_CONF_UNSET) {
        max_open = ngx_min(8 * open, NGX_HTTP_XREGION_BREAKER_MAX_TIME);

    } else if (max_open < open) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"max_open=\" (%i ms) is shorter than \"open=\" "
                           "(%i ms)", max_open, open);
        return NGX_CONF_ERROR;
    }

    bc = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_breaker_conf_t));
    if (bc == NULL) {
        return NGX_CONF_ERROR;
    }

    bc->failures = failures;
    bc->window = window;
    bc->open = open;
    bc->max_open = max_open;
    bc->probes = probes == NGX_CONF_UNSET ? 1 : (ngx_uint_t) probes;
    bc->file = cf->conf_file->file.name;
    bc->line = cf->conf_file->line;

    xlcf->breaker = bc;

    return NGX_CONF_OK;
}


/* name=<number> (1 to max) or name=<time> (1 ms to max ms), once. */

static ngx_int_t
ngx_http_xregion_breaker_param(ngx_conf_t *cf, ngx_str_t *value,
    const char *name, ngx_uint_t is_time, ngx_int_t max, ngx_int_t *out)
{
    size_t     len;
    ngx_int_t  n;
    ngx_str_t  s;

    len = ngx_strlen(name) + 1;

    if (*out != NGX_CONF_UNSET) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "duplicate parameter \"%V\"", value);
        return NGX_ERROR;
    }

    s.data = value->data + len;
    s.len = value->len - len;

    if (s.len == 0) {
        n = NGX_ERROR;

    } else if (is_time) {
        n = ngx_parse_time(&s, 0);

    } else {
        n = ngx_atoi(s.data, s.len);
    }

    if (n <= 0 || n > max) {
        if (is_time) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid %s \"%V\": a time from 1ms to 1d",
                               name, value);
        } else {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid %s \"%V\": 1 to %i", name, value,
                               max);
        }

        return NGX_ERROR;
    }

    *out = n;

    return NGX_OK;
}


/* postconfiguration */

/*
 * When some endpoint has a breaker: one slot per upstream the routes name
 * (upstream names are case-insensitive, as upstream{} lookups are), and
 * the slot of every route.
 */

ngx_int_t
ngx_http_xregion_breaker_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    size_t                            size;
    uint32_t                          crc;
    ngx_uint_t                        i, j, used;
    ngx_http_xregion_route_t         *route;
    ngx_http_xregion_loc_conf_t     **endpoints;
    ngx_http_xregion_breaker_zone_t  *z;

    used = 0;
    endpoints = xmcf->endpoints.elts;

    for (i = 0; i < xmcf->endpoints.nelts; i++) {
        if (endpoints[i]->breaker) {
            used = 1;
        }
    }

    if (!used || xmcf->routes.nelts == 0) {
        return NGX_OK;
    }

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_breaker_zone_t));
    if (z == NULL) {
        return NGX_ERROR;
    }

    route = xmcf->routes.elts;

    z->names = ngx_palloc(cf->pool, xmcf->routes.nelts * sizeof(ngx_str_t));
    z->route_slot = ngx_palloc(cf->pool,
                               xmcf->routes.nelts * sizeof(ngx_uint_t));
    if (z->names == NULL || z->route_slot == NULL) {
        return NGX_ERROR;
    }

    ngx_crc32_init(crc);

    for (i = 0; i < xmcf->routes.nelts; i++) {

        for (j = 0; j < z->nslots; j++) {
            if (z->names[j].len == route[i].upstream.len
                && ngx_strncasecmp(z->names[j].data, route[i].upstream.data,
                                   z->names[j].len)
                   == 0)
            {
                break;
            }
        }

        if (j == z->nslots) {
            z->names[z->nslots++] = route[i].upstream;
            ngx_crc32_update(&crc, route[i].upstream.data,
                             route[i].upstream.len);
            ngx_crc32_update(&crc, (u_char *) "\n", 1);
        }

        z->route_slot[i] = j;
    }

    ngx_crc32_final(crc);
    z->layout = crc;

    /* the slab pool's own pages, and room for the slots */

    size = 8 * ngx_pagesize
           + ngx_align(sizeof(ngx_http_xregion_breaker_sh_t)
                       + z->nslots * sizeof(ngx_http_xregion_breaker_slot_t),
                       ngx_pagesize);

    z->shm_zone = ngx_shared_memory_add(cf,
                                        &ngx_http_xregion_breaker_zone_name,
                                        size, &ngx_http_xregion_module);
    if (z->shm_zone == NULL) {
        return NGX_ERROR;
    }

    z->shm_zone->init = ngx_http_xregion_breaker_init_zone;
    z->shm_zone->data = z;

    xmcf->breaker_zone = z;

    return NGX_OK;
}


/* A reload keeps the states when the upstreams are the same, in order. */

static ngx_int_t
ngx_http_xregion_breaker_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_xregion_breaker_zone_t  *oz = data;

    size_t                            len;
    ngx_uint_t                        i;
    ngx_http_xregion_breaker_zone_t  *z;

    z = shm_zone->data;
    z->shpool = (ngx_slab_pool_t *) shm_zone->shm.addr;

    if (oz && oz->sh->layout == z->layout && oz->sh->nslots == z->nslots) {
        z->sh = oz->sh;
        return NGX_OK;
    }

    if (oz == NULL && shm_zone->shm.exists) {
        z->sh = z->shpool->data;
        return NGX_OK;
    }

    ngx_shmtx_lock(&z->shpool->mutex);

    if (oz) {
        ngx_slab_free_locked(z->shpool, oz->sh);
    }

    len = sizeof(ngx_http_xregion_breaker_sh_t)
          + z->nslots * sizeof(ngx_http_xregion_breaker_slot_t);

    z->sh = ngx_slab_calloc_locked(z->shpool, len);

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->sh->layout = z->layout;
    z->sh->nslots = z->nslots;

    for (i = 0; i < z->nslots; i++) {
        z->sh->slot[i].state = NGX_HTTP_XREGION_BREAKER_CLOSED;
    }

    z->shpool->data = z->sh;

    return NGX_OK;
}


/* the request */

/*
 * Once the route is known, before any Redis step: NGX_DECLINED, go on
 * (ctx->breaker_conf set when the outcome is to be told); else the rc of
 * the XR-UNAVAILABLE answer.
 */

ngx_int_t
ngx_http_xregion_breaker(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    ngx_uint_t                         i, found;
    ngx_msec_t                         now, wait;
    ngx_msec_int_t                     left;
    ngx_http_xregion_breaker_slot_t   *s;
    ngx_http_xregion_breaker_conf_t   *bc;
    ngx_http_xregion_breaker_zone_t   *z;
    ngx_http_xregion_loc_conf_t       *xlcf;
    ngx_http_xregion_main_conf_t      *xmcf;
    ngx_http_xregion_breaker_event_e   event;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);
    bc = xlcf->breaker;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);
    z = xmcf->breaker_zone;

    if (bc == NULL || z == NULL || ctx->route == NULL) {
        return NGX_DECLINED;
    }

    i = z->route_slot[ctx->route
                      - (ngx_http_xregion_route_t *) xmcf->routes.elts];

    now = ngx_current_msec;
    wait = 0;
    event = NGX_HTTP_XREGION_BREAKER_SAME;

    ngx_shmtx_lock(&z->shpool->mutex);

    s = &z->sh->slot[i];

    ngx_http_xregion_breaker_look(s, now, &event);

    switch (s->state) {

    case NGX_HTTP_XREGION_BREAKER_OPEN:
        found = NGX_HTTP_XREGION_BREAKER_OPEN;
        wait = s->open_until - now;
        break;

    case NGX_HTTP_XREGION_BREAKER_HALF_OPEN:
        left = (ngx_msec_int_t) (s->probe_until - now);

        if (s->probe_until && left > 0) {
            found = NGX_HTTP_XREGION_BREAKER_HALF_OPEN;
            break;
        }

        /* this request is the probe, for its xregion_timeout at most */

        found = NGX_HTTP_XREGION_BREAKER_PROBE;
        s->probe_until = now + xlcf->timeout;
        s->gen++;
        break;

    default: /* NGX_HTTP_XREGION_BREAKER_CLOSED */
        found = NGX_HTTP_XREGION_BREAKER_CLOSED;
        break;
    }

    ctx->breaker_gen = s->gen;

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_http_xregion_breaker_log(r->connection->log, z, i, event, 0, 0,
                                 XR_E_NONE, bc);

    ctx->breaker = ngx_http_xregion_breaker_names[found];
    ctx->breaker_slot = i;

    if (found == NGX_HTTP_XREGION_BREAKER_CLOSED
        || found == NGX_HTTP_XREGION_BREAKER_PROBE)
    {
        ctx->breaker_conf = bc;
        ctx->breaker_probe = (found == NGX_HTTP_XREGION_BREAKER_PROBE);
        return NGX_DECLINED;
    }

    /* Retry-After: when it is half-open, in whole seconds, at least 1 */

    ctx->retry_after = (ngx_uint_t) ((wait + 999) / 1000);

    if (ctx->retry_after == 0) {
        ctx->retry_after = 1;
    }

    if (found == NGX_HTTP_XREGION_BREAKER_OPEN) {
        ngx_http_xregion_detail(r, ctx, "breaker open for %M ms more, "
                                "xregion_breaker in %V:%ui", wait, &bc->file,
                                bc->line);
    } else {
        ngx_http_xregion_detail(r, ctx, "breaker half-open, a probe is "
                                "out, xregion_breaker in %V:%ui", &bc->file,
                                bc->line);
    }

    return ngx_http_xregion_answer_error(r, ctx, XR_E_UNAVAILABLE,
               "%V is unavailable after repeated failures, retry after "
               "%ui s; nothing was sent", &ctx->dest_name, ctx->retry_after);
}


/*
 * The outcome of a request the breaker let through: err XR_E_NONE, the
 * destination answered (whatever it said); else how the exchange failed.
 * Told once; a request whose generation is gone changes nothing.
 */

void
ngx_http_xregion_breaker_outcome(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_err_e err)
{
    ngx_uint_t                         failed, n;
    ngx_msec_t                         now, backoff;
    ngx_http_xregion_breaker_slot_t   *s;
    ngx_http_xregion_breaker_conf_t   *bc;
    ngx_http_xregion_breaker_zone_t   *z;
    ngx_http_xregion_main_conf_t      *xmcf;
    ngx_http_xregion_breaker_event_e   event;

    bc = ctx->breaker_conf;

    if (bc == NULL || ctx->breaker_done) {
        return;
    }

    switch (err) {

    case XR_E_NONE:
        failed = 0;
        break;

    case XR_E_UPSTREAM_REFUSED:
    case XR_E_UPSTREAM_TIMEOUT:
    case XR_E_UPSTREAM_ERROR:
    case XR_E_UPSTREAM_BAD_ANSWER:
        failed = 1;
        break;

    default:
        /* not the destination's doing: a probe only frees its turn */
        ngx_http_xregion_breaker_release(ctx);
        ctx->breaker_done = 1;
        return;
    }

    ctx->breaker_done = 1;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);
    z = xmcf->breaker_zone;

    now = ngx_current_msec;
    event = NGX_HTTP_XREGION_BREAKER_SAME;
    backoff = 0;
    n = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

    s = &z->sh->slot[ctx->breaker_slot];

    if (s->gen != ctx->breaker_gen) {
        goto done;
    }

    if (ctx->breaker_probe) {
        s->probe_until = 0;

        if (failed) {
            s->backoff = ngx_min(ngx_max(s->backoff, bc->open) * 2,
                                 bc->max_open);
            goto open;
        }

        if (++s->probes_ok >= bc->probes) {
            n = s->probes_ok;
            s->state = NGX_HTTP_XREGION_BREAKER_CLOSED;
            s->fails = 0;
            s->backoff = 0;
            s->gen++;
            event = NGX_HTTP_XREGION_BREAKER_CLOSES;
        }

        goto done;
    }

    if (s->state != NGX_HTTP_XREGION_BREAKER_CLOSED) {
        goto done;
    }

    if (!failed) {
        s->fails = 0;
        goto done;
    }

    if (s->fails == 0 || now - s->first_fail > bc->window) {
        s->fails = 0;
        s->first_fail = now;
    }

    if (++s->fails < bc->failures) {
        goto done;
    }

    n = s->fails;
    s->fails = 0;
    s->backoff = bc->open;

open:

    if (event == NGX_HTTP_XREGION_BREAKER_SAME) {
        event = ctx->breaker_probe ? NGX_HTTP_XREGION_BREAKER_REOPENS
                                   : NGX_HTTP_XREGION_BREAKER_OPENS;
    }

    backoff = s->backoff;
    s->state = NGX_HTTP_XREGION_BREAKER_OPEN;
    s->open_until = now + s->backoff;
    s->opened++;
    s->gen++;

done:

    ngx_shmtx_unlock(&z->shpool->mutex);

    ngx_http_xregion_breaker_log(r->connection->log, z, ctx->breaker_slot,
                                 event, backoff, n, err, bc);
}


/*
 * A probe that ends without an outcome (from the request's cleanup, or an
 * outcome that is not the destination's) frees its turn for the next
 * request.
 */

void
ngx_http_xregion_breaker_release(ngx_http_xregion_ctx_t *ctx)
{
    ngx_http_xregion_breaker_slot_t  *s;
    ngx_http_xregion_breaker_zone_t  *z;
    ngx_http_xregion_main_conf_t     *xmcf;

    if (ctx->breaker_conf == NULL || !ctx->breaker_probe
        || ctx->breaker_done)
    {
        return;
    }

    ctx->breaker_done = 1;

    xmcf = ngx_http_get_module_main_conf(ctx->request,
                                         ngx_http_xregion_module);
    z = xmcf->breaker_zone;

    ngx_shmtx_lock(&z->shpool->mutex);

    s = &z->sh->slot[ctx->breaker_slot];

    if (s->gen == ctx->breaker_gen
        && s->state == NGX_HTTP_XREGION_BREAKER_HALF_OPEN)
    {
        s->probe_until = 0;
    }

    ngx_shmtx_unlock(&z->shpool->mutex);
}


/* Locked: an OPEN slot whose back-off is over becomes HALF_OPEN. */

static void
ngx_http_xregion_breaker_look(ngx_http_xregion_breaker_slot_t *s,
    ngx_msec_t now, ngx_http_xregion_breaker_event_e *event)
{
    if (s->state != NGX_HTTP_XREGION_BREAKER_OPEN
        || (ngx_msec_int_t) (s->open_until - now) > 0)
    {
        return;
    }

    s->state = NGX_HTTP_XREGION_BREAKER_HALF_OPEN;
    s->probes_ok = 0;
    s->probe_until = 0;
    s->gen++;

    *event = NGX_HTTP_XREGION_BREAKER_HALF_OPENS;
}


static void
ngx_http_xregion_breaker_log(ngx_log_t *log,
    ngx_http_xregion_breaker_zone_t *z, ngx_uint_t i,
    ngx_http_xregion_breaker_event_e event, ngx_msec_t backoff,
    ngx_uint_t n, xr_err_e err, ngx_http_xregion_breaker_conf_t *bc)
{
    ngx_str_t  *name;

    name = &z->names[i];

    switch (event) {

    case NGX_HTTP_XREGION_BREAKER_OPENS:
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "xregion: breaker of upstream \"%V\" opens for %M ms: "
                      "%ui failures in a row within %M ms, the last %s "
                      "(xregion_breaker in %V:%ui)", name, backoff, n,
                      bc->window, xr_error_info(err)->name, &bc->file,
                      bc->line);
        break;

    case NGX_HTTP_XREGION_BREAKER_REOPENS:
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "xregion: breaker of upstream \"%V\" opens again for "
                      "%M ms: its probe failed, %s (xregion_breaker in "
                      "%V:%ui)", name, backoff, xr_error_info(err)->name,
                      &bc->file, bc->line);
        break;

    case NGX_HTTP_XREGION_BREAKER_CLOSES:
        ngx_log_error(NGX_LOG_WARN, log, 0,
                      "xregion: breaker of upstream \"%V\" closes: %ui "
                      "probe%s succeeded", name, n, n == 1 ? "" : "s");
        break;

    case NGX_HTTP_XREGION_BREAKER_HALF_OPENS:
        ngx_log_error(NGX_LOG_INFO, log, 0,
                      "xregion: breaker of upstream \"%V\" is half-open: "
                      "probes go through", name);
        break;

    default:
        break;
    }
}


/* the read API, for metrics and health */

static ngx_http_xregion_breaker_zone_t *
ngx_http_xregion_breaker_zone(void)
{
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_cycle_get_module_main_conf((ngx_cycle_t *) ngx_cycle,
                                               ngx_http_xregion_module);

    if (xmcf == NULL || xmcf->breaker_zone == NULL) {
        return NULL;
    }

    return xmcf->breaker_zone;
}


ngx_int_t
ngx_http_xregion_breaker_info(ngx_uint_t i,
    ngx_http_xregion_breaker_info_t *info)
{
    ngx_msec_t                        now;
    ngx_http_xregion_breaker_slot_t  *s;
    ngx_http_xregion_breaker_zone_t  *z;

    z = ngx_http_xregion_breaker_zone();

    if (z == NULL || z->sh == NULL || i >= z->nslots) {
        return NGX_DONE;
    }

    now = ngx_current_msec;

    ngx_shmtx_lock(&z->shpool->mutex);

    s = &z->sh->slot[i];

    info->state = s->state;
    info->opened = s->opened;
    info->retry = 0;

    if (s->state == NGX_HTTP_XREGION_BREAKER_OPEN) {
        if ((ngx_msec_int_t) (s->open_until - now) > 0) {
            info->retry = s->open_until - now;

        } else {
            /* its back-off is over: the next request goes through */
            info->state = NGX_HTTP_XREGION_BREAKER_HALF_OPEN;
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    info->upstream = z->names[i];

    return NGX_OK;
}


ngx_uint_t
ngx_http_xregion_breaker_state(ngx_str_t *upstream)
{
    ngx_uint_t                        i;
    ngx_http_xregion_breaker_info_t   info;

    for (i = 0; ngx_http_xregion_breaker_info(i, &info) == NGX_OK; i++) {
        if (info.upstream.len == upstream->len
            && ngx_strncasecmp(info.upstream.data, upstream->data,
                               upstream->len)
               == 0)
        {
            return info.state;
        }
    }

    return NGX_HTTP_XREGION_BREAKER_NONE;
}
