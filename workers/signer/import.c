/* ca.import and cert.import: bring existing CAs (certificate + key) and certificates into
 * certfleet (django-ca's import_ca and import_cert). Params and result: schemas/jobs.md. */
#include <openssl/pem.h>
#include <string.h>
#include <time.h>

#include "cf_key.h"
#include "cf_log.h"
#include "cf_params.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"
#include "signer.h"

/* Bytes given as PEM text or base64 DER (msgpack bin arrives as base64). Caller frees. */
static unsigned char *s_bytes(const char *text, size_t *len, bool *pem)
{
    *pem = strstr(text, "-----BEGIN") != NULL;
    if (*pem) {
        *len = strlen(text);
        return (unsigned char *)strdup(text);
    }
    return cf_base64_decode(text, strlen(text), len);
}

static X509 *s_cert(const char *text, const char *field, cf_error_t *err)
{
    bool pem;
    size_t len = 0;
    unsigned char *bytes = s_bytes(text, &len, &pem);
    X509 *cert = NULL;
    if (bytes && pem) {
        BIO *bio = BIO_new_mem_buf(bytes, (int)len);
        cert = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
    } else if (bytes) {
        const unsigned char *p = bytes;
        cert = d2i_X509(NULL, &p, (long)len);
        if (cert && p != bytes + len) {
            X509_free(cert);
            cert = NULL;
        }
    }
    free(bytes);
    if (!cert)
        cf_error_set(err, "invalid_certificate", field, "certificate is neither PEM nor DER");
    return cert;
}

