/*
 * xregion audit: the offline side of the audit trail (core/xr_audit.h).
 *
 *   xregion audit verify FILE|DIR|-... --pubkey KEY [--checkpoints FILE]
 *   xregion audit export FILE|DIR|-... [filters] [--format jsonl|csv]
 *   xregion audit append FILE --key KEY [--continue PREV] [--every N] ...
 *   xregion audit key KEY
 *
 * Files are read line by line, never whole: a log of any size takes the
 * memory of one line (and, to verify, 33 bytes per entry since the last
 * checkpoint).  Several files, or a directory's files, are taken in chain
 * order: sorted by the seq of their first line.
 *
 * verify writes its summary only when the log verifies; a log that does
 * not verify is one error line naming file:line, seq and the reason, with
 * exit status 1.  export streams: what it wrote before an error stays
 * written.
 */

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "xr_audit.h"
#include "xr_adapter.h"
#include "xr_crypto.h"
#include "xr_time.h"
#include "xr_cli.h"


/* a reader's buffer: the longest line and room to read behind it */
#define XR_CA_READ_BUF    (XR_AUDIT_LINE_MAX + 65536)
/* export writes its output out whenever this much is waiting */
#define XR_CA_FLUSH       65536
#define XR_CA_KEY_MAX     (64 * 1024)


typedef struct {
    FILE           *f;
    const char     *name;
    char           *buf;            /* XR_CA_READ_BUF bytes, shared */
    size_t          start, end;
    int             eof;
    int             skip;           /* dropping the rest of a long line */
    uint64_t        lineno;
} xr_ca_reader_t;

typedef struct {
    const char     *path;
    uint64_t        seq;            /* of its first line; 0: none */
    size_t          order;          /* as given, for equal seqs */
    int             empty;
} xr_ca_file_t;


static int xr_ca_verify(xr_cli_t *cli, int argc, char **argv);
static int xr_ca_export(xr_cli_t *cli, int argc, char **argv);
static int xr_ca_append(xr_cli_t *cli, int argc, char **argv);
static int xr_ca_key(xr_cli_t *cli, int argc, char **argv);


const char  xr_cli_audit_usage[] =
    "usage: xregion audit <command> ...\n"
    "\n"
    "The gateway's audit logs (docs/regulators.md):\n"
    "\n"
    "  verify   check chain and signed checkpoints, name the first bad "
    "line\n"
    "  export   filter records, as JSON Lines or CSV\n"
    "  append   add records to a log, with checkpoints (tests, tools)\n"
    "  key      print a key's id and public half\n"
    "\n"
    "`xregion audit <command> --help` for each.\n";

static const char  xr_ca_verify_usage[] =
    "usage: xregion audit verify FILE|DIR|-... --pubkey KEY.pem\n"
    "                            [--checkpoints FILE]\n"
    "\n"
    "Verifies audit log files offline: every line parses, seqs follow\n"
    "each other, each line carries its own hash and the previous line's,\n"
    "and every checkpoint is signed by KEY.pem (the gateway's public key,\n"
    "SM2 or EC P-256) over the chain as it is.  Files may be given in any\n"
    "order (they are sorted by their first seq); a directory stands for\n"
    "its files; \"-\" reads stdin.\n"
    "\n"
    "  --pubkey KEY.pem     the key checkpoints must be signed with\n"
    "  --checkpoints FILE   checkpoints obtained earlier (lines of a log or\n"
    "                       of the pull API); the log must agree with them\n"
    "                       and reach them: this catches a log cut after\n"
    "                       its last checkpoint, which the log alone cannot\n"
    "                       show\n"
    "\n"
    "Prints a summary and exits 0 when the log verifies.  Otherwise prints\n"
    "one line, \"xregion: XR-AUDIT-INVALID: FILE:LINE: seq N: <reason>:\n"
    "<detail>\", for the first bad line, and exits 1.  Reasons: malformed,\n"
    "edited, deleted, inserted, unlinked, reordered, truncated line (the\n"
    "last line has no newline: cut short), foreign key, bad signature,\n"
    "rewritten, replayed checkpoint, truncated log.  Exit 2: the check\n"
    "could not be made (usage, unreadable file or key).\n";

static const char  xr_ca_export_usage[] =
    "usage: xregion audit export FILE|DIR|-... [--from T] [--to T]\n"
    "           [--domain D] [--txn T] [--origin P] [--dest P]\n"
    "           [--caller C] [--outcome O] [--scope P,P...]\n"
    "           [--from-seq N] [--to-seq N] [--limit N]\n"
    "           [--type rec,ckpt,open|all] [--format jsonl|csv]\n"
    "\n"
    "Writes the entries that pass every filter given, in chain order: JSON\n"
    "Lines (the lines as they are, default) or CSV (records only, a header\n"
    "row first, RFC 4180).  Nothing is verified: use verify for that.\n"
    "\n"
    "  --from T, --to T   time >= T and < T: YYYY-MM-DD, or\n"
    "                     YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM] (China time\n"
    "                     without an offset)\n"
    "  --origin P, --dest P   region code or prefix: 310000, 31\n"
    "  --scope P,P...     origin or dest starts with one of the prefixes\n"
    "  --from-seq N, --to-seq N   seq range, inclusive (paging)\n"
    "  --limit N          stop after N entries\n"
    "  --type LIST        entry types; default rec\n"
    "\n"
    "Output is written as it is found: on an error (a line that does not\n"
    "parse: XR-SYNTAX naming FILE:LINE) what was written stays.  A last\n"
    "line without its newline (being written, or cut) is left out.\n";

static const char  xr_ca_append_usage[] =
    "usage: xregion audit append FILE --key KEY.pem [--continue PREV]\n"
    "           [--every N] [--hash sm3|sha256] [--inst NAME] [--time T]\n"
    "           [--no-final-checkpoint]  < RECORDS\n"
    "\n"
    "Appends records, one JSON object per line on stdin, to the audit log\n"
    "FILE as the gateway writes them: chained, with a checkpoint signed by\n"
    "KEY.pem (private, SM2 or EC P-256) after every N records and at the\n"
    "end.  Record members (all optional): time, inst, caller, domain, txn,\n"
    "msg_id, origin, dest, upstream, peer, outcome, error (strings),\n"
    "latency_ms, upstream_ms (integers, upstream_ms may be null), amounts\n"
    "(object of integer fen), ids (object of masked strings).\n"
    "\n"
    "A new FILE starts with an \"open\" entry (reason start, or rotate\n"
    "with --continue PREV: the chain continues from PREV's last line).  An\n"
    "existing FILE is continued after its last line, as after a restart: a\n"
    "torn last line is cut and counted in the \"restart\" entry.\n"
    "\n"
    "  --every N      checkpoint after every N records (default 0: only at\n"
    "                 the end)\n"
    "  --hash ALG     chain digest of a new log (default sm3 with an SM2\n"
    "                 key, sha256 with a P-256 key; a continued log keeps\n"
    "                 its own unless given)\n"
    "  --inst NAME    instance name (default \"cli\")\n"
    "  --time T       time of the entries without one (default: now)\n";

