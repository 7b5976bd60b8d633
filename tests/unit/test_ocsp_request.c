/* cf_ocsp_request: requests built here with OpenSSL (SHA-1 and SHA-256 CertIDs, serials of
 * every shape, one and two requests, with and without nonce), hostile bytes, the unsigned
 * error responses as OpenSSL reads them, and the base64 of the GET form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>

#include "cf_ocsp_request.h"

typedef struct {
    EVP_PKEY *key; /* the issuer's key */
    X509 *ca;      /* a self-signed issuer */
} s_pki_t;

static int s_setup(void **state)
{
    s_pki_t *pki = calloc(1, sizeof *pki);
    pki->key = EVP_EC_gen("P-256");
    pki->ca = X509_new();
    X509_NAME *name = X509_get_subject_name(pki->ca);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)"test ca", -1, -1,
                               0);
    X509_set_issuer_name(pki->ca, name);
    ASN1_INTEGER_set(X509_get_serialNumber(pki->ca), 1);
    X509_gmtime_adj(X509_getm_notBefore(pki->ca), 0);
    X509_gmtime_adj(X509_getm_notAfter(pki->ca), 3600);
    X509_set_pubkey(pki->ca, pki->key);
    assert_true(X509_sign(pki->ca, pki->key, EVP_sha256()) > 0);
    *state = pki;
    return 0;
}

static int s_teardown(void **state)
{
    s_pki_t *pki = *state;
    X509_free(pki->ca);
    EVP_PKEY_free(pki->key);
    free(pki);
    return 0;
}

/* DER of a request for the serials in HEX (NULL-terminated list) hashed with MD. */
static unsigned char *s_request(s_pki_t *pki, const EVP_MD *md, bool nonce, const char *const *hex,
                                size_t *len)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    for (; *hex; hex++) {
        BIGNUM *bn = NULL;
        assert_true(BN_hex2bn(&bn, *hex) > 0);
        ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
        OCSP_CERTID *id = OCSP_cert_id_new(md, X509_get_subject_name(pki->ca),
                                           X509_get0_pubkey_bitstr(pki->ca), serial);
        assert_non_null(id);
        assert_non_null(OCSP_request_add0_id(req, id));
        ASN1_INTEGER_free(serial);
        BN_free(bn);
    }
    if (nonce)
        assert_int_equal(OCSP_request_add1_nonce(req, NULL, -1), 1);
    unsigned char *der = NULL;
    int n = i2d_OCSP_REQUEST(req, &der);
    assert_true(n > 0);
    OCSP_REQUEST_free(req);
    *len = (size_t)n;
    return der;
}

static void s_expect_hashes(s_pki_t *pki, const cf_ocsp_certid_t *id)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    assert_int_equal(X509_NAME_digest(X509_get_subject_name(pki->ca), EVP_sha1(), md, &n), 1);
    assert_int_equal(id->name_hash_len, 20);
    assert_memory_equal(id->name_hash, md, 20);
    assert_int_equal(X509_pubkey_digest(pki->ca, EVP_sha1(), md, &n), 1);
    assert_memory_equal(id->key_hash, md, 20);
}

