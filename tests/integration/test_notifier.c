/* notify.expiring end to end: a real broker, a signer and two certfleet-notifier workers,
 * PostgreSQL and Redis on loopback, and an SMTP sink in this process (tests/support/
 * cf_test_smtp). Certificates are issued through cert.issue with watchers and expiry dates a
 * few days out; the sink must receive exactly the right mails (recipient, subject, serial)
 * exactly once, also when many jobs run on both notifiers at once; with the sink stopped the
 * job reports failures and nothing is marked sent, and once the sink is back a later job sends
 * each of them, once; a refused recipient does not hold the others up; bad params and bad
 * watcher addresses get error replies and change nothing; a notifier without a sender refuses
 * the job before it records anything. */
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
#include <time.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_msgpack.h"
#include "cf_pg.h"
#include "cf_test.h"
#include "cf_test_fleet.h"
#include "cf_test_jobs.h"
#include "cf_test_smtp.h"

#define S_DAY 86400

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config, keys, endpoint */
    pid_t pids[5];         /* broker, signer, notifier, notifier, (spare) */
    int npids;             /* slots used */
    cf_client_t *client;   /* jobs */
    cf_pg_t *pg;           /* the test's own connection */
    cf_test_smtp_t *smtp;  /* the sink */
} s_fleet_t;

/* ---- the fleet ------------------------------------------------------------------------- */

static int s_setup(void **state)
{
    CF_TEST_NEEDS_SERVICES();
    s_fleet_t *f = calloc(1, sizeof *f);
    assert_non_null(f->smtp = cf_test_smtp_new());
    assert_int_equal(cf_test_fleet_init(&f->fleet, "notify"), 0);
    char extra[512];
    /* retry_s = 1: a failed mail is due again a second later, so that the test can wait for
     * the retry by running jobs until it happens. */
    snprintf(extra, sizeof extra,
             "[curve]\ninsecure = true\n"
             "[smtp]\nurl = smtp://127.0.0.1:%d\nfrom = certfleet CA <ca@example.com>\n"
             "starttls = none\ntimeout_ms = 5000\n"
             "[notify]\nretry_s = 1\n",
             cf_test_smtp_port(f->smtp));
    assert_int_equal(cf_test_fleet_write_config(&f->fleet, extra), 0);
    static const char *const progs[][2] = {{"certfleet-broker", "broker.log"},
                                           {"certfleet-signer", "signer.log"},
                                           {"certfleet-notifier", "notifier0.log"},
                                           {"certfleet-notifier", "notifier1.log"}};
    cf_test_fleet_start_all(&f->fleet, progs, 4, f->pids, &f->npids, 3, 10000);
    f->client = cf_test_client(f->fleet.endpoint, 20000, 3);
    f->pg = cf_pg_new(f->fleet.conninfo);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fleet_t *f = *state;
    cf_client_destroy(&f->client);
    cf_pg_destroy(&f->pg);
    cf_test_fleet_stop_all(f->pids, f->npids);
    cf_test_smtp_destroy(&f->smtp);
    int reports = cf_test_fleet_cleanup(&f->fleet);
    free(f);
    assert_int_equal(reports, 0);
    return 0;
}

static long s_count(s_fleet_t *f, const char *sql)
{
    return cf_test_count(f->pg, sql);
}

/* ---- jobs ------------------------------------------------------------------------------ */

static int64_t s_int(const cf_reply_t *r, const char *key)
{
    const msgpack_object *o = cf_msgpack_map_get(cf_reply_result(r), key);
    assert_non_null(o);
    assert_true(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER);
    return (int64_t)o->via.u64;
}

/* The job must fail with CODE on FIELD; PARAMS consumed. */
static void s_expect_error(s_fleet_t *f, const char *type, json_t *params, const void *csr,
                           size_t csr_len, const char *code, const char *field)
{
    cf_reply_t *r = cf_test_call(f->client, type, params, csr, csr_len);
    assert_false(cf_reply_ok(r));
    const cf_error_t *e = cf_reply_error(r);
    if (strcmp(e->code, code) != 0 || strcmp(e->field, field) != 0)
        fail_msg("%s: expected %s on \"%s\", got %s on \"%s\": %s", type, code, field, e->code,
                 e->field, e->message);
    assert_true(e->message[0] != '\0');
    cf_reply_destroy(&r);
}

/* cert.issue from CA for CN, expiring SECONDS from now, watched by WATCHERS (a JSON list,
 * consumed, or NULL). The serial (caller frees); the reply's watchers into *LINKED when not
 * NULL (caller owns). */
