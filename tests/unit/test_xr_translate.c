/*
 * Table-driven translation tests over the real configuration.
 *
 *  - Round trip: every example message under tests/fixtures/messages/
 *    <domain>/<profile>/<txn>.<request|response>.<ext> is decoded with its
 *    profile, written in every other profile of the domain that offers the
 *    transaction, read back, written back in its own profile and read again.
 *    Every field that both profiles can carry must survive, amounts to the
 *    fen.
 *  - Golden cases: tests/fixtures/golden/cases.txt, one case a line:
 *      <name> <from> <to> <request|response> <txn|-> <input> <expect>
 *    where <expect> is a file whose bytes the output must equal, or
 *    error:<XR-CODE>[:<field>].  Paths are relative to tests/fixtures/.
 *    Adding a case needs no C.
 */

#include <dirent.h>

#include "xr_test.h"
#include "xr_profile.h"
#include "xr_translate.h"
#include "xr_adapter.h"


typedef struct {
    xr_config_t    *cfg;
    xr_pool_t      *cfg_pool;
} xr_tfix_t;

#define FIXTURES  XR_SOURCE_DIR "/tests/fixtures"


static int
setup(void **state)
{
    xr_tfix_t  *f = calloc(1, sizeof(xr_tfix_t));
    xr_ctx_t    ctx;

    f->cfg_pool = xr_pool_create(0);
    xr_ctx_init(&ctx, f->cfg_pool);
    if (xr_config_load(&ctx, XR_SOURCE_DIR "/config", &f->cfg) != XR_OK) {
        fprintf(stderr, "config: %s\n", ctx.errstr);
        return -1;
    }
    *state = f;
    return 0;
}


static int
teardown(void **state)
{
    xr_tfix_t  *f = *state;

    xr_config_free(f->cfg);
    xr_pool_destroy(f->cfg_pool);
    free(f);
    return 0;
}


/* The non-slice map of a canonical field in a map list, or NULL. */
static const xr_map_t *
xr_carried(const xr_map_t *maps, size_t n, xr_str_t canon)
{
    size_t  i;

    for (i = 0; i < n; i++) {
        if (!maps[i].is_const && maps[i].env == XR_ENV_NONE
            && maps[i].value.len == 0
            && xr_str_cmp(maps[i].canon, canon) == 0)
        {
            return &maps[i];
        }
    }
    return NULL;
}


/*
 * Every field of `a` that both map sets carry must be equal in `b`.
 * Returns the name of the first field that differs, or NULL.
 */
static const char *
xr_compare_carried(const xr_node_t *a, const xr_node_t *b,
    const xr_map_t *ma, size_t na, const xr_map_t *mb, size_t nb)
{
    const xr_member_t  *m;
    const xr_map_t     *fa, *fb;
    const xr_node_t    *bv;
    const char         *r;
    size_t              i;
    static char         name[128];

    for (m = a->u.obj.first; m; m = m->next) {
        fa = xr_carried(ma, na, m->key);
        fb = xr_carried(mb, nb, m->key);
        if (fa == NULL || fb == NULL) {
            continue;
        }
        bv = xr_object_get(b, m->key);
        snprintf(name, sizeof(name), "%.*s", (int) m->key.len, m->key.data);
        if (bv == NULL) {
            return name;
        }
        if (m->value->type == XR_NODE_ARRAY) {
            if (bv->type != XR_NODE_ARRAY
                || bv->u.arr.count != m->value->u.arr.count)
            {
                return name;
            }
            for (i = 0; i < bv->u.arr.count; i++) {
                r = xr_compare_carried(m->value->u.arr.items[i],
                                       bv->u.arr.items[i], fa->children,
                                       fa->nchildren, fb->children,
                                       fb->nchildren);
                if (r) {
                    return r;
                }
            }
            continue;
        }
        if (!xr_node_equal(m->value, bv)) {
            return name;
        }
    }
    return NULL;
}


static int
xr_env_carried(const xr_profile_t *p, xr_dir_e dir, xr_env_e env)
{
    return xr_profile_env_map(p, dir, env) != NULL;
}


