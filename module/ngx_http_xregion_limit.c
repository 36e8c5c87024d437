
/*
 * Rate limits per caller and per destination:
 *
 *   xregion_limit_caller <rate> [burst=<n>] [caller=<profile>];
 *   xregion_limit_dest   <rate> [burst=<n>] [region=<name>];
 *
 * A rate is "<n>r/s" or "<n>r/m".  Without caller= (region=) the line is
 * the limit of every caller (region) the level has no line of its own for.
 * The lines of a level replace those of the level above, as limit_req's
 * do.  A caller is a caller profile; a destination is a region of
 * regions.conf in the endpoint's domain (the medical and the transit
 * system of a region are counted apart: they are different systems).
 *
 * The count is a GCRA (the "theoretical arrival time" of the next request
 * per key): a request is admitted when it comes no earlier than its
 * allowance, burst requests ahead of the rate at most.  One request checks
 * both of its keys and takes from both only when both admit it: a request
 * one key refuses costs the other nothing, and a refused request costs
 * nothing at all.
 *
 * Where the count is kept:
 *
 *   Redis (xregion_redis): one script per request (EVALSHA, EVAL when the
 *       server does not have it yet), on Redis's clock (TIME), so that
 *       every worker of every instance counts on one clock.  Keys:
 *           <prefix>l:c:<caller profile>
 *           <prefix>l:d:<domain>:<region name>
 *       each holding the time in us the key's next request is due; a key
 *       expires once it is back to a full burst.
 *   shared memory of this instance, when Redis is not configured, not
 *       connected, or does not answer within its timeout: the same limits
 *       over the workers of this instance only (each instance admits the
 *       whole rate while Redis is away).  A worker goes back to Redis as
 *       soon as its connection is back (ngx_http_xregion_redis.c
 *       reconnects), no reload.  The zone "xregion_limit" holds one 8-byte
 *       slot per caller profile and per region and domain, laid out at
 *       configuration time: no lookup, no allocation per request.
 *
 * A refusal is XR-RATE-LIMITED in the caller's format, HTTP 429 whatever
 * the profile's error_status, with Retry-After (seconds, rounded up), and
 * one log line naming the caller.  Nothing goes to the destination.
 */


#include "ngx_http_xregion_module.h"

#include <ngx_sha1.h>


#define NGX_HTTP_XREGION_LIMIT_MAX_RATE   1000000
#define NGX_HTTP_XREGION_LIMIT_MAX_BURST  1000000


/* In shared memory: the due time (us since the epoch) of every slot. */
typedef struct {
    uint32_t                      layout;
    ngx_uint_t                    nslots;
    uint64_t                      due[1];
} ngx_http_xregion_limit_sh_t;


/* Per configuration: the zone, the slots and their Redis keys. */
typedef struct {
    ngx_shm_zone_t               *shm_zone;
    ngx_slab_pool_t              *shpool;
    ngx_http_xregion_limit_sh_t  *sh;
    uint32_t                      layout;       /* crc32 of the slot names */
    ngx_uint_t                    nslots;
    ngx_str_t                    *keys;         /* [nslots]; NULL: no Redis */
    u_char                        sha[40];      /* of the script */
} ngx_http_xregion_limit_zone_t;


static ngx_int_t ngx_http_xregion_limit_check(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf, ngx_http_xregion_limit_t *rule);
static ngx_http_xregion_limit_t **ngx_http_xregion_limit_table(
    ngx_conf_t *cf, ngx_http_xregion_main_conf_t *xmcf, ngx_array_t *rules,
    ngx_uint_t kind);
