/*
 * The XML codec, over libxml2.
 *
 * Decoding.  The body is first checked against the limits and the profile's
 * charset (GBK is converted to UTF-8; UTF-8 is validated strictly), then
 * parsed from memory by libxml2 with a parser context of our own, and the
 * resulting document is turned into a wire tree:
 *
 *   root OBJECT { <document element local name>: <element> }
 *
 *   <element> is a STRING when the element has neither attributes nor
 *   child elements (its text, entities decoded, CDATA included; "" when
 *   empty), otherwise an OBJECT: "@name" members for the attributes first,
 *   then "#text" when there is text, then one member per child element in
 *   document order (repeated elements are repeated members).  Text between
 *   child elements that is only whitespace is dropped; other text segments
 *   are joined into the one "#text" member.  Namespace prefixes are dropped,
 *   comments and processing instructions ignored.
 *
 * What is refused, and why (XXE and entity bombs are the reason this file
 * is careful):
 *
 *  - DTDs in any form: a DOCTYPE (internal or external subset), an entity
 *    declaration, a reference to an entity other than the five predefined
 *    ones and numeric character references: XR_E_XML_DTD.  A DOCTYPE can
 *    only stand in the prolog, and entity declarations only inside one, so
 *    the prolog is scanned before libxml2 sees a byte: an entity bomb
 *    ("billion laughs") or an external entity is refused before any
 *    declaration is read.  Behind that scan, our SAX hooks stop the parser
 *    the moment it meets a DOCTYPE, an entity declaration or an entity
 *    lookup, and the finished document is checked for subsets.  Entities
 *    are never substituted (no XML_PARSE_NOENT), nothing is loaded
 *    (XML_PARSE_NONET, no DTDLOAD / DTDATTR / DTDVALID), and XML_PARSE_HUGE
 *    is never set, so libxml2's own limits stay on.
 *  - Nesting deeper than the context's limit (XR_E_DEPTH) and more elements
 *    and attributes than its node limit (XR_E_BODY_TOO_LARGE): counted in
 *    SAX callbacks, so the parser stops before it builds the excess.  A
 *    start tag with more than XR_XML_MAX_ATTRS attributes is refused
 *    before parsing (XR_E_BODY_TOO_LARGE): libxml2's cost for one is
 *    quadratic.
 *  - Names that are no XML names once their prefix is dropped ("a:"), and
 *    attributes that become the same "@name" (p:x and q:x): XR_E_SYNTAX,
 *    so that every tree decoded can be encoded.
 *
 * The declared encoding is ignored: the profile says what the bytes are.
 * A UTF-8 profile receiving encoding="GBK" reads UTF-8 (and refuses what is
 * not); a GBK profile's body is converted to UTF-8 first.
 *
 * libxml2 never writes to stderr from here: errors go to a structured
 * handler on our parser context, and for the duration of a parse the
 * thread's generic and structured handlers are quiet ones.
 *
 * Encoding writes the text itself (no libxml2 serialiser): compact, with a
 * fixed attribute quoting and escaping, so the bytes are deterministic.
 * The document is built in UTF-8 and converted at the end for GBK
 * profiles.
 *
 * Memory: libxml2 allocates with malloc; the parser context and the xmlDoc
 * are freed before every return.  Every xr node and string comes from
 * ctx->pool.
 */

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libxml/parser.h>
#include <libxml/parserInternals.h>
#include <libxml/SAX2.h>
#include <libxml/entities.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>

#include "xr_adapter.h"
#include "../core/xr_charset.h"


/*
 * The parser options.  Note what is absent: XML_PARSE_NOENT,
 * XML_PARSE_DTDLOAD, XML_PARSE_DTDATTR, XML_PARSE_DTDVALID, XML_PARSE_HUGE.
 * XML_PARSE_IGNORE_ENC: the profile, not the declaration, says what the
 * bytes are; the parser is always handed UTF-8 (see xr_xml_decode()).
 */
#define XR_XML_OPTIONS                                                       \
    (XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_IGNORE_ENC               \
     | XML_PARSE_NOERROR | XML_PARSE_NOWARNING)

#define XR_XML_MSG_LEN  160

/*
 * Attributes one start tag may have.  libxml2 looks for duplicates by
 * comparing every attribute of a tag with every other, before any callback
 * of ours runs: one tag of 100,000 attributes (1 MiB) costs it 8 seconds,
 * a MiB of tags of 1000 attributes half a second, of 256 under a tenth.
 * The tags are counted before parsing.
 */
#define XR_XML_MAX_ATTRS  256

/*
 * libxml2 goes on after the first well-formedness error and may report
 * one per byte pair ("& & & ..."), each formatted and copied.  Once the
 * answer cannot change any more, or after this many, it is stopped.
 */
#define XR_XML_MAX_ERRORS  100


/* The state of one parse, reached from SAX callbacks via ctxt->_private. */
typedef struct {
    const char     *data;           /* the UTF-8 text being parsed */
    size_t          len;

    unsigned        depth;
    unsigned        max_depth;
    size_t          count;          /* elements and attributes so far */
    size_t          max_nodes;

    /* why a SAX hook stopped the parser, XR_E_NONE if it did not */
    xr_err_e        stop;
    char            stop_msg[XR_XML_MSG_LEN];

    /* the first error libxml2 reported */
    int             code;
    int             fatal;
    int             line;
    int             col;
    size_t          off;            /* where the parser was, or SIZE_MAX */
    char            msg[XR_XML_MSG_LEN];

    size_t          errors;

    /* some error was reported with the whole input used up */
    unsigned        end_seen:1;
    /* the first fatal error has markup after it: not a truncation */
    unsigned        settled:1;
} xr_xml_parse_t;


/* Tree conversion. */
typedef struct {
    xr_ctx_t       *ctx;
    xmlDocPtr       doc;
    unsigned        max_depth;
    size_t          base_nodes;     /* ctx->nodes when decoding started */
    size_t          max_nodes;
} xr_xml_conv_t;


/* Encoding. */
typedef struct {
    xr_ctx_t       *ctx;
    xr_buf_t        b;
    unsigned        max_depth;
} xr_xml_enc_t;


static int xr_xml_init(void);
static void xr_xml_cleanup(void);
static int xr_xml_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const char *data, size_t len, xr_node_t **out);
static int xr_xml_encode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const xr_node_t *tree, xr_buf_t *out);
static int xr_xml_encode_error(xr_ctx_t *ctx, const xr_profile_t *p,
    xr_str_t wire_code, xr_str_t message, xr_buf_t *out);

static int xr_xml_is_space(unsigned char c);
static const char *xr_xml_find(const char *p, const char *end,
    const char *s, size_t n);
static int xr_xml_prolog_has_dtd(const char *p, size_t len);
static int xr_xml_attrs_over(const char *p, size_t len, size_t max);
static int xr_xml_parse(xr_ctx_t *ctx, const char *data, size_t len,
    xmlDocPtr *docp);
