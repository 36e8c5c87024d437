/*
 * The audit trail: one JSON line per entry, hash-chained across every
 * entry of a gateway instance, with signed checkpoints in the same stream.
 * This file is the format (write and parse), the chain, checkpoints,
 * verification, the recovery of a file's tail and the filter that export
 * and the regulators' pull API share.  It does no I/O and takes no lock:
 * files, shared memory and locks belong to its callers (the nginx module's
 * writer, `xregion audit`).  docs/regulators.md describes the format for
 * readers outside the project.
 *
 * Line (one per entry, '\n' at the end, at most XR_AUDIT_LINE_MAX bytes):
 *
 *   {"seq":N,"prev":"<64 hex>",<content>,"hash":"<64 hex>"}
 *
 * content is "type":"rec" | "ckpt" | "open" followed by that type's
 * members, always all of them, in the order of xr_audit_prepare() below.
 * There is exactly one accepted text per entry: no whitespace, integers in
 * their shortest form, strings as valid UTF-8 with only these escapes:
 * \" \\ \b \f \n \r \t, and \u00xx (lowercase hex) for the other bytes
 * below 0x20 and for 0x7f.  The writer replaces every byte that does not
 * start a valid UTF-8 sequence with U+FFFD, and cuts a value whose text
 * between its quotes (escapes included) would be longer than
 * XR_AUDIT_VALUE_MAX bytes after whole characters, to at most
 * XR_AUDIT_VALUE_MAX - 3 bytes followed by "...", so that no line can
 * outgrow XR_AUDIT_LINE_MAX.  xr_audit_parse() accepts nothing else, so
 * parsing and writing again gives the same bytes.
 *
 * Chain.  H is the chain's digest, SM3 or SHA-256 (32 bytes); open and
 * checkpoint entries name it ("hash_alg"), records use their chain's:
 *
 *   hash(N) = H( prev(N) || be64(N) || H(content(N)) )
 *   prev(N) = hash(N - 1),  prev(1) = 32 zero bytes
 *
 * with prev and hash raw (the line has them in hex), be64 the 8-byte
 * big-endian seq, and content(N) the bytes of line N between the comma
 * after "prev" and the comma before "hash".  So every byte of a line is
 * under its hash, and each hash under the next line's: editing, deleting,
 * inserting or reordering lines breaks the chain where it happened.  The
 * inner H(content) is what lets the writer hash the content outside its
 * lock: see "Writer" below.
 *
 * Checkpoints sign the chain: a "ckpt" entry carries the seq range
 * first..last it covers, head = hash(last), and a signature over its own
 * content up to (not including) `,"sig":"`, made with the gateway's key:
 * SM3withSM2 with the default ID "1234567812345678" (GB/T 35276), or
 * ECDSA P-256 with SHA-256; key_id is SHA-256 of the key's DER
 * SubjectPublicKeyInfo (xr_key_id()).  Rewriting the chain from some line
 * on (all hashes recomputed) leaves head different from the chain at
 * `last`: no signature covers the rewritten chain.
 *
 * Files.  Every file starts with an "open" entry (reason "start" for a new
 * log, "rotate" after the previous file, "restart" when a restart
 * continues a file, which then has it in the middle).  Its seq and prev
 * continue the chain of the previous file: seq - 1 and prev name that
 * file's last entry, so the chain runs unbroken across files.
 *
 * Writer (the nginx module, one chain per instance shared by its workers).
 * The chain head (xr_audit_head_t) lives in shared memory under a lock;
 * the lock is held only for what orders entries:
 *
 *   outside:  xr_audit_prepare()      content, its escaping and H(content)
 *   lock:     xr_audit_seal()         seq = head.seq + 1, prev = head.hash,
 *                                     one H over 72 bytes, the line written
 *                                     into a buffer the caller gives,
 *                                     head updated; no allocation
 *             append the line         where lines keep seq order (a shared
 *                                     buffer or the file itself)
 *   unlock
 *
 * A checkpoint takes the lock twice: once to copy the head and mark the
 * range taken (first = the last checkpoint's last + 1, last = head.seq),
 * so that no other worker signs it too; then signs outside it
 * (xr_audit_ckpt_sign(): SM2 takes 0.4 ms, ECDSA 30 us, bench_audit);
 * then seals its entry like any other.  Entries sealed in between are
 * covered by the next checkpoint.  Make one only when its range holds an
 * entry other than a checkpoint, or checkpoints would sign each other
 * forever.  Rotation seals the new file's "open" entry under the
 * lock that switches files, so that it is the file's first line.
 *
 * Restart: read the last XR_AUDIT_TAIL_READ bytes of the last file (or
 * all of it when it is shorter) and call xr_audit_recover(); when `torn`
 * is not 0 (a crash left half a line) cut that many bytes off the file;
 * seal an "open" entry with reason "restart" and the torn byte count,
 * continuing from the recovered head.  The next checkpoint's first is
 * signed_upto + 1, or the restart entry's seq when the tail held no
 * checkpoint (the verifier asks only that ranges move forward).
 *
 * Conventions: functions return XR_OK, XR_ERROR with ctx->err and errstr
 * set (XR_E_SYNTAX "audit line: ..." for text that does not parse,
 * XR_E_NOMEM, XR_E_INTERNAL for arguments the format cannot carry), and
 * XR_DECLINED where said.  Strings given are borrowed for the call.
 */

