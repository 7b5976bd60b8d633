/* cf_x509_ext against OpenSSL itself: a certificate made by `openssl req -x509` with every
 * extension OpenSSL's config language can write (and a request made with the same config), and
 * a CRL built with the OpenSSL API, read with cf_extensions_from_cert / _req / _crl. Each model
 * read must be valid input, and our DER for it must be OpenSSL's, byte for byte. The PKI is
 * made at test time in a temporary directory. */
#include "x509_ext_testlib.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <sys/wait.h>
#include <unistd.h>

static const char s_config[] =
    "[req]\n"
    "distinguished_name = dn\n"
    "prompt = no\n"
    "[dn]\n"
    "CN = test.example.com\n"
    "[ext]\n"
    "basicConstraints = critical,CA:TRUE,pathlen:1\n"
    "keyUsage = critical,digitalSignature,keyCertSign,cRLSign\n"
    "extendedKeyUsage = serverAuth,clientAuth,1.2.3.4\n"
    "subjectKeyIdentifier = hash\n"
    "authorityKeyIdentifier = keyid:always\n"
    "subjectAltName = DNS:example.com,IP:192.0.2.1,IP:2001:db8::1,email:admin@example.com,"
    "URI:https://example.com/,RID:1.2.3.5,dirName:san_dir,otherName:1.2.3.6;UTF8:hello\n"
    "issuerAltName = URI:https://ca.example.com\n"
    "authorityInfoAccess = OCSP;URI:http://ocsp.example.com,caIssuers;URI:http://ca.example.com/"
    "ca.der\n"
    "subjectInfoAccess = caRepository;URI:http://ca.example.com/repo\n"
    "crlDistributionPoints = URI:http://ca.example.com/crl,dp2\n"
    "freshestCRL = URI:http://ca.example.com/delta.crl\n"
    "certificatePolicies = 2.5.29.32.0,@pol\n"
    "policyConstraints = critical,requireExplicitPolicy:0,inhibitPolicyMapping:1\n"
    "inhibitAnyPolicy = critical,1\n"
    "nameConstraints = critical,permitted;DNS:.example.com,excluded;IP:10.0.0.0/255.0.0.0\n"
    "tlsfeature = status_request\n"
    "noCheck = ignored\n"
    "1.2.3.4.5 = DER:30:03:02:01:07\n"
    "1.3.6.1.4.1.311.21.7 = DER:30:0B:06:03:2A:03:04:02:01:64:02:01:03\n"
    "[san_dir]\n"
    "C = AT\n"
    "CN = dir.example.com\n"
    "[dp2]\n"
    "fullname = URI:ldap://ldap.example.com/cn=crl\n"
    "reasons = keyCompromise,superseded\n"
    "CRLissuer = dirName:san_dir\n"
    "[pol]\n"
    "policyIdentifier = 1.2.3.4\n"
    "CPS.1 = http://ca.example.com/cps\n"
    "userNotice.1 = @notice\n"
    "[notice]\n"
    "explicitText = UTF8:Use with care\n"
    "organization = Example Org\n"
    "noticeNumbers = 1,2\n";

