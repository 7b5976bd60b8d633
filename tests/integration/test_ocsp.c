/* certfleet-ocsp end to end: a real broker, a signer and two ocsp workers, PostgreSQL and Redis
 * on loopback. ocsp.keygen makes a delegated responder the CA signed (OCSPSigning, OCSPNoCheck),
 * renews it only in its window or when forced; ocsp.presign signs 20,000 certificates split
 * into 64 shards between two workers, one of which is killed with SIGKILL mid-run: every
 * certificate ends with exactly one current response, in the table and in Redis; a revoked
 * certificate gets a revoked response on the next run while the rest are skipped; `openssl
 * ocsp` verifies stored responses; bad input gets its code and field and writes nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_msgpack.h"
#include "cf_ocsp.h"
#include "cf_pg.h"
#include "cf_redis.h"
#include "cf_revocation.h"
#include "cf_test.h"
#include "cf_test_fleet.h"
#include "cf_test_jobs.h"

#define S_BULK   20000 /* certificates of the presign test */
#define S_SHARDS 64

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config, keys, endpoint */
    pid_t broker;          /* broker pid */
    pid_t signer;          /* signer pid */
    pid_t ocsp[2];         /* ocsp worker pids (0: not running) */
    cf_client_t *client;   /* for one job at a time */
    int redis_db;          /* the Redis database this test uses */
    cf_redis_t *redis;     /* our own connection to it */
    cf_pg_t *pg;           /* our own connection to the database */
} s_fleet_t;

/* ---- the fleet ---------------------------------------------------------------------- */

static int s_setup(void **state)
{
    s_fleet_t *f = calloc(1, sizeof *f);
    assert_int_equal(cf_test_fleet_init(&f->fleet, "ocsp"), 0);
    /* Redis is shared with other tests that may run at the same time and whose databases
     * also number their CAs from 1: a Redis database of our own keeps keys apart. */
    f->redis_db = 2 + (int)(getpid() % 14);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fleet_t *f = *state;
    cf_client_destroy(&f->client);
    cf_redis_destroy(&f->redis);
    cf_pg_destroy(&f->pg);
    for (int i = 0; i < 2; i++)
        if (f->ocsp[i] > 0)
            cf_test_kill(f->ocsp[i], SIGTERM);
    if (f->signer > 0)
        cf_test_kill(f->signer, SIGTERM);
    if (f->broker > 0)
        cf_test_kill(f->broker, SIGTERM);
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

static void s_start_fleet(s_fleet_t *f)
{
    char extra[256];
    snprintf(extra, sizeof extra,
             "[broker]\nqueue_max = 10000\n[redis]\ndb = %d\n[ocsp]\nlock_wait_ms = 15000\n",
             f->redis_db);
    assert_int_equal(cf_test_fleet_write_config(&f->fleet, extra), 0);
    f->broker = s_start(f, "certfleet-broker", "broker.log");
    f->signer = s_start(f, "certfleet-signer", "signer.log");
    f->ocsp[0] = s_start(f, "certfleet-ocsp", "ocsp0.log");
    f->ocsp[1] = s_start(f, "certfleet-ocsp", "ocsp1.log");
    if (cf_test_fleet_wait_workers(&f->fleet, 3, 10000) != 0)
        fail_msg("broker never reported 3 workers");
    f->client = cf_test_client(f->fleet.endpoint, 20000, 6);
    f->pg = cf_pg_new(f->fleet.conninfo);
    f->redis = cf_test_redis_db(f->redis_db);
}

static long s_count(s_fleet_t *f, const char *sql)
{
    return cf_test_count(f->pg, sql);
}

static void s_sql(s_fleet_t *f, const char *sql)
{
    cf_test_sql(f->pg, sql);
}

/* ---- jobs --------------------------------------------------------------------------- */

/* One job; PARAMS is consumed. Caller owns the reply. */
static cf_reply_t *s_call(s_fleet_t *f, const char *type, json_t *params, const void *csr,
                          size_t csr_len)
{
    return cf_test_call(f->client, type, params, csr, csr_len);
}

#define s_assert_ok cf_test_assert_ok

static void s_assert_error(cf_reply_t *r, const char *code, const char *field)
{
    if (cf_reply_ok(r))
        fail_msg("expected error \"%s\" (field \"%s\"), got ok", code, field);
    const cf_error_t *e = cf_reply_error(r);
    if (strcmp(e->code, code) != 0 || strcmp(e->field, field) != 0)
        fail_msg("expected error \"%s\" (field \"%s\"), got \"%s\" (field \"%s\"): %s", code, field,
                 e->code, e->field, e->message);
    cf_reply_destroy(&r);
}

static const msgpack_object *s_get(const cf_reply_t *r, const char *key)
{
    const msgpack_object *o = cf_msgpack_map_get(cf_reply_result(r), key);
    if (!o)
        fail_msg("no \"%s\" in the result", key);
    return o;
}

static int64_t s_get_int(const cf_reply_t *r, const char *key)
{
    const msgpack_object *o = s_get(r, key);
    assert_true(o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
                o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER);
    return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (int64_t)o->via.u64 : o->via.i64;
}

/* An EC root CA called NAME with common name CN; its certificate (caller owns). */
static X509 *s_ca_init(s_fleet_t *f, const char *name, const char *cn)
{
    char subject[256];
    snprintf(subject, sizeof subject, "CN=%s,O=certfleet test", cn);
    return cf_test_ca_init(f->client, name,
                           json_pack("{s:s, s:s}", "subject", subject, "algorithm", "SHA-256"));
}

static cf_reply_t *s_keygen(s_fleet_t *f, const char *ca, bool force)
{
    return s_call(f, "ocsp.keygen", json_pack("{s:s, s:b}", "ca", ca, "force", force), NULL, 0);
}

/* A certificate issued by CA for CN (caller owns). */
static X509 *s_issue(s_fleet_t *f, const char *ca, const char *cn)
{
    cf_reply_t *r = cf_test_issue(f->client, json_pack("{s:s}", "ca", ca), cn);
    s_assert_ok(r, "cert.issue");
    X509 *cert = cf_test_reply_cert(r, "der");
    cf_reply_destroy(&r);
    return cert;
}

static char *s_serial(X509 *cert)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), NULL);
    char *hex = BN_bn2hex(bn);
    char *out = strdup(hex);
    OPENSSL_free(hex);
    BN_free(bn);
    return out;
}

