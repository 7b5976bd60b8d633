/* cf_x509_ext, the entry points around the models: the extension envelope, lists with their
 * duplicate rule, the signing rule, lookups, text, and DER that does not decode. */
#include "x509_ext_testlib.h"

#define S_BC "{\"type\": \"basic_constraints\", \"value\": {\"ca\": false, \"path_length\": null}}"
#define S_KU "{\"type\": \"key_usage\", \"value\": [\"digital_signature\"]}"
#define S_SAN                                                                                      \
    "{\"type\": \"subject_alternative_name\", \"value\": [{\"type\": \"DNS\", \"value\": "         \
    "\"a.example.com\"}]}"
#define S_SCT                                                                                      \
    "{\"type\": \"precertificate_signed_certificate_timestamps\", \"value\": [{\"log_id\":"        \
    " \"MTIz\", \"timestamp\": \"2023-12-10T00:00:00\", \"entry_type\": \"precertificate\"}]}"
#define S_UNKNOWN(oid)                                                                             \
    "{\"type\": \"unknown\", \"critical\": false, \"value\": {\"oid\": \"" oid                     \
    "\", \"value\": \"BQA=\"}}"

static void s_list_error(const char *in, bool for_sign, const char *code, const char *field)
{
    json_t *list = tl_json(in);
    cf_error_t err = {0};
    json_t *out =
        for_sign ? cf_extensions_parse_for_sign(list, &err) : cf_extensions_parse(list, &err);
    assert_null(out);
    if (strcmp(err.code, code) != 0 || strcmp(err.field, field) != 0)
        fail_msg("%s: got %s at \"%s\" (%s), want %s at \"%s\"", in, err.code, err.field,
                 err.message, code, field);
    json_decref(list);
}

static void test_envelope_errors(void **state)
{
    tl_check_error("[]", "invalid_type", "");
    tl_check_error("\"basic_constraints\"", "invalid_type", "");
    tl_check_error("{\"critical\": true, \"value\": 1}", "missing_field", "type");
    tl_check_error("{\"type\": 5, \"value\": 1}", "invalid_type", "type");
    tl_check_error("{\"type\": \"basicConstraints\", \"value\": 1}", "unknown_extension", "type");
    tl_check_error("{\"type\": \"inhibit_any_policy\", \"value\": 1, \"oid\": \"2.5.29.54\"}",
                   "unknown_field", "oid");
    tl_check_error("{\"type\": \"inhibit_any_policy\", \"value\": 1, \"critical\": \"true\"}",
                   "invalid_type", "critical");

    /* to_openssl validates the same way. */
    json_t *m = tl_json("{\"type\": \"key_usage\", \"value\": []}");
    cf_error_t err = {0};
    assert_null(cf_extension_to_openssl(m, &err));
    assert_string_equal(err.code, "empty_list");
    assert_string_equal(err.field, "value");
    json_decref(m);
}

static void test_list(void **state)
{
    json_t *list = tl_json("[" S_BC ", " S_KU ", " S_UNKNOWN("1.2.3") ", " S_UNKNOWN("1.2.4") "]");
    cf_error_t err = {0};
    json_t *out = cf_extensions_parse(list, &err);
    assert_non_null(out);
    assert_int_equal(json_array_size(out), 4);
    assert_true(json_is_true(json_object_get(json_array_get(out, 0), "critical")));

    assert_ptr_equal(cf_extensions_find(out, "key_usage"), json_array_get(out, 1));
    assert_null(cf_extensions_find(out, "subject_alternative_name"));
    assert_ptr_equal(cf_extensions_find_oid(out, "2.5.29.19"), json_array_get(out, 0));
    assert_ptr_equal(cf_extensions_find_oid(out, "1.2.4"), json_array_get(out, 3));
    assert_null(cf_extensions_find_oid(out, "1.2.5"));

    /* As OpenSSL extensions and onto a certificate, in order. */
    STACK_OF(X509_EXTENSION) *sk = cf_extensions_to_openssl(out, &err);
    assert_non_null(sk);
    assert_int_equal(sk_X509_EXTENSION_num(sk), 4);
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    X509 *cert = X509_new();
    assert_int_equal(cf_extensions_add_to_cert(cert, out, &err), 0);
    json_t *back = cf_extensions_from_cert(cert, &err);
    tl_assert_equal(back, out, "extensions of a certificate");
    json_decref(back);
    X509_free(cert);

    json_decref(out);
    json_decref(list);

    /* An empty list is a valid list. */
    list = tl_json("[]");
    out = cf_extensions_parse(list, &err);
    assert_int_equal(json_array_size(out), 0);
    json_decref(out);
    json_decref(list);
}

