/*
 * xregion: the command-line face of the translation core.
 *
 *   xregion translate --from P --to P [--response] [--txn T] [--canonical]
 *   xregion check [DIR]
 *   xregion route --from P [FILE|-]
 *   xregion profiles
 *   xregion audit verify|export|append|key ...    (xr_cli_audit.c)
 *
 * Output contract, relied on by scripts and tests/e2e/test_cli.py:
 *  - everything meant for stdout is collected in one buffer and written only
 *    when the command succeeded, so a failed run prints nothing on stdout;
 *  - a failure prints exactly one line on stderr,
 *    "xregion: <error name>: <message>", and exits with status 2 (1 for an
 *    audit log that does not verify);
 *  - translated bytes are written as they are (binary-safe: fixed-width
 *    records and GBK text pass through untouched).
 */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xr_core.h"
#include "xr_msg.h"
#include "xr_profile.h"
#include "xr_translate.h"
#include "xr_route.h"
#include "xr_charset.h"
#include "xr_adapter.h"
#include "xr_cli.h"


#ifndef XR_DEFAULT_CONFIG_DIR
/* CMake passes the source tree's config/; other builds get the FHS place. */
#define XR_DEFAULT_CONFIG_DIR  "/etc/xregion"
#endif

#define XR_CLI_EXIT_OK       0
/* an audit log that does not verify: told apart from failing to check */
#define XR_CLI_EXIT_INVALID  1
#define XR_CLI_EXIT_FAIL     2


typedef struct {
    const char     *name;
    int           (*run)(xr_cli_t *cli, int argc, char **argv);
    const char     *usage;
} xr_cli_cmd_t;


static int xr_cli_translate(xr_cli_t *cli, int argc, char **argv);
static int xr_cli_check(xr_cli_t *cli, int argc, char **argv);
static int xr_cli_route(xr_cli_t *cli, int argc, char **argv);
static int xr_cli_profiles(xr_cli_t *cli, int argc, char **argv);


static const char  xr_cli_usage[] =
    "usage: xregion [--config DIR] <command> [options]\n"
    "\n"
    "Translate messages between the regions' formats offline, and check\n"
    "the profiles the gateway loads.\n"
    "\n"
    "commands:\n"
    "  translate   decode a message with one profile, encode it with another\n"
    "  check       load a configuration directory and report the first "
    "error\n"
    "  route       print the destination region of a request\n"
    "  profiles    list the profiles of the configuration\n"
    "  audit       verify, export and append to audit logs\n"
    "\n"
    "options:\n"
    "  --config DIR   configuration directory (default: $XREGION_CONFIG,\n"
    "                 else " XR_DEFAULT_CONFIG_DIR ")\n"
    "  --help         this text; `xregion <command> --help` for a command\n"
    "  --version      print the version\n"
    "\n"
    "On failure nothing is written on stdout (but see `xregion audit\n"
    "export`), one line \"xregion: <error code>: <message>\" goes to stderr\n"
    "and the exit status is 2, or 1 for an audit log that does not verify.\n";

static const char  xr_cli_translate_usage[] =
    "usage: xregion translate --from PROFILE (--to PROFILE | --canonical)\n"
    "                         [--response] [--txn NAME] [--max-body N]\n"
    "                         [--config DIR] [FILE|-]\n"
    "\n"
    "Reads a message (FILE, or stdin when FILE is absent or \"-\"), decodes\n"
    "it with the --from profile and writes it encoded with the --to profile\n"
    "on stdout, byte for byte.  Profiles are named <region>.<domain>, e.g.\n"
    "shanghai.medical; both must belong to the same domain.\n"
    "\n"
    "  --from PROFILE   format of the input\n"
    "  --to PROFILE     format of the output\n"
    "  --canonical      print the canonical message as JSON instead\n"
    "  --response       the input is an answer, not a request\n"
    "  --txn NAME       canonical transaction of the request an answer\n"
    "                   belongs to (e.g. settle); required when the answer\n"
    "                   does not carry its transaction code\n"
    "  --max-body N     largest accepted input in bytes (K and M suffixes);\n"
    "                   default 1M\n"
    "  --config DIR     configuration directory\n";

