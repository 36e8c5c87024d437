/*
 * The JSON adapter: exact numbers, member order, charsets, limits and the
 * error document.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include <jansson.h>

#include "xr_adapter.h"


typedef struct {
    xr_pool_t      *pool;
    xr_ctx_t        ctx;
    xr_profile_t    utf8;
    xr_profile_t    gbk;
} xr_t_state_t;


static int
xr_t_setup(void **state)
{
    xr_t_state_t  *st;

    st = calloc(1, sizeof(xr_t_state_t));
    if (st == NULL) {
        return -1;
    }
    st->pool = xr_pool_create(0);
    if (st->pool == NULL) {
        free(st);
        return -1;
    }
    xr_ctx_init(&st->ctx, st->pool);

    st->utf8.name = xr_str_from("test.utf8");
    st->utf8.codec = xr_str_from("json");
    st->utf8.adapter = &xr_adapter_json;
    st->utf8.charset = XR_CHARSET_UTF8;

    st->gbk = st->utf8;
    st->gbk.name = xr_str_from("test.gbk");
    st->gbk.charset = XR_CHARSET_GBK;

    *state = st;
    return 0;
}


static int
xr_t_teardown(void **state)
{
    xr_t_state_t  *st = *state;

    xr_pool_destroy(st->pool);
    free(st);
    return 0;
}


static int
xr_t_decode(xr_t_state_t *st, const xr_profile_t *p, const char *data,
    size_t len, xr_node_t **out)
{
    xr_ctx_clear(&st->ctx);
    return xr_adapter_json.decode(&st->ctx, p, XR_DIR_REQUEST, NULL, data,
                                  len, out);
}


/* Decodes a NUL-terminated text and expects the error `err`. */
static void
xr_t_decode_fails(xr_t_state_t *st, const xr_profile_t *p, const char *text,
    xr_err_e err)
{
    xr_node_t  *tree = (xr_node_t *) 1;

    if (xr_t_decode(st, p, text, strlen(text), &tree) != XR_ERROR
        || st->ctx.err != err)
    {
        fail_msg("\"%s\": expected %s, got %s (%s)", text,
                 xr_error_info(err)->name, xr_error_info(st->ctx.err)->name,
                 st->ctx.errstr);
    }
    assert_null(tree);
}


static const xr_node_t *
xr_t_get(const xr_node_t *root, const char *path)
{
    return xr_node_path_get(root, xr_str_from(path));
}


static void
xr_t_expect(const xr_node_t *n, xr_node_type_e type, const char *text)
{
    assert_non_null(n);
    assert_int_equal(n->type, type);
    assert_int_equal(n->u.s.len, strlen(text));
    assert_memory_equal(n->u.s.data, text, n->u.s.len);
}


static void
test_adapter_table(void **state)
{
    (void) state;

    assert_int_equal(xr_adapter_json.version, XR_ADAPTER_VERSION);
    assert_string_equal(xr_adapter_json.name, "json");
    assert_string_equal(xr_adapter_json.content_type, "application/json");
    assert_int_equal(xr_adapter_json.flags,
                     XR_ADAPTER_TEXT | XR_ADAPTER_NUMBERS | XR_ADAPTER_UNIQUE);
}


static void
test_round_trip(void **state)
{
    xr_t_state_t     *st = *state;
    xr_node_t        *tree, *again;
    xr_member_t      *m;
    const xr_node_t  *n;
    xr_buf_t          out;
    const char       *keys[] = { "zz", "msgid", "input", "ok", "none", "aa" };
    size_t            i;

    static const char  doc[] =
        "{\"zz\":\"first\",\"msgid\":\"H31000020240101120000001\","
        "\"input\":{\"name\":\"张三\",\"addr\":\"上海市\\\"浦东\\\"\","
        "\"total\":145.00,\"big\":12345678901234567890,"
        "\"neg\":-0.5e-3,\"exp\":1E+300,\"zero\":0,"
        "\"items\":[{\"code\":\"A1\",\"je\":100},{\"code\":\"B2\","
        "\"je\":0.01}],\"empty\":[],\"obj\":{}},"
        "\"ok\":true,\"none\":null,\"aa\":false}";

    assert_int_equal(xr_t_decode(st, &st->utf8, doc, sizeof(doc) - 1, &tree),
                     XR_OK);
    assert_non_null(tree);
    assert_int_equal(tree->type, XR_NODE_OBJECT);

    /* member order is the document's, not sorted */
    assert_int_equal(tree->u.obj.count, 6);
    for (m = tree->u.obj.first, i = 0; m; m = m->next, i++) {
        assert_true(xr_str_eq(m->key, keys[i]));
    }

    xr_t_expect(xr_t_get(tree, "zz"), XR_NODE_STRING, "first");
    xr_t_expect(xr_t_get(tree, "input.name"), XR_NODE_STRING, "张三");
    xr_t_expect(xr_t_get(tree, "input.addr"), XR_NODE_STRING,
                "上海市\"浦东\"");
    xr_t_expect(xr_t_get(tree, "input.total"), XR_NODE_NUMBER, "145.00");
    xr_t_expect(xr_t_get(tree, "input.big"), XR_NODE_NUMBER,
                "12345678901234567890");
    xr_t_expect(xr_t_get(tree, "input.neg"), XR_NODE_NUMBER, "-0.5e-3");
    xr_t_expect(xr_t_get(tree, "input.exp"), XR_NODE_NUMBER, "1E+300");
    xr_t_expect(xr_t_get(tree, "input.zero"), XR_NODE_NUMBER, "0");

    n = xr_t_get(tree, "input.items");
    assert_non_null(n);
    assert_int_equal(n->type, XR_NODE_ARRAY);
    assert_int_equal(n->u.arr.count, 2);
    xr_t_expect(xr_t_get(n->u.arr.items[1], "je"), XR_NODE_NUMBER, "0.01");
    xr_t_expect(xr_t_get(n->u.arr.items[1], "code"), XR_NODE_STRING, "B2");

    n = xr_t_get(tree, "input.empty");
    assert_int_equal(n->type, XR_NODE_ARRAY);
    assert_int_equal(n->u.arr.count, 0);
    n = xr_t_get(tree, "input.obj");
    assert_int_equal(n->type, XR_NODE_OBJECT);
    assert_int_equal(n->u.obj.count, 0);

    n = xr_t_get(tree, "ok");
    assert_int_equal(n->type, XR_NODE_BOOL);
    assert_true(n->u.b);
    n = xr_t_get(tree, "aa");
    assert_int_equal(n->type, XR_NODE_BOOL);
    assert_false(n->u.b);
    assert_int_equal(xr_t_get(tree, "none")->type, XR_NODE_NULL);

    /* compact output, real Chinese text, numbers exactly as they came */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_REQUEST, NULL, tree, &out),
                     XR_OK);
    assert_int_equal(out.len, sizeof(doc) - 1);
    assert_memory_equal(out.data, doc, out.len);

    assert_int_equal(xr_t_decode(st, &st->utf8, out.data, out.len, &again),
                     XR_OK);
    assert_true(xr_node_equal(tree, again));
}


