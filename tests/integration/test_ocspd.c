/* certfleet-ocspd end to end: a real server on loopback over a fresh database and the test
 * Redis. A CA, a leaf, a pre-signed OCSP response and CRLs made here with OpenSSL are put in
 * PostgreSQL; then POST and GET answer the stored bytes with RFC 5019 caching headers, the
 * openssl ocsp client says "good", every error maps to its OCSP status, a Redis miss is
 * refilled from PostgreSQL, CRLs and CA certificates come as DER and PEM, and idle or slow
 * clients do not hold up the others. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cf_ocsp_request.h"
#include "cf_pg.h"
#include "cf_redis.h"
#include "cf_revocation.h"
#include "cf_test.h"
#include "cf_test_fleet.h"

#define S_CA_NAME "test-ca"
/* Above this a CRL is not put into Redis (set low so the test's big CRL is "large"). */
#define S_CRL_CACHE_MAX 2000

typedef struct {
    EVP_PKEY *key; /* the CA's key */
    X509 *cert;    /* the self-signed CA certificate */
    int64_t id;    /* its certificate_authorities.id */
} s_ca_t;

typedef struct {
    cf_test_fleet_t fleet;   /* folder, database, config */
    pid_t server;            /* certfleet-ocspd */
    int port;                /* its HTTP port */
    s_ca_t ca;               /* the CA served */
    s_ca_t other;            /* a CA not in the database */
    ASN1_INTEGER *serial;    /* the leaf's serial */
    char serial_hex[80];     /* as stored */
    unsigned char *resp_der; /* the pre-signed OCSPResponse */
    int resp_len;            /* its length */
    int64_t this_update;     /* of the response */
    int64_t next_update;     /* of the response */
    unsigned char *crl_der;  /* the user-scope CRL */
    int crl_len;             /* its length */
    unsigned char *big_crl;  /* the "all" scope CRL, over S_CRL_CACHE_MAX */
    int big_crl_len;         /* its length */
    cf_redis_t *redis;       /* for looking into the cache */
    cf_pg_t *pg;             /* the fresh database */
} s_env_t;

/* ---- HTTP over a raw socket --------------------------------------------------------- */

typedef struct {
    int status;          /* HTTP status, 0 when no answer */
    char *head;          /* status line and headers */
    unsigned char *body; /* body */
    size_t len;          /* body length */
} s_http_t;

static void s_http_free(s_http_t *r)
{
    free(r->head);
    free(r->body);
    memset(r, 0, sizeof *r);
}

static int s_connect(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
}

static void s_send_all(int fd, const void *data, size_t len)
{
    const char *p = data;
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        p += n;
        len -= (size_t)n;
    }
}

/* Read a whole answer (the server closes: we asked for "Connection: close"). */
static void s_read_answer(int fd, s_http_t *out)
{
    size_t cap = 65536, n = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (n == cap)
            buf = realloc(buf, cap *= 2);
        ssize_t r = recv(fd, buf + n, cap - n, 0);
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    memset(out, 0, sizeof *out);
    char *end = memmem(buf, n, "\r\n\r\n", 4);
    if (end && n > 12 && memcmp(buf, "HTTP/1.", 7) == 0) {
        out->status = atoi(buf + 9);
        out->head = strndup(buf, (size_t)(end - buf) + 2);
        out->len = n - (size_t)(end + 4 - buf);
        out->body = malloc(out->len + 1);
        memcpy(out->body, end + 4, out->len);
        out->body[out->len] = 0;
    }
    free(buf);
}

/* One request: METHOD PATH with EXTRA headers ("Name: value\r\n"...) and BODY. */
static void s_http(s_env_t *env, const char *method, const char *path, const char *extra,
                   const void *body, size_t len, s_http_t *out)
{
    int fd = s_connect(env->port);
    assert_true(fd >= 0);
    char head[16384];
    int n =
        snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s",
                 method, path, extra ? extra : "");
    if (body)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", len);
    n += snprintf(head + n, sizeof head - (size_t)n, "\r\n");
    s_send_all(fd, head, (size_t)n);
    if (body)
        s_send_all(fd, body, len);
    s_read_answer(fd, out);
    close(fd);
}

/* The value of header NAME (a static copy), or NULL. */
static const char *s_header(const s_http_t *r, const char *name)
{
    static char value[512];
    char key[128];
    snprintf(key, sizeof key, "\r\n%s:", name);
    const char *p = r->head ? strcasestr(r->head, key) : NULL;
    if (!p)
        return NULL;
    p += strlen(key);
    while (*p == ' ')
        p++;
    size_t n = strcspn(p, "\r\n");
    snprintf(value, sizeof value, "%.*s", (int)n, p);
    return value;
}

/* ---- PKI --------------------------------------------------------------------------- */