static const char *const s_ca_allowed[] = {"name",
                                           "certificate",
                                           "key",
                                           "key_password",
                                           "key_backend",
                                           "password",
                                           "parent",
                                           "parent_password",
                                           "default_hostname",
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

int signer_ca_import(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                     cf_error_t *err)
{
    int rc = -1;
    json_t *params = signer_params(job, err), *subject = NULL, *issuer = NULL, *options = NULL;
    json_t *exts = NULL, *sign = json_array();
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    cf_ca_t *parent = NULL;
    unsigned char *key_bytes = NULL;
    char *serial = NULL;
    const char *name, *cert_text, *key_text, *key_password, *backend, *password, *parent_name;
    const char *host = NULL;
    if (!params || cf_params_check_keys(params, s_ca_allowed, err) ||
        cf_params_str(params, "name", true, NULL, &name, err) ||
        cf_params_str(params, "certificate", true, NULL, &cert_text, err) ||
        cf_params_str(params, "key", true, NULL, &key_text, err) ||
        cf_params_str(params, "key_password", false, NULL, &key_password, err) ||
        cf_params_str(params, "key_backend", false,
                      cf_config_get(ctx->config, "ca", "key_backend", "storages"), &backend, err) ||
        cf_params_str(params, "password", false, NULL, &password, err) ||
        cf_params_str(params, "parent", false, NULL, &parent_name, err) ||
        cf_params_str(params, "default_hostname", false, NULL, &host, err))
        goto out;
    if (signer_ca_options_check(params, err) != 0)
        goto out;
    if ((rc = signer_ca_name_free(ctx, name, err)) != 0)
        goto out;
    rc = -1;
    if (!(cert = s_cert(cert_text, "params.certificate", err)))
        goto out;
    bool pem;
    size_t key_len = 0;
    key_bytes = s_bytes(key_text, &key_len, &pem);
    if (!key_bytes || !(key = cf_key_from_pkcs8(key_bytes, key_len, key_password, err))) {
        if (!cf_error_isset(err))
            cf_error_set(err, "invalid_key", "params.key", "private key is neither PEM nor DER");
        snprintf(err->field, sizeof err->field,
                 strcmp(err->code, "wrong_password") == 0 ? "params.key_password" : "params.key");
        goto out;
    }
    if (!cf_key_matches_cert(key, cert)) {
        cf_error_set(err, "key_mismatch", "params.key",
                     "private key does not belong to the certificate");
        goto out;
    }
    if (!(exts = cf_extensions_from_cert(cert, err))) {
        cf_error_prefix_field(err, "params.certificate");
        goto out;
    }
    json_t *bc = cf_extensions_find(exts, "basic_constraints");
    if (!bc || !json_is_true(json_object_get(json_object_get(bc, "value"), "ca"))) {
        cf_error_set(err, "not_a_ca", "params.certificate",
                     "certificate is not a CA certificate (BasicConstraints ca is not true)");
        goto out;
    }
    json_t *pl = json_object_get(json_object_get(bc, "value"), "path_length");
    int64_t path_length = json_is_integer(pl) ? json_integer_value(pl) : -1;
    if (parent_name) {
        if (!(parent = cf_ca_load(ctx->pg, parent_name, err))) {
            snprintf(err->field, sizeof err->field, "params.parent");
            goto out;
        }
        if (X509_verify(cert, X509_get0_pubkey(parent->cert)) != 1) {
            cf_error_set(err, "invalid_value", "params.parent",
                         "certificate was not signed by \"%s\"", parent->name);
            goto out;
        }
    } else if (X509_check_issued(cert, cert) != X509_V_OK) {
        cf_error_set(err, "missing_field", "params.parent",
                     "certificate is not self-signed: name its parent CA");
        goto out;
    }
    for (int k = 0; signer_sign_keys[k]; k++) {
        json_t *given = json_object_get(params, signer_sign_keys[k]);
        if (!given || json_is_null(given))
            continue;
        json_t *m = cf_extension_parse(given, err);
        if (!m) {
            char f[96];
            snprintf(f, sizeof f, "params.%s", signer_sign_keys[k]);
            cf_error_prefix_field(err, f);
            goto out;
        }
        json_array_append_new(sign, m);
    }
    if (!(subject = cf_name_from_openssl(X509_get_subject_name(cert), err)) ||
        !(issuer = cf_name_from_openssl(X509_get_issuer_name(cert), err))) {
        cf_error_prefix_field(err, "params.certificate");
        goto out;
    }
    serial = cf_serial_hex(X509_get0_serialNumber(cert));
    char key_id[160];
    snprintf(key_id, sizeof key_id, "ca-%s-%s", name, serial);
    if (cf_keystore_store(signer_keystore(ctx), backend, key_id, key, password, &options, err) !=
        0) {
        if (!err->field[0])
            snprintf(err->field, sizeof err->field, "params.key_backend");
        else
            cf_error_prefix_field(err, "params");
        goto out;
    }
    struct tm tm;
    ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm);
    json_object_set_new(params, "_nb", json_integer((json_int_t)timegm(&tm)));
    ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
    json_object_set_new(params, "_na", json_integer((json_int_t)timegm(&tm)));
    const char *algorithm = cf_key_default_algorithm(key);
    rc = signer_ca_insert(ctx, params, name, cert, subject, issuer, parent, backend, options,
                          cf_key_type_name(key), algorithm, path_length, sign,
                          host && *host ? host : NULL, err);
    if (rc != 0)
        goto out;
    cf_audit("ca.import", "ca", name, "serial", serial, "parent", parent ? parent->name : "", NULL);
    msgpack_pack_map(result, 2);
    cf_msgpack_pack_cstr(result, "name");
    cf_msgpack_pack_cstr(result, name);
    cf_msgpack_pack_cstr(result, "serial");
    cf_msgpack_pack_cstr(result, serial);
out:
    free(serial);
    free(key_bytes);
    X509_free(cert);
    EVP_PKEY_free(key);
    cf_ca_destroy(&parent);
    json_decref(exts);
    json_decref(sign);
    json_decref(options);
    json_decref(subject);
    json_decref(issuer);
    json_decref(params);
    return rc;
}

static const char *const s_cert_allowed[] = {"ca", "certificate", "profile", NULL};

