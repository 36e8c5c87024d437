/*
 * The fixed-width record adapter (codec fixed): text columns and binary /
 * BCD fields, as in T-Union (JT/T 978) records and the clearing files built
 * from them.
 *
 * A message is the profile's header layout for its direction followed by
 * the transaction's body layout; offsets inside a layout are relative to the
 * start of that layout's part.  A body layout may end with repeated records
 * counted by a header or body field, or running to the end of the message.
 *
 * The wire tree is flat: a root OBJECT with every header and body field as a
 * STRING member, and one ARRAY of record OBJECTs for the records block.
 * Member keys borrow the profile's field names (configuration lifetime).
 *
 * Layouts come from the profile loader, but nothing here trusts them for
 * memory safety: every layout is checked before a byte is read or written,
 * and a bad one is XR_E_INTERNAL.
 */

#include <stdio.h>
#include <string.h>

#include "xr_adapter.h"
#include "../core/xr_charset.h"


#define XR_FIXED_NAME(buf, s)                                                 \
    snprintf(buf, sizeof(buf), "%.*s", (int) (s).len,                         \
             (s).data ? (s).data : "")


/* A value given by the caller instead of the tree's member of that name. */
typedef struct {
    xr_str_t        name;
    xr_str_t        value;
    unsigned        raw:1;      /* text already in the wire charset */
} xr_fixed_ovr_t;

#define XR_FIXED_NOVR  2


static const xr_fxfield_t *xr_fixed_field(const xr_layout_t *l,
    xr_str_t name);
static int xr_fixed_check_fields(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *l, const xr_layout_t *other);
static int xr_fixed_check_header(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *hdr);
static int xr_fixed_check_body(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *hdr, const xr_layout_t *body);
static int xr_fixed_txn_field(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_dir_e dir, const xr_layout_t *hdr, xr_str_t *name);
static int xr_fixed_find_txn(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_str_t code, const xr_ptxn_t **txn);

static int xr_fixed_get(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_fxfield_t *f, const unsigned char *src, xr_node_t **out);
static int xr_fixed_decode_fields(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *l, const unsigned char *data, xr_node_t *obj);
static int xr_fixed_decode_records(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *l, xr_node_t *root, const unsigned char *data,
    size_t avail, size_t room);

static int xr_fixed_put(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_fxfield_t *f, xr_str_t v, unsigned raw, unsigned char *dst);
static int xr_fixed_value(xr_ctx_t *ctx, const xr_fxfield_t *f,
    const xr_node_t *obj, xr_str_t *v);
static int xr_fixed_encode_part(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *l, const xr_node_t *obj, const xr_fixed_ovr_t *ovr,
    xr_buf_t *out);
static int xr_fixed_add(xr_ctx_t *ctx, xr_buf_t *out, const void *data,
    size_t n);
static int xr_fixed_message(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_fxfield_t *f, xr_str_t message, xr_str_t *out);

static int xr_fixed_decode(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_dir_e dir, const xr_ptxn_t *txn, const char *data, size_t len,
    xr_node_t **out);
static int xr_fixed_encode(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_dir_e dir, const xr_ptxn_t *txn, const xr_node_t *tree,
    xr_buf_t *out);
static int xr_fixed_encode_error(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_str_t wire_code, xr_str_t message, xr_buf_t *out);


const xr_adapter_t  xr_adapter_fixed = {
    XR_ADAPTER_VERSION,
    "fixed",
    "application/octet-stream",
    XR_ADAPTER_LAYOUT | XR_ADAPTER_UNIQUE,
    NULL,
    NULL,
    xr_fixed_decode,
    xr_fixed_encode,
    xr_fixed_encode_error,
    NULL
};


static const char  xr_fixed_hex[] = "0123456789ABCDEF";


/* ---- layouts --------------------------------------------------------- */

static const xr_fxfield_t *
xr_fixed_field(const xr_layout_t *l, xr_str_t name)
{
    size_t  i;

    if (l == NULL) {
        return NULL;
    }
    for (i = 0; i < l->nfields; i++) {
        if (xr_str_cmp(l->fields[i].name, name) == 0) {
            return &l->fields[i];
        }
    }
    return NULL;
}


/*
 * Every field inside the layout's fixed part, bin fields 1..8 bytes, names
 * unique in the layout and absent from `other` (the header, when l is the
 * body: the tree is flat).
 */
