/* certfleet-bench-acme: a concurrent ACME (RFC 8555) client for the issuance benchmark.
 * N threads, one account each (P-256 key), each places M orders of K DNS names, answers the
 * http-01 challenges from a small HTTP server of its own, finalizes with a fresh P-256 CSR and
 * downloads the certificate. Works against certfleet-acme and against pebble, so that both
 * are measured with the same client. Prints one table row: server label, accounts, orders
 * done, failed, seconds, orders/s, p50 and p99 milliseconds per order (newOrder to
 * certificate downloaded; account creation is done before the clock starts).
 *
 *   certfleet-bench-acme --directory URL [--accounts N] [--orders M] [--names K]
 *       [--http-port P] [--insecure] [--poll-cap-ms 200] [--label NAME] [--header]
 *       [--verbose]
 *
 * Polling (authorization/order state) sleeps what Retry-After says, or 5 ms doubling when
 * the server says nothing, never more than --poll-cap-ms.
 * The responder serves GET /.well-known/acme-challenge/<token> on 127.0.0.1:P for every token
 * the client has been given, so a challenge is already answerable when the client POSTs to
 * it. Every response's Replay-Nonce is kept for the next request; a badNonce error is retried
 * once with the fresh nonce it carries. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cf_base64url.h"
#include "cf_jws.h"
#include "cf_key.h"

#define S_TOKEN_BUCKETS    4096
#define S_POLL_CAP_MS      200   /* default longest sleep between two polls (--poll-cap-ms) */
#define S_POLL_FIRST_MS    5     /* first sleep when the server gives no Retry-After */
#define S_ORDER_TIMEOUT_S  120.0 /* an order not valid by then counts as failed */
#define S_MAX_ERRORS_SHOWN 5     /* failures described on stderr (the rest are only counted) */
#define S_NONCE_MAX        256
#define S_URL_MAX          1024

/* ------------------------------------------------------------------ options and results */

typedef struct {
    const char *directory; /* directory URL */
    int accounts;          /* threads, one account each */
    int orders;            /* orders per account */
    int names;             /* DNS names per order */
    int http_port;         /* responder port, 0: none */
    int poll_cap_ms;       /* longest sleep between two polls, whatever Retry-After says */
    bool insecure;         /* skip TLS verification (pebble's self-signed listener) */
    bool verbose;          /* every request on stderr */
    char new_nonce[S_URL_MAX];
    char new_account[S_URL_MAX];
    char new_order[S_URL_MAX];
} s_config_t;

/* ------------------------------------------------------------------ challenge responder */

typedef struct s_token_s {
    struct s_token_s *next; /* same bucket */
    char *token;            /* the challenge token (owned) */
    char *answer;           /* its key authorization (owned) */
} s_token_t;

typedef struct {
    pthread_mutex_t lock;                /* guards buckets */
    s_token_t *buckets[S_TOKEN_BUCKETS]; /* token -> key authorization */
    int fd;                              /* listening socket */
    pthread_t thread;                    /* the accept loop */
    unsigned long served;                /* 200 answers (under lock) */
} s_responder_t;

static unsigned s_hash(const char *s)
{
    unsigned h = 2166136261u; /* FNV-1a */
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h % S_TOKEN_BUCKETS;
}

static int s_responder_add(s_responder_t *r, const char *token, const char *answer)
{
    s_token_t *t = calloc(1, sizeof *t);
    if (!t || !(t->token = strdup(token)) || !(t->answer = strdup(answer))) {
        if (t) {
            free(t->token);
            free(t);
        }
        return -1;
    }
    pthread_mutex_lock(&r->lock);
    unsigned h = s_hash(token);
    t->next = r->buckets[h];
    r->buckets[h] = t;
    pthread_mutex_unlock(&r->lock);
    return 0;
}