static void test_sha1_serials(void **state)
{
    s_pki_t *pki = *state;
    /* serial as BN_hex2bn reads it, and as it must come out (cf_serial_hex's form) */
    static const char *const cases[][2] = {
        {"1", "01"},
        {"7F", "7F"},
        {"80", "80"}, /* high bit: DER adds a zero octet that must not show */
        {"00FF", "FF"},
        {"0102", "0102"},
        {"4A3F2C1B0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F50", "4A3F2C1B0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F50"},
        {"FF4A3F2C1B0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F", "FF4A3F2C1B0D9E8F7A6B5C4D3E2F1A0B9C8D7E6F"},
        {"abcdef", "ABCDEF"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (int nonce = 0; nonce < 2; nonce++) {
            const char *serials[] = {cases[i][0], NULL};
            size_t len;
            unsigned char *der = s_request(pki, EVP_sha1(), nonce, serials, &len);
            cf_ocsp_certid_t id;
            cf_error_t err = {0};
            assert_int_equal(cf_ocsp_request_parse(der, len, &id, &err), 0);
            assert_string_equal(id.serial, cases[i][1]);
            assert_true(cf_ocsp_certid_is_sha1(&id));
            assert_int_equal(id.has_nonce, nonce);
            s_expect_hashes(pki, &id);
            OPENSSL_free(der);
        }
    }
}

static void test_sha256_parsed_not_sha1(void **state)
{
    s_pki_t *pki = *state;
    const char *serials[] = {"1234", NULL};
    size_t len;
    unsigned char *der = s_request(pki, EVP_sha256(), false, serials, &len);
    cf_ocsp_certid_t id;
    cf_error_t err = {0};
    assert_int_equal(cf_ocsp_request_parse(der, len, &id, &err), 0);
    assert_int_equal(id.hash_nid, NID_sha256);
    assert_int_equal(id.name_hash_len, 32);
    assert_false(cf_ocsp_certid_is_sha1(&id));
    assert_string_equal(id.serial, "1234");
    OPENSSL_free(der);
}

static void s_expect_malformed(const unsigned char *der, size_t len)
{
    cf_ocsp_certid_t id;
    cf_error_t err = {0};
    assert_int_equal(cf_ocsp_request_parse(der, len, &id, &err), -1);
    assert_string_equal(err.code, "malformed_request");
    assert_string_equal(id.serial, "");
}

static void test_two_requests(void **state)
{
    s_pki_t *pki = *state;
    const char *serials[] = {"01", "02", NULL};
    size_t len;
    unsigned char *der = s_request(pki, EVP_sha1(), false, serials, &len);
    s_expect_malformed(der, len);
    OPENSSL_free(der);
}

static void test_zero_requests(void **state)
{
    s_pki_t *pki = *state;
    const char *serials[] = {NULL};
    size_t len;
    unsigned char *der = s_request(pki, EVP_sha1(), false, serials, &len);
    s_expect_malformed(der, len);
    OPENSSL_free(der);
}

static void test_truncated_and_trailing(void **state)
{
    s_pki_t *pki = *state;
    const char *serials[] = {"0A0B0C", NULL};
    size_t len;
    unsigned char *der = s_request(pki, EVP_sha1(), true, serials, &len);
    for (size_t n = 0; n < len; n++)
        s_expect_malformed(der, n);
    unsigned char *longer = malloc(len + 1);
    memcpy(longer, der, len);
    longer[len] = 0;
    s_expect_malformed(longer, len + 1);
    free(longer);
    OPENSSL_free(der);
}

static void test_garbage(void **state)
{
    static const unsigned char huge_len[] = {0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x30};
    static const unsigned char wrong_tag[] = {0x31, 0x03, 0x0a, 0x01, 0x00};
    s_expect_malformed(huge_len, sizeof huge_len);
    s_expect_malformed(wrong_tag, sizeof wrong_tag);
    s_expect_malformed((const unsigned char *)"hello", 5);
    s_expect_malformed(NULL, 0);
    unsigned char *big = calloc(1, CF_OCSP_REQUEST_MAX + 1);
    big[0] = 0x30;
    s_expect_malformed(big, CF_OCSP_REQUEST_MAX + 1);
    free(big);
    /* Random bytes never crash (the fuzz target goes further). */
    unsigned int seed = 1;
    unsigned char buf[200];
    for (int round = 0; round < 2000; round++) {
        size_t n = (size_t)(rand_r(&seed) % (int)sizeof buf);
        for (size_t i = 0; i < n; i++)
            buf[i] = (unsigned char)rand_r(&seed);
        if (n > 0)
            buf[0] = 0x30;
        cf_ocsp_certid_t id;
        cf_error_t err = {0};
        cf_ocsp_request_parse(buf, n, &id, &err);
    }
}

static void test_error_responses(void **state)
{
    static const cf_ocsp_error_status_t statuses[] = {
        CF_OCSP_MALFORMED_REQUEST, CF_OCSP_INTERNAL_ERROR, CF_OCSP_TRY_LATER, CF_OCSP_UNAUTHORIZED};
    static const int expected[] = {
        OCSP_RESPONSE_STATUS_MALFORMEDREQUEST, OCSP_RESPONSE_STATUS_INTERNALERROR,
        OCSP_RESPONSE_STATUS_TRYLATER, OCSP_RESPONSE_STATUS_UNAUTHORIZED};
    for (size_t i = 0; i < 4; i++) {
        size_t len = 0;
        const unsigned char *der = cf_ocsp_error_response(statuses[i], &len);
        assert_non_null(der);
        const unsigned char *p = der;
        OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &p, (long)len);
        assert_non_null(resp);
        assert_ptr_equal(p, der + len);
        assert_int_equal(OCSP_response_status(resp), expected[i]);
        assert_null(OCSP_response_get1_basic(resp));
        /* The same bytes OpenSSL writes for an unsigned response. */
        OCSP_RESPONSE *ref = OCSP_response_create(expected[i], NULL);
        unsigned char *ref_der = NULL;
        int ref_len = i2d_OCSP_RESPONSE(ref, &ref_der);
        assert_int_equal(ref_len, (int)len);
        assert_memory_equal(ref_der, der, len);
        OPENSSL_free(ref_der);
        OCSP_RESPONSE_free(ref);
        OCSP_RESPONSE_free(resp);
    }
    size_t len = 0;
    assert_null(cf_ocsp_error_response((cf_ocsp_error_status_t)0, &len));
    assert_null(cf_ocsp_error_response((cf_ocsp_error_status_t)5, &len));
}

