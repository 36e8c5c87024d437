/*
 * xr_node: one tree type for both sides of a translation.
 *
 *  - A wire tree is what an adapter decodes a region's bytes into and
 *    encodes from: OBJECT, ARRAY, STRING, NUMBER (kept as its literal text,
 *    never converted to double), BOOL, NULL.  XML elements become OBJECT
 *    members (repeated elements are repeated members with the same key;
 *    attributes are members whose key starts with '@'); fixed-width records
 *    become OBJECTs of STRING fields with ARRAYs for repeated records.
 *  - A canonical body uses the typed kinds too: INT, AMOUNT (integer fen),
 *    TIME (broken-down, no time zone), and STRING for codes.
 *
 * Every node and string lives in the pool of the xr_ctx_t that made it.
 * Object members keep their order.
 */

#ifndef XR_NODE_H
#define XR_NODE_H

#include "xr_core.h"

typedef enum {
    XR_NODE_NULL = 0,
    XR_NODE_BOOL,
    XR_NODE_STRING,
    XR_NODE_NUMBER,     /* wire: literal text of a JSON number */
    XR_NODE_INT,        /* canonical */
    XR_NODE_AMOUNT,     /* canonical: integer fen */
    XR_NODE_TIME,       /* canonical */
    XR_NODE_OBJECT,
    XR_NODE_ARRAY
} xr_node_type_e;

typedef struct {
    int             year, month, day;
    int             hour, min, sec, msec;
    unsigned        has_time:1;     /* 0: a date only */
    unsigned        has_msec:1;
} xr_time_t;

typedef struct xr_node_s    xr_node_t;
typedef struct xr_member_s  xr_member_t;

struct xr_member_s {
    xr_str_t        key;
    xr_node_t      *value;
    xr_member_t    *next;
};

struct xr_node_s {
    xr_node_type_e  type;
    /*
     * OBJECT: its keys are known to be unique (set by the mapper on the
     * wire trees it builds), so writers need not look for repeated keys.
     */
    unsigned        unique:1;
    /*
     * STRING: every byte is printable ASCII but '"' and '\\', so a JSON
     * writer copies it as it is.  Set by the JSON reader and by decoding,
     * which know; 0 says nothing.
     */
    unsigned        plain:1;
    /*
     * STRING, NUMBER written by encoding: the xr_pii_e of the field it
     * holds (xr_mask.h), so that a writer's error masks it; 0 otherwise.
     */
    unsigned        pii:3;
    union {
        int             b;
        xr_str_t        s;          /* STRING, NUMBER */
        int64_t         i;          /* INT, AMOUNT */
        xr_time_t       t;
        struct {
            xr_member_t    *first;
            xr_member_t    *last;
            size_t          count;
        }               obj;
        struct {
            xr_node_t     **items;
            size_t          count;
            size_t          cap;
        }               arr;
    } u;
};

/* Constructors: NULL on allocation failure (ctx->err set to XR_E_NOMEM). */
xr_node_t *xr_node_new(xr_ctx_t *ctx, xr_node_type_e type);
xr_node_t *xr_node_string(xr_ctx_t *ctx, const char *s, size_t len);
xr_node_t *xr_node_number(xr_ctx_t *ctx, const char *s, size_t len);
/*
 * A STRING that points at s without copying: s must live as long as the
 * tree (the same pool, or the configuration).
 */
xr_node_t *xr_node_string_ref(xr_ctx_t *ctx, const char *s, size_t len);
xr_node_t *xr_node_int(xr_ctx_t *ctx, xr_node_type_e type, int64_t v);

/* The key is borrowed: it must live as long as the tree (pool or static). */
int xr_object_add(xr_ctx_t *ctx, xr_node_t *obj, xr_str_t key,
    xr_node_t *value);
/*
 * A node made together with the member that may hold it, in one
 * allocation (decoding makes one per field); NULL as xr_node_new().
 * xr_object_add_own() adds such a node to obj through that member, and
 * cannot fail; a node never added just leaves the member unused.
 */
xr_node_t *xr_node_new_member(xr_ctx_t *ctx, xr_node_type_e type);
void xr_object_add_own(xr_node_t *obj, xr_str_t key, xr_node_t *value);
/* First member with that key, or NULL. */
xr_node_t *xr_object_get(const xr_node_t *obj, xr_str_t key);
/*
 * The same, searching from the member after *hint (NULL: from the first)
 * round to it, and leaving the member found in *hint: reading fields in
 * the order the document has them costs one comparison each.  With
 * repeated keys it may find another than the first.
 */
xr_node_t *xr_object_get_next(const xr_node_t *obj, xr_str_t key,
    xr_member_t **hint);
int xr_array_push(xr_ctx_t *ctx, xr_node_t *arr, xr_node_t *item);

/*
 * Paths: dot-separated keys, "a.b.c".  In lookups a key repeated in an
 * object is seen as the first member.  xr_node_path_get() returns NULL when
 * a step is missing.  xr_node_path_set() creates the objects on the way;
 * they take the `unique` flag of the root.
 */
xr_node_t *xr_node_path_get(const xr_node_t *root, xr_str_t path);
int xr_node_path_set(xr_ctx_t *ctx, xr_node_t *root, xr_str_t path,
    xr_node_t *value);

/*
 * All members on the path, with repeated keys at the last step collected:
 * used for XML repeated elements and JSON arrays alike.  Returns the count;
 * fills out[] up to max.
 */
size_t xr_node_path_all(const xr_node_t *root, xr_str_t path,
    const xr_node_t **out, size_t max);

const char *xr_node_type_name(xr_node_type_e type);

/* Deep equality (used by tests and the round-trip checks). */
int xr_node_equal(const xr_node_t *a, const xr_node_t *b);

/* Debug / tool output: canonical tree as JSON text, typed values tagged. */
int xr_node_dump(xr_ctx_t *ctx, const xr_node_t *n, xr_buf_t *out);

#endif /* XR_NODE_H */
