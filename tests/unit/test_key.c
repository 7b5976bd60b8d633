/* cf_key: key parameters as django-ca validates them, generation of every key type, signature
 * algorithms, PKCS#8 encrypted with scrypt, and JWKs checked against the RFCs' own vectors.
 * Reads as cf_key's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "cf_base64url.h"
#include "cf_config.h"
#include "cf_key.h"

/* RFC 7638 section 3.1: the RSA key of RFC 7517 appendix A.1 and its thumbprint. */
static const char s_rfc7638_jwk[] =
    "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zw"
    "u1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6"
    "Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD"
    "08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJz"
    "KnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}";
static const char s_rfc7638_thumbprint[] = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";

/* RFC 8037 appendix A.1-A.3: an Ed25519 key, its public JWK and thumbprint. */
static const char s_rfc8037_d[] = "nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A";
static const char s_rfc8037_x[] = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo";
static const char s_rfc8037_thumbprint[] = "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k";

/* RFC 7517 appendix A.1: a P-256 public key. */
static const char s_rfc7517_ec[] = "{\"kty\":\"EC\",\"crv\":\"P-256\","
                                   "\"x\":\"MKBCTNIcKUSDii11ySs3526iDZ8AiTo7Tu6KPAqv7D4\","
                                   "\"y\":\"4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyM\","
                                   "\"use\":\"enc\",\"kid\":\"1\"}";

/* Generate a key of TYPE with SIZE bits (0: default) or CURVE (NULL: default). */
static EVP_PKEY *s_key(const char *type, int size, const char *curve)
{
    cf_key_params_t params;
    cf_error_t err = {0};
    if (cf_key_params_init(&params, NULL, type, size, curve, &err) != 0)
        fail_msg("%s: %s", err.field, err.message);
    EVP_PKEY *key = cf_key_generate(&params, &err);
    if (!key)
        fail_msg("%s", err.message);
    return key;
}

static json_t *s_json(const char *text)
{
    json_error_t jerr;
    json_t *v = json_loads(text, 0, &jerr);
    if (!v)
        fail_msg("bad test JSON: %s", jerr.text);
    return v;
}

/* Expect cf_key_params_init to fail with CODE at FIELD. */
static void s_params_fail(cf_config_t *cfg, const char *type, int size, const char *curve,
                          const char *code, const char *field)
{
    cf_key_params_t params;
    cf_error_t err = {0};
    assert_int_equal(cf_key_params_init(&params, cfg, type, size, curve, &err), -1);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    assert_true(err.message[0] >= 'a' && err.message[0] <= 'z');
}

static void s_json_fail(const char *text, const char *code, const char *field)
{
    cf_key_params_t params;
    cf_error_t err = {0};
    json_t *obj = s_json(text);
    assert_int_equal(cf_key_params_from_json(&params, NULL, obj, &err), -1);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    json_decref(obj);
}

/* ------------------------------------------------------------------ parameters */

static void test_params_defaults(void **state)
{
    cf_key_params_t p;
    cf_error_t err = {0};
    assert_int_equal(cf_key_params_init(&p, NULL, NULL, 0, NULL, &err), 0);
    assert_string_equal(p.key_type, "RSA");
    assert_int_equal(p.key_size, 4096);
    assert_string_equal(p.elliptic_curve, "");

    assert_int_equal(cf_key_params_init(&p, NULL, "DSA", 0, NULL, &err), 0);
    assert_int_equal(p.key_size, 2048);
    assert_int_equal(cf_key_params_init(&p, NULL, "ec", 0, NULL, &err), 0);
    assert_string_equal(p.key_type, "EC");
    assert_int_equal(p.key_size, 0);
    assert_string_equal(p.elliptic_curve, "secp256r1");
    assert_int_equal(cf_key_params_init(&p, NULL, "EC", 0, "BRAINPOOLP384R1", &err), 0);
    assert_string_equal(p.elliptic_curve, "brainpoolP384r1");
    assert_int_equal(cf_key_params_init(&p, NULL, "ed25519", 0, NULL, &err), 0);
    assert_string_equal(p.key_type, "Ed25519");
    assert_int_equal(p.key_size, 0);

    json_t *obj = s_json("{\"key_type\": \"RSA\", \"key_size\": 2048, \"elliptic_curve\": null,"
                         " \"algorithm\": \"SHA-256\"}");
    assert_int_equal(cf_key_params_from_json(&p, NULL, obj, &err), 0);
    assert_int_equal(p.key_size, 2048);
    json_decref(obj);
    obj = s_json("{}");
    assert_int_equal(cf_key_params_from_json(&p, NULL, obj, &err), 0);
    assert_string_equal(p.key_type, "RSA");
    json_decref(obj);
}