static void s_make_ca(s_ca_t *ca, const char *cn)
{
    ca->key = EVP_EC_gen("P-256");
    ca->cert = X509_new();
    X509_set_version(ca->cert, 2);
    X509_NAME *name = X509_get_subject_name(ca->cert);
    X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)cn, -1, -1, 0);
    X509_set_issuer_name(ca->cert, name);
    BIGNUM *bn = BN_new();
    BN_rand(bn, 64, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY);
    BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(ca->cert));
    BN_free(bn);
    X509_gmtime_adj(X509_getm_notBefore(ca->cert), -3600);
    X509_gmtime_adj(X509_getm_notAfter(ca->cert), 86400);
    X509_set_pubkey(ca->cert, ca->key);
    X509_EXTENSION *bc = X509V3_EXT_conf_nid(NULL, NULL, NID_basic_constraints, "critical,CA:TRUE");
    X509_add_ext(ca->cert, bc, -1);
    X509_EXTENSION_free(bc);
    assert_true(X509_sign(ca->cert, ca->key, EVP_sha256()) > 0);
    /* Ids far from those of other tests' databases: the Redis keys are shared. */
    unsigned int r = 0;
    RAND_bytes((unsigned char *)&r, sizeof r);
    ca->id = 1000000000LL + (int64_t)(r % 1000000000u);
}

static void s_free_ca(s_ca_t *ca)
{
    X509_free(ca->cert);
    EVP_PKEY_free(ca->key);
}

static unsigned char *s_der_cert(X509 *cert, int *len)
{
    unsigned char *der = NULL;
    *len = i2d_X509(cert, &der);
    return der;
}

/* A SHA-1 (or MD) OCSP request for SERIAL issued by CA. */
static unsigned char *s_request(const s_ca_t *ca, const ASN1_INTEGER *serial, const EVP_MD *md,
                                size_t *len)
{
    OCSP_REQUEST *req = OCSP_REQUEST_new();
    OCSP_CERTID *id = OCSP_cert_id_new(md, X509_get_subject_name(ca->cert),
                                       X509_get0_pubkey_bitstr(ca->cert), serial);
    OCSP_request_add0_id(req, id);
    OCSP_request_add1_nonce(req, NULL, -1);
    unsigned char *der = NULL;
    *len = (size_t)i2d_OCSP_REQUEST(req, &der);
    OCSP_REQUEST_free(req);
    return der;
}

static unsigned char *s_sign_response(const s_ca_t *ca, const ASN1_INTEGER *serial,
                                      int64_t this_update, int64_t next_update, int *len)
{
    OCSP_BASICRESP *bs = OCSP_BASICRESP_new();
    OCSP_CERTID *cid = OCSP_cert_id_new(EVP_sha1(), X509_get_subject_name(ca->cert),
                                        X509_get0_pubkey_bitstr(ca->cert), serial);
    ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)this_update);
    ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)next_update);
    assert_non_null(OCSP_basic_add1_status(bs, cid, V_OCSP_CERTSTATUS_GOOD, 0, NULL, tu, nu));
    assert_int_equal(OCSP_basic_sign(bs, ca->cert, ca->key, EVP_sha256(), NULL, 0), 1);
    OCSP_RESPONSE *resp = OCSP_response_create(OCSP_RESPONSE_STATUS_SUCCESSFUL, bs);
    unsigned char *der = NULL;
    *len = i2d_OCSP_RESPONSE(resp, &der);
    OCSP_RESPONSE_free(resp);
    OCSP_BASICRESP_free(bs);
    OCSP_CERTID_free(cid);
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    return der;
}

static unsigned char *s_sign_crl(const s_ca_t *ca, int64_t this_update, int64_t next_update,
                                 int entries, int *len)
{
    X509_CRL *crl = X509_CRL_new();
    X509_CRL_set_version(crl, 1);
    X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->cert));
    ASN1_TIME *tu = ASN1_TIME_set(NULL, (time_t)this_update);
    ASN1_TIME *nu = ASN1_TIME_set(NULL, (time_t)next_update);
    X509_CRL_set1_lastUpdate(crl, tu);
    X509_CRL_set1_nextUpdate(crl, nu);
    for (int i = 0; i < entries; i++) {
        X509_REVOKED *rev = X509_REVOKED_new();
        ASN1_INTEGER *s = ASN1_INTEGER_new();
        ASN1_INTEGER_set(s, 0x100000 + i);
        X509_REVOKED_set_serialNumber(rev, s);
        X509_REVOKED_set_revocationDate(rev, tu);
        X509_CRL_add0_revoked(crl, rev);
        ASN1_INTEGER_free(s);
    }
    X509_CRL_sort(crl);
    assert_true(X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    *len = i2d_X509_CRL(crl, &der);
    X509_CRL_free(crl);
    ASN1_TIME_free(tu);
    ASN1_TIME_free(nu);
    return der;
}

/* ---- database ---------------------------------------------------------------------- */

static PGresult *s_exec(s_env_t *env, const char *sql, int n, const char *const *values,
                        const int *lengths, const int *formats)
{
    PGresult *res = cf_pg_exec_params(env->pg, sql, n, values, lengths, formats, 0);
    if (!res)
        fail_msg("%s: %s", sql, cf_pg_errstr(env->pg));
    return res;
}

static void s_insert_crl(s_env_t *env, const char *scope, const unsigned char *der, int len,
                         int64_t this_update, int64_t next_update)
{
    char id[24], tu[24], nu[24];
    snprintf(id, sizeof id, "%lld", (long long)env->ca.id);
    snprintf(tu, sizeof tu, "%lld", (long long)this_update);
    snprintf(nu, sizeof nu, "%lld", (long long)next_update);
    const char *v[] = {id, scope, tu, nu, (const char *)der};
    int l[] = {0, 0, 0, 0, len}, f[] = {0, 0, 0, 0, 1};
    PQclear(s_exec(env,
                   "INSERT INTO crls (ca_id, scope, shard, number, this_update, next_update, der)"
                   " VALUES ($1, $2, 0, 1, to_timestamp($3), to_timestamp($4), $5)",
                   5, v, l, f));
}