static const char  xr_cli_check_usage[] =
    "usage: xregion check [--config DIR] [DIR]\n"
    "\n"
    "Loads regions.conf, schema/, tables/ and profiles/ from DIR and\n"
    "resolves every reference.  Prints\n"
    "\"ok: N profiles, M schemas, K regions\", or\n"
    "\"xregion: XR-CONFIG: file:line: message\" on stderr for the first\n"
    "error (exit status 2).\n";

static const char  xr_cli_route_usage[] =
    "usage: xregion route --from PROFILE [--max-body N] [--config DIR]\n"
    "                     [FILE|-]\n"
    "\n"
    "Decodes a request with the --from profile and prints its destination\n"
    "region as \"<6-digit code> <region name>\" (\"-\" when the code names\n"
    "no configured region).\n";

static const char  xr_cli_profiles_usage[] =
    "usage: xregion profiles [--config DIR]\n"
    "\n"
    "Lists the profiles: name, codec, charset and the transactions as\n"
    "canonical-name:region-code.\n";


static const xr_cli_cmd_t  xr_cli_cmds[] = {
    { "translate", xr_cli_translate, xr_cli_translate_usage },
    { "check", xr_cli_check, xr_cli_check_usage },
    { "route", xr_cli_route, xr_cli_route_usage },
    { "profiles", xr_cli_profiles, xr_cli_profiles_usage },
    { "audit", xr_cli_audit, xr_cli_audit_usage },
    { NULL, NULL, NULL }
};


int
xr_cli_parse(xr_cli_t *cli, int argc, char **argv, const xr_cli_opt_t *opts,
    char **pos, int npos)
{
    int                  i, n, opts_done;
    size_t               len;
    const char          *arg, *eq;
    const xr_cli_opt_t  *o;

    n = 0;
    opts_done = 0;

    for (i = 1; i < argc; i++) {
        arg = argv[i];

        if (opts_done || arg[0] != '-' || arg[1] == '\0') {
            if (n == npos) {
                return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                               "%s: unexpected argument \"%s\"",
                               argv[0], arg);
            }
            pos[n++] = argv[i];
            continue;
        }

        if (strcmp(arg, "--") == 0) {
            opts_done = 1;
            continue;
        }

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            return XR_CLI_HELP;
        }

        eq = strchr(arg, '=');
        len = eq ? (size_t) (eq - arg) : strlen(arg);

        for (o = opts; o->name; o++) {
            if (strlen(o->name) == len && strncmp(o->name, arg, len) == 0) {
                break;
            }
        }

        if (o->name == NULL) {
            return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                           "%s: unknown option \"%.*s\" (see xregion %s "
                           "--help)", argv[0], (int) len, arg, argv[0]);
        }

        if (o->flag) {
            if (eq) {
                return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                               "%s: option %s takes no value",
                               argv[0], o->name);
            }
            *o->flag = 1;
            continue;
        }

        if (eq) {
            *o->value = eq + 1;

        } else if (i + 1 < argc) {
            *o->value = argv[++i];

        } else {
            return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                           "%s: option %s needs a value", argv[0], o->name);
        }

        if (**o->value == '\0') {
            return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                           "%s: option %s needs a value", argv[0], o->name);
        }
    }

    return XR_OK;
}


/* "1048576", "512K", "2M" */
static int
xr_cli_size(xr_cli_t *cli, const char *s, size_t *out)
{
    char                *end;
    unsigned long long   v, mul;

    errno = 0;
    v = strtoull(s, &end, 10);

    mul = 1;
    if (*end == 'K' || *end == 'k') {
        mul = 1024;
        end++;

    } else if (*end == 'M' || *end == 'm') {
        mul = 1024 * 1024;
        end++;
    }

    if (s[0] < '0' || s[0] > '9' || *end != '\0' || errno == ERANGE
        || v == 0 || v > (unsigned long long) SIZE_MAX / mul / 2)
    {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "--max-body: \"%s\" is not a size in bytes", s);
    }

    *out = (size_t) (v * mul);
    return XR_OK;
}


