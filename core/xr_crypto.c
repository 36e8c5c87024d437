/*
 * Digests, HMAC, SM2, ECDSA and SM4 through OpenSSL 3's EVP interface
 * and the default provider; Base64, hex and the strings to sign by hand.
 */

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>

#include "xr_crypto.h"


struct xr_key_s {
    EVP_PKEY       *pkey;           /* NULL once freed */
    unsigned        sm2:1;
    unsigned        private:1;
};


static const EVP_MD *xr_md(xr_digest_e alg);
static const EVP_CIPHER *xr_sm4_cipher(xr_sm4_mode_e mode);
static int xr_crypto_fail(xr_ctx_t *ctx, xr_err_e err, const char *what);
static int xr_hmac_parts(xr_digest_e alg, const void *key, size_t keylen,
    const xr_str_t *parts, size_t nparts, unsigned char *out, size_t *outlen);
static int xr_sm2_check_key(xr_ctx_t *ctx, const xr_key_t *key, int sign);
static EVP_MD_CTX *xr_sm2_md_ctx(xr_ctx_t *ctx, const xr_key_t *key,
    const char *id, size_t idlen, int sign, EVP_PKEY_CTX **pctxp);
static ECDSA_SIG *xr_sm2_der_parse(const unsigned char *der, size_t len);
static int xr_sm2_raw_der(const unsigned char *raw, unsigned char *der,
    size_t *derlen);
static int xr_has_newline(xr_str_t s);
static int xr_sign_param_cmp(const void *a, const void *b);


/*
 * The process-wide algorithm caches (see xr_crypto.h on threads).  Indexed
 * by xr_digest_e and xr_sm4_mode_e; the NOPAD modes share their cipher.
 */
static const char  *xr_md_names[XR_DIGEST_LAST] = { "SHA256", "SM3" };
static EVP_MD      *xr_mds[XR_DIGEST_LAST];
static EVP_MD_CTX  *xr_md_ctxs[XR_DIGEST_LAST];
static EVP_MAC     *xr_hmac_mac;
static EVP_CIPHER  *xr_sm4_ecb;
static EVP_CIPHER  *xr_sm4_cbc;

static const unsigned char  xr_sm2_default_id[] = XR_SM2_DEFAULT_ID;

#define XR_SM4_CHUNK  4096


/* HMAC, fetched once per process like the digests */
static EVP_MAC *
xr_hmac_impl(void)
{
    if (xr_hmac_mac == NULL) {
        xr_hmac_mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        if (xr_hmac_mac == NULL) {
            ERR_clear_error();
        }
    }
    return xr_hmac_mac;
}


int
xr_crypto_init(void)
{
    xr_digest_e  alg;

    for (alg = 0; alg < XR_DIGEST_LAST; alg++) {
        if (xr_md(alg) == NULL) {
            return XR_ERROR;
        }
    }

    if (xr_sm4_cipher(XR_SM4_ECB) == NULL
        || xr_sm4_cipher(XR_SM4_CBC) == NULL)
    {
        return XR_ERROR;
    }

    if (xr_hmac_impl() == NULL) {
        return XR_ERROR;
    }

    return XR_OK;
}


void
xr_crypto_cleanup(void)
{
    xr_digest_e  alg;

    for (alg = 0; alg < XR_DIGEST_LAST; alg++) {
        EVP_MD_CTX_free(xr_md_ctxs[alg]);
        xr_md_ctxs[alg] = NULL;
        EVP_MD_free(xr_mds[alg]);
        xr_mds[alg] = NULL;
    }

    EVP_MAC_free(xr_hmac_mac);
    xr_hmac_mac = NULL;
    EVP_CIPHER_free(xr_sm4_ecb);
    xr_sm4_ecb = NULL;
    EVP_CIPHER_free(xr_sm4_cbc);
    xr_sm4_cbc = NULL;
}


static const EVP_MD *
xr_md(xr_digest_e alg)
{
    if ((unsigned) alg >= XR_DIGEST_LAST) {
        return NULL;
    }

    if (xr_mds[alg] == NULL) {
        xr_mds[alg] = EVP_MD_fetch(NULL, xr_md_names[alg], NULL);
        if (xr_mds[alg] == NULL) {
            ERR_clear_error();
        }
    }

    return xr_mds[alg];
}


static const EVP_CIPHER *
xr_sm4_cipher(xr_sm4_mode_e mode)
{
    EVP_CIPHER  **c;

    switch (mode) {
    case XR_SM4_ECB:
    case XR_SM4_ECB_NOPAD:
        c = &xr_sm4_ecb;
        break;
    case XR_SM4_CBC:
    case XR_SM4_CBC_NOPAD:
        c = &xr_sm4_cbc;
        break;
    default:
        return NULL;
    }

    if (*c == NULL) {
        *c = EVP_CIPHER_fetch(NULL, c == &xr_sm4_ecb ? "SM4-ECB" : "SM4-CBC",
                              NULL);
        if (*c == NULL) {
            ERR_clear_error();
        }
    }

    return *c;
}


/* Records the failure with OpenSSL's reason, if any, and empties its queue. */

