/*
 * Digests, HMAC, SM2, SM4, Base64 and the strings to sign, against the
 * published vectors (named at each test) and against the openssl command
 * line, both ways, for SM2.
 */

#include <unistd.h>

#include "xr_test.h"
#include "xr_crypto.h"


#define KEYS  XR_SOURCE_DIR "/tests/fixtures/keys"


/* hex of n bytes into a static buffer, for comparing with the vectors */

static const char *
hexs(const void *p, size_t n)
{
    static char  buf[2 * 256 + 1];

    assert_true(n <= 256);
    xr_hex(p, n, buf);
    buf[2 * n] = '\0';
    return buf;
}


/* bytes of a hex literal, appended to a fresh buffer */

static xr_buf_t
unhex(xr_env_t *env, const char *hex)
{
    xr_buf_t  b;

    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_hex_decode(&env->ctx, hex, strlen(hex), &b), XR_OK);
    return b;
}


static xr_key_t *
load_key(xr_env_t *env, const char *file)
{
    char       path[512], *pem;
    size_t     len = 0;
    xr_key_t  *key;

    snprintf(path, sizeof(path), KEYS "/%s", file);
    pem = xr_test_read(path, &len);
    if (pem == NULL) {
        fail_msg("cannot read %s", path);
    }
    key = xr_key_load(&env->ctx, pem, len);
    if (key == NULL) {
        fail_msg("%s: %s", file, env->ctx.errstr);
    }
    free(pem);
    return key;
}


static char *
read_fixture(const char *file, size_t *len)
{
    char   path[512], *data;

    snprintf(path, sizeof(path), KEYS "/%s", file);
    data = xr_test_read(path, len);
    if (data == NULL) {
        fail_msg("cannot read %s", path);
    }
    return data;
}


/* SM3: GB/T 32905-2016 Annex A, examples 1 and 2 */

static void
test_sm3_vectors(void **state)
{
    int            i;
    char           m[65];
    size_t         n;
    unsigned char  md[XR_DIGEST_MAX_LEN];

    (void) state;

    assert_int_equal(xr_digest(XR_DIGEST_SM3, "abc", 3, md, &n), XR_OK);
    assert_int_equal(n, XR_SM3_LEN);
    assert_string_equal(hexs(md, n),
        "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0");

    for (i = 0; i < 16; i++) {
        memcpy(m + 4 * i, "abcd", 4);
    }
    assert_int_equal(xr_digest(XR_DIGEST_SM3, m, 64, md, &n), XR_OK);
    assert_string_equal(hexs(md, n),
        "debe9ff92275b8a138604889c18e5a4d6fdb70e5387e5765293dcba39c0c5732");

    assert_int_equal(xr_digest(XR_DIGEST_LAST, "abc", 3, md, &n), XR_ERROR);
}


/* SHA-256: FIPS 180-4 examples (via NIST's examples page) */