static ngx_int_t ngx_http_xregion_limit_zone(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
static ngx_int_t ngx_http_xregion_limit_init_zone(ngx_shm_zone_t *shm_zone,
    void *data);
static ngx_int_t ngx_http_xregion_limit_ask(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
static void ngx_http_xregion_limit_reply(void *data,
    ngx_http_xregion_reply_t *reply);
static ngx_int_t ngx_http_xregion_limit_local(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
static ngx_int_t ngx_http_xregion_limit_refuse(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_uint_t k, uint64_t wait_ms,
    const char *counter);


/*
 * KEYS: the request's keys (one or two); ARGV: per key its interval and
 * tolerance (us).  0: admitted and counted; "<key index>:<ms to wait>":
 * refused, nothing counted.  A due time further ahead than a full burst
 * (a clock that went back, a faster rate after a reload) is taken as a
 * full burst.
 */
static ngx_str_t  ngx_http_xregion_limit_lua = ngx_string(
    "local t = redis.call('TIME') "
    "local now = tonumber(t[1]) * 1000000 + tonumber(t[2]) "
    "local due, wait, who = {}, 0, 0 "
    "for i = 1, #KEYS do "
      "local iv = tonumber(ARGV[2 * i - 1]) "
      "local tol = tonumber(ARGV[2 * i]) "
      "local d = tonumber(redis.call('GET', KEYS[i])) or now "
      "if d < now then d = now end "
      "if d > now + tol + iv then d = now + tol + iv end "
      "local over = d - now - tol "
      "if over > 0 then "
        "if who == 0 then who = i end "
        "if over > wait then wait = over end "
      "else due[i] = d + iv end "
    "end "
    "if who > 0 then "
      "return string.format('%d:%d', who, math.ceil(wait / 1000)) "
    "end "
    "for i = 1, #KEYS do "
      "redis.call('SET', KEYS[i], string.format('%d', due[i]), 'PX', "
                 "math.ceil((due[i] - now) / 1000)) "
    "end "
    "return 0");


static ngx_str_t  ngx_http_xregion_limit_zone_name =
    ngx_string("xregion_limit");


/* directives */

/*
 * xregion_limit_caller <rate> [burst=<n>] [caller=<profile>];
 * xregion_limit_dest <rate> [burst=<n>] [region=<name>];
 *
 * cmd->offset: the location's array of the directive.  Names are checked
 * in postconfiguration, when the xregion configuration is loaded.
 */

char *
ngx_http_xregion_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    u_char                        *p;
    ngx_int_t                      n, burst;
    ngx_str_t                     *value, name, *pname;
    ngx_uint_t                     i, kind, per;
    ngx_array_t                  **rules, **set;
    const char                    *what;
    ngx_http_xregion_limit_t      *rule;
    ngx_http_xregion_main_conf_t  *xmcf;

    rules = (ngx_array_t **) ((char *) conf + cmd->offset);

    kind = cmd->offset == offsetof(ngx_http_xregion_loc_conf_t, limit_dests)
           ? NGX_HTTP_XREGION_LIMIT_DEST : NGX_HTTP_XREGION_LIMIT_CALLER;
    what = kind == NGX_HTTP_XREGION_LIMIT_DEST ? "region=" : "caller=";

    value = cf->args->elts;

    /* the rate: <n>r/s or <n>r/m */

    if (value[1].len < 4
        || ngx_strncmp(value[1].data + value[1].len - 3, "r/", 2) != 0)
    {
        goto bad_rate;
    }

    switch (value[1].data[value[1].len - 1]) {

    case 's':
        per = 1000000;
        break;

    case 'm':
        per = 60000000;
        break;

    default:
        goto bad_rate;
    }

    n = ngx_atoi(value[1].data, value[1].len - 3);

    if (n <= 0 || n > NGX_HTTP_XREGION_LIMIT_MAX_RATE) {
        goto bad_rate;
    }

    burst = 0;
    ngx_str_null(&name);
    pname = NULL;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "burst=", 6) == 0) {
            burst = ngx_atoi(value[i].data + 6, value[i].len - 6);

            if (burst < 0 || burst > NGX_HTTP_XREGION_LIMIT_MAX_BURST) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "invalid burst \"%V\": 0 to %d requests",
                                   &value[i],
                                   NGX_HTTP_XREGION_LIMIT_MAX_BURST);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, what, 7) == 0
            && value[i].len > 7 && pname == NULL)
        {
            name.data = value[i].data + 7;
            name.len = value[i].len - 7;
            pname = &value[i];
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected \"burst=\" "
                           "or \"%s\"", &value[i], what);
        return NGX_CONF_ERROR;
    }

    if (*rules == NULL) {
        *rules = ngx_array_create(cf->pool, 4,
                                  sizeof(ngx_http_xregion_limit_t));
        if (*rules == NULL) {
            return NGX_CONF_ERROR;
        }

        /* every level's lines are checked once the configuration loads */

        xmcf = ngx_http_conf_get_module_main_conf(cf,
                                                  ngx_http_xregion_module);

        if (xmcf->limit_sets == NULL) {
            xmcf->limit_sets = ngx_array_create(cf->pool, 4,
                                                sizeof(ngx_array_t *));
            if (xmcf->limit_sets == NULL) {
                return NGX_CONF_ERROR;
            }
        }

        set = ngx_array_push(xmcf->limit_sets);
        if (set == NULL) {
            return NGX_CONF_ERROR;
        }

        *set = *rules;
    }

    rule = (*rules)->elts;

    for (i = 0; i < (*rules)->nelts; i++) {
        if (rule[i].name.len == name.len
            && ngx_strncmp(rule[i].name.data, name.data, name.len) == 0)
        {
            if (name.len) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate \"%V\" for %s\"%V\", first in "
                                   "%V:%ui", &cmd->name, what, &name,
                                   &rule[i].file, rule[i].line);
            } else {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "duplicate default \"%V\", first in "
                                   "%V:%ui", &cmd->name, &rule[i].file,
                                   rule[i].line);
            }

            return NGX_CONF_ERROR;
        }
    }

    rule = ngx_array_push(*rules);
    if (rule == NULL) {
        return NGX_CONF_ERROR;
    }

    rule->kind = kind;
    rule->name = name;
    rule->interval = per / n;
    rule->tolerance = rule->interval * burst;
    rule->file = cf->conf_file->file.name;
    rule->line = cf->conf_file->line;

    rule->text.data = ngx_pnalloc(cf->pool, value[1].len
                                            + sizeof(" burst=") - 1
                                            + NGX_INT_T_LEN);
    if (rule->text.data == NULL) {
        return NGX_CONF_ERROR;
    }

    p = ngx_cpymem(rule->text.data, value[1].data, value[1].len);

    if (burst) {
        p = ngx_sprintf(p, " burst=%i", burst);
    }

    rule->text.len = p - rule->text.data;

    return NGX_CONF_OK;

