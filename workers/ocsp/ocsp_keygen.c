/* ocsp.keygen: make a CA's delegated OCSP responder certificate and key (django-ca's
 * generate_ocsp_key). Durable: the certificate row and the ocsp_responders row are written in
 * the job's transaction. Params and result: schemas/jobs.md; choices: docs/ocsp.md. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cf_issue.h"
#include "cf_key.h"
#include "cf_log.h"
#include "cf_msgpack.h"
#include "cf_params.h"
#include "cf_profile.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"
#include "ocsp.h"

#define S_SUFFIX " OCSP responder delegate certificate"
#define S_CN_MAX 64 /* characters: ub-common-name (RFC 5280 appendix A) */

static const char *const s_allowed[] = {
    "ca",          "profile", "expires",  "algorithm", "key_type", "key_size", "elliptic_curve",
    "key_backend", "force",   "password", NULL};

/* The current responder as the result shows it. */
typedef struct {
    int64_t id;         /* ocsp_responders.id, 0: none */
    char serial[80];    /* its certificate's serial */
    int64_t valid_from; /* Unix seconds */
    int64_t expires;    /* Unix seconds */
    X509 *cert;         /* its certificate */
} s_current_t;

/* CN + suffix, cut to 64 characters (not octets: a UTF-8 sequence is never split). */
static void s_subject_cn(const char *cn, char *out, size_t len)
{
    char full[512];
    snprintf(full, sizeof full, "%s%s", cn, S_SUFFIX);
    size_t chars = 0, i = 0;
    for (; full[i] && i + 1 < len; i++) {
        if (((unsigned char)full[i] & 0xc0) != 0x80) {
            if (chars == S_CN_MAX)
                break;
            chars++;
        }
    }
    /* A multi-octet character that did not fit whole is dropped. */
    while (i > 0 && i + 1 >= len && ((unsigned char)full[i] & 0xc0) == 0x80)
        i--;
    memcpy(out, full, i);
    out[i] = '\0';
}

/* The CA's current responder (the newest row valid at NOW), or none. 0, or
 * CF_HANDLER_ABORT. */
static int s_current(cf_handler_ctx_t *ctx, const cf_ca_t *ca, int64_t now, s_current_t *cur,
                     cf_error_t *err)
{
    char ca_text[32], now_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)ca->id);
    snprintf(now_text, sizeof now_text, "%lld", (long long)now);
    const char *values[2] = {ca_text, now_text};
    PGresult *res = cf_pg_exec_params(
        ctx->pg,
        "SELECT r.id, c.serial, extract(epoch FROM r.valid_from)::bigint, "
        "extract(epoch FROM r.expires)::bigint, c.der FROM ocsp_responders r "
        "JOIN certificates c ON c.id = r.certificate_id WHERE r.ca_id = $1::bigint "
        "AND r.valid_from <= to_timestamp($2::bigint) AND r.expires > to_timestamp($2::bigint) "
        "ORDER BY r.id DESC LIMIT 1",
        2, values, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not look up the OCSP responder of \"%s\": %s",
                     ca->name, cf_pg_errstr(ctx->pg));
        return CF_HANDLER_ABORT;
    }
    memset(cur, 0, sizeof *cur);
    if (PQntuples(res) == 1) {
        size_t n = 0;
        unsigned char *der = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 4), &n);
        const unsigned char *p = der;
        cur->cert = der ? d2i_X509(NULL, &p, (long)n) : NULL;
        if (der)
            PQfreemem(der);
        if (cur->cert) {
            cur->id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
            snprintf(cur->serial, sizeof cur->serial, "%s", PQgetvalue(res, 0, 1));
            cur->valid_from = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
            cur->expires = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
        }
    }
    PQclear(res);
    return 0;
}

/* Add MODEL unless LIST has an extension of its type (MODEL is consumed). */
static void s_add_missing(json_t *list, json_t *model)
{
    if (!model)
        return;
    if (!cf_extensions_find(list, json_string_value(json_object_get(model, "type"))))
        json_array_append(list, model);
    json_decref(model);
}

