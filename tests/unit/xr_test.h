/*
 * Helpers shared by the unit tests: a pool per test, the configuration
 * directories, reading fixtures.
 */

#ifndef XR_TEST_H
#define XR_TEST_H

#ifndef _GNU_SOURCE
#define _GNU_SOURCE     /* memmem */
#endif

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xr_core.h"

#ifndef XR_SOURCE_DIR
#define XR_SOURCE_DIR "."
#endif

static inline char *
xr_test_read(const char *path, size_t *len)
{
    FILE    *f;
    char    *buf;
    long     n;

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

/* A pool and a context per test: cmocka setup/teardown. */
typedef struct {
    xr_pool_t  *pool;
    xr_ctx_t    ctx;
} xr_env_t;


static inline int
xr_env_setup(void **state)
{
    xr_env_t  *env;

    env = test_calloc(1, sizeof(xr_env_t));
    env->pool = xr_pool_create(0);
    assert_non_null(env->pool);
    xr_ctx_init(&env->ctx, env->pool);
    *state = env;
    return 0;
}


static inline int
xr_env_teardown(void **state)
{
    xr_env_t  *env = *state;

    xr_pool_destroy(env->pool);
    test_free(env);
    return 0;
}

#define xr_env_test(f)                                                       \
    cmocka_unit_test_setup_teardown(f, xr_env_setup, xr_env_teardown)

#endif /* XR_TEST_H */
