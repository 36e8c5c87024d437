/*
 * The XML adapter: the wire tree it decodes, the exact bytes it encodes,
 * charsets, and what it refuses (DTDs, entities, depth, size, broken
 * documents) with which error.
 */

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>

#include "xr_adapter.h"


typedef struct {
    xr_pool_t      *pool;
    xr_ctx_t        ctx;
    xr_profile_t    utf8;
    xr_profile_t    gbk;
} xr_t_state_t;


/* A Hangzhou 人社 style envelope, pretty-printed the way it arrives. */
static const char  xr_t_packet[] =
    "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
    "<!-- from the Hangzhou platform -->\n"
    "<PACKET version=\"2016\" xmlns=\"http://example.org/packet\">\n"
    "  <HEAD>\n"
    "    <VERSION>2016</VERSION>\n"
    "    <SNDCODE>330100</SNDCODE>\n"
    "    <RCVCODE>310000</RCVCODE>\n"
    "    <MSGCODE>1101</MSGCODE>\n"
    "    <SNDMSGID>M20240101000001</SNDMSGID>\n"
    "    <USERNAME>\xe6\x9d\xad\xe5\xb7\x9e &amp; co</USERNAME>\n"
    "    <SNDTIME>20240101120000</SNDTIME>\n"
    "    <DATASIZE unit=\"row\">2</DATASIZE>\n"
    "    <?audit keep?>\n"
    "    <EOPSIGN/>\n"
    "  </HEAD>\n"
    "  <DATALIST>\n"
    "    <DATA seq=\"1\">\n"
    "      <AAC002>330102199001011234</AAC002>\n"
    "      <AAC003><![CDATA[<\xe5\xbc\xa0\xe4\xb8\x89>]]></AAC003>\n"
    "    </DATA>\n"
    "    <DATA seq=\"2\">\n"
    "      <AAC002>330102199202022345</AAC002>\n"
    "      <AAC003>&#x674E;&#22235;</AAC003>\n"
    "    </DATA>\n"
    "  </DATALIST>\n"
    "</PACKET>\n";


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

    st->utf8.name = xr_str_from("hangzhou.gov");
    st->utf8.codec = xr_str_from("xml");
    st->utf8.adapter = &xr_adapter_xml;
    st->utf8.charset = XR_CHARSET_UTF8;
    st->utf8.result_field = xr_str_from("PACKET.HEAD.STATUS");
    st->utf8.message_field = xr_str_from("PACKET.HEAD.ERRMSG");

    st->gbk = st->utf8;
    st->gbk.name = xr_str_from("legacy.gov");
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
xr_t_group_setup(void **state)
{
    (void) state;

    return xr_adapter_xml.init() == XR_OK ? 0 : -1;
}


static int
xr_t_group_teardown(void **state)
{
    (void) state;

    xr_adapter_xml.cleanup();

    return 0;
}


static int
xr_t_decode(xr_t_state_t *st, const xr_profile_t *p, const char *data,
    size_t len, xr_node_t **out)
{
    xr_ctx_clear(&st->ctx);

    return xr_adapter_xml.decode(&st->ctx, p, XR_DIR_REQUEST, NULL, data,
                                 len, out);
}


static xr_node_t *
xr_t_decode_ok(xr_t_state_t *st, const xr_profile_t *p, const char *data,
    size_t len)
{
    xr_node_t  *tree;
    int         rc;

    tree = NULL;
    rc = xr_t_decode(st, p, data, len, &tree);

    if (rc != XR_OK) {
        print_error("decode failed: %s %s\n", xr_error_info(st->ctx.err)->name,
                    st->ctx.errstr);
    }

    assert_int_equal(rc, XR_OK);
    assert_non_null(tree);
    assert_int_equal(tree->type, XR_NODE_OBJECT);
    assert_int_equal(tree->u.obj.count, 1);

    return tree;
}


/* Decodes len bytes, expects err and no tree. */
static void
xr_t_fails_len(xr_t_state_t *st, const xr_profile_t *p, const char *data,
    size_t len, xr_err_e err)
{
    xr_node_t  *tree;
    int         rc;

    tree = (xr_node_t *) st;
    rc = xr_t_decode(st, p, data, len, &tree);

    if (rc != XR_ERROR || st->ctx.err != err) {
        print_error("expected %s, got rc %d %s: %s\n",
                    xr_error_info(err)->name, rc,
                    xr_error_info(st->ctx.err)->name, st->ctx.errstr);
    }

    assert_int_equal(rc, XR_ERROR);
    assert_int_equal(st->ctx.err, err);
    assert_null(tree);
    assert_true(st->ctx.errstr[0] != '\0');
}


static void
xr_t_fails(xr_t_state_t *st, const xr_profile_t *p, const char *text,
    xr_err_e err)
{
    xr_t_fails_len(st, p, text, strlen(text), err);
}


static xr_str_t
xr_t_encode_ok(xr_t_state_t *st, const xr_profile_t *p, const xr_node_t *tree)
{
    xr_buf_t  out;
    xr_str_t  s;
    int       rc;

    xr_ctx_clear(&st->ctx);
    xr_buf_init(&out, st->pool, 0);

    rc = xr_adapter_xml.encode(&st->ctx, p, XR_DIR_RESPONSE, NULL, tree,
                               &out);
    if (rc != XR_OK) {
        print_error("encode failed: %s %s\n", xr_error_info(st->ctx.err)->name,
                    st->ctx.errstr);
    }

    assert_int_equal(rc, XR_OK);

    s.data = out.data;
    s.len = out.len;

    return s;
}


static void
xr_t_bytes_equal(xr_str_t got, const char *want, size_t want_len)
{
    if (got.len != want_len || memcmp(got.data, want, want_len) != 0) {
        print_error("got  %.*s\nwant %.*s\n", (int) got.len, got.data,
                    (int) want_len, want);
    }

    assert_int_equal(got.len, want_len);
    assert_memory_equal(got.data, want, want_len);
}


static void
xr_t_str_is(const xr_node_t *n, const char *want)
{
    assert_non_null(n);
    assert_int_equal(n->type, XR_NODE_STRING);

    if (!xr_str_eq(n->u.s, want)) {
        print_error("got \"%.*s\", want \"%s\"\n", (int) n->u.s.len,
                    n->u.s.data, want);
    }

    assert_true(xr_str_eq(n->u.s, want));
}


static const xr_node_t *
xr_t_get(const xr_node_t *root, const char *path)
{
    return xr_node_path_get(root, xr_str_from(path));
}


static xr_node_t *
xr_t_node(xr_t_state_t *st, xr_node_type_e type)
{
    xr_node_t  *n;

    n = xr_node_new(&st->ctx, type);
    assert_non_null(n);

    return n;
}