#ifndef XR_AUDIT_H
#define XR_AUDIT_H

#include "xr_core.h"
#include "xr_crypto.h"

#define XR_AUDIT_HASH_LEN    32
#define XR_AUDIT_HEX_LEN     (2 * XR_AUDIT_HASH_LEN)
/* the longest line, its '\n' included; the parser refuses longer ones */
#define XR_AUDIT_LINE_MAX    65536
/* what a restart reads from the end of the last file */
#define XR_AUDIT_TAIL_READ   (2 * XR_AUDIT_LINE_MAX)
/* the longest string value as written between its quotes, escapes in */
#define XR_AUDIT_VALUE_MAX   256
/* amounts and identifiers per record */
#define XR_AUDIT_PAIRS_MAX   32
/* the bytes a line has on top of its content (xr_audit_line_size()) */
#define XR_AUDIT_FRAME_MAX   178


typedef enum {
    XR_AUDIT_REC = 1,           /* a transaction */
    XR_AUDIT_CKPT = 2,          /* a signed checkpoint */
    XR_AUDIT_OPEN = 4           /* a file starts, or the writer restarts */
} xr_audit_type_e;

typedef enum {
    XR_AUDIT_START = 0,
    XR_AUDIT_RESTART,
    XR_AUDIT_ROTATE
} xr_audit_reason_e;

typedef enum {
    XR_AUDIT_SM2_SM3 = 0,       /* "sm2-sm3" */
    XR_AUDIT_ECDSA_P256_SHA256  /* "ecdsa-p256-sha256" */
} xr_audit_sig_e;


/*
 * The chain head: the last entry's seq (0 before the first) and hash
 * (zeros before the first).  Plain bytes, for shared memory.
 */
typedef struct {
    uint64_t        seq;
    unsigned char   hash[XR_AUDIT_HASH_LEN];
} xr_audit_head_t;


typedef struct {
    xr_str_t        name;           /* "total", "fund_pay" */
    int64_t         fen;
} xr_audit_amount_t;

typedef struct {
    xr_str_t        name;           /* "psn_no", "name" */
    xr_str_t        value;          /* already masked by the caller */
} xr_audit_ident_t;

/* A transaction.  Unknown strings are empty ({0, NULL} or ""). */
typedef struct {
    xr_str_t        caller;         /* the caller's profile */
    xr_str_t        domain;         /* medical, transit, gov */
    xr_str_t        txn;            /* canonical transaction */
    xr_str_t        msg_id;
    xr_str_t        origin;         /* 6-digit region codes */
    xr_str_t        dest;
    xr_str_t        upstream;       /* the upstream{} the route chose */
    xr_str_t        peer;           /* the address it tried last */
    /* ok cached replayed biz_error rejected failed (docs/regulators.md) */
    xr_str_t        outcome;
    xr_str_t        error;          /* "XR-FORBIDDEN", "BIZ-1001", "" */
    int64_t         latency_ms;     /* negative is written as 0 */
    int64_t         upstream_ms;    /* negative: no upstream call (null) */
    const xr_audit_amount_t  *amounts;
    size_t          namounts;
    const xr_audit_ident_t   *ids;
    size_t          nids;
} xr_audit_rec_t;

