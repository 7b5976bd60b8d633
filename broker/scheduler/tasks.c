/* The scheduler's tasks: which CAs each periodic job type covers and the params it sends.
 * crl.build follows `certfleet crl build --all --if-stale` (cli/cmd_crl.c), the OCSP tasks
 * `certfleet ocsp keygen|presign --all`, so that the scheduler and the commands agree. */
#include "tasks.h"

#include <inttypes.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_msgpack.h"

/* The CAs a task may work on: enabled, not revoked, not expired (as --all selects them). */
#define S_USABLE "a.enabled AND NOT a.revoked AND a.expires > now()"

void sched_job_id(const char *task, int64_t ca_id, const char *scope, int shard, int64_t period,
                  uint8_t id[CF_JOB_ID_SIZE])
{
    char text[256];
    int len = snprintf(text, sizeof text, "certfleet-scheduler:%s:%" PRId64 ":%s:%d:%" PRId64, task,
                       ca_id, scope, shard, period);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    /* SHA-256 of a buffer in memory fails only with a broken OpenSSL: a job id from it would
     * not be unique, so stop rather than risk two jobs sharing one. */
    if (EVP_Digest(text, (size_t)len, md, &mdlen, EVP_sha256(), NULL) != 1 ||
        mdlen < CF_JOB_ID_SIZE)
        abort();
    memcpy(id, md, CF_JOB_ID_SIZE);
}

void sched_jobs_reset(sched_jobs_t *jobs)
{
    for (size_t i = 0; i < jobs->n; i++)
        free(jobs->items[i].params);
    free(jobs->items);
    memset(jobs, 0, sizeof *jobs);
}

