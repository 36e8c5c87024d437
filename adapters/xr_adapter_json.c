/*
 * The JSON adapter: a reader and a writer of our own, strict RFC 8259.
 *
 * Decoding reads the text once and builds the wire tree as it goes; no
 * library tree stands in between.  The text is copied once into the pool
 * with NUL padding behind it, and every string and number of the tree
 * points into that copy: a string without escapes is used where it lies
 * (its closing quote becomes its NUL), a string with escapes is decoded in
 * place (decoded text is never longer than its escaped form), a number
 * keeps its literal text (not NUL-terminated) and never passes through
 * floating point.  The padding ends every loop without a length check:
 * a NUL is neither whitespace nor a token nor allowed in a string, and
 * "is this NUL the end of the text" is asked only on the error path.
 * Containers are kept on an explicit stack, so a deep document costs no
 * recursion and fails with XR_E_DEPTH at the first bracket past the limit.
 *
 * UTF-8 is checked inline, only for bytes of 0x80 and above (a string is
 * scanned 8 bytes at a time while they are plain ASCII).  GBK bodies are
 * converted to UTF-8 once, before reading.
 *
 * Which error a document with several faults gets is kept as it always
 * was: invalid UTF-8 anywhere wins, then nesting past the limit or a
 * malformed number (in text order), then the first fault of the reader.
 * The error path rescans the text for the first two; the success path
 * never does.
 *
 * Encoding walks the tree and writes compact JSON straight into the
 * output buffer, reserving room in large steps.  Numbers are written as
 * their literal text after a grammar check; strings are escaped per
 * RFC 8259 with non-ASCII UTF-8 written as it is.
 */

#include <stdio.h>
#include <string.h>

#include "xr_adapter.h"
#include "../core/xr_charset.h"
#include "../core/xr_mask.h"


#define XR_JSON_NUM_OK      0
#define XR_JSON_NUM_BAD     1
#define XR_JSON_NUM_SHORT   2       /* a proper prefix of a number */

/* NUL bytes behind the work copy: the longest look-ahead is 8 bytes */
#define XR_JSON_PAD         16

/* containers the reader holds without allocating */
#define XR_JSON_FRAMES      64
/* array items pending on the reader's item stack without allocating */
#define XR_JSON_ITEMS       128

/* an object with this many members gets a key index for duplicates */
#define XR_JSON_INDEX_MIN   32

/* string bytes the writer escapes per reservation */
#define XR_JSON_CHUNK       4096

#define XR_JSON_ONES        0x0101010101010101ULL
#define XR_JSON_HIGHS       0x8080808080808080ULL

#define xr_json_digit(c)    ((unsigned) ((c) - '0') < 10)

#if (defined __GNUC__ && defined __BYTE_ORDER__                              \
     && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__)
#define XR_JSON_CTZ         1
#else
#define XR_JSON_CTZ         0
#endif


typedef struct {
    xr_member_t           **slot;
    size_t                  mask;
    size_t                  count;
} xr_json_index_t;

typedef struct {
    xr_node_t              *node;
    xr_member_t            *member;     /* object: the member being read */
    xr_json_index_t        *index;      /* object: NULL while small */
    uint64_t                keys;       /* object: a bit per key while
                                           small (xr_json_member) */
    size_t                  base;       /* array: first item on the stack */
} xr_json_frame_t;

typedef struct {
    xr_ctx_t               *ctx;
    unsigned char          *start;      /* the work copy */
    unsigned char          *end;        /* its first padding byte */

    char                   *mem;        /* nodes and members: bump */
    char                   *mem_end;
    size_t                  chunk;

    size_t                  nodes_left;
    size_t                  max_nodes;
    unsigned                max_depth;
    unsigned                plain;      /* the last string read needed no
                                           attention (xr_node_t) */

    xr_json_frame_t        *frames;
    size_t                  nframes;
    xr_node_t             **items;
    size_t                  nitems;
    size_t                  items_cap;

    /* the first fault */
    xr_err_e                err;
    size_t                  at;         /* byte offset; -1: no position */
    const char             *what;
} xr_json_dec_t;

typedef struct {
    xr_ctx_t               *ctx;
    xr_buf_t               *b;
    char                   *p;          /* write position in b->data */
    char                   *end;        /* b->data + b->cap */
    unsigned                max_depth;
} xr_json_out_t;


static int xr_json_decode(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_dir_e dir, const xr_ptxn_t *txn, const char *data, size_t len,
    xr_node_t **out);
static int xr_json_encode(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_dir_e dir, const xr_ptxn_t *txn, const xr_node_t *tree,
    xr_buf_t *out);
static int xr_json_encode_error(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_str_t wire_code, xr_str_t message, xr_buf_t *out);
static int xr_json_encode_plan(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_wvals_t *doc, xr_buf_t *out);


const xr_adapter_t  xr_adapter_json = {
    XR_ADAPTER_VERSION,
    "json",
    "application/json",
    XR_ADAPTER_TEXT | XR_ADAPTER_NUMBERS | XR_ADAPTER_UNIQUE,
    NULL,
    NULL,
    xr_json_decode,
    xr_json_encode,
    xr_json_encode_error,
    xr_json_encode_plan
};


/* JSON whitespace */
static const unsigned char  xr_json_ws[256] = {
    ['\t'] = 1, ['\n'] = 1, ['\r'] = 1, [' '] = 1
};

/*
 * String bytes that need no attention: printable ASCII but the quote and
 * the backslash.
 */
static const unsigned char  xr_json_plain[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 10 */
    1, 1, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 20 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 30 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 40 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 1, 1, 1,   /* 50 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 60 */
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,   /* 70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* 90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* a0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* b0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* c0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* d0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* e0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,   /* f0 */
};

static const char  xr_json_hex[] = "0123456789ABCDEF";


/*
 * Nonzero when one of the 8 bytes is '"', '\\', below 0x20 or above 0x7f:
 * the high bit of each such byte is set.  A byte is flagged wrongly only
 * above (after, in memory order) a byte that really is one, by a borrow;
 * so the lowest flag of a little-endian load is the first such byte.
 */
static uint64_t
xr_json_special8(const unsigned char *p)
{
    uint64_t  v, q, b;

    memcpy(&v, p, 8);
    q = v ^ (XR_JSON_ONES * '"');
    b = v ^ (XR_JSON_ONES * '\\');

    return ((q - XR_JSON_ONES) | (b - XR_JSON_ONES)
            | (v - XR_JSON_ONES * 0x20) | v) & XR_JSON_HIGHS;
}


/*
 * The length of the well-formed UTF-8 sequence at p (p[0] >= 0x80), or 0:
 * no overlongs, no surrogates, nothing above U+10FFFF, nothing cut short.
 * A NUL must follow the text: it is never a continuation byte, so no byte
 * past it is read.
 */