static char *s_issue(s_fleet_t *f, const char *ca, const char *cn, int64_t seconds,
                     json_t *watchers, json_t **linked)
{
    json_t *p = json_pack("{s:s, s:s, s:I}", "ca", ca, "profile", "webserver", "expires",
                          (json_int_t)(time(NULL) + seconds));
    if (watchers)
        json_object_set_new(p, "watchers", watchers);
    cf_reply_t *r = cf_test_issue(f->client, p, cn);
    cf_test_assert_ok(r, cn);
    char *serial = cf_msgpack_strdup(cf_msgpack_map_get(cf_reply_result(r), "serial"));
    assert_non_null(serial);
    json_t *doc = cf_reply_to_json(r);
    json_t *got = json_object_get(json_object_get(doc, "result"), "watchers");
    if (watchers)
        assert_true(json_is_array(got));
    else
        assert_null(got);
    if (linked)
        *linked = json_incref(got);
    json_decref(doc);
    cf_reply_destroy(&r);
    return serial;
}

/* The counts of one notify.expiring result. */
typedef struct {
    int64_t due, sent, failed, skipped;
} s_counts_t;

static s_counts_t s_counts(const cf_reply_t *r)
{
    cf_test_assert_ok(r, "notify.expiring");
    return (s_counts_t){s_int(r, "due"), s_int(r, "sent"), s_int(r, "failed"), s_int(r, "skipped")};
}

/* One notify.expiring with PARAMS (consumed) that must succeed. */
static s_counts_t s_notify(s_fleet_t *f, json_t *params)
{
    cf_reply_t *r = cf_test_call(f->client, "notify.expiring", params, NULL, 0);
    s_counts_t c = s_counts(r);
    const msgpack_object *dry = cf_msgpack_map_get(cf_reply_result(r), "dry_run");
    assert_non_null(dry);
    assert_int_equal(dry->type, MSGPACK_OBJECT_BOOLEAN);
    cf_reply_destroy(&r);
    return c;
}

/* How many mails of the sink went to RCPT and hold NEEDLE (NULL: any). */
static int s_mails_to(s_fleet_t *f, const char *rcpt, const char *needle)
{
    int n = 0;
    for (size_t i = 0; i < cf_test_smtp_count(f->smtp); i++) {
        cf_test_smtp_mail_t m;
        assert_int_equal(cf_test_smtp_mail(f->smtp, i, &m), 0);
        if (strcmp(m.rcpt, rcpt) == 0 && (!needle || strstr(m.data, needle)))
            n++;
        cf_test_smtp_mail_free(&m);
    }
    return n;
}

/* ---- tests ----------------------------------------------------------------------------- */