static int
xr_fixed_check_fields(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *l, const xr_layout_t *other)
{
    const xr_fxfield_t  *f;
    size_t               i, j;
    char                 name[XR_FIELD_LEN];

    if (l->nfields && l->fields == NULL) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "profile %.*s: layout without fields",
                       (int) p->name.len, p->name.data);
    }

    for (i = 0; i < l->nfields; i++) {
        f = &l->fields[i];
        XR_FIXED_NAME(name, f->name);

        if (f->len > l->size || f->off > l->size - f->len) {
            return xr_fail(ctx, XR_E_INTERNAL, name,
                           "profile %.*s: field \"%s\" (%zu+%zu) is outside "
                           "its %zu-byte layout",
                           (int) p->name.len, p->name.data, name, f->off,
                           f->len, l->size);
        }

        if (f->enc == XR_FX_BIN && (f->len < 1 || f->len > 8)) {
            return xr_fail(ctx, XR_E_INTERNAL, name,
                           "profile %.*s: bin field \"%s\" has %zu bytes, "
                           "not 1 to 8",
                           (int) p->name.len, p->name.data, name, f->len);
        }

        if (f->enc > XR_FX_HEX) {
            return xr_fail(ctx, XR_E_INTERNAL, name,
                           "profile %.*s: field \"%s\" has no encoding",
                           (int) p->name.len, p->name.data, name);
        }

        for (j = 0; j < i; j++) {
            if (xr_str_cmp(l->fields[j].name, f->name) == 0) {
                break;
            }
        }

        if (j < i || xr_fixed_field(other, f->name) != NULL
            || (other && other->repeat_name.len
                && xr_str_cmp(other->repeat_name, f->name) == 0))
        {
            return xr_fail(ctx, XR_E_INTERNAL, name,
                           "profile %.*s: field \"%s\" is defined twice",
                           (int) p->name.len, p->name.data, name);
        }
    }

    return XR_OK;
}


static int
xr_fixed_check_header(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *hdr)
{
    if (hdr == NULL) {
        return XR_OK;
    }

    if (hdr->repeat) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "profile %.*s: a header may not hold records",
                       (int) p->name.len, p->name.data);
    }

    return xr_fixed_check_fields(ctx, p, hdr, NULL);
}


/* After xr_fixed_check_header(hdr). */
static int
xr_fixed_check_body(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *hdr, const xr_layout_t *body)
{
    const xr_layout_t  *rec;
    char                name[XR_FIELD_LEN];

    if (body == NULL) {
        return XR_OK;
    }

    if (xr_fixed_check_fields(ctx, p, body, hdr) != XR_OK) {
        return XR_ERROR;
    }

    rec = body->repeat;
    if (rec == NULL) {
        return XR_OK;
    }

    XR_FIXED_NAME(name, body->repeat_name);

    if (rec->size == 0 || rec->repeat || body->repeat_name.len == 0) {
        return xr_fail(ctx, XR_E_INTERNAL, name,
                       "profile %.*s: bad records block \"%s\"",
                       (int) p->name.len, p->name.data, name);
    }

    if (xr_fixed_field(body, body->repeat_name)
        || xr_fixed_field(hdr, body->repeat_name))
    {
        return xr_fail(ctx, XR_E_INTERNAL, name,
                       "profile %.*s: records \"%s\" share a field's name",
                       (int) p->name.len, p->name.data, name);
    }

    if (body->count_field.len
        && xr_fixed_field(body, body->count_field) == NULL
        && xr_fixed_field(hdr, body->count_field) == NULL)
    {
        XR_FIXED_NAME(name, body->count_field);
        return xr_fail(ctx, XR_E_INTERNAL, name,
                       "profile %.*s: no count field \"%s\"",
                       (int) p->name.len, p->name.data, name);
    }

    return xr_fixed_check_fields(ctx, p, rec, NULL);
}


/* The header field carrying the transaction code: the wire of map @txn. */
static int
xr_fixed_txn_field(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_layout_t *hdr, xr_str_t *name)
{
    const xr_mapset_t  *ms = &p->env[dir];
    size_t              i;

    for (i = 0; ms->maps && i < ms->nmaps; i++) {
        if (ms->maps[i].env == XR_ENV_TXN
            && xr_fixed_field(hdr, ms->maps[i].wire) != NULL)
        {
            *name = ms->maps[i].wire;
            return XR_OK;
        }
    }

    return xr_fail(ctx, XR_E_INTERNAL, NULL,
                   "profile %.*s: no header field carries @txn",
                   (int) p->name.len, p->name.data);
}


