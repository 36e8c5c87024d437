
/*
 * The audit trail's writer: one record per transaction (refusals
 * included), hash-chained across the workers of the instance, signed at
 * checkpoints, on disk before the answer leaves when the operator asks.
 *
 *   xregion_audit <dir> [instance=<name>] [hash=sm3|sha256] [key=<pem>]
 *                 [sync=always|<time>] [rotate=<size>] [rotate=daily|off]
 *                 [checkpoint=<n>] [checkpoint_interval=<time>]
 *                 [reserve=<size>] [required=money|all];
 *
 * The format, the chain and the checks are core/xr_audit.c's; this file
 * is the I/O and the sharing (see "Writer" in core/xr_audit.h).
 *
 * Sharing.  The zone "xregion_audit" holds the chain head and the state of
 * the current file.  Its slab pool's mutex is the writer's lock: nginx's
 * master releases it when a worker dies holding it.  Under the lock a
 * worker seals its prepared entry (xr_audit_seal(): one digest, no
 * allocation) and appends the line to the current file with one write():
 * the order of lines in the file is the order of the chain.  Each worker
 * has its own descriptor of the current file and reopens it when the
 * zone's generation says another worker rotated.
 *
 * Crashes.  `recover` is set in the zone just before a write and cleared
 * once the head matches the file again: a worker that takes the lock and
 * finds it set (its holder died between the two, or a write failed
 * half-way) reads the head back from the end of the file, cutting a torn
 * line, and writes an "open" entry (reason "restart").  A fresh zone
 * (nginx started) starts the same way, from the last file of the
 * directory; so a restart continues the chain.  A line reaches the file
 * in a single write(), which a killed process cannot tear; a full disk
 * can, and the half line is cut before anything else is written.
 *
 * Durability.  sync=always: a request whose record is written waits (its
 * answer is held, see ngx_http_xregion_answer.c) until an fdatasync() that
 * started after the write has returned.  The first request to wait posts
 * an event that runs after the worker's current batch of events: one
 * fdatasync() then covers every record written so far, by every worker
 * (group commit), and `durable` in the zone lets other workers' waiters go
 * without a sync of their own.  sync=<time>: answers do not wait; each
 * worker syncs at that interval when something new was written.
 *
 * Refusal.  A transaction that needs a record (money transactions, or all
 * with required=all) is refused with XR-AUDIT-UNAVAILABLE before anything
 * is sent while the log cannot take records: the last write failed, or the
 * disk's free space is below reserve= (checked every second).  The reserve
 * is what lets the transactions already under way write theirs.  The
 * first record written again clears the state.
 *
 * Checkpoints.  After a record, or on the worker's timer, a worker claims
 * the range since the last checkpoint under the lock (so no two sign the
 * same), signs outside it and appends the checkpoint like any entry.
 */


#include "ngx_http_xregion_module.h"

#include <sys/statvfs.h>

#include "xr_crypto.h"
#include "xr_audit.h"
#include "xr_audit_msg.h"


#define ngx_http_xregion_audit_set(s, text)                                   \
    (s)->len = sizeof(text) - 1; (s)->data = text

#define NGX_HTTP_XREGION_AUDIT_NAME_LEN  (sizeof("audit-.jsonl") - 1 + 20)

/* a claimed checkpoint not written by then is taken over */
#define NGX_HTTP_XREGION_AUDIT_CLAIM_MS  5000
/* the timer: disk space, checkpoint interval, interval sync */
#define NGX_HTTP_XREGION_AUDIT_TICK_MS   1000


/* In shared memory.  Everything but the counters is read under the lock. */
typedef struct {
    xr_audit_head_t             head;
    uint64_t                    first;      /* the current file's first seq:
                                               its name */
    off_t                       size;       /* its length */
    ngx_uint_t                  gen;        /* changes with the file */
    ngx_int_t                   day;        /* yyyymmdd it was started */
    ngx_uint_t                  recover;    /* head to be read from disk */
    ngx_msec_t                  recover_after;  /* a failed one: retry at */
    uint64_t                    durable;    /* synced up to this seq */
    uint64_t                    rotated;    /* the last seq of the file
                                               before (synced) */
    uint64_t                    ckpt_upto;  /* covered or claimed */
    uint64_t                    other_seq;  /* the last entry of another
                                               type: one after ckpt_upto
                                               calls for a checkpoint */
    ngx_msec_t                  ckpt_time;
    ngx_pid_t                   ckpt_pid;   /* a claim in progress */
    ngx_msec_t                  ckpt_claimed;
    ngx_uint_t                  failing;    /* the last write failed */
    ngx_uint_t                  low_space;  /* free space below reserve */
    ngx_atomic_t                records;    /* records written */
    ngx_atomic_t                lost;       /* records not written */
} ngx_http_xregion_audit_sh_t;


typedef struct {
    xr_audit_head_t                 head;
    uint64_t                        first;
    uint64_t                        last;
} ngx_http_xregion_audit_claim_t;


typedef struct {
    ngx_http_xregion_audit_conf_t  *conf;
    ngx_cycle_t                    *cycle;      /* the one configured */
    ngx_shm_zone_t                 *zone;
    ngx_slab_pool_t                *shpool;
    ngx_http_xregion_audit_sh_t    *sh;
    xr_audit_key_t                  key;

    /* per worker */
    ngx_fd_t                        fd;
    ngx_uint_t                      gen;
    ngx_queue_t                     waiting;    /* ctx->audit_queue */
    ngx_event_t                     sync_ev;    /* posted: group commit */
#if (NGX_THREADS)
    ngx_thread_pool_t              *thread_pool;
    ngx_thread_task_t              *task;       /* the sync in a thread */
#endif
    ngx_uint_t                      syncing;    /* a sync is under way */
    uint64_t                        sync_target;
    uint64_t                        sync_started;   /* us, monotonic */
    ngx_uint_t                      sync_gen;
    ngx_event_t                     ckpt_ev;    /* posted: a claim to sign */
    ngx_event_t                     hold_ev;    /* a timer while answers
                                                   wait: an exiting worker
                                                   waits for them too */
    ngx_event_t                     tick;
    ngx_msec_t                      synced;     /* last interval sync */
    ngx_http_xregion_audit_claim_t  claim;      /* to sign (ckpt_ev) */
    ngx_uint_t                      claimed;
    ngx_log_t                      *log;
} ngx_http_xregion_audit_writer_t;


static char *ngx_http_xregion_audit_param(ngx_conf_t *cf,
    ngx_http_xregion_audit_conf_t *ac, ngx_str_t *v);
static ngx_int_t ngx_http_xregion_audit_init_zone(ngx_shm_zone_t *zone,
    void *data);
static ngx_int_t ngx_http_xregion_audit_mkdir(ngx_cycle_t *cycle,
    ngx_http_xregion_audit_conf_t *ac);

static ngx_int_t ngx_http_xregion_audit_append(
    ngx_http_xregion_audit_writer_t *w, const xr_audit_prep_t *p,
    u_char *line, size_t size, ngx_pool_t *pool, uint64_t *seq,
    ngx_uint_t is_record);
static ngx_int_t ngx_http_xregion_audit_ready_locked(
    ngx_http_xregion_audit_writer_t *w, size_t len, ngx_pool_t *pool);
static ngx_int_t ngx_http_xregion_audit_write_locked(
    ngx_http_xregion_audit_writer_t *w, const xr_audit_prep_t *p,
    u_char *line, size_t size, uint64_t *seq, ngx_uint_t ckpt);
static ngx_int_t ngx_http_xregion_audit_recover_locked(
    ngx_http_xregion_audit_writer_t *w, ngx_pool_t *pool);
static ngx_int_t ngx_http_xregion_audit_rotate_locked(
    ngx_http_xregion_audit_writer_t *w, ngx_pool_t *pool);
static ngx_int_t ngx_http_xregion_audit_open_entry(
    ngx_http_xregion_audit_writer_t *w, xr_audit_reason_e why,
    ngx_str_t *prev_file, uint64_t torn, ngx_pool_t *pool, uint64_t *seq);
static ngx_int_t ngx_http_xregion_audit_reopen_locked(
    ngx_http_xregion_audit_writer_t *w);
