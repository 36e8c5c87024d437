/*
 * Stored records: every fixture message and every node type survive
 * pack + unpack; damaged or hostile records are refused cleanly.
 */

#include <dirent.h>

#include "xr_test.h"
#include "xr_msg.h"
#include "xr_profile.h"
#include "xr_record.h"
#include "xr_translate.h"


#define FIXTURES  XR_SOURCE_DIR "/tests/fixtures"


/* xr_node_equal() ignores the `unique` flag: the record keeps it. */
static int
xr_same_unique(const xr_node_t *a, const xr_node_t *b)
{
    const xr_member_t  *ma, *mb;
    size_t              i;

    if (a->type == XR_NODE_OBJECT) {
        if (a->unique != b->unique) {
            return 0;
        }
        for (ma = a->u.obj.first, mb = b->u.obj.first; ma && mb;
             ma = ma->next, mb = mb->next)
        {
            if (!xr_same_unique(ma->value, mb->value)) {
                return 0;
            }
        }
    } else if (a->type == XR_NODE_ARRAY) {
        for (i = 0; i < a->u.arr.count; i++) {
            if (!xr_same_unique(a->u.arr.items[i], b->u.arr.items[i])) {
                return 0;
            }
        }
    }
    return 1;
}


/* Equal strings, unset (data NULL) and "" told apart. */
static int
xr_same_str(xr_str_t a, xr_str_t b)
{
    if ((a.data == NULL) != (b.data == NULL)) {
        return 0;
    }
    return xr_str_cmp(a, b) == 0;
}


static void
xr_assert_same_msg(const char *what, const xr_msg_t *a, const xr_msg_t *b)
{
    if (a->dir != b->dir || a->ok != b->ok || a->has_time != b->has_time
        || !xr_same_str(a->domain, b->domain)
        || !xr_same_str(a->txn, b->txn)
        || !xr_same_str(a->msg_id, b->msg_id)
        || !xr_same_str(a->origin, b->origin)
        || !xr_same_str(a->dest, b->dest)
        || !xr_same_str(a->caller, b->caller)
        || !xr_same_str(a->version, b->version)
        || !xr_same_str(a->err_code, b->err_code)
        || !xr_same_str(a->err_msg, b->err_msg)
        || !xr_same_str(a->ref_msg_id, b->ref_msg_id))
    {
        fail_msg("%s: envelope differs after the round trip", what);
    }
    if (a->has_time) {
        xr_node_t  ta, tb;

        ta.type = XR_NODE_TIME;
        ta.u.t = a->time;
        tb.type = XR_NODE_TIME;
        tb.u.t = b->time;
        if (!xr_node_equal(&ta, &tb)) {
            fail_msg("%s: @time differs after the round trip", what);
        }
    }
    if ((a->body == NULL) != (b->body == NULL)) {
        fail_msg("%s: body lost or gained", what);
    }
    if (a->body
        && (!xr_node_equal(a->body, b->body)
            || !xr_same_unique(a->body, b->body)))
    {
        fail_msg("%s: body differs after the round trip", what);
    }
}


/*
 * pack, unpack from a malloc'd copy that is wiped and freed before the
 * comparison (the message must not point into it), pack again: the same
 * bytes.
 */
static void
xr_round_trip(const char *what, xr_ctx_t *ctx, const xr_msg_t *msg)
{
    xr_buf_t   out, again;
    xr_msg_t   back;
    char      *copy;

    xr_buf_init(&out, ctx->pool, 0);
    xr_ctx_clear(ctx);
    if (xr_record_pack(ctx, msg, &out) != XR_OK) {
        fail_msg("%s: pack: %s", what, ctx->errstr);
    }

    copy = malloc(out.len ? out.len : 1);
    assert_non_null(copy);
    memcpy(copy, out.data, out.len);
    if (xr_record_unpack(ctx, copy, out.len, &back) != XR_OK) {
        fail_msg("%s: unpack: %s", what, ctx->errstr);
    }
    memset(copy, 0xa5, out.len);
    free(copy);

    xr_assert_same_msg(what, msg, &back);

    xr_buf_init(&again, ctx->pool, 0);
    assert_int_equal(xr_record_pack(ctx, &back, &again), XR_OK);
    if (again.len != out.len || memcmp(again.data, out.data, out.len) != 0) {
        fail_msg("%s: packing the unpacked message gives other bytes", what);
    }
}


