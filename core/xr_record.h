/*
 * Stored records: a whole canonical message (xr_msg_t) as compact bytes,
 * for the gateway's Redis-backed answer cache and idempotency store.
 *
 * The module stores what xr_record_pack() wrote and hands it back to
 * xr_record_unpack() on a later request.  Whoever can write to Redis can
 * write those bytes, so unpack trusts nothing: every length and count is
 * checked against the bytes left before anything is allocated, nesting is
 * limited to xr_ctx_max_depth() (the limit the decoders use), enumerations
 * and flag bits must be known values, every integer must be written in its
 * shortest form and the record must end exactly where the message does.
 * A record is therefore the only encoding of its message: unpacking and
 * packing again gives the same bytes.
 *
 * Format, version 1.  varint: unsigned LEB128, 7 bits a byte, low group
 * first, at most 10 bytes, no redundant trailing zero groups.  zigzag:
 * a signed 64-bit integer n as the varint of (n << 1) ^ (n >> 63).
 * u16: two bytes, little-endian.
 *
 *   record   = "XRM" version(0x01) flags envelope [time] [node]
 *   flags    = bit 0 dir is response, bit 1 has_time, bit 2 ok,
 *              bit 3 a body follows; other bits zero
 *   envelope = 10 optional strings in this order: domain txn msg_id origin
 *              dest caller version err_code err_msg ref_msg_id;
 *              each varint(len + 1) then len bytes, varint 0 when the
 *              field is unset (data NULL, as opposed to "")
 *   time     = tflags(bit 0 has_time, bit 1 has_msec, others zero)
 *              year(u16, 0-9999) month(1-12) day(1-31)
 *              [hour(0-23) min(0-59) sec(0-60)] if has_time
 *              [msec(u16, 0-999)] if has_msec
 *   node     = tag payload; tag bits 0-3 the xr_node_type_e, bit 4 the
 *              BOOL value or the OBJECT `unique` flag, bits 5-7 zero
 *     NULL, BOOL       nothing more
 *     STRING, NUMBER   varint(len) bytes
 *     INT, AMOUNT      zigzag
 *     TIME             time
 *     OBJECT           varint(count), count x (varint(keylen) key node),
 *                      members in order, repeated keys kept
 *     ARRAY            varint(count), count x node
 *
 * The body, when present, is an OBJECT.  The version byte changes with any
 * change of this layout; a record of another version is refused (the
 * caller treats it as a cache miss).
 *
 * Errors: XR_ERROR with ctx->err XR_E_INTERNAL and errstr "stored record:
 * ..." for anything refused; XR_E_NOMEM when the pool runs out.
 */

#ifndef XR_RECORD_H
#define XR_RECORD_H

#include "xr_core.h"
#include "xr_msg.h"

#define XR_RECORD_VERSION  1

/*
 * Appends the record of msg to out (which keeps its own pool and limit).
 * Refuses (XR_E_INTERNAL) a message the format cannot carry: a body that
 * is not an OBJECT, a node type or a time field out of range, nesting past
 * the depth limit.  msg is only read.
 */
int xr_record_pack(xr_ctx_t *ctx, const xr_msg_t *msg, xr_buf_t *out);

/*
 * Reads the record in data[0..len) into *msg.  Every string and node is
 * allocated from ctx->pool: data may be freed as soon as this returns.
 * On failure *msg is left initialised but incomplete and must not be used.
 */
int xr_record_unpack(xr_ctx_t *ctx, const char *data, size_t len,
    xr_msg_t *msg);

/*
 * The same record, written for comparison rather than storage (the
 * request fingerprint of xr_policy.h): object members sorted by key
 * (repeated keys keep their order), the `unique` flag left out, and unset
 * envelope strings written as empty ones.  Two messages that differ only
 * in those respects get the same bytes.  Not meant to be unpacked.
 */
int xr_record_pack_canonical(xr_ctx_t *ctx, const xr_msg_t *msg,
    xr_buf_t *out);

#endif /* XR_RECORD_H */
