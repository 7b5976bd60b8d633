/* finalize: an order's finalize URL (RFC 8555 7.4). The CSR must verify and name exactly the
 * order's identifiers; the order goes ready → processing together with its acme_certificates
 * row (holding the CSR), then a cert.issue job goes to the signer and the request waits up to
 * finalize_wait_ms for it. The job id is derived from the order, so the job is the same
 * however often it is sent: the signer's job_results make it exactly-once, and an order whose
 * finalize request stopped waiting is completed later from that stored result when the order
 * is read (acme_finalize_resume).
 *
 * What is signed: the CSR's key, the order's names as the SubjectAlternativeName, and a
 * subject of only a CN (the CSR's CN, else the first name when it fits in 64 characters).
 * Nothing else of the CSR's subject or extensions is taken: none of it was validated. */
#include <msgpack.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "cf_base64url.h"
#include "cf_job.h"
#include "cf_log.h"
#include "cf_msgpack.h"

#define S_MAX_NAMES 100

#define S_SQL_NAMES "SELECT value, wildcard FROM acme_authorizations WHERE order_id = $1"
#define S_SQL_START                                                                                \
    "UPDATE acme_orders SET status = 'processing' WHERE id = $1 AND status = 'ready' AND"          \
    " expires > now()"
#define S_SQL_CERT_ROW "INSERT INTO acme_certificates (order_id, slug, csr) VALUES ($1, $2, $3)"
#define S_SQL_LINK                                                                                 \
    "UPDATE acme_certificates SET certificate_id = (SELECT id FROM certificates WHERE ca_id = $2"  \
    " AND serial = $3) WHERE order_id = $1 AND certificate_id IS NULL AND EXISTS (SELECT 1 FROM"   \
    " certificates WHERE ca_id = $2 AND serial = $3)"
#define S_SQL_VALID                                                                                \
    "UPDATE acme_orders SET status = 'valid' WHERE id = $1 AND status = 'processing'"
#define S_SQL_INVALID                                                                              \
    "UPDATE acme_orders SET status = 'invalid', error = $2::jsonb WHERE id = $1 AND"               \
    " status = 'processing'"
#define S_SQL_PENDING_ROW                                                                          \
    "SELECT csr, floor(extract(epoch FROM now() - created_at) * 1000) FROM acme_certificates"      \
    " WHERE order_id = $1 AND certificate_id IS NULL"
#define S_SQL_JOB_RESULT "SELECT reply FROM job_results WHERE id = decode($1, 'hex')"

/* Fabric codes (schemas/jobs.md) after which the job may still run or run again: the order
 * stays processing. Every other error is the job's verdict. */
static const char *const s_not_final[] = {
    "timeout", "busy", "deadline_exceeded", "unavailable", "in_progress", "interrupted", NULL,
};

/* The names a CSR asks for. */
typedef struct {
    char names[S_MAX_NAMES][ACME_NAME_MAX]; /* lower case, distinct, in the CSR's order */
    size_t n;                               /* how many */
    char cn[ACME_NAME_MAX];                 /* the CN for the subject, "" for none */
} s_csr_names_t;

/* The cert.issue job id of an order: the same for every send, so that the signer runs it
 * once and keeps its reply in job_results. */
static void s_job_id(const char *order_slug, uint8_t id[CF_JOB_ID_SIZE], char *hex)
{
    unsigned char md[SHA256_DIGEST_LENGTH];
    char input[ACME_SLUG_MAX + 32];
    int n = snprintf(input, sizeof input, "certfleet-acme finalize %s", order_slug);
    EVP_Digest(input, (size_t)n, md, NULL, EVP_sha256(), NULL);
    memcpy(id, md, CF_JOB_ID_SIZE);
    if (hex)
        cf_job_id_hex(id, hex);
}

static bool s_has(const s_csr_names_t *names, const char *name)
{
    for (size_t i = 0; i < names->n; i++)
        if (strcmp(names->names[i], name) == 0)
            return true;
    return false;
}

