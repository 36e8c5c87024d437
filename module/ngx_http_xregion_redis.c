
/*
 * Redis for each worker: hiredis's async API driven by nginx's event loop.
 *
 * One connection to the master per worker, opened at worker start.  With
 * Sentinel, a second connection to one sentinel asks where the master is
 * (SENTINEL get-master-addr-by-name) and stays subscribed to
 * +switch-master, so that a failover moves the worker to the new master
 * without a reload.  Every master connection is checked with ROLE before
 * it carries a command: nothing is ever written to a replica, and a
 * READONLY answer (the master was demoted under us) drops the connection
 * and asks the sentinels again.
 *
 * hiredis 0.14 has no timers of its own, so the timeouts are nginx timers:
 *
 *   link->timer     armed from connect until the handshake (AUTH, SELECT,
 *                   ROLE) is answered: connect_timeout; afterwards armed
 *                   while replies are pending and pushed forward by each
 *                   reply: a Redis that stops answering for `timeout` is
 *                   dropped and every pending command fails at once;
 *   reconnect       exponential backoff with jitter.  A connection is only
 *                   (re)opened from this timer, never from inside a hiredis
 *                   callback.
 *
 * Commands are accepted while the master connection is ready, and while
 * a worker's first connection is still being made (a new worker after a
 * reload gets requests at once): those are held, formatted, until the
 * handshake is done, and fail when it fails (connect_timeout bounds it).
 * In an outage a caller is told NGX_DECLINED at once and takes its outage
 * path: nothing queues behind a dead Redis.  A command tied to a request pool
 * is cancelled when that pool goes: a reply that arrives for a request
 * that has ended is dropped without touching it.  The command itself is
 * heap memory, freed when hiredis is done with it.
 *
 * Errors are logged once per outage: the first failure and the recovery,
 * not every attempt in between.
 */


#include "ngx_http_xregion_module.h"

#include <hiredis/hiredis.h>
#include <hiredis/async.h>


#define NGX_HTTP_XREGION_REDIS_DOWN         0
#define NGX_HTTP_XREGION_REDIS_CONNECTING   1
#define NGX_HTTP_XREGION_REDIS_READY        2

#define NGX_HTTP_XREGION_REDIS_BACKOFF_MIN  100     /* ms */
#define NGX_HTTP_XREGION_REDIS_BACKOFF_MAX  2000    /* ms */

#define NGX_HTTP_XREGION_REDIS_MAXARGS      12


typedef struct {
    redisAsyncContext             *ac;
    ngx_connection_t              *conn;
    ngx_event_t                    timer;
    ngx_event_t                    drop;        /* posted: close it */
    ngx_uint_t                     pending;
    const char                    *what;        /* "redis", "sentinel" */
    ngx_str_t                      addr;        /* for the log */
    u_char                         addr_buf[NGX_SOCKADDR_STRLEN + 8];
    unsigned                       handshake:1;
    unsigned                       sentinel:1;
} ngx_http_xregion_redis_link_t;


struct ngx_http_xregion_redis_cmd_s {
    ngx_http_xregion_redis_pt      handler;     /* NULL: nobody listens */
    void                          *data;
    ngx_pool_cleanup_t            *cln;         /* in the caller's pool */

    /* held until the first handshake is done */
    ngx_queue_t                    queue;
    char                          *formatted;
    int                            len;
};


typedef struct {
    ngx_http_xregion_redis_conf_t *conf;
    ngx_log_t                     *log;
    ngx_uint_t                     state;

    ngx_http_xregion_redis_link_t  master;
    ngx_http_xregion_redis_link_t  sentinel;

    ngx_event_t                    reconnect;
    ngx_uint_t                     attempt;
    ngx_uint_t                     next_sentinel;

    /* the master's address: configured, or the sentinels' answer */
    u_char                         master_ip[NGX_INET6_ADDRSTRLEN + 1];
    ngx_uint_t                     master_port;
    unsigned                       master_known:1;

    unsigned                       exiting:1;
    unsigned                       outage:1;    /* logged as down */
    unsigned                       started:1;   /* was ready once */

    ngx_queue_t                    held;
    ngx_uint_t                     nheld;
    ngx_event_t                    hold_timer;  /* holding ends: failed */
    ngx_msec_t                     down_since;

    ngx_http_xregion_redis_stats_t stats;
} ngx_http_xregion_redis_t;


static ngx_int_t ngx_http_xregion_redis_open(
    ngx_http_xregion_redis_link_t *link, const char *ip, ngx_uint_t port,
    ngx_str_t *unix_path);
static void ngx_http_xregion_redis_close(ngx_http_xregion_redis_link_t *link);
static void ngx_http_xregion_redis_lost(ngx_http_xregion_redis_link_t *link,
    const char *why);
static void ngx_http_xregion_redis_schedule(ngx_msec_t delay);
static void ngx_http_xregion_redis_reconnect_handler(ngx_event_t *ev);
static void ngx_http_xregion_redis_timer_handler(ngx_event_t *ev);
static void ngx_http_xregion_redis_drop_handler(ngx_event_t *ev);
static void ngx_http_xregion_redis_drop_later(
    ngx_http_xregion_redis_link_t *link);