static int
xr_cli_load_config(xr_cli_t *cli, const char *dir)
{
    const char  *env;

    if (dir == NULL) {
        dir = cli->config_dir;
    }

    if (dir == NULL) {
        env = getenv("XREGION_CONFIG");
        dir = (env && env[0]) ? env : XR_DEFAULT_CONFIG_DIR;
    }

    if (xr_config_load(&cli->ctx, dir, &cli->cfg) != XR_OK) {
        cli->cfg = NULL;
        if (cli->ctx.err == XR_E_NONE) {
            return xr_fail(&cli->ctx, XR_E_CONFIG, NULL,
                           "%s: configuration does not load", dir);
        }
        return XR_ERROR;
    }

    return XR_OK;
}


static int
xr_cli_profile(xr_cli_t *cli, const char *name, const xr_profile_t **out)
{
    const xr_profile_t  *p;

    p = xr_config_profile(cli->cfg, xr_str_from(name));
    if (p == NULL) {
        return xr_fail(&cli->ctx, XR_E_PROFILE_UNKNOWN, NULL,
                       "unknown profile \"%s\" (xregion profiles lists "
                       "them)", name);
    }

    *out = p;
    return XR_OK;
}


int
xr_cli_read(xr_cli_t *cli, const char *path, size_t max, xr_str_t *out)
{
    int          err;
    FILE        *f;
    size_t       n;
    xr_buf_t     b;
    const char  *name;
    char         chunk[65536];

    if (path == NULL || strcmp(path, "-") == 0) {
        f = stdin;
        name = "stdin";

    } else {
        f = fopen(path, "rb");
        if (f == NULL) {
            return xr_fail(&cli->ctx, XR_E_IO, NULL, "%s: %s",
                           path, strerror(errno));
        }
        name = path;
    }

    xr_buf_init(&b, cli->pool, 0);
    err = 0;

    for ( ;; ) {
        errno = 0;
        n = fread(chunk, 1, sizeof(chunk), f);

        if (n == 0) {
            if (ferror(f)) {
                err = errno ? errno : EIO;
            }
            break;
        }

        if (n > max - b.len) {
            break;
        }

        if (xr_buf_add(&b, chunk, n) != XR_OK) {
            err = ENOMEM;
            break;
        }
    }

    if (f != stdin) {
        fclose(f);
    }

    if (err) {
        return xr_fail(&cli->ctx, err == ENOMEM ? XR_E_NOMEM : XR_E_IO, NULL,
                       "%s: %s", name, strerror(err));
    }

    if (n) {
        return xr_fail(&cli->ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "%s: message is larger than %zu bytes (--max-body)",
                       name, max);
    }

    if (b.len == 0) {
        return xr_fail(&cli->ctx, XR_E_BODY_EMPTY, NULL,
                       "%s: message is empty", name);
    }

    out->data = b.data;
    out->len = b.len;
    return XR_OK;
}


int
xr_cli_out(xr_cli_t *cli, const char *fmt, ...)
{
    int       n;
    char     *p, line[512];
    va_list   ap;

    va_start(ap, fmt);
    n = vsnprintf(line, sizeof(line), fmt, ap);
    va_end(ap);

    if (n < 0) {
        return xr_fail(&cli->ctx, XR_E_INTERNAL, NULL, "output format");
    }

    p = line;

    if ((size_t) n >= sizeof(line)) {
        p = xr_palloc(cli->pool, n + 1);
        if (p == NULL) {
            return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
        }
        va_start(ap, fmt);
        vsnprintf(p, n + 1, fmt, ap);
        va_end(ap);
    }

    if (xr_buf_add(&cli->out, p, n) != XR_OK) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }

    return XR_OK;
}


int
xr_cli_usage_text(xr_cli_t *cli, const char *text)
{
    if (xr_buf_adds(&cli->out, text) != XR_OK) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }
    return XR_OK;
}


