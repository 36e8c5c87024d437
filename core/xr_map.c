/*
 * The profile-driven mapping between a wire tree (what an adapter decodes)
 * and the canonical message.  All type conversion, validation and code
 * mapping happens here, so every codec behaves the same way.
 */

#include <stdio.h>
#include <string.h>

#include "xr_amount.h"
#include "xr_charset.h"
#include "xr_mask.h"
#include "xr_profile.h"
#include "xr_time.h"
#include "xr_translate.h"
#include "xr_adapter.h"


/*
 * A field's canonical name for error messages.  Words of the profile
 * syntax are NUL-terminated pool copies (xr_conf.c), so no formatting is
 * needed on the way: this runs for every field of every message.
 */
#define XR_FNAME(m)  ((m)->canon.data ? (m)->canon.data : "?")

/* The kind of personal value a map carries (envelope fields: none). */
#define XR_PII(m)    ((m)->sf ? (m)->sf->pii : XR_PII_NONE)


/*
 * Consecutive maps of a profile mostly share a parent path
 * ("output.setlinfo.*"): remember the last parent so that each field costs
 * one member search instead of a walk from the root.
 */
typedef struct {
    xr_str_t        parent;
    xr_node_t      *node;       /* NULL: the parent is absent */
    xr_member_t    *hint;       /* last member found in node */
    xr_member_t    *root_hint;  /* last member found in the root */
    unsigned        valid:1;
    unsigned        ordered:1;  /* keys are unique: search from hint */
} xr_path_cache_t;


static const xr_node_t *
xr_cached_get(const xr_node_t *root, const xr_map_t *m, xr_path_cache_t *pc)
{
    /*
     * pc->hint is NULL-initialised per object and only used where keys are
     * unique: JSON and fixed-width readers refuse repeated keys, XML may
     * repeat elements and the first must be read (pc->ordered == 0).
     */
    if (m->wire_parent.len == 0) {
        return pc->ordered ? xr_object_get_next(root, m->wire_key,
                                                &pc->root_hint)
                           : xr_object_get(root, m->wire_key);
    }
    /* parents are interned at load: equal paths share their bytes */
    if (!pc->valid
        || (pc->parent.data != m->wire_parent.data
            && xr_str_cmp(pc->parent, m->wire_parent) != 0))
    {
        pc->parent = m->wire_parent;
        pc->node = xr_node_path_get(root, m->wire_parent);
        pc->hint = NULL;
        pc->valid = 1;
    }
    if (pc->node == NULL) {
        return NULL;
    }
    return pc->ordered ? xr_object_get_next(pc->node, m->wire_key, &pc->hint)
                       : xr_object_get(pc->node, m->wire_key);
}


static int
xr_cached_set(xr_ctx_t *ctx, xr_node_t *root, const xr_map_t *m,
    xr_node_t *value, xr_path_cache_t *pc)
{
    xr_node_t  *n;

    if (m->wire_parent.len == 0) {
        return xr_object_add(ctx, root, m->wire_key, value);
    }
    if (pc->valid && pc->node
        && (pc->parent.data == m->wire_parent.data
            || xr_str_cmp(pc->parent, m->wire_parent) == 0))
    {
        return xr_object_add(ctx, pc->node, m->wire_key, value);
    }

    /* one walk: to the parent, made on the way when it is absent */
    n = xr_node_path_get(root, m->wire_parent);
    if (n == NULL) {
        n = xr_node_new(ctx, XR_NODE_OBJECT);
        if (n == NULL) {
            return XR_ERROR;
        }
        n->unique = root->unique;
        if (xr_node_path_set(ctx, root, m->wire_parent, n) != XR_OK) {
            return XR_ERROR;
        }
    } else if (n->type != XR_NODE_OBJECT) {
        /* the same failure as a walk would meet */
        return xr_node_path_set(ctx, root, m->wire, value);
    }
    if (xr_object_add(ctx, n, m->wire_key, value) != XR_OK) {
        return XR_ERROR;
    }
    pc->parent = m->wire_parent;
    pc->node = n;
    pc->valid = 1;
    return XR_OK;
}


/*
 * What an error text may quote of m's value: the value, or its mask
 * (xr_mask_quote()) in the pool when the field is personal.  Error paths
 * only, and out of line: the mask's buffer stays off the frames that
 * every field goes through.
 */
static __attribute__((noinline)) xr_str_t
xr_map_quote(xr_ctx_t *ctx, const xr_map_t *m, xr_str_t value)
{
    char      buf[XR_MASK_LEN];
    xr_str_t  q;

    q = xr_mask_quote(XR_PII(m), value, buf, sizeof(buf));
    if (q.data != buf) {
        return q;
    }
    q.data = xr_pstrndup(ctx->pool, buf, q.len);
    return q.data ? q : xr_str_from("****");
}


/* ---- decoding --------------------------------------------------------- */

/*
 * The text of a scalar wire node; XR_DECLINED when it is absent or empty.
 */
static int
xr_wire_text(xr_ctx_t *ctx, const xr_map_t *m, const xr_node_t *w,
    xr_str_t *text)
{

    if (w == NULL || w->type == XR_NODE_NULL) {
        return XR_DECLINED;
    }
    switch (w->type) {
    case XR_NODE_STRING:
    case XR_NODE_NUMBER:
        *text = w->u.s;
        break;
    case XR_NODE_BOOL:
        *text = xr_str_from(w->u.b ? "true" : "false");
        break;
    default:
        return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                       "field %s (wire %.*s) has type %s, expected a value",
                       XR_FNAME(m), (int) m->wire.len, m->wire.data,
                       xr_node_type_name(w->type));
    }
    if (text->len == 0) {
        return XR_DECLINED;
    }
    return XR_OK;
}


static int
xr_parse_int(xr_str_t s, int64_t *out)
{
    size_t   i = 0;
    int64_t  v = 0;
    int      neg = 0;

    if (s.len && s.data[0] == '-') {
        neg = 1;
        i = 1;
    }
    if (i == s.len || s.len - i > 18) {
        return XR_ERROR;
    }
    for ( ; i < s.len; i++) {
        if (s.data[i] < '0' || s.data[i] > '9') {
            return XR_ERROR;
        }
        v = v * 10 + (s.data[i] - '0');
    }
    *out = neg ? -v : v;
    return XR_OK;
}


