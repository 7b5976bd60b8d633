/* cert.issue: sign a CSR with a CA and a profile (django-ca's CertificateManager.create_cert).
 * Batched: the runtime hands many jobs to one transaction. Params and result: schemas/jobs.md. */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cf_csr.h"
#include "cf_mail.h"
#include "cf_general_name.h"
#include "cf_issue.h"
#include "cf_key.h"
#include "cf_log.h"
#include "cf_params.h"
#include "cf_profile.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"
#include "signer.h"

static const char *const s_allowed[] = {
    "ca",          "csr",          "profile",        "subject",
    "expires",     "algorithm",    "extensions",     "password",
    "add_crl_url", "add_ocsp_url", "add_issuer_url", "add_issuer_alternative_name",
    "watchers",    NULL,
};

#define S_WATCHERS_MAX 100 /* watchers named by one job */

/* The watchers param as a PostgreSQL text[] literal (caller frees; NULL when absent or
 * empty, with *N 0), duplicates (in any case) dropped; -1 via err when it is no list of
 * valid addresses (checked before anything is written). */
static int s_watchers(const json_t *params, char **array, size_t *n, cf_error_t *err)
{
    *array = NULL;
    *n = 0;
    const json_t *list = json_object_get(params, "watchers");
    if (!list || json_is_null(list))
        return 0;
    if (!json_is_array(list)) {
        cf_error_set(err, "invalid_type", "params.watchers",
                     "parameter \"watchers\" must be a list of mail addresses");
        return -1;
    }
    if (json_array_size(list) > S_WATCHERS_MAX) {
        cf_error_set(err, "invalid_value", "params.watchers",
                     "parameter \"watchers\" holds more than %d addresses", S_WATCHERS_MAX);
        return -1;
    }
    size_t i;
    const json_t *v;
    json_array_foreach(list, i, v)
    {
        char field[48];
        snprintf(field, sizeof field, "params.watchers[%zu]", i);
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", field, "a watcher must be a mail address (a string)");
            return -1;
        }
        if (!cf_mail_addr_valid(json_string_value(v))) {
            cf_error_set(err, "invalid_value", field,
                         "\"%.300s\" is not a valid mail address (local@domain, at most 254 "
                         "characters)",
                         json_string_value(v));
            return -1;
        }
    }
    /* Addresses hold no '"', '\\' or ',', so quoting each one makes a safe array literal. */
    char *out = malloc(json_array_size(list) * 258 + 3), *o = out;
    if (!out) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    *o++ = '{';
    json_array_foreach(list, i, v)
    {
        bool dup = false;
        for (size_t k = 0; k < i && !dup; k++)
            dup = strcasecmp(json_string_value(json_array_get(list, k)), json_string_value(v)) == 0;
        if (dup)
            continue;
        o += sprintf(o, "%s\"%s\"", *n ? "," : "", json_string_value(v));
        (*n)++;
    }
    strcpy(o, "}");
    *array = out;
    return 0;
}

/* Create the watchers of ARRAY that do not exist yet and link them to the certificate (inside
 * the job's transaction). *LINKED: their stored addresses, one per row (caller clears). 0, or
 * CF_HANDLER_ABORT + err. */
static int s_link_watchers(cf_handler_ctx_t *ctx, const char *ca_id, const char *serial,
                           const char *array, PGresult **linked, cf_error_t *err)
{
    /* Sorted, so that two transactions creating the same new watchers take the index locks
     * in one order. */
    cf_pg_prepare(ctx->pg, "signer_watchers_insert",
                  "INSERT INTO watchers (mail) SELECT m FROM unnest($1::text[]) AS m "
                  "ORDER BY lower(m) ON CONFLICT DO NOTHING");
    cf_pg_prepare(ctx->pg, "signer_watchers_link",
                  "WITH link AS (INSERT INTO certificate_watchers (certificate_id, watcher_id) "
                  "SELECT c.id, w.id FROM certificates c JOIN watchers w ON lower(w.mail) IN "
                  "(SELECT lower(m) FROM unnest($3::text[]) AS m) "
                  "WHERE c.ca_id = $1::bigint AND c.serial = $2 ON CONFLICT DO NOTHING "
                  "RETURNING watcher_id) "
                  "SELECT w.mail FROM watchers w JOIN link ON link.watcher_id = w.id "
                  "ORDER BY lower(w.mail)");
    const char *values[3] = {ca_id, serial, array};
    PGresult *res =
        cf_pg_exec_prepared(ctx->pg, "signer_watchers_insert", 1, values + 2, NULL, NULL, 0);
    if (res) {
        PQclear(res);
        res = cf_pg_exec_prepared(ctx->pg, "signer_watchers_link", 3, values, NULL, NULL, 0);
    }
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not store the watchers: %s",
                     cf_pg_errstr(ctx->pg));
        return CF_HANDLER_ABORT;
    }
    *linked = res;
    return 0;
}

