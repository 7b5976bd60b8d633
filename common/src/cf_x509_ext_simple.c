/* cf_x509_ext_simple: the extension models with flat values: basic constraints, key usage,
 * extended key usage, TLS feature, OCSP no check, precert poison, subject key identifier,
 * CRL number, delta CRL indicator and MS certificate template. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/asn1t.h>
#include <openssl/objects.h>

#include "cf_x509_ext_int.h"

/* DER BOOLEAN TRUE is 0xFF; OpenSSL writes an int field's value as the content byte. */
#define S_DER_TRUE 0xFF

/* --- shared: a lone INTEGER -------------------------------------------------------------- */

json_t *cf_ext_decode_integer(const unsigned char *der, long len, bool big, cf_error_t *err)
{
    ASN1_INTEGER *ai = cf_ext_d2i(der, len, ASN1_ITEM_rptr(ASN1_INTEGER), err);
    if (!ai)
        return NULL;
    json_t *out = cf_ext_int_from_openssl(ai, big, "", err);
    ASN1_INTEGER_free(ai);
    return out;
}

int cf_ext_encode_integer(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    ASN1_INTEGER *ai = cf_ext_int_to_openssl(value, err);
    if (!ai)
        return -1;
    int rc = cf_ext_i2d(ai, ASN1_ITEM_rptr(ASN1_INTEGER), der, len, err);
    ASN1_INTEGER_free(ai);
    return rc;
}

void cf_ext_text_integer(const json_t *value, cf_ext_buf_t *out)
{
    if (json_is_integer(value))
        cf_ext_line(out, 0, "%" JSON_INTEGER_FORMAT, json_integer_value(value));
    else
        cf_ext_line(out, 0, "%s", json_is_string(value) ? json_string_value(value) : "?");
}

static json_t *s_big_parse(const json_t *value, cf_error_t *err)
{
    return cf_ext_parse_bigint(value, "", err);
}

static json_t *s_big_decode(const unsigned char *der, long len, cf_error_t *err)
{
    return cf_ext_decode_integer(der, len, true, err);
}

const cf_ext_def_t cf_ext_def_crl_number = {
    "crl_number",          "2.5.29.20",  "CRL Number",        0, 0, s_big_parse,
    cf_ext_encode_integer, s_big_decode, cf_ext_text_integer,
};

const cf_ext_def_t cf_ext_def_delta_crl_indicator = {
    "delta_crl_indicator", "2.5.29.27",  "Delta CRL Indicator", 1, 0, s_big_parse,
    cf_ext_encode_integer, s_big_decode, cf_ext_text_integer,
};

/* --- basic constraints ------------------------------------------------------------------- */

static json_t *s_bc_parse(const json_t *value, cf_error_t *err)
{
    static const char *const fields[] = {"ca", "path_length", NULL};
    if (cf_ext_check_object(value, "basic constraints", fields, fields, err) != 0)
        return NULL;
    const json_t *ca = json_object_get(value, "ca");
    if (!json_is_boolean(ca)) {
        cf_error_set(err, "invalid_type", "ca", "\"ca\" must be a boolean");
        return NULL;
    }
    const json_t *pl = cf_ext_opt(value, "path_length");
    json_int_t path_length = 0;
    if (pl && cf_ext_get_int(pl, "path_length", 0, INT32_MAX, &path_length, err) != 0)
        return NULL;
    if (pl && !json_is_true(ca)) {
        cf_error_set(err, "contradictory_fields", "path_length",
                     "\"path_length\" must be null when \"ca\" is false");
        return NULL;
    }
    return json_pack("{s:b, s:o}", "ca", json_is_true(ca), "path_length",
                     pl ? json_integer(path_length) : json_null());
}

static int s_bc_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    BASIC_CONSTRAINTS *bc = BASIC_CONSTRAINTS_new();
    if (!bc)
        goto cleanup;
    bc->ca = json_is_true(json_object_get(value, "ca")) ? S_DER_TRUE : 0;
    const json_t *pl = cf_ext_opt(value, "path_length");
    if (pl && !(bc->pathlen = cf_ext_int_to_openssl(pl, err)))
        goto cleanup;
    rc = cf_ext_i2d(bc, ASN1_ITEM_rptr(BASIC_CONSTRAINTS), der, len, err);
