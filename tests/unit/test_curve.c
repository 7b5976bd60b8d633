/* cf_curve: grants parsed from certificate metadata, job type patterns, CA lists, the
 * authorization of jobs (broker side and worker side), the grant table over a directory of
 * public certificates, and the [curve] settings a process needs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <czmq.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cf_config.h"
#include "cf_curve.h"
#include "cf_job.h"
#include "cf_msgpack.h"

/* A job of TYPE whose params are the JSON object PARAMS (consumed). */
static cf_job_t *s_job(const char *type, json_t *params)
{
    msgpack_sbuffer p;
    msgpack_sbuffer_init(&p);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &p, msgpack_sbuffer_write);
    assert_int_equal(cf_json_to_msgpack(params, &pk), 0);
    json_decref(params);
    uint8_t id[CF_JOB_ID_SIZE];
    cf_job_id_random(id);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cf_job_pack(&buf, id, type, 0, p.data, p.size);
    cf_error_t err = {0};
    cf_job_t *job = cf_job_decode(buf.data, buf.size, &err, NULL, NULL);
    assert_non_null(job);
    msgpack_sbuffer_destroy(&p);
    msgpack_sbuffer_destroy(&buf);
    return job;
}

static cf_grant_t *s_grant(const char *role, const char *types, const char *cas)
{
    char err[256] = "";
    cf_grant_t *g = cf_grant_new("tester", role, types, cas, err, sizeof err);
    if (!g)
        fail_msg("grant refused: %s", err);
    return g;
}

/* Authorize TYPE with PARAMS; returns 0 or -1, the error and the acme flag. */
static int s_authorize(const cf_grant_t *g, const char *type, json_t *params, bool *acme,
                       cf_error_t *err)
{
    cf_job_t *job = s_job(type, params);
    cf_error_clear(err);
    int rc = cf_grant_authorize(g, job, acme, err);
    cf_job_destroy(&job);
    return rc;
}

static void test_grant_parsing(void **state)
{
    char err[256];
    cf_grant_t *g = s_grant(" client , worker ", "cert.issue, crl.*", "root,@acme");
    assert_string_equal(cf_grant_name(g), "tester");
    assert_true(cf_grant_is_client(g));
    assert_true(cf_grant_is_worker(g));
    cf_grant_destroy(&g);
    assert_null(g);
    cf_grant_destroy(&g);

    g = s_grant("worker", NULL, NULL);
    assert_false(cf_grant_is_client(g));
    assert_true(cf_grant_is_worker(g));
    cf_grant_destroy(&g);

    /* Malformed metadata is refused with a reason naming the key and the bad part. */
    struct {
        const char *role, *types, *cas, *says;
    } bad[] = {
        {NULL, "*", "*", "no role"},
        {"", "*", "*", "no role"},
        {"admin", "*", "*", "unknown role \"admin\""},
        {"client", "Cert.Issue", "*", "\"Cert.Issue\""},
        {"client", "cert.", "*", "\"cert.\""},
        {"client", "cert*", "*", "\"cert*\""},
        {"client", ".*", "*", "\".*\""},
        {"client", "*", "root ca", "\"root ca\""},
        {"client", "*", "@all", "\"@all\""},
        {"client", "*", "-x", "\"-x\""},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        err[0] = '\0';
        assert_null(cf_grant_new("k", bad[i].role, bad[i].types, bad[i].cas, err, sizeof err));
        if (!strstr(err, bad[i].says) || !strstr(err, "\"k\""))
            fail_msg("case %zu: \"%s\" lacks \"%s\"", i, err, bad[i].says);
    }
}