static const char  xr_ca_key_usage[] =
    "usage: xregion audit key KEY.pem\n"
    "\n"
    "Prints the key id checkpoints name (SHA-256 of the public key's DER),\n"
    "its signature algorithm and its public half in PEM: what regulators\n"
    "need to verify the logs.\n";


int
xr_cli_audit(xr_cli_t *cli, int argc, char **argv)
{
    int          rc;
    const char  *sub;

    if (argc < 2 || strcmp(argv[1], "--help") == 0
        || strcmp(argv[1], "-h") == 0)
    {
        if (argc < 2) {
            return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                           "audit: verify, export, append or key expected "
                           "(see xregion audit --help)");
        }
        return xr_cli_usage_text(cli, xr_cli_audit_usage);
    }

    sub = argv[1];

    if (strcmp(sub, "verify") == 0) {
        rc = xr_ca_verify(cli, argc - 1, argv + 1);
    } else if (strcmp(sub, "export") == 0) {
        rc = xr_ca_export(cli, argc - 1, argv + 1);
    } else if (strcmp(sub, "append") == 0) {
        rc = xr_ca_append(cli, argc - 1, argv + 1);
    } else if (strcmp(sub, "key") == 0) {
        rc = xr_ca_key(cli, argc - 1, argv + 1);
    } else {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "audit: unknown command \"%s\" (see xregion audit "
                       "--help)", sub);
    }

    /* the algorithms OpenSSL keeps for the process, for leak checkers */
    xr_crypto_cleanup();
    return rc;
}


/* Lines */

static int
xr_ca_open(xr_cli_t *cli, xr_ca_reader_t *r, const char *path, char *buf)
{
    memset(r, 0, sizeof(xr_ca_reader_t));
    r->buf = buf;

    if (strcmp(path, "-") == 0) {
        r->f = stdin;
        r->name = "stdin";
        return XR_OK;
    }

    r->f = fopen(path, "rb");
    if (r->f == NULL) {
        return xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", path,
                       strerror(errno));
    }
    r->name = path;
    return XR_OK;
}


static void
xr_ca_close(xr_ca_reader_t *r)
{
    if (r->f && r->f != stdin) {
        fclose(r->f);
    }
    r->f = NULL;
}


/*
 * The next line, without its '\n' (*newline 0 for a last line without
 * one), valid until the next call.  A line longer than the buffer comes
 * as its first XR_CA_READ_BUF bytes, which no parser takes.  1: a line;
 * 0: the end; XR_ERROR: a read error.
 */
static int
xr_ca_next(xr_cli_t *cli, xr_ca_reader_t *r, const char **line,
    size_t *len, int *newline)
{
    char    *nl;
    size_t   n;

    for ( ;; ) {
        nl = r->end > r->start
             ? memchr(r->buf + r->start, '\n', r->end - r->start) : NULL;

        if (nl) {
            *line = r->buf + r->start;
            *len = (size_t) (nl - *line);
            r->start = (size_t) (nl - r->buf) + 1;
            if (r->skip) {
                r->skip = 0;
                continue;
            }
            r->lineno++;
            *newline = 1;
            return 1;
        }

        if (r->eof) {
            if (r->start < r->end && !r->skip) {
                *line = r->buf + r->start;
                *len = r->end - r->start;
                r->start = r->end;
                r->lineno++;
                *newline = 0;
                return 1;
            }
            return 0;
        }

        if (r->start) {
            memmove(r->buf, r->buf + r->start, r->end - r->start);
            r->end -= r->start;
            r->start = 0;
        }

        if (r->end == XR_CA_READ_BUF) {
            r->start = r->end;
            if (!r->skip) {
                r->skip = 1;
                *line = r->buf;
                *len = r->end;
                r->lineno++;
                *newline = 1;
                return 1;
            }
            r->start = 0;
            r->end = 0;
        }

        n = fread(r->buf + r->end, 1, XR_CA_READ_BUF - r->end, r->f);
        if (n == 0) {
            if (ferror(r->f)) {
                return xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", r->name,
                               strerror(errno ? errno : EIO));
            }
            r->eof = 1;
        }
        r->end += n;
    }
}


static int
xr_ca_file_cmp(const void *a, const void *b)
{
    const xr_ca_file_t  *x = a, *y = b;

    if (x->seq != y->seq) {
        return x->seq < y->seq ? -1 : 1;
    }
    return (x->order > y->order) - (x->order < y->order);
}


static int
xr_ca_add_file(xr_cli_t *cli, xr_ca_file_t **files, size_t *n, size_t *cap,
    const char *path)
{
    xr_ca_file_t  *f;

    if (*n == *cap) {
        *cap = *cap ? 2 * *cap : 16;
        f = xr_palloc(cli->pool, *cap * sizeof(xr_ca_file_t));
        if (f == NULL) {
            return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
        }
        if (*n) {
            memcpy(f, *files, *n * sizeof(xr_ca_file_t));
        }
        *files = f;
    }

    f = &(*files)[*n];
    memset(f, 0, sizeof(xr_ca_file_t));
    f->path = path;
    f->order = (*n)++;
    return XR_OK;
}


/*
 * The files named (a directory: its regular files but hidden ones), in
 * chain order.  "-" must come alone.  Empty files are dropped.
 */
