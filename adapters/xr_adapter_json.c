/*
 * The JSON adapter.  jansson parses and prints; numbers never reach it as
 * numbers, because jansson would read a real into a double and an amount
 * must never pass through floating point.
 *
 * Decoding: a scanner copies the text and rewrites every number literal
 * into a string that starts with the marker byte 0x01 (145.00 becomes
 * "\u0001145.00").  The same pass checks the number grammar, the nesting
 * depth (before jansson, which recurses, ever sees the text) and rejects
 * "\u0001" written by the sender, so that a marker cannot be forged.  A
 * truncated last token is cut off so that jansson reports the end of input.
 * After json_loadb() the marked strings become XR_NODE_NUMBER.
 *
 * Encoding: NUMBER nodes become marked strings; jansson prints 0x01 as
 * \u0001 and a second pass turns every "\u0001<literal>" back into the
 * bare literal.  Strings carrying 0x01 are refused so that they cannot
 * turn into numbers on the way out.
 *
 * jansson keeps object members in insertion order (2.8 and later), so the
 * order of a wire object survives both ways.
 */

#include <stdio.h>
#include <string.h>

#include <jansson.h>

#include "xr_adapter.h"
#include "../core/xr_charset.h"


#define XR_JSON_MARK        '\x01'
#define XR_JSON_MARK_ESC    "\\u0001"   /* how jansson prints the marker */
#define XR_JSON_MARK_LEN    (sizeof(XR_JSON_MARK_ESC) - 1)
/* what the scanner adds around a number: the quotes and the marker */
#define XR_JSON_NUM_EXTRA   (2 + XR_JSON_MARK_LEN)

#define XR_JSON_NUM_OK      0
#define XR_JSON_NUM_BAD     1
#define XR_JSON_NUM_SHORT   2       /* a proper prefix of a number */


typedef struct {
    xr_ctx_t               *ctx;
    const unsigned char    *start;
    const unsigned char    *end;
    const unsigned char    *copied;     /* input up to here is in out */
    xr_buf_t                out;
    unsigned                depth;
    unsigned                max_depth;
} xr_json_scan_t;

typedef struct {
    xr_ctx_t               *ctx;
    size_t                  nodes;      /* ctx->nodes when decoding began */
    size_t                  max_nodes;
} xr_json_dec_t;


static int xr_json_decode(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_dir_e dir, const xr_ptxn_t *txn, const char *data, size_t len,
    xr_node_t **out);
static int xr_json_encode(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_dir_e dir, const xr_ptxn_t *txn, const xr_node_t *tree,
    xr_buf_t *out);
static int xr_json_encode_error(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_str_t wire_code, xr_str_t message, xr_buf_t *out);


const xr_adapter_t  xr_adapter_json = {
    XR_ADAPTER_VERSION,
    "json",
    "application/json",
    XR_ADAPTER_TEXT | XR_ADAPTER_NUMBERS,
    NULL,
    NULL,
    xr_json_decode,
    xr_json_encode,
    xr_json_encode_error
};


static int
xr_json_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}


static int
xr_json_is_hex(unsigned char c)
{
    return xr_json_is_digit(c) || (c >= 'a' && c <= 'f')
           || (c >= 'A' && c <= 'F');
}