static void ngx_http_xregion_redis_master_connect(void);
static void ngx_http_xregion_redis_sentinel_connect(void);
static void ngx_http_xregion_redis_on_connect(const redisAsyncContext *ac,
    int status);
static void ngx_http_xregion_redis_on_disconnect(const redisAsyncContext *ac,
    int status);
static void ngx_http_xregion_redis_handshake_reply(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_xregion_redis_role_reply(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_xregion_redis_master_addr_reply(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_xregion_redis_switch_reply(redisAsyncContext *ac,
    void *reply, void *privdata);
static void ngx_http_xregion_redis_set_master(u_char *ip, size_t ip_len,
    u_char *port, size_t port_len, const char *why);
static void ngx_http_xregion_redis_reply(redisAsyncContext *ac, void *reply,
    void *privdata);
static void ngx_http_xregion_redis_cmd_cleanup(void *data);
static void ngx_http_xregion_redis_flush_held(ngx_uint_t fail);
static void ngx_http_xregion_redis_hold_handler(ngx_event_t *ev);
static ngx_int_t ngx_http_xregion_redis_send(
    ngx_http_xregion_redis_link_t *link, redisCallbackFn *fn, void *privdata,
    int argc, const char **argv, const size_t *argvlen);

static void ngx_http_xregion_redis_add_read(void *privdata);
static void ngx_http_xregion_redis_del_read(void *privdata);
static void ngx_http_xregion_redis_add_write(void *privdata);
static void ngx_http_xregion_redis_del_write(void *privdata);
static void ngx_http_xregion_redis_cleanup(void *privdata);
static void ngx_http_xregion_redis_read_handler(ngx_event_t *ev);
static ngx_uint_t ngx_http_xregion_redis_level(void);
static void ngx_http_xregion_redis_write_handler(ngx_event_t *ev);


static ngx_http_xregion_redis_t  ngx_http_xregion_redis;


/* process hooks */

ngx_int_t
ngx_http_xregion_redis_init_process(ngx_cycle_t *cycle,
    ngx_http_xregion_redis_conf_t *conf)
{
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    ngx_memzero(rd, sizeof(ngx_http_xregion_redis_t));

    if (conf == NULL) {
        return NGX_OK;
    }

    rd->conf = conf;
    rd->log = cycle->log;
    rd->state = NGX_HTTP_XREGION_REDIS_DOWN;

    ngx_queue_init(&rd->held);

    /* commands wait for the first connection at most connect_timeout */
    rd->hold_timer.handler = ngx_http_xregion_redis_hold_handler;
    rd->hold_timer.data = rd;
    rd->hold_timer.log = cycle->log;
    rd->hold_timer.cancelable = 1;
    ngx_add_timer(&rd->hold_timer, conf->connect_timeout);

    rd->master.what = "redis";
    rd->sentinel.what = "sentinel";
    rd->sentinel.sentinel = 1;

    rd->reconnect.handler = ngx_http_xregion_redis_reconnect_handler;
    rd->reconnect.data = rd;
    rd->reconnect.log = cycle->log;
    rd->reconnect.cancelable = 1;

    rd->master.timer.handler = ngx_http_xregion_redis_timer_handler;
    rd->master.timer.data = &rd->master;
    rd->master.timer.log = cycle->log;
    rd->master.drop.handler = ngx_http_xregion_redis_drop_handler;
    rd->master.drop.data = &rd->master;
    rd->master.drop.log = cycle->log;

    rd->sentinel.timer = rd->master.timer;
    rd->sentinel.timer.data = &rd->sentinel;
    rd->sentinel.drop = rd->master.drop;
    rd->sentinel.drop.data = &rd->sentinel;

    if (conf->sentinels == NULL) {
        (void) ngx_cpystrn(rd->master_ip, conf->ip.data,
                           sizeof(rd->master_ip));
        rd->master_port = conf->port;
        rd->master_known = 1;
    }

    rd->down_since = ngx_current_msec;

    /* a random start among the sentinels spreads the workers over them */
    if (conf->sentinels) {
        rd->next_sentinel = (ngx_uint_t) ngx_random() % conf->sentinels->nelts;
    }

    ngx_http_xregion_redis_reconnect_handler(&rd->reconnect);

    return NGX_OK;
}


void
ngx_http_xregion_redis_exit_process(ngx_cycle_t *cycle)
{
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    if (rd->conf == NULL) {
        return;
    }

    rd->exiting = 1;

    if (rd->reconnect.timer_set) {
        ngx_del_timer(&rd->reconnect);
    }

    if (rd->hold_timer.timer_set) {
        ngx_del_timer(&rd->hold_timer);
    }

    ngx_http_xregion_redis_close(&rd->master);
    ngx_http_xregion_redis_close(&rd->sentinel);

    ngx_http_xregion_redis_flush_held(1);
}


ngx_int_t
ngx_http_xregion_redis_ready(void)
{
    return ngx_http_xregion_redis.conf != NULL
           && ngx_http_xregion_redis.state == NGX_HTTP_XREGION_REDIS_READY;
}


ngx_http_xregion_redis_stats_t *
ngx_http_xregion_redis_stats(void)
{
    return &ngx_http_xregion_redis.stats;
}


/*
 * A command on the master connection.  argv[] are copied into hiredis's
 * output buffer before this returns.  With a pool, the command is
 * cancelled when the pool is destroyed; handler may be NULL (nobody waits
 * for the answer).  NGX_DECLINED: Redis is not ready, the handler will not
 * be called.
 */

ngx_int_t
ngx_http_xregion_redis_command(ngx_pool_t *pool,
    ngx_http_xregion_redis_pt handler, void *data, ngx_uint_t argc,
    ngx_str_t *argv)
{
    ngx_uint_t                    i, hold;
    const char                   *args[NGX_HTTP_XREGION_REDIS_MAXARGS];
    size_t                        lens[NGX_HTTP_XREGION_REDIS_MAXARGS];
    ngx_pool_cleanup_t           *cln;
    ngx_http_xregion_redis_t     *rd = &ngx_http_xregion_redis;
    ngx_http_xregion_redis_cmd_t *cmd;

    /* the first connection of a worker, still on its way: wait for it */
    hold = rd->conf && !rd->started && !rd->outage && !rd->exiting
           && rd->hold_timer.timer_set
           && rd->state != NGX_HTTP_XREGION_REDIS_READY
           && rd->nheld < 4096;

    if (!hold && (!ngx_http_xregion_redis_ready() || rd->master.ac == NULL)) {
        if (rd->conf) {
            rd->stats.declined++;
        }

        return NGX_DECLINED;
    }

    if (argc > NGX_HTTP_XREGION_REDIS_MAXARGS) {
        return NGX_ERROR;
    }

    for (i = 0; i < argc; i++) {
        args[i] = (const char *) argv[i].data;
        lens[i] = argv[i].len;
    }

    cmd = ngx_alloc(sizeof(ngx_http_xregion_redis_cmd_t), rd->log);
    if (cmd == NULL) {
        return NGX_ERROR;
    }

    cmd->handler = handler;
    cmd->data = data;
    cmd->cln = NULL;
    cmd->formatted = NULL;

    if (pool && handler) {
        cln = ngx_pool_cleanup_add(pool, 0);
        if (cln == NULL) {
            ngx_free(cmd);
            return NGX_ERROR;
        }

        cln->handler = ngx_http_xregion_redis_cmd_cleanup;
        cln->data = cmd;
        cmd->cln = cln;
    }

    if (hold) {
        cmd->len = redisFormatCommandArgv(&cmd->formatted, (int) argc, args,
                                          lens);
        if (cmd->len < 0) {
            if (cmd->cln) {
                cmd->cln->handler = NULL;
            }

            ngx_free(cmd);
            return NGX_ERROR;
        }

        ngx_queue_insert_tail(&rd->held, &cmd->queue);
        rd->nheld++;
        rd->stats.commands++;

        return NGX_OK;
    }

    if (ngx_http_xregion_redis_send(&rd->master,
                                    ngx_http_xregion_redis_reply, cmd,
                                    (int) argc, args, lens)
        != NGX_OK)
    {
        if (cmd->cln) {
            cmd->cln->handler = NULL;
        }

        ngx_free(cmd);
        rd->stats.errors++;
        return NGX_DECLINED;
    }

    rd->stats.commands++;

    return NGX_OK;
}


/* The request went away: its reply, when it comes, is dropped. */

static void
ngx_http_xregion_redis_cmd_cleanup(void *data)
{
    ngx_http_xregion_redis_cmd_t *cmd = data;

    cmd->handler = NULL;
    cmd->data = NULL;
    cmd->cln = NULL;
}


static void
ngx_http_xregion_redis_hold_handler(ngx_event_t *ev)
{
    if (!ngx_http_xregion_redis.started) {
        ngx_http_xregion_redis_flush_held(1);
    }
}


/*
 * The commands held for the first connection: sent now that it is ready,
 * or failed (reply NULL) because it is not coming.
 */

static void
ngx_http_xregion_redis_flush_held(ngx_uint_t fail)
{
    ngx_queue_t                   *q;
    ngx_http_xregion_redis_t      *rd = &ngx_http_xregion_redis;
    ngx_http_xregion_redis_cmd_t  *cmd;

    while (!ngx_queue_empty(&rd->held)) {
        q = ngx_queue_head(&rd->held);
        ngx_queue_remove(q);
        rd->nheld--;

        cmd = ngx_queue_data(q, ngx_http_xregion_redis_cmd_t, queue);

        if (!fail && rd->master.ac
            && redisAsyncFormattedCommand(rd->master.ac,
                                          ngx_http_xregion_redis_reply, cmd,
                                          cmd->formatted, cmd->len)
               == REDIS_OK)
        {
            redisFreeCommand(cmd->formatted);
            cmd->formatted = NULL;

            rd->master.pending++;

            if (!rd->master.timer.timer_set) {
                ngx_add_timer(&rd->master.timer, rd->conf->timeout);
            }

            continue;
        }

        redisFreeCommand(cmd->formatted);

        if (cmd->cln) {
            cmd->cln->handler = NULL;
        }

        if (cmd->handler && !rd->exiting) {
            cmd->handler(cmd->data, NULL);
        }

        ngx_free(cmd);
    }
}


static ngx_int_t
ngx_http_xregion_redis_send(ngx_http_xregion_redis_link_t *link,
    redisCallbackFn *fn, void *privdata, int argc, const char **argv,
    const size_t *argvlen)
{
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    if (redisAsyncCommandArgv(link->ac, fn, privdata, argc, argv, argvlen)
        != REDIS_OK)
    {
        return NGX_ERROR;
    }

    link->pending++;

    if (!link->timer.timer_set) {
        ngx_add_timer(&link->timer, link->handshake
                                    ? rd->conf->connect_timeout
                                    : rd->conf->timeout);
    }

    return NGX_OK;
}


/* A reply (NULL: the connection failed) to a command of ours. */

static void
ngx_http_xregion_redis_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                    *rr = reply;
    ngx_http_xregion_reply_t       r, *rp;
    ngx_http_xregion_redis_t      *rd = &ngx_http_xregion_redis;
    ngx_http_xregion_redis_cmd_t  *cmd = privdata;
    ngx_http_xregion_redis_link_t *link = ac->data;

    if (link && link->pending) {
        link->pending--;

        if (link->pending == 0) {
            if (link->timer.timer_set) {
                ngx_del_timer(&link->timer);
            }

        } else {
            /* progress: the next reply has `timeout` from now */
            ngx_add_timer(&link->timer, rd->conf->timeout);
        }
    }

    rp = NULL;

    if (rr) {
        ngx_memzero(&r, sizeof(ngx_http_xregion_reply_t));

        switch (rr->type) {

        case REDIS_REPLY_STRING:
            r.type = NGX_HTTP_XREGION_REPLY_STRING;
            r.str.data = (u_char *) rr->str;
            r.str.len = rr->len;
            break;

        case REDIS_REPLY_STATUS:
            r.type = NGX_HTTP_XREGION_REPLY_STATUS;
            r.str.data = (u_char *) rr->str;
            r.str.len = rr->len;
            break;

        case REDIS_REPLY_INTEGER:
            r.type = NGX_HTTP_XREGION_REPLY_INTEGER;
            r.integer = rr->integer;
            break;

        case REDIS_REPLY_NIL:
            r.type = NGX_HTTP_XREGION_REPLY_NIL;
            break;

        case REDIS_REPLY_ARRAY:
            r.type = NGX_HTTP_XREGION_REPLY_ARRAY;
            r.integer = (int64_t) rr->elements;
            break;

        default: /* REDIS_REPLY_ERROR */
            r.type = NGX_HTTP_XREGION_REPLY_ERROR;
            r.str.data = (u_char *) rr->str;
            r.str.len = rr->len;
            rd->stats.errors++;

            /* the master was demoted under us: never write to a replica */
            if (rr->len >= 8 && ngx_strncmp(rr->str, "READONLY", 8) == 0
                && link == &rd->master)
            {
                ngx_log_error(NGX_LOG_WARN, rd->log, 0,
                              "xregion: redis %V is no longer the master "
                              "(READONLY), asking again", &link->addr);
                rd->master_known = rd->conf->sentinels ? 0 : 1;
                ngx_http_xregion_redis_drop_later(link);
            }

            break;
        }

        rp = &r;

    } else {
        rd->stats.errors++;
    }

    if (cmd->cln) {
        cmd->cln->handler = NULL;
    }

    if (cmd->handler && !rd->exiting) {
        cmd->handler(cmd->data, rp);
    }

    ngx_free(cmd);
}


/* connections */

static ngx_int_t
ngx_http_xregion_redis_open(ngx_http_xregion_redis_link_t *link,
    const char *ip, ngx_uint_t port, ngx_str_t *unix_path)
{
    u_char                    *p;
    redisAsyncContext         *ac;
    ngx_connection_t          *c;
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    if (unix_path && unix_path->len) {
        p = ngx_snprintf(link->addr_buf, sizeof(link->addr_buf), "unix:%V",
                         unix_path);
        ac = redisAsyncConnectUnix((const char *) unix_path->data);

    } else {
        p = ngx_snprintf(link->addr_buf, sizeof(link->addr_buf), "%s:%ui",
                         ip, port);
        /* ip is numeric text: getaddrinfo() does not reach DNS */
        ac = redisAsyncConnect(ip, (int) port);
    }

    link->addr.data = link->addr_buf;
    link->addr.len = p - link->addr_buf;

    if (ac == NULL) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "xregion: %s %V: out of memory", link->what,
                      &link->addr);
        return NGX_ERROR;
    }

    if (ac->err) {
        ngx_log_error(ngx_http_xregion_redis_level(), rd->log, 0,
                      "xregion: %s %V: %s", link->what, &link->addr,
                      ac->errstr);
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    /*
     * a silent peer (a sentinel we only listen to) is noticed too; not on
     * a unix socket, where TCP_KEEPIDLE fails and hiredis would keep the
     * error for the connection's first write
     */
    if (unix_path == NULL || unix_path->len == 0) {
        (void) redisEnableKeepAlive(&ac->c);
    }

    c = ngx_get_connection(ac->c.fd, rd->log);
    if (c == NULL) {
        redisAsyncFree(ac);
        return NGX_ERROR;
    }

    c->data = link;
    c->read->handler = ngx_http_xregion_redis_read_handler;
    c->write->handler = ngx_http_xregion_redis_write_handler;
    c->read->log = rd->log;
    c->write->log = rd->log;

    link->ac = ac;
    link->conn = c;
    link->pending = 0;
    link->handshake = 1;

    ac->data = link;
    ac->ev.data = link;
    ac->ev.addRead = ngx_http_xregion_redis_add_read;
    ac->ev.delRead = ngx_http_xregion_redis_del_read;
    ac->ev.addWrite = ngx_http_xregion_redis_add_write;
    ac->ev.delWrite = ngx_http_xregion_redis_del_write;
    ac->ev.cleanup = ngx_http_xregion_redis_cleanup;

    redisAsyncSetConnectCallback(ac, ngx_http_xregion_redis_on_connect);
    redisAsyncSetDisconnectCallback(ac, ngx_http_xregion_redis_on_disconnect);

    /* the whole handshake has connect_timeout */
    link->timer.cancelable = 1;
    ngx_add_timer(&link->timer, rd->conf->connect_timeout);

    return NGX_OK;
}


/*
 * Closes a link from outside hiredis's callbacks: pending commands fail,
 * the cleanup hook detaches the nginx connection.
 */

static void
ngx_http_xregion_redis_close(ngx_http_xregion_redis_link_t *link)
{
    redisAsyncContext  *ac;

    if (link->drop.posted) {
        ngx_delete_posted_event(&link->drop);
    }

    ac = link->ac;

    if (ac == NULL) {
        return;
    }

    /* on_disconnect must not schedule anything for this close */
    ac->onDisconnect = NULL;

    redisAsyncFree(ac);

    /* redisAsyncFree() ran the cleanup hook unless it was deferred */
    if (link->ac == ac) {
        link->ac = NULL;
    }

    link->pending = 0;
    link->handshake = 0;

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }
}