static void
test_fixtures(void **state)
{
    xr_config_t         *cfg;
    const xr_profile_t  *p;
    xr_pool_t           *cfg_pool, *pool;
    xr_ctx_t             ctx;
    xr_msg_t             msg;
    xr_dir_e             mdir;
    struct dirent       *e;
    DIR                 *d;
    char                 dir[1024], path[1400], txn[300], *data, *dot;
    size_t               i, len = 0, messages = 0;

    (void) state;
    cfg_pool = xr_pool_create(0);
    xr_ctx_init(&ctx, cfg_pool);
    if (xr_config_load(&ctx, XR_SOURCE_DIR "/config", &cfg) != XR_OK) {
        fail_msg("config: %s", ctx.errstr);
    }

    for (i = 0; i < cfg->nprofiles; i++) {
        p = &cfg->profiles[i];
        snprintf(dir, sizeof(dir), FIXTURES "/messages/%.*s/%.*s",
                 (int) p->domain.len, p->domain.data, (int) p->name.len,
                 p->name.data);
        d = opendir(dir);
        if (d == NULL) {
            continue;
        }
        while ((e = readdir(d)) != NULL) {
            if (strstr(e->d_name, ".request.")) {
                mdir = XR_DIR_REQUEST;
            } else if (strstr(e->d_name, ".response.")) {
                mdir = XR_DIR_RESPONSE;
            } else {
                continue;
            }
            snprintf(txn, sizeof(txn), "%s", e->d_name);
            dot = strchr(txn, '.');
            *dot = '\0';

            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            data = xr_test_read(path, &len);
            assert_non_null(data);

            pool = xr_pool_create(0);
            xr_ctx_init(&ctx, pool);
            if (xr_decode(&ctx, p, mdir,
                          xr_str_from(mdir == XR_DIR_RESPONSE ? txn : ""),
                          data, len, &msg) != XR_OK)
            {
                fail_msg("%s does not decode: %s", path, ctx.errstr);
            }
            xr_round_trip(path, &ctx, &msg);
            messages++;

            xr_pool_destroy(pool);
            free(data);
        }
        closedir(d);
    }

    xr_config_free(cfg);
    xr_pool_destroy(cfg_pool);

    print_message("record round trip: %zu fixture messages\n", messages);
    assert_true(messages >= 100);
}


static xr_time_t
xr_t(int y, int mo, int d, int h, int mi, int s, int ms, int ht, int hm)
{
    xr_time_t  t;

    memset(&t, 0, sizeof(t));
    t.year = y;
    t.month = mo;
    t.day = d;
    t.hour = h;
    t.min = mi;
    t.sec = s;
    t.msec = ms;
    t.has_time = ht ? 1 : 0;
    t.has_msec = hm ? 1 : 0;
    return t;
}


static void
xr_add(xr_ctx_t *ctx, xr_node_t *obj, const char *key, xr_node_t *v)
{
    assert_non_null(v);
    assert_int_equal(xr_object_add(ctx, obj, xr_str_from(key), v), XR_OK);
}


static xr_node_t *
xr_time_node(xr_ctx_t *ctx, xr_time_t t)
{
    xr_node_t  *n = xr_node_new(ctx, XR_NODE_TIME);

    n->u.t = t;
    return n;
}


