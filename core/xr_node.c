/*
 * The tree shared by wire documents and canonical bodies.
 */

#include <stdio.h>
#include <string.h>

#include "xr_node.h"


xr_node_t *
xr_node_new(xr_ctx_t *ctx, xr_node_type_e type)
{
    xr_node_t  *n;

    n = xr_palloc(ctx->pool, sizeof(xr_node_t));
    if (n == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }
    /* a constant size: the compiler writes the zeroes itself */
    memset(n, 0, sizeof(xr_node_t));
    n->type = type;
    ctx->nodes++;
    return n;
}


static xr_node_t *
xr_node_text(xr_ctx_t *ctx, xr_node_type_e type, const char *s, size_t len)
{
    xr_node_t  *n;

    n = xr_node_new(ctx, type);
    if (n == NULL) {
        return NULL;
    }
    n->u.s = xr_pstr(ctx->pool, s ? s : "", s ? len : 0);
    if (n->u.s.data == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }
    return n;
}


xr_node_t *
xr_node_string(xr_ctx_t *ctx, const char *s, size_t len)
{
    return xr_node_text(ctx, XR_NODE_STRING, s, len);
}


xr_node_t *
xr_node_string_ref(xr_ctx_t *ctx, const char *s, size_t len)
{
    xr_node_t  *n;

    n = xr_node_new(ctx, XR_NODE_STRING);
    if (n) {
        n->u.s.data = s ? s : "";
        n->u.s.len = s ? len : 0;
    }
    return n;
}


xr_node_t *
xr_node_number(xr_ctx_t *ctx, const char *s, size_t len)
{
    return xr_node_text(ctx, XR_NODE_NUMBER, s, len);
}


/* xr_node_new_member(): the member first, its node right after it */
typedef struct {
    xr_member_t     m;
    xr_node_t       n;
} xr_node_pair_t;


xr_node_t *
xr_node_new_member(xr_ctx_t *ctx, xr_node_type_e type)
{
    xr_node_pair_t  *pair;

    pair = xr_palloc(ctx->pool, sizeof(xr_node_pair_t));
    if (pair == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }
    memset(&pair->n, 0, sizeof(xr_node_t));
    pair->n.type = type;
    ctx->nodes++;
    return &pair->n;
}


void
xr_object_add_own(xr_node_t *obj, xr_str_t key, xr_node_t *value)
{
    xr_member_t  *m;

    m = &((xr_node_pair_t *) ((char *) value
                              - offsetof(xr_node_pair_t, n)))->m;
    m->key = key;
    m->value = value;
    m->next = NULL;

    if (obj->u.obj.last) {
        obj->u.obj.last->next = m;
    } else {
        obj->u.obj.first = m;
    }
    obj->u.obj.last = m;
    obj->u.obj.count++;
}


xr_node_t *
xr_node_int(xr_ctx_t *ctx, xr_node_type_e type, int64_t v)
{
    xr_node_t  *n;

    n = xr_node_new(ctx, type);
    if (n) {
        n->u.i = v;
    }
    return n;
}