static void test_type_patterns(void **state)
{
    cf_grant_t *g = s_grant("client", "sys.echo,cert.*", "");
    assert_true(cf_grant_allows_type(g, "sys.echo"));
    assert_true(cf_grant_allows_type(g, "cert.issue"));
    assert_true(cf_grant_allows_type(g, "cert.revoke"));
    assert_false(cf_grant_allows_type(g, "certx.issue"));
    assert_false(cf_grant_allows_type(g, "cert"));
    assert_false(cf_grant_allows_type(g, "ca.init"));
    assert_false(cf_grant_allows_type(g, "sys.echoes"));
    /* Always allowed: they reveal nothing and prove the path works. */
    assert_true(cf_grant_allows_type(g, "broker.status"));
    assert_true(cf_grant_allows_type(g, "sys.ping"));
    cf_grant_destroy(&g);

    g = s_grant("client", "*", "");
    assert_true(cf_grant_allows_type(g, "ca.init"));
    assert_true(cf_grant_allows_type(g, "anything.at.all"));
    cf_grant_destroy(&g);

    g = s_grant("client", NULL, NULL);
    assert_false(cf_grant_allows_type(g, "sys.echo"));
    assert_true(cf_grant_allows_type(g, "sys.ping"));
    cf_grant_destroy(&g);
}

static void test_ca_lists(void **state)
{
    cf_grant_t *g = s_grant("client", "*", "root,inter-1");
    assert_int_equal(cf_grant_ca(g, "root"), CF_GRANT_CA_ALLOW);
    assert_int_equal(cf_grant_ca(g, "inter-1"), CF_GRANT_CA_ALLOW);
    assert_int_equal(cf_grant_ca(g, "Root"), CF_GRANT_CA_DENY);
    assert_int_equal(cf_grant_ca(g, "other"), CF_GRANT_CA_DENY);
    cf_grant_destroy(&g);

    g = s_grant("client", "*", "root,@acme");
    assert_int_equal(cf_grant_ca(g, "root"), CF_GRANT_CA_ALLOW);
    assert_int_equal(cf_grant_ca(g, "other"), CF_GRANT_CA_ACME);
    cf_grant_destroy(&g);

    g = s_grant("client", "*", "*");
    assert_int_equal(cf_grant_ca(g, "anything"), CF_GRANT_CA_ALLOW);
    cf_grant_destroy(&g);
}

static void test_authorize(void **state)
{
    cf_error_t err;
    bool acme = true;
    cf_grant_t *g = s_grant("client", "cert.*,crl.build,ca.init", "root");

    assert_int_equal(s_authorize(g, "cert.issue", json_pack("{s:s}", "ca", "root"), &acme, &err),
                     0);
    assert_false(acme);

    assert_int_equal(s_authorize(g, "ocsp.keygen", json_pack("{s:s}", "ca", "root"), &acme, &err),
                     -1);
    assert_string_equal(err.code, "forbidden");
    assert_string_equal(err.field, "type");
    assert_non_null(strstr(err.message, "client \"tester\""));

    assert_int_equal(s_authorize(g, "crl.build", json_pack("{s:s}", "ca", "other"), &acme, &err),
                     -1);
    assert_string_equal(err.field, "params.ca");
    assert_non_null(strstr(err.message, "\"other\""));

    /* ca.init names CAs in name and parent as well. */
    assert_int_equal(s_authorize(g, "ca.init",
                                 json_pack("{s:s, s:s}", "name", "sub", "parent", "root"), &acme,
                                 &err),
                     -1);
    assert_string_equal(err.field, "params.name");
    assert_int_equal(s_authorize(g, "ca.init",
                                 json_pack("{s:s, s:s}", "name", "root", "parent", "x"), &acme,
                                 &err),
                     -1);
    assert_string_equal(err.field, "params.parent");
    /* A nil parent is a root: nothing to check. */
    assert_int_equal(
        s_authorize(g, "ca.init", json_pack("{s:s, s:n}", "name", "root", "parent"), &acme, &err),
        0);

    /* A CA param that is no CA name is refused. */
    assert_int_equal(s_authorize(g, "cert.issue", json_pack("{s:i}", "ca", 3), &acme, &err), -1);
    assert_string_equal(err.field, "params.ca");
    /* cert.revoke without a CA could reach any CA's certificates. */
    assert_int_equal(s_authorize(g, "cert.revoke", json_pack("{s:s}", "serial", "0A"), &acme, &err),
                     -1);
    assert_string_equal(err.field, "params.ca");
    /* A job that names no CA needs only its type. */
    assert_int_equal(s_authorize(g, "cert.import", json_object(), &acme, &err), 0);
    assert_int_equal(s_authorize(g, "sys.ping", json_object(), &acme, &err), 0);
    cf_grant_destroy(&g);

    /* "@acme": allowed here, checked by the worker. */
    g = s_grant("client", "cert.issue", "@acme");
    assert_int_equal(s_authorize(g, "cert.issue", json_pack("{s:s}", "ca", "shop"), &acme, &err),
                     0);
    assert_true(acme);
    cf_grant_destroy(&g);

    /* "*": every CA, even ones with odd names (the worker judges the value). */
    g = s_grant("client", "*", "*");
    assert_int_equal(s_authorize(g, "cert.revoke", json_pack("{s:s}", "serial", "0A"), &acme, &err),
                     0);
    assert_false(acme);
    cf_grant_destroy(&g);

    /* A worker key may not submit jobs at all. */
    g = s_grant("worker", "*", "*");
    assert_int_equal(s_authorize(g, "sys.ping", json_object(), &acme, &err), -1);
    assert_string_equal(err.code, "forbidden");
    cf_grant_destroy(&g);
}

