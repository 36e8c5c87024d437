/*
 * What an audit record takes from a transaction (core/xr_audit_msg.c):
 * the amounts in fen and the personal identifiers, masked, of the
 * top-level fields the schema declares; the request's value wins a name
 * both carry; never more than a record holds.
 */

#include "xr_test.h"
#include "xr_audit_msg.h"
#include "xr_mask.h"


static xr_sfield_t  req_fields[] = {
    { .name = xr_string("cert_no"), .type = XR_FT_STRING,
      .pii = XR_PII_ID },
    { .name = xr_string("psn_name"), .type = XR_FT_STRING,
      .pii = XR_PII_NAME },
    { .name = xr_string("total"), .type = XR_FT_AMOUNT },
    { .name = xr_string("fund_pay"), .type = XR_FT_AMOUNT },
    { .name = xr_string("hosp"), .type = XR_FT_STRING },
    { .name = xr_string("phone"), .type = XR_FT_STRING,
      .pii = XR_PII_PHONE },
    { .name = xr_string("items"), .type = XR_FT_LIST },
};

static xr_sfield_t  ans_fields[] = {
    { .name = xr_string("total"), .type = XR_FT_AMOUNT },
    { .name = xr_string("refund"), .type = XR_FT_AMOUNT, .negative = 1 },
    { .name = xr_string("card_sn"), .type = XR_FT_STRING,
      .pii = XR_PII_CARD },
};


static void
put(xr_ctx_t *ctx, xr_node_t *obj, const char *key, xr_node_t *v)
{
    assert_non_null(v);
    assert_int_equal(xr_object_add(ctx, obj, xr_str_from(key), v), XR_OK);
}


static xr_node_t *
str(xr_ctx_t *ctx, const char *s)
{
    return xr_node_string(ctx, s, strlen(s));
}


static void
msg(xr_ctx_t *ctx, xr_msg_t *m, xr_dir_e dir)
{
    xr_msg_init(m, dir);
    m->body = xr_node_new(ctx, XR_NODE_OBJECT);
    assert_non_null(m->body);
}


static const xr_audit_amount_t *
amount(const xr_audit_rec_t *rec, const char *name)
{
    size_t  i;

    for (i = 0; i < rec->namounts; i++) {
        if (xr_str_eq(rec->amounts[i].name, name)) {
            return &rec->amounts[i];
        }
    }
    return NULL;
}


static const char *
ident(const xr_audit_rec_t *rec, const char *name)
{
    size_t       i;
    static char  buf[XR_MASK_LEN];

    for (i = 0; i < rec->nids; i++) {
        if (xr_str_eq(rec->ids[i].name, name)) {
            snprintf(buf, sizeof(buf), "%.*s", (int) rec->ids[i].value.len,
                     rec->ids[i].value.data);
            return buf;
        }
    }
    return NULL;
}


