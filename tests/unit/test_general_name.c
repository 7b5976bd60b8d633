/* cf_general_name: every example of the reference's GeneralName and OtherName sections and the
 * general names its extension examples use (django-ca-pydantic.txt), the text form, exact DER,
 * round trips through OpenSSL, JSON text and MessagePack, each class of invalid input with its
 * error code and field, and a certificate made by `openssl req -x509` at test time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "cf_general_name.h"
#include "cf_msgpack.h"
#include "cf_x509_name.h"

static json_t *s_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);
    if (!j)
        fail_msg("bad test JSON %s: %s", text, jerr.text);
    return j;
}

static void s_assert_json(const json_t *got, const char *expected)
{
    json_t *want = s_json(expected);
    char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
    char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
    assert_non_null(g);
    assert_string_equal(g, w);
    free(g);
    free(w);
    json_decref(want);
}

/* DER of one GENERAL_NAME. */
static int s_der(const GENERAL_NAME *gn, unsigned char **der)
{
    *der = NULL;
    int len = i2d_GENERAL_NAME((GENERAL_NAME *)gn, der);
    assert_true(len > 0);
    return len;
}

/* model -> GENERAL_NAME -> DER -> GENERAL_NAME -> model is the model. */
static void s_openssl_round_trip(const json_t *model)
{
    cf_error_t err = {0};
    GENERAL_NAME *gn = cf_general_name_to_openssl(model, &err);
    if (!gn)
        fail_msg("to_openssl: %s: %s (%s)", err.code, err.message, err.field);
    unsigned char *der;
    int len = s_der(gn, &der);
    const unsigned char *p = der;
    GENERAL_NAME *back = d2i_GENERAL_NAME(NULL, &p, len);
    assert_non_null(back);
    assert_ptr_equal(p, der + len);
    json_t *model2 = cf_general_name_from_openssl(back, &err);
    if (!model2)
        fail_msg("from_openssl: %s: %s (%s)", err.code, err.message, err.field);
    assert_true(json_equal(model, model2));
    json_decref(model2);
    GENERAL_NAME_free(back);
    GENERAL_NAME_free(gn);
    OPENSSL_free(der);
}

/* model -> JSON text -> model and model -> MessagePack -> JSON -> model. */
static void s_serial_round_trips(const json_t *model)
{
    cf_error_t err = {0};
    char *text = json_dumps(model, JSON_COMPACT);
    json_t *loaded = s_json(text);
    json_t *parsed = json_is_array(model) ? cf_general_names_parse(loaded, &err)
                                          : cf_general_name_parse(loaded, &err);
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
    parsed = json_is_array(model) ? cf_general_names_parse(from_mp, &err)
                                  : cf_general_name_parse(from_mp, &err);
    assert_non_null(parsed);
    assert_true(json_equal(parsed, model));
    json_decref(parsed);
    json_decref(from_mp);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&buf);
}

/* Parse TEXT; expect the normalised EXPECTED, idempotence, and all round trips. */
static void s_gn_ok(const char *text, const char *expected)
{
    json_t *in = s_json(text);
    cf_error_t err = {0};
    json_t *out = cf_general_name_parse(in, &err);
    if (!out)
        fail_msg("%s: %s: %s (%s)", text, err.code, err.message, err.field);
    s_assert_json(out, expected);
    json_t *again = cf_general_name_parse(out, &err);
    assert_non_null(again);
    assert_true(json_equal(again, out));
    json_decref(again);
    s_openssl_round_trip(out);
    s_serial_round_trips(out);
    /* The text form reads back to the same model. */
    char *s = cf_general_name_to_string(out);
    assert_non_null(s);
    again = cf_general_name_from_string(s, &err);
    if (!again || !json_equal(again, out))
        fail_msg("%s: text form \"%s\" did not read back", text, s);
    json_decref(again);
    free(s);
    json_decref(out);
    json_decref(in);
}

static void s_gn_fails(const char *text, const char *code, const char *field)
{
    json_t *in = s_json(text);
    cf_error_t err = {0};
    json_t *out = cf_general_name_parse(in, &err);
    if (out)
        fail_msg("%s: accepted", text);
    if (strcmp(err.code, code) != 0 || strcmp(err.field, field) != 0)
        fail_msg("%s: got %s at \"%s\" (%s), want %s at \"%s\"", text, err.code, err.field,
                 err.message, code, field);
    /* House style: no capitalised first word, no final period. */
    assert_false(err.message[0] >= 'A' && err.message[0] <= 'Z' && err.message[1] >= 'a' &&
                 err.message[1] <= 'z');
    assert_int_not_equal(err.message[strlen(err.message) - 1], '.');
    /* to_openssl refuses the same input the same way. */
    memset(&err, 0, sizeof err);
    assert_null(cf_general_name_to_openssl(in, &err));
    assert_string_equal(err.code, code);
    json_decref(in);
}

/* --- the reference's examples ------------------------------------------------------------ */

static void test_reference_general_names(void **state)
{
    /* GeneralNameModel(type="DNS", value="example.com") */
    s_gn_ok("{\"type\": \"DNS\", \"value\": \"example.com\"}",
            "{\"type\": \"DNS\", \"value\": \"example.com\"}");
    /* GeneralNameModel(type="dirName", value=[{"oid": "2.5.4.3", "value": "example.com"}]) */
    s_gn_ok("{\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.3\", \"value\": "
            "\"example.com\"}]}",
            "{\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.3\", \"value\": "
            "\"example.com\"}]}");
    /* GeneralNameModel(type="otherName", value={"oid": "2.5.4.3", "type": "BOOLEAN",
     * 'value': True}) */
    s_gn_ok("{\"type\": \"otherName\", \"value\": {\"oid\": \"2.5.4.3\", \"type\": \"BOOLEAN\", "
            "\"value\": true}}",
            "{\"type\": \"otherName\", \"value\": {\"oid\": \"2.5.4.3\", \"type\": \"BOOLEAN\", "
            "\"value\": true}}");
    /* General names in the extension examples. */
    s_gn_ok("{\"type\": \"URI\", \"value\": \"https://ca.example.com/crl\"}",
            "{\"type\": \"URI\", \"value\": \"https://ca.example.com/crl\"}");
    s_gn_ok("{\"type\": \"URI\", \"value\": \"http://ocsp.example.com\"}",
            "{\"type\": \"URI\", \"value\": \"http://ocsp.example.com\"}");
    s_gn_ok("{\"type\": \"URI\", \"value\": \"http://example.com\"}",
            "{\"type\": \"URI\", \"value\": \"http://example.com\"}");
    s_gn_ok("{\"type\": \"URI\", \"value\": \"https://ca.example.com/issuer\"}",
            "{\"type\": \"URI\", \"value\": \"https://ca.example.com/issuer\"}");
    s_gn_ok("{\"type\": \"DNS\", \"value\": \"example.net\"}",
            "{\"type\": \"DNS\", \"value\": \"example.net\"}");
    /* NameConstraintsValueModel(permitted_subtrees=[{"type": "DNS", "value": ".com"}]) */
    s_gn_ok("{\"type\": \"DNS\", \"value\": \".com\"}", "{\"type\": \"DNS\", \"value\": \".com\"}");
    /* SubjectAlternativeNameModel(value=[name1, name2]) */
    json_t *list = s_json("[{\"type\": \"DNS\", \"value\": \"example.com\"},"
                          " {\"type\": \"DNS\", \"value\": \"example.net\"}]");
    cf_error_t err = {0};
    json_t *norm = cf_general_names_parse(list, &err);
    s_assert_json(norm, "[{\"type\": \"DNS\", \"value\": \"example.com\"},"
                        " {\"type\": \"DNS\", \"value\": \"example.net\"}]");
    s_serial_round_trips(norm);
    json_decref(norm);
    json_decref(list);
}

