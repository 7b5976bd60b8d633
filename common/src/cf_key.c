/* cf_key: key parameters, generation, hash algorithms, PKCS#8 and JWK (see cf_key.h).
 * OpenSSL's 1/0 returns stay inside this file; callers get 0/-1 and a cf_error_t. */
#include "cf_key.h"

#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/decoder.h>
#include <openssl/err.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <openssl/pkcs12.h>
#include <openssl/rand.h>

#include "cf_base64url.h"

/* scrypt cost for encrypted PKCS#8. N 2^14, r 8, p 1 is RFC 7914's interactive setting and
 * what `openssl pkcs8 -scrypt` writes: 16 MiB and about 50 ms per derivation. A bigger N
 * (2^15 with r 8 needs 32 MiB plus overhead) crosses OpenSSL's default scrypt memory limit
 * of 32 MiB on decryption, so other OpenSSL programs could no longer read our keys. A worker
 * derives a key once per process (keys are cached), so the cost is paid rarely. */
#define S_SCRYPT_N    16384
#define S_SCRYPT_R    8
#define S_SCRYPT_P    1
#define S_SALT_LEN    16
#define S_RSA_MAX_JWK 16384 /* bits: refuse bigger JWK moduli, their verification is a DoS */

/* An elliptic curve: django-ca's name, OpenSSL's, and JOSE's. */
typedef struct {
    const char *name;  /* django-ca's name (cryptography's curve.name) */
    const char *group; /* OpenSSL's group name */
    const char *jwk;   /* JWK "crv" (RFC 7518, RFC 8812), or NULL when JOSE has none */
    size_t bytes;      /* size of a coordinate in a JWK */
} s_curve_t;

static const s_curve_t s_curves[] = {
    {"secp256r1", "prime256v1", "P-256", 32},
    {"secp384r1", "secp384r1", "P-384", 48},
    {"secp521r1", "secp521r1", "P-521", 66},
    {"secp256k1", "secp256k1", "secp256k1", 32},
    {"secp224r1", "secp224r1", NULL, 0},
    {"secp192r1", "prime192v1", NULL, 0},
    {"sect571r1", "sect571r1", NULL, 0},
    {"sect409r1", "sect409r1", NULL, 0},
    {"sect283r1", "sect283r1", NULL, 0},
    {"sect233r1", "sect233r1", NULL, 0},
    {"sect163r2", "sect163r2", NULL, 0},
    {"sect571k1", "sect571k1", NULL, 0},
    {"sect409k1", "sect409k1", NULL, 0},
    {"sect283k1", "sect283k1", NULL, 0},
    {"sect233k1", "sect233k1", NULL, 0},
    {"sect163k1", "sect163k1", NULL, 0},
    {"brainpoolP256r1", "brainpoolP256r1", NULL, 0},
    {"brainpoolP384r1", "brainpoolP384r1", NULL, 0},
    {"brainpoolP512r1", "brainpoolP512r1", NULL, 0},
    {NULL, NULL, NULL, 0},
};

/* A signature hash algorithm: django-ca's name, another accepted spelling, its digest. */
typedef struct {
    const char *name;          /* django-ca's name */
    const char *alias;         /* also accepted */
    const EVP_MD *(*md)(void); /* the digest */
} s_algorithm_t;

static const s_algorithm_t s_algorithms[] = {
    {"SHA-224", "SHA224", EVP_sha224},
    {"SHA-256", "SHA256", EVP_sha256},
    {"SHA-384", "SHA384", EVP_sha384},
    {"SHA-512", "SHA512", EVP_sha512},
    {"SHA3/224", "SHA3-224", EVP_sha3_224},
    {"SHA3/256", "SHA3-256", EVP_sha3_256},
    {"SHA3/384", "SHA3-384", EVP_sha3_384},
    {"SHA3/512", "SHA3-512", EVP_sha3_512},
    {NULL, NULL, NULL},
};

static const char *const s_key_types[] = {"RSA", "DSA", "EC", "Ed25519", "Ed448", NULL};

static const s_curve_t *s_curve_by_name(const char *name)
{
    for (const s_curve_t *c = s_curves; c->name; c++)
        if (strcasecmp(c->name, name) == 0)
            return c;
    return NULL;
}

static const s_curve_t *s_curve_by_group(const char *group)
{
    for (const s_curve_t *c = s_curves; c->name; c++)
        if (strcasecmp(c->group, group) == 0 || strcasecmp(c->name, group) == 0)
            return c;
    return NULL;
}

static const s_curve_t *s_curve_by_jwk(const char *crv)
{
    for (const s_curve_t *c = s_curves; c->name; c++)
        if (c->jwk && strcmp(c->jwk, crv) == 0)
            return c;
    return NULL;
}

static const s_curve_t *s_key_curve(const EVP_PKEY *key)
{
    char group[64];
    size_t len = 0;
    if (!EVP_PKEY_is_a(key, "EC") || EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME,
                                                                    group, sizeof group, &len) != 1)
        return NULL;
    return s_curve_by_group(group);
}

