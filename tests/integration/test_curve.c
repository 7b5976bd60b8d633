/* CURVE security and per-client authorization, end to end: a real broker, signer and crl
 * worker with CURVE on, every key made by `certfleet keygen`. An allowed client's jobs run;
 * a job type or a CA outside a client's grant is refused with "forbidden" (type, params.ca);
 * an "@acme" client is refused by the worker for a CA without ACME; an unknown client key
 * never gets an answer; a worker with an unknown key or with a client-only key never
 * registers and the jobs of its service stay unserved; a key removed from the allow-list
 * loses its rights; a process without keys refuses to start. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <czmq.h>

#include "cf_client.h"
#include "cf_curve.h"
#include "cf_msgpack.h"
#include "cf_pg.h"
#include "cf_test.h"
#include "cf_test_fleet.h"
#include "cf_test_jobs.h"

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config, endpoint */
    char keys[400];        /* where keygen writes */
    char clients[420];     /* the broker's [curve] clients_dir */
    char broker_key[41];   /* the broker's public key (Z85) */
    pid_t pids[8];         /* broker, signer, crl, then the refused workers */
    int npids;             /* slots used */
    cf_client_t *admin;    /* every job type, every CA */
    cf_client_t *limited;  /* sys.echo and crl.*, CA "alpha" only */
    cf_client_t *acme;     /* cert.issue and crl.build, CAs with ACME only */
    cf_pg_t *pg;           /* the test's own connection */
} s_fleet_t;

/* ---- keys --------------------------------------------------------------------------------- */

/* `certfleet keygen NAME` into DIR with the grant; must exit 0. */
static void s_keygen(s_fleet_t *f, const char *dir, const char *name, const char *role,
                     const char *job_types, const char *cas)
{
    char log[400];
    snprintf(log, sizeof log, "%s/keygen.log", f->fleet.dir);
    pid_t pid = cf_test_spawn(log, NULL, "certfleet", "keygen", name, "--dir", dir, "--role", role,
                              "--job-types", job_types, "--cas", cas, NULL);
    assert_true(pid > 0);
    int status = 0;
    assert_int_equal(cf_test_wait_exit(pid, 30000, &status), 0);
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
        fail_msg("certfleet keygen %s failed (see %s)", name, log);
}

/* Copy DIR/NAME.pub into the allow-list. */
static void s_allow(s_fleet_t *f, const char *name)
{
    char from[500], to[500];
    snprintf(from, sizeof from, "%s/%s.pub", f->keys, name);
    snprintf(to, sizeof to, "%s/%s.pub", f->clients, name);
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    assert_non_null(in);
    assert_non_null(out);
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        assert_int_equal(fwrite(buf, 1, n, out), n);
    fclose(in);
    assert_int_equal(fclose(out), 0);
}

static void s_secret_path(s_fleet_t *f, const char *name, char *out, size_t len)
{
    snprintf(out, len, "%s/%s.key", f->keys, name);
}

/* A client with the key NAME (timeout TIMEOUT_MS, ATTEMPTS sends). */
static cf_client_t *s_client(s_fleet_t *f, const char *name, int timeout_ms, int attempts)
{
    char path[500], err[512] = "";
    s_secret_path(f, name, path, sizeof path);
    cf_curve_t *curve = cf_curve_new_client(path, f->broker_key, err, sizeof err);
    if (!curve)
        fail_msg("client key \"%s\": %s", name, err);
    cf_client_t *c = cf_client_new_curve(f->fleet.endpoint, &curve);
    assert_non_null(c);
    assert_null(curve);
    cf_client_set_timeout(c, timeout_ms);
    cf_client_set_attempts(c, attempts);
    return c;
}

/* Start PROG with the secret key NAME (and --name WORKER_NAME when given). */
static pid_t s_start(s_fleet_t *f, const char *prog, const char *key, const char *worker_name,
                     const char *log)
{
    char path[500], env0[600], logpath[400];
    s_secret_path(f, key, path, sizeof path);
    snprintf(env0, sizeof env0, "CERTFLEET_CURVE_SECRET_KEY_FILE=%s", path);
    snprintf(logpath, sizeof logpath, "%s/%s", f->fleet.dir, log);
    const char *env[] = {env0, NULL};
    pid_t pid = worker_name ? cf_test_spawn(logpath, env, prog, "--config", f->fleet.config,
                                            "--name", worker_name, NULL)
                            : cf_test_spawn(logpath, env, prog, "--config", f->fleet.config, NULL);
    assert_true(pid > 0);
    f->pids[f->npids++] = pid;
    return pid;
}