int
xr_object_add(xr_ctx_t *ctx, xr_node_t *obj, xr_str_t key, xr_node_t *value)
{
    xr_member_t  *m;

    m = xr_palloc(ctx->pool, sizeof(xr_member_t));
    if (m == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    m->key = key;
    m->value = value;
    m->next = NULL;

    if (obj->u.obj.last) {
        obj->u.obj.last->next = m;
    } else {
        obj->u.obj.first = m;
    }
    obj->u.obj.last = m;
    obj->u.obj.count++;
    return XR_OK;
}


xr_node_t *
xr_object_get(const xr_node_t *obj, xr_str_t key)
{
    xr_member_t  *m;

    if (obj == NULL || obj->type != XR_NODE_OBJECT || key.len == 0) {
        return NULL;
    }
    /* length and first byte settle most mismatches without a call */
    for (m = obj->u.obj.first; m; m = m->next) {
        if (m->key.len == key.len && m->key.data[0] == key.data[0]
            && memcmp(m->key.data, key.data, key.len) == 0)
        {
            return m->value;
        }
    }
    return NULL;
}


xr_node_t *
xr_object_get_next(const xr_node_t *obj, xr_str_t key, xr_member_t **hint)
{
    xr_member_t  *m, *start;

    if (obj == NULL || obj->type != XR_NODE_OBJECT || key.len == 0) {
        return NULL;
    }

    /* from the member after the last one found, round to it */
    start = (*hint && (*hint)->next) ? (*hint)->next : obj->u.obj.first;

    /* canonical bodies: keys are the schema's own strings */
    if (start && start->key.data == key.data && start->key.len == key.len) {
        *hint = start;
        return start->value;
    }

    for (m = start; m; m = m->next) {
        if (m->key.len == key.len && m->key.data[0] == key.data[0]
            && memcmp(m->key.data, key.data, key.len) == 0)
        {
            *hint = m;
            return m->value;
        }
    }
    for (m = obj->u.obj.first; m && m != start; m = m->next) {
        if (m->key.len == key.len && m->key.data[0] == key.data[0]
            && memcmp(m->key.data, key.data, key.len) == 0)
        {
            *hint = m;
            return m->value;
        }
    }
    return NULL;
}


int
xr_array_push(xr_ctx_t *ctx, xr_node_t *arr, xr_node_t *item)
{
    xr_node_t  **items;
    size_t       cap;

    if (arr->u.arr.count == arr->u.arr.cap) {
        cap = arr->u.arr.cap ? arr->u.arr.cap * 2 : 4;
        items = xr_palloc(ctx->pool, cap * sizeof(xr_node_t *));
        if (items == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }
        if (arr->u.arr.count) {
            memcpy(items, arr->u.arr.items,
                   arr->u.arr.count * sizeof(xr_node_t *));
        }
        arr->u.arr.items = items;
        arr->u.arr.cap = cap;
    }
    arr->u.arr.items[arr->u.arr.count++] = item;
    return XR_OK;
}


/* Splits "a.b.c" at the first dot. */
static xr_str_t
xr_path_head(xr_str_t *path)
{
    xr_str_t  head;
    size_t    i;

    for (i = 0; i < path->len && path->data[i] != '.'; i++) {
        /* void */
    }
    head.data = path->data;
    head.len = i;

    if (i < path->len) {
        path->data += i + 1;
        path->len -= i + 1;
    } else {
        path->data += i;
        path->len = 0;
    }
    return head;
}


xr_node_t *
xr_node_path_get(const xr_node_t *root, xr_str_t path)
{
    const xr_node_t  *n = root;
    xr_str_t          key;

    if (path.len == 0) {
        return (xr_node_t *) root;
    }

    while (path.len) {
        key = xr_path_head(&path);
        n = xr_object_get(n, key);
        if (n == NULL) {
            return NULL;
        }
    }
    return (xr_node_t *) n;
}


int
xr_node_path_set(xr_ctx_t *ctx, xr_node_t *root, xr_str_t path,
    xr_node_t *value)
{
    xr_node_t  *n = root, *next;
    xr_str_t    key;

    if (root->type != XR_NODE_OBJECT || path.len == 0) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "bad path set");
    }

    for ( ;; ) {
        key = xr_path_head(&path);
        if (path.len == 0) {
            return xr_object_add(ctx, n, key, value);
        }
        next = xr_object_get(n, key);
        if (next == NULL) {
            next = xr_node_new(ctx, XR_NODE_OBJECT);
            if (next == NULL) {
                return XR_ERROR;
            }
            next->unique = root->unique;
            if (xr_object_add(ctx, n, key, next) != XR_OK) {
                return XR_ERROR;
            }
        } else if (next->type != XR_NODE_OBJECT) {
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "path step \"%.*s\" is not an object",
                           (int) key.len, key.data);
        }
        n = next;
    }
}


size_t
xr_node_path_all(const xr_node_t *root, xr_str_t path,
    const xr_node_t **out, size_t max)
{
    const xr_node_t  *n = root;
    xr_member_t      *m;
    xr_str_t          key;
    size_t            count = 0;

    if (path.len == 0 || root == NULL) {
        return 0;
    }

    for ( ;; ) {
        key = xr_path_head(&path);
        if (n == NULL || n->type != XR_NODE_OBJECT) {
            return 0;
        }
        if (path.len) {
            n = xr_object_get(n, key);
            continue;
        }
        for (m = n->u.obj.first; m; m = m->next) {
            if (xr_str_cmp(m->key, key) == 0) {
                if (count < max) {
                    out[count] = m->value;
                }
                count++;
            }
        }
        return count;
    }
}


const char *
xr_node_type_name(xr_node_type_e type)
{
    static const char  *names[] = {
        "null", "bool", "string", "number", "int", "amount", "time",
        "object", "array"
    };

    if ((unsigned) type < sizeof(names) / sizeof(names[0])) {
        return names[type];
    }
    return "?";
}


int
xr_node_equal(const xr_node_t *a, const xr_node_t *b)
{
    xr_member_t  *ma, *mb;
    size_t        i;

    if (a == NULL || b == NULL) {
        return a == b;
    }
    if (a->type != b->type) {
        return 0;
    }

    switch (a->type) {
    case XR_NODE_NULL:
        return 1;
    case XR_NODE_BOOL:
        return !a->u.b == !b->u.b;
    case XR_NODE_STRING:
    case XR_NODE_NUMBER:
        return xr_str_cmp(a->u.s, b->u.s) == 0;
    case XR_NODE_INT:
    case XR_NODE_AMOUNT:
        return a->u.i == b->u.i;
    case XR_NODE_TIME:
        return a->u.t.year == b->u.t.year && a->u.t.month == b->u.t.month
               && a->u.t.day == b->u.t.day
               && a->u.t.has_time == b->u.t.has_time
               && (!a->u.t.has_time
                   || (a->u.t.hour == b->u.t.hour && a->u.t.min == b->u.t.min
                       && a->u.t.sec == b->u.t.sec))
               && a->u.t.has_msec == b->u.t.has_msec
               && (!a->u.t.has_msec || a->u.t.msec == b->u.t.msec);
    case XR_NODE_OBJECT:
        if (a->u.obj.count != b->u.obj.count) {
            return 0;
        }
        for (ma = a->u.obj.first, mb = b->u.obj.first; ma && mb;
             ma = ma->next, mb = mb->next)
        {
            if (xr_str_cmp(ma->key, mb->key) != 0
                || !xr_node_equal(ma->value, mb->value))
            {
                return 0;
            }
        }
        return 1;
    case XR_NODE_ARRAY:
        if (a->u.arr.count != b->u.arr.count) {
            return 0;
        }
        for (i = 0; i < a->u.arr.count; i++) {
            if (!xr_node_equal(a->u.arr.items[i], b->u.arr.items[i])) {
                return 0;
            }
        }
        return 1;
    }
    return 0;
}


