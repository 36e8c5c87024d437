/*
 * The loader: the real configuration loads; every bad profile under
 * tests/fixtures/bad-profiles/<case>/ fails with the file:line and the text
 * its first line ("# expect: LINE: TEXT") announces.  A case is a profile
 * (alpha.demo.conf, over the mini schema) or a schema (demo.conf, in place
 * of the mini one, under the mini profile).
 */

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "xr_test.h"
#include "xr_profile.h"
#include "xr_adapter.h"


static void
test_real_config_loads(void **state)
{
    xr_pool_t    *pool = xr_pool_create(0);
    xr_ctx_t      ctx;
    xr_config_t  *cfg;
    const xr_profile_t *p;

    (void) state;
    xr_ctx_init(&ctx, pool);
    if (xr_config_load(&ctx, XR_SOURCE_DIR "/config", &cfg) != XR_OK) {
        fail_msg("config does not load: %s", ctx.errstr);
    }
    /* 7 regions x 3 domains + national.medical */
    assert_int_equal(cfg->nprofiles, 22);
    assert_int_equal(cfg->nschemas, 3);
    p = xr_config_profile(cfg, xr_str_from("national.medical"));
    assert_non_null(p);
    assert_non_null(xr_profile_txn(p, xr_str_from("settle")));
    assert_null(xr_config_profile(cfg, xr_str_from("mars.medical")));
    assert_non_null(xr_config_region_by_code(cfg, xr_str_from("340000")));
    xr_config_free(cfg);
    xr_pool_destroy(pool);
}


static void
test_mini_config(void **state)
{
    xr_pool_t           *pool = xr_pool_create(0);
    xr_ctx_t             ctx;
    xr_config_t         *cfg;
    const xr_profile_t  *a, *b;
    const xr_ptxn_t     *t;
    const xr_stxn_t     *st;
    xr_str_t             w;

    (void) state;
    xr_ctx_init(&ctx, pool);
    if (xr_config_load(&ctx, XR_SOURCE_DIR "/tests/fixtures/mini", &cfg)
        != XR_OK)
    {
        fail_msg("mini config: %s", ctx.errstr);
    }
    a = xr_config_profile(cfg, xr_str_from("alpha.demo"));
    b = xr_config_profile(cfg, xr_str_from("beta.demo"));
    assert_non_null(a);
    assert_non_null(b);
    assert_true(xr_str_eq(a->region, "310000"));
    assert_int_equal(b->charset, XR_CHARSET_GBK);
    assert_int_equal(b->amount, XR_AMOUNT_FEN);
    assert_string_equal(a->adapter->name, "json");
    assert_string_equal(b->adapter->name, "xml");

    t = xr_profile_txn_by_code(b, xr_str_from("7001"));
    assert_non_null(t);
    assert_true(xr_str_eq(t->stxn->name, "pay"));
    assert_true(xr_str_eq(t->path, "/beta/7001"));
    assert_null(xr_profile_txn(b, xr_str_from("look")));

    st = xr_schema_txn(a->schema, xr_str_from("pay"));
    assert_int_equal(st->kind, XR_TXN_MONEY);
    assert_int_equal(st->nkey, 1);
    st = xr_schema_txn(a->schema, xr_str_from("look"));
    assert_true(st->cacheable);

    assert_int_equal(xr_table_to_wire(a->errors, xr_str_from("XR-SYNTAX"),
                                      &w), XR_OK);
    assert_true(xr_str_eq(w, "101"));
    assert_int_equal(xr_table_to_wire(a->errors, xr_str_from("XR-DEPTH"),
                                      &w), XR_DECLINED);
    assert_true(xr_str_eq(a->errors->default_wire, "199"));

    assert_non_null(xr_config_table(cfg, xr_str_from("city")));
    xr_config_free(cfg);
    xr_pool_destroy(pool);
}


