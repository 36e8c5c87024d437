/*
 * core/xr_core.c (pool, buf, errors, strings) and core/xr_node.c (trees,
 * paths, equality, dump).
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "xr_test.h"

#include "xr_core.h"
#include "xr_node.h"


#define xr_aligned16(p)  (((uintptr_t) (p) & 15) == 0)


/* ---- pool ------------------------------------------------------------- */


static void
test_pool_many(void **state)
{
    xr_pool_t      *pool;
    unsigned char  *p[5000];
    size_t          sizes[5000], i, k, used;

    (void) state;

    pool = xr_pool_create(1024);
    assert_non_null(pool);
    assert_int_equal(xr_pool_used(pool), 0);

    used = 0;

    for (i = 0; i < 5000; i++) {
        sizes[i] = (i * 37) % 300;          /* 0 .. 299, block is 1024 */
        p[i] = xr_palloc(pool, sizes[i]);
        assert_non_null(p[i]);
        assert_true(xr_aligned16(p[i]));
        memset(p[i], (int) (i & 0xff), sizes[i]);

        used += sizes[i] ? (sizes[i] + 15) & ~(size_t) 15 : 16;
        assert_int_equal(xr_pool_used(pool), used);
    }

    /* no allocation overlaps another: every byte still holds its mark */
    for (i = 0; i < 5000; i++) {
        for (k = 0; k < sizes[i]; k++) {
            if (p[i][k] != (i & 0xff)) {
                fail_msg("allocation %zu byte %zu overwritten", i, k);
            }
        }
    }

    /* size 0 still gives distinct pointers */
    assert_true(xr_palloc(pool, 0) != xr_palloc(pool, 0));

    xr_pool_destroy(pool);
    xr_pool_destroy(NULL);
}


static void
test_pool_large(void **state)
{
    xr_pool_t  *pool;
    char       *small1, *big, *small2, *huge;
    size_t      used;

    (void) state;

    pool = xr_pool_create(4096);

    small1 = xr_palloc(pool, 100);
    memset(small1, 'a', 100);

    /* larger than a block: a block of its own */
    big = xr_palloc(pool, 1 << 20);
    assert_non_null(big);
    assert_true(xr_aligned16(big));
    memset(big, 'b', 1 << 20);

    /* the current block is still used for small ones */
    small2 = xr_palloc(pool, 100);
    assert_true(xr_aligned16(small2));
    assert_true(small2 > small1 && small2 < small1 + 4096);
    memset(small2, 'c', 100);

    huge = xr_palloc(pool, 16 << 20);
    assert_non_null(huge);
    memset(huge, 'd', 16 << 20);

    assert_int_equal(small1[99], 'a');
    assert_int_equal(big[0], 'b');
    assert_int_equal(big[(1 << 20) - 1], 'b');
    assert_int_equal(small2[0], 'c');

    used = xr_pool_used(pool);
    assert_int_equal(used, 112 + (1 << 20) + 112 + (16 << 20));

    xr_pool_destroy(pool);
}


static void
test_pool_helpers(void **state)
{
    xr_pool_t      *pool;
    unsigned char  *z;
    char           *s;
    xr_str_t        str;
    size_t          i;

    (void) state;

    pool = xr_pool_create(0);

    for (i = 0; i < 50; i++) {
        /* dirty the memory, then ask for zeroed memory */
        memset(xr_palloc(pool, 64), 0xff, 64);
        z = xr_pcalloc(pool, 64);
        assert_non_null(z);
        for (size_t k = 0; k < 64; k++) {
            assert_int_equal(z[k], 0);
        }
    }

    s = xr_pstrndup(pool, "hello world", 5);
    assert_string_equal(s, "hello");

    s = xr_pstrndup(pool, NULL, 0);
    assert_string_equal(s, "");

    str = xr_pstr(pool, "abc\0def", 7);
    assert_int_equal(str.len, 7);
    assert_memory_equal(str.data, "abc\0def", 8);

    str = xr_pstr(pool, "", 0);
    assert_int_equal(str.len, 0);
    assert_non_null(str.data);

    assert_int_equal(xr_pool_used(NULL), 0);

    xr_pool_destroy(pool);
}


/*
 * A foreign allocator that hands out memory 8 bytes off 16-byte alignment,
 * as ngx_palloc() may, and counts what it gives and takes back.
 */

typedef struct {
    int     allocs;
    int     frees;
    size_t  bytes;
} xr_counting_t;


