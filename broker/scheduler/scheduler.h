/* cf_scheduler: submits the periodic jobs (CRL refresh, OCSP responder and response refresh,
 * expiry notices) with exactly one active scheduler at a time (docs/scheduler.md).
 *
 * Leadership is the Redis lock "lock:scheduler": only its holder submits, renewing it every
 * third of its TTL; a scheduler that cannot renew stops submitting at once, and the others try
 * to take it every renew interval. Each task runs once per wall-clock period
 * (floor(now / interval)): the leader claims (task, period) in scheduler_runs first, under its
 * fencing token, and submits only when its claim won. */
#ifndef CF_SCHEDULER_H
#define CF_SCHEDULER_H

#include <stdbool.h>

#include "cf_config.h"

typedef struct _cf_scheduler_t cf_scheduler_t;

/* A scheduler named NAME (NULL: [scheduler] name, else host:pid) with CONFIG (borrowed, must
 * outlive it). NULL, logged, when a setting is invalid or out of memory. */
cf_scheduler_t *cf_scheduler_new(cf_config_t *config, const char *name);
/* Stop: unanswered jobs are recorded as failed, the lock is released. */
void cf_scheduler_destroy(cf_scheduler_t **self_p);

/* Run until SIGINT or SIGTERM. 0 or -1. */
int cf_scheduler_run(cf_scheduler_t *self);
/* Take the lock (waiting up to two lock TTLs), run every enabled task whose current period is
 * not claimed yet, wait for every reply, release. 0 when every run succeeded, 1 when some job
 * failed, -1 when the lock or the database could not be had. */
int cf_scheduler_run_once(cf_scheduler_t *self);

#endif
