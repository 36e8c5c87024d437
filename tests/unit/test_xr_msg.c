/*
 * Envelope names and the canonical dump.
 */

#include "xr_test.h"
#include "xr_msg.h"


static void
test_env_names(void **state)
{
    int  i;

    (void) state;
    for (i = 0; i < XR_ENV_LAST; i++) {
        assert_int_equal(xr_env_by_name(xr_str_from(xr_env_name(i))), i);
    }
    assert_int_equal(xr_env_by_name(xr_str_from("@dest")), XR_ENV_DEST);
    assert_int_equal(xr_env_by_name(xr_str_from("dest")), XR_ENV_NONE);
    assert_int_equal(xr_env_by_name(xr_str_from("@nope")), XR_ENV_NONE);
    assert_string_equal(xr_env_name(XR_ENV_NONE), "?");
}


static void
test_dump(void **state)
{
    xr_pool_t   *pool = xr_pool_create(0);
    xr_ctx_t     ctx;
    xr_msg_t     msg;
    xr_buf_t     out;
    xr_node_t   *fen;
    const char  *want =
        "{\n"
        "  \"@dir\": \"response\",\n"
        "  \"@domain\": \"medical\",\n"
        "  \"@txn\": \"settle\",\n"
        "  \"@msg_id\": \"M\\\"1\",\n"
        "  \"@time\": \"2024-02-29T23:59:58\",\n"
        "  \"@status\": \"error\",\n"
        "  \"@err_code\": \"BIZ-3001\",\n"
        "  \"body\": {\n"
        "    \"total\": {\"fen\": -5}\n"
        "  }\n"
        "}\n";

    (void) state;
    xr_ctx_init(&ctx, pool);
    xr_msg_init(&msg, XR_DIR_RESPONSE);
    msg.domain = xr_str_from("medical");
    msg.txn = xr_str_from("settle");
    msg.msg_id = xr_str_from("M\"1");
    msg.has_time = 1;
    msg.time.year = 2024;
    msg.time.month = 2;
    msg.time.day = 29;
    msg.time.hour = 23;
    msg.time.min = 59;
    msg.time.sec = 58;
    msg.time.has_time = 1;
    msg.err_code = xr_str_from("BIZ-3001");
    msg.body = xr_node_new(&ctx, XR_NODE_OBJECT);
    fen = xr_node_int(&ctx, XR_NODE_AMOUNT, -5);
    xr_object_add(&ctx, msg.body, xr_str_from("total"), fen);

    xr_buf_init(&out, pool, 0);
    assert_int_equal(xr_msg_dump(&ctx, &msg, &out), XR_OK);
    if (out.len != strlen(want) || memcmp(out.data, want, out.len) != 0) {
        fail_msg("dump:\n%.*s", (int) out.len, out.data);
    }
    xr_pool_destroy(pool);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_env_names),
        cmocka_unit_test(test_dump),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