/* A body with every node type and the edges of each. */
static xr_node_t *
xr_every_type(xr_ctx_t *ctx)
{
    xr_node_t  *body, *o, *a, *b, *u;

    body = xr_node_new(ctx, XR_NODE_OBJECT);
    body->unique = 1;

    xr_add(ctx, body, "null", xr_node_new(ctx, XR_NODE_NULL));
    b = xr_node_new(ctx, XR_NODE_BOOL);
    b->u.b = 1;
    xr_add(ctx, body, "yes", b);
    xr_add(ctx, body, "no", xr_node_new(ctx, XR_NODE_BOOL));
    xr_add(ctx, body, "empty", xr_node_string(ctx, "", 0));
    xr_add(ctx, body, "text",
           xr_node_string(ctx, "测试甲 \"x\"", strlen("测试甲 \"x\"")));
    xr_add(ctx, body, "nul", xr_node_string(ctx, "a\0b", 3));
    xr_add(ctx, body, "num", xr_node_number(ctx, "-1.5e300", 8));
    xr_add(ctx, body, "int0", xr_node_int(ctx, XR_NODE_INT, 0));
    xr_add(ctx, body, "intmin", xr_node_int(ctx, XR_NODE_INT, INT64_MIN));
    xr_add(ctx, body, "intmax", xr_node_int(ctx, XR_NODE_INT, INT64_MAX));
    xr_add(ctx, body, "neg", xr_node_int(ctx, XR_NODE_AMOUNT, -45863));
    xr_add(ctx, body, "fen", xr_node_int(ctx, XR_NODE_AMOUNT, 1));
    xr_add(ctx, body, "big", xr_node_int(ctx, XR_NODE_AMOUNT, 1LL << 50));
    xr_add(ctx, body, "date",
           xr_time_node(ctx, xr_t(2024, 2, 29, 0, 0, 0, 0, 0, 0)));
    xr_add(ctx, body, "dt",
           xr_time_node(ctx, xr_t(2025, 12, 31, 23, 59, 59, 0, 1, 0)));
    xr_add(ctx, body, "dtms",
           xr_time_node(ctx, xr_t(9999, 1, 1, 0, 0, 0, 999, 1, 1)));
    xr_add(ctx, body, "y0",
           xr_time_node(ctx, xr_t(0, 1, 1, 0, 0, 0, 0, 0, 1)));
    xr_add(ctx, body, "eobj", xr_node_new(ctx, XR_NODE_OBJECT));
    xr_add(ctx, body, "earr", xr_node_new(ctx, XR_NODE_ARRAY));

    /* an empty key, repeated keys, order kept */
    o = xr_node_new(ctx, XR_NODE_OBJECT);
    xr_add(ctx, o, "", xr_node_string(ctx, "k", 1));
    xr_add(ctx, o, "r", xr_node_int(ctx, XR_NODE_INT, 1));
    xr_add(ctx, o, "r", xr_node_int(ctx, XR_NODE_INT, 2));
    xr_add(ctx, o, "a", xr_node_new(ctx, XR_NODE_NULL));
    xr_add(ctx, body, "repeated", o);

    a = xr_node_new(ctx, XR_NODE_ARRAY);
    u = xr_node_new(ctx, XR_NODE_OBJECT);
    u->unique = 1;
    xr_add(ctx, u, "pay_amt", xr_node_int(ctx, XR_NODE_AMOUNT, -1));
    assert_int_equal(xr_array_push(ctx, a, u), XR_OK);
    assert_int_equal(xr_array_push(ctx, a, xr_node_new(ctx, XR_NODE_ARRAY)),
                     XR_OK);
    assert_int_equal(xr_array_push(ctx, a, xr_node_string(ctx, "", 0)),
                     XR_OK);
    xr_add(ctx, body, "items", a);

    return body;
}