/* Appends to the error message, as far as it fits. */
static void
xr_cli_hint(xr_ctx_t *ctx, const char *hint)
{
    size_t  len;

    len = strlen(ctx->errstr);
    snprintf(ctx->errstr + len, sizeof(ctx->errstr) - len, "%s", hint);
}


/* Decode the input with --from; shared by translate and route. */
static int
xr_cli_decode(xr_cli_t *cli, const xr_profile_t *from, xr_dir_e dir,
    const char *txn, const char *file, size_t max_body, xr_msg_t *msg)
{
    xr_str_t   in, t;

    cli->ctx.max_body = max_body;

    if (xr_cli_read(cli, file, max_body, &in) != XR_OK) {
        return XR_ERROR;
    }

    t = txn ? xr_str_from(txn) : (xr_str_t) xr_null_string;

    if (txn && from->schema && xr_schema_txn(from->schema, t) == NULL) {
        return xr_fail(&cli->ctx, XR_E_TXN_UNKNOWN, NULL,
                       "--txn: domain %.*s has no transaction \"%s\"",
                       (int) from->domain.len, from->domain.data, txn);
    }

    xr_msg_init(msg, dir);

    if (xr_decode(&cli->ctx, from, dir, t, in.data, in.len, msg) != XR_OK) {
        if (cli->ctx.err == XR_E_NONE) {
            return xr_fail(&cli->ctx, XR_E_INTERNAL, NULL,
                           "decoding with %.*s failed without a reason",
                           (int) from->name.len, from->name.data);
        }

        /* the answer does not say which request it answers: tell how */
        if (dir == XR_DIR_RESPONSE && txn == NULL
            && cli->ctx.err == XR_E_FIELD_MISSING
            && strcmp(cli->ctx.field, "@txn") == 0)
        {
            xr_cli_hint(&cli->ctx, "; give the request's transaction "
                        "with --txn NAME");
        }

        return XR_ERROR;
    }

    return XR_OK;
}


static int
xr_cli_translate(xr_cli_t *cli, int argc, char **argv)
{
    int                  rc, response, canonical;
    size_t               max_body;
    char                *pos[1];
    xr_msg_t             msg;
    xr_buf_t             enc;
    const char          *from_name, *to_name, *txn, *config, *max;
    const xr_profile_t  *from, *to;
    xr_cli_opt_t         opts[] = {
        { "--from", &from_name, NULL },
        { "--to", &to_name, NULL },
        { "--txn", &txn, NULL },
        { "--config", &config, NULL },
        { "--max-body", &max, NULL },
        { "--response", NULL, &response },
        { "--canonical", NULL, &canonical },
        { NULL, NULL, NULL }
    };

    from_name = NULL;
    to_name = NULL;
    txn = NULL;
    config = NULL;
    max = NULL;
    response = 0;
    canonical = 0;
    from = NULL;
    to = NULL;

    pos[0] = NULL;

    rc = xr_cli_parse(cli, argc, argv, opts, pos, 1);
    if (rc == XR_CLI_HELP) {
        return xr_cli_usage_text(cli, xr_cli_translate_usage);
    }
    if (rc != XR_OK) {
        return XR_ERROR;
    }

    if (from_name == NULL) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "translate: --from PROFILE is required");
    }

    if (to_name == NULL && !canonical) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "translate: --to PROFILE (or --canonical) is "
                       "required");
    }

    if (txn && !response) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "translate: --txn names the request of an answer: "
                       "use it with --response");
    }

    max_body = XR_DEFAULT_MAX_BODY;
    if (max && xr_cli_size(cli, max, &max_body) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_cli_load_config(cli, config) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_cli_profile(cli, from_name, &from) != XR_OK) {
        return XR_ERROR;
    }

    if (to_name) {
        if (xr_cli_profile(cli, to_name, &to) != XR_OK) {
            return XR_ERROR;
        }

        if (xr_str_cmp(from->domain, to->domain) != 0) {
            return xr_fail(&cli->ctx, XR_E_DOMAIN_MISMATCH, NULL,
                           "%s is a %.*s profile, %s a %.*s profile",
                           from_name, (int) from->domain.len,
                           from->domain.data, to_name,
                           (int) to->domain.len, to->domain.data);
        }
    }

    if (xr_cli_decode(cli, from, response ? XR_DIR_RESPONSE : XR_DIR_REQUEST,
                      txn, pos[0], max_body, &msg)
        != XR_OK)
    {
        return XR_ERROR;
    }

    if (canonical) {
        if (xr_msg_dump(&cli->ctx, &msg, &cli->out) != XR_OK
            || cli->out.failed)
        {
            return xr_fail(&cli->ctx, XR_E_NOMEM, NULL,
                           "canonical message does not print");
        }

        if (cli->out.len && cli->out.data[cli->out.len - 1] != '\n') {
            if (xr_buf_addc(&cli->out, '\n') != XR_OK) {
                return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
            }
        }

        return XR_OK;
    }

    /*
     * The envelope goes out as decoded: @origin stays the caller's region
     * and @dest the region the caller asked for.
     */

    xr_buf_init(&enc, cli->pool, 0);

    if (xr_encode(&cli->ctx, to, &msg, &enc) != XR_OK) {
        if (cli->ctx.err == XR_E_NONE) {
            return xr_fail(&cli->ctx, XR_E_INTERNAL, NULL,
                           "encoding with %s failed without a reason",
                           to_name);
        }
        return XR_ERROR;
    }

    if (enc.failed) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, "encoded message lost");
    }

    if (xr_buf_add(&cli->out, enc.data, enc.len) != XR_OK) {
        return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
    }

    return XR_OK;
}