static xr_node_t *
xr_t_string(xr_t_state_t *st, const char *s)
{
    xr_node_t  *n;

    n = xr_node_string(&st->ctx, s, strlen(s));
    assert_non_null(n);

    return n;
}


static void
xr_t_add(xr_t_state_t *st, xr_node_t *obj, const char *key, xr_node_t *v)
{
    assert_int_equal(xr_object_add(&st->ctx, obj, xr_str_from(key), v),
                     XR_OK);
}


static double
xr_t_now(void)
{
    struct timespec  ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);

    return ts.tv_sec + ts.tv_nsec / 1e9;
}


/* ---- the adapter table ------------------------------------------------ */


static void
test_xml_table(void **state)
{
    (void) state;

    assert_int_equal(xr_adapter_xml.version, XR_ADAPTER_VERSION);
    assert_string_equal(xr_adapter_xml.name, "xml");
    assert_string_equal(xr_adapter_xml.content_type, "application/xml");
    assert_int_equal(xr_adapter_xml.flags, XR_ADAPTER_TEXT);
    assert_non_null(xr_adapter_xml.init);
    assert_non_null(xr_adapter_xml.cleanup);
    assert_non_null(xr_adapter_xml.decode);
    assert_non_null(xr_adapter_xml.encode);
    assert_non_null(xr_adapter_xml.encode_error);
}


/* ---- decoding ------------------------------------------------------------ */


static void
test_xml_decode_packet(void **state)
{
    xr_t_state_t     *st = *state;
    xr_node_t        *tree;
    const xr_node_t  *pk, *head, *n, *all[4];
    xr_member_t      *m;
    static const char  *head_keys[] = {
        "VERSION", "SNDCODE", "RCVCODE", "MSGCODE", "SNDMSGID", "USERNAME",
        "SNDTIME", "DATASIZE", "EOPSIGN"
    };
    size_t            i;

    tree = xr_t_decode_ok(st, &st->utf8, xr_t_packet,
                          sizeof(xr_t_packet) - 1);

    assert_true(xr_str_eq(tree->u.obj.first->key, "PACKET"));

    pk = xr_t_get(tree, "PACKET");
    assert_non_null(pk);
    assert_int_equal(pk->type, XR_NODE_OBJECT);

    /* the attribute first, the xmlns declaration is not one */
    assert_int_equal(pk->u.obj.count, 3);
    m = pk->u.obj.first;
    assert_true(xr_str_eq(m->key, "@version"));
    xr_t_str_is(m->value, "2016");
    assert_true(xr_str_eq(m->next->key, "HEAD"));
    assert_true(xr_str_eq(m->next->next->key, "DATALIST"));

    /* the head's elements in document order, comment and PI gone */
    head = xr_t_get(tree, "PACKET.HEAD");
    assert_int_equal(head->type, XR_NODE_OBJECT);
    assert_int_equal(head->u.obj.count, 9);

    for (i = 0, m = head->u.obj.first; m; m = m->next, i++) {
        assert_true(xr_str_eq(m->key, head_keys[i]));
    }

    xr_t_str_is(xr_t_get(tree, "PACKET.HEAD.VERSION"), "2016");
    xr_t_str_is(xr_t_get(tree, "PACKET.HEAD.MSGCODE"), "1101");
    xr_t_str_is(xr_t_get(tree, "PACKET.HEAD.USERNAME"),
                "\xe6\x9d\xad\xe5\xb7\x9e & co");
    xr_t_str_is(xr_t_get(tree, "PACKET.HEAD.EOPSIGN"), "");

    /* attribute and text: "#text" after the attributes */
    n = xr_t_get(tree, "PACKET.HEAD.DATASIZE");
    assert_int_equal(n->type, XR_NODE_OBJECT);
    assert_int_equal(n->u.obj.count, 2);
    assert_true(xr_str_eq(n->u.obj.first->key, "@unit"));
    xr_t_str_is(n->u.obj.first->value, "row");
    assert_true(xr_str_eq(n->u.obj.last->key, "#text"));
    xr_t_str_is(n->u.obj.last->value, "2");

    /* repeated elements: repeated members */
    assert_int_equal(xr_node_path_all(tree,
                                      xr_str_from("PACKET.DATALIST.DATA"),
                                      all, 4),
                     2);
    assert_int_equal(all[0]->type, XR_NODE_OBJECT);
    assert_int_equal(all[0]->u.obj.count, 3);
    xr_t_str_is(xr_object_get(all[0], xr_str_from("@seq")), "1");
    xr_t_str_is(xr_object_get(all[0], xr_str_from("AAC002")),
                "330102199001011234");
    xr_t_str_is(xr_object_get(all[0], xr_str_from("AAC003")),
                "<\xe5\xbc\xa0\xe4\xb8\x89>");
    xr_t_str_is(xr_object_get(all[1], xr_str_from("@seq")), "2");
    xr_t_str_is(xr_object_get(all[1], xr_str_from("AAC003")),
                "\xe6\x9d\x8e\xe5\x9b\x9b");

    /* no "#text" where the text between elements is layout */
    assert_null(xr_t_get(tree, "PACKET.#text"));
    assert_null(xr_t_get(tree, "PACKET.DATALIST.#text"));
}


static void
test_xml_decode_text_rules(void **state)
{
    xr_t_state_t     *st = *state;
    xr_node_t        *tree;
    const xr_node_t  *a;
    const char       *doc;
    xr_member_t      *m;

    /* mixed content: the text that is not layout, joined, before children */
    doc = "<a>\n  hello <b>x</b>\n  <c/> world\n</a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    a = xr_t_get(tree, "a");
    assert_int_equal(a->type, XR_NODE_OBJECT);
    assert_int_equal(a->u.obj.count, 3);
    m = a->u.obj.first;
    assert_true(xr_str_eq(m->key, "#text"));
    xr_t_str_is(m->value, "\n  hello  world\n");
    assert_true(xr_str_eq(m->next->key, "b"));
    xr_t_str_is(m->next->value, "x");
    assert_true(xr_str_eq(m->next->next->key, "c"));
    xr_t_str_is(m->next->next->value, "");

    /* a leaf keeps its text as it is, whitespace included */
    doc = "<a><b> </b><c>\n two words </c></a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a.b"), " ");
    xr_t_str_is(xr_t_get(tree, "a.c"), "\n two words ");

    /* a leaf with attributes only has no "#text" */
    doc = "<a x=\"1\" y=''/>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    a = xr_t_get(tree, "a");
    assert_int_equal(a->type, XR_NODE_OBJECT);
    assert_int_equal(a->u.obj.count, 2);
    xr_t_str_is(xr_t_get(tree, "a.@x"), "1");
    xr_t_str_is(xr_t_get(tree, "a.@y"), "");

    /* the root element itself may be a plain string */
    doc = "<?xml version=\"1.0\"?><ROOT>&lt;&gt;&amp;&quot;&apos;</ROOT>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "ROOT"), "<>&\"'");

    /* attribute values: entities and character references decoded */
    doc = "<a v=\"x &amp; &#x4E2D;&lt;y&gt; &quot;z&quot;\"/>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a.@v"), "x & \xe4\xb8\xad<y> \"z\"");

    /* CDATA joined with the text around it */
    doc = "<a>1<![CDATA[&2]]>3</a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a"), "1&23");

    /* a UTF-8 byte order mark is accepted */
    doc = "\xef\xbb\xbf<a>1</a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a"), "1");
}