static void
test_sha256_vectors(void **state)
{
    const char    *m;
    size_t         n;
    unsigned char  md[XR_DIGEST_MAX_LEN];

    (void) state;

    assert_int_equal(xr_digest(XR_DIGEST_SHA256, "abc", 3, md, &n), XR_OK);
    assert_int_equal(n, XR_SHA256_LEN);
    assert_string_equal(hexs(md, n),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");

    m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(xr_digest(XR_DIGEST_SHA256, m, strlen(m), md, &n),
                     XR_OK);
    assert_string_equal(hexs(md, n),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");

    /* the old entry point still answers the same */
    assert_int_equal(xr_sha256(NULL, 0, md), XR_OK);
    assert_string_equal(hexs(md, 32),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}


/* HMAC-SHA256: RFC 4231 test cases 1 and 2 */

static void
test_hmac_sha256_rfc4231(void **state)
{
    size_t         n;
    unsigned char  key[20], mac[XR_DIGEST_MAX_LEN];

    (void) state;

    memset(key, 0x0b, sizeof(key));
    assert_int_equal(xr_hmac(XR_DIGEST_SHA256, key, 20, "Hi There", 8,
                             mac, &n), XR_OK);
    assert_int_equal(n, 32);
    assert_string_equal(hexs(mac, n),
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");

    assert_int_equal(xr_hmac(XR_DIGEST_SHA256, "Jefe", 4,
                             "what do ya want for nothing?", 28, mac, &n),
                     XR_OK);
    assert_string_equal(hexs(mac, n),
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
}


/*
 * HMAC-SM3: GM/T 0042-2015 Appendix D.3 (the values as OpenSSL's own test
 * data, test/recipes/30-test_evp_data/evpmac_sm3.txt, carries them), and
 * an empty key against `openssl mac -digest SM3 -macopt key: HMAC`.
 */

static void
test_hmac_sm3(void **state)
{
    xr_env_t       *env = *state;
    size_t          n;
    xr_buf_t        key, data;
    unsigned char   mac[XR_DIGEST_MAX_LEN];
    const char     *m;

    key = unhex(env, "0102030405060708090a0b0c0d0e0f10"
                     "1112131415161718191a1b1c1d1e1f20");
    m = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
        "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_int_equal(xr_hmac(XR_DIGEST_SM3, key.data, key.len, m, strlen(m),
                             mac, &n), XR_OK);
    assert_int_equal(n, XR_SM3_LEN);
    assert_string_equal(hexs(mac, n),
        "ca05e144ed05d1857840d1f318a4a8669e559fc8391f414485bfdf7bb408963a");

    key = unhex(env, "0102030405060708090a0b0c0d0e0f10"
                     "1112131415161718191a1b1c1d1e1f202122232425");
    data = unhex(env, "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd"
                      "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd");
    assert_int_equal(xr_hmac(XR_DIGEST_SM3, key.data, key.len, data.data,
                             data.len, mac, &n), XR_OK);
    assert_string_equal(hexs(mac, n),
        "220bf579ded555393f0159f66c99877822a3ecf610d1552154b41d44b94db3ae");

    key = unhex(env, "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b"
                     "0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b0b");
    assert_int_equal(xr_hmac(XR_DIGEST_SM3, key.data, key.len, "Hi There", 8,
                             mac, &n), XR_OK);
    assert_string_equal(hexs(mac, n),
        "c0ba18c68b90c88bc07de794bfc7d2c8d19ec31ed8773bc2b390c9604e0be11e");

    assert_int_equal(xr_hmac(XR_DIGEST_SM3, "Jefe Jeferson Jr", 16,
                             "what do ya want for nothing?", 28, mac, &n),
                     XR_OK);
    assert_string_equal(hexs(mac, n),
        "ce791a34c59adef472997a249600f3f244d59e875be04055ba2ae12fc845e78c");

    assert_int_equal(xr_hmac(XR_DIGEST_SM3, NULL, 0, "abc", 3, mac, &n),
                     XR_OK);
    assert_string_equal(hexs(mac, n),
        "36525058ca466791502435c910517f1a7e86613d5f35ac1f18a94def0eaac81f");
}


static void
test_crypto_equal(void **state)
{
    (void) state;

    assert_int_equal(xr_crypto_equal("abcd", "abcd", 4), 1);
    assert_int_equal(xr_crypto_equal("abcd", "abce", 4), 0);
    assert_int_equal(xr_crypto_equal("xbcd", "abcd", 4), 0);
    assert_int_equal(xr_crypto_equal("a", "b", 0), 1);
}


/* Base64: RFC 4648 section 10, then what strict decoding refuses */

static void
test_base64(void **state)
{
    xr_env_t    *env = *state;
    size_t       i;
    xr_buf_t     b;

    static const char  *vec[][2] = {
        { "", "" }, { "f", "Zg==" }, { "fo", "Zm8=" }, { "foo", "Zm9v" },
        { "foob", "Zm9vYg==" }, { "fooba", "Zm9vYmE=" },
        { "foobar", "Zm9vYmFy" },
    };
    static const char  *bad[] = {
        "Zg=", "Zh==", "Zm9=", "Zm9v\n", "Z===", "====", "=Zg=",
        "Zg==Zg==", "Zm-v", "Zm_v", "Zm9vYg=a", "Zm 9", "Zm9vY===",
    };

    for (i = 0; i < sizeof(vec) / sizeof(vec[0]); i++) {
        xr_buf_init(&b, env->pool, 0);
        assert_int_equal(xr_base64_encode(vec[i][0], strlen(vec[i][0]), &b),
                         XR_OK);
        assert_int_equal(b.len, strlen(vec[i][1]));
        assert_memory_equal(b.data, vec[i][1], b.len);

        xr_buf_init(&b, env->pool, 0);
        assert_int_equal(xr_base64_decode(&env->ctx, vec[i][1],
                                          strlen(vec[i][1]), &b), XR_OK);
        assert_int_equal(b.len, strlen(vec[i][0]));
        if (b.len) {
            assert_memory_equal(b.data, vec[i][0], b.len);
        }
    }

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xr_ctx_clear(&env->ctx);
        xr_buf_init(&b, env->pool, 0);
        if (xr_base64_decode(&env->ctx, bad[i], strlen(bad[i]), &b)
            != XR_ERROR)
        {
            fail_msg("accepted \"%s\"", bad[i]);
        }
        assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
    }

    /* every byte value through and back */
    {
        unsigned char  all[256];
        xr_buf_t       e, d;

        for (i = 0; i < 256; i++) {
            all[i] = (unsigned char) i;
        }
        for (i = 250; i <= 256; i++) {
            xr_buf_init(&e, env->pool, 0);
            xr_buf_init(&d, env->pool, 0);
            assert_int_equal(xr_base64_encode(all, i, &e), XR_OK);
            xr_ctx_clear(&env->ctx);
            assert_int_equal(xr_base64_decode(&env->ctx, e.data, e.len, &d),
                             XR_OK);
            assert_int_equal(d.len, i);
            assert_memory_equal(d.data, all, i);
        }
    }
}


static void
test_hex_decode(void **state)
{
    xr_env_t  *env = *state;
    xr_buf_t   b;

    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_hex_decode(&env->ctx, "00fFaB7e", 8, &b), XR_OK);
    assert_int_equal(b.len, 4);
    assert_memory_equal(b.data, "\x00\xff\xab\x7e", 4);

    assert_int_equal(xr_hex_decode(&env->ctx, "abc", 3, &b), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_hex_decode(&env->ctx, "0g", 2, &b), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
}


static void
test_key_load(void **state)
{
    xr_env_t    *env = *state;
    xr_key_t    *k;
    const char  *junk;

    k = load_key(env, "sm2-test-only-key.pem");
    assert_true(xr_key_is_sm2(k));
    assert_true(xr_key_is_private(k));
    xr_key_free(k);
    assert_false(xr_key_is_sm2(k));
    xr_key_free(k);                     /* twice is harmless */
    xr_key_free(NULL);

    k = load_key(env, "sm2-test-only-pub.pem");
    assert_true(xr_key_is_sm2(k));
    assert_false(xr_key_is_private(k));
    xr_key_free(k);

    /* the same curve under the traditional "EC PRIVATE KEY" label */
    k = load_key(env, "sm2-gbt32918-5-key-ec.pem");
    assert_true(xr_key_is_sm2(k));
    assert_true(xr_key_is_private(k));
    xr_key_free(k);

    k = load_key(env, "p256-test-only-key.pem");
    assert_false(xr_key_is_sm2(k));
    assert_true(xr_key_is_private(k));
    xr_key_free(k);

    k = load_key(env, "p256-test-only-pub.pem");
    assert_false(xr_key_is_sm2(k));
    xr_key_free(k);

    junk = "-----BEGIN PUBLIC KEY-----\nnot base64\n"
           "-----END PUBLIC KEY-----\n";
    assert_null(xr_key_load(&env->ctx, junk, strlen(junk)));
    assert_int_equal(env->ctx.err, XR_E_CONFIG);

    xr_ctx_clear(&env->ctx);
    junk = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n";
    assert_null(xr_key_load(&env->ctx, junk, strlen(junk)));
    assert_int_equal(env->ctx.err, XR_E_CONFIG);

    xr_ctx_clear(&env->ctx);
    assert_null(xr_key_load(&env->ctx, "", 0));
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
}


/*
 * GB/T 32918.5-2017 (= GM/T 0003.5-2012) Annex A: the SM2 signature of
 * "message digest" with ID "1234567812345678" on the recommended curve.
 * The example signs with a fixed k, which OpenSSL does not let a caller
 * choose: the signature is verified here, not reproduced.
 */

#define GBT_R                                                                 \
    "f5a03b0648d2c4630eeac513e1bb81a15944da3827d5b74143ac7eaceee720b3"
#define GBT_S                                                                 \
    "b1b6aa29df212fd8763182bc0d421ca1bb9038fd1f7f42d4840b69c485bbc1aa"

static void
test_sm2_standard_vector(void **state)
{
    xr_env_t  *env = *state;
    xr_buf_t   raw, der, back, sig;
    xr_key_t  *pub, *priv;

    pub = load_key(env, "sm2-gbt32918-5-pub.pem");
    priv = load_key(env, "sm2-gbt32918-5-key.pem");

    raw = unhex(env, GBT_R GBT_S);
    assert_int_equal(raw.len, 64);

    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, "message digest",
                                   14, raw.data, raw.len), XR_OK);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, XR_SM2_DEFAULT_ID,
                                   XR_SM2_DEFAULT_ID_LEN, "message digest",
                                   14, raw.data, raw.len), XR_OK);

    /* the DER form of the same signature, and back */
    xr_buf_init(&der, env->pool, 0);
    assert_int_equal(xr_sm2_sig_to_der(&env->ctx, raw.data, raw.len, &der),
                     XR_OK);
    assert_int_equal(der.len, 72);      /* both r and s need a 0x00 */
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, "message digest",
                                   14, der.data, der.len), XR_OK);
    assert_int_equal(xr_sm2_verify(&env->ctx, priv, NULL, 0,
                                   "message digest", 14, der.data, der.len),
                     XR_OK);
    xr_buf_init(&back, env->pool, 0);
    assert_int_equal(xr_sm2_sig_to_raw(&env->ctx, der.data, der.len, &back),
                     XR_OK);
    assert_memory_equal(back.data, raw.data, 64);

    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, "message digesT",
                                   14, raw.data, raw.len), XR_DECLINED);

    /* the example's private key signs what its public key verifies */
    xr_buf_init(&sig, env->pool, 0);
    assert_int_equal(xr_sm2_sign(&env->ctx, priv, NULL, 0, "message digest",
                                 14, &sig), XR_OK);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, "message digest",
                                   14, sig.data, sig.len), XR_OK);

    assert_int_equal(env->ctx.err, XR_E_NONE);
    xr_key_free(pub);
    xr_key_free(priv);
}