/* One hop: msg in p -> bytes in q -> msg2.  Fails the test with context. */
static void
xr_hop(xr_ctx_t *ctx, const char *what, const xr_profile_t *p,
    const xr_profile_t *q, const xr_msg_t *msg, xr_msg_t *back)
{
    const xr_ptxn_t  *tp, *tq;
    xr_buf_t          out;
    const char       *diff;

    xr_buf_init(&out, ctx->pool, 0);
    xr_ctx_clear(ctx);
    if (xr_encode(ctx, q, msg, &out) != XR_OK) {
        fail_msg("%s: encode as %.*s: %s: %s", what, (int) q->name.len,
                 q->name.data, xr_error_info(ctx->err)->name, ctx->errstr);
    }
    xr_ctx_clear(ctx);
    if (xr_decode(ctx, q, msg->dir, msg->txn, out.data, out.len, back)
        != XR_OK)
    {
        fail_msg("%s: %.*s cannot read its own output: %s: %s\n%.*s", what,
                 (int) q->name.len, q->name.data,
                 xr_error_info(ctx->err)->name, ctx->errstr,
                 (int) (out.len > 600 ? 600 : out.len), out.data);
    }

    tp = xr_profile_txn(p, msg->txn);
    tq = xr_profile_txn(q, msg->txn);
    diff = xr_compare_carried(msg->body, back->body,
                              tp->maps[msg->dir].maps,
                              tp->maps[msg->dir].nmaps,
                              tq->maps[msg->dir].maps,
                              tq->maps[msg->dir].nmaps);
    if (diff) {
        fail_msg("%s: field %s changed on the way %.*s -> %.*s", what, diff,
                 (int) p->name.len, p->name.data, (int) q->name.len,
                 q->name.data);
    }
    if (!xr_str_eq(back->txn, "") && xr_str_cmp(back->txn, msg->txn)) {
        fail_msg("%s: txn changed", what);
    }
    if (xr_env_carried(p, msg->dir, XR_ENV_MSG_ID)
        && xr_env_carried(q, msg->dir, XR_ENV_MSG_ID)
        && xr_str_cmp(back->msg_id, msg->msg_id) != 0)
    {
        fail_msg("%s: @msg_id changed %.*s -> %.*s", what,
                 (int) msg->msg_id.len, msg->msg_id.data,
                 (int) back->msg_id.len, back->msg_id.data);
    }
    if (msg->dir == XR_DIR_REQUEST
        && xr_env_carried(p, msg->dir, XR_ENV_DEST)
        && xr_env_carried(q, msg->dir, XR_ENV_DEST)
        && xr_str_cmp(back->dest, msg->dest) != 0)
    {
        fail_msg("%s: @dest changed", what);
    }
    if (msg->dir == XR_DIR_RESPONSE && back->ok != msg->ok) {
        fail_msg("%s: success flag changed", what);
    }
}


static void
test_round_trip_all_pairs(void **state)
{
    xr_tfix_t           *f = *state;
    const xr_profile_t  *p, *q;
    char                 dir[1024], path[1400], what[512], txn[300];
    char                *data, *dot;
    struct dirent       *e;
    DIR                 *d;
    size_t               i, j, len = 0, messages = 0, hops = 0;
    xr_pool_t           *pool;
    xr_ctx_t             ctx;
    xr_msg_t             msg, mid, back;
    xr_dir_e             mdir;

    /* XR_TEST_ONLY=<substring> narrows the run while debugging a profile */
    const char          *only = getenv("XR_TEST_ONLY");

    for (i = 0; i < f->cfg->nprofiles; i++) {
        p = &f->cfg->profiles[i];
        if (only && strstr(p->name.data, only) == NULL) {
            continue;
        }
        snprintf(dir, sizeof(dir), FIXTURES "/messages/%.*s/%.*s",
                 (int) p->domain.len, p->domain.data, (int) p->name.len,
                 p->name.data);
        d = opendir(dir);
        if (d == NULL) {
            fail_msg("profile %.*s has no example messages in %s",
                     (int) p->name.len, p->name.data, dir);
        }

        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.') {
                continue;
            }
            if (strstr(e->d_name, ".request.")) {
                mdir = XR_DIR_REQUEST;
            } else if (strstr(e->d_name, ".response.")) {
                mdir = XR_DIR_RESPONSE;
            } else {
                continue;
            }
            snprintf(txn, sizeof(txn), "%s", e->d_name);
            dot = strchr(txn, '.');
            *dot = '\0';

            snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
            data = xr_test_read(path, &len);
            assert_non_null(data);

            pool = xr_pool_create(0);
            xr_ctx_init(&ctx, pool);
            if (xr_decode(&ctx, p, mdir,
                          xr_str_from(mdir == XR_DIR_RESPONSE ? txn : ""),
                          data, len, &msg) != XR_OK)
            {
                fail_msg("%s does not decode: %s: %s", path,
                         xr_error_info(ctx.err)->name, ctx.errstr);
            }
            if (!xr_str_eq(msg.txn, txn)) {
                fail_msg("%s decodes as txn %.*s", path, (int) msg.txn.len,
                         msg.txn.data);
            }
            messages++;

            for (j = 0; j < f->cfg->nprofiles; j++) {
                q = &f->cfg->profiles[j];
                if (q == p || xr_str_cmp(q->domain, p->domain) != 0
                    || xr_profile_txn(q, msg.txn) == NULL)
                {
                    continue;
                }
                snprintf(what, sizeof(what), "%.*s/%s -> %.*s",
                         (int) p->name.len, p->name.data, e->d_name,
                         (int) q->name.len, q->name.data);
                xr_hop(&ctx, what, p, q, &msg, &mid);
                /* and home again: nothing both carry is lost */
                snprintf(what, sizeof(what), "%.*s/%s -> %.*s -> back",
                         (int) p->name.len, p->name.data, e->d_name,
                         (int) q->name.len, q->name.data);
                xr_hop(&ctx, what, q, p, &mid, &back);
                hops += 2;
            }

            xr_pool_destroy(pool);
            free(data);
        }
        closedir(d);
    }

    print_message("round trip: %zu messages, %zu translations\n", messages,
                  hops);
    assert_true(only || messages >= 100);
}