static void *
counting_alloc(void *data, size_t size)
{
    xr_counting_t  *c = data;
    char           *raw, *p;

    if (size > (size_t) 1 << 30) {
        return NULL;
    }

    raw = malloc(size + 32);
    if (raw == NULL) {
        return NULL;
    }

    /* p is 8 mod 16; the malloc() pointer sits just before it */
    p = (char *) (((uintptr_t) raw + 16 + 15) & ~(uintptr_t) 15) - 8;
    memcpy(p - 8, &raw, sizeof(char *));

    c->allocs++;
    c->bytes += size;
    return p;
}


static void
counting_free(void *data, void *p)
{
    xr_counting_t  *c = data;
    char           *raw;

    memcpy(&raw, (char *) p - 8, sizeof(char *));
    c->frees++;
    free(raw);
}


/* A bump allocator over a static arena that never frees (free is NULL). */

static char    xr_arena[1 << 20];
static size_t  xr_arena_used;


static void *
arena_alloc(void *data, size_t size)
{
    char  *p;

    (void) data;

    /* 8-aligned only, like ngx_palloc() */
    xr_arena_used = (xr_arena_used + 7) & ~(size_t) 7;
    if (xr_arena_used % 16 == 0) {
        xr_arena_used += 8;
    }
    if (size > sizeof(xr_arena) - xr_arena_used) {
        return NULL;
    }
    p = xr_arena + xr_arena_used;
    xr_arena_used += size;
    return p;
}


static void
test_pool_foreign(void **state)
{
    xr_counting_t   c;
    xr_pool_t      *pool;
    char           *p;
    size_t          i;

    (void) state;

    memset(&c, 0, sizeof(c));

    pool = xr_pool_create_with(counting_alloc, counting_free, &c, 512);
    assert_non_null(pool);

    for (i = 0; i < 2000; i++) {
        p = xr_palloc(pool, i % 200 + 1);
        assert_non_null(p);
        if (!xr_aligned16(p)) {
            fail_msg("allocation %zu at %p is not 16-aligned", i, (void *) p);
        }
        memset(p, 0x11, i % 200 + 1);
    }

    p = xr_palloc(pool, 100000);
    assert_true(xr_aligned16(p));
    memset(p, 0x22, 100000);

    assert_true(c.allocs > 2);
    assert_int_equal(c.frees, 0);

    xr_pool_destroy(pool);

    /* every block and the pool itself went back */
    assert_int_equal(c.frees, c.allocs);

    /*
     * Sizes whose rounding up would wrap are refused, not turned into tiny
     * allocations; sizes the allocator refuses are NULL too.  (The counting
     * allocator refuses anything over 1 GiB, so no sanitizer sees them.)
     */
    memset(&c, 0, sizeof(c));
    pool = xr_pool_create_with(counting_alloc, counting_free, &c, 512);
    p = xr_palloc(pool, 10);
    assert_non_null(p);
    assert_null(xr_palloc(pool, SIZE_MAX));
    assert_null(xr_palloc(pool, SIZE_MAX - 8));
    assert_null(xr_palloc(pool, SIZE_MAX - 15));
    assert_null(xr_palloc(pool, SIZE_MAX - 64));
    assert_null(xr_palloc(pool, SIZE_MAX / 2));
    assert_null(xr_pcalloc(pool, SIZE_MAX - 15));
    assert_null(xr_pstrndup(pool, "x", SIZE_MAX));
    assert_int_equal(xr_pool_used(pool), 16);
    assert_non_null(xr_palloc(pool, 10));
    xr_pool_destroy(pool);
    assert_int_equal(c.frees, c.allocs);

    /* free == NULL: destroy leaves it all to the foreign allocator */
    xr_arena_used = 0;
    pool = xr_pool_create_with(arena_alloc, NULL, NULL, 4096);
    assert_non_null(pool);
    for (i = 0; i < 100; i++) {
        p = xr_palloc(pool, 24);
        assert_non_null(p);
        assert_true(xr_aligned16(p));
    }
    xr_pool_destroy(pool);

    /* the foreign allocator running out is NULL, not a crash */
    pool = xr_pool_create_with(arena_alloc, NULL, NULL, 4096);
    assert_non_null(pool);
    assert_null(xr_palloc(pool, sizeof(xr_arena)));
    xr_pool_destroy(pool);
}


/* ---- buf -------------------------------------------------------------- */


