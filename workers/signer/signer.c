/* Helpers every signer handler uses: params, CA keys, subjects. */
#include <string.h>

#include "cf_x509_name.h"
#include "signer.h"

#include <czmq.h>

#include "cf_params.h"
#include "cf_profile.h"
#include "cf_x509_ext.h"

const char *const signer_sign_keys[] = {"sign_authority_information_access",
                                        "sign_certificate_policies", "sign_crl_distribution_points",
                                        "sign_issuer_alternative_name", NULL};
const char *const signer_sign_types[] = {"authority_information_access", "certificate_policies",
                                         "crl_distribution_points", "issuer_alternative_name",
                                         NULL};

json_t *signer_sign_extension(const json_t *params, int k, cf_error_t *err)
{
    json_t *m = cf_extension_parse(json_object_get(params, signer_sign_keys[k]), err);
    if (m && strcmp(json_string_value(json_object_get(m, "type")), signer_sign_types[k]) != 0) {
        cf_error_set(err, "invalid_value", "", "must be a \"%s\" extension", signer_sign_types[k]);
        json_decref(m);
        m = NULL;
    }
    if (!m) {
        char f[96];
        snprintf(f, sizeof f, "params.%s", signer_sign_keys[k]);
        cf_error_prefix_field(err, f);
    }
    return m;
}

cf_keystore_t *signer_keystore(cf_handler_ctx_t *ctx)
{
    signer_t *state = ctx->state;
    if (!state->keystore)
        state->keystore = cf_keystore_new(ctx->config, ctx->pg);
    return state->keystore;
}

json_t *signer_params(const cf_job_t *job, cf_error_t *err)
{
    json_t *params = cf_msgpack_to_json(cf_job_params(job), err);
    if (!params)
        cf_error_prefix_field(err, "params");
    return params;
}

EVP_PKEY *signer_ca_key(cf_handler_ctx_t *ctx, const cf_ca_t *ca, const char *job_password,
                        cf_error_t *err)
{
    return cf_ca_private_key(ca, ctx->config, signer_keystore(ctx), job_password, err);
}

json_t *signer_subject(const json_t *value, const char *field, cf_error_t *err)
{
    json_t *name = json_is_string(value) ? cf_name_from_string(json_string_value(value), err)
                                         : cf_name_parse(value, err);
    if (!name)
        cf_error_prefix_field(err, field);
    return name;
}

void signer_pack_der(msgpack_packer *pk, X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    if (len < 0) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_bin(pk, (size_t)len);
    msgpack_pack_bin_body(pk, der, (size_t)len);
    OPENSSL_free(der);
}

