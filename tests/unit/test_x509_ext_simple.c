/* cf_x509_ext, the flat models: basic constraints, key usage, extended key usage, TLS feature,
 * OCSP no check, precert poison, subject key identifier, CRL number, delta CRL indicator, MS
 * certificate template, the read-only SCT lists and the unknown model. Every example of the
 * reference is here with its normalised output; each model goes through every round trip. */
#include "x509_ext_testlib.h"

/* --- basic constraints ------------------------------------------------------------------- */

static void test_basic_constraints_examples(void **state)
{
    /* BasicConstraintsModel(value=BasicConstraintsValueModel(ca=True, path_length=0)) */
    tl_check("{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, \"path_length\": 0}}",
             "{\"type\": \"basic_constraints\", \"critical\": true,"
             " \"value\": {\"ca\": true, \"path_length\": 0}}");
    /* End entity: ca=False, path_length=None. */
    tl_check("{\"type\": \"basic_constraints\", \"value\": {\"ca\": false, \"path_length\": null}}",
             "{\"type\": \"basic_constraints\", \"critical\": true,"
             " \"value\": {\"ca\": false, \"path_length\": null}}");
    /* A CA without a path length, not critical. */
    tl_check("{\"type\": \"basic_constraints\", \"critical\": false,"
             " \"value\": {\"ca\": true, \"path_length\": null}}",
             "{\"type\": \"basic_constraints\", \"critical\": false,"
             " \"value\": {\"ca\": true, \"path_length\": null}}");
    tl_check("{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, \"path_length\": 3}}",
             "{\"type\": \"basic_constraints\", \"critical\": true,"
             " \"value\": {\"ca\": true, \"path_length\": 3}}");
}

static void test_basic_constraints_errors(void **state)
{
    /* "path_length must be None when ca is False" */
    tl_check_error(
        "{\"type\": \"basic_constraints\", \"value\": {\"ca\": false, \"path_length\": 0}}",
        "contradictory_fields", "value.path_length");
    tl_check_error(
        "{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, \"path_length\": -1}}",
        "invalid_value", "value.path_length");
    tl_check_error(
        "{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, \"path_length\": \"1\"}}",
        "invalid_type", "value.path_length");
    tl_check_error(
        "{\"type\": \"basic_constraints\", \"value\": {\"ca\": \"yes\", \"path_length\": null}}",
        "invalid_type", "value.ca");
    tl_check_error("{\"type\": \"basic_constraints\", \"value\": {\"ca\": true}}", "missing_field",
                   "value.path_length");
    tl_check_error("{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, \"path_length\": 0,"
                   " \"pathlen\": 1}}",
                   "unknown_field", "value.pathlen");
    tl_check_error("{\"type\": \"basic_constraints\"}", "missing_field", "value");
    tl_check_error("{\"type\": \"basic_constraints\", \"value\": [true]}", "invalid_type", "value");
    tl_check_error("{\"type\": \"basic_constraints\", \"critical\": 1,"
                   " \"value\": {\"ca\": true, \"path_length\": null}}",
                   "invalid_type", "critical");
    tl_check_error("{\"type\": \"basic_constraints\", \"critical\": null,"
                   " \"value\": {\"ca\": true, \"path_length\": null}}",
                   "invalid_type", "critical");
}

static void test_basic_constraints_der(void **state)
{
    tl_check_nconf(
        "{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, \"path_length\": 0}}",
        "basicConstraints", "critical,CA:TRUE,pathlen:0", NULL);
    tl_check_nconf(
        "{\"type\": \"basic_constraints\", \"value\": {\"ca\": false, \"path_length\": null}}",
        "basicConstraints", "critical,CA:FALSE", NULL);
    tl_check_nconf("{\"type\": \"basic_constraints\", \"critical\": false,"
                   " \"value\": {\"ca\": true, \"path_length\": null}}",
                   "basicConstraints", "CA:TRUE", NULL);
}

/* --- key usage --------------------------------------------------------------------------- */