static void
test_xml_decode_namespaces(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    const char    *doc;

    doc = "<soap:Envelope xmlns:soap=\"http://schemas.xmlsoap.org/soap/"
          "envelope/\"><soap:Body><m:Req xmlns:m=\"urn:m\" m:id=\"7\">x"
          "</m:Req></soap:Body></soap:Envelope>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    assert_true(xr_str_eq(tree->u.obj.first->key, "Envelope"));
    xr_t_str_is(xr_t_get(tree, "Envelope.Body.Req.@id"), "7");
    xr_t_str_is(xr_t_get(tree, "Envelope.Body.Req.#text"), "x");

    /* a prefix the document never declared is dropped all the same */
    doc = "<p:a><p:b q:k=\"v\">1</p:b></p:a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a.b.@k"), "v");
    xr_t_str_is(xr_t_get(tree, "a.b.#text"), "1");

    /* two attributes that become one "@x" without their prefixes */
    xr_t_fails(st, &st->utf8, "<r xmlns:p=\"u\" xmlns:q=\"v\">"
               "<a p:x=\"1\" q:x=\"2\"/></r>", XR_E_SYNTAX);
    xr_t_fails(st, &st->utf8, "<a xml:lang=\"zh\" lang=\"en\"/>",
               XR_E_SYNTAX);

    /* what is left of "a:" is no name */
    xr_t_fails(st, &st->utf8, "<a:/>", XR_E_SYNTAX);

    /* Chinese names (the Henan card-management fragments use them) */
    doc = "<\xe6\x93\x8d\xe4\xbd\x9c \xe5\x9f\x8e=\"1\">x</\xe6\x93\x8d"
          "\xe4\xbd\x9c>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "\xe6\x93\x8d\xe4\xbd\x9c.@\xe5\x9f\x8e"), "1");
}


/* ---- encoding ------------------------------------------------------------ */


static void
test_xml_encode_exact(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *root, *pk, *head, *list, *arr, *d, *memo, *n;
    xr_str_t       got;
    static const char  want[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<PACKET version=\"2016\">"
        "<HEAD><MSGCODE>1101</MSGCODE><OK>true</OK><NO>false</NO>"
        "<AMT>145.00</AMT><NOTE></NOTE><EMPTY></EMPTY></HEAD>"
        "<DATALIST><DATA seq=\"1\"><AAC002>3301</AAC002></DATA>"
        "<DATA seq=\"2\">x</DATA></DATALIST>"
        "<MEMO lang=\"zh\">a&lt;b</MEMO>"
        "</PACKET>";

    root = xr_t_node(st, XR_NODE_OBJECT);
    pk = xr_t_node(st, XR_NODE_OBJECT);
    head = xr_t_node(st, XR_NODE_OBJECT);
    list = xr_t_node(st, XR_NODE_OBJECT);
    arr = xr_t_node(st, XR_NODE_ARRAY);
    memo = xr_t_node(st, XR_NODE_OBJECT);

    xr_t_add(st, root, "PACKET", pk);

    xr_t_add(st, pk, "HEAD", head);
    /* attributes go in the start tag wherever they stand in the object */
    xr_t_add(st, pk, "@version", xr_t_string(st, "2016"));
    xr_t_add(st, pk, "DATALIST", list);
    xr_t_add(st, pk, "MEMO", memo);

    xr_t_add(st, head, "MSGCODE", xr_t_string(st, "1101"));
    n = xr_t_node(st, XR_NODE_BOOL);
    n->u.b = 1;
    xr_t_add(st, head, "OK", n);
    xr_t_add(st, head, "NO", xr_t_node(st, XR_NODE_BOOL));
    n = xr_node_number(&st->ctx, "145.00", 6);
    assert_non_null(n);
    xr_t_add(st, head, "AMT", n);
    xr_t_add(st, head, "NOTE", xr_t_node(st, XR_NODE_NULL));
    xr_t_add(st, head, "EMPTY", xr_t_string(st, ""));

    d = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, d, "@seq", xr_t_string(st, "1"));
    xr_t_add(st, d, "AAC002", xr_t_string(st, "3301"));
    assert_int_equal(xr_array_push(&st->ctx, arr, d), XR_OK);
    d = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, d, "@seq", xr_t_string(st, "2"));
    xr_t_add(st, d, "#text", xr_t_string(st, "x"));
    assert_int_equal(xr_array_push(&st->ctx, arr, d), XR_OK);
    xr_t_add(st, list, "DATA", arr);
    /* an empty array writes nothing */
    xr_t_add(st, list, "NONE", xr_t_node(st, XR_NODE_ARRAY));

    xr_t_add(st, memo, "@lang", xr_t_string(st, "zh"));
    xr_t_add(st, memo, "#text", xr_t_string(st, "a<b"));

    got = xr_t_encode_ok(st, &st->utf8, root);
    xr_t_bytes_equal(got, want, sizeof(want) - 1);

    /* the same tree, the same bytes */
    got = xr_t_encode_ok(st, &st->utf8, root);
    xr_t_bytes_equal(got, want, sizeof(want) - 1);
}


static void
test_xml_round_trip(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree, *back, *again;
    xr_str_t       out, out2;
    const char    *doc;

    tree = xr_t_decode_ok(st, &st->utf8, xr_t_packet,
                          sizeof(xr_t_packet) - 1);
    out = xr_t_encode_ok(st, &st->utf8, tree);

    back = xr_t_decode_ok(st, &st->utf8, out.data, out.len);
    assert_true(xr_node_equal(tree, back));

    out2 = xr_t_encode_ok(st, &st->utf8, back);
    xr_t_bytes_equal(out2, out.data, out.len);

    /* mixed content, whitespace-only leaves, CR and tabs survive */
    doc = "<a k=\"t&#9;a&#10;b&#13;\">x&#13;y<b> </b>z\t<c>\r\n</c></a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a.@k"), "t\ta\nb\r");
    xr_t_str_is(xr_t_get(tree, "a.c"), "\n");
    out = xr_t_encode_ok(st, &st->utf8, tree);
    again = xr_t_decode_ok(st, &st->utf8, out.data, out.len);
    assert_true(xr_node_equal(tree, again));
}


