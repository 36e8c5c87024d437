
/*
 * The regulators' pull API: the audit files, read while the writer
 * appends to them, streamed to a regulator's client.
 *
 *   xregion_audit_regulator <name> [scope=<prefix>[,<prefix>...]];   http
 *   xregion_audit_pull <identity>;                                    location
 *
 *   GET <location>/records?from=&to=&domain=&txn=&caller=&outcome=
 *                          &origin=&dest=&seq_from=&seq_to=&limit=
 *                          &format=jsonl|csv&types=rec|ckpt|open|all
 *   GET <location>/checkpoints?seq_from=&seq_to=&limit=
 *   GET <location>/pubkey
 *
 * Access.  The connection is TLS, its client certificate verified
 * ($ssl_client_verify is SUCCESS: nginx's own check of
 * SSL_get_verify_result() and the peer certificate, so that OpenSSL stays
 * out of the module), and <identity> names a regulator; otherwise 403.  A
 * regulator with a scope sees the records whose origin or destination is
 * in its provinces, and no open entry: types other than rec are refused.
 * Each pull and each refusal is one log line with the identity and the
 * query, never a record's content.
 *
 * Reading (the file layout is ngx_http_xregion_audit_conf_t's).  The chain's
 * head is read first and is where the answer stops, so a page does not
 * change while the writer goes on; X-Xregion-Audit-Head tells it.  Files
 * are taken in name order, those wholly before seq_from skipped by name,
 * the first one entered by a binary search on the seqs of its lines.  Only
 * lines ending with '\n' are taken.  The filter and the output are the
 * core's (xr_audit_export_line(), as `xregion audit export`); a pull of
 * every type without any other filter passes the lines through as they are
 * (only their seq read), so that a line that does not parse reaches the
 * regulator's verifier instead of stopping the answer.  A line a filtered
 * pull cannot parse ends the pull, logged with its file and offset: the
 * answer is XR-AUDIT-INVALID when nothing was sent yet (the header goes
 * with the first buffer), else it ends without its last chunk, which the
 * client sees as cut.
 *
 * Streaming.  One read buffer and one output buffer per pull, whatever the
 * range: the output buffer is filled, passed to the output filters, and
 * filled again only once nginx has sent all of it; while the client is
 * slow the pull waits for the connection's write event.  A turn reads at
 * most NGX_HTTP_XREGION_PULL_SLICE bytes of files, then lets the worker's
 * other events run (the write event is posted), so that a filter that
 * matches little does not hold the worker.
 *
 * The request's state is this file's module's context (a second module of
 * the shared object, ngx_http_xregion_audit_pull_module, with no directives
 * of its own: the xregion module's context is the exchange's).
 */


#include "ngx_http_xregion_module.h"

#include "xr_audit.h"
#include "xr_crypto.h"


/* the read buffer: a whole line and room to read behind it */
#define NGX_HTTP_XREGION_PULL_READ      (2 * XR_AUDIT_LINE_MAX)
/* the output buffer: a CSV row takes at most twice its line (see fill) */
#define NGX_HTTP_XREGION_PULL_OUT       (2 * XR_AUDIT_LINE_MAX + 1024)
/* file bytes read per turn of the event loop */
#define NGX_HTTP_XREGION_PULL_SLICE     (1024 * 1024)
/* a binary search in a file stops this close to its line */
#define NGX_HTTP_XREGION_PULL_SEEK      65536

#define NGX_HTTP_XREGION_PULL_LIMIT     10000
#define NGX_HTTP_XREGION_PULL_LIMIT_MAX 1000000

#define NGX_HTTP_XREGION_PULL_NAME_LEN  (sizeof("audit-.jsonl") - 1 + 20)

/* the routes */
#define NGX_HTTP_XREGION_PULL_RECORDS      0
#define NGX_HTTP_XREGION_PULL_CHECKPOINTS  1
#define NGX_HTTP_XREGION_PULL_PUBKEY       2

#define NGX_HTTP_XREGION_PULL_TYPES  (XR_AUDIT_REC|XR_AUDIT_CKPT|XR_AUDIT_OPEN)

/* a value quoted in a log line or an error message */
#define NGX_HTTP_XREGION_PULL_QUOTE     64
#define NGX_HTTP_XREGION_PULL_ARGS      512


/* One xregion_audit_regulator (xmcf->regulators). */
typedef struct {
    ngx_str_t                       name;
    xr_str_t                       *scope;      /* region prefixes */
    size_t                          nscope;     /* 0: everything */
    ngx_str_t                       file;
    ngx_uint_t                      line;
} ngx_http_xregion_regulator_t;


/* xregion_audit_pull, per location */
typedef struct {
    ngx_http_complex_value_t       *identity;   /* NULL: not a pull API */
    ngx_int_t                       verify;     /* $ssl_client_verify */
    ngx_http_xregion_loc_conf_t    *xlcf;       /* the same location's */
    ngx_str_t                       file;
    ngx_uint_t                      line;
} ngx_http_xregion_pull_loc_conf_t;


typedef struct {
    ngx_array_t                     locations;  /* the loc confs above */
} ngx_http_xregion_pull_main_conf_t;


typedef struct {
    ngx_log_t                      *log;
    ngx_str_t                       who;        /* quoted, for log lines */
    ngx_str_t                       query;
    ngx_uint_t                      route;

    xr_audit_filter_t               filter;     /* seq_to: the head at most */
    xr_audit_format_e               format;
    uint64_t                        limit;
    uint64_t                        head;
    uint64_t                        count;      /* entries answered */
    uint64_t                        last_seq;

    unsigned                        raw:1;      /* lines as they are */
    unsigned                        csv_header:1;
    unsigned                        pending:1;  /* out is being sent */
    unsigned                        last:1;     /* the last buffer went */
    unsigned                        eof:1;      /* of the current file */
    unsigned                        failed:1;   /* cut short by us */
    xr_err_e                        fail_err;   /* and why */

    /* the files: first seqs in chain order; file is the current one */
    ngx_str_t                       dir;
    uint64_t                       *files;
    ngx_uint_t                      nfiles;
    ngx_uint_t                      file;
    ngx_file_t                      src;        /* fd NGX_INVALID_FILE: none
                                                   open */
    u_char                         *path;
    off_t                           offset;     /* next read */
    size_t                          slice;      /* read this turn */

    u_char                         *rb;         /* PULL_READ bytes */
    size_t                          rb_pos;
    size_t                          rb_last;

    ngx_buf_t                      *out;
    xr_pool_t                      *pool;
    xr_ctx_t                        xr;
    char                           *scratch;
    xr_audit_entry_t               *entry;
} ngx_http_xregion_pull_ctx_t;


static void *ngx_http_xregion_pull_create_main_conf(ngx_conf_t *cf);
static void *ngx_http_xregion_pull_create_loc_conf(ngx_conf_t *cf);

static ngx_int_t ngx_http_xregion_pull_handler(ngx_http_request_t *r);
static ngx_http_xregion_regulator_t *ngx_http_xregion_pull_access(
    ngx_http_request_t *r, ngx_http_xregion_pull_loc_conf_t *plcf,
    ngx_str_t *who, ngx_int_t *rc);
static ngx_int_t ngx_http_xregion_pull_route(ngx_http_request_t *r);
static ngx_int_t ngx_http_xregion_pull_args(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx, u_char *err, size_t size);
static ngx_int_t ngx_http_xregion_pull_arg(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx, ngx_str_t *name, ngx_str_t *value,
    u_char *err, size_t size);
static ngx_int_t ngx_http_xregion_pull_u64(ngx_str_t *value, uint64_t *n);
static ngx_int_t ngx_http_xregion_pull_prefix(ngx_str_t *value);
static ngx_int_t ngx_http_xregion_pull_pubkey(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx);
static ngx_int_t ngx_http_xregion_pull_files(ngx_http_xregion_pull_ctx_t *ctx,
    ngx_pool_t *pool);
