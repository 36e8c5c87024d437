/*
 * What an audit record takes from a transaction's messages: the amounts and
 * the personal identifiers, masked (core/xr_audit.h has the record, this
 * file the bridge from the canonical message to it).
 *
 * Conventions: XR_OK, or XR_ERROR with ctx->err XR_E_NOMEM.  The arrays and
 * the masked strings are allocated from ctx->pool; names are the schema's
 * (configuration memory), amounts' values copied.
 */

#ifndef XR_AUDIT_MSG_H
#define XR_AUDIT_MSG_H

#include "xr_core.h"
#include "xr_msg.h"
#include "xr_profile.h"
#include "xr_audit.h"

/*
 * rec->amounts and rec->ids from the top-level fields of req and then ans
 * (either may be NULL) that stxn declares: amounts (integer fen) by field
 * name, identifiers (fields with pii=) masked by their kind.  A name seen
 * before keeps its first value (the request's), and at most
 * XR_AUDIT_PAIRS_MAX of each are taken: a record has room for no more.
 * stxn NULL: none.
 */
int xr_audit_msg_fields(xr_ctx_t *ctx, const xr_stxn_t *stxn,
    const xr_msg_t *req, const xr_msg_t *ans, xr_audit_rec_t *rec);

#endif /* XR_AUDIT_MSG_H */