/* A signature by `openssl dgst -sm3 -sign` verifies here. */

static void
test_sm2_openssl_to_xr(void **state)
{
    xr_env_t  *env = *state;
    char      *msg, *sig, *sig0;
    size_t     msglen = 0, siglen = 0, sig0len = 0;
    xr_key_t  *pub;

    pub = load_key(env, "sm2-test-only-pub.pem");
    msg = read_fixture("sm2-message.txt", &msglen);
    sig = read_fixture("sm2-message.sig", &siglen);
    sig0 = read_fixture("sm2-message-emptyid.sig", &sig0len);

    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   sig, siglen), XR_OK);

    /* without -sigopt distid the command line's ID is empty */
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   sig0, sig0len), XR_DECLINED);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, "", 0, msg, msglen,
                                   sig0, sig0len), XR_OK);

    assert_int_equal(env->ctx.err, XR_E_NONE);
    free(msg);
    free(sig);
    free(sig0);
    xr_key_free(pub);
}


/* A signature by xr_sm2_sign() verifies with `openssl dgst -verify`. */

static void
test_sm2_xr_to_openssl(void **state)
{
    xr_env_t  *env = *state;
    int        fd;
    char      *msg, cmd[1024], line[256], path[] = "/tmp/xr-sm2-sigXXXXXX";
    FILE      *p;
    size_t     msglen = 0;
    xr_buf_t   sig;
    xr_key_t  *key;

    if (system("openssl version >/dev/null 2>&1") != 0) {
        skip();                         /* no command line to ask */
    }

    key = load_key(env, "sm2-test-only-key.pem");
    msg = read_fixture("sm2-message.txt", &msglen);

    xr_buf_init(&sig, env->pool, 0);
    assert_int_equal(xr_sm2_sign(&env->ctx, key, NULL, 0, msg, msglen, &sig),
                     XR_OK);
    assert_true(sig.len >= 8 && sig.len <= XR_SM2_MAX_DER_LEN);
    assert_int_equal((unsigned char) sig.data[0], 0x30);

    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, sig.data, sig.len), (ssize_t) sig.len);
    close(fd);

    snprintf(cmd, sizeof(cmd),
             "openssl dgst -sm3 -verify %s/sm2-test-only-pub.pem "
             "-sigopt distid:1234567812345678 -signature %s "
             "%s/sm2-message.txt 2>&1", KEYS, path, KEYS);
    p = popen(cmd, "r");
    assert_non_null(p);
    line[0] = '\0';
    if (fgets(line, sizeof(line), p) == NULL) {
        line[0] = '\0';
    }
    pclose(p);
    unlink(path);

    assert_string_equal(line, "Verified OK\n");

    free(msg);
    xr_key_free(key);
}