static ngx_int_t ngx_http_xregion_pull_start(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx);
static void ngx_http_xregion_pull_write(ngx_http_request_t *r);
static ngx_int_t ngx_http_xregion_pull_wait(ngx_http_request_t *r);
static ngx_int_t ngx_http_xregion_pull_send(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx);
static ngx_int_t ngx_http_xregion_pull_fill(ngx_http_xregion_pull_ctx_t *ctx);
static ngx_int_t ngx_http_xregion_pull_line(ngx_http_xregion_pull_ctx_t *ctx,
    u_char **line, size_t *len);
static ngx_int_t ngx_http_xregion_pull_open(ngx_http_xregion_pull_ctx_t *ctx);
static off_t ngx_http_xregion_pull_seek(ngx_http_xregion_pull_ctx_t *ctx,
    uint64_t want);
static void ngx_http_xregion_pull_corrupt(ngx_http_xregion_pull_ctx_t *ctx,
    off_t at, const char *why);
static void ngx_http_xregion_pull_cleanup(void *data);
static ngx_int_t ngx_http_xregion_pull_error(ngx_http_request_t *r,
    xr_err_e err, const char *fmt, ...);
static ngx_int_t ngx_http_xregion_pull_header(ngx_http_request_t *r,
    const char *name, ngx_str_t *value);
static ngx_str_t ngx_http_xregion_pull_quote(ngx_pool_t *pool, u_char *data,
    size_t len, size_t max);
static int ngx_libc_cdecl ngx_http_xregion_pull_cmp(const void *one,
    const void *two);


static ngx_http_module_t  ngx_http_xregion_audit_pull_module_ctx = {
    NULL,                                  /* preconfiguration */
    NULL,                                  /* postconfiguration */

    ngx_http_xregion_pull_create_main_conf, /* create main configuration */
    NULL,                                  /* init main configuration */

    NULL,                                  /* create server configuration */
    NULL,                                  /* merge server configuration */

    ngx_http_xregion_pull_create_loc_conf, /* create location configuration */
    NULL                                   /* merge location configuration */
};


/*
 * Its directives are the xregion module's (ngx_http_xregion_module.c);
 * this module holds what they configure and the requests' context.
 */

ngx_module_t  ngx_http_xregion_audit_pull_module = {
    NGX_MODULE_V1,
    &ngx_http_xregion_audit_pull_module_ctx, /* module context */
    NULL,                                  /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    NULL,                                  /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    NULL,                                  /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_str_t  ngx_http_xregion_pull_verify_var =
    ngx_string("ssl_client_verify");

static ngx_str_t  ngx_http_xregion_pull_routes[] = {
    ngx_string("records"),
    ngx_string("checkpoints"),
    ngx_string("pubkey"),
    ngx_null_string
};

static ngx_str_t  ngx_http_xregion_pull_jsonl =
    ngx_string("application/x-ndjson; charset=utf-8");
static ngx_str_t  ngx_http_xregion_pull_csv =
    ngx_string("text/csv; charset=utf-8; header=present");
static ngx_str_t  ngx_http_xregion_pull_no_store = ngx_string("no-store");


/* Configuration */

static void *
ngx_http_xregion_pull_create_main_conf(ngx_conf_t *cf)
{
    ngx_http_xregion_pull_main_conf_t  *pmcf;

    pmcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_pull_main_conf_t));
    if (pmcf == NULL) {
        return NULL;
    }

    if (ngx_array_init(&pmcf->locations, cf->pool, 2,
                       sizeof(ngx_http_xregion_pull_loc_conf_t *))
        != NGX_OK)
    {
        return NULL;
    }

    return pmcf;
}


static void *
ngx_http_xregion_pull_create_loc_conf(ngx_conf_t *cf)
{
    ngx_http_xregion_pull_loc_conf_t  *plcf;

    plcf = ngx_pcalloc(cf->pool, sizeof(ngx_http_xregion_pull_loc_conf_t));
    if (plcf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     plcf->identity = NULL;
     *     plcf->xlcf = NULL;
     *     plcf->file = { 0, NULL };
     *     plcf->line = 0;
     */

    plcf->verify = NGX_ERROR;

    return plcf;
}


/* xregion_audit_regulator <name> [scope=<prefix>[,<prefix>...]]; */

char *
ngx_http_xregion_audit_regulator_directive(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    u_char                        *p, *end, *start;
    size_t                         n;
    ngx_str_t                     *value, s;
    ngx_uint_t                     i;
    ngx_http_xregion_regulator_t  *reg;

    value = cf->args->elts;

    if (value[1].len == 0 || value[1].len > NGX_HTTP_XREGION_PULL_QUOTE) {
        goto bad_name;
    }

    for (p = value[1].data; p < value[1].data + value[1].len; p++) {
        if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\') {
            goto bad_name;
        }
    }

    if (xmcf->regulators == NULL) {
        xmcf->regulators = ngx_array_create(cf->pool, 4,
                                        sizeof(ngx_http_xregion_regulator_t));
        if (xmcf->regulators == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    reg = xmcf->regulators->elts;

    for (i = 0; i < xmcf->regulators->nelts; i++) {
        if (reg[i].name.len == value[1].len
            && ngx_strncmp(reg[i].name.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "duplicate regulator \"%V\", first in %V:%ui",
                               &value[1], &reg[i].file, reg[i].line);
            return NGX_CONF_ERROR;
        }
    }

    reg = ngx_array_push(xmcf->regulators);
    if (reg == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(reg, sizeof(ngx_http_xregion_regulator_t));

    reg->name = value[1];
    reg->file = cf->conf_file->file.name;
    reg->line = cf->conf_file->line;

    if (cf->args->nelts == 2) {
        return NGX_CONF_OK;
    }

    if (value[2].len <= 6 || ngx_strncmp(value[2].data, "scope=", 6) != 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\", expected "
                           "\"scope=<prefix>[,<prefix>...]\"", &value[2]);
        return NGX_CONF_ERROR;
    }

    start = value[2].data + 6;
    end = value[2].data + value[2].len;

    for (n = 1, p = start; p < end; p++) {
        n += (*p == ',');
    }

    reg->scope = ngx_palloc(cf->pool, n * sizeof(xr_str_t));
    if (reg->scope == NULL) {
        return NGX_CONF_ERROR;
    }

    for (p = start; reg->nscope < n; p++) {
        s.data = p;

        while (p < end && *p != ',') {
            p++;
        }

        s.len = p - s.data;

        if (ngx_http_xregion_pull_prefix(&s) != NGX_OK) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid region prefix \"%V\" in \"%V\": 1 "
                               "to 6 digits of a GB/T 2260 code", &s,
                               &value[2]);
            return NGX_CONF_ERROR;
        }

        reg->scope[reg->nscope].data = (const char *) s.data;
        reg->scope[reg->nscope].len = s.len;
        reg->nscope++;
    }

    return NGX_CONF_OK;

bad_name:

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "invalid regulator name \"%V\": 1 to %d printable "
                       "characters without spaces or quotes", &value[1],
                       NGX_HTTP_XREGION_PULL_QUOTE);
    return NGX_CONF_ERROR;
}


/* xregion_audit_pull <identity>; */

char *
ngx_http_xregion_audit_pull_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_loc_conf_t *xlcf = conf;

    ngx_str_t                           *value;
    ngx_http_core_loc_conf_t            *clcf;
    ngx_http_compile_complex_value_t     ccv;
    ngx_http_xregion_pull_loc_conf_t    *plcf, **loc;
    ngx_http_xregion_pull_main_conf_t   *pmcf;

    plcf = ngx_http_conf_get_module_loc_conf(cf,
                                        ngx_http_xregion_audit_pull_module);

    if (plcf->identity) {
        return "is duplicate";
    }

    value = cf->args->elts;

    if (value[1].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "empty regulator identity");
        return NGX_CONF_ERROR;
    }

    plcf->identity = ngx_palloc(cf->pool, sizeof(ngx_http_complex_value_t));
    if (plcf->identity == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(&ccv, sizeof(ngx_http_compile_complex_value_t));

    ccv.cf = cf;
    ccv.value = &value[1];
    ccv.complex_value = plcf->identity;

    if (ngx_http_compile_complex_value(&ccv) != NGX_OK) {
        return NGX_CONF_ERROR;
    }

    /* an nginx without its SSL module fails here: no pull API without TLS */

    plcf->verify = ngx_http_get_variable_index(cf,
                                           &ngx_http_xregion_pull_verify_var);
    if (plcf->verify == NGX_ERROR) {
        return NGX_CONF_ERROR;
    }

    plcf->xlcf = xlcf;
    plcf->file = cf->conf_file->file.name;
    plcf->line = cf->conf_file->line;

    clcf = ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module);
    clcf->handler = ngx_http_xregion_pull_handler;

    pmcf = ngx_http_conf_get_module_main_conf(cf,
                                        ngx_http_xregion_audit_pull_module);

    loc = ngx_array_push(&pmcf->locations);
    if (loc == NULL) {
        return NGX_CONF_ERROR;
    }

    *loc = plcf;

    return NGX_CONF_OK;
}