static int
xr_crypto_fail(xr_ctx_t *ctx, xr_err_e err, const char *what)
{
    unsigned long   e;
    const char     *reason;

    e = ERR_peek_last_error();
    reason = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();

    if (reason) {
        return xr_fail(ctx, err, NULL, "%s: %s", what, reason);
    }
    return xr_fail(ctx, err, NULL, "%s", what);
}


int
xr_sha256(const void *data, size_t len, unsigned char out[32])
{
    size_t  n;

    if (xr_digest(XR_DIGEST_SHA256, data, len, out, &n) != XR_OK
        || n != XR_SHA256_LEN)
    {
        return XR_ERROR;
    }
    return XR_OK;
}


int
xr_digest(xr_digest_e alg, const void *data, size_t len,
    unsigned char *out, size_t *outlen)
{
    unsigned int   n;
    EVP_MD_CTX    *mctx;
    const EVP_MD  *md;

    md = xr_md(alg);
    if (md == NULL) {
        return XR_ERROR;
    }

    /*
     * One context per digest for the process: EVP_Digest() would allocate
     * and free one, and the provider's state in it, on every call.
     */
    mctx = xr_md_ctxs[alg];
    if (mctx == NULL) {
        mctx = EVP_MD_CTX_new();
        if (mctx == NULL) {
            ERR_clear_error();
            return XR_ERROR;
        }
        xr_md_ctxs[alg] = mctx;
    }

    /* EVP_DigestUpdate() is fine with a NULL pointer only when len is 0 */
    if (data == NULL) {
        data = "";
        len = 0;
    }

    n = 0;
    if (EVP_DigestInit_ex2(mctx, md, NULL) != 1
        || EVP_DigestUpdate(mctx, data, len) != 1
        || EVP_DigestFinal_ex(mctx, out, &n) != 1)
    {
        ERR_clear_error();
        return XR_ERROR;
    }

    *outlen = n;
    return XR_OK;
}


int
xr_hmac(xr_digest_e alg, const void *key, size_t keylen,
    const void *data, size_t len, unsigned char *out, size_t *outlen)
{
    xr_str_t  part;

    part.data = data;
    part.len = len;
    return xr_hmac_parts(alg, key, keylen, &part, 1, out, outlen);
}


/* HMAC over the concatenation of n parts, without copying them together. */

static int
xr_hmac_parts(xr_digest_e alg, const void *key, size_t keylen,
    const xr_str_t *parts, size_t nparts, unsigned char *out, size_t *outlen)
{
    int            rc;
    size_t         n, i;
    EVP_MAC_CTX   *mctx;
    OSSL_PARAM     params[2];

    if ((unsigned) alg >= XR_DIGEST_LAST) {
        return XR_ERROR;
    }

    if (xr_hmac_impl() == NULL) {
        return XR_ERROR;
    }

    /* a NULL key means "keep the previous key" to EVP_MAC_init() */
    if (key == NULL) {
        key = "";
        keylen = 0;
    }

    mctx = EVP_MAC_CTX_new(xr_hmac_mac);
    if (mctx == NULL) {
        ERR_clear_error();
        return XR_ERROR;
    }

    params[0] = OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                                 (char *) xr_md_names[alg], 0);
    params[1] = OSSL_PARAM_construct_end();

    rc = EVP_MAC_init(mctx, key, keylen, params) == 1;

    for (i = 0; rc && i < nparts; i++) {
        if (parts[i].len) {
            rc = EVP_MAC_update(mctx, (const unsigned char *) parts[i].data,
                                parts[i].len) == 1;
        }
    }

    n = 0;
    rc = rc && EVP_MAC_final(mctx, out, &n, XR_DIGEST_MAX_LEN) == 1;

    EVP_MAC_CTX_free(mctx);

    if (!rc) {
        ERR_clear_error();
        return XR_ERROR;
    }

    *outlen = n;
    return XR_OK;
}


int
xr_crypto_equal(const void *a, const void *b, size_t len)
{
    return CRYPTO_memcmp(a, b, len) == 0;
}


int
xr_random(void *out, size_t len)
{
    if (len > 65536) {
        return XR_ERROR;
    }

    return (len == 0 || RAND_bytes(out, (int) len) == 1) ? XR_OK : XR_ERROR;
}


static void
xr_hex_digits(const char *digits, const unsigned char *in, size_t len,
    char *out)
{
    size_t  i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
}


void
xr_hex(const unsigned char *in, size_t len, char *out)
{
    xr_hex_digits("0123456789abcdef", in, len, out);
}


void
xr_hex_upper(const unsigned char *in, size_t len, char *out)
{
    xr_hex_digits("0123456789ABCDEF", in, len, out);
}


static int
xr_hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    c |= 0x20;
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    return -1;
}


