/* cf_x509_name: every example of the reference's Name section (django-ca-pydantic.txt), the
 * names users type, the string forms, round trips through OpenSSL's DER, JSON text and
 * MessagePack, and each class of invalid input with its error code and field. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/x509.h>

#include "cf_msgpack.h"
#include "cf_x509_name.h"

/* Compare a model with the JSON text the reference shows. */
static void s_assert_json(const json_t *got, const char *expected)
{
    json_error_t jerr;
    json_t *want = json_loads(expected, 0, &jerr);
    assert_non_null(want);
    char *g = json_dumps(got, JSON_COMPACT);
    char *w = json_dumps(want, JSON_COMPACT);
    assert_non_null(g);
    assert_string_equal(g, w);
    free(g);
    free(w);
    json_decref(want);
}

static json_t *s_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return j;
}

/* Parse TEXT as a Name; expect success and the normalised EXPECTED. */
static void s_name_ok(const char *text, const char *expected)
{
    json_t *in = s_json(text);
    cf_error_t err = {0};
    json_t *out = cf_name_parse(in, &err);
    if (!out)
        fail_msg("%s: %s: %s (%s)", text, err.code, err.message, err.field);
    s_assert_json(out, expected);
    /* Normalising is idempotent. */
    json_t *again = cf_name_parse(out, &err);
    assert_non_null(again);
    assert_true(json_equal(again, out));
    json_decref(again);
    json_decref(out);
    json_decref(in);
}

/* Parse TEXT as a Name; expect CODE at FIELD. */
static void s_name_fails(const char *text, const char *code, const char *field)
{
    json_t *in = s_json(text);
    cf_error_t err = {0};
    json_t *out = cf_name_parse(in, &err);
    if (out)
        fail_msg("%s: accepted", text);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    assert_true(strlen(err.message) > 0);
    /* House style: lower case first letter, no final period. */
    assert_false(err.message[0] >= 'A' && err.message[0] <= 'Z' && err.message[1] >= 'a' &&
                 err.message[1] <= 'z');
    assert_int_not_equal(err.message[strlen(err.message) - 1], '.');
    json_decref(in);
}

static void s_attr_ok(const char *text, const char *expected)
{
    json_t *in = s_json(text);
    cf_error_t err = {0};
    json_t *out = cf_name_attribute_parse(in, &err);
    if (!out)
        fail_msg("%s: %s: %s", text, err.code, err.message);
    s_assert_json(out, expected);
    json_decref(out);
    json_decref(in);
}

static void s_attr_fails(const char *text, const char *code, const char *field)
{
    json_t *in = s_json(text);
    cf_error_t err = {0};
    assert_null(cf_name_attribute_parse(in, &err));
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    json_decref(in);
}

/* Model -> X509_NAME -> DER -> X509_NAME -> model must give the model back. */
static void s_openssl_round_trip(const json_t *model)
{
    cf_error_t err = {0};
    X509_NAME *name = cf_name_to_openssl(model, &err);
    if (!name)
        fail_msg("to_openssl: %s: %s (%s)", err.code, err.message, err.field);
    unsigned char *der = NULL;
    int len = i2d_X509_NAME(name, &der);
    assert_true(len > 0);
    const unsigned char *p = der;
    X509_NAME *back = d2i_X509_NAME(NULL, &p, len);
    assert_non_null(back);
    assert_ptr_equal(p, der + len);
    json_t *model2 = cf_name_from_openssl(back, &err);
    assert_non_null(model2);
    assert_true(json_equal(model, model2));
    json_decref(model2);
    X509_NAME_free(back);
    X509_NAME_free(name);
    OPENSSL_free(der);
}

/* Model -> JSON text -> model, and model -> MessagePack -> JSON -> model. */
static void s_serial_round_trips(const json_t *model)
{
    cf_error_t err = {0};
    char *text = json_dumps(model, JSON_COMPACT);
    json_t *loaded = s_json(text);
    json_t *parsed = cf_name_parse(loaded, &err);
    assert_non_null(parsed);
    assert_true(json_equal(parsed, model));
    json_decref(parsed);
    json_decref(loaded);
    free(text);

    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    assert_int_equal(cf_json_to_msgpack(model, &pk), 0);
    msgpack_unpacked up;
    assert_int_equal(cf_msgpack_unpack(buf.data, buf.size, NULL, &up, &err), 0);
    json_t *from_mp = cf_msgpack_to_json(&up.data, &err);
    assert_non_null(from_mp);
    parsed = cf_name_parse(from_mp, &err);
    assert_non_null(parsed);
    assert_true(json_equal(parsed, model));
    json_decref(parsed);
    json_decref(from_mp);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&buf);
}