static int
xr_cli_check(xr_cli_t *cli, int argc, char **argv)
{
    int            rc;
    char          *pos[1];
    const char    *config;
    xr_cli_opt_t   opts[] = {
        { "--config", &config, NULL },
        { NULL, NULL, NULL }
    };

    config = NULL;
    pos[0] = NULL;

    rc = xr_cli_parse(cli, argc, argv, opts, pos, 1);
    if (rc == XR_CLI_HELP) {
        return xr_cli_usage_text(cli, xr_cli_check_usage);
    }
    if (rc != XR_OK) {
        return XR_ERROR;
    }

    if (pos[0] && config && strcmp(pos[0], config) != 0) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "check: both --config %s and DIR %s given",
                       config, pos[0]);
    }

    if (xr_cli_load_config(cli, pos[0] ? pos[0] : config) != XR_OK) {
        return XR_ERROR;
    }

    return xr_cli_out(cli, "ok: %zu profiles, %zu schemas, %zu regions\n",
                      cli->cfg->nprofiles, cli->cfg->nschemas,
                      cli->cfg->nregions);
}


/* The configured region of a code: the code itself, else its province. */
static const xr_region_t *
xr_cli_region_of(const xr_config_t *cfg, xr_str_t code)
{
    char                 province[6];
    xr_str_t             p;
    const xr_region_t   *r;

    if (code.len == 0) {
        return NULL;
    }

    r = xr_config_region_by_code(cfg, code);
    if (r || code.len != 6) {
        return r;
    }

    memcpy(province, code.data, 2);
    memcpy(province + 2, "0000", 4);
    p.data = province;
    p.len = 6;

    return xr_config_region_by_code(cfg, p);
}


