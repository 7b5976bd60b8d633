/* cf_x509_ext_names: the extension models built from general names: subject and issuer
 * alternative name, name constraints and authority key identifier. Every general name goes
 * through cf_general_name.h. */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "cf_general_name.h"
#include "cf_x509_ext_int.h"

/* --- subject / issuer alternative name --------------------------------------------------- */

static json_t *s_alt_parse(const json_t *value, cf_error_t *err)
{
    return cf_ext_parse_general_names(value, "", err);
}

static int s_alt_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    GENERAL_NAMES *gns = cf_ext_general_names_to_openssl(value, "", err);
    if (!gns)
        return -1;
    int rc = cf_ext_i2d(gns, ASN1_ITEM_rptr(GENERAL_NAMES), der, len, err);
    GENERAL_NAMES_free(gns);
    return rc;
}

static json_t *s_alt_decode(const unsigned char *der, long len, cf_error_t *err)
{
    GENERAL_NAMES *gns = cf_ext_d2i(der, len, ASN1_ITEM_rptr(GENERAL_NAMES), err);
    if (!gns)
        return NULL;
    json_t *out = cf_ext_general_names_from_openssl(gns, "", err);
    GENERAL_NAMES_free(gns);
    return out;
}

static void s_alt_text(const json_t *value, cf_ext_buf_t *out)
{
    cf_ext_text_general_names(out, 0, value);
}

const cf_ext_def_t cf_ext_def_subject_alternative_name = {
    "subject_alternative_name",
    "2.5.29.17",
    "Subject Alternative Name",
    0,
    CF_EXT_SIGN,
    s_alt_parse,
    s_alt_encode,
    s_alt_decode,
    s_alt_text,
};

const cf_ext_def_t cf_ext_def_issuer_alternative_name = {
    "issuer_alternative_name",
    "2.5.29.18",
    "Issuer Alternative Name",
    0,
    CF_EXT_SIGN,
    s_alt_parse,
    s_alt_encode,
    s_alt_decode,
    s_alt_text,
};

/* --- name constraints -------------------------------------------------------------------- */

static const char *const s_nc_fields[] = {"permitted_subtrees", "excluded_subtrees", NULL};

static json_t *s_nc_parse(const json_t *value, cf_error_t *err)
{
    if (cf_ext_check_object(value, "name constraints", s_nc_fields, NULL, err) != 0)
        return NULL;
    json_t *out = json_object();
    bool any = false;
    for (size_t i = 0; s_nc_fields[i]; i++) {
        const json_t *v = cf_ext_opt(value, s_nc_fields[i]);
        json_t *names = v ? cf_ext_parse_general_names(v, s_nc_fields[i], err) : json_null();
        if (!names || cf_ext_set(out, s_nc_fields[i], names)) {
            json_decref(out);
            return NULL;
        }
        any = any || v;
    }
    if (!any) {
        cf_error_set(err, "missing_field", "",
                     "at least one of permitted_subtrees and excluded_subtrees must be given");
        json_decref(out);
        return NULL;
    }
    return out;
}

/* A list of general names as GENERAL_SUBTREEs (no minimum or maximum, as RFC 5280 wants). */
static STACK_OF(GENERAL_SUBTREE) *
    s_subtrees(const json_t *list, const char *field, cf_error_t *err)
{
    GENERAL_NAMES *gns = cf_ext_general_names_to_openssl(list, field, err);
    if (!gns)
        return NULL;
    STACK_OF(GENERAL_SUBTREE) *sk = sk_GENERAL_SUBTREE_new_null();
    GENERAL_NAME *gn;
    while (sk && (gn = sk_GENERAL_NAME_shift(gns)) != NULL) {
        GENERAL_SUBTREE *st = GENERAL_SUBTREE_new();
        if (!st || !sk_GENERAL_SUBTREE_push(sk, st)) {
            GENERAL_SUBTREE_free(st);
            GENERAL_NAME_free(gn);
            sk_GENERAL_SUBTREE_pop_free(sk, GENERAL_SUBTREE_free);
            sk = NULL;
            break;
        }
        GENERAL_NAME_free(st->base);
        st->base = gn;
    }
    GENERAL_NAMES_free(gns);
    if (!sk)
        cf_error_set(err, "internal", field, "out of memory");
    return sk;
}