static void
test_xml_escaping(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *root, *a;
    xr_node_t     *back;
    xr_str_t       got;
    static const char  want[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<a q=\"&quot;&amp;&lt;&gt;'&#9;&#10;&#13;\">"
        "\"&amp;&lt;&gt;'\t\n&#13;]]&gt;</a>";

    root = xr_t_node(st, XR_NODE_OBJECT);
    a = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, root, "a", a);
    xr_t_add(st, a, "@q", xr_t_string(st, "\"&<>'\t\n\r"));
    xr_t_add(st, a, "#text", xr_t_string(st, "\"&<>'\t\n\r]]>"));

    got = xr_t_encode_ok(st, &st->utf8, root);
    xr_t_bytes_equal(got, want, sizeof(want) - 1);

    back = xr_t_decode_ok(st, &st->utf8, got.data, got.len);
    assert_true(xr_node_equal(root, back));
}


static void
test_xml_encode_refuses(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *root, *a, *arr, *inner;
    xr_buf_t       out;
    size_t         i;
    static const xr_node_type_e  canon[] = {
        XR_NODE_INT, XR_NODE_AMOUNT, XR_NODE_TIME
    };
    static const char  *bad_names[] = {
        "", "1a", "a b", "a:b", "#comment", "-a", "a<", "\xe3\x80\x80"
    };

    xr_buf_init(&out, st->pool, 0);
    xr_buf_adds(&out, "kept");

    /* canonical types have no wire form */
    for (i = 0; i < sizeof(canon) / sizeof(canon[0]); i++) {
        root = xr_t_node(st, XR_NODE_OBJECT);
        a = xr_t_node(st, XR_NODE_OBJECT);
        xr_t_add(st, root, "a", a);
        xr_t_add(st, a, "v", xr_t_node(st, canon[i]));

        xr_ctx_clear(&st->ctx);
        assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                               XR_DIR_REQUEST, NULL, root,
                                               &out),
                         XR_ERROR);
        assert_int_equal(st->ctx.err, XR_E_INTERNAL);
    }

    /* an attribute cannot hold an object */
    root = xr_t_node(st, XR_NODE_OBJECT);
    a = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, root, "a", a);
    xr_t_add(st, a, "@v", xr_t_node(st, XR_NODE_OBJECT));
    xr_ctx_clear(&st->ctx);
    assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                           XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_INTERNAL);

    /* two roots, no root, an array of roots */
    root = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, root, "a", xr_t_string(st, "1"));
    xr_t_add(st, root, "b", xr_t_string(st, "2"));
    xr_ctx_clear(&st->ctx);
    assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                           XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_INTERNAL);

    root = xr_t_node(st, XR_NODE_OBJECT);
    xr_ctx_clear(&st->ctx);
    assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                           XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_INTERNAL);

    arr = xr_t_node(st, XR_NODE_ARRAY);
    assert_int_equal(xr_array_push(&st->ctx, arr, xr_t_string(st, "1")),
                     XR_OK);
    xr_t_add(st, root, "a", arr);
    xr_ctx_clear(&st->ctx);
    assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                           XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_INTERNAL);

    /* an array in an array */
    root = xr_t_node(st, XR_NODE_OBJECT);
    a = xr_t_node(st, XR_NODE_OBJECT);
    arr = xr_t_node(st, XR_NODE_ARRAY);
    inner = xr_t_node(st, XR_NODE_ARRAY);
    assert_int_equal(xr_array_push(&st->ctx, arr, inner), XR_OK);
    xr_t_add(st, root, "a", a);
    xr_t_add(st, a, "b", arr);
    xr_ctx_clear(&st->ctx);
    assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                           XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_INTERNAL);

    /* an attribute twice */
    root = xr_t_node(st, XR_NODE_OBJECT);
    a = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, root, "a", a);
    xr_t_add(st, a, "@x", xr_t_string(st, "1"));
    xr_t_add(st, a, "b", xr_t_string(st, "2"));
    xr_t_add(st, a, "@x", xr_t_string(st, "3"));
    xr_ctx_clear(&st->ctx);
    assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                           XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_INTERNAL);

    /* names that would break the document */
    for (i = 0; i < sizeof(bad_names) / sizeof(bad_names[0]); i++) {
        root = xr_t_node(st, XR_NODE_OBJECT);
        a = xr_t_node(st, XR_NODE_OBJECT);
        xr_t_add(st, root, "a", a);
        xr_t_add(st, a, bad_names[i], xr_t_string(st, "1"));
        xr_ctx_clear(&st->ctx);
        assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                               XR_DIR_REQUEST, NULL, root,
                                               &out),
                         XR_ERROR);
        assert_int_equal(st->ctx.err, XR_E_INTERNAL);
    }

    /* characters XML 1.0 cannot hold, broken UTF-8 */
    for (i = 0; i < 4; i++) {
        static const char  *bad_text[] = {
            "a\x01", "\x1f", "\xef\xbf\xbe", "\xc0\xaf"
        };

        root = xr_t_node(st, XR_NODE_OBJECT);
        xr_t_add(st, root, "a", xr_t_string(st, bad_text[i]));
        xr_ctx_clear(&st->ctx);
        assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                               XR_DIR_REQUEST, NULL, root,
                                               &out),
                         XR_ERROR);
        assert_int_equal(st->ctx.err, XR_E_CHARSET);
    }

    /* nothing was appended by any failure */
    assert_int_equal(out.len, 4);
    assert_memory_equal(out.data, "kept", 4);

    /* while Chinese element names are fine */
    root = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, root, "\xe6\x93\x8d\xe4\xbd\x9c", xr_t_string(st, "1"));
    (void) xr_t_encode_ok(st, &st->utf8, root);
}


static void
test_xml_encode_out_limit(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *root;
    xr_buf_t       out;

    root = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, root, "a", xr_t_string(st, "0123456789"));

    xr_buf_init(&out, st->pool, 20);
    xr_ctx_clear(&st->ctx);
    assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->utf8,
                                           XR_DIR_REQUEST, NULL, root, &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_BODY_TOO_LARGE);
    assert_int_equal(out.len, 0);
}


/* ---- charsets ------------------------------------------------------------ */


