/* cf_x509_ext, policies: certificate policies (PolicyInformationModel, UserNoticeModel,
 * NoticeReferenceModel), policy constraints and inhibit anyPolicy. Examples of the reference,
 * errors, round trips and DER compared with OpenSSL's config language. */
#include "x509_ext_testlib.h"

static void test_certificate_policies_examples(void **state)
{
    /* CertificatePoliciesModel(value=[PolicyInformationModel(policy_identifier="2.5.29.32.0")]) */
    tl_check("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
             " \"2.5.29.32.0\"}]}",
             "{\"type\": \"certificate_policies\", \"critical\": false, \"value\": ["
             "{\"policy_identifier\": \"2.5.29.32.0\", \"policy_qualifiers\": null}]}");
    /* PolicyInformationModel with a CPS URI and UserNoticeModel(explicit_text="my text") */
    tl_check("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
             " \"1.3.6.1.5.5.7.2.1\", \"policy_qualifiers\": [\"https://ca.example.com/cps\","
             " {\"explicit_text\": \"my text\"}]}]}",
             "{\"type\": \"certificate_policies\", \"critical\": false, \"value\": ["
             "{\"policy_identifier\": \"1.3.6.1.5.5.7.2.1\", \"policy_qualifiers\":"
             " [\"https://ca.example.com/cps\","
             " {\"notice_reference\": null, \"explicit_text\": \"my text\"}]}]}");
    /* UserNoticeModel(notice_reference=NoticeReferenceModel(notice_numbers=[1, 2, 3]),
     * explicit_text="my text"): organization defaults to None. */
    tl_check("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
             " \"1.2.3\", \"policy_qualifiers\": [{\"notice_reference\": {\"notice_numbers\":"
             " [1, 2, 3]}, \"explicit_text\": \"my text\"}]}]}",
             "{\"type\": \"certificate_policies\", \"critical\": false, \"value\": ["
             "{\"policy_identifier\": \"1.2.3\", \"policy_qualifiers\": [{\"notice_reference\":"
             " {\"organization\": null, \"notice_numbers\": [1, 2, 3]},"
             " \"explicit_text\": \"my text\"}]}]}");
    /* NoticeReferenceModel(organization="MyOrg", notice_numbers=[1, 2, 3]) */
    tl_check("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
             " \"1.2.3\", \"policy_qualifiers\": [{\"notice_reference\": {\"organization\":"
             " \"MyOrg\", \"notice_numbers\": [1, 2, 3]}, \"explicit_text\": null}]}]}",
             "{\"type\": \"certificate_policies\", \"critical\": false, \"value\": ["
             "{\"policy_identifier\": \"1.2.3\", \"policy_qualifiers\": [{\"notice_reference\":"
             " {\"organization\": \"MyOrg\", \"notice_numbers\": [1, 2, 3]},"
             " \"explicit_text\": null}]}]}");
    /* The CA's policies of the models reference (CPS_USER_NOTICE with a CPS URI). */
    tl_check("{\"type\": \"certificate_policies\", \"critical\": false, \"value\": [{"
             "\"policy_identifier\": \"1.3.6.1.5.5.7.2.2\","
             " \"policy_qualifiers\": [\"https://ca.example.com/cps\"]}]}",
             "{\"type\": \"certificate_policies\", \"critical\": false, \"value\": [{"
             "\"policy_identifier\": \"1.3.6.1.5.5.7.2.2\","
             " \"policy_qualifiers\": [\"https://ca.example.com/cps\"]}]}");
    /* An empty organization is no organization (ASN.1 cannot tell them apart); UTF-8 text. */
    tl_check("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
             " \"1.2.3\", \"policy_qualifiers\": [{\"notice_reference\": {\"organization\": \"\","
             " \"notice_numbers\": []}, \"explicit_text\": \"Gr\\u00fc\\u00dfe\"}]},"
             " {\"policy_identifier\": \"2.23.140.1.2.1\"}]}",
             "{\"type\": \"certificate_policies\", \"critical\": false, \"value\": ["
             "{\"policy_identifier\": \"1.2.3\", \"policy_qualifiers\": [{\"notice_reference\":"
             " {\"organization\": null, \"notice_numbers\": []},"
             " \"explicit_text\": \"Gr\\u00fc\\u00dfe\"}]},"
             " {\"policy_identifier\": \"2.23.140.1.2.1\", \"policy_qualifiers\": null}]}");
}

static void test_certificate_policies_errors(void **state)
{
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": []}", "empty_list", "value");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"anyPolicy\"}]}",
                   "invalid_oid", "value[0].policy_identifier");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_qualifiers\":"
                   " [\"https://x\"]}]}",
                   "missing_field", "value[0].policy_identifier");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3\", \"policy_qualifiers\": []}]}",
                   "empty_list", "value[0].policy_qualifiers");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3\", \"policy_qualifiers\": [5]}]}",
                   "invalid_type", "value[0].policy_qualifiers[0]");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3\", \"policy_qualifiers\": [\"https://b\\u00fccher.example/cps\"]}]}",
                   "invalid_value", "value[0].policy_qualifiers[0]");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3\", \"policy_qualifiers\": [\"x\", {\"notice_reference\": null}]}]}",
                   "missing_field", "value[0].policy_qualifiers[1].explicit_text");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3\", \"policy_qualifiers\": [{\"explicit_text\": null,"
                   " \"notice_reference\": {\"organization\": \"Org\"}}]}]}",
                   "missing_field",
                   "value[0].policy_qualifiers[0].notice_reference.notice_numbers");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3\", \"policy_qualifiers\": [{\"explicit_text\": null,"
                   " \"notice_reference\": {\"notice_numbers\": [1, \"2\"]}}]}]}",
                   "invalid_type",
                   "value[0].policy_qualifiers[0].notice_reference.notice_numbers[1]");
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3\", \"policy_qualifiers\": [{\"explicit_text\": 7}]}]}",
                   "invalid_type", "value[0].policy_qualifiers[0].explicit_text");
    /* RFC 5280: a policy OID appears at most once. */
    tl_check_error("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3\"}, {\"policy_identifier\": \"1.2.3\","
                   " \"policy_qualifiers\": [\"https://x\"]}]}",
                   "duplicate_value", "value[1].policy_identifier");
}

