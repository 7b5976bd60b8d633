/* The ocsp worker's handlers and their shared state (one per process). */
#ifndef CF_OCSP_WORKER_H
#define CF_OCSP_WORKER_H

#include <jansson.h>

#include "cf_ca.h"
#include "cf_keystore.h"
#include "cf_ocsp.h"
#include "cf_worker.h"

typedef struct {
    cf_keystore_t *keystore; /* CA and responder keys, cached for the life of the process */
    void *responders;        /* zhashx: CA id -> cf_ocsp_responder_t, reloaded when the CA's
                              * current row of ocsp_responders changes */
} ocsp_state_t;

/* The keystore, made on first use with the worker's own PostgreSQL connection. */
cf_keystore_t *ocsp_keystore(cf_handler_ctx_t *ctx);
/* The CA's current responder from the cache, loaded again when ocsp_responders has a newer
 * valid row (or the cached one expired). Borrowed: valid until the next call. NULL + err
 * ("no_responder", "unavailable", the keystore's codes). */
cf_ocsp_responder_t *ocsp_responder(cf_handler_ctx_t *ctx, const cf_ca_t *ca, int64_t now,
                                    cf_error_t *err);
/* Params as JSON (msgpack bin as base64), or NULL + err. Caller owns. */
json_t *ocsp_params(const cf_job_t *job, cf_error_t *err);
/* Free the caches (at exit). */
void ocsp_state_destroy(ocsp_state_t *state);

int ocsp_keygen(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                cf_error_t *err);
int ocsp_presign(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                 cf_error_t *err);

#endif