static void
test_sm2_refusals(void **state)
{
    xr_env_t       *env = *state;
    char           *msg, *sig;
    size_t          msglen = 0, siglen = 0, i;
    xr_buf_t        raw, s;
    xr_key_t       *pub, *priv, *p256;
    unsigned char   bad[80];

    pub = load_key(env, "sm2-test-only-pub.pem");
    priv = load_key(env, "sm2-test-only-key.pem");
    p256 = load_key(env, "p256-test-only-key.pem");
    msg = read_fixture("sm2-message.txt", &msglen);
    sig = read_fixture("sm2-message.sig", &siglen);

    /* one bit flipped, in r, in s, in the message */
    for (i = 5; i < siglen; i += 7) {
        memcpy(bad, sig, siglen);
        bad[i] ^= 0x10;
        if (xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen, bad, siglen)
            != XR_DECLINED)
        {
            fail_msg("flipped bit in byte %zu: %s", i, env->ctx.errstr);
        }
    }
    msg[0] ^= 1;
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   sig, siglen), XR_DECLINED);
    msg[0] ^= 1;

    /* wrong ID */
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, "1234567812345679", 16,
                                   msg, msglen, sig, siglen), XR_DECLINED);
    assert_int_equal(env->ctx.err, XR_E_NONE);

    /* raw r || s of the same signature is accepted */
    xr_buf_init(&raw, env->pool, 0);
    assert_int_equal(xr_sm2_sig_to_raw(&env->ctx, sig, siglen, &raw), XR_OK);
    assert_int_equal(raw.len, 64);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   raw.data, raw.len), XR_OK);

    /* 64 bytes of garbage, or zeros: well-formed r || s, wrong: declined */
    memset(bad, 0xa5, 64);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   bad, 64), XR_DECLINED);
    memset(bad, 0, 64);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   bad, 64), XR_DECLINED);
    assert_int_equal(env->ctx.err, XR_E_NONE);

    /* garbage of another length, DER with a trailing byte, BER: errors */
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   "garbage", 7), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_BAD_SIGNATURE);
    xr_ctx_clear(&env->ctx);

    memcpy(bad, sig, siglen);
    bad[siglen] = 0;
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   bad, siglen + 1), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_BAD_SIGNATURE);
    xr_ctx_clear(&env->ctx);

    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   sig, siglen - 1), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_BAD_SIGNATURE);
    xr_ctx_clear(&env->ctx);

    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   "", 0), XR_ERROR);
    xr_ctx_clear(&env->ctx);

    /* keys that cannot do it */
    xr_buf_init(&s, env->pool, 0);
    assert_int_equal(xr_sm2_sign(&env->ctx, pub, NULL, 0, msg, msglen, &s),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_sm2_sign(&env->ctx, p256, NULL, 0, msg, msglen, &s),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_sm2_verify(&env->ctx, p256, NULL, 0, msg, msglen,
                                   sig, siglen), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_sm2_verify(&env->ctx, NULL, NULL, 0, msg, msglen,
                                   sig, siglen), XR_ERROR);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(s.len, 0);

    /* sign and verify: any ID, an empty message */
    assert_int_equal(xr_sm2_sign(&env->ctx, priv, "ALICE123@YAHOO.COM", 18,
                                 NULL, 0, &s), XR_OK);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, "ALICE123@YAHOO.COM", 18,
                                   NULL, 0, s.data, s.len), XR_OK);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, NULL, 0,
                                   s.data, s.len), XR_DECLINED);

    free(msg);
    free(sig);
    xr_key_free(pub);
    xr_key_free(priv);
    xr_key_free(p256);
}


/* The signData of the mobile-payment sample is Base64 of r || s. */

static void
test_sm2_sample_signdata(void **state)
{
    xr_env_t    *env = *state;
    xr_buf_t     b, der;
    const char  *s;

    s = "URVQNdVNn5mz2EhKZhLTlXNwAWTSncFoSe8Ilx7jhn81eABJ46sdRRN1ZiAiQjPU"
        "TixG9bwqEhiJupHRGmyO5w==";
    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_base64_decode(&env->ctx, s, strlen(s), &b), XR_OK);
    assert_int_equal(b.len, XR_SM2_RAW_SIG_LEN);

    xr_buf_init(&der, env->pool, 0);
    assert_int_equal(xr_sm2_sig_to_der(&env->ctx, b.data, b.len, &der),
                     XR_OK);
    assert_int_equal((unsigned char) der.data[0], 0x30);
}


/*
 * ECDSA P-256: sign and verify both ways with the openssl command line,
 * and the refusals.
 */