static bool s_power_of_two(int n)
{
    return n > 0 && (n & (n - 1)) == 0;
}

/* Config integer clamped to int (a wild value becomes the default). */
static int s_config_int(cf_config_t *cfg, const char *key, int dflt)
{
    int64_t v = cf_config_get_int(cfg, "keys", key, dflt);
    return v > 0 && v <= INT_MAX ? (int)v : dflt;
}

/* ---------------------------------------------------------------- parameters */

int cf_key_params_init(cf_key_params_t *params, cf_config_t *cfg, const char *key_type,
                       int key_size, const char *elliptic_curve, cf_error_t *err)
{
    memset(params, 0, sizeof *params);
    const char *type = NULL;
    if (!key_type)
        key_type = "RSA";
    for (int i = 0; s_key_types[i]; i++)
        if (strcasecmp(s_key_types[i], key_type) == 0)
            type = s_key_types[i];
    if (!type) {
        cf_error_set(err, "invalid_value", "key_type",
                     "unknown key type \"%.40s\": must be one of RSA, DSA, EC, Ed25519, Ed448",
                     key_type);
        return -1;
    }
    snprintf(params->key_type, sizeof params->key_type, "%s", type);
    bool sized = strcmp(type, "RSA") == 0 || strcmp(type, "DSA") == 0;
    bool ec = strcmp(type, "EC") == 0;

    if (!sized && key_size != 0) {
        cf_error_set(err, "invalid_value", "key_size", "key size is not supported for %s keys",
                     type);
        return -1;
    }
    if (!ec && elliptic_curve) {
        cf_error_set(err, "invalid_value", "elliptic_curve",
                     "elliptic curves are not supported for %s keys", type);
        return -1;
    }
    if (sized) {
        if (key_size == 0)
            key_size = strcmp(type, "RSA") == 0 ? s_config_int(cfg, "default_rsa_size", 4096)
                                                : s_config_int(cfg, "default_dsa_size", 2048);
        int min = s_config_int(cfg, "min_size", 1024);
        int max = s_config_int(cfg, "max_size", 8192);
        /* django-ca's rules: a power of two, at least CA_MIN_KEY_SIZE. The maximum is ours:
         * an 8192-bit RSA key already takes a minute to generate. */
        if (!s_power_of_two(key_size)) {
            cf_error_set(err, "invalid_value", "key_size", "key size %d is not a power of two",
                         key_size);
            return -1;
        }
        if (key_size < min) {
            cf_error_set(err, "invalid_value", "key_size",
                         "key size %d is below the minimum of %d bits", key_size, min);
            return -1;
        }
        if (key_size > max) {
            cf_error_set(err, "invalid_value", "key_size",
                         "key size %d is above the maximum of %d bits", key_size, max);
            return -1;
        }
        params->key_size = key_size;
    }
    if (ec) {
        const char *name = elliptic_curve
                               ? elliptic_curve
                               : cf_config_get(cfg, "keys", "default_elliptic_curve", "secp256r1");
        const s_curve_t *curve = s_curve_by_name(name);
        if (!curve) {
            cf_error_set(err, "invalid_value", "elliptic_curve", "unknown elliptic curve \"%.40s\"",
                         name);
            return -1;
        }
        snprintf(params->elliptic_curve, sizeof params->elliptic_curve, "%s", curve->name);
    }
    return 0;
}

int cf_key_params_from_json(cf_key_params_t *params, cf_config_t *cfg, const json_t *obj,
                            cf_error_t *err)
{
    const char *key_type = NULL;
    const char *curve = NULL;
    int key_size = 0;
    if (!json_is_object(obj)) {
        cf_error_set(err, "invalid_type", "", "key parameters must be an object");
        return -1;
    }
    json_t *v = json_object_get(obj, "key_type");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", "key_type", "key type must be a string");
            return -1;
        }
        key_type = json_string_value(v);
    }
    v = json_object_get(obj, "key_size");
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v)) {
            cf_error_set(err, "invalid_type", "key_size", "key size must be an integer");
            return -1;
        }
        json_int_t n = json_integer_value(v);
        /* 0 would mean "default" below: refuse it here, as every other non-positive size. */
        if (n <= 0 || n > INT_MAX) {
            cf_error_set(err, "invalid_value", "key_size", "key size %lld is not a power of two",
                         (long long)n);
            return -1;
        }
        key_size = (int)n;
    }
    v = json_object_get(obj, "elliptic_curve");
    if (v && !json_is_null(v)) {
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", "elliptic_curve", "elliptic curve must be a string");
            return -1;
        }
        curve = json_string_value(v);
    }
    return cf_key_params_init(params, cfg, key_type, key_size, curve, err);
}

