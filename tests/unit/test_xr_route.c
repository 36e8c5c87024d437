/*
 * Longest-prefix tables and destination extraction.
 */

#include "xr_test.h"
#include "xr_route.h"
#include "xr_translate.h"


static void
test_prefix_longest_wins(void **state)
{
    xr_pool_t                *pool = xr_pool_create(0);
    xr_prefix_table_t         t;
    const xr_prefix_entry_t  *e;
    static char               a[] = "a", b[] = "b", c[] = "c", d[] = "d";

    (void) state;
    xr_prefix_init(&t, pool);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("32"), a, 1), XR_OK);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("3201"), b, 2), XR_OK);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("320105"), c, 3), XR_OK);

    e = xr_prefix_lookup(&t, xr_str_from("320105"));
    assert_ptr_equal(e->value, c);
    e = xr_prefix_lookup(&t, xr_str_from("320106"));
    assert_ptr_equal(e->value, b);
    e = xr_prefix_lookup(&t, xr_str_from("320500"));
    assert_ptr_equal(e->value, a);
    assert_null(xr_prefix_lookup(&t, xr_str_from("330100")));

    /* a default catches the rest, and loses to any real prefix */
    assert_int_equal(xr_prefix_add(&t, xr_str_from("*"), d, 4), XR_OK);
    e = xr_prefix_lookup(&t, xr_str_from("330100"));
    assert_ptr_equal(e->value, d);
    e = xr_prefix_lookup(&t, xr_str_from("320500"));
    assert_ptr_equal(e->value, a);

    /* insertion order does not matter */
    xr_prefix_init(&t, pool);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("320105"), c, 1), XR_OK);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("3"), a, 2), XR_OK);
    e = xr_prefix_lookup(&t, xr_str_from("320105"));
    assert_ptr_equal(e->value, c);

    xr_pool_destroy(pool);
}


static void
test_prefix_errors(void **state)
{
    xr_pool_t          *pool = xr_pool_create(0);
    xr_prefix_table_t   t;
    static char         a[] = "a";

    (void) state;
    xr_prefix_init(&t, pool);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("31"), a, 1), XR_OK);
    /* the same prefix twice is an overlap */
    assert_int_equal(xr_prefix_add(&t, xr_str_from("31"), a, 2),
                     XR_DECLINED);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("*"), a, 3), XR_OK);
    assert_int_equal(xr_prefix_add(&t, xr_str_from(""), a, 4), XR_DECLINED);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("3100001"), a, 5),
                     XR_ERROR);
    assert_int_equal(xr_prefix_add(&t, xr_str_from("3a"), a, 6), XR_ERROR);
    xr_pool_destroy(pool);
}


static void
test_region_code_valid(void **state)
{
    (void) state;
    assert_true(xr_region_code_valid(xr_str_from("310000")));
    assert_false(xr_region_code_valid(xr_str_from("31000")));
    assert_false(xr_region_code_valid(xr_str_from("3100000")));
    assert_false(xr_region_code_valid(xr_str_from("31000x")));
    assert_false(xr_region_code_valid(xr_str_from("")));
}


static void
test_route_region(void **state)
{
    xr_pool_t     *pool = xr_pool_create(0);
    xr_ctx_t       ctx;
    xr_config_t   *cfg;
    xr_msg_t       msg;
    xr_str_t       region;

    (void) state;
    xr_ctx_init(&ctx, pool);
    assert_int_equal(xr_config_load(&ctx, XR_SOURCE_DIR
                                    "/tests/fixtures/mini", &cfg), XR_OK);

    xr_msg_init(&msg, XR_DIR_REQUEST);
    msg.domain = xr_str_from("demo");
    msg.body = xr_node_new(&ctx, XR_NODE_OBJECT);

    /* no destination */
    assert_int_equal(xr_route_region(&ctx, cfg, &msg, &region), XR_ERROR);
    assert_int_equal(ctx.err, XR_E_FIELD_MISSING);

    msg.dest = xr_str_from("32010");
    xr_ctx_clear(&ctx);
    assert_int_equal(xr_route_region(&ctx, cfg, &msg, &region), XR_ERROR);
    assert_int_equal(ctx.err, XR_E_REGION_UNKNOWN);

    msg.dest = xr_str_from("320100");
    xr_ctx_clear(&ctx);
    assert_int_equal(xr_route_region(&ctx, cfg, &msg, &region), XR_OK);
    assert_true(xr_str_eq(region, "320100"));

    xr_config_free(cfg);
    xr_pool_destroy(pool);
}


static void
test_route_transit_citycode(void **state)
{
    xr_pool_t     *pool = xr_pool_create(0);
    xr_ctx_t       ctx;
    xr_config_t   *cfg;
    xr_msg_t       msg;
    xr_str_t       region;
    xr_node_t     *city;

    (void) state;
    xr_ctx_init(&ctx, pool);
    if (xr_config_load(&ctx, XR_SOURCE_DIR "/config", &cfg) != XR_OK) {
        fail_msg("config: %s", ctx.errstr);
    }

    xr_msg_init(&msg, XR_DIR_REQUEST);
    msg.domain = xr_str_from("transit");
    msg.body = xr_node_new(&ctx, XR_NODE_OBJECT);

    /* GB/T 13497 city codes map to GB/T 2260 division codes */
    city = xr_node_string(&ctx, "3010", 4);
    xr_object_add(&ctx, msg.body, xr_str_from("issuer_city"), city);
    assert_int_equal(xr_route_region(&ctx, cfg, &msg, &region), XR_OK);
    assert_true(xr_str_eq(region, "320100"));

    city->u.s = xr_str_from("1000");
    assert_int_equal(xr_route_region(&ctx, cfg, &msg, &region), XR_OK);
    assert_true(xr_str_eq(region, "110000"));

    city->u.s = xr_str_from("9999");
    assert_int_equal(xr_route_region(&ctx, cfg, &msg, &region), XR_ERROR);
    assert_int_equal(ctx.err, XR_E_REGION_UNKNOWN);

    xr_config_free(cfg);
    xr_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_prefix_longest_wins),
        cmocka_unit_test(test_prefix_errors),
        cmocka_unit_test(test_region_code_valid),
        cmocka_unit_test(test_route_region),
        cmocka_unit_test(test_route_transit_citycode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
