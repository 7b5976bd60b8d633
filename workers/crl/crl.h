/* The crl worker's handlers and what they share: the per-process state, the Redis lock of one
 * (CA, scope, shard) and the store of a finished CRL (docs/crl.md). */
#ifndef CF_CRL_WORKER_H
#define CF_CRL_WORKER_H

#include <stdint.h>

#include "cf_keystore.h"
#include "cf_worker.h"

typedef struct {
    cf_keystore_t *keystore; /* CA keys, cached for the life of the process; made on first use */
} crl_t;

/* The keystore, made on first use with the worker's own PostgreSQL connection. */
cf_keystore_t *crl_keystore(cf_handler_ctx_t *ctx);
/* Free the state (at exit). */
void crl_state_destroy(crl_t *state);

/* Store DER (LEN bytes) as the current CRL of (CA_ID, SCOPE, SHARD) unless a higher number is
 * stored, in the job's transaction: COPY in binary format into a temporary table, in chunks,
 * then INSERT ... SELECT, so libpq never holds a second whole copy. *STORED: the row was
 * written (0: a newer one was there). MARKS_SEEN: the row's marks (revocations counted) read
 * before the entries were, -1 when there was no row. 0, or -1 with the error in cf_pg_errstr. */
int crl_store(cf_handler_ctx_t *ctx, int64_t ca_id, const char *scope, int shard, int64_t number,
              int64_t this_update, int64_t next_update, int64_t entries, const unsigned char *der,
              size_t len, int64_t marks_seen, int *stored);

int crl_build(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result, cf_error_t *err);

#endif
