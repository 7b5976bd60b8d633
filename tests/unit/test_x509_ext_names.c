/* cf_x509_ext, the models built from general names: subject and issuer alternative name,
 * name constraints, authority key identifier, and the information access lists (AIA, SIA)
 * with their AccessDescriptionModel. Examples of the reference, errors, round trips and DER
 * compared with OpenSSL's config language. */
#include "x509_ext_testlib.h"

/* --- alternative names ------------------------------------------------------------------- */

static void test_alternative_name_examples(void **state)
{
    /* SubjectAlternativeNameModel(value=[name1, name2]) */
    tl_check("{\"type\": \"subject_alternative_name\", \"value\": ["
             "{\"type\": \"DNS\", \"value\": \"example.com\"},"
             " {\"type\": \"DNS\", \"value\": \"example.net\"}]}",
             "{\"type\": \"subject_alternative_name\", \"critical\": false, \"value\": ["
             "{\"type\": \"DNS\", \"value\": \"example.com\"},"
             " {\"type\": \"DNS\", \"value\": \"example.net\"}]}");
    /* The issuer alternative name of the models reference: a URI. */
    tl_check("{\"type\": \"issuer_alternative_name\","
             " \"value\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com\"}]}",
             "{\"type\": \"issuer_alternative_name\", \"critical\": false,"
             " \"value\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com\"}]}");
    /* Every kind of general name survives every round trip. */
    tl_check("{\"type\": \"subject_alternative_name\", \"critical\": true, \"value\": ["
             "{\"type\": \"DNS\", \"value\": \"*.example.com\"},"
             " {\"type\": \"IP\", \"value\": \"127.0.0.1\"},"
             " {\"type\": \"IP\", \"value\": \"2001:db8::1\"},"
             " {\"type\": \"email\", \"value\": \"user@example.com\"},"
             " {\"type\": \"URI\", \"value\": \"https://example.com/path\"},"
             " {\"type\": \"RID\", \"value\": \"1.2.3.4\"},"
             " {\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.6\", \"value\": \"AT\"},"
             " {\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}]},"
             " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"UTF8String\","
             " \"value\": \"x\"}}]}",
             "{\"type\": \"subject_alternative_name\", \"critical\": true, \"value\": ["
             "{\"type\": \"DNS\", \"value\": \"*.example.com\"},"
             " {\"type\": \"IP\", \"value\": \"127.0.0.1\"},"
             " {\"type\": \"IP\", \"value\": \"2001:db8::1\"},"
             " {\"type\": \"email\", \"value\": \"user@example.com\"},"
             " {\"type\": \"URI\", \"value\": \"https://example.com/path\"},"
             " {\"type\": \"RID\", \"value\": \"1.2.3.4\"},"
             " {\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.6\", \"value\": \"AT\"},"
             " {\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}]},"
             " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"UTF8String\","
             " \"value\": \"x\"}}]}");
}

static void test_alternative_name_errors(void **state)
{
    tl_check_error("{\"type\": \"subject_alternative_name\", \"value\": []}", "empty_list",
                   "value");
    tl_check_error("{\"type\": \"subject_alternative_name\", \"value\": {}}", "invalid_type",
                   "value");
    tl_check_error("{\"type\": \"subject_alternative_name\", \"value\": ["
                   "{\"type\": \"DNS\", \"value\": \"example.com\"},"
                   " {\"type\": \"DNS\", \"value\": \"example.com\"}]}",
                   "duplicate_value", "value[1]");
    /* General names are checked by cf_general_name: its code, our path. */
    tl_check_error("{\"type\": \"subject_alternative_name\", \"value\": ["
                   "{\"type\": \"DNS\", \"value\": \"example.com\"},"
                   " {\"type\": \"FQDN\", \"value\": \"example.com\"}]}",
                   "unknown_type", "value[1].type");
    tl_check_error("{\"type\": \"issuer_alternative_name\", \"value\": [{\"type\": \"IP\","
                   " \"value\": \"300.1.1.1\"}]}",
                   "invalid_ip_address", "value[0].value");
    tl_check_error("{\"type\": \"subject_alternative_name\", \"value\": [\"example.com\"]}",
                   "invalid_type", "value[0]");
}

