/*
 * Loading and resolving schemas, tables and profiles (docs/profiles.md).
 * Every reference is resolved here, at load time, so that the request path
 * never looks anything up by name more than once per message.
 */

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr_conf.h"
#include "xr_mask.h"
#include "xr_profile.h"
#include "xr_time.h"
#include "xr_adapter.h"
#include "xr_translate.h"


typedef struct {
    xr_ctx_t           *ctx;
    xr_config_t        *cfg;
    const char         *file;
} xr_loader_t;


#define xr_lerr(ld, line, ...)                                               \
    xr_fail((ld)->ctx, XR_E_CONFIG, NULL, "%s:%d: %s", (ld)->file, line,     \
            xr_lfmt(__VA_ARGS__))

static __thread char  xr_lfmt_buf[XR_ERRSTR_LEN];

static unsigned xr_key_plain(xr_str_t key);
static const char *xr_lfmt(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));


static const char *
xr_lfmt(const char *fmt, ...)
{
    va_list  ap;

    va_start(ap, fmt);
    vsnprintf(xr_lfmt_buf, sizeof(xr_lfmt_buf), fmt, ap);
    va_end(ap);
    return xr_lfmt_buf;
}


#define XR_ARG(d, i)  (int) (d)->args[i].len, (d)->args[i].data


static int
xr_dir_is(const xr_cdir_t *d, const char *name)
{
    return xr_str_eq(d->args[0], name);
}


static int
xr_need_args(xr_loader_t *ld, const xr_cdir_t *d, size_t min, size_t max)
{
    if (d->nargs < min + 1 || (max && d->nargs > max + 1)) {
        return xr_lerr(ld, d->line, "invalid number of arguments in "
                       "\"%.*s\"", XR_ARG(d, 0));
    }
    return XR_OK;
}


static int
xr_need_block(xr_loader_t *ld, const xr_cdir_t *d, int want)
{
    if (want && !d->has_block) {
        return xr_lerr(ld, d->line, "\"%.*s\" needs a { } block",
                       XR_ARG(d, 0));
    }
    if (!want && d->has_block) {
        return xr_lerr(ld, d->line, "\"%.*s\" takes no block", XR_ARG(d, 0));
    }
    return XR_OK;
}


static int
xr_parse_size(xr_str_t s, size_t *out)
{
    size_t  i, v = 0;

    if (s.len == 0 || s.len > 9) {
        return XR_ERROR;
    }
    for (i = 0; i < s.len; i++) {
        if (s.data[i] < '0' || s.data[i] > '9') {
            return XR_ERROR;
        }
        v = v * 10 + (s.data[i] - '0');
    }
    *out = v;
    return XR_OK;
}


/* Options after the positional words must all be known. */
static int
xr_check_opts(xr_loader_t *ld, const xr_cdir_t *d, size_t from,
    const char *const *known)
{
    size_t              i, k, klen;
    const char *const  *o;
    const char         *eq;

    for (i = from; i < d->nargs; i++) {
        eq = memchr(d->args[i].data, '=', d->args[i].len);
        klen = eq ? (size_t) (eq - d->args[i].data) : d->args[i].len;
        k = 0;
        for (o = known; *o; o++) {
            if (strlen(*o) == klen
                && memcmp(*o, d->args[i].data, klen) == 0)
            {
                k = 1;
                break;
            }
        }
        if (!k) {
            return xr_lerr(ld, d->line, "unknown option \"%.*s\" in "
                           "\"%.*s\"", XR_ARG(d, i), XR_ARG(d, 0));
        }
    }
    return XR_OK;
}


static int
xr_load_file(xr_loader_t *ld, const char *path, xr_cdir_t **dirs,
    size_t *n)
{
    xr_pool_t  *tmp;
    xr_ctx_t    fctx, cctx;
    char       *data;
    size_t      len;
    int         rc;

    ld->file = xr_pstrndup(ld->cfg->pool, path, strlen(path));
    if (ld->file == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }

    /*
     * The file's bytes live only while it is parsed; the words the
     * configuration keeps are copied into the configuration's own pool,
     * never the caller's.
     */
    tmp = xr_pool_create(65536);
    if (tmp == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }
    xr_ctx_init(&fctx, tmp);
    xr_ctx_init(&cctx, ld->cfg->pool);

    rc = xr_conf_read_file(&fctx, path, &data, &len);
    if (rc == XR_OK) {
        rc = xr_conf_parse(&cctx, ld->file, data, len, dirs, n);
        if (rc != XR_OK) {
            fctx = cctx;
        }
    }
    if (rc != XR_OK) {
        xr_fail(ld->ctx, fctx.err, fctx.field[0] ? fctx.field : NULL, "%s",
                fctx.errstr);
    }
    xr_pool_destroy(tmp);
    return rc;
}


/* ---- regions ---------------------------------------------------------- */

static int
xr_load_regions(xr_loader_t *ld, const char *path)
{
    xr_cdir_t    *dirs, *d;
    size_t        n, i, j;
    xr_region_t  *r;
    xr_config_t  *cfg = ld->cfg;

    if (xr_load_file(ld, path, &dirs, &n) != XR_OK) {
        return XR_ERROR;
    }

    cfg->regions = xr_pcalloc(cfg->pool, (n ? n : 1) * sizeof(xr_region_t));
    if (cfg->regions == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0; i < n; i++) {
        d = &dirs[i];
        if (!xr_dir_is(d, "region")) {
            return xr_lerr(ld, d->line, "unknown directive \"%.*s\"",
                           XR_ARG(d, 0));
        }
        if (xr_need_args(ld, d, 2, 3) != XR_OK
            || xr_need_block(ld, d, 0) != XR_OK)
        {
            return XR_ERROR;
        }
        if (d->args[2].len != 0 && d->args[2].len != 6) {
            return xr_lerr(ld, d->line, "region code \"%.*s\" is not 6 "
                           "digits", XR_ARG(d, 2));
        }
        for (j = 0; j < d->args[2].len; j++) {
            if (d->args[2].data[j] < '0' || d->args[2].data[j] > '9') {
                return xr_lerr(ld, d->line, "region code \"%.*s\" is not "
                               "6 digits", XR_ARG(d, 2));
            }
        }
        for (j = 0; j < cfg->nregions; j++) {
            if (xr_str_cmp(cfg->regions[j].name, d->args[1]) == 0) {
                return xr_lerr(ld, d->line, "duplicate region \"%.*s\"",
                               XR_ARG(d, 1));
            }
            if (d->args[2].len
                && xr_str_cmp(cfg->regions[j].code, d->args[2]) == 0)
            {
                return xr_lerr(ld, d->line, "duplicate region code "
                               "\"%.*s\"", XR_ARG(d, 2));
            }
        }
        r = &cfg->regions[cfg->nregions++];
        r->name = d->args[1];
        r->code = d->args[2];
        if (d->nargs > 3) {
            r->label = d->args[3];
        }
    }
    return XR_OK;
}


/* ---- tables ----------------------------------------------------------- */

static int
xr_parse_table(xr_loader_t *ld, const xr_cdir_t *d, xr_table_t *t)
{
    size_t      i, j;
    xr_cdir_t  *e;

    if (xr_need_args(ld, d, 1, 1) != XR_OK
        || xr_need_block(ld, d, 1) != XR_OK)
    {
        return XR_ERROR;
    }

    memset(t, 0, sizeof(xr_table_t));
    t->name = d->args[1];
    t->line = d->line;
    t->codes = xr_pcalloc(ld->cfg->pool,
                          (d->nblock ? d->nblock : 1) * sizeof(xr_code_t));
    if (t->codes == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0; i < d->nblock; i++) {
        e = &d->block[i];
        if (e->nargs != 2 || e->has_block) {
            return xr_lerr(ld, e->line, "table entry needs a canonical "
                           "value and a wire value");
        }
        if (xr_str_eq(e->args[0], "default")) {
            t->default_wire = e->args[1];
            continue;
        }
        for (j = 0; j < t->ncodes; j++) {
            if (xr_str_cmp(t->codes[j].canon, e->args[0]) == 0) {
                return xr_lerr(ld, e->line, "duplicate canonical value "
                               "\"%.*s\" in table %.*s", XR_ARG(e, 0),
                               (int) t->name.len, t->name.data);
            }
        }
        t->codes[t->ncodes].canon = e->args[0];
        t->codes[t->ncodes].wire = e->args[1];
        t->ncodes++;
    }

    /* what the JSON writer may copy without escaping (xr_node_t plain) */
    t->canon_plain = 1;
    t->wire_plain = 1;
    for (j = 0; j < t->ncodes; j++) {
        t->canon_plain &= xr_key_plain(t->codes[j].canon);
        t->wire_plain &= xr_key_plain(t->codes[j].wire);
    }
    return XR_OK;
}


static int
xr_load_tables(xr_loader_t *ld, const char *path)
{
    xr_cdir_t    *dirs;
    size_t        n, i, j;
    xr_table_t   *t, *nt;
    xr_config_t  *cfg = ld->cfg;

    if (xr_load_file(ld, path, &dirs, &n) != XR_OK) {
        return XR_ERROR;
    }

    nt = xr_pcalloc(cfg->pool, (cfg->ntables + n + 1) * sizeof(xr_table_t));
    if (nt == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }
    if (cfg->ntables) {
        memcpy(nt, cfg->tables, cfg->ntables * sizeof(xr_table_t));
    }
    cfg->tables = nt;

    for (i = 0; i < n; i++) {
        if (!xr_dir_is(&dirs[i], "table")) {
            return xr_lerr(ld, dirs[i].line, "unknown directive \"%.*s\"",
                           XR_ARG(&dirs[i], 0));
        }
        t = &cfg->tables[cfg->ntables];
        if (xr_parse_table(ld, &dirs[i], t) != XR_OK) {
            return XR_ERROR;
        }
        for (j = 0; j < cfg->ntables; j++) {
            if (xr_str_cmp(cfg->tables[j].name, t->name) == 0) {
                return xr_lerr(ld, dirs[i].line, "duplicate table "
                               "\"%.*s\"", (int) t->name.len, t->name.data);
            }
        }
        cfg->ntables++;
    }
    return XR_OK;
}


/* ---- schemas ---------------------------------------------------------- */

static const struct {
    const char     *name;
    xr_ftype_e      type;
} xr_ftypes[] = {
    { "string", XR_FT_STRING },
    { "int", XR_FT_INT },
    { "amount", XR_FT_AMOUNT },
    { "bool", XR_FT_BOOL },
    { "date", XR_FT_DATE },
    { "datetime", XR_FT_DATETIME },
    { "code", XR_FT_CODE },
    { "list", XR_FT_LIST },
    { NULL, 0 }
};