static void
test_ecdsa(void **state)
{
    xr_env_t       *env = *state;
    int             fd;
    char           *msg, cmd[1024], line[256];
    char            path[] = "/tmp/xr-ecdsa-sigXXXXXX";
    FILE           *p;
    size_t          msglen = 0, i, n;
    xr_buf_t        sig, s;
    xr_key_t       *pub, *priv, *sm2;
    unsigned char   bad[XR_ECDSA_MAX_DER_LEN + 1], osig[128];

    pub = load_key(env, "p256-test-only-pub.pem");
    priv = load_key(env, "p256-test-only-key.pem");
    sm2 = load_key(env, "sm2-test-only-key.pem");
    msg = read_fixture("sm2-message.txt", &msglen);

    xr_buf_init(&sig, env->pool, 0);
    assert_int_equal(xr_ecdsa_sign(&env->ctx, priv, msg, msglen, &sig),
                     XR_OK);
    assert_true(sig.len >= 8 && sig.len <= XR_ECDSA_MAX_DER_LEN);
    assert_int_equal(xr_ecdsa_verify(&env->ctx, pub, msg, msglen, sig.data,
                                     sig.len), XR_OK);
    assert_int_equal(xr_ecdsa_verify(&env->ctx, priv, msg, msglen, sig.data,
                                     sig.len), XR_OK);

    /*
     * A flipped bit anywhere in the signature: declined, or refused as
     * not strict DER when the flip breaks the encoding (the signature is
     * new each run, so either may happen); in the message: declined.
     */
    for (i = 2; i < sig.len; i++) {
        int  rc;

        memcpy(bad, sig.data, sig.len);
        bad[i] ^= 0x01;
        rc = xr_ecdsa_verify(&env->ctx, pub, msg, msglen, bad, sig.len);
        if (rc != XR_DECLINED
            && !(rc == XR_ERROR && env->ctx.err == XR_E_BAD_SIGNATURE))
        {
            fail_msg("flipped bit in byte %zu: %d %s", i, rc,
                     env->ctx.errstr);
        }
        xr_ctx_clear(&env->ctx);
    }
    msg[3] ^= 1;
    assert_int_equal(xr_ecdsa_verify(&env->ctx, pub, msg, msglen, sig.data,
                                     sig.len), XR_DECLINED);
    msg[3] ^= 1;
    assert_int_equal(env->ctx.err, XR_E_NONE);

    /* not DER, DER with a byte after it: errors */
    assert_int_equal(xr_ecdsa_verify(&env->ctx, pub, msg, msglen, "garbage",
                                     7), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_BAD_SIGNATURE);
    xr_ctx_clear(&env->ctx);
    memcpy(bad, sig.data, sig.len);
    bad[sig.len] = 0;
    assert_int_equal(xr_ecdsa_verify(&env->ctx, pub, msg, msglen, bad,
                                     sig.len + 1), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_BAD_SIGNATURE);
    xr_ctx_clear(&env->ctx);

    /* keys that cannot do it: public, SM2 (either way) */
    xr_buf_init(&s, env->pool, 0);
    assert_int_equal(xr_ecdsa_sign(&env->ctx, pub, msg, msglen, &s),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_ecdsa_sign(&env->ctx, sm2, msg, msglen, &s),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_ecdsa_verify(&env->ctx, sm2, msg, msglen, sig.data,
                                     sig.len), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_sm2_verify(&env->ctx, pub, NULL, 0, msg, msglen,
                                   sig.data, sig.len), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(s.len, 0);

    if (system("openssl version >/dev/null 2>&1") != 0) {
        skip();                         /* no command line to ask */
    }

    /* ours verifies with `openssl dgst -sha256 -verify` */
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, sig.data, sig.len), (ssize_t) sig.len);
    close(fd);

    snprintf(cmd, sizeof(cmd),
             "openssl dgst -sha256 -verify %s/p256-test-only-pub.pem "
             "-signature %s %s/sm2-message.txt 2>&1", KEYS, path, KEYS);
    p = popen(cmd, "r");
    assert_non_null(p);
    line[0] = '\0';
    if (fgets(line, sizeof(line), p) == NULL) {
        line[0] = '\0';
    }
    pclose(p);
    assert_string_equal(line, "Verified OK\n");

    /* and openssl's verifies here */
    snprintf(cmd, sizeof(cmd),
             "openssl dgst -sha256 -sign %s/p256-test-only-key.pem "
             "%s/sm2-message.txt", KEYS, KEYS);
    p = popen(cmd, "r");
    assert_non_null(p);
    n = fread(osig, 1, sizeof(osig), p);
    pclose(p);
    unlink(path);
    assert_true(n >= 8);
    assert_int_equal(xr_ecdsa_verify(&env->ctx, pub, msg, msglen, osig, n),
                     XR_OK);

    free(msg);
    xr_key_free(pub);
    xr_key_free(priv);
    xr_key_free(sm2);
}


/*
 * Key ids equal `openssl pkey -pubout -outform DER | sha256sum` (run by
 * hand on the fixtures: the values below), from either half.
 */