static void s_fill_database(s_env_t *env)
{
    int ca_len;
    unsigned char *ca_der = s_der_cert(env->ca.cert, &ca_len);
    char id[24], ca_serial[80];
    snprintf(id, sizeof id, "%lld", (long long)env->ca.id);
    BIGNUM *bn = ASN1_INTEGER_to_BN(X509_get_serialNumber(env->ca.cert), NULL);
    char *hex = BN_bn2hex(bn);
    snprintf(ca_serial, sizeof ca_serial, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);
    const char *v[] = {id, S_CA_NAME, ca_serial, (const char *)ca_der};
    int l[] = {0, 0, 0, ca_len}, f[] = {0, 0, 0, 1};
    PQclear(s_exec(env,
                   "INSERT INTO certificate_authorities (id, name, serial, subject, issuer,"
                   " valid_from, expires, der, key_backend, key_type) VALUES ($1, $2, $3, '[]',"
                   " '[]', now(), now() + interval '1 day', $4, 'storages', 'EC')",
                   4, v, l, f));
    /* The responder row the schema asks for: the CA signs its own responses here. */
    const char *cv[] = {id, ca_serial, (const char *)ca_der};
    int cl[] = {0, 0, ca_len}, cf[] = {0, 0, 1};
    PGresult *res = s_exec(env,
                           "INSERT INTO certificates (ca_id, serial, subject, valid_from, expires,"
                           " der) VALUES ($1, $2, '[]', now(), now() + interval '1 day', $3)"
                           " RETURNING id",
                           3, cv, cl, cf);
    char cert_id[24];
    snprintf(cert_id, sizeof cert_id, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    const char *rv[] = {id, cert_id};
    res = s_exec(env,
                 "INSERT INTO ocsp_responders (ca_id, certificate_id, key_backend, key_id,"
                 " valid_from, expires) VALUES ($1, $2, 'storages', 'test', now(),"
                 " now() + interval '1 day') RETURNING id",
                 2, rv, NULL, NULL);
    char responder[24];
    snprintf(responder, sizeof responder, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    OPENSSL_free(ca_der);

    char tu[24], nu[24];
    snprintf(tu, sizeof tu, "%lld", (long long)env->this_update);
    snprintf(nu, sizeof nu, "%lld", (long long)env->next_update);
    const char *ov[] = {id, env->serial_hex, tu, nu, responder, (const char *)env->resp_der};
    int ol[] = {0, 0, 0, 0, 0, env->resp_len}, of[] = {0, 0, 0, 0, 0, 1};
    PQclear(s_exec(env,
                   "INSERT INTO ocsp_responses (ca_id, serial, status, this_update, next_update,"
                   " responder_id, der) VALUES ($1, $2, 'good', to_timestamp($3),"
                   " to_timestamp($4), $5, $6)",
                   6, ov, ol, of));
    s_insert_crl(env, "user", env->crl_der, env->crl_len, env->this_update, env->next_update);
    s_insert_crl(env, "ca", env->crl_der, env->crl_len, env->this_update, env->next_update);
    s_insert_crl(env, "all", env->big_crl, env->big_crl_len, env->this_update, env->next_update);
}

/* ---- Redis ------------------------------------------------------------------------- */

static void s_redis_del(s_env_t *env, const char *key)
{
    redisReply *r = cf_redis_command(env->redis, "DEL %s", key);
    assert_non_null(r);
    freeReplyObject(r);
}

static void s_del_keys(s_env_t *env)
{
    char key[200];
    cf_revstore_ocsp_key(key, sizeof key, env->ca.id, env->serial_hex);
    s_redis_del(env, key);
    static const cf_scope_t scopes[] = {CF_SCOPE_ALL, CF_SCOPE_CA, CF_SCOPE_USER};
    for (size_t i = 0; i < 3; i++) {
        cf_revstore_crl_key(key, sizeof key, env->ca.id, scopes[i], 0);
        s_redis_del(env, key);
    }
}

/* ---- setup ------------------------------------------------------------------------- */

static int s_setup(void **state)
{
    s_env_t *env = calloc(1, sizeof *env);
    assert_int_equal(cf_test_fleet_init(&env->fleet, "ocspd"), 0);
    env->pg = cf_pg_new(env->fleet.conninfo);
    char host[64];
    int rport;
    assert_int_equal(cf_test_redis(host, sizeof host, &rport), 0);
    env->redis = cf_redis_new(host, rport, 2000);

    s_make_ca(&env->ca, "ocspd test CA");
    s_make_ca(&env->other, "ocspd other CA");
    /* The leaf's serial: 128 random bits with the top one set (DER adds a zero octet). */
    BIGNUM *bn = BN_new();
    BN_rand(bn, 128, BN_RAND_TOP_ONE, BN_RAND_BOTTOM_ANY);
    env->serial = BN_to_ASN1_INTEGER(bn, NULL);
    char *hex = BN_bn2hex(bn);
    snprintf(env->serial_hex, sizeof env->serial_hex, "%s", hex);
    OPENSSL_free(hex);
    BN_free(bn);

    env->this_update = (int64_t)time(NULL) - 60;
    env->next_update = env->this_update + 7200;
    env->resp_der =
        s_sign_response(&env->ca, env->serial, env->this_update, env->next_update, &env->resp_len);
    env->crl_der = s_sign_crl(&env->ca, env->this_update, env->next_update, 3, &env->crl_len);
    env->big_crl = s_sign_crl(&env->ca, env->this_update, env->next_update, 200, &env->big_crl_len);
    assert_true(env->big_crl_len > S_CRL_CACHE_MAX);
    s_fill_database(env);
    s_del_keys(env);

    char path[400];
    snprintf(path, sizeof path, "%s/ca.pem", env->fleet.dir);
    FILE *f = fopen(path, "w");
    PEM_write_X509(f, env->ca.cert);
    fclose(f);
    snprintf(path, sizeof path, "%s/other.pem", env->fleet.dir);
    f = fopen(path, "w");
    PEM_write_X509(f, env->other.cert);
    fclose(f);

    env->port = cf_test_free_port();
    char extra[512];
    snprintf(extra, sizeof extra,
             "[ocspd]\nlisten = 127.0.0.1:%d\nthreads = 4\nconnection_timeout_s = 5\n"
             "ca_cache_ms = 500\nmax_request_bytes = 8192\ncrl_cache_max_bytes = %d\n",
             env->port, S_CRL_CACHE_MAX);
    assert_int_equal(cf_test_fleet_write_config(&env->fleet, extra), 0);
    env->server = cf_test_fleet_start(&env->fleet, "certfleet-ocspd", "ocspd.log");
    assert_true(env->server > 0);
    /* Up once /health answers "ok". */
    int waited = 0;
    for (; waited < 10000; waited += 100) {
        int fd = s_connect(env->port);
        if (fd >= 0) {
            close(fd);
            s_http_t r;
            s_http(env, "GET", "/health", NULL, NULL, 0, &r);
            int status = r.status;
            s_http_free(&r);
            if (status == 200)
                break;
        }
        usleep(100 * 1000);
    }
    assert_true(waited < 10000);
    *state = env;
    return 0;
}

static int s_teardown(void **state)
{
    s_env_t *env = *state;
    int status = -1;
    if (env->server > 0) {
        /* SIGTERM stops it cleanly: exit status 0, every thread joined. */
        kill(env->server, SIGTERM);
        if (cf_test_wait_exit(env->server, 10000, &status) != 0) {
            cf_test_kill(env->server, SIGKILL);
            status = -1;
        }
    }
    s_del_keys(env);
    cf_redis_destroy(&env->redis);
    cf_pg_destroy(&env->pg);
    int reports = cf_test_fleet_cleanup(&env->fleet);
    s_free_ca(&env->ca);
    s_free_ca(&env->other);
    ASN1_INTEGER_free(env->serial);
    OPENSSL_free(env->resp_der);
    OPENSSL_free(env->crl_der);
    OPENSSL_free(env->big_crl);
    free(env);
    assert_int_equal(reports, 0);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    return 0;
}

/* ---- tests ------------------------------------------------------------------------- */

static void s_expect_ocsp_error(const s_http_t *r, int status)
{
    assert_int_equal(r->status, 200);
    assert_string_equal(s_header(r, "Content-Type"), "application/ocsp-response");
    assert_string_equal(s_header(r, "Cache-Control"), "no-store");
    size_t len;
    const unsigned char *der = cf_ocsp_error_response((cf_ocsp_error_status_t)status, &len);
    assert_int_equal(r->len, len);
    assert_memory_equal(r->body, der, len);
}

static void s_expect_stored(s_env_t *env, const s_http_t *r)
{
    assert_int_equal(r->status, 200);
    assert_string_equal(s_header(r, "Content-Type"), "application/ocsp-response");
    assert_int_equal(r->len, (size_t)env->resp_len);
    assert_memory_equal(r->body, env->resp_der, r->len);
    const char *cc = s_header(r, "Cache-Control");
    assert_non_null(cc);
    long max_age = atol(cc + strlen("max-age="));
    assert_true(strncmp(cc, "max-age=", 8) == 0);
    assert_true(max_age > 0 && max_age <= env->next_update - (int64_t)time(NULL) + 2);
    assert_non_null(strstr(cc, "public, no-transform, must-revalidate"));
    char date[64];
    time_t t = (time_t)env->this_update;
    struct tm tm;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
    assert_string_equal(s_header(r, "Last-Modified"), date);
    t = (time_t)env->next_update;
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&t, &tm));
    assert_string_equal(s_header(r, "Expires"), date);
    /* ETag: the quoted hex SHA-1 of the DER. */
    unsigned char md[20];
    unsigned int n;
    EVP_Digest(env->resp_der, (size_t)env->resp_len, md, &n, EVP_sha1(), NULL);
    char etag[48] = "\"";
    for (int i = 0; i < 20; i++)
        snprintf(etag + 1 + 2 * i, 3, "%02x", md[i]);
    strcat(etag, "\"");
    assert_string_equal(s_header(r, "ETag"), etag);
}

