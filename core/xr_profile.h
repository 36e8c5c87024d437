/*
 * Domain schemas, region profiles and the configuration that holds them.
 *
 * A schema (config/schema/<domain>.conf) names a domain's canonical
 * transactions and their typed fields.  A profile
 * (config/profiles/<region>.<domain>.conf) says how one region writes them:
 * codec, charset, amount unit, time formats, field locations, code tables,
 * transaction codes and paths, error shape and success code.  The syntax of
 * both is docs/profiles.md.
 *
 * Ownership: xr_config_load() builds everything in the config's own pool;
 * the result is read-only afterwards and shared by every request (the nginx
 * module loads it at configuration time).  xr_config_free() accepts NULL.
 */

#ifndef XR_PROFILE_H
#define XR_PROFILE_H

#include "xr_core.h"
#include "xr_node.h"
#include "xr_msg.h"

typedef struct xr_adapter_s  xr_adapter_t;


/* ---- schema ---------------------------------------------------------- */

typedef enum {
    XR_FT_STRING = 0,
    XR_FT_INT,
    XR_FT_AMOUNT,       /* integer fen in the canonical message */
    XR_FT_BOOL,
    XR_FT_DATE,         /* XR_NODE_TIME, date part only */
    XR_FT_DATETIME,     /* XR_NODE_TIME */
    XR_FT_CODE,         /* STRING restricted to the listed values */
    XR_FT_LIST          /* ARRAY of OBJECTs with the child fields */
} xr_ftype_e;

typedef struct xr_sfield_s  xr_sfield_t;

struct xr_sfield_s {
    xr_str_t        name;           /* "cert_no", "items" */
    xr_ftype_e      type;
    size_t          max;            /* strings, codes; 0 = no limit */
    unsigned        required:1;
    unsigned        negative:1;     /* amounts: may be below zero */
    unsigned        pii:3;          /* xr_pii_e (xr_mask.h): the kind of
                                       personal value; 0: not personal */
    xr_str_t       *values;         /* XR_FT_CODE */
    size_t          nvalues;
    xr_sfield_t    *children;       /* XR_FT_LIST */
    size_t          nchildren;
    int             line;
};

typedef enum {
    XR_TXN_QUERY = 0,   /* may be cached */
    XR_TXN_WRITE,       /* changes state, not money; may invalidate */
    XR_TXN_MONEY        /* idempotent by key, never done twice */
} xr_txn_kind_e;

typedef struct {
    xr_str_t        name;           /* "settle" */
    xr_txn_kind_e   kind;
    unsigned        cacheable:1;
    xr_str_t       *key;            /* cache / idempotency key fields */
    size_t          nkey;
    xr_str_t       *invalidates;    /* cached txns this write invalidates */
    size_t          ninvalidates;
    xr_sfield_t    *fields[2];      /* [XR_DIR_REQUEST], [XR_DIR_RESPONSE] */
    size_t          nfields[2];
    int             line;
} xr_stxn_t;

typedef struct {
    xr_str_t        domain;
    xr_str_t        route_field;    /* "@dest" or a body path */
    xr_str_t        route_table;    /* optional: table mapping the key */
    xr_stxn_t      *txns;
    size_t          ntxns;
    const char     *file;
} xr_schema_t;


/* ---- profile --------------------------------------------------------- */

typedef enum {
    XR_CHARSET_UTF8 = 0,
    XR_CHARSET_GBK
} xr_charset_e;

typedef enum {
    XR_AMOUNT_DEFAULT = 0,  /* the profile's */
    XR_AMOUNT_YUAN,         /* "145.00" */
    XR_AMOUNT_FEN           /* 14500 */
} xr_amount_unit_e;

typedef enum {
    XR_WIRE_AUTO = 0,       /* string, or number where the codec has them */
    XR_WIRE_STRING,
    XR_WIRE_NUMBER,
    XR_WIRE_BOOL
} xr_wire_type_e;

typedef struct {
    xr_str_t        name;           /* "datetime" */
    xr_str_t        pattern;        /* "%Y-%m-%d %H:%M:%S" or "epoch_ms" */
} xr_timefmt_t;

typedef struct {
    xr_str_t        canon;
    xr_str_t        wire;
} xr_code_t;

typedef struct {
    xr_str_t        name;
    xr_code_t      *codes;
    size_t          ncodes;
    xr_str_t        default_wire;   /* "default" entry, may be empty */
    /* every canon / wire value of codes[] is plain JSON string text */
    unsigned        canon_plain:1;
    unsigned        wire_plain:1;
    int             line;
} xr_table_t;

typedef struct xr_map_s    xr_map_t;
typedef struct xr_wnode_s  xr_wnode_t;
typedef struct xr_wplan_s  xr_wplan_t;     /* below */