static void test_params_config(void **state)
{
    cf_config_t *cfg = cf_config_new();
    cf_key_params_t p;
    cf_error_t err = {0};
    cf_config_set(cfg, "keys", "default_rsa_size", "2048");
    cf_config_set(cfg, "keys", "default_dsa_size", "1024");
    cf_config_set(cfg, "keys", "min_size", "2048");
    cf_config_set(cfg, "keys", "default_elliptic_curve", "secp384r1");
    assert_int_equal(cf_key_params_init(&p, cfg, "RSA", 0, NULL, &err), 0);
    assert_int_equal(p.key_size, 2048);
    assert_int_equal(cf_key_params_init(&p, cfg, "EC", 0, NULL, &err), 0);
    assert_string_equal(p.elliptic_curve, "secp384r1");
    s_params_fail(cfg, "RSA", 1024, NULL, "invalid_value", "key_size");
    /* A default below the minimum is refused too, not silently raised. */
    s_params_fail(cfg, "DSA", 0, NULL, "invalid_value", "key_size");
    cf_config_destroy(&cfg);
}

static void test_params_invalid(void **state)
{
    s_params_fail(NULL, "FOO", 0, NULL, "invalid_value", "key_type");
    s_params_fail(NULL, "", 0, NULL, "invalid_value", "key_type");
    s_params_fail(NULL, "RSA", 4000, NULL, "invalid_value", "key_size");
    s_params_fail(NULL, "RSA", 2049, NULL, "invalid_value", "key_size");
    s_params_fail(NULL, "RSA", 512, NULL, "invalid_value", "key_size");
    s_params_fail(NULL, "RSA", 16384, NULL, "invalid_value", "key_size");
    s_params_fail(NULL, "DSA", 3072, NULL, "invalid_value", "key_size");
    s_params_fail(NULL, "EC", 256, NULL, "invalid_value", "key_size");
    s_params_fail(NULL, "Ed25519", 2048, NULL, "invalid_value", "key_size");
    s_params_fail(NULL, "Ed448", 2048, NULL, "invalid_value", "key_size");
    s_params_fail(NULL, "RSA", 0, "secp256r1", "invalid_value", "elliptic_curve");
    s_params_fail(NULL, "Ed25519", 0, "secp256r1", "invalid_value", "elliptic_curve");
    s_params_fail(NULL, "EC", 0, "P-256", "invalid_value", "elliptic_curve");
    s_params_fail(NULL, "EC", 0, "prime256v1", "invalid_value", "elliptic_curve");

    s_json_fail("{\"key_size\": \"2048\"}", "invalid_type", "key_size");
    s_json_fail("{\"key_size\": 0}", "invalid_value", "key_size");
    s_json_fail("{\"key_size\": -4096}", "invalid_value", "key_size");
    s_json_fail("{\"key_size\": 4096.0}", "invalid_type", "key_size");
    s_json_fail("{\"key_type\": 1}", "invalid_type", "key_type");
    s_json_fail("{\"key_type\": \"EC\", \"elliptic_curve\": 256}", "invalid_type",
                "elliptic_curve");
    s_json_fail("{\"key_type\": \"EC\", \"key_size\": 256}", "invalid_value", "key_size");
    s_json_fail("[]", "invalid_type", "");
}

/* ------------------------------------------------------------------ generation */

static void s_check_generated(EVP_PKEY *key, const char *type, int size, const char *curve)
{
    cf_key_params_t p;
    cf_error_t err = {0};
    assert_non_null(key);
    assert_string_equal(cf_key_type_name(key), type);
    assert_int_equal(cf_key_size(key), size);
    if (curve)
        assert_string_equal(cf_key_curve(key), curve);
    else
        assert_null(cf_key_curve(key));
    assert_int_equal(cf_key_params_from_key(&p, key, &err), 0);
    assert_string_equal(p.key_type, type);
    assert_int_equal(p.key_size, size);
    assert_string_equal(p.elliptic_curve, curve ? curve : "");
}

