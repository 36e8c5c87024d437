/*
 * Arena, growable buffer, error context and string helpers.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr_core.h"


typedef struct xr_block_s  xr_block_t;

struct xr_block_s {
    xr_block_t     *next;
    size_t          size;
    size_t          used;
    char           *data;       /* follows the header, XR_ALIGN-aligned */
};

struct xr_pool_s {
    xr_alloc_pt     alloc;
    xr_free_pt      free;
    void           *data;
    size_t          block_size;
    xr_block_t     *blocks;
    size_t          used;
};

#define XR_ALIGN      16
#define xr_align(n)   (((n) + (XR_ALIGN - 1)) & ~(size_t) (XR_ALIGN - 1))
#define xr_align_ptr(p)                                                       \
    (char *) (((uintptr_t) (p) + (XR_ALIGN - 1)) & ~(uintptr_t) (XR_ALIGN - 1))

/*
 * A foreign allocator need not align to 16 (ngx_palloc() aligns to
 * sizeof(unsigned long)), so each block has room to align its data itself.
 */
#define XR_BLOCK_HDR  (sizeof(xr_block_t) + XR_ALIGN - 1)


static void *
xr_malloc_alloc(void *data, size_t size)
{
    (void) data;
    return malloc(size);
}


static void
xr_malloc_free(void *data, void *p)
{
    (void) data;
    free(p);
}


xr_pool_t *
xr_pool_create(size_t block_size)
{
    return xr_pool_create_with(xr_malloc_alloc, xr_malloc_free, NULL,
                               block_size);
}


xr_pool_t *
xr_pool_create_with(xr_alloc_pt alloc, xr_free_pt free_fn, void *data,
    size_t block_size)
{
    xr_pool_t  *pool;

    pool = alloc(data, sizeof(xr_pool_t));
    if (pool == NULL) {
        return NULL;
    }

    pool->alloc = alloc;
    pool->free = free_fn;
    pool->data = data;
    pool->block_size = block_size ? block_size : 16384;
    pool->blocks = NULL;
    pool->used = 0;

    return pool;
}


void
xr_pool_destroy(xr_pool_t *pool)
{
    xr_block_t  *b, *next;

    if (pool == NULL) {
        return;
    }

    if (pool->free == NULL) {
        return;
    }

    for (b = pool->blocks; b; b = next) {
        next = b->next;
        pool->free(pool->data, b);
    }

    pool->free(pool->data, pool);
}


/* A new block for what does not fit in the current one. */
static void *
xr_palloc_block(xr_pool_t *pool, size_t size)
{
    xr_block_t  *b;
    size_t       need, bsize;

    /* checked before rounding up: xr_align() of a huge size wraps to 0 */
    if (size > SIZE_MAX - XR_BLOCK_HDR - XR_ALIGN) {
        return NULL;
    }

    need = xr_align(size ? size : 1);

    b = pool->blocks;
    if (b == NULL || b->size - b->used < need) {
        /* large allocations get a block of their own behind the current */
        bsize = need > pool->block_size / 4 ? need : pool->block_size;
        b = pool->alloc(pool->data, XR_BLOCK_HDR + bsize);
        if (b == NULL) {
            return NULL;
        }
        b->size = bsize;
        b->used = 0;
        b->data = xr_align_ptr((char *) b + sizeof(xr_block_t));

        if (bsize == need && pool->blocks) {
            b->next = pool->blocks->next;
            pool->blocks->next = b;
        } else {
            b->next = pool->blocks;
            pool->blocks = b;
        }
    }

    b->used += need;
    pool->used += need;

    return b->data + b->used - need;
}


void *
xr_palloc(xr_pool_t *pool, size_t size)
{
    xr_block_t  *b;
    size_t       need;
    char        *p;

    b = pool->blocks;

    /* the common case: room in the current block */
    if (b == NULL || size > SIZE_MAX - XR_BLOCK_HDR - XR_ALIGN) {
        return xr_palloc_block(pool, size);
    }

    need = xr_align(size ? size : 1);

    if (b->size - b->used < need) {
        return xr_palloc_block(pool, size);
    }

    p = b->data + b->used;
    b->used += need;
    pool->used += need;

    return p;
}


void *
xr_pcalloc(xr_pool_t *pool, size_t size)
{
    void  *p;

    p = xr_palloc(pool, size);
    if (p) {
        memset(p, 0, size);
    }
    return p;
}


char *
xr_pstrndup(xr_pool_t *pool, const char *s, size_t len)
{
    char  *p;

    if (len == SIZE_MAX) {
        return NULL;
    }

    p = xr_palloc(pool, len + 1);
    if (p == NULL) {
        return NULL;
    }
    if (len) {
        memcpy(p, s, len);
    }
    p[len] = '\0';
    return p;
}


xr_str_t
xr_pstr(xr_pool_t *pool, const char *s, size_t len)
{
    xr_str_t  r;

    r.data = xr_pstrndup(pool, s, len);
    r.len = r.data ? len : 0;
    return r;
}


size_t
xr_pool_used(xr_pool_t *pool)
{
    return pool ? pool->used : 0;
}


