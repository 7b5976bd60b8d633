/* cf_x509_ext_access: authority and subject information access, lists of django-ca's
 * AccessDescriptionModel {"access_method", "access_location"}. The access method may be given
 * by its alias (ACCESS_METHOD_TYPES: ocsp, ca_issuers, ca_repository) and is emitted as a
 * dotted OID; AIA takes ocsp and ca_issuers, SIA only ca_repository. */
#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

#include "cf_general_name.h"
#include "cf_x509_ext_int.h"

#define S_OCSP          "1.3.6.1.5.5.7.48.1"
#define S_CA_ISSUERS    "1.3.6.1.5.5.7.48.2"
#define S_CA_REPOSITORY "1.3.6.1.5.5.7.48.5"

static const struct {
    const char *alias; /* ACCESS_METHOD_TYPES key */
    const char *oid;   /* dotted OID */
    const char *title; /* heading in the text form */
} s_methods[] = {
    {"ocsp", S_OCSP, "OCSP"},
    {"ca_issuers", S_CA_ISSUERS, "CA Issuers"},
    {"ca_repository", S_CA_REPOSITORY, "CA Repository"},
};
#define S_METHOD_COUNT (sizeof s_methods / sizeof s_methods[0])

static const char *const s_aia_methods[] = {S_OCSP, S_CA_ISSUERS, NULL};
static const char *const s_sia_methods[] = {S_CA_REPOSITORY, NULL};

static json_t *s_method_parse(const json_t *v, const char *field, const char *const *acceptable,
                              cf_error_t *err)
{
    if (!json_is_string(v)) {
        cf_error_set(err, "invalid_type", field, "access_method must be a string");
        return NULL;
    }
    const char *s = json_string_value(v);
    json_t *oid = NULL;
    for (size_t i = 0; i < S_METHOD_COUNT && !oid; i++)
        if (strcmp(s_methods[i].alias, s) == 0)
            oid = json_string(s_methods[i].oid);
    if (!oid && strspn(s, "0123456789.") != json_string_length(v)) {
        cf_error_set(err, "invalid_value", field, "unknown access method \"%.80s\"", s);
        return NULL;
    }
    if (!oid && !(oid = cf_ext_parse_oid(v, field, err)))
        return NULL;
    for (const char *const *a = acceptable; *a; a++)
        if (strcmp(*a, json_string_value(oid)) == 0)
            return oid;
    cf_error_set(err, "invalid_value", field,
                 "access method %s is not acceptable for this extension", json_string_value(oid));
    json_decref(oid);
    return NULL;
}