static int
xr_split_values(xr_loader_t *ld, xr_str_t v, xr_str_t **out, size_t *n)
{
    size_t     i, start, count = 1, k = 0;
    xr_str_t  *vals;

    for (i = 0; i < v.len; i++) {
        if (v.data[i] == ',') {
            count++;
        }
    }
    vals = xr_palloc(ld->cfg->pool, count * sizeof(xr_str_t));
    if (vals == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }
    for (i = 0, start = 0; i <= v.len; i++) {
        if (i == v.len || v.data[i] == ',') {
            if (i == start) {
                return XR_ERROR;
            }
            vals[k].data = v.data + start;
            vals[k].len = i - start;
            k++;
            start = i + 1;
        }
    }
    *out = vals;
    *n = k;
    return XR_OK;
}


static int
xr_parse_fields(xr_loader_t *ld, const xr_cdir_t *block, size_t nblock,
    xr_sfield_t **out, size_t *nout)
{
    static const char *const  known[] = {
        "max", "required", "negative", "values", "pii", NULL
    };
    xr_pii_e          pii;
    xr_sfield_t      *fields, *f;
    const xr_cdir_t  *d;
    size_t            i, j;
    xr_str_t          v;

    fields = xr_pcalloc(ld->cfg->pool,
                        (nblock ? nblock : 1) * sizeof(xr_sfield_t));
    if (fields == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }
    *nout = 0;

    for (i = 0; i < nblock; i++) {
        d = &block[i];
        if (!xr_dir_is(d, "field")) {
            return xr_lerr(ld, d->line, "unknown directive \"%.*s\", "
                           "expecting \"field\"", XR_ARG(d, 0));
        }
        if (d->nargs < 3) {
            return xr_lerr(ld, d->line, "field needs a name and a type");
        }
        if (xr_check_opts(ld, d, 3, known) != XR_OK) {
            return XR_ERROR;
        }

        f = &fields[*nout];
        f->name = d->args[1];
        f->line = d->line;

        if (d->args[1].len == 0 || d->args[1].data[0] == '@'
            || memchr(d->args[1].data, '.', d->args[1].len))
        {
            return xr_lerr(ld, d->line, "bad field name \"%.*s\"",
                           XR_ARG(d, 1));
        }
        for (j = 0; j < *nout; j++) {
            if (xr_str_cmp(fields[j].name, f->name) == 0) {
                return xr_lerr(ld, d->line, "duplicate field \"%.*s\"",
                               XR_ARG(d, 1));
            }
        }

        for (j = 0; xr_ftypes[j].name; j++) {
            if (xr_str_eq(d->args[2], xr_ftypes[j].name)) {
                break;
            }
        }
        if (xr_ftypes[j].name == NULL) {
            return xr_lerr(ld, d->line, "unknown field type \"%.*s\"",
                           XR_ARG(d, 2));
        }
        f->type = xr_ftypes[j].type;

        if (xr_conf_opt(d, 3, "max", &v)
            && (xr_parse_size(v, &f->max) != XR_OK || f->max == 0))
        {
            return xr_lerr(ld, d->line, "bad max=\"%.*s\"", (int) v.len,
                           v.data);
        }
        f->required = xr_conf_opt(d, 3, "required", &v) != NULL;
        f->negative = xr_conf_opt(d, 3, "negative", &v) != NULL;

        if (xr_conf_opt(d, 3, "values", &v)) {
            if (f->type != XR_FT_CODE) {
                return xr_lerr(ld, d->line, "values= applies to code "
                               "fields only");
            }
            if (xr_split_values(ld, v, &f->values, &f->nvalues) != XR_OK) {
                return xr_lerr(ld, d->line, "bad values= list");
            }
        } else if (f->type == XR_FT_CODE) {
            return xr_lerr(ld, d->line, "code field \"%.*s\" needs values=",
                           XR_ARG(d, 1));
        }

        if (xr_conf_opt(d, 3, "pii", &v)) {
            if (xr_pii_by_name(v, &pii) != XR_OK) {
                return xr_lerr(ld, d->line, "unknown pii=\"%.*s\": the kinds "
                               "are id, card, name, phone and birth",
                               (int) v.len, v.data);
            }
            /*
             * codes come from a closed list, amounts and booleans identify
             * nobody: what a mask hides is in the other types
             */
            if (f->type != XR_FT_STRING && f->type != XR_FT_INT
                && f->type != XR_FT_DATE && f->type != XR_FT_DATETIME)
            {
                return xr_lerr(ld, d->line, "pii= applies to string, int, "
                               "date and datetime fields");
            }
            f->pii = pii;
        }

        if (f->type == XR_FT_LIST) {
            if (!d->has_block) {
                return xr_lerr(ld, d->line, "list field \"%.*s\" needs a "
                               "block of fields", XR_ARG(d, 1));
            }
            if (xr_parse_fields(ld, d->block, d->nblock, &f->children,
                                &f->nchildren) != XR_OK)
            {
                return XR_ERROR;
            }
        } else if (d->has_block) {
            return xr_lerr(ld, d->line, "only list fields take a block");
        }

        (*nout)++;
    }

    *out = fields;
    return XR_OK;
}


static int
xr_parse_stxn(xr_loader_t *ld, const xr_cdir_t *d, xr_stxn_t *t)
{
    const xr_cdir_t  *e;
    size_t            i, j;
    int               dir, kind_set = 0;

    if (xr_need_args(ld, d, 1, 1) != XR_OK
        || xr_need_block(ld, d, 1) != XR_OK)
    {
        return XR_ERROR;
    }

    t->name = d->args[1];
    t->line = d->line;

    for (i = 0; i < d->nblock; i++) {
        e = &d->block[i];

        if (xr_dir_is(e, "kind")) {
            if (xr_need_args(ld, e, 1, 1) != XR_OK) {
                return XR_ERROR;
            }
            if (xr_str_eq(e->args[1], "query")) {
                t->kind = XR_TXN_QUERY;
            } else if (xr_str_eq(e->args[1], "write")) {
                t->kind = XR_TXN_WRITE;
            } else if (xr_str_eq(e->args[1], "money")) {
                t->kind = XR_TXN_MONEY;
            } else {
                return xr_lerr(ld, e->line, "kind must be query, write or "
                               "money");
            }
            kind_set = 1;

        } else if (xr_dir_is(e, "cache")) {
            t->cacheable = 1;

        } else if (xr_dir_is(e, "key") || xr_dir_is(e, "invalidates")) {
            if (xr_need_args(ld, e, 1, 0) != XR_OK) {
                return XR_ERROR;
            }
            if (xr_dir_is(e, "key")) {
                t->key = &e->args[1];
                t->nkey = e->nargs - 1;
            } else {
                t->invalidates = &e->args[1];
                t->ninvalidates = e->nargs - 1;
            }

        } else if (xr_dir_is(e, "request") || xr_dir_is(e, "response")) {
            dir = xr_dir_is(e, "request") ? XR_DIR_REQUEST : XR_DIR_RESPONSE;
            if (xr_need_block(ld, e, 1) != XR_OK) {
                return XR_ERROR;
            }
            if (xr_parse_fields(ld, e->block, e->nblock, &t->fields[dir],
                                &t->nfields[dir]) != XR_OK)
            {
                return XR_ERROR;
            }

        } else {
            return xr_lerr(ld, e->line, "unknown directive \"%.*s\" in txn",
                           XR_ARG(e, 0));
        }
    }

    if (!kind_set) {
        return xr_lerr(ld, d->line, "txn %.*s has no kind", XR_ARG(d, 1));
    }
    if (t->cacheable && t->kind != XR_TXN_QUERY) {
        return xr_lerr(ld, d->line, "only query transactions can be cached");
    }
    if (t->kind == XR_TXN_MONEY && t->nkey == 0) {
        return xr_lerr(ld, d->line, "money txn %.*s needs a key",
                       XR_ARG(d, 1));
    }

    /* key fields: envelope names or top-level request fields */
    for (i = 0; i < t->nkey; i++) {
        if (t->key[i].len && t->key[i].data[0] == '@') {
            if (xr_env_by_name(t->key[i]) == XR_ENV_NONE) {
                return xr_lerr(ld, d->line, "unknown key field \"%.*s\"",
                               (int) t->key[i].len, t->key[i].data);
            }
            continue;
        }
        for (j = 0; j < t->nfields[XR_DIR_REQUEST]; j++) {
            if (xr_str_cmp(t->fields[XR_DIR_REQUEST][j].name, t->key[i])
                == 0)
            {
                break;
            }
        }
        if (j == t->nfields[XR_DIR_REQUEST]) {
            return xr_lerr(ld, d->line, "key field \"%.*s\" is not a "
                           "request field of txn %.*s",
                           (int) t->key[i].len, t->key[i].data,
                           XR_ARG(d, 1));
        }
    }
    return XR_OK;
}


static int
xr_load_schema(xr_loader_t *ld, const char *path, xr_schema_t *s)
{
    xr_cdir_t  *dirs, *d;
    size_t      n, i, j, ntxn = 0;
    xr_str_t    v;

    if (xr_load_file(ld, path, &dirs, &n) != XR_OK) {
        return XR_ERROR;
    }

    memset(s, 0, sizeof(xr_schema_t));
    s->file = ld->file;

    for (i = 0; i < n; i++) {
        if (xr_dir_is(&dirs[i], "txn")) {
            ntxn++;
        }
    }
    s->txns = xr_pcalloc(ld->cfg->pool, (ntxn ? ntxn : 1) * sizeof(xr_stxn_t));
    if (s->txns == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0; i < n; i++) {
        d = &dirs[i];

        if (xr_dir_is(d, "domain")) {
            if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                return XR_ERROR;
            }
            s->domain = d->args[1];

        } else if (xr_dir_is(d, "route")) {
            if (xr_need_args(ld, d, 1, 2) != XR_OK) {
                return XR_ERROR;
            }
            s->route_field = d->args[1];
            if (xr_conf_opt(d, 2, "table", &v)) {
                s->route_table = v;
                if (xr_config_table(ld->cfg, v) == NULL) {
                    return xr_lerr(ld, d->line, "unknown table \"%.*s\"",
                                   (int) v.len, v.data);
                }
            } else if (d->nargs > 2) {
                return xr_lerr(ld, d->line, "unknown route option");
            }

        } else if (xr_dir_is(d, "txn")) {
            if (xr_parse_stxn(ld, d, &s->txns[s->ntxns]) != XR_OK) {
                return XR_ERROR;
            }
            for (j = 0; j < s->ntxns; j++) {
                if (xr_str_cmp(s->txns[j].name, d->args[1]) == 0) {
                    return xr_lerr(ld, d->line, "duplicate txn \"%.*s\"",
                                   XR_ARG(d, 1));
                }
            }
            s->ntxns++;

        } else {
            return xr_lerr(ld, d->line, "unknown directive \"%.*s\"",
                           XR_ARG(d, 0));
        }
    }

    if (s->domain.len == 0) {
        return xr_lerr(ld, 1, "schema has no \"domain\"");
    }
    if (s->route_field.len == 0) {
        return xr_lerr(ld, 1, "schema has no \"route\"");
    }

    /* invalidates names other txns of the same schema */
    for (i = 0; i < s->ntxns; i++) {
        for (j = 0; j < s->txns[i].ninvalidates; j++) {
            if (xr_schema_txn(s, s->txns[i].invalidates[j]) == NULL) {
                return xr_lerr(ld, s->txns[i].line, "invalidates unknown "
                               "txn \"%.*s\"",
                               (int) s->txns[i].invalidates[j].len,
                               s->txns[i].invalidates[j].data);
            }
        }
    }
    return XR_OK;
}