/* From inside a callback: close it once the event loop has unwound. */

static void
ngx_http_xregion_redis_drop_later(ngx_http_xregion_redis_link_t *link)
{
    if (!link->drop.posted) {
        ngx_post_event(&link->drop, &ngx_posted_events);
    }
}


static void
ngx_http_xregion_redis_drop_handler(ngx_event_t *ev)
{
    ngx_http_xregion_redis_link_t *link = ev->data;

    if (link->ac == NULL) {
        return;
    }

    ngx_http_xregion_redis_close(link);
    ngx_http_xregion_redis_lost(link, "dropped");
}


/*
 * A link is gone (or failed to come up).  The master going down starts an
 * outage: logged here once, with the time, and ended by the next ready
 * handshake.
 */

static void
ngx_http_xregion_redis_lost(ngx_http_xregion_redis_link_t *link,
    const char *why)
{
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    if (rd->exiting) {
        return;
    }

    if (link == &rd->master) {

        if (rd->state == NGX_HTTP_XREGION_REDIS_READY || !rd->outage) {
            ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                          "xregion: redis %V is unavailable (%s): cached "
                          "answers are bypassed and money transactions "
                          "refused until it is back", &link->addr, why);
            rd->outage = 1;
            rd->down_since = ngx_current_msec;
            rd->stats.outages++;
        }

        rd->state = NGX_HTTP_XREGION_REDIS_DOWN;

        if (rd->conf->sentinels) {
            /* where the master is gets asked again */
            rd->master_known = 0;
        }

        /* the first connection is not coming: what waited for it fails */
        ngx_http_xregion_redis_flush_held(1);

    } else {
        ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                      "xregion: sentinel %V: %s", &link->addr, why);
        rd->next_sentinel++;
    }

    ngx_http_xregion_redis_schedule((ngx_msec_t) -1);
}