static json_t *s_ads_parse(const json_t *value, const char *const *acceptable, cf_error_t *err)
{
    static const char *const fields[] = {"access_method", "access_location", NULL};
    if (cf_ext_check_list(value, "", err) != 0)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *ad;
    json_array_foreach(value, i, ad)
    {
        char path[CF_ERROR_FIELD_MAX], field[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        if (cf_ext_check_object(ad, "access description", fields, fields, err) != 0) {
            cf_error_prefix_field(err, path);
            goto fail;
        }
        cf_ext_path_key(field, path, "access_method");
        json_t *method =
            s_method_parse(json_object_get(ad, "access_method"), field, acceptable, err);
        if (!method)
            goto fail;
        cf_ext_path_key(field, path, "access_location");
        json_t *location =
            cf_ext_parse_general_name(json_object_get(ad, "access_location"), field, err);
        if (!location) {
            json_decref(method);
            goto fail;
        }
        json_t *item =
            json_pack("{s:o, s:o}", "access_method", method, "access_location", location);
        if (cf_ext_append(out, item) != 0) {
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

static json_t *s_aia_parse(const json_t *value, cf_error_t *err)
{
    return s_ads_parse(value, s_aia_methods, err);
}

static json_t *s_sia_parse(const json_t *value, cf_error_t *err)
{
    return s_ads_parse(value, s_sia_methods, err);
}

/* AIA and SIA share AuthorityInfoAccessSyntax, so one encoder serves both. */
static int s_ads_encode(const json_t *value, unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    AUTHORITY_INFO_ACCESS *aia = sk_ACCESS_DESCRIPTION_new_null();
    if (!aia) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item)
    {
        char path[CF_ERROR_FIELD_MAX], field[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        ACCESS_DESCRIPTION *ad = ACCESS_DESCRIPTION_new();
        if (!ad || !sk_ACCESS_DESCRIPTION_push(aia, ad)) {
            ACCESS_DESCRIPTION_free(ad);
            cf_error_set(err, "internal", "", "out of memory");
            goto cleanup;
        }
        cf_ext_path_key(field, path, "access_method");
        ASN1_OBJECT_free(ad->method);
        ad->method = cf_ext_oid_to_openssl(
            json_string_value(json_object_get(item, "access_method")), field, err);
        if (!ad->method)
            goto cleanup;
        cf_ext_path_key(field, path, "access_location");
        GENERAL_NAME_free(ad->location);
        ad->location = cf_general_name_to_openssl(json_object_get(item, "access_location"), err);
        if (!ad->location) {
            cf_error_prefix_field(err, field);
            goto cleanup;
        }
    }
    rc = cf_ext_i2d(aia, ASN1_ITEM_rptr(AUTHORITY_INFO_ACCESS), der, len, err);
cleanup:
    AUTHORITY_INFO_ACCESS_free(aia);
    return rc;
}

static json_t *s_ads_decode(const unsigned char *der, long len, cf_error_t *err)
{
    AUTHORITY_INFO_ACCESS *aia = cf_ext_d2i(der, len, ASN1_ITEM_rptr(AUTHORITY_INFO_ACCESS), err);
    if (!aia)
        return NULL;
    json_t *out = json_array();
    for (int i = 0; out && i < sk_ACCESS_DESCRIPTION_num(aia); i++) {
        const ACCESS_DESCRIPTION *ad = sk_ACCESS_DESCRIPTION_value(aia, i);
        char path[CF_ERROR_FIELD_MAX], field[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", (size_t)i);
        cf_ext_path_key(field, path, "access_method");
        json_t *method = cf_ext_oid_from_openssl(ad->method, field, err);
        json_t *location = method ? cf_general_name_from_openssl(ad->location, err) : NULL;
        if (method && !location) {
            cf_ext_path_key(field, path, "access_location");
            cf_error_prefix_field(err, field);
        }
        json_t *item =
            location ? json_pack("{s:o, s:o}", "access_method", method, "access_location", location)
                     : NULL;
        if (!location)
            json_decref(method);
        if (!item || json_array_append_new(out, item)) {
            json_decref(out);
            out = NULL;
        }
    }
    AUTHORITY_INFO_ACCESS_free(aia);
    return out;
}

/* Grouped by method in the order methods first occur, like django-ca's text form. */
static void s_ads_text(const json_t *value, cf_ext_buf_t *out)
{
    size_t n = json_array_size(value);
    for (size_t i = 0; i < n; i++) {
        const char *method =
            json_string_value(json_object_get(json_array_get(value, i), "access_method"));
        if (!method)
            continue;
        bool seen = false;
        for (size_t j = 0; j < i && !seen; j++) {
            const char *m =
                json_string_value(json_object_get(json_array_get(value, j), "access_method"));
            seen = m && strcmp(m, method) == 0;
        }
        if (seen)
            continue;
        const char *title = method;
        for (size_t m = 0; m < S_METHOD_COUNT; m++)
            if (strcmp(s_methods[m].oid, method) == 0)
                title = s_methods[m].title;
        cf_ext_line(out, 0, "%s:", title);
        for (size_t j = i; j < n; j++) {
            const json_t *ad = json_array_get(value, j);
            const char *m = json_string_value(json_object_get(ad, "access_method"));
            if (!m || strcmp(m, method) != 0)
                continue;
            char *s = cf_general_name_to_string(json_object_get(ad, "access_location"));
            cf_ext_line(out, 1, "* %s", s ? s : "?");
            free(s);
        }
    }
}

const cf_ext_def_t cf_ext_def_authority_information_access = {
    "authority_information_access",
    "1.3.6.1.5.5.7.1.1",
    "Authority Information Access",
    0,
    CF_EXT_SIGN,
    s_aia_parse,
    s_ads_encode,
    s_ads_decode,
    s_ads_text,
};

const cf_ext_def_t cf_ext_def_subject_information_access = {
    "subject_information_access",
    "1.3.6.1.5.5.7.1.11",
    "Subject Information Access",
    0,
    0,
    s_sia_parse,
    s_ads_encode,
    s_ads_decode,
    s_ads_text,
};