/* ---- profiles --------------------------------------------------------- */

typedef struct {
    xr_loader_t        *ld;
    xr_profile_t       *p;
    const xr_layout_t  *layouts[3];     /* header, body, for fixed maps */
} xr_pload_t;


static const xr_table_t *
xr_profile_table(const xr_profile_t *p, const xr_config_t *cfg, xr_str_t name)
{
    size_t  i;

    for (i = 0; i < p->ntables; i++) {
        if (xr_str_cmp(p->tables[i].name, name) == 0) {
            return &p->tables[i];
        }
    }
    return xr_config_table(cfg, name);
}


static const xr_sfield_t *
xr_sfield_find(const xr_sfield_t *fields, size_t n, xr_str_t name)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (xr_str_cmp(fields[i].name, name) == 0) {
            return &fields[i];
        }
    }
    return NULL;
}


/* A fixed-width wire name must be a field (or records block) of a layout. */
static int
xr_layout_has(const xr_layout_t *l, xr_str_t name, int records)
{
    size_t  i;

    if (l == NULL) {
        return 0;
    }
    if (records) {
        return l->repeat && xr_str_cmp(l->repeat_name, name) == 0;
    }
    for (i = 0; i < l->nfields; i++) {
        if (xr_str_cmp(l->fields[i].name, name) == 0) {
            return 1;
        }
    }
    return 0;
}


/* Split once here so that no message has to. */
static void
xr_map_split_wire(xr_map_t *m)
{
    size_t  i;

    for (i = m->wire.len; i > 0 && m->wire.data[i - 1] != '.'; i--) {
        /* void */
    }
    m->wire_parent.data = m->wire.data;
    m->wire_parent.len = i ? i - 1 : 0;
    m->wire_key.data = m->wire.data + i;
    m->wire_key.len = m->wire.len - i;
}


static const xr_layout_t *
xr_layout_find_records(const xr_layout_t *const *layouts, xr_str_t name)
{
    int  i;

    for (i = 0; i < 2; i++) {
        if (layouts[i] && layouts[i]->repeat
            && xr_str_cmp(layouts[i]->repeat_name, name) == 0)
        {
            return layouts[i]->repeat;
        }
    }
    return NULL;
}


static int
xr_parse_maps(xr_pload_t *pl, const xr_cdir_t *block, size_t nblock,
    const xr_sfield_t *fields, size_t nfields, int env_allowed,
    const xr_layout_t *record, xr_mapset_t *out, xr_map_t **maps_out,
    size_t *nmaps_out)
{
    static const char *const  known[] = {
        "max", "required", "table", "time", "amount", "as", "slice", NULL
    };
    xr_loader_t        *ld = pl->ld;
    xr_profile_t       *p = pl->p;
    xr_map_t           *maps, *m;
    const xr_cdir_t    *d;
    const xr_sfield_t  *sf;
    size_t              i, j, n = 0, slice_len;
    xr_str_t            v;
    xr_ftype_e          ft;
    int                 fixed, found, has_time;

    fixed = xr_str_eq(p->codec, "fixed");

    maps = xr_pcalloc(ld->cfg->pool, (nblock ? nblock : 1) * sizeof(xr_map_t));
    if (maps == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0; i < nblock; i++) {
        d = &block[i];
        m = &maps[n];
        m->line = d->line;
        m->env = XR_ENV_NONE;

        if (xr_dir_is(d, "set")) {
            if (xr_need_args(ld, d, 2, 3) != XR_OK
                || xr_need_block(ld, d, 0) != XR_OK)
            {
                return XR_ERROR;
            }
            m->is_const = 1;
            m->wire = d->args[1];
            m->value = d->args[2];
            m->value_plain = xr_key_plain(m->value);
            xr_map_split_wire(m);
            if (xr_conf_opt(d, 3, "as", &v)) {
                if (xr_str_eq(v, "number")) {
                    m->as = XR_WIRE_NUMBER;
                } else if (xr_str_eq(v, "string")) {
                    m->as = XR_WIRE_STRING;
                } else {
                    return xr_lerr(ld, d->line, "bad as=\"%.*s\"",
                                   (int) v.len, v.data);
                }
            } else if (d->nargs > 3) {
                return xr_lerr(ld, d->line, "unknown option \"%.*s\"",
                               XR_ARG(d, 3));
            }
            n++;
            continue;
        }

        if (!xr_dir_is(d, "map")) {
            return xr_lerr(ld, d->line, "unknown directive \"%.*s\", "
                           "expecting \"map\" or \"set\"", XR_ARG(d, 0));
        }
        if (d->nargs < 3) {
            return xr_lerr(ld, d->line, "map needs a canonical field and "
                           "a wire path");
        }
        if (xr_check_opts(ld, d, 3, known) != XR_OK) {
            return XR_ERROR;
        }

        m->canon = d->args[1];
        m->wire = d->args[2];
        xr_map_split_wire(m);

        if (m->canon.len && m->canon.data[0] == '@') {
            if (!env_allowed) {
                return xr_lerr(ld, d->line, "envelope field \"%.*s\" belongs "
                               "in the request or response envelope block",
                               XR_ARG(d, 1));
            }
            m->env = xr_env_by_name(m->canon);
            if (m->env == XR_ENV_NONE || m->env == XR_ENV_DOMAIN) {
                return xr_lerr(ld, d->line, "unknown envelope field "
                               "\"%.*s\"", XR_ARG(d, 1));
            }
            ft = (m->env == XR_ENV_TIME) ? XR_FT_DATETIME : XR_FT_STRING;
            sf = NULL;
            if (xr_conf_opt(d, 3, "table", &v) || xr_conf_opt(d, 3, "slice", &v))
            {
                return xr_lerr(ld, d->line, "table= and slice= apply to body "
                               "fields, not to envelope field \"%.*s\"",
                               XR_ARG(d, 1));
            }
        } else {
            sf = xr_sfield_find(fields, nfields, m->canon);
            if (sf == NULL) {
                return xr_lerr(ld, d->line, "unknown canonical field "
                               "\"%.*s\"", XR_ARG(d, 1));
            }
            m->sf = sf;
            ft = sf->type;
        }

        for (j = 0; j < n; j++) {
            if (!maps[j].is_const && maps[j].env == m->env
                && (m->env != XR_ENV_NONE
                    || xr_str_cmp(maps[j].canon, m->canon) == 0)
                && !xr_conf_opt(d, 3, "slice", &v))
            {
                return xr_lerr(ld, d->line, "\"%.*s\" is mapped twice",
                               XR_ARG(d, 1));
            }
        }

        if (fixed && m->wire.len) {
            if (record) {
                found = xr_layout_has(record, m->wire, ft == XR_FT_LIST);
            } else {
                found = xr_layout_has(pl->layouts[0], m->wire,
                                      ft == XR_FT_LIST)
                        || xr_layout_has(pl->layouts[1], m->wire,
                                         ft == XR_FT_LIST);
            }
            if (!found) {
                return xr_lerr(ld, d->line, "wire field \"%.*s\" is not in "
                               "the layout", XR_ARG(d, 2));
            }
        }

        if (xr_conf_opt(d, 3, "max", &v)
            && (xr_parse_size(v, &m->max) != XR_OK || m->max == 0))
        {
            return xr_lerr(ld, d->line, "bad max=\"%.*s\"", (int) v.len,
                           v.data);
        }
        m->required = xr_conf_opt(d, 3, "required", &v) != NULL;

        if (xr_conf_opt(d, 3, "table", &v)) {
            m->table = xr_profile_table(p, ld->cfg, v);
            if (m->table == NULL) {
                return xr_lerr(ld, d->line, "unknown table \"%.*s\"",
                               (int) v.len, v.data);
            }
            if (ft == XR_FT_CODE) {
                /* every canonical value in the table must be a known one */
                for (j = 0; j < m->table->ncodes; j++) {
                    size_t  k;

                    for (k = 0; k < sf->nvalues; k++) {
                        if (xr_str_cmp(sf->values[k],
                                       m->table->codes[j].canon) == 0)
                        {
                            break;
                        }
                    }
                    if (k == sf->nvalues) {
                        return xr_lerr(ld, d->line, "table %.*s maps "
                                       "\"%.*s\", not a value of field "
                                       "%.*s", (int) v.len, v.data,
                                       (int) m->table->codes[j].canon.len,
                                       m->table->codes[j].canon.data,
                                       XR_ARG(d, 1));
                    }
                }
            } else if (ft == XR_FT_LIST || ft == XR_FT_AMOUNT
                       || ft == XR_FT_INT || ft == XR_FT_DATE
                       || ft == XR_FT_DATETIME)
            {
                return xr_lerr(ld, d->line, "table= does not apply to "
                               "this field's type");
            }
        }

        if (xr_conf_opt(d, 3, "time", &v)) {
            if (ft != XR_FT_DATE && ft != XR_FT_DATETIME) {
                return xr_lerr(ld, d->line, "time= applies to date and "
                               "datetime fields only");
            }
            m->time = xr_profile_time(p, v);
            if (m->time == NULL) {
                xr_timefmt_t  *tf;

                if (memchr(v.data, '%', v.len) == NULL
                    && !xr_str_eq(v, "epoch") && !xr_str_eq(v, "epoch_ms"))
                {
                    return xr_lerr(ld, d->line, "unknown time format "
                                   "\"%.*s\"", (int) v.len, v.data);
                }
                if (xr_time_pattern_check(v, &has_time) != XR_OK) {
                    return xr_lerr(ld, d->line, "bad time pattern \"%.*s\"",
                                   (int) v.len, v.data);
                }
                tf = xr_pcalloc(ld->cfg->pool, sizeof(xr_timefmt_t));
                if (tf == NULL) {
                    return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
                }
                tf->name = v;
                tf->pattern = v;
                m->time = tf;
            }
            /* written as a number where the codec has them */
            m->time_numeric = xr_str_eq(m->time->pattern, "epoch")
                              || xr_str_eq(m->time->pattern, "epoch_ms");
            m->time_plain = xr_key_plain(m->time->pattern);
        } else if (ft == XR_FT_DATE || ft == XR_FT_DATETIME) {
            return xr_lerr(ld, d->line, "\"%.*s\" needs time=",
                           XR_ARG(d, 1));
        }

        if (xr_conf_opt(d, 3, "amount", &v)) {
            if (ft != XR_FT_AMOUNT) {
                return xr_lerr(ld, d->line, "amount= applies to amount "
                               "fields only");
            }
            if (xr_str_eq(v, "yuan")) {
                m->amount = XR_AMOUNT_YUAN;
            } else if (xr_str_eq(v, "fen")) {
                m->amount = XR_AMOUNT_FEN;
            } else {
                return xr_lerr(ld, d->line, "amount must be yuan or fen");
            }
        }

        if (xr_conf_opt(d, 3, "as", &v)) {
            if (xr_str_eq(v, "number")) {
                m->as = XR_WIRE_NUMBER;
            } else if (xr_str_eq(v, "string")) {
                m->as = XR_WIRE_STRING;
            } else if (xr_str_eq(v, "bool")) {
                m->as = XR_WIRE_BOOL;
            } else {
                return xr_lerr(ld, d->line, "bad as=\"%.*s\"", (int) v.len,
                               v.data);
            }
        }

        if (xr_conf_opt(d, 3, "slice", &v)) {
            const char  *colon = memchr(v.data, ':', v.len);
            xr_str_t     a, b;

            if (colon == NULL) {
                return xr_lerr(ld, d->line, "slice= is START:LEN");
            }
            a.data = v.data;
            a.len = colon - v.data;
            b.data = colon + 1;
            b.len = v.len - a.len - 1;
            if (xr_parse_size(a, &j) != XR_OK
                || xr_parse_size(b, &slice_len) != XR_OK || slice_len == 0)
            {
                return xr_lerr(ld, d->line, "slice= is START:LEN");
            }
            if (ft != XR_FT_STRING && ft != XR_FT_CODE) {
                return xr_lerr(ld, d->line, "slice= applies to string "
                               "fields only");
            }
            /* kept in `value` as "START:LEN"; is_const stays 0 */
            m->value = v;
        }

        if (ft == XR_FT_LIST) {
            if (!d->has_block) {
                return xr_lerr(ld, d->line, "list \"%.*s\" needs a block of "
                               "maps", XR_ARG(d, 1));
            }
            if (xr_parse_maps(pl, d->block, d->nblock, sf->children,
                              sf->nchildren, 0,
                              fixed ? xr_layout_find_records(pl->layouts,
                                                             m->wire)
                                    : NULL,
                              NULL, &m->children, &m->nchildren) != XR_OK)
            {
                return XR_ERROR;
            }
        } else if (d->has_block) {
            return xr_lerr(ld, d->line, "only list fields take a block");
        }

        n++;
    }

    /* equal wire parents share their bytes: compared by pointer per field */
    for (i = 0; i < n; i++) {
        for (j = 0; j < i; j++) {
            if (maps[j].wire_parent.len
                && xr_str_cmp(maps[j].wire_parent, maps[i].wire_parent) == 0)
            {
                maps[i].wire_parent.data = maps[j].wire_parent.data;
                break;
            }
        }
    }

    if (out) {
        out->maps = maps;
        out->nmaps = n;
    }
    if (maps_out) {
        *maps_out = maps;
        *nmaps_out = n;
    }
    return XR_OK;
}