static void s_write_pem(s_fleet_t *f, const char *file, X509 *cert, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", f->fleet.dir, file);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509(out, cert), 1);
    fclose(out);
}

/* ---- 1. responder certificates ------------------------------------------------------ */

static void test_keygen(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f);
    X509 *ca = s_ca_init(f, "root", "certfleet OCSP root");
    cf_reply_t *r = s_keygen(f, "root", false);
    s_assert_ok(r, "ocsp.keygen");
    assert_true(s_get(r, "renewed")->via.boolean);
    X509 *cert = cf_test_reply_cert(r, "certificate");
    char *serial = cf_msgpack_strdup(s_get(r, "serial"));
    char *key_type = cf_msgpack_strdup(s_get(r, "key_type"));
    assert_string_equal(key_type, "EC");
    int64_t valid_from = s_get_int(r, "valid_from"), expires = s_get_int(r, "expires");
    /* The CA's ocsp_responder_key_validity: 3 days. */
    assert_int_equal(expires - valid_from, 3 * 86400);
    cf_reply_destroy(&r);
    /* Subject: the CA's CN and the suffix, nothing else; signed by the CA; OCSP signing. */
    X509_NAME *subject = X509_get_subject_name(cert);
    assert_int_equal(X509_NAME_entry_count(subject), 1);
    char cn[128];
    assert_true(X509_NAME_get_text_by_NID(subject, NID_commonName, cn, sizeof cn) > 0);
    assert_string_equal(cn, "certfleet OCSP root OCSP responder delegate certificate");
    assert_int_equal(X509_verify(cert, X509_get0_pubkey(ca)), 1);
    assert_int_equal(X509_check_issued(ca, cert), X509_V_OK);
    assert_true(X509_get_extended_key_usage(cert) & XKU_OCSP_SIGN);
    assert_true(X509_get_ext_by_NID(cert, NID_id_pkix_OCSP_noCheck, -1) >= 0);
    assert_int_equal(X509_check_ca(cert), 0);
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(cert), "EC"));
    /* The rows: a certificate of profile "ocsp", autogenerated, and the responder. */
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates WHERE profile = 'ocsp' AND "
                                "autogenerated AND cn LIKE 'certfleet OCSP root OCSP%'"),
                     1);
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responders r JOIN certificates c ON "
                                "c.id = r.certificate_id WHERE r.key_backend = 'storages' AND "
                                "r.key_id LIKE 'ocsp-root-%' AND c.profile = 'ocsp'"),
                     1);
    /* Inside the renewal window nothing changes; force renews. */
    r = s_keygen(f, "root", false);
    s_assert_ok(r, "ocsp.keygen again");
    assert_false(s_get(r, "renewed")->via.boolean);
    char *again = cf_msgpack_strdup(s_get(r, "serial"));
    assert_string_equal(again, serial);
    free(again);
    cf_reply_destroy(&r);
    r = s_keygen(f, "root", true);
    s_assert_ok(r, "ocsp.keygen force");
    assert_true(s_get(r, "renewed")->via.boolean);
    again = cf_msgpack_strdup(s_get(r, "serial"));
    assert_string_not_equal(again, serial);
    free(again);
    cf_reply_destroy(&r);
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responders"), 2);
    /* A responder that expires within [ocsp] responder_renewal_s is renewed without force. */
    s_sql(f, "UPDATE ocsp_responders SET expires = now() + interval '1 hour'");
    r = s_keygen(f, "root", false);
    s_assert_ok(r, "ocsp.keygen in the window");
    assert_true(s_get(r, "renewed")->via.boolean);
    cf_reply_destroy(&r);
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responders"), 3);
    /* A long CN is cut to 64 characters; the key parameters follow the job. */
    X509 *ca2 = s_ca_init(f, "long", "A very long common name of a certificate authority");
    r = s_call(f, "ocsp.keygen",
               json_pack("{s:s, s:s, s:i, s:s}", "ca", "long", "key_type", "Ed25519", "expires", 1,
                         "key_backend", "storages"),
               NULL, 0);
    s_assert_ok(r, "ocsp.keygen long");
    X509 *cert2 = cf_test_reply_cert(r, "certificate");
    assert_true(
        X509_NAME_get_text_by_NID(X509_get_subject_name(cert2), NID_commonName, cn, sizeof cn) > 0);
    assert_int_equal(strlen(cn), 64);
    assert_memory_equal(cn, "A very long common name of a certificate authority OCSP responde", 64);
    assert_true(EVP_PKEY_is_a(X509_get0_pubkey(cert2), "ED25519"));
    assert_int_equal(s_get_int(r, "expires") - s_get_int(r, "valid_from"), 86400);
    cf_reply_destroy(&r);
    /* The db backend without a configured password: the keystore's rule, nothing written. */
    r = s_call(f, "ocsp.keygen",
               json_pack("{s:s, s:s, s:b}", "ca", "root", "key_backend", "db", "force", 1), NULL,
               0);
    s_assert_error(r, "password_required", "params.key_backend");
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responders"), 4);
    assert_int_equal(s_count(f, "SELECT count(*) FROM private_keys"), 0);
    X509_free(cert2);
    X509_free(ca2);
    free(key_type);
    free(serial);
    X509_free(cert);
    X509_free(ca);
}