/* Bad params and bad watcher addresses: an error naming the field, nothing written. */
static void test_bad_input(void **state)
{
    s_fleet_t *f = *state;
    X509_free(cf_test_ca_init(f->client, "root", NULL));
    const char *type = "notify.expiring";
    s_expect_error(f, type, json_pack("{s:s}", "thresholds", "30"), NULL, 0, "invalid_type",
                   "params.thresholds");
    s_expect_error(f, type, json_pack("{s:[]}", "thresholds"), NULL, 0, "invalid_value",
                   "params.thresholds");
    s_expect_error(f, type, json_pack("{s:[i, i]}", "thresholds", 7, 0), NULL, 0, "invalid_value",
                   "params.thresholds[1]");
    s_expect_error(f, type, json_pack("{s:[i]}", "thresholds", 3651), NULL, 0, "invalid_value",
                   "params.thresholds[0]");
    s_expect_error(f, type, json_pack("{s:[s]}", "thresholds", "7"), NULL, 0, "invalid_type",
                   "params.thresholds[0]");
    s_expect_error(f, type, json_pack("{s:i}", "limit", 0), NULL, 0, "invalid_value",
                   "params.limit");
    s_expect_error(f, type, json_pack("{s:s}", "limit", "10"), NULL, 0, "invalid_type",
                   "params.limit");
    s_expect_error(f, type, json_pack("{s:s}", "ca", "nosuch"), NULL, 0, "unknown_ca", "params.ca");
    s_expect_error(f, type, json_pack("{s:s}", "dry_run", "yes"), NULL, 0, "invalid_type",
                   "params.dry_run");
    s_expect_error(f, type, json_pack("{s:b}", "frobnicate", 1), NULL, 0, "unknown_field",
                   "params.frobnicate");

    int len;
    unsigned char *der = cf_test_csr("bad.example.com", &len);
    static const struct {
        const char *json;  /* the watchers param */
        const char *code;  /* expected error */
        const char *field; /* on this field */
    } cases[] = {
        {"\"a@example.com\"", "invalid_type", "params.watchers"},
        {"[\"ok@example.com\", \"not-an-address\"]", "invalid_value", "params.watchers[1]"},
        {"[\"a@b@example.com\"]", "invalid_value", "params.watchers[0]"},
        {"[\"a@example.com\\r\\nBcc: x@example.com\"]", "invalid_value", "params.watchers[0]"},
        {"[\"a b@example.com\"]", "invalid_value", "params.watchers[0]"},
        {"[\"a..b@example.com\"]", "invalid_value", "params.watchers[0]"},
        {"[\"a@-example.com\"]", "invalid_value", "params.watchers[0]"},
        {"[\"a@example\"]", "invalid_value", "params.watchers[0]"},
        {"[\"ok@example.com\", 42]", "invalid_type", "params.watchers[1]"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        json_t *p = json_pack("{s:s, s:s}", "ca", "root", "profile", "webserver");
        json_object_set_new(p, "watchers", json_loads(cases[i].json, JSON_DECODE_ANY, NULL));
        assert_non_null(json_object_get(p, "watchers"));
        s_expect_error(f, "cert.issue", p, der, (size_t)len, cases[i].code, cases[i].field);
    }
    /* 255 characters: one too many. */
    char longaddr[300];
    memset(longaddr, 'a', 64);
    snprintf(longaddr + 64, sizeof longaddr - 64, "@");
    while (strlen(longaddr) < 243)
        strcat(longaddr, "bbbbbbbbb.");
    strcat(longaddr, "example.com");
    longaddr[255] = '\0';
    longaddr[254] = 'm';
    assert_int_equal(strlen(longaddr), 255);
    s_expect_error(
        f, "cert.issue",
        json_pack("{s:s, s:s, s:[s]}", "ca", "root", "profile", "webserver", "watchers", longaddr),
        der, (size_t)len, "invalid_value", "params.watchers[0]");
    OPENSSL_free(der);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), 0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM watchers"), 0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM expiry_notices"), 0);
    assert_int_equal(cf_test_smtp_count(f->smtp), 0);
}