static void
test_whitespace_and_escapes(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    xr_buf_t       out;

    static const char  doc[] =
        " \r\n{ \"a\" : [ 1 , 2.50 ] ,\n\t\"b\\u00e9\" : "
        "\"x\\ny\\/\\u4e2d\" } ";
    static const char  want[] = "{\"a\":[1,2.50],\"bé\":\"x\\ny/中\"}";

    assert_int_equal(xr_t_decode(st, &st->utf8, doc, sizeof(doc) - 1, &tree),
                     XR_OK);
    xr_t_expect(xr_t_get(tree, "bé"), XR_NODE_STRING, "x\ny/中");

    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_RESPONSE, NULL, tree,
                                            &out),
                     XR_OK);
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);
}


static void
test_encode_order_and_append(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *root, *inner;
    xr_buf_t       out;

    static const char  want[] =
        "HEAD{\"z\":\"1\",\"a\":7,\"m\":{\"y\":null,\"b\":true}}";

    root = xr_node_new(&st->ctx, XR_NODE_OBJECT);
    inner = xr_node_new(&st->ctx, XR_NODE_OBJECT);
    assert_non_null(root);
    assert_non_null(inner);
    assert_int_equal(xr_object_add(&st->ctx, root, xr_str_from("z"),
                                   xr_node_string(&st->ctx, "1", 1)), XR_OK);
    assert_int_equal(xr_object_add(&st->ctx, root, xr_str_from("a"),
                                   xr_node_number(&st->ctx, "7", 1)), XR_OK);
    assert_int_equal(xr_object_add(&st->ctx, root, xr_str_from("m"), inner),
                     XR_OK);
    assert_int_equal(xr_object_add(&st->ctx, inner, xr_str_from("y"),
                                   xr_node_new(&st->ctx, XR_NODE_NULL)),
                     XR_OK);
    assert_int_equal(xr_object_add(&st->ctx, inner, xr_str_from("b"),
                                   xr_node_new(&st->ctx, XR_NODE_BOOL)),
                     XR_OK);
    inner->u.obj.last->value->u.b = 1;

    /* encode appends: what the buffer held stays */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_buf_adds(&out, "HEAD"), XR_OK);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_REQUEST, NULL, root, &out),
                     XR_OK);
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);

    /* an output limit one byte short */
    xr_ctx_clear(&st->ctx);
    xr_buf_init(&out, st->pool, sizeof(want) - 1 - 4 - 1);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_BODY_TOO_LARGE);

    xr_ctx_clear(&st->ctx);
    xr_buf_init(&out, st->pool, sizeof(want) - 1 - 4);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_REQUEST, NULL, root, &out),
                     XR_OK);
}


static void
test_encode_rejects(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *root, *v;
    xr_buf_t       out;
    size_t         i;

    static const struct {
        xr_node_type_e   type;
        const char      *text;
        xr_err_e         err;
    } cases[] = {
        { XR_NODE_INT, NULL, XR_E_INTERNAL },
        { XR_NODE_AMOUNT, NULL, XR_E_INTERNAL },
        { XR_NODE_TIME, NULL, XR_E_INTERNAL },
        { XR_NODE_NUMBER, "01", XR_E_FIELD_FORMAT },
        { XR_NODE_NUMBER, "1,\"x\":2", XR_E_FIELD_FORMAT },
        { XR_NODE_NUMBER, "", XR_E_FIELD_FORMAT },
        { XR_NODE_NUMBER, "1.", XR_E_FIELD_FORMAT },
        { XR_NODE_NUMBER, "NaN", XR_E_FIELD_FORMAT },
        { XR_NODE_STRING, "\xc3\x28", XR_E_CHARSET },
        { XR_NODE_STRING, "ok\xed\xa0\x80", XR_E_CHARSET },
        { XR_NODE_STRING, "\xe4\xb8", XR_E_CHARSET },
    };
    static const char  nul[] = "a\0b";

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xr_ctx_clear(&st->ctx);
        root = xr_node_new(&st->ctx, XR_NODE_OBJECT);
        if (i == 0) {
            /* a NUL inside the text would not decode back */
            v = xr_node_string(&st->ctx, nul, sizeof(nul) - 1);
            xr_object_add(&st->ctx, root, xr_str_from("k"), v);
            xr_buf_init(&out, st->pool, 0);
            assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                                    XR_DIR_REQUEST, NULL,
                                                    root, &out),
                             XR_ERROR);
            assert_int_equal(st->ctx.err, XR_E_CHARSET);
            xr_ctx_clear(&st->ctx);
            root = xr_node_new(&st->ctx, XR_NODE_OBJECT);
        }
        if (cases[i].text) {
            v = xr_node_new(&st->ctx, cases[i].type);
            v->u.s = xr_str_from(cases[i].text);
        } else {
            v = xr_node_int(&st->ctx, cases[i].type, 5);
        }
        assert_int_equal(xr_object_add(&st->ctx, root, xr_str_from("k"), v),
                         XR_OK);
        xr_buf_init(&out, st->pool, 0);
        assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                                XR_DIR_REQUEST, NULL, root,
                                                &out),
                         XR_ERROR);
        assert_int_equal(st->ctx.err, cases[i].err);
        assert_string_equal(st->ctx.field, "k");
    }

    /* a repeated key would lose a value */
    xr_ctx_clear(&st->ctx);
    root = xr_node_new(&st->ctx, XR_NODE_OBJECT);
    xr_object_add(&st->ctx, root, xr_str_from("k"),
                  xr_node_string(&st->ctx, "1", 1));
    xr_object_add(&st->ctx, root, xr_str_from("k"),
                  xr_node_string(&st->ctx, "2", 1));
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_INTERNAL);

    /* the document must be an object */
    xr_ctx_clear(&st->ctx);
    root = xr_node_new(&st->ctx, XR_NODE_ARRAY);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_INTERNAL);
}


static void
test_gbk(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    xr_buf_t       out;

    /* {"name":"张三","city":"上海","x":"乗","amt":145.00}: 乗 is 81 5c,
       a GBK trail byte equal to '\\', which must not escape the quote */
    static const char  gbk[] =
        "{\"name\":\"\xd5\xc5\xc8\xfd\",\"city\":\"\xc9\xcf\xba\xa3\","
        "\"x\":\"\x81\x5c\",\"amt\":145.00}";

    assert_int_equal(xr_t_decode(st, &st->gbk, gbk, sizeof(gbk) - 1, &tree),
                     XR_OK);
    xr_t_expect(xr_t_get(tree, "name"), XR_NODE_STRING, "张三");
    xr_t_expect(xr_t_get(tree, "city"), XR_NODE_STRING, "上海");
    xr_t_expect(xr_t_get(tree, "x"), XR_NODE_STRING, "乗");
    xr_t_expect(xr_t_get(tree, "amt"), XR_NODE_NUMBER, "145.00");

    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->gbk,
                                            XR_DIR_RESPONSE, NULL, tree,
                                            &out),
                     XR_OK);
    assert_int_equal(out.len, sizeof(gbk) - 1);
    assert_memory_equal(out.data, gbk, out.len);

    /* the same tree for a UTF-8 region */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_RESPONSE, NULL, tree,
                                            &out),
                     XR_OK);
    assert_int_equal(out.len, strlen("{\"name\":\"张三\",\"city\":\"上海\","
                                     "\"x\":\"乗\",\"amt\":145.00}"));

    /* a lone lead byte, a bad trail byte, 0xff */
    xr_t_decode_fails(st, &st->gbk, "{\"a\":\"\xd5\"}", XR_E_CHARSET);
    xr_t_decode_fails(st, &st->gbk, "{\"a\":\"\x81\x20\"}", XR_E_CHARSET);
    xr_t_decode_fails(st, &st->gbk, "{\"a\":\"\xff\xff\"}", XR_E_CHARSET);

    /* UTF-8 text handed to a GBK profile cannot be written back */
    xr_ctx_clear(&st->ctx);
    tree = xr_node_new(&st->ctx, XR_NODE_OBJECT);
    xr_object_add(&st->ctx, tree, xr_str_from("e"),
                  xr_node_string(&st->ctx, "\xf0\x9f\x98\x80", 4));
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->gbk,
                                            XR_DIR_RESPONSE, NULL, tree,
                                            &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_CHARSET);
}


