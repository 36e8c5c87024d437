/*
 * The audit trail's costs, one core: what a writer does outside its lock
 * (xr_audit_prepare() of a typical record), what it does under it
 * (xr_audit_seal()), a checkpoint's signature, and how fast a regulator's
 * verify and export read a log.  Prints nanoseconds per operation.
 *
 *   bench_audit [seconds-per-figure]
 *
 * The seal figure is how long the writer's lock is held per record, not
 * counting the copy of the line to its destination; the digest figure is
 * what hashing a whole line would cost there instead (the chain hashes
 * the content outside the lock and only 72 bytes inside it).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xr_audit.h"
#include "xr_crypto.h"


static double
xr_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static xr_key_t *
xr_bench_key(xr_ctx_t *ctx, const char *file)
{
    FILE      *f;
    char       path[512], pem[4096];
    size_t     n;
    xr_key_t  *key;

    snprintf(path, sizeof(path), XR_SOURCE_DIR "/tests/fixtures/keys/%s",
             file);
    f = fopen(path, "rb");
    if (f == NULL) {
        fprintf(stderr, "cannot read %s\n", path);
        exit(1);
    }
    n = fread(pem, 1, sizeof(pem), f);
    fclose(f);

    key = xr_key_load(ctx, pem, n);
    if (key == NULL) {
        fprintf(stderr, "%s: %s\n", file, ctx->errstr);
        exit(1);
    }
    return key;
}


/* A settlement as the gateway would record it. */
static void
xr_bench_rec(xr_audit_entry_t *e, int64_t now)
{
    static xr_audit_amount_t  a[] = {
        { xr_string("total"), 45863 }, { xr_string("fund_pay"), 32104 },
        { xr_string("acct_pay"), 10000 }, { xr_string("cash_pay"), 3759 },
    };
    static xr_audit_ident_t   id[] = {
        { xr_string("psn_no"), xr_string("3101**********1234") },
        { xr_string("certno"), xr_string("310***********0012") },
        { xr_string("psn_name"), xr_string("\xe5\xbc\xa0*") },
    };

    memset(e, 0, sizeof(xr_audit_entry_t));
    e->type = XR_AUDIT_REC;
    e->time_ms = now;
    e->tz_min = 480;
    e->inst = xr_str_from("gw-sh-1");
    e->u.rec.caller = xr_str_from("shanghai.medical");
    e->u.rec.domain = xr_str_from("medical");
    e->u.rec.txn = xr_str_from("settle");
    e->u.rec.msg_id = xr_str_from("H31000020241229140000012345");
    e->u.rec.origin = xr_str_from("310000");
    e->u.rec.dest = xr_str_from("320100");
    e->u.rec.upstream = xr_str_from("jiangsu_medical");
    e->u.rec.peer = xr_str_from("10.0.0.5:443");
    e->u.rec.outcome = xr_str_from("ok");
    e->u.rec.latency_ms = 37;
    e->u.rec.upstream_ms = 30;
    e->u.rec.amounts = a;
    e->u.rec.namounts = 4;
    e->u.rec.ids = id;
    e->u.rec.nids = 3;
}