static void test_list_errors(void **state)
{
    s_list_error("{}", false, "invalid_type", "");
    s_list_error("[" S_BC ", " S_KU ", " S_BC "]", false, "duplicate_extension", "[2].type");
    s_list_error("[" S_UNKNOWN("1.2.3") ", " S_UNKNOWN("1.2.3") "]", false, "duplicate_extension",
                 "[1].value.oid");
    s_list_error("[" S_BC ", {\"type\": \"key_usage\", \"value\": []}]", false, "empty_list",
                 "[1].value");
    s_list_error("[" S_BC ", 7]", false, "invalid_type", "[1]");
}

static void test_sign_rule(void **state)
{
    static const char *const allowed[] = {"authority_information_access",
                                          "certificate_policies",
                                          "crl_distribution_points",
                                          "extended_key_usage",
                                          "freshest_crl",
                                          "issuer_alternative_name",
                                          "key_usage",
                                          "ocsp_no_check",
                                          "subject_alternative_name",
                                          "tls_feature"};
    static const char *const refused[] = {"authority_key_identifier",
                                          "basic_constraints",
                                          "inhibit_any_policy",
                                          "issuing_distribution_point",
                                          "ms_certificate_template",
                                          "name_constraints",
                                          "policy_constraints",
                                          "precert_poison",
                                          "precertificate_signed_certificate_timestamps",
                                          "signed_certificate_timestamps",
                                          "subject_information_access",
                                          "subject_key_identifier",
                                          "crl_number",
                                          "delta_crl_indicator",
                                          "unknown",
                                          "no_such_type"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++)
        assert_true(cf_extension_sign_allowed(allowed[i]));
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        assert_false(cf_extension_sign_allowed(refused[i]));

    json_t *list = tl_json("[" S_KU ", " S_SAN ", {\"type\": \"ocsp_no_check\"}]");
    cf_error_t err = {0};
    json_t *out = cf_extensions_parse_for_sign(list, &err);
    assert_non_null(out);
    json_decref(out);
    json_decref(list);

    /* SCTs may be read, never requested: the rule names the type before looking at values. */
    s_list_error("[" S_SAN ", " S_SCT "]", true, "extension_not_allowed", "[1].type");
    s_list_error("[{\"type\": \"signed_certificate_timestamps\", \"value\": 1}]", true,
                 "extension_not_allowed", "[0].type");
    s_list_error("[" S_BC "]", true, "extension_not_allowed", "[0].type");
    s_list_error("[" S_UNKNOWN("1.2.3") "]", true, "extension_not_allowed", "[0].type");
    s_list_error("[{\"type\": \"no_such_type\"}]", true, "unknown_extension", "[0].type");
}

