/* cf_scheduler: leadership through a Redis lock, periods claimed in PostgreSQL under the
 * lock's fencing token, and many jobs in flight through one client (docs/scheduler.md).
 *
 * The main loop never blocks longer than a tick (100 ms) or the next lock renewal, so that
 * the leader renews in time while hundreds of replies come in. */
#include "scheduler.h"

#include <czmq.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_job.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_metrics.h"
#include "cf_pg.h"
#include "cf_proto.h"
#include "cf_redis.h"
#include "tasks.h"

#define S_TICK_MS          100  /* longest wait of one loop turn */
#define S_HEALTH_MS        5000 /* PostgreSQL and broker checks, when nothing else told us */
#define S_PROBE_TIMEOUT_MS 2000 /* broker.status must answer within this */
#define S_CLAIM_RETRY_MS   1000 /* a claim that failed on the database is tried again after */
#define S_MIN_DEADLINE_S   30   /* default deadline: the task's interval, at least this */
#define S_MAX_INTERVAL_S   31536000
#define S_PURGE_MS         3600000 /* old scheduler_runs rows are deleted at most this often */
#define S_MAX_TASKS        8

/* Claim (task, period) for this scheduler's fence: the fence row only moves forward, so a
 * leader whose lock lapsed and was taken by a newer one (higher fence) cannot claim. Returns
 * (fence accepted 0/1, run inserted 0/1). */
static const char s_claim_sql[] =
    "WITH f AS ("
    " INSERT INTO scheduler_fence AS s (id, fence, scheduler, updated_at)"
    " VALUES (true, $3::bigint, $4, now())"
    " ON CONFLICT (id) DO UPDATE SET fence = EXCLUDED.fence, scheduler = EXCLUDED.scheduler,"
    " updated_at = now() WHERE s.fence <= EXCLUDED.fence RETURNING 1),"
    " run AS ("
    " INSERT INTO scheduler_runs (task, period, interval_s, scheduler, fence)"
    " SELECT $1, $2::bigint, $5::integer, $4, $3::bigint FROM f"
    " ON CONFLICT (task, period) DO NOTHING RETURNING 1)"
    " SELECT (SELECT count(*) FROM f), (SELECT count(*) FROM run)";
static const char s_finish_sql[] =
    "UPDATE scheduler_runs SET finished_at = now(), jobs = $3::integer, failures = $4::integer,"
    " error = $5 WHERE task = $1 AND period = $2::bigint";
static const char s_purge_sql[] =
    "DELETE FROM scheduler_runs WHERE submitted_at < now() - make_interval(days => $1::integer)";
/* ACME orders that expired more than $1 days ago without a certificate, with their
 * authorizations, challenges and finalize rows, at most 10,000 orders a time (the rest next
 * hour). Valid orders (a certificate was issued) are kept. One statement: the foreign keys
 * are checked at its end, when children and parents are gone together. */
static const char s_acme_purge_sql[] =
    "WITH o AS (SELECT id FROM acme_orders WHERE status <> 'valid'"
    " AND expires < now() - make_interval(days => $1::integer)"
    " AND NOT EXISTS (SELECT 1 FROM acme_certificates c WHERE c.order_id = acme_orders.id"
    " AND c.certificate_id IS NOT NULL) ORDER BY id LIMIT 10000),"
    " a AS (SELECT id FROM acme_authorizations WHERE order_id IN (SELECT id FROM o)),"
    " ch AS (DELETE FROM acme_challenges WHERE authorization_id IN (SELECT id FROM a)),"
    " fin AS (DELETE FROM acme_certificates WHERE order_id IN (SELECT id FROM o)),"
    " au AS (DELETE FROM acme_authorizations WHERE id IN (SELECT id FROM a))"
    " DELETE FROM acme_orders WHERE id IN (SELECT id FROM o)";
/* Raise fence:scheduler to at least ARGV[1]: after Redis lost its data the counter starts
 * again from 1 and would stay below the fence PostgreSQL holds. Never lowers it. */
