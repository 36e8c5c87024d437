/*
 * libFuzzer target for stored records (core/xr_record.c): the bytes come
 * back from Redis, which anyone with access could have written.  Arbitrary
 * bytes are unpacked; a refusal must be XR_E_INTERNAL with a "stored
 * record: " text.  Whatever unpacks must pack again to the very same bytes
 * (a record is the only encoding of its message) and unpack again to an
 * equal message; its fingerprint and the canonical packing must not fail.
 * Every input gets its own pool, destroyed before returning.
 *
 * Seeds: records are binary and no fixture holds one, so the target writes
 * its own: with XR_FUZZ_SEED_DIR set (tools/run-fuzz.sh sets it to the
 * corpus directory) LLVMFuzzerInitialize() decodes a few fixture messages
 * with the real configuration and writes their records there, before
 * libFuzzer reads the corpus.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr_msg.h"
#include "xr_policy.h"
#include "xr_profile.h"
#include "xr_record.h"
#include "xr_translate.h"

#ifndef XR_SOURCE_DIR
#define XR_SOURCE_DIR "."
#endif


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static const struct {
    const char  *profile;
    const char  *file;
    const char  *txn;       /* answers: the request's transaction */
} xr_fz_seeds[] = {
    { "national.medical", "medical/national.medical/person_info.request.json",
      NULL },
    { "national.medical",
      "medical/national.medical/person_info.response.json", "person_info" },
    { "national.medical", "medical/national.medical/settle.request.json",
      NULL },
    { "national.medical", "medical/national.medical/settle.response.json",
      "settle" },
    { "national.medical",
      "medical/national.medical/settle_reversal.response.json",
      "settle_reversal" },
    { "shanghai.medical", "medical/shanghai.medical/pre_settle.response.json",
      "pre_settle" },
    { "beijing.transit", "transit/beijing.transit/trip_upload.request.bin",
      NULL },
    { "jiangsu.transit",
      "transit/jiangsu.transit/card_status.response.xml", "card_status" },
    { "zhejiang.transit",
      "transit/zhejiang.transit/clearing_summary.response.json",
      "clearing_summary" },
};


static int
xr_fz_str_same(xr_str_t a, xr_str_t b)
{
    return (a.data == NULL) == (b.data == NULL) && xr_str_cmp(a, b) == 0;
}


static int
xr_fz_msg_same(const xr_msg_t *a, const xr_msg_t *b)
{
    xr_node_t  ta, tb;

    if (a->dir != b->dir || a->ok != b->ok || a->has_time != b->has_time
        || !xr_fz_str_same(a->domain, b->domain)
        || !xr_fz_str_same(a->txn, b->txn)
        || !xr_fz_str_same(a->msg_id, b->msg_id)
        || !xr_fz_str_same(a->origin, b->origin)
        || !xr_fz_str_same(a->dest, b->dest)
        || !xr_fz_str_same(a->caller, b->caller)
        || !xr_fz_str_same(a->version, b->version)
        || !xr_fz_str_same(a->err_code, b->err_code)
        || !xr_fz_str_same(a->err_msg, b->err_msg)
        || !xr_fz_str_same(a->ref_msg_id, b->ref_msg_id))
    {
        return 0;
    }
    if (a->has_time) {
        memset(&ta, 0, sizeof(ta));
        memset(&tb, 0, sizeof(tb));
        ta.type = XR_NODE_TIME;
        ta.u.t = a->time;
        tb.type = XR_NODE_TIME;
        tb.u.t = b->time;
        if (!xr_node_equal(&ta, &tb)) {
            return 0;
        }
    }
    return xr_node_equal(a->body, b->body);
}


