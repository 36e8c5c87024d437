/*
 * libFuzzer target for sealed messages (core/xr_seal.c): a sealed caller's
 * request is opened before anything else reads it, so any bytes may come.
 * A refusal must be XR_E_BAD_SIGNATURE or a JSON reading error; what
 * opens must be a JSON document the same profile reads, and must seal
 * again.  Every input gets its own pool, destroyed before returning.
 *
 * The profile is tianjin.medical with the seal switched on, the keys the
 * test-only SM2 pair.  Seeds: with XR_FUZZ_SEED_DIR set, the target seals
 * a few fixtures and writes them there (libFuzzer could not guess a valid
 * signature).
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr_adapter.h"
#include "xr_node.h"
#include "xr_profile.h"
#include "xr_seal.h"

#ifndef XR_SOURCE_DIR
#define XR_SOURCE_DIR "."
#endif


int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);


static xr_config_t     *xr_fz_cfg;
static xr_profile_t     xr_fz_profile;
static xr_seal_keys_t   xr_fz_keys;
static xr_pool_t      *xr_fz_pool;     /* the keys', for the process */


static char *
xr_fz_read(const char *path, size_t *len)
{
    FILE  *f;
    char  *buf;
    long   n;

    f = fopen(path, "rb");
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

    if (buf) {
        buf[n] = '\0';
        *len = (size_t) n;
    }

    return buf;
}


static xr_key_t *
xr_fz_key(xr_ctx_t *ctx, const char *name)
{
    char       path[512], *pem;
    size_t     len = 0;
    xr_key_t  *key;

    snprintf(path, sizeof(path), "%s/tests/fixtures/keys/%s", XR_SOURCE_DIR,
             name);
    pem = xr_fz_read(path, &len);
    if (pem == NULL) {
        return NULL;
    }

    key = xr_key_load(ctx, pem, len);
    free(pem);
    return key;
}


static void
xr_fz_seeds(const char *dir)
{
    static const char  *files[] = {
        "person_info.request.json", "settle.request.json",
        "settle.response.json", "register.response.json",
    };

    char        path[512], *plain;
    size_t      i, len = 0;
    FILE       *f;
    xr_ctx_t    ctx;
    xr_buf_t    out;
    xr_pool_t  *pool;

    for (i = 0; i < sizeof(files) / sizeof(files[0]); i++) {
        snprintf(path, sizeof(path),
                 "%s/tests/fixtures/messages/medical/tianjin.medical/%s",
                 XR_SOURCE_DIR, files[i]);
        plain = xr_fz_read(path, &len);
        if (plain == NULL) {
            continue;
        }

        pool = xr_pool_create(0);
        xr_ctx_init(&ctx, pool);
        xr_buf_init(&out, pool, 0);

        if (xr_seal_close(&ctx, &xr_fz_profile, &xr_fz_keys, plain, len,
                          &out) == XR_OK)
        {
            snprintf(path, sizeof(path), "%s/sealed-%s", dir, files[i]);
            f = fopen(path, "wb");
            if (f) {
                fwrite(out.data, 1, out.len, f);
                fclose(f);
            }
        }

        xr_pool_destroy(pool);
        free(plain);
    }
}


int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char          *seed_dir;
    xr_ctx_t             ctx;
    const xr_profile_t  *p;

    (void) argc;
    (void) argv;

    xr_fz_pool = xr_pool_create(0);
    xr_ctx_init(&ctx, xr_fz_pool);

    if (xr_config_load(&ctx, XR_SOURCE_DIR "/config", &xr_fz_cfg) != XR_OK) {
        fprintf(stderr, "fuzz_seal: %s\n", ctx.errstr);
        abort();
    }

    p = xr_config_profile(xr_fz_cfg, xr_str_from("tianjin.medical"));
    if (p == NULL) {
        abort();
    }

    xr_fz_profile = *p;
    xr_fz_profile.seal = xr_str_from("nhsa_mobile");
    xr_fz_profile.seal_member = xr_str_from("data");

    memcpy(xr_fz_keys.sm4_key, "0123456789abcdef", 16);
    xr_fz_keys.app_secret = xr_str_from("fuzz-app-secret-0001");
    xr_fz_keys.own = xr_fz_key(&ctx, "sm2-test-only-key.pem");
    xr_fz_keys.peer = xr_fz_key(&ctx, "sm2-test-only-pub.pem");

    if (xr_fz_keys.own == NULL || xr_fz_keys.peer == NULL) {
        fprintf(stderr, "fuzz_seal: test keys not found\n");
        abort();
    }

    seed_dir = getenv("XR_FUZZ_SEED_DIR");
    if (seed_dir) {
        xr_fz_seeds(seed_dir);
    }

    return 0;
}


int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xr_ctx_t    ctx;
    xr_buf_t    out, again;
    xr_node_t  *tree;
    xr_pool_t  *pool;

    pool = xr_pool_create(0);
    xr_ctx_init(&ctx, pool);
    xr_buf_init(&out, pool, 0);

    if (xr_seal_open(&ctx, &xr_fz_profile, &xr_fz_keys, (const char *) data,
                     size, &out) != XR_OK)
    {
        if (ctx.err == XR_E_NONE || ctx.err == XR_E_INTERNAL) {
            abort();
        }

    } else {
        xr_ctx_clear(&ctx);

        if (xr_fz_profile.adapter->decode(&ctx, &xr_fz_profile,
                                          XR_DIR_REQUEST, NULL, out.data,
                                          out.len, &tree) != XR_OK)
        {
            abort();
        }

        xr_buf_init(&again, pool, 0);
        if (xr_seal_close(&ctx, &xr_fz_profile, &xr_fz_keys, out.data,
                          out.len, &again) != XR_OK)
        {
            abort();
        }
    }

    xr_pool_destroy(pool);
    return 0;
}