/* delay -1: the next backoff step, with jitter */

static void
ngx_http_xregion_redis_schedule(ngx_msec_t delay)
{
    ngx_msec_t                 step;
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    if (rd->exiting) {
        return;
    }

    if (delay == (ngx_msec_t) -1) {

        if (rd->reconnect.timer_set) {
            return;
        }

        step = NGX_HTTP_XREGION_REDIS_BACKOFF_MIN
               << ngx_min(rd->attempt, 8);
        step = ngx_min(step, NGX_HTTP_XREGION_REDIS_BACKOFF_MAX);

        /* half fixed, half random: workers do not reconnect in step */
        delay = step / 2 + (ngx_msec_t) ngx_random() % (step / 2 + 1);

        rd->attempt++;
    }

    ngx_add_timer(&rd->reconnect, delay);
}


static void
ngx_http_xregion_redis_reconnect_handler(ngx_event_t *ev)
{
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    if (rd->exiting) {
        return;
    }

    if (rd->conf->sentinels) {

        if (rd->sentinel.ac == NULL) {
            ngx_http_xregion_redis_sentinel_connect();
            return;
        }

        if (!rd->master_known) {
            /* a subscribed connection cannot ask: ask on a new one */
            ngx_http_xregion_redis_close(&rd->sentinel);
            ngx_http_xregion_redis_sentinel_connect();
            return;
        }
    }

    if (rd->master.ac == NULL) {
        ngx_http_xregion_redis_master_connect();
    }
}


