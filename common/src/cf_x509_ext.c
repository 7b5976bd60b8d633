/* cf_x509_ext: the table of extension models and the entry points that dispatch through it:
 * parsing (type, default critical, value), conversion to and from OpenSSL, lists of
 * extensions of certificates, requests and CRLs, text, and the signing rule. The models
 * themselves live in cf_x509_ext_{access,crldp,policy,simple,names,sct}.c; the "unknown" model
 * for OIDs without one lives here because it is the dispatcher's fallback. */
#include "cf_x509_ext.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>

#include "cf_x509_ext_int.h"
#include "cf_x509_name.h"

#define S_UNKNOWN_TYPE "unknown"

/* Sorted by type for reading; lookups are linear (the table is short). */
static const cf_ext_def_t *const s_defs[] = {
    &cf_ext_def_authority_information_access,
    &cf_ext_def_authority_key_identifier,
    &cf_ext_def_basic_constraints,
    &cf_ext_def_certificate_policies,
    &cf_ext_def_crl_distribution_points,
    &cf_ext_def_crl_number,
    &cf_ext_def_delta_crl_indicator,
    &cf_ext_def_extended_key_usage,
    &cf_ext_def_freshest_crl,
    &cf_ext_def_inhibit_any_policy,
    &cf_ext_def_issuer_alternative_name,
    &cf_ext_def_issuing_distribution_point,
    &cf_ext_def_key_usage,
    &cf_ext_def_ms_certificate_template,
    &cf_ext_def_name_constraints,
    &cf_ext_def_ocsp_no_check,
    &cf_ext_def_policy_constraints,
    &cf_ext_def_precert_poison,
    &cf_ext_def_precertificate_signed_certificate_timestamps,
    &cf_ext_def_signed_certificate_timestamps,
    &cf_ext_def_subject_alternative_name,
    &cf_ext_def_subject_information_access,
    &cf_ext_def_subject_key_identifier,
    &cf_ext_def_tls_feature,
    NULL,
};

static const cf_ext_def_t *s_def_by_type(const char *type)
{
    for (size_t i = 0; type && s_defs[i]; i++)
        if (strcmp(s_defs[i]->type, type) == 0)
            return s_defs[i];
    return NULL;
}

static const cf_ext_def_t *s_def_by_oid(const char *oid)
{
    for (size_t i = 0; oid && s_defs[i]; i++)
        if (strcmp(s_defs[i]->oid, oid) == 0)
            return s_defs[i];
    return NULL;
}

const char *cf_extension_oid(const char *type)
{
    const cf_ext_def_t *def = s_def_by_type(type);
    return def ? def->oid : NULL;
}

const char *cf_extension_type_from_oid(const char *oid)
{
    const cf_ext_def_t *def = s_def_by_oid(oid);
    return def ? def->type : NULL;
}

const char *cf_extension_name(const char *type)
{
    if (type && strcmp(type, S_UNKNOWN_TYPE) == 0)
        return "Unknown Extension";
    const cf_ext_def_t *def = s_def_by_type(type);
    return def ? def->name : NULL;
}

int cf_extension_default_critical(const char *type, bool *critical)
{
    const cf_ext_def_t *def = s_def_by_type(type);
    if (!def || def->default_critical < 0)
        return -1;
    *critical = def->default_critical == 1;
    return 0;
}

bool cf_extension_sign_allowed(const char *type)
{
    const cf_ext_def_t *def = s_def_by_type(type);
    return def && (def->flags & CF_EXT_SIGN);
}

bool cf_extension_read_only(const char *type)
{
    const cf_ext_def_t *def = s_def_by_type(type);
    return def && (def->flags & CF_EXT_READ_ONLY);
}

/* --- the unknown model ------------------------------------------------------------------- */