static void test_generate_every_type(void **state)
{
    EVP_PKEY *key = s_key("RSA", 0, NULL);
    s_check_generated(key, "RSA", 4096, NULL);
    EVP_PKEY_free(key);
    key = s_key("RSA", 1024, NULL);
    s_check_generated(key, "RSA", 1024, NULL);
    EVP_PKEY_free(key);
    key = s_key("DSA", 0, NULL);
    s_check_generated(key, "DSA", 2048, NULL);
    EVP_PKEY_free(key);
    key = s_key("Ed25519", 0, NULL);
    s_check_generated(key, "Ed25519", 0, NULL);
    EVP_PKEY_free(key);
    key = s_key("Ed448", 0, NULL);
    s_check_generated(key, "Ed448", 0, NULL);
    EVP_PKEY_free(key);

    /* Every curve django-ca offers. */
    static const char *const curves[] = {
        "secp256r1", "secp384r1",       "secp521r1",       "secp256k1",       "secp224r1",
        "secp192r1", "sect571r1",       "sect409r1",       "sect283r1",       "sect233r1",
        "sect163r2", "sect571k1",       "sect409k1",       "sect283k1",       "sect233k1",
        "sect163k1", "brainpoolP256r1", "brainpoolP384r1", "brainpoolP512r1", NULL,
    };
    for (int i = 0; curves[i]; i++) {
        key = s_key("EC", 0, curves[i]);
        s_check_generated(key, "EC", 0, curves[i]);
        EVP_PKEY_free(key);
    }
}

/* ------------------------------------------------------------------ algorithms */

static void s_md_is(const char *name, int nid)
{
    cf_error_t err = {0};
    const EVP_MD *md = cf_key_algorithm_md(name, &err);
    if (!md)
        fail_msg("%s: %s", name, err.message);
    assert_int_equal(EVP_MD_get_type(md), nid);
}

static void test_algorithm_names(void **state)
{
    s_md_is("SHA-224", NID_sha224);
    s_md_is("SHA-256", NID_sha256);
    s_md_is("SHA-384", NID_sha384);
    s_md_is("SHA-512", NID_sha512);
    s_md_is("SHA3/224", NID_sha3_224);
    s_md_is("SHA3/256", NID_sha3_256);
    s_md_is("SHA3/384", NID_sha3_384);
    s_md_is("SHA3/512", NID_sha3_512);
    s_md_is("SHA3-256", NID_sha3_256);
    s_md_is("sha-256", NID_sha256);
    s_md_is("SHA512", NID_sha512);
    assert_string_equal(cf_key_algorithm_name(EVP_sha3_384()), "SHA3/384");
    assert_string_equal(cf_key_algorithm_name(EVP_sha256()), "SHA-256");
    assert_null(cf_key_algorithm_name(EVP_sha1()));

    static const char *const bad[] = {"MD5", "SHA-1", "SHA1", "", "SHA-256 ", "SHAKE256", NULL};
    for (int i = 0; bad[i]; i++) {
        cf_error_t err = {0};
        assert_null(cf_key_algorithm_md(bad[i], &err));
        assert_string_equal(err.code, "invalid_value");
        assert_string_equal(err.field, "algorithm");
    }
}

static void test_algorithm_defaults(void **state)
{
    cf_error_t err = {0};
    const EVP_MD *md = NULL;
    EVP_PKEY *rsa = s_key("RSA", 1024, NULL);
    EVP_PKEY *ec = s_key("EC", 0, NULL);
    EVP_PKEY *dsa = s_key("DSA", 1024, NULL);
    EVP_PKEY *ed = s_key("Ed25519", 0, NULL);
    EVP_PKEY *ed448 = s_key("Ed448", 0, NULL);

    assert_string_equal(cf_key_default_algorithm(rsa), "SHA-512");
    assert_string_equal(cf_key_default_algorithm(ec), "SHA-512");
    assert_string_equal(cf_key_default_algorithm(dsa), "SHA-256");
    assert_null(cf_key_default_algorithm(ed));
    assert_null(cf_key_default_algorithm(ed448));

    assert_int_equal(cf_key_check_algorithm(rsa, NULL, &md, &err), 0);
    assert_int_equal(EVP_MD_get_type(md), NID_sha512);
    assert_int_equal(cf_key_check_algorithm(dsa, "", &md, &err), 0);
    assert_int_equal(EVP_MD_get_type(md), NID_sha256);
    assert_int_equal(cf_key_check_algorithm(ec, "SHA3/256", &md, &err), 0);
    assert_int_equal(EVP_MD_get_type(md), NID_sha3_256);
    assert_int_equal(cf_key_check_algorithm(ed, NULL, &md, &err), 0);
    assert_null(md);
    assert_int_equal(cf_key_check_algorithm(ed448, "", &md, &err), 0);
    assert_null(md);

    /* Ed25519/Ed448 refuse any algorithm, as django-ca does. */
    assert_int_equal(cf_key_check_algorithm(ed, "SHA-256", &md, &err), -1);
    assert_string_equal(err.code, "invalid_value");
    assert_string_equal(err.field, "algorithm");
    assert_non_null(strstr(err.message, "Ed25519"));
    cf_error_clear(&err);
    assert_int_equal(cf_key_check_algorithm(ed448, "SHA-512", &md, &err), -1);
    assert_string_equal(err.field, "algorithm");
    cf_error_clear(&err);
    assert_int_equal(cf_key_check_algorithm(rsa, "MD5", &md, &err), -1);
    assert_string_equal(err.field, "algorithm");

    /* The digest really signs with each key type (EdDSA with NULL). */
    EVP_PKEY *keys[] = {rsa, ec, dsa, ed, ed448};
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
        X509 *x = X509_new();
        assert_int_equal(X509_set_pubkey(x, keys[i]), 1);
        assert_int_equal(cf_key_check_algorithm(keys[i], NULL, &md, &err), 0);
        assert_true(X509_sign(x, keys[i], md) > 0);
        assert_true(cf_key_matches_cert(keys[i], x));
        assert_false(cf_key_matches_cert(keys[(i + 1) % 5], x));
        X509_free(x);
    }
    EVP_PKEY_free(rsa);
    EVP_PKEY_free(ec);
    EVP_PKEY_free(dsa);
    EVP_PKEY_free(ed);
    EVP_PKEY_free(ed448);
}