static ngx_int_t ngx_http_xregion_audit_last_file(
    ngx_http_xregion_audit_writer_t *w, uint64_t below, uint64_t *first);
static u_char *ngx_http_xregion_audit_path(ngx_http_xregion_audit_conf_t *ac,
    uint64_t first, u_char *buf);
static ngx_int_t ngx_http_xregion_audit_claim_locked(
    ngx_http_xregion_audit_writer_t *w, ngx_uint_t by_time,
    ngx_http_xregion_audit_claim_t *claim);
static void ngx_http_xregion_audit_checkpoint(
    ngx_http_xregion_audit_writer_t *w);
static void ngx_http_xregion_audit_ckpt_handler(ngx_event_t *ev);
static void ngx_http_xregion_audit_sync_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_xregion_audit_sync_start(
    ngx_http_xregion_audit_writer_t *w, ngx_uint_t here);
static void ngx_http_xregion_audit_sync_done(
    ngx_http_xregion_audit_writer_t *w, ngx_err_t err);
static void ngx_http_xregion_audit_release(
    ngx_http_xregion_audit_writer_t *w, ngx_uint_t all);
#if (NGX_THREADS)
static void ngx_http_xregion_audit_sync_thread(void *data, ngx_log_t *log);
static void ngx_http_xregion_audit_sync_event(ngx_event_t *ev);

typedef struct {
    ngx_fd_t                        fd;     /* a dup: the worker may close
                                               its own meanwhile */
    ngx_err_t                       err;
} ngx_http_xregion_audit_task_t;
#endif
static void ngx_http_xregion_audit_tick(ngx_event_t *ev);
static void ngx_http_xregion_audit_hold_handler(ngx_event_t *ev);
static void ngx_http_xregion_audit_entry_init(
    ngx_http_xregion_audit_writer_t *w, xr_audit_entry_t *e,
    xr_audit_type_e type);
static ngx_int_t ngx_http_xregion_audit_today(void);
static void ngx_http_xregion_audit_outcome(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_audit_rec_t *rec);
static void ngx_http_xregion_audit_cancel(void *data);


static ngx_str_t  ngx_http_xregion_audit_zone_name =
    ngx_string("xregion_audit");

/* this worker's writer, for the events that have no request */
static ngx_http_xregion_audit_writer_t  *ngx_http_xregion_audit_worker;


char *
ngx_http_xregion_audit_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    char                           *rv;
    ngx_str_t                      *value;
    ngx_uint_t                      i;
    ngx_http_xregion_audit_conf_t  *ac;

    if (xmcf->audit) {
        return "is duplicate";
    }

    value = cf->args->elts;

    ac = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_audit_conf_t));
    if (ac == NULL) {
        return NGX_CONF_ERROR;
    }

    ac->dir = value[1];

    while (ac->dir.len > 1 && ac->dir.data[ac->dir.len - 1] == '/') {
        ac->dir.len--;
    }

    /* relative to the prefix; ngx_conf_full_name() NUL-terminates */

    if (ngx_conf_full_name(cf->cycle, &ac->dir, 0) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    ac->instance = cf->cycle->hostname;
    ac->hash = XR_DIGEST_SM3;
    ac->sync = 0;
    ac->rotate_daily = 1;
    ac->ckpt_records = 1000;
    ac->ckpt_interval = 60000;
    ac->reserve = 64 * 1024 * 1024;
    ac->required = NGX_HTTP_XREGION_AUDIT_MONEY;
    ac->file = cf->conf_file->file.name;
    ac->line = cf->conf_file->line;

    for (i = 2; i < cf->args->nelts; i++) {
        rv = ngx_http_xregion_audit_param(cf, ac, &value[i]);
        if (rv != NGX_CONF_OK) {
            return rv;
        }
    }

    xmcf->audit = ac;

    return NGX_CONF_OK;
}


#define ngx_http_xregion_audit_is(v, name)                                    \
    ((v)->len > sizeof(name) - 1                                              \
     && ngx_strncmp((v)->data, name, sizeof(name) - 1) == 0)


static char *
ngx_http_xregion_audit_param(ngx_conf_t *cf,
    ngx_http_xregion_audit_conf_t *ac, ngx_str_t *v)
{
    u_char     *c;
    ngx_int_t   n;
    ngx_str_t   s, name;

    s.data = (u_char *) ngx_strlchr(v->data, v->data + v->len, '=');

    if (s.data == NULL || s.data == v->data + v->len - 1) {
        goto invalid;
    }

    s.data++;
    s.len = v->data + v->len - s.data;

    if (ngx_http_xregion_audit_is(v, "instance=")) {
        for (c = s.data; c < s.data + s.len; c++) {
            if (*c <= 0x20 || *c == '"' || *c == '\\' || *c >= 0x7f) {
                goto invalid;
            }
        }

        ac->instance = s;
        return NGX_CONF_OK;
    }

    if (ngx_http_xregion_audit_is(v, "hash=")) {
        if (xr_audit_hash_by_name(ngx_http_xregion_xstr(&s), &ac->hash)
            != XR_OK)
        {
            goto invalid;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_xregion_audit_is(v, "key=")) {
        name = s;

        ac->key = ngx_http_xregion_conf_key(cf, &name);
        if (ac->key == NULL) {
            return NGX_CONF_ERROR;
        }

        if (!xr_key_is_private(ac->key)) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"%V\" is not a private key", &s);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_xregion_audit_is(v, "sync=")) {
        if (s.len == 6 && ngx_strncmp(s.data, "always", 6) == 0) {
            ac->sync = 0;
            return NGX_CONF_OK;
        }

        n = ngx_parse_time(&s, 0);
        if (n == NGX_ERROR || n == 0) {
            goto invalid;
        }

        ac->sync = (ngx_msec_t) n;
        return NGX_CONF_OK;
    }

    if (ngx_http_xregion_audit_is(v, "rotate=")) {
        if (s.len == 5 && ngx_strncmp(s.data, "daily", 5) == 0) {
            ac->rotate_daily = 1;
            return NGX_CONF_OK;
        }

        if (s.len == 3 && ngx_strncmp(s.data, "off", 3) == 0) {
            ac->rotate_daily = 0;
            ac->rotate_size = 0;
            return NGX_CONF_OK;
        }

        ac->rotate_size = ngx_parse_offset(&s);

        /* a file must hold more than its "open" line and one record */
        if (ac->rotate_size == NGX_ERROR
            || ac->rotate_size < 4 * XR_AUDIT_LINE_MAX)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid \"%V\": a size of at least 256k, "
                               "\"daily\" or \"off\"", v);
            return NGX_CONF_ERROR;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_xregion_audit_is(v, "checkpoint=")) {
        n = ngx_atoi(s.data, s.len);
        if (n == NGX_ERROR || n == 0) {
            goto invalid;
        }

        ac->ckpt_records = n;
        return NGX_CONF_OK;
    }

    if (ngx_http_xregion_audit_is(v, "checkpoint_interval=")) {
        n = ngx_parse_time(&s, 0);
        if (n == NGX_ERROR || n == 0) {
            goto invalid;
        }

        ac->ckpt_interval = (ngx_msec_t) n;
        return NGX_CONF_OK;
    }

    if (ngx_http_xregion_audit_is(v, "reserve=")) {
        ac->reserve = ngx_parse_offset(&s);
        if (ac->reserve == NGX_ERROR) {
            goto invalid;
        }

        return NGX_CONF_OK;
    }

    if (ngx_http_xregion_audit_is(v, "required=")) {
        if (s.len == 5 && ngx_strncmp(s.data, "money", 5) == 0) {
            ac->required = NGX_HTTP_XREGION_AUDIT_MONEY;
            return NGX_CONF_OK;
        }

        if (s.len == 3 && ngx_strncmp(s.data, "all", 3) == 0) {
            ac->required = NGX_HTTP_XREGION_AUDIT_ALL;
            return NGX_CONF_OK;
        }
    }

invalid:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "invalid parameter \"%V\"", v);
    return NGX_CONF_ERROR;
}


/*
 * Postconfiguration: the signing key and the zone.  Without `key=` the
 * gateway's own (xregion_sign_key) signs checkpoints.
 */