int cf_key_params_from_key(cf_key_params_t *params, const EVP_PKEY *key, cf_error_t *err)
{
    memset(params, 0, sizeof *params);
    const char *type = cf_key_type_name(key);
    if (!type) {
        cf_error_set(err, "unsupported_key", "key_type", "unsupported key type");
        return -1;
    }
    snprintf(params->key_type, sizeof params->key_type, "%s", type);
    params->key_size = cf_key_size(key);
    if (strcmp(type, "EC") == 0) {
        const char *curve = cf_key_curve(key);
        if (!curve) {
            cf_error_set(err, "unsupported_key", "elliptic_curve", "unsupported elliptic curve");
            return -1;
        }
        snprintf(params->elliptic_curve, sizeof params->elliptic_curve, "%s", curve);
    }
    return 0;
}

/* ---------------------------------------------------------------- generation */

/* DSA needs domain parameters first; generating them is most of the cost. */
static EVP_PKEY *s_generate_dsa(int bits)
{
    EVP_PKEY *dom = NULL;
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *kctx = NULL;
    EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
    size_t pbits = (size_t)bits;
    OSSL_PARAM p[] = {OSSL_PARAM_size_t(OSSL_PKEY_PARAM_FFC_PBITS, &pbits), OSSL_PARAM_END};
    if (!pctx || EVP_PKEY_paramgen_init(pctx) != 1 || EVP_PKEY_CTX_set_params(pctx, p) != 1 ||
        EVP_PKEY_paramgen(pctx, &dom) != 1)
        goto out;
    kctx = EVP_PKEY_CTX_new_from_pkey(NULL, dom, NULL);
    if (!kctx || EVP_PKEY_keygen_init(kctx) != 1 || EVP_PKEY_keygen(kctx, &key) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
out:
    EVP_PKEY_CTX_free(kctx);
    EVP_PKEY_CTX_free(pctx);
    EVP_PKEY_free(dom);
    return key;
}

EVP_PKEY *cf_key_generate(const cf_key_params_t *params, cf_error_t *err)
{
    EVP_PKEY *key = NULL;
    const char *type = params->key_type;
    if (strcmp(type, "RSA") == 0) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)params->key_size);
    } else if (strcmp(type, "DSA") == 0) {
        key = s_generate_dsa(params->key_size);
    } else if (strcmp(type, "EC") == 0) {
        const s_curve_t *curve = s_curve_by_name(params->elliptic_curve);
        if (!curve) {
            cf_error_set(err, "invalid_value", "elliptic_curve", "unknown elliptic curve \"%.40s\"",
                         params->elliptic_curve);
            return NULL;
        }
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", curve->group);
    } else if (strcmp(type, "Ed25519") == 0) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    } else if (strcmp(type, "Ed448") == 0) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "ED448");
    } else {
        cf_error_set(err, "invalid_value", "key_type", "unknown key type \"%.40s\"", type);
        return NULL;
    }
    if (!key) {
        cf_error_set(err, "internal", "", "could not generate %s key", type);
        cf_error_add_openssl(err);
    }
    return key;
}

/* ---------------------------------------------------------------- inspection */

const char *cf_key_type_name(const EVP_PKEY *key)
{
    if (!key)
        return NULL;
    /* Plain "RSA" only: RSA-PSS keys carry restrictions django-ca does not model. */
    if (EVP_PKEY_is_a(key, "RSA"))
        return "RSA";
    if (EVP_PKEY_is_a(key, "DSA"))
        return "DSA";
    if (EVP_PKEY_is_a(key, "EC"))
        return "EC";
    if (EVP_PKEY_is_a(key, "ED25519"))
        return "Ed25519";
    if (EVP_PKEY_is_a(key, "ED448"))
        return "Ed448";
    return NULL;
}

int cf_key_size(const EVP_PKEY *key)
{
    if (key && (EVP_PKEY_is_a(key, "RSA") || EVP_PKEY_is_a(key, "DSA")))
        return EVP_PKEY_get_bits(key);
    return 0;
}

const char *cf_key_curve(const EVP_PKEY *key)
{
    const s_curve_t *c = key ? s_key_curve(key) : NULL;
    return c ? c->name : NULL;
}

bool cf_key_matches_cert(const EVP_PKEY *key, const X509 *cert)
{
    if (!key || !cert)
        return false;
    EVP_PKEY *pub = X509_get0_pubkey(cert);
    bool eq = pub && EVP_PKEY_eq(key, pub) == 1;
    ERR_clear_error();
    return eq;
}

/* ---------------------------------------------------------------- algorithms */

const EVP_MD *cf_key_algorithm_md(const char *name, cf_error_t *err)
{
    for (const s_algorithm_t *a = s_algorithms; name && a->name; a++)
        if (strcasecmp(a->name, name) == 0 || strcasecmp(a->alias, name) == 0)
            return a->md();
    cf_error_set(err, "invalid_value", "algorithm",
                 "unknown algorithm \"%.40s\": must be one of SHA-224, SHA-256, SHA-384, "
                 "SHA-512, SHA3/224, SHA3/256, SHA3/384, SHA3/512",
                 name ? name : "");
    return NULL;
}

