/* ca.init: create a root or intermediate certificate authority (django-ca's
 * CertificateAuthorityManager.init). Params and result: schemas/jobs.md. */
#include <regex.h>
#include <string.h>
#include <time.h>

#include "cf_issue.h"
#include "cf_key.h"
#include "cf_log.h"
#include "cf_params.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"
#include "signer.h"

static const char *const s_allowed[] = {"name",
                                        "subject",
                                        "key_backend",
                                        "password",
                                        "key_type",
                                        "key_size",
                                        "elliptic_curve",
                                        "algorithm",
                                        "expires",
                                        "parent",
                                        "parent_password",
                                        "default_hostname",
                                        "path_length",
                                        "extensions",
                                        "caa",
                                        "website",
                                        "terms_of_service",
                                        "acme_enabled",
                                        "acme_registration",
                                        "acme_requires_contact",
                                        "acme_profile",
                                        "api_enabled",
                                        "sign_authority_information_access",
                                        "sign_certificate_policies",
                                        "sign_crl_distribution_points",
                                        "sign_issuer_alternative_name",
                                        "ocsp_responder_key_validity",
                                        "ocsp_response_validity",
                                        "crl_shards",
                                        NULL};

/* Extensions the CA's own certificate gets from us; a job may not set them. */
static const char *const s_computed[] = {"basic_constraints", "subject_key_identifier",
                                         "authority_key_identifier", NULL};

static bool s_valid_name(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > CF_CA_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (i > 0 && (c == '.' || c == '_' || c == '-'));
        if (!ok)
            return false;
    }
    return true;
}

/* One extension model built from parts and normalised by the data model. */
static json_t *s_model(json_t *raw, cf_error_t *err)
{
    json_t *m = raw ? cf_extension_parse(raw, err) : NULL;
    json_decref(raw);
    return m;
}

static json_t *s_default_aia(const char *host, const char *name, cf_error_t *err)
{
    char *ocsp = cf_ca_url_ocsp(host, name), *issuer = cf_ca_url_issuer(host, name);
    json_t *raw = json_pack("{s:s, s:[{s:s, s:{s:s, s:s}}, {s:s, s:{s:s, s:s}}]}", "type",
                            "authority_information_access", "value", "access_method", "ocsp",
                            "access_location", "type", "URI", "value", ocsp, "access_method",
                            "ca_issuers", "access_location", "type", "URI", "value", issuer);
    free(ocsp);
    free(issuer);
    return s_model(raw, err);
}

static json_t *s_crldp(const char *url, cf_error_t *err)
{
    json_t *raw = json_pack("{s:s, s:[{s:[{s:s, s:s}]}]}", "type", "crl_distribution_points",
                            "value", "full_name", "type", "URI", "value", url);
    return s_model(raw, err);
}