static int
xr_cli_route(xr_cli_t *cli, int argc, char **argv)
{
    int                  rc;
    size_t               max_body;
    char                *pos[1];
    xr_msg_t             msg;
    xr_str_t             code;
    const char          *from_name, *config, *max;
    const xr_profile_t  *from;
    const xr_region_t   *r;
    xr_cli_opt_t         opts[] = {
        { "--from", &from_name, NULL },
        { "--config", &config, NULL },
        { "--max-body", &max, NULL },
        { NULL, NULL, NULL }
    };

    from_name = NULL;
    config = NULL;
    max = NULL;
    from = NULL;

    pos[0] = NULL;

    rc = xr_cli_parse(cli, argc, argv, opts, pos, 1);
    if (rc == XR_CLI_HELP) {
        return xr_cli_usage_text(cli, xr_cli_route_usage);
    }
    if (rc != XR_OK) {
        return XR_ERROR;
    }

    if (from_name == NULL) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "route: --from PROFILE is required");
    }

    max_body = XR_DEFAULT_MAX_BODY;
    if (max && xr_cli_size(cli, max, &max_body) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_cli_load_config(cli, config) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_cli_profile(cli, from_name, &from) != XR_OK) {
        return XR_ERROR;
    }

    if (xr_cli_decode(cli, from, XR_DIR_REQUEST, NULL, pos[0], max_body,
                      &msg)
        != XR_OK)
    {
        return XR_ERROR;
    }

    code.len = 0;
    code.data = NULL;

    if (xr_route_region(&cli->ctx, cli->cfg, &msg, &code) != XR_OK) {
        if (cli->ctx.err == XR_E_NONE) {
            return xr_fail(&cli->ctx, XR_E_REGION_UNKNOWN, NULL,
                           "no destination region");
        }
        return XR_ERROR;
    }

    r = xr_cli_region_of(cli->cfg, code);

    return xr_cli_out(cli, "%.*s %.*s\n", (int) code.len, code.data,
                      r ? (int) r->name.len : 1, r ? r->name.data : "-");
}


static int
xr_cli_profiles(xr_cli_t *cli, int argc, char **argv)
{
    int                  rc, w;
    size_t               i, k;
    char                *pos[1];
    const char          *config;
    const xr_ptxn_t     *t;
    const xr_profile_t  *p;
    xr_cli_opt_t         opts[] = {
        { "--config", &config, NULL },
        { NULL, NULL, NULL }
    };

    config = NULL;

    rc = xr_cli_parse(cli, argc, argv, opts, pos, 0);
    if (rc == XR_CLI_HELP) {
        return xr_cli_usage_text(cli, xr_cli_profiles_usage);
    }
    if (rc != XR_OK) {
        return XR_ERROR;
    }

    if (xr_cli_load_config(cli, config) != XR_OK) {
        return XR_ERROR;
    }

    w = (int) sizeof("PROFILE") - 1;
    for (i = 0; i < cli->cfg->nprofiles; i++) {
        if ((int) cli->cfg->profiles[i].name.len > w) {
            w = (int) cli->cfg->profiles[i].name.len;
        }
    }

    if (xr_cli_out(cli, "%-*s  %-5s  %-7s  %s\n", w, "PROFILE", "CODEC",
                   "CHARSET", "TRANSACTIONS")
        != XR_OK)
    {
        return XR_ERROR;
    }

    for (i = 0; i < cli->cfg->nprofiles; i++) {
        p = &cli->cfg->profiles[i];

        if (xr_cli_out(cli, "%-*.*s  %-5.*s  %-7s ", w,
                       (int) p->name.len, p->name.data,
                       (int) p->codec.len, p->codec.data,
                       xr_charset_name(p->charset))
            != XR_OK)
        {
            return XR_ERROR;
        }

        for (k = 0; k < p->ntxns; k++) {
            t = &p->txns[k];

            if (xr_cli_out(cli, " %.*s:%.*s",
                           t->stxn ? (int) t->stxn->name.len : 1,
                           t->stxn ? t->stxn->name.data : "?",
                           (int) t->code.len, t->code.data)
                != XR_OK)
            {
                return XR_ERROR;
            }
        }

        if (xr_buf_addc(&cli->out, '\n') != XR_OK) {
            return xr_fail(&cli->ctx, XR_E_NOMEM, NULL, NULL);
        }
    }

    return XR_OK;
}


/*
 * "xregion: XR-SYNTAX: message (field f)" as one line, whatever the message
 * holds: line breaks in a loader or parser message become spaces.
 */
