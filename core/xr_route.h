/*
 * Routing: the destination region of a canonical message, and longest-prefix
 * tables over 6-digit administrative division codes (GB/T 2260).
 *
 * A prefix is 1 to 6 digits ("31", "3201", "320100"); "*" or "" is the
 * default entry.  Lookups take a 6-digit code and return the entry with the
 * longest matching prefix.  Tables are built at configuration time from the
 * config pool and read-only afterwards.
 */

#ifndef XR_ROUTE_H
#define XR_ROUTE_H

#include "xr_core.h"
#include "xr_msg.h"
#include "xr_profile.h"

/*
 * The destination region code of msg, by the domain schema's `route` rule:
 * medical: @dest (insuplc_admdvs); transit: the card issuer's GB/T 13497
 * city code through table citycode; gov: the target province.
 * Errors: XR_E_FIELD_MISSING (no key), XR_E_REGION_UNKNOWN (not a 6-digit
 * code, or no mapping).
 */
int xr_route_region(xr_ctx_t *ctx, const xr_config_t *cfg,
    const xr_msg_t *msg, xr_str_t *region);

/* 6 digits, all numeric. */
int xr_region_code_valid(xr_str_t code);

typedef struct {
    xr_str_t        prefix;
    void           *value;
    int             line;
} xr_prefix_entry_t;

typedef struct {
    xr_prefix_entry_t  *entries;
    size_t              n;
    size_t              cap;
    xr_pool_t          *pool;
} xr_prefix_table_t;

void xr_prefix_init(xr_prefix_table_t *t, xr_pool_t *pool);
/*
 * XR_DECLINED when the same prefix is already there (an overlapping route);
 * XR_ERROR when the prefix is not 0-6 digits or "*".
 */
int xr_prefix_add(xr_prefix_table_t *t, xr_str_t prefix, void *value,
    int line);
/* NULL when nothing matches and no default is set. */
const xr_prefix_entry_t *xr_prefix_lookup(const xr_prefix_table_t *t,
    xr_str_t code);

#endif /* XR_ROUTE_H */