static void
xr_copy_file(const char *from, const char *to)
{
    size_t   len = 0;
    char    *data = xr_test_read(from, &len);
    FILE    *f;

    assert_non_null(data);
    f = fopen(to, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    free(data);
}


static void
test_bad_profiles(void **state)
{
    const char     *base = XR_SOURCE_DIR "/tests/fixtures/bad-profiles";
    struct dirent  *e;
    DIR            *d;
    char            tmp[] = "/tmp/xr-bad-XXXXXX", path[1024], want[512];
    char           *data, *nl, line_no[16];
    size_t          len, cases = 0;
    xr_pool_t      *pool;
    xr_ctx_t        ctx;
    xr_config_t    *cfg;

    (void) state;
    assert_non_null(mkdtemp(tmp));
    snprintf(path, sizeof(path), "%s/schema", tmp);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/tables", tmp);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/profiles", tmp);
    mkdir(path, 0700);
    snprintf(path, sizeof(path), "%s/regions.conf", tmp);
    xr_copy_file(XR_SOURCE_DIR "/tests/fixtures/mini/regions.conf", path);
    snprintf(path, sizeof(path), "%s/schema/demo.conf", tmp);
    xr_copy_file(XR_SOURCE_DIR "/tests/fixtures/mini/schema/demo.conf", path);
    snprintf(path, sizeof(path), "%s/tables/city.conf", tmp);
    xr_copy_file(XR_SOURCE_DIR "/tests/fixtures/mini/tables/city.conf", path);

    d = opendir(base);
    assert_non_null(d);

    while ((e = readdir(d)) != NULL) {
        const char  *bad, *dest;

        if (e->d_name[0] == '.') {
            continue;
        }

        /* the mini files, then the case's bad one over its namesake */
        snprintf(path, sizeof(path), "%s/schema/demo.conf", tmp);
        xr_copy_file(XR_SOURCE_DIR "/tests/fixtures/mini/schema/demo.conf",
                     path);
        snprintf(path, sizeof(path), "%s/profiles/alpha.demo.conf", tmp);
        xr_copy_file(XR_SOURCE_DIR
                     "/tests/fixtures/mini/profiles/alpha.demo.conf", path);

        bad = "alpha.demo.conf";
        dest = "profiles/alpha.demo.conf";
        snprintf(path, sizeof(path), "%s/%s/demo.conf", base, e->d_name);
        if (access(path, R_OK) == 0) {
            bad = "demo.conf";
            dest = "schema/demo.conf";
        }

        snprintf(path, sizeof(path), "%s/%s/%s", base, e->d_name, bad);
        data = xr_test_read(path, &len);
        if (data == NULL) {
            fail_msg("case %s has no alpha.demo.conf or demo.conf",
                     e->d_name);
        }
        if (strncmp(data, "# expect: ", 10) != 0) {
            fail_msg("case %s has no '# expect:' line", e->d_name);
        }
        nl = strchr(data, '\n');
        *nl = '\0';
        snprintf(want, sizeof(want), "%s", data + 10);
        free(data);

        snprintf(path, sizeof(path), "%s/%s", tmp, dest);
        {
            char  src[1024];

            snprintf(src, sizeof(src), "%s/%s/%s", base, e->d_name, bad);
            xr_copy_file(src, path);
        }

        pool = xr_pool_create(0);
        xr_ctx_init(&ctx, pool);
        if (xr_config_load(&ctx, tmp, &cfg) == XR_OK) {
            fail_msg("case %s loaded, expected \"%s\"", e->d_name, want);
        }
        assert_int_equal(ctx.err, XR_E_CONFIG);

        /* "LINE: TEXT" must appear as "<dest>:LINE: ...TEXT" */
        snprintf(line_no, sizeof(line_no), "%.*s",
                 (int) (strchr(want, ':') - want), want);
        snprintf(path, sizeof(path), "%s:%s: ", dest, line_no);
        if (strstr(ctx.errstr, path) == NULL
            || strstr(ctx.errstr, strchr(want, ':') + 2) == NULL)
        {
            fail_msg("case %s: got \"%s\", expected \"%s\"", e->d_name,
                     ctx.errstr, want);
        }
        xr_pool_destroy(pool);
        cases++;
    }
    closedir(d);

    assert_true(cases >= 10);
    snprintf(path, sizeof(path), "rm -rf '%s'", tmp);
    assert_int_equal(system(path), 0);
}


static void
test_missing_dir(void **state)
{
    xr_pool_t    *pool = xr_pool_create(0);
    xr_ctx_t      ctx;
    xr_config_t  *cfg;

    (void) state;
    xr_ctx_init(&ctx, pool);
    assert_int_equal(xr_config_load(&ctx, "/nonexistent-xr", &cfg),
                     XR_ERROR);
    assert_null(cfg);
    assert_int_equal(ctx.err, XR_E_CONFIG);
    assert_non_null(strstr(ctx.errstr, "/nonexistent-xr/regions.conf"));
    xr_pool_destroy(pool);
}


/*
 * The configuration owns all it points to: the pool of the context that
 * loaded it may end first (the module loads with a short-lived context).
 * Under ASan a dangling name is a use-after-free here.
 */
static void
test_config_outlives_loader(void **state)
{
    xr_pool_t           *pool = xr_pool_create(0);
    xr_ctx_t             ctx;
    xr_config_t         *cfg;
    const xr_profile_t  *p;
    size_t               i, total = 0;

    (void) state;
    xr_ctx_init(&ctx, pool);
    assert_int_equal(xr_config_load(&ctx, XR_SOURCE_DIR "/config", &cfg),
                     XR_OK);
    xr_pool_destroy(pool);

    for (i = 0; i < cfg->nprofiles; i++) {
        p = &cfg->profiles[i];
        total += p->name.len + p->txns[0].code.len + p->txns[0].path.len
                 + p->result_field.len;
        assert_true(p->name.data[p->name.len] == '\0');
    }
    assert_true(total > 0);
    p = xr_config_profile(cfg, xr_str_from("hebei.gov"));
    assert_non_null(p);
    assert_true(xr_str_eq(p->ok_value, "00"));
    xr_config_free(cfg);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mini_config),
        cmocka_unit_test(test_bad_profiles),
        cmocka_unit_test(test_missing_dir),
        cmocka_unit_test(test_real_config_loads),
        cmocka_unit_test(test_config_outlives_loader),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