/* ---- the fleet ------------------------------------------------------------------------------ */

/* broker.status through the admin key (caller owns), NULL when it did not answer. */
static cf_reply_t *s_status(s_fleet_t *f)
{
    cf_reply_t *r = cf_client_call(f->admin, "broker.status", NULL, 0, 0);
    if (!cf_reply_ok(r))
        cf_reply_destroy(&r);
    return r;
}

/* How many workers broker.status lists, and whether one is called NAME. */
static int s_workers(s_fleet_t *f, const char *name, bool *named)
{
    cf_reply_t *r = s_status(f);
    if (!r)
        return -1;
    const msgpack_object *w = cf_msgpack_map_get(cf_reply_result(r), "workers");
    int n = w ? (int)w->via.array.size : -1;
    if (named) {
        *named = false;
        for (int i = 0; i < n; i++) {
            char *wn = cf_msgpack_strdup(cf_msgpack_map_get(&w->via.array.ptr[i], "name"));
            if (wn && name && strcmp(wn, name) == 0)
                *named = true;
            free(wn);
        }
    }
    cf_reply_destroy(&r);
    return n;
}

/* broker.status's totals.KEY. */
static long s_total(s_fleet_t *f, const char *key)
{
    cf_reply_t *r = s_status(f);
    assert_non_null(r);
    const msgpack_object *v =
        cf_msgpack_map_get(cf_msgpack_map_get(cf_reply_result(r), "totals"), key);
    assert_non_null(v);
    long n = (long)v->via.u64;
    cf_reply_destroy(&r);
    return n;
}

/* Wait until the file DIR/LOG holds TEXT (a process has got that far). */
static void s_wait_log(s_fleet_t *f, const char *log, const char *text)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", f->fleet.dir, log);
    for (int i = 0; i < 300; i++) {
        FILE *in = fopen(path, "r");
        bool found = false;
        if (in) {
            char line[2048];
            while (!found && fgets(line, sizeof line, in))
                found = strstr(line, text) != NULL;
            fclose(in);
        }
        if (found)
            return;
        usleep(100 * 1000);
    }
    char cmd[500];
    snprintf(cmd, sizeof cmd, "tail -n 20 '%s' >&2", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not show %s\n", path);
    fail_msg("\"%s\" never appeared in %s", text, log);
}

static int s_setup(void **state)
{
    CF_TEST_NEEDS_SERVICES();
    s_fleet_t *f = calloc(1, sizeof *f);
    assert_int_equal(cf_test_fleet_init(&f->fleet, "curve"), 0);
    snprintf(f->keys, sizeof f->keys, "%s/curve", f->fleet.dir);
    snprintf(f->clients, sizeof f->clients, "%s/clients", f->keys);
    s_keygen(f, f->keys, "broker", "client", "", "");
    s_keygen(f, f->keys, "worker", "worker", "", "");
    s_keygen(f, f->keys, "admin", "client", "*", "*");
    s_keygen(f, f->keys, "limited", "client", "sys.echo,crl.*", "alpha");
    s_keygen(f, f->keys, "acme", "client", "cert.issue,crl.build", "@acme");
    s_keygen(f, f->keys, "clientonly", "client", "*", "*");
    s_keygen(f, f->keys, "doomed", "client", "sys.echo", "");
    s_keygen(f, f->keys, "stranger", "client", "*", "*");
    s_keygen(f, f->keys, "strangerworker", "worker", "", "");
    assert_int_equal(zsys_dir_create("%s", f->clients), 0);
    const char *allowed[] = {"worker", "admin", "limited", "acme", "clientonly", "doomed"};
    for (size_t i = 0; i < sizeof allowed / sizeof *allowed; i++)
        s_allow(f, allowed[i]);
    char pub[500];
    snprintf(pub, sizeof pub, "%s/broker.pub", f->keys);
    zcert_t *bc = zcert_load(pub);
    assert_non_null(bc);
    snprintf(f->broker_key, sizeof f->broker_key, "%s", zcert_public_txt(bc));
    zcert_destroy(&bc);

    char extra[2048];
    snprintf(extra, sizeof extra,
             "[curve]\ninsecure = false\nbroker_public_key_file = %s\nclients_dir = %s\n"
             "[client]\ntimeout_ms = 10000\n",
             pub, f->clients);
    assert_int_equal(cf_test_fleet_write_config(&f->fleet, extra), 0);
    s_start(f, "certfleet-broker", "broker", NULL, "broker.log");
    s_start(f, "certfleet-signer", "worker", "signer", "signer.log");
    s_start(f, "certfleet-crl", "worker", "crl", "crl.log");
    f->admin = s_client(f, "admin", 10000, 6);
    f->limited = s_client(f, "limited", 10000, 3);
    f->acme = s_client(f, "acme", 10000, 3);
    int n = -1;
    for (int i = 0; i < 100 && n != 2; i++) {
        n = s_workers(f, NULL, NULL);
        if (n != 2)
            usleep(100 * 1000);
    }
    if (n != 2)
        fail_msg("the broker never listed the signer and the crl worker over CURVE");
    f->pg = cf_pg_new(f->fleet.conninfo);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fleet_t *f = *state;
    if (!f)
        return 0;
    cf_client_destroy(&f->admin);
    cf_client_destroy(&f->limited);
    cf_client_destroy(&f->acme);
    cf_pg_destroy(&f->pg);
    cf_test_fleet_stop_all(f->pids, f->npids);
    int reports = cf_test_fleet_cleanup(&f->fleet);
    free(f);
    assert_int_equal(reports, 0);
    return 0;
}

