/*
 * libFuzzer target for audit logs (core/xr_audit.c): regulators verify
 * and export files anyone could have edited, and a restarting gateway reads
 * the tail of a file a crash left.  The input is a log, split into lines:
 *
 *  - each line is parsed; one that parses is written again from its
 *    entry and must give its content byte for byte (one text per entry),
 *    exports as itself in JSON Lines, and its hash is computed;
 *  - each line goes through the export filter to CSV;
 *  - all lines are fed to a verifier holding the SM2 test key, which must
 *    end with a verdict, never a crash;
 *  - the whole input is read as a file's tail, whole and not.
 *
 * Refusals must be XR_E_SYNTAX "audit line: ..." (parse, export).  Each
 * input gets its own pool, destroyed before returning.
 *
 * Seeds: the *.audit logs of tests/fixtures/audit (tools/run-fuzz.sh).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr_audit.h"
#include "xr_crypto.h"

#ifndef XR_SOURCE_DIR
#define XR_SOURCE_DIR "."
#endif


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static xr_pool_t       *xr_fz_key_pool;
static xr_key_t        *xr_fz_key;
static xr_audit_key_t   xr_fz_akey;
static char            *xr_fz_scratch;


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    FILE      *f;
    char       pem[4096];
    size_t     n;
    xr_ctx_t   ctx;

    (void) argc;
    (void) argv;

    f = fopen(XR_SOURCE_DIR "/tests/fixtures/keys/sm2-test-only-pub.pem",
              "rb");
    if (f == NULL) {
        abort();
    }
    n = fread(pem, 1, sizeof(pem), f);
    fclose(f);

    xr_fz_key_pool = xr_pool_create(0);
    xr_ctx_init(&ctx, xr_fz_key_pool);
    xr_fz_key = xr_key_load(&ctx, pem, n);
    if (xr_fz_key == NULL
        || xr_audit_key_init(&ctx, &xr_fz_akey, xr_fz_key) != XR_OK)
    {
        abort();
    }

    xr_fz_scratch = malloc(XR_AUDIT_LINE_MAX);
    if (xr_fz_scratch == NULL) {
        abort();
    }
    return 0;
}


static void
xr_fz_refused(const xr_ctx_t *ctx)
{
    if (ctx->err != XR_E_SYNTAX
        || strncmp(ctx->errstr, "audit line: ", 12) != 0)
    {
        abort();
    }
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    int                   rc;
    size_t                s, i;
    uint64_t              lineno, seq;
    xr_ctx_t              ctx;
    xr_buf_t              out;
    xr_pool_t            *pool;
    xr_audit_tail_t       tail;
    xr_audit_prep_t       prep;
    xr_digest_e           alg;
    xr_audit_entry_t     *e;
    xr_audit_filter_t     f;
    xr_audit_verifier_t  *v;
    const char           *text, *line;
    unsigned char         h[XR_AUDIT_HASH_LEN];
    xr_str_t              scope = xr_string("32");

    text = (const char *) data;
    pool = xr_pool_create(0);
    xr_ctx_init(&ctx, pool);

    e = xr_palloc(pool, sizeof(xr_audit_entry_t));
    v = xr_audit_verifier_create(&ctx, &xr_fz_akey, NULL, 0);
    if (e == NULL || v == NULL) {
        abort();
    }

    xr_audit_filter_init(&f);
    f.types = XR_AUDIT_REC | XR_AUDIT_CKPT | XR_AUDIT_OPEN;
    f.scope = &scope;
    f.nscope = 1;

    rc = XR_OK;
    lineno = 0;

    for (s = 0; s < size; s = i + 1) {
        for (i = s; i < size && text[i] != '\n'; i++) {
            /* the line's end */
        }
        line = text + s;
        lineno++;

        /* one text per entry */
        if (xr_audit_parse(&ctx, line, i - s, xr_fz_scratch, e) == XR_OK) {
            if (xr_audit_line_seq(line, i - s, &seq) != XR_OK
                || seq != e->seq)
            {
                abort();
            }
            if (xr_audit_prepare(&ctx, e->type == XR_AUDIT_CKPT
                                       ? e->u.ckpt.hash_alg
                                       : e->type == XR_AUDIT_OPEN
                                       ? e->u.open.hash_alg
                                       : XR_DIGEST_SM3, e, &prep) != XR_OK
                || prep.content.len != e->content.len
                || memcmp(prep.content.data, e->content.data,
                          prep.content.len) != 0)
            {
                abort();
            }
            if (xr_audit_chain_hash(XR_DIGEST_SHA256, e, h) != XR_OK) {
                abort();
            }
            (void) xr_audit_entry_check(e, 0, &alg);

            xr_buf_init(&out, pool, 0);
            if (xr_audit_export_line(&ctx, &f, XR_AUDIT_JSONL, line, i - s,
                                     xr_fz_scratch, e, &out) == XR_OK
                && (out.len != i - s + 1
                    || memcmp(out.data, line, i - s) != 0))
            {
                abort();
            }

        } else {
            xr_fz_refused(&ctx);
            xr_ctx_clear(&ctx);
        }

        xr_buf_init(&out, pool, 0);
        if (xr_audit_export_line(&ctx, &f, XR_AUDIT_CSV, line, i - s,
                                 xr_fz_scratch, e, &out) == XR_ERROR)
        {
            xr_fz_refused(&ctx);
            xr_ctx_clear(&ctx);
        }

        if (rc == XR_OK) {
            rc = xr_audit_verifier_line(v, line, i - s, i < size, 0,
                                        lineno);
            if (rc == XR_ERROR) {
                abort();
            }
        }
    }

    if (rc == XR_OK) {
        rc = xr_audit_verifier_end(v);
    }
    if (rc == XR_DECLINED
        && xr_audit_verifier_report(v)->fault == XR_AUDIT_FAULT_NONE)
    {
        abort();
    }
    xr_ctx_clear(&ctx);

    /* a file's tail, read whole or from a window */
    if (xr_audit_recover(&ctx, text, size, 1, &tail) == XR_OK
        && (tail.keep + tail.torn != size
            || (tail.keep && text[tail.keep - 1] != '\n')))
    {
        abort();
    }
    xr_ctx_clear(&ctx);
    if (xr_audit_recover(&ctx, text, size, 0, &tail) == XR_ERROR) {
        abort();
    }

    xr_pool_destroy(pool);
    return 0;
}
