/* Many jobs in flight at once, and the CAs a fan-out command works on (see jobs_many.h). */
#include "jobs_many.h"

#include <czmq.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_msgpack.h"
#include "cf_proto.h"
#include "store.h"

/* How long one job may wait for its final reply, from its first send: CRL builds wait for
 * each other's locks and a presign shard of a large CA signs for a while, but a job that has
 * not come back in ten minutes is not going to. */
#define S_PATIENCE_MS 600000
/* The pause before a job refused with "busy" is sent again. */
#define S_BUSY_PAUSE_MS 500
/* Bounds of the in-flight window (twice the workers' credit in between). */
#define S_WINDOW_MIN 32
#define S_WINDOW_MAX 1024

typedef struct {
    char *type;                 /* job type */
    char *what;                 /* the job as error lines name it */
    unsigned char *params;      /* packed msgpack map (wiped before it is freed) */
    size_t params_len;          /* its size */
    uint8_t id[CF_JOB_ID_SIZE]; /* random, with the index in the last four bytes */
    cf_reply_t *reply;          /* the final reply, once it came */
    uint64_t first_sent;        /* cf_mono_ms of the first send, 0 before */
    uint64_t retry_at;          /* when a job refused with "busy" goes again */
} s_job_t;

struct _cf_cli_batch_t {
    char *label;                       /* start of the progress line */
    char *unit;                        /* what the counts count, or NULL */
    s_job_t *jobs;                     /* the jobs, in the order added */
    size_t n;                          /* how many */
    size_t cap;                        /* room in jobs */
    cf_cli_batch_reply_fn *on_reply;   /* hook per final reply, or NULL */
    cf_cli_batch_status_fn *on_status; /* hook for the progress line, or NULL */
    void *arg;                         /* for both hooks */
    double seconds;                    /* first send to last reply */
};

cf_cli_batch_t *cf_cli_batch_new(const char *label, const char *unit)
{
    cf_cli_batch_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->label = strdup(label);
    self->unit = unit ? strdup(unit) : NULL;
    if (!self->label || (unit && !self->unit))
        cf_cli_batch_destroy(&self);
    return self;
}

void cf_cli_batch_destroy(cf_cli_batch_t **self_p)
{
    cf_cli_batch_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->n; i++) {
        s_job_t *job = &self->jobs[i];
        OPENSSL_cleanse(job->params, job->params_len);
        free(job->params);
        free(job->type);
        free(job->what);
        cf_reply_destroy(&job->reply);
    }
    free(self->jobs);
    free(self->label);
    free(self->unit);
    free(self);
    *self_p = NULL;
}