static void
test_truncated(void **state)
{
    xr_t_state_t  *st = *state;
    size_t         i;

    static const char  *cases[] = {
        "{",
        "{\"a\"",
        "{\"a\":",
        "{\"a\":\"b\"",
        "{\"a\":\"bc",
        "{\"a\":\"b\\",
        "{\"a\":\"b\\u00",
        "{\"a\":1",
        "{\"a\":145.",
        "{\"a\":1e",
        "{\"a\":1e+",
        "{\"a\":-",
        "{\"a\":tr",
        "{\"a\":fals",
        "{\"a\":n",
        "{\"a\":[1,2",
        "{\"a\":{\"b\":[",
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xr_t_decode_fails(st, &st->utf8, cases[i], XR_E_TRUNCATED);
    }
}


static void
test_syntax(void **state)
{
    xr_t_state_t  *st = *state;
    size_t         i;

    static const char  *cases[] = {
        "hello",
        "\x01\x02\x03garbage",
        "{\"a\" 1}",
        "{\"a\":01}",
        "{\"a\":1.}",
        "{\"a\":.5}",
        "{\"a\":+1}",
        "{\"a\":1e}",
        "{\"a\":--1}",
        "{\"a\":0x10}",
        "{\"a\":NaN}",
        "{\"a\":Infinity}",
        "{\"a\":truex}",
        "{\"a\":1,}",
        "{1:2}",
        "{\"a\":1} x",
        "{\"a\":\"b\\x\"}",
        "{\"a\":\"tab\there\"}",
        "[1,2]",
        "\"string\"",
        "{\"a\":\"\\u0000\"}",
    };

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        xr_t_decode_fails(st, &st->utf8, cases[i], XR_E_SYNTAX);
    }
}


static void
test_error_position(void **state)
{
    xr_t_state_t  *st = *state;

    /* numbers before the error do not shift the column */
    xr_t_decode_fails(st, &st->utf8, "{\"a\":12345,\n\"b\":[1,2,3],\n  x}",
                      XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "line 3, column 3"));
    assert_null(strstr(st->ctx.errstr, "\\u0001"));

    xr_t_decode_fails(st, &st->utf8, "{\"a\"  12345}", XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "line 1"));
    assert_null(strstr(st->ctx.errstr, "\\u0001"));

    xr_t_decode_fails(st, &st->utf8, "{\n\"a\":01}", XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "line 2, column 5"));
}


static void
test_charset_utf8(void **state)
{
    xr_t_state_t  *st = *state;

    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\xc3\x28\"}", XR_E_CHARSET);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\xc0\xaf\"}", XR_E_CHARSET);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\xed\xa0\x80\"}",
                      XR_E_CHARSET);
    xr_t_decode_fails(st, &st->utf8, "{\"\xff\":1}", XR_E_CHARSET);
    /* GBK bytes sent as UTF-8 */
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\xd5\xc5\xc8\xfd\"}",
                      XR_E_CHARSET);
}


/*
 * U+0001..U+001F are data: escaped they are accepted and come back
 * escaped; raw they are refused.  (The old adapter reserved U+0001.)
 */
static void
test_control_characters(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    xr_buf_t       out;

    static const char  doc[] =
        "{\"a\":\"\\u0001123\",\"\\u00011\":2,"
        "\"c\":\"\\b\\f\\n\\r\\t\\u001F\\u0007\"}";
    static const char  want[] =
        "{\"a\":\"\\u0001123\",\"\\u00011\":2,"
        "\"c\":\"\\b\\f\\n\\r\\t\\u001F\\u0007\"}";

    assert_int_equal(xr_t_decode(st, &st->utf8, doc, sizeof(doc) - 1, &tree),
                     XR_OK);
    xr_t_expect(xr_t_get(tree, "a"), XR_NODE_STRING, "\x01" "123");
    xr_t_expect(xr_t_get(tree, "\x01" "1"), XR_NODE_NUMBER, "2");
    xr_t_expect(xr_t_get(tree, "c"), XR_NODE_STRING,
                "\b\f\n\r\t\x1f\x07");

    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_REQUEST, NULL, tree, &out),
                     XR_OK);
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);

    /* the same for a GBK region */
    assert_int_equal(xr_t_decode(st, &st->gbk, doc, sizeof(doc) - 1, &tree),
                     XR_OK);
    xr_t_expect(xr_t_get(tree, "a"), XR_NODE_STRING, "\x01" "123");

    /* raw control characters are refused, DEL is not one */
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\x01" "123\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"x\x1f\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\x0a\":1}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->gbk, "{\"a\":\"\x01\"}", XR_E_SYNTAX);
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"a\":\"\x7f\"}", 9,
                                 &tree), XR_OK);
    xr_t_expect(xr_t_get(tree, "a"), XR_NODE_STRING, "\x7f");
}


static void
test_duplicate_key(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;

    xr_t_decode_fails(st, &st->utf8, "{\"a\":1,\"a\":2}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"x\":{\"a\":\"1\",\"b\":2,\"a\":3}}",
                      XR_E_SYNTAX);
    /* the same key in different objects is fine */
    assert_int_equal(xr_t_decode(st, &st->utf8,
                                 "{\"a\":{\"a\":1}}", 13, &tree), XR_OK);
}


static void
test_empty(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;

    xr_t_decode_fails(st, &st->utf8, "", XR_E_BODY_EMPTY);
    xr_t_decode_fails(st, &st->utf8, " \r\n\t ", XR_E_BODY_EMPTY);
    xr_t_decode_fails(st, &st->gbk, "   ", XR_E_BODY_EMPTY);

    assert_int_equal(xr_t_decode(st, &st->utf8, NULL, 0, &tree), XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_BODY_EMPTY);

    assert_int_equal(xr_t_decode(st, &st->utf8, "{}", 2, &tree), XR_OK);
    assert_int_equal(tree->type, XR_NODE_OBJECT);
    assert_int_equal(tree->u.obj.count, 0);
}


/* {"a":{"a":...{}...}}: `depth` objects */
static char *
xr_t_nested(size_t depth)
{
    char    *s, *p;
    size_t   i;

    s = malloc(6 * depth + 1);
    assert_non_null(s);
    p = s;
    for (i = 1; i < depth; i++) {
        memcpy(p, "{\"a\":", 5);
        p += 5;
    }
    *p++ = '{';
    for (i = 0; i < depth; i++) {
        *p++ = '}';
    }
    *p = '\0';
    return s;
}


