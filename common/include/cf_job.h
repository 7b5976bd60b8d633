/* cf_job: the job envelope and its reply (DESIGN.md "Job API", schemas/jobs.md).
 *
 *   job   {v: 1, id: bin(16), type: "cert.issue", deadline_ms: uint, params: {...}}
 *   reply {v: 1, id: bin(16), status: "ok", result: {...}}
 *         {v: 1, id: bin(16), status: "error", error: {code, message, field?}}
 *
 * deadline_ms is an absolute Unix time in milliseconds (0 or absent: no deadline), so that it
 * survives queueing and resends. Times inside params and results are Unix seconds (int).
 * Unknown top-level keys are ignored, for forward compatibility. */
#ifndef CF_JOB_H
#define CF_JOB_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf_error.h"
#include "cf_msgpack.h"

#define CF_JOB_VERSION  1
#define CF_JOB_ID_SIZE  16
#define CF_JOB_TYPE_MAX 64

typedef struct _cf_job_t cf_job_t;
typedef struct _cf_reply_t cf_reply_t;

/* Wall-clock milliseconds since the Unix epoch, and a monotonic clock in milliseconds. */
uint64_t cf_now_ms(void);
uint64_t cf_mono_ms(void);
/* A fresh random job id. */
void cf_job_id_random(uint8_t id[CF_JOB_ID_SIZE]);
/* Hex text of an id (33 bytes with the NUL). */
void cf_job_id_hex(const uint8_t id[CF_JOB_ID_SIZE], char hex[2 * CF_JOB_ID_SIZE + 1]);
/* True when TYPE is a well-formed job type: lower-case words joined by dots, e.g. "cert.issue". */
bool cf_job_type_valid(const char *type, size_t len);
/* True when TYPE is one certfleet defines (schemas/jobs.md). */
bool cf_job_type_known(const char *type);

/* Decode and validate an envelope from untrusted bytes (with the default limits). On error
 * returns NULL and sets err (code, field); if the bytes held a usable id it is copied to
 * ID_OUT (when not NULL) and *has_id is set, so that the error reply can carry it. */
cf_job_t *cf_job_decode(const void *data, size_t len, cf_error_t *err,
                        uint8_t id_out[CF_JOB_ID_SIZE], bool *has_id);
void cf_job_destroy(cf_job_t **self_p);
const uint8_t *cf_job_id(const cf_job_t *self);
const char *cf_job_type(const cf_job_t *self);
uint64_t cf_job_deadline_ms(const cf_job_t *self);
/* The params map (an empty map when absent); borrowed, lives as long as the job. */
const msgpack_object *cf_job_params(const cf_job_t *self);
/* The bytes the job was decoded from (borrowed). */
const void *cf_job_data(const cf_job_t *self, size_t *len);

/* Pack a job into BUF. PARAMS is an already packed msgpack map (NULL or empty: {}). */
int cf_job_pack(msgpack_sbuffer *buf, const uint8_t id[CF_JOB_ID_SIZE], const char *type,
                uint64_t deadline_ms, const void *params, size_t params_len);

/* Pack an ok reply; RESULT is an already packed msgpack value (NULL: an empty map). */
int cf_reply_pack_ok(msgpack_sbuffer *buf, const uint8_t id[CF_JOB_ID_SIZE], const void *result,
                     size_t result_len);
/* Pack an error reply; ID may be NULL when the job had none that could be read. */
int cf_reply_pack_error(msgpack_sbuffer *buf, const uint8_t *id, const cf_error_t *error);

/* Decode a reply from untrusted bytes. NULL + err when malformed. */
cf_reply_t *cf_reply_decode(const void *data, size_t len, cf_error_t *err);
/* A reply made locally (e.g. a client-side timeout); RESULT may be NULL. */
cf_reply_t *cf_reply_new_error(const uint8_t *id, const cf_error_t *error);
void cf_reply_destroy(cf_reply_t **self_p);
/* The id, or NULL when the reply had none. */
const uint8_t *cf_reply_id(const cf_reply_t *self);
bool cf_reply_ok(const cf_reply_t *self);
/* The result value (ok replies), borrowed; NULL for errors. */
const msgpack_object *cf_reply_result(const cf_reply_t *self);
/* The error (error replies), borrowed; NULL for ok. */
const cf_error_t *cf_reply_error(const cf_reply_t *self);
/* The reply as JSON (new reference): {"v","id"(hex),"status","result"|"error"}. */
json_t *cf_reply_to_json(const cf_reply_t *self);
/* The encoded bytes (borrowed; NULL for local replies). */
const void *cf_reply_data(const cf_reply_t *self, size_t *len);

#endif
