/* cf_x509_ext_crldp: CRL distribution points, freshest CRL (both lists of django-ca's
 * DistributionPointModel) and the issuing distribution point of CRLs. Reasons are sets:
 * normalised to a sorted list without repeats. A relative name is a single RDN, a SET whose
 * DER order OpenSSL fixes, so it is normalised to that order. */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "cf_x509_ext_int.h"
#include "cf_x509_name.h"

#define S_DER_TRUE 0xFF

/* Sorted by name: the normalised order. Bits of ReasonFlags (RFC 5280 4.2.1.13). */
static const struct {
    const char *name; /* django-ca's reason name */
    int bit;          /* ReasonFlags bit */
} s_reasons[] = {
    {"aa_compromise", 8},          {"affiliation_changed", 3},
    {"ca_compromise", 2},          {"certificate_hold", 6},
    {"cessation_of_operation", 5}, {"key_compromise", 1},
    {"privilege_withdrawn", 7},    {"superseded", 4},
};
#define S_REASON_COUNT (sizeof s_reasons / sizeof s_reasons[0])

/* --- reasons ----------------------------------------------------------------------------- */

static json_t *s_reasons_list(unsigned bits)
{
    json_t *out = json_array();
    for (size_t i = 0; out && i < S_REASON_COUNT; i++) {
        if ((bits & (1u << s_reasons[i].bit)) &&
            json_array_append_new(out, json_string(s_reasons[i].name))) {
            json_decref(out);
            out = NULL;
        }
    }
    return out;
}

static json_t *s_reasons_parse(const json_t *v, const char *field, cf_error_t *err)
{
    if (cf_ext_check_list(v, field, err) != 0)
        return NULL;
    unsigned bits = 0;
    size_t i;
    json_t *r;
    json_array_foreach(v, i, r)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, field, i);
        const char *s = json_string_value(r);
        if (!s) {
            cf_error_set(err, "invalid_type", path, "reason must be a string");
            return NULL;
        }
        size_t n = 0;
        while (n < S_REASON_COUNT && strcmp(s_reasons[n].name, s) != 0)
            n++;
        if (n == S_REASON_COUNT) {
            cf_error_set(err, "invalid_value", path, "unknown reason \"%.80s\"", s);
            return NULL;
        }
        bits |= 1u << s_reasons[n].bit;
    }
    json_t *out = s_reasons_list(bits);
    if (!out)
        cf_error_set(err, "internal", field, "out of memory");
    return out;
}

static ASN1_BIT_STRING *s_reasons_to_openssl(const json_t *list, cf_error_t *err)
{
    ASN1_BIT_STRING *bs = ASN1_BIT_STRING_new();
    size_t i;
    json_t *r;
    json_array_foreach(list, i, r)
    {
        const char *s = json_string_value(r);
        for (size_t n = 0; bs && s && n < S_REASON_COUNT; n++) {
            /* set_bit trims trailing zero octets, as OpenSSL's own config code does. */
            if (strcmp(s_reasons[n].name, s) == 0 &&
                !ASN1_BIT_STRING_set_bit(bs, s_reasons[n].bit, 1)) {
                ASN1_BIT_STRING_free(bs);
                bs = NULL;
            }
        }
    }
    if (!bs)
        cf_error_set(err, "internal", "", "out of memory");
    return bs;
}

static json_t *s_reasons_from_openssl(const ASN1_BIT_STRING *bs)
{
    unsigned bits = 0;
    for (size_t n = 0; n < S_REASON_COUNT; n++)
        if (ASN1_BIT_STRING_get_bit(bs, s_reasons[n].bit))
            bits |= 1u << s_reasons[n].bit;
    return s_reasons_list(bits);
}

/* --- distribution point names ------------------------------------------------------------ */

/* FULL_NAME (general names) or RELATIVE_NAME (a name model) as a DIST_POINT_NAME; NULL
 * without error when both are null. */