typedef struct {
    xr_digest_e     hash_alg;       /* the chain's digest */
    uint64_t        first;          /* seqs this checkpoint newly covers */
    uint64_t        last;
    unsigned char   head[XR_AUDIT_HASH_LEN];    /* hash(last) */
    xr_audit_sig_e  sig_alg;        /* set by xr_audit_ckpt_sign() */
    unsigned char   key_id[XR_KEY_ID_LEN];
    xr_str_t        sig;            /* DER */
    xr_str_t        signed_text;    /* parser: the bytes sig covers */
} xr_audit_ckpt_t;

typedef struct {
    xr_digest_e     hash_alg;       /* from this entry on */
    xr_audit_reason_e  reason;
    xr_str_t        prev_file;      /* the previous file's name, or "" */
    uint64_t        torn;           /* bytes of a torn line cut at restart */
} xr_audit_open_t;


/*
 * One entry.  To write: set type, time_ms, tz_min, inst and the member of
 * u; the chain fields are ignored.  From xr_audit_parse(): everything is
 * set, strings point into the line or into the parser's scratch, and
 * u.rec.amounts / u.rec.ids into this struct's own arrays: do not copy a
 * parsed entry by value.
 */
typedef struct {
    /* chain fields, set by the parser */
    uint64_t        seq;
    unsigned char   prev[XR_AUDIT_HASH_LEN];
    unsigned char   hash[XR_AUDIT_HASH_LEN];    /* as the line has it */
    xr_str_t        content;        /* the span the chain hashes */

    xr_audit_type_e type;
    int64_t         time_ms;        /* Unix milliseconds */
    int             tz_min;         /* offset written, minutes east: 480 */
    xr_str_t        inst;           /* the gateway instance */

    union {
        xr_audit_rec_t    rec;
        xr_audit_ckpt_t   ckpt;
        xr_audit_open_t   open;
    } u;

    /* parser's storage */
    xr_str_t        amounts_json;   /* raw text of "amounts" and "ids" */
    xr_str_t        ids_json;
    xr_audit_amount_t  amount_store[XR_AUDIT_PAIRS_MAX];
    xr_audit_ident_t   ident_store[XR_AUDIT_PAIRS_MAX];
} xr_audit_entry_t;


/* Names as the lines write them: "sm3", "sm2-sm3", "rec", "restart". */
const char *xr_audit_hash_name(xr_digest_e alg);
const char *xr_audit_sig_name(xr_audit_sig_e alg);
const char *xr_audit_type_name(xr_audit_type_e type);
const char *xr_audit_reason_name(xr_audit_reason_e reason);
/* "sm3" / "sha256" to the digest: XR_OK or XR_DECLINED. */
int xr_audit_hash_by_name(xr_str_t name, xr_digest_e *alg);


/* Writing */

/* A prepared entry: its content and H(content), ready to seal. */
typedef struct {
    xr_digest_e     alg;
    xr_str_t        content;        /* in the ctx->pool given to prepare */
    unsigned char   digest[XR_AUDIT_HASH_LEN];
} xr_audit_prep_t;

/*
 * Writes e's content (escaping, U+FFFD for bad UTF-8, cutting long values)
 * into ctx->pool and hashes it with alg: everything of an entry that does
 * not depend on its place in the chain.  Refuses (XR_E_INTERNAL) what the
 * format cannot carry: a time outside the years 0001-9999 or an offset
 * outside +-18 h, more than XR_AUDIT_PAIRS_MAX amounts or identifiers or
 * two with the same name, an open or checkpoint entry whose hash_alg is
 * not alg, an unsigned checkpoint, first > last or a seq 0, a line that
 * would be longer than XR_AUDIT_LINE_MAX.
 */
