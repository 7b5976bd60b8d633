/* certfleet-validator end to end: a real broker and validator, PostgreSQL and Redis on loopback,
 * and the applicant's side played by the test: an HTTP server thread (http-01), dnsmasq
 * (dns-01, over UDP and, for an answer too large for UDP, TCP) and an OpenSSL server thread
 * that answers acme-tls/1 (tls-alpn-01). The ACME rows are inserted with SQL (a CA, an account
 * with a real P-256 JWK, orders, authorizations, challenges in "processing"); acme.validate
 * must move them as RFC 8555 7.1.6 draws them, answer with the right problem document when a
 * check fails, leave challenges that are not processing alone, and refuse bad params. CAA
 * (RFC 8659): a second CA with the CAA identity "ca.example.test" and dnsmasq serving CAA
 * records (--dns-rr=NAME,257,HEX) prove that a passed challenge becomes valid only when the
 * records allow that CA, found by climbing to the parents. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cf_base64url.h"
#include "cf_client.h"
#include "cf_jws.h"
#include "cf_lock.h"
#include "cf_msgpack.h"
#include "cf_pg.h"
#include "cf_redis.h"
#include "cf_test.h"
#include "cf_test_fleet.h"

#define S_TIMEOUT_MS   2000 /* [validator] timeout_ms of this fleet */
#define S_REDIRECTS    3
#define S_MAX_ROUTES   64
#define S_CAA_IDENTITY "ca.example.test" /* the CAA identity of the test's second CA */

/* What the HTTP server answers for one token. */
typedef enum {
    S_HTTP_KEYAUTH,  /* 200, the key authorization and a newline */
    S_HTTP_WRONG,    /* 200, another body */
    S_HTTP_LOOP,     /* 302 to itself */
    S_HTTP_REDIRECT, /* 302 to another host, the token with "-2" appended: KEYAUTH there */
    S_HTTP_HUGE,     /* 200, 20000 bytes */
    S_HTTP_SLOW,     /* nothing for longer than the timeout */
    S_HTTP_NOTFOUND, /* 404 */
} s_http_mode_t;

typedef struct {
    char token[64];     /* path token */
    s_http_mode_t mode; /* what to answer */
    char keyauth[256];  /* the key authorization */
} s_route_t;

/* One test certificate of the TLS responder, chosen by SNI. */
typedef struct {
    char name[64]; /* SNI */
    X509 *cert;    /* self-signed */
    bool alpn;     /* select acme-tls/1 */
} s_tls_cert_t;

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config, endpoint */
    pid_t broker;          /* broker pid */
    pid_t validator;       /* validator pid */
    pid_t dnsmasq;         /* dnsmasq pid */
    cf_client_t *client;   /* one job at a time */
    cf_pg_t *pg;           /* our connection to the database */
    cf_redis_t *redis;     /* our connection to the test's Redis database */
    int redis_db;          /* that database */
    EVP_PKEY *account_key; /* the account's P-256 key */
    json_t *jwk;           /* its public JWK */
    long account_id;       /* its row, under the CA without a CAA identity */
    long caa_account_id;   /* the same key under the CA whose CAA identity is S_CAA_IDENTITY */
    long seq;              /* makes slugs unique */

    int http_port;                  /* the HTTP server's port */
    int http_fd;                    /* its listening socket (-1: stopped) */
    pthread_t http_thread;          /* its accept loop */
    pthread_mutex_t mutex;          /* guards routes */
    s_route_t routes[S_MAX_ROUTES]; /* token -> answer */
    int nroutes;                    /* used */
    atomic_bool stop;               /* ends the server threads */

    int tls_port;              /* the TLS responder's port */
    int tls_fd;                /* its listening socket */
    pthread_t tls_thread;      /* its accept loop */
    EVP_PKEY *tls_key;         /* the key of every test certificate */
    s_tls_cert_t tls_certs[8]; /* by SNI */
    int ntls;                  /* used */

    int dns_port; /* dnsmasq's port */
} s_env_t;

/* ---- SQL ------------------------------------------------------------------------------------ */

static PGresult *s_query(s_env_t *e, const char *sql, int n, const char *const *values)
{
    PGresult *res = cf_pg_exec_params(e->pg, sql, n, values, NULL, NULL, 0);
    if (!res)
        fail_msg("%s: %s", sql, cf_pg_errstr(e->pg));
    return res;
}

static long s_insert(s_env_t *e, const char *sql, int n, const char *const *values)
{
    PGresult *res = s_query(e, sql, n, values);
    long id = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return id;
}

/* One text value of a one-row query with one parameter ("" for NULL). Caller frees. */
static char *s_value(s_env_t *e, const char *sql, const char *param)
{
    const char *values[1] = {param};
    PGresult *res = s_query(e, sql, 1, values);
    assert_int_equal(PQntuples(res), 1);
    char *out = strdup(PQgetisnull(res, 0, 0) ? "" : PQgetvalue(res, 0, 0));
    PQclear(res);
    return out;
}

static void s_assert_value(s_env_t *e, const char *sql, const char *param, const char *want)
{
    char *got = s_value(e, sql, param);
    if (strcmp(got, want) != 0)
        fail_msg("%s [%s]: expected \"%s\", got \"%s\"", sql, param, want, got);
    free(got);
}

#define S_CHALLENGE_STATUS "SELECT status FROM acme_challenges WHERE slug = $1"
#define S_AUTHZ_STATUS                                                                             \
    "SELECT a.status FROM acme_authorizations a JOIN acme_challenges c "                           \
    "ON c.authorization_id = a.id WHERE c.slug = $1"
#define S_ORDER_STATUS                                                                             \
    "SELECT o.status FROM acme_orders o JOIN acme_authorizations a ON a.order_id = o.id "          \
    "JOIN acme_challenges c ON c.authorization_id = a.id WHERE c.slug = $1"

/* A random base64url token of 32 octets (RFC 8555 8.1). */
static void s_token(char *out, size_t len)
{
    unsigned char b[32];
    assert_int_equal(RAND_bytes(b, sizeof b), 1);
    char *t = cf_base64url_encode(b, sizeof b);
    assert_non_null(t);
    snprintf(out, len, "%s", t);
    free(t);
}

typedef struct {
    char slug[64];     /* the challenge's slug */
    char token[64];    /* its token */
    char keyauth[256]; /* its key authorization */
} s_challenge_t;

/* An order of N names, each with one authorization holding one challenge of TYPE in
 * STATUS; EXPIRES_SQL is the authorizations' expiry. */
