/*
 * The audit trail: the line written byte for byte, escaping and cutting,
 * the parser's one accepted text, the chain and its checkpoints (SM2 and
 * ECDSA, SM3 and SHA-256 chains), recovery of a torn tail, rotation and
 * restart, the filter and CSV, and every tamper case caught with the line
 * and seq it concerns.
 *
 * The logs are made as the module's writer makes them: prepare outside
 * the lock, seal under it, checkpoints signed between two seals.
 */

#include "xr_test.h"
#include "xr_audit.h"
#include "xr_crypto.h"


#define KEYS  XR_SOURCE_DIR "/tests/fixtures/keys"

/* 2024-12-29T14:00:00.000+08:00 */
#define T0    INT64_C(1735452000000)


typedef struct {
    xr_env_t          *env;
    xr_digest_e        alg;
    xr_audit_key_t     key;
    xr_audit_head_t    head;
    uint64_t           signed_upto;
    int64_t            now;
    xr_buf_t           out;
} wr_t;

/* A log as lines, for tampering: each without its '\n'. */
typedef struct {
    char             **l;
    size_t            *n;
    size_t             count;
    int                torn;       /* the last line has no '\n' */
} log_t;


static xr_key_t *
load_key(xr_env_t *env, const char *file)
{
    char       path[512], *pem;
    size_t     len = 0;
    xr_key_t  *key;

    snprintf(path, sizeof(path), KEYS "/%s", file);
    pem = xr_test_read(path, &len);
    if (pem == NULL) {
        fail_msg("cannot read %s", path);
    }
    key = xr_key_load(&env->ctx, pem, len);
    if (key == NULL) {
        fail_msg("%s: %s", file, env->ctx.errstr);
    }
    free(pem);
    return key;
}


/* Whether the bytes hold the string. */
static int
has(const char *data, size_t len, const char *s)
{
    return memmem(data, len, s, strlen(s)) != NULL;
}


static xr_str_t
pstr(xr_env_t *env, const char *fmt, ...)
{
    char     buf[512];
    va_list  ap;
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return xr_pstr(env->pool, buf, (size_t) n);
}


/* The writer */

static void
wr_init(wr_t *w, xr_env_t *env, xr_digest_e alg, const xr_key_t *key)
{
    memset(w, 0, sizeof(wr_t));
    w->env = env;
    w->alg = alg;
    w->now = T0;
    if (key) {
        assert_int_equal(xr_audit_key_init(&env->ctx, &w->key, key), XR_OK);
    }
    xr_buf_init(&w->out, env->pool, 0);
}


static void
wr_seal(wr_t *w, const xr_audit_entry_t *e)
{
    char             *line;
    size_t            len;
    xr_audit_prep_t   p;

    if (xr_audit_prepare(&w->env->ctx, w->alg, e, &p) != XR_OK) {
        fail_msg("prepare: %s", w->env->ctx.errstr);
    }

    line = malloc(xr_audit_line_size(&p));
    assert_non_null(line);
    assert_int_equal(xr_audit_seal(&p, &w->head, line,
                                   xr_audit_line_size(&p), &len), XR_OK);
    assert_true(len <= xr_audit_line_size(&p));
    assert_int_equal(line[len - 1], '\n');
    assert_int_equal(xr_buf_add(&w->out, line, len), XR_OK);
    free(line);
}


static void
wr_open(wr_t *w, xr_audit_reason_e reason, const char *prev_file,
    uint64_t torn)
{
    xr_audit_entry_t  e;

    memset(&e, 0, sizeof(e));
    e.type = XR_AUDIT_OPEN;
    e.time_ms = w->now;
    e.tz_min = 480;
    e.inst = xr_str_from("gw-sh-1");
    e.u.open.hash_alg = w->alg;
    e.u.open.reason = reason;
    e.u.open.prev_file = xr_str_from(prev_file);
    e.u.open.torn = torn;
    wr_seal(w, &e);
}


static void
make_rec(xr_env_t *env, int i, int64_t now, xr_audit_entry_t *e)
{
    static const char  *domains[] = { "medical", "transit", "gov" };
    static const char  *origins[] = { "310000", "320100", "330100",
                                      "340000", "110000" };
    static const char  *outcomes[] = { "ok", "rejected", "ok", "failed" };
    xr_audit_amount_t  *a;
    xr_audit_ident_t   *id;

    memset(e, 0, sizeof(xr_audit_entry_t));
    e->type = XR_AUDIT_REC;
    e->time_ms = now;
    e->tz_min = 480;
    e->inst = xr_str_from("gw-sh-1");
    e->u.rec.caller = pstr(env, "%s.%s", i % 2 ? "jiangsu" : "shanghai",
                           domains[i % 3]);
    e->u.rec.domain = xr_str_from(domains[i % 3]);
    e->u.rec.txn = xr_str_from(i % 3 == 0 ? "settle" : "card_status");
    e->u.rec.msg_id = pstr(env, "MSG%06d", i);
    e->u.rec.origin = xr_str_from(origins[i % 5]);
    e->u.rec.dest = xr_str_from(origins[(i + 1) % 5]);
    e->u.rec.upstream = xr_str_from("dest_medical");
    e->u.rec.peer = xr_str_from("127.0.0.1:8081");
    e->u.rec.outcome = xr_str_from(outcomes[i % 4]);
    e->u.rec.error = xr_str_from(i % 4 == 1 ? "XR-FORBIDDEN" : "");
    e->u.rec.latency_ms = 10 + i;
    e->u.rec.upstream_ms = i % 4 == 1 ? -1 : 5 + i;

    a = xr_palloc(env->pool, 2 * sizeof(xr_audit_amount_t));
    a[0].name = xr_str_from("total");
    a[0].fen = 1000 * i + 1;
    a[1].name = xr_str_from("fund_pay");
    a[1].fen = 700 * i;
    e->u.rec.amounts = a;
    e->u.rec.namounts = i % 3 == 0 ? 2 : 0;

    id = xr_palloc(env->pool, sizeof(xr_audit_ident_t));
    id[0].name = xr_str_from("psn_no");
    id[0].value = pstr(env, "3101**********%04d", i);
    e->u.rec.ids = id;
    e->u.rec.nids = 1;
}


static void
wr_rec(wr_t *w, int i)
{
    xr_audit_entry_t  e;

    make_rec(w->env, i, w->now, &e);
    wr_seal(w, &e);
    w->now += 1000;
}


/* The checkpoint of what the head says now, signed between two seals. */

static void
wr_ckpt_with(wr_t *w, const xr_audit_key_t *k)
{
    xr_audit_entry_t  e;

    memset(&e, 0, sizeof(e));
    e.type = XR_AUDIT_CKPT;
    e.time_ms = w->now;
    e.tz_min = 480;
    e.inst = xr_str_from("gw-sh-1");
    e.u.ckpt.hash_alg = w->alg;
    e.u.ckpt.first = w->signed_upto + 1;
    e.u.ckpt.last = w->head.seq;
    memcpy(e.u.ckpt.head, w->head.hash, XR_AUDIT_HASH_LEN);
    w->signed_upto = w->head.seq;

    if (xr_audit_ckpt_sign(&w->env->ctx, k, &e) != XR_OK) {
        fail_msg("sign: %s", w->env->ctx.errstr);
    }
    wr_seal(w, &e);
}


static void
wr_ckpt(wr_t *w)
{
    wr_ckpt_with(w, &w->key);
}


/*
 * A log: open, then n records with a checkpoint after every `every`
 * (0: none), and one at the end when `final`.
 */
static void
wr_log(wr_t *w, int n, int every, int final)
{
    int  i;

    wr_open(w, XR_AUDIT_START, "", 0);
    for (i = 1; i <= n; i++) {
        wr_rec(w, i);
        if (every && i % every == 0) {
            wr_ckpt(w);
        }
    }
    if (final && (every == 0 || n % every)) {
        wr_ckpt(w);
    }
}


/* Lines */

static void
log_from(log_t *lg, const char *buf, size_t len)
{
    size_t       i, s;

    memset(lg, 0, sizeof(log_t));
    lg->l = test_calloc(len + 1, sizeof(char *));
    lg->n = test_calloc(len + 1, sizeof(size_t));

    s = 0;
    for (i = 0; i <= len; i++) {
        if (i == len || buf[i] == '\n') {
            if (i == len && i == s) {
                break;
            }
            lg->l[lg->count] = test_malloc(i - s + 1);
            memcpy(lg->l[lg->count], buf + s, i - s);
            lg->l[lg->count][i - s] = '\0';
            lg->n[lg->count] = i - s;
            lg->count++;
            lg->torn = i == len;
            s = i + 1;
        }
    }
}


static void
log_free(log_t *lg)
{
    size_t  i;

    for (i = 0; i < lg->count; i++) {
        test_free(lg->l[i]);
    }
    test_free(lg->l);
    test_free(lg->n);
}


static void
log_set(log_t *lg, size_t i, const char *text, size_t len)
{
    test_free(lg->l[i]);
    lg->l[i] = test_malloc(len + 1);
    memcpy(lg->l[i], text, len);
    lg->l[i][len] = '\0';
    lg->n[i] = len;
}


static void
log_delete(log_t *lg, size_t i)
{
    test_free(lg->l[i]);
    memmove(lg->l + i, lg->l + i + 1, (lg->count - i - 1) * sizeof(char *));
    memmove(lg->n + i, lg->n + i + 1, (lg->count - i - 1) * sizeof(size_t));
    lg->count--;
}