int xr_audit_prepare(xr_ctx_t *ctx, xr_digest_e alg,
    const xr_audit_entry_t *e, xr_audit_prep_t *p);

/* The most bytes xr_audit_seal() writes for p, its '\n' included. */
size_t xr_audit_line_size(const xr_audit_prep_t *p);

/*
 * THE PART UNDER THE WRITER'S LOCK.  Links p to the chain: seq =
 * head->seq + 1, prev = head->hash; writes the whole line, '\n' included,
 * at out (size bytes, at least xr_audit_line_size(p); shared memory is
 * fine), sets *len, and advances *head to the new entry.  No allocation
 * and no ctx: one digest of 72 bytes, hex of two hashes, a copy of the
 * content.  XR_ERROR, head untouched, only when size is too small, seq
 * would overflow, or the digest fails.
 */
int xr_audit_seal(const xr_audit_prep_t *p, xr_audit_head_t *head,
    char *out, size_t size, size_t *len);


/* Keys and checkpoints */

typedef struct {
    const xr_key_t *key;            /* borrowed; private to sign */
    xr_audit_sig_e  alg;            /* from the key's type */
    unsigned char   id[XR_KEY_ID_LEN];
} xr_audit_key_t;

/* An SM2 or P-256 key (xr_key_load()), public or private. */
int xr_audit_key_init(xr_ctx_t *ctx, xr_audit_key_t *k, const xr_key_t *key);

/*
 * Signs the checkpoint e (type XR_AUDIT_CKPT with time, inst and u.ckpt's
 * hash_alg, first, last and head set): sets sig_alg, key_id and sig (DER,
 * from ctx->pool).  The slow step: never under the lock.
 */
int xr_audit_ckpt_sign(xr_ctx_t *ctx, const xr_audit_key_t *k,
    xr_audit_entry_t *e);

/*
 * Checks a parsed checkpoint's signature with k (the public key): XR_OK;
 * XR_DECLINED with ctx->errstr saying why when its key_id is not k's, its
 * sig_alg not k's type, or the signature does not verify; XR_ERROR when
 * the library fails.  The chain is not looked at.
 */
int xr_audit_ckpt_verify(xr_ctx_t *ctx, const xr_audit_key_t *k,
    const xr_audit_entry_t *e);


/* Reading */

/*
 * Parses one line, without its '\n' (untrusted: any bytes).  scratch holds
 * at least len bytes: unescaped strings and the signature land there and
 * live as long as it does.  Allocates nothing.  XR_E_SYNTAX with the byte
 * offset for anything but the one text the writer gives (see above), or a
 * line of XR_AUDIT_LINE_MAX bytes or more.  The hash is not checked.
 */
int xr_audit_parse(xr_ctx_t *ctx, const char *line, size_t len,
    char *scratch, xr_audit_entry_t *e);

/*
 * The seq of a line from its first bytes only, without parsing the rest:
 * XR_OK, or XR_DECLINED when the line does not start like one.
 */
int xr_audit_line_seq(const char *line, size_t len, uint64_t *seq);

/*
 * hash(seq) of the chain formula, with alg, from a parsed entry's prev,
 * seq and content.
 */
int xr_audit_chain_hash(xr_digest_e alg, const xr_audit_entry_t *e,
    unsigned char out[XR_AUDIT_HASH_LEN]);

/*
 * Whether the hash a parsed entry carries is its own: XR_OK with *alg set
 * to the digest that gives it, else XR_DECLINED.  Open and checkpoint
 * entries name their digest.  A record does not: with known 1 it is
 * checked with *alg (the chain's, as the caller knows it), with known 0
 * with SM3, then SHA-256.
 */
int xr_audit_entry_check(const xr_audit_entry_t *e, int known,
    xr_digest_e *alg);


/* Restart: the tail of the last file */