/* RFC 8259: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? */
static int
xr_json_number_check(const char *s, size_t len)
{
    const unsigned char  *p = (const unsigned char *) s, *end = p + len;

    if (p < end && *p == '-') {
        p++;
    }
    if (p == end) {
        return XR_JSON_NUM_SHORT;
    }

    if (*p == '0') {
        p++;
    } else if (*p >= '1' && *p <= '9') {
        while (p < end && xr_json_is_digit(*p)) {
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
        if (!xr_json_is_digit(*p)) {
            return XR_JSON_NUM_BAD;
        }
        while (p < end && xr_json_is_digit(*p)) {
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
        if (!xr_json_is_digit(*p)) {
            return XR_JSON_NUM_BAD;
        }
        while (p < end && xr_json_is_digit(*p)) {
            p++;
        }
    }

    return p == end ? XR_JSON_NUM_OK : XR_JSON_NUM_BAD;
}


/*
 * Line and column of a byte offset of the (UTF-8) text, counted the way
 * jansson counts them: the column is the number of characters read on the
 * line.
 */
static void
xr_json_line_col(const unsigned char *s, size_t off, size_t *line,
    size_t *col)
{
    size_t  i;

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


static int
xr_json_scan_fail(xr_json_scan_t *sc, xr_err_e err,
    const unsigned char *at, const char *what)
{
    size_t  line, col;

    /* count the character at `at` as read, as jansson does */
    xr_json_line_col(sc->start, at - sc->start + 1, &line, &col);
    return xr_fail(sc->ctx, err, NULL, "JSON: %s at line %zu, column %zu",
                   what, line, col);
}


/* Appends the input not yet copied, up to `to`. */
static int
xr_json_scan_flush(xr_json_scan_t *sc, const unsigned char *to)
{
    if (xr_buf_add(&sc->out, sc->copied, to - sc->copied) != XR_OK) {
        return xr_fail(sc->ctx, XR_E_NOMEM, NULL, NULL);
    }
    sc->copied = to;
    return XR_OK;
}


/*
 * A string from its opening quote.  Returns the position after it, the end
 * of input, or NULL on error.  *trim is set when the input ends inside an
 * escape: the text is then cut before the backslash.
 */
static const unsigned char *
xr_json_scan_string(xr_json_scan_t *sc, const unsigned char *p,
    const unsigned char **trim)
{
    const unsigned char  *end = sc->end;
    size_t                k;

    for (p++; p < end; p++) {
        if (*p == '"') {
            return p + 1;
        }
        if (*p != '\\') {
            continue;
        }

        if (end - p < 2) {
            *trim = p;
            return end;
        }

        if (p[1] == 'u') {
            for (k = 0; k < 4; k++) {
                if (p + 2 + k == end) {
                    *trim = p;
                    return end;
                }
                if (!xr_json_is_hex(p[2 + k])) {
                    break;      /* jansson says "invalid escape" */
                }
            }
            if (k == 4 && memcmp(p + 2, "0001", 4) == 0) {
                xr_json_scan_fail(sc, XR_E_SYNTAX, p,
                                  "control character \\u0001 in a string");
                return NULL;
            }
        }

        p++;    /* the escaped character: \" does not end the string */
    }

    return end;
}


/*
 * Copies the text into sc->out with the numbers marked.  On success
 * sc->out holds the text for jansson, possibly cut before a last token that
 * the input truncated.
 */
static int
xr_json_scan(xr_json_scan_t *sc)
{
    const unsigned char  *p, *q, *trim, *end = sc->end;
    size_t                n;
    int                   rc;

    p = sc->start;
    trim = NULL;

    while (p < end && trim == NULL) {

        switch (*p) {

        case '"':
            p = xr_json_scan_string(sc, p, &trim);
            if (p == NULL) {
                return XR_ERROR;
            }
            continue;

        case '{':
        case '[':
            if (++sc->depth > sc->max_depth) {
                return xr_json_scan_fail(sc, XR_E_DEPTH, p,
                                         "nesting deeper than the limit");
            }
            p++;
            continue;

        case '}':
        case ']':
            if (sc->depth) {
                sc->depth--;
            }
            p++;
            continue;

        case 't':
        case 'f':
        case 'n':
            /* a literal cut short by the end of input */
            for (q = p; q < end && *q >= 'a' && *q <= 'z'; q++) {
                /* void */
            }
            n = q - p;
            if (q == end
                && ((n < 4 && memcmp(p, "true", n) == 0)
                    || (n < 5 && memcmp(p, "false", n) == 0)
                    || (n < 4 && memcmp(p, "null", n) == 0)))
            {
                trim = p;
            }
            p = q;
            continue;

        default:
            break;
        }

        if (*p != '-' && !xr_json_is_digit(*p)) {
            p++;
            continue;
        }

        for (q = p; q < end; q++) {
            if (!xr_json_is_digit(*q) && *q != '-' && *q != '+' && *q != '.'
                && *q != 'e' && *q != 'E')
            {
                break;
            }
        }

        rc = xr_json_number_check((const char *) p, q - p);

        if (rc == XR_JSON_NUM_SHORT && q == end) {
            trim = p;
            break;
        }

        if (rc != XR_JSON_NUM_OK) {
            return xr_json_scan_fail(sc, XR_E_SYNTAX, p, "bad number");
        }

        if (xr_json_scan_flush(sc, p) != XR_OK
            || xr_buf_adds(&sc->out, "\"" XR_JSON_MARK_ESC) != XR_OK
            || xr_buf_add(&sc->out, p, q - p) != XR_OK
            || xr_buf_addc(&sc->out, '"') != XR_OK)
        {
            return xr_fail(sc->ctx, XR_E_NOMEM, NULL, NULL);
        }

        sc->copied = q;
        p = q;
    }

    return xr_json_scan_flush(sc, trim ? trim : end);
}


/*
 * The input offset of an offset in the scanner's output: numbers there are
 * XR_JSON_NUM_EXTRA bytes longer.
 */
static size_t
xr_json_input_offset(const unsigned char *s, size_t len, size_t pos)
{
    size_t  i, t, n;
    int     in_string;

    i = 0;
    t = 0;
    in_string = 0;

    while (i < len && t < pos) {

        if (in_string) {
            if (s[i] == '\\' && i + 1 < len) {
                i += 2;
                t += 2;
                continue;
            }
            if (s[i] == '"') {
                in_string = 0;
            }
            i++;
            t++;
            continue;
        }

        if (s[i] == '"') {
            in_string = 1;

        } else if (s[i] == '-' || xr_json_is_digit(s[i])) {
            for (n = 0; i + n < len; n++) {
                if (!xr_json_is_digit(s[i + n]) && s[i + n] != '-'
                    && s[i + n] != '+' && s[i + n] != '.'
                    && s[i + n] != 'e' && s[i + n] != 'E')
                {
                    break;
                }
            }
            if (t + n + XR_JSON_NUM_EXTRA > pos) {
                return i;
            }
            i += n;
            t += n + XR_JSON_NUM_EXTRA;
            continue;
        }

        i++;
        t++;
    }

    return i;
}


/* jansson's message without the markers it may quote from our text. */
static void
xr_json_clean_text(char *dst, size_t size, const char *src)
{
    size_t  n = 0;
    int     drop_quote = 0;

    while (*src && n + 1 < size) {
        if (*src == '"'
            && strncmp(src + 1, XR_JSON_MARK_ESC, XR_JSON_MARK_LEN) == 0)
        {
            src += 1 + XR_JSON_MARK_LEN;
            drop_quote = 1;
            continue;
        }
        if (*src == '"' && drop_quote) {
            drop_quote = 0;
            src++;
            continue;
        }
        dst[n++] = *src++;
    }
    dst[n] = '\0';
}


static int
xr_json_load_fail(xr_ctx_t *ctx, const unsigned char *text, size_t len,
    const json_error_t *error)
{
    char      msg[JSON_ERROR_TEXT_LENGTH];
    size_t    off, line, col;
    xr_err_e  err;

    switch (json_error_code(error)) {
    case json_error_premature_end_of_input:
        err = XR_E_TRUNCATED;
        break;
    case json_error_stack_overflow:
        err = XR_E_DEPTH;
        break;
    case json_error_invalid_utf8:
        err = XR_E_CHARSET;
        break;
    case json_error_out_of_memory:
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    default:
        err = XR_E_SYNTAX;
        break;
    }

    xr_json_clean_text(msg, sizeof(msg), error->text);
    off = xr_json_input_offset(text, len, error->position > 0
                                          ? (size_t) error->position : 0);
    xr_json_line_col(text, off, &line, &col);

    return xr_fail(ctx, err, NULL, "JSON: %s at line %zu, column %zu",
                   msg, line, col);
}


static xr_node_t *
xr_json_node(xr_json_dec_t *d, xr_node_type_e type)
{
    xr_node_t  *n;

    if (d->ctx->nodes - d->nodes >= d->max_nodes) {
        xr_fail(d->ctx, XR_E_BODY_TOO_LARGE, NULL,
                "JSON: more than %zu values", d->max_nodes);
        return NULL;
    }

    n = xr_node_new(d->ctx, type);
    return n;
}


static xr_node_t *
xr_json_to_node(xr_json_dec_t *d, json_t *j)
{
    xr_ctx_t    *ctx = d->ctx;
    xr_node_t   *n, *child;
    json_t      *v;
    const char  *key, *s;
    size_t       klen, i, len;
    xr_str_t     k;

    switch (json_typeof(j)) {

    case JSON_OBJECT:
        n = xr_json_node(d, XR_NODE_OBJECT);
        if (n == NULL) {
            return NULL;
        }
        json_object_keylen_foreach(j, key, klen, v) {
            if (klen && key[0] == XR_JSON_MARK) {
                xr_fail(ctx, XR_E_SYNTAX, NULL,
                        "JSON: a number is not an object key");
                return NULL;
            }
            child = xr_json_to_node(d, v);
            if (child == NULL) {
                return NULL;
            }
            k = xr_pstr(ctx->pool, key, klen);
            if (k.data == NULL) {
                xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
                return NULL;
            }
            if (xr_object_add(ctx, n, k, child) != XR_OK) {
                return NULL;
            }
        }
        return n;

    case JSON_ARRAY:
        n = xr_json_node(d, XR_NODE_ARRAY);
        if (n == NULL) {
            return NULL;
        }
        json_array_foreach(j, i, v) {
            child = xr_json_to_node(d, v);
            if (child == NULL || xr_array_push(ctx, n, child) != XR_OK) {
                return NULL;
            }
        }
        return n;

    case JSON_STRING:
        s = json_string_value(j);
        len = json_string_length(j);
        if (len && s[0] == XR_JSON_MARK) {
            n = xr_json_node(d, XR_NODE_NUMBER);
            s++;
            len--;
        } else {
            n = xr_json_node(d, XR_NODE_STRING);
        }
        if (n == NULL) {
            return NULL;
        }
        n->u.s = xr_pstr(ctx->pool, s, len);
        if (n->u.s.data == NULL) {
            xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
            return NULL;
        }
        return n;

    case JSON_TRUE:
    case JSON_FALSE:
        n = xr_json_node(d, XR_NODE_BOOL);
        if (n) {
            n->u.b = json_is_true(j);
        }
        return n;

    case JSON_NULL:
        return xr_json_node(d, XR_NODE_NULL);

    default:
        /* JSON_INTEGER, JSON_REAL: the scanner leaves no bare numbers */
        xr_fail(ctx, XR_E_INTERNAL, NULL, "JSON: unmarked number");
        return NULL;
    }
}


static int
xr_json_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


static int
xr_json_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const char *data, size_t len, xr_node_t **out)
{
    size_t          i;
    xr_str_t        text;
    xr_charset_e    cs;
    xr_json_scan_t  sc;
    xr_json_dec_t   d;
    json_error_t    error;
    json_t         *root;
    xr_node_t      *tree;

    (void) dir;
    (void) txn;

    *out = NULL;

    if (len > xr_ctx_max_body(ctx)) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "JSON body of %zu bytes is over the limit of %zu",
                       len, xr_ctx_max_body(ctx));
    }

    for (i = 0; i < len; i++) {
        if (!xr_json_is_space((unsigned char) data[i])) {
            break;
        }
    }
    if (i == len) {
        return xr_fail(ctx, XR_E_BODY_EMPTY, NULL, NULL);
    }

    cs = p ? p->charset : XR_CHARSET_UTF8;
    if (xr_charset_to_utf8(ctx, cs, data, len, &text, NULL) != XR_OK) {
        return XR_ERROR;
    }

    memset(&sc, 0, sizeof(sc));
    sc.ctx = ctx;
    sc.start = (const unsigned char *) text.data;
    sc.end = sc.start + text.len;
    sc.copied = sc.start;
    sc.max_depth = xr_ctx_max_depth(ctx);
    xr_buf_init(&sc.out, ctx->pool, 0);

    if (xr_json_scan(&sc) != XR_OK) {
        return XR_ERROR;
    }

    root = json_loadb(sc.out.data ? sc.out.data : "", sc.out.len,
                      JSON_REJECT_DUPLICATES, &error);
    if (root == NULL) {
        return xr_json_load_fail(ctx, sc.start, text.len, &error);
    }

    if (!json_is_object(root)) {
        json_decref(root);
        return xr_fail(ctx, XR_E_SYNTAX, NULL,
                       "JSON: the document is not an object");
    }

    d.ctx = ctx;
    d.nodes = ctx->nodes;
    d.max_nodes = ctx->max_nodes ? ctx->max_nodes : XR_DEFAULT_MAX_NODES;

    tree = xr_json_to_node(&d, root);
    json_decref(root);

    if (tree == NULL) {
        return XR_ERROR;
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
xr_json_check_text(xr_ctx_t *ctx, xr_str_t s, xr_str_t key)
{
    char  field[XR_FIELD_LEN];

    /*
     * U+0001 would come out as a number; U+0000 is refused on decode and
     * by many receivers, so it is not sent either.
     */
    if (s.len && (memchr(s.data, XR_JSON_MARK, s.len) != NULL
                  || memchr(s.data, '\0', s.len) != NULL))
    {
        return xr_fail(ctx, XR_E_CHARSET,
                       xr_json_field(field, sizeof(field), key),
                       "control character U+0000 or U+0001 cannot be sent "
                       "in JSON");
    }
    return xr_utf8_validate(ctx, s.data, s.len,
                            xr_json_field(field, sizeof(field), key));
}


/* NULL on error; `key` is the member or array the node sits in. */
static json_t *
xr_json_from_node(xr_ctx_t *ctx, const xr_node_t *n, xr_str_t key,
    unsigned depth)
{
    char          field[XR_FIELD_LEN], *mark;
    json_t       *j, *child;
    xr_member_t  *m;
    size_t        i;

    switch (n->type) {

    case XR_NODE_OBJECT:
    case XR_NODE_ARRAY:
        if (depth >= xr_ctx_max_depth(ctx)) {
            xr_fail(ctx, XR_E_DEPTH, xr_json_field(field, sizeof(field), key),
                    "JSON: nesting deeper than the limit");
            return NULL;
        }
        break;

    case XR_NODE_STRING:
        if (xr_json_check_text(ctx, n->u.s, key) != XR_OK) {
            return NULL;
        }
        j = json_stringn_nocheck(n->u.s.data ? n->u.s.data : "", n->u.s.len);
        goto scalar;

    case XR_NODE_NUMBER:
        if (xr_json_number_check(n->u.s.data, n->u.s.len) != XR_JSON_NUM_OK) {
            xr_fail(ctx, XR_E_FIELD_FORMAT,
                    xr_json_field(field, sizeof(field), key),
                    "\"%.*s\" is not a JSON number",
                    (int) n->u.s.len, n->u.s.data ? n->u.s.data : "");
            return NULL;
        }
        mark = xr_palloc(ctx->pool, n->u.s.len + 1);
        if (mark == NULL) {
            xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
            return NULL;
        }
        mark[0] = XR_JSON_MARK;
        memcpy(mark + 1, n->u.s.data, n->u.s.len);
        j = json_stringn_nocheck(mark, n->u.s.len + 1);
        goto scalar;

    case XR_NODE_BOOL:
        j = json_boolean(n->u.b);
        goto scalar;

    case XR_NODE_NULL:
        j = json_null();
        goto scalar;

    default:
        xr_fail(ctx, XR_E_INTERNAL, xr_json_field(field, sizeof(field), key),
                "JSON: %s node in a wire tree", xr_node_type_name(n->type));
        return NULL;
    }

    if (n->type == XR_NODE_ARRAY) {
        j = json_array();
        if (j == NULL) {
            goto nomem;
        }
        for (i = 0; i < n->u.arr.count; i++) {
            child = xr_json_from_node(ctx, n->u.arr.items[i], key, depth + 1);
            if (child == NULL) {
                json_decref(j);
                return NULL;
            }
            if (json_array_append_new(j, child) != 0) {
                json_decref(j);
                goto nomem;
            }
        }
        return j;
    }

    j = json_object();
    if (j == NULL) {
        goto nomem;
    }

    for (m = n->u.obj.first; m; m = m->next) {
        if (xr_json_check_text(ctx, m->key, m->key) != XR_OK) {
            json_decref(j);
            return NULL;
        }
        if (json_object_getn(j, m->key.data ? m->key.data : "", m->key.len)) {
            json_decref(j);
            xr_fail(ctx, XR_E_INTERNAL,
                    xr_json_field(field, sizeof(field), m->key),
                    "JSON: key \"%.*s\" repeated in an object",
                    (int) m->key.len, m->key.data);
            return NULL;
        }
        child = xr_json_from_node(ctx, m->value, m->key, depth + 1);
        if (child == NULL) {
            json_decref(j);
            return NULL;
        }
        /* steals child, also on failure */
        if (json_object_setn_new_nocheck(j, m->key.data ? m->key.data : "",
                                         m->key.len, child) != 0)
        {
            json_decref(j);
            goto nomem;
        }
    }
    return j;

scalar:

    if (j != NULL) {
        return j;
    }

nomem:

    xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    return NULL;
}


static int
xr_json_dump_cb(const char *buffer, size_t size, void *data)
{
    return xr_buf_add(data, buffer, size) == XR_OK ? 0 : -1;
}


/*
 * Turns every "\u0001<literal>" string of jansson's output into the bare
 * literal, in place.  Only string starts are looked at, so a \u0001 that
 * is not at the start of a string is left alone (none are sent anyway).
 */
static size_t
xr_json_unmark(char *s, size_t len)
{
    size_t  r, w;
    int     in_string;

    r = 0;
    w = 0;
    in_string = 0;

    while (r < len) {

        if (in_string) {
            if (s[r] == '\\' && r + 1 < len) {
                s[w++] = s[r++];
            } else if (s[r] == '"') {
                in_string = 0;
            }
            s[w++] = s[r++];
            continue;
        }

        if (s[r] == '"') {
            if (len - r > XR_JSON_MARK_LEN
                && memcmp(s + r + 1, XR_JSON_MARK_ESC, XR_JSON_MARK_LEN) == 0)
            {
                /* a number literal needs no escapes: copy to the quote */
                r += 1 + XR_JSON_MARK_LEN;
                while (r < len && s[r] != '"') {
                    s[w++] = s[r++];
                }
                r++;
                continue;
            }
            in_string = 1;
        }

        s[w++] = s[r++];
    }

    return w;
}


static int
xr_json_write(xr_ctx_t *ctx, const xr_profile_t *p, const xr_node_t *tree,
    xr_buf_t *out)
{
    xr_buf_t       tmp;
    xr_str_t       bytes, none = xr_null_string;
    json_t        *root;
    xr_charset_e   cs;
    int            rc;

    if (tree == NULL || tree->type != XR_NODE_OBJECT) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "JSON: the document to encode is not an object");
    }

    root = xr_json_from_node(ctx, tree, none, 0);
    if (root == NULL) {
        return XR_ERROR;
    }

    xr_buf_init(&tmp, ctx->pool, 0);
    rc = json_dump_callback(root, xr_json_dump_cb, &tmp,
                            JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(root);

    if (rc != 0 || tmp.failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    tmp.len = xr_json_unmark(tmp.data, tmp.len);

    cs = p ? p->charset : XR_CHARSET_UTF8;
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

    return xr_json_write(ctx, p, tree, out);
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

    return xr_json_write(ctx, p, root, out);
}
