/*
 * The one table of errors: name, HTTP status, log level, default text.
 * docs/errors.md shows the same table; tests/unit/test_xr_error.c keeps
 * the two in step.
 */

#include <string.h>

#include "xr_core.h"


static const xr_error_info_t  xr_errors[XR_E_LAST] = {
    [XR_E_NONE] =               { "XR-OK", 200, 2, "success" },
    [XR_E_NOMEM] =              { "XR-NOMEM", 500, 0,
                                  "out of memory" },
    [XR_E_INTERNAL] =           { "XR-INTERNAL", 500, 0,
                                  "internal error" },
    [XR_E_BODY_EMPTY] =         { "XR-BODY-EMPTY", 400, 1,
                                  "request body is empty" },
    [XR_E_BODY_TOO_LARGE] =     { "XR-BODY-TOO-LARGE", 413, 1,
                                  "message is larger than the limit" },
    [XR_E_SYNTAX] =             { "XR-SYNTAX", 400, 1,
                                  "message does not parse" },
    [XR_E_TRUNCATED] =          { "XR-TRUNCATED", 400, 1,
                                  "message ends early" },
    [XR_E_CHARSET] =            { "XR-CHARSET", 400, 1,
                                  "invalid byte sequence for the charset" },
    [XR_E_DEPTH] =              { "XR-DEPTH", 400, 1,
                                  "nesting deeper than the limit" },
    [XR_E_XML_DTD] =            { "XR-XML-DTD", 400, 1,
                                  "DTDs, entities and external references "
                                  "are not accepted" },
    [XR_E_FIELD_TOO_LONG] =     { "XR-FIELD-TOO-LONG", 400, 1,
                                  "field is longer than allowed" },
    [XR_E_FIELD_TYPE] =         { "XR-FIELD-TYPE", 400, 1,
                                  "field has the wrong type" },
    [XR_E_FIELD_MISSING] =      { "XR-FIELD-MISSING", 400, 1,
                                  "required field is missing" },
    [XR_E_FIELD_FORMAT] =       { "XR-FIELD-FORMAT", 400, 1,
                                  "field value is malformed" },
    [XR_E_AMOUNT_PRECISION] =   { "XR-AMOUNT-PRECISION", 400, 1,
                                  "amount has more than two decimals" },
    [XR_E_AMOUNT_NEGATIVE] =    { "XR-AMOUNT-NEGATIVE", 400, 1,
                                  "amount may not be negative" },
    [XR_E_AMOUNT_RANGE] =       { "XR-AMOUNT-RANGE", 400, 1,
                                  "amount is out of range" },
    [XR_E_CODE_UNMAPPED] =      { "XR-CODE-UNMAPPED", 422, 1,
                                  "code has no mapping in the target's "
                                  "code table" },
    [XR_E_TXN_UNKNOWN] =        { "XR-TXN-UNKNOWN", 400, 1,
                                  "unknown transaction code" },
    [XR_E_TXN_UNSUPPORTED] =    { "XR-TXN-UNSUPPORTED", 422, 1,
                                  "the destination does not offer this "
                                  "transaction" },
    [XR_E_DOMAIN_MISMATCH] =    { "XR-DOMAIN-MISMATCH", 400, 1,
                                  "profiles belong to different domains" },
    [XR_E_PROFILE_UNKNOWN] =    { "XR-PROFILE-UNKNOWN", 400, 1,
                                  "unknown profile" },
    [XR_E_REGION_UNKNOWN] =     { "XR-REGION-UNKNOWN", 400, 1,
                                  "unknown destination region" },
    [XR_E_NO_ROUTE] =           { "XR-NO-ROUTE", 502, 1,
                                  "no route to the destination region" },
    [XR_E_CONFIG] =             { "XR-CONFIG", 500, 0,
                                  "configuration error" },
    [XR_E_USAGE] =              { "XR-USAGE", 400, 1,
                                  "bad command line" },
    [XR_E_IO] =                 { "XR-IO", 500, 0,
                                  "input/output error" },
    [XR_E_UPSTREAM_REFUSED] =   { "XR-UPSTREAM-REFUSED", 502, 0,
                                  "destination system refused the "
                                  "connection" },
    [XR_E_UPSTREAM_TIMEOUT] =   { "XR-UPSTREAM-TIMEOUT", 504, 0,
                                  "destination system did not answer in "
                                  "time" },
    [XR_E_UPSTREAM_ERROR] =     { "XR-UPSTREAM-ERROR", 502, 0,
                                  "destination system failed" },
    [XR_E_UPSTREAM_BAD_ANSWER] = { "XR-UPSTREAM-BAD-ANSWER", 502, 0,
                                  "destination answer does not decode" },
    [XR_E_UNAUTHORIZED] =       { "XR-UNAUTHORIZED", 401, 1,
                                  "caller is not authenticated" },
    [XR_E_FORBIDDEN] =          { "XR-FORBIDDEN", 403, 1,
                                  "caller may not use this service" },
    [XR_E_RATE_LIMITED] =       { "XR-RATE-LIMITED", 429, 1,
                                  "too many requests" },
    [XR_E_REPLAY] =             { "XR-REPLAY", 401, 1,
                                  "replayed or stale request" },
    [XR_E_BAD_SIGNATURE] =      { "XR-BAD-SIGNATURE", 401, 1,
                                  "signature does not verify" },
    [XR_E_BUSY_RETRY] =         { "XR-BUSY-RETRY", 503, 1,
                                  "try again later" },
    [XR_E_CONFLICT] =           { "XR-CONFLICT", 409, 1,
                                  "same business key with a different "
                                  "message" },
    [XR_E_UNAVAILABLE] =        { "XR-UNAVAILABLE", 503, 1,
                                  "destination is unavailable" },
    [XR_E_AUDIT_INVALID] =      { "XR-AUDIT-INVALID", 500, 0,
                                  "audit log does not verify" },
    [XR_E_AUDIT_UNAVAILABLE] =  { "XR-AUDIT-UNAVAILABLE", 503, 1,
                                  "the audit log cannot take records" },
    [XR_E_CALLER_CLOSED] =      { "XR-CALLER-CLOSED", 499, 1,
                                  "the caller closed the connection before "
                                  "its answer" },
    [XR_E_NOT_FOUND] =          { "XR-NOT-FOUND", 404, 1,
                                  "no such resource" },
    [XR_E_METHOD_NOT_ALLOWED] = { "XR-METHOD-NOT-ALLOWED", 405, 1,
                                  "method not allowed" },
};


const xr_error_info_t *
xr_error_info(xr_err_e err)
{
    if ((int) err < 0 || err >= XR_E_LAST || xr_errors[err].name == NULL) {
        return &xr_errors[XR_E_INTERNAL];
    }
    return &xr_errors[err];
}


int
xr_error_by_name(xr_str_t name, xr_err_e *out)
{
    int  i;

    for (i = 0; i < XR_E_LAST; i++) {
        if (xr_errors[i].name && xr_str_eq(name, xr_errors[i].name)) {
            *out = (xr_err_e) i;
            return XR_OK;
        }
    }
    return XR_DECLINED;
}