static int xr_xml_parse_failed(xr_ctx_t *ctx, xr_xml_parse_t *st);
static int xr_xml_cut_marker(const char *p, size_t len, size_t off);
static void xr_xml_record(xr_xml_parse_t *st, xmlErrorPtr err, size_t off);
static void xr_xml_error_ctxt(void *data, xmlErrorPtr err);
static void xr_xml_error_global(void *data, xmlErrorPtr err);
static void xr_xml_quiet(void *data, const char *msg, ...);
static void xr_xml_stop(xmlParserCtxtPtr ctxt, xr_err_e err,
    const char *what, const xmlChar *name);
static void xr_xml_sax_start(void *data, const xmlChar *localname,
    const xmlChar *prefix, const xmlChar *uri, int nb_namespaces,
    const xmlChar **namespaces, int nb_attributes, int nb_defaulted,
    const xmlChar **attributes);
static void xr_xml_sax_end(void *data, const xmlChar *localname,
    const xmlChar *prefix, const xmlChar *uri);
static void xr_xml_sax_subset(void *data, const xmlChar *name,
    const xmlChar *external_id, const xmlChar *system_id);
static void xr_xml_sax_entity_decl(void *data, const xmlChar *name, int type,
    const xmlChar *public_id, const xmlChar *system_id, xmlChar *content);
static xmlEntityPtr xr_xml_sax_get_entity(void *data, const xmlChar *name);
static xmlEntityPtr xr_xml_sax_get_pe(void *data, const xmlChar *name);
static xmlParserInputPtr xr_xml_sax_resolve(void *data,
    const xmlChar *public_id, const xmlChar *system_id);
static void xr_xml_sax_reference(void *data, const xmlChar *name);

static int xr_xml_room(xr_xml_conv_t *cv);
static xr_node_t *xr_xml_new(xr_xml_conv_t *cv, xr_node_type_e type);
static int xr_xml_key(xr_xml_conv_t *cv, const char *prefix,
    const xmlChar *name, xr_str_t *key);
static xr_node_t *xr_xml_text(xr_xml_conv_t *cv, xmlNodePtr el,
    int skip_blank);
static xr_node_t *xr_xml_attr_value(xr_xml_conv_t *cv, xmlAttrPtr a);
static xr_node_t *xr_xml_element(xr_xml_conv_t *cv, xmlNodePtr el,
    unsigned depth);
static int xr_xml_key_cmp(const void *a, const void *b);
static int xr_xml_attr_twice(xr_ctx_t *ctx, const xr_node_t *obj,
    xr_str_t *twice);

static size_t xr_xml_char_len(const unsigned char *s, size_t len);
static int xr_xml_name_char(uint32_t cp, int first);
static int xr_xml_name_ok(xr_str_t name);
static int xr_xml_escape(xr_xml_enc_t *e, xr_str_t s, int attr,
    xr_str_t key);
static int xr_xml_scalar(xr_xml_enc_t *e, const xr_node_t *v, int attr,
    xr_str_t key);
static int xr_xml_write_member(xr_xml_enc_t *e, xr_str_t key,
    const xr_node_t *v, unsigned depth);
static int xr_xml_write_element(xr_xml_enc_t *e, xr_str_t key,
    const xr_node_t *v, unsigned depth);
static int xr_xml_write_doc(xr_ctx_t *ctx, const xr_profile_t *p,
    const xr_node_t *tree, xr_buf_t *out);


const xr_adapter_t  xr_adapter_xml = {
    XR_ADAPTER_VERSION,
    "xml",
    "application/xml",
    XR_ADAPTER_TEXT,
    xr_xml_init,
    xr_xml_cleanup,
    xr_xml_decode,
    xr_xml_encode,
    xr_xml_encode_error,
    NULL
};


static int
xr_xml_init(void)
{
    xmlInitParser();
    return XR_OK;
}


static void
xr_xml_cleanup(void)
{
    xmlCleanupParser();
}


/* ---- decoding --------------------------------------------------------- */


static int
xr_xml_decode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const char *data, size_t len, xr_node_t **out)
{
    xr_xml_conv_t  cv;
    xr_node_t     *root, *el;
    xmlNodePtr     xel;
    xmlDocPtr      doc;
    xr_str_t       text, key;
    size_t         i, max_body;

    (void) dir;
    (void) txn;

    *out = NULL;

    max_body = xr_ctx_max_body(ctx);

    if (len > max_body) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "XML body of %zu bytes is over the limit of %zu",
                       len, max_body);
    }

    if (len == 0) {
        return xr_fail(ctx, XR_E_BODY_EMPTY, NULL, NULL);
    }

    /*
     * The profile decides the charset, whatever the declaration says: a
     * UTF-8 profile receiving encoding="GBK" has its bytes read as UTF-8
     * (and refused if they are not), and a GBK profile's body is converted
     * here and handed to libxml2 as UTF-8 with the declaration ignored.
     */
    if (p->charset == XR_CHARSET_GBK) {
        if (xr_charset_to_utf8(ctx, XR_CHARSET_GBK, data, len, &text, NULL)
            != XR_OK)
        {
            return XR_ERROR;
        }

    } else {
        if (xr_utf8_validate(ctx, data, len, NULL) != XR_OK) {
            return XR_ERROR;
        }
        text.data = data;
        text.len = len;
    }

    /* libxml2 takes an int; a GBK body grows by half when converted */
    if (text.len > INT_MAX) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "XML body of %zu bytes is too large to parse",
                       text.len);
    }

    for (i = 0; i < text.len; i++) {
        if (!xr_xml_is_space((unsigned char) text.data[i])) {
            break;
        }
    }

    if (i == text.len) {
        return xr_fail(ctx, XR_E_BODY_EMPTY, NULL,
                       "XML body is only whitespace");
    }

    if (xr_xml_prolog_has_dtd(text.data, text.len)) {
        return xr_fail(ctx, XR_E_XML_DTD, NULL,
                       "XML with a DOCTYPE is not accepted");
    }

    if (xr_xml_attrs_over(text.data, text.len, XR_XML_MAX_ATTRS)) {
        return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "XML element with more than %d attributes",
                       XR_XML_MAX_ATTRS);
    }

    if (xr_xml_parse(ctx, text.data, text.len, &doc) != XR_OK) {
        return XR_ERROR;
    }

    cv.ctx = ctx;
    cv.doc = doc;
    cv.max_depth = xr_ctx_max_depth(ctx);
    cv.base_nodes = ctx->nodes;
    cv.max_nodes = ctx->max_nodes ? ctx->max_nodes : XR_DEFAULT_MAX_NODES;

    el = NULL;
    root = NULL;
    xel = xmlDocGetRootElement(doc);

    if (xel == NULL) {
        xr_fail(ctx, XR_E_SYNTAX, NULL, "XML has no document element");

    } else if (xr_xml_key(&cv, "", xel->name, &key) == XR_OK) {
        root = xr_xml_new(&cv, XR_NODE_OBJECT);
        if (root != NULL) {
            el = xr_xml_element(&cv, xel, 1);
        }
    }

    xmlFreeDoc(doc);

    if (el == NULL || xr_object_add(ctx, root, key, el) != XR_OK) {
        return XR_ERROR;
    }

    *out = root;

    return XR_OK;
}


