/* cf_crl: the streaming CRL writer. Every CRL it writes is read back with OpenSSL
 * (d2i_X509_CRL), its signature checked with X509_CRL_verify for RSA, EC and Ed25519 keys, and
 * its entries, reasons, invalidity dates, IssuingDistributionPoint and number compared with
 * what was written: no entries, many entries, serials with the high bit set, dates past 2050. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/bn.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cf_crl.h"
#include "cf_x509_ext.h"

#define S_NOW 1700000000LL /* 2023-11-14 */

/* A self-signed CA certificate for KEY with a subject key identifier. */
static X509 *s_issuer(EVP_PKEY *key, bool with_ski)
{
    X509 *cert = X509_new();
    assert_non_null(cert);
    assert_int_equal(X509_set_version(cert, X509_VERSION_3), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
    X509_NAME *name = X509_get_subject_name(cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)"crl test ca", -1,
                               -1, 0);
    X509_set_issuer_name(cert, name);
    X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(cert), 86400);
    X509_set_pubkey(cert, key);
    if (with_ski) {
        X509V3_CTX ctx;
        X509V3_set_ctx(&ctx, cert, cert, NULL, NULL, 0);
        X509_EXTENSION *ext = X509V3_EXT_conf_nid(NULL, &ctx, NID_subject_key_identifier, "hash");
        assert_non_null(ext);
        X509_add_ext(cert, ext, -1);
        X509_EXTENSION_free(ext);
    }
    const EVP_MD *md = EVP_PKEY_is_a(key, "ED25519") ? NULL : EVP_sha256();
    assert_true(X509_sign(cert, key, md) > 0);
    return cert;
}

static EVP_PKEY *s_key(const char *type)
{
    EVP_PKEY *key = strcmp(type, "RSA") == 0  ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
                    : strcmp(type, "EC") == 0 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")
                                              : EVP_PKEY_Q_keygen(NULL, NULL, type);
    assert_non_null(key);
    return key;
}

static void s_ok(int rc, const cf_error_t *err)
{
    if (rc != 0)
        fail_msg("%s (%s): %s", err->code, err->field, err->message);
}

/* Parse DER as a CRL and check its signature with KEY. Caller frees. */
static X509_CRL *s_parse_verified(const unsigned char *der, size_t len, EVP_PKEY *key)
{
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    assert_ptr_equal(p, der + len); /* nothing left over */
    assert_int_equal(X509_CRL_verify(crl, key), 1);
    assert_int_equal(X509_CRL_get_version(crl), X509_CRL_VERSION_2);
    return crl;
}

static int64_t s_time(const ASN1_TIME *t)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return (int64_t)timegm(&tm);
}

static void s_assert_serial(const ASN1_INTEGER *have, const char *hex)
{
    BIGNUM *bn = NULL;
    assert_true(BN_hex2bn(&bn, hex) > 0);
    ASN1_INTEGER *want = BN_to_ASN1_INTEGER(bn, NULL);
    assert_int_equal(ASN1_INTEGER_cmp(have, want), 0);
    ASN1_INTEGER_free(want);
    BN_free(bn);
}

/* The reason of an entry, -1 when it has none. */
static int s_entry_reason(const X509_REVOKED *r)
{
    int crit = 0;
    ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
    if (!e)
        return -1;
    int v = (int)ASN1_ENUMERATED_get(e);
    ASN1_ENUMERATED_free(e);
    return v;
}

/* The invalidity date of an entry, CF_CRL_NO_DATE when it has none. */
static int64_t s_entry_invalidity(const X509_REVOKED *r)
{
    ASN1_GENERALIZEDTIME *g = X509_REVOKED_get_ext_d2i(r, NID_invalidity_date, NULL, NULL);
    if (!g)
        return CF_CRL_NO_DATE;
    assert_int_equal(ASN1_STRING_type(g), V_ASN1_GENERALIZEDTIME);
    int64_t t = s_time(g);
    ASN1_GENERALIZEDTIME_free(g);
    return t;
}

static int64_t s_crl_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(n);
    int64_t v = -1;
    assert_int_equal(ASN1_INTEGER_get_int64(&v, n), 1);
    ASN1_INTEGER_free(n);
    return v;
}

/* ---- tests ---------------------------------------------------------------------------- */