static json_t *s_unknown_parse(const json_t *value, cf_error_t *err)
{
    static const char *const fields[] = {"oid", "value", NULL};
    if (cf_ext_check_object(value, "unrecognized extension value", fields, fields, err) != 0)
        return NULL;
    json_t *oid = cf_ext_parse_oid(json_object_get(value, "oid"), "oid", err);
    if (!oid)
        return NULL;
    /* A modelled OID must use its model: otherwise "unknown" would smuggle, say, a basic
     * constraints extension past every check. */
    const cf_ext_def_t *def = s_def_by_oid(json_string_value(oid));
    if (def) {
        cf_error_set(err, "invalid_value", "oid",
                     "object identifier %s has its own model: use type \"%s\"",
                     json_string_value(oid), def->type);
        json_decref(oid);
        return NULL;
    }
    json_t *raw = cf_ext_parse_base64(json_object_get(value, "value"), "value", err);
    json_t *out = raw ? json_object() : NULL;
    if (!out || cf_ext_set(out, "oid", json_incref(oid)) || cf_ext_set(out, "value", raw)) {
        if (raw && !out)
            json_decref(raw);
        json_decref(out);
        out = NULL;
        if (!cf_error_isset(err))
            cf_error_set(err, "internal", "", "out of memory");
    }
    json_decref(oid);
    return out;
}

/* Text of any model's value: unknown models show their OID and bytes. */
static void s_unknown_text(const json_t *value, cf_ext_buf_t *out)
{
    const char *oid = json_string_value(json_object_get(value, "oid"));
    char *hex = cf_ext_hex_of_base64(json_object_get(value, "value"));
    cf_ext_line(out, 0, "OID: %s", oid ? oid : "?");
    cf_ext_line(out, 0, "Value: %s", hex ? hex : "?");
    free(hex);
}

/* --- single extensions ------------------------------------------------------------------- */

json_t *cf_extension_parse(const json_t *in, cf_error_t *err)
{
    static const char *const fields[] = {"type", "critical", "value", NULL};
    static const char *const required[] = {"type", NULL};
    if (cf_ext_check_object(in, "extension", fields, required, err) != 0)
        return NULL;
    const json_t *type = json_object_get(in, "type");
    if (!json_is_string(type)) {
        cf_error_set(err, "invalid_type", "type", "extension type must be a string");
        return NULL;
    }
    const char *t = json_string_value(type);
    bool unknown = strcmp(t, S_UNKNOWN_TYPE) == 0;
    const cf_ext_def_t *def = unknown ? NULL : s_def_by_type(t);
    if (!unknown && !def) {
        cf_error_set(err, "unknown_extension", "type", "unknown extension type \"%.80s\"", t);
        return NULL;
    }

    bool critical;
    const json_t *crit = json_object_get(in, "critical");
    if (crit) {
        if (!json_is_boolean(crit)) {
            cf_error_set(err, "invalid_type", "critical", "\"critical\" must be a boolean");
            return NULL;
        }
        critical = json_is_true(crit);
    } else if (def && def->default_critical >= 0) {
        critical = def->default_critical == 1;
    } else {
        cf_error_set(err, "missing_field", "critical",
                     "extension \"%s\" has no default: \"critical\" is required", t);
        return NULL;
    }
    if (def && (def->flags & CF_EXT_MUST_CRITICAL) && !critical) {
        cf_error_set(err, "invalid_critical", "critical",
                     "extension \"%s\" must be marked as critical", t);
        return NULL;
    }

    /* Extensions without a value (ocsp_no_check, precert_poison) take an absent value as null;
     * their parsers refuse anything else. */
    const json_t *value = json_object_get(in, "value");
    if (!value && !(def && (def->flags & CF_EXT_NO_VALUE))) {
        cf_error_set(err, "missing_field", "value", "field \"value\" is required");
        return NULL;
    }
    json_t *v = unknown ? s_unknown_parse(value, err) : def->parse(value, err);
    if (!v) {
        if (!cf_error_isset(err))
            cf_error_set(err, "internal", "", "out of memory");
        cf_error_prefix_field(err, "value");
        return NULL;
    }
    /* json_pack takes V over, also when it fails. */
    json_t *out = json_pack("{s:s, s:b, s:o}", "type", t, "critical", critical, "value", v);
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

/* The OID a parsed model stands for (borrowed). */
static const char *s_model_oid(const json_t *model)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    if (type && strcmp(type, S_UNKNOWN_TYPE) == 0)
        return json_string_value(json_object_get(json_object_get(model, "value"), "oid"));
    return cf_extension_oid(type);
}

