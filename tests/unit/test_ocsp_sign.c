/* cf_ocsp signing: responses made by the template signer for RSA, P-256 and Ed25519
 * responders, read back and verified by OpenSSL's own OCSP code: the status, reason and
 * invalidity date, thisUpdate/nextUpdate/producedAt, the responder named by key hash with its
 * certificate included, no nonce, the CertID that OCSP_cert_to_id (SHA-1) builds, and DER
 * that OpenSSL re-encodes to the same bytes for serials of every length. No services needed;
 * reads as cf_ocsp's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/ocsp.h>
#include <openssl/x509v3.h>

#include "cf_issue.h"
#include "cf_key.h"
#include "cf_ocsp.h"
#include "cf_revocation.h"
#include "cf_x509_ext.h"

typedef struct {
    EVP_PKEY *ca_key;          /* the CA's key */
    X509 *ca_cert;             /* its self-signed certificate */
    cf_ca_t ca;                /* the fields cf_ocsp_sign reads: id and cert */
    EVP_PKEY *key;             /* the responder's key */
    X509 *cert;                /* the responder certificate */
    cf_ocsp_responder_t *resp; /* prepared responder */
    X509_STORE *store;         /* trusts the CA */
} s_pki_t;

static EVP_PKEY *s_key(const char *type, int size)
{
    cf_key_params_t params;
    cf_error_t err = {0};
    if (cf_key_params_init(&params, NULL, type, size, NULL, &err) != 0)
        fail_msg("%s: %s", err.field, err.message);
    EVP_PKEY *key = cf_key_generate(&params, &err);
    if (!key)
        fail_msg("%s", err.message);
    return key;
}

static json_t *s_exts(const char *text)
{
    json_error_t jerr;
    cf_error_t err = {0};
    json_t *raw = json_loads(text, 0, &jerr);
    assert_non_null(raw);
    json_t *exts = cf_extensions_parse(raw, &err);
    json_decref(raw);
    if (!exts)
        fail_msg("%s: %s", err.field, err.message);
    return exts;
}

static json_t *s_subject(const char *cn)
{
    return json_pack("[{s:s, s:s}]", "oid", "2.5.4.3", "value", cn);
}

/* A certificate signed by ISSUER (NULL: self-signed) with a given serial (NULL: random). */
static X509 *s_cert(const char *cn, EVP_PKEY *key, const char *exts_text, X509 *issuer,
                    EVP_PKEY *issuer_key, const char *serial_hex)
{
    json_t *subject = s_subject(cn), *exts = s_exts(exts_text);
    ASN1_INTEGER *serial = NULL;
    if (serial_hex) {
        BIGNUM *bn = NULL;
        assert_true(BN_hex2bn(&bn, serial_hex) > 0);
        serial = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
    }
    const EVP_MD *md = cf_key_default_algorithm(issuer_key) ? EVP_sha256() : NULL;
    int64_t now = (int64_t)time(NULL);
    cf_issue_t req = {.subject = subject,
                      .public_key = key,
                      .extensions = exts,
                      .not_before = now - 60,
                      .not_after = now + 86400 * 3,
                      .issuer_cert = issuer,
                      .issuer_key = issuer_key,
                      .md = md,
                      .serial = serial};
    cf_error_t err = {0};
    X509 *cert = cf_issue_cert(&req, &err);
    if (!cert)
        fail_msg("%s: %s", err.field, err.message);
    ASN1_INTEGER_free(serial);
    json_decref(subject);
    json_decref(exts);
    return cert;
}

