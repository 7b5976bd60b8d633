/* Metrics and health of real processes: a broker and a signer, each with its own metrics port
 * (CERTFLEET_METRICS_PORT), scraped with libcurl before and after a known set of jobs. The
 * counters must move by exactly what was run; /health must be 200 with its checks; a worker
 * whose PostgreSQL is a closed port must say 503 and why. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_msgpack.h"
#include "cf_test.h"
#include "cf_test_fleet.h"
#include "cf_test_metrics.h"

#define S_ECHO_OK   7 /* sys.echo jobs that succeed */
#define S_ECHO_FAIL 2 /* sys.echo jobs told to fail with "test_failure" */

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config, endpoint */
    pid_t broker;          /* broker pid */
    pid_t worker;          /* signer pid */
    pid_t lonely;          /* a signer with no PostgreSQL, or 0 */
    int broker_port;       /* metrics port of the broker */
    int worker_port;       /* metrics port of the signer */
    int lonely_port;       /* metrics port of the lonely signer */
} s_fleet_t;

/* ---- HTTP ---------------------------------------------------------------------------- */

/* Wait for SERIES at PORT to read WANT: the broker's gauges follow its 100 ms tick. */
static void s_wait_value(int port, const char *series, double want)
{
    double have = -1;
    for (int i = 0; i < 200 && have != want; i++) {
        if (i)
            usleep(50 * 1000);
        char *text = cf_test_scrape(port);
        have = cf_test_metric_value(text, series);
        free(text);
    }
    if (have != want)
        fail_msg("%s on port %d reads %g, not %g", series, port, have, want);
}

/* Wait for /health at PORT to answer WANT with the check NEED in it (processes need a
 * moment to meet their peers and to try their servers); its JSON. */
static json_t *s_health_wait(int port, long want, const char *need)
{
    char *body = NULL;
    long status = -1;
    for (int i = 0; i < 200; i++) {
        free(body);
        body = NULL;
        status = cf_test_http(port, "GET", "/health", &body, NULL, 0);
        char quoted[64];
        snprintf(quoted, sizeof quoted, "\"%s\":", need);
        if (status == want && strstr(body, quoted))
            break;
        usleep(50 * 1000);
    }
    if (status != want)
        fail_msg("/health on port %d answered %ld, not %ld: %s", port, status, want, body);
    if (!strstr(body, need))
        fail_msg("/health on port %d has no check \"%s\": %s", port, need, body);
    json_t *j = json_loads(body, 0, NULL);
    if (!j)
        fail_msg("/health on port %d is not JSON: %s", port, body);
    free(body);
    return j;
}

static bool s_check_ok(json_t *health, const char *check)
{
    json_t *c = json_object_get(json_object_get(health, "checks"), check);
    if (!c)
        fail_msg("/health has no check \"%s\"", check);
    return json_is_true(json_object_get(c, "ok"));
}

/* ---- the fleet ------------------------------------------------------------------------- */

static pid_t s_spawn(s_fleet_t *f, const char *prog, const char *log, int port,
                     const char *extra_env)
{
    char env_port[64], path[400];
    snprintf(env_port, sizeof env_port, "CERTFLEET_METRICS_PORT=%d", port);
    snprintf(path, sizeof path, "%s/%s", f->fleet.dir, log);
    const char *env[] = {env_port, extra_env, NULL};
    pid_t pid = cf_test_spawn(path, env, prog, "--config", f->fleet.config, NULL);
    assert_true(pid > 0);
    return pid;
}

static int s_setup(void **state)
{
    s_fleet_t *f = calloc(1, sizeof *f);
    *state = f; /* the teardown cleans up whatever the setup got to */
    assert_int_equal(cf_test_fleet_init(&f->fleet, "metrics"), 0);
    assert_int_equal(cf_test_fleet_write_config(&f->fleet, NULL), 0);
    f->broker_port = cf_test_free_port();
    do {
        f->worker_port = cf_test_free_port();
    } while (f->worker_port == f->broker_port);
    f->broker = s_spawn(f, "certfleet-broker", "broker.log", f->broker_port, NULL);
    f->worker = s_spawn(f, "certfleet-signer", "signer.log", f->worker_port, NULL);
    if (cf_test_fleet_wait_workers(&f->fleet, 1, 10000) != 0)
        fail_msg("broker never reported the signer");
    return 0;
}

static int s_teardown(void **state)
{
    s_fleet_t *f = *state;
    if (f->lonely > 0)
        cf_test_kill(f->lonely, SIGTERM);
    if (f->worker > 0)
        cf_test_kill(f->worker, SIGTERM);
    if (f->broker > 0)
        cf_test_kill(f->broker, SIGTERM);
    int reports = cf_test_fleet_cleanup(&f->fleet);
    free(f);
    assert_int_equal(reports, 0);
    return 0;
}