/* The worker's lookup: CAs "shop" (ACME on) and "plain" (off); "down" fails. */
static int s_acme_lookup(void *arg, const char *ca)
{
    int *calls = arg;
    (*calls)++;
    if (strcmp(ca, "down") == 0)
        return -1;
    return strcmp(ca, "shop") == 0 ? 1 : 0;
}

static void test_worker_check(void **state)
{
    cf_grant_t *g = s_grant("client", "cert.issue,ca.init", "root,@acme");
    msgpack_sbuffer auth;
    msgpack_sbuffer_init(&auth);
    assert_int_equal(cf_grant_pack_auth(g, &auth), 0);
    cf_grant_destroy(&g);
    cf_error_t err = {0};
    int calls = 0;

    cf_job_t *job = s_job("cert.issue", json_pack("{s:s}", "ca", "shop"));
    assert_int_equal(cf_curve_check_auth(auth.data, auth.size, job, s_acme_lookup, &calls, &err),
                     0);
    assert_int_equal(calls, 1);
    cf_job_destroy(&job);

    /* Named CAs need no lookup. */
    job = s_job("cert.issue", json_pack("{s:s}", "ca", "root"));
    assert_int_equal(cf_curve_check_auth(auth.data, auth.size, job, s_acme_lookup, &calls, &err),
                     0);
    assert_int_equal(calls, 1);
    cf_job_destroy(&job);

    job = s_job("cert.issue", json_pack("{s:s}", "ca", "plain"));
    assert_int_equal(cf_curve_check_auth(auth.data, auth.size, job, s_acme_lookup, &calls, &err),
                     -1);
    assert_string_equal(err.code, "forbidden");
    assert_string_equal(err.field, "params.ca");
    assert_non_null(strstr(err.message, "client \"tester\" may not use CA \"plain\""));
    cf_job_destroy(&job);

    job = s_job("ca.init", json_pack("{s:s, s:s}", "name", "new", "parent", "shop"));
    assert_int_equal(cf_curve_check_auth(auth.data, auth.size, job, s_acme_lookup, &calls, &err),
                     -1);
    assert_string_equal(err.field, "params.name");
    cf_job_destroy(&job);

    job = s_job("cert.issue", json_pack("{s:s}", "ca", "down"));
    assert_int_equal(cf_curve_check_auth(auth.data, auth.size, job, s_acme_lookup, &calls, &err),
                     -2);
    assert_string_equal(err.code, "unavailable");
    cf_job_destroy(&job);

    /* An unreadable frame fails closed. */
    job = s_job("cert.issue", json_pack("{s:s}", "ca", "root"));
    static const uint8_t junk[] = {0xc1, 0x00};
    assert_int_equal(cf_curve_check_auth(junk, sizeof junk, job, s_acme_lookup, &calls, &err), -1);
    assert_string_equal(err.code, "forbidden");
    static const uint8_t empty_map[] = {0x80};
    assert_int_equal(
        cf_curve_check_auth(empty_map, sizeof empty_map, job, s_acme_lookup, &calls, &err), -1);
    cf_job_destroy(&job);
    msgpack_sbuffer_destroy(&auth);
}

