/*
 * Charsets: strict UTF-8 validation and GBK <-> UTF-8 through iconv.
 * Output strings are allocated from ctx->pool.  Errors: XR_E_CHARSET with
 * the byte offset in errstr; `field` names the field when the caller gives
 * one (may be NULL).
 */

#ifndef XR_CHARSET_H
#define XR_CHARSET_H

#include "xr_core.h"
#include "xr_profile.h"

/* XR_OK when s is well-formed UTF-8 with no overlongs or surrogates. */
int xr_utf8_validate(xr_ctx_t *ctx, const char *s, size_t len,
    const char *field);
/* Number of code points; counts bytes for invalid input. */
size_t xr_utf8_length(const char *s, size_t len);

int xr_charset_to_utf8(xr_ctx_t *ctx, xr_charset_e cs, const char *in,
    size_t len, xr_str_t *out, const char *field);
int xr_charset_from_utf8(xr_ctx_t *ctx, xr_charset_e cs, const char *in,
    size_t len, xr_str_t *out, const char *field);

const char *xr_charset_name(xr_charset_e cs);    /* "UTF-8", "GBK" */

/* Closes this thread's cached iconv descriptors (at exit). */
void xr_charset_cleanup(void);

#endif /* XR_CHARSET_H */
