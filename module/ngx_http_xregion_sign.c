
/*
 * What the gateway signs: the requests it sends to destinations that
 * require a signature, and the answers it gives its callers.
 *
 *   xregion_sign_key <SM2 private key PEM> [id=<SM2 user ID>];
 *   xregion_sign_answers on | off;
 *   xregion_upstream_sign <profile> zhejiang-hmac-sm3 secret=<file>
 *                         [access_key=<text>];
 *   xregion_upstream_sign <profile> hmac-sha256 | hmac-sm3 secret=<file>;
 *   xregion_upstream_sign <profile> sm2;
 *
 * Toward a destination, the signature is computed over the translated
 * body just before the subrequest starts and handed to the internal
 * location as variables, which proxy_set_header puts in the headers the
 * destination expects:
 *
 *   $xregion_upstream_signature   the signature
 *   $xregion_upstream_timestamp   Unix seconds that were signed
 *   $xregion_upstream_nonce       the nonce signed (xregion's schemes)
 *   $xregion_upstream_access_key  access_key= (Zhejiang's scheme)
 *
 * All empty for a destination without xregion_upstream_sign, and nginx
 * sends no header for an empty value.  Zhejiang's scheme is HMAC-SM3 over
 * timestamp "\n" body in uppercase hex (core/xr_crypto.h, xr_zj_*); the
 * others use xregion's own signing string over POST, the destination's
 * path, the timestamp, the nonce and the body's SHA-256, as callers sign
 * for xregion_verify.
 *
 * An answer of a location with xregion_sign_answers on carries
 * X-Xregion-Signature (Base64 of the DER SM2 signature with the key of
 * xregion_sign_key), X-Xregion-Timestamp and X-Xregion-Nonce over
 *
 *   status "\n" path "\n" timestamp "\n" nonce "\n" hex(SHA-256(body))
 *
 * status: the HTTP status in three digits; path: the caller's request
 * path; nonce: the caller's X-Xregion-Nonce, echoed, so the answer is
 * bound to the request it answers (a fresh one when the caller sent
 * none).  Every answer is signed, refusals and cached answers included.
 *
 * Keys and secrets are read at configuration time; `nginx -t` fails with
 * file:line on a missing file, a short secret, a key that is not an SM2
 * private key or an unknown profile.
 */


#include "ngx_http_xregion_module.h"

#include "xr_crypto.h"


#define NGX_HTTP_XREGION_UP_ZJ_HMAC_SM3   0
#define NGX_HTTP_XREGION_UP_HMAC_SHA256   1
#define NGX_HTTP_XREGION_UP_HMAC_SM3      2
#define NGX_HTTP_XREGION_UP_SM2           3

#define NGX_HTTP_XREGION_NONCE_BYTES      16
#define NGX_HTTP_XREGION_NONCE_MAX        64    /* an echoed nonce */


