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

/* What the jobs of one task and period share. */
typedef struct {
    const char *task;   /* the job type, also the first part of each job id */
    int64_t period;     /* the period the jobs are for */
    int64_t shards;     /* ocsp.presign: how many shards each CA's certificates are split in */
    sched_jobs_t *jobs; /* where the jobs go */
    char *err;          /* why making them failed */
    size_t errlen;      /* its size */
} s_run_t;

/* Begin the params of a job in BUF: a map of N entries, the first "ca": CA unless CA is NULL. */
static void s_params(msgpack_sbuffer *buf, msgpack_packer *pk, uint32_t n, const char *ca)
{
    msgpack_sbuffer_init(buf);
    msgpack_packer_init(pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(pk, n);
    if (ca) {
        cf_msgpack_pack_cstr(pk, "ca");
        cf_msgpack_pack_cstr(pk, ca);
    }
}

/* Append the job of RUN about (CA_ID, SCOPE, SHARD) whose params are the packed map in BUF
 * (taken over). 0 or -1. */
static int s_add(s_run_t *run, msgpack_sbuffer *buf, int64_t ca_id, const char *scope, int shard,
                 const char *what)
{
    sched_jobs_t *jobs = run->jobs;
    if (jobs->n == jobs->cap) {
        size_t cap = jobs->cap ? 2 * jobs->cap : 16;
        sched_job_t *items = realloc(jobs->items, cap * sizeof *items);
        if (!items) {
            msgpack_sbuffer_destroy(buf);
            snprintf(run->err, run->errlen, "out of memory");
            return -1;
        }
        jobs->items = items;
        jobs->cap = cap;
    }
    sched_job_t *job = &jobs->items[jobs->n++];
    sched_job_id(run->task, ca_id, scope, shard, run->period, job->id);
    snprintf(job->what, sizeof job->what, "%s", what);
    job->params_len = buf->size;
    job->params = (unsigned char *)msgpack_sbuffer_release(buf);
    return 0;
}

/* The jobs of RUN for one CA: its id, NAME and CRL shard count (at least 1). 0 or -1. */
typedef int(s_ca_jobs_fn)(s_run_t *run, int64_t ca_id, const char *name, int crl_shards);

/* The CAs a task may work on (as --all selects them: enabled, not revoked, not expired), with
 * the columns s_each_ca reads; a task adds its own conditions and the order. */
#define S_USABLE_CAS                                                                               \
    "SELECT a.id, a.name, greatest(a.crl_shards, 1) FROM certificate_authorities a "               \
    "WHERE a.enabled AND NOT a.revoked AND a.expires > now()"

/* Run SQL (S_USABLE_CAS and more) and make the jobs of RUN for every CA it returns. 0 or -1. */
static int s_each_ca(cf_pg_t *pg, const char *sql, s_run_t *run, s_ca_jobs_fn *jobs_of)
{
    PGresult *res = cf_pg_exec_params(pg, sql, 0, NULL, NULL, NULL, 0);
    if (!res) {
        snprintf(run->err, run->errlen, "could not read the certificate authorities: %s",
                 cf_pg_errstr(pg));
        return -1;
    }
    if (PQnfields(res) != 3) {
        PQclear(res);
        snprintf(run->err, run->errlen,
                 "could not read the certificate authorities: unexpected columns");
        return -1;
    }
    int rc = 0;
    for (int k = 0; k < PQntuples(res) && rc == 0; k++)
        rc = jobs_of(run, strtoll(PQgetvalue(res, k, 0), NULL, 10), PQgetvalue(res, k, 1),
                     atoi(PQgetvalue(res, k, 2)));
    PQclear(res);
    return rc;
}

/* crl.build of one CA: the "ca" scope, then the "user" scope of each shard, all with if_stale,
 * so that a CRL is rebuilt once it is marked stale or past half its validity. */
static int s_crl_jobs(s_run_t *run, int64_t ca_id, const char *name, int crl_shards)
{
    int rc = 0;
    for (int s = -1; s < crl_shards && rc == 0; s++) {
        /* s == -1 is the "ca" scope, which has shard 0 only. */
        const char *scope = s < 0 ? "ca" : "user";
        int shard = s < 0 ? 0 : s;
        msgpack_sbuffer buf;
        msgpack_packer pk;
        s_params(&buf, &pk, 4, name);
        cf_msgpack_pack_cstr(&pk, "scope");
        cf_msgpack_pack_cstr(&pk, scope);
        cf_msgpack_pack_cstr(&pk, "shard");
        msgpack_pack_int(&pk, shard);
        cf_msgpack_pack_cstr(&pk, "if_stale");
        msgpack_pack_true(&pk);
        char what[192];
        if (s < 0)
            snprintf(what, sizeof what, "crl.build \"%s\" ca", name);
        else
            snprintf(what, sizeof what, "crl.build \"%s\" user/%d", name, shard);
        rc = s_add(run, &buf, ca_id, scope, shard, what);
    }
    return rc;
}

/* crl.build: every usable CA. */
static int s_crl_build(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                       char *err, size_t errlen)
{
    (void)config;
    s_run_t run = {"crl.build", period, 0, jobs, err, errlen};
    return s_each_ca(pg, S_USABLE_CAS " ORDER BY a.name", &run, s_crl_jobs);
}

/* ocsp.presign of one CA: one job per shard of RUN's split. */
static int s_presign_jobs(s_run_t *run, int64_t ca_id, const char *name, int crl_shards)
{
    (void)crl_shards;
    /* The shard count is part of the id: the same shard of another split is other work. */
    char scope[32];
    snprintf(scope, sizeof scope, "of%" PRId64, run->shards);
    int rc = 0;
    for (int64_t s = 0; s < run->shards && rc == 0; s++) {
        msgpack_sbuffer buf;
        msgpack_packer pk;
        s_params(&buf, &pk, 3, name);
        cf_msgpack_pack_cstr(&pk, "shards");
        msgpack_pack_int64(&pk, run->shards);
        cf_msgpack_pack_cstr(&pk, "shard");
        msgpack_pack_int64(&pk, s);
        char what[192];
        snprintf(what, sizeof what, "ocsp.presign \"%s\" shard %" PRId64 "/%" PRId64, name, s,
                 run->shards);
        rc = s_add(run, &buf, ca_id, scope, (int)s, what);
    }
    return rc;
}

/* ocsp.presign: every usable CA with a current responder, in [scheduler] ocsp_shards shards. A
 * CA whose responder expired waits for ocsp.keygen (every shard would answer no_responder). */
static int s_ocsp_presign(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                          char *err, size_t errlen)
{
    int64_t shards = cf_config_get_int(config, "scheduler", "ocsp_shards", 1);
    shards = shards < 1 ? 1 : shards > 4096 ? 4096 : shards;
    s_run_t run = {"ocsp.presign", period, shards, jobs, err, errlen};
    return s_each_ca(pg,
                     S_USABLE_CAS " AND EXISTS (SELECT 1 FROM ocsp_responders r WHERE r.ca_id = "
                                  "a.id AND r.expires > now()) ORDER BY a.name",
                     &run, s_presign_jobs);
}

/* ocsp.keygen of one CA. */
static int s_keygen_jobs(s_run_t *run, int64_t ca_id, const char *name, int crl_shards)
{
    (void)crl_shards;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    s_params(&buf, &pk, 1, name);
    char what[192];
    snprintf(what, sizeof what, "ocsp.keygen \"%s\"", name);
    return s_add(run, &buf, ca_id, "", 0, what);
}

/* ocsp.keygen: every usable CA that has (or had) a responder; the worker renews only inside the
 * renewal window, so most of these jobs answer renewed: false. */
static int s_ocsp_keygen(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                         char *err, size_t errlen)
{
    (void)config;
    s_run_t run = {"ocsp.keygen", period, 0, jobs, err, errlen};
    return s_each_ca(pg,
                     S_USABLE_CAS " AND EXISTS (SELECT 1 FROM ocsp_responders r WHERE r.ca_id = "
                                  "a.id) ORDER BY a.name",
                     &run, s_keygen_jobs);
}

/* notify.expiring: one job with empty params; the notifier finds the watchers itself. */
static int s_notify_expiring(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                             char *err, size_t errlen)
{
    (void)pg;
    (void)config;
    s_run_t run = {"notify.expiring", period, 0, jobs, err, errlen};
    msgpack_sbuffer buf;
    msgpack_packer pk;
    s_params(&buf, &pk, 0, NULL);
    return s_add(&run, &buf, 0, "", 0, "notify.expiring");
}

const sched_task_def_t sched_tasks[] = {
    {"crl.build", "crl_interval_s", 300, s_crl_build},
    {"ocsp.keygen", "ocsp_keygen_interval_s", 3600, s_ocsp_keygen},
    {"ocsp.presign", "ocsp_presign_interval_s", 300, s_ocsp_presign},
    {"notify.expiring", "notify_interval_s", 3600, s_notify_expiring},
    {NULL, NULL, 0, NULL},
};