static void
test_depth(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    char          *s;
    clock_t        t0;
    size_t         i, n;

    /* {"a":[[[[...  10,000 deep, unclosed */
    n = 10000;
    s = malloc(n + 6);
    assert_non_null(s);
    memcpy(s, "{\"a\":", 5);
    memset(s + 5, '[', n);
    s[n + 5] = '\0';

    t0 = clock();
    xr_t_decode_fails(st, &st->utf8, s, XR_E_DEPTH);
    assert_true(clock() - t0 < CLOCKS_PER_SEC);

    /* closed, and objects */
    for (i = 0; i < n; i++) {
        s[5 + i] = (i & 1) ? '[' : '{';
    }
    xr_t_decode_fails(st, &st->utf8, s, XR_E_DEPTH);
    free(s);

    /* the boundary is exactly the limit */
    s = xr_t_nested(XR_DEFAULT_MAX_DEPTH);
    assert_int_equal(xr_t_decode(st, &st->utf8, s, strlen(s), &tree), XR_OK);
    free(s);
    s = xr_t_nested(XR_DEFAULT_MAX_DEPTH + 1);
    xr_t_decode_fails(st, &st->utf8, s, XR_E_DEPTH);
    free(s);

    st->ctx.max_depth = 3;
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"a\":[{\"b\":[]}]}", 16,
                                 &tree), XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_DEPTH);
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"a\":[{\"b\":1}]}", 15,
                                 &tree), XR_OK);
    /* brackets inside strings do not count */
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"[[[[\":\"{{{{\"}", 15,
                                 &tree), XR_OK);
    st->ctx.max_depth = 0;
}


static void
test_body_limit(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    char          *big;
    size_t         len;

    /* exactly at the limit, and one byte over */
    st->ctx.max_body = 20;
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"a\":\"0123456789ab\"}",
                                 20, &tree), XR_OK);
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"a\":\"0123456789abc\"}",
                                 21, &tree), XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_BODY_TOO_LARGE);
    assert_null(tree);
    st->ctx.max_body = 0;

    /* 100 MB against the default limit */
    len = 100 * 1024 * 1024;
    big = malloc(len);
    assert_non_null(big);
    memset(big, ' ', len);
    big[0] = '{';
    big[len - 1] = '}';
    assert_int_equal(xr_t_decode(st, &st->utf8, big, len, &tree), XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_BODY_TOO_LARGE);
    free(big);
}


static void
test_node_limit(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;

    /* object + array + 3 numbers = 5 values */
    st->ctx.max_nodes = 5;
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"a\":[1,2,3]}", 13,
                                 &tree), XR_OK);
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"a\":[1,2,3,4]}", 15,
                                 &tree), XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_BODY_TOO_LARGE);
    assert_null(tree);
    st->ctx.max_nodes = 0;
}


static void
xr_t_error_doc(xr_t_state_t *st, const xr_profile_t *p, const char *code,
    const char *msg, const char *want, size_t want_len)
{
    xr_buf_t  out;

    xr_ctx_clear(&st->ctx);
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode_error(&st->ctx, p,
                                                  xr_str_from(code),
                                                  xr_str_from(msg), &out),
                     XR_OK);
    if (out.len != want_len || memcmp(out.data, want, want_len) != 0) {
        fail_msg("got %.*s, want %.*s", (int) out.len, out.data,
                 (int) want_len, want);
    }
}


static void
test_encode_error(void **state)
{
    xr_t_state_t  *st = *state;
    xr_profile_t   p;
    xr_node_t     *tree;
    xr_buf_t       out;

    static const char  gbk[] =
        "{\"output\":{\"code\":-1,\"msg\":\"\xca\xa7\xb0\xdc\"}}";

    p = st->utf8;
    p.result_field = xr_str_from("output.code");
    p.message_field = xr_str_from("output.msg");
    p.result_as = XR_WIRE_NUMBER;

    xr_t_error_doc(st, &p, "-1", "失败",
                   "{\"output\":{\"code\":-1,\"msg\":\"失败\"}}",
                   strlen("{\"output\":{\"code\":-1,\"msg\":\"失败\"}}"));

    /* the error document decodes back with the code as a number */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode_error(&st->ctx, &p,
                                                  xr_str_from("-1"),
                                                  xr_str_from("x"), &out),
                     XR_OK);
    assert_int_equal(xr_t_decode(st, &p, out.data, out.len, &tree), XR_OK);
    xr_t_expect(xr_t_get(tree, "output.code"), XR_NODE_NUMBER, "-1");

    /* not numeric text: a string even with as=number */
    xr_t_error_doc(st, &p, "E999", "x",
                   "{\"output\":{\"code\":\"E999\",\"msg\":\"x\"}}",
                   strlen("{\"output\":{\"code\":\"E999\",\"msg\":\"x\"}}"));
    xr_t_error_doc(st, &p, "007", "x",
                   "{\"output\":{\"code\":\"007\",\"msg\":\"x\"}}",
                   strlen("{\"output\":{\"code\":\"007\",\"msg\":\"x\"}}"));

    /* as=string keeps numeric text a string; quotes are escaped */
    p.result_as = XR_WIRE_STRING;
    p.result_field = xr_str_from("infcode");
    p.message_field = xr_str_from("err_msg");
    xr_t_error_doc(st, &p, "-1", "bad \"x\"",
                   "{\"infcode\":\"-1\",\"err_msg\":\"bad \\\"x\\\"\"}",
                   strlen("{\"infcode\":\"-1\","
                          "\"err_msg\":\"bad \\\"x\\\"\"}"));

    /* deep paths sharing a prefix only part of the way */
    p.result_field = xr_str_from("a.b.code");
    p.message_field = xr_str_from("a.c.msg");
    xr_t_error_doc(st, &p, "1", "m",
                   "{\"a\":{\"b\":{\"code\":\"1\"},\"c\":{\"msg\":\"m\"}}}",
                   strlen("{\"a\":{\"b\":{\"code\":\"1\"},"
                          "\"c\":{\"msg\":\"m\"}}}"));

    /* no error shape in the profile */
    p.result_field.len = 0;
    p.message_field.len = 0;
    xr_t_error_doc(st, &p, "E1", "m", "{\"code\":\"E1\",\"message\":\"m\"}",
                   strlen("{\"code\":\"E1\",\"message\":\"m\"}"));

    /* GBK region */
    p = st->gbk;
    p.result_field = xr_str_from("output.code");
    p.message_field = xr_str_from("output.msg");
    p.result_as = XR_WIRE_NUMBER;
    xr_t_error_doc(st, &p, "-1", "失败", gbk, sizeof(gbk) - 1);

    /* it works although the context already carries the error */
    xr_ctx_clear(&st->ctx);
    xr_fail(&st->ctx, XR_E_SYNTAX, NULL, "earlier");
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode_error(&st->ctx, &p,
                                                  xr_str_from("-1"),
                                                  xr_str_from("失败"), &out),
                     XR_OK);
    assert_int_equal(out.len, sizeof(gbk) - 1);
    assert_int_equal(st->ctx.err, XR_E_SYNTAX);
}