const char *cf_key_algorithm_name(const EVP_MD *md)
{
    if (!md)
        return NULL;
    for (const s_algorithm_t *a = s_algorithms; a->name; a++)
        if (EVP_MD_get_type(a->md()) == EVP_MD_get_type(md))
            return a->name;
    return NULL;
}

const char *cf_key_default_algorithm(const EVP_PKEY *key)
{
    const char *type = cf_key_type_name(key);
    if (!type)
        return NULL;
    /* django-ca: CA_DEFAULT_SIGNATURE_HASH_ALGORITHM for RSA and EC,
     * CA_DEFAULT_DSA_SIGNATURE_HASH_ALGORITHM for DSA, none for EdDSA. */
    if (strcmp(type, "RSA") == 0 || strcmp(type, "EC") == 0)
        return "SHA-512";
    if (strcmp(type, "DSA") == 0)
        return "SHA-256";
    return NULL;
}

int cf_key_check_algorithm(const EVP_PKEY *key, const char *algorithm, const EVP_MD **md_out,
                           cf_error_t *err)
{
    *md_out = NULL;
    const char *type = cf_key_type_name(key);
    if (!type) {
        cf_error_set(err, "unsupported_key", "key_type", "unsupported key type");
        return -1;
    }
    bool eddsa = strcmp(type, "Ed25519") == 0 || strcmp(type, "Ed448") == 0;
    bool given = algorithm && *algorithm;
    if (eddsa) {
        /* EdDSA hashes internally; X509_sign wants a NULL digest for it. */
        if (given) {
            cf_error_set(err, "invalid_value", "algorithm",
                         "%s keys do not allow an algorithm for signing", type);
            return -1;
        }
        return 0;
    }
    const EVP_MD *md = cf_key_algorithm_md(given ? algorithm : cf_key_default_algorithm(key), err);
    if (!md)
        return -1;
    *md_out = md;
    return 0;
}

/* ---------------------------------------------------------------- PKCS#8 */

/* A copy of an OpenSSL i2d result into malloc'd memory; the original is wiped. */
static int s_take_der(unsigned char *tmp, int n, unsigned char **der, size_t *len)
{
    if (n <= 0 || !tmp)
        return -1;
    unsigned char *copy = malloc((size_t)n);
    if (copy)
        memcpy(copy, tmp, (size_t)n);
    OPENSSL_clear_free(tmp, (size_t)n);
    if (!copy)
        return -1;
    *der = copy;
    *len = (size_t)n;
    return 0;
}

int cf_key_to_pkcs8(const EVP_PKEY *key, const char *password, unsigned char **der, size_t *len,
                    cf_error_t *err)
{
    int rc = -1;
    X509_ALGOR *pbe = NULL;
    X509_SIG *sig = NULL;
    unsigned char *tmp = NULL;
    int n = 0;
    *der = NULL;
    *len = 0;
    PKCS8_PRIV_KEY_INFO *p8 = EVP_PKEY2PKCS8(key);
    if (!p8) {
        cf_error_set(err, "invalid_key", "", "could not encode private key as PKCS#8");
        cf_error_add_openssl(err);
        goto out;
    }
    if (!password || !*password) {
        n = i2d_PKCS8_PRIV_KEY_INFO(p8, &tmp);
    } else {
        size_t passlen = strlen(password);
        unsigned char salt[S_SALT_LEN];
        if (passlen > INT_MAX || RAND_bytes(salt, sizeof salt) != 1) {
            cf_error_set(err, "internal", "", "could not encrypt private key");
            cf_error_add_openssl(err);
            goto out;
        }
        /* PBES2 with scrypt as the KDF (RFC 7914 section 7) and AES-256-CBC: a memory-hard
         * KDF, where PBKDF2 (the encoder's default) is cheap to attack on GPUs. The IV is
         * random (NULL asks OpenSSL for one). */
        pbe = PKCS5_pbe2_set_scrypt(EVP_aes_256_cbc(), salt, sizeof salt, NULL, S_SCRYPT_N,
                                    S_SCRYPT_R, S_SCRYPT_P);
        if (pbe)
            sig = PKCS8_set0_pbe(password, (int)passlen, p8, pbe);
        if (!sig) {
            cf_error_set(err, "internal", "", "could not encrypt private key");
            cf_error_add_openssl(err);
            goto out;
        }
        pbe = NULL; /* owned by sig now */
        n = i2d_X509_SIG(sig, &tmp);
    }
    if (s_take_der(tmp, n, der, len) != 0) {
        cf_error_set(err, "internal", "", "could not encode private key as PKCS#8");
        cf_error_add_openssl(err);
        goto out;
    }
    rc = 0;
out:
    X509_ALGOR_free(pbe);
    X509_SIG_free(sig);
    PKCS8_PRIV_KEY_INFO_free(p8);
    return rc;
}

void cf_key_der_free(unsigned char **der_p, size_t len)
{
    if (!der_p || !*der_p)
        return;
    OPENSSL_cleanse(*der_p, len);
    free(*der_p);
    *der_p = NULL;
}