/* Inserts a copy of text before index i (i == count: at the end). */
static void
log_insert(log_t *lg, size_t i, const char *text, size_t len)
{
    memmove(lg->l + i + 1, lg->l + i, (lg->count - i) * sizeof(char *));
    memmove(lg->n + i + 1, lg->n + i, (lg->count - i) * sizeof(size_t));
    lg->count++;
    lg->l[i] = NULL;
    lg->l[i] = test_malloc(len + 1);
    memcpy(lg->l[i], text, len);
    lg->l[i][len] = '\0';
    lg->n[i] = len;
}


/*
 * What an attacker without the key can do: recompute the chain from line
 * `from` on, so that every seq, prev and hash fits again.
 */
static void
log_rechain(xr_env_t *env, log_t *lg, size_t from, xr_digest_e alg)
{
    char              *scratch, *line;
    size_t             i, len;
    xr_audit_head_t    head;
    xr_audit_prep_t    p;
    xr_audit_entry_t  *e;

    e = test_malloc(sizeof(xr_audit_entry_t));
    scratch = test_malloc(XR_AUDIT_LINE_MAX);

    memset(&head, 0, sizeof(head));
    if (from > 0) {
        assert_int_equal(xr_audit_parse(&env->ctx, lg->l[from - 1],
                                        lg->n[from - 1], scratch, e), XR_OK);
        head.seq = e->seq;
        memcpy(head.hash, e->hash, XR_AUDIT_HASH_LEN);
    }

    for (i = from; i < lg->count; i++) {
        assert_int_equal(xr_audit_parse(&env->ctx, lg->l[i], lg->n[i],
                                        scratch, e), XR_OK);
        assert_int_equal(xr_audit_prepare(&env->ctx, alg, e, &p), XR_OK);
        line = test_malloc(xr_audit_line_size(&p));
        assert_int_equal(xr_audit_seal(&p, &head, line,
                                       xr_audit_line_size(&p), &len), XR_OK);
        log_set(lg, i, line, len - 1);
        test_free(line);
    }

    test_free(scratch);
    test_free(e);
}


/* Verification of lines as one file (file 0), lines numbered from 1. */

static const char *const  names[] = { "a.log", "b.log" };

static int
verify_log(xr_env_t *env, const xr_audit_key_t *key, const log_t *lg,
    const log_t *anchors, xr_audit_report_t *rep, xr_audit_summary_t *sum)
{
    int                   rc;
    char                 *scratch;
    size_t                i;
    xr_audit_entry_t     *e;
    xr_audit_verifier_t  *v;

    v = xr_audit_verifier_create(&env->ctx, key, names, 1);
    assert_non_null(v);

    if (anchors) {
        e = test_malloc(sizeof(xr_audit_entry_t));
        scratch = test_malloc(XR_AUDIT_LINE_MAX);
        for (i = 0; i < anchors->count; i++) {
            assert_int_equal(xr_audit_parse(&env->ctx, anchors->l[i],
                                            anchors->n[i], scratch, e),
                             XR_OK);
            assert_int_equal(e->type, XR_AUDIT_CKPT);
            assert_int_equal(xr_audit_ckpt_verify(&env->ctx, key, e), XR_OK);
            assert_int_equal(xr_audit_verifier_expect(v, e), XR_OK);
        }
        test_free(scratch);
        test_free(e);
    }

    rc = XR_OK;
    for (i = 0; i < lg->count && rc == XR_OK; i++) {
        rc = xr_audit_verifier_line(v, lg->l[i], lg->n[i],
                                    !(lg->torn && i + 1 == lg->count), 0,
                                    i + 1);
    }
    if (rc == XR_OK) {
        rc = xr_audit_verifier_end(v);
    }
    assert_int_not_equal(rc, XR_ERROR);

    *rep = *xr_audit_verifier_report(v);
    if (sum) {
        *sum = *xr_audit_verifier_summary(v);
    }
    return rc;
}


/* A fault of the kind, at the line and seq, or fail with what was found. */
static void
expect_fault(xr_env_t *env, const xr_audit_key_t *key, const log_t *lg,
    const log_t *anchors, xr_audit_fault_e fault, uint64_t line,
    uint64_t seq)
{
    int                 rc;
    xr_audit_report_t   rep;

    rc = verify_log(env, key, lg, anchors, &rep, NULL);
    if (rc != XR_DECLINED || rep.fault != fault || rep.line != line
        || rep.seq != seq)
    {
        fail_msg("expected %s at line %llu seq %llu, got rc %d: %s at "
                 "line %llu seq %llu: %s", xr_audit_fault_name(fault),
                 (unsigned long long) line, (unsigned long long) seq, rc,
                 xr_audit_fault_name(rep.fault),
                 (unsigned long long) rep.line, (unsigned long long) rep.seq,
                 rep.text);
    }
}


static void
expect_ok(xr_env_t *env, const xr_audit_key_t *key, const log_t *lg,
    xr_audit_summary_t *sum)
{
    xr_audit_report_t   rep;

    if (verify_log(env, key, lg, NULL, &rep, sum) != XR_OK) {
        fail_msg("does not verify: %s at line %llu seq %llu: %s",
                 xr_audit_fault_name(rep.fault),
                 (unsigned long long) rep.line, (unsigned long long) rep.seq,
                 rep.text);
    }
}


/* The line, byte for byte */

static void
test_line_exact(void **state)
{
    xr_env_t          *env = *state;
    char               line[1024], hex[XR_AUDIT_HEX_LEN + 1];
    size_t             len, n;
    xr_audit_head_t    head;
    xr_audit_prep_t    p;
    xr_audit_entry_t   e;
    xr_audit_amount_t  a[2] = { { xr_string("total"), 45863 },
                               { xr_string("refund"), -100 } };
    xr_audit_ident_t   id[2] = { { xr_string("psn_no"),
                                   xr_string("3101**********1234") },
                                 { xr_string("name"),
                                   xr_string("\xe5\xbc\xa0*") } };
    unsigned char      d[32], in[72], h[32];
    const char        *content;

    memset(&e, 0, sizeof(e));
    e.type = XR_AUDIT_REC;
    e.time_ms = T0 + 123;
    e.tz_min = 480;
    e.inst = xr_str_from("gw-sh-1");
    e.u.rec.caller = xr_str_from("shanghai.medical");
    e.u.rec.domain = xr_str_from("medical");
    e.u.rec.txn = xr_str_from("settle");
    e.u.rec.msg_id = xr_str_from("H31000020241229140000001");
    e.u.rec.origin = xr_str_from("310000");
    e.u.rec.dest = xr_str_from("320100");
    e.u.rec.upstream = xr_str_from("jiangsu_medical");
    e.u.rec.peer = xr_str_from("10.0.0.5:443");
    e.u.rec.outcome = xr_str_from("ok");
    e.u.rec.latency_ms = 37;
    e.u.rec.upstream_ms = 30;
    e.u.rec.amounts = a;
    e.u.rec.namounts = 2;
    e.u.rec.ids = id;
    e.u.rec.nids = 2;

    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_OK);

    content =
        "\"type\":\"rec\",\"time\":\"2024-12-29T14:00:00.123+08:00\","
        "\"inst\":\"gw-sh-1\",\"caller\":\"shanghai.medical\","
        "\"domain\":\"medical\",\"txn\":\"settle\","
        "\"msg_id\":\"H31000020241229140000001\",\"origin\":\"310000\","
        "\"dest\":\"320100\",\"upstream\":\"jiangsu_medical\","
        "\"peer\":\"10.0.0.5:443\",\"outcome\":\"ok\",\"error\":\"\","
        "\"latency_ms\":37,\"upstream_ms\":30,"
        "\"amounts\":{\"total\":45863,\"refund\":-100},"
        "\"ids\":{\"psn_no\":\"3101**********1234\","
        "\"name\":\"\xe5\xbc\xa0*\"}";
    assert_int_equal(p.content.len, strlen(content));
    assert_memory_equal(p.content.data, content, p.content.len);

    /* the digest is SM3 of the content */
    assert_int_equal(xr_digest(XR_DIGEST_SM3, content, strlen(content), d,
                               &n), XR_OK);
    assert_memory_equal(d, p.digest, 32);

    /* seal after seq 41 whose hash is 0x11 * 32 */
    head.seq = 41;
    memset(head.hash, 0x11, 32);
    assert_int_equal(xr_audit_seal(&p, &head, line, sizeof(line), &len),
                     XR_OK);

    memset(in, 0x11, 32);
    memset(in + 32, 0, 8);
    in[39] = 42;
    memcpy(in + 40, d, 32);
    assert_int_equal(xr_digest(XR_DIGEST_SM3, in, 72, h, &n), XR_OK);
    xr_hex(h, 32, hex);
    hex[64] = '\0';

    {
        char  want[1024];

        snprintf(want, sizeof(want),
                 "{\"seq\":42,\"prev\":\"1111111111111111111111111111111111"
                 "111111111111111111111111111111\",%s,\"hash\":\"%s\"}\n",
                 content, hex);
        assert_int_equal(len, strlen(want));
        assert_memory_equal(line, want, len);
    }

    assert_int_equal(head.seq, 42);
    assert_memory_equal(head.hash, h, 32);

    /* too small a buffer: nothing written, the head stays */
    assert_int_equal(xr_audit_seal(&p, &head, line, p.content.len + 10,
                                   &len), XR_ERROR);
    assert_int_equal(head.seq, 42);
    head.seq = UINT64_MAX;
    assert_int_equal(xr_audit_seal(&p, &head, line, sizeof(line), &len),
                     XR_ERROR);
}