static const struct {
    const char     *name;
    xr_fx_enc_e     enc;
} xr_fx_encs[] = {
    { "text", XR_FX_TEXT },
    { "num", XR_FX_NUM },
    { "bcd", XR_FX_BCD },
    { "bin", XR_FX_BIN },
    { "hex", XR_FX_HEX },
    { NULL, 0 }
};


static int
xr_parse_layout(xr_loader_t *ld, const xr_cdir_t *d, int records_allowed,
    xr_layout_t **out)
{
    static const char *const  known[] = { "fill", NULL };
    static const char *const  rknown[] = { "count", NULL };
    xr_layout_t      *l;
    xr_fxfield_t     *f;
    const xr_cdir_t  *e;
    size_t            i, j, nf = 0;
    xr_str_t          v;

    l = xr_pcalloc(ld->cfg->pool, sizeof(xr_layout_t));
    if (l == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }
    l->line = d->line;
    l->fields = xr_pcalloc(ld->cfg->pool,
                           (d->nblock ? d->nblock : 1) * sizeof(xr_fxfield_t));
    if (l->fields == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }

    for (i = 0; i < d->nblock; i++) {
        e = &d->block[i];

        if (xr_dir_is(e, "records")) {
            if (!records_allowed) {
                return xr_lerr(ld, e->line, "\"records\" is not allowed "
                               "here");
            }
            if (l->repeat) {
                return xr_lerr(ld, e->line, "only one \"records\" block");
            }
            if (e->nargs < 2 || xr_need_block(ld, e, 1) != XR_OK
                || xr_check_opts(ld, e, 2, rknown) != XR_OK)
            {
                return ld->ctx->err ? XR_ERROR
                       : xr_lerr(ld, e->line, "records needs a name");
            }
            l->repeat_name = e->args[1];
            if (xr_conf_opt(e, 2, "count", &v)) {
                l->count_field = v;
            }
            if (xr_parse_layout(ld, e, 0, &l->repeat) != XR_OK) {
                return XR_ERROR;
            }
            if (l->repeat->size == 0) {
                return xr_lerr(ld, e->line, "empty records layout");
            }
            continue;
        }

        if (!xr_dir_is(e, "field")) {
            return xr_lerr(ld, e->line, "unknown directive \"%.*s\", "
                           "expecting \"field\" or \"records\"",
                           XR_ARG(e, 0));
        }
        if (e->nargs < 5 || e->has_block
            || xr_check_opts(ld, e, 5, known) != XR_OK)
        {
            return ld->ctx->err ? XR_ERROR
                   : xr_lerr(ld, e->line, "field needs name, offset, "
                             "length and encoding");
        }

        f = &l->fields[nf];
        f->name = e->args[1];
        f->line = e->line;
        if (xr_parse_size(e->args[2], &f->off) != XR_OK
            || xr_parse_size(e->args[3], &f->len) != XR_OK || f->len == 0)
        {
            return xr_lerr(ld, e->line, "bad offset or length");
        }
        for (j = 0; xr_fx_encs[j].name; j++) {
            if (xr_str_eq(e->args[4], xr_fx_encs[j].name)) {
                break;
            }
        }
        if (xr_fx_encs[j].name == NULL) {
            return xr_lerr(ld, e->line, "unknown encoding \"%.*s\"",
                           XR_ARG(e, 4));
        }
        f->enc = xr_fx_encs[j].enc;
        if (f->enc == XR_FX_BIN && f->len > 8) {
            return xr_lerr(ld, e->line, "bin fields are 1 to 8 bytes");
        }
        if (xr_conf_opt(e, 5, "fill", &v)) {
            f->fill = v;
        }

        for (j = 0; j < nf; j++) {
            if (xr_str_cmp(l->fields[j].name, f->name) == 0) {
                return xr_lerr(ld, e->line, "duplicate field \"%.*s\"",
                               XR_ARG(e, 1));
            }
            if (f->off < l->fields[j].off + l->fields[j].len
                && l->fields[j].off < f->off + f->len)
            {
                return xr_lerr(ld, e->line, "field \"%.*s\" overlaps "
                               "\"%.*s\"", XR_ARG(e, 1),
                               (int) l->fields[j].name.len,
                               l->fields[j].name.data);
            }
        }
        if (f->off + f->len > l->size) {
            l->size = f->off + f->len;
        }
        nf++;
    }

    l->nfields = nf;

    if (l->count_field.len) {
        for (j = 0; j < nf; j++) {
            if (xr_str_cmp(l->fields[j].name, l->count_field) == 0) {
                break;
            }
        }
        /* the count may also live in the header: checked by the caller */
        if (j == nf) {
            l->line = -l->line;
        }
    }

    *out = l;
    return XR_OK;
}


/* Required canonical fields must be mapped, or decoding always fails. */
static int
xr_check_required(xr_loader_t *ld, const xr_sfield_t *fields, size_t nf,
    const xr_map_t *maps, size_t nmaps, const char *where, int line)
{
    size_t  i, j;

    for (i = 0; i < nf; i++) {
        if (!fields[i].required) {
            continue;
        }
        for (j = 0; j < nmaps; j++) {
            if (maps[j].sf == &fields[i]) {
                break;
            }
        }
        if (j == nmaps) {
            return xr_lerr(ld, line, "%s: required field \"%.*s\" is not "
                           "mapped", where, (int) fields[i].name.len,
                           fields[i].name.data);
        }
        if (fields[i].type == XR_FT_LIST
            && xr_check_required(ld, fields[i].children,
                                 fields[i].nchildren, maps[j].children,
                                 maps[j].nchildren, where, maps[j].line)
               != XR_OK)
        {
            return XR_ERROR;
        }
    }
    return XR_OK;
}


static int
xr_check_count_field(xr_loader_t *ld, const xr_layout_t *header,
    xr_layout_t *body)
{
    size_t  i;

    if (body == NULL || body->line >= 0) {
        return XR_OK;
    }
    body->line = -body->line;
    if (header) {
        for (i = 0; i < header->nfields; i++) {
            if (xr_str_cmp(header->fields[i].name, body->count_field) == 0) {
                return XR_OK;
            }
        }
    }
    return xr_lerr(ld, body->line, "count field \"%.*s\" is in neither the "
                   "layout nor the header", (int) body->count_field.len,
                   body->count_field.data);
}