/* ------------------------------------------------------------------ PKCS#8 */

static char *s_pem(const unsigned char *der, size_t len, const char *name)
{
    BIO *bio = BIO_new(BIO_s_mem());
    assert_true(PEM_write_bio(bio, name, "", der, (long)len) > 0);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *copy = strndup(data, (size_t)n);
    BIO_free(bio);
    return copy;
}

static void s_roundtrip(EVP_PKEY *key, const char *password)
{
    unsigned char *der = NULL;
    size_t len = 0;
    cf_error_t err = {0};
    assert_int_equal(cf_key_to_pkcs8(key, password, &der, &len, &err), 0);
    EVP_PKEY *back = cf_key_from_pkcs8(der, len, password, &err);
    if (!back)
        fail_msg("%s", err.message);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    EVP_PKEY_free(back);

    /* The same as PEM. */
    bool enc = password && *password;
    char *pem = s_pem(der, len, enc ? "ENCRYPTED PRIVATE KEY" : "PRIVATE KEY");
    back = cf_key_from_pkcs8((unsigned char *)pem, strlen(pem), password, &err);
    if (!back)
        fail_msg("%s", err.message);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    EVP_PKEY_free(back);
    free(pem);
    cf_key_der_free(&der, len);
    assert_null(der);
}

static void test_pkcs8_roundtrip(void **state)
{
    const char *types[] = {"RSA", "DSA", "EC", "Ed25519", "Ed448"};
    for (int i = 0; i < 5; i++) {
        EVP_PKEY *key = s_key(types[i], i < 2 ? 1024 : 0, NULL);
        s_roundtrip(key, NULL);
        s_roundtrip(key, "");
        s_roundtrip(key, "correct horse battery staple");
        s_roundtrip(key, "\xc3\xa4\xc3\xb6\xc3\xbc"); /* UTF-8 */
        EVP_PKEY_free(key);
    }

    /* A password for an unencrypted key is ignored; traditional PEM is read too. */
    EVP_PKEY *key = s_key("EC", 0, "secp384r1");
    unsigned char *der = NULL;
    size_t len = 0;
    cf_error_t err = {0};
    assert_int_equal(cf_key_to_pkcs8(key, NULL, &der, &len, &err), 0);
    EVP_PKEY *back = cf_key_from_pkcs8(der, len, "unused", &err);
    assert_non_null(back);
    EVP_PKEY_free(back);
    cf_key_der_free(&der, len);

    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, key, NULL, NULL, 0, NULL, NULL), 1);
    char *pem = NULL;
    long n = BIO_get_mem_data(bio, &pem);
    assert_non_null(strstr(pem, "BEGIN EC PRIVATE KEY"));
    back = cf_key_from_pkcs8((unsigned char *)pem, (size_t)n, NULL, &err);
    assert_non_null(back);
    assert_int_equal(EVP_PKEY_eq(key, back), 1);
    EVP_PKEY_free(back);
    BIO_free(bio);

    /* Legacy PEM encryption: a wrong password is a wrong password there too. */
    bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PrivateKey_traditional(bio, key, EVP_aes_128_cbc(),
                                                          (unsigned char *)"secret", 6, NULL, NULL),
                     1);
    n = BIO_get_mem_data(bio, &pem);
    back = cf_key_from_pkcs8((unsigned char *)pem, (size_t)n, "secret", &err);
    assert_non_null(back);
    EVP_PKEY_free(back);
    cf_error_clear(&err);
    assert_null(cf_key_from_pkcs8((unsigned char *)pem, (size_t)n, "wrong", &err));
    assert_string_equal(err.code, "wrong_password");
    cf_error_clear(&err);
    assert_null(cf_key_from_pkcs8((unsigned char *)pem, (size_t)n, NULL, &err));
    assert_string_equal(err.code, "wrong_password");
    BIO_free(bio);
    EVP_PKEY_free(key);
}