int
xr_hex_decode(xr_ctx_t *ctx, const char *in, size_t len, xr_buf_t *out)
{
    int     hi, lo;
    size_t  i;

    if (len % 2) {
        return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                       "hex text of odd length %zu", len);
    }

    for (i = 0; i < len; i += 2) {
        hi = xr_hex_value((unsigned char) in[i]);
        lo = xr_hex_value((unsigned char) in[i + 1]);
        if (hi < 0 || lo < 0) {
            return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                           "bad hex character at offset %zu",
                           hi < 0 ? i : i + 1);
        }
        xr_buf_addc(out, (char) (hi << 4 | lo));
    }

    if (out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


static const char  xr_b64_digits[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";


int
xr_base64_encode(const void *in, size_t len, xr_buf_t *out)
{
    char                 q[4];
    uint32_t             v;
    size_t               i;
    const unsigned char *p = in;

    for (i = 0; i + 3 <= len; i += 3) {
        v = (uint32_t) p[i] << 16 | (uint32_t) p[i + 1] << 8 | p[i + 2];
        q[0] = xr_b64_digits[v >> 18];
        q[1] = xr_b64_digits[(v >> 12) & 0x3f];
        q[2] = xr_b64_digits[(v >> 6) & 0x3f];
        q[3] = xr_b64_digits[v & 0x3f];
        xr_buf_add(out, q, 4);
    }

    if (i < len) {
        v = (uint32_t) p[i] << 16;
        if (i + 1 < len) {
            v |= (uint32_t) p[i + 1] << 8;
        }
        q[0] = xr_b64_digits[v >> 18];
        q[1] = xr_b64_digits[(v >> 12) & 0x3f];
        q[2] = i + 1 < len ? xr_b64_digits[(v >> 6) & 0x3f] : '=';
        q[3] = '=';
        xr_buf_add(out, q, 4);
    }

    return out->failed ? XR_ERROR : XR_OK;
}


static int
xr_b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '+') {
        return 62;
    }
    if (c == '/') {
        return 63;
    }
    return -1;
}


