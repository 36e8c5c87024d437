
/*
 * What the gateway keeps in Redis, shared by every worker and every
 * gateway instance on one Redis deployment:
 *
 *   <prefix>c:<domain>:<txn>:<dest>:<sha256>    cached answers of query
 *       transactions the schema marks `cache`: "C", the expiry (8 bytes,
 *       ms since the epoch, little-endian), the canonical answer
 *       (xr_record).  Redis keeps it for twice the TTL, so that an entry
 *       past its TTL is told apart from none ($xregion_cache EXPIRED).
 *   <prefix>i:<domain>:<txn>:<caller>:<sha256>  money transactions
 *       (`kind money`): "P" + fingerprint + claim token while the first
 *       request is in flight, then "D" + fingerprint + the canonical
 *       answer for xregion_idempotency_ttl.
 *   <prefix>n:<caller>:<nonce>                  nonces seen within the
 *       replay window.
 *
 * Key names carry no personal identifier: the identifying values (a card
 * or certificate number) are hashed by xr_policy.
 *
 * A money transaction is claimed atomically (SET NX GET) after it has been
 * translated and before it is sent.  A duplicate finds the claim: with a
 * different body (fingerprint) it is a conflict; in flight, it waits for
 * the recorded answer, polling, for xregion_idempotency_wait; done, it gets
 * the recorded answer, encoded for the caller as the first one was.  When
 * the destination cannot have seen the request (refused connection), the
 * claim is released; when it may have (timeout, cut answer), the claim
 * stays until it expires, so that no retry settles twice meanwhile.
 *
 * Without Redis, cached answers are bypassed and money transactions are
 * refused with XR-BUSY-RETRY (xregion_idempotency_unavailable).
 */


#include "ngx_http_xregion_module.h"

#include "xr_policy.h"
#include "xr_record.h"


#define NGX_HTTP_XREGION_FP_LEN       64
#define NGX_HTTP_XREGION_WAIT_FIRST   10        /* ms */
#define NGX_HTTP_XREGION_WAIT_MAX     200       /* ms */
#define NGX_HTTP_XREGION_NONCE_MAX    128
#define NGX_HTTP_XREGION_MAXINV       6         /* DEL and 6 keys */


typedef struct {
    ngx_log_t                *log;
    size_t                    len;
    u_char                    msg_id[1];
} ngx_http_xregion_record_log_t;


/*
 * A claim in flight.  It outlives its request: a claim Redis granted after
 * the request ended (xregion_timeout while asking) is given back, so that
 * the retry the caller was told to make goes through.
 */
typedef struct {
    ngx_http_request_t       *r;        /* NULL: the request is gone */
    ngx_pool_cleanup_t       *cln;
    ngx_str_t                 key;
    ngx_str_t                 marker;
} ngx_http_xregion_claim_t;


static ngx_int_t ngx_http_xregion_cache_lookup(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, const xr_schema_t *schema,
    const xr_stxn_t *stxn, ngx_http_xregion_loc_conf_t *xlcf);
static void ngx_http_xregion_cache_reply(void *data,
    ngx_http_xregion_reply_t *reply);
static ngx_int_t ngx_http_xregion_claim(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
static void ngx_http_xregion_claim_reply(void *data,
    ngx_http_xregion_reply_t *reply);
static void ngx_http_xregion_claim_cleanup(void *data);
static void ngx_http_xregion_release(ngx_str_t *key, ngx_str_t *marker);
static ngx_int_t ngx_http_xregion_claim_found(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_str_t *value);
static void ngx_http_xregion_wait_handler(ngx_event_t *ev);
static void ngx_http_xregion_wait_reply(void *data,
    ngx_http_xregion_reply_t *reply);
static ngx_int_t ngx_http_xregion_unavailable(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
static ngx_int_t ngx_http_xregion_replay(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, u_char *data, size_t len,
    const char *what);
static void ngx_http_xregion_record_reply(void *data,
    ngx_http_xregion_reply_t *reply);
static void ngx_http_xregion_nonce_reply(void *data,
    ngx_http_xregion_reply_t *reply);
static ngx_int_t ngx_http_xregion_key(ngx_pool_t *pool, ngx_str_t *key,
    xr_str_t name);
static ngx_msec_t ngx_http_xregion_cache_ttl(
    ngx_http_xregion_loc_conf_t *xlcf, xr_str_t txn);
static uint64_t ngx_http_xregion_now_ms(void);
static char *ngx_http_xregion_parse_addr(ngx_conf_t *cf, ngx_str_t *text,
    ngx_str_t *ip, ngx_uint_t *port);


/* atomic on the server: only the claim's owner turns it into the record */
static ngx_str_t  ngx_http_xregion_record_lua = ngx_string(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) end "
    "return 0");

static ngx_str_t  ngx_http_xregion_release_lua = ngx_string(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) end "
    "return 0");


static ngx_uint_t  ngx_http_xregion_claim_seq;


/* directives */

/*
 * xregion_redis <ip>:<port> | unix:<path> [db=] [password=] [prefix=]
 *               [connect_timeout=] [timeout=];
 * xregion_redis master=<name> sentinel=<ip>:<port> ... [sentinel_password=]
 *               ...;
 */

