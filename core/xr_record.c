/*
 * Stored records: the format is described in xr_record.h.
 *
 * Unpacking copies the record into the pool once and points every string
 * into that copy: one allocation and one memcpy instead of one per string.
 * The byte after each string in the copy is the first byte of the next
 * item, already read from the caller's buffer, so it can become the
 * string's terminating NUL.
 */

#include <stdlib.h>
#include <string.h>

#include "xr_record.h"


#define XR_REC_MAGIC        "XRM"
#define XR_REC_MAGIC_LEN    3

#define XR_REC_RESPONSE     0x01
#define XR_REC_HAS_TIME     0x02
#define XR_REC_OK           0x04
#define XR_REC_HAS_BODY     0x08
#define XR_REC_FLAGS        0x0f

#define XR_REC_T_TIME       0x01
#define XR_REC_T_MSEC       0x02
#define XR_REC_T_FLAGS      0x03

#define XR_REC_TYPE_MASK    0x0f
#define XR_REC_BIT          0x10        /* BOOL value, OBJECT unique */

#define XR_REC_NENV         10


typedef struct {
    xr_ctx_t               *ctx;
    xr_buf_t               *out;
    unsigned                max_depth;
    unsigned                canon:1;
} xr_rec_writer_t;


typedef struct {
    xr_ctx_t               *ctx;
    const unsigned char    *start;
    const unsigned char    *p;
    const unsigned char    *end;
    char                   *copy;       /* the record in the pool */
    unsigned                max_depth;
    size_t                  max_nodes;
    size_t                  nodes;
} xr_rec_reader_t;


typedef struct {
    const xr_member_t      *m;
    size_t                  index;
} xr_rec_sorted_t;


static int xr_rec_put_node(xr_rec_writer_t *w, const xr_node_t *n,
    unsigned depth);
static int xr_rec_get_node(xr_rec_reader_t *r, unsigned depth,
    xr_node_t **out);


/* The envelope strings in record order. */
static xr_str_t *
xr_rec_env(xr_msg_t *msg, size_t i)
{
    switch (i) {
    case 0:  return &msg->domain;
    case 1:  return &msg->txn;
    case 2:  return &msg->msg_id;
    case 3:  return &msg->origin;
    case 4:  return &msg->dest;
    case 5:  return &msg->caller;
    case 6:  return &msg->version;
    case 7:  return &msg->err_code;
    case 8:  return &msg->err_msg;
    default: return &msg->ref_msg_id;
    }
}


/* The ranges unpack accepts; pack checks the same so its output reads. */
static int
xr_rec_time_ok(const xr_time_t *t)
{
    if (t->year < 0 || t->year > 9999 || t->month < 1 || t->month > 12
        || t->day < 1 || t->day > 31)
    {
        return 0;
    }
    if (t->has_time
        && (t->hour < 0 || t->hour > 23 || t->min < 0 || t->min > 59
            || t->sec < 0 || t->sec > 60))
    {
        return 0;
    }
    if (t->has_msec && (t->msec < 0 || t->msec > 999)) {
        return 0;
    }
    return 1;
}


/* ---- pack ------------------------------------------------------------ */