static void test_reference_other_names(void **state)
{
    /* OtherNameModel(oid="1.2.3", type="BOOLEAN", value=True) */
    s_gn_ok("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"BOOLEAN\", "
            "\"value\": true}}",
            "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"BOOLEAN\", "
            "\"value\": true}}");
    /* OtherNameModel(oid="1.2.3", type="NULL", value=None) */
    s_gn_ok("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"NULL\", "
            "\"value\": null}}",
            "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"NULL\", "
            "\"value\": null}}");
    /* datetime(2021, 10, 5, 22, 1, 4, tzinfo=timezone.utc) as UTCTIME and GENERALIZEDTIME,
     * in any ISO 8601 spelling with a timezone; the normal form is UTC with "Z". */
    static const char *const spellings[] = {"2021-10-05T22:01:04Z", "2021-10-05T22:01:04+00:00",
                                            "2021-10-06T00:01:04+02:00", "2021-10-05T20:31:04-0130",
                                            "2021-10-05 22:01:04z"};
    for (size_t i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
        for (int gen = 0; gen < 2; gen++) {
            char in[256], want[256];
            const char *type = gen ? "GENERALIZEDTIME" : "UTCTIME";
            snprintf(in, sizeof in,
                     "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"%s\", "
                     "\"value\": \"%s\"}}",
                     type, spellings[i]);
            snprintf(want, sizeof want,
                     "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"%s\", "
                     "\"value\": \"2021-10-05T22:01:04Z\"}}",
                     type);
            s_gn_ok(in, want);
        }
    }
    /* OtherNameModel(oid="1.2.3", type="INTEGER", value=12) and value="0x123" -> 291 */
    s_gn_ok("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"INTEGER\", "
            "\"value\": 12}}",
            "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"INTEGER\", "
            "\"value\": 12}}");
    s_gn_ok("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"INTEGER\", "
            "\"value\": \"0x123\"}}",
            "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"INTEGER\", "
            "\"value\": 291}}");
    /* OtherNameModel(oid="1.2.3", type="OctetString", value=b"\x61\x62\x63") -> '616263' and
     * value="09CFF1A" -> '09CFF1A' (kept, though it cannot be encoded: see below). */
    s_gn_ok("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": "
            "\"OctetString\", \"value\": \"616263\"}}",
            "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": "
            "\"OctetString\", \"value\": \"616263\"}}");
    json_t *odd = s_json("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": "
                         "\"OctetString\", \"value\": \"09CFF1A\"}}");
    cf_error_t err = {0};
    json_t *norm = cf_general_name_parse(odd, &err);
    s_assert_json(norm, "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": "
                        "\"OctetString\", \"value\": \"09CFF1A\"}}");
    assert_null(cf_general_name_to_openssl(norm, &err));
    assert_string_equal(err.code, "invalid_hex");
    assert_string_equal(err.field, "value.value");
    json_decref(norm);
    json_decref(odd);

    /* OtherNameModel(oid="1.2.3", type="IA5STRING", value="some string").cryptography:
     * OtherName(type_id=1.2.3, value=b'\x16\x0bsome string') */
    json_t *ia5 = s_json("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": "
                         "\"IA5STRING\", \"value\": \"some string\"}}");
    GENERAL_NAME *gn = cf_general_name_to_openssl(ia5, &err);
    assert_non_null(gn);
    unsigned char *der;
    int len = s_der(gn, &der);
    static const unsigned char want[] = {0xa0, 0x13, 0x06, 0x02, 0x2a, 0x03, 0xa0,
                                         0x0d, 0x16, 0x0b, 's',  'o',  'm',  'e',
                                         ' ',  's',  't',  'r',  'i',  'n',  'g'};
    assert_int_equal(len, sizeof want);
    assert_memory_equal(der, want, sizeof want);
    OPENSSL_free(der);
    GENERAL_NAME_free(gn);
    json_decref(ia5);
}

/* OTHER_NAME_ALIASES: UTF8, UNIV, IA5, BOOL, UTC, GENTIME, INT become the canonical names. */
static void test_other_name_types_and_aliases(void **state)
{
    static const struct {
        const char *type, *value, *norm_type, *norm_value;
    } cases[] = {
        {"UTF8String", "\"caf\\u00e9\"", "UTF8String", "\"caf\\u00e9\""},
        {"UTF8", "\"x\"", "UTF8String", "\"x\""},
        {"UNIVERSALSTRING", "\"\\u2603 snow\"", "UNIVERSALSTRING", "\"\\u2603 snow\""},
        {"UNIV", "\"u\"", "UNIVERSALSTRING", "\"u\""},
        {"IA5STRING", "\"a@b\"", "IA5STRING", "\"a@b\""},
        {"IA5", "\"\"", "IA5STRING", "\"\""},
        {"BOOLEAN", "false", "BOOLEAN", "false"},
        {"BOOL", "true", "BOOLEAN", "true"},
        {"NULL", "null", "NULL", "null"},
        {"UTCTIME", "\"1950-01-01T00:00:00Z\"", "UTCTIME", "\"1950-01-01T00:00:00Z\""},
        {"UTC", "\"2049-12-31T23:59:59Z\"", "UTCTIME", "\"2049-12-31T23:59:59Z\""},
        {"GENERALIZEDTIME", "\"9999-12-31T23:59:59Z\"", "GENERALIZEDTIME",
         "\"9999-12-31T23:59:59Z\""},
        {"GENTIME", "\"2000-02-29T12:00Z\"", "GENERALIZEDTIME", "\"2000-02-29T12:00:00Z\""},
        {"INTEGER", "-5", "INTEGER", "-5"},
        {"INT", "\"42\"", "INTEGER", "42"},
        {"INT", "\"-0x10\"", "INTEGER", "-16"},
        {"INT", "\"0x0\"", "INTEGER", "0"},
        {"INT", "9223372036854775807", "INTEGER", "9223372036854775807"},
        /* Beyond 64 bits, integers are kept as upper-case hex strings. */
        {"INT", "\"0x00123456789abcdef0123\"", "INTEGER", "\"0x123456789ABCDEF0123\""},
        {"INT", "\"-340282366920938463463374607431768211456\"", "INTEGER",
         "\"-0x100000000000000000000000000000000\""},
        {"OctetString", "\"\"", "OctetString", "\"\""},
        {"OctetString", "\"0aff\"", "OctetString", "\"0AFF\""},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[512], want[512];
        snprintf(in, sizeof in,
                 "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.3.6.1.4.1.311.20.2.3\", "
                 "\"type\": \"%s\", \"value\": %s}}",
                 cases[i].type, cases[i].value);
        snprintf(want, sizeof want,
                 "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.3.6.1.4.1.311.20.2.3\", "
                 "\"type\": \"%s\", \"value\": %s}}",
                 cases[i].norm_type, cases[i].norm_value);
        s_gn_ok(in, want);
    }
}