/* --- the reference's examples ------------------------------------------------------------ */

/* NameAttributeModel(oid=NameOID.COMMON_NAME.dotted_string, value="example.com") */
static void test_reference_attribute(void **state)
{
    s_attr_ok("{\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}",
              "{\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}");
}

/* x509.NameAttribute(oid=NameOID.COMMON_NAME, value="example.com") -> model, and back equal. */
static void test_reference_attribute_from_cryptography(void **state)
{
    X509_NAME *name = X509_NAME_new();
    assert_true(X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8,
                                           (const unsigned char *)"example.com", -1, -1, 0));
    cf_error_t err = {0};
    json_t *model = cf_name_from_openssl(name, &err);
    s_assert_json(model, "[{\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}]");
    X509_NAME *back = cf_name_to_openssl(model, &err);
    assert_int_equal(X509_NAME_cmp(back, name), 0);
    X509_NAME_free(back);
    X509_NAME_free(name);
    json_decref(model);
}

/* NameAttributeModel(oid=X500_UNIQUE_IDENTIFIER, value=base64.b64encode(b"example.com")) and
 * its cryptography form: a BIT STRING holding the bytes. */
static void test_reference_x500_unique_identifier(void **state)
{
    s_attr_ok("{\"oid\": \"2.5.4.45\", \"value\": \"ZXhhbXBsZS5jb20=\"}",
              "{\"oid\": \"2.5.4.45\", \"value\": \"ZXhhbXBsZS5jb20=\"}");
    s_attr_ok("{\"oid\": \"x500UniqueIdentifier\", \"value\": \"ZXhhbXBsZS5jb20=\"}",
              "{\"oid\": \"2.5.4.45\", \"value\": \"ZXhhbXBsZS5jb20=\"}");
    json_t *model = s_json("[{\"oid\": \"2.5.4.45\", \"value\": \"ZXhhbXBsZS5jb20=\"}]");
    cf_error_t err = {0};
    X509_NAME *name = cf_name_to_openssl(model, &err);
    assert_non_null(name);
    const ASN1_STRING *data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, 0));
    assert_int_equal(ASN1_STRING_type(data), V_ASN1_BIT_STRING);
    assert_int_equal(ASN1_STRING_length(data), 11);
    assert_memory_equal(ASN1_STRING_get0_data(data), "example.com", 11);
    /* DER: SET { SEQUENCE { OID 2.5.4.45, BIT STRING (0 unused bits) "example.com" } } */
    unsigned char *der = NULL;
    int len = i2d_X509_NAME(name, &der);
    static const unsigned char tail[] = {0x06, 0x03, 0x55, 0x04, 0x2d, 0x03, 0x0c, 0x00, 'e', 'x',
                                         'a',  'm',  'p',  'l',  'e',  '.',  'c',  'o',  'm'};
    assert_true(len > (int)sizeof tail);
    assert_memory_equal(der + len - sizeof tail, tail, sizeof tail);
    OPENSSL_free(der);
    X509_NAME_free(name);
    s_openssl_round_trip(model);
    json_decref(model);

    /* Trailing zero bits and bytes stay: OpenSSL would drop them without the explicit flag. */
    model = s_json("[{\"oid\": \"2.5.4.45\", \"value\": \"AQIAAA==\"}]");
    s_openssl_round_trip(model);
    json_decref(model);
}

/* NameModel([{'oid': '2.5.4.6', 'value': 'AT'}, {'oid': '2.5.4.3', 'value': 'example.com'}]) */
static void test_reference_name(void **state)
{
    const char *ref = "[{\"oid\": \"2.5.4.6\", \"value\": \"AT\"},"
                      " {\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}]";
    s_name_ok(ref, ref);
    json_t *model = s_json(ref);
    s_openssl_round_trip(model);
    s_serial_round_trips(model);
    json_decref(model);
}

