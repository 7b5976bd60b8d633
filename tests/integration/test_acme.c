/* certfleet-acme end to end: a real broker, signer, validator and ACME front on loopback
 * over a fresh database. The CAs are made with ca.init (a root and an ACME-enabled
 * intermediate), and the test is an ACME client (cf_jws_sign + libcurl): directory, nonces,
 * accounts, orders with their authorizations and challenges, finalize with the order made
 * ready in SQL, the certificate chain checked with openssl verify, revocation, key change and
 * deactivation; then every bad input answers its RFC 8555 problem type and leaves PostgreSQL
 * as it was. When certfleet-validator serves acme.validate, a whole http-01 flow runs too,
 * the test serving the token on a loopback port. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <curl/curl.h>
#include <jansson.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "cf_base64url.h"
#include "cf_client.h"
#include "cf_jws.h"
#include "cf_key.h"
#include "cf_pg.h"
#include "cf_test.h"
#include "cf_test_fleet.h"
#include "cf_test_jobs.h"
#include "cf_test_metrics.h"

#define S_ROOT        "acme-root"
#define S_CA          "acme-int"
#define S_TOS         "https://example.test/terms"
#define S_URN         "urn:ietf:params:acme:error:"
#define S_MAX_BODY    8192
#define S_MAX_PENDING 6
/* Short, so that a finalize that outlives it (the signer stopped) is quick to test. */
#define S_FINALIZE_WAIT_MS 3000

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config */
    pid_t pids[4];         /* broker, signer, validator, acme */
    int npids;             /* slots used */
    cf_client_t *client;   /* for ca.init */
    cf_pg_t *pg;           /* the test's own connection */
    int http_port;         /* where the test answers http-01 */
    char base[64];         /* http://127.0.0.1:PORT */
    char dir[128];         /* base/acme/S_CA */
    bool validator;        /* certfleet-validator serves acme.validate */
    int metrics_port;      /* certfleet-acme's /metrics */
    CURL *curl;            /* the HTTP client */
} s_env_t;

static s_env_t *s_env;

/* ---- HTTP ------------------------------------------------------------------------------ */

typedef struct {
    long status;             /* HTTP status, 0 when none */
    char *body;              /* body, NUL-terminated */
    size_t len;              /* its length */
    char nonce[128];         /* Replay-Nonce */
    char location[512];      /* Location */
    char link[2048];         /* every Link, joined by ", " */
    char retry_after[32];    /* Retry-After */
    char content_type[128];  /* Content-Type */
    char cache_control[128]; /* Cache-Control */
    json_t *json;            /* the body as JSON, or NULL */
} s_resp_t;

static void s_resp_free(s_resp_t *r)
{
    free(r->body);
    json_decref(r->json);
    memset(r, 0, sizeof *r);
}

static size_t s_on_body(char *data, size_t size, size_t n, void *user)
{
    s_resp_t *r = user;
    size_t add = size * n;
    char *b = realloc(r->body, r->len + add + 1);
    assert_non_null(b);
    memcpy(b + r->len, data, add);
    r->len += add;
    b[r->len] = '\0';
    r->body = b;
    return add;
}

static void s_copy_header(const char *line, size_t len, const char *name, char *out, size_t cap,
                          bool append)
{
    size_t nl = strlen(name);
    if (len <= nl + 1 || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    size_t vl = len - nl - 1;
    while (vl > 0 && (*v == ' ' || *v == '\t'))
        v++, vl--;
    while (vl > 0 && (v[vl - 1] == '\r' || v[vl - 1] == '\n'))
        vl--;
    size_t used = append ? strlen(out) : 0;
    if (append && used > 0 && used + 2 < cap)
        used += (size_t)snprintf(out + used, cap - used, ", ");
    snprintf(out + used, cap - used, "%.*s", (int)vl, v);
}

static size_t s_on_header(char *line, size_t size, size_t n, void *user)
{
    s_resp_t *r = user;
    size_t len = size * n;
    s_copy_header(line, len, "Replay-Nonce", r->nonce, sizeof r->nonce, false);
    s_copy_header(line, len, "Location", r->location, sizeof r->location, false);
    s_copy_header(line, len, "Link", r->link, sizeof r->link, true);
    s_copy_header(line, len, "Retry-After", r->retry_after, sizeof r->retry_after, false);
    s_copy_header(line, len, "Content-Type", r->content_type, sizeof r->content_type, false);
    s_copy_header(line, len, "Cache-Control", r->cache_control, sizeof r->cache_control, false);
    return len;
}

/* One request. CTYPE and BODY may be NULL. */
static void s_http(const char *method, const char *url, const char *ctype, const void *body,
                   size_t len, s_resp_t *out)
{
    memset(out, 0, sizeof *out);
    CURL *c = s_env->curl;
    curl_easy_reset(c);
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, out);
    curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt(c, CURLOPT_HEADERDATA, out);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    struct curl_slist *headers = NULL;
    char ct[160];
    if (ctype) {
        snprintf(ct, sizeof ct, "Content-Type: %s", ctype);
        headers = curl_slist_append(headers, ct);
    }
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
    } else if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(c, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long)len);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
    }
    CURLcode rc = curl_easy_perform(c);
    curl_slist_free_all(headers);
    if (rc == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out->status);
    if (out->body)
        out->json = json_loads(out->body, 0, NULL);
}

/* The problem type of R without the URN prefix ("" when R is no problem document). */
static const char *s_ptype(const s_resp_t *r)
{
    const char *type = json_string_value(json_object_get(r->json, "type"));
    if (!type || strncmp(type, S_URN, strlen(S_URN)) != 0 ||
        strncmp(r->content_type, "application/problem+json", 24) != 0)
        return "";
    return type + strlen(S_URN);
}

/* ---- the ACME client ------------------------------------------------------------------- */

typedef struct {
    EVP_PKEY *key; /* the account key */
    char kid[512]; /* the account URL, "" before registration */
} s_acct_t;

static void s_url(char *out, size_t len, const char *path)
{
    snprintf(out, len, "%s/%s", s_env->dir, path);
}

