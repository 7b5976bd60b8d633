/* The signer's handlers and their shared state (one per process). */
#ifndef CF_SIGNER_H
#define CF_SIGNER_H

#include "cf_ca.h"
#include "cf_keystore.h"
#include "cf_worker.h"

typedef struct {
    cf_keystore_t *keystore; /* CA keys, cached for the life of the process; made on first use */
} signer_t;

/* The keystore, made on first use with the worker's own PostgreSQL connection. */
cf_keystore_t *signer_keystore(cf_handler_ctx_t *ctx);
/* Params as JSON (msgpack bin as base64), or NULL + err. Caller owns. */
json_t *signer_params(const cf_job_t *job, cf_error_t *err);
/* Load the CA's private key with the job's password (or the configured one). Caller owns. */
EVP_PKEY *signer_ca_key(cf_handler_ctx_t *ctx, const cf_ca_t *ca, const char *job_password,
                        cf_error_t *err);
/* Parse a Name given as a model (list) or as text ("CN=x,O=y" or "/C=AT/CN=x"). */
json_t *signer_subject(const json_t *value, const char *field, cf_error_t *err);
/* Pack a DER buffer as msgpack bin. */
void signer_pack_der(msgpack_packer *pk, X509 *cert);

int signer_ca_init(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                   cf_error_t *err);
int signer_cert_issue(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                      cf_error_t *err);

#endif
