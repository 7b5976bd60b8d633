/* cert.revoke: revoke a certificate or a CA (django-ca's revoke). In the job's transaction:
 * the row, the issuer's CRLs marked stale, and the certificate's OCSP response re-signed as
 * revoked; the response reaches Redis after the commit. Params and result: schemas/jobs.md. */
#include <string.h>
#include <time.h>

#include "cf_crl_lock.h"
#include "cf_log.h"
#include "cf_ocsp.h"
#include "cf_params.h"
#include "cf_revocation.h"
#include "signer.h"

static const char *const s_allowed[] = {"serial", "ca", "reason", "compromised", NULL};

/* What was revoked. */
typedef struct {
    bool is_ca;         /* a CA (certificate_authorities) rather than a certificate */
    int64_t issuer_id;  /* the issuing CA (a root CA is its own) */
    int crl_shard;      /* the certificate's CRL shard */
    int64_t revoked_at; /* Unix seconds */
    bool was_revoked;   /* found, but revoked before */
    int found;          /* rows matching */
} s_target_t;

static int s_db_error(cf_handler_ctx_t *ctx, cf_error_t *err, const char *what)
{
    cf_error_set(err, "unavailable", "", "could not %s: %s", what, cf_pg_errstr(ctx->pg));
    return CF_HANDLER_ABORT;
}

/* Count the rows with SERIAL (under CA_ID when given) in both tables. */
static int s_find(cf_handler_ctx_t *ctx, const char *serial, const char *ca_id, s_target_t *t,
                  cf_error_t *err)
{
    const char *values[2] = {serial, ca_id};
    PGresult *res = cf_pg_exec_params(
        ctx->pg,
        "SELECT false, ca_id, crl_shard, revoked FROM certificates WHERE serial = $1 "
        "AND ($2::bigint IS NULL OR ca_id = $2::bigint) UNION ALL "
        "SELECT true, COALESCE(parent_id, id), 0, revoked FROM certificate_authorities "
        "WHERE serial = $1 AND ($2::bigint IS NULL OR COALESCE(parent_id, id) = $2::bigint)",
        2, values, NULL, NULL, 0);
    if (!res)
        return s_db_error(ctx, err, "look up the serial");
    t->found = PQntuples(res);
    if (t->found == 1) {
        t->is_ca = PQgetvalue(res, 0, 0)[0] == 't';
        t->issuer_id = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
        t->crl_shard = atoi(PQgetvalue(res, 0, 2));
        t->was_revoked = PQgetvalue(res, 0, 3)[0] == 't';
    }
    PQclear(res);
    return 0;
}

/* Mark the row revoked unless it already is. 1 when marked, 0 when it was revoked meanwhile. */
static int s_mark(cf_handler_ctx_t *ctx, const char *serial, const s_target_t *t,
                  const char *reason, int64_t compromised, cf_error_t *err)
{
    char issuer[32], at[32], comp[32];
    snprintf(issuer, sizeof issuer, "%lld", (long long)t->issuer_id);
    snprintf(at, sizeof at, "%lld", (long long)t->revoked_at);
    snprintf(comp, sizeof comp, "%lld", (long long)compromised);
    const char *values[5] = {serial, issuer, at, reason, compromised ? comp : NULL};
    PGresult *res = cf_pg_exec_params(
        ctx->pg,
        t->is_ca
            ? "UPDATE certificate_authorities SET revoked = true, revoked_date = "
              "to_timestamp($3::bigint), revoked_reason = $4, compromised = "
              "to_timestamp($5::bigint), updated_at = now() WHERE serial = $1 AND "
              "COALESCE(parent_id, id) = $2::bigint AND NOT revoked"
            : "UPDATE certificates SET revoked = true, revoked_date = to_timestamp($3::bigint), "
              "revoked_reason = $4, compromised = to_timestamp($5::bigint) WHERE serial = $1 "
              "AND ca_id = $2::bigint AND NOT revoked",
        5, values, NULL, NULL, 0);
    if (!res)
        return s_db_error(ctx, err, "revoke");
    int n = atoi(PQcmdTuples(res));
    PQclear(res);
    return n;
}

/* Mark the issuer's CRLs that list the target as stale; how many. First the shared CRL locks
 * of those scopes: a first CRL being built (no row to mark yet) is waited for, and a first
 * build that starts now waits for this commit and lists the target (cf_crl_lock.h). */