char *
ngx_http_xregion_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    ngx_int_t                       n;
    ngx_str_t                      *value, v;
    ngx_uint_t                      i;
    ngx_http_xregion_redis_addr_t  *addr;
    ngx_http_xregion_redis_conf_t  *rc;

    if (xmcf->redis) {
        return "is duplicate";
    }

    rc = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_redis_conf_t));
    if (rc == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_str_set(&rc->prefix, "xregion:");
    rc->connect_timeout = 1000;
    rc->timeout = 500;
    rc->file = cf->conf_file->file.name;
    rc->line = cf->conf_file->line;

    value = cf->args->elts;

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "db=", 3) == 0) {
            n = ngx_atoi(value[i].data + 3, value[i].len - 3);
            if (n < 0) {
                goto invalid;
            }

            rc->db = n;
            continue;
        }

        if (ngx_strncmp(value[i].data, "password=", 9) == 0) {
            rc->password.data = value[i].data + 9;
            rc->password.len = value[i].len - 9;
            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel_password=", 18) == 0) {
            rc->sentinel_password.data = value[i].data + 18;
            rc->sentinel_password.len = value[i].len - 18;
            continue;
        }

        if (ngx_strncmp(value[i].data, "prefix=", 7) == 0) {
            rc->prefix.data = value[i].data + 7;
            rc->prefix.len = value[i].len - 7;
            continue;
        }

        if (ngx_strncmp(value[i].data, "connect_timeout=", 16) == 0) {
            v.data = value[i].data + 16;
            v.len = value[i].len - 16;
            rc->connect_timeout = ngx_parse_time(&v, 0);
            if (rc->connect_timeout == (ngx_msec_t) NGX_ERROR
                || rc->connect_timeout == 0)
            {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "timeout=", 8) == 0) {
            v.data = value[i].data + 8;
            v.len = value[i].len - 8;
            rc->timeout = ngx_parse_time(&v, 0);
            if (rc->timeout == (ngx_msec_t) NGX_ERROR || rc->timeout == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "master=", 7) == 0) {
            rc->master.data = value[i].data + 7;
            rc->master.len = value[i].len - 7;
            if (rc->master.len == 0) {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "sentinel=", 9) == 0) {
            if (rc->sentinels == NULL) {
                rc->sentinels = ngx_array_create(cf->pool, 3,
                                    sizeof(ngx_http_xregion_redis_addr_t));
                if (rc->sentinels == NULL) {
                    return NGX_CONF_ERROR;
                }
            }

            addr = ngx_array_push(rc->sentinels);
            if (addr == NULL) {
                return NGX_CONF_ERROR;
            }

            v.data = value[i].data + 9;
            v.len = value[i].len - 9;

            if (ngx_http_xregion_parse_addr(cf, &v, &addr->ip, &addr->port)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (i == 1 && ngx_strncmp(value[i].data, "unix:", 5) == 0) {
            if (value[i].len == 5) {
                goto invalid;
            }

            rc->unix_path.len = value[i].len - 5;
            rc->unix_path.data = ngx_pnalloc(cf->pool, rc->unix_path.len + 1);
            if (rc->unix_path.data == NULL) {
                return NGX_CONF_ERROR;
            }

            (void) ngx_cpystrn(rc->unix_path.data, value[i].data + 5,
                               rc->unix_path.len + 1);
            ngx_str_set(&rc->ip, "");
            continue;
        }

        if (i == 1 && ngx_strlchr(value[i].data,
                                  value[i].data + value[i].len, '=')
                      == NULL)
        {
            if (ngx_http_xregion_parse_addr(cf, &value[i], &rc->ip,
                                            &rc->port)
                != NGX_CONF_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        goto invalid;
    }

    if (rc->sentinels && rc->master.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"sentinel=\" needs \"master=\" (the name the "
                           "sentinels monitor)");
        return NGX_CONF_ERROR;
    }

    if (rc->master.len && rc->sentinels == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"master=\" needs at least one \"sentinel=\"");
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels && (rc->ip.len || rc->unix_path.len)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "a Redis address and \"sentinel=\" exclude each "
                           "other: with Sentinel, the sentinels name the "
                           "master");
        return NGX_CONF_ERROR;
    }

    if (rc->sentinels == NULL && rc->ip.len == 0 && rc->unix_path.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_redis\" needs an address, or "
                           "\"master=\" and \"sentinel=\"");
        return NGX_CONF_ERROR;
    }

    xmcf->redis = rc;

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * host:port, resolved now (in the master process, at configuration time):
 * a worker never asks DNS.
 */

static char *
ngx_http_xregion_parse_addr(ngx_conf_t *cf, ngx_str_t *text, ngx_str_t *ip,
    ngx_uint_t *port)
{
    size_t     len;
    ngx_url_t  u;

    ngx_memzero(&u, sizeof(ngx_url_t));

    u.url = *text;
    u.default_port = 6379;

    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "%s in Redis address \"%V\"",
                           u.err ? u.err : "no address", text);
        return NGX_CONF_ERROR;
    }

    ip->data = ngx_pnalloc(cf->pool, NGX_SOCKADDR_STRLEN + 1);
    if (ip->data == NULL) {
        return NGX_CONF_ERROR;
    }

    len = ngx_sock_ntop(u.addrs[0].sockaddr, u.addrs[0].socklen, ip->data,
                        NGX_SOCKADDR_STRLEN, 0);
    ip->data[len] = '\0';
    ip->len = len;

    *port = u.port;

    return NGX_CONF_OK;
}


/* xregion_cache_ttl [<txn>] <time> */

char *
ngx_http_xregion_cache_ttl_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_loc_conf_t *xlcf = conf;

    ngx_str_t                     *value;
    ngx_msec_t                     ttl;
    ngx_http_xregion_cache_ttl_t  *t;

    value = cf->args->elts;

    ttl = ngx_parse_time(&value[cf->args->nelts - 1], 0);
    if (ttl == (ngx_msec_t) NGX_ERROR) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid time \"%V\"",
                           &value[cf->args->nelts - 1]);
        return NGX_CONF_ERROR;
    }

    if (cf->args->nelts == 2) {
        if (xlcf->cache_ttl != NGX_CONF_UNSET_MSEC) {
            return "is duplicate";
        }

        xlcf->cache_ttl = ttl;
        return NGX_CONF_OK;
    }

    if (xlcf->cache_ttls == NULL) {
        xlcf->cache_ttls = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_xregion_cache_ttl_t));
        if (xlcf->cache_ttls == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    t = ngx_array_push(xlcf->cache_ttls);
    if (t == NULL) {
        return NGX_CONF_ERROR;
    }

    t->txn = value[1];
    t->ttl = ttl;
    t->file = cf->conf_file->file.name;
    t->line = cf->conf_file->line;

    return NGX_CONF_OK;
}


