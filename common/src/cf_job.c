/* cf_job: encode and validate job envelopes and replies. */
#include "cf_job.h"

#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct _cf_job_t {
    msgpack_unpacked unpacked;      /* owns the decoded tree */
    uint8_t id[CF_JOB_ID_SIZE];     /* job id */
    char type[CF_JOB_TYPE_MAX + 1]; /* job type */
    uint64_t deadline_ms;           /* absolute Unix ms, 0 = none */
    const msgpack_object *params;   /* params map (points into unpacked or s_empty_map) */
    void *data;                     /* copy of the encoded bytes */
    size_t len;                     /* their length */
};

struct _cf_reply_t {
    msgpack_unpacked unpacked;    /* owns the decoded tree (when decoded) */
    bool decoded;                 /* unpacked is live */
    bool has_id;                  /* id is set */
    uint8_t id[CF_JOB_ID_SIZE];   /* job id */
    bool ok;                      /* status == "ok" */
    const msgpack_object *result; /* result value for ok replies */
    cf_error_t error;             /* error for error replies */
    void *data;                   /* copy of the encoded bytes */
    size_t len;                   /* their length */
};

static const msgpack_object s_empty_map = {.type = MSGPACK_OBJECT_MAP};

/* Every job type certfleet defines; the broker answers unknown_job_type for others that no
 * worker has announced. */
static const char *const s_known_types[] = {
    "sys.echo",    "sys.ping",     "broker.status", "ca.init",         "ca.import",
    "ca.edit",     "cert.issue",   "cert.import",   "cert.revoke",     "crl.build",
    "ocsp.keygen", "ocsp.presign", "acme.validate", "notify.expiring", NULL,
};

uint64_t cf_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cf_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void cf_job_id_random(uint8_t id[CF_JOB_ID_SIZE])
{
    if (RAND_bytes(id, CF_JOB_ID_SIZE) != 1) {
        /* The CSPRNG failing is not recoverable: ids would collide. */
        abort();
    }
}

void cf_job_id_hex(const uint8_t id[CF_JOB_ID_SIZE], char hex[2 * CF_JOB_ID_SIZE + 1])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < CF_JOB_ID_SIZE; i++) {
        hex[2 * i] = digits[id[i] >> 4];
        hex[2 * i + 1] = digits[id[i] & 15];
    }
    hex[2 * CF_JOB_ID_SIZE] = '\0';
}

bool cf_job_type_valid(const char *type, size_t len)
{
    if (len == 0 || len > CF_JOB_TYPE_MAX)
        return false;
    bool dot = false;
    char prev = '.';
    for (size_t i = 0; i < len; i++) {
        char c = type[i];
        if (c == '.') {
            if (prev == '.')
                return false;
            dot = true;
        } else if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            return false;
        }
        prev = c;
    }
    return dot && prev != '.';
}

bool cf_job_type_known(const char *type)
{
    for (const char *const *t = s_known_types; *t; t++)
        if (strcmp(*t, type) == 0)
            return true;
    return false;
}

static bool s_is_uint(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER;
}

/* Copy LEN bytes of DATA into *COPY and unpack them: msgpack-c's objects point into the bytes
 * they were unpacked from, so each job and reply unpacks its own copy, which lives as long as it
 * does. 0 or -1 + err (nothing left allocated). */
static int s_unpack_copy(const void *data, size_t len, void **copy, msgpack_unpacked *unpacked,
                         cf_error_t *err)
{
    *copy = malloc(len ? len : 1);
    if (!*copy) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    memcpy(*copy, data, len);
    if (cf_msgpack_unpack(*copy, len, NULL, unpacked, err) != 0) {
        free(*copy);
        *copy = NULL;
        return -1;
    }
    return 0;
}

