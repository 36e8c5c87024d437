/*
 * Digests through OpenSSL's EVP interface (OpenSSL 3: the default
 * provider), so that SM3 later is a change of the EVP_MD only.
 */

#include <openssl/evp.h>

#include "xr_crypto.h"


int
xr_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int  n;

    /* EVP_Digest() is fine with a NULL pointer only when len is 0 */
    if (data == NULL) {
        data = "";
        len = 0;
    }

    n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1
        || n != XR_SHA256_LEN)
    {
        return XR_ERROR;
    }
    return XR_OK;
}


void
xr_hex(const unsigned char *in, size_t len, char *out)
{
    static const char  digits[] = "0123456789abcdef";
    size_t             i;

    for (i = 0; i < len; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 0x0f];
    }
}