static int
xr_xml_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}


static const char *
xr_xml_find(const char *p, const char *end, const char *s, size_t n)
{
    for ( /* void */ ; (size_t) (end - p) >= n; p++) {
        if (*p == *s && memcmp(p, s, n) == 0) {
            return p;
        }
    }

    return NULL;
}


/*
 * Whether the prolog (what may stand before the document element: a BOM,
 * whitespace, the XML declaration, comments and PIs) holds a DOCTYPE.  An
 * entity declaration can only stand inside a DOCTYPE, so this finds every
 * document that could declare one; "<!DOCTYPE" inside text or CDATA is data
 * and is left alone.  When the prolog does not read as one (an unclosed
 * comment, say) the scan gives up and libxml2 reports the error; the SAX
 * hooks still stop it at any DOCTYPE.
 */

static int
xr_xml_prolog_has_dtd(const char *p, size_t len)
{
    const char  *end, *q;

    end = p + len;

    if (len >= 3 && memcmp(p, "\xef\xbb\xbf", 3) == 0) {
        p += 3;
    }

    for ( ;; ) {
        while (p < end && xr_xml_is_space((unsigned char) *p)) {
            p++;
        }

        if (end - p >= 9 && memcmp(p, "<!DOCTYPE", 9) == 0) {
            return 1;
        }

        if (end - p >= 4 && memcmp(p, "<!--", 4) == 0) {
            q = xr_xml_find(p + 4, end, "-->", 3);
            if (q == NULL) {
                return 0;
            }
            p = q + 3;
            continue;
        }

        if (end - p >= 2 && memcmp(p, "<?", 2) == 0) {
            q = xr_xml_find(p + 2, end, "?>", 2);
            if (q == NULL) {
                return 0;
            }
            p = q + 2;
            continue;
        }

        return 0;
    }
}


/*
 * Whether a start tag has more than max attributes, counted as '=' outside
 * quotes.  The scan follows XML's own lexing: text holds no '<', attribute
 * values hold no '<', and comments, CDATA sections and PIs are skipped
 * whole, so it takes one pass.  What does not lex stops the scan: libxml2
 * reports it.
 */

static int
xr_xml_attrs_over(const char *p, size_t len, size_t max)
{
    const char  *end, *q;
    size_t       n;

    end = p + len;

    for ( ;; ) {
        p = memchr(p, '<', end - p);
        if (p == NULL || end - p < 2) {
            return 0;
        }

        p++;

        if (end - p >= 3 && memcmp(p, "!--", 3) == 0) {
            q = xr_xml_find(p + 3, end, "-->", 3);

        } else if (end - p >= 8 && memcmp(p, "![CDATA[", 8) == 0) {
            q = xr_xml_find(p + 8, end, "]]>", 3);

        } else if (*p == '?') {
            q = xr_xml_find(p + 1, end, "?>", 2);

        } else if (*p == '!' || *p == '/') {
            q = memchr(p, '>', end - p);

        } else {
            /* a start tag */
            for (n = 0; p < end && *p != '>'; p++) {
                if (*p == '"' || *p == '\'') {
                    q = memchr(p + 1, *p, end - p - 1);
                    if (q == NULL) {
                        return 0;
                    }
                    p = q;

                } else if (*p == '=' && ++n > max) {
                    return 1;
                }
            }
            continue;
        }

        if (q == NULL) {
            return 0;
        }

        p = q + 1;
    }
}


static int
xr_xml_parse(xr_ctx_t *ctx, const char *data, size_t len, xmlDocPtr *docp)
{
    xr_xml_parse_t          st;
    xmlParserCtxtPtr        ctxt;
    xmlDocPtr               doc;
    xmlGenericErrorFunc     old_generic;
    xmlStructuredErrorFunc  old_structured;
    void                   *old_generic_ctx, *old_structured_ctx;
    int                     well_formed;

    *docp = NULL;

    memset(&st, 0, sizeof(xr_xml_parse_t));
    st.data = data;
    st.len = len;
    st.max_depth = xr_ctx_max_depth(ctx);
    st.max_nodes = ctx->max_nodes ? ctx->max_nodes : XR_DEFAULT_MAX_NODES;

    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, "cannot create XML parser");
    }

    ctxt->_private = &st;

    /* the context's own handler table: changing it touches no one else */
    ctxt->sax->serror = xr_xml_error_ctxt;
    ctxt->sax->startElementNs = xr_xml_sax_start;
    ctxt->sax->endElementNs = xr_xml_sax_end;
    ctxt->sax->internalSubset = xr_xml_sax_subset;
    ctxt->sax->externalSubset = xr_xml_sax_subset;
    ctxt->sax->entityDecl = xr_xml_sax_entity_decl;
    ctxt->sax->getEntity = xr_xml_sax_get_entity;
    ctxt->sax->getParameterEntity = xr_xml_sax_get_pe;
    ctxt->sax->resolveEntity = xr_xml_sax_resolve;
    ctxt->sax->reference = xr_xml_sax_reference;

    /*
     * Errors raised without our context (the encoding layer, say) would go
     * to the thread's handlers, stderr by default: quiet them for the
     * parse and put back whatever the embedder had.
     */
    old_generic = xmlGenericError;
    old_generic_ctx = xmlGenericErrorContext;
    old_structured = xmlStructuredError;
    old_structured_ctx = xmlStructuredErrorContext;

    xmlSetGenericErrorFunc(NULL, xr_xml_quiet);
    xmlSetStructuredErrorFunc(&st, xr_xml_error_global);

    doc = xmlCtxtReadMemory(ctxt, data, (int) len, NULL, "UTF-8",
                            XR_XML_OPTIONS);

    xmlSetGenericErrorFunc(old_generic_ctx, old_generic);
    xmlSetStructuredErrorFunc(old_structured_ctx, old_structured);

    well_formed = ctxt->wellFormed;
    xmlFreeParserCtxt(ctxt);

    if (st.stop != XR_E_NONE || doc == NULL || !well_formed) {
        if (doc != NULL) {
            xmlFreeDoc(doc);
        }
        return xr_xml_parse_failed(ctx, &st);
    }

    if (doc->intSubset != NULL || doc->extSubset != NULL) {
        xmlFreeDoc(doc);
        return xr_fail(ctx, XR_E_XML_DTD, NULL,
                       "XML with a DTD is not accepted");
    }

    *docp = doc;

    return XR_OK;
}


/* Turns the first error of a failed parse into ours. */