static void s_entries_for(const char *type)
{
    EVP_PKEY *key = s_key(type);
    X509 *issuer = s_issuer(key, true);
    const EVP_MD *md = strcmp(type, "ED25519") == 0 ? NULL : EVP_sha256();
    cf_error_t err = {0};
    cf_crl_info_t info = {.this_update = S_NOW, .next_update = S_NOW + 86400, .number = 42};
    cf_crl_writer_t *w = cf_crl_writer_new(issuer, key, md, &info, &err);
    s_ok(w ? 0 : -1, &err);
    s_ok(cf_crl_writer_add(w, "0A1B2C", S_NOW - 100, 1, S_NOW - 1000, &err), &err);
    s_ok(cf_crl_writer_add(w, "ff:00:01", S_NOW - 50, 0, CF_CRL_NO_DATE, &err), &err);
    s_ok(cf_crl_writer_add(w, "7F", S_NOW - 10, 10, CF_CRL_NO_DATE, &err), &err);
    assert_int_equal(cf_crl_writer_entries(w), 3);
    s_ok(cf_crl_writer_finish(w, &err), &err);
    size_t len = 0;
    const unsigned char *der = cf_crl_writer_der(w, &len);
    assert_non_null(der);
    X509_CRL *crl = s_parse_verified(der, len, key);
    /* A finished CRL takes no more entries. */
    assert_int_equal(cf_crl_writer_add(w, "01", S_NOW, 0, CF_CRL_NO_DATE, &err), -1);

    assert_int_equal(X509_NAME_cmp(X509_CRL_get_issuer(crl), X509_get_subject_name(issuer)), 0);
    assert_int_equal(s_time(X509_CRL_get0_lastUpdate(crl)), S_NOW);
    assert_int_equal(s_time(X509_CRL_get0_nextUpdate(crl)), S_NOW + 86400);
    assert_int_equal(s_crl_number(crl), 42);
    /* The AuthorityKeyIdentifier is the issuer's SKI. */
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(akid);
    assert_int_equal(ASN1_OCTET_STRING_cmp(akid->keyid, X509_get0_subject_key_id(issuer)), 0);
    AUTHORITY_KEYID_free(akid);
    assert_null(X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL));

    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(rev), 3);
    X509_REVOKED *r = sk_X509_REVOKED_value(rev, 0);
    s_assert_serial(X509_REVOKED_get0_serialNumber(r), "0A1B2C");
    assert_int_equal(s_time(X509_REVOKED_get0_revocationDate(r)), S_NOW - 100);
    assert_int_equal(ASN1_STRING_type(X509_REVOKED_get0_revocationDate(r)), V_ASN1_UTCTIME);
    assert_int_equal(s_entry_reason(r), 1);
    assert_int_equal(s_entry_invalidity(r), S_NOW - 1000);
    r = sk_X509_REVOKED_value(rev, 1);
    s_assert_serial(X509_REVOKED_get0_serialNumber(r), "FF0001");
    assert_int_equal(s_entry_reason(r), -1); /* unspecified is left out */
    assert_int_equal(s_entry_invalidity(r), CF_CRL_NO_DATE);
    assert_int_equal(X509_REVOKED_get_ext_count(r), 0);
    r = sk_X509_REVOKED_value(rev, 2);
    s_assert_serial(X509_REVOKED_get0_serialNumber(r), "7F");
    assert_int_equal(s_entry_reason(r), 10);

    X509_CRL_free(crl);
    cf_crl_writer_destroy(&w);
    assert_null(w);
    X509_free(issuer);
    EVP_PKEY_free(key);
}

static void test_rsa(void **state)
{
    s_entries_for("RSA");
}

static void test_ec(void **state)
{
    s_entries_for("EC");
}

static void test_ed25519(void **state)
{
    s_entries_for("ED25519");
}

