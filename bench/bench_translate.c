/*
 * Translation throughput: for each domain's money transaction (settle,
 * trip_upload) and a query, every caller profile's example message is
 * translated (decode + encode, a fresh pool per message as a request would
 * have) into every other profile of the domain for a fixed time.  Prints
 * messages/s and input MB/s per codec pair, one core.
 *
 *   bench_translate [seconds-per-pair] [domain]
 *   bench_translate loop FROM TO request|response TXN FILE N
 *
 * The loop form translates FILE N times (FROM -> TO, TXN the canonical
 * transaction of an answer, "-" for a request), as the gateway does,
 * answers with the request's envelope echoed; it prints the output of the
 * last one.  For instruction counts under callgrind.
 *
 * The line "TARGET national.medical -> <GBK XML profile>" is the figure the
 * issue sets at >= 50,000 translations/s per core (docs/performance.md).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xr_profile.h"
#include "xr_translate.h"
#include "xr_adapter.h"


static double
xr_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}


static char *
xr_read(const char *path, size_t *len)
{
    FILE  *f = fopen(path, "rb");
    char  *buf;
    long   n;

    if (f == NULL) {
        return NULL;
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc(n + 1);
    if (buf && fread(buf, 1, n, f) != (size_t) n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    *len = (size_t) n;
    return buf;
}


static const char *
xr_ext(const xr_profile_t *p)
{
    if (xr_str_eq(p->codec, "json")) {
        return "json";
    }
    if (xr_str_eq(p->codec, "xml")) {
        return "xml";
    }
    return "bin";
}


/* One pair: translations per second over `secs`; -1 when it fails. */
static double
xr_bench_pair(const xr_profile_t *from, const xr_profile_t *to,
    xr_dir_e dir, const char *txn, const char *data, size_t len, double secs,
    size_t *out_len)
{
    xr_pool_t  *pool;
    xr_ctx_t    ctx;
    xr_msg_t    msg;
    xr_buf_t    out;
    double      start, end;
    long        n = 0, i;

    start = xr_now();
    end = start + secs;

    do {
        for (i = 0; i < 256; i++) {
            pool = xr_pool_create(8192);
            xr_ctx_init(&ctx, pool);
            xr_buf_init(&out, pool, 0);
            if (xr_decode(&ctx, from, dir, xr_str_from(txn), data, len, &msg)
                != XR_OK
                || xr_encode(&ctx, to, &msg, &out) != XR_OK)
            {
                fprintf(stderr, "%.*s -> %.*s: %s: %s\n",
                        (int) from->name.len, from->name.data,
                        (int) to->name.len, to->name.data,
                        xr_error_info(ctx.err)->name, ctx.errstr);
                xr_pool_destroy(pool);
                return -1;
            }
            *out_len = out.len;
            xr_pool_destroy(pool);
        }
        n += 256;
    } while (xr_now() < end);

    return n / (xr_now() - start);
}


/* The loop form: see the top of the file. */
static int
xr_bench_loop(xr_config_t *cfg, char **argv)
{
    const xr_profile_t  *from, *to;
    xr_pool_t           *pool;
    xr_ctx_t             ctx;
    xr_msg_t             msg;
    xr_buf_t             out;
    xr_dir_e             dir;
    xr_str_t             txn = xr_null_string;
    char                *data;
    size_t               len;
    long                 n, i;

    from = xr_config_profile(cfg, xr_str_from(argv[2]));
    to = xr_config_profile(cfg, xr_str_from(argv[3]));
    dir = strcmp(argv[4], "response") == 0 ? XR_DIR_RESPONSE
                                           : XR_DIR_REQUEST;
    if (strcmp(argv[5], "-") != 0) {
        txn = xr_str_from(argv[5]);
    }
    data = xr_read(argv[6], &len);
    n = atol(argv[7]);
    if (from == NULL || to == NULL || data == NULL) {
        fprintf(stderr, "unknown profile or no file\n");
        return 1;
    }

    for (i = 0; i < n; i++) {
        pool = xr_pool_create(8192);
        xr_ctx_init(&ctx, pool);
        xr_buf_init(&out, pool, 0);
        xr_msg_init(&msg, dir);
        if (xr_decode(&ctx, from, dir, txn, data, len, &msg) != XR_OK) {
            goto failed;
        }
        if (dir == XR_DIR_RESPONSE && msg.ref_msg_id.len == 0) {
            /* as the gateway does */
            msg.ref_msg_id = msg.msg_id;
        }
        if (xr_encode(&ctx, to, &msg, &out) != XR_OK) {
            goto failed;
        }
        if (i == n - 1) {
            fwrite(out.data, 1, out.len, stdout);
        }
        xr_pool_destroy(pool);
    }
    free(data);
    return 0;

failed:
    fprintf(stderr, "%s: %s\n", xr_error_info(ctx.err)->name, ctx.errstr);
    xr_pool_destroy(pool);
    free(data);
    return 1;
}