/* The models of s_config's extensions, in order; SKI and AKI are filled in from the cert. */
static const char s_expected[] =
    "["
    "{\"type\": \"basic_constraints\", \"critical\": true,"
    " \"value\": {\"ca\": true, \"path_length\": 1}},"
    "{\"type\": \"key_usage\", \"critical\": true,"
    " \"value\": [\"crl_sign\", \"digital_signature\", \"key_cert_sign\"]},"
    "{\"type\": \"extended_key_usage\", \"critical\": false,"
    " \"value\": [\"1.3.6.1.5.5.7.3.1\", \"1.3.6.1.5.5.7.3.2\", \"1.2.3.4\"]},"
    "{\"type\": \"subject_key_identifier\", \"critical\": false, \"value\": \"SKI\"},"
    "{\"type\": \"authority_key_identifier\", \"critical\": false, \"value\": {"
    " \"key_identifier\": \"SKI\", \"authority_cert_issuer\": null,"
    " \"authority_cert_serial_number\": null}},"
    "{\"type\": \"subject_alternative_name\", \"critical\": false, \"value\": ["
    " {\"type\": \"DNS\", \"value\": \"example.com\"},"
    " {\"type\": \"IP\", \"value\": \"192.0.2.1\"},"
    " {\"type\": \"IP\", \"value\": \"2001:db8::1\"},"
    " {\"type\": \"email\", \"value\": \"admin@example.com\"},"
    " {\"type\": \"URI\", \"value\": \"https://example.com/\"},"
    " {\"type\": \"RID\", \"value\": \"1.2.3.5\"},"
    " {\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.6\", \"value\": \"AT\"},"
    "  {\"oid\": \"2.5.4.3\", \"value\": \"dir.example.com\"}]},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.6\", \"type\": \"UTF8String\","
    "  \"value\": \"hello\"}}]},"
    "{\"type\": \"issuer_alternative_name\", \"critical\": false,"
    " \"value\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com\"}]},"
    "{\"type\": \"authority_information_access\", \"critical\": false, \"value\": ["
    " {\"access_method\": \"1.3.6.1.5.5.7.48.1\","
    "  \"access_location\": {\"type\": \"URI\", \"value\": \"http://ocsp.example.com\"}},"
    " {\"access_method\": \"1.3.6.1.5.5.7.48.2\","
    "  \"access_location\": {\"type\": \"URI\", \"value\": \"http://ca.example.com/ca.der\"}}]},"
    "{\"type\": \"subject_information_access\", \"critical\": false, \"value\": ["
    " {\"access_method\": \"1.3.6.1.5.5.7.48.5\","
    "  \"access_location\": {\"type\": \"URI\", \"value\": \"http://ca.example.com/repo\"}}]},"
    "{\"type\": \"crl_distribution_points\", \"critical\": false, \"value\": ["
    " {\"full_name\": [{\"type\": \"URI\", \"value\": \"http://ca.example.com/crl\"}],"
    "  \"relative_name\": null, \"crl_issuer\": null, \"reasons\": null},"
    " {\"full_name\": [{\"type\": \"URI\", \"value\": \"ldap://ldap.example.com/cn=crl\"}],"
    "  \"relative_name\": null, \"crl_issuer\": [{\"type\": \"dirName\", \"value\":"
    "  [{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, {\"oid\": \"2.5.4.3\","
    "  \"value\": \"dir.example.com\"}]}], \"reasons\": [\"key_compromise\", \"superseded\"]}]},"
    "{\"type\": \"freshest_crl\", \"critical\": false, \"value\": ["
    " {\"full_name\": [{\"type\": \"URI\", \"value\": \"http://ca.example.com/delta.crl\"}],"
    "  \"relative_name\": null, \"crl_issuer\": null, \"reasons\": null}]},"
    "{\"type\": \"certificate_policies\", \"critical\": false, \"value\": ["
    " {\"policy_identifier\": \"2.5.29.32.0\", \"policy_qualifiers\": null},"
    " {\"policy_identifier\": \"1.2.3.4\", \"policy_qualifiers\": ["
    "  \"http://ca.example.com/cps\", {\"notice_reference\": {\"organization\": \"Example Org\","
    "  \"notice_numbers\": [1, 2]}, \"explicit_text\": \"Use with care\"}]}]},"
    "{\"type\": \"policy_constraints\", \"critical\": true,"
    " \"value\": {\"require_explicit_policy\": 0, \"inhibit_policy_mapping\": 1}},"
    "{\"type\": \"inhibit_any_policy\", \"critical\": true, \"value\": 1},"
    "{\"type\": \"name_constraints\", \"critical\": true, \"value\": {"
    " \"permitted_subtrees\": [{\"type\": \"DNS\", \"value\": \".example.com\"}],"
    " \"excluded_subtrees\": [{\"type\": \"IP\", \"value\": \"10.0.0.0/8\"}]}},"
    "{\"type\": \"tls_feature\", \"critical\": false, \"value\": [\"status_request\"]},"
    "{\"type\": \"ocsp_no_check\", \"critical\": false, \"value\": null},"
    "{\"type\": \"unknown\", \"critical\": false,"
    " \"value\": {\"oid\": \"1.2.3.4.5\", \"value\": \"MAMCAQc=\"}},"
    "{\"type\": \"ms_certificate_template\", \"critical\": false,"
    " \"value\": {\"template_id\": \"1.2.3.4\", \"major_version\": 100, \"minor_version\": 3}}"
    "]";