/* ---- helpers ----------------------------------------------------------------------------------
 */

/* ca.init NAME (EC) through the admin key, with ACME on or off. */
static void s_ca(s_fleet_t *f, const char *name, bool acme)
{
    X509_free(cf_test_ca_init(f->admin, name, json_pack("{s:b}", "acme_enabled", acme)));
}

/* cert.issue from CA through CLIENT with a fresh CSR. Caller owns the reply. */
static cf_reply_t *s_issue(cf_client_t *client, const char *ca, const char *cn)
{
    return cf_test_issue(client, json_pack("{s:s, s:s}", "ca", ca, "profile", "webserver"), cn);
}

/* R is the error CODE on FIELD, and its message holds TEXT. */
static void s_assert_error(const cf_reply_t *r, const char *code, const char *field,
                           const char *text)
{
    assert_false(cf_reply_ok(r));
    const cf_error_t *e = cf_reply_error(r);
    if (strcmp(e->code, code) != 0 || strcmp(e->field, field) != 0 ||
        (text && !strstr(e->message, text)))
        fail_msg("expected %s on \"%s\" saying \"%s\", got %s on \"%s\": %s", code, field,
                 text ? text : "", e->code, e->field, e->message);
}

static long s_count(s_fleet_t *f, const char *sql)
{
    return cf_test_count(f->pg, sql);
}

/* ---- tests -------------------------------------------------------------------------------------
 */

/* CAs for the other tests, made through the admin key: jobs of an allowed client run over
 * CURVE; the grants allow what they name, by exact type, prefix and CA name. */
static void test_allowed_clients_run_jobs(void **state)
{
    s_fleet_t *f = *state;
    s_ca(f, "alpha", false);
    s_ca(f, "beta", false);
    s_ca(f, "acmeca", true);

    cf_reply_t *r =
        cf_test_call(f->limited, "sys.echo", json_pack("{s:s}", "hello", "curve"), NULL, 0);
    cf_test_assert_ok(r, "sys.echo by a limited client");
    cf_reply_destroy(&r);
    /* crl.* allows crl.build; "alpha" is named in the grant. */
    r = cf_test_call(f->limited, "crl.build", json_pack("{s:s}", "ca", "alpha"), NULL, 0);
    cf_test_assert_ok(r, "crl.build of alpha by a limited client");
    cf_reply_destroy(&r);
    /* broker.status and sys.ping are allowed to every known client. */
    r = cf_client_call(f->limited, "broker.status", NULL, 0, 0);
    cf_test_assert_ok(r, "broker.status by a limited client");
    cf_reply_destroy(&r);
    r = cf_test_call(f->acme, "sys.ping", json_object(), NULL, 0);
    cf_test_assert_ok(r, "sys.ping by the acme client");
    cf_reply_destroy(&r);
    /* "@acme" lets the acme client issue from a CA with ACME enabled (checked by the signer). */
    r = s_issue(f->acme, "acmeca", "acme.example.com");
    cf_test_assert_ok(r, "cert.issue from an ACME CA by the acme client");
    cf_reply_destroy(&r);
}