static int
xr_ca_files(xr_cli_t *cli, char **pos, int npos, char *buf,
    xr_ca_file_t **out, size_t *nout)
{
    int              i, rc, newline;
    char            *path;
    DIR             *d;
    size_t           n, cap, k, len;
    struct stat      st;
    const char      *line;
    xr_ca_file_t    *files;
    xr_ca_reader_t   r;
    struct dirent   *de;

    if (npos == 0) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "audit: no FILE given");
    }

    files = NULL;
    n = 0;
    cap = 0;

    for (i = 0; i < npos; i++) {
        if (strcmp(pos[i], "-") == 0) {
            if (npos > 1) {
                return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                               "audit: \"-\" (stdin) must be the only "
                               "input");
            }
            if (xr_ca_add_file(cli, &files, &n, &cap, pos[i]) != XR_OK) {
                return XR_ERROR;
            }
            *out = files;
            *nout = n;
            return XR_OK;
        }

        if (stat(pos[i], &st) != 0) {
            return xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", pos[i],
                           strerror(errno));
        }

        if (!S_ISDIR(st.st_mode)) {
            if (xr_ca_add_file(cli, &files, &n, &cap, pos[i]) != XR_OK) {
                return XR_ERROR;
            }
            continue;
        }

        d = opendir(pos[i]);
        if (d == NULL) {
            return xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", pos[i],
                           strerror(errno));
        }

        rc = XR_OK;
        while (rc == XR_OK && (de = readdir(d)) != NULL) {
            if (de->d_name[0] == '.') {
                continue;
            }
            len = strlen(pos[i]) + strlen(de->d_name) + 2;
            path = xr_palloc(cli->pool, len);
            if (path == NULL) {
                rc = xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
                break;
            }
            snprintf(path, len, "%s/%s", pos[i], de->d_name);
            if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
                continue;
            }
            rc = xr_ca_add_file(cli, &files, &n, &cap, path);
        }
        closedir(d);

        if (rc != XR_OK) {
            return XR_ERROR;
        }
    }

    /* the seq of each file's first line */
    for (k = 0; k < n; k++) {
        if (xr_ca_open(cli, &r, files[k].path, buf) != XR_OK) {
            return XR_ERROR;
        }
        rc = xr_ca_next(cli, &r, &line, &len, &newline);
        xr_ca_close(&r);

        if (rc == XR_ERROR) {
            return XR_ERROR;
        }
        if (rc == 0) {
            files[k].empty = 1;
            continue;
        }
        if (xr_audit_line_seq(line, len, &files[k].seq) != XR_OK) {
            files[k].seq = 0;
        }
    }

    if (n > 1) {
        qsort(files, n, sizeof(xr_ca_file_t), xr_ca_file_cmp);
    }

    /* empty files hold nothing to check or export */
    for (i = 0, k = 0; k < n; k++) {
        if (!files[k].empty) {
            files[i++] = files[k];
        }
    }

    if (i == 0) {
        return xr_fail(&cli->ctx, XR_E_BODY_EMPTY, NULL,
                       "audit: the files given hold no line");
    }

    *out = files;
    *nout = (size_t) i;
    return XR_OK;
}


static int
xr_ca_load_key(xr_cli_t *cli, const char *path, xr_key_t **key)
{
    xr_str_t  pem;

    if (xr_cli_read(cli, path, XR_CA_KEY_MAX, &pem) != XR_OK) {
        if (cli->ctx.err == XR_E_BODY_EMPTY
            || cli->ctx.err == XR_E_BODY_TOO_LARGE)
        {
            xr_ctx_clear(&cli->ctx);
            return xr_fail(&cli->ctx, XR_E_CONFIG, NULL,
                           "%s: empty, or larger than a PEM key", path);
        }
        return XR_ERROR;
    }

    *key = xr_key_load(&cli->ctx, pem.data, pem.len);
    if (*key == NULL) {
        char  msg[XR_ERRSTR_LEN];

        snprintf(msg, sizeof(msg), "%s", cli->ctx.errstr);
        xr_ctx_clear(&cli->ctx);
        return xr_fail(&cli->ctx, XR_E_CONFIG, NULL, "%s: %s", path, msg);
    }

    return XR_OK;
}


static int
xr_ca_u64(xr_cli_t *cli, const char *opt, const char *s, uint64_t *out)
{
    char                *end;
    unsigned long long   v;

    errno = 0;
    v = strtoull(s, &end, 10);
    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno == ERANGE) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "%s: \"%s\" is not a number", opt, s);
    }
    *out = (uint64_t) v;
    return XR_OK;
}


/* verify */

static int
xr_ca_checkpoints(xr_cli_t *cli, const char *path, char *buf,
    const xr_audit_key_t *k, xr_audit_verifier_t *v)
{
    int                rc, newline;
    char              *scratch;
    size_t             len, n;
    const char        *line;
    xr_ca_reader_t     r;
    xr_audit_entry_t  *e;

    e = xr_palloc(cli->pool, sizeof(xr_audit_entry_t));
    scratch = xr_palloc(cli->pool, XR_CA_READ_BUF);
    if (e == NULL || scratch == NULL) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }

    if (xr_ca_open(cli, &r, path, buf) != XR_OK) {
        return XR_ERROR;
    }

    n = 0;
    while ((rc = xr_ca_next(cli, &r, &line, &len, &newline)) == 1) {
        if (len == 0) {
            continue;
        }
        if (xr_audit_parse(&cli->ctx, line, len, scratch, e) != XR_OK) {
            char  msg[XR_ERRSTR_LEN];

            snprintf(msg, sizeof(msg), "%s", cli->ctx.errstr);
            xr_ctx_clear(&cli->ctx);
            xr_ca_close(&r);
            return xr_fail(&cli->ctx, XR_E_SYNTAX, NULL, "%s:%llu: %s",
                           path, (unsigned long long) r.lineno, msg);
        }
        if (e->type != XR_AUDIT_CKPT) {
            continue;
        }

        rc = xr_audit_ckpt_verify(&cli->ctx, k, e);
        if (rc != XR_OK) {
            char  msg[XR_ERRSTR_LEN];

            snprintf(msg, sizeof(msg), "%s", cli->ctx.errstr);
            xr_ctx_clear(&cli->ctx);
            xr_ca_close(&r);
            return xr_fail(&cli->ctx, rc == XR_DECLINED ? XR_E_AUDIT_INVALID
                                                        : XR_E_INTERNAL,
                           NULL, "%s:%llu: seq %llu: the checkpoint given "
                           "does not verify: %s", path,
                           (unsigned long long) r.lineno,
                           (unsigned long long) e->seq, msg);
        }

        if (xr_audit_verifier_expect(v, e) != XR_OK) {
            xr_ca_close(&r);
            return XR_ERROR;
        }
        n++;
    }

    xr_ca_close(&r);

    if (rc == XR_ERROR) {
        return XR_ERROR;
    }
    if (n == 0) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "--checkpoints: %s holds no checkpoint", path);
    }
    return XR_OK;
}


static int
xr_ca_time_text(int64_t ms, char *buf, size_t size)
{
    xr_time_t  t;

    if (xr_time_from_unix_ms(ms, 480, &t) != XR_OK) {
        return snprintf(buf, size, "?");
    }
    return snprintf(buf, size, "%04d-%02d-%02dT%02d:%02d:%02d.%03d+08:00",
                    t.year, t.month, t.day, t.hour, t.min, t.sec, t.msec);
}