static int
xr_decode_value(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *m,
    xr_ftype_e ft, const xr_node_t *w, xr_node_t **out)
{
    const xr_sfield_t  *sf = m->sf;
    xr_str_t            text, canon, q;
    xr_node_t          *n;
    size_t              start, len, chars, max;
    int64_t             v;
    xr_time_t           t;
    int                 rc;

    *out = NULL;

    /*
     * nodes come with their member (xr_node_new_member()): the body adds
     * them with xr_object_add_own()
     */
    if (ft == XR_FT_BOOL && w && w->type == XR_NODE_BOOL) {
        n = xr_node_new_member(ctx, XR_NODE_BOOL);
        if (n == NULL) {
            return XR_ERROR;
        }
        n->u.b = w->u.b;
        *out = n;
        return XR_OK;
    }

    rc = xr_wire_text(ctx, m, w, &text);
    if (rc != XR_OK) {
        return rc;
    }

    if (m->value.len && !m->is_const) {
        /* slice=START:LEN, checked at load time */
        const char  *colon = memchr(m->value.data, ':', m->value.len);

        start = 0;
        len = 0;
        for (const char *c = m->value.data; c < colon; c++) {
            start = start * 10 + (*c - '0');
        }
        for (const char *c = colon + 1;
             c < m->value.data + m->value.len; c++)
        {
            len = len * 10 + (*c - '0');
        }
        if (start + len > text.len) {
            return xr_fail(ctx, XR_E_FIELD_FORMAT, XR_FNAME(m),
                           "field %s (wire %.*s) is too short to hold "
                           "characters %zu-%zu", XR_FNAME(m),
                           (int) m->wire.len, m->wire.data, start + 1,
                           start + len);
        }
        text.data += start;
        text.len = len;
    }

    max = m->max;
    if (max == 0 && sf && (ft == XR_FT_STRING || ft == XR_FT_CODE)) {
        max = sf->max;
    }
    /* bytes never undercount characters: count only when it may matter */
    chars = (max && text.len > max) ? xr_utf8_length(text.data, text.len)
                                    : 0;
    if (max && chars > max) {
        return xr_fail(ctx, XR_E_FIELD_TOO_LONG, XR_FNAME(m),
                       "field %s (wire %.*s) has %zu characters, %.*s "
                       "allows %zu", XR_FNAME(m), (int) m->wire.len,
                       m->wire.data, chars, (int) p->name.len, p->name.data,
                       max);
    }

    switch (ft) {

    case XR_FT_STRING:
        /* a table on a string field translates a code system (citycode) */
        canon = text;
        if (m->table && xr_table_to_canon(m->table, text, &canon) != XR_OK) {
            q = xr_map_quote(ctx, m, text);
            return xr_fail(ctx, XR_E_CODE_UNMAPPED, XR_FNAME(m),
                           "value \"%.*s\" of field %s has no mapping in "
                           "table %.*s of %.*s", (int) q.len, q.data,
                           XR_FNAME(m), (int) m->table->name.len,
                           m->table->name.data, (int) p->name.len,
                           p->name.data);
        }
        /*
         * the wire text lives in the same pool as the message (or the
         * table in the configuration): referenced, not copied
         */
        n = xr_node_new_member(ctx, XR_NODE_STRING);
        if (n) {
            n->u.s.data = canon.data ? canon.data : "";
            n->u.s.len = canon.data ? canon.len : 0;
            n->plain = m->table ? m->table->canon_plain : w->plain;
        }
        break;

    case XR_FT_CODE:
        canon = text;
        if (m->table) {
            if (xr_table_to_canon(m->table, text, &canon) != XR_OK) {
                q = xr_map_quote(ctx, m, text);
                return xr_fail(ctx, XR_E_CODE_UNMAPPED, XR_FNAME(m),
                               "code \"%.*s\" of field %s has no mapping in "
                               "table %.*s of %.*s", (int) q.len,
                               q.data, XR_FNAME(m),
                               (int) m->table->name.len, m->table->name.data,
                               (int) p->name.len, p->name.data);
            }
        }
        if (sf) {
            size_t  i;

            for (i = 0; i < sf->nvalues; i++) {
                if (sf->values[i].len == canon.len
                    && (canon.len == 0
                        || memcmp(sf->values[i].data, canon.data, canon.len)
                           == 0))
                {
                    break;
                }
            }
            if (i == sf->nvalues) {
                q = xr_map_quote(ctx, m, canon);
                return xr_fail(ctx, XR_E_CODE_UNMAPPED, XR_FNAME(m),
                               "code \"%.*s\" of field %s is not a known "
                               "value", (int) q.len, q.data, XR_FNAME(m));
            }
        }
        n = xr_node_new_member(ctx, XR_NODE_STRING);
        if (n) {
            n->u.s.data = canon.data ? canon.data : "";
            n->u.s.len = canon.data ? canon.len : 0;
            n->plain = m->table ? m->table->canon_plain : w->plain;
        }
        break;

    case XR_FT_INT:
        if (xr_parse_int(text, &v) != XR_OK) {
            q = xr_map_quote(ctx, m, text);
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "field %s (wire %.*s) is not an integer: "
                           "\"%.*s\"", XR_FNAME(m), (int) m->wire.len,
                           m->wire.data, (int) (q.len > 40 ? 40 : q.len),
                           q.data);
        }
        n = xr_node_new_member(ctx, XR_NODE_INT);
        if (n) {
            n->u.i = v;
        }
        break;

    case XR_FT_AMOUNT:
        if (w->type == XR_NODE_BOOL) {
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "field %s is a bool, expected an amount",
                           XR_FNAME(m));
        }
        if (xr_amount_parse(ctx, text, m->amount ? m->amount : p->amount,
                            sf ? sf->negative : 0, XR_FNAME(m), &v)
            != XR_OK)
        {
            return XR_ERROR;
        }
        n = xr_node_new_member(ctx, XR_NODE_AMOUNT);
        if (n) {
            n->u.i = v;
        }
        break;

    case XR_FT_BOOL:
        canon = text;
        if (m->table && xr_table_to_canon(m->table, text, &canon) != XR_OK) {
            q = xr_map_quote(ctx, m, text);
            return xr_fail(ctx, XR_E_CODE_UNMAPPED, XR_FNAME(m),
                           "value \"%.*s\" of field %s has no mapping in "
                           "table %.*s", (int) q.len, q.data,
                           XR_FNAME(m), (int) m->table->name.len,
                           m->table->name.data);
        }
        n = xr_node_new_member(ctx, XR_NODE_BOOL);
        if (n == NULL) {
            return XR_ERROR;
        }
        if (xr_str_eq(canon, "true") || xr_str_eq(canon, "1")
            || xr_str_eq(canon, "Y"))
        {
            n->u.b = 1;
        } else if (xr_str_eq(canon, "false") || xr_str_eq(canon, "0")
                   || xr_str_eq(canon, "N"))
        {
            n->u.b = 0;
        } else {
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "field %s is not a boolean", XR_FNAME(m));
        }
        break;

    case XR_FT_DATE:
    case XR_FT_DATETIME:
        if (xr_time_parse_checked(ctx, m->time->pattern, text, XR_FNAME(m),
                                  XR_PII(m), &t)
            != XR_OK)
        {
            return XR_ERROR;
        }
        if (ft == XR_FT_DATE) {
            t.has_time = 0;
            t.has_msec = 0;
            t.hour = t.min = t.sec = t.msec = 0;
        }
        n = xr_node_new_member(ctx, XR_NODE_TIME);
        if (n) {
            n->u.t = t;
        }
        break;

    default:
        return xr_fail(ctx, XR_E_INTERNAL, XR_FNAME(m), "bad field type");
    }

    if (n == NULL) {
        return XR_ERROR;
    }
    *out = n;
    return XR_OK;
}


