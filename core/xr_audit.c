/*
 * The audit trail's format, chain, checkpoints, verification, recovery
 * and filter (xr_audit.h says what each promises).  Writing and parsing
 * are two halves of one canonical text: every rule the writer follows the
 * parser checks, so that a line has one accepted text.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr_audit.h"
#include "xr_time.h"


#define XR_AU_CHAIN_IN      (2 * XR_AUDIT_HASH_LEN + 8)
/* `,"hash":"` 64 hex `"}` at the end of every line */
#define XR_AU_TRAILER_LEN   (9 + XR_AUDIT_HEX_LEN + 2)
/* hashes kept for checkpoints not yet seen: 32 MB at most */
#define XR_AU_WINDOW_MAX    (1u << 20)


typedef struct {
    xr_ctx_t       *ctx;
    const char     *start;          /* the line, for offsets in errors */
    const char     *p;
    const char     *end;
    char           *out;            /* the scratch, as far as used */
} xr_au_rd_t;

typedef struct {
    unsigned char   hash[XR_AUDIT_HASH_LEN];
    unsigned char   rec;
} xr_au_slot_t;

typedef struct {
    uint64_t        seq;
    unsigned char   hash[XR_AUDIT_HASH_LEN];
} xr_au_point_t;

struct xr_audit_verifier_s {
    xr_ctx_t               *ctx;
    const xr_audit_key_t   *key;
    const char *const      *names;
    size_t                  nnames;
    char                   *scratch;
    xr_audit_entry_t        e;

    int                     have_alg;
    xr_digest_e             alg;

    int                     started;
    uint64_t                next_seq;
    unsigned char           last_hash[XR_AUDIT_HASH_LEN];
    unsigned                last_file;
    uint64_t                last_line;

    /* a seq jumped forward: is the first missing one further on? */
    int                     scanning;
    uint64_t                miss_from, miss_to;
    unsigned                gap_file;
    uint64_t                gap_line, gap_seq;

    /* hashes of seqs win_base .. win_base + win_len - 1, for heads */
    xr_au_slot_t           *win;
    size_t                  win_len, win_cap;
    uint64_t                win_base;
    uint64_t                win_recs;   /* records in the window */
    uint64_t                lost_recs;  /* dropped from it, unsigned */

    int                     have_ckpt;
    uint64_t                ckpt_last;
    unsigned                ckpt_file;
    uint64_t                ckpt_line;

    /* the checkpoints the caller holds, sorted by seq once feeding starts */
    xr_au_point_t          *points;
    size_t                  npoints, points_cap, next_point;
    int                     sorted;

    int                     done;
    xr_audit_report_t       report;
    xr_audit_summary_t      sum;
};


static const char  *xr_au_hash_names[XR_DIGEST_LAST] = { "sha256", "sm3" };
static const char  *xr_au_sig_names[] = { "sm2-sm3", "ecdsa-p256-sha256" };
static const char  *xr_au_reason_names[] = { "start", "restart", "rotate" };

static const char  *xr_au_fault_names[XR_AUDIT_FAULT_LAST] = {
    [XR_AUDIT_FAULT_NONE] = "ok",
    [XR_AUDIT_MALFORMED] = "malformed",
    [XR_AUDIT_EDITED] = "edited",
    [XR_AUDIT_DELETED] = "deleted",
    [XR_AUDIT_REORDERED] = "reordered",
    [XR_AUDIT_INSERTED] = "inserted",
    [XR_AUDIT_UNLINKED] = "unlinked",
    [XR_AUDIT_TORN] = "truncated line",
    [XR_AUDIT_FOREIGN_KEY] = "foreign key",
    [XR_AUDIT_BAD_SIGNATURE] = "bad signature",
    [XR_AUDIT_REWRITTEN] = "rewritten",
    [XR_AUDIT_REPLAYED] = "replayed checkpoint",
    [XR_AUDIT_TRUNCATED] = "truncated log",
};

static const char  xr_au_hexdigits[] = "0123456789abcdef";

/*
 * ASCII as a string value writes it: 0 as it is, a letter for its short
 * escape, 'u' for \u00xx.
 */
static const char  xr_au_esc[128] = {
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'b', 't', 'n', 'u', 'f', 'r',
    'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u', 'u',
    'u', 'u', 'u', 'u',
    [(unsigned char) '"'] = '"', [(unsigned char) '\\'] = '\\',
    [0x7f] = 'u'
};


static size_t xr_au_utf8_len(const unsigned char *s, size_t n);
static size_t xr_au_char(const unsigned char *s, size_t n, char out[6],
    size_t *olen);
static void xr_au_put_str(xr_buf_t *b, xr_str_t v);
static void xr_au_put_u64(xr_buf_t *b, uint64_t v);
static void xr_au_put_i64(xr_buf_t *b, int64_t v);
static void xr_au_put_hex(xr_buf_t *b, const unsigned char *h);
static size_t xr_au_time_text(int64_t ms, int tz, char *s);
static int xr_au_put_time(xr_buf_t *b, int64_t ms, int tz);
static int xr_au_put_content(xr_ctx_t *ctx, xr_buf_t *b,
    const xr_audit_entry_t *e, int with_sig);
static int xr_au_fail(xr_au_rd_t *r, const char *what);
static int xr_au_lit(xr_au_rd_t *r, const char *s, size_t n);
static int xr_au_str(xr_au_rd_t *r, xr_str_t *out);
static int xr_au_u64(xr_au_rd_t *r, uint64_t *out);
static int xr_au_i64(xr_au_rd_t *r, int64_t *out);
static int xr_au_hex(xr_au_rd_t *r, unsigned char *out, int quoted);
static int xr_au_time(xr_au_rd_t *r, int64_t *ms, int *tz);
static int xr_au_hash_alg(xr_au_rd_t *r, xr_digest_e *alg);
static int xr_au_parse_rec(xr_au_rd_t *r, xr_audit_entry_t *e);
static int xr_au_parse_ckpt(xr_au_rd_t *r, xr_audit_entry_t *e,
    const char *content);
static int xr_au_parse_open(xr_au_rd_t *r, xr_audit_entry_t *e);
static int xr_au_fault(xr_audit_verifier_t *v, xr_audit_fault_e fault,
    unsigned file, uint64_t line, uint64_t seq, const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));
static const char *xr_au_where(const xr_audit_verifier_t *v, unsigned file,
    uint64_t line, char *buf, size_t size);
static int xr_au_window_push(xr_audit_verifier_t *v, uint64_t seq,
    const unsigned char *hash, int rec);
static void xr_au_window_drop(xr_audit_verifier_t *v, uint64_t upto);
static int xr_au_check_ckpt(xr_audit_verifier_t *v, unsigned file,
    uint64_t line);
static int xr_au_point_cmp(const void *a, const void *b);
static int xr_au_csv_field(xr_buf_t *b, xr_str_t v, int last);


/* Names */

const char *
xr_audit_hash_name(xr_digest_e alg)
{
    return (unsigned) alg < XR_DIGEST_LAST ? xr_au_hash_names[alg] : "?";
}


const char *
xr_audit_sig_name(xr_audit_sig_e alg)
{
    return (unsigned) alg <= XR_AUDIT_ECDSA_P256_SHA256
           ? xr_au_sig_names[alg] : "?";
}


const char *
xr_audit_type_name(xr_audit_type_e type)
{
    switch (type) {
    case XR_AUDIT_REC:
        return "rec";
    case XR_AUDIT_CKPT:
        return "ckpt";
    case XR_AUDIT_OPEN:
        return "open";
    }
    return "?";
}


const char *
xr_audit_reason_name(xr_audit_reason_e reason)
{
    return (unsigned) reason <= XR_AUDIT_ROTATE
           ? xr_au_reason_names[reason] : "?";
}


int
xr_audit_hash_by_name(xr_str_t name, xr_digest_e *alg)
{
    int  i;

    for (i = 0; i < XR_DIGEST_LAST; i++) {
        if (xr_str_eq(name, xr_au_hash_names[i])) {
            *alg = (xr_digest_e) i;
            return XR_OK;
        }
    }
    return XR_DECLINED;
}


const char *
xr_audit_fault_name(xr_audit_fault_e fault)
{
    return (unsigned) fault < XR_AUDIT_FAULT_LAST
           ? xr_au_fault_names[fault] : "?";
}


/* Writing */

/* Length of the strict UTF-8 sequence at s (no overlongs, surrogates or
 * code points past U+10FFFF), or 0. */

static size_t
xr_au_utf8_len(const unsigned char *s, size_t n)
{
    unsigned char  c, lo, hi;
    size_t         k, i;

    c = s[0];
    if (c < 0x80) {
        return 1;
    }

    lo = 0x80;
    hi = 0xbf;

    if (c >= 0xc2 && c <= 0xdf) {
        k = 2;
    } else if (c >= 0xe0 && c <= 0xef) {
        k = 3;
        if (c == 0xe0) {
            lo = 0xa0;
        } else if (c == 0xed) {
            hi = 0x9f;
        }
    } else if (c >= 0xf0 && c <= 0xf4) {
        k = 4;
        if (c == 0xf0) {
            lo = 0x90;
        } else if (c == 0xf4) {
            hi = 0x8f;
        }
    } else {
        return 0;
    }

    if (n < k || s[1] < lo || s[1] > hi) {
        return 0;
    }
    for (i = 2; i < k; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) {
            return 0;
        }
    }
    return k;
}


/*
 * The written form of the character at s: its text in out (at most 6
 * bytes, *olen of them); returns the input bytes it stands for.
 */

static size_t
xr_au_char(const unsigned char *s, size_t n, char out[6], size_t *olen)
{
    char    e;
    size_t  k;

    if (s[0] < 0x80) {
        e = xr_au_esc[s[0]];
        if (e == 0) {
            out[0] = (char) s[0];
            *olen = 1;
        } else if (e != 'u') {
            out[0] = '\\';
            out[1] = e;
            *olen = 2;
        } else {
            memcpy(out, "\\u00", 4);
            out[4] = xr_au_hexdigits[s[0] >> 4];
            out[5] = xr_au_hexdigits[s[0] & 0x0f];
            *olen = 6;
        }
        return 1;
    }

    k = xr_au_utf8_len(s, n);
    if (k == 0) {
        memcpy(out, "\xef\xbf\xbd", 3);     /* U+FFFD */
        *olen = 3;
        return 1;
    }

    memcpy(out, s, k);
    *olen = k;
    return k;
}