/* Write a public certificate with the grant into DIR/NAME.pub; returns its key (caller frees). */
static char *s_write_cert(const char *dir, const char *name, const char *role, const char *types)
{
    zcert_t *cert = zcert_new();
    zcert_set_meta(cert, "name", "%s", name);
    if (role)
        zcert_set_meta(cert, "role", "%s", role);
    if (types)
        zcert_set_meta(cert, "job_types", "%s", types);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.pub", dir, name);
    assert_int_equal(zcert_save_public(cert, path), 0);
    char *key = strdup(zcert_public_txt(cert));
    zcert_destroy(&cert);
    return key;
}

static void test_grant_table(void **state)
{
    char dir[] = "/tmp/certfleet-curve-unit.XXXXXX";
    assert_non_null(mkdtemp(dir));
    char *alice = s_write_cert(dir, "alice", "client", "sys.echo");
    char *bob = s_write_cert(dir, "bob", "worker", NULL);
    char *mallory = s_write_cert(dir, "mallory", "root", NULL);
    char junk[600];
    snprintf(junk, sizeof junk, "%s/README", dir);
    FILE *f = fopen(junk, "w");
    fputs("not a certificate\n", f);
    fclose(f);

    cf_grants_t *t = cf_grants_new(dir);
    assert_non_null(t);
    assert_int_equal(cf_grants_refresh(t), 1);
    assert_int_equal(cf_grants_size(t), 2);
    const cf_grant_t *g = cf_grants_lookup(t, alice);
    assert_non_null(g);
    assert_string_equal(cf_grant_name(g), "alice");
    assert_true(cf_grant_is_client(g));
    assert_true(cf_grant_is_worker(cf_grants_lookup(t, bob)));
    /* A key with a bad grant has no rights (it is left out and logged). */
    assert_null(cf_grants_lookup(t, mallory));
    assert_null(cf_grants_lookup(t, NULL));
    /* Nothing changed: nothing reloaded. */
    assert_int_equal(cf_grants_refresh(t), 0);

    /* A removed file takes its key away; an added one brings its key. */
    char path[600];
    snprintf(path, sizeof path, "%s/alice.pub", dir);
    assert_int_equal(unlink(path), 0);
    char *carol = s_write_cert(dir, "carol", "client,worker", "*");
    assert_int_equal(cf_grants_refresh(t), 1);
    assert_null(cf_grants_lookup(t, alice));
    assert_non_null(cf_grants_lookup(t, carol));
    assert_int_equal(cf_grants_size(t), 2);

    /* A directory that went away keeps the last table. */
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
    assert_int_equal(cf_grants_refresh(t), -1);
    assert_int_equal(cf_grants_size(t), 2);
    cf_grants_destroy(&t);
    assert_null(t);
    free(alice);
    free(bob);
    free(mallory);
    free(carol);
}