static int
xr_fixed_find_txn(xr_ctx_t *ctx, const xr_profile_t *p, xr_str_t code,
    const xr_ptxn_t **txn)
{
    size_t  i;

    while (code.len && code.data[code.len - 1] == ' ') {
        code.len--;
    }

    for (i = 0; p->txns && i < p->ntxns; i++) {
        if (xr_str_cmp(p->txns[i].code, code) == 0) {
            *txn = &p->txns[i];
            return XR_OK;
        }
    }

    return xr_fail(ctx, XR_E_TXN_UNKNOWN, NULL,
                   "unknown transaction code \"%.*s\"",
                   (int) (code.len > 64 ? 64 : code.len),
                   code.data ? code.data : "");
}


/* ---- decoding -------------------------------------------------------- */

static int
xr_fixed_get(xr_ctx_t *ctx, const xr_profile_t *p, const xr_fxfield_t *f,
    const unsigned char *src, xr_node_t **out)
{
    xr_node_t  *n;
    xr_str_t    s;
    uint64_t    v;
    size_t      i, len, ndig;
    unsigned    d, pad;
    char       *buf, num[24], name[XR_FIELD_LEN];

    XR_FIXED_NAME(name, f->name);

    switch (f->enc) {

    case XR_FX_TEXT:
        len = f->len;
        while (len && src[len - 1] == ' ') {
            len--;
        }
        s.data = "";
        s.len = 0;
        if (len && xr_charset_to_utf8(ctx, p->charset, (const char *) src,
                                      len, &s, name)
                   != XR_OK)
        {
            return XR_ERROR;
        }
        n = xr_node_string(ctx, s.data, s.len);
        break;

    case XR_FX_NUM:
        for (i = 0; i < f->len; i++) {
            if (src[i] < '0' || src[i] > '9') {
                return xr_fail(ctx, XR_E_FIELD_FORMAT, name,
                               "field \"%s\": byte %zu (0x%02X) is not "
                               "a digit", name, i, src[i]);
            }
        }
        n = xr_node_string(ctx, (const char *) src, f->len);
        break;

    case XR_FX_BCD:
        buf = xr_palloc(ctx->pool, 2 * f->len + 1);
        if (buf == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }

        /* 0xF nibbles pad the end only: once one is seen, all must be */
        ndig = 0;
        pad = 0;
        for (i = 0; i < 2 * f->len; i++) {
            d = (i & 1) ? (src[i / 2] & 0x0f) : (src[i / 2] >> 4);
            if (d == 0x0f) {
                pad = 1;
                continue;
            }
            if (d > 9 || pad) {
                return xr_fail(ctx, XR_E_FIELD_FORMAT, name,
                               "field \"%s\": byte %zu (0x%02X) is not "
                               "packed BCD", name, i / 2, src[i / 2]);
            }
            buf[ndig++] = (char) ('0' + d);
        }

        n = xr_node_new(ctx, XR_NODE_STRING);
        if (n) {
            buf[ndig] = '\0';
            n->u.s.data = buf;
            n->u.s.len = ndig;
        }
        break;

    case XR_FX_BIN:
        v = 0;
        for (i = 0; i < f->len; i++) {
            v = (v << 8) | src[i];
        }
        len = snprintf(num, sizeof(num), "%llu", (unsigned long long) v);
        n = xr_node_string(ctx, num, len);
        break;

    case XR_FX_HEX:
        buf = xr_palloc(ctx->pool, 2 * f->len + 1);
        if (buf == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }
        for (i = 0; i < f->len; i++) {
            buf[2 * i] = xr_fixed_hex[src[i] >> 4];
            buf[2 * i + 1] = xr_fixed_hex[src[i] & 0x0f];
        }
        buf[2 * f->len] = '\0';

        n = xr_node_new(ctx, XR_NODE_STRING);
        if (n) {
            n->u.s.data = buf;
            n->u.s.len = 2 * f->len;
        }
        break;

    default:
        return xr_fail(ctx, XR_E_INTERNAL, name, "field \"%s\": encoding",
                       name);
    }

    if (n == NULL) {
        return XR_ERROR;
    }

    *out = n;
    return XR_OK;
}


