/* cf_test_jobs: what integration tests repeat around jobs and the database: params written
 * as JSON and sent as MessagePack (with an optional CSR as bin), a reply that must be ok, and
 * one-value SQL queries. cmocka assertions fail the test on any error. */
#ifndef CF_TEST_JOBS_H
#define CF_TEST_JOBS_H

#include <jansson.h>
#include <msgpack.h>
#include <stddef.h>

#include "cf_client.h"
#include "cf_pg.h"

/* PARAMS (a JSON object) packed as a msgpack map into BUF, plus "csr" as bin when CSR is
 * given. */
void cf_test_pack_params(msgpack_sbuffer *buf, const json_t *params, const void *csr,
                         size_t csr_len);
/* One job through CLIENT; PARAMS is consumed. Caller owns the reply (never NULL). */
cf_reply_t *cf_test_call(cf_client_t *client, const char *type, json_t *params, const void *csr,
                         size_t csr_len);
/* Fail the test, saying WHAT, unless R is an ok reply. */
void cf_test_assert_ok(const cf_reply_t *r, const char *what);

/* The first column of the first row of SQL as text ("" when no row; caller frees). */
char *cf_test_query(cf_pg_t *pg, const char *sql);
/* The same as a number. */
long cf_test_count(cf_pg_t *pg, const char *sql);
/* Run SQL; fail the test on an error. */
void cf_test_sql(cf_pg_t *pg, const char *sql);

#endif