static void
xr_au_put_str(xr_buf_t *b, xr_str_t v)
{
    char                  c[6];
    size_t                i, k, n, total, acc;
    const unsigned char  *s;

    s = (const unsigned char *) v.data;

    total = 0;
    for (i = 0; i < v.len; i += k) {
        k = xr_au_char(s + i, v.len - i, c, &n);
        total += n;
    }

    xr_buf_addc(b, '"');

    acc = 0;
    for (i = 0; i < v.len; i += k) {
        k = xr_au_char(s + i, v.len - i, c, &n);
        if (total > XR_AUDIT_VALUE_MAX && acc + n > XR_AUDIT_VALUE_MAX - 3) {
            break;
        }
        xr_buf_add(b, c, n);
        acc += n;
    }

    if (total > XR_AUDIT_VALUE_MAX) {
        xr_buf_add(b, "...", 3);
    }

    xr_buf_addc(b, '"');
}


static void
xr_au_put_u64(xr_buf_t *b, uint64_t v)
{
    char    d[20];
    size_t  n;

    n = sizeof(d);
    do {
        d[--n] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);

    xr_buf_add(b, d + n, sizeof(d) - n);
}


static void
xr_au_put_i64(xr_buf_t *b, int64_t v)
{
    if (v < 0) {
        xr_buf_addc(b, '-');
        xr_au_put_u64(b, (uint64_t) 0 - (uint64_t) v);
        return;
    }
    xr_au_put_u64(b, (uint64_t) v);
}


static void
xr_au_put_hex(xr_buf_t *b, const unsigned char *h)
{
    char  hex[XR_AUDIT_HEX_LEN + 2];

    hex[0] = '"';
    xr_hex(h, XR_AUDIT_HASH_LEN, hex + 1);
    hex[XR_AUDIT_HEX_LEN + 1] = '"';
    xr_buf_add(b, hex, sizeof(hex));
}


/* The time as the line has it, quotes included, into s[40]: its length. */

static size_t
xr_au_time_text(int64_t ms, int tz, char *s)
{
    int        n, a;
    xr_time_t  t;

    if (xr_time_from_unix_ms(ms, tz, &t) != XR_OK) {
        return 0;
    }

    a = tz < 0 ? -tz : tz;
    n = snprintf(s, 40, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03d%c%02d:%02d\"",
                 t.year, t.month, t.day, t.hour, t.min, t.sec, t.msec,
                 tz < 0 ? '-' : '+', a / 60, a % 60);

    return n > 0 && n < 40 ? (size_t) n : 0;
}


static int
xr_au_put_time(xr_buf_t *b, int64_t ms, int tz)
{
    char    s[40];
    size_t  n;

    n = xr_au_time_text(ms, tz, s);
    if (n == 0) {
        return XR_ERROR;
    }
    return xr_buf_add(b, s, n);
}


/*
 * Writes the members of one object, "name":value, and refuses two names
 * written alike (compared as written: two different byte strings can
 * become one text once bad UTF-8 is replaced).
 */

static int
xr_au_put_pairs(xr_ctx_t *ctx, xr_buf_t *b, const xr_audit_rec_t *r,
    int amounts)
{
    size_t  i, j, n, start[XR_AUDIT_PAIRS_MAX], len[XR_AUDIT_PAIRS_MAX];

    n = amounts ? r->namounts : r->nids;

    if (n > XR_AUDIT_PAIRS_MAX) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "audit record: more than %d %s", XR_AUDIT_PAIRS_MAX,
                       amounts ? "amounts" : "identifiers");
    }

    xr_buf_addc(b, '{');

    for (i = 0; i < n; i++) {
        if (i) {
            xr_buf_addc(b, ',');
        }

        start[i] = b->len;
        xr_au_put_str(b, amounts ? r->amounts[i].name : r->ids[i].name);
        len[i] = b->len - start[i];

        if (b->failed) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }

        for (j = 0; j < i; j++) {
            if (len[j] == len[i]
                && memcmp(b->data + start[j], b->data + start[i], len[i])
                   == 0)
            {
                return xr_fail(ctx, XR_E_INTERNAL, NULL,
                               "audit record: two %s of one name",
                               amounts ? "amounts" : "identifiers");
            }
        }

        xr_buf_addc(b, ':');
        if (amounts) {
            xr_au_put_i64(b, r->amounts[i].fen);
        } else {
            xr_au_put_str(b, r->ids[i].value);
        }
    }

    xr_buf_addc(b, '}');
    return XR_OK;
}


static int
xr_au_put_rec(xr_ctx_t *ctx, xr_buf_t *b, const xr_audit_rec_t *r)
{
    xr_buf_add(b, ",\"caller\":", 10);
    xr_au_put_str(b, r->caller);
    xr_buf_add(b, ",\"domain\":", 10);
    xr_au_put_str(b, r->domain);
    xr_buf_add(b, ",\"txn\":", 7);
    xr_au_put_str(b, r->txn);
    xr_buf_add(b, ",\"msg_id\":", 10);
    xr_au_put_str(b, r->msg_id);
    xr_buf_add(b, ",\"origin\":", 10);
    xr_au_put_str(b, r->origin);
    xr_buf_add(b, ",\"dest\":", 8);
    xr_au_put_str(b, r->dest);
    xr_buf_add(b, ",\"upstream\":", 12);
    xr_au_put_str(b, r->upstream);
    xr_buf_add(b, ",\"peer\":", 8);
    xr_au_put_str(b, r->peer);
    xr_buf_add(b, ",\"outcome\":", 11);
    xr_au_put_str(b, r->outcome);
    xr_buf_add(b, ",\"error\":", 9);
    xr_au_put_str(b, r->error);
    xr_buf_add(b, ",\"latency_ms\":", 14);
    xr_au_put_u64(b, r->latency_ms > 0 ? (uint64_t) r->latency_ms : 0);
    xr_buf_add(b, ",\"upstream_ms\":", 15);
    if (r->upstream_ms < 0) {
        xr_buf_add(b, "null", 4);
    } else {
        xr_au_put_u64(b, (uint64_t) r->upstream_ms);
    }

    xr_buf_add(b, ",\"amounts\":", 11);
    if (xr_au_put_pairs(ctx, b, r, 1) != XR_OK) {
        return XR_ERROR;
    }
    xr_buf_add(b, ",\"ids\":", 7);
    return xr_au_put_pairs(ctx, b, r, 0);
}


static int
xr_au_put_content(xr_ctx_t *ctx, xr_buf_t *b, const xr_audit_entry_t *e,
    int with_sig)
{
    const xr_audit_ckpt_t  *c;
    const xr_audit_open_t  *o;

    switch (e->type) {
    case XR_AUDIT_REC:
        xr_buf_add(b, "\"type\":\"rec\"", 12);
        break;
    case XR_AUDIT_CKPT:
        xr_buf_add(b, "\"type\":\"ckpt\"", 13);
        break;
    case XR_AUDIT_OPEN:
        xr_buf_add(b, "\"type\":\"open\"", 13);
        break;
    default:
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "audit entry of unknown type %d", (int) e->type);
    }

    xr_buf_add(b, ",\"time\":", 8);
    if (xr_au_put_time(b, e->time_ms, e->tz_min) != XR_OK && !b->failed) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "audit entry: time %lld at offset %d is out of range",
                       (long long) e->time_ms, e->tz_min);
    }
    xr_buf_add(b, ",\"inst\":", 8);
    xr_au_put_str(b, e->inst);

    switch (e->type) {
    case XR_AUDIT_REC:
        if (xr_au_put_rec(ctx, b, &e->u.rec) != XR_OK) {
            return XR_ERROR;
        }
        break;

    case XR_AUDIT_CKPT:
        c = &e->u.ckpt;
        if (c->first == 0 || c->first > c->last
            || (unsigned) c->hash_alg >= XR_DIGEST_LAST
            || (unsigned) c->sig_alg > XR_AUDIT_ECDSA_P256_SHA256)
        {
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "audit checkpoint of seq %llu..%llu",
                           (unsigned long long) c->first,
                           (unsigned long long) c->last);
        }
        xr_buf_add(b, ",\"hash_alg\":\"", 13);
        xr_buf_adds(b, xr_audit_hash_name(c->hash_alg));
        xr_buf_add(b, "\",\"first\":", 10);
        xr_au_put_u64(b, c->first);
        xr_buf_add(b, ",\"last\":", 8);
        xr_au_put_u64(b, c->last);
        xr_buf_add(b, ",\"head\":", 8);
        xr_au_put_hex(b, c->head);
        xr_buf_add(b, ",\"sig_alg\":\"", 12);
        xr_buf_adds(b, xr_audit_sig_name(c->sig_alg));
        xr_buf_add(b, "\",\"key_id\":", 11);
        xr_au_put_hex(b, c->key_id);
        if (with_sig) {
            if (c->sig.len == 0) {
                return xr_fail(ctx, XR_E_INTERNAL, NULL,
                               "audit checkpoint is not signed");
            }
            xr_buf_add(b, ",\"sig\":\"", 8);
            xr_base64_encode(c->sig.data, c->sig.len, b);
            xr_buf_addc(b, '"');
        }
        break;

    case XR_AUDIT_OPEN:
        o = &e->u.open;
        if ((unsigned) o->hash_alg >= XR_DIGEST_LAST
            || (unsigned) o->reason > XR_AUDIT_ROTATE)
        {
            return xr_fail(ctx, XR_E_INTERNAL, NULL,
                           "audit open entry with a bad algorithm or "
                           "reason");
        }
        xr_buf_add(b, ",\"hash_alg\":\"", 13);
        xr_buf_adds(b, xr_audit_hash_name(o->hash_alg));
        xr_buf_add(b, "\",\"reason\":\"", 12);
        xr_buf_adds(b, xr_audit_reason_name(o->reason));
        xr_buf_add(b, "\",\"prev_file\":", 14);
        xr_au_put_str(b, o->prev_file);
        xr_buf_add(b, ",\"torn\":", 8);
        xr_au_put_u64(b, o->torn);
        break;
    }

    if (b->failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


int
xr_audit_prepare(xr_ctx_t *ctx, xr_digest_e alg, const xr_audit_entry_t *e,
    xr_audit_prep_t *p)
{
    size_t    n;
    xr_buf_t  b;

    if ((unsigned) alg >= XR_DIGEST_LAST) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "audit: bad digest");
    }

    if ((e->type == XR_AUDIT_CKPT && e->u.ckpt.hash_alg != alg)
        || (e->type == XR_AUDIT_OPEN && e->u.open.hash_alg != alg))
    {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "audit %s entry names another chain digest than %s",
                       xr_audit_type_name(e->type), xr_audit_hash_name(alg));
    }

    xr_buf_init(&b, ctx->pool, 0);

    if (xr_au_put_content(ctx, &b, e, 1) != XR_OK) {
        return XR_ERROR;
    }

    if (b.len + XR_AUDIT_FRAME_MAX > XR_AUDIT_LINE_MAX) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "audit line of %zu bytes is over the limit", b.len);
    }

    n = 0;
    if (xr_digest(alg, b.data, b.len, p->digest, &n) != XR_OK
        || n != XR_AUDIT_HASH_LEN)
    {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "%s failed",
                       xr_audit_hash_name(alg));
    }

    p->alg = alg;
    p->content.data = b.data;
    p->content.len = b.len;
    return XR_OK;
}