/* data holds at least l->size bytes. */
static int
xr_fixed_decode_fields(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *l, const unsigned char *data, xr_node_t *obj)
{
    const xr_fxfield_t  *f;
    xr_node_t           *n = NULL;   /* gcc -O: maybe-uninitialized */
    size_t               i;

    for (i = 0; i < l->nfields; i++) {
        f = &l->fields[i];
        if (xr_fixed_get(ctx, p, f, data + f->off, &n) != XR_OK
            || xr_object_add(ctx, obj, f->name, n) != XR_OK)
        {
            return XR_ERROR;
        }
    }
    return XR_OK;
}


/*
 * The records block of layout l: `avail` bytes remain in the message and
 * `room` bytes remain under the body limit.  Every count is checked
 * against the limits before anything is allocated for it.
 */
static int
xr_fixed_decode_records(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *l, xr_node_t *root, const unsigned char *data,
    size_t avail, size_t room)
{
    const xr_layout_t  *rec = l->repeat;
    const xr_node_t    *cn;
    xr_node_t          *arr, *obj;
    size_t              n, i, d, max, per, left;
    char                name[XR_FIELD_LEN];

    XR_FIXED_NAME(name, l->repeat_name);

    if (l->count_field.len) {
        cn = xr_object_get(root, l->count_field);
        if (cn == NULL || cn->type != XR_NODE_STRING || cn->u.s.len == 0) {
            XR_FIXED_NAME(name, l->count_field);
            return xr_fail(ctx, XR_E_FIELD_FORMAT, name,
                           "count field \"%s\" is empty", name);
        }

        /* saturates: any count past SIZE_MAX / 10 is too large anyway */
        n = 0;
        for (i = 0; i < cn->u.s.len; i++) {
            d = (unsigned char) cn->u.s.data[i] - '0';
            if (d > 9) {
                XR_FIXED_NAME(name, l->count_field);
                return xr_fail(ctx, XR_E_FIELD_FORMAT, name,
                               "count field \"%s\" is not decimal", name);
            }
            n = n > SIZE_MAX / 10 - 1 ? SIZE_MAX / 10 : n * 10 + d;
        }

    } else {
        if (avail % rec->size) {
            return xr_fail(ctx, XR_E_TRUNCATED, name,
                           "records \"%s\": trailing partial record of "
                           "%zu bytes", name, avail % rec->size);
        }
        n = avail / rec->size;
    }

    max = ctx->max_nodes ? ctx->max_nodes : XR_DEFAULT_MAX_NODES;
    left = ctx->nodes < max ? max - ctx->nodes : 0;
    per = rec->nfields + 1;

    if (n > left / per || n > room / rec->size) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, name,
                       "records \"%s\": %zu records exceed the limit",
                       name, n);
    }

    if (n > avail / rec->size) {
        return xr_fail(ctx, XR_E_TRUNCATED, name,
                       "records \"%s\": %zu records of %zu bytes need "
                       "%zu bytes, %zu remain",
                       name, n, rec->size, n * rec->size, avail);
    }

    if (avail > n * rec->size) {
        return xr_fail(ctx, XR_E_SYNTAX, NULL, "%zu trailing bytes",
                       avail - n * rec->size);
    }

    arr = xr_node_new(ctx, XR_NODE_ARRAY);
    if (arr == NULL) {
        return XR_ERROR;
    }

    if (n) {
        arr->u.arr.items = xr_palloc(ctx->pool, n * sizeof(xr_node_t *));
        if (arr->u.arr.items == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }
        arr->u.arr.cap = n;
    }

    for (i = 0; i < n; i++) {
        obj = xr_node_new(ctx, XR_NODE_OBJECT);
        if (obj == NULL
            || xr_fixed_decode_fields(ctx, p, rec, data + i * rec->size, obj)
               != XR_OK
            || xr_array_push(ctx, arr, obj) != XR_OK)
        {
            return XR_ERROR;
        }
    }

    return xr_object_add(ctx, root, l->repeat_name, arr);
}


/* Whether a decoded response header says success. */
static int
xr_fixed_ok(const xr_profile_t *p, const xr_node_t *root)
{
    const xr_node_t  *r;
    size_t            i;

    r = xr_object_get(root, p->result_field);
    if (r == NULL || r->type != XR_NODE_STRING) {
        return 0;
    }
    for (i = 0; i < p->nok_values; i++) {
        if (xr_str_cmp(r->u.s, p->ok_values[i]) == 0) {
            return 1;
        }
    }
    return 0;
}


