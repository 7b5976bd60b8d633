/* certfleet-scheduler end to end: a real broker, a signer, a crl worker and an ocsp worker,
 * PostgreSQL and Redis on loopback, one CA with two CRL shards, an OCSP responder and three
 * certificates. Two schedulers with 1-2 s intervals and a 1.5 s lock: only the first submits
 * (every scheduler_runs row names it) until it is killed with SIGKILL, then the second takes
 * over (the rows after name it); when Redis loses the lock and its fence counter, the leader
 * raises the counter from PostgreSQL's and fences never go backwards. Metrics and /health
 * show the leader and its checks. No (task, period) ran twice: the table's key says so for the
 * runs, and job_results for the jobs: every crl.build job id is one the scheduler derives for a
 * claimed period, and the CRL numbers built are consecutive with none built twice. CRLs get
 * built, rebuilt when marked stale, and OCSP responses exist for the certificates. --once runs
 * each task once per period, records a failure (notify.expiring, no notifier running) and exits
 * 1, then finds everything done and exits 0; bad settings and flags are refused. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <inttypes.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_msgpack.h"
#include "cf_pg.h"
#include "cf_redis.h"
#include "cf_test.h"
#include "cf_test_fleet.h"
#include "cf_test_jobs.h"
#include "cf_test_metrics.h"

#define S_WAIT_MS 30000 /* longest wait for something the fleet should do */
#define S_SHARDS  2     /* the CA's CRL shards */

typedef struct {
    cf_test_fleet_t fleet;           /* folder, database, config, keys, endpoint */
    pid_t broker, signer, crl, ocsp; /* the fleet */
    pid_t sched[2];                  /* the schedulers (0: not running) */
    int metrics_port;                /* the first scheduler's metrics port */
    cf_client_t *client;             /* for one job at a time */
    int redis_db;                    /* the Redis database this test uses */
    cf_redis_t *redis;               /* our own connection to it */
    cf_pg_t *pg;                     /* our own connection to the database */
    char ca_id[32];                  /* the CA's id */
    char *serials[3];                /* the certificates' serials */
} s_fleet_t;

static int s_setup(void **state)
{
    s_fleet_t *f = calloc(1, sizeof *f);
    assert_int_equal(cf_test_fleet_init(&f->fleet, "sched"), 0);
    /* The lock is "lock:scheduler" whatever the database: a Redis database of our own keeps
     * this test apart from any other fleet on the same Redis. */
    f->redis_db = 2 + (int)(getpid() % 14);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fleet_t *f = *state;
    cf_client_destroy(&f->client);
    if (f->redis) {
        redisReply *r = cf_redis_command(f->redis, "DEL lock:scheduler fence:scheduler");
        freeReplyObject(r);
    }
    cf_redis_destroy(&f->redis);
    cf_pg_destroy(&f->pg);
    for (int i = 0; i < 3; i++)
        free(f->serials[i]);
    for (int i = 0; i < 2; i++)
        if (f->sched[i] > 0)
            cf_test_kill(f->sched[i], SIGTERM);
    pid_t pids[] = {f->ocsp, f->crl, f->signer, f->broker};
    for (size_t i = 0; i < sizeof pids / sizeof *pids; i++)
        if (pids[i] > 0)
            cf_test_kill(pids[i], SIGTERM);
    int reports = cf_test_fleet_cleanup(&f->fleet);
    free(f);
    assert_int_equal(reports, 0);
    return 0;
}

static pid_t s_start(s_fleet_t *f, const char *prog, const char *log)
{
    pid_t pid = cf_test_fleet_start(&f->fleet, prog, log);
    assert_true(pid > 0);
    return pid;
}

/* Start a scheduler named NAME with the fleet's config and the settings in ENV ("K=V",
 * NULL-terminated, or NULL), extra flag ONCE when true. */
static pid_t s_scheduler(s_fleet_t *f, const char *name, const char *const *env, bool once)
{
    char log[400];
    snprintf(log, sizeof log, "%s/sched-%s.log", f->fleet.dir, name);
    pid_t pid = once ? cf_test_spawn(log, env, "certfleet-scheduler", "--config", f->fleet.config,
                                     "--name", name, "--once", NULL)
                     : cf_test_spawn(log, env, "certfleet-scheduler", "--config", f->fleet.config,
                                     "--name", name, NULL);
    assert_true(pid > 0);
    return pid;
}

