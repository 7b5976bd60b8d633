/* The seed corpus of tests/fuzz/fuzz_x509_model.c, generated from example models: MessagePack
 * of models, lists, a name and general names, and the DER of a few extensions. The test checks
 * that the checked-in seeds are what the examples give (so they cannot rot); run it with
 * CF_WRITE_FUZZ_CORPUS=1 to write them instead. */
#include "x509_ext_testlib.h"

#include <errno.h>
#include <sys/stat.h>

typedef struct {
    const char *file; /* name in tests/fuzz/corpus/x509_model/ */
    bool der;         /* DER of the extension, else MessagePack of the JSON */
    const char *json; /* the example */
} s_seed_t;

static const s_seed_t s_seeds[] = {
    {"basic_constraints.mp", false,
     "{\"type\": \"basic_constraints\", \"critical\": true,"
     " \"value\": {\"ca\": true, \"path_length\": 0}}"},
    {"all_types.mp", false,
     "[{\"type\": \"authority_information_access\", \"value\": [{\"access_method\": \"ocsp\","
     "  \"access_location\": {\"type\": \"URI\", \"value\": \"http://ocsp.example.com\"}}]},"
     " {\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": \"MTIz\"}},"
     " {\"type\": \"basic_constraints\", \"value\": {\"ca\": false, \"path_length\": null}},"
     " {\"type\": \"crl_distribution_points\", \"value\": [{\"full_name\": [{\"type\": \"URI\","
     "  \"value\": \"https://ca.example.com/crl\"}], \"reasons\": [\"key_compromise\"]}]},"
     " {\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\": \"2.5.29.32.0\"}]},"
     " {\"type\": \"extended_key_usage\", \"value\": [\"clientAuth\", \"1.3.6.1.5.5.7.3.1\"]},"
     " {\"type\": \"freshest_crl\", \"value\": [{\"relative_name\": [{\"oid\": \"2.5.4.3\","
     "  \"value\": \"example.com\"}]}]},"
     " {\"type\": \"inhibit_any_policy\", \"value\": 1},"
     " {\"type\": \"issuer_alternative_name\", \"value\": [{\"type\": \"URI\","
     "  \"value\": \"https://ca.example.com\"}]},"
     " {\"type\": \"issuing_distribution_point\", \"value\": {\"only_contains_ca_certs\": true}},"
     " {\"type\": \"key_usage\", \"value\": [\"key_agreement\", \"key_encipherment\"]},"
     " {\"type\": \"ms_certificate_template\", \"critical\": false,"
     "  \"value\": {\"template_id\": \"1.2.3\", \"major_version\": 1}},"
     " {\"type\": \"name_constraints\", \"value\": {\"permitted_subtrees\": [{\"type\": \"DNS\","
     "  \"value\": \".com\"}]}},"
     " {\"type\": \"ocsp_no_check\"},"
     " {\"type\": \"policy_constraints\", \"value\": {\"require_explicit_policy\": 0,"
     "  \"inhibit_policy_mapping\": 1}},"
     " {\"type\": \"precert_poison\"},"
     " {\"type\": \"subject_alternative_name\", \"value\": [{\"type\": \"DNS\","
     "  \"value\": \"example.com\"}, {\"type\": \"IP\", \"value\": \"192.0.2.1\"}]},"
     " {\"type\": \"subject_information_access\", \"value\": [{\"access_method\":"
     "  \"ca_repository\", \"access_location\": {\"type\": \"URI\","
     "  \"value\": \"http://example.com\"}}]},"
     " {\"type\": \"subject_key_identifier\", \"value\": \"kA==\"},"
     " {\"type\": \"tls_feature\", \"value\": [\"OCSPMustStaple\"]},"
     " {\"type\": \"crl_number\", \"value\": 1},"
     " {\"type\": \"delta_crl_indicator\", \"value\": 1},"
     " {\"type\": \"unknown\", \"critical\": true, \"value\": {\"oid\": \"1.2.3\","
     "  \"value\": \"MTIz\"}}]"},
    {"sct.mp", false,
     "{\"type\": \"precertificate_signed_certificate_timestamps\", \"value\": [{\"log_id\":"
     " \"MTIz\", \"timestamp\": \"2023-12-10T00:00:00\", \"entry_type\": \"precertificate\"}]}"},
    {"policies.mp", false,
     "{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\":"
     " \"1.3.6.1.5.5.7.2.1\", \"policy_qualifiers\": [\"https://ca.example.com/cps\","
     " {\"notice_reference\": {\"organization\": \"MyOrg\", \"notice_numbers\": [1, 2, 3]},"
     " \"explicit_text\": \"my text\"}]}]}"},
    {"aki_issuer.mp", false,
     "{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": null,"
     " \"authority_cert_issuer\": [{\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.3\","
     " \"value\": \"Root\"}]}], \"authority_cert_serial_number\": 123}}"},
    {"idp.mp", false,
     "{\"type\": \"issuing_distribution_point\", \"value\": {\"full_name\": [{\"type\": \"URI\","
     " \"value\": \"https://ca.example.com/crl\"}], \"only_some_reasons\": [\"superseded\"]}}"},
    {"invalid_aki.mp", false,
     "{\"type\": \"authority_key_identifier\", \"value\": {\"key_identifier\": \"MTIz\","
     " \"authority_cert_serial_number\": 1}}"},
    {"name.mp", false,
     "[{\"oid\": \"C\", \"value\": \"AT\"}, {\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}]"},
    {"general_names.mp", false,
     "[{\"type\": \"email\", \"value\": \"user@example.com\"},"
     " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"BOOLEAN\","
     " \"value\": true}}, {\"type\": \"IP\", \"value\": \"2001:db8::/32\"}]"},
    {"san.der", true,
     "{\"type\": \"subject_alternative_name\", \"value\": [{\"type\": \"DNS\","
     " \"value\": \"example.com\"}, {\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.3\","
     " \"value\": \"x\"}]}]}"},
    {"crldp.der", true,
     "{\"type\": \"crl_distribution_points\", \"value\": [{\"crl_issuer\": [{\"type\": \"URI\","
     " \"value\": \"http://issuer.example.com\"}], \"reasons\": [\"ca_compromise\"]}]}"},
    {"policies.der", true,
     "{\"type\": \"certificate_policies\", \"value\": [{\"policy_identifier\": \"1.2.3\","
     " \"policy_qualifiers\": [{\"notice_reference\": {\"notice_numbers\": [7]},"
     " \"explicit_text\": null}]}]}"},
    {"ms_template.der", true,
     "{\"type\": \"ms_certificate_template\", \"critical\": true, \"value\": {\"template_id\":"
     " \"1.2.3.4\", \"major_version\": 100, \"minor_version\": 3}}"},
};