/* A fresh nonce from new-nonce (caller frees). */
static char *s_nonce(void)
{
    char url[256];
    s_url(url, sizeof url, "new-nonce");
    s_resp_t r;
    s_http("HEAD", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_true(r.nonce[0] != '\0');
    char *nonce = strdup(r.nonce);
    s_resp_free(&r);
    return nonce;
}

/* The JWS of PAYLOAD for URL signed by KEY (KID "" or NULL: with the jwk). Caller frees. */
static char *s_sign(EVP_PKEY *key, const char *kid, const char *url, const char *payload)
{
    char *nonce = s_nonce();
    cf_error_t err = {0};
    char *jws = cf_jws_sign(key, kid && kid[0] ? kid : NULL, nonce, url, payload, &err);
    if (!jws)
        fail_msg("cf_jws_sign: %s: %s", err.code, err.message);
    free(nonce);
    return jws;
}

static void s_post_raw(const char *url, const char *jws, s_resp_t *out)
{
    s_http("POST", url, "application/jose+json", jws, strlen(jws), out);
}

/* POST PAYLOAD ("" for POST-as-GET) to URL as account A (kid, or jwk before it has one). */
static void s_post(const s_acct_t *a, const char *url, const char *payload, s_resp_t *out)
{
    char *jws = s_sign(a->key, a->kid, url, payload);
    s_post_raw(url, jws, out);
    free(jws);
}

static EVP_PKEY *s_key(const char *type)
{
    if (strcmp(type, "RSA") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    if (strcmp(type, "Ed25519") == 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", type);
}

/* Register a new account with a new key of TYPE; it must be created (201). */
static void s_register(s_acct_t *a, const char *type)
{
    memset(a, 0, sizeof *a);
    a->key = s_key(type);
    assert_non_null(a->key);
    char url[256];
    s_url(url, sizeof url, "new-account");
    s_resp_t r;
    s_post(a, url, "{\"termsOfServiceAgreed\": true, \"contact\": [\"mailto:admin@example.test\"]}",
           &r);
    if (r.status != 201)
        fail_msg("new-account: %ld %s", r.status, r.body ? r.body : "");
    assert_true(strncmp(r.location, s_env->dir, strlen(s_env->dir)) == 0);
    snprintf(a->kid, sizeof a->kid, "%s", r.location);
    s_resp_free(&r);
}

static void s_acct_free(s_acct_t *a)
{
    EVP_PKEY_free(a->key);
    memset(a, 0, sizeof *a);
}

/* Place an order for the NAMES (JSON array text of strings); it must be created. */
static json_t *s_order(const s_acct_t *a, const char *names, char *location, size_t loclen)
{
    char url[256], payload[4096];
    s_url(url, sizeof url, "new-order");
    json_t *list = json_loads(names, 0, NULL), *idents = json_array();
    size_t i;
    json_t *n;
    json_array_foreach(list, i, n)
        json_array_append_new(idents, json_pack("{s:s, s:O}", "type", "dns", "value", n));
    json_decref(list);
    json_t *p = json_pack("{s:o}", "identifiers", idents);
    char *text = json_dumps(p, JSON_COMPACT);
    snprintf(payload, sizeof payload, "%s", text);
    free(text);
    json_decref(p);
    s_resp_t r;
    s_post(a, url, payload, &r);
    if (r.status != 201)
        fail_msg("new-order: %ld %s", r.status, r.body ? r.body : "");
    snprintf(location, loclen, "%s", r.location);
    json_t *order = json_incref(r.json);
    s_resp_free(&r);
    return order;
}

/* POST-as-GET URL as A; the JSON body (caller owns) of a 200. */
static json_t *s_get(const s_acct_t *a, const char *url)
{
    s_resp_t r;
    s_post(a, url, "", &r);
    if (r.status != 200)
        fail_msg("POST-as-GET %s: %ld %s", url, r.status, r.body ? r.body : "");
    json_t *doc = json_incref(r.json);
    s_resp_free(&r);
    return doc;
}

/* ---- the database ---------------------------------------------------------------------- */

/* Everything the ACME front may write, as one text: a bad request must leave it as it was. */
static char *s_snapshot(void)
{
    return cf_test_query(
        s_env->pg,
        "SELECT concat_ws(' | ',"
        " (SELECT string_agg(slug || status || thumbprint || contact::text ||"
        "  terms_of_service_agreed::text, ',' ORDER BY id) FROM acme_accounts),"
        " (SELECT string_agg(slug || status || coalesce(error::text, ''), ',' ORDER BY id)"
        "  FROM acme_orders),"
        " (SELECT string_agg(slug || status, ',' ORDER BY id) FROM acme_authorizations),"
        " (SELECT string_agg(slug || status, ',' ORDER BY id) FROM acme_challenges),"
        " (SELECT string_agg(slug || coalesce(certificate_id::text, '-'), ',' ORDER BY id)"
        "  FROM acme_certificates),"
        " (SELECT string_agg(serial || revoked::text, ',' ORDER BY id) FROM certificates))");
}

/* Assert that R is a problem of TYPE with HTTP STATUS, carries a nonce, and that the
 * database still reads BEFORE. */
static void s_expect_problem(const s_resp_t *r, long status, const char *type, const char *before,
                             const char *what)
{
    if (r->status != status || strcmp(s_ptype(r), type) != 0)
        fail_msg("%s: want %ld %s, got %ld %s", what, status, type, r->status,
                 r->body ? r->body : "(no body)");
    assert_true(r->nonce[0] != '\0');
    assert_int_equal(json_integer_value(json_object_get(r->json, "status")), status);
    char *after = s_snapshot();
    if (strcmp(before, after) != 0)
        fail_msg("%s: the database changed:\n  before %s\n  after  %s", what, before, after);
    free(after);
}

static void s_sql(const char *sql)
{
    cf_test_sql(s_env->pg, sql);
}

/* ---- PKI ------------------------------------------------------------------------------- */

/* A CSR for SANS ("DNS:a,DNS:b") with CN (NULL: none), signed by KEY, as base64url DER. */
static char *s_csr(EVP_PKEY *key, const char *cn, const char *sans, bool break_signature)
{
    X509_REQ *req = X509_REQ_new();
    if (cn)
        X509_NAME_add_entry_by_txt(X509_REQ_get_subject_name(req), "CN", MBSTRING_UTF8,
                                   (const unsigned char *)cn, -1, -1, 0);
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans);
    assert_non_null(san);
    sk_X509_EXTENSION_push(exts, san);
    X509_REQ_add_extensions(req, exts);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_REQ_set_pubkey(req, key);
    assert_true(X509_REQ_sign(req, key, EVP_sha256()) > 0);
    unsigned char *der = NULL;
    int len = i2d_X509_REQ(req, &der);
    assert_true(len > 0);
    if (break_signature)
        der[len - 3] ^= 0x01; /* inside the signature value */
    char *text = cf_base64url_encode(der, (size_t)len);
    OPENSSL_free(der);
    X509_REQ_free(req);
    return text;
}

static void s_write_file(const char *path, const void *data, size_t len)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
}

/* Download the certificate at URL as A and check it with openssl verify against the root;
 * the chain must be the leaf and the intermediate (the root left out). The leaf's DER
 * (caller frees) in *DER. */
static void s_check_certificate(const s_acct_t *a, const char *url, unsigned char **der,
                                size_t *der_len, const char *want_name)
{
    s_resp_t r;
    s_post(a, url, "", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/pem-certificate-chain");
    assert_non_null(r.body);
    /* Leaf, then the intermediate; no root. */
    const char *p = r.body;
    int count = 0;
    while ((p = strstr(p, "-----BEGIN CERTIFICATE-----")) != NULL) {
        count++;
        p++;
    }
    assert_int_equal(count, 2);
    char chain[400], root[400], cmd[1400];
    snprintf(chain, sizeof chain, "%s/chain.pem", s_env->fleet.dir);
    snprintf(root, sizeof root, "%s/root.pem", s_env->fleet.dir);
    s_write_file(chain, r.body, r.len);
    char *root_pem = cf_test_query(s_env->pg, "SELECT encode(der, 'base64') FROM"
                                              " certificate_authorities WHERE name = '" S_ROOT "'");
    FILE *f = fopen(root, "w");
    assert_non_null(f);
    fprintf(f, "-----BEGIN CERTIFICATE-----\n%s\n-----END CERTIFICATE-----\n", root_pem);
    fclose(f);
    free(root_pem);
    snprintf(cmd, sizeof cmd,
             "openssl verify -purpose sslserver -CAfile '%s' -untrusted '%s' '%s' >'%s/verify.out' "
             "2>&1",
             root, chain, chain, s_env->fleet.dir);
    if (system(cmd) != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/verify.out' >&2", s_env->fleet.dir);
        assert_int_equal(system(cmd), 0);
        fail_msg("openssl verify refused the chain");
    }
    BIO *bio = BIO_new_mem_buf(r.body, (int)r.len);
    X509 *leaf = PEM_read_bio_X509(bio, NULL, NULL, NULL);
    BIO_free(bio);
    assert_non_null(leaf);
    assert_int_equal(X509_check_host(leaf, want_name, 0, 0, NULL), 1);
    unsigned char *d = NULL;
    int len = i2d_X509(leaf, &d);
    *der = malloc((size_t)len);
    memcpy(*der, d, (size_t)len);
    *der_len = (size_t)len;
    OPENSSL_free(d);
    X509_free(leaf);
    s_resp_free(&r);
}

/* ---- the fleet ------------------------------------------------------------------------- */

/* True when some worker serves acme.validate (it answers a made-up challenge as unknown). */
static bool s_validator_serves(s_env_t *env)
{
    json_t *p = json_pack("{s:s}", "challenge", "nosuchchallengexx");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cf_test_pack_params(&buf, p, NULL, 0);
    json_decref(p);
    cf_client_t *c = cf_client_new(env->fleet.endpoint);
    cf_client_set_timeout(c, 3000);
    cf_client_set_attempts(c, 1);
    cf_reply_t *r = cf_client_call(c, "acme.validate", buf.data, buf.size, cf_now_ms() + 3000);
    bool serves =
        r && (cf_reply_ok(r) || strcmp(cf_reply_error(r)->code, "unknown_challenge") == 0);
    cf_reply_destroy(&r);
    cf_client_destroy(&c);
    msgpack_sbuffer_destroy(&buf);
    return serves;
}

static void s_ca_init(s_env_t *env, const char *name, const char *parent)
{
    char subject[128];
    snprintf(subject, sizeof subject, "/O=certfleet test/CN=%s", name);
    json_t *p = json_pack("{s:s, s:s, s:s}", "name", name, "subject", subject, "key_type", "EC");
    if (parent)
        json_object_set_new(p, "parent", json_string(parent));
    cf_reply_t *r = cf_test_call(env->client, "ca.init", p, NULL, 0);
    cf_test_assert_ok(r, name);
    cf_reply_destroy(&r);
}

static int s_setup(void **state)
{
    CF_TEST_NEEDS_SERVICES();
    curl_global_init(CURL_GLOBAL_DEFAULT);
    s_env_t *env = calloc(1, sizeof *env);
    s_env = env;
    assert_int_equal(cf_test_fleet_init(&env->fleet, "acme"), 0);
    int port = cf_test_free_port();
    env->http_port = cf_test_free_port();
    snprintf(env->base, sizeof env->base, "http://127.0.0.1:%d", port);
    snprintf(env->dir, sizeof env->dir, "%s/acme/" S_CA, env->base);
    char extra[1024];
    snprintf(extra, sizeof extra,
             /* One HTTP thread: a request that held it would hold up every other one
              * (test_parked_finalize_blocks_nothing). A challenge POST waits for the verdict
              * long enough to be answered with it (test_http01_flow). */
             "[acme]\nlisten = 127.0.0.1:%d\nthreads = 1\nmax_body_bytes = %d\n"
             "max_pending_orders = %d\nfinalize_wait_ms = %d\nchallenge_wait_ms = 20000\n"
             /* The CA names a CAA identity (for the directory's caaIdentities); CAA lookups
              * would need this machine's resolver, so they are tested in test_validator.c
              * against a DNS server of that test's own. */
             "[validator]\nhttp_port = %d\nconnect_address = 127.0.0.1\ntimeout_ms = 5000\n"
             "caa_check = false\n",
             port, S_MAX_BODY, S_MAX_PENDING, S_FINALIZE_WAIT_MS, env->http_port);
    assert_int_equal(cf_test_fleet_write_config(&env->fleet, extra), 0);
    static const char *const progs[][2] = {{"certfleet-broker", "broker.log"},
                                           {"certfleet-signer", "signer.log"},
                                           {"certfleet-validator", "validator.log"}};
    cf_test_fleet_start_all(&env->fleet, progs, 3, env->pids, &env->npids, 2, 15000);
    /* certfleet-acme alone serves metrics (on a port of its own, through the environment). */
    env->metrics_port = cf_test_free_port();
    char port_text[16];
    snprintf(port_text, sizeof port_text, "%d", env->metrics_port);
    setenv("CERTFLEET_METRICS_PORT", port_text, 1);
    env->pids[3] = cf_test_fleet_start(&env->fleet, "certfleet-acme", "acme.log");
    unsetenv("CERTFLEET_METRICS_PORT");
    assert_true(env->pids[3] > 0);
    env->npids = 4;
    env->client = cf_client_new(env->fleet.endpoint);
    cf_client_set_timeout(env->client, 10000);
    cf_client_set_attempts(env->client, 6);
    env->pg = cf_pg_new(env->fleet.conninfo);
    env->curl = curl_easy_init();
    s_ca_init(env, S_ROOT, NULL);
    s_ca_init(env, S_CA, S_ROOT);
    s_sql("UPDATE certificate_authorities SET acme_enabled = true, terms_of_service = '" S_TOS
          "', website = 'https://example.test/', caa = 'example.test' WHERE name = '" S_CA "'");
    env->validator = s_validator_serves(env);
    /* The front answers once its port is open. */
    char url[256];
    s_url(url, sizeof url, "directory");
    s_resp_t r = {0};
    for (int i = 0; i < 100 && r.status != 200; i++) {
        s_resp_free(&r);
        s_http("GET", url, NULL, NULL, 0, &r);
        if (r.status != 200)
            usleep(100 * 1000);
    }
    assert_int_equal(r.status, 200);
    s_resp_free(&r);
    *state = env;
    return 0;
}

static int s_teardown(void **state)
{
    s_env_t *env = *state;
    if (!env)
        return 0;
    curl_easy_cleanup(env->curl);
    cf_client_destroy(&env->client);
    cf_pg_destroy(&env->pg);
    cf_test_fleet_stop_all(env->pids, env->npids);
    int reports = cf_test_fleet_cleanup(&env->fleet);
    free(env);
    curl_global_cleanup();
    assert_int_equal(reports, 0);
    return 0;
}

/* ---- tests ----------------------------------------------------------------------------- */

static void test_directory_and_nonce(void **state)
{
    char url[256], want[256];
    s_resp_t r;
    s_url(url, sizeof url, "directory");
    s_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.content_type, "application/json");
    assert_string_equal(r.cache_control, "no-store");
    static const char *const members[][2] = {{"newNonce", "new-nonce"},
                                             {"newAccount", "new-account"},
                                             {"newOrder", "new-order"},
                                             {"revokeCert", "revoke-cert"},
                                             {"keyChange", "key-change"}};
    for (int i = 0; i < 5; i++) {
        s_url(want, sizeof want, members[i][1]);
        assert_string_equal(json_string_value(json_object_get(r.json, members[i][0])), want);
    }
    json_t *meta = json_object_get(r.json, "meta");
    assert_string_equal(json_string_value(json_object_get(meta, "termsOfService")), S_TOS);
    assert_string_equal(json_string_value(json_object_get(meta, "website")),
                        "https://example.test/");
    assert_string_equal(
        json_string_value(json_array_get(json_object_get(meta, "caaIdentities"), 0)),
        "example.test");
    assert_true(json_is_false(json_object_get(meta, "externalAccountRequired")));
    s_resp_free(&r);

    /* Unknown CAs and CAs without ACME have no directory. */
    char *before = s_snapshot();
    snprintf(url, sizeof url, "%s/acme/nosuchca/directory", s_env->base);
    s_http("GET", url, NULL, NULL, 0, &r);
    s_expect_problem(&r, 404, "malformed", before, "unknown CA");
    s_resp_free(&r);
    snprintf(url, sizeof url, "%s/acme/" S_ROOT "/directory", s_env->base);
    s_http("GET", url, NULL, NULL, 0, &r);
    s_expect_problem(&r, 404, "malformed", before, "CA without ACME");
    s_resp_free(&r);
    s_url(url, sizeof url, "no-such-thing");
    s_http("GET", url, NULL, NULL, 0, &r);
    s_expect_problem(&r, 404, "malformed", before, "unknown resource");
    s_resp_free(&r);
    s_url(url, sizeof url, "directory");
    s_http("POST", url, "application/jose+json", "{}", 2, &r);
    s_expect_problem(&r, 405, "malformed", before, "POST to the directory");
    s_resp_free(&r);

    /* newNonce: HEAD 200, GET 204, never cached, never the same. */
    s_url(url, sizeof url, "new-nonce");
    s_http("HEAD", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.cache_control, "no-store");
    char first[128];
    snprintf(first, sizeof first, "%s", r.nonce);
    assert_true(strlen(first) >= 16);
    s_resp_free(&r);
    s_http("GET", url, NULL, NULL, 0, &r);
    assert_int_equal(r.status, 204);
    assert_string_equal(r.cache_control, "no-store");
    assert_true(r.nonce[0] && strcmp(r.nonce, first) != 0);
    s_resp_free(&r);
    free(before);
}

static void test_accounts(void **state)
{
    char url[256];
    s_url(url, sizeof url, "new-account");
    s_acct_t a;
    s_register(&a, "P-256");
    s_resp_t r;
    /* The same key again: the same account, 200. */
    s_acct_t again = {.key = a.key};
    s_post(&again, url, "{\"termsOfServiceAgreed\": true}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.location, a.kid);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "valid");
    s_resp_free(&r);
    s_post(&again, url, "{\"onlyReturnExisting\": true}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(r.location, a.kid);
    s_resp_free(&r);
    /* The account URL: read, then a contact update. */
    json_t *doc = s_get(&a, a.kid);
    assert_string_equal(json_string_value(json_array_get(json_object_get(doc, "contact"), 0)),
                        "mailto:admin@example.test");
    assert_true(json_is_true(json_object_get(doc, "termsOfServiceAgreed")));
    json_decref(doc);
    s_post(&a, a.kid, "{\"contact\": [\"mailto:ops@example.test\"]}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_array_get(json_object_get(r.json, "contact"), 0)),
                        "mailto:ops@example.test");
    s_resp_free(&r);

    /* Refusals, each leaving the database as it was. */
    char *before = s_snapshot();
    s_acct_t fresh = {.key = s_key("P-384")};
    s_post(&fresh, url, "{\"onlyReturnExisting\": true}", &r);
    s_expect_problem(&r, 400, "accountDoesNotExist", before, "onlyReturnExisting, new key");
    s_resp_free(&r);
    s_post(&fresh, url, "{\"contact\": [\"mailto:a@example.test\"]}", &r);
    s_expect_problem(&r, 403, "userActionRequired", before, "terms of service not agreed");
    assert_string_equal(json_string_value(json_object_get(r.json, "instance")), S_TOS);
    s_resp_free(&r);
    s_post(&fresh, url, "{\"termsOfServiceAgreed\": true}", &r);
    s_expect_problem(&r, 400, "invalidContact", before, "no contact");
    s_resp_free(&r);
    s_post(&fresh, url, "{\"termsOfServiceAgreed\": true, \"contact\": [\"tel:+1555\"]}", &r);
    s_expect_problem(&r, 400, "unsupportedContact", before, "tel: contact");
    s_resp_free(&r);
    static const char *const bad_mail[] = {"mailto:nobody", "mailto:a@b@example.test",
                                           "mailto:a@example.test?subject=x", "mailto:a@-x.test",
                                           "mailto:a@example.test,b@example.test"};
    for (size_t i = 0; i < sizeof bad_mail / sizeof *bad_mail; i++) {
        char payload[256];
        snprintf(payload, sizeof payload, "{\"termsOfServiceAgreed\": true, \"contact\": [\"%s\"]}",
                 bad_mail[i]);
        s_post(&fresh, url, payload, &r);
        s_expect_problem(&r, 400, "invalidContact", before, bad_mail[i]);
        s_resp_free(&r);
    }
    s_post(&fresh, url, "{\"termsOfServiceAgreed\": \"yes\"}", &r);
    s_expect_problem(&r, 400, "malformed", before, "termsOfServiceAgreed not a boolean");
    s_resp_free(&r);
    /* Another account's URL. */
    s_post(&fresh, url,
           "{\"termsOfServiceAgreed\": true, \"contact\": [\"mailto:b@example.test\"]}", &r);
    assert_int_equal(r.status, 201);
    s_acct_t b = {.key = fresh.key};
    snprintf(b.kid, sizeof b.kid, "%s", r.location);
    s_resp_free(&r);
    free(before);
    before = s_snapshot();
    s_post(&b, a.kid, "", &r);
    s_expect_problem(&r, 403, "unauthorized", before, "another account's URL");
    s_resp_free(&r);
    /* The orders list is there and empty. */
    char orders[600];
    snprintf(orders, sizeof orders, "%s/orders", b.kid);
    doc = s_get(&b, orders);
    assert_int_equal(json_array_size(json_object_get(doc, "orders")), 0);
    json_decref(doc);
    free(before);
    s_acct_free(&b);
    s_acct_free(&a);
}

/* A flattened JWS with a made-up protected header (base64url of HEADER) and signature. */
static char *s_forged(const char *header, const char *payload)
{
    char *h = cf_base64url_encode(header, strlen(header));
    char *p = cf_base64url_encode(payload, strlen(payload));
    unsigned char sig[64] = {1};
    char *s = cf_base64url_encode(sig, sizeof sig);
    size_t n = strlen(h) + strlen(p) + strlen(s) + 64;
    char *out = malloc(n);
    snprintf(out, n, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", h, p, s);
    free(h);
    free(p);
    free(s);
    return out;
}

static void test_bad_requests(void **state)
{
    s_acct_t a;
    s_register(&a, "P-256");
    char url[256], other[256];
    s_url(url, sizeof url, "new-order");
    const char *payload =
        "{\"identifiers\": [{\"type\": \"dns\", \"value\": \"bad.example.test\"}]}";
    char *before = s_snapshot();
    s_resp_t r;

    /* A replayed request: its nonce is used up. */
    char *jws = s_sign(a.key, a.kid, a.kid, "");
    s_post_raw(a.kid, jws, &r);
    assert_int_equal(r.status, 200);
    s_resp_free(&r);
    s_post_raw(a.kid, jws, &r);
    s_expect_problem(&r, 400, "badNonce", before, "replayed nonce");
    s_resp_free(&r);
    free(jws);
    /* A nonce we never issued. */
    cf_error_t err = {0};
    jws = cf_jws_sign(a.key, a.kid, "bm90LWEtbm9uY2U", url, payload, &err);
    assert_non_null(jws);
    s_post_raw(url, jws, &r);
    s_expect_problem(&r, 400, "badNonce", before, "made-up nonce");
    s_resp_free(&r);
    free(jws);

    /* A signature that does not verify: another request's, same key. */
    jws = s_sign(a.key, a.kid, url, payload);
    char *jws2 = s_sign(a.key, a.kid, url, "{\"identifiers\": []}");
    json_t *j1 = json_loads(jws, 0, NULL), *j2 = json_loads(jws2, 0, NULL);
    json_object_set(j1, "signature", json_object_get(j2, "signature"));
    char *swapped = json_dumps(j1, JSON_COMPACT);
    s_post_raw(url, swapped, &r);
    if (strcmp(s_ptype(&r), "malformed") == 0)
        s_expect_problem(&r, 400, "malformed", before, "bad signature");
    else
        s_expect_problem(&r, 403, "unauthorized", before, "bad signature");
    s_resp_free(&r);
    free(swapped);
    json_decref(j1);
    json_decref(j2);
    free(jws);
    free(jws2);

    /* Signed for another URL. */
    s_url(other, sizeof other, "new-order-elsewhere");
    jws = s_sign(a.key, a.kid, other, payload);
    s_post_raw(url, jws, &r);
    s_expect_problem(&r, 403, "unauthorized", before, "wrong url");
    s_resp_free(&r);
    free(jws);

    /* A kid that is no account here. */
    s_acct_t ghost = {.key = a.key};
    snprintf(ghost.kid, sizeof ghost.kid, "%s/acct/AAAAAAAAAAAAAAAA", s_env->dir);
    s_post(&ghost, url, payload, &r);
    s_expect_problem(&r, 400, "accountDoesNotExist", before, "unknown kid");
    s_resp_free(&r);
    snprintf(ghost.kid, sizeof ghost.kid, "%s", a.kid);
    memcpy(strstr(ghost.kid, "/acme/" S_CA) + 6, "acme-xyz", 8); /* same slug, other CA */
    s_post(&ghost, url, payload, &r);
    s_expect_problem(&r, 400, "accountDoesNotExist", before, "kid of another CA's path");
    s_resp_free(&r);

    /* A bare key where an account must sign. */
    s_acct_t bare = {.key = a.key};
    s_post(&bare, url, payload, &r);
    s_expect_problem(&r, 400, "malformed", before, "jwk on new-order");
    s_resp_free(&r);

    /* Algorithms that are not ACME's. */
    char *nonce = s_nonce();
    char header[1024];
    snprintf(header, sizeof header,
             "{\"alg\":\"HS256\",\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"%s\"}", a.kid, nonce,
             url);
    jws = s_forged(header, payload);
    s_post_raw(url, jws, &r);
    s_expect_problem(&r, 400, "badSignatureAlgorithm", before, "HS256");
    assert_true(json_array_size(json_object_get(r.json, "algorithms")) > 0);
    s_resp_free(&r);
    free(jws);
    snprintf(header, sizeof header,
             "{\"alg\":\"none\",\"kid\":\"%s\",\"nonce\":\"%s\",\"url\":\"%s\"}", a.kid, nonce,
             url);
    jws = s_forged(header, payload);
    s_post_raw(url, jws, &r);
    s_expect_problem(&r, 400, "badSignatureAlgorithm", before, "alg none");
    s_resp_free(&r);
    free(jws);
    free(nonce);

    /* Bodies: not JSON, too large, the wrong media type, GET where POST is needed. */
    s_http("POST", url, "application/jose+json", "this is not json", 16, &r);
    s_expect_problem(&r, 400, "malformed", before, "non-JSON body");
    s_resp_free(&r);
    s_http("POST", url, "application/jose+json", "{\"protected\": 1}", 16, &r);
    s_expect_problem(&r, 400, "malformed", before, "JSON but no JWS");
    s_resp_free(&r);
    size_t big_len = S_MAX_BODY + 100;
    char *big = malloc(big_len);
    memset(big, 'x', big_len);
    s_http("POST", url, "application/jose+json", big, big_len, &r);
    s_expect_problem(&r, 413, "malformed", before, "oversized body");
    s_resp_free(&r);
    free(big);
    jws = s_sign(a.key, a.kid, url, payload);
    s_http("POST", url, "application/json", jws, strlen(jws), &r);
    s_expect_problem(&r, 415, "malformed", before, "wrong content type");
    s_resp_free(&r);
    free(jws);
    s_http("GET", url, NULL, NULL, 0, &r);
    s_expect_problem(&r, 405, "malformed", before, "GET new-order");
    s_resp_free(&r);
    /* A payload on a POST-as-GET resource, none where one is needed. */
    s_post(&a, url, "", &r);
    s_expect_problem(&r, 400, "malformed", before, "new-order without payload");
    s_resp_free(&r);
    free(before);
    s_acct_free(&a);
}

static void test_orders(void **state)
{
    s_acct_t a;
    s_register(&a, "RSA");
    char loc[512];
    json_t *order = s_order(&a, "[\"www.example.test\", \"Example.TEST\", \"WWW.example.test\"]",
                            loc, sizeof loc);
    assert_string_equal(json_string_value(json_object_get(order, "status")), "pending");
    assert_non_null(json_object_get(order, "expires"));
    json_t *idents = json_object_get(order, "identifiers");
    assert_int_equal(json_array_size(idents), 2); /* duplicates removed, lower case */
    assert_string_equal(json_string_value(json_object_get(json_array_get(idents, 0), "value")),
                        "www.example.test");
    assert_string_equal(json_string_value(json_object_get(json_array_get(idents, 1), "value")),
                        "example.test");
    json_t *authzs = json_object_get(order, "authorizations");
    assert_int_equal(json_array_size(authzs), 2);
    char want[600];
    snprintf(want, sizeof want, "%s/finalize", loc);
    assert_string_equal(json_string_value(json_object_get(order, "finalize")), want);
    /* The order URL answers the same. */
    json_t *again = s_get(&a, loc);
    assert_true(json_equal(json_object_get(again, "authorizations"), authzs));
    json_decref(again);

    /* Each authorization: pending, three challenges with 32-octet tokens. */
    json_t *authz = s_get(&a, json_string_value(json_array_get(authzs, 0)));
    assert_string_equal(json_string_value(json_object_get(authz, "status")), "pending");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(authz, "identifier"), "value")),
        "www.example.test");
    json_t *challs = json_object_get(authz, "challenges");
    assert_int_equal(json_array_size(challs), 3);
    bool seen[3] = {false};
    static const char *const types[] = {"http-01", "dns-01", "tls-alpn-01"};
    size_t i;
    json_t *ch;
    json_array_foreach(challs, i, ch)
    {
        for (int t = 0; t < 3; t++)
            if (strcmp(json_string_value(json_object_get(ch, "type")), types[t]) == 0)
                seen[t] = true;
        assert_string_equal(json_string_value(json_object_get(ch, "status")), "pending");
        assert_int_equal(strlen(json_string_value(json_object_get(ch, "token"))), 43);
    }
    assert_true(seen[0] && seen[1] && seen[2]);
    /* A challenge read with POST-as-GET, with its Link up to the authorization. */
    const char *chall_url = json_string_value(json_object_get(json_array_get(challs, 0), "url"));
    s_resp_t r;
    s_post(&a, chall_url, "", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "pending");
    snprintf(want, sizeof want, "<%s>;rel=\"up\"", json_string_value(json_array_get(authzs, 0)));
    assert_non_null(strstr(r.link, want));
    s_resp_free(&r);
    json_decref(authz);

    /* A wildcard gets dns-01 only. */
    json_t *wild = s_order(&a, "[\"*.example.test\"]", loc, sizeof loc);
    authz =
        s_get(&a, json_string_value(json_array_get(json_object_get(wild, "authorizations"), 0)));
    assert_true(json_is_true(json_object_get(authz, "wildcard")));
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(authz, "identifier"), "value")),
        "example.test");
    challs = json_object_get(authz, "challenges");
    assert_int_equal(json_array_size(challs), 1);
    assert_string_equal(json_string_value(json_object_get(json_array_get(challs, 0), "type")),
                        "dns-01");
    json_decref(authz);
    json_decref(wild);

    /* Identifiers refused; nothing written. */
    char url[256];
    s_url(url, sizeof url, "new-order");
    char *before = s_snapshot();
    static const struct {
        const char *payload;
        const char *type;
    } bad[] = {
        {"{\"identifiers\": [{\"type\": \"ip\", \"value\": \"192.0.2.1\"}]}",
         "unsupportedIdentifier"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"exa_mple.test\"}]}",
         "rejectedIdentifier"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"www.*.example.test\"}]}",
         "rejectedIdentifier"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"*example.test\"}]}",
         "rejectedIdentifier"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"localhost\"}]}",
         "rejectedIdentifier"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"192.0.2.1\"}]}",
         "rejectedIdentifier"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"-a.example.test\"}]}",
         "rejectedIdentifier"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"example.test.\"}]}",
         "rejectedIdentifier"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"ok.example.test\"},"
         " {\"type\": \"dns\", \"value\": \"b@d.test\"}]}",
         "rejectedIdentifier"},
        {"{\"identifiers\": []}", "malformed"},
        {"{\"identifiers\": \"example.test\"}", "malformed"},
        {"{\"identifiers\": [{\"type\": \"dns\", \"value\": \"a.example.test\"}],"
         " \"notAfter\": \"yesterday\"}",
         "malformed"},
    };
    for (i = 0; i < sizeof bad / sizeof *bad; i++) {
        s_post(&a, url, bad[i].payload, &r);
        s_expect_problem(&r, 400, bad[i].type, before, bad[i].payload);
        s_resp_free(&r);
    }
    /* More than 100 distinct names. */
    json_t *many = json_array();
    for (int k = 0; k < 101; k++) {
        char name[64];
        snprintf(name, sizeof name, "n%d.example.test", k);
        json_array_append_new(many, json_pack("{s:s, s:s}", "type", "dns", "value", name));
    }
    json_t *p = json_pack("{s:o}", "identifiers", many);
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    s_post(&a, url, text, &r);
    s_expect_problem(&r, 400, "rejectedIdentifier", before, "101 names");
    s_resp_free(&r);
    free(text);

    /* The open-orders limit: S_MAX_PENDING per account (this one has 2). */
    for (int k = 2; k < S_MAX_PENDING; k++) {
        json_decref(s_order(&a, "[\"limit.example.test\"]", loc, sizeof loc));
    }
    free(before);
    before = s_snapshot();
    s_post(&a, url,
           "{\"identifiers\": [{\"type\": \"dns\", \"value\": \"one-more.example.test\"}]}", &r);
    s_expect_problem(&r, 429, "rateLimited", before, "open-orders limit");
    s_resp_free(&r);
    /* The orders list shows them. */
    char orders[600];
    snprintf(orders, sizeof orders, "%s/orders", a.kid);
    json_t *list = s_get(&a, orders);
    assert_int_equal(json_array_size(json_object_get(list, "orders")), S_MAX_PENDING);
    json_decref(list);
    free(before);
    json_decref(order);
    s_acct_free(&a);
}