bad_rate:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid rate \"%V\": <n>r/s or <n>r/m, n from 1 to "
                       "%d", &value[1], NGX_HTTP_XREGION_LIMIT_MAX_RATE);
    return NGX_CONF_ERROR;
}


/* postconfiguration */

/*
 * Every line of every level against the loaded configuration; each
 * endpoint's limits as tables indexed by profile and by region; the zone,
 * when some endpoint has a limit.
 */

ngx_int_t
ngx_http_xregion_limit_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_uint_t                     i, j, used;
    ngx_array_t                  **sets;
    ngx_http_xregion_limit_t      *rule;
    ngx_http_xregion_loc_conf_t  **endpoints, *xlcf;

    if (xmcf->limit_sets == NULL) {
        return NGX_OK;
    }

    sets = xmcf->limit_sets->elts;

    for (i = 0; i < xmcf->limit_sets->nelts; i++) {
        rule = sets[i]->elts;

        for (j = 0; j < sets[i]->nelts; j++) {
            if (ngx_http_xregion_limit_check(cf, xmcf, &rule[j]) != NGX_OK) {
                return NGX_ERROR;
            }
        }
    }

    used = 0;
    endpoints = xmcf->endpoints.elts;

    for (i = 0; i < xmcf->endpoints.nelts; i++) {
        xlcf = endpoints[i];

        if (xlcf->limit_callers) {
            xlcf->limit_by_caller = ngx_http_xregion_limit_table(cf, xmcf,
                                        xlcf->limit_callers,
                                        NGX_HTTP_XREGION_LIMIT_CALLER);
            if (xlcf->limit_by_caller == NGX_CONF_ERROR) {
                return NGX_ERROR;
            }
        }

        if (xlcf->limit_dests) {
            xlcf->limit_by_dest = ngx_http_xregion_limit_table(cf, xmcf,
                                      xlcf->limit_dests,
                                      NGX_HTTP_XREGION_LIMIT_DEST);
            if (xlcf->limit_by_dest == NGX_CONF_ERROR) {
                return NGX_ERROR;
            }
        }

        if (xlcf->limit_by_caller || xlcf->limit_by_dest) {
            used = 1;
        }
    }

    if (!used) {
        return NGX_OK;
    }

    return ngx_http_xregion_limit_zone(cf, xmcf);
}