static void test_lookups(void **state)
{
    static const struct {
        const char *type, *oid, *name;
        int critical; /* default, -1 when mandatory */
    } table[] = {
        {"authority_information_access", "1.3.6.1.5.5.7.1.1", "Authority Information Access", 0},
        {"authority_key_identifier", "2.5.29.35", "Authority Key Identifier", 0},
        {"basic_constraints", "2.5.29.19", "Basic Constraints", 1},
        {"certificate_policies", "2.5.29.32", "Certificate Policies", 0},
        {"crl_distribution_points", "2.5.29.31", "CRL Distribution Points", 0},
        {"crl_number", "2.5.29.20", "CRL Number", 0},
        {"delta_crl_indicator", "2.5.29.27", "Delta CRL Indicator", 1},
        {"extended_key_usage", "2.5.29.37", "Extended Key Usage", 0},
        {"freshest_crl", "2.5.29.46", "Freshest CRL", 0},
        {"inhibit_any_policy", "2.5.29.54", "Inhibit anyPolicy", 1},
        {"issuer_alternative_name", "2.5.29.18", "Issuer Alternative Name", 0},
        {"issuing_distribution_point", "2.5.29.28", "Issuing Distribution Point", 1},
        {"key_usage", "2.5.29.15", "Key Usage", 1},
        {"ms_certificate_template", "1.3.6.1.4.1.311.21.7", "MS Certificate Template", -1},
        {"name_constraints", "2.5.29.30", "Name Constraints", 1},
        {"ocsp_no_check", "1.3.6.1.5.5.7.48.1.5", "OCSP No Check", 0},
        {"policy_constraints", "2.5.29.36", "Policy Constraints", 1},
        {"precert_poison", "1.3.6.1.4.1.11129.2.4.3", "Precert Poison", 1},
        {"precertificate_signed_certificate_timestamps", "1.3.6.1.4.1.11129.2.4.2",
         "Precertificate Signed Certificate Timestamps", 0},
        {"signed_certificate_timestamps", "1.3.6.1.4.1.11129.2.4.5",
         "Signed Certificate Timestamps", 0},
        {"subject_alternative_name", "2.5.29.17", "Subject Alternative Name", 0},
        {"subject_information_access", "1.3.6.1.5.5.7.1.11", "Subject Information Access", 0},
        {"subject_key_identifier", "2.5.29.14", "Subject Key Identifier", 0},
        {"tls_feature", "1.3.6.1.5.5.7.1.24", "TLS Feature", 0},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        assert_string_equal(cf_extension_oid(table[i].type), table[i].oid);
        assert_string_equal(cf_extension_type_from_oid(table[i].oid), table[i].type);
        assert_string_equal(cf_extension_name(table[i].type), table[i].name);
        bool crit = false;
        if (table[i].critical < 0) {
            assert_int_equal(cf_extension_default_critical(table[i].type, &crit), -1);
        } else {
            assert_int_equal(cf_extension_default_critical(table[i].type, &crit), 0);
            assert_int_equal(crit, table[i].critical == 1);
        }
        /* The OID is the one OpenSSL knows for the extension, where it knows one. */
        ASN1_OBJECT *obj = OBJ_txt2obj(table[i].oid, 1);
        assert_non_null(obj);
        ASN1_OBJECT_free(obj);
    }
    assert_true(cf_extension_read_only("signed_certificate_timestamps"));
    assert_false(cf_extension_read_only("key_usage"));
    assert_null(cf_extension_oid("unknown"));
    assert_null(cf_extension_oid("nope"));
    assert_null(cf_extension_type_from_oid("1.2.3"));
    assert_string_equal(cf_extension_name("unknown"), "Unknown Extension");
}

static void s_text(const char *model, const char *want)
{
    json_t *m = tl_json(model);
    cf_error_t err = {0};
    json_t *norm = cf_extension_parse(m, &err);
    assert_non_null(norm);
    char *text = cf_extension_to_text(norm);
    assert_non_null(text);
    if (strcmp(text, want) != 0)
        fail_msg("text of %s:\n%s\nwant:\n%s", model, text, want);
    free(text);
    json_decref(norm);
    json_decref(m);
}