static void
test_every_type(void **state)
{
    xr_env_t  *env = *state;
    xr_ctx_t  *ctx = &env->ctx;
    xr_msg_t   msg;

    xr_msg_init(&msg, XR_DIR_RESPONSE);
    msg.domain = xr_str_from("medical");
    msg.txn = xr_str_from("settle");
    msg.msg_id = xr_str_from("M1");
    msg.origin = xr_str_from("310100");
    msg.dest = xr_str_from("320100");
    msg.caller = xr_str_from("");                   /* set but empty */
    msg.version = xr_str_from("V1.0");
    msg.err_code = xr_str_from("BIZ-3001");
    msg.err_msg = xr_str_from("余额不足");
    msg.ref_msg_id = xr_str_from("R9");
    msg.ok = 1;
    msg.has_time = 1;
    msg.time = xr_t(2025, 3, 14, 9, 1, 30, 123, 1, 1);
    msg.body = xr_every_type(ctx);

    xr_round_trip("every type", ctx, &msg);

    /* the other flags and unset strings */
    xr_msg_init(&msg, XR_DIR_REQUEST);
    msg.body = xr_node_new(ctx, XR_NODE_OBJECT);
    xr_round_trip("empty request", ctx, &msg);

    msg.has_time = 1;
    msg.time = xr_t(2025, 3, 14, 0, 0, 0, 0, 0, 0);
    msg.body = NULL;
    xr_round_trip("no body", ctx, &msg);
}


/* A valid record of the every-type message, in the pool. */
static xr_buf_t
xr_valid(xr_ctx_t *ctx)
{
    xr_msg_t  msg;
    xr_buf_t  out;

    xr_msg_init(&msg, XR_DIR_RESPONSE);
    msg.domain = xr_str_from("medical");
    msg.txn = xr_str_from("person_info");
    msg.err_msg = xr_str_from("");
    msg.has_time = 1;
    msg.time = xr_t(2025, 3, 14, 9, 1, 30, 0, 1, 0);
    msg.body = xr_every_type(ctx);

    xr_buf_init(&out, ctx->pool, 0);
    assert_int_equal(xr_record_pack(ctx, &msg, &out), XR_OK);
    return out;
}


/* Unpack must fail with XR_E_INTERNAL and a "stored record: " text. */
static void
xr_refused(xr_ctx_t *ctx, const char *what, const void *data, size_t len,
    const char *expect)
{
    xr_msg_t  msg;
    char     *copy;

    /* a copy of exactly len bytes: ASan sees any read past the end */
    copy = malloc(len ? len : 1);
    assert_non_null(copy);
    if (len) {
        memcpy(copy, data, len);
    }

    xr_ctx_clear(ctx);
    if (xr_record_unpack(ctx, copy, len, &msg) != XR_ERROR) {
        fail_msg("%s: accepted", what);
    }
    free(copy);

    if (ctx->err != XR_E_INTERNAL) {
        fail_msg("%s: error %s, expected XR-INTERNAL (%s)", what,
                 xr_error_info(ctx->err)->name, ctx->errstr);
    }
    if (strncmp(ctx->errstr, "stored record: ", 15) != 0) {
        fail_msg("%s: errstr \"%s\"", what, ctx->errstr);
    }
    if (expect && strstr(ctx->errstr, expect) == NULL) {
        fail_msg("%s: errstr \"%s\" does not say \"%s\"", what, ctx->errstr,
                 expect);
    }
}


static void
test_truncations(void **state)
{
    xr_env_t  *env = *state;
    xr_buf_t   rec = xr_valid(&env->ctx);
    size_t     n;
    char       what[64];

    assert_true(rec.len > 100);
    for (n = 0; n < rec.len; n++) {
        snprintf(what, sizeof(what), "prefix of %zu bytes", n);
        xr_refused(&env->ctx, what, rec.data, n, NULL);
    }
}


static void
test_damaged(void **state)
{
    xr_env_t  *env = *state;
    xr_ctx_t  *ctx = &env->ctx;
    xr_buf_t   rec = xr_valid(ctx);
    char      *b;

    b = malloc(rec.len + 1);
    assert_non_null(b);

    memcpy(b, rec.data, rec.len);
    b[3] ^= 0x01;
    xr_refused(ctx, "version 0", b, rec.len, "version");
    b[3] = (char) 0xff;
    xr_refused(ctx, "version 255", b, rec.len, "version");

    memcpy(b, rec.data, rec.len);
    b[0] = 'x';
    xr_refused(ctx, "magic", b, rec.len, "magic");

    memcpy(b, rec.data, rec.len);
    b[4] |= 0x40;
    xr_refused(ctx, "flags", b, rec.len, "flags");

    memcpy(b, rec.data, rec.len);
    b[rec.len] = 0;
    xr_refused(ctx, "one trailing byte", b, rec.len + 1, "after the end");

    free(b);
}


