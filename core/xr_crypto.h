/*
 * Cryptographic primitives for the core: digests (SHA-256, SM3), HMAC,
 * SM2 signatures (SM3withSM2), ECDSA P-256 with SHA-256, key ids, SM4
 * encryption, Base64 and hex, and the strings that the gateway's
 * signature schemes sign.  This is the only core file that includes
 * OpenSSL, so that the rest of the core (and its tests) need not know
 * which library does the work.
 *
 * Conventions:
 *  - Functions without a ctx allocate nothing, write into caller buffers
 *    sized as stated and return XR_OK or XR_ERROR (the library refused: out
 *    of memory or a provider missing); they set no ctx because a caller with
 *    a ctx names the error better itself.
 *  - Functions with a ctx return XR_OK, XR_ERROR with ctx->err and errstr
 *    set, and, where said, XR_DECLINED for "well-formed but does not
 *    verify".  They append to xr_buf_t outputs (never reset them); a buffer
 *    that fails (limit or memory) gives XR_E_NOMEM.
 *  - OpenSSL's error queue is left empty on return: nginx shares it with
 *    its TLS connections, which would otherwise see our stale errors.
 *  - Algorithms are fetched from the default provider once per process and
 *    kept in statics (the fetch is a locked lookup by name; a request should
 *    not pay it), and xr_digest() reuses one digest context per algorithm:
 *    together about 300 ns less per SHA-256 of 128 bytes (500 -> 200 ns).
 *    None of this is thread safe: nginx workers are single-threaded
 *    processes, and so are the tool and the tests.  A threaded caller would
 *    need xr_crypto_init() before its threads and a lock around xr_digest()
 *    and xr_sha256(); the other functions only read the caches after init.
 */

#ifndef XR_CRYPTO_H
#define XR_CRYPTO_H

#include "xr_core.h"

#define XR_SHA256_LEN      32
#define XR_SHA256_HEX_LEN  (2 * XR_SHA256_LEN)
#define XR_SM3_LEN         32
#define XR_DIGEST_MAX_LEN  32           /* the largest digest below */

typedef enum {
    XR_DIGEST_SHA256 = 0,
    XR_DIGEST_SM3,
    XR_DIGEST_LAST
} xr_digest_e;


/*
 * Fetches every algorithm now (digests, HMAC, SM4).  Optional: each is
 * otherwise fetched at first use.  XR_ERROR when the provider lacks one.
 */
int xr_crypto_init(void);
/*
 * Drops the cached algorithms: for process exit (nginx exit_process, the
 * tests, so that leak checkers see nothing).  Later calls fetch again.
 */
void xr_crypto_cleanup(void);


/* Digests */

/* SHA-256 of len bytes at data (data may be NULL when len is 0). */
int xr_sha256(const void *data, size_t len, unsigned char out[32]);

/*
 * Digest of len bytes at data (NULL when len is 0).  out holds at least
 * XR_DIGEST_MAX_LEN bytes; *outlen gets the digest length (32 for both).
 */
int xr_digest(xr_digest_e alg, const void *data, size_t len,
    unsigned char *out, size_t *outlen);

/*
 * HMAC (RFC 2104) with the digest alg: HMAC-SHA256 or HMAC-SM3
 * (GM/T 0042-2015).  key may be NULL when keylen is 0 (an empty key is a
 * valid HMAC key).  out and *outlen as for xr_digest().
 */
int xr_hmac(xr_digest_e alg, const void *key, size_t keylen,
    const void *data, size_t len, unsigned char *out, size_t *outlen);

/*
 * 1 when the len bytes at a and b are equal, else 0, in time that depends
 * on len only: for comparing MACs and tokens an attacker guesses at.
 */
int xr_crypto_equal(const void *a, const void *b, size_t len);

/*
 * len unpredictable bytes from OpenSSL's CSPRNG (nonces, the answers'
 * signature nonces).  XR_ERROR when the generator is not seeded.
 */
int xr_random(void *out, size_t len);


/* Hex and Base64 */