/* ---- 2. pre-signing ----------------------------------------------------------------- */

/* Every unexpired certificate of CA_ID has exactly one response, current, from the current
 * responder, and Redis holds the same bytes. */
static void s_assert_all_signed(s_fleet_t *f, long ca_id, long expect)
{
    char sql[1024];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM certificates c JOIN ocsp_responses r ON r.ca_id = c.ca_id AND "
             "r.serial = c.serial WHERE c.ca_id = %ld AND r.next_update > now() AND "
             "r.responder_id = (SELECT max(id) FROM ocsp_responders WHERE ca_id = %ld)",
             ca_id, ca_id);
    assert_int_equal(s_count(f, sql), expect);
    snprintf(sql, sizeof sql, "SELECT count(*) FROM ocsp_responses WHERE ca_id = %ld", ca_id);
    assert_int_equal(s_count(f, sql), expect);
    snprintf(sql, sizeof sql,
             "SELECT serial, md5(der), extract(epoch FROM next_update)::bigint FROM "
             "ocsp_responses WHERE ca_id = %ld",
             ca_id);
    PGresult *res = cf_pg_exec_params(f->pg, sql, 0, NULL, NULL, NULL, 0);
    assert_non_null(res);
    int n = PQntuples(res);
    for (int i = 0; i < n; i++) {
        char key[160];
        cf_revstore_ocsp_key(key, sizeof key, ca_id, PQgetvalue(res, i, 0));
        assert_int_equal(cf_redis_append(f->redis, "GET %s", key), 0);
    }
    int missing = 0;
    for (int i = 0; i < n; i++) {
        redisReply *r = cf_redis_get_reply(f->redis);
        assert_non_null(r);
        if (r->type != REDIS_REPLY_STRING) {
            missing++;
            freeReplyObject(r);
            continue;
        }
        int64_t t1, t2;
        assert_int_equal(cf_revstore_parse((const unsigned char *)r->str, (size_t)r->len, &t1, &t2),
                         0);
        assert_int_equal(t2, atoll(PQgetvalue(res, i, 2)));
        unsigned char md[16];
        EVP_Digest(r->str + CF_REVSTORE_HEADER, (size_t)r->len - CF_REVSTORE_HEADER, md, NULL,
                   EVP_md5(), NULL);
        char hex[33];
        for (int k = 0; k < 16; k++)
            snprintf(hex + 2 * k, 3, "%02x", md[k]);
        if (strcmp(hex, PQgetvalue(res, i, 1)) != 0)
            fail_msg("Redis and PostgreSQL differ for %s", PQgetvalue(res, i, 0));
        freeReplyObject(r);
    }
    PQclear(res);
    if (missing)
        fail_msg("%d of %d responses are missing from Redis", missing, n);
}