/* Every kind of bad value written in its one form, and read back. */

static void
test_escaping(void **state)
{
    xr_env_t          *env = *state;
    char              *scratch, big[600], line[4096];
    size_t             len, i;
    xr_audit_head_t    head;
    xr_audit_prep_t    p;
    xr_audit_entry_t   e, *back;

    static const struct {
        const char  *in;
        size_t       len;
        const char  *out;           /* between the quotes */
    } cases[] = {
        { "plain", 5, "plain" },
        { "a\"b\\c/d", 7, "a\\\"b\\\\c/d" },
        { "\b\f\n\r\t", 5, "\\b\\f\\n\\r\\t" },
        { "\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f" },
        { "\0x", 2, "\\u0000x" },
        { "\xe4\xb8\xad\xe6\x96\x87", 6, "\xe4\xb8\xad\xe6\x96\x87" },
        { "\xf0\x9f\x98\x80", 4, "\xf0\x9f\x98\x80" },
        /* bad UTF-8: each byte that starts no valid sequence is U+FFFD */
        { "a\xff" "b", 3, "a\xef\xbf\xbd" "b" },
        { "\xc0\xaf", 2, "\xef\xbf\xbd\xef\xbf\xbd" },          /* overlong */
        { "\xed\xa0\x80", 3,                                    /* surrogate */
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
        { "\xe4\xb8", 2, "\xef\xbf\xbd\xef\xbf\xbd" },          /* cut */
        { "\xf4\x90\x80\x80", 4,                                /* > 10FFFF */
          "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd" },
    };

    scratch = test_malloc(XR_AUDIT_LINE_MAX);
    back = test_malloc(sizeof(xr_audit_entry_t));

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char  want[128];

        make_rec(env, 1, T0, &e);
        e.u.rec.msg_id.data = cases[i].in;
        e.u.rec.msg_id.len = cases[i].len;
        assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                         XR_OK);

        snprintf(want, sizeof(want), "\"msg_id\":\"%s\",", cases[i].out);
        if (!has(p.content.data, p.content.len, want)) {
            fail_msg("case %zu: %s not in %.*s", i, want,
                     (int) p.content.len, p.content.data);
        }

        /* read back: the value as written, and the same text again */
        memset(&head, 0, sizeof(head));
        assert_int_equal(xr_audit_seal(&p, &head, line, sizeof(line), &len),
                         XR_OK);
        if (xr_audit_parse(&env->ctx, line, len - 1, scratch, back)
            != XR_OK)
        {
            fail_msg("case %zu: %s", i, env->ctx.errstr);
        }
        if (cases[i].len == strlen(cases[i].out)
            && memcmp(cases[i].in, cases[i].out, cases[i].len) == 0)
        {
            assert_int_equal(back->u.rec.msg_id.len, cases[i].len);
            assert_memory_equal(back->u.rec.msg_id.data, cases[i].in,
                                cases[i].len);
        }
    }

    /* long values: cut after whole characters, "..." at the end */
    memset(big, 'a', sizeof(big));
    make_rec(env, 1, T0, &e);
    e.u.rec.msg_id.data = big;
    e.u.rec.msg_id.len = XR_AUDIT_VALUE_MAX;          /* just fits */
    e.u.rec.caller.data = big;
    e.u.rec.caller.len = XR_AUDIT_VALUE_MAX + 1;      /* just does not */
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_OK);
    memset(&head, 0, sizeof(head));
    assert_int_equal(xr_audit_seal(&p, &head, line, sizeof(line), &len),
                     XR_OK);
    assert_int_equal(xr_audit_parse(&env->ctx, line, len - 1, scratch, back),
                     XR_OK);
    assert_int_equal(back->u.rec.msg_id.len, XR_AUDIT_VALUE_MAX);
    assert_int_equal(back->u.rec.caller.len, XR_AUDIT_VALUE_MAX);
    assert_memory_equal(back->u.rec.caller.data + XR_AUDIT_VALUE_MAX - 3,
                        "...", 3);
    assert_int_equal(back->u.rec.caller.data[XR_AUDIT_VALUE_MAX - 4], 'a');

    /* an escape or a character is never split: 6-byte escapes, 3-byte
       characters; the text stays within the limit */
    for (i = 0; i < sizeof(big); i++) {
        big[i] = i % 2 ? '\x01' : 'x';
    }
    e.u.rec.caller.len = sizeof(big);
    for (i = 0; i + 3 <= 300; i += 3) {
        memcpy(big + 300 + i, "\xe4\xb8\xad", 3);
    }
    e.u.rec.msg_id.data = big + 300;
    e.u.rec.msg_id.len = 300;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_OK);
    memset(&head, 0, sizeof(head));
    assert_int_equal(xr_audit_seal(&p, &head, line, sizeof(line), &len),
                     XR_OK);
    assert_int_equal(xr_audit_parse(&env->ctx, line, len - 1, scratch, back),
                     XR_OK);
    /* 253 bytes of 3-byte characters: 84 of them, then "..." */
    assert_int_equal(back->u.rec.msg_id.len, 84 * 3 + 3);
    assert_memory_equal(back->u.rec.msg_id.data + 84 * 3, "...", 3);
    /* "x\u0001" is 7 written bytes: 36 pairs = 252, then "x" = 253 */
    assert_int_equal(back->u.rec.caller.len, 36 * 2 + 1 + 3);

    /* cutting is idempotent: what was written is written the same again */
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, back, &p),
                     XR_OK);
    assert_int_equal(p.content.len, back->content.len);
    assert_memory_equal(p.content.data, back->content.data, p.content.len);

    test_free(back);
    test_free(scratch);
}


/* What the writer refuses: what the format cannot carry. */

static void
test_prepare_refusals(void **state)
{
    xr_env_t           *env = *state;
    xr_audit_prep_t     p;
    xr_audit_entry_t    e;
    xr_audit_amount_t   a[XR_AUDIT_PAIRS_MAX + 1];
    size_t              i;

    make_rec(env, 3, T0, &e);
    for (i = 0; i <= XR_AUDIT_PAIRS_MAX; i++) {
        a[i].name = pstr(env, "a%zu", i);
        a[i].fen = (int64_t) i;
    }
    e.u.rec.amounts = a;
    e.u.rec.namounts = XR_AUDIT_PAIRS_MAX;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_OK);
    e.u.rec.namounts = XR_AUDIT_PAIRS_MAX + 1;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_INTERNAL);
    xr_ctx_clear(&env->ctx);

    /* two names written alike: the same, or two bad bytes both U+FFFD */
    a[1].name = xr_str_from("a0");
    e.u.rec.namounts = 2;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_ERROR);
    xr_ctx_clear(&env->ctx);
    a[0].name = xr_str_from("\xff");
    a[1].name = xr_str_from("\xfe");
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_ERROR);
    xr_ctx_clear(&env->ctx);
    e.u.rec.namounts = 0;

    /* times outside 0001-9999 or offsets past 18 h */
    e.time_ms = INT64_MAX;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_ERROR);
    xr_ctx_clear(&env->ctx);
    e.time_ms = T0;
    e.tz_min = 19 * 60;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_ERROR);
    xr_ctx_clear(&env->ctx);
    e.tz_min = -330;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_OK);
    assert_true(has(p.content.data, p.content.len,
                    "T00:30:00.000-05:30\""));

    /* negative latency is 0, a negative upstream time null */
    e.u.rec.latency_ms = -5;
    e.u.rec.upstream_ms = -1;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_OK);
    assert_true(has(p.content.data, p.content.len,
                    "\"latency_ms\":0,\"upstream_ms\":null,"));

    /* an unsigned checkpoint, a checkpoint of another chain digest */
    memset(&e, 0, sizeof(e));
    e.type = XR_AUDIT_CKPT;
    e.time_ms = T0;
    e.u.ckpt.hash_alg = XR_DIGEST_SM3;
    e.u.ckpt.first = 1;
    e.u.ckpt.last = 1;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_ERROR);
    xr_ctx_clear(&env->ctx);
    e.u.ckpt.sig = xr_str_from("x");
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SHA256, &e, &p),
                     XR_ERROR);
    xr_ctx_clear(&env->ctx);
    e.u.ckpt.first = 2;
    assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                     XR_ERROR);
    xr_ctx_clear(&env->ctx);
}


/*
 * The parser takes the one text and nothing else: variants of a good line
 * that JSON would accept are refused.
 */