static int
xr_xml_parse_failed(xr_ctx_t *ctx, xr_xml_parse_t *st)
{
    if (st->stop != XR_E_NONE) {
        return xr_fail(ctx, st->stop, NULL, "%s", st->stop_msg);
    }

    switch (st->code) {

    case XML_ERR_OK:
        return xr_fail(ctx, XR_E_SYNTAX, NULL, "XML does not parse");

    case XML_ERR_ENTITYREF_AT_EOF:
    case XML_ERR_ENTITYREF_IN_PROLOG:
    case XML_ERR_ENTITYREF_IN_EPILOG:
    case XML_ERR_ENTITYREF_IN_DTD:
    case XML_ERR_UNDECLARED_ENTITY:
    case XML_WAR_UNDECLARED_ENTITY:
    case XML_ERR_UNPARSED_ENTITY:
    case XML_ERR_ENTITY_IS_EXTERNAL:
    case XML_ERR_ENTITY_IS_PARAMETER:
    case XML_ERR_EXT_ENTITY_STANDALONE:
    case XML_ERR_ENTITY_PE_INTERNAL:
    case XML_ERR_ENTITY_LOOP:
    case XML_ERR_ENTITY_BOUNDARY:
    case XML_ERR_ENTITY_PROCESSING:
        return xr_fail(ctx, XR_E_XML_DTD, NULL,
                       "XML entity not accepted at line %d: %s",
                       st->line, st->msg);

    case XML_ERR_TAG_NAME_MISMATCH:
        /* may be reported at the very end: still a syntax error */
        break;

    default:
        /* libxml2's own depth limit, when ours is set above it */
        if (strstr(st->msg, "depth") != NULL) {
            return xr_fail(ctx, XR_E_DEPTH, NULL,
                           "XML nesting too deep at line %d: %s",
                           st->line, st->msg);
        }

        /*
         * Truncated: the parser ran out of input, and the first error
         * lies in the last, unfinished piece of markup ("<a><!-" fails
         * first on "<!-" and only then at the end); or the document stops
         * inside the opening of a comment or CDATA section, which libxml2
         * may refuse without reading to the end.
         */
        if (st->off <= st->len
            && ((st->end_seen
                 && memchr(st->data + st->off, '>', st->len - st->off)
                    == NULL)
                || xr_xml_cut_marker(st->data, st->len, st->off)))
        {
            return xr_fail(ctx, XR_E_TRUNCATED, NULL,
                           "XML ends early at line %d: %s",
                           st->line, st->msg);
        }
    }

    return xr_fail(ctx, XR_E_SYNTAX, NULL,
                   "XML syntax error at line %d column %d: %s",
                   st->line, st->col, st->msg);
}


/*
 * Whether the text ends inside the opening of a comment or CDATA section
 * ("<!", "<![CDA") that starts at or after off, the first error.
 */

static int
xr_xml_cut_marker(const char *p, size_t len, size_t off)
{
    static const char  comment[] = "<!--";
    static const char  cdata[] = "<![CDATA[";
    size_t             i, n;

    for (i = len; i > 0 && len - i < sizeof(cdata); i--) {
        if (p[i - 1] == '<') {
            break;
        }
    }

    if (i == 0 || p[i - 1] != '<' || i > off + 1) {
        return 0;
    }

    p += i - 1;
    n = len - (i - 1);

    return (n < sizeof(comment) - 1 && memcmp(p, comment, n) == 0)
           || (n < sizeof(cdata) - 1 && memcmp(p, cdata, n) == 0);
}


/*
 * Keeps the first fatal error (a well-formedness error), or failing that
 * the first error; warnings do not fail a document and are not kept.
 * off: the parser's offset in the input, SIZE_MAX when unknown.
 */

static void
xr_xml_record(xr_xml_parse_t *st, xmlErrorPtr err, size_t off)
{
    char  *p;

    if (err == NULL || err->level < XML_ERR_ERROR) {
        return;
    }

    if (off != SIZE_MAX && off >= st->len
        && err->code != XML_ERR_TAG_NAME_MISMATCH)
    {
        st->end_seen = 1;
    }

    if (st->fatal || (st->code != XML_ERR_OK && err->level != XML_ERR_FATAL))
    {
        return;
    }

    st->code = err->code;
    st->fatal = (err->level == XML_ERR_FATAL);
    st->line = err->line;
    st->col = err->int2;
    st->off = off;

    st->settled = st->fatal && off != SIZE_MAX && off <= st->len
                  && memchr(st->data + off, '>', st->len - off) != NULL;

    snprintf(st->msg, sizeof(st->msg), "%s",
             err->message ? err->message : "unknown error");

    /*
     * The first line only: some messages quote the document on a second
     * one, and errstr goes to logs and answers; names are enough.
     */
    p = strchr(st->msg, '\n');
    if (p != NULL) {
        *p = '\0';
    }

    for (p = st->msg; *p; p++) {
        if (*p == '\n' || *p == '\r' || *p == '\t') {
            *p = ' ';
        }
    }

    while (p > st->msg && p[-1] == ' ') {
        *--p = '\0';
    }
}


static void
xr_xml_error_ctxt(void *data, xmlErrorPtr err)
{
    xmlParserCtxtPtr    ctxt = data;
    xmlParserInputPtr   in;
    xr_xml_parse_t     *st;
    size_t              off;

    /*
     * Where the parser stands in our text.  The input is valid UTF-8 read
     * as UTF-8, so libxml2's offsets are ours byte for byte.
     */
    off = SIZE_MAX;
    in = ctxt->input;

    if (in != NULL && ctxt->inputNr == 1 && in->cur != NULL
        && in->base != NULL && in->cur >= in->base)
    {
        off = (size_t) in->consumed + (size_t) (in->cur - in->base);
    }

    st = ctxt->_private;

    xr_xml_record(st, err, off);

    /*
     * Enough is known: stop the parser the way it stops itself, but keep
     * its input (xmlStopParser() frees it, and the function reporting the
     * error may still be reading it).  Its loops test instate, and its
     * error functions are silent from here on.
     */
    if (st->fatal && (st->settled || ++st->errors > XR_XML_MAX_ERRORS)) {
        ctxt->instate = XML_PARSER_EOF;
        ctxt->disableSAX = 1;
    }
}


static void
xr_xml_error_global(void *data, xmlErrorPtr err)
{
    xr_xml_record(data, err, SIZE_MAX);
}


static void
xr_xml_quiet(void *data, const char *msg, ...)
{
    (void) data;
    (void) msg;
}


static void
xr_xml_stop(xmlParserCtxtPtr ctxt, xr_err_e err, const char *what,
    const xmlChar *name)
{
    xr_xml_parse_t  *st = ctxt->_private;

    if (st->stop == XR_E_NONE) {
        st->stop = err;
        snprintf(st->stop_msg, sizeof(st->stop_msg), "%s%s%.64s%s", what,
                 name ? " \"" : "", name ? (const char *) name : "",
                 name ? "\"" : "");
    }

    xmlStopParser(ctxt);
}


static void
xr_xml_sax_start(void *data, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri, int nb_namespaces, const xmlChar **namespaces,
    int nb_attributes, int nb_defaulted, const xmlChar **attributes)
{
    xmlParserCtxtPtr   ctxt = data;
    xr_xml_parse_t    *st = ctxt->_private;

    if (++st->depth > st->max_depth) {
        xr_xml_stop(ctxt, XR_E_DEPTH, "XML nesting deeper than the limit at",
                    localname);
        return;
    }

    st->count += 1 + (size_t) (nb_attributes > 0 ? nb_attributes : 0);

    if (st->count > st->max_nodes) {
        xr_xml_stop(ctxt, XR_E_BODY_TOO_LARGE,
                    "XML has more elements and attributes than the limit at",
                    localname);
        return;
    }

    xmlSAX2StartElementNs(data, localname, prefix, uri, nb_namespaces,
                          namespaces, nb_attributes, nb_defaulted,
                          attributes);
}