struct xr_map_s {
    xr_str_t            canon;      /* "@msg_id", "cert_no", "items" */
    xr_env_e            env;        /* XR_ENV_NONE for body fields */
    const xr_sfield_t  *sf;         /* schema field for body fields */
    xr_str_t            wire;       /* wire path, relative inside lists */
    xr_str_t            wire_parent;    /* wire up to the last '.' */
    xr_str_t            wire_key;       /* after it */
    xr_wire_type_e      as;
    xr_amount_unit_e    amount;
    const xr_timefmt_t *time;
    const xr_table_t   *table;
    size_t              max;        /* wire length limit; 0 = schema's */
    unsigned            required:1; /* stricter than the schema */
    unsigned            is_const:1; /* `set`: a wire constant */
    unsigned            canon_again:1;  /* an earlier map of its list has
                                           the same canon (slices) */
    xr_str_t            value;      /* the constant */
    unsigned            value_plain:1;  /* it is printable ASCII but '"',
                                           '\\' */
    xr_map_t           *children;   /* list element mappings */
    size_t              nchildren;
    const xr_wplan_t   *plan;       /* lists: the items' write plan */
    unsigned            time_numeric:1; /* time=epoch or epoch_ms */
    unsigned            time_plain:1;   /* its pattern's literal text is
                                           printable ASCII but '"', '\\' */
    int                 line;
};

typedef struct {
    xr_map_t       *maps;
    size_t          nmaps;
} xr_mapset_t;


/*
 * A write plan: the wire objects one direction of a transaction (or the
 * items of a list) writes, as a tree of keys built at load from the map
 * paths in the order the mapper would add them.  Each map that writes is
 * a slot: envelope maps, then (answers) the result and message fields,
 * then the transaction's maps, skipping what the encoder skips.  With it
 * an adapter writes straight from the slot values (xr_map_encode_plan())
 * instead of a wire tree.  Profiles where the result or message field
 * meets a map's path have none: the wire tree handles that.
 */
struct xr_wnode_s {
    xr_str_t            key;
    unsigned            plain:1;    /* key needs no escaping in JSON */
    unsigned            pii:3;      /* leaf: its field's xr_pii_e
                                       (xr_mask.h), for a writer's error
                                       that quotes the value */
    int                 slot;       /* leaf: its slot; objects: -1 */
    size_t              first;      /* the first slot under it */
    size_t              index;      /* in the plan, for presence flags */
    const xr_wplan_t   *items;      /* leaf of a list: its items' plan */
    xr_wnode_t         *parent;
    xr_wnode_t         *child;      /* objects: first child, in order */
    xr_wnode_t         *next;
};

struct xr_wplan_s {
    xr_wnode_t         *root;
    xr_wnode_t        **leaves;     /* by slot */
    size_t              nslots;
    size_t              nnodes;
    unsigned            depth;      /* deepest object or array under root,
                                       list items included */
};

/* A map of a transaction or list that writes: a slot of its plan. */
#define xr_map_writes(m)                                                      \
    ((m)->is_const || ((m)->env == XR_ENV_NONE && (m)->value.len == 0))

/* The value of a slot, made by xr_map_encode_plan(). */
typedef enum {
    XR_WV_ABSENT = 0,
    XR_WV_STRING,       /* text to quote and escape */
    XR_WV_NUMBER,       /* a number's text, checked by the writer */
    XR_WV_BOOL,         /* "true" or "false" */
    XR_WV_LIST          /* items */
} xr_wv_kind_e;

typedef struct xr_wvals_s  xr_wvals_t;

typedef struct {
    xr_wv_kind_e        kind;
    /*
     * text is printable ASCII but '"' and '\\' (a string needs no
     * escaping), and a valid JSON number when kind is XR_WV_NUMBER
     */
    unsigned            plain:1;
    xr_str_t            text;
    const xr_wvals_t   *items;      /* XR_WV_LIST */
    size_t              nitems;
} xr_wval_t;

/* One object written by a plan: the values of its slots. */
struct xr_wvals_s {
    const xr_wplan_t   *plan;
    xr_wval_t          *v;          /* by slot */
    unsigned char      *present;    /* by node index */
};


/* Fixed-width layouts (codec fixed). */

typedef enum {
    XR_FX_TEXT = 0,     /* charset text, right-padded with spaces */
    XR_FX_NUM,          /* ASCII digits, left-padded with '0' */
    XR_FX_BCD,          /* packed BCD: 2 digits a byte */
    XR_FX_BIN,          /* big-endian unsigned integer -> decimal text */
    XR_FX_HEX           /* raw bytes <-> upper-case hex text */
} xr_fx_enc_e;

typedef struct {
    xr_str_t        name;
    size_t          off;
    size_t          len;            /* bytes on the wire */
    xr_fx_enc_e     enc;
    xr_str_t        fill;           /* constant written on encode, if set */
    int             line;
} xr_fxfield_t;

typedef struct xr_layout_s  xr_layout_t;