static int
xr_ca_verify(xr_cli_t *cli, int argc, char **argv)
{
    int                        rc, newline;
    char                     **pos, *buf, id[17], when[40], where[512];
    size_t                     i, nfiles, len;
    const char                *pubkey, *ckpts, *line, **names;
    xr_key_t                  *key;
    xr_ca_file_t              *files;
    xr_ca_reader_t             r;
    xr_audit_key_t             k;
    xr_audit_verifier_t       *v;
    const xr_audit_report_t   *rep;
    const xr_audit_summary_t  *s;
    xr_cli_opt_t               opts[] = {
        { "--pubkey", &pubkey, NULL },
        { "--checkpoints", &ckpts, NULL },
        { NULL, NULL, NULL }
    };

    pubkey = NULL;
    ckpts = NULL;
    key = NULL;

    pos = xr_pcalloc(cli->pool, (size_t) argc * sizeof(char *));
    buf = xr_palloc(cli->pool, XR_CA_READ_BUF);
    if (pos == NULL || buf == NULL) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }

    rc = xr_cli_parse(cli, argc, argv, opts, pos, argc);
    if (rc == XR_CLI_HELP) {
        return xr_cli_usage_text(cli, xr_ca_verify_usage);
    }
    if (rc != XR_OK) {
        return XR_ERROR;
    }

    for (i = 0; i < (size_t) argc && pos[i]; i++) { /* count */ }

    if (pubkey == NULL) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "verify: --pubkey KEY.pem is required");
    }

    if (xr_ca_files(cli, pos, (int) i, buf, &files, &nfiles) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_ca_load_key(cli, pubkey, &key) != XR_OK) {
        return XR_ERROR;
    }

    rc = XR_ERROR;

    if (xr_audit_key_init(&cli->ctx, &k, key) != XR_OK) {
        goto done;
    }

    names = xr_palloc(cli->pool, nfiles * sizeof(char *));
    if (names == NULL) {
        xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
        goto done;
    }
    for (i = 0; i < nfiles; i++) {
        names[i] = strcmp(files[i].path, "-") == 0 ? "stdin" : files[i].path;
    }

    v = xr_audit_verifier_create(&cli->ctx, &k, names, nfiles);
    if (v == NULL) {
        goto done;
    }

    if (ckpts && xr_ca_checkpoints(cli, ckpts, buf, &k, v) != XR_OK) {
        goto done;
    }

    for (i = 0; i < nfiles; i++) {
        if (xr_ca_open(cli, &r, files[i].path, buf) != XR_OK) {
            goto done;
        }

        while ((rc = xr_ca_next(cli, &r, &line, &len, &newline)) == 1) {
            rc = xr_audit_verifier_line(v, line, len, newline, (unsigned) i,
                                        r.lineno);
            if (rc != XR_OK) {
                break;
            }
        }

        xr_ca_close(&r);

        if (rc == XR_ERROR) {
            goto done;
        }
        if (rc == XR_DECLINED) {
            break;
        }
    }

    if (rc != XR_DECLINED) {
        rc = xr_audit_verifier_end(v);
    }

    if (rc == XR_DECLINED) {
        rep = xr_audit_verifier_report(v);
        snprintf(where, sizeof(where), "%s:%llu",
                 names[rep->file < nfiles ? rep->file : 0],
                 (unsigned long long) rep->line);
        xr_fail(&cli->ctx, XR_E_AUDIT_INVALID, NULL, "%s: seq %llu: %s: %s",
                where, (unsigned long long) rep->seq,
                xr_audit_fault_name(rep->fault), rep->text);
        rc = XR_ERROR;
        goto done;
    }

    s = xr_audit_verifier_summary(v);

    xr_hex(k.id, 8, id);
    id[16] = '\0';

    rc = xr_cli_out(cli, "ok: %llu entries in %zu file%s: %llu records, "
                    "%llu checkpoints, %llu file starts or restarts\n",
                    (unsigned long long) s->entries, nfiles,
                    nfiles == 1 ? "" : "s",
                    (unsigned long long) s->records,
                    (unsigned long long) s->checkpoints,
                    (unsigned long long) s->opens);

    if (rc == XR_OK) {
        rc = xr_cli_out(cli, "chain: seq %llu..%llu, %s, %s\n",
                        (unsigned long long) s->first_seq,
                        (unsigned long long) s->last_seq,
                        xr_audit_hash_name(s->alg),
                        s->first_prev_zero ? "from its start"
                        : "continuing a chain whose earlier lines were not "
                          "given");
    }

    if (rc == XR_OK && s->checkpoints) {
        xr_ca_time_text(s->last_ckpt_time_ms, when, sizeof(when));
        rc = xr_cli_out(cli, "signed: up to seq %llu, by the checkpoint at "
                        "seq %llu (%s), key %s... (%s)\n",
                        (unsigned long long) s->signed_upto,
                        (unsigned long long) s->last_ckpt_seq, when, id,
                        xr_audit_sig_name(k.alg));
    } else if (rc == XR_OK) {
        rc = xr_cli_out(cli, "signed: nothing: no checkpoint in the files "
                        "given\n");
    }

    if (rc == XR_OK) {
        rc = xr_cli_out(cli, "unsigned: %llu records after seq %llu are "
                        "chained but not yet signed\n",
                        (unsigned long long) s->unsigned_records,
                        (unsigned long long) s->signed_upto);
    }

    if (rc == XR_OK && s->unchecked_heads) {
        rc = xr_cli_out(cli, "note: %llu checkpoints sign seqs before the "
                        "first line given: their signatures were checked, "
                        "their heads could not be\n",
                        (unsigned long long) s->unchecked_heads);
    }

done:

    xr_key_free(key);
    return rc;
}


/* export */

static int
xr_ca_flush(xr_cli_t *cli)
{
    if (cli->out.failed) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, "output lost");
    }

    if (cli->out.len
        && fwrite(cli->out.data, 1, cli->out.len, stdout) != cli->out.len)
    {
        return xr_fail(&cli->ctx, XR_E_IO, NULL, "stdout: %s",
                       strerror(errno));
    }

    cli->out.len = 0;
    return XR_OK;
}


static int
xr_ca_types(xr_cli_t *cli, const char *s, unsigned *types)
{
    size_t       n;
    const char  *p, *end;

    *types = 0;

    for (p = s; *p; p = *end ? end + 1 : end) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }
        n = (size_t) (end - p);

        if (n == 3 && strncmp(p, "rec", 3) == 0) {
            *types |= XR_AUDIT_REC;
        } else if (n == 4 && strncmp(p, "ckpt", 4) == 0) {
            *types |= XR_AUDIT_CKPT;
        } else if (n == 4 && strncmp(p, "open", 4) == 0) {
            *types |= XR_AUDIT_OPEN;
        } else if (n == 3 && strncmp(p, "all", 3) == 0) {
            *types |= XR_AUDIT_REC | XR_AUDIT_CKPT | XR_AUDIT_OPEN;
        } else {
            return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                           "--type: \"%.*s\" is not rec, ckpt, open or all",
                           (int) n, p);
        }
    }

    if (*types == 0) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL, "--type: empty");
    }
    return XR_OK;
}