/* True when KEY holds a private half (a decoder may hand back a public key alone). */
static bool s_has_private(const EVP_PKEY *key)
{
    BIGNUM *bn = NULL;
    bool has = false;
    size_t len = 0;
    if (EVP_PKEY_is_a(key, "RSA"))
        has = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_D, &bn) == 1;
    else if (EVP_PKEY_is_a(key, "DSA") || EVP_PKEY_is_a(key, "EC"))
        has = EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_PRIV_KEY, &bn) == 1;
    else
        has = EVP_PKEY_get_raw_private_key(key, NULL, &len) == 1 && len > 0;
    BN_clear_free(bn);
    ERR_clear_error();
    return has;
}

/* Did the last decryption fail on a structural problem (not the password)? */
static bool s_structural_error(void)
{
    unsigned long e;
    bool structural = false;
    while ((e = ERR_get_error()) != 0) {
        int lib = ERR_GET_LIB(e);
        int reason = ERR_GET_REASON(e);
        if (lib == ERR_LIB_EVP &&
            (reason == EVP_R_UNSUPPORTED_CIPHER || reason == EVP_R_UNKNOWN_PBE_ALGORITHM ||
             reason == EVP_R_UNSUPPORTED_KEY_DERIVATION_FUNCTION ||
             reason == EVP_R_UNSUPPORTED_PRF || reason == EVP_R_MEMORY_LIMIT_EXCEEDED))
            structural = true;
    }
    return structural;
}

/* DER PKCS#8, encrypted (EncryptedPrivateKeyInfo) or not (PrivateKeyInfo). *HANDLED is false
 * when the DER is neither, so the caller can try other formats. */
static EVP_PKEY *s_from_pkcs8_der(const unsigned char *der, size_t len, const char *password,
                                  bool *handled, cf_error_t *err)
{
    EVP_PKEY *key = NULL;
    PKCS8_PRIV_KEY_INFO *p8 = NULL;
    X509_SIG *sig = NULL;
    const unsigned char *p = der;
    *handled = false;
    if (len > LONG_MAX)
        return NULL;

    /* EncryptedPrivateKeyInfo starts with an AlgorithmIdentifier (a SEQUENCE), PrivateKeyInfo
     * with a version INTEGER: at most one of the two parses. */
    ERR_set_mark();
    sig = d2i_X509_SIG(NULL, &p, (long)len);
    if (sig && p != der + len) {
        X509_SIG_free(sig);
        sig = NULL;
    }
    ERR_pop_to_mark();
    if (sig) {
        *handled = true;
        if (!password || !*password) {
            cf_error_set(err, "wrong_password", "password",
                         "private key is encrypted and no password was given");
            goto out;
        }
        size_t passlen = strlen(password);
        ERR_clear_error();
        p8 = passlen <= INT_MAX ? PKCS8_decrypt(sig, password, (int)passlen) : NULL;
        if (!p8) {
            /* AES-CBC has no integrity check: a wrong password shows as bad padding, or
             * (1 time in 256) as garbage that does not parse. Only an unsupported algorithm
             * or an scrypt cost beyond OpenSSL's memory limit says the file is at fault. */
            if (s_structural_error())
                cf_error_set(err, "invalid_key", "",
                             "could not decrypt private key: unsupported encryption");
            else
                cf_error_set(err, "wrong_password", "password",
                             "could not decrypt private key: wrong password");
            goto out;
        }
    } else {
        p = der;
        ERR_set_mark();
        p8 = d2i_PKCS8_PRIV_KEY_INFO(NULL, &p, (long)len);
        if (p8 && p != der + len) {
            PKCS8_PRIV_KEY_INFO_free(p8);
            p8 = NULL;
        }
        ERR_pop_to_mark();
        if (!p8)
            return NULL;
        *handled = true;
    }
    key = EVP_PKCS82PKEY(p8);
    if (!key || !s_has_private(key)) {
        EVP_PKEY_free(key);
        key = NULL;
        cf_error_set(err, "invalid_key", "", "could not parse private key");
        cf_error_add_openssl(err);
    }
out:
    ERR_clear_error();
    PKCS8_PRIV_KEY_INFO_free(p8);
    X509_SIG_free(sig);
    return key;
}

/* Anything else OpenSSL's decoders read: traditional PEM or DER ("RSA PRIVATE KEY", "EC
 * PRIVATE KEY", legacy PEM encryption). */