static void test_key_usage_examples(void **state)
{
    /* KeyUsageModel(value=["key_agreement", "key_encipherment"]) */
    tl_check("{\"type\": \"key_usage\", \"value\": [\"key_agreement\", \"key_encipherment\"]}",
             "{\"type\": \"key_usage\", \"critical\": true,"
             " \"value\": [\"key_agreement\", \"key_encipherment\"]}");
    /* Sorted, repeats collapse, RFC 5280 names are aliases. */
    tl_check(
        "{\"type\": \"key_usage\", \"critical\": false,"
        " \"value\": [\"key_cert_sign\", \"cRLSign\", \"digital_signature\", \"key_cert_sign\"]}",
        "{\"type\": \"key_usage\", \"critical\": false,"
        " \"value\": [\"crl_sign\", \"digital_signature\", \"key_cert_sign\"]}");
    /* All nine, including the bit beyond the first octet. */
    tl_check("{\"type\": \"key_usage\", \"value\": [\"decipher_only\", \"encipher_only\","
             " \"key_agreement\", \"nonRepudiation\", \"data_encipherment\", \"crl_sign\","
             " \"key_cert_sign\", \"key_encipherment\", \"digital_signature\"]}",
             "{\"type\": \"key_usage\", \"critical\": true, \"value\": [\"content_commitment\","
             " \"crl_sign\", \"data_encipherment\", \"decipher_only\", \"digital_signature\","
             " \"encipher_only\", \"key_agreement\", \"key_cert_sign\", \"key_encipherment\"]}");
}

static void test_key_usage_errors(void **state)
{
    tl_check_error("{\"type\": \"key_usage\", \"value\": [\"digital_signature\", \"sign\"]}",
                   "invalid_value", "value[1]");
    tl_check_error("{\"type\": \"key_usage\", \"value\": []}", "empty_list", "value");
    tl_check_error("{\"type\": \"key_usage\", \"value\": \"digital_signature\"}", "invalid_type",
                   "value");
    tl_check_error("{\"type\": \"key_usage\", \"value\": [1]}", "invalid_type", "value[0]");
    tl_check_error("{\"type\": \"key_usage\", \"value\": [\"encipher_only\"]}",
                   "contradictory_fields", "value");
}

static void test_key_usage_der(void **state)
{
    tl_check_nconf(
        "{\"type\": \"key_usage\", \"value\": [\"digital_signature\", \"key_encipherment\"]}",
        "keyUsage", "critical,digitalSignature,keyEncipherment", NULL);
    tl_check_nconf("{\"type\": \"key_usage\", \"value\": [\"key_cert_sign\", \"crl_sign\"]}",
                   "keyUsage", "critical,keyCertSign,cRLSign", NULL);
    tl_check_nconf("{\"type\": \"key_usage\", \"critical\": false,"
                   " \"value\": [\"key_agreement\", \"decipher_only\", \"content_commitment\"]}",
                   "keyUsage", "keyAgreement,decipherOnly,nonRepudiation", NULL);
}

/* --- extended key usage ------------------------------------------------------------------ */

static void test_extended_key_usage_examples(void **state)
{
    /* ExtendedKeyUsageModel(value=["clientAuth", "1.3.6.1.5.5.7.3.1"]): order is kept. */
    tl_check(
        "{\"type\": \"extended_key_usage\", \"value\": [\"clientAuth\", \"1.3.6.1.5.5.7.3.1\"]}",
        "{\"type\": \"extended_key_usage\", \"critical\": false,"
        " \"value\": [\"1.3.6.1.5.5.7.3.2\", \"1.3.6.1.5.5.7.3.1\"]}");
    /* Every name of EXTENDED_KEY_USAGE_NAMES. */
    tl_check("{\"type\": \"extended_key_usage\", \"critical\": true, \"value\": ["
             "\"anyExtendedKeyUsage\", \"certificateTransparency\", \"clientAuth\","
             " \"codeSigning\", \"emailProtection\", \"ipsecEndSystem\", \"ipsecIKE\","
             " \"ipsecTunnel\", \"ipsecUser\", \"msKDC\", \"mdlDS\", \"mdlJWS\", \"OCSPSigning\","
             " \"serverAuth\", \"smartcardLogon\", \"timeStamping\"]}",
             "{\"type\": \"extended_key_usage\", \"critical\": true, \"value\": ["
             "\"2.5.29.37.0\", \"1.3.6.1.4.1.11129.2.4.4\", \"1.3.6.1.5.5.7.3.2\","
             " \"1.3.6.1.5.5.7.3.3\", \"1.3.6.1.5.5.7.3.4\", \"1.3.6.1.5.5.7.3.5\","
             " \"1.3.6.1.5.5.7.3.17\", \"1.3.6.1.5.5.7.3.6\", \"1.3.6.1.5.5.7.3.7\","
             " \"1.3.6.1.5.2.3.5\", \"1.0.18013.5.1.2\", \"1.0.18013.5.1.3\","
             " \"1.3.6.1.5.5.7.3.9\", \"1.3.6.1.5.5.7.3.1\", \"1.3.6.1.4.1.311.20.2.2\","
             " \"1.3.6.1.5.5.7.3.8\"]}");
}

