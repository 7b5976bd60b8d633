/* certificate: the certificate URL (RFC 8555 7.4.2), POST-as-GET by the order's account, as
 * application/pem-certificate-chain: the leaf, then the issuing CA and its parents up to but
 * excluding the root (a self-signed CA, parent_id NULL). Relying parties have the root
 * already; sending it only costs bytes. A leaf issued by a root comes alone. */
#include <openssl/bio.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <string.h>

#include "acme.h"
#include "cf_log.h"

/* The depth of a CA hierarchy we follow at most (a loop in bad data must end). */
#define S_MAX_DEPTH 16

#define S_SQL_CERT                                                                                 \
    "SELECT c.der, c.ca_id, o.account_id FROM acme_certificates ac JOIN acme_orders o"             \
    " ON o.id = ac.order_id JOIN acme_accounts a ON a.id = o.account_id JOIN certificates c"       \
    " ON c.id = ac.certificate_id WHERE ac.slug = $1 AND a.ca_id = $2"
#define S_SQL_CHAIN                                                                                \
    "WITH RECURSIVE chain (id, parent_id, der, depth) AS (SELECT id, parent_id, der, 0 FROM"       \
    " certificate_authorities WHERE id = $1 UNION ALL SELECT p.id, p.parent_id, p.der,"            \
    " chain.depth + 1 FROM certificate_authorities p JOIN chain ON p.id = chain.parent_id"         \
    " WHERE chain.depth < 16) SELECT der FROM chain WHERE parent_id IS NOT NULL ORDER BY depth"

/* Append the bytea text VALUE as one PEM certificate to BIO. 0 or -1. */
static int s_pem(BIO *bio, const char *value)
{
    size_t len = 0;
    unsigned char *der = PQunescapeBytea((const unsigned char *)value, &len);
    int ok = der && len > 0 && PEM_write_bio(bio, "CERTIFICATE", "", der, (long)len) > 0;
    PQfreemem(der);
    return ok ? 0 : -1;
}

void acme_certificate_post(acme_req_t *req)
{
    if (!acme_post_as_get(req)) {
        acme_problem(req, "malformed", 0,
                     "a certificate is fetched with POST-as-GET (empty payload)");
        return;
    }
    char ca_id[24];
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)req->ca.id);
    const char *v[] = {req->slug, ca_id};
    PGresult *cert = acme_sql(req->store, "acme_cert_load", S_SQL_CERT, 2, v, NULL, NULL,
                              "read an ACME certificate");
    PGresult *chain = NULL;
    BIO *bio = NULL;
    if (!cert) {
        acme_internal(req);
        goto out;
    }
    if (PQntuples(cert) != 1) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND, "no such certificate");
        goto out;
    }
    if (acme_int(cert, 0, 2) != req->account.id) {
        acme_problem(req, "unauthorized", 0, "the certificate belongs to another account");
        goto out;
    }
    const char *vc[] = {PQgetvalue(cert, 0, 1)};
    chain = acme_sql(req->store, "acme_cert_chain", S_SQL_CHAIN, 1, vc, NULL, NULL,
                     "read a certificate chain");
    bio = BIO_new(BIO_s_mem());
    if (!chain || !bio || s_pem(bio, PQgetvalue(cert, 0, 0)) != 0) {
        acme_internal(req);
        goto out;
    }
    for (int i = 0; i < PQntuples(chain) && i < S_MAX_DEPTH; i++) {
        if (s_pem(bio, PQgetvalue(chain, i, 0)) != 0) {
            acme_internal(req);
            goto out;
        }
    }
    char *data = NULL;
    long len = BIO_get_mem_data(bio, &data);
    acme_reply_bytes(req, MHD_HTTP_OK, "application/pem-certificate-chain", data, (size_t)len);
out:
    BIO_free(bio);
    PQclear(chain);
    PQclear(cert);
}