static int
xr_parse_envelope(xr_pload_t *pl, const xr_cdir_t *d, int dir)
{
    xr_profile_t  *p = pl->p;

    if (xr_need_block(pl->ld, d, 1) != XR_OK) {
        return XR_ERROR;
    }
    if (p->env[dir].maps) {
        return xr_lerr(pl->ld, d->line, "duplicate \"%.*s\" block",
                       XR_ARG(d, 0));
    }
    pl->layouts[0] = p->header[dir];
    pl->layouts[1] = NULL;
    return xr_parse_maps(pl, d->block, d->nblock, NULL, 0, 1, NULL,
                         &p->env[dir], NULL, NULL);
}


static int
xr_parse_ptxn(xr_pload_t *pl, const xr_cdir_t *d, xr_ptxn_t *t)
{
    xr_loader_t      *ld = pl->ld;
    xr_profile_t     *p = pl->p;
    const xr_cdir_t  *e;
    size_t            i;
    int               dir, pass;
    char              where[96];

    if (xr_need_args(ld, d, 2, 2) != XR_OK
        || xr_need_block(ld, d, 1) != XR_OK)
    {
        return XR_ERROR;
    }

    t->stxn = xr_schema_txn(p->schema, d->args[1]);
    if (t->stxn == NULL) {
        return xr_lerr(ld, d->line, "txn \"%.*s\" is not in the %.*s "
                       "schema", XR_ARG(d, 1), (int) p->domain.len,
                       p->domain.data);
    }
    t->code = d->args[2];
    t->line = d->line;

    /* layouts first: maps refer to their fields */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < d->nblock; i++) {
            e = &d->block[i];

            if (xr_dir_is(e, "layout")) {
                if (pass) {
                    continue;
                }
                if (!xr_str_eq(p->codec, "fixed")) {
                    return xr_lerr(ld, e->line, "\"layout\" is for codec "
                                   "fixed");
                }
                if (xr_need_args(ld, e, 1, 1) != XR_OK
                    || xr_need_block(ld, e, 1) != XR_OK)
                {
                    return XR_ERROR;
                }
                if (xr_str_eq(e->args[1], "request")) {
                    dir = XR_DIR_REQUEST;
                } else if (xr_str_eq(e->args[1], "response")) {
                    dir = XR_DIR_RESPONSE;
                } else {
                    return xr_lerr(ld, e->line, "layout request or "
                                   "layout response");
                }
                if (xr_parse_layout(ld, e, 1, &t->layout[dir]) != XR_OK
                    || xr_check_count_field(ld, p->header[dir],
                                            t->layout[dir]) != XR_OK)
                {
                    return XR_ERROR;
                }
                continue;
            }

            if (pass == 0) {
                continue;
            }

            if (xr_dir_is(e, "path")) {
                if (xr_need_args(ld, e, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                if (e->args[1].len == 0 || e->args[1].data[0] != '/') {
                    return xr_lerr(ld, e->line, "path must start with /");
                }
                t->path = e->args[1];

            } else if (xr_dir_is(e, "request") || xr_dir_is(e, "response")) {
                dir = xr_dir_is(e, "request") ? XR_DIR_REQUEST
                                              : XR_DIR_RESPONSE;
                if (xr_need_block(ld, e, 1) != XR_OK) {
                    return XR_ERROR;
                }
                if (t->maps[dir].maps) {
                    return xr_lerr(ld, e->line, "duplicate \"%.*s\" block",
                                   XR_ARG(e, 0));
                }
                pl->layouts[0] = p->header[dir];
                pl->layouts[1] = t->layout[dir];
                if (xr_parse_maps(pl, e->block, e->nblock,
                                  t->stxn->fields[dir],
                                  t->stxn->nfields[dir], 0, NULL,
                                  &t->maps[dir], NULL, NULL) != XR_OK)
                {
                    return XR_ERROR;
                }
                snprintf(where, sizeof(where), "txn %.*s %s",
                         (int) t->stxn->name.len, t->stxn->name.data,
                         dir == XR_DIR_REQUEST ? "request" : "response");
                if (xr_check_required(ld, t->stxn->fields[dir],
                                      t->stxn->nfields[dir],
                                      t->maps[dir].maps, t->maps[dir].nmaps,
                                      where, e->line) != XR_OK)
                {
                    return XR_ERROR;
                }

            } else {
                return xr_lerr(ld, e->line, "unknown directive \"%.*s\" in "
                               "txn", XR_ARG(e, 0));
            }
        }
    }

    for (dir = 0; dir < 2; dir++) {
        if (t->maps[dir].maps == NULL && t->stxn->nfields[dir]) {
            /* a txn must say how its fields travel, even if only some */
            if (xr_check_required(ld, t->stxn->fields[dir],
                                  t->stxn->nfields[dir], NULL, 0,
                                  dir == XR_DIR_REQUEST ? "request"
                                                        : "response",
                                  d->line) != XR_OK)
            {
                return XR_ERROR;
            }
        }
    }
    if (xr_str_eq(p->codec, "fixed")
        && (t->layout[XR_DIR_REQUEST] == NULL
            || t->layout[XR_DIR_RESPONSE] == NULL))
    {
        return xr_lerr(ld, d->line, "fixed txn %.*s needs layout request "
                       "and layout response", XR_ARG(d, 1));
    }
    return XR_OK;
}


static int
xr_parse_result(xr_loader_t *ld, const xr_cdir_t *d, xr_profile_t *p)
{
    static const char *const  known[] = { "ok", "fail", "as", NULL };
    xr_str_t                  v;

    if (d->nargs < 3 || xr_check_opts(ld, d, 2, known) != XR_OK) {
        return ld->ctx->err ? XR_ERROR
               : xr_lerr(ld, d->line, "result needs a wire path and ok=");
    }
    p->result_field = d->args[1];
    if (xr_conf_opt(d, 2, "ok", &v) == NULL) {
        return xr_lerr(ld, d->line, "result needs ok=");
    }
    /* ok=00,OK: several values mean success; the first is written */
    if (xr_split_values(ld, v, &p->ok_values, &p->nok_values) != XR_OK) {
        return xr_lerr(ld, d->line, "bad ok= list");
    }
    p->ok_value = p->ok_values[0];
    if (xr_conf_opt(d, 2, "fail", &v)) {
        p->fail_value = v;
    }
    if (xr_conf_opt(d, 2, "as", &v)) {
        if (xr_str_eq(v, "number")) {
            p->result_as = XR_WIRE_NUMBER;
        } else if (xr_str_eq(v, "string")) {
            p->result_as = XR_WIRE_STRING;
        } else {
            return xr_lerr(ld, d->line, "bad as=\"%.*s\"", (int) v.len,
                           v.data);
        }
    }
    return XR_OK;
}


/*
 * Two maps writing one wire path would make the encoder lose a value (or
 * write a key twice), and a path that is another's parent cannot be both a
 * value and an object: refused here, once, so the writers need not look.
 * Slices only read.
 */
static int
xr_check_wire_paths(xr_loader_t *ld, const xr_map_t **maps, size_t n)
{
    const xr_map_t  *a, *b;
    size_t           i, j, k;

    for (i = 0; i < n; i++) {
        a = maps[i];
        for (j = i + 1; j < n; j++) {
            b = maps[j];
            k = a->wire.len < b->wire.len ? a->wire.len : b->wire.len;
            if (memcmp(a->wire.data, b->wire.data, k) != 0) {
                continue;
            }
            if (a->wire.len == b->wire.len) {
                return xr_lerr(ld, b->line, "wire path \"%.*s\" is also "
                               "written at line %d", (int) b->wire.len,
                               b->wire.data, a->line);
            }
            if ((a->wire.len > k && a->wire.data[k] == '.')
                || (b->wire.len > k && b->wire.data[k] == '.'))
            {
                return xr_lerr(ld, b->line, "wire path \"%.*s\" and "
                               "\"%.*s\" (line %d): a value cannot hold "
                               "fields", (int) b->wire.len, b->wire.data,
                               (int) a->wire.len, a->wire.data, a->line);
            }
        }
    }
    return XR_OK;
}


/* Marks the maps whose canon an earlier map of the list has already. */
static void
xr_mark_canon_again(xr_map_t *maps, size_t n)
{
    size_t  i, j;

    for (i = 0; i < n; i++) {
        maps[i].canon_again = 0;
        for (j = 0; j < i; j++) {
            if (xr_str_cmp(maps[j].canon, maps[i].canon) == 0) {
                maps[i].canon_again = 1;
                break;
            }
        }
        if (maps[i].nchildren) {
            xr_mark_canon_again(maps[i].children, maps[i].nchildren);
        }
    }
}


static int
xr_check_txn_paths(xr_loader_t *ld, const xr_profile_t *p,
    const xr_ptxn_t *t, int dir)
{
    const xr_map_t  **all, *m;
    size_t            n = 0, i, cap;

    cap = p->env[dir].nmaps + t->maps[dir].nmaps + 1;
    all = xr_palloc(ld->cfg->pool, cap * sizeof(xr_map_t *));
    if (all == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }
    for (i = 0; i < p->env[dir].nmaps; i++) {
        m = &p->env[dir].maps[i];
        if (m->wire.len && (m->is_const || m->value.len == 0)) {
            all[n++] = m;
        }
    }
    for (i = 0; i < t->maps[dir].nmaps; i++) {
        m = &t->maps[dir].maps[i];
        if (m->wire.len && (m->is_const || m->value.len == 0)) {
            all[n++] = m;
        }
    }
    if (xr_check_wire_paths(ld, all, n) != XR_OK) {
        return XR_ERROR;
    }

    /* inside each list item the same holds */
    for (i = 0; i < t->maps[dir].nmaps; i++) {
        m = &t->maps[dir].maps[i];
        if (m->nchildren) {
            const xr_map_t  **kids;
            size_t            k, nk = 0;

            kids = xr_palloc(ld->cfg->pool,
                             m->nchildren * sizeof(xr_map_t *));
            if (kids == NULL) {
                return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
            }
            for (k = 0; k < m->nchildren; k++) {
                if (m->children[k].is_const
                    || m->children[k].value.len == 0)
                {
                    kids[nk++] = &m->children[k];
                }
            }
            if (xr_check_wire_paths(ld, kids, nk) != XR_OK) {
                return XR_ERROR;
            }
        }
    }
    return XR_OK;
}