static size_t
xr_json_utf8(const unsigned char *p)
{
    unsigned char  c = p[0], c1 = p[1];

    if ((c1 & 0xc0) != 0x80) {
        return 0;
    }

    if (c < 0xe0) {
        return c >= 0xc2 ? 2 : 0;
    }

    if ((p[2] & 0xc0) != 0x80) {
        return 0;
    }

    if (c < 0xf0) {
        return ((c == 0xe0 && c1 < 0xa0) || (c == 0xed && c1 >= 0xa0)) ? 0
                                                                        : 3;
    }

    if (c > 0xf4 || (p[3] & 0xc0) != 0x80 || (c == 0xf0 && c1 < 0x90)
        || (c == 0xf4 && c1 >= 0x90))
    {
        return 0;
    }
    return 4;
}


/* The same for text not followed by a NUL: avail bytes from p. */
static size_t
xr_json_utf8_n(const unsigned char *p, size_t avail)
{
    unsigned char  tmp[5];

    if (avail >= 4) {
        return xr_json_utf8(p);
    }

    memset(tmp, 0, sizeof(tmp));
    memcpy(tmp, p, avail);
    return xr_json_utf8(tmp);
}


/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
xr_json_number_check(const char *s, size_t len)
{
    const unsigned char  *p, *end;

    if (len == 0) {
        return XR_JSON_NUM_SHORT;
    }

    p = (const unsigned char *) s;
    end = p + len;

    if (*p == '-') {
        p++;
    }
    if (p == end) {
        return XR_JSON_NUM_SHORT;
    }

    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && xr_json_digit(*p)) {
            p++;
        }
    } else {
        return XR_JSON_NUM_BAD;
    }

    if (p < end && *p == '.') {
        p++;
        if (p == end) {
            return XR_JSON_NUM_SHORT;
        }
        if (!xr_json_digit(*p)) {
            return XR_JSON_NUM_BAD;
        }
        while (p < end && xr_json_digit(*p)) {
            p++;
        }
    }

    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-')) {
            p++;
        }
        if (p == end) {
            return XR_JSON_NUM_SHORT;
        }
        if (!xr_json_digit(*p)) {
            return XR_JSON_NUM_BAD;
        }
        while (p < end && xr_json_digit(*p)) {
            p++;
        }
    }

    return p == end ? XR_JSON_NUM_OK : XR_JSON_NUM_BAD;
}


static uint32_t
xr_json_hash(const char *s, size_t len)
{
    uint32_t  h = 2166136261u;

    while (len--) {
        h ^= (unsigned char) *s++;
        h *= 16777619u;
    }
    return h;
}


static xr_member_t **
xr_json_index_slot(xr_json_index_t *ix, xr_str_t key)
{
    xr_member_t  **s;
    size_t         i;

    i = xr_json_hash(key.data, key.len) & ix->mask;

    for ( ;; ) {
        s = &ix->slot[i];
        if (*s == NULL
            || ((*s)->key.len == key.len
                && (key.len == 0
                    || memcmp((*s)->key.data, key.data, key.len) == 0)))
        {
            return s;
        }
        i = (i + 1) & ix->mask;
    }
}


/* Room for twice `want` members; the members already in it move over. */
static int
xr_json_index_grow(xr_pool_t *pool, xr_json_index_t *ix, size_t want)
{
    xr_json_index_t   old = *ix;
    xr_member_t     **s;
    size_t            size, i;

    for (size = 64; size < want * 2; size *= 2) {
        /* void */
    }

    ix->slot = xr_pcalloc(pool, size * sizeof(xr_member_t *));
    if (ix->slot == NULL) {
        return XR_ERROR;
    }
    ix->mask = size - 1;

    for (i = 0; old.slot && i <= old.mask; i++) {
        if (old.slot[i]) {
            s = xr_json_index_slot(ix, old.slot[i]->key);
            *s = old.slot[i];
        }
    }
    return XR_OK;
}


/*
 * Adds m to the index.  XR_DECLINED when a member with its key is there
 * already (m is not added), XR_ERROR when out of memory.
 */
static int
xr_json_index_add(xr_pool_t *pool, xr_json_index_t *ix, xr_member_t *m)
{
    xr_member_t  **s;

    if ((ix->count + 1) * 2 > ix->mask + 1
        && xr_json_index_grow(pool, ix, ix->count + 1) != XR_OK)
    {
        return XR_ERROR;
    }

    s = xr_json_index_slot(ix, m->key);
    if (*s) {
        return XR_DECLINED;
    }
    *s = m;
    ix->count++;
    return XR_OK;
}


/* An index of the members from `first` up to, not including, `stop`. */
static xr_json_index_t *
xr_json_index_new(xr_pool_t *pool, xr_member_t *first, xr_member_t *stop,
    size_t count)
{
    xr_json_index_t  *ix;
    xr_member_t      *m;

    ix = xr_palloc(pool, sizeof(xr_json_index_t));
    if (ix == NULL) {
        return NULL;
    }
    ix->slot = NULL;
    ix->mask = 0;
    ix->count = 0;

    if (xr_json_index_grow(pool, ix, count * 2) != XR_OK) {
        return NULL;
    }
    for (m = first; m != stop; m = m->next) {
        /* the members were checked one by one: no duplicates among them */
        *xr_json_index_slot(ix, m->key) = m;
        ix->count++;
    }
    return ix;
}


/* Whether a member from `first` up to `stop` has that key. */
static int
xr_json_key_seen(const xr_member_t *first, const xr_member_t *stop,
    xr_str_t key)
{
    const xr_member_t  *m;

    for (m = first; m != stop; m = m->next) {
        if (m->key.len == key.len
            && (key.len == 0
                || (m->key.data[0] == key.data[0]
                    && memcmp(m->key.data, key.data, key.len) == 0)))
        {
            return 1;
        }
    }
    return 0;
}


/*
 * Line and column of a byte offset of the (UTF-8) text: the column is the
 * number of characters read on the line, the one at the offset included.
 */
static void
xr_json_line_col(const unsigned char *s, size_t len, size_t off,
    size_t *line, size_t *col)
{
    size_t  i;

    off = off < len ? off + 1 : len;

    *line = 1;
    *col = 0;
    for (i = 0; i < off; i++) {
        if (s[i] == '\n') {
            (*line)++;
            *col = 0;
        } else if ((s[i] & 0xc0) != 0x80) {
            (*col)++;
        }
    }
}


/*
 * Records the first fault.  A syntax fault found at the end of the text is
 * the end of input coming too early.
 */
static int
xr_json_fault(xr_json_dec_t *d, xr_err_e err, const unsigned char *at,
    const char *what)
{
    if (err == XR_E_SYNTAX && at == d->end) {
        err = XR_E_TRUNCATED;
        what = "premature end of input";
    }

    d->err = err;
    d->at = at ? (size_t) (at - d->start) : (size_t) -1;
    d->what = what;
    return XR_ERROR;
}


/*
 * A fault in what a string means (a surrogate, \u0000): reported as the
 * end of input when the string never ends, as a reader that checked the
 * whole string first would.
 */