size_t
xr_audit_line_size(const xr_audit_prep_t *p)
{
    return p->content.len + XR_AUDIT_FRAME_MAX;
}


static void
xr_au_be64(unsigned char *p, uint64_t v)
{
    int  i;

    for (i = 7; i >= 0; i--) {
        p[i] = (unsigned char) v;
        v >>= 8;
    }
}


static int
xr_au_link(xr_digest_e alg, const unsigned char *prev, uint64_t seq,
    const unsigned char *digest, unsigned char *out)
{
    size_t         n;
    unsigned char  in[XR_AU_CHAIN_IN], h[XR_DIGEST_MAX_LEN];

    memcpy(in, prev, XR_AUDIT_HASH_LEN);
    xr_au_be64(in + XR_AUDIT_HASH_LEN, seq);
    memcpy(in + XR_AUDIT_HASH_LEN + 8, digest, XR_AUDIT_HASH_LEN);

    n = 0;
    if (xr_digest(alg, in, sizeof(in), h, &n) != XR_OK
        || n != XR_AUDIT_HASH_LEN)
    {
        return XR_ERROR;
    }

    memcpy(out, h, XR_AUDIT_HASH_LEN);
    return XR_OK;
}


int
xr_audit_seal(const xr_audit_prep_t *p, xr_audit_head_t *head, char *out,
    size_t size, size_t *len)
{
    char           *o, d[20];
    size_t          n;
    uint64_t        seq, v;
    unsigned char   h[XR_AUDIT_HASH_LEN];

    if (head->seq == UINT64_MAX || size < xr_audit_line_size(p)) {
        return XR_ERROR;
    }

    seq = head->seq + 1;

    if (xr_au_link(p->alg, head->hash, seq, p->digest, h) != XR_OK) {
        return XR_ERROR;
    }

    o = out;
    memcpy(o, "{\"seq\":", 7);
    o += 7;

    n = sizeof(d);
    v = seq;
    do {
        d[--n] = (char) ('0' + v % 10);
        v /= 10;
    } while (v);
    memcpy(o, d + n, sizeof(d) - n);
    o += sizeof(d) - n;

    memcpy(o, ",\"prev\":\"", 9);
    o += 9;
    xr_hex(head->hash, XR_AUDIT_HASH_LEN, o);
    o += XR_AUDIT_HEX_LEN;
    memcpy(o, "\",", 2);
    o += 2;
    memcpy(o, p->content.data, p->content.len);
    o += p->content.len;
    memcpy(o, ",\"hash\":\"", 9);
    o += 9;
    xr_hex(h, XR_AUDIT_HASH_LEN, o);
    o += XR_AUDIT_HEX_LEN;
    memcpy(o, "\"}\n", 3);
    o += 3;

    *len = (size_t) (o - out);
    head->seq = seq;
    memcpy(head->hash, h, XR_AUDIT_HASH_LEN);
    return XR_OK;
}


/* Keys and checkpoints */

int
xr_audit_key_init(xr_ctx_t *ctx, xr_audit_key_t *k, const xr_key_t *key)
{
    if (xr_key_id(ctx, key, k->id) != XR_OK) {
        return XR_ERROR;
    }

    k->key = key;
    k->alg = xr_key_is_sm2(key) ? XR_AUDIT_SM2_SM3
                                : XR_AUDIT_ECDSA_P256_SHA256;
    return XR_OK;
}


int
xr_audit_ckpt_sign(xr_ctx_t *ctx, const xr_audit_key_t *k,
    xr_audit_entry_t *e)
{
    int        rc;
    xr_buf_t   text, sig;

    if (e->type != XR_AUDIT_CKPT) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "audit: signing an entry that is no checkpoint");
    }

    e->u.ckpt.sig_alg = k->alg;
    memcpy(e->u.ckpt.key_id, k->id, XR_KEY_ID_LEN);

    xr_buf_init(&text, ctx->pool, 0);
    if (xr_au_put_content(ctx, &text, e, 0) != XR_OK) {
        return XR_ERROR;
    }

    xr_buf_init(&sig, ctx->pool, 0);

    if (k->alg == XR_AUDIT_SM2_SM3) {
        rc = xr_sm2_sign(ctx, k->key, NULL, 0, text.data, text.len, &sig);
    } else {
        rc = xr_ecdsa_sign(ctx, k->key, text.data, text.len, &sig);
    }

    if (rc != XR_OK) {
        return XR_ERROR;
    }

    e->u.ckpt.sig.data = sig.data;
    e->u.ckpt.sig.len = sig.len;
    return XR_OK;
}


int
xr_audit_ckpt_verify(xr_ctx_t *ctx, const xr_audit_key_t *k,
    const xr_audit_entry_t *e)
{
    int                     rc;
    char                    a[17], b[17];
    xr_buf_t                text;
    xr_str_t                t;
    const xr_audit_ckpt_t  *c;

    c = &e->u.ckpt;

    if (e->type != XR_AUDIT_CKPT) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "audit: verifying an entry that is no checkpoint");
    }

    if (!xr_crypto_equal(c->key_id, k->id, XR_KEY_ID_LEN)) {
        xr_hex(c->key_id, 8, a);
        xr_hex(k->id, 8, b);
        a[16] = '\0';
        b[16] = '\0';
        snprintf(ctx->errstr, sizeof(ctx->errstr),
                 "signed by key %s..., not by the key given (%s...)", a, b);
        return XR_DECLINED;
    }

    if (c->sig_alg != k->alg) {
        snprintf(ctx->errstr, sizeof(ctx->errstr),
                 "signature algorithm %s does not go with the key (%s)",
                 xr_audit_sig_name(c->sig_alg), xr_audit_sig_name(k->alg));
        return XR_DECLINED;
    }

    t = c->signed_text;
    if (t.data == NULL) {
        xr_buf_init(&text, ctx->pool, 0);
        if (xr_au_put_content(ctx, &text, e, 0) != XR_OK) {
            return XR_ERROR;
        }
        t.data = text.data;
        t.len = text.len;
    }

    if (k->alg == XR_AUDIT_SM2_SM3) {
        rc = xr_sm2_verify(ctx, k->key, NULL, 0, t.data, t.len, c->sig.data,
                           c->sig.len);
    } else {
        rc = xr_ecdsa_verify(ctx, k->key, t.data, t.len, c->sig.data,
                             c->sig.len);
    }

    /* a signature that is not even DER is as forged as a wrong one */
    if (rc == XR_ERROR && ctx->err == XR_E_BAD_SIGNATURE) {
        xr_ctx_clear(ctx);
        rc = XR_DECLINED;
    }

    if (rc == XR_DECLINED) {
        snprintf(ctx->errstr, sizeof(ctx->errstr),
                 "the signature does not verify with the key given");
    }

    return rc;
}


/* Reading */

static int
xr_au_fail(xr_au_rd_t *r, const char *what)
{
    return xr_fail(r->ctx, XR_E_SYNTAX, NULL, "audit line: %s at byte %zu",
                   what, (size_t) (r->p - r->start));
}


static int
xr_au_lit(xr_au_rd_t *r, const char *s, size_t n)
{
    if ((size_t) (r->end - r->p) < n || memcmp(r->p, s, n) != 0) {
        return XR_ERROR;
    }
    r->p += n;
    return XR_OK;
}


/* A member name and its colon: `,"name":`, the comma included. */

static int
xr_au_key(xr_au_rd_t *r, const char *s)
{
    if (xr_au_lit(r, s, strlen(s)) != XR_OK) {
        char  what[64];

        snprintf(what, sizeof(what), "%s expected", s);
        return xr_au_fail(r, what);
    }
    return XR_OK;
}


/* A canonical string value (see xr_audit.h), unescaped into the scratch. */