static void
xr_xml_sax_end(void *data, const xmlChar *localname, const xmlChar *prefix,
    const xmlChar *uri)
{
    xmlParserCtxtPtr   ctxt = data;
    xr_xml_parse_t    *st = ctxt->_private;

    if (st->depth > 0) {
        st->depth--;
    }

    xmlSAX2EndElementNs(data, localname, prefix, uri);
}


static void
xr_xml_sax_subset(void *data, const xmlChar *name, const xmlChar *external_id,
    const xmlChar *system_id)
{
    (void) external_id;
    (void) system_id;

    xr_xml_stop(data, XR_E_XML_DTD, "XML with a DOCTYPE is not accepted:",
                name);
}


static void
xr_xml_sax_entity_decl(void *data, const xmlChar *name, int type,
    const xmlChar *public_id, const xmlChar *system_id, xmlChar *content)
{
    (void) type;
    (void) public_id;
    (void) system_id;
    (void) content;

    xr_xml_stop(data, XR_E_XML_DTD, "XML entity declarations are not "
                "accepted:", name);
}


/* The predefined entities are all there is; libxml2 reports the rest. */

static xmlEntityPtr
xr_xml_sax_get_entity(void *data, const xmlChar *name)
{
    (void) data;

    return xmlGetPredefinedEntity(name);
}


static xmlEntityPtr
xr_xml_sax_get_pe(void *data, const xmlChar *name)
{
    xr_xml_stop(data, XR_E_XML_DTD, "XML parameter entities are not "
                "accepted:", name);
    return NULL;
}


static xmlParserInputPtr
xr_xml_sax_resolve(void *data, const xmlChar *public_id,
    const xmlChar *system_id)
{
    (void) public_id;

    xr_xml_stop(data, XR_E_XML_DTD, "XML external references are not "
                "accepted:", system_id);
    return NULL;
}


static void
xr_xml_sax_reference(void *data, const xmlChar *name)
{
    xr_xml_stop(data, XR_E_XML_DTD, "XML entity references are not "
                "accepted:", name);
}


/* Whether the wire tree may take one more node (the context's node limit). */

static int
xr_xml_room(xr_xml_conv_t *cv)
{
    if (cv->ctx->nodes - cv->base_nodes >= cv->max_nodes) {
        return xr_fail(cv->ctx, XR_E_BODY_TOO_LARGE, NULL,
                       "XML has more than %zu nodes", cv->max_nodes);
    }

    return XR_OK;
}


static xr_node_t *
xr_xml_new(xr_xml_conv_t *cv, xr_node_type_e type)
{
    if (xr_xml_room(cv) != XR_OK) {
        return NULL;
    }

    return xr_node_new(cv->ctx, type);
}


/* prefix + the local part of name (a prefix the document left undeclared
 * stays in libxml2's name: it goes too), copied to the pool. */

static int
xr_xml_key(xr_xml_conv_t *cv, const char *prefix, const xmlChar *name,
    xr_str_t *key)
{
    const char  *local, *colon;
    size_t       plen, nlen;
    char        *p;

    local = (const char *) name;
    colon = strrchr(local, ':');
    if (colon != NULL && colon[1] != '\0') {
        local = colon + 1;
    }

    plen = strlen(prefix);
    nlen = strlen(local);

    /* what libxml2 let through as a namespace error: "a:", "a:b:" */
    key->data = local;
    key->len = nlen;

    if (!xr_xml_name_ok(*key)) {
        return xr_fail(cv->ctx, XR_E_SYNTAX, NULL,
                       "\"%.64s\" is not an XML name", (const char *) name);
    }

    p = xr_palloc(cv->ctx->pool, plen + nlen + 1);
    if (p == NULL) {
        return xr_fail(cv->ctx, XR_E_NOMEM, NULL, NULL);
    }

    memcpy(p, prefix, plen);
    memcpy(p + plen, local, nlen + 1);

    key->data = p;
    key->len = plen + nlen;

    return XR_OK;
}


/*
 * A STRING of the element's text children joined; with skip_blank, the
 * segments that are only whitespace are left out (text between child
 * elements).  NULL with ctx->err set on failure.
 */

static xr_node_t *
xr_xml_text(xr_xml_conv_t *cv, xmlNodePtr el, int skip_blank)
{
    xmlNodePtr   c;
    xr_node_t   *n;
    size_t       len, n1, i;
    char        *p;
    const char  *s;

    len = 0;

    for (c = el->children; c; c = c->next) {
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) {
            continue;
        }

        s = (const char *) c->content;
        n1 = s ? strlen(s) : 0;

        if (skip_blank) {
            for (i = 0; i < n1; i++) {
                if (!xr_xml_is_space((unsigned char) s[i])) {
                    break;
                }
            }
            if (i == n1) {
                continue;
            }
        }

        len += n1;
    }

    n = xr_xml_new(cv, XR_NODE_STRING);
    if (n == NULL) {
        return NULL;
    }

    p = xr_palloc(cv->ctx->pool, len + 1);
    if (p == NULL) {
        xr_fail(cv->ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }

    n->u.s.data = p;
    n->u.s.len = len;

    for (c = el->children; c; c = c->next) {
        if (c->type != XML_TEXT_NODE && c->type != XML_CDATA_SECTION_NODE) {
            continue;
        }

        s = (const char *) c->content;
        n1 = s ? strlen(s) : 0;

        if (skip_blank) {
            for (i = 0; i < n1; i++) {
                if (!xr_xml_is_space((unsigned char) s[i])) {
                    break;
                }
            }
            if (i == n1) {
                continue;
            }
        }

        memcpy(p, s, n1);
        p += n1;
    }

    *p = '\0';

    return n;
}


static xr_node_t *
xr_xml_attr_value(xr_xml_conv_t *cv, xmlAttrPtr a)
{
    xmlNodePtr   c;
    xr_node_t   *n;
    xmlChar     *v;

    for (c = a->children; c; c = c->next) {
        if (c->type != XML_TEXT_NODE) {
            xr_fail(cv->ctx, XR_E_XML_DTD, NULL,
                    "XML entity in attribute \"%.64s\" is not accepted",
                    (const char *) a->name);
            return NULL;
        }
    }

    if (xr_xml_room(cv) != XR_OK) {
        return NULL;
    }

    if (a->children == NULL) {
        return xr_node_string(cv->ctx, "", 0);
    }

    if (a->children->next == NULL) {
        /* the usual case: one text node holds the decoded value */
        v = a->children->content;
        return xr_node_string(cv->ctx, (const char *) v,
                              v ? strlen((const char *) v) : 0);
    }

    v = xmlNodeListGetString(cv->doc, a->children, 1);
    if (v == NULL) {
        xr_fail(cv->ctx, XR_E_NOMEM, NULL, NULL);
        return NULL;
    }

    n = xr_node_string(cv->ctx, (const char *) v, strlen((const char *) v));

    xmlFree(v);

    return n;
}