static ngx_int_t
ngx_http_xregion_limit_check(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf, ngx_http_xregion_limit_t *rule)
{
    const xr_region_t  *region;

    if (rule->name.len == 0) {
        return NGX_OK;
    }

    if (rule->kind == NGX_HTTP_XREGION_LIMIT_CALLER) {
        if (xr_config_profile(xmcf->config,
                              ngx_http_xregion_xstr(&rule->name))
            == NULL)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_limit_caller\": unknown caller \"%V\" "
                          "(no such profile) in %V:%ui", &rule->name,
                          &rule->file, rule->line);
            return NGX_ERROR;
        }

        return NGX_OK;
    }

    region = xr_config_region(xmcf->config,
                              ngx_http_xregion_xstr(&rule->name));

    if (region == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"xregion_limit_dest\": unknown region \"%V\" (not in "
                      "regions.conf) in %V:%ui", &rule->name, &rule->file,
                      rule->line);
        return NGX_ERROR;
    }

    if (region->code.len == 0) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"xregion_limit_dest\": region \"%V\" has no code, no "
                      "request goes toward it in %V:%ui", &rule->name,
                      &rule->file, rule->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * The rule of each profile (callers) or region (destinations): its own
 * line, else the level's default, else none.  NULL: none for anyone.
 */

static ngx_http_xregion_limit_t **
ngx_http_xregion_limit_table(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf, ngx_array_t *rules, ngx_uint_t kind)
{
    xr_str_t                   name;
    ngx_uint_t                 i, j, n, any;
    ngx_http_xregion_limit_t  *rule, *dflt, **table;

    n = kind == NGX_HTTP_XREGION_LIMIT_CALLER ? xmcf->config->nprofiles
                                              : xmcf->config->nregions;

    table = ngx_pcalloc(cf->pool, (n + 1) * sizeof(ngx_http_xregion_limit_t *));
    if (table == NULL) {
        return NGX_CONF_ERROR;
    }

    rule = rules->elts;
    dflt = NULL;

    for (j = 0; j < rules->nelts; j++) {
        if (rule[j].name.len == 0) {
            dflt = &rule[j];
        }
    }

    any = 0;

    for (i = 0; i < n; i++) {

        if (kind == NGX_HTTP_XREGION_LIMIT_CALLER) {
            name = xmcf->config->profiles[i].name;

        } else {
            if (xmcf->config->regions[i].code.len == 0) {
                continue;       /* never a destination */
            }

            name = xmcf->config->regions[i].name;
        }

        table[i] = dflt;

        for (j = 0; j < rules->nelts; j++) {
            if (rule[j].name.len
                && xr_str_cmp(ngx_http_xregion_xstr(&rule[j].name), name)
                   == 0)
            {
                table[i] = &rule[j];
                break;
            }
        }

        if (table[i]) {
            any = 1;
        }
    }

    return any ? table : NULL;
}


/*
 * The slots: the caller profiles, then per domain the regions.  With
 * Redis, each slot's key, made once here.
 */