/* The responder certificate's extensions: the profile's, then what the profile's add_* flags
 * take from the CA's sign_* extensions, then BasicConstraints (not a CA), AKI and SKI. */
static json_t *s_extensions(const cf_ca_t *ca, const json_t *profile, EVP_PKEY *key,
                            cf_error_t *err)
{
    json_t *exts = json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(profile, "extensions"), i, e) json_array_append(exts, e);
    static const struct {
        const char *flag;
        const char *type;
    } map[] = {{"add_crl_url", "crl_distribution_points"},
               {"add_issuer_alternative_name", "issuer_alternative_name"}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        json_t *ext = cf_extensions_find(ca->sign_extensions, map[k].type);
        if (ext && json_is_true(json_object_get(profile, map[k].flag)))
            s_add_missing(exts, json_incref(ext));
    }
    /* The AIA holds the OCSP URL (add_ocsp_url) and the issuer URL (add_issuer_url). */
    json_t *aia = cf_extensions_find(ca->sign_extensions, "authority_information_access");
    if (aia && !cf_extensions_find(exts, "authority_information_access")) {
        bool add_ocsp = json_is_true(json_object_get(profile, "add_ocsp_url"));
        bool add_issuer = json_is_true(json_object_get(profile, "add_issuer_url"));
        json_t *copy = json_deep_copy(aia), *list = json_object_get(copy, "value");
        for (size_t k = json_array_size(list); k-- > 0;) {
            const char *m =
                json_string_value(json_object_get(json_array_get(list, k), "access_method"));
            bool is_ocsp = m && strcmp(m, "1.3.6.1.5.5.7.48.1") == 0;
            if ((is_ocsp && !add_ocsp) || (!is_ocsp && !add_issuer))
                json_array_remove(list, k);
        }
        if (json_array_size(list))
            json_array_append(exts, copy);
        json_decref(copy);
    }
    json_t *bc = json_pack("{s:s, s:b, s:{s:b, s:n}}", "type", "basic_constraints", "critical", 1,
                           "value", "ca", 0, "path_length");
    s_add_missing(exts, cf_extension_parse(bc, err));
    json_decref(bc);
    s_add_missing(exts, cf_issue_aki_model(ca->cert, err));
    s_add_missing(exts, cf_issue_ski_model(key, err));
    if (cf_error_isset(err)) {
        json_decref(exts);
        return NULL;
    }
    return exts;
}

static void s_pack_str(msgpack_packer *pk, const char *key, const char *value)
{
    cf_msgpack_pack_cstr(pk, key);
    cf_msgpack_pack_cstr(pk, value);
}

static void s_pack_result(msgpack_packer *pk, const cf_ca_t *ca, bool renewed, const char *serial,
                          int64_t valid_from, int64_t expires, X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    const char *type = cf_key_type_name(X509_get0_pubkey(cert));
    msgpack_pack_map(pk, 7);
    s_pack_str(pk, "ca", ca->name);
    cf_msgpack_pack_cstr(pk, "renewed");
    if (renewed)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
    s_pack_str(pk, "serial", serial);
    cf_msgpack_pack_cstr(pk, "valid_from");
    msgpack_pack_int64(pk, valid_from);
    cf_msgpack_pack_cstr(pk, "expires");
    msgpack_pack_int64(pk, expires);
    s_pack_str(pk, "key_type", type ? type : "");
    cf_msgpack_pack_cstr(pk, "certificate");
    if (len > 0) {
        msgpack_pack_bin(pk, (size_t)len);
        msgpack_pack_bin_body(pk, der, (size_t)len);
    } else {
        msgpack_pack_nil(pk);
    }
    OPENSSL_free(der);
}

