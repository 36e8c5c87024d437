/*
 * Tokenizer and parser of the profile/schema syntax.
 */

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "xr_conf.h"


typedef struct {
    xr_ctx_t       *ctx;
    const char     *file;
    const char     *p;
    const char     *end;
    int             line;
    xr_buf_t        word;       /* scratch, reused for every word */
} xr_cparser_t;


typedef enum {
    XR_TOK_WORD,
    XR_TOK_SEMI,
    XR_TOK_OPEN,
    XR_TOK_CLOSE,
    XR_TOK_EOF,
    XR_TOK_ERROR
} xr_tok_e;


static int
xr_conf_error(xr_cparser_t *cp, int line, const char *msg)
{
    return xr_fail(cp->ctx, XR_E_CONFIG, NULL, "%s:%d: %s", cp->file, line,
                   msg);
}


static xr_tok_e
xr_conf_token(xr_cparser_t *cp, xr_str_t *word, int *line)
{
    xr_buf_t *b = &cp->word;
    char      q, c;

    for ( ;; ) {
        while (cp->p < cp->end
               && (*cp->p == ' ' || *cp->p == '\t' || *cp->p == '\r'
                   || *cp->p == '\n'))
        {
            if (*cp->p == '\n') {
                cp->line++;
            }
            cp->p++;
        }
        if (cp->p < cp->end && *cp->p == '#') {
            while (cp->p < cp->end && *cp->p != '\n') {
                cp->p++;
            }
            continue;
        }
        break;
    }

    *line = cp->line;

    if (cp->p >= cp->end) {
        return XR_TOK_EOF;
    }

    switch (*cp->p) {
    case ';':
        cp->p++;
        return XR_TOK_SEMI;
    case '{':
        cp->p++;
        return XR_TOK_OPEN;
    case '}':
        cp->p++;
        return XR_TOK_CLOSE;
    }

    /*
     * A word: runs of plain characters and quoted parts, so that
     * time="%Y-%m-%d %H:%M:%S" is one word.
     */
    b->len = 0;

    while (cp->p < cp->end) {
        c = *cp->p;
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == ';'
            || c == '{' || c == '}' || c == '#')
        {
            break;
        }
        if (c == '"' || c == '\'') {
            q = c;
            cp->p++;
            for ( ;; ) {
                if (cp->p >= cp->end) {
                    xr_conf_error(cp, *line, "unterminated quoted string");
                    return XR_TOK_ERROR;
                }
                c = *cp->p++;
                if (c == q) {
                    break;
                }
                if (c == '\n') {
                    cp->line++;
                }
                if (c == '\\' && cp->p < cp->end) {
                    c = *cp->p++;
                    switch (c) {
                    case 'n': c = '\n'; break;
                    case 't': c = '\t'; break;
                    case 'r': c = '\r'; break;
                    default: break;
                    }
                }
                xr_buf_addc(b, c);
            }
            continue;
        }
        xr_buf_addc(b, c);
        cp->p++;
    }

    if (b->failed) {
        xr_fail(cp->ctx, XR_E_NOMEM, NULL, NULL);
        return XR_TOK_ERROR;
    }

    /* always an exact pool copy, NUL-terminated, even when empty ("") */
    *word = xr_pstr(cp->ctx->pool, b->data ? b->data : "", b->len);
    if (word->data == NULL) {
        xr_fail(cp->ctx, XR_E_NOMEM, NULL, NULL);
        return XR_TOK_ERROR;
    }
    return XR_TOK_WORD;
}


/* Growable arrays in the pool. */
static void *
xr_conf_grow(xr_ctx_t *ctx, void *old, size_t n, size_t *cap, size_t size)
{
    void    *p;
    size_t   ncap;

    if (n < *cap) {
        return old;
    }
    ncap = *cap ? *cap * 2 : 4;
    p = xr_palloc(ctx->pool, ncap * size);
    if (p == NULL) {
        return NULL;
    }
    if (n) {
        memcpy(p, old, n * size);
    }
    *cap = ncap;
    return p;
}