static void s_pki_init(s_pki_t *p, const char *type, int size)
{
    memset(p, 0, sizeof *p);
    p->ca_key = s_key(type, size);
    p->ca_cert = s_cert("OCSP Test CA", p->ca_key,
                        "[{\"type\": \"basic_constraints\", \"critical\": true, \"value\": "
                        "{\"ca\": true, \"path_length\": null}}, {\"type\": \"key_usage\", "
                        "\"critical\": true, \"value\": [\"crl_sign\", \"key_cert_sign\"]}]",
                        NULL, p->ca_key, NULL);
    p->ca.id = 7;
    p->ca.cert = p->ca_cert;
    snprintf(p->ca.name, sizeof p->ca.name, "test");
    p->key = s_key(type, size);
    p->cert = s_cert("OCSP Test CA OCSP responder delegate certificate", p->key,
                     "[{\"type\": \"key_usage\", \"critical\": true, \"value\": "
                     "[\"digital_signature\"]}, {\"type\": \"extended_key_usage\", \"value\": "
                     "[\"OCSPSigning\"]}, {\"type\": \"ocsp_no_check\", \"value\": null}]",
                     p->ca_cert, p->ca_key, NULL);
    cf_error_t err = {0};
    p->resp = cf_ocsp_responder_new(42, p->ca.id, p->ca_cert, p->cert, p->key, NULL, &err);
    if (!p->resp)
        fail_msg("%s", err.message);
    p->store = X509_STORE_new();
    X509_STORE_add_cert(p->store, p->ca_cert);
}

static void s_pki_free(s_pki_t *p)
{
    cf_ocsp_responder_destroy(&p->resp);
    assert_null(p->resp);
    X509_STORE_free(p->store);
    X509_free(p->cert);
    X509_free(p->ca_cert);
    EVP_PKEY_free(p->key);
    EVP_PKEY_free(p->ca_key);
}

static time_t s_time(const ASN1_GENERALIZEDTIME *t)
{
    struct tm tm;
    assert_int_equal(ASN1_TIME_to_tm(t, &tm), 1);
    return timegm(&tm);
}

/* Sign ST and check everything OpenSSL can tell about the response. LEAF (may be NULL) is
 * the certificate the status is for (its CertID comes from OCSP_cert_to_id); without it the
 * CertID is built from the CA and the serial. */
static void s_check(s_pki_t *p, const cf_ocsp_status_t *st, X509 *leaf, int want_reason)
{
    int64_t this_update = (int64_t)time(NULL), next_update = this_update + 86400;
    unsigned char *der = NULL;
    int len = 0;
    cf_error_t err = {0};
    if (cf_ocsp_sign(&p->ca, p->resp, st, this_update, next_update, &der, &len, &err) != 0)
        fail_msg("%s", err.message);
    const unsigned char *q = der;
    OCSP_RESPONSE *resp = d2i_OCSP_RESPONSE(NULL, &q, len);
    assert_non_null(resp);
    assert_ptr_equal(q, der + len);
    /* DER is canonical: OpenSSL writes what it read back to the same bytes. */
    unsigned char *again = NULL;
    int again_len = i2d_OCSP_RESPONSE(resp, &again);
    assert_int_equal(again_len, len);
    assert_memory_equal(again, der, (size_t)len);
    OPENSSL_free(again);
    assert_int_equal(OCSP_response_status(resp), OCSP_RESPONSE_STATUS_SUCCESSFUL);
    OCSP_BASICRESP *bs = OCSP_response_get1_basic(resp);
    assert_non_null(bs);
    /* Signed by the delegated responder, which the CA issued: the full RFC 6960 check. */
    if (OCSP_basic_verify(bs, NULL, p->store, 0) != 1) {
        ERR_print_errors_fp(stderr);
        fail_msg("OCSP_basic_verify failed");
    }
    /* The RFC 5019 profile: responder by key hash, its certificate included, no nonce. */
    const ASN1_OCTET_STRING *keyid = NULL;
    const X509_NAME *byname = NULL;
    assert_int_equal(OCSP_resp_get0_id(bs, &keyid, &byname), 1);
    assert_non_null(keyid);
    assert_null(byname);
    unsigned char hash[20];
    unsigned int hl;
    assert_int_equal(X509_pubkey_digest(p->cert, EVP_sha1(), hash, &hl), 1);
    assert_int_equal(ASN1_STRING_length(keyid), 20);
    assert_memory_equal(ASN1_STRING_get0_data(keyid), hash, 20);
    const STACK_OF(X509) *certs = OCSP_resp_get0_certs(bs);
    assert_int_equal(sk_X509_num(certs), 1);
    assert_int_equal(X509_cmp(sk_X509_value(certs, 0), p->cert), 0);
    assert_true(OCSP_BASICRESP_get_ext_by_NID(bs, NID_id_pkix_OCSP_Nonce, -1) < 0);
    assert_int_equal(OCSP_resp_count(bs), 1);
    assert_int_equal(s_time(OCSP_resp_get0_produced_at(bs)), (time_t)this_update);
    /* The CertID a client builds finds the single response. */
    OCSP_CERTID *id;
    if (leaf) {
        id = OCSP_cert_to_id(EVP_sha1(), leaf, p->ca_cert);
    } else {
        BIGNUM *bn = NULL;
        assert_true(BN_hex2bn(&bn, st->serial) > 0);
        ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(bn, NULL);
        id = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(p->ca_cert),
                              X509_get0_pubkey_bitstr(p->ca_cert), serial);
        ASN1_INTEGER_free(serial);
        BN_free(bn);
    }
    assert_non_null(id);
    int status = -1, reason = -2;
    ASN1_GENERALIZEDTIME *rev = NULL, *thisupd = NULL, *nextupd = NULL;
    assert_int_equal(OCSP_resp_find_status(bs, id, &status, &reason, &rev, &thisupd, &nextupd), 1);
    assert_int_equal(OCSP_check_validity(thisupd, nextupd, 300, -1), 1);
    assert_int_equal(s_time(thisupd), (time_t)this_update);
    assert_int_equal(s_time(nextupd), (time_t)next_update);
    if (st->revoked) {
        assert_int_equal(status, V_OCSP_CERTSTATUS_REVOKED);
        assert_int_equal(s_time(rev), (time_t)st->revoked_date);
        assert_int_equal(reason, want_reason);
    } else {
        assert_int_equal(status, V_OCSP_CERTSTATUS_GOOD);
    }
    OCSP_SINGLERESP *single = OCSP_resp_get0(bs, 0);
    ASN1_GENERALIZEDTIME *inv =
        OCSP_SINGLERESP_get1_ext_d2i(single, NID_invalidity_date, NULL, NULL);
    if (st->revoked && st->compromised) {
        assert_non_null(inv);
        assert_int_equal(s_time(inv), (time_t)st->compromised);
    } else {
        assert_null(inv);
    }
    ASN1_GENERALIZEDTIME_free(inv);
    OCSP_CERTID_free(id);
    OCSP_BASICRESP_free(bs);
    OCSP_RESPONSE_free(resp);
    OPENSSL_free(der);
}