/* Write the CA row. 0, -1 (bad input) or CF_HANDLER_ABORT. */
int signer_ca_insert(cf_handler_ctx_t *ctx, const json_t *params, const char *name, X509 *cert,
                     const json_t *subject, const json_t *issuer, const cf_ca_t *parent,
                     const char *backend, const json_t *options, const char *key_type,
                     const char *algorithm, int64_t path_length, const json_t *sign,
                     const char *host, cf_error_t *err)
{
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    char *serial = cf_serial_hex(X509_get0_serialNumber(cert));
    json_t *row = json_object();
    json_object_set_new(row, "name", json_string(name));
    json_object_set_new(row, "serial", json_string(serial));
    json_t *cn = NULL;
    size_t i;
    json_t *attr;
    json_array_foreach(subject, i, attr)
    {
        if (strcmp(json_string_value(json_object_get(attr, "oid")), "2.5.4.3") == 0)
            cn = json_object_get(attr, "value");
    }
    json_object_set_new(row, "cn", cn ? json_incref(cn) : json_string(""));
    json_object_set(row, "subject", (json_t *)subject);
    json_object_set(row, "issuer", (json_t *)issuer);
    json_object_set_new(
        row, "valid_from",
        json_integer((json_int_t)json_integer_value(json_object_get(params, "_nb"))));
    json_object_set_new(row, "parent_id", parent ? json_integer(parent->id) : json_null());
    json_object_set_new(row, "key_backend", json_string(backend));
    json_object_set(row, "key_backend_options", (json_t *)options);
    json_object_set_new(row, "key_type", json_string(key_type));
    json_object_set_new(row, "algorithm", algorithm ? json_string(algorithm) : json_null());
    json_object_set_new(row, "path_length",
                        path_length >= 0 ? json_integer(path_length) : json_null());
    for (int k = 0; signer_sign_types[k]; k++) {
        json_t *ext = cf_extensions_find(sign, signer_sign_types[k]);
        json_object_set(row, signer_sign_keys[k], ext ? ext : json_null());
    }
    json_object_set_new(row, "default_hostname", host ? json_string(host) : json_null());
    static const char *const copy[] = {"caa",
                                       "website",
                                       "terms_of_service",
                                       "acme_enabled",
                                       "acme_registration",
                                       "acme_requires_contact",
                                       "acme_profile",
                                       "api_enabled",
                                       "ocsp_responder_key_validity",
                                       "ocsp_response_validity",
                                       "crl_shards",
                                       NULL};
    for (const char *const *c = copy; *c; c++) {
        json_t *v = json_object_get(params, *c);
        if (v && !json_is_null(v))
            json_object_set(row, *c, v);
    }
    char *row_text = json_dumps(row, JSON_COMPACT);
    char *hex = der_len > 0 ? cf_pg_bytea_hex(der, (size_t)der_len) : NULL;
    int rc = CF_HANDLER_ABORT;
    if (row_text && hex) {
        char nb[32], na[32];
        snprintf(nb, sizeof nb, "%lld",
                 (long long)json_integer_value(json_object_get(params, "_nb")));
        snprintf(na, sizeof na, "%lld",
                 (long long)json_integer_value(json_object_get(params, "_na")));
        const char *values[4] = {row_text, hex, nb, na};
        /* jsonb_populate_record maps the model's fields onto the columns; defaults stay for
         * the fields the job did not give. */
        PGresult *res = cf_pg_exec_params(
            ctx->pg,
            "INSERT INTO certificate_authorities (name, serial, cn, subject, issuer, valid_from, "
            "expires, der, parent_id, key_backend, key_backend_options, key_type, algorithm, "
            "path_length, sign_authority_information_access, sign_certificate_policies, "
            "sign_crl_distribution_points, sign_issuer_alternative_name, default_hostname, caa, "
            "website, terms_of_service, acme_enabled, acme_registration, acme_requires_contact, "
            "acme_profile, api_enabled, ocsp_responder_key_validity, ocsp_response_validity, "
            "crl_shards) "
            "SELECT r->>'name', r->>'serial', r->>'cn', r->'subject', r->'issuer', "
            "to_timestamp($3::bigint), to_timestamp($4::bigint), $2::bytea, "
            "(r->>'parent_id')::bigint, r->>'key_backend', r->'key_backend_options', "
            "r->>'key_type', r->>'algorithm', (r->>'path_length')::int, "
            "NULLIF(r->'sign_authority_information_access', 'null'), "
            "NULLIF(r->'sign_certificate_policies', 'null'), "
            "NULLIF(r->'sign_crl_distribution_points', 'null'), "
            "NULLIF(r->'sign_issuer_alternative_name', 'null'), r->>'default_hostname', "
            "COALESCE(r->>'caa', ''), COALESCE(r->>'website', ''), "
            "COALESCE(r->>'terms_of_service', ''), COALESCE((r->>'acme_enabled')::boolean, false), "
            "COALESCE((r->>'acme_registration')::boolean, true), "
            "COALESCE((r->>'acme_requires_contact')::boolean, true), r->>'acme_profile', "
            "COALESCE((r->>'api_enabled')::boolean, false), "
            "COALESCE((r->>'ocsp_responder_key_validity')::int, 3), "
            "COALESCE((r->>'ocsp_response_validity')::int, 86400), "
            "COALESCE((r->>'crl_shards')::int, 1) FROM (SELECT $1::jsonb AS r) AS x "
            "ON CONFLICT DO NOTHING RETURNING id",
            4, values, NULL, NULL, 0);
        /* ON CONFLICT keeps the job's transaction usable: a failed INSERT would abort it. */
        if (res && PQntuples(res) == 1) {
            rc = 0;
        } else if (res) {
            cf_error_set(err, "ca_exists", "params.name",
                         "certificate authority \"%s\" (or its certificate) already exists", name);
            rc = -1;
        } else {
            cf_error_set(err, "unavailable", "", "could not store certificate authority \"%s\": %s",
                         name, cf_pg_errstr(ctx->pg));
        }
        PQclear(res);
    }
    free(hex);
    free(row_text);
    free(serial);
    json_decref(row);
    OPENSSL_free(der);
    return rc;
}

int signer_ca_name_free(cf_handler_ctx_t *ctx, const char *name, cf_error_t *err)
{
    const char *values[1] = {name};
    PGresult *res = cf_pg_exec_params(
        ctx->pg, "SELECT 1 FROM certificate_authorities WHERE name = $1", 1, values, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not look up certificate authority \"%s\": %s",
                     name, cf_pg_errstr(ctx->pg));
        return CF_HANDLER_ABORT;
    }
    int found = PQntuples(res);
    PQclear(res);
    if (found) {
        cf_error_set(err, "ca_exists", "params.name", "certificate authority \"%s\" already exists",
                     name);
        return -1;
    }
    return 0;
}