static void
test_golden_cases(void **state)
{
    xr_tfix_t           *f = *state;
    const xr_profile_t  *from, *to;
    FILE                *m;
    char                 line[2048], name[128], sfrom[64], sto[64];
    char                 sdir[16], txn[64], input[512], expect[512];
    char                 path[1200], *data, *want, *colon;
    size_t               len = 0, wlen = 0, cases = 0;
    xr_pool_t           *pool;
    xr_ctx_t             ctx;
    xr_msg_t             msg;
    xr_buf_t             out;
    xr_dir_e             dir;
    int                  rc, lineno = 0;

    m = fopen(FIXTURES "/golden/cases.txt", "r");
    assert_non_null(m);

    while (fgets(line, sizeof(line), m)) {
        lineno++;
        if (line[0] == '#' || line[0] == '\n') {
            continue;
        }
        if (sscanf(line, "%127s %63s %63s %15s %63s %511s %511s", name,
                   sfrom, sto, sdir, txn, input, expect) != 7)
        {
            fail_msg("cases.txt:%d: needs 7 columns", lineno);
        }
        from = xr_config_profile(f->cfg, xr_str_from(sfrom));
        to = xr_config_profile(f->cfg, xr_str_from(sto));
        if (from == NULL || to == NULL) {
            fail_msg("cases.txt:%d: unknown profile", lineno);
        }
        dir = strcmp(sdir, "response") == 0 ? XR_DIR_RESPONSE
                                            : XR_DIR_REQUEST;

        snprintf(path, sizeof(path), FIXTURES "/%s", input);
        data = xr_test_read(path, &len);
        if (data == NULL) {
            fail_msg("cases.txt:%d: cannot read %s", lineno, path);
        }

        pool = xr_pool_create(0);
        xr_ctx_init(&ctx, pool);
        xr_buf_init(&out, pool, 0);

        rc = xr_decode(&ctx, from, dir,
                       xr_str_from(strcmp(txn, "-") ? txn : ""), data, len,
                       &msg);
        if (rc == XR_OK) {
            rc = xr_encode(&ctx, to, &msg, &out);
        }

        if (strncmp(expect, "error:", 6) == 0) {
            colon = strchr(expect + 6, ':');
            if (colon) {
                *colon++ = '\0';
            }
            if (rc == XR_OK) {
                fail_msg("%s: translated, expected %s", name, expect + 6);
            }
            if (strcmp(xr_error_info(ctx.err)->name, expect + 6) != 0) {
                fail_msg("%s: got %s (%s), expected %s", name,
                         xr_error_info(ctx.err)->name, ctx.errstr,
                         expect + 6);
            }
            if (colon && strcmp(ctx.field, colon) != 0) {
                fail_msg("%s: error names field \"%s\", expected \"%s\"",
                         name, ctx.field, colon);
            }
        } else {
            if (rc != XR_OK) {
                fail_msg("%s: %s: %s", name, xr_error_info(ctx.err)->name,
                         ctx.errstr);
            }
            snprintf(path, sizeof(path), FIXTURES "/%s", expect);
            want = xr_test_read(path, &wlen);
            if (want == NULL) {
                fail_msg("%s: cannot read %s", name, path);
            }
            if (wlen != out.len || memcmp(want, out.data, wlen) != 0) {
                fail_msg("%s: output differs from %s:\n%.*s", name, expect,
                         (int) out.len, out.data);
            }
            free(want);
        }

        xr_pool_destroy(pool);
        free(data);
        cases++;
    }
    fclose(m);

    print_message("golden: %zu cases\n", cases);
    assert_true(cases >= 10);
}


/* A 100 MB body is refused before any parsing, for every codec. */
static void
test_huge_body(void **state)
{
    xr_tfix_t           *f = *state;
    const char          *names[] = { "shanghai.gov", "zhejiang.gov",
                                     "beijing.transit" };
    const xr_profile_t  *p;
    size_t               len = 100 * 1024 * 1024, i;
    char                *big;
    xr_pool_t           *pool;
    xr_ctx_t             ctx;
    xr_msg_t             msg;

    big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    memcpy(big, "{\"a\":\"", 6);
    memcpy(big + len - 2, "\"}", 2);

    for (i = 0; i < 3; i++) {
        p = xr_config_profile(f->cfg, xr_str_from(names[i]));
        assert_non_null(p);
        pool = xr_pool_create(0);
        xr_ctx_init(&ctx, pool);
        assert_int_equal(xr_decode(&ctx, p, XR_DIR_REQUEST, xr_str_from(""),
                                   big, len, &msg), XR_ERROR);
        assert_int_equal(ctx.err, XR_E_BODY_TOO_LARGE);
        /* nothing was built from it */
        assert_true(xr_pool_used(pool) < 64 * 1024);
        xr_pool_destroy(pool);
    }
    free(big);
}


int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_golden_cases),
        cmocka_unit_test(test_huge_body),
        cmocka_unit_test(test_round_trip_all_pairs),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
