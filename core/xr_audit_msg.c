/*
 * Amounts and masked identifiers of a transaction for its audit record.
 * Only top-level fields: the amounts a regulator reconciles (total, fund
 * payment, personal account) and the person a record is about are there;
 * list items (fee details) would make records long without telling more.
 */

#include <string.h>

#include "xr_audit_msg.h"
#include "xr_mask.h"


static int xr_audit_msg_collect(xr_ctx_t *ctx, const xr_sfield_t *fields,
    size_t nfields, const xr_msg_t *msg, xr_audit_amount_t *amounts,
    size_t *namounts, xr_audit_ident_t *ids, size_t *nids);
static int xr_audit_msg_seen(const xr_str_t *names, size_t stride,
    size_t n, xr_str_t name);


int
xr_audit_msg_fields(xr_ctx_t *ctx, const xr_stxn_t *stxn,
    const xr_msg_t *req, const xr_msg_t *ans, xr_audit_rec_t *rec)
{
    size_t              namounts, nids;
    xr_audit_ident_t   *ids;
    xr_audit_amount_t  *amounts;

    rec->amounts = NULL;
    rec->namounts = 0;
    rec->ids = NULL;
    rec->nids = 0;

    if (stxn == NULL) {
        return XR_OK;
    }

    amounts = xr_palloc(ctx->pool,
                        XR_AUDIT_PAIRS_MAX * sizeof(xr_audit_amount_t));
    ids = xr_palloc(ctx->pool, XR_AUDIT_PAIRS_MAX * sizeof(xr_audit_ident_t));

    if (amounts == NULL || ids == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, "out of memory");
    }

    namounts = 0;
    nids = 0;

    if (req
        && xr_audit_msg_collect(ctx, stxn->fields[XR_DIR_REQUEST],
                                stxn->nfields[XR_DIR_REQUEST], req, amounts,
                                &namounts, ids, &nids)
           != XR_OK)
    {
        return XR_ERROR;
    }

    if (ans
        && xr_audit_msg_collect(ctx, stxn->fields[XR_DIR_RESPONSE],
                                stxn->nfields[XR_DIR_RESPONSE], ans, amounts,
                                &namounts, ids, &nids)
           != XR_OK)
    {
        return XR_ERROR;
    }

    rec->amounts = amounts;
    rec->namounts = namounts;
    rec->ids = ids;
    rec->nids = nids;

    return XR_OK;
}


static int
xr_audit_msg_collect(xr_ctx_t *ctx, const xr_sfield_t *fields,
    size_t nfields, const xr_msg_t *msg, xr_audit_amount_t *amounts,
    size_t *namounts, xr_audit_ident_t *ids, size_t *nids)
{
    size_t              i;
    xr_str_t            text;
    xr_node_t          *v;
    const xr_sfield_t  *f;

    if (msg->body == NULL || msg->body->type != XR_NODE_OBJECT) {
        return XR_OK;
    }

    for (i = 0; i < nfields; i++) {
        f = &fields[i];

        if (f->type != XR_FT_AMOUNT && f->pii == XR_PII_NONE) {
            continue;
        }

        v = xr_object_get(msg->body, f->name);
        if (v == NULL) {
            continue;
        }

        if (f->type == XR_FT_AMOUNT) {
            if (v->type != XR_NODE_AMOUNT || *namounts == XR_AUDIT_PAIRS_MAX
                || xr_audit_msg_seen(&amounts[0].name,
                                     sizeof(xr_audit_amount_t), *namounts,
                                     f->name))
            {
                continue;
            }

            amounts[*namounts].name = f->name;
            amounts[*namounts].fen = v->u.i;
            (*namounts)++;
            continue;
        }

        if ((v->type != XR_NODE_STRING && v->type != XR_NODE_NUMBER)
            || v->u.s.len == 0 || *nids == XR_AUDIT_PAIRS_MAX
            || xr_audit_msg_seen(&ids[0].name, sizeof(xr_audit_ident_t),
                                 *nids, f->name))
        {
            continue;
        }

        if (xr_mask_pstr(ctx, f->pii, v->u.s, &text) != XR_OK) {
            return XR_ERROR;
        }

        ids[*nids].name = f->name;
        ids[*nids].value = text;
        (*nids)++;
    }

    return XR_OK;
}


/* names: the first name of an array of structs `stride` bytes apart */

static int
xr_audit_msg_seen(const xr_str_t *names, size_t stride, size_t n,
    xr_str_t name)
{
    size_t           i;
    const xr_str_t  *s;

    for (i = 0; i < n; i++) {
        s = (const xr_str_t *) ((const char *) names + i * stride);

        if (s->len == name.len && memcmp(s->data, name.data, name.len) == 0) {
            return 1;
        }
    }

    return 0;
}
