/* crl.build end to end: a real broker, a signer and two certfleet-crl workers, PostgreSQL and
 * Redis on loopback. Every CRL is checked by `openssl crl -verify`; `openssl verify -crl_check`
 * refuses a revoked leaf and accepts a good one with the CRL the chain's URLs point at; a
 * sharded CA builds each shard with its own numbers and URL; many builds of one CRL in flight
 * across both workers draw strictly increasing numbers; bad input changes nothing.
 * Certificates are revoked with SQL here (cert.revoke is another job's test), but for the race
 * of a revocation with the first CRL of a scope, where cert.revoke meets a build's lock. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cf_client.h"
#include "cf_crl_lock.h"
#include "cf_msgpack.h"
#include "cf_pg.h"
#include "cf_redis.h"
#include "cf_revocation.h"
#include "cf_test.h"
#include "cf_test_fleet.h"
#include "cf_test_jobs.h"
#include "cf_x509_ext.h"

#define S_HOST "127.0.0.1:8080"

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config, keys, endpoint */
    pid_t pids[4];         /* broker, signer, crl, crl */
    int npids;             /* slots used */
    cf_client_t *client;   /* one job at a time, or many in flight */
    cf_pg_t *pg;           /* the test's own connection */
} s_fleet_t;

/* ---- the fleet ------------------------------------------------------------------------- */

static int s_setup(void **state)
{
    CF_TEST_NEEDS_SERVICES();
    s_fleet_t *f = calloc(1, sizeof *f);
    assert_int_equal(cf_test_fleet_init(&f->fleet, "crl"), 0);
    assert_int_equal(cf_test_fleet_write_config(&f->fleet, "[broker]\nqueue_max = 10000\n"
                                                           "[ca]\ndefault_hostname = " S_HOST "\n"
                                                           "[crl]\nlock_wait_ms = 20000\n"),
                     0);
    static const char *const progs[][2] = {{"certfleet-broker", "broker.log"},
                                           {"certfleet-signer", "signer.log"},
                                           {"certfleet-crl", "crl0.log"},
                                           {"certfleet-crl", "crl1.log"}};
    cf_test_fleet_start_all(&f->fleet, progs, 4, f->pids, &f->npids, 3, 10000);
    f->client = cf_test_client(f->fleet.endpoint, 10000, 6);
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
    int reports = cf_test_fleet_cleanup(&f->fleet);
    free(f);
    assert_int_equal(reports, 0);
    return 0;
}

static char *s_query(s_fleet_t *f, const char *sql)
{
    return cf_test_query(f->pg, sql);
}

static long s_count(s_fleet_t *f, const char *sql)
{
    char *v = s_query(f, sql);
    long n = atol(v);
    free(v);
    return n;
}

static void s_sql(s_fleet_t *f, const char *sql)
{
    cf_test_sql(f->pg, sql);
}

/* ---- jobs ------------------------------------------------------------------------------ */

/* One job; PARAMS is consumed. Caller owns the reply. */
static cf_reply_t *s_call(s_fleet_t *f, const char *type, json_t *params, const void *csr,
                          size_t csr_len)
{
    return cf_test_call(f->client, type, params, csr, csr_len);
}

#define s_assert_ok cf_test_assert_ok

static int64_t s_int(const cf_reply_t *r, const char *key)
{
    const msgpack_object *o = cf_msgpack_map_get(cf_reply_result(r), key);
    assert_non_null(o);
    assert_true(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)o->via.u64 : o->via.i64;
}

/* ca.init NAME under PARENT (NULL: a root) with KEY_TYPE and CRL_SHARDS. Caller owns. */
static X509 *s_ca(s_fleet_t *f, const char *name, const char *parent, const char *key_type,
                  int shards)
{
    json_t *p = json_pack("{s:s, s:i}", "key_type", key_type, "crl_shards", shards);
    if (parent)
        json_object_set_new(p, "parent", json_string(parent));
    return cf_test_ca_init(f->client, name, p);
}

/* cert.issue from CA for CN; *SERIAL (caller frees) and the certificate (caller owns). */
static X509 *s_issue(s_fleet_t *f, const char *ca, const char *cn, char **serial)
{
    cf_reply_t *r =
        cf_test_issue(f->client, json_pack("{s:s, s:s}", "ca", ca, "profile", "webserver"), cn);
    s_assert_ok(r, "cert.issue");
    X509 *cert = cf_test_reply_cert(r, "der");
    *serial = cf_msgpack_strdup(cf_msgpack_map_get(cf_reply_result(r), "serial"));
    assert_non_null(*serial);
    cf_reply_destroy(&r);
    return cert;
}