/* Read the DNS names and the CN of CSR into OUT. 0, or -1 with why in WHY. */
static int s_csr_names(X509_REQ *csr, s_csr_names_t *out, char *why, size_t whylen)
{
    memset(out, 0, sizeof *out);
    int rc = -1;
    STACK_OF(X509_EXTENSION) *exts = X509_REQ_get_extensions(csr);
    GENERAL_NAMES *gns = NULL;
    int crit = 0;
    gns = exts ? X509V3_get_d2i(exts, NID_subject_alt_name, &crit, NULL) : NULL;
    if (!gns && crit != -1) {
        snprintf(why, whylen, "the subjectAltName extension is unreadable or repeated");
        goto out;
    }
    for (int i = 0; gns && i < sk_GENERAL_NAME_num(gns); i++) {
        const GENERAL_NAME *gn = sk_GENERAL_NAME_value(gns, i);
        if (gn->type != GEN_DNS) {
            snprintf(why, whylen, "the subjectAltName may hold only DNS names");
            goto out;
        }
        const ASN1_IA5STRING *ia5 = gn->d.dNSName;
        char raw[ACME_NAME_MAX], name[ACME_NAME_MAX], reason[128];
        int len = ASN1_STRING_length(ia5);
        if (len <= 0 || len >= (int)sizeof raw) {
            snprintf(why, whylen, "a DNS name in the subjectAltName is empty or too long");
            goto out;
        }
        memcpy(raw, ASN1_STRING_get0_data(ia5), (size_t)len);
        raw[len] = '\0';
        if (strlen(raw) != (size_t)len || acme_name_check(raw, name, reason, sizeof reason) != 0) {
            snprintf(why, whylen, "\"%.100s\" in the subjectAltName is not a valid name", raw);
            goto out;
        }
        if (s_has(out, name))
            continue;
        if (out->n == S_MAX_NAMES) {
            snprintf(why, whylen, "the CSR names more than %d names", S_MAX_NAMES);
            goto out;
        }
        memcpy(out->names[out->n++], name, sizeof name);
    }
    if (out->n == 0) {
        snprintf(why, whylen, "the CSR has no DNS names in a subjectAltName extension");
        goto out;
    }
    /* The CN, when there is one, must be one of the names (RFC 8555 7.4). */
    const X509_NAME *subject = X509_REQ_get_subject_name(csr);
    int idx = X509_NAME_get_index_by_NID(subject, NID_commonName, -1);
    if (idx >= 0) {
        if (X509_NAME_get_index_by_NID(subject, NID_commonName, idx) >= 0) {
            snprintf(why, whylen, "the CSR's subject has more than one CN");
            goto out;
        }
        unsigned char *utf8 = NULL;
        int len =
            ASN1_STRING_to_UTF8(&utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, idx)));
        char name[ACME_NAME_MAX], reason[128];
        bool ok = len > 0 && len < ACME_NAME_MAX && strlen((char *)utf8) == (size_t)len &&
                  acme_name_check((char *)utf8, name, reason, sizeof reason) == 0 &&
                  s_has(out, name);
        OPENSSL_free(utf8);
        if (!ok) {
            snprintf(why, whylen, "the CSR's CN is not one of its subjectAltName DNS names");
            goto out;
        }
        memcpy(out->cn, name, sizeof name);
    } else if (strlen(out->names[0]) <= 64) {
        memcpy(out->cn, out->names[0], sizeof out->cn);
    }
    rc = 0;
out:
    GENERAL_NAMES_free(gns);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    return rc;
}

/* Parse DER as a CSR whose signature verifies. NULL with why in WHY. */
static X509_REQ *s_csr_parse(const unsigned char *der, size_t len, char *why, size_t whylen)
{
    const unsigned char *p = der;
    X509_REQ *csr = len < 65536 ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
    if (!csr || p != der + len) {
        snprintf(why, whylen, "the CSR is not one DER PKCS#10 request");
        X509_REQ_free(csr);
        return NULL;
    }
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
    if (!key || X509_REQ_verify(csr, key) != 1) {
        snprintf(why, whylen, "the CSR's signature does not verify");
        X509_REQ_free(csr);
        return NULL;
    }
    return csr;
}