static void
test_unicode_escapes(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    xr_buf_t       out;

    static const char  doc[] =
        "{\"a\":\"\\u00e9\\u00E9\\u4e2d\\ud83d\\ude00\\uD834\\uDD1E\","
        "\"b\":\"\\\"\\\\\\/\",\"\\u0063\":\"\\u007f\\u0080\\u07ff\\u0800"
        "\\uffff\\udbff\\udfff\"}";
    static const char  want[] =
        "{\"a\":\"éé中😀𝄞\",\"b\":\"\\\"\\\\/\",\"c\":\"\x7f\xc2\x80"
        "\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf\xf4\x8f\xbf\xbf\"}";

    assert_int_equal(xr_t_decode(st, &st->utf8, doc, sizeof(doc) - 1, &tree),
                     XR_OK);
    xr_t_expect(xr_t_get(tree, "a"), XR_NODE_STRING, "éé中😀𝄞");
    xr_t_expect(xr_t_get(tree, "b"), XR_NODE_STRING, "\"\\/");

    /* non-ASCII is written as UTF-8, not escaped */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                            XR_DIR_REQUEST, NULL, tree, &out),
                     XR_OK);
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);

    /* lone and mismatched surrogates, NUL, bad escapes */
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ud800\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\udc00\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ud800x\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ud800\\u0041\"}",
                      XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ud800\\ud800\"}",
                      XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ud800\\n\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\\u0000\":1}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\u12G4\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\U0041\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\'\"}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ \"}", XR_E_SYNTAX);

    /* the same cut short by the end of the body */
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ud800", XR_E_TRUNCATED);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ud800\\", XR_E_TRUNCATED);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\ud800\\ud", XR_E_TRUNCATED);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\udc00", XR_E_TRUNCATED);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\u0000x", XR_E_TRUNCATED);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":\"\\u", XR_E_TRUNCATED);
}


/* Strings of every length around the 8-byte steps, specials everywhere. */
static void
test_string_boundaries(void **state)
{
    xr_t_state_t     *st = *state;
    xr_node_t        *tree, *root, *again;
    const xr_node_t  *n;
    xr_buf_t          out;
    char              s[64], doc[512];
    size_t            len, at, i, k, dlen;

    static const char  *specials[] = {
        "\"", "\\", "\n", "\x1f", "é", "中", "😀", "/", "\x7f"
    };

    for (len = 0; len < 40; len++) {
        for (at = 0; at <= len; at++) {
            for (k = 0; k < sizeof(specials) / sizeof(specials[0]); k++) {

                /* `len` x's with specials[k] at `at` */
                memset(s, 'x', len);
                i = strlen(specials[k]);
                memmove(s + at + i, s + at, len - at);
                memcpy(s + at, specials[k], i);

                xr_ctx_clear(&st->ctx);
                root = xr_node_new(&st->ctx, XR_NODE_OBJECT);
                assert_int_equal(xr_object_add(&st->ctx, root,
                                     xr_str_from("k"),
                                     xr_node_string(&st->ctx, s, len + i)),
                                 XR_OK);

                xr_buf_init(&out, st->pool, 0);
                assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                                        XR_DIR_REQUEST, NULL,
                                                        root, &out),
                                 XR_OK);
                assert_int_equal(xr_t_decode(st, &st->utf8, out.data,
                                             out.len, &again),
                                 XR_OK);
                assert_true(xr_node_equal(root, again));

                /* the raw text as a key and a value, unescaped */
                if (k >= 4) {
                    dlen = (size_t) snprintf(doc, sizeof(doc),
                                             "{\"%.*s\":\"%.*s\"}",
                                             (int) (len + i), s,
                                             (int) (len + i), s);
                    assert_int_equal(xr_t_decode(st, &st->utf8, doc, dlen,
                                                 &tree),
                                     XR_OK);
                    assert_int_equal(tree->u.obj.count, 1);
                    n = tree->u.obj.first->value;
                    assert_int_equal(n->u.s.len, len + i);
                    assert_memory_equal(n->u.s.data, s, len + i);
                    assert_int_equal(tree->u.obj.first->key.len, len + i);
                }
            }
        }
    }
}


/* The tree owns its text: the input may go away. */
static void
test_tree_outlives_input(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    char          *copy;

    static const char  doc[] =
        "{\"name\":\"abc\",\"esc\":\"a\\nb\",\"n\":-1.5e3,\"l\":[\"x\"]}";

    copy = malloc(sizeof(doc));
    assert_non_null(copy);
    memcpy(copy, doc, sizeof(doc));
    assert_int_equal(xr_t_decode(st, &st->utf8, copy, sizeof(doc) - 1,
                                 &tree),
                     XR_OK);
    memset(copy, '#', sizeof(doc));
    free(copy);

    xr_t_expect(xr_t_get(tree, "name"), XR_NODE_STRING, "abc");
    xr_t_expect(xr_t_get(tree, "esc"), XR_NODE_STRING, "a\nb");
    xr_t_expect(xr_t_get(tree, "n"), XR_NODE_NUMBER, "-1.5e3");
    xr_t_expect(xr_t_get(tree, "l")->u.arr.items[0], XR_NODE_STRING, "x");
}


/* Objects past the size where duplicates are found through an index. */
static void
test_large_objects(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree, *root, *again;
    xr_member_t   *m;
    xr_buf_t       doc, out;
    char           key[16];
    size_t         n, dup, i;

    for (n = 30; n <= 300; n += 15) {
        for (dup = 0; dup <= n; dup += (n / 7) + 1) {

            /* n members k0..k<n-1>; with dup > 0 the last repeats k<dup-1> */
            xr_buf_init(&doc, st->pool, 0);
            xr_buf_addc(&doc, '{');
            for (i = 0; i < n; i++) {
                xr_buf_printf(&doc, "%s\"k%zu\":%zu", i ? "," : "", i, i);
            }
            if (dup) {
                xr_buf_printf(&doc, ",\"k%zu\":0", dup - 1);
            }
            xr_buf_addc(&doc, '}');

            if (dup) {
                xr_ctx_clear(&st->ctx);
                tree = (xr_node_t *) 1;
                assert_int_equal(xr_adapter_json.decode(&st->ctx, &st->utf8,
                                                        XR_DIR_REQUEST, NULL,
                                                        doc.data, doc.len,
                                                        &tree),
                                 XR_ERROR);
                assert_int_equal(st->ctx.err, XR_E_SYNTAX);
                assert_non_null(strstr(st->ctx.errstr, "duplicate"));
                assert_null(tree);
                continue;
            }

            assert_int_equal(xr_t_decode(st, &st->utf8, doc.data, doc.len,
                                         &tree),
                             XR_OK);
            assert_int_equal(tree->u.obj.count, n);
            for (m = tree->u.obj.first, i = 0; m; m = m->next, i++) {
                snprintf(key, sizeof(key), "k%zu", i);
                assert_true(xr_str_eq(m->key, key));
            }

            xr_buf_init(&out, st->pool, 0);
            assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                                    XR_DIR_REQUEST, NULL,
                                                    tree, &out),
                             XR_OK);
            assert_int_equal(out.len, doc.len);
            assert_memory_equal(out.data, doc.data, doc.len);
        }

        /* the encoder refuses a repeated key at any position */
        for (dup = 1; dup <= n; dup += (n / 5) + 1) {
            xr_ctx_clear(&st->ctx);
            root = xr_node_new(&st->ctx, XR_NODE_OBJECT);
            for (i = 0; i < n; i++) {
                snprintf(key, sizeof(key), "k%zu", i);
                xr_object_add(&st->ctx, root,
                              xr_pstr(st->pool, key, strlen(key)),
                              xr_node_number(&st->ctx, "1", 1));
            }
            snprintf(key, sizeof(key), "k%zu", dup - 1);
            xr_object_add(&st->ctx, root, xr_pstr(st->pool, key, strlen(key)),
                          xr_node_number(&st->ctx, "1", 1));
            xr_buf_init(&out, st->pool, 0);
            assert_int_equal(xr_adapter_json.encode(&st->ctx, &st->utf8,
                                                    XR_DIR_REQUEST, NULL,
                                                    root, &out),
                             XR_ERROR);
            assert_int_equal(st->ctx.err, XR_E_INTERNAL);
            assert_string_equal(st->ctx.field, key);
            assert_int_equal(out.len, 0);
        }
    }

    /* keys equal only once unescaped */
    xr_t_decode_fails(st, &st->utf8, "{\"a\":1,\"\\u0061\":2}", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "{\"\\u00e9\":1,\"é\":2}", XR_E_SYNTAX);
    /* and keys that differ only in length or after a common prefix */
    assert_int_equal(xr_t_decode(st, &st->utf8,
                                 "{\"a\":1,\"ab\":2,\"\":3,\"abc\":4,\"b\":5}",
                                 33, &again),
                     XR_OK);
    assert_int_equal(again->u.obj.count, 5);
}


