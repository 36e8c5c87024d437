/*
 * Cache, invalidation and idempotency keys and request fingerprints over
 * the real schemas and fixture requests.
 */

#define _GNU_SOURCE     /* memmem */

#include "xr_test.h"
#include "xr_crypto.h"
#include "xr_policy.h"
#include "xr_profile.h"
#include "xr_translate.h"


#define MESSAGES  XR_SOURCE_DIR "/tests/fixtures/messages"


typedef struct {
    xr_config_t    *cfg;
    xr_pool_t      *cfg_pool;
    xr_pool_t      *pool;
    xr_ctx_t        ctx;
} xr_pfix_t;


static int
setup(void **state)
{
    xr_pfix_t  *f = calloc(1, sizeof(xr_pfix_t));
    xr_ctx_t    ctx;

    f->cfg_pool = xr_pool_create(0);
    xr_ctx_init(&ctx, f->cfg_pool);
    if (xr_config_load(&ctx, XR_SOURCE_DIR "/config", &f->cfg) != XR_OK) {
        fprintf(stderr, "config: %s\n", ctx.errstr);
        return -1;
    }
    f->pool = xr_pool_create(0);
    xr_ctx_init(&f->ctx, f->pool);
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    xr_pfix_t  *f = *state;

    xr_pool_destroy(f->pool);
    xr_config_free(f->cfg);
    xr_pool_destroy(f->cfg_pool);
    free(f);
    return 0;
}


/* Decodes messages/<domain>/<profile>/<file> as a request. */
static void
xr_load(xr_pfix_t *f, const char *domain, const char *profile,
    const char *file, xr_msg_t *msg)
{
    const xr_profile_t  *p;
    char                 path[512], *data;
    size_t               len = 0;

    p = xr_config_profile(f->cfg, xr_str_from(profile));
    assert_non_null(p);
    snprintf(path, sizeof(path), MESSAGES "/%s/%s/%s", domain, profile, file);
    data = xr_test_read(path, &len);
    if (data == NULL) {
        fail_msg("cannot read %s", path);
    }
    xr_ctx_clear(&f->ctx);
    if (xr_decode(&f->ctx, p, XR_DIR_REQUEST, xr_str_from(""), data, len, msg)
        != XR_OK)
    {
        fail_msg("%s: %s", path, f->ctx.errstr);
    }
    free(data);
}


static const xr_schema_t *
xr_schema(xr_pfix_t *f, const char *domain)
{
    const xr_schema_t  *s;

    s = xr_config_schema(f->cfg, xr_str_from(domain));
    assert_non_null(s);
    return s;
}


static const xr_stxn_t *
xr_txn(const xr_schema_t *s, const char *name)
{
    const xr_stxn_t  *t;

    t = xr_schema_txn(s, xr_str_from(name));
    assert_non_null(t);
    return t;
}


/* Replaces the value of a top-level body field. */
static void
xr_set(xr_pfix_t *f, xr_msg_t *msg, const char *field, xr_node_t *v)
{
    xr_member_t  *m;

    for (m = msg->body->u.obj.first; m; m = m->next) {
        if (xr_str_eq(m->key, field)) {
            m->value = v;
            return;
        }
    }
    assert_int_equal(xr_object_add(&f->ctx, msg->body, xr_str_from(field), v),
                     XR_OK);
}


static void
xr_set_str(xr_pfix_t *f, xr_msg_t *msg, const char *field, const char *s)
{
    xr_set(f, msg, field, xr_node_string(&f->ctx, s, strlen(s)));
}


/* A copy of the body without one field. */
static void
xr_drop(xr_pfix_t *f, xr_msg_t *msg, const char *field)
{
    xr_node_t    *body;
    xr_member_t  *m;

    body = xr_node_new(&f->ctx, XR_NODE_OBJECT);
    for (m = msg->body->u.obj.first; m; m = m->next) {
        if (!xr_str_eq(m->key, field)) {
            xr_object_add(&f->ctx, body, m->key, m->value);
        }
    }
    msg->body = body;
}


static int
xr_contains(xr_str_t key, const char *s)
{
    return memmem(key.data, key.len, s, strlen(s)) != NULL;
}


static void
xr_assert_key_form(xr_str_t key, const char *prefix)
{
    size_t  i, plen = strlen(prefix);

    if (key.len != plen + XR_SHA256_HEX_LEN
        || memcmp(key.data, prefix, plen) != 0)
    {
        fail_msg("key \"%.*s\" is not %s<64 hex>", (int) key.len, key.data,
                 prefix);
    }
    for (i = plen; i < key.len; i++) {
        assert_non_null(strchr("0123456789abcdef", key.data[i]));
    }
    assert_int_equal(key.data[key.len], '\0');
}


