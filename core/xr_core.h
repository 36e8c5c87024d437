/*
 * xregion core: return codes, strings, the arena and the error context.
 *
 * Conventions for every core and adapter function:
 *  - Functions return XR_OK, XR_ERROR, XR_AGAIN or XR_DECLINED. On XR_ERROR
 *    the detail is on the xr_ctx_t passed in (err, errstr, field).
 *  - Memory comes from an xr_pool_t (an arena). Nothing allocated from a
 *    pool is freed individually; xr_pool_destroy() ends it all. The nginx
 *    module backs the pool with the request's ngx_pool_t, tests and the
 *    tool with malloc.
 *  - Strings are {len, data}; data is not NUL-terminated unless a function
 *    says so. Functions that return strings allocate them from the pool.
 *  - Core never does network I/O and includes no nginx header.
 */

#ifndef XR_CORE_H
#define XR_CORE_H

#include <stddef.h>
#include <stdint.h>
#include <stdarg.h>

#define XR_OK         0
#define XR_ERROR     -1
#define XR_AGAIN     -2
#define XR_DECLINED  -5

#define XR_VERSION   "0.1.0"


typedef struct {
    size_t          len;
    const char     *data;
} xr_str_t;

#define xr_string(s)     { sizeof(s) - 1, (s) }
#define xr_null_string   { 0, NULL }

int xr_str_eq(xr_str_t a, const char *s);
int xr_str_cmp(xr_str_t a, xr_str_t b);
xr_str_t xr_str_from(const char *s);


/* Arena.  Allocation failures return NULL; callers turn that into XR_E_NOMEM. */

typedef void *(*xr_alloc_pt)(void *data, size_t size);
typedef void (*xr_free_pt)(void *data, void *p);

typedef struct xr_pool_s  xr_pool_t;

/* A pool over malloc/free (tests, the tool). */
xr_pool_t *xr_pool_create(size_t block_size);
/*
 * A pool over a foreign allocator (the nginx request pool). free may be NULL
 * when the foreign allocator frees everything at once itself.
 */
xr_pool_t *xr_pool_create_with(xr_alloc_pt alloc, xr_free_pt free,
    void *data, size_t block_size);
/* Accepts NULL. */
void xr_pool_destroy(xr_pool_t *pool);

void *xr_palloc(xr_pool_t *pool, size_t size);
void *xr_pcalloc(xr_pool_t *pool, size_t size);
char *xr_pstrndup(xr_pool_t *pool, const char *s, size_t len);
xr_str_t xr_pstr(xr_pool_t *pool, const char *s, size_t len);
/* Total bytes handed out; used by limits and the tests. */
size_t xr_pool_used(xr_pool_t *pool);


/* Growable byte buffer in a pool: encoders write into one. */

typedef struct {
    xr_pool_t      *pool;
    char           *data;
    size_t          len;
    size_t          cap;
    size_t          limit;      /* 0: no limit; past it adds fail */
    int             failed;
} xr_buf_t;

void xr_buf_init(xr_buf_t *b, xr_pool_t *pool, size_t limit);
/* The slow path of xr_buf_add(): grows the buffer. */
int xr_buf_add_grow(xr_buf_t *b, const void *p, size_t n);
int xr_buf_adds(xr_buf_t *b, const char *s);

/* Writers append many small pieces: the common case stays inline. */
static inline int
xr_buf_add(xr_buf_t *b, const void *p, size_t n)
{
    if (n - 1 < b->cap - b->len && !b->failed     /* n == 0 goes slow */
        && (b->limit == 0 || n <= b->limit - b->len))
    {
        __builtin_memcpy(b->data + b->len, p, n);
        b->len += n;
        return XR_OK;
    }
    return xr_buf_add_grow(b, p, n);
}


static inline int
xr_buf_addc(xr_buf_t *b, char c)
{
    if (b->len < b->cap && !b->failed
        && (b->limit == 0 || b->len < b->limit))
    {
        b->data[b->len++] = c;
        return XR_OK;
    }
    return xr_buf_add_grow(b, &c, 1);
}
int xr_buf_printf(xr_buf_t *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));


/*
 * Errors.  Each code has one row in xr_error.c: its name (the string callers
 * and docs/errors.md use), HTTP status, log level and default text.
 */

