/*
 * Translation: bytes in one profile's format <-> canonical message <->
 * bytes in another's.  This is the API the nginx module and the tool use.
 *
 *   xr_decode():  adapter decode + mapping into a canonical message, with
 *                 schema validation (required fields, types, lengths,
 *                 codes, amounts).
 *   xr_encode():  mapping out of a canonical message + adapter encode.
 *   xr_encode_error(): an error answer in the profile's own error shape.
 *
 * All output comes from ctx->pool.  On XR_ERROR, ctx->err/errstr/field say
 * why and no output is produced (`out` may hold garbage the caller must not
 * send).
 */

#ifndef XR_TRANSLATE_H
#define XR_TRANSLATE_H

#include "xr_core.h"
#include "xr_msg.h"
#include "xr_profile.h"

/*
 * txn: for answers, the canonical transaction of the request (the answer
 * may not carry its code); NULL for requests.
 */
int xr_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    xr_str_t txn, const char *data, size_t len, xr_msg_t *msg);

int xr_encode(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *msg,
    xr_buf_t *out);

/* Map only (no bytes): wire tree <-> canonical.  Used by tests. */
int xr_map_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *hint, const xr_node_t *wire, xr_msg_t *msg);
int xr_map_encode(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *msg,
    const xr_ptxn_t **ptxn, xr_node_t **wire);

/* Like xr_map_encode() with the transaction given; ptxn may be NULL for an
 * error answer to a message whose transaction is not known. */
int xr_map_encode_txn(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_msg_t *msg, const xr_ptxn_t *ptxn, xr_node_t **wire);

/*
 * Like xr_map_encode(), into the slots of the transaction's write plan
 * (xr_profile.h) for the adapter's encode_plan() instead of a wire tree.
 * XR_DECLINED when the plan cannot give the wire tree's bytes (there is
 * none, it nests deeper than ctx allows, or this message's missing fields
 * would move an object): use xr_map_encode().
 */
int xr_map_encode_plan(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_msg_t *msg, const xr_ptxn_t **ptxn, xr_wvals_t **doc);

/*
 * Error answer to a caller: `req` is the caller's decoded request when there
 * is one (its txn and msg_id are echoed), else NULL.  err picks the wire code
 * through the profile's error table; message is free text (UTF-8).
 * *http_status is the status to answer with.
 */
int xr_encode_error(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *req,
    xr_err_e err, xr_str_t err_code, xr_str_t message, xr_buf_t *out,
    int *http_status);

/* Content-Type header value for a profile: "application/json; charset=GBK" */
xr_str_t xr_profile_content_type(xr_ctx_t *ctx, const xr_profile_t *p);

#endif /* XR_TRANSLATE_H */