/* validate_name_attribute: country code OIDs have exactly two characters. */
static void test_reference_country_codes(void **state)
{
    s_attr_fails("{\"oid\": \"2.5.4.6\", \"value\": \"AUT\"}", "invalid_country_code", "value");
    s_attr_fails("{\"oid\": \"C\", \"value\": \"A\"}", "invalid_country_code", "value");
    s_attr_fails("{\"oid\": \"1.3.6.1.4.1.311.60.2.1.3\", \"value\": \"AUT\"}",
                 "invalid_country_code", "value");
    s_attr_fails("{\"oid\": \"jurisdictionCountryName\", \"value\": \"\"}", "invalid_country_code",
                 "value");
    s_attr_ok("{\"oid\": \"jurisdictionC\", \"value\": \"AT\"}",
              "{\"oid\": \"1.3.6.1.4.1.311.60.2.1.3\", \"value\": \"AT\"}");
    s_name_fails("[{\"oid\": \"CN\", \"value\": \"x\"}, {\"oid\": \"C\", \"value\": \"AUT\"}]",
                 "invalid_country_code", "[1].value");
}

/* validate_duplicates: OIDs may not occur twice, except DC, OU and street. */
static void test_reference_duplicates(void **state)
{
    s_name_fails("[{\"oid\": \"2.5.4.3\", \"value\": \"a\"}, {\"oid\": \"2.5.4.3\", \"value\": "
                 "\"b\"}]",
                 "duplicate_attribute", "[1].oid");
    s_name_fails("[{\"oid\": \"C\", \"value\": \"AT\"}, {\"oid\": \"O\", \"value\": \"x\"},"
                 " {\"oid\": \"countryName\", \"value\": \"DE\"}]",
                 "duplicate_attribute", "[2].oid");
    s_name_fails("[{\"oid\": \"1.2.3.4\", \"value\": \"a\"}, {\"oid\": \"1.2.3.4\", \"value\": "
                 "\"b\"}]",
                 "duplicate_attribute", "[1].oid");
    s_name_ok(
        "[{\"oid\": \"DC\", \"value\": \"example\"}, {\"oid\": \"DC\", \"value\": \"com\"},"
        " {\"oid\": \"OU\", \"value\": \"a\"}, {\"oid\": \"OU\", \"value\": \"b\"},"
        " {\"oid\": \"street\", \"value\": \"a\"}, {\"oid\": \"streetAddress\", \"value\": "
        "\"b\"}]",
        "[{\"oid\": \"0.9.2342.19200300.100.1.25\", \"value\": \"example\"},"
        " {\"oid\": \"0.9.2342.19200300.100.1.25\", \"value\": \"com\"},"
        " {\"oid\": \"2.5.4.11\", \"value\": \"a\"}, {\"oid\": \"2.5.4.11\", \"value\": "
        "\"b\"},"
        " {\"oid\": \"2.5.4.9\", \"value\": \"a\"}, {\"oid\": \"2.5.4.9\", \"value\": \"b\"}]");
}

/* --- names users type -------------------------------------------------------------------- */