static int xr_decode_maps(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_map_t *maps, size_t nmaps, const xr_node_t *wire,
    xr_node_t *body, int check_required);


static int
xr_decode_list(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *m,
    const xr_node_t *wire, xr_node_t **out, int check_required)
{
    const xr_node_t   *found[1], **items;
    xr_node_t         *arr, *obj;
    size_t             n, i, max;

    *out = NULL;
    max = ctx->max_nodes ? ctx->max_nodes : XR_DEFAULT_MAX_NODES;

    n = xr_node_path_all(wire, m->wire, found, 1);
    if (n == 0) {
        return XR_DECLINED;
    }

    if (n == 1 && found[0]->type == XR_NODE_ARRAY) {
        items = (const xr_node_t **) found[0]->u.arr.items;
        n = found[0]->u.arr.count;
    } else {
        if (n > max) {
            return xr_fail(ctx, XR_E_BODY_TOO_LARGE, XR_FNAME(m),
                           "list %s has too many items", XR_FNAME(m));
        }
        items = xr_palloc(ctx->pool, n * sizeof(xr_node_t *));
        if (items == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }
        xr_node_path_all(wire, m->wire, items, n);
    }

    if (n == 0) {
        return XR_DECLINED;
    }

    arr = xr_node_new(ctx, XR_NODE_ARRAY);
    if (arr == NULL) {
        return XR_ERROR;
    }

    for (i = 0; i < n; i++) {
        if (items[i]->type != XR_NODE_OBJECT) {
            if (items[i]->type == XR_NODE_STRING && items[i]->u.s.len == 0) {
                continue;   /* an empty XML element: no item */
            }
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "item %zu of list %s (wire %.*s) is a %s, "
                           "expected an object", i + 1, XR_FNAME(m),
                           (int) m->wire.len, m->wire.data,
                           xr_node_type_name(items[i]->type));
        }
        obj = xr_node_new(ctx, XR_NODE_OBJECT);
        if (obj) {
            obj->unique = 1;    /* one member per canon at most */
        }
        if (obj == NULL
            || xr_decode_maps(ctx, p, m->children, m->nchildren, items[i],
                              obj, check_required) != XR_OK
            || xr_array_push(ctx, arr, obj) != XR_OK)
        {
            return XR_ERROR;
        }
    }

    if (arr->u.arr.count == 0) {
        return XR_DECLINED;
    }
    *out = arr;
    return XR_OK;
}


static int
xr_decode_maps(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *maps,
    size_t nmaps, const xr_node_t *wire, xr_node_t *body, int check_required)
{
    const xr_map_t  *m;
    xr_node_t       *v;
    size_t           i;
    int              rc;
    xr_path_cache_t  pc = { xr_null_string, NULL, NULL, NULL, 0, 0 };

    pc.ordered = (p->adapter->flags & XR_ADAPTER_UNIQUE) != 0;

    for (i = 0; i < nmaps; i++) {
        m = &maps[i];
        if (m->is_const || m->env != XR_ENV_NONE) {
            continue;
        }

        if (m->sf->type == XR_FT_LIST) {
            rc = xr_decode_list(ctx, p, m, wire, &v, check_required);
        } else {
            rc = xr_decode_value(ctx, p, m, m->sf->type,
                                 xr_cached_get(wire, m, &pc), &v);
        }

        if (rc == XR_ERROR) {
            return XR_ERROR;
        }
        if (rc == XR_DECLINED) {
            if (check_required && (m->sf->required || m->required)) {
                return xr_fail(ctx, XR_E_FIELD_MISSING, XR_FNAME(m),
                               "required field %s (wire %.*s) is missing",
                               XR_FNAME(m), (int) m->wire.len,
                               m->wire.data);
            }
            continue;
        }
        if (m->canon_again && xr_object_get(body, m->canon) != NULL) {
            continue;   /* two slices of one wire field: the first wins */
        }
        /*
         * keyed by the schema's name, the same bytes as m->canon: encoders
         * of every profile look it up by that pointer (xr_object_get_next)
         */
        if (m->sf->type != XR_FT_LIST) {
            xr_object_add_own(body, m->sf->name, v);
        } else if (xr_object_add(ctx, body, m->sf->name, v) != XR_OK) {
            return XR_ERROR;
        }
    }
    return XR_OK;
}


static int
xr_decode_env(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_node_t *wire, xr_msg_t *msg, xr_str_t *txn_code)
{
    const xr_mapset_t  *ms = &p->env[dir];
    const xr_map_t     *m;
    xr_node_t          *v;
    xr_str_t            text;
    size_t              i;
    int                 rc;
    xr_path_cache_t     pc = { xr_null_string, NULL, NULL, NULL, 0, 0 };

    pc.ordered = (p->adapter->flags & XR_ADAPTER_UNIQUE) != 0;

    for (i = 0; i < ms->nmaps; i++) {
        m = &ms->maps[i];
        if (m->is_const) {
            continue;
        }

        if (m->env == XR_ENV_TIME) {
            rc = xr_decode_value(ctx, p, m, XR_FT_DATETIME,
                                 xr_cached_get(wire, m, &pc), &v);
            if (rc == XR_ERROR) {
                return XR_ERROR;
            }
            if (rc == XR_OK) {
                msg->time = v->u.t;
                msg->has_time = 1;
            }
            continue;
        }

        rc = xr_decode_value(ctx, p, m, XR_FT_STRING,
                             xr_cached_get(wire, m, &pc), &v);
        if (rc == XR_ERROR) {
            return XR_ERROR;
        }
        if (rc == XR_DECLINED) {
            continue;
        }
        text = v->u.s;

        switch (m->env) {
        case XR_ENV_TXN:        *txn_code = text; break;
        case XR_ENV_MSG_ID:     msg->msg_id = text; break;
        case XR_ENV_ORIGIN:     msg->origin = text; break;
        case XR_ENV_DEST:       msg->dest = text; break;
        case XR_ENV_CALLER:     msg->caller = text; break;
        case XR_ENV_VERSION:    msg->version = text; break;
        case XR_ENV_ERR_MSG:    msg->err_msg = text; break;
        case XR_ENV_REF_MSG_ID: msg->ref_msg_id = text; break;
        default:                break;
        }
    }
    return XR_OK;
}