static void
test_key_id_and_pem(void **state)
{
    xr_env_t       *env = *state;
    xr_buf_t        pem;
    xr_key_t       *k, *back;
    unsigned char   id[XR_KEY_ID_LEN], id2[XR_KEY_ID_LEN];

    k = load_key(env, "sm2-test-only-key.pem");
    assert_int_equal(xr_key_id(&env->ctx, k, id), XR_OK);
    assert_string_equal(hexs(id, sizeof(id)),
        "3593a592238555cecf5310b66abee80301e3ad425fc434d29ee0fb8ba6915767");

    /* the public PEM written loads back to a key of the same id */
    xr_buf_init(&pem, env->pool, 0);
    assert_int_equal(xr_key_public_pem(&env->ctx, k, &pem), XR_OK);
    assert_true(pem.len > 26);
    assert_memory_equal(pem.data, "-----BEGIN PUBLIC KEY-----", 26);
    back = xr_key_load(&env->ctx, pem.data, pem.len);
    assert_non_null(back);
    assert_true(xr_key_is_sm2(back));
    assert_false(xr_key_is_private(back));
    assert_int_equal(xr_key_id(&env->ctx, back, id2), XR_OK);
    assert_memory_equal(id, id2, sizeof(id));
    xr_key_free(back);
    xr_key_free(k);

    k = load_key(env, "p256-test-only-pub.pem");
    assert_int_equal(xr_key_id(&env->ctx, k, id), XR_OK);
    assert_string_equal(hexs(id, sizeof(id)),
        "733ee100f79ce1600481be335963c13d5d8609f3880e1cd429a645afea3849da");
    xr_key_free(k);

    /* a freed key has no id */
    assert_int_equal(xr_key_id(&env->ctx, k, id), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_CONFIG);
}


/* SM4: GB/T 32907-2016 Annex A, examples 1 and 2 (one block, ECB) */

static void
test_sm4_standard(void **state)
{
    xr_env_t   *env = *state;
    long        i;
    xr_buf_t    key, out, cur;

    key = unhex(env, "0123456789abcdeffedcba9876543210");

    xr_buf_init(&out, env->pool, 0);
    assert_int_equal(xr_sm4_crypt(&env->ctx, 1, XR_SM4_ECB_NOPAD,
                                  (unsigned char *) key.data, NULL, key.data,
                                  16, &out), XR_OK);
    assert_int_equal(out.len, 16);
    assert_string_equal(hexs(out.data, 16),
                        "681edf34d206965e86b3e94f536e4246");

    xr_buf_init(&cur, env->pool, 0);
    assert_int_equal(xr_sm4_crypt(&env->ctx, 0, XR_SM4_ECB_NOPAD,
                                  (unsigned char *) key.data, NULL, out.data,
                                  16, &cur), XR_OK);
    assert_memory_equal(cur.data, key.data, 16);

    /* example 2: the same block encrypted 1,000,000 times */
    xr_buf_init(&cur, env->pool, 0);
    xr_buf_add(&cur, key.data, 16);
    xr_buf_init(&out, env->pool, 0);
    for (i = 0; i < 1000000; i++) {
        out.len = 0;
        if (xr_sm4_crypt(&env->ctx, 1, XR_SM4_ECB_NOPAD,
                         (unsigned char *) key.data, NULL, cur.data, 16,
                         &out) != XR_OK)
        {
            fail_msg("%s", env->ctx.errstr);
        }
        memcpy(cur.data, out.data, 16);
    }
    assert_string_equal(hexs(cur.data, 16),
                        "595298c7c6fd271f0402f804c33d3f66");
}


/*
 * PKCS#7 round trips, and one vector each from
 * `openssl enc -sm4-cbc|-sm4-ecb -K 0123...3210 -iv 0001...0e0f`.
 */

static void
test_sm4_modes(void **state)
{
    xr_env_t       *env = *state;
    size_t          len;
    xr_buf_t        key, iv, ct, pt;
    const char     *m;
    unsigned char   plain[64];

    key = unhex(env, "0123456789abcdeffedcba9876543210");
    iv = unhex(env, "000102030405060708090a0b0c0d0e0f");
    m = "xregion SM4 CBC vector, 37 bytes!!";

    xr_buf_init(&ct, env->pool, 0);
    assert_int_equal(xr_sm4_crypt(&env->ctx, 1, XR_SM4_CBC,
                                  (unsigned char *) key.data,
                                  (unsigned char *) iv.data, m, strlen(m),
                                  &ct), XR_OK);
    assert_int_equal(ct.len, 48);
    assert_string_equal(hexs(ct.data, ct.len),
        "01575379157e215cbb57d3c6370700b0351da453a9e1830cdd6e206f8210bcd3"
        "0b9e10c32ec6041b5fa866f3fe3aa666");

    xr_buf_init(&ct, env->pool, 0);
    assert_int_equal(xr_sm4_crypt(&env->ctx, 1, XR_SM4_ECB,
                                  (unsigned char *) key.data, NULL, m,
                                  strlen(m), &ct), XR_OK);
    assert_string_equal(hexs(ct.data, ct.len),
        "97054aa406a3f9db4be7a118139463610833f451b0eea84099dcc3641cc584f1"
        "3120c7224733f5aab4737474596de5cb");

    for (len = 0; len < sizeof(plain); len++) {
        plain[len] = (unsigned char) (len * 37 + 1);
    }

    for (len = 0; len <= sizeof(plain); len++) {
        xr_buf_init(&ct, env->pool, 0);
        xr_buf_init(&pt, env->pool, 0);
        assert_int_equal(xr_sm4_crypt(&env->ctx, 1, XR_SM4_CBC,
                                      (unsigned char *) key.data,
                                      (unsigned char *) iv.data, plain, len,
                                      &ct), XR_OK);
        assert_int_equal(ct.len, (len / 16 + 1) * 16);
        assert_int_equal(xr_sm4_crypt(&env->ctx, 0, XR_SM4_CBC,
                                      (unsigned char *) key.data,
                                      (unsigned char *) iv.data, ct.data,
                                      ct.len, &pt), XR_OK);
        assert_int_equal(pt.len, len);
        if (len) {
            assert_memory_equal(pt.data, plain, len);
        }

        xr_buf_init(&ct, env->pool, 0);
        xr_buf_init(&pt, env->pool, 0);
        assert_int_equal(xr_sm4_crypt(&env->ctx, 1, XR_SM4_ECB,
                                      (unsigned char *) key.data, NULL,
                                      plain, len, &ct), XR_OK);
        assert_int_equal(xr_sm4_crypt(&env->ctx, 0, XR_SM4_ECB,
                                      (unsigned char *) key.data, NULL,
                                      ct.data, ct.len, &pt), XR_OK);
        assert_int_equal(pt.len, len);
    }
    assert_int_equal(env->ctx.err, XR_E_NONE);
}


