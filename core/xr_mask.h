/*
 * Masking of personal identifiers: what an error text, a log line or an
 * audit record may show of a value the schema marks personal
 * (`field ... pii=<kind>;`, docs/profiles.md).
 *
 * The rules, by kind ("characters" are UTF-8 characters; a byte that is
 * not part of a well-formed one counts as one character):
 *
 *   id     ID / certificate / social security / personal numbers: 15
 *          characters or more keep the first 6 (the region code) and the
 *          last 4 around "********" (always 8): "310101********1234";
 *          shorter: "****".
 *   card   card and account numbers: 16 or more keep the first 6 (the
 *          issuer) and the last 4 around "********"; 8 to 15 keep the
 *          last 4 after "****"; shorter: "****".
 *   name   person names: the first character, then one '*' for each
 *          other character, at most 10: "张三" is "张*", "欧阳娜娜"
 *          "欧***"; a name of one character is "*".
 *   phone  11 or more keep the first 3 and the last 4 around "****":
 *          "130****0000"; shorter: "****".
 *   birth  dates of birth: each digit becomes '*', other printable ASCII
 *          stays (the format shows, the date does not): "****-**-**";
 *          at most 24 characters, then "...".
 *
 * So a mask never tells the length of an id, card or phone value beyond
 * the threshold its rule names; a name's length shows up to 11
 * characters, a date's up to 24.  An empty value is an empty mask.
 *
 * What a mask keeps of the value is copied only when it is a printable
 * character (printable ASCII, or a well-formed UTF-8 character that is
 * neither a C1 control nor a line, paragraph, bidi or zero-width mark);
 * anything else is written '?'.  A mask is therefore valid UTF-8 without
 * control characters whatever bytes the value held, and at most
 * XR_MASK_LEN - 1 bytes.
 *
 * Memory: xr_mask() and xr_mask_quote() write into the caller's buffer;
 * xr_mask_pstr() and xr_mask_text() allocate from ctx->pool and fail only
 * with XR_E_NOMEM.  Every input is borrowed and only read.
 */

#ifndef XR_MASK_H
#define XR_MASK_H

#include "xr_core.h"
#include "xr_msg.h"
#include "xr_profile.h"

typedef enum {
    XR_PII_NONE = 0,    /* not personal */
    XR_PII_ID,
    XR_PII_CARD,
    XR_PII_NAME,
    XR_PII_PHONE,
    XR_PII_BIRTH,
    XR_PII_LAST         /* fits the 3-bit `pii` of xr_sfield_t */
} xr_pii_e;

/* Room for any mask, its NUL included. */
#define XR_MASK_LEN  64

/* The kind of "id", "card", ...; XR_DECLINED for any other word. */
int xr_pii_by_name(xr_str_t name, xr_pii_e *out);
/* "id", "card", ...; "none" for XR_PII_NONE and unknown values. */
const char *xr_pii_name(unsigned kind);

/*
 * The mask of value for kind into buf (NUL-terminated); its length.
 * XR_PII_NONE and unknown kinds mask fully ("****", "" when empty).
 * With size < XR_MASK_LEN the mask is cut at a character boundary.
 */
size_t xr_mask(unsigned kind, xr_str_t value, char *buf, size_t size);

/* The same, allocated from ctx->pool. */
int xr_mask_pstr(xr_ctx_t *ctx, unsigned kind, xr_str_t value,
    xr_str_t *out);

/*
 * What an error message may quote of a field's value: the value itself
 * when kind is XR_PII_NONE, else its mask, written into buf (XR_MASK_LEN
 * bytes).  Every error text of core/ and adapters/ that quotes a field's
 * value takes it from here.
 */
xr_str_t xr_mask_quote(unsigned kind, xr_str_t value, char *buf,
    size_t size);

/*
 * Free text (a destination's error message) made fit for a log line: each
 * occurrence of a value of msg that stxn marks personal (msg's direction,
 * list items included; values of at least 2 bytes, the first 256 found)
 * becomes its mask, and so does any other run of 15 or more ASCII digits
 * (with an 'X' or 'x' that ends it: an ID or card number nobody
 * declared), by the id rule.  Dates of birth are not looked for.  stxn
 * and msg may be NULL: digit runs only.  *out is text itself when nothing
 * was masked.
 */
int xr_mask_text(xr_ctx_t *ctx, const xr_stxn_t *stxn, const xr_msg_t *msg,
    xr_str_t text, xr_str_t *out);

#endif /* XR_MASK_H */