static DIST_POINT_NAME *s_dpn_to_openssl(const json_t *full_name, const json_t *relative_name,
                                         cf_error_t *err)
{
    if (!full_name && !relative_name)
        return NULL;
    DIST_POINT_NAME *dpn = DIST_POINT_NAME_new();
    X509_NAME *name = NULL;
    if (!dpn)
        goto fail;
    if (full_name) {
        dpn->type = 0;
        dpn->name.fullname = cf_ext_general_names_to_openssl(full_name, "full_name", err);
        if (!dpn->name.fullname)
            goto fail;
        return dpn;
    }
    dpn->type = 1;
    name = cf_name_to_openssl(relative_name, err);
    if (!name) {
        cf_error_prefix_field(err, "relative_name");
        goto fail;
    }
    dpn->name.relativename = sk_X509_NAME_ENTRY_new_null();
    if (!dpn->name.relativename)
        goto fail;
    for (int i = 0; i < X509_NAME_entry_count(name); i++) {
        X509_NAME_ENTRY *e = X509_NAME_ENTRY_dup(X509_NAME_get_entry(name, i));
        if (!e || !sk_X509_NAME_ENTRY_push(dpn->name.relativename, e)) {
            X509_NAME_ENTRY_free(e);
            goto fail;
        }
    }
    X509_NAME_free(name);
    return dpn;
fail:
    if (!cf_error_isset(err))
        cf_error_set(err, "internal", "", "out of memory");
    X509_NAME_free(name);
    DIST_POINT_NAME_free(dpn);
    return NULL;
}