/* The canonical error code of a wire result code. */
static xr_str_t
xr_error_canon(xr_ctx_t *ctx, const xr_profile_t *p, xr_str_t wire)
{
    xr_str_t  canon;
    char     *s;

    if (p->errors && xr_table_to_canon(p->errors, wire, &canon) == XR_OK) {
        return canon;
    }
    s = xr_palloc(ctx->pool, wire.len + 5);
    if (s == NULL) {
        return xr_str_from("XR-UPSTREAM-ERROR");
    }
    memcpy(s, "BIZ-", 4);
    memcpy(s + 4, wire.data, wire.len);
    canon.data = s;
    canon.len = wire.len + 4;
    return canon;
}


int
xr_map_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *hint, const xr_node_t *wire, xr_msg_t *msg)
{
    const xr_ptxn_t  *ptxn = NULL;
    const xr_node_t  *rn;
    xr_str_t          code = xr_null_string, result;

    xr_msg_init(msg, dir);
    msg->domain = p->domain;

    if (wire == NULL || wire->type != XR_NODE_OBJECT) {
        return xr_fail(ctx, XR_E_SYNTAX, NULL, "message is not a document");
    }

    msg->body = xr_node_new(ctx, XR_NODE_OBJECT);
    if (msg->body == NULL) {
        return XR_ERROR;
    }
    msg->body->unique = 1;  /* one member per canon at most */

    if (xr_decode_env(ctx, p, dir, wire, msg, &code) != XR_OK) {
        return XR_ERROR;
    }

    if (dir == XR_DIR_RESPONSE) {
        rn = xr_node_path_get(wire, p->result_field);
        if (rn == NULL || (rn->type != XR_NODE_STRING
                           && rn->type != XR_NODE_NUMBER))
        {
            return xr_fail(ctx, XR_E_FIELD_MISSING, "@status",
                           "answer has no result code (wire %.*s)",
                           (int) p->result_field.len, p->result_field.data);
        }
        result = rn->u.s;
        msg->ok = 0;
        for (size_t k = 0; k < p->nok_values; k++) {
            if (xr_str_cmp(result, p->ok_values[k]) == 0) {
                msg->ok = 1;
                break;
            }
        }
        if (!msg->ok) {
            msg->err_code = xr_error_canon(ctx, p, result);
        }
        if (p->message_field.len) {
            rn = xr_node_path_get(wire, p->message_field);
            if (rn && (rn->type == XR_NODE_STRING
                       || rn->type == XR_NODE_NUMBER))
            {
                msg->err_msg = rn->u.s;
            }
        }
    }

    if (hint) {
        ptxn = hint;
    } else {
        if (code.len == 0) {
            return xr_fail(ctx, XR_E_FIELD_MISSING, "@txn",
                           "message has no transaction code");
        }
        ptxn = xr_profile_txn_by_code(p, code);
        if (ptxn == NULL) {
            return xr_fail(ctx, XR_E_TXN_UNKNOWN, "@txn",
                           "unknown transaction code \"%.*s\" for %.*s",
                           (int) (code.len > 40 ? 40 : code.len), code.data,
                           (int) p->name.len, p->name.data);
        }
    }
    msg->txn = ptxn->stxn->name;

    if (msg->origin.len == 0 && dir == XR_DIR_REQUEST) {
        msg->origin = p->region;
    }

    /*
     * An error answer carries no business fields: whatever stands in them
     * (blank columns of a fixed record, zeros) is not read.
     */
    if (dir == XR_DIR_RESPONSE && !msg->ok) {
        return XR_OK;
    }
    return xr_decode_maps(ctx, p, ptxn->maps[dir].maps,
                          ptxn->maps[dir].nmaps, wire, msg->body, 1);
}


/* ---- encoding --------------------------------------------------------- */

/*
 * How a scalar goes on the wire: a number where the codec has numbers and
 * the map (as=) or the value (numeric) asks for one, else a string.
 */
static xr_wv_kind_e
xr_wire_kind(const xr_profile_t *p, xr_wire_type_e as, int numeric)
{
    if ((p->adapter->flags & XR_ADAPTER_NUMBERS)
        && (as == XR_WIRE_NUMBER || (as == XR_WIRE_AUTO && numeric)))
    {
        return XR_WV_NUMBER;
    }
    return XR_WV_STRING;
}


/* The wire node of a scalar value (the wire tree's way). */
static xr_node_t *
xr_wval_node(xr_ctx_t *ctx, const xr_wval_t *wv)
{
    xr_node_t  *n;

    if (wv->kind == XR_WV_BOOL) {
        n = xr_node_new(ctx, XR_NODE_BOOL);
        if (n) {
            n->u.b = (wv->text.data[0] == 't');
        }
        return n;
    }

    /*
     * text is in the message's pool or the configuration's: referenced,
     * not copied.
     */
    n = xr_node_string_ref(ctx, wv->text.data, wv->text.len);
    if (n && wv->kind == XR_WV_NUMBER) {
        n->type = XR_NODE_NUMBER;
    }
    return n;
}


static xr_node_t *
xr_wire_scalar(xr_ctx_t *ctx, const xr_profile_t *p, xr_wire_type_e as,
    int numeric, xr_str_t text)
{
    xr_wval_t  wv;

    wv.kind = xr_wire_kind(p, as, numeric);
    wv.text = text;
    return xr_wval_node(ctx, &wv);
}


/* Decimal digits of v into the pool: no printf for every integer. */
static int
xr_format_int(xr_ctx_t *ctx, int64_t v, xr_str_t *out)
{
    char      buf[24], *p, *s;
    uint64_t  a;
    size_t    n;

    a = v < 0 ? 0 - (uint64_t) v : (uint64_t) v;
    p = buf + sizeof(buf);
    do {
        *--p = (char) ('0' + a % 10);
        a /= 10;
    } while (a);
    if (v < 0) {
        *--p = '-';
    }
    n = (size_t) (buf + sizeof(buf) - p);

    s = xr_palloc(ctx->pool, n);
    if (s == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }
    memcpy(s, p, n);
    out->data = s;
    out->len = n;
    return XR_OK;
}


/*
 * A canonical value as wire text and kind: every check and conversion of
 * encoding, shared by the wire tree and the write plans so that both fail
 * alike.
 */