static void
test_xml_gbk(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *root, *pk, *back;
    xr_str_t       got;
    /* 中文 测试 in GBK, and 杭州 as an attribute */
    static const char  want[] =
        "<?xml version=\"1.0\" encoding=\"GBK\"?>"
        "<PACKET city=\"\xba\xbc\xd6\xdd\"><NAME>\xd6\xd0\xce\xc4</NAME>"
        "<NOTE>\xb2\xe2\xca\xd4 &amp; ok</NOTE></PACKET>";

    root = xr_t_node(st, XR_NODE_OBJECT);
    pk = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, root, "PACKET", pk);
    xr_t_add(st, pk, "@city", xr_t_string(st, "\xe6\x9d\xad\xe5\xb7\x9e"));
    xr_t_add(st, pk, "NAME", xr_t_string(st, "\xe4\xb8\xad\xe6\x96\x87"));
    xr_t_add(st, pk, "NOTE",
             xr_t_string(st, "\xe6\xb5\x8b\xe8\xaf\x95 & ok"));

    got = xr_t_encode_ok(st, &st->gbk, root);
    xr_t_bytes_equal(got, want, sizeof(want) - 1);

    /* GBK bytes decode with the GBK profile to the UTF-8 tree */
    back = xr_t_decode_ok(st, &st->gbk, got.data, got.len);
    assert_true(xr_node_equal(root, back));
    xr_t_str_is(xr_t_get(back, "PACKET.NAME"), "\xe4\xb8\xad\xe6\x96\x87");

    /* the same GBK bytes are not UTF-8 */
    xr_t_fails_len(st, &st->utf8, got.data, got.len, XR_E_CHARSET);

    /* GBK the profile cannot carry: XR_E_CHARSET */
    root = xr_t_node(st, XR_NODE_OBJECT);
    xr_t_add(st, root, "a", xr_t_string(st, "\xf0\x9f\x98\x80"));
    {
        xr_buf_t  out;

        xr_buf_init(&out, st->pool, 0);
        xr_ctx_clear(&st->ctx);
        assert_int_equal(xr_adapter_xml.encode(&st->ctx, &st->gbk,
                                               XR_DIR_REQUEST, NULL, root,
                                               &out),
                         XR_ERROR);
        assert_int_equal(st->ctx.err, XR_E_CHARSET);
        assert_int_equal(out.len, 0);
    }
}


static void
test_xml_profile_charset_wins(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    const char    *doc;

    /*
     * UTF-8 bytes declared GBK, read with a UTF-8 profile: read as UTF-8.
     * libxml2 converts the first line or so before it reads the
     * declaration: the text that matters comes well after that.
     */
    doc = "<?xml version=\"1.0\" encoding=\"GBK\"?>"
          "<a><pad>................................................</pad>"
          "<pad>................................................</pad>"
          "<pad>................................................</pad>"
          "<pad>................................................</pad>"
          "<b>\xe4\xb8\xad\xe6\x96\x87</b></a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a.b"), "\xe4\xb8\xad\xe6\x96\x87");

    /* GBK bytes declared UTF-8, read with a GBK profile: read as GBK */
    doc = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
          "<a><pad>................................................</pad>"
          "<pad>................................................</pad>"
          "<pad>................................................</pad>"
          "<pad>................................................</pad>"
          "<b>\xd6\xd0\xce\xc4</b></a>";
    tree = xr_t_decode_ok(st, &st->gbk, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a.b"), "\xe4\xb8\xad\xe6\x96\x87");

    /* and a declaration naming something else entirely changes nothing */
    doc = "<?xml version=\"1.0\" encoding=\"UTF-16\"?><a>x</a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a"), "x");
}


static void
test_xml_bad_charset(void **state)
{
    xr_t_state_t  *st = *state;
    static const char  *bad_utf8[] = {
        "<a>\xff</a>",
        "<a>\xc0\xaf</a>",              /* overlong '/' */
        "<a>\xed\xa0\x80</a>",          /* a surrogate */
        "<a>\xe4\xb8</a>",              /* cut short */
        "<a x=\"\x80\"/>"
    };
    static const char  *bad_gbk[] = {
        "<a>\x81<</a>",
        "<a>\xff\xff</a>",
        "<a>\x81\x30</a>"               /* half a four-byte sequence */
    };
    size_t  i;

    for (i = 0; i < sizeof(bad_utf8) / sizeof(bad_utf8[0]); i++) {
        xr_t_fails(st, &st->utf8, bad_utf8[i], XR_E_CHARSET);
    }

    for (i = 0; i < sizeof(bad_gbk) / sizeof(bad_gbk[0]); i++) {
        xr_t_fails(st, &st->gbk, bad_gbk[i], XR_E_CHARSET);
    }

    /* a NUL is refused in GBK, and is no XML in UTF-8 */
    xr_t_fails_len(st, &st->gbk, "<a>\0</a>", 8, XR_E_CHARSET);
    xr_t_fails_len(st, &st->utf8, "<a>\0</a>", 8, XR_E_SYNTAX);
}


/* ---- what is refused ----------------------------------------------------- */


static void
test_xml_billion_laughs(void **state)
{
    xr_t_state_t  *st = *state;
    double         t0, t1;
    static const char  bomb[] =
        "<?xml version=\"1.0\"?>\n"
        "<!DOCTYPE lolz [\n"
        " <!ENTITY lol \"lol\">\n"
        " <!ENTITY lol1 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;"
        "&lol;\">\n"
        " <!ENTITY lol2 \"&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;"
        "&lol1;&lol1;\">\n"
        " <!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;"
        "&lol2;&lol2;\">\n"
        " <!ENTITY lol4 \"&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;"
        "&lol3;&lol3;\">\n"
        " <!ENTITY lol5 \"&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;"
        "&lol4;&lol4;\">\n"
        " <!ENTITY lol6 \"&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;"
        "&lol5;&lol5;\">\n"
        " <!ENTITY lol7 \"&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;"
        "&lol6;&lol6;\">\n"
        " <!ENTITY lol8 \"&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;"
        "&lol7;&lol7;\">\n"
        " <!ENTITY lol9 \"&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;"
        "&lol8;&lol8;\">\n"
        "]>\n"
        "<lolz>&lol9;</lolz>\n";
    static const char  quadratic_prefix[] =
        "<!-- c --><?pi x?>\n<!DOCTYPE q [<!ENTITY a \"";

    t0 = xr_t_now();
    xr_t_fails(st, &st->utf8, bomb, XR_E_XML_DTD);
    xr_t_fails(st, &st->gbk, bomb, XR_E_XML_DTD);
    t1 = xr_t_now();

    assert_true(t1 - t0 < 0.5);
    assert_non_null(strstr(st->ctx.errstr, "DOCTYPE"));

    /* a DOCTYPE after a BOM, comments and PIs is still found */
    xr_t_fails(st, &st->utf8, "\xef\xbb\xbf<!-- x --><?a b?> \n"
               "<!DOCTYPE a [<!ENTITY e \"e\">]><a>&e;</a>", XR_E_XML_DTD);
    xr_t_fails(st, &st->utf8, quadratic_prefix, XR_E_XML_DTD);
}