/* Insert the certificate row and the ocsp_responders row. 0 or CF_HANDLER_ABORT. */
static int s_insert(cf_handler_ctx_t *ctx, const cf_job_t *job, const cf_ca_t *ca, X509 *cert,
                    const json_t *subject, const char *cn, const char *profile_name,
                    const char *backend, const json_t *options, const char *key_id, int64_t nb,
                    int64_t na, cf_error_t *err)
{
    int rc = CF_HANDLER_ABORT;
    unsigned char *der = NULL;
    int der_len = i2d_X509(cert, &der);
    char *serial = cf_serial_hex(X509_get0_serialNumber(cert));
    char *hex = der_len > 0 ? cf_pg_bytea_hex(der, (size_t)der_len) : NULL;
    char *subject_text = json_dumps(subject, JSON_COMPACT);
    char *options_text = json_dumps(options, JSON_COMPACT);
    PGresult *res = NULL;
    if (!serial || !hex || !subject_text || !options_text) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    char ca_text[32], nb_text[32], na_text[32], shard[16], job_hex[2 * CF_JOB_ID_SIZE + 3] = "\\x";
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)ca->id);
    snprintf(nb_text, sizeof nb_text, "%lld", (long long)nb);
    snprintf(na_text, sizeof na_text, "%lld", (long long)na);
    snprintf(shard, sizeof shard, "%d",
             cf_issue_crl_shard(X509_get0_serialNumber(cert), ca->crl_shards));
    cf_job_id_hex(cf_job_id(job), job_hex + 2);
    const char *values[10] = {ca_text, serial, cn,           subject_text, nb_text,
                              na_text, hex,    profile_name, shard,        job_hex};
    res = cf_pg_exec_params(
        ctx->pg,
        "INSERT INTO certificates (ca_id, serial, cn, subject, valid_from, expires, der, profile, "
        "autogenerated, crl_shard, job_id) VALUES ($1::bigint, $2, $3, $4::jsonb, "
        "to_timestamp($5::bigint), to_timestamp($6::bigint), $7::bytea, $8, true, $9::int, "
        "$10::bytea) RETURNING id",
        10, values, NULL, NULL, 0);
    if (!res || PQntuples(res) != 1) {
        cf_error_set(err, "unavailable", "", "could not store the OCSP responder certificate: %s",
                     cf_pg_errstr(ctx->pg));
        goto out;
    }
    char cert_id[32];
    snprintf(cert_id, sizeof cert_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *rvalues[7] = {ca_text, cert_id, backend, options_text, key_id, nb_text, na_text};
    res = cf_pg_exec_params(
        ctx->pg,
        "INSERT INTO ocsp_responders (ca_id, certificate_id, key_backend, key_backend_options, "
        "key_id, valid_from, expires) VALUES ($1::bigint, $2::bigint, $3, $4::jsonb, $5, "
        "to_timestamp($6::bigint), to_timestamp($7::bigint)) RETURNING id",
        7, rvalues, NULL, NULL, 0);
    if (!res || PQntuples(res) != 1) {
        cf_error_set(err, "unavailable", "", "could not store the OCSP responder: %s",
                     cf_pg_errstr(ctx->pg));
        goto out;
    }
    rc = 0;
out:
    PQclear(res);
    OPENSSL_free(der);
    free(serial);
    free(hex);
    free(subject_text);
    free(options_text);
    return rc;
}