/* "XRM" v1, flags, ten unset envelope strings: what a body follows. */
static size_t
xr_head(unsigned char *b, unsigned flags)
{
    memcpy(b, "XRM\x01", 4);
    b[4] = (unsigned char) flags;
    memset(b + 5, 0, 10);
    return 15;
}


static void
test_hostile(void **state)
{
    xr_env_t       *env = *state;
    xr_ctx_t       *ctx = &env->ctx;
    xr_msg_t        msg;
    unsigned char   b[512];
    size_t          n, i;

    /* the smallest record: no envelope, no body */
    n = xr_head(b, 0);
    xr_ctx_clear(ctx);
    assert_int_equal(xr_record_unpack(ctx, (char *) b, n, &msg), XR_OK);
    assert_null(msg.body);
    assert_null(msg.domain.data);

    /* an envelope length past the end */
    n = xr_head(b, 0);
    b[5] = 100;
    memcpy(b + n, "abc", 3);
    xr_refused(ctx, "envelope length", b, n + 3, "runs past the end");

    /* a string length past the end */
    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    b[n++] = 1;
    b[n++] = 1;
    b[n++] = 'k';
    b[n++] = XR_NODE_STRING;
    b[n++] = 0x80;
    b[n++] = 0x01;              /* 128 */
    memcpy(b + n, "abc", 3);
    xr_refused(ctx, "string length", b, n + 3, "runs past the end");

    /* a huge count, and one just above the bytes left */
    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    for (i = 0; i < 9; i++) {
        b[n++] = 0xff;
    }
    b[n++] = 0x01;              /* 2^64 - 1 */
    xr_refused(ctx, "huge object count", b, n, "exceeds the bytes left");

    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    b[n++] = 1;
    b[n++] = 1;
    b[n++] = 'a';
    b[n++] = XR_NODE_ARRAY;
    b[n++] = 0xff;
    b[n++] = 0xff;
    b[n++] = 0xff;
    b[n++] = 0x7f;              /* 2^28 - 1 */
    b[n++] = XR_NODE_NULL;
    xr_refused(ctx, "huge array count", b, n, "exceeds the bytes left");

    /* varints: over 64 bits, not in the shortest form */
    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    b[n++] = 1;
    b[n++] = 1;
    b[n++] = 'a';
    b[n++] = XR_NODE_INT;
    for (i = 0; i < 9; i++) {
        b[n++] = 0xff;
    }
    b[n++] = 0x02;
    xr_refused(ctx, "65-bit integer", b, n, "over 64 bits");

    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    b[n++] = 1;
    b[n++] = 1;
    b[n++] = 'a';
    b[n++] = XR_NODE_INT;
    b[n++] = 0x81;
    b[n++] = 0x00;
    xr_refused(ctx, "long varint", b, n, "shortest form");

    /* tags */
    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    b[n++] = 1;
    b[n++] = 1;
    b[n++] = 'a';
    b[n++] = 9;
    xr_refused(ctx, "node type 9", b, n, "tag");
    b[n - 1] = XR_NODE_STRING | 0x10;
    xr_refused(ctx, "flag on a string", b, n, "tag");
    b[n - 1] = XR_NODE_NULL | 0x80;
    xr_refused(ctx, "high tag bit", b, n, "tag");

    /* times out of range, unknown time flags */
    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    b[n++] = 1;
    b[n++] = 1;
    b[n++] = 't';
    b[n++] = XR_NODE_TIME;
    b[n++] = 0;
    b[n++] = 0xe9;
    b[n++] = 0x07;              /* 2025 */
    b[n++] = 13;
    b[n++] = 1;
    xr_refused(ctx, "month 13", b, n, "out of range");
    b[n - 2] = 12;
    b[n - 5] = 0x04;
    xr_refused(ctx, "time flag 4", b, n, "time flags");
    b[n - 5] = 0x01;
    memcpy(b + n, "\x18\x00\x00", 3);
    xr_refused(ctx, "hour 24", b, n + 3, "out of range");

    /* a body that is not an object */
    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_ARRAY;
    b[n++] = 0;
    xr_refused(ctx, "array body", b, n, "not an object");
}