static void
ngx_http_xregion_redis_master_connect(void)
{
    int                             argc;
    u_char                          db[NGX_INT_T_LEN];
    const char                     *argv[3];
    size_t                          lens[3];
    ngx_http_xregion_redis_t       *rd = &ngx_http_xregion_redis;
    ngx_http_xregion_redis_link_t  *link = &rd->master;

    rd->state = NGX_HTTP_XREGION_REDIS_CONNECTING;

    if (ngx_http_xregion_redis_open(link, (const char *) rd->master_ip,
                                    rd->master_port,
                                    rd->conf->sentinels ? NULL
                                                        : &rd->conf->unix_path)
        != NGX_OK)
    {
        ngx_http_xregion_redis_lost(link, "cannot connect");
        return;
    }

    if (rd->conf->password.len) {
        argv[0] = "AUTH";
        lens[0] = 4;
        argv[1] = (const char *) rd->conf->password.data;
        lens[1] = rd->conf->password.len;

        if (ngx_http_xregion_redis_send(link,
                ngx_http_xregion_redis_handshake_reply, "AUTH", 2, argv, lens)
            != NGX_OK)
        {
            goto failed;
        }
    }

    if (rd->conf->db) {
        argv[0] = "SELECT";
        lens[0] = 6;
        argv[1] = (const char *) db;
        lens[1] = ngx_sprintf(db, "%ui", rd->conf->db) - db;

        if (ngx_http_xregion_redis_send(link,
                ngx_http_xregion_redis_handshake_reply, "SELECT", 2, argv,
                lens)
            != NGX_OK)
        {
            goto failed;
        }
    }

    argc = 1;
    argv[0] = "ROLE";
    lens[0] = 4;

    if (ngx_http_xregion_redis_send(link, ngx_http_xregion_redis_role_reply,
                                    NULL, argc, argv, lens)
        != NGX_OK)
    {
        goto failed;
    }

    return;

failed:

    ngx_http_xregion_redis_close(link);
    ngx_http_xregion_redis_lost(link, "cannot send the handshake");
}