static const char s_raise_fence_lua[] =
    "local c = tonumber(redis.call('get', KEYS[1]) or '0') "
    "if c < tonumber(ARGV[1]) then redis.call('set', KEYS[1], ARGV[1]) end return c";

typedef struct {
    const sched_task_def_t *def; /* name, setting, job builder */
    int64_t interval_s;          /* 0: off */
    int64_t last_period;         /* newest period claimed by us or found claimed */
    uint64_t retry_at;           /* monotonic ms: no claim before (after a database error) */
    bool attempted;              /* --once: claimed or found claimed */
    bool running;                /* a run is in flight */
    int64_t period;              /* the run's period */
    uint64_t started;            /* the run's start, monotonic ms */
    size_t jobs;                 /* jobs of the run */
    size_t pending;              /* of them still without a final reply */
    size_t failures;             /* of them failed */
    char error[256];             /* the first failure, for scheduler_runs.error */
    cf_metric_t *runs_ok, *runs_failed, *runs_abandoned; /* certfleet_scheduler_runs_total */
    cf_metric_t *jobs_ok, *jobs_failed;                  /* certfleet_scheduler_jobs_total */
} s_task_t;

/* A job waiting for its reply. */
typedef struct {
    s_task_t *task; /* its task (borrowed) */
    char what[192]; /* for logs */
} s_inflight_t;

struct _cf_scheduler_t {
    cf_config_t *config;         /* borrowed */
    char name[128];              /* this scheduler's name, in scheduler_runs */
    cf_pg_t *pg;                 /* reconnecting PostgreSQL connection */
    cf_redis_t *redis;           /* reconnecting Redis connection */
    cf_lock_t *lock;             /* "lock:scheduler" */
    int ttl_ms;                  /* the lock's TTL */
    int renew_ms;                /* a third of it */
    bool leader;                 /* we hold the lock and may submit */
    uint64_t lease_until;        /* monotonic ms after which the lock may have lapsed */
    uint64_t renew_at;           /* next renew or acquire */
    cf_client_t *client;         /* the leader's jobs; NULL while following */
    zhashx_t *inflight;          /* job id hex -> s_inflight_t */
    s_task_t tasks[S_MAX_TASKS]; /* one per sched_tasks entry */
    size_t ntasks;               /* how many */
    int64_t deadline_s;          /* [scheduler] deadline_s: every job's deadline (0: per task) */
    int64_t max_deadline_s;      /* the longest deadline: how long the client keeps resending */
    int keep_days;               /* scheduler_runs rows older than this are deleted (0: kept) */
    int acme_keep_days;   /* expired ACME orders without a certificate are deleted after this */
    uint64_t purge_at;    /* next purge */
    bool once;            /* --once */
    bool once_failed;     /* --once: a run failed or could not be claimed */
    cf_client_t *probe;   /* broker.status health probe */
    bool probing;         /* a probe is out */
    uint64_t probe_at;    /* next probe */
    uint64_t pg_check_at; /* next PostgreSQL check */
    int pg_ok, redis_ok, broker_ok; /* last health: 1 ok, 0 failing, -1 unknown */
    uint64_t pg_down_since; /* monotonic ms of the first PostgreSQL failure in a row, or 0 */
    uint64_t acquire_after; /* a leader that let go for want of PostgreSQL waits till then */
    cf_metric_t *m_leader;  /* certfleet_scheduler_leader */
};

static void s_inflight_free(void **item)
{
    free(*item);
    *item = NULL;
}

/* Record a health check, logging only when it changes. */
static void s_health_set(int *state, const char *check, bool ok, const char *detail)
{
    cf_health_set(check, ok, ok ? "" : detail);
    if (ok && *state == 0)
        cf_log_info("%s is reachable again", check);
    else if (!ok && *state != 0)
        cf_log_warn("%s is unreachable: %s", check, detail);
    *state = ok ? 1 : 0;
}

static void s_pg_health(cf_scheduler_t *self, bool ok)
{
    if (ok)
        self->pg_down_since = 0;
    else if (!self->pg_down_since)
        self->pg_down_since = cf_mono_ms();
    s_health_set(&self->pg_ok, "postgres", ok, cf_pg_errstr(self->pg));
    self->pg_check_at = cf_mono_ms() + S_HEALTH_MS;
}

