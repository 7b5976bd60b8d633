/* cf_csr: a certificate signing request read and checked for issuance.
 *
 * OpenSSL 3.0 decodes a request's public key while it parses the request (d2i_X509_REQ),
 * through its provider decoders, and that costs more than signing the certificate (see
 * bench/RESULTS.md, "Issuance re-measured"). The signer never needs the decoded key: only the
 * signature check does. So an EC key on a named curve and an Ed25519 key are read with an
 * ASN.1 template that keeps the SubjectPublicKeyInfo as algorithm and bits, and the signature
 * is checked with a key made straight from the curve and point (EVP_PKEY_fromdata, which
 * refuses a point off the curve) or from the raw Ed25519 key. Any other request (other key
 * types, parameters, signature algorithms, unused bits) goes the usual way, d2i_X509_REQ and
 * X509_REQ_verify, which decides. Both ways accept and refuse the same requests. */
#ifndef CF_CSR_H
#define CF_CSR_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#include "cf_error.h"

typedef struct {
    const X509_NAME *subject;  /* the request's subject (borrowed from the parsed request) */
    const X509_PUBKEY *pubkey; /* its SubjectPublicKeyInfo as received (key not decoded) */
    const unsigned char *der;  /* the request as received (borrowed from the caller) */
    size_t der_len;            /* its length */
    bool fast;                 /* read by the template (else by d2i_X509_REQ) */
    void *parsed;              /* the template's structure, or the X509_REQ (owned) */
    X509_PUBKEY *own_pubkey;   /* the SubjectPublicKeyInfo made for the fast way (owned) */
} cf_csr_t;

/* Read the DER request DER (LEN bytes, which must stay valid while OUT is used) and check its
 * signature. 0, or -1 with "invalid_csr" (field "params.csr") and OUT cleared. */
int cf_csr_read(const unsigned char *der, size_t len, cf_csr_t *out, cf_error_t *err);
/* Free what OUT holds; a cleared one may be cleared again. */
void cf_csr_clear(cf_csr_t *csr);

#endif