static void test_text(void **state)
{
    s_text("{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, \"path_length\": 0}}",
           "Basic Constraints (critical):\n  CA: true\n  Path length: 0\n");
    s_text("{\"type\": \"authority_information_access\", \"value\": ["
           "{\"access_method\": \"ocsp\", \"access_location\": {\"type\": \"URI\","
           " \"value\": \"http://ocsp.example.com\"}},"
           " {\"access_method\": \"ca_issuers\", \"access_location\": {\"type\": \"URI\","
           " \"value\": \"http://example.com\"}},"
           " {\"access_method\": \"ocsp\", \"access_location\": {\"type\": \"URI\","
           " \"value\": \"http://ocsp2.example.com\"}}]}",
           "Authority Information Access:\n  OCSP:\n    * URI:http://ocsp.example.com\n"
           "    * URI:http://ocsp2.example.com\n  CA Issuers:\n    * URI:http://example.com\n");
    s_text("{\"type\": \"key_usage\", \"value\": [\"key_cert_sign\", \"crl_sign\"]}",
           "Key Usage (critical):\n  * crl_sign\n  * key_cert_sign\n");
    s_text("{\"type\": \"extended_key_usage\", \"value\": [\"serverAuth\", \"1.2.3\"]}",
           "Extended Key Usage:\n  * serverAuth\n  * 1.2.3\n");
    s_text("{\"type\": \"subject_key_identifier\", \"value\": \"AQID\"}",
           "Subject Key Identifier:\n  01:02:03\n");
    s_text("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\": \"1.2.3\","
           " \"policy_qualifiers\": [\"https://x/cps\", {\"explicit_text\": \"hi\","
           " \"notice_reference\": {\"organization\": \"Org\", \"notice_numbers\": [1, 2]}}]}]}",
           "Certificate Policies:\n  * Policy Identifier: 1.2.3\n    Policy Qualifiers:\n"
           "      * https://x/cps\n      * User Notice:\n        * Explicit Text: hi\n"
           "        * Reference:\n          * Organization: Org\n"
           "          * Notice Numbers: [1, 2]\n");
    s_text("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\": [{\"type\":"
           " \"URI\", \"value\": \"http://x/crl\"}], \"reasons\": [\"key_compromise\"]}]}",
           "CRL Distribution Points:\n  * DistributionPoint:\n    Full Name:\n"
           "      * URI:http://x/crl\n    Reasons:\n      * key_compromise\n");
    s_text(S_UNKNOWN("1.2.3"), "Unknown Extension:\n  OID: 1.2.3\n  Value: 05:00\n");
    s_text("{\"type\": \"ocsp_no_check\"}", "OCSP No Check:\n  Yes\n");

    /* Not a model: no text. */
    json_t *bad = tl_json("{\"type\": \"nope\", \"critical\": true, \"value\": 1}");
    assert_null(cf_extension_to_text(bad));
    json_decref(bad);
    bad = tl_json("{\"type\": \"key_usage\", \"value\": []}");
    assert_null(cf_extension_to_text(bad));
    json_decref(bad);
}

/* An extension with OID and raw extnValue bytes, as a certificate might carry it. */
static X509_EXTENSION *s_raw_ext(const char *oid, const unsigned char *value, int len)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, value, len);
    X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    return ext;
}