/*
 * xregion_replay_guard off |
 *     window=<time> nonce=<value> timestamp=<value> [unavailable=refuse|pass]
 */

char *
ngx_http_xregion_replay_guard_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_loc_conf_t *xlcf = conf;

    ngx_str_t                         *value, v;
    ngx_uint_t                         i;
    ngx_http_complex_value_t         **cvp;
    ngx_http_compile_complex_value_t   ccv;

    if (xlcf->replay_window != NGX_CONF_UNSET_MSEC) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (cf->args->nelts == 2 && ngx_strcmp(value[1].data, "off") == 0) {
        xlcf->replay_window = 0;
        return NGX_CONF_OK;
    }

    for (i = 1; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "window=", 7) == 0) {
            v.data = value[i].data + 7;
            v.len = value[i].len - 7;
            xlcf->replay_window = ngx_parse_time(&v, 1);
            if (xlcf->replay_window == (ngx_msec_t) NGX_ERROR
                || xlcf->replay_window == 0)
            {
                goto invalid;
            }

            xlcf->replay_window *= 1000;
            continue;
        }

        if (ngx_strncmp(value[i].data, "unavailable=", 12) == 0) {
            if (ngx_strcmp(value[i].data + 12, "refuse") == 0) {
                xlcf->replay_unavailable = NGX_HTTP_XREGION_REFUSE;

            } else if (ngx_strcmp(value[i].data + 12, "pass") == 0) {
                xlcf->replay_unavailable = NGX_HTTP_XREGION_FORWARD;

            } else {
                goto invalid;
            }

            continue;
        }

        if (ngx_strncmp(value[i].data, "nonce=", 6) == 0) {
            cvp = &xlcf->replay_nonce;
            v.data = value[i].data + 6;
            v.len = value[i].len - 6;

        } else if (ngx_strncmp(value[i].data, "timestamp=", 10) == 0) {
            cvp = &xlcf->replay_timestamp;
            v.data = value[i].data + 10;
            v.len = value[i].len - 10;

        } else {
            goto invalid;
        }

        *cvp = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
        if (*cvp == NULL) {
            return NGX_CONF_ERROR;
        }

        ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

        ccv.cf = cf;
        ccv.value = &v;
        ccv.complex_value = *cvp;

        if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
            return NGX_CONF_ERROR;
        }
    }

    if (xlcf->replay_window == NGX_CONF_UNSET_MSEC
        || xlcf->replay_nonce == NULL || xlcf->replay_timestamp == NULL)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_replay_guard\" needs \"window=\", "
                           "\"nonce=\" and \"timestamp=\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid parameter \"%V\"", &value[i]);

    return NGX_CONF_ERROR;
}


/*
 * At postconfiguration, per endpoint: every xregion_cache_ttl names a
 * cacheable query of the endpoint's domain, and what needs Redis has it.
 */

ngx_int_t
ngx_http_xregion_store_check(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf, ngx_http_xregion_loc_conf_t *xlcf)
{
    ngx_str_t                     *domain;
    ngx_uint_t                     i;
    const xr_stxn_t               *stxn;
    const xr_schema_t             *schema;
    ngx_http_xregion_cache_ttl_t  *t;

    domain = &ngx_http_xregion_domains[xlcf->domain];
    schema = xr_config_schema(xmcf->config, ngx_http_xregion_xstr(domain));

    if (xlcf->cache_ttls) {
        t = xlcf->cache_ttls->elts;

        for (i = 0; i < xlcf->cache_ttls->nelts; i++) {
            stxn = xr_schema_txn(schema, ngx_http_xregion_xstr(&t[i].txn));

            if (stxn == NULL) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"xregion_cache_ttl\": domain \"%V\" has no "
                              "transaction \"%V\" in %V:%ui", domain,
                              &t[i].txn, &t[i].file, t[i].line);
                return NGX_ERROR;
            }

            if (stxn->kind != XR_TXN_QUERY || !stxn->cacheable) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"xregion_cache_ttl\": transaction \"%V\" is "
                              "not marked \"cache\" in the %V schema in "
                              "%V:%ui", &t[i].txn, domain, &t[i].file,
                              t[i].line);
                return NGX_ERROR;
            }
        }
    }

    if (xlcf->replay_window && xmcf->redis == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"xregion_replay_guard\" needs \"xregion_redis\" "
                      "for the xregion location in %V:%ui",
                      &xlcf->file, xlcf->line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* replay guard */

/*
 * The nonce is stored once for twice the window: a timestamp is accepted
 * up to `window` either side of now, so a nonce must be remembered until
 * no timestamp that came with it can be accepted again.
 */

ngx_int_t
ngx_http_xregion_store_nonce(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    u_char                        *p, ttl[NGX_INT_T_LEN];
    time_t                         ts, now;
    ngx_int_t                      rc;
    ngx_str_t                      nonce, stamp, argv[6];
    ngx_uint_t                     i;
    ngx_http_xregion_loc_conf_t   *xlcf;
    ngx_http_xregion_main_conf_t  *xmcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);
    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    if (ngx_http_complex_value(r, xlcf->replay_nonce, &nonce) != NGX_OK
        || ngx_http_complex_value(r, xlcf->replay_timestamp, &stamp)
           != NGX_OK)
    {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_INTERNAL, NULL);
    }

    if (nonce.len == 0 || stamp.len == 0) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_REPLAY,
                   "the request carries no %s",
                   nonce.len ? "timestamp" : "nonce");
    }

    if (nonce.len > NGX_HTTP_XREGION_NONCE_MAX) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_REPLAY,
                   "the nonce is longer than %d characters",
                   NGX_HTTP_XREGION_NONCE_MAX);
    }

    for (i = 0; i < nonce.len; i++) {
        if (nonce.data[i] <= 0x20 || nonce.data[i] >= 0x7f) {
            return ngx_http_xregion_answer_error(r, ctx, XR_E_REPLAY,
                       "the nonce holds a character other than printable "
                       "ASCII");
        }
    }

    ts = ngx_atotm(stamp.data, stamp.len);
    now = ngx_time();

    if (ts == NGX_ERROR
        || (ngx_msec_t) ngx_abs(now - ts) * 1000 > xlcf->replay_window)
    {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_REPLAY,
                   "the timestamp \"%V\" is not within %M s of the "
                   "gateway's clock (%T)", &stamp,
                   xlcf->replay_window / 1000, now);
    }

    ngx_str_set(&argv[0], "SET");

    argv[1].len = xmcf->redis->prefix.len + sizeof("n::") - 1
                  + ctx->caller_name.len + nonce.len;
    argv[1].data = ngx_pnalloc(r->pool, argv[1].len);
    if (argv[1].data == NULL) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NOMEM, NULL);
    }

    p = ngx_sprintf(argv[1].data, "%Vn:%V:%V", &xmcf->redis->prefix,
                    &ctx->caller_name, &nonce);
    argv[1].len = p - argv[1].data;

    ngx_str_set(&argv[2], "1");
    ngx_str_set(&argv[3], "NX");
    ngx_str_set(&argv[4], "PX");
    argv[5].data = ttl;
    argv[5].len = ngx_sprintf(ttl, "%M", 2 * xlcf->replay_window) - ttl;

    rc = ngx_http_xregion_redis_command(r->pool, ngx_http_xregion_nonce_reply,
                                        r, 6, argv);

    if (rc == NGX_OK) {
        ctx->state = NGX_HTTP_XREGION_STORE;
        return NGX_DONE;
    }

    if (xlcf->replay_unavailable == NGX_HTTP_XREGION_FORWARD) {
        ngx_log_error(NGX_LOG_INFO, r->connection->log, 0,
                      "xregion: nonce of msg_id \"%V\" not checked: "
                      "redis unavailable", &ctx->msg_id);
        return NGX_DECLINED;
    }

    return ngx_http_xregion_answer_error(r, ctx, XR_E_BUSY_RETRY,
               "the replay guard is unavailable, try again later");
}


