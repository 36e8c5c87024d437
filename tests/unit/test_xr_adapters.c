/*
 * The adapter registry.
 */

#include "xr_test.h"
#include "xr_adapter.h"


static void
test_find(void **state)
{
    const char          *names[] = { "json", "xml", "fixed" };
    const xr_adapter_t  *a;
    size_t               i;

    (void) state;
    for (i = 0; i < 3; i++) {
        a = xr_adapter_find(xr_str_from(names[i]));
        assert_non_null(a);
        assert_string_equal(a->name, names[i]);
        assert_int_equal(a->version, XR_ADAPTER_VERSION);
        assert_non_null(a->decode);
        assert_non_null(a->encode);
        assert_non_null(a->encode_error);
        assert_non_null(a->content_type);
    }
    assert_null(xr_adapter_find(xr_str_from("yaml")));
    assert_null(xr_adapter_find(xr_str_from("")));
    assert_true(xr_adapter_find(xr_str_from("json"))->flags
                & XR_ADAPTER_NUMBERS);
    assert_true(xr_adapter_find(xr_str_from("fixed"))->flags
                & XR_ADAPTER_LAYOUT);
    assert_false(xr_adapter_find(xr_str_from("fixed"))->flags
                 & XR_ADAPTER_TEXT);
}


static void
test_init_twice(void **state)
{
    (void) state;
    /* init is idempotent and cleanup may follow any number of inits */
    assert_int_equal(xr_adapters_init(), XR_OK);
    assert_int_equal(xr_adapters_init(), XR_OK);
    xr_adapters_cleanup();
    xr_adapters_cleanup();
    assert_int_equal(xr_adapters_init(), XR_OK);
    xr_adapters_cleanup();
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_find),
        cmocka_unit_test(test_init_twice),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