static int
xr_dump_string(xr_buf_t *out, xr_str_t s)
{
    size_t          i;
    unsigned char   c;

    xr_buf_addc(out, '"');
    for (i = 0; i < s.len; i++) {
        c = (unsigned char) s.data[i];
        switch (c) {
        case '"':  xr_buf_adds(out, "\\\""); break;
        case '\\': xr_buf_adds(out, "\\\\"); break;
        case '\n': xr_buf_adds(out, "\\n"); break;
        case '\r': xr_buf_adds(out, "\\r"); break;
        case '\t': xr_buf_adds(out, "\\t"); break;
        default:
            if (c < 0x20) {
                xr_buf_printf(out, "\\u%04x", c);
            } else {
                xr_buf_addc(out, (char) c);
            }
        }
    }
    return xr_buf_addc(out, '"');
}


static int
xr_dump_node(const xr_node_t *n, xr_buf_t *out, int indent)
{
    xr_member_t  *m;
    size_t        i;
    int64_t       v;

    switch (n->type) {
    case XR_NODE_NULL:
        return xr_buf_adds(out, "null");
    case XR_NODE_BOOL:
        return xr_buf_adds(out, n->u.b ? "true" : "false");
    case XR_NODE_STRING:
        return xr_dump_string(out, n->u.s);
    case XR_NODE_NUMBER:
        return xr_buf_add(out, n->u.s.data, n->u.s.len);
    case XR_NODE_INT:
        return xr_buf_printf(out, "%lld", (long long) n->u.i);
    case XR_NODE_AMOUNT:
        /* integer fen, tagged with its unit so it never reads as yuan */
        v = n->u.i;
        return xr_buf_printf(out, "{\"fen\": %lld}", (long long) v);
    case XR_NODE_TIME:
        /* the same text as xr_time_iso() */
        if (n->u.t.has_time && n->u.t.has_msec) {
            return xr_buf_printf(out,
                                 "\"%04d-%02d-%02dT%02d:%02d:%02d.%03d\"",
                                 n->u.t.year, n->u.t.month, n->u.t.day,
                                 n->u.t.hour, n->u.t.min, n->u.t.sec,
                                 n->u.t.msec);
        }
        if (n->u.t.has_time) {
            return xr_buf_printf(out, "\"%04d-%02d-%02dT%02d:%02d:%02d\"",
                                 n->u.t.year, n->u.t.month, n->u.t.day,
                                 n->u.t.hour, n->u.t.min, n->u.t.sec);
        }
        return xr_buf_printf(out, "\"%04d-%02d-%02d\"", n->u.t.year,
                             n->u.t.month, n->u.t.day);
    case XR_NODE_OBJECT:
        if (n->u.obj.count == 0) {
            return xr_buf_adds(out, "{}");
        }
        xr_buf_adds(out, "{\n");
        for (m = n->u.obj.first; m; m = m->next) {
            xr_buf_printf(out, "%*s", indent + 2, "");
            xr_dump_string(out, m->key);
            xr_buf_adds(out, ": ");
            xr_dump_node(m->value, out, indent + 2);
            xr_buf_adds(out, m->next ? ",\n" : "\n");
        }
        return xr_buf_printf(out, "%*s}", indent, "");
    case XR_NODE_ARRAY:
        if (n->u.arr.count == 0) {
            return xr_buf_adds(out, "[]");
        }
        xr_buf_adds(out, "[\n");
        for (i = 0; i < n->u.arr.count; i++) {
            xr_buf_printf(out, "%*s", indent + 2, "");
            xr_dump_node(n->u.arr.items[i], out, indent + 2);
            xr_buf_adds(out, i + 1 < n->u.arr.count ? ",\n" : "\n");
        }
        return xr_buf_printf(out, "%*s]", indent, "");
    }
    return XR_ERROR;
}


int
xr_node_dump(xr_ctx_t *ctx, const xr_node_t *n, xr_buf_t *out)
{
    if (xr_dump_node(n, out, 0) != XR_OK || out->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}
