/* The job fabric end to end: a real broker, real worker processes, PostgreSQL and Redis on
 * loopback. Many jobs from many clients, workers killed and stopped, the broker restarted,
 * full queues, deadlines and garbage on the wire: every job gets exactly one final reply and
 * job_results exactly one row per durable job. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <czmq.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_proto.h"
#include "cf_pg.h"
#include "cf_test.h"
#include "cf_test_fleet.h"

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config, endpoint */
    pid_t broker;          /* broker pid */
    pid_t workers[4];      /* worker pids */
    int nworkers;          /* how many started */
} s_fleet_t;

static void s_write_config(s_fleet_t *f, int queue_max)
{
    char extra[64];
    snprintf(extra, sizeof extra, "[broker]\nqueue_max = %d\n", queue_max);
    assert_int_equal(cf_test_fleet_write_config(&f->fleet, extra), 0);
}

static pid_t s_start(s_fleet_t *f, const char *prog, const char *log)
{
    pid_t pid = cf_test_fleet_start(&f->fleet, prog, log);
    assert_true(pid > 0);
    return pid;
}

/* Wait until the broker reports N workers. */
static void s_wait_workers(s_fleet_t *f, int n)
{
    if (cf_test_fleet_wait_workers(&f->fleet, n, 10000) != 0)
        fail_msg("broker never reported %d workers", n);
}

static int s_setup(void **state)
{
    s_fleet_t *f = calloc(1, sizeof *f);
    assert_int_equal(cf_test_fleet_init(&f->fleet, "fabric"), 0);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fleet_t *f = *state;
    for (int i = 0; i < f->nworkers; i++)
        if (f->workers[i] > 0)
            cf_test_kill(f->workers[i], SIGTERM);
    if (f->broker > 0)
        cf_test_kill(f->broker, SIGTERM);
    /* A process that a sanitizer stopped, or that leaked, says so in its log: that fails. */
    int reports = cf_test_fleet_cleanup(&f->fleet);
    free(f);
    assert_int_equal(reports, 0);
    return 0;
}

static void s_start_fleet(s_fleet_t *f, int nworkers, int queue_max)
{
    s_write_config(f, queue_max);
    f->broker = s_start(f, "certfleet-broker", "broker.log");
    static const char *progs[] = {"certfleet-signer", "certfleet-crl", "certfleet-ocsp",
                                  "certfleet-notifier"};
    for (int i = 0; i < nworkers; i++) {
        char log[32];
        snprintf(log, sizeof log, "worker%d.log", i);
        f->workers[i] = s_start(f, progs[i], log);
    }
    f->nworkers = nworkers;
    s_wait_workers(f, nworkers);
}

static long s_count(s_fleet_t *f, const char *sql)
{
    cf_pg_t *pg = cf_pg_new(f->fleet.conninfo);
    PGresult *res = cf_pg_exec_params(pg, sql, 0, NULL, NULL, NULL, 0);
    assert_non_null(res);
    long n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    cf_pg_destroy(&pg);
    return n;
}

/* ---- many clients ------------------------------------------------------------------- */

typedef struct {
    const char *endpoint;
    int jobs;   /* to send */
    int window; /* in flight at most */
    int ok;     /* ok replies */
    int other;  /* anything else */
    char first_error[300];
} s_load_t;

static void *s_load(void *arg)
{
    s_load_t *l = arg;
    cf_client_t *c = cf_client_new(l->endpoint);
    cf_client_set_timeout(c, 1500);
    cf_client_set_attempts(c, 40);
    msgpack_sbuffer params;
    msgpack_sbuffer_init(&params);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    cf_msgpack_pack_cstr(&pk, "n");
    msgpack_pack_int(&pk, 42);
    int sent = 0, done = 0;
    while (done < l->jobs) {
        while (sent < l->jobs && (int)cf_client_pending(c) < l->window) {
            cf_client_send(c, NULL, "sys.echo", params.data, params.size, 0, NULL);
            sent++;
        }
        cf_reply_t *r = cf_client_recv(c, 60000);
        if (!r)
            break;
        if (cf_reply_ok(r)) {
            l->ok++;
        } else {
            if (!l->other)
                snprintf(l->first_error, sizeof l->first_error, "%s: %s", cf_reply_error(r)->code,
                         cf_reply_error(r)->message);
            l->other++;
        }
        done++;
        cf_reply_destroy(&r);
    }
    msgpack_sbuffer_destroy(&params);
    cf_client_destroy(&c);
    return NULL;
}