/* The base64 of DER, URL-encoded as RFC 5019 appendix A asks. */
static void s_get_path(const char *prefix, const unsigned char *der, size_t len, char *out,
                       size_t cap)
{
    char b64[4096];
    EVP_EncodeBlock((unsigned char *)b64, der, (int)len);
    size_t n = (size_t)snprintf(out, cap, "%s", prefix);
    for (const char *p = b64; *p && n + 4 < cap; p++) {
        if (*p == '+' || *p == '/' || *p == '=')
            n += (size_t)snprintf(out + n, cap - n, "%%%02X", (unsigned char)*p);
        else
            out[n++] = *p;
    }
    out[n] = '\0';
}

static void test_post_and_get(void **state)
{
    s_env_t *env = *state;
    size_t len;
    unsigned char *req = s_request(&env->ca, env->serial, EVP_sha1(), &len);
    s_http_t r;
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", "Content-Type: application/ocsp-request\r\n", req,
           len, &r);
    s_expect_stored(env, &r);
    char etag[64];
    snprintf(etag, sizeof etag, "%s", s_header(&r, "ETag"));
    s_http_free(&r);

    /* Without the trailing slash, and with no name at all (the CA found by its key hash). */
    s_http(env, "POST", "/ocsp/" S_CA_NAME, "Content-Type: application/ocsp-request\r\n", req, len,
           &r);
    s_expect_stored(env, &r);
    s_http_free(&r);
    s_http(env, "POST", "/ocsp/", "Content-Type: application/ocsp-request\r\n", req, len, &r);
    s_expect_stored(env, &r);
    s_http_free(&r);

    /* GET: URL-encoded base64, and raw base64 with its '/' and '+'. */
    char path[8192];
    s_get_path("/ocsp/" S_CA_NAME "/", req, len, path, sizeof path);
    s_http(env, "GET", path, NULL, NULL, 0, &r);
    s_expect_stored(env, &r);
    s_http_free(&r);
    char b64[4096];
    EVP_EncodeBlock((unsigned char *)b64, req, (int)len);
    snprintf(path, sizeof path, "/ocsp/" S_CA_NAME "/%s", b64);
    s_http(env, "GET", path, NULL, NULL, 0, &r);
    s_expect_stored(env, &r);
    s_http_free(&r);
    snprintf(path, sizeof path, "/ocsp/%s", b64);
    s_http(env, "GET", path, NULL, NULL, 0, &r);
    s_expect_stored(env, &r);
    s_http_free(&r);

    /* If-None-Match with the ETag: 304, no body. */
    s_get_path("/ocsp/" S_CA_NAME "/", req, len, path, sizeof path);
    char inm[128];
    snprintf(inm, sizeof inm, "If-None-Match: %s\r\n", etag);
    s_http(env, "GET", path, inm, NULL, 0, &r);
    assert_int_equal(r.status, 304);
    assert_int_equal(r.len, 0);
    assert_string_equal(s_header(&r, "ETag"), etag);
    s_http_free(&r);
    OPENSSL_free(req);
}