/* A CSR as PEM text, or DER (msgpack bin, which arrives here as base64). */
/* The CSR of the job, PEM or base64 DER, read and its signature checked (cf_csr); *DER
 * holds its bytes (caller frees) for as long as CSR is used. 0 or -1 ("invalid_csr"). */
static int s_csr(const char *text, unsigned char **der, cf_csr_t *csr, cf_error_t *err)
{
    long len = 0;
    *der = NULL;
    if (strstr(text, "-----BEGIN")) {
        BIO *bio = BIO_new_mem_buf(text, -1);
        unsigned char *data = NULL;
        if (bio &&
            PEM_bytes_read_bio(&data, &len, NULL, PEM_STRING_X509_REQ, bio, NULL, NULL) == 1 &&
            len > 0 && (*der = malloc((size_t)len)) != NULL)
            memcpy(*der, data, (size_t)len);
        OPENSSL_free(data);
        BIO_free(bio);
        ERR_clear_error();
    } else {
        size_t n = 0;
        if ((*der = cf_base64_decode(text, strlen(text), &n)) != NULL)
            len = (long)n;
    }
    if (!*der) {
        cf_error_set(err, "invalid_csr", "params.csr", "CSR is neither PEM nor DER");
        return -1;
    }
    return cf_csr_read(*der, (size_t)len, csr, err);
}

/* Add MODEL to LIST unless an extension of its type is already there (MODEL is consumed). */
static void s_add_missing(json_t *list, json_t *model)
{
    if (!model)
        return;
    if (!cf_extensions_find(list, json_string_value(json_object_get(model, "type"))))
        json_array_append(list, model);
    json_decref(model);
}

/* django-ca puts the common name into the SAN when it is not there yet (cn_in_san). */
static int s_cn_in_san(json_t *exts, const json_t *subject, cf_error_t *err)
{
    const char *cn = NULL;
    size_t i;
    json_t *attr;
    json_array_foreach(subject, i, attr)
    {
        if (strcmp(json_string_value(json_object_get(attr, "oid")), "2.5.4.3") == 0)
            cn = json_string_value(json_object_get(attr, "value"));
    }
    if (!cn)
        return 0;
    cf_error_t ignore = {0};
    json_t *gn = cf_general_name_from_string(cn, &ignore);
    if (!gn)
        return 0; /* a CN that is no DNS name or address stays out of the SAN */
    json_t *san = cf_extensions_find(exts, "subject_alternative_name");
    if (!san) {
        json_t *raw = json_pack("{s:s, s:[O]}", "type", "subject_alternative_name", "value", gn);
        json_t *m = cf_extension_parse(raw, err);
        json_decref(raw);
        json_decref(gn);
        if (!m)
            return -1;
        json_array_append_new(exts, m);
        return 0;
    }
    json_t *names = json_object_get(san, "value");
    json_t *n;
    json_array_foreach(names, i, n)
    {
        if (json_equal(n, gn)) {
            json_decref(gn);
            return 0;
        }
    }
    json_array_insert_new(names, 0, gn);
    return 0;
}