static void s_revoke(s_fleet_t *f, const char *serial, const char *reason)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE certificates SET revoked = true, revoked_date = now() - interval '1 minute', "
             "revoked_reason = '%s', compromised = now() - interval '1 hour' WHERE serial = '%s'",
             reason, serial);
    s_sql(f, sql);
}

/* crl.build that must succeed; PARAMS consumed. Caller owns the reply. */
static cf_reply_t *s_build(s_fleet_t *f, json_t *params)
{
    cf_reply_t *r = s_call(f, "crl.build", params, NULL, 0);
    s_assert_ok(r, "crl.build");
    return r;
}

/* The stored CRL of CA/SCOPE/SHARD written to DIR/FILE (DER) and FILE.pem; it must pass
 * `openssl crl -verify` against CAFILE. Returns the parsed CRL (caller frees). */
static X509_CRL *s_stored_crl(s_fleet_t *f, const char *ca, const char *scope, int shard,
                              const char *cafile, const char *file)
{
    char sql[512];
    snprintf(sql, sizeof sql,
             "SELECT encode(c.der, 'base64') FROM crls c JOIN certificate_authorities a ON "
             "a.id = c.ca_id WHERE a.name = '%s' AND c.scope = '%s' AND c.shard = %d",
             ca, scope, shard);
    char *b64 = s_query(f, sql);
    assert_true(strlen(b64) > 0);
    /* encode() breaks lines; strip them before decoding. */
    char *w = b64;
    for (char *p = b64; *p; p++)
        if (*p != '\n')
            *w++ = *p;
    *w = '\0';
    size_t len = 0;
    unsigned char *der = cf_base64_decode(b64, strlen(b64), &len);
    free(b64);
    assert_non_null(der);
    char path[512], cmd[2048];
    snprintf(path, sizeof path, "%s/%s", f->fleet.dir, file);
    FILE *out = fopen(path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(der, 1, len, out), len);
    fclose(out);
    snprintf(cmd, sizeof cmd,
             "openssl crl -inform DER -in '%s' -CAfile '%s' -noout -verify >'%s.verify' 2>&1 && "
             "grep -q 'verify OK' '%s.verify' && openssl crl -inform DER -in '%s' -out '%s.pem'",
             path, cafile, path, path, path, path);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s.verify' >&2", path);
        (void)!system(cmd);
        fail_msg("openssl crl -verify refused %s", file);
    }
    const unsigned char *p = der;
    X509_CRL *crl = d2i_X509_CRL(NULL, &p, (long)len);
    assert_non_null(crl);
    free(der);
    return crl;
}

static void s_write_pem(s_fleet_t *f, const char *file, X509 *a, X509 *b, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", f->fleet.dir, file);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509(out, a), 1);
    if (b)
        assert_int_equal(PEM_write_X509(out, b), 1);
    fclose(out);
}

/* `openssl verify` with FLAGS and CRL PEM files; its exit status (0: accepted). */
static int s_verify(s_fleet_t *f, const char *root, const char *inter, const char *crls, X509 *leaf,
                    const char *flags)
{
    char lp[512], cmd[3072];
    s_write_pem(f, "leaf.pem", leaf, NULL, lp, sizeof lp);
    snprintf(cmd, sizeof cmd,
             "openssl verify %s -CAfile '%s' -untrusted '%s' %s '%s' >'%s/verify.out' 2>&1", flags,
             root, inter, crls, lp, f->fleet.dir);
    int status = system(cmd);
    snprintf(cmd, sizeof cmd, "cat '%s/verify.out' >&2", f->fleet.dir);
    (void)!system(cmd);
    return status;
}

/* The first full-name URI of the CRL's IssuingDistributionPoint, or "" (caller frees). */
static char *s_idp_uri(X509_CRL *crl, const char *flag)
{
    cf_error_t err = {0};
    json_t *exts = cf_extensions_from_crl(crl, &err);
    assert_non_null(exts);
    json_t *idp = cf_extensions_find(exts, "issuing_distribution_point");
    char *uri = strdup("");
    if (idp) {
        json_t *v = json_object_get(idp, "value");
        if (flag)
            assert_true(json_is_true(json_object_get(v, flag)));
        json_t *gn = json_array_get(json_object_get(v, "full_name"), 0);
        if (gn) {
            free(uri);
            uri = strdup(json_string_value(json_object_get(gn, "value")));
        }
    }
    json_decref(exts);
    return uri;
}