static int s_run(const char *cmd, char *out, size_t cap)
{
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    size_t n = fread(out, 1, cap - 1, p);
    out[n] = '\0';
    return pclose(p);
}

static void test_openssl_client(void **state)
{
    s_env_t *env = *state;
    char cmd[2048], out[16384];
    snprintf(cmd, sizeof cmd,
             "openssl ocsp -issuer '%s/ca.pem' -serial 0x%s -url http://127.0.0.1:%d/ocsp/%s/"
             " -CAfile '%s/ca.pem' -resp_text 2>&1",
             env->fleet.dir, env->serial_hex, env->port, S_CA_NAME, env->fleet.dir);
    int rc = s_run(cmd, out, sizeof out);
    if (rc != 0 || !strstr(out, ": good") || !strstr(out, "Response verify OK"))
        fail_msg("openssl ocsp: %s", out);
    /* An unknown serial: openssl reports the responder's "unauthorized". */
    snprintf(cmd, sizeof cmd,
             "openssl ocsp -issuer '%s/ca.pem' -serial 0x0BADC0DE -url "
             "http://127.0.0.1:%d/ocsp/%s/ -CAfile '%s/ca.pem' 2>&1",
             env->fleet.dir, env->port, S_CA_NAME, env->fleet.dir);
    s_run(cmd, out, sizeof out);
    if (!strstr(out, "unauthorized"))
        fail_msg("openssl ocsp on an unknown serial: %s", out);
}

static void test_unauthorized(void **state)
{
    s_env_t *env = *state;
    s_http_t r;
    size_t len;
    /* Unknown serial. */
    ASN1_INTEGER *unknown = ASN1_INTEGER_new();
    ASN1_INTEGER_set(unknown, 0x0badc0de);
    unsigned char *req = s_request(&env->ca, unknown, EVP_sha1(), &len);
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    s_expect_ocsp_error(&r, CF_OCSP_UNAUTHORIZED);
    s_http_free(&r);
    OPENSSL_free(req);
    ASN1_INTEGER_free(unknown);
    /* Another CA's certificate asked at this CA's URL, and at the nameless URL. */
    req = s_request(&env->other, env->serial, EVP_sha1(), &len);
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    s_expect_ocsp_error(&r, CF_OCSP_UNAUTHORIZED);
    s_http_free(&r);
    s_http(env, "POST", "/ocsp/", NULL, req, len, &r);
    s_expect_ocsp_error(&r, CF_OCSP_UNAUTHORIZED);
    s_http_free(&r);
    OPENSSL_free(req);
    /* SHA-256 CertID (RFC 5019: SHA-1 only). */
    req = s_request(&env->ca, env->serial, EVP_sha256(), &len);
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    s_expect_ocsp_error(&r, CF_OCSP_UNAUTHORIZED);
    s_http_free(&r);
    OPENSSL_free(req);
    /* A CA name that does not exist: still an OCSP answer. */
    req = s_request(&env->ca, env->serial, EVP_sha1(), &len);
    s_http(env, "POST", "/ocsp/no-such-ca/", NULL, req, len, &r);
    s_expect_ocsp_error(&r, CF_OCSP_UNAUTHORIZED);
    s_http_free(&r);
    char path[8192];
    s_get_path("/ocsp/no-such-ca/", req, len, path, sizeof path);
    s_http(env, "GET", path, NULL, NULL, 0, &r);
    s_expect_ocsp_error(&r, CF_OCSP_UNAUTHORIZED);
    s_http_free(&r);
    OPENSSL_free(req);
}