int signer_ca_init(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                   cf_error_t *err)
{
    int rc = -1;
    json_t *params = signer_params(job, err), *subject = NULL, *extra = NULL, *exts = NULL;
    json_t *sign = json_array(), *options = NULL;
    cf_ca_t *parent = NULL;
    EVP_PKEY *key = NULL, *parent_key = NULL;
    X509 *cert = NULL;
    const char *name, *backend, *password, *algorithm, *parent_name, *parent_password;
    int64_t expires, path_length, now = (int64_t)time(NULL);
    const char *host = NULL;
    cf_key_params_t kp;
    const EVP_MD *md = NULL;
    char key_id[160];
    if (!params || cf_params_check_keys(params, s_allowed, err) ||
        cf_params_str(params, "name", true, NULL, &name, err) ||
        cf_params_str(params, "key_backend", false,
                      cf_config_get(ctx->config, "ca", "key_backend", "storages"), &backend, err) ||
        cf_params_str(params, "password", false, NULL, &password, err) ||
        cf_params_str(params, "algorithm", false, NULL, &algorithm, err) ||
        cf_params_str(params, "parent", false, NULL, &parent_name, err) ||
        cf_params_str(params, "parent_password", false, NULL, &parent_password, err) ||
        cf_params_int(params, "path_length", -1, 0, 1000, &path_length, err))
        goto out;
    if (cf_key_params_from_json(&kp, ctx->config, params, err) != 0) {
        cf_error_prefix_field(err, "params"); /* its fields are the keys: "key_type" */
        goto out;
    }
    if (!s_valid_name(name)) {
        cf_error_set(err, "invalid_value", "params.name",
                     "a CA name has 1 to 64 letters, digits, '.', '_' or '-', starting with a "
                     "letter or digit");
        goto out;
    }
    if (signer_ca_options_check(params, err) != 0)
        goto out;
    if ((rc = signer_ca_name_free(ctx, name, err)) != 0)
        goto out;
    rc = -1;
    if (!json_object_get(params, "subject")) {
        cf_error_set(err, "missing_field", "params.subject", "parameter \"subject\" is required");
        goto out;
    }
    if (!(subject = signer_subject(json_object_get(params, "subject"), "params.subject", err)))
        goto out;
    /* default_hostname: a string, false (none), or absent (the configured one). */
    json_t *dh = json_object_get(params, "default_hostname");
    if (dh && json_is_string(dh))
        host = *json_string_value(dh) ? json_string_value(dh) : NULL;
    else if (dh && json_is_false(dh))
        host = NULL;
    else if (dh && !json_is_null(dh)) {
        cf_error_set(err, "invalid_type", "params.default_hostname",
                     "\"default_hostname\" must be a host name or false");
        goto out;
    } else {
        host = cf_config_get(ctx->config, "ca", "default_hostname", NULL);
        host = host && *host ? host : NULL;
    }
    if (parent_name) {
        if (!(parent = cf_ca_load(ctx->pg, parent_name, err))) {
            snprintf(err->field, sizeof err->field, "params.parent");
            goto out;
        }
        if (cf_ca_check_usable(parent, now, err) != 0) {
            snprintf(err->field, sizeof err->field, "params.parent");
            goto out;
        }
        int max = cf_ca_max_path_length(ctx->pg, parent, err);
        if (max == 0) {
            cf_error_set(
                err, "path_length_exceeded", "params.parent",
                "certificate authority \"%s\" does not allow intermediate CAs (path length 0)",
                parent->name);
            goto out;
        }
        if (max > 0 && path_length >= max) {
            cf_error_set(err, "path_length_exceeded", "params.path_length",
                         "path length %lld is too long below \"%s\", which allows at most %d",
                         (long long)path_length, parent->name, max - 1);
            goto out;
        }
        if (!(parent_key = signer_ca_key(ctx, parent, parent_password, err))) {
            if (strcmp(err->field, "params.password") == 0)
                snprintf(err->field, sizeof err->field, "params.parent_password");
            goto out;
        }
    }
    int64_t max_expires = parent ? parent->expires : INT64_MAX / 2;
    int64_t dflt = now + 86400 * cf_config_get_int(ctx->config, "ca", "default_expires_days", 3650);
    if (cf_params_int(params, "expires", dflt < max_expires ? dflt : max_expires, now + 1,
                      INT64_MAX / 2, &expires, err))
        goto out;
    if (expires > max_expires) {
        cf_error_set(err, "invalid_value", "params.expires", "expires after its parent \"%s\"",
                     parent->name);
        goto out;
    }
    if ((extra = json_object_get(params, "extensions")) != NULL) {
        if (!(extra = cf_extensions_parse(extra, err))) {
            cf_error_prefix_field(err, "params.extensions");
            goto out;
        }
        for (const char *const *c = s_computed; *c; c++) {
            if (cf_extensions_find(extra, *c)) {
                cf_error_set(err, "extension_not_allowed", "params.extensions",
                             "\"%s\" of a CA is set by certfleet from its key and path length", *c);
                goto out;
            }
        }
    }
    /* The sign_* extensions: given ones win; default_hostname fills the rest. */
    for (int k = 0; signer_sign_keys[k]; k++) {
        json_t *given = json_object_get(params, signer_sign_keys[k]);
        if (!given || json_is_null(given))
            continue;
        json_t *m = signer_sign_extension(params, k, err);
        if (!m)
            goto out;
        json_array_append_new(sign, m);
    }
    if (host) {
        if (!cf_extensions_find(sign, "authority_information_access")) {
            json_t *m = s_default_aia(host, name, err);
            if (!m)
                goto out;
            json_array_append_new(sign, m);
        }
        if (!cf_extensions_find(sign, "crl_distribution_points")) {
            char *url = cf_ca_url_crl(host, name, -1);
            json_t *m = s_crldp(url, err);
            free(url);
            if (!m)
                goto out;
            json_array_append_new(sign, m);
        }
    }
    if (!(key = cf_key_generate(&kp, err)))
        goto out;
    EVP_PKEY *signing_key = parent ? parent_key : key;
    if (cf_key_check_algorithm(signing_key, algorithm, &md, err) != 0) {
        cf_error_prefix_field(err, "params");
        if (!err->field[0] || strcmp(err->field, "params") == 0)
            snprintf(err->field, sizeof err->field, "params.algorithm");
        goto out;
    }
    /* The CA's own certificate: BasicConstraints, KeyUsage, SKI, AKI, then the job's extras,
     * and for an intermediate what its parent adds to everything it signs. */
    exts = json_array();
    json_t *bc = json_pack("{s:s, s:b, s:{s:b, s:o}}", "type", "basic_constraints", "critical", 1,
                           "value", "ca", 1, "path_length",
                           path_length >= 0 ? json_integer(path_length) : json_null());
    json_array_append_new(exts, s_model(bc, err));
    if (!cf_extensions_find(extra, "key_usage"))
        json_array_append_new(
            exts, s_model(json_pack("{s:s, s:b, s:[s, s]}", "type", "key_usage", "critical", 1,
                                    "value", "crl_sign", "key_cert_sign"),
                          err));
    json_array_append_new(exts, cf_issue_ski_model(key, err));
    if (parent) {
        json_array_append_new(exts, cf_issue_aki_model(parent->cert, err));
        json_t *pext = cf_extensions_find(parent->sign_extensions, "authority_information_access");
        if (pext && !cf_extensions_find(extra, "authority_information_access"))
            json_array_append(exts, pext);
        if (parent->default_hostname && !cf_extensions_find(extra, "crl_distribution_points")) {
            char *url = cf_ca_url_crl_ca(parent->default_hostname, parent->name);
            json_array_append_new(exts, s_crldp(url, err));
            free(url);
        }
    }
    size_t i;
    json_t *e;
    json_array_foreach(extra, i, e) json_array_append(exts, e);
    json_array_foreach(exts, i, e)
    {
        if (!e) {
            if (!cf_error_isset(err))
                cf_error_set(err, "internal", "", "could not build the CA's extensions");
            goto out;
        }
    }
    cf_issue_t req = {.subject = subject,
                      .public_key = key,
                      .extensions = exts,
                      .not_before = now,
                      .not_after = expires,
                      .issuer_cert = parent ? parent->cert : NULL,
                      .issuer_key = signing_key,
                      .md = md};
    if (!(cert = cf_issue_cert(&req, err)))
        goto out;
    /* The key goes to its backend first: inside our transaction for "db"; a file for
     * "storages" (left behind if the transaction rolls back, never overwritten). */
    char *serial = cf_serial_hex(X509_get0_serialNumber(cert));
    snprintf(key_id, sizeof key_id, "ca-%s-%s", name, serial);
    free(serial);
    if (cf_keystore_store(signer_keystore(ctx), backend, key_id, key, password, &options, err) !=
        0) {
        /* The keystore names its own argument ("password", "key_backend"), or none. */
        if (!err->field[0])
            snprintf(err->field, sizeof err->field, "params.key_backend");
        else
            cf_error_prefix_field(err, "params");
        goto out;
    }
    json_object_set_new(params, "_nb", json_integer(now));
    json_object_set_new(params, "_na", json_integer(expires));
    json_t *issuer = parent ? json_object_get(parent->row, "subject") : subject;
    /* As django-ca: the CA signs with the hash its own certificate was signed with, when that
     * suits its own key; else its key's default (none for Ed25519/Ed448). */
    const char *alg_name = cf_key_default_algorithm(key);
    if (alg_name && md)
        alg_name = cf_key_algorithm_name(md);
    rc = signer_ca_insert(ctx, params, name, cert, subject, issuer, parent, backend, options,
                          cf_key_type_name(key), alg_name, path_length, sign, host, err);
    if (rc != 0)
        goto out;
    char *hex = cf_serial_hex(X509_get0_serialNumber(cert));
    cf_audit("ca.init", "ca", name, "serial", hex, "parent", parent ? parent->name : "", "key_type",
             cf_key_type_name(key), "key_backend", backend, NULL);
    msgpack_pack_map(result, 5);
    cf_msgpack_pack_cstr(result, "name");
    cf_msgpack_pack_cstr(result, name);
    cf_msgpack_pack_cstr(result, "serial");
    cf_msgpack_pack_cstr(result, hex);
    cf_msgpack_pack_cstr(result, "der");
    signer_pack_der(result, cert);
    cf_msgpack_pack_cstr(result, "expires");
    msgpack_pack_int64(result, expires);
    cf_msgpack_pack_cstr(result, "key_backend_options");
    cf_json_to_msgpack(options, result);
    free(hex);
out:
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(parent_key);
    cf_ca_destroy(&parent);
    json_decref(options);
    json_decref(exts);
    json_decref(extra);
    json_decref(sign);
    json_decref(subject);
    json_decref(params);
    return rc;
}