static void test_pkcs8_wrong_password(void **state)
{
    EVP_PKEY *key = s_key("Ed25519", 0, NULL);
    unsigned char *der = NULL;
    size_t len = 0;
    cf_error_t err = {0};
    assert_int_equal(cf_key_to_pkcs8(key, "right", &der, &len, &err), 0);
    /* Enough tries that AES-CBC's accidental valid padding (1 in 256) would show. */
    for (int i = 0; i < 3; i++) {
        char wrong[16];
        snprintf(wrong, sizeof wrong, "wrong%d", i);
        cf_error_clear(&err);
        assert_null(cf_key_from_pkcs8(der, len, wrong, &err));
        assert_string_equal(err.code, "wrong_password");
        assert_string_equal(err.field, "password");
        assert_null(strstr(err.message, wrong)); /* never the password in a message */
    }
    cf_error_clear(&err);
    assert_null(cf_key_from_pkcs8(der, len, NULL, &err));
    assert_string_equal(err.code, "wrong_password");
    assert_non_null(strstr(err.message, "no password"));
    cf_error_clear(&err);
    assert_null(cf_key_from_pkcs8(der, len, "", &err));
    assert_string_equal(err.code, "wrong_password");
    assert_int_equal(ERR_peek_error(), 0); /* nothing left behind for the next caller */
    cf_key_der_free(&der, len);
    EVP_PKEY_free(key);
}

static void test_pkcs8_corrupt(void **state)
{
    EVP_PKEY *key = s_key("EC", 0, NULL);
    unsigned char *der = NULL;
    size_t len = 0;
    cf_error_t err = {0};
    assert_int_equal(cf_key_to_pkcs8(key, NULL, &der, &len, &err), 0);

    /* Truncated, garbage, empty, bad PEM. */
    assert_null(cf_key_from_pkcs8(der, len / 2, NULL, &err));
    assert_string_equal(err.code, "invalid_key");
    cf_error_clear(&err);
    unsigned char junk[300];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (unsigned char)(i * 37 + 11);
    assert_null(cf_key_from_pkcs8(junk, sizeof junk, "pw", &err));
    assert_string_equal(err.code, "invalid_key");
    cf_error_clear(&err);
    assert_null(cf_key_from_pkcs8(junk, 0, NULL, &err));
    assert_string_equal(err.code, "invalid_key");
    cf_error_clear(&err);
    const char *bad_pem = "-----BEGIN PRIVATE KEY-----\nnot base64!!\n-----END PRIVATE KEY-----\n";
    assert_null(cf_key_from_pkcs8((const unsigned char *)bad_pem, strlen(bad_pem), NULL, &err));
    assert_string_equal(err.code, "invalid_key");
    cf_error_clear(&err);

    /* A public key is not a private key. */
    BIO *bio = BIO_new(BIO_s_mem());
    assert_int_equal(PEM_write_bio_PUBKEY(bio, key), 1);
    char *pem = NULL;
    long n = BIO_get_mem_data(bio, &pem);
    assert_null(cf_key_from_pkcs8((unsigned char *)pem, (size_t)n, NULL, &err));
    assert_string_equal(err.code, "invalid_key");
    BIO_free(bio);
    cf_error_clear(&err);

    /* A flipped byte inside the key. */
    der[len - 5] ^= 0xff;
    EVP_PKEY *back = cf_key_from_pkcs8(der, len, NULL, &err);
    if (back)
        assert_int_equal(EVP_PKEY_eq(key, back), 0);
    else
        assert_string_equal(err.code, "invalid_key");
    EVP_PKEY_free(back);
    assert_int_equal(ERR_peek_error(), 0);
    cf_key_der_free(&der, len);
    EVP_PKEY_free(key);
}

/* Dotted text of an OID. */
static const char *s_oid(const ASN1_OBJECT *obj, char *buf, int len)
{
    OBJ_obj2txt(buf, len, obj, 1);
    return buf;
}

/* The encrypted PKCS#8 is PBES2 with scrypt (N 2^14, r 8, p 1, 16 byte salt) and
 * AES-256-CBC: decode its AlgorithmIdentifiers. */