static int
xr_conf_block(xr_cparser_t *cp, int depth, int open_line, xr_cdir_t **dirs,
    size_t *ndirs)
{
    xr_cdir_t  *list = NULL, *d;
    size_t      n = 0, cap = 0, acap;
    xr_str_t    word, *args;
    xr_tok_e    t;
    int         line;

    if (depth > XR_CONF_MAX_DEPTH) {
        return xr_conf_error(cp, open_line, "blocks nested too deeply");
    }

    for ( ;; ) {
        t = xr_conf_token(cp, &word, &line);

        if (t == XR_TOK_ERROR) {
            return XR_ERROR;
        }
        if (t == XR_TOK_EOF) {
            if (depth > 0) {
                return xr_conf_error(cp, open_line,
                                     "unexpected end of file, "
                                     "expecting \"}\"");
            }
            break;
        }
        if (t == XR_TOK_CLOSE) {
            if (depth == 0) {
                return xr_conf_error(cp, line, "unexpected \"}\"");
            }
            break;
        }
        if (t != XR_TOK_WORD) {
            return xr_conf_error(cp, line, t == XR_TOK_SEMI
                                 ? "unexpected \";\""
                                 : "unexpected \"{\"");
        }

        list = xr_conf_grow(cp->ctx, list, n, &cap, sizeof(xr_cdir_t));
        if (list == NULL) {
            return xr_fail(cp->ctx, XR_E_NOMEM, NULL, NULL);
        }
        d = &list[n++];
        memset(d, 0, sizeof(xr_cdir_t));
        d->line = line;

        args = NULL;
        acap = 0;

        for ( ;; ) {
            args = xr_conf_grow(cp->ctx, args, d->nargs, &acap,
                                sizeof(xr_str_t));
            if (args == NULL) {
                return xr_fail(cp->ctx, XR_E_NOMEM, NULL, NULL);
            }
            args[d->nargs++] = word;

            t = xr_conf_token(cp, &word, &line);
            if (t == XR_TOK_WORD) {
                continue;
            }
            break;
        }
        d->args = args;

        if (t == XR_TOK_SEMI) {
            continue;
        }
        if (t == XR_TOK_OPEN) {
            d->has_block = 1;
            if (xr_conf_block(cp, depth + 1, d->line, &d->block, &d->nblock)
                != XR_OK)
            {
                return XR_ERROR;
            }
            continue;
        }
        if (t == XR_TOK_ERROR) {
            return XR_ERROR;
        }
        return xr_conf_error(cp, d->line,
                             "directive is not terminated by \";\"");
    }

    *dirs = list;
    *ndirs = n;
    return XR_OK;
}


int
xr_conf_parse(xr_ctx_t *ctx, const char *file, const char *data, size_t len,
    xr_cdir_t **dirs, size_t *ndirs)
{
    xr_cparser_t  cp;

    cp.ctx = ctx;
    cp.file = file;
    cp.p = data;
    cp.end = data + len;
    cp.line = 1;
    xr_buf_init(&cp.word, ctx->pool, 0);

    if (memchr(data, '\0', len) != NULL) {
        return xr_conf_error(&cp, 1, "NUL byte in file");
    }

    return xr_conf_block(&cp, 0, 1, dirs, ndirs);
}


int
xr_conf_read_file(xr_ctx_t *ctx, const char *path, char **data, size_t *len)
{
    FILE    *f;
    char    *buf;
    size_t   n, cap = 65536, total = 0;

    f = fopen(path, "rb");
    if (f == NULL) {
        return xr_fail(ctx, XR_E_CONFIG, NULL, "%s: %s", path,
                       strerror(errno));
    }

    buf = xr_palloc(ctx->pool, cap + 1);

    while (buf) {
        n = fread(buf + total, 1, cap - total, f);
        total += n;
        if (total < cap) {
            break;
        }
        if (cap >= XR_CONF_MAX_FILE) {
            fclose(f);
            return xr_fail(ctx, XR_E_CONFIG, NULL, "%s: file too large",
                           path);
        }
        char *nb = xr_palloc(ctx->pool, cap * 2 + 1);
        if (nb) {
            memcpy(nb, buf, total);
        }
        buf = nb;
        cap *= 2;
    }

    if (buf == NULL) {
        fclose(f);
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    if (ferror(f)) {
        fclose(f);
        return xr_fail(ctx, XR_E_CONFIG, NULL, "%s: read error", path);
    }
    fclose(f);

    buf[total] = '\0';
    *data = buf;
    *len = total;
    return XR_OK;
}


const xr_str_t *
xr_conf_opt(const xr_cdir_t *d, size_t from, const char *key, xr_str_t *value)
{
    size_t  i, klen = strlen(key);

    for (i = from; i < d->nargs; i++) {
        if (d->args[i].len > klen && d->args[i].data[klen] == '='
            && memcmp(d->args[i].data, key, klen) == 0)
        {
            value->data = d->args[i].data + klen + 1;
            value->len = d->args[i].len - klen - 1;
            return &d->args[i];
        }
        if (d->args[i].len == klen
            && memcmp(d->args[i].data, key, klen) == 0)
        {
            value->data = "";
            value->len = 0;
            return &d->args[i];
        }
    }
    return NULL;
}