/*
 * A document with several faults is reported by the one the adapter has
 * always put first: invalid UTF-8, then nesting and malformed numbers, then
 * the first fault of the reader.
 */
static void
test_error_precedence(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    char          *s;
    size_t         n;

    xr_t_decode_fails(st, &st->utf8, "{\"a\" 1, \"b\":\"\xff\"}", XR_E_CHARSET);
    xr_t_decode_fails(st, &st->utf8, "{x \xc3\x28}", XR_E_CHARSET);
    xr_t_decode_fails(st, &st->utf8, "\xff{\"a\":1}", XR_E_CHARSET);
    xr_t_decode_fails(st, &st->utf8, "{\"a\":1,\"a\":2,\"b\":\"\xe4\xb8\"}",
                      XR_E_CHARSET);

    /* a syntax error, then nesting past the limit */
    n = XR_DEFAULT_MAX_DEPTH + 10;
    s = malloc(n + 16);
    assert_non_null(s);
    memcpy(s, "{\"a\" ", 5);
    memset(s + 5, '[', n);
    s[n + 5] = '\0';
    xr_t_decode_fails(st, &st->utf8, s, XR_E_DEPTH);
    assert_non_null(strstr(st->ctx.errstr, "line 1, column 69"));

    /* a malformed number before the deep part wins over it */
    memcpy(s, "{\"a\":01,", 8);
    memset(s + 8, '[', n);
    s[n + 8] = '\0';
    xr_t_decode_fails(st, &st->utf8, s, XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "line 1, column 6"));
    free(s);

    /* a malformed number after another syntax error */
    xr_t_decode_fails(st, &st->utf8, "{\"a\" 1,\n\"b\":1.}", XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "line 2, column 5"));

    /* positions count characters, not bytes */
    xr_t_decode_fails(st, &st->utf8, "{\"中文\":1 x}", XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "line 1, column 9"));
    xr_t_decode_fails(st, &st->gbk, "{\"\xd5\xc5\":1 x}", XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "line 1, column 8"));

    /* the document is not an object */
    xr_t_decode_fails(st, &st->utf8, "[{\"a\":1}]", XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "not an object"));
    xr_t_decode_fails(st, &st->utf8, "[1,2", XR_E_TRUNCATED);
    assert_int_equal(xr_t_decode(st, &st->utf8, "{\"a\":1}\0", 8, &tree),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_SYNTAX);
    assert_null(tree);
    xr_t_decode_fails(st, &st->utf8, "1", XR_E_SYNTAX);
    xr_t_decode_fails(st, &st->utf8, "true", XR_E_SYNTAX);
}


/*
 * Differential test against jansson (the adapter's engine before it had its
 * own reader): json_loadb() with JSON_REJECT_DUPLICATES, no
 * JSON_DECODE_ANY, and the top level an object.  Where jansson and we
 * differ on purpose the entry says so:
 *  - XR_T_BIG: jansson refuses an integer beyond 64 bits or a real beyond
 *    double range; we keep the literal text, so we accept.
 *  - XR_T_DEEP: nesting past our limit (64 by default, jansson's is 2048).
 *  - XR_T_NUL: jansson skips one NUL byte right after a number or a
 *    literal (its look-ahead buffer reads the NUL as empty); RFC 8259 has
 *    no place for a NUL outside a string, so we refuse.
 * When both accept, the trees must agree: strings byte for byte, integers
 * exactly, reals as jansson reads our literal text.
 */

#define XR_T_SAME  0
#define XR_T_BIG   1
#define XR_T_DEEP  2
#define XR_T_NUL   3

#define xr_t_doc(s)        { s, sizeof(s) - 1, XR_T_SAME }
#define xr_t_doc_as(s, k)  { s, sizeof(s) - 1, k }


static int
xr_t_same(const xr_node_t *n, json_t *j)
{
    const char   *key;
    json_t       *v, *lit;
    size_t        klen, i;
    xr_member_t  *m;
    char          text[128];
    char         *end;
    json_error_t  error;
    int           same;

    switch (json_typeof(j)) {

    case JSON_OBJECT:
        if (n->type != XR_NODE_OBJECT
            || n->u.obj.count != json_object_size(j))
        {
            return 0;
        }
        m = n->u.obj.first;
        json_object_keylen_foreach(j, key, klen, v) {
            if (m == NULL || m->key.len != klen
                || memcmp(m->key.data, key, klen) != 0
                || !xr_t_same(m->value, v))
            {
                return 0;
            }
            m = m->next;
        }
        return m == NULL;

    case JSON_ARRAY:
        if (n->type != XR_NODE_ARRAY || n->u.arr.count != json_array_size(j)) {
            return 0;
        }
        json_array_foreach(j, i, v) {
            if (!xr_t_same(n->u.arr.items[i], v)) {
                return 0;
            }
        }
        return 1;

    case JSON_STRING:
        return n->type == XR_NODE_STRING
               && n->u.s.len == json_string_length(j)
               && memcmp(n->u.s.data, json_string_value(j), n->u.s.len) == 0;

    case JSON_INTEGER:
        if (n->type != XR_NODE_NUMBER || n->u.s.len >= sizeof(text)) {
            return 0;
        }
        memcpy(text, n->u.s.data, n->u.s.len);
        text[n->u.s.len] = '\0';
        if (strpbrk(text, ".eE") != NULL) {
            return 0;
        }
        return strtoll(text, &end, 10) == json_integer_value(j)
               && *end == '\0';

    case JSON_REAL:
        if (n->type != XR_NODE_NUMBER
            || (memchr(n->u.s.data, '.', n->u.s.len) == NULL
                && memchr(n->u.s.data, 'e', n->u.s.len) == NULL
                && memchr(n->u.s.data, 'E', n->u.s.len) == NULL))
        {
            return 0;
        }
        lit = json_loadb(n->u.s.data, n->u.s.len, JSON_DECODE_ANY, &error);
        same = lit != NULL && json_is_real(lit)
               && json_real_value(lit) == json_real_value(j);
        json_decref(lit);
        return same;

    case JSON_TRUE:
    case JSON_FALSE:
        return n->type == XR_NODE_BOOL && n->u.b == json_is_true(j);

    case JSON_NULL:
        return n->type == XR_NODE_NULL;
    }

    return 0;
}