static void test_extended_key_usage_errors(void **state)
{
    tl_check_error("{\"type\": \"extended_key_usage\", \"value\": [\"serverauth\"]}",
                   "invalid_value", "value[0]");
    tl_check_error("{\"type\": \"extended_key_usage\", \"value\": [\"serverAuth\", \"1.2..3\"]}",
                   "invalid_oid", "value[1]");
    tl_check_error("{\"type\": \"extended_key_usage\", \"value\": [\"3.1\"]}", "invalid_oid",
                   "value[0]");
    tl_check_error("{\"type\": \"extended_key_usage\", \"value\": [\"01.2\"]}", "invalid_oid",
                   "value[0]");
    tl_check_error(
        "{\"type\": \"extended_key_usage\", \"value\": [\"serverAuth\", \"1.3.6.1.5.5.7.3.1\"]}",
        "duplicate_value", "value[1]");
    tl_check_error("{\"type\": \"extended_key_usage\", \"value\": []}", "empty_list", "value");
    tl_check_error("{\"type\": \"extended_key_usage\", \"value\": [null]}", "invalid_type",
                   "value[0]");
}

static void test_extended_key_usage_der(void **state)
{
    tl_check_nconf(
        "{\"type\": \"extended_key_usage\", \"value\": [\"serverAuth\", \"clientAuth\"]}",
        "extendedKeyUsage", "serverAuth,clientAuth", NULL);
    tl_check_nconf("{\"type\": \"extended_key_usage\", \"critical\": true,"
                   " \"value\": [\"codeSigning\", \"1.2.3.4\", \"OCSPSigning\", \"msKDC\"]}",
                   "extendedKeyUsage", "critical,codeSigning,1.2.3.4,OCSPSigning,1.3.6.1.5.2.3.5",
                   NULL);
}

/* --- TLS feature ------------------------------------------------------------------------- */

static void test_tls_feature_examples(void **state)
{
    tl_check("{\"type\": \"tls_feature\", \"value\": [\"status_request\"]}",
             "{\"type\": \"tls_feature\", \"critical\": false, \"value\": [\"status_request\"]}");
    /* TLS_FEATURE_NAMES aliases. */
    tl_check("{\"type\": \"tls_feature\", \"value\": [\"OCSPMustStaple\"]}",
             "{\"type\": \"tls_feature\", \"critical\": false, \"value\": [\"status_request\"]}");
    tl_check("{\"type\": \"tls_feature\", \"value\": [\"MultipleCertStatusRequest\", "
             "\"status_request\"]}",
             "{\"type\": \"tls_feature\", \"critical\": false,"
             " \"value\": [\"status_request_v2\", \"status_request\"]}");
}

static void test_tls_feature_errors(void **state)
{
    tl_check_error("{\"type\": \"tls_feature\", \"value\": [\"must_staple\"]}", "invalid_value",
                   "value[0]");
    tl_check_error(
        "{\"type\": \"tls_feature\", \"value\": [\"status_request\", \"OCSPMustStaple\"]}",
        "duplicate_value", "value[1]");
    tl_check_error("{\"type\": \"tls_feature\", \"value\": [5]}", "invalid_type", "value[0]");
    tl_check_error("{\"type\": \"tls_feature\", \"value\": []}", "empty_list", "value");
}