static json_t *s_parse_list(const json_t *list, bool for_sign, cf_error_t *err)
{
    if (!json_is_array(list)) {
        cf_error_set(err, "invalid_type", "", "extensions must be a list");
        return NULL;
    }
    json_t *out = json_array();
    json_t *seen = json_object();
    if (!out || !seen) {
        cf_error_set(err, "internal", "", "out of memory");
        goto fail;
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        /* The signing rule goes first so that a refused type is named as such, not as
         * whatever is wrong with its value. */
        const char *type = json_string_value(json_object_get(item, "type"));
        if (for_sign && type && (s_def_by_type(type) || strcmp(type, S_UNKNOWN_TYPE) == 0) &&
            !cf_extension_sign_allowed(type)) {
            char field[CF_ERROR_FIELD_MAX];
            cf_ext_path_key(field, path, "type");
            cf_error_set(err, "extension_not_allowed", field,
                         "extension \"%s\" may not be requested when signing", type);
            goto fail;
        }
        json_t *ext = cf_extension_parse(item, err);
        if (!ext) {
            cf_error_prefix_field(err, path);
            goto fail;
        }
        const char *oid = s_model_oid(ext);
        if (json_object_get(seen, oid)) {
            char field[CF_ERROR_FIELD_MAX];
            bool unknown = !s_def_by_oid(oid);
            cf_ext_path_key(field, path, unknown ? "value.oid" : "type");
            cf_error_set(err, "duplicate_extension", field, "extension %s (%s) is given twice",
                         json_string_value(json_object_get(ext, "type")), oid);
            json_decref(ext);
            goto fail;
        }
        if (json_object_set_new(seen, oid, json_true()) || json_array_append_new(out, ext)) {
            cf_error_set(err, "internal", "", "out of memory");
            goto fail;
        }
    }
    json_decref(seen);
    return out;
fail:
    json_decref(seen);
    json_decref(out);
    return NULL;
}

json_t *cf_extensions_parse(const json_t *list, cf_error_t *err)
{
    return s_parse_list(list, false, err);
}

json_t *cf_extensions_parse_for_sign(const json_t *list, cf_error_t *err)
{
    return s_parse_list(list, true, err);
}

X509_EXTENSION *cf_extension_to_openssl(const json_t *model, cf_error_t *err)
{
    X509_EXTENSION *ext = NULL;
    ASN1_OBJECT *obj = NULL;
    ASN1_OCTET_STRING *os = NULL;
    unsigned char *der = NULL;
    int len = 0;
    json_t *parsed = cf_extension_parse(model, err);
    if (!parsed)
        return NULL;
    const char *type = json_string_value(json_object_get(parsed, "type"));
    const json_t *value = json_object_get(parsed, "value");
    const cf_ext_def_t *def = s_def_by_type(type);
    const char *oid;
    if (def) {
        if (def->flags & CF_EXT_READ_ONLY) {
            cf_error_set(err, "read_only", "type",
                         "extension \"%s\" is read-only: it cannot be encoded", type);
            goto cleanup;
        }
        if (def->encode(value, &der, &len, err) != 0) {
            if (!cf_error_isset(err))
                cf_error_set(err, "internal", "", "could not encode extension");
            cf_error_prefix_field(err, "value");
            goto cleanup;
        }
        oid = def->oid;
    } else {
        /* unknown: the value is the extnValue's content as given. */
        os = cf_ext_octets_from_base64(json_object_get(value, "value"), err);
        if (!os) {
            cf_error_prefix_field(err, "value.value");
            goto cleanup;
        }
        oid = json_string_value(json_object_get(value, "oid"));
    }
    if (!os) {
        os = ASN1_OCTET_STRING_new();
        if (!os || !ASN1_OCTET_STRING_set(os, der, len)) {
            cf_error_set(err, "internal", "", "out of memory");
            goto cleanup;
        }
    }
    obj = cf_ext_oid_to_openssl(oid, "type", err);
    if (!obj)
        goto cleanup;
    ext = X509_EXTENSION_create_by_OBJ(NULL, obj, json_is_true(json_object_get(parsed, "critical")),
                                       os);
    if (!ext) {
        cf_error_set(err, "internal", "", "could not create extension");
        cf_error_add_openssl(err);
    }
cleanup:
    OPENSSL_free(der);
    ASN1_OCTET_STRING_free(os);
    ASN1_OBJECT_free(obj);
    json_decref(parsed);
    return ext;
}

