/* cf_issue: make an X.509 v3 certificate from the data model: subject, public key, extension
 * models, validity and the issuer's certificate and key. Shared by every worker that signs
 * certificates (CA creation and issuance in the signer, OCSP responder keys in ocsp). */
#ifndef CF_ISSUE_H
#define CF_ISSUE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdint.h>

#include "cf_error.h"

#define CF_SERIAL_BYTES 20

typedef struct {
    const json_t *subject;              /* Name model */
    EVP_PKEY *public_key;               /* the subject's key (borrowed) */
    const json_t *extensions;           /* extension models, in order (borrowed) */
    int64_t not_before;                 /* Unix seconds */
    int64_t not_after;                  /* Unix seconds */
    X509 *issuer_cert;                  /* NULL: self-signed (issuer = subject) */
    EVP_PKEY *issuer_key;               /* signing key (borrowed) */
    const EVP_MD *md;                   /* digest; NULL for Ed25519/Ed448 */
    const ASN1_INTEGER *serial;         /* NULL: a fresh random one */
    const X509_PUBKEY *public_key_info; /* the subject's encoded key (a CSR's): copied as it is,
                                         * which spares OpenSSL 3 re-encoding PUBLIC_KEY; NULL:
                                         * use public_key */
} cf_issue_t;

/* Sign a certificate (caller owns). NULL + err. */
X509 *cf_issue_cert(const cf_issue_t *req, cf_error_t *err);

/* A serial of 159 random bits: positive, 20 octets at most (RFC 5280 4.1.2.2), unique in
 * practice (collisions are still refused by the database). Caller owns. */
ASN1_INTEGER *cf_serial_random(void);

/* The subject_key_identifier model for KEY (SHA-1 of the public key bits, RFC 5280 4.2.1.2
 * method 1). Caller owns. */
json_t *cf_issue_ski_model(EVP_PKEY *key, cf_error_t *err);
/* The same from an encoded public key (a CSR's): no key decoding, so much cheaper. */
json_t *cf_issue_ski_model_pubkey(const X509_PUBKEY *pub, cf_error_t *err);
/* The authority_key_identifier model for certificates ISSUER signs: its SKI when it has one,
 * else the SHA-1 of its key. Caller owns. */
json_t *cf_issue_aki_model(X509 *issuer, cf_error_t *err);

/* The CRL shard of a certificate of a CA with SHARDS shards: its serial's low 32 bits modulo
 * SHARDS (0 when SHARDS <= 1). Fixed at issuance: it is written into the certificate's CRL
 * distribution point URL. */
int cf_issue_crl_shard(const ASN1_INTEGER *serial, int shards);

/* PEM text of CERT (caller frees). */
char *cf_cert_pem(X509 *cert);
/* DER of CERT in *DER (caller frees with OPENSSL_free); length or -1. */
int cf_cert_der(X509 *cert, unsigned char **der);

#endif