static void s_responder_remove(s_responder_t *r, const char *token)
{
    pthread_mutex_lock(&r->lock);
    for (s_token_t **p = &r->buckets[s_hash(token)]; *p; p = &(*p)->next) {
        if (strcmp((*p)->token, token) == 0) {
            s_token_t *t = *p;
            *p = t->next;
            free(t->token);
            free(t->answer);
            free(t);
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
}

/* The key authorization for TOKEN (LEN bytes) into OUT, or false. */
static bool s_responder_find(s_responder_t *r, const char *token, char *out, size_t outlen)
{
    bool found = false;
    pthread_mutex_lock(&r->lock);
    for (s_token_t *t = r->buckets[s_hash(token)]; t; t = t->next) {
        if (strcmp(t->token, token) == 0) {
            snprintf(out, outlen, "%s", t->answer);
            found = true;
            r->served++;
            break;
        }
    }
    pthread_mutex_unlock(&r->lock);
    return found;
}

/* One request on FD: read the head, answer, close. Requests are tiny and answered from
 * memory, so connections are served one after another; a read timeout keeps a silent peer
 * from stalling the others. */
static void s_serve_one(s_responder_t *r, int fd)
{
    static const char prefix[] = "/.well-known/acme-challenge/";
    char req[4096];
    size_t used = 0;
    struct timeval tv = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    while (used < sizeof req - 1) {
        ssize_t n = recv(fd, req + used, sizeof req - 1 - used, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            break;
        used += (size_t)n;
        req[used] = '\0';
        if (strstr(req, "\r\n\r\n"))
            break;
    }
    req[used] = '\0';
    char answer[512];
    const char *status = "404 Not Found";
    const char *body = "not found\n";
    char *sp = strchr(req, ' ');
    if (strncmp(req, "GET ", 4) == 0 && sp && strncmp(sp + 1, prefix, sizeof prefix - 1) == 0) {
        char *token = sp + 1 + sizeof prefix - 1;
        token[strcspn(token, " ?\r\n")] = '\0';
        if (s_responder_find(r, token, answer, sizeof answer)) {
            status = "200 OK";
            body = answer;
        }
    }
    char head[256];
    int hl = snprintf(head, sizeof head,
                      "HTTP/1.1 %s\r\nContent-Type: text/plain\r\nContent-Length: %zu\r\n"
                      "Connection: close\r\n\r\n",
                      status, strlen(body));
    if (send(fd, head, (size_t)hl, MSG_NOSIGNAL) == hl)
        send(fd, body, strlen(body), MSG_NOSIGNAL);
    close(fd);
}

static void *s_responder_run(void *arg)
{
    s_responder_t *r = arg;
    for (;;) {
        int fd = accept(r->fd, NULL, NULL);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            break; /* shut down */
        }
        s_serve_one(r, fd);
    }
    return NULL;
}

static int s_responder_start(s_responder_t *r, int port)
{
    memset(r, 0, sizeof *r);
    pthread_mutex_init(&r->lock, NULL);
    r->fd = socket(AF_INET, SOCK_STREAM, 0);
    if (r->fd < 0)
        return -1;
    int one = 1;
    setsockopt(r->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, "127.0.0.1", &sa.sin_addr);
    if (bind(r->fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(r->fd, 256) != 0 ||
        pthread_create(&r->thread, NULL, s_responder_run, r) != 0) {
        perror("certfleet-bench-acme: http-01 responder");
        close(r->fd);
        return -1;
    }
    return 0;
}

static void s_responder_stop(s_responder_t *r)
{
    /* shutdown() wakes the thread blocked in accept(). */
    shutdown(r->fd, SHUT_RDWR);
    pthread_join(r->thread, NULL);
    close(r->fd);
    for (int i = 0; i < S_TOKEN_BUCKETS; i++) {
        while (r->buckets[i]) {
            s_token_t *t = r->buckets[i];
            r->buckets[i] = t->next;
            free(t->token);
            free(t->answer);
            free(t);
        }
    }
    pthread_mutex_destroy(&r->lock);
}

/* ------------------------------------------------------------------ HTTP */

typedef struct {
    long status;                 /* HTTP status, 0 when the transfer failed */
    char *body;                  /* NUL-terminated (owned) */
    size_t len;                  /* body bytes */
    char location[S_URL_MAX];    /* Location header, "" when absent */
    char nonce[S_NONCE_MAX];     /* Replay-Nonce header, "" when absent */
    int retry_after_ms;          /* Retry-After in ms, -1 when absent */
    char error[CURL_ERROR_SIZE]; /* curl's message when status is 0 */
} s_response_t;

static size_t s_on_body(char *data, size_t size, size_t n, void *arg)
{
    s_response_t *resp = arg;
    size_t add = size * n;
    char *grown = realloc(resp->body, resp->len + add + 1);
    if (!grown)
        return 0;
    memcpy(grown + resp->len, data, add);
    resp->len += add;
    grown[resp->len] = '\0';
    resp->body = grown;
    return add;
}

/* Copy header NAME's value from LINE (LEN bytes) into OUT when LINE is that header. */
static bool s_header_value(const char *line, size_t len, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return false;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t vl = (size_t)(end - v);
    if (vl >= outlen)
        vl = outlen - 1;
    memcpy(out, v, vl);
    out[vl] = '\0';
    return true;
}

static size_t s_on_header(char *line, size_t size, size_t n, void *arg)
{
    s_response_t *resp = arg;
    size_t len = size * n;
    char retry[32];
    /* A redirect or a 100 Continue starts a new header block: forget the old one. */
    if (len > 5 && strncmp(line, "HTTP/", 5) == 0) {
        resp->location[0] = '\0';
        resp->retry_after_ms = -1;
    }
    s_header_value(line, len, "Location", resp->location, sizeof resp->location);
    s_header_value(line, len, "Replay-Nonce", resp->nonce, sizeof resp->nonce);
    if (s_header_value(line, len, "Retry-After", retry, sizeof retry)) {
        char *end;
        long secs = strtol(retry, &end, 10);
        /* Only the delay-seconds form: an HTTP date would need the server's clock. */
        if (end != retry && *end == '\0' && secs >= 0)
            resp->retry_after_ms = secs > 3600 ? 3600000 : (int)secs * 1000;
    }
    return len;
}

static void s_response_reset(s_response_t *resp)
{
    free(resp->body);
    memset(resp, 0, sizeof *resp);
    resp->retry_after_ms = -1;
}

/* ------------------------------------------------------------------ one ACME client */

typedef struct {
    const s_config_t *cfg;
    s_responder_t *responder;
    int index;                       /* thread number, in the DNS names */
    pthread_barrier_t *ready;        /* all accounts made: the clock starts */
    CURL *curl;                      /* one easy handle: keep-alive to the server */
    struct curl_slist *jose_headers; /* Content-Type: application/jose+json */
    EVP_PKEY *key;                   /* account key (P-256) */
    json_t *jwk;                     /* its public JWK */
    char kid[S_URL_MAX];             /* account URL, "" before newAccount */
    char nonce[S_NONCE_MAX];         /* next nonce to use, "" when none is left */
    int done;                        /* orders with a certificate */
    int failed;                      /* orders that failed */
    double *latency_ms;              /* per finished order */
    int shown_errors;                /* failures described on stderr */
    unsigned long requests;          /* HTTP requests made */
    unsigned long bad_nonces;        /* badNonce answers (retried) */
} s_client_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void s_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* Describe a failure on stderr (the first few only; a benchmark must not drown in them). */
static void s_fail(s_client_t *c, const char *what, const s_response_t *resp)
{
    if (c->shown_errors >= S_MAX_ERRORS_SHOWN)
        return;
    c->shown_errors++;
    if (resp && resp->status)
        fprintf(stderr, "certfleet-bench-acme: account %d: %s: HTTP %ld %.400s\n", c->index, what,
                resp->status, resp->body ? resp->body : "");
    else if (resp)
        fprintf(stderr, "certfleet-bench-acme: account %d: %s: %s\n", c->index, what, resp->error);
    else
        fprintf(stderr, "certfleet-bench-acme: account %d: %s\n", c->index, what);
}

/* Describe an ACME object that ended in the wrong state (status and error, if any). */
static void s_fail_object(s_client_t *c, const char *what, const json_t *obj)
{
    if (c->shown_errors >= S_MAX_ERRORS_SHOWN || !obj)
        return;
    c->shown_errors++;
    char *text = json_dumps(obj, JSON_COMPACT);
    fprintf(stderr, "certfleet-bench-acme: account %d: %s: %.600s\n", c->index, what,
            text ? text : "?");
    free(text);
}

/* One HTTP request: METHOD "GET", "HEAD" or "POST" (with BODY, a JWS). 0 when a response
 * came (any status), -1 when the transfer failed. */
static int s_request(s_client_t *c, const char *method, const char *url, const char *body,
                     s_response_t *resp)
{
    CURL *h = c->curl;
    s_response_reset(resp);
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, resp->error);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, resp);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, resp);
    curl_easy_setopt(h, CURLOPT_NOBODY, strcmp(method, "HEAD") == 0 ? 1L : 0L);
    if (strcmp(method, "POST") == 0) {
        curl_easy_setopt(h, CURLOPT_POST, 1L);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->jose_headers);
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
        if (strcmp(method, "HEAD") == 0)
            curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    }
    c->requests++;
    CURLcode rc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
    if (c->cfg->verbose)
        fprintf(stderr, "%.3f [%d] %s %s -> %ld\n", s_now(), c->index, method, url, resp->status);
    if (rc != CURLE_OK) {
        if (!resp->error[0])
            snprintf(resp->error, sizeof resp->error, "%s", curl_easy_strerror(rc));
        return -1;
    }
    if (!resp->body) {
        resp->body = calloc(1, 1);
        if (!resp->body)
            return -1;
    }
    /* RFC 8555 6.5: every response may carry the next nonce. */
    if (resp->nonce[0])
        snprintf(c->nonce, sizeof c->nonce, "%s", resp->nonce);
    return 0;
}