static void test_empty_and_idp(void **state)
{
    EVP_PKEY *key = s_key("EC");
    /* No SKI: the AKI falls back to the SHA-1 of the public key. */
    X509 *issuer = s_issuer(key, false);
    cf_error_t err = {0};
    json_error_t jerr;
    json_t *model = json_loads("{\"type\": \"issuing_distribution_point\", \"critical\": true, "
                               "\"value\": {\"only_contains_user_certs\": true, \"full_name\": "
                               "[{\"type\": \"URI\", \"value\": \"http://example.com/x.crl\"}]}}",
                               0, &jerr);
    assert_non_null(model);
    X509_EXTENSION *idp = cf_extension_to_openssl(model, &err);
    s_ok(idp ? 0 : -1, &err);
    cf_crl_info_t info = {
        .this_update = S_NOW, .next_update = S_NOW + 600, .number = 0, .idp = idp, .headroom = 24};
    cf_crl_writer_t *w = cf_crl_writer_new(issuer, key, EVP_sha384(), &info, &err);
    s_ok(w ? 0 : -1, &err);
    assert_null(cf_crl_writer_der(w, NULL));
    s_ok(cf_crl_writer_finish(w, &err), &err);
    assert_int_equal(cf_crl_writer_finish(w, &err), -1);
    size_t len = 0;
    unsigned char *der = cf_crl_writer_der(w, &len);
    /* The headroom in front is the caller's. */
    memset(der - 24, 0xAB, 24);
    X509_CRL *crl = s_parse_verified(der, len, key);
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    assert_int_equal(rev ? sk_X509_REVOKED_num(rev) : 0, 0);
    assert_int_equal(s_crl_number(crl), 0);
    int crit = 0;
    ISSUING_DIST_POINT *got =
        X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, &crit, NULL);
    assert_non_null(got);
    assert_int_equal(crit, 1);
    assert_true(got->onlyuser > 0);
    assert_false(got->onlyCA > 0);
    assert_non_null(got->distpoint);
    GENERAL_NAME *gn = sk_GENERAL_NAME_value(got->distpoint->name.fullname, 0);
    assert_int_equal(gn->type, GEN_URI);
    assert_string_equal((const char *)ASN1_STRING_get0_data(gn->d.uniformResourceIdentifier),
                        "http://example.com/x.crl");
    ISSUING_DIST_POINT_free(got);
    /* And the model reads it back as written. */
    json_t *exts = cf_extensions_from_crl(crl, &err);
    assert_non_null(exts);
    json_t *back = cf_extensions_find(exts, "issuing_distribution_point");
    assert_non_null(back);
    assert_true(
        json_is_true(json_object_get(json_object_get(back, "value"), "only_contains_user_certs")));
    json_decref(exts);
    AUTHORITY_KEYID *akid = X509_CRL_get_ext_d2i(crl, NID_authority_key_identifier, NULL, NULL);
    assert_non_null(akid);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(X509_pubkey_digest(issuer, EVP_sha1(), md, &mdlen), 1);
    assert_int_equal(ASN1_STRING_length(akid->keyid), (int)mdlen);
    assert_memory_equal(ASN1_STRING_get0_data(akid->keyid), md, mdlen);
    AUTHORITY_KEYID_free(akid);
    X509_CRL_free(crl);
    cf_crl_writer_destroy(&w);
    X509_EXTENSION_free(idp);
    json_decref(model);
    X509_free(issuer);
    EVP_PKEY_free(key);
}