cleanup:
    if (!bc)
        cf_error_set(err, "internal", "", "out of memory");
    BASIC_CONSTRAINTS_free(bc);
    return rc;
}

static json_t *s_bc_decode(const unsigned char *der, long len, cf_error_t *err)
{
    BASIC_CONSTRAINTS *bc = cf_ext_d2i(der, len, ASN1_ITEM_rptr(BASIC_CONSTRAINTS), err);
    if (!bc)
        return NULL;
    json_t *pl =
        bc->pathlen ? cf_ext_int_from_openssl(bc->pathlen, false, "path_length", err) : json_null();
    json_t *out = pl ? json_pack("{s:b, s:o}", "ca", bc->ca != 0, "path_length", pl) : NULL;
    BASIC_CONSTRAINTS_free(bc);
    return out;
}

static void s_bc_text(const json_t *value, cf_ext_buf_t *out)
{
    bool ca = json_is_true(json_object_get(value, "ca"));
    const json_t *pl = json_object_get(value, "path_length");
    cf_ext_line(out, 0, "CA: %s", ca ? "true" : "false");
    if (json_is_integer(pl))
        cf_ext_line(out, 0, "Path length: %" JSON_INTEGER_FORMAT, json_integer_value(pl));
    else if (ca)
        cf_ext_line(out, 0, "Path length: unlimited");
}

const cf_ext_def_t cf_ext_def_basic_constraints = {
    "basic_constraints", "2.5.29.19", "Basic Constraints", 1,         0,
    s_bc_parse,          s_bc_encode, s_bc_decode,         s_bc_text,
};

/* --- key usage --------------------------------------------------------------------------- */

/* Sorted by name: the normalised list is in this order. RFC names are accepted as aliases. */
static const struct {
    const char *name; /* django-ca's KeyUsage parameter name */
    const char *rfc;  /* RFC 5280 name */
    int bit;          /* KeyUsage bit */
} s_key_usages[] = {
    {"content_commitment", "nonRepudiation", 1},  {"crl_sign", "cRLSign", 6},
    {"data_encipherment", "dataEncipherment", 3}, {"decipher_only", "decipherOnly", 8},
    {"digital_signature", "digitalSignature", 0}, {"encipher_only", "encipherOnly", 7},
    {"key_agreement", "keyAgreement", 4},         {"key_cert_sign", "keyCertSign", 5},
    {"key_encipherment", "keyEncipherment", 2},
};
#define S_KU_COUNT (sizeof s_key_usages / sizeof s_key_usages[0])

static int s_ku_bit(const char *name)
{
    for (size_t i = 0; i < S_KU_COUNT; i++)
        if (strcmp(s_key_usages[i].name, name) == 0 || strcmp(s_key_usages[i].rfc, name) == 0)
            return s_key_usages[i].bit;
    return -1;
}

static json_t *s_ku_list(unsigned bits)
{
    json_t *out = json_array();
    for (size_t i = 0; out && i < S_KU_COUNT; i++) {
        if ((bits & (1u << s_key_usages[i].bit)) &&
            json_array_append_new(out, json_string(s_key_usages[i].name))) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

static json_t *s_ku_parse(const json_t *value, cf_error_t *err)
{
    if (cf_ext_check_list(value, "", err) != 0)
        return NULL;
    unsigned bits = 0;
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", path, "key usage must be a string");
            return NULL;
        }
        int bit = s_ku_bit(json_string_value(v));
        if (bit < 0) {
            cf_error_set(err, "invalid_value", path, "unknown key usage \"%.80s\"",
                         json_string_value(v));
            return NULL;
        }
        /* A set: naming a usage twice is harmless and collapses. */
        bits |= 1u << bit;
    }
    if ((bits & ((1u << 7) | (1u << 8))) && !(bits & (1u << 4))) {
        cf_error_set(err, "contradictory_fields", "",
                     "encipher_only and decipher_only can only be set when key_agreement is set");
        return NULL;
    }
    return s_ku_list(bits);
}