/* True when RESP is an ACME problem of TYPE (without the urn prefix). */
static bool s_is_problem(const s_response_t *resp, const char *type)
{
    if (resp->status < 400 || !resp->body)
        return false;
    json_t *doc = json_loads(resp->body, 0, NULL);
    const char *t = json_string_value(json_object_get(doc, "type"));
    static const char urn[] = "urn:ietf:params:acme:error:";
    bool match = t && strncmp(t, urn, sizeof urn - 1) == 0 && strcmp(t + sizeof urn - 1, type) == 0;
    json_decref(doc);
    return match;
}

/* A signed POST of PAYLOAD ("" for POST-as-GET) to URL, with the account's kid (or its jwk
 * before it has one). Retries once on badNonce. 0 when a response came. */
static int s_post(s_client_t *c, const char *url, const char *payload, s_response_t *resp)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!c->nonce[0]) {
            if (s_request(c, "HEAD", c->cfg->new_nonce, NULL, resp) != 0 || !c->nonce[0]) {
                if (resp->status)
                    snprintf(resp->error, sizeof resp->error, "newNonce gave no Replay-Nonce");
                return -1;
            }
        }
        cf_error_t err = {0};
        char *jws = cf_jws_sign(c->key, c->kid[0] ? c->kid : NULL, c->nonce, url, payload, &err);
        c->nonce[0] = '\0'; /* a nonce is good for one request only */
        if (!jws) {
            s_response_reset(resp);
            snprintf(resp->error, sizeof resp->error, "could not sign: %s", err.message);
            return -1;
        }
        int rc = s_request(c, "POST", url, jws, resp);
        free(jws);
        if (rc != 0)
            return -1;
        if (attempt == 0 && s_is_problem(resp, "badNonce")) {
            c->bad_nonces++;
            continue;
        }
        return 0;
    }
    return 0;
}

