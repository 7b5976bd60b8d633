/* cf_jws: JSON Web Signatures as ACME (RFC 8555 6.2) uses them: the flattened JSON
 * serialization {"protected", "payload", "signature"}, algorithms RS256, ES256, ES384,
 * ES512 and EdDSA (Ed25519), a protected header with exactly one of "jwk" and "kid", plus
 * "nonce" and "url". Parsing is bounded and never trusts the input; verification checks
 * that the algorithm fits the key. Also the client side (signing), for the benchmark client
 * and the tests, and ACME key authorizations (RFC 8555 8.1).
 *
 * Error codes (cf_error_t.code) are ACME problem types without their
 * "urn:ietf:params:acme:error:" prefix: "malformed" (field: "protected", "payload",
 * "signature", "protected.alg", "protected.jwk", "protected.kid", "protected.nonce",
 * "protected.url", ...), "badSignatureAlgorithm" (field "protected.alg"), "unauthorized"
 * (a signature that does not verify). */
#ifndef CF_JWS_H
#define CF_JWS_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stddef.h>

#include "cf_error.h"

#define CF_JWS_MAX_BYTES 65536 /* the largest JWS body accepted (a CSR fits easily) */
#define CF_JWS_MAX_DEPTH 16    /* the deepest JSON nesting accepted in body, header, payload */

typedef struct {
    json_t *header;           /* the decoded protected header (owned) */
    const char *alg;          /* borrowed from header: "RS256", "ES256", ... */
    const char *nonce;        /* borrowed; NULL when absent */
    const char *url;          /* borrowed; NULL when absent */
    const char *kid;          /* borrowed; NULL when absent */
    const json_t *jwk;        /* borrowed; NULL when absent */
    unsigned char *payload;   /* decoded payload (owned, NUL-terminated), may be empty */
    size_t payload_len;       /* 0: POST-as-GET */
    json_t *payload_json;     /* the payload parsed as a JSON object, NULL when empty */
    char *signing_input;      /* "<protected b64>.<payload b64>" (owned) */
    unsigned char *signature; /* decoded signature (owned) */
    size_t signature_len;
} cf_jws_t;

/* Parse a flattened JWS (BODY of LEN bytes, not NUL-terminated): JSON object with exactly
 * the members protected, payload, signature (an unprotected "header" is refused), base64url
 * without padding, a protected header that is a JSON object with a supported "alg", exactly
 * one of jwk/kid, and a payload that is empty or a JSON object. NULL + err. */
cf_jws_t *cf_jws_parse(const char *body, size_t len, cf_error_t *err);
void cf_jws_destroy(cf_jws_t **self_p);

/* Verify the signature with KEY (the jwk's or the account's). The algorithm must suit the
 * key: RS256 for RSA (2048 bits or more), ES256/ES384/ES512 for P-256/P-384/P-521 (the
 * signature is the raw r||s of RFC 7518 3.4), EdDSA for Ed25519. 0, or -1 + err
 * ("badSignatureAlgorithm" or "unauthorized"). */
int cf_jws_verify(const cf_jws_t *self, EVP_PKEY *key, cf_error_t *err);

/* The JWS algorithm a client uses for KEY: "RS256", "ES256", "ES384", "ES512", "EdDSA", or
 * NULL for other keys. */
const char *cf_jws_alg_for_key(const EVP_PKEY *key);

/* Client side: sign PAYLOAD (a JSON text, or "" for POST-as-GET) with KEY under a protected
 * header {alg, nonce, url, and jwk (KID NULL: the key's public JWK) or kid}. Returns the
 * flattened JWS as JSON text (caller frees), or NULL + err. */
char *cf_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                  const char *payload, cf_error_t *err);

/* RFC 8555 8.1: TOKEN "." base64url(SHA-256 thumbprint of JWK) into OUT. 0 or -1. */
int cf_acme_key_authorization(const char *token, const json_t *jwk, char *out, size_t len);
/* The dns-01 TXT value: base64url(SHA-256(key authorization)) into OUT. 0 or -1. */
int cf_acme_dns01_value(const char *key_authorization, char *out, size_t len);

#endif