static void
test_buf_growth(void **state)
{
    xr_env_t  *env = *state;
    xr_buf_t   b;
    size_t     i;
    char       want[64];

    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(b.len, 0);
    assert_int_equal(b.failed, 0);

    for (i = 0; i < 20000; i++) {
        assert_int_equal(xr_buf_printf(&b, "%05zu,", i), XR_OK);
    }
    assert_int_equal(b.len, 20000 * 6);
    assert_true(b.cap >= b.len);

    for (i = 0; i < 20000; i += 997) {
        snprintf(want, sizeof(want), "%05zu,", i);
        assert_memory_equal(b.data + i * 6, want, 6);
    }

    assert_int_equal(xr_buf_addc(&b, 'x'), XR_OK);
    assert_int_equal(xr_buf_adds(&b, "yz"), XR_OK);
    assert_int_equal(xr_buf_add(&b, "", 0), XR_OK);
    assert_int_equal(b.len, 20000 * 6 + 3);
    assert_memory_equal(b.data + b.len - 3, "xyz", 3);
}


static void
test_buf_printf_long(void **state)
{
    xr_env_t  *env = *state;
    xr_buf_t   b;
    char      *big;
    size_t     i;

    big = test_malloc(5001);
    for (i = 0; i < 5000; i++) {
        big[i] = (char) ('a' + i % 26);
    }
    big[5000] = '\0';

    /* past the 512-byte stack buffer, into a buffer that must grow */
    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_buf_adds(&b, "<"), XR_OK);
    assert_int_equal(xr_buf_printf(&b, "[%s|%d]", big, 42), XR_OK);
    assert_int_equal(b.len, 1 + 1 + 5000 + 4);
    assert_memory_equal(b.data, "<[", 2);
    assert_memory_equal(b.data + 2, big, 5000);
    assert_memory_equal(b.data + 5002, "|42]", 4);

    /* exactly at the 511/512 boundary of the stack buffer */
    for (i = 509; i <= 514; i++) {
        xr_buf_init(&b, env->pool, 0);
        assert_int_equal(xr_buf_printf(&b, "%.*s", (int) i, big), XR_OK);
        assert_int_equal(b.len, i);
        assert_memory_equal(b.data, big, i);
    }

    /* an empty format adds nothing */
    xr_buf_init(&b, env->pool, 0);
    assert_int_equal(xr_buf_printf(&b, "%s", ""), XR_OK);
    assert_int_equal(b.len, 0);

    test_free(big);
}


static void
test_buf_limit(void **state)
{
    xr_env_t  *env = *state;
    xr_buf_t   b;
    char       s[1000];

    memset(s, 'q', sizeof(s));

    xr_buf_init(&b, env->pool, 10);
    assert_int_equal(xr_buf_add(&b, "0123456789", 10), XR_OK);
    assert_int_equal(b.len, 10);

    /* one byte over: failed, and failed stays */
    assert_int_equal(xr_buf_addc(&b, 'x'), XR_ERROR);
    assert_int_equal(b.failed, 1);
    assert_int_equal(b.len, 10);
    assert_int_equal(xr_buf_add(&b, "", 0), XR_ERROR);
    assert_int_equal(xr_buf_adds(&b, "a"), XR_ERROR);
    assert_int_equal(xr_buf_printf(&b, "%d", 1), XR_ERROR);
    assert_int_equal(b.len, 10);
    assert_memory_equal(b.data, "0123456789", 10);

    /* a long printf that ends exactly at the limit fits: the NUL that
     * vsnprintf() writes is not content */
    xr_buf_init(&b, env->pool, 1000);
    assert_int_equal(xr_buf_add(&b, s, 400), XR_OK);
    assert_int_equal(xr_buf_printf(&b, "%.*s", 600, s), XR_OK);
    assert_int_equal(b.len, 1000);
    assert_int_equal(b.failed, 0);
    assert_int_equal(xr_buf_printf(&b, "%s", "z"), XR_ERROR);
    assert_int_equal(b.failed, 1);

    /* a long printf one byte over */
    xr_buf_init(&b, env->pool, 1000);
    assert_int_equal(xr_buf_add(&b, s, 400), XR_OK);
    assert_int_equal(xr_buf_printf(&b, "%.*s", 601, s), XR_ERROR);
    assert_int_equal(b.len, 400);
    assert_int_equal(b.failed, 1);

    /* a large add at once */
    xr_buf_init(&b, env->pool, 999);
    assert_int_equal(xr_buf_add(&b, s, 1000), XR_ERROR);
    assert_int_equal(b.len, 0);

    /* no room in the pool is a failure too */
    xr_buf_init(&b, env->pool, 0);
    /* the inline fast path never copies this much; gcc cannot tell */
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#pragma GCC diagnostic ignored "-Wrestrict"
#endif
    assert_int_equal(xr_buf_add(&b, s, SIZE_MAX - 2), XR_ERROR);
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic pop
#endif
    assert_int_equal(b.failed, 1);
}


