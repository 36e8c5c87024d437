/*
 * The canonical message: an envelope every domain shares (modelled on the
 * NHSA envelope: infno, msgid, mdtrtarea_admvs, insuplc_admdvs, inf_time)
 * and a typed body tree (xr_node_t) whose field names and types come from
 * the domain schema (config/schema/<domain>.conf).
 *
 * Everything a message points to lives in the pool of the ctx that decoded
 * or built it (decoded strings point into the wire text there), or in the
 * configuration (body keys are the schema's field names, codes the
 * tables').
 */

#ifndef XR_MSG_H
#define XR_MSG_H

#include "xr_core.h"
#include "xr_node.h"

typedef enum {
    XR_DIR_REQUEST = 0,
    XR_DIR_RESPONSE = 1
} xr_dir_e;

typedef struct {
    xr_dir_e        dir;

    /* envelope; "@name" in profiles */
    xr_str_t        domain;     /* @domain   medical | transit | gov */
    xr_str_t        txn;        /* @txn      canonical name: "settle" */
    xr_str_t        msg_id;     /* @msg_id   globally unique, caller's */
    xr_str_t        origin;     /* @origin   6-digit region of the caller */
    xr_str_t        dest;       /* @dest     6-digit destination region */
    xr_time_t       time;       /* @time */
    unsigned        has_time:1;
    xr_str_t        caller;     /* @caller   institution / system code */
    xr_str_t        version;    /* @version */

    /* responses */
    unsigned        ok:1;           /* @status */
    xr_str_t        err_code;       /* @err_code canonical: "XR-..." or
                                       "BIZ-<wire code>" */
    xr_str_t        err_msg;        /* @err_msg */
    xr_str_t        ref_msg_id;     /* @ref_msg_id answerer's message id */

    xr_node_t      *body;           /* OBJECT, never NULL once decoded */
} xr_msg_t;

/* Names of the envelope fields as written in profiles, "@txn" ... */
typedef enum {
    XR_ENV_NONE = -1,
    XR_ENV_DOMAIN = 0,
    XR_ENV_TXN,
    XR_ENV_MSG_ID,
    XR_ENV_ORIGIN,
    XR_ENV_DEST,
    XR_ENV_TIME,
    XR_ENV_CALLER,
    XR_ENV_VERSION,
    XR_ENV_STATUS,
    XR_ENV_ERR_CODE,
    XR_ENV_ERR_MSG,
    XR_ENV_REF_MSG_ID,
    XR_ENV_LAST
} xr_env_e;

xr_env_e xr_env_by_name(xr_str_t name);     /* with the leading '@' */
const char *xr_env_name(xr_env_e env);

void xr_msg_init(xr_msg_t *msg, xr_dir_e dir);

/* Canonical message as JSON (the tool's --canonical output, tests). */
int xr_msg_dump(xr_ctx_t *ctx, const xr_msg_t *msg, xr_buf_t *out);

#endif /* XR_MSG_H */