static void
test_amounts_and_masked_ids(void **state)
{
    xr_env_t        *env = *state;
    xr_ctx_t        *ctx = &env->ctx;
    xr_msg_t         req, ans;
    xr_stxn_t        stxn;
    xr_audit_rec_t   rec;

    memset(&stxn, 0, sizeof(stxn));
    stxn.fields[XR_DIR_REQUEST] = req_fields;
    stxn.nfields[XR_DIR_REQUEST] = sizeof(req_fields) / sizeof(req_fields[0]);
    stxn.fields[XR_DIR_RESPONSE] = ans_fields;
    stxn.nfields[XR_DIR_RESPONSE] = sizeof(ans_fields) / sizeof(ans_fields[0]);

    msg(ctx, &req, XR_DIR_REQUEST);
    put(ctx, req.body, "cert_no", str(ctx, "310101199001011234"));
    put(ctx, req.body, "psn_name", str(ctx, "张三丰"));
    put(ctx, req.body, "total", xr_node_int(ctx, XR_NODE_AMOUNT, 45863));
    put(ctx, req.body, "hosp", str(ctx, "H31000000001"));
    /* a wrong type is not taken: a string where an amount belongs */
    put(ctx, req.body, "fund_pay", str(ctx, "12.00"));
    put(ctx, req.body, "phone", str(ctx, ""));
    put(ctx, req.body, "items", xr_node_new(ctx, XR_NODE_ARRAY));

    msg(ctx, &ans, XR_DIR_RESPONSE);
    put(ctx, ans.body, "total", xr_node_int(ctx, XR_NODE_AMOUNT, 1));
    put(ctx, ans.body, "refund", xr_node_int(ctx, XR_NODE_AMOUNT, -100));
    put(ctx, ans.body, "card_sn", str(ctx, "6217001234567890123"));

    assert_int_equal(xr_audit_msg_fields(ctx, &stxn, &req, &ans, &rec),
                     XR_OK);

    assert_int_equal(rec.namounts, 2);
    assert_int_equal(amount(&rec, "total")->fen, 45863);   /* the request's */
    assert_int_equal(amount(&rec, "refund")->fen, -100);
    assert_null(amount(&rec, "fund_pay"));

    assert_int_equal(rec.nids, 3);
    assert_string_equal(ident(&rec, "cert_no"), "310101********1234");
    assert_string_equal(ident(&rec, "psn_name"), "张**");
    assert_non_null(ident(&rec, "card_sn"));
    assert_null(strstr(ident(&rec, "card_sn"), "4567890"));
    assert_null(ident(&rec, "phone"));      /* empty: nothing to record */
    assert_null(ident(&rec, "hosp"));

    /* no answer (a refusal before sending) */
    assert_int_equal(xr_audit_msg_fields(ctx, &stxn, &req, NULL, &rec),
                     XR_OK);
    assert_int_equal(rec.namounts, 1);
    assert_int_equal(rec.nids, 2);

    /* no transaction known: nothing */
    assert_int_equal(xr_audit_msg_fields(ctx, NULL, &req, &ans, &rec), XR_OK);
    assert_int_equal(rec.namounts + rec.nids, 0);
    assert_null(rec.amounts);
}


static void
test_no_more_than_a_record_holds(void **state)
{
    xr_env_t        *env = *state;
    xr_ctx_t        *ctx = &env->ctx;
    char             name[16];
    size_t           i, n;
    xr_msg_t         req;
    xr_stxn_t        stxn;
    xr_sfield_t     *f;
    xr_audit_rec_t   rec;

    n = XR_AUDIT_PAIRS_MAX + 5;
    f = xr_palloc(env->pool, 2 * n * sizeof(xr_sfield_t));
    assert_non_null(f);
    memset(f, 0, 2 * n * sizeof(xr_sfield_t));

    msg(ctx, &req, XR_DIR_REQUEST);

    for (i = 0; i < 2 * n; i++) {
        snprintf(name, sizeof(name), "f%zu", i);
        f[i].name.len = strlen(name);
        f[i].name.data = xr_pstrndup(env->pool, name, strlen(name));
        /* the object keeps the key's pointer: the pool's copy */
        if (i % 2) {
            f[i].type = XR_FT_AMOUNT;
            put(ctx, req.body, f[i].name.data,
                xr_node_int(ctx, XR_NODE_AMOUNT, i));
        } else {
            f[i].type = XR_FT_STRING;
            f[i].pii = XR_PII_CARD;
            put(ctx, req.body, f[i].name.data,
                str(ctx, "6217001234567890123"));
        }
    }

    memset(&stxn, 0, sizeof(stxn));
    stxn.fields[XR_DIR_REQUEST] = f;
    stxn.nfields[XR_DIR_REQUEST] = 2 * n;

    assert_int_equal(xr_audit_msg_fields(ctx, &stxn, &req, NULL, &rec),
                     XR_OK);
    assert_int_equal(rec.namounts, XR_AUDIT_PAIRS_MAX);
    assert_int_equal(rec.nids, XR_AUDIT_PAIRS_MAX);
    assert_int_equal(rec.amounts[0].fen, 1);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        xr_env_test(test_amounts_and_masked_ids),
        xr_env_test(test_no_more_than_a_record_holds),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
