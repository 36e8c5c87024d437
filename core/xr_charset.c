/*
 * UTF-8 validation and GBK conversion.  iconv's GBK in glibc is CP936; we
 * use GB18030 for decoding so that every byte sequence a GBK system may send
 * is accepted, and GBK for encoding so that what we send is plain GBK.
 */

#include <errno.h>
#include <stdio.h>
#include <iconv.h>
#include <string.h>

#include "xr_charset.h"


const char *
xr_charset_name(xr_charset_e cs)
{
    return cs == XR_CHARSET_GBK ? "GBK" : "UTF-8";
}


/*
 * The length of the well-formed UTF-8 sequence at s, or 0: no overlongs,
 * no surrogates, nothing above U+10FFFF, no sequence cut short.
 */

static size_t
xr_utf8_seq(const unsigned char *s, size_t len)
{
    size_t         n, k;
    uint32_t       cp, min;
    unsigned char  c;

    c = s[0];
    if (c < 0x80) {
        return 1;
    }
    if (c >= 0xc2 && c <= 0xdf) {
        n = 1; cp = c & 0x1f; min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 2; cp = c & 0x0f; min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 3; cp = c & 0x07; min = 0x10000;
    } else {
        return 0;
    }
    if (len <= n) {
        return 0;
    }
    for (k = 1; k <= n; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) {
        return 0;
    }
    return n + 1;
}


/* The offset of the first ill-formed byte, or len. */

static size_t
xr_utf8_check(const unsigned char *s, size_t len)
{
    size_t    i = 0, n;
    uint64_t  w;

    while (i < len) {
        /* most of a message is ASCII: skip it eight bytes at a time */
        while (i + 8 <= len) {
            memcpy(&w, s + i, 8);
            if (w & UINT64_C(0x8080808080808080)) {
                break;
            }
            i += 8;
        }
        if (i < len && s[i] < 0x80) {
            i++;
            continue;
        }
        if (i >= len) {
            break;
        }
        n = xr_utf8_seq(s + i, len - i);
        if (n == 0) {
            return i;
        }
        i += n;
    }
    return len;
}


int
xr_utf8_validate(xr_ctx_t *ctx, const char *s, size_t len, const char *field)
{
    size_t  at;

    at = xr_utf8_check((const unsigned char *) s, len);
    if (at != len) {
        return xr_fail(ctx, XR_E_CHARSET, field,
                       "invalid UTF-8 at byte %zu%s%s", at,
                       field ? " of field " : "", field ? field : "");
    }
    return XR_OK;
}


/*
 * Counting lead bytes alone would count a run of stray continuation bytes
 * as nothing and let it past a length limit: each byte that is not part of
 * a well-formed sequence counts as one.
 */

size_t
xr_utf8_length(const char *s, size_t len)
{
    size_t  i = 0, n, count = 0;

    while (i < len) {
        n = xr_utf8_seq((const unsigned char *) s + i, len - i);
        i += n ? n : 1;
        count++;
    }
    return count;
}


/*
 * One conversion into a pool buffer of cap bytes.  On XR_ERROR *at is the
 * offset of the input byte iconv stopped at and *err its errno (E2BIG when
 * cap was short, which is our bug, not the caller's).
 *
 * Decoding GBK we go through GB18030, which rejects the lone byte 0x80 that
 * CP936, glibc's GBK and Windows use for the euro sign; our own encoder
 * writes it, so the decoder takes it back as U+20AC.
 */

/*
 * iconv descriptors are costly to open (a gconv module lookup each time):
 * keep one per direction per thread and reset its shift state before use.
 * nginx workers and the tool are single-threaded; the cache is per thread
 * anyway so that tests may use threads.
 */
static __thread iconv_t  xr_iconv_cache[2] = { (iconv_t) -1, (iconv_t) -1 };


static iconv_t
xr_iconv_get(const char *to, const char *from)
{
    int  slot = strcmp(from, "GB18030") == 0 ? 0 : 1;

    if (xr_iconv_cache[slot] == (iconv_t) -1) {
        xr_iconv_cache[slot] = iconv_open(to, from);
    } else {
        iconv(xr_iconv_cache[slot], NULL, NULL, NULL, NULL);
    }
    return xr_iconv_cache[slot];
}