/* Every status for one key type. */
static void s_statuses(const char *type, int size)
{
    s_pki_t p;
    s_pki_init(&p, type, size);
    int64_t now = (int64_t)time(NULL);
    X509 *leaf = s_cert("leaf.example.com", p.key, "[]", p.ca_cert, p.ca_key, "4A1B2C3D4E5F");
    cf_ocsp_status_t good = {.serial = "4A1B2C3D4E5F"};
    s_check(&p, &good, leaf, -1);
    cf_ocsp_status_t revoked = {.serial = "4A1B2C3D4E5F",
                                .revoked = true,
                                .revoked_date = now - 3600,
                                .reason = "key_compromise"};
    s_check(&p, &revoked, leaf, OCSP_REVOKED_STATUS_KEYCOMPROMISE);
    cf_ocsp_status_t unspecified = {.serial = "4A1B2C3D4E5F",
                                    .revoked = true,
                                    .revoked_date = now - 10,
                                    .reason = "unspecified"};
    s_check(&p, &unspecified, leaf, OCSP_REVOKED_STATUS_NOSTATUS);
    cf_ocsp_status_t no_reason = {.serial = "4A1B2C3D4E5F", .revoked = true, .revoked_date = now};
    s_check(&p, &no_reason, leaf, OCSP_REVOKED_STATUS_NOSTATUS);
    cf_ocsp_status_t compromised = {.serial = "4A1B2C3D4E5F",
                                    .revoked = true,
                                    .revoked_date = now - 60,
                                    .reason = "superseded",
                                    .compromised = now - 86400 * 10};
    s_check(&p, &compromised, leaf, OCSP_REVOKED_STATUS_SUPERSEDED);
    cf_ocsp_status_t hold = {.serial = "4A1B2C3D4E5F",
                             .revoked = true,
                             .revoked_date = now,
                             .reason = "certificate_hold",
                             .compromised = now - 5};
    s_check(&p, &hold, leaf, OCSP_REVOKED_STATUS_CERTIFICATEHOLD);
    X509_free(leaf);
    s_pki_free(&p);
}

static void test_rsa(void **state)
{
    s_statuses("RSA", 2048);
}