static void
ngx_http_xregion_nonce_reply(void *data, ngx_http_xregion_reply_t *reply)
{
    ngx_http_request_t *r = data;

    ngx_int_t                     rc;
    ngx_http_xregion_ctx_t       *ctx;
    ngx_http_xregion_loc_conf_t  *xlcf;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx->state != NGX_HTTP_XREGION_STORE) {
        return;
    }

    ctx->state = NGX_HTTP_XREGION_READING;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    if (reply && reply->type == NGX_HTTP_XREGION_REPLY_STATUS) {
        rc = ngx_http_xregion_prepare(r, ctx);

    } else if (reply && reply->type == NGX_HTTP_XREGION_REPLY_NIL) {
        rc = ngx_http_xregion_answer_error(r, ctx, XR_E_REPLAY,
                 "the nonce was already used");

    } else if (xlcf->replay_unavailable == NGX_HTTP_XREGION_FORWARD) {
        rc = ngx_http_xregion_prepare(r, ctx);

    } else {
        rc = ngx_http_xregion_answer_error(r, ctx, XR_E_BUSY_RETRY,
                 "the replay guard is unavailable, try again later");
    }

    ngx_http_xregion_continue(r, rc);
}


/* before the exchange */

/*
 * NGX_DECLINED: forward now.  NGX_DONE: a Redis step will go on.  Else the
 * rc of an answer given.
 */

ngx_int_t
ngx_http_xregion_store_before(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    int                            rc;
    xr_str_t                       key;
    const xr_stxn_t               *stxn;
    const xr_schema_t             *schema;
    ngx_http_xregion_loc_conf_t   *xlcf;
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    if (xmcf->redis == NULL) {
        return NGX_DECLINED;
    }

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    stxn = ctx->ptxn->stxn;
    schema = xr_config_schema(xmcf->config,
                              ngx_http_xregion_xstr(&ctx->domain));

    if (stxn == NULL || schema == NULL) {
        return NGX_DECLINED;
    }

    if (stxn->kind == XR_TXN_QUERY && stxn->cacheable && xlcf->cache) {
        return ngx_http_xregion_cache_lookup(r, ctx, schema, stxn, xlcf);
    }

    if (stxn->kind != XR_TXN_MONEY || !xlcf->idempotency) {
        return NGX_DECLINED;
    }

    rc = xr_policy_idempotency_key(&ctx->xr, schema, stxn, &ctx->req,
                                   ctx->caller->name, &key);

    if (rc == XR_DECLINED) {
        return NGX_DECLINED;
    }

    if (rc != XR_OK
        || ngx_http_xregion_key(r->pool, &ctx->idem_key, key) != NGX_OK
        || xr_policy_fingerprint(&ctx->xr, &ctx->req,
                                 (char *) ctx->fingerprint)
           != XR_OK)
    {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
    }

    return ngx_http_xregion_claim(r, ctx);
}