static int64_t s_number(X509_CRL *crl)
{
    ASN1_INTEGER *n = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    assert_non_null(n);
    int64_t v = -1;
    ASN1_INTEGER_get_int64(&v, n);
    ASN1_INTEGER_free(n);
    return v;
}

/* ---- 1. a chain: root -> intermediate -> leaves, checked by openssl verify -crl_check --- */

static void test_chain(void **state)
{
    s_fleet_t *f = *state;
    X509 *root = s_ca(f, "root", NULL, "EC", 1);
    X509 *inter = s_ca(f, "inter", "root", "RSA", 1);
    char *good_serial, *bad_serial;
    X509 *good = s_issue(f, "inter", "good.example.com", &good_serial);
    X509 *bad = s_issue(f, "inter", "bad.example.com", &bad_serial);
    s_revoke(f, bad_serial, "key_compromise");
    /* A revoked intermediate of another branch shows up in the root's ca CRL. */
    X509 *other = s_ca(f, "other", "root", "EC", 1);
    s_sql(f, "UPDATE certificate_authorities SET revoked = true, revoked_date = now(), "
             "revoked_reason = 'superseded' WHERE name = 'other'");

    char rootf[400], interf[400], bothf[400];
    s_write_pem(f, "root.pem", root, NULL, rootf, sizeof rootf);
    s_write_pem(f, "inter.pem", inter, NULL, interf, sizeof interf);
    s_write_pem(f, "both.pem", root, inter, bothf, sizeof bothf);

    /* The default scope (all) of the intermediate. */
    cf_reply_t *r = s_build(f, json_pack("{s:s}", "ca", "inter"));
    assert_int_equal(s_int(r, "number"), 0);
    assert_int_equal(s_int(r, "entries"), 1);
    assert_int_equal(s_int(r, "shard"), 0);
    assert_true(s_int(r, "next_update") - s_int(r, "this_update") == 86400);
    int64_t size = s_int(r, "size");
    cf_reply_destroy(&r);
    X509_CRL *crl = s_stored_crl(f, "inter", "all", 0, bothf, "inter-all.der");
    char *uri = s_idp_uri(crl, NULL);
    assert_string_equal(uri, "http://" S_HOST "/crl/inter.crl");
    free(uri);
    assert_int_equal(s_number(crl), 0);
    assert_int_equal(sk_X509_REVOKED_num(X509_CRL_get_REVOKED(crl)), 1);
    unsigned char *der = NULL;
    assert_int_equal(i2d_X509_CRL(crl, &der), size);
    OPENSSL_free(der);
    X509_CRL_free(crl);
    assert_int_equal(
        s_count(f, "SELECT count(*) FROM crls WHERE built_by <> '' AND NOT stale AND entries = 1"),
        1);

    char crls[1200], dir[300];
    snprintf(dir, sizeof dir, "%s", f->fleet.dir);
    snprintf(crls, sizeof crls, "-CRLfile '%s/inter-all.der.pem'", dir);
    assert_int_not_equal(s_verify(f, rootf, interf, crls, bad, "-crl_check"), 0);
    assert_int_equal(s_verify(f, rootf, interf, crls, good, "-crl_check"), 0);

    /* The user scope: same URL, onlyContainsUserCerts, its own numbers. */
    r = s_build(f, json_pack("{s:s, s:s, s:i}", "ca", "inter", "scope", "user", "expires", 600));
    assert_int_equal(s_int(r, "number"), 0);
    cf_reply_destroy(&r);
    crl = s_stored_crl(f, "inter", "user", 0, bothf, "inter-user.der");
    uri = s_idp_uri(crl, "only_contains_user_certs");
    assert_string_equal(uri, "http://" S_HOST "/crl/inter.crl");
    free(uri);
    X509_CRL_free(crl);

    /* The root's ca scope: the URL the intermediates carry; "other" is listed. */
    r = s_build(f, json_pack("{s:s, s:s}", "ca", "root", "scope", "ca"));
    assert_int_equal(s_int(r, "entries"), 1);
    cf_reply_destroy(&r);
    crl = s_stored_crl(f, "root", "ca", 0, rootf, "root-ca.der");
    uri = s_idp_uri(crl, "only_contains_ca_certs");
    assert_string_equal(uri, "http://" S_HOST "/crl/root/ca.crl");
    free(uri);
    X509_CRL_free(crl);
    /* The intermediates themselves against the root's ca CRL: "other" is revoked. */
    snprintf(crls, sizeof crls, "-CRLfile '%s/root-ca.der.pem'", dir);
    assert_int_equal(s_verify(f, rootf, rootf, crls, inter, "-crl_check"), 0);
    assert_int_not_equal(s_verify(f, rootf, rootf, crls, other, "-crl_check"), 0);
    /* The whole chain: a self-signed root carries no distribution point, so it is checked
     * against a root CRL without IssuingDistributionPoint (forced out). */
    r = s_build(f, json_pack("{s:s, s:b}", "ca", "root", "include_issuing_distribution_point", 0));
    assert_int_equal(s_int(r, "entries"), 1);
    cf_reply_destroy(&r);
    crl = s_stored_crl(f, "root", "all", 0, rootf, "root-all.der");
    assert_null(X509_CRL_get_ext_d2i(crl, NID_issuing_distribution_point, NULL, NULL));
    X509_CRL_free(crl);
    snprintf(crls, sizeof crls, "-CRLfile '%s/inter-user.der.pem' -CRLfile '%s/root-all.der.pem'",
             dir, dir);
    assert_int_equal(s_verify(f, rootf, interf, crls, good, "-crl_check_all"), 0);
    assert_int_not_equal(s_verify(f, rootf, interf, crls, bad, "-crl_check_all"), 0);

    /* if_stale: a fresh CRL is answered as stored; a stale one is built again. */
    r = s_build(f, json_pack("{s:s, s:b}", "ca", "inter", "if_stale", 1));
    assert_int_equal(s_int(r, "number"), 0);
    const msgpack_object *sk = cf_msgpack_map_get(cf_reply_result(r), "skipped");
    assert_true(sk && sk->type == MSGPACK_OBJECT_BOOLEAN && sk->via.boolean);
    cf_reply_destroy(&r);
    s_sql(f, "UPDATE crls SET stale = true WHERE scope = 'all'");
    r = s_build(f, json_pack("{s:s, s:b}", "ca", "inter", "if_stale", 1));
    assert_int_equal(s_int(r, "number"), 1);
    sk = cf_msgpack_map_get(cf_reply_result(r), "skipped");
    assert_true(sk && sk->type == MSGPACK_OBJECT_BOOLEAN && !sk->via.boolean);
    cf_reply_destroy(&r);

    /* Redis holds the header + DER of the newest one until nextUpdate. */
    char host[64];
    int port = 0;
    assert_int_equal(cf_test_redis(host, sizeof host, &port), 0);
    cf_redis_t *redis = cf_redis_new(host, port, 2000);
    char key[128];
    long inter_id = s_count(f, "SELECT id FROM certificate_authorities WHERE name = 'inter'");
    cf_revstore_crl_key(key, sizeof key, inter_id, CF_SCOPE_ALL, 0);
    redisReply *rr = cf_redis_command(redis, "GET %s", key);
    assert_non_null(rr);
    assert_int_equal(rr->type, REDIS_REPLY_STRING);
    int64_t t1 = 0, t2 = 0;
    assert_int_equal(cf_revstore_parse((unsigned char *)rr->str, rr->len, &t1, &t2), 0);
    const unsigned char *p = (const unsigned char *)rr->str + CF_REVSTORE_HEADER;
    crl = d2i_X509_CRL(NULL, &p, (long)(rr->len - CF_REVSTORE_HEADER));
    assert_non_null(crl);
    assert_int_equal(s_number(crl), 1);
    X509_CRL_free(crl);
    freeReplyObject(rr);
    cf_redis_destroy(&redis);

    free(good_serial);
    free(bad_serial);
    X509_free(root);
    X509_free(inter);
    X509_free(other);
    X509_free(good);
    X509_free(bad);
}