typedef struct {
    char dir[64]; /* temporary directory of this run */
} s_fixture_t;

static int s_setup(void **state)
{
    s_fixture_t *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/cf_x509_ext_XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fixture_t *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Run an openssl command line in DIR; fail the test with its output when it fails. */
static void s_openssl(const char *dir, const char *args)
{
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "cd '%s' && openssl %s 2>&1", dir, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    char out[4096];
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = '\0';
    int status = pclose(p);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("openssl %s failed:\n%s", args, out);
}

/* The expected list with the certificate's key identifier filled in. */
static json_t *s_expected_models(const ASN1_OCTET_STRING *ski)
{
    json_t *want = tl_json(s_expected);
    char *text = cf_base64_encode(ASN1_STRING_get0_data(ski), (size_t)ASN1_STRING_length(ski));
    json_t *b64 = json_string(text);
    free(text);
    json_object_set(json_array_get(want, 3), "value", b64);
    json_object_set(json_object_get(json_array_get(want, 4), "value"), "key_identifier", b64);
    json_decref(b64);
    return want;
}

/* Every model read from OpenSSL is valid input, and our DER is OpenSSL's, byte for byte. */
static void s_check_reencode(const json_t *models, int count, X509_EXTENSION *(*get)(void *, int),
                             void *owner)
{
    cf_error_t err = {0};
    json_t *parsed = cf_extensions_parse(models, &err);
    if (!parsed)
        fail_msg("models read from OpenSSL do not parse: %s %s: %s", err.code, err.field,
                 err.message);
    tl_assert_equal(parsed, models, "models read from OpenSSL, parsed again");
    json_decref(parsed);
    for (int i = 0; i < count; i++) {
        const json_t *model = json_array_get(models, (size_t)i);
        const char *type = json_string_value(json_object_get(model, "type"));
        unsigned char *theirs = NULL;
        int theirs_len = i2d_X509_EXTENSION(get(owner, i), &theirs);
        int ours_len;
        unsigned char *ours = tl_der(model, &ours_len);
        /* OpenSSL's config writes a notice reference's organization as VisibleString; we
         * write UTF8String, as cryptography does: same model, different bytes. */
        if (strcmp(type, "certificate_policies") != 0) {
            if (ours_len != theirs_len || memcmp(ours, theirs, (size_t)ours_len) != 0)
                fail_msg("DER of %s differs from OpenSSL's", type);
        } else {
            json_t *back = tl_from_der(ours, ours_len);
            tl_assert_equal(back, model, "certificate policies re-encoded");
            json_decref(back);
        }
        tl_round_trips(model);
        OPENSSL_free(ours);
        OPENSSL_free(theirs);
    }
}

static X509_EXTENSION *s_cert_get(void *owner, int i)
{
    return X509_get_ext(owner, i);
}

static X509_EXTENSION *s_sk_get(void *owner, int i)
{
    return sk_X509_EXTENSION_value(owner, i);
}

static X509_EXTENSION *s_crl_get(void *owner, int i)
{
    return X509_CRL_get_ext(owner, i);
}

static void test_certificate_from_openssl_req(void **state)
{
    s_fixture_t *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/ext.cnf", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    fputs(s_config, fp);
    fclose(fp);
    s_openssl(f->dir, "req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                      "-keyout key.pem -out cert.pem -days 1 -config ext.cnf -extensions ext");

    snprintf(path, sizeof path, "%s/cert.pem", f->dir);
    fp = fopen(path, "r");
    assert_non_null(fp);
    X509 *cert = PEM_read_X509(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(cert);

    cf_error_t err = {0};
    json_t *models = cf_extensions_from_cert(cert, &err);
    if (!models)
        fail_msg("%s %s: %s", err.code, err.field, err.message);
    json_t *want = s_expected_models(X509_get0_subject_key_id(cert));
    assert_int_equal(json_array_size(models), json_array_size(want));
    for (size_t i = 0; i < json_array_size(want); i++)
        tl_assert_equal(json_array_get(models, i), json_array_get(want, i), "certificate model");
    s_check_reencode(models, X509_get_ext_count(cert), s_cert_get, cert);

    /* Text of every model, as `certfleet x509 show` prints it. */
    for (size_t i = 0; i < json_array_size(models); i++) {
        char *text = cf_extension_to_text(json_array_get(models, i));
        assert_non_null(text);
        free(text);
    }

    json_decref(want);
    json_decref(models);
    X509_free(cert);
}

static void test_request_from_openssl_req(void **state)
{
    s_fixture_t *f = *state;
    char path[256];
    snprintf(path, sizeof path, "%s/ext.cnf", f->dir);
    FILE *fp = fopen(path, "w");
    assert_non_null(fp);
    /* A request has no issuer: the same config without its authority key identifier. */
    const char *aki = strstr(s_config, "authorityKeyIdentifier");
    const char *aki_end = strchr(aki, '\n') + 1;
    fwrite(s_config, 1, (size_t)(aki - s_config), fp);
    fputs(aki_end, fp);
    fclose(fp);
    s_openssl(f->dir, "req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
                      "-keyout rkey.pem -out req.pem -config ext.cnf -reqexts ext");
    snprintf(path, sizeof path, "%s/req.pem", f->dir);
    fp = fopen(path, "r");
    X509_REQ *req = PEM_read_X509_REQ(fp, NULL, NULL, NULL);
    fclose(fp);
    assert_non_null(req);
    cf_error_t err = {0};
    json_t *models = cf_extensions_from_req(req, &err);
    if (!models)
        fail_msg("%s %s: %s", err.code, err.field, err.message);
    /* Every extension of the config but the AKI. */
    assert_int_equal(json_array_size(models), 18);
    assert_non_null(cf_extensions_find(models, "subject_alternative_name"));
    assert_non_null(cf_extensions_find(models, "certificate_policies"));
    assert_null(cf_extensions_find(models, "authority_key_identifier"));
    STACK_OF(X509_EXTENSION) *sk = X509_REQ_get_extensions(req);
    s_check_reencode(models, sk_X509_EXTENSION_num(sk), s_sk_get, sk);
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    json_decref(models);
    X509_REQ_free(req);

    /* A request without extensions has an empty list. */
    X509_REQ *empty = X509_REQ_new();
    models = cf_extensions_from_req(empty, &err);
    assert_non_null(models);
    assert_int_equal(json_array_size(models), 0);
    json_decref(models);
    X509_REQ_free(empty);
}

static void test_crl_from_openssl_api(void **state)
{
    EVP_PKEY *key = EVP_EC_gen("P-256");
    assert_non_null(key);
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, X509_CRL_VERSION_2);
    X509_NAME *issuer = X509_NAME_new();
    X509_NAME_add_entry_by_txt(issuer, "CN", MBSTRING_ASC, (const unsigned char *)"CRL CA", -1, -1,
                               0);
    X509_CRL_set_issuer_name(crl, issuer);
    ASN1_TIME *now = ASN1_TIME_set(NULL, time(NULL));
    X509_CRL_set1_lastUpdate(crl, now);
    X509_CRL_set1_nextUpdate(crl, now);

    /* CRL number and delta CRL indicator the way `openssl ca -gencrl` adds them... */
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    ASN1_INTEGER_set(number, 4711);
    assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0), 1);
    ASN1_INTEGER_set(number, 4700);
    assert_int_equal(X509_CRL_add1_ext_i2d(crl, NID_delta_crl, number, 1, 0), 1);
    ASN1_INTEGER_free(number);
    /* ... the IDP from the config language, and an AKI. */
    int len;
    unsigned char *der = tl_nconf_der("issuingDistributionPoint", "critical,@idp",
                                      "[idp]\nfullname = URI:http://ca.example.com/crl\n"
                                      "onlyuser = TRUE\nonlysomereasons = keyCompromise\n",
                                      &len);
    const unsigned char *p = der;
    X509_EXTENSION *idp = d2i_X509_EXTENSION(NULL, &p, len);
    X509_CRL_add_ext(crl, idp, -1);
    X509_EXTENSION_free(idp);
    OPENSSL_free(der);
    AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
    aki->keyid = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(aki->keyid, (const unsigned char *)"\x01\x02\x03\x04", 4);
    X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, aki, 0, 0);
    AUTHORITY_KEYID_free(aki);
    assert_true(X509_CRL_sign(crl, key, EVP_sha256()) > 0);

    /* Through DER, as a CRL file would be read. */
    unsigned char *crl_der = NULL;
    int crl_len = i2d_X509_CRL(crl, &crl_der);
    p = crl_der;
    X509_CRL *read = d2i_X509_CRL(NULL, &p, crl_len);
    assert_non_null(read);

    cf_error_t err = {0};
    json_t *models = cf_extensions_from_crl(read, &err);
    if (!models)
        fail_msg("%s %s: %s", err.code, err.field, err.message);
    json_t *want =
        tl_json("[{\"type\": \"crl_number\", \"critical\": false, \"value\": 4711},"
                " {\"type\": \"delta_crl_indicator\", \"critical\": true, \"value\": 4700},"
                " {\"type\": \"issuing_distribution_point\", \"critical\": true, \"value\": {"
                "  \"only_contains_user_certs\": true, \"only_contains_ca_certs\": false,"
                "  \"indirect_crl\": false, \"only_contains_attribute_certs\": false,"
                "  \"only_some_reasons\": [\"key_compromise\"],"
                "  \"full_name\": [{\"type\": \"URI\", \"value\": \"http://ca.example.com/crl\"}],"
                "  \"relative_name\": null}},"
                " {\"type\": \"authority_key_identifier\", \"critical\": false, \"value\": {"
                "  \"key_identifier\": \"AQIDBA==\", \"authority_cert_issuer\": null,"
                "  \"authority_cert_serial_number\": null}}]");
    tl_assert_equal(models, want, "CRL extensions");
    s_check_reencode(models, X509_CRL_get_ext_count(read), s_crl_get, read);

    /* The same models onto a new CRL give the same extensions. */
    X509_CRL *mine = X509_CRL_new();
    assert_int_equal(cf_extensions_add_to_crl(mine, models, &err), 0);
    json_t *again = cf_extensions_from_crl(mine, &err);
    tl_assert_equal(again, want, "CRL extensions added by cf_extensions_add_to_crl");
    json_decref(again);
    X509_CRL_free(mine);

    json_decref(want);
    json_decref(models);
    X509_CRL_free(read);
    OPENSSL_free(crl_der);
    ASN1_TIME_free(now);
    X509_NAME_free(issuer);
    X509_CRL_free(crl);
    EVP_PKEY_free(key);
}