static void
xr_rec_put_varint(xr_buf_t *b, uint64_t v)
{
    unsigned char  tmp[10];
    size_t         n;

    if (v < 0x80) {
        xr_buf_addc(b, (char) v);
        return;
    }

    n = 0;
    while (v >= 0x80) {
        tmp[n++] = (unsigned char) (v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (unsigned char) v;
    xr_buf_add(b, tmp, n);
}


static void
xr_rec_put_bytes(xr_buf_t *b, xr_str_t s)
{
    xr_rec_put_varint(b, s.len);
    if (s.len) {
        xr_buf_add(b, s.data, s.len);
    }
}


static int
xr_rec_put_time(xr_rec_writer_t *w, const xr_time_t *t)
{
    unsigned char  tmp[10];
    size_t         n;

    if (!xr_rec_time_ok(t)) {
        return xr_fail(w->ctx, XR_E_INTERNAL, NULL,
                       "stored record: time %d-%d-%d out of range",
                       t->year, t->month, t->day);
    }

    n = 0;
    tmp[n++] = (t->has_time ? XR_REC_T_TIME : 0)
               | (t->has_msec ? XR_REC_T_MSEC : 0);
    tmp[n++] = (unsigned char) (t->year & 0xff);
    tmp[n++] = (unsigned char) (t->year >> 8);
    tmp[n++] = (unsigned char) t->month;
    tmp[n++] = (unsigned char) t->day;
    if (t->has_time) {
        tmp[n++] = (unsigned char) t->hour;
        tmp[n++] = (unsigned char) t->min;
        tmp[n++] = (unsigned char) t->sec;
    }
    if (t->has_msec) {
        tmp[n++] = (unsigned char) (t->msec & 0xff);
        tmp[n++] = (unsigned char) (t->msec >> 8);
    }

    xr_buf_add(w->out, tmp, n);
    return XR_OK;
}


static int
xr_rec_key_cmp(const void *a, const void *b)
{
    const xr_rec_sorted_t  *x = a, *y = b;
    int                     c;

    c = xr_str_cmp(x->m->key, y->m->key);
    if (c != 0) {
        return c;
    }
    /* repeated keys keep their order: qsort() alone is not stable */
    return x->index < y->index ? -1 : x->index > y->index;
}


static int
xr_rec_put_members(xr_rec_writer_t *w, const xr_node_t *n, unsigned depth)
{
    const xr_member_t  *m;
    xr_rec_sorted_t    *sorted;
    size_t              i, count;

    count = n->u.obj.count;

    if (!w->canon || count < 2) {
        for (m = n->u.obj.first, i = 0; m && i < count; m = m->next, i++) {
            xr_rec_put_bytes(w->out, m->key);
            if (xr_rec_put_node(w, m->value, depth) != XR_OK) {
                return XR_ERROR;
            }
        }
        if (i != count || m != NULL) {
            return xr_fail(w->ctx, XR_E_INTERNAL, NULL,
                           "stored record: object count %zu does not match "
                           "its members", count);
        }
        return XR_OK;
    }

    sorted = xr_palloc(w->ctx->pool, count * sizeof(xr_rec_sorted_t));
    if (sorted == NULL) {
        return xr_fail(w->ctx, XR_E_NOMEM, NULL, NULL);
    }
    for (m = n->u.obj.first, i = 0; m && i < count; m = m->next, i++) {
        sorted[i].m = m;
        sorted[i].index = i;
    }
    if (i != count || m != NULL) {
        return xr_fail(w->ctx, XR_E_INTERNAL, NULL,
                       "stored record: object count %zu does not match "
                       "its members", count);
    }
    qsort(sorted, count, sizeof(xr_rec_sorted_t), xr_rec_key_cmp);

    for (i = 0; i < count; i++) {
        xr_rec_put_bytes(w->out, sorted[i].m->key);
        if (xr_rec_put_node(w, sorted[i].m->value, depth) != XR_OK) {
            return XR_ERROR;
        }
    }
    return XR_OK;
}


static int
xr_rec_put_node(xr_rec_writer_t *w, const xr_node_t *n, unsigned depth)
{
    unsigned  tag;
    uint64_t  z;
    size_t    i;

    if (n == NULL) {
        return xr_fail(w->ctx, XR_E_INTERNAL, NULL,
                       "stored record: a node is missing");
    }
    if ((unsigned) n->type > XR_NODE_ARRAY) {
        return xr_fail(w->ctx, XR_E_INTERNAL, NULL,
                       "stored record: unknown node type %u",
                       (unsigned) n->type);
    }

    tag = (unsigned) n->type;
    if ((n->type == XR_NODE_BOOL && n->u.b)
        || (n->type == XR_NODE_OBJECT && n->unique && !w->canon))
    {
        tag |= XR_REC_BIT;
    }
    xr_buf_addc(w->out, (char) tag);

    switch (n->type) {

    case XR_NODE_NULL:
    case XR_NODE_BOOL:
        return XR_OK;

    case XR_NODE_STRING:
    case XR_NODE_NUMBER:
        xr_rec_put_bytes(w->out, n->u.s);
        return XR_OK;

    case XR_NODE_INT:
    case XR_NODE_AMOUNT:
        /* zigzag: small negative amounts stay short */
        z = ((uint64_t) n->u.i << 1) ^ (n->u.i < 0 ? UINT64_MAX : 0);
        xr_rec_put_varint(w->out, z);
        return XR_OK;

    case XR_NODE_TIME:
        return xr_rec_put_time(w, &n->u.t);

    case XR_NODE_OBJECT:
    case XR_NODE_ARRAY:
        if (depth + 1 > w->max_depth) {
            return xr_fail(w->ctx, XR_E_INTERNAL, NULL,
                           "stored record: nesting deeper than %u",
                           w->max_depth);
        }
        if (n->type == XR_NODE_OBJECT) {
            xr_rec_put_varint(w->out, n->u.obj.count);
            return xr_rec_put_members(w, n, depth + 1);
        }
        xr_rec_put_varint(w->out, n->u.arr.count);
        for (i = 0; i < n->u.arr.count; i++) {
            if (xr_rec_put_node(w, n->u.arr.items[i], depth + 1) != XR_OK) {
                return XR_ERROR;
            }
        }
        return XR_OK;
    }

    return XR_OK;
}


static int
xr_rec_pack(xr_ctx_t *ctx, const xr_msg_t *msg, xr_buf_t *out, int canon)
{
    xr_rec_writer_t  w;
    xr_str_t         s;
    unsigned         flags;
    size_t           i, len0;

    w.ctx = ctx;
    w.out = out;
    w.max_depth = xr_ctx_max_depth(ctx);
    w.canon = canon ? 1 : 0;

    if (msg->body && msg->body->type != XR_NODE_OBJECT) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "stored record: the body is a %s, not an object",
                       xr_node_type_name(msg->body->type));
    }

    len0 = out->len;

    flags = (msg->dir == XR_DIR_RESPONSE ? XR_REC_RESPONSE : 0)
            | (msg->has_time ? XR_REC_HAS_TIME : 0)
            | (msg->ok ? XR_REC_OK : 0)
            | (msg->body ? XR_REC_HAS_BODY : 0);

    xr_buf_add(out, XR_REC_MAGIC, XR_REC_MAGIC_LEN);
    xr_buf_addc(out, (char) XR_RECORD_VERSION);
    xr_buf_addc(out, (char) flags);

    for (i = 0; i < XR_REC_NENV; i++) {
        /* the message is only read: xr_rec_env() wants a mutable one */
        s = *xr_rec_env((xr_msg_t *) msg, i);
        if (s.data == NULL && !canon) {
            xr_rec_put_varint(out, 0);
        } else {
            xr_rec_put_varint(out, (uint64_t) s.len + 1);
            if (s.len) {
                xr_buf_add(out, s.data, s.len);
            }
        }
    }

    if (msg->has_time && xr_rec_put_time(&w, &msg->time) != XR_OK) {
        out->len = len0;
        return XR_ERROR;
    }

    if (msg->body && xr_rec_put_node(&w, msg->body, 0) != XR_OK) {
        out->len = len0;
        return XR_ERROR;
    }

    if (out->failed) {
        out->len = len0;
        return xr_fail(ctx, out->limit ? XR_E_BODY_TOO_LARGE : XR_E_NOMEM,
                       NULL, "stored record: the output buffer is full");
    }

    return XR_OK;
}