static int s_mark_crls(cf_handler_ctx_t *ctx, const s_target_t *t, int *marked, cf_error_t *err)
{
    if (cf_crl_lock_revocation(ctx->pg, t->issuer_id, t->is_ca) != 0)
        return s_db_error(ctx, err, "lock the CRLs");
    char issuer[32], shard[16];
    snprintf(issuer, sizeof issuer, "%lld", (long long)t->issuer_id);
    snprintf(shard, sizeof shard, "%d", t->crl_shard);
    const char *values[2] = {issuer, shard};
    PGresult *res = cf_pg_exec_params(ctx->pg,
                                      t->is_ca ? "UPDATE crls SET stale = true, marks = marks + 1 "
                                                 "WHERE ca_id = $1::bigint AND scope IN ('all', "
                                                 "'ca')"
                                               : "UPDATE crls SET stale = true, marks = marks + 1 "
                                                 "WHERE ca_id = $1::bigint AND scope IN ('all', "
                                                 "'user') AND shard = $2::int",
                                      t->is_ca ? 1 : 2, values, NULL, NULL, 0);
    if (!res)
        return s_db_error(ctx, err, "mark the CRLs stale");
    *marked = atoi(PQcmdTuples(res));
    PQclear(res);
    return 0;
}

/* Re-sign the target's OCSP response as revoked. *STATE: "resigned", "no_responder" or
 * "failed" (logged; the revocation stands and the next presign retries). 0 or ABORT. */
static int s_resign(cf_handler_ctx_t *ctx, const cf_ca_t *issuer, const char *serial,
                    const s_target_t *t, const char *reason, int64_t compromised,
                    const char **state, cf_error_t *err)
{
    cf_error_t oerr = {0};
    *state = "failed";
    cf_ocsp_responder_t *responder =
        cf_ocsp_responder_load(ctx->pg, ctx->config, signer_keystore(ctx), issuer, &oerr);
    if (!responder) {
        if (strcmp(oerr.code, "no_responder") == 0) {
            *state = "no_responder";
            return 0;
        }
        if (strcmp(oerr.code, "unavailable") == 0) {
            *err = oerr;
            return CF_HANDLER_ABORT;
        }
        cf_log_error("revoked %s of \"%s\" but could not load its OCSP responder: %s", serial,
                     issuer->name, oerr.message);
        return 0;
    }
    cf_ocsp_status_t st = {.serial = serial,
                           .revoked = true,
                           .revoked_date = t->revoked_at,
                           .reason = reason,
                           .compromised = compromised};
    int64_t this_update = t->revoked_at,
            next_update = t->revoked_at + issuer->ocsp_response_validity;
    unsigned char *der = NULL;
    int len = 0;
    int rc = 0;
    if (cf_ocsp_sign(issuer, responder, &st, this_update, next_update, &der, &len, &oerr) != 0) {
        cf_log_error("revoked %s of \"%s\" but could not sign its OCSP response: %s", serial,
                     issuer->name, oerr.message);
    } else if (cf_ocsp_store(ctx->pg, issuer->id, &st, responder->id, this_update, next_update, der,
                             len, &oerr) != 0) {
        *err = oerr;
        rc = CF_HANDLER_ABORT;
    } else {
        size_t vlen = 0;
        unsigned char *value = cf_ocsp_cache_value(this_update, next_update, der, len, &vlen);
        char key[160], exat[32];
        cf_revstore_ocsp_key(key, sizeof key, issuer->id, serial);
        snprintf(exat, sizeof exat, "%lld", (long long)next_update);
        const char *argv[5] = {"SET", key, (const char *)value, "EXAT", exat};
        size_t lens[5] = {3, strlen(key), vlen, 4, strlen(exat)};
        if (value && cf_handler_defer_redis(ctx, 5, argv, lens) == 0)
            *state = "resigned";
        else
            cf_log_error("revoked %s of \"%s\": out of memory caching its OCSP response", serial,
                         issuer->name);
        free(value);
    }
    OPENSSL_free(der);
    cf_ocsp_responder_destroy(&responder);
    return rc;
}