/* The exit code of a scheduler that must end by itself. */
static int s_exit_code(pid_t pid)
{
    int status = 0;
    if (cf_test_wait_exit(pid, 60000, &status) != 0) {
        cf_test_kill(pid, SIGKILL);
        fail_msg("the scheduler did not exit");
    }
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

static long s_count(s_fleet_t *f, const char *sql)
{
    return cf_test_count(f->pg, sql);
}

/* Wait until SQL counts at least N; fail saying WHAT after S_WAIT_MS. */
static void s_wait_count(s_fleet_t *f, const char *sql, long n, const char *what)
{
    for (int waited = 0; waited <= S_WAIT_MS; waited += 100) {
        if (s_count(f, sql) >= n)
            return;
        usleep(100 * 1000);
    }
    fail_msg("waited in vain for %s (%s: %ld, wanted %ld)", what, sql, s_count(f, sql), n);
}

static void s_start_fleet(s_fleet_t *f)
{
    char extra[512];
    snprintf(extra, sizeof extra,
             "[curve]\ninsecure = true\n[redis]\ndb = %d\n"
             "[scheduler]\nlock_ttl_ms = 1500\ncrl_interval_s = 1\nocsp_presign_interval_s = 2\n"
             "ocsp_keygen_interval_s = 2\nnotify_interval_s = 0\ndeadline_s = 20\n",
             f->redis_db);
    assert_int_equal(cf_test_fleet_write_config(&f->fleet, extra), 0);
    f->broker = s_start(f, "certfleet-broker", "broker.log");
    f->signer = s_start(f, "certfleet-signer", "signer.log");
    f->crl = s_start(f, "certfleet-crl", "crl.log");
    f->ocsp = s_start(f, "certfleet-ocsp", "ocsp.log");
    if (cf_test_fleet_wait_workers(&f->fleet, 3, 10000) != 0)
        fail_msg("broker never reported 3 workers");
    f->client = cf_test_client(f->fleet.endpoint, 20000, 6);
    f->pg = cf_pg_new(f->fleet.conninfo);
    f->redis = cf_test_redis_db(f->redis_db);
    /* A lock or fence left by an earlier run on this database number would skew the test. */
    redisReply *r = cf_redis_command(f->redis, "DEL lock:scheduler fence:scheduler");
    assert_non_null(r);
    freeReplyObject(r);
}

/* An EC root CA "root" with S_SHARDS CRL shards, its OCSP responder and three certificates. */
static void s_make_pki(s_fleet_t *f)
{
    X509_free(cf_test_ca_init(f->client, "root",
                              json_pack("{s:s, s:s, s:i}", "subject",
                                        "CN=certfleet scheduler root,O=certfleet test", "algorithm",
                                        "SHA-256", "crl_shards", S_SHARDS)));
    cf_test_ocsp_responder(f->client, "root");
    for (int i = 0; i < 3; i++) {
        char cn[64];
        snprintf(cn, sizeof cn, "host%d.example.com", i);
        cf_reply_t *r = cf_test_issue(f->client, json_pack("{s:s}", "ca", "root"), cn);
        cf_test_assert_ok(r, "cert.issue");
        f->serials[i] = cf_msgpack_strdup(cf_msgpack_map_get(cf_reply_result(r), "serial"));
        assert_non_null(f->serials[i]);
        cf_reply_destroy(&r);
    }
    char *id = cf_test_query(f->pg, "SELECT id FROM certificate_authorities WHERE name = 'root'");
    snprintf(f->ca_id, sizeof f->ca_id, "%s", id);
    free(id);
}

/* The job id the scheduler derives (docs/scheduler.md "Job ids"), as hex. */
static void s_job_id_hex(const char *task, const char *ca_id, const char *scope, int shard,
                         const char *period, char hex[33])
{
    char text[256];
    int len = snprintf(text, sizeof text, "certfleet-scheduler:%s:%s:%s:%d:%s", task, ca_id, scope,
                       shard, period);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    assert_int_equal(EVP_Digest(text, (size_t)len, md, &mdlen, EVP_sha256(), NULL), 1);
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
}

/* Wait until PATH (/metrics or /health) of the first scheduler shows LINE. */
static void s_wait_http(s_fleet_t *f, const char *path, const char *line)
{
    char *text = NULL;
    long status = -1;
    for (int waited = 0; waited <= S_WAIT_MS; waited += 200) {
        free(text);
        status = cf_test_http(f->metrics_port, "GET", path, &text, NULL, 0);
        if (status >= 0 && strstr(text, line)) {
            free(text);
            return;
        }
        usleep(200 * 1000);
    }
    fail_msg("%s never showed \"%s\":\n%s", path, line, status >= 0 ? text : "(no answer)");
}

/* ---- 1. one leader, failover, each period once ------------------------------------------ */

/* Every crl.build job in job_results must be one of the ids the scheduler derives for a
 * claimed crl.build period; every period that finished without failures must have all of
 * them. Returns how many jobs were checked. */
static long s_check_crl_jobs(s_fleet_t *f)
{
    PGresult *runs = cf_pg_exec_params(
        f->pg,
        "SELECT period, finished_at IS NOT NULL AND failures = 0 FROM scheduler_runs "
        "WHERE task = 'crl.build' ORDER BY period",
        0, NULL, NULL, NULL, 0);
    assert_non_null(runs);
    int nruns = PQntuples(runs);
    assert_true(nruns > 0);
    size_t per_run = 1 + S_SHARDS, nexpected = (size_t)nruns * per_run;
    char(*expected)[33] = calloc(nexpected, sizeof *expected);
    assert_non_null(expected);
    for (int k = 0; k < nruns; k++) {
        const char *period = PQgetvalue(runs, k, 0);
        s_job_id_hex("crl.build", f->ca_id, "ca", 0, period, expected[k * per_run]);
        for (int s = 0; s < S_SHARDS; s++)
            s_job_id_hex("crl.build", f->ca_id, "user", s, period, expected[k * per_run + 1 + s]);
    }
    PGresult *jobs = cf_pg_exec_params(f->pg,
                                       "SELECT encode(id, 'hex') FROM job_results WHERE type = "
                                       "'crl.build'",
                                       0, NULL, NULL, NULL, 0);
    assert_non_null(jobs);
    long njobs = PQntuples(jobs);
    for (int j = 0; j < njobs; j++) {
        bool known = false;
        for (size_t e = 0; e < nexpected && !known; e++)
            known = strcmp(expected[e], PQgetvalue(jobs, j, 0)) == 0;
        if (!known)
            fail_msg("crl.build job %s is of no claimed period", PQgetvalue(jobs, j, 0));
    }
    for (int k = 0; k < nruns; k++) {
        if (strcmp(PQgetvalue(runs, k, 1), "t") != 0)
            continue;
        for (size_t e = k * per_run; e < (k + 1) * per_run; e++) {
            bool found = false;
            for (int j = 0; j < njobs && !found; j++)
                found = strcmp(expected[e], PQgetvalue(jobs, j, 0)) == 0;
            if (!found)
                fail_msg("period %s finished but job %s is not in job_results",
                         PQgetvalue(runs, k, 0), expected[e]);
        }
    }
    free(expected);
    PQclear(jobs);
    PQclear(runs);
    return njobs;
}

/* From the crl.build replies: for each (scope, shard) the numbers of the CRLs actually built
 * (not skipped) must be 0, 1, 2, ... with none twice, and the stored CRL must carry the last.
 * Returns how many CRLs of user/0 were built. */
static int s_check_crl_numbers(s_fleet_t *f)
{
    PGresult *res = cf_pg_exec_params(f->pg,
                                      "SELECT reply FROM job_results WHERE type = "
                                      "'crl.build'",
                                      0, NULL, NULL, NULL, 1);
    assert_non_null(res);
    /* built[scope][number]: scope 0 = ca, 1 + k = user/k. */
    enum { S_MAXN = 256 };
    int built[1 + S_SHARDS][S_MAXN];
    memset(built, 0, sizeof built);
    for (int k = 0; k < PQntuples(res); k++) {
        cf_error_t err = {0};
        cf_reply_t *r =
            cf_reply_decode(PQgetvalue(res, k, 0), (size_t)PQgetlength(res, k, 0), &err);
        assert_non_null(r);
        if (!cf_reply_ok(r)) {
            cf_reply_destroy(&r);
            continue;
        }
        const msgpack_object *o = cf_reply_result(r);
        const msgpack_object *skipped = cf_msgpack_map_get(o, "skipped");
        assert_non_null(skipped);
        if (!skipped->via.boolean) {
            char *scope = cf_msgpack_strdup(cf_msgpack_map_get(o, "scope"));
            int shard = (int)cf_msgpack_map_get(o, "shard")->via.u64;
            uint64_t number = cf_msgpack_map_get(o, "number")->via.u64;
            int slot = strcmp(scope, "ca") == 0 ? 0 : 1 + shard;
            assert_true(slot <= S_SHARDS && number < S_MAXN);
            built[slot][number]++;
            free(scope);
        }
        cf_reply_destroy(&r);
    }
    PQclear(res);
    int user0 = 0;
    for (int slot = 0; slot <= S_SHARDS; slot++) {
        int n = 0;
        while (n < S_MAXN && built[slot][n] == 1)
            n++;
        for (int m = n; m < S_MAXN; m++)
            if (built[slot][m] != 0)
                fail_msg("CRL %d number %d built %d times, or after a gap", slot, m,
                         built[slot][m]);
        assert_true(n >= 1);
        char sql[256];
        snprintf(sql, sizeof sql,
                 "SELECT number FROM crls WHERE ca_id = %s AND scope = '%s' AND shard = %d",
                 f->ca_id, slot == 0 ? "ca" : "user", slot == 0 ? 0 : slot - 1);
        assert_int_equal(s_count(f, sql), n - 1);
        if (slot == 1)
            user0 = n;
    }
    return user0;
}

static void test_leader_failover(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f);
    s_make_pki(f);
    char port_env[64];
    f->metrics_port = cf_test_free_port();
    snprintf(port_env, sizeof port_env, "CERTFLEET_METRICS_PORT=%d", f->metrics_port);
    const char *env_alpha[] = {port_env, NULL};
    f->sched[0] = s_scheduler(f, "alpha", env_alpha, false);
    s_wait_count(f, "SELECT count(*) FROM scheduler_runs", 1, "a first run");
    f->sched[1] = s_scheduler(f, "beta", NULL, false);
    /* Several periods with both running: alpha keeps the lead. */
    long before = s_count(f, "SELECT count(*) FROM scheduler_runs WHERE task = 'crl.build'");
    s_wait_count(f, "SELECT count(*) FROM scheduler_runs WHERE task = 'crl.build'", before + 4,
                 "crl.build runs while both run");
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs WHERE scheduler <> 'alpha'"),
                     0);
    s_wait_http(f, "/metrics", "certfleet_scheduler_leader 1");
    s_wait_http(f, "/metrics", "certfleet_scheduler_runs_total{task=\"crl.build\",outcome=\"ok\"}");
    s_wait_http(f, "/metrics",
                "certfleet_scheduler_jobs_total{task=\"ocsp.presign\",outcome=\"ok\"}");
    s_wait_http(f, "/health",
                "\"checks\":{\"broker\":{\"detail\":\"\",\"ok\":true},\"postgres\":{\"detail\":"
                "\"\",\"ok\":true},\"redis\":{\"detail\":\"\",\"ok\":true}},\"program\":"
                "\"certfleet-scheduler\",\"status\":\"ok\"");
    /* CRLs and OCSP responses are there; CRLs marked stale (as a revocation marks them) are
     * rebuilt in the next period. */
    s_wait_count(f, "SELECT count(*) FROM crls", 1 + S_SHARDS, "the CA's CRLs");
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM ocsp_responses WHERE ca_id = %s AND serial IN ('%s', '%s', "
             "'%s')",
             f->ca_id, f->serials[0], f->serials[1], f->serials[2]);
    s_wait_count(f, sql, 3, "OCSP responses of the certificates");
    s_wait_count(f,
                 "SELECT count(*) FROM scheduler_runs WHERE task = 'ocsp.keygen' AND "
                 "finished_at IS NOT NULL AND failures = 0",
                 1, "an ocsp.keygen run");
    cf_test_sql(f->pg, "UPDATE crls SET stale = true");
    s_wait_count(f, "SELECT count(*) FROM crls WHERE NOT stale AND number >= 1", 1 + S_SHARDS,
                 "CRLs rebuilt after being marked stale");

    /* The leader dies without a word: beta takes over once the lock's TTL has run out. */
    cf_test_kill(f->sched[0], SIGKILL);
    f->sched[0] = 0;
    s_wait_count(f,
                 "SELECT count(*) FROM scheduler_runs WHERE scheduler = 'beta' AND task = "
                 "'crl.build' AND finished_at IS NOT NULL",
                 3, "beta's crl.build runs");
    /* No interleaving: every alpha run came before every beta run, and none by anyone else. */
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs WHERE scheduler NOT IN "
                                "('alpha', 'beta')"),
                     0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs a, scheduler_runs b WHERE "
                                "a.scheduler = 'alpha' AND b.scheduler = 'beta' AND "
                                "a.submitted_at > b.submitted_at"),
                     0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs a, scheduler_runs b WHERE "
                                "a.scheduler = 'alpha' AND b.scheduler = 'beta' AND "
                                "a.fence >= b.fence"),
                     0);
    cf_test_sql(f->pg, "UPDATE crls SET stale = true WHERE scope = 'user' AND shard = 0");
    s_wait_count(f,
                 "SELECT count(*) FROM crls WHERE scope = 'user' AND shard = 0 AND NOT stale AND "
                 "number >= 2",
                 1, "user/0 rebuilt by beta");

    /* Redis loses the lock and the fence counter (a flush, a new server): beta finds its new
     * token refused by PostgreSQL, raises the counter past it and goes on with a higher one. */
    long fence = s_count(f, "SELECT max(fence) FROM scheduler_runs");
    redisReply *del = cf_redis_command(f->redis, "DEL lock:scheduler fence:scheduler");
    assert_non_null(del);
    freeReplyObject(del);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM scheduler_runs WHERE scheduler = 'beta' AND fence > %ld AND "
             "task = 'crl.build'",
             fence);
    s_wait_count(f, sql, 2, "runs after Redis lost the fence");
    /* Fences never go backwards from one run to the next. */
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs a, scheduler_runs b WHERE "
                                "a.submitted_at < b.submitted_at AND a.fence > b.fence"),
                     0);

    /* beta stops on SIGTERM and lets the lock go. */
    assert_int_equal(cf_test_kill(f->sched[1], SIGTERM), 0);
    f->sched[1] = 0;
    redisReply *r = cf_redis_command(f->redis, "EXISTS lock:scheduler");
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);
    /* Runs that were in flight at SIGTERM are closed, not left open (alpha's last may be). */
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs WHERE scheduler = 'beta' AND "
                                "finished_at IS NULL"),
                     0);
    long jobs = s_check_crl_jobs(f);
    assert_true(jobs >= 3L * (1 + S_SHARDS));
    assert_true(s_check_crl_numbers(f) >= 3);
    /* Every finished crl.build run submitted one job per scope and shard. */
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs WHERE task = 'crl.build' AND "
                                "finished_at IS NOT NULL AND jobs <> 3"),
                     0);
}