static void test_pkcs8_uses_scrypt(void **state)
{
    EVP_PKEY *key = s_key("EC", 0, NULL);
    unsigned char *der = NULL;
    size_t len = 0;
    cf_error_t err = {0};
    char oid[80];
    assert_int_equal(cf_key_to_pkcs8(key, "secret", &der, &len, &err), 0);

    const unsigned char *p = der;
    X509_SIG *sig = d2i_X509_SIG(NULL, &p, (long)len);
    assert_non_null(sig);
    const X509_ALGOR *alg = NULL;
    X509_SIG_get0(sig, &alg, NULL);
    const ASN1_OBJECT *aobj = NULL;
    int ptype = 0;
    const void *pval = NULL;
    X509_ALGOR_get0(&aobj, &ptype, &pval, alg);
    assert_string_equal(s_oid(aobj, oid, sizeof oid), "1.2.840.113549.1.5.13"); /* PBES2 */
    assert_int_equal(ptype, V_ASN1_SEQUENCE);

    PBE2PARAM *pbe2 = ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(PBE2PARAM), alg->parameter);
    assert_non_null(pbe2);
    assert_string_equal(s_oid(pbe2->keyfunc->algorithm, oid, sizeof oid),
                        "1.3.6.1.4.1.11591.4.11"); /* id-scrypt */
    assert_string_equal(s_oid(pbe2->encryption->algorithm, oid, sizeof oid),
                        "2.16.840.1.101.3.4.1.42"); /* aes256-CBC */
    SCRYPT_PARAMS *sp =
        ASN1_TYPE_unpack_sequence(ASN1_ITEM_rptr(SCRYPT_PARAMS), pbe2->keyfunc->parameter);
    assert_non_null(sp);
    assert_int_equal(ASN1_INTEGER_get(sp->costParameter), 16384);
    assert_int_equal(ASN1_INTEGER_get(sp->blockSize), 8);
    assert_int_equal(ASN1_INTEGER_get(sp->parallelizationParameter), 1);
    assert_int_equal(ASN1_STRING_length(sp->salt), 16);
    SCRYPT_PARAMS_free(sp);
    PBE2PARAM_free(pbe2);
    X509_SIG_free(sig);

    /* Two encryptions of the same key differ (random salt and IV). */
    unsigned char *der2 = NULL;
    size_t len2 = 0;
    assert_int_equal(cf_key_to_pkcs8(key, "secret", &der2, &len2, &err), 0);
    assert_true(len != len2 || memcmp(der, der2, len) != 0);

    /* The openssl command reads it, when there is one. */
    if (system("openssl version >/dev/null 2>&1") == 0) {
        char path[] = "/tmp/cf_test_key_XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, der, len), (ssize_t)len);
        close(fd);
        char cmd[256];
        snprintf(cmd, sizeof cmd,
                 "openssl pkey -inform DER -in %s -passin pass:secret -noout 2>/dev/null", path);
        assert_int_equal(system(cmd), 0);
        snprintf(cmd, sizeof cmd,
                 "openssl pkey -inform DER -in %s -passin pass:wrong -noout 2>/dev/null", path);
        assert_int_not_equal(system(cmd), 0);
        unlink(path);
    }
    cf_key_der_free(&der2, len2);
    cf_key_der_free(&der, len);
    EVP_PKEY_free(key);
}

/* ------------------------------------------------------------------ JWK */

static void test_base64url(void **state)
{
    static const struct {
        const char *raw;
        const char *b64;
    } v[] = {{"", ""},           {"f", "Zg"},          {"fo", "Zm8"},          {"foo", "Zm9v"},
             {"foob", "Zm9vYg"}, {"fooba", "Zm9vYmE"}, {"foobar", "Zm9vYmFy"}, {"\xfb\xff", "-_8"}};
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        char *enc = cf_base64url_encode(v[i].raw, strlen(v[i].raw));
        assert_string_equal(enc, v[i].b64);
        free(enc);
        size_t n = 0;
        unsigned char *dec = cf_base64url_decode(v[i].b64, strlen(v[i].b64), &n);
        assert_non_null(dec);
        assert_int_equal(n, strlen(v[i].raw));
        assert_memory_equal(dec, v[i].raw, n);
        free(dec);
    }
    static const char *const bad[] = {"Zg==", "Zh", "Z", "a+b/", "Zm9v\n", "Zm 9", NULL};
    for (int i = 0; bad[i]; i++) {
        size_t n = 0;
        assert_null(cf_base64url_decode(bad[i], strlen(bad[i]), &n));
    }
}