/* ---- errors and strings ------------------------------------------------ */


static void
test_fail_first_wins(void **state)
{
    xr_env_t  *env = *state;
    char       longfield[300];

    assert_int_equal(env->ctx.err, XR_E_NONE);
    assert_string_equal(env->ctx.errstr, "");

    assert_int_equal(xr_fail(&env->ctx, XR_E_AMOUNT_RANGE, "total",
                             "amount %d is %s", 7, "big"), XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_AMOUNT_RANGE);
    assert_string_equal(env->ctx.field, "total");
    assert_string_equal(env->ctx.errstr, "amount 7 is big");

    /* a second error does not overwrite the first */
    assert_int_equal(xr_fail(&env->ctx, XR_E_SYNTAX, "other", "second"),
                     XR_ERROR);
    assert_int_equal(env->ctx.err, XR_E_AMOUNT_RANGE);
    assert_string_equal(env->ctx.field, "total");
    assert_string_equal(env->ctx.errstr, "amount 7 is big");

    xr_ctx_clear(&env->ctx);
    assert_int_equal(env->ctx.err, XR_E_NONE);
    assert_string_equal(env->ctx.errstr, "");
    assert_string_equal(env->ctx.field, "");
    assert_ptr_equal(env->ctx.pool, env->pool);

    /* no format: the table's text; no field: empty */
    xr_fail(&env->ctx, XR_E_NOMEM, NULL, NULL);
    assert_string_equal(env->ctx.errstr, "out of memory");
    assert_string_equal(env->ctx.field, "");

    /* long field and message are cut, NUL-terminated */
    xr_ctx_clear(&env->ctx);
    memset(longfield, 'f', sizeof(longfield) - 1);
    longfield[sizeof(longfield) - 1] = '\0';
    xr_fail(&env->ctx, XR_E_SYNTAX, longfield, "%s%s", longfield, longfield);
    assert_int_equal(strlen(env->ctx.field), XR_FIELD_LEN - 1);
    assert_int_equal(strlen(env->ctx.errstr), XR_ERRSTR_LEN - 1);
}


static void
test_ctx_defaults(void **state)
{
    xr_env_t  *env = *state;

    assert_int_equal(xr_ctx_max_body(&env->ctx), XR_DEFAULT_MAX_BODY);
    assert_int_equal(xr_ctx_max_depth(&env->ctx), XR_DEFAULT_MAX_DEPTH);

    env->ctx.max_body = 10;
    env->ctx.max_depth = 3;
    assert_int_equal(xr_ctx_max_body(&env->ctx), 10);
    assert_int_equal(xr_ctx_max_depth(&env->ctx), 3);
}


static void
test_error_table(void **state)
{
    xr_err_e  e;
    int       i;

    (void) state;

    for (i = 0; i < XR_E_LAST; i++) {
        assert_non_null(xr_error_info(i)->name);
        assert_int_equal(xr_error_by_name(xr_str_from(xr_error_info(i)->name),
                                          &e), XR_OK);
        assert_int_equal(e, i);
    }

    assert_string_equal(xr_error_info(XR_E_LAST)->name, "XR-INTERNAL");
    assert_string_equal(xr_error_info((xr_err_e) -1)->name, "XR-INTERNAL");
    assert_int_equal(xr_error_by_name(xr_str_from("XR-NOPE"), &e),
                     XR_DECLINED);
}


static void
test_str(void **state)
{
    xr_str_t  empty = xr_null_string;
    xr_str_t  abc = xr_string("abc");
    xr_str_t  ab = xr_string("ab");
    xr_str_t  abd = xr_string("abd");
    xr_str_t  nul = { 3, "a\0c" };
    xr_str_t  s;

    (void) state;

    assert_true(xr_str_eq(empty, ""));
    assert_false(xr_str_eq(empty, "a"));
    assert_true(xr_str_eq(abc, "abc"));
    assert_false(xr_str_eq(abc, "ab"));
    assert_false(xr_str_eq(abc, "abcd"));
    assert_false(xr_str_eq(abc, "abC"));
    assert_false(xr_str_eq(nul, "a"));
    assert_false(xr_str_eq(ab, "abc"));

    assert_int_equal(xr_str_cmp(abc, abc), 0);
    assert_int_equal(xr_str_cmp(empty, empty), 0);
    assert_true(xr_str_cmp(ab, abc) < 0);
    assert_true(xr_str_cmp(abc, ab) > 0);
    assert_true(xr_str_cmp(abc, abd) < 0);
    assert_true(xr_str_cmp(abd, abc) > 0);
    assert_true(xr_str_cmp(empty, ab) < 0);
    assert_true(xr_str_cmp(ab, empty) > 0);
    assert_true(xr_str_cmp(nul, abc) < 0);

    /* bytes compare unsigned: a UTF-8 lead byte sorts after ASCII */
    assert_true(xr_str_cmp(xr_str_from("\xe4"), xr_str_from("z")) > 0);

    s = xr_str_from("hello");
    assert_int_equal(s.len, 5);
    s = xr_str_from(NULL);
    assert_int_equal(s.len, 0);
    assert_null(s.data);
}