static void
xr_fz_write_seeds(const char *dir)
{
    xr_pool_t           *pool;
    xr_ctx_t             ctx;
    xr_config_t         *cfg;
    const xr_profile_t  *p;
    xr_msg_t             msg;
    xr_buf_t             rec;
    FILE                *f;
    char                 path[1024], *data;
    const char          *base;
    long                 n;
    size_t               i, len;

    pool = xr_pool_create(0);
    xr_ctx_init(&ctx, pool);
    if (xr_config_load(&ctx, XR_SOURCE_DIR "/config", &cfg) != XR_OK) {
        fprintf(stderr, "fuzz_record: config: %s\n", ctx.errstr);
        abort();
    }

    for (i = 0; i < sizeof(xr_fz_seeds) / sizeof(xr_fz_seeds[0]); i++) {
        p = xr_config_profile(cfg, xr_str_from(xr_fz_seeds[i].profile));
        snprintf(path, sizeof(path),
                 XR_SOURCE_DIR "/tests/fixtures/messages/%s",
                 xr_fz_seeds[i].file);
        f = fopen(path, "rb");
        if (p == NULL || f == NULL) {
            fprintf(stderr, "fuzz_record: no seed %s\n", path);
            abort();
        }
        fseek(f, 0, SEEK_END);
        n = ftell(f);
        fseek(f, 0, SEEK_SET);
        data = malloc(n > 0 ? (size_t) n : 1);
        len = fread(data, 1, (size_t) n, f);
        fclose(f);

        xr_ctx_clear(&ctx);
        xr_buf_init(&rec, pool, 0);
        if (xr_decode(&ctx, p,
                      xr_fz_seeds[i].txn ? XR_DIR_RESPONSE : XR_DIR_REQUEST,
                      xr_str_from(xr_fz_seeds[i].txn ? xr_fz_seeds[i].txn
                                                     : ""),
                      data, len, &msg) != XR_OK
            || xr_record_pack(&ctx, &msg, &rec) != XR_OK)
        {
            fprintf(stderr, "fuzz_record: %s: %s\n", path, ctx.errstr);
            abort();
        }
        free(data);

        base = strrchr(xr_fz_seeds[i].file, '/');
        snprintf(path, sizeof(path), "%s/seed-%s-%s.record", dir,
                 xr_fz_seeds[i].profile, base + 1);
        f = fopen(path, "wb");
        if (f == NULL) {
            fprintf(stderr, "fuzz_record: cannot write %s\n", path);
            abort();
        }
        fwrite(rec.data, 1, rec.len, f);
        fclose(f);
    }

    xr_config_free(cfg);
    xr_pool_destroy(pool);
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char  *dir;

    (void) argc;
    (void) argv;

    dir = getenv("XR_FUZZ_SEED_DIR");
    if (dir && *dir) {
        xr_fz_write_seeds(dir);
    }
    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xr_pool_t  *pool;
    xr_ctx_t    ctx;
    xr_msg_t    msg, back;
    xr_buf_t    rec, canon;
    char        fp[64];

    pool = xr_pool_create(0);
    xr_ctx_init(&ctx, pool);

    if (xr_record_unpack(&ctx, (const char *) data, size, &msg) != XR_OK) {
        if (ctx.err != XR_E_INTERNAL
            || strncmp(ctx.errstr, "stored record: ", 15) != 0)
        {
            abort();
        }
        xr_pool_destroy(pool);
        return 0;
    }

    /* the one encoding of its message */
    xr_buf_init(&rec, pool, 0);
    if (xr_record_pack(&ctx, &msg, &rec) != XR_OK
        || rec.len != size
        || (size && memcmp(rec.data, data, size) != 0))
    {
        abort();
    }

    if (xr_record_unpack(&ctx, rec.data, rec.len, &back) != XR_OK
        || !xr_fz_msg_same(&msg, &back))
    {
        abort();
    }

    /* the fingerprint's packing reads every message a record can hold */
    xr_buf_init(&canon, pool, 0);
    if (xr_record_pack_canonical(&ctx, &msg, &canon) != XR_OK
        || xr_policy_fingerprint(&ctx, &msg, fp) != XR_OK)
    {
        abort();
    }

    xr_pool_destroy(pool);
    return 0;
}