/* An interval or count setting within LO..HI; -1 (logged) when outside. */
static int64_t s_setting(cf_config_t *config, const char *key, int64_t dflt, int64_t lo, int64_t hi)
{
    int64_t v = cf_config_get_int(config, "scheduler", key, dflt);
    if (v < lo || v > hi) {
        cf_log_error("invalid value for setting \"scheduler.%s\": %" PRId64 " is not in %" PRId64
                     " .. %" PRId64,
                     key, v, lo, hi);
        return -1;
    }
    return v;
}

static void s_task_metrics(s_task_t *t)
{
    char labels[160];
    static const char runs_help[] = "Scheduled runs (a task's jobs of one period) by outcome";
    static const char jobs_help[] = "Jobs submitted by the scheduler by outcome";
    snprintf(labels, sizeof labels, "task=\"%s\",outcome=\"ok\"", t->def->name);
    t->runs_ok = cf_metrics_counter("certfleet_scheduler_runs_total", runs_help, labels);
    t->jobs_ok = cf_metrics_counter("certfleet_scheduler_jobs_total", jobs_help, labels);
    snprintf(labels, sizeof labels, "task=\"%s\",outcome=\"failed\"", t->def->name);
    t->runs_failed = cf_metrics_counter("certfleet_scheduler_runs_total", runs_help, labels);
    t->jobs_failed = cf_metrics_counter("certfleet_scheduler_jobs_total", jobs_help, labels);
    snprintf(labels, sizeof labels, "task=\"%s\",outcome=\"abandoned\"", t->def->name);
    t->runs_abandoned = cf_metrics_counter("certfleet_scheduler_runs_total", runs_help, labels);
}

/* How long T's jobs may wait for a worker: [scheduler] deadline_s, else the task's interval
 * (a job of the last period is worth nothing once the next one has been submitted), at least
 * S_MIN_DEADLINE_S. */
static int64_t s_deadline_s(const cf_scheduler_t *self, const s_task_t *t)
{
    if (self->deadline_s > 0)
        return self->deadline_s;
    return t->interval_s > S_MIN_DEADLINE_S ? t->interval_s : S_MIN_DEADLINE_S;
}

cf_scheduler_t *cf_scheduler_new(cf_config_t *config, const char *name)
{
    cf_scheduler_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->pg_ok = self->redis_ok = self->broker_ok = -1;
    if (!name || !*name)
        name = cf_config_get(config, "scheduler", "name", NULL);
    if (name && *name) {
        snprintf(self->name, sizeof self->name, "%s", name);
    } else {
        char host[64] = "localhost";
        gethostname(host, sizeof host - 1);
        snprintf(self->name, sizeof self->name, "%s:%d", host, (int)getpid());
    }
    int64_t ttl = s_setting(config, "lock_ttl_ms", 5000, 300, 600000);
    int64_t keep = s_setting(config, "keep_days", 30, 0, 36500);
    int64_t acme_keep = s_setting(config, "acme_keep_days", 30, 0, 36500);
    self->deadline_s = s_setting(config, "deadline_s", 0, 0, S_MAX_INTERVAL_S);
    bool bad = ttl < 0 || keep < 0 || acme_keep < 0 || self->deadline_s < 0 ||
               s_setting(config, "ocsp_shards", 1, 1, 4096) < 0;
    self->ttl_ms = (int)ttl;
    self->renew_ms = self->ttl_ms / 3;
    self->keep_days = (int)keep;
    self->acme_keep_days = (int)acme_keep;
    for (const sched_task_def_t *d = sched_tasks; d->name && self->ntasks < S_MAX_TASKS; d++) {
        s_task_t *t = &self->tasks[self->ntasks++];
        t->def = d;
        t->interval_s =
            s_setting(config, d->interval_key, d->interval_default, 0, S_MAX_INTERVAL_S);
        t->last_period = -1;
        bad = bad || t->interval_s < 0;
        if (s_deadline_s(self, t) > self->max_deadline_s)
            self->max_deadline_s = s_deadline_s(self, t);
        s_task_metrics(t);
    }
    if (bad)
        goto fail;
    self->m_leader = cf_metrics_gauge("certfleet_scheduler_leader",
                                      "1 while this scheduler holds the lock and submits", "");
    cf_metric_set(self->m_leader, 0);
    self->pg = cf_pg_new_from_config(config);
    self->redis = cf_redis_new_from_config(config);
    self->lock = self->redis ? cf_lock_new(self->redis, "scheduler", self->ttl_ms) : NULL;
    self->inflight = zhashx_new();
    self->probe = cf_client_new_from_config(config);
    if (!self->pg || !self->lock || !self->inflight || !self->probe)
        goto fail;
    zhashx_set_destructor(self->inflight, s_inflight_free);
    cf_client_set_timeout(self->probe, S_PROBE_TIMEOUT_MS);
    cf_client_set_attempts(self->probe, 1);
    cf_pg_prepare(self->pg, "sched_claim", s_claim_sql);
    cf_pg_prepare(self->pg, "sched_finish", s_finish_sql);
    cf_pg_prepare(self->pg, "sched_purge", s_purge_sql);
    cf_pg_prepare(self->pg, "sched_acme_purge", s_acme_purge_sql);
    return self;
fail:
    cf_scheduler_destroy(&self);
    return NULL;
}

