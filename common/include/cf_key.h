/* cf_key: private key material as django-ca handles it: key parameters (key_type, key_size,
 * elliptic_curve) validated and defaulted, key generation, signature hash algorithms, PKCS#8
 * (encrypted with PBES2: scrypt + AES-256-CBC), and public keys as JWK (RFC 7517/7518/8037)
 * with their RFC 7638 thumbprints.
 *
 * Rules (django-ca's CertificateAuthorityManager.init and validate_private_key_parameters):
 * - key_type: "RSA" (default), "DSA", "EC", "Ed25519", "Ed448" (matched without regard to
 *   case, returned in this spelling).
 * - key_size: RSA and DSA only; a power of two and at least [keys] min_size (1024) bits, at
 *   most [keys] max_size (8192). Defaults: RSA [keys] default_rsa_size (4096), DSA
 *   [keys] default_dsa_size (2048). Given for EC, Ed25519 or Ed448: an error.
 * - elliptic_curve: EC only; django-ca's names (secp256r1, secp384r1, secp521r1, secp256k1,
 *   secp224r1, secp192r1, sect163k1 ... sect571r1, brainpoolP256r1/P384r1/P512r1). Default
 *   [keys] default_elliptic_curve (secp256r1). Given for another key type: an error.
 * - algorithm: "SHA-224", "SHA-256", "SHA-384", "SHA-512", "SHA3/224", "SHA3/256", "SHA3/384",
 *   "SHA3/512" (django-ca's spelling; "SHA3-256" is accepted too). Default SHA-512 for RSA
 *   and EC, SHA-256 for DSA; Ed25519 and Ed448 take none (their digest is NULL).
 * Errors: "invalid_value" or "invalid_type" with the field ("key_type", "key_size",
 * "elliptic_curve", "algorithm"); PKCS#8: "wrong_password", "invalid_key"; JWK:
 * "missing_field", "invalid_type", "invalid_value", "unsupported_key". */
#ifndef CF_KEY_H
#define CF_KEY_H

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

#include "cf_config.h"
#include "cf_error.h"

#define CF_KEY_TYPE_MAX  16
#define CF_KEY_CURVE_MAX 32
/* Room for an RFC 7638 SHA-256 thumbprint in base64url, with its NUL. */
#define CF_KEY_THUMBPRINT_MAX 44

/* Validated parameters of a key to generate: a plain value, filled by cf_key_params_init. */
typedef struct {
    char key_type[CF_KEY_TYPE_MAX];        /* "RSA", "DSA", "EC", "Ed25519" or "Ed448" */
    int key_size;                          /* bits for RSA and DSA; 0 for the others */
    char elliptic_curve[CF_KEY_CURVE_MAX]; /* django-ca's curve name for EC; "" otherwise */
} cf_key_params_t;

/* Validate and default KEY_TYPE (NULL: "RSA"), KEY_SIZE (0: default) and ELLIPTIC_CURVE
 * (NULL: default) into PARAMS; CFG (may be NULL) gives [keys] defaults. 0 or -1 + err. */
int cf_key_params_init(cf_key_params_t *params, cf_config_t *cfg, const char *key_type,
                       int key_size, const char *elliptic_curve, cf_error_t *err);
/* Same from the members "key_type", "key_size", "elliptic_curve" of a JSON object (absent
 * or null: default; other members are ignored). 0 or -1 + err. */
int cf_key_params_from_json(cf_key_params_t *params, cf_config_t *cfg, const json_t *obj,
                            cf_error_t *err);
/* The parameters of an existing KEY (to make another key like it). 0 or -1 + err. */
int cf_key_params_from_key(cf_key_params_t *params, const EVP_PKEY *key, cf_error_t *err);

/* Generate a key (caller owns, EVP_PKEY_free) or NULL + err. RSA uses e = 65537. */
EVP_PKEY *cf_key_generate(const cf_key_params_t *params, cf_error_t *err);

/* "RSA", "DSA", "EC", "Ed25519", "Ed448", or NULL for other keys (static string). */
const char *cf_key_type_name(const EVP_PKEY *key);
/* Size in bits of an RSA or DSA key; 0 for other keys. */
int cf_key_size(const EVP_PKEY *key);
/* django-ca's name of an EC key's curve ("secp256r1"; static string), or NULL. */
const char *cf_key_curve(const EVP_PKEY *key);
/* True when CERT holds the public half of KEY. */
bool cf_key_matches_cert(const EVP_PKEY *key, const X509 *cert);

/* The digest for an algorithm name (static, never freed), or NULL + err ("algorithm"). */
const EVP_MD *cf_key_algorithm_md(const char *name, cf_error_t *err);
/* django-ca's name of a digest ("SHA-256", "SHA3/256"; static string), or NULL. */
const char *cf_key_algorithm_name(const EVP_MD *md);
/* The default algorithm for KEY: "SHA-512" (RSA, EC), "SHA-256" (DSA), NULL (Ed25519,
 * Ed448, unknown). */
const char *cf_key_default_algorithm(const EVP_PKEY *key);
/* Check ALGORITHM (NULL or "": the default) for KEY and give its digest in *MD_OUT (NULL for
 * Ed25519/Ed448). An algorithm for Ed25519/Ed448 is an error. 0 or -1 + err. */
int cf_key_check_algorithm(const EVP_PKEY *key, const char *algorithm, const EVP_MD **md_out,
                           cf_error_t *err);

/* KEY as DER PKCS#8 in *DER (caller owns, free with cf_key_der_free) and *LEN. A PASSWORD
 * (NULL or "": none) gives EncryptedPrivateKeyInfo with PBES2, scrypt (N 2^14, r 8, p 1,
 * 16 byte random salt) and AES-256-CBC; else an unencrypted PrivateKeyInfo. 0 or -1 + err. */
int cf_key_to_pkcs8(const EVP_PKEY *key, const char *password, unsigned char **der, size_t *len,
                    cf_error_t *err);
/* Wipe and free DER from cf_key_to_pkcs8; nulls the caller's pointer. */
void cf_key_der_free(unsigned char **der_p, size_t len);
/* Load a private key: PKCS#8 DER or PEM, encrypted or not, or a traditional PEM/DER key
 * (caller owns) or NULL + err: "wrong_password" (the key is encrypted and PASSWORD is
 * missing or does not decrypt it), "invalid_key" (not a key we can read). A password given
 * for an unencrypted key is ignored. */
EVP_PKEY *cf_key_from_pkcs8(const unsigned char *der, size_t len, const char *password,
                            cf_error_t *err);

/* The public key as a JWK object (new reference): RSA {kty, n, e}, EC {kty, crv, x, y} for
 * P-256, P-384, P-521 and secp256k1, OKP {kty, crv, x} for Ed25519 and Ed448. Other keys:
 * NULL + err "unsupported_key". */
json_t *cf_key_public_jwk(const EVP_PKEY *key, cf_error_t *err);
/* A public key from a JWK (private members are ignored) or NULL + err with the member as
 * field ("kty", "crv", "n", "e", "x", "y"). EC points are checked to be on the curve. */
EVP_PKEY *cf_key_from_jwk(const json_t *jwk, cf_error_t *err);
/* RFC 7638 thumbprint (SHA-256, base64url) of a public JWK into OUT (at least
 * CF_KEY_THUMBPRINT_MAX bytes). 0 or -1 (not a JWK of a supported kty, or OUT too small). */
int cf_key_jwk_thumbprint(const json_t *jwk, char *out, size_t outlen);

#endif