static ngx_int_t
ngx_http_xregion_cache_lookup(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, const xr_schema_t *schema,
    const xr_stxn_t *stxn, ngx_http_xregion_loc_conf_t *xlcf)
{
    int        rc;
    xr_str_t   key;
    ngx_str_t  argv[2];

    if (ngx_http_xregion_cache_ttl(xlcf, stxn->name) == 0) {
        return NGX_DECLINED;
    }

    rc = xr_policy_cache_key(&ctx->xr, schema, stxn, &ctx->req,
                             ngx_http_xregion_xstr(&ctx->dest_code), &key);

    if (rc == XR_DECLINED) {
        /* no identifying value to key the answer by */
        ngx_str_set(&ctx->cache, "BYPASS");
        return NGX_DECLINED;
    }

    if (rc != XR_OK
        || ngx_http_xregion_key(r->pool, &ctx->cache_key, key) != NGX_OK)
    {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NONE, NULL);
    }

    ngx_str_set(&argv[0], "GET");
    argv[1] = ctx->cache_key;

    if (ngx_http_xregion_redis_command(r->pool, ngx_http_xregion_cache_reply,
                                       r, 2, argv)
        != NGX_OK)
    {
        ngx_str_set(&ctx->cache, "BYPASS");
        return NGX_DECLINED;
    }

    ctx->state = NGX_HTTP_XREGION_STORE;

    return NGX_DONE;
}


static void
ngx_http_xregion_cache_reply(void *data, ngx_http_xregion_reply_t *reply)
{
    ngx_http_request_t *r = data;

    u_char                  *p;
    uint64_t                 expires;
    ngx_int_t                rc;
    ngx_uint_t               i;
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx->state != NGX_HTTP_XREGION_STORE) {
        return;
    }

    ctx->state = NGX_HTTP_XREGION_READING;

    if (reply == NULL || reply->type == NGX_HTTP_XREGION_REPLY_ERROR) {
        ngx_str_set(&ctx->cache, "BYPASS");
        ngx_http_xregion_continue(r, ngx_http_xregion_forward(r, ctx));
        return;
    }

    ctx->cache_store = 1;

    if (reply->type != NGX_HTTP_XREGION_REPLY_STRING) {
        ngx_str_set(&ctx->cache, "MISS");
        ngx_http_xregion_continue(r, ngx_http_xregion_forward(r, ctx));
        return;
    }

    p = reply->str.data;

    if (reply->str.len < 9 || p[0] != 'C') {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "xregion: cache entry \"%V\" is not ours, replaced",
                      &ctx->cache_key);
        ngx_str_set(&ctx->cache, "MISS");
        ngx_http_xregion_continue(r, ngx_http_xregion_forward(r, ctx));
        return;
    }

    expires = 0;

    for (i = 0; i < 8; i++) {
        expires |= (uint64_t) p[1 + i] << (8 * i);
    }

    if (ngx_http_xregion_now_ms() >= expires) {
        ngx_str_set(&ctx->cache, "EXPIRED");
        ngx_http_xregion_continue(r, ngx_http_xregion_forward(r, ctx));
        return;
    }

    ngx_str_set(&ctx->cache, "HIT");

    rc = ngx_http_xregion_replay(r, ctx, p + 9, reply->str.len - 9,
                                 "cache entry");

    if (rc == NGX_DECLINED) {
        ngx_str_set(&ctx->cache, "MISS");
        rc = ngx_http_xregion_forward(r, ctx);
    }

    ngx_http_xregion_continue(r, rc);
}


/*
 * SET key "P"<fingerprint><token> NX GET PX <in flight>: nil when the
 * claim is ours, else what the key holds.  The claim lives as long as the
 * first request may take, and then some.
 */

static ngx_int_t
ngx_http_xregion_claim(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx)
{
    u_char                       *p, ttl[NGX_INT_T_LEN];
    ngx_str_t                     argv[7];
    ngx_http_xregion_claim_t     *claim;
    ngx_http_xregion_loc_conf_t  *xlcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    if (ctx->marker.data == NULL) {
        ctx->marker.data = ngx_pnalloc(r->pool, 1 + NGX_HTTP_XREGION_FP_LEN
                                                + 3 * NGX_INT_T_LEN + 3);
        if (ctx->marker.data == NULL) {
            return ngx_http_xregion_answer_error(r, ctx, XR_E_NOMEM, NULL);
        }

        /* the token tells this claim from any other of the same body */
        p = ngx_sprintf(ctx->marker.data, "P%*s%P.%ui.%ui",
                        (size_t) NGX_HTTP_XREGION_FP_LEN, ctx->fingerprint,
                        ngx_pid, ++ngx_http_xregion_claim_seq,
                        (ngx_uint_t) ngx_random());
        ctx->marker.len = p - ctx->marker.data;
    }

    ngx_str_set(&argv[0], "SET");
    argv[1] = ctx->idem_key;
    argv[2] = ctx->marker;
    ngx_str_set(&argv[3], "NX");
    ngx_str_set(&argv[4], "GET");
    ngx_str_set(&argv[5], "PX");
    argv[6].data = ttl;
    argv[6].len = ngx_sprintf(ttl, "%M", 2 * xlcf->timeout + 10000) - ttl;

    claim = ngx_alloc(sizeof(ngx_http_xregion_claim_t) + ctx->idem_key.len
                      + ctx->marker.len, r->connection->log);
    if (claim == NULL) {
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NOMEM, NULL);
    }

    claim->r = r;
    claim->key.data = (u_char *) &claim[1];
    claim->key.len = ctx->idem_key.len;
    claim->marker.data = ngx_cpymem(claim->key.data, ctx->idem_key.data,
                                    ctx->idem_key.len);
    claim->marker.len = ctx->marker.len;
    ngx_memcpy(claim->marker.data, ctx->marker.data, ctx->marker.len);

    claim->cln = ngx_pool_cleanup_add(r->pool, 0);
    if (claim->cln == NULL) {
        ngx_free(claim);
        return ngx_http_xregion_answer_error(r, ctx, XR_E_NOMEM, NULL);
    }

    claim->cln->handler = ngx_http_xregion_claim_cleanup;
    claim->cln->data = claim;

    if (ngx_http_xregion_redis_command(NULL, ngx_http_xregion_claim_reply,
                                       claim, 7, argv)
        != NGX_OK)
    {
        claim->cln->handler = NULL;
        ngx_free(claim);
        return ngx_http_xregion_unavailable(r, ctx);
    }

    ctx->state = NGX_HTTP_XREGION_STORE;

    return NGX_DONE;
}