static int s_ku_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    if (!bs)
        goto cleanup;
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        /* set_bit trims trailing zero octets, exactly as OpenSSL's keyUsage config does. */
        if (!ASN1_BIT_STRING_set_bit(bs, s_ku_bit(json_string_value(v)), 1))
            goto cleanup;
    }
    rc = cf_ext_i2d(bs, ASN1_ITEM_rptr(ASN1_BIT_STRING), der, len, err);
cleanup:
    if (rc != 0 && !cf_error_isset(err))
        cf_error_set(err, "internal", "", "out of memory");
    ASN1_BIT_STRING_free(bs);
    return rc;
}

static json_t *s_ku_decode(const unsigned char *der, long len, cf_error_t *err)
{
    ASN1_BIT_STRING *bs = cf_ext_d2i(der, len, ASN1_ITEM_rptr(ASN1_BIT_STRING), err);
    if (!bs)
        return NULL;
    unsigned bits = 0;
    for (int bit = 0; bit <= 8; bit++)
        if (ASN1_BIT_STRING_get_bit(bs, bit))
            bits |= 1u << bit;
    ASN1_BIT_STRING_free(bs);
    json_t *out = s_ku_list(bits);
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

static void s_list_text(const json_t *value, cf_ext_buf_t *out)
{
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        cf_ext_line(out, 0, "* %s", json_is_string(v) ? json_string_value(v) : "?");
    }
}

const cf_ext_def_t cf_ext_def_key_usage = {
    "key_usage", "2.5.29.15", "Key Usage", 1,           CF_EXT_SIGN,
    s_ku_parse,  s_ku_encode, s_ku_decode, s_list_text,
};

/* --- extended key usage ------------------------------------------------------------------ */

/* django-ca's EXTENDED_KEY_USAGE_NAMES: accepted as input, dotted OIDs are emitted. */
static const struct {
    const char *name; /* name as in the reference */
    const char *oid;  /* dotted OID */
} s_eku_names[] = {
    {"anyExtendedKeyUsage", "2.5.29.37.0"},
    {"certificateTransparency", "1.3.6.1.4.1.11129.2.4.4"},
    {"clientAuth", "1.3.6.1.5.5.7.3.2"},
    {"codeSigning", "1.3.6.1.5.5.7.3.3"},
    {"emailProtection", "1.3.6.1.5.5.7.3.4"},
    {"ipsecEndSystem", "1.3.6.1.5.5.7.3.5"},
    {"ipsecIKE", "1.3.6.1.5.5.7.3.17"},
    {"ipsecTunnel", "1.3.6.1.5.5.7.3.6"},
    {"ipsecUser", "1.3.6.1.5.5.7.3.7"},
    {"msKDC", "1.3.6.1.5.2.3.5"},
    {"mdlDS", "1.0.18013.5.1.2"},
    {"mdlJWS", "1.0.18013.5.1.3"},
    {"OCSPSigning", "1.3.6.1.5.5.7.3.9"},
    {"serverAuth", "1.3.6.1.5.5.7.3.1"},
    {"smartcardLogon", "1.3.6.1.4.1.311.20.2.2"},
    {"timeStamping", "1.3.6.1.5.5.7.3.8"},
};
#define S_EKU_COUNT (sizeof s_eku_names / sizeof s_eku_names[0])