static ngx_int_t
ngx_http_xregion_limit_zone(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    u_char                          *p, hash[20];
    size_t                           size, len;
    uint32_t                         crc;
    xr_str_t                         name;
    ngx_str_t                       *prefix, *domain;
    ngx_uint_t                       i, d, s, nprofiles, nregions;
    ngx_sha1_t                       sha1;
    xr_config_t                     *cfg;
    ngx_http_xregion_limit_zone_t   *z;

    cfg = xmcf->config;
    nprofiles = cfg->nprofiles;
    nregions = cfg->nregions;

    z = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_limit_zone_t));
    if (z == NULL) {
        return NGX_ERROR;
    }

    z->nslots = nprofiles + NGX_HTTP_XREGION_NDOMAINS * nregions;

    /* a reload keeps the counts only when every slot means the same */

    ngx_crc32_init(crc);

    for (i = 0; i < nprofiles; i++) {
        name = cfg->profiles[i].name;
        ngx_crc32_update(&crc, (u_char *) name.data, name.len);
        ngx_crc32_update(&crc, (u_char *) "\n", 1);
    }

    for (i = 0; i < nregions; i++) {
        name = cfg->regions[i].name;
        ngx_crc32_update(&crc, (u_char *) name.data, name.len);
        ngx_crc32_update(&crc, (u_char *) "\n", 1);
    }

    ngx_crc32_final(crc);
    z->layout = crc;

    if (xmcf->redis) {
        prefix = &xmcf->redis->prefix;

        z->keys = ngx_pcalloc(cf->pool, z->nslots * sizeof(ngx_str_t));
        if (z->keys == NULL) {
            return NGX_ERROR;
        }

        for (s = 0; s < z->nslots; s++) {

            if (s < nprofiles) {
                name = cfg->profiles[s].name;
                len = prefix->len + sizeof("l:c:") - 1 + name.len;

                p = ngx_pnalloc(cf->pool, len);
                if (p == NULL) {
                    return NGX_ERROR;
                }

                z->keys[s].data = p;
                z->keys[s].len = ngx_sprintf(p, "%Vl:c:%*s", prefix,
                                             name.len, name.data) - p;
                continue;
            }

            d = (s - nprofiles) / nregions;
            i = (s - nprofiles) % nregions;
            name = cfg->regions[i].name;
            domain = &ngx_http_xregion_domains[d];
            len = prefix->len + sizeof("l:d::") - 1 + domain->len + name.len;

            p = ngx_pnalloc(cf->pool, len);
            if (p == NULL) {
                return NGX_ERROR;
            }

            z->keys[s].data = p;
            z->keys[s].len = ngx_sprintf(p, "%Vl:d:%V:%*s", prefix, domain,
                                         name.len, name.data) - p;
        }

        ngx_sha1_init(&sha1);
        ngx_sha1_update(&sha1, ngx_http_xregion_limit_lua.data,
                        ngx_http_xregion_limit_lua.len);
        ngx_sha1_final(hash, &sha1);
        ngx_hex_dump(z->sha, hash, sizeof(hash));
    }

    /* the slab pool's own pages, and room for the slots */

    size = 8 * ngx_pagesize
           + ngx_align(sizeof(ngx_http_xregion_limit_sh_t)
                       + z->nslots * sizeof(uint64_t), ngx_pagesize);

    z->shm_zone = ngx_shared_memory_add(cf, &ngx_http_xregion_limit_zone_name,
                                        size, &ngx_http_xregion_module);
    if (z->shm_zone == NULL) {
        return NGX_ERROR;
    }

    z->shm_zone->init = ngx_http_xregion_limit_init_zone;
    z->shm_zone->data = z;

    xmcf->limit_zone = z;

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_limit_init_zone(ngx_shm_zone_t *shm_zone, void *data)
{
    ngx_http_xregion_limit_zone_t  *oz = data;

    size_t                          len;
    ngx_http_xregion_limit_zone_t  *z;

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

    len = sizeof(ngx_http_xregion_limit_sh_t) + z->nslots * sizeof(uint64_t);

    z->sh = ngx_slab_calloc_locked(z->shpool, len);

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (z->sh == NULL) {
        return NGX_ERROR;
    }

    z->sh->layout = z->layout;
    z->sh->nslots = z->nslots;
    z->shpool->data = z->sh;

    return NGX_OK;
}


/* the request */

/*
 * After the access rules.  NGX_DECLINED: no limit applies, or the request
 * is within them.  NGX_DONE: Redis is asked; its answer goes on
 * (ngx_http_xregion_admit()) or refuses.  Else the rc of the refusal.
 */