static void test_serials_and_dates(void **state)
{
    EVP_PKEY *key = s_key("ED25519");
    X509 *issuer = s_issuer(key, true);
    cf_error_t err = {0};
    /* Dates past 2050: GeneralizedTime everywhere. */
    int64_t t2060 = 2855000000LL, t2051 = 2556144000LL; /* 2060-06-22, 2051-01-01 */
    cf_crl_info_t info = {.this_update = t2051, .next_update = t2060, .number = INT64_MAX};
    cf_crl_writer_t *w = cf_crl_writer_new(issuer, key, NULL, &info, &err);
    s_ok(w ? 0 : -1, &err);
    static const struct {
        const char *in, *hex;
    } serials[] = {
        {"80", "80"},
        {"FF", "FF"},
        {"00FF", "FF"},
        {"000001", "01"},
        {"0", "00"},
        {"abc", "ABC"},
        {"8000000000000000000000000000000000000001", "8000000000000000000000000000000000000001"},
        {"DE:AD:BE:EF", "DEADBEEF"},
    };
    size_t n = sizeof serials / sizeof serials[0];
    for (size_t i = 0; i < n; i++)
        s_ok(cf_crl_writer_add(w, serials[i].in, t2060 - 1, 4, t2060 - 2, &err), &err);
    /* Refused: nothing is added. */
    assert_int_equal(cf_crl_writer_add(w, "", S_NOW, 0, CF_CRL_NO_DATE, &err), -1);
    assert_string_equal(err.field, "serial");
    assert_int_equal(cf_crl_writer_add(w, "XYZ", S_NOW, 0, CF_CRL_NO_DATE, &err), -1);
    assert_int_equal(cf_crl_writer_add(w, NULL, S_NOW, 0, CF_CRL_NO_DATE, &err), -1);
    char longhex[CF_CRL_SERIAL_HEX_MAX + 2];
    memset(longhex, 'A', sizeof longhex - 1);
    longhex[sizeof longhex - 1] = '\0';
    assert_int_equal(cf_crl_writer_add(w, longhex, S_NOW, 0, CF_CRL_NO_DATE, &err), -1);
    assert_int_equal(cf_crl_writer_add(w, "01", S_NOW, 7, CF_CRL_NO_DATE, &err), -1);
    assert_string_equal(err.field, "reason");
    assert_int_equal(cf_crl_writer_add(w, "01", S_NOW, 11, CF_CRL_NO_DATE, &err), -1);
    assert_int_equal(cf_crl_writer_add(w, "01", S_NOW, -1, CF_CRL_NO_DATE, &err), -1);
    assert_int_equal(cf_crl_writer_add(w, "01", 253402300800LL, 0, CF_CRL_NO_DATE, &err), -1);
    assert_string_equal(err.field, "revocation_date");
    assert_int_equal(cf_crl_writer_add(w, "01", S_NOW, 0, -62167219201LL, &err), -1);
    assert_string_equal(err.field, "invalidity_date");
    assert_int_equal(cf_crl_writer_entries(w), n);
    s_ok(cf_crl_writer_finish(w, &err), &err);
    size_t len = 0;
    const unsigned char *der = cf_crl_writer_der(w, &len);
    X509_CRL *crl = s_parse_verified(der, len, key);
    assert_int_equal(ASN1_STRING_type(X509_CRL_get0_lastUpdate(crl)), V_ASN1_GENERALIZEDTIME);
    assert_int_equal(s_time(X509_CRL_get0_lastUpdate(crl)), t2051);
    assert_int_equal(s_time(X509_CRL_get0_nextUpdate(crl)), t2060);
    assert_int_equal(s_crl_number(crl), INT64_MAX);
    STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
    assert_int_equal(sk_X509_REVOKED_num(rev), (int)n);
    for (size_t i = 0; i < n; i++) {
        X509_REVOKED *r = sk_X509_REVOKED_value(rev, (int)i);
        s_assert_serial(X509_REVOKED_get0_serialNumber(r), serials[i].hex);
        const ASN1_TIME *t = X509_REVOKED_get0_revocationDate(r);
        assert_int_equal(ASN1_STRING_type(t), V_ASN1_GENERALIZEDTIME);
        assert_int_equal(s_time(t), t2060 - 1);
        assert_int_equal(s_entry_reason(r), 4);
        assert_int_equal(s_entry_invalidity(r), t2060 - 2);
    }
    X509_CRL_free(crl);
    cf_crl_writer_destroy(&w);
    X509_free(issuer);
    EVP_PKEY_free(key);
}

static void test_bad_info(void **state)
{
    EVP_PKEY *key = s_key("ED25519");
    X509 *issuer = s_issuer(key, true);
    cf_error_t err = {0};
    cf_crl_info_t info = {.this_update = S_NOW, .next_update = S_NOW, .number = 1};
    assert_null(cf_crl_writer_new(issuer, key, NULL, &info, &err));
    assert_string_equal(err.field, "next_update");
    info.next_update = S_NOW + 1;
    info.number = -1;
    assert_null(cf_crl_writer_new(issuer, key, NULL, &info, &err));
    assert_string_equal(err.field, "number");
    info.number = 0;
    info.this_update = 253402300800LL;
    assert_null(cf_crl_writer_new(issuer, key, NULL, &info, &err));
    assert_null(cf_crl_writer_new(NULL, key, NULL, &info, &err));
    cf_crl_writer_destroy(NULL);
    X509_free(issuer);
    EVP_PKEY_free(key);
}