/* Containers nested d deep (the body is the first). */
static size_t
xr_nested(unsigned char *b, unsigned depth)
{
    size_t    n;
    unsigned  i;

    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    b[n++] = 1;
    b[n++] = 1;
    b[n++] = 'a';
    for (i = 1; i < depth; i++) {
        b[n++] = XR_NODE_ARRAY;
        b[n++] = 1;
    }
    b[n++] = XR_NODE_NULL;
    return n;
}


static void
test_depth(void **state)
{
    xr_env_t       *env = *state;
    xr_ctx_t       *ctx = &env->ctx;
    unsigned char   b[1024];
    xr_msg_t        msg;
    xr_buf_t        out;
    xr_node_t      *n, *a;
    size_t          len;
    unsigned        i;

    /* the JSON adapter's limit: 64 nested containers read, 65 refused */
    len = xr_nested(b, XR_DEFAULT_MAX_DEPTH);
    xr_ctx_clear(ctx);
    assert_int_equal(xr_record_unpack(ctx, (char *) b, len, &msg), XR_OK);

    len = xr_nested(b, XR_DEFAULT_MAX_DEPTH + 1);
    xr_refused(ctx, "depth 65", b, len, "nesting deeper");

    len = xr_nested(b, 500);
    xr_refused(ctx, "depth 500", b, len, "nesting deeper");

    /* a lower limit on the ctx is the one applied */
    ctx->max_depth = 3;
    len = xr_nested(b, 4);
    xr_refused(ctx, "depth 4 of 3", b, len, "deeper than 3");
    ctx->max_depth = 0;

    /* pack refuses what unpack would */
    xr_msg_init(&msg, XR_DIR_REQUEST);
    msg.body = xr_node_new(ctx, XR_NODE_OBJECT);
    n = msg.body;
    for (i = 0; i < XR_DEFAULT_MAX_DEPTH; i++) {
        a = xr_node_new(ctx, XR_NODE_ARRAY);
        assert_int_equal(xr_array_push(ctx, a, xr_node_new(ctx, XR_NODE_NULL)),
                         XR_OK);
        if (n->type == XR_NODE_OBJECT) {
            xr_add(ctx, n, "a", a);
        } else {
            n->u.arr.items[0] = a;
        }
        n = a;
    }
    xr_buf_init(&out, ctx->pool, 0);
    xr_ctx_clear(ctx);
    assert_int_equal(xr_record_pack(ctx, &msg, &out), XR_ERROR);
    assert_int_equal(ctx->err, XR_E_INTERNAL);
    assert_int_equal(out.len, 0);
}


/* More nodes than the ctx allows: refused before they are all built. */
static void
test_node_limit(void **state)
{
    xr_env_t       *env = *state;
    xr_ctx_t       *ctx = &env->ctx;
    unsigned char   b[256];
    xr_msg_t        msg;
    size_t          n, i;

    n = xr_head(b, 0x08);
    b[n++] = XR_NODE_OBJECT;
    b[n++] = 1;
    b[n++] = 1;
    b[n++] = 'a';
    b[n++] = XR_NODE_ARRAY;
    b[n++] = 100;
    for (i = 0; i < 100; i++) {
        b[n++] = XR_NODE_NULL;
    }

    xr_ctx_clear(ctx);
    assert_int_equal(xr_record_unpack(ctx, (char *) b, n, &msg), XR_OK);
    assert_int_equal(msg.body->u.obj.first->value->u.arr.count, 100);

    ctx->max_nodes = 50;
    xr_refused(ctx, "node limit", b, n, "more than 50 nodes");
    ctx->max_nodes = 0;
}