static json_t *s_eku_parse(const json_t *value, cf_error_t *err)
{
    if (cf_ext_check_list(value, "", err) != 0)
        return NULL;
    json_t *out = json_array();
    if (!out) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", path, "extended key usage must be a string");
            goto fail;
        }
        const char *s = json_string_value(v);
        json_t *oid = NULL;
        for (size_t n = 0; n < S_EKU_COUNT && !oid; n++)
            if (strcmp(s_eku_names[n].name, s) == 0)
                oid = json_string(s_eku_names[n].oid);
        if (!oid && strspn(s, "0123456789.") != json_string_length(v)) {
            cf_error_set(err, "invalid_value", path, "unknown extended key usage \"%.80s\"", s);
            goto fail;
        }
        if (!oid && !(oid = cf_ext_parse_oid(v, path, err)))
            goto fail;
        if (json_array_append_new(out, oid)) {
            cf_error_set(err, "internal", "", "out of memory");
            goto fail;
        }
    }
    if (cf_ext_check_unique(out, "", err) != 0)
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}

static int s_eku_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    EXTENDED_KEY_USAGE *eku = sk_ASN1_OBJECT_new_null();
    if (!eku) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        ASN1_OBJECT *obj = cf_ext_oid_to_openssl(json_string_value(v), path, err);
        if (!obj)
            goto cleanup;
        if (!sk_ASN1_OBJECT_push(eku, obj)) {
            ASN1_OBJECT_free(obj);
            cf_error_set(err, "internal", "", "out of memory");
            goto cleanup;
        }
    }
    rc = cf_ext_i2d(eku, ASN1_ITEM_rptr(EXTENDED_KEY_USAGE), der, len, err);
cleanup:
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    return rc;
}

static json_t *s_eku_decode(const unsigned char *der, long len, cf_error_t *err)
{
    EXTENDED_KEY_USAGE *eku = cf_ext_d2i(der, len, ASN1_ITEM_rptr(EXTENDED_KEY_USAGE), err);
    if (!eku)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; out && i < sk_ASN1_OBJECT_num(eku); i++) {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", (size_t)i);
        json_t *oid = cf_ext_oid_from_openssl(sk_ASN1_OBJECT_value(eku, i), path, err);
        if (!oid || json_array_append_new(out, oid)) {
            json_decref(out);
            out = NULL;
        }
    }
    sk_ASN1_OBJECT_pop_free(eku, ASN1_OBJECT_free);
    if (!out && !cf_error_isset(err))
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

static void s_eku_text(const json_t *value, cf_ext_buf_t *out)
{
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        const char *oid = json_string_value(v);
        const char *name = NULL;
        for (size_t n = 0; oid && n < S_EKU_COUNT && !name; n++)
            if (strcmp(s_eku_names[n].oid, oid) == 0)
                name = s_eku_names[n].name;
        cf_ext_line(out, 0, "* %s", name ? name : oid ? oid : "?");
    }
}

const cf_ext_def_t cf_ext_def_extended_key_usage = {
    "extended_key_usage", "2.5.29.37",  "Extended Key Usage", 0,          CF_EXT_SIGN,
    s_eku_parse,          s_eku_encode, s_eku_decode,         s_eku_text,
};

/* --- TLS feature ------------------------------------------------------------------------- */

/* TLS_FEATURE_NAMES: the TLS extension numbers of RFC 6066 and RFC 6961, with their aliases. */
static const struct {
    const char *alias; /* accepted input */
    const char *name;  /* normalised name */
    long number;       /* TLS extension number in the DER */
} s_tls_features[] = {
    {"status_request", "status_request", 5},
    {"OCSPMustStaple", "status_request", 5},
    {"status_request_v2", "status_request_v2", 17},
    {"MultipleCertStatusRequest", "status_request_v2", 17},
};
#define S_TLSF_COUNT (sizeof s_tls_features / sizeof s_tls_features[0])

static json_t *s_tlsf_parse(const json_t *value, cf_error_t *err)
{
    if (cf_ext_check_list(value, "", err) != 0)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        const char *s = json_string_value(v);
        const char *name = NULL;
        for (size_t n = 0; s && n < S_TLSF_COUNT && !name; n++)
            if (strcmp(s_tls_features[n].alias, s) == 0)
                name = s_tls_features[n].name;
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", path, "TLS feature must be a string");
            goto fail;
        }
        if (!name) {
            cf_error_set(err, "invalid_value", path, "unknown TLS feature \"%.80s\"", s);
            goto fail;
        }
        if (cf_ext_append(out, json_string(name)) != 0) {
            cf_error_set(err, "internal", "", "out of memory");
            goto fail;
        }
    }
    if (cf_ext_check_unique(out, "", err) != 0)
        goto fail;
    return out;