/* ---- nodes ------------------------------------------------------------ */


static xr_node_t *
str_node(xr_ctx_t *ctx, const char *s)
{
    xr_node_t  *n;

    n = xr_node_string(ctx, s, strlen(s));
    assert_non_null(n);
    return n;
}


static xr_str_t
S(const char *s)
{
    return xr_str_from(s);
}


static void
test_node_object(void **state)
{
    xr_env_t   *env = *state;
    xr_ctx_t   *ctx = &env->ctx;
    xr_node_t  *obj, *a1, *a2, *b;
    xr_member_t *m;
    size_t      nodes;

    nodes = ctx->nodes;

    obj = xr_node_new(ctx, XR_NODE_OBJECT);
    a1 = str_node(ctx, "first");
    a2 = str_node(ctx, "second");
    b = xr_node_int(ctx, XR_NODE_INT, -42);

    assert_int_equal(ctx->nodes, nodes + 4);

    assert_int_equal(xr_object_add(ctx, obj, S("a"), a1), XR_OK);
    assert_int_equal(xr_object_add(ctx, obj, S("b"), b), XR_OK);
    assert_int_equal(xr_object_add(ctx, obj, S("a"), a2), XR_OK);

    assert_int_equal(obj->u.obj.count, 3);
    assert_ptr_equal(xr_object_get(obj, S("a")), a1);
    assert_ptr_equal(xr_object_get(obj, S("b")), b);
    assert_null(xr_object_get(obj, S("c")));
    assert_null(xr_object_get(obj, S("")));
    assert_null(xr_object_get(b, S("a")));
    assert_null(xr_object_get(NULL, S("a")));

    /* members keep their order */
    m = obj->u.obj.first;
    assert_true(xr_str_eq(m->key, "a") && m->value == a1);
    m = m->next;
    assert_true(xr_str_eq(m->key, "b") && m->value == b);
    m = m->next;
    assert_true(xr_str_eq(m->key, "a") && m->value == a2);
    assert_null(m->next);
    assert_ptr_equal(obj->u.obj.last, m);

    /* strings are copied into the pool */
    {
        char        buf[4] = "xyz";
        xr_node_t  *n = xr_node_string(ctx, buf, 3);

        buf[0] = 'Q';
        assert_true(xr_str_eq(n->u.s, "xyz"));
        assert_int_equal(n->u.s.data[3], '\0');
    }

    assert_int_equal(xr_node_string(ctx, NULL, 5)->u.s.len, 0);
    assert_int_equal(xr_node_number(ctx, "1.50", 4)->type, XR_NODE_NUMBER);
    assert_int_equal(xr_node_int(ctx, XR_NODE_AMOUNT, 14500)->u.i, 14500);
}


static void
test_node_array(void **state)
{
    xr_env_t   *env = *state;
    xr_ctx_t   *ctx = &env->ctx;
    xr_node_t  *arr, *items[100];
    size_t      i;

    arr = xr_node_new(ctx, XR_NODE_ARRAY);

    for (i = 0; i < 100; i++) {
        items[i] = xr_node_int(ctx, XR_NODE_INT, (int64_t) i);
        assert_int_equal(xr_array_push(ctx, arr, items[i]), XR_OK);
    }

    assert_int_equal(arr->u.arr.count, 100);
    assert_true(arr->u.arr.cap >= 100);
    for (i = 0; i < 100; i++) {
        assert_ptr_equal(arr->u.arr.items[i], items[i]);
    }
}