STACK_OF(X509_EXTENSION) * cf_extensions_to_openssl(const json_t *list, cf_error_t *err)
{
    json_t *parsed = cf_extensions_parse(list, err);
    if (!parsed)
        return NULL;
    STACK_OF(X509_EXTENSION) *sk = sk_X509_EXTENSION_new_null();
    if (!sk) {
        cf_error_set(err, "internal", "", "out of memory");
        goto fail;
    }
    size_t i;
    json_t *model;
    json_array_foreach(parsed, i, model)
    {
        X509_EXTENSION *ext = cf_extension_to_openssl(model, err);
        if (!ext) {
            char path[CF_ERROR_FIELD_MAX];
            cf_ext_path_index(path, "", i);
            cf_error_prefix_field(err, path);
            goto fail;
        }
        if (!sk_X509_EXTENSION_push(sk, ext)) {
            X509_EXTENSION_free(ext);
            cf_error_set(err, "internal", "", "out of memory");
            goto fail;
        }
    }
    json_decref(parsed);
    return sk;
fail:
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    json_decref(parsed);
    return NULL;
}

int cf_extensions_add_to_cert(X509 *cert, const json_t *list, cf_error_t *err)
{
    STACK_OF(X509_EXTENSION) *sk = cf_extensions_to_openssl(list, err);
    if (!sk)
        return -1;
    int rc = 0;
    for (int i = 0; i < sk_X509_EXTENSION_num(sk) && rc == 0; i++) {
        if (!X509_add_ext(cert, sk_X509_EXTENSION_value(sk, i), -1)) {
            cf_error_set(err, "internal", "", "could not add extension to certificate");
            cf_error_add_openssl(err);
            rc = -1;
        }
    }
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    return rc;
}

int cf_extensions_add_to_crl(X509_CRL *crl, const json_t *list, cf_error_t *err)
{
    STACK_OF(X509_EXTENSION) *sk = cf_extensions_to_openssl(list, err);
    if (!sk)
        return -1;
    int rc = 0;
    for (int i = 0; i < sk_X509_EXTENSION_num(sk) && rc == 0; i++) {
        if (!X509_CRL_add_ext(crl, sk_X509_EXTENSION_value(sk, i), -1)) {
            cf_error_set(err, "internal", "", "could not add extension to CRL");
            cf_error_add_openssl(err);
            rc = -1;
        }
    }
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    return rc;
}

/* The value of an extension without a model: its OID and its DER in base64. */
static json_t *s_unknown_value(const json_t *oid, const unsigned char *der, long len,
                               cf_error_t *err)
{
    json_t *value = json_object();
    if (value && (cf_ext_set(value, "oid", json_incref((json_t *)oid)) ||
                  cf_ext_set(value, "value", cf_ext_base64_from_bytes(der, (size_t)len)))) {
        json_decref(value);
        value = NULL;
    }
    if (!value)
        cf_error_set(err, "internal", "", "out of memory");
    return value;
}

/* The model of EXT; RAW: the unknown shape even where the OID has a model. */
static json_t *s_from_openssl(const X509_EXTENSION *ext, bool raw, cf_error_t *err)
{
    if (!ext) {
        cf_error_set(err, "invalid_value", "", "no extension given");
        return NULL;
    }
    /* OpenSSL 3.0 lacks const on these two getters; they only read. */
    X509_EXTENSION *e = (X509_EXTENSION *)ext;
    json_t *oid = cf_ext_oid_from_openssl(X509_EXTENSION_get_object(e), "type", err);
    if (!oid)
        return NULL;
    const ASN1_OCTET_STRING *data = X509_EXTENSION_get_data(e);
    const unsigned char *der = ASN1_STRING_get0_data(data);
    long len = ASN1_STRING_length(data);
    const cf_ext_def_t *def = raw ? NULL : s_def_by_oid(json_string_value(oid));
    json_t *value = NULL;
    if (def) {
        value = def->decode(der, len, err);
        if (!value && !cf_error_isset(err))
            cf_error_set(err, "internal", "", "out of memory");
        if (!value)
            cf_error_prefix_field(err, "value");
    } else {
        value = s_unknown_value(oid, der, len, err);
    }
    json_t *out = NULL;
    if (value) {
        out = json_pack("{s:s, s:b, s:o}", "type", def ? def->type : S_UNKNOWN_TYPE, "critical",
                        X509_EXTENSION_get_critical(ext), "value", value);
        if (!out)
            cf_error_set(err, "internal", "", "out of memory");
    }
    json_decref(oid);
    return out;
}

json_t *cf_extension_from_openssl(const X509_EXTENSION *ext, cf_error_t *err)
{
    return s_from_openssl(ext, false, err);
}