/* ---- 2. a sharded CA: each shard its own numbers and URL ------------------------------- */

static void test_sharded(void **state)
{
    s_fleet_t *f = *state;
    X509 *ca = s_ca(f, "shard", NULL, "EC", 4);
    char caf[400];
    s_write_pem(f, "shard.pem", ca, NULL, caf, sizeof caf);
    enum { N = 12 };
    X509 *leaves[N];
    char *serials[N];
    for (int i = 0; i < N; i++) {
        char cn[64];
        snprintf(cn, sizeof cn, "s%d.example.com", i);
        leaves[i] = s_issue(f, "shard", cn, &serials[i]);
        if (i % 2)
            s_revoke(f, serials[i], "superseded");
    }
    for (int round = 0; round < 2; round++) {
        for (int shard = 0; shard < 4; shard++) {
            cf_reply_t *r = s_build(
                f, json_pack("{s:s, s:s, s:i}", "ca", "shard", "scope", "user", "shard", shard));
            assert_int_equal(s_int(r, "number"), round);
            assert_int_equal(s_int(r, "shard"), shard);
            char sql[256];
            snprintf(sql, sizeof sql,
                     "SELECT count(*) FROM certificates c JOIN certificate_authorities a ON "
                     "a.id = c.ca_id WHERE a.name = 'shard' AND c.revoked AND crl_shard = %d",
                     shard);
            assert_int_equal(s_int(r, "entries"), s_count(f, sql));
            cf_reply_destroy(&r);
        }
    }
    assert_int_equal(s_count(f, "SELECT count(*) FROM crl_counters c JOIN certificate_authorities "
                                "a ON a.id = c.ca_id WHERE a.name = 'shard' AND counter LIKE "
                                "'user/_' AND c.number = 1"),
                     4);
    for (int shard = 0; shard < 4; shard++) {
        char file[64], want[128];
        snprintf(file, sizeof file, "shard-%d.der", shard);
        X509_CRL *crl = s_stored_crl(f, "shard", "user", shard, caf, file);
        char *uri = s_idp_uri(crl, "only_contains_user_certs");
        snprintf(want, sizeof want, "http://" S_HOST "/crl/shard/%d.crl", shard);
        assert_string_equal(uri, want);
        free(uri);
        assert_int_equal(s_number(crl), 1);
        X509_CRL_free(crl);
    }
    /* Each leaf against its own shard's CRL: the revoked ones are refused. */
    for (int i = 0; i < N; i++) {
        char sql[256], crls[600], leaff[400], cmd[1800];
        snprintf(sql, sizeof sql, "SELECT crl_shard FROM certificates WHERE serial = '%s'",
                 serials[i]);
        long shard = s_count(f, sql);
        snprintf(crls, sizeof crls, "-CRLfile '%s/shard-%ld.der.pem'", f->fleet.dir, shard);
        s_write_pem(f, "sleaf.pem", leaves[i], NULL, leaff, sizeof leaff);
        snprintf(cmd, sizeof cmd, "openssl verify -crl_check -CAfile '%s' %s '%s' >/dev/null 2>&1",
                 caf, crls, leaff);
        int status = system(cmd);
        if (i % 2)
            assert_int_not_equal(status, 0);
        else
            assert_int_equal(status, 0);
        free(serials[i]);
        X509_free(leaves[i]);
    }
    /* The all scope of a shard carries the same URL; the ca scope the CA URL. */
    cf_reply_t *r = s_build(f, json_pack("{s:s, s:i}", "ca", "shard", "shard", 3));
    cf_reply_destroy(&r);
    X509_CRL *crl = s_stored_crl(f, "shard", "all", 3, caf, "shard-all-3.der");
    char *uri = s_idp_uri(crl, NULL);
    assert_string_equal(uri, "http://" S_HOST "/crl/shard/3.crl");
    free(uri);
    X509_CRL_free(crl);
    X509_free(ca);
}