static int
xr_au_str(xr_au_rd_t *r, xr_str_t *out)
{
    int                   hi, lo, v;
    char                  e;
    size_t                k;
    const char           *open;
    unsigned char         c;

    if (r->p == r->end || *r->p != '"') {
        return xr_au_fail(r, "string expected");
    }

    open = ++r->p;
    out->data = r->out;

    for ( ;; ) {
        if (r->p == r->end) {
            return xr_au_fail(r, "string not closed");
        }

        c = (unsigned char) *r->p;

        if (c == '"') {
            break;
        }

        if (c == '\\') {
            if (r->end - r->p < 2) {
                return xr_au_fail(r, "escape cut short");
            }
            switch (r->p[1]) {
            case '"':  v = '"'; break;
            case '\\': v = '\\'; break;
            case 'b':  v = '\b'; break;
            case 'f':  v = '\f'; break;
            case 'n':  v = '\n'; break;
            case 'r':  v = '\r'; break;
            case 't':  v = '\t'; break;
            case 'u':
                if (r->end - r->p < 6 || r->p[2] != '0' || r->p[3] != '0') {
                    return xr_au_fail(r, "escape not written as the "
                                      "writer does");
                }
                hi = r->p[4];
                lo = r->p[5];
                hi = hi >= '0' && hi <= '9' ? hi - '0' : -1;
                lo = lo >= '0' && lo <= '9' ? lo - '0'
                     : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
                if (hi < 0 || hi > 7 || lo < 0) {
                    return xr_au_fail(r, "escape not written as the "
                                      "writer does");
                }
                v = hi << 4 | lo;
                e = v < 0x80 ? xr_au_esc[v] : 0;
                if (e != 'u') {
                    return xr_au_fail(r, "escape not written as the "
                                      "writer does");
                }
                *r->out++ = (char) v;
                r->p += 6;
                continue;
            default:
                return xr_au_fail(r, "unknown escape");
            }
            *r->out++ = (char) v;
            r->p += 2;
            continue;
        }

        if (c < 0x80) {
            if (xr_au_esc[c]) {
                return xr_au_fail(r, "control character in a string");
            }
            *r->out++ = (char) c;
            r->p++;
            continue;
        }

        k = xr_au_utf8_len((const unsigned char *) r->p,
                           (size_t) (r->end - r->p));
        if (k == 0) {
            return xr_au_fail(r, "invalid UTF-8");
        }
        memcpy(r->out, r->p, k);
        r->out += k;
        r->p += k;
    }

    if ((size_t) (r->p - open) > XR_AUDIT_VALUE_MAX) {
        return xr_au_fail(r, "string longer than the writer writes");
    }

    r->p++;
    out->len = (size_t) (r->out - out->data);
    return XR_OK;
}


static int
xr_au_u64(xr_au_rd_t *r, uint64_t *out)
{
    uint64_t  v;
    unsigned  d;

    if (r->p == r->end || *r->p < '0' || *r->p > '9') {
        return xr_au_fail(r, "number expected");
    }

    if (*r->p == '0') {
        r->p++;
        if (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
            return xr_au_fail(r, "number with a leading zero");
        }
        *out = 0;
        return XR_OK;
    }

    v = 0;
    while (r->p < r->end && *r->p >= '0' && *r->p <= '9') {
        d = (unsigned) (*r->p - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return xr_au_fail(r, "number out of range");
        }
        v = v * 10 + d;
        r->p++;
    }

    *out = v;
    return XR_OK;
}


static int
xr_au_i64(xr_au_rd_t *r, int64_t *out)
{
    int       neg;
    uint64_t  v;

    neg = r->p < r->end && *r->p == '-';
    if (neg) {
        r->p++;
    }

    if (xr_au_u64(r, &v) != XR_OK) {
        return XR_ERROR;
    }

    if (neg) {
        if (v == 0 || v > (uint64_t) INT64_MAX + 1) {
            return xr_au_fail(r, "number out of range");
        }
        *out = v == (uint64_t) INT64_MAX + 1 ? INT64_MIN : -(int64_t) v;
        return XR_OK;
    }

    if (v > INT64_MAX) {
        return xr_au_fail(r, "number out of range");
    }
    *out = (int64_t) v;
    return XR_OK;
}


/* 64 lowercase hex digits, quoted or not, into 32 bytes. */

static int
xr_au_hex(xr_au_rd_t *r, unsigned char *out, int quoted)
{
    int     hi, lo;
    size_t  i, need;

    need = XR_AUDIT_HEX_LEN + (quoted ? 2 : 0);
    if ((size_t) (r->end - r->p) < need
        || (quoted && (r->p[0] != '"' || r->p[need - 1] != '"')))
    {
        return xr_au_fail(r, "hash of 64 hex digits expected");
    }

    if (quoted) {
        r->p++;
    }

    for (i = 0; i < XR_AUDIT_HASH_LEN; i++) {
        hi = r->p[2 * i];
        lo = r->p[2 * i + 1];
        hi = hi >= '0' && hi <= '9' ? hi - '0'
             : hi >= 'a' && hi <= 'f' ? hi - 'a' + 10 : -1;
        lo = lo >= '0' && lo <= '9' ? lo - '0'
             : lo >= 'a' && lo <= 'f' ? lo - 'a' + 10 : -1;
        if (hi < 0 || lo < 0) {
            r->p += 2 * i;
            return xr_au_fail(r, "not a lowercase hex digit");
        }
        out[i] = (unsigned char) (hi << 4 | lo);
    }

    r->p += XR_AUDIT_HEX_LEN + (quoted ? 1 : 0);
    return XR_OK;
}


static int
xr_au_digits(const char *p, size_t n, int *out)
{
    int     v;
    size_t  i;

    v = 0;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9') {
            return XR_ERROR;
        }
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return XR_OK;
}


/* "YYYY-MM-DDTHH:MM:SS.mmm+HH:MM", exactly. */

static int
xr_au_time(xr_au_rd_t *r, int64_t *ms, int *tz)
{
    int         oh, om;
    xr_time_t   t;
    const char *s;

    if (r->end - r->p < 31 || r->p[0] != '"' || r->p[30] != '"') {
        return xr_au_fail(r, "time expected");
    }

    s = r->p + 1;
    memset(&t, 0, sizeof(t));
    t.has_time = 1;
    t.has_msec = 1;

    if (s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':'
        || s[16] != ':' || s[19] != '.' || (s[23] != '+' && s[23] != '-')
        || s[26] != ':'
        || xr_au_digits(s, 4, &t.year) != XR_OK
        || xr_au_digits(s + 5, 2, &t.month) != XR_OK
        || xr_au_digits(s + 8, 2, &t.day) != XR_OK
        || xr_au_digits(s + 11, 2, &t.hour) != XR_OK
        || xr_au_digits(s + 14, 2, &t.min) != XR_OK
        || xr_au_digits(s + 17, 2, &t.sec) != XR_OK
        || xr_au_digits(s + 20, 3, &t.msec) != XR_OK
        || xr_au_digits(s + 24, 2, &oh) != XR_OK
        || xr_au_digits(s + 27, 2, &om) != XR_OK
        || om > 59)
    {
        return xr_au_fail(r, "time not written as the writer does");
    }

    *tz = (oh * 60 + om) * (s[23] == '-' ? -1 : 1);

    /* "-00:00" is not how the writer says UTC */
    if ((s[23] == '-' && *tz == 0)
        || xr_time_to_unix_ms(&t, *tz, ms) != XR_OK)
    {
        return xr_au_fail(r, "time out of range");
    }

    r->p += 31;
    return XR_OK;
}


static int
xr_au_hash_alg(xr_au_rd_t *r, xr_digest_e *alg)
{
    if (xr_au_lit(r, "\"sm3\"", 5) == XR_OK) {
        *alg = XR_DIGEST_SM3;
        return XR_OK;
    }
    if (xr_au_lit(r, "\"sha256\"", 8) == XR_OK) {
        *alg = XR_DIGEST_SHA256;
        return XR_OK;
    }
    return xr_au_fail(r, "hash algorithm sm3 or sha256 expected");
}


static int
xr_au_same_str(xr_str_t a, xr_str_t b)
{
    return a.len == b.len
           && (a.len == 0 || memcmp(a.data, b.data, a.len) == 0);
}