/* The body of RESP as a JSON object (new reference) or NULL. */
static json_t *s_json(const s_response_t *resp)
{
    json_t *doc = resp->body ? json_loads(resp->body, 0, NULL) : NULL;
    if (doc && !json_is_object(doc)) {
        json_decref(doc);
        return NULL;
    }
    return doc;
}

static int s_new_account(s_client_t *c)
{
    s_response_t resp = {0};
    int rc = -1;
    char payload[128];
    /* A contact: certfleet (like django-ca) may require one. */
    snprintf(payload, sizeof payload,
             "{\"termsOfServiceAgreed\":true,\"contact\":[\"mailto:bench%d@bench.test\"]}",
             c->index);
    if (s_post(c, c->cfg->new_account, payload, &resp) != 0 ||
        (resp.status != 201 && resp.status != 200) || !resp.location[0]) {
        s_fail(c, "newAccount", &resp);
        goto out;
    }
    snprintf(c->kid, sizeof c->kid, "%s", resp.location);
    rc = 0;
out:
    s_response_reset(&resp);
    return rc;
}

/* POST-as-GET URL until its "status" leaves the WAITING states; the final object (new
 * reference) or NULL. Sleeps honour Retry-After, capped at --poll-cap-ms. */
static json_t *s_poll(s_client_t *c, const char *url, const char *const *waiting, double deadline,
                      const char *what)
{
    s_response_t resp = {0};
    int sleep_ms = S_POLL_FIRST_MS;
    json_t *doc = NULL;
    for (;;) {
        if (s_post(c, url, "", &resp) != 0 || resp.status != 200 || !(doc = s_json(&resp))) {
            s_fail(c, what, &resp);
            break;
        }
        const char *status = json_string_value(json_object_get(doc, "status"));
        bool wait = false;
        for (int i = 0; status && waiting[i]; i++)
            wait = wait || strcmp(status, waiting[i]) == 0;
        if (!wait)
            break;
        json_decref(doc);
        doc = NULL;
        if (s_now() > deadline) {
            s_fail(c, "timed out waiting", NULL);
            break;
        }
        int ms = resp.retry_after_ms >= 0 ? resp.retry_after_ms : sleep_ms;
        int cap = c->cfg->poll_cap_ms;
        s_sleep_ms(ms < cap ? ms : cap);
        sleep_ms = sleep_ms * 2 < cap ? sleep_ms * 2 : cap;
    }
    s_response_reset(&resp);
    return doc;
}