static void
test_parse_strict(void **state)
{
    xr_env_t          *env = *state;
    wr_t               w;
    log_t              lg;
    char              *scratch, *bad;
    size_t             i, k, n;
    xr_audit_entry_t  *e;
    xr_audit_prep_t    p;
    xr_key_t          *key;

    static const struct {
        const char  *from;
        const char  *to;
    } edits[] = {
        { "{\"seq\":", "{ \"seq\":" },
        { "\"seq\":", "\"Seq\":" },
        { ",\"caller\":", ", \"caller\":" },
        { "\"latency_ms\":", "\"latency_ms\":0" },      /* leading zero */
        { "\"latency_ms\":", "\"latency_ms\":-" },
        { "\"upstream\":\"dest_medical\"",
          "\"upstream\":\"dest\\u005fmedical\"" },
        { "\"outcome\":\"failed\"", "\"outcome\":\"f\\u0061iled\"" },
        { "\"outcome\":\"failed\"", "\"outcome\":\"f\\ailed\"" },
        { "\"outcome\":\"failed\"", "\"outcome\":\"f\tailed\"" },
        { "\"outcome\":\"failed\"", "\"outcome\":\"f\xc3\"" },
        { "\"outcome\":\"failed\"", "\"outcome\":\"f\x7f" "ailed\"" },
        { "\"outcome\":\"failed\"",
          "\"outcome\":\"failed\",\"outcome\":\"failed\"" },
        { "\"outcome\":\"failed\",", "" },
        { "\"error\":\"\"", "\"error\":\"\\u0041\"" },
        { "\"type\":\"rec\"", "\"type\":\"REC\"" },
        { "+08:00", "-00:00" },
        { "+08:00", "Z" },
        { ".000+08:00", "+08:00" },
        { "T14:", "T24:" },
        { "2024-12-29", "2024-02-30" },
        { "\"amounts\":{\"total\":3001", "\"amounts\":{\"total\":3001,"
                                        "\"total\":1" },
        { "\"amounts\":{\"total\":3001", "\"amounts\":{\"total\":-0" },
        { "\"amounts\":{\"total\":3001", "\"amounts\":{\"total\":3001.0" },
        { "\"ids\":{", "\"ids\":{ " },
        { "\"upstream_ms\":8", "\"upstream_ms\":NULL" },
        { "\"upstream_ms\":8", "\"upstream_ms\":08" },
        { ",\"prev\":\"", ",\"prev\":\"A" },
    };

    key = load_key(env, "sm2-test-only-key.pem");
    wr_init(&w, env, XR_DIGEST_SM3, key);
    wr_log(&w, 4, 0, 1);
    log_from(&lg, w.out.data, w.out.len);
    assert_int_equal(lg.count, 6);

    scratch = test_malloc(XR_AUDIT_LINE_MAX);
    e = test_malloc(sizeof(xr_audit_entry_t));
    bad = test_malloc(XR_AUDIT_LINE_MAX);

    /* every good line parses and writes back to the same content */
    for (i = 0; i < lg.count; i++) {
        if (xr_audit_parse(&env->ctx, lg.l[i], lg.n[i], scratch, e) != XR_OK)
        {
            fail_msg("line %zu: %s", i + 1, env->ctx.errstr);
        }
        assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, e, &p),
                         XR_OK);
        assert_int_equal(p.content.len, e->content.len);
        assert_memory_equal(p.content.data, e->content.data, p.content.len);
    }

    /* record seq 3 (line 4) has amounts and upstream_ms set */
    for (k = 0; k < sizeof(edits) / sizeof(edits[0]); k++) {
        const char  *at;

        at = strstr(lg.l[3], edits[k].from);
        if (at == NULL) {
            fail_msg("edit %zu: %s not in the line", k, edits[k].from);
        }
        n = (size_t) (at - lg.l[3]);
        memcpy(bad, lg.l[3], n);
        memcpy(bad + n, edits[k].to, strlen(edits[k].to));
        memcpy(bad + n + strlen(edits[k].to), at + strlen(edits[k].from),
               lg.n[3] - n - strlen(edits[k].from));
        n = lg.n[3] - strlen(edits[k].from) + strlen(edits[k].to);

        if (xr_audit_parse(&env->ctx, bad, n, scratch, e) != XR_ERROR) {
            fail_msg("edit %zu (%s -> %s) parses", k, edits[k].from,
                     edits[k].to);
        }
        assert_int_equal(env->ctx.err, XR_E_SYNTAX);
        assert_true(strncmp(env->ctx.errstr, "audit line: ", 12) == 0);
        xr_ctx_clear(&env->ctx);
    }

    /* every prefix of a good line is refused */
    for (n = 0; n < lg.n[5]; n++) {
        if (xr_audit_parse(&env->ctx, lg.l[5], n, scratch, e) == XR_OK) {
            fail_msg("the first %zu bytes of a checkpoint parse", n);
        }
        xr_ctx_clear(&env->ctx);
    }

    /* the seq alone */
    {
        uint64_t  seq;

        assert_int_equal(xr_audit_line_seq(lg.l[3], lg.n[3], &seq), XR_OK);
        assert_int_equal(seq, 4);
        assert_int_equal(xr_audit_line_seq("{\"seq\":07,", 10, &seq),
                         XR_DECLINED);
        assert_int_equal(xr_audit_line_seq("{\"seq\":7", 8, &seq),
                         XR_DECLINED);
        assert_int_equal(xr_audit_line_seq("{\"seq\":99999999999999999999,",
                                           29, &seq), XR_DECLINED);
    }

    test_free(bad);
    test_free(e);
    test_free(scratch);
    log_free(&lg);
    xr_key_free(key);
}


/* Chains and checkpoints: both signatures, both digests */

static void
check_roundtrip(xr_env_t *env, const char *priv, const char *pub,
    xr_digest_e alg)
{
    wr_t                 w;
    log_t                lg;
    xr_key_t            *k, *kp;
    xr_audit_key_t       vk;
    xr_audit_summary_t   sum;

    k = load_key(env, priv);
    kp = load_key(env, pub);
    assert_int_equal(xr_audit_key_init(&env->ctx, &vk, kp), XR_OK);

    wr_init(&w, env, alg, k);
    wr_log(&w, 10, 4, 0);
    wr_rec(&w, 11);

    log_from(&lg, w.out.data, w.out.len);
    /* open, 10 records, 2 checkpoints, 1 record */
    assert_int_equal(lg.count, 14);
    expect_ok(env, &vk, &lg, &sum);

    assert_int_equal(sum.entries, 14);
    assert_int_equal(sum.records, 11);
    assert_int_equal(sum.checkpoints, 2);
    assert_int_equal(sum.opens, 1);
    assert_int_equal(sum.first_seq, 1);
    assert_int_equal(sum.last_seq, 14);
    assert_true(sum.first_prev_zero);
    /* the second checkpoint (seq 11) signs up to seq 10 */
    assert_int_equal(sum.signed_upto, 10);
    assert_int_equal(sum.last_ckpt_seq, 11);
    assert_int_equal(sum.unsigned_records, 3);
    assert_int_equal(sum.alg, alg);
    assert_int_equal(sum.unchecked_heads, 0);

    /* the checkpoint names the key's algorithm */
    assert_non_null(strstr(lg.l[5], xr_audit_sig_name(vk.alg)));
    assert_non_null(strstr(lg.l[5], xr_audit_hash_name(alg)));

    log_free(&lg);
    xr_key_free(k);
    xr_key_free(kp);
}


static void
test_chain_sm2_sm3(void **state)
{
    check_roundtrip(*state, "sm2-test-only-key.pem", "sm2-test-only-pub.pem",
                    XR_DIGEST_SM3);
}


static void
test_chain_ecdsa_sha256(void **state)
{
    check_roundtrip(*state, "p256-test-only-key.pem",
                    "p256-test-only-pub.pem", XR_DIGEST_SHA256);
}


static void
test_chain_mixed(void **state)
{
    /* the digest of the chain and the key's are independent */
    check_roundtrip(*state, "p256-test-only-key.pem",
                    "p256-test-only-pub.pem", XR_DIGEST_SM3);
    check_roundtrip(*state, "sm2-test-only-key.pem", "sm2-test-only-pub.pem",
                    XR_DIGEST_SHA256);
}


/* A checkpoint's signature alone: key ids, other keys, altered text. */