/* --- runs -------------------------------------------------------------------------------- */

/* Record the end of T's run: ABANDONED is why it ended before every reply came, or NULL. */
static void s_finish(cf_scheduler_t *self, s_task_t *t, const char *abandoned)
{
    if (abandoned) {
        t->failures += t->pending;
        if (!t->error[0])
            snprintf(t->error, sizeof t->error, "%s", abandoned);
    }
    const char *outcome = abandoned ? "abandoned" : t->failures || t->error[0] ? "failed" : "ok";
    char period[24], jobs[24], failures[24];
    snprintf(period, sizeof period, "%" PRId64, t->period);
    snprintf(jobs, sizeof jobs, "%zu", t->jobs);
    snprintf(failures, sizeof failures, "%zu", t->failures);
    const char *values[5] = {t->def->name, period, jobs, failures, t->error};
    PGresult *res = cf_pg_exec_prepared(self->pg, "sched_finish", 5, values, NULL, NULL, 0);
    if (!res)
        cf_log_warn("could not record the end of task \"%s\" period %s: %s", t->def->name, period,
                    cf_pg_errstr(self->pg));
    s_pg_health(self, res != NULL);
    PQclear(res);
    cf_metric_add(strcmp(outcome, "ok") == 0       ? t->runs_ok
                  : strcmp(outcome, "failed") == 0 ? t->runs_failed
                                                   : t->runs_abandoned,
                  1);
    double seconds = (double)(cf_mono_ms() - t->started) / 1000.0;
    if (strcmp(outcome, "ok") == 0)
        cf_log_info("task \"%s\" period %s done: %zu jobs in %.1f s", t->def->name, period, t->jobs,
                    seconds);
    else
        cf_log_warn("task \"%s\" period %s %s: %zu of %zu jobs failed in %.1f s (%s)", t->def->name,
                    period, outcome, t->failures, t->jobs, seconds, t->error);
    if (self->once && strcmp(outcome, "ok") != 0)
        self->once_failed = true;
    t->running = false;
    t->pending = 0;
}