/* Pack the cert.issue params for the order's CSR (DER) and NAMES into BUF. */
static void s_pack_issue(acme_req_t *req, const acme_order_t *order, const unsigned char *der,
                         size_t len, const s_csr_names_t *names, msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    size_t entries = 4 + (req->ca.profile[0] ? 1 : 0) + (order->not_after ? 1 : 0);
    msgpack_pack_map(&pk, entries);
    cf_msgpack_pack_cstr(&pk, "ca");
    cf_msgpack_pack_cstr(&pk, req->ca.name);
    cf_msgpack_pack_cstr(&pk, "csr");
    msgpack_pack_bin(&pk, len);
    msgpack_pack_bin_body(&pk, der, len);
    if (req->ca.profile[0]) {
        cf_msgpack_pack_cstr(&pk, "profile");
        cf_msgpack_pack_cstr(&pk, req->ca.profile);
    }
    if (order->not_after) {
        cf_msgpack_pack_cstr(&pk, "expires");
        msgpack_pack_int64(&pk, order->not_after);
    }
    cf_msgpack_pack_cstr(&pk, "subject");
    if (names->cn[0]) {
        msgpack_pack_array(&pk, 1);
        msgpack_pack_map(&pk, 2);
        cf_msgpack_pack_cstr(&pk, "oid");
        cf_msgpack_pack_cstr(&pk, "2.5.4.3");
        cf_msgpack_pack_cstr(&pk, "value");
        cf_msgpack_pack_cstr(&pk, names->cn);
    } else {
        msgpack_pack_array(&pk, 0);
    }
    cf_msgpack_pack_cstr(&pk, "extensions");
    msgpack_pack_array(&pk, 1);
    msgpack_pack_map(&pk, 3);
    cf_msgpack_pack_cstr(&pk, "type");
    cf_msgpack_pack_cstr(&pk, "subject_alternative_name");
    cf_msgpack_pack_cstr(&pk, "critical");
    msgpack_pack_false(&pk);
    cf_msgpack_pack_cstr(&pk, "value");
    msgpack_pack_array(&pk, names->n);
    for (size_t i = 0; i < names->n; i++) {
        msgpack_pack_map(&pk, 2);
        cf_msgpack_pack_cstr(&pk, "type");
        cf_msgpack_pack_cstr(&pk, "DNS");
        cf_msgpack_pack_cstr(&pk, "value");
        cf_msgpack_pack_cstr(&pk, names->names[i]);
    }
}

/* Send the order's cert.issue job again (its fixed id) on the thread's client, without
 * waiting: a later read of the order finds its stored result. */
static void s_resend_issue(acme_req_t *req, const acme_order_t *order, const unsigned char *der,
                           size_t len, const s_csr_names_t *names)
{
    cf_client_t *client = acme_store_client(req->store);
    if (!client) {
        cf_log_error("no broker client: cert.issue for order \"%s\" not sent", order->slug);
        return;
    }
    uint8_t id[CF_JOB_ID_SIZE];
    s_job_id(order->slug, id, NULL);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    s_pack_issue(req, order, der, len, names, &buf);
    uint64_t deadline = cf_now_ms() + (uint64_t)req->srv->settings.finalize_wait_ms;
    /* -1 means this thread's client still has the job in flight from an earlier send. */
    cf_client_send(client, id, "cert.issue", buf.data, buf.size, deadline, NULL);
    msgpack_sbuffer_destroy(&buf);
}

/* The problem recorded for a cert.issue error (the signer's detail goes to the log). */
static json_t *s_issue_problem(const cf_error_t *e)
{
    if (strcmp(e->code, "invalid_csr") == 0)
        return acme_problem_new("badCSR", 0, e->message);
    if (strcmp(e->code, "invalid_value") == 0 && strcmp(e->field, "params.expires") == 0)
        return acme_problem_new("malformed", 0,
                                "the requested notAfter is past what the CA can sign");
    return acme_problem_new("serverInternal", 0, "the certificate could not be issued");
}