/*
 * Postconfiguration, after the audit writer's: a pull location needs the
 * audit log and a regulator, a static identity must name one, and the
 * location cannot be an xregion endpoint too.
 */

ngx_int_t
ngx_http_xregion_audit_pull_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_uint_t                           i, j, n;
    ngx_http_xregion_regulator_t        *reg;
    ngx_http_xregion_pull_loc_conf_t   **loc, *plcf;
    ngx_http_xregion_pull_main_conf_t   *pmcf;

    pmcf = ngx_http_conf_get_module_main_conf(cf,
                                        ngx_http_xregion_audit_pull_module);

    reg = xmcf->regulators ? xmcf->regulators->elts : NULL;
    n = xmcf->regulators ? xmcf->regulators->nelts : 0;

    loc = pmcf->locations.elts;

    for (i = 0; i < pmcf->locations.nelts; i++) {
        plcf = loc[i];

        if (xmcf->audit == NULL || xmcf->audit->writer == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_audit_pull\" needs \"xregion_audit\" "
                          "(and \"xregion_config\") in the http block in "
                          "%V:%ui", &plcf->file, plcf->line);
            return NGX_ERROR;
        }

        if (n == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_audit_pull\" in %V:%ui: no "
                          "\"xregion_audit_regulator\" is configured, every "
                          "pull would be refused", &plcf->file, plcf->line);
            return NGX_ERROR;
        }

        if (plcf->xlcf->domain != NGX_CONF_UNSET_UINT) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_audit_pull\" and \"xregion\" cannot be "
                          "in the same location in %V:%ui",
                          &plcf->file, plcf->line);
            return NGX_ERROR;
        }

        if (plcf->identity->lengths) {
            continue;
        }

        for (j = 0; j < n; j++) {
            if (reg[j].name.len == plcf->identity->value.len
                && ngx_strncmp(reg[j].name.data, plcf->identity->value.data,
                               reg[j].name.len)
                   == 0)
            {
                break;
            }
        }

        if (j == n) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_audit_pull\" names \"%V\", which is no "
                          "xregion_audit_regulator, in %V:%ui",
                          &plcf->identity->value, &plcf->file, plcf->line);
            return NGX_ERROR;
        }
    }

    if (n && (xmcf->audit == NULL || xmcf->audit->writer == NULL)) {
        ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                      "\"xregion_audit_regulator\" needs \"xregion_audit\" "
                      "(and \"xregion_config\") in the http block in %V:%ui",
                      &reg[0].file, reg[0].line);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/* Requests */

static ngx_int_t
ngx_http_xregion_pull_handler(ngx_http_request_t *r)
{
    u_char                             *p, err[NGX_MAX_ERROR_STR];
    ngx_int_t                           rc;
    ngx_str_t                           who, head;
    ngx_pool_cleanup_t                 *cln;
    ngx_http_xregion_pull_ctx_t        *ctx;
    ngx_http_xregion_regulator_t       *reg;
    ngx_http_xregion_main_conf_t       *xmcf;
    ngx_http_xregion_pull_loc_conf_t   *plcf;

    rc = ngx_http_discard_request_body(r);
    if (rc != NGX_OK) {
        return rc;
    }

    plcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_audit_pull_module);
    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    reg = ngx_http_xregion_pull_access(r, plcf, &who, &rc);

    if (reg == NULL) {
        return rc;                          /* refused and answered */
    }

    if (!(r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD))) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "xregion audit pull refused: regulator \"%V\": "
                      "method %V", &who, &r->method_name);

        return ngx_http_xregion_pull_error(r, XR_E_METHOD_NOT_ALLOWED,
                                           "the pull API takes GET and HEAD "
                                           "only");
    }

    ctx = ngx_pcalloc(r->pool, sizeof(ngx_http_xregion_pull_ctx_t));
    if (ctx == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ctx->log = r->connection->log;
    ctx->who = who;
    ctx->query = ngx_http_xregion_pull_quote(r->pool, r->args.data,
                                             r->args.len,
                                             NGX_HTTP_XREGION_PULL_ARGS);
    ctx->src.fd = NGX_INVALID_FILE;
    ctx->src.log = r->connection->log;
    ctx->dir = xmcf->audit->dir;
    ctx->limit = NGX_HTTP_XREGION_PULL_LIMIT;
    ctx->format = XR_AUDIT_JSONL;

    xr_audit_filter_init(&ctx->filter);

    if (reg->nscope) {
        ctx->filter.scope = reg->scope;
        ctx->filter.nscope = reg->nscope;
    }

    rc = ngx_http_xregion_pull_route(r);

    if (rc == NGX_DECLINED) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "xregion audit pull refused: regulator \"%V\": no such "
                      "resource, query \"%V\"", &who, &ctx->query);

        return ngx_http_xregion_pull_error(r, XR_E_NOT_FOUND,
                                           "no such resource: use records, "
                                           "checkpoints or pubkey");
    }

    ctx->route = rc;

    if (ngx_http_xregion_pull_args(r, ctx, err, sizeof(err)) != NGX_OK) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "xregion audit pull refused: regulator \"%V\": %s, "
                      "%V query \"%V\"", &who, err,
                      &ngx_http_xregion_pull_routes[ctx->route], &ctx->query);

        return ngx_http_xregion_pull_error(r, XR_E_USAGE, "%s", err);
    }

    if (ctx->route == NGX_HTTP_XREGION_PULL_CHECKPOINTS) {
        ctx->filter.types = XR_AUDIT_CKPT;

    } else if (reg->nscope && (ctx->filter.types & ~XR_AUDIT_REC)) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "xregion audit pull refused: regulator \"%V\" has a "
                      "scope and asked for other entries than records, "
                      "query \"%V\"", &who, &ctx->query);

        return ngx_http_xregion_pull_error(r, XR_E_FORBIDDEN,
                   "regulator \"%V\" sees the records of its provinces "
                   "only: leave out types=, use checkpoints for the "
                   "checkpoints", &who);
    }

    ngx_http_set_ctx(r, ctx, ngx_http_xregion_audit_pull_module);

    if (ctx->route == NGX_HTTP_XREGION_PULL_PUBKEY) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "xregion audit pull: regulator \"%V\": pubkey", &who);

        return ngx_http_xregion_pull_pubkey(r, ctx);
    }

    /* the chain's head first: the answer stops there */

    ctx->head = ngx_http_xregion_audit_head(xmcf);

    if (ctx->filter.seq_to > ctx->head) {
        ctx->filter.seq_to = ctx->head;
    }

    ctx->raw = (ctx->route == NGX_HTTP_XREGION_PULL_RECORDS
                && ctx->format == XR_AUDIT_JSONL
                && ctx->filter.types == NGX_HTTP_XREGION_PULL_TYPES
                && ctx->filter.nscope == 0
                && ctx->filter.from_ms == INT64_MIN
                && ctx->filter.to_ms == INT64_MAX
                && ctx->filter.domain.len == 0 && ctx->filter.txn.len == 0
                && ctx->filter.caller.len == 0
                && ctx->filter.outcome.len == 0
                && ctx->filter.origin.len == 0 && ctx->filter.dest.len == 0);

    cln = ngx_pool_cleanup_add(r->pool, 0);
    if (cln == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    cln->handler = ngx_http_xregion_pull_cleanup;
    cln->data = ctx;

    if (ngx_http_xregion_pull_files(ctx, r->pool) != NGX_OK) {
        ctx->failed = 1;
        ctx->last = 1;
        return ngx_http_xregion_pull_error(r, XR_E_IO,
                                           "the audit log cannot be read");
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "xregion audit pull: regulator \"%V\": %V \"%V\", head %uL",
                  &who, &ngx_http_xregion_pull_routes[ctx->route],
                  &ctx->query, ctx->head);

    r->headers_out.status = NGX_HTTP_OK;
    r->headers_out.content_type = ctx->format == XR_AUDIT_CSV
                                  ? ngx_http_xregion_pull_csv
                                  : ngx_http_xregion_pull_jsonl;
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    ngx_http_clear_content_length(r);
    ngx_http_clear_accept_ranges(r);

    p = ngx_pnalloc(r->pool, NGX_INT64_LEN);
    if (p == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    head.data = p;
    head.len = ngx_sprintf(p, "%uL", ctx->head) - p;

    if (ngx_http_xregion_pull_header(r, "X-Xregion-Audit-Head", &head)
        != NGX_OK
        || ngx_http_xregion_pull_header(r, "Cache-Control",
                                        &ngx_http_xregion_pull_no_store)
           != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    /*
     * The header goes with the first buffer, so that a log that cannot be
     * read is still an error answer when nothing was sent yet.
     */

    if (r->method == NGX_HTTP_HEAD) {
        ctx->last = 1;
        return ngx_http_send_header(r);
    }

    return ngx_http_xregion_pull_start(r, ctx);
}


/*
 * The regulator over TLS with a verified certificate, or NULL: the
 * refusal is logged and answered, *rc is the answer's.
 */

static ngx_http_xregion_regulator_t *
ngx_http_xregion_pull_access(ngx_http_request_t *r,
    ngx_http_xregion_pull_loc_conf_t *plcf, ngx_str_t *who, ngx_int_t *rc)
{
    ngx_str_t                           id, verify;
    ngx_uint_t                          i;
    ngx_http_variable_value_t          *vv;
    ngx_http_xregion_regulator_t       *regs;
    ngx_http_xregion_main_conf_t       *xmcf;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    if (ngx_http_complex_value(r, plcf->identity, &id) != NGX_OK) {
        *rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
        return NULL;
    }

    *who = ngx_http_xregion_pull_quote(r->pool, id.data, id.len,
                                       NGX_HTTP_XREGION_PULL_QUOTE);

    if (r->connection->ssl == NULL) {
        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "xregion audit pull refused: not over TLS, "
                      "identity \"%V\"", who);

        *rc = ngx_http_xregion_pull_error(r, XR_E_FORBIDDEN,
                                          "the pull API is served over TLS "
                                          "with a client certificate only");
        return NULL;
    }

    vv = ngx_http_get_indexed_variable(r, plcf->verify);

    if (vv == NULL || vv->not_found || vv->len != sizeof("SUCCESS") - 1
        || ngx_strncmp(vv->data, "SUCCESS", sizeof("SUCCESS") - 1) != 0)
    {
        ngx_str_set(&verify, "NONE");

        if (vv && !vv->not_found) {
            verify = ngx_http_xregion_pull_quote(r->pool, vv->data, vv->len,
                                                 NGX_HTTP_XREGION_PULL_QUOTE);
        }

        ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                      "xregion audit pull refused: no verified client "
                      "certificate (%V), identity \"%V\"", &verify, who);

        *rc = ngx_http_xregion_pull_error(r, XR_E_FORBIDDEN,
                                          "a regulator's client certificate "
                                          "is required (%V)", &verify);
        return NULL;
    }

    regs = xmcf->regulators->elts;

    for (i = 0; i < xmcf->regulators->nelts; i++) {
        if (regs[i].name.len == id.len
            && ngx_strncmp(regs[i].name.data, id.data, id.len) == 0)
        {
            return &regs[i];
        }
    }

    ngx_log_error(NGX_LOG_NOTICE, r->connection->log, 0,
                  "xregion audit pull refused: identity \"%V\" is not a "
                  "regulator", who);

    *rc = ngx_http_xregion_pull_error(r, XR_E_FORBIDDEN,
                                      "\"%V\" is not a regulator of this "
                                      "gateway", who);
    return NULL;
}