int
main(int argc, char **argv)
{
    static const char  *txns[] = {
        "medical", "settle", "transit", "trip_upload", "gov", "card_loss",
        NULL
    };
    double               secs = argc > 1 ? atof(argv[1]) : 0.3, rate;
    const char          *only = argc > 2 ? argv[2] : NULL;
    xr_pool_t           *cpool = xr_pool_create(0);
    xr_ctx_t             ctx;
    xr_config_t         *cfg;
    const xr_profile_t  *p, *q;
    char                 path[1024], *data;
    size_t               i, j, k, len, out_len = 0;
    double               total = 0, target = -1;
    long                 pairs = 0;
    int                  rc;

    xr_ctx_init(&ctx, cpool);
    if (xr_config_load(&ctx, XR_SOURCE_DIR "/config", &cfg) != XR_OK) {
        fprintf(stderr, "config: %s\n", ctx.errstr);
        return 1;
    }

    if (argc == 8 && strcmp(argv[1], "loop") == 0) {
        rc = xr_bench_loop(cfg, argv);
        xr_config_free(cfg);
        xr_pool_destroy(cpool);
        xr_adapters_cleanup();
        return rc;
    }

    printf("%-22s %-22s %-12s %6s %6s %12s %9s\n", "from", "to", "codecs",
           "in B", "out B", "msgs/s", "in MB/s");

    for (k = 0; txns[k]; k += 2) {
        if (only && strcmp(only, txns[k]) != 0) {
            continue;
        }
        for (i = 0; i < cfg->nprofiles; i++) {
            p = &cfg->profiles[i];
            if (!xr_str_eq(p->domain, txns[k])) {
                continue;
            }
            snprintf(path, sizeof(path),
                     XR_SOURCE_DIR "/tests/fixtures/messages/%s/%.*s/"
                     "%s.request.%s", txns[k], (int) p->name.len,
                     p->name.data, txns[k + 1], xr_ext(p));
            data = xr_read(path, &len);
            if (data == NULL) {
                fprintf(stderr, "no %s\n", path);
                continue;
            }
            for (j = 0; j < cfg->nprofiles; j++) {
                q = &cfg->profiles[j];
                if (q == p || !xr_str_eq(q->domain, txns[k])) {
                    continue;
                }
                rate = xr_bench_pair(p, q, XR_DIR_REQUEST, "", data, len,
                                     secs, &out_len);
                if (rate < 0) {
                    continue;
                }
                printf("%-22.*s %-22.*s %-5s>%-6s %6zu %6zu %12.0f %9.1f\n",
                       (int) p->name.len, p->name.data, (int) q->name.len,
                       q->name.data, xr_ext(p), xr_ext(q), len, out_len,
                       rate, rate * len / 1e6);
                total += rate;
                pairs++;
            }
            free(data);
        }
    }

    if (pairs) {
        printf("mean over %ld pairs: %.0f translations/s\n", pairs,
               total / pairs);
    }

    /*
     * The target: a ~2 KB NHSA settlement answer (setlinfo and eleven
     * setldetail fund items) written as Anhui's GBK XML.
     */
    if (only == NULL || strcmp(only, "target") == 0) {
        p = xr_config_profile(cfg, xr_str_from("national.medical"));
        q = xr_config_profile(cfg, xr_str_from("anhui.medical"));
        data = xr_read(XR_SOURCE_DIR
                       "/bench/data/national.medical.settle.response.json",
                       &len);
        if (p && q && data) {
            target = xr_bench_pair(p, q, XR_DIR_RESPONSE, "settle", data,
                                   len, secs < 1 ? 2.0 : secs, &out_len);
            printf("TARGET national.medical -> anhui.medical (GBK XML), "
                   "settle answer %zu B -> %zu B: %.0f translations/s, "
                   "%.1f MB/s (target >= 50000): %s\n", len, out_len,
                   target, target * len / 1e6,
                   target >= 50000 ? "met" : "NOT MET");
        }
        free(data);
    }
    xr_config_free(cfg);
    xr_pool_destroy(cpool);
    xr_adapters_cleanup();
    return 0;
}