struct xr_layout_s {
    xr_fxfield_t   *fields;
    size_t          nfields;
    size_t          size;           /* bytes of the fixed part */
    xr_str_t        repeat_name;    /* member name of the repeated records */
    xr_str_t        count_field;    /* fixed-part field holding the count;
                                       empty: records run to the end */
    xr_layout_t    *repeat;         /* record layout, or NULL */
    int             line;
};

typedef struct {
    const xr_stxn_t *stxn;
    xr_str_t        code;           /* the region's transaction code */
    xr_str_t        path;           /* URL path at the region's system */
    xr_mapset_t     maps[2];
    xr_layout_t    *layout[2];      /* codec fixed: body after the header */
    const xr_wplan_t *plan[2];      /* NULL: encode through a wire tree */
    int             line;
} xr_ptxn_t;

typedef struct xr_profile_s {
    xr_str_t            name;           /* "shanghai.medical" */
    xr_str_t            region_name;    /* "shanghai" */
    xr_str_t            region;         /* "310000"; empty for national */
    xr_str_t            domain;
    const xr_schema_t  *schema;
    xr_str_t            description;

    xr_str_t            codec;
    const xr_adapter_t *adapter;
    xr_charset_e        charset;
    xr_str_t            content_type;   /* overrides the adapter's */
    xr_str_t            http_content_type;  /* with "; charset=", built
                                               at load */
    xr_amount_unit_e    amount;         /* default for amount fields */

    xr_timefmt_t       *times;
    size_t              ntimes;
    xr_table_t         *tables;
    size_t              ntables;

    xr_mapset_t         env[2];         /* envelope, every transaction */
    xr_ptxn_t          *txns;
    size_t              ntxns;

    /* answers: success convention and error shape */
    xr_str_t            result_field;   /* wire path of the result code */
    xr_str_t            ok_value;       /* success value written */
    xr_str_t           *ok_values;      /* every value read as success */
    size_t              nok_values;
    xr_str_t            fail_value;     /* generic failure value */
    xr_wire_type_e      result_as;
    xr_str_t            message_field;  /* wire path of the error text */
    const xr_table_t   *errors;         /* canonical error -> wire code */
    int                 error_status;   /* HTTP status of error answers;
                                           0: from the error table */

    xr_layout_t        *header[2];      /* codec fixed */

    /* `seal nhsa_mobile [member=...]` (xr_seal.h); empty: not sealed */
    xr_str_t            seal;
    xr_str_t            seal_member;

    const char         *file;
} xr_profile_t;


/* ---- configuration: everything loaded from one directory ------------ */

typedef struct {
    xr_str_t        name;           /* "shanghai" */
    xr_str_t        code;           /* "310000" */
    xr_str_t        label;          /* "上海" */
} xr_region_t;

typedef struct {
    xr_pool_t      *pool;
    xr_region_t    *regions;
    size_t          nregions;
    xr_schema_t    *schemas;
    size_t          nschemas;
    xr_profile_t   *profiles;
    size_t          nprofiles;
    xr_table_t     *tables;         /* shared: config/tables/ */
    size_t          ntables;
    const char     *dir;
} xr_config_t;

/*
 * Loads <dir>/regions.conf, <dir>/schema/ *.conf, <dir>/tables/ *.conf and
 * <dir>/profiles/ *.conf.  On failure ctx->err is XR_E_CONFIG and errstr is
 * "file:line: message"; *out is NULL.
 */
int xr_config_load(xr_ctx_t *ctx, const char *dir, xr_config_t **out);
/* Loads a single profile file against an already loaded configuration. */
int xr_config_add_profile(xr_ctx_t *ctx, xr_config_t *cfg, const char *file);
void xr_config_free(xr_config_t *cfg);

const xr_profile_t *xr_config_profile(const xr_config_t *cfg, xr_str_t name);
const xr_region_t *xr_config_region(const xr_config_t *cfg, xr_str_t name);
const xr_region_t *xr_config_region_by_code(const xr_config_t *cfg,
    xr_str_t code);
const xr_schema_t *xr_config_schema(const xr_config_t *cfg, xr_str_t domain);
const xr_table_t *xr_config_table(const xr_config_t *cfg, xr_str_t name);

const xr_stxn_t *xr_schema_txn(const xr_schema_t *s, xr_str_t name);
const xr_ptxn_t *xr_profile_txn(const xr_profile_t *p, xr_str_t canon_name);
const xr_ptxn_t *xr_profile_txn_by_code(const xr_profile_t *p,
    xr_str_t wire_code);
/* The envelope mapping of an "@field", or NULL. */
const xr_map_t *xr_profile_env_map(const xr_profile_t *p, xr_dir_e dir,
    xr_env_e env);
const xr_timefmt_t *xr_profile_time(const xr_profile_t *p, xr_str_t name);

/* Code tables: canonical -> wire and back.  XR_DECLINED when unmapped. */
int xr_table_to_wire(const xr_table_t *t, xr_str_t canon, xr_str_t *wire);
int xr_table_to_canon(const xr_table_t *t, xr_str_t wire, xr_str_t *canon);

#endif /* XR_PROFILE_H */
