/*
 * Masks of personal values (the rules are in xr_mask.h).
 *
 * A value is read once, character by character, remembering where its
 * first characters and its last four start: a mask is built from those
 * and the count alone, so a huge value costs one pass and nothing more.
 */

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "xr_charset.h"
#include "xr_mask.h"


#define XR_MASK_HEAD   6       /* characters a rule may keep at the start */
#define XR_MASK_TAIL   4       /* ... and at the end */
#define XR_MASK_NAME   10      /* stars of a name, at most */
#define XR_MASK_BIRTH  24      /* characters of a date shown, at most */
#define XR_MASK_VALS   256     /* personal values xr_mask_text() looks for */
#define XR_MASK_RUN    15      /* digits that make an undeclared number */


typedef struct {
    const char     *p;
    unsigned        len:3;      /* bytes, 1 to 4 */
    unsigned        printable:1;
} xr_mchar_t;

typedef struct {
    xr_mchar_t      head[XR_MASK_BIRTH];
    xr_mchar_t      tail[XR_MASK_TAIL];     /* a ring: the last ones */
    size_t          n;                      /* characters */
} xr_mscan_t;

typedef struct {
    char           *p;
    char           *end;        /* room for the NUL excluded */
} xr_mout_t;

typedef struct {
    xr_str_t        value;
    unsigned        kind;
} xr_mval_t;


static const char *const  xr_pii_names[XR_PII_LAST] = {
    [XR_PII_NONE] = "none",
    [XR_PII_ID] = "id",
    [XR_PII_CARD] = "card",
    [XR_PII_NAME] = "name",
    [XR_PII_PHONE] = "phone",
    [XR_PII_BIRTH] = "birth",
};


int
xr_pii_by_name(xr_str_t name, xr_pii_e *out)
{
    unsigned  k;

    for (k = XR_PII_NONE + 1; k < XR_PII_LAST; k++) {
        if (xr_str_eq(name, xr_pii_names[k])) {
            *out = (xr_pii_e) k;
            return XR_OK;
        }
    }
    return XR_DECLINED;
}


const char *
xr_pii_name(unsigned kind)
{
    return kind < XR_PII_LAST ? xr_pii_names[kind] : "none";
}


/*
 * The character at s (len > 0 bytes left): its length, and whether a mask
 * may show it.  Strict UTF-8 (no overlongs, surrogates or values past
 * U+10FFFF); a byte that starts no well-formed character is one
 * character, never shown.
 */
static xr_mchar_t
xr_mask_char(const char *s, size_t len)
{
    const unsigned char  *u = (const unsigned char *) s;
    xr_mchar_t            c;
    uint32_t              cp;
    size_t                n, i;

    c.p = s;
    c.len = 1;
    c.printable = 0;

    if (u[0] < 0x80) {
        c.printable = (u[0] >= 0x20 && u[0] < 0x7f);
        return c;
    }

    if (u[0] >= 0xc2 && u[0] <= 0xdf) {
        n = 2;
        cp = u[0] & 0x1f;
    } else if (u[0] >= 0xe0 && u[0] <= 0xef) {
        n = 3;
        cp = u[0] & 0x0f;
    } else if (u[0] >= 0xf0 && u[0] <= 0xf4) {
        n = 4;
        cp = u[0] & 0x07;
    } else {
        return c;
    }

    if (len < n) {
        return c;
    }
    for (i = 1; i < n; i++) {
        if ((u[i] & 0xc0) != 0x80) {
            return c;
        }
        cp = (cp << 6) | (u[i] & 0x3f);
    }
    if ((n == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff)))
        || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)))
    {
        return c;
    }

    c.len = (unsigned) n;
    /* C1 controls, zero-width and bidi marks, line separators, BOM */
    c.printable = !(cp < 0xa0
                    || (cp >= 0x200b && cp <= 0x200f)
                    || (cp >= 0x2028 && cp <= 0x202e)
                    || (cp >= 0x2066 && cp <= 0x2069)
                    || cp == 0xfeff);
    return c;
}


static void
xr_mask_scan(xr_str_t v, xr_mscan_t *sc)
{
    xr_mchar_t  c;
    size_t      i;

    sc->n = 0;

    for (i = 0; i < v.len; i += c.len) {
        c = xr_mask_char(v.data + i, v.len - i);
        if (sc->n < XR_MASK_BIRTH) {
            sc->head[sc->n] = c;
        }
        sc->tail[sc->n % XR_MASK_TAIL] = c;
        sc->n++;
    }
}


/* The k-th of the last XR_MASK_TAIL characters (n >= XR_MASK_TAIL). */
static const xr_mchar_t *
xr_mask_tail(const xr_mscan_t *sc, size_t k)
{
    return &sc->tail[(sc->n - XR_MASK_TAIL + k) % XR_MASK_TAIL];
}