/* The end of the ASCII run starting at i, eight bytes at a time. */
static size_t
xr_ascii_run(const unsigned char *s, size_t i, size_t len)
{
    uint64_t  w;

    while (i + 8 <= len) {
        memcpy(&w, s + i, 8);
        if (w & UINT64_C(0x8080808080808080)) {
            break;
        }
        i += 8;
    }
    while (i < len && s[i] < 0x80) {
        i++;
    }
    return i;
}


/* Converts one run, advancing op and ol; XR_ERROR sets err and at. */
static int
xr_iconv_run(iconv_t cd, const char *in, size_t len, char **op, size_t *ol,
    int euro, size_t *at, int *err)
{
    char    *ip;
    size_t   il, rc;

    ip = (char *) in;
    il = len;

    for ( ;; ) {
        rc = iconv(cd, &ip, &il, op, ol);
        if (rc != (size_t) -1) {
            rc = iconv(cd, NULL, NULL, op, ol);
            if (rc != (size_t) -1) {
                return XR_OK;
            }
        }

        *err = errno;

        /* CP936 writes the euro sign as the single byte 0x80 */
        if (*err == EILSEQ && euro && il && (unsigned char) *ip == 0x80
            && *ol >= 3)
        {
            memcpy(*op, "\xe2\x82\xac", 3);
            *op += 3;
            *ol -= 3;
            ip++;
            il--;
            continue;
        }

        *at = (size_t) (ip - in);
        return XR_ERROR;
    }
}


/*
 * Messages are mostly ASCII, which GBK and UTF-8 write alike: copy ASCII
 * runs and give iconv only the runs in between.  A run of GBK ends at a
 * character boundary before an ASCII byte: lead bytes are >= 0x81 and a
 * trail byte may be ASCII-range, so the scan steps over whole characters
 * (2 bytes, or 4 for GB18030's digit-second-byte form); UTF-8 non-ASCII
 * bytes are all >= 0x80.
 */
static int
xr_iconv(xr_ctx_t *ctx, const char *to, const char *from, const char *in,
    size_t len, size_t cap, xr_str_t *out, size_t *at, int *err)
{
    const unsigned char  *s = (const unsigned char *) in;
    iconv_t               cd = (iconv_t) -1;
    char                 *buf, *op;
    size_t                ol, i, run, rat, gap;
    int                   gbk_in, euro;

    *at = 0;
    *err = 0;

    i = xr_ascii_run(s, 0, len);
    if (i == len) {
        out->data = in;     /* pure ASCII: the same bytes in both */
        out->len = len;
        return XR_OK;
    }

    buf = xr_palloc(ctx->pool, cap);
    if (buf == NULL) {
        *err = ENOMEM;
        return XR_ERROR;
    }

    gbk_in = strcmp(from, "GB18030") == 0;
    euro = gbk_in;
    op = buf;
    ol = cap;
    i = 0;

    while (i < len) {
        run = i;
        i = xr_ascii_run(s, i, len);
        if (i > run) {
            if (i - run > ol) {
                *err = E2BIG;
                return XR_ERROR;
            }
            memcpy(op, in + run, i - run);
            op += i - run;
            ol -= i - run;
        }
        if (i == len) {
            break;
        }

        run = i;
        for ( ;; ) {
            while (i < len && s[i] >= 0x80) {
                if (!gbk_in || s[i] == 0x80) {
                    i++;
                } else if (i + 1 < len && s[i + 1] >= '0'
                           && s[i + 1] <= '9')
                {
                    i += 4;
                } else {
                    i += 2;
                }
            }
            if (i >= len) {
                i = len;    /* a cut character: iconv says where */
                break;
            }
            /*
             * A short ASCII gap costs iconv less than another call (each
             * call has a fixed cost of several hundred instructions).
             */
            gap = xr_ascii_run(s, i, len < i + 32 ? len : i + 32);
            if (gap == len || gap - i >= 32 || s[gap] < 0x80) {
                break;
            }
            i = gap;
        }

        if (cd == (iconv_t) -1) {
            cd = xr_iconv_get(to, from);
            if (cd == (iconv_t) -1) {
                *err = errno;
                return XR_ERROR;
            }
        }
        if (xr_iconv_run(cd, in + run, i - run, &op, &ol, euro, &rat, err)
            != XR_OK)
        {
            *at = run + rat;
            return XR_ERROR;
        }
    }

    out->data = buf;
    out->len = (size_t) (op - buf);
    return XR_OK;
}