ngx_int_t
ngx_http_xregion_audit_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    xr_ctx_t                          ctx;
    ngx_http_xregion_audit_conf_t    *ac;
    ngx_http_xregion_audit_writer_t  *w;

    ac = xmcf->audit;

    if (ac == NULL) {
        return NGX_OK;
    }

    if (ac->key == NULL) {
        ac->key = xmcf->sign_key;
    }

    if (ac->key == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "xregion_audit in %V:%ui needs a key to sign "
                      "checkpoints: key=, or xregion_sign_key",
                      &ac->file, ac->line);
        return NGX_ERROR;
    }

    w = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_audit_writer_t));
    if (w == NULL) {
        return NGX_ERROR;
    }

    w->conf = ac;
    w->cycle = cf->cycle;
    w->fd = NGX_INVALID_FILE;

    xr_ctx_init(&ctx, xmcf->pool);

    if (xr_audit_key_init(&ctx, &w->key, ac->key) != XR_OK) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "xregion_audit in %V:%ui: the key cannot sign "
                      "checkpoints: %s (an SM2 or P-256 private key)",
                      &ac->file, ac->line, ctx.errstr);
        return NGX_ERROR;
    }

#if (NGX_THREADS)
    /* group commit in nginx's "default" thread pool (32 threads) */

    if (ac->sync == 0) {
        w->thread_pool = ngx_thread_pool_add(cf, NULL);
        if (w->thread_pool == NULL) {
            return NGX_ERROR;
        }
    }
#endif

    w->zone = ngx_shared_memory_add(cf, &ngx_http_xregion_audit_zone_name,
                                    8 * ngx_pagesize,
                                    &ngx_http_xregion_module);
    if (w->zone == NULL) {
        return NGX_ERROR;
    }

    w->zone->init = ngx_http_xregion_audit_init_zone;
    w->zone->data = w;

    ac->writer = w;

    return NGX_OK;
}


/*
 * A reload keeps the zone and so the chain; a start finds it new and
 * recovers from the directory at the first write.  The directory is made
 * here, in the master, as the workers' user.
 */