static void test_alternative_name_der(void **state)
{
    tl_check_nconf("{\"type\": \"subject_alternative_name\", \"value\": ["
                   "{\"type\": \"DNS\", \"value\": \"example.com\"},"
                   " {\"type\": \"IP\", \"value\": \"127.0.0.1\"},"
                   " {\"type\": \"email\", \"value\": \"user@example.com\"},"
                   " {\"type\": \"URI\", \"value\": \"https://example.com/\"},"
                   " {\"type\": \"RID\", \"value\": \"1.2.3.4\"},"
                   " {\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.6\", \"value\": \"AT\"},"
                   " {\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}]}]}",
                   "subjectAltName",
                   "DNS:example.com,IP:127.0.0.1,email:user@example.com,URI:https://example.com/,"
                   "RID:1.2.3.4,dirName:dir_sect",
                   "[dir_sect]\nC = AT\nCN = example.com\n");
    tl_check_nconf("{\"type\": \"issuer_alternative_name\", \"critical\": true,"
                   " \"value\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com\"}]}",
                   "issuerAltName", "critical,URI:https://ca.example.com", NULL);
}

/* --- name constraints -------------------------------------------------------------------- */

static void test_name_constraints_examples(void **state)
{
    /* NameConstraintsModel(value=NameConstraintsValueModel(permitted_subtrees=[DNS .com])) */
    tl_check("{\"type\": \"name_constraints\","
             " \"value\": {\"permitted_subtrees\": [{\"type\": \"DNS\", \"value\": \".com\"}]}}",
             "{\"type\": \"name_constraints\", \"critical\": true, \"value\": {"
             "\"permitted_subtrees\": [{\"type\": \"DNS\", \"value\": \".com\"}],"
             " \"excluded_subtrees\": null}}");
    tl_check("{\"type\": \"name_constraints\", \"value\": {\"permitted_subtrees\": null,"
             " \"excluded_subtrees\": [{\"type\": \"DNS\", \"value\": \"one.example.com\"},"
             " {\"type\": \"IP\", \"value\": \"10.0.0.0/8\"}]}}",
             "{\"type\": \"name_constraints\", \"critical\": true, \"value\": {"
             "\"permitted_subtrees\": null,"
             " \"excluded_subtrees\": [{\"type\": \"DNS\", \"value\": \"one.example.com\"},"
             " {\"type\": \"IP\", \"value\": \"10.0.0.0/8\"}]}}");
}

static void test_name_constraints_errors(void **state)
{
    /* "at least one of them must be given" */
    tl_check_error("{\"type\": \"name_constraints\", \"value\": {}}", "missing_field", "value");
    tl_check_error("{\"type\": \"name_constraints\", \"value\": {\"permitted_subtrees\": null,"
                   " \"excluded_subtrees\": null}}",
                   "missing_field", "value");
    tl_check_error("{\"type\": \"name_constraints\", \"value\": {\"permitted_subtrees\": []}}",
                   "empty_list", "value.permitted_subtrees");
    tl_check_error("{\"type\": \"name_constraints\", \"value\": {\"permitted\": []}}",
                   "unknown_field", "value.permitted");
    tl_check_error("{\"type\": \"name_constraints\", \"value\": {\"excluded_subtrees\":"
                   " [{\"type\": \"DNS\"}]}}",
                   "missing_field", "value.excluded_subtrees[0].value");
}

static void test_name_constraints_der(void **state)
{
    tl_check_nconf(
        "{\"type\": \"name_constraints\", \"value\": {"
        "\"permitted_subtrees\": [{\"type\": \"DNS\", \"value\": \".com\"},"
        " {\"type\": \"IP\", \"value\": \"192.168.0.0/16\"}],"
        " \"excluded_subtrees\": [{\"type\": \"DNS\", \"value\": \"one.example.com\"}]}}",
        "nameConstraints",
        "critical,permitted;DNS:.com,permitted;IP:192.168.0.0/255.255.0.0,"
        "excluded;DNS:one.example.com",
        NULL);
}

/* --- authority key identifier ------------------------------------------------------------ */