/* The right mails, exactly once, with both notifiers running many jobs at once. */
static void test_mail_once(void **state)
{
    s_fleet_t *f = *state;
    json_t *linked = NULL;
    /* a: two watchers, 2.5 days left: 30, 14, 7 and 3 are due at once; only 3 is mailed. */
    char *a =
        s_issue(f, "root", "a.example.com", 5 * S_DAY / 2,
                json_pack("[s, s, s]", "alice@example.com", "Bob@Example.com", "ALICE@example.com"),
                &linked);
    assert_int_equal(json_array_size(linked), 2);
    assert_string_equal(json_string_value(json_array_get(linked, 0)), "alice@example.com");
    assert_string_equal(json_string_value(json_array_get(linked, 1)), "Bob@Example.com");
    json_decref(linked);
    /* b: the same Bob in other letters (one watcher), an hour short of 10 days left: 14 is
     * mailed ("in 9 days"), 30 skipped. */
    char *b = s_issue(f, "root", "b.example.com", 10 * S_DAY - 3600,
                      json_pack("[s]", "bob@example.com"), &linked);
    assert_string_equal(json_string_value(json_array_get(linked, 0)), "Bob@Example.com");
    json_decref(linked);
    /* Not due: 40 days left; revoked; no watchers. */
    char *c = s_issue(f, "root", "c.example.com", 40 * S_DAY, json_pack("[s]", "carol@example.com"),
                      NULL);
    char *d =
        s_issue(f, "root", "d.example.com", 2 * S_DAY, json_pack("[s]", "dave@example.com"), NULL);
    char *e = s_issue(f, "root", "e.example.com", S_DAY / 2, NULL, NULL);
    char sql[256];
    snprintf(sql, sizeof sql, "UPDATE certificates SET revoked = true WHERE serial = '%s'", d);
    cf_test_sql(f->pg, sql);
    assert_int_equal(s_count(f, "SELECT count(*) FROM watchers"), 4);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificate_watchers"), 5);

    /* A dry run counts and lists, and writes and sends nothing. */
    cf_reply_t *r =
        cf_test_call(f->client, "notify.expiring", json_pack("{s:b}", "dry_run", 1), NULL, 0);
    s_counts_t dry = s_counts(r);
    assert_int_equal(dry.due, 3);
    assert_int_equal(dry.skipped, 7);
    assert_int_equal(dry.sent + dry.failed, 0);
    const msgpack_object *notices = cf_msgpack_map_get(cf_reply_result(r), "notices");
    assert_non_null(notices);
    assert_int_equal(notices->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(notices->via.array.size, 3);
    cf_reply_destroy(&r);
    assert_int_equal(s_count(f, "SELECT count(*) FROM expiry_notices"), 0);
    assert_int_equal(cf_test_smtp_count(f->smtp), 0);

    /* Eight jobs at once over both notifiers. */
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    json_t *none = json_object();
    cf_test_pack_params(&buf, none, NULL, 0);
    json_decref(none);
    for (int i = 0; i < 8; i++)
        assert_int_equal(
            cf_client_send(f->client, NULL, "notify.expiring", buf.data, buf.size, 0, NULL), 0);
    msgpack_sbuffer_destroy(&buf);
    int64_t sent = 0, failed = 0, skipped = 0;
    for (int i = 0; i < 8; i++) {
        cf_reply_t *one = cf_client_recv(f->client, 60000);
        assert_non_null(one);
        s_counts_t cnt = s_counts(one);
        sent += cnt.sent;
        failed += cnt.failed;
        skipped += cnt.skipped;
        cf_reply_destroy(&one);
    }
    assert_int_equal(sent, 3);
    assert_int_equal(failed, 0);
    assert_int_equal(skipped, 7);
    assert_int_equal(cf_test_smtp_count(f->smtp), 3);
    assert_int_equal(s_mails_to(f, "alice@example.com", NULL), 1);
    assert_int_equal(s_mails_to(f, "Bob@Example.com", NULL), 2);
    assert_int_equal(
        s_mails_to(f, "alice@example.com", "Subject: Certificate a.example.com expires in 2 days"),
        1);
    assert_int_equal(
        s_mails_to(f, "Bob@Example.com", "Subject: Certificate a.example.com expires in 2 days"),
        1);
    assert_int_equal(
        s_mails_to(f, "Bob@Example.com", "Subject: Certificate b.example.com expires in 9 days"),
        1);
    /* The serial (with colons), the CA, the sender and the renewal hint are in the mail. */
    char colons[128] = "";
    for (size_t i = 0; i < strlen(a); i += 2)
        snprintf(colons + strlen(colons), sizeof colons - strlen(colons), "%s%.2s", i ? ":" : "",
                 a + i);
    assert_int_equal(s_mails_to(f, "alice@example.com", colons), 1);
    assert_int_equal(s_mails_to(f, "alice@example.com", "Certificate authority:  root"), 1);
    assert_int_equal(s_mails_to(f, "alice@example.com", "certfleet cert sign --ca root"), 1);
    assert_int_equal(s_mails_to(f, "alice@example.com", "To: <alice@example.com>"), 1);
    assert_int_equal(s_mails_to(f, "alice@example.com", "From: certfleet CA <ca@example.com>"), 1);
    assert_int_equal(s_mails_to(f, "alice@example.com", "Message-ID: <"), 1);
    assert_int_equal(s_mails_to(f, "alice@example.com", "Date: "), 1);
    cf_test_smtp_mail_t m;
    assert_int_equal(cf_test_smtp_mail(f->smtp, 0, &m), 0);
    assert_string_equal(m.from, "ca@example.com");
    cf_test_smtp_mail_free(&m);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM expiry_notices n JOIN certificates c ON c.id = n.certificate_id "
             "WHERE c.serial = '%s' AND n.status = 'sent' AND n.threshold_days = 3",
             a);
    assert_int_equal(s_count(f, sql), 2);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM expiry_notices n JOIN certificates c ON c.id = n.certificate_id "
             "WHERE c.serial = '%s' AND n.status = 'sent' AND n.threshold_days = 14",
             b);
    assert_int_equal(s_count(f, sql), 1);
    assert_int_equal(s_count(f, "SELECT count(*) FROM expiry_notices WHERE status = 'sent'"), 3);
    assert_int_equal(s_count(f, "SELECT count(*) FROM expiry_notices WHERE status = 'skipped'"), 7);
    assert_int_equal(s_count(f, "SELECT count(*) FROM expiry_notices WHERE status = 'sent' AND "
                                "(attempts <> 1 OR sent_at IS NULL)"),
                     0);

    /* Again: nothing is due any more. */
    s_counts_t again = s_notify(f, json_object());
    assert_int_equal(again.due, 0);
    assert_int_equal(again.sent, 0);
    assert_int_equal(cf_test_smtp_count(f->smtp), 3);
    /* Only this CA, and thresholds of the job's own: still nothing twice. */
    again = s_notify(f, json_pack("{s:s, s:[i, i]}", "ca", "root", "thresholds", 3, 14));
    assert_int_equal(again.sent, 0);
    assert_int_equal(cf_test_smtp_count(f->smtp), 3);
    free(a);
    free(b);
    free(c);
    free(d);
    free(e);
}