/* Set "full_name" and "relative_name" of OUT from DPN (which may be NULL). 0 or -1. */
static int s_dpn_to_model(const DIST_POINT_NAME *dpn, json_t *out, cf_error_t *err)
{
    json_t *full = json_null(), *rel = json_null();
    if (dpn && dpn->type == 0) {
        full = cf_ext_general_names_from_openssl(dpn->name.fullname, "full_name", err);
    } else if (dpn && dpn->type == 1) {
        X509_NAME *name = X509_NAME_new();
        for (int i = 0; name && i < sk_X509_NAME_ENTRY_num(dpn->name.relativename); i++) {
            /* Each attribute its own RDN: the name model is a flat list anyway. */
            if (!X509_NAME_add_entry(name, sk_X509_NAME_ENTRY_value(dpn->name.relativename, i), -1,
                                     0)) {
                X509_NAME_free(name);
                name = NULL;
            }
        }
        rel = name ? cf_name_from_openssl(name, err) : NULL;
        if (name && !rel)
            cf_error_prefix_field(err, "relative_name");
        X509_NAME_free(name);
    }
    if (!full || !rel) {
        json_decref(full);
        json_decref(rel);
        if (!cf_error_isset(err))
            cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    if (cf_ext_set(out, "full_name", full) || cf_ext_set(out, "relative_name", rel)) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    return 0;
}

/* A relative name in DER order: encode the RDN as OpenSSL would, read it back. */
static json_t *s_relative_name_parse(const json_t *v, cf_error_t *err)
{
    if (cf_ext_check_list(v, "relative_name", err) != 0)
        return NULL;
    json_t *name = cf_name_parse(v, err);
    if (!name) {
        cf_error_prefix_field(err, "relative_name");
        return NULL;
    }
    if (json_array_size(name) < 2)
        return name;
    json_t *out = NULL;
    unsigned char *der = NULL;
    int len = 0;
    DIST_POINT_NAME *back = NULL;
    DIST_POINT_NAME *dpn = s_dpn_to_openssl(NULL, name, err);
    if (!dpn || cf_ext_i2d(dpn, ASN1_ITEM_rptr(DIST_POINT_NAME), &der, &len, err) != 0)
        goto cleanup;
    back = cf_ext_d2i(der, len, ASN1_ITEM_rptr(DIST_POINT_NAME), err);
    json_t *tmp = back ? json_object() : NULL;
    if (tmp && s_dpn_to_model(back, tmp, err) == 0)
        out = json_incref(json_object_get(tmp, "relative_name"));
    json_decref(tmp);
cleanup:
    OPENSSL_free(der);
    DIST_POINT_NAME_free(dpn);
    DIST_POINT_NAME_free(back);
    json_decref(name);
    if (!out && !cf_error_isset(err))
        cf_error_set(err, "internal", "relative_name", "out of memory");
    return out;
}

static void s_dpn_text(const json_t *dp, cf_ext_buf_t *out, int indent)
{
    const json_t *full = json_object_get(dp, "full_name");
    const json_t *rel = json_object_get(dp, "relative_name");
    if (json_is_array(full)) {
        cf_ext_line(out, indent, "Full Name:");
        cf_ext_text_general_names(out, indent + 1, full);
    }
    if (json_is_array(rel)) {
        char *s = cf_name_to_string(rel);
        cf_ext_line(out, indent, "Relative Name: %s", s ? s : "?");
        free(s);
    }
}

static void s_reasons_text(const char *title, const json_t *reasons, cf_ext_buf_t *out, int indent)
{
    if (!json_is_array(reasons))
        return;
    cf_ext_line(out, indent, "%s:", title);
    size_t i;
    json_t *r;
    json_array_foreach(reasons, i, r)
    {
        cf_ext_line(out, indent + 1, "* %s", json_is_string(r) ? json_string_value(r) : "?");
    }
}

/* --- distribution points ----------------------------------------------------------------- */

static json_t *s_dp_parse(const json_t *in, cf_error_t *err)
{
    static const char *const fields[] = {"full_name", "relative_name", "crl_issuer", "reasons",
                                         NULL};
    if (cf_ext_check_object(in, "distribution point", fields, NULL, err) != 0)
        return NULL;
    const json_t *full = cf_ext_opt(in, "full_name");
    const json_t *rel = cf_ext_opt(in, "relative_name");
    const json_t *issuer = cf_ext_opt(in, "crl_issuer");
    const json_t *reasons = cf_ext_opt(in, "reasons");
    if (full && rel) {
        cf_error_set(err, "contradictory_fields", "relative_name",
                     "only one of full_name and relative_name may be given");
        return NULL;
    }
    if (!full && !rel && !issuer) {
        cf_error_set(err, "missing_field", "",
                     "one of full_name, relative_name or crl_issuer must be given");
        return NULL;
    }
    json_t *out = json_object();
    if (!out ||
        cf_ext_set(out, "full_name",
                   full ? cf_ext_parse_general_names(full, "full_name", err) : json_null()) ||
        cf_ext_set(out, "relative_name", rel ? s_relative_name_parse(rel, err) : json_null()) ||
        cf_ext_set(out, "crl_issuer",
                   issuer ? cf_ext_parse_general_names(issuer, "crl_issuer", err) : json_null()) ||
        cf_ext_set(out, "reasons",
                   reasons ? s_reasons_parse(reasons, "reasons", err) : json_null())) {
        json_decref(out);
        return NULL;
    }
    return out;
}

static json_t *s_dps_parse(const json_t *value, cf_error_t *err)
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
        json_t *dp = s_dp_parse(v, err);
        if (!dp) {
            cf_error_prefix_field(err, path);
            json_decref(out);
            return NULL;
        }
        if (cf_ext_append(out, dp) != 0) {
            cf_error_set(err, "internal", "", "out of memory");
            json_decref(out);
            return NULL;
        }
    }
    if (cf_ext_check_unique(out, "", err) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* CRL distribution points and freshest CRL share CRLDistributionPoints. */
static int s_dps_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    CRL_DIST_POINTS *dps = sk_DIST_POINT_new_null();
    if (!dps) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        DIST_POINT *dp = DIST_POINT_new();
        if (!dp || !sk_DIST_POINT_push(dps, dp)) {
            DIST_POINT_free(dp);
            cf_error_set(err, "internal", "", "out of memory");
            goto cleanup;
        }
        const json_t *full = cf_ext_opt(item, "full_name");
        const json_t *rel = cf_ext_opt(item, "relative_name");
        const json_t *issuer = cf_ext_opt(item, "crl_issuer");
        const json_t *reasons = cf_ext_opt(item, "reasons");
        dp->distpoint = s_dpn_to_openssl(full, rel, err);
        if ((full || rel) && !dp->distpoint)
            goto fail_item;
        if (issuer && !(dp->CRLissuer = cf_ext_general_names_to_openssl(issuer, "crl_issuer", err)))
            goto fail_item;
        if (reasons && !(dp->reasons = s_reasons_to_openssl(reasons, err)))
            goto fail_item;
        continue;
    fail_item:
        cf_error_prefix_field(err, path);
        goto cleanup;
    }
    rc = cf_ext_i2d(dps, ASN1_ITEM_rptr(CRL_DIST_POINTS), der, len, err);
cleanup:
    CRL_DIST_POINTS_free(dps);
    return rc;
}