/* ---- 3. many builds of one CRL in flight across both workers ----------------------------- */

static void test_concurrent(void **state)
{
    s_fleet_t *f = *state;
    X509 *ca = s_ca(f, "busy", NULL, "EC", 1);
    char *serial;
    X509 *leaf = s_issue(f, "busy", "busy.example.com", &serial);
    s_revoke(f, serial, "unspecified");
    enum { N = 40 };
    s_sql(f, "DELETE FROM job_results WHERE type = 'crl.build'"); /* count this test's only */
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    json_t *p = json_pack("{s:s, s:s}", "ca", "busy", "scope", "user");
    cf_test_pack_params(&buf, p, NULL, 0);
    json_decref(p);
    for (int i = 0; i < N; i++)
        assert_int_equal(cf_client_send(f->client, NULL, "crl.build", buf.data, buf.size, 0, NULL),
                         0);
    msgpack_sbuffer_destroy(&buf);
    bool seen[N] = {false};
    for (int i = 0; i < N; i++) {
        cf_reply_t *r = cf_client_recv(f->client, 60000);
        assert_non_null(r);
        s_assert_ok(r, "concurrent crl.build");
        int64_t n = s_int(r, "number");
        assert_true(n >= 0 && n < N);
        assert_false(seen[n]);
        seen[n] = true;
        cf_reply_destroy(&r);
    }
    /* Both workers took part, and the stored CRL is the last number. */
    assert_int_equal(
        s_count(f, "SELECT count(DISTINCT worker) FROM job_results WHERE type = 'crl.build'"), 2);
    assert_int_equal(s_count(f, "SELECT c.number FROM crls c JOIN certificate_authorities a ON "
                                "a.id = c.ca_id WHERE a.name = 'busy' AND c.scope = 'user'"),
                     N - 1);
    char caf[400];
    s_write_pem(f, "busy.pem", ca, NULL, caf, sizeof caf);
    X509_CRL *crl = s_stored_crl(f, "busy", "user", 0, caf, "busy.der");
    assert_int_equal(s_number(crl), N - 1);
    X509_REVOKED *rev = sk_X509_REVOKED_value(X509_CRL_get_REVOKED(crl), 0);
    /* unspecified: no reasonCode; the compromise date as invalidityDate. */
    assert_null(X509_REVOKED_get_ext_d2i(rev, NID_crl_reason, NULL, NULL));
    ASN1_GENERALIZEDTIME *inv = X509_REVOKED_get_ext_d2i(rev, NID_invalidity_date, NULL, NULL);
    assert_non_null(inv);
    ASN1_GENERALIZEDTIME_free(inv);
    X509_CRL_free(crl);
    free(serial);
    X509_free(leaf);
    X509_free(ca);
}