static int
xr_fixed_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const char *data, size_t len, xr_node_t **out)
{
    const unsigned char  *d = (const unsigned char *) data;
    const xr_layout_t    *hdr, *body;
    const xr_node_t      *code;
    xr_node_t            *root;
    xr_str_t              tf;
    size_t                hsize, bsize, max;

    *out = NULL;

    if (len == 0) {
        return xr_fail(ctx, XR_E_BODY_EMPTY, NULL, NULL);
    }

    max = xr_ctx_max_body(ctx);
    if (len > max) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "message of %zu bytes is larger than the %zu-byte "
                       "limit", len, max);
    }

    hdr = p->header[dir];
    if (xr_fixed_check_header(ctx, p, hdr) != XR_OK) {
        return XR_ERROR;
    }

    hsize = hdr ? hdr->size : 0;
    if (len < hsize) {
        return xr_fail(ctx, XR_E_TRUNCATED, NULL,
                       "message of %zu bytes is shorter than its %zu-byte "
                       "header", len, hsize);
    }

    root = xr_node_new(ctx, XR_NODE_OBJECT);
    if (root == NULL) {
        return XR_ERROR;
    }

    if (hdr && xr_fixed_decode_fields(ctx, p, hdr, d, root) != XR_OK) {
        return XR_ERROR;
    }

    if (txn == NULL) {
        if (xr_fixed_txn_field(ctx, p, dir, hdr, &tf) != XR_OK) {
            return XR_ERROR;
        }
        /* decoded above: the field is in the header */
        code = xr_object_get(root, tf);
        if (xr_fixed_find_txn(ctx, p, code->u.s, &txn) != XR_OK) {
            return XR_ERROR;
        }
    }

    /*
     * An error answer may be its header alone (what encode_error writes):
     * when the result code is not a success value, no body need follow.
     */
    if (dir == XR_DIR_RESPONSE && len == hsize && !xr_fixed_ok(p, root)) {
        *out = root;
        return XR_OK;
    }

    body = txn->layout[dir];
    if (xr_fixed_check_body(ctx, p, hdr, body) != XR_OK) {
        return XR_ERROR;
    }

    bsize = body ? body->size : 0;
    if (len - hsize < bsize) {
        return xr_fail(ctx, XR_E_TRUNCATED, NULL,
                       "message of %zu bytes is shorter than its %zu-byte "
                       "header and %zu-byte body", len, hsize, bsize);
    }

    if (body && xr_fixed_decode_fields(ctx, p, body, d + hsize, root)
                != XR_OK)
    {
        return XR_ERROR;
    }

    if (body && body->repeat) {
        if (xr_fixed_decode_records(ctx, p, body, root, d + hsize + bsize,
                                    len - hsize - bsize,
                                    max - hsize - bsize)
            != XR_OK)
        {
            return XR_ERROR;
        }

    } else if (len > hsize + bsize) {
        return xr_fail(ctx, XR_E_SYNTAX, NULL, "%zu trailing bytes",
                       len - hsize - bsize);
    }

    *out = root;
    return XR_OK;
}


/* ---- encoding -------------------------------------------------------- */

/*
 * Writes value v (UTF-8, or the wire charset when raw) as field f at dst.
 * An empty value is the field's blank: spaces for text, zeros otherwise.
 */