static void test_certificate_policies_der(void **state)
{
    tl_check_nconf("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"2.5.29.32.0\"}, {\"policy_identifier\": \"1.2.3.4\"}]}",
                   "certificatePolicies", "2.5.29.32.0, 1.2.3.4", NULL);
    tl_check_nconf("{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
                   " \"1.2.3.4\", \"policy_qualifiers\": [\"http://example.com/cps\","
                   " {\"explicit_text\": \"my text\"}, \"http://example.com/cps2\"]}]}",
                   "certificatePolicies", "@pol",
                   "[pol]\npolicyIdentifier = 1.2.3.4\nCPS.1 = http://example.com/cps\n"
                   "userNotice.1 = @notice\nCPS.2 = http://example.com/cps2\n"
                   "[notice]\nexplicitText = UTF8:my text\n");
}

/* --- policy constraints and inhibit anyPolicy -------------------------------------------- */

static void test_policy_constraints_examples(void **state)
{
    /* PolicyConstraintsValueModel(require_explicit_policy=0, inhibit_policy_mapping=1) */
    tl_check("{\"type\": \"policy_constraints\", \"value\": {\"require_explicit_policy\": 0,"
             " \"inhibit_policy_mapping\": 1}}",
             "{\"type\": \"policy_constraints\", \"critical\": true, \"value\":"
             " {\"require_explicit_policy\": 0, \"inhibit_policy_mapping\": 1}}");
    tl_check("{\"type\": \"policy_constraints\", \"value\": {\"require_explicit_policy\": null,"
             " \"inhibit_policy_mapping\": 3}}",
             "{\"type\": \"policy_constraints\", \"critical\": true, \"value\":"
             " {\"require_explicit_policy\": null, \"inhibit_policy_mapping\": 3}}");
}

static void test_policy_constraints_errors(void **state)
{
    /* "At least one value must be given." */
    tl_check_error("{\"type\": \"policy_constraints\", \"value\": {\"require_explicit_policy\":"
                   " null, \"inhibit_policy_mapping\": null}}",
                   "missing_field", "value");
    tl_check_error(
        "{\"type\": \"policy_constraints\", \"value\": {\"require_explicit_policy\": 1}}",
        "missing_field", "value.inhibit_policy_mapping");
    tl_check_error("{\"type\": \"policy_constraints\", \"value\": {\"require_explicit_policy\": -1,"
                   " \"inhibit_policy_mapping\": null}}",
                   "invalid_value", "value.require_explicit_policy");
}

static void test_inhibit_any_policy_examples(void **state)
{
    /* InhibitAnyPolicyModel(value=1) -> critical=True, value=1 */
    tl_check("{\"type\": \"inhibit_any_policy\", \"value\": 1}",
             "{\"type\": \"inhibit_any_policy\", \"critical\": true, \"value\": 1}");
    /* InhibitAnyPolicy(0) of the models reference. */
    tl_check("{\"type\": \"inhibit_any_policy\", \"critical\": true, \"value\": 0}",
             "{\"type\": \"inhibit_any_policy\", \"critical\": true, \"value\": 0}");
}

static void test_inhibit_any_policy_errors(void **state)
{
    tl_check_error("{\"type\": \"inhibit_any_policy\", \"value\": -1}", "invalid_value", "value");
    tl_check_error("{\"type\": \"inhibit_any_policy\", \"value\": \"1\"}", "invalid_type", "value");
    tl_check_error("{\"type\": \"inhibit_any_policy\", \"value\": true}", "invalid_type", "value");
    tl_check_error("{\"type\": \"inhibit_any_policy\"}", "missing_field", "value");
}

static void test_policy_der(void **state)
{
    tl_check_nconf("{\"type\": \"policy_constraints\", \"value\": {\"require_explicit_policy\": 0,"
                   " \"inhibit_policy_mapping\": 1}}",
                   "policyConstraints", "critical,requireExplicitPolicy:0,inhibitPolicyMapping:1",
                   NULL);
    tl_check_nconf("{\"type\": \"policy_constraints\", \"critical\": false, \"value\":"
                   " {\"require_explicit_policy\": null, \"inhibit_policy_mapping\": 2}}",
                   "policyConstraints", "inhibitPolicyMapping:2", NULL);
    tl_check_nconf("{\"type\": \"inhibit_any_policy\", \"value\": 1}", "inhibitAnyPolicy",
                   "critical,1", NULL);
    tl_check_nconf("{\"type\": \"inhibit_any_policy\", \"value\": 0}", "inhibitAnyPolicy",
                   "critical,0", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_certificate_policies_examples),
        cmocka_unit_test(test_certificate_policies_errors),
        cmocka_unit_test(test_certificate_policies_der),
        cmocka_unit_test(test_policy_constraints_examples),
        cmocka_unit_test(test_policy_constraints_errors),
        cmocka_unit_test(test_inhibit_any_policy_examples),
        cmocka_unit_test(test_inhibit_any_policy_errors),
        cmocka_unit_test(test_policy_der),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
