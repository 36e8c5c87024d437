
/*
 * Signed requests: who sent this message, proven.
 *
 *   xregion_verify <caller> hmac-sha256 | hmac-sm3 secret=<file>;
 *   xregion_verify <caller> sm2 key=<public key PEM file> [id=<SM2 user ID>];
 *
 * A caller with an xregion_verify line must sign every request; its
 * signature is checked after the body is read and before the message is
 * decoded, so nothing of an unsigned or forged request goes anywhere.
 * The caller sends
 *
 *   X-Xregion-Timestamp   Unix seconds
 *   X-Xregion-Nonce       a value never used twice
 *   X-Xregion-Signature   HMAC: hex; SM2 (SM3withSM2): Base64 of the DER
 *                         signature or of raw r || s (64 bytes)
 *
 * over xregion's signing string (core/xr_crypto.h, xr_sign_string()):
 *
 *   method "\n" path "\n" timestamp "\n" nonce "\n" hex(SHA-256(body))
 *
 * where path is the request's path as sent, without the query string.
 * Freshness (the timestamp window, the nonce used once) is the replay
 * guard's (xregion_replay_guard, in Redis): the signature binds both to the
 * body, so neither can be changed without breaking it.
 *
 * Secrets and keys are read at configuration time (`nginx -t` fails with
 * file:line on a missing file, an empty secret or a key that is not SM2)
 * and kept for the life of the configuration.
 */


#include "ngx_http_xregion_module.h"

#include "xr_crypto.h"


#define NGX_HTTP_XREGION_HMAC_SHA256   0
#define NGX_HTTP_XREGION_HMAC_SM3      1
#define NGX_HTTP_XREGION_SM2           2

#define NGX_HTTP_XREGION_SIG_MAX       512      /* header bytes */