static void
ngx_http_xregion_claim_cleanup(void *data)
{
    ngx_http_xregion_claim_t *claim = data;

    claim->r = NULL;
    claim->cln = NULL;
}


static void
ngx_http_xregion_claim_reply(void *data, ngx_http_xregion_reply_t *reply)
{
    ngx_http_xregion_claim_t *claim = data;

    ngx_int_t                rc;
    ngx_http_request_t      *r;
    ngx_http_xregion_ctx_t  *ctx;

    if (claim->cln) {
        claim->cln->handler = NULL;
    }

    r = claim->r;

    if (r == NULL) {
        if (reply && reply->type == NGX_HTTP_XREGION_REPLY_NIL) {
            ngx_log_error(NGX_LOG_INFO, ngx_cycle->log, 0,
                          "xregion: claim \"%V\" given back: its request "
                          "ended before Redis granted it", &claim->key);
            ngx_http_xregion_release(&claim->key, &claim->marker);
        }

        ngx_free(claim);
        return;
    }

    ngx_free(claim);

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx->state != NGX_HTTP_XREGION_STORE) {
        return;
    }

    ctx->state = NGX_HTTP_XREGION_READING;

    if (reply == NULL || reply->type == NGX_HTTP_XREGION_REPLY_ERROR) {
        rc = ngx_http_xregion_unavailable(r, ctx);

    } else if (reply->type == NGX_HTTP_XREGION_REPLY_NIL) {
        ctx->claimed = 1;

        if (ctx->idempotency.len == 0) {
            ngx_str_set(&ctx->idempotency, "NEW");
        }

        rc = ngx_http_xregion_forward(r, ctx);

    } else if (reply->type == NGX_HTTP_XREGION_REPLY_STRING) {
        rc = ngx_http_xregion_claim_found(r, ctx, &reply->str);

    } else {
        rc = ngx_http_xregion_unavailable(r, ctx);
    }

    ngx_http_xregion_continue(r, rc);
}


/* The key is someone's: a conflict, a recorded answer, or in flight. */

static ngx_int_t
ngx_http_xregion_claim_found(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_str_t *value)
{
    ngx_int_t                     rc;
    ngx_http_xregion_loc_conf_t  *xlcf;

    if (value->len < 1 + NGX_HTTP_XREGION_FP_LEN
        || (value->data[0] != 'P' && value->data[0] != 'D'))
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "xregion: idempotency record \"%V\" is not ours",
                      &ctx->idem_key);
        return ngx_http_xregion_unavailable(r, ctx);
    }

    if (ngx_memcmp(value->data + 1, ctx->fingerprint,
                   NGX_HTTP_XREGION_FP_LEN)
        != 0)
    {
        ngx_str_set(&ctx->idempotency, "CONFLICT");

        return ngx_http_xregion_answer_error(r, ctx, XR_E_CONFLICT,
                   "message id %V was already used for a different %V "
                   "request", &ctx->msg_id, &ctx->txn);
    }

    if (value->data[0] == 'D') {
        if (ctx->idempotency.len == 0) {
            ngx_str_set(&ctx->idempotency, "REPLAY");
        }

        rc = ngx_http_xregion_replay(r, ctx,
                                     value->data + 1 + NGX_HTTP_XREGION_FP_LEN,
                                     value->len - 1 - NGX_HTTP_XREGION_FP_LEN,
                                     "idempotency record");

        if (rc == NGX_DECLINED) {
            /* never settle again on a record we cannot read */
            return ngx_http_xregion_answer_error(r, ctx, XR_E_INTERNAL,
                       "the recorded answer to message id %V cannot be "
                       "read", &ctx->msg_id);
        }

        return rc;
    }

    /* in flight: wait for the first request's answer, bounded */

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    ngx_str_set(&ctx->idempotency, "WAITED");

    if (ctx->wait.handler == NULL) {
        ctx->wait.handler = ngx_http_xregion_wait_handler;
        ctx->wait.data = r;
        ctx->wait.log = r->connection->log;
        ctx->wait_until = ngx_current_msec + xlcf->idempotency_wait;
        ctx->wait_step = NGX_HTTP_XREGION_WAIT_FIRST;
    }

    if ((ngx_msec_int_t) (ngx_current_msec - ctx->wait_until) >= 0) {
        ngx_str_set(&ctx->idempotency, "BUSY");

        return ngx_http_xregion_answer_error(r, ctx, XR_E_BUSY_RETRY,
                   "message id %V is still being processed, try again "
                   "later", &ctx->msg_id);
    }

    ngx_add_timer(&ctx->wait, ngx_min(ctx->wait_step,
                                      ctx->wait_until - ngx_current_msec));
    ctx->wait_step = ngx_min(ctx->wait_step * 2, NGX_HTTP_XREGION_WAIT_MAX);

    ctx->state = NGX_HTTP_XREGION_STORE;

    return NGX_DONE;
}


static void
ngx_http_xregion_wait_handler(ngx_event_t *ev)
{
    ngx_http_request_t *r = ev->data;

    ngx_str_t                argv[2];
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx->state != NGX_HTTP_XREGION_STORE) {
        return;
    }

    ngx_str_set(&argv[0], "GET");
    argv[1] = ctx->idem_key;

    if (ngx_http_xregion_redis_command(r->pool, ngx_http_xregion_wait_reply,
                                       r, 2, argv)
        != NGX_OK)
    {
        ctx->state = NGX_HTTP_XREGION_READING;
        ngx_http_xregion_continue(r, ngx_http_xregion_unavailable(r, ctx));
    }
}