static ngx_int_t
ngx_http_xregion_audit_init_zone(ngx_shm_zone_t *zone, void *data)
{
    ngx_http_xregion_audit_writer_t  *ow = data;

    ngx_http_xregion_audit_writer_t  *w;

    w = zone->data;
    w->shpool = (ngx_slab_pool_t *) zone->shm.addr;

    if (ngx_http_xregion_audit_mkdir(w->cycle, w->conf)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (ow) {
        w->sh = ow->sh;
        return NGX_OK;
    }

    if (zone->shm.exists) {
        w->sh = w->shpool->data;
        return NGX_OK;
    }

    w->sh = ngx_slab_calloc(w->shpool, sizeof(ngx_http_xregion_audit_sh_t));
    if (w->sh == NULL) {
        return NGX_ERROR;
    }

    w->sh->recover = 1;
    w->shpool->data = w->sh;

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_audit_mkdir(ngx_cycle_t *cycle,
    ngx_http_xregion_audit_conf_t *ac)
{
    ngx_err_t         err;
    ngx_file_info_t   fi;
    ngx_core_conf_t  *ccf;

    if (ngx_create_dir(ac->dir.data, 0750) == NGX_FILE_ERROR) {
        err = ngx_errno;

        if (err != NGX_EEXIST) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, err,
                          ngx_create_dir_n " \"%s\" failed (xregion_audit)",
                          ac->dir.data);
            return NGX_ERROR;
        }
    }

    if (ngx_file_info(ac->dir.data, &fi) == NGX_FILE_ERROR
        || !ngx_is_dir(&fi))
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                      "xregion_audit: \"%s\" is not a directory",
                      ac->dir.data);
        return NGX_ERROR;
    }

    /* the workers create and append the files */

    ccf = (ngx_core_conf_t *) ngx_get_conf(cycle->conf_ctx, ngx_core_module);

    if (geteuid() == 0 && ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT
        && fi.st_uid != ccf->user)
    {
        if (chown((const char *) ac->dir.data, ccf->user, -1) == -1) {
            ngx_log_error(NGX_LOG_EMERG, cycle->log, ngx_errno,
                          "chown(\"%s\", %d) failed (xregion_audit)",
                          ac->dir.data, ccf->user);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


ngx_int_t
ngx_http_xregion_audit_init_process(ngx_cycle_t *cycle,
    ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_http_xregion_audit_writer_t  *w;

    if (xmcf->audit == NULL) {
        return NGX_OK;
    }

    w = xmcf->audit->writer;

    /*
     * A file size limit (RLIMIT_FSIZE) must fail the write with EFBIG, as
     * a full disk fails it with ENOSPC, not kill the worker mid-answer.
     */

    signal(SIGXFSZ, SIG_IGN);

    w->fd = NGX_INVALID_FILE;
    w->gen = 0;
    w->log = cycle->log;

    /* said once at start, not at each refused transaction */

    if (access((const char *) xmcf->audit->dir.data, W_OK|X_OK) == -1) {
        ngx_log_error(NGX_LOG_ALERT, cycle->log, ngx_errno,
                      "xregion_audit: the workers' user cannot write in "
                      "\"%V\": no record can be written and money "
                      "transactions are refused", &xmcf->audit->dir);
    }
    ngx_queue_init(&w->waiting);

    w->sync_ev.handler = ngx_http_xregion_audit_sync_handler;
    w->sync_ev.data = w;
    w->sync_ev.log = cycle->log;

    w->syncing = 0;

#if (NGX_THREADS)
    if (w->thread_pool) {
        w->task = ngx_thread_task_alloc(cycle->pool,
                                        sizeof(ngx_http_xregion_audit_task_t));
        if (w->task == NULL) {
            return NGX_ERROR;
        }

        w->task->handler = ngx_http_xregion_audit_sync_thread;
        w->task->event.handler = ngx_http_xregion_audit_sync_event;
        w->task->event.data = w;
        w->task->event.log = cycle->log;
    }
#endif

    w->hold_ev.handler = ngx_http_xregion_audit_hold_handler;
    w->hold_ev.data = w;
    w->hold_ev.log = cycle->log;

    w->ckpt_ev.handler = ngx_http_xregion_audit_ckpt_handler;
    w->ckpt_ev.data = w;
    w->ckpt_ev.log = cycle->log;

    w->tick.handler = ngx_http_xregion_audit_tick;
    w->tick.data = w;
    w->tick.log = cycle->log;
    w->tick.cancelable = 1;

    ngx_add_timer(&w->tick, NGX_HTTP_XREGION_AUDIT_TICK_MS);

    ngx_http_xregion_audit_worker = w;

    return NGX_OK;
}


/* Worker exit: what was written is synced, the descriptor closed. */

void
ngx_http_xregion_audit_exit_process(void)
{
    ngx_http_xregion_audit_writer_t  *w;

    w = ngx_http_xregion_audit_worker;

    if (w == NULL) {
        return;
    }

    /* a clean stop leaves the log signed to its end */

    if (!w->claimed && w->sh->recover == 0) {
        ngx_shmtx_lock(&w->shpool->mutex);

        if (ngx_http_xregion_audit_claim_locked(w, 2, &w->claim) == NGX_OK) {
            w->claimed = 1;
        }

        ngx_shmtx_unlock(&w->shpool->mutex);
    }

    ngx_http_xregion_audit_checkpoint(w);

    if (w->fd != NGX_INVALID_FILE) {
        (void) ngx_http_xregion_audit_sync_start(w, 1);
        ngx_close_file(w->fd);
        w->fd = NGX_INVALID_FILE;
    }

    ngx_http_xregion_audit_worker = NULL;
}


/*
 * The chain's last seq as this worker sees it (for the pull API).  Before
 * the first write since nginx started the head is still in the files: it
 * is read now, as the first write would (with its "restart" entry), so
 * that a pull does not wait for a transaction to see the log.
 */

uint64_t
ngx_http_xregion_audit_head(ngx_http_xregion_main_conf_t *xmcf)
{
    uint64_t                          seq;
    ngx_pool_t                       *pool;
    ngx_http_xregion_audit_writer_t  *w;

    if (xmcf->audit == NULL || xmcf->audit->writer == NULL) {
        return 0;
    }

    w = xmcf->audit->writer;

    if (w->sh == NULL) {
        return 0;
    }

    pool = NULL;

    ngx_shmtx_lock(&w->shpool->mutex);

    if (w->sh->recover) {
        pool = ngx_create_pool(NGX_DEFAULT_POOL_SIZE, w->log);

        if (pool) {
            (void) ngx_http_xregion_audit_ready_locked(w, 0, pool);
        }
    }

    seq = w->sh->head.seq;

    ngx_shmtx_unlock(&w->shpool->mutex);

    if (pool) {
        ngx_destroy_pool(pool);
    }

    return seq;
}


/*
 * Before anything is sent: XR-AUDIT-UNAVAILABLE for a transaction that
 * needs a record while the log cannot take one.  NGX_DECLINED: go on.
 */

ngx_int_t
ngx_http_xregion_audit_admit(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    ngx_http_xregion_main_conf_t     *xmcf;
    ngx_http_xregion_audit_conf_t    *ac;
    ngx_http_xregion_audit_writer_t  *w;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);
    ac = xmcf->audit;

    if (ac == NULL) {
        return NGX_DECLINED;
    }

    w = ac->writer;

    if (!w->sh->failing && !w->sh->low_space) {
        return NGX_DECLINED;
    }

    if (ac->required == NGX_HTTP_XREGION_AUDIT_MONEY
        && (ctx->ptxn == NULL || ctx->ptxn->stxn == NULL
            || ctx->ptxn->stxn->kind != XR_TXN_MONEY))
    {
        return NGX_DECLINED;
    }

    ngx_http_xregion_detail(r, ctx, "audit log in %V: %s", &ac->dir,
                            w->sh->failing ? "the last write failed"
                                           : "free space below reserve=");

    return ngx_http_xregion_answer_error(r, ctx, XR_E_AUDIT_UNAVAILABLE,
               "the gateway cannot record this transaction now; nothing "
               "was sent");
}


/*
 * The transaction's record, when its answer is ready (or when the request
 * ends without one: ctx->ending, and then nothing waits).  NGX_OK:
 * written, the answer may go; NGX_AGAIN: written, the answer waits for
 * the disk and ngx_http_xregion_answer_release() sends it;
 * NGX_DECLINED: no audit log, or recorded already; NGX_ERROR: not written
 * (logged, counted): the answer goes all the same, since what it tells
 * happened.
 */

ngx_int_t
ngx_http_xregion_audit_record(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    u_char                           *line;
    size_t                            size;
    uint64_t                          seq, start;
    ngx_int_t                         rc;
    xr_ctx_t                          xctx;
    ngx_time_t                       *tp;
    xr_audit_prep_t                   prep;
    xr_audit_entry_t                  e;
    const xr_stxn_t                  *stxn;
    ngx_pool_cleanup_t               *cln;
    ngx_http_xregion_main_conf_t     *xmcf;
    ngx_http_xregion_audit_writer_t  *w;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    if (xmcf->audit == NULL || ctx->audited) {
        return NGX_DECLINED;
    }

    ctx->audited = 1;

    w = xmcf->audit->writer;

    ngx_http_xregion_audit_entry_init(w, &e, XR_AUDIT_REC);

    e.u.rec.caller = ngx_http_xregion_xstr(&ctx->caller_name);
    e.u.rec.domain = ngx_http_xregion_xstr(&ctx->domain);
    e.u.rec.txn = ngx_http_xregion_xstr(&ctx->txn);
    e.u.rec.msg_id = ngx_http_xregion_xstr(&ctx->msg_id);
    e.u.rec.origin = ngx_http_xregion_xstr(&ctx->origin);
    e.u.rec.dest = ngx_http_xregion_xstr(&ctx->dest_code);
    e.u.rec.upstream = ngx_http_xregion_xstr(&ctx->upstream);

    if (ctx->sr && ctx->sr->upstream_states
        && ctx->sr->upstream_states->nelts)
    {
        ngx_http_upstream_state_t  *st = ctx->sr->upstream_states->elts;

        st += ctx->sr->upstream_states->nelts - 1;

        if (st->peer) {
            e.u.rec.peer = ngx_http_xregion_xstr(st->peer);
        }
    }

    ngx_http_xregion_audit_outcome(r, ctx, &e.u.rec);

    tp = ngx_timeofday();
    e.u.rec.latency_ms = (int64_t) (tp->sec - r->start_sec) * 1000
                         + (int64_t) tp->msec - (int64_t) r->start_msec;
    e.u.rec.upstream_ms = ctx->upstream_time;

    xr_ctx_init(&xctx, ctx->pool);

    if (ctx->decoded && ctx->caller) {
        stxn = xr_schema_txn(ctx->caller->schema, ctx->req.txn);

        if (xr_audit_msg_fields(&xctx, stxn, &ctx->req,
                                ctx->ans && ctx->ans->body ? ctx->ans : NULL,
                                &e.u.rec)
            != XR_OK)
        {
            goto failed;
        }
    }

    if (xr_audit_prepare(&xctx, w->conf->hash, &e, &prep) != XR_OK) {
        goto failed;
    }

    size = xr_audit_line_size(&prep);

    line = ngx_pnalloc(r->pool, size);
    if (line == NULL) {
        goto failed;
    }

    start = ngx_http_xregion_now_us();

    rc = ngx_http_xregion_audit_append(w, &prep, line, size, r->pool, &seq, 1);

    ngx_http_xregion_metrics_audit(0, ngx_http_xregion_now_us() - start);

    if (rc != NGX_OK) {
        (void) ngx_atomic_fetch_add(&w->sh->lost, 1);

        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "xregion: no audit record for msg_id \"%V\" "
                      "(%V %V, %V): the audit log in %V cannot take it",
                      &ctx->msg_id, &ctx->caller_name, &ctx->txn,
                      &ctx->outcome, &w->conf->dir);
        return NGX_ERROR;
    }

    (void) ngx_atomic_fetch_add(&w->sh->records, 1);

    ctx->audit_seq = seq;

    if (w->conf->sync || w->sh->durable >= seq || ctx->ending) {
        return NGX_OK;
    }

    /* the answer waits for the group commit */

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_OK;
    }

    cln->handler = ngx_http_xregion_audit_cancel;
    cln->data = ctx;

    ngx_queue_insert_tail(&w->waiting, &ctx->audit_queue);
    ctx->audit_wait = 1;

    if (!w->hold_ev.timer_set) {
        ngx_add_timer(&w->hold_ev, 1000);
    }

    if (!w->sync_ev.posted) {
        ngx_post_event(&w->sync_ev, &ngx_posted_events);
    }

    return NGX_AGAIN;

failed:

    (void) ngx_atomic_fetch_add(&w->sh->lost, 1);

    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "xregion: no audit record for msg_id \"%V\": %s",
                  &ctx->msg_id, xctx.errstr);

    return NGX_ERROR;
}


/* A request that goes away while its answer waits leaves the queue. */

static void
ngx_http_xregion_audit_cancel(void *data)
{
    ngx_http_xregion_ctx_t *ctx = data;

    if (ctx->audit_wait) {
        ngx_queue_remove(&ctx->audit_queue);
        ctx->audit_wait = 0;
    }
}


/*
 * The outcome class of a transaction (docs/regulators.md), shared with the
 * metrics: ctx->outcome is "ok", the destination's "BIZ-..." refusal or
 * the gateway's XR- error.
 */

ngx_str_t  ngx_http_xregion_outcomes[] = {
    ngx_string("ok"),
    ngx_string("cached"),
    ngx_string("replayed"),
    ngx_string("biz_error"),
    ngx_string("rejected"),
    ngx_string("failed"),
    ngx_null_string
};