/* A job type outside the grant: forbidden on "type", naming the client; nothing is written. */
static void test_forbidden_type(void **state)
{
    s_fleet_t *f = *state;
    long before = s_count(f, "SELECT count(*) FROM certificates");
    cf_reply_t *r = s_issue(f->limited, "alpha", "nope.example.com");
    s_assert_error(r, "forbidden", "type", "\"limited\"");
    cf_reply_destroy(&r);
    r = cf_test_call(f->limited, "ca.init",
                     json_pack("{s:s, s:s}", "name", "gamma", "subject", "CN=gamma"), NULL, 0);
    s_assert_error(r, "forbidden", "type", "ca.init");
    cf_reply_destroy(&r);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), before);
    assert_int_equal(
        s_count(f, "SELECT count(*) FROM certificate_authorities WHERE name = 'gamma'"), 0);
}

/* A CA outside the grant: forbidden on params.ca, naming the client and the CA. */
static void test_forbidden_ca(void **state)
{
    s_fleet_t *f = *state;
    long before = s_count(f, "SELECT count(*) FROM crls");
    long refused = s_total(f, "forbidden");
    cf_reply_t *r =
        cf_test_call(f->limited, "crl.build", json_pack("{s:s}", "ca", "beta"), NULL, 0);
    s_assert_error(r, "forbidden", "params.ca", "client \"limited\" may not use CA \"beta\"");
    cf_reply_destroy(&r);
    /* A CA param that is not a CA name is refused too, not passed on. */
    r = cf_test_call(f->limited, "crl.build", json_pack("{s:i}", "ca", 7), NULL, 0);
    s_assert_error(r, "forbidden", "params.ca", "limited");
    cf_reply_destroy(&r);
    assert_int_equal(s_count(f, "SELECT count(*) FROM crls"), before);
    /* broker.status counts what the grants refused. */
    assert_int_equal(s_total(f, "forbidden") - refused, 2);
}

/* "@acme" cannot be decided by the broker: the worker refuses a CA without ACME. */
static void test_acme_checked_by_worker(void **state)
{
    s_fleet_t *f = *state;
    long certs = s_count(f, "SELECT count(*) FROM certificates");
    long crls = s_count(f, "SELECT count(*) FROM crls");
    cf_reply_t *r = s_issue(f->acme, "alpha", "no-acme.example.com");
    s_assert_error(r, "forbidden", "params.ca", "only CAs with ACME enabled");
    cf_reply_destroy(&r);
    r = cf_test_call(f->acme, "crl.build", json_pack("{s:s}", "ca", "beta"), NULL, 0);
    s_assert_error(r, "forbidden", "params.ca", "\"acme\" may not use CA \"beta\"");
    cf_reply_destroy(&r);
    /* A CA that does not exist is no ACME CA either. */
    r = cf_test_call(f->acme, "crl.build", json_pack("{s:s}", "ca", "nosuch"), NULL, 0);
    s_assert_error(r, "forbidden", "params.ca", "nosuch");
    cf_reply_destroy(&r);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), certs);
    assert_int_equal(s_count(f, "SELECT count(*) FROM crls"), crls);
    /* Still allowed where ACME is on. */
    r = cf_test_call(f->acme, "crl.build", json_pack("{s:s}", "ca", "acmeca"), NULL, 0);
    cf_test_assert_ok(r, "crl.build of an ACME CA by the acme client");
    cf_reply_destroy(&r);
}

/* A key that is not in the allow-list never gets a connection: the call times out locally. */
static void test_unknown_client_gets_nothing(void **state)
{
    s_fleet_t *f = *state;
    cf_client_t *c = s_client(f, "stranger", 500, 2);
    cf_reply_t *r = cf_client_call(c, "broker.status", NULL, 0, 0);
    s_assert_error(r, "timeout", "", NULL);
    cf_reply_destroy(&r);
    cf_client_destroy(&c);
    /* A plain client gets nothing from a CURVE broker either. */
    c = cf_client_new(f->fleet.endpoint);
    cf_client_set_timeout(c, 500);
    cf_client_set_attempts(c, 2);
    r = cf_client_call(c, "sys.ping", NULL, 0, 0);
    s_assert_error(r, "timeout", "", NULL);
    cf_reply_destroy(&r);
    cf_client_destroy(&c);
}

/* A worker with an unknown key, and one whose key is only a client's, never register: the
 * broker lists neither, and the jobs of their service (ocsp.keygen: no other worker serves
 * it) stay queued until their deadline. */