static void
test_node_path(void **state)
{
    xr_env_t          *env = *state;
    xr_ctx_t          *ctx = &env->ctx;
    xr_node_t         *root, *leaf, *other, *items, *n;
    const xr_node_t   *all[8];
    size_t             i, count;

    root = xr_node_new(ctx, XR_NODE_OBJECT);
    leaf = str_node(ctx, "deep");

    /* set creates the objects on the way */
    assert_int_equal(xr_node_path_set(ctx, root, S("a.b.c"), leaf), XR_OK);
    assert_ptr_equal(xr_node_path_get(root, S("a.b.c")), leaf);
    n = xr_node_path_get(root, S("a.b"));
    assert_non_null(n);
    assert_int_equal(n->type, XR_NODE_OBJECT);
    assert_int_equal(n->u.obj.count, 1);
    assert_ptr_equal(xr_node_path_get(root, S("")), root);

    /* a second set through the same objects adds no new ones */
    other = str_node(ctx, "sibling");
    assert_int_equal(xr_node_path_set(ctx, root, S("a.b.d"), other), XR_OK);
    assert_int_equal(root->u.obj.count, 1);
    assert_int_equal(n->u.obj.count, 2);
    assert_ptr_equal(xr_node_path_get(root, S("a.b.d")), other);

    /* missing steps */
    assert_null(xr_node_path_get(root, S("a.x.c")));
    assert_null(xr_node_path_get(root, S("a.b.c.d")));
    assert_null(xr_node_path_get(root, S("z")));
    assert_null(xr_node_path_get(NULL, S("a")));

    /* a path is {len, data}: only len bytes count */
    {
        xr_str_t  p = { 3, "a.b.c" };
        assert_ptr_equal(xr_node_path_get(root, p), n);
    }

    /* setting through a non-object fails */
    xr_ctx_clear(ctx);
    assert_int_equal(xr_node_path_set(ctx, root, S("a.b.c.x"), other),
                     XR_ERROR);
    assert_int_equal(ctx->err, XR_E_INTERNAL);
    assert_non_null(strstr(ctx->errstr, "\"c\""));

    xr_ctx_clear(ctx);
    assert_int_equal(xr_node_path_set(ctx, root, S(""), other), XR_ERROR);
    xr_ctx_clear(ctx);
    assert_int_equal(xr_node_path_set(ctx, leaf, S("x"), other), XR_ERROR);
    xr_ctx_clear(ctx);

    /*
     * Repeated keys: items.item three times, and a second "items" object
     * that lookups never see.
     */
    items = xr_node_new(ctx, XR_NODE_OBJECT);
    assert_int_equal(xr_object_add(ctx, root, S("items"), items), XR_OK);
    for (i = 0; i < 3; i++) {
        assert_int_equal(xr_object_add(ctx, items, S("item"),
                                       xr_node_int(ctx, XR_NODE_INT,
                                                   (int64_t) i)), XR_OK);
        assert_int_equal(xr_object_add(ctx, items, S("other"),
                                       str_node(ctx, "x")), XR_OK);
    }
    n = xr_node_new(ctx, XR_NODE_OBJECT);
    assert_int_equal(xr_node_path_set(ctx, n, S("item"),
                                      str_node(ctx, "hidden")), XR_OK);
    assert_int_equal(xr_object_add(ctx, root, S("items"), n), XR_OK);

    /* get sees the first of repeated members */
    assert_int_equal(xr_node_path_get(root, S("items.item"))->u.i, 0);

    /* path_all collects every member at the last step, in order */
    count = xr_node_path_all(root, S("items.item"), all, 8);
    assert_int_equal(count, 3);
    for (i = 0; i < 3; i++) {
        assert_int_equal(all[i]->type, XR_NODE_INT);
        assert_int_equal(all[i]->u.i, (int64_t) i);
    }

    /* the count is the total even when out[] is shorter */
    memset(all, 0, sizeof(all));
    count = xr_node_path_all(root, S("items.item"), all, 2);
    assert_int_equal(count, 3);
    assert_int_equal(all[1]->u.i, 1);
    assert_null(all[2]);
    assert_int_equal(xr_node_path_all(root, S("items.item"), NULL, 0), 3);

    /* a top-level repeated key */
    assert_int_equal(xr_node_path_all(root, S("items"), all, 8), 2);
    assert_ptr_equal(all[0], items);
    assert_ptr_equal(all[1], n);

    assert_int_equal(xr_node_path_all(root, S("items.none"), all, 8), 0);
    assert_int_equal(xr_node_path_all(root, S("none.item"), all, 8), 0);
    assert_int_equal(xr_node_path_all(root, S("a.b.c.x"), all, 8), 0);
    assert_int_equal(xr_node_path_all(root, S(""), all, 8), 0);
    assert_int_equal(xr_node_path_all(NULL, S("a"), all, 8), 0);
    assert_int_equal(xr_node_path_all(root, S("a.b.c"), all, 8), 1);
    assert_ptr_equal(all[0], leaf);
}