/* ---- 4. Ed25519 and bad input ----------------------------------------------------------- */

static void s_expect_error(s_fleet_t *f, json_t *params, const char *code, const char *field)
{
    char *text = json_dumps(params, JSON_COMPACT);
    cf_reply_t *r = s_call(f, "crl.build", params, NULL, 0);
    if (cf_reply_ok(r))
        fail_msg("%s: succeeded, want %s", text, code);
    const cf_error_t *e = cf_reply_error(r);
    if (strcmp(e->code, code) != 0 || strcmp(e->field, field) != 0)
        fail_msg("%s: %s at \"%s\" (%s), want %s at \"%s\"", text, e->code, e->field, e->message,
                 code, field);
    free(text);
    cf_reply_destroy(&r);
}

static void test_ed25519_and_bad_input(void **state)
{
    s_fleet_t *f = *state;
    X509 *ed = s_ca(f, "edca", NULL, "Ed25519", 1);
    X509 *sh = s_ca(f, "bad-shards", NULL, "EC", 2);
    cf_reply_t *r = s_build(f, json_pack("{s:s, s:s}", "ca", "edca", "scope", "attribute"));
    assert_int_equal(s_int(r, "entries"), 0);
    cf_reply_destroy(&r);
    char edf[400];
    s_write_pem(f, "edca.pem", ed, NULL, edf, sizeof edf);
    X509_CRL *crl = s_stored_crl(f, "edca", "attribute", 0, edf, "edca.der");
    X509_CRL_free(crl);

    char *before = s_query(f, "SELECT count(*) || '/' || COALESCE(sum(number), 0) FROM "
                              "crl_counters");
    long crls_before = s_count(f, "SELECT count(*) FROM crls");
    s_expect_error(f, json_pack("{s:s}", "ca", "nope"), "unknown_ca", "params.ca");
    s_expect_error(f, json_pack("{}"), "missing_field", "params.ca");
    s_expect_error(f, json_pack("{s:i}", "ca", 3), "invalid_type", "params.ca");
    s_expect_error(f, json_pack("{s:s, s:s}", "ca", "edca", "scope", "everything"), "invalid_value",
                   "params.scope");
    s_expect_error(f, json_pack("{s:s, s:i}", "ca", "edca", "scope", 1), "invalid_type",
                   "params.scope");
    s_expect_error(f, json_pack("{s:s, s:i}", "ca", "edca", "shard", 1), "invalid_value",
                   "params.shard");
    s_expect_error(f, json_pack("{s:s, s:i}", "ca", "bad-shards", "shard", 2), "invalid_value",
                   "params.shard");
    s_expect_error(f, json_pack("{s:s, s:s, s:i}", "ca", "bad-shards", "scope", "ca", "shard", 1),
                   "invalid_value", "params.shard");
    s_expect_error(f, json_pack("{s:s, s:i}", "ca", "edca", "shard", -1), "invalid_value",
                   "params.shard");
    s_expect_error(f, json_pack("{s:s, s:s}", "ca", "edca", "shard", "1"), "invalid_type",
                   "params.shard");
    s_expect_error(f, json_pack("{s:s, s:i}", "ca", "edca", "expires", 599), "invalid_value",
                   "params.expires");
    s_expect_error(f, json_pack("{s:s, s:i}", "ca", "edca", "expires", 31536001), "invalid_value",
                   "params.expires");
    s_expect_error(f, json_pack("{s:s, s:s}", "ca", "edca", "expires", "1d"), "invalid_type",
                   "params.expires");
    s_expect_error(f, json_pack("{s:s, s:s}", "ca", "edca", "algorithm", "SHA-256"),
                   "invalid_value", "params.algorithm");
    s_expect_error(f, json_pack("{s:s, s:s}", "ca", "bad-shards", "algorithm", "MD5"),
                   "invalid_value", "params.algorithm");
    s_expect_error(f, json_pack("{s:s, s:s}", "ca", "edca", "full_name", "http://x"),
                   "invalid_type", "params.full_name");
    s_expect_error(f,
                   json_pack("{s:s, s:[{s:s, s:s}]}", "ca", "edca", "full_name", "type", "URI",
                             "value", "not a uri"),
                   "invalid_value", "params.full_name[0].value");
    s_expect_error(f, json_pack("{s:s, s:s}", "ca", "edca", "if_stale", "yes"), "invalid_type",
                   "params.if_stale");
    s_expect_error(f, json_pack("{s:s, s:s}", "ca", "edca", "colour", "blue"), "unknown_field",
                   "params.colour");
    s_expect_error(f,
                   json_pack("{s:s, s:n, s:b}", "ca", "bad-shards", "full_name",
                             "include_issuing_distribution_point", 1),
                   "invalid_value", "params.include_issuing_distribution_point");
    char *after = s_query(f, "SELECT count(*) || '/' || COALESCE(sum(number), 0) FROM "
                             "crl_counters");
    assert_string_equal(before, after);
    assert_int_equal(s_count(f, "SELECT count(*) FROM crls"), crls_before);
    free(before);
    free(after);
    X509_free(ed);
    X509_free(sh);
}