static xr_node_t *
xr_xml_element(xr_xml_conv_t *cv, xmlNodePtr el, unsigned depth)
{
    xmlNodePtr   c;
    xmlAttrPtr   a;
    xr_node_t   *obj, *v;
    xr_str_t     key;
    size_t       nel;
    int          text;

    if (depth > cv->max_depth) {
        xr_fail(cv->ctx, XR_E_DEPTH, NULL,
                "XML nesting deeper than %u", cv->max_depth);
        return NULL;
    }

    nel = 0;
    text = 0;

    for (c = el->children; c; c = c->next) {
        switch (c->type) {

        case XML_ELEMENT_NODE:
            nel++;
            break;

        case XML_TEXT_NODE:
        case XML_CDATA_SECTION_NODE:
            text = 1;
            break;

        case XML_ENTITY_REF_NODE:
        case XML_ENTITY_NODE:
        case XML_ENTITY_DECL:
        case XML_DTD_NODE:
            xr_fail(cv->ctx, XR_E_XML_DTD, NULL,
                    "XML entity in element \"%.64s\" is not accepted",
                    (const char *) el->name);
            return NULL;

        default:
            /* comments, processing instructions */
            break;
        }
    }

    if (nel == 0 && el->properties == NULL) {
        return xr_xml_text(cv, el, 0);
    }

    obj = xr_xml_new(cv, XR_NODE_OBJECT);
    if (obj == NULL) {
        return NULL;
    }

    for (a = el->properties; a; a = a->next) {
        if (xr_xml_key(cv, "@", a->name, &key) != XR_OK) {
            return NULL;
        }

        v = xr_xml_attr_value(cv, a);
        if (v == NULL || xr_object_add(cv->ctx, obj, key, v) != XR_OK) {
            return NULL;
        }
    }

    /*
     * p:x and q:x are two attributes to XML and one "@x" to us: refused,
     * rather than kept as a pair no XML document could be written from.
     */
    if (obj->u.obj.count > 1) {
        switch (xr_xml_attr_twice(cv->ctx, obj, &key)) {
        case XR_OK:
            break;
        case XR_DECLINED:
            xr_fail(cv->ctx, XR_E_SYNTAX, NULL,
                    "XML attribute \"%.*s\" appears twice in \"%.64s\" "
                    "once namespace prefixes are dropped",
                    (int) (key.len > 64 ? 64 : key.len), key.data,
                    (const char *) el->name);
            return NULL;
        default:
            return NULL;
        }
    }

    if (text) {
        v = xr_xml_text(cv, el, nel > 0);
        if (v == NULL) {
            return NULL;
        }

        if (v->u.s.len > 0) {
            key.data = "#text";
            key.len = sizeof("#text") - 1;

            if (xr_object_add(cv->ctx, obj, key, v) != XR_OK) {
                return NULL;
            }
        }
    }

    for (c = el->children; c; c = c->next) {
        if (c->type != XML_ELEMENT_NODE) {
            continue;
        }

        if (xr_xml_key(cv, "", c->name, &key) != XR_OK) {
            return NULL;
        }

        v = xr_xml_element(cv, c, depth + 1);
        if (v == NULL || xr_object_add(cv->ctx, obj, key, v) != XR_OK) {
            return NULL;
        }
    }

    return obj;
}


static int
xr_xml_key_cmp(const void *a, const void *b)
{
    return xr_str_cmp(*(const xr_str_t *) a, *(const xr_str_t *) b);
}


/*
 * XR_DECLINED with *twice set when an attribute ("@" member) of obj comes
 * twice; sorting keeps a tag of many attributes linear-logarithmic.
 */

static int
xr_xml_attr_twice(xr_ctx_t *ctx, const xr_node_t *obj, xr_str_t *twice)
{
    xr_member_t  *m;
    xr_str_t     *keys;
    size_t        n, i;

    n = 0;
    for (m = obj->u.obj.first; m; m = m->next) {
        if (m->key.len && m->key.data[0] == '@') {
            n++;
        }
    }

    if (n < 2) {
        return XR_OK;
    }

    keys = xr_palloc(ctx->pool, n * sizeof(xr_str_t));
    if (keys == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    n = 0;
    for (m = obj->u.obj.first; m; m = m->next) {
        if (m->key.len && m->key.data[0] == '@') {
            keys[n++] = m->key;
        }
    }

    qsort(keys, n, sizeof(xr_str_t), xr_xml_key_cmp);

    for (i = 1; i < n; i++) {
        if (xr_str_cmp(keys[i - 1], keys[i]) == 0) {
            *twice = keys[i];
            return XR_DECLINED;
        }
    }

    return XR_OK;
}


/* ---- encoding --------------------------------------------------------- */


static int
xr_xml_encode(xr_ctx_t *ctx, const xr_profile_t *p, xr_dir_e dir,
    const xr_ptxn_t *txn, const xr_node_t *tree, xr_buf_t *out)
{
    (void) dir;
    (void) txn;

    return xr_xml_write_doc(ctx, p, tree, out);
}


/*
 * The smallest document carrying the code at p->result_field and the
 * message at p->message_field, both paths from the root element.  The
 * message is made safe to write first: this is the answer of last resort
 * and must not fail on the text of the error it reports.
 */

static int
xr_xml_encode_error(xr_ctx_t *ctx, const xr_profile_t *p, xr_str_t wire_code,
    xr_str_t message, xr_buf_t *out)
{
    xr_node_t  *root, *code, *msg;
    xr_ctx_t    scratch;
    xr_str_t    conv;
    size_t      i, n, k;
    char       *s;

    if (p->result_field.len == 0 && p->message_field.len == 0) {
        return xr_fail(ctx, XR_E_CONFIG, NULL,
                       "profile has no result or message field for errors");
    }

    /* characters XML cannot hold and broken bytes become '?' */
    s = xr_palloc(ctx->pool, message.len + 1);
    if (s == NULL) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    n = 0;

    for (i = 0; i < message.len; i += k) {
        k = xr_xml_char_len((const unsigned char *) message.data + i,
                            message.len - i);
        if (k == 0) {
            s[n++] = '?';
            k = 1;
            continue;
        }
        memcpy(s + n, message.data + i, k);
        n += k;
    }

    /*
     * A GBK answer whose message GBK cannot carry keeps its ASCII.  The
     * trial runs on a context of its own: ctx->err most likely holds the
     * very error being reported.
     */
    if (p->charset == XR_CHARSET_GBK) {
        xr_ctx_init(&scratch, ctx->pool);

        if (xr_charset_from_utf8(&scratch, XR_CHARSET_GBK, s, n, &conv, NULL)
            != XR_OK)
        {
            for (i = 0; i < n; i++) {
                if ((unsigned char) s[i] >= 0x80) {
                    s[i] = '?';
                }
            }
        }
    }

    root = xr_node_new(ctx, XR_NODE_OBJECT);
    code = xr_node_string(ctx, wire_code.data, wire_code.len);
    msg = xr_node_string(ctx, s, n);

    if (root == NULL || code == NULL || msg == NULL) {
        return XR_ERROR;
    }

    if (p->result_field.len
        && xr_node_path_set(ctx, root, p->result_field, code) != XR_OK)
    {
        return XR_ERROR;
    }

    if (p->message_field.len
        && xr_node_path_set(ctx, root, p->message_field, msg) != XR_OK)
    {
        return XR_ERROR;
    }

    if (root->u.obj.count != 1) {
        return xr_fail(ctx, XR_E_CONFIG, NULL,
                       "the result and message fields of profile \"%.*s\" "
                       "have different root elements",
                       (int) p->name.len, p->name.data);
    }

    return xr_xml_write_doc(ctx, p, root, out);
}


/*
 * The length of the UTF-8 sequence at s when it is one character XML 1.0
 * may hold (tab, LF, CR, U+0020 and up, no surrogates, no U+FFFE, U+FFFF),
 * else 0.
 */

static size_t
xr_xml_char_len(const unsigned char *s, size_t len)
{
    uint32_t  cp, min;
    size_t    n, k;

    if (s[0] < 0x80) {
        return (s[0] >= 0x20 || s[0] == '\t' || s[0] == '\n'
                || s[0] == '\r') ? 1 : 0;
    }

    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        n = 2;
        cp = s[0] & 0x1f;
        min = 0x80;

    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        n = 3;
        cp = s[0] & 0x0f;
        min = 0x800;

    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        n = 4;
        cp = s[0] & 0x07;
        min = 0x10000;

    } else {
        return 0;
    }

    if (len < n) {
        return 0;
    }

    for (k = 1; k < n; k++) {
        if ((s[k] & 0xc0) != 0x80) {
            return 0;
        }
        cp = (cp << 6) | (s[k] & 0x3f);
    }

    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)
        || cp == 0xfffe || cp == 0xffff)
    {
        return 0;
    }

    return n;
}