static EVP_PKEY *s_from_decoder(const unsigned char *data, size_t len, const char *password,
                                bool encrypted, cf_error_t *err)
{
    EVP_PKEY *key = NULL;
    if (encrypted && (!password || !*password)) {
        cf_error_set(err, "wrong_password", "password",
                     "private key is encrypted and no password was given");
        return NULL;
    }
    OSSL_DECODER_CTX *dctx =
        OSSL_DECODER_CTX_new_for_pkey(&key, NULL, NULL, NULL, EVP_PKEY_KEYPAIR, NULL, NULL);
    const unsigned char *p = data;
    size_t left = len;
    if (!dctx ||
        (password && *password &&
         OSSL_DECODER_CTX_set_passphrase(dctx, (const unsigned char *)password, strlen(password)) !=
             1) ||
        OSSL_DECODER_from_data(dctx, &p, &left) != 1 || !key || !s_has_private(key)) {
        EVP_PKEY_free(key);
        key = NULL;
        if (encrypted)
            cf_error_set(err, "wrong_password", "password",
                         "could not decrypt private key: wrong password");
        else
            cf_error_set(err, "invalid_key", "",
                         "could not parse private key: not a PKCS#8, PEM or DER private key");
    }
    ERR_clear_error();
    OSSL_DECODER_CTX_free(dctx);
    return key;
}

EVP_PKEY *cf_key_from_pkcs8(const unsigned char *der, size_t len, const char *password,
                            cf_error_t *err)
{
    EVP_PKEY *key = NULL;
    bool handled = false;
    if (!der || len == 0 || len > INT_MAX) {
        cf_error_set(err, "invalid_key", "", "could not parse private key: no data");
        return NULL;
    }
    if (memmem(der, len, "-----BEGIN ", 11)) {
        char *name = NULL;
        char *header = NULL;
        unsigned char *data = NULL;
        long dlen = 0;
        BIO *bio = BIO_new_mem_buf(der, (int)len);
        ERR_set_mark();
        int ok = bio && PEM_read_bio(bio, &name, &header, &data, &dlen) == 1;
        ERR_pop_to_mark();
        BIO_free(bio);
        if (!ok) {
            cf_error_set(err, "invalid_key", "", "could not parse private key: bad PEM");
        } else if (strcmp(name, "ENCRYPTED PRIVATE KEY") == 0 || strcmp(name, "PRIVATE KEY") == 0) {
            key = s_from_pkcs8_der(data, (size_t)dlen, password, &handled, err);
            if (!handled)
                cf_error_set(err, "invalid_key", "",
                             "could not parse private key: bad PKCS#8 in PEM");
        } else {
            bool encrypted = header && strstr(header, "ENCRYPTED");
            key = s_from_decoder(der, len, password, encrypted, err);
        }
        OPENSSL_free(name);
        OPENSSL_free(header);
        if (data)
            OPENSSL_clear_free(data, dlen > 0 ? (size_t)dlen : 0);
        return key;
    }
    key = s_from_pkcs8_der(der, len, password, &handled, err);
    if (!handled)
        key = s_from_decoder(der, len, password, false, err);
    return key;
}

/* ---------------------------------------------------------------- JWK */

/* Set NAME to the base64url of LEN bytes. 0 or -1. */
static int s_set_b64(json_t *obj, const char *name, const unsigned char *data, size_t len)
{
    char *text = cf_base64url_encode(data, len);
    int rc = text ? json_object_set_new(obj, name, json_string(text)) : -1;
    free(text);
    return rc;
}

/* Set NAME to a big number: minimal big-endian bytes, or PAD bytes when PAD > 0. */
static int s_set_bn(json_t *obj, const char *name, const BIGNUM *bn, size_t pad)
{
    size_t n = pad ? pad : (size_t)BN_num_bytes(bn);
    if (n == 0)
        n = 1; /* zero is one zero byte */
    unsigned char *buf = malloc(n);
    if (!buf || BN_bn2binpad(bn, buf, (int)n) < 0) {
        free(buf);
        return -1;
    }
    int rc = s_set_b64(obj, name, buf, n);
    free(buf);
    return rc;
}

json_t *cf_key_public_jwk(const EVP_PKEY *key, cf_error_t *err)
{
    json_t *jwk = json_object();
    BIGNUM *a = NULL;
    BIGNUM *b = NULL;
    const char *type = cf_key_type_name(key);
    int rc = -1;
    if (!jwk)
        goto out;
    if (type && strcmp(type, "RSA") == 0) {
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_N, &a) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_RSA_E, &b) != 1)
            goto out;
        rc = json_object_set_new(jwk, "kty", json_string("RSA")) | s_set_bn(jwk, "n", a, 0) |
             s_set_bn(jwk, "e", b, 0);
    } else if (type && strcmp(type, "EC") == 0) {
        const s_curve_t *curve = s_key_curve(key);
        if (!curve || !curve->jwk) {
            cf_error_set(err, "unsupported_key", "crv", "elliptic curve \"%s\" has no JWK name",
                         curve ? curve->name : "unknown");
            goto fail;
        }
        if (EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_X, &a) != 1 ||
            EVP_PKEY_get_bn_param(key, OSSL_PKEY_PARAM_EC_PUB_Y, &b) != 1)
            goto out;
        rc = json_object_set_new(jwk, "kty", json_string("EC")) |
             json_object_set_new(jwk, "crv", json_string(curve->jwk)) |
             s_set_bn(jwk, "x", a, curve->bytes) | s_set_bn(jwk, "y", b, curve->bytes);
    } else if (type && (strcmp(type, "Ed25519") == 0 || strcmp(type, "Ed448") == 0)) {
        unsigned char raw[64];
        size_t len = sizeof raw;
        if (EVP_PKEY_get_raw_public_key(key, raw, &len) != 1)
            goto out;
        rc = json_object_set_new(jwk, "kty", json_string("OKP")) |
             json_object_set_new(jwk, "crv", json_string(type)) | s_set_b64(jwk, "x", raw, len);
    } else {
        cf_error_set(err, "unsupported_key", "kty", "%s keys have no JWK form",
                     type ? type : "these");
        goto fail;
    }
