/*
 * The error table: names are unique and round-trip, and docs/errors.md
 * lists every code with the same HTTP status.
 */

#include "xr_test.h"


static void
test_names_unique(void **state)
{
    int       i, j;
    xr_err_e  e;

    (void) state;
    for (i = 1; i < XR_E_LAST; i++) {
        const xr_error_info_t  *a = xr_error_info((xr_err_e) i);

        assert_non_null(a->name);
        assert_true(strncmp(a->name, "XR-", 3) == 0);
        assert_true(a->http_status >= 400 && a->http_status < 600);
        assert_int_equal(xr_error_by_name(xr_str_from(a->name), &e), XR_OK);
        assert_int_equal(e, i);
        for (j = i + 1; j < XR_E_LAST; j++) {
            assert_string_not_equal(a->name,
                                    xr_error_info((xr_err_e) j)->name);
        }
    }
    assert_int_equal(xr_error_by_name(xr_str_from("XR-NOPE"), &e),
                     XR_DECLINED);
    /* out of range falls back to INTERNAL, never NULL */
    assert_string_equal(xr_error_info((xr_err_e) 999)->name, "XR-INTERNAL");
}


static void
test_docs_in_step(void **state)
{
    char    *doc, row[128];
    size_t   len;
    int      i;

    (void) state;
    doc = xr_test_read(XR_SOURCE_DIR "/docs/errors.md", &len);
    assert_non_null(doc);
    for (i = 1; i < XR_E_LAST; i++) {
        const xr_error_info_t  *a = xr_error_info((xr_err_e) i);

        snprintf(row, sizeof(row), "| %s | %d |", a->name, a->http_status);
        if (strstr(doc, row) == NULL) {
            fail_msg("docs/errors.md has no row \"%s\"", row);
        }
    }
    free(doc);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_unique),
        cmocka_unit_test(test_docs_in_step),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