ngx_uint_t
ngx_http_xregion_outcome_class(ngx_http_xregion_ctx_t *ctx)
{
    if (ctx->cache.len == 3 && ngx_strncmp(ctx->cache.data, "HIT", 3) == 0) {
        return NGX_HTTP_XREGION_CACHED;
    }

    if (ctx->idempotency.len == 6
        && (ngx_strncmp(ctx->idempotency.data, "REPLAY", 6) == 0
            || ngx_strncmp(ctx->idempotency.data, "WAITED", 6) == 0))
    {
        return NGX_HTTP_XREGION_REPLAYED;
    }

    if (ctx->outcome.len == 2 && ngx_strncmp(ctx->outcome.data, "ok", 2) == 0)
    {
        return NGX_HTTP_XREGION_OK;
    }

    if (ctx->ans && !ctx->ans->ok
        && ctx->outcome.len >= 4
        && ngx_strncmp(ctx->outcome.data, "BIZ-", 4) == 0)
    {
        return NGX_HTTP_XREGION_BIZ_ERROR;
    }

    /* the gateway's error: was anything sent?  (no answer at all: failed) */

    return (ctx->sr || ctx->ending) ? NGX_HTTP_XREGION_FAILED
                                    : NGX_HTTP_XREGION_REJECTED;
}


static void
ngx_http_xregion_audit_outcome(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx, xr_audit_rec_t *rec)
{
    ngx_str_t  *name;

    name = &ngx_http_xregion_outcomes[ngx_http_xregion_outcome_class(ctx)];
    rec->outcome = ngx_http_xregion_xstr(name);

    if (ctx->outcome.len == 2 && ngx_strncmp(ctx->outcome.data, "ok", 2) == 0)
    {
        ngx_http_xregion_audit_set(&rec->error, "");

    } else {
        rec->error = ngx_http_xregion_xstr(&ctx->outcome);
    }
}


static void
ngx_http_xregion_audit_entry_init(ngx_http_xregion_audit_writer_t *w,
    xr_audit_entry_t *e, xr_audit_type_e type)
{
    ngx_time_t  *tp;

    ngx_memzero(e, offsetof(xr_audit_entry_t, amount_store));

    tp = ngx_timeofday();

    e->type = type;
    e->time_ms = (int64_t) tp->sec * 1000 + tp->msec;
    e->tz_min = tp->gmtoff;
    e->inst = ngx_http_xregion_xstr(&w->conf->instance);
}


/*
 * One entry into the chain and the current file, under the lock.  A
 * record (kind 1) may claim a checkpoint, signed later by ckpt_ev; a
 * checkpoint (kind 0) releases its claim.
 */

static ngx_int_t
ngx_http_xregion_audit_append(ngx_http_xregion_audit_writer_t *w,
    const xr_audit_prep_t *p, u_char *line, size_t size, ngx_pool_t *pool,
    uint64_t *seq, ngx_uint_t is_record)
{
    ngx_int_t                     rc;
    ngx_uint_t                    post;
    ngx_http_xregion_audit_sh_t  *sh;

    sh = w->sh;
    post = 0;

    ngx_shmtx_lock(&w->shpool->mutex);

    rc = ngx_http_xregion_audit_ready_locked(w, size, pool);

    if (rc == NGX_OK) {
        rc = ngx_http_xregion_audit_write_locked(w, p, line, size, seq,
                                                 !is_record);
    }

    if (is_record) {
        if (rc == NGX_OK && !w->claimed
            && ngx_http_xregion_audit_claim_locked(w, 0, &w->claim)
               == NGX_OK)
        {
            w->claimed = 1;
            post = 1;
        }

    } else {
        if (rc == NGX_OK) {
            sh->ckpt_time = ngx_current_msec;
        }

        sh->ckpt_pid = 0;
    }

    ngx_shmtx_unlock(&w->shpool->mutex);

    if (post) {
        ngx_post_event(&w->ckpt_ev, &ngx_posted_events);
    }

    return rc;
}


/* The head known, this worker's descriptor current, rotation done. */

static ngx_int_t
ngx_http_xregion_audit_ready_locked(ngx_http_xregion_audit_writer_t *w,
    size_t len, ngx_pool_t *pool)
{
    ngx_http_xregion_audit_sh_t    *sh;
    ngx_http_xregion_audit_conf_t  *ac;

    sh = w->sh;
    ac = w->conf;

    if (sh->recover) {
        if (sh->recover_after
            && (ngx_msec_int_t) (ngx_current_msec - sh->recover_after) < 0)
        {
            return NGX_ERROR;
        }

        if (ngx_http_xregion_audit_recover_locked(w, pool) != NGX_OK) {
            sh->failing = 1;
            sh->recover_after = ngx_current_msec + 1000;
            return NGX_ERROR;
        }

        sh->recover_after = 0;
    }

    if ((w->fd == NGX_INVALID_FILE || w->gen != sh->gen)
        && ngx_http_xregion_audit_reopen_locked(w) != NGX_OK)
    {
        sh->failing = 1;
        return NGX_ERROR;
    }

    if ((ac->rotate_size && sh->size + (off_t) len > ac->rotate_size
         && sh->head.seq > sh->first)
        || (ac->rotate_daily && sh->day != ngx_http_xregion_audit_today()))
    {
        if (ngx_http_xregion_audit_rotate_locked(w, pool) != NGX_OK) {
            sh->failing = 1;
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Seal and write.  `recover` covers the moment between the write and the
 * head's update: a worker killed there leaves the next one to read the
 * head back from the file.
 */

static ngx_int_t
ngx_http_xregion_audit_write_locked(ngx_http_xregion_audit_writer_t *w,
    const xr_audit_prep_t *p, u_char *line, size_t size, uint64_t *seq,
    ngx_uint_t ckpt)
{
    size_t                        len;
    ssize_t                       n;
    ngx_err_t                     err;
    xr_audit_head_t               head;
    ngx_http_xregion_audit_sh_t  *sh;

    sh = w->sh;
    head = sh->head;

    if (xr_audit_seal(p, &head, (char *) line, size, &len) != XR_OK) {
        return NGX_ERROR;
    }

    sh->recover = 1;

    n = write(w->fd, line, len);

    if (n == (ssize_t) len) {
        sh->head = head;
        sh->size += len;
        sh->recover = 0;
        sh->failing = 0;
        *seq = head.seq;

        if (!ckpt) {
            sh->other_seq = head.seq;
        }

        return NGX_OK;
    }

    err = (n == -1) ? ngx_errno : NGX_ENOSPC;

    ngx_log_error(NGX_LOG_ERR, w->log, err,
                  "xregion: write() of audit entry %uL to \"%V/audit-"
                  "%020uL.jsonl\" failed (%z of %uz bytes written)",
                  head.seq, &w->conf->dir, sh->first, n, len);

    /* a half line is cut at once; if it cannot be, the next writer will */

    if (n <= 0 || ftruncate(w->fd, sh->size) == 0) {
        sh->recover = 0;
    }

    sh->failing = 1;

    return NGX_ERROR;
}


/*
 * The head from the directory: the last file's last whole line, after
 * cutting a torn one; then an "open" entry that says so.  A directory
 * without a log starts one.
 */

static ngx_int_t
ngx_http_xregion_audit_recover_locked(ngx_http_xregion_audit_writer_t *w,
    ngx_pool_t *pool)
{
    u_char                        *buf, name[NGX_MAX_PATH];
    off_t                          size;
    size_t                         len;
    ssize_t                        n;
    uint64_t                       first, below, seq;
    ngx_fd_t                       fd;
    xr_ctx_t                       xctx;
    xr_pool_t                     *xpool;
    ngx_int_t                      rc;
    ngx_tm_t                       tm;
    ngx_file_info_t                fi;
    xr_audit_tail_t                t;
    ngx_http_xregion_audit_sh_t   *sh;
    ngx_http_xregion_audit_conf_t *ac;

    sh = w->sh;
    ac = w->conf;
    below = (uint64_t) -1;

    xpool = ngx_http_xregion_pool_create(pool);
    if (xpool == NULL) {
        return NGX_ERROR;
    }

    for ( ;; ) {
        rc = ngx_http_xregion_audit_last_file(w, below, &first);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (rc == NGX_DECLINED) {
            if (below != (uint64_t) -1 && below > 1) {
                ngx_log_error(NGX_LOG_ERR, w->log, 0,
                              "xregion: the audit log in \"%V\" has no file "
                              "before audit-%020uL.jsonl to continue from",
                              &ac->dir, below);
                return NGX_ERROR;
            }

            /* a new log */

            ngx_http_xregion_audit_path(ac, sh->head.seq + 1, name);

            fd = ngx_open_file(name, NGX_FILE_APPEND,
                               NGX_FILE_CREATE_OR_OPEN, 0640);
            if (fd == NGX_INVALID_FILE) {
                ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                              ngx_open_file_n " \"%s\" failed", name);
                return NGX_ERROR;
            }

            if (w->fd != NGX_INVALID_FILE) {
                ngx_close_file(w->fd);
            }

            w->fd = fd;
            sh->first = sh->head.seq + 1;
            sh->size = 0;
            sh->day = ngx_http_xregion_audit_today();
            sh->gen++;
            w->gen = sh->gen;
            sh->ckpt_upto = sh->head.seq;
            sh->ckpt_time = ngx_current_msec;

            if (ftruncate(fd, 0) == -1) {
                return NGX_ERROR;
            }

            return ngx_http_xregion_audit_open_entry(w, XR_AUDIT_START, NULL,
                                                     0, pool, &seq);
        }

        ngx_http_xregion_audit_path(ac, first, name);

        fd = ngx_open_file(name, NGX_FILE_RDWR|O_APPEND,
                           NGX_FILE_OPEN, 0);
        if (fd == NGX_INVALID_FILE) {
            ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                          ngx_open_file_n " \"%s\" failed", name);
            return NGX_ERROR;
        }

        if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR) {
            ngx_close_file(fd);
            return NGX_ERROR;
        }

        size = ngx_file_size(&fi);
        len = (size_t) ngx_min(size, (off_t) XR_AUDIT_TAIL_READ);

        buf = ngx_pnalloc(pool, len + 1);
        if (buf == NULL) {
            ngx_close_file(fd);
            return NGX_ERROR;
        }

        n = pread(fd, buf, len, size - (off_t) len);
        if (n != (ssize_t) len) {
            ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                          "pread() of \"%s\" failed", name);
            ngx_close_file(fd);
            return NGX_ERROR;
        }

        xr_ctx_init(&xctx, xpool);

        if (xr_audit_recover(&xctx, (char *) buf, len,
                             size <= (off_t) XR_AUDIT_TAIL_READ, &t)
            != XR_OK)
        {
            ngx_log_error(NGX_LOG_ERR, w->log, 0,
                          "xregion: the audit file \"%s\" does not end "
                          "with an entry of the gateway (%s): nothing is "
                          "chained on it; move it out of the directory",
                          name, xctx.errstr);
            ngx_close_file(fd);
            return NGX_ERROR;
        }

        if (t.head.seq == 0) {
            /* nothing but a torn line: as if the file was not made */

            if (first == 1) {
                ngx_close_file(fd);

                if (ngx_delete_file(name) == NGX_FILE_ERROR) {
                    return NGX_ERROR;
                }

                below = (uint64_t) -1;
                continue;
            }

            ngx_log_error(NGX_LOG_WARN, w->log, 0,
                          "xregion: the audit file \"%s\" holds no whole "
                          "entry (%O bytes): removed, the previous file "
                          "continues", name, size);

            ngx_close_file(fd);

            if (ngx_delete_file(name) == NGX_FILE_ERROR) {
                return NGX_ERROR;
            }

            below = first;
            continue;
        }

        break;
    }

    if (t.torn) {
        ngx_log_error(NGX_LOG_WARN, w->log, 0,
                      "xregion: %uz bytes of a torn line cut from the end "
                      "of the audit file \"%s\"", t.torn, name);

        if (ftruncate(fd, size - (off_t) t.torn) == -1) {
            ngx_close_file(fd);
            return NGX_ERROR;
        }
    }

    if (w->fd != NGX_INVALID_FILE) {
        ngx_close_file(w->fd);
    }

    w->fd = fd;

    sh->head = t.head;
    sh->first = first;
    sh->size = size - (off_t) t.torn;
    sh->gen++;
    w->gen = sh->gen;

    ngx_localtime(ngx_file_mtime(&fi), &tm);
    sh->day = tm.ngx_tm_year * 10000 + tm.ngx_tm_mon * 100 + tm.ngx_tm_mday;

    sh->ckpt_upto = t.signed_upto;
    sh->ckpt_time = ngx_current_msec;
    sh->ckpt_pid = 0;

    if (ngx_http_xregion_audit_open_entry(w, XR_AUDIT_RESTART, NULL, t.torn,
                                          pool, &seq)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (t.signed_upto == 0) {
        sh->ckpt_upto = seq - 1;
    }

    /* what the chain continues from is on disk before anything else */

    if (fdatasync(w->fd) == 0) {
        sh->durable = sh->head.seq;
    }

    ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                  "xregion: audit log continues at seq %uL in \"%s\"",
                  seq, name);

    return NGX_OK;
}