static int
xr_ca_scope(xr_cli_t *cli, const char *s, xr_audit_filter_t *f)
{
    size_t        n, i;
    xr_str_t     *scope;
    const char   *p, *end;

    for (n = 1, p = s; *p; p++) {
        n += *p == ',';
    }

    scope = xr_palloc(cli->pool, n * sizeof(xr_str_t));
    if (scope == NULL) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0, p = s; i < n; i++, p = end + 1) {
        end = strchr(p, ',');
        if (end == NULL) {
            end = p + strlen(p);
        }
        if (end == p) {
            return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                           "--scope: an empty region prefix");
        }
        scope[i].data = p;
        scope[i].len = (size_t) (end - p);
    }

    f->scope = scope;
    f->nscope = n;
    return XR_OK;
}


static int
xr_ca_export(xr_cli_t *cli, int argc, char **argv)
{
    int                  rc, newline;
    char               **pos, *buf, *scratch;
    size_t               i, nfiles, len;
    uint64_t             limit, count, v;
    const char          *from, *to, *domain, *txn, *origin, *dest, *caller;
    const char          *outcome, *scope, *from_seq, *to_seq, *lim, *type;
    const char          *format, *line;
    xr_ca_file_t        *files;
    xr_ca_reader_t       r;
    xr_audit_entry_t    *e;
    xr_audit_filter_t    f;
    xr_audit_format_e    fmt;
    xr_cli_opt_t         opts[] = {
        { "--from", &from, NULL },
        { "--to", &to, NULL },
        { "--domain", &domain, NULL },
        { "--txn", &txn, NULL },
        { "--origin", &origin, NULL },
        { "--dest", &dest, NULL },
        { "--caller", &caller, NULL },
        { "--outcome", &outcome, NULL },
        { "--scope", &scope, NULL },
        { "--from-seq", &from_seq, NULL },
        { "--to-seq", &to_seq, NULL },
        { "--limit", &lim, NULL },
        { "--type", &type, NULL },
        { "--format", &format, NULL },
        { NULL, NULL, NULL }
    };

    from = to = domain = txn = origin = dest = caller = NULL;
    outcome = scope = from_seq = to_seq = lim = type = format = NULL;

    pos = xr_pcalloc(cli->pool, (size_t) argc * sizeof(char *));
    buf = xr_palloc(cli->pool, XR_CA_READ_BUF);
    scratch = xr_palloc(cli->pool, XR_CA_READ_BUF);
    e = xr_palloc(cli->pool, sizeof(xr_audit_entry_t));
    if (pos == NULL || buf == NULL || scratch == NULL || e == NULL) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }

    rc = xr_cli_parse(cli, argc, argv, opts, pos, argc);
    if (rc == XR_CLI_HELP) {
        return xr_cli_usage_text(cli, xr_ca_export_usage);
    }
    if (rc != XR_OK) {
        return XR_ERROR;
    }

    for (i = 0; i < (size_t) argc && pos[i]; i++) { /* count */ }

    xr_audit_filter_init(&f);

    fmt = XR_AUDIT_JSONL;
    if (format && strcmp(format, "csv") == 0) {
        fmt = XR_AUDIT_CSV;
    } else if (format && strcmp(format, "jsonl") != 0) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "--format: \"%s\" is not jsonl or csv", format);
    }

    if (type && xr_ca_types(cli, type, &f.types) != XR_OK) {
        return XR_ERROR;
    }
    if (fmt == XR_AUDIT_CSV && f.types != XR_AUDIT_REC) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "--format csv writes records only: leave out --type");
    }

    if ((from && xr_audit_time_parse(&cli->ctx, from, strlen(from),
                                     &f.from_ms, NULL) != XR_OK)
        || (to && xr_audit_time_parse(&cli->ctx, to, strlen(to), &f.to_ms,
                                      NULL) != XR_OK))
    {
        return XR_ERROR;
    }

    if (from_seq) {
        if (xr_ca_u64(cli, "--from-seq", from_seq, &v) != XR_OK) {
            return XR_ERROR;
        }
        f.seq_from = v;
    }
    if (to_seq) {
        if (xr_ca_u64(cli, "--to-seq", to_seq, &v) != XR_OK) {
            return XR_ERROR;
        }
        f.seq_to = v;
    }

    limit = UINT64_MAX;
    if (lim && xr_ca_u64(cli, "--limit", lim, &limit) != XR_OK) {
        return XR_ERROR;
    }

    if (scope && xr_ca_scope(cli, scope, &f) != XR_OK) {
        return XR_ERROR;
    }

    f.domain = xr_str_from(domain ? domain : "");
    f.txn = xr_str_from(txn ? txn : "");
    f.origin = xr_str_from(origin ? origin : "");
    f.dest = xr_str_from(dest ? dest : "");
    f.caller = xr_str_from(caller ? caller : "");
    f.outcome = xr_str_from(outcome ? outcome : "");

    if (xr_ca_files(cli, pos, (int) i, buf, &files, &nfiles) != XR_OK) {
        return XR_ERROR;
    }

    if (fmt == XR_AUDIT_CSV && xr_audit_csv_header(&cli->out) != XR_OK) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }

    count = 0;

    for (i = 0; i < nfiles && count < limit; i++) {
        if (xr_ca_open(cli, &r, files[i].path, buf) != XR_OK) {
            return XR_ERROR;
        }

        while (count < limit
               && (rc = xr_ca_next(cli, &r, &line, &len, &newline)) == 1)
        {
            if (!newline) {
                break;                  /* being written, or cut */
            }

            rc = xr_audit_export_line(&cli->ctx, &f, fmt, line, len,
                                      scratch, e, &cli->out);
            if (rc == XR_ERROR) {
                char  msg[XR_ERRSTR_LEN];

                snprintf(msg, sizeof(msg), "%s", cli->ctx.errstr);
                xr_ctx_clear(&cli->ctx);
                xr_fail(&cli->ctx, XR_E_SYNTAX, NULL, "%s:%llu: %s",
                        r.name, (unsigned long long) r.lineno, msg);
                break;
            }
            count += rc == XR_OK;

            if (cli->out.len >= XR_CA_FLUSH && xr_ca_flush(cli) != XR_OK) {
                rc = XR_ERROR;
                break;
            }
            rc = 1;
        }

        xr_ca_close(&r);

        if (rc == XR_ERROR) {
            xr_ca_flush(cli);
            return XR_ERROR;
        }
    }

    return XR_OK;
}


/* append */

/* The integer text of a JSON number, strictly. */
static int
xr_ca_int(const xr_node_t *n, int64_t *out)
{
    char                *end, text[32];
    long long            v;

    if (n->type != XR_NODE_NUMBER || n->u.s.len == 0
        || n->u.s.len >= sizeof(text))
    {
        return XR_ERROR;
    }

    memcpy(text, n->u.s.data, n->u.s.len);
    text[n->u.s.len] = '\0';

    errno = 0;
    v = strtoll(text, &end, 10);
    if (*end != '\0' || errno == ERANGE) {
        return XR_ERROR;
    }

    *out = (int64_t) v;
    return XR_OK;
}