static int
xr_encode_text(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *m,
    xr_ftype_e ft, const xr_node_t *v, xr_wval_t *out)
{
    xr_str_t            text, wire, q;
    xr_amount_unit_e    unit;
    size_t              chars;
    int                 numeric = 0;
    unsigned            plain = 0, number = 0;

    switch (ft) {

    case XR_FT_STRING:
    case XR_FT_CODE:
        if (v->type != XR_NODE_STRING) {
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "field %s is a %s, expected a string",
                           XR_FNAME(m), xr_node_type_name(v->type));
        }
        text = v->u.s;
        plain = v->plain;
        if (m->table) {
            plain = m->table->wire_plain;
            if (xr_table_to_wire(m->table, text, &wire) != XR_OK) {
                q = xr_map_quote(ctx, m, text);
                return xr_fail(ctx, XR_E_CODE_UNMAPPED, XR_FNAME(m),
                               "code \"%.*s\" of field %s has no mapping in "
                               "table %.*s of %.*s", (int) q.len,
                               q.data, XR_FNAME(m),
                               (int) m->table->name.len, m->table->name.data,
                               (int) p->name.len, p->name.data);
            }
            text = wire;
        }
        if (m->max && text.len > m->max) {
            chars = xr_utf8_length(text.data, text.len);
            if (chars > m->max) {
                return xr_fail(ctx, XR_E_FIELD_TOO_LONG, XR_FNAME(m),
                               "field %s has %zu characters, %.*s allows "
                               "%zu (wire %.*s)", XR_FNAME(m), chars,
                               (int) p->name.len, p->name.data, m->max,
                               (int) m->wire.len, m->wire.data);
            }
        }
        break;

    case XR_FT_INT:
        if (v->type != XR_NODE_INT) {
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "field %s is a %s, expected an integer",
                           XR_FNAME(m), xr_node_type_name(v->type));
        }
        if (xr_format_int(ctx, v->u.i, &text) != XR_OK) {
            return XR_ERROR;
        }
        numeric = 1;
        plain = 1;      /* digits: a number too */
        number = 1;
        break;

    case XR_FT_AMOUNT:
        if (v->type != XR_NODE_AMOUNT) {
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "field %s is a %s, expected an amount",
                           XR_FNAME(m), xr_node_type_name(v->type));
        }
        unit = m->amount ? m->amount : p->amount;
        if (xr_amount_format(ctx, v->u.i, unit, &text) != XR_OK) {
            return XR_ERROR;
        }
        numeric = (unit == XR_AMOUNT_FEN);
        plain = 1;      /* "-12.30" or "-1230": a number too */
        number = 1;
        break;

    case XR_FT_BOOL:
        if (v->type != XR_NODE_BOOL) {
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "field %s is a %s, expected a boolean",
                           XR_FNAME(m), xr_node_type_name(v->type));
        }
        if (m->as == XR_WIRE_BOOL && (p->adapter->flags
                                      & XR_ADAPTER_NUMBERS))
        {
            out->kind = XR_WV_BOOL;
            out->plain = 1;
            out->text = xr_str_from(v->u.b ? "true" : "false");
            return XR_OK;
        }
        text = xr_str_from(v->u.b ? "true" : "false");
        if (m->table) {
            if (xr_table_to_wire(m->table, text, &wire) != XR_OK) {
                return xr_fail(ctx, XR_E_CODE_UNMAPPED, XR_FNAME(m),
                               "boolean field %s has no mapping for %.*s in "
                               "table %.*s", XR_FNAME(m), (int) text.len,
                               text.data, (int) m->table->name.len,
                               m->table->name.data);
            }
            text = wire;
        } else {
            text = xr_str_from(v->u.b ? "1" : "0");
        }
        break;

    case XR_FT_DATE:
    case XR_FT_DATETIME:
        if (v->type != XR_NODE_TIME) {
            return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                           "field %s is a %s, expected a time",
                           XR_FNAME(m), xr_node_type_name(v->type));
        }
        /* the profile's patterns are checked at load */
        if (xr_time_format_checked(ctx, m->time->pattern, &v->u.t, &text)
            != XR_OK)
        {
            return XR_ERROR;
        }
        numeric = m->time_numeric;
        plain = m->time_numeric || m->time_plain;
        number = m->time_numeric;
        break;

    default:
        return xr_fail(ctx, XR_E_INTERNAL, XR_FNAME(m), "bad field type");
    }

    out->kind = xr_wire_kind(p, m->as, numeric);
    /* a pattern's text as a number is checked by the writer */
    out->plain = plain && (number || out->kind == XR_WV_STRING);
    out->text = text;
    return XR_OK;
}


static int
xr_encode_value(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *m,
    xr_ftype_e ft, const xr_node_t *v, xr_node_t **out)
{
    xr_wval_t  wv;

    *out = NULL;
    if (xr_encode_text(ctx, p, m, ft, v, &wv) != XR_OK) {
        return XR_ERROR;
    }
    *out = xr_wval_node(ctx, &wv);
    return *out ? XR_OK : XR_ERROR;
}


static int xr_encode_maps(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_map_t *maps, size_t nmaps, const xr_node_t *body,
    xr_node_t *wire);


static int
xr_encode_list(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *m,
    const xr_node_t *v, xr_node_t **out)
{
    xr_node_t  *arr, *obj;
    size_t      i;

    if (v->type != XR_NODE_ARRAY) {
        return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                       "field %s is a %s, expected a list", XR_FNAME(m),
                       xr_node_type_name(v->type));
    }

    arr = xr_node_new(ctx, XR_NODE_ARRAY);
    if (arr == NULL) {
        return XR_ERROR;
    }
    for (i = 0; i < v->u.arr.count; i++) {
        obj = xr_node_new(ctx, XR_NODE_OBJECT);
        if (obj) {
            obj->unique = 1;    /* the loader refuses repeated wire paths */
        }
        if (obj == NULL
            || xr_encode_maps(ctx, p, m->children, m->nchildren,
                              v->u.arr.items[i], obj) != XR_OK
            || xr_array_push(ctx, arr, obj) != XR_OK)
        {
            return XR_ERROR;
        }
    }
    *out = arr;
    return XR_OK;
}


static int
xr_set_const(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *m,
    xr_node_t *wire, xr_path_cache_t *pc)
{
    xr_node_t  *n;

    n = xr_wire_scalar(ctx, p, m->as, 0, m->value);
    if (n == NULL) {
        return XR_ERROR;
    }
    return xr_cached_set(ctx, wire, m, n, pc);
}


