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

/* A Redis lock on KEY (SET KEY token NX PX ttl): written into LOCK; NULL-safe to release. */
typedef struct {
    char key[128];  /* the Redis key */
    char token[33]; /* our random token (hex) */
    int ttl_ms;     /* lifetime, renewed by crl_lock_renew */
    int held;       /* 1 while we believe we hold it */
} crl_lock_t;

/* Wait up to WAIT_MS for the lock, calling the keepalive while waiting. 1 taken, 0 still held by
 * someone else after the wait, -1 Redis error. */
int crl_lock_acquire(cf_handler_ctx_t *ctx, crl_lock_t *lock, const char *key, int ttl_ms,
                     int wait_ms);
/* Extend the TTL if still ours. 1 yes, 0 lost, -1 error. */
int crl_lock_renew(cf_handler_ctx_t *ctx, crl_lock_t *lock);
/* Delete it if still ours (no-op when not held). */
void crl_lock_release(cf_handler_ctx_t *ctx, crl_lock_t *lock);

/* Store DER (LEN bytes) as the current CRL of (CA_ID, SCOPE, SHARD) unless a higher number is
 * stored, in the job's transaction: COPY in binary format into a temporary table, in chunks,
 * then INSERT ... SELECT, so libpq never holds a second whole copy. *STORED: the row was
 * written (0: a newer one was there). 0, or -1 with the error in cf_pg_errstr. */
int crl_store(cf_handler_ctx_t *ctx, int64_t ca_id, const char *scope, int shard, int64_t number,
              int64_t this_update, int64_t next_update, int64_t entries, const unsigned char *der,
              size_t len, int *stored);

int crl_build(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result, cf_error_t *err);

#endif