static void
test_sha256(void **state)
{
    unsigned char  md[32];
    char           hex[65];

    (void) state;
    assert_int_equal(xr_sha256("abc", 3, md), XR_OK);
    xr_hex(md, sizeof(md), hex);
    hex[64] = '\0';
    assert_string_equal(hex, "ba7816bf8f01cfea414140de5dae2223"
                             "b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(xr_sha256(NULL, 0, md), XR_OK);
    xr_hex(md, sizeof(md), hex);
    assert_string_equal(hex, "e3b0c44298fc1c149afbf4c8996fb924"
                             "27ae41e4649b934ca495991b7852b855");
    hex[2] = '!';
    xr_hex((const unsigned char *) "\x0f\xa0", 1, hex);
    assert_memory_equal(hex, "0f!", 3);
}


static void
test_person_info_key(void **state)
{
    xr_pfix_t          *f = *state;
    const xr_schema_t  *s = xr_schema(f, "medical");
    const xr_stxn_t    *t = xr_txn(s, "person_info");
    xr_msg_t            national, shanghai, other;
    xr_str_t            kn, ks, ko, dest = xr_string("jiangsu");
    xr_buf_t            text;

    xr_load(f, "medical", "national.medical", "person_info.request.json",
            &national);
    xr_load(f, "medical", "shanghai.medical", "person_info.request.json",
            &shanghai);

    /* the key text: values only, length-prefixed */
    xr_buf_init(&text, f->pool, 0);
    assert_int_equal(xr_policy_key_text(&f->ctx, t, &national, &text), XR_OK);
    assert_int_equal(text.len, strlen("7:ss_card9:A00000012"));
    assert_memory_equal(text.data, "7:ss_card9:A00000012", text.len);

    /* the same card from two regions' formats: one cache entry */
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &national, dest, &kn),
                     XR_OK);
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &shanghai, dest, &ks),
                     XR_OK);
    xr_assert_key_form(kn, "c:medical:person_info:jiangsu:");
    assert_int_equal(xr_str_cmp(kn, ks), 0);
    assert_false(xr_contains(kn, "A00000012"));

    /* and stable: a second derivation gives the same */
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &national, dest, &ko),
                     XR_OK);
    assert_int_equal(xr_str_cmp(kn, ko), 0);

    /* another destination, another entry */
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &national,
                                          xr_str_from("zhejiang"), &ko),
                     XR_OK);
    assert_int_not_equal(xr_str_cmp(kn, ko), 0);

    /* another card number, another key */
    other = national;
    xr_drop(f, &other, "card_sn");      /* a private body */
    xr_set_str(f, &other, "cert_no", "A00000013");
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &other, dest, &ko),
                     XR_OK);
    assert_int_not_equal(xr_str_cmp(kn, ko), 0);

    /* another credential type with the same number: another key */
    other = national;
    xr_drop(f, &other, "card_sn");
    xr_set_str(f, &other, "cert_type", "id_card");
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &other, dest, &ko),
                     XR_OK);
    assert_int_not_equal(xr_str_cmp(kn, ko), 0);

    /* fields outside the key do not count */
    other = national;
    xr_drop(f, &other, "name");
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &other, dest, &ko),
                     XR_OK);
    assert_int_equal(xr_str_cmp(kn, ko), 0);

    /* absent or empty: declined, nothing written */
    other = national;
    xr_drop(f, &other, "cert_no");
    ko.len = 12345;
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &other, dest, &ko),
                     XR_DECLINED);
    assert_int_equal(ko.len, 12345);
    assert_int_equal(f->ctx.err, XR_E_NONE);
    xr_set_str(f, &other, "cert_no", "");
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &other, dest, &ko),
                     XR_DECLINED);
    xr_set(f, &other, "cert_no", xr_node_new(&f->ctx, XR_NODE_OBJECT));
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, t, &other, dest, &ko),
                     XR_DECLINED);
    xr_buf_init(&text, f->pool, 0);
    assert_int_equal(xr_policy_key_text(&f->ctx, t, &other, &text),
                     XR_DECLINED);
    assert_int_equal(text.len, 0);

    /* a transaction without key fields */
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, xr_txn(s, "register"),
                                          &national, dest, &ko),
                     XR_DECLINED);
}


