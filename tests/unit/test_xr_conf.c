/*
 * The profile syntax tokenizer and parser.
 */

#include "xr_test.h"
#include "xr_conf.h"


static int
parse(xr_ctx_t *ctx, const char *text, xr_cdir_t **dirs, size_t *n)
{
    xr_ctx_clear(ctx);
    return xr_conf_parse(ctx, "t.conf", text, strlen(text), dirs, n);
}


static void
test_words_blocks_comments(void **state)
{
    xr_pool_t   *pool = xr_pool_create(0);
    xr_ctx_t     ctx;
    xr_cdir_t   *d;
    size_t       n;
    xr_str_t     v;
    const char  *text =
        "# a comment\n"
        "profile x.y;   # trailing\n"
        "time dt \"%Y-%m-%d %H:%M:%S\";\n"
        "map a b time=\"%Y %m\" as=number;\n"
        "txn pay P1 {\n"
        "    path /p;\n"
        "    request { map x 'y z'; }\n"
        "}\n"
        "set k \"a\\\"b\\n\";\n";

    (void) state;
    xr_ctx_init(&ctx, pool);
    assert_int_equal(parse(&ctx, text, &d, &n), XR_OK);
    assert_int_equal(n, 5);
    assert_true(xr_str_eq(d[0].args[1], "x.y"));
    assert_int_equal(d[0].line, 2);
    assert_true(xr_str_eq(d[1].args[2], "%Y-%m-%d %H:%M:%S"));
    /* a quoted part inside a word keeps the word whole */
    assert_int_equal(d[2].nargs, 5);
    assert_non_null(xr_conf_opt(&d[2], 3, "time", &v));
    assert_true(xr_str_eq(v, "%Y %m"));
    assert_non_null(xr_conf_opt(&d[2], 3, "as", &v));
    assert_true(xr_str_eq(v, "number"));
    assert_null(xr_conf_opt(&d[2], 3, "max", &v));

    assert_true(d[3].has_block);
    assert_int_equal(d[3].nblock, 2);
    assert_int_equal(d[3].block[1].line, 7);
    assert_true(xr_str_eq(d[3].block[1].block[0].args[2], "y z"));
    assert_true(xr_str_eq(d[4].args[2], "a\"b\n"));
    xr_pool_destroy(pool);
}


static void
test_errors(void **state)
{
    static const struct {
        const char  *text;
        const char  *want;
    } cases[] = {
        { "a b", "t.conf:1: directive is not terminated by \";\"" },
        { "a {\n b;\n", "t.conf:1: unexpected end of file, expecting \"}\"" },
        { "a;\n}\n", "t.conf:2: unexpected \"}\"" },
        { "\n\n;", "t.conf:3: unexpected \";\"" },
        { "a \"b;\n", "t.conf:1: unterminated quoted string" },
        { "a{b{c{d{e{f{g{h{i{j;}}}}}}}}}", "blocks nested too deeply" },
    };
    xr_pool_t  *pool = xr_pool_create(0);
    xr_ctx_t    ctx;
    xr_cdir_t  *d;
    size_t      n, i;

    (void) state;
    xr_ctx_init(&ctx, pool);
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(parse(&ctx, cases[i].text, &d, &n), XR_ERROR);
        assert_int_equal(ctx.err, XR_E_CONFIG);
        if (strstr(ctx.errstr, cases[i].want) == NULL) {
            fail_msg("case %zu: got \"%s\", want \"%s\"", i, ctx.errstr,
                     cases[i].want);
        }
    }
    /* a NUL byte is refused */
    xr_ctx_clear(&ctx);
    assert_int_equal(xr_conf_parse(&ctx, "t.conf", "a;\0b;", 5, &d, &n),
                     XR_ERROR);
    xr_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_words_blocks_comments),
        cmocka_unit_test(test_errors),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