/*
 * One input line into a record entry, in ctx (the line's own pool).  An
 * unknown member or a wrong type is XR_E_SYNTAX.
 */
static int
xr_ca_record(xr_ctx_t *ctx, const char *line, size_t len, int64_t now,
    xr_str_t inst, xr_audit_entry_t *e)
{
    size_t               i;
    xr_node_t           *tree;
    xr_member_t         *m, *pm;
    xr_audit_rec_t      *r;
    xr_audit_amount_t   *a;
    xr_audit_ident_t    *id;

    static const struct {
        const char  *name;
        size_t       off;
    } strs[] = {
        { "caller", offsetof(xr_audit_rec_t, caller) },
        { "domain", offsetof(xr_audit_rec_t, domain) },
        { "txn", offsetof(xr_audit_rec_t, txn) },
        { "msg_id", offsetof(xr_audit_rec_t, msg_id) },
        { "origin", offsetof(xr_audit_rec_t, origin) },
        { "dest", offsetof(xr_audit_rec_t, dest) },
        { "upstream", offsetof(xr_audit_rec_t, upstream) },
        { "peer", offsetof(xr_audit_rec_t, peer) },
        { "outcome", offsetof(xr_audit_rec_t, outcome) },
        { "error", offsetof(xr_audit_rec_t, error) },
    };

    if (xr_adapter_json.decode(ctx, NULL, XR_DIR_REQUEST, NULL, line, len,
                               &tree) != XR_OK)
    {
        return XR_ERROR;
    }

    if (tree->type != XR_NODE_OBJECT) {
        return xr_fail(ctx, XR_E_SYNTAX, NULL, "a record is a JSON object");
    }

    memset(e, 0, sizeof(xr_audit_entry_t));
    e->type = XR_AUDIT_REC;
    e->time_ms = now;
    e->tz_min = 480;
    e->inst = inst;
    r = &e->u.rec;
    r->upstream_ms = -1;

    for (m = tree->u.obj.first; m; m = m->next) {
        for (i = 0; i < sizeof(strs) / sizeof(strs[0]); i++) {
            if (xr_str_eq(m->key, strs[i].name)) {
                break;
            }
        }

        if (i < sizeof(strs) / sizeof(strs[0])) {
            if (m->value->type != XR_NODE_STRING) {
                return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                               "%s: a string expected", strs[i].name);
            }
            *(xr_str_t *) ((char *) r + strs[i].off) = m->value->u.s;

        } else if (xr_str_eq(m->key, "time")) {
            if (m->value->type != XR_NODE_STRING
                || xr_audit_time_parse(ctx, m->value->u.s.data,
                                       m->value->u.s.len, &e->time_ms,
                                       &e->tz_min) != XR_OK)
            {
                xr_ctx_clear(ctx);
                return xr_fail(ctx, XR_E_FIELD_FORMAT, NULL,
                               "time: YYYY-MM-DDTHH:MM:SS[.mmm][Z|+HH:MM] "
                               "expected");
            }

        } else if (xr_str_eq(m->key, "inst")) {
            if (m->value->type != XR_NODE_STRING) {
                return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                               "inst: a string expected");
            }
            e->inst = m->value->u.s;

        } else if (xr_str_eq(m->key, "latency_ms")) {
            if (xr_ca_int(m->value, &r->latency_ms) != XR_OK) {
                return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                               "latency_ms: an integer expected");
            }

        } else if (xr_str_eq(m->key, "upstream_ms")) {
            if (m->value->type != XR_NODE_NULL
                && xr_ca_int(m->value, &r->upstream_ms) != XR_OK)
            {
                return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                               "upstream_ms: an integer or null expected");
            }

        } else if (xr_str_eq(m->key, "amounts")
                   || xr_str_eq(m->key, "ids"))
        {
            if (m->value->type != XR_NODE_OBJECT
                || m->value->u.obj.count > XR_AUDIT_PAIRS_MAX)
            {
                return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                               "%.*s: an object of at most %d members "
                               "expected", (int) m->key.len, m->key.data,
                               XR_AUDIT_PAIRS_MAX);
            }

            a = xr_palloc(ctx->pool, XR_AUDIT_PAIRS_MAX
                                     * sizeof(xr_audit_amount_t));
            id = xr_palloc(ctx->pool, XR_AUDIT_PAIRS_MAX
                                      * sizeof(xr_audit_ident_t));
            if (a == NULL || id == NULL) {
                return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
            }

            i = 0;
            for (pm = m->value->u.obj.first; pm; pm = pm->next, i++) {
                if (m->key.len == 7) {
                    a[i].name = pm->key;
                    if (xr_ca_int(pm->value, &a[i].fen) != XR_OK) {
                        return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                                       "amounts: integer fen expected");
                    }
                } else {
                    id[i].name = pm->key;
                    if (pm->value->type != XR_NODE_STRING) {
                        return xr_fail(ctx, XR_E_FIELD_TYPE, NULL,
                                       "ids: strings expected");
                    }
                    id[i].value = pm->value->u.s;
                }
            }

            if (m->key.len == 7) {
                r->amounts = a;
                r->namounts = i;
            } else {
                r->ids = id;
                r->nids = i;
            }

        } else {
            char  q[XR_QUOTE_MAX + 8];

            xr_quote(m->key, q, sizeof(q));
            return xr_fail(ctx, XR_E_SYNTAX, NULL,
                           "unknown record member \"%s\"", q);
        }
    }

    return XR_OK;
}


/* The last bytes of the file at fd (all of it when shorter). */
static int
xr_ca_tail(xr_cli_t *cli, int fd, const char *path, off_t size,
    char *buf, size_t *len, int *whole)
{
    off_t    off;
    ssize_t  n;
    size_t   got;

    off = size > XR_AUDIT_TAIL_READ ? size - XR_AUDIT_TAIL_READ : 0;
    *whole = off == 0;

    got = 0;
    while (got < (size_t) (size - off)) {
        n = pread(fd, buf + got, (size_t) (size - off) - got,
                  off + (off_t) got);
        if (n <= 0) {
            return xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", path,
                           n == 0 ? "file shrank" : strerror(errno));
        }
        got += (size_t) n;
    }

    *len = got;
    return XR_OK;
}


