/* cf_test_jobs: jobs, CAs, certificates and SQL one-liners for integration tests
 * (cf_test_jobs.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_config.h"
#include "cf_msgpack.h"
#include "cf_test.h"
#include "cf_test_jobs.h"

cf_client_t *cf_test_client(const char *endpoint, int timeout_ms, int attempts)
{
    cf_client_t *client = cf_client_new(endpoint);
    assert_non_null(client);
    cf_client_set_timeout(client, timeout_ms);
    cf_client_set_attempts(client, attempts);
    return client;
}

void cf_test_pack_params(msgpack_sbuffer *buf, const json_t *params, const void *csr,
                         size_t csr_len)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, json_object_size(params) + (csr ? 1 : 0));
    const char *key;
    json_t *value;
    json_object_foreach((json_t *)params, key, value)
    {
        cf_msgpack_pack_cstr(&pk, key);
        assert_int_equal(cf_json_to_msgpack(value, &pk), 0);
    }
    if (csr) {
        cf_msgpack_pack_cstr(&pk, "csr");
        msgpack_pack_bin(&pk, csr_len);
        msgpack_pack_bin_body(&pk, csr, csr_len);
    }
}

cf_reply_t *cf_test_call(cf_client_t *client, const char *type, json_t *params, const void *csr,
                         size_t csr_len)
{
    assert_non_null(params);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cf_test_pack_params(&buf, params, csr, csr_len);
    json_decref(params);
    cf_reply_t *r = cf_client_call(client, type, buf.data, buf.size, 0);
    msgpack_sbuffer_destroy(&buf);
    assert_non_null(r);
    return r;
}

void cf_test_assert_ok(const cf_reply_t *r, const char *what)
{
    if (!cf_reply_ok(r)) {
        const cf_error_t *e = cf_reply_error(r);
        fail_msg("%s: %s (field \"%s\"): %s", what, e->code, e->field, e->message);
    }
}

X509 *cf_test_reply_cert(const cf_reply_t *r, const char *key)
{
    const msgpack_object *der = cf_msgpack_map_get(cf_reply_result(r), key);
    if (!der)
        fail_msg("no \"%s\" in the result", key);
    assert_int_equal(der->type, MSGPACK_OBJECT_BIN);
    const unsigned char *p = (const unsigned char *)der->via.bin.ptr;
    X509 *cert = d2i_X509(NULL, &p, (long)der->via.bin.size);
    assert_non_null(cert);
    return cert;
}

X509 *cf_test_ca_init(cf_client_t *client, const char *name, json_t *params)
{
    char subject[128];
    snprintf(subject, sizeof subject, "/O=certfleet test/CN=%s", name);
    json_t *p = json_pack("{s:s, s:s, s:s}", "name", name, "subject", subject, "key_type", "EC");
    if (params) {
        assert_int_equal(json_object_update(p, params), 0);
        json_decref(params);
    }
    cf_reply_t *r = cf_test_call(client, "ca.init", p, NULL, 0);
    char what[160];
    snprintf(what, sizeof what, "ca.init %s", name);
    cf_test_assert_ok(r, what);
    X509 *cert = cf_test_reply_cert(r, "der");
    cf_reply_destroy(&r);
    return cert;
}

void cf_test_ocsp_responder(cf_client_t *client, const char *ca)
{
    cf_reply_t *r = cf_test_call(client, "ocsp.keygen", json_pack("{s:s}", "ca", ca), NULL, 0);
    cf_test_assert_ok(r, "ocsp.keygen");
    cf_reply_destroy(&r);
}

unsigned char *cf_test_csr(const char *cn, int *len)
{
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    assert_non_null(key);
    X509_REQ *req = X509_REQ_new();
    assert_non_null(req);
    X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                               (const unsigned char *)cn, -1, -1, 0);
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    *len = i2d_X509_REQ(req, &der);
    assert_true(*len > 0);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    return der;
}

cf_reply_t *cf_test_issue(cf_client_t *client, json_t *params, const char *cn)
{
    int len;
    unsigned char *der = cf_test_csr(cn, &len);
    cf_reply_t *r = cf_test_call(client, "cert.issue", params, der, (size_t)len);
    OPENSSL_free(der);
    return r;
}

char *cf_test_query(cf_pg_t *pg, const char *sql)
{
    PGresult *res = cf_pg_exec_params(pg, sql, 0, NULL, NULL, NULL, 0);
    if (!res)
        fail_msg("%s: %s", sql, cf_pg_errstr(pg));
    char *v = strdup(PQntuples(res) ? PQgetvalue(res, 0, 0) : "");
    PQclear(res);
    return v;
}

long cf_test_count(cf_pg_t *pg, const char *sql)
{
    char *v = cf_test_query(pg, sql);
    long n = atol(v);
    free(v);
    return n;
}

void cf_test_sql(cf_pg_t *pg, const char *sql)
{
    if (cf_pg_exec(pg, sql) != 0)
        fail_msg("%s: %s", sql, cf_pg_errstr(pg));
}

cf_redis_t *cf_test_redis_db(int db)
{
    char host[64], text[16];
    int port;
    assert_int_equal(cf_test_redis(host, sizeof host, &port), 0);
    cf_config_t *cfg = cf_config_new();
    assert_non_null(cfg);
    snprintf(text, sizeof text, "%d", port);
    cf_config_set(cfg, "redis", "host", host);
    cf_config_set(cfg, "redis", "port", text);
    snprintf(text, sizeof text, "%d", db);
    cf_config_set(cfg, "redis", "db", text);
    cf_redis_t *redis = cf_redis_new_from_config(cfg);
    cf_config_destroy(&cfg);
    assert_non_null(redis);
    return redis;
}