static void test_jwk_rfc7638(void **state)
{
    json_t *jwk = s_json(s_rfc7638_jwk);
    char tp[CF_KEY_THUMBPRINT_MAX];
    cf_error_t err = {0};
    assert_int_equal(cf_key_jwk_thumbprint(jwk, tp, sizeof tp), 0);
    assert_string_equal(tp, s_rfc7638_thumbprint);
    assert_int_equal(cf_key_jwk_thumbprint(jwk, tp, sizeof tp - 1), -1);

    /* Round trip: the key made from the JWK gives back the same members. */
    EVP_PKEY *key = cf_key_from_jwk(jwk, &err);
    if (!key)
        fail_msg("%s: %s", err.field, err.message);
    assert_string_equal(cf_key_type_name(key), "RSA");
    assert_int_equal(cf_key_size(key), 2048);
    json_t *out = cf_key_public_jwk(key, &err);
    assert_non_null(out);
    assert_int_equal(json_object_size(out), 3);
    assert_string_equal(json_string_value(json_object_get(out, "n")),
                        json_string_value(json_object_get(jwk, "n")));
    assert_string_equal(json_string_value(json_object_get(out, "e")), "AQAB");
    assert_int_equal(cf_key_jwk_thumbprint(out, tp, sizeof tp), 0);
    assert_string_equal(tp, s_rfc7638_thumbprint);
    json_decref(out);
    EVP_PKEY_free(key);
    json_decref(jwk);
}

static void test_jwk_ed25519_rfc8037(void **state)
{
    size_t dlen = 0;
    unsigned char *d = cf_base64url_decode(s_rfc8037_d, strlen(s_rfc8037_d), &dlen);
    assert_int_equal(dlen, 32);
    EVP_PKEY *key = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, d, dlen);
    free(d);
    assert_non_null(key);
    cf_error_t err = {0};
    json_t *jwk = cf_key_public_jwk(key, &err);
    assert_non_null(jwk);
    assert_string_equal(json_string_value(json_object_get(jwk, "kty")), "OKP");
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "Ed25519");
    assert_string_equal(json_string_value(json_object_get(jwk, "x")), s_rfc8037_x);
    char tp[CF_KEY_THUMBPRINT_MAX];
    assert_int_equal(cf_key_jwk_thumbprint(jwk, tp, sizeof tp), 0);
    assert_string_equal(tp, s_rfc8037_thumbprint);

    EVP_PKEY *pub = cf_key_from_jwk(jwk, &err);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_eq(key, pub), 1);
    EVP_PKEY_free(pub);
    json_decref(jwk);
    EVP_PKEY_free(key);

    /* Ed448 round trip. */
    key = s_key("Ed448", 0, NULL);
    jwk = cf_key_public_jwk(key, &err);
    assert_string_equal(json_string_value(json_object_get(jwk, "crv")), "Ed448");
    assert_int_equal(strlen(json_string_value(json_object_get(jwk, "x"))), 76); /* 57 bytes */
    pub = cf_key_from_jwk(jwk, &err);
    assert_non_null(pub);
    assert_int_equal(EVP_PKEY_eq(key, pub), 1);
    EVP_PKEY_free(pub);
    json_decref(jwk);
    EVP_PKEY_free(key);
}

static void test_jwk_ec(void **state)
{
    cf_error_t err = {0};
    json_t *jwk = s_json(s_rfc7517_ec);
    EVP_PKEY *key = cf_key_from_jwk(jwk, &err);
    if (!key)
        fail_msg("%s: %s", err.field, err.message);
    assert_string_equal(cf_key_curve(key), "secp256r1");
    json_t *out = cf_key_public_jwk(key, &err);
    assert_non_null(out);
    assert_int_equal(json_object_size(out), 4);
    assert_string_equal(json_string_value(json_object_get(out, "crv")), "P-256");
    assert_string_equal(json_string_value(json_object_get(out, "x")),
                        json_string_value(json_object_get(jwk, "x")));
    assert_string_equal(json_string_value(json_object_get(out, "y")),
                        json_string_value(json_object_get(jwk, "y")));
    json_decref(out);
    EVP_PKEY_free(key);

    /* A point off the curve, a short coordinate. */
    json_object_set_new(jwk, "y", json_string("4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFyA"));
    assert_null(cf_key_from_jwk(jwk, &err));
    assert_string_equal(err.code, "invalid_value");
    cf_error_clear(&err);
    json_object_set_new(jwk, "y", json_string("4Etl6SRW2YiLUrN5vfvVHuhp7x8PxltmWWlbbM4IFw"));
    assert_null(cf_key_from_jwk(jwk, &err));
    assert_string_equal(err.code, "invalid_value");
    assert_string_equal(err.field, "y");
    json_decref(jwk);

    /* P-384 and P-521 (coordinates padded to 66 bytes) round trip. */
    const char *curves[] = {"secp384r1", "secp521r1", "secp256k1"};
    const char *crvs[] = {"P-384", "P-521", "secp256k1"};
    const size_t lens[] = {64, 88, 43};
    for (int i = 0; i < 3; i++) {
        for (int round = 0; round < 4; round++) {
            key = s_key("EC", 0, curves[i]);
            out = cf_key_public_jwk(key, &err);
            assert_non_null(out);
            assert_string_equal(json_string_value(json_object_get(out, "crv")), crvs[i]);
            assert_int_equal(strlen(json_string_value(json_object_get(out, "x"))), lens[i]);
            assert_int_equal(strlen(json_string_value(json_object_get(out, "y"))), lens[i]);
            EVP_PKEY *pub = cf_key_from_jwk(out, &err);
            assert_non_null(pub);
            assert_int_equal(EVP_PKEY_eq(key, pub), 1);
            EVP_PKEY_free(pub);
            json_decref(out);
            EVP_PKEY_free(key);
        }
    }
}