static void
ngx_http_xregion_redis_sentinel_connect(void)
{
    const char                     *argv[4];
    size_t                          lens[4];
    ngx_http_xregion_redis_t       *rd = &ngx_http_xregion_redis;
    ngx_http_xregion_redis_addr_t  *addr;
    ngx_http_xregion_redis_link_t  *link = &rd->sentinel;

    addr = rd->conf->sentinels->elts;
    addr = &addr[rd->next_sentinel % rd->conf->sentinels->nelts];

    if (ngx_http_xregion_redis_open(link, (const char *) addr->ip.data,
                                    addr->port, NULL)
        != NGX_OK)
    {
        ngx_http_xregion_redis_lost(link, "cannot connect");
        return;
    }

    if (rd->conf->sentinel_password.len) {
        argv[0] = "AUTH";
        lens[0] = 4;
        argv[1] = (const char *) rd->conf->sentinel_password.data;
        lens[1] = rd->conf->sentinel_password.len;

        if (ngx_http_xregion_redis_send(link,
                ngx_http_xregion_redis_handshake_reply, "AUTH", 2, argv, lens)
            != NGX_OK)
        {
            goto failed;
        }
    }

    argv[0] = "SENTINEL";
    lens[0] = 8;
    argv[1] = "get-master-addr-by-name";
    lens[1] = sizeof("get-master-addr-by-name") - 1;
    argv[2] = (const char *) rd->conf->master.data;
    lens[2] = rd->conf->master.len;

    if (ngx_http_xregion_redis_send(link,
            ngx_http_xregion_redis_master_addr_reply, NULL, 3, argv, lens)
        != NGX_OK)
    {
        goto failed;
    }

    /*
     * The subscription's replies never end: not counted as pending, so the
     * command timer only waits for the question above.
     */

    argv[0] = "SUBSCRIBE";
    lens[0] = 9;
    argv[1] = "+switch-master";
    lens[1] = sizeof("+switch-master") - 1;

    if (redisAsyncCommandArgv(link->ac, ngx_http_xregion_redis_switch_reply,
                              NULL, 2, argv, lens)
        != REDIS_OK)
    {
        goto failed;
    }

    return;

failed:

    ngx_http_xregion_redis_close(link);
    ngx_http_xregion_redis_lost(link, "cannot send the question");
}


static void
ngx_http_xregion_redis_on_connect(const redisAsyncContext *ac, int status)
{
    ngx_http_xregion_redis_link_t *link = ac->data;

    if (status == REDIS_OK) {
        return;
    }

    /* hiredis frees the context after this returns */
    ngx_http_xregion_redis_lost(link, ac->errstr);
}


static void
ngx_http_xregion_redis_on_disconnect(const redisAsyncContext *ac, int status)
{
    ngx_http_xregion_redis_link_t *link = ac->data;

    ngx_http_xregion_redis_lost(link, status == REDIS_OK
                                      ? "connection closed"
                                      : ac->errstr);
}


static void
ngx_http_xregion_redis_handshake_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                     *rr = reply;
    ngx_http_xregion_redis_t       *rd = &ngx_http_xregion_redis;
    ngx_http_xregion_redis_link_t  *link = ac->data;

    if (link->pending) {
        link->pending--;
    }

    if (rr == NULL) {
        return;
    }

    if (rr->type == REDIS_REPLY_ERROR) {
        ngx_log_error(ngx_http_xregion_redis_level(), rd->log, 0,
                      "xregion: %s %V refused %s: %s", link->what,
                      &link->addr, (char *) privdata, rr->str);
        redisAsyncDisconnect(ac);
    }
}


/* The last step of the master's handshake: is it the master? */

