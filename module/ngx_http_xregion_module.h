
/*
 * xregion: the nginx side of the gateway.
 *
 * The module is thin glue around the translation core (core/, adapters/):
 *
 *   ngx_http_xregion_module.c     directives, configuration, process hooks
 *   ngx_http_xregion_route.c      route tables, destination regions/profiles
 *   ngx_http_xregion_exchange.c   content handler: body, translation,
 *                                 subrequest to the destination, deadline
 *   ngx_http_xregion_filter.c     size limits of the body and the answer
 *   ngx_http_xregion_answer.c     answers to the caller, failure log lines
 *   ngx_http_xregion_variables.c  $xregion_* variables
 *   ngx_http_xregion_pool.c       the core's arena over an ngx_pool_t
 *   ngx_http_xregion_access.c     xregion_allow: who may call what, where
 *   ngx_http_xregion_signature.c  xregion_verify: signed requests
 *   ngx_http_xregion_sign.c       what the gateway signs: requests to
 *                                 destinations, answers to callers
 *   ngx_http_xregion_seal.c       sealed profiles (SM4 + SM2 envelope)
 *   ngx_http_xregion_redis.c      hiredis on nginx's event loop, per worker
 *   ngx_http_xregion_store.c      cache, idempotency and nonces in Redis
 *   ngx_http_xregion_limit.c      xregion_limit_*: rate limits per caller
 *                                 and per destination (Redis, else shared
 *                                 memory)
 *   ngx_http_xregion_breaker.c    xregion_breaker: a circuit breaker per
 *                                 destination upstream (shared memory)
 *   ngx_http_xregion_audit.c      xregion_audit: the audit trail's writer
 *                                 (chain in shared memory, files, group
 *                                 commit, checkpoints, rotation, restart)
 *   ngx_http_xregion_audit_pull.c xregion_audit_pull: the regulators' pull
 *                                 API over the audit files (its own module,
 *                                 ngx_http_xregion_audit_pull_module, holds
 *                                 its configuration and request context)
 *   ngx_http_xregion_metrics.c    xregion_metrics: Prometheus counters in
 *                                 shared memory
 *   ngx_http_xregion_health.c     xregion_health: for load balancers, and
 *                                 the maintenance drain
 *
 * Configuration data (xr_config_t, route tables) is built at configuration
 * time and read-only afterwards.  Everything a request needs lives in its
 * ngx_http_xregion_ctx_t, allocated from the main request's pool.
 */


#ifndef _NGX_HTTP_XREGION_MODULE_H_INCLUDED_
#define _NGX_HTTP_XREGION_MODULE_H_INCLUDED_


#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>

#include "xr_core.h"
#include "xr_msg.h"
#include "xr_profile.h"
#include "xr_translate.h"
#include "xr_route.h"
#include "xr_crypto.h"


#define NGX_HTTP_XREGION_MEDICAL      0
#define NGX_HTTP_XREGION_TRANSIT      1
#define NGX_HTTP_XREGION_GOV          2
#define NGX_HTTP_XREGION_NDOMAINS     3


/* ngx_http_xregion_ctx_t.state */
#define NGX_HTTP_XREGION_READING      0   /* reading and translating */
#define NGX_HTTP_XREGION_WAITING      1   /* subrequest in flight */
#define NGX_HTTP_XREGION_ANSWERING    2   /* subrequest done, main posted */
#define NGX_HTTP_XREGION_DONE         3   /* the caller has its answer */
#define NGX_HTTP_XREGION_STORE        4   /* waiting for Redis */


/* xregion_idempotency_unavailable, xregion_replay_guard unavailable= */
#define NGX_HTTP_XREGION_REFUSE       0
#define NGX_HTTP_XREGION_FORWARD      1


/* Redis replies, as the store sees them (hiredis stays in one file). */
#define NGX_HTTP_XREGION_REPLY_NIL        0
#define NGX_HTTP_XREGION_REPLY_STRING     1
#define NGX_HTTP_XREGION_REPLY_STATUS     2
#define NGX_HTTP_XREGION_REPLY_INTEGER    3
#define NGX_HTTP_XREGION_REPLY_ARRAY      4
#define NGX_HTTP_XREGION_REPLY_ERROR      5