/* Make T's jobs for PERIOD and send them all; the replies come in s_collect. */
static void s_start_run(cf_scheduler_t *self, s_task_t *t, int64_t period)
{
    t->running = true;
    t->period = period;
    t->started = cf_mono_ms();
    t->jobs = t->pending = t->failures = 0;
    t->error[0] = '\0';
    sched_jobs_t jobs = {0};
    char err[256] = "";
    if (t->def->build(self->pg, self->config, period, &jobs, err, sizeof err) != 0) {
        /* Not retried in this period: the next one reads the CAs again. */
        snprintf(t->error, sizeof t->error, "%s", err);
        s_pg_health(self, false);
        s_finish(self, t, NULL);
        sched_jobs_reset(&jobs);
        return;
    }
    uint64_t deadline_ms = cf_now_ms() + (uint64_t)s_deadline_s(self, t) * 1000;
    t->jobs = jobs.n;
    for (size_t i = 0; i < jobs.n; i++) {
        sched_job_t *job = &jobs.items[i];
        char hex[2 * CF_JOB_ID_SIZE + 1];
        cf_job_id_hex(job->id, hex);
        s_inflight_t *in = calloc(1, sizeof *in);
        if (!in || zhashx_lookup(self->inflight, hex) ||
            cf_client_send(self->client, job->id, t->def->name, job->params, job->params_len,
                           deadline_ms, NULL) != 0) {
            free(in);
            t->failures++;
            cf_metric_add(t->jobs_failed, 1);
            cf_log_error("could not submit %s (job %s)", job->what, hex);
            if (!t->error[0])
                snprintf(t->error, sizeof t->error, "could not submit %s", job->what);
            continue;
        }
        in->task = t;
        snprintf(in->what, sizeof in->what, "%s", job->what);
        zhashx_insert(self->inflight, hex, in);
        t->pending++;
    }
    sched_jobs_reset(&jobs);
    cf_log_debug("task \"%s\" period %" PRId64 ": submitted %zu jobs", t->def->name, period,
                 t->pending);
    if (t->pending == 0)
        s_finish(self, t, NULL);
}

/* Every run in flight ends now, its unanswered jobs counted as failed; the client goes, so
 * that nothing is sent again. */
static void s_abandon_runs(cf_scheduler_t *self, const char *why)
{
    for (size_t i = 0; i < self->ntasks; i++)
        if (self->tasks[i].running)
            s_finish(self, &self->tasks[i], why);
    zhashx_purge(self->inflight);
    cf_client_destroy(&self->client);
}

/* One final reply of a leader's job. */
static void s_reply(cf_scheduler_t *self, cf_reply_t *reply)
{
    const uint8_t *id = cf_reply_id(reply);
    if (!id)
        return;
    char hex[2 * CF_JOB_ID_SIZE + 1];
    cf_job_id_hex(id, hex);
    s_inflight_t *in = zhashx_lookup(self->inflight, hex);
    if (!in)
        return;
    s_task_t *t = in->task;
    if (cf_reply_ok(reply)) {
        cf_metric_add(t->jobs_ok, 1);
        cf_log_debug("%s (job %s): ok", in->what, hex);
    } else {
        const cf_error_t *e = cf_reply_error(reply);
        t->failures++;
        cf_metric_add(t->jobs_failed, 1);
        cf_log_warn("%s (job %s) failed: %s: %s", in->what, hex, e->code, e->message);
        if (!t->error[0])
            snprintf(t->error, sizeof t->error, "%s: %s: %s", in->what, e->code, e->message);
    }
    zhashx_delete(self->inflight, hex);
    if (--t->pending == 0)
        s_finish(self, t, NULL);
}

/* --- leadership -------------------------------------------------------------------------- */

static void s_redis_health(cf_scheduler_t *self, int rc)
{
    s_health_set(&self->redis_ok, "redis", rc >= 0, cf_redis_errstr(self->redis));
}

static int s_become_leader(cf_scheduler_t *self, uint64_t asked_at)
{
    self->client = cf_client_new_from_config(self->config);
    if (!self->client) {
        cf_log_error("could not make a client of the broker");
        cf_lock_release(self->lock);
        return -1;
    }
    /* The client keeps resending (the broker drops resends of a queued job) until the
     * longest deadline has passed, so that a job waiting for a worker is not given up early. */
    int64_t timeout = cf_config_get_int(self->config, "client", "timeout_ms", 3000);
    int64_t attempts = cf_config_get_int(self->config, "client", "attempts", 10);
    timeout = timeout > 0 ? timeout : 3000;
    int64_t need = self->max_deadline_s * 1000 / timeout + 2;
    need = need > INT32_MAX ? INT32_MAX : need;
    cf_client_set_attempts(self->client, (int)(need > attempts ? need : attempts));
    self->leader = true;
    self->lease_until = asked_at + (uint64_t)self->ttl_ms;
    cf_metric_set(self->m_leader, 1);
    cf_log_info("scheduler \"%s\" leads now (fence %" PRIu64 ")", self->name,
                cf_lock_fence(self->lock));
    return 0;
}