int
xr_str_eq(xr_str_t a, const char *s)
{
    size_t  n = strlen(s);

    return a.len == n && (n == 0 || memcmp(a.data, s, n) == 0);
}


int
xr_str_cmp(xr_str_t a, xr_str_t b)
{
    size_t  n = a.len < b.len ? a.len : b.len;
    int     rc;

    rc = n ? memcmp(a.data, b.data, n) : 0;
    if (rc) {
        return rc;
    }
    return (a.len > b.len) - (a.len < b.len);
}


xr_str_t
xr_str_from(const char *s)
{
    xr_str_t  r;

    r.data = s;
    r.len = s ? strlen(s) : 0;
    return r;
}


void
xr_buf_init(xr_buf_t *b, xr_pool_t *pool, size_t limit)
{
    b->pool = pool;
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->limit = limit;
    b->failed = 0;
}


/*
 * Makes room for n more bytes of content and `extra` bytes after them that
 * do not count against the limit (the NUL vsnprintf() writes).
 */

static int
xr_buf_reserve(xr_buf_t *b, size_t n, size_t extra)
{
    size_t  cap;
    char   *p;

    if (b->failed) {
        return XR_ERROR;
    }

    if (n > SIZE_MAX / 4 - extra - b->len) {
        b->failed = 1;
        return XR_ERROR;
    }

    if (b->limit && b->len + n > b->limit) {
        b->failed = 1;
        return XR_ERROR;
    }

    n += extra;

    if (b->len + n <= b->cap) {
        return XR_OK;
    }

    cap = b->cap ? b->cap * 2 : 4096;
    while (cap < b->len + n) {
        cap *= 2;
    }

    /* the pool never frees: the old copy stays until the pool ends */
    p = xr_palloc(b->pool, cap);
    if (p == NULL) {
        b->failed = 1;
        return XR_ERROR;
    }
    if (b->len) {
        memcpy(p, b->data, b->len);
    }
    b->data = p;
    b->cap = cap;
    return XR_OK;
}


int
xr_buf_add_grow(xr_buf_t *b, const void *p, size_t n)
{
    if (n == 0) {
        return b->failed ? XR_ERROR : XR_OK;
    }
    if (xr_buf_reserve(b, n, 0) != XR_OK) {
        return XR_ERROR;
    }
    memcpy(b->data + b->len, p, n);
    b->len += n;
    return XR_OK;
}


int
xr_buf_adds(xr_buf_t *b, const char *s)
{
    return xr_buf_add(b, s, strlen(s));
}


int
xr_buf_printf(xr_buf_t *b, const char *fmt, ...)
{
    va_list  ap;
    char     tmp[512];
    int      n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);

    if (n < 0) {
        b->failed = 1;
        return XR_ERROR;
    }

    if ((size_t) n < sizeof(tmp)) {
        return xr_buf_add(b, tmp, (size_t) n);
    }

    if (xr_buf_reserve(b, n, 1) != XR_OK) {
        return XR_ERROR;
    }
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, n + 1, fmt, ap);
    va_end(ap);
    b->len += n;
    return XR_OK;
}


void
xr_ctx_init(xr_ctx_t *ctx, xr_pool_t *pool)
{
    memset(ctx, 0, sizeof(xr_ctx_t));
    ctx->pool = pool;
}


void
xr_ctx_clear(xr_ctx_t *ctx)
{
    ctx->err = XR_E_NONE;
    ctx->errstr[0] = '\0';
    ctx->field[0] = '\0';
}


int
xr_fail(xr_ctx_t *ctx, xr_err_e err, const char *field, const char *fmt, ...)
{
    va_list  ap;

    if (ctx->err != XR_E_NONE) {
        return XR_ERROR;
    }

    ctx->err = err;

    if (field) {
        snprintf(ctx->field, sizeof(ctx->field), "%s", field);
    } else {
        ctx->field[0] = '\0';
    }

    if (fmt) {
        va_start(ap, fmt);
        vsnprintf(ctx->errstr, sizeof(ctx->errstr), fmt, ap);
        va_end(ap);
    } else {
        snprintf(ctx->errstr, sizeof(ctx->errstr), "%s",
                 xr_error_info(err)->text);
    }

    return XR_ERROR;
}


size_t
xr_ctx_max_body(const xr_ctx_t *ctx)
{
    return ctx->max_body ? ctx->max_body : XR_DEFAULT_MAX_BODY;
}


unsigned
xr_ctx_max_depth(const xr_ctx_t *ctx)
{
    return ctx->max_depth ? ctx->max_depth : XR_DEFAULT_MAX_DEPTH;
}


void
xr_quote(xr_str_t text, char *buf, size_t size)
{
    size_t         i, n;
    unsigned char  c;

    n = text.len < XR_QUOTE_MAX ? text.len : XR_QUOTE_MAX;
    if (n > size - 4) {
        n = size - 4;
    }

    for (i = 0; i < n; i++) {
        c = (unsigned char) text.data[i];
        buf[i] = (c >= 0x20 && c < 0x7f) ? (char) c : '?';
    }

    if (n < text.len) {
        memcpy(buf + i, "...", 3);
        i += 3;
    }

    buf[i] = '\0';
}