static int
xr_encode_maps(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *maps,
    size_t nmaps, const xr_node_t *body, xr_node_t *wire)
{
    const xr_map_t  *m;
    const xr_node_t *v;
    xr_node_t       *n = NULL;
    xr_member_t     *hint = NULL;
    size_t           i;
    xr_path_cache_t  pc = { xr_null_string, NULL, NULL, NULL, 0, 0 };

    for (i = 0; i < nmaps; i++) {
        m = &maps[i];

        if (m->is_const) {
            if (xr_set_const(ctx, p, m, wire, &pc) != XR_OK) {
                return XR_ERROR;
            }
            continue;
        }
        if (m->env != XR_ENV_NONE || m->value.len) {
            continue;   /* envelope handled elsewhere; slices decode only */
        }

        /* bodies decoded here have each canon once: search from the last */
        v = body->unique ? xr_object_get_next(body, m->sf->name, &hint)
                         : xr_object_get(body, m->sf->name);
        if (v == NULL) {
            if (m->required) {
                return xr_fail(ctx, XR_E_FIELD_MISSING, XR_FNAME(m),
                               "%.*s requires field %s (wire %.*s), the "
                               "message has none", (int) p->name.len,
                               p->name.data, XR_FNAME(m), (int) m->wire.len,
                               m->wire.data);
            }
            continue;
        }

        if (m->sf->type == XR_FT_LIST) {
            if (xr_encode_list(ctx, p, m, v, &n) != XR_OK) {
                return XR_ERROR;
            }
        } else if (xr_encode_value(ctx, p, m, m->sf->type, v, &n) != XR_OK) {
            return XR_ERROR;
        } else if (m->sf->pii) {
            n->pii = m->sf->pii;    /* a writer's error masks the value */
        }

        if (xr_cached_set(ctx, wire, m, n, &pc) != XR_OK) {
            return XR_ERROR;
        }
    }
    return XR_OK;
}


/*
 * The text an envelope field (not @time) writes, checked against its map:
 * XR_OK with *text; XR_DECLINED when nothing is written (no transaction
 * code, an optional field the message lacks); XR_ERROR.  Shared by the
 * wire-tree encoder and the write plans, so both refuse alike.
 */
static int
xr_env_text(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *m,
    const xr_msg_t *msg, const xr_ptxn_t *ptxn, xr_str_t *text)
{
    switch (m->env) {
    case XR_ENV_TXN:
        if (ptxn == NULL) {
            return XR_DECLINED;
        }
        *text = ptxn->code;
        break;
    case XR_ENV_MSG_ID:     *text = msg->msg_id; break;
    case XR_ENV_ORIGIN:     *text = msg->origin; break;
    case XR_ENV_DEST:       *text = msg->dest; break;
    case XR_ENV_CALLER:     *text = msg->caller; break;
    case XR_ENV_VERSION:    *text = msg->version; break;
    case XR_ENV_DOMAIN:     *text = msg->domain; break;
    case XR_ENV_ERR_MSG:    *text = msg->err_msg; break;
    case XR_ENV_ERR_CODE:   *text = msg->err_code; break;
    case XR_ENV_REF_MSG_ID: *text = msg->ref_msg_id; break;
    case XR_ENV_STATUS:     *text = xr_str_from(msg->ok ? "ok" : "error");
                            break;
    default:                return XR_DECLINED;
    }

    if (text->len == 0) {
        if (m->required) {
            return xr_fail(ctx, XR_E_FIELD_MISSING, XR_FNAME(m),
                           "%.*s requires %s (wire %.*s), the message "
                           "has none", (int) p->name.len, p->name.data,
                           XR_FNAME(m), (int) m->wire.len, m->wire.data);
        }
        return XR_DECLINED;
    }
    if (m->max && text->len > m->max
        && xr_utf8_length(text->data, text->len) > m->max)
    {
        return xr_fail(ctx, XR_E_FIELD_TOO_LONG, XR_FNAME(m),
                       "%s is %zu characters long, %.*s allows %zu "
                       "(wire %.*s)", XR_FNAME(m),
                       xr_utf8_length(text->data, text->len),
                       (int) p->name.len, p->name.data, m->max,
                       (int) m->wire.len, m->wire.data);
    }
    return XR_OK;
}


static int
xr_encode_env(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *msg,
    const xr_ptxn_t *ptxn, xr_node_t *wire)
{
    const xr_mapset_t  *ms = &p->env[msg->dir];
    const xr_map_t     *m;
    xr_node_t          *n, tn;
    xr_str_t            text;
    xr_time_t           now;
    size_t              i;
    int                 rc;
    xr_path_cache_t     pc = { xr_null_string, NULL, NULL, NULL, 0, 0 };

    for (i = 0; i < ms->nmaps; i++) {
        m = &ms->maps[i];

        if (m->is_const) {
            if (xr_set_const(ctx, p, m, wire, &pc) != XR_OK) {
                return XR_ERROR;
            }
            continue;
        }

        if (m->env == XR_ENV_TIME) {
            tn.type = XR_NODE_TIME;
            if (msg->has_time) {
                tn.u.t = msg->time;
            } else {
                xr_time_now(&now);
                tn.u.t = now;
            }
            if (xr_encode_value(ctx, p, m, XR_FT_DATETIME, &tn, &n)
                != XR_OK
                || xr_cached_set(ctx, wire, m, n, &pc) != XR_OK)
            {
                return XR_ERROR;
            }
            continue;
        }

        rc = xr_env_text(ctx, p, m, msg, ptxn, &text);
        if (rc == XR_DECLINED) {
            continue;
        }
        if (rc != XR_OK) {
            return XR_ERROR;
        }

        n = xr_wire_scalar(ctx, p, m->as, 0, text);
        if (n == NULL || xr_cached_set(ctx, wire, m, n, &pc) != XR_OK) {
            return XR_ERROR;
        }
    }
    return XR_OK;
}


/*
 * The result and message fields are not among the paths the loader
 * checks: a map may write one of them again.  The objects on such a path
 * that hold its key twice lose their `unique` flag, so that the writer
 * finds the repeated key as it would in any tree.
 */
static void
xr_unique_path(xr_node_t *root, xr_str_t path)
{
    xr_node_t    *n = root, *next;
    xr_member_t  *m;
    xr_str_t      key;
    size_t        i, seen;

    while (n && n->type == XR_NODE_OBJECT && path.len) {
        for (i = 0; i < path.len && path.data[i] != '.'; i++) {
            /* void */
        }
        key.data = path.data;
        key.len = i;
        path.data += i < path.len ? i + 1 : i;
        path.len -= i < path.len ? i + 1 : i;

        next = NULL;
        seen = 0;
        for (m = n->u.obj.first; m; m = m->next) {
            if (xr_str_cmp(m->key, key) == 0) {
                if (seen++ == 0) {
                    next = m->value;
                }
            }
        }
        if (seen > 1) {
            n->unique = 0;
        }
        n = next;
    }
}