/* Exact DER of each otherName type (what OpenSSL's ASN1_generate_nconf writes). */
static void test_other_name_der(void **state)
{
    static const struct {
        const char *type, *value;
        const char *der_hex; /* the [0] EXPLICIT value */
    } cases[] = {
        {"UTF8String", "\"ab\"", "0C026162"},
        {"UNIVERSALSTRING", "\"a\"", "1C0400000061"},
        {"IA5STRING", "\"ab\"", "16026162"},
        {"BOOLEAN", "true", "0101FF"},
        {"BOOLEAN", "false", "010100"},
        {"NULL", "null", "0500"},
        {"UTCTIME", "\"2021-10-05T22:01:04Z\"", "170D3231313030353232303130345A"},
        {"GENERALIZEDTIME", "\"2021-10-05T22:01:04Z\"", "180F32303231313030353232303130345A"},
        {"INTEGER", "291", "02020123"},
        {"INTEGER", "-1", "0201FF"},
        {"INTEGER", "128", "02020080"},
        {"OctetString", "\"616263\"", "0403616263"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char in[512];
        snprintf(in, sizeof in,
                 "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"%s\", "
                 "\"value\": %s}}",
                 cases[i].type, cases[i].value);
        json_t *model = s_json(in);
        cf_error_t err = {0};
        GENERAL_NAME *gn = cf_general_name_to_openssl(model, &err);
        assert_non_null(gn);
        unsigned char *der;
        int len = s_der(gn, &der);
        char hex[256] = "";
        for (int k = 0; k < len && 2 * k + 2 < (int)sizeof hex; k++)
            snprintf(hex + 2 * k, 3, "%02X", der[k]);
        /* A0 LL 06 02 2A 03 A0 LL <value> */
        size_t vlen = strlen(cases[i].der_hex) / 2;
        char want[256];
        snprintf(want, sizeof want, "A0%02zX06022A03A0%02zX%s", vlen + 6, vlen, cases[i].der_hex);
        assert_string_equal(hex, want);
        OPENSSL_free(der);
        GENERAL_NAME_free(gn);
        json_decref(model);
    }
}

/* --- IP addresses and networks ----------------------------------------------------------- */

static void s_ip_ok(const char *in, const char *norm)
{
    char text[256], want[256];
    snprintf(text, sizeof text, "{\"type\": \"IP\", \"value\": \"%s\"}", in);
    snprintf(want, sizeof want, "{\"type\": \"IP\", \"value\": \"%s\"}", norm);
    s_gn_ok(text, want);
}

static void test_ip_addresses(void **state)
{
    s_ip_ok("127.0.0.1", "127.0.0.1");
    s_ip_ok("::1", "::1");
    s_ip_ok("10.0.0.0/8", "10.0.0.0/8");
    s_ip_ok("0.0.0.0/0", "0.0.0.0/0");
    s_ip_ok("192.168.1.1/32", "192.168.1.1/32");
    s_ip_ok("2001:DB8:0:0:0:0:0:1", "2001:db8::1");
    s_ip_ok("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1");
    s_ip_ok("1:0:0:2:0:0:0:3", "1:0:0:2::3");
    s_ip_ok("0:0:0:0:0:0:0:0", "::");
    s_ip_ok("1::", "1::");
    s_ip_ok("1:2:3:4:5:6:7:0", "1:2:3:4:5:6:7:0");
    s_ip_ok("::ffff:1.2.3.4", "::ffff:102:304");
    s_ip_ok("fd00::/8", "fd00::/8");
    s_ip_ok("2001:0db8::/32", "2001:db8::/32");
    s_ip_ok("::/0", "::/0");

    /* Networks are address and mask: 8 or 32 bytes. */
    static const struct {
        const char *text;
        int len;
        unsigned char bytes[32];
    } der[] = {
        {"127.0.0.1", 4, {127, 0, 0, 1}},
        {"10.0.0.0/8", 8, {10, 0, 0, 0, 255, 0, 0, 0}},
        {"::1", 16, {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1}},
        {"fd00::/9", 32, {0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0x80}},
    };
    for (size_t i = 0; i < sizeof der / sizeof der[0]; i++) {
        json_t *model = json_pack("{s:s, s:s}", "type", "IP", "value", der[i].text);
        cf_error_t err = {0};
        GENERAL_NAME *gn = cf_general_name_to_openssl(model, &err);
        assert_non_null(gn);
        int type;
        const ASN1_OCTET_STRING *o = GENERAL_NAME_get0_value(gn, &type);
        assert_int_equal(type, GEN_IPADD);
        assert_int_equal(ASN1_STRING_length(o), der[i].len);
        assert_memory_equal(ASN1_STRING_get0_data(o), der[i].bytes, (size_t)der[i].len);
        GENERAL_NAME_free(gn);
        json_decref(model);
    }

    static const char *const bad[] = {
        "1.2.3", "10.0.0.1/8", "10.0.0.0/33",  "01.2.3.4", "fe80::1%eth0", "::1/129", "1.2.3.4/",
        "abc",   "1.2.3.4/a",  "1.2.3.4/0008", "",         "1.2.3.4 ",     "::g",     "1.2.3.4/-1"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[128];
        snprintf(text, sizeof text, "{\"type\": \"IP\", \"value\": \"%s\"}", bad[i]);
        s_gn_fails(text, "invalid_ip_address", "value");
    }
}

/* --- DNS, email, URI, RID ---------------------------------------------------------------- */

static void test_dns_email_uri_rid(void **state)
{
    /* Case is kept (django-ca's encode_dns does not change ASCII names). */
    s_gn_ok("{\"type\": \"DNS\", \"value\": \"*.Example.COM\"}",
            "{\"type\": \"DNS\", \"value\": \"*.Example.COM\"}");
    s_gn_ok("{\"type\": \"DNS\", \"value\": \"xn--exmple-cua.com.\"}",
            "{\"type\": \"DNS\", \"value\": \"xn--exmple-cua.com.\"}");
    s_gn_ok("{\"type\": \"DNS\", \"value\": \"localhost\"}",
            "{\"type\": \"DNS\", \"value\": \"localhost\"}");
    s_gn_ok("{\"type\": \"email\", \"value\": \"user@example.com\"}",
            "{\"type\": \"email\", \"value\": \"user@example.com\"}");
    s_gn_ok("{\"type\": \"email\", \"value\": \"first.last+tag@xn--exmple-cua.com\"}",
            "{\"type\": \"email\", \"value\": \"first.last+tag@xn--exmple-cua.com\"}");
    /* urlparse lower-cases the scheme. */
    s_gn_ok("{\"type\": \"URI\", \"value\": \"HTTPS://Example.com:8443/a?b=c#d\"}",
            "{\"type\": \"URI\", \"value\": \"https://Example.com:8443/a?b=c#d\"}");
    s_gn_ok("{\"type\": \"URI\", \"value\": \"ldap://[2001:db8::1]/cn=x\"}",
            "{\"type\": \"URI\", \"value\": \"ldap://[2001:db8::1]/cn=x\"}");
    s_gn_ok("{\"type\": \"RID\", \"value\": \"1.2.3.4\"}",
            "{\"type\": \"RID\", \"value\": \"1.2.3.4\"}");

    static const char *const bad_dns[] = {"",
                                          "exa mple.com",
                                          "ex\\u00e4mple.com",
                                          "_acme-challenge.example.com",
                                          "foo..bar",
                                          "-a.com",
                                          "a-.com",
                                          "ab--c.com",
                                          "*",
                                          "*.*.example.com",
                                          "a.*.example.com",
                                          "..com",
                                          ("0123456789012345678901234567890123456789012345678901234"
                                           "56789abcd.com")};
    for (size_t i = 0; i < sizeof bad_dns / sizeof bad_dns[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"type\": \"DNS\", \"value\": \"%s\"}", bad_dns[i]);
        s_gn_fails(text, "invalid_dns_name", "value");
    }
    static const char *const bad_email[] = {
        "user",        "@example.com",         "user@",
        "user@ex com", "u\\u00e4@example.com", "user@.example.com"};
    for (size_t i = 0; i < sizeof bad_email / sizeof bad_email[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"type\": \"email\", \"value\": \"%s\"}", bad_email[i]);
        s_gn_fails(text, "invalid_email", "value");
    }
    static const char *const bad_uri[] = {"example.com",
                                          "urn:isbn:123",
                                          "file:///etc/passwd",
                                          "https://",
                                          "https://exa mple.com/",
                                          "https://user@example.com/",
                                          "https://example.com:99999/",
                                          "https://example.com:x/",
                                          "https://ex\\u00e4mple.com/",
                                          "https://[::g]/",
                                          "1http://example.com"};
    for (size_t i = 0; i < sizeof bad_uri / sizeof bad_uri[0]; i++) {
        char text[256];
        snprintf(text, sizeof text, "{\"type\": \"URI\", \"value\": \"%s\"}", bad_uri[i]);
        s_gn_fails(text, "invalid_uri", "value");
    }
    s_gn_fails("{\"type\": \"RID\", \"value\": \"1.2.\"}", "invalid_oid", "value");
    s_gn_fails("{\"type\": \"RID\", \"value\": \"serverAuth\"}", "invalid_oid", "value");
}

/* --- invalid input ----------------------------------------------------------------------- */

static void test_invalid_inputs(void **state)
{
    /* Wrong JSON types. */
    s_gn_fails("[]", "invalid_type", "");
    s_gn_fails("\"DNS:example.com\"", "invalid_type", "");
    s_gn_fails("{\"type\": 1, \"value\": \"x\"}", "invalid_type", "type");
    s_gn_fails("{\"type\": \"DNS\", \"value\": 1}", "invalid_type", "value");
    s_gn_fails("{\"type\": \"DNS\", \"value\": [\"example.com\"]}", "invalid_type", "value");
    s_gn_fails("{\"type\": \"IP\", \"value\": null}", "invalid_type", "value");
    s_gn_fails("{\"type\": \"dirName\", \"value\": \"CN=x\"}", "invalid_type", "value");
    s_gn_fails("{\"type\": \"otherName\", \"value\": \"1.2.3;UTF8:x\"}", "invalid_type", "value");
    s_gn_fails("{\"type\": \"RID\", \"value\": {}}", "invalid_type", "value");
    /* Unknown type literals: they are case-sensitive, like django-ca's Literal. */
    s_gn_fails("{\"type\": \"dns\", \"value\": \"x\"}", "unknown_type", "type");
    s_gn_fails("{\"type\": \"x400Address\", \"value\": \"x\"}", "unknown_type", "type");
    /* Missing and unknown fields. */
    s_gn_fails("{\"type\": \"DNS\"}", "missing_field", "value");
    s_gn_fails("{\"value\": \"x\"}", "missing_field", "type");
    s_gn_fails("{\"type\": \"DNS\", \"value\": \"x\", \"critical\": true}", "unknown_field",
               "critical");
    /* NUL characters never pass. */
    s_gn_fails("{\"type\": \"IP\", \"value\": \"1.2.3.4\\u0000x\"}", "invalid_value", "value");
    s_gn_fails("{\"type\": \"DNS\", \"value\": \"a\\u0000b\"}", "invalid_value", "value");
    /* dirName errors carry the name's path. */
    s_gn_fails("{\"type\": \"dirName\", \"value\": [{\"oid\": \"C\", \"value\": \"AUT\"}]}",
               "invalid_country_code", "value[0].value");
    s_gn_fails("{\"type\": \"dirName\", \"value\": [{\"oid\": \"CN\", \"value\": \"a\"}, "
               "{\"oid\": \"CN\", \"value\": \"b\"}]}",
               "duplicate_attribute", "value[1].oid");

    /* otherName: structure, OID, type literal. */
    s_gn_fails("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"UTF8\"}}",
               "missing_field", "value.value");
    s_gn_fails("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"UTF8\", "
               "\"value\": \"x\", \"x\": 1}}",
               "unknown_field", "value.x");
    s_gn_fails("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.x\", \"type\": \"UTF8\", "
               "\"value\": \"x\"}}",
               "invalid_oid", "value.oid");
    s_gn_fails("{\"type\": \"otherName\", \"value\": {\"oid\": 1, \"type\": \"UTF8\", "
               "\"value\": \"x\"}}",
               "invalid_type", "value.oid");
    s_gn_fails("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"utf8\", "
               "\"value\": \"x\"}}",
               "unknown_type", "value.type");
    s_gn_fails("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"SEQUENCE\", "
               "\"value\": \"x\"}}",
               "unknown_type", "value.type");
    s_gn_fails("{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": null, "
               "\"value\": \"x\"}}",
               "invalid_type", "value.type");

    /* check_consistency: the value's JSON type must match the otherName type. */
    static const struct {
        const char *type, *value;
    } mismatches[] = {
        {"UTF8String", "1"},
        {"UNIVERSALSTRING", "true"},
        {"IA5STRING", "null"},
        {"BOOLEAN", "\"TRUE\""},
        {"BOOLEAN", "1"},
        {"NULL", "\"\""},
        {"NULL", "false"},
        {"UTCTIME", "1633471264"},
        {"GENERALIZEDTIME", "null"},
        {"INTEGER", "1.5"},
        {"INTEGER", "true"},
        {"INTEGER", "[]"},
        {"OctetString", "616263"},
        {"OctetString", "null"},
    };
    for (size_t i = 0; i < sizeof mismatches / sizeof mismatches[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"%s\", "
                 "\"value\": %s}}",
                 mismatches[i].type, mismatches[i].value);
        s_gn_fails(text, "invalid_type", "value.value");
    }
    /* ... and its content must be valid. */
    static const struct {
        const char *type, *value, *code;
    } bad_values[] = {
        /* Datetimes must carry a timezone. */
        {"UTCTIME", "\"2021-10-05T22:01:04\"", "invalid_datetime"},
        {"GENERALIZEDTIME", "\"2021-10-05 22:01:04\"", "invalid_datetime"},
        {"GENERALIZEDTIME", "\"2021-10-05T22:01:04.5Z\"", "invalid_datetime"},
        {"GENERALIZEDTIME", "\"2021-02-29T00:00:00Z\"", "invalid_datetime"},
        {"GENERALIZEDTIME", "\"2021-10-05T24:00:00Z\"", "invalid_datetime"},
        {"GENERALIZEDTIME", "\"2021-10-05T22:01:04+24:00\"", "invalid_datetime"},
        {"GENERALIZEDTIME", "\"2021-10-05\"", "invalid_datetime"},
        {"GENERALIZEDTIME", "\"211005220104Z\"", "invalid_datetime"},
        {"GENERALIZEDTIME", "\"0000-01-01T00:00:00Z\"", "invalid_datetime"},
        {"UTCTIME", "\"2050-01-01T00:00:00Z\"", "invalid_datetime"},
        {"UTCTIME", "\"1949-12-31T23:59:59Z\"", "invalid_datetime"},
        {"UTCTIME", "\"2049-12-31T23:59:59-01:00\"", "invalid_datetime"},
        {"INTEGER", "\"abc\"", "invalid_value"},
        {"INTEGER", "\"0x\"", "invalid_value"},
        {"INTEGER", "\"12 \"", "invalid_value"},
        {"INTEGER", "\"0X12\"", "invalid_value"},
        {"OctetString", "\"xyz\"", "invalid_hex"},
        {"OctetString", "\"61 62\"", "invalid_hex"},
        {"IA5STRING", "\"\\u00e4\"", "invalid_value"},
        {"UTF8String", "\"a\\u0000\"", "invalid_value"},
    };
    for (size_t i = 0; i < sizeof bad_values / sizeof bad_values[0]; i++) {
        char text[256];
        snprintf(text, sizeof text,
                 "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"%s\", "
                 "\"value\": %s}}",
                 bad_values[i].type, bad_values[i].value);
        s_gn_fails(text, bad_values[i].code, "value.value");
    }

    /* Lists name the index. */
    json_t *list = s_json("[{\"type\": \"DNS\", \"value\": \"a.com\"}, {\"type\": \"IP\", "
                          "\"value\": \"a.com\"}]");
    cf_error_t err = {0};
    assert_null(cf_general_names_parse(list, &err));
    assert_string_equal(err.code, "invalid_ip_address");
    assert_string_equal(err.field, "[1].value");
    memset(&err, 0, sizeof err);
    assert_null(cf_general_names_to_openssl(list, &err));
    assert_string_equal(err.field, "[1].value");
    json_decref(list);
    memset(&err, 0, sizeof err);
    json_t *obj = json_object();
    assert_null(cf_general_names_parse(obj, &err));
    assert_string_equal(err.code, "invalid_type");
    json_decref(obj);
    list = json_array();
    json_t *empty = cf_general_names_parse(list, &err);
    assert_int_equal(json_array_size(empty), 0);
    GENERAL_NAMES *gns = cf_general_names_to_openssl(list, &err);
    assert_int_equal(sk_GENERAL_NAME_num(gns), 0);
    GENERAL_NAMES_free(gns);
    json_decref(empty);
    json_decref(list);
}

/* What from_openssl refuses: types the model lacks, malformed addresses, text with NULs. */
static void test_from_openssl_refusals(void **state)
{
    cf_error_t err = {0};
    GENERAL_NAME *gn = GENERAL_NAME_new();
    ASN1_OCTET_STRING *o = ASN1_OCTET_STRING_new();
    ASN1_OCTET_STRING_set(o, (const unsigned char *)"\x01\x02\x03\x04\x05", 5);
    GENERAL_NAME_set0_value(gn, GEN_IPADD, o);
    assert_null(cf_general_name_from_openssl(gn, &err));
    assert_string_equal(err.code, "invalid_ip_address");
    /* Non-contiguous mask. */
    ASN1_OCTET_STRING_set(o, (const unsigned char *)"\x0a\x00\x00\x00\xff\x00\xff\x00", 8);
    memset(&err, 0, sizeof err);
    assert_null(cf_general_name_from_openssl(gn, &err));
    assert_string_equal(err.code, "invalid_ip_address");
    GENERAL_NAME_free(gn);

    gn = GENERAL_NAME_new();
    ASN1_IA5STRING *s = ASN1_IA5STRING_new();
    ASN1_STRING_set(s, "a\0b", 3);
    GENERAL_NAME_set0_value(gn, GEN_DNS, s);
    memset(&err, 0, sizeof err);
    assert_null(cf_general_name_from_openssl(gn, &err));
    assert_string_equal(err.code, "unsupported_value");
    GENERAL_NAME_free(gn);

    /* otherName holding a SEQUENCE (e.g. a Kerberos principal): not one of the nine types. */
    gn = GENERAL_NAME_new();
    ASN1_TYPE *t = ASN1_TYPE_new();
    ASN1_STRING *seq = ASN1_STRING_type_new(V_ASN1_SEQUENCE);
    ASN1_STRING_set(seq, "\x30\x00", 2);
    ASN1_TYPE_set(t, V_ASN1_SEQUENCE, seq);
    GENERAL_NAME_set0_othername(gn, OBJ_txt2obj("1.3.6.1.5.2.2", 1), t);
    memset(&err, 0, sizeof err);
    assert_null(cf_general_name_from_openssl(gn, &err));
    assert_string_equal(err.code, "unsupported_value");
    assert_string_equal(err.field, "value.type");
    GENERAL_NAME_free(gn);

    /* x400Address / ediPartyName are not in django-ca's GENERAL_NAME_TYPES. */
    static const unsigned char edi[] = {0xa5, 0x06, 0xa1, 0x04, 0x0c, 0x02, 'a', 'b'};
    const unsigned char *p = edi;
    gn = d2i_GENERAL_NAME(NULL, &p, sizeof edi);
    assert_non_null(gn);
    memset(&err, 0, sizeof err);
    assert_null(cf_general_name_from_openssl(gn, &err));
    assert_string_equal(err.code, "unsupported_value");
    assert_string_equal(err.field, "type");
    GENERAL_NAME_free(gn);

    memset(&err, 0, sizeof err);
    assert_null(cf_general_name_from_openssl(NULL, &err));
    json_t *none = cf_general_names_from_openssl(NULL, &err);
    assert_int_equal(json_array_size(none), 0);
    json_decref(none);
}

/* --- text form --------------------------------------------------------------------------- */

static void s_text_ok(const char *text, const char *expected)
{
    cf_error_t err = {0};
    json_t *model = cf_general_name_from_string(text, &err);
    if (!model)
        fail_msg("%s: %s: %s (%s)", text, err.code, err.message, err.field);
    s_assert_json(model, expected);
    json_decref(model);
}

static void s_text_fails(const char *text, const char *code, const char *field)
{
    cf_error_t err = {0};
    json_t *model = cf_general_name_from_string(text, &err);
    if (model)
        fail_msg("%s: accepted", text);
    if (strcmp(err.code, code) != 0 || strcmp(err.field, field) != 0)
        fail_msg("%s: got %s at \"%s\" (%s)", text, err.code, err.field, err.message);
}

static void test_text_form(void **state)
{
    /* django-ca's parse_general_name examples. */
    s_text_ok("example.com", "{\"type\": \"DNS\", \"value\": \"example.com\"}");
    s_text_ok("*.example.com", "{\"type\": \"DNS\", \"value\": \"*.example.com\"}");
    s_text_ok(".example.com", "{\"type\": \"DNS\", \"value\": \".example.com\"}");
    s_text_ok("user@example.com", "{\"type\": \"email\", \"value\": \"user@example.com\"}");
    s_text_ok("https://example.com", "{\"type\": \"URI\", \"value\": \"https://example.com\"}");
    s_text_ok("1.2.3.4", "{\"type\": \"IP\", \"value\": \"1.2.3.4\"}");
    s_text_ok("fd00::1", "{\"type\": \"IP\", \"value\": \"fd00::1\"}");
    s_text_ok("10.0.0.0/8", "{\"type\": \"IP\", \"value\": \"10.0.0.0/8\"}");
    s_text_fails("foo..bar`*123", "invalid_dns_name", "value");
    s_text_ok("email:user@example.com", "{\"type\": \"email\", \"value\": \"user@example.com\"}");
    s_text_ok("URI:https://example.com", "{\"type\": \"URI\", \"value\": \"https://example.com\"}");
    s_text_ok("dirname:CN=example.com",
              "{\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.3\", \"value\": "
              "\"example.com\"}]}");
    s_text_ok("dirName:/C=AT/CN=example.com",
              "{\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, "
              "{\"oid\": \"2.5.4.3\", \"value\": \"example.com\"}]}");
    s_text_ok("rid:2.5.4.3", "{\"type\": \"RID\", \"value\": \"2.5.4.3\"}");
    s_text_ok("DNS:example.com", "{\"type\": \"DNS\", \"value\": \"example.com\"}");
    s_text_ok("IP:::1", "{\"type\": \"IP\", \"value\": \"::1\"}");
    s_text_fails("email:foo@bar com", "invalid_email", "value");
    s_text_fails("IP:example.com", "invalid_ip_address", "value");
    s_text_fails("dirName:/C=AUT", "invalid_country_code", "value[0].value");
    /* otherName:OID;TYPE:VALUE with OpenSSL's type names. */
    s_text_ok("otherName:2.5.4.3;UTF8:example.com",
              "{\"type\": \"otherName\", \"value\": {\"oid\": \"2.5.4.3\", \"type\": "
              "\"UTF8String\", \"value\": \"example.com\"}}");
    s_text_ok("otherName:1.2.3;BOOL:yes", "{\"type\": \"otherName\", \"value\": {\"oid\": "
                                          "\"1.2.3\", \"type\": \"BOOLEAN\", \"value\": true}}");
    s_text_ok("otherName:1.2.3;BOOLEAN:FALSE",
              "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"BOOLEAN\", "
              "\"value\": false}}");
    s_text_ok("otherName:1.2.3;NULL:", "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", "
                                       "\"type\": \"NULL\", \"value\": null}}");
    s_text_ok("otherName:1.2.3;UTC:211005220104Z",
              "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"UTCTIME\", "
              "\"value\": \"2021-10-05T22:01:04Z\"}}");
    s_text_ok("otherName:1.2.3;GENTIME:20211005220104Z",
              "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": "
              "\"GENERALIZEDTIME\", \"value\": \"2021-10-05T22:01:04Z\"}}");
    s_text_ok("otherName:1.2.3;GENTIME:2021-10-05T22:01:04Z",
              "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": "
              "\"GENERALIZEDTIME\", \"value\": \"2021-10-05T22:01:04Z\"}}");
    s_text_ok("otherName:1.2.3;INT:0x123", "{\"type\": \"otherName\", \"value\": {\"oid\": "
                                           "\"1.2.3\", \"type\": \"INTEGER\", \"value\": 291}}");
    s_text_ok("otherName:1.2.3;OctetString:616263",
              "{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": "
              "\"OctetString\", \"value\": \"616263\"}}");
    s_text_ok("otherName:1.2.3;IA5:a;b:c", "{\"type\": \"otherName\", \"value\": {\"oid\": "
                                           "\"1.2.3\", \"type\": \"IA5STRING\", \"value\": "
                                           "\"a;b:c\"}}");
    s_text_fails("otherName:1.2.3", "invalid_syntax", "value");
    s_text_fails("otherName:1.2.3;UTF8", "invalid_syntax", "value");
    s_text_fails("otherName:1.2.3;BOOL:maybe", "invalid_value", "value.value");
    s_text_fails("otherName:1.2.3;NULL:x", "invalid_value", "value.value");
    s_text_fails("otherName:1.2.3;UTC:2110052201Z", "invalid_datetime", "value.value");
    s_text_fails("otherName:1.2.3;SEQ:x", "unknown_type", "value.type");
    s_text_fails("otherName:1.2.;UTF8:x", "invalid_oid", "value.oid");
    s_text_fails(NULL, "invalid_type", "");

    /* The reference's parse_general_name DER: value=b'\x0c\x0bexample.com'. */
    cf_error_t err = {0};
    json_t *model = cf_general_name_from_string("otherName:2.5.4.3;UTF8:example.com", &err);
    GENERAL_NAME *gn = cf_general_name_to_openssl(model, &err);
    ASN1_OBJECT *oid;
    ASN1_TYPE *value;
    assert_true(GENERAL_NAME_get0_otherName(gn, &oid, &value));
    unsigned char *der = NULL;
    int len = i2d_ASN1_TYPE(value, &der);
    assert_int_equal(len, 13);
    assert_memory_equal(der,
                        "\x0c\x0b"
                        "example.com",
                        13);
    OPENSSL_free(der);
    GENERAL_NAME_free(gn);
    json_decref(model);

    /* to_string */
    static const struct {
        const char *json, *text;
    } out[] = {
        {"{\"type\": \"DNS\", \"value\": \"example.com\"}", "DNS:example.com"},
        {"{\"type\": \"IP\", \"value\": \"10.0.0.0/8\"}", "IP:10.0.0.0/8"},
        {"{\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, "
         "{\"oid\": \"2.5.4.3\", \"value\": \"a/b\"}]}",
         "dirName:/C=AT/CN=a\\/b"},
        {"{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"UTF8String\", "
         "\"value\": \"x\"}}",
         "otherName:1.2.3;UTF8:x"},
        {"{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"UTCTIME\", "
         "\"value\": \"2021-10-05T22:01:04Z\"}}",
         "otherName:1.2.3;UTC:211005220104Z"},
        {"{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"NULL\", "
         "\"value\": null}}",
         "otherName:1.2.3;NULL:"},
        {"{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"BOOLEAN\", "
         "\"value\": true}}",
         "otherName:1.2.3;BOOL:TRUE"},
        {"{\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3\", \"type\": \"INTEGER\", "
         "\"value\": -7}}",
         "otherName:1.2.3;INT:-7"},
    };
    for (size_t i = 0; i < sizeof out / sizeof out[0]; i++) {
        json_t *m = s_json(out[i].json);
        char *s = cf_general_name_to_string(m);
        assert_non_null(s);
        assert_string_equal(s, out[i].text);
        free(s);
        json_decref(m);
    }
    json_t *bad = s_json("{\"type\": \"nope\", \"value\": \"x\"}");
    assert_null(cf_general_name_to_string(bad));
    json_decref(bad);
}

/* --- a certificate made by OpenSSL -------------------------------------------------------- */

static const char s_openssl_config[] =
    "[req]\n"
    "distinguished_name = dn\n"
    "string_mask = utf8only\n"
    "[dn]\n"
    "[v3]\n"
    "basicConstraints = critical, CA:TRUE\n"
    "subjectAltName = @alt\n"
    "nameConstraints = permitted;IP:10.0.0.0/255.0.0.0, permitted;IP:fd00::/ff00::, "
    "permitted;DNS:.example.com, excluded;email:.example.org\n"
    "[alt]\n"
    "DNS.1 = example.com\n"
    "DNS.2 = *.example.net\n"
    "IP.1 = 127.0.0.1\n"
    "IP.2 = ::1\n"
    "IP.3 = 2001:db8:0:0:8:800:200c:417a\n"
    "email.1 = user@example.com\n"
    "URI.1 = https://example.com/path?q=1\n"
    "RID.1 = 1.2.3.4\n"
    "dirName.1 = dir_sect\n"
    "otherName.1 = 1.3.6.1.4.1.311.20.2.3;UTF8:upn@example.com\n"
    "otherName.2 = 1.2.3.1;UNIV:univ\n"
    "otherName.3 = 1.2.3.2;IA5:ia5 text\n"
    "otherName.4 = 1.2.3.3;BOOL:TRUE\n"
    "otherName.5 = 1.2.3.4;NULL:\n"
    "otherName.6 = 1.2.3.5;UTC:211005220104Z\n"
    "otherName.7 = 1.2.3.6;GENTIME:20211005220104Z\n"
    "otherName.8 = 1.2.3.7;INT:0x123\n"
    "otherName.9 = 1.2.3.8;FORMAT:HEX,OCT:09CFF1\n"
    "[dir_sect]\n"
    "C = AT\n"
    "O = Dir Org\n"
    "CN = dir.example.com\n";

static const char s_subject[] =
    "/C=AT/ST=Vienna/L=Vienna/O=Example Org/OU=Unit 1/OU=Unit 2/CN=example.com"
    "/emailAddress=admin@example.com/serialNumber=1234/title=Dr/GN=Given/SN=Sur/initials=GS"
    "/pseudonym=pseudo/generationQualifier=III/dnQualifier=dnq/postalCode=1010"
    "/street=Main Street 1/businessCategory=Private Organization/jurisdictionC=AT"
    "/jurisdictionST=Vienna/jurisdictionL=Vienna/DC=example/DC=com/UID=uid1"
    "/organizationIdentifier=VATAT-U12345678";

static const char s_subject_model[] =
    "[{\"oid\": \"2.5.4.6\", \"value\": \"AT\"}, {\"oid\": \"2.5.4.8\", \"value\": \"Vienna\"},"
    " {\"oid\": \"2.5.4.7\", \"value\": \"Vienna\"}, {\"oid\": \"2.5.4.10\", \"value\": \"Example "
    "Org\"},"
    " {\"oid\": \"2.5.4.11\", \"value\": \"Unit 1\"}, {\"oid\": \"2.5.4.11\", \"value\": \"Unit "
    "2\"},"
    " {\"oid\": \"2.5.4.3\", \"value\": \"example.com\"},"
    " {\"oid\": \"1.2.840.113549.1.9.1\", \"value\": \"admin@example.com\"},"
    " {\"oid\": \"2.5.4.5\", \"value\": \"1234\"}, {\"oid\": \"2.5.4.12\", \"value\": \"Dr\"},"
    " {\"oid\": \"2.5.4.42\", \"value\": \"Given\"}, {\"oid\": \"2.5.4.4\", \"value\": \"Sur\"},"
    " {\"oid\": \"2.5.4.43\", \"value\": \"GS\"}, {\"oid\": \"2.5.4.65\", \"value\": \"pseudo\"},"
    " {\"oid\": \"2.5.4.44\", \"value\": \"III\"}, {\"oid\": \"2.5.4.46\", \"value\": \"dnq\"},"
    " {\"oid\": \"2.5.4.17\", \"value\": \"1010\"}, {\"oid\": \"2.5.4.9\", \"value\": \"Main "
    "Street "
    "1\"},"
    " {\"oid\": \"2.5.4.15\", \"value\": \"Private Organization\"},"
    " {\"oid\": \"1.3.6.1.4.1.311.60.2.1.3\", \"value\": \"AT\"},"
    " {\"oid\": \"1.3.6.1.4.1.311.60.2.1.2\", \"value\": \"Vienna\"},"
    " {\"oid\": \"1.3.6.1.4.1.311.60.2.1.1\", \"value\": \"Vienna\"},"
    " {\"oid\": \"0.9.2342.19200300.100.1.25\", \"value\": \"example\"},"
    " {\"oid\": \"0.9.2342.19200300.100.1.25\", \"value\": \"com\"},"
    " {\"oid\": \"0.9.2342.19200300.100.1.1\", \"value\": \"uid1\"},"
    " {\"oid\": \"2.5.4.97\", \"value\": \"VATAT-U12345678\"}]";

static const char s_san_model[] =
    "[{\"type\": \"DNS\", \"value\": \"example.com\"},"
    " {\"type\": \"DNS\", \"value\": \"*.example.net\"},"
    " {\"type\": \"IP\", \"value\": \"127.0.0.1\"},"
    " {\"type\": \"IP\", \"value\": \"::1\"},"
    " {\"type\": \"IP\", \"value\": \"2001:db8::8:800:200c:417a\"},"
    " {\"type\": \"email\", \"value\": \"user@example.com\"},"
    " {\"type\": \"URI\", \"value\": \"https://example.com/path?q=1\"},"
    " {\"type\": \"RID\", \"value\": \"1.2.3.4\"},"
    " {\"type\": \"dirName\", \"value\": [{\"oid\": \"2.5.4.6\", \"value\": \"AT\"},"
    "   {\"oid\": \"2.5.4.10\", \"value\": \"Dir Org\"}, {\"oid\": \"2.5.4.3\", \"value\": "
    "\"dir.example.com\"}]},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.3.6.1.4.1.311.20.2.3\", \"type\": "
    "\"UTF8String\", \"value\": \"upn@example.com\"}},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.1\", \"type\": \"UNIVERSALSTRING\", "
    "\"value\": \"univ\"}},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.2\", \"type\": \"IA5STRING\", "
    "\"value\": \"ia5 text\"}},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.3\", \"type\": \"BOOLEAN\", "
    "\"value\": true}},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.4\", \"type\": \"NULL\", \"value\": "
    "null}},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.5\", \"type\": \"UTCTIME\", "
    "\"value\": \"2021-10-05T22:01:04Z\"}},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.6\", \"type\": \"GENERALIZEDTIME\", "
    "\"value\": \"2021-10-05T22:01:04Z\"}},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.7\", \"type\": \"INTEGER\", "
    "\"value\": 291}},"
    " {\"type\": \"otherName\", \"value\": {\"oid\": \"1.2.3.8\", \"type\": \"OctetString\", "
    "\"value\": \"09CFF1\"}}]";

static void s_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

/* The DER of a GENERAL_NAMES from the models must equal what OpenSSL wrote. */
static void s_assert_same_der(const GENERAL_NAMES *ours, const GENERAL_NAMES *theirs)
{
    unsigned char *a = NULL, *b = NULL;
    int alen = i2d_GENERAL_NAMES((GENERAL_NAMES *)ours, &a);
    int blen = i2d_GENERAL_NAMES((GENERAL_NAMES *)theirs, &b);
    assert_true(alen > 0);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, (size_t)alen);
    OPENSSL_free(a);
    OPENSSL_free(b);
}