int
xr_record_pack(xr_ctx_t *ctx, const xr_msg_t *msg, xr_buf_t *out)
{
    return xr_rec_pack(ctx, msg, out, 0);
}


int
xr_record_pack_canonical(xr_ctx_t *ctx, const xr_msg_t *msg, xr_buf_t *out)
{
    return xr_rec_pack(ctx, msg, out, 1);
}


/* ---- unpack ---------------------------------------------------------- */

static size_t
xr_rec_at(xr_rec_reader_t *r)
{
    return (size_t) (r->p - r->start);
}


static int
xr_rec_truncated(xr_rec_reader_t *r, const char *what)
{
    return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                   "stored record: ends inside %s at byte %zu", what,
                   xr_rec_at(r));
}


static int
xr_rec_get_varint_slow(xr_rec_reader_t *r, const char *what, uint64_t *v)
{
    uint64_t       x;
    unsigned       shift;
    unsigned char  c;

    x = 0;
    shift = 0;

    for ( ;; ) {
        if (r->p == r->end) {
            return xr_rec_truncated(r, what);
        }
        c = *r->p++;

        /* the tenth byte holds bit 63 only */
        if (shift == 63 && c > 1) {
            return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                           "stored record: %s over 64 bits at byte %zu",
                           what, xr_rec_at(r) - 1);
        }
        x |= (uint64_t) (c & 0x7f) << shift;

        if (!(c & 0x80)) {
            if (c == 0 && shift != 0) {
                return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                               "stored record: %s not in its shortest form "
                               "at byte %zu", what, xr_rec_at(r) - 1);
            }
            *v = x;
            return XR_OK;
        }
        shift += 7;
    }
}