static void
test_ckpt_sign_verify(void **state)
{
    xr_env_t          *env = *state;
    char              *scratch;
    xr_key_t          *sm2, *sm2pub, *other, *p256;
    xr_audit_key_t     ks, kspub, ko, kp;
    xr_audit_entry_t   e, *back;
    wr_t               w;
    log_t              lg;

    sm2 = load_key(env, "sm2-test-only-key.pem");
    sm2pub = load_key(env, "sm2-test-only-pub.pem");
    other = load_key(env, "sm2-gbt32918-5-key.pem");
    p256 = load_key(env, "p256-test-only-key.pem");
    assert_int_equal(xr_audit_key_init(&env->ctx, &ks, sm2), XR_OK);
    assert_int_equal(xr_audit_key_init(&env->ctx, &kspub, sm2pub), XR_OK);
    assert_int_equal(xr_audit_key_init(&env->ctx, &ko, other), XR_OK);
    assert_int_equal(xr_audit_key_init(&env->ctx, &kp, p256), XR_OK);

    /* the private and public halves have one id */
    assert_memory_equal(ks.id, kspub.id, XR_KEY_ID_LEN);
    assert_memory_not_equal(ks.id, ko.id, XR_KEY_ID_LEN);
    assert_int_equal(ks.alg, XR_AUDIT_SM2_SM3);
    assert_int_equal(kp.alg, XR_AUDIT_ECDSA_P256_SHA256);

    memset(&e, 0, sizeof(e));
    e.type = XR_AUDIT_CKPT;
    e.time_ms = T0;
    e.tz_min = 480;
    e.inst = xr_str_from("gw");
    e.u.ckpt.hash_alg = XR_DIGEST_SM3;
    e.u.ckpt.first = 1;
    e.u.ckpt.last = 9;
    memset(e.u.ckpt.head, 0xab, 32);

    assert_int_equal(xr_audit_ckpt_sign(&env->ctx, &ks, &e), XR_OK);
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &kspub, &e), XR_OK);
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &ko, &e), XR_DECLINED);
    assert_non_null(strstr(env->ctx.errstr, "not by the key given"));
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &kp, &e), XR_DECLINED);

    /* the signed text covers head, range, time and instance */
    e.u.ckpt.last = 8;
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &kspub, &e),
                     XR_DECLINED);
    e.u.ckpt.last = 9;
    e.u.ckpt.head[31] ^= 1;
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &kspub, &e),
                     XR_DECLINED);
    e.u.ckpt.head[31] ^= 1;
    e.time_ms++;
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &kspub, &e),
                     XR_DECLINED);
    e.time_ms--;
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &kspub, &e), XR_OK);

    /* a signature of garbage bytes: declined, not an error */
    e.u.ckpt.sig = xr_str_from("garbage");
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &kspub, &e),
                     XR_DECLINED);
    assert_int_equal(env->ctx.err, XR_E_NONE);

    /* signing needs the private half */
    assert_int_equal(xr_audit_ckpt_sign(&env->ctx, &kspub, &e), XR_ERROR);
    xr_ctx_clear(&env->ctx);

    /* parsed from a line: the signed text is the line's own bytes */
    wr_init(&w, env, XR_DIGEST_SM3, p256);
    wr_log(&w, 2, 0, 1);
    log_from(&lg, w.out.data, w.out.len);
    scratch = test_malloc(XR_AUDIT_LINE_MAX);
    back = test_malloc(sizeof(xr_audit_entry_t));
    assert_int_equal(xr_audit_parse(&env->ctx, lg.l[3], lg.n[3], scratch,
                                    back), XR_OK);
    assert_int_equal(back->type, XR_AUDIT_CKPT);
    assert_int_equal(back->u.ckpt.first, 1);
    assert_int_equal(back->u.ckpt.last, 3);
    assert_true(back->u.ckpt.signed_text.len > 0);
    assert_memory_equal(back->u.ckpt.signed_text.data, "\"type\":\"ckpt\"",
                        13);
    assert_int_equal(xr_audit_ckpt_verify(&env->ctx, &kp, back), XR_OK);

    test_free(back);
    test_free(scratch);
    log_free(&lg);
    xr_key_free(sm2);
    xr_key_free(sm2pub);
    xr_key_free(other);
    xr_key_free(p256);
}


/* Tampering: each caught, with the line and seq named */

typedef struct {
    wr_t             w;
    xr_key_t        *priv, *pub;
    xr_audit_key_t   vk;
    log_t            lg;
} tamper_t;


/*
 * The reference log, 1 line per seq:
 *   1 open, 2-6 rec 1-5, 7 ckpt(1..6), 8-12 rec 6-10, 13 ckpt(7..12),
 *   14-15 rec 11-12.
 */
static void
tamper_setup(xr_env_t *env, tamper_t *t)
{
    t->priv = load_key(env, "sm2-test-only-key.pem");
    t->pub = load_key(env, "sm2-test-only-pub.pem");
    assert_int_equal(xr_audit_key_init(&env->ctx, &t->vk, t->pub), XR_OK);

    wr_init(&t->w, env, XR_DIGEST_SM3, t->priv);
    wr_log(&t->w, 10, 5, 0);
    wr_rec(&t->w, 11);
    wr_rec(&t->w, 12);
    log_from(&t->lg, t->w.out.data, t->w.out.len);
    assert_int_equal(t->lg.count, 15);
    expect_ok(env, &t->vk, &t->lg, NULL);
}


static void
tamper_teardown(tamper_t *t)
{
    log_free(&t->lg);
    xr_key_free(t->priv);
    xr_key_free(t->pub);
}


static void
test_tamper_flip(void **state)
{
    xr_env_t  *env = *state;
    tamper_t   t;
    char      *p;

    /* a byte of a field: the amount of seq 4 (record 3) */
    tamper_setup(env, &t);
    p = strstr(t.lg.l[3], "\"total\":3001");
    assert_non_null(p);
    p[9] = '4';
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_EDITED, 4, 4);
    tamper_teardown(&t);

    /* a byte of its own hash */
    tamper_setup(env, &t);
    p = strstr(t.lg.l[8], ",\"hash\":\"");
    p[20] = p[20] == 'a' ? 'b' : 'a';
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_EDITED, 9, 9);
    tamper_teardown(&t);

    /* a byte of prev */
    tamper_setup(env, &t);
    p = strstr(t.lg.l[9], ",\"prev\":\"");
    p[12] = p[12] == '0' ? '1' : '0';
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_EDITED, 10, 10);
    tamper_teardown(&t);

    /* a digit of the seq: the hash covers it */
    tamper_setup(env, &t);
    t.lg.l[4][7] = '7';
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_EDITED, 5, 7);
    tamper_teardown(&t);

    /* a byte that breaks the syntax */
    tamper_setup(env, &t);
    p = strstr(t.lg.l[10], "\"domain\"");
    p[0] = '\'';
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_MALFORMED, 11, 11);
    tamper_teardown(&t);

    /* a byte of a checkpoint's signed part: its own hash breaks first */
    tamper_setup(env, &t);
    p = strstr(t.lg.l[6], "\"last\":6");
    p[7] = '5';
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_EDITED, 7, 7);
    tamper_teardown(&t);
}


static void
test_tamper_delete_insert(void **state)
{
    xr_env_t  *env = *state;
    tamper_t   t;
    char      *copy;

    /* delete seq 9 (line 9): line 9 now holds seq 10 */
    tamper_setup(env, &t);
    log_delete(&t.lg, 8);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_DELETED, 9, 9);
    tamper_teardown(&t);

    /* deleted, and a made-up line with its seq put at the end: still
       deleted, not moved */
    tamper_setup(env, &t);
    log_delete(&t.lg, 8);
    log_insert(&t.lg, t.lg.count, "{\"seq\":9,\"prev\":\"00\"}", 21);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_DELETED, 9, 9);
    tamper_teardown(&t);

    /* delete three: seq 3..5 */
    tamper_setup(env, &t);
    log_delete(&t.lg, 2);
    log_delete(&t.lg, 2);
    log_delete(&t.lg, 2);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_DELETED, 3, 3);
    tamper_teardown(&t);

    /* delete the first line: the chain then starts at seq 2, whose prev
       is not zeros; without anything holding seq 1 that is a shorter log,
       and the checkpoint's range starts at 1: its head still matches */
    tamper_setup(env, &t);
    log_delete(&t.lg, 0);
    {
        xr_audit_summary_t  sum;

        expect_ok(env, &t.vk, &t.lg, &sum);
        assert_int_equal(sum.first_seq, 2);
        assert_false(sum.first_prev_zero);
    }
    tamper_teardown(&t);

    /* a copy of line 3 inserted after line 10: seq 3 again at line 11 */
    tamper_setup(env, &t);
    copy = strdup(t.lg.l[2]);
    log_insert(&t.lg, 10, copy, strlen(copy));
    free(copy);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_INSERTED, 11, 3);
    tamper_teardown(&t);

    /* a forged record with the next seq and a fitting prev and hash,
       inserted after line 9: the true seq 10 comes again at line 11 */
    tamper_setup(env, &t);
    {
        xr_audit_head_t    head;
        xr_audit_entry_t   e;
        xr_audit_prep_t    p;
        char               line[4096], *scratch;
        size_t             len;
        xr_audit_entry_t  *pe;

        scratch = test_malloc(XR_AUDIT_LINE_MAX);
        pe = test_malloc(sizeof(xr_audit_entry_t));
        assert_int_equal(xr_audit_parse(&env->ctx, t.lg.l[8], t.lg.n[8],
                                        scratch, pe), XR_OK);
        head.seq = pe->seq;
        memcpy(head.hash, pe->hash, 32);
        make_rec(env, 99, T0, &e);
        assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &e, &p),
                         XR_OK);
        assert_int_equal(xr_audit_seal(&p, &head, line, sizeof(line), &len),
                         XR_OK);
        log_insert(&t.lg, 9, line, len - 1);
        test_free(pe);
        test_free(scratch);
    }
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_INSERTED, 11, 10);
    tamper_teardown(&t);

    /* a record replaced by another with the same seq and its own hash:
       the next line's prev names it */
    tamper_setup(env, &t);
    {
        log_t    orig;
        size_t   i;
        char    *p;

        log_from(&orig, t.w.out.data, t.w.out.len);
        p = strstr(t.lg.l[3], "MSG000003");
        p[8] = '9';
        log_rechain(env, &t.lg, 3, XR_DIGEST_SM3);
        for (i = 4; i < t.lg.count; i++) {
            log_set(&t.lg, i, orig.l[i], orig.n[i]);
        }
        log_free(&orig);
    }
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_UNLINKED, 5, 5);
    tamper_teardown(&t);
}


