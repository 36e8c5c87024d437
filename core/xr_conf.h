/*
 * The nginx.conf-like syntax of schemas and profiles (docs/profiles.md):
 * parsed into a tree of directives, each a list of words with an optional
 * block.  Words are copied into ctx->pool.  Errors: XR_E_CONFIG with
 * "file:line: message" in errstr.
 */

#ifndef XR_CONF_H
#define XR_CONF_H

#include "xr_core.h"

typedef struct xr_cdir_s  xr_cdir_t;

struct xr_cdir_s {
    xr_str_t       *args;       /* args[0] is the directive name */
    size_t          nargs;
    xr_cdir_t      *block;      /* NULL when the directive has no block */
    size_t          nblock;
    unsigned        has_block:1;
    int             line;
};

#define XR_CONF_MAX_DEPTH  8
#define XR_CONF_MAX_FILE   (4 * 1024 * 1024)

int xr_conf_parse(xr_ctx_t *ctx, const char *file, const char *data,
    size_t len, xr_cdir_t **dirs, size_t *ndirs);

/* Reads a whole file into the pool (NUL-terminated). */
int xr_conf_read_file(xr_ctx_t *ctx, const char *path, char **data,
    size_t *len);

/* "key=value" options: the value of `key` among args[from..], or NULL. */
const xr_str_t *xr_conf_opt(const xr_cdir_t *d, size_t from, const char *key,
    xr_str_t *value);

#endif /* XR_CONF_H */