/* Append a job whose params are the packed map in BUF (taken over). 0 or -1. */
static int s_add(sched_jobs_t *jobs, msgpack_sbuffer *buf, const uint8_t id[CF_JOB_ID_SIZE],
                 const char *what, char *err, size_t errlen)
{
    if (jobs->n == jobs->cap) {
        size_t cap = jobs->cap ? 2 * jobs->cap : 16;
        sched_job_t *items = realloc(jobs->items, cap * sizeof *items);
        if (!items) {
            msgpack_sbuffer_destroy(buf);
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        jobs->items = items;
        jobs->cap = cap;
    }
    sched_job_t *job = &jobs->items[jobs->n++];
    memcpy(job->id, id, CF_JOB_ID_SIZE);
    snprintf(job->what, sizeof job->what, "%s", what);
    job->params_len = buf->size;
    job->params = (unsigned char *)msgpack_sbuffer_release(buf);
    return 0;
}

/* Run SQL (no parameters) and check its shape: N columns. Caller owns the result. */
static PGresult *s_select(cf_pg_t *pg, const char *sql, int ncols, char *err, size_t errlen)
{
    PGresult *res = cf_pg_exec_params(pg, sql, 0, NULL, NULL, NULL, 0);
    if (!res) {
        snprintf(err, errlen, "could not read the certificate authorities: %s", cf_pg_errstr(pg));
        return NULL;
    }
    if (PQnfields(res) != ncols) {
        PQclear(res);
        snprintf(err, errlen, "could not read the certificate authorities: unexpected columns");
        return NULL;
    }
    return res;
}

/* crl.build: for every usable CA the "ca" scope, then the "user" scope of each shard, all with
 * if_stale, so that a CRL is rebuilt once it is marked stale or past half its validity. */
static int s_crl_build(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                       char *err, size_t errlen)
{
    (void)config;
    PGresult *res = s_select(pg,
                             "SELECT a.id, a.name, greatest(a.crl_shards, 1) "
                             "FROM certificate_authorities a WHERE " S_USABLE " ORDER BY a.name",
                             3, err, errlen);
    if (!res)
        return -1;
    int rc = 0;
    for (int k = 0; k < PQntuples(res) && rc == 0; k++) {
        int64_t ca_id = strtoll(PQgetvalue(res, k, 0), NULL, 10);
        const char *name = PQgetvalue(res, k, 1);
        int shards = atoi(PQgetvalue(res, k, 2));
        for (int s = -1; s < shards && rc == 0; s++) {
            /* s == -1 is the "ca" scope, which has shard 0 only. */
            const char *scope = s < 0 ? "ca" : "user";
            int shard = s < 0 ? 0 : s;
            msgpack_sbuffer buf;
            msgpack_sbuffer_init(&buf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 4);
            cf_msgpack_pack_cstr(&pk, "ca");
            cf_msgpack_pack_cstr(&pk, name);
            cf_msgpack_pack_cstr(&pk, "scope");
            cf_msgpack_pack_cstr(&pk, scope);
            cf_msgpack_pack_cstr(&pk, "shard");
            msgpack_pack_int(&pk, shard);
            cf_msgpack_pack_cstr(&pk, "if_stale");
            msgpack_pack_true(&pk);
            uint8_t id[CF_JOB_ID_SIZE];
            sched_job_id("crl.build", ca_id, scope, shard, period, id);
            char what[192];
            if (s < 0)
                snprintf(what, sizeof what, "crl.build \"%s\" ca", name);
            else
                snprintf(what, sizeof what, "crl.build \"%s\" user/%d", name, shard);
            rc = s_add(jobs, &buf, id, what, err, errlen);
        }
    }
    PQclear(res);
    return rc;
}

/* ocsp.presign: every usable CA with a current responder, in [scheduler] ocsp_shards shards. A
 * CA whose responder expired waits for ocsp.keygen (every shard would answer no_responder). */
static int s_ocsp_presign(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                          char *err, size_t errlen)
{
    int64_t shards = cf_config_get_int(config, "scheduler", "ocsp_shards", 1);
    shards = shards < 1 ? 1 : shards > 4096 ? 4096 : shards;
    PGresult *res = s_select(pg,
                             "SELECT a.id, a.name FROM certificate_authorities a WHERE " S_USABLE
                             " AND EXISTS (SELECT 1 FROM ocsp_responders r WHERE r.ca_id = a.id"
                             " AND r.expires > now()) ORDER BY a.name",
                             2, err, errlen);
    if (!res)
        return -1;
    int rc = 0;
    for (int k = 0; k < PQntuples(res) && rc == 0; k++) {
        int64_t ca_id = strtoll(PQgetvalue(res, k, 0), NULL, 10);
        const char *name = PQgetvalue(res, k, 1);
        for (int64_t s = 0; s < shards && rc == 0; s++) {
            msgpack_sbuffer buf;
            msgpack_sbuffer_init(&buf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
            msgpack_pack_map(&pk, 3);
            cf_msgpack_pack_cstr(&pk, "ca");
            cf_msgpack_pack_cstr(&pk, name);
            cf_msgpack_pack_cstr(&pk, "shards");
            msgpack_pack_int64(&pk, shards);
            cf_msgpack_pack_cstr(&pk, "shard");
            msgpack_pack_int64(&pk, s);
            /* The shard count is part of the id: the same shard of another split is other work. */
            char scope[32];
            snprintf(scope, sizeof scope, "of%" PRId64, shards);
            uint8_t id[CF_JOB_ID_SIZE];
            sched_job_id("ocsp.presign", ca_id, scope, (int)s, period, id);
            char what[192];
            snprintf(what, sizeof what, "ocsp.presign \"%s\" shard %" PRId64 "/%" PRId64, name, s,
                     shards);
            rc = s_add(jobs, &buf, id, what, err, errlen);
        }
    }
    PQclear(res);
    return rc;
}

/* ocsp.keygen: every usable CA that has (or had) a responder; the worker renews only inside the
 * renewal window, so most of these jobs answer renewed: false. */
static int s_ocsp_keygen(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                         char *err, size_t errlen)
{
    (void)config;
    PGresult *res = s_select(pg,
                             "SELECT a.id, a.name FROM certificate_authorities a WHERE " S_USABLE
                             " AND EXISTS (SELECT 1 FROM ocsp_responders r WHERE r.ca_id = a.id)"
                             " ORDER BY a.name",
                             2, err, errlen);
    if (!res)
        return -1;
    int rc = 0;
    for (int k = 0; k < PQntuples(res) && rc == 0; k++) {
        int64_t ca_id = strtoll(PQgetvalue(res, k, 0), NULL, 10);
        const char *name = PQgetvalue(res, k, 1);
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 1);
        cf_msgpack_pack_cstr(&pk, "ca");
        cf_msgpack_pack_cstr(&pk, name);
        uint8_t id[CF_JOB_ID_SIZE];
        sched_job_id("ocsp.keygen", ca_id, "", 0, period, id);
        char what[192];
        snprintf(what, sizeof what, "ocsp.keygen \"%s\"", name);
        rc = s_add(jobs, &buf, id, what, err, errlen);
    }
    PQclear(res);
    return rc;
}

/* notify.expiring: one job with empty params; the notifier finds the watchers itself. */
static int s_notify_expiring(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                             char *err, size_t errlen)
{
    (void)pg;
    (void)config;
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 0);
    uint8_t id[CF_JOB_ID_SIZE];
    sched_job_id("notify.expiring", 0, "", 0, period, id);
    return s_add(jobs, &buf, id, "notify.expiring", err, errlen);
}

const sched_task_def_t sched_tasks[] = {
    {"crl.build", "crl_interval_s", 300, s_crl_build},
    {"ocsp.keygen", "ocsp_keygen_interval_s", 3600, s_ocsp_keygen},
    {"ocsp.presign", "ocsp_presign_interval_s", 300, s_ocsp_presign},
    {"notify.expiring", "notify_interval_s", 3600, s_notify_expiring},
    {NULL, NULL, 0, NULL},
};