int cf_cli_batch_add(cf_cli_batch_t *self, const char *type, const json_t *params, const char *what)
{
    if (self->n == UINT32_MAX) {
        cf_cli_fail("too many jobs");
        return -1;
    }
    if (self->n == self->cap) {
        size_t cap = self->cap ? self->cap * 2 : 64;
        s_job_t *jobs = realloc(self->jobs, cap * sizeof *jobs);
        if (!jobs) {
            cf_cli_fail("out of memory");
            return -1;
        }
        self->jobs = jobs;
        self->cap = cap;
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    if (cf_json_to_msgpack(params, &pk) != 0) {
        if (buf.data)
            OPENSSL_cleanse(buf.data, buf.size);
        msgpack_sbuffer_destroy(&buf);
        cf_cli_fail("%s: the job's params cannot be packed", what);
        return -1;
    }
    s_job_t job = {.type = strdup(type), .what = strdup(what), .params_len = buf.size};
    job.params = (unsigned char *)msgpack_sbuffer_release(&buf);
    if (!job.type || !job.what || !job.params) {
        OPENSSL_cleanse(job.params, job.params_len);
        free(job.params);
        free(job.type);
        free(job.what);
        cf_cli_fail("out of memory");
        return -1;
    }
    /* Random, so that no other run of any client ever reuses it (workers answer a known id
     * with the stored result); the index in the last bytes finds the job of a reply. */
    cf_job_id_random(job.id);
    uint32_t index = (uint32_t)self->n;
    for (int k = 0; k < 4; k++)
        job.id[CF_JOB_ID_SIZE - 1 - k] = (uint8_t)(index >> (8 * k));
    self->jobs[self->n++] = job;
    return 0;
}

void cf_cli_batch_set_hooks(cf_cli_batch_t *self, cf_cli_batch_reply_fn *on_reply,
                            cf_cli_batch_status_fn *on_status, void *arg)
{
    self->on_reply = on_reply;
    self->on_status = on_status;
    self->arg = arg;
}

size_t cf_cli_batch_size(const cf_cli_batch_t *self)
{
    return self->n;
}

const cf_reply_t *cf_cli_batch_reply(const cf_cli_batch_t *self, size_t index)
{
    return index < self->n ? self->jobs[index].reply : NULL;
}

double cf_cli_batch_seconds(const cf_cli_batch_t *self)
{
    return self->seconds;
}

size_t cf_cli_batch_print_failures(const cf_cli_batch_t *self)
{
    size_t failed = 0;
    for (size_t i = 0; i < self->n; i++) {
        const cf_reply_t *reply = self->jobs[i].reply;
        if (reply && cf_reply_ok(reply))
            continue;
        failed++;
        if (reply)
            cf_cli_fail_reply(self->jobs[i].what, reply);
        else
            cf_cli_fail("%s: no reply", self->jobs[i].what);
    }
    return failed;
}

json_t *cf_cli_batch_error_json(const cf_cli_batch_t *self, size_t index)
{
    const cf_reply_t *reply = cf_cli_batch_reply(self, index);
    if (reply && cf_reply_ok(reply))
        return json_null();
    const cf_error_t *e = reply ? cf_reply_error(reply) : NULL;
    if (!e)
        return json_pack("{s:s, s:s, s:s}", "code", "internal", "message", "no reply", "field", "");
    return json_pack("{s:s, s:s, s:s}", "code", e->code, "message", e->message, "field", e->field);
}

/* The job of REPLY, by the index in its id; NULL when it is none of ours. */
static s_job_t *s_job_of(cf_cli_batch_t *self, const cf_reply_t *reply)
{
    const uint8_t *id = cf_reply_id(reply);
    if (!id)
        return NULL;
    uint32_t index = 0;
    for (int k = 0; k < 4; k++)
        index = index << 8 | id[CF_JOB_ID_SIZE - 4 + k];
    if (index >= self->n || memcmp(self->jobs[index].id, id, CF_JOB_ID_SIZE) != 0)
        return NULL;
    return &self->jobs[index];
}

/* An unsigned integer member of a msgpack map, or 0. */
static uint64_t s_map_u64(const msgpack_object *map, const char *key)
{
    const msgpack_object *v = cf_msgpack_map_get(map, key);
    return v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? v->via.u64 : 0;
}

/* Ask the broker whether every job type of the batch has a worker; the summed credit of those
 * workers into *CREDIT. 0, or -1 after printing why. */
static int s_preflight(cf_cli_batch_t *self, cf_client_t *client, const char *endpoint,
                       uint64_t *credit)
{
    cf_client_set_timeout(client, 1000);
    cf_client_set_attempts(client, 2);
    cf_reply_t *reply = cf_client_call(client, "broker.status", NULL, 0, 0);
    int rc = -1;
    if (!reply) {
        cf_cli_fail("out of memory");
        return -1;
    }
    if (!cf_reply_ok(reply)) {
        cf_cli_fail("broker at \"%s\" did not answer: %s", endpoint,
                    cf_reply_error(reply)->message);
        goto out;
    }
    const msgpack_object *services = cf_msgpack_map_get(cf_reply_result(reply), "services");
    *credit = 0;
    for (size_t i = 0; i < self->n; i++) {
        if (i > 0 && strcmp(self->jobs[i].type, self->jobs[i - 1].type) == 0)
            continue;
        uint64_t workers = 0;
        for (uint32_t k = 0;
             services && services->type == MSGPACK_OBJECT_ARRAY && k < services->via.array.size;
             k++) {
            const msgpack_object *s = &services->via.array.ptr[k];
            const msgpack_object *name = cf_msgpack_map_get(s, "name");
            if (name && name->type == MSGPACK_OBJECT_STR &&
                name->via.str.size == strlen(self->jobs[i].type) &&
                memcmp(name->via.str.ptr, self->jobs[i].type, name->via.str.size) == 0) {
                workers = s_map_u64(s, "workers");
                *credit += s_map_u64(s, "credit");
            }
        }
        if (workers == 0) {
            cf_cli_fail("no worker serves \"%s\" at the broker \"%s\"", self->jobs[i].type,
                        endpoint);
            goto out;
        }
    }
    rc = 0;
out:
    cf_reply_destroy(&reply);
    return rc;
}

static void s_progress(cf_cli_batch_t *self, size_t done, size_t failed, uint64_t start)
{
    char extra[256] = "";
    if (self->on_status)
        self->on_status(self->arg, extra, sizeof extra, (double)(cf_mono_ms() - start) / 1000.0);
    fprintf(stderr, "\r%s: %zu/%zu %s%sdone, %zu failed%s\033[K", self->label, done, self->n,
            self->unit ? self->unit : "", self->unit ? " " : "", failed, extra);
    fflush(stderr);
}

/* Keep REPLY as the final reply of JOB (taking it), or put JOB back for a resend when the
 * broker was busy and its patience lasts. True when the reply is final. */
static bool s_settle(s_job_t *job, cf_reply_t **reply_p, uint64_t now)
{
    const cf_error_t *e = cf_reply_error(*reply_p);
    if (e && strcmp(e->code, "busy") == 0 && now - job->first_sent < S_PATIENCE_MS) {
        cf_reply_destroy(reply_p);
        job->retry_at = now + S_BUSY_PAUSE_MS;
        return false;
    }
    job->reply = *reply_p;
    *reply_p = NULL;
    return true;
}

int cf_cli_batch_run(cf_cli_batch_t *self, cf_cli_t *cli)
{
    const char *endpoint =
        cf_config_get(cli->config, "broker", "endpoint", CF_PROTO_ENDPOINT_DEFAULT);
    cf_client_t *client = cf_client_new_from_config(cli->config);
    if (!client) {
        cf_cli_fail("could not connect to the broker at \"%s\"", endpoint);
        return -1;
    }
    uint64_t credit = 0;
    if (s_preflight(self, client, endpoint, &credit) != 0) {
        cf_client_destroy(&client);
        return -1;
    }
    int64_t timeout = cf_config_get_int(cli->config, "client", "timeout_ms", 3000);
    int64_t attempts = cf_config_get_int(cli->config, "client", "attempts", 10);
    timeout = timeout > 0 ? timeout : 3000;
    if (attempts * timeout < S_PATIENCE_MS)
        attempts = (S_PATIENCE_MS + timeout - 1) / timeout;
    cf_client_set_timeout(client, (int)timeout);
    cf_client_set_attempts(client, (int)attempts);
    /* Twice the credit keeps every worker busy while the next jobs wait at the broker, and
     * keeps the time a job waits there (which counts against its patience) short. */
    size_t window = credit * 2 > S_WINDOW_MAX ? S_WINDOW_MAX : (size_t)credit * 2;
    window = window < S_WINDOW_MIN ? S_WINDOW_MIN : window;

    bool tty = isatty(STDERR_FILENO);
    size_t next = 0, done = 0, failed = 0, busy_waiting = 0;
    uint64_t start = cf_mono_ms(), shown = 0;
    while (done < self->n && !zsys_interrupted) {
        uint64_t now = cf_mono_ms();
        /* Jobs refused as busy go first once due; scanned only while there are some. */
        for (size_t i = 0; busy_waiting > 0 && i < next; i++) {
            s_job_t *job = &self->jobs[i];
            if (!job->reply && job->retry_at && now >= job->retry_at &&
                cf_client_pending(client) < window) {
                job->retry_at = 0;
                busy_waiting--;
                cf_client_send(client, job->id, job->type, job->params, job->params_len, 0, NULL);
            }
        }
        while (next < self->n && cf_client_pending(client) < window) {
            s_job_t *job = &self->jobs[next++];
            job->first_sent = now;
            if (cf_client_send(client, job->id, job->type, job->params, job->params_len, 0, NULL) !=
                0) {
                cf_error_t err;
                cf_error_set(&err, "internal", "", "could not queue the job");
                job->reply = cf_reply_new_error(job->id, &err);
                done++;
                failed++;
            }
        }
        cf_reply_t *reply = cf_client_recv(client, 200);
        s_job_t *job = reply ? s_job_of(self, reply) : NULL;
        if (job && !job->reply && !job->retry_at) {
            if (s_settle(job, &reply, cf_mono_ms())) {
                done++;
                failed += cf_reply_ok(job->reply) ? 0 : 1;
                if (self->on_reply)
                    self->on_reply(self->arg, (size_t)(job - self->jobs), job->reply);
            } else {
                busy_waiting++;
            }
        }
        cf_reply_destroy(&reply);
        /* Only busy jobs left to resend: nothing to wait on but their pause. */
        if (cf_client_pending(client) == 0 && busy_waiting > 0)
            zclock_sleep(50);
        now = cf_mono_ms();
        if (tty && (now - shown >= 250 || done == self->n)) {
            s_progress(self, done, failed, start);
            shown = now;
        }
    }
    self->seconds = (double)(cf_mono_ms() - start) / 1000.0;
    if (tty && shown)
        fputs("\r\033[K", stderr);
    /* Interrupted: what has no reply failed, and says so. */
    for (size_t i = 0; i < self->n; i++) {
        if (self->jobs[i].reply)
            continue;
        cf_error_t err;
        cf_error_set(&err, "interrupted", "", "interrupted while waiting for the reply");
        self->jobs[i].reply = cf_reply_new_error(self->jobs[i].id, &err);
        failed++;
    }
    cf_client_destroy(&client);
    return (int)(failed > INT32_MAX ? INT32_MAX : failed);
}

/* --- the CAs to work on ------------------------------------------------------------------ */

json_t *cf_cli_cas_select(cf_cli_t *cli, char *const *names, int n, bool all, bool count_certs)
{
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg)
        return NULL;
    json_t *list = json_array(), *wanted = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(wanted, json_string(names[i]));
    char *wanted_text = json_dumps(wanted, JSON_COMPACT);
    /* The certificate count is a scan of the CA's certificates: only presign needs it. */
    const char *values[3] = {all ? "true" : "false", wanted_text, count_certs ? "true" : "false"};
    PGresult *res =
        wanted_text
            ? cf_pg_exec_params(pg,
                                "SELECT json_build_object("
                                " 'id', a.id, 'name', a.name, 'crl_shards', a.crl_shards,"
                                " 'usable', a.enabled AND NOT a.revoked AND a.expires > now(),"
                                " 'responder', EXISTS (SELECT 1 FROM ocsp_responders r"
                                "  WHERE r.ca_id = a.id AND r.expires > now()),"
                                " 'certificates', CASE WHEN $3::boolean THEN"
                                "  (SELECT count(*) FROM certificates c"
                                "   WHERE c.ca_id = a.id AND c.expires > now())"
                                "  + (SELECT count(*) FROM certificate_authorities k"
                                "   WHERE k.parent_id = a.id AND k.expires > now()) END"
                                ")::text FROM certificate_authorities a "
                                "WHERE CASE WHEN $1::boolean"
                                " THEN a.enabled AND NOT a.revoked AND a.expires > now()"
                                " ELSE a.name IN (SELECT json_array_elements_text($2::json))"
                                " END ORDER BY a.name",
                                3, values, NULL, NULL, 0)
            : NULL;
    bool packed = wanted_text != NULL;
    free(wanted_text);
    if (!res) {
        cf_cli_fail("could not read the certificate authorities: %s",
                    packed ? cf_pg_errstr(pg) : "out of memory");
        goto fail;
    }
    for (int k = 0; k < PQntuples(res); k++) {
        json_t *row = json_loads(PQgetvalue(res, k, 0), 0, NULL);
        if (!row) {
            cf_cli_fail("could not read the certificate authorities");
            goto fail;
        }
        if (!count_certs)
            json_object_del(row, "certificates");
        json_array_append_new(list, row);
    }
    for (int i = 0; i < n; i++) {
        size_t k;
        json_t *row;
        bool found = false;
        json_array_foreach(list, k, row)
        {
            found = found || strcmp(json_string_value(json_object_get(row, "name")), names[i]) == 0;
        }
        if (!found) {
            cf_cli_fail("certificate authority \"%s\" does not exist", names[i]);
            goto fail;
        }
    }
    PQclear(res);
    json_decref(wanted);
    cf_pg_destroy(&pg);
    return list;
fail:
    PQclear(res);
    json_decref(wanted);
    json_decref(list);
    cf_pg_destroy(&pg);
    return NULL;
}