/* The CA's sign_* extensions as the add_* flags allow (job flag, else the profile's). */
static int s_ca_extensions(json_t *exts, const cf_ca_t *ca, const json_t *params,
                           const json_t *profile, cf_error_t *err)
{
    static const struct {
        const char *flag;
        const char *type;
    } map[] = {{"add_crl_url", "crl_distribution_points"},
               {"add_issuer_alternative_name", "issuer_alternative_name"},
               {"add_ocsp_url", "authority_information_access"},
               {NULL, "certificate_policies"}};
    for (size_t k = 0; k < sizeof map / sizeof map[0]; k++) {
        json_t *ext = cf_extensions_find(ca->sign_extensions, map[k].type);
        if (!ext || cf_extensions_find(exts, map[k].type))
            continue;
        bool add = true;
        if (map[k].flag &&
            cf_params_bool(params, map[k].flag, json_is_true(json_object_get(profile, map[k].flag)),
                           &add, err) != 0)
            return -1;
        /* The AIA carries both the OCSP URL and the issuer URL: add_issuer_url decides the latter.
         */
        bool add_issuer = true;
        if (strcmp(map[k].type, "authority_information_access") == 0 &&
            cf_params_bool(params, "add_issuer_url",
                           json_is_true(json_object_get(profile, "add_issuer_url")), &add_issuer,
                           err) != 0)
            return -1;
        if (strcmp(map[k].type, "authority_information_access") == 0 && (!add || !add_issuer)) {
            json_t *copy = json_deep_copy(ext), *list = json_object_get(copy, "value");
            for (size_t i = json_array_size(list); i-- > 0;) {
                const char *m =
                    json_string_value(json_object_get(json_array_get(list, i), "access_method"));
                bool is_ocsp = m && strcmp(m, "1.3.6.1.5.5.7.48.1") == 0;
                if ((is_ocsp && !add) || (!is_ocsp && !add_issuer))
                    json_array_remove(list, i);
            }
            if (json_array_size(list))
                json_array_append(exts, copy);
            json_decref(copy);
            continue;
        }
        if (!add)
            continue;
        if (strcmp(map[k].type, "crl_distribution_points") == 0 && ca->crl_shards > 1 &&
            ca->default_hostname) {
            continue; /* sharded CAs get the shard's URL, added by the caller */
        }
        json_array_append(exts, ext);
    }
    return 0;
}