/* ---- write plans (xr_profile.h) --------------------------------------- */

/*
 * Text JSON can hold between quotes as it is: printable ASCII but the
 * quote and the backslash.
 */
static unsigned
xr_key_plain(xr_str_t key)
{
    size_t  i;

    for (i = 0; i < key.len; i++) {
        if ((unsigned char) key.data[i] < 0x20
            || (unsigned char) key.data[i] >= 0x7f
            || key.data[i] == '"' || key.data[i] == '\\')
        {
            return 0;
        }
    }
    return 1;
}


static xr_wnode_t *
xr_wplan_node(xr_pool_t *pool, xr_wplan_t *plan, xr_wnode_t *parent,
    xr_str_t key, int slot, size_t first)
{
    xr_wnode_t  *n, **link;

    n = xr_pcalloc(pool, sizeof(xr_wnode_t));
    if (n == NULL) {
        return NULL;
    }
    n->key = key;
    n->plain = xr_key_plain(key);
    n->slot = slot;
    n->first = first;
    n->index = plan->nnodes++;
    n->parent = parent;

    if (parent) {
        for (link = &parent->child; *link; link = &(*link)->next) {
            /* void */
        }
        *link = n;
    }
    return n;
}


/*
 * The slot's path into the plan, objects made on the way as the mapper
 * would make them.  XR_DECLINED when it meets another slot's path (only
 * the result and message fields can: the loader refused the rest).
 */
static int
xr_wplan_add(xr_pool_t *pool, xr_wplan_t *plan, xr_str_t path, size_t slot,
    const xr_wplan_t *items)
{
    xr_wnode_t  *n = plan->root, *c;
    xr_str_t     key;
    size_t       i;
    unsigned     depth = 0;

    for ( ;; ) {
        for (i = 0; i < path.len && path.data[i] != '.'; i++) {
            /* void */
        }
        key.data = path.data;
        key.len = i;
        if (key.len == 0) {
            return XR_DECLINED;
        }
        depth++;

        for (c = n->child; c; c = c->next) {
            if (xr_str_cmp(c->key, key) == 0) {
                break;
            }
        }

        if (i == path.len) {
            if (c) {
                return XR_DECLINED;
            }
            c = xr_wplan_node(pool, plan, n, key, (int) slot, slot);
            if (c == NULL) {
                return XR_ERROR;
            }
            c->items = items;
            plan->leaves[slot] = c;
            if (items && depth + 1 + items->depth > plan->depth) {
                plan->depth = depth + 1 + items->depth;
            }
            return XR_OK;
        }

        if (c == NULL) {
            c = xr_wplan_node(pool, plan, n, key, -1, slot);
            if (c == NULL) {
                return XR_ERROR;
            }
            if (depth > plan->depth) {
                plan->depth = depth;
            }
        } else if (c->slot >= 0) {
            return XR_DECLINED;
        }

        n = c;
        path.data += i + 1;
        path.len -= i + 1;
    }
}


static xr_wplan_t *
xr_wplan_new(xr_pool_t *pool, size_t nslots)
{
    xr_wplan_t  *plan;

    plan = xr_pcalloc(pool, sizeof(xr_wplan_t));
    if (plan == NULL) {
        return NULL;
    }
    plan->leaves = xr_pcalloc(pool, (nslots + 1) * sizeof(xr_wnode_t *));
    if (plan->leaves == NULL) {
        return NULL;
    }
    plan->nslots = nslots;
    plan->root = xr_wplan_node(pool, plan, NULL, (xr_str_t) xr_null_string,
                               -1, 0);
    return plan->root ? plan : NULL;
}


/*
 * The slots of maps (a transaction's or a list's) from slot `base` on;
 * lists get their items' plan first.
 */
static int
xr_wplan_maps(xr_pool_t *pool, xr_wplan_t *plan, size_t *slot,
    xr_map_t *maps, size_t nmaps)
{
    xr_map_t    *m;
    xr_wplan_t  *items;
    size_t       i, k, n;
    int          rc;

    for (i = 0; i < nmaps; i++) {
        m = &maps[i];
        if (!xr_map_writes(m)) {
            continue;
        }

        items = NULL;
        if (m->nchildren) {
            for (n = 0, k = 0; k < m->nchildren; k++) {
                n += xr_map_writes(&m->children[k]);
            }
            items = xr_wplan_new(pool, n);
            if (items == NULL) {
                return XR_ERROR;
            }
            n = 0;
            rc = xr_wplan_maps(pool, items, &n, m->children, m->nchildren);
            if (rc != XR_OK) {
                return rc;
            }
            m->plan = items;
        }

        rc = xr_wplan_add(pool, plan, m->wire, *slot, items);
        if (rc != XR_OK) {
            return rc;
        }
        if (m->sf) {
            plan->leaves[*slot]->pii = m->sf->pii;
        }
        (*slot)++;
    }
    return XR_OK;
}


/* The plan of one direction of a transaction; NULL where there is none. */
static int
xr_wplan_txn(xr_loader_t *ld, xr_profile_t *p, xr_ptxn_t *t, int dir)
{
    xr_pool_t   *pool = ld->cfg->pool;
    xr_wplan_t  *plan;
    size_t       n, i, slot = 0;
    int          rc;

    n = p->env[dir].nmaps + 2;
    for (i = 0; i < t->maps[dir].nmaps; i++) {
        n += xr_map_writes(&t->maps[dir].maps[i]);
    }

    plan = xr_wplan_new(pool, n);
    if (plan == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }

    rc = XR_OK;

    for (i = 0; rc == XR_OK && i < p->env[dir].nmaps; i++) {
        rc = xr_wplan_add(pool, plan, p->env[dir].maps[i].wire, slot++,
                          NULL);
    }
    if (rc == XR_OK && dir == XR_DIR_RESPONSE) {
        rc = xr_wplan_add(pool, plan, p->result_field, slot++, NULL);
        if (rc == XR_OK && p->message_field.len) {
            rc = xr_wplan_add(pool, plan, p->message_field, slot++, NULL);
        }
    }
    if (rc == XR_OK) {
        rc = xr_wplan_maps(pool, plan, &slot, t->maps[dir].maps,
                           t->maps[dir].nmaps);
    }

    if (rc == XR_ERROR) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }
    plan->nslots = slot;
    t->plan[dir] = (rc == XR_OK) ? plan : NULL;
    return XR_OK;
}