typedef struct {
    ngx_str_t                   caller;
    ngx_uint_t                  method;
    ngx_str_t                   secret;
    xr_key_t                   *key;
    ngx_str_t                   id;         /* empty: the default ID */
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_verify_t;


static void ngx_http_xregion_key_cleanup(void *data);


/* the answer's rc kept, NGX_DECLINED told: refused */
#define ngx_http_xregion_refuse(rc, r, ctx, err, ...)                         \
    (*(rc) = ngx_http_xregion_answer_error(r, ctx, err, __VA_ARGS__),         \
     NGX_DECLINED)


static ngx_str_t  ngx_http_xregion_verify_methods[] = {
    ngx_string("hmac-sha256"),
    ngx_string("hmac-sm3"),
    ngx_string("sm2"),
    ngx_null_string
};


char *
ngx_http_xregion_verify_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    ngx_str_t                   *value, name;
    ngx_uint_t                   i, m;
    ngx_http_xregion_verify_t   *v;

    value = cf->args->elts;

    if (xmcf->verify == NULL) {
        xmcf->verify = ngx_array_create(cf->pool, 8,
                                        sizeof(ngx_http_xregion_verify_t));
        if (xmcf->verify == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    v = xmcf->verify->elts;

    for (i = 0; i < xmcf->verify->nelts; i++) {
        if (v[i].caller.len == value[1].len
            && ngx_strncmp(v[i].caller.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "caller \"%V\" already has an "
                               "\"xregion_verify\" in %V:%ui", &value[1],
                               &v[i].file, v[i].line);
            return NGX_CONF_ERROR;
        }
    }

    for (m = 0; ngx_http_xregion_verify_methods[m].len; m++) {
        if (ngx_http_xregion_verify_methods[m].len == value[2].len
            && ngx_strncmp(ngx_http_xregion_verify_methods[m].data,
                           value[2].data, value[2].len) == 0)
        {
            break;
        }
    }

    if (ngx_http_xregion_verify_methods[m].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown signature method \"%V\" (hmac-sha256, "
                           "hmac-sm3, sm2)", &value[2]);
        return NGX_CONF_ERROR;
    }

    v = ngx_array_push(xmcf->verify);
    if (v == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(v, sizeof(ngx_http_xregion_verify_t));

    v->caller = value[1];
    v->method = m;
    v->file = cf->conf_file->file.name;
    v->line = cf->conf_file->line;

    for (i = 3; i < cf->args->nelts; i++) {

        if (m != NGX_HTTP_XREGION_SM2
            && ngx_strncmp(value[i].data, "secret=", 7) == 0)
        {
            name.data = value[i].data + 7;
            name.len = value[i].len - 7;

            if (ngx_http_xregion_conf_secret(cf, &name, &v->secret)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (m == NGX_HTTP_XREGION_SM2
            && ngx_strncmp(value[i].data, "key=", 4) == 0)
        {
            name.data = value[i].data + 4;
            name.len = value[i].len - 4;

            v->key = ngx_http_xregion_conf_key(cf, &name);
            if (v->key == NULL) {
                return NGX_CONF_ERROR;
            }

            if (!xr_key_is_sm2(v->key)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "key \"%V\" is not an SM2 key", &name);
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (m == NGX_HTTP_XREGION_SM2
            && ngx_strncmp(value[i].data, "id=", 3) == 0)
        {
            v->id.data = value[i].data + 3;
            v->id.len = value[i].len - 3;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (m == NGX_HTTP_XREGION_SM2 ? v->key == NULL : v->secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_verify %V\" needs \"%s\"", &value[2],
                           m == NGX_HTTP_XREGION_SM2 ? "key=" : "secret=");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* A secret or key file of at most 64k, read whole at configuration time. */

ngx_int_t
ngx_http_xregion_read_file(ngx_conf_t *cf, ngx_str_t *name, ngx_str_t *out)
{
    ssize_t          n;
    ngx_str_t        full;
    ngx_file_t       file;
    ngx_file_info_t  fi;

    full = *name;

    if (ngx_conf_full_name(cf->cycle, &full, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));

    file.name = full;
    file.log = cf->log;
    file.fd = ngx_open_file(full.data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);

    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", &full);
        return NGX_ERROR;
    }

    if (ngx_fd_info(file.fd, &fi) == NGX_FILE_ERROR
        || ngx_file_size(&fi) > 65536)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" cannot be read or is larger than 64k",
                           &full);
        (void) ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    out->len = (size_t) ngx_file_size(&fi);
    out->data = ngx_pnalloc(cf->pool, out->len + 1);
    if (out->data == NULL) {
        (void) ngx_close_file(file.fd);
        return NGX_ERROR;
    }

    n = ngx_read_file(&file, out->data, out->len, 0);

    (void) ngx_close_file(file.fd);

    if (n != (ssize_t) out->len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" was not read whole",
                           &full);
        return NGX_ERROR;
    }

    out->data[out->len] = '\0';

    return NGX_OK;
}


static void
ngx_http_xregion_key_cleanup(void *data)
{
    xr_key_free(data);
}


/* A shared secret: a file of 16 bytes or more, its final newline left out. */

ngx_int_t
ngx_http_xregion_conf_secret(ngx_conf_t *cf, ngx_str_t *name,
    ngx_str_t *secret)
{
    if (ngx_http_xregion_read_file(cf, name, secret) != NGX_OK) {
        return NGX_ERROR;
    }

    /* a secret file ends with a newline more often than not */
    while (secret->len
           && (secret->data[secret->len - 1] == '\n'
               || secret->data[secret->len - 1] == '\r'))
    {
        secret->len--;
    }

    if (secret->len < 16) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "the secret in \"%V\" is shorter than 16 bytes",
                           name);
        return NGX_ERROR;
    }

    return NGX_OK;
}


/*
 * A PEM key file (SM2 or P-256, public or private) kept for the life of
 * the configuration: freed with cf->pool.  NULL: logged.
 */

xr_key_t *
ngx_http_xregion_conf_key(ngx_conf_t *cf, ngx_str_t *name)
{
    xr_ctx_t             xctx;
    xr_key_t            *key;
    ngx_str_t            pem;
    xr_pool_t           *pool;
    ngx_pool_cleanup_t  *cln;

    if (ngx_http_xregion_read_file(cf, name, &pem) != NGX_OK) {
        return NULL;
    }

    pool = ngx_http_xregion_pool_create(cf->pool);
    if (pool == NULL) {
        return NULL;
    }

    xr_ctx_init(&xctx, pool);

    key = xr_key_load(&xctx, (const char *) pem.data, pem.len);

    /* the private half stays in OpenSSL's memory only */
    ngx_explicit_memzero(pem.data, pem.len);

    if (key == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "key \"%V\": %s", name,
                           xctx.errstr);
        return NULL;
    }

    cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        xr_key_free(key);
        return NULL;
    }

    cln->handler = ngx_http_xregion_key_cleanup;
    cln->data = key;

    return key;
}


/* postconfiguration: every caller named is a profile */

ngx_int_t
ngx_http_xregion_verify_init(ngx_conf_t *cf,
    ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_uint_t                  i;
    ngx_http_xregion_verify_t  *v;

    if (xmcf->verify == NULL) {
        return NGX_OK;
    }

    v = xmcf->verify->elts;

    for (i = 0; i < xmcf->verify->nelts; i++) {
        if (xr_config_profile(xmcf->config,
                              ngx_http_xregion_xstr(&v[i].caller))
            == NULL)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_verify\": unknown caller \"%V\" (no "
                          "such profile) in %V:%ui", &v[i].caller,
                          &v[i].file, v[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * NGX_OK: the caller signs nothing, or its signature verifies.
 * NGX_DECLINED: it was refused; *rc is the answer's, to finalize with.
 */

ngx_int_t
ngx_http_xregion_verify(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    u_char *body, size_t len, ngx_int_t *rc)
{
    int                            ok;
    size_t                         maclen;
    xr_buf_t                       str, sig;
    xr_str_t                       method, path, stamp, nonce;
    ngx_str_t                      h_sig, h_stamp, h_nonce;
    ngx_uint_t                     i;
    unsigned char                  mac[XR_DIGEST_MAX_LEN];
    ngx_http_xregion_verify_t     *v;
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    if (xmcf->verify == NULL) {
        return NGX_OK;
    }

    v = xmcf->verify->elts;

    for (i = 0; i < xmcf->verify->nelts; i++) {
        if (v[i].caller.len == ctx->caller_name.len
            && ngx_strncmp(v[i].caller.data, ctx->caller_name.data,
                           ctx->caller_name.len)
               == 0)
        {
            break;
        }
    }

    if (i == xmcf->verify->nelts) {
        return NGX_OK;
    }

    v = &v[i];

    if (ngx_http_xregion_request_header(r, "X-Xregion-Signature", 19,
                                        &h_sig)
        != NGX_OK
        || ngx_http_xregion_request_header(r, "X-Xregion-Timestamp", 19,
                                           &h_stamp)
           != NGX_OK
        || ngx_http_xregion_request_header(r, "X-Xregion-Nonce", 15,
                                           &h_nonce)
           != NGX_OK)
    {
        return ngx_http_xregion_refuse(rc, r, ctx, XR_E_BAD_SIGNATURE,
                   "the request is not signed (X-Xregion-Signature, "
                   "X-Xregion-Timestamp and X-Xregion-Nonce are needed)");
    }

    if (h_sig.len > NGX_HTTP_XREGION_SIG_MAX) {
        return ngx_http_xregion_refuse(rc, r, ctx, XR_E_BAD_SIGNATURE,
                   "the signature is longer than %d characters",
                   NGX_HTTP_XREGION_SIG_MAX);
    }

    path = ngx_http_xregion_request_path(r);

    method = ngx_http_xregion_xstr(&r->method_name);
    stamp = ngx_http_xregion_xstr(&h_stamp);
    nonce = ngx_http_xregion_xstr(&h_nonce);

    xr_ctx_clear(&ctx->xr);
    xr_buf_init(&str, ctx->pool, 0);
    xr_buf_init(&sig, ctx->pool, 0);

    if (xr_sign_string(&ctx->xr, method, path, stamp, nonce, body, len, &str)
        != XR_OK
        || str.failed)
    {
        return ngx_http_xregion_refuse(rc, r, ctx, XR_E_BAD_SIGNATURE,
                   "the signed fields are malformed: %s", ctx->xr.errstr);
    }

    if (v->method == NGX_HTTP_XREGION_SM2) {

        if (xr_base64_decode(&ctx->xr, (const char *) h_sig.data, h_sig.len,
                             &sig)
            != XR_OK)
        {
            return ngx_http_xregion_refuse(rc, r, ctx, XR_E_BAD_SIGNATURE,
                       "the signature is not Base64");
        }

        ok = xr_sm2_verify(&ctx->xr, v->key,
                           v->id.len ? (const char *) v->id.data : NULL,
                           v->id.len, str.data, str.len, sig.data, sig.len);

        if (ok == XR_ERROR && ctx->xr.err == XR_E_BAD_SIGNATURE) {
            return ngx_http_xregion_refuse(rc, r, ctx, XR_E_BAD_SIGNATURE,
                       "the SM2 signature is malformed");
        }

        if (ok == XR_ERROR) {
            return ngx_http_xregion_refuse(rc, r, ctx, XR_E_INTERNAL,
                       "the SM2 signature could not be checked");
        }

    } else {
        if (xr_hmac(v->method == NGX_HTTP_XREGION_HMAC_SM3
                    ? XR_DIGEST_SM3 : XR_DIGEST_SHA256,
                    v->secret.data, v->secret.len, str.data, str.len, mac,
                    &maclen)
            != XR_OK)
        {
            return ngx_http_xregion_refuse(rc, r, ctx, XR_E_INTERNAL,
                       "the HMAC could not be computed");
        }

        if (xr_hex_decode(&ctx->xr, (const char *) h_sig.data, h_sig.len,
                          &sig)
            != XR_OK)
        {
            return ngx_http_xregion_refuse(rc, r, ctx, XR_E_BAD_SIGNATURE,
                       "the signature is not hexadecimal");
        }

        ok = (sig.len == maclen && xr_crypto_equal(sig.data, mac, maclen))
             ? XR_OK : XR_DECLINED;
    }

    if (ok != XR_OK) {
        return ngx_http_xregion_refuse(rc, r, ctx, XR_E_BAD_SIGNATURE,
                   "the %V signature of %V does not verify",
                   &ngx_http_xregion_verify_methods[v->method],
                   &ctx->caller_name);
    }

    xr_ctx_clear(&ctx->xr);

    return NGX_OK;
}


/* The path as the caller sent it, without its query string: what it signs. */

xr_str_t
ngx_http_xregion_request_path(ngx_http_request_t *r)
{
    u_char    *q;
    xr_str_t   path;

    path.data = (const char *) r->unparsed_uri.data;
    path.len = r->unparsed_uri.len;

    q = ngx_strlchr(r->unparsed_uri.data,
                    r->unparsed_uri.data + r->unparsed_uri.len, '?');
    if (q) {
        path.len = q - r->unparsed_uri.data;
    }

    return path;
}


/* The first non-empty header of that name (case-insensitive). */

ngx_int_t
ngx_http_xregion_request_header(ngx_http_request_t *r, const char *name,
    size_t len, ngx_str_t *value)
{
    ngx_uint_t        i;
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;

    part = &r->headers_in.headers.part;
    h = part->elts;

    for (i = 0; /* void */ ; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = part->elts;
            i = 0;
        }

        if (h[i].key.len == len
            && ngx_strncasecmp(h[i].key.data, (u_char *) name, len) == 0
            && h[i].value.len)
        {
            *value = h[i].value;
            return NGX_OK;
        }
    }

    return NGX_DECLINED;
}