/* The route: the URI's last segment.  NGX_DECLINED: none of them. */

static ngx_int_t
ngx_http_xregion_pull_route(ngx_http_request_t *r)
{
    u_char      *p, *end;
    ngx_str_t    seg;
    ngx_uint_t   i;

    end = r->uri.data + r->uri.len;
    p = end;

    while (p > r->uri.data && p[-1] != '/') {
        p--;
    }

    seg.data = p;
    seg.len = end - p;

    for (i = 0; ngx_http_xregion_pull_routes[i].len; i++) {
        if (seg.len == ngx_http_xregion_pull_routes[i].len
            && ngx_strncmp(seg.data, ngx_http_xregion_pull_routes[i].data,
                           seg.len)
               == 0)
        {
            return i;
        }
    }

    return NGX_DECLINED;
}


/* The query into ctx; NGX_ERROR with err saying which parameter and why. */

static ngx_int_t
ngx_http_xregion_pull_args(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx, u_char *err, size_t size)
{
    u_char      *p, *end, *amp, *eq, *dst, *src;
    ngx_str_t    name, value, seen[16];
    ngx_uint_t   i, nseen;

    p = r->args.data;
    end = r->args.data + r->args.len;
    nseen = 0;

    while (p < end) {
        amp = ngx_strlchr(p, end, '&');
        if (amp == NULL) {
            amp = end;
        }

        if (amp == p) {
            p++;
            continue;
        }

        eq = ngx_strlchr(p, amp, '=');

        name.data = p;
        name.len = (eq ? eq : amp) - p;

        value.len = 0;
        value.data = NULL;

        if (eq && amp - eq > 1) {
            value.data = ngx_pnalloc(r->pool, amp - eq - 1);
            if (value.data == NULL) {
                ngx_cpystrn(err, (u_char *) "out of memory", size);
                return NGX_ERROR;
            }

            src = eq + 1;
            dst = value.data;
            ngx_unescape_uri(&dst, &src, amp - eq - 1, 0);
            value.len = dst - value.data;
        }

        for (i = 0; i < nseen; i++) {
            if (seen[i].len == name.len
                && ngx_strncmp(seen[i].data, name.data, name.len) == 0)
            {
                ngx_str_t  q = ngx_http_xregion_pull_quote(r->pool, name.data,
                                   name.len, NGX_HTTP_XREGION_PULL_QUOTE);

                ngx_snprintf(err, size, "parameter \"%V\" is given twice%Z",
                             &q);
                return NGX_ERROR;
            }
        }

        if (ngx_http_xregion_pull_arg(r, ctx, &name, &value, err, size)
            != NGX_OK)
        {
            return NGX_ERROR;
        }

        /* every known name is shorter: the list cannot overflow */

        if (nseen < sizeof(seen) / sizeof(seen[0])) {
            seen[nseen++] = name;
        }

        p = amp + 1;
    }

    if (ctx->format == XR_AUDIT_CSV
        && ctx->filter.types != XR_AUDIT_REC)
    {
        ngx_snprintf(err, size, "parameter \"format\": csv has records "
                     "only, leave out \"types\"%Z");
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * One parameter.  An empty value is as if the parameter was not given (a
 * form's empty field); an unknown name, or one the route does not take,
 * is an error: a filter misspelt must not widen the answer.
 */

static ngx_int_t
ngx_http_xregion_pull_arg(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx, ngx_str_t *name, ngx_str_t *value,
    u_char *err, size_t size)
{
    u_char             *p, *end;
    int64_t             ms;
    uint64_t            n;
    xr_ctx_t            xctx;
    xr_pool_t          *xpool;
    ngx_str_t           q, *s;
    ngx_uint_t          i, types, records;
    xr_str_t           *dst;
    xr_audit_filter_t  *f;

    f = &ctx->filter;
    records = (ctx->route == NGX_HTTP_XREGION_PULL_RECORDS);

#define ngx_http_xregion_pull_is(s)                                           \
    (name->len == sizeof(s) - 1 && ngx_strncmp(name->data, s, name->len) == 0)

    if (ngx_http_xregion_pull_is("seq_from")
        || ngx_http_xregion_pull_is("seq_to")
        || ngx_http_xregion_pull_is("limit"))
    {
        if (ctx->route == NGX_HTTP_XREGION_PULL_PUBKEY) {
            goto unknown;
        }

        if (value->len == 0) {
            return NGX_OK;
        }

        if (ngx_http_xregion_pull_u64(value, &n) != NGX_OK) {
            goto invalid;
        }

        if (name->data[0] == 'l') {
            if (n == 0 || n > NGX_HTTP_XREGION_PULL_LIMIT_MAX) {
                ngx_snprintf(err, size, "parameter \"limit\": 1 to %d "
                             "entries%Z", NGX_HTTP_XREGION_PULL_LIMIT_MAX);
                return NGX_ERROR;
            }

            ctx->limit = n;

        } else if (name->len == sizeof("seq_to") - 1) {
            f->seq_to = n;

        } else {
            f->seq_from = n;
        }

        return NGX_OK;
    }

    if (!records) {
        goto unknown;
    }

    if (ngx_http_xregion_pull_is("from") || ngx_http_xregion_pull_is("to")) {
        if (value->len == 0) {
            return NGX_OK;
        }

        xpool = ngx_http_xregion_pool_create(r->pool);
        if (xpool == NULL) {
            ngx_cpystrn(err, (u_char *) "out of memory", size);
            return NGX_ERROR;
        }

        xr_ctx_init(&xctx, xpool);

        if (xr_audit_time_parse(&xctx, (const char *) value->data, value->len,
                                &ms, NULL)
            != XR_OK)
        {
            ngx_snprintf(err, size, "parameter \"%V\": %s%Z", name,
                         xctx.errstr);
            return NGX_ERROR;
        }

        if (name->len == 2) {
            f->to_ms = ms;
        } else {
            f->from_ms = ms;
        }

        return NGX_OK;
    }

    if (ngx_http_xregion_pull_is("format")) {
        if (value->len == 0) {
            return NGX_OK;
        }

        if (value->len == 5 && ngx_strncmp(value->data, "jsonl", 5) == 0) {
            ctx->format = XR_AUDIT_JSONL;
            return NGX_OK;
        }

        if (value->len == 3 && ngx_strncmp(value->data, "csv", 3) == 0) {
            ctx->format = XR_AUDIT_CSV;
            return NGX_OK;
        }

        goto invalid;
    }

    if (ngx_http_xregion_pull_is("types")) {
        if (value->len == 0) {
            return NGX_OK;
        }

        types = 0;
        p = value->data;
        end = value->data + value->len;

        while (p <= end) {
            q.data = p;

            while (p < end && *p != ',') {
                p++;
            }

            q.len = p - q.data;
            p++;

            if (q.len == 3 && ngx_strncmp(q.data, "rec", 3) == 0) {
                types |= XR_AUDIT_REC;

            } else if (q.len == 4 && ngx_strncmp(q.data, "ckpt", 4) == 0) {
                types |= XR_AUDIT_CKPT;

            } else if (q.len == 4 && ngx_strncmp(q.data, "open", 4) == 0) {
                types |= XR_AUDIT_OPEN;

            } else if (q.len == 3 && ngx_strncmp(q.data, "all", 3) == 0) {
                types |= NGX_HTTP_XREGION_PULL_TYPES;

            } else {
                goto invalid;
            }
        }

        f->types = types;
        return NGX_OK;
    }

    if (ngx_http_xregion_pull_is("origin")
        || ngx_http_xregion_pull_is("dest"))
    {
        if (value->len == 0) {
            return NGX_OK;
        }

        if (ngx_http_xregion_pull_prefix(value) != NGX_OK) {
            ngx_snprintf(err, size, "parameter \"%V\": 1 to 6 digits of a "
                         "region code%Z", name);
            return NGX_ERROR;
        }

        dst = (name->data[0] == 'o') ? &f->origin : &f->dest;
        dst->data = (const char *) value->data;
        dst->len = value->len;
        return NGX_OK;
    }

    if (ngx_http_xregion_pull_is("domain")) {
        if (value->len == 0) {
            return NGX_OK;
        }

        if (ngx_http_xregion_domain(value) == NGX_ERROR) {
            ngx_snprintf(err, size, "parameter \"domain\": medical, transit "
                         "or gov%Z");
            return NGX_ERROR;
        }

        f->domain.data = (const char *) value->data;
        f->domain.len = value->len;
        return NGX_OK;
    }

    if (ngx_http_xregion_pull_is("outcome")) {
        if (value->len == 0) {
            return NGX_OK;
        }

        for (s = ngx_http_xregion_outcomes; s->len; s++) {
            if (s->len == value->len
                && ngx_strncmp(s->data, value->data, s->len) == 0)
            {
                break;
            }
        }

        if (s->len == 0) {
            ngx_snprintf(err, size, "parameter \"outcome\": ok, cached, "
                         "replayed, biz_error, rejected or failed%Z");
            return NGX_ERROR;
        }

        f->outcome.data = (const char *) value->data;
        f->outcome.len = value->len;
        return NGX_OK;
    }

    if (ngx_http_xregion_pull_is("txn") || ngx_http_xregion_pull_is("caller"))
    {
        if (value->len == 0) {
            return NGX_OK;
        }

        if (value->len > XR_AUDIT_VALUE_MAX) {
            goto invalid;
        }

        for (i = 0; i < value->len; i++) {
            if (value->data[i] <= 0x20 || value->data[i] >= 0x7f) {
                goto invalid;
            }
        }

        dst = (name->data[0] == 't') ? &f->txn : &f->caller;
        dst->data = (const char *) value->data;
        dst->len = value->len;
        return NGX_OK;
    }

#undef ngx_http_xregion_pull_is

unknown:

    q = ngx_http_xregion_pull_quote(r->pool, name->data, name->len,
                                    NGX_HTTP_XREGION_PULL_QUOTE);

    ngx_snprintf(err, size, "unknown parameter \"%V\" for %V%Z", &q,
                 &ngx_http_xregion_pull_routes[ctx->route]);
    return NGX_ERROR;

invalid:

    q = ngx_http_xregion_pull_quote(r->pool, value->data, value->len,
                                    NGX_HTTP_XREGION_PULL_QUOTE);

    ngx_snprintf(err, size, "parameter \"%V\": invalid value \"%V\"%Z",
                 name, &q);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_xregion_pull_u64(ngx_str_t *value, uint64_t *n)
{
    size_t    i;
    uint64_t  v;

    if (value->len == 0 || value->len > 20) {
        return NGX_ERROR;
    }

    v = 0;

    for (i = 0; i < value->len; i++) {
        if (value->data[i] < '0' || value->data[i] > '9'
            || v > (UINT64_MAX - (value->data[i] - '0')) / 10)
        {
            return NGX_ERROR;
        }

        v = v * 10 + (value->data[i] - '0');
    }

    *n = v;

    return NGX_OK;
}


/* 1 to 6 digits: the start of a GB/T 2260 code */

static ngx_int_t
ngx_http_xregion_pull_prefix(ngx_str_t *value)
{
    size_t  i;

    if (value->len == 0 || value->len > 6) {
        return NGX_ERROR;
    }

    for (i = 0; i < value->len; i++) {
        if (value->data[i] < '0' || value->data[i] > '9') {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/* The public half of the key that signs the checkpoints, and its id. */

static ngx_int_t
ngx_http_xregion_pull_pubkey(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx)
{
    u_char                         id[XR_KEY_ID_LEN];
    xr_buf_t                       pem;
    xr_ctx_t                       xctx;
    ngx_buf_t                     *b;
    ngx_int_t                      rc;
    ngx_str_t                      hex;
    ngx_chain_t                    out;
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    ctx->pool = ngx_http_xregion_pool_create(r->pool);
    if (ctx->pool == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    xr_ctx_init(&xctx, ctx->pool);
    xr_buf_init(&pem, ctx->pool, 0);

    hex.len = 2 * XR_KEY_ID_LEN;
    hex.data = ngx_pnalloc(r->pool, hex.len);
    if (hex.data == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (xr_key_public_pem(&xctx, xmcf->audit->key, &pem) != XR_OK
        || pem.failed
        || xr_key_id(&xctx, xmcf->audit->key, id) != XR_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "xregion audit pull: the audit key's public half: %s",
                      xctx.errstr);
        return ngx_http_xregion_pull_error(r, XR_E_INTERNAL,
                                           "the audit key cannot be told");
    }

    xr_hex(id, XR_KEY_ID_LEN, (char *) hex.data);

    if (ngx_http_xregion_pull_header(r, "X-Xregion-Key-Id", &hex) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = NGX_HTTP_OK;
    ngx_str_set(&r->headers_out.content_type, "application/x-pem-file");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = pem.len;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = (u_char *) pem.data;
    b->last = b->pos + pem.len;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


/*
 * The log files' first seqs, in chain order, and where to begin: the
 * last file that starts at or before seq_from.
 */

static ngx_int_t
ngx_http_xregion_pull_files(ngx_http_xregion_pull_ctx_t *ctx,
    ngx_pool_t *pool)
{
    u_char       *n;
    uint64_t      seq, *files;
    ngx_dir_t     dir;
    ngx_uint_t    i, cap, count;

    if (ngx_open_dir(&ctx->dir, &dir) == NGX_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ctx->log, ngx_errno,
                      ngx_open_dir_n " \"%V\" failed (xregion audit pull)",
                      &ctx->dir);
        return NGX_ERROR;
    }

    cap = 64;
    count = 0;

    files = ngx_palloc(pool, cap * sizeof(uint64_t));
    if (files == NULL) {
        ngx_close_dir(&dir);
        return NGX_ERROR;
    }

    for ( ;; ) {
        ngx_set_errno(0);

        if (ngx_read_dir(&dir) == NGX_ERROR) {
            break;
        }

        n = ngx_de_name(&dir);

        if (ngx_de_namelen(&dir) != NGX_HTTP_XREGION_PULL_NAME_LEN
            || ngx_strncmp(n, "audit-", 6) != 0
            || ngx_strncmp(n + 26, ".jsonl", 6) != 0)
        {
            continue;
        }

        seq = 0;

        for (i = 6; i < 26; i++) {
            if (n[i] < '0' || n[i] > '9'
                || seq > (UINT64_MAX - (n[i] - '0')) / 10)
            {
                break;
            }

            seq = seq * 10 + (n[i] - '0');
        }

        if (i != 26 || seq == 0) {
            continue;
        }

        if (count == cap) {
            uint64_t  *more;

            more = ngx_palloc(pool, 2 * cap * sizeof(uint64_t));
            if (more == NULL) {
                ngx_close_dir(&dir);
                return NGX_ERROR;
            }

            ngx_memcpy(more, files, count * sizeof(uint64_t));
            files = more;
            cap *= 2;
        }

        files[count++] = seq;
    }

    ngx_close_dir(&dir);

    ngx_qsort(files, count, sizeof(uint64_t), ngx_http_xregion_pull_cmp);

    ctx->files = files;
    ctx->nfiles = count;

    for (i = 0; i + 1 < count && files[i + 1] <= ctx->filter.seq_from; i++) {
        /* a file whose successor starts at or before seq_from: skipped */
    }

    ctx->file = i;

    ctx->path = ngx_pnalloc(pool, ctx->dir.len + 1
                                  + NGX_HTTP_XREGION_PULL_NAME_LEN + 1);
    if (ctx->path == NULL) {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static int ngx_libc_cdecl
ngx_http_xregion_pull_cmp(const void *one, const void *two)
{
    const uint64_t  *a = one, *b = two;

    return (*a > *b) - (*a < *b);
}


/* After the header: the first buffers; waits are set up here. */

static ngx_int_t
ngx_http_xregion_pull_start(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx)
{
    ngx_int_t  rc;

    ctx->pool = ngx_http_xregion_pool_create(r->pool);
    ctx->rb = ngx_palloc(r->pool, NGX_HTTP_XREGION_PULL_READ);
    ctx->scratch = ngx_palloc(r->pool, XR_AUDIT_LINE_MAX);
    ctx->entry = ngx_palloc(r->pool, sizeof(xr_audit_entry_t));
    ctx->out = ngx_create_temp_buf(r->pool, NGX_HTTP_XREGION_PULL_OUT);

    if (ctx->pool == NULL || ctx->rb == NULL || ctx->scratch == NULL
        || ctx->entry == NULL || ctx->out == NULL)
    {
        return NGX_ERROR;
    }

    xr_ctx_init(&ctx->xr, ctx->pool);

    ctx->csv_header = (ctx->format == XR_AUDIT_CSV);

    rc = ngx_http_xregion_pull_send(r, ctx);

    if (rc != NGX_AGAIN && rc != NGX_DECLINED) {
        return rc;
    }

    if (rc == NGX_AGAIN && ngx_http_xregion_pull_wait(r) != NGX_OK) {
        return NGX_ERROR;
    }

    /* the rest from the write event: the request stays until then */

    r->main->count++;

    r->read_event_handler = r->discard_body
                            ? ngx_http_discarded_request_body_handler
                            : ngx_http_test_reading;
    r->write_event_handler = ngx_http_xregion_pull_write;

    return NGX_DONE;
}


static void
ngx_http_xregion_pull_write(ngx_http_request_t *r)
{
    ngx_int_t                     rc;
    ngx_event_t                  *wev;
    ngx_connection_t             *c;
    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_xregion_pull_ctx_t  *ctx;

    c = r->connection;
    wev = c->write;
    ctx = ngx_http_get_module_ctx(r, ngx_http_xregion_audit_pull_module);

    if (wev->timedout) {
        ngx_log_error(NGX_LOG_INFO, c->log, NGX_ETIMEDOUT,
                      "client timed out");
        c->timedout = 1;
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_TIME_OUT);
        return;
    }

    if (wev->delayed) {
        clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

        if (ngx_handle_write_event(wev, clcf->send_lowat) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    if (wev->timer_set) {
        ngx_del_timer(wev);
    }

    rc = ngx_http_xregion_pull_send(r, ctx);

    if (rc == NGX_DECLINED) {
        return;                             /* posted: the next turn */
    }

    if (rc == NGX_AGAIN) {
        if (ngx_http_xregion_pull_wait(r) != NGX_OK) {
            ngx_http_finalize_request(r, NGX_ERROR);
        }

        return;
    }

    r->write_event_handler = ngx_http_request_empty_handler;

    ngx_http_finalize_request(r, rc);
}


/* Until the client takes more, as nginx's writer waits. */

static ngx_int_t
ngx_http_xregion_pull_wait(ngx_http_request_t *r)
{
    ngx_event_t               *wev;
    ngx_http_core_loc_conf_t  *clcf;

    wev = r->connection->write;
    clcf = ngx_http_get_module_loc_conf(r, ngx_http_core_module);

    if (!wev->delayed) {
        ngx_add_timer(wev, clcf->send_timeout);
    }

    return ngx_handle_write_event(wev, clcf->send_lowat);
}


/*
 * Fill, send, again, while nginx takes the buffer whole.  NGX_OK: all
 * sent, the last buffer too; NGX_AGAIN: the client is slow, wait for the
 * write event; NGX_DECLINED: this turn's reading is done, the write event
 * is posted for the next; NGX_ERROR.
 */

static ngx_int_t
ngx_http_xregion_pull_send(ngx_http_request_t *r,
    ngx_http_xregion_pull_ctx_t *ctx)
{
    ngx_int_t          rc, fill;
    ngx_buf_t         *b, *last;
    ngx_chain_t        out;
    ngx_connection_t  *c;

    c = r->connection;
    b = ctx->out;
    ctx->slice = 0;

    for ( ;; ) {

        if (ctx->pending) {
            if (ngx_http_output_filter(r, NULL) == NGX_ERROR) {
                return NGX_ERROR;
            }

            if (ngx_buf_size(b) || r->buffered || c->buffered) {
                return NGX_AGAIN;
            }

            ctx->pending = 0;
        }

        if (ctx->last) {
            return NGX_OK;
        }

        b->pos = b->start;
        b->last = b->start;

        fill = ngx_http_xregion_pull_fill(ctx);

        if (fill == NGX_ERROR) {
            ctx->failed = 1;

            if (r->header_sent) {
                return NGX_ERROR;           /* the client sees it cut */
            }

            ctx->last = 1;

            rc = ngx_http_xregion_pull_error(r, ctx->fail_err
                                                ? ctx->fail_err
                                                : XR_E_INTERNAL,
                                             "the audit log cannot be read "
                                             "after seq %uL: the gateway's "
                                             "error log says where",
                                             ctx->last_seq);

            return (rc == NGX_AGAIN) ? NGX_OK : rc;
        }

        out.buf = b;
        out.next = NULL;

        if (fill == NGX_DONE) {
            ctx->last = 1;

            if (b->last == b->pos) {
                last = ngx_calloc_buf(r->pool);
                if (last == NULL) {
                    return NGX_ERROR;
                }

                out.buf = last;
            }

            out.buf->last_buf = 1;
            out.buf->last_in_chain = 1;

        } else if (b->last == b->pos) {
            ngx_post_event(c->write, &ngx_posted_events);
            return NGX_DECLINED;
        }

        if (!r->header_sent) {
            rc = ngx_http_send_header(r);

            if (rc == NGX_ERROR || rc > NGX_OK) {
                return NGX_ERROR;
            }
        }

        /* flush: nginx sends it now, and says when it could not */

        out.buf->flush = 1;

        rc = ngx_http_output_filter(r, &out);

        if (rc == NGX_ERROR) {
            return NGX_ERROR;
        }

        if (ngx_buf_size(b) || r->buffered || c->buffered) {
            ctx->pending = 1;
            return NGX_AGAIN;
        }

        if (ctx->last) {
            return NGX_OK;
        }

        if (fill == NGX_DECLINED) {
            ngx_post_event(c->write, &ngx_posted_events);
            return NGX_DECLINED;
        }
    }
}


/*
 * Lines into the output buffer until it is full (NGX_OK), the answer is
 * complete (NGX_DONE: past the last seq, the limit reached or no more
 * files), this turn's reading is done (NGX_DECLINED), or NGX_ERROR.
 */

static ngx_int_t
ngx_http_xregion_pull_fill(ngx_http_xregion_pull_ctx_t *ctx)
{
    int                 xrc;
    u_char             *line;
    size_t              len, need;
    uint64_t            seq;
    xr_buf_t            xb;
    ngx_buf_t          *b;
    ngx_int_t           rc;
    ngx_uint_t          known;
    xr_audit_filter_t  *f;

    b = ctx->out;
    f = &ctx->filter;

    /* the core writes into the buffer, never past it: limit = capacity */

    xb.pool = ctx->pool;
    xb.data = (char *) b->start;
    xb.len = 0;
    xb.cap = b->end - b->start;
    xb.limit = xb.cap;
    xb.failed = 0;

    if (ctx->csv_header) {
        ctx->csv_header = 0;
        (void) xr_audit_csv_header(&xb);
    }

    for ( ;; ) {

        if (ctx->count >= ctx->limit) {
            rc = NGX_DONE;
            break;
        }

        rc = ngx_http_xregion_pull_line(ctx, &line, &len);

        if (rc != NGX_OK) {
            break;
        }

        if (len >= XR_AUDIT_LINE_MAX && !ctx->raw) {
            ngx_http_xregion_pull_corrupt(ctx,
                ctx->offset - (off_t) (ctx->rb_last
                                       - (line - ctx->rb)),
                "a line longer than any entry");
            rc = NGX_ERROR;
            break;
        }

        /*
         * A CSV row quotes and doubles quotes: at most twice the line.
         * An empty buffer takes any line (see PULL_OUT).
         */

        need = ctx->raw ? len + 1 : 2 * len + 512;

        if (need > xb.cap - xb.len) {
            ctx->rb_pos = line - ctx->rb;       /* for the next buffer */
            rc = NGX_OK;
            break;
        }

        known = (xr_audit_line_seq((const char *) line, len, &seq) == XR_OK);

        if (known) {
            if (seq < f->seq_from) {
                continue;
            }

            if (seq > f->seq_to) {
                rc = NGX_DONE;
                break;
            }

        } else if (!ctx->raw) {
            ngx_http_xregion_pull_corrupt(ctx,
                ctx->offset - (off_t) (ctx->rb_last
                                       - (line - ctx->rb)),
                "no seq at its start");
            rc = NGX_ERROR;
            break;
        }

        if (ctx->raw) {
            (void) xr_buf_add(&xb, line, len);
            (void) xr_buf_addc(&xb, '\n');
            ctx->count++;

        } else {
            xrc = xr_audit_export_line(&ctx->xr, f, ctx->format,
                                       (const char *) line, len,
                                       ctx->scratch, ctx->entry, &xb);

            if (xrc == XR_ERROR) {
                ngx_http_xregion_pull_corrupt(ctx,
                    ctx->offset - (off_t) (ctx->rb_last
                                           - (line - ctx->rb)),
                    ctx->xr.errstr);
                rc = NGX_ERROR;
                break;
            }

            if (xrc == XR_OK) {
                ctx->count++;
            }
        }

        if (known) {
            ctx->last_seq = seq;

            if (seq == f->seq_to) {
                rc = NGX_DONE;
                break;
            }
        }
    }

    if (xb.failed) {
        ngx_log_error(NGX_LOG_ALERT, ctx->log, 0,
                      "xregion audit pull: the output buffer overflowed");
        return NGX_ERROR;
    }

    b->last = b->start + xb.len;

    return rc;
}


/*
 * The next whole line of the files, without its '\n', valid until the
 * next call.  NGX_OK; NGX_DONE: no more; NGX_DECLINED: this turn's slice
 * is read; NGX_ERROR.
 */

static ngx_int_t
ngx_http_xregion_pull_line(ngx_http_xregion_pull_ctx_t *ctx, u_char **line,
    size_t *len)
{
    u_char   *nl;
    ssize_t   n;

    for ( ;; ) {

        if (ctx->src.fd == NGX_INVALID_FILE) {
            if (ctx->file >= ctx->nfiles
                || ctx->files[ctx->file] > ctx->filter.seq_to)
            {
                return NGX_DONE;
            }

            if (ngx_http_xregion_pull_open(ctx) != NGX_OK) {
                return NGX_ERROR;
            }
        }

        nl = ngx_strlchr(ctx->rb + ctx->rb_pos, ctx->rb + ctx->rb_last,
                         '\n');

        if (nl) {
            *line = ctx->rb + ctx->rb_pos;
            *len = nl - *line;
            ctx->rb_pos = nl + 1 - ctx->rb;
            return NGX_OK;
        }

        if (ctx->eof) {
            /* a last line without '\n': being written, or cut; left out */

            ngx_close_file(ctx->src.fd);
            ctx->src.fd = NGX_INVALID_FILE;
            ctx->file++;
            continue;
        }

        if (ctx->rb_last - ctx->rb_pos >= XR_AUDIT_LINE_MAX) {
            ngx_http_xregion_pull_corrupt(ctx,
                ctx->offset - (off_t) (ctx->rb_last - ctx->rb_pos),
                "a line longer than any entry");
            return NGX_ERROR;
        }

        if (ctx->slice >= NGX_HTTP_XREGION_PULL_SLICE) {
            return NGX_DECLINED;
        }

        if (ctx->rb_pos) {
            ngx_memmove(ctx->rb, ctx->rb + ctx->rb_pos,
                        ctx->rb_last - ctx->rb_pos);
            ctx->rb_last -= ctx->rb_pos;
            ctx->rb_pos = 0;
        }

        n = ngx_read_file(&ctx->src, ctx->rb + ctx->rb_last,
                          NGX_HTTP_XREGION_PULL_READ - ctx->rb_last,
                          ctx->offset);

        if (n == NGX_ERROR) {
            ctx->fail_err = XR_E_IO;
            return NGX_ERROR;
        }

        if (n == 0) {
            ctx->eof = 1;
        }

        ctx->offset += n;
        ctx->rb_last += n;
        ctx->slice += n;
    }
}


static ngx_int_t
ngx_http_xregion_pull_open(ngx_http_xregion_pull_ctx_t *ctx)
{
    u_char    *p;
    uint64_t   first;

    first = ctx->files[ctx->file];

    p = ngx_sprintf(ctx->path, "%V/audit-%020uL.jsonl%Z", &ctx->dir, first);

    ctx->src.name.data = ctx->path;
    ctx->src.name.len = p - ctx->path - 1;
    ctx->src.offset = 0;

    ctx->src.fd = ngx_open_file(ctx->path, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (ctx->src.fd == NGX_INVALID_FILE) {
        ctx->fail_err = XR_E_IO;
        ngx_log_error(NGX_LOG_ERR, ctx->log, ngx_errno,
                      ngx_open_file_n " \"%s\" failed (xregion audit pull)",
                      ctx->path);
        return NGX_ERROR;
    }

    ctx->rb_pos = 0;
    ctx->rb_last = 0;
    ctx->eof = 0;
    ctx->offset = 0;

    if (ctx->filter.seq_from > first) {
        ctx->offset = ngx_http_xregion_pull_seek(ctx, ctx->filter.seq_from);

        if (ctx->offset == NGX_ERROR) {
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * A line start at or before the first line with seq >= want: a binary
 * search over the line starts found after probe offsets, lines being in
 * seq order in a file.  Lines it does not recognise move the search
 * earlier, never past them.
 */

static off_t
ngx_http_xregion_pull_seek(ngx_http_xregion_pull_ctx_t *ctx, uint64_t want)
{
    off_t            lo, hi, mid;
    u_char          *nl;
    ssize_t          n;
    uint64_t         seq;
    ngx_file_info_t  fi;

    if (ngx_fd_info(ctx->src.fd, &fi) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ERR, ctx->log, ngx_errno,
                      ngx_fd_info_n " \"%V\" failed", &ctx->src.name);
        ctx->fail_err = XR_E_IO;
        return NGX_ERROR;
    }

    lo = 0;
    hi = ngx_file_size(&fi);

    while (hi - lo > NGX_HTTP_XREGION_PULL_SEEK) {
        mid = lo + (hi - lo) / 2;

        n = ngx_read_file(&ctx->src, ctx->rb, XR_AUDIT_LINE_MAX + 64, mid);

        if (n == NGX_ERROR) {
            ctx->fail_err = XR_E_IO;
            return NGX_ERROR;
        }

        nl = ngx_strlchr(ctx->rb, ctx->rb + n, '\n');

        if (nl == NULL
            || xr_audit_line_seq((const char *) nl + 1,
                                 ctx->rb + n - (nl + 1), &seq)
               != XR_OK
            || seq >= want)
        {
            hi = mid;
            continue;
        }

        lo = mid + (nl + 1 - ctx->rb);
    }

    return lo;
}


static void
ngx_http_xregion_pull_corrupt(ngx_http_xregion_pull_ctx_t *ctx, off_t at,
    const char *why)
{
    ctx->fail_err = XR_E_AUDIT_INVALID;

    ngx_log_error(NGX_LOG_ERR, ctx->log, 0,
                  "xregion audit pull: \"%V\" at byte %O: %s: the pull of "
                  "regulator \"%V\" stops there (xregion audit verify "
                  "names the fault)", &ctx->src.name, at, why, &ctx->who);
}


/* The end of the request, however it ended: the file closed, one line. */

static void
ngx_http_xregion_pull_cleanup(void *data)
{
    ngx_http_xregion_pull_ctx_t *ctx = data;

    if (ctx->src.fd != NGX_INVALID_FILE) {
        ngx_close_file(ctx->src.fd);
        ctx->src.fd = NGX_INVALID_FILE;
    }

    if (ctx->last && !ctx->pending && !ctx->failed) {
        ngx_log_error(NGX_LOG_INFO, ctx->log, 0,
                      "xregion audit pull: regulator \"%V\": %uL entries "
                      "sent, up to seq %uL", &ctx->who, ctx->count,
                      ctx->last_seq);
        return;
    }

    ngx_log_error(NGX_LOG_INFO, ctx->log, 0,
                  "xregion audit pull: regulator \"%V\": stopped after %uL "
                  "entries (seq %uL): %s", &ctx->who, ctx->count,
                  ctx->last_seq,
                  ctx->failed ? "the log could not be read"
                              : "the client went away");
}


/* {"code":"XR-...","message":"..."} with the error's own status. */

static ngx_int_t
ngx_http_xregion_pull_error(ngx_http_request_t *r, xr_err_e err,
    const char *fmt, ...)
{
    u_char                 *p, *body, text[NGX_MAX_ERROR_STR];
    size_t                  len;
    va_list                 args;
    ngx_buf_t              *b;
    ngx_int_t               rc;
    ngx_str_t               allow;
    ngx_chain_t             out;
    const xr_error_info_t  *info;

    info = xr_error_info(err);

    va_start(args, fmt);
    p = ngx_vslprintf(text, text + sizeof(text), fmt, args);
    va_end(args);

    len = p - text;

    body = ngx_pnalloc(r->pool, sizeof("{\"code\":\"\",\"message\":\"\"}\n")
                                + ngx_strlen(info->name) + len
                                + ngx_escape_json(NULL, text, len));
    if (body == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    p = ngx_sprintf(body, "{\"code\":\"%s\",\"message\":\"", info->name);
    p = (u_char *) ngx_escape_json(p, text, len);
    p = ngx_cpymem(p, "\"}\n", 3);

    if (err == XR_E_METHOD_NOT_ALLOWED) {
        ngx_str_set(&allow, "GET, HEAD");

        if (ngx_http_xregion_pull_header(r, "Allow", &allow) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    r->headers_out.status = info->http_status;
    ngx_str_set(&r->headers_out.content_type,
                "application/json; charset=utf-8");
    r->headers_out.content_type_len = r->headers_out.content_type.len;
    r->headers_out.content_type_lowcase = NULL;
    r->headers_out.content_length_n = p - body;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_calloc_buf(r->pool);
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->pos = body;
    b->last = p;
    b->memory = 1;
    b->last_buf = 1;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


static ngx_int_t
ngx_http_xregion_pull_header(ngx_http_request_t *r, const char *name,
    ngx_str_t *value)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = ngx_strlen(name);
    h->value = *value;

    return NGX_OK;
}


/*
 * A client's value for a log line or a message: printable ASCII, '?' for
 * anything else and for quotes, at most max bytes and "...".
 */

static ngx_str_t
ngx_http_xregion_pull_quote(ngx_pool_t *pool, u_char *data, size_t len,
    size_t max)
{
    size_t      i, n;
    ngx_str_t   q;

    n = ngx_min(len, max);

    q.data = ngx_pnalloc(pool, n + 3);
    if (q.data == NULL) {
        q.len = 0;
        return q;
    }

    for (i = 0; i < n; i++) {
        q.data[i] = (data[i] < 0x20 || data[i] >= 0x7f || data[i] == '"'
                     || data[i] == '\\')
                    ? '?' : data[i];
    }

    q.len = n;

    if (len > max) {
        q.len = ngx_cpymem(q.data + n, "...", 3) - q.data;
    }

    return q;
}
