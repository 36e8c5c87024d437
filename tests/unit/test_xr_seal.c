/*
 * xr_seal: the NHSA mobile-payment envelope round trip, its canonical
 * text, and every way an envelope can be bad.  The keys are the test-only
 * SM2 pair of tests/fixtures/keys; the profile is tianjin.medical with the
 * seal option switched on.
 */

#include "xr_test.h"

#include "xr_adapter.h"
#include "xr_node.h"
#include "xr_seal.h"
#include "xr_translate.h"


#define KEYS     XR_SOURCE_DIR "/tests/fixtures/keys/"
#define FIXTURE  XR_SOURCE_DIR \
                 "/tests/fixtures/messages/medical/tianjin.medical/"


typedef struct {
    xr_env_t         env;
    xr_config_t     *cfg;
    xr_profile_t     sealed;
    xr_key_t        *priv;
    xr_key_t        *pub;
    xr_key_t        *other;
    xr_seal_keys_t   keys;      /* we seal with priv, open with pub */
} seal_fixture_t;


static xr_key_t *
load_key(xr_env_t *env, const char *path)
{
    char      *pem;
    size_t     len = 0;
    xr_key_t  *key;

    pem = xr_test_read(path, &len);
    assert_non_null(pem);
    key = xr_key_load(&env->ctx, pem, len);
    free(pem);
    assert_non_null(key);
    return key;
}


static int
setup(void **state)
{
    seal_fixture_t      *f;
    xr_ctx_t             ctx;
    const xr_profile_t  *p;

    f = test_calloc(1, sizeof(seal_fixture_t));
    f->env.pool = xr_pool_create(0);
    xr_ctx_init(&f->env.ctx, f->env.pool);

    xr_ctx_init(&ctx, f->env.pool);
    assert_int_equal(xr_config_load(&ctx, XR_SOURCE_DIR "/config", &f->cfg),
                     XR_OK);

    p = xr_config_profile(f->cfg, xr_str_from("tianjin.medical"));
    assert_non_null(p);

    f->sealed = *p;
    f->sealed.seal = xr_str_from("nhsa_mobile");
    f->sealed.seal_member = xr_str_from("data");

    f->priv = load_key(&f->env, KEYS "sm2-test-only-key.pem");
    f->pub = load_key(&f->env, KEYS "sm2-test-only-pub.pem");
    f->other = load_key(&f->env, KEYS "sm2-gbt32918-5-pub.pem");

    memcpy(f->keys.sm4_key, "0123456789abcdef", 16);
    f->keys.app_secret = xr_str_from("tianjin-app-secret-0001");
    f->keys.own = f->priv;
    f->keys.peer = f->pub;

    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    seal_fixture_t  *f = *state;

    xr_key_free(f->priv);
    xr_key_free(f->pub);
    xr_key_free(f->other);
    xr_config_free(f->cfg);
    xr_pool_destroy(f->env.pool);
    test_free(f);
    return 0;
}


static void
seal(seal_fixture_t *f, const char *plain, size_t len, xr_buf_t *out)
{
    xr_ctx_clear(&f->env.ctx);
    xr_buf_init(out, f->env.pool, 0);
    assert_int_equal(xr_seal_close(&f->env.ctx, &f->sealed, &f->keys, plain,
                                   len, out), XR_OK);
}


static void
refused(seal_fixture_t *f, const char *sealed, size_t len)
{
    xr_buf_t  out;

    xr_ctx_clear(&f->env.ctx);
    xr_buf_init(&out, f->env.pool, 0);
    assert_int_equal(xr_seal_open(&f->env.ctx, &f->sealed, &f->keys, sealed,
                                  len, &out), XR_ERROR);
    assert_int_equal(f->env.ctx.err, XR_E_BAD_SIGNATURE);
}


/* Sealed, opened, decoded: the same canonical message as the plain one. */
static void
test_round_trip_every_fixture(void **state)
{
    static const char  *names[] = {
        "person_info.request.json", "person_info.response.json",
        "settle.request.json", "settle.response.json",
        "settle_reversal.request.json", "register.response.json",
    };

    seal_fixture_t  *f = *state;
    size_t           i, len = 0;
    char            *plain, path[512];
    xr_buf_t         sealed, opened;
    xr_msg_t         a, b;
    xr_dir_e         dir;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s%s", FIXTURE, names[i]);
        plain = xr_test_read(path, &len);
        assert_non_null(plain);

        seal(f, plain, len, &sealed);

        /* nothing of the member is left in clear */
        assert_null(strstr(sealed.data, "\"data\""));
        assert_non_null(strstr(sealed.data, "\"encType\":\"SM4\""));
        assert_non_null(strstr(sealed.data, "\"signType\":\"SM2\""));
        assert_non_null(strstr(sealed.data, "\"encData\":\""));

        xr_buf_init(&opened, f->env.pool, 0);
        assert_int_equal(xr_seal_open(&f->env.ctx, &f->sealed, &f->keys,
                                      sealed.data, sealed.len, &opened),
                         XR_OK);

        dir = strstr(names[i], "request") ? XR_DIR_REQUEST
                                          : XR_DIR_RESPONSE;
        xr_msg_init(&a, dir);
        xr_msg_init(&b, dir);
        assert_int_equal(xr_decode(&f->env.ctx, &f->sealed, dir,
                                   (xr_str_t) xr_null_string, plain, len,
                                   &a), XR_OK);
        assert_int_equal(xr_decode(&f->env.ctx, &f->sealed, dir,
                                   (xr_str_t) xr_null_string, opened.data,
                                   opened.len, &b), XR_OK);
        assert_true(xr_node_equal(a.body, b.body));
        assert_true(xr_str_cmp(a.msg_id, b.msg_id) == 0);

        free(plain);
    }
}