int signer_cert_import(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                       cf_error_t *err)
{
    int rc = -1;
    json_t *params = signer_params(job, err), *subject = NULL;
    X509 *cert = NULL;
    cf_ca_t *ca = NULL;
    char *serial = NULL, *subject_text = NULL, *hex = NULL;
    unsigned char *der = NULL;
    const char *ca_name, *cert_text, *profile;
    if (!params || cf_params_check_keys(params, s_cert_allowed, err) ||
        cf_params_str(params, "ca", true, NULL, &ca_name, err) ||
        cf_params_str(params, "certificate", true, NULL, &cert_text, err) ||
        cf_params_str(params, "profile", false, "", &profile, err))
        goto out;
    if (!(cert = s_cert(cert_text, "params.certificate", err)))
        goto out;
    if (!(ca = cf_ca_load(ctx->pg, ca_name, err))) {
        snprintf(err->field, sizeof err->field, "params.ca");
        goto out;
    }
    if (X509_verify(cert, X509_get0_pubkey(ca->cert)) != 1) {
        cf_error_set(err, "invalid_value", "params.certificate",
                     "certificate was not signed by \"%s\"", ca->name);
        goto out;
    }
    if (!(subject = cf_name_from_openssl(X509_get_subject_name(cert), err))) {
        cf_error_prefix_field(err, "params.certificate");
        goto out;
    }
    serial = cf_serial_hex(X509_get0_serialNumber(cert));
    subject_text = json_dumps(subject, JSON_COMPACT);
    const char *cn = "";
    size_t i;
    json_t *a;
    json_array_foreach(subject, i, a)
    {
        if (strcmp(json_string_value(json_object_get(a, "oid")), "2.5.4.3") == 0)
            cn = json_string_value(json_object_get(a, "value"));
    }
    int len = i2d_X509(cert, &der);
    hex = len > 0 ? cf_pg_bytea_hex(der, (size_t)len) : NULL;
    struct tm tm;
    char nb[32], na[32], ca_id[32];
    ASN1_TIME_to_tm(X509_get0_notBefore(cert), &tm);
    snprintf(nb, sizeof nb, "%lld", (long long)timegm(&tm));
    ASN1_TIME_to_tm(X509_get0_notAfter(cert), &tm);
    snprintf(na, sizeof na, "%lld", (long long)timegm(&tm));
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)ca->id);
    const char *values[8] = {ca_id, serial, cn, subject_text, nb, na, hex, profile};
    PGresult *res = cf_pg_exec_params(
        ctx->pg,
        "INSERT INTO certificates (ca_id, serial, cn, subject, valid_from, expires, der, profile) "
        "VALUES ($1::bigint, $2, $3, $4::jsonb, to_timestamp($5::bigint), "
        "to_timestamp($6::bigint), "
        "$7::bytea, $8) ON CONFLICT DO NOTHING RETURNING id",
        8, values, NULL, NULL, 0);
    /* ON CONFLICT keeps the job's transaction usable: a failed INSERT would abort it. */
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not store the certificate: %s",
                     cf_pg_errstr(ctx->pg));
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    int inserted = PQntuples(res);
    PQclear(res);
    if (inserted == 0) {
        cf_error_set(err, "certificate_exists", "params.certificate",
                     "certificate %s of \"%s\" is already known", serial, ca->name);
        goto out;
    }
    cf_audit("cert.import", "ca", ca->name, "serial", serial, "cn", cn, NULL);
    msgpack_pack_map(result, 2);
    cf_msgpack_pack_cstr(result, "serial");
    cf_msgpack_pack_cstr(result, serial);
    cf_msgpack_pack_cstr(result, "ca");
    cf_msgpack_pack_cstr(result, ca->name);
    rc = 0;
out:
    free(hex);
    OPENSSL_free(der);
    free(serial);
    free(subject_text);
    X509_free(cert);
    cf_ca_destroy(&ca);
    json_decref(subject);
    json_decref(params);
    return rc;
}
