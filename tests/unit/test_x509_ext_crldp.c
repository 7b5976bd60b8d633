/* cf_x509_ext, distribution points: CRL distribution points and freshest CRL (lists of
 * DistributionPointModel) and the CRL's issuing distribution point. Examples of the reference,
 * the set semantics of reasons, the DER order of relative names, errors, and DER compared with
 * OpenSSL's config language. */
#include "x509_ext_testlib.h"

#define S_DP_URI "{\"full_name\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com/crl\"}]}"
#define S_DP_URI_NORMAL                                                                            \
    "{\"full_name\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com/crl\"}],"            \
    " \"relative_name\": null, \"crl_issuer\": null, \"reasons\": null}"

/* --- distribution points ----------------------------------------------------------------- */

static void test_crl_distribution_points_examples(void **state)
{
    /* CRLDistributionPointsModel(value=[dpoint]) */
    tl_check("{\"type\": \"crl_distribution_points\", \"value\": [" S_DP_URI "]}",
             "{\"type\": \"crl_distribution_points\", \"critical\": false,"
             " \"value\": [" S_DP_URI_NORMAL "]}");
    /* FreshestCRLModel behaves exactly like CRLDistributionPointsModel. */
    tl_check("{\"type\": \"freshest_crl\", \"value\": [" S_DP_URI "]}",
             "{\"type\": \"freshest_crl\", \"critical\": false, \"value\": [" S_DP_URI_NORMAL "]}");
    /* DistributionPointModel(relative_name=[CN], crl_issuer=[URI], reasons={"key_compromise"}) */
    tl_check("{\"type\": \"crl_distribution_points\", \"value\": [{"
             "\"relative_name\": [{\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}],"
             " \"crl_issuer\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com/issuer\"}],"
             " \"reasons\": [\"key_compromise\"]}]}",
             "{\"type\": \"crl_distribution_points\", \"critical\": false, \"value\": [{"
             "\"full_name\": null,"
             " \"relative_name\": [{\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}],"
             " \"crl_issuer\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com/issuer\"}],"
             " \"reasons\": [\"key_compromise\"]}]}");
    /* The CA's distribution point of the models reference. */
    tl_check("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\":"
             " [{\"type\": \"URI\", \"value\": \"http://ca.example.com/crl\"}],"
             " \"relative_name\": null, \"crl_issuer\": null, \"reasons\": null}]}",
             "{\"type\": \"crl_distribution_points\", \"critical\": false, \"value\": [{"
             "\"full_name\": [{\"type\": \"URI\", \"value\": \"http://ca.example.com/crl\"}],"
             " \"relative_name\": null, \"crl_issuer\": null, \"reasons\": null}]}");
}

static void test_distribution_point_normalisation(void **state)
{
    /* Reasons are a set: sorted, repeats collapse. Every reason survives DER. */
    tl_check("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\":"
             " [{\"type\": \"URI\", \"value\": \"http://a.example.com/crl\"}],"
             " \"reasons\": [\"superseded\", \"key_compromise\", \"superseded\", \"aa_compromise\","
             " \"ca_compromise\", \"affiliation_changed\", \"certificate_hold\","
             " \"cessation_of_operation\", \"privilege_withdrawn\"]}]}",
             "{\"type\": \"crl_distribution_points\", \"critical\": false, \"value\": [{"
             "\"full_name\": [{\"type\": \"URI\", \"value\": \"http://a.example.com/crl\"}],"
             " \"relative_name\": null, \"crl_issuer\": null, \"reasons\": [\"aa_compromise\","
             " \"affiliation_changed\", \"ca_compromise\", \"certificate_hold\","
             " \"cessation_of_operation\", \"key_compromise\", \"privilege_withdrawn\","
             " \"superseded\"]}]}");
    /* A relative name is one RDN, a SET: normalised to its DER order (O sorts before CN). */
    tl_check(
        "{\"type\": \"crl_distribution_points\", \"value\": [{\"relative_name\": ["
        "{\"oid\": \"CN\", \"value\": \"example.com\"}, {\"oid\": \"O\", \"value\": \"Org\"}]}]}",
        "{\"type\": \"crl_distribution_points\", \"critical\": false, \"value\": [{"
        "\"full_name\": null, \"relative_name\": [{\"oid\": \"2.5.4.10\", \"value\": \"Org\"},"
        " {\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}], \"crl_issuer\": null,"
        " \"reasons\": null}]}");
    /* Only a CRL issuer, several points. */
    tl_check(
        "{\"type\": \"freshest_crl\", \"critical\": false, \"value\": ["
        "{\"crl_issuer\": [{\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.3\","
        " \"value\": \"Issuer\"}]}]}, " S_DP_URI "]}",
        "{\"type\": \"freshest_crl\", \"critical\": false, \"value\": [{\"full_name\": null,"
        " \"relative_name\": null, \"crl_issuer\": [{\"type\": \"dirName\", \"value\":"
        " [{\"oid\": \"2.5.4.3\", \"value\": \"Issuer\"}]}], \"reasons\": null}, " S_DP_URI_NORMAL
        "]}");
}