cf_job_t *cf_job_decode(const void *data, size_t len, cf_error_t *err,
                        uint8_t id_out[CF_JOB_ID_SIZE], bool *has_id)
{
    if (has_id)
        *has_id = false;
    cf_job_t *self = calloc(1, sizeof *self);
    if (!self) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    if (s_unpack_copy(data, len, &self->data, &self->unpacked, err) != 0) {
        free(self);
        return NULL;
    }
    self->len = len;
    const msgpack_object *root = &self->unpacked.data;
    const msgpack_object *v, *id, *type, *deadline, *params;
    if (root->type != MSGPACK_OBJECT_MAP) {
        cf_error_set(err, "invalid_type", "", "a job must be a map");
        goto fail;
    }
    /* The id first, so that every later error can be answered to the right job. */
    id = cf_msgpack_map_get(root, "id");
    if (!id) {
        cf_error_set(err, "missing_field", "id", "job has no \"id\"");
        goto fail;
    }
    if (id->type != MSGPACK_OBJECT_BIN) {
        cf_error_set(err, "invalid_type", "id", "\"id\" must be bin of %d bytes", CF_JOB_ID_SIZE);
        goto fail;
    }
    if (id->via.bin.size != CF_JOB_ID_SIZE) {
        cf_error_set(err, "invalid_value", "id", "\"id\" must be %d bytes, not %u", CF_JOB_ID_SIZE,
                     id->via.bin.size);
        goto fail;
    }
    memcpy(self->id, id->via.bin.ptr, CF_JOB_ID_SIZE);
    if (id_out)
        memcpy(id_out, self->id, CF_JOB_ID_SIZE);
    if (has_id)
        *has_id = true;
    v = cf_msgpack_map_get(root, "v");
    if (!v) {
        cf_error_set(err, "missing_field", "v", "job has no version \"v\"");
        goto fail;
    }
    if (!s_is_uint(v)) {
        cf_error_set(err, "invalid_type", "v", "\"v\" must be an unsigned integer");
        goto fail;
    }
    if (v->via.u64 != CF_JOB_VERSION) {
        cf_error_set(err, "unsupported_version", "v",
                     "envelope version %llu is not supported (this is version %d)",
                     (unsigned long long)v->via.u64, CF_JOB_VERSION);
        goto fail;
    }
    type = cf_msgpack_map_get(root, "type");
    if (!type) {
        cf_error_set(err, "missing_field", "type", "job has no \"type\"");
        goto fail;
    }
    if (type->type != MSGPACK_OBJECT_STR) {
        cf_error_set(err, "invalid_type", "type", "\"type\" must be a string");
        goto fail;
    }
    if (!cf_job_type_valid(type->via.str.ptr, type->via.str.size)) {
        cf_error_set(err, "invalid_value", "type",
                     "\"type\" must be lower-case words joined by dots, at most %d characters",
                     CF_JOB_TYPE_MAX);
        goto fail;
    }
    memcpy(self->type, type->via.str.ptr, type->via.str.size);
    deadline = cf_msgpack_map_get(root, "deadline_ms");
    if (deadline && deadline->type != MSGPACK_OBJECT_NIL) {
        if (!s_is_uint(deadline)) {
            cf_error_set(err, "invalid_type", "deadline_ms",
                         "\"deadline_ms\" must be an unsigned integer (Unix milliseconds)");
            goto fail;
        }
        self->deadline_ms = deadline->via.u64;
    }
    params = cf_msgpack_map_get(root, "params");
    if (params && params->type != MSGPACK_OBJECT_NIL) {
        if (params->type != MSGPACK_OBJECT_MAP) {
            cf_error_set(err, "invalid_type", "params", "\"params\" must be a map");
            goto fail;
        }
        self->params = params;
    } else {
        self->params = &s_empty_map;
    }
    return self;
fail:
    msgpack_unpacked_destroy(&self->unpacked);
    free(self->data);
    free(self);
    return NULL;
}

void cf_job_destroy(cf_job_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_job_t *self = *self_p;
    msgpack_unpacked_destroy(&self->unpacked);
    free(self->data);
    free(self);
    *self_p = NULL;
}

const uint8_t *cf_job_id(const cf_job_t *self)
{
    return self->id;
}

const char *cf_job_type(const cf_job_t *self)
{
    return self->type;
}

uint64_t cf_job_deadline_ms(const cf_job_t *self)
{
    return self->deadline_ms;
}

const msgpack_object *cf_job_params(const cf_job_t *self)
{
    return self->params;
}

