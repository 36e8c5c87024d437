/*
 * Adapters: one codec each, a const table of functions (like hiredis event
 * adapters or nginx module structs).  An adapter turns a region's bytes into
 * a wire tree (xr_node_t) and back; it knows nothing of canonical fields.
 * The profile-driven mapping (core/xr_map.c) does the rest.
 *
 * Built-in adapters register in xr_adapters.c; xr_adapter_find() looks one
 * up by name at configuration time.
 *
 * Conventions:
 *  - decode() validates the charset (strict UTF-8, or GBK converted to
 *    UTF-8 with iconv), enforces ctx->max_body, ctx->max_depth and
 *    ctx->max_nodes, and returns XR_ERROR with ctx->err set on any bad input.
 *    It never returns a partial tree.
 *  - encode() appends the whole document to `out` in the profile's charset,
 *    or returns XR_ERROR leaving nothing the caller may use.
 *  - encode_error() writes the smallest valid error document the profile's
 *    error shape allows without the mapping: the last resort when even the
 *    mapped error answer cannot be built.
 *  - All memory from ctx->pool; library objects (json_t, xmlDoc) are freed
 *    before return.
 */

#ifndef XR_ADAPTER_H
#define XR_ADAPTER_H

#include "../core/xr_core.h"
#include "../core/xr_node.h"
#include "../core/xr_msg.h"
#include "../core/xr_profile.h"

#define XR_ADAPTER_VERSION  1

#define XR_ADAPTER_TEXT      0x01   /* a text format: charset applies */
#define XR_ADAPTER_NUMBERS   0x02   /* has a number type (JSON) */
#define XR_ADAPTER_LAYOUT    0x04   /* needs the profile's layouts (fixed) */
#define XR_ADAPTER_UNIQUE    0x08   /* decoded objects never repeat a key */

struct xr_adapter_s {
    unsigned        version;        /* XR_ADAPTER_VERSION */
    const char     *name;           /* "json", "xml", "fixed" */
    const char     *content_type;   /* without charset */
    unsigned        flags;

    /* process-level, never per request; may be NULL */
    int           (*init)(void);
    void          (*cleanup)(void);

    /*
     * txn: the transaction when the caller knows it (answers: the request's);
     * NULL for requests, where the adapter may need the header to find it.
     */
    int           (*decode)(xr_ctx_t *ctx, const xr_profile_t *p,
                            xr_dir_e dir, const xr_ptxn_t *txn,
                            const char *data, size_t len, xr_node_t **out);
    int           (*encode)(xr_ctx_t *ctx, const xr_profile_t *p,
                            xr_dir_e dir, const xr_ptxn_t *txn,
                            const xr_node_t *tree, xr_buf_t *out);
    int           (*encode_error)(xr_ctx_t *ctx, const xr_profile_t *p,
                            xr_str_t wire_code, xr_str_t message,
                            xr_buf_t *out);
    /*
     * May be NULL.  Writes the document of a write plan's slot values
     * (xr_profile.h), byte for byte what encode() writes from the wire
     * tree the same maps build, with the same errors.  The loader builds
     * plans only for profiles whose adapter has this.
     */
    int           (*encode_plan)(xr_ctx_t *ctx, const xr_profile_t *p,
                            const xr_wvals_t *doc, xr_buf_t *out);
};

extern const xr_adapter_t  xr_adapter_json;
extern const xr_adapter_t  xr_adapter_xml;
extern const xr_adapter_t  xr_adapter_fixed;

const xr_adapter_t *xr_adapter_find(xr_str_t name);
/* Calls every built-in adapter's init once; XR_ERROR if one fails. */
int xr_adapters_init(void);
void xr_adapters_cleanup(void);

#endif /* XR_ADAPTER_H */