static void
xr_t_differ(xr_t_state_t *st, const char *doc, size_t len, int kind)
{
    xr_node_t     *tree;
    json_t        *j;
    json_error_t   error;
    int            rc, ours, theirs;

    tree = (xr_node_t *) 1;
    rc = xr_t_decode(st, &st->utf8, doc, len, &tree);
    ours = rc == XR_OK;
    if (ours) {
        assert_non_null(tree);
    } else {
        assert_int_equal(rc, XR_ERROR);
        assert_int_not_equal(st->ctx.err, XR_E_NONE);
        assert_null(tree);
    }

    j = json_loadb(doc, len, JSON_REJECT_DUPLICATES, &error);
    theirs = j != NULL && json_is_object(j);

    switch (kind) {

    case XR_T_BIG:
        if (!ours || j != NULL
            || json_error_code(&error) != json_error_numeric_overflow)
        {
            fail_msg("\"%.*s\": want ours OK, jansson numeric overflow; got "
                     "%s (%s), jansson %s", (int) len, doc,
                     xr_error_info(st->ctx.err)->name, st->ctx.errstr,
                     j ? "OK" : error.text);
        }
        break;

    case XR_T_DEEP:
        if (ours || st->ctx.err != XR_E_DEPTH || !theirs) {
            fail_msg("\"%.*s\": want ours XR-DEPTH, jansson OK; got %s, "
                     "jansson %s", (int) len, doc,
                     xr_error_info(st->ctx.err)->name,
                     j ? "OK" : error.text);
        }
        break;

    case XR_T_NUL:
        if (ours || st->ctx.err != XR_E_SYNTAX || !theirs) {
            fail_msg("\"%.*s\": want ours XR-SYNTAX, jansson OK; got %s, "
                     "jansson %s", (int) len, doc,
                     xr_error_info(st->ctx.err)->name,
                     j ? "OK" : error.text);
        }
        break;

    default:
        if (ours != theirs) {
            fail_msg("\"%.*s\": ours %s (%s), jansson %s", (int) len, doc,
                     ours ? "OK" : xr_error_info(st->ctx.err)->name,
                     st->ctx.errstr, theirs ? "OK" : j ? "not an object"
                                                       : error.text);
        }
        if (ours && !xr_t_same(tree, j)) {
            fail_msg("\"%.*s\": the trees differ", (int) len, doc);
        }
        break;
    }

    json_decref(j);
}


