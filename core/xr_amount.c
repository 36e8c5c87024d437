/*
 * Amount text <-> integer fen.
 *
 * The grammar is deliberately narrow, because every region that sends
 * something else sends it by mistake:
 *
 *   yuan:  ["-"] digit+ ["." digit [digit]]     "145", "145.5", "0.07"
 *   fen:   ["-"] digit+                         "14500"
 *
 * No '+', no spaces, no exponent, no thousands separators, no ".5" or "5.".
 * Leading zeros are accepted ("007.00"): fixed-width records pad with them,
 * and the range is checked on the value, not on the number of digits.
 * Three decimals or more are XR_E_AMOUNT_PRECISION even when they are zeros
 * ("1.000"): a region that writes three decimals has a different idea of
 * the unit, and guessing is how money goes missing.  "-0" and "-0.00" are
 * zero, not negative.
 *
 * Errors are checked in this order: XR_E_FIELD_FORMAT (not such a number),
 * XR_E_AMOUNT_PRECISION, XR_E_AMOUNT_RANGE, XR_E_AMOUNT_NEGATIVE.
 *
 * XR_AMOUNT_DEFAULT is treated as yuan: the profile loader resolves the
 * default, and yuan is what a profile without `amount` means.
 */

#include <stdio.h>
#include <string.h>

#include "xr_amount.h"


/* Longest part of a rejected text quoted in errstr. */


static int xr_amount_fail(xr_ctx_t *ctx, xr_err_e err, xr_str_t text,
    const char *field, const char *what);


int
xr_amount_parse(xr_ctx_t *ctx, xr_str_t text, xr_amount_unit_e unit,
    int negative, const char *field, int64_t *fen)
{
    const unsigned char  *p, *end, *frac;
    uint64_t              v;
    unsigned              d;
    int                   neg;

    if (text.len == 0) {
        return xr_amount_fail(ctx, XR_E_FIELD_FORMAT, text, field,
                              "is empty");
    }

    p = (const unsigned char *) text.data;
    end = p + text.len;

    neg = (*p == '-');
    p += neg;

    /*
     * One pass: the value is gathered with the digits, and stops growing
     * once it is past the range (the errors' order stays the grammar's:
     * format and precision are settled before the range is looked at).
     */
    v = 0;
    frac = p;
    while (p < end && (d = (unsigned) (*p - '0')) <= 9) {
        if (v <= (uint64_t) XR_AMOUNT_MAX_FEN) {
            v = v * 10 + d;
        }
        p++;
    }

    if (p == frac) {
        return xr_amount_fail(ctx, XR_E_FIELD_FORMAT, text, field,
                              "is not a decimal number");
    }

    frac = NULL;

    if (p < end && *p == '.') {
        frac = ++p;
        while (p < end && (unsigned) (*p - '0') <= 9) {
            p++;
        }

        if (p == frac || p != end) {
            return xr_amount_fail(ctx, XR_E_FIELD_FORMAT, text, field,
                                  "is not a decimal number");
        }

        if (unit == XR_AMOUNT_FEN) {
            return xr_amount_fail(ctx, XR_E_AMOUNT_PRECISION, text, field,
                                  "has decimals: fen amounts are whole "
                                  "numbers");
        }

        if (p - frac > 2) {
            return xr_amount_fail(ctx, XR_E_AMOUNT_PRECISION, text, field,
                                  "has more than two decimals");
        }
    }

    if (p != end) {
        return xr_amount_fail(ctx, XR_E_FIELD_FORMAT, text, field,
                              "is not a decimal number");
    }

    if (unit != XR_AMOUNT_FEN) {
        if (v > (uint64_t) XR_AMOUNT_MAX_FEN / 100) {
            return xr_amount_fail(ctx, XR_E_AMOUNT_RANGE, text, field,
                                  "is out of range");
        }

        v *= 100;

        if (frac) {
            v += (unsigned) (frac[0] - '0') * 10;
            if (end - frac == 2) {
                v += (unsigned) (frac[1] - '0');
            }
        }
    }

    if (v > (uint64_t) XR_AMOUNT_MAX_FEN) {
        return xr_amount_fail(ctx, XR_E_AMOUNT_RANGE, text, field,
                              "is out of range");
    }

    if (neg && v != 0) {
        if (!negative) {
            return xr_amount_fail(ctx, XR_E_AMOUNT_NEGATIVE, text, field,
                                  "is negative");
        }
        *fen = -(int64_t) v;
        return XR_OK;
    }

    *fen = (int64_t) v;

    return XR_OK;
}


/* room for the longest amount: sign, 16 digits, the point and a NUL */
#define XR_AMOUNT_CHARS  24


int
xr_amount_format(xr_ctx_t *ctx, int64_t fen, xr_amount_unit_e unit,
    xr_str_t *out)
{
    char      *buf, *p;
    size_t     n;
    uint64_t   a;

    if (fen > XR_AMOUNT_MAX_FEN || fen < -XR_AMOUNT_MAX_FEN) {
        return xr_fail(ctx, XR_E_AMOUNT_RANGE, NULL,
                       "amount of %lld fen is out of range",
                       (long long) fen);
    }

    /*
     * Digits from the right, straight into the pool (the bytes before the
     * first digit stay unused): this runs for every amount of every
     * message.
     */
    buf = xr_palloc(ctx->pool, XR_AMOUNT_CHARS);
    if (buf == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    a = (uint64_t) (fen < 0 ? -fen : fen);
    p = buf + XR_AMOUNT_CHARS - 1;
    *p = '\0';     /* NUL-terminated, as an xr_pstr() copy was */

    if (unit == XR_AMOUNT_FEN) {
        do {
            *--p = (char) ('0' + a % 10);
            a /= 10;
        } while (a);

    } else {
        *--p = (char) ('0' + a % 10);
        *--p = (char) ('0' + a / 10 % 10);
        *--p = '.';
        a /= 100;
        do {
            *--p = (char) ('0' + a % 10);
            a /= 10;
        } while (a);
    }
    if (fen < 0) {
        *--p = '-';
    }
    n = (size_t) (buf + XR_AMOUNT_CHARS - 1 - p);

    out->data = p;
    out->len = n;
    return XR_OK;
}




static int
xr_amount_fail(xr_ctx_t *ctx, xr_err_e err, xr_str_t text, const char *field,
    const char *what)
{
    char  quoted[XR_QUOTE_MAX + 4];

    xr_quote(text, quoted, sizeof(quoted));

    return xr_fail(ctx, err, field, "amount \"%s\"%s%s %s", quoted,
                   field ? " of field " : "", field ? field : "", what);
}
