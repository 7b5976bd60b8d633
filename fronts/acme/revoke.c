/* revoke: revokeCert (RFC 8555 7.6). The request is signed either by the account that
 * ordered the certificate (kid) or by the certificate's own key (jwk); the certificate must
 * be one this CA issued, byte for byte. The signer revokes it (cert.revoke), which also
 * re-signs its OCSP response and marks the CRLs stale. Reasons: those a subscriber may give,
 * as Let's Encrypt takes them: unspecified (0), keyCompromise (1), affiliationChanged (3),
 * superseded (4), cessationOfOperation (5). */
#include <msgpack.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "cf_base64url.h"
#include "cf_ca.h"
#include "cf_job.h"
#include "cf_log.h"
#include "cf_msgpack.h"
#include "cf_revocation.h"

#define S_SQL_CERT                                                                                 \
    "SELECT c.der, c.revoked, o.account_id FROM certificates c LEFT JOIN acme_certificates ac"     \
    " ON ac.certificate_id = c.id LEFT JOIN acme_orders o ON o.id = ac.order_id"                   \
    " WHERE c.ca_id = $1 AND c.serial = $2"

static bool s_reason_allowed(int64_t code)
{
    return code == 0 || code == 1 || code == 3 || code == 4 || code == 5;
}

/* What a parked revocation needs when it resumes. */
typedef struct {
    char serial[64]; /* the certificate's serial */
    char reason[32]; /* the reason's name */
} s_revoking_t;

/* The end of a revocation parked for its cert.revoke: answer from REPLY (NULL: none in time). */
static void s_revoke_resume(acme_req_t *req, const cf_reply_t *reply)
{
    const s_revoking_t *r = req->resume_arg;
    if (!reply) {
        cf_log_warn("cert.revoke of \"%s\" got no reply in time", r->serial);
        acme_problem(req, "serverInternal", MHD_HTTP_SERVICE_UNAVAILABLE,
                     "the revocation could not be confirmed in time; try again");
        return;
    }
    if (!cf_reply_ok(reply)) {
        const cf_error_t *e = cf_reply_error(reply);
        if (strcmp(e->code, "already_revoked") == 0) {
            acme_problem(req, "alreadyRevoked", 0, "the certificate is revoked already");
        } else {
            cf_log_warn("cert.revoke of \"%s\" failed: %s (field \"%s\"): %s", r->serial, e->code,
                        e->field, e->message);
            acme_internal(req);
        }
        return;
    }
    cf_audit("acme.revoke", "ca", req->ca.name, "serial", r->serial, "reason", r->reason, "by",
             req->has_account ? req->account.slug : "certificate key", NULL);
    acme_reply_empty(req, MHD_HTTP_OK);
}

/* Send cert.revoke and park the request until its reply (s_revoke_resume answers). 0, or -1
 * when it could not be parked. */
static int s_revoke_park(acme_req_t *req, const char *serial, const char *reason)
{
    s_revoking_t *r = calloc(1, sizeof *r);
    if (!r)
        return -1;
    snprintf(r->serial, sizeof r->serial, "%s", serial);
    snprintf(r->reason, sizeof r->reason, "%s", reason);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    cf_msgpack_pack_cstr(&pk, "serial");
    cf_msgpack_pack_cstr(&pk, serial);
    cf_msgpack_pack_cstr(&pk, "ca");
    cf_msgpack_pack_cstr(&pk, req->ca.name);
    cf_msgpack_pack_cstr(&pk, "reason");
    cf_msgpack_pack_cstr(&pk, reason);
    int64_t wait = req->srv->settings.finalize_wait_ms;
    int rc = acme_park(req, NULL, "cert.revoke", buf.data, buf.size, cf_now_ms() + (uint64_t)wait,
                       wait, s_revoke_resume, r, free);
    msgpack_sbuffer_destroy(&buf);
    if (rc != 0)
        free(r);
    return rc;
}

void acme_revoke(acme_req_t *req)
{
    const json_t *payload = acme_payload(req);
    if (!payload)
        return;
    unsigned char *der = NULL, *stored = NULL;
    size_t der_len = 0, stored_len = 0;
    X509 *cert = NULL;
    char *serial = NULL;
    PGresult *res = NULL;
    const json_t *text = json_object_get(payload, "certificate");
    const json_t *reason = json_object_get(payload, "reason");
    if (!json_is_string(text)) {
        acme_problem(req, "malformed", 0, "\"certificate\" (base64url DER) is missing");
        goto out;
    }
    int64_t code = 0;
    if (reason && !json_is_null(reason)) {
        if (!json_is_integer(reason)) {
            acme_problem(req, "malformed", 0, "\"reason\" is an RFC 5280 reason code");
            goto out;
        }
        code = json_integer_value(reason);
        if (!s_reason_allowed(code)) {
            acme_problem(req, "badRevocationReason", 0,
                         "reason %lld is not accepted (0, 1, 3, 4 or 5)", (long long)code);
            goto out;
        }
    }
    der = cf_base64url_decode(json_string_value(text), json_string_length(text), &der_len);
    const unsigned char *p = der;
    cert = der && der_len < 65536 ? d2i_X509(NULL, &p, (long)der_len) : NULL;
    if (!cert || p != der + der_len) {
        acme_problem(req, "malformed", 0, "\"certificate\" is not one DER certificate");
        goto out;
    }
    if (!(serial = cf_serial_hex(X509_get0_serialNumber(cert)))) {
        acme_internal(req);
        goto out;
    }
    char ca_id[24];
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)req->ca.id);
    const char *v[] = {ca_id, serial};
    if (!(res = acme_sql(req->store, "acme_revoke_cert", S_SQL_CERT, 2, v, NULL, NULL,
                         "read a certificate"))) {
        acme_internal(req);
        goto out;
    }
    if (PQntuples(res) == 1)
        stored = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &stored_len);
    if (!stored || stored_len != der_len || memcmp(stored, der, der_len) != 0) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND,
                     "this certificate authority did not issue this certificate");
        goto out;
    }
    bool authorized;
    if (req->has_account)
        authorized = !PQgetisnull(res, 0, 2) && acme_int(res, 0, 2) == req->account.id;
    else
        authorized = EVP_PKEY_eq(X509_get0_pubkey(cert), req->key) == 1;
    if (!authorized) {
        acme_problem(req, "unauthorized", 0,
                     req->has_account ? "the certificate was not ordered by this account"
                                      : "the JWS is not signed by the certificate's key");
        goto out;
    }
    if (PQgetvalue(res, 0, 1)[0] == 't') {
        acme_problem(req, "alreadyRevoked", 0, "the certificate is revoked already");
        goto out;
    }
    const char *reason_name = cf_reason_name((int)code);
    if (s_revoke_park(req, serial, reason_name ? reason_name : "unspecified") != 0)
        acme_problem(req, "serverInternal", MHD_HTTP_SERVICE_UNAVAILABLE,
                     "the revocation could not be started; try again");
out:
    PQfreemem(stored);
    PQclear(res);
    free(serial);
    X509_free(cert);
    free(der);
}