/* settle makes the person_info answer for its credential stale. */
static void
test_settle_invalidates_person_info(void **state)
{
    xr_pfix_t          *f = *state;
    const xr_schema_t  *s = xr_schema(f, "medical");
    xr_msg_t            settle, info;
    xr_str_t            keys[4], want, dest = xr_string("jiangsu");
    size_t              n;

    xr_load(f, "medical", "national.medical", "settle.request.json", &settle);
    xr_load(f, "medical", "beijing.medical", "person_info.request.xml",
            &info);

    assert_int_equal(xr_policy_invalidations(&f->ctx, s,
                                             xr_txn(s, "settle"), &settle,
                                             dest, keys, 4, &n),
                     XR_OK);
    assert_int_equal(n, 1);
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, xr_txn(s, "person_info"),
                                          &info, dest, &want),
                     XR_OK);
    assert_int_equal(xr_str_cmp(keys[0], want), 0);
    assert_false(xr_contains(keys[0], "A00000012"));

    /* a settlement for another card names another entry */
    xr_set_str(f, &settle, "cert_no", "B00000099");
    assert_int_equal(xr_policy_invalidations(&f->ctx, s,
                                             xr_txn(s, "settle"), &settle,
                                             dest, keys, 4, &n),
                     XR_OK);
    assert_int_equal(n, 1);
    assert_int_not_equal(xr_str_cmp(keys[0], want), 0);

    /* without the credential: nothing to name, not an error */
    xr_drop(f, &settle, "cert_no");
    assert_int_equal(xr_policy_invalidations(&f->ctx, s,
                                             xr_txn(s, "settle"), &settle,
                                             dest, keys, 4, &n),
                     XR_OK);
    assert_int_equal(n, 0);

    /* settle_reversal invalidates nothing */
    assert_int_equal(xr_policy_invalidations(&f->ctx, s,
                                             xr_txn(s, "settle_reversal"),
                                             &settle, dest, keys, 4, &n),
                     XR_OK);
    assert_int_equal(n, 0);
}


static void
test_card_loss_invalidates_card_status(void **state)
{
    xr_pfix_t          *f = *state;
    const xr_schema_t  *s = xr_schema(f, "transit");
    const xr_stxn_t    *status = xr_txn(s, "card_status");
    xr_msg_t            loss, query;
    xr_str_t            keys[2], want, dest = xr_string("anhui");
    const xr_node_t    *card;
    size_t              n;

    xr_load(f, "transit", "zhejiang.transit", "card_loss.request.json",
            &loss);
    xr_load(f, "transit", "jiangsu.transit", "card_status.request.xml",
            &query);

    /* the fixtures ask about different cards */
    assert_int_equal(xr_policy_invalidations(&f->ctx, s,
                                             xr_txn(s, "card_loss"), &loss,
                                             dest, keys, 2, &n),
                     XR_OK);
    assert_int_equal(n, 1);
    xr_assert_key_form(keys[0], "c:transit:card_status:anhui:");
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, status, &query, dest,
                                          &want),
                     XR_OK);
    assert_int_not_equal(xr_str_cmp(keys[0], want), 0);

    /* the lost card's status query is the entry dropped */
    card = xr_node_path_get(loss.body, xr_str_from("card_no"));
    assert_non_null(card);
    assert_true(xr_str_eq(card->u.s, "3610220300018826490"));
    xr_set(f, &query, "card_no", (xr_node_t *) card);
    assert_int_equal(xr_policy_cache_key(&f->ctx, s, status, &query, dest,
                                          &want),
                     XR_OK);
    assert_int_equal(xr_str_cmp(keys[0], want), 0);
    assert_false(xr_contains(want, "3610220300018826490"));

    /* no room: an error, not a silent loss */
    assert_int_equal(xr_policy_invalidations(&f->ctx, s,
                                             xr_txn(s, "card_loss"), &loss,
                                             dest, keys, 0, &n),
                     XR_ERROR);
    assert_int_equal(f->ctx.err, XR_E_INTERNAL);
    xr_ctx_clear(&f->ctx);
}