/* Make every authorization of the order at ORDER_URL valid and the order ready, in SQL (as
 * the validator would). */
static void s_make_ready(const char *order_url)
{
    const char *slug = strrchr(order_url, '/') + 1;
    char sql[512];
    snprintf(sql, sizeof sql,
             "UPDATE acme_authorizations SET status = 'valid' WHERE order_id = (SELECT id FROM"
             " acme_orders WHERE slug = '%s'); UPDATE acme_orders SET status = 'ready' WHERE"
             " slug = '%s'",
             slug, slug);
    s_sql(sql);
}

/* Poll the order at URL until it leaves "processing"; its JSON (caller owns). */
static json_t *s_poll_order(const s_acct_t *a, const char *url)
{
    for (int i = 0; i < 300; i++) {
        json_t *o = s_get(a, url);
        const char *st = json_string_value(json_object_get(o, "status"));
        if (strcmp(st, "processing") != 0 && strcmp(st, "pending") != 0)
            return o;
        json_decref(o);
        usleep(100 * 1000);
    }
    fail_msg("order %s never finished", url);
    return NULL;
}

static void test_finalize_and_revoke(void **state)
{
    s_acct_t a;
    s_register(&a, "Ed25519");
    char loc[512], finalize[600];
    json_t *order =
        s_order(&a, "[\"shop.example.test\", \"*.shop.example.test\"]", loc, sizeof loc);
    snprintf(finalize, sizeof finalize, "%s/finalize", loc);
    EVP_PKEY *leaf_key = s_key("P-256");
    char *good = s_csr(leaf_key, "shop.example.test",
                       "DNS:shop.example.test,DNS:*.shop.example.test", false);
    char payload[4096];
    snprintf(payload, sizeof payload, "{\"csr\": \"%s\"}", good);
    s_resp_t r;
    char *before = s_snapshot();
    s_post(&a, finalize, payload, &r);
    s_expect_problem(&r, 403, "orderNotReady", before, "finalize before ready");
    s_resp_free(&r);
    free(before);

    s_make_ready(loc);
    before = s_snapshot();
    struct {
        char *csr;
        const char *what;
    } bad[] = {
        {s_csr(leaf_key, "shop.example.test",
               "DNS:shop.example.test,DNS:*.shop.example.test,DNS:other.example.test", false),
         "a name not in the order"},
        {s_csr(leaf_key, "shop.example.test", "DNS:shop.example.test", false), "a name missing"},
        {s_csr(leaf_key, "www.example.test", "DNS:shop.example.test,DNS:*.shop.example.test",
               false),
         "a CN not among the names"},
        {s_csr(leaf_key, NULL, "DNS:shop.example.test,DNS:*.shop.example.test,IP:192.0.2.1", false),
         "an IP address"},
        {s_csr(leaf_key, "shop.example.test", "DNS:shop.example.test,DNS:*.shop.example.test",
               true),
         "a broken signature"},
        {strdup("AAAA"), "not a CSR"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        snprintf(payload, sizeof payload, "{\"csr\": \"%s\"}", bad[i].csr);
        s_post(&a, finalize, payload, &r);
        s_expect_problem(&r, 400, "badCSR", before, bad[i].what);
        s_resp_free(&r);
        free(bad[i].csr);
    }
    s_post(&a, finalize, "{\"csr\": \"not base64url!\"}", &r);
    s_expect_problem(&r, 400, "badCSR", before, "csr not base64url");
    s_resp_free(&r);
    s_post(&a, finalize, "{}", &r);
    s_expect_problem(&r, 400, "malformed", before, "no csr");
    s_resp_free(&r);
    /* Another account may not finalize it. */
    s_acct_t b;
    s_register(&b, "P-256");
    free(before);
    before = s_snapshot();
    snprintf(payload, sizeof payload, "{\"csr\": \"%s\"}", good);
    s_post(&b, finalize, payload, &r);
    s_expect_problem(&r, 403, "unauthorized", before, "another account's order");
    s_resp_free(&r);
    free(before);

    /* The right CSR: issued, the order valid with its certificate. */
    s_post(&a, finalize, payload, &r);
    if (r.status != 200)
        fail_msg("finalize: %ld %s", r.status, r.body ? r.body : "");
    json_t *done = json_incref(r.json);
    s_resp_free(&r);
    if (strcmp(json_string_value(json_object_get(done, "status")), "valid") != 0) {
        json_decref(done);
        done = s_poll_order(&a, loc);
    }
    assert_string_equal(json_string_value(json_object_get(done, "status")), "valid");
    const char *cert_url = json_string_value(json_object_get(done, "certificate"));
    assert_non_null(cert_url);
    unsigned char *der = NULL;
    size_t der_len = 0;
    s_check_certificate(&a, cert_url, &der, &der_len, "x.shop.example.test");
    assert_int_equal(cf_test_count(s_env->pg, "SELECT count(*) FROM acme_certificates WHERE"
                                              " certificate_id IS NOT NULL"),
                     1);
    /* A second finalize: not ready any more. */
    before = s_snapshot();
    s_post(&a, finalize, payload, &r);
    s_expect_problem(&r, 403, "orderNotReady", before, "finalize twice");
    s_resp_free(&r);
    /* Another account may not download it. */
    s_post(&b, cert_url, "", &r);
    s_expect_problem(&r, 403, "unauthorized", before, "another account's certificate");
    s_resp_free(&r);

    /* Revocation: refused for another account and for a reason we do not take. */
    char revoke[256];
    s_url(revoke, sizeof revoke, "revoke-cert");
    char *cert_b64 = cf_base64url_encode(der, der_len);
    char rp[4096];
    snprintf(rp, sizeof rp, "{\"certificate\": \"%s\", \"reason\": 4}", cert_b64);
    s_post(&b, revoke, rp, &r);
    s_expect_problem(&r, 403, "unauthorized", before, "revoke by another account");
    s_resp_free(&r);
    s_acct_t stranger = {.key = b.key}; /* a jwk that is not the certificate's key */
    s_post(&stranger, revoke, rp, &r);
    s_expect_problem(&r, 403, "unauthorized", before, "revoke by a foreign key");
    s_resp_free(&r);
    snprintf(rp, sizeof rp, "{\"certificate\": \"%s\", \"reason\": 6}", cert_b64);
    s_post(&a, revoke, rp, &r);
    s_expect_problem(&r, 400, "badRevocationReason", before, "reason certificateHold");
    s_resp_free(&r);
    /* By the certificate's own key (jwk). */
    s_acct_t by_key = {.key = leaf_key};
    snprintf(rp, sizeof rp, "{\"certificate\": \"%s\", \"reason\": 1}", cert_b64);
    s_post(&by_key, revoke, rp, &r);
    if (r.status != 200)
        fail_msg("revoke: %ld %s", r.status, r.body ? r.body : "");
    s_resp_free(&r);
    assert_int_equal(cf_test_count(s_env->pg, "SELECT count(*) FROM certificates WHERE revoked"
                                              " AND revoked_reason = 'key_compromise'"),
                     1);
    free(before);
    before = s_snapshot();
    s_post(&a, revoke, rp, &r);
    s_expect_problem(&r, 400, "alreadyRevoked", before, "revoked twice");
    s_resp_free(&r);
    /* A certificate this CA did not issue (the root's own). */
    char *root_b64 = cf_test_query(s_env->pg, "SELECT translate(encode(der, 'base64'), E'\\n', '')"
                                              " FROM"
                                              " certificate_authorities WHERE name = '" S_ROOT "'");
    size_t root_len = 0;
    unsigned char *root_der = cf_base64_decode(root_b64, strlen(root_b64), &root_len);
    char *root_url = cf_base64url_encode(root_der, root_len);
    snprintf(rp, sizeof rp, "{\"certificate\": \"%s\"}", root_url);
    s_post(&a, revoke, rp, &r);
    s_expect_problem(&r, 404, "malformed", before, "revoke an unknown certificate");
    s_resp_free(&r);
    free(root_url);
    free(root_der);
    free(root_b64);
    free(before);
    free(cert_b64);
    free(der);
    free(good);
    json_decref(done);
    json_decref(order);
    EVP_PKEY_free(leaf_key);
    s_acct_free(&b);
    s_acct_free(&a);
}

static void test_registration_off(void **state)
{
    s_acct_t a;
    s_register(&a, "P-256");
    s_sql("UPDATE certificate_authorities SET acme_registration = false WHERE name = '" S_CA "'");
    char url[256];
    s_url(url, sizeof url, "new-account");
    char *before = s_snapshot();
    s_acct_t fresh = {.key = s_key("P-256")};
    s_resp_t r;
    s_post(&fresh, url,
           "{\"termsOfServiceAgreed\": true, \"contact\": [\"mailto:c@example.test\"]}", &r);
    s_expect_problem(&r, 403, "unauthorized", before, "registration switched off");
    s_resp_free(&r);
    /* Existing accounts go on. */
    s_acct_t again = {.key = a.key};
    s_post(&again, url, "{\"onlyReturnExisting\": true}", &r);
    assert_int_equal(r.status, 200);
    s_resp_free(&r);
    s_sql("UPDATE certificate_authorities SET acme_registration = true WHERE name = '" S_CA "'");
    free(before);
    s_acct_free(&fresh);
    s_acct_free(&a);
}

/* The keyChange payload: an inner JWS by NEW_KEY for URL naming ACCOUNT and its OLD key. */
static char *s_key_change_payload(EVP_PKEY *new_key, EVP_PKEY *old_key, const char *kid,
                                  const char *url)
{
    cf_error_t err = {0};
    json_t *old_jwk = cf_key_public_jwk(old_key, &err);
    json_t *inner_payload = json_pack("{s:s, s:o}", "account", kid, "oldKey", old_jwk);
    char *text = json_dumps(inner_payload, JSON_COMPACT);
    json_decref(inner_payload);
    char *inner = cf_jws_sign(new_key, NULL, NULL, url, text, &err);
    if (!inner)
        fail_msg("inner JWS: %s", err.message);
    free(text);
    return inner;
}

static void test_key_change_and_deactivate(void **state)
{
    s_acct_t a, b;
    s_register(&a, "P-256");
    s_register(&b, "P-384");
    char url[256];
    s_url(url, sizeof url, "key-change");
    s_resp_t r;
    char *before = s_snapshot();
    /* To a key another account holds: 409 with that account. */
    char *payload = s_key_change_payload(b.key, a.key, a.kid, url);
    s_post(&a, url, payload, &r);
    s_expect_problem(&r, 409, "malformed", before, "key of another account");
    assert_string_equal(r.location, b.kid);
    s_resp_free(&r);
    free(payload);
    /* An inner JWS naming another account. */
    EVP_PKEY *new_key = s_key("P-256");
    payload = s_key_change_payload(new_key, a.key, b.kid, url);
    s_post(&a, url, payload, &r);
    s_expect_problem(&r, 400, "malformed", before, "inner account mismatch");
    s_resp_free(&r);
    free(payload);
    /* An inner JWS with the wrong old key. */
    payload = s_key_change_payload(new_key, b.key, a.kid, url);
    s_post(&a, url, payload, &r);
    s_expect_problem(&r, 400, "malformed", before, "oldKey mismatch");
    s_resp_free(&r);
    free(payload);
    /* The roll-over. */
    payload = s_key_change_payload(new_key, a.key, a.kid, url);
    s_post(&a, url, payload, &r);
    if (r.status != 200)
        fail_msg("key-change: %ld %s", r.status, r.body ? r.body : "");
    s_resp_free(&r);
    free(payload);
    free(before);
    before = s_snapshot();
    s_post(&a, a.kid, "", &r); /* the old key no longer signs for it */
    assert_true(r.status == 403 || r.status == 400);
    s_resp_free(&r);
    EVP_PKEY_free(a.key);
    a.key = new_key;
    json_decref(s_get(&a, a.kid));

    /* Deactivation: afterwards the account can do nothing. */
    s_post(&a, a.kid, "{\"status\": \"deactivated\"}", &r);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "deactivated");
    s_resp_free(&r);
    free(before);
    before = s_snapshot();
    s_url(url, sizeof url, "new-order");
    s_post(&a, url, "{\"identifiers\": [{\"type\": \"dns\", \"value\": \"x.example.test\"}]}", &r);
    s_expect_problem(&r, 403, "unauthorized", before, "deactivated account");
    s_resp_free(&r);
    s_url(url, sizeof url, "new-account");
    s_acct_t bare = {.key = a.key};
    s_post(&bare, url, "{\"termsOfServiceAgreed\": true}", &r);
    s_expect_problem(&r, 403, "unauthorized", before, "new-account with a deactivated key");
    s_resp_free(&r);
    free(before);
    s_acct_free(&a);
    s_acct_free(&b);
}