/* Run N clients of JOBS each; DISTURB (if any) runs in this thread meanwhile. */
static int s_run_load(s_fleet_t *f, int nclients, int jobs, void (*disturb)(s_fleet_t *))
{
    pthread_t threads[16];
    s_load_t loads[16];
    for (int i = 0; i < nclients; i++) {
        loads[i] = (s_load_t){.endpoint = f->fleet.endpoint, .jobs = jobs, .window = 64};
        pthread_create(&threads[i], NULL, s_load, &loads[i]);
    }
    if (disturb)
        disturb(f);
    int ok = 0;
    for (int i = 0; i < nclients; i++) {
        pthread_join(threads[i], NULL);
        ok += loads[i].ok;
        if (loads[i].other)
            fprintf(stderr, "client %d: %d errors, first: %s\n", i, loads[i].other,
                    loads[i].first_error);
    }
    return ok;
}

static void test_ten_thousand_jobs(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 2, 10000);
    int ok = s_run_load(f, 8, 1250, NULL);
    assert_int_equal(ok, 10000);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results"), 10000);
    assert_int_equal(s_count(f, "SELECT count(DISTINCT id) FROM job_results"), 10000);
}

static void s_kill_worker(s_fleet_t *f)
{
    usleep(700 * 1000);
    cf_test_kill(f->workers[0], SIGKILL);
    f->workers[0] = 0;
}

static void test_kill_worker_mid_stream(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 2, 10000);
    int ok = s_run_load(f, 4, 2500, s_kill_worker);
    assert_int_equal(ok, 10000);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results"), 10000);
}

static void s_restart_broker(s_fleet_t *f)
{
    usleep(700 * 1000);
    cf_test_kill(f->broker, SIGKILL);
    usleep(300 * 1000);
    f->broker = s_start(f, "certfleet-broker", "broker2.log");
}

static void test_restart_broker_mid_stream(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 2, 10000);
    int ok = s_run_load(f, 4, 2500, s_restart_broker);
    assert_int_equal(ok, 10000);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results"), 10000);
}

static void s_stop_worker(s_fleet_t *f)
{
    usleep(500 * 1000);
    kill(f->workers[0], SIGSTOP);
}

static void test_silent_worker_is_dropped(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 2, 10000);
    int ok = s_run_load(f, 4, 1500, s_stop_worker);
    assert_int_equal(ok, 6000);
    s_wait_workers(f, 1);
    /* The stopped worker comes back, finishes what it held (answered already elsewhere:
     * its replies are dropped as duplicates) and announces itself again. */
    kill(f->workers[0], SIGCONT);
    s_wait_workers(f, 2);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results"), 6000);
}

/* ---- refusals ------------------------------------------------------------------------ */

static cf_reply_t *s_recv_for(cf_client_t *c, int timeout_ms)
{
    cf_reply_t *r = cf_client_recv(c, timeout_ms);
    assert_non_null(r);
    return r;
}

static void test_full_queue_answers_busy(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 0, 5);
    cf_client_t *c = cf_client_new(f->fleet.endpoint);
    cf_client_set_timeout(c, 30000);
    for (int i = 0; i < 5; i++)
        cf_client_send(c, NULL, "sys.echo", NULL, 0, 0, NULL);
    uint8_t id[CF_JOB_ID_SIZE];
    cf_client_send(c, NULL, "sys.echo", NULL, 0, 0, id);
    cf_reply_t *r = s_recv_for(c, 5000);
    assert_false(cf_reply_ok(r));
    assert_string_equal(cf_reply_error(r)->code, "busy");
    assert_memory_equal(cf_reply_id(r), id, CF_JOB_ID_SIZE);
    cf_reply_destroy(&r);
    /* A worker arrives: the five queued jobs are served. */
    f->workers[0] = s_start(f, "certfleet-signer", "late-worker.log");
    f->nworkers = 1;
    for (int i = 0; i < 5; i++) {
        r = s_recv_for(c, 20000);
        assert_true(cf_reply_ok(r));
        cf_reply_destroy(&r);
    }
    cf_client_destroy(&c);
}

static void test_deadlines(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 0, 100);
    cf_client_t *c = cf_client_new(f->fleet.endpoint);
    cf_client_set_timeout(c, 30000);
    /* Already past: refused on arrival. */
    cf_client_send(c, NULL, "sys.echo", NULL, 0, cf_now_ms() - 1000, NULL);
    cf_reply_t *r = s_recv_for(c, 5000);
    assert_string_equal(cf_reply_error(r)->code, "deadline_exceeded");
    cf_reply_destroy(&r);
    /* Passes while queued (no worker): answered by the broker's sweep, never run late. */
    uint64_t t0 = cf_mono_ms();
    cf_client_send(c, NULL, "sys.echo", NULL, 0, cf_now_ms() + 300, NULL);
    r = s_recv_for(c, 5000);
    assert_string_equal(cf_reply_error(r)->code, "deadline_exceeded");
    assert_true(cf_mono_ms() - t0 >= 250);
    cf_reply_destroy(&r);
    cf_client_destroy(&c);
    /* Nothing ran. */
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results"), 0);
}