static inline int
xr_rec_get_varint(xr_rec_reader_t *r, const char *what, uint64_t *v)
{
    /* most lengths and counts fit one byte */
    if (r->p < r->end && *r->p < 0x80) {
        *v = *r->p++;
        return XR_OK;
    }
    return xr_rec_get_varint_slow(r, what, v);
}


/* A length read from the record: n bytes must follow. */
static int
xr_rec_get_len(xr_rec_reader_t *r, const char *what, size_t *len)
{
    uint64_t  v;

    if (xr_rec_get_varint(r, what, &v) != XR_OK) {
        return XR_ERROR;
    }
    if (v > (uint64_t) (r->end - r->p)) {
        return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                       "stored record: %s %llu at byte %zu runs past the "
                       "end (%zu bytes left)", what, (unsigned long long) v,
                       xr_rec_at(r), (size_t) (r->end - r->p));
    }
    *len = (size_t) v;
    return XR_OK;
}


/* The next len bytes as a NUL-terminated string in the pool copy. */
static xr_str_t
xr_rec_take(xr_rec_reader_t *r, size_t len)
{
    xr_str_t  s;
    char     *d;

    d = r->copy + (r->p - r->start);
    d[len] = '\0';
    r->p += len;

    s.data = d;
    s.len = len;
    return s;
}


static int
xr_rec_get_string(xr_rec_reader_t *r, const char *what, xr_str_t *s)
{
    size_t  len = 0;

    if (xr_rec_get_len(r, what, &len) != XR_OK) {
        return XR_ERROR;
    }
    *s = xr_rec_take(r, len);
    return XR_OK;
}


static int
xr_rec_get_time(xr_rec_reader_t *r, xr_time_t *t)
{
    const unsigned char  *p;
    unsigned              flags;
    size_t                need;

    if (r->p == r->end) {
        return xr_rec_truncated(r, "a time");
    }
    flags = *r->p;
    if (flags & ~XR_REC_T_FLAGS) {
        return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                       "stored record: unknown time flags 0x%02x at byte %zu",
                       flags, xr_rec_at(r));
    }

    need = 5 + ((flags & XR_REC_T_TIME) ? 3 : 0)
           + ((flags & XR_REC_T_MSEC) ? 2 : 0);
    if ((size_t) (r->end - r->p) < need) {
        return xr_rec_truncated(r, "a time");
    }

    p = r->p + 1;
    memset(t, 0, sizeof(xr_time_t));
    t->has_time = (flags & XR_REC_T_TIME) ? 1 : 0;
    t->has_msec = (flags & XR_REC_T_MSEC) ? 1 : 0;
    t->year = p[0] | (p[1] << 8);
    t->month = p[2];
    t->day = p[3];
    p += 4;
    if (t->has_time) {
        t->hour = p[0];
        t->min = p[1];
        t->sec = p[2];
        p += 3;
    }
    if (t->has_msec) {
        t->msec = p[0] | (p[1] << 8);
    }

    if (!xr_rec_time_ok(t)) {
        return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                       "stored record: time out of range at byte %zu",
                       xr_rec_at(r));
    }

    r->p += need;
    return XR_OK;
}