/* The first line of a file, or a restart's line. */

static ngx_int_t
ngx_http_xregion_audit_open_entry(ngx_http_xregion_audit_writer_t *w,
    xr_audit_reason_e why, ngx_str_t *prev_file, uint64_t torn,
    ngx_pool_t *pool, uint64_t *seq)
{
    u_char            *line;
    size_t             size;
    xr_ctx_t           xctx;
    xr_pool_t         *xpool;
    xr_audit_prep_t    prep;
    xr_audit_entry_t   e;

    xpool = ngx_http_xregion_pool_create(pool);
    if (xpool == NULL) {
        return NGX_ERROR;
    }

    xr_ctx_init(&xctx, xpool);

    ngx_http_xregion_audit_entry_init(w, &e, XR_AUDIT_OPEN);

    e.u.open.hash_alg = w->conf->hash;
    e.u.open.reason = why;
    e.u.open.torn = torn;

    if (prev_file) {
        e.u.open.prev_file = ngx_http_xregion_xstr(prev_file);
    }

    if (xr_audit_prepare(&xctx, w->conf->hash, &e, &prep) != XR_OK) {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "xregion: audit open entry: %s", xctx.errstr);
        return NGX_ERROR;
    }

    size = xr_audit_line_size(&prep);

    line = ngx_pnalloc(pool, size);
    if (line == NULL) {
        return NGX_ERROR;
    }

    return ngx_http_xregion_audit_write_locked(w, &prep, line, size, seq, 0);
}


/*
 * The old file is synced (everything in it is durable), the new one made
 * with its "open" line; if that fails the old file stays current.
 */

static ngx_int_t
ngx_http_xregion_audit_rotate_locked(ngx_http_xregion_audit_writer_t *w,
    ngx_pool_t *pool)
{
    u_char                        name[NGX_MAX_PATH];
    off_t                          old_size;
    uint64_t                       seq, old_first;
    ngx_fd_t                       fd, old_fd;
    ngx_int_t                      old_day;
    ngx_str_t                      prev;
    ngx_http_xregion_audit_sh_t   *sh;
    ngx_http_xregion_audit_conf_t *ac;

    sh = w->sh;
    ac = w->conf;

    if (fdatasync(w->fd) == -1) {
        ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                      "xregion: fdatasync() of the audit file before "
                      "rotation failed");
        return NGX_ERROR;
    }

    if (sh->durable < sh->head.seq) {
        sh->durable = sh->head.seq;
    }

    sh->rotated = sh->head.seq;

    prev.data = ngx_pnalloc(pool, NGX_HTTP_XREGION_AUDIT_NAME_LEN);
    if (prev.data == NULL) {
        return NGX_ERROR;
    }

    prev.len = ngx_sprintf(prev.data, "audit-%020uL.jsonl", sh->first)
               - prev.data;

    ngx_http_xregion_audit_path(ac, sh->head.seq + 1, name);

    fd = ngx_open_file(name, NGX_FILE_APPEND, NGX_FILE_CREATE_OR_OPEN, 0640);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", name);
        return NGX_ERROR;
    }

    /* a file of this name can only be one a failed rotation left */

    if (ftruncate(fd, 0) == -1) {
        ngx_close_file(fd);
        return NGX_ERROR;
    }

    old_fd = w->fd;
    old_first = sh->first;
    old_size = sh->size;
    old_day = sh->day;

    w->fd = fd;
    sh->first = sh->head.seq + 1;
    sh->size = 0;
    sh->day = ngx_http_xregion_audit_today();
    sh->gen++;
    w->gen = sh->gen;

    if (ngx_http_xregion_audit_open_entry(w, XR_AUDIT_ROTATE, &prev, 0, pool,
                                          &seq)
        != NGX_OK)
    {
        ngx_close_file(fd);
        (void) ngx_delete_file(name);

        w->fd = old_fd;
        sh->first = old_first;
        sh->size = old_size;
        sh->day = old_day;
        sh->gen++;
        w->gen = sh->gen;

        return NGX_ERROR;
    }

    ngx_close_file(old_fd);

    ngx_log_error(NGX_LOG_NOTICE, w->log, 0,
                  "xregion: audit log rotated: \"%s\" starts at seq %uL",
                  name, seq);

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_audit_reopen_locked(ngx_http_xregion_audit_writer_t *w)
{
    u_char    name[NGX_MAX_PATH];
    ngx_fd_t  fd;

    ngx_http_xregion_audit_path(w->conf, w->sh->first, name);

    fd = ngx_open_file(name, NGX_FILE_APPEND, NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed", name);
        return NGX_ERROR;
    }

    if (w->fd != NGX_INVALID_FILE) {
        ngx_close_file(w->fd);
    }

    w->fd = fd;
    w->gen = w->sh->gen;

    return NGX_OK;
}