/* A DER CSR for NAMES (SANs; CN the first one) with a fresh P-256 key, base64url (caller
 * owns) or NULL. */
static char *s_csr(char names[][128], int count)
{
    char *out = NULL;
    unsigned char *der = NULL;
    X509_REQ *req = X509_REQ_new();
    X509_NAME *subject = X509_NAME_new();
    STACK_OF(X509_EXTENSION) *exts = sk_X509_EXTENSION_new_null();
    X509_EXTENSION *san = NULL;
    cf_key_params_t params;
    cf_error_t err = {0};
    EVP_PKEY *key = NULL;
    size_t sans_len = (size_t)count * 134 + 1;
    char *sans = malloc(sans_len);
    if (!req || !subject || !exts || !sans ||
        cf_key_params_init(&params, NULL, "EC", 0, "secp256r1", &err) != 0 ||
        !(key = cf_key_generate(&params, &err)))
        goto out;
    size_t o = 0;
    for (int i = 0; i < count; i++)
        o += (size_t)snprintf(sans + o, sans_len - o, "%sDNS:%s", i ? "," : "", names[i]);
    if (X509_REQ_set_version(req, X509_REQ_VERSION_1) != 1 ||
        X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_ASC, (const unsigned char *)names[0], -1,
                                   -1, 0) != 1 ||
        X509_REQ_set_subject_name(req, subject) != 1 || X509_REQ_set_pubkey(req, key) != 1 ||
        !(san = X509V3_EXT_conf_nid(NULL, NULL, NID_subject_alt_name, sans)) ||
        !sk_X509_EXTENSION_push(exts, san))
        goto out;
    san = NULL; /* EXTS owns it */
    if (X509_REQ_add_extensions(req, exts) != 1 || X509_REQ_sign(req, key, EVP_sha256()) <= 0)
        goto out;
    int len = i2d_X509_REQ(req, &der);
    if (len > 0)
        out = cf_base64url_encode(der, (size_t)len);
out:
    ERR_clear_error();
    OPENSSL_free(der);
    X509_EXTENSION_free(san);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
    X509_NAME_free(subject);
    X509_REQ_free(req);
    EVP_PKEY_free(key);
    free(sans);
    return out;
}

/* Answer every authorization of ORDER over http-01; the tokens registered go into TOKENS. */
static int s_authorize(s_client_t *c, const json_t *order, json_t *tokens)
{
    s_response_t resp = {0};
    json_t *authz = NULL;
    int rc = -1;
    size_t i;
    json_t *url;
    json_array_foreach(json_object_get(order, "authorizations"), i, url)
    {
        if (!json_is_string(url))
            goto out;
        if (s_post(c, json_string_value(url), "", &resp) != 0 || resp.status != 200 ||
            !(authz = s_json(&resp))) {
            s_fail(c, "fetch authorization", &resp);
            goto out;
        }
        const char *status = json_string_value(json_object_get(authz, "status"));
        if (status && strcmp(status, "valid") == 0) { /* reused by the server */
            json_decref(authz);
            authz = NULL;
            continue;
        }
        const json_t *chall = NULL;
        size_t j;
        json_t *ch;
        json_array_foreach(json_object_get(authz, "challenges"), j, ch)
        {
            const char *type = json_string_value(json_object_get(ch, "type"));
            if (type && strcmp(type, "http-01") == 0)
                chall = ch;
        }
        const char *token = json_string_value(json_object_get(chall, "token"));
        const char *chall_url = json_string_value(json_object_get(chall, "url"));
        char answer[512];
        if (!token || !chall_url ||
            cf_acme_key_authorization(token, c->jwk, answer, sizeof answer) != 0) {
            s_fail(c, "authorization has no usable http-01 challenge", &resp);
            goto out;
        }
        /* Pre-answered: the responder knows the token before the server is told to look. */
        if (c->responder && (s_responder_add(c->responder, token, answer) != 0 ||
                             json_array_append_new(tokens, json_string(token)) != 0))
            goto out;
        if (s_post(c, chall_url, "{}", &resp) != 0 || resp.status != 200) {
            s_fail(c, "respond to challenge", &resp);
            goto out;
        }
        json_decref(authz);
        authz = NULL;
    }
    rc = 0;
out:
    json_decref(authz);
    s_response_reset(&resp);
    return rc;
}