static void
test_sm4_bad_padding(void **state)
{
    xr_env_t       *env = *state;
    size_t          i;
    xr_buf_t        key, iv, ct, pt;
    unsigned char   block[32];

    static const struct {
        unsigned char  last;
        unsigned char  before;      /* the byte before the last */
    } pads[] = {
        { 0x00, 0x00 },             /* zero is no PKCS#7 length */
        { 0x11, 0x11 },             /* longer than a block */
        { 0x03, 0x07 },             /* the run of 3 is broken */
    };

    key = unhex(env, "0123456789abcdeffedcba9876543210");
    iv = unhex(env, "000102030405060708090a0b0c0d0e0f");

    for (i = 0; i < sizeof(pads) / sizeof(pads[0]); i++) {
        memset(block, 'x', sizeof(block));
        block[30] = pads[i].before;
        block[31] = pads[i].last;

        xr_buf_init(&ct, env->pool, 0);
        assert_int_equal(xr_sm4_crypt(&env->ctx, 1, XR_SM4_CBC_NOPAD,
                                      (unsigned char *) key.data,
                                      (unsigned char *) iv.data, block, 32,
                                      &ct), XR_OK);

        xr_buf_init(&pt, env->pool, 0);
        xr_buf_add(&pt, "kept", 4);
        xr_ctx_clear(&env->ctx);
        assert_int_equal(xr_sm4_crypt(&env->ctx, 0, XR_SM4_CBC,
                                      (unsigned char *) key.data,
                                      (unsigned char *) iv.data, ct.data,
                                      ct.len, &pt), XR_ERROR);
        assert_int_equal(env->ctx.err, XR_E_SYNTAX);
        /* nothing of the refused plaintext is left in the output */
        assert_int_equal(pt.len, 4);
    }

    /* not whole blocks, empty */
    xr_ctx_clear(&env->ctx);
    xr_buf_init(&pt, env->pool, 0);
    assert_int_equal(xr_sm4_crypt(&env->ctx, 0, XR_SM4_CBC,
                                  (unsigned char *) key.data,
                                  (unsigned char *) iv.data, block, 15, &pt),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_SYNTAX);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_sm4_crypt(&env->ctx, 0, XR_SM4_ECB,
                                  (unsigned char *) key.data, NULL, block, 0,
                                  &pt), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_SYNTAX);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_sm4_crypt(&env->ctx, 1, XR_SM4_ECB_NOPAD,
                                  (unsigned char *) key.data, NULL, block, 17,
                                  &pt), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_INTERNAL);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_sm4_crypt(&env->ctx, 1, XR_SM4_CBC,
                                  (unsigned char *) key.data, NULL, block, 16,
                                  &pt), XR_ERROR);
    assert_int_equal(pt.len, 0);
}


static void
test_sign_string(void **state)
{
    xr_env_t    *env = *state;
    xr_buf_t     b;
    const char  *want;

    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_sign_string(&env->ctx, xr_str_from("POST"),
                                    xr_str_from("/v1/settle"),
                                    xr_str_from("1700000000"),
                                    xr_str_from("n0nce"), "{}", 2, &b),
                     XR_OK);
    want = "POST\n/v1/settle\n1700000000\nn0nce\n"
           "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);

    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_sign_string(&env->ctx, xr_str_from("GET"),
                                    xr_str_from("/"), xr_str_from("1"),
                                    xr_str_from(""), NULL, 0, &b), XR_OK);
    want = "GET\n/\n1\n\n"
           "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);

    assert_int_equal(xr_sign_string(&env->ctx, xr_str_from("GET"),
                                    xr_str_from("/a\nb"), xr_str_from("1"),
                                    xr_str_from("n"), NULL, 0, &b),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_FIELD_FORMAT);
}


/*
 * Zhejiang HMAC-SM3 over timestamp "\n" body, uppercase hex; the expected
 * value from `printf '1700000000\n{"infno":"1101","input":{}}' |
 * openssl mac -digest SM3 -macopt key:zj-test-secret HMAC`.
 */

