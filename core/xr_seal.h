/*
 * xr_seal: the NHSA mobile-payment envelope (医保移动支付, DOMAIN.md
 * section 6) around a JSON profile's message, as the profile option
 *
 *     seal nhsa_mobile [member=data];
 *
 * Sealed on the wire, a message is the plain JSON object with its member
 * (default "data") replaced by
 *
 *     encData   uppercase hex of SM4-ECB with PKCS#7 padding of the
 *               member's canonical text (below)
 *     encType   "SM4"
 *     signData  Base64 of the raw r || s SM3withSM2 signature
 *     signType  "SM2"
 *
 * A message without the member (a refusal, say) has no encData and is
 * signed all the same; a member in clear is refused on opening.
 *
 * signData signs the spec's string (xr_nhsa_sign_string()): every
 * top-level parameter but signData, encData and extra, sorted by key,
 * "k=v" joined by "&", with the member in clear as its canonical text,
 * then "&key=" and the application secret.  Canonical text of a JSON
 * object: keys sorted bytewise at every level, members whose value is ""
 * or null left out, compact.  Empty and null top-level values are left
 * out of the string too.  The spec's write-ups name SM4 but neither its
 * mode nor the text encoding of encData: ECB and uppercase hex are this
 * implementation's choice, stated in docs/profiles.md.
 *
 * Keys: the SM4 key and the application secret are shared with the peer;
 * the sealing side signs with its own SM2 private key, the opening side
 * verifies with the peer's public key.  The module holds them
 * (xregion_seal); this file never reads files.
 *
 * Errors: XR_ERROR with ctx set.  Opening fails with XR_E_BAD_SIGNATURE
 * for every defect of the envelope alike (missing member, bad hex, wrong
 * padding, bad signature), so that a caller cannot tell a decryption
 * failure from a signature failure (no padding oracle).  Output goes to
 * out, in ctx's pool.
 */

#ifndef XR_SEAL_H
#define XR_SEAL_H

#include "xr_core.h"
#include "xr_crypto.h"
#include "xr_profile.h"


typedef struct {
    unsigned char       sm4_key[XR_SM4_KEY_LEN];
    xr_str_t            app_secret;     /* may be empty */
    const xr_key_t     *own;            /* SM2 private: signs when sealing */
    const xr_key_t     *peer;           /* SM2 public: verifies on opening */
    xr_str_t            id;             /* SM2 user ID; empty: the default */
} xr_seal_keys_t;


/* plain JSON (the profile's encoding of a message) -> sealed JSON */
int xr_seal_close(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_seal_keys_t *keys, const char *plain, size_t len,
    xr_buf_t *out);

/* sealed JSON -> plain JSON that the profile decodes */
int xr_seal_open(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_seal_keys_t *keys, const char *sealed, size_t len,
    xr_buf_t *out);

/* The canonical text of a JSON value, appended to out (exposed for tests). */
int xr_seal_canonical(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_node_t *value, xr_buf_t *out);

#endif /* XR_SEAL_H */
