/* The signer's handlers and their shared state (one per process). */
#ifndef CF_SIGNER_H
#define CF_SIGNER_H

#include "cf_ca.h"
#include "cf_keystore.h"
#include "cf_worker.h"

typedef struct {
    cf_keystore_t *keystore; /* CA keys, cached for the life of the process; made on first use */
    void *cas;               /* zhashx: CA name -> cached CA and bundle, kept [signer] cache_ms */
    void *profiles;          /* zhashx: profile name -> cached profile, kept as long */
} signer_t;

/* The CA named NAME from a short-lived per-process cache ([signer] cache_ms, default 1000:
 * an edit such as disabling a CA takes effect within that time). Borrowed: valid until the
 * handler returns. NULL + err as cf_ca_load. */
const cf_ca_t *signer_ca(cf_handler_ctx_t *ctx, const char *name, cf_error_t *err);
/* The CA's bundle, root first (borrowed, cached with the CA). */
STACK_OF(X509) * signer_bundle(cf_handler_ctx_t *ctx, const cf_ca_t *ca, cf_error_t *err);
/* The profile NAME (NULL: default) from the same cache. Borrowed. */
const json_t *signer_profile(cf_handler_ctx_t *ctx, const char *name, cf_error_t *err);
/* Free the caches (at exit). */
void signer_state_destroy(signer_t *state);

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

/* The four sign_* params and the extension types they hold, NULL-terminated, in step. */
extern const char *const signer_sign_keys[];
extern const char *const signer_sign_types[];
/* The model of params' signer_sign_keys[K] (caller owns), which must be a signer_sign_types[K]
 * extension; NULL + err with the field "params.<key>..." otherwise. */
json_t *signer_sign_extension(const json_t *params, int k, cf_error_t *err);
/* Insert a CA row (inside the job's transaction). PARAMS holds the optional fields (caa,
 * website, acme_*, ocsp_*, crl_shards) and "_nb"/"_na" (validity, Unix s). SIGN is the list
 * of sign_* extension models. 0, -1 + err (e.g. "ca_exists"), or CF_HANDLER_ABORT. */
int signer_ca_insert(cf_handler_ctx_t *ctx, const json_t *params, const char *name, X509 *cert,
                     const json_t *subject, const json_t *issuer, const cf_ca_t *parent,
                     const char *backend, const json_t *options, const char *key_type,
                     const char *algorithm, int64_t path_length, const json_t *sign,
                     const char *host, cf_error_t *err);

/* 0 when no CA is called NAME; -1 + err "ca_exists" (params.name); CF_HANDLER_ABORT. Checked
 * before a key is made or stored, so that a taken name leaves no key behind. */
int signer_ca_name_free(cf_handler_ctx_t *ctx, const char *name, cf_error_t *err);

/* Check the optional CA settings of ca.init / ca.import params (types and bounds). 0 or -1. */
int signer_ca_options_check(const json_t *params, cf_error_t *err);

int signer_ca_init(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                   cf_error_t *err);
int signer_ca_edit(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                   cf_error_t *err);
int signer_ca_import(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                     cf_error_t *err);
int signer_cert_import(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                       cf_error_t *err);
int signer_cert_revoke(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                       cf_error_t *err);
int signer_cert_issue(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                      cf_error_t *err);

#endif
