/*
 * Amounts are integer fen from the moment they are decoded: decimal text is
 * parsed digit by digit and never passes through floating point.
 *
 * xr_amount_parse(): "145", "145.5", "145.50", "-3.00", "0.07" in yuan, or
 * integer text in fen.  Errors: XR_E_FIELD_FORMAT (not a number),
 * XR_E_AMOUNT_PRECISION (three decimals or more, a fen amount with decimals),
 * XR_E_AMOUNT_NEGATIVE (when negative is 0), XR_E_AMOUNT_RANGE (beyond
 * 16 digits of yuan, NHSA's (16,2)).
 */

#ifndef XR_AMOUNT_H
#define XR_AMOUNT_H

#include "xr_core.h"
#include "xr_profile.h"

#define XR_AMOUNT_MAX_FEN  INT64_C(9999999999999999)

int xr_amount_parse(xr_ctx_t *ctx, xr_str_t text, xr_amount_unit_e unit,
    int negative, const char *field, int64_t *fen);
/* Yuan with exactly two decimals ("145.00"), or fen as integer text. */
int xr_amount_format(xr_ctx_t *ctx, int64_t fen, xr_amount_unit_e unit,
    xr_str_t *out);

#endif /* XR_AMOUNT_H */