/* The wire result code for an answer. */
static xr_str_t
xr_result_code(const xr_profile_t *p, const xr_msg_t *msg)
{
    xr_str_t  wire;

    if (msg->ok) {
        return p->ok_value;
    }
    if (p->errors) {
        if (msg->err_code.len
            && xr_table_to_wire(p->errors, msg->err_code, &wire) == XR_OK)
        {
            return wire;
        }
        if (p->errors->default_wire.len) {
            return p->errors->default_wire;
        }
    }
    if (p->fail_value.len) {
        return p->fail_value;
    }
    return xr_str_from("-1");
}


int
xr_map_encode_txn(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *msg,
    const xr_ptxn_t *ptxn, xr_node_t **wire_out)
{
    xr_node_t  *wire, *n;
    xr_str_t    code;
    unsigned    added = 0;

    wire = xr_node_new(ctx, XR_NODE_OBJECT);
    if (wire == NULL) {
        return XR_ERROR;
    }
    /*
     * The loader refuses a profile that writes one wire path twice
     * (xr_check_wire_paths): the objects built here have unique keys, but
     * for the result and message fields, checked in xr_unique_path().
     */
    wire->unique = 1;

    if (xr_encode_env(ctx, p, msg, ptxn, wire) != XR_OK) {
        return XR_ERROR;
    }

    if (msg->dir == XR_DIR_RESPONSE) {
        code = xr_result_code(p, msg);
        n = xr_wire_scalar(ctx, p, p->result_as, 0, code);
        if (n == NULL) {
            return XR_ERROR;
        }
        if (xr_node_path_get(wire, p->result_field) == NULL) {
            if (xr_node_path_set(ctx, wire, p->result_field, n) != XR_OK) {
                return XR_ERROR;
            }
            added |= 1;
        }
        if (p->message_field.len
            && xr_node_path_get(wire, p->message_field) == NULL)
        {
            n = xr_node_string(ctx, msg->ok ? "" : msg->err_msg.data,
                               msg->ok ? 0 : msg->err_msg.len);
            if (n == NULL
                || xr_node_path_set(ctx, wire, p->message_field, n) != XR_OK)
            {
                return XR_ERROR;
            }
            added |= 2;
        }
    }

    if (ptxn && (msg->dir == XR_DIR_REQUEST || msg->ok) && msg->body) {
        if (xr_encode_maps(ctx, p, ptxn->maps[msg->dir].maps,
                           ptxn->maps[msg->dir].nmaps, msg->body, wire)
            != XR_OK)
        {
            return XR_ERROR;
        }
    }

    if (added & 1) {
        xr_unique_path(wire, p->result_field);
    }
    if (added & 2) {
        xr_unique_path(wire, p->message_field);
    }

    *wire_out = wire;
    return XR_OK;
}


int
xr_map_encode(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *msg,
    const xr_ptxn_t **ptxn_out, xr_node_t **wire)
{
    const xr_ptxn_t  *ptxn;

    if (msg->domain.len && xr_str_cmp(msg->domain, p->domain) != 0) {
        return xr_fail(ctx, XR_E_DOMAIN_MISMATCH, NULL,
                       "a %.*s message cannot be written as %.*s",
                       (int) msg->domain.len, msg->domain.data,
                       (int) p->name.len, p->name.data);
    }

    ptxn = xr_profile_txn(p, msg->txn);
    if (ptxn == NULL) {
        return xr_fail(ctx, XR_E_TXN_UNSUPPORTED, "@txn",
                       "%.*s does not offer transaction %.*s",
                       (int) p->name.len, p->name.data,
                       (int) msg->txn.len, msg->txn.data);
    }
    if (ptxn_out) {
        *ptxn_out = ptxn;
    }
    return xr_map_encode_txn(ctx, p, msg, ptxn, wire);
}


/* ---- write plans: the wire document without a wire tree --------------- */

/*
 * Each function below does what its wire-tree twin above does, in the
 * same order and with the same errors, but keeps the values in the plan's
 * slots: xr_plan_maps() is xr_encode_maps(), xr_plan_list()
 * xr_encode_list(), xr_plan_env() xr_encode_env().
 */

static xr_wvals_t *
xr_plan_vals(xr_ctx_t *ctx, const xr_wplan_t *plan, xr_wvals_t *d)
{
    if (d == NULL) {
        d = xr_palloc(ctx->pool, sizeof(xr_wvals_t));
        if (d == NULL) {
            xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
            return NULL;
        }
    }
    /* every slot is written in turn: only the flags need zeroes */
    d->plan = plan;
    d->v = xr_palloc(ctx->pool, plan->nslots * sizeof(xr_wval_t)
                                + plan->nnodes);
    if (d->v == NULL) {
        xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }
    d->present = (unsigned char *) (d->v + plan->nslots);
    memset(d->present, 0, plan->nnodes);
    return d;
}


/*
 * Marks the objects that get a member.  The mapper adds an object to its
 * parent with its first field present; the plan has it where its first
 * field may be.  XR_DECLINED when the two differ (a missing field first in
 * an object that comes back later): the wire tree writes that order.
 */
static int
xr_plan_order(xr_wvals_t *d)
{
    const xr_wplan_t  *plan = d->plan;
    const xr_wnode_t  *n;
    size_t             s;

    d->present[plan->root->index] = 1;

    for (s = 0; s < plan->nslots; s++) {
        if (d->v[s].kind == XR_WV_ABSENT) {
            continue;
        }
        n = plan->leaves[s];
        d->present[n->index] = 1;
        for (n = n->parent; !d->present[n->index]; n = n->parent) {
            if (n->first != s) {
                return XR_DECLINED;
            }
            d->present[n->index] = 1;
        }
    }
    return XR_OK;
}


static int xr_plan_maps(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_map_t *maps, size_t nmaps, const xr_node_t *body,
    xr_wvals_t *d, size_t *slot);


static int
xr_plan_list(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *m,
    const xr_node_t *v, xr_wval_t *out)
{
    xr_wvals_t  *items = NULL;
    size_t       i, slot;
    int          rc;

    if (v->type != XR_NODE_ARRAY) {
        return xr_fail(ctx, XR_E_FIELD_TYPE, XR_FNAME(m),
                       "field %s is a %s, expected a list", XR_FNAME(m),
                       xr_node_type_name(v->type));
    }

    if (v->u.arr.count) {
        items = xr_palloc(ctx->pool, v->u.arr.count * sizeof(xr_wvals_t));
        if (items == NULL) {
            return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
        }
    }

    for (i = 0; i < v->u.arr.count; i++) {
        if (xr_plan_vals(ctx, m->plan, &items[i]) == NULL) {
            return XR_ERROR;
        }
        slot = 0;
        rc = xr_plan_maps(ctx, p, m->children, m->nchildren,
                          v->u.arr.items[i], &items[i], &slot);
        if (rc == XR_OK) {
            rc = xr_plan_order(&items[i]);
        }
        if (rc != XR_OK) {
            return rc;
        }
    }

    out->kind = XR_WV_LIST;
    out->items = items;
    out->nitems = v->u.arr.count;
    return XR_OK;
}