static void
xr_mask_put(xr_mout_t *o, const char *s, size_t n)
{
    if ((size_t) (o->end - o->p) < n) {
        o->end = o->p;      /* cut whole: nothing more fits after it */
        return;
    }
    memcpy(o->p, s, n);
    o->p += n;
}


static void
xr_mask_keep(xr_mout_t *o, const xr_mchar_t *c)
{
    if (c->printable) {
        xr_mask_put(o, c->p, c->len);
    } else {
        xr_mask_put(o, "?", 1);
    }
}


static void
xr_mask_around(xr_mout_t *o, const xr_mscan_t *sc, size_t head,
    const char *stars)
{
    size_t  k;

    for (k = 0; k < head; k++) {
        xr_mask_keep(o, &sc->head[k]);
    }
    xr_mask_put(o, stars, strlen(stars));
    for (k = 0; k < XR_MASK_TAIL; k++) {
        xr_mask_keep(o, xr_mask_tail(sc, k));
    }
}


size_t
xr_mask(unsigned kind, xr_str_t value, char *buf, size_t size)
{
    xr_mscan_t  sc;
    xr_mout_t   o;
    size_t      k;

    if (size == 0) {
        return 0;
    }
    o.p = buf;
    o.end = buf + size - 1;

    if (value.data == NULL) {
        value.len = 0;
    }
    xr_mask_scan(value, &sc);

    if (sc.n == 0) {
        *o.p = '\0';
        return 0;
    }

    switch (kind) {

    case XR_PII_ID:
        if (sc.n >= 15) {
            xr_mask_around(&o, &sc, XR_MASK_HEAD, "********");
        } else {
            xr_mask_put(&o, "****", 4);
        }
        break;

    case XR_PII_CARD:
        if (sc.n >= 16) {
            xr_mask_around(&o, &sc, XR_MASK_HEAD, "********");
        } else if (sc.n >= 8) {
            xr_mask_around(&o, &sc, 0, "****");
        } else {
            xr_mask_put(&o, "****", 4);
        }
        break;

    case XR_PII_NAME:
        if (sc.n == 1) {
            xr_mask_put(&o, "*", 1);
            break;
        }
        xr_mask_keep(&o, &sc.head[0]);
        for (k = 1; k < sc.n && k <= XR_MASK_NAME; k++) {
            xr_mask_put(&o, "*", 1);
        }
        break;

    case XR_PII_PHONE:
        if (sc.n >= 11) {
            xr_mask_around(&o, &sc, 3, "****");
        } else {
            xr_mask_put(&o, "****", 4);
        }
        break;

    case XR_PII_BIRTH:
        for (k = 0; k < sc.n && k < XR_MASK_BIRTH; k++) {
            if (sc.head[k].len == 1 && *sc.head[k].p >= '0'
                && *sc.head[k].p <= '9')
            {
                xr_mask_put(&o, "*", 1);
            } else if (sc.head[k].len == 1 && sc.head[k].printable) {
                xr_mask_put(&o, sc.head[k].p, 1);
            } else {
                xr_mask_put(&o, "?", 1);
            }
        }
        if (sc.n > XR_MASK_BIRTH) {
            xr_mask_put(&o, "...", 3);
        }
        break;

    default:
        xr_mask_put(&o, "****", 4);
        break;
    }

    *o.p = '\0';
    return (size_t) (o.p - buf);
}