static void
test_xml_external_entity(void **state)
{
    xr_t_state_t  *st = *state;

    xr_t_fails(st, &st->utf8,
               "<?xml version=\"1.0\"?>\n"
               "<!DOCTYPE foo [<!ENTITY xxe SYSTEM \"file:///etc/passwd\">]>\n"
               "<foo>&xxe;</foo>", XR_E_XML_DTD);

    xr_t_fails(st, &st->utf8,
               "<!DOCTYPE foo [<!ENTITY % p SYSTEM \"http://127.0.0.1:1/x\">"
               " %p;]><foo/>", XR_E_XML_DTD);

    xr_t_fails(st, &st->utf8,
               "<!DOCTYPE foo SYSTEM \"file:///etc/passwd\"><foo/>",
               XR_E_XML_DTD);

    xr_t_fails(st, &st->gbk,
               "<!DOCTYPE foo PUBLIC \"-//x//y\" \"http://127.0.0.1:1/a.dtd\">"
               "<foo/>", XR_E_XML_DTD);

    /* the passwd file never shows up in an error either */
    assert_null(strstr(st->ctx.errstr, "root:"));
}


static void
test_xml_doctype(void **state)
{
    xr_t_state_t  *st = *state;

    xr_t_fails(st, &st->utf8, "<!DOCTYPE a><a>1</a>", XR_E_XML_DTD);
    xr_t_fails(st, &st->utf8, "<?xml version=\"1.0\"?><!DOCTYPE a []><a/>",
               XR_E_XML_DTD);
    xr_t_fails(st, &st->utf8,
               "<!DOCTYPE a [<!ELEMENT a (#PCDATA)><!ATTLIST a x CDATA "
               "\"d\">]><a>1</a>", XR_E_XML_DTD);

    /* references to entities nobody may declare */
    xr_t_fails(st, &st->utf8, "<a>&foo;</a>", XR_E_XML_DTD);
    xr_t_fails(st, &st->utf8, "<a x=\"&foo;\"/>", XR_E_XML_DTD);
    xr_t_fails(st, &st->utf8, "<a>&nbsp;</a>", XR_E_XML_DTD);
}


static void
test_xml_doctype_as_data(void **state)
{
    xr_t_state_t  *st = *state;
    xr_node_t     *tree;
    const char    *doc;

    /* the words are data inside the document element, not a DTD */
    doc = "<a><![CDATA[<!DOCTYPE x [<!ENTITY y \"z\">]>]]>"
          "<!-- <!DOCTYPE --></a>";
    tree = xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));
    xr_t_str_is(xr_t_get(tree, "a"), "<!DOCTYPE x [<!ENTITY y \"z\">]>");
}


static void
test_xml_depth(void **state)
{
    xr_t_state_t  *st = *state;
    char          *doc;
    size_t         i, n, len;
    double         t0;

    /* 10,000 deep */
    n = 10000;
    doc = malloc(n * 7 + 1);
    assert_non_null(doc);

    len = 0;
    for (i = 0; i < n; i++) {
        memcpy(doc + len, "<a>", 3);
        len += 3;
    }
    for (i = 0; i < n; i++) {
        memcpy(doc + len, "</a>", 4);
        len += 4;
    }

    t0 = xr_t_now();
    xr_t_fails_len(st, &st->utf8, doc, len, XR_E_DEPTH);
    assert_true(xr_t_now() - t0 < 0.5);

    /* our limit set above libxml2's own (256): its failure maps the same */
    st->ctx.max_depth = 1000;
    xr_t_fails_len(st, &st->utf8, doc, len, XR_E_DEPTH);
    st->ctx.max_depth = 0;

    free(doc);

    /* exactly at the limit, and one over */
    st->ctx.max_depth = 3;
    (void) xr_t_decode_ok(st, &st->utf8, "<a><b><c>1</c></b></a>", 22);
    xr_t_fails(st, &st->utf8, "<a><b><c><d>1</d></c></b></a>", XR_E_DEPTH);
    /* stopped while parsing, at the element that went too deep */
    assert_non_null(strstr(st->ctx.errstr, "\"d\""));
    st->ctx.max_depth = 0;

    /* the default, 64 */
    doc = malloc(65 * 7 + 1);
    assert_non_null(doc);
    for (n = 64; n <= 65; n++) {
        len = 0;
        for (i = 0; i < n; i++) {
            memcpy(doc + len, "<a>", 3);
            len += 3;
        }
        for (i = 0; i < n; i++) {
            memcpy(doc + len, "</a>", 4);
            len += 4;
        }
        if (n == 64) {
            (void) xr_t_decode_ok(st, &st->utf8, doc, len);
        } else {
            xr_t_fails_len(st, &st->utf8, doc, len, XR_E_DEPTH);
        }
    }
    free(doc);
}


static void
test_xml_truncated(void **state)
{
    xr_t_state_t  *st = *state;
    size_t         len, cut;
    static const char  doc[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<!-- c --><PACKET a=\"1\"><HEAD><VERSION>2016</VERSION>"
        "<X>a&amp;b<![CDATA[<x>]]></X></HEAD>\n"
        "<L><D>1</D><D/><E k='v'>t</E></L></PACKET>";

    len = sizeof(doc) - 1;

    (void) xr_t_decode_ok(st, &st->utf8, doc, len);

    /* every cut of the document, from the first byte on */
    for (cut = 1; cut < len; cut++) {
        xr_t_fails_len(st, &st->utf8, doc, cut, XR_E_TRUNCATED);
    }

    xr_t_fails(st, &st->utf8, "<PACKET><HEAD><VERSION>2016</VERSION>",
               XR_E_TRUNCATED);

    /* libxml2 quotes the unfinished section; the message does not */
    xr_t_fails(st, &st->utf8, "<a><![CDATA[330102199001011234",
               XR_E_TRUNCATED);
    assert_null(strstr(st->ctx.errstr, "3301021990"));
    assert_null(strchr(st->ctx.errstr, '\n'));
    xr_t_fails(st, &st->gbk, "<a><b>\xd6\xd0", XR_E_TRUNCATED);
}


static void
test_xml_syntax(void **state)
{
    xr_t_state_t  *st = *state;
    size_t         i;
    static const char  *bad[] = {
        "hello",
        "{\"json\": true}",
        "<a></b>",
        "<a><b></c></a>",
        "<a>x</a>junk",
        "<a/><b/>",
        "<a b=\"1\" b=\"2\"/>",
        "<a>&#0;</a>",
        "<a>&#xD800;</a>",
        "<a b=1/>",
        "<1a/>",
        "<a>x & y</a>",
        "<a>\x01</a>",
        "<?xml version=\"2.0\" junk?><a/>"
    };

    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        xr_t_fails(st, &st->utf8, bad[i], XR_E_SYNTAX);
    }

    /* libxml2's message and the line number */
    xr_t_fails(st, &st->utf8, "<a>\n<b>\n</c></a>", XR_E_SYNTAX);
    assert_non_null(strstr(st->ctx.errstr, "line 3"));
    assert_non_null(strstr(st->ctx.errstr, "mismatch"));
}