static void test_refused_workers_never_serve(void **state)
{
    s_fleet_t *f = *state;
    s_start(f, "certfleet-ocsp", "strangerworker", "rogue-unknown", "rogue-unknown.log");
    s_start(f, "certfleet-ocsp", "clientonly", "rogue-client", "rogue-client.log");
    /* The unknown key's worker finds the broker silent (ZAP refuses its handshake); the
     * client-only key is refused by the broker and told to go away. */
    s_wait_log(f, "rogue-unknown.log", "is silent, reconnecting");
    s_wait_log(f, "broker.log", "refused worker frames from key");
    s_wait_log(f, "rogue-client.log", "asked worker \"rogue-client\" to reconnect");
    bool named = false;
    assert_int_equal(s_workers(f, "rogue-unknown", &named), 2);
    assert_false(named);
    assert_int_equal(s_workers(f, "rogue-client", &named), 2);
    assert_false(named);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    json_t *params = json_pack("{s:s}", "ca", "alpha");
    cf_test_pack_params(&buf, params, NULL, 0);
    json_decref(params);
    cf_reply_t *r = cf_client_call(f->admin, "ocsp.keygen", buf.data, buf.size, cf_now_ms() + 1500);
    s_assert_error(r, "deadline_exceeded", "deadline_ms", NULL);
    cf_reply_destroy(&r);
    msgpack_sbuffer_destroy(&buf);
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responders"), 0);
}

/* A key removed from the allow-list loses its rights on the broker's next look. */
static void test_removed_key_loses_rights(void **state)
{
    s_fleet_t *f = *state;
    cf_client_t *c = s_client(f, "doomed", 10000, 3);
    cf_reply_t *r = cf_test_call(c, "sys.echo", json_pack("{s:i}", "n", 1), NULL, 0);
    cf_test_assert_ok(r, "sys.echo before the key is removed");
    cf_reply_destroy(&r);
    char path[500];
    snprintf(path, sizeof path, "%s/doomed.pub", f->clients);
    assert_int_equal(unlink(path), 0);
    /* The broker looks at the directory every 2 s: ask until it has. */
    bool refused = false;
    for (int i = 0; i < 100 && !refused; i++) {
        r = cf_test_call(c, "sys.echo", json_pack("{s:i}", "n", i + 2), NULL, 0);
        refused = !cf_reply_ok(r) && strcmp(cf_reply_error(r)->code, "forbidden") == 0;
        if (!refused)
            cf_test_assert_ok(r, "sys.echo while the broker has not looked yet");
        cf_reply_destroy(&r);
        if (!refused)
            usleep(100 * 1000);
    }
    assert_true(refused);
    cf_client_destroy(&c);
}

/* Without keys and without insecure = true, the broker, a worker, the scheduler and the ACME
 * front refuse to start and say which settings are missing. */
static void test_no_keys_no_start(void **state)
{
    s_fleet_t *f = *state;
    char conf[400];
    snprintf(conf, sizeof conf, "%s/nokeys.conf", f->fleet.dir);
    FILE *out = fopen(conf, "w");
    assert_non_null(out);
    fprintf(out, "[broker]\nendpoint = tcp://127.0.0.1:%d\n[postgres]\ndsn = %s\n",
            cf_test_free_port(), f->fleet.conninfo);
    assert_int_equal(fclose(out), 0);
    static const char *const progs[] = {"certfleet-broker", "certfleet-signer",
                                        "certfleet-scheduler", "certfleet-acme"};
    for (size_t i = 0; i < sizeof progs / sizeof progs[0]; i++) {
        char log[400];
        snprintf(log, sizeof log, "%s/nokeys-%s.log", f->fleet.dir, progs[i]);
        pid_t pid = cf_test_spawn(log, NULL, progs[i], "--config", conf, NULL);
        assert_true(pid > 0);
        int status = 0;
        if (cf_test_wait_exit(pid, 20000, &status) != 0) {
            cf_test_kill(pid, SIGKILL);
            fail_msg("%s started without CURVE keys", progs[i]);
        }
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);
        char name[64];
        snprintf(name, sizeof name, "nokeys-%s.log", progs[i]);
        s_wait_log(f, name, "[curve] secret_key_file");
        s_wait_log(f, name, "insecure = true");
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allowed_clients_run_jobs),
        cmocka_unit_test(test_forbidden_type),
        cmocka_unit_test(test_forbidden_ca),
        cmocka_unit_test(test_acme_checked_by_worker),
        cmocka_unit_test(test_unknown_client_gets_nothing),
        cmocka_unit_test(test_refused_workers_never_serve),
        cmocka_unit_test(test_removed_key_loses_rights),
        cmocka_unit_test(test_no_keys_no_start),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
