/* cf_ocsp_request: what certfleet-ocspd reads from an OCSP client (RFC 6960, profiled by
 * RFC 5019): the CertID of the one certificate asked about, taken from hostile bytes, plus
 * the small unsigned error OCSPResponses and the base64 of the GET form.
 *
 * The request's optional signature and extensions (a nonce) are ignored: responses are
 * pre-signed, so a nonce cannot be echoed (RFC 5019 section 2.1.2). */
#ifndef CF_OCSP_REQUEST_H
#define CF_OCSP_REQUEST_H

#include <stdbool.h>
#include <stddef.h>

#include "cf_error.h"

/* Largest OCSPRequest the parser looks at (a SHA-1 request without extensions is ~75 bytes;
 * one with a nonce and a signature a few KiB). */
#define CF_OCSP_REQUEST_MAX 65536
/* Longest hash kept from a CertID (SHA-512). */
#define CF_OCSP_HASH_MAX 64
/* Longest serial taken (RFC 5280 4.1.2.2: 20 octets; a little slack for broken issuers). */
#define CF_OCSP_SERIAL_MAX_OCTETS 32

/* The CertID of an OCSP request. */
typedef struct {
    int hash_nid;                                   /* NID of hashAlgorithm (NID_sha1, ...) */
    unsigned char name_hash[CF_OCSP_HASH_MAX];      /* issuerNameHash */
    size_t name_hash_len;                           /* its length */
    unsigned char key_hash[CF_OCSP_HASH_MAX];       /* issuerKeyHash */
    size_t key_hash_len;                            /* its length */
    char serial[2 * CF_OCSP_SERIAL_MAX_OCTETS + 2]; /* upper-case hex as cf_serial_hex writes
                                                       it; "-" first when negative */
    bool has_nonce;                                 /* the request carried a nonce */
} cf_ocsp_certid_t;

/* OCSPResponseStatus values of the unsigned error responses (RFC 6960 4.2.1). */
typedef enum {
    CF_OCSP_MALFORMED_REQUEST = 1,
    CF_OCSP_INTERNAL_ERROR = 2,
    CF_OCSP_TRY_LATER = 3,
    CF_OCSP_UNAUTHORIZED = 6,
} cf_ocsp_error_status_t;

/* Parse the DER of an OCSPRequest holding exactly one Request into OUT. Any hash algorithm
 * is parsed; callers answering per RFC 5019 accept only SHA-1 (cf_ocsp_certid_is_sha1).
 * 0, or -1 + err ("malformed_request") for anything else: too long, not DER, trailing
 * bytes, zero or several Requests, hashes of the wrong size. */
int cf_ocsp_request_parse(const unsigned char *der, size_t len, cf_ocsp_certid_t *out,
                          cf_error_t *err);
/* True when the CertID uses SHA-1 with 20-byte hashes. */
bool cf_ocsp_certid_is_sha1(const cf_ocsp_certid_t *id);

/* The DER of the unsigned OCSPResponse with STATUS (static storage, 5 bytes), length in
 * *LEN; NULL for a status that is not one of cf_ocsp_error_status_t. */
const unsigned char *cf_ocsp_error_response(cf_ocsp_error_status_t status, size_t *len);

/* Decode the base64 of a GET request (RFC 5019 appendix A): the standard alphabet; padding
 * may be missing; "%2B", "%2F", "%3D" are undone if the URL decoding was not; a ' ' counts as
 * '+' (form decoding); the URL-safe '-' and '_' are accepted too. New bytes (caller owns,
 * free), length in *OUT_LEN, or NULL when the text is not base64 or decodes to more than
 * MAX bytes. */
unsigned char *cf_ocsp_base64_decode(const char *text, size_t text_len, size_t max,
                                     size_t *out_len);

#endif
