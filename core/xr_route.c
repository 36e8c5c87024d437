/*
 * Destination regions and longest-prefix tables of region codes.
 */

#include <string.h>

#include "xr_mask.h"
#include "xr_route.h"


int
xr_region_code_valid(xr_str_t code)
{
    size_t  i;

    if (code.len != 6) {
        return 0;
    }
    for (i = 0; i < 6; i++) {
        if (code.data[i] < '0' || code.data[i] > '9') {
            return 0;
        }
    }
    return 1;
}


/* The kind of personal value of the request field s routes by. */
static unsigned
xr_route_pii(const xr_schema_t *s, const xr_msg_t *msg)
{
    const xr_stxn_t  *t;
    size_t            i;

    t = xr_schema_txn(s, msg->txn);
    if (t == NULL) {
        return XR_PII_NONE;
    }
    for (i = 0; i < t->nfields[XR_DIR_REQUEST]; i++) {
        if (xr_str_cmp(t->fields[XR_DIR_REQUEST][i].name, s->route_field)
            == 0)
        {
            return t->fields[XR_DIR_REQUEST][i].pii;
        }
    }
    return XR_PII_NONE;
}


int
xr_route_region(xr_ctx_t *ctx, const xr_config_t *cfg, const xr_msg_t *msg,
    xr_str_t *region)
{
    const xr_schema_t  *s;
    const xr_table_t   *t;
    const xr_node_t    *n;
    xr_str_t            key, mapped, q;
    xr_env_e            env;
    unsigned            pii = XR_PII_NONE;
    char                mbuf[XR_MASK_LEN];

    s = xr_config_schema(cfg, msg->domain);
    if (s == NULL) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL, "no schema for domain "
                       "\"%.*s\"", (int) msg->domain.len, msg->domain.data);
    }

    key.len = 0;
    key.data = NULL;

    if (s->route_field.len && s->route_field.data[0] == '@') {
        env = xr_env_by_name(s->route_field);
        switch (env) {
        case XR_ENV_DEST:   key = msg->dest; break;
        case XR_ENV_ORIGIN: key = msg->origin; break;
        case XR_ENV_CALLER: key = msg->caller; break;
        default:            break;
        }
    } else {
        n = xr_node_path_get(msg->body, s->route_field);
        if (n && n->type == XR_NODE_STRING) {
            key = n->u.s;
        }
        pii = xr_route_pii(s, msg);
    }

    if (key.len == 0) {
        return xr_fail(ctx, XR_E_FIELD_MISSING, "@dest",
                       "the message does not say its destination (%.*s)",
                       (int) s->route_field.len, s->route_field.data);
    }

    if (s->route_table.len) {
        t = xr_config_table(cfg, s->route_table);
        if (t == NULL || xr_table_to_wire(t, key, &mapped) != XR_OK) {
            q = xr_mask_quote(pii, key, mbuf, sizeof(mbuf));
            return xr_fail(ctx, XR_E_REGION_UNKNOWN, "@dest",
                           "no region for %.*s \"%.*s\" in table %.*s",
                           (int) s->route_field.len, s->route_field.data,
                           (int) (q.len > 20 && !pii ? 20 : q.len), q.data,
                           (int) s->route_table.len, s->route_table.data);
        }
        key = mapped;
        pii = XR_PII_NONE;      /* a region code now */
    }

    if (!xr_region_code_valid(key)) {
        q = xr_mask_quote(pii, key, mbuf, sizeof(mbuf));
        return xr_fail(ctx, XR_E_REGION_UNKNOWN, "@dest",
                       "destination \"%.*s\" is not a 6-digit region code",
                       (int) (q.len > 20 && !pii ? 20 : q.len), q.data);
    }

    *region = key;
    return XR_OK;
}


void
xr_prefix_init(xr_prefix_table_t *t, xr_pool_t *pool)
{
    memset(t, 0, sizeof(xr_prefix_table_t));
    t->pool = pool;
}


int
xr_prefix_add(xr_prefix_table_t *t, xr_str_t prefix, void *value, int line)
{
    xr_prefix_entry_t  *e;
    size_t              i, cap;

    if (xr_str_eq(prefix, "*")) {
        prefix.len = 0;
    }
    if (prefix.len > 6) {
        return XR_ERROR;
    }
    for (i = 0; i < prefix.len; i++) {
        if (prefix.data[i] < '0' || prefix.data[i] > '9') {
            return XR_ERROR;
        }
    }
    for (i = 0; i < t->n; i++) {
        if (xr_str_cmp(t->entries[i].prefix, prefix) == 0) {
            return XR_DECLINED;
        }
    }

    if (t->n == t->cap) {
        cap = t->cap ? t->cap * 2 : 8;
        e = xr_palloc(t->pool, cap * sizeof(xr_prefix_entry_t));
        if (e == NULL) {
            return XR_ERROR;
        }
        if (t->n) {
            memcpy(e, t->entries, t->n * sizeof(xr_prefix_entry_t));
        }
        t->entries = e;
        t->cap = cap;
    }

    e = &t->entries[t->n++];
    e->prefix = prefix;
    e->value = value;
    e->line = line;
    return XR_OK;
}


const xr_prefix_entry_t *
xr_prefix_lookup(const xr_prefix_table_t *t, xr_str_t code)
{
    const xr_prefix_entry_t  *best = NULL;
    size_t                    i;

    for (i = 0; i < t->n; i++) {
        if (t->entries[i].prefix.len > code.len
            || (best && best->prefix.len >= t->entries[i].prefix.len))
        {
            continue;
        }
        if (t->entries[i].prefix.len == 0
            || memcmp(t->entries[i].prefix.data, code.data,
                      t->entries[i].prefix.len) == 0)
        {
            best = &t->entries[i];
        }
    }
    return best;
}