out:
    if (rc != 0) {
        cf_error_set(err, "internal", "", "could not encode public key as JWK");
        cf_error_add_openssl(err);
        goto fail;
    }
    BN_free(a);
    BN_free(b);
    return jwk;
fail:
    BN_free(a);
    BN_free(b);
    json_decref(jwk);
    return NULL;
}

/* Member NAME of JWK as decoded base64url bytes (caller owns), or NULL + err. */
static unsigned char *s_get_b64(const json_t *jwk, const char *name, size_t *len, cf_error_t *err)
{
    json_t *v = json_object_get(jwk, name);
    if (!v) {
        cf_error_set(err, "missing_field", name, "JWK member \"%s\" is missing", name);
        return NULL;
    }
    if (!json_is_string(v)) {
        cf_error_set(err, "invalid_type", name, "JWK member \"%s\" must be a string", name);
        return NULL;
    }
    unsigned char *data = cf_base64url_decode(json_string_value(v), json_string_length(v), len);
    if (!data || *len == 0) {
        free(data);
        cf_error_set(err, "invalid_value", name, "JWK member \"%s\" is not base64url", name);
        return NULL;
    }
    return data;
}

/* A public key of TYPE from PARAMS, or NULL. */
static EVP_PKEY *s_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *key = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (!params || !ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return key;
}

static EVP_PKEY *s_rsa_from_jwk(const json_t *jwk, cf_error_t *err)
{
    EVP_PKEY *key = NULL;
    size_t nlen = 0;
    size_t elen = 0;
    BIGNUM *n = NULL;
    BIGNUM *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    unsigned char *nb = s_get_b64(jwk, "n", &nlen, err);
    unsigned char *eb = nb ? s_get_b64(jwk, "e", &elen, err) : NULL;
    if (!nb || !eb)
        goto out;
    if (nlen > S_RSA_MAX_JWK / 8) {
        cf_error_set(err, "invalid_value", "n", "RSA modulus is longer than %d bits",
                     S_RSA_MAX_JWK);
        goto out;
    }
    /* A public exponent above 2^64 or even is never legitimate and makes verification slow
     * or wrong. */
    if (elen > 8 || !(eb[elen - 1] & 1) || (elen == 1 && eb[0] == 1)) {
        cf_error_set(err, "invalid_value", "e", "RSA public exponent is not valid");
        goto out;
    }
    n = BN_bin2bn(nb, (int)nlen, NULL);
    e = BN_bin2bn(eb, (int)elen, NULL);
    bld = OSSL_PARAM_BLD_new();
    if (!n || !e || !bld || OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) != 1 ||
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) != 1 ||
        !(key = s_fromdata("RSA", bld))) {
        cf_error_set(err, "invalid_value", "n", "not a valid RSA public key");
        cf_error_add_openssl(err);
    }
out:
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    free(nb);
    free(eb);
    return key;
}

static EVP_PKEY *s_ec_from_jwk(const json_t *jwk, const char *crv, cf_error_t *err)
{
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    unsigned char *point = NULL;
    size_t xlen = 0;
    size_t ylen = 0;
    unsigned char *x = NULL;
    unsigned char *y = NULL;
    const s_curve_t *curve = s_curve_by_jwk(crv);
    if (!curve) {
        cf_error_set(err, "unsupported_key", "crv", "unsupported JWK curve \"%.40s\"", crv);
        goto out;
    }
    x = s_get_b64(jwk, "x", &xlen, err);
    y = x ? s_get_b64(jwk, "y", &ylen, err) : NULL;
    if (!x || !y)
        goto out;
    /* RFC 7518 section 6.2.1.2: coordinates are full length, never shortened. */
    if (xlen != curve->bytes || ylen != curve->bytes) {
        cf_error_set(err, "invalid_value", xlen != curve->bytes ? "x" : "y",
                     "coordinate must be %zu bytes long for curve \"%s\"", curve->bytes,
                     curve->jwk);
        goto out;
    }
    point = malloc(1 + 2 * curve->bytes);
    bld = OSSL_PARAM_BLD_new();
    if (!point || !bld)
        goto fail;
    point[0] = 0x04; /* uncompressed point */
    memcpy(point + 1, x, xlen);
    memcpy(point + 1 + xlen, y, ylen);
    if (OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, curve->group, 0) != 1 ||
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point,
                                         1 + 2 * curve->bytes) != 1)
        goto fail;
    key = s_fromdata("EC", bld);
    /* A point off the curve invites invalid-curve attacks: check it explicitly. */
    ctx = key ? EVP_PKEY_CTX_new_from_pkey(NULL, key, NULL) : NULL;
    if (!ctx || EVP_PKEY_public_check(ctx) != 1)
        goto fail;
    goto out;