static void s_order_of(s_env_t *e, long account_id, int n, const char *const *names,
                       const char *type, const char *status, const char *expires_sql,
                       s_challenge_t *out)
{
    char account[32], slug[64];
    snprintf(account, sizeof account, "%ld", account_id);
    snprintf(slug, sizeof slug, "order-%ld", ++e->seq);
    const char *ov[2] = {account, slug};
    long order = s_insert(e,
                          "INSERT INTO acme_orders (account_id, slug, expires) VALUES ($1, $2, "
                          "now() + interval '1 day') RETURNING id",
                          2, ov);
    char order_text[32];
    snprintf(order_text, sizeof order_text, "%ld", order);
    for (int i = 0; i < n; i++) {
        snprintf(slug, sizeof slug, "authz-%ld", ++e->seq);
        const char *av[4] = {order_text, slug, names[i], expires_sql};
        long authz = s_insert(e,
                              "INSERT INTO acme_authorizations (order_id, slug, value, expires) "
                              "VALUES ($1, $2, $3, now() + $4::interval) RETURNING id",
                              4, av);
        char authz_text[32];
        snprintf(authz_text, sizeof authz_text, "%ld", authz);
        s_challenge_t *c = &out[i];
        snprintf(c->slug, sizeof c->slug, "chall-%ld", ++e->seq);
        s_token(c->token, sizeof c->token);
        assert_int_equal(cf_acme_key_authorization(c->token, e->jwk, c->keyauth, sizeof c->keyauth),
                         0);
        const char *cv[5] = {authz_text, c->slug, type, status, c->token};
        PQclear(s_query(e,
                        "INSERT INTO acme_challenges (authorization_id, slug, type, status, token) "
                        "VALUES ($1, $2, $3, $4, $5)",
                        5, cv));
    }
}

static void s_order(s_env_t *e, int n, const char *const *names, const char *type,
                    const char *status, const char *expires_sql, s_challenge_t *out)
{
    s_order_of(e, e->account_id, n, names, type, status, expires_sql, out);
}

/* ---- jobs ------------------------------------------------------------------------------------ */

/* acme.validate with PARAMS (a JSON text). Caller owns the reply. */
static cf_reply_t *s_validate_params(s_env_t *e, const char *params_json)
{
    json_t *params = json_loads(params_json, 0, NULL);
    assert_non_null(params);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    assert_int_equal(cf_json_to_msgpack(params, &pk), 0);
    json_decref(params);
    cf_reply_t *r = cf_client_call(e->client, "acme.validate", buf.data, buf.size, 0);
    msgpack_sbuffer_destroy(&buf);
    assert_non_null(r);
    return r;
}

static cf_reply_t *s_validate(s_env_t *e, const char *slug)
{
    char params[128];
    snprintf(params, sizeof params, "{\"challenge\": \"%s\"}", slug);
    return s_validate_params(e, params);
}

static const char *s_result_str(const cf_reply_t *r, const char *key, char *buf, size_t len)
{
    const msgpack_object *o = cf_msgpack_map_get(cf_reply_result(r), key);
    assert_non_null(o);
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    snprintf(buf, len, "%.*s", (int)o->via.str.size, o->via.str.ptr);
    return buf;
}

/* Validate SLUG and expect STATUS; for "invalid" the problem type PROBLEM (without the urn
 * prefix) and DETAIL_PART somewhere in its detail. */
static void s_expect(s_env_t *e, const char *slug, const char *status, const char *problem,
                     const char *detail_part)
{
    cf_reply_t *r = s_validate(e, slug);
    if (!cf_reply_ok(r)) {
        const cf_error_t *err = cf_reply_error(r);
        fail_msg("acme.validate %s: %s (%s): %s", slug, err->code, err->field, err->message);
    }
    char buf[600];
    assert_string_equal(s_result_str(r, "challenge", buf, sizeof buf), slug);
    const msgpack_object *error = cf_msgpack_map_get(cf_reply_result(r), "error");
    assert_non_null(error);
    if (strcmp(s_result_str(r, "status", buf, sizeof buf), status) != 0) {
        json_t *j = cf_reply_to_json(r);
        char *text = json_dumps(j, JSON_COMPACT);
        fail_msg("%s: expected status \"%s\", got %s", slug, status, text);
    }
    if (!problem) {
        assert_int_equal(error->type, MSGPACK_OBJECT_NIL);
    } else {
        assert_int_equal(error->type, MSGPACK_OBJECT_MAP);
        const msgpack_object *type = cf_msgpack_map_get(error, "type");
        const msgpack_object *detail = cf_msgpack_map_get(error, "detail");
        assert_non_null(type);
        assert_non_null(detail);
        char want[128];
        snprintf(want, sizeof want, "urn:ietf:params:acme:error:%s", problem);
        snprintf(buf, sizeof buf, "%.*s", (int)type->via.str.size, type->via.str.ptr);
        char detail_text[600];
        snprintf(detail_text, sizeof detail_text, "%.*s", (int)detail->via.str.size,
                 detail->via.str.ptr);
        if (strcmp(buf, want) != 0)
            fail_msg("expected problem %s, got %s: %s", want, buf, detail_text);
        if (detail_part && !strstr(detail_text, detail_part))
            fail_msg("detail \"%s\" does not mention \"%s\"", detail_text, detail_part);
        printf("    %s: %s\n", problem, detail_text);
    }
    cf_reply_destroy(&r);
}

static void s_expect_error(s_env_t *e, const char *params, const char *code, const char *field)
{
    cf_reply_t *r = s_validate_params(e, params);
    if (cf_reply_ok(r))
        fail_msg("%s: expected error %s, got ok", params, code);
    const cf_error_t *err = cf_reply_error(r);
    if (strcmp(err->code, code) != 0 || strcmp(err->field, field) != 0)
        fail_msg("%s: expected %s (%s), got %s (%s): %s", params, code, field, err->code,
                 err->field, err->message);
    cf_reply_destroy(&r);
}

/* ---- the HTTP server (http-01) -------------------------------------------------------------- */

static int s_listen(int port)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(fd, 16) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void s_send_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        data += n;
        len -= (size_t)n;
    }
}

typedef struct {
    s_env_t *env;
    int fd;
} s_conn_t;