/* Presign every shard of CA, a window of jobs in flight; the replies' totals in *SIGNED. */
static void s_presign_all(s_fleet_t *f, const char *ca, int shards, long *signed_n, long *skipped,
                          void (*midway)(s_fleet_t *))
{
    uint8_t ids[S_SHARDS][CF_JOB_ID_SIZE];
    bool done[S_SHARDS] = {false};
    for (int s = 0; s < shards; s++) {
        json_t *p = json_pack("{s:s, s:i, s:i}", "ca", ca, "shards", shards, "shard", s);
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        cf_test_pack_params(&buf, p, NULL, 0);
        json_decref(p);
        assert_int_equal(
            cf_client_send(f->client, NULL, "ocsp.presign", buf.data, buf.size, 0, ids[s]), 0);
        msgpack_sbuffer_destroy(&buf);
    }
    *signed_n = *skipped = 0;
    for (int got = 0; got < shards; got++) {
        if (got == 4 && midway)
            midway(f);
        cf_reply_t *r = cf_client_recv(f->client, 300000);
        assert_non_null(r);
        s_assert_ok(r, "ocsp.presign");
        int s = -1;
        for (int k = 0; k < shards; k++)
            if (memcmp(cf_reply_id(r), ids[k], CF_JOB_ID_SIZE) == 0)
                s = k;
        assert_true(s >= 0);
        assert_false(done[s]);
        done[s] = true;
        assert_int_equal(s_get_int(r, "shard"), s);
        assert_int_equal(s_get_int(r, "shards"), shards);
        assert_int_equal(s_get_int(r, "signed"), s_get_int(r, "good") + s_get_int(r, "revoked"));
        *signed_n += s_get_int(r, "signed");
        *skipped += s_get_int(r, "skipped");
        cf_reply_destroy(&r);
    }
}

/* Mid-run: one of the two ocsp workers dies without a word. */
static void s_kill_one(s_fleet_t *f)
{
    long before = s_count(f, "SELECT count(*) FROM ocsp_responses");
    cf_test_kill(f->ocsp[0], SIGKILL);
    f->ocsp[0] = 0;
    fprintf(stderr, "killed an ocsp worker with %ld responses stored\n", before);
}