/* ---- 5. revocations racing the first CRL of a scope --------------------------------------- */

/* An async job of TYPE with PARAMS (consumed). */
static void s_send(s_fleet_t *f, const char *type, json_t *params)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cf_test_pack_params(&buf, params, NULL, 0);
    json_decref(params);
    assert_int_equal(cf_client_send(f->client, NULL, type, buf.data, buf.size, 0, NULL), 0);
    msgpack_sbuffer_destroy(&buf);
}

/* No reply yet (the job waits for the test's transaction), then, after COMMIT on TX, its reply
 * (caller owns). The wait is far below [postgres] lock_timeout_ms (5 s). */
static cf_reply_t *s_after_commit(s_fleet_t *f, cf_pg_t *tx, const char *what)
{
    cf_reply_t *early = cf_client_recv(f->client, 800);
    if (early)
        fail_msg("%s answered while the test's transaction held the CRL lock", what);
    assert_int_equal(cf_pg_exec(tx, "COMMIT"), 0);
    cf_reply_t *r = cf_client_recv(f->client, 20000);
    assert_non_null(r);
    s_assert_ok(r, what);
    return r;
}

static bool s_crl_lists(X509_CRL *crl, const char *serial)
{
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++) {
        BIGNUM *bn = ASN1_INTEGER_to_BN(
            X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i)), NULL);
        char *hex = BN_bn2hex(bn);
        bool same = strcmp(hex, serial) == 0;
        OPENSSL_free(hex);
        BN_free(bn);
        if (same)
            return true;
    }
    return false;
}