static cf_reply_t *s_call(cf_client_t *c, const char *type, const char *fail)
{
    msgpack_sbuffer params;
    msgpack_sbuffer_init(&params);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, fail ? 2 : 1);
    cf_msgpack_pack_cstr(&pk, "hello");
    cf_msgpack_pack_cstr(&pk, "metrics");
    if (fail) {
        cf_msgpack_pack_cstr(&pk, "fail");
        cf_msgpack_pack_cstr(&pk, fail);
    }
    cf_reply_t *r = cf_client_call(c, type, params.data, params.size, 0);
    msgpack_sbuffer_destroy(&params);
    assert_non_null(r);
    return r;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_counters_move_by_what_ran(void **state)
{
    s_fleet_t *f = *state;
    static const char b_ok[] = "certfleet_broker_jobs_total{service=\"sys.echo\",outcome=\"ok\"}";
    static const char b_fail[] =
        "certfleet_broker_jobs_total{service=\"sys.echo\",outcome=\"test_failure\"}";
    static const char b_unknown[] =
        "certfleet_broker_jobs_total{service=\"other\",outcome=\"unknown_job_type\"}";
    static const char w_ok[] = "certfleet_jobs_total{service=\"sys.echo\",outcome=\"ok\"}";
    static const char w_fail[] =
        "certfleet_jobs_total{service=\"sys.echo\",outcome=\"test_failure\"}";
    static const char w_count[] = "certfleet_job_duration_seconds_count{service=\"sys.echo\"}";
    static const char w_inf[] =
        "certfleet_job_duration_seconds_bucket{service=\"sys.echo\",le=\"+Inf\"}";

    char *broker0 = cf_test_scrape(f->broker_port), *worker0 = cf_test_scrape(f->worker_port);

    /* One attempt and a long timeout: a resend would make a job count twice, rightly. */
    cf_client_t *c = cf_client_new(f->fleet.endpoint);
    assert_non_null(c);
    cf_client_set_timeout(c, 30000);
    cf_client_set_attempts(c, 1);
    for (int i = 0; i < S_ECHO_OK + S_ECHO_FAIL; i++) {
        cf_reply_t *r = s_call(c, "sys.echo", i < S_ECHO_OK ? NULL : "test_failure");
        if (i < S_ECHO_OK) {
            assert_true(cf_reply_ok(r));
        } else {
            assert_false(cf_reply_ok(r));
            assert_string_equal(cf_reply_error(r)->code, "test_failure");
        }
        cf_reply_destroy(&r);
    }
    cf_reply_t *r = s_call(c, "no.such_job", NULL);
    assert_false(cf_reply_ok(r));
    assert_string_equal(cf_reply_error(r)->code, "unknown_job_type");
    cf_reply_destroy(&r);
    cf_client_destroy(&c);

    char *broker1 = cf_test_scrape(f->broker_port), *worker1 = cf_test_scrape(f->worker_port);
    assert_int_equal(cf_test_metric_value(broker1, b_ok) - cf_test_metric_value(broker0, b_ok),
                     S_ECHO_OK);
    assert_int_equal(cf_test_metric_value(broker1, b_fail) - cf_test_metric_value(broker0, b_fail),
                     S_ECHO_FAIL);
    assert_int_equal(
        cf_test_metric_value(broker1, b_unknown) - cf_test_metric_value(broker0, b_unknown), 1);
    assert_int_equal(cf_test_metric_value(worker1, w_ok) - cf_test_metric_value(worker0, w_ok),
                     S_ECHO_OK);
    assert_int_equal(cf_test_metric_value(worker1, w_fail) - cf_test_metric_value(worker0, w_fail),
                     S_ECHO_FAIL);
    assert_int_equal(cf_test_metric_value(worker1, w_count) -
                         cf_test_metric_value(worker0, w_count),
                     S_ECHO_OK + S_ECHO_FAIL);
    assert_int_equal(cf_test_metric_value(worker1, w_inf), cf_test_metric_value(worker1, w_count));
    /* The unknown type never reached the worker and never became a label of its own. */
    assert_null(strstr(broker1, "no.such_job"));
    assert_null(strstr(worker1, "no.such_job"));

    /* Gauges of the broker's tick, and what every process exposes. */
    s_wait_value(f->broker_port, "certfleet_broker_workers{service=\"sys.echo\"}", 1);
    s_wait_value(f->broker_port, "certfleet_broker_queue_depth{service=\"sys.echo\"}", 0);
    s_wait_value(f->broker_port, "certfleet_broker_in_flight{service=\"sys.echo\"}", 0);
    assert_int_equal(cf_test_metric_value(worker1, "certfleet_worker_in_flight"), 0);
    assert_int_equal(cf_test_metric_value(worker1, "certfleet_worker_broker_connected"), 1);
    assert_non_null(strstr(broker1, "# TYPE certfleet_broker_requeued_total counter\n"));
    assert_non_null(strstr(broker1, "# TYPE certfleet_broker_duplicates_total counter\n"));
    assert_non_null(strstr(broker1, "certfleet_build_info{program=\"certfleet-broker\""));
    assert_non_null(strstr(worker1, "certfleet_build_info{program=\"certfleet-signer\""));
    assert_true(cf_test_metric_value(worker1, "certfleet_process_start_time_seconds") > 0);
    free(broker0);
    free(broker1);
    free(worker0);
    free(worker1);
}

