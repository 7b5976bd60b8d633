/* cf_ocsp: delegated OCSP responders and the signing of single OCSP responses (RFC 6960,
 * in the RFC 5019 profile: SHA-1 CertID, responder named by key hash, the responder
 * certificate included, no nonce). Shared by certfleet-ocsp (ocsp.keygen, ocsp.presign) and
 * the signer (cert.revoke re-signs the revoked certificate's response at once). */
#ifndef CF_OCSP_H
#define CF_OCSP_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf_ca.h"
#include "cf_config.h"
#include "cf_error.h"
#include "cf_keystore.h"
#include "cf_pg.h"
#include "cf_redis.h"

/* A CA's current delegated responder: the newest row of ocsp_responders that is valid now. */
typedef struct {
    int64_t id;       /* ocsp_responders.id */
    int64_t ca_id;    /* the CA it answers for */
    X509 *cert;       /* the responder certificate */
    EVP_PKEY *key;    /* its private key */
    int64_t expires;  /* Unix seconds */
    const EVP_MD *md; /* the digest it signs responses with (NULL for Ed25519/Ed448) */
    void *signer;     /* the prepared signing state (private to cf_ocsp) */
} cf_ocsp_responder_t;

/* Load CA's current responder and its key (key backend and options from the row, password
 * from cf_password_resolve for its key id). NULL + err: "no_responder" (field "params.ca")
 * when there is none valid (run ocsp.keygen), "unavailable" on a database error, or the
 * keystore's codes. */
cf_ocsp_responder_t *cf_ocsp_responder_load(cf_pg_t *pg, cf_config_t *cfg, cf_keystore_t *ks,
                                            const cf_ca_t *ca, cf_error_t *err);
void cf_ocsp_responder_destroy(cf_ocsp_responder_t **self_p);

/* The status of one certificate, as the tables hold it. */
typedef struct {
    const char *serial;   /* upper-case hex, as stored */
    bool revoked;         /* revoked (else good) */
    int64_t revoked_date; /* Unix seconds */
    const char *reason;   /* django-ca reason name; NULL or "unspecified": no reason */
    int64_t compromised;  /* Unix seconds, 0: none (adds the invalidityDate extension) */
} cf_ocsp_status_t;

/* Sign a successful OCSPResponse for one certificate of CA with RESPONDER: thisUpdate and
 * nextUpdate as given, producedAt = THIS_UPDATE. *DER (caller frees, OPENSSL_free) and
 * *LEN. 0 or -1 + err. Fast: the parts that do not change between certificates are encoded
 * once per responder. */
int cf_ocsp_sign(const cf_ca_t *ca, cf_ocsp_responder_t *responder, const cf_ocsp_status_t *st,
                 int64_t this_update, int64_t next_update, unsigned char **der, int *len,
                 cf_error_t *err);

/* Upsert the response into ocsp_responses (in the caller's transaction, if one is open).
 * 0, or -1 + err ("unavailable"). */
int cf_ocsp_store(cf_pg_t *pg, int64_t ca_id, const cf_ocsp_status_t *st, int64_t responder_id,
                  int64_t this_update, int64_t next_update, const unsigned char *der, int len,
                  cf_error_t *err);

/* The Redis value for a response: the cf_revocation header and the DER (caller frees).
 * *OUT_LEN gets its length. NULL when out of memory. */
unsigned char *cf_ocsp_cache_value(int64_t this_update, int64_t next_update,
                                   const unsigned char *der, int len, size_t *out_len);

/* ---- additions: building responders without the database, and the bulk paths of
 * ocsp.presign (docs/ocsp.md) ---- */

/* A responder from its parts (for cf_ocsp_responder_load and for tests): ID and CA_ID as the
 * row's, CA_CERT the issuing CA's certificate (hashed into every CertID), CERT and KEY the
 * responder's (both up-referenced, not taken), MD the response signature digest (NULL: the
 * SHA-2 hash the responder certificate was signed with, else SHA-256; always NULL for
 * Ed25519/Ed448). Prepares the signing template. NULL + err ("internal") when the key
 * does not match the certificate or cannot sign. */
cf_ocsp_responder_t *cf_ocsp_responder_new(int64_t id, int64_t ca_id, X509 *ca_cert, X509 *cert,
                                           EVP_PKEY *key, const EVP_MD *md, cf_error_t *err);

/* The id of CA_ID's current responder (the newest row valid at NOW) into *ID, or 0 when there
 * is none. 0, or -1 + err ("unavailable"). Cheap: for caches that reload on a change. */
int cf_ocsp_responder_current(cf_pg_t *pg, int64_t ca_id, int64_t now, int64_t *id,
                              cf_error_t *err);

/* One signed response of a bulk store. */
typedef struct {
    const char *serial;       /* upper-case hex, as stored */
    bool revoked;             /* the status signed */
    bool replace_revoked;     /* a good response that may replace a stored revoked one: the
                               * caller checked, with the certificate row locked in this
                               * transaction, that it is no longer revoked */
    const unsigned char *der; /* the OCSPResponse */
    int len;                  /* its length */
    bool stored;              /* out: cf_ocsp_store_many wrote it */
} cf_ocsp_row_t;

/* Upsert N responses signed at THIS_UPDATE/NEXT_UPDATE by RESPONDER_ID in one statement (in
 * the caller's transaction, if one is open). A stored revoked response is never replaced by a
 * good one unless the row says replace_revoked, so that a pre-signing run that read a
 * certificate just before it was revoked cannot undo cert.revoke's response. Sets each row's
 * stored; *STORED (may be NULL) gets their count. 0, or -1 + err ("unavailable"). */
int cf_ocsp_store_many(cf_pg_t *pg, int64_t ca_id, int64_t responder_id, int64_t this_update,
                       int64_t next_update, cf_ocsp_row_t *rows, size_t n, size_t *stored,
                       cf_error_t *err);

/* Write the stored rows of ROWS to Redis (cf:ocsp:<ca_id>:<serial>, header + DER, EXPIREAT
 * NEXT_UPDATE) in one pipeline. Redis is a cache: the number of failed writes is returned
 * (0 when all went in), -1 when the pipeline broke. */
int cf_ocsp_cache_many(cf_redis_t *redis, int64_t ca_id, const cf_ocsp_row_t *rows, size_t n,
                       int64_t this_update, int64_t next_update);

/* Close the race between a bulk cache write and a concurrent revocation: for the good rows of
 * ROWS that were stored and whose stored response is now revoked (cert.revoke committed after
 * our upsert), write PostgreSQL's response to Redis again. Call it after cf_ocsp_cache_many;
 * since cert.revoke writes Redis only after its commit, the newest response wins either way.
 * The number of entries rewritten, or -1 + err. */
int cf_ocsp_cache_recheck(cf_pg_t *pg, cf_redis_t *redis, int64_t ca_id, const cf_ocsp_row_t *rows,
                          size_t n, cf_error_t *err);

#endif
