/*
 * Redis key derivation for the gateway's answer cache and idempotency
 * store.  No I/O and no prefix: the module prepends its configured prefix
 * and does the Redis calls.
 *
 * The schema says, per transaction (config/schema/<domain>.conf):
 *   key f1 f2 ...      the fields that identify the request: a name with a
 *                      leading '@' is an envelope field (@msg_id, @caller,
 *                      ...), else a body path ("cert_no", "a.b")
 *   cache              a query whose answers may be cached
 *   invalidates t ...  a write after which t's cached answers are stale
 *
 * Key text: each key field's value rendered canonically (strings and codes
 * as they are, INT and AMOUNT as decimal integers (fen for amounts), TIME
 * as ISO 8601 text, BOOL as true/false) and written "<len>:<value>", one
 * after another, so that no two value lists give the same text.  It holds
 * personal identifiers (ID card numbers): key names carry its SHA-256 only,
 * never the text.
 *
 * Key names (ASCII, NUL-terminated, len without the NUL, from ctx->pool):
 *   cache        c:<domain>:<txn>:<dest>:<sha256 hex of key text>
 *   idempotency  i:<domain>:<txn>:<caller>:<sha256 hex of key text>
 *
 * Return codes: XR_OK; XR_DECLINED when the transaction has no key
 * fields, or one of them is absent, empty or not a scalar in this message
 * (the caller then neither caches nor de-duplicates by it); XR_ERROR with
 * the detail on ctx (XR_E_NOMEM, XR_E_INTERNAL).  Every argument is
 * borrowed and only read.
 */

#ifndef XR_POLICY_H
#define XR_POLICY_H

#include "xr_core.h"
#include "xr_msg.h"
#include "xr_profile.h"

/* Appends the key text of stxn's key fields, read from msg, to out. */
int xr_policy_key_text(xr_ctx_t *ctx, const xr_stxn_t *stxn,
    const xr_msg_t *msg, xr_buf_t *out);

/*
 * The cache key of a request of stxn to destination dest (the region or
 * profile name the module caches per; it should hold no ':').
 */
int xr_policy_cache_key(xr_ctx_t *ctx, const xr_schema_t *schema,
    const xr_stxn_t *stxn, const xr_msg_t *req, xr_str_t dest,
    xr_str_t *key);

/*
 * The cache keys a write makes stale: for each transaction named in
 * write->invalidates, its cache key computed from the write's own request
 * (settle carries cert_type and cert_no, person_info's key).  Names whose
 * key fields req lacks are skipped.  keys[] has room for max entries; *n
 * gets the number written, possibly 0 (XR_OK).  max >=
 * write->ninvalidates is always enough; a write that needs more than max
 * is XR_ERROR (XR_E_INTERNAL).
 */
int xr_policy_invalidations(xr_ctx_t *ctx, const xr_schema_t *schema,
    const xr_stxn_t *write, const xr_msg_t *req, xr_str_t dest,
    xr_str_t *keys, size_t max, size_t *n);

/*
 * The idempotency key of a request of stxn from caller (the caller's
 * profile name, e.g. "shanghai.medical": two callers' message ids never
 * collide).
 */
int xr_policy_idempotency_key(xr_ctx_t *ctx, const xr_schema_t *schema,
    const xr_stxn_t *stxn, const xr_msg_t *req, xr_str_t caller,
    xr_str_t *key);

/*
 * What a retry must repeat: 64 lowercase hex chars (no NUL) of the SHA-256
 * of the request's canonical record (xr_record_pack_canonical()) with
 * @msg_id, @time and @version left out (a retry may re-stamp them) and
 * domain, txn, origin, dest, caller and the whole body kept.  Member order
 * does not count, so the same request read from any region's wire format
 * has the same fingerprint.  Same key, other fingerprint: XR-CONFLICT.
 */
int xr_policy_fingerprint(xr_ctx_t *ctx, const xr_msg_t *req, char out[64]);

#endif /* XR_POLICY_H */