fail:
    json_decref(out);
    return NULL;
}

/* OpenSSL keeps TLS_FEATURE's item private; the extension method carries it. */
static const ASN1_ITEM *s_tlsf_item(void)
{
    const X509V3_EXT_METHOD *m = X509V3_EXT_get_nid(NID_tlsfeature);
    return m && m->it ? ASN1_ITEM_ptr(m->it) : NULL;
}

static int s_tlsf_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    const ASN1_ITEM *it = s_tlsf_item();
    TLS_FEATURE *tlsf = sk_ASN1_INTEGER_new_null();
    if (!tlsf || !it)
        goto cleanup;
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        long number = strcmp(json_string_value(v), "status_request") == 0 ? 5 : 17;
        ASN1_INTEGER *ai = ASN1_INTEGER_new();
        if (!ai || !ASN1_INTEGER_set(ai, number) || !sk_ASN1_INTEGER_push(tlsf, ai)) {
            ASN1_INTEGER_free(ai);
            goto cleanup;
        }
    }
    rc = cf_ext_i2d(tlsf, it, der, len, err);
cleanup:
    if (rc != 0 && !cf_error_isset(err))
        cf_error_set(err, "internal", "", "could not encode TLS feature");
    sk_ASN1_INTEGER_pop_free(tlsf, ASN1_INTEGER_free);
    return rc;
}

static json_t *s_tlsf_decode(const unsigned char *der, long len, cf_error_t *err)
{
    const ASN1_ITEM *it = s_tlsf_item();
    if (!it) {
        cf_error_set(err, "internal", "", "TLS feature is not supported by OpenSSL");
        return NULL;
    }
    TLS_FEATURE *tlsf = cf_ext_d2i(der, len, it, err);
    if (!tlsf)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; out && i < sk_ASN1_INTEGER_num(tlsf); i++) {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", (size_t)i);
        int64_t n = -1;
        if (!ASN1_INTEGER_get_int64(&n, sk_ASN1_INTEGER_value(tlsf, i)))
            n = -1;
        const char *name = n == 5 ? "status_request" : n == 17 ? "status_request_v2" : NULL;
        if (!name) {
            cf_error_set(err, "unsupported_value", path, "unknown TLS feature");
            json_decref(out);
            out = NULL;
        } else if (json_array_append_new(out, json_string(name))) {
            json_decref(out);
            out = NULL;
        }
    }
    ASN1_item_free((ASN1_VALUE *)tlsf, it);
    if (!out && !cf_error_isset(err))
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

const cf_ext_def_t cf_ext_def_tls_feature = {
    "tls_feature", "1.3.6.1.5.5.7.1.24", "TLS Feature", 0,           CF_EXT_SIGN,
    s_tlsf_parse,  s_tlsf_encode,        s_tlsf_decode, s_list_text,
};

/* --- OCSP no check and precert poison: a NULL value -------------------------------------- */

static json_t *s_null_parse(const json_t *value, cf_error_t *err)
{
    if (value && !json_is_null(value)) {
        cf_error_set(err, "invalid_type", "", "this extension has no value: it must be null");
        return NULL;
    }
    return json_null();
}

static int s_null_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    ASN1_NULL *n = ASN1_NULL_new();
    if (!n) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    int rc = cf_ext_i2d(n, ASN1_ITEM_rptr(ASN1_NULL), der, len, err);
    ASN1_NULL_free(n);
    return rc;
}

static json_t *s_null_decode(const unsigned char *der, long len, cf_error_t *err)
{
    ASN1_NULL *n = cf_ext_d2i(der, len, ASN1_ITEM_rptr(ASN1_NULL), err);
    if (!n)
        return NULL;
    ASN1_NULL_free(n);
    return json_null();
}