/* The raw form of an extension: the unknown shape with its OID and DER, whether or not the OID
 * has a model, and also where the model cannot decode the value (trailing bytes here). */
static void test_raw_form(void **state)
{
    (void)state;
    static const unsigned char bc_der[] = {0x30, 0x06, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00};
    static const unsigned char bad_der[] = {0x30, 0x03, 0x01, 0x01, 0xff, 0x02, 0x01, 0x00};
    ASN1_OCTET_STRING *data = ASN1_OCTET_STRING_new();
    assert_true(ASN1_OCTET_STRING_set(data, bc_der, sizeof bc_der));
    X509_EXTENSION *ext = X509_EXTENSION_create_by_NID(NULL, NID_basic_constraints, 1, data);
    assert_non_null(ext);

    cf_error_t err = {0};
    json_t *raw = cf_extension_raw_from_openssl(ext, &err);
    json_t *want = tl_json("{\"type\": \"unknown\", \"critical\": true, \"value\":"
                           " {\"oid\": \"2.5.29.19\", \"value\": \"MAYBAf8CAQA=\"}}");
    tl_assert_equal(raw, want, "raw basic constraints");
    json_decref(raw);
    json_decref(want);

    /* The same OID with a value that does not decode: the model refuses, the raw form holds. */
    assert_true(ASN1_OCTET_STRING_set(data, bad_der, sizeof bad_der));
    assert_true(X509_EXTENSION_set_data(ext, data));
    assert_null(cf_extension_from_openssl(ext, &err));
    assert_string_equal(err.code, "invalid_der");
    cf_error_t raw_err = {0};
    raw = cf_extension_raw_from_openssl(ext, &raw_err);
    assert_non_null(raw);
    assert_string_equal(json_string_value(json_object_get(json_object_get(raw, "value"), "value")),
                        "MAMBAf8CAQA=");
    json_decref(raw);
    X509_EXTENSION_free(ext);
    ASN1_OCTET_STRING_free(data);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_certificate_from_openssl_req, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_request_from_openssl_req, s_setup, s_teardown),
        cmocka_unit_test(test_crl_from_openssl_api),
        cmocka_unit_test(test_raw_form),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