typedef struct {
    size_t          keep;           /* bytes of buf up to its last '\n' */
    size_t          torn;           /* bytes after it: a torn last line */
    xr_audit_head_t head;           /* the last whole line's seq and hash */
    xr_digest_e     alg;            /* its chain's digest */
    uint64_t        signed_upto;    /* the last checkpoint's `last` in buf;
                                       0 when buf has none */
} xr_audit_tail_t;

/*
 * Reads the end of a log file: buf holds its last len bytes (the whole
 * file when whole is 1).  XR_OK: *t says where to cut (keep) and how the
 * chain continues (head.seq 0 and zeros for a file without a whole line).
 * XR_DECLINED, with ctx->errstr saying why: the last whole line does not
 * parse, or its hash is not its own, or (not whole) no whole line fits in
 * buf; the file was not left so by the gateway and should not be chained
 * on.  A torn last line is normal after a crash (XR_OK, torn > 0): the
 * writer cuts it and says so in its "restart" entry.
 */
int xr_audit_recover(xr_ctx_t *ctx, const char *buf, size_t len, int whole,
    xr_audit_tail_t *t);


/* Verification */

typedef enum {
    XR_AUDIT_FAULT_NONE = 0,
    XR_AUDIT_MALFORMED,         /* the line does not parse */
    XR_AUDIT_EDITED,            /* its hash is not its own */
    XR_AUDIT_DELETED,           /* seqs missing, not found later */
    XR_AUDIT_REORDERED,         /* a missing seq comes later */
    XR_AUDIT_INSERTED,          /* a seq again */
    XR_AUDIT_UNLINKED,          /* right seq, prev not the hash before it */
    XR_AUDIT_TORN,              /* the last line has no '\n' */
    XR_AUDIT_FOREIGN_KEY,       /* a checkpoint signed by another key */
    XR_AUDIT_BAD_SIGNATURE,     /* a checkpoint whose signature fails */
    XR_AUDIT_REWRITTEN,         /* a checkpoint's head is not the chain's */
    XR_AUDIT_REPLAYED,          /* a checkpoint not after the one before */
    XR_AUDIT_TRUNCATED,         /* the log ends before a seq it must have */
    XR_AUDIT_FAULT_LAST
} xr_audit_fault_e;

/* "edited", "deleted", "forged checkpoint" ... */
const char *xr_audit_fault_name(xr_audit_fault_e fault);

/*
 * The first fault.  Locations are the caller's (file index, 1-based line)
 * of the line named; seq is the seq that line has or should have had.
 */
typedef struct {
    xr_audit_fault_e  fault;
    unsigned        file;
    uint64_t        line;
    uint64_t        seq;
    char            text[XR_ERRSTR_LEN];    /* why, one line */
} xr_audit_report_t;

typedef struct {
    uint64_t        entries, records, checkpoints, opens;
    uint64_t        first_seq, last_seq;        /* 0 when no entry */
    int             first_prev_zero;    /* the chain starts at its start */
    uint64_t        signed_upto;        /* last checkpoint's `last`, or 0 */
    uint64_t        last_ckpt_seq;
    int64_t         last_ckpt_time_ms;
    uint64_t        unsigned_records;   /* records after signed_upto */
    uint64_t        unchecked_heads;    /* checkpoints whose `last` came
                                           before the lines given */
    xr_digest_e     alg;                /* the chain's, at the end */
} xr_audit_summary_t;

typedef struct xr_audit_verifier_s  xr_audit_verifier_t;

/*
 * A verifier of lines fed in chain order, from ctx->pool.  key: the
 * gateway's public key (NULL: checkpoints are counted, not verified: for
 * tests of the chain alone).  names: the files' names for the report
 * texts (may be NULL).
 */
xr_audit_verifier_t *xr_audit_verifier_create(xr_ctx_t *ctx,
    const xr_audit_key_t *key, const char *const *names, size_t nnames);

/*
 * A checkpoint the verifier must find the log agree with, e.g. one the
 * regulator pulled earlier: the log must reach seq `ckpt.last` with hash
 * `ckpt.head` and contain the checkpoint entry itself (same seq, same
 * hash); a log that ends before is XR_AUDIT_TRUNCATED, one that differs
 * XR_AUDIT_REWRITTEN.  The entry must be parsed and its signature checked
 * by the caller.  XR_E_NOMEM only.
 */