static void test_tls_feature_der(void **state)
{
    tl_check_nconf("{\"type\": \"tls_feature\", \"value\": [\"status_request\"]}", "tlsfeature",
                   "status_request", NULL);
    tl_check_nconf(
        "{\"type\": \"tls_feature\", \"value\": [\"status_request\", \"status_request_v2\"]}",
        "tlsfeature", "status_request,status_request_v2", NULL);
}

/* --- OCSP no check and precert poison ---------------------------------------------------- */

static void test_no_value_examples(void **state)
{
    /* OCSPNoCheckModel() and OCSPNoCheckModel(value=None, critical=True) */
    tl_check("{\"type\": \"ocsp_no_check\"}",
             "{\"type\": \"ocsp_no_check\", \"critical\": false, \"value\": null}");
    tl_check("{\"type\": \"ocsp_no_check\", \"value\": null, \"critical\": true}",
             "{\"type\": \"ocsp_no_check\", \"critical\": true, \"value\": null}");
    /* PrecertPoisonModel() and PrecertPoisonModel(value=None, critical=True) */
    tl_check("{\"type\": \"precert_poison\"}",
             "{\"type\": \"precert_poison\", \"critical\": true, \"value\": null}");
    tl_check("{\"type\": \"precert_poison\", \"value\": null, \"critical\": true}",
             "{\"type\": \"precert_poison\", \"critical\": true, \"value\": null}");
}

static void test_no_value_errors(void **state)
{
    tl_check_error("{\"type\": \"ocsp_no_check\", \"value\": {}}", "invalid_type", "value");
    tl_check_error("{\"type\": \"ocsp_no_check\", \"value\": false}", "invalid_type", "value");
    /* RFC 6962: the poison extension is critical. */
    tl_check_error("{\"type\": \"precert_poison\", \"critical\": false}", "invalid_critical",
                   "critical");
    tl_check_error("{\"type\": \"precert_poison\", \"value\": 1}", "invalid_type", "value");
}

static void test_no_value_der(void **state)
{
    tl_check_nconf("{\"type\": \"ocsp_no_check\"}", "noCheck", "ignored", NULL);
    /* The poison is a NULL under its OID: 30 13 06 0A <oid> 01 01 FF 04 02 05 00. */
    json_t *m = tl_json("{\"type\": \"precert_poison\"}");
    int len;
    unsigned char *der = tl_der(m, &len);
    static const unsigned char want[] = {0x30, 0x13, 0x06, 0x0A, 0x2B, 0x06, 0x01,
                                         0x04, 0x01, 0xD6, 0x79, 0x02, 0x04, 0x03,
                                         0x01, 0x01, 0xFF, 0x04, 0x02, 0x05, 0x00};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(der, want, sizeof want);
    OPENSSL_free(der);
    json_decref(m);
}

/* --- subject key identifier -------------------------------------------------------------- */

static void test_subject_key_identifier_examples(void **state)
{
    /* SubjectKeyIdentifierModel(value=b"kA==") -> value b'\x90' */
    tl_check("{\"type\": \"subject_key_identifier\", \"value\": \"kA==\"}",
             "{\"type\": \"subject_key_identifier\", \"critical\": false, \"value\": \"kA==\"}");
    /* Base64 is normalised to its canonical spelling. */
    tl_check("{\"type\": \"subject_key_identifier\", \"value\": \"kB==\"}",
             "{\"type\": \"subject_key_identifier\", \"critical\": false, \"value\": \"kA==\"}");
}

static void test_subject_key_identifier_errors(void **state)
{
    tl_check_error("{\"type\": \"subject_key_identifier\", \"value\": \"kA=\"}", "invalid_base64",
                   "value");
    tl_check_error("{\"type\": \"subject_key_identifier\", \"value\": \"!!!!\"}", "invalid_base64",
                   "value");
    tl_check_error("{\"type\": \"subject_key_identifier\", \"value\": 144}", "invalid_type",
                   "value");
}

static void test_subject_key_identifier_der(void **state)
{
    tl_check_nconf("{\"type\": \"subject_key_identifier\", \"value\": \"ASNFZ4mrze8=\"}",
                   "subjectKeyIdentifier", "01:23:45:67:89:AB:CD:EF", NULL);
}

/* --- CRL number and delta CRL indicator -------------------------------------------------- */