static void test_short_and_long_names(void **state)
{
    static const struct {
        const char *name, *oid;
    } cases[] = {
        {"CN", "2.5.4.3"},
        {"commonName", "2.5.4.3"},
        {"cn", "2.5.4.3"},
        {"O", "2.5.4.10"},
        {"organizationName", "2.5.4.10"},
        {"OU", "2.5.4.11"},
        {"organizationalUnitName", "2.5.4.11"},
        {"C", "2.5.4.6"},
        {"countryName", "2.5.4.6"},
        {"ST", "2.5.4.8"},
        {"stateOrProvinceName", "2.5.4.8"},
        {"L", "2.5.4.7"},
        {"localityName", "2.5.4.7"},
        {"emailAddress", "1.2.840.113549.1.9.1"},
        {"DC", "0.9.2342.19200300.100.1.25"},
        {"domainComponent", "0.9.2342.19200300.100.1.25"},
        {"serialNumber", "2.5.4.5"},
        {"street", "2.5.4.9"},
        {"streetAddress", "2.5.4.9"},
        {"title", "2.5.4.12"},
        {"givenName", "2.5.4.42"},
        {"GN", "2.5.4.42"},
        {"surname", "2.5.4.4"},
        {"SN", "2.5.4.4"},
        {"initials", "2.5.4.43"},
        {"pseudonym", "2.5.4.65"},
        {"generationQualifier", "2.5.4.44"},
        {"dnQualifier", "2.5.4.46"},
        {"postalCode", "2.5.4.17"},
        {"postalAddress", "2.5.4.16"},
        {"businessCategory", "2.5.4.15"},
        {"jurisdictionCountryName", "1.3.6.1.4.1.311.60.2.1.3"},
        {"jurisdictionStateOrProvinceName", "1.3.6.1.4.1.311.60.2.1.2"},
        {"jurisdictionST", "1.3.6.1.4.1.311.60.2.1.2"},
        {"jurisdictionLocalityName", "1.3.6.1.4.1.311.60.2.1.1"},
        {"jurisdictionL", "1.3.6.1.4.1.311.60.2.1.1"},
        {"uid", "0.9.2342.19200300.100.1.1"},
        {"userid", "0.9.2342.19200300.100.1.1"},
        {"x500UniqueIdentifier", "2.5.4.45"},
        {"organizationIdentifier", "2.5.4.97"},
        {"unstructuredName", "1.2.840.113549.1.9.2"},
        {"inn", "1.2.643.3.131.1.1"},
        {"ogrn", "1.2.643.100.1"},
        {"snils", "1.2.643.100.3"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *oid = cf_name_oid_from_short(cases[i].name);
        if (!oid || strcmp(oid, cases[i].oid) != 0)
            fail_msg("%s: got %s, want %s", cases[i].name, oid ? oid : "NULL", cases[i].oid);
        /* Every one of them parses as the "oid" of a model, and the name maps back. */
        char text[256];
        snprintf(text, sizeof text, "{\"oid\": \"%s\", \"value\": \"%s\"}", cases[i].name,
                 strcmp(cases[i].oid, "2.5.4.45") == 0 ? "YQ==" : "AT");
        char want[256];
        snprintf(want, sizeof want, "{\"oid\": \"%s\", \"value\": \"%s\"}", cases[i].oid,
                 strcmp(cases[i].oid, "2.5.4.45") == 0 ? "YQ==" : "AT");
        s_attr_ok(text, want);
        assert_non_null(cf_name_short_from_oid(cases[i].oid));
    }
    assert_string_equal(cf_name_short_from_oid("2.5.4.3"), "CN");
    assert_string_equal(cf_name_short_from_oid("2.5.4.42"), "givenName");
    assert_null(cf_name_short_from_oid("1.2.3.4"));
    assert_null(cf_name_oid_from_short("nosuchname"));
    /* Unknown OIDs in dotted form are fine. */
    s_attr_ok("{\"oid\": \"1.2.3.4\", \"value\": \"x\"}",
              "{\"oid\": \"1.2.3.4\", \"value\": \"x\"}");
}

static void test_oid_is_valid(void **state)
{
    assert_true(cf_oid_is_valid("2.5.4.3"));
    assert_true(cf_oid_is_valid("1.2"));
    assert_true(cf_oid_is_valid("2.999.1"));
    assert_true(cf_oid_is_valid("1.3.6.1.4.1.311.60.2.1.3"));
    assert_true(cf_oid_is_valid("1.2.18446744073709551616"));
    assert_false(cf_oid_is_valid(NULL));
    assert_false(cf_oid_is_valid(""));
    assert_false(cf_oid_is_valid("1"));
    assert_false(cf_oid_is_valid("3.1"));
    assert_false(cf_oid_is_valid("1.40"));
    assert_false(cf_oid_is_valid("1.2."));
    assert_false(cf_oid_is_valid(".1.2"));
    assert_false(cf_oid_is_valid("1..2"));
    assert_false(cf_oid_is_valid("1.02"));
    assert_false(cf_oid_is_valid("1.2.a"));
    assert_false(cf_oid_is_valid("CN"));
    assert_false(cf_oid_is_valid("1.2 "));
}

/* --- string forms ------------------------------------------------------------------------ */

static void s_string_ok(const char *text, const char *expected)
{
    cf_error_t err = {0};
    json_t *model = cf_name_from_string(text, &err);
    if (!model)
        fail_msg("%s: %s: %s (%s)", text, err.code, err.message, err.field);
    s_assert_json(model, expected);
    /* Both output forms read back to the same model. */
    char *slash = cf_name_to_string(model);
    json_t *again = cf_name_from_string(slash, &err);
    if (!again || !json_equal(again, model))
        fail_msg("%s -> %s did not read back", text, slash);
    json_decref(again);
    char *rfc = cf_name_to_rfc4514(model);
    again = cf_name_from_string(rfc, &err);
    assert_non_null(again);
    assert_int_equal(json_array_size(again), json_array_size(model));
    for (size_t i = 0; i < json_array_size(model); i++)
        assert_true(json_equal(json_array_get(again, i),
                               json_array_get(model, json_array_size(model) - 1 - i)));
    json_decref(again);
    free(slash);
    free(rfc);
    json_decref(model);
}

static void test_string_forms(void **state)
{
    s_string_ok("/C=AT/CN=example.com",
                "[{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, {\"oid\": \"2.5.4.3\", \"value\": "
                "\"example.com\"}]");
    s_string_ok("CN=example.com,O=Org",
                "[{\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}, {\"oid\": \"2.5.4.10\", "
                "\"value\": \"Org\"}]");
    s_string_ok("C=AT, O=MyOrg, OU=MyOrgUnit, CN=example.com",
                "[{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, {\"oid\": \"2.5.4.10\", \"value\": "
                "\"MyOrg\"}, {\"oid\": \"2.5.4.11\", \"value\": \"MyOrgUnit\"}, {\"oid\": "
                "\"2.5.4.3\", \"value\": \"example.com\"}]");
    /* django-ca's parse_name_x509 example: case-insensitive keys, '/' quoted in a value. */
    s_string_ok("/c=AT/l=Vienna/o=\"quoting/works\"/CN=example.com",
                "[{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, {\"oid\": \"2.5.4.7\", \"value\": "
                "\"Vienna\"}, {\"oid\": \"2.5.4.10\", \"value\": \"quoting/works\"}, {\"oid\": "
                "\"2.5.4.3\", \"value\": \"example.com\"}]");
    /* Escapes of ',', '/', '=' and '\\'; empty components are skipped. */
    s_string_ok("/C=AT//O=a\\/b\\,c\\=d\\\\e/CN=x/",
                "[{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, {\"oid\": \"2.5.4.10\", \"value\": "
                "\"a/b,c=d\\\\e\"}, {\"oid\": \"2.5.4.3\", \"value\": \"x\"}]");
    s_string_ok("O=a\\,b\\+c,CN=\\41\\C3\\A4",
                "[{\"oid\": \"2.5.4.10\", \"value\": \"a,b+c\"}, {\"oid\": \"2.5.4.3\", \"value\": "
                "\"A\\u00e4\"}]");
    /* Multi-valued RDNs are flattened, dotted OIDs are keys, blanks are trimmed unless escaped. */
    s_string_ok("CN=a+O=b, 1.2.3.4 = v ,OU=\\ x\\ ",
                "[{\"oid\": \"2.5.4.3\", \"value\": \"a\"}, {\"oid\": \"2.5.4.10\", \"value\": "
                "\"b\"}, {\"oid\": \"1.2.3.4\", \"value\": \"v\"}, {\"oid\": \"2.5.4.11\", "
                "\"value\": \" x \"}]");
    s_string_ok("", "[]");
    s_string_ok("/", "[]");

    json_t *model = s_json("[{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, {\"oid\": \"2.5.4.10\", "
                           "\"value\": \"a/b,c\"}, {\"oid\": \"1.2.3.4\", \"value\": \"x\"},"
                           " {\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}]");
    char *s = cf_name_to_string(model);
    assert_string_equal(s, "/C=AT/O=a\\/b\\,c/1.2.3.4=x/CN=example.com");
    free(s);
    s = cf_name_to_rfc4514(model);
    assert_string_equal(s, "CN=example.com,1.2.3.4=x,O=a\\/b\\,c,C=AT");
    free(s);
    json_decref(model);
    model = s_json("[]");
    s = cf_name_to_string(model);
    assert_string_equal(s, "/");
    free(s);
    s = cf_name_to_rfc4514(model);
    assert_string_equal(s, "");
    free(s);
    json_decref(model);
    /* Leading '#' and blanks, control characters. */
    model = s_json("[{\"oid\": \"2.5.4.3\", \"value\": \"#a\\nb \"}]");
    s = cf_name_to_string(model);
    assert_string_equal(s, "/CN=\\23a\\0Ab\\20");
    cf_error_t err = {0};
    json_t *back = cf_name_from_string(s, &err);
    assert_true(json_equal(back, model));
    json_decref(back);
    free(s);
    json_decref(model);
}

static void s_string_fails(const char *text, const char *code, const char *field)
{
    cf_error_t err = {0};
    json_t *model = cf_name_from_string(text, &err);
    if (model)
        fail_msg("%s: accepted", text);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
}

static void test_string_errors(void **state)
{
    s_string_fails("/C=AT/CN", "invalid_syntax", "[1]");
    s_string_fails("CN=x,foo", "invalid_syntax", "[1]");
    s_string_fails("/XX=1", "invalid_oid", "[0]");
    s_string_fails("/CN=\"open", "invalid_syntax", "[0]");
    s_string_fails("/CN=\"a\"b", "invalid_syntax", "[0]");
    s_string_fails("/CN=a\\", "invalid_syntax", "[0]");
    s_string_fails("/CN=\\FF", "invalid_value", "[0]");
    s_string_fails("/C=AUT", "invalid_country_code", "[0].value");
    s_string_fails("/CN=a/CN=b", "duplicate_attribute", "[1].oid");
    s_string_fails(NULL, "invalid_type", "");
}

/* --- OpenSSL ----------------------------------------------------------------------------- */

static void test_openssl_round_trips(void **state)
{
    json_t *model = s_json(
        "[{\"oid\": \"C\", \"value\": \"AT\"}, {\"oid\": \"ST\", \"value\": \"Vienna\"},"
        " {\"oid\": \"L\", \"value\": \"Wien\"}, {\"oid\": \"O\", \"value\": \"Org \\u00e4\"},"
        " {\"oid\": \"OU\", \"value\": \"a\"}, {\"oid\": \"OU\", \"value\": \"b\"},"
        " {\"oid\": \"CN\", \"value\": \"example.com\"},"
        " {\"oid\": \"emailAddress\", \"value\": \"a@example.com\"},"
        " {\"oid\": \"DC\", \"value\": \"example\"}, {\"oid\": \"serialNumber\", "
        "\"value\": \"1234\"},"
        " {\"oid\": \"street\", \"value\": \"Main 1\"}, {\"oid\": \"title\", \"value\": "
        "\"Dr\"},"
        " {\"oid\": \"givenName\", \"value\": \"G\"}, {\"oid\": \"surname\", \"value\": "
        "\"S\"},"
        " {\"oid\": \"initials\", \"value\": \"GS\"}, {\"oid\": \"pseudonym\", \"value\": "
        "\"p\"},"
        " {\"oid\": \"generationQualifier\", \"value\": \"III\"},"
        " {\"oid\": \"dnQualifier\", \"value\": \"q\"}, {\"oid\": \"postalCode\", "
        "\"value\": \"1010\"},"
        " {\"oid\": \"businessCategory\", \"value\": \"Private Organization\"},"
        " {\"oid\": \"jurisdictionC\", \"value\": \"AT\"}, {\"oid\": \"jurisdictionST\", "
        "\"value\": \"W\"},"
        " {\"oid\": \"jurisdictionL\", \"value\": \"W\"}, {\"oid\": \"uid\", \"value\": "
        "\"u1\"},"
        " {\"oid\": \"x500UniqueIdentifier\", \"value\": \"AAE=\"},"
        " {\"oid\": \"organizationIdentifier\", \"value\": \"VATAT-1\"},"
        " {\"oid\": \"1.2.3.4\", \"value\": \"\\u2603\"}]");
    cf_error_t err = {0};
    json_t *norm = cf_name_parse(model, &err);
    assert_non_null(norm);
    s_openssl_round_trip(norm);
    s_serial_round_trips(norm);

    /* The ASN.1 string types are python-cryptography's. */
    X509_NAME *name = cf_name_to_openssl(norm, &err);
    static const struct {
        int index, type;
    } types[] = {
        {0, V_ASN1_PRINTABLESTRING},  {1, V_ASN1_UTF8STRING},      {7, V_ASN1_IA5STRING},
        {8, V_ASN1_IA5STRING},        {9, V_ASN1_PRINTABLESTRING}, {17, V_ASN1_PRINTABLESTRING},
        {20, V_ASN1_PRINTABLESTRING}, {24, V_ASN1_BIT_STRING},     {26, V_ASN1_UTF8STRING}};
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        assert_int_equal(
            ASN1_STRING_type(X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, types[i].index))),
            types[i].type);
    /* One RDN per attribute. */
    assert_int_equal(X509_NAME_ENTRY_set(X509_NAME_get_entry(name, 5)), 5);
    X509_NAME_free(name);
    json_decref(norm);
    json_decref(model);

    model = s_json("[]");
    s_openssl_round_trip(model);
    json_decref(model);
}