static json_t *s_dps_decode(const unsigned char *der, long len, cf_error_t *err)
{
    CRL_DIST_POINTS *dps = cf_ext_d2i(der, len, ASN1_ITEM_rptr(CRL_DIST_POINTS), err);
    if (!dps)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; out && i < sk_DIST_POINT_num(dps); i++) {
        const DIST_POINT *dp = sk_DIST_POINT_value(dps, i);
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", (size_t)i);
        json_t *item = json_object();
        bool bad = !item || s_dpn_to_model(dp->distpoint, item, err) ||
                   cf_ext_set(item, "crl_issuer",
                              dp->CRLissuer ? cf_ext_general_names_from_openssl(dp->CRLissuer,
                                                                                "crl_issuer", err)
                                            : json_null()) ||
                   cf_ext_set(item, "reasons",
                              dp->reasons ? s_reasons_from_openssl(dp->reasons) : json_null());
        if (bad)
            json_decref(item);
        /* json_array_append_new releases ITEM itself when it fails. */
        if (bad || json_array_append_new(out, item)) {
            if (!cf_error_isset(err))
                cf_error_set(err, "internal", "", "out of memory");
            cf_error_prefix_field(err, path);
            json_decref(out);
            out = NULL;
        }
    }
    CRL_DIST_POINTS_free(dps);
    return out;
}

static void s_dps_text(const json_t *value, cf_ext_buf_t *out)
{
    size_t i;
    json_t *dp;
    json_array_foreach(value, i, dp)
    {
        cf_ext_line(out, 0, "* DistributionPoint:");
        s_dpn_text(dp, out, 1);
        const json_t *issuer = json_object_get(dp, "crl_issuer");
        if (json_is_array(issuer)) {
            cf_ext_line(out, 1, "CRL Issuer:");
            cf_ext_text_general_names(out, 2, issuer);
        }
        s_reasons_text("Reasons", json_object_get(dp, "reasons"), out, 1);
    }
}

const cf_ext_def_t cf_ext_def_crl_distribution_points = {
    "crl_distribution_points",
    "2.5.29.31",
    "CRL Distribution Points",
    0,
    CF_EXT_SIGN,
    s_dps_parse,
    s_dps_encode,
    s_dps_decode,
    s_dps_text,
};

const cf_ext_def_t cf_ext_def_freshest_crl = {
    "freshest_crl", "2.5.29.46",  "Freshest CRL", 0,          CF_EXT_SIGN,
    s_dps_parse,    s_dps_encode, s_dps_decode,   s_dps_text,
};

/* --- issuing distribution point ---------------------------------------------------------- */

/* The four scope flags, of which at most one may be set (as cryptography requires). */
static const char *const s_idp_flags[] = {"only_contains_user_certs", "only_contains_ca_certs",
                                          "indirect_crl", "only_contains_attribute_certs", NULL};

static json_t *s_idp_parse(const json_t *value, cf_error_t *err)
{
    static const char *const fields[] = {"only_contains_user_certs",
                                         "only_contains_ca_certs",
                                         "indirect_crl",
                                         "only_contains_attribute_certs",
                                         "only_some_reasons",
                                         "full_name",
                                         "relative_name",
                                         NULL};
    if (cf_ext_check_object(value, "issuing distribution point", fields, NULL, err) != 0)
        return NULL;
    json_t *out = json_object();
    if (!out) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    const char *first = NULL;
    for (size_t i = 0; s_idp_flags[i]; i++) {
        bool flag;
        if (cf_ext_get_bool(value, s_idp_flags[i], false, &flag, err) != 0)
            goto fail;
        if (flag && first) {
            cf_error_set(err, "contradictory_fields", s_idp_flags[i],
                         "only one of only_contains_user_certs, only_contains_ca_certs, "
                         "indirect_crl and only_contains_attribute_certs may be set (\"%s\" is)",
                         first);
            goto fail;
        }
        if (flag)
            first = s_idp_flags[i];
        if (cf_ext_set(out, s_idp_flags[i], json_boolean(flag)))
            goto fail;
    }
    const json_t *reasons = cf_ext_opt(value, "only_some_reasons");
    const json_t *full = cf_ext_opt(value, "full_name");
    const json_t *rel = cf_ext_opt(value, "relative_name");
    if (full && rel) {
        cf_error_set(err, "contradictory_fields", "relative_name",
                     "only one of full_name and relative_name may be given");
        goto fail;
    }
    if (!first && !reasons && !full && !rel) {
        cf_error_set(err, "missing_field", "",
                     "an issuing distribution point needs at least one field set");
        goto fail;
    }
    if (cf_ext_set(out, "only_some_reasons",
                   reasons ? s_reasons_parse(reasons, "only_some_reasons", err) : json_null()) ||
        cf_ext_set(out, "full_name",
                   full ? cf_ext_parse_general_names(full, "full_name", err) : json_null()) ||
        cf_ext_set(out, "relative_name", rel ? s_relative_name_parse(rel, err) : json_null()))
        goto fail;
    return out;
fail:
    if (!cf_error_isset(err))
        cf_error_set(err, "internal", "", "out of memory");
    json_decref(out);
    return NULL;
}