static void test_crl_number_examples(void **state)
{
    /* CRLNumberModel(value=1) and DeltaCRLIndicatorModel(value=1) */
    tl_check("{\"type\": \"crl_number\", \"value\": 1}",
             "{\"type\": \"crl_number\", \"critical\": false, \"value\": 1}");
    tl_check("{\"type\": \"delta_crl_indicator\", \"value\": 1}",
             "{\"type\": \"delta_crl_indicator\", \"critical\": true, \"value\": 1}");
    /* Up to 20 octets: beyond int64 the value is a decimal string. */
    tl_check("{\"type\": \"crl_number\", \"value\": \"00012\"}",
             "{\"type\": \"crl_number\", \"critical\": false, \"value\": 12}");
    tl_check("{\"type\": \"crl_number\", \"value\": \"9223372036854775808\"}",
             "{\"type\": \"crl_number\", \"critical\": false, \"value\": \"9223372036854775808\"}");
    tl_check("{\"type\": \"crl_number\", \"value\": "
             "\"1461501637330902918203684832716283019655932542975\"}",
             "{\"type\": \"crl_number\", \"critical\": false,"
             " \"value\": \"1461501637330902918203684832716283019655932542975\"}");
}

static void test_crl_number_errors(void **state)
{
    tl_check_error("{\"type\": \"crl_number\", \"value\": -1}", "invalid_value", "value");
    tl_check_error("{\"type\": \"crl_number\", \"value\": 1.5}", "invalid_type", "value");
    tl_check_error("{\"type\": \"crl_number\", \"value\": \"0x10\"}", "invalid_value", "value");
    /* 2^160 needs 21 octets. */
    tl_check_error("{\"type\": \"crl_number\", \"value\": "
                   "\"1461501637330902918203684832716283019655932542976\"}",
                   "invalid_value", "value");
    tl_check_error("{\"type\": \"delta_crl_indicator\", \"value\": null}", "invalid_type", "value");
}

/* OpenSSL's config cannot write CRL numbers: compare with X509V3_EXT_i2d of an INTEGER. */
static void s_check_i2d_integer(const char *model, int nid, int crit, long value)
{
    json_t *m = tl_json(model);
    int len;
    unsigned char *ours = tl_der(m, &len);
    ASN1_INTEGER *ai = ASN1_INTEGER_new();
    ASN1_INTEGER_set(ai, value);
    X509_EXTENSION *ext = X509V3_EXT_i2d(nid, crit, ai);
    unsigned char *theirs = NULL;
    int len2 = i2d_X509_EXTENSION(ext, &theirs);
    assert_int_equal(len, len2);
    assert_memory_equal(ours, theirs, (size_t)len);
    OPENSSL_free(theirs);
    OPENSSL_free(ours);
    X509_EXTENSION_free(ext);
    ASN1_INTEGER_free(ai);
    json_decref(m);
}

static void test_crl_number_der(void **state)
{
    s_check_i2d_integer("{\"type\": \"crl_number\", \"value\": 4660}", NID_crl_number, 0, 4660);
    s_check_i2d_integer("{\"type\": \"delta_crl_indicator\", \"value\": 0}", NID_delta_crl, 1, 0);
    s_check_i2d_integer("{\"type\": \"crl_number\", \"value\": 128}", NID_crl_number, 0, 128);
}

/* --- MS certificate template ------------------------------------------------------------- */

static void test_ms_certificate_template_examples(void **state)
{
    /* MSCertificateTemplateModel(critical=True, value=...(template_id="1.2.3", major_version=1)) */
    tl_check(
        "{\"type\": \"ms_certificate_template\", \"critical\": true,"
        " \"value\": {\"template_id\": \"1.2.3\", \"major_version\": 1}}",
        "{\"type\": \"ms_certificate_template\", \"critical\": true,"
        " \"value\": {\"template_id\": \"1.2.3\", \"major_version\": 1, \"minor_version\": null}}");
    tl_check("{\"type\": \"ms_certificate_template\", \"critical\": false,"
             " \"value\": {\"template_id\": \"1.3.6.1.4.1.311.21.8.1\"}}",
             "{\"type\": \"ms_certificate_template\", \"critical\": false, \"value\":"
             " {\"template_id\": \"1.3.6.1.4.1.311.21.8.1\", \"major_version\": null,"
             " \"minor_version\": null}}");
    tl_check("{\"type\": \"ms_certificate_template\", \"critical\": false,"
             " \"value\": {\"template_id\": \"1.2.3\", \"major_version\": 4294967295,"
             " \"minor_version\": 0}}",
             "{\"type\": \"ms_certificate_template\", \"critical\": false,"
             " \"value\": {\"template_id\": \"1.2.3\", \"major_version\": 4294967295,"
             " \"minor_version\": 0}}");
}