static int
xr_au_parse_rec(xr_au_rd_t *r, xr_audit_entry_t *e)
{
    size_t           n, i;
    uint64_t         v;
    const char      *open;
    xr_audit_rec_t  *rec;

    rec = &e->u.rec;

    if (xr_au_key(r, ",\"caller\":") != XR_OK
        || xr_au_str(r, &rec->caller) != XR_OK
        || xr_au_key(r, ",\"domain\":") != XR_OK
        || xr_au_str(r, &rec->domain) != XR_OK
        || xr_au_key(r, ",\"txn\":") != XR_OK
        || xr_au_str(r, &rec->txn) != XR_OK
        || xr_au_key(r, ",\"msg_id\":") != XR_OK
        || xr_au_str(r, &rec->msg_id) != XR_OK
        || xr_au_key(r, ",\"origin\":") != XR_OK
        || xr_au_str(r, &rec->origin) != XR_OK
        || xr_au_key(r, ",\"dest\":") != XR_OK
        || xr_au_str(r, &rec->dest) != XR_OK
        || xr_au_key(r, ",\"upstream\":") != XR_OK
        || xr_au_str(r, &rec->upstream) != XR_OK
        || xr_au_key(r, ",\"peer\":") != XR_OK
        || xr_au_str(r, &rec->peer) != XR_OK
        || xr_au_key(r, ",\"outcome\":") != XR_OK
        || xr_au_str(r, &rec->outcome) != XR_OK
        || xr_au_key(r, ",\"error\":") != XR_OK
        || xr_au_str(r, &rec->error) != XR_OK
        || xr_au_key(r, ",\"latency_ms\":") != XR_OK
        || xr_au_u64(r, &v) != XR_OK)
    {
        return XR_ERROR;
    }

    if (v > INT64_MAX) {
        return xr_au_fail(r, "latency out of range");
    }
    rec->latency_ms = (int64_t) v;

    if (xr_au_key(r, ",\"upstream_ms\":") != XR_OK) {
        return XR_ERROR;
    }
    if (xr_au_lit(r, "null", 4) == XR_OK) {
        rec->upstream_ms = -1;
    } else if (xr_au_u64(r, &v) != XR_OK) {
        return XR_ERROR;
    } else if (v > INT64_MAX) {
        return xr_au_fail(r, "upstream time out of range");
    } else {
        rec->upstream_ms = (int64_t) v;
    }

    if (xr_au_key(r, ",\"amounts\":") != XR_OK) {
        return XR_ERROR;
    }

    open = r->p;
    if (xr_au_lit(r, "{", 1) != XR_OK) {
        return xr_au_fail(r, "object expected");
    }

    n = 0;
    if (xr_au_lit(r, "}", 1) != XR_OK) {
        for ( ;; ) {
            if (n == XR_AUDIT_PAIRS_MAX) {
                return xr_au_fail(r, "too many amounts");
            }
            if (xr_au_str(r, &e->amount_store[n].name) != XR_OK
                || xr_au_key(r, ":") != XR_OK
                || xr_au_i64(r, &e->amount_store[n].fen) != XR_OK)
            {
                return XR_ERROR;
            }
            for (i = 0; i < n; i++) {
                if (xr_au_same_str(e->amount_store[i].name,
                                   e->amount_store[n].name))
                {
                    return xr_au_fail(r, "an amount named twice");
                }
            }
            n++;
            if (xr_au_lit(r, "}", 1) == XR_OK) {
                break;
            }
            if (xr_au_key(r, ",") != XR_OK) {
                return XR_ERROR;
            }
        }
    }

    rec->amounts = e->amount_store;
    rec->namounts = n;
    e->amounts_json.data = open;
    e->amounts_json.len = (size_t) (r->p - open);

    if (xr_au_key(r, ",\"ids\":") != XR_OK) {
        return XR_ERROR;
    }

    open = r->p;
    if (xr_au_lit(r, "{", 1) != XR_OK) {
        return xr_au_fail(r, "object expected");
    }

    n = 0;
    if (xr_au_lit(r, "}", 1) != XR_OK) {
        for ( ;; ) {
            if (n == XR_AUDIT_PAIRS_MAX) {
                return xr_au_fail(r, "too many identifiers");
            }
            if (xr_au_str(r, &e->ident_store[n].name) != XR_OK
                || xr_au_key(r, ":") != XR_OK
                || xr_au_str(r, &e->ident_store[n].value) != XR_OK)
            {
                return XR_ERROR;
            }
            for (i = 0; i < n; i++) {
                if (xr_au_same_str(e->ident_store[i].name,
                                   e->ident_store[n].name))
                {
                    return xr_au_fail(r, "an identifier named twice");
                }
            }
            n++;
            if (xr_au_lit(r, "}", 1) == XR_OK) {
                break;
            }
            if (xr_au_key(r, ",") != XR_OK) {
                return XR_ERROR;
            }
        }
    }

    rec->ids = e->ident_store;
    rec->nids = n;
    e->ids_json.data = open;
    e->ids_json.len = (size_t) (r->p - open);

    return XR_OK;
}


static int
xr_au_parse_ckpt(xr_au_rd_t *r, xr_audit_entry_t *e, const char *content)
{
    const char       *b64;
    xr_buf_t          sig;
    xr_audit_ckpt_t  *c;

    c = &e->u.ckpt;

    if (xr_au_key(r, ",\"hash_alg\":") != XR_OK
        || xr_au_hash_alg(r, &c->hash_alg) != XR_OK
        || xr_au_key(r, ",\"first\":") != XR_OK
        || xr_au_u64(r, &c->first) != XR_OK
        || xr_au_key(r, ",\"last\":") != XR_OK
        || xr_au_u64(r, &c->last) != XR_OK
        || xr_au_key(r, ",\"head\":") != XR_OK
        || xr_au_hex(r, c->head, 1) != XR_OK
        || xr_au_key(r, ",\"sig_alg\":") != XR_OK)
    {
        return XR_ERROR;
    }

    if (c->first == 0 || c->first > c->last) {
        return xr_au_fail(r, "checkpoint range first..last is empty");
    }

    if (xr_au_lit(r, "\"sm2-sm3\"", 9) == XR_OK) {
        c->sig_alg = XR_AUDIT_SM2_SM3;
    } else if (xr_au_lit(r, "\"ecdsa-p256-sha256\"", 19) == XR_OK) {
        c->sig_alg = XR_AUDIT_ECDSA_P256_SHA256;
    } else {
        return xr_au_fail(r, "signature algorithm sm2-sm3 or "
                          "ecdsa-p256-sha256 expected");
    }

    if (xr_au_key(r, ",\"key_id\":") != XR_OK
        || xr_au_hex(r, c->key_id, 1) != XR_OK)
    {
        return XR_ERROR;
    }

    c->signed_text.data = content;
    c->signed_text.len = (size_t) (r->p - content);

    if (xr_au_key(r, ",\"sig\":\"") != XR_OK) {
        return XR_ERROR;
    }

    b64 = r->p;
    while (r->p < r->end && *r->p != '"') {
        r->p++;
    }
    if (r->p == r->end || r->p == b64
        || (size_t) (r->p - b64) > 4 * ((XR_ECDSA_MAX_DER_LEN + 2) / 3))
    {
        return xr_au_fail(r, "signature expected");
    }

    /*
     * Decoded into the scratch, which is never short of room: a buffer
     * whose capacity is set and whose pool is never asked for more.
     */
    xr_buf_init(&sig, NULL, 0);
    sig.data = r->out;
    sig.cap = (size_t) (r->p - b64);

    if (xr_base64_decode(r->ctx, b64, (size_t) (r->p - b64), &sig)
        != XR_OK)
    {
        xr_ctx_clear(r->ctx);
        r->p = b64;
        return xr_au_fail(r, "signature is not Base64 as the writer "
                          "writes it");
    }

    c->sig.data = sig.data;
    c->sig.len = sig.len;
    r->out += sig.len;
    r->p++;

    return XR_OK;
}


static int
xr_au_parse_open(xr_au_rd_t *r, xr_audit_entry_t *e)
{
    xr_audit_open_t  *o;

    o = &e->u.open;

    if (xr_au_key(r, ",\"hash_alg\":") != XR_OK
        || xr_au_hash_alg(r, &o->hash_alg) != XR_OK
        || xr_au_key(r, ",\"reason\":") != XR_OK)
    {
        return XR_ERROR;
    }

    if (xr_au_lit(r, "\"start\"", 7) == XR_OK) {
        o->reason = XR_AUDIT_START;
    } else if (xr_au_lit(r, "\"restart\"", 9) == XR_OK) {
        o->reason = XR_AUDIT_RESTART;
    } else if (xr_au_lit(r, "\"rotate\"", 8) == XR_OK) {
        o->reason = XR_AUDIT_ROTATE;
    } else {
        return xr_au_fail(r, "reason start, restart or rotate expected");
    }

    if (xr_au_key(r, ",\"prev_file\":") != XR_OK
        || xr_au_str(r, &o->prev_file) != XR_OK
        || xr_au_key(r, ",\"torn\":") != XR_OK
        || xr_au_u64(r, &o->torn) != XR_OK)
    {
        return XR_ERROR;
    }

    return XR_OK;
}


int
xr_audit_parse(xr_ctx_t *ctx, const char *line, size_t len, char *scratch,
    xr_audit_entry_t *e)
{
    const char  *content, *trailer;
    xr_au_rd_t   r;

    memset(e, 0, offsetof(xr_audit_entry_t, amount_store));

    r.ctx = ctx;
    r.start = line;
    r.p = line;
    r.end = line + len;
    r.out = scratch;

    if (len >= XR_AUDIT_LINE_MAX) {
        return xr_fail(ctx, XR_E_SYNTAX, NULL,
                       "audit line: longer than %d bytes",
                       XR_AUDIT_LINE_MAX - 1);
    }

    if (xr_au_key(&r, "{\"seq\":") != XR_OK
        || xr_au_u64(&r, &e->seq) != XR_OK)
    {
        return XR_ERROR;
    }
    if (e->seq == 0) {
        return xr_au_fail(&r, "seq 0");
    }

    if (xr_au_key(&r, ",\"prev\":") != XR_OK
        || xr_au_hex(&r, e->prev, 1) != XR_OK
        || xr_au_key(&r, ",") != XR_OK)
    {
        return XR_ERROR;
    }

    content = r.p;

    if ((size_t) (r.end - r.p) < XR_AU_TRAILER_LEN) {
        return xr_au_fail(&r, "line cut short");
    }

    trailer = r.end - XR_AU_TRAILER_LEN;
    r.p = trailer;
    if (xr_au_key(&r, ",\"hash\":") != XR_OK
        || xr_au_hex(&r, e->hash, 1) != XR_OK
        || xr_au_key(&r, "}") != XR_OK)
    {
        return XR_ERROR;
    }

    /* the content alone: nothing in it may reach into the trailer */
    r.p = content;
    r.end = trailer;

    if (xr_au_key(&r, "\"type\":") != XR_OK) {
        return XR_ERROR;
    }
    if (xr_au_lit(&r, "\"rec\"", 5) == XR_OK) {
        e->type = XR_AUDIT_REC;
    } else if (xr_au_lit(&r, "\"ckpt\"", 6) == XR_OK) {
        e->type = XR_AUDIT_CKPT;
    } else if (xr_au_lit(&r, "\"open\"", 6) == XR_OK) {
        e->type = XR_AUDIT_OPEN;
    } else {
        return xr_au_fail(&r, "type rec, ckpt or open expected");
    }

    if (xr_au_key(&r, ",\"time\":") != XR_OK
        || xr_au_time(&r, &e->time_ms, &e->tz_min) != XR_OK
        || xr_au_key(&r, ",\"inst\":") != XR_OK
        || xr_au_str(&r, &e->inst) != XR_OK)
    {
        return XR_ERROR;
    }

    switch (e->type) {
    case XR_AUDIT_REC:
        if (xr_au_parse_rec(&r, e) != XR_OK) {
            return XR_ERROR;
        }
        break;
    case XR_AUDIT_CKPT:
        if (xr_au_parse_ckpt(&r, e, content) != XR_OK) {
            return XR_ERROR;
        }
        break;
    case XR_AUDIT_OPEN:
        if (xr_au_parse_open(&r, e) != XR_OK) {
            return XR_ERROR;
        }
        break;
    }

    if (r.p != trailer) {
        return xr_au_fail(&r, "\"hash\" expected");
    }

    e->content.data = content;
    e->content.len = (size_t) (trailer - content);
    return XR_OK;
}