static int
xr_fixed_put(xr_ctx_t *ctx, const xr_profile_t *p, const xr_fxfield_t *f,
    xr_str_t v, unsigned raw, unsigned char *dst)
{
    uint64_t        n;
    size_t          i, k, ndig;
    unsigned        d;
    unsigned char   c;
    xr_str_t        w;
    char            name[XR_FIELD_LEN];

    XR_FIXED_NAME(name, f->name);

    switch (f->enc) {

    case XR_FX_TEXT:
        w = v;
        if (v.len && !raw
            && xr_charset_from_utf8(ctx, p->charset, v.data, v.len, &w, name)
               != XR_OK)
        {
            return XR_ERROR;
        }
        if (w.len > f->len) {
            return xr_fail(ctx, XR_E_FIELD_TOO_LONG, name,
                           "field \"%s\" is %zu bytes in %s, longer than "
                           "%zu", name, w.len, xr_charset_name(p->charset),
                           f->len);
        }
        if (w.len) {
            memcpy(dst, w.data, w.len);
        }
        memset(dst + w.len, ' ', f->len - w.len);
        return XR_OK;

    case XR_FX_NUM:
    case XR_FX_BCD:
        for (i = 0; i < v.len; i++) {
            if (v.data[i] < '0' || v.data[i] > '9') {
                return xr_fail(ctx, XR_E_FIELD_FORMAT, name,
                               "field \"%s\" holds a non-digit", name);
            }
        }

        ndig = f->enc == XR_FX_NUM ? f->len : 2 * f->len;
        if (v.len > ndig) {
            return xr_fail(ctx, XR_E_FIELD_TOO_LONG, name,
                           "field \"%s\" has %zu digits, longer than %zu",
                           name, v.len, ndig);
        }

        if (f->enc == XR_FX_NUM) {
            memset(dst, '0', f->len - v.len);
            if (v.len) {
                memcpy(dst + f->len - v.len, v.data, v.len);
            }
            return XR_OK;
        }

        /* digit k of the left-padded 2 * len digits */
        memset(dst, 0, f->len);
        for (k = ndig - v.len, i = 0; i < v.len; k++, i++) {
            d = (unsigned) (v.data[i] - '0');
            dst[k / 2] |= (k & 1) ? d : d << 4;
        }
        return XR_OK;

    case XR_FX_BIN:
        n = 0;
        for (i = 0; i < v.len; i++) {
            if (v.data[i] < '0' || v.data[i] > '9') {
                return xr_fail(ctx, XR_E_FIELD_FORMAT, name,
                               "field \"%s\" is not a decimal number", name);
            }
            d = (unsigned) (v.data[i] - '0');
            if (n > (UINT64_MAX - d) / 10) {
                return xr_fail(ctx, XR_E_FIELD_TOO_LONG, name,
                               "field \"%s\": value does not fit in %zu "
                               "bytes", name, f->len);
            }
            n = n * 10 + d;
        }

        if (f->len < 8 && (n >> (8 * f->len)) != 0) {
            return xr_fail(ctx, XR_E_FIELD_TOO_LONG, name,
                           "field \"%s\": value does not fit in %zu bytes",
                           name, f->len);
        }

        for (i = f->len; i > 0; i--) {
            dst[i - 1] = (unsigned char) (n & 0xff);
            n >>= 8;
        }
        return XR_OK;

    case XR_FX_HEX:
        if (v.len > 2 * f->len) {
            return xr_fail(ctx, XR_E_FIELD_TOO_LONG, name,
                           "field \"%s\" has %zu hex digits, longer than "
                           "%zu", name, v.len, 2 * f->len);
        }

        memset(dst, 0, f->len);
        for (k = 2 * f->len - v.len, i = 0; i < v.len; k++, i++) {
            c = (unsigned char) v.data[i];
            if (c >= '0' && c <= '9') {
                d = c - '0';
            } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
                d = (c | 0x20) - 'a' + 10;
            } else {
                return xr_fail(ctx, XR_E_FIELD_FORMAT, name,
                               "field \"%s\" is not hex", name);
            }
            dst[k / 2] |= (k & 1) ? d : d << 4;
        }
        return XR_OK;
    }

    return xr_fail(ctx, XR_E_INTERNAL, name, "field \"%s\": encoding", name);
}


/* The text of obj's member for f; empty when absent (then f's fill). */
static int
xr_fixed_value(xr_ctx_t *ctx, const xr_fxfield_t *f, const xr_node_t *obj,
    xr_str_t *v)
{
    const xr_node_t  *n;
    char              name[XR_FIELD_LEN], num[24];
    int               len;

    n = obj ? xr_object_get(obj, f->name) : NULL;

    if (n == NULL || n->type == XR_NODE_NULL) {
        *v = f->fill;
        return XR_OK;
    }

    switch (n->type) {

    case XR_NODE_STRING:
    case XR_NODE_NUMBER:
        *v = n->u.s;
        return XR_OK;

    case XR_NODE_INT:
        len = snprintf(num, sizeof(num), "%lld", (long long) n->u.i);
        *v = xr_pstr(ctx->pool, num, len);
        if (v->data == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }
        return XR_OK;

    default:
        XR_FIXED_NAME(name, f->name);
        return xr_fail(ctx, XR_E_FIELD_TYPE, name,
                       "field \"%s\" is a %s, not a string", name,
                       xr_node_type_name(n->type));
    }
}


static int
xr_fixed_add(xr_ctx_t *ctx, xr_buf_t *out, const void *data, size_t n)
{
    if (out->limit && (out->len > out->limit || n > out->limit - out->len)) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "encoded message is larger than %zu bytes",
                       out->limit);
    }
    if (xr_buf_add(out, data, n) != XR_OK) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/*
 * One layout's fixed part.  Bytes no field covers are spaces in an
 * all-character layout (text, num) and zero bytes otherwise.
 */