static void test_malformed_and_oversized(void **state)
{
    s_env_t *env = *state;
    s_http_t r;
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", "Content-Type: application/ocsp-request\r\n",
           "garbage", 7, &r);
    s_expect_ocsp_error(&r, CF_OCSP_MALFORMED_REQUEST);
    s_http_free(&r);
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, "", 0, &r);
    s_expect_ocsp_error(&r, CF_OCSP_MALFORMED_REQUEST);
    s_http_free(&r);
    s_http(env, "GET", "/ocsp/" S_CA_NAME "/!!notbase64!!", NULL, NULL, 0, &r);
    s_expect_ocsp_error(&r, CF_OCSP_MALFORMED_REQUEST);
    s_http_free(&r);
    s_http(env, "GET", "/ocsp/" S_CA_NAME "/aGVsbG8", NULL, NULL, 0, &r);
    s_expect_ocsp_error(&r, CF_OCSP_MALFORMED_REQUEST);
    s_http_free(&r);

    /* Announced too large: 413 at once, before any body is sent. */
    int fd = s_connect(env->port);
    const char *head = "POST /ocsp/" S_CA_NAME "/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                       "Content-Length: 10000\r\n\r\n";
    s_send_all(fd, head, strlen(head));
    s_read_answer(fd, &r);
    close(fd);
    assert_int_equal(r.status, 413);
    size_t len;
    const unsigned char *der = cf_ocsp_error_response(CF_OCSP_MALFORMED_REQUEST, &len);
    assert_int_equal(r.len, len);
    assert_memory_equal(r.body, der, len);
    s_http_free(&r);

    /* Chunked, so only found too large while reading. */
    fd = s_connect(env->port);
    char *body = malloc(20000);
    int n = snprintf(body, 20000,
                     "POST /ocsp/%s/ HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
                     "Transfer-Encoding: chunked\r\n\r\n%x\r\n",
                     S_CA_NAME, 9000);
    memset(body + n, 'A', 9000);
    n += 9000;
    n += snprintf(body + n, 20000 - (size_t)n, "\r\n0\r\n\r\n");
    s_send_all(fd, body, (size_t)n);
    s_read_answer(fd, &r);
    close(fd);
    free(body);
    assert_int_equal(r.status, 413);
    s_http_free(&r);
}

static void test_redis_refill(void **state)
{
    s_env_t *env = *state;
    char key[200];
    cf_revstore_ocsp_key(key, sizeof key, env->ca.id, env->serial_hex);
    s_redis_del(env, key);
    size_t len;
    unsigned char *req = s_request(&env->ca, env->serial, EVP_sha1(), &len);
    s_http_t r;
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    s_expect_stored(env, &r);
    s_http_free(&r);
    /* Put back with the header and the expiry the workers use. */
    redisReply *v = cf_redis_command(env->redis, "GET %s", key);
    assert_non_null(v);
    assert_int_equal(v->type, REDIS_REPLY_STRING);
    int64_t tu, nu;
    assert_int_equal(cf_revstore_parse((const unsigned char *)v->str, v->len, &tu, &nu), 0);
    assert_int_equal(tu, env->this_update);
    assert_int_equal(nu, env->next_update);
    assert_int_equal(v->len, CF_REVSTORE_HEADER + (size_t)env->resp_len);
    assert_memory_equal(v->str + CF_REVSTORE_HEADER, env->resp_der, env->resp_len);
    freeReplyObject(v);
    v = cf_redis_command(env->redis, "EXPIRETIME %s", key);
    assert_non_null(v);
    assert_int_equal(v->integer, env->next_update);
    freeReplyObject(v);

    /* Redis is read first: a newer response there is what is served. */
    int newer_len;
    unsigned char *newer =
        s_sign_response(&env->ca, env->serial, env->this_update + 1, env->next_update, &newer_len);
    unsigned char *value = malloc(CF_REVSTORE_HEADER + (size_t)newer_len);
    cf_revstore_header(value, env->this_update + 1, env->next_update);
    memcpy(value + CF_REVSTORE_HEADER, newer, (size_t)newer_len);
    v = cf_redis_command(env->redis, "SET %s %b EXAT %lld", key, value,
                         CF_REVSTORE_HEADER + (size_t)newer_len, (long long)env->next_update);
    assert_non_null(v);
    freeReplyObject(v);
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, (size_t)newer_len);
    assert_memory_equal(r.body, newer, r.len);
    s_http_free(&r);
    free(value);
    OPENSSL_free(newer);
    /* And gone from Redis again: PostgreSQL answers. */
    s_redis_del(env, key);
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    s_expect_stored(env, &r);
    s_http_free(&r);
    OPENSSL_free(req);
}