static int s_nc_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    NAME_CONSTRAINTS *nc = NAME_CONSTRAINTS_new();
    if (!nc) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    const json_t *permitted = cf_ext_opt(value, "permitted_subtrees");
    const json_t *excluded = cf_ext_opt(value, "excluded_subtrees");
    if (permitted && !(nc->permittedSubtrees = s_subtrees(permitted, "permitted_subtrees", err)))
        goto cleanup;
    if (excluded && !(nc->excludedSubtrees = s_subtrees(excluded, "excluded_subtrees", err)))
        goto cleanup;
    rc = cf_ext_i2d(nc, ASN1_ITEM_rptr(NAME_CONSTRAINTS), der, len, err);
cleanup:
    NAME_CONSTRAINTS_free(nc);
    return rc;
}

static json_t *s_subtrees_model(const STACK_OF(GENERAL_SUBTREE) * sk, const char *field,
                                cf_error_t *err)
{
    if (!sk)
        return json_null();
    /* A view of the bases: the stack borrows them from the subtrees. */
    GENERAL_NAMES *gns = sk_GENERAL_NAME_new_null();
    for (int i = 0; gns && i < sk_GENERAL_SUBTREE_num(sk); i++) {
        if (!sk_GENERAL_NAME_push(gns, sk_GENERAL_SUBTREE_value(sk, i)->base)) {
            sk_GENERAL_NAME_free(gns);
            gns = NULL;
        }
    }
    if (!gns) {
        cf_error_set(err, "internal", field, "out of memory");
        return NULL;
    }
    json_t *out = cf_ext_general_names_from_openssl(gns, field, err);
    sk_GENERAL_NAME_free(gns);
    return out;
}

static json_t *s_nc_decode(const unsigned char *der, long len, cf_error_t *err)
{
    NAME_CONSTRAINTS *nc = cf_ext_d2i(der, len, ASN1_ITEM_rptr(NAME_CONSTRAINTS), err);
    if (!nc)
        return NULL;
    json_t *out = json_object();
    if (!out ||
        cf_ext_set(out, "permitted_subtrees",
                   s_subtrees_model(nc->permittedSubtrees, "permitted_subtrees", err)) ||
        cf_ext_set(out, "excluded_subtrees",
                   s_subtrees_model(nc->excludedSubtrees, "excluded_subtrees", err))) {
        json_decref(out);
        out = NULL;
    }
    NAME_CONSTRAINTS_free(nc);
    return out;
}

static void s_nc_text(const json_t *value, cf_ext_buf_t *out)
{
    const json_t *permitted = json_object_get(value, "permitted_subtrees");
    const json_t *excluded = json_object_get(value, "excluded_subtrees");
    if (json_is_array(permitted)) {
        cf_ext_line(out, 0, "Permitted:");
        cf_ext_text_general_names(out, 1, permitted);
    }
    if (json_is_array(excluded)) {
        cf_ext_line(out, 0, "Excluded:");
        cf_ext_text_general_names(out, 1, excluded);
    }
}

const cf_ext_def_t cf_ext_def_name_constraints = {
    "name_constraints", "2.5.29.30", "Name Constraints", 1,         0,
    s_nc_parse,         s_nc_encode, s_nc_decode,        s_nc_text,
};

/* --- authority key identifier ------------------------------------------------------------ */

