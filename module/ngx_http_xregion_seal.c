
/*
 * Sealed profiles: the keys of the NHSA mobile-payment envelope
 * (core/xr_seal.h) and the four places a sealed message passes.
 *
 *   xregion_seal <profile> sm4_key=<file> peer_key=<PEM file>
 *                [app_secret=<file>] [id=<SM2 user ID>];
 *
 * sm4_key: 32 hexadecimal digits (the 128-bit key shared with the peer);
 * peer_key: the peer platform's SM2 public key, which verifies what it
 * seals; app_secret: the application secret appended to the signing
 * string; the gateway seals with its own key, xregion_sign_key.
 *
 * A caller whose profile is sealed sends a sealed request (opened before
 * it is decoded: any defect is XR-BAD-SIGNATURE) and gets every answer
 * sealed; a destination whose profile is sealed gets a sealed request
 * and must answer sealed (a defect is XR-UPSTREAM-BAD-ANSWER).  nginx -t
 * fails when a profile of the configuration is sealed and has no
 * xregion_seal, or when xregion_sign_key is missing.
 */


#include "ngx_http_xregion_module.h"

#include "xr_seal.h"


typedef struct {
    ngx_str_t                   name;
    const xr_profile_t         *profile;
    xr_seal_keys_t              keys;
    ngx_str_t                   file;
    ngx_uint_t                  line;
} ngx_http_xregion_seal_t;


static const xr_seal_keys_t *ngx_http_xregion_seal_keys(
    ngx_http_xregion_main_conf_t *xmcf, const xr_profile_t *p);


char *
ngx_http_xregion_seal_directive(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf)
{
    ngx_http_xregion_main_conf_t *xmcf = conf;

    u_char                   *hex;
    ngx_int_t                 n;
    ngx_str_t                *value, name, text;
    ngx_uint_t                i, j, have_sm4;
    xr_key_t                 *key;
    ngx_http_xregion_seal_t  *s;

    value = cf->args->elts;

    if (xmcf->seals == NULL) {
        xmcf->seals = ngx_array_create(cf->pool, 2,
                                       sizeof(ngx_http_xregion_seal_t));
        if (xmcf->seals == NULL) {
            return NGX_CONF_ERROR;
        }
    }

    s = xmcf->seals->elts;

    for (i = 0; i < xmcf->seals->nelts; i++) {
        if (s[i].name.len == value[1].len
            && ngx_strncmp(s[i].name.data, value[1].data, value[1].len) == 0)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "profile \"%V\" already has an "
                               "\"xregion_seal\" in %V:%ui", &value[1],
                               &s[i].file, s[i].line);
            return NGX_CONF_ERROR;
        }
    }

    s = ngx_array_push(xmcf->seals);
    if (s == NULL) {
        return NGX_CONF_ERROR;
    }

    ngx_memzero(s, sizeof(ngx_http_xregion_seal_t));

    s->name = value[1];
    s->file = cf->conf_file->file.name;
    s->line = cf->conf_file->line;

    have_sm4 = 0;

    for (i = 2; i < cf->args->nelts; i++) {

        if (ngx_strncmp(value[i].data, "sm4_key=", 8) == 0) {
            name.data = value[i].data + 8;
            name.len = value[i].len - 8;

            if (ngx_http_xregion_read_file(cf, &name, &text) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            hex = text.data;

            while (text.len && (hex[text.len - 1] == '\n'
                                || hex[text.len - 1] == '\r'))
            {
                text.len--;
            }

            if (text.len != 2 * XR_SM4_KEY_LEN) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "\"%V\" must hold 32 hexadecimal digits "
                                   "(a 128-bit SM4 key)", &name);
                return NGX_CONF_ERROR;
            }

            for (j = 0; j < XR_SM4_KEY_LEN; j++) {
                n = ngx_hextoi(hex + 2 * j, 2);
                if (n == NGX_ERROR) {
                    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                       "\"%V\" must hold 32 hexadecimal "
                                       "digits (a 128-bit SM4 key)", &name);
                    return NGX_CONF_ERROR;
                }
                s->keys.sm4_key[j] = (unsigned char) n;
            }

            ngx_explicit_memzero(text.data, text.len);
            have_sm4 = 1;
            continue;
        }

        if (ngx_strncmp(value[i].data, "peer_key=", 9) == 0) {
            name.data = value[i].data + 9;
            name.len = value[i].len - 9;

            key = ngx_http_xregion_conf_key(cf, &name);
            if (key == NULL) {
                return NGX_CONF_ERROR;
            }

            if (!xr_key_is_sm2(key)) {
                ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                                   "key \"%V\" is not an SM2 key", &name);
                return NGX_CONF_ERROR;
            }

            s->keys.peer = key;
            continue;
        }

        if (ngx_strncmp(value[i].data, "app_secret=", 11) == 0) {
            name.data = value[i].data + 11;
            name.len = value[i].len - 11;

            if (ngx_http_xregion_conf_secret(cf, &name, &text) != NGX_OK) {
                return NGX_CONF_ERROR;
            }

            s->keys.app_secret.data = (const char *) text.data;
            s->keys.app_secret.len = text.len;
            continue;
        }

        if (ngx_strncmp(value[i].data, "id=", 3) == 0 && value[i].len > 3) {
            s->keys.id.data = (const char *) value[i].data + 3;
            s->keys.id.len = value[i].len - 3;
            continue;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "invalid parameter \"%V\"", &value[i]);
        return NGX_CONF_ERROR;
    }

    if (!have_sm4 || s->keys.peer == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"xregion_seal\" needs \"sm4_key=\" and "
                           "\"peer_key=\"");
        return NGX_CONF_ERROR;
    }

    return NGX_CONF_OK;
}