int
xr_mask_pstr(xr_ctx_t *ctx, unsigned kind, xr_str_t value, xr_str_t *out)
{
    char    buf[XR_MASK_LEN];
    size_t  n;

    n = xr_mask(kind, value, buf, sizeof(buf));
    out->data = xr_pstrndup(ctx->pool, buf, n);
    if (out->data == NULL) {
        out->len = 0;
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    out->len = n;
    return XR_OK;
}


xr_str_t
xr_mask_quote(unsigned kind, xr_str_t value, char *buf, size_t size)
{
    xr_str_t  q;

    if (kind == XR_PII_NONE) {
        return value;
    }
    q.len = xr_mask(kind, value, buf, size);
    q.data = buf;
    return q;
}


/* ---- free text ------------------------------------------------------- */

typedef struct {
    xr_ctx_t       *ctx;
    xr_mval_t      *vals;
    size_t          n;
} xr_mcollect_t;


static int
xr_mask_add(xr_mcollect_t *mc, unsigned kind, const xr_node_t *v)
{
    char      num[24];
    xr_str_t  s;
    size_t    i;

    switch (v->type) {
    case XR_NODE_STRING:
    case XR_NODE_NUMBER:
        s = v->u.s;
        break;
    case XR_NODE_INT:
        s.len = (size_t) snprintf(num, sizeof(num), "%" PRId64, v->u.i);
        s.data = xr_pstrndup(mc->ctx->pool, num, s.len);
        if (s.data == NULL) {
            return xr_fail(mc->ctx, XR_E_NOMEM, NULL, NULL);
        }
        break;
    default:
        return XR_OK;       /* times: not looked for */
    }

    /* one character would mask that character everywhere */
    if (xr_utf8_length(s.data, s.len) < 2 || mc->n == XR_MASK_VALS) {
        return XR_OK;
    }
    for (i = 0; i < mc->n; i++) {
        if (xr_str_cmp(mc->vals[i].value, s) == 0) {
            return XR_OK;
        }
    }
    mc->vals[mc->n].value = s;
    mc->vals[mc->n].kind = kind;
    mc->n++;
    return XR_OK;
}


static int
xr_mask_collect(xr_mcollect_t *mc, const xr_sfield_t *fields, size_t nf,
    const xr_node_t *obj)
{
    const xr_sfield_t  *f;
    const xr_node_t    *v;
    size_t              i, k;

    if (obj == NULL || obj->type != XR_NODE_OBJECT) {
        return XR_OK;
    }

    for (i = 0; i < nf; i++) {
        f = &fields[i];
        if (f->type != XR_FT_LIST && f->pii == XR_PII_NONE) {
            continue;
        }
        v = xr_object_get(obj, f->name);
        if (v == NULL) {
            continue;
        }
        if (f->type == XR_FT_LIST) {
            if (v->type != XR_NODE_ARRAY) {
                continue;
            }
            for (k = 0; k < v->u.arr.count; k++) {
                if (xr_mask_collect(mc, f->children, f->nchildren,
                                    v->u.arr.items[k])
                    != XR_OK)
                {
                    return XR_ERROR;
                }
            }
            continue;
        }
        if (xr_mask_add(mc, f->pii, v) != XR_OK) {
            return XR_ERROR;
        }
    }
    return XR_OK;
}


static int
xr_mask_isdigit(char c)
{
    return c >= '0' && c <= '9';
}


int
xr_mask_text(xr_ctx_t *ctx, const xr_stxn_t *stxn, const xr_msg_t *msg,
    xr_str_t text, xr_str_t *out)
{
    char           m[XR_MASK_LEN];
    size_t         i, k, best, run, n;
    size_t         copied;     /* text up to here is in b */
    xr_buf_t       b;
    xr_str_t       v;
    xr_mcollect_t  mc;

    *out = text;
    if (text.len == 0) {
        return XR_OK;
    }

    mc.ctx = ctx;
    mc.n = 0;
    mc.vals = NULL;

    if (stxn && msg && msg->body) {
        mc.vals = xr_palloc(ctx->pool, XR_MASK_VALS * sizeof(xr_mval_t));
        if (mc.vals == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }
        if (xr_mask_collect(&mc, stxn->fields[msg->dir],
                            stxn->nfields[msg->dir], msg->body)
            != XR_OK)
        {
            return XR_ERROR;
        }
    }

    xr_buf_init(&b, ctx->pool, 0);
    copied = 0;
    i = 0;

    while (i < text.len) {

        /* the longest personal value that starts here */
        n = 0;
        best = 0;
        for (k = 0; k < mc.n; k++) {
            if (mc.vals[k].value.len > n
                && mc.vals[k].value.len <= text.len - i
                && memcmp(text.data + i, mc.vals[k].value.data,
                          mc.vals[k].value.len) == 0)
            {
                n = mc.vals[k].value.len;
                best = k;
            }
        }

        /* a run of digits that starts here, unless inside a short one */
        run = 0;
        if (xr_mask_isdigit(text.data[i])
            && !(i > copied && xr_mask_isdigit(text.data[i - 1])))
        {
            while (i + run < text.len && xr_mask_isdigit(text.data[i + run]))
            {
                run++;
            }
            if (run >= XR_MASK_RUN && i + run < text.len
                && (text.data[i + run] == 'X' || text.data[i + run] == 'x'))
            {
                run++;
            }
        }

        if (run >= XR_MASK_RUN && run > n) {
            /* a number nobody declared, or longer than the one declared */
            v.data = text.data + i;
            v.len = run;
            xr_buf_add(&b, text.data + copied, i - copied);
            xr_buf_add(&b, m, xr_mask(XR_PII_ID, v, m, sizeof(m)));
            i += run;
            copied = i;
            continue;
        }

        if (n) {
            xr_buf_add(&b, text.data + copied, i - copied);
            xr_buf_add(&b, m, xr_mask(mc.vals[best].kind,
                                      mc.vals[best].value, m, sizeof(m)));
            i += n;
            copied = i;
            continue;
        }

        i++;    /* a value may still start inside a short run */
    }

    if (copied == 0) {
        return XR_OK;
    }
    xr_buf_add(&b, text.data + copied, text.len - copied);
    if (b.failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    out->data = b.data;
    out->len = b.len;
    return XR_OK;
}