/* One order, newOrder to certificate. 0 or -1. */
static int s_order(s_client_t *c, int number)
{
    static const char *const pending[] = {"pending", NULL};
    static const char *const processing[] = {"processing", "ready", NULL};
    double deadline = s_now() + S_ORDER_TIMEOUT_S;
    s_response_t resp = {0};
    json_t *order = NULL;
    json_t *ids = json_array();
    json_t *tokens = json_array();
    char *payload = NULL;
    char *csr = NULL;
    int rc = -1;
    char order_url[S_URL_MAX];
    char(*names)[128] = calloc((size_t)c->cfg->names, sizeof *names);
    if (!ids || !tokens || !names)
        goto out;
    for (int k = 0; k < c->cfg->names; k++) {
        if (k == 0)
            snprintf(names[k], sizeof names[k], "o%d-%d.bench.test", c->index, number);
        else
            snprintf(names[k], sizeof names[k], "o%d-%d-%d.bench.test", c->index, number, k);
        json_array_append_new(ids, json_pack("{s:s, s:s}", "type", "dns", "value", names[k]));
    }
    json_t *req = json_pack("{s:O}", "identifiers", ids);
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!payload || s_post(c, c->cfg->new_order, payload, &resp) != 0 || resp.status != 201 ||
        !resp.location[0] || !(order = s_json(&resp))) {
        s_fail(c, "newOrder", &resp);
        goto out;
    }
    snprintf(order_url, sizeof order_url, "%s", resp.location);
    if (s_authorize(c, order, tokens) != 0)
        goto out;
    json_decref(order);
    order = s_poll(c, order_url, pending, deadline, "poll order for ready");
    const char *status = json_string_value(json_object_get(order, "status"));
    if (!status || strcmp(status, "ready") != 0) {
        s_fail_object(c, "order did not become ready", order);
        goto out;
    }
    const char *finalize = json_string_value(json_object_get(order, "finalize"));
    csr = s_csr(names, c->cfg->names);
    free(payload);
    req = csr ? json_pack("{s:s}", "csr", csr) : NULL;
    payload = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!finalize || !payload || s_post(c, finalize, payload, &resp) != 0 || resp.status != 200) {
        s_fail(c, "finalize", &resp);
        goto out;
    }
    json_decref(order);
    order = s_json(&resp);
    status = json_string_value(json_object_get(order, "status"));
    if (!status || strcmp(status, "valid") != 0) {
        json_decref(order);
        order = s_poll(c, order_url, processing, deadline, "poll order for valid");
        status = json_string_value(json_object_get(order, "status"));
    }
    const char *cert = json_string_value(json_object_get(order, "certificate"));
    if (!status || strcmp(status, "valid") != 0 || !cert) {
        s_fail_object(c, "order did not become valid", order);
        goto out;
    }
    if (s_post(c, cert, "", &resp) != 0 || resp.status != 200 ||
        !strstr(resp.body, "-----BEGIN CERTIFICATE-----")) {
        s_fail(c, "download certificate", &resp);
        goto out;
    }
    rc = 0;
out:
    if (c->responder) {
        size_t i;
        json_t *t;
        json_array_foreach(tokens, i, t) s_responder_remove(c->responder, json_string_value(t));
    }
    free(names);
    free(csr);
    free(payload);
    json_decref(order);
    json_decref(ids);
    json_decref(tokens);
    s_response_reset(&resp);
    return rc;
}

static void *s_client_run(void *arg)
{
    s_client_t *c = arg;
    bool ok = c->curl && c->key && c->jwk && s_new_account(c) == 0;
    /* Everybody waits for the slowest account, so that orders/s counts orders only. */
    pthread_barrier_wait(c->ready);
    for (int j = 0; ok && j < c->cfg->orders; j++) {
        double t0 = s_now();
        if (s_order(c, j) == 0)
            c->latency_ms[c->done++] = (s_now() - t0) * 1000.0;
        else
            c->failed++;
    }
    if (!ok)
        c->failed = c->cfg->orders;
    return NULL;
}