/* With [ocspd] response_cache_ms a response is served from the thread's memory for that long:
 * a newer one in Redis shows only afterwards (the server without the cache sees it at once). */
static void test_response_cache(void **state)
{
    s_env_t *env = *state;
    int main_port = env->port;
    int port = cf_test_free_port();
    char listen[64], log[400];
    snprintf(listen, sizeof listen, "CERTFLEET_OCSPD_LISTEN=127.0.0.1:%d", port);
    snprintf(log, sizeof log, "%s/ocspd-cached.log", env->fleet.dir);
    const char *extra_env[] = {listen, "CERTFLEET_OCSPD_RESPONSE_CACHE_MS=2000",
                               "CERTFLEET_OCSPD_THREADS=1", NULL};
    pid_t pid =
        cf_test_spawn(log, extra_env, "certfleet-ocspd", "--config", env->fleet.config, NULL);
    assert_true(pid > 0);
    env->port = port;
    s_http_t r;
    int waited = 0;
    for (; waited < 10000; waited += 100) {
        int fd = s_connect(port);
        if (fd >= 0) {
            close(fd);
            break;
        }
        usleep(100 * 1000);
    }
    assert_true(waited < 10000);
    char key[200];
    cf_revstore_ocsp_key(key, sizeof key, env->ca.id, env->serial_hex);
    s_redis_del(env, key);
    size_t len;
    unsigned char *req = s_request(&env->ca, env->serial, EVP_sha1(), &len);
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    s_expect_stored(env, &r);
    s_http_free(&r);
    /* A newer response in Redis. */
    int newer_len;
    unsigned char *newer =
        s_sign_response(&env->ca, env->serial, env->this_update + 1, env->next_update, &newer_len);
    unsigned char *value = malloc(CF_REVSTORE_HEADER + (size_t)newer_len);
    cf_revstore_header(value, env->this_update + 1, env->next_update);
    memcpy(value + CF_REVSTORE_HEADER, newer, (size_t)newer_len);
    redisReply *v =
        cf_redis_command(env->redis, "SET %s %b EXAT %lld", key, value,
                         CF_REVSTORE_HEADER + (size_t)newer_len, (long long)env->next_update);
    assert_non_null(v);
    freeReplyObject(v);
    /* The cached server still answers the first; the other one the newer. */
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    s_expect_stored(env, &r);
    s_http_free(&r);
    env->port = main_port;
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    assert_int_equal(r.len, (size_t)newer_len);
    assert_memory_equal(r.body, newer, r.len);
    s_http_free(&r);
    /* Once the slot has aged out, the cached server sees it too. */
    usleep(2500 * 1000);
    env->port = port;
    s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, (size_t)newer_len);
    assert_memory_equal(r.body, newer, r.len);
    s_http_free(&r);
    env->port = main_port;
    assert_int_equal(cf_test_kill(pid, SIGTERM), 0);
    s_redis_del(env, key);
    free(value);
    OPENSSL_free(newer);
    OPENSSL_free(req);
}

/* Save BODY to a file of the test folder and run CMD with that file's path appended. */
static int s_openssl_accepts(s_env_t *env, const s_http_t *r, const char *cmd)
{
    char path[400], line[1024], out[4096];
    snprintf(path, sizeof path, "%s/download", env->fleet.dir);
    FILE *f = fopen(path, "wb");
    fwrite(r->body, 1, r->len, f);
    fclose(f);
    snprintf(line, sizeof line, "%s '%s'", cmd, path);
    return s_run(line, out, sizeof out);
}