/* from_openssl shows what a certificate holds: other string types become UTF-8, duplicates
 * and three-letter countries are read (cf_name_parse refuses them), non-strings are refused. */
static void test_from_openssl(void **state)
{
    X509_NAME *name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", V_ASN1_T61STRING, (const unsigned char *)"caf\xe9", 4,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "CN", V_ASN1_BMPSTRING, (const unsigned char *)"\x00h\x00i", 4,
                               -1, 0);
    X509_NAME_add_entry_by_txt(name, "C", V_ASN1_PRINTABLESTRING, (const unsigned char *)"AUT", 3,
                               -1, 0);
    cf_error_t err = {0};
    json_t *model = cf_name_from_openssl(name, &err);
    s_assert_json(model, "[{\"oid\": \"2.5.4.3\", \"value\": \"caf\\u00e9\"},"
                         " {\"oid\": \"2.5.4.3\", \"value\": \"hi\"},"
                         " {\"oid\": \"2.5.4.6\", \"value\": \"AUT\"}]");
    assert_null(cf_name_parse(model, &err));
    assert_string_equal(err.code, "duplicate_attribute");
    /* ... and so does to_openssl, which never writes an invalid name. */
    assert_null(cf_name_to_openssl(model, &err));
    json_decref(model);
    X509_NAME_free(name);

    name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", V_ASN1_UTF8STRING, (const unsigned char *)"a\0b", 3, -1,
                               0);
    memset(&err, 0, sizeof err);
    assert_null(cf_name_from_openssl(name, &err));
    assert_string_equal(err.code, "unsupported_value");
    assert_string_equal(err.field, "[0].value");
    X509_NAME_free(name);

    name = X509_NAME_new();
    X509_NAME_add_entry_by_txt(name, "CN", V_ASN1_UTF8STRING, (const unsigned char *)"\xff", 1, -1,
                               0);
    memset(&err, 0, sizeof err);
    assert_null(cf_name_from_openssl(name, &err));
    assert_string_equal(err.code, "unsupported_value");
    X509_NAME_free(name);

    /* SEQUENCE { SET { SEQUENCE { OID 2.5.4.3, SEQUENCE {} } } }: not a string */
    static const unsigned char octets[] = {0x30, 0x0b, 0x31, 0x09, 0x30, 0x07, 0x06,
                                           0x03, 0x55, 0x04, 0x03, 0x30, 0x00};
    const unsigned char *p = octets;
    name = d2i_X509_NAME(NULL, &p, sizeof octets);
    assert_non_null(name);
    memset(&err, 0, sizeof err);
    assert_null(cf_name_from_openssl(name, &err));
    assert_string_equal(err.code, "unsupported_value");
    X509_NAME_free(name);

    memset(&err, 0, sizeof err);
    assert_null(cf_name_from_openssl(NULL, &err));
    assert_string_equal(err.code, "invalid_value");
}