/* `openssl ocsp` reads the stored response for CERT and says STATUS (and REASON). */
static void s_openssl_ocsp(s_fleet_t *f, long ca_id, X509 *ca, X509 *cert, const char *status,
                           const char *reason)
{
    char *serial = s_serial(cert);
    char sql[512];
    snprintf(sql, sizeof sql, "SELECT der FROM ocsp_responses WHERE ca_id = %ld AND serial = '%s'",
             ca_id, serial);
    PGresult *res = cf_pg_exec_params(f->pg, sql, 0, NULL, NULL, NULL, 1);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    char resp_path[400], ca_path[400], cert_path[400], out_path[400], cmd[2000];
    snprintf(resp_path, sizeof resp_path, "%s/%s.ocsp", f->fleet.dir, serial);
    FILE *out = fopen(resp_path, "wb");
    assert_non_null(out);
    assert_int_equal(fwrite(PQgetvalue(res, 0, 0), 1, (size_t)PQgetlength(res, 0, 0), out),
                     (size_t)PQgetlength(res, 0, 0));
    fclose(out);
    PQclear(res);
    s_write_pem(f, "ca.pem", ca, ca_path, sizeof ca_path);
    char file[128];
    snprintf(file, sizeof file, "%s.pem", serial);
    s_write_pem(f, file, cert, cert_path, sizeof cert_path);
    snprintf(out_path, sizeof out_path, "%s/%s.out", f->fleet.dir, serial);
    snprintf(cmd, sizeof cmd,
             "openssl ocsp -respin '%s' -CAfile '%s' -issuer '%s' -cert '%s' >'%s' 2>&1", resp_path,
             ca_path, ca_path, cert_path, out_path);
    int rc = system(cmd);
    FILE *in = fopen(out_path, "r");
    assert_non_null(in);
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, in);
    text[n] = '\0';
    fclose(in);
    char want[512];
    snprintf(want, sizeof want, "%s: %s", cert_path, status);
    if (rc != 0 || !strstr(text, "Response verify OK") || !strstr(text, want) ||
        (reason && !strstr(text, reason)))
        fail_msg("openssl ocsp (exit %d) for %s, expected \"%s\" %s:\n%s", rc, serial, want,
                 reason ? reason : "", text);
    /* With the serial instead of the certificate, too. */
    snprintf(cmd, sizeof cmd,
             "openssl ocsp -respin '%s' -VAfile '%s' -CAfile '%s' -issuer '%s' -serial 0x%s "
             ">'%s' 2>&1",
             resp_path, ca_path, ca_path, ca_path, serial, out_path);
    rc = system(cmd);
    in = fopen(out_path, "r");
    assert_non_null(in);
    n = fread(text, 1, sizeof text - 1, in);
    text[n] = '\0';
    fclose(in);
    if (rc != 0 || !strstr(text, "Response verify OK") || !strstr(text, status))
        fail_msg("openssl ocsp -serial (exit %d) for %s:\n%s", rc, serial, text);
    free(serial);
}