static void s_expect_b64(const char *text, const char *bytes, size_t n)
{
    size_t len = 0;
    unsigned char *out = cf_ocsp_base64_decode(text, strlen(text), 1000, &len);
    assert_non_null(out);
    assert_int_equal(len, n);
    assert_memory_equal(out, bytes, n);
    free(out);
}

static void s_expect_b64_bad(const char *text, size_t max)
{
    size_t len = 0;
    assert_null(cf_ocsp_base64_decode(text, strlen(text), max, &len));
}

static void test_base64(void **state)
{
    s_expect_b64("", "", 0);
    s_expect_b64("Zg==", "f", 1);
    s_expect_b64("Zg", "f", 1);
    s_expect_b64("Zm8=", "fo", 2);
    s_expect_b64("Zm8", "fo", 2);
    s_expect_b64("Zm9v", "foo", 3);
    s_expect_b64("+/8=", "\xfb\xff", 2);
    s_expect_b64("%2B%2f8%3D", "\xfb\xff", 2); /* URL encoding not undone */
    s_expect_b64(" /8", "\xfb\xff", 2);        /* form decoding turned '+' into ' ' */
    s_expect_b64("-_8", "\xfb\xff", 2);        /* URL-safe alphabet */
    s_expect_b64_bad("Z", 100);                /* one character carries no byte */
    s_expect_b64_bad("Zg=", 100);              /* padding that does not fill the group */
    s_expect_b64_bad("Zg===", 100);
    s_expect_b64_bad("Zg==Zg==", 100); /* data after padding */
    s_expect_b64_bad("Zm9v!", 100);
    s_expect_b64_bad("%41AAA", 100); /* only escapes of '+', '/', '=' are undone */
    s_expect_b64_bad("Zm9vYmFy", 5); /* over the limit */
    s_expect_b64("Zm9vYmFy", "foobar", 6);
}

static void test_base64_request_round_trip(void **state)
{
    s_pki_t *pki = *state;
    const char *serials[] = {"80FF", NULL};
    size_t len;
    unsigned char *der = s_request(pki, EVP_sha1(), true, serials, &len);
    char *b64 = malloc(4 * ((len + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    size_t out_len = 0;
    unsigned char *out = cf_ocsp_base64_decode(b64, strlen(b64), CF_OCSP_REQUEST_MAX, &out_len);
    assert_non_null(out);
    assert_int_equal(out_len, len);
    cf_ocsp_certid_t id;
    cf_error_t err = {0};
    assert_int_equal(cf_ocsp_request_parse(out, out_len, &id, &err), 0);
    assert_string_equal(id.serial, "80FF");
    free(out);
    free(b64);
    OPENSSL_free(der);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sha1_serials),
        cmocka_unit_test(test_sha256_parsed_not_sha1),
        cmocka_unit_test(test_two_requests),
        cmocka_unit_test(test_zero_requests),
        cmocka_unit_test(test_truncated_and_trailing),
        cmocka_unit_test(test_garbage),
        cmocka_unit_test(test_error_responses),
        cmocka_unit_test(test_base64),
        cmocka_unit_test(test_base64_request_round_trip),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