static void
test_xml_limits(void **state)
{
    xr_t_state_t  *st = *state;
    const char    *doc;
    size_t         len;

    doc = "<a><b>1</b><b>2</b></a>";
    len = strlen(doc);

    /* max_body: the limit itself is fine, one byte over is not */
    st->ctx.max_body = len;
    (void) xr_t_decode_ok(st, &st->utf8, doc, len);
    st->ctx.max_body = len - 1;
    xr_t_fails_len(st, &st->utf8, doc, len, XR_E_BODY_TOO_LARGE);
    xr_t_fails_len(st, &st->gbk, doc, len, XR_E_BODY_TOO_LARGE);
    st->ctx.max_body = 0;

    /* checked before anything else: a huge DOCTYPE is too large first */
    st->ctx.max_body = 8;
    xr_t_fails(st, &st->utf8, "<!DOCTYPE a><a/>", XR_E_BODY_TOO_LARGE);
    st->ctx.max_body = 0;

    /* empty */
    xr_t_fails_len(st, &st->utf8, "", 0, XR_E_BODY_EMPTY);
    xr_t_fails_len(st, &st->utf8, NULL, 0, XR_E_BODY_EMPTY);
    xr_t_fails(st, &st->utf8, " \r\n\t", XR_E_BODY_EMPTY);

    /* nodes: the wrapper, a and two b's are four */
    st->ctx.max_nodes = 4;
    (void) xr_t_decode_ok(st, &st->utf8, doc, len);
    st->ctx.max_nodes = 3;
    xr_t_fails_len(st, &st->utf8, doc, len, XR_E_BODY_TOO_LARGE);

    /* counted while parsing: attributes count too */
    st->ctx.max_nodes = 2;
    xr_t_fails(st, &st->utf8, "<a x=\"1\" y=\"2\" z=\"3\"/>",
               XR_E_BODY_TOO_LARGE);
    st->ctx.max_nodes = 0;
}


static void
test_xml_many_nodes(void **state)
{
    xr_t_state_t  *st = *state;
    char          *doc;
    size_t         i, len, n;

    /* more elements than the default node limit, in well under 1 MiB */
    n = XR_DEFAULT_MAX_NODES + 10;
    doc = malloc(n * 4 + 16);
    assert_non_null(doc);

    len = 0;
    memcpy(doc, "<a>", 3);
    len += 3;
    for (i = 0; i < n; i++) {
        memcpy(doc + len, "<b/>", 4);
        len += 4;
    }
    memcpy(doc + len, "</a>", 4);
    len += 4;

    st->ctx.max_body = len;
    xr_t_fails_len(st, &st->utf8, doc, len, XR_E_BODY_TOO_LARGE);
    st->ctx.max_body = 0;

    free(doc);
}


/* A body of `unit` repeated to just under 1 MiB, between head and tail. */
static char *
xr_t_fill(const char *head, const char *unit, const char *tail, size_t *len)
{
    size_t   hl, ul, tl, n;
    char    *p;

    hl = strlen(head);
    ul = strlen(unit);
    tl = strlen(tail);
    n = (XR_DEFAULT_MAX_BODY - hl - tl) / ul;

    p = malloc(hl + n * ul + tl);
    assert_non_null(p);

    memcpy(p, head, hl);
    *len = hl;
    while (n--) {
        memcpy(p + *len, unit, ul);
        *len += ul;
    }
    memcpy(p + *len, tail, tl);
    *len += tl;

    return p;
}


static void
test_xml_costly_input(void **state)
{
    xr_t_state_t  *st = *state;
    char           tag[256 * 8 + 16], *doc;
    size_t         i, n, len;
    double         t0;

    /* 256 attributes on a tag are fine, 257 are not */
    for (n = 256; n <= 257; n++) {
        len = (size_t) sprintf(tag, "<a");
        for (i = 0; i < n; i++) {
            len += (size_t) sprintf(tag + len, " a%zx=\"\"", i);
        }
        len += (size_t) sprintf(tag + len, "/>");

        if (n == 256) {
            (void) xr_t_decode_ok(st, &st->utf8, tag, len);
        } else {
            xr_t_fails_len(st, &st->utf8, tag, len, XR_E_BODY_TOO_LARGE);
        }
    }

    /* the same tag over and over: refused before libxml2 compares them */
    doc = xr_t_fill("<r>", tag, "</r>", &len);
    t0 = xr_t_now();
    xr_t_fails_len(st, &st->utf8, doc, len, XR_E_BODY_TOO_LARGE);
    assert_true(xr_t_now() - t0 < 0.5);
    free(doc);

    /* quotes and comments do not fool the count */
    doc = "<a x=\"=====\" y='>='><!-- = = = --><![CDATA[= =]]><?p = ?></a>";
    st->ctx.max_nodes = 0;
    (void) xr_t_decode_ok(st, &st->utf8, doc, strlen(doc));

    /* a body of errors: libxml2 is stopped at the first */
    doc = xr_t_fill("<a>", "& ", "</a>", &len);
    t0 = xr_t_now();
    xr_t_fails_len(st, &st->utf8, doc, len, XR_E_SYNTAX);
    assert_true(xr_t_now() - t0 < 0.5);
    free(doc);

    doc = xr_t_fill("<a>", "& ", "", &len);
    t0 = xr_t_now();
    xr_t_fails_len(st, &st->utf8, doc, len, XR_E_SYNTAX);
    assert_true(xr_t_now() - t0 < 0.5);
    free(doc);
}


static void
test_xml_quiet(void **state)
{
    xr_t_state_t  *st = *state;
    FILE          *tmp;
    int            saved;
    long           size;

    /* nothing libxml2 says reaches stderr */
    fflush(stderr);
    tmp = tmpfile();
    assert_non_null(tmp);
    saved = dup(2);
    assert_true(saved >= 0);
    assert_true(dup2(fileno(tmp), 2) >= 0);

    xr_t_fails(st, &st->utf8, "<a></b>", XR_E_SYNTAX);
    xr_t_fails(st, &st->utf8, "<a>", XR_E_TRUNCATED);
    xr_t_fails(st, &st->utf8, "<a>&x;</a>", XR_E_XML_DTD);
    xr_t_fails(st, &st->utf8, "<!DOCTYPE a><a/>", XR_E_XML_DTD);
    xr_t_fails(st, &st->utf8, "<a><b></a>", XR_E_SYNTAX);

    /* a namespace warning does not fail the document, and is quiet too */
    (void) xr_t_decode_ok(st, &st->utf8,
                          "<a xmlns:p=\"not a uri\"><p:b/></a>", 33);

    fflush(stderr);
    assert_true(dup2(saved, 2) >= 0);
    close(saved);

    fseek(tmp, 0, SEEK_END);
    size = ftell(tmp);
    fclose(tmp);

    assert_int_equal(size, 0);
}