static void test_p256(void **state)
{
    s_statuses("EC", 0);
}

static void test_ed25519(void **state)
{
    s_statuses("Ed25519", 0);
}

static void test_ed448(void **state)
{
    s_statuses("Ed448", 0);
}

/* Digests given by the caller: SHA-224 to SHA-512 with RSA and ECDSA, SHA3 with RSA (OpenSSL
 * 3.0 cannot verify ECDSA with SHA3, which is why the default is never SHA3). */
static void test_digests(void **state)
{
    static const char *const types[] = {"RSA", "EC", NULL};
    for (int t = 0; types[t]; t++) {
        const EVP_MD *mds[] = {EVP_sha224(), EVP_sha384(), EVP_sha512(),
                               t == 0 ? EVP_sha3_256() : NULL, NULL};
        s_pki_t p;
        s_pki_init(&p, types[t], strcmp(types[t], "RSA") == 0 ? 2048 : 0);
        for (int m = 0; mds[m]; m++) {
            cf_error_t err = {0};
            cf_ocsp_responder_t *r =
                cf_ocsp_responder_new(43, p.ca.id, p.ca_cert, p.cert, p.key, mds[m], &err);
            if (!r)
                fail_msg("%s with %s: %s", types[t], EVP_MD_get0_name(mds[m]), err.message);
            cf_ocsp_responder_t *keep = p.resp;
            p.resp = r;
            cf_ocsp_status_t good = {.serial = "0123"};
            s_check(&p, &good, NULL, -1);
            p.resp = keep;
            cf_ocsp_responder_destroy(&r);
        }
        s_pki_free(&p);
    }
}

/* Serials of every length, with and without the high bit (which needs a 0x00 octet), and
 * the same DER a client's CertID (from the real certificate) finds. */
static void test_serials(void **state)
{
    s_pki_t p;
    s_pki_init(&p, "EC", 0);
    static const char *const serials[] = {
        "01",
        "7F",
        "80",
        "FF",
        "0100",
        "8000",
        "00C0FFEE",
        "4A1B2C3D4E5F60718293A4B5C6D7E8F901234567",
        "C1B2C3D4E5F60718293A4B5C6D7E8F9012345678",
        "FFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF",
        "5F6E7D8C9BAAB9C8D7E6F5041322314F5E6D7C8B9A", /* 21 octets, imported certificates */
        NULL};
    int64_t now = (int64_t)time(NULL);
    for (int i = 0; serials[i]; i++) {
        X509 *leaf = s_cert("leaf", p.key, "[]", p.ca_cert, p.ca_key, serials[i]);
        cf_ocsp_status_t good = {.serial = serials[i]};
        s_check(&p, &good, leaf, -1);
        cf_ocsp_status_t revoked = {
            .serial = serials[i], .revoked = true, .revoked_date = now, .reason = "ca_compromise"};
        s_check(&p, &revoked, leaf, OCSP_REVOKED_STATUS_CACOMPROMISE);
        X509_free(leaf);
    }
    /* Odd digit counts are read as whole octets with a leading zero. */
    cf_ocsp_status_t odd = {.serial = "ABC"};
    s_check(&p, &odd, NULL, -1);
    s_pki_free(&p);
}