static void
test_idempotency_key(void **state)
{
    xr_pfix_t          *f = *state;
    const xr_schema_t  *s = xr_schema(f, "medical");
    const xr_stxn_t    *t = xr_txn(s, "settle");
    xr_msg_t            a, b;
    xr_str_t            ka, kb, caller = xr_string("shanghai.medical");

    xr_load(f, "medical", "national.medical", "settle.request.json", &a);
    xr_load(f, "medical", "jiangsu.medical", "settle.request.json", &b);

    assert_int_equal(xr_policy_idempotency_key(&f->ctx, s, t, &a, caller,
                                                &ka),
                     XR_OK);
    xr_assert_key_form(ka, "i:medical:settle:shanghai.medical:");
    assert_false(xr_contains(ka, "H31010000001202503140942280004"));

    /* the same message id, whatever the format */
    assert_int_equal(xr_policy_idempotency_key(&f->ctx, s, t, &b, caller,
                                                &kb),
                     XR_OK);
    assert_int_equal(xr_str_cmp(ka, kb), 0);

    /* another caller, another key */
    assert_int_equal(xr_policy_idempotency_key(&f->ctx, s, t, &a,
                                                xr_str_from("hebei.medical"),
                                                &kb),
                     XR_OK);
    assert_int_not_equal(xr_str_cmp(ka, kb), 0);

    /* another message id, another key */
    b = a;
    b.msg_id = xr_str_from("H31010000001202503140942280005");
    assert_int_equal(xr_policy_idempotency_key(&f->ctx, s, t, &b, caller,
                                                &kb),
                     XR_OK);
    assert_int_not_equal(xr_str_cmp(ka, kb), 0);

    /* no message id: declined */
    b.msg_id.len = 0;
    assert_int_equal(xr_policy_idempotency_key(&f->ctx, s, t, &b, caller,
                                                &kb),
                     XR_DECLINED);
    b.msg_id.data = NULL;
    assert_int_equal(xr_policy_idempotency_key(&f->ctx, s, t, &b, caller,
                                                &kb),
                     XR_DECLINED);
}


/* Values rendered canonically, fields joined without ambiguity. */
static void
test_key_text(void **state)
{
    xr_pfix_t   *f = *state;
    xr_stxn_t    t;
    xr_str_t     names[6];
    xr_msg_t     msg;
    xr_buf_t     text;
    xr_node_t   *tm;
    const char  *want;

    memset(&t, 0, sizeof(t));
    t.name = xr_str_from("probe");
    names[0] = xr_str_from("@caller");
    names[1] = xr_str_from("fee");
    names[2] = xr_str_from("count");
    names[3] = xr_str_from("when");
    names[4] = xr_str_from("sub.code");
    names[5] = xr_str_from("@time");
    t.key = names;
    t.nkey = 6;

    xr_msg_init(&msg, XR_DIR_REQUEST);
    msg.caller = xr_str_from("H1");
    msg.has_time = 1;
    msg.time.year = 2025;
    msg.time.month = 3;
    msg.time.day = 14;
    msg.time.hour = 9;
    msg.time.has_time = 1;
    msg.body = xr_node_new(&f->ctx, XR_NODE_OBJECT);
    xr_set(f, &msg, "fee", xr_node_int(&f->ctx, XR_NODE_AMOUNT, -45863));
    xr_set(f, &msg, "count", xr_node_int(&f->ctx, XR_NODE_INT, 0));
    tm = xr_node_new(&f->ctx, XR_NODE_TIME);
    tm->u.t.year = 2024;
    tm->u.t.month = 2;
    tm->u.t.day = 29;
    xr_set(f, &msg, "when", tm);
    assert_int_equal(xr_node_path_set(&f->ctx, msg.body,
                                      xr_str_from("sub.code"),
                                      xr_node_string(&f->ctx, "a:b", 3)),
                     XR_OK);

    xr_buf_init(&text, f->pool, 0);
    assert_int_equal(xr_policy_key_text(&f->ctx, &t, &msg, &text), XR_OK);
    want = "2:H16:-458631:010:2024-02-293:a:b19:2025-03-14T09:00:00";
    if (text.len != strlen(want) || memcmp(text.data, want, text.len) != 0) {
        fail_msg("key text \"%.*s\"", (int) text.len, text.data);
    }

    /* "ab" + "c" is not "a" + "bc" */
    {
        xr_str_t   two[2] = { xr_string("x"), xr_string("y") };
        xr_buf_t   t1, t2;

        t.key = two;
        t.nkey = 2;
        xr_set_str(f, &msg, "x", "ab");
        xr_set_str(f, &msg, "y", "c");
        xr_buf_init(&t1, f->pool, 0);
        assert_int_equal(xr_policy_key_text(&f->ctx, &t, &msg, &t1), XR_OK);
        xr_set_str(f, &msg, "x", "a");
        xr_set_str(f, &msg, "y", "bc");
        xr_buf_init(&t2, f->pool, 0);
        assert_int_equal(xr_policy_key_text(&f->ctx, &t, &msg, &t2), XR_OK);
        assert_true(t1.len != t2.len
                    || memcmp(t1.data, t2.data, t1.len) != 0);
    }

    /* an envelope time that is not there: declined */
    t.key = &names[5];
    t.nkey = 1;
    msg.has_time = 0;
    xr_buf_init(&text, f->pool, 0);
    assert_int_equal(xr_policy_key_text(&f->ctx, &t, &msg, &text),
                     XR_DECLINED);
}