typedef struct {
    cf_ca_t *ca;             /* the CA row */
    STACK_OF(X509) * bundle; /* its chain, root first; NULL until asked for */
    json_t *profile;         /* or a profile, for the profiles table */
    uint64_t loaded;         /* monotonic ms */
} s_cached_t;

static void s_cached_free(void **item)
{
    s_cached_t *c = *item;
    if (!c)
        return;
    cf_ca_destroy(&c->ca);
    sk_X509_pop_free(c->bundle, X509_free);
    json_decref(c->profile);
    free(c);
    *item = NULL;
}

static s_cached_t *s_lookup(cf_handler_ctx_t *ctx, void **table_p, const char *key)
{
    if (!*table_p) {
        *table_p = zhashx_new();
        zhashx_set_destructor(*table_p, s_cached_free);
    }
    s_cached_t *c = zhashx_lookup(*table_p, key);
    uint64_t ttl = (uint64_t)cf_config_get_int(ctx->config, "signer", "cache_ms", 1000);
    if (c && cf_mono_ms() - c->loaded > ttl) {
        zhashx_delete(*table_p, key);
        c = NULL;
    }
    return c;
}

const cf_ca_t *signer_ca(cf_handler_ctx_t *ctx, const char *name, cf_error_t *err)
{
    signer_t *state = ctx->state;
    s_cached_t *c = s_lookup(ctx, &state->cas, name);
    if (c)
        return c->ca;
    cf_ca_t *ca = cf_ca_load(ctx->pg, name, err);
    if (!ca)
        return NULL;
    c = calloc(1, sizeof *c);
    c->ca = ca;
    c->loaded = cf_mono_ms();
    zhashx_update(state->cas, name, c);
    return ca;
}

STACK_OF(X509) * signer_bundle(cf_handler_ctx_t *ctx, const cf_ca_t *ca, cf_error_t *err)
{
    signer_t *state = ctx->state;
    s_cached_t *c = state->cas ? zhashx_lookup(state->cas, ca->name) : NULL;
    if (c && c->ca == ca && c->bundle)
        return c->bundle;
    STACK_OF(X509) *bundle = cf_ca_bundle(ctx->pg, ca, err);
    if (bundle && c && c->ca == ca)
        c->bundle = bundle;
    return bundle; /* not cached only when the CA was not: the caller frees nothing either way */
}

const json_t *signer_profile(cf_handler_ctx_t *ctx, const char *name, cf_error_t *err)
{
    signer_t *state = ctx->state;
    const char *key = name && *name ? name : cf_profile_default(ctx->config);
    s_cached_t *c = s_lookup(ctx, &state->profiles, key);
    if (c)
        return c->profile;
    json_t *profile = cf_profile_load(ctx->config, key, err);
    if (!profile)
        return NULL;
    c = calloc(1, sizeof *c);
    c->profile = profile;
    c->loaded = cf_mono_ms();
    zhashx_update(state->profiles, key, c);
    return profile;
}

void signer_state_destroy(signer_t *state)
{
    cf_keystore_destroy(&state->keystore);
    zhashx_destroy((zhashx_t **)&state->cas);
    zhashx_destroy((zhashx_t **)&state->profiles);
}

int signer_ca_options_check(const json_t *params, cf_error_t *err)
{
    int64_t n;
    bool b;
    const char *str;
    static const char *const bools[] = {"acme_enabled", "acme_registration",
                                        "acme_requires_contact", "api_enabled", NULL};
    static const char *const strs[] = {"caa", "website", "terms_of_service", "acme_profile", NULL};
    for (const char *const *k = bools; *k; k++)
        if (cf_params_bool(params, *k, false, &b, err) != 0)
            return -1;
    for (const char *const *k = strs; *k; k++)
        if (cf_params_str(params, *k, false, NULL, &str, err) != 0)
            return -1;
    /* The same bounds as the table's CHECKs: refused here, before a key is made. */
    if (cf_params_int(params, "ocsp_responder_key_validity", 3, 1, 3650, &n, err) ||
        cf_params_int(params, "ocsp_response_validity", 86400, 600, 86400 * 30, &n, err) ||
        cf_params_int(params, "crl_shards", 1, 1, 4096, &n, err))
        return -1;
    return 0;
}