static int s_idp_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    ISSUING_DIST_POINT *idp = ISSUING_DIST_POINT_new();
    if (!idp) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    const json_t *full = cf_ext_opt(value, "full_name");
    const json_t *rel = cf_ext_opt(value, "relative_name");
    const json_t *reasons = cf_ext_opt(value, "only_some_reasons");
    idp->distpoint = s_dpn_to_openssl(full, rel, err);
    if ((full || rel) && !idp->distpoint)
        goto cleanup;
    idp->onlyuser =
        json_is_true(json_object_get(value, "only_contains_user_certs")) ? S_DER_TRUE : 0;
    idp->onlyCA = json_is_true(json_object_get(value, "only_contains_ca_certs")) ? S_DER_TRUE : 0;
    idp->indirectCRL = json_is_true(json_object_get(value, "indirect_crl")) ? S_DER_TRUE : 0;
    idp->onlyattr =
        json_is_true(json_object_get(value, "only_contains_attribute_certs")) ? S_DER_TRUE : 0;
    if (reasons && !(idp->onlysomereasons = s_reasons_to_openssl(reasons, err)))
        goto cleanup;
    rc = cf_ext_i2d(idp, ASN1_ITEM_rptr(ISSUING_DIST_POINT), der, len, err);
cleanup:
    ISSUING_DIST_POINT_free(idp);
    return rc;
}

static json_t *s_idp_decode(const unsigned char *der, long len, cf_error_t *err)
{
    ISSUING_DIST_POINT *idp = cf_ext_d2i(der, len, ASN1_ITEM_rptr(ISSUING_DIST_POINT), err);
    if (!idp)
        return NULL;
    json_t *out = json_object();
    if (!out || cf_ext_set(out, "only_contains_user_certs", json_boolean(idp->onlyuser > 0)) ||
        cf_ext_set(out, "only_contains_ca_certs", json_boolean(idp->onlyCA > 0)) ||
        cf_ext_set(out, "indirect_crl", json_boolean(idp->indirectCRL > 0)) ||
        cf_ext_set(out, "only_contains_attribute_certs", json_boolean(idp->onlyattr > 0)) ||
        cf_ext_set(out, "only_some_reasons",
                   idp->onlysomereasons ? s_reasons_from_openssl(idp->onlysomereasons)
                                        : json_null()) ||
        s_dpn_to_model(idp->distpoint, out, err)) {
        if (!cf_error_isset(err))
            cf_error_set(err, "internal", "", "out of memory");
        json_decref(out);
        out = NULL;
    }
    ISSUING_DIST_POINT_free(idp);
    return out;
}

static void s_idp_text(const json_t *value, cf_ext_buf_t *out)
{
    s_dpn_text(value, out, 0);
    for (size_t i = 0; s_idp_flags[i]; i++)
        if (json_is_true(json_object_get(value, s_idp_flags[i])))
            cf_ext_line(out, 0, "%s: true", s_idp_flags[i]);
    s_reasons_text("Only Some Reasons", json_object_get(value, "only_some_reasons"), out, 0);
}

const cf_ext_def_t cf_ext_def_issuing_distribution_point = {
    "issuing_distribution_point",
    "2.5.29.28",
    "Issuing Distribution Point",
    1,
    0,
    s_idp_parse,
    s_idp_encode,
    s_idp_decode,
    s_idp_text,
};