static void test_ms_certificate_template_errors(void **state)
{
    /* No default for critical: it is mandatory. */
    tl_check_error(
        "{\"type\": \"ms_certificate_template\", \"value\": {\"template_id\": \"1.2.3\"}}",
        "missing_field", "critical");
    tl_check_error("{\"type\": \"ms_certificate_template\", \"critical\": true,"
                   " \"value\": {\"template_id\": \"foo\"}}",
                   "invalid_oid", "value.template_id");
    tl_check_error("{\"type\": \"ms_certificate_template\", \"critical\": true,"
                   " \"value\": {\"major_version\": 1}}",
                   "missing_field", "value.template_id");
    tl_check_error("{\"type\": \"ms_certificate_template\", \"critical\": true,"
                   " \"value\": {\"template_id\": \"1.2.3\", \"minor_version\": 1}}",
                   "contradictory_fields", "value.minor_version");
    tl_check_error("{\"type\": \"ms_certificate_template\", \"critical\": true,"
                   " \"value\": {\"template_id\": \"1.2.3\", \"major_version\": 4294967296}}",
                   "invalid_value", "value.major_version");
}

/* --- signed certificate timestamps (read-only) ------------------------------------------- */

static void test_sct_examples(void **state)
{
    /* SignedCertificateTimestampModel(log_id=b"MTIz", timestamp=datetime(2023, 12, 10),
     * entry_type="precertificate") inside both list models. */
    tl_check("{\"type\": \"precertificate_signed_certificate_timestamps\", \"value\": [{"
             "\"log_id\": \"MTIz\", \"timestamp\": \"2023-12-10T00:00:00\","
             " \"entry_type\": \"precertificate\"}]}",
             "{\"type\": \"precertificate_signed_certificate_timestamps\", \"critical\": false,"
             " \"value\": [{\"version\": \"v1\", \"log_id\": \"MTIz\","
             " \"timestamp\": \"2023-12-10T00:00:00Z\", \"entry_type\": \"precertificate\"}]}");
    tl_check(
        "{\"type\": \"signed_certificate_timestamps\", \"value\": [{\"version\": \"v1\","
        " \"log_id\": \"MTIz\", \"timestamp\": \"2023-12-10T01:02:03.450+00:00\","
        " \"entry_type\": \"x509_certificate\"}]}",
        "{\"type\": \"signed_certificate_timestamps\", \"critical\": false,"
        " \"value\": [{\"version\": \"v1\", \"log_id\": \"MTIz\","
        " \"timestamp\": \"2023-12-10T01:02:03.450Z\", \"entry_type\": \"x509_certificate\"}]}");
}

static void test_sct_errors(void **state)
{
    tl_check_error("{\"type\": \"signed_certificate_timestamps\", \"value\": [{\"version\": \"v2\","
                   " \"log_id\": \"MTIz\", \"timestamp\": \"2023-12-10T00:00:00\","
                   " \"entry_type\": \"precertificate\"}]}",
                   "invalid_value", "value[0].version");
    tl_check_error("{\"type\": \"signed_certificate_timestamps\", \"value\": [{"
                   " \"log_id\": \"MTIz\", \"timestamp\": \"2023-02-30T00:00:00\","
                   " \"entry_type\": \"precertificate\"}]}",
                   "invalid_value", "value[0].timestamp");
    tl_check_error("{\"type\": \"signed_certificate_timestamps\", \"value\": [{"
                   " \"log_id\": \"MTIz\", \"timestamp\": \"2023-12-10T00:00:00.0001\","
                   " \"entry_type\": \"precertificate\"}]}",
                   "invalid_value", "value[0].timestamp");
    tl_check_error("{\"type\": \"signed_certificate_timestamps\", \"value\": [{"
                   " \"log_id\": \"MTIz\", \"timestamp\": \"2023-12-10T00:00:00\","
                   " \"entry_type\": \"certificate\"}]}",
                   "invalid_value", "value[0].entry_type");
    tl_check_error("{\"type\": \"signed_certificate_timestamps\", \"value\": []}", "empty_list",
                   "value");

    /* Read-only: it parses, but never becomes DER. */
    json_t *m = tl_json("{\"type\": \"precertificate_signed_certificate_timestamps\", \"value\": [{"
                        "\"log_id\": \"MTIz\", \"timestamp\": \"2023-12-10T00:00:00\","
                        " \"entry_type\": \"precertificate\"}]}");
    cf_error_t err = {0};
    assert_null(cf_extension_to_openssl(m, &err));
    assert_string_equal(err.code, "read_only");
    assert_string_equal(err.field, "type");
    json_decref(m);
}