static void
xr_cli_report(const xr_ctx_t *ctx)
{
    char                    line[XR_ERRSTR_LEN + XR_FIELD_LEN + 64];
    char                   *c;
    const char             *msg;
    const xr_error_info_t  *info;
    xr_err_e                err;

    err = ctx->err == XR_E_NONE ? XR_E_INTERNAL : ctx->err;
    info = xr_error_info(err);
    msg = ctx->errstr[0] ? ctx->errstr : info->text;

    if (ctx->field[0] && strstr(msg, ctx->field) == NULL) {
        snprintf(line, sizeof(line), "xregion: %s: %s (field %s)",
                 info->name, msg, ctx->field);

    } else {
        snprintf(line, sizeof(line), "xregion: %s: %s", info->name, msg);
    }

    for (c = line; *c; c++) {
        if (*c == '\n' || *c == '\r') {
            *c = ' ';
        }
    }

    fflush(stdout);
    fprintf(stderr, "%s\n", line);
}


static int
xr_cli_flush(xr_cli_t *cli)
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

    if (fflush(stdout) != 0) {
        return xr_fail(&cli->ctx, XR_E_IO, NULL, "stdout: %s",
                       strerror(errno));
    }

    return XR_OK;
}


static int
xr_cli_main(xr_cli_t *cli, int argc, char **argv)
{
    int                  i;
    const char          *arg;
    const xr_cli_cmd_t  *cmd;

    for (i = 1; i < argc; i++) {
        arg = argv[i];

        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            return xr_cli_usage_text(cli, xr_cli_usage);
        }

        if (strcmp(arg, "--version") == 0) {
            return xr_cli_out(cli, "xregion %s\n", XR_VERSION);
        }

        if (strcmp(arg, "--config") == 0) {
            if (i + 1 == argc || argv[i + 1][0] == '\0') {
                return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                               "option --config needs a value");
            }
            cli->config_dir = argv[++i];
            continue;
        }

        if (strncmp(arg, "--config=", 9) == 0 && arg[9] != '\0') {
            cli->config_dir = arg + 9;
            continue;
        }

        if (arg[0] == '-') {
            return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                           "unknown option \"%s\" (see xregion --help)",
                           arg);
        }

        break;
    }

    if (i == argc) {
        return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                       "no command given (see xregion --help)");
    }

    for (cmd = xr_cli_cmds; cmd->name; cmd++) {
        if (strcmp(cmd->name, argv[i]) == 0) {
            return cmd->run(cli, argc - i, argv + i);
        }
    }

    return xr_fail(&cli->ctx, XR_E_USAGE, NULL,
                   "unknown command \"%s\" (see xregion --help)", argv[i]);
}


int
main(int argc, char **argv)
{
    int        rc;
    xr_cli_t   cli;

    memset(&cli, 0, sizeof(xr_cli_t));

    cli.pool = xr_pool_create(0);
    if (cli.pool == NULL) {
        fprintf(stderr, "xregion: %s: %s\n", xr_error_info(XR_E_NOMEM)->name,
                xr_error_info(XR_E_NOMEM)->text);
        return XR_CLI_EXIT_FAIL;
    }

    xr_ctx_init(&cli.ctx, cli.pool);
    xr_buf_init(&cli.out, cli.pool, 0);

    if (xr_adapters_init() != XR_OK) {
        rc = xr_fail(&cli.ctx, XR_E_INTERNAL, NULL,
                     "a codec failed to initialize");

    } else {
        rc = xr_cli_main(&cli, argc, argv);
    }

    if (rc == XR_OK) {
        rc = xr_cli_flush(&cli);
    }

    if (rc != XR_OK) {
        xr_cli_report(&cli.ctx);
    }

    xr_config_free(cli.cfg);
    xr_adapters_cleanup();
    xr_pool_destroy(cli.pool);

    if (rc == XR_OK) {
        return XR_CLI_EXIT_OK;
    }
    return cli.ctx.err == XR_E_AUDIT_INVALID ? XR_CLI_EXIT_INVALID
                                             : XR_CLI_EXIT_FAIL;
}