/* --- invalid input ----------------------------------------------------------------------- */

static void test_invalid_inputs(void **state)
{
    /* Wrong JSON types. */
    s_name_fails("{}", "invalid_type", "");
    s_name_fails("\"CN=x\"", "invalid_type", "");
    s_name_fails("[1]", "invalid_type", "[0]");
    s_name_fails("[{\"oid\": 3, \"value\": \"x\"}]", "invalid_type", "[0].oid");
    s_name_fails("[{\"oid\": \"CN\", \"value\": 3}]", "invalid_type", "[0].value");
    s_name_fails("[{\"oid\": \"CN\", \"value\": null}]", "invalid_type", "[0].value");
    s_name_fails("[{\"oid\": \"CN\", \"value\": [\"x\"]}]", "invalid_type", "[0].value");
    /* Missing and unknown fields. */
    s_name_fails("[{\"oid\": \"CN\"}]", "missing_field", "[0].value");
    s_name_fails("[{\"value\": \"x\"}]", "missing_field", "[0].oid");
    s_name_fails("[{\"oid\": \"CN\", \"value\": \"x\", \"extra\": 1}]", "unknown_field",
                 "[0].extra");
    /* Bad OIDs and unknown names. */
    s_name_fails("[{\"oid\": \"1.2.\", \"value\": \"x\"}]", "invalid_oid", "[0].oid");
    s_name_fails("[{\"oid\": \"5.1\", \"value\": \"x\"}]", "invalid_oid", "[0].oid");
    s_name_fails("[{\"oid\": \"commonname2\", \"value\": \"x\"}]", "invalid_oid", "[0].oid");
    s_name_fails("[{\"oid\": \"\", \"value\": \"x\"}]", "invalid_oid", "[0].oid");
    s_name_fails("[{\"oid\": \"CN\\u0000x\", \"value\": \"x\"}]", "invalid_oid", "[0].oid");
    /* Country codes, empty CN, NUL characters. */
    s_name_fails("[{\"oid\": \"C\", \"value\": \"AUT\"}]", "invalid_country_code", "[0].value");
    s_name_fails("[{\"oid\": \"CN\", \"value\": \"\"}]", "invalid_value", "[0].value");
    s_name_fails("[{\"oid\": \"CN\", \"value\": \"a\\u0000b\"}]", "invalid_value", "[0].value");
    /* Character sets of PrintableString and IA5String attributes. */
    s_name_fails("[{\"oid\": \"serialNumber\", \"value\": \"a_b\"}]", "invalid_value", "[0].value");
    s_name_fails("[{\"oid\": \"C\", \"value\": \"\\u00c4T\"}]", "invalid_value", "[0].value");
    s_name_fails("[{\"oid\": \"emailAddress\", \"value\": \"\\u00e4@example.com\"}]",
                 "invalid_value", "[0].value");
    /* x500UniqueIdentifier must be base64. */
    s_name_fails("[{\"oid\": \"2.5.4.45\", \"value\": \"not base64!\"}]", "invalid_base64",
                 "[0].value");
    s_name_fails("[{\"oid\": \"2.5.4.45\", \"value\": \"ZXhhbXBsZS5jb20\"}]", "invalid_base64",
                 "[0].value");
    /* Non-canonical base64 is normalised. */
    s_name_ok("[{\"oid\": \"2.5.4.45\", \"value\": \"ZXh=\"}]",
              "[{\"oid\": \"2.5.4.45\", \"value\": \"ZXg=\"}]");
    /* Attribute on its own: field paths are relative to it. */
    s_attr_fails("[]", "invalid_type", "");
    s_attr_fails("{\"oid\": \"CN\", \"value\": \"\"}", "invalid_value", "value");
    /* to_openssl validates too. */
    json_t *bad = s_json("[{\"oid\": \"C\", \"value\": \"AUT\"}]");
    cf_error_t err = {0};
    assert_null(cf_name_to_openssl(bad, &err));
    assert_string_equal(err.code, "invalid_country_code");
    assert_string_equal(err.field, "[0].value");
    json_decref(bad);
    assert_null(cf_name_to_string(NULL));
}