static int
xr_json_string_fault(xr_json_dec_t *d, const unsigned char *at,
    const char *what)
{
    const unsigned char  *q;

    for (q = at; *q != '"'; q++) {
        if (*q == '\\' && q[1] != '\0') {
            q++;
        } else if (*q == '\0') {
            break;
        }
    }

    if (q == d->end) {
        return xr_json_fault(d, XR_E_TRUNCATED, d->end,
                             "premature end of input");
    }
    return xr_json_fault(d, XR_E_SYNTAX, at, what);
}


/* Past the end of the current chunk: a new chunk, or a block of its own. */
static void *
xr_json_alloc_slow(xr_json_dec_t *d, size_t size)
{
    char  *p;

    if (size > d->chunk / 2) {
        p = xr_palloc(d->ctx->pool, size);

    } else {
        p = xr_palloc(d->ctx->pool, d->chunk);
        if (p != NULL) {
            d->mem = p + size;
            d->mem_end = p + d->chunk;
        }
    }

    if (p == NULL) {
        xr_json_fault(d, XR_E_NOMEM, NULL, NULL);
    }
    return p;
}


static inline void *
xr_json_alloc(xr_json_dec_t *d, size_t size)
{
    void  *p;

    size = (size + 7) & ~(size_t) 7;

    if ((size_t) (d->mem_end - d->mem) < size) {
        return xr_json_alloc_slow(d, size);
    }

    p = d->mem;
    d->mem += size;
    return p;
}


static inline xr_node_t *
xr_json_node(xr_json_dec_t *d, xr_node_type_e type)
{
    xr_node_t  *n;

    if (d->nodes_left == 0) {
        xr_json_fault(d, XR_E_BODY_TOO_LARGE, NULL, NULL);
        return NULL;
    }

    n = xr_json_alloc(d, sizeof(xr_node_t));
    if (n == NULL) {
        return NULL;
    }

    memset(n, 0, sizeof(xr_node_t));
    n->type = type;
    d->nodes_left--;
    d->ctx->nodes++;
    return n;
}


/* Four hex digits at p into *cp; 0 when one is not a hex digit. */
static int
xr_json_hex4(const unsigned char *p, uint32_t *cp)
{
    uint32_t       v = 0;
    unsigned char  c;
    int            i;

    for (i = 0; i < 4; i++) {
        c = p[i];
        if (xr_json_digit(c)) {
            c -= '0';
        } else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f') {
            c = (c | 0x20) - 'a' + 10;
        } else {
            return 0;
        }
        v = (v << 4) | c;
    }

    *cp = v;
    return 1;
}


/* The first byte of four hex digits at p that is not one. */
static const unsigned char *
xr_json_hex_fault(const unsigned char *p)
{
    while (xr_json_digit(*p) || ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')) {
        p++;
    }
    return p;
}


/*
 * The rest of a string from its first backslash at p, decoded in place
 * (the write position never passes the read position).  s is the start
 * of the string's text.  Returns the position after the closing quote,
 * or NULL.
 */
static unsigned char *
xr_json_unescape(xr_json_dec_t *d, unsigned char *s, unsigned char *p,
    xr_str_t *out)
{
    unsigned char  *w, *e, c;
    uint32_t        cp, lo;
    size_t          n;

    w = p;

    for ( ;; ) {
        c = *p;

        if (xr_json_plain[c]) {
            *w++ = c;
            p++;
            continue;
        }

        if (c == '"') {
            *w = '\0';
            out->data = (char *) s;
            out->len = (size_t) (w - s);
            return p + 1;
        }

        if (c >= 0x80) {
            n = xr_json_utf8(p);
            if (n == 0) {
                xr_json_fault(d, XR_E_CHARSET, p, "invalid UTF-8");
                return NULL;
            }
            while (n--) {
                *w++ = *p++;
            }
            continue;
        }

        if (c != '\\') {
            xr_json_fault(d, XR_E_SYNTAX, p, "control character in a string");
            return NULL;
        }

        e = p;

        switch (p[1]) {
        case '"':
        case '\\':
        case '/':
            *w++ = p[1];
            p += 2;
            continue;
        case 'b':
            *w++ = '\b';
            p += 2;
            continue;
        case 'f':
            *w++ = '\f';
            p += 2;
            continue;
        case 'n':
            *w++ = '\n';
            p += 2;
            continue;
        case 'r':
            *w++ = '\r';
            p += 2;
            continue;
        case 't':
            *w++ = '\t';
            p += 2;
            continue;
        case 'u':
            break;
        default:
            xr_json_fault(d, XR_E_SYNTAX, p + 1, "invalid escape");
            return NULL;
        }

        if (!xr_json_hex4(p + 2, &cp)) {
            xr_json_fault(d, XR_E_SYNTAX, xr_json_hex_fault(p + 2),
                          "invalid escape");
            return NULL;
        }
        p += 6;

        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (p[0] != '\\' || p[1] != 'u') {
                xr_json_string_fault(d, e, "invalid Unicode: lone surrogate");
                return NULL;
            }
            if (!xr_json_hex4(p + 2, &lo)) {
                xr_json_fault(d, XR_E_SYNTAX, xr_json_hex_fault(p + 2),
                              "invalid escape");
                return NULL;
            }
            if (lo < 0xdc00 || lo > 0xdfff) {
                xr_json_string_fault(d, e, "invalid Unicode: lone surrogate");
                return NULL;
            }
            p += 6;
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);

        } else if (cp >= 0xdc00 && cp <= 0xdfff) {
            xr_json_string_fault(d, e, "invalid Unicode: lone surrogate");
            return NULL;

        } else if (cp == 0) {
            xr_json_string_fault(d, e, "\\u0000 is not allowed");
            return NULL;
        }

        if (cp < 0x80) {
            *w++ = (unsigned char) cp;
        } else if (cp < 0x800) {
            *w++ = (unsigned char) (0xc0 | (cp >> 6));
            *w++ = (unsigned char) (0x80 | (cp & 0x3f));
        } else if (cp < 0x10000) {
            *w++ = (unsigned char) (0xe0 | (cp >> 12));
            *w++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
            *w++ = (unsigned char) (0x80 | (cp & 0x3f));
        } else {
            *w++ = (unsigned char) (0xf0 | (cp >> 18));
            *w++ = (unsigned char) (0x80 | ((cp >> 12) & 0x3f));
            *w++ = (unsigned char) (0x80 | ((cp >> 6) & 0x3f));
            *w++ = (unsigned char) (0x80 | (cp & 0x3f));
        }
    }
}


/*
 * A string from after its opening quote.  Returns the position after the
 * closing quote, or NULL.
 */
static unsigned char *
xr_json_string(xr_json_dec_t *d, unsigned char *p, xr_str_t *out)
{
    unsigned char  *s, c;
    uint64_t        m;
    size_t          n;

    s = p;

    for ( ;; ) {
        while ((m = xr_json_special8(p)) == 0) {
            p += 8;
        }
#if (XR_JSON_CTZ)
        p += __builtin_ctzll(m) >> 3;
#else
        while (xr_json_plain[*p]) {
            p++;
        }
#endif

        c = *p;

        if (c == '"') {
            *p = '\0';
            out->data = (char *) s;
            out->len = (size_t) (p - s);
            return p + 1;
        }

        d->plain = 0;

        if (c >= 0x80) {
            n = xr_json_utf8(p);
            if (n == 0) {
                xr_json_fault(d, XR_E_CHARSET, p, "invalid UTF-8");
                return NULL;
            }
            p += n;
            continue;
        }

        if (c == '\\') {
            return xr_json_unescape(d, s, p, out);
        }

        xr_json_fault(d, XR_E_SYNTAX, p, "control character in a string");
        return NULL;
    }
}