static void test_first_crl_race(void **state)
{
    s_fleet_t *f = *state;
    cf_pg_t *tx = cf_pg_new(f->fleet.conninfo);
    assert_non_null(tx);
    char sql[512], caf[400];

    /* (a) A revocation under way (its transaction holds the shared CRL locks and has marked
     * the row, as the signer's does) when the first CRL of the scope is built: the build waits
     * for its commit and lists it. Without the lock it would store a CRL without it, not
     * stale, since there was no stored CRL to mark. */
    X509 *ca = s_ca(f, "race", NULL, "EC", 1);
    char *serial;
    X509 *leaf = s_issue(f, "race", "race.example.com", &serial);
    int64_t ca_id = s_count(f, "SELECT id FROM certificate_authorities WHERE name = 'race'");
    assert_int_equal(cf_pg_exec(tx, "BEGIN"), 0);
    assert_int_equal(cf_crl_lock_revocation(tx, ca_id, false), 0);
    snprintf(sql, sizeof sql,
             "UPDATE certificates SET revoked = true, revoked_date = now(), revoked_reason = "
             "'superseded' WHERE serial = '%s'",
             serial);
    cf_test_sql(tx, sql);
    s_send(f, "crl.build", json_pack("{s:s, s:s}", "ca", "race", "scope", "user"));
    cf_reply_t *r = s_after_commit(f, tx, "first crl.build during a revocation");
    cf_reply_destroy(&r);
    s_write_pem(f, "race.pem", ca, NULL, caf, sizeof caf);
    X509_CRL *crl = s_stored_crl(f, "race", "user", 0, caf, "race.der");
    assert_true(s_crl_lists(crl, serial));
    X509_CRL_free(crl);

    /* (b) The first CRL being built (the test's transaction holds the exclusive lock and stores
     * the row, as a first build does) when cert.revoke comes: the revocation waits for the
     * commit, then marks the new row stale, and the next if_stale build lists it. */
    X509 *ca2 = s_ca(f, "race2", NULL, "EC", 1);
    char *serial2;
    X509 *leaf2 = s_issue(f, "race2", "race2.example.com", &serial2);
    int64_t ca2_id = s_count(f, "SELECT id FROM certificate_authorities WHERE name = 'race2'");
    assert_int_equal(cf_pg_exec(tx, "BEGIN"), 0);
    assert_int_equal(cf_crl_lock(tx, ca2_id, CF_SCOPE_USER, true), 0);
    /* A stand-in for the CRL the build stores (number -1: any real build replaces it). */
    snprintf(sql, sizeof sql,
             "INSERT INTO crls (ca_id, scope, shard, number, this_update, next_update, der) "
             "VALUES (%lld, 'user', 0, -1, now(), now() + interval '1 day', '\\x30'::bytea)",
             (long long)ca2_id);
    cf_test_sql(tx, sql);
    s_send(f, "cert.revoke", json_pack("{s:s}", "serial", serial2));
    r = s_after_commit(f, tx, "cert.revoke during a first crl.build");
    assert_int_equal(s_int(r, "crls_marked"), 1);
    cf_reply_destroy(&r);
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM crls WHERE ca_id = %lld AND scope = 'user' AND stale AND "
             "marks = 1",
             (long long)ca2_id);
    assert_int_equal(s_count(f, sql), 1);
    r = s_build(f, json_pack("{s:s, s:s, s:b}", "ca", "race2", "scope", "user", "if_stale", 1));
    cf_reply_destroy(&r);
    s_write_pem(f, "race2.pem", ca2, NULL, caf, sizeof caf);
    crl = s_stored_crl(f, "race2", "user", 0, caf, "race2.der");
    assert_true(s_crl_lists(crl, serial2));
    X509_CRL_free(crl);

    cf_pg_destroy(&tx);
    free(serial);
    free(serial2);
    X509_free(leaf);
    X509_free(leaf2);
    X509_free(ca);
    X509_free(ca2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_chain),          cmocka_unit_test(test_sharded),
        cmocka_unit_test(test_concurrent),     cmocka_unit_test(test_ed25519_and_bad_input),
        cmocka_unit_test(test_first_crl_race),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