/* postconfiguration: every sealed profile has its keys, and only those */

ngx_int_t
ngx_http_xregion_seal_init(ngx_conf_t *cf, ngx_http_xregion_main_conf_t *xmcf)
{
    size_t                    i, k;
    const xr_profile_t       *p;
    ngx_http_xregion_seal_t  *s;

    s = xmcf->seals ? xmcf->seals->elts : NULL;

    for (k = 0; xmcf->seals && k < xmcf->seals->nelts; k++) {
        p = xr_config_profile(xmcf->config,
                              ngx_http_xregion_xstr(&s[k].name));

        if (p == NULL || p->seal.len == 0) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_seal\": \"%V\" is %s in %V:%ui",
                          &s[k].name,
                          p ? "not a sealed profile" : "no profile",
                          &s[k].file, s[k].line);
            return NGX_ERROR;
        }

        if (xmcf->sign_key == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "\"xregion_seal\" needs \"xregion_sign_key\" "
                          "(the gateway seals with it) in %V:%ui",
                          &s[k].file, s[k].line);
            return NGX_ERROR;
        }

        s[k].profile = p;
        s[k].keys.own = xmcf->sign_key;
    }

    for (i = 0; i < xmcf->config->nprofiles; i++) {
        p = &xmcf->config->profiles[i];

        if (p->seal.len && ngx_http_xregion_seal_keys(xmcf, p) == NULL) {
            ngx_log_error(NGX_LOG_EMERG, cf->log, 0,
                          "profile \"%*s\" is sealed (%s): \"xregion_seal "
                          "%*s sm4_key=... peer_key=...\" is needed",
                          p->name.len, p->name.data, p->file,
                          p->name.len, p->name.data);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}


static const xr_seal_keys_t *
ngx_http_xregion_seal_keys(ngx_http_xregion_main_conf_t *xmcf,
    const xr_profile_t *p)
{
    ngx_uint_t                i;
    ngx_http_xregion_seal_t  *s;

    if (xmcf->seals == NULL) {
        return NULL;
    }

    s = xmcf->seals->elts;

    for (i = 0; i < xmcf->seals->nelts; i++) {
        if (s[i].profile == p) {
            return &s[i].keys;
        }
    }

    return NULL;
}


/*
 * open 1: the sealed bytes at data and len are replaced by the plain
 * message; open 0: the plain message by the sealed one.  The bytes live
 * in the request's pool.  NGX_ERROR: ctx->xr tells why.
 */

ngx_int_t
ngx_http_xregion_seal(ngx_http_request_t *r, ngx_http_xregion_ctx_t *ctx,
    const xr_profile_t *p, ngx_uint_t open, u_char **data, size_t *len)
{
    int                            rc;
    xr_buf_t                       out;
    const xr_seal_keys_t          *keys;
    ngx_http_xregion_main_conf_t  *xmcf;

    xmcf = ngx_http_get_module_main_conf(r, ngx_http_xregion_module);

    keys = ngx_http_xregion_seal_keys(xmcf, p);
    if (keys == NULL) {
        xr_fail(&ctx->xr, XR_E_CONFIG, NULL, "no xregion_seal for %.*s",
                (int) p->name.len, p->name.data);
        return NGX_ERROR;
    }

    xr_buf_init(&out, ctx->pool, 0);

    rc = open ? xr_seal_open(&ctx->xr, p, keys, (const char *) *data, *len,
                             &out)
              : xr_seal_close(&ctx->xr, p, keys, (const char *) *data, *len,
                              &out);

    if (rc != XR_OK || out.failed) {
        return NGX_ERROR;
    }

    *data = (u_char *) out.data;
    *len = out.len;

    return NGX_OK;
}