/* A long name of distinct custom OIDs is checked in linear time (the set is a hash). */
static void test_large_name(void **state)
{
    json_t *model = json_array();
    for (int i = 0; i < 20000; i++) {
        char oid[32];
        snprintf(oid, sizeof oid, "1.2.3.%d", i);
        json_array_append_new(model, json_pack("{s:s, s:s}", "oid", oid, "value", "x"));
    }
    cf_error_t err = {0};
    json_t *out = cf_name_parse(model, &err);
    assert_non_null(out);
    json_decref(out);
    json_decref(model);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_attribute),
        cmocka_unit_test(test_reference_attribute_from_cryptography),
        cmocka_unit_test(test_reference_x500_unique_identifier),
        cmocka_unit_test(test_reference_name),
        cmocka_unit_test(test_reference_country_codes),
        cmocka_unit_test(test_reference_duplicates),
        cmocka_unit_test(test_short_and_long_names),
        cmocka_unit_test(test_oid_is_valid),
        cmocka_unit_test(test_string_forms),
        cmocka_unit_test(test_string_errors),
        cmocka_unit_test(test_openssl_round_trips),
        cmocka_unit_test(test_from_openssl),
        cmocka_unit_test(test_invalid_inputs),
        cmocka_unit_test(test_large_name),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