static json_t *s_aki_parse(const json_t *value, cf_error_t *err)
{
    static const char *const fields[] = {"key_identifier", "authority_cert_issuer",
                                         "authority_cert_serial_number", NULL};
    static const char *const required[] = {"key_identifier", NULL};
    if (cf_ext_check_object(value, "authority key identifier", fields, required, err) != 0)
        return NULL;
    const json_t *kid = cf_ext_opt(value, "key_identifier");
    const json_t *issuer = cf_ext_opt(value, "authority_cert_issuer");
    const json_t *serial = cf_ext_opt(value, "authority_cert_serial_number");
    /* RFC 5280 4.2.1.1: issuer and serial come together or not at all. */
    if (!issuer != !serial) {
        cf_error_set(err, "contradictory_fields",
                     issuer ? "authority_cert_issuer" : "authority_cert_serial_number",
                     "authority_cert_issuer and authority_cert_serial_number must both be given "
                     "or both be null");
        return NULL;
    }
    if (!kid && !issuer) {
        cf_error_set(err, "missing_field", "key_identifier",
                     "at least one of key_identifier or authority_cert_issuer and "
                     "authority_cert_serial_number must be given");
        return NULL;
    }
    json_t *out = json_object();
    if (!out ||
        cf_ext_set(out, "key_identifier",
                   kid ? cf_ext_parse_base64(kid, "key_identifier", err) : json_null()) ||
        cf_ext_set(out, "authority_cert_issuer",
                   issuer ? cf_ext_parse_general_names(issuer, "authority_cert_issuer", err)
                          : json_null()) ||
        cf_ext_set(out, "authority_cert_serial_number",
                   serial ? cf_ext_parse_bigint(serial, "authority_cert_serial_number", err)
                          : json_null())) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static int s_aki_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    AUTHORITY_KEYID *aki = AUTHORITY_KEYID_new();
    if (!aki) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    const json_t *kid = cf_ext_opt(value, "key_identifier");
    const json_t *issuer = cf_ext_opt(value, "authority_cert_issuer");
    const json_t *serial = cf_ext_opt(value, "authority_cert_serial_number");
    if (kid && !(aki->keyid = cf_ext_octets_from_base64(kid, err)))
        goto cleanup;
    if (issuer &&
        !(aki->issuer = cf_ext_general_names_to_openssl(issuer, "authority_cert_issuer", err)))
        goto cleanup;
    if (serial && !(aki->serial = cf_ext_int_to_openssl(serial, err)))
        goto cleanup;
    rc = cf_ext_i2d(aki, ASN1_ITEM_rptr(AUTHORITY_KEYID), der, len, err);
cleanup:
    AUTHORITY_KEYID_free(aki);
    return rc;
}

static json_t *s_aki_decode(const unsigned char *der, long len, cf_error_t *err)
{
    AUTHORITY_KEYID *aki = cf_ext_d2i(der, len, ASN1_ITEM_rptr(AUTHORITY_KEYID), err);
    if (!aki)
        return NULL;
    json_t *out = json_object();
    if (!out ||
        cf_ext_set(out, "key_identifier",
                   aki->keyid ? cf_ext_base64_from_bytes(ASN1_STRING_get0_data(aki->keyid),
                                                         (size_t)ASN1_STRING_length(aki->keyid))
                              : json_null()) ||
        cf_ext_set(out, "authority_cert_issuer",
                   aki->issuer ? cf_ext_general_names_from_openssl(aki->issuer,
                                                                   "authority_cert_issuer", err)
                               : json_null()) ||
        cf_ext_set(out, "authority_cert_serial_number",
                   aki->serial ? cf_ext_int_from_openssl(aki->serial, true,
                                                         "authority_cert_serial_number", err)
                               : json_null())) {
        json_decref(out);
        out = NULL;
    }
    AUTHORITY_KEYID_free(aki);
    return out;
}

static void s_aki_text(const json_t *value, cf_ext_buf_t *out)
{
    const json_t *kid = json_object_get(value, "key_identifier");
    const json_t *issuer = json_object_get(value, "authority_cert_issuer");
    const json_t *serial = json_object_get(value, "authority_cert_serial_number");
    if (json_is_string(kid)) {
        char *hex = cf_ext_hex_of_base64(kid);
        cf_ext_line(out, 0, "Key ID: %s", hex ? hex : "?");
        free(hex);
    }
    if (json_is_array(issuer)) {
        cf_ext_line(out, 0, "Issuer:");
        cf_ext_text_general_names(out, 1, issuer);
    }
    if (json_is_integer(serial))
        cf_ext_line(out, 0, "Serial: %" JSON_INTEGER_FORMAT, json_integer_value(serial));
    else if (json_is_string(serial))
        cf_ext_line(out, 0, "Serial: %s", json_string_value(serial));
}

const cf_ext_def_t cf_ext_def_authority_key_identifier = {
    "authority_key_identifier",
    "2.5.29.35",
    "Authority Key Identifier",
    0,
    0,
    s_aki_parse,
    s_aki_encode,
    s_aki_decode,
    s_aki_text,
};