int
xr_charset_to_utf8(xr_ctx_t *ctx, xr_charset_e cs, const char *in, size_t len,
    xr_str_t *out, const char *field)
{
    size_t       at;
    int          err;
    const char  *nul;

    if (cs == XR_CHARSET_UTF8) {
        if (xr_utf8_validate(ctx, in, len, field) != XR_OK) {
            return XR_ERROR;
        }
        out->data = in;
        out->len = len;
        return XR_OK;
    }

    if (len == 0) {
        out->data = "";
        out->len = 0;
        return XR_OK;
    }

    nul = memchr(in, '\0', len);
    if (nul != NULL) {
        return xr_fail(ctx, XR_E_CHARSET, field,
                       "NUL byte in GBK text at byte %zu%s%s",
                       (size_t) (nul - in),
                       field ? " of field " : "", field ? field : "");
    }

    /* a GBK byte becomes at most 3 bytes of UTF-8 (0x80 -> U+20AC) */
    if (len > (SIZE_MAX - 4) / 3) {
        return xr_fail(ctx, XR_E_NOMEM, field, NULL);
    }

    if (xr_iconv(ctx, "UTF-8", "GB18030", in, len, len * 3 + 4, out, &at,
                 &err)
        != XR_OK)
    {
        if (err == EILSEQ || err == EINVAL) {
            return xr_fail(ctx, XR_E_CHARSET, field,
                           "invalid GBK byte sequence at byte %zu%s%s", at,
                           field ? " of field " : "", field ? field : "");
        }
        if (err == ENOMEM) {
            return xr_fail(ctx, XR_E_NOMEM, field, NULL);
        }
        return xr_fail(ctx, XR_E_INTERNAL, field,
                       "iconv GB18030 to UTF-8 failed: %s", strerror(err));
    }

    return xr_utf8_validate(ctx, out->data, out->len, field);
}


int
xr_charset_from_utf8(xr_ctx_t *ctx, xr_charset_e cs, const char *in,
    size_t len, xr_str_t *out, const char *field)
{
    size_t  at;
    int     err;

    if (cs == XR_CHARSET_UTF8) {
        if (xr_utf8_validate(ctx, in, len, field) != XR_OK) {
            return XR_ERROR;
        }
        out->data = in;
        out->len = len;
        return XR_OK;
    }

    if (len == 0) {
        out->data = "";
        out->len = 0;
        return XR_OK;
    }

    /* GBK is never longer than UTF-8: 1 -> 1, 2 or 3 -> 2 */
    if (len > SIZE_MAX - 4) {
        return xr_fail(ctx, XR_E_NOMEM, field, NULL);
    }

    if (xr_iconv(ctx, "GBK", "UTF-8", in, len, len + 4, out, &at, &err)
        != XR_OK)
    {
        if (err == EILSEQ || err == EINVAL) {
            /* iconv checked the UTF-8 too: say which of the two it was */
            if (xr_utf8_validate(ctx, in, len, field) != XR_OK) {
                return XR_ERROR;
            }
            /* valid UTF-8 that GBK cannot carry */
            return xr_fail(ctx, XR_E_CHARSET, field,
                           "character at byte %zu not representable in "
                           "GBK%s%s", at,
                           field ? " in field " : "", field ? field : "");
        }
        if (err == ENOMEM) {
            return xr_fail(ctx, XR_E_NOMEM, field, NULL);
        }
        return xr_fail(ctx, XR_E_INTERNAL, field,
                       "iconv UTF-8 to GBK failed: %s", strerror(err));
    }

    return XR_OK;
}


void
xr_charset_cleanup(void)
{
    int  i;

    for (i = 0; i < 2; i++) {
        if (xr_iconv_cache[i] != (iconv_t) -1) {
            iconv_close(xr_iconv_cache[i]);
            xr_iconv_cache[i] = (iconv_t) -1;
        }
    }
}