ngx_int_t
ngx_http_xregion_limit(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    ngx_uint_t                      i;
    const xr_config_t              *cfg;
    const xr_region_t              *region;
    ngx_http_xregion_loc_conf_t    *xlcf;
    ngx_http_xregion_main_conf_t   *xmcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    if (xlcf->limit_by_caller == NULL && xlcf->limit_by_dest == NULL) {
        return NGX_DECLINED;
    }

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);
    cfg = xmcf->config;

    if (xlcf->limit_by_caller) {
        i = ctx->caller - cfg->profiles;

        if (i < cfg->nprofiles) {
            ctx->limit_rule[0] = xlcf->limit_by_caller[i];
            ctx->limit_slot[0] = i;
        }
    }

    if (xlcf->limit_by_dest) {
        region = ngx_http_xregion_region_of(xmcf,
                                     ngx_http_xregion_xstr(&ctx->dest_code));

        /* an unknown destination is refused further on */

        if (region) {
            i = region - cfg->regions;

            ctx->limit_rule[1] = xlcf->limit_by_dest[i];
            ctx->limit_slot[1] = cfg->nprofiles
                                 + ctx->domain_index * cfg->nregions + i;
        }
    }

    if (ctx->limit_rule[0] == NULL && ctx->limit_rule[1] == NULL) {
        return NGX_DECLINED;
    }

    if (xmcf->redis && ngx_http_xregion_limit_ask(r, ctx) == NGX_OK) {
        ctx->state = NGX_HTTP_XREGION_STORE;
        return NGX_DONE;
    }

    return ngx_http_xregion_limit_local(r, ctx);
}


/* The script for the request's keys: NGX_OK, or Redis is not there. */

static ngx_int_t
ngx_http_xregion_limit_ask(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    u_char                          nums[4][NGX_INT64_LEN], nkeys;
    ngx_str_t                       argv[3 + 2 + 4];
    ngx_uint_t                      k, n, argc;
    ngx_http_xregion_limit_t       *rule;
    ngx_http_xregion_main_conf_t   *xmcf;
    ngx_http_xregion_limit_zone_t  *z;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);
    z = xmcf->limit_zone;

    if (ctx->limit_script) {
        ngx_str_set(&argv[0], "EVAL");
        argv[1] = ngx_http_xregion_limit_lua;

    } else {
        ngx_str_set(&argv[0], "EVALSHA");
        argv[1].data = z->sha;
        argv[1].len = sizeof(z->sha);
    }

    argc = 3;
    n = 0;

    for (k = 0; k < 2; k++) {
        if (ctx->limit_rule[k]) {
            argv[argc++] = z->keys[ctx->limit_slot[k]];
        }
    }

    for (k = 0; k < 2; k++) {
        rule = ctx->limit_rule[k];

        if (rule == NULL) {
            continue;
        }

        argv[argc].data = nums[n];
        argv[argc].len = ngx_sprintf(nums[n], "%uL", rule->interval)
                         - nums[n];
        argc++;
        n++;

        argv[argc].data = nums[n];
        argv[argc].len = ngx_sprintf(nums[n], "%uL", rule->tolerance)
                         - nums[n];
        argc++;
        n++;
    }

    nkeys = (u_char) ('0' + n / 2);
    argv[2].data = &nkeys;
    argv[2].len = 1;

    return ngx_http_xregion_redis_command(r->pool,
                                          ngx_http_xregion_limit_reply, r,
                                          argc, argv);
}


static void
ngx_http_xregion_limit_reply(void *data, ngx_http_xregion_reply_t *reply)
{
    ngx_http_request_t *r = data;

    u_char                  *colon, *end;
    ngx_int_t                rc, k, ms;
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx->state != NGX_HTTP_XREGION_STORE) {
        return;
    }

    ctx->state = NGX_HTTP_XREGION_READING;

    if (reply && reply->type == NGX_HTTP_XREGION_REPLY_INTEGER
        && reply->integer == 0)
    {
        ngx_str_set(&ctx->limit, "PASSED");
        ngx_http_xregion_continue(r, ngx_http_xregion_admit(r, ctx));
        return;
    }

    if (reply && reply->type == NGX_HTTP_XREGION_REPLY_STRING) {
        end = reply->str.data + reply->str.len;
        colon = ngx_strlchr(reply->str.data, end, ':');

        k = colon ? ngx_atoi(reply->str.data, colon - reply->str.data) : -1;
        ms = colon ? ngx_atoi(colon + 1, end - colon - 1) : -1;

        if ((k == 1 || k == 2) && ms >= 0) {

            /* the script numbers the keys present, the caller's first */
            if (k == 1 && ctx->limit_rule[0] == NULL) {
                k = 2;
            }

            ngx_str_set(&ctx->limit, "REJECTED");
            ngx_http_xregion_continue(r,
                ngx_http_xregion_limit_refuse(r, ctx, k - 1, ms, "redis"));
            return;
        }
    }

    /* a Redis restarted since: it has no scripts */

    if (reply && reply->type == NGX_HTTP_XREGION_REPLY_ERROR
        && reply->str.len >= 8
        && ngx_strncmp(reply->str.data, "NOSCRIPT", 8) == 0
        && !ctx->limit_script)
    {
        ctx->limit_script = 1;

        if (ngx_http_xregion_limit_ask(r, ctx) == NGX_OK) {
            ctx->state = NGX_HTTP_XREGION_STORE;
            return;
        }

    } else if (reply) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "xregion: rate limit script: unexpected answer "
                      "\"%V\" (type %ui), counted in this instance only",
                      &reply->str, reply->type);
    }

    /* Redis failed or went away: this instance counts */

    rc = ngx_http_xregion_limit_local(r, ctx);

    if (rc == NGX_DECLINED) {
        rc = ngx_http_xregion_admit(r, ctx);
    }

    ngx_http_xregion_continue(r, rc);
}