static void
ngx_http_xregion_redis_role_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                     *rr = reply, *role;
    ngx_http_xregion_redis_t       *rd = &ngx_http_xregion_redis;
    ngx_http_xregion_redis_link_t  *link = ac->data;

    if (link->pending) {
        link->pending--;
    }

    if (rr == NULL || (ac->c.flags & REDIS_DISCONNECTING)) {
        return;
    }

    role = NULL;

    if (rr->type == REDIS_REPLY_ARRAY && rr->elements > 0
        && rr->element[0]->type == REDIS_REPLY_STRING)
    {
        role = rr->element[0];
    }

    if (role == NULL || role->len != 6
        || ngx_strncmp(role->str, "master", 6) != 0)
    {
        ngx_log_error(ngx_http_xregion_redis_level(), rd->log, 0,
                      "xregion: redis %V is not a master (ROLE: %s), "
                      "nothing is written to it", &link->addr,
                      role ? role->str
                           : rr->type == REDIS_REPLY_ERROR ? rr->str : "?");

        if (rd->conf->sentinels) {
            rd->master_known = 0;
        }

        redisAsyncDisconnect(ac);
        return;
    }

    link->handshake = 0;

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    /* command timeouts keep a worker alive until requests have answers */
    link->timer.cancelable = 0;

    rd->state = NGX_HTTP_XREGION_REDIS_READY;
    rd->attempt = 0;
    rd->started = 1;

    if (rd->hold_timer.timer_set) {
        ngx_del_timer(&rd->hold_timer);
    }

    ngx_http_xregion_redis_flush_held(0);

    if (rd->outage) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "xregion: redis %V is available again after %M ms",
                      &link->addr, ngx_current_msec - rd->down_since);
        rd->outage = 0;

    } else {
        ngx_log_error(NGX_LOG_INFO, rd->log, 0,
                      "xregion: redis %V is ready", &link->addr);
    }
}


static void
ngx_http_xregion_redis_master_addr_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    redisReply                     *rr = reply;
    ngx_http_xregion_redis_t       *rd = &ngx_http_xregion_redis;
    ngx_http_xregion_redis_link_t  *link = ac->data;

    if (link->pending) {
        link->pending--;
    }

    if (link->pending == 0 && link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    link->handshake = 0;

    if (rr == NULL) {
        return;
    }

    if (rr->type != REDIS_REPLY_ARRAY || rr->elements != 2
        || rr->element[0]->type != REDIS_REPLY_STRING
        || rr->element[1]->type != REDIS_REPLY_STRING)
    {
        ngx_log_error(ngx_http_xregion_redis_level(), rd->log, 0,
                      "xregion: sentinel %V does not know master \"%V\"%s%s",
                      &link->addr, &rd->conf->master,
                      rr->type == REDIS_REPLY_ERROR ? ": " : "",
                      rr->type == REDIS_REPLY_ERROR ? rr->str : "");
        ngx_http_xregion_redis_drop_later(link);
        return;
    }

    ngx_http_xregion_redis_set_master((u_char *) rr->element[0]->str,
                                      rr->element[0]->len,
                                      (u_char *) rr->element[1]->str,
                                      rr->element[1]->len, "sentinel");
}


/* ["message", "+switch-master", "<name> <old ip> <old port> <ip> <port>"] */

static void
ngx_http_xregion_redis_switch_reply(redisAsyncContext *ac, void *reply,
    void *privdata)
{
    u_char                    *p, *last, *f[5];
    size_t                     n[5];
    ngx_uint_t                 i;
    redisReply                *rr = reply, *msg;
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    if (rr == NULL || rr->type != REDIS_REPLY_ARRAY || rr->elements != 3) {
        return;
    }

    msg = rr->element[2];

    if (rr->element[0]->type != REDIS_REPLY_STRING
        || ngx_strcmp(rr->element[0]->str, "message") != 0
        || msg->type != REDIS_REPLY_STRING)
    {
        return;
    }

    p = (u_char *) msg->str;
    last = p + msg->len;

    for (i = 0; i < 5; i++) {
        while (p < last && *p == ' ') {
            p++;
        }

        f[i] = p;

        while (p < last && *p != ' ') {
            p++;
        }

        n[i] = p - f[i];

        if (n[i] == 0) {
            return;
        }
    }

    if (n[0] != rd->conf->master.len
        || ngx_strncmp(f[0], rd->conf->master.data, n[0]) != 0)
    {
        return;
    }

    ngx_http_xregion_redis_set_master(f[3], n[3], f[4], n[4],
                                      "+switch-master");
}


/* The sentinels named the master: reach it unless already there. */