static void test_authority_key_identifier_examples(void **state)
{
    /* AuthorityKeyIdentifierValueModel(key_identifier=b"MTIz") */
    tl_check("{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": \"MTIz\"}}",
             "{\"type\": \"authority_key_identifier\", \"critical\": false, \"value\": {"
             "\"key_identifier\": \"MTIz\", \"authority_cert_issuer\": null,"
             " \"authority_cert_serial_number\": null}}");
    /* key_identifier=None, authority_cert_issuer=[URI], authority_cert_serial_number=123 */
    tl_check("{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": null,"
             " \"authority_cert_issuer\": [{\"type\": \"URI\", \"value\": \"http://example.com\"}],"
             " \"authority_cert_serial_number\": 123}}",
             "{\"type\": \"authority_key_identifier\", \"critical\": false, \"value\": {"
             "\"key_identifier\": null,"
             " \"authority_cert_issuer\": [{\"type\": \"URI\", \"value\": \"http://example.com\"}],"
             " \"authority_cert_serial_number\": 123}}");
    /* All three, with a 20-octet serial (beyond int64: a decimal string). */
    tl_check(
        "{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": \"AQIDBA==\","
        " \"authority_cert_issuer\": [{\"type\": \"dirName\","
        " \"value\": [{\"oid\": \"2.5.4.3\", \"value\": \"Root\"}]}],"
        " \"authority_cert_serial_number\": \"730750818665451459101842416358141509827966271487\"}}",
        "{\"type\": \"authority_key_identifier\", \"critical\": false, \"value\": {"
        "\"key_identifier\": \"AQIDBA==\", \"authority_cert_issuer\": [{\"type\": \"dirName\","
        " \"value\": [{\"oid\": \"2.5.4.3\", \"value\": \"Root\"}]}],"
        " \"authority_cert_serial_number\": "
        "\"730750818665451459101842416358141509827966271487\"}}");
}

static void test_authority_key_identifier_errors(void **state)
{
    /* "authority_cert_issuer and authority_cert_serial_number must either be both present or
     * None" */
    tl_check_error(
        "{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": \"MTIz\","
        " \"authority_cert_issuer\": [{\"type\": \"URI\", \"value\": \"http://example.com\"}]}}",
        "contradictory_fields", "value.authority_cert_issuer");
    tl_check_error(
        "{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": \"MTIz\","
        " \"authority_cert_serial_number\": 1}}",
        "contradictory_fields", "value.authority_cert_serial_number");
    /* "either key_identifier and/or authority_cert_issuer must be given" */
    tl_check_error(
        "{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": null}}",
        "missing_field", "value.key_identifier");
    /* key_identifier has no default. */
    tl_check_error(
        "{\"type\": \"authority_key_identifier\", \"value\": {"
        " \"authority_cert_issuer\": [{\"type\": \"URI\", \"value\": \"http://example.com\"}],"
        " \"authority_cert_serial_number\": 1}}",
        "missing_field", "value.key_identifier");
    tl_check_error(
        "{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": \"M\"}}",
        "invalid_base64", "value.key_identifier");
    tl_check_error(
        "{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": null,"
        " \"authority_cert_issuer\": [{\"type\": \"URI\", \"value\": \"http://example.com\"}],"
        " \"authority_cert_serial_number\": -5}}",
        "invalid_value", "value.authority_cert_serial_number");
    tl_check_error("{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": null,"
                   " \"authority_cert_issuer\": [],"
                   " \"authority_cert_serial_number\": 5}}",
                   "empty_list", "value.authority_cert_issuer");
}

/* --- information access ------------------------------------------------------------------ */

static void test_information_access_examples(void **state)
{
    /* AuthorityInformationAccessModel(value=[ocsp, issuers]) */
    tl_check("{\"type\": \"authority_information_access\", \"value\": ["
             "{\"access_method\": \"ocsp\","
             " \"access_location\": {\"type\": \"URI\", \"value\": \"http://ocsp.example.com\"}},"
             " {\"access_method\": \"ca_issuers\","
             " \"access_location\": {\"type\": \"URI\", \"value\": \"http://example.com\"}}]}",
             "{\"type\": \"authority_information_access\", \"critical\": false, \"value\": ["
             "{\"access_method\": \"1.3.6.1.5.5.7.48.1\","
             " \"access_location\": {\"type\": \"URI\", \"value\": \"http://ocsp.example.com\"}},"
             " {\"access_method\": \"1.3.6.1.5.5.7.48.2\","
             " \"access_location\": {\"type\": \"URI\", \"value\": \"http://example.com\"}}]}");
    /* AccessDescriptionModel(access_method='ocsp', ...) on its own, inside an AIA. */
    tl_check("{\"type\": \"authority_information_access\", \"value\": [{\"access_method\":"
             " \"1.3.6.1.5.5.7.48.1\", \"access_location\": {\"type\": \"URI\","
             " \"value\": \"http://ca.example.com/ocsp\"}}]}",
             "{\"type\": \"authority_information_access\", \"critical\": false, \"value\": [{"
             "\"access_method\": \"1.3.6.1.5.5.7.48.1\", \"access_location\": {\"type\": \"URI\","
             " \"value\": \"http://ca.example.com/ocsp\"}}]}");
    /* SubjectInformationAccessModel: access methods have to be ca_repository. */
    tl_check("{\"type\": \"subject_information_access\", \"value\": [{\"access_method\":"
             " \"ca_repository\", \"access_location\": {\"type\": \"URI\","
             " \"value\": \"http://example.com\"}}]}",
             "{\"type\": \"subject_information_access\", \"critical\": false, \"value\": [{"
             "\"access_method\": \"1.3.6.1.5.5.7.48.5\", \"access_location\": {\"type\": \"URI\","
             " \"value\": \"http://example.com\"}}]}");
}