static void s_step_down(cf_scheduler_t *self, const char *why)
{
    self->leader = false;
    cf_metric_set(self->m_leader, 0);
    cf_log_warn("scheduler \"%s\" stops submitting: %s", self->name, why);
    s_abandon_runs(self, why);
}

/* Renew the lock (leader) or try to take it (follower). */
static void s_lead(cf_scheduler_t *self)
{
    uint64_t asked_at = cf_mono_ms();
    if (self->leader) {
        int rc = cf_lock_renew(self->lock);
        s_redis_health(self, rc);
        if (rc == 1 && self->pg_down_since &&
            asked_at - self->pg_down_since > 2 * (uint64_t)self->ttl_ms) {
            /* A leader that cannot reach PostgreSQL submits nothing: let another scheduler,
             * which may reach it, take the lead, and stay out of its way for a while. */
            s_step_down(self, "PostgreSQL is unreachable");
            cf_lock_release(self->lock);
            self->acquire_after = asked_at + 4 * (uint64_t)self->ttl_ms;
            return;
        }
        if (rc == 1) {
            self->lease_until = asked_at + (uint64_t)self->ttl_ms;
            return;
        }
        s_step_down(self, rc == 0 ? "the scheduler lock is no longer ours (it expired or was taken)"
                                  : "the scheduler lock could not be renewed");
        return;
    }
    if (self->once || asked_at < self->acquire_after)
        return;
    int rc = cf_lock_acquire(self->lock);
    s_redis_health(self, rc);
    if (rc == 1)
        s_become_leader(self, asked_at);
}

/* Our fence is below the one PostgreSQL holds although we hold the lock: Redis lost its
 * fence counter (a flush, a new server). Raise it past PostgreSQL's and let the lock go, so
 * that the next acquire draws a fence that is accepted. */
static void s_heal_fence(cf_scheduler_t *self)
{
    PGresult *res =
        cf_pg_exec_params(self->pg, "SELECT fence FROM scheduler_fence", 0, NULL, NULL, NULL, 0);
    const char *pg_fence = res && PQntuples(res) == 1 ? PQgetvalue(res, 0, 0) : NULL;
    cf_log_error("the scheduler fence %" PRIu64 " is below the one PostgreSQL holds (%s): Redis "
                 "lost its fence counter, raising it",
                 cf_lock_fence(self->lock), pg_fence ? pg_fence : "unknown");
    if (pg_fence) {
        redisReply *r = cf_redis_command(self->redis, "EVAL %s 1 fence:scheduler %s",
                                         s_raise_fence_lua, pg_fence);
        if (!r)
            cf_log_error("could not raise the scheduler fence: %s", cf_redis_errstr(self->redis));
        freeReplyObject(r);
    }
    PQclear(res);
    s_step_down(self, "the fence was stale");
    cf_lock_release(self->lock);
}

/* --- claiming periods -------------------------------------------------------------------- */

/* 1 the run of (T, PERIOD) is ours, 0 it was claimed before, -1 database error, -2 our fence
 * is older than the newest leader's. */
static int s_claim(cf_scheduler_t *self, s_task_t *t, int64_t period)
{
    char p[24], fence[24], interval[24];
    snprintf(p, sizeof p, "%" PRId64, period);
    snprintf(fence, sizeof fence, "%" PRIu64, cf_lock_fence(self->lock));
    snprintf(interval, sizeof interval, "%" PRId64, t->interval_s);
    const char *values[5] = {t->def->name, p, fence, self->name, interval};
    PGresult *res = cf_pg_exec_prepared(self->pg, "sched_claim", 5, values, NULL, NULL, 0);
    s_pg_health(self, res != NULL);
    if (!res) {
        cf_log_debug("could not claim task \"%s\" period %s: %s", t->def->name, p,
                     cf_pg_errstr(self->pg));
        return -1;
    }
    int rc = -1;
    if (PQntuples(res) == 1 && PQnfields(res) == 2) {
        bool fenced = strcmp(PQgetvalue(res, 0, 0), "1") == 0;
        bool won = strcmp(PQgetvalue(res, 0, 1), "1") == 0;
        rc = !fenced ? -2 : won ? 1 : 0;
    }
    PQclear(res);
    return rc;
}