/*
 * XML 1.0 (fifth edition) NameStartChar, or NameChar when !first, without
 * the colon: the ranges libxml2's parser accepts.
 */

static int
xr_xml_name_char(uint32_t cp, int first)
{
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z') || cp == '_'
        || (cp >= 0xc0 && cp <= 0xd6) || (cp >= 0xd8 && cp <= 0xf6)
        || (cp >= 0xf8 && cp <= 0x2ff) || (cp >= 0x370 && cp <= 0x37d)
        || (cp >= 0x37f && cp <= 0x1fff) || (cp >= 0x200c && cp <= 0x200d)
        || (cp >= 0x2070 && cp <= 0x218f) || (cp >= 0x2c00 && cp <= 0x2fef)
        || (cp >= 0x3001 && cp <= 0xd7ff) || (cp >= 0xf900 && cp <= 0xfdcf)
        || (cp >= 0xfdf0 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0xeffff))
    {
        return 1;
    }

    if (first) {
        return 0;
    }

    return (cp >= '0' && cp <= '9') || cp == '-' || cp == '.' || cp == 0xb7
           || (cp >= 0x300 && cp <= 0x36f) || (cp >= 0x203f && cp <= 0x2040);
}


/*
 * Whether name is an XML Name without a colon (an NCName): element and
 * attribute names come from profiles and mapping, and a bad one would make
 * a broken document.  Chinese element names are in use.
 */

static int
xr_xml_name_ok(xr_str_t name)
{
    const unsigned char  *s;
    size_t                i, k, j;
    uint32_t              cp;

    s = (const unsigned char *) name.data;

    if (name.len == 0) {
        return 0;
    }

    /* the common case, an ASCII name: [A-Za-z_][A-Za-z0-9_.-]* */
    for (i = 0; i < name.len; i++) {
        cp = s[i] | 0x20;
        if ((cp >= 'a' && cp <= 'z') || s[i] == '_'
            || (i && ((s[i] >= '0' && s[i] <= '9') || s[i] == '.'
                      || s[i] == '-')))
        {
            continue;
        }
        break;
    }
    if (i == name.len) {
        return 1;
    }

    for (i = 0; i < name.len; i += k) {
        k = xr_xml_char_len(s + i, name.len - i);
        if (k == 0) {
            return 0;
        }

        if (k == 1) {
            cp = s[i];

        } else {
            cp = s[i] & (0xff >> (k + 1));
            for (j = 1; j < k; j++) {
                cp = (cp << 6) | (s[i + j] & 0x3f);
            }
        }

        if (!xr_xml_name_char(cp, i == 0)) {
            return 0;
        }
    }

    return 1;
}


/*
 * Text and attribute values.  &, < and > always; in attributes also " and
 * the whitespace characters attribute normalisation would turn into
 * spaces; CR everywhere, which parsers fold into LF.  What XML 1.0 cannot
 * hold at all (other control characters, U+FFFE, U+FFFF) and broken UTF-8
 * are XR_E_CHARSET.
 */

static int
xr_xml_escape(xr_xml_enc_t *e, xr_str_t s, int attr, xr_str_t key)
{
    const char     *p, *end, *run;
    const char     *rep;
    unsigned char   c;
    size_t          k;

    p = s.data;
    end = p + s.len;
    run = p;

    for ( /* void */ ; p < end; p++) {
        c = (unsigned char) *p;

        /* printable ASCII but the specials is written as it is */
        if (c >= 0x20 && c < 0x7f && c != '&' && c != '<' && c != '>'
            && c != '"')
        {
            continue;
        }

        /* CJK text is mostly 3-byte UTF-8: check it here, inline */
        if ((c & 0xf0) == 0xe0 && end - p >= 3
            && ((unsigned char) p[1] & 0xc0) == 0x80
            && ((unsigned char) p[2] & 0xc0) == 0x80)
        {
            uint32_t  cp = ((uint32_t) (c & 0x0f) << 12)
                           | ((uint32_t) (p[1] & 0x3f) << 6)
                           | (uint32_t) (p[2] & 0x3f);

            if (cp >= 0x800 && (cp < 0xd800 || cp > 0xdfff)
                && cp != 0xfffe && cp != 0xffff)
            {
                p += 2;
                continue;
            }
        }

        rep = NULL;

        switch (c) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = attr ? "&quot;" : NULL;
            break;
        case '\r':
            rep = "&#13;";
            break;
        case '\n':
            rep = attr ? "&#10;" : NULL;
            break;
        case '\t':
            rep = attr ? "&#9;" : NULL;
            break;
        default:
            if (c >= 0x20 && c < 0x80) {
                break;
            }
            k = xr_xml_char_len((const unsigned char *) p, end - p);
            if (k == 0) {
                return xr_fail(e->ctx, XR_E_CHARSET, NULL,
                               "byte 0x%02x at %zu of \"%.*s\" is not "
                               "an XML character", c, (size_t) (p - s.data),
                               (int) (key.len > 64 ? 64 : key.len),
                               key.data);
            }
            p += k - 1;
        }

        if (rep == NULL) {
            continue;
        }

        xr_buf_add(&e->b, run, p - run);
        xr_buf_adds(&e->b, rep);
        run = p + 1;
    }

    xr_buf_add(&e->b, run, p - run);

    return XR_OK;
}