int
main(int argc, char **argv)
{
    int                   alg, k;
    char                 *line, *log, *scratch;
    double                secs, start, end, t;
    size_t                len, loglen, n, i, s;
    xr_ctx_t              ctx;
    xr_buf_t              out;
    xr_pool_t            *pool, *rp;
    xr_key_t             *keys[2];
    xr_audit_key_t        ak[2];
    xr_audit_head_t       head;
    xr_audit_prep_t       prep;
    xr_audit_entry_t      e, *pe;
    xr_audit_filter_t     f;
    xr_audit_verifier_t  *v;

    secs = argc > 1 ? atof(argv[1]) : 1.0;

    pool = xr_pool_create(0);
    xr_ctx_init(&ctx, pool);
    keys[0] = xr_bench_key(&ctx, "sm2-test-only-key.pem");
    keys[1] = xr_bench_key(&ctx, "p256-test-only-key.pem");
    for (k = 0; k < 2; k++) {
        if (xr_audit_key_init(&ctx, &ak[k], keys[k]) != XR_OK) {
            return 1;
        }
    }

    line = malloc(XR_AUDIT_LINE_MAX);
    scratch = malloc(XR_AUDIT_LINE_MAX);
    pe = malloc(sizeof(xr_audit_entry_t));

    xr_bench_rec(&e, 1735452000000);

    for (alg = 0; alg < XR_DIGEST_LAST; alg++) {
        /* outside the lock: a fresh pool per record, as per request */
        n = 0;
        start = xr_now();
        end = start + secs;
        do {
            for (i = 0; i < 256; i++) {
                rp = xr_pool_create(0);
                xr_ctx_init(&ctx, rp);
                if (xr_audit_prepare(&ctx, alg, &e, &prep) != XR_OK) {
                    return 1;
                }
                xr_pool_destroy(rp);
            }
            n += 256;
        } while (xr_now() < end);
        t = xr_now() - start;
        printf("prepare %-6s %7.0f ns/record (%zu-byte content)\n",
               xr_audit_hash_name(alg), t / n * 1e9, prep.content.len);

        /* under the lock */
        xr_ctx_init(&ctx, pool);
        if (xr_audit_prepare(&ctx, alg, &e, &prep) != XR_OK) {
            return 1;
        }
        memset(&head, 0, sizeof(head));
        n = 0;
        start = xr_now();
        end = start + secs;
        do {
            for (i = 0; i < 1024; i++) {
                if (xr_audit_seal(&prep, &head, line, XR_AUDIT_LINE_MAX,
                                  &len) != XR_OK)
                {
                    return 1;
                }
            }
            n += 1024;
        } while (xr_now() < end);
        t = xr_now() - start;
        printf("seal    %-6s %7.0f ns/record (%zu-byte line): the lock\n",
               xr_audit_hash_name(alg), t / n * 1e9, len);

        /* what the lock would hold if the whole line were hashed in it */
        n = 0;
        start = xr_now();
        end = start + secs;
        do {
            unsigned char  h[XR_DIGEST_MAX_LEN];
            size_t         hl;

            for (i = 0; i < 1024; i++) {
                xr_digest(alg, line, len, h, &hl);
            }
            n += 1024;
        } while (xr_now() < end);
        t = xr_now() - start;
        printf("digest  %-6s %7.0f ns/line: a whole line, for comparison\n",
               xr_audit_hash_name(alg), t / n * 1e9);
    }

    /* checkpoints: signing */
    for (k = 0; k < 2; k++) {
        xr_audit_entry_t  c;

        n = 0;
        start = xr_now();
        end = start + secs;
        do {
            rp = xr_pool_create(0);
            xr_ctx_init(&ctx, rp);
            memset(&c, 0, sizeof(c));
            c.type = XR_AUDIT_CKPT;
            c.time_ms = 1735452000000;
            c.tz_min = 480;
            c.inst = xr_str_from("gw-sh-1");
            c.u.ckpt.hash_alg = XR_DIGEST_SM3;
            c.u.ckpt.first = 1;
            c.u.ckpt.last = 1000;
            if (xr_audit_ckpt_sign(&ctx, &ak[k], &c) != XR_OK) {
                return 1;
            }
            xr_pool_destroy(rp);
            n++;
        } while (xr_now() < end);
        t = xr_now() - start;
        printf("sign    %-17s %7.0f ns/checkpoint\n",
               xr_audit_sig_name(ak[k].alg), t / n * 1e9);
    }

    /* a log of 100,000 records, a checkpoint every 1,000: verify, export */
    rp = xr_pool_create(0);
    xr_ctx_init(&ctx, rp);
    xr_buf_init(&out, rp, 0);
    memset(&head, 0, sizeof(head));
    for (i = 1; i <= 100000; i++) {
        xr_pool_t  *lp = xr_pool_create(0);
        xr_ctx_t    lc;

        xr_ctx_init(&lc, lp);
        if (i % 1000 == 0) {
            xr_audit_entry_t  c;

            memset(&c, 0, sizeof(c));
            c.type = XR_AUDIT_CKPT;
            c.time_ms = 1735452000000;
            c.inst = xr_str_from("gw-sh-1");
            c.u.ckpt.hash_alg = XR_DIGEST_SM3;
            c.u.ckpt.first = head.seq > 1000 ? head.seq - 1000 + 1 : 1;
            c.u.ckpt.last = head.seq;
            memcpy(c.u.ckpt.head, head.hash, XR_AUDIT_HASH_LEN);
            if (xr_audit_ckpt_sign(&lc, &ak[0], &c) != XR_OK
                || xr_audit_prepare(&lc, XR_DIGEST_SM3, &c, &prep) != XR_OK)
            {
                return 1;
            }
        } else if (xr_audit_prepare(&lc, XR_DIGEST_SM3, &e, &prep) != XR_OK) {
            return 1;
        }
        xr_audit_seal(&prep, &head, line, XR_AUDIT_LINE_MAX, &len);
        xr_buf_add(&out, line, len);
        xr_pool_destroy(lp);
    }
    log = out.data;
    loglen = out.len;

    xr_ctx_init(&ctx, rp);
    v = xr_audit_verifier_create(&ctx, &ak[0], NULL, 0);
    start = xr_now();
    for (s = 0, n = 0; s < loglen; s = i + 1, n++) {
        for (i = s; log[i] != '\n'; i++) {
            /* the line's end */
        }
        if (xr_audit_verifier_line(v, log + s, i - s, 1, 0, n + 1)
            != XR_OK)
        {
            fprintf(stderr, "verify: %s\n", xr_audit_verifier_report(v)->text);
            return 1;
        }
    }
    if (xr_audit_verifier_end(v) != XR_OK) {
        return 1;
    }
    t = xr_now() - start;
    printf("verify  sm3 + sm2-sm3 %7.0f ns/line, %.0f MB/s (%zu lines)\n",
           t / n * 1e9, loglen / t / 1e6, n);

    xr_audit_filter_init(&f);
    f.origin = xr_str_from("31");
    xr_buf_init(&out, rp, 0);
    start = xr_now();
    for (s = 0, n = 0; s < loglen; s = i + 1, n++) {
        for (i = s; log[i] != '\n'; i++) {
            /* the line's end */
        }
        out.len = 0;
        if (xr_audit_export_line(&ctx, &f, XR_AUDIT_JSONL, log + s, i - s,
                                 scratch, pe, &out) == XR_ERROR)
        {
            return 1;
        }
    }
    t = xr_now() - start;
    printf("export  filter        %7.0f ns/line, %.0f MB/s\n",
           t / n * 1e9, loglen / t / 1e6);

    xr_pool_destroy(rp);
    xr_key_free(keys[0]);
    xr_key_free(keys[1]);
    xr_pool_destroy(pool);
    xr_crypto_cleanup();
    free(line);
    free(scratch);
    free(pe);
    return 0;
}