/*
 * Lowercase hex of len bytes: writes exactly 2 * len chars to out, no NUL.
 */
void xr_hex(const unsigned char *in, size_t len, char *out);
/* The same in uppercase (Zhejiang's signatures, sealed encData). */
void xr_hex_upper(const unsigned char *in, size_t len, char *out);

/*
 * Decodes hex (either case, even length, nothing else) and appends the
 * bytes to out.  XR_E_FIELD_FORMAT on a bad character or odd length.
 */
int xr_hex_decode(xr_ctx_t *ctx, const char *in, size_t len, xr_buf_t *out);

/*
 * Base64 (RFC 4648 section 4: "+/" alphabet, '=' padding) of len bytes,
 * appended to out; no line breaks.  XR_ERROR only when out fails.
 */
int xr_base64_encode(const void *in, size_t len, xr_buf_t *out);

/*
 * Strict Base64 decode, appended to out: the "+/" alphabet only, length a
 * multiple of 4, at most two '=' and only at the end, and the unused bits
 * before the padding zero (so each byte string has exactly one accepted
 * text).  No whitespace, no URL-safe alphabet.  XR_E_FIELD_FORMAT
 * otherwise.  An empty input decodes to nothing.
 */
int xr_base64_decode(xr_ctx_t *ctx, const char *in, size_t len,
    xr_buf_t *out);


/* Keys */

typedef struct xr_key_s  xr_key_t;

/*
 * Reads one PEM key from len bytes of text (no NUL needed): a private key
 * ("PRIVATE KEY", PKCS#8, or "EC PRIVATE KEY", unencrypted) or a public
 * key ("PUBLIC KEY", SubjectPublicKeyInfo).  Accepted: SM2 keys (curve
 * SM2, as `openssl genpkey -algorithm SM2` writes them) and EC P-256
 * keys; anything else, encrypted keys included, is XR_E_CONFIG.
 *
 * Ownership: the xr_key_t comes from ctx->pool; the OpenSSL key inside it
 * does not, and xr_pool_t has no cleanup hook, so the caller MUST call
 * xr_key_free() before that pool is destroyed (the nginx module registers
 * it as a cleanup of the pool it passed in).  NULL on error, with ctx set.
 */
xr_key_t *xr_key_load(xr_ctx_t *ctx, const char *pem, size_t len);
/* Frees the OpenSSL key; accepts NULL and a key already freed. */
void xr_key_free(xr_key_t *key);
/* 1 for an SM2 key, 0 otherwise (P-256, NULL, freed). */
int xr_key_is_sm2(const xr_key_t *key);
/* 1 when the key holds the private half (it can sign). */
int xr_key_is_private(const xr_key_t *key);


/* SM2 signatures: SM3withSM2 (GB/T 32918.2-2016, GB/T 35276-2017) */

/*
 * The signer's distinguishing ID that enters Z = SM3(ENTL || ID || a || b
 * || G || P): GB/T 35276-2017 section 7 fixes "1234567812345678" when the
 * parties agree on none.  Pass id NULL to get it.  Beware: OpenSSL 3.0's
 * command line uses an EMPTY ID unless told `-sigopt
 * distid:1234567812345678`, so its signatures verify only with id "" and
 * idlen 0.
 */
#define XR_SM2_DEFAULT_ID      "1234567812345678"
#define XR_SM2_DEFAULT_ID_LEN  16
#define XR_SM2_RAW_SIG_LEN     64       /* r || s, 32 bytes each */
#define XR_SM2_MAX_DER_LEN     72

/*
 * Signs len bytes at data with the private SM2 key and ID (id NULL: the
 * default ID, idlen ignored) and appends the DER signature
 * (SEQUENCE { INTEGER r, INTEGER s }, at most 72 bytes, as `openssl dgst
 * -sm3 -sign` writes) to sig_der.  XR_ERROR: not an SM2 private key
 * (XR_E_CONFIG), the library failed (XR_E_INTERNAL), sig_der failed.
 */
int xr_sm2_sign(xr_ctx_t *ctx, const xr_key_t *key, const char *id,
    size_t idlen, const void *data, size_t len, xr_buf_t *sig_der);

