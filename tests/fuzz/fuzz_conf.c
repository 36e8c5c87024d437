/*
 * libFuzzer target for the profile syntax and loader: operators write
 * profiles, and `nginx -t` / `xregion check` read them.  Each input is
 * written as profiles/alpha.demo.conf beside the unit tests' small "demo"
 * schema (tests/fixtures/mini) and the whole configuration is loaded: it
 * must load or fail with XR_E_CONFIG and a "file:line: " message, never
 * crash or leak.  Whatever loads must translate nothing wrong: a loaded
 * profile is looked up and its transactions walked.
 *
 * Seeds: every *.conf under tests/fixtures (tools/run-fuzz.sh).
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xr_profile.h"
#include "xr_adapter.h"

#ifndef XR_SOURCE_DIR
#define XR_SOURCE_DIR "."
#endif


static char  xr_fz_dir[64];


static void
xr_fz_copy(const char *from, const char *to)
{
    FILE    *in, *out;
    char     buf[8192];
    size_t   n;

    in = fopen(from, "rb");
    out = fopen(to, "wb");
    if (in == NULL || out == NULL) {
        abort();
    }
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0) {
        fwrite(buf, 1, n, out);
    }
    fclose(in);
    fclose(out);
}


static void
xr_fz_cleanup(void)
{
    char  cmd[128];

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", xr_fz_dir);
    if (system(cmd) != 0) {
        /* nothing more to do at exit */
    }
}


static void
xr_fz_setup(void)
{
    char  path[256];

    snprintf(xr_fz_dir, sizeof(xr_fz_dir), "/tmp/xr-fuzz-conf-%d",
             (int) getpid());
    mkdir(xr_fz_dir, 0700);
    snprintf(path, sizeof(path), "%s/schema", xr_fz_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/tables", xr_fz_dir);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/profiles", xr_fz_dir);
    mkdir(path, 0700);

    snprintf(path, sizeof(path), "%s/regions.conf", xr_fz_dir);
    xr_fz_copy(XR_SOURCE_DIR "/tests/fixtures/mini/regions.conf", path);
    snprintf(path, sizeof(path), "%s/schema/demo.conf", xr_fz_dir);
    xr_fz_copy(XR_SOURCE_DIR "/tests/fixtures/mini/schema/demo.conf", path);
    snprintf(path, sizeof(path), "%s/tables/city.conf", xr_fz_dir);
    xr_fz_copy(XR_SOURCE_DIR "/tests/fixtures/mini/tables/city.conf", path);

    atexit(xr_fz_cleanup);
}


int
LLVMFuzzerTestOneInput(const unsigned char *data, size_t size)
{
    static int           ready;
    char                 path[256];
    FILE                *f;
    xr_pool_t           *pool;
    xr_ctx_t             ctx;
    xr_config_t         *cfg;
    const xr_profile_t  *p;
    size_t               i, j;

    if (!ready) {
        xr_fz_setup();
        ready = 1;
    }
    if (size > 65536) {
        return 0;
    }

    snprintf(path, sizeof(path), "%s/profiles/alpha.demo.conf", xr_fz_dir);
    f = fopen(path, "wb");
    if (f == NULL) {
        abort();
    }
    fwrite(data, 1, size, f);
    fclose(f);

    pool = xr_pool_create(0);
    xr_ctx_init(&ctx, pool);

    if (xr_config_load(&ctx, xr_fz_dir, &cfg) != XR_OK) {
        /* a refusal is a configuration error that says where */
        if (ctx.err != XR_E_CONFIG || strstr(ctx.errstr, ":") == NULL) {
            abort();
        }
        xr_pool_destroy(pool);
        return 0;
    }

    p = xr_config_profile(cfg, xr_str_from("alpha.demo"));
    if (p == NULL || p->adapter == NULL || p->schema == NULL) {
        abort();
    }
    for (i = 0; i < p->ntxns; i++) {
        if (p->txns[i].stxn == NULL
            || xr_profile_txn(p, p->txns[i].stxn->name) != &p->txns[i])
        {
            abort();
        }
        for (j = 0; j < p->txns[i].maps[XR_DIR_REQUEST].nmaps; j++) {
            if (p->txns[i].maps[XR_DIR_REQUEST].maps[j].line <= 0) {
                abort();
            }
        }
    }

    xr_config_free(cfg);
    xr_pool_destroy(pool);
    return 0;
}