static void
ngx_http_xregion_wait_reply(void *data, ngx_http_xregion_reply_t *reply)
{
    ngx_http_request_t *r = data;

    ngx_int_t                rc;
    ngx_http_xregion_ctx_t  *ctx;

    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_module);

    if (ctx->state != NGX_HTTP_XREGION_STORE) {
        return;
    }

    ctx->state = NGX_HTTP_XREGION_READING;

    if (reply == NULL || reply->type == NGX_HTTP_XREGION_REPLY_ERROR) {
        rc = ngx_http_xregion_unavailable(r, ctx);

    } else if (reply->type == NGX_HTTP_XREGION_REPLY_NIL) {
        /* the first one gave its claim back: claim it ourselves */
        rc = ngx_http_xregion_claim(r, ctx);

    } else if (reply->type == NGX_HTTP_XREGION_REPLY_STRING) {
        rc = ngx_http_xregion_claim_found(r, ctx, &reply->str);

    } else {
        rc = ngx_http_xregion_unavailable(r, ctx);
    }

    ngx_http_xregion_continue(r, rc);
}


/* Redis cannot vouch that a money transaction happens once. */

static ngx_int_t
ngx_http_xregion_unavailable(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    ngx_http_xregion_loc_conf_t  *xlcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    if (xlcf->idempotency_unavailable == NGX_HTTP_XREGION_FORWARD) {
        ngx_str_set(&ctx->idempotency, "BYPASS");
        return ngx_http_xregion_forward(r, ctx);
    }

    ngx_str_set(&ctx->idempotency, "UNAVAILABLE");

    return ngx_http_xregion_answer_error(r, ctx, XR_E_BUSY_RETRY,
               "%V cannot be done safely now (the gateway's state store is "
               "unavailable), try again later", &ctx->txn);
}


/*
 * A stored canonical answer, encoded for this caller.  NGX_DECLINED: the
 * record does not read (logged).
 */

static ngx_int_t
ngx_http_xregion_replay(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    u_char *data, size_t len, const char *what)
{
    xr_msg_t  ans;

    xr_ctx_clear(&ctx->xr);
    xr_msg_init(&ans, XR_DIR_RESPONSE);

    if (xr_record_unpack(&ctx->xr, (const char *) data, len, &ans) != XR_OK
        || ans.dir != XR_DIR_RESPONSE)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "xregion: %s for msg_id \"%V\" does not read: %s",
                      what, &ctx->msg_id, ctx->xr.errstr);
        xr_ctx_clear(&ctx->xr);
        return NGX_DECLINED;
    }

    if (ctx->deadline.timer_set) {
        ngx_del_timer(&ctx->deadline);
    }

    ctx->state = NGX_HTTP_XREGION_DONE;

    ngx_http_xregion_adopt(ctx, &ans);

    return ngx_http_xregion_answer(r, ctx, &ans);
}


/* after the exchange */

/*
 * The destination's decoded answer: cached (a successful cacheable
 * query), recorded (a claimed money transaction, whatever the answer
 * said), and the cached answers it makes stale dropped.  Nobody waits for
 * these writes: the caller has its answer either way.
 */

void
ngx_http_xregion_store_after(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, const xr_msg_t *ans)
{
    u_char                          ttl[NGX_INT_T_LEN];
    size_t                          i, n;
    uint64_t                        expires;
    xr_buf_t                        rec;
    xr_str_t                        keys[NGX_HTTP_XREGION_MAXINV];
    ngx_str_t                       argv[NGX_HTTP_XREGION_MAXINV + 1];
    ngx_msec_t                      ms;
    const xr_stxn_t                *stxn;
    const xr_schema_t              *schema;
    ngx_http_xregion_loc_conf_t    *xlcf;
    ngx_http_xregion_main_conf_t   *xmcf;
    ngx_http_xregion_record_log_t  *rl;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    if (xmcf->redis == NULL || ctx->ptxn == NULL) {
        return;
    }

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);
    stxn = ctx->ptxn->stxn;

    if (stxn == NULL) {
        return;
    }

    if ((ctx->cache_store && ans->ok) || ctx->claimed) {

        xr_buf_init(&rec, ctx->pool, 0);

        if (ctx->claimed) {
            xr_buf_add(&rec, "D", 1);
            xr_buf_add(&rec, (const char *) ctx->fingerprint,
                       NGX_HTTP_XREGION_FP_LEN);

        } else {
            ms = ngx_http_xregion_cache_ttl(xlcf, stxn->name);
            expires = ngx_http_xregion_now_ms() + ms;

            xr_buf_add(&rec, "C", 1);

            for (i = 0; i < 8; i++) {
                xr_buf_addc(&rec, (char) (expires >> (8 * i)));
            }
        }

        if (xr_record_pack(&ctx->xr, ans, &rec) != XR_OK || rec.failed) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "xregion: answer to msg_id \"%V\" not stored: %s",
                          &ctx->msg_id, ctx->xr.errstr);
            xr_ctx_clear(&ctx->xr);
            goto invalidate;
        }

        if (ctx->claimed) {
            ngx_str_set(&argv[0], "EVAL");
            argv[1] = ngx_http_xregion_record_lua;
            ngx_str_set(&argv[2], "1");
            argv[3] = ctx->idem_key;
            argv[4] = ctx->marker;
            argv[5].data = (u_char *) rec.data;
            argv[5].len = rec.len;
            argv[6].data = ttl;
            argv[6].len = ngx_sprintf(ttl, "%M", xlcf->idempotency_ttl) - ttl;

            /* a record that is not written is worth an error line */
            rl = ngx_alloc(sizeof(ngx_http_xregion_record_log_t)
                           + ctx->msg_id.len, r->connection->log);

            if (rl) {
                rl->log = ngx_cycle->log;
                rl->len = ctx->msg_id.len;
                ngx_memcpy(rl->msg_id, ctx->msg_id.data, ctx->msg_id.len);

                if (ngx_http_xregion_redis_command(NULL,
                        ngx_http_xregion_record_reply, rl, 7, argv)
                    != NGX_OK)
                {
                    ngx_http_xregion_record_reply(rl, NULL);
                }
            }

            ctx->claimed = 0;

        } else {
            ms = ngx_http_xregion_cache_ttl(xlcf, stxn->name);

            ngx_str_set(&argv[0], "SET");
            argv[1] = ctx->cache_key;
            argv[2].data = (u_char *) rec.data;
            argv[2].len = rec.len;
            ngx_str_set(&argv[3], "PX");
            argv[4].data = ttl;
            /* kept past its TTL to be told apart from none: EXPIRED */
            argv[4].len = ngx_sprintf(ttl, "%M", 2 * ms) - ttl;

            (void) ngx_http_xregion_redis_command(NULL, NULL, NULL, 5, argv);
        }
    }