/*
 * Verifies sig (siglen bytes) over data with the SM2 key (public or
 * private) and ID (id NULL: the default ID).  sig is either DER, strictly
 * (what xr_sm2_sign() and OpenSSL write), or raw r || s of exactly 64
 * bytes, big-endian, as the national mobile-payment interface's signData
 * carries it once Base64-decoded.
 *
 * Returns XR_OK when it verifies; XR_DECLINED when the signature is
 * well-formed but does not verify (wrong data, key or ID; r or s out of
 * range); XR_ERROR when it cannot be judged: not an SM2 key (XR_E_CONFIG),
 * sig is neither DER nor 64 bytes (XR_E_BAD_SIGNATURE), the library
 * failed (XR_E_INTERNAL).
 */
int xr_sm2_verify(xr_ctx_t *ctx, const xr_key_t *key, const char *id,
    size_t idlen, const void *data, size_t len, const void *sig,
    size_t siglen);

/*
 * Signature format conversions (no key involved).  xr_sm2_sig_to_raw()
 * appends the 64-byte r || s of a DER signature; xr_sm2_sig_to_der()
 * appends the DER of a 64-byte r || s.  XR_E_BAD_SIGNATURE on input that
 * is not of the form named, or r or s longer than 32 bytes.
 */
int xr_sm2_sig_to_raw(xr_ctx_t *ctx, const void *der, size_t len,
    xr_buf_t *out);
int xr_sm2_sig_to_der(xr_ctx_t *ctx, const void *raw, size_t len,
    xr_buf_t *out);


/* ECDSA on P-256 with SHA-256 (FIPS 186-4): the alternative to SM2 */

#define XR_ECDSA_MAX_DER_LEN  72

/*
 * Signs len bytes at data with the private P-256 key and appends the DER
 * signature (SEQUENCE { INTEGER r, INTEGER s }, at most 72 bytes, as
 * `openssl dgst -sha256 -sign` writes) to sig_der.  XR_ERROR: not a P-256
 * private key (XR_E_CONFIG), the library failed (XR_E_INTERNAL), sig_der
 * failed (XR_E_NOMEM).
 */
int xr_ecdsa_sign(xr_ctx_t *ctx, const xr_key_t *key, const void *data,
    size_t len, xr_buf_t *sig_der);

/*
 * Verifies a DER signature, strictly (the one encoding OpenSSL writes
 * back), over data with the P-256 key (public or private).  XR_OK,
 * XR_DECLINED (well-formed, does not verify), or XR_ERROR: not a P-256 key
 * (XR_E_CONFIG), sig not strict DER (XR_E_BAD_SIGNATURE), the library
 * failed (XR_E_INTERNAL).
 */
int xr_ecdsa_verify(xr_ctx_t *ctx, const xr_key_t *key, const void *data,
    size_t len, const void *sig, size_t siglen);


/* Public halves */

#define XR_KEY_ID_LEN  XR_SHA256_LEN

/*
 * The key's id: SHA-256 of the DER SubjectPublicKeyInfo of its public
 * half, so that the same id comes from the private and the public PEM and
 * from `openssl pkey -pubout -outform DER | sha256sum`.
 */
int xr_key_id(xr_ctx_t *ctx, const xr_key_t *key,
    unsigned char id[XR_KEY_ID_LEN]);

/* Appends the public half as PEM ("PUBLIC KEY", SubjectPublicKeyInfo). */
int xr_key_public_pem(xr_ctx_t *ctx, const xr_key_t *key, xr_buf_t *out);


/* SM4 (GB/T 32907-2016), 128-bit key and block */

#define XR_SM4_KEY_LEN    16
#define XR_SM4_BLOCK_LEN  16

typedef enum {
    XR_SM4_ECB = 0,     /* PKCS#7 padding */
    XR_SM4_CBC,         /* PKCS#7 padding, iv of 16 bytes */
    XR_SM4_ECB_NOPAD,   /* len a multiple of 16, output as long */
    XR_SM4_CBC_NOPAD
} xr_sm4_mode_e;