int ocsp_keygen(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result, cf_error_t *err)
{
    int rc = -1;
    json_t *params = ocsp_params(job, err), *profile = NULL, *subject = NULL, *exts = NULL;
    json_t *options = NULL;
    cf_ca_t *ca = NULL;
    EVP_PKEY *ca_key = NULL, *key = NULL;
    X509 *cert = NULL;
    cf_password_t *pw = NULL;
    s_current_t cur = {0};
    const char *ca_name, *profile_name, *algorithm, *key_type, *curve, *backend, *password;
    int64_t days, key_size, now = (int64_t)time(NULL);
    bool force;
    const EVP_MD *md = NULL;
    cf_key_params_t kp, ca_kp;
    if (!params || cf_params_check_keys(params, s_allowed, err) ||
        cf_params_str(params, "ca", true, NULL, &ca_name, err) ||
        cf_params_str(params, "profile", false, "ocsp", &profile_name, err) ||
        cf_params_str(params, "algorithm", false, NULL, &algorithm, err) ||
        cf_params_str(params, "key_type", false, NULL, &key_type, err) ||
        cf_params_int(params, "key_size", 0, 1, 65536, &key_size, err) ||
        cf_params_str(params, "elliptic_curve", false, NULL, &curve, err) ||
        cf_params_str(params, "key_backend", false,
                      cf_config_get(ctx->config, "ocsp", "key_backend", "storages"), &backend,
                      err) ||
        cf_params_bool(params, "force", false, &force, err) ||
        cf_params_str(params, "password", false, NULL, &password, err))
        goto out;
    if (strcmp(backend, "storages") != 0 && strcmp(backend, "db") != 0) {
        cf_error_set(err, "unknown_backend", "params.key_backend",
                     "key backend \"%.64s\" is unknown (use \"storages\" or \"db\")", backend);
        goto out;
    }
    if (!(ca = cf_ca_load(ctx->pg, ca_name, err))) {
        if (strcmp(err->code, "unknown_ca") == 0)
            snprintf(err->field, sizeof err->field, "params.ca");
        else
            rc = CF_HANDLER_ABORT;
        goto out;
    }
    if (cf_ca_check_usable(ca, now, err) != 0) {
        snprintf(err->field, sizeof err->field, "params.ca");
        goto out;
    }
    if (!(profile = cf_profile_load(ctx->config, profile_name, err)))
        goto out;
    /* Key parameters default to the CA's own key: its type, and its size or curve when the
     * type is the same (django-ca 1.23). */
    EVP_PKEY *ca_pub = X509_get0_pubkey(ca->cert);
    if (cf_key_params_from_key(&ca_kp, ca_pub, err) != 0) {
        snprintf(err->field, sizeof err->field, "params.ca");
        goto out;
    }
    const char *type = key_type ? key_type : ca_kp.key_type;
    bool same = strcasecmp(type, ca_kp.key_type) == 0;
    if (cf_key_params_init(&kp, ctx->config, type,
                           (int)(key_size ? key_size
                                 : same   ? ca_kp.key_size
                                          : 0),
                           curve                           ? curve
                           : same && *ca_kp.elliptic_curve ? ca_kp.elliptic_curve
                                                           : NULL,
                           err) != 0) {
        cf_error_prefix_field(err, "params");
        goto out;
    }
    /* The hash the CA signs the responder certificate with: the job's, else the CA's. */
    if (cf_key_check_algorithm(ca_pub,
                               algorithm        ? algorithm
                               : *ca->algorithm ? ca->algorithm
                                                : NULL,
                               &md, err) != 0) {
        snprintf(err->field, sizeof err->field, "params.algorithm");
        goto out;
    }
    bool expires_given =
        json_object_get(params, "expires") && !json_is_null(json_object_get(params, "expires"));
    if (cf_params_int(params, "expires",
                      ca->ocsp_responder_key_validity > 0 ? ca->ocsp_responder_key_validity : 3, 1,
                      3650, &days, err))
        goto out;
    int64_t not_after = now + 86400 * days;
    if (not_after > ca->expires) {
        if (expires_given) {
            cf_error_set(err, "invalid_value", "params.expires",
                         "responder certificate would expire after its certificate authority "
                         "\"%s\"",
                         ca->name);
            goto out;
        }
        not_after = ca->expires;
    }
    /* One keygen per CA at a time: a second one waits here and then finds the first's
     * responder, so that two jobs in the window do not both renew. */
    char ca_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)ca->id);
    const char *lock_values[1] = {ca_text};
    PGresult *res =
        cf_pg_exec_params(ctx->pg, "SELECT pg_advisory_xact_lock(hashtext('ocsp.keygen:' || $1))",
                          1, lock_values, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not lock the OCSP responders of \"%s\": %s",
                     ca->name, cf_pg_errstr(ctx->pg));
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    PQclear(res);
    if ((rc = s_current(ctx, ca, now, &cur, err)) != 0)
        goto out;
    rc = -1;
    int64_t window = cf_config_get_int(ctx->config, "ocsp", "responder_renewal_s", 86400);
    if (cur.id && !force && cur.expires - now > window) {
        s_pack_result(result, ca, false, cur.serial, cur.valid_from, cur.expires, cur.cert);
        rc = 0;
        goto out;
    }
    if (!(ca_key = cf_ca_private_key(ca, ctx->config, ocsp_keystore(ctx), password, err)))
        goto out;
    if (!(key = cf_key_generate(&kp, err))) {
        cf_error_prefix_field(err, "params");
        goto out;
    }
    char cn[4 * S_CN_MAX + 1];
    const char *ca_cn = json_string_value(json_object_get(ca->row, "cn"));
    s_subject_cn(ca_cn && *ca_cn ? ca_cn : ca->name, cn, sizeof cn);
    json_t *raw = json_pack("[{s:s, s:s}]", "oid", "2.5.4.3", "value", cn);
    subject = raw ? cf_name_parse(raw, err) : NULL;
    json_decref(raw);
    if (!subject) {
        if (!cf_error_isset(err))
            cf_error_set(err, "internal", "", "could not make the subject");
        snprintf(err->field, sizeof err->field, "params.ca");
        goto out;
    }
    if (!(exts = s_extensions(ca, profile, key, err))) {
        cf_error_prefix_field(err, "params.profile");
        goto out;
    }
    cf_issue_t req = {.subject = subject,
                      .public_key = key,
                      .extensions = exts,
                      .not_before = now,
                      .not_after = not_after,
                      .issuer_cert = ca->cert,
                      .issuer_key = ca_key,
                      .md = md};
    if (!(cert = cf_issue_cert(&req, err))) {
        cf_error_prefix_field(err, "params");
        goto out;
    }
    char *serial = cf_serial_hex(X509_get0_serialNumber(cert));
    char key_id[CF_KEYSTORE_ID_MAX + 1];
    snprintf(key_id, sizeof key_id, "ocsp-%s-%s", ca->name, serial ? serial : "");
    free(serial);
    /* The responder key is unlocked by the worker alone, with no job to bring a password:
     * what is configured for its key id ([keys] password_env / password_file), or none. */
    if (!(pw = cf_password_resolve(ctx->config, key_id, NULL, err)))
        goto out;
    if (cf_keystore_store(ocsp_keystore(ctx), backend, key_id, key, cf_password_value(pw), &options,
                          err) != 0) {
        /* The key follows the backend's rules: "db" wants a password unless
         * [keys] allow_unencrypted_db. The backend is what the job chose. */
        snprintf(err->field, sizeof err->field, "params.key_backend");
        if (strcmp(err->code, "database_error") == 0) {
            cf_error_set(err, "unavailable", "", "could not store the OCSP responder key");
            rc = CF_HANDLER_ABORT;
        }
        goto out;
    }
    if ((rc = s_insert(ctx, job, ca, cert, subject, cn, profile_name, backend, options, key_id, now,
                       not_after, err)) != 0)
        goto out;
    char *hex = cf_serial_hex(X509_get0_serialNumber(cert));
    cf_audit("ocsp.keygen", "ca", ca->name, "serial", hex ? hex : "", "key_type", kp.key_type,
             "key_backend", backend, "key_id", key_id, NULL);
    s_pack_result(result, ca, true, hex ? hex : "", now, not_after, cert);
    free(hex);
    rc = 0;
out:
    X509_free(cur.cert);
    X509_free(cert);
    EVP_PKEY_free(key);
    EVP_PKEY_free(ca_key);
    cf_password_free(&pw);
    cf_ca_destroy(&ca);
    json_decref(options);
    json_decref(exts);
    json_decref(subject);
    json_decref(profile);
    json_decref(params);
    return rc;
}