int
xr_base64_decode(xr_ctx_t *ctx, const char *in, size_t len, xr_buf_t *out)
{
    int       d;
    char      bytes[3];
    size_t    i, j, pad;
    uint32_t  v;

    if (len % 4) {
        return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                       "Base64 text of length %zu, not a multiple of 4", len);
    }

    pad = 0;
    if (len && in[len - 1] == '=') {
        pad = in[len - 2] == '=' ? 2 : 1;
    }

    for (i = 0; i < len; i += 4) {
        v = 0;
        for (j = 0; j < 4; j++) {
            if (i + j >= len - pad) {
                v <<= 6;
                continue;
            }
            d = xr_b64_value((unsigned char) in[i + j]);
            if (d < 0) {
                return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                               "bad Base64 character at offset %zu", i + j);
            }
            v = v << 6 | (uint32_t) d;
        }

        bytes[0] = (char) (v >> 16);
        bytes[1] = (char) (v >> 8);
        bytes[2] = (char) v;

        if (i + 4 < len) {
            xr_buf_add(out, bytes, 3);
            continue;
        }

        /* the last quantum: its unused bits must be zero (RFC 4648 3.5) */
        if ((pad == 1 && (v & 0xff)) || (pad == 2 && (v & 0xffff))) {
            return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                           "Base64 text has non-zero bits before padding");
        }
        xr_buf_add(out, bytes, 3 - pad);
    }

    if (out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/* Keys */

/* Never prompt on the terminal for an encrypted key: refuse it. */

static int
xr_key_no_password(char *buf, int size, int rwflag, void *data)
{
    (void) buf;
    (void) size;
    (void) rwflag;
    (void) data;

    return -1;
}


static int
xr_text_has(const char *text, size_t len, const char *needle)
{
    size_t  i, n;

    n = strlen(needle);
    for (i = 0; i + n <= len; i++) {
        if (memcmp(text + i, needle, n) == 0) {
            return 1;
        }
    }
    return 0;
}


xr_key_t *
xr_key_load(xr_ctx_t *ctx, const char *pem, size_t len)
{
    int         private;
    char        group[64];
    BIO        *bio;
    size_t      glen;
    xr_key_t   *key;
    EVP_PKEY   *pkey;

    if (len > 64 * 1024) {
        xr_fail(ctx, XR_E_CONFIG, NULL, "key text of %zu bytes", len);
        return NULL;
    }

    key = xr_pcalloc(ctx->pool, sizeof(xr_key_t));
    if (key == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }

    bio = BIO_new_mem_buf(pem, (int) len);
    if (bio == NULL) {
        xr_crypto_fail(ctx, XR_E_NOMEM, "BIO_new_mem_buf");
        return NULL;
    }

    /* the PEM label says which reader, so its error is the one reported */
    private = xr_text_has(pem, len, "PRIVATE KEY-----");
    if (private) {
        pkey = PEM_read_bio_PrivateKey_ex(bio, NULL, xr_key_no_password,
                                          NULL, NULL, NULL);
    } else {
        pkey = PEM_read_bio_PUBKEY_ex(bio, NULL, xr_key_no_password, NULL,
                                      NULL, NULL);
    }
    BIO_free(bio);

    if (pkey == NULL) {
        xr_crypto_fail(ctx, XR_E_CONFIG, private
                       ? "cannot read the PEM private key"
                       : "cannot read the PEM public key");
        return NULL;
    }

    glen = 0;
    group[0] = '\0';
    if (EVP_PKEY_is_a(pkey, "SM2") || EVP_PKEY_is_a(pkey, "EC")) {
        if (EVP_PKEY_get_group_name(pkey, group, sizeof(group), &glen) != 1)
        {
            group[0] = '\0';
        }
    }

    /*
     * OpenSSL 3.0 gives keys on the SM2 curve the SM2 type whichever PEM
     * label carried them (PRIVATE KEY, EC PRIVATE KEY, SM2 PRIVATE KEY);
     * an "EC" key on the SM2 curve would sign ECDSA, so it is refused
     * rather than guessed at.
     */
    if (EVP_PKEY_is_a(pkey, "SM2") && strcmp(group, "SM2") == 0) {
        key->sm2 = 1;

    } else if (!(EVP_PKEY_is_a(pkey, "EC")
                 && strcmp(group, "prime256v1") == 0))
    {
        xr_fail(ctx, XR_E_CONFIG, NULL,
                "unsupported key (%s%s%s): SM2 or EC P-256 expected",
                EVP_PKEY_get0_type_name(pkey) ? EVP_PKEY_get0_type_name(pkey)
                                              : "unknown",
                group[0] ? ", curve " : "", group);
        EVP_PKEY_free(pkey);
        return NULL;
    }

    ERR_clear_error();
    key->pkey = pkey;
    key->private = private != 0;
    return key;
}


void
xr_key_free(xr_key_t *key)
{
    if (key == NULL) {
        return;
    }
    EVP_PKEY_free(key->pkey);
    key->pkey = NULL;
}


int
xr_key_is_sm2(const xr_key_t *key)
{
    return key != NULL && key->pkey != NULL && key->sm2;
}


int
xr_key_is_private(const xr_key_t *key)
{
    return key != NULL && key->pkey != NULL && key->private;
}


/* SM2 */

static int
xr_sm2_check_key(xr_ctx_t *ctx, const xr_key_t *key, int sign)
{
    if (!xr_key_is_sm2(key)) {
        return xr_fail(ctx, XR_E_CONFIG, NULL, "SM2 key expected");
    }
    if (sign && !key->private) {
        return xr_fail(ctx, XR_E_CONFIG, NULL,
                       "SM2 signing needs a private key");
    }
    return XR_OK;
}


/*
 * The digest context of one SM3withSM2 operation: the ID must be on the
 * key context before the init, which computes Z from it.  The key context
 * stays the caller's (*pctxp) to free after the digest context.
 */

static EVP_MD_CTX *
xr_sm2_md_ctx(xr_ctx_t *ctx, const xr_key_t *key, const char *id,
    size_t idlen, int sign, EVP_PKEY_CTX **pctxp)
{
    int            rc;
    EVP_MD_CTX    *mctx;
    EVP_PKEY_CTX  *pctx;
    const EVP_MD  *sm3;

    *pctxp = NULL;

    sm3 = xr_md(XR_DIGEST_SM3);
    if (sm3 == NULL) {
        xr_fail(ctx, XR_E_INTERNAL, NULL, "SM3 is not available");
        return NULL;
    }

    if (id == NULL) {
        id = (const char *) xr_sm2_default_id;
        idlen = XR_SM2_DEFAULT_ID_LEN;
    }

    /* ENTL, the ID's length in bits, is two bytes */
    if (idlen > 8191) {
        xr_fail(ctx, XR_E_CONFIG, NULL, "SM2 ID of %zu bytes", idlen);
        return NULL;
    }

    mctx = EVP_MD_CTX_new();
    pctx = EVP_PKEY_CTX_new_from_pkey(NULL, key->pkey, NULL);
    if (mctx == NULL || pctx == NULL) {
        EVP_MD_CTX_free(mctx);
        EVP_PKEY_CTX_free(pctx);
        xr_crypto_fail(ctx, XR_E_NOMEM, "SM2 context");
        return NULL;
    }

    if (EVP_PKEY_CTX_set1_id(pctx, id, (int) idlen) != 1) {
        goto failed;
    }

    EVP_MD_CTX_set_pkey_ctx(mctx, pctx);

    if (sign) {
        rc = EVP_DigestSignInit(mctx, NULL, sm3, NULL, key->pkey);
    } else {
        rc = EVP_DigestVerifyInit(mctx, NULL, sm3, NULL, key->pkey);
    }
    if (rc != 1) {
        goto failed;
    }

    *pctxp = pctx;
    return mctx;

failed:

    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);
    xr_crypto_fail(ctx, XR_E_INTERNAL, "SM2 initialisation");
    return NULL;
}


int
xr_sm2_sign(xr_ctx_t *ctx, const xr_key_t *key, const char *id,
    size_t idlen, const void *data, size_t len, xr_buf_t *sig_der)
{
    int             rc;
    size_t          n;
    EVP_MD_CTX     *mctx;
    EVP_PKEY_CTX   *pctx;
    unsigned char   sig[XR_SM2_MAX_DER_LEN + 8];

    if (xr_sm2_check_key(ctx, key, 1) != XR_OK) {
        return XR_ERROR;
    }

    mctx = xr_sm2_md_ctx(ctx, key, id, idlen, 1, &pctx);
    if (mctx == NULL) {
        return XR_ERROR;
    }

    if (data == NULL) {
        data = "";
        len = 0;
    }

    n = sizeof(sig);
    rc = EVP_DigestSign(mctx, sig, &n, data, len);

    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);

    if (rc != 1 || n > XR_SM2_MAX_DER_LEN) {
        return xr_crypto_fail(ctx, XR_E_INTERNAL, "SM2 signing");
    }

    if (xr_buf_add(sig_der, sig, n) != XR_OK) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/*
 * Strict DER: one SEQUENCE of two INTEGERs, nothing after it, and the
 * encoding OpenSSL writes back identical (no long forms, no leading zero
 * bytes), so that one signature has one accepted text.
 */