/* Record the outcome of the order's cert.issue REPLY. */
static void s_complete(acme_req_t *req, const acme_order_t *order, const cf_reply_t *reply)
{
    char id[24], ca_id[24];
    snprintf(id, sizeof id, "%lld", (long long)order->id);
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)req->ca.id);
    if (cf_reply_ok(reply)) {
        char *serial = cf_msgpack_strdup(cf_msgpack_map_get(cf_reply_result(reply), "serial"));
        const char *vl[] = {id, ca_id, serial ? serial : ""}, *vv[] = {id};
        PGresult *r1 = NULL, *r2 = NULL;
        bool ok = serial && acme_begin(req->store) == 0 &&
                  (r1 = acme_sql(req->store, "acme_finalize_link", S_SQL_LINK, 3, vl, NULL, NULL,
                                 "link an ACME order's certificate")) &&
                  PQcmdTuples(r1)[0] == '1' &&
                  (r2 = acme_sql(req->store, "acme_finalize_valid", S_SQL_VALID, 1, vv, NULL, NULL,
                                 "complete an ACME order")) &&
                  acme_commit(req->store) == 0;
        PQclear(r1);
        PQclear(r2);
        if (ok) {
            cf_audit("acme.finalize", "ca", req->ca.name, "account", req->account.slug, "order",
                     order->slug, "serial", serial, "status", "valid", NULL);
        } else {
            acme_rollback(req->store);
            cf_log_error("order \"%s\": certificate \"%s\" issued but not recorded; the next "
                         "read of the order tries again",
                         order->slug, serial ? serial : "?");
        }
        free(serial);
        return;
    }
    const cf_error_t *e = cf_reply_error(reply);
    for (size_t i = 0; s_not_final[i]; i++) {
        if (strcmp(e->code, s_not_final[i]) == 0) {
            cf_log_warn("order \"%s\": cert.issue not done yet (%s: %s); it stays processing",
                        order->slug, e->code, e->message);
            return;
        }
    }
    cf_log_warn("order \"%s\": cert.issue failed: %s (field \"%s\"): %s", order->slug, e->code,
                e->field, e->message);
    json_t *problem = s_issue_problem(e);
    char *text = problem ? json_dumps(problem, JSON_COMPACT) : NULL;
    json_decref(problem);
    const char *v[] = {id, text};
    PGresult *res = text ? acme_sql(req->store, "acme_finalize_invalid", S_SQL_INVALID, 2, v, NULL,
                                    NULL, "fail an ACME order")
                         : NULL;
    if (res)
        cf_audit("acme.finalize", "ca", req->ca.name, "account", req->account.slug, "order",
                 order->slug, "status", "invalid", "error", e->code, NULL);
    PQclear(res);
    free(text);
}

/* The order's names (from its authorizations) into OUT. 0 or -1. */
static int s_order_names(acme_req_t *req, const acme_order_t *order, s_csr_names_t *out)
{
    memset(out, 0, sizeof *out);
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)order->id);
    const char *v[] = {id};
    PGresult *res = acme_sql(req->store, "acme_finalize_names", S_SQL_NAMES, 1, v, NULL, NULL,
                             "read an order's names");
    if (!res)
        return -1;
    for (int i = 0; i < PQntuples(res) && out->n < S_MAX_NAMES; i++)
        snprintf(out->names[out->n++], ACME_NAME_MAX, "%s%s",
                 PQgetvalue(res, i, 1)[0] == 't' ? "*." : "", PQgetvalue(res, i, 0));
    PQclear(res);
    return 0;
}

/* Move the order to processing with its acme_certificates row. 1 done, 0 not ready (any
 * more), -1 store error. */
static int s_start(acme_req_t *req, const acme_order_t *order, const unsigned char *der, size_t len)
{
    char id[24], slug[ACME_SLUG_MAX];
    snprintf(id, sizeof id, "%lld", (long long)order->id);
    if (acme_random_slug(slug) != 0 || acme_begin(req->store) != 0)
        return -1;
    const char *v1[] = {id};
    PGresult *res = acme_sql(req->store, "acme_finalize_start", S_SQL_START, 1, v1, NULL, NULL,
                             "start finalizing an order");
    if (!res) {
        acme_rollback(req->store);
        return -1;
    }
    bool moved = PQcmdTuples(res)[0] == '1';
    PQclear(res);
    if (!moved) {
        acme_rollback(req->store);
        return 0;
    }
    const char *v2[] = {id, slug, (const char *)der};
    int lens[] = {0, 0, (int)len}, fmts[] = {0, 0, 1};
    res = acme_sql(req->store, "acme_finalize_cert_row", S_SQL_CERT_ROW, 3, v2, lens, fmts,
                   "record an ACME CSR");
    if (!res) {
        acme_rollback(req->store);
        return -1;
    }
    PQclear(res);
    return acme_commit(req->store) == 0 ? 1 : -1;
}

