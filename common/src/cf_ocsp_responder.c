/* cf_ocsp_responder: a CA's current delegated OCSP responder, read from ocsp_responders (the
 * newest row valid now), its certificate from certificates and its key from the key backend. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_log.h"
#include "cf_ocsp.h"

#define S_CURRENT_SQL                                                                              \
    "SELECT r.id, r.key_backend, r.key_backend_options::text, r.key_id, c.der "                    \
    "FROM ocsp_responders r JOIN certificates c ON c.id = r.certificate_id "                       \
    "WHERE r.ca_id = $1::bigint AND r.valid_from <= to_timestamp($2::bigint) "                     \
    "AND r.expires > to_timestamp($2::bigint) ORDER BY r.id DESC LIMIT 1"

int cf_ocsp_responder_current(cf_pg_t *pg, int64_t ca_id, int64_t now, int64_t *id, cf_error_t *err)
{
    char ca_text[32], now_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)ca_id);
    snprintf(now_text, sizeof now_text, "%lld", (long long)now);
    const char *values[2] = {ca_text, now_text};
    cf_pg_prepare(pg, "cf_ocsp_responder_current",
                  "SELECT r.id FROM ocsp_responders r WHERE r.ca_id = $1::bigint "
                  "AND r.valid_from <= to_timestamp($2::bigint) "
                  "AND r.expires > to_timestamp($2::bigint) ORDER BY r.id DESC LIMIT 1");
    PGresult *res = cf_pg_exec_prepared(pg, "cf_ocsp_responder_current", 2, values, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not look up the OCSP responder: %s",
                     cf_pg_errstr(pg));
        return -1;
    }
    *id = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : 0;
    PQclear(res);
    return 0;
}

cf_ocsp_responder_t *cf_ocsp_responder_load(cf_pg_t *pg, cf_config_t *cfg, cf_keystore_t *ks,
                                            const cf_ca_t *ca, cf_error_t *err)
{
    char ca_text[32], now_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)ca->id);
    snprintf(now_text, sizeof now_text, "%lld", (long long)time(NULL));
    const char *values[2] = {ca_text, now_text};
    cf_pg_prepare(pg, "cf_ocsp_responder_load", S_CURRENT_SQL);
    PGresult *res = cf_pg_exec_prepared(pg, "cf_ocsp_responder_load", 2, values, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not load the OCSP responder of \"%s\": %s",
                     ca->name, cf_pg_errstr(pg));
        return NULL;
    }
    cf_ocsp_responder_t *self = NULL;
    json_t *options = NULL;
    X509 *cert = NULL;
    EVP_PKEY *key = NULL;
    cf_password_t *pw = NULL;
    unsigned char *der = NULL;
    if (PQntuples(res) != 1) {
        cf_error_set(err, "no_responder", "params.ca",
                     "certificate authority \"%s\" has no valid OCSP responder certificate (run "
                     "ocsp.keygen)",
                     ca->name);
        goto out;
    }
    int64_t id = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    const char *backend = PQgetvalue(res, 0, 1);
    const char *key_id = PQgetvalue(res, 0, 3);
    json_error_t jerr;
    options = json_loads(PQgetvalue(res, 0, 2), 0, &jerr);
    size_t der_len = 0;
    der = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 4), &der_len);
    const unsigned char *dp = der;
    if (der)
        cert = d2i_X509(NULL, &dp, (long)der_len);
    if (!options || !cert) {
        cf_error_set(err, "internal", "params.ca",
                     "OCSP responder %lld of \"%s\" is unreadable in the database", (long long)id,
                     ca->name);
        goto out;
    }
    if (!(pw = cf_password_resolve(cfg, key_id, NULL, err)))
        goto out;
    if (!(key = cf_keystore_load(ks, backend, key_id, options, pw, err))) {
        cf_log_error("could not load the key \"%s\" of the OCSP responder of \"%s\": %s", key_id,
                     ca->name, err->message);
        goto out;
    }
    self = cf_ocsp_responder_new(id, ca->id, ca->cert, cert, key, NULL, err);
out:
    if (der)
        PQfreemem(der);
    PQclear(res);
    cf_password_free(&pw);
    json_decref(options);
    X509_free(cert);
    EVP_PKEY_free(key);
    return self;
}