/* The server down: failures, nothing marked sent; back: sent once by a later job. */
static void test_server_down(void **state)
{
    s_fleet_t *f = *state;
    size_t before = cf_test_smtp_count(f->smtp);
    cf_test_smtp_refuse(f->smtp, "refused@example.com");
    char *g = s_issue(f, "root", "g.example.com", 3 * S_DAY / 2,
                      json_pack("[s, s]", "erin@example.com", "frank@example.com"), NULL);
    assert_int_equal(cf_test_smtp_stop(f->smtp), 0);
    s_counts_t down = s_notify(f, json_pack("{s:[i]}", "thresholds", 3));
    assert_int_equal(down.due, 2);
    assert_int_equal(down.sent, 0);
    assert_int_equal(down.failed, 2);
    assert_int_equal(s_count(f, "SELECT count(*) FROM expiry_notices WHERE status = 'sent'"), 3);
    assert_int_equal(s_count(f, "SELECT count(*) FROM expiry_notices WHERE status = 'failed' "
                                "AND attempts = 1 AND last_error <> '' AND sent_at IS NULL"),
                     2);
    assert_int_equal(cf_test_smtp_count(f->smtp), before);

    /* A recipient the server refuses fails alone; the others go out. */
    char *h = s_issue(f, "root", "h.example.com", 3 * S_DAY / 2,
                      json_pack("[s]", "refused@example.com"), NULL);
    assert_int_equal(cf_test_smtp_start(f->smtp), 0);
    /* Run jobs until the retry time (1 s) has passed and both are sent. */
    int64_t sent = 0;
    for (int i = 0; i < 100 && sent < 2; i++) {
        s_counts_t c = s_notify(f, json_pack("{s:[i]}", "thresholds", 3));
        sent += c.sent;
        if (sent < 2)
            usleep(100 * 1000);
    }
    assert_int_equal(sent, 2);
    assert_int_equal(s_mails_to(f, "erin@example.com", "g.example.com"), 1);
    assert_int_equal(s_mails_to(f, "frank@example.com", "g.example.com"), 1);
    assert_int_equal(s_mails_to(f, "refused@example.com", NULL), 0);
    assert_int_equal(cf_test_smtp_count(f->smtp), before + 2);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM expiry_notices n JOIN certificates c ON c.id = n.certificate_id "
             "WHERE c.serial = '%s' AND n.status = 'failed' AND n.last_error LIKE '%%550%%'",
             h);
    assert_int_equal(s_count(f, sql), 1);
    /* Later jobs send nothing twice. */
    usleep(1100 * 1000);
    s_counts_t after = s_notify(f, json_pack("{s:[i]}", "thresholds", 3));
    assert_int_equal(after.sent, 0);
    assert_int_equal(after.failed, 1); /* the refused one, tried again */
    assert_int_equal(cf_test_smtp_count(f->smtp), before + 2);
    free(g);
    free(h);
}

/* A notifier with no sender refuses the job before it records anything. */
static void test_not_configured(void **state)
{
    s_fleet_t *f = *state;
    char *k =
        s_issue(f, "root", "k.example.com", S_DAY / 2, json_pack("[s]", "kim@example.com"), NULL);
    for (int i = 2; i < 4; i++) {
        cf_test_kill(f->pids[i], SIGTERM);
        f->pids[i] = 0;
    }
    char log[400];
    snprintf(log, sizeof log, "%s/notifier2.log", f->fleet.dir);
    static const char *const env[] = {"CERTFLEET_SMTP_FROM=", NULL};
    f->pids[4] = cf_test_spawn(log, env, "certfleet-notifier", "--config", f->fleet.config, NULL);
    assert_true(f->pids[4] > 0);
    f->npids = 5;
    if (cf_test_fleet_wait_workers(&f->fleet, 2, 10000) != 0)
        fail_msg("broker never reported 2 workers");
    long notices = s_count(f, "SELECT count(*) FROM expiry_notices");
    s_expect_error(f, "notify.expiring", json_object(), NULL, 0, "smtp_not_configured", "");
    assert_int_equal(s_count(f, "SELECT count(*) FROM expiry_notices"), notices);
    /* A dry run needs no sender. */
    s_counts_t dry = s_notify(f, json_pack("{s:b}", "dry_run", 1));
    assert_int_equal(dry.due, 1);
    free(k);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_input),
        cmocka_unit_test(test_mail_once),
        cmocka_unit_test(test_server_down),
        cmocka_unit_test(test_not_configured),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