static void test_presign(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f);
    X509 *ca = s_ca_init(f, "bulk", "certfleet OCSP bulk");
    cf_test_ocsp_responder(f->client, "bulk");
    long ca_id = s_count(f, "SELECT id FROM certificate_authorities WHERE name = 'bulk'");
    /* Two real certificates (for openssl ocsp), and 20,000 rows with a dummy DER: presign
     * reads serials and statuses only. A few serials have the high bit set; some rows expired
     * (they get no response). */
    X509 *leaf_good = s_issue(f, "bulk", "good.example.com");
    X509 *leaf_revoked = s_issue(f, "bulk", "revoked.example.com");
    X509 *leaf_hold = s_issue(f, "bulk", "hold.example.com");
    char sql[1024];
    snprintf(sql, sizeof sql,
             "INSERT INTO certificates (ca_id, serial, cn, subject, valid_from, expires, der) "
             "SELECT %ld, CASE WHEN i %% 10 = 0 THEN 'C' ELSE '5' END || "
             "upper(substr(md5(i::text || random()::text), 2)) || "
             "upper(substr(md5(random()::text), 1, 8)), 'bulk' || i, '[]', now(), "
             "now() + interval '30 days', '\\x3000' FROM generate_series(1, %d) AS i",
             ca_id, S_BULK - 3);
    s_sql(f, sql);
    snprintf(sql, sizeof sql,
             "INSERT INTO certificates (ca_id, serial, cn, subject, valid_from, expires, der) "
             "SELECT %ld, '6' || upper(substr(md5(i::text), 2)), 'old' || i, '[]', "
             "now() - interval '60 days', now() - interval '1 day', '\\x3000' "
             "FROM generate_series(1, 50) AS i",
             ca_id);
    s_sql(f, sql);
    /* With the responder's own certificate: 20,000 + 1 unexpired certificates. */
    const long total = S_BULK + 1;
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM certificates WHERE ca_id = %ld AND expires > now()", ca_id);
    assert_int_equal(s_count(f, sql), total);

    long signed_n, skipped;
    time_t t0 = time(NULL);
    s_presign_all(f, "bulk", S_SHARDS, &signed_n, &skipped, s_kill_one);
    fprintf(stderr, "presigned %ld (%ld skipped) in %lds with a worker killed\n", signed_n, skipped,
            (long)(time(NULL) - t0));
    s_assert_all_signed(f, ca_id, total);
    /* The shard of the dead worker was redone only where due: nothing is signed twice over
     * in the end, and the replies together signed at least everything. */
    assert_true(signed_n <= total);

    /* Again: nothing is due. */
    s_presign_all(f, "bulk", S_SHARDS, &signed_n, &skipped, NULL);
    assert_int_equal(signed_n, 0);
    assert_int_equal(skipped, total);

    /* A run that died between a chunk's commit and its cache writes left its marker: the
     * next run of that shard writes the chunk's stored responses to Redis again. */
    snprintf(sql, sizeof sql,
             "SELECT min(id), max(id), string_agg(serial, ' ') FROM (SELECT id, serial FROM "
             "certificates WHERE ca_id = %ld AND expires > now() ORDER BY id LIMIT 20) AS x",
             ca_id); /* the first ids of the CA: shard 0's slice */
    PGresult *res = cf_pg_exec_params(f->pg, sql, 0, NULL, NULL, NULL, 0);
    assert_non_null(res);
    char *serials = strdup(PQgetvalue(res, 0, 2));
    redisReply *reply =
        cf_redis_command(f->redis, "SET cf:ocsp-presign-pending:%ld:%d:0 0:%s:%s", ca_id, S_SHARDS,
                         PQgetvalue(res, 0, 0), PQgetvalue(res, 0, 1));
    assert_non_null(reply);
    freeReplyObject(reply);
    PQclear(res);
    int dropped = 0;
    for (char *save = NULL, *one = strtok_r(serials, " ", &save); one;
         one = strtok_r(NULL, " ", &save), dropped++) {
        reply = cf_redis_command(f->redis, "DEL cf:ocsp:%ld:%s", ca_id, one);
        assert_non_null(reply);
        assert_int_equal(reply->integer, 1);
        freeReplyObject(reply);
    }
    free(serials);
    assert_int_equal(dropped, 20);
    cf_reply_t *r =
        s_call(f, "ocsp.presign",
               json_pack("{s:s, s:i, s:i}", "ca", "bulk", "shards", S_SHARDS, "shard", 0), NULL, 0);
    s_assert_ok(r, "ocsp.presign after an interrupted run");
    assert_int_equal(s_get_int(r, "signed"), 0);
    cf_reply_destroy(&r);
    s_assert_all_signed(f, ca_id, total);
    reply = cf_redis_command(f->redis, "EXISTS cf:ocsp-presign-pending:%ld:%d:0", ca_id, S_SHARDS);
    assert_non_null(reply);
    assert_int_equal(reply->integer, 0);
    freeReplyObject(reply);

    /* Revocations (as cert.revoke marks them): the next run signs only those. */
    char *rev_serial = s_serial(leaf_revoked), *hold_serial = s_serial(leaf_hold);
    snprintf(sql, sizeof sql,
             "UPDATE certificates SET revoked = true, revoked_date = now() - interval '1 hour', "
             "revoked_reason = 'key_compromise', compromised = now() - interval '2 days' "
             "WHERE serial = '%s'",
             rev_serial);
    s_sql(f, sql);
    snprintf(sql, sizeof sql,
             "UPDATE certificates SET revoked = true, revoked_date = now(), "
             "revoked_reason = 'unspecified' WHERE serial = '%s'",
             hold_serial);
    s_sql(f, sql);
    r = s_call(f, "ocsp.presign", json_pack("{s:s}", "ca", "bulk"), NULL, 0);
    s_assert_ok(r, "ocsp.presign after revocations");
    assert_int_equal(s_get_int(r, "signed"), 2);
    assert_int_equal(s_get_int(r, "revoked"), 2);
    assert_int_equal(s_get_int(r, "good"), 0);
    assert_int_equal(s_get_int(r, "skipped"), total - 2);
    cf_reply_destroy(&r);
    s_assert_all_signed(f, ca_id, total);
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responses WHERE status = 'revoked'"), 2);
    s_openssl_ocsp(f, ca_id, ca, leaf_good, "good", NULL);
    s_openssl_ocsp(f, ca_id, ca, leaf_revoked, "revoked", "Reason: keyCompromise");
    s_openssl_ocsp(f, ca_id, ca, leaf_hold, "revoked", NULL);
    /* A released hold: the good response may replace the revoked one (the row is locked and
     * checked first). */
    snprintf(sql, sizeof sql,
             "UPDATE certificates SET revoked = false, revoked_date = NULL, revoked_reason = '' "
             "WHERE serial = '%s'",
             hold_serial);
    s_sql(f, sql);
    r = s_call(f, "ocsp.presign", json_pack("{s:s}", "ca", "bulk"), NULL, 0);
    s_assert_ok(r, "ocsp.presign after a released hold");
    assert_int_equal(s_get_int(r, "signed"), 1);
    assert_int_equal(s_get_int(r, "good"), 1);
    cf_reply_destroy(&r);
    s_openssl_ocsp(f, ca_id, ca, leaf_hold, "good", NULL);
    s_assert_all_signed(f, ca_id, total);

    /* A new responder makes every response due; force re-signs all. */
    r = s_keygen(f, "bulk", true);
    s_assert_ok(r, "ocsp.keygen force");
    cf_reply_destroy(&r);
    r = s_call(f, "ocsp.presign",
               json_pack("{s:s, s:i, s:i}", "ca", "bulk", "shards", 2, "shard", 1), NULL, 0);
    s_assert_ok(r, "ocsp.presign with a new responder");
    long half = s_get_int(r, "signed");
    assert_true(half > 0 && half < total + 1);
    assert_int_equal(s_get_int(r, "skipped"), 0);
    cf_reply_destroy(&r);
    struct timespec a, b;
    clock_gettime(CLOCK_MONOTONIC, &a);
    r = s_call(f, "ocsp.presign", json_pack("{s:s, s:b}", "ca", "bulk", "force", 1), NULL, 0);
    clock_gettime(CLOCK_MONOTONIC, &b);
    s_assert_ok(r, "ocsp.presign force");
    /* For the log only (tests never assert on time): one job, one worker, one shard. */
    double secs = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
    fprintf(stderr, "one worker re-signed %ld responses in %.2fs (%.0f/s)\n", total + 1, secs,
            (double)(total + 1) / secs);
    /* The new responder's certificate is one more certificate of the CA. */
    assert_int_equal(s_get_int(r, "signed"), total + 1);
    assert_int_equal(s_get_int(r, "revoked"), 1);
    cf_reply_destroy(&r);
    s_assert_all_signed(f, ca_id, total + 1);
    s_openssl_ocsp(f, ca_id, ca, leaf_revoked, "revoked", "Reason: keyCompromise");

    /* The bulk store never turns a stored revoked response into a good one by itself: a run
     * that read the certificate just before cert.revoke committed loses. */
    long responder = s_count(f, "SELECT max(id) FROM ocsp_responders");
    static const unsigned char stale[] = {0x30, 0x03, 0x0a, 0x01, 0x00};
    cf_ocsp_row_t row = {.serial = rev_serial, .der = stale, .len = (int)sizeof stale};
    size_t stored = 99;
    cf_error_t err = {0};
    int64_t now = (int64_t)time(NULL);
    assert_int_equal(
        cf_ocsp_store_many(f->pg, ca_id, responder, now, now + 60, &row, 1, &stored, &err), 0);
    assert_int_equal(stored, 0);
    assert_false(row.stored);
    row.revoked = true;
    assert_int_equal(
        cf_ocsp_store_many(f->pg, ca_id, responder, now, now + 60, &row, 1, &stored, &err), 0);
    assert_int_equal(stored, 1);
    assert_true(row.stored);
    free(rev_serial);
    free(hold_serial);
    X509_free(leaf_good);
    X509_free(leaf_revoked);
    X509_free(leaf_hold);
    X509_free(ca);
}