/* Delete what is older than DAYS with the prepared statement NAME; WHAT names it in logs. */
static void s_purge_one(cf_scheduler_t *self, const char *name, int days, const char *what)
{
    if (days == 0)
        return;
    char text[16];
    snprintf(text, sizeof text, "%d", days);
    const char *values[1] = {text};
    PGresult *res = cf_pg_exec_prepared(self->pg, name, 1, values, NULL, NULL, 0);
    if (res && atoi(PQcmdTuples(res)) > 0)
        cf_log_info("deleted %s %s older than %d days", PQcmdTuples(res), what, days);
    else if (!res)
        cf_log_warn("could not delete old %s: %s", what, cf_pg_errstr(self->pg));
    PQclear(res);
}

/* The leader's housekeeping, at most once an hour: old scheduler runs, expired ACME orders. */
static void s_purge(cf_scheduler_t *self)
{
    uint64_t now = cf_mono_ms();
    if (now < self->purge_at)
        return;
    self->purge_at = now + S_PURGE_MS;
    s_purge_one(self, "sched_purge", self->keep_days, "scheduler runs");
    s_purge_one(self, "sched_acme_purge", self->acme_keep_days, "expired ACME orders");
}

/* Claim and start every task whose current period has no run yet. */
static void s_start_due(cf_scheduler_t *self)
{
    int64_t now_s = (int64_t)(cf_now_ms() / 1000);
    for (size_t i = 0; i < self->ntasks && self->leader; i++) {
        s_task_t *t = &self->tasks[i];
        if (t->interval_s == 0 || t->running || (self->once && t->attempted))
            continue;
        int64_t period = now_s / t->interval_s;
        if (period <= t->last_period || cf_mono_ms() < t->retry_at)
            continue;
        /* Only while the lock surely holds: after a stall the renewal decides first. */
        if (cf_mono_ms() >= self->lease_until)
            return;
        int rc = s_claim(self, t, period);
        if (rc == -1) {
            t->retry_at = cf_mono_ms() + S_CLAIM_RETRY_MS;
            if (self->once) {
                t->attempted = true;
                self->once_failed = true;
            }
            continue;
        }
        if (rc == -2) {
            s_heal_fence(self);
            return;
        }
        t->last_period = period;
        t->attempted = true;
        if (rc == 0) {
            if (self->once)
                cf_log_info("task \"%s\" period %" PRId64 " has run already", t->def->name, period);
            continue;
        }
        s_purge(self);
        s_start_run(self, t, period);
    }
}

/* --- the loop ---------------------------------------------------------------------------- */

/* PostgreSQL and broker health, for /health, when nothing else has told us lately. */
static void s_health(cf_scheduler_t *self)
{
    uint64_t now = cf_mono_ms();
    if (now >= self->pg_check_at) {
        PGresult *res = cf_pg_exec_params(self->pg, "SELECT 1", 0, NULL, NULL, NULL, 0);
        s_pg_health(self, res != NULL);
        PQclear(res);
    }
    if (!self->probing && now >= self->probe_at) {
        self->probing = cf_client_send(self->probe, NULL, "broker.status", NULL, 0,
                                       cf_now_ms() + S_PROBE_TIMEOUT_MS, NULL) == 0;
        self->probe_at = now + S_HEALTH_MS;
    }
    if (self->probing) {
        cf_reply_t *reply = cf_client_recv(self->probe, 0);
        if (reply) {
            const cf_error_t *e = cf_reply_error(reply);
            char detail[300];
            snprintf(detail, sizeof detail, "broker \"%s\": %s",
                     cf_config_get(self->config, "broker", "endpoint", CF_PROTO_ENDPOINT_DEFAULT),
                     e ? e->message : "");
            s_health_set(&self->broker_ok, "broker", cf_reply_ok(reply), detail);
            self->probing = false;
            cf_reply_destroy(&reply);
        }
    }
}