static int
xr_rec_get_object(xr_rec_reader_t *r, xr_node_t *n, unsigned depth)
{
    xr_member_t  *m;
    uint64_t      count;
    size_t        i;

    if (xr_rec_get_varint(r, "an object count", &count) != XR_OK) {
        return XR_ERROR;
    }
    /* a member takes two bytes at least: its key length and its tag */
    if (count > (uint64_t) (r->end - r->p) / 2) {
        return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                       "stored record: object count %llu at byte %zu "
                       "exceeds the bytes left", (unsigned long long) count,
                       xr_rec_at(r));
    }
    if (count == 0) {
        return XR_OK;
    }

    /* the members in one piece; xr_object_add() may still append later */
    m = xr_palloc(r->ctx->pool, (size_t) count * sizeof(xr_member_t));
    if (m == NULL) {
        return xr_fail(r->ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0; i < count; i++) {
        if (xr_rec_get_string(r, "a key length", &m[i].key) != XR_OK
            || xr_rec_get_node(r, depth, &m[i].value) != XR_OK)
        {
            return XR_ERROR;
        }
        m[i].next = (i + 1 < count) ? &m[i + 1] : NULL;
    }

    n->u.obj.first = &m[0];
    n->u.obj.last = &m[count - 1];
    n->u.obj.count = (size_t) count;
    return XR_OK;
}


static int
xr_rec_get_array(xr_rec_reader_t *r, xr_node_t *n, unsigned depth)
{
    xr_node_t  **items;
    uint64_t     count;
    size_t       i;

    if (xr_rec_get_varint(r, "an array count", &count) != XR_OK) {
        return XR_ERROR;
    }
    /* an item takes one byte at least: its tag */
    if (count > (uint64_t) (r->end - r->p)) {
        return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                       "stored record: array count %llu at byte %zu "
                       "exceeds the bytes left", (unsigned long long) count,
                       xr_rec_at(r));
    }
    if (count == 0) {
        return XR_OK;
    }

    items = xr_palloc(r->ctx->pool, (size_t) count * sizeof(xr_node_t *));
    if (items == NULL) {
        return xr_fail(r->ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0; i < count; i++) {
        if (xr_rec_get_node(r, depth, &items[i]) != XR_OK) {
            return XR_ERROR;
        }
    }

    n->u.arr.items = items;
    n->u.arr.count = (size_t) count;
    n->u.arr.cap = (size_t) count;
    return XR_OK;
}


static int
xr_rec_get_node(xr_rec_reader_t *r, unsigned depth, xr_node_t **out)
{
    xr_node_t  *n;
    unsigned    tag, type;
    uint64_t    z;

    if (r->p == r->end) {
        return xr_rec_truncated(r, "a node");
    }
    tag = *r->p;
    type = tag & XR_REC_TYPE_MASK;

    if ((tag & ~(XR_REC_TYPE_MASK | XR_REC_BIT)) || type > XR_NODE_ARRAY
        || ((tag & XR_REC_BIT) && type != XR_NODE_BOOL
            && type != XR_NODE_OBJECT))
    {
        return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                       "stored record: unknown node tag 0x%02x at byte %zu",
                       tag, xr_rec_at(r));
    }
    if ((type == XR_NODE_OBJECT || type == XR_NODE_ARRAY)
        && depth + 1 > r->max_depth)
    {
        return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                       "stored record: nesting deeper than %u at byte %zu",
                       r->max_depth, xr_rec_at(r));
    }
    if (++r->nodes > r->max_nodes) {
        return xr_fail(r->ctx, XR_E_INTERNAL, NULL,
                       "stored record: more than %zu nodes", r->max_nodes);
    }
    r->p++;

    n = xr_node_new(r->ctx, (xr_node_type_e) type);
    if (n == NULL) {
        return XR_ERROR;
    }
    *out = n;

    switch (type) {

    case XR_NODE_NULL:
        return XR_OK;

    case XR_NODE_BOOL:
        n->u.b = (tag & XR_REC_BIT) ? 1 : 0;
        return XR_OK;

    case XR_NODE_STRING:
    case XR_NODE_NUMBER:
        return xr_rec_get_string(r, "a string length", &n->u.s);

    case XR_NODE_INT:
    case XR_NODE_AMOUNT:
        if (xr_rec_get_varint(r, "an integer", &z) != XR_OK) {
            return XR_ERROR;
        }
        n->u.i = (int64_t) ((z >> 1) ^ (0 - (z & 1)));
        return XR_OK;

    case XR_NODE_TIME:
        return xr_rec_get_time(r, &n->u.t);

    case XR_NODE_OBJECT:
        n->unique = (tag & XR_REC_BIT) ? 1 : 0;
        return xr_rec_get_object(r, n, depth + 1);

    default: /* XR_NODE_ARRAY */
        return xr_rec_get_array(r, n, depth + 1);
    }
}