static void test_distribution_point_errors(void **state)
{
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://a.example.com/crl\"}],"
                   " \"relative_name\": [{\"oid\": \"2.5.4.3\", \"value\": \"x\"}]}]}",
                   "contradictory_fields", "value[0].relative_name");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [{\"reasons\":"
                   " [\"key_compromise\"]}]}",
                   "missing_field", "value[0]");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://a.example.com/crl\"}],"
                   " \"reasons\": [\"unspecified\"]}]}",
                   "invalid_value", "value[0].reasons[0]");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://a.example.com/crl\"}],"
                   " \"reasons\": []}]}",
                   "empty_list", "value[0].reasons");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\": []}]}",
                   "empty_list", "value[0].full_name");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [{\"relative_name\": []}]}",
                   "empty_list", "value[0].relative_name");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [{\"relative_name\":"
                   " [{\"oid\": \"2.5.4.6\", \"value\": \"AUT\"}]}]}",
                   "invalid_country_code", "value[0].relative_name[0].value");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [" S_DP_URI ", " S_DP_URI
                   "]}",
                   "duplicate_value", "value[1]");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": []}", "empty_list", "value");
    tl_check_error("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://a.example.com/crl\"}],"
                   " \"crl_issuers\": null}]}",
                   "unknown_field", "value[0].crl_issuers");
}

static void test_distribution_point_der(void **state)
{
    tl_check_nconf("{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://example.com/crl\"}]}]}",
                   "crlDistributionPoints", "URI:http://example.com/crl", NULL);
    tl_check_nconf(
        "{\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\":"
        " [{\"type\": \"URI\", \"value\": \"http://example.com/crl\"}],"
        " \"crl_issuer\": [{\"type\": \"URI\", \"value\": \"http://issuer.example.com\"}],"
        " \"reasons\": [\"key_compromise\", \"ca_compromise\", \"aa_compromise\"]},"
        " {\"relative_name\": [{\"oid\": \"2.5.4.3\", \"value\": \"crl1\"}]}]}",
        "crlDistributionPoints", "dp1,dp2",
        "[dp1]\nfullname = URI:http://example.com/crl\n"
        "CRLissuer = URI:http://issuer.example.com\n"
        "reasons = keyCompromise,CACompromise,AACompromise\n"
        "[dp2]\nrelativename = rel\n[rel]\nCN = crl1\n");
    tl_check_nconf("{\"type\": \"freshest_crl\", \"value\": [{\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://example.com/delta.crl\"}]}]}",
                   "freshestCRL", "URI:http://example.com/delta.crl", NULL);
}

/* --- issuing distribution point ---------------------------------------------------------- */