static void
test_tamper_reorder(void **state)
{
    xr_env_t  *env = *state;
    tamper_t   t;
    char      *a;
    size_t     n;

    /* two neighbours: lines 4 and 5 swapped */
    tamper_setup(env, &t);
    a = t.lg.l[3];
    n = t.lg.n[3];
    t.lg.l[3] = t.lg.l[4];
    t.lg.n[3] = t.lg.n[4];
    t.lg.l[4] = a;
    t.lg.n[4] = n;
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_REORDERED, 4, 5);
    tamper_teardown(&t);

    /* far apart: lines 3 and 10 swapped; seq 3 turns up at line 10 */
    tamper_setup(env, &t);
    a = t.lg.l[2];
    n = t.lg.n[2];
    t.lg.l[2] = t.lg.l[9];
    t.lg.n[2] = t.lg.n[9];
    t.lg.l[9] = a;
    t.lg.n[9] = n;
    {
        xr_audit_report_t  rep;

        assert_int_equal(verify_log(env, &t.vk, &t.lg, NULL, &rep, NULL),
                         XR_DECLINED);
        assert_int_equal(rep.fault, XR_AUDIT_REORDERED);
        assert_int_equal(rep.line, 3);
        assert_int_equal(rep.seq, 10);
        assert_non_null(strstr(rep.text, "seq 3 is further on, at a.log:10"));
    }
    tamper_teardown(&t);

    /* a line moved to the end */
    tamper_setup(env, &t);
    a = strdup(t.lg.l[5]);
    log_delete(&t.lg, 5);
    log_insert(&t.lg, t.lg.count, a, strlen(a));
    free(a);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_REORDERED, 6, 7);
    tamper_teardown(&t);
}


static void
test_tamper_truncate(void **state)
{
    xr_env_t            *env = *state;
    tamper_t             t;
    log_t                anchors;
    xr_audit_summary_t   sum;

    /* mid-line: the last line is cut short */
    tamper_setup(env, &t);
    t.lg.n[14] = 40;
    t.lg.torn = 1;
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_TORN, 15, 15);
    tamper_teardown(&t);

    /* a whole last line with its '\n' gone counts as torn too */
    tamper_setup(env, &t);
    t.lg.torn = 1;
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_TORN, 15, 15);
    tamper_teardown(&t);

    /*
     * Whole lines after the first checkpoint: the rest verifies (the log
     * alone cannot tell), the summary says how far it is signed; with the
     * later checkpoint the regulator pulled before, the cut is caught.
     */
    tamper_setup(env, &t);
    log_from(&anchors, t.lg.l[12], t.lg.n[12]);
    while (t.lg.count > 7) {
        log_delete(&t.lg, t.lg.count - 1);
    }
    expect_ok(env, &t.vk, &t.lg, &sum);
    assert_int_equal(sum.last_seq, 7);
    assert_int_equal(sum.signed_upto, 6);
    assert_int_equal(sum.unsigned_records, 0);
    expect_fault(env, &t.vk, &t.lg, &anchors, XR_AUDIT_TRUNCATED, 8, 8);

    /* the same checkpoint held, the whole log given: fine */
    log_free(&t.lg);
    log_from(&t.lg, t.w.out.data, t.w.out.len);
    {
        xr_audit_report_t  rep;

        assert_int_equal(verify_log(env, &t.vk, &t.lg, &anchors, &rep, NULL),
                         XR_OK);
    }

    /* a log rewritten from seq 3 on, its checkpoints dropped: no signature
       in it fails, but the one held does not match */
    {
        char  *p;

        log_delete(&t.lg, 12);
        log_delete(&t.lg, 6);
        p = strstr(t.lg.l[2], "MSG000002");
        p[8] = '7';
        log_rechain(env, &t.lg, 2, XR_DIGEST_SM3);
        expect_ok(env, &t.vk, &t.lg, NULL);
        expect_fault(env, &t.vk, &t.lg, &anchors, XR_AUDIT_REWRITTEN, 12,
                     12);
    }
    log_free(&anchors);
    tamper_teardown(&t);
}


static void
test_tamper_checkpoints(void **state)
{
    xr_env_t        *env = *state;
    tamper_t         t;
    xr_key_t        *other, *p256;
    xr_audit_key_t   ko, kp;
    char            *copy, *p;

    other = load_key(env, "sm2-gbt32918-5-key.pem");
    p256 = load_key(env, "p256-test-only-key.pem");
    assert_int_equal(xr_audit_key_init(&env->ctx, &ko, other), XR_OK);
    assert_int_equal(xr_audit_key_init(&env->ctx, &kp, p256), XR_OK);

    /* a checkpoint forged with another SM2 key, chained in properly */
    tamper_setup(env, &t);
    wr_ckpt_with(&t.w, &ko);
    log_free(&t.lg);
    log_from(&t.lg, t.w.out.data, t.w.out.len);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_FOREIGN_KEY, 16, 16);
    tamper_teardown(&t);

    /* and with a P-256 key */
    tamper_setup(env, &t);
    wr_ckpt_with(&t.w, &kp);
    log_free(&t.lg);
    log_from(&t.lg, t.w.out.data, t.w.out.len);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_FOREIGN_KEY, 16, 16);
    tamper_teardown(&t);

    /* another key's signature under our key's id */
    tamper_setup(env, &t);
    memcpy(ko.id, t.vk.id, XR_KEY_ID_LEN);
    wr_ckpt_with(&t.w, &ko);
    assert_int_equal(xr_audit_key_init(&env->ctx, &ko, other), XR_OK);
    log_free(&t.lg);
    log_from(&t.lg, t.w.out.data, t.w.out.len);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_BAD_SIGNATURE, 16, 16);
    tamper_teardown(&t);

    /* a checkpoint's range changed and the chain recomputed after it */
    tamper_setup(env, &t);
    p = strstr(t.lg.l[12], "\"first\":7");
    p[8] = '8';
    log_rechain(env, &t.lg, 12, XR_DIGEST_SM3);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_BAD_SIGNATURE, 13, 13);
    tamper_teardown(&t);

    /* an old checkpoint replayed at the end, chained in properly */
    tamper_setup(env, &t);
    copy = strdup(t.lg.l[6]);
    log_insert(&t.lg, t.lg.count, copy, strlen(copy));
    free(copy);
    log_rechain(env, &t.lg, t.lg.count - 1, XR_DIGEST_SM3);
    expect_fault(env, &t.vk, &t.lg, NULL, XR_AUDIT_REPLAYED, 16, 16);
    tamper_teardown(&t);

    /* a record edited and every hash after it recomputed: the next
       checkpoint's head is not the chain's */
    tamper_setup(env, &t);
    p = strstr(t.lg.l[8], "MSG000007");
    p[8] = '1';
    log_rechain(env, &t.lg, 8, XR_DIGEST_SM3);
    {
        xr_audit_report_t  rep;

        assert_int_equal(verify_log(env, &t.vk, &t.lg, NULL, &rep, NULL),
                         XR_DECLINED);
        assert_int_equal(rep.fault, XR_AUDIT_REWRITTEN);
        assert_int_equal(rep.line, 13);
        assert_int_equal(rep.seq, 13);
        assert_non_null(strstr(rep.text, "between seq 7 and 12"));
    }
    tamper_teardown(&t);

    /* without a key the chain is still checked, signatures are not */
    tamper_setup(env, &t);
    wr_ckpt_with(&t.w, &ko);
    log_free(&t.lg);
    log_from(&t.lg, t.w.out.data, t.w.out.len);
    expect_ok(env, NULL, &t.lg, NULL);
    tamper_teardown(&t);

    xr_key_free(other);
    xr_key_free(p256);
}


/* Files: rotation, restart, recovery */