static void
ngx_http_xregion_redis_set_master(u_char *ip, size_t ip_len, u_char *port,
    size_t port_len, const char *why)
{
    ngx_int_t                  n;
    u_char                     addr[NGX_SOCKADDR_STRLEN];
#if (NGX_HAVE_INET6)
    u_char                     inaddr6[16];
#endif
    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;

    n = ngx_atoi(port, port_len);

    if (ip_len >= sizeof(rd->master_ip) || n <= 0 || n > 65535) {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "xregion: %s named an invalid master address", why);
        return;
    }

    ngx_memcpy(addr, ip, ip_len);
    addr[ip_len] = '\0';

    /* never a name: resolving it would block the worker */
    if (ngx_inet_addr(addr, ip_len) == INADDR_NONE
#if (NGX_HAVE_INET6)
        && ngx_inet6_addr(addr, ip_len, inaddr6) != NGX_OK
#endif
       )
    {
        ngx_log_error(NGX_LOG_ERR, rd->log, 0,
                      "xregion: %s named master \"%s\", not an IP address "
                      "(set \"sentinel resolve-hostnames no\")", why, addr);
        return;
    }

    rd->master_known = 1;

    if (rd->master.ac && (ngx_uint_t) n == rd->master_port
        && ngx_strcmp(addr, rd->master_ip) == 0)
    {
        return;
    }

    if (rd->master.ac) {
        ngx_log_error(NGX_LOG_NOTICE, rd->log, 0,
                      "xregion: %s: master \"%V\" moved from %V to %s:%i",
                      why, &rd->conf->master, &rd->master.addr, addr, n);
        ngx_http_xregion_redis_drop_later(&rd->master);
    }

    ngx_memcpy(rd->master_ip, addr, ip_len + 1);
    rd->master_port = (ngx_uint_t) n;

    if (rd->master.ac == NULL) {
        if (rd->reconnect.timer_set) {
            ngx_del_timer(&rd->reconnect);
        }

        ngx_http_xregion_redis_schedule(0);
    }
}


/*
 * link->timer: the connect/handshake deadline, or no reply for `timeout`.
 * Either way the connection goes and its pending commands fail now.
 */

static void
ngx_http_xregion_redis_timer_handler(ngx_event_t *ev)
{
    ngx_http_xregion_redis_link_t *link = ev->data;

    ngx_http_xregion_redis_t  *rd = &ngx_http_xregion_redis;
    const char                *why;

    if (link->ac == NULL) {
        return;
    }

    why = link->handshake ? "no connection within connect_timeout"
                          : "no answer within timeout";

    if (link == &rd->master) {
        rd->stats.timeouts++;
    }

    ngx_log_error(NGX_LOG_INFO, rd->log, 0, "xregion: %s %V: %s",
                  link->what, &link->addr, why);

    ngx_http_xregion_redis_close(link);
    ngx_http_xregion_redis_lost(link, why);
}


/* hiredis's event hooks */

static void
ngx_http_xregion_redis_add_read(void *privdata)
{
    ngx_http_xregion_redis_link_t *link = privdata;

    /* level-triggered: hiredis reads one buffer per call */
    if (link->conn && !link->conn->read->active) {
        (void) ngx_add_event(link->conn->read, NGX_READ_EVENT,
                             NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_xregion_redis_del_read(void *privdata)
{
    ngx_http_xregion_redis_link_t *link = privdata;

    if (link->conn && link->conn->read->active) {
        (void) ngx_del_event(link->conn->read, NGX_READ_EVENT, 0);
    }
}


static void
ngx_http_xregion_redis_add_write(void *privdata)
{
    ngx_http_xregion_redis_link_t *link = privdata;

    if (link->conn && !link->conn->write->active) {
        (void) ngx_add_event(link->conn->write, NGX_WRITE_EVENT,
                             NGX_LEVEL_EVENT);
    }
}


static void
ngx_http_xregion_redis_del_write(void *privdata)
{
    ngx_http_xregion_redis_link_t *link = privdata;

    if (link->conn && link->conn->write->active) {
        (void) ngx_del_event(link->conn->write, NGX_WRITE_EVENT, 0);
    }
}


/* hiredis is about to close the socket and free the context */

static void
ngx_http_xregion_redis_cleanup(void *privdata)
{
    ngx_connection_t               *c;
    ngx_http_xregion_redis_link_t  *link = privdata;

    c = link->conn;

    if (c) {
        if (c->read->active) {
            (void) ngx_del_event(c->read, NGX_READ_EVENT, NGX_CLOSE_EVENT);
        }

        if (c->write->active) {
            (void) ngx_del_event(c->write, NGX_WRITE_EVENT, NGX_CLOSE_EVENT);
        }

        if (c->read->posted) {
            ngx_delete_posted_event(c->read);
        }

        if (c->write->posted) {
            ngx_delete_posted_event(c->write);
        }

        /* hiredis owns the socket; -1 also marks late events as stale */
        c->fd = (ngx_socket_t) -1;
        ngx_free_connection(c);
    }

    link->conn = NULL;
    link->ac = NULL;
    link->pending = 0;

    if (link->timer.timer_set) {
        ngx_del_timer(&link->timer);
    }

    if (link->drop.posted) {
        ngx_delete_posted_event(&link->drop);
    }
}


static void
ngx_http_xregion_redis_read_handler(ngx_event_t *ev)
{
    ngx_connection_t               *c = ev->data;
    ngx_http_xregion_redis_link_t  *link = c->data;

    if (link->ac) {
        redisAsyncHandleRead(link->ac);
    }
}


static void
ngx_http_xregion_redis_write_handler(ngx_event_t *ev)
{
    ngx_connection_t               *c = ev->data;
    ngx_http_xregion_redis_link_t  *link = c->data;

    if (link->ac) {
        redisAsyncHandleWrite(link->ac);
    }
}


/* once per outage: errors are errors until the outage is logged */

static ngx_uint_t
ngx_http_xregion_redis_level(void)
{
    return ngx_http_xregion_redis.outage ? NGX_LOG_INFO : NGX_LOG_ERR;
}