static int
xr_fixed_encode_part(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_layout_t *l, const xr_node_t *obj, const xr_fixed_ovr_t *ovr,
    xr_buf_t *out)
{
    const xr_fxfield_t  *f;
    unsigned char       *buf;
    unsigned             raw;
    xr_str_t             v = xr_null_string;   /* gcc -O */
    size_t               i, k;
    int                  gap = ' ';

    buf = xr_palloc(ctx->pool, l->size);
    if (buf == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0; i < l->nfields; i++) {
        if (l->fields[i].enc != XR_FX_TEXT && l->fields[i].enc != XR_FX_NUM) {
            gap = 0;
        }
    }
    memset(buf, gap, l->size);

    for (i = 0; i < l->nfields; i++) {
        f = &l->fields[i];
        raw = 0;

        for (k = 0; ovr && k < XR_FIXED_NOVR; k++) {
            if (ovr[k].name.len && xr_str_cmp(ovr[k].name, f->name) == 0) {
                break;
            }
        }

        if (ovr && k < XR_FIXED_NOVR) {
            v = ovr[k].value;
            raw = ovr[k].raw;

        } else if (xr_fixed_value(ctx, f, obj, &v) != XR_OK) {
            return XR_ERROR;
        }

        if (xr_fixed_put(ctx, p, f, v, raw, buf + f->off) != XR_OK) {
            return XR_ERROR;
        }
    }

    return xr_fixed_add(ctx, out, buf, l->size);
}


static int
xr_fixed_encode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const xr_node_t *tree, xr_buf_t *out)
{
    const xr_layout_t  *hdr, *body;
    const xr_node_t    *code, *arr, *item;
    xr_fixed_ovr_t      ovr[XR_FIXED_NOVR];
    xr_str_t            tf;
    size_t              start, i, n;
    char                num[24], name[XR_FIELD_LEN];

    if (tree == NULL || tree->type != XR_NODE_OBJECT) {
        return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                       "a fixed-width message is encoded from an object");
    }

    hdr = p->header[dir];
    if (xr_fixed_check_header(ctx, p, hdr) != XR_OK) {
        return XR_ERROR;
    }

    if (txn == NULL) {
        if (xr_fixed_txn_field(ctx, p, dir, hdr, &tf) != XR_OK) {
            return XR_ERROR;
        }
        code = xr_object_get(tree, tf);
        if (code == NULL
            || (code->type != XR_NODE_STRING && code->type != XR_NODE_NUMBER))
        {
            XR_FIXED_NAME(name, tf);
            return xr_fail(ctx, XR_E_FIELD_MISSING, name,
                           "no transaction code in field \"%s\"", name);
        }
        if (xr_fixed_find_txn(ctx, p, code->u.s, &txn) != XR_OK) {
            return XR_ERROR;
        }
    }

    body = txn->layout[dir];
    if (xr_fixed_check_body(ctx, p, hdr, body) != XR_OK) {
        return XR_ERROR;
    }

    /* an error answer is its header alone, as encode_error writes it */
    if (dir == XR_DIR_RESPONSE && !xr_fixed_ok(p, tree)) {
        body = NULL;
    }

    memset(ovr, 0, sizeof(ovr));
    arr = NULL;
    n = 0;

    if (body && body->repeat) {
        arr = xr_object_get(tree, body->repeat_name);
        if (arr && arr->type == XR_NODE_NULL) {
            arr = NULL;
        }
        if (arr && arr->type != XR_NODE_ARRAY) {
            XR_FIXED_NAME(name, body->repeat_name);
            return xr_fail(ctx, XR_E_FIELD_TYPE, name,
                           "records \"%s\" are a %s, not an array", name,
                           xr_node_type_name(arr->type));
        }
        n = arr ? arr->u.arr.count : 0;

        /* the count is the array's, whatever the tree says */
        ovr[0].name = body->count_field;
        ovr[0].value.len = snprintf(num, sizeof(num), "%zu", n);
        ovr[0].value.data = num;
    }

    start = out->len;

    if ((hdr && xr_fixed_encode_part(ctx, p, hdr, tree, ovr, out) != XR_OK)
        || (body && xr_fixed_encode_part(ctx, p, body, tree, ovr, out)
                    != XR_OK))
    {
        goto failed;
    }

    for (i = 0; i < n; i++) {
        item = arr->u.arr.items[i];
        if (item == NULL || item->type != XR_NODE_OBJECT) {
            XR_FIXED_NAME(name, body->repeat_name);
            xr_fail(ctx, XR_E_FIELD_TYPE, name,
                    "record %zu of \"%s\" is not an object", i, name);
            goto failed;
        }
        if (xr_fixed_encode_part(ctx, p, body->repeat, item, NULL, out)
            != XR_OK)
        {
            goto failed;
        }
    }

    return XR_OK;