/* A finalize whose cert.issue is not answered in time leaves the order processing; reading
 * the order later completes it (the job sent again under the same id, its result read). */
static void test_finalize_resume(void **state)
{
    s_acct_t a;
    s_register(&a, "P-256");
    char loc[512], finalize[600], payload[4096];
    json_decref(s_order(&a, "[\"slow.example.test\"]", loc, sizeof loc));
    s_make_ready(loc);
    snprintf(finalize, sizeof finalize, "%s/finalize", loc);
    EVP_PKEY *leaf_key = s_key("P-256");
    char *csr = s_csr(leaf_key, "slow.example.test", "DNS:slow.example.test", false);
    snprintf(payload, sizeof payload, "{\"csr\": \"%s\"}", csr);
    pid_t signer = s_env->pids[1];
    assert_int_equal(kill(signer, SIGSTOP), 0);
    s_resp_t r;
    s_post(&a, finalize, payload, &r);
    assert_int_equal(kill(signer, SIGCONT), 0);
    assert_int_equal(r.status, 200);
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "processing");
    assert_true(atoi(r.retry_after) > 0);
    assert_null(json_object_get(r.json, "certificate"));
    s_resp_free(&r);
    json_t *done = s_poll_order(&a, loc);
    assert_string_equal(json_string_value(json_object_get(done, "status")), "valid");
    unsigned char *der = NULL;
    size_t der_len = 0;
    s_check_certificate(&a, json_string_value(json_object_get(done, "certificate")), &der, &der_len,
                        "slow.example.test");
    /* Exactly one certificate for the order, however often its job was sent. */
    assert_int_equal(cf_test_count(s_env->pg, "SELECT count(*) FROM certificates WHERE"
                                              " cn = 'slow.example.test'"),
                     1);
    free(der);
    free(csr);
    json_decref(done);
    EVP_PKEY_free(leaf_key);
    s_acct_free(&a);
}

