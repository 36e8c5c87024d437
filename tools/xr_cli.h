/*
 * What the command files of the xregion tool share: the run's context,
 * option parsing and output.  tools/xregion.c has main() and the
 * translation commands, tools/xr_cli_audit.c the audit commands.
 *
 * Output contract: see tools/xregion.c.  A command returns XR_OK or
 * XR_ERROR with cli->ctx set; main() prints the one error line.
 */

#ifndef XR_CLI_H
#define XR_CLI_H

#include "xr_core.h"
#include "xr_profile.h"

/* xr_cli_parse() found --help */
#define XR_CLI_HELP  -10


typedef struct {
    xr_pool_t      *pool;
    xr_ctx_t        ctx;
    xr_config_t    *cfg;
    xr_buf_t        out;            /* stdout, written on success only */
    const char     *config_dir;     /* --config given before the command */
} xr_cli_t;


/* One option of a command; exactly one of value / flag is set. */
typedef struct {
    const char     *name;           /* "--from" */
    const char    **value;          /* option with an argument */
    int            *flag;           /* option without one */
} xr_cli_opt_t;


/*
 * Parses argv (argv[0] is the command name) against opts.  Arguments that
 * are not options land in pos[], at most npos of them.  "--opt=value" and
 * "--opt value" both work; "--" ends the options; "-" is an argument.
 * Returns XR_OK, XR_CLI_HELP for --help, or XR_ERROR.
 */
int xr_cli_parse(xr_cli_t *cli, int argc, char **argv,
    const xr_cli_opt_t *opts, char **pos, int npos);

/*
 * The whole input, from a file or stdin ("-" or NULL), into the pool.  A
 * message larger than max bytes is refused as soon as the excess is read;
 * an empty one too (XR_E_BODY_EMPTY).
 */
int xr_cli_read(xr_cli_t *cli, const char *path, size_t max, xr_str_t *out);

/* printf to cli->out. */
int xr_cli_out(xr_cli_t *cli, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A command's usage text to cli->out (for --help). */
int xr_cli_usage_text(xr_cli_t *cli, const char *text);


/* xr_cli_audit.c */
extern const char  xr_cli_audit_usage[];
int xr_cli_audit(xr_cli_t *cli, int argc, char **argv);

#endif /* XR_CLI_H */