static void test_from_openssl_malformed(void **state)
{
    static const struct {
        const char *oid;
        const char *der;
        int len;
        const char *code;
        const char *field;
    } cases[] = {
        {"2.5.29.19", "\x30\x03\x01\x01", 4, "invalid_der", "value"},   /* truncated */
        {"2.5.29.19", "\x30\x00\x00", 3, "invalid_der", "value"},       /* trailing byte */
        {"2.5.29.15", "\x04\x01\x00", 3, "invalid_der", "value"},       /* not a BIT STRING */
        {"2.5.29.54", "\x02\x01\xFF", 3, "unsupported_value", "value"}, /* negative */
        {"1.3.6.1.5.5.7.1.24", "\x30\x03\x02\x01\x07", 5, "unsupported_value", "value[0]"},
        {"1.3.6.1.4.1.11129.2.4.2", "\x04\x02\x00\x05", 4, "invalid_der", "value"},
        {"2.5.29.32", "\x30\x00\x05", 3, "invalid_der", "value"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        X509_EXTENSION *ext =
            s_raw_ext(cases[i].oid, (const unsigned char *)cases[i].der, cases[i].len);
        cf_error_t err = {0};
        json_t *m = cf_extension_from_openssl(ext, &err);
        if (m)
            fail_msg("case %zu decoded", i);
        if (strcmp(err.code, cases[i].code) || strcmp(err.field, cases[i].field))
            fail_msg("case %zu: got %s at \"%s\" (%s)", i, err.code, err.field, err.message);
        X509_EXTENSION_free(ext);
    }

    /* An OID without a model reads as the unknown model. */
    X509_EXTENSION *ext = s_raw_ext("2.5.29.33", (const unsigned char *)"\x30\x00", 2);
    cf_error_t err = {0};
    json_t *m = cf_extension_from_openssl(ext, &err);
    json_t *want = tl_json("{\"type\": \"unknown\", \"critical\": false, \"value\": {\"oid\": "
                           "\"2.5.29.33\", \"value\": \"MAA=\"}}");
    tl_assert_equal(m, want, "unknown OID");
    json_decref(want);
    json_decref(m);
    X509_EXTENSION_free(ext);
    assert_null(cf_extension_from_openssl(NULL, &err));

    /* Lenient reading: an empty key usage and a path length on a non-CA are shown as they
     * are, though they are refused as input. */
    ext = s_raw_ext("2.5.29.15", (const unsigned char *)"\x03\x01\x00", 3);
    m = cf_extension_from_openssl(ext, &err);
    want = tl_json("{\"type\": \"key_usage\", \"critical\": false, \"value\": []}");
    tl_assert_equal(m, want, "empty key usage");
    json_decref(want);
    json_decref(m);
    X509_EXTENSION_free(ext);
    ext = s_raw_ext("2.5.29.19", (const unsigned char *)"\x30\x03\x02\x01\x02", 5);
    m = cf_extension_from_openssl(ext, &err);
    want = tl_json("{\"type\": \"basic_constraints\", \"critical\": false,"
                   " \"value\": {\"ca\": false, \"path_length\": 2}}");
    tl_assert_equal(m, want, "path length without CA");
    assert_null(cf_extension_parse(m, &err));
    assert_string_equal(err.code, "contradictory_fields");
    json_decref(want);
    json_decref(m);
    X509_EXTENSION_free(ext);
}

/* MessagePack carries bytes as bin; the JSON mapping makes them base64, which the models take. */
static void test_msgpack_bin(void **state)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    cf_msgpack_pack_cstr(&pk, "type");
    cf_msgpack_pack_cstr(&pk, "subject_key_identifier");
    cf_msgpack_pack_cstr(&pk, "value");
    msgpack_pack_bin(&pk, 1);
    msgpack_pack_bin_body(&pk, "\x90", 1);
    cf_error_t err = {0};
    msgpack_unpacked up;
    assert_int_equal(cf_msgpack_unpack(buf.data, buf.size, NULL, &up, &err), 0);
    json_t *j = cf_msgpack_to_json(&up.data, &err);
    json_t *model = cf_extension_parse(j, &err);
    json_t *want =
        tl_json("{\"type\": \"subject_key_identifier\", \"critical\": false, \"value\": \"kA==\"}");
    tl_assert_equal(model, want, "SKI from msgpack bin");
    json_decref(want);
    json_decref(model);
    json_decref(j);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_envelope_errors),
        cmocka_unit_test(test_list),
        cmocka_unit_test(test_list_errors),
        cmocka_unit_test(test_sign_rule),
        cmocka_unit_test(test_lookups),
        cmocka_unit_test(test_text),
        cmocka_unit_test(test_from_openssl_malformed),
        cmocka_unit_test(test_msgpack_bin),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
