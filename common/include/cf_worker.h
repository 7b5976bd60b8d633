/* cf_worker: the one runtime every worker shares (CONVENTIONS.md rule 14). A worker is a
 * thin main plus a sentinel-terminated handler table:
 *
 *   static const cf_handler_t s_handlers[] = {
 *       {"cert.issue", s_cert_issue, CF_HANDLER_DURABLE | CF_HANDLER_BATCH},
 *       CF_WORKER_SYS_HANDLERS,
 *       {NULL, NULL, 0},
 *   };
 *   int main (int argc, char **argv) { return cf_worker_main (argc, argv, "certfleet-signer",
 * s_handlers, NULL); }
 *
 * The runtime connects to the broker, announces its services with its credit, heartbeats,
 * reconnects, decodes, dispatches and replies. Durable handlers run exactly-once in effect:
 * a Redis lock on the job id keeps two workers from running one job at once, a stored reply
 * in job_results is answered without running again, and the handler's writes and the reply
 * row commit in one transaction. Batch handlers share one transaction among many jobs. */
#ifndef CF_WORKER_H
#define CF_WORKER_H

#include <msgpack.h>

#include "cf_config.h"
#include "cf_error.h"
#include "cf_job.h"
#include "cf_lock.h"
#include "cf_pg.h"
#include "cf_redis.h"

typedef struct _cf_worker_t cf_worker_t;

typedef struct {
    cf_worker_t *worker; /* the runtime */
    cf_config_t *config; /* the process config */
    cf_pg_t *pg; /* the worker's PostgreSQL connection; inside a transaction for durable handlers */
    cf_redis_t *redis; /* the worker's Redis connection */
    const char *name;  /* the worker's name */
    void *state;       /* what the main handed to cf_worker_main (key caches, ...) */
} cf_handler_ctx_t;

/* Handle one job: pack exactly one value (normally a map) into RESULT and return 0, or set
 * ERR and return -1 (the job gets that error; a durable handler must not have written
 * anything then), or return CF_HANDLER_ABORT when the database failed: the transaction is
 * rolled back and the job answered "unavailable" (or retried alone, when batched). */
typedef int(cf_handler_fn)(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                           cf_error_t *err);

#define CF_HANDLER_ABORT (-2)

/* Queue a Redis command (copied) to run only after the handler's transaction commits; it is
 * dropped when the transaction rolls back. For a pure handler it runs right after the
 * handler returns. Use it for caches that must never show what PostgreSQL does not hold
 * (a revoked OCSP response, a new CRL). 0, or -1 when out of memory. */
int cf_handler_defer_redis(cf_handler_ctx_t *ctx, int argc, const char **argv,
                           const size_t *argvlen);

/* The same for one large value: after the commit, BUF[OFFSET .. OFFSET+LEN) becomes the
 * value of KEY, expiring at EXAT (Unix s), written in pieces of 1 MiB to a temporary key that
 * is then renamed, so that neither this process nor Redis ever holds a second copy. Takes
 * BUF (freed with free() once written, or when the transaction rolls back). 0, or -1 when
 * out of memory (BUF is freed then too). */
int cf_handler_defer_redis_value(cf_handler_ctx_t *ctx, const char *key, unsigned char *buf,
                                 size_t offset, size_t len, int64_t exat);

/* For a handler that runs long (a large CRL, a shard of OCSP responses): call it between
 * pieces of work, at least once a second, so that the broker does not count the worker as
 * gone (it sends a heartbeat when one is due). */
void cf_worker_keepalive(cf_worker_t *self);

/* Take LOCK, waiting up to WAIT_MS for another worker to let it go and heartbeating while it
 * waits. 1 taken, 0 still held by someone else, -1 Redis error. */
int cf_handler_lock_wait(cf_handler_ctx_t *ctx, cf_lock_t *lock, int wait_ms);

enum {
    CF_HANDLER_PURE = 0,    /* no writes: may run twice, nothing recorded */
    CF_HANDLER_DURABLE = 1, /* locked, recorded in job_results with its writes */
    CF_HANDLER_BATCH = 2,   /* durable jobs of this type may share one transaction */
};

typedef struct {
    const char *type;  /* job type served, e.g. "cert.issue"; NULL ends the table */
    cf_handler_fn *fn; /* the handler */
    int flags;         /* CF_HANDLER_* */
} cf_handler_t;

/* The built-in services every worker serves: sys.echo (durable: proves broker, worker,
 * Redis and PostgreSQL end to end) and sys.ping (pure: proves the fabric only). */
int cf_sys_echo(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                cf_error_t *err);
int cf_sys_ping(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                cf_error_t *err);
#define CF_WORKER_SYS_HANDLERS                                                                     \
    {"sys.echo", cf_sys_echo, CF_HANDLER_DURABLE | CF_HANDLER_BATCH},                              \
    {                                                                                              \
        "sys.ping", cf_sys_ping, CF_HANDLER_PURE                                                   \
    }

/* A worker serving HANDLERS (borrowed, must outlive it). Settings: [broker] endpoint,
 * heartbeat_ms, liveness; [worker] credit (64), batch_max (64), job_lock_ttl_ms (15000, renewed
 * while a long job runs), name; [postgres]; [redis]. */
cf_worker_t *cf_worker_new(cf_config_t *config, const char *program, const cf_handler_t *handlers,
                           void *state);
void cf_worker_destroy(cf_worker_t **self_p);
/* Serve until SIGINT/SIGTERM. 0 on a clean stop. */
int cf_worker_run(cf_worker_t *self);
/* The whole thin main: --config FILE, --name NAME, --help; load config, logging, run. */
int cf_worker_main(int argc, char **argv, const char *program, const cf_handler_t *handlers,
                   void *state);

#endif
