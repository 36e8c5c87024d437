/*
 * Cryptographic primitives for the core: digests now; HMAC, SM3 and SM2
 * will join them here.  This is the only core file that includes OpenSSL,
 * so that the rest of the core (and its tests) need not know which library
 * does the work.
 *
 * Conventions: no allocation, no context; output buffers are the caller's
 * and sized as stated.  Functions that can fail return XR_OK or XR_ERROR
 * (the library refused: out of memory or a provider missing); they set no
 * ctx because a caller with a ctx names the error better itself.
 */

#ifndef XR_CRYPTO_H
#define XR_CRYPTO_H

#include "xr_core.h"

#define XR_SHA256_LEN      32
#define XR_SHA256_HEX_LEN  (2 * XR_SHA256_LEN)

/* SHA-256 of len bytes at data (data may be NULL when len is 0). */
int xr_sha256(const void *data, size_t len, unsigned char out[32]);

/*
 * Lowercase hex of len bytes: writes exactly 2 * len chars to out, no NUL.
 */
void xr_hex(const unsigned char *in, size_t len, char *out);

#endif /* XR_CRYPTO_H */
