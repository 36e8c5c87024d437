
/*
 * The core's arena (xr_pool_t) over an nginx pool.
 *
 * The core allocates through the allocator its pool was created with; here
 * that is ngx_palloc() on the request's (or the configuration's) pool.
 * Nothing is freed one by one: the nginx pool ends everything at once, so
 * the arena has no free function and never needs xr_pool_destroy().
 */


#include "ngx_http_xregion_module.h"


/*
 * Blocks this size or larger come from the nginx pool's large list (one
 * malloc each, freed with the pool); a request needs only a few.
 */
#define NGX_HTTP_XREGION_BLOCK  16384


static void *ngx_http_xregion_pool_alloc(void *data, size_t size);


xr_pool_t *
ngx_http_xregion_pool_create(ngx_pool_t *pool)
{
    return xr_pool_create_with(ngx_http_xregion_pool_alloc, NULL, pool,
                               NGX_HTTP_XREGION_BLOCK);
}


static void *
ngx_http_xregion_pool_alloc(void *data, size_t size)
{
    return ngx_palloc((ngx_pool_t *) data, size);
}