static void
test_rotation(void **state)
{
    xr_env_t             *env = *state;
    wr_t                  w;
    log_t                 a, b;
    xr_key_t             *key, *pub;
    xr_audit_key_t        vk;
    xr_audit_verifier_t  *v;
    xr_audit_report_t     rep;
    size_t                i, split;
    xr_audit_tail_t       tail;
    xr_audit_entry_t     *e;
    char                 *scratch;

    key = load_key(env, "sm2-test-only-key.pem");
    pub = load_key(env, "sm2-test-only-pub.pem");
    assert_int_equal(xr_audit_key_init(&env->ctx, &vk, pub), XR_OK);

    /* a: 1 open, 2-4 rec, 5 ckpt(1..4), 6-8 rec, 9 ckpt(5..8);
       b: 10 open(rotate), 11-13 rec, 14 ckpt(9..13) */
    wr_init(&w, env, XR_DIGEST_SM3, key);
    wr_log(&w, 6, 3, 0);
    split = w.out.len;

    /* the writer learns nothing from file a but its head: as at a
       rotation, the open entry of b continues it */
    assert_int_equal(xr_audit_recover(&env->ctx, w.out.data, split, 1,
                                      &tail), XR_OK);
    assert_int_equal(tail.head.seq, w.head.seq);
    assert_memory_equal(tail.head.hash, w.head.hash, 32);
    assert_int_equal(tail.signed_upto, 8);

    wr_open(&w, XR_AUDIT_ROTATE, "audit.log.1", 0);
    for (i = 7; i <= 9; i++) {
        wr_rec(&w, (int) i);
    }
    wr_ckpt(&w);

    log_from(&a, w.out.data, split);
    log_from(&b, w.out.data + split, w.out.len - split);

    /* b's first line names a's last seq and hash */
    scratch = test_malloc(XR_AUDIT_LINE_MAX);
    e = test_malloc(sizeof(xr_audit_entry_t));
    assert_int_equal(xr_audit_parse(&env->ctx, b.l[0], b.n[0], scratch, e),
                     XR_OK);
    assert_int_equal(e->type, XR_AUDIT_OPEN);
    assert_int_equal(e->u.open.reason, XR_AUDIT_ROTATE);
    assert_int_equal(e->seq, tail.head.seq + 1);
    assert_memory_equal(e->prev, tail.head.hash, 32);
    assert_int_equal(e->u.open.prev_file.len, 11);

    /* both files in order verify as one chain */
    v = xr_audit_verifier_create(&env->ctx, &vk, names, 2);
    for (i = 0; i < a.count; i++) {
        assert_int_equal(xr_audit_verifier_line(v, a.l[i], a.n[i], 1, 0,
                                                i + 1), XR_OK);
    }
    for (i = 0; i < b.count; i++) {
        assert_int_equal(xr_audit_verifier_line(v, b.l[i], b.n[i], 1, 1,
                                                i + 1), XR_OK);
    }
    assert_int_equal(xr_audit_verifier_end(v), XR_OK);
    assert_int_equal(xr_audit_verifier_summary(v)->entries, 14);
    assert_int_equal(xr_audit_verifier_summary(v)->opens, 2);
    assert_int_equal(xr_audit_verifier_summary(v)->signed_upto, 13);

    /* b alone: a chain that starts later, still checked */
    v = xr_audit_verifier_create(&env->ctx, &vk, names, 2);
    for (i = 0; i < b.count; i++) {
        assert_int_equal(xr_audit_verifier_line(v, b.l[i], b.n[i], 1, 1,
                                                i + 1), XR_OK);
    }
    assert_int_equal(xr_audit_verifier_end(v), XR_OK);
    assert_int_equal(xr_audit_verifier_summary(v)->first_seq, 10);
    assert_false(xr_audit_verifier_summary(v)->first_prev_zero);

    /* a's last line lost: b's first names a seq a does not reach */
    log_delete(&a, a.count - 1);
    v = xr_audit_verifier_create(&env->ctx, &vk, names, 2);
    for (i = 0; i < a.count; i++) {
        assert_int_equal(xr_audit_verifier_line(v, a.l[i], a.n[i], 1, 0,
                                                i + 1), XR_OK);
    }
    assert_int_equal(xr_audit_verifier_line(v, b.l[0], b.n[0], 1, 1, 1),
                     XR_OK);
    assert_int_equal(xr_audit_verifier_end(v), XR_DECLINED);
    rep = *xr_audit_verifier_report(v);
    assert_int_equal(rep.fault, XR_AUDIT_DELETED);
    assert_int_equal(rep.file, 1);
    assert_int_equal(rep.line, 1);
    assert_int_equal(rep.seq, 9);
    assert_non_null(strstr(rep.text, "seq 9 is missing"));

    test_free(e);
    test_free(scratch);
    log_free(&a);
    log_free(&b);
    xr_key_free(key);
    xr_key_free(pub);
}


static void
test_recover(void **state)
{
    xr_env_t          *env = *state;
    wr_t               w;
    log_t              lg;
    xr_key_t          *key;
    xr_audit_tail_t    t;
    char              *buf;
    size_t             len, cut;
    xr_audit_head_t    head;

    key = load_key(env, "p256-test-only-key.pem");
    wr_init(&w, env, XR_DIGEST_SHA256, key);
    wr_log(&w, 5, 2, 0);
    head = w.head;

    /* a clean end */
    assert_int_equal(xr_audit_recover(&env->ctx, w.out.data, w.out.len, 1,
                                      &t), XR_OK);
    assert_int_equal(t.keep, w.out.len);
    assert_int_equal(t.torn, 0);
    assert_int_equal(t.head.seq, head.seq);
    assert_memory_equal(t.head.hash, head.hash, 32);
    assert_int_equal(t.alg, XR_DIGEST_SHA256);
    assert_int_equal(t.signed_upto, 6);

    /* a crash in the middle of the next line: cut it, continue */
    buf = test_malloc(w.out.len + 200);
    memcpy(buf, w.out.data, w.out.len);
    len = w.out.len;
    memcpy(buf + len, "{\"seq\":11,\"prev\":\"ab", 20);
    len += 20;
    assert_int_equal(xr_audit_recover(&env->ctx, buf, len, 1, &t), XR_OK);
    assert_int_equal(t.keep, w.out.len);
    assert_int_equal(t.torn, 20);
    assert_int_equal(t.head.seq, head.seq);

    /* the same seen through a tail window that starts mid-line */
    cut = len - 700;
    assert_int_equal(xr_audit_recover(&env->ctx, buf + cut, len - cut, 0,
                                      &t), XR_OK);
    assert_int_equal(t.keep, w.out.len - cut);
    assert_int_equal(t.torn, 20);
    assert_int_equal(t.head.seq, head.seq);

    /* a window holding no whole line */
    assert_int_equal(xr_audit_recover(&env->ctx, buf + len - 10, 10, 0, &t),
                     XR_DECLINED);
    assert_int_equal(xr_audit_recover(&env->ctx, buf + w.out.len - 50, 50,
                                      0, &t), XR_DECLINED);

    /* empty files and half a first line */
    assert_int_equal(xr_audit_recover(&env->ctx, "", 0, 1, &t), XR_OK);
    assert_int_equal(t.head.seq, 0);
    assert_int_equal(xr_audit_recover(&env->ctx, "{\"se", 4, 1, &t), XR_OK);
    assert_int_equal(t.head.seq, 0);
    assert_int_equal(t.torn, 4);

    /* a last line that is not the gateway's: do not chain on it */
    memcpy(buf + w.out.len, "hello\n", 6);
    assert_int_equal(xr_audit_recover(&env->ctx, buf, w.out.len + 6, 1, &t),
                     XR_DECLINED);
    assert_non_null(strstr(env->ctx.errstr, "does not parse"));
    memcpy(buf, w.out.data, w.out.len);
    /* a hex digit of the last hash changed */
    buf[w.out.len - 10] = buf[w.out.len - 10] == '0' ? '1' : '0';
    assert_int_equal(xr_audit_recover(&env->ctx, buf, w.out.len, 1, &t),
                     XR_DECLINED);
    assert_non_null(strstr(env->ctx.errstr, "own hash"));

    /* restart: cut the torn line, continue with an open entry saying so;
       the whole verifies */
    memcpy(buf, w.out.data, w.out.len);
    memcpy(buf + w.out.len, "{\"seq\":11,\"prev\":\"ab", 20);
    assert_int_equal(xr_audit_recover(&env->ctx, buf, w.out.len + 20, 1, &t),
                     XR_OK);
    {
        wr_t               w2;
        xr_key_t          *pub;
        xr_audit_key_t     vk;
        xr_audit_summary_t sum;

        wr_init(&w2, env, t.alg, key);
        w2.head = t.head;
        w2.signed_upto = t.signed_upto;
        xr_buf_add(&w2.out, buf, t.keep);
        wr_open(&w2, XR_AUDIT_RESTART, "", t.torn);
        wr_rec(&w2, 6);
        wr_ckpt(&w2);

        assert_true(has(w2.out.data, w2.out.len,
                        "\"reason\":\"restart\",\"prev_file\":\"\","
                        "\"torn\":20,"));

        pub = load_key(env, "p256-test-only-pub.pem");
        assert_int_equal(xr_audit_key_init(&env->ctx, &vk, pub), XR_OK);
        log_from(&lg, w2.out.data, w2.out.len);
        expect_ok(env, &vk, &lg, &sum);
        assert_int_equal(sum.opens, 2);
        assert_int_equal(sum.signed_upto, 10);
        log_free(&lg);
        xr_key_free(pub);
    }

    test_free(buf);
    xr_key_free(key);
}


/* A chain may change its digest at an open entry, not elsewhere. */

static void
test_digest_change(void **state)
{
    xr_env_t   *env = *state;
    wr_t        w;
    log_t       lg;
    xr_key_t   *key, *pub;
    xr_audit_key_t  vk;

    key = load_key(env, "sm2-test-only-key.pem");
    pub = load_key(env, "sm2-test-only-pub.pem");
    assert_int_equal(xr_audit_key_init(&env->ctx, &vk, pub), XR_OK);

    wr_init(&w, env, XR_DIGEST_SM3, key);
    wr_log(&w, 3, 0, 1);
    w.alg = XR_DIGEST_SHA256;
    wr_open(&w, XR_AUDIT_RESTART, "", 0);
    wr_rec(&w, 4);
    wr_ckpt(&w);
    log_from(&lg, w.out.data, w.out.len);
    expect_ok(env, &vk, &lg, NULL);
    log_free(&lg);

    /* records hashed with the other digest than the chain's */
    wr_init(&w, env, XR_DIGEST_SM3, key);
    wr_log(&w, 2, 0, 0);
    w.alg = XR_DIGEST_SHA256;
    wr_rec(&w, 3);
    log_from(&lg, w.out.data, w.out.len);
    expect_fault(env, &vk, &lg, NULL, XR_AUDIT_EDITED, 4, 4);
    log_free(&lg);

    /* the first record of a chain that starts with records: found out */
    wr_init(&w, env, XR_DIGEST_SHA256, key);
    wr_log(&w, 3, 0, 1);
    log_from(&lg, w.out.data, w.out.len);
    log_delete(&lg, 0);
    expect_ok(env, &vk, &lg, NULL);
    log_free(&lg);

    xr_key_free(key);
    xr_key_free(pub);
}