/* ---- parked requests do not hold up the others ------------------------------------------ */

typedef struct {
    char url[600];     /* where to POST */
    char *jws;         /* the signed request (owned by the test) */
    long status;       /* the HTTP status it got */
    char body[4096];   /* the start of its body */
    volatile int done; /* set when the reply is in */
} s_bg_post_t;

static size_t s_bg_body(char *data, size_t size, size_t n, void *arg)
{
    s_bg_post_t *p = arg;
    size_t have = strlen(p->body), len = size * n;
    if (have + 1 < sizeof p->body) {
        size_t take = len < sizeof p->body - 1 - have ? len : sizeof p->body - 1 - have;
        memcpy(p->body + have, data, take);
        p->body[have + take] = '\0';
    }
    return len;
}

/* A POST of its own (own handle, own connection) in a thread of its own. */
static void *s_bg_post(void *arg)
{
    s_bg_post_t *p = arg;
    CURL *c = curl_easy_init();
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/jose+json");
    headers = curl_slist_append(headers, "Expect:");
    curl_easy_setopt(c, CURLOPT_URL, p->url);
    curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, p->jws);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, s_bg_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, p);
    curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 60000L);
    if (curl_easy_perform(c) == CURLE_OK)
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &p->status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(c);
    p->done = 1;
    return NULL;
}