static void test_issuing_distribution_point_examples(void **state)
{
    /* IssuingDistributionPointModel(value=IssuingDistributionPointValueModel(full_name=...)) */
    tl_check("{\"type\": \"issuing_distribution_point\", \"value\": " S_DP_URI "}",
             "{\"type\": \"issuing_distribution_point\", \"critical\": true, \"value\": {"
             "\"only_contains_user_certs\": false, \"only_contains_ca_certs\": false,"
             " \"indirect_crl\": false, \"only_contains_attribute_certs\": false,"
             " \"only_some_reasons\": null,"
             " \"full_name\": [{\"type\": \"URI\", \"value\": \"https://ca.example.com/crl\"}],"
             " \"relative_name\": null}}");
    tl_check("{\"type\": \"issuing_distribution_point\", \"value\": {\"only_contains_ca_certs\":"
             " true, \"only_some_reasons\": [\"key_compromise\", \"ca_compromise\"]}}",
             "{\"type\": \"issuing_distribution_point\", \"critical\": true, \"value\": {"
             "\"only_contains_user_certs\": false, \"only_contains_ca_certs\": true,"
             " \"indirect_crl\": false, \"only_contains_attribute_certs\": false,"
             " \"only_some_reasons\": [\"ca_compromise\", \"key_compromise\"],"
             " \"full_name\": null, \"relative_name\": null}}");
    for (int i = 0; i < 4; i++) {
        static const char *const flags[] = {"only_contains_user_certs", "only_contains_ca_certs",
                                            "indirect_crl", "only_contains_attribute_certs"};
        char in[512], want[1024];
        snprintf(in, sizeof in,
                 "{\"type\": \"issuing_distribution_point\", \"value\": {\"%s\": true,"
                 " \"relative_name\": [{\"oid\": \"2.5.4.3\", \"value\": \"crl\"}]}}",
                 flags[i]);
        snprintf(want, sizeof want,
                 "{\"type\": \"issuing_distribution_point\", \"critical\": true, \"value\": {"
                 "\"only_contains_user_certs\": %s, \"only_contains_ca_certs\": %s,"
                 " \"indirect_crl\": %s, \"only_contains_attribute_certs\": %s,"
                 " \"only_some_reasons\": null, \"full_name\": null,"
                 " \"relative_name\": [{\"oid\": \"2.5.4.3\", \"value\": \"crl\"}]}}",
                 i == 0 ? "true" : "false", i == 1 ? "true" : "false", i == 2 ? "true" : "false",
                 i == 3 ? "true" : "false");
        tl_check(in, want);
    }
}

static void test_issuing_distribution_point_errors(void **state)
{
    /* "at least one parameter needs to be given" */
    tl_check_error("{\"type\": \"issuing_distribution_point\", \"value\": {}}", "missing_field",
                   "value");
    tl_check_error("{\"type\": \"issuing_distribution_point\", \"value\":"
                   " {\"only_contains_user_certs\": false, \"full_name\": null}}",
                   "missing_field", "value");
    tl_check_error("{\"type\": \"issuing_distribution_point\", \"value\":"
                   " {\"only_contains_user_certs\": true, \"only_contains_ca_certs\": true}}",
                   "contradictory_fields", "value.only_contains_ca_certs");
    tl_check_error("{\"type\": \"issuing_distribution_point\", \"value\":"
                   " {\"indirect_crl\": \"yes\"}}",
                   "invalid_type", "value.indirect_crl");
    tl_check_error("{\"type\": \"issuing_distribution_point\", \"value\": {\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://a.example.com/crl\"}],"
                   " \"relative_name\": [{\"oid\": \"2.5.4.3\", \"value\": \"x\"}]}}",
                   "contradictory_fields", "value.relative_name");
    tl_check_error("{\"type\": \"issuing_distribution_point\", \"value\":"
                   " {\"only_some_reasons\": [\"remove_from_crl\"]}}",
                   "invalid_value", "value.only_some_reasons[0]");
    tl_check_error("{\"type\": \"issuing_distribution_point\", \"value\":"
                   " {\"crl_issuer\": [{\"type\": \"URI\", \"value\": \"http://a.example.com\"}]}}",
                   "unknown_field", "value.crl_issuer");
}

static void test_issuing_distribution_point_der(void **state)
{
    tl_check_nconf("{\"type\": \"issuing_distribution_point\", \"value\": {\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://example.com/crl\"}],"
                   " \"only_some_reasons\": [\"key_compromise\"]}}",
                   "issuingDistributionPoint", "critical,@idp",
                   "[idp]\nfullname = URI:http://example.com/crl\n"
                   "onlysomereasons = keyCompromise\n");
    tl_check_nconf("{\"type\": \"issuing_distribution_point\", \"value\": {\"full_name\":"
                   " [{\"type\": \"URI\", \"value\": \"http://example.com/crl\"}],"
                   " \"only_contains_user_certs\": true}}",
                   "issuingDistributionPoint", "critical,@idp",
                   "[idp]\nfullname = URI:http://example.com/crl\nonlyuser = TRUE\n");
    tl_check_nconf("{\"type\": \"issuing_distribution_point\", \"critical\": false,"
                   " \"value\": {\"indirect_crl\": true}}",
                   "issuingDistributionPoint", "@idp", "[idp]\nindirectCRL = TRUE\n");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crl_distribution_points_examples),
        cmocka_unit_test(test_distribution_point_normalisation),
        cmocka_unit_test(test_distribution_point_errors),
        cmocka_unit_test(test_distribution_point_der),
        cmocka_unit_test(test_issuing_distribution_point_examples),
        cmocka_unit_test(test_issuing_distribution_point_errors),
        cmocka_unit_test(test_issuing_distribution_point_der),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