typedef struct {
    ngx_str_t                   profile;
    ngx_uint_t                  method;
    ngx_str_t                   secret;
    ngx_str_t                   access_key;
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_upsign_t;


static ngx_int_t ngx_http_xregion_nonce(ngx_pool_t *pool, ngx_str_t *nonce);
static ngx_int_t ngx_http_xregion_sm2_base64(ngx_http_xregion_main_conf_t
    *xmcf, xr_ctx_t *xctx, xr_buf_t *str, xr_buf_t *out);
static ngx_int_t ngx_http_xregion_add_header(ngx_http_request_t *r,
    const char *name, size_t len, u_char *value, size_t vlen);


static ngx_str_t  ngx_http_xregion_upsign_methods[] = {
    ngx_string("zhejiang-hmac-sm3"),
    ngx_string("hmac-sha256"),
    ngx_string("hmac-sm3"),
    ngx_string("sm2"),
    ngx_null_string
};


char *
ngx_http_xregion_sign_key_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (xmcf->sign_key) {
        return "is duplicate";
    }

    value = cf->args->elts;

    xmcf->sign_key = ngx_http_xregion_conf_key(cf, &value[1]);
    if (xmcf->sign_key == NULL) {
        return NGX_CONF_ERROR;
    }

    if (!xr_key_is_sm2(xmcf->sign_key)
        || !xr_key_is_private(xmcf->sign_key))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" is not an SM2 private key", &value[1]);
        return NGX_CONF_ERROR;
    }

    for (i = 2; i < cf->args->nelts; i++) {
        if (ngx_strncmp(value[i].data, "id=", 3) == 0 && value[i].len > 3) {
            xmcf->sign_id.data = value[i].data + 3;
            xmcf->sign_id.len = value[i].len - 3;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


char *
ngx_http_xregion_upstream_sign_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    ngx_str_t                  *value, name;
    ngx_uint_t                  i, m;
    ngx_http_xregion_upsign_t  *u;

    value = cf->args->elts;

    if (xmcf->upstream_sign == NULL) {
        xmcf->upstream_sign = ngx_array_create(cf->pool, 4,
                                           sizeof(ngx_http_xregion_upsign_t));
        if (xmcf->upstream_sign == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    u = xmcf->upstream_sign->elts;

    for (i = 0; i < xmcf->upstream_sign->nelts; i++) {
        if (u[i].profile.len == value[1].len
            && ngx_strncmp(u[i].profile.data, value[1].data, value[1].len)
               == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "profile \"%V\" already has an "
                               "\"xregion_upstream_sign\" in %V:%ui",
                               &value[1], &u[i].file, u[i].line);
            return NGX_CONF_ERROR;
        }
    }

    for (m = 0; ngx_http_xregion_upsign_methods[m].len; m++) {
        if (ngx_http_xregion_upsign_methods[m].len == value[2].len
            && ngx_strncmp(ngx_http_xregion_upsign_methods[m].data,
                           value[2].data, value[2].len) == 0)
        {
            break;
        }
    }

    if (ngx_http_xregion_upsign_methods[m].len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "unknown signature method \"%V\" "
                           "(zhejiang-hmac-sm3, hmac-sha256, hmac-sm3, sm2)",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    u = ngx_array_push(xmcf->upstream_sign);
    if (u == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(u, sizeof(ngx_http_xregion_upsign_t));

    u->profile = value[1];
    u->method = m;
    u->file = cf->conf_file->file.name;
    u->line = cf->conf_file->line;

    for (i = 3; i < cf->args->nelts; i++) {

        if (m != NGX_HTTP_XREGION_UP_SM2
            && ngx_strncmp(value[i].data, "secret=", 7) == 0)
        {
            name.data = value[i].data + 7;
            name.len = value[i].len - 7;

            if (ngx_http_xregion_conf_secret(cf, &name, &u->secret)
                != NGX_OK)
            {
                return NGX_CONF_ERROR;
            }

            continue;
        }

        if (m == NGX_HTTP_XREGION_UP_ZJ_HMAC_SM3
            && ngx_strncmp(value[i].data, "access_key=", 11) == 0
            && value[i].len > 11)
        {
            u->access_key.data = value[i].data + 11;
            u->access_key.len = value[i].len - 11;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (m != NGX_HTTP_XREGION_UP_SM2 && u->secret.len == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_upstream_sign %V\" needs \"secret=\"",
                           &value[2]);
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* postconfiguration: the profiles exist, sm2 and answers have a key */

ngx_int_t
ngx_http_xregion_sign_init(ngx_conf_t *cf, ngx_http_xregion_main_conf_t *xmcf)
{
    ngx_uint_t                     i;
    ngx_http_xregion_upsign_t     *u;
    ngx_http_xregion_loc_conf_t  **endpoints;

    if (xmcf->sign_key == NULL) {
        endpoints = xmcf->endpoints.elts;

        for (i = 0; i < xmcf->endpoints.nelts; i++) {
            if (endpoints[i]->sign_answers == 1) {
                ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                              "\"xregion_sign_answers\" needs "
                              "\"xregion_sign_key\" (the endpoint in "
                              "%V:%ui)", &endpoints[i]->file,
                              endpoints[i]->line);
                return NGX_ERROR;
            }
        }
    }

    if (xmcf->upstream_sign == NULL) {
        return NGX_OK;
    }

    u = xmcf->upstream_sign->elts;

    for (i = 0; i < xmcf->upstream_sign->nelts; i++) {
        if (xr_config_profile(xmcf->config,
                              ngx_http_xregion_xstr(&u[i].profile))
            == NULL)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_upstream_sign\": unknown profile \"%V\" "
                          "in %V:%ui", &u[i].profile, &u[i].file, u[i].line);
            return NGX_ERROR;
        }

        if (u[i].method == NGX_HTTP_XREGION_UP_SM2
            && xmcf->sign_key == NULL)
        {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_upstream_sign %V sm2\" needs "
                          "\"xregion_sign_key\" in %V:%ui", &u[i].profile,
                          &u[i].file, u[i].line);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


/*
 * Called with the translated request in ctx->out, before the subrequest:
 * NGX_OK (signed, or nothing to sign), NGX_ERROR.
 */

ngx_int_t
ngx_http_xregion_sign_upstream(ngx_http_request_t *r,
    ngx_http_xregion_ctx_t *ctx)
{
    u_char                        *p;
    size_t                         maclen;
    xr_buf_t                       str, sig;
    xr_str_t                       stamp, nonce, method, path;
    ngx_uint_t                     i;
    unsigned char                  mac[XR_DIGEST_MAX_LEN];
    ngx_http_xregion_upsign_t     *u;
    ngx_http_xregion_main_conf_t  *xmcf;

    static xr_str_t  post = xr_string("POST");

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    if (xmcf->upstream_sign == NULL) {
        return NGX_OK;
    }

    u = xmcf->upstream_sign->elts;

    for (i = 0; i < xmcf->upstream_sign->nelts; i++) {
        if (u[i].profile.len == ctx->dest_name.len
            && ngx_strncmp(u[i].profile.data, ctx->dest_name.data,
                           ctx->dest_name.len) == 0)
        {
            break;
        }
    }

    if (i == xmcf->upstream_sign->nelts) {
        return NGX_OK;
    }

    u = &u[i];

    p = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    if (p == NULL) {
        return NGX_ERROR;
    }

    ctx->up_timestamp.data = p;
    ctx->up_timestamp.len = ngx_sprintf(p, "%T", ngx_time()) - p;

    stamp = ngx_http_xregion_xstr(&ctx->up_timestamp);

    xr_ctx_clear(&ctx->xr);
    xr_buf_init(&sig, ctx->pool, 0);

    if (u->method == NGX_HTTP_XREGION_UP_ZJ_HMAC_SM3) {

        if (xr_zj_signature(&ctx->xr, u->secret.data, u->secret.len, stamp,
                            ctx->out.data, ctx->out.len, &sig)
            != XR_OK
            || sig.failed)
        {
            return NGX_ERROR;
        }

        ctx->up_access_key = u->access_key;

    } else {
        if (ngx_http_xregion_nonce(r->pool, &ctx->up_nonce) != NGX_OK) {
            return NGX_ERROR;
        }

        method = post;
        path = ngx_http_xregion_xstr(&ctx->dest_path);
        nonce = ngx_http_xregion_xstr(&ctx->up_nonce);

        xr_buf_init(&str, ctx->pool, 0);

        if (xr_sign_string(&ctx->xr, method, path, stamp, nonce,
                           ctx->out.data, ctx->out.len, &str)
            != XR_OK
            || str.failed)
        {
            return NGX_ERROR;
        }

        if (u->method == NGX_HTTP_XREGION_UP_SM2) {
            if (ngx_http_xregion_sm2_base64(xmcf, &ctx->xr, &str, &sig)
                != NGX_OK)
            {
                return NGX_ERROR;
            }

        } else {
            if (xr_hmac(u->method == NGX_HTTP_XREGION_UP_HMAC_SM3
                        ? XR_DIGEST_SM3 : XR_DIGEST_SHA256,
                        u->secret.data, u->secret.len, str.data, str.len,
                        mac, &maclen)
                != XR_OK)
            {
                return NGX_ERROR;
            }

            p = ngx_pnalloc(r->pool, 2 * maclen);
            if (p == NULL) {
                return NGX_ERROR;
            }

            xr_hex(mac, maclen, (char *) p);

            ctx->up_signature.data = p;
            ctx->up_signature.len = 2 * maclen;

            return NGX_OK;
        }
    }

    ctx->up_signature.data = (u_char *) sig.data;
    ctx->up_signature.len = sig.len;

    return NGX_OK;
}


/*
 * Called with the answer's status and body before its header goes out.
 * An answer that cannot be signed goes out unsigned, logged at alert:
 * the caller's verification refuses it, which is the honest outcome.
 */

void
ngx_http_xregion_sign_answer(ngx_http_request_t *r, ngx_uint_t status,
    const char *data, size_t len)
{
    u_char                        *p, *stamp_data, code[4], ch;
    ngx_str_t                      nonce;
    xr_ctx_t                       xctx;
    xr_buf_t                       str, sig;
    xr_str_t                       path;
    xr_pool_t                     *pool;
    ngx_uint_t                     i;
    ngx_http_xregion_loc_conf_t   *xlcf;
    ngx_http_xregion_main_conf_t  *xmcf;

    xlcf = ngx_http_get_module_loc_conf(r, ngx_http_xregion_module);

    if (xlcf->sign_answers != 1) {
        return;
    }

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    /* the caller's nonce binds the answer to its request, when it is sane */

    if (ngx_http_xregion_request_header(r, "X-Xregion-Nonce", 15, &nonce)
        == NGX_OK
        && nonce.len <= NGX_HTTP_XREGION_NONCE_MAX)
    {
        for (i = 0; i < nonce.len; i++) {
            ch = nonce.data[i];

            if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z')
                  || (ch >= 'A' && ch <= 'Z') || ch == '-' || ch == '_'
                  || ch == '.'))
            {
                break;
            }
        }

        if (i < nonce.len) {
            nonce.len = 0;
        }

    } else {
        nonce.len = 0;
    }

    if (nonce.len == 0
        && ngx_http_xregion_nonce(r->pool, &nonce) != NGX_OK)
    {
        goto failed;
    }

    stamp_data = ngx_pnalloc(r->pool, NGX_TIME_T_LEN);
    pool = ngx_http_xregion_pool_create(r->pool);

    if (stamp_data == NULL || pool == NULL) {
        goto failed;
    }

    p = ngx_sprintf(stamp_data, "%T", ngx_time());

    path = ngx_http_xregion_request_path(r);

    ngx_sprintf(code, "%03ui", status % 1000);

    xr_ctx_init(&xctx, pool);
    xr_buf_init(&str, pool, 0);
    xr_buf_init(&sig, pool, 0);

    if (xr_sign_string(&xctx, (xr_str_t) { 3, (const char *) code }, path,
                       (xr_str_t) { p - stamp_data,
                                    (const char *) stamp_data },
                       ngx_http_xregion_xstr(&nonce), data, len, &str)
        != XR_OK
        || str.failed
        || ngx_http_xregion_sm2_base64(xmcf, &xctx, &str, &sig) != NGX_OK)
    {
        goto failed;
    }

    if (ngx_http_xregion_add_header(r, "X-Xregion-Signature", 19,
                                    (u_char *) sig.data, sig.len)
        != NGX_OK
        || ngx_http_xregion_add_header(r, "X-Xregion-Timestamp", 19,
                                       stamp_data, p - stamp_data)
           != NGX_OK
        || ngx_http_xregion_add_header(r, "X-Xregion-Nonce", 15, nonce.data,
                                       nonce.len)
           != NGX_OK)
    {
        goto failed;
    }

    return;

failed:

    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "xregion: the answer could not be signed");
}


/* 16 random bytes in lowercase hex */

static ngx_int_t
ngx_http_xregion_nonce(ngx_pool_t *pool, ngx_str_t *nonce)
{
    unsigned char  raw[NGX_HTTP_XREGION_NONCE_BYTES];

    if (xr_random(raw, sizeof(raw)) != XR_OK) {
        return NGX_ERROR;
    }

    nonce->data = ngx_pnalloc(pool, 2 * sizeof(raw));
    if (nonce->data == NULL) {
        return NGX_ERROR;
    }

    xr_hex(raw, sizeof(raw), (char *) nonce->data);
    nonce->len = 2 * sizeof(raw);

    return NGX_OK;
}


/* Base64 of the DER SM3withSM2 signature of str with xregion_sign_key */

static ngx_int_t
ngx_http_xregion_sm2_base64(ngx_http_xregion_main_conf_t *xmcf,
    xr_ctx_t *xctx, xr_buf_t *str, xr_buf_t *out)
{
    xr_buf_t  der;

    xr_buf_init(&der, xctx->pool, XR_SM2_MAX_DER_LEN);

    if (xr_sm2_sign(xctx, xmcf->sign_key,
                    xmcf->sign_id.len ? (const char *) xmcf->sign_id.data
                                      : NULL,
                    xmcf->sign_id.len, str->data, str->len, &der)
        != XR_OK
        || der.failed
        || xr_base64_encode(der.data, der.len, out) != XR_OK
        || out->failed)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
}


static ngx_int_t
ngx_http_xregion_add_header(ngx_http_request_t *r, const char *name,
    size_t len, u_char *value, size_t vlen)
{
    ngx_table_elt_t  *h;

    h = ngx_list_push(&r->headers_out.headers);
    if (h == NULL) {
        return NGX_ERROR;
    }

    h->hash = 1;
    h->key.data = (u_char *) name;
    h->key.len = len;
    h->value.data = value;
    h->value.len = vlen;

    return NGX_OK;
}