/* certfleet-acme runs one HTTP thread here (threads = 1). A finalize waits for a stopped
 * signer for finalize_wait_ms; meanwhile the same thread must go on answering every other
 * request, because the finalize is parked, not waited for in the thread. */
static void test_parked_finalize_blocks_nothing(void **state)
{
    s_acct_t a;
    s_register(&a, "P-256");
    char loc[512];
    json_decref(s_order(&a, "[\"parked.example.test\"]", loc, sizeof loc));
    s_make_ready(loc);
    EVP_PKEY *leaf_key = s_key("P-256");
    char *csr = s_csr(leaf_key, "parked.example.test", "DNS:parked.example.test", false);
    char payload[4096];
    snprintf(payload, sizeof payload, "{\"csr\": \"%s\"}", csr);
    s_bg_post_t bg = {0};
    snprintf(bg.url, sizeof bg.url, "%s/finalize", loc);
    bg.jws = s_sign(a.key, a.kid, bg.url, payload);
    pid_t signer = s_env->pids[1];
    assert_int_equal(kill(signer, SIGSTOP), 0);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_bg_post, &bg), 0);
    /* The finalize has started (the order is processing) and waits for the signer. */
    const char *slug = strrchr(loc, '/') + 1;
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM acme_orders WHERE slug = '%s' AND status = "
             "'processing'",
             slug);
    for (int k = 0; k < 200 && cf_test_count(s_env->pg, sql) == 0; k++)
        usleep(50 * 1000);
    assert_int_equal(cf_test_count(s_env->pg, sql), 1);
    /* Other requests are answered while it waits: the directory, a nonce, the order. */
    char directory[256];
    s_url(directory, sizeof directory, "directory");
    for (int k = 0; k < 3; k++) {
        s_resp_t r;
        s_http("GET", directory, NULL, NULL, 0, &r);
        assert_int_equal(r.status, 200);
        s_resp_free(&r);
        char *nonce = s_nonce();
        free(nonce);
    }
    json_t *order = s_get(&a, loc);
    assert_string_equal(json_string_value(json_object_get(order, "status")), "processing");
    json_decref(order);
    /* The metrics show it parked (the gauge follows the parking thread's loop). */
    double parked = 0;
    for (int k = 0; k < 100 && parked < 1; k++) {
        char *text = cf_test_scrape(s_env->metrics_port);
        parked = cf_test_metric_value(text, "certfleet_acme_parked_requests");
        free(text);
        if (parked < 1)
            usleep(20 * 1000);
    }
    assert_true(parked >= 1);
    assert_int_equal(bg.done, 0); /* all of the above came while the finalize still waited */
    assert_int_equal(kill(signer, SIGCONT), 0);
    pthread_join(thread, NULL);
    assert_int_equal(bg.status, 200);
    assert_non_null(strstr(bg.body, "\"status\""));
    json_t *done = s_poll_order(&a, loc);
    assert_string_equal(json_string_value(json_object_get(done, "status")), "valid");
    json_decref(done);
    char *text = cf_test_scrape(s_env->metrics_port);
    assert_true(
        cf_test_metric_value(text, "certfleet_acme_park_resumed_total{why=\"reply\"}") +
            cf_test_metric_value(text, "certfleet_acme_park_resumed_total{why=\"wait_over\"}") >=
        1);
    free(text);
    free(bg.jws);
    free(csr);
    EVP_PKEY_free(leaf_key);
    s_acct_free(&a);
}