/*
 * Encrypts (encrypt 1) or decrypts (0) len bytes at in and appends the
 * result to out.  iv: 16 bytes for the CBC modes, ignored (may be NULL)
 * for ECB.  With padding, encryption always adds 1..16 bytes and
 * decryption checks and strips them.
 *
 * XR_E_SYNTAX when decrypting input that is not a whole number of blocks
 * or whose padding is wrong (wrong key, corrupt or cut data); XR_E_INTERNAL
 * for the NOPAD modes given a partial block to encrypt.  Padding errors
 * are told apart from later failures only by the caller: with CBC and no
 * MAC, a caller that answers them differently is a padding oracle.
 */
int xr_sm4_crypt(xr_ctx_t *ctx, int encrypt, xr_sm4_mode_e mode,
    const unsigned char key[16], const unsigned char *iv,
    const void *in, size_t len, xr_buf_t *out);


/* Strings to sign */

/*
 * xregion's own request signing string, appended to out:
 *
 *     method "\n" path "\n" timestamp "\n" nonce "\n" hex(SHA-256(body))
 *
 * with the body digest in lowercase hex (64 chars) and no trailing
 * newline; body may be NULL when bodylen is 0 (the digest of nothing:
 * e3b0c442...b855).  method, path, timestamp and nonce are taken as sent
 * (no case folding, no decoding); XR_E_FIELD_FORMAT when one of them holds
 * a '\n', which would let two requests share a string.
 */
int xr_sign_string(xr_ctx_t *ctx, xr_str_t method, xr_str_t path,
    xr_str_t timestamp, xr_str_t nonce, const void *body, size_t bodylen,
    xr_buf_t *out);

/*
 * Zhejiang (33) medical-insurance gateway: HMAC-SM3 keyed with the
 * application secret over
 *
 *     timestamp "\n" body
 *
 * (timestamp: the Unix time text the request carries; body: the request
 * body bytes as sent), written as 64 UPPERCASE hex chars (DOMAIN.md 1.4,
 * from an implementation, not the province's spec).
 * xr_zj_sign_string() appends the string; xr_zj_signature() appends the
 * hex signature; xr_zj_verify() checks a received one (hex of either
 * case): XR_OK, XR_DECLINED (wrong), XR_ERROR (not 64 hex chars,
 * XR_E_BAD_SIGNATURE).  The header names that carry the values are the
 * module's business.
 */
int xr_zj_sign_string(xr_ctx_t *ctx, xr_str_t timestamp, const void *body,
    size_t bodylen, xr_buf_t *out);
int xr_zj_signature(xr_ctx_t *ctx, const void *secret, size_t secretlen,
    xr_str_t timestamp, const void *body, size_t bodylen, xr_buf_t *out);
int xr_zj_verify(xr_ctx_t *ctx, const void *secret, size_t secretlen,
    xr_str_t timestamp, const void *body, size_t bodylen, const char *sig,
    size_t siglen);

/*
 * NHSA mobile payment (医保移动支付 / 电子凭证) string for SM3withSM2,
 * appended to out (DOMAIN.md section 6):
 *
 *     k1 "=" v1 "&" k2 "=" v2 ... "&key=" app_secret
 *
 * over the n params sorted by key, bytewise (ASCII) ascending, leaving out
 * the keys signData, encData and extra.  "&key=" app_secret is left out
 * when app_secret is empty.  Values are used as given: a JSON-object value
 * such as data must already be serialised the way the spec asks (keys
 * sorted, empty values dropped, compact), which is the JSON adapter's job,
 * and the caller leaves out absent parameters.  XR_E_SYNTAX on a key that
 * appears twice.
 */
typedef struct {
    xr_str_t        key;
    xr_str_t        value;
} xr_sign_param_t;

int xr_nhsa_sign_string(xr_ctx_t *ctx, const xr_sign_param_t *params,
    size_t n, xr_str_t app_secret, xr_buf_t *out);

#endif /* XR_CRYPTO_H */