/* The end of a finalize parked for its cert.issue (ARG: the order's slug): record the reply,
 * if one came and nobody recorded it meanwhile, and answer with the order as it is now
 * (processing when the signer has not answered yet: the client polls). */
static void s_finalize_resume(acme_req_t *req, const cf_reply_t *reply)
{
    const char *slug = req->resume_arg;
    acme_order_t order = {0};
    if (acme_order_load(req, slug, &order) != 1) {
        acme_internal(req);
        return;
    }
    if (!reply) {
        cf_log_warn(
            "order \"%s\": no cert.issue reply within %lld ms (or stopping); it stays processing",
            slug, (long long)req->srv->settings.finalize_wait_ms);
    } else if (strcmp(order.status, "processing") == 0 && !order.cert_issued) {
        s_complete(req, &order, reply);
        acme_order_clear(&order);
        if (acme_order_load(req, slug, &order) != 1) {
            acme_internal(req);
            return;
        }
    }
    acme_order_reply(req, &order, MHD_HTTP_OK);
    acme_order_clear(&order);
}

void acme_finalize(acme_req_t *req)
{
    const json_t *payload = acme_payload(req);
    if (!payload)
        return;
    acme_order_t order = {0};
    X509_REQ *csr = NULL;
    unsigned char *der = NULL;
    size_t der_len = 0;
    s_csr_names_t *names = calloc(1, sizeof *names), *want = calloc(1, sizeof *want);
    char why[256];
    if (!names || !want) {
        acme_internal(req);
        goto out;
    }
    int found = acme_order_load(req, req->slug, &order);
    if (found < 0) {
        acme_internal(req);
        goto out;
    }
    if (found == 0) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND, "no such order");
        goto out;
    }
    if (order.account_id != req->account.id) {
        acme_problem(req, "unauthorized", 0, "the order belongs to another account");
        goto out;
    }
    if (strcmp(order.status, "ready") != 0) {
        acme_problem(req, "orderNotReady", 0, "the order is %s, not ready", order.status);
        goto out;
    }
    const json_t *text = json_object_get(payload, "csr");
    if (!json_is_string(text)) {
        acme_problem(req, "malformed", 0, "\"csr\" (base64url DER) is missing");
        goto out;
    }
    der = cf_base64url_decode(json_string_value(text), json_string_length(text), &der_len);
    if (!der || der_len == 0) {
        acme_problem(req, "badCSR", 0, "\"csr\" is not base64url without padding");
        goto out;
    }
    if (!(csr = s_csr_parse(der, der_len, why, sizeof why))) {
        acme_problem(req, "badCSR", 0, "%s", why);
        goto out;
    }
    EVP_PKEY *key = X509_REQ_get0_pubkey(csr);
    if (EVP_PKEY_eq(key, req->key) == 1) {
        acme_problem(req, "badCSR", 0, "the CSR's key is the account key");
        goto out;
    }
    if (EVP_PKEY_is_a(key, "DSA") || (EVP_PKEY_is_a(key, "RSA") && EVP_PKEY_get_bits(key) < 2048)) {
        acme_problem(req, "badCSR", 0, "the CSR's key is too weak (RSA needs 2048 bits, no DSA)");
        goto out;
    }
    if (s_csr_names(csr, names, why, sizeof why) != 0) {
        acme_problem(req, "badCSR", 0, "%s", why);
        goto out;
    }
    if (s_order_names(req, &order, want) != 0) {
        acme_internal(req);
        goto out;
    }
    bool same = names->n == want->n;
    for (size_t i = 0; same && i < names->n; i++)
        same = s_has(want, names->names[i]);
    if (!same) {
        acme_problem(req, "badCSR", 0, "the CSR's names are not exactly the order's identifiers");
        goto out;
    }
    int started = s_start(req, &order, der, der_len);
    if (started < 0) {
        acme_internal(req);
        goto out;
    }
    if (started == 0) {
        acme_problem(req, "orderNotReady", 0, "the order is no longer ready");
        goto out;
    }
    snprintf(order.status, sizeof order.status, "processing");
    /* Wait for the signer without holding the HTTP thread (park.c); s_finalize_resume
     * answers. Not parked (stopping, out of memory): the order is answered as processing and
     * a later read completes it (acme_finalize_resume). */
    uint8_t id[CF_JOB_ID_SIZE];
    s_job_id(order.slug, id, NULL);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    s_pack_issue(req, &order, der, der_len, names, &buf);
    uint64_t deadline = cf_now_ms() + (uint64_t)req->srv->settings.finalize_wait_ms;
    char *slug = strdup(order.slug);
    int parked = slug
                     ? acme_park(req, id, "cert.issue", buf.data, buf.size, deadline,
                                 req->srv->settings.finalize_wait_ms, s_finalize_resume, slug, free)
                     : -1;
    msgpack_sbuffer_destroy(&buf);
    if (parked != 0) {
        free(slug);
        acme_order_reply(req, &order, MHD_HTTP_OK);
    }