/* ---- 2. --once and bad settings --------------------------------------------------------- */

static void test_once(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f);
    s_make_pki(f);
    /* Periods of an hour: one run each; notify.expiring has no notifier to serve it, so its
     * job passes its 3 s deadline and the run is recorded as failed. */
    const char *env[] = {"CERTFLEET_SCHEDULER_CRL_INTERVAL_S=3600",
                         "CERTFLEET_SCHEDULER_OCSP_PRESIGN_INTERVAL_S=3600",
                         "CERTFLEET_SCHEDULER_OCSP_KEYGEN_INTERVAL_S=3600",
                         "CERTFLEET_SCHEDULER_NOTIFY_INTERVAL_S=3600",
                         "CERTFLEET_SCHEDULER_DEADLINE_S=3",
                         NULL};
    /* ACME orders for the leader's housekeeping ([scheduler] acme_keep_days, 30): one that
     * expired 40 days ago unfinished (deleted with its authorization, challenge and finalize
     * row), one as old but valid with its certificate (kept), one still pending (kept). */
    cf_test_sql(f->pg,
                "INSERT INTO acme_accounts (ca_id, slug, jwk, thumbprint) SELECT id, 'acct', "
                "'{}', 'tp' FROM certificate_authorities WHERE name = 'root'");
    cf_test_sql(f->pg,
                "INSERT INTO acme_orders (account_id, slug, status, expires) SELECT id, s, st, e "
                "FROM acme_accounts, (VALUES ('old', 'pending', now() - interval '40 days'), "
                "('done', 'valid', now() - interval '40 days'), ('new', 'pending', now() + "
                "interval '1 day')) v(s, st, e)");
    cf_test_sql(f->pg, "INSERT INTO acme_authorizations (order_id, slug, value, expires) SELECT "
                       "id, 'az-' || slug, 'example.com', expires FROM acme_orders");
    cf_test_sql(f->pg, "INSERT INTO acme_challenges (authorization_id, slug, type, token) SELECT "
                       "id, 'ch-' || slug, 'http-01', 'tok' FROM acme_authorizations");
    cf_test_sql(f->pg,
                "INSERT INTO acme_certificates (order_id, slug, csr, certificate_id) SELECT o.id, "
                "'fin-' || o.slug, '\\x00', CASE WHEN o.slug = 'done' THEN (SELECT min(id) FROM "
                "certificates) END FROM acme_orders o WHERE o.slug IN ('old', 'done')");
    assert_int_equal(s_exit_code(s_scheduler(f, "once", env, true)), 1);
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs WHERE scheduler = 'once' "
                                "AND finished_at IS NOT NULL"),
                     4);
    assert_int_equal(s_count(f, "SELECT count(*) FROM acme_orders WHERE slug IN ('done', 'new')"),
                     2);
    assert_int_equal(s_count(f, "SELECT count(*) FROM acme_orders"), 2);
    assert_int_equal(s_count(f, "SELECT count(*) FROM acme_authorizations"), 2);
    assert_int_equal(s_count(f, "SELECT count(*) FROM acme_challenges"), 2);
    assert_int_equal(s_count(f, "SELECT count(*) FROM acme_certificates"), 1);
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs WHERE task = "
                                "'notify.expiring' AND failures = 1 AND jobs = 1 AND error LIKE "
                                "'notify.expiring: deadline_exceeded: %'"),
                     1);
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs WHERE task <> "
                                "'notify.expiring' AND failures = 0 AND error = ''"),
                     3);
    assert_int_equal(s_count(f, "SELECT jobs FROM scheduler_runs WHERE task = 'crl.build'"),
                     1 + S_SHARDS);
    assert_int_equal(s_count(f, "SELECT count(*) FROM crls"), 1 + S_SHARDS);
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responses"),
                     s_count(f, "SELECT count(*) FROM certificates WHERE ca_id = (SELECT id FROM "
                                "certificate_authorities WHERE name = 'root')"));
    assert_int_equal(s_check_crl_jobs(f), 1 + S_SHARDS);
    /* The same hour again: every period has run, nothing is submitted, and that is success. */
    long results = s_count(f, "SELECT count(*) FROM job_results");
    assert_int_equal(s_exit_code(s_scheduler(f, "once-again", env, true)), 0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs"), 4);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results"), results);
    /* The lock was let go each time. */
    redisReply *r = cf_redis_command(f->redis, "EXISTS lock:scheduler");
    assert_non_null(r);
    assert_int_equal(r->integer, 0);
    freeReplyObject(r);

    /* Bad settings and flags: a clear refusal, nothing written. */
    const char *bad_interval[] = {"CERTFLEET_SCHEDULER_CRL_INTERVAL_S=-5", NULL};
    assert_int_equal(s_exit_code(s_scheduler(f, "bad", bad_interval, true)), 1);
    const char *bad_ttl[] = {"CERTFLEET_SCHEDULER_LOCK_TTL_MS=10", NULL};
    assert_int_equal(s_exit_code(s_scheduler(f, "bad", bad_ttl, false)), 1);
    char log[400];
    snprintf(log, sizeof log, "%s/sched-bad.log", f->fleet.dir);
    assert_int_equal(
        s_exit_code(cf_test_spawn(log, NULL, "certfleet-scheduler", "--frequency", "1", NULL)), 2);
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "grep -q 'invalid value for setting \"scheduler.crl_interval_s\"' '%s' && "
             "grep -q 'invalid value for setting \"scheduler.lock_ttl_ms\"' '%s' && "
             "grep -q 'unknown argument \"--frequency\"' '%s'",
             log, log, log);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM scheduler_runs"), 4);
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_leader_failover, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_once, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