static int s_client_init(s_client_t *c, const s_config_t *cfg, s_responder_t *responder, int index,
                         pthread_barrier_t *ready)
{
    cf_key_params_t params;
    cf_error_t err = {0};
    memset(c, 0, sizeof *c);
    c->cfg = cfg;
    c->responder = responder;
    c->index = index;
    c->ready = ready;
    c->latency_ms = calloc((size_t)cfg->orders + 1, sizeof *c->latency_ms);
    c->curl = curl_easy_init();
    c->jose_headers = curl_slist_append(NULL, "Content-Type: application/jose+json");
    if (cf_key_params_init(&params, NULL, "EC", 0, "secp256r1", &err) == 0)
        c->key = cf_key_generate(&params, &err);
    c->jwk = c->key ? cf_key_public_jwk(c->key, &err) : NULL;
    if (!c->latency_ms || !c->curl || !c->jose_headers || !c->key || !c->jwk)
        return -1;
    curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(c->curl, CURLOPT_USERAGENT, "certfleet-bench-acme");
    curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c->curl, CURLOPT_HEADERFUNCTION, s_on_header);
    if (cfg->insecure) {
        curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c->curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    return 0;
}

static void s_client_fini(s_client_t *c)
{
    curl_slist_free_all(c->jose_headers);
    if (c->curl)
        curl_easy_cleanup(c->curl);
    json_decref(c->jwk);
    EVP_PKEY_free(c->key);
    free(c->latency_ms);
}