static void s_null_text(const json_t *value, cf_ext_buf_t *out)
{
    cf_ext_line(out, 0, "Yes");
}

const cf_ext_def_t cf_ext_def_ocsp_no_check = {
    "ocsp_no_check",
    "1.3.6.1.5.5.7.48.1.5",
    "OCSP No Check",
    0,
    CF_EXT_SIGN | CF_EXT_NO_VALUE,
    s_null_parse,
    s_null_encode,
    s_null_decode,
    s_null_text,
};

const cf_ext_def_t cf_ext_def_precert_poison = {
    "precert_poison",
    "1.3.6.1.4.1.11129.2.4.3",
    "Precert Poison",
    1,
    CF_EXT_MUST_CRITICAL | CF_EXT_NO_VALUE,
    s_null_parse,
    s_null_encode,
    s_null_decode,
    s_null_text,
};

/* --- subject key identifier -------------------------------------------------------------- */

static json_t *s_ski_parse(const json_t *value, cf_error_t *err)
{
    return cf_ext_parse_base64(value, "", err);
}

static int s_ski_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    ASN1_OCTET_STRING *os = cf_ext_octets_from_base64(value, err);
    if (!os)
        return -1;
    int rc = cf_ext_i2d(os, ASN1_ITEM_rptr(ASN1_OCTET_STRING), der, len, err);
    ASN1_OCTET_STRING_free(os);
    return rc;
}

static json_t *s_ski_decode(const unsigned char *der, long len, cf_error_t *err)
{
    ASN1_OCTET_STRING *os = cf_ext_d2i(der, len, ASN1_ITEM_rptr(ASN1_OCTET_STRING), err);
    if (!os)
        return NULL;
    json_t *out =
        cf_ext_base64_from_bytes(ASN1_STRING_get0_data(os), (size_t)ASN1_STRING_length(os));
    ASN1_OCTET_STRING_free(os);
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

static void s_ski_text(const json_t *value, cf_ext_buf_t *out)
{
    char *hex = cf_ext_hex_of_base64(value);
    cf_ext_line(out, 0, "%s", hex ? hex : "?");
    free(hex);
}

const cf_ext_def_t cf_ext_def_subject_key_identifier = {
    "subject_key_identifier",
    "2.5.29.14",
    "Subject Key Identifier",
    0,
    0,
    s_ski_parse,
    s_ski_encode,
    s_ski_decode,
    s_ski_text,
};

/* --- MS certificate template ------------------------------------------------------------- */

/* CertificateTemplate ::= SEQUENCE { templateID OBJECT IDENTIFIER,
 *     templateMajorVersion INTEGER OPTIONAL, templateMinorVersion INTEGER OPTIONAL } */
typedef struct {
    ASN1_OBJECT *template_id; /* the template's OID */
    ASN1_INTEGER *major;      /* optional major version */
    ASN1_INTEGER *minor;      /* optional minor version */
} S_MS_TEMPLATE;

ASN1_SEQUENCE(S_MS_TEMPLATE) =
    {
        ASN1_SIMPLE(S_MS_TEMPLATE, template_id, ASN1_OBJECT),
        ASN1_OPT(S_MS_TEMPLATE, major, ASN1_INTEGER),
        ASN1_OPT(S_MS_TEMPLATE, minor, ASN1_INTEGER),
} static_ASN1_SEQUENCE_END(S_MS_TEMPLATE)

#define S_MS_VERSION_MAX 4294967295LL /* TemplateVersion ::= INTEGER (0..4294967295) */

        static json_t
    * s_ms_parse(const json_t *value, cf_error_t *err)
{
    static const char *const fields[] = {"template_id", "major_version", "minor_version", NULL};
    static const char *const required[] = {"template_id", NULL};
    if (cf_ext_check_object(value, "MS certificate template", fields, required, err) != 0)
        return NULL;
    json_int_t major = 0, minor = 0;
    const json_t *maj = cf_ext_opt(value, "major_version");
    const json_t *min = cf_ext_opt(value, "minor_version");
    if (maj && cf_ext_get_int(maj, "major_version", 0, S_MS_VERSION_MAX, &major, err) != 0)
        return NULL;
    if (min && cf_ext_get_int(min, "minor_version", 0, S_MS_VERSION_MAX, &minor, err) != 0)
        return NULL;
    /* Both versions are untagged INTEGERs: a lone minor version would read back as major. */
    if (min && !maj) {
        cf_error_set(err, "contradictory_fields", "minor_version",
                     "\"minor_version\" requires \"major_version\"");
        return NULL;
    }
    json_t *oid = cf_ext_parse_oid(json_object_get(value, "template_id"), "template_id", err);
    if (!oid)
        return NULL;
    return json_pack("{s:o, s:o, s:o}", "template_id", oid, "major_version",
                     maj ? json_integer(major) : json_null(), "minor_version",
                     min ? json_integer(minor) : json_null());
}

static int s_ms_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    S_MS_TEMPLATE *t = (S_MS_TEMPLATE *)ASN1_item_new(ASN1_ITEM_rptr(S_MS_TEMPLATE));
    if (!t) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    const json_t *maj = cf_ext_opt(value, "major_version");
    const json_t *min = cf_ext_opt(value, "minor_version");
    ASN1_OBJECT_free(t->template_id);
    t->template_id = cf_ext_oid_to_openssl(json_string_value(json_object_get(value, "template_id")),
                                           "template_id", err);
    if (!t->template_id)
        goto cleanup;
    if (maj && !(t->major = cf_ext_int_to_openssl(maj, err)))
        goto cleanup;
    if (min && !(t->minor = cf_ext_int_to_openssl(min, err)))
        goto cleanup;
    rc = cf_ext_i2d(t, ASN1_ITEM_rptr(S_MS_TEMPLATE), der, len, err);
cleanup:
    ASN1_item_free((ASN1_VALUE *)t, ASN1_ITEM_rptr(S_MS_TEMPLATE));
    return rc;
}