static void *s_http_conn(void *arg)
{
    s_conn_t *c = arg;
    s_env_t *e = c->env;
    char req[4096] = "";
    size_t n = 0;
    while (n < sizeof req - 1 && !strstr(req, "\r\n\r\n")) {
        ssize_t got = recv(c->fd, req + n, sizeof req - 1 - n, 0);
        if (got <= 0)
            break;
        n += (size_t)got;
        req[n] = '\0';
    }
    req[n] = '\0';
    char path[1024] = "";
    sscanf(req, "GET %1023s", path);
    const char *prefix = "/.well-known/acme-challenge/";
    const char *token = strncmp(path, prefix, strlen(prefix)) == 0 ? path + strlen(prefix) : "";
    s_route_t route = {.mode = S_HTTP_NOTFOUND};
    bool second = false;
    pthread_mutex_lock(&e->mutex);
    for (int i = 0; i < e->nroutes; i++) {
        size_t tl = strlen(e->routes[i].token);
        if (strncmp(token, e->routes[i].token, tl) == 0 &&
            (token[tl] == '\0' || strcmp(token + tl, "-2") == 0)) {
            route = e->routes[i];
            second = token[tl] != '\0';
        }
    }
    pthread_mutex_unlock(&e->mutex);
    if (route.mode == S_HTTP_REDIRECT && second)
        route.mode = S_HTTP_KEYAUTH; /* the redirect's target answers */
    char head[2048];
    switch (route.mode) {
    case S_HTTP_REDIRECT:
        snprintf(head, sizeof head,
                 "HTTP/1.1 302 Found\r\nLocation: http://elsewhere.test:%d%s-2\r\n"
                 "Content-Length: 0\r\nConnection: close\r\n\r\n",
                 e->http_port, path);
        s_send_all(c->fd, head, strlen(head));
        break;
    case S_HTTP_KEYAUTH:
    case S_HTTP_WRONG: {
        char body[300];
        snprintf(body, sizeof body, "%s\r\n",
                 route.mode == S_HTTP_WRONG ? "not-the-key-authorization" : route.keyauth);
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                 "Connection: close\r\n\r\n%s",
                 strlen(body), body);
        s_send_all(c->fd, head, strlen(head));
        break;
    }
    case S_HTTP_LOOP:
        snprintf(head, sizeof head,
                 "HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n"
                 "Connection: close\r\n\r\n",
                 path);
        s_send_all(c->fd, head, strlen(head));
        break;
    case S_HTTP_HUGE: {
        static char big[20000];
        memset(big, 'x', sizeof big);
        snprintf(head, sizeof head,
                 "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", sizeof big);
        s_send_all(c->fd, head, strlen(head));
        s_send_all(c->fd, big, sizeof big);
        break;
    }
    case S_HTTP_SLOW:
        for (int i = 0; i < 40 && !atomic_load(&e->stop); i++)
            usleep(100000);
        break;
    case S_HTTP_NOTFOUND:
        snprintf(head, sizeof head,
                 "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        s_send_all(c->fd, head, strlen(head));
        break;
    }
    close(c->fd);
    free(c);
    return NULL;
}

static void *s_http_loop(void *arg)
{
    s_env_t *e = arg;
    while (!atomic_load(&e->stop)) {
        int lfd = e->http_fd;
        if (lfd < 0) {
            usleep(20000);
            continue;
        }
        struct pollfd p = {.fd = lfd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(lfd, NULL, NULL);
        if (fd < 0)
            continue;
        s_conn_t *c = malloc(sizeof *c);
        c->env = e;
        c->fd = fd;
        pthread_t t;
        if (pthread_create(&t, NULL, s_http_conn, c) == 0)
            pthread_detach(t);
        else {
            close(fd);
            free(c);
        }
    }
    return NULL;
}

static void s_route(s_env_t *e, const s_challenge_t *c, s_http_mode_t mode)
{
    pthread_mutex_lock(&e->mutex);
    assert_true(e->nroutes < S_MAX_ROUTES);
    s_route_t *r = &e->routes[e->nroutes++];
    snprintf(r->token, sizeof r->token, "%s", c->token);
    snprintf(r->keyauth, sizeof r->keyauth, "%s", c->keyauth);
    r->mode = mode;
    pthread_mutex_unlock(&e->mutex);
}

/* ---- the TLS responder (tls-alpn-01) -----------------------------------------------------------
 */

typedef enum {
    S_CERT_GOOD,
    S_CERT_NO_EXTENSION,
    S_CERT_BAD_DIGEST,
    S_CERT_NOT_CRITICAL
} s_cert_kind_t;

static X509 *s_acme_cert(EVP_PKEY *key, const char *name, const char *keyauth, s_cert_kind_t kind)
{
    X509 *x = X509_new();
    assert_non_null(x);
    X509_set_version(x, X509_VERSION_3);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
    X509_NAME *subject = X509_NAME_new();
    X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)name, -1, -1, 0);
    X509_set_subject_name(x, subject);
    X509_set_issuer_name(x, subject);
    X509_NAME_free(subject);
    X509_gmtime_adj(X509_getm_notBefore(x), -3600);
    X509_gmtime_adj(X509_getm_notAfter(x), 86400);
    X509_set_pubkey(x, key);
    char san[128];
    snprintf(san, sizeof san, "DNS:%s", name);
    X509_EXTENSION *ext = X509V3_EXT_nconf_nid(NULL, NULL, NID_subject_alt_name, san);
    assert_non_null(ext);
    X509_add_ext(x, ext, -1);
    X509_EXTENSION_free(ext);
    if (kind != S_CERT_NO_EXTENSION) {
        unsigned char digest[32];
        unsigned int dlen;
        EVP_Digest(keyauth, strlen(keyauth), digest, &dlen, EVP_sha256(), NULL);
        if (kind == S_CERT_BAD_DIGEST)
            digest[0] ^= 0xff;
        ASN1_OCTET_STRING *inner = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(inner, digest, sizeof digest);
        unsigned char *der = NULL;
        int der_len = i2d_ASN1_OCTET_STRING(inner, &der);
        ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
        ASN1_OCTET_STRING_set(value, der, der_len);
        ASN1_OBJECT *oid = OBJ_txt2obj("1.3.6.1.5.5.7.1.31", 1);
        ext = X509_EXTENSION_create_by_OBJ(NULL, oid, kind != S_CERT_NOT_CRITICAL, value);
        assert_non_null(ext);
        X509_add_ext(x, ext, -1);
        X509_EXTENSION_free(ext);
        ASN1_OBJECT_free(oid);
        ASN1_OCTET_STRING_free(value);
        ASN1_OCTET_STRING_free(inner);
        OPENSSL_free(der);
    }
    assert_true(X509_sign(x, key, EVP_sha256()) > 0);
    return x;
}