static void test_settings(void **state)
{
    char err[512];
    cf_config_t *cfg = cf_config_new();
    /* Nothing set: refused, naming the settings. */
    assert_null(cf_curve_new(cfg, CF_CURVE_CLIENT, err, sizeof err));
    assert_non_null(strstr(err, "[curve] secret_key_file"));
    assert_non_null(strstr(err, "broker_public_key"));
    assert_non_null(strstr(err, "insecure = true"));
    assert_null(cf_curve_new(cfg, CF_CURVE_SERVER, err, sizeof err));
    assert_non_null(strstr(err, "clients_dir"));

    char dir[] = "/tmp/certfleet-curve-unit.XXXXXX";
    assert_non_null(mkdtemp(dir));
    zcert_t *server = zcert_new(), *client = zcert_new();
    char spath[600], cpath[600], ppath[600];
    snprintf(spath, sizeof spath, "%s/broker.key", dir);
    snprintf(cpath, sizeof cpath, "%s/me.key", dir);
    snprintf(ppath, sizeof ppath, "%s/broker.pub", dir);
    assert_int_equal(zcert_save_secret(server, spath), 0);
    assert_int_equal(zcert_save_public(server, ppath), 0);
    assert_int_equal(zcert_save_secret(client, cpath), 0);

    cf_config_set(cfg, "curve", "secret_key_file", cpath);
    cf_config_set(cfg, "curve", "broker_public_key", "short");
    assert_null(cf_curve_new(cfg, CF_CURVE_CLIENT, err, sizeof err));
    assert_non_null(strstr(err, "40 characters of Z85"));
    cf_config_set(cfg, "curve", "broker_public_key", "");
    cf_config_set(cfg, "curve", "broker_public_key_file", ppath);
    cf_curve_t *c = cf_curve_new(cfg, CF_CURVE_CLIENT, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_false(cf_curve_insecure(c));
    assert_string_equal(cf_curve_public_key(c), zcert_public_txt(client));
    cf_curve_destroy(&c);

    /* The public file is no secret key. */
    cf_config_set(cfg, "curve", "secret_key_file", ppath);
    assert_null(cf_curve_new(cfg, CF_CURVE_CLIENT, err, sizeof err));
    assert_non_null(strstr(err, "holds no secret key"));
    cf_config_set(cfg, "curve", "secret_key_file", "/nonexistent/me.key");
    assert_null(cf_curve_new(cfg, CF_CURVE_CLIENT, err, sizeof err));
    assert_non_null(strstr(err, "/nonexistent/me.key"));

    /* The broker needs an existing clients_dir. */
    cf_config_set(cfg, "curve", "secret_key_file", spath);
    cf_config_set(cfg, "curve", "clients_dir", "/nonexistent");
    assert_null(cf_curve_new(cfg, CF_CURVE_SERVER, err, sizeof err));
    assert_non_null(strstr(err, "not a directory"));
    cf_config_set(cfg, "curve", "clients_dir", dir);
    c = cf_curve_new(cfg, CF_CURVE_SERVER, err, sizeof err);
    if (!c)
        fail_msg("%s", err);
    assert_string_equal(cf_curve_clients_dir(c), dir);
    cf_curve_destroy(&c);

    /* insecure: nothing needed, nothing applied. */
    cf_config_t *plain = cf_config_new();
    cf_config_set(plain, "curve", "insecure", "true");
    c = cf_curve_new(plain, CF_CURVE_SERVER, err, sizeof err);
    assert_non_null(c);
    assert_true(cf_curve_insecure(c));
    assert_null(cf_curve_public_key(c));
    cf_curve_destroy(&c);
    cf_config_destroy(&plain);

    zcert_destroy(&server);
    zcert_destroy(&client);
    cf_config_destroy(&cfg);
    char cmd[700];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_grant_parsing), cmocka_unit_test(test_type_patterns),
        cmocka_unit_test(test_ca_lists),      cmocka_unit_test(test_authorize),
        cmocka_unit_test(test_worker_check),  cmocka_unit_test(test_grant_table),
        cmocka_unit_test(test_settings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