/* The canonical packing ignores member order and the unique flag. */
static void
test_canonical(void **state)
{
    xr_env_t  *env = *state;
    xr_ctx_t  *ctx = &env->ctx;
    xr_msg_t   a, b;
    xr_buf_t   ra, rb;

    xr_msg_init(&a, XR_DIR_REQUEST);
    a.domain = xr_str_from("medical");
    a.body = xr_node_new(ctx, XR_NODE_OBJECT);
    a.body->unique = 1;
    xr_add(ctx, a.body, "x", xr_node_string(ctx, "1", 1));
    xr_add(ctx, a.body, "r", xr_node_string(ctx, "first", 5));
    xr_add(ctx, a.body, "r", xr_node_string(ctx, "second", 6));

    xr_msg_init(&b, XR_DIR_REQUEST);
    b.domain = xr_str_from("medical");
    b.caller = xr_str_from("");
    b.body = xr_node_new(ctx, XR_NODE_OBJECT);
    xr_add(ctx, b.body, "r", xr_node_string(ctx, "first", 5));
    xr_add(ctx, b.body, "x", xr_node_string(ctx, "1", 1));
    xr_add(ctx, b.body, "r", xr_node_string(ctx, "second", 6));

    xr_buf_init(&ra, ctx->pool, 0);
    xr_buf_init(&rb, ctx->pool, 0);
    assert_int_equal(xr_record_pack_canonical(ctx, &a, &ra), XR_OK);
    assert_int_equal(xr_record_pack_canonical(ctx, &b, &rb), XR_OK);
    assert_int_equal(ra.len, rb.len);
    assert_memory_equal(ra.data, rb.data, ra.len);

    /* repeated keys keep their order: swapped values differ */
    b.body = xr_node_new(ctx, XR_NODE_OBJECT);
    xr_add(ctx, b.body, "r", xr_node_string(ctx, "second", 6));
    xr_add(ctx, b.body, "x", xr_node_string(ctx, "1", 1));
    xr_add(ctx, b.body, "r", xr_node_string(ctx, "first", 5));
    xr_buf_init(&rb, ctx->pool, 0);
    assert_int_equal(xr_record_pack_canonical(ctx, &b, &rb), XR_OK);
    assert_true(ra.len != rb.len || memcmp(ra.data, rb.data, ra.len) != 0);

    /* the plain packing keeps the order */
    xr_buf_init(&ra, ctx->pool, 0);
    xr_buf_init(&rb, ctx->pool, 0);
    assert_int_equal(xr_record_pack(ctx, &a, &ra), XR_OK);
    assert_int_equal(xr_record_pack(ctx, &b, &rb), XR_OK);
    assert_true(ra.len != rb.len || memcmp(ra.data, rb.data, ra.len) != 0);
}


/* What pack refuses: a body that is not an object, a bad time. */
static void
test_pack_refusals(void **state)
{
    xr_env_t  *env = *state;
    xr_ctx_t  *ctx = &env->ctx;
    xr_msg_t   msg;
    xr_buf_t   out;

    xr_msg_init(&msg, XR_DIR_REQUEST);
    msg.body = xr_node_new(ctx, XR_NODE_ARRAY);
    xr_buf_init(&out, ctx->pool, 0);
    xr_ctx_clear(ctx);
    assert_int_equal(xr_record_pack(ctx, &msg, &out), XR_ERROR);
    assert_int_equal(ctx->err, XR_E_INTERNAL);

    msg.body = NULL;
    msg.has_time = 1;
    msg.time = xr_t(2025, 0, 1, 0, 0, 0, 0, 0, 0);
    xr_ctx_clear(ctx);
    assert_int_equal(xr_record_pack(ctx, &msg, &out), XR_ERROR);
    assert_int_equal(ctx->err, XR_E_INTERNAL);
    assert_int_equal(out.len, 0);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        xr_env_test(test_every_type),
        xr_env_test(test_truncations),
        xr_env_test(test_damaged),
        xr_env_test(test_hostile),
        xr_env_test(test_depth),
        xr_env_test(test_node_limit),
        xr_env_test(test_canonical),
        xr_env_test(test_pack_refusals),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