/* ---- the error document -------------------------------------------------- */


static void
test_xml_encode_error(void **state)
{
    xr_t_state_t  *st = *state;
    xr_profile_t   p;
    xr_buf_t       out;
    xr_node_t     *back;
    xr_str_t       got;
    static const char  want[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<PACKET><HEAD><STATUS>0100</STATUS>"
        "<ERRMSG>\xe6\x8a\xa5\xe6\x96\x87\xe8\xa7\xa3\xe6\x9e\x90\xe5\xa4\xb1"
        "\xe8\xb4\xa5: &lt;a&gt; &amp; b</ERRMSG></HEAD></PACKET>";
    static const char  want_gbk[] =
        "<?xml version=\"1.0\" encoding=\"GBK\"?>"
        "<PACKET><HEAD><STATUS>0100</STATUS>"
        "<ERRMSG>\xb1\xa8\xce\xc4\xbd\xe2\xce\xf6\xca\xa7\xb0\xdc: "
        "&lt;a&gt; &amp; b</ERRMSG></HEAD></PACKET>";
    static const char  want_attr[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
        "<msgtext><grphdr appcode=\"9999\"><appmsg>x??\x7fy</appmsg>"
        "</grphdr></msgtext>";
    static const char  want_emoji[] =
        "<?xml version=\"1.0\" encoding=\"GBK\"?>"
        "<PACKET><HEAD><STATUS>9999</STATUS><ERRMSG>a???? b</ERRMSG></HEAD>"
        "</PACKET>";
    static const char  msg[] =
        "\xe6\x8a\xa5\xe6\x96\x87\xe8\xa7\xa3\xe6\x9e\x90\xe5\xa4\xb1\xe8\xb4"
        "\xa5: <a> & b";

    /* the usual case: ctx already holds the error being reported */
    xr_ctx_clear(&st->ctx);
    xr_fail(&st->ctx, XR_E_SYNTAX, NULL, "the body did not parse");

    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_xml.encode_error(&st->ctx, &st->utf8,
                                                 xr_str_from("0100"),
                                                 xr_str_from(msg), &out),
                     XR_OK);
    got.data = out.data;
    got.len = out.len;
    xr_t_bytes_equal(got, want, sizeof(want) - 1);
    assert_int_equal(st->ctx.err, XR_E_SYNTAX);

    back = xr_t_decode_ok(st, &st->utf8, out.data, out.len);
    xr_t_str_is(xr_t_get(back, "PACKET.HEAD.STATUS"), "0100");

    /* GBK */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_xml.encode_error(&st->ctx, &st->gbk,
                                                 xr_str_from("0100"),
                                                 xr_str_from(msg), &out),
                     XR_OK);
    got.data = out.data;
    got.len = out.len;
    xr_t_bytes_equal(got, want_gbk, sizeof(want_gbk) - 1);

    /* GBK that cannot carry the message keeps its ASCII */
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_xml.encode_error(&st->ctx, &st->gbk,
                                                 xr_str_from("9999"),
                                                 xr_str_from("a\xf0\x9f\x98\x80"
                                                             " b"),
                                                 &out),
                     XR_OK);
    got.data = out.data;
    got.len = out.len;
    xr_t_bytes_equal(got, want_emoji, sizeof(want_emoji) - 1);

    /* an attribute for the code; control bytes and broken UTF-8 in the
     * message are made safe */
    p = st->utf8;
    p.result_field = xr_str_from("msgtext.grphdr.@appcode");
    p.message_field = xr_str_from("msgtext.grphdr.appmsg");

    xr_ctx_clear(&st->ctx);
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_xml.encode_error(&st->ctx, &p,
                                                 xr_str_from("9999"),
                                                 xr_str_from("x\x01\xff\x7fy"),
                                                 &out),
                     XR_OK);
    assert_int_equal(st->ctx.err, XR_E_NONE);
    got.data = out.data;
    got.len = out.len;
    /* \x01 and \xff become '?'; DEL stays, XML allows it */
    xr_t_bytes_equal(got, want_attr, sizeof(want_attr) - 1);

    /* no message field: only the code */
    p = st->utf8;
    p.message_field.len = 0;
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_xml.encode_error(&st->ctx, &p,
                                                 xr_str_from("1"),
                                                 xr_str_from("gone"), &out),
                     XR_OK);
    got.data = out.data;
    got.len = out.len;
    xr_t_bytes_equal(got, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                     "<PACKET><HEAD><STATUS>1</STATUS></HEAD></PACKET>",
                     sizeof("<?xml version=\"1.0\" encoding=\"UTF-8\"?>"
                            "<PACKET><HEAD><STATUS>1</STATUS></HEAD>"
                            "</PACKET>") - 1);

    /* two roots cannot make one document */
    p = st->utf8;
    p.message_field = xr_str_from("ERR.MSG");
    xr_ctx_clear(&st->ctx);
    xr_buf_init(&out, st->pool, 0);
    assert_int_equal(xr_adapter_xml.encode_error(&st->ctx, &p,
                                                 xr_str_from("1"),
                                                 xr_str_from("m"), &out),
                     XR_ERROR);
    assert_int_equal(st->ctx.err, XR_E_CONFIG);
    assert_int_equal(out.len, 0);
}


int
main(void)
{
    const struct CMUnitTest  tests[] = {
        cmocka_unit_test(test_xml_table),
        cmocka_unit_test_setup_teardown(test_xml_decode_packet,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_decode_text_rules,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_decode_namespaces,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_encode_exact,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_round_trip,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_escaping,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_encode_refuses,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_encode_out_limit,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_gbk,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_profile_charset_wins,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_bad_charset,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_billion_laughs,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_external_entity,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_doctype,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_doctype_as_data,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_depth,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_truncated,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_syntax,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_limits,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_many_nodes,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_costly_input,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_quiet,
                                        xr_t_setup, xr_t_teardown),
        cmocka_unit_test_setup_teardown(test_xml_encode_error,
                                        xr_t_setup, xr_t_teardown),
    };

    return cmocka_run_group_tests(tests, xr_t_group_setup,
                                  xr_t_group_teardown);
}