fail:
    EVP_PKEY_free(key);
    key = NULL;
    cf_error_set(err, "invalid_value", "x", "point is not on curve \"%s\"",
                 curve ? curve->jwk : crv);
    ERR_clear_error();
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_BLD_free(bld);
    free(point);
    free(x);
    free(y);
    return key;
}

static EVP_PKEY *s_okp_from_jwk(const json_t *jwk, const char *crv, cf_error_t *err)
{
    size_t want;
    const char *type;
    if (strcmp(crv, "Ed25519") == 0) {
        want = 32;
        type = "ED25519";
    } else if (strcmp(crv, "Ed448") == 0) {
        want = 57;
        type = "ED448";
    } else {
        cf_error_set(err, "unsupported_key", "crv", "unsupported JWK curve \"%.40s\"", crv);
        return NULL;
    }
    size_t len = 0;
    unsigned char *x = s_get_b64(jwk, "x", &len, err);
    if (!x)
        return NULL;
    EVP_PKEY *key = NULL;
    if (len != want)
        cf_error_set(err, "invalid_value", "x", "public key must be %zu bytes long for \"%s\"",
                     want, crv);
    else if (!(key = EVP_PKEY_new_raw_public_key_ex(NULL, type, NULL, x, len)))
        cf_error_set(err, "invalid_value", "x", "not a valid %s public key", crv);
    ERR_clear_error();
    free(x);
    return key;
}

/* A string member NAME, or NULL + err. */
static const char *s_get_string(const json_t *jwk, const char *name, cf_error_t *err)
{
    json_t *v = json_object_get(jwk, name);
    if (!v) {
        cf_error_set(err, "missing_field", name, "JWK member \"%s\" is missing", name);
        return NULL;
    }
    if (!json_is_string(v)) {
        cf_error_set(err, "invalid_type", name, "JWK member \"%s\" must be a string", name);
        return NULL;
    }
    return json_string_value(v);
}

EVP_PKEY *cf_key_from_jwk(const json_t *jwk, cf_error_t *err)
{
    if (!json_is_object(jwk)) {
        cf_error_set(err, "invalid_type", "", "JWK must be an object");
        return NULL;
    }
    const char *kty = s_get_string(jwk, "kty", err);
    if (!kty)
        return NULL;
    if (strcmp(kty, "RSA") == 0)
        return s_rsa_from_jwk(jwk, err);
    if (strcmp(kty, "EC") == 0 || strcmp(kty, "OKP") == 0) {
        const char *crv = s_get_string(jwk, "crv", err);
        if (!crv)
            return NULL;
        return kty[0] == 'E' ? s_ec_from_jwk(jwk, crv, err) : s_okp_from_jwk(jwk, crv, err);
    }
    cf_error_set(err, "unsupported_key", "kty", "unsupported JWK key type \"%.40s\"", kty);
    return NULL;
}

int cf_key_jwk_thumbprint(const json_t *jwk, char *out, size_t outlen)
{
    /* RFC 7638 section 3.2: the required members only, sorted, no whitespace. */
    static const char *const rsa[] = {"e", "kty", "n", NULL};
    static const char *const ec[] = {"crv", "kty", "x", "y", NULL};
    static const char *const okp[] = {"crv", "kty", "x", NULL};
    int rc = -1;
    char *text = NULL;
    char *b64 = NULL;
    json_t *canon = json_object();
    json_t *kty = json_object_get(jwk, "kty");
    const char *const *members = NULL;
    if (!canon || !json_is_string(kty) || outlen < CF_KEY_THUMBPRINT_MAX)
        goto out;
    if (strcmp(json_string_value(kty), "RSA") == 0)
        members = rsa;
    else if (strcmp(json_string_value(kty), "EC") == 0)
        members = ec;
    else if (strcmp(json_string_value(kty), "OKP") == 0)
        members = okp;
    else
        goto out;
    for (int i = 0; members[i]; i++) {
        json_t *v = json_object_get(jwk, members[i]);
        if (!json_is_string(v) || json_object_set(canon, members[i], v) != 0)
            goto out;
    }
    text = json_dumps(canon, JSON_COMPACT | JSON_SORT_KEYS);
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (!text || EVP_Digest(text, strlen(text), digest, &dlen, EVP_sha256(), NULL) != 1)
        goto out;
    b64 = cf_base64url_encode(digest, dlen);
    if (!b64 || strlen(b64) >= outlen)
        goto out;
    memcpy(out, b64, strlen(b64) + 1);
    rc = 0;
out:
    free(b64);
    free(text);
    json_decref(canon);
    return rc;
}