static void
test_jansson_differential(void **state)
{
    xr_t_state_t  *st = *state;
    char          *s;
    size_t         i, n;

    static const struct {
        const char  *doc;
        size_t       len;
        int          kind;
    } corpus[] = {
        /* accepted */
        xr_t_doc("{}"),
        xr_t_doc(" \t\r\n{ } \n"),
        xr_t_doc("{\"\":\"\"}"),
        xr_t_doc("{\"a\":[]}"),
        xr_t_doc("{\"a\":[[],[[]],{},[{}]]}"),
        xr_t_doc("{\"a\":{\"a\":{\"a\":{}}}}"),
        xr_t_doc("{\"a\":true,\"b\":false,\"c\":null}"),
        xr_t_doc("{\"a\":[1,2,3,4,5,6,7,8,9,10,-1,0]}"),
        xr_t_doc("{\"a\":-0,\"b\":0.0,\"c\":-0.0e-0,\"d\":1E+2,\"e\":1e-2}"),
        xr_t_doc("{\"a\":1.5e+3,\"b\":-2E-3,\"c\":0.000001,\"d\":10.10}"),
        xr_t_doc("{\"a\":9223372036854775807,\"b\":-9223372036854775808}"),
        xr_t_doc("{\"a\":100000000000000000000000000000.0}"),
        xr_t_doc("{\"a\":1e-400,\"b\":4.9e-324,\"c\":1.7976931348623157e308}"),
        xr_t_doc("{\"a\":\"\\u00e9\\u4e2d\\ud83d\\ude00\\uD834\\uDD1E\"}"),
        xr_t_doc("{\"a\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}"),
        xr_t_doc("{\"a\":\"\\u0001\\u001f\\u007f\\u0080\\uffff\"}"),
        xr_t_doc("{\"a\":\"x\\u2028y\\u2029\"}"),
        xr_t_doc("{\"a\":\"\x7f\"}"),
        xr_t_doc("{\"a\":\"é中😀\xf4\x8f\xbf\xbf\"}"),
        xr_t_doc("{\"é\":1,\"中\":{\"😀\":[\"\xc2\x80\"]}}"),
        xr_t_doc("{\"\\u0061\":1,\"b\":2}"),
        xr_t_doc("{\"abcdefg\\\"\":1,\"abcdefgh\\\\\":2,\"abcdefghi\":3}"),
        xr_t_doc("{\"a\":\"0123456789abcdef0123456789abcdef\\n0123456789\"}"),
        xr_t_doc("\t{\r\n\"a\"\t:\n[ 1 ,\r2 ] ,\"b\" : { } }\n"),
        xr_t_doc("{\"a\":1,\"b\":[true,false,null,\"x\",{},[]]}"),
        xr_t_doc("{\"a\":{\"b\":1},\"b\":{\"a\":1},\"c\":{\"c\":{\"c\":1}}}"),
        xr_t_doc("{\"a\":1,\"ab\":2,\"\":3,\"abc\":4,\"b\":5}"),
        /* refused by jansson, kept by us */
        xr_t_doc_as("{\"a\":12345678901234567890}", XR_T_BIG),
        xr_t_doc_as("{\"a\":-9223372036854775809}", XR_T_BIG),
        xr_t_doc_as("{\"a\":1e400}", XR_T_BIG),
        xr_t_doc_as("{\"a\":-1.7976931348623159e308}", XR_T_BIG),
        /* refused by us, a NUL skipped by jansson */
        xr_t_doc_as("{\"a\":1\0}", XR_T_NUL),
        xr_t_doc_as("{\"a\":[true\0]}", XR_T_NUL),
        xr_t_doc_as("{\"a\":-2.5e3\0,\"b\":null\0}", XR_T_NUL),
        /* refused */
        xr_t_doc(""),
        xr_t_doc("{\"a\":1\0\0}"),
        xr_t_doc("{\"a\":\"x\"\0}"),
        xr_t_doc("   "),
        xr_t_doc("{"),
        xr_t_doc("}"),
        xr_t_doc("[1]"),
        xr_t_doc("[]"),
        xr_t_doc("\"a\""),
        xr_t_doc("1"),
        xr_t_doc("null"),
        xr_t_doc("{\"a\"}"),
        xr_t_doc("{\"a\":}"),
        xr_t_doc("{\"a\" 1}"),
        xr_t_doc("{\"a\"::1}"),
        xr_t_doc("{\"a\":1,}"),
        xr_t_doc("{,\"a\":1}"),
        xr_t_doc("{\"a\":1,,\"b\":2}"),
        xr_t_doc("{\"a\":[1,]}"),
        xr_t_doc("{\"a\":[,1]}"),
        xr_t_doc("{\"a\":[1 2]}"),
        xr_t_doc("{\"a\":1 2}"),
        xr_t_doc("{\"a\":[}"),
        xr_t_doc("{\"a\":]}"),
        xr_t_doc("{\"a\":1]"),
        xr_t_doc("{\"a\":[1}"),
        xr_t_doc("{1:1}"),
        xr_t_doc("{a:1}"),
        xr_t_doc("{'a':1}"),
        xr_t_doc("{\"a\":'b'}"),
        xr_t_doc("{\"a\":01}"),
        xr_t_doc("{\"a\":-01}"),
        xr_t_doc("{\"a\":00}"),
        xr_t_doc("{\"a\":-}"),
        xr_t_doc("{\"a\":- 1}"),
        xr_t_doc("{\"a\":1.}"),
        xr_t_doc("{\"a\":.1}"),
        xr_t_doc("{\"a\":+1}"),
        xr_t_doc("{\"a\":1e}"),
        xr_t_doc("{\"a\":1e+}"),
        xr_t_doc("{\"a\":1.e5}"),
        xr_t_doc("{\"a\":1.5.3}"),
        xr_t_doc("{\"a\":1-2}"),
        xr_t_doc("{\"a\":0x1}"),
        xr_t_doc("{\"a\":NaN}"),
        xr_t_doc("{\"a\":Infinity}"),
        xr_t_doc("{\"a\":-Infinity}"),
        xr_t_doc("{\"a\":tru}"),
        xr_t_doc("{\"a\":True}"),
        xr_t_doc("{\"a\":nul}"),
        xr_t_doc("{\"a\":truex}"),
        xr_t_doc("{\"a\":true1}"),
        xr_t_doc("{\"a\":nulll}"),
        xr_t_doc("{\"a\":\\u0031}"),
        xr_t_doc("{\"a\":1}//c"),
        xr_t_doc("/*c*/{\"a\":1}"),
        xr_t_doc("{\"a\":1/*c*/}"),
        xr_t_doc("{\"a\":1}#"),
        xr_t_doc("{\"a\":1}{\"b\":2}"),
        xr_t_doc("{\"a\":1} x"),
        xr_t_doc("{\"a\":1}\0"),
        xr_t_doc("\0{\"a\":1}"),
        xr_t_doc("{\"a\":\"b\0\"}"),
        xr_t_doc("{\"a\":\"\t\"}"),
        xr_t_doc("{\"a\":\"\n\"}"),
        xr_t_doc("{\"a\":\"\x1f\"}"),
        xr_t_doc("{\f\"a\":1}"),
        xr_t_doc("{\v\"a\":1}"),
        xr_t_doc("{\xc2\xa0\"a\":1}"),
        xr_t_doc("\xef\xbb\xbf{\"a\":1}"),
        xr_t_doc("{\"a\":\"b}"),
        xr_t_doc("{\"a\":\"\\\"}"),
        xr_t_doc("{\"a\":\"\\x\"}"),
        xr_t_doc("{\"a\":\"\\u12\"}"),
        xr_t_doc("{\"a\":\"\\u12G4\"}"),
        xr_t_doc("{\"a\":\"\\uD800\"}"),
        xr_t_doc("{\"a\":\"\\uDC00\"}"),
        xr_t_doc("{\"a\":\"\\uDBFF\\uDBFF\"}"),
        xr_t_doc("{\"a\":\"\\uD800\\u0041\"}"),
        xr_t_doc("{\"a\":\"\\uD800\\\\u0041\"}"),
        xr_t_doc("{\"a\":\"\\u0000\"}"),
        xr_t_doc("{\"a\\u0000b\":1}"),
        xr_t_doc("{\"a\":\"\xc3\x28\"}"),
        xr_t_doc("{\"a\":\"\xc0\xaf\"}"),
        xr_t_doc("{\"a\":\"\xe0\x80\xaf\"}"),
        xr_t_doc("{\"a\":\"\xed\xa0\x80\"}"),
        xr_t_doc("{\"a\":\"\xf4\x90\x80\x80\"}"),
        xr_t_doc("{\"a\":\"\xf8\x88\x80\x80\x80\"}"),
        xr_t_doc("{\"a\":\"\xe4\xb8\"}"),
        xr_t_doc("{\"a\":\"\x80\"}"),
        xr_t_doc("{\"a\":1,\"a\":2}"),
        xr_t_doc("{\"a\":{\"b\":1,\"c\":2,\"b\":1}}"),
        xr_t_doc("{\"a\":1,\"\\u0061\":2}"),
        xr_t_doc("{\"\\u00e9\":1,\"é\":2}"),
    };

    for (i = 0; i < sizeof(corpus) / sizeof(corpus[0]); i++) {
        xr_t_differ(st, corpus[i].doc, corpus[i].len, corpus[i].kind);
    }

    /* nesting: equal at our limit, past it only jansson accepts */
    for (n = XR_DEFAULT_MAX_DEPTH; n <= XR_DEFAULT_MAX_DEPTH + 1; n++) {
        s = xr_t_nested(n);
        xr_t_differ(st, s, strlen(s),
                    n > XR_DEFAULT_MAX_DEPTH ? XR_T_DEEP : XR_T_SAME);
        free(s);
    }

    /* every proper prefix of a valid document is refused by both */
    {
        static const char  doc[] =
            "{\"a\":[1,-2.5e+3,true,false,null,\"x\\u00e9\\ud83d\\ude00\"],"
            "\"b\":{\"c\":\"中\"}}";

        for (n = 0; n < sizeof(doc) - 1; n++) {
            xr_t_differ(st, doc, n, XR_T_SAME);
            if (n) {
                assert_true(st->ctx.err == XR_E_TRUNCATED
                            || st->ctx.err == XR_E_CHARSET);
            }
        }
        xr_t_differ(st, doc, sizeof(doc) - 1, XR_T_SAME);
    }
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_adapter_table),
        cmocka_unit_test_setup_teardown(test_round_trip, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_whitespace_and_escapes,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_encode_order_and_append,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_encode_rejects, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_gbk, xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_truncated, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_syntax, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_error_position, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_charset_utf8, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_control_characters,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_duplicate_key, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_empty, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_depth, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_body_limit, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_node_limit, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_encode_error, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_unicode_escapes, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_string_boundaries, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_tree_outlives_input,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_large_objects, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_error_precedence, xr_t_setup,
                                        xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_jansson_differential,
                                        xr_t_setup, xr_t_teardown),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