/* ---- http-01 --------------------------------------------------------------------------- */

typedef struct {
    int fd;            /* listening socket */
    char path[256];    /* /.well-known/acme-challenge/<token> */
    char body[256];    /* the key authorization */
    volatile int stop; /* set by the test */
    volatile int hits; /* requests answered with the body */
} s_http01_t;

static void *s_http01_serve(void *arg)
{
    s_http01_t *h = arg;
    while (!h->stop) {
        int c = accept(h->fd, NULL, NULL);
        if (c < 0)
            continue;
        struct timeval tv = {.tv_sec = 5};
        setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        char req[4096];
        size_t n = 0;
        while (n < sizeof req - 1 && !memmem(req, n, "\r\n\r\n", 4)) {
            ssize_t got = recv(c, req + n, sizeof req - 1 - n, 0);
            if (got <= 0)
                break;
            n += (size_t)got;
        }
        req[n] = '\0';
        char want[300], out[1024];
        snprintf(want, sizeof want, "GET %s ", h->path);
        bool ok = strncmp(req, want, strlen(want)) == 0;
        if (ok)
            h->hits++;
        int len =
            snprintf(out, sizeof out,
                     "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                     "Connection: close\r\n\r\n%s",
                     ok ? "200 OK" : "404 Not Found", ok ? strlen(h->body) : 0, ok ? h->body : "");
        if (send(c, out, (size_t)len, MSG_NOSIGNAL) < 0)
            fprintf(stderr, "http-01 server: send failed\n");
        close(c);
    }
    return NULL;
}