int
xr_audit_line_seq(const char *line, size_t len, uint64_t *seq)
{
    size_t    i;
    uint64_t  v;

    if (len < 8 || memcmp(line, "{\"seq\":", 7) != 0
        || line[7] < '1' || line[7] > '9')
    {
        return XR_DECLINED;
    }

    v = 0;
    for (i = 7; i < len && line[i] >= '0' && line[i] <= '9'; i++) {
        if (v > (UINT64_MAX - (uint64_t) (line[i] - '0')) / 10) {
            return XR_DECLINED;
        }
        v = v * 10 + (uint64_t) (line[i] - '0');
    }

    if (i == len || line[i] != ',') {
        return XR_DECLINED;
    }

    *seq = v;
    return XR_OK;
}


int
xr_audit_chain_hash(xr_digest_e alg, const xr_audit_entry_t *e,
    unsigned char out[XR_AUDIT_HASH_LEN])
{
    size_t         n;
    unsigned char  d[XR_DIGEST_MAX_LEN];

    n = 0;
    if (xr_digest(alg, e->content.data, e->content.len, d, &n) != XR_OK
        || n != XR_AUDIT_HASH_LEN)
    {
        return XR_ERROR;
    }

    return xr_au_link(alg, e->prev, e->seq, d, out);
}


int
xr_audit_entry_check(const xr_audit_entry_t *e, int known, xr_digest_e *alg)
{
    int            i;
    xr_digest_e    a;
    unsigned char  h[XR_AUDIT_HASH_LEN];

    if (e->type == XR_AUDIT_CKPT || e->type == XR_AUDIT_OPEN) {
        a = e->type == XR_AUDIT_CKPT ? e->u.ckpt.hash_alg
                                     : e->u.open.hash_alg;
        if (xr_audit_chain_hash(a, e, h) == XR_OK
            && memcmp(h, e->hash, XR_AUDIT_HASH_LEN) == 0)
        {
            *alg = a;
            return XR_OK;
        }
        return XR_DECLINED;
    }

    for (i = 0; i < 2; i++) {
        if (known) {
            a = *alg;
        } else {
            a = i == 0 ? XR_DIGEST_SM3 : XR_DIGEST_SHA256;
        }

        if (xr_audit_chain_hash(a, e, h) == XR_OK
            && memcmp(h, e->hash, XR_AUDIT_HASH_LEN) == 0)
        {
            *alg = a;
            return XR_OK;
        }

        if (known) {
            break;
        }
    }

    return XR_DECLINED;
}


/* Restart */