/* A number from its first byte; returns the position after it, or NULL. */
static unsigned char *
xr_json_number(xr_json_dec_t *d, unsigned char *p)
{
    unsigned char  *s = p;

    if (*p == '-') {
        p++;
    }

    if (*p == '0') {
        p++;
        if (xr_json_digit(*p)) {
            goto bad;
        }
    } else if (xr_json_digit(*p)) {
        do {
            p++;
        } while (xr_json_digit(*p));
    } else {
        goto bad;
    }

    if (*p == '.') {
        p++;
        if (!xr_json_digit(*p)) {
            goto bad;
        }
        do {
            p++;
        } while (xr_json_digit(*p));
    }

    if ((*p | 0x20) == 'e') {
        p++;
        if (*p == '+' || *p == '-') {
            p++;
        }
        if (!xr_json_digit(*p)) {
            goto bad;
        }
        do {
            p++;
        } while (xr_json_digit(*p));
    }

    return p;

bad:

    if (p == d->end) {
        xr_json_fault(d, XR_E_TRUNCATED, p, "premature end of input");
    } else {
        xr_json_fault(d, XR_E_SYNTAX, s, "bad number");
    }
    return NULL;
}


/* true, false or null, cut short or misspelt at p. */
static int
xr_json_literal_fault(xr_json_dec_t *d, const unsigned char *p)
{
    const char  *word;
    size_t       n;

    word = (*p == 't') ? "true" : (*p == 'f') ? "false" : "null";
    n = (size_t) (d->end - p);

    if (n < strlen(word) && memcmp(p, word, n) == 0) {
        return xr_json_fault(d, XR_E_TRUNCATED, d->end,
                             "premature end of input");
    }
    return xr_json_fault(d, XR_E_SYNTAX, p, "invalid token");
}


static int
xr_json_push_frame(xr_json_dec_t *d, size_t top)
{
    xr_json_frame_t  *f;
    size_t            n;

    n = d->nframes * 2;
    f = xr_palloc(d->ctx->pool, n * sizeof(xr_json_frame_t));
    if (f == NULL) {
        return xr_json_fault(d, XR_E_NOMEM, NULL, NULL);
    }
    memcpy(f, d->frames, top * sizeof(xr_json_frame_t));
    d->frames = f;
    d->nframes = n;
    return XR_OK;
}


static int
xr_json_push_item(xr_json_dec_t *d, xr_node_t *v)
{
    xr_node_t  **items;
    size_t       n;

    if (d->nitems == d->items_cap) {
        n = d->items_cap * 2;
        items = xr_palloc(d->ctx->pool, n * sizeof(xr_node_t *));
        if (items == NULL) {
            return xr_json_fault(d, XR_E_NOMEM, NULL, NULL);
        }
        memcpy(items, d->items, d->nitems * sizeof(xr_node_t *));
        d->items = items;
        d->items_cap = n;
    }

    d->items[d->nitems++] = v;
    return XR_OK;
}


/* The array's items, off the item stack from `base`, into the node. */
static int
xr_json_close_array(xr_json_dec_t *d, xr_node_t *arr, size_t base)
{
    xr_node_t  **items;
    size_t       n;

    n = d->nitems - base;
    if (n == 0) {
        return XR_OK;
    }

    items = xr_json_alloc(d, n * sizeof(xr_node_t *));
    if (items == NULL) {
        return XR_ERROR;
    }
    memcpy(items, d->items + base, n * sizeof(xr_node_t *));

    arr->u.arr.items = items;
    arr->u.arr.count = n;
    arr->u.arr.cap = n;
    d->nitems = base;
    return XR_OK;
}


/* A new member of the object in frame f, after the duplicate check. */
static int
xr_json_member(xr_json_dec_t *d, xr_json_frame_t *f, xr_str_t key,
    const unsigned char *at)
{
    xr_node_t    *obj = f->node;
    xr_member_t  *m;
    uint64_t      bit;
    int           rc;

    if (f->index == NULL) {
        if (obj->u.obj.count < XR_JSON_INDEX_MIN) {
            /*
             * A bit of the key's length and end bytes: only when it is
             * set already may the key be there.
             */
            bit = (uint64_t) 1 << ((key.len * 7
                                    + (key.len ? (key.data[0] * 3u)
                                                 ^ key.data[key.len - 1]
                                               : 0))
                                   & 63);
            if ((f->keys & bit)
                && xr_json_key_seen(obj->u.obj.first, NULL, key))
            {
                return xr_json_fault(d, XR_E_SYNTAX, at,
                                     "duplicate object key");
            }
            f->keys |= bit;

        } else {
            f->index = xr_json_index_new(d->ctx->pool, obj->u.obj.first,
                                         NULL, obj->u.obj.count);
            if (f->index == NULL) {
                return xr_json_fault(d, XR_E_NOMEM, NULL, NULL);
            }
        }
    }

    m = xr_json_alloc(d, sizeof(xr_member_t));
    if (m == NULL) {
        return XR_ERROR;
    }
    m->key = key;
    m->value = NULL;
    m->next = NULL;

    if (f->index) {
        rc = xr_json_index_add(d->ctx->pool, f->index, m);
        if (rc == XR_DECLINED) {
            return xr_json_fault(d, XR_E_SYNTAX, at, "duplicate object key");
        }
        if (rc != XR_OK) {
            return xr_json_fault(d, XR_E_NOMEM, NULL, NULL);
        }
    }

    if (obj->u.obj.last) {
        obj->u.obj.last->next = m;
    } else {
        obj->u.obj.first = m;
    }
    obj->u.obj.last = m;
    obj->u.obj.count++;

    f->member = m;
    return XR_OK;
}


static unsigned char *
xr_json_skip(unsigned char *p)
{
    while (xr_json_ws[*p]) {
        p++;
    }
    return p;
}


/*
 * The reader.  Values are read at `value`; a finished value goes to its
 * container at `done`; `key` reads a member's key and colon.
 */