typedef enum {
    XR_E_NONE = 0,
    XR_E_NOMEM,
    XR_E_INTERNAL,
    XR_E_BODY_EMPTY,
    XR_E_BODY_TOO_LARGE,
    XR_E_SYNTAX,            /* malformed JSON / XML / record */
    XR_E_TRUNCATED,         /* body ends early */
    XR_E_CHARSET,           /* invalid UTF-8 / GBK byte sequence */
    XR_E_DEPTH,             /* nesting deeper than the limit */
    XR_E_XML_DTD,           /* DTD, entity or external reference */
    XR_E_FIELD_TOO_LONG,
    XR_E_FIELD_TYPE,
    XR_E_FIELD_MISSING,
    XR_E_FIELD_FORMAT,      /* time / number text that does not parse */
    XR_E_AMOUNT_PRECISION,  /* more than two decimals */
    XR_E_AMOUNT_NEGATIVE,
    XR_E_AMOUNT_RANGE,
    XR_E_CODE_UNMAPPED,     /* no entry in the target's code table */
    XR_E_TXN_UNKNOWN,
    XR_E_TXN_UNSUPPORTED,   /* known transaction the target cannot carry */
    XR_E_DOMAIN_MISMATCH,
    XR_E_PROFILE_UNKNOWN,
    XR_E_REGION_UNKNOWN,
    XR_E_NO_ROUTE,
    XR_E_CONFIG,            /* profile / schema file error (file:line) */
    XR_E_USAGE,             /* command line */
    XR_E_IO,
    /* gateway-side errors; raised by the module, encoded by the core */
    XR_E_UPSTREAM_REFUSED,
    XR_E_UPSTREAM_TIMEOUT,
    XR_E_UPSTREAM_ERROR,
    XR_E_UPSTREAM_BAD_ANSWER,
    XR_E_UNAUTHORIZED,
    XR_E_FORBIDDEN,
    XR_E_RATE_LIMITED,
    XR_E_REPLAY,
    XR_E_BAD_SIGNATURE,
    XR_E_BUSY_RETRY,        /* duplicate in flight, state store down */
    XR_E_CONFLICT,          /* same business key, different body */
    XR_E_UNAVAILABLE,       /* destination circuit open, maintenance */
    XR_E_AUDIT_INVALID,     /* an audit log that does not verify */
    XR_E_AUDIT_UNAVAILABLE, /* the audit log cannot take records */
    XR_E_CALLER_CLOSED,     /* the caller left before its answer */
    XR_E_NOT_FOUND,         /* the audit pull API: no such resource */
    XR_E_METHOD_NOT_ALLOWED,
    XR_E_LAST
} xr_err_e;

typedef struct {
    const char     *name;       /* "XR-SYNTAX" */
    int             http_status;
    int             log_level;  /* 0 error, 1 warn, 2 info */
    const char     *text;       /* default message */
} xr_error_info_t;

const xr_error_info_t *xr_error_info(xr_err_e err);
/* NULL when the name is unknown. */
int xr_error_by_name(xr_str_t name, xr_err_e *out);


#define XR_ERRSTR_LEN  256
#define XR_FIELD_LEN   128

/*
 * The context of one operation: its pool, its limits and, on failure, the
 * error.  The first error set wins; later xr_fail() calls do not overwrite.
 */
typedef struct {
    xr_pool_t      *pool;
    xr_err_e        err;
    char            errstr[XR_ERRSTR_LEN];
    char            field[XR_FIELD_LEN];    /* canonical or wire field named */

    /* limits, 0 = default */
    size_t          max_body;       /* default 1 MiB */
    unsigned        max_depth;      /* default 64 */
    size_t          max_nodes;      /* default 100000 */
    size_t          nodes;          /* counted by decoders */
} xr_ctx_t;

#define XR_DEFAULT_MAX_BODY   (1024 * 1024)
#define XR_DEFAULT_MAX_DEPTH  64
#define XR_DEFAULT_MAX_NODES  100000

void xr_ctx_init(xr_ctx_t *ctx, xr_pool_t *pool);
/* Records the error; returns XR_ERROR so callers can `return xr_fail(...)`. */
int xr_fail(xr_ctx_t *ctx, xr_err_e err, const char *field,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void xr_ctx_clear(xr_ctx_t *ctx);

/*
 * A value quoted in an error message: at most 40 bytes, printable ASCII,
 * '?' for anything else, "..." when cut, so that errstr stays valid UTF-8
 * and readable whatever a region sent.  buf gets a NUL-terminated string.
 */
#define XR_QUOTE_MAX  40
void xr_quote(xr_str_t text, char *buf, size_t size);

size_t xr_ctx_max_body(const xr_ctx_t *ctx);
unsigned xr_ctx_max_depth(const xr_ctx_t *ctx);

#endif /* XR_CORE_H */