/* A value written as text or as an attribute value. */

static int
xr_xml_scalar(xr_xml_enc_t *e, const xr_node_t *v, int attr, xr_str_t key)
{
    switch (v->type) {

    case XR_NODE_STRING:
    case XR_NODE_NUMBER:
        return xr_xml_escape(e, v->u.s, attr, key);

    case XR_NODE_BOOL:
        xr_buf_adds(&e->b, v->u.b ? "true" : "false");
        return XR_OK;

    case XR_NODE_NULL:
        return XR_OK;

    default:
        return xr_fail(e->ctx, XR_E_INTERNAL, NULL,
                       "XML cannot carry a %s as \"%.*s\"",
                       xr_node_type_name(v->type),
                       (int) (key.len > 64 ? 64 : key.len), key.data);
    }
}


static int
xr_xml_write_member(xr_xml_enc_t *e, xr_str_t key, const xr_node_t *v,
    unsigned depth)
{
    size_t  i;

    if (v->type != XR_NODE_ARRAY) {
        return xr_xml_write_element(e, key, v, depth);
    }

    /* an array is the element repeated; an array in an array has no form */
    for (i = 0; i < v->u.arr.count; i++) {
        if (v->u.arr.items[i]->type == XR_NODE_ARRAY) {
            return xr_fail(e->ctx, XR_E_INTERNAL, NULL,
                           "XML cannot carry an array in an array as "
                           "\"%.*s\"",
                           (int) (key.len > 64 ? 64 : key.len), key.data);
        }

        if (xr_xml_write_element(e, key, v->u.arr.items[i], depth) != XR_OK) {
            return XR_ERROR;
        }
    }

    return XR_OK;
}


/*
 * <key attrs>content</key>.  An element with no content is written
 * <key></key> rather than <key/>: both read the same, and the long form is
 * what hand-written parsers on the other side most often expect.
 */

static int
xr_xml_write_element(xr_xml_enc_t *e, xr_str_t key, const xr_node_t *v,
    unsigned depth)
{
    xr_member_t  *m;
    xr_str_t      name;

    if (depth > e->max_depth) {
        return xr_fail(e->ctx, XR_E_DEPTH, NULL,
                       "XML nesting deeper than %u", e->max_depth);
    }

    if (!xr_xml_name_ok(key)) {
        return xr_fail(e->ctx, XR_E_INTERNAL, NULL,
                       "\"%.*s\" is not an XML element name",
                       (int) (key.len > 64 ? 64 : key.len), key.data);
    }

    if (v->type == XR_NODE_OBJECT && v->u.obj.count > 1) {
        switch (xr_xml_attr_twice(e->ctx, v, &name)) {
        case XR_OK:
            break;
        case XR_DECLINED:
            return xr_fail(e->ctx, XR_E_INTERNAL, NULL,
                           "attribute \"%.*s\" twice in \"%.*s\"",
                           (int) (name.len > 64 ? 64 : name.len), name.data,
                           (int) (key.len > 64 ? 64 : key.len), key.data);
        default:
            return XR_ERROR;
        }
    }

    xr_buf_addc(&e->b, '<');
    xr_buf_add(&e->b, key.data, key.len);

    if (v->type == XR_NODE_OBJECT) {
        for (m = v->u.obj.first; m; m = m->next) {
            if (m->key.len == 0 || m->key.data[0] != '@') {
                continue;
            }

            name.data = m->key.data + 1;
            name.len = m->key.len - 1;

            if (!xr_xml_name_ok(name)) {
                return xr_fail(e->ctx, XR_E_INTERNAL, NULL,
                               "\"%.*s\" is not an XML attribute name",
                               (int) (m->key.len > 64 ? 64 : m->key.len),
                               m->key.data);
            }

            xr_buf_addc(&e->b, ' ');
            xr_buf_add(&e->b, name.data, name.len);
            xr_buf_adds(&e->b, "=\"");

            if (xr_xml_scalar(e, m->value, 1, m->key) != XR_OK) {
                return XR_ERROR;
            }

            xr_buf_addc(&e->b, '"');
        }
    }

    xr_buf_addc(&e->b, '>');

    switch (v->type) {

    case XR_NODE_OBJECT:
        for (m = v->u.obj.first; m; m = m->next) {
            if (m->key.len && m->key.data[0] == '@') {
                continue;
            }

            if (xr_str_eq(m->key, "#text")) {
                if (xr_xml_scalar(e, m->value, 0, m->key) != XR_OK) {
                    return XR_ERROR;
                }
                continue;
            }

            if (xr_xml_write_member(e, m->key, m->value, depth + 1)
                != XR_OK)
            {
                return XR_ERROR;
            }
        }
        break;

    case XR_NODE_ARRAY:
        /* reached only for an array in an array, refused above */
        return xr_fail(e->ctx, XR_E_INTERNAL, NULL,
                       "XML cannot carry an array as \"%.*s\"",
                       (int) (key.len > 64 ? 64 : key.len), key.data);

    default:
        if (xr_xml_scalar(e, v, 0, key) != XR_OK) {
            return XR_ERROR;
        }
    }

    xr_buf_adds(&e->b, "</");
    xr_buf_add(&e->b, key.data, key.len);
    xr_buf_addc(&e->b, '>');

    return XR_OK;
}


/*
 * The declaration and the tree, built in UTF-8 in a buffer of our own and
 * appended to out only when whole, converted for GBK profiles.
 */

static int
xr_xml_write_doc(xr_ctx_t *ctx, const xr_profile_t *p, const xr_node_t *tree,
    xr_buf_t *out)
{
    xr_xml_enc_t   e;
    xr_member_t   *m;
    xr_str_t       text;

    if (tree == NULL || tree->type != XR_NODE_OBJECT
        || tree->u.obj.count != 1)
    {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "XML needs a tree with exactly one root element");
    }

    m = tree->u.obj.first;

    if (m->value->type == XR_NODE_ARRAY) {
        return xr_fail(ctx, XR_E_INTERNAL, NULL,
                       "XML cannot have more than one root element");
    }

    e.ctx = ctx;
    e.max_depth = xr_ctx_max_depth(ctx);
    xr_buf_init(&e.b, ctx->pool, 0);

    xr_buf_printf(&e.b, "<?xml version=\"1.0\" encoding=\"%s\"?>",
                  xr_charset_name(p->charset));

    if (xr_xml_write_element(&e, m->key, m->value, 1) != XR_OK) {
        return XR_ERROR;
    }

    if (e.b.failed) {
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    if (xr_charset_from_utf8(ctx, p->charset, e.b.data, e.b.len, &text, NULL)
        != XR_OK)
    {
        return XR_ERROR;
    }

    if (xr_buf_add(out, text.data, text.len) != XR_OK) {
        if (out->limit && out->len + text.len > out->limit) {
            return xr_fail(ctx, XR_E_BODY_TOO_LARGE, NULL,
                           "XML document of %zu bytes is over the limit of "
                           "%zu", text.len, out->limit);
        }
        return xr_fail(ctx, XR_E_NOMEM, NULL, NULL);
    }

    return XR_OK;
}
