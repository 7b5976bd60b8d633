/* Fuzz target: the OCSP request parser and the GET base64 decoder on untrusted bytes (what
 * certfleet-ocspd reads from any client on the network). Must never crash or leak. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cf_ocsp_request.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_error_t err = {0};
    cf_ocsp_certid_t id;
    if (cf_ocsp_request_parse(data, size, &id, &err) == 0) {
        /* A parsed serial is always a NUL-terminated hex string. */
        if (strlen(id.serial) == 0 || strlen(id.serial) >= sizeof id.serial)
            abort();
        (void)cf_ocsp_certid_is_sha1(&id);
    }
    /* The same bytes as the text of a GET URL, decoded and parsed as the server does. */
    size_t n = 0;
    unsigned char *der = cf_ocsp_base64_decode((const char *)data, size, CF_OCSP_REQUEST_MAX, &n);
    if (der) {
        if (n > CF_OCSP_REQUEST_MAX)
            abort();
        cf_ocsp_request_parse(der, n, &id, &err);
        free(der);
    }
    return 0;
}