/* ---- 3. bad input ------------------------------------------------------------------- */

static void test_bad_input(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f);
    X509 *ca = s_ca_init(f, "plain", "certfleet OCSP plain");
    /* presign */
    s_assert_error(s_call(f, "ocsp.presign", json_pack("{s:s}", "ca", "nope"), NULL, 0),
                   "unknown_ca", "params.ca");
    s_assert_error(s_call(f, "ocsp.presign", json_pack("{s:s}", "ca", "plain"), NULL, 0),
                   "no_responder", "params.ca");
    s_assert_error(s_call(f, "ocsp.presign", json_pack("{}"), NULL, 0), "missing_field",
                   "params.ca");
    s_assert_error(s_call(f, "ocsp.presign", json_pack("{s:i}", "ca", 5), NULL, 0), "invalid_type",
                   "params.ca");
    s_assert_error(s_call(f, "ocsp.presign",
                          json_pack("{s:s, s:i, s:i}", "ca", "plain", "shards", 4, "shard", 4),
                          NULL, 0),
                   "invalid_value", "params.shard");
    s_assert_error(
        s_call(f, "ocsp.presign", json_pack("{s:s, s:i}", "ca", "plain", "shards", 0), NULL, 0),
        "invalid_value", "params.shards");
    s_assert_error(
        s_call(f, "ocsp.presign", json_pack("{s:s, s:i}", "ca", "plain", "shards", 5000), NULL, 0),
        "invalid_value", "params.shards");
    s_assert_error(
        s_call(f, "ocsp.presign", json_pack("{s:s, s:s}", "ca", "plain", "shards", "x"), NULL, 0),
        "invalid_type", "params.shards");
    s_assert_error(
        s_call(f, "ocsp.presign", json_pack("{s:s, s:i}", "ca", "plain", "shard", -1), NULL, 0),
        "invalid_value", "params.shard");
    s_assert_error(
        s_call(f, "ocsp.presign", json_pack("{s:s, s:s}", "ca", "plain", "force", "yes"), NULL, 0),
        "invalid_type", "params.force");
    s_assert_error(
        s_call(f, "ocsp.presign", json_pack("{s:s, s:i}", "ca", "plain", "color", 1), NULL, 0),
        "unknown_field", "params.color");
    /* keygen */
    s_assert_error(s_call(f, "ocsp.keygen", json_pack("{s:s}", "ca", "nope"), NULL, 0),
                   "unknown_ca", "params.ca");
    s_assert_error(s_call(f, "ocsp.keygen",
                          json_pack("{s:s, s:s}", "ca", "plain", "key_type", "XYZ"), NULL, 0),
                   "invalid_value", "params.key_type");
    s_assert_error(
        s_call(f, "ocsp.keygen", json_pack("{s:s, s:i}", "ca", "plain", "expires", 0), NULL, 0),
        "invalid_value", "params.expires");
    s_assert_error(
        s_call(f, "ocsp.keygen", json_pack("{s:s, s:s}", "ca", "plain", "expires", "3"), NULL, 0),
        "invalid_type", "params.expires");
    s_assert_error(s_call(f, "ocsp.keygen",
                          json_pack("{s:s, s:s}", "ca", "plain", "algorithm", "MD5"), NULL, 0),
                   "invalid_value", "params.algorithm");
    s_assert_error(s_call(f, "ocsp.keygen",
                          json_pack("{s:s, s:s}", "ca", "plain", "profile", "nope"), NULL, 0),
                   "unknown_profile", "params.profile");
    s_assert_error(s_call(f, "ocsp.keygen",
                          json_pack("{s:s, s:s}", "ca", "plain", "key_backend", "hsm"), NULL, 0),
                   "unknown_backend", "params.key_backend");
    s_assert_error(s_call(f, "ocsp.keygen",
                          json_pack("{s:s, s:s}", "ca", "plain", "elliptic_curve", "nope"), NULL,
                          0),
                   "invalid_value", "params.elliptic_curve");
    s_assert_error(
        s_call(f, "ocsp.keygen", json_pack("{s:s, s:i}", "ca", "plain", "force", 1), NULL, 0),
        "invalid_type", "params.force");
    s_assert_error(
        s_call(f, "ocsp.keygen", json_pack("{s:s, s:i}", "ca", "plain", "serial", 1), NULL, 0),
        "unknown_field", "params.serial");
    s_sql(f, "UPDATE certificate_authorities SET enabled = false WHERE name = 'plain'");
    s_assert_error(s_call(f, "ocsp.keygen", json_pack("{s:s}", "ca", "plain"), NULL, 0),
                   "ca_disabled", "params.ca");
    /* Nothing was written: no responder, no certificate, no key, no response. */
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responders"), 0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM ocsp_responses"), 0);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), 0);
    X509_free(ca);
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_keygen, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_presign, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