/* The greatest first seq of a log file below `below`: NGX_DECLINED none. */

static ngx_int_t
ngx_http_xregion_audit_last_file(ngx_http_xregion_audit_writer_t *w,
    uint64_t below, uint64_t *first)
{
    u_char      *n;
    size_t       len;
    uint64_t     seq, best;
    ngx_dir_t    dir;
    ngx_uint_t   i, found;

    if (ngx_open_dir(&w->conf->dir, &dir) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, w->log, ngx_errno,
                      ngx_open_dir_n " \"%V\" failed", &w->conf->dir);
        return NGX_ERROR;
    }

    found = 0;
    best = 0;

    for ( ;; ) {
        ngx_set_errno(0);

        if (ngx_read_dir(&dir) == NGX_ERROR) {
            break;
        }

        n = ngx_de_name(&dir);
        len = ngx_de_namelen(&dir);

        if (len != NGX_HTTP_XREGION_AUDIT_NAME_LEN
            || ngx_strncmp(n, "audit-", 6) != 0
            || ngx_strncmp(n + 26, ".jsonl", 6) != 0)
        {
            continue;
        }

        seq = 0;

        for (i = 6; i < 26; i++) {
            if (n[i] < '0' || n[i] > '9' || seq > (uint64_t) -1 / 10) {
                break;
            }

            seq = seq * 10 + (n[i] - '0');
        }

        if (i != 26 || seq == 0 || seq >= below) {
            continue;
        }

        if (!found || seq > best) {
            best = seq;
            found = 1;
        }
    }

    ngx_close_dir(&dir);

    if (!found) {
        return NGX_DECLINED;
    }

    *first = best;

    return NGX_OK;
}


static u_char *
ngx_http_xregion_audit_path(ngx_http_xregion_audit_conf_t *ac,
    uint64_t first, u_char *buf)
{
    return ngx_sprintf(buf, "%V/audit-%020uL.jsonl%Z", &ac->dir, first);
}


static ngx_int_t
ngx_http_xregion_audit_today(void)
{
    ngx_tm_t  tm;

    ngx_localtime(ngx_time(), &tm);

    return tm.ngx_tm_year * 10000 + tm.ngx_tm_mon * 100 + tm.ngx_tm_mday;
}


/*
 * A checkpoint's range, claimed so that no other worker signs it: every
 * ckpt_records records (by_time 0), every ckpt_interval (by_time 1) or
 * now (by_time 2: the worker exits),
 * and only when the range holds an entry other than a checkpoint (else
 * checkpoints would sign each other forever).
 */

static ngx_int_t
ngx_http_xregion_audit_claim_locked(ngx_http_xregion_audit_writer_t *w,
    ngx_uint_t by_time, ngx_http_xregion_audit_claim_t *claim)
{
    ngx_msec_t                    now;
    ngx_http_xregion_audit_sh_t  *sh;

    sh = w->sh;
    now = ngx_current_msec;

    if (sh->recover || sh->other_seq <= sh->ckpt_upto) {
        return NGX_DECLINED;
    }

    if (sh->ckpt_pid && now - sh->ckpt_claimed < NGX_HTTP_XREGION_AUDIT_CLAIM_MS)
    {
        return NGX_DECLINED;
    }

    if (by_time == 2) {
        /* now */

    } else if (by_time) {
        if (now - sh->ckpt_time < w->conf->ckpt_interval) {
            return NGX_DECLINED;
        }

    } else if (sh->head.seq - sh->ckpt_upto < w->conf->ckpt_records) {
        return NGX_DECLINED;
    }

    claim->first = sh->ckpt_upto + 1;
    claim->last = sh->head.seq;
    claim->head = sh->head;

    sh->ckpt_upto = sh->head.seq;
    sh->ckpt_pid = ngx_pid;
    sh->ckpt_claimed = now;

    return NGX_OK;
}


static void
ngx_http_xregion_audit_ckpt_handler(ngx_event_t *ev)
{
    ngx_http_xregion_audit_checkpoint(ev->data);
}


/* Sign the claimed range outside the lock, then append the checkpoint. */

static void
ngx_http_xregion_audit_checkpoint(ngx_http_xregion_audit_writer_t *w)
{
    u_char            *line;
    size_t             size;
    uint64_t           seq;
    xr_ctx_t           xctx;
    xr_pool_t         *xpool;
    ngx_pool_t        *pool;
    xr_audit_prep_t    prep;
    xr_audit_entry_t   e;

    if (!w->claimed) {
        return;
    }

    w->claimed = 0;

    pool = ngx_create_pool(4096, w->log);
    if (pool == NULL) {
        goto release;
    }

    xpool = ngx_http_xregion_pool_create(pool);
    if (xpool == NULL) {
        goto release;
    }

    xr_ctx_init(&xctx, xpool);

    ngx_http_xregion_audit_entry_init(w, &e, XR_AUDIT_CKPT);

    e.u.ckpt.hash_alg = w->conf->hash;
    e.u.ckpt.first = w->claim.first;
    e.u.ckpt.last = w->claim.last;
    ngx_memcpy(e.u.ckpt.head, w->claim.head.hash, XR_AUDIT_HASH_LEN);

    if (xr_audit_ckpt_sign(&xctx, &w->key, &e) != XR_OK
        || xr_audit_prepare(&xctx, w->conf->hash, &e, &prep) != XR_OK)
    {
        ngx_log_error(NGX_LOG_ERR, w->log, 0,
                      "xregion: audit checkpoint %uL..%uL: %s",
                      w->claim.first, w->claim.last, xctx.errstr);
        goto release;
    }

    size = xr_audit_line_size(&prep);

    line = ngx_pnalloc(pool, size);
    if (line == NULL) {
        goto release;
    }

    /* releases the claim */

    (void) ngx_http_xregion_audit_append(w, &prep, line, size, pool, &seq, 0);

    ngx_destroy_pool(pool);

    return;

release:

    ngx_shmtx_lock(&w->shpool->mutex);
    w->sh->ckpt_pid = 0;
    ngx_shmtx_unlock(&w->shpool->mutex);

    if (pool) {
        ngx_destroy_pool(pool);
    }
}


/*
 * Group commit: one fdatasync() for everything written so far, then the
 * answers whose records it covers go.  In a thread of nginx's pool when
 * nginx has them, so that the worker goes on serving (and writing the
 * records the next sync will cover) while the disk works; else here.
 */

static void
ngx_http_xregion_audit_sync_handler(ngx_event_t *ev)
{
    ngx_http_xregion_audit_writer_t *w = ev->data;

    if (w->syncing) {
        return;     /* its end releases what it covers, and comes back */
    }

    /* another worker's sync may already cover every waiting record */

    ngx_http_xregion_audit_release(w, 0);

    if (ngx_queue_empty(&w->waiting)) {
        return;
    }

    if (ngx_http_xregion_audit_sync_start(w, 0) == NGX_ERROR) {
        ngx_http_xregion_audit_release(w, 1);
    }
}


/*
 * Not cancelable: nginx lets an exiting worker go once only cancelable
 * timers are left, and a held answer has none of its own.  Also a safety
 * net: a wait that nothing ends starts a sync.
 */

