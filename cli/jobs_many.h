/* Shared by the commands that fan out into many jobs (crl build, ocsp keygen, ocsp presign):
 * a batch of jobs sent through one broker client with many in flight at once, each final
 * reply kept with its job, progress on a terminal; and the certificate authorities such a
 * command works on ("CA ..." or --all), read from PostgreSQL. */
#ifndef CF_CLI_JOBS_MANY_H
#define CF_CLI_JOBS_MANY_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cf_job.h"
#include "cf_pg.h"
#include "cli.h"

typedef struct _cf_cli_batch_t cf_cli_batch_t;

/* Called once for every final reply, in the order they come; INDEX is the job's, counted in
 * the order the jobs were added. */
typedef void(cf_cli_batch_reply_fn)(void *arg, size_t index, const cf_reply_t *reply);
/* Append the command's own part of the progress line to BUF (e.g. ", 4100 responses
 * signed, 2050/s"); SECONDS since the first job was sent. */
typedef void(cf_cli_batch_status_fn)(void *arg, char *buf, size_t len, double seconds);

/* An empty batch (caller destroys). LABEL starts the progress line ("crl build"); UNIT
 * names what is counted ("shards"), or NULL. NULL when out of memory. */
cf_cli_batch_t *cf_cli_batch_new(const char *label, const char *unit);
/* Free the batch and its replies; the packed params are wiped first (they may hold a key
 * password). */
void cf_cli_batch_destroy(cf_cli_batch_t **self_p);

/* Add a job of TYPE with PARAMS (a JSON object, packed now as MessagePack). WHAT names it in
 * error lines (`crl.build "root" user/3`). 0, or -1 after printing why. */
int cf_cli_batch_add(cf_cli_batch_t *self, const char *type, const json_t *params,
                     const char *what);
/* Hooks of cf_cli_batch_run; either may be NULL. */
void cf_cli_batch_set_hooks(cf_cli_batch_t *self, cf_cli_batch_reply_fn *on_reply,
                            cf_cli_batch_status_fn *on_status, void *arg);

/* Send every job and wait for all their final replies. The broker is asked first whether a
 * worker serves each job type, so that a missing worker is an error at once instead of a
 * long wait. At most twice the workers' credit (at least 32) jobs are in flight at a time;
 * a job waits for its reply up to ten minutes (at least [client] timeout_ms x attempts),
 * and one refused with "busy" (the broker's queue is full) is sent again after a pause. An
 * interrupt (Ctrl-C) stops the wait: jobs without a reply then count as failed. Returns the
 * number of failed jobs, or -1 after printing why nothing could be sent. */
int cf_cli_batch_run(cf_cli_batch_t *self, cf_cli_t *cli);

/* How many jobs the batch holds. */
size_t cf_cli_batch_size(const cf_cli_batch_t *self);
/* The final reply of job INDEX (borrowed), or NULL before cf_cli_batch_run. */
const cf_reply_t *cf_cli_batch_reply(const cf_cli_batch_t *self, size_t index);
/* Seconds from the first send to the last reply of cf_cli_batch_run. */
double cf_cli_batch_seconds(const cf_cli_batch_t *self);
/* Print every failed job as cf_cli_fail_reply does, named by its WHAT; the count. */
size_t cf_cli_batch_print_failures(const cf_cli_batch_t *self);
/* The error of a failed job as JSON {"code", "message", "field"} (new reference), or null. */
json_t *cf_cli_batch_error_json(const cf_cli_batch_t *self, size_t index);

/* The certificate authorities a fan-out command works on, each a JSON object {"id", "name",
 * "crl_shards", "usable" (enabled, not revoked, not expired), "responder" (has a current
 * OCSP responder), and with COUNT_CERTS "certificates" (its unexpired certificates and child
 * CAs)}, ordered by name (new reference). With ALL: every usable CA (NAMES must be empty);
 * else the N NAMES, each of which must exist. Read through a connection of its own. NULL after
 * printing why. */
json_t *cf_cli_cas_select(cf_cli_t *cli, char *const *names, int n, bool all, bool count_certs);

#endif