static void
xr_fp(xr_pfix_t *f, const xr_msg_t *m, char out[65])
{
    xr_ctx_clear(&f->ctx);
    if (xr_policy_fingerprint(&f->ctx, m, out) != XR_OK) {
        fail_msg("fingerprint: %s", f->ctx.errstr);
    }
    out[64] = '\0';
}


static void
test_fingerprint(void **state)
{
    xr_pfix_t           *f = *state;
    xr_msg_t             a, b, info_n, info_s;
    const xr_profile_t  *p;
    xr_buf_t             wire;
    const xr_node_t     *total;
    char                 fa[65], fb[65];
    size_t               i, same = 0;

    xr_load(f, "medical", "national.medical", "settle.request.json", &a);
    xr_fp(f, &a, fa);
    assert_int_equal(strspn(fa, "0123456789abcdef"), 64);

    /* a retry may re-stamp its id, time and version */
    b = a;
    b.msg_id = xr_str_from("H31010000001202503140942289999");
    b.time.sec = 59;
    b.version = xr_str_from("V2.0");
    xr_fp(f, &b, fb);
    assert_string_equal(fa, fb);
    b.has_time = 0;
    b.version.data = NULL;
    b.version.len = 0;
    xr_fp(f, &b, fb);
    assert_string_equal(fa, fb);

    /* one fen more is another request */
    b = a;
    xr_drop(f, &b, "total");            /* a private body */
    total = xr_node_path_get(a.body, xr_str_from("total"));
    assert_int_equal(total->type, XR_NODE_AMOUNT);
    xr_set(f, &b, "total",
           xr_node_int(&f->ctx, XR_NODE_AMOUNT, total->u.i + 1));
    xr_fp(f, &b, fb);
    assert_string_not_equal(fa, fb);

    /* as do another caller, origin, destination or transaction */
    b = a;
    b.caller = xr_str_from("H31010000002");
    xr_fp(f, &b, fb);
    assert_string_not_equal(fa, fb);
    b = a;
    b.origin = xr_str_from("310200");
    xr_fp(f, &b, fb);
    assert_string_not_equal(fa, fb);
    b = a;
    b.dest = xr_str_from("320200");
    xr_fp(f, &b, fb);
    assert_string_not_equal(fa, fb);
    b = a;
    b.txn = xr_str_from("pre_settle");
    xr_fp(f, &b, fb);
    assert_string_not_equal(fa, fb);

    /* the same settlement in another region's format */
    xr_load(f, "medical", "jiangsu.medical", "settle.request.json", &b);
    xr_fp(f, &b, fb);
    assert_string_equal(fa, fb);

    /* and carried through every profile that keeps all of it */
    for (i = 0; i < f->cfg->nprofiles; i++) {
        p = &f->cfg->profiles[i];
        if (!xr_str_eq(p->domain, "medical")) {
            continue;
        }
        xr_buf_init(&wire, f->pool, 0);
        xr_ctx_clear(&f->ctx);
        if (xr_encode(&f->ctx, p, &a, &wire) != XR_OK
            || xr_decode(&f->ctx, p, XR_DIR_REQUEST, xr_str_from(""),
                         wire.data, wire.len, &b) != XR_OK)
        {
            fail_msg("%.*s: %s", (int) p->name.len, p->name.data,
                     f->ctx.errstr);
        }
        if (xr_node_equal(a.body, b.body)
            && xr_str_cmp(a.caller, b.caller) == 0
            && xr_str_cmp(a.origin, b.origin) == 0)
        {
            xr_fp(f, &b, fb);
            assert_string_equal(fa, fb);
            same++;
        }
    }
    print_message("fingerprint kept through %zu medical profiles\n", same);
    assert_true(same >= 2);

    /* member order does not count: shanghai lists begin_date last */
    xr_load(f, "medical", "national.medical", "person_info.request.json",
            &info_n);
    xr_load(f, "medical", "shanghai.medical", "person_info.request.json",
            &info_s);
    assert_false(xr_node_equal(info_n.body, info_s.body));
    info_s.origin = info_n.origin;
    info_s.caller = info_n.caller;
    xr_fp(f, &info_n, fa);
    xr_fp(f, &info_s, fb);
    assert_string_equal(fa, fb);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha256),
        cmocka_unit_test(test_person_info_key),
        cmocka_unit_test(test_settle_invalidates_person_info),
        cmocka_unit_test(test_card_loss_invalidates_card_status),
        cmocka_unit_test(test_idempotency_key),
        cmocka_unit_test(test_key_text),
        cmocka_unit_test(test_fingerprint),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