/* Bad input is refused with an error, never a crash or a response. */
static void test_bad_input(void **state)
{
    s_pki_t p;
    s_pki_init(&p, "EC", 0);
    int64_t now = (int64_t)time(NULL);
    unsigned char *der = NULL;
    int len = -1;
    cf_error_t err = {0};
    static const char *const bad[] = {"", "XYZ", "12 34", NULL};
    for (int i = 0; bad[i]; i++) {
        cf_ocsp_status_t st = {.serial = bad[i]};
        cf_error_clear(&err);
        assert_int_equal(cf_ocsp_sign(&p.ca, p.resp, &st, now, now + 60, &der, &len, &err), -1);
        assert_string_equal(err.code, "invalid_value");
        assert_null(der);
    }
    char longer[200];
    memset(longer, 'A', sizeof longer - 1);
    longer[sizeof longer - 1] = '\0';
    cf_ocsp_status_t too_long = {.serial = longer};
    assert_int_equal(cf_ocsp_sign(&p.ca, p.resp, &too_long, now, now + 60, &der, &len, &err), -1);
    cf_ocsp_status_t null_serial = {.serial = NULL};
    assert_int_equal(cf_ocsp_sign(&p.ca, p.resp, &null_serial, now, now + 60, &der, &len, &err),
                     -1);
    cf_ocsp_status_t reason = {
        .serial = "01", .revoked = true, .revoked_date = now, .reason = "because"};
    cf_error_clear(&err);
    assert_int_equal(cf_ocsp_sign(&p.ca, p.resp, &reason, now, now + 60, &der, &len, &err), -1);
    assert_string_equal(err.field, "reason");
    /* Times: next before this, years past 9999. */
    cf_ocsp_status_t good = {.serial = "01"};
    assert_int_equal(cf_ocsp_sign(&p.ca, p.resp, &good, now, now - 1, &der, &len, &err), -1);
    assert_int_equal(
        cf_ocsp_sign(&p.ca, p.resp, &good, now, (int64_t)253402300800LL, &der, &len, &err), -1);
    assert_int_equal(
        cf_ocsp_sign(&p.ca, p.resp, &good, now, (int64_t)253402300799LL, &der, &len, &err), 0);
    OPENSSL_free(der);
    der = NULL;
    /* Another CA than the responder's. */
    cf_ca_t other = p.ca;
    other.id = 8;
    cf_error_clear(&err);
    assert_int_equal(cf_ocsp_sign(&other, p.resp, &good, now, now + 60, &der, &len, &err), -1);
    assert_null(der);
    /* A key that is not the certificate's. */
    EVP_PKEY *stranger = s_key("EC", 0);
    assert_null(cf_ocsp_responder_new(1, 7, p.ca_cert, p.cert, stranger, NULL, &err));
    EVP_PKEY_free(stranger);
    s_pki_free(&p);
}

/* The Redis value: the cf_revocation header, then the DER. */
static void test_cache_value(void **state)
{
    static const unsigned char der[] = {0x30, 0x03, 0x0a, 0x01, 0x00};
    size_t len = 0;
    unsigned char *value = cf_ocsp_cache_value(1000, 2000, der, sizeof der, &len);
    assert_non_null(value);
    assert_int_equal(len, CF_REVSTORE_HEADER + sizeof der);
    int64_t t1 = 0, t2 = 0;
    assert_int_equal(cf_revstore_parse(value, len, &t1, &t2), 0);
    assert_int_equal(t1, 1000);
    assert_int_equal(t2, 2000);
    assert_memory_equal(value + CF_REVSTORE_HEADER, der, sizeof der);
    free(value);
    assert_null(cf_ocsp_cache_value(1, 2, NULL, 0, &len));
}

/* The responder's signature hash: the one its certificate was signed with; none for Ed. */
static void test_digest(void **state)
{
    s_pki_t p;
    s_pki_init(&p, "EC", 0);
    assert_ptr_equal(p.resp->md, EVP_sha256());
    assert_int_equal(p.resp->id, 42);
    /* A certificate signed with SHA3 still gives SHA-256 responses. */
    X509 *sha3 = s_cert("sha3 responder", p.key, "[]", p.ca_cert, p.ca_key, NULL);
    assert_int_equal(X509_sign(sha3, p.ca_key, EVP_sha3_256()) > 0, 1);
    cf_error_t err = {0};
    cf_ocsp_responder_t *r = cf_ocsp_responder_new(1, 7, p.ca_cert, sha3, p.key, NULL, &err);
    assert_non_null(r);
    assert_ptr_equal(r->md, EVP_sha256());
    cf_ocsp_responder_destroy(&r);
    X509_free(sha3);
    assert_int_equal(p.resp->ca_id, 7);
    assert_true(p.resp->expires > (int64_t)time(NULL));
    s_pki_free(&p);
    s_pki_init(&p, "Ed25519", 0);
    assert_null(p.resp->md);
    s_pki_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rsa),       cmocka_unit_test(test_p256),
        cmocka_unit_test(test_ed25519),   cmocka_unit_test(test_ed448),
        cmocka_unit_test(test_digests),   cmocka_unit_test(test_serials),
        cmocka_unit_test(test_bad_input), cmocka_unit_test(test_cache_value),
        cmocka_unit_test(test_digest),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