static void s_jwk_fail(const char *text, const char *code, const char *field)
{
    cf_error_t err = {0};
    json_t *jwk = s_json(text);
    EVP_PKEY *key = cf_key_from_jwk(jwk, &err);
    if (key)
        fail_msg("accepted %s", text);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    json_decref(jwk);
}

static void test_jwk_invalid(void **state)
{
    s_jwk_fail("{}", "missing_field", "kty");
    s_jwk_fail("{\"kty\": 1}", "invalid_type", "kty");
    s_jwk_fail("{\"kty\": \"oct\", \"k\": \"AAAA\"}", "unsupported_key", "kty");
    s_jwk_fail("{\"kty\": \"RSA\", \"e\": \"AQAB\"}", "missing_field", "n");
    s_jwk_fail("{\"kty\": \"RSA\", \"n\": \"AQAB\", \"e\": \"AQA=\"}", "invalid_value", "e");
    s_jwk_fail("{\"kty\": \"RSA\", \"n\": \"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWg\","
               " \"e\": \"AQAA\"}",
               "invalid_value", "e");
    s_jwk_fail("{\"kty\": \"EC\", \"crv\": \"P-192\", \"x\": \"AA\", \"y\": \"AA\"}",
               "unsupported_key", "crv");
    s_jwk_fail("{\"kty\": \"EC\", \"x\": \"AA\", \"y\": \"AA\"}", "missing_field", "crv");
    s_jwk_fail("{\"kty\": \"OKP\", \"crv\": \"X25519\", \"x\": \"AA\"}", "unsupported_key", "crv");
    s_jwk_fail("{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"x\": \"AAAA\"}", "invalid_value", "x");

    /* Keys with no JWK form. */
    cf_error_t err = {0};
    EVP_PKEY *dsa = s_key("DSA", 1024, NULL);
    assert_null(cf_key_public_jwk(dsa, &err));
    assert_string_equal(err.code, "unsupported_key");
    EVP_PKEY_free(dsa);
    cf_error_clear(&err);
    EVP_PKEY *b = s_key("EC", 0, "brainpoolP256r1");
    assert_null(cf_key_public_jwk(b, &err));
    assert_string_equal(err.code, "unsupported_key");
    EVP_PKEY_free(b);

    char tp[CF_KEY_THUMBPRINT_MAX];
    json_t *j = s_json("{\"kty\": \"EC\", \"crv\": \"P-256\", \"x\": \"AA\"}");
    assert_int_equal(cf_key_jwk_thumbprint(j, tp, sizeof tp), -1);
    json_decref(j);
    assert_int_equal(ERR_peek_error(), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_params_defaults),     cmocka_unit_test(test_params_config),
        cmocka_unit_test(test_params_invalid),      cmocka_unit_test(test_generate_every_type),
        cmocka_unit_test(test_algorithm_names),     cmocka_unit_test(test_algorithm_defaults),
        cmocka_unit_test(test_pkcs8_roundtrip),     cmocka_unit_test(test_pkcs8_wrong_password),
        cmocka_unit_test(test_pkcs8_corrupt),       cmocka_unit_test(test_pkcs8_uses_scrypt),
        cmocka_unit_test(test_base64url),           cmocka_unit_test(test_jwk_rfc7638),
        cmocka_unit_test(test_jwk_ed25519_rfc8037), cmocka_unit_test(test_jwk_ec),
        cmocka_unit_test(test_jwk_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