#define ngx_http_xregion_xstr(s)                                              \
    ((xr_str_t) { (s)->len, (const char *) (s)->data })

#define ngx_http_xregion_nstr(n, x)                                           \
    (n)->len = (x).len; (n)->data = (u_char *) (x).data


/* One xregion_route directive, as written. */
typedef struct {
    ngx_uint_t                  domain;
    ngx_str_t                   txn;        /* empty: every transaction */
    ngx_str_t                   prefix;     /* empty: "default" */
    ngx_str_t                   upstream;   /* an upstream{} block */
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_route_t;


typedef struct {
    xr_str_t                    txn;
    xr_prefix_table_t           table;      /* of ngx_http_xregion_route_t */
} ngx_http_xregion_txn_routes_t;


typedef struct {
    xr_prefix_table_t           table;      /* routes for every txn */
    ngx_array_t                 txns;       /* ngx_http_xregion_txn_routes_t */
} ngx_http_xregion_routes_t;


typedef struct {
    ngx_uint_t                  type;
    ngx_str_t                   str;        /* STRING, STATUS, ERROR */
    int64_t                     integer;    /* INTEGER; ARRAY: elements */
} ngx_http_xregion_reply_t;


/*
 * reply NULL: the command failed (no connection, timeout, worker exit).
 * The reply's memory is hiredis's: valid during the call only.
 */
typedef void (*ngx_http_xregion_redis_pt)(void *data,
    ngx_http_xregion_reply_t *reply);

typedef struct ngx_http_xregion_redis_cmd_s  ngx_http_xregion_redis_cmd_t;


typedef struct {
    ngx_str_t                   ip;         /* numeric, NUL-terminated */
    ngx_uint_t                  port;
} ngx_http_xregion_redis_addr_t;


/* xregion_redis */
typedef struct {
    ngx_str_t                   ip;         /* numeric, NUL-terminated */
    ngx_uint_t                  port;
    ngx_str_t                   unix_path;  /* NUL-terminated */
    ngx_array_t                *sentinels;  /* ngx_http_xregion_redis_addr_t
                                             */
    ngx_str_t                   master;     /* Sentinel's master name */
    ngx_str_t                   password;
    ngx_str_t                   sentinel_password;
    ngx_uint_t                  db;
    ngx_str_t                   prefix;
    ngx_msec_t                  connect_timeout;
    ngx_msec_t                  timeout;
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_redis_conf_t;


/* Per worker, for the log and the metrics. */
typedef struct {
    ngx_uint_t                  commands;
    ngx_uint_t                  errors;
    ngx_uint_t                  timeouts;
    ngx_uint_t                  declined;   /* asked while not ready */
    ngx_uint_t                  outages;
} ngx_http_xregion_redis_stats_t;


/* xregion_cache_ttl <txn> <time> */
typedef struct {
    ngx_str_t                   txn;
    ngx_msec_t                  ttl;
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_cache_ttl_t;


/* ngx_http_xregion_limit_t.kind */
#define NGX_HTTP_XREGION_LIMIT_CALLER  0
#define NGX_HTTP_XREGION_LIMIT_DEST    1


/* One xregion_limit_caller or xregion_limit_dest directive. */
typedef struct {
    ngx_uint_t                  kind;
    ngx_str_t                   name;       /* caller or region; empty: the
                                               default of this level */
    uint64_t                    interval;   /* us between requests at the
                                               rate */
    uint64_t                    tolerance;  /* burst * interval */
    ngx_str_t                   text;       /* "5r/s burst=10", for logs */
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_limit_t;


/* ngx_http_xregion_outcome_class(): docs/regulators.md's outcomes */
#define NGX_HTTP_XREGION_OK           0
#define NGX_HTTP_XREGION_CACHED       1
#define NGX_HTTP_XREGION_REPLAYED     2
#define NGX_HTTP_XREGION_BIZ_ERROR    3
#define NGX_HTTP_XREGION_REJECTED     4
#define NGX_HTTP_XREGION_FAILED       5
#define NGX_HTTP_XREGION_NOUTCOMES    6


/* ngx_http_xregion_breaker_state(), ngx_http_xregion_breaker_info_t.state */
#define NGX_HTTP_XREGION_BREAKER_NONE       0   /* no breaker for it */
#define NGX_HTTP_XREGION_BREAKER_CLOSED     1
#define NGX_HTTP_XREGION_BREAKER_OPEN       2
#define NGX_HTTP_XREGION_BREAKER_HALF_OPEN  3   /* its back-off is over */


/* One destination's breaker, as ngx_http_xregion_breaker_info() sees it. */
typedef struct {
    ngx_str_t                   upstream;   /* the upstream{} name, as the
                                               first route writes it;
                                               configuration memory */
    ngx_uint_t                  state;      /* NGX_HTTP_XREGION_BREAKER_* */
    ngx_uint_t                  opened;     /* times it opened (re-openings
                                               too) since the zone began */
    ngx_msec_t                  retry;      /* OPEN: ms until half-open */
} ngx_http_xregion_breaker_info_t;


/* xregion_audit required= */
#define NGX_HTTP_XREGION_AUDIT_MONEY  0     /* money txns need the log */
#define NGX_HTTP_XREGION_AUDIT_ALL    1     /* every txn needs it */

/*
 * xregion_audit: one chain per instance, in files of one directory:
 *
 *   <dir>/audit-<first seq, 20 digits>.jsonl
 *
 * so that the names sort in chain order and a file's name says where its
 * seqs start (readers skip files by name).  The last file in that order is
 * the one being written; lines reach it whole (one write() each), so a
 * reader that stops at its last '\n' reads only whole entries.
 */
typedef struct {
    ngx_str_t                   dir;        /* absolute, no trailing '/',
                                               NUL-terminated */
    ngx_str_t                   instance;   /* "inst" of every entry */
    xr_digest_e                 hash;       /* the chain's digest */
    struct xr_key_s            *key;        /* signs checkpoints; its public
                                               half is served to regulators
                                             */
    ngx_msec_t                  sync;       /* 0: always (group commit) */
    off_t                       rotate_size;    /* 0: never by size */
    ngx_flag_t                  rotate_daily;
    ngx_uint_t                  ckpt_records;   /* a checkpoint every N */
    ngx_msec_t                  ckpt_interval;  /* or T */
    off_t                       reserve;    /* free disk below which money
                                               (or all) is refused */
    ngx_uint_t                  required;   /* NGX_HTTP_XREGION_AUDIT_* */
    ngx_str_t                   file;
    ngx_uint_t                  line;
    void                       *writer;     /* ngx_http_xregion_audit.c's */
} ngx_http_xregion_audit_conf_t;


typedef struct {
    ngx_uint_t                  failing;    /* the last write failed */
    ngx_uint_t                  low_space;  /* free space below reserve= */
    uint64_t                    records;    /* written since the zone was
                                               made */
    uint64_t                    lost;       /* not written */
    uint64_t                    head;       /* the chain's last seq */
    uint64_t                    durable;    /* synced up to */
    uint64_t                    signed_upto;    /* claimed by a checkpoint */
} ngx_http_xregion_audit_status_t;


/* One xregion_dest_profile directive. */
typedef struct {
    ngx_str_t                   region;
    ngx_uint_t                  domain;
    ngx_str_t                   name;
    const xr_profile_t         *profile;
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_dest_t;


typedef struct {
    xr_config_t                *config;
    ngx_str_t                   config_file;    /* where xregion_config is */
    ngx_uint_t                  config_line;

    xr_pool_t                  *pool;           /* over cf->pool */

    ngx_array_t                 routes;         /* ngx_http_xregion_route_t */
    ngx_http_xregion_routes_t   tables[NGX_HTTP_XREGION_NDOMAINS];
    ngx_array_t                 dests;          /* ngx_http_xregion_dest_t */
    ngx_array_t                 endpoints;      /* ngx_http_xregion_loc_conf_t *
                                                 */
    ngx_http_xregion_redis_conf_t  *redis;      /* NULL: no xregion_redis */
    ngx_array_t                *allow;          /* xregion_allow rules;
                                                   NULL: none, all allowed */
    ngx_array_t                *verify;         /* xregion_verify, per caller
                                                 */
    struct xr_key_s            *sign_key;       /* xregion_sign_key */
    ngx_str_t                   sign_id;        /* empty: the default ID */
    ngx_array_t                *upstream_sign;  /* xregion_upstream_sign */
    ngx_array_t                *seals;          /* xregion_seal */
    ngx_array_t                *limit_sets;     /* ngx_array_t * of
                                                   ngx_http_xregion_limit_t,
                                                   one per level */
    void                       *limit_zone;     /* ngx_http_xregion_limit.c's
                                                 */
    ngx_http_xregion_audit_conf_t  *audit;      /* NULL: no xregion_audit */
    void                       *breaker_zone;   /* the breakers' (their
                                                   file's); NULL: none */
    ngx_array_t                *regulators;     /* xregion_audit_regulator
                                                   (audit_pull.c's) */
    void                       *metrics;        /* ngx_http_xregion_metrics.c's
                                                 */
    ngx_str_t                   maintenance_file;   /* xregion_health's */
} ngx_http_xregion_main_conf_t;


typedef struct {
    ngx_uint_t                  domain;     /* NGX_CONF_UNSET_UINT: none */
    ngx_str_t                   file;       /* where `xregion` is */
    ngx_uint_t                  line;
    ngx_http_core_loc_conf_t   *core;

    ngx_http_complex_value_t   *caller;
    const xr_profile_t         *caller_profile;     /* a static value */
    ngx_str_t                   caller_file;
    ngx_uint_t                  caller_line;

    ngx_str_t                   pass;
    size_t                      max_body;
    ngx_msec_t                  timeout;

    ngx_flag_t                  cache;
    ngx_msec_t                  cache_ttl;      /* every cacheable txn */
    ngx_array_t                *cache_ttls;     /* ngx_http_xregion_cache_ttl_t
                                                 */
    ngx_flag_t                  idempotency;
    ngx_msec_t                  idempotency_ttl;
    ngx_msec_t                  idempotency_wait;
    ngx_uint_t                  idempotency_unavailable;

    ngx_msec_t                  replay_window;  /* 0: no replay guard */
    ngx_http_complex_value_t   *replay_nonce;
    ngx_http_complex_value_t   *replay_timestamp;
    ngx_uint_t                  replay_unavailable;

    ngx_flag_t                  sign_answers;
    ngx_array_t                *limit_callers;  /* ngx_http_xregion_limit_t;
                                                   NULL: the parent's */
    ngx_array_t                *limit_dests;
    ngx_http_xregion_limit_t  **limit_by_caller;    /* [profile index] */
    ngx_http_xregion_limit_t  **limit_by_dest;      /* [region index] */

    void                       *health;         /* xregion_health's */
    void                       *breaker;        /* xregion_breaker; NULL:
                                                   off */
} ngx_http_xregion_loc_conf_t;


typedef struct {
    ngx_uint_t                  state;
    ngx_http_request_t         *request;        /* the main request */
    ngx_uint_t                  domain_index;

    xr_pool_t                  *pool;           /* over r->pool */
    xr_ctx_t                    xr;
    xr_msg_t                    req;            /* the caller's, decoded */

    unsigned                    decoded:1;
    unsigned                    too_large:1;    /* body over max_body */
    unsigned                    sr_done:1;
    unsigned                    connected:1;    /* reached the upstream */
    unsigned                    answer_too_large:1;
    unsigned                    answer_done:1;  /* its last buffer came */

    off_t                       received;       /* request body bytes */
    off_t                       answered;       /* answer body bytes */
    size_t                      max_body;

    const xr_profile_t         *caller;
    const xr_profile_t         *dest;
    const xr_region_t          *dest_region;
    ngx_http_xregion_route_t   *route;

    const xr_ptxn_t            *ptxn;           /* the destination's */
    xr_buf_t                    out;            /* the translated request */

    /* Redis */
    ngx_str_t                   cache_key;
    ngx_str_t                   idem_key;
    ngx_str_t                   marker;         /* our in-flight claim */
    u_char                      fingerprint[64];
    ngx_event_t                 wait;           /* a duplicate waits */
    ngx_msec_t                  wait_until;
    ngx_msec_t                  wait_step;
    unsigned                    claimed:1;
    unsigned                    cache_store:1;
    unsigned                    nonce_checked:1;

    /* rate limits: [0] the caller's, [1] the destination's */
    ngx_http_xregion_limit_t   *limit_rule[2];  /* NULL: none applies */
    ngx_uint_t                  limit_slot[2];
    ngx_uint_t                  limit_script;   /* sent as EVAL, not EVALSHA
                                                 */
    ngx_uint_t                  retry_after;    /* s, for Retry-After; 0: 1
                                                 */

    ngx_http_request_t         *sr;
    ngx_int_t                   sr_rc;
    ngx_uint_t                  sr_status;
    ngx_str_t                   sr_body;
    ngx_event_t                 deadline;

    ngx_msec_int_t              upstream_time;  /* -1: no upstream */

    xr_err_e                    fail_err;       /* the exchange failed: */
    ngx_uint_t                  fail_delivered; /* it may have arrived */
    ngx_str_t                   fail_text;

    ngx_str_t                   detail;     /* for the log line, not the
                                               caller */

    /* values of the $xregion_* variables */
    ngx_str_t                   domain;
    ngx_str_t                   txn;
    ngx_str_t                   msg_id;
    ngx_str_t                   origin;
    ngx_str_t                   dest_code;
    ngx_str_t                   upstream;
    ngx_str_t                   outcome;
    ngx_str_t                   caller_name;
    ngx_str_t                   dest_name;
    ngx_str_t                   dest_path;
    ngx_str_t                   dest_content_type;
    ngx_str_t                   cache;          /* HIT MISS BYPASS EXPIRED */
    ngx_str_t                   idempotency;    /* NEW REPLAY CONFLICT ... */
    ngx_str_t                   up_signature;   /* xregion_upstream_sign */
    ngx_str_t                   up_timestamp;
    ngx_str_t                   up_nonce;
    ngx_str_t                   up_access_key;
    ngx_str_t                   limit;          /* PASSED REJECTED LOCAL
                                                   LOCAL_REJECTED */
    ngx_str_t                   breaker;        /* CLOSED OPEN HALF_OPEN
                                                   PROBE */

    /* the destination's breaker (ngx_http_xregion_breaker.c) */
    void                       *breaker_conf;   /* let through: the outcome
                                                   is told; else NULL */
    ngx_uint_t                  breaker_slot;
    uint64_t                    breaker_gen;
    unsigned                    breaker_probe:1;
    unsigned                    breaker_done:1; /* outcome told, or freed */

    /* the audit record (ngx_http_xregion_audit.c) */
    const xr_msg_t             *ans;            /* the answer told, if any */
    unsigned                    audited:1;      /* recorded, or tried */
    unsigned                    audit_wait:1;   /* in the writer's queue */
    unsigned                    body_started:1; /* the body is being read */
    unsigned                    held:1;         /* the answer waits */
    unsigned                    ending:1;       /* freed without an answer */
    unsigned                    counted:1;      /* in the metrics */
    uint64_t                    audit_seq;
    ngx_queue_t                 audit_queue;

    /* the answer held until its record is on disk */
    ngx_uint_t                  held_status;
    xr_str_t                    held_type;
    const char                 *held_data;
    size_t                      held_len;
} ngx_http_xregion_ctx_t;


/* ngx_http_xregion_module.c */
extern ngx_str_t  ngx_http_xregion_domains[];

ngx_int_t ngx_http_xregion_domain(ngx_str_t *name);


/* ngx_http_xregion_pool.c */
xr_pool_t *ngx_http_xregion_pool_create(ngx_pool_t *pool);


/* ngx_http_xregion_route.c */
ngx_int_t ngx_http_xregion_routes_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_http_xregion_route_t *ngx_http_xregion_route_find(
    ngx_http_xregion_main_conf_t *xmcf, ngx_uint_t domain, xr_str_t txn,
    xr_str_t code);
const xr_region_t *ngx_http_xregion_region_of(
    ngx_http_xregion_main_conf_t *xmcf, xr_str_t code);
const xr_profile_t *ngx_http_xregion_dest_profile(
    ngx_http_xregion_main_conf_t *xmcf, ngx_uint_t domain,
    const xr_region_t *region);


/* ngx_http_xregion_exchange.c */
ngx_int_t ngx_http_xregion_handler(ngx_http_request_t *r);
ngx_int_t ngx_http_xregion_prepare(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
ngx_int_t ngx_http_xregion_forward(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
ngx_int_t ngx_http_xregion_admit(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
void ngx_http_xregion_adopt(ngx_http_xregion_ctx_t *ctx, xr_msg_t *ans);
void ngx_http_xregion_continue(ngx_http_request_t *r, ngx_int_t rc);


/* ngx_http_xregion_access.c */
char *ngx_http_xregion_allow_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_xregion_access_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_int_t ngx_http_xregion_access(ngx_http_xregion_main_conf_t *xmcf,
    ngx_http_xregion_ctx_t *ctx);


/* ngx_http_xregion_signature.c */
char *ngx_http_xregion_verify_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_xregion_verify_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_int_t ngx_http_xregion_verify(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, u_char *body, size_t len, ngx_int_t *rc);
ngx_int_t ngx_http_xregion_read_file(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *out);
ngx_int_t ngx_http_xregion_conf_secret(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *secret);
struct xr_key_s *ngx_http_xregion_conf_key(ngx_conf_t *cf, ngx_str_t *name);
ngx_int_t ngx_http_xregion_request_header(ngx_http_request_t *r,
    const char *name, size_t len, ngx_str_t *value);
xr_str_t ngx_http_xregion_request_path(ngx_http_request_t *r);


/* ngx_http_xregion_sign.c */
char *ngx_http_xregion_sign_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_xregion_upstream_sign_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_xregion_sign_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_int_t ngx_http_xregion_sign_upstream(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
void ngx_http_xregion_sign_answer(ngx_http_request_t *r, ngx_uint_t status,
    const char *data, size_t len);


/* ngx_http_xregion_seal.c */
char *ngx_http_xregion_seal_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_xregion_seal_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_int_t ngx_http_xregion_seal(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, const xr_profile_t *p, ngx_uint_t open,
    u_char **data, size_t *len);


/* ngx_http_xregion_redis.c */
ngx_int_t ngx_http_xregion_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_xregion_redis_conf_t *conf);
void ngx_http_xregion_redis_exit_process(ngx_cycle_t *cycle);
ngx_int_t ngx_http_xregion_redis_ready(void);
ngx_int_t ngx_http_xregion_redis_command(ngx_pool_t *pool,
    ngx_http_xregion_redis_pt handler, void *data, ngx_uint_t argc,
    ngx_str_t *argv);
ngx_http_xregion_redis_stats_t *ngx_http_xregion_redis_stats(void);


/* ngx_http_xregion_store.c */
char *ngx_http_xregion_redis_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
char *ngx_http_xregion_cache_ttl_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_xregion_replay_guard_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_xregion_store_check(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf, ngx_http_xregion_loc_conf_t *xlcf);
ngx_int_t ngx_http_xregion_store_nonce(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
ngx_int_t ngx_http_xregion_store_before(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
void ngx_http_xregion_store_after(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, const xr_msg_t *ans);
void ngx_http_xregion_store_failed(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, ngx_uint_t delivered);


/* ngx_http_xregion_limit.c */
char *ngx_http_xregion_limit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_xregion_limit_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_int_t ngx_http_xregion_limit(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);


/* ngx_http_xregion_breaker.c */
char *ngx_http_xregion_breaker_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_xregion_breaker_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_int_t ngx_http_xregion_breaker(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
void ngx_http_xregion_breaker_outcome(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_err_e err);
void ngx_http_xregion_breaker_release(ngx_http_xregion_ctx_t *ctx);

/*
 * For metrics and health, in a worker: the state of an upstream's breaker
 * (NGX_HTTP_XREGION_BREAKER_NONE: no route names it, or no location has a
 * breaker), and every breaker by index, 0 on: NGX_OK and *info filled, or
 * NGX_DONE past the last.  Each call takes the zone's lock briefly.
 */
ngx_uint_t ngx_http_xregion_breaker_state(ngx_str_t *upstream);
ngx_int_t ngx_http_xregion_breaker_info(ngx_uint_t i,
    ngx_http_xregion_breaker_info_t *info);


/* ngx_http_xregion_audit.c */
char *ngx_http_xregion_audit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_xregion_audit_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_int_t ngx_http_xregion_audit_init_process(ngx_cycle_t *cycle,
    ngx_http_xregion_main_conf_t *xmcf);
void ngx_http_xregion_audit_exit_process(void);
ngx_int_t ngx_http_xregion_audit_admit(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
ngx_int_t ngx_http_xregion_audit_record(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
uint64_t ngx_http_xregion_audit_head(ngx_http_xregion_main_conf_t *xmcf);
ngx_uint_t ngx_http_xregion_outcome_class(ngx_http_xregion_ctx_t *ctx);
ngx_int_t ngx_http_xregion_audit_status(ngx_http_xregion_main_conf_t *xmcf,
    ngx_http_xregion_audit_status_t *st);
extern ngx_str_t  ngx_http_xregion_outcomes[];


/* ngx_http_xregion_audit_pull.c */
char *ngx_http_xregion_audit_pull_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
char *ngx_http_xregion_audit_regulator_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf);
ngx_int_t ngx_http_xregion_audit_pull_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);


/* ngx_http_xregion_metrics.c */
char *ngx_http_xregion_metrics_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
ngx_int_t ngx_http_xregion_metrics_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf);
ngx_int_t ngx_http_xregion_metrics_init_process(ngx_cycle_t *cycle,
    ngx_http_xregion_main_conf_t *xmcf);
void ngx_http_xregion_metrics_exit_process(void);
void ngx_http_xregion_metrics_count(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx);
void ngx_http_xregion_metrics_error(xr_err_e err);
void ngx_http_xregion_metrics_audit(ngx_uint_t sync, uint64_t us);
ngx_int_t ngx_http_xregion_metrics_redis(ngx_uint_t *configured,
    ngx_uint_t *up, ngx_uint_t *workers);
ngx_uint_t ngx_http_xregion_metrics_draining(void);


/* ngx_http_xregion_health.c */
char *ngx_http_xregion_health_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf);
uint64_t ngx_http_xregion_now_us(void);


/* ngx_http_xregion_filter.c */
ngx_int_t ngx_http_xregion_filters_init(ngx_conf_t *cf);


/* ngx_http_xregion_answer.c */
ngx_int_t ngx_http_xregion_answer(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, const xr_msg_t *ans);
ngx_int_t ngx_http_xregion_answer_error(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_err_e err, const char *fmt, ...);
ngx_int_t ngx_http_xregion_answer_plain(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_err_e err, const char *fmt, ...);
void ngx_http_xregion_detail(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, const char *fmt, ...);
void ngx_http_xregion_answer_release(ngx_http_request_t *r);


/* ngx_http_xregion_variables.c */
ngx_int_t ngx_http_xregion_add_variables(ngx_conf_t *cf);


extern ngx_module_t  ngx_http_xregion_module;
/* the pull API's configuration and requests (audit_pull.c) */
extern ngx_module_t  ngx_http_xregion_audit_pull_module;


#endif /* _NGX_HTTP_XREGION_MODULE_H_INCLUDED_ */