invalidate:

    if (stxn->ninvalidates == 0) {
        return;
    }

    schema = xr_config_schema(xmcf->config,
                              ngx_http_xregion_xstr(&ctx->domain));

    if (schema == NULL
        || xr_policy_invalidations(&ctx->xr, schema, stxn, &ctx->req,
                                   ngx_http_xregion_xstr(&ctx->dest_code),
                                   keys, NGX_HTTP_XREGION_MAXINV, &n)
           != XR_OK
        || n == 0)
    {
        xr_ctx_clear(&ctx->xr);
        return;
    }

    ngx_str_set(&argv[0], "DEL");

    for (i = 0; i < n; i++) {
        if (ngx_http_xregion_key(r->pool, &argv[i + 1], keys[i]) != NGX_OK) {
            return;
        }
    }

    if (ngx_http_xregion_redis_command(NULL, NULL, NULL, n + 1, argv)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "xregion: cached answers made stale by msg_id \"%V\" "
                      "not dropped: redis unavailable", &ctx->msg_id);
    }
}


static void
ngx_http_xregion_record_reply(void *data, ngx_http_xregion_reply_t *reply)
{
    ngx_http_xregion_record_log_t *rl = data;

    ngx_str_t  id;

    id.data = rl->msg_id;
    id.len = rl->len;

    if (reply == NULL || reply->type == NGX_HTTP_XREGION_REPLY_ERROR) {
        ngx_log_error(NGX_LOG_ERR, rl->log, 0,
                      "xregion: the answer to money transaction msg_id "
                      "\"%V\" was not recorded (%V): a retry waits until "
                      "its claim expires", &id,
                      reply ? &reply->str : &id);

    } else if (reply->type == NGX_HTTP_XREGION_REPLY_INTEGER) {
        /* 0: the claim was no longer ours (it expired meanwhile) */
        ngx_log_error(NGX_LOG_WARN, rl->log, 0,
                      "xregion: the claim on msg_id \"%V\" expired before "
                      "its answer came: answer not recorded", &id);
    }

    ngx_free(rl);
}


/*
 * The destination cannot have seen the request: the claim goes, a retry
 * may go through.  When it may have seen it, the claim stays to expire.
 */

void
ngx_http_xregion_store_failed(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_uint_t delivered)
{
    if (!ctx->claimed) {
        return;
    }

    ctx->claimed = 0;

    if (delivered) {
        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "xregion: the outcome of msg_id \"%V\" at %V is "
                      "unknown: its retries are held until the claim "
                      "expires", &ctx->msg_id, &ctx->dest_name);
        return;
    }

    ngx_http_xregion_release(&ctx->idem_key, &ctx->marker);
}


/* The claim goes, if it is still ours. */

static void
ngx_http_xregion_release(ngx_str_t *key, ngx_str_t *marker)
{
    ngx_str_t  argv[5];

    ngx_str_set(&argv[0], "EVAL");
    argv[1] = ngx_http_xregion_release_lua;
    ngx_str_set(&argv[2], "1");
    argv[3] = *key;
    argv[4] = *marker;

    (void) ngx_http_xregion_redis_command(NULL, NULL, NULL, 5, argv);
}


/* helpers */

static ngx_int_t
ngx_http_xregion_key(ngx_pool_t *pool, ngx_str_t *key, xr_str_t name)
{
    u_char                        *p;
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_cycle_get_module_main_conf(ngx_cycle,
                                               ngx_http_xregion_module);

    key->data = ngx_pnalloc(pool, xmcf->redis->prefix.len + name.len);
    if (key->data == NULL) {
        return NGX_ERROR;
    }

    p = ngx_cpymem(key->data, xmcf->redis->prefix.data,
                   xmcf->redis->prefix.len);
    p = ngx_cpymem(p, name.data, name.len);

    key->len = p - key->data;

    return NGX_OK;
}


static ngx_msec_t
ngx_http_xregion_cache_ttl(ngx_http_xregion_loc_conf_t *xlcf, xr_str_t txn)
{
    ngx_uint_t                     i;
    ngx_http_xregion_cache_ttl_t  *t;

    if (xlcf->cache_ttls) {
        t = xlcf->cache_ttls->elts;

        for (i = 0; i < xlcf->cache_ttls->nelts; i++) {
            if (t[i].txn.len == txn.len
                && ngx_strncmp(t[i].txn.data, txn.data, txn.len) == 0)
            {
                return t[i].ttl;
            }
        }
    }

    return xlcf->cache_ttl;
}


static uint64_t
ngx_http_xregion_now_ms(void)
{
    ngx_time_t  *tp;

    tp = ngx_timeofday();

    return (uint64_t) tp->sec * 1000 + tp->msec;
}