static int
xr_load_profile(xr_loader_t *ld, const char *path, xr_profile_t *p)
{
    xr_cdir_t           *dirs, *d;
    size_t               n, i, j, ntxn = 0, ntimes = 0, ntables = 0;
    const char          *base, *dot;
    const xr_region_t   *region;
    xr_pload_t           pl;
    xr_str_t             errors_name = xr_null_string, v;
    int                  dir, has_time, pass, status_line = 0;
    int                  seal_line = 0;
    const xr_region_t   *given = NULL;
    int                  given_line = 0;

    if (xr_load_file(ld, path, &dirs, &n) != XR_OK) {
        return XR_ERROR;
    }

    memset(p, 0, sizeof(xr_profile_t));
    p->file = ld->file;
    pl.ld = ld;
    pl.p = p;
    pl.layouts[0] = pl.layouts[1] = pl.layouts[2] = NULL;

    for (i = 0; i < n; i++) {
        if (xr_dir_is(&dirs[i], "txn")) {
            ntxn++;
        } else if (xr_dir_is(&dirs[i], "time")) {
            ntimes++;
        } else if (xr_dir_is(&dirs[i], "table")) {
            ntables++;
        }
    }
    p->txns = xr_pcalloc(ld->cfg->pool, (ntxn + 1) * sizeof(xr_ptxn_t));
    p->times = xr_pcalloc(ld->cfg->pool, (ntimes + 1) * sizeof(xr_timefmt_t));
    p->tables = xr_pcalloc(ld->cfg->pool, (ntables + 1) * sizeof(xr_table_t));
    if (p->txns == NULL || p->times == NULL || p->tables == NULL) {
        return xr_fail(ld->ctx, XR_E_NOMEM, NULL, NULL);
    }

    /*
     * Pass 0: identity, codec, formats, tables, headers.  Pass 1:
     * envelopes and transactions, which refer to all of those.
     */
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < n; i++) {
            d = &dirs[i];

            if (pass == 1) {
                if (xr_dir_is(d, "request") || xr_dir_is(d, "response")) {
                    dir = xr_dir_is(d, "request") ? XR_DIR_REQUEST
                                                  : XR_DIR_RESPONSE;
                    if (xr_parse_envelope(&pl, d, dir) != XR_OK) {
                        return XR_ERROR;
                    }
                } else if (xr_dir_is(d, "txn")) {
                    if (xr_parse_ptxn(&pl, d, &p->txns[p->ntxns]) != XR_OK) {
                        return XR_ERROR;
                    }
                    for (j = 0; j < p->ntxns; j++) {
                        if (p->txns[j].stxn == p->txns[p->ntxns].stxn) {
                            return xr_lerr(ld, d->line, "duplicate txn "
                                           "\"%.*s\"", XR_ARG(d, 1));
                        }
                        if (xr_str_cmp(p->txns[j].code,
                                       p->txns[p->ntxns].code) == 0)
                        {
                            return xr_lerr(ld, d->line, "txn code \"%.*s\" "
                                           "is used twice", XR_ARG(d, 2));
                        }
                    }
                    p->ntxns++;
                }
                continue;
            }

            if (xr_dir_is(d, "profile")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                p->name = d->args[1];
                dot = memchr(p->name.data, '.', p->name.len);
                if (dot == NULL) {
                    return xr_lerr(ld, d->line, "profile name must be "
                                   "<region>.<domain>");
                }
                p->region_name.data = p->name.data;
                p->region_name.len = dot - p->name.data;
                p->domain.data = dot + 1;
                p->domain.len = p->name.len - p->region_name.len - 1;

                base = strrchr(path, '/');
                base = base ? base + 1 : path;
                if (strlen(base) != p->name.len + 5
                    || memcmp(base, p->name.data, p->name.len) != 0
                    || strcmp(base + p->name.len, ".conf") != 0)
                {
                    return xr_lerr(ld, d->line, "profile \"%.*s\" must be "
                                   "in a file named %.*s.conf", XR_ARG(d, 1),
                                   XR_ARG(d, 1));
                }
                p->schema = xr_config_schema(ld->cfg, p->domain);
                if (p->schema == NULL) {
                    return xr_lerr(ld, d->line, "unknown domain \"%.*s\"",
                                   (int) p->domain.len, p->domain.data);
                }

            } else if (xr_dir_is(d, "region")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                region = xr_config_region(ld->cfg, d->args[1]);
                if (region == NULL) {
                    return xr_lerr(ld, d->line, "unknown region \"%.*s\"",
                                   XR_ARG(d, 1));
                }
                /* checked against the name once both are known */
                given = region;
                given_line = d->line;
                p->region = region->code;

            } else if (xr_dir_is(d, "description")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                p->description = d->args[1];

            } else if (xr_dir_is(d, "codec")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                p->codec = d->args[1];
                p->adapter = xr_adapter_find(p->codec);
                if (p->adapter == NULL) {
                    return xr_lerr(ld, d->line, "unknown codec \"%.*s\"",
                                   XR_ARG(d, 1));
                }

            } else if (xr_dir_is(d, "charset")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                if (xr_str_eq(d->args[1], "utf-8")
                    || xr_str_eq(d->args[1], "UTF-8"))
                {
                    p->charset = XR_CHARSET_UTF8;
                } else if (xr_str_eq(d->args[1], "gbk")
                           || xr_str_eq(d->args[1], "GBK"))
                {
                    p->charset = XR_CHARSET_GBK;
                } else {
                    return xr_lerr(ld, d->line, "charset must be utf-8 or "
                                   "gbk");
                }

            } else if (xr_dir_is(d, "content_type")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                p->content_type = d->args[1];

            } else if (xr_dir_is(d, "amount")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                if (xr_str_eq(d->args[1], "yuan")) {
                    p->amount = XR_AMOUNT_YUAN;
                } else if (xr_str_eq(d->args[1], "fen")) {
                    p->amount = XR_AMOUNT_FEN;
                } else {
                    return xr_lerr(ld, d->line, "amount must be yuan or fen");
                }

            } else if (xr_dir_is(d, "time")) {
                if (xr_need_args(ld, d, 2, 2) != XR_OK) {
                    return XR_ERROR;
                }
                if (xr_profile_time(p, d->args[1])) {
                    return xr_lerr(ld, d->line, "duplicate time format "
                                   "\"%.*s\"", XR_ARG(d, 1));
                }
                if (xr_time_pattern_check(d->args[2], &has_time) != XR_OK) {
                    return xr_lerr(ld, d->line, "bad time pattern \"%.*s\"",
                                   XR_ARG(d, 2));
                }
                p->times[p->ntimes].name = d->args[1];
                p->times[p->ntimes].pattern = d->args[2];
                p->ntimes++;

            } else if (xr_dir_is(d, "table")) {
                if (xr_parse_table(ld, d, &p->tables[p->ntables]) != XR_OK) {
                    return XR_ERROR;
                }
                for (j = 0; j < p->ntables; j++) {
                    if (xr_str_cmp(p->tables[j].name, d->args[1]) == 0) {
                        return xr_lerr(ld, d->line, "duplicate table "
                                       "\"%.*s\"", XR_ARG(d, 1));
                    }
                }
                p->ntables++;

            } else if (xr_dir_is(d, "result")) {
                if (xr_parse_result(ld, d, p) != XR_OK) {
                    return XR_ERROR;
                }

            } else if (xr_dir_is(d, "message")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                p->message_field = d->args[1];

            } else if (xr_dir_is(d, "errors")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK) {
                    return XR_ERROR;
                }
                errors_name = d->args[1];
                status_line = d->line;

            } else if (xr_dir_is(d, "error_status")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK
                    || xr_parse_size(d->args[1], &j) != XR_OK
                    || j < 200 || j > 599)
                {
                    return ld->ctx->err ? XR_ERROR
                           : xr_lerr(ld, d->line, "error_status must be an "
                                     "HTTP status");
                }
                p->error_status = (int) j;

            } else if (xr_dir_is(d, "seal")) {
                if (xr_need_args(ld, d, 1, 2) != XR_OK) {
                    return XR_ERROR;
                }
                if (!xr_str_eq(d->args[1], "nhsa_mobile")) {
                    return xr_lerr(ld, d->line, "seal must be nhsa_mobile");
                }
                p->seal = d->args[1];
                p->seal_member = xr_str_from("data");
                if (d->nargs > 2) {
                    if (d->args[2].len <= 7
                        || memcmp(d->args[2].data, "member=", 7) != 0)
                    {
                        return xr_lerr(ld, d->line, "seal takes member=NAME");
                    }
                    p->seal_member.data = d->args[2].data + 7;
                    p->seal_member.len = d->args[2].len - 7;
                }
                seal_line = d->line;

            } else if (xr_dir_is(d, "header")) {
                if (xr_need_args(ld, d, 1, 1) != XR_OK
                    || xr_need_block(ld, d, 1) != XR_OK)
                {
                    return XR_ERROR;
                }
                if (xr_str_eq(d->args[1], "request")) {
                    dir = XR_DIR_REQUEST;
                } else if (xr_str_eq(d->args[1], "response")) {
                    dir = XR_DIR_RESPONSE;
                } else {
                    return xr_lerr(ld, d->line, "header request or header "
                                   "response");
                }
                if (xr_parse_layout(ld, d, 0, &p->header[dir]) != XR_OK) {
                    return XR_ERROR;
                }

            } else if (!xr_dir_is(d, "request") && !xr_dir_is(d, "response")
                       && !xr_dir_is(d, "txn"))
            {
                return xr_lerr(ld, d->line, "unknown directive \"%.*s\"",
                               XR_ARG(d, 0));
            }
        }

        if (pass == 0) {
            if (p->name.len == 0) {
                return xr_lerr(ld, 1, "no \"profile\" directive");
            }
            if (given && xr_str_cmp(given->name, p->region_name) != 0) {
                return xr_lerr(ld, given_line, "region \"%.*s\" does not "
                               "match the profile name \"%.*s\"",
                               (int) given->name.len, given->name.data,
                               (int) p->name.len, p->name.data);
            }
            if (p->region_name.len && p->region.data == NULL
                && xr_config_region(ld->cfg, p->region_name) == NULL)
            {
                return xr_lerr(ld, 1, "no \"region\" directive");
            }
            if (p->region.data == NULL) {
                return xr_lerr(ld, 1, "no \"region\" directive");
            }
            if (p->adapter == NULL) {
                return xr_lerr(ld, 1, "no \"codec\" directive");
            }
            if (p->amount == XR_AMOUNT_DEFAULT) {
                return xr_lerr(ld, 1, "no \"amount\" directive");
            }
            if (p->result_field.len == 0) {
                return xr_lerr(ld, 1, "no \"result\" directive");
            }
            if (p->seal.len
                && (strcmp(p->adapter->name, "json") != 0
                    || p->charset != XR_CHARSET_UTF8))
            {
                return xr_lerr(ld, seal_line, "seal needs codec json and "
                               "charset utf-8");
            }
            if (errors_name.len) {
                p->errors = xr_profile_table(p, ld->cfg, errors_name);
                if (p->errors == NULL) {
                    return xr_lerr(ld, status_line, "unknown table \"%.*s\"",
                                   (int) errors_name.len, errors_name.data);
                }
                for (j = 0; j < p->errors->ncodes; j++) {
                    xr_err_e  e;

                    if (xr_error_by_name(p->errors->codes[j].canon, &e)
                        != XR_OK
                        && !(p->errors->codes[j].canon.len > 4
                             && memcmp(p->errors->codes[j].canon.data,
                                       "BIZ-", 4) == 0))
                    {
                        return xr_lerr(ld, p->errors->line, "unknown error "
                                       "code \"%.*s\" (docs/errors.md)",
                                       (int) p->errors->codes[j].canon.len,
                                       p->errors->codes[j].canon.data);
                    }
                }
            }
            if (xr_str_eq(p->codec, "fixed")
                && (p->header[XR_DIR_REQUEST] == NULL
                    || p->header[XR_DIR_RESPONSE] == NULL))
            {
                return xr_lerr(ld, 1, "codec fixed needs header request and "
                               "header response");
            }
            if (!xr_str_eq(p->codec, "fixed")
                && (p->header[XR_DIR_REQUEST] || p->header[XR_DIR_RESPONSE]))
            {
                return xr_lerr(ld, 1, "\"header\" is for codec fixed");
            }
            if (xr_str_eq(p->codec, "fixed")) {
                v = p->result_field;
                if (!xr_layout_has(p->header[XR_DIR_RESPONSE], v, 0)) {
                    return xr_lerr(ld, 1, "result field \"%.*s\" is not in "
                                   "the response header", (int) v.len,
                                   v.data);
                }
                v = p->message_field;
                if (v.len
                    && !xr_layout_has(p->header[XR_DIR_RESPONSE], v, 0))
                {
                    return xr_lerr(ld, 1, "message field \"%.*s\" is not "
                                   "in the response header", (int) v.len,
                                   v.data);
                }
            }
        }
    }

    if (xr_profile_env_map(p, XR_DIR_REQUEST, XR_ENV_TXN) == NULL) {
        return xr_lerr(ld, 1, "the request envelope must map @txn");
    }
    if (xr_profile_env_map(p, XR_DIR_REQUEST, XR_ENV_MSG_ID) == NULL) {
        return xr_lerr(ld, 1, "the request envelope must map @msg_id");
    }
    if (p->ntxns == 0) {
        return xr_lerr(ld, 1, "profile has no txn");
    }

    for (j = 0; j < p->ntxns; j++) {
        xr_mark_canon_again(p->txns[j].maps[XR_DIR_REQUEST].maps,
                            p->txns[j].maps[XR_DIR_REQUEST].nmaps);
        xr_mark_canon_again(p->txns[j].maps[XR_DIR_RESPONSE].maps,
                            p->txns[j].maps[XR_DIR_RESPONSE].nmaps);
        if (xr_check_txn_paths(ld, p, &p->txns[j], XR_DIR_REQUEST) != XR_OK
            || xr_check_txn_paths(ld, p, &p->txns[j], XR_DIR_RESPONSE)
               != XR_OK)
        {
            return XR_ERROR;
        }
        if (p->adapter->encode_plan
            && (xr_wplan_txn(ld, p, &p->txns[j], XR_DIR_REQUEST) != XR_OK
                || xr_wplan_txn(ld, p, &p->txns[j], XR_DIR_RESPONSE)
                   != XR_OK))
        {
            return XR_ERROR;
        }
    }

    /* the Content-Type of every message, built once */
    {
        xr_ctx_t  cctx;

        xr_ctx_init(&cctx, ld->cfg->pool);
        p->http_content_type = xr_profile_content_type(&cctx, p);
    }
    return XR_OK;
}