static void test_crl_and_ca(void **state)
{
    s_env_t *env = *state;
    s_http_t r;
    static const char *const crl_paths[] = {"/crl/" S_CA_NAME ".crl", "/crl/" S_CA_NAME "/0.crl",
                                            "/crl/" S_CA_NAME "/ca.crl"};
    for (size_t i = 0; i < 3; i++) {
        s_http(env, "GET", crl_paths[i], NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(s_header(&r, "Content-Type"), "application/pkix-crl");
        assert_int_equal(r.len, (size_t)env->crl_len);
        assert_memory_equal(r.body, env->crl_der, r.len);
        assert_non_null(s_header(&r, "Last-Modified"));
        assert_non_null(s_header(&r, "Expires"));
        assert_non_null(strstr(s_header(&r, "Cache-Control"), "max-age="));
        assert_int_equal(s_openssl_accepts(env, &r, "openssl crl -inform DER -noout -in"), 0);
        s_http_free(&r);
    }
    /* Into Redis after the first read. */
    char key[200];
    cf_revstore_crl_key(key, sizeof key, env->ca.id, CF_SCOPE_USER, 0);
    redisReply *v = cf_redis_command(env->redis, "EXISTS %s", key);
    assert_int_equal(v->integer, 1);
    freeReplyObject(v);

    s_http(env, "GET", "/crl/" S_CA_NAME ".crl?format=pem", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(s_header(&r, "Content-Type"), "application/x-pem-file");
    assert_true(strncmp((char *)r.body, "-----BEGIN X509 CRL-----\n", 25) == 0);
    assert_int_equal(s_openssl_accepts(env, &r, "openssl crl -noout -in"), 0);
    s_http_free(&r);

    /* The big "all" CRL is served but never put into Redis. */
    s_http(env, "GET", "/crl/" S_CA_NAME "/all.crl", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, (size_t)env->big_crl_len);
    assert_memory_equal(r.body, env->big_crl, r.len);
    s_http_free(&r);
    cf_revstore_crl_key(key, sizeof key, env->ca.id, CF_SCOPE_ALL, 0);
    v = cf_redis_command(env->redis, "EXISTS %s", key);
    assert_int_equal(v->integer, 0);
    freeReplyObject(v);

    /* Missing CRLs and CAs. */
    s_http(env, "GET", "/crl/" S_CA_NAME "/attribute.crl", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    s_http_free(&r);
    s_http(env, "GET", "/crl/no-such-ca.crl", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    s_http_free(&r);

    /* The CA certificate. */
    int ca_len;
    unsigned char *ca_der = s_der_cert(env->ca.cert, &ca_len);
    s_http(env, "GET", "/ca/" S_CA_NAME ".der", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(s_header(&r, "Content-Type"), "application/pkix-cert");
    assert_int_equal(r.len, (size_t)ca_len);
    assert_memory_equal(r.body, ca_der, r.len);
    assert_int_equal(s_openssl_accepts(env, &r, "openssl x509 -inform DER -noout -in"), 0);
    s_http_free(&r);
    static const char *const pem_paths[] = {"/ca/" S_CA_NAME ".pem",
                                            "/ca/" S_CA_NAME ".der?format=pem"};
    for (size_t i = 0; i < 2; i++) {
        s_http(env, "GET", pem_paths[i], NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        assert_string_equal(s_header(&r, "Content-Type"), "application/x-pem-file");
        assert_int_equal(s_openssl_accepts(env, &r, "openssl x509 -noout -in"), 0);
        s_http_free(&r);
    }
    s_http(env, "GET", "/ca/no-such-ca.der", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    s_http_free(&r);
    OPENSSL_free(ca_der);
}

static void test_paths_and_methods(void **state)
{
    s_env_t *env = *state;
    s_http_t r;
    s_http(env, "GET", "/health", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal((char *)r.body, "ok\n");
    s_http_free(&r);
    s_http(env, "GET", "/nope", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 404);
    s_http_free(&r);
    s_http(env, "PUT", "/ocsp/" S_CA_NAME "/", NULL, "x", 1, &r);
    assert_int_equal(r.status, 405);
    assert_non_null(s_header(&r, "Allow"));
    s_http_free(&r);
    s_http(env, "DELETE", "/crl/" S_CA_NAME ".crl", NULL, NULL, 0, &r);
    assert_int_equal(r.status, 405);
    s_http_free(&r);
    s_http(env, "POST", "/ca/" S_CA_NAME ".der", NULL, "x", 1, &r);
    assert_int_equal(r.status, 405);
    s_http_free(&r);
}

typedef struct {
    int port;          /* server port */
    volatile int stop; /* set by the main thread */
} s_slow_t;

/* A client that sends a request one byte every 50 ms until told to stop. */
static void *s_slow_sender(void *arg)
{
    s_slow_t *slow = arg;
    int fd = s_connect(slow->port);
    const char *text = "POST /ocsp/" S_CA_NAME "/ HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ";
    for (size_t i = 0; !slow->stop; i++) {
        char c = i < strlen(text) ? text[i] : 'a';
        s_send_all(fd, &c, 1);
        usleep(50 * 1000);
    }
    close(fd);
    return NULL;
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void test_idle_and_slow_clients(void **state)
{
    s_env_t *env = *state;
    int idle[20];
    for (int i = 0; i < 20; i++) {
        idle[i] = s_connect(env->port);
        assert_true(idle[i] >= 0);
    }
    s_slow_t slow = {.port = env->port};
    pthread_t slow_threads[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&slow_threads[i], NULL, s_slow_sender, &slow);
    usleep(100 * 1000);

    size_t len;
    unsigned char *req = s_request(&env->ca, env->serial, EVP_sha1(), &len);
    double start = s_now(), worst = 0;
    for (int i = 0; i < 200; i++) {
        double t0 = s_now();
        s_http_t r;
        s_http(env, "POST", "/ocsp/" S_CA_NAME "/", NULL, req, len, &r);
        assert_int_equal(r.status, 200);
        assert_int_equal(r.len, (size_t)env->resp_len);
        s_http_free(&r);
        double dt = s_now() - t0;
        if (dt > worst)
            worst = dt;
    }
    double total = s_now() - start;
    slow.stop = 1;
    for (int i = 0; i < 2; i++)
        pthread_join(slow_threads[i], NULL);
    for (int i = 0; i < 20; i++)
        close(idle[i]);
    OPENSSL_free(req);
    fprintf(stderr, "200 requests beside 20 idle and 2 slow clients: %.3f s, worst %.3f s\n", total,
            worst);
    assert_true(worst < 1.0);
    assert_true(total < 4.0); /* well within the 5 s connection timeout */
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_post_and_get),
        cmocka_unit_test(test_openssl_client),
        cmocka_unit_test(test_unauthorized),
        cmocka_unit_test(test_malformed_and_oversized),
        cmocka_unit_test(test_redis_refill),
        cmocka_unit_test(test_response_cache),
        cmocka_unit_test(test_crl_and_ca),
        cmocka_unit_test(test_paths_and_methods),
        cmocka_unit_test(test_idle_and_slow_clients),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
