/*
 * The table of built-in adapters.
 */

#include <stddef.h>

#include "xr_adapter.h"
#include "../core/xr_charset.h"


static const xr_adapter_t  *xr_builtin_adapters[] = {
    &xr_adapter_json,
    &xr_adapter_xml,
    &xr_adapter_fixed,
    NULL
};

static int  xr_adapters_ready;


const xr_adapter_t *
xr_adapter_find(xr_str_t name)
{
    const xr_adapter_t  **a;

    for (a = xr_builtin_adapters; *a; a++) {
        if (xr_str_eq(name, (*a)->name)) {
            return *a;
        }
    }
    return NULL;
}


int
xr_adapters_init(void)
{
    const xr_adapter_t  **a;

    if (xr_adapters_ready) {
        return XR_OK;
    }
    for (a = xr_builtin_adapters; *a; a++) {
        if ((*a)->version != XR_ADAPTER_VERSION) {
            return XR_ERROR;
        }
        if ((*a)->init && (*a)->init() != XR_OK) {
            return XR_ERROR;
        }
    }
    xr_adapters_ready = 1;
    return XR_OK;
}


void
xr_adapters_cleanup(void)
{
    const xr_adapter_t  **a;

    xr_charset_cleanup();

    if (!xr_adapters_ready) {
        return;
    }
    for (a = xr_builtin_adapters; *a; a++) {
        if ((*a)->cleanup) {
            (*a)->cleanup();
        }
    }
    xr_adapters_ready = 0;
}