int xr_audit_verifier_expect(xr_audit_verifier_t *v,
    const xr_audit_entry_t *ckpt);

/*
 * Feeds the next line (without its '\n'; newline 0 when the data ended
 * without one), from line `lineno` of file `file`.  XR_OK: go on;
 * XR_DECLINED: the log does not verify, the report says where and why,
 * stop feeding; XR_ERROR: out of memory or the library failed (ctx).
 * The verifier copies what it keeps: line may be reused.
 */
int xr_audit_verifier_line(xr_audit_verifier_t *v, const char *line,
    size_t len, int newline, unsigned file, uint64_t lineno);

/*
 * After the last line: XR_OK, or XR_DECLINED for faults only the end
 * shows (missing seqs that never came, checkpoints the log stops before).
 */
int xr_audit_verifier_end(xr_audit_verifier_t *v);

const xr_audit_report_t *xr_audit_verifier_report(
    const xr_audit_verifier_t *v);
const xr_audit_summary_t *xr_audit_verifier_summary(
    const xr_audit_verifier_t *v);


/* Filter and export (xregion audit export, the pull API) */

typedef struct {
    unsigned        types;          /* xr_audit_type_e bits; 0: records */
    int64_t         from_ms;        /* time >= from_ms */
    int64_t         to_ms;          /* time < to_ms */
    uint64_t        seq_from;       /* inclusive */
    uint64_t        seq_to;
    xr_str_t        domain;         /* exact; len 0: any */
    xr_str_t        txn;
    xr_str_t        caller;
    xr_str_t        outcome;
    xr_str_t        origin;         /* region prefix: "31", "310000" */
    xr_str_t        dest;
    /*
     * A regulator's provinces: a record passes when its origin or its
     * dest starts with one of them.  nscope 0: no scope.  Checkpoints and
     * open entries carry no region and pass.
     */
    const xr_str_t *scope;
    size_t          nscope;
} xr_audit_filter_t;

/* Everything passes: all times and seqs, records only. */
void xr_audit_filter_init(xr_audit_filter_t *f);
/* 1 when the parsed entry passes. */
int xr_audit_filter_match(const xr_audit_filter_t *f,
    const xr_audit_entry_t *e);

typedef enum {
    XR_AUDIT_JSONL = 0,             /* the line as it is */
    XR_AUDIT_CSV                    /* records only (see the header row) */
} xr_audit_format_e;

/*
 * The CSV header row (RFC 4180, CRLF line ends):
 * seq,time,inst,caller,domain,txn,msg_id,origin,dest,upstream,peer,
 * outcome,error,latency_ms,upstream_ms,amounts,ids,hash
 * amounts and ids hold their JSON object text from the line; a field with
 * a comma, quote, CR or LF is quoted, its quotes doubled.
 */
int xr_audit_csv_header(xr_buf_t *out);

/*
 * One line (without '\n') through the filter into out: the line and '\n'
 * (JSONL) or its CSV row.  XR_OK written; XR_DECLINED filtered out (CSV:
 * also every entry but records); XR_ERROR: the line does not parse (ctx,
 * XR_E_SYNTAX), or out failed (XR_E_NOMEM).  scratch and e as for
 * xr_audit_parse(); e holds the entry afterwards.
 */
int xr_audit_export_line(xr_ctx_t *ctx, const xr_audit_filter_t *f,
    xr_audit_format_e fmt, const char *line, size_t len, char *scratch,
    xr_audit_entry_t *e, xr_buf_t *out);

/*
 * Time text of the format (RFC 3339 with milliseconds and offset,
 * "2024-12-29T14:00:00.123+08:00"), and for filters also without
 * milliseconds, without offset (China time, +08:00 assumed) or as a date
 * alone (its start).  XR_E_FIELD_FORMAT otherwise.
 */
int xr_audit_time_parse(xr_ctx_t *ctx, const char *text, size_t len,
    int64_t *ms, int *tz_min);

#endif /* XR_AUDIT_H */