json_t *cf_extension_raw_from_openssl(const X509_EXTENSION *ext, cf_error_t *err)
{
    return s_from_openssl(ext, true, err);
}

/* Every extension of a stack, indexed like the stack. */
typedef X509_EXTENSION *(*s_ext_get_fn)(const void *owner, int i);

static json_t *s_from_list(const void *owner, int count, s_ext_get_fn get, cf_error_t *err)
{
    json_t *out = json_array();
    if (!out) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    for (int i = 0; i < count; i++) {
        json_t *model = cf_extension_from_openssl(get(owner, i), err);
        if (!model || json_array_append_new(out, model)) {
            char path[CF_ERROR_FIELD_MAX];
            cf_ext_path_index(path, "", (size_t)i);
            if (!model)
                cf_error_prefix_field(err, path);
            else
                cf_error_set(err, "internal", path, "out of memory");
            json_decref(out);
            return NULL;
        }
    }
    return out;
}

static X509_EXTENSION *s_cert_ext(const void *owner, int i)
{
    return X509_get_ext((const X509 *)owner, i);
}

static X509_EXTENSION *s_crl_ext(const void *owner, int i)
{
    return X509_CRL_get_ext((const X509_CRL *)owner, i);
}

static X509_EXTENSION *s_stack_ext(const void *owner, int i)
{
    return sk_X509_EXTENSION_value((const STACK_OF(X509_EXTENSION) *)owner, i);
}

json_t *cf_extensions_from_cert(const X509 *cert, cf_error_t *err)
{
    return s_from_list(cert, X509_get_ext_count(cert), s_cert_ext, err);
}

json_t *cf_extensions_from_crl(const X509_CRL *crl, cf_error_t *err)
{
    return s_from_list(crl, X509_CRL_get_ext_count(crl), s_crl_ext, err);
}

json_t *cf_extensions_from_req(const X509_REQ *req, cf_error_t *err)
{
    /* OpenSSL 3.0's X509_REQ_get_extensions is not const but only reads; it returns a new
     * stack, NULL when the request has none (or on a malformed attribute). */
    ERR_set_mark();
    unsigned long before = ERR_peek_last_error();
    STACK_OF(X509_EXTENSION) *sk = X509_REQ_get_extensions((X509_REQ *)req);
    if (!sk) {
        bool failed = ERR_peek_last_error() != before;
        ERR_pop_to_mark();
        if (failed) {
            cf_error_set(err, "invalid_der", "", "the request's extensions cannot be decoded");
            return NULL;
        }
        return json_array();
    }
    ERR_pop_to_mark();
    json_t *out = s_from_list(sk, sk_X509_EXTENSION_num(sk), s_stack_ext, err);
    sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    return out;
}

/* --- text and lookups -------------------------------------------------------------------- */

char *cf_extension_to_text(const json_t *model)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    const json_t *crit = json_object_get(model, "critical");
    const json_t *value = json_object_get(model, "value");
    if (!type || !json_is_boolean(crit) || !value)
        return NULL;
    bool unknown = strcmp(type, S_UNKNOWN_TYPE) == 0;
    const cf_ext_def_t *def = unknown ? NULL : s_def_by_type(type);
    if (!unknown && !def)
        return NULL;
    if (unknown && !json_is_object(value))
        return NULL;
    cf_ext_buf_t b = {0};
    cf_ext_line(&b, 0, "%s%s:", def ? def->name : "Unknown Extension",
                json_is_true(crit) ? " (critical)" : "");
    b.base = 1;
    if (def)
        def->text(value, &b);
    else
        s_unknown_text(value, &b);
    if (b.failed) {
        free(b.data);
        return NULL;
    }
    return b.data;
}

json_t *cf_extensions_find(const json_t *list, const char *type)
{
    size_t i;
    json_t *model;
    json_array_foreach(list, i, model)
    {
        const char *t = json_string_value(json_object_get(model, "type"));
        if (t && type && strcmp(t, type) == 0)
            return model;
    }
    return NULL;
}

json_t *cf_extensions_find_oid(const json_t *list, const char *oid)
{
    size_t i;
    json_t *model;
    json_array_foreach(list, i, model)
    {
        const char *o = s_model_oid(model);
        if (o && oid && strcmp(o, oid) == 0)
            return model;
    }
    return NULL;
}