static void test_http01_flow(void **state)
{
    if (!s_env->validator) {
        fprintf(stderr, "certfleet-validator does not serve acme.validate yet: http-01 flow "
                        "skipped\n");
        skip();
    }
    s_acct_t a;
    s_register(&a, "P-256");
    char loc[512];
    json_t *order = s_order(&a, "[\"flow.example.test\"]", loc, sizeof loc);
    const char *authz_url =
        json_string_value(json_array_get(json_object_get(order, "authorizations"), 0));
    json_t *authz = s_get(&a, authz_url);
    json_t *http01 = NULL;
    size_t i;
    json_t *ch;
    json_array_foreach(json_object_get(authz, "challenges"), i, ch)
    {
        if (strcmp(json_string_value(json_object_get(ch, "type")), "http-01") == 0)
            http01 = ch;
    }
    assert_non_null(http01);
    const char *token = json_string_value(json_object_get(http01, "token"));
    cf_error_t err = {0};
    json_t *jwk = cf_key_public_jwk(a.key, &err);
    s_http01_t h = {.fd = socket(AF_INET, SOCK_STREAM, 0)};
    snprintf(h.path, sizeof h.path, "/.well-known/acme-challenge/%s", token);
    assert_int_equal(cf_acme_key_authorization(token, jwk, h.body, sizeof h.body), 0);
    json_decref(jwk);
    int one = 1;
    setsockopt(h.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)s_env->http_port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(h.fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(h.fd, 16), 0);
    struct timeval tv = {.tv_usec = 200000};
    setsockopt(h.fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, s_http01_serve, &h), 0);

    s_resp_t r;
    const char *chall_url = json_string_value(json_object_get(http01, "url"));
    s_post(&a, chall_url, "{}", &r);
    assert_int_equal(r.status, 200);
    /* The POST waited for the verdict (challenge_wait_ms): it answers valid at once. */
    assert_string_equal(json_string_value(json_object_get(r.json, "status")), "valid");
    assert_non_null(json_object_get(r.json, "validated"));
    s_resp_free(&r);
    /* The validator decides; the authorization and then the order follow. */
    json_t *az = NULL;
    for (int k = 0; k < 300; k++) {
        json_decref(az);
        az = s_get(&a, authz_url);
        if (strcmp(json_string_value(json_object_get(az, "status")), "pending") != 0)
            break;
        usleep(100 * 1000);
    }
    h.stop = 1;
    pthread_join(thread, NULL);
    close(h.fd);
    if (strcmp(json_string_value(json_object_get(az, "status")), "valid") != 0) {
        char *text = json_dumps(az, JSON_INDENT(2));
        fail_msg("authorization not valid: %s", text);
    }
    assert_true(h.hits > 0);
    json_decref(az);
    json_t *ready = s_get(&a, loc);
    assert_string_equal(json_string_value(json_object_get(ready, "status")), "ready");
    json_decref(ready);
    EVP_PKEY *leaf_key = s_key("P-256");
    char *csr = s_csr(leaf_key, NULL, "DNS:flow.example.test", false);
    char payload[4096], finalize[600];
    snprintf(payload, sizeof payload, "{\"csr\": \"%s\"}", csr);
    snprintf(finalize, sizeof finalize, "%s/finalize", loc);
    s_post(&a, finalize, payload, &r);
    assert_int_equal(r.status, 200);
    s_resp_free(&r);
    json_t *done = s_poll_order(&a, loc);
    assert_string_equal(json_string_value(json_object_get(done, "status")), "valid");
    unsigned char *der = NULL;
    size_t der_len = 0;
    s_check_certificate(&a, json_string_value(json_object_get(done, "certificate")), &der, &der_len,
                        "flow.example.test");
    free(der);
    free(csr);
    EVP_PKEY_free(leaf_key);
    json_decref(done);
    json_decref(authz);
    json_decref(order);
    s_acct_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_directory_and_nonce),
        cmocka_unit_test(test_accounts),
        cmocka_unit_test(test_bad_requests),
        cmocka_unit_test(test_orders),
        cmocka_unit_test(test_finalize_and_revoke),
        cmocka_unit_test(test_registration_off),
        cmocka_unit_test(test_key_change_and_deactivate),
        cmocka_unit_test(test_finalize_resume),
        cmocka_unit_test(test_parked_finalize_blocks_nothing),
        cmocka_unit_test(test_http01_flow),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