static void test_der_time(void **state)
{
    unsigned char out[20];
    int n = cf_crl_der_time(out, 0, false);
    assert_int_equal(n, 15);
    assert_int_equal(out[0], V_ASN1_UTCTIME);
    assert_memory_equal(out + 2, "700101000000Z", 13);
    n = cf_crl_der_time(out, 2524607999LL, false); /* 2049-12-31 23:59:59 */
    assert_memory_equal(out + 2, "491231235959Z", 13);
    n = cf_crl_der_time(out, 2524608000LL, false); /* 2050-01-01 */
    assert_int_equal(n, 17);
    assert_int_equal(out[0], V_ASN1_GENERALIZEDTIME);
    assert_memory_equal(out + 2, "20500101000000Z", 15);
    n = cf_crl_der_time(out, -631152001LL, false); /* 1949-12-31 23:59:59 */
    assert_int_equal(out[0], V_ASN1_GENERALIZEDTIME);
    assert_memory_equal(out + 2, "19491231235959Z", 15);
    n = cf_crl_der_time(out, 951782400LL, true); /* 2000-02-29 */
    assert_memory_equal(out + 2, "20000229000000Z", 15);
    assert_int_equal(cf_crl_der_time(out, 253402300799LL, true), 17);
    assert_memory_equal(out + 2, "99991231235959Z", 15);
    assert_int_equal(cf_crl_der_time(out, 253402300800LL, true), -1);
    assert_int_equal(cf_crl_der_time(out, INT64_MIN, true), -1);
}

/* Many entries: 200,000 of them, with reserve and without, long-form lengths throughout. */
static void test_many(void **state)
{
    EVP_PKEY *key = s_key("RSA");
    X509 *issuer = s_issuer(key, true);
    cf_error_t err = {0};
    cf_crl_info_t info = {.this_update = S_NOW, .next_update = S_NOW + 3600, .number = 7};
    for (int pass = 0; pass < 2; pass++) {
        cf_crl_writer_t *w = cf_crl_writer_new(issuer, key, EVP_sha512(), &info, &err);
        s_ok(w ? 0 : -1, &err);
        int count = 200000;
        if (pass)
            assert_int_equal(cf_crl_writer_reserve(w, (size_t)count), 0);
        for (int i = 0; i < count; i++) {
            char serial[48];
            /* 20-octet serials, half of them with the high bit set. */
            snprintf(serial, sizeof serial, "%02X%030X%08X", (i % 2) ? 0xC3 : 0x3C, 0, i);
            s_ok(cf_crl_writer_add(w, serial, S_NOW - i, i % 11 == 7 ? 0 : i % 11,
                                   i % 3 ? CF_CRL_NO_DATE : S_NOW - 2 * i, &err),
                 &err);
        }
        s_ok(cf_crl_writer_finish(w, &err), &err);
        size_t len = 0;
        const unsigned char *der = cf_crl_writer_der(w, &len);
        assert_true(len > (size_t)count * 30);
        X509_CRL *crl = s_parse_verified(der, len, key);
        STACK_OF(X509_REVOKED) *rev = X509_CRL_get_REVOKED(crl);
        assert_int_equal(sk_X509_REVOKED_num(rev), count);
        for (int i = 0; i < count; i += 9973) {
            X509_REVOKED *r = sk_X509_REVOKED_value(rev, i);
            char serial[48];
            snprintf(serial, sizeof serial, "%02X%030X%08X", (i % 2) ? 0xC3 : 0x3C, 0, i);
            s_assert_serial(X509_REVOKED_get0_serialNumber(r), serial);
            assert_int_equal(s_time(X509_REVOKED_get0_revocationDate(r)), S_NOW - i);
            int reason = i % 11 == 7 ? 0 : i % 11;
            assert_int_equal(s_entry_reason(r), reason ? reason : -1);
            assert_int_equal(s_entry_invalidity(r), i % 3 ? CF_CRL_NO_DATE : S_NOW - 2 * i);
        }
        X509_CRL_free(crl);
        cf_crl_writer_destroy(&w);
    }
    X509_free(issuer);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa),
        cmocka_unit_test(test_ec),
        cmocka_unit_test(test_ed25519),
        cmocka_unit_test(test_empty_and_idp),
        cmocka_unit_test(test_serials_and_dates),
        cmocka_unit_test(test_bad_info),
        cmocka_unit_test(test_der_time),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