static int
xr_plan_maps(xr_ctx_t *ctx, const xr_profile_t *p, const xr_map_t *maps,
    size_t nmaps, const xr_node_t *body, xr_wvals_t *d, size_t *slot)
{
    const xr_map_t  *m;
    const xr_node_t *v;
    xr_member_t     *hint = NULL;
    xr_wval_t       *wv;
    size_t           i;
    int              rc;

    for (i = 0; i < nmaps; i++) {
        m = &maps[i];

        if (!xr_map_writes(m)) {
            continue;   /* envelope handled elsewhere; slices decode only */
        }
        wv = &d->v[(*slot)++];

        if (m->is_const) {
            wv->kind = xr_wire_kind(p, m->as, 0);
            /* a number's text is still the writer's to check */
            wv->plain = m->value_plain && wv->kind == XR_WV_STRING;
            wv->text = m->value;
            continue;
        }
        wv->kind = XR_WV_ABSENT;
        wv->plain = 0;

        v = body->unique ? xr_object_get_next(body, m->sf->name, &hint)
                         : xr_object_get(body, m->sf->name);
        if (v == NULL) {
            if (m->required) {
                return xr_fail(ctx, XR_E_FIELD_MISSING, XR_FNAME(m),
                               "%.*s requires field %s (wire %.*s), the "
                               "message has none", (int) p->name.len,
                               p->name.data, XR_FNAME(m), (int) m->wire.len,
                               m->wire.data);
            }
            continue;
        }

        if (m->sf->type == XR_FT_LIST) {
            rc = xr_plan_list(ctx, p, m, v, wv);
        } else {
            rc = xr_encode_text(ctx, p, m, m->sf->type, v, wv);
        }
        if (rc != XR_OK) {
            return rc;
        }
    }
    return XR_OK;
}


static int
xr_plan_env(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *msg,
    const xr_ptxn_t *ptxn, xr_wvals_t *d, size_t *slot)
{
    const xr_mapset_t  *ms = &p->env[msg->dir];
    const xr_map_t     *m;
    xr_node_t           tn;
    xr_wval_t          *wv;
    xr_str_t            text;
    size_t              i;
    int                 rc;

    for (i = 0; i < ms->nmaps; i++) {
        m = &ms->maps[i];
        wv = &d->v[(*slot)++];

        if (m->is_const) {
            wv->kind = xr_wire_kind(p, m->as, 0);
            /* a number's text is still the writer's to check */
            wv->plain = m->value_plain && wv->kind == XR_WV_STRING;
            wv->text = m->value;
            continue;
        }
        wv->kind = XR_WV_ABSENT;
        wv->plain = 0;

        if (m->env == XR_ENV_TIME) {
            tn.type = XR_NODE_TIME;
            if (msg->has_time) {
                tn.u.t = msg->time;
            } else {
                xr_time_now(&tn.u.t);
            }
            if (xr_encode_text(ctx, p, m, XR_FT_DATETIME, &tn, wv)
                != XR_OK)
            {
                return XR_ERROR;
            }
            continue;
        }

        rc = xr_env_text(ctx, p, m, msg, ptxn, &text);
        if (rc == XR_DECLINED) {
            continue;
        }
        if (rc != XR_OK) {
            return XR_ERROR;
        }

        wv->kind = xr_wire_kind(p, m->as, 0);
        wv->text = text;
    }
    return XR_OK;
}


int
xr_map_encode_plan(xr_ctx_t *ctx, const xr_profile_t *p, const xr_msg_t *msg,
    const xr_ptxn_t **ptxn_out, xr_wvals_t **out)
{
    const xr_ptxn_t   *ptxn;
    const xr_wplan_t  *plan;
    xr_wvals_t        *d;
    xr_wval_t         *wv;
    size_t             slot = 0;
    int                rc;

    if (msg->domain.len && xr_str_cmp(msg->domain, p->domain) != 0) {
        return xr_fail(ctx, XR_E_DOMAIN_MISMATCH, NULL,
                       "a %.*s message cannot be written as %.*s",
                       (int) msg->domain.len, msg->domain.data,
                       (int) p->name.len, p->name.data);
    }

    ptxn = xr_profile_txn(p, msg->txn);
    if (ptxn == NULL) {
        return xr_fail(ctx, XR_E_TXN_UNSUPPORTED, "@txn",
                       "%.*s does not offer transaction %.*s",
                       (int) p->name.len, p->name.data,
                       (int) msg->txn.len, msg->txn.data);
    }
    *ptxn_out = ptxn;

    /* the writer does not check the depth: the plan's must be allowed */
    plan = ptxn->plan[msg->dir];
    if (plan == NULL || plan->depth >= xr_ctx_max_depth(ctx)) {
        return XR_DECLINED;
    }

    d = xr_plan_vals(ctx, plan, NULL);
    if (d == NULL) {
        return XR_ERROR;
    }

    if (xr_plan_env(ctx, p, msg, ptxn, d, &slot) != XR_OK) {
        return XR_ERROR;
    }

    if (msg->dir == XR_DIR_RESPONSE) {
        wv = &d->v[slot++];
        wv->kind = xr_wire_kind(p, p->result_as, 0);
        wv->plain = 0;
        wv->text = xr_result_code(p, msg);
        if (p->message_field.len) {
            wv = &d->v[slot++];
            wv->kind = XR_WV_STRING;
            wv->plain = 0;
            wv->text = msg->ok || msg->err_msg.len == 0
                       ? xr_str_from("") : msg->err_msg;
        }
    }

    if ((msg->dir == XR_DIR_REQUEST || msg->ok) && msg->body) {
        rc = xr_plan_maps(ctx, p, ptxn->maps[msg->dir].maps,
                          ptxn->maps[msg->dir].nmaps, msg->body, d, &slot);
        if (rc != XR_OK) {
            return rc;
        }
    }
    while (slot < plan->nslots) {
        d->v[slot++].kind = XR_WV_ABSENT;
    }

    if (xr_plan_order(d) != XR_OK) {
        return XR_DECLINED;
    }

    *out = d;
    return XR_OK;
}