int
xr_audit_recover(xr_ctx_t *ctx, const char *buf, size_t len, int whole,
    xr_audit_tail_t *t)
{
    int                rc;
    char              *scratch;
    size_t             end, s, ls, le;
    xr_digest_e        alg;
    xr_audit_entry_t  *e;

    memset(t, 0, sizeof(xr_audit_tail_t));

    end = len;
    while (end > 0 && buf[end - 1] != '\n') {
        end--;
    }

    t->keep = end;
    t->torn = len - end;

    if (t->torn >= XR_AUDIT_LINE_MAX) {
        snprintf(ctx->errstr, sizeof(ctx->errstr),
                 "no line end in the last %zu bytes", t->torn);
        return XR_DECLINED;
    }

    if (end == 0) {
        if (whole) {
            return XR_OK;           /* an empty file, or half a first line */
        }
        snprintf(ctx->errstr, sizeof(ctx->errstr),
                 "no whole line in the last %zu bytes", len);
        return XR_DECLINED;
    }

    e = xr_palloc(ctx->pool, sizeof(xr_audit_entry_t));
    scratch = xr_palloc(ctx->pool, XR_AUDIT_LINE_MAX);
    if (e == NULL || scratch == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    s = end - 1;
    while (s > 0 && buf[s - 1] != '\n') {
        s--;
    }

    if (xr_audit_parse(ctx, buf + s, end - 1 - s, scratch, e) != XR_OK) {
        xr_ctx_clear(ctx);
        snprintf(ctx->errstr, sizeof(ctx->errstr),
                 "the last line does not parse%s",
                 s == 0 && !whole ? " (or does not fit in the bytes read)"
                                  : "");
        return XR_DECLINED;
    }

    if (xr_audit_entry_check(e, 0, &alg) != XR_OK) {
        snprintf(ctx->errstr, sizeof(ctx->errstr),
                 "the last line (seq %llu) does not carry its own hash",
                 (unsigned long long) e->seq);
        return XR_DECLINED;
    }

    t->head.seq = e->seq;
    memcpy(t->head.hash, e->hash, XR_AUDIT_HASH_LEN);
    t->alg = alg;

    /* the last checkpoint within buf, for the next one's range */
    le = end - 1;
    ls = s;
    for ( ;; ) {
        rc = xr_audit_parse(ctx, buf + ls, le - ls, scratch, e);
        xr_ctx_clear(ctx);
        if (rc == XR_OK && e->type == XR_AUDIT_CKPT) {
            t->signed_upto = e->u.ckpt.last;
            break;
        }
        if (ls == 0) {
            break;
        }
        le = ls - 1;
        ls = le;
        while (ls > 0 && buf[ls - 1] != '\n') {
            ls--;
        }
        if (ls == 0 && !whole) {
            break;                  /* may start before buf */
        }
    }

    return XR_OK;
}


/* Verification */

static const char *
xr_au_where(const xr_audit_verifier_t *v, unsigned file, uint64_t line,
    char *buf, size_t size)
{
    if (v->names && file < v->nnames && v->names[file]) {
        snprintf(buf, size, "%s:%llu", v->names[file],
                 (unsigned long long) line);
    } else {
        snprintf(buf, size, "line %llu", (unsigned long long) line);
    }
    return buf;
}


static int
xr_au_fault(xr_audit_verifier_t *v, xr_audit_fault_e fault, unsigned file,
    uint64_t line, uint64_t seq, const char *fmt, ...)
{
    va_list  ap;

    v->done = 1;
    v->report.fault = fault;
    v->report.file = file;
    v->report.line = line;
    v->report.seq = seq;

    va_start(ap, fmt);
    vsnprintf(v->report.text, sizeof(v->report.text), fmt, ap);
    va_end(ap);

    return XR_DECLINED;
}


xr_audit_verifier_t *
xr_audit_verifier_create(xr_ctx_t *ctx, const xr_audit_key_t *key,
    const char *const *names, size_t nnames)
{
    xr_audit_verifier_t  *v;

    v = xr_pcalloc(ctx->pool, sizeof(xr_audit_verifier_t));
    if (v == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }

    v->scratch = xr_palloc(ctx->pool, XR_AUDIT_LINE_MAX);
    if (v->scratch == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }

    v->ctx = ctx;
    v->key = key;
    v->names = names;
    v->nnames = nnames;
    return v;
}


int
xr_audit_verifier_expect(xr_audit_verifier_t *v,
    const xr_audit_entry_t *ckpt)
{
    size_t          cap;
    xr_au_point_t  *p;

    if (v->npoints + 2 > v->points_cap) {
        cap = v->points_cap ? 2 * v->points_cap : 16;
        p = xr_palloc(v->ctx->pool, cap * sizeof(xr_au_point_t));
        if (p == NULL) {
            return xr_fail(v->ctx, XR_E_NOMEM, NULL, NULL);
        }
        if (v->npoints) {
            memcpy(p, v->points, v->npoints * sizeof(xr_au_point_t));
        }
        v->points = p;
        v->points_cap = cap;
    }

    /* its head, and the checkpoint entry itself */
    p = &v->points[v->npoints++];
    p->seq = ckpt->u.ckpt.last;
    memcpy(p->hash, ckpt->u.ckpt.head, XR_AUDIT_HASH_LEN);

    p = &v->points[v->npoints++];
    p->seq = ckpt->seq;
    memcpy(p->hash, ckpt->hash, XR_AUDIT_HASH_LEN);

    v->sorted = 0;
    return XR_OK;
}


static int
xr_au_point_cmp(const void *a, const void *b)
{
    const xr_au_point_t  *x = a, *y = b;

    return (x->seq > y->seq) - (x->seq < y->seq);
}


static int
xr_au_window_push(xr_audit_verifier_t *v, uint64_t seq,
    const unsigned char *hash, int rec)
{
    size_t         cap, half, i;
    xr_au_slot_t  *w;

    if (v->win_len == 0) {
        v->win_base = seq;
    }

    if (v->win_len == XR_AU_WINDOW_MAX) {
        /* no checkpoint for a long time: forget the older half */
        half = v->win_len / 2;
        for (i = 0; i < half; i++) {
            if (v->win[i].rec) {
                v->win_recs--;
                v->lost_recs++;
            }
        }
        memmove(v->win, v->win + half,
                (v->win_len - half) * sizeof(xr_au_slot_t));
        v->win_len -= half;
        v->win_base += half;
    }

    if (v->win_len == v->win_cap) {
        cap = v->win_cap ? 2 * v->win_cap : 1024;
        w = xr_palloc(v->ctx->pool, cap * sizeof(xr_au_slot_t));
        if (w == NULL) {
            return xr_fail(v->ctx, XR_E_NOMEM, NULL, NULL);
        }
        if (v->win_len) {
            memcpy(w, v->win, v->win_len * sizeof(xr_au_slot_t));
        }
        v->win = w;
        v->win_cap = cap;
    }

    memcpy(v->win[v->win_len].hash, hash, XR_AUDIT_HASH_LEN);
    v->win[v->win_len].rec = (unsigned char) rec;
    v->win_len++;
    v->win_recs += rec != 0;
    return XR_OK;
}


/* Forgets the hashes of seqs up to upto: a checkpoint signed them. */

static void
xr_au_window_drop(xr_audit_verifier_t *v, uint64_t upto)
{
    size_t  n, i;

    if (upto < v->win_base) {
        return;
    }

    n = upto - v->win_base + 1 < v->win_len
        ? (size_t) (upto - v->win_base + 1) : v->win_len;

    for (i = 0; i < n; i++) {
        v->win_recs -= v->win[i].rec != 0;
    }

    memmove(v->win, v->win + n, (v->win_len - n) * sizeof(xr_au_slot_t));
    v->win_len -= n;
    v->win_base += n;
    v->lost_recs = 0;
}


static int
xr_au_check_ckpt(xr_audit_verifier_t *v, unsigned file, uint64_t line)
{
    int                     rc;
    char                    w[XR_ERRSTR_LEN / 2];
    const xr_audit_entry_t *e;
    const xr_audit_ckpt_t  *c;

    e = &v->e;
    c = &e->u.ckpt;

    if (v->key) {
        rc = xr_audit_ckpt_verify(v->ctx, v->key, e);
        if (rc == XR_ERROR) {
            return XR_ERROR;
        }
        if (rc == XR_DECLINED) {
            return xr_au_fault(v, memcmp(c->key_id, v->key->id,
                                         XR_KEY_ID_LEN) != 0
                                  ? XR_AUDIT_FOREIGN_KEY
                                  : XR_AUDIT_BAD_SIGNATURE,
                               file, line, e->seq, "checkpoint %s",
                               v->ctx->errstr);
        }
    }

    if (c->last >= e->seq) {
        return xr_au_fault(v, XR_AUDIT_REPLAYED, file, line, e->seq,
                           "checkpoint covers seq %llu..%llu, not before "
                           "its own seq",
                           (unsigned long long) c->first,
                           (unsigned long long) c->last);
    }

    if (v->have_ckpt && (c->last <= v->ckpt_last || c->first <= v->ckpt_last))
    {
        return xr_au_fault(v, XR_AUDIT_REPLAYED, file, line, e->seq,
                           "checkpoint covers seq %llu..%llu, but seq %llu "
                           "was signed already (%s): an old checkpoint "
                           "again",
                           (unsigned long long) c->first,
                           (unsigned long long) c->last,
                           (unsigned long long) v->ckpt_last,
                           xr_au_where(v, v->ckpt_file, v->ckpt_line, w,
                                       sizeof(w)));
    }

    if (c->last >= v->win_base && c->last - v->win_base < v->win_len) {
        if (memcmp(v->win[c->last - v->win_base].hash, c->head,
                   XR_AUDIT_HASH_LEN) != 0)
        {
            return xr_au_fault(v, XR_AUDIT_REWRITTEN, file, line, e->seq,
                               "checkpoint's head is not the hash of seq "
                               "%llu: lines between seq %llu and %llu were "
                               "changed after signing",
                               (unsigned long long) c->last,
                               (unsigned long long) (v->have_ckpt
                                                     ? v->ckpt_last + 1
                                                     : v->sum.first_seq),
                               (unsigned long long) c->last);
        }
    } else {
        v->sum.unchecked_heads++;
    }

    xr_au_window_drop(v, c->last);

    v->have_ckpt = 1;
    v->ckpt_last = c->last;
    v->ckpt_file = file;
    v->ckpt_line = line;
    v->sum.signed_upto = c->last;
    v->sum.last_ckpt_seq = e->seq;
    v->sum.last_ckpt_time_ms = e->time_ms;

    return XR_OK;
}


int
xr_audit_verifier_line(xr_audit_verifier_t *v, const char *line, size_t len,
    int newline, unsigned file, uint64_t lineno)
{
    int                 zero;
    char                w[XR_ERRSTR_LEN / 2];
    size_t              i;
    uint64_t            seq;
    xr_digest_e         alg;
    xr_audit_entry_t   *e;
    xr_au_point_t      *p;

    if (v->done) {
        return XR_DECLINED;
    }

    if (!v->sorted) {
        if (v->npoints > 1) {
            qsort(v->points, v->npoints, sizeof(xr_au_point_t),
                  xr_au_point_cmp);
        }
        v->sorted = 1;
        v->next_point = 0;
    }

    if (v->scanning) {
        /*
         * Only the first missing seq tells reordered from deleted, and
         * only a line that is what it says it is: a made-up line with
         * that seq is no reason to call the deletion a move.
         */
        alg = v->alg;
        if (xr_audit_line_seq(line, len, &seq) == XR_OK
            && seq == v->miss_from
            && xr_audit_parse(v->ctx, line, len, v->scratch, &v->e) == XR_OK
            && xr_audit_entry_check(&v->e, v->e.type == XR_AUDIT_REC, &alg)
               == XR_OK)
        {
            return xr_au_fault(v, XR_AUDIT_REORDERED, v->gap_file,
                               v->gap_line, v->gap_seq,
                               "this line should come after seq %llu; "
                               "seq %llu is further on, at %s",
                               (unsigned long long) seq,
                               (unsigned long long) seq,
                               xr_au_where(v, file, lineno, w, sizeof(w)));
        }
        xr_ctx_clear(v->ctx);
        return XR_OK;
    }

    if (xr_audit_line_seq(line, len, &seq) != XR_OK) {
        seq = v->started ? v->next_seq : 0;
    }

    if (!newline) {
        return xr_au_fault(v, XR_AUDIT_TORN, file, lineno, seq,
                           "the last line ends without a newline after "
                           "%zu bytes: cut short", len);
    }

    e = &v->e;

    if (xr_audit_parse(v->ctx, line, len, v->scratch, e) != XR_OK) {
        xr_au_fault(v, XR_AUDIT_MALFORMED, file, lineno, seq, "%s",
                    v->ctx->errstr);
        xr_ctx_clear(v->ctx);
        return XR_DECLINED;
    }

    alg = v->alg;
    if (xr_audit_entry_check(e, v->have_alg && e->type == XR_AUDIT_REC, &alg)
        != XR_OK)
    {
        return xr_au_fault(v, XR_AUDIT_EDITED, file, lineno, e->seq,
                           "its hash is not the hash of its content: the "
                           "line was changed");
    }

    zero = 1;
    for (i = 0; i < XR_AUDIT_HASH_LEN; i++) {
        if (e->prev[i]) {
            zero = 0;
            break;
        }
    }

    if (!v->started) {
        if (e->seq == 1 && !zero) {
            return xr_au_fault(v, XR_AUDIT_UNLINKED, file, lineno, e->seq,
                               "seq 1 must have a prev of zeros");
        }
        v->started = 1;
        v->sum.first_seq = e->seq;
        v->sum.first_prev_zero = zero;

    } else if (e->seq > v->next_seq) {
        v->scanning = 1;
        v->miss_from = v->next_seq;
        v->miss_to = e->seq - 1;
        v->gap_file = file;
        v->gap_line = lineno;
        v->gap_seq = e->seq;
        return XR_OK;

    } else if (e->seq < v->next_seq) {
        return xr_au_fault(v, XR_AUDIT_INSERTED, file, lineno, e->seq,
                           "seq %llu again, after seq %llu (%s): a line "
                           "inserted or copied",
                           (unsigned long long) e->seq,
                           (unsigned long long) (v->next_seq - 1),
                           xr_au_where(v, v->last_file, v->last_line, w,
                                       sizeof(w)));

    } else if (memcmp(e->prev, v->last_hash, XR_AUDIT_HASH_LEN) != 0) {
        return xr_au_fault(v, XR_AUDIT_UNLINKED, file, lineno, e->seq,
                           "prev is not the hash of seq %llu (%s): this "
                           "line or that one was replaced, or inserted",
                           (unsigned long long) (v->next_seq - 1),
                           xr_au_where(v, v->last_file, v->last_line, w,
                                       sizeof(w)));
    }

    if (e->type == XR_AUDIT_CKPT && v->have_alg && alg != v->alg) {
        return xr_au_fault(v, XR_AUDIT_REWRITTEN, file, lineno, e->seq,
                           "checkpoint signs a %s chain, the chain is %s",
                           xr_audit_hash_name(alg),
                           xr_audit_hash_name(v->alg));
    }

    v->have_alg = 1;
    v->alg = alg;

    if (xr_au_window_push(v, e->seq, e->hash, e->type == XR_AUDIT_REC)
        != XR_OK)
    {
        return XR_ERROR;
    }

    /* the checkpoints the caller holds */
    while (v->next_point < v->npoints
           && v->points[v->next_point].seq <= e->seq)
    {
        p = &v->points[v->next_point++];
        if (p->seq == e->seq
            && memcmp(p->hash, e->hash, XR_AUDIT_HASH_LEN) != 0)
        {
            return xr_au_fault(v, XR_AUDIT_REWRITTEN, file, lineno, e->seq,
                               "the hash of seq %llu is not the one a "
                               "checkpoint given signs: the log was "
                               "changed up to here",
                               (unsigned long long) e->seq);
        }
    }

    if (e->type == XR_AUDIT_CKPT
        && xr_au_check_ckpt(v, file, lineno) != XR_OK)
    {
        return v->done ? XR_DECLINED : XR_ERROR;
    }

    v->sum.entries++;
    v->sum.records += e->type == XR_AUDIT_REC;
    v->sum.checkpoints += e->type == XR_AUDIT_CKPT;
    v->sum.opens += e->type == XR_AUDIT_OPEN;
    v->sum.last_seq = e->seq;

    v->next_seq = e->seq + 1;
    memcpy(v->last_hash, e->hash, XR_AUDIT_HASH_LEN);
    v->last_file = file;
    v->last_line = lineno;

    return XR_OK;
}


int
xr_audit_verifier_end(xr_audit_verifier_t *v)
{
    char      w[XR_ERRSTR_LEN / 2];
    uint64_t  want;

    if (v->done) {
        return XR_DECLINED;
    }

    if (v->scanning) {
        if (v->miss_from == v->miss_to) {
            return xr_au_fault(v, XR_AUDIT_DELETED, v->gap_file, v->gap_line,
                               v->miss_from,
                               "seq %llu is missing before this line "
                               "(seq %llu) and nowhere after: deleted",
                               (unsigned long long) v->miss_from,
                               (unsigned long long) v->gap_seq);
        }
        return xr_au_fault(v, XR_AUDIT_DELETED, v->gap_file, v->gap_line,
                           v->miss_from,
                           "seq %llu is missing before this line (seq %llu "
                           "follows seq %llu) and nowhere after: deleted",
                           (unsigned long long) v->miss_from,
                           (unsigned long long) v->gap_seq,
                           (unsigned long long) (v->miss_from - 1));
    }

    if (!v->sorted && v->npoints > 1) {
        qsort(v->points, v->npoints, sizeof(xr_au_point_t), xr_au_point_cmp);
    }

    if (v->npoints && v->points[v->npoints - 1].seq > v->sum.last_seq) {
        want = v->points[v->npoints - 1].seq;
        if (!v->started) {
            return xr_au_fault(v, XR_AUDIT_TRUNCATED, 0, 0, 1,
                               "the log is empty, but a checkpoint given "
                               "reaches seq %llu", (unsigned long long) want);
        }
        return xr_au_fault(v, XR_AUDIT_TRUNCATED, v->last_file,
                           v->last_line + 1, v->sum.last_seq + 1,
                           "the log ends at seq %llu (%s), but a checkpoint "
                           "given reaches seq %llu: the lines after were "
                           "deleted",
                           (unsigned long long) v->sum.last_seq,
                           xr_au_where(v, v->last_file, v->last_line, w,
                                       sizeof(w)),
                           (unsigned long long) want);
    }

    v->sum.alg = v->alg;
    v->sum.unsigned_records = v->win_recs + v->lost_recs;
    v->done = 1;
    return XR_OK;
}


const xr_audit_report_t *
xr_audit_verifier_report(const xr_audit_verifier_t *v)
{
    return &v->report;
}


const xr_audit_summary_t *
xr_audit_verifier_summary(const xr_audit_verifier_t *v)
{
    return &v->sum;
}


/* Filter and export */

void
xr_audit_filter_init(xr_audit_filter_t *f)
{
    memset(f, 0, sizeof(xr_audit_filter_t));
    f->types = XR_AUDIT_REC;
    f->from_ms = INT64_MIN;
    f->to_ms = INT64_MAX;
    f->seq_from = 0;
    f->seq_to = UINT64_MAX;
}


static int
xr_au_prefix(xr_str_t s, xr_str_t prefix)
{
    return s.len >= prefix.len
           && (prefix.len == 0
               || memcmp(s.data, prefix.data, prefix.len) == 0);
}


int
xr_audit_filter_match(const xr_audit_filter_t *f, const xr_audit_entry_t *e)
{
    size_t                 i;
    unsigned               types;
    const xr_audit_rec_t  *r;

    types = f->types ? f->types : XR_AUDIT_REC;

    if (!(types & e->type) || e->seq < f->seq_from || e->seq > f->seq_to
        || e->time_ms < f->from_ms || e->time_ms >= f->to_ms)
    {
        return 0;
    }

    if (e->type != XR_AUDIT_REC) {
        return 1;
    }

    r = &e->u.rec;

    if ((f->domain.len && !xr_au_same_str(r->domain, f->domain))
        || (f->txn.len && !xr_au_same_str(r->txn, f->txn))
        || (f->caller.len && !xr_au_same_str(r->caller, f->caller))
        || (f->outcome.len && !xr_au_same_str(r->outcome, f->outcome))
        || (f->origin.len && !xr_au_prefix(r->origin, f->origin))
        || (f->dest.len && !xr_au_prefix(r->dest, f->dest)))
    {
        return 0;
    }

    if (f->nscope == 0) {
        return 1;
    }

    for (i = 0; i < f->nscope; i++) {
        if (f->scope[i].len
            && (xr_au_prefix(r->origin, f->scope[i])
                || xr_au_prefix(r->dest, f->scope[i])))
        {
            return 1;
        }
    }

    return 0;
}


int
xr_audit_csv_header(xr_buf_t *out)
{
    xr_buf_adds(out, "seq,time,inst,caller,domain,txn,msg_id,origin,dest,"
                "upstream,peer,outcome,error,latency_ms,upstream_ms,amounts,"
                "ids,hash\r\n");
    return out->failed ? XR_ERROR : XR_OK;
}


static int
xr_au_csv_field(xr_buf_t *b, xr_str_t v, int last)
{
    size_t  i;

    if (v.len && (memchr(v.data, ',', v.len) || memchr(v.data, '"', v.len)
                  || memchr(v.data, '\r', v.len)
                  || memchr(v.data, '\n', v.len)))
    {
        xr_buf_addc(b, '"');
        for (i = 0; i < v.len; i++) {
            if (v.data[i] == '"') {
                xr_buf_addc(b, '"');
            }
            xr_buf_addc(b, v.data[i]);
        }
        xr_buf_addc(b, '"');

    } else if (v.len) {
        xr_buf_add(b, v.data, v.len);
    }

    if (last) {
        xr_buf_add(b, "\r\n", 2);
    } else {
        xr_buf_addc(b, ',');
    }

    return b->failed ? XR_ERROR : XR_OK;
}


static void
xr_au_csv_u64(xr_buf_t *b, uint64_t v)
{
    xr_au_put_u64(b, v);
    xr_buf_addc(b, ',');
}


int
xr_audit_export_line(xr_ctx_t *ctx, const xr_audit_filter_t *f,
    xr_audit_format_e fmt, const char *line, size_t len, char *scratch,
    xr_audit_entry_t *e, xr_buf_t *out)
{
    char                   hex[XR_AUDIT_HEX_LEN], t[40];
    size_t                 n;
    xr_str_t               time, hash;
    const xr_audit_rec_t  *r;

    if (xr_audit_parse(ctx, line, len, scratch, e) != XR_OK) {
        return XR_ERROR;
    }

    if (!xr_audit_filter_match(f, e)) {
        return XR_DECLINED;
    }

    if (fmt == XR_AUDIT_JSONL) {
        xr_buf_add(out, line, len);
        xr_buf_addc(out, '\n');
        return out->failed ? xr_fail(ctx, XR_E_NOMEM, NULL, NULL) : XR_OK;
    }

    if (e->type != XR_AUDIT_REC) {
        return XR_DECLINED;
    }

    r = &e->u.rec;

    /* the time as the line has it, without its quotes */
    n = xr_au_time_text(e->time_ms, e->tz_min, t);
    if (n < 2) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "time does not format");
    }
    time.data = t + 1;
    time.len = n - 2;

    xr_hex(e->hash, XR_AUDIT_HASH_LEN, hex);
    hash.data = hex;
    hash.len = sizeof(hex);

    xr_au_csv_u64(out, e->seq);
    xr_au_csv_field(out, time, 0);
    xr_au_csv_field(out, e->inst, 0);
    xr_au_csv_field(out, r->caller, 0);
    xr_au_csv_field(out, r->domain, 0);
    xr_au_csv_field(out, r->txn, 0);
    xr_au_csv_field(out, r->msg_id, 0);
    xr_au_csv_field(out, r->origin, 0);
    xr_au_csv_field(out, r->dest, 0);
    xr_au_csv_field(out, r->upstream, 0);
    xr_au_csv_field(out, r->peer, 0);
    xr_au_csv_field(out, r->outcome, 0);
    xr_au_csv_field(out, r->error, 0);
    xr_au_csv_u64(out, (uint64_t) r->latency_ms);
    if (r->upstream_ms >= 0) {
        xr_au_put_u64(out, (uint64_t) r->upstream_ms);
    }
    xr_buf_addc(out, ',');
    xr_au_csv_field(out, e->amounts_json, 0);
    xr_au_csv_field(out, e->ids_json, 0);
    xr_au_csv_field(out, hash, 1);

    return out->failed ? xr_fail(ctx, XR_E_NOMEM, NULL, NULL) : XR_OK;
}