static int
xr_json_parse(xr_json_dec_t *d, xr_node_t **root)
{
    unsigned char    *p, *at;
    xr_json_frame_t  *f;
    xr_node_t        *v;
    xr_str_t          str;
    size_t            top;

    p = xr_json_skip(d->start);
    top = 0;
    f = NULL;

    if (*p != '{' && *p != '[') {
        return xr_json_fault(d, XR_E_SYNTAX, p, "'[' or '{' expected");
    }

value:

    switch (*p) {

    case '{':
    case '[':
        if (top >= d->max_depth) {
            return xr_json_fault(d, XR_E_DEPTH, p,
                                 "nesting deeper than the limit");
        }
        if (top == d->nframes && xr_json_push_frame(d, top) != XR_OK) {
            return XR_ERROR;
        }

        v = xr_json_node(d, *p == '{' ? XR_NODE_OBJECT : XR_NODE_ARRAY);
        if (v == NULL) {
            return XR_ERROR;
        }

        f = &d->frames[top++];
        f->node = v;
        f->member = NULL;
        f->index = NULL;
        f->keys = 0;
        f->base = d->nitems;

        p = xr_json_skip(p + 1);

        if (v->type == XR_NODE_OBJECT) {
            if (*p == '}') {
                p++;
                goto close;
            }
            goto key;
        }

        if (*p == ']') {
            p++;
            goto close;
        }
        goto value;

    case '"':
        d->plain = 1;
        p = xr_json_string(d, p + 1, &str);
        if (p == NULL) {
            return XR_ERROR;
        }
        v = xr_json_node(d, XR_NODE_STRING);
        if (v == NULL) {
            return XR_ERROR;
        }
        v->u.s = str;
        v->plain = d->plain;
        break;

    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        at = p;
        p = xr_json_number(d, p);
        if (p == NULL) {
            return XR_ERROR;
        }
        v = xr_json_node(d, XR_NODE_NUMBER);
        if (v == NULL) {
            return XR_ERROR;
        }
        v->u.s.data = (char *) at;
        v->u.s.len = (size_t) (p - at);
        v->plain = 1;   /* digits, signs, '.', 'e' */
        break;

    case 't':
        if (memcmp(p, "true", 4) != 0) {
            return xr_json_literal_fault(d, p);
        }
        p += 4;
        v = xr_json_node(d, XR_NODE_BOOL);
        if (v == NULL) {
            return XR_ERROR;
        }
        v->u.b = 1;
        break;

    case 'f':
        if (memcmp(p, "false", 5) != 0) {
            return xr_json_literal_fault(d, p);
        }
        p += 5;
        v = xr_json_node(d, XR_NODE_BOOL);
        if (v == NULL) {
            return XR_ERROR;
        }
        break;

    case 'n':
        if (memcmp(p, "null", 4) != 0) {
            return xr_json_literal_fault(d, p);
        }
        p += 4;
        v = xr_json_node(d, XR_NODE_NULL);
        if (v == NULL) {
            return XR_ERROR;
        }
        break;

    default:
        return xr_json_fault(d, XR_E_SYNTAX, p, "invalid token");
    }

done:

    if (top == 0) {
        *root = v;

        p = xr_json_skip(p);
        if (p != d->end) {
            return xr_json_fault(d, XR_E_SYNTAX, p, "end of file expected");
        }
        if (v->type != XR_NODE_OBJECT) {
            return xr_json_fault(d, XR_E_SYNTAX, NULL,
                                 "the document is not an object");
        }
        return XR_OK;
    }

    f = &d->frames[top - 1];
    p = xr_json_skip(p);

    if (f->node->type == XR_NODE_OBJECT) {
        f->member->value = v;
        if (*p == ',') {
            p++;
            goto key;
        }
        if (*p != '}') {
            return xr_json_fault(d, XR_E_SYNTAX, p, "',' or '}' expected");
        }

    } else {
        if (xr_json_push_item(d, v) != XR_OK) {
            return XR_ERROR;
        }
        if (*p == ',') {
            p = xr_json_skip(p + 1);
            goto value;
        }
        if (*p != ']') {
            return xr_json_fault(d, XR_E_SYNTAX, p, "',' or ']' expected");
        }
    }

    p++;

close:

    f = &d->frames[--top];
    v = f->node;
    if (v->type == XR_NODE_ARRAY
        && xr_json_close_array(d, v, f->base) != XR_OK)
    {
        return XR_ERROR;
    }
    goto done;

key:

    p = xr_json_skip(p);
    if (*p != '"') {
        return xr_json_fault(d, XR_E_SYNTAX, p, "string expected");
    }

    at = p;
    p = xr_json_string(d, p + 1, &str);
    if (p == NULL || xr_json_member(d, f, str, at) != XR_OK) {
        return XR_ERROR;
    }

    p = xr_json_skip(p);
    if (*p != ':') {
        return xr_json_fault(d, XR_E_SYNTAX, p, "':' expected");
    }
    p = xr_json_skip(p + 1);
    goto value;
}


/*
 * The faults the adapter has always reported before any other, whatever
 * came first in the text: nesting deeper than the limit and malformed
 * numbers, found without reading the structure.  A number cut short by the
 * end of the text is the reader's to report.  XR_E_NONE when there is
 * neither.
 */
static xr_err_e
xr_json_prescan(const unsigned char *s, size_t len, unsigned max_depth,
    size_t *at)
{
    size_t    i, j;
    unsigned  depth;
    int       rc;

    depth = 0;
    i = 0;

    while (i < len) {

        switch (s[i]) {

        case '"':
            for (i++; i < len && s[i] != '"'; i++) {
                if (s[i] == '\\') {
                    i++;
                }
            }
            i++;
            continue;

        case '{':
        case '[':
            if (++depth > max_depth) {
                *at = i;
                return XR_E_DEPTH;
            }
            i++;
            continue;

        case '}':
        case ']':
            if (depth) {
                depth--;
            }
            i++;
            continue;

        default:
            break;
        }

        if (s[i] != '-' && !xr_json_digit(s[i])) {
            i++;
            continue;
        }

        for (j = i; j < len; j++) {
            if (!xr_json_digit(s[j]) && s[j] != '-' && s[j] != '+'
                && s[j] != '.' && s[j] != 'e' && s[j] != 'E')
            {
                break;
            }
        }

        rc = xr_json_number_check((const char *) s + i, j - i);
        if (rc == XR_JSON_NUM_BAD || (rc == XR_JSON_NUM_SHORT && j < len)) {
            *at = i;
            return XR_E_SYNTAX;
        }
        i = j;
    }

    return XR_E_NONE;
}


static int
xr_json_decode_fail(xr_json_dec_t *d, const xr_str_t *text, int utf8)
{
    xr_ctx_t  *ctx = d->ctx;
    size_t     line, col, at;
    xr_err_e   err;

    if (d->err == XR_E_NOMEM) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    /* the message the whole-text check has always given */
    if (utf8 && xr_utf8_validate(ctx, text->data, text->len, NULL) != XR_OK) {
        return XR_ERROR;
    }

    err = xr_json_prescan((const unsigned char *) text->data, text->len,
                          d->max_depth, &at);
    if (err != XR_E_NONE) {
        d->err = err;
        d->at = at;
        d->what = err == XR_E_DEPTH ? "nesting deeper than the limit"
                                    : "bad number";
    }

    if (d->err == XR_E_BODY_TOO_LARGE) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "JSON: more than %zu values", d->max_nodes);
    }

    if (d->at == (size_t) -1) {
        return xr_fail(ctx, d->err, NULL, "JSON: %s", d->what);
    }

    xr_json_line_col((const unsigned char *) text->data, text->len, d->at,
                     &line, &col);

    return xr_fail(ctx, d->err, NULL, "JSON: %s at line %zu, column %zu",
                   d->what, line, col);
}