static xr_node_t *
sample_tree(xr_ctx_t *ctx)
{
    xr_node_t  *root, *list, *t, *b;

    root = xr_node_new(ctx, XR_NODE_OBJECT);
    xr_object_add(ctx, root, S("name"), str_node(ctx, "\xe4\xb8\x8a\xe6\xb5"
                                                      "\xb7"));
    xr_object_add(ctx, root, S("n"), xr_node_int(ctx, XR_NODE_INT, -3));
    xr_object_add(ctx, root, S("amt"),
                  xr_node_int(ctx, XR_NODE_AMOUNT, 14500));
    xr_object_add(ctx, root, S("num"), xr_node_number(ctx, "1.50", 4));

    t = xr_node_new(ctx, XR_NODE_TIME);
    t->u.t.year = 2024;
    t->u.t.month = 12;
    t->u.t.day = 29;
    t->u.t.hour = 14;
    t->u.t.min = 17;
    t->u.t.sec = 40;
    t->u.t.msec = 123;
    t->u.t.has_time = 1;
    t->u.t.has_msec = 1;
    xr_object_add(ctx, root, S("at"), t);

    t = xr_node_new(ctx, XR_NODE_TIME);
    t->u.t.year = 2024;
    t->u.t.month = 2;
    t->u.t.day = 29;
    t->u.t.hour = 9;
    xr_object_add(ctx, root, S("day"), t);

    list = xr_node_new(ctx, XR_NODE_ARRAY);
    b = xr_node_new(ctx, XR_NODE_BOOL);
    b->u.b = 1;
    xr_array_push(ctx, list, b);
    xr_array_push(ctx, list, xr_node_new(ctx, XR_NODE_NULL));
    xr_array_push(ctx, list, xr_node_new(ctx, XR_NODE_OBJECT));
    xr_array_push(ctx, list, xr_node_new(ctx, XR_NODE_ARRAY));
    xr_object_add(ctx, root, S("list"), list);

    xr_object_add(ctx, root, S("esc\"key"),
                  xr_node_string(ctx, "a\"b\\c\n\r\t\x01\x1f" "d", 11));

    return root;
}


static void
test_node_dump(void **state)
{
    xr_env_t   *env = *state;
    xr_ctx_t   *ctx = &env->ctx;
    xr_buf_t    out;
    xr_node_t  *root;

    static const char  want[] =
        "{\n"
        "  \"name\": \"\xe4\xb8\x8a\xe6\xb5\xb7\",\n"
        "  \"n\": -3,\n"
        "  \"amt\": {\"fen\": 14500},\n"
        "  \"num\": 1.50,\n"
        "  \"at\": \"2024-12-29T14:17:40.123\",\n"
        "  \"day\": \"2024-02-29\",\n"
        "  \"list\": [\n"
        "    true,\n"
        "    null,\n"
        "    {},\n"
        "    []\n"
        "  ],\n"
        "  \"esc\\\"key\": \"a\\\"b\\\\c\\n\\r\\t\\u0001\\u001fd\"\n"
        "}";

    root = sample_tree(ctx);
    assert_int_equal(ctx->err, XR_E_NONE);

    xr_buf_init(&out, ctx->pool, 0);
    assert_int_equal(xr_node_dump(ctx, root, &out), XR_OK);

    if (out.len != sizeof(want) - 1
        || memcmp(out.data, want, out.len) != 0)
    {
        fail_msg("dump:\n%.*s\nwant:\n%s", (int) out.len, out.data, want);
    }

    /* a nested object indents by two more */
    {
        xr_node_t  *o = xr_node_new(ctx, XR_NODE_OBJECT);

        xr_node_path_set(ctx, o, S("a.b"), xr_node_new(ctx, XR_NODE_NULL));
        xr_buf_init(&out, ctx->pool, 0);
        assert_int_equal(xr_node_dump(ctx, o, &out), XR_OK);
        assert_int_equal(out.len, strlen("{\n  \"a\": {\n    \"b\": null\n"
                                         "  }\n}"));
        assert_memory_equal(out.data, "{\n  \"a\": {\n    \"b\": null\n  }\n}",
                            out.len);
    }

    /* a buffer too small fails as XR_E_NOMEM */
    xr_ctx_clear(ctx);
    xr_buf_init(&out, ctx->pool, 20);
    assert_int_equal(xr_node_dump(ctx, root, &out), XR_ERROR);
    assert_int_equal(ctx->err, XR_E_NOMEM);
}


