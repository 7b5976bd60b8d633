/* cf_csr: requests read without decoding their key must be accepted and refused exactly as
 * OpenSSL's own d2i_X509_REQ + X509_REQ_verify do, for every key type (EC and Ed25519 the fast
 * way, the others the usual way), with bad signatures, mismatched algorithms, points off the
 * curve, trailing bytes and garbage; the subject and the SubjectPublicKeyInfo come out as
 * they went in. Requests are made here with the OpenSSL API. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "cf_csr.h"

/* A request for CN=csr.example.com with a fresh key of TYPE (PARAM: curve or bits), signed
 * with MD (NULL for EdDSA); its DER (caller frees) into *LEN. */
static unsigned char *s_request(const char *type, const char *param, const EVP_MD *md, int *len)
{
    EVP_PKEY *key = strcmp(type, "EC") == 0    ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", param)
                    : strcmp(type, "RSA") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                                               : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(key);
    X509_REQ *req = X509_REQ_new();
    X509_NAME *name = X509_REQ_get_subject_name(req);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"csr.example.com",
                               -1, -1, 0);
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, md) > 0);
    unsigned char *der = NULL;
    *len = i2d_X509_REQ(req, &der);
    assert_true(*len > 0);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return der;
}

/* OpenSSL's own verdict on DER. */
static bool s_openssl_accepts(const unsigned char *der, size_t len)
{
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    EVP_PKEY *pub = req && p == der + len ? X509_REQ_get0_pubkey(req) : NULL;
    bool ok = pub && X509_REQ_verify(req, pub) == 1;
    X509_REQ_free(req);
    return ok;
}

/* cf_csr_read's verdict on DER must be OpenSSL's; a read one comes out as it went in. */
static bool s_check(const unsigned char *der, size_t len, bool want_fast)
{
    cf_csr_t csr;
    cf_error_t err = {0};
    bool ok = cf_csr_read(der, len, &csr, &err) == 0;
    assert_int_equal(ok, s_openssl_accepts(der, len));
    if (!ok) {
        assert_string_equal(err.code, "invalid_csr");
        assert_string_equal(err.field, "params.csr");
        return false;
    }
    assert_int_equal(csr.fast, want_fast);
    assert_ptr_equal(csr.der, der);
    const unsigned char *p = der;
    X509_REQ *req = d2i_X509_REQ(NULL, &p, (long)len);
    assert_int_equal(X509_NAME_cmp(csr.subject, X509_REQ_get_subject_name(req)), 0);
    unsigned char *a = NULL, *b = NULL;
    int alen = i2d_X509_PUBKEY(csr.pubkey, &a),
        blen = i2d_X509_PUBKEY(X509_REQ_get_X509_PUBKEY(req), &b);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, (size_t)alen);
    OPENSSL_free(a);
    OPENSSL_free(b);
    X509_REQ_free(req);
    cf_csr_clear(&csr);
    cf_csr_clear(&csr); /* twice is harmless */
    return true;
}

static void test_every_key_type(void **state)
{
    (void)state;
    static const struct {
        const char *type, *param;
        const char *md; /* NULL: EdDSA */
        bool fast;
    } cases[] = {
        {"EC", "P-256", "SHA256", true},      {"EC", "P-384", "SHA384", true},
        {"EC", "P-521", "SHA512", true},      {"EC", "P-256", "SHA512", true},
        {"EC", "secp256k1", "SHA256", false}, {"ED25519", NULL, NULL, true},
        {"ED448", NULL, NULL, false},         {"RSA", NULL, "SHA256", false},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int len;
        const EVP_MD *md = cases[i].md ? EVP_get_digestbyname(cases[i].md) : NULL;
        unsigned char *der = s_request(cases[i].type, cases[i].param, md, &len);
        if (!s_check(der, (size_t)len, cases[i].fast))
            fail_msg("%s %s refused", cases[i].type, cases[i].param ? cases[i].param : "");
        /* Each of the last eight bytes (the signature's) flipped in turn: always refused. */
        for (int k = 1; k <= 8; k++) {
            der[len - k] ^= 0x5a;
            assert_false(s_check(der, (size_t)len, cases[i].fast));
            der[len - k] ^= 0x5a;
        }
        OPENSSL_free(der);
    }
}

/* Find the first occurrence of NEEDLE in DER. */
static unsigned char *s_find(unsigned char *der, size_t len, const unsigned char *needle,
                             size_t nlen)
{
    for (size_t i = 0; i + nlen <= len; i++)
        if (memcmp(der + i, needle, nlen) == 0)
            return der + i;
    return NULL;
}

static void test_refused_like_openssl(void **state)
{
    (void)state;
    int len;
    unsigned char *der = s_request("EC", "P-256", EVP_sha256(), &len);
    /* A point off the curve: the last byte of the public key changed. */
    static const unsigned char point_tag[] = {0x03, 0x42, 0x00, 0x04};
    unsigned char *point = s_find(der, (size_t)len, point_tag, sizeof point_tag);
    assert_non_null(point);
    point[sizeof point_tag + 63] ^= 0x01;
    assert_false(s_check(der, (size_t)len, true));
    point[sizeof point_tag + 63] ^= 0x01;
    assert_true(s_check(der, (size_t)len, true));
    /* The signature algorithm changed to ecdsa-with-SHA384 (1.2.840.10045.4.3.3): the digest
     * no longer matches. */
    static const unsigned char sha256_oid[] = {0x06, 0x08, 0x2a, 0x86, 0x48,
                                               0xce, 0x3d, 0x04, 0x03, 0x02};
    unsigned char *oid = s_find(der, (size_t)len, sha256_oid, sizeof sha256_oid);
    assert_non_null(oid);
    oid[9] = 0x03;
    assert_false(s_check(der, (size_t)len, true));
    oid[9] = 0x02;
    /* Trailing bytes, a cut request, garbage, nothing. */
    unsigned char *longer = malloc((size_t)len + 1);
    memcpy(longer, der, (size_t)len);
    longer[len] = 0;
    assert_false(s_check(longer, (size_t)len + 1, true));
    free(longer);
    assert_false(s_check(der, (size_t)len - 1, true));
    assert_false(s_check((const unsigned char *)"not a request", 13, true));
    assert_false(s_check(der, 0, true));
    OPENSSL_free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_key_type),
        cmocka_unit_test(test_refused_like_openssl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