const void *cf_job_data(const cf_job_t *self, size_t *len)
{
    *len = self->len;
    return self->data;
}

static void s_pack_key(msgpack_packer *pk, const char *key)
{
    cf_msgpack_pack_cstr(pk, key);
}

int cf_job_pack(msgpack_sbuffer *buf, const uint8_t id[CF_JOB_ID_SIZE], const char *type,
                uint64_t deadline_ms, const void *params, size_t params_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 5);
    s_pack_key(&pk, "v");
    msgpack_pack_uint8(&pk, CF_JOB_VERSION);
    s_pack_key(&pk, "id");
    msgpack_pack_bin(&pk, CF_JOB_ID_SIZE);
    msgpack_pack_bin_body(&pk, id, CF_JOB_ID_SIZE);
    s_pack_key(&pk, "type");
    cf_msgpack_pack_cstr(&pk, type);
    s_pack_key(&pk, "deadline_ms");
    msgpack_pack_uint64(&pk, deadline_ms);
    s_pack_key(&pk, "params");
    if (params && params_len)
        return msgpack_sbuffer_write(buf, params, params_len);
    return msgpack_pack_map(&pk, 0);
}

int cf_reply_pack_ok(msgpack_sbuffer *buf, const uint8_t id[CF_JOB_ID_SIZE], const void *result,
                     size_t result_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    s_pack_key(&pk, "v");
    msgpack_pack_uint8(&pk, CF_JOB_VERSION);
    s_pack_key(&pk, "id");
    msgpack_pack_bin(&pk, CF_JOB_ID_SIZE);
    msgpack_pack_bin_body(&pk, id, CF_JOB_ID_SIZE);
    s_pack_key(&pk, "status");
    cf_msgpack_pack_cstr(&pk, "ok");
    s_pack_key(&pk, "result");
    if (result && result_len)
        return msgpack_sbuffer_write(buf, result, result_len);
    return msgpack_pack_map(&pk, 0);
}

int cf_reply_pack_error(msgpack_sbuffer *buf, const uint8_t *id, const cf_error_t *error)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 4);
    s_pack_key(&pk, "v");
    msgpack_pack_uint8(&pk, CF_JOB_VERSION);
    s_pack_key(&pk, "id");
    if (id) {
        msgpack_pack_bin(&pk, CF_JOB_ID_SIZE);
        msgpack_pack_bin_body(&pk, id, CF_JOB_ID_SIZE);
    } else {
        msgpack_pack_nil(&pk);
    }
    s_pack_key(&pk, "status");
    cf_msgpack_pack_cstr(&pk, "error");
    s_pack_key(&pk, "error");
    bool field = error->field[0] != '\0';
    msgpack_pack_map(&pk, field ? 3 : 2);
    s_pack_key(&pk, "code");
    cf_msgpack_pack_cstr(&pk, error->code[0] ? error->code : "internal");
    s_pack_key(&pk, "message");
    cf_msgpack_pack_cstr(&pk, error->message);
    if (field) {
        s_pack_key(&pk, "field");
        cf_msgpack_pack_cstr(&pk, error->field);
    }
    return 0;
}

static void s_copy_str(char *dst, size_t dstlen, const msgpack_object *o)
{
    dst[0] = '\0';
    if (o && o->type == MSGPACK_OBJECT_STR) {
        size_t n = o->via.str.size < dstlen - 1 ? o->via.str.size : dstlen - 1;
        memcpy(dst, o->via.str.ptr, n);
        dst[n] = '\0';
    }
}