static void
test_node_equal(void **state)
{
    xr_env_t   *env = *state;
    xr_ctx_t   *ctx = &env->ctx;
    xr_node_t  *a, *b, *n, *t1, *t2;

    a = sample_tree(ctx);
    b = sample_tree(ctx);
    assert_true(xr_node_equal(a, b));
    assert_true(xr_node_equal(a, a));
    assert_true(xr_node_equal(NULL, NULL));
    assert_false(xr_node_equal(a, NULL));
    assert_false(xr_node_equal(NULL, a));

    /* a deep value differs */
    n = xr_node_path_get(b, S("amt"));
    n->u.i = 14501;
    assert_false(xr_node_equal(a, b));
    n->u.i = 14500;
    assert_true(xr_node_equal(a, b));

    /* an array item differs */
    n = xr_node_path_get(b, S("list"));
    n->u.arr.items[0]->u.b = 0;
    assert_false(xr_node_equal(a, b));
    n->u.arr.items[0]->u.b = 7;         /* any true is true */
    assert_true(xr_node_equal(a, b));

    /* one more member */
    xr_object_add(ctx, b, S("extra"), xr_node_new(ctx, XR_NODE_NULL));
    assert_false(xr_node_equal(a, b));

    /* same members, other order */
    a = xr_node_new(ctx, XR_NODE_OBJECT);
    b = xr_node_new(ctx, XR_NODE_OBJECT);
    xr_object_add(ctx, a, S("x"), str_node(ctx, "1"));
    xr_object_add(ctx, a, S("y"), str_node(ctx, "2"));
    xr_object_add(ctx, b, S("y"), str_node(ctx, "2"));
    xr_object_add(ctx, b, S("x"), str_node(ctx, "1"));
    assert_false(xr_node_equal(a, b));

    /* types: a string "1" is not the number 1 nor an int */
    assert_false(xr_node_equal(str_node(ctx, "1"),
                               xr_node_number(ctx, "1", 1)));
    assert_false(xr_node_equal(xr_node_int(ctx, XR_NODE_INT, 1),
                               xr_node_int(ctx, XR_NODE_AMOUNT, 1)));
    assert_false(xr_node_equal(xr_node_number(ctx, "1.5", 3),
                               xr_node_number(ctx, "1.50", 4)));

    /* times: the clock of a date is not compared, msec only with has_msec */
    t1 = xr_node_new(ctx, XR_NODE_TIME);
    t2 = xr_node_new(ctx, XR_NODE_TIME);
    t1->u.t.year = t2->u.t.year = 2024;
    t1->u.t.month = t2->u.t.month = 2;
    t1->u.t.day = t2->u.t.day = 29;
    t1->u.t.hour = 5;
    assert_true(xr_node_equal(t1, t2));
    t1->u.t.has_time = t2->u.t.has_time = 1;
    assert_false(xr_node_equal(t1, t2));
    t2->u.t.hour = 5;
    t1->u.t.msec = 9;
    assert_true(xr_node_equal(t1, t2));
    t1->u.t.has_msec = t2->u.t.has_msec = 1;
    assert_false(xr_node_equal(t1, t2));
    t2->u.t.msec = 9;
    assert_true(xr_node_equal(t1, t2));
    t2->u.t.day = 28;
    assert_false(xr_node_equal(t1, t2));
}


static void
test_node_type_name(void **state)
{
    (void) state;

    assert_string_equal(xr_node_type_name(XR_NODE_NULL), "null");
    assert_string_equal(xr_node_type_name(XR_NODE_AMOUNT), "amount");
    assert_string_equal(xr_node_type_name(XR_NODE_ARRAY), "array");
    assert_string_equal(xr_node_type_name((xr_node_type_e) 99), "?");
    assert_string_equal(xr_node_type_name((xr_node_type_e) -1), "?");
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_pool_many),
        cmocka_unit_test(test_pool_large),
        cmocka_unit_test(test_pool_helpers),
        cmocka_unit_test(test_pool_foreign),
        xr_env_test(test_buf_growth),
        xr_env_test(test_buf_printf_long),
        xr_env_test(test_buf_limit),
        xr_env_test(test_fail_first_wins),
        xr_env_test(test_ctx_defaults),
        cmocka_unit_test(test_error_table),
        cmocka_unit_test(test_str),
        xr_env_test(test_node_object),
        xr_env_test(test_node_array),
        xr_env_test(test_node_path),
        xr_env_test(test_node_dump),
        xr_env_test(test_node_equal),
        cmocka_unit_test(test_node_type_name),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