/* Wait for replies until the next tick or renewal. */
static void s_collect(cf_scheduler_t *self)
{
    uint64_t now = cf_mono_ms();
    int wait = S_TICK_MS;
    if (self->renew_at > now && self->renew_at - now < (uint64_t)wait)
        wait = (int)(self->renew_at - now);
    else if (self->renew_at <= now)
        wait = 0;
    if (!self->client || cf_client_pending(self->client) == 0) {
        if (wait > 0)
            zclock_sleep(wait);
        return;
    }
    cf_reply_t *reply = cf_client_recv(self->client, wait);
    while (reply) {
        s_reply(self, reply);
        cf_reply_destroy(&reply);
        if (!self->client)
            break;
        reply = cf_client_recv(self->client, 0);
    }
}

static bool s_once_done(cf_scheduler_t *self)
{
    for (size_t i = 0; i < self->ntasks; i++) {
        const s_task_t *t = &self->tasks[i];
        if (t->interval_s > 0 && (!t->attempted || t->running))
            return false;
    }
    return true;
}

static void s_loop(cf_scheduler_t *self)
{
    while (!zsys_interrupted) {
        if (cf_mono_ms() >= self->renew_at) {
            s_lead(self);
            self->renew_at = cf_mono_ms() + (uint64_t)self->renew_ms;
        }
        if (self->once && (!self->leader || s_once_done(self)))
            break;
        if (self->leader)
            s_start_due(self);
        s_health(self);
        s_collect(self);
    }
}

int cf_scheduler_run(cf_scheduler_t *self)
{
    cf_log_info("scheduler \"%s\" started (lock TTL %d ms)", self->name, self->ttl_ms);
    for (size_t i = 0; i < self->ntasks; i++) {
        const s_task_t *t = &self->tasks[i];
        if (t->interval_s > 0)
            cf_log_info("task \"%s\" every %" PRId64 " s", t->def->name, t->interval_s);
        else
            cf_log_info("task \"%s\" is off", t->def->name);
    }
    s_loop(self);
    cf_log_info("scheduler \"%s\" stopping", self->name);
    return 0;
}

int cf_scheduler_run_once(cf_scheduler_t *self)
{
    self->once = true;
    /* A leader that is running does this work itself; wait for it to let go (or die) no
     * longer than two TTLs. */
    uint64_t until = cf_mono_ms() + 2 * (uint64_t)self->ttl_ms;
    for (;;) {
        uint64_t asked_at = cf_mono_ms();
        int rc = cf_lock_acquire(self->lock);
        s_redis_health(self, rc);
        if (rc == 1) {
            if (s_become_leader(self, asked_at) != 0)
                return -1;
            break;
        }
        if (zsys_interrupted)
            return -1;
        if (cf_mono_ms() >= until) {
            if (rc == 0)
                cf_log_error("another scheduler holds the scheduler lock: it runs the tasks");
            else
                cf_log_error("could not take the scheduler lock: %s", cf_redis_errstr(self->redis));
            return -1;
        }
        zclock_sleep(self->renew_ms);
    }
    self->renew_at = cf_mono_ms() + (uint64_t)self->renew_ms;
    s_loop(self);
    if (!s_once_done(self)) {
        if (self->leader)
            s_abandon_runs(self, "interrupted before every reply came");
        return -1;
    }
    return self->once_failed ? 1 : 0;
}

void cf_scheduler_destroy(cf_scheduler_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_scheduler_t *self = *self_p;
    if (self->inflight)
        s_abandon_runs(self, "the scheduler stopped before every reply came");
    if (self->leader) {
        cf_lock_release(self->lock);
        self->leader = false;
        cf_metric_set(self->m_leader, 0);
    }
    cf_lock_destroy(&self->lock);
    cf_client_destroy(&self->client);
    cf_client_destroy(&self->probe);
    zhashx_destroy(&self->inflight);
    cf_redis_destroy(&self->redis);
    cf_pg_destroy(&self->pg);
    free(self);
    *self_p = NULL;
}