static ECDSA_SIG *
xr_sm2_der_parse(const unsigned char *der, size_t len)
{
    int                   n;
    ECDSA_SIG            *es;
    unsigned char        *back;
    const unsigned char  *p;

    if (len < 8 || len > XR_SM2_MAX_DER_LEN || der[0] != 0x30) {
        return NULL;
    }

    p = der;
    es = d2i_ECDSA_SIG(NULL, &p, (long) len);
    if (es == NULL || p != der + len) {
        ECDSA_SIG_free(es);
        ERR_clear_error();
        return NULL;
    }

    back = NULL;
    n = i2d_ECDSA_SIG(es, &back);
    if (n != (int) len || memcmp(back, der, len) != 0) {
        OPENSSL_free(back);
        ECDSA_SIG_free(es);
        ERR_clear_error();
        return NULL;
    }

    OPENSSL_free(back);
    return es;
}


/* r || s (32 bytes each) to DER; der holds XR_SM2_MAX_DER_LEN bytes. */

static int
xr_sm2_raw_der(const unsigned char *raw, unsigned char *der, size_t *derlen)
{
    int             n;
    BIGNUM         *r, *s;
    ECDSA_SIG      *es;
    unsigned char  *p;

    es = ECDSA_SIG_new();
    r = BN_bin2bn(raw, 32, NULL);
    s = BN_bin2bn(raw + 32, 32, NULL);
    if (es == NULL || r == NULL || s == NULL || !ECDSA_SIG_set0(es, r, s)) {
        ECDSA_SIG_free(es);
        BN_free(r);
        BN_free(s);
        ERR_clear_error();
        return XR_ERROR;
    }

    /* at most 2 + 2 * (2 + 33) = 72 bytes: i2d cannot overrun der */
    p = der;
    n = i2d_ECDSA_SIG(es, &p);
    ECDSA_SIG_free(es);

    if (n <= 0 || n > XR_SM2_MAX_DER_LEN) {
        ERR_clear_error();
        return XR_ERROR;
    }

    *derlen = (size_t) n;
    return XR_OK;
}


int
xr_sm2_verify(xr_ctx_t *ctx, const xr_key_t *key, const char *id,
    size_t idlen, const void *data, size_t len, const void *sig,
    size_t siglen)
{
    int                   rc;
    size_t                derlen;
    ECDSA_SIG            *es;
    EVP_MD_CTX           *mctx;
    EVP_PKEY_CTX         *pctx;
    unsigned char         der[XR_SM2_MAX_DER_LEN];
    const unsigned char  *s;

    if (xr_sm2_check_key(ctx, key, 0) != XR_OK) {
        return XR_ERROR;
    }

    s = sig;
    es = xr_sm2_der_parse(s, siglen);

    if (es != NULL) {
        ECDSA_SIG_free(es);

    } else if (siglen == XR_SM2_RAW_SIG_LEN) {
        if (xr_sm2_raw_der(s, der, &derlen) != XR_OK) {
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "SM2 signature conversion failed");
        }
        s = der;
        siglen = derlen;

    } else {
        return xr_fail(ctx, XR_E_BAD_SIGNATURE, NULL,
                       "SM2 signature of %zu bytes is neither DER nor "
                       "64-byte r||s", siglen);
    }

    mctx = xr_sm2_md_ctx(ctx, key, id, idlen, 0, &pctx);
    if (mctx == NULL) {
        return XR_ERROR;
    }

    if (data == NULL) {
        data = "";
        len = 0;
    }

    rc = EVP_DigestVerify(mctx, s, siglen, data, len);

    EVP_MD_CTX_free(mctx);
    EVP_PKEY_CTX_free(pctx);

    if (rc == 1) {
        return XR_OK;
    }

    /*
     * 0: it does not verify.  The text was checked above, so a negative
     * answer is the library failing, not the signature.
     */
    if (rc == 0) {
        ERR_clear_error();
        return XR_DECLINED;
    }

    return xr_crypto_fail(ctx, XR_E_INTERNAL, "SM2 verification");
}


int
xr_sm2_sig_to_raw(xr_ctx_t *ctx, const void *der, size_t len, xr_buf_t *out)
{
    unsigned char   raw[XR_SM2_RAW_SIG_LEN];
    ECDSA_SIG      *es;
    const BIGNUM   *r, *s;

    es = xr_sm2_der_parse(der, len);
    if (es == NULL) {
        return xr_fail(ctx, XR_E_BAD_SIGNATURE, NULL,
                       "SM2 signature is not DER");
    }

    ECDSA_SIG_get0(es, &r, &s);

    if (BN_bn2binpad(r, raw, 32) != 32
        || BN_bn2binpad(s, raw + 32, 32) != 32)
    {
        ECDSA_SIG_free(es);
        ERR_clear_error();
        return xr_fail(ctx, XR_E_BAD_SIGNATURE, NULL,
                       "SM2 signature: r or s longer than 32 bytes");
    }

    ECDSA_SIG_free(es);

    if (xr_buf_add(out, raw, sizeof(raw)) != XR_OK) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


int
xr_sm2_sig_to_der(xr_ctx_t *ctx, const void *raw, size_t len, xr_buf_t *out)
{
    size_t          n;
    unsigned char   der[XR_SM2_MAX_DER_LEN];

    if (len != XR_SM2_RAW_SIG_LEN) {
        return xr_fail(ctx, XR_E_BAD_SIGNATURE, NULL,
                       "SM2 r||s signature of %zu bytes, 64 expected", len);
    }

    if (xr_sm2_raw_der(raw, der, &n) != XR_OK) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "SM2 signature conversion failed");
    }

    if (xr_buf_add(out, der, n) != XR_OK) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/* ECDSA P-256 with SHA-256 */