/* Where a log's chain stands: its tail recovered. */
static int
xr_ca_recover(xr_cli_t *cli, int fd, const char *path, off_t size,
    char *buf, xr_audit_tail_t *t)
{
    int     whole;
    size_t  len;

    len = 0;
    whole = 0;
    if (xr_ca_tail(cli, fd, path, size, buf, &len, &whole) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_audit_recover(&cli->ctx, buf, len, whole, t) != XR_OK) {
        char  msg[XR_ERRSTR_LEN];

        snprintf(msg, sizeof(msg), "%s", cli->ctx.errstr);
        xr_ctx_clear(&cli->ctx);
        return xr_fail(&cli->ctx, XR_E_AUDIT_INVALID, NULL,
                       "%s: cannot continue this log: %s", path, msg);
    }

    return XR_OK;
}


typedef struct {
    xr_cli_t           *cli;
    FILE               *f;
    const char         *path;
    xr_digest_e         alg;
    xr_audit_key_t      key;
    xr_audit_head_t     head;
    uint64_t            signed_upto;
    int64_t             now;
    xr_str_t            inst;
    uint64_t            records, checkpoints, first;
    /* an entry other than a checkpoint since the last checkpoint: a
       checkpoint of checkpoints alone would never end */
    int                 dirty;
} xr_ca_writer_t;


/* Seal one entry and write its line; ctx holds the prepared content. */
static int
xr_ca_write(xr_ca_writer_t *w, xr_ctx_t *ctx, const xr_audit_entry_t *e)
{
    char             *line;
    size_t            len;
    xr_audit_prep_t   p;

    if (xr_audit_prepare(ctx, w->alg, e, &p) != XR_OK) {
        return XR_ERROR;
    }

    line = xr_palloc(ctx->pool, xr_audit_line_size(&p));
    if (line == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    if (xr_audit_seal(&p, &w->head, line, xr_audit_line_size(&p), &len)
        != XR_OK)
    {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "audit: sealing failed");
    }

    if (w->first == 0) {
        w->first = w->head.seq;
    }
    w->dirty = e->type != XR_AUDIT_CKPT;

    if (fwrite(line, 1, len, w->f) != len) {
        return xr_fail(ctx, XR_E_IO, NULL, "%s: %s", w->path,
                       strerror(errno));
    }
    return XR_OK;
}


static int
xr_ca_checkpoint(xr_ca_writer_t *w, xr_ctx_t *ctx)
{
    xr_audit_entry_t  e;

    memset(&e, 0, sizeof(e));
    e.type = XR_AUDIT_CKPT;
    e.time_ms = w->now;
    e.tz_min = 480;
    e.inst = w->inst;
    e.u.ckpt.hash_alg = w->alg;
    e.u.ckpt.first = w->signed_upto + 1;
    e.u.ckpt.last = w->head.seq;
    memcpy(e.u.ckpt.head, w->head.hash, XR_AUDIT_HASH_LEN);

    if (xr_audit_ckpt_sign(ctx, &w->key, &e) != XR_OK
        || xr_ca_write(w, ctx, &e) != XR_OK)
    {
        return XR_ERROR;
    }

    w->signed_upto = e.u.ckpt.last;
    w->checkpoints++;
    return XR_OK;
}


/*
 * Ends a step done in a pool of its own (ctx): its error, prefixed with
 * where, goes to cli->ctx, and the pool goes.
 */
static int
xr_ca_step_done(xr_cli_t *cli, xr_ctx_t *ctx, int rc, const char *where)
{
    if (rc != XR_OK) {
        xr_fail(&cli->ctx, ctx->err == XR_E_NONE ? XR_E_INTERNAL : ctx->err,
                NULL, "%s%s", where, ctx->errstr);
    }
    xr_pool_destroy(ctx->pool);
    return rc == XR_OK ? XR_OK : XR_ERROR;
}