static int s_servername(SSL *ssl, int *alert, void *arg)
{
    s_env_t *e = arg;
    const char *sni = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    for (int i = 0; sni && i < e->ntls; i++)
        if (strcmp(sni, e->tls_certs[i].name) == 0) {
            SSL_use_certificate(ssl, e->tls_certs[i].cert);
            SSL_use_PrivateKey(ssl, e->tls_key);
            SSL_set_app_data(ssl, &e->tls_certs[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_OK;
}

static int s_alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                         const unsigned char *in, unsigned int inlen, void *arg)
{
    const s_tls_cert_t *c = SSL_get_app_data(ssl);
    if (!c || !c->alpn)
        return SSL_TLSEXT_ERR_NOACK;
    for (unsigned int i = 0; i < inlen; i += 1u + in[i])
        if (in[i] == 10 && i + 11 <= inlen && memcmp(in + i + 1, "acme-tls/1", 10) == 0) {
            *out = in + i + 1;
            *outlen = 10;
            return SSL_TLSEXT_ERR_OK;
        }
    return SSL_TLSEXT_ERR_ALERT_FATAL;
}

static void *s_tls_loop(void *arg)
{
    s_env_t *e = arg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    /* A default certificate for clients without a known SNI. */
    X509 *fallback = s_acme_cert(e->tls_key, "unknown.test", "x", S_CERT_NO_EXTENSION);
    SSL_CTX_use_certificate(ctx, fallback);
    SSL_CTX_use_PrivateKey(ctx, e->tls_key);
    SSL_CTX_set_tlsext_servername_callback(ctx, s_servername);
    SSL_CTX_set_tlsext_servername_arg(ctx, e);
    SSL_CTX_set_alpn_select_cb(ctx, s_alpn_select, e);
    while (!atomic_load(&e->stop)) {
        struct pollfd p = {.fd = e->tls_fd, .events = POLLIN};
        if (poll(&p, 1, 50) <= 0)
            continue;
        int fd = accept(e->tls_fd, NULL, NULL);
        if (fd < 0)
            continue;
        struct timeval tv = {.tv_sec = 3};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        SSL *ssl = SSL_new(ctx);
        SSL_set_fd(ssl, fd);
        if (SSL_accept(ssl) == 1)
            SSL_shutdown(ssl);
        SSL_free(ssl);
        close(fd);
        ERR_clear_error();
    }
    X509_free(fallback);
    SSL_CTX_free(ctx);
    return NULL;
}

static void s_tls_cert(s_env_t *e, const char *name, const s_challenge_t *c, s_cert_kind_t kind,
                       bool alpn)
{
    pthread_mutex_lock(&e->mutex);
    s_tls_cert_t *t = &e->tls_certs[e->ntls];
    snprintf(t->name, sizeof t->name, "%s", name);
    t->cert = s_acme_cert(e->tls_key, name, c->keyauth, kind);
    t->alpn = alpn;
    e->ntls++;
    pthread_mutex_unlock(&e->mutex);
}

/* ---- dnsmasq (dns-01)
 * ---------------------------------------------------------------------------- */

/* Start dnsmasq serving RECORDS (its options), replacing the one that runs. */
static void s_start_dnsmasq(s_env_t *e, const char *const *records, int n)
{
    if (e->dnsmasq > 0) {
        cf_test_kill(e->dnsmasq, SIGTERM);
        e->dnsmasq = 0;
    }
    char port_arg[32], log[512];
    snprintf(port_arg, sizeof port_arg, "--port=%d", e->dns_port);
    snprintf(log, sizeof log, "%s/dnsmasq.log", e->fleet.dir);
    const char *argv[64];
    int a = 0;
    argv[a++] = port_arg;
    argv[a++] = "--listen-address=127.0.0.1";
    argv[a++] = "--bind-interfaces";
    argv[a++] = "--no-resolv";
    argv[a++] = "--no-hosts";
    argv[a++] = "--local=/test/";
    argv[a++] = "--keep-in-foreground";
    argv[a++] = "--user=root";
    for (int i = 0; i < n && a < 62; i++)
        argv[a++] = records[i];
    while (a < 64)
        argv[a++] = NULL;
    e->dnsmasq = cf_test_spawn(
        log, NULL, "/usr/sbin/dnsmasq", argv[0], argv[1], argv[2], argv[3], argv[4], argv[5],
        argv[6], argv[7], argv[8], argv[9], argv[10], argv[11], argv[12], argv[13], argv[14],
        argv[15], argv[16], argv[17], argv[18], argv[19], argv[20], argv[21], argv[22], argv[23],
        argv[24], argv[25], argv[26], argv[27], argv[28], argv[29], argv[30], argv[31], argv[32],
        argv[33], argv[34], argv[35], argv[36], argv[37], argv[38], argv[39], argv[40], argv[41],
        argv[42], argv[43], argv[44], argv[45], NULL);
    assert_true(e->dnsmasq > 0);
    /* Ready once its TCP port accepts. */
    for (int i = 0; i < 100; i++) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in sa = {.sin_family = AF_INET,
                                 .sin_port = htons((uint16_t)e->dns_port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
        int ok = connect(fd, (struct sockaddr *)&sa, sizeof sa) == 0;
        close(fd);
        if (ok)
            return;
        usleep(50000);
    }
    fail_msg("dnsmasq did not start (see %s)", log);
}

/* ---- setup -------------------------------------------------------------------------------------
 */

static json_t *s_p256_jwk(EVP_PKEY *key)
{
    unsigned char pub[65];
    size_t len = 0;
    assert_int_equal(
        EVP_PKEY_get_octet_string_param(key, OSSL_PKEY_PARAM_PUB_KEY, pub, sizeof pub, &len), 1);
    assert_int_equal(len, 65);
    char *x = cf_base64url_encode(pub + 1, 32), *y = cf_base64url_encode(pub + 33, 32);
    json_t *jwk = json_pack("{s:s, s:s, s:s, s:s}", "kty", "EC", "crv", "P-256", "x", x, "y", y);
    free(x);
    free(y);
    return jwk;
}

static int s_setup(void **state)
{
    s_env_t *e = calloc(1, sizeof *e);
    *state = e;
    assert_int_equal(cf_test_fleet_init(&e->fleet, "validator"), 0);
    e->redis_db = 2 + (int)(getpid() % 14);
    e->http_port = cf_test_free_port();
    e->tls_port = cf_test_free_port();
    e->dns_port = cf_test_free_port();
    e->http_fd = e->tls_fd = -1;
    pthread_mutex_init(&e->mutex, NULL);
    char extra[512];
    snprintf(extra, sizeof extra,
             "[redis]\ndb = %d\n[validator]\nhttp_port = %d\ntls_alpn_port = %d\n"
             "connect_address = 127.0.0.1\ndns_resolver = 127.0.0.1:%d\ntimeout_ms = %d\n"
             "http_max_redirects = %d\n",
             e->redis_db, e->http_port, e->tls_port, e->dns_port, S_TIMEOUT_MS, S_REDIRECTS);
    assert_int_equal(cf_test_fleet_write_config(&e->fleet, extra), 0);
    e->broker = cf_test_fleet_start(&e->fleet, "certfleet-broker", "broker.log");
    e->validator = cf_test_fleet_start(&e->fleet, "certfleet-validator", "validator.log");
    assert_true(e->broker > 0 && e->validator > 0);
    if (cf_test_fleet_wait_workers(&e->fleet, 1, 10000) != 0)
        fail_msg("the broker never reported the validator");
    e->client = cf_client_new(e->fleet.endpoint);
    cf_client_set_timeout(e->client, 20000);
    cf_client_set_attempts(e->client, 3);
    e->pg = cf_pg_new(e->fleet.conninfo);
    char host[64];
    int port;
    assert_int_equal(cf_test_redis(host, sizeof host, &port), 0);
    e->redis = cf_redis_new(host, port, 2000);
    redisReply *r = cf_redis_command(e->redis, "SELECT %d", e->redis_db);
    assert_non_null(r);
    freeReplyObject(r);

    /* The CA and the account with a real P-256 key. */
    PQclear(s_query(e,
                    "INSERT INTO certificate_authorities (id, name, serial, subject, issuer, "
                    "valid_from, expires, der, key_backend, key_type, acme_enabled) VALUES (1, "
                    "'acme-ca', '01', '[]', '[]', now(), now() + interval '1 year', '\\x00', "
                    "'storages', 'EC', true)",
                    0, NULL));
    e->account_key = EVP_EC_gen("P-256");
    assert_non_null(e->account_key);
    e->jwk = s_p256_jwk(e->account_key);
    char *jwk_text = json_dumps(e->jwk, JSON_COMPACT);
    const char *av[1] = {jwk_text};
    e->account_id = s_insert(e,
                             "INSERT INTO acme_accounts (ca_id, slug, jwk, thumbprint) VALUES (1, "
                             "'account-1', $1::jsonb, 'thumbprint-1') RETURNING id",
                             1, av);
    /* A second CA that checks CAA, with an account of the same key. */
    PQclear(s_query(e,
                    "INSERT INTO certificate_authorities (id, name, serial, subject, issuer, "
                    "valid_from, expires, der, key_backend, key_type, acme_enabled, caa) VALUES "
                    "(2, 'caa-ca', '02', '[]', '[]', now(), now() + interval '1 year', '\\x00', "
                    "'storages', 'EC', true, '" S_CAA_IDENTITY "')",
                    0, NULL));
    e->caa_account_id = s_insert(e,
                                 "INSERT INTO acme_accounts (ca_id, slug, jwk, thumbprint) VALUES "
                                 "(2, 'account-2', $1::jsonb, 'thumbprint-1') RETURNING id",
                                 1, av);
    free(jwk_text);

    /* The applicant's servers. */
    e->http_fd = s_listen(e->http_port);
    e->tls_fd = s_listen(e->tls_port);
    assert_true(e->http_fd >= 0 && e->tls_fd >= 0);
    e->tls_key = EVP_EC_gen("P-256");
    assert_int_equal(pthread_create(&e->http_thread, NULL, s_http_loop, e), 0);
    assert_int_equal(pthread_create(&e->tls_thread, NULL, s_tls_loop, e), 0);
    return 0;
}

static int s_teardown(void **state)
{
    s_env_t *e = *state;
    atomic_store(&e->stop, true);
    pthread_join(e->http_thread, NULL);
    pthread_join(e->tls_thread, NULL);
    if (e->http_fd >= 0)
        close(e->http_fd);
    if (e->tls_fd >= 0)
        close(e->tls_fd);
    for (int i = 0; i < e->ntls; i++)
        X509_free(e->tls_certs[i].cert);
    EVP_PKEY_free(e->tls_key);
    EVP_PKEY_free(e->account_key);
    json_decref(e->jwk);
    cf_client_destroy(&e->client);
    cf_redis_destroy(&e->redis);
    cf_pg_destroy(&e->pg);
    if (e->dnsmasq > 0)
        cf_test_kill(e->dnsmasq, SIGTERM);
    if (e->validator > 0)
        cf_test_kill(e->validator, SIGTERM);
    if (e->broker > 0)
        cf_test_kill(e->broker, SIGTERM);
    int reports = cf_test_fleet_cleanup(&e->fleet);
    pthread_mutex_destroy(&e->mutex);
    free(e);
    assert_int_equal(reports, 0);
    return 0;
}

/* ---- tests
 * --------------------------------------------------------------------------------------- */

/* Two authorizations: the order is ready only once both are valid. */
static void test_http01_valid_two_authorizations(void **state)
{
    s_env_t *e = *state;
    const char *names[2] = {"one.example.test", "two.example.test"};
    s_challenge_t c[2];
    s_order(e, 2, names, "http-01", "processing", "1 day", c);
    s_route(e, &c[0], S_HTTP_KEYAUTH);
    s_route(e, &c[1], S_HTTP_REDIRECT); /* one redirect, then the right answer */
    s_expect(e, c[0].slug, "valid", NULL, NULL);
    s_assert_value(e, S_CHALLENGE_STATUS, c[0].slug, "valid");
    s_assert_value(e, "SELECT validated IS NOT NULL FROM acme_challenges WHERE slug = $1",
                   c[0].slug, "t");
    s_assert_value(e, S_AUTHZ_STATUS, c[0].slug, "valid");
    s_assert_value(e, S_ORDER_STATUS, c[0].slug, "pending");
    s_expect(e, c[1].slug, "valid", NULL, NULL);
    s_assert_value(e, S_AUTHZ_STATUS, c[1].slug, "valid");
    s_assert_value(e, S_ORDER_STATUS, c[1].slug, "ready");
    /* Asked again: the stored verdict, nothing changes. */
    s_expect(e, c[0].slug, "valid", NULL, NULL);
}

static void test_http01_wrong_body(void **state)
{
    s_env_t *e = *state;
    const char *names[2] = {"wrong.example.test", "other.example.test"};
    s_challenge_t c[2];
    s_order(e, 2, names, "http-01", "processing", "1 day", c);
    s_route(e, &c[0], S_HTTP_WRONG);
    s_expect(e, c[0].slug, "invalid", "incorrectResponse", c[0].keyauth);
    s_assert_value(e, S_CHALLENGE_STATUS, c[0].slug, "invalid");
    s_assert_value(e, "SELECT error->>'type' FROM acme_challenges WHERE slug = $1", c[0].slug,
                   "urn:ietf:params:acme:error:incorrectResponse");
    s_assert_value(e, S_AUTHZ_STATUS, c[0].slug, "invalid");
    s_assert_value(e, S_ORDER_STATUS, c[0].slug, "invalid");
    s_assert_value(e,
                   "SELECT o.error->>'type' FROM acme_orders o JOIN acme_authorizations a ON "
                   "a.order_id = o.id JOIN acme_challenges c ON c.authorization_id = a.id WHERE "
                   "c.slug = $1",
                   c[0].slug, "urn:ietf:params:acme:error:incorrectResponse");
    /* The other authorization is untouched, and its challenge no longer moves the order. */
    s_assert_value(e, S_AUTHZ_STATUS, c[1].slug, "pending");
    /* 404 */
    s_order(e, 1, names, "http-01", "processing", "1 day", c);
    s_expect(e, c[0].slug, "invalid", "unauthorized", "404");
}

static void test_http01_connection_problems(void **state)
{
    s_env_t *e = *state;
    const char *names[1] = {"trouble.example.test"};
    s_challenge_t c[1];

    /* Nothing listening. */
    s_order(e, 1, names, "http-01", "processing", "1 day", c);
    s_route(e, &c[0], S_HTTP_KEYAUTH);
    int fd = e->http_fd;
    e->http_fd = -1;
    usleep(100000);
    close(fd);
    s_expect(e, c[0].slug, "invalid", "connection", NULL);
    e->http_fd = s_listen(e->http_port);
    assert_true(e->http_fd >= 0);

    /* A redirect loop. */
    s_order(e, 1, names, "http-01", "processing", "1 day", c);
    s_route(e, &c[0], S_HTTP_LOOP);
    s_expect(e, c[0].slug, "invalid", "connection", "redirects");

    /* A body over 8192 bytes. */
    s_order(e, 1, names, "http-01", "processing", "1 day", c);
    s_route(e, &c[0], S_HTTP_HUGE);
    s_expect(e, c[0].slug, "invalid", "incorrectResponse", "8192");

    /* A server that never answers: the check gives up after timeout_ms. */
    s_order(e, 1, names, "http-01", "processing", "1 day", c);
    s_route(e, &c[0], S_HTTP_SLOW);
    uint64_t t0 = cf_mono_ms();
    s_expect(e, c[0].slug, "invalid", "connection", "ms");
    uint64_t took = cf_mono_ms() - t0;
    assert_true(took >= S_TIMEOUT_MS - 100 && took < S_TIMEOUT_MS + 3000);
}

static void test_dns01(void **state)
{
    s_env_t *e = *state;
    const char *good[1] = {"dns.example.test"}, *bad[1] = {"wrongdns.example.test"},
               *none[1] = {"nodns.example.test"}, *big[1] = {"big.example.test"};
    s_challenge_t cg[1], cb[1], cn[1], cbig[1];
    s_order(e, 1, good, "dns-01", "processing", "1 day", cg);
    s_order(e, 1, bad, "dns-01", "processing", "1 day", cb);
    s_order(e, 1, none, "dns-01", "processing", "1 day", cn);
    s_order(e, 1, big, "dns-01", "processing", "1 day", cbig);
    char value[64], records[40][160];
    const char *args[40];
    int n = 0;
    assert_int_equal(cf_acme_dns01_value(cg[0].keyauth, value, sizeof value), 0);
    /* Two records, the right one second. */
    snprintf(records[n], sizeof records[n], "--txt-record=_acme-challenge.%s,%s", good[0],
             "unrelated");
    args[n] = records[n];
    n++;
    snprintf(records[n], sizeof records[n], "--txt-record=_acme-challenge.%s,%s", good[0], value);
    args[n] = records[n];
    n++;
    snprintf(records[n], sizeof records[n], "--txt-record=_acme-challenge.%s,%s", bad[0],
             "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    args[n] = records[n];
    n++;
    /* Enough records that the UDP answer is truncated: the right one comes over TCP. */
    assert_int_equal(cf_acme_dns01_value(cbig[0].keyauth, value, sizeof value), 0);
    for (int i = 0; i < 25; i++, n++) {
        snprintf(records[n], sizeof records[n], "--txt-record=_acme-challenge.%s,%s%s", big[0],
                 i == 20 ? value : "filler-filler-filler-filler-filler-filler-filler-",
                 i == 20 ? "" : "x");
        args[n] = records[n];
    }
    s_start_dnsmasq(e, args, n);
    s_expect(e, cg[0].slug, "valid", NULL, NULL);
    s_assert_value(e, S_ORDER_STATUS, cg[0].slug, "ready");
    s_expect(e, cb[0].slug, "invalid", "incorrectResponse", "AAAAAAAA");
    s_assert_value(e, S_AUTHZ_STATUS, cb[0].slug, "invalid");
    s_expect(e, cn[0].slug, "invalid", "unauthorized", "NXDOMAIN");
    s_expect(e, cbig[0].slug, "valid", NULL, NULL);
}

static void test_tlsalpn01(void **state)
{
    s_env_t *e = *state;
    const char *good[1] = {"tls.example.test"}, *noext[1] = {"noext.example.test"},
               *digest[1] = {"digest.example.test"}, *noalpn[1] = {"noalpn.example.test"},
               *notcrit[1] = {"notcrit.example.test"};
    s_challenge_t cg[1], cx[1], cd[1], ca[1], cc[1];
    s_order(e, 1, good, "tls-alpn-01", "processing", "1 day", cg);
    s_order(e, 1, noext, "tls-alpn-01", "processing", "1 day", cx);
    s_order(e, 1, digest, "tls-alpn-01", "processing", "1 day", cd);
    s_order(e, 1, noalpn, "tls-alpn-01", "processing", "1 day", ca);
    s_order(e, 1, notcrit, "tls-alpn-01", "processing", "1 day", cc);
    s_tls_cert(e, good[0], &cg[0], S_CERT_GOOD, true);
    s_tls_cert(e, noext[0], &cx[0], S_CERT_NO_EXTENSION, true);
    s_tls_cert(e, digest[0], &cd[0], S_CERT_BAD_DIGEST, true);
    s_tls_cert(e, noalpn[0], &ca[0], S_CERT_GOOD, false);
    s_tls_cert(e, notcrit[0], &cc[0], S_CERT_NOT_CRITICAL, true);
    s_expect(e, cg[0].slug, "valid", NULL, NULL);
    s_assert_value(e, S_ORDER_STATUS, cg[0].slug, "ready");
    s_expect(e, cx[0].slug, "invalid", "incorrectResponse", "no acmeIdentifier");
    s_expect(e, cd[0].slug, "invalid", "incorrectResponse", "does not match");
    s_expect(e, ca[0].slug, "invalid", "tls", "acme-tls/1");
    s_expect(e, cc[0].slug, "invalid", "incorrectResponse", "not critical");
}

/* ---- CAA (RFC 8659) ------------------------------------------------------------------------ */

#define S_CAA_ARG_MAX 256

/* The dnsmasq option serving one CAA record of NAME: --dns-rr=NAME,257,<RDATA in hex>. */
static void s_caa_arg(char *out, const char *name, unsigned flags, const char *tag,
                      const char *value)
{
    int n = snprintf(out, S_CAA_ARG_MAX, "--dns-rr=%s,257,%02x%02x", name, flags,
                     (unsigned)strlen(tag));
    for (const char *p = tag; *p; p++)
        n += snprintf(out + n, S_CAA_ARG_MAX - (size_t)n, "%02x", (unsigned char)*p);
    for (const char *p = value; *p; p++)
        n += snprintf(out + n, S_CAA_ARG_MAX - (size_t)n, "%02x", (unsigned char)*p);
    assert_true(n < S_CAA_ARG_MAX);
}

/* An order of NAME under the CA with a CAA identity, its http-01 challenge answered right:
 * only CAA can refuse it. */
static void s_caa_order(s_env_t *e, const char *name, s_challenge_t *c)
{
    const char *names[1] = {name};
    s_order_of(e, e->caa_account_id, 1, names, "http-01", "processing", "1 day", c);
    s_route(e, c, S_HTTP_KEYAUTH);
}

/* The challenge, its authorization and its order refused for CAA, and nothing valid. */
static void s_assert_caa_refused(s_env_t *e, const char *slug)
{
    s_assert_value(e, S_CHALLENGE_STATUS, slug, "invalid");
    s_assert_value(e, "SELECT validated IS NULL FROM acme_challenges WHERE slug = $1", slug, "t");
    s_assert_value(e, "SELECT error->>'type' FROM acme_challenges WHERE slug = $1", slug,
                   "urn:ietf:params:acme:error:caa");
    s_assert_value(e, "SELECT error->>'status' FROM acme_challenges WHERE slug = $1", slug, "403");
    s_assert_value(e, S_AUTHZ_STATUS, slug, "invalid");
    s_assert_value(e, S_ORDER_STATUS, slug, "invalid");
    s_assert_value(e,
                   "SELECT o.error->>'type' FROM acme_orders o JOIN acme_authorizations a ON "
                   "a.order_id = o.id JOIN acme_challenges c ON c.authorization_id = a.id WHERE "
                   "c.slug = $1",
                   slug, "urn:ietf:params:acme:error:caa");
}

/* Names the CAA records allow: none anywhere, issue naming the CA (in any case, with spaces,
 * a final dot and parameters), at a parent only, the nearest set winning over a parent's,
 * a set without issue properties, the critical flag on a known tag. */
static void test_caa_allowed(void **state)
{
    s_env_t *e = *state;
    char args[10][S_CAA_ARG_MAX];
    const char *argv[10];
    int n = 0;
    s_caa_arg(args[n++], "ok.example.test", 0, "issue", S_CAA_IDENTITY);
    s_caa_arg(args[n++], "mixed.example.test", 0, "ISSUE", "  CA.Example.Test. ; account=1");
    s_caa_arg(args[n++], "allowed-parent.test", 0, "issue", S_CAA_IDENTITY);
    s_caa_arg(args[n++], "child.deny-parent.test", 0, "issue", S_CAA_IDENTITY);
    s_caa_arg(args[n++], "deny-parent.test", 0, "issue", "other-ca.example");
    s_caa_arg(args[n++], "iodef.test", 0, "iodef", "mailto:security@iodef.test");
    s_caa_arg(args[n++], "critical-known.test", 128, "issue", S_CAA_IDENTITY);
    for (int i = 0; i < n; i++)
        argv[i] = args[i];
    s_start_dnsmasq(e, argv, n);
    const char *names[] = {"none.nocaa.test",        "ok.example.test",
                           "mixed.example.test",     "www.deep.allowed-parent.test",
                           "child.deny-parent.test", "iodef.test",
                           "critical-known.test"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        s_challenge_t c[1];
        s_caa_order(e, names[i], c);
        s_expect(e, c[0].slug, "valid", NULL, NULL);
        s_assert_value(e, S_AUTHZ_STATUS, c[0].slug, "valid");
        s_assert_value(e, S_ORDER_STATUS, c[0].slug, "ready");
    }
}

/* Names the CAA records refuse: another CA, at the name or found at a parent; ";" and an
 * empty value (nobody); an unknown critical property; a record that does not parse. */
static void test_caa_refused(void **state)
{
    s_env_t *e = *state;
    char args[10][S_CAA_ARG_MAX];
    const char *argv[10];
    int n = 0;
    s_caa_arg(args[n++], "other.example.test", 0, "issue", "other-ca.example");
    s_caa_arg(args[n++], "denied-parent.test", 0, "issue", "other-ca.example; account=7");
    s_caa_arg(args[n++], "nobody.test", 0, "issue", ";");
    s_caa_arg(args[n++], "empty.test", 0, "issue", "");
    s_caa_arg(args[n++], "critical.test", 0, "issue", S_CAA_IDENTITY);
    s_caa_arg(args[n++], "critical.test", 128, "tbs", "unknown");
    /* RDATA with a tag of length 0: fails closed after timeout_ms. */
    snprintf(args[n++], S_CAA_ARG_MAX, "--dns-rr=malformed.test,257,0000");
    for (int i = 0; i < n; i++)
        argv[i] = args[i];
    s_start_dnsmasq(e, argv, n);
    static const char *const cases[][2] = {
        {"other.example.test", "0 issue \"other-ca.example\""},
        {"www.sub.denied-parent.test", "records at its parent \"denied-parent.test\""},
        {"nobody.test", "0 issue \";\""},
        {"empty.test", "0 issue \"\""},
        {"critical.test", "\"tbs\" is marked critical"},
        {"malformed.test", "CAA tag of 0 octets"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        s_challenge_t c[1];
        s_caa_order(e, cases[i][0], c);
        s_expect(e, c[0].slug, "invalid", "caa", cases[i][1]);
        s_assert_caa_refused(e, c[0].slug);
    }
}

/* A wildcard goes by issuewild when the set has any, else by issue; a name without "*." never
 * by issuewild. */
static void test_caa_wildcard(void **state)
{
    s_env_t *e = *state;
    const char *wild[3] = {"wild.test", "issueonly.test", "nowild.test"};
    s_challenge_t cw[3];
    char args[12][S_CAA_ARG_MAX];
    const char *argv[12];
    int n = 0;
    for (int i = 0; i < 3; i++) {
        s_order_of(e, e->caa_account_id, 1, &wild[i], "dns-01", "processing", "1 day", &cw[i]);
        const char *v[1] = {cw[i].slug};
        PQclear(s_query(e,
                        "UPDATE acme_authorizations SET wildcard = true WHERE id = (SELECT "
                        "authorization_id FROM acme_challenges WHERE slug = $1)",
                        1, v));
        char value[64];
        assert_int_equal(cf_acme_dns01_value(cw[i].keyauth, value, sizeof value), 0);
        snprintf(args[n++], S_CAA_ARG_MAX, "--txt-record=_acme-challenge.%s,%s", wild[i], value);
    }
    s_caa_arg(args[n++], "wild.test", 0, "issue", "other-ca.example");
    s_caa_arg(args[n++], "wild.test", 0, "issuewild", S_CAA_IDENTITY);
    s_caa_arg(args[n++], "issueonly.test", 0, "issue", S_CAA_IDENTITY);
    s_caa_arg(args[n++], "nowild.test", 0, "issue", S_CAA_IDENTITY);
    s_caa_arg(args[n++], "nowild.test", 0, "issuewild", ";");
    for (int i = 0; i < n; i++)
        argv[i] = args[i];
    s_start_dnsmasq(e, argv, n);
    s_expect(e, cw[0].slug, "valid", NULL, NULL);
    s_assert_value(e, S_ORDER_STATUS, cw[0].slug, "ready");
    s_expect(e, cw[1].slug, "valid", NULL, NULL);
    s_expect(e, cw[2].slug, "invalid", "caa", "no issuewild property");
    s_assert_caa_refused(e, cw[2].slug);
    /* wild.test itself: issue names another CA, issuewild does not count. */
    s_challenge_t c[1];
    s_caa_order(e, "wild.test", c);
    s_expect(e, c[0].slug, "invalid", "caa", "0 issuewild \"" S_CAA_IDENTITY "\"");
    s_assert_caa_refused(e, c[0].slug);
}

/* Restart the validator with EXTRA_ENV ("K=V", NULL-terminated, or NULL). */
static void s_restart_validator(s_env_t *e, const char *const *extra_env)
{
    cf_test_kill(e->validator, SIGTERM);
    e->validator = 0;
    if (cf_test_fleet_wait_workers(&e->fleet, 0, 10000) != 0)
        fail_msg("the broker still reports the stopped validator");
    char log[512];
    snprintf(log, sizeof log, "%s/validator.log", e->fleet.dir);
    e->validator =
        cf_test_spawn(log, extra_env, "certfleet-validator", "--config", e->fleet.config, NULL);
    assert_true(e->validator > 0);
    if (cf_test_fleet_wait_workers(&e->fleet, 1, 10000) != 0)
        fail_msg("the broker never reported the restarted validator");
}

/* Without the CA's CAA identity, or with [validator] caa_check off, records that would refuse
 * are not looked at. */
static void test_caa_skipped(void **state)
{
    s_env_t *e = *state;
    char args[1][S_CAA_ARG_MAX];
    const char *argv[1] = {args[0]};
    s_caa_arg(args[0], "skip.example.test", 0, "issue", "other-ca.example");
    s_start_dnsmasq(e, argv, 1);
    const char *names[1] = {"skip.example.test"};
    s_challenge_t c[1];
    s_order(e, 1, names, "http-01", "processing", "1 day", c);
    s_route(e, &c[0], S_HTTP_KEYAUTH);
    s_expect(e, c[0].slug, "valid", NULL, NULL);
    /* The CA with the identity refuses it while caa_check is on ... */
    s_caa_order(e, names[0], c);
    s_expect(e, c[0].slug, "invalid", "caa", "other-ca.example");
    /* ... and issues once it is off. */
    static const char *const off[] = {"CERTFLEET_VALIDATOR_CAA_CHECK=false", NULL};
    s_restart_validator(e, off);
    s_caa_order(e, names[0], c);
    s_expect(e, c[0].slug, "valid", NULL, NULL);
    s_assert_value(e, S_ORDER_STATUS, c[0].slug, "ready");
    s_restart_validator(e, NULL);
}

/* A challenge not in processing is answered with its status and nothing changes. */
static void test_not_processing(void **state)
{
    s_env_t *e = *state;
    const char *names[1] = {"idle.example.test"};
    s_challenge_t c[1];
    s_order(e, 1, names, "http-01", "pending", "1 day", c);
    s_route(e, &c[0], S_HTTP_KEYAUTH);
    s_expect(e, c[0].slug, "pending", NULL, NULL);
    s_assert_value(e, S_CHALLENGE_STATUS, c[0].slug, "pending");
    s_assert_value(e, S_AUTHZ_STATUS, c[0].slug, "pending");
    s_assert_value(e, S_ORDER_STATUS, c[0].slug, "pending");
}

static void test_expired_authorization(void **state)
{
    s_env_t *e = *state;
    const char *names[1] = {"late.example.test"};
    s_challenge_t c[1];
    s_order(e, 1, names, "http-01", "processing", "-1 minute", c);
    s_route(e, &c[0], S_HTTP_KEYAUTH);
    s_expect(e, c[0].slug, "invalid", "unauthorized", "expired");
    s_assert_value(e, S_AUTHZ_STATUS, c[0].slug, "expired");
    s_assert_value(e, S_ORDER_STATUS, c[0].slug, "invalid");
}

/* Another worker holds the challenge: in_progress, and the challenge is left alone. */
static void test_locked(void **state)
{
    s_env_t *e = *state;
    const char *names[1] = {"locked.example.test"};
    s_challenge_t c[1];
    s_order(e, 1, names, "http-01", "processing", "1 day", c);
    s_route(e, &c[0], S_HTTP_KEYAUTH);
    char key[128];
    snprintf(key, sizeof key, "acme-challenge:%s", c[0].slug);
    cf_lock_t *lock = cf_lock_new(e->redis, key, 20000);
    assert_int_equal(cf_lock_acquire(lock), 1);
    cf_client_set_attempts(e->client, 1);
    char params[128];
    snprintf(params, sizeof params, "{\"challenge\": \"%s\"}", c[0].slug);
    s_expect_error(e, params, "in_progress", "params.challenge");
    cf_client_set_attempts(e->client, 3);
    s_assert_value(e, S_CHALLENGE_STATUS, c[0].slug, "processing");
    cf_lock_destroy(&lock);
    s_expect(e, c[0].slug, "valid", NULL, NULL);
}

static void test_bad_params(void **state)
{
    s_env_t *e = *state;
    s_expect_error(e, "{\"challenge\": \"no-such-challenge\"}", "unknown_challenge",
                   "params.challenge");
    s_expect_error(e, "{\"challenge\": 42}", "invalid_type", "params.challenge");
    s_expect_error(e, "{\"challenge\": [\"x\"]}", "invalid_type", "params.challenge");
    s_expect_error(e, "{}", "missing_field", "params.challenge");
    s_expect_error(e, "{\"challenge\": \"\"}", "invalid_value", "params.challenge");
    s_expect_error(e, "{\"challenge\": \"x\", \"extra\": 1}", "unknown_field", "params.extra");
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    signal(SIGPIPE, SIG_IGN);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_params),
        cmocka_unit_test(test_http01_valid_two_authorizations),
        cmocka_unit_test(test_http01_wrong_body),
        cmocka_unit_test(test_http01_connection_problems),
        cmocka_unit_test(test_dns01),
        cmocka_unit_test(test_tlsalpn01),
        cmocka_unit_test(test_not_processing),
        cmocka_unit_test(test_expired_authorization),
        cmocka_unit_test(test_locked),
        cmocka_unit_test(test_caa_allowed),
        cmocka_unit_test(test_caa_refused),
        cmocka_unit_test(test_caa_wildcard),
        cmocka_unit_test(test_caa_skipped),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
