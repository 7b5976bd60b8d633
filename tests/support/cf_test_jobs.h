/* cf_test_jobs: what integration tests repeat around jobs and the stores: a client of the
 * fleet, params written as JSON and sent as MessagePack (with an optional CSR as bin), a reply
 * that must be ok, a CA made with ca.init, its OCSP responder, a certificate issued from a
 * fresh CSR, one-value SQL queries and a connection to a Redis database of the test's own.
 * cmocka assertions fail the test on any error. */
#ifndef CF_TEST_JOBS_H
#define CF_TEST_JOBS_H

#include <jansson.h>
#include <msgpack.h>
#include <openssl/x509.h>
#include <stddef.h>

#include "cf_client.h"
#include "cf_pg.h"
#include "cf_redis.h"

/* A client of the broker at ENDPOINT with TIMEOUT_MS and ATTEMPTS (caller destroys). */
cf_client_t *cf_test_client(const char *endpoint, int timeout_ms, int attempts);

/* PARAMS (a JSON object) packed as a msgpack map into BUF, plus "csr" as bin when CSR is
 * given. */
void cf_test_pack_params(msgpack_sbuffer *buf, const json_t *params, const void *csr,
                         size_t csr_len);
/* One job through CLIENT; PARAMS is consumed. Caller owns the reply (never NULL). */
cf_reply_t *cf_test_call(cf_client_t *client, const char *type, json_t *params, const void *csr,
                         size_t csr_len);
/* Fail the test, saying WHAT, unless R is an ok reply. */
void cf_test_assert_ok(const cf_reply_t *r, const char *what);

/* The certificate in the bin KEY of R's result (caller owns); fails the test when there is
 * none or it does not parse. */
X509 *cf_test_reply_cert(const cf_reply_t *r, const char *key);

/* ca.init NAME through CLIENT with subject "/O=certfleet test/CN=NAME" and key type EC, and
 * PARAMS (a JSON object, consumed, or NULL) added over these. Fails the test unless it is ok;
 * returns the CA's certificate (caller owns). */
X509 *cf_test_ca_init(cf_client_t *client, const char *name, json_t *params);
/* ocsp.keygen for CA through CLIENT, which must succeed: the CA gets its OCSP responder. */
void cf_test_ocsp_responder(cf_client_t *client, const char *ca);

/* A DER CSR for CN with a fresh EC P-256 key (caller frees with OPENSSL_free); *LEN its
 * length. */
unsigned char *cf_test_csr(const char *cn, int *len);
/* cert.issue through CLIENT with PARAMS (consumed) and a fresh CSR for CN. Caller owns the
 * reply, which may be an error. */
cf_reply_t *cf_test_issue(cf_client_t *client, json_t *params, const char *cn);

/* The first column of the first row of SQL as text ("" when no row; caller frees). */
char *cf_test_query(cf_pg_t *pg, const char *sql);
/* The same as a number. */
long cf_test_count(cf_pg_t *pg, const char *sql);
/* Run SQL; fail the test on an error. */
void cf_test_sql(cf_pg_t *pg, const char *sql);

/* A connection to database DB of the test Redis (caller destroys). Tests that run beside
 * others with the same CA ids, or that take fleet-wide locks, keep their keys apart this way. */
cf_redis_t *cf_test_redis_db(int db);

#endif
