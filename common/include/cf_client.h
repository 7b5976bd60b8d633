/* cf_client: submit jobs to the broker and wait for their replies.
 *
 * At-least-once delivery with the same job id: a job with no final reply after the
 * attempt timeout is sent again, up to the attempt limit; the workers' job_results make
 * it exactly-once in effect, and a reply that comes twice is handed over once. Replies
 * with the retryable codes "in_progress" and "unavailable" are not final either: the job
 * is sent again after a short pause. One job at a time (cf_client_call) or many in flight
 * (cf_client_send + cf_client_recv). Not thread-safe: one client per thread. */
#ifndef CF_CLIENT_H
#define CF_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include "cf_config.h"
#include "cf_curve.h"
#include "cf_job.h"

typedef struct _cf_client_t cf_client_t;

/* A client of the broker at ENDPOINT, plain TCP (an insecure broker, tests); NULL when the
 * socket cannot be made. */
cf_client_t *cf_client_new(const char *endpoint);
/* The same with CURVE keys (takes *CURVE_P, nulls it; see cf_curve.h). */
cf_client_t *cf_client_new_curve(const char *endpoint, cf_curve_t **curve_p);
/* [broker] endpoint, [client] timeout_ms (default 3000) and attempts (default 10), and the
 * [curve] keys; NULL (the reason logged) when they are missing and insecure is not set. */
cf_client_t *cf_client_new_from_config(cf_config_t *cfg);
void cf_client_destroy(cf_client_t **self_p);

/* Time to wait for a reply before sending again, and how many sends in all. */
void cf_client_set_timeout(cf_client_t *self, int timeout_ms);
void cf_client_set_attempts(cf_client_t *self, int attempts);

/* Queue a job and send it. ID may be NULL (a random one is made); the id used is written to
 * ID_OUT when not NULL. PARAMS is a packed msgpack map or NULL. DEADLINE_MS is absolute Unix
 * ms or 0. 0 or -1 (a job with this id is already pending). */
int cf_client_send(cf_client_t *self, const uint8_t *id, const char *type, const void *params,
                   size_t params_len, uint64_t deadline_ms, uint8_t id_out[CF_JOB_ID_SIZE]);
/* Send bytes that already hold a whole envelope (e.g. from another system). The id is read
 * from them; invalid envelopes are refused locally with err set. */
int cf_client_send_raw(cf_client_t *self, const void *job, size_t len, cf_error_t *err);
/* The next final reply (caller owns), waiting up to TIMEOUT_MS (-1: until every pending
 * job is answered or given up). A job whose attempts ran out comes back as a local error
 * reply with code "timeout". NULL when nothing came in time or nothing is pending. */
cf_reply_t *cf_client_recv(cf_client_t *self, int timeout_ms);
/* How many jobs wait for a final reply. */
size_t cf_client_pending(cf_client_t *self);
/* Let cf_client_recv also return (NULL) as soon as FD is readable (-1: no such fd), so that a
 * thread waiting for replies can be woken for other work; the caller drains FD. */
void cf_client_set_wake_fd(cf_client_t *self, int fd);

/* One job, one reply (caller owns); needs no other job pending. Never NULL except when
 * out of memory: failures come back as error replies. */
cf_reply_t *cf_client_call(cf_client_t *self, const char *type, const void *params,
                           size_t params_len, uint64_t deadline_ms);

/* Counters: sends repeated after a timeout or a retryable reply, and duplicate replies dropped. */
uint64_t cf_client_resent(cf_client_t *self);
uint64_t cf_client_duplicates(cf_client_t *self);

#endif