/* Keys sorted at every level, "" and null left out, compact. */
static void
test_canonical_text(void **state)
{
    static const char  doc[] =
        "{\"b\": 1, \"a\": {\"z\": \"\", \"y\": [ {\"d\": null, \"c\": "
        "\"\xe6\xb5\x8b\"} ], \"x\": true}, \"c\": \"\"}";

    seal_fixture_t  *f = *state;
    xr_node_t       *root;
    xr_buf_t         out;

    assert_int_equal(f->sealed.adapter->decode(&f->env.ctx, &f->sealed,
                                               XR_DIR_REQUEST, NULL, doc,
                                               sizeof(doc) - 1, &root),
                     XR_OK);
    xr_buf_init(&out, f->env.pool, 0);
    assert_int_equal(xr_seal_canonical(&f->env.ctx, &f->sealed, root, &out),
                     XR_OK);
    assert_int_equal(out.len, strlen("{\"a\":{\"x\":true,\"y\":[{\"c\":"
                                     "\"\xe6\xb5\x8b\"}]},\"b\":1}"));
    assert_memory_equal(out.data, "{\"a\":{\"x\":true,\"y\":[{\"c\":"
                        "\"\xe6\xb5\x8b\"}]},\"b\":1}", out.len);
}


/* Opening with the peer's key: a seal by another key is refused. */
static void
test_wrong_key_and_secret(void **state)
{
    seal_fixture_t  *f = *state;
    size_t           len = 0;
    char            *plain;
    xr_buf_t         sealed;

    plain = xr_test_read(FIXTURE "settle.request.json", &len);
    assert_non_null(plain);
    seal(f, plain, len, &sealed);
    free(plain);

    f->keys.peer = f->other;
    refused(f, sealed.data, sealed.len);
    f->keys.peer = f->pub;

    f->keys.app_secret = xr_str_from("another-secret");
    refused(f, sealed.data, sealed.len);
    f->keys.app_secret = xr_str_from("tianjin-app-secret-0001");

    memcpy(f->keys.sm4_key, "fedcba9876543210", 16);
    refused(f, sealed.data, sealed.len);
    memcpy(f->keys.sm4_key, "0123456789abcdef", 16);
}


/* Every envelope defect: the same error, whatever it is. */
static void
test_tampered_envelopes(void **state)
{
    seal_fixture_t  *f = *state;
    size_t           len = 0;
    char            *plain, *copy, *p;
    xr_buf_t         sealed;

    plain = xr_test_read(FIXTURE "settle.request.json", &len);
    assert_non_null(plain);
    seal(f, plain, len, &sealed);
    free(plain);

    copy = test_malloc(sealed.len + 1);

    /* a clear parameter changed: the signature covers it */
    memcpy(copy, sealed.data, sealed.len);
    copy[sealed.len] = '\0';
    p = strstr(copy, "\"orgCode\":\"H");
    assert_non_null(p);
    p[11] = 'X';
    refused(f, copy, sealed.len);

    /* one hex digit of encData */
    memcpy(copy, sealed.data, sealed.len);
    p = strstr(copy, "\"encData\":\"") + 11;
    *p = (*p == 'A') ? 'B' : 'A';
    refused(f, copy, sealed.len);

    /* not hex at all */
    memcpy(copy, sealed.data, sealed.len);
    p = strstr(copy, "\"encData\":\"") + 11;
    *p = 'z';
    refused(f, copy, sealed.len);

    /* signType other than SM2 */
    memcpy(copy, sealed.data, sealed.len);
    p = strstr(copy, "\"signType\":\"SM2\"");
    p[12] = 'M';
    p[13] = 'D';
    p[14] = '5';
    refused(f, copy, sealed.len);

    test_free(copy);

    /* an unsealed message */
    plain = xr_test_read(FIXTURE "settle.request.json", &len);
    refused(f, plain, len);
    free(plain);

    /* garbage inside a well-formed envelope */
    refused(f, "{\"encData\":\"00\",\"signData\":\"AAAA\"}", 34);
}


/*
 * A refusal has no member: signed, no encData, and it opens; a member
 * that is not an object is not sealed.
 */
static void
test_without_member(void **state)
{
    static const char  doc[] = "{\"appId\":\"X\",\"returnCode\":\"FAIL\"}";
    static const char  bad[] = "{\"appId\":\"X\",\"data\":\"text\"}";

    seal_fixture_t  *f = *state;
    xr_buf_t         out, opened;

    seal(f, doc, sizeof(doc) - 1, &out);
    assert_null(strstr(out.data, "encData"));
    assert_non_null(strstr(out.data, "\"signData\":\""));

    xr_buf_init(&opened, f->env.pool, 0);
    assert_int_equal(xr_seal_open(&f->env.ctx, &f->sealed, &f->keys,
                                  out.data, out.len, &opened), XR_OK);
    assert_non_null(strstr(opened.data, "\"returnCode\":\"FAIL\""));

    /* the same answer with its signature over another secret: refused */
    f->keys.app_secret = xr_str_from("another-secret");
    refused(f, out.data, out.len);
    f->keys.app_secret = xr_str_from("tianjin-app-secret-0001");

    xr_ctx_clear(&f->env.ctx);
    xr_buf_init(&out, f->env.pool, 0);
    assert_int_equal(xr_seal_close(&f->env.ctx, &f->sealed, &f->keys, bad,
                                   sizeof(bad) - 1, &out), XR_ERROR);
    assert_int_equal(f->env.ctx.err, XR_E_FIELD_TYPE);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_round_trip_every_fixture),
        cmocka_unit_test(test_canonical_text),
        cmocka_unit_test(test_wrong_key_and_secret),
        cmocka_unit_test(test_tampered_envelopes),
        cmocka_unit_test(test_without_member),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