static int
xr_json_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const char *data, size_t len, xr_node_t **out)
{
    size_t            i;
    xr_str_t          text;
    xr_charset_e      cs;
    xr_json_dec_t     d;
    xr_json_frame_t   frames[XR_JSON_FRAMES];
    xr_node_t        *items[XR_JSON_ITEMS], *tree = NULL;
    unsigned char    *work;

    (void) dir;
    (void) txn;

    *out = NULL;

    if (len > xr_ctx_max_body(ctx)) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "JSON body of %zu bytes is over the limit of %zu",
                       len, xr_ctx_max_body(ctx));
    }

    for (i = 0; i < len; i++) {
        if (!xr_json_ws[(unsigned char) data[i]]) {
            break;
        }
    }
    if (i == len) {
        return xr_fail(ctx, XR_E_BODY_EMPTY, NULL, NULL);
    }

    cs = p ? p->charset : XR_CHARSET_UTF8;

    if (cs == XR_CHARSET_UTF8) {
        /* checked inline by the reader */
        text.data = data;
        text.len = len;

    } else if (xr_charset_to_utf8(ctx, cs, data, len, &text, NULL) != XR_OK) {
        return XR_ERROR;
    }

    if (text.len > SIZE_MAX - XR_JSON_PAD) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    work = xr_palloc(ctx->pool, text.len + XR_JSON_PAD);
    if (work == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    memcpy(work, text.data, text.len);
    memset(work + text.len, 0, XR_JSON_PAD);

    d.ctx = ctx;
    d.start = work;
    d.end = work + text.len;

    /* nodes and members take about 4 bytes per byte of text */
    d.chunk = text.len < 256 ? 1024
              : text.len < 16384 ? text.len * 4 : 65536;
    d.mem = xr_palloc(ctx->pool, d.chunk);
    if (d.mem == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    d.mem_end = d.mem + d.chunk;

    d.max_nodes = ctx->max_nodes ? ctx->max_nodes : XR_DEFAULT_MAX_NODES;
    d.nodes_left = d.max_nodes;
    d.max_depth = xr_ctx_max_depth(ctx);

    d.frames = frames;
    d.nframes = XR_JSON_FRAMES;
    d.items = items;
    d.nitems = 0;
    d.items_cap = XR_JSON_ITEMS;

    d.err = XR_E_NONE;
    d.at = (size_t) -1;
    d.what = NULL;

    if (xr_json_parse(&d, &tree) != XR_OK) {
        return xr_json_decode_fail(&d, &text, cs == XR_CHARSET_UTF8);
    }

    *out = tree;
    return XR_OK;
}


/* The member key as a NUL-terminated field name for errors. */
static const char *
xr_json_field(char *buf, size_t size, xr_str_t key)
{
    if (key.data == NULL) {
        return NULL;
    }
    snprintf(buf, size, "%.*s", (int) key.len, key.data);
    return buf;
}


static int
xr_json_grow(xr_json_out_t *w, size_t n)
{
    xr_buf_t  *b = w->b;
    size_t     len, cap;
    char      *data;

    len = b->data ? (size_t) (w->p - b->data) : b->len;

    if (b->limit && len > b->limit) {
        b->failed = 1;
        return xr_fail(w->ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "JSON document is over the limit of %zu bytes",
                       b->limit);
    }

    if (n > SIZE_MAX / 4 - len) {
        b->failed = 1;
        return xr_fail(w->ctx, XR_E_NOMEM, NULL, NULL);
    }

    cap = b->cap ? b->cap * 2 : 1024;
    while (cap < len + n) {
        cap *= 2;
    }

    /* the pool never frees: the old copy stays until the pool ends */
    data = xr_palloc(b->pool, cap);
    if (data == NULL) {
        b->failed = 1;
        return xr_fail(w->ctx, XR_E_NOMEM, NULL, NULL);
    }
    if (len) {
        memcpy(data, b->data, len);
    }

    b->data = data;
    b->cap = cap;
    w->p = data + len;
    w->end = data + cap;
    return XR_OK;
}


#define xr_json_room(w, n)                                                    \
    ((size_t) ((w)->end - (w)->p) >= (n) || xr_json_grow(w, n) == XR_OK)


static int
xr_json_put_bad_text(xr_json_out_t *w, xr_str_t s, xr_str_t key,
    const unsigned char *at)
{
    char  field[XR_FIELD_LEN];

    if (*at == '\0') {
        return xr_fail(w->ctx, XR_E_CHARSET,
                       xr_json_field(field, sizeof(field), key),
                       "control character U+0000 cannot be sent in JSON");
    }

    if (xr_utf8_validate(w->ctx, s.data, s.len,
                         xr_json_field(field, sizeof(field), key))
        == XR_OK)
    {
        return xr_fail(w->ctx, XR_E_CHARSET,
                       xr_json_field(field, sizeof(field), key),
                       "invalid UTF-8 at byte %zu",
                       (size_t) (at - (const unsigned char *) s.data));
    }
    return XR_ERROR;
}


static int
xr_json_put_raw(xr_json_out_t *w, const char *s, size_t len)
{
    if (!xr_json_room(w, len)) {
        return XR_ERROR;
    }
    memcpy(w->p, s, len);
    w->p += len;
    return XR_OK;
}


/*
 * A string with its quotes; `key` names the field in errors.  Room is
 * reserved per chunk of input for the worst case, 6 bytes out per byte in,
 * plus the quotes and what the last step may write past the chunk.
 */
static int
xr_json_put_string(xr_json_out_t *w, xr_str_t s, xr_str_t key)
{
    const unsigned char  *p, *end, *stop;
    unsigned char         c;
    char                 *o;
    size_t                n, k;

    if (s.len == 0) {
        return xr_json_put_raw(w, "\"\"", 2);
    }

    p = (const unsigned char *) s.data;
    end = p + s.len;

    n = s.len < XR_JSON_CHUNK ? s.len : XR_JSON_CHUNK;
    if (!xr_json_room(w, n * 6 + 16)) {
        return XR_ERROR;
    }
    o = w->p;
    *o++ = '"';
    stop = p + n;

    for ( ;; ) {

        while (p < stop) {
            if (end - p >= 8) {
                if (xr_json_special8(p) == 0) {
                    memcpy(o, p, 8);
                    o += 8;
                    p += 8;
                    continue;
                }

            } else {
                /* the last bytes: plain ones in a tight loop */
                while (p < end && xr_json_plain[*p]) {
                    *o++ = (char) *p++;
                }
                if (p == end) {
                    break;
                }
            }

            c = *p;

            if (xr_json_plain[c]) {
                *o++ = (char) c;
                p++;
                continue;
            }

            if (c >= 0x80) {
                k = (end - p >= 4) ? xr_json_utf8(p)
                                   : xr_json_utf8_n(p, (size_t) (end - p));
                if (k == 0) {
                    return xr_json_put_bad_text(w, s, key, p);
                }
                o[0] = (char) p[0];
                o[1] = (char) p[1];
                if (k > 2) {
                    o[2] = (char) p[2];
                    if (k > 3) {
                        o[3] = (char) p[3];
                    }
                }
                o += k;
                p += k;
                continue;
            }

            *o++ = '\\';

            switch (c) {
            case '"':
            case '\\':
                *o++ = (char) c;
                break;
            case '\b':
                *o++ = 'b';
                break;
            case '\f':
                *o++ = 'f';
                break;
            case '\n':
                *o++ = 'n';
                break;
            case '\r':
                *o++ = 'r';
                break;
            case '\t':
                *o++ = 't';
                break;
            case '\0':
                /* refused on decode: it would not come back */
                return xr_json_put_bad_text(w, s, key, p);
            default:
                *o++ = 'u';
                *o++ = '0';
                *o++ = '0';
                *o++ = xr_json_hex[c >> 4];
                *o++ = xr_json_hex[c & 0xf];
                break;
            }
            p++;
        }

        if (p >= end) {
            break;
        }

        /* the next chunk of a long string */
        w->p = o;
        n = (size_t) (end - p);
        if (n > XR_JSON_CHUNK) {
            n = XR_JSON_CHUNK;
        }
        if (!xr_json_room(w, n * 6 + 16)) {
            return XR_ERROR;
        }
        o = w->p;
        stop = p + n;
    }

    *o++ = '"';
    w->p = o;
    return XR_OK;
}


/*
 * A value to be written as a number that is not one.  The value is quoted
 * masked when the field is personal (xr_mask.h).
 */
static int
xr_json_not_number(xr_json_out_t *w, xr_str_t key, xr_str_t text,
    unsigned pii)
{
    char      field[XR_FIELD_LEN], mbuf[XR_MASK_LEN];
    xr_str_t  q;

    q = xr_mask_quote(pii, text, mbuf, sizeof(mbuf));

    return xr_fail(w->ctx, XR_E_FIELD_FORMAT,
                   xr_json_field(field, sizeof(field), key),
                   "\"%.*s\" is not a JSON number", (int) q.len,
                   q.data ? q.data : "");
}


/* A node and what is under it; `key` is the member or array it sits in. */
static int
xr_json_put(xr_json_out_t *w, const xr_node_t *n, xr_str_t key,
    unsigned depth)
{
    char              field[XR_FIELD_LEN];
    xr_member_t      *m;
    xr_json_index_t  *ix;
    size_t            i;
    int               rc;

    switch (n->type) {

    case XR_NODE_STRING:
        return xr_json_put_string(w, n->u.s, key);

    case XR_NODE_NUMBER:
        if (xr_json_number_check(n->u.s.data, n->u.s.len) != XR_JSON_NUM_OK) {
            return xr_json_not_number(w, key, n->u.s, n->pii);
        }
        return xr_json_put_raw(w, n->u.s.data, n->u.s.len);

    case XR_NODE_BOOL:
        return n->u.b ? xr_json_put_raw(w, "true", 4)
                      : xr_json_put_raw(w, "false", 5);

    case XR_NODE_NULL:
        return xr_json_put_raw(w, "null", 4);

    case XR_NODE_OBJECT:
    case XR_NODE_ARRAY:
        if (depth >= w->max_depth) {
            return xr_fail(w->ctx, XR_E_DEPTH,
                           xr_json_field(field, sizeof(field), key),
                           "JSON: nesting deeper than the limit");
        }
        break;

    default:
        return xr_fail(w->ctx, XR_E_INTERNAL,
                       xr_json_field(field, sizeof(field), key),
                       "JSON: %s node in a wire tree",
                       xr_node_type_name(n->type));
    }

    if (!xr_json_room(w, 1)) {
        return XR_ERROR;
    }

    if (n->type == XR_NODE_ARRAY) {
        *w->p++ = '[';

        for (i = 0; i < n->u.arr.count; i++) {
            if (i) {
                if (!xr_json_room(w, 1)) {
                    return XR_ERROR;
                }
                *w->p++ = ',';
            }
            if (xr_json_put(w, n->u.arr.items[i], key, depth + 1) != XR_OK) {
                return XR_ERROR;
            }
        }

        if (!xr_json_room(w, 1)) {
            return XR_ERROR;
        }
        *w->p++ = ']';
        return XR_OK;
    }

    *w->p++ = '{';
    ix = NULL;

    for (m = n->u.obj.first, i = 0; m; m = m->next, i++) {
        if (i) {
            if (!xr_json_room(w, 1)) {
                return XR_ERROR;
            }
            *w->p++ = ',';
        }

        if (xr_json_put_string(w, m->key, m->key) != XR_OK) {
            return XR_ERROR;
        }

        /*
         * a repeated key would lose a value at the receiver; the mapper's
         * objects cannot have one (xr_node_t unique)
         */
        if (!n->unique) {
            if (ix == NULL && i == XR_JSON_INDEX_MIN) {
                ix = xr_json_index_new(w->ctx->pool, n->u.obj.first, m, i);
                if (ix == NULL) {
                    return xr_fail(w->ctx, XR_E_NOMEM, NULL, NULL);
                }
            }

            if (ix) {
                rc = xr_json_index_add(w->ctx->pool, ix, m);
                if (rc == XR_ERROR) {
                    return xr_fail(w->ctx, XR_E_NOMEM, NULL, NULL);
                }
            } else {
                rc = xr_json_key_seen(n->u.obj.first, m, m->key)
                     ? XR_DECLINED : XR_OK;
            }

            if (rc == XR_DECLINED) {
                return xr_fail(w->ctx, XR_E_INTERNAL,
                               xr_json_field(field, sizeof(field), m->key),
                               "JSON: key \"%.*s\" repeated in an object",
                               (int) m->key.len, m->key.data);
            }
        }

        if (!xr_json_room(w, 1)) {
            return XR_ERROR;
        }
        *w->p++ = ':';

        if (xr_json_put(w, m->value, m->key, depth + 1) != XR_OK) {
            return XR_ERROR;
        }
    }

    if (!xr_json_room(w, 1)) {
        return XR_ERROR;
    }
    *w->p++ = '}';
    return XR_OK;
}


/*
 * An object of a write plan: what xr_json_put() writes for the wire tree
 * the same maps build (members in the plan's order, present ones only).
 * No depth check: xr_map_encode_plan() declines plans deeper than the
 * limit.  Keys are unique in a plan.
 */
static int
xr_json_put_plan(xr_json_out_t *w, const xr_wvals_t *d, const xr_wnode_t *obj)
{
    const xr_wnode_t  *c;
    const xr_wval_t   *v;
    size_t             i;
    int                comma = 0;

    if (!xr_json_room(w, 1)) {
        return XR_ERROR;
    }
    *w->p++ = '{';

    for (c = obj->child; c; c = c->next) {
        if (!d->present[c->index]) {
            continue;
        }

        if (c->plain) {
            /* checked at load: copied between its quotes */
            if (!xr_json_room(w, c->key.len + 4)) {
                return XR_ERROR;
            }
            if (comma) {
                *w->p++ = ',';
            }
            *w->p++ = '"';
            memcpy(w->p, c->key.data, c->key.len);
            w->p += c->key.len;
            *w->p++ = '"';
            *w->p++ = ':';

        } else {
            if (comma) {
                if (!xr_json_room(w, 1)) {
                    return XR_ERROR;
                }
                *w->p++ = ',';
            }
            if (xr_json_put_string(w, c->key, c->key) != XR_OK
                || !xr_json_room(w, 1))
            {
                return XR_ERROR;
            }
            *w->p++ = ':';
        }
        comma = 1;

        if (c->slot < 0) {
            if (xr_json_put_plan(w, d, c) != XR_OK) {
                return XR_ERROR;
            }
            continue;
        }

        v = &d->v[c->slot];

        switch (v->kind) {

        case XR_WV_STRING:
            if (v->plain) {
                /* formatted digits and dates: nothing to escape */
                if (!xr_json_room(w, v->text.len + 2)) {
                    return XR_ERROR;
                }
                *w->p++ = '"';
                memcpy(w->p, v->text.data, v->text.len);
                w->p += v->text.len;
                *w->p++ = '"';
                break;
            }
            if (xr_json_put_string(w, v->text, c->key) != XR_OK) {
                return XR_ERROR;
            }
            break;

        case XR_WV_NUMBER:
            if (!v->plain
                && xr_json_number_check(v->text.data, v->text.len)
                   != XR_JSON_NUM_OK)
            {
                return xr_json_not_number(w, c->key, v->text, c->pii);
            }
            /* fall through */

        case XR_WV_BOOL:
            if (xr_json_put_raw(w, v->text.data, v->text.len) != XR_OK) {
                return XR_ERROR;
            }
            break;

        default: /* XR_WV_LIST */
            if (!xr_json_room(w, 1)) {
                return XR_ERROR;
            }
            *w->p++ = '[';
            for (i = 0; i < v->nitems; i++) {
                if (i) {
                    if (!xr_json_room(w, 1)) {
                        return XR_ERROR;
                    }
                    *w->p++ = ',';
                }
                if (xr_json_put_plan(w, &v->items[i], v->items[i].plan->root)
                    != XR_OK)
                {
                    return XR_ERROR;
                }
            }
            if (!xr_json_room(w, 1)) {
                return XR_ERROR;
            }
            *w->p++ = ']';
            break;
        }
    }

    if (!xr_json_room(w, 1)) {
        return XR_ERROR;
    }
    *w->p++ = '}';
    return XR_OK;
}


/*
 * Writes the document (a wire tree, or a plan's values when doc is not
 * NULL) as UTF-8 at the end of b.  On failure b->len is back where it
 * was.
 */
static int
xr_json_put_doc(xr_ctx_t *ctx, const xr_node_t *tree, const xr_wvals_t *doc,
    xr_buf_t *b)
{
    xr_json_out_t  w;
    xr_str_t       none = xr_null_string;
    size_t         len0 = b->len;

    if (b->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    /* the writer keeps pointers into b->data: there must be one */
    if (b->data == NULL) {
        w.ctx = ctx;
        w.b = b;
        if (xr_json_grow(&w, 256) != XR_OK) {
            return XR_ERROR;
        }
    }

    w.ctx = ctx;
    w.b = b;
    w.p = b->data + b->len;
    w.end = b->data + b->cap;
    w.max_depth = xr_ctx_max_depth(ctx);

    if ((doc ? xr_json_put_plan(&w, doc, doc->plan->root)
             : xr_json_put(&w, tree, none, 0))
        != XR_OK)
    {
        b->len = len0;
        return XR_ERROR;
    }

    b->len = (size_t) (w.p - b->data);

    if (b->limit && b->len > b->limit) {
        b->len = len0;
        b->failed = 1;
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "JSON document is over the limit of %zu bytes",
                       b->limit);
    }

    return XR_OK;
}


static int
xr_json_write(xr_ctx_t *ctx, const xr_profile_t *p, const xr_node_t *tree,
    const xr_wvals_t *doc, xr_buf_t *out)
{
    xr_buf_t       tmp;
    xr_str_t       bytes;
    xr_charset_e   cs;

    if (doc == NULL && (tree == NULL || tree->type != XR_NODE_OBJECT)) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "JSON: the document to encode is not an object");
    }

    cs = p ? p->charset : XR_CHARSET_UTF8;

    if (cs == XR_CHARSET_UTF8) {
        return xr_json_put_doc(ctx, tree, doc, out);
    }

    xr_buf_init(&tmp, ctx->pool, 0);
    if (xr_json_put_doc(ctx, tree, doc, &tmp) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_charset_from_utf8(ctx, cs, tmp.data, tmp.len, &bytes, NULL)
        != XR_OK)
    {
        return XR_ERROR;
    }

    if (xr_buf_add(out, bytes.data, bytes.len) != XR_OK) {
        if (out->limit && out->len + bytes.len > out->limit) {
            return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                           "JSON document of %zu bytes is over the limit "
                           "of %zu", bytes.len, out->limit);
        }
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    return XR_OK;
}