/* An SCT list as RFC 6962 writes it: OCTET STRING { u16 list length, u16 SCT length, SCT }. */
static void test_sct_from_der(void **state)
{
    unsigned char sct[1 + 32 + 8 + 2 + 2 + 2 + 4];
    size_t n = 0;
    sct[n++] = 0; /* v1 */
    for (int i = 0; i < 32; i++)
        sct[n++] = (unsigned char)i; /* log ID */
    uint64_t ms = 1702166400123ULL;  /* 2023-12-10T00:00:00.123Z */
    for (int i = 7; i >= 0; i--)
        sct[n++] = (unsigned char)(ms >> (8 * i));
    sct[n++] = 0, sct[n++] = 0;             /* no extensions */
    sct[n++] = 4, sct[n++] = 3;             /* sha256, ecdsa */
    sct[n++] = 0, sct[n++] = 4;             /* signature length */
    memcpy(sct + n, "\x30\x02\x01\x00", 4); /* not a real signature: never checked here */
    n += 4;
    unsigned char inner[2 + 2 + sizeof sct];
    inner[0] = 0, inner[1] = (unsigned char)(2 + n);
    inner[2] = 0, inner[3] = (unsigned char)n;
    memcpy(inner + 4, sct, n);
    ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(os, inner, (int)(4 + n));
    unsigned char *der = NULL;
    int der_len = i2d_ASN1_OCTET_STRING(os, &der);
    ASN1_OCTET_STRING_free(os);

    static const char *const oids[] = {"1.3.6.1.4.1.11129.2.4.2", "1.3.6.1.4.1.11129.2.4.5"};
    static const char *const want[] = {
        "{\"type\": \"precertificate_signed_certificate_timestamps\", \"critical\": false,"
        " \"value\": [{\"version\": \"v1\", \"log_id\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\","
        " \"timestamp\": \"2023-12-10T00:00:00.123Z\", \"entry_type\": \"precertificate\"}]}",
        "{\"type\": \"signed_certificate_timestamps\", \"critical\": false,"
        " \"value\": [{\"version\": \"v1\", \"log_id\": "
        "\"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\","
        " \"timestamp\": \"2023-12-10T00:00:00.123Z\", \"entry_type\": \"x509_certificate\"}]}"};
    for (int i = 0; i < 2; i++) {
        ASN1_OBJECT *obj = OBJ_txt2obj(oids[i], 1);
        ASN1_OCTET_STRING *val = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(val, der, der_len);
        X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, val);
        cf_error_t err = {0};
        json_t *model = cf_extension_from_openssl(ext, &err);
        if (!model)
            fail_msg("%s %s: %s", err.code, err.field, err.message);
        json_t *expected = tl_json(want[i]);
        tl_assert_equal(model, expected, "SCT list from DER");
        tl_round_trips(model);
        char *text = cf_extension_to_text(model);
        assert_non_null(strstr(text, "Timestamp: 2023-12-10T00:00:00.123Z"));
        free(text);
        json_decref(expected);
        json_decref(model);
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(val);
        ASN1_OBJECT_free(obj);
    }
    OPENSSL_free(der);
}

/* --- unknown ----------------------------------------------------------------------------- */