int
xr_record_unpack(xr_ctx_t *ctx, const char *data, size_t len, xr_msg_t *msg)
{
    xr_rec_reader_t  r;
    xr_str_t        *s;
    uint64_t         v;
    unsigned         flags;
    size_t           i;

    xr_msg_init(msg, XR_DIR_REQUEST);

    if (len < XR_REC_MAGIC_LEN + 2 || data == NULL) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "stored record: %zu bytes, too short", len);
    }
    if (memcmp(data, XR_REC_MAGIC, XR_REC_MAGIC_LEN) != 0) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "stored record: not a record (bad magic)");
    }
    if ((unsigned char) data[XR_REC_MAGIC_LEN] != XR_RECORD_VERSION) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "stored record: version %u, expected %u",
                       (unsigned char) data[XR_REC_MAGIC_LEN],
                       XR_RECORD_VERSION);
    }
    flags = (unsigned char) data[XR_REC_MAGIC_LEN + 1];
    if (flags & ~XR_REC_FLAGS) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "stored record: unknown flags 0x%02x", flags);
    }

    r.ctx = ctx;
    r.start = (const unsigned char *) data;
    r.p = r.start + XR_REC_MAGIC_LEN + 2;
    r.end = r.start + len;
    r.max_depth = xr_ctx_max_depth(ctx);
    r.max_nodes = ctx->max_nodes ? ctx->max_nodes : XR_DEFAULT_MAX_NODES;
    r.nodes = 0;

    /* one more byte: the NUL after a string that ends the record */
    r.copy = xr_palloc(ctx->pool, len + 1);
    if (r.copy == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    memcpy(r.copy, data, len);

    msg->dir = (flags & XR_REC_RESPONSE) ? XR_DIR_RESPONSE : XR_DIR_REQUEST;
    msg->has_time = (flags & XR_REC_HAS_TIME) ? 1 : 0;
    msg->ok = (flags & XR_REC_OK) ? 1 : 0;

    for (i = 0; i < XR_REC_NENV; i++) {
        if (xr_rec_get_varint(&r, "an envelope length", &v) != XR_OK) {
            return XR_ERROR;
        }
        if (v == 0) {
            continue;           /* unset: data stays NULL */
        }
        if (v - 1 > (uint64_t) (r.end - r.p)) {
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "stored record: envelope length %llu at byte %zu "
                           "runs past the end (%zu bytes left)",
                           (unsigned long long) (v - 1), xr_rec_at(&r),
                           (size_t) (r.end - r.p));
        }
        s = xr_rec_env(msg, i);
        *s = xr_rec_take(&r, (size_t) (v - 1));
    }

    if (msg->has_time && xr_rec_get_time(&r, &msg->time) != XR_OK) {
        return XR_ERROR;
    }

    if (flags & XR_REC_HAS_BODY) {
        if (r.p < r.end && (*r.p & XR_REC_TYPE_MASK) != XR_NODE_OBJECT) {
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "stored record: the body is not an object");
        }
        if (xr_rec_get_node(&r, 0, &msg->body) != XR_OK) {
            return XR_ERROR;
        }
    }

    if (r.p != r.end) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "stored record: %zu bytes after the end at byte %zu",
                       (size_t) (r.end - r.p), xr_rec_at(&r));
    }

    return XR_OK;
}