/* Filter, export and CSV */

static void
test_filter_export(void **state)
{
    xr_env_t           *env = *state;
    wr_t                w;
    log_t               lg;
    xr_key_t           *key;
    xr_audit_filter_t   f;
    xr_audit_entry_t   *e;
    xr_buf_t            out;
    char               *scratch;
    size_t              i, count;
    int                 rc;
    xr_str_t            scope[2] = { xr_string("33"), xr_string("34") };

    key = load_key(env, "sm2-test-only-key.pem");
    wr_init(&w, env, XR_DIGEST_SM3, key);
    wr_log(&w, 20, 10, 0);
    log_from(&lg, w.out.data, w.out.len);

    scratch = test_malloc(XR_AUDIT_LINE_MAX);
    e = test_malloc(sizeof(xr_audit_entry_t));

#define COUNT(fmt)                                                           \
    do {                                                                     \
        xr_buf_init(&out, env->pool, 0);                                     \
        count = 0;                                                           \
        for (i = 0; i < lg.count; i++) {                                     \
            rc = xr_audit_export_line(&env->ctx, &f, fmt, lg.l[i], lg.n[i],  \
                                      scratch, e, &out);                     \
            assert_int_not_equal(rc, XR_ERROR);                              \
            count += rc == XR_OK;                                            \
        }                                                                    \
    } while (0)

    /* records only by default */
    xr_audit_filter_init(&f);
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 20);

    f.types = XR_AUDIT_REC | XR_AUDIT_CKPT | XR_AUDIT_OPEN;
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 23);
    /* JSONL is the lines as they are */
    assert_int_equal(out.len, w.out.len);
    assert_memory_equal(out.data, w.out.data, out.len);

    f.types = XR_AUDIT_CKPT;
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 2);

    /* record i: domain medical when i % 3 == 0, time T0 + (i-1) s,
       origin 310000 320100 330100 340000 110000 by i % 5, dest the next */
    xr_audit_filter_init(&f);
    f.domain = xr_str_from("medical");
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 6);
    f.txn = xr_str_from("card_status");
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 0);

    xr_audit_filter_init(&f);
    f.from_ms = T0 + 4000;              /* record 5 on */
    f.to_ms = T0 + 9000;                /* up to record 9 */
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 5);

    xr_audit_filter_init(&f);
    f.seq_from = 2;
    f.seq_to = 6;
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 5);

    xr_audit_filter_init(&f);
    f.origin = xr_str_from("32");
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 4);
    f.origin = xr_str_from("320100");
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 4);
    f.origin = xr_str_from("3201001");
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 0);

    xr_audit_filter_init(&f);
    f.dest = xr_str_from("11");
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 4);

    xr_audit_filter_init(&f);
    f.caller = xr_str_from("jiangsu.transit");  /* i odd and i % 3 == 1 */
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 4);

    xr_audit_filter_init(&f);
    f.outcome = xr_str_from("rejected");
    COUNT(XR_AUDIT_JSONL);
    assert_int_equal(count, 5);

    /* a regulator of Zhejiang and Anhui: origin or dest in 33 or 34 */
    xr_audit_filter_init(&f);
    f.scope = scope;
    f.nscope = 2;
    COUNT(XR_AUDIT_JSONL);
    /* i % 5 in {1, 2, 3} (origin 32/33/34 or dest 33/34): 2 and 3 by
       origin, 1 and 2 by dest: i % 5 in {1, 2, 3} */
    assert_int_equal(count, 12);

    /* CSV: records only, the row of record 3 exactly */
    xr_audit_filter_init(&f);
    f.seq_from = 4;
    f.seq_to = 4;
    f.types = XR_AUDIT_REC | XR_AUDIT_CKPT;
    COUNT(XR_AUDIT_CSV);
    assert_int_equal(count, 1);
    {
        char  hex[65], want[1024];

        assert_int_equal(xr_audit_parse(&env->ctx, lg.l[3], lg.n[3],
                                        scratch, e), XR_OK);
        xr_hex(e->hash, 32, hex);
        hex[64] = '\0';
        snprintf(want, sizeof(want),
                 "4,2024-12-29T14:00:02.000+08:00,gw-sh-1,jiangsu.medical,"
                 "medical,settle,MSG000003,340000,110000,dest_medical,"
                 "127.0.0.1:8081,failed,,13,8,"
                 "\"{\"\"total\"\":3001,\"\"fund_pay\"\":2100}\","
                 "\"{\"\"psn_no\"\":\"\"3101**********0003\"\"}\",%s\r\n",
                 hex);
        assert_int_equal(out.len, strlen(want));
        assert_memory_equal(out.data, want, out.len);
    }

    f.seq_from = 12;
    f.seq_to = 12;
    COUNT(XR_AUDIT_CSV);
    assert_int_equal(count, 0);                 /* a checkpoint */

    xr_buf_init(&out, env->pool, 0);
    assert_int_equal(xr_audit_csv_header(&out), XR_OK);
    assert_int_equal(out.len, strlen("seq,time,inst,caller,domain,txn,"
                                     "msg_id,origin,dest,upstream,peer,"
                                     "outcome,error,latency_ms,upstream_ms,"
                                     "amounts,ids,hash\r\n"));

    /* a null upstream time is an empty field; a quote in a value doubled */
    {
        xr_audit_entry_t   r;
        xr_audit_prep_t    p;
        xr_audit_head_t    head;
        char               line[4096];
        size_t             len;

        make_rec(env, 1, T0, &r);
        r.u.rec.msg_id = xr_str_from("a,\"b\"\nc");
        assert_int_equal(xr_audit_prepare(&env->ctx, XR_DIGEST_SM3, &r, &p),
                         XR_OK);
        memset(&head, 0, sizeof(head));
        assert_int_equal(xr_audit_seal(&p, &head, line, sizeof(line), &len),
                         XR_OK);
        xr_audit_filter_init(&f);
        xr_buf_init(&out, env->pool, 0);
        assert_int_equal(xr_audit_export_line(&env->ctx, &f, XR_AUDIT_CSV,
                                              line, len - 1, scratch, e,
                                              &out), XR_OK);
        assert_true(has(out.data, out.len, ",\"a,\"\"b\"\"\nc\","));
        assert_true(has(out.data, out.len,
                        ",rejected,XR-FORBIDDEN,11,,{},"));
    }

    /* a line that does not parse */
    xr_audit_filter_init(&f);
    xr_buf_init(&out, env->pool, 0);
    assert_int_equal(xr_audit_export_line(&env->ctx, &f, XR_AUDIT_JSONL,
                                          "{}", 2, scratch, e, &out),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_SYNTAX);
    xr_ctx_clear(&env->ctx);

#undef COUNT

    test_free(e);
    test_free(scratch);
    log_free(&lg);
    xr_key_free(key);
}


static void
test_time_parse(void **state)
{
    xr_env_t  *env = *state;
    int64_t    ms;
    int        tz;
    size_t     i;

    static const struct {
        const char  *text;
        int64_t      ms;
        int          tz;
    } good[] = {
        { "2024-12-29", T0 - 14 * 3600000, 480 },
        { "2024-12-29T14:00:00", T0, 480 },
        { "2024-12-29 14:00:00", T0, 480 },
        { "2024-12-29T14:00:00.123", T0 + 123, 480 },
        { "2024-12-29T06:00:00Z", T0, 0 },
        { "2024-12-29T14:00:00.123+08:00", T0 + 123, 480 },
        { "2024-12-29T01:00:00-05:00", T0, -300 },
    };
    static const char  *bad[] = {
        "", "2024", "2024-13-01", "2024-02-30", "2024-12-29T",
        "2024-12-29T25:00:00", "2024-12-29T14:00:00+8",
        "2024-12-29T14:00:00.1", "2024-12-29T14:00:00+08:00x",
        "29/12/2024",
    };

    for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
        if (xr_audit_time_parse(&env->ctx, good[i].text,
                                strlen(good[i].text), &ms, &tz) != XR_OK)
        {
            fail_msg("%s: %s", good[i].text, env->ctx.errstr);
        }
        assert_true(ms == good[i].ms);
        assert_int_equal(tz, good[i].tz);
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        if (xr_audit_time_parse(&env->ctx, bad[i], strlen(bad[i]), &ms, &tz)
            != XR_ERROR)
        {
            fail_msg("%s parses", bad[i]);
        }
        assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
        xr_ctx_clear(&env->ctx);
    }
}


static int
group_teardown(void **state)
{
    (void) state;

    xr_crypto_cleanup();
    return 0;
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        xr_env_test(test_line_exact),
        xr_env_test(test_escaping),
        xr_env_test(test_prepare_refusals),
        xr_env_test(test_parse_strict),
        xr_env_test(test_chain_sm2_sm3),
        xr_env_test(test_chain_ecdsa_sha256),
        xr_env_test(test_chain_mixed),
        xr_env_test(test_ckpt_sign_verify),
        xr_env_test(test_tamper_flip),
        xr_env_test(test_tamper_delete_insert),
        xr_env_test(test_tamper_reorder),
        xr_env_test(test_tamper_truncate),
        xr_env_test(test_tamper_checkpoints),
        xr_env_test(test_rotation),
        xr_env_test(test_recover),
        xr_env_test(test_digest_change),
        xr_env_test(test_filter_export),
        xr_env_test(test_time_parse),
    };

    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