static void test_unknown_examples(void **state)
{
    /* UnrecognizedExtensionModel(critical=True, value=...(value=b"MTIz", oid="1.2.3")) */
    tl_check("{\"type\": \"unknown\", \"critical\": true,"
             " \"value\": {\"oid\": \"1.2.3\", \"value\": \"MTIz\"}}",
             "{\"type\": \"unknown\", \"critical\": true,"
             " \"value\": {\"oid\": \"1.2.3\", \"value\": \"MTIz\"}}");
    tl_check("{\"type\": \"unknown\", \"critical\": false,"
             " \"value\": {\"oid\": \"2.5.29.33\", \"value\": \"MAA=\"}}",
             "{\"type\": \"unknown\", \"critical\": false,"
             " \"value\": {\"oid\": \"2.5.29.33\", \"value\": \"MAA=\"}}");
}

static void test_unknown_errors(void **state)
{
    tl_check_error("{\"type\": \"unknown\", \"value\": {\"oid\": \"1.2.3\", \"value\": \"MTIz\"}}",
                   "missing_field", "critical");
    tl_check_error("{\"type\": \"unknown\", \"critical\": false,"
                   " \"value\": {\"oid\": \"1.2.3.\", \"value\": \"MTIz\"}}",
                   "invalid_oid", "value.oid");
    tl_check_error("{\"type\": \"unknown\", \"critical\": false,"
                   " \"value\": {\"oid\": \"1.2.3\", \"value\": \"MTI\"}}",
                   "invalid_base64", "value.value");
    /* A modelled OID must use its model. */
    tl_check_error("{\"type\": \"unknown\", \"critical\": true,"
                   " \"value\": {\"oid\": \"2.5.29.19\", \"value\": \"MAMBAf8=\"}}",
                   "invalid_value", "value.oid");
    tl_check_error("{\"type\": \"unrecognized\", \"critical\": true,"
                   " \"value\": {\"oid\": \"1.2.3\", \"value\": \"MTIz\"}}",
                   "unknown_extension", "type");
}

static void test_unknown_der(void **state)
{
    tl_check_nconf("{\"type\": \"unknown\", \"critical\": false,"
                   " \"value\": {\"oid\": \"1.2.3.4\", \"value\": \"DAVoZWxsbw==\"}}",
                   "1.2.3.4", "ASN1:UTF8String:hello", NULL);
    tl_check_nconf("{\"type\": \"unknown\", \"critical\": true,"
                   " \"value\": {\"oid\": \"1.2.3.4\", \"value\": \"AQID\"}}",
                   "1.2.3.4", "critical,DER:01:02:03", NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_basic_constraints_examples),
        cmocka_unit_test(test_basic_constraints_errors),
        cmocka_unit_test(test_basic_constraints_der),
        cmocka_unit_test(test_key_usage_examples),
        cmocka_unit_test(test_key_usage_errors),
        cmocka_unit_test(test_key_usage_der),
        cmocka_unit_test(test_extended_key_usage_examples),
        cmocka_unit_test(test_extended_key_usage_errors),
        cmocka_unit_test(test_extended_key_usage_der),
        cmocka_unit_test(test_tls_feature_examples),
        cmocka_unit_test(test_tls_feature_errors),
        cmocka_unit_test(test_tls_feature_der),
        cmocka_unit_test(test_no_value_examples),
        cmocka_unit_test(test_no_value_errors),
        cmocka_unit_test(test_no_value_der),
        cmocka_unit_test(test_subject_key_identifier_examples),
        cmocka_unit_test(test_subject_key_identifier_errors),
        cmocka_unit_test(test_subject_key_identifier_der),
        cmocka_unit_test(test_crl_number_examples),
        cmocka_unit_test(test_crl_number_errors),
        cmocka_unit_test(test_crl_number_der),
        cmocka_unit_test(test_ms_certificate_template_examples),
        cmocka_unit_test(test_ms_certificate_template_errors),
        cmocka_unit_test(test_sct_examples),
        cmocka_unit_test(test_sct_errors),
        cmocka_unit_test(test_sct_from_der),
        cmocka_unit_test(test_unknown_examples),
        cmocka_unit_test(test_unknown_errors),
        cmocka_unit_test(test_unknown_der),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