static void test_information_access_errors(void **state)
{
    tl_check_error(
        "{\"type\": \"subject_information_access\", \"value\": [{\"access_method\":"
        " \"ocsp\", \"access_location\": {\"type\": \"URI\", \"value\": \"http://x.com\"}}]}",
        "invalid_value", "value[0].access_method");
    tl_check_error("{\"type\": \"authority_information_access\", \"value\": [{\"access_method\":"
                   " \"ca_repository\", \"access_location\": {\"type\": \"URI\","
                   " \"value\": \"http://x.com\"}}]}",
                   "invalid_value", "value[0].access_method");
    tl_check_error(
        "{\"type\": \"authority_information_access\", \"value\": [{\"access_method\":"
        " \"crl\", \"access_location\": {\"type\": \"URI\", \"value\": \"http://x.com\"}}]}",
        "invalid_value", "value[0].access_method");
    tl_check_error(
        "{\"type\": \"authority_information_access\", \"value\": [{\"access_method\":"
        " \"1..2\", \"access_location\": {\"type\": \"URI\", \"value\": \"http://x.com\"}}]}",
        "invalid_oid", "value[0].access_method");
    tl_check_error("{\"type\": \"authority_information_access\", \"value\": [{\"access_method\":"
                   " \"ocsp\"}]}",
                   "missing_field", "value[0].access_location");
    tl_check_error(
        "{\"type\": \"authority_information_access\", \"value\": [{\"access_method\":"
        " \"ocsp\", \"access_location\": [{\"type\": \"URI\", \"value\": \"http://x.com\"}]}]}",
        "invalid_type", "value[0].access_location");
    tl_check_error("{\"type\": \"authority_information_access\", \"value\": []}", "empty_list",
                   "value");
    tl_check_error("{\"type\": \"authority_information_access\", \"value\": ["
                   "{\"access_method\": \"ocsp\", \"access_location\": {\"type\": \"URI\","
                   " \"value\": \"http://x.com\"}},"
                   " {\"access_method\": \"1.3.6.1.5.5.7.48.1\", \"access_location\":"
                   " {\"type\": \"URI\", \"value\": \"http://x.com\"}}]}",
                   "duplicate_value", "value[1]");
}

static void test_information_access_der(void **state)
{
    tl_check_nconf(
        "{\"type\": \"authority_information_access\", \"value\": ["
        "{\"access_method\": \"ocsp\","
        " \"access_location\": {\"type\": \"URI\", \"value\": \"http://ocsp.example.com\"}},"
        " {\"access_method\": \"ca_issuers\","
        " \"access_location\": {\"type\": \"URI\", \"value\": \"http://example.com/ca.der\"}}]}",
        "authorityInfoAccess",
        "OCSP;URI:http://ocsp.example.com,caIssuers;URI:http://example.com/ca.der", NULL);
    tl_check_nconf("{\"type\": \"subject_information_access\", \"value\": [{\"access_method\":"
                   " \"ca_repository\", \"access_location\": {\"type\": \"URI\","
                   " \"value\": \"http://example.com/repo\"}}]}",
                   "subjectInfoAccess", "caRepository;URI:http://example.com/repo", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_alternative_name_examples),
        cmocka_unit_test(test_alternative_name_errors),
        cmocka_unit_test(test_alternative_name_der),
        cmocka_unit_test(test_name_constraints_examples),
        cmocka_unit_test(test_name_constraints_errors),
        cmocka_unit_test(test_name_constraints_der),
        cmocka_unit_test(test_authority_key_identifier_examples),
        cmocka_unit_test(test_authority_key_identifier_errors),
        cmocka_unit_test(test_information_access_examples),
        cmocka_unit_test(test_information_access_errors),
        cmocka_unit_test(test_information_access_der),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