out:
    acme_order_clear(&order);
    X509_REQ_free(csr);
    free(der);
    free(names);
    free(want);
}

/* The stored reply of the order's cert.issue job (caller owns), or NULL. */
static cf_reply_t *s_stored_reply(acme_req_t *req, const acme_order_t *order)
{
    uint8_t id[CF_JOB_ID_SIZE];
    char hex[2 * CF_JOB_ID_SIZE + 1];
    s_job_id(order->slug, id, hex);
    const char *v[] = {hex};
    PGresult *res = acme_sql(req->store, "acme_finalize_job_result", S_SQL_JOB_RESULT, 1, v, NULL,
                             NULL, "read a job result");
    cf_reply_t *reply = NULL;
    if (res && PQntuples(res) == 1) {
        size_t len = 0;
        unsigned char *bytes = PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len);
        cf_error_t err = {0};
        reply = bytes ? cf_reply_decode(bytes, len, &err) : NULL;
        if (!reply)
            cf_log_error("stored reply of order \"%s\"'s cert.issue is unreadable: %s", order->slug,
                         err.message);
        PQfreemem(bytes);
    }
    PQclear(res);
    return reply;
}

void acme_finalize_resume(acme_req_t *req, acme_order_t *order)
{
    if (strcmp(order->status, "processing") != 0 || order->cert_issued)
        return;
    cf_reply_t *reply = s_stored_reply(req, order);
    if (reply) {
        s_complete(req, order, reply);
        cf_reply_destroy(&reply);
        char slug[ACME_SLUG_MAX];
        snprintf(slug, sizeof slug, "%s", order->slug);
        acme_order_clear(order);
        if (acme_order_load(req, slug, order) != 1)
            snprintf(order->status, sizeof order->status, "processing");
        return;
    }
    /* No result yet. Once the job's deadline has passed it can no longer run: send it again
     * (same id), at most once per finalize_wait_ms across all threads and processes. */
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)order->id);
    const char *v[] = {id};
    PGresult *res = acme_sql(req->store, "acme_finalize_pending", S_SQL_PENDING_ROW, 1, v, NULL,
                             NULL, "read an ACME CSR");
    if (!res || PQntuples(res) != 1 || acme_int(res, 0, 1) < req->srv->settings.finalize_wait_ms) {
        PQclear(res);
        return;
    }
    redisReply *r =
        cf_redis_command(acme_store_redis(req->store), "SET cf:acme:finalize:%s 1 NX PX %lld",
                         order->slug, (long long)req->srv->settings.finalize_wait_ms);
    bool ours = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    size_t len = 0;
    unsigned char *der =
        ours ? PQunescapeBytea((const unsigned char *)PQgetvalue(res, 0, 0), &len) : NULL;
    PQclear(res);
    char why[256];
    X509_REQ *csr = der ? s_csr_parse(der, len, why, sizeof why) : NULL;
    s_csr_names_t *names = csr ? calloc(1, sizeof *names) : NULL;
    if (names && s_csr_names(csr, names, why, sizeof why) == 0) {
        cf_log_info("order \"%s\": sending its cert.issue again", order->slug);
        /* Do not hold the reader up: the next read finds the stored result. */
        s_resend_issue(req, order, der, len, names);
    }
    free(names);
    X509_REQ_free(csr);
    PQfreemem(der);
}