/* The bytes of a seed (caller frees). */
static unsigned char *s_seed_bytes(const s_seed_t *seed, size_t *len)
{
    json_t *j = tl_json(seed->json);
    unsigned char *out;
    if (seed->der) {
        int n;
        unsigned char *der = tl_der(j, &n);
        out = malloc((size_t)n);
        memcpy(out, der, (size_t)n);
        *len = (size_t)n;
        OPENSSL_free(der);
    } else {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        assert_int_equal(cf_json_to_msgpack(j, &pk), 0);
        out = malloc(buf.size);
        memcpy(out, buf.data, buf.size);
        *len = buf.size;
        msgpack_sbuffer_destroy(&buf);
    }
    json_decref(j);
    return out;
}

static void test_seed_corpus(void **state)
{
    char dir[512];
    const char *src = getenv("CF_SOURCE_DIR");
    snprintf(dir, sizeof dir, "%s/tests/fuzz/corpus/x509_model", src ? src : CF_SOURCE_DIR);
    bool write = getenv("CF_WRITE_FUZZ_CORPUS") != NULL;
    if (write && mkdir(dir, 0755) != 0 && errno != EEXIST)
        fail_msg("cannot create %s", dir);
    for (size_t i = 0; i < sizeof s_seeds / sizeof s_seeds[0]; i++) {
        size_t len;
        unsigned char *want = s_seed_bytes(&s_seeds[i], &len);
        char path[768];
        snprintf(path, sizeof path, "%s/%s", dir, s_seeds[i].file);
        if (write) {
            FILE *f = fopen(path, "wb");
            assert_non_null(f);
            assert_int_equal(fwrite(want, 1, len, f), len);
            fclose(f);
        } else {
            FILE *f = fopen(path, "rb");
            if (!f)
                fail_msg("seed %s is missing: run with CF_WRITE_FUZZ_CORPUS=1", path);
            unsigned char got[8192];
            size_t n = fread(got, 1, sizeof got, f);
            fclose(f);
            if (n != len || memcmp(got, want, len) != 0)
                fail_msg("seed %s is stale: run with CF_WRITE_FUZZ_CORPUS=1", path);
        }
        free(want);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_seed_corpus),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