static json_t *s_ms_decode(const unsigned char *der, long len, cf_error_t *err)
{
    S_MS_TEMPLATE *t = cf_ext_d2i(der, len, ASN1_ITEM_rptr(S_MS_TEMPLATE), err);
    if (!t)
        return NULL;
    json_t *out = NULL;
    json_t *oid = cf_ext_oid_from_openssl(t->template_id, "template_id", err);
    json_t *maj = !oid       ? NULL
                  : t->major ? cf_ext_int_from_openssl(t->major, false, "major_version", err)
                             : json_null();
    json_t *min = !maj       ? NULL
                  : t->minor ? cf_ext_int_from_openssl(t->minor, false, "minor_version", err)
                             : json_null();
    if (min)
        out = json_pack("{s:o, s:o, s:o}", "template_id", oid, "major_version", maj,
                        "minor_version", min);
    else {
        json_decref(oid);
        json_decref(maj);
    }
    ASN1_item_free((ASN1_VALUE *)t, ASN1_ITEM_rptr(S_MS_TEMPLATE));
    return out;
}

static void s_ms_text(const json_t *value, cf_ext_buf_t *out)
{
    const char *oid = json_string_value(json_object_get(value, "template_id"));
    const json_t *maj = json_object_get(value, "major_version");
    const json_t *min = json_object_get(value, "minor_version");
    cf_ext_line(out, 0, "Template ID: %s", oid ? oid : "?");
    if (json_is_integer(maj))
        cf_ext_line(out, 0, "Major version: %" JSON_INTEGER_FORMAT, json_integer_value(maj));
    if (json_is_integer(min))
        cf_ext_line(out, 0, "Minor version: %" JSON_INTEGER_FORMAT, json_integer_value(min));
}

const cf_ext_def_t cf_ext_def_ms_certificate_template = {
    "ms_certificate_template",
    "1.3.6.1.4.1.311.21.7",
    "MS Certificate Template",
    -1,
    0,
    s_ms_parse,
    s_ms_encode,
    s_ms_decode,
    s_ms_text,
};