/* ---- directory loading ------------------------------------------------- */

static int
xr_conf_name_filter(const struct dirent *e)
{
    size_t  n = strlen(e->d_name);

    return n > 5 && e->d_name[0] != '.'
           && strcmp(e->d_name + n - 5, ".conf") == 0;
}


typedef int (*xr_each_pt)(xr_loader_t *ld, const char *path, void *data);


static int
xr_each_file(xr_loader_t *ld, const char *dir, xr_each_pt fn, void *data,
    size_t *count)
{
    struct dirent  **names;
    int              n, i, rc = XR_OK;
    char             path[4096];

    n = scandir(dir, &names, xr_conf_name_filter, alphasort);
    if (n < 0) {
        *count = 0;
        return XR_DECLINED;
    }
    for (i = 0; i < n; i++) {
        if (rc == XR_OK) {
            snprintf(path, sizeof(path), "%s/%s", dir, names[i]->d_name);
            rc = fn(ld, path, data);
        }
        free(names[i]);
    }
    free(names);
    *count = (size_t) n;
    return rc;
}


static int
xr_each_table(xr_loader_t *ld, const char *path, void *data)
{
    (void) data;
    return xr_load_tables(ld, path);
}


static int
xr_each_schema(xr_loader_t *ld, const char *path, void *data)
{
    xr_config_t  *cfg = ld->cfg;
    size_t        i;
    xr_schema_t  *s;

    (void) data;
    s = &cfg->schemas[cfg->nschemas];
    if (xr_load_schema(ld, path, s) != XR_OK) {
        return XR_ERROR;
    }
    for (i = 0; i < cfg->nschemas; i++) {
        if (xr_str_cmp(cfg->schemas[i].domain, s->domain) == 0) {
            return xr_lerr(ld, 1, "duplicate domain \"%.*s\"",
                           (int) s->domain.len, s->domain.data);
        }
    }
    cfg->nschemas++;
    return XR_OK;
}


static int
xr_each_profile(xr_loader_t *ld, const char *path, void *data)
{
    xr_config_t   *cfg = ld->cfg;
    xr_profile_t  *p;

    (void) data;
    p = &cfg->profiles[cfg->nprofiles];
    if (xr_load_profile(ld, path, p) != XR_OK) {
        return XR_ERROR;
    }
    if (xr_config_profile(cfg, p->name) != NULL) {
        return xr_lerr(ld, 1, "duplicate profile \"%.*s\"",
                       (int) p->name.len, p->name.data);
    }
    cfg->nprofiles++;
    return XR_OK;
}


static int
xr_count_conf(const char *dir)
{
    struct dirent  **names;
    int              n, i;

    n = scandir(dir, &names, xr_conf_name_filter, NULL);
    if (n < 0) {
        return 0;
    }
    for (i = 0; i < n; i++) {
        free(names[i]);
    }
    free(names);
    return n;
}


int
xr_config_load(xr_ctx_t *ctx, const char *dir, xr_config_t **out)
{
    xr_pool_t    *pool;
    xr_config_t  *cfg;
    xr_loader_t   ld;
    char          path[4096];
    size_t        count;
    int           rc, nprof;

    *out = NULL;

    pool = xr_pool_create(65536);
    if (pool == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    cfg = xr_pcalloc(pool, sizeof(xr_config_t));
    if (cfg == NULL) {
        xr_pool_destroy(pool);
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    cfg->pool = pool;
    cfg->dir = xr_pstrndup(pool, dir, strlen(dir));

    ld.ctx = ctx;
    ld.cfg = cfg;
    ld.file = dir;

    if (xr_adapters_init() != XR_OK) {
        xr_fail(ctx, XR_E_INTERNAL, NULL, "adapter initialisation failed");
        goto failed;
    }

    snprintf(path, sizeof(path), "%s/regions.conf", dir);
    if (xr_load_regions(&ld, path) != XR_OK) {
        goto failed;
    }

    snprintf(path, sizeof(path), "%s/tables", dir);
    rc = xr_each_file(&ld, path, xr_each_table, NULL, &count);
    if (rc == XR_ERROR) {
        goto failed;
    }

    snprintf(path, sizeof(path), "%s/schema", dir);
    cfg->schemas = xr_pcalloc(pool, (xr_count_conf(path) + 1)
                                    * sizeof(xr_schema_t));
    if (cfg->schemas == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        goto failed;
    }
    rc = xr_each_file(&ld, path, xr_each_schema, NULL, &count);
    if (rc == XR_ERROR) {
        goto failed;
    }
    if (cfg->nschemas == 0) {
        xr_fail(ctx, XR_E_CONFIG, NULL, "%s: no schema files", path);
        goto failed;
    }

    snprintf(path, sizeof(path), "%s/profiles", dir);
    nprof = xr_count_conf(path);
    cfg->profiles = xr_pcalloc(pool, (nprof + 1) * sizeof(xr_profile_t));
    if (cfg->profiles == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        goto failed;
    }
    rc = xr_each_file(&ld, path, xr_each_profile, NULL, &count);
    if (rc == XR_ERROR) {
        goto failed;
    }

    *out = cfg;
    return XR_OK;

failed:

    xr_pool_destroy(pool);
    return XR_ERROR;
}


int
xr_config_add_profile(xr_ctx_t *ctx, xr_config_t *cfg, const char *file)
{
    xr_loader_t    ld;
    xr_profile_t  *np;

    ld.ctx = ctx;
    ld.cfg = cfg;
    ld.file = file;

    np = xr_pcalloc(cfg->pool, (cfg->nprofiles + 2) * sizeof(xr_profile_t));
    if (np == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    /* pointers into profiles stay valid: profiles are copied, not moved */
    memcpy(np, cfg->profiles, cfg->nprofiles * sizeof(xr_profile_t));
    cfg->profiles = np;
    return xr_each_profile(&ld, file, NULL);
}


void
xr_config_free(xr_config_t *cfg)
{
    if (cfg) {
        xr_pool_destroy(cfg->pool);
    }
}


/* ---- lookups ---------------------------------------------------------- */

const xr_profile_t *
xr_config_profile(const xr_config_t *cfg, xr_str_t name)
{
    size_t  i;

    for (i = 0; i < cfg->nprofiles; i++) {
        if (xr_str_cmp(cfg->profiles[i].name, name) == 0) {
            return &cfg->profiles[i];
        }
    }
    return NULL;
}


const xr_region_t *
xr_config_region(const xr_config_t *cfg, xr_str_t name)
{
    size_t  i;

    for (i = 0; i < cfg->nregions; i++) {
        if (xr_str_cmp(cfg->regions[i].name, name) == 0) {
            return &cfg->regions[i];
        }
    }
    return NULL;
}


const xr_region_t *
xr_config_region_by_code(const xr_config_t *cfg, xr_str_t code)
{
    size_t  i;

    for (i = 0; i < cfg->nregions; i++) {
        if (cfg->regions[i].code.len
            && xr_str_cmp(cfg->regions[i].code, code) == 0)
        {
            return &cfg->regions[i];
        }
    }
    return NULL;
}


const xr_schema_t *
xr_config_schema(const xr_config_t *cfg, xr_str_t domain)
{
    size_t  i;

    for (i = 0; i < cfg->nschemas; i++) {
        if (xr_str_cmp(cfg->schemas[i].domain, domain) == 0) {
            return &cfg->schemas[i];
        }
    }
    return NULL;
}


const xr_table_t *
xr_config_table(const xr_config_t *cfg, xr_str_t name)
{
    size_t  i;

    for (i = 0; i < cfg->ntables; i++) {
        if (xr_str_cmp(cfg->tables[i].name, name) == 0) {
            return &cfg->tables[i];
        }
    }
    return NULL;
}


const xr_stxn_t *
xr_schema_txn(const xr_schema_t *s, xr_str_t name)
{
    size_t  i;

    for (i = 0; i < s->ntxns; i++) {
        if (xr_str_cmp(s->txns[i].name, name) == 0) {
            return &s->txns[i];
        }
    }
    return NULL;
}


const xr_ptxn_t *
xr_profile_txn(const xr_profile_t *p, xr_str_t canon_name)
{
    size_t  i;

    for (i = 0; i < p->ntxns; i++) {
        if (xr_str_cmp(p->txns[i].stxn->name, canon_name) == 0) {
            return &p->txns[i];
        }
    }
    return NULL;
}


const xr_ptxn_t *
xr_profile_txn_by_code(const xr_profile_t *p, xr_str_t wire_code)
{
    size_t  i;

    for (i = 0; i < p->ntxns; i++) {
        if (xr_str_cmp(p->txns[i].code, wire_code) == 0) {
            return &p->txns[i];
        }
    }
    return NULL;
}


const xr_map_t *
xr_profile_env_map(const xr_profile_t *p, xr_dir_e dir, xr_env_e env)
{
    size_t  i;

    for (i = 0; i < p->env[dir].nmaps; i++) {
        if (!p->env[dir].maps[i].is_const && p->env[dir].maps[i].env == env) {
            return &p->env[dir].maps[i];
        }
    }
    return NULL;
}


const xr_timefmt_t *
xr_profile_time(const xr_profile_t *p, xr_str_t name)
{
    size_t  i;

    for (i = 0; i < p->ntimes; i++) {
        if (xr_str_cmp(p->times[i].name, name) == 0) {
            return &p->times[i];
        }
    }
    return NULL;
}


int
xr_table_to_wire(const xr_table_t *t, xr_str_t canon, xr_str_t *wire)
{
    size_t  i;

    /* lengths first: most entries differ there, without a call */
    for (i = 0; i < t->ncodes; i++) {
        if (t->codes[i].canon.len == canon.len
            && (canon.len == 0
                || memcmp(t->codes[i].canon.data, canon.data, canon.len)
                   == 0))
        {
            *wire = t->codes[i].wire;
            return XR_OK;
        }
    }
    return XR_DECLINED;
}


int
xr_table_to_canon(const xr_table_t *t, xr_str_t wire, xr_str_t *canon)
{
    size_t  i;

    for (i = 0; i < t->ncodes; i++) {
        if (t->codes[i].wire.len == wire.len
            && (wire.len == 0
                || memcmp(t->codes[i].wire.data, wire.data, wire.len) == 0))
        {
            *canon = t->codes[i].canon;
            return XR_OK;
        }
    }
    return XR_DECLINED;
}