static int
xr_ecdsa_check_key(xr_ctx_t *ctx, const xr_key_t *key, int sign)
{
    if (key == NULL || key->pkey == NULL || key->sm2) {
        return xr_fail(ctx, XR_E_CONFIG, NULL, "EC P-256 key expected");
    }
    if (sign && !key->private) {
        return xr_fail(ctx, XR_E_CONFIG, NULL,
                       "ECDSA signing needs a private key");
    }
    return XR_OK;
}


int
xr_ecdsa_sign(xr_ctx_t *ctx, const xr_key_t *key, const void *data,
    size_t len, xr_buf_t *sig_der)
{
    int             rc;
    size_t          n;
    EVP_MD_CTX     *mctx;
    const EVP_MD   *sha256;
    unsigned char   sig[XR_ECDSA_MAX_DER_LEN + 8];

    if (xr_ecdsa_check_key(ctx, key, 1) != XR_OK) {
        return XR_ERROR;
    }

    sha256 = xr_md(XR_DIGEST_SHA256);
    if (sha256 == NULL) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "SHA-256 is not available");
    }

    mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        return xr_crypto_fail(ctx, XR_E_NOMEM, "ECDSA context");
    }

    if (data == NULL) {
        data = "";
        len = 0;
    }

    n = sizeof(sig);
    rc = EVP_DigestSignInit(mctx, NULL, sha256, NULL, key->pkey) == 1
         && EVP_DigestSign(mctx, sig, &n, data, len) == 1;

    EVP_MD_CTX_free(mctx);

    if (!rc || n > XR_ECDSA_MAX_DER_LEN) {
        return xr_crypto_fail(ctx, XR_E_INTERNAL, "ECDSA signing");
    }

    if (xr_buf_add(sig_der, sig, n) != XR_OK) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


int
xr_ecdsa_verify(xr_ctx_t *ctx, const xr_key_t *key, const void *data,
    size_t len, const void *sig, size_t siglen)
{
    int            rc;
    ECDSA_SIG     *es;
    EVP_MD_CTX    *mctx;
    const EVP_MD  *sha256;

    if (xr_ecdsa_check_key(ctx, key, 0) != XR_OK) {
        return XR_ERROR;
    }

    /* the same strict DER as SM2's: one signature, one accepted text */
    es = xr_sm2_der_parse(sig, siglen);
    if (es == NULL) {
        return xr_fail(ctx, XR_E_BAD_SIGNATURE, NULL,
                       "ECDSA signature of %zu bytes is not DER", siglen);
    }
    ECDSA_SIG_free(es);

    sha256 = xr_md(XR_DIGEST_SHA256);
    if (sha256 == NULL) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "SHA-256 is not available");
    }

    mctx = EVP_MD_CTX_new();
    if (mctx == NULL) {
        return xr_crypto_fail(ctx, XR_E_NOMEM, "ECDSA context");
    }

    if (data == NULL) {
        data = "";
        len = 0;
    }

    rc = EVP_DigestVerifyInit(mctx, NULL, sha256, NULL, key->pkey);
    if (rc == 1) {
        rc = EVP_DigestVerify(mctx, sig, siglen, data, len);
    } else {
        rc = -1;
    }

    EVP_MD_CTX_free(mctx);

    if (rc == 1) {
        return XR_OK;
    }
    if (rc == 0) {
        ERR_clear_error();
        return XR_DECLINED;
    }
    return xr_crypto_fail(ctx, XR_E_INTERNAL, "ECDSA verification");
}


/* Public halves */

int
xr_key_id(xr_ctx_t *ctx, const xr_key_t *key, unsigned char id[32])
{
    int             n;
    unsigned char  *der;

    if (key == NULL || key->pkey == NULL) {
        return xr_fail(ctx, XR_E_CONFIG, NULL, "no key");
    }

    der = NULL;
    n = i2d_PUBKEY(key->pkey, &der);
    if (n <= 0) {
        return xr_crypto_fail(ctx, XR_E_INTERNAL, "public key encoding");
    }

    n = xr_sha256(der, (size_t) n, id);
    OPENSSL_free(der);

    if (n != XR_OK) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "SHA-256 failed");
    }
    return XR_OK;
}