static int
xr_json_encode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const xr_node_t *tree, xr_buf_t *out)
{
    (void) dir;
    (void) txn;

    return xr_json_write(ctx, p, tree, NULL, out);
}


static int
xr_json_encode_plan(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_wvals_t *doc, xr_buf_t *out)
{
    return xr_json_write(ctx, p, NULL, doc, out);
}


/*
 * {"<result_field>": code, "<message_field>": message}, both dot paths.
 * A profile without them gets "code" and "message".
 */
static int
xr_json_encode_error(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_str_t wire_code, xr_str_t message, xr_buf_t *out)
{
    xr_node_t       *root, *code, *msg;
    xr_str_t         rf, mf;
    xr_wire_type_e   as;

    rf = (p && p->result_field.len) ? p->result_field : xr_str_from("code");
    mf = (p && p->message_field.len) ? p->message_field
                                     : xr_str_from("message");
    as = p ? p->result_as : XR_WIRE_AUTO;

    root = xr_node_new(ctx, XR_NODE_OBJECT);
    if (root == NULL) {
        return XR_ERROR;
    }

    if (as == XR_WIRE_NUMBER
        && xr_json_number_check(wire_code.data, wire_code.len)
           == XR_JSON_NUM_OK)
    {
        code = xr_node_number(ctx, wire_code.data, wire_code.len);

    } else if (as == XR_WIRE_BOOL
               && (xr_str_eq(wire_code, "true")
                   || xr_str_eq(wire_code, "false")))
    {
        code = xr_node_new(ctx, XR_NODE_BOOL);
        if (code) {
            code->u.b = xr_str_eq(wire_code, "true");
        }

    } else {
        code = xr_node_string(ctx, wire_code.data, wire_code.len);
    }

    msg = xr_node_string(ctx, message.data, message.len);

    if (code == NULL || msg == NULL
        || xr_node_path_set(ctx, root, rf, code) != XR_OK
        || xr_node_path_set(ctx, root, mf, msg) != XR_OK)
    {
        return XR_ERROR;
    }

    return xr_json_write(ctx, p, root, NULL, out);
}