static void
test_zj_signature(void **state)
{
    xr_env_t    *env = *state;
    xr_buf_t     b;
    xr_str_t     ts = xr_string("1700000000");
    const char  *body, *want, *lower, *secret;

    body = "{\"infno\":\"1101\",\"input\":{}}";
    secret = "zj-test-secret";
    want = "4A842653697962A75F14EE7FC970C3E6A9E951D3876069BD951C50EF84DC65C4";
    lower = "4a842653697962a75f14ee7fc970c3e6a9e951d3876069bd951c50ef84dc65c4";

    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_zj_sign_string(&env->ctx, ts, body, strlen(body),
                                       &b), XR_OK);
    assert_int_equal(b.len, 11 + strlen(body));
    assert_memory_equal(b.data, "1700000000\n{", 12);

    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_zj_signature(&env->ctx, secret, strlen(secret), ts,
                                     body, strlen(body), &b), XR_OK);
    assert_int_equal(b.len, 64);
    assert_memory_equal(b.data, want, 64);

    assert_int_equal(xr_zj_verify(&env->ctx, secret, strlen(secret), ts,
                                  body, strlen(body), want, 64), XR_OK);
    assert_int_equal(xr_zj_verify(&env->ctx, secret, strlen(secret), ts,
                                  body, strlen(body), lower, 64), XR_OK);
    assert_int_equal(xr_zj_verify(&env->ctx, "zj-test-secreT",
                                  strlen(secret), ts, body, strlen(body),
                                  want, 64), XR_DECLINED);
    assert_int_equal(xr_zj_verify(&env->ctx, secret, strlen(secret),
                                  xr_str_from("1700000001"), body,
                                  strlen(body), want, 64), XR_DECLINED);
    assert_int_equal(env->ctx.err, XR_E_NONE);

    assert_int_equal(xr_zj_verify(&env->ctx, secret, strlen(secret), ts,
                                  body, strlen(body), want, 63), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_BAD_SIGNATURE);
    xr_ctx_clear(&env->ctx);
    assert_int_equal(xr_zj_verify(&env->ctx, secret, strlen(secret), ts,
                                  body, strlen(body),
                                  "ZZ842653697962A75F14EE7FC970C3E6"
                                  "A9E951D3876069BD951C50EF84DC65C4", 64),
                     XR_ERROR);
}


/* NHSA mobile payment: the shape of the spec's "加签报文示例" */

static void
test_nhsa_sign_string(void **state)
{
    xr_env_t    *env = *state;
    xr_buf_t     b;
    const char  *want;

    static const xr_sign_param_t  params[] = {
        { xr_string("version"), xr_string("2.0.1") },
        { xr_string("timestamp"), xr_string("20200207175759") },
        { xr_string("signType"), xr_string("SM2") },
        { xr_string("signData"), xr_string("URVQ...5w==") },
        { xr_string("encType"), xr_string("SM4") },
        { xr_string("encData"), xr_string("ABCDEF") },
        { xr_string("extra"), xr_string("{}") },
        { xr_string("data"), xr_string("{\"appId\":\"A1\",\"idNo\":\"X\"}") },
        { xr_string("appId"), xr_string("A1") },
    };

    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_nhsa_sign_string(&env->ctx, params,
                                         sizeof(params) / sizeof(params[0]),
                                         xr_str_from("S3CRET"), &b), XR_OK);
    want = "appId=A1&data={\"appId\":\"A1\",\"idNo\":\"X\"}&encType=SM4"
           "&signType=SM2&timestamp=20200207175759&version=2.0.1&key=S3CRET";
    assert_int_equal(b.len, strlen(want));
    assert_memory_equal(b.data, want, b.len);

    /* ASCII order: upper case before lower case, prefixes first */
    {
        static const xr_sign_param_t  p2[] = {
            { xr_string("ab"), xr_string("3") },
            { xr_string("a"), xr_string("2") },
            { xr_string("B"), xr_string("1") },
        };

        xr_buf_init(&b, env->pool, 0);
        assert_int_equal(xr_nhsa_sign_string(&env->ctx, p2, 3,
                                             xr_str_from(""), &b), XR_OK);
        assert_int_equal(b.len, 12);
        assert_memory_equal(b.data, "B=1&a=2&ab=3", 12);
    }

    {
        static const xr_sign_param_t  dup[] = {
            { xr_string("a"), xr_string("1") },
            { xr_string("a"), xr_string("2") },
        };

        xr_buf_init(&b, env->pool, 0);
        assert_int_equal(xr_nhsa_sign_string(&env->ctx, dup, 2,
                                             xr_str_from(""), &b), XR_ERROR);
        assert_int_equal(env->ctx.err, XR_E_SYNTAX);
    }
}


/* Nonces: never the same twice, and all of the bytes asked for written. */
static void
test_random(void **state)
{
    unsigned char  a[32], b[32], z[32];

    (void) state;

    memset(a, 0, sizeof(a));
    memset(b, 0, sizeof(b));
    memset(z, 0, sizeof(z));

    assert_int_equal(xr_random(a, sizeof(a)), XR_OK);
    assert_int_equal(xr_random(b, sizeof(b)), XR_OK);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, z, sizeof(a));
    assert_int_equal(xr_random(a, 0), XR_OK);
    assert_int_equal(xr_random(a, 65537), XR_ERROR);
}


static int
group_teardown(void **state)
{
    (void) state;

    xr_crypto_cleanup();
    return 0;
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_sm3_vectors),
        cmocka_unit_test(test_sha256_vectors),
        cmocka_unit_test(test_hmac_sha256_rfc4231),
        xr_env_test(test_hmac_sm3),
        cmocka_unit_test(test_crypto_equal),
        cmocka_unit_test(test_random),
        xr_env_test(test_base64),
        xr_env_test(test_hex_decode),
        xr_env_test(test_key_load),
        xr_env_test(test_sm2_standard_vector),
        xr_env_test(test_sm2_openssl_to_xr),
        xr_env_test(test_sm2_xr_to_openssl),
        xr_env_test(test_sm2_refusals),
        xr_env_test(test_sm2_sample_signdata),
        xr_env_test(test_ecdsa),
        xr_env_test(test_key_id_and_pem),
        xr_env_test(test_sm4_standard),
        xr_env_test(test_sm4_modes),
        xr_env_test(test_sm4_bad_padding),
        xr_env_test(test_sign_string),
        xr_env_test(test_zj_signature),
        xr_env_test(test_nhsa_sign_string),
    };

    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