int
xr_key_public_pem(xr_ctx_t *ctx, const xr_key_t *key, xr_buf_t *out)
{
    BIO    *bio;
    long    n;
    char   *p;

    if (key == NULL || key->pkey == NULL) {
        return xr_fail(ctx, XR_E_CONFIG, NULL, "no key");
    }

    bio = BIO_new(BIO_s_mem());
    if (bio == NULL) {
        return xr_crypto_fail(ctx, XR_E_NOMEM, "BIO_new");
    }

    if (PEM_write_bio_PUBKEY(bio, key->pkey) != 1) {
        BIO_free(bio);
        return xr_crypto_fail(ctx, XR_E_INTERNAL, "public key PEM");
    }

    n = BIO_get_mem_data(bio, &p);
    if (n > 0) {
        xr_buf_add(out, p, (size_t) n);
    }
    BIO_free(bio);

    if (n <= 0 || out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/* SM4 */

int
xr_sm4_crypt(xr_ctx_t *ctx, int encrypt, xr_sm4_mode_e mode,
    const unsigned char key[16], const unsigned char *iv,
    const void *in, size_t len, xr_buf_t *out)
{
    int                   n, pad, cbc;
    size_t                i, chunk, start;
    EVP_CIPHER_CTX       *cctx;
    const EVP_CIPHER     *cipher;
    const unsigned char  *p;
    unsigned char         buf[XR_SM4_CHUNK + XR_SM4_BLOCK_LEN];

    cipher = xr_sm4_cipher(mode);
    if (cipher == NULL) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "SM4 mode %d unavailable",
                       (int) mode);
    }

    cbc = mode == XR_SM4_CBC || mode == XR_SM4_CBC_NOPAD;
    pad = mode == XR_SM4_ECB || mode == XR_SM4_CBC;

    if (cbc && iv == NULL) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "SM4-CBC without an IV");
    }

    if (len % XR_SM4_BLOCK_LEN && (!encrypt || !pad)) {
        return xr_fail(ctx, encrypt ? XR_E_INTERNAL : XR_E_SYNTAX, NULL,
                       "SM4 %s of %zu bytes, not whole blocks",
                       encrypt ? "plaintext" : "ciphertext", len);
    }
    if (!encrypt && pad && len == 0) {
        return xr_fail(ctx, XR_E_SYNTAX, NULL, "SM4 ciphertext is empty");
    }

    cctx = EVP_CIPHER_CTX_new();
    if (cctx == NULL) {
        return xr_crypto_fail(ctx, XR_E_NOMEM, "SM4 context");
    }

    if (EVP_CipherInit_ex2(cctx, cipher, key, cbc ? iv : NULL,
                           encrypt ? 1 : 0, NULL) != 1
        || EVP_CIPHER_CTX_set_padding(cctx, pad) != 1)
    {
        EVP_CIPHER_CTX_free(cctx);
        return xr_crypto_fail(ctx, XR_E_INTERNAL, "SM4 initialisation");
    }

    /* in chunks: EVP takes int lengths, and out grows as it goes */
    start = out->len;
    p = in;
    for (i = 0; i < len; i += chunk) {
        chunk = len - i < XR_SM4_CHUNK ? len - i : XR_SM4_CHUNK;
        n = 0;
        if (EVP_CipherUpdate(cctx, buf, &n, p + i, (int) chunk) != 1) {
            EVP_CIPHER_CTX_free(cctx);
            if (!out->failed) {
                out->len = start;
            }
            return xr_crypto_fail(ctx, XR_E_INTERNAL, "SM4");
        }
        xr_buf_add(out, buf, (size_t) n);
    }

    n = 0;
    if (EVP_CipherFinal_ex(cctx, buf, &n) != 1) {
        EVP_CIPHER_CTX_free(cctx);
        ERR_clear_error();

        /* no plaintext from a message that failed its check */
        if (!out->failed && out->len > start) {
            OPENSSL_cleanse(out->data + start, out->len - start);
            out->len = start;
        }

        return xr_fail(ctx, XR_E_SYNTAX, NULL,
                       "SM4 decryption: bad padding (wrong key or corrupt "
                       "data)");
    }
    xr_buf_add(out, buf, (size_t) n);

    EVP_CIPHER_CTX_free(cctx);

    if (out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/* Strings to sign */

static int
xr_has_newline(xr_str_t s)
{
    return s.len && memchr(s.data, '\n', s.len) != NULL;
}


int
xr_sign_string(xr_ctx_t *ctx, xr_str_t method, xr_str_t path,
    xr_str_t timestamp, xr_str_t nonce, const void *body, size_t bodylen,
    xr_buf_t *out)
{
    char           hex[XR_SHA256_HEX_LEN];
    unsigned char  md[XR_SHA256_LEN];

    if (xr_has_newline(method) || xr_has_newline(path)
        || xr_has_newline(timestamp) || xr_has_newline(nonce))
    {
        return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                       "a newline in a signed request field");
    }

    if (xr_sha256(body, bodylen, md) != XR_OK) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "SHA-256 failed");
    }
    xr_hex(md, sizeof(md), hex);

    xr_buf_add(out, method.data, method.len);
    xr_buf_addc(out, '\n');
    xr_buf_add(out, path.data, path.len);
    xr_buf_addc(out, '\n');
    xr_buf_add(out, timestamp.data, timestamp.len);
    xr_buf_addc(out, '\n');
    xr_buf_add(out, nonce.data, nonce.len);
    xr_buf_addc(out, '\n');
    xr_buf_add(out, hex, sizeof(hex));

    if (out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


int
xr_zj_sign_string(xr_ctx_t *ctx, xr_str_t timestamp, const void *body,
    size_t bodylen, xr_buf_t *out)
{
    xr_buf_add(out, timestamp.data, timestamp.len);
    xr_buf_addc(out, '\n');
    if (bodylen) {
        xr_buf_add(out, body, bodylen);
    }

    if (out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/* The raw HMAC-SM3 of the Zhejiang string, fed in parts: bodies are big. */

static int
xr_zj_mac(xr_ctx_t *ctx, const void *secret, size_t secretlen,
    xr_str_t timestamp, const void *body, size_t bodylen,
    unsigned char mac[XR_SM3_LEN])
{
    size_t    n;
    xr_str_t  parts[3];

    parts[0] = timestamp;
    parts[1].data = "\n";
    parts[1].len = 1;
    parts[2].data = body;
    parts[2].len = bodylen;

    if (xr_hmac_parts(XR_DIGEST_SM3, secret, secretlen, parts, 3, mac, &n)
        != XR_OK || n != XR_SM3_LEN)
    {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "HMAC-SM3 failed");
    }
    return XR_OK;
}


int
xr_zj_signature(xr_ctx_t *ctx, const void *secret, size_t secretlen,
    xr_str_t timestamp, const void *body, size_t bodylen, xr_buf_t *out)
{
    char           hex[2 * XR_SM3_LEN];
    unsigned char  mac[XR_SM3_LEN];

    if (xr_zj_mac(ctx, secret, secretlen, timestamp, body, bodylen, mac)
        != XR_OK)
    {
        return XR_ERROR;
    }

    xr_hex_upper(mac, sizeof(mac), hex);

    if (xr_buf_add(out, hex, sizeof(hex)) != XR_OK) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


int
xr_zj_verify(xr_ctx_t *ctx, const void *secret, size_t secretlen,
    xr_str_t timestamp, const void *body, size_t bodylen, const char *sig,
    size_t siglen)
{
    int            hi, lo;
    size_t         i;
    unsigned char  mac[XR_SM3_LEN], got[XR_SM3_LEN];

    if (siglen != 2 * XR_SM3_LEN) {
        return xr_fail(ctx, XR_E_BAD_SIGNATURE, NULL,
                       "HMAC-SM3 signature of %zu chars, 64 expected",
                       siglen);
    }

    for (i = 0; i < XR_SM3_LEN; i++) {
        hi = xr_hex_value((unsigned char) sig[2 * i]);
        lo = xr_hex_value((unsigned char) sig[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            return xr_fail(ctx, XR_E_BAD_SIGNATURE, NULL,
                           "HMAC-SM3 signature is not hex");
        }
        got[i] = (unsigned char) (hi << 4 | lo);
    }

    if (xr_zj_mac(ctx, secret, secretlen, timestamp, body, bodylen, mac)
        != XR_OK)
    {
        return XR_ERROR;
    }

    return xr_crypto_equal(mac, got, sizeof(mac)) ? XR_OK : XR_DECLINED;
}


static int
xr_sign_param_cmp(const void *a, const void *b)
{
    int                     c;
    const xr_sign_param_t  *x = *(const xr_sign_param_t * const *) a;
    const xr_sign_param_t  *y = *(const xr_sign_param_t * const *) b;

    c = memcmp(x->key.data, y->key.data,
               x->key.len < y->key.len ? x->key.len : y->key.len);
    if (c) {
        return c;
    }
    return (x->key.len > y->key.len) - (x->key.len < y->key.len);
}


int
xr_nhsa_sign_string(xr_ctx_t *ctx, const xr_sign_param_t *params,
    size_t n, xr_str_t app_secret, xr_buf_t *out)
{
    size_t                   i, m;
    const xr_sign_param_t  **sorted;

    sorted = xr_palloc(ctx->pool, (n ? n : 1) * sizeof(*sorted));
    if (sorted == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    /* the signature and the encrypted or free-form parts are not signed */
    m = 0;
    for (i = 0; i < n; i++) {
        if (xr_str_eq(params[i].key, "signData")
            || xr_str_eq(params[i].key, "encData")
            || xr_str_eq(params[i].key, "extra"))
        {
            continue;
        }
        sorted[m++] = &params[i];
    }

    if (m > 1) {
        qsort(sorted, m, sizeof(*sorted), xr_sign_param_cmp);
    }

    for (i = 0; i < m; i++) {
        if (i && xr_sign_param_cmp(&sorted[i - 1], &sorted[i]) == 0) {
            char  q[XR_QUOTE_MAX + 8];

            xr_quote(sorted[i]->key, q, sizeof(q));
            return xr_fail(ctx, XR_E_SYNTAX, NULL,
                           "signed parameter \"%s\" appears twice", q);
        }
        if (i) {
            xr_buf_addc(out, '&');
        }
        xr_buf_add(out, sorted[i]->key.data, sorted[i]->key.len);
        xr_buf_addc(out, '=');
        xr_buf_add(out, sorted[i]->value.data, sorted[i]->value.len);
    }

    if (app_secret.len) {
        xr_buf_add(out, "&key=", 5);
        xr_buf_add(out, app_secret.data, app_secret.len);
    }

    if (out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}