/* Times for filters */

int
xr_audit_time_parse(xr_ctx_t *ctx, const char *text, size_t len,
    int64_t *ms, int *tz_min)
{
    int         oh, om, tz;
    size_t      i;
    xr_time_t   t;
    const char *s;

    s = text;
    memset(&t, 0, sizeof(t));
    tz = 480;

    if (len < 10 || s[4] != '-' || s[7] != '-'
        || xr_au_digits(s, 4, &t.year) != XR_OK
        || xr_au_digits(s + 5, 2, &t.month) != XR_OK
        || xr_au_digits(s + 8, 2, &t.day) != XR_OK)
    {
        goto bad;
    }

    i = 10;

    if (len > 10) {
        if (len < 19 || (s[10] != 'T' && s[10] != ' ') || s[13] != ':'
            || s[16] != ':'
            || xr_au_digits(s + 11, 2, &t.hour) != XR_OK
            || xr_au_digits(s + 14, 2, &t.min) != XR_OK
            || xr_au_digits(s + 17, 2, &t.sec) != XR_OK)
        {
            goto bad;
        }
        t.has_time = 1;
        i = 19;

        if (i < len && s[i] == '.') {
            if (len < i + 4 || xr_au_digits(s + i + 1, 3, &t.msec) != XR_OK)
            {
                goto bad;
            }
            t.has_msec = 1;
            i += 4;
        }

        if (i + 1 == len && s[i] == 'Z') {
            tz = 0;
            i++;

        } else if (i + 6 == len && (s[i] == '+' || s[i] == '-')
                   && s[i + 3] == ':'
                   && xr_au_digits(s + i + 1, 2, &oh) == XR_OK
                   && xr_au_digits(s + i + 4, 2, &om) == XR_OK && om < 60)
        {
            tz = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
            i += 6;
        }
    }

    if (i != len || xr_time_to_unix_ms(&t, tz, ms) != XR_OK) {
        goto bad;
    }

    if (tz_min) {
        *tz_min = tz;
    }
    return XR_OK;

bad:

    {
        char  q[XR_QUOTE_MAX + 8];
        xr_str_t  v;

        v.data = text;
        v.len = len;
        xr_quote(v, q, sizeof(q));
        return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                       "time \"%s\" is not YYYY-MM-DD[THH:MM:SS[.mmm]]"
                       "[Z|+HH:MM]", q);
    }
}