/* Read the directory into CFG. 0 or -1. */
static int s_directory(s_config_t *cfg)
{
    s_client_t c = {.cfg = cfg, .index = -1};
    s_response_t resp = {0};
    int rc = -1;
    json_t *dir = NULL;
    c.curl = curl_easy_init();
    if (!c.curl)
        return -1;
    curl_easy_setopt(c.curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(c.curl, CURLOPT_TIMEOUT, 30L);
    curl_easy_setopt(c.curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt(c.curl, CURLOPT_HEADERFUNCTION, s_on_header);
    if (cfg->insecure) {
        curl_easy_setopt(c.curl, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(c.curl, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    if (s_request(&c, "GET", cfg->directory, NULL, &resp) != 0 || resp.status != 200 ||
        !(dir = s_json(&resp))) {
        fprintf(stderr, "certfleet-bench-acme: could not read directory \"%s\": %s%.200s\n",
                cfg->directory, resp.error, resp.body ? resp.body : "");
        goto out;
    }
    const char *nn = json_string_value(json_object_get(dir, "newNonce"));
    const char *na = json_string_value(json_object_get(dir, "newAccount"));
    const char *no = json_string_value(json_object_get(dir, "newOrder"));
    if (!nn || !na || !no) {
        fprintf(stderr, "certfleet-bench-acme: directory lacks newNonce, newAccount or newOrder\n");
        goto out;
    }
    snprintf(cfg->new_nonce, sizeof cfg->new_nonce, "%s", nn);
    snprintf(cfg->new_account, sizeof cfg->new_account, "%s", na);
    snprintf(cfg->new_order, sizeof cfg->new_order, "%s", no);
    rc = 0;
out:
    json_decref(dir);
    s_response_reset(&resp);
    curl_easy_cleanup(c.curl);
    return rc;
}

static int s_cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a;
    double y = *(const double *)b;
    return (x > y) - (x < y);
}

static void s_usage(void)
{
    fprintf(stderr, "usage: certfleet-bench-acme --directory URL [--accounts N] [--orders M] "
                    "[--names K] [--http-port P] [--insecure] [--poll-cap-ms MS] [--label NAME] "
                    "[--header] [--verbose]\n");
}

int main(int argc, char **argv)
{
    s_config_t cfg = {.accounts = 4, .orders = 10, .names = 1, .poll_cap_ms = S_POLL_CAP_MS};
    const char *label = "acme";
    bool header = false;
    static const struct option opts[] = {
        {"directory", required_argument, NULL, 'd'},
        {"accounts", required_argument, NULL, 'a'},
        {"orders", required_argument, NULL, 'o'},
        {"names", required_argument, NULL, 'n'},
        {"http-port", required_argument, NULL, 'p'},
        {"insecure", no_argument, NULL, 'k'},
        {"label", required_argument, NULL, 'l'},
        {"header", no_argument, NULL, 'H'},
        {"verbose", no_argument, NULL, 'v'},
        {"poll-cap-ms", required_argument, NULL, 'c'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (opt) {
        case 'd':
            cfg.directory = optarg;
            break;
        case 'a':
            cfg.accounts = atoi(optarg);
            break;
        case 'o':
            cfg.orders = atoi(optarg);
            break;
        case 'n':
            cfg.names = atoi(optarg);
            break;
        case 'p':
            cfg.http_port = atoi(optarg);
            break;
        case 'k':
            cfg.insecure = true;
            break;
        case 'l':
            label = optarg;
            break;
        case 'H':
            header = true;
            break;
        case 'v':
            cfg.verbose = true;
            break;
        case 'c':
            cfg.poll_cap_ms = atoi(optarg);
            break;
        default:
            s_usage();
            return 2;
        }
    }
    if (!cfg.directory || cfg.accounts < 1 || cfg.accounts > 1024 || cfg.orders < 1 ||
        cfg.names < 1 || cfg.names > 100 || cfg.http_port < 0 || cfg.http_port > 65535 ||
        cfg.poll_cap_ms < 1) {
        s_usage();
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0)
        return 1;
    s_responder_t responder;
    if (cfg.http_port && s_responder_start(&responder, cfg.http_port) != 0)
        return 1;
    if (s_directory(&cfg) != 0)
        return 1;

    s_client_t *clients = calloc((size_t)cfg.accounts, sizeof *clients);
    pthread_t *threads = calloc((size_t)cfg.accounts, sizeof *threads);
    pthread_barrier_t ready;
    if (!clients || !threads || pthread_barrier_init(&ready, NULL, (unsigned)cfg.accounts + 1))
        return 1;
    for (int i = 0; i < cfg.accounts; i++) {
        if (s_client_init(&clients[i], &cfg, cfg.http_port ? &responder : NULL, i, &ready) != 0)
            fprintf(stderr, "certfleet-bench-acme: could not set up account %d\n", i);
        if (pthread_create(&threads[i], NULL, s_client_run, &clients[i]) != 0)
            return 1;
    }
    pthread_barrier_wait(&ready);
    double t0 = s_now();
    for (int i = 0; i < cfg.accounts; i++)
        pthread_join(threads[i], NULL);
    double secs = s_now() - t0;

    long done = 0;
    long failed = 0;
    unsigned long requests = 0;
    unsigned long bad_nonces = 0;
    for (int i = 0; i < cfg.accounts; i++) {
        done += clients[i].done;
        failed += clients[i].failed;
        requests += clients[i].requests;
        bad_nonces += clients[i].bad_nonces;
    }
    double *lat = calloc((size_t)done + 1, sizeof *lat);
    long n = 0;
    for (int i = 0; lat && i < cfg.accounts; i++)
        for (int j = 0; j < clients[i].done; j++)
            lat[n++] = clients[i].latency_ms[j];
    qsort(lat, (size_t)n, sizeof *lat, s_cmp_double);
    double p50 = n ? lat[n / 2] : 0;
    double p99 = n ? lat[n * 99 / 100 < n ? n * 99 / 100 : n - 1] : 0;
    if (header)
        printf("%-24s %8s %8s %7s %9s %9s %9s %9s\n", "server", "accounts", "orders", "failed",
               "seconds", "orders/s", "p50 ms", "p99 ms");
    printf("%-24s %8d %8ld %7ld %9.2f %9.1f %9.1f %9.1f\n", label, cfg.accounts, done, failed, secs,
           secs > 0 ? (double)done / secs : 0.0, p50, p99);
    fprintf(stderr, "certfleet-bench-acme: %lu requests, %lu badNonce retried%s\n", requests,
            bad_nonces, cfg.http_port ? "" : ", no http-01 responder");
    if (cfg.http_port) {
        pthread_mutex_lock(&responder.lock);
        fprintf(stderr, "certfleet-bench-acme: http-01 responder answered %lu requests\n",
                responder.served);
        pthread_mutex_unlock(&responder.lock);
        s_responder_stop(&responder);
    }
    for (int i = 0; i < cfg.accounts; i++)
        s_client_fini(&clients[i]);
    pthread_barrier_destroy(&ready);
    free(lat);
    free(clients);
    free(threads);
    curl_global_cleanup();
    return failed ? 1 : 0;
}