static void test_health_and_paths(void **state)
{
    s_fleet_t *f = *state;
    json_t *h = s_health_wait(f->broker_port, 200, "routing");
    assert_string_equal(json_string_value(json_object_get(h, "status")), "ok");
    assert_string_equal(json_string_value(json_object_get(h, "program")), "certfleet-broker");
    assert_true(s_check_ok(h, "routing"));
    json_decref(h);

    h = s_health_wait(f->worker_port, 200, "redis");
    assert_string_equal(json_string_value(json_object_get(h, "program")), "certfleet-signer");
    assert_true(s_check_ok(h, "broker"));
    assert_true(s_check_ok(h, "postgres"));
    assert_true(s_check_ok(h, "redis"));
    json_decref(h);

    assert_int_equal(cf_test_http(f->broker_port, "GET", "/", NULL, NULL, 0), 404);
    assert_int_equal(cf_test_http(f->worker_port, "GET", "/jobs", NULL, NULL, 0), 404);
    assert_int_equal(cf_test_http(f->worker_port, "POST", "/metrics", NULL, NULL, 0), 405);
    assert_int_equal(cf_test_http(f->broker_port, "PUT", "/health", NULL, NULL, 0), 405);
    /* Still serving after the bad requests. */
    assert_int_equal(cf_test_http(f->broker_port, "GET", "/metrics", NULL, NULL, 0), 200);
}

static void test_health_without_postgres(void **state)
{
    s_fleet_t *f = *state;
    /* A signer of its own: PostgreSQL on a port where nothing listens, and a broker endpoint
     * where no broker is, so that the fleet above never sees it. */
    char dsn[128], endpoint[96];
    snprintf(dsn, sizeof dsn, "CERTFLEET_POSTGRES_DSN=host=127.0.0.1 port=%d dbname=none",
             cf_test_free_port());
    snprintf(endpoint, sizeof endpoint, "CERTFLEET_BROKER_ENDPOINT=tcp://127.0.0.1:%d",
             cf_test_free_port());
    do {
        f->lonely_port = cf_test_free_port();
    } while (f->lonely_port == f->broker_port || f->lonely_port == f->worker_port);
    char env_port[64], path[400];
    snprintf(env_port, sizeof env_port, "CERTFLEET_METRICS_PORT=%d", f->lonely_port);
    snprintf(path, sizeof path, "%s/lonely.log", f->fleet.dir);
    const char *env[] = {env_port, dsn, endpoint, NULL};
    f->lonely = cf_test_spawn(path, env, "certfleet-signer", "--config", f->fleet.config, NULL);
    assert_true(f->lonely > 0);

    json_t *h = s_health_wait(f->lonely_port, 503, "redis");
    assert_string_equal(json_string_value(json_object_get(h, "status")), "unhealthy");
    assert_false(s_check_ok(h, "postgres"));
    assert_false(s_check_ok(h, "broker"));
    assert_true(s_check_ok(h, "redis"));
    const char *detail = json_string_value(
        json_object_get(json_object_get(json_object_get(h, "checks"), "postgres"), "detail"));
    assert_non_null(strstr(detail, "could not connect to PostgreSQL"));
    json_decref(h);

    char *text = cf_test_scrape(f->lonely_port);
    assert_true(cf_test_metric_value(text, "certfleet_postgres_errors_total{kind=\"connect\"}") >=
                1);
    assert_int_equal(cf_test_metric_value(text, "certfleet_worker_broker_connected"), 0);
    free(text);
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counters_move_by_what_ran),
        cmocka_unit_test(test_health_and_paths),
        cmocka_unit_test(test_health_without_postgres),
    };
    int rc = cmocka_run_group_tests(tests, s_setup, s_teardown);
    curl_global_cleanup();
    return rc;
}