cf_reply_t *cf_reply_decode(const void *data, size_t len, cf_error_t *err)
{
    cf_reply_t *self = calloc(1, sizeof *self);
    if (!self) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    if (s_unpack_copy(data, len, &self->data, &self->unpacked, err) != 0) {
        free(self);
        return NULL;
    }
    self->len = len;
    self->decoded = true;
    const msgpack_object *root = &self->unpacked.data;
    const msgpack_object *id, *status, *e;
    if (root->type != MSGPACK_OBJECT_MAP) {
        cf_error_set(err, "invalid_type", "", "a reply must be a map");
        goto fail;
    }
    id = cf_msgpack_map_get(root, "id");
    if (id && id->type == MSGPACK_OBJECT_BIN && id->via.bin.size == CF_JOB_ID_SIZE) {
        memcpy(self->id, id->via.bin.ptr, CF_JOB_ID_SIZE);
        self->has_id = true;
    } else if (id && id->type != MSGPACK_OBJECT_NIL) {
        cf_error_set(err, "invalid_value", "id", "reply \"id\" must be bin of 16 bytes or nil");
        goto fail;
    }
    status = cf_msgpack_map_get(root, "status");
    if (!status || status->type != MSGPACK_OBJECT_STR) {
        cf_error_set(err, "missing_field", "status", "reply has no \"status\"");
        goto fail;
    }
    if (status->via.str.size == 2 && memcmp(status->via.str.ptr, "ok", 2) == 0) {
        self->ok = true;
        self->result = cf_msgpack_map_get(root, "result");
    } else if (status->via.str.size == 5 && memcmp(status->via.str.ptr, "error", 5) == 0) {
        e = cf_msgpack_map_get(root, "error");
        if (!e || e->type != MSGPACK_OBJECT_MAP) {
            cf_error_set(err, "missing_field", "error", "error reply has no \"error\" map");
            goto fail;
        }
        s_copy_str(self->error.code, sizeof self->error.code, cf_msgpack_map_get(e, "code"));
        s_copy_str(self->error.message, sizeof self->error.message,
                   cf_msgpack_map_get(e, "message"));
        s_copy_str(self->error.field, sizeof self->error.field, cf_msgpack_map_get(e, "field"));
        if (!self->error.code[0])
            snprintf(self->error.code, sizeof self->error.code, "internal");
    } else {
        cf_error_set(err, "invalid_value", "status",
                     "reply \"status\" must be \"ok\" or \"error\"");
        goto fail;
    }
    return self;
fail:
    msgpack_unpacked_destroy(&self->unpacked);
    free(self->data);
    free(self);
    return NULL;
}

cf_reply_t *cf_reply_new_error(const uint8_t *id, const cf_error_t *error)
{
    cf_reply_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (id) {
        memcpy(self->id, id, CF_JOB_ID_SIZE);
        self->has_id = true;
    }
    self->error = *error;
    return self;
}

void cf_reply_destroy(cf_reply_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_reply_t *self = *self_p;
    if (self->decoded)
        msgpack_unpacked_destroy(&self->unpacked);
    free(self->data);
    free(self);
    *self_p = NULL;
}

const uint8_t *cf_reply_id(const cf_reply_t *self)
{
    return self->has_id ? self->id : NULL;
}

bool cf_reply_ok(const cf_reply_t *self)
{
    return self->ok;
}

const msgpack_object *cf_reply_result(const cf_reply_t *self)
{
    return self->ok ? self->result : NULL;
}

const cf_error_t *cf_reply_error(const cf_reply_t *self)
{
    return self->ok ? NULL : &self->error;
}

const void *cf_reply_data(const cf_reply_t *self, size_t *len)
{
    *len = self->len;
    return self->data;
}

json_t *cf_reply_to_json(const cf_reply_t *self)
{
    json_t *out = json_object();
    json_object_set_new(out, "v", json_integer(CF_JOB_VERSION));
    if (self->has_id) {
        char hex[2 * CF_JOB_ID_SIZE + 1];
        cf_job_id_hex(self->id, hex);
        json_object_set_new(out, "id", json_string(hex));
    } else {
        json_object_set_new(out, "id", json_null());
    }
    json_object_set_new(out, "status", json_string(self->ok ? "ok" : "error"));
    if (self->ok) {
        cf_error_t err = {0};
        json_t *result = self->result ? cf_msgpack_to_json(self->result, &err) : json_object();
        json_object_set_new(out, "result", result ? result : json_null());
    } else {
        json_t *e = json_object();
        json_object_set_new(e, "code", json_string(self->error.code));
        json_object_set_new(e, "message", json_string(self->error.message));
        if (self->error.field[0])
            json_object_set_new(e, "field", json_string(self->error.field));
        json_object_set_new(out, "error", e);
    }
    return out;
}
