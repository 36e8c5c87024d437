/*
 * Time formats as regions write them.  A pattern is literal text with
 * %Y (4 digits), %m %d %H %M %S (2 digits), %L (3-digit milliseconds);
 * the special patterns "epoch" and "epoch_ms" are Unix seconds or
 * milliseconds (UTC+8 wall time, as the regions' systems use).
 * Parsing is exact: every pattern character must match, ranges are checked
 * (month 1-12, day within the month, leap years).
 * Errors: XR_E_FIELD_FORMAT naming the field.
 */

#ifndef XR_TIME_H
#define XR_TIME_H

#include "xr_core.h"
#include "xr_node.h"

int xr_time_parse(xr_ctx_t *ctx, xr_str_t pattern, xr_str_t text,
    const char *field, xr_time_t *out);
int xr_time_format(xr_ctx_t *ctx, xr_str_t pattern, const xr_time_t *t,
    xr_str_t *out);
/*
 * The same for a pattern xr_time_pattern_check() has passed (a profile's,
 * checked at load): no check on every call.  pii is the field's xr_pii_e
 * (xr_mask.h): an error quotes a personal value masked, and does not say
 * which part of it is out of range.
 */
int xr_time_parse_checked(xr_ctx_t *ctx, xr_str_t pattern, xr_str_t text,
    const char *field, unsigned pii, xr_time_t *out);
int xr_time_format_checked(xr_ctx_t *ctx, xr_str_t pattern,
    const xr_time_t *t, xr_str_t *out);
/* XR_OK when the pattern uses only the supported conversions. */
int xr_time_pattern_check(xr_str_t pattern, int *has_time);
/* ISO 8601 without zone, "2024-12-29T14:17:40" (dumps, canonical JSON). */
int xr_time_iso(xr_ctx_t *ctx, const xr_time_t *t, xr_str_t *out);
int xr_time_now(xr_time_t *out);
/*
 * Unix milliseconds <-> civil time at a fixed offset in minutes east of
 * UTC (480: China Standard Time), with milliseconds.  XR_ERROR when the
 * time falls outside the years 0001-9999 or the offset outside +-18 h
 * (xr_time_to_unix_ms() also when t is not a valid date and time).
 */
int xr_time_from_unix_ms(int64_t ms, int offset_min, xr_time_t *out);
int xr_time_to_unix_ms(const xr_time_t *t, int offset_min, int64_t *out);

#endif /* XR_TIME_H */