static void test_openssl_made_certificate(void **state)
{
    if (system("openssl version >/dev/null 2>&1") != 0)
        skip();
    char dir[] = "/tmp/cf_test_gn_XXXXXX";
    assert_non_null(mkdtemp(dir));
    char cnf[256], key[256], crt[256], log[256], cmd[4096];
    snprintf(cnf, sizeof cnf, "%s/req.cnf", dir);
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(crt, sizeof crt, "%s/cert.pem", dir);
    snprintf(log, sizeof log, "%s/log", dir);
    s_write_file(cnf, s_openssl_config);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 "
             "-config '%s' -extensions v3 -keyout '%s' -out '%s' -subj '%s' >'%s' 2>&1",
             cnf, key, crt, s_subject, log);
    int rc = system(cmd);
    if (rc != 0) {
        char buf[2048] = "";
        FILE *f = fopen(log, "r");
        if (f) {
            buf[fread(buf, 1, sizeof buf - 1, f)] = '\0';
            fclose(f);
        }
        fail_msg("openssl req failed: %s", buf);
    }
    FILE *f = fopen(crt, "r");
    assert_non_null(f);
    X509 *cert = PEM_read_X509(f, NULL, NULL, NULL);
    fclose(f);
    unlink(cnf);
    unlink(key);
    unlink(crt);
    unlink(log);
    rmdir(dir);
    assert_non_null(cert);

    /* Subject: every attribute, in order, and valid by the model's rules. */
    cf_error_t err = {0};
    json_t *subject = cf_name_from_openssl(X509_get_subject_name(cert), &err);
    assert_non_null(subject);
    s_assert_json(subject, s_subject_model);
    json_t *parsed = cf_name_parse(subject, &err);
    assert_non_null(parsed);
    json_decref(parsed);
    /* With string_mask=utf8only OpenSSL picks the same string types as the model. */
    X509_NAME *ours = cf_name_to_openssl(subject, &err);
    assert_non_null(ours);
    unsigned char *a = NULL, *b = NULL;
    int alen = i2d_X509_NAME(ours, &a);
    int blen = i2d_X509_NAME(X509_get_subject_name(cert), &b);
    assert_int_equal(alen, blen);
    assert_memory_equal(a, b, (size_t)alen);
    OPENSSL_free(a);
    OPENSSL_free(b);
    X509_NAME_free(ours);
    /* The string forms read back to it. */
    char *text = cf_name_to_string(subject);
    json_t *again = cf_name_from_string(text, &err);
    assert_true(json_equal(again, subject));
    json_decref(again);
    free(text);

    /* Subject alternative names: every general name type and all nine otherName types. */
    GENERAL_NAMES *san = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    assert_non_null(san);
    json_t *names = cf_general_names_from_openssl(san, &err);
    if (!names)
        fail_msg("%s: %s (%s)", err.code, err.message, err.field);
    s_assert_json(names, s_san_model);
    json_t *norm = cf_general_names_parse(names, &err);
    assert_non_null(norm);
    assert_true(json_equal(norm, names));
    json_decref(norm);
    GENERAL_NAMES *back = cf_general_names_to_openssl(names, &err);
    assert_non_null(back);
    s_assert_same_der(back, san);
    GENERAL_NAMES_free(back);
    s_serial_round_trips(names);
    json_decref(names);
    GENERAL_NAMES_free(san);

    /* Name constraints: IP networks as address and mask, DNS and email with a leading dot. */
    NAME_CONSTRAINTS *nc = X509_get_ext_d2i(cert, NID_name_constraints, NULL, NULL);
    assert_non_null(nc);
    GENERAL_NAMES *permitted = sk_GENERAL_NAME_new_null();
    for (int i = 0; i < sk_GENERAL_SUBTREE_num(nc->permittedSubtrees); i++)
        sk_GENERAL_NAME_push(permitted, sk_GENERAL_SUBTREE_value(nc->permittedSubtrees, i)->base);
    json_t *pmodel = cf_general_names_from_openssl(permitted, &err);
    assert_non_null(pmodel);
    s_assert_json(pmodel, "[{\"type\": \"IP\", \"value\": \"10.0.0.0/8\"},"
                          " {\"type\": \"IP\", \"value\": \"fd00::/8\"},"
                          " {\"type\": \"DNS\", \"value\": \".example.com\"}]");
    back = cf_general_names_to_openssl(pmodel, &err);
    s_assert_same_der(back, permitted);
    GENERAL_NAMES_free(back);
    json_decref(pmodel);
    sk_GENERAL_NAME_free(permitted); /* the names belong to nc */
    /* An email domain constraint has no "@": faithful on reading, refused by the model as in
     * django-ca (whose validate_email requires one). */
    const GENERAL_NAME *excluded = sk_GENERAL_SUBTREE_value(nc->excludedSubtrees, 0)->base;
    json_t *emodel = cf_general_name_from_openssl(excluded, &err);
    s_assert_json(emodel, "{\"type\": \"email\", \"value\": \".example.org\"}");
    memset(&err, 0, sizeof err);
    assert_null(cf_general_name_parse(emodel, &err));
    assert_string_equal(err.code, "invalid_email");
    json_decref(emodel);
    NAME_CONSTRAINTS_free(nc);

    json_decref(subject);
    X509_free(cert);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reference_general_names),
        cmocka_unit_test(test_reference_other_names),
        cmocka_unit_test(test_other_name_types_and_aliases),
        cmocka_unit_test(test_other_name_der),
        cmocka_unit_test(test_ip_addresses),
        cmocka_unit_test(test_dns_email_uri_rid),
        cmocka_unit_test(test_invalid_inputs),
        cmocka_unit_test(test_from_openssl_refusals),
        cmocka_unit_test(test_text_form),
        cmocka_unit_test(test_openssl_made_certificate),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