static int
xr_ca_append(xr_cli_t *cli, int argc, char **argv)
{
    int                 rc, fd, newline, final_off;
    char               *pos[1], *buf, where[64];
    size_t              len;
    uint64_t            every, v;
    const char         *keyf, *cont, *every_s, *hash, *inst, *time_s, *line;
    const char         *base;
    struct stat         st;
    xr_key_t           *key;
    xr_ctx_t            ctx;
    xr_pool_t          *pool;
    xr_ca_reader_t      r;
    xr_ca_writer_t      w;
    xr_audit_tail_t     t;
    xr_audit_entry_t    e;
    xr_digest_e         alg;
    int                 have_alg;
    xr_audit_reason_e   reason;
    xr_cli_opt_t        opts[] = {
        { "--key", &keyf, NULL },
        { "--continue", &cont, NULL },
        { "--every", &every_s, NULL },
        { "--hash", &hash, NULL },
        { "--inst", &inst, NULL },
        { "--time", &time_s, NULL },
        { "--no-final-checkpoint", NULL, &final_off },
        { NULL, NULL, NULL }
    };

    keyf = cont = every_s = hash = inst = time_s = NULL;
    final_off = 0;
    pos[0] = NULL;
    key = NULL;
    fd = -1;
    memset(&w, 0, sizeof(w));
    memset(&t, 0, sizeof(t));

    rc = xr_cli_parse(cli, argc, argv, opts, pos, 1);
    if (rc == XR_CLI_HELP) {
        return xr_cli_usage_text(cli, xr_ca_append_usage);
    }
    if (rc != XR_OK) {
        return XR_ERROR;
    }

    if (pos[0] == NULL || keyf == NULL) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "append: FILE and --key KEY.pem are required");
    }

    every = 0;
    if (every_s && xr_ca_u64(cli, "--every", every_s, &every) != XR_OK) {
        return XR_ERROR;
    }

    have_alg = 0;
    alg = XR_DIGEST_SM3;
    if (hash) {
        if (xr_audit_hash_by_name(xr_str_from(hash), &alg) != XR_OK) {
            return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                           "--hash: \"%s\" is not sm3 or sha256", hash);
        }
        have_alg = 1;
    }

    w.now = 0;
    if (time_s) {
        if (xr_audit_time_parse(&cli->ctx, time_s, strlen(time_s), &w.now,
                                NULL) != XR_OK)
        {
            return XR_ERROR;
        }
    } else {
        struct timespec  ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        w.now = (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    }

    w.inst = xr_str_from(inst ? inst : "cli");
    w.cli = cli;
    w.path = pos[0];

    buf = xr_palloc(cli->pool, XR_CA_READ_BUF);
    if (buf == NULL) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }

    if (xr_ca_load_key(cli, keyf, &key) != XR_OK) {
        return XR_ERROR;
    }

    rc = XR_ERROR;

    if (!xr_key_is_private(key)) {
        xr_fail(&cli->ctx, XR_E_CONFIG, NULL,
                "%s: a private key is needed to sign", keyf);
        goto done;
    }

    if (xr_audit_key_init(&cli->ctx, &w.key, key) != XR_OK) {
        goto done;
    }

    if (!have_alg) {
        alg = w.key.alg == XR_AUDIT_SM2_SM3 ? XR_DIGEST_SM3
                                            : XR_DIGEST_SHA256;
    }

    fd = open(w.path, O_RDWR | O_CREAT, 0644);
    if (fd < 0) {
        xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", w.path, strerror(errno));
        goto done;
    }

    /* one writer per log: a second one would fork the chain */
    if (flock(fd, LOCK_EX | LOCK_NB) != 0 || fstat(fd, &st) != 0) {
        xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", w.path,
                errno == EWOULDBLOCK ? "another process is writing it"
                                     : strerror(errno));
        goto done;
    }

    base = NULL;

    if (st.st_size > 0) {
        if (cont) {
            xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                    "append: --continue starts a new file, %s is not empty",
                    w.path);
            goto done;
        }
        if (xr_ca_recover(cli, fd, w.path, st.st_size, buf, &t) != XR_OK) {
            goto done;
        }
        if (t.torn && ftruncate(fd, st.st_size - (off_t) t.torn) != 0) {
            xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", w.path,
                    strerror(errno));
            goto done;
        }
        reason = XR_AUDIT_RESTART;

    } else if (cont) {
        int  pfd;

        pfd = open(cont, O_RDONLY);
        if (pfd < 0 || fstat(pfd, &st) != 0) {
            xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", cont,
                    strerror(errno));
            if (pfd >= 0) {
                close(pfd);
            }
            goto done;
        }
        if (xr_ca_recover(cli, pfd, cont, st.st_size, buf, &t) != XR_OK) {
            close(pfd);
            goto done;
        }
        close(pfd);
        if (t.torn) {
            xr_fail(&cli->ctx, XR_E_AUDIT_INVALID, NULL,
                    "%s: its last line is torn: continue it first", cont);
            goto done;
        }
        base = strrchr(cont, '/');
        base = base ? base + 1 : cont;
        reason = XR_AUDIT_ROTATE;

    } else {
        reason = XR_AUDIT_START;
    }

    if (t.head.seq && !have_alg) {
        alg = t.alg;
    }

    w.alg = alg;
    w.head = t.head;
    /*
     * A checkpoint newly covers what follows the last one seen; when the
     * tail read showed none, what follows this restart.
     */
    w.signed_upto = t.signed_upto ? t.signed_upto : t.head.seq;

    w.f = fdopen(fd, "ab");
    if (w.f == NULL) {
        xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", w.path, strerror(errno));
        goto done;
    }
    fd = -1;

    /* the open entry */
    pool = xr_pool_create(0);
    if (pool == NULL) {
        xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
        goto done;
    }
    xr_ctx_init(&ctx, pool);

    memset(&e, 0, sizeof(e));
    e.type = XR_AUDIT_OPEN;
    e.time_ms = w.now;
    e.tz_min = 480;
    e.inst = w.inst;
    e.u.open.hash_alg = alg;
    e.u.open.reason = reason;
    e.u.open.prev_file = xr_str_from(base ? base : "");
    e.u.open.torn = t.torn;

    if (xr_ca_step_done(cli, &ctx, xr_ca_write(&w, &ctx, &e), "") != XR_OK)
    {
        goto done;
    }

    /* the records */
    if (xr_ca_open(cli, &r, "-", buf) != XR_OK) {
        goto done;
    }

    while ((rc = xr_ca_next(cli, &r, &line, &len, &newline)) == 1) {
        if (len == 0) {
            continue;
        }

        pool = xr_pool_create(0);
        if (pool == NULL) {
            rc = xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
            break;
        }
        xr_ctx_init(&ctx, pool);

        rc = xr_ca_record(&ctx, line, len, w.now, w.inst, &e);
        if (rc == XR_OK) {
            rc = xr_ca_write(&w, &ctx, &e);
        }
        if (rc == XR_OK) {
            w.records++;
            if (every && w.records % every == 0) {
                rc = xr_ca_checkpoint(&w, &ctx);
            }
        }

        snprintf(where, sizeof(where), "stdin:%llu: ",
                 (unsigned long long) r.lineno);
        if (xr_ca_step_done(cli, &ctx, rc, where) != XR_OK) {
            rc = XR_ERROR;
            break;
        }
        rc = 1;
    }

    if (rc == XR_ERROR) {
        goto done;
    }

    if (!final_off && w.dirty) {
        pool = xr_pool_create(0);
        if (pool == NULL) {
            xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
            rc = XR_ERROR;
            goto done;
        }
        xr_ctx_init(&ctx, pool);
        if (xr_ca_step_done(cli, &ctx, xr_ca_checkpoint(&w, &ctx), "")
            != XR_OK)
        {
            rc = XR_ERROR;
            goto done;
        }
    }

    /* durable before success is said */
    if (fflush(w.f) != 0 || fsync(fileno(w.f)) != 0) {
        xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s", w.path, strerror(errno));
        rc = XR_ERROR;
        goto done;
    }

    v = w.head.seq;
    rc = xr_cli_out(cli, "appended %llu records and %llu checkpoints to %s: "
                    "seq %llu..%llu, %s chain, %s key\n",
                    (unsigned long long) w.records,
                    (unsigned long long) w.checkpoints, w.path,
                    (unsigned long long) w.first, (unsigned long long) v,
                    xr_audit_hash_name(w.alg), xr_audit_sig_name(w.key.alg));

done:

    if (w.f) {
        fclose(w.f);
    }
    if (fd >= 0) {
        close(fd);
    }
    xr_key_free(key);
    return rc == XR_OK ? XR_OK : XR_ERROR;
}


/* key */

static int
xr_ca_key(xr_cli_t *cli, int argc, char **argv)
{
    int              rc;
    char            *pos[1], hex[XR_AUDIT_HEX_LEN + 1];
    xr_key_t        *key;
    xr_audit_key_t   k;
    xr_cli_opt_t     opts[] = { { NULL, NULL, NULL } };

    pos[0] = NULL;

    rc = xr_cli_parse(cli, argc, argv, opts, pos, 1);
    if (rc == XR_CLI_HELP) {
        return xr_cli_usage_text(cli, xr_ca_key_usage);
    }
    if (rc != XR_OK) {
        return XR_ERROR;
    }

    if (pos[0] == NULL) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "key: KEY.pem is required");
    }

    if (xr_ca_load_key(cli, pos[0], &key) != XR_OK) {
        return XR_ERROR;
    }

    rc = xr_audit_key_init(&cli->ctx, &k, key);
    if (rc == XR_OK) {
        xr_hex(k.id, XR_KEY_ID_LEN, hex);
        hex[XR_AUDIT_HEX_LEN] = '\0';
        rc = xr_cli_out(cli, "key_id %s\nsig_alg %s\n", hex,
                        xr_audit_sig_name(k.alg));
    }
    if (rc == XR_OK) {
        rc = xr_key_public_pem(&cli->ctx, key, &cli->out);
    }

    xr_key_free(key);
    return rc;
}