failed:

    if (out->len > start) {
        out->len = start;
    }
    return XR_ERROR;
}


/*
 * The error text in the wire charset, cut at a character boundary to fit
 * field f.  A character the charset cannot carry, or a byte that is not
 * UTF-8, becomes '?': an error answer always goes out.
 */
static int
xr_fixed_message(xr_ctx_t *ctx, const xr_profile_t *p, const xr_fxfield_t *f,
    xr_str_t message, xr_str_t *out)
{
    xr_ctx_t        tmp;
    xr_str_t        w;
    size_t          i, j, step;
    unsigned char   c;
    char           *buf;

    out->data = "";
    out->len = 0;

    if (message.len == 0) {
        return XR_OK;
    }

    /* a scratch context: the caller's may already hold its error */
    xr_ctx_init(&tmp, ctx->pool);

    if (xr_charset_from_utf8(&tmp, p->charset, message.data, message.len,
                             &w, NULL)
        == XR_OK && w.len <= f->len)
    {
        *out = w;
        return XR_OK;
    }

    buf = xr_palloc(ctx->pool, f->len);
    if (buf == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    /* one character at a time until the field is full */
    for (i = 0, j = 0; i < message.len; i += step) {
        c = (unsigned char) message.data[i];
        step = c < 0xc0 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
        if (step > message.len - i) {
            step = message.len - i;
        }

        xr_ctx_init(&tmp, ctx->pool);

        if (xr_utf8_validate(&tmp, message.data + i, step, NULL) != XR_OK) {
            step = 1;
            w.data = "?";
            w.len = 1;

        } else if (xr_charset_from_utf8(&tmp, p->charset, message.data + i,
                                        step, &w, NULL)
                   != XR_OK)
        {
            if (tmp.err == XR_E_NOMEM) {
                return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
            }
            w.data = "?";
            w.len = 1;
        }

        if (w.len > f->len - j) {
            break;
        }
        memcpy(buf + j, w.data, w.len);
        j += w.len;
    }

    out->data = buf;
    out->len = j;
    return XR_OK;
}


static int
xr_fixed_encode_error(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_str_t wire_code, xr_str_t message, xr_buf_t *out)
{
    const xr_layout_t   *hdr = p->header[XR_DIR_RESPONSE];
    const xr_fxfield_t  *rf, *mf;
    xr_fixed_ovr_t       ovr[XR_FIXED_NOVR];
    size_t               start;
    char                 name[XR_FIELD_LEN];

    if (hdr == NULL) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "profile %.*s: no response header for errors",
                       (int) p->name.len, p->name.data);
    }

    if (xr_fixed_check_header(ctx, p, hdr) != XR_OK) {
        return XR_ERROR;
    }

    rf = xr_fixed_field(hdr, p->result_field);
    mf = xr_fixed_field(hdr, p->message_field);

    if (rf == NULL || (p->message_field.len && mf == NULL)) {
        XR_FIXED_NAME(name, rf ? p->message_field : p->result_field);
        return xr_fail(ctx, XR_E_INTERNAL, name,
                       "profile %.*s: no field \"%s\" in the response "
                       "header", (int) p->name.len, p->name.data, name);
    }

    memset(ovr, 0, sizeof(ovr));
    ovr[0].name = rf->name;
    ovr[0].value = wire_code;

    if (mf && mf != rf) {
        ovr[1].name = mf->name;
        ovr[1].value = message;

        if (mf->enc == XR_FX_TEXT) {
            if (xr_fixed_message(ctx, p, mf, message, &ovr[1].value)
                != XR_OK)
            {
                return XR_ERROR;
            }
            ovr[1].raw = 1;
        }
    }

    start = out->len;

    if (xr_fixed_encode_part(ctx, p, hdr, NULL, ovr, out) != XR_OK) {
        if (out->len > start) {
            out->len = start;
        }
        return XR_ERROR;
    }

    return XR_OK;
}