int signer_cert_revoke(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                       cf_error_t *err)
{
    int rc = -1;
    json_t *params = signer_params(job, err);
    cf_ca_t *issuer = NULL;
    const char *serial_text = NULL, *ca_name = NULL, *reason_text = NULL, *reason = NULL;
    int64_t compromised = 0;
    int64_t now = (int64_t)time(NULL);
    char serial[48], ca_id[32] = "";
    if (!params || cf_params_check_keys(params, s_allowed, err) ||
        cf_params_str(params, "serial", true, NULL, &serial_text, err) ||
        cf_params_str(params, "ca", false, NULL, &ca_name, err) ||
        cf_params_str(params, "reason", false, "unspecified", &reason_text, err) ||
        cf_params_int(params, "compromised", 0, 1, now + 300, &compromised, err) ||
        cf_serial_normalize(serial_text, "params.serial", serial, sizeof serial, err) ||
        cf_reason_parse(reason_text, "params.reason", &reason, err))
        goto out;
    if (ca_name) {
        const cf_ca_t *named = signer_ca(ctx, ca_name, err);
        if (!named) {
            snprintf(err->field, sizeof err->field, "params.ca");
            goto out;
        }
        snprintf(ca_id, sizeof ca_id, "%lld", (long long)named->id);
    }
    s_target_t t = {.revoked_at = now};
    if ((rc = s_find(ctx, serial, ca_name ? ca_id : NULL, &t, err)) != 0)
        goto out;
    rc = -1;
    if (t.found == 0) {
        cf_error_set(err, "unknown_certificate", "params.serial",
                     "no certificate or CA has serial %s%s%s", serial, ca_name ? " under " : "",
                     ca_name ? ca_name : "");
        goto out;
    }
    if (t.found > 1) {
        cf_error_set(err, "ambiguous_serial", "params.serial",
                     "serial %s is known under %d CAs: name the issuer with \"ca\"", serial,
                     t.found);
        goto out;
    }
    if (t.was_revoked) {
        cf_error_set(err, "already_revoked", "params.serial", "%s %s is already revoked",
                     t.is_ca ? "CA" : "certificate", serial);
        goto out;
    }
    int marked = s_mark(ctx, serial, &t, reason, compromised, err);
    if (marked < 0) {
        rc = marked;
        goto out;
    }
    if (marked == 0) { /* revoked by a concurrent job between the look-up and the update */
        cf_error_set(err, "already_revoked", "params.serial", "%s %s is already revoked",
                     t.is_ca ? "CA" : "certificate", serial);
        goto out;
    }
    int crls = 0;
    if ((rc = s_mark_crls(ctx, &t, &crls, err)) != 0)
        goto out;
    issuer = cf_ca_load_id(ctx->pg, t.issuer_id, err);
    if (!issuer) {
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    const char *ocsp = "no_responder";
    if ((rc = s_resign(ctx, issuer, serial, &t, reason, compromised, &ocsp, err)) != 0)
        goto out;
    cf_audit("cert.revoke", "serial", serial, "ca", issuer->name, "kind",
             t.is_ca ? "ca" : "certificate", "reason", reason, "ocsp", ocsp, NULL);
    msgpack_pack_map(result, 8);
    cf_msgpack_pack_cstr(result, "serial");
    cf_msgpack_pack_cstr(result, serial);
    cf_msgpack_pack_cstr(result, "ca");
    cf_msgpack_pack_cstr(result, issuer->name);
    cf_msgpack_pack_cstr(result, "kind");
    cf_msgpack_pack_cstr(result, t.is_ca ? "ca" : "certificate");
    cf_msgpack_pack_cstr(result, "revoked_date");
    msgpack_pack_int64(result, t.revoked_at);
    cf_msgpack_pack_cstr(result, "reason");
    cf_msgpack_pack_cstr(result, reason);
    cf_msgpack_pack_cstr(result, "compromised");
    if (compromised)
        msgpack_pack_int64(result, compromised);
    else
        msgpack_pack_nil(result);
    cf_msgpack_pack_cstr(result, "ocsp");
    cf_msgpack_pack_cstr(result, ocsp);
    cf_msgpack_pack_cstr(result, "crls_marked");
    msgpack_pack_int(result, crls);
    rc = 0;
out:
    cf_ca_destroy(&issuer);
    json_decref(params);
    return rc;
}