int signer_cert_issue(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                      cf_error_t *err)
{
    int rc = -1;
    json_t *params = signer_params(job, err), *subject = NULL, *exts = NULL;
    const json_t *profile = NULL;
    json_t *given = NULL;
    const cf_ca_t *ca = NULL;
    cf_csr_t csr = {0};
    unsigned char *csr_der = NULL;
    EVP_PKEY *ca_key = NULL;
    X509 *cert = NULL;
    STACK_OF(X509) *bundle = NULL;
    char *serial = NULL, *der_hex = NULL, *subject_text = NULL, *watchers = NULL;
    size_t nwatchers = 0;
    PGresult *linked = NULL;
    unsigned char *der = NULL;
    const char *ca_name, *csr_text, *profile_name, *algorithm, *password;
    const EVP_MD *md = NULL;
    int64_t now = (int64_t)time(NULL), expires;
    if (!params || cf_params_check_keys(params, s_allowed, err) ||
        cf_params_str(params, "ca", true, NULL, &ca_name, err) ||
        cf_params_str(params, "csr", true, NULL, &csr_text, err) ||
        cf_params_str(params, "profile", false, NULL, &profile_name, err) ||
        cf_params_str(params, "algorithm", false, NULL, &algorithm, err) ||
        cf_params_str(params, "password", false, NULL, &password, err) ||
        s_watchers(params, &watchers, &nwatchers, err))
        goto out;
    if (!(ca = signer_ca(ctx, ca_name, err))) {
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
    if (!(profile = signer_profile(ctx, profile_name, err)) ||
        s_csr(csr_text, &csr_der, &csr, err) != 0)
        goto out;
    json_t *subj = json_object_get(params, "subject");
    if (subj && !json_is_null(subj))
        subject = signer_subject(subj, "params.subject", err);
    else if (!(subject = cf_name_from_openssl(csr.subject, err)))
        snprintf(err->field, sizeof err->field, "params.csr");
    if (!subject)
        goto out;
    int64_t dflt = now + 86400 * json_integer_value(json_object_get(profile, "expires"));
    if (dflt > ca->expires)
        dflt = ca->expires;
    if (cf_params_int(params, "expires", dflt, now + 1, INT64_MAX / 2, &expires, err))
        goto out;
    if (expires > ca->expires) {
        cf_error_set(err, "invalid_value", "params.expires",
                     "certificate would expire after its certificate authority \"%s\"", ca->name);
        goto out;
    }
    if (!(ca_key = signer_ca_key(ctx, ca, password, err)))
        goto out;
    if (cf_key_check_algorithm(ca_key,
                               algorithm ? algorithm : (*ca->algorithm ? ca->algorithm : NULL), &md,
                               err) != 0) {
        snprintf(err->field, sizeof err->field, "params.algorithm");
        goto out;
    }
    /* Extensions: the job's (only those a signing request may carry) win over the profile's;
     * then the CA's sign_* ones, the CN in the SAN, and what every certificate needs. */
    json_t *requested = json_object_get(params, "extensions");
    if (requested && !(given = cf_extensions_parse_for_sign(requested, err))) {
        cf_error_prefix_field(err, "params.extensions");
        goto out;
    }
    exts = given ? json_deep_copy(given) : json_array();
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(profile, "extensions"), i, e)
    {
        if (!cf_extensions_find(exts, json_string_value(json_object_get(e, "type"))))
            json_array_append(exts, e);
    }
    if (s_ca_extensions(exts, ca, params, profile, err) != 0)
        goto out;
    if (json_is_true(json_object_get(profile, "cn_in_san")) &&
        s_cn_in_san(exts, subject, err) != 0) {
        cf_error_prefix_field(err, "params.subject");
        goto out;
    }
    json_t *bc = json_pack("{s:s, s:b, s:{s:b, s:n}}", "type", "basic_constraints", "critical", 1,
                           "value", "ca", 0, "path_length");
    json_t *bcm = cf_extension_parse(bc, err);
    json_decref(bc);
    s_add_missing(exts, bcm);
    s_add_missing(exts, cf_issue_aki_model(ca->cert, err));
    s_add_missing(exts, cf_issue_ski_model_pubkey(csr.pubkey, err));
    if (cf_error_isset(err))
        goto out;
    /* The serial first: a sharded CA's certificates carry their shard's CRL URL, and the shard
     * comes from the serial. */
    ASN1_INTEGER *sn = cf_serial_random();
    int shard = sn ? cf_issue_crl_shard(sn, ca->crl_shards) : 0;
    if (sn && ca->crl_shards > 1 && ca->default_hostname &&
        !cf_extensions_find(exts, "crl_distribution_points")) {
        bool add_crl = true;
        if (cf_params_bool(params, "add_crl_url",
                           json_is_true(json_object_get(profile, "add_crl_url")), &add_crl, err)) {
            ASN1_INTEGER_free(sn);
            goto out;
        }
        char *url = add_crl ? cf_ca_url_crl(ca->default_hostname, ca->name, shard) : NULL;
        json_t *raw =
            url ? json_pack("{s:s, s:[{s:[{s:s, s:s}]}]}", "type", "crl_distribution_points",
                            "value", "full_name", "type", "URI", "value", url)
                : NULL;
        free(url);
        if (raw) {
            json_t *m = cf_extension_parse(raw, err);
            json_decref(raw);
            if (m)
                json_array_append_new(exts, m);
        }
    }
    cf_issue_t req = {.subject = subject,
                      .public_key = NULL,
                      .extensions = exts,
                      .not_before = now,
                      .not_after = expires,
                      .issuer_cert = ca->cert,
                      .issuer_key = ca_key,
                      .md = md,
                      .serial = sn,
                      .public_key_info = csr.pubkey};
    cert = sn ? cf_issue_cert(&req, err) : NULL;
    ASN1_INTEGER_free(sn);
    if (!cert) {
        if (!cf_error_isset(err))
            cf_error_set(err, "internal", "", "could not make a serial number");
        cf_error_prefix_field(err, "params");
        goto out;
    }
    serial = cf_serial_hex(X509_get0_serialNumber(cert));
    int der_len = i2d_X509(cert, &der);
    der_hex = cf_pg_bytea_hex(der, (size_t)der_len);
    subject_text = json_dumps(subject, JSON_COMPACT);
    const char *cn = "";
    json_array_foreach(subject, i, e)
    {
        if (strcmp(json_string_value(json_object_get(e, "oid")), "2.5.4.3") == 0)
            cn = json_string_value(json_object_get(e, "value"));
    }
    char ca_id[32], nb[32], na[32], shard_text[16], job_hex[2 * CF_JOB_ID_SIZE + 3] = "\\x";
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)ca->id);
    snprintf(nb, sizeof nb, "%lld", (long long)now);
    snprintf(na, sizeof na, "%lld", (long long)expires);
    snprintf(shard_text, sizeof shard_text, "%d", shard);
    cf_job_id_hex(cf_job_id(job), job_hex + 2);
    char *csr_hex = cf_pg_bytea_hex(csr.der, csr.der_len);
    const char *values[11] = {
        ca_id,   serial,     cn,      subject_text,
        nb,      na,         der_hex, json_string_value(json_object_get(profile, "name")),
        csr_hex, shard_text, job_hex};
    cf_pg_prepare(ctx->pg, "signer_cert_insert",
                  "INSERT INTO certificates (ca_id, serial, cn, subject, valid_from, expires, der, "
                  "profile, csr, crl_shard, job_id) VALUES ($1::bigint, $2, $3, $4::jsonb, "
                  "to_timestamp($5::bigint), to_timestamp($6::bigint), $7::bytea, $8, $9::bytea, "
                  "$10::int, $11::bytea)");
    PGresult *res = cf_pg_exec_prepared(ctx->pg, "signer_cert_insert", 11, values, NULL, NULL, 0);
    free(csr_hex);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not store the certificate: %s",
                     cf_pg_errstr(ctx->pg));
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    PQclear(res);
    if (watchers && s_link_watchers(ctx, ca_id, serial, watchers, &linked, err) != 0) {
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    if (!(bundle = signer_bundle(ctx, ca, err))) {
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    cf_audit("cert.issue", "ca", ca->name, "serial", serial, "cn", cn, "profile",
             json_string_value(json_object_get(profile, "name")), NULL);
    msgpack_pack_map(result, linked ? 7 : 6);
    cf_msgpack_pack_cstr(result, "serial");
    cf_msgpack_pack_cstr(result, serial);
    cf_msgpack_pack_cstr(result, "ca");
    cf_msgpack_pack_cstr(result, ca->name);
    cf_msgpack_pack_cstr(result, "der");
    msgpack_pack_bin(result, (size_t)der_len);
    msgpack_pack_bin_body(result, der, (size_t)der_len);
    /* The chain a server sends after its certificate: the issuing CA first, up to the root. */
    cf_msgpack_pack_cstr(result, "chain");
    int n = sk_X509_num(bundle);
    msgpack_pack_array(result, (size_t)n);
    for (int k = n - 1; k >= 0; k--)
        signer_pack_der(result, sk_X509_value(bundle, k));
    cf_msgpack_pack_cstr(result, "expires");
    msgpack_pack_int64(result, expires);
    cf_msgpack_pack_cstr(result, "crl_shard");
    msgpack_pack_int(result, shard);
    if (linked) {
        cf_msgpack_pack_cstr(result, "watchers");
        msgpack_pack_array(result, (size_t)PQntuples(linked));
        for (int r = 0; r < PQntuples(linked); r++)
            cf_msgpack_pack_cstr(result, PQgetvalue(linked, r, 0));
    }
    rc = 0;
out:
    PQclear(linked);
    free(watchers);
    free(serial);
    free(der_hex);
    free(subject_text);
    OPENSSL_free(der);
    X509_free(cert);
    EVP_PKEY_free(ca_key);
    cf_csr_clear(&csr);
    free(csr_der);
    json_decref(exts);
    json_decref(given);
    json_decref(subject);
    json_decref(params);
    return rc;
}