/* The same count in this instance's shared memory. */

static ngx_int_t
ngx_http_xregion_limit_local(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    uint64_t                        now, due[2], d, wait, over;
    ngx_uint_t                      k, who;
    ngx_time_t                     *tp;
    ngx_http_xregion_limit_t       *rule;
    ngx_http_xregion_main_conf_t   *xmcf;
    ngx_http_xregion_limit_zone_t  *z;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);
    z = xmcf->limit_zone;

    tp = ngx_timeofday();
    now = (uint64_t) tp->sec * 1000000 + (uint64_t) tp->msec * 1000;

    who = 0;
    wait = 0;
    due[0] = 0;
    due[1] = 0;

    ngx_shmtx_lock(&z->shpool->mutex);

    for (k = 0; k < 2; k++) {
        rule = ctx->limit_rule[k];

        if (rule == NULL) {
            continue;
        }

        d = z->sh->due[ctx->limit_slot[k]];
        d = ngx_max(d, now);
        d = ngx_min(d, now + rule->tolerance + rule->interval);

        over = d - now;

        if (over > rule->tolerance) {
            over -= rule->tolerance;

            if (who == 0) {
                who = k + 1;
            }

            wait = ngx_max(wait, over);
            continue;
        }

        due[k] = d + rule->interval;
    }

    if (who == 0) {
        for (k = 0; k < 2; k++) {
            if (ctx->limit_rule[k]) {
                z->sh->due[ctx->limit_slot[k]] = due[k];
            }
        }
    }

    ngx_shmtx_unlock(&z->shpool->mutex);

    if (who == 0) {
        ngx_str_set(&ctx->limit, "LOCAL");
        return NGX_DECLINED;
    }

    ngx_str_set(&ctx->limit, "LOCAL_REJECTED");

    return ngx_http_xregion_limit_refuse(r, ctx, who - 1, (wait + 999) / 1000,
                                         "this instance");
}


/* XR-RATE-LIMITED, Retry-After in whole seconds, at least 1. */

static ngx_int_t
ngx_http_xregion_limit_refuse(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_uint_t k, uint64_t wait_ms,
    const char *counter)
{
    ngx_uint_t                      i;
    const xr_region_t              *region;
    ngx_http_xregion_limit_t       *rule;
    ngx_http_xregion_main_conf_t   *xmcf;

    rule = ctx->limit_rule[k];

    ctx->retry_after = (ngx_uint_t) ((wait_ms + 999) / 1000);

    if (ctx->retry_after == 0) {
        ctx->retry_after = 1;
    }

    ngx_http_xregion_detail(r, ctx, "%s %V in %V:%ui, counted by %s",
                            k ? "xregion_limit_dest" : "xregion_limit_caller",
                            &rule->text, &rule->file, rule->line, counter);

    if (k == 0) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_RATE_LIMITED,
                   "too many requests from %V, retry after %ui s",
                   &ctx->caller_name, ctx->retry_after);
    }

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    i = (ctx->limit_slot[1] - xmcf->config->nprofiles)
        % xmcf->config->nregions;
    region = &xmcf->config->regions[i];

    return ngx_http_xregion_answer_error(r, ctx, XR_E_RATE_LIMITED,
               "too many %V requests toward %*s, retry after %ui s",
               &ctx->domain, region->name.len, region->name.data,
               ctx->retry_after);
}