static void test_bad_input_changes_nothing(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 1, 100);
    zsock_t *raw = zsock_new_dealer(f->fleet.endpoint);
    /* Garbage envelope: a specific error, no id. */
    zsock_send(raw, "sb", CF_PROTO_CLIENT, "\xdd\xff\xff\xff\xff", (size_t)5);
    char *proto = NULL;
    zframe_t *body = NULL;
    zsock_set_rcvtimeo(raw, 5000);
    assert_int_equal(zsock_recv(raw, "sf", &proto, &body), 0);
    cf_error_t err = {0};
    cf_reply_t *r = cf_reply_decode(zframe_data(body), zframe_size(body), &err);
    assert_non_null(r);
    assert_string_equal(cf_reply_error(r)->code, "truncated");
    assert_null(cf_reply_id(r));
    cf_reply_destroy(&r);
    zframe_destroy(&body);
    zstr_free(&proto);
    /* Wrong frame count and unknown protocol header: dropped or refused, broker lives on. */
    zsock_send(raw, "sss", CF_PROTO_CLIENT, "a", "b");
    assert_int_equal(zsock_recv(raw, "sf", &proto, &body), 0);
    r = cf_reply_decode(zframe_data(body), zframe_size(body), &err);
    assert_string_equal(cf_reply_error(r)->code, "malformed");
    cf_reply_destroy(&r);
    zframe_destroy(&body);
    zstr_free(&proto);
    zsock_send(raw, "ss", "XXXX", "junk");
    zsock_destroy(&raw);
    /* Unknown job type and bad params: specific errors, and the fleet still works. */
    cf_client_t *c = cf_client_new(f->fleet.endpoint);
    cf_reply_t *u = cf_client_call(c, "no.such_job", NULL, 0, 0);
    assert_string_equal(cf_reply_error(u)->code, "unknown_job_type");
    assert_string_equal(cf_reply_error(u)->field, "type");
    cf_reply_destroy(&u);
    msgpack_sbuffer p;
    msgpack_sbuffer_init(&p);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    cf_msgpack_pack_cstr(&pk, "sleep_ms");
    cf_msgpack_pack_cstr(&pk, "soon");
    u = cf_client_call(c, "sys.echo", p.data, p.size, 0);
    assert_string_equal(cf_reply_error(u)->code, "invalid_value");
    assert_string_equal(cf_reply_error(u)->field, "params.sleep_ms");
    cf_reply_destroy(&u);
    msgpack_sbuffer_destroy(&p);
    u = cf_client_call(c, "sys.ping", NULL, 0, 0);
    assert_true(cf_reply_ok(u));
    cf_reply_destroy(&u);
    cf_client_destroy(&c);
    /* The refused job wrote an error row (it ran and failed); garbage wrote nothing. */
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results WHERE status = 'ok'"), 0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results WHERE status = 'error'"), 1);
}

static void test_repeated_id_gets_stored_reply(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 1, 100);
    cf_client_t *c = cf_client_new(f->fleet.endpoint);
    uint8_t id[CF_JOB_ID_SIZE];
    cf_job_id_random(id);
    size_t len1 = 0, len2 = 0;
    void *first = NULL;
    for (int round = 0; round < 2; round++) {
        cf_client_send(c, id, "sys.echo", NULL, 0, 0, NULL);
        cf_reply_t *r = s_recv_for(c, 10000);
        assert_true(cf_reply_ok(r));
        size_t len;
        const void *data = cf_reply_data(r, &len);
        if (round == 0) {
            first = malloc(len);
            memcpy(first, data, len);
            len1 = len;
        } else {
            len2 = len;
            assert_memory_equal(first, data, len);
        }
        cf_reply_destroy(&r);
    }
    assert_int_equal(len1, len2);
    free(first);
    cf_client_destroy(&c);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results"), 1);
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ten_thousand_jobs, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_kill_worker_mid_stream, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_restart_broker_mid_stream, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_silent_worker_is_dropped, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_full_queue_answers_busy, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_deadlines, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_changes_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_repeated_id_gets_stored_reply, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