static void
ngx_http_xregion_audit_hold_handler(ngx_event_t *ev)
{
    ngx_http_xregion_audit_writer_t *w = ev->data;

    if (ngx_queue_empty(&w->waiting) && !w->syncing) {
        return;
    }

    if (!w->syncing && !w->sync_ev.posted) {
        ngx_post_event(&w->sync_ev, &ngx_posted_events);
    }

    ngx_add_timer(ev, 1000);
}


/* The answers whose records are on disk go; all: every waiting one. */

static void
ngx_http_xregion_audit_release(ngx_http_xregion_audit_writer_t *w,
    ngx_uint_t all)
{
    uint64_t                 durable;
    ngx_queue_t             *q, *next;
    ngx_http_xregion_ctx_t  *ctx;

    durable = w->sh->durable;

    for (q = ngx_queue_head(&w->waiting);
         q != ngx_queue_sentinel(&w->waiting);
         q = next)
    {
        next = ngx_queue_next(q);
        ctx = ngx_queue_data(q, ngx_http_xregion_ctx_t, audit_queue);

        if (!all && ctx->audit_seq > durable) {
            continue;
        }

        ngx_queue_remove(q);
        ctx->audit_wait = 0;

        ngx_http_xregion_answer_release(ctx->request);
    }
}


/*
 * Takes what the sync will cover under the lock, then syncs: in a thread
 * (NGX_OK, the end comes as an event) or at once (NGX_OK after
 * sync_done()).  here: at once, and only when something is not synced yet
 * (the interval sync, a worker's exit; else NGX_DECLINED).  NGX_ERROR: no
 * sync could start, or (here) it failed.
 */

static ngx_int_t
ngx_http_xregion_audit_sync_start(ngx_http_xregion_audit_writer_t *w,
    ngx_uint_t here)
{
    ngx_err_t                     err;
    ngx_http_xregion_audit_sh_t  *sh;

    sh = w->sh;

    ngx_shmtx_lock(&w->shpool->mutex);

    if (here && (sh->durable >= sh->head.seq || sh->recover)) {
        ngx_shmtx_unlock(&w->shpool->mutex);
        return NGX_DECLINED;
    }

    if ((w->fd == NGX_INVALID_FILE || w->gen != sh->gen)
        && ngx_http_xregion_audit_reopen_locked(w) != NGX_OK)
    {
        ngx_shmtx_unlock(&w->shpool->mutex);
        return NGX_ERROR;
    }

    w->sync_target = sh->head.seq;
    w->sync_gen = sh->gen;
    w->sync_started = ngx_http_xregion_now_us();

    ngx_shmtx_unlock(&w->shpool->mutex);

    w->syncing = 1;

#if (NGX_THREADS)
    if (w->task && !here) {
        ngx_http_xregion_audit_task_t  *t = w->task->ctx;

        t->fd = dup(w->fd);
        t->err = 0;

        if (t->fd != -1) {
            if (ngx_thread_task_post(w->thread_pool, w->task) == NGX_OK) {
                return NGX_OK;
            }

            close(t->fd);
        }
    }
#endif

    err = (fdatasync(w->fd) == -1) ? ngx_errno : 0;

    ngx_http_xregion_audit_sync_done(w, err);

    return err ? NGX_ERROR : NGX_OK;
}


static void
ngx_http_xregion_audit_sync_done(ngx_http_xregion_audit_writer_t *w,
    ngx_err_t err)
{
    ngx_http_xregion_audit_sh_t  *sh;

    sh = w->sh;
    w->syncing = 0;

    ngx_http_xregion_metrics_audit(1, ngx_http_xregion_now_us()
                                      - w->sync_started);

    if (err) {
        ngx_log_error(NGX_LOG_ERR, w->log, err,
                      "xregion: fdatasync() of the audit file failed: the "
                      "answers waiting for it go without it");
        sh->failing = 1;
        ngx_http_xregion_audit_release(w, 1);
        return;
    }

    ngx_shmtx_lock(&w->shpool->mutex);

    /* after a rotation, the rotating worker synced the old file itself */

    if (sh->gen == w->sync_gen && sh->durable < w->sync_target) {
        sh->durable = w->sync_target;
    }

    ngx_shmtx_unlock(&w->shpool->mutex);

    ngx_http_xregion_audit_release(w, 0);

    if (!ngx_queue_empty(&w->waiting) && !w->sync_ev.posted) {
        ngx_post_event(&w->sync_ev, &ngx_posted_events);
    }
}


#if (NGX_THREADS)

static void
ngx_http_xregion_audit_sync_thread(void *data, ngx_log_t *log)
{
    ngx_http_xregion_audit_task_t *t = data;

    t->err = (fdatasync(t->fd) == -1) ? ngx_errno : 0;
    close(t->fd);
}


static void
ngx_http_xregion_audit_sync_event(ngx_event_t *ev)
{
    ngx_http_xregion_audit_writer_t *w = ev->data;

    ngx_http_xregion_audit_task_t  *t = w->task->ctx;

    ngx_http_xregion_audit_sync_done(w, t->err);
}

#endif


/* Every second: free space, a checkpoint due by time, an interval sync. */

static void
ngx_http_xregion_audit_tick(ngx_event_t *ev)
{
    ngx_http_xregion_audit_writer_t *w = ev->data;

    off_t                            avail;
    ngx_uint_t                       low, post, level;
    ngx_msec_t                       next;
    struct statvfs                   fs;
    ngx_http_xregion_audit_sh_t     *sh;
    ngx_http_xregion_audit_conf_t   *ac;

    sh = w->sh;
    ac = w->conf;

    if (statvfs((const char *) ac->dir.data, &fs) == 0) {
        avail = (off_t) fs.f_bavail * (off_t) fs.f_frsize;
        low = avail < ac->reserve;

        if (low != sh->low_space) {
            sh->low_space = low;

            level = low ? NGX_LOG_WARN : NGX_LOG_NOTICE;

            ngx_log_error(level, w->log, 0,
                          "xregion: free space for the audit log in \"%V\" "
                          "is %O bytes, %s reserve=%O%s", &ac->dir, avail,
                          low ? "below" : "back above", ac->reserve,
                          low ? ": transactions that need a record are "
                                "refused" : "");
        }
    }

    if (ac->sync && ngx_current_msec - w->synced >= ac->sync) {
        (void) ngx_http_xregion_audit_sync_start(w, 1);
        w->synced = ngx_current_msec;
    }

    post = 0;

    if (!w->claimed) {
        ngx_shmtx_lock(&w->shpool->mutex);

        if (ngx_http_xregion_audit_claim_locked(w, 1, &w->claim) == NGX_OK) {
            w->claimed = 1;
            post = 1;
        }

        ngx_shmtx_unlock(&w->shpool->mutex);
    }

    if (post) {
        ngx_http_xregion_audit_checkpoint(w);
    }

    if (ngx_exiting) {
        return;
    }

    next = NGX_HTTP_XREGION_AUDIT_TICK_MS;

    if (ac->sync && ac->sync < next) {
        next = ac->sync;
    }

    if (ac->ckpt_interval < next) {
        next = ac->ckpt_interval;
    }

    ngx_add_timer(ev, next);
}


/*
 * The writer's state for health checks and metrics, without the lock
 * (values a scrape may see a moment old).  NGX_DECLINED: no audit log.
 */

ngx_int_t
ngx_http_xregion_audit_status(ngx_http_xregion_main_conf_t *xmcf,
    ngx_http_xregion_audit_status_t *st)
{
    ngx_http_xregion_audit_sh_t      *sh;
    ngx_http_xregion_audit_writer_t  *w;

    ngx_memzero(st, sizeof(ngx_http_xregion_audit_status_t));

    if (xmcf->audit == NULL || xmcf->audit->writer == NULL) {
        return NGX_DECLINED;
    }

    w = xmcf->audit->writer;
    sh = w->sh;

    if (sh == NULL) {
        return NGX_DECLINED;
    }

    st->failing = sh->failing;
    st->low_space = sh->low_space;
    st->records = sh->records;
    st->lost = sh->lost;
    st->head = sh->head.seq;
    st->durable = sh->durable;
    st->signed_upto = sh->ckpt_upto;

    return NGX_OK;
}
