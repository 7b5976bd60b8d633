/* http-01 (RFC 8555 8.3): GET http://<name>:<http_port>/.well-known/acme-challenge/<token>
 * with libcurl and compare the body with the key authorization. Redirects are followed by
 * hand, one hop at a time, so that each target is checked before it is fetched: http or
 * https only, on the configured ports, to a name rather than an address, at most
 * [validator] http_max_redirects of them, all within the one deadline. The multi interface
 * lets the worker heartbeat while it waits. */
#include <arpa/inet.h>
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"
#include "validator.h"

#define S_URL_MAX 2048

typedef struct {
    char data[VALIDATOR_BODY_MAX]; /* the body so far */
    size_t len;                    /* its length */
    bool too_large;                /* more came than VALIDATOR_BODY_MAX */
} s_body_t;

/* The outcome of one GET. */
typedef struct {
    CURLcode code;               /* libcurl's result */
    long status;                 /* HTTP status, 0 when none came */
    char location[S_URL_MAX];    /* absolute redirect target, "" when none */
    char error[CURL_ERROR_SIZE]; /* libcurl's error text */
} s_hop_t;

static size_t s_write(char *ptr, size_t size, size_t nmemb, void *arg)
{
    s_body_t *body = arg;
    size_t n = size * nmemb;
    /* Stop reading at the cap: a short count makes libcurl end the transfer. */
    if (n > sizeof body->data - body->len) {
        body->too_large = true;
        return 0;
    }
    memcpy(body->data + body->len, ptr, n);
    body->len += n;
    return n;
}

/* One GET of URL into BODY. 0, or -1 when libcurl could not be set up. */
static int s_get(const validator_check_t *check, CURLM *multi, struct curl_slist *connect_to,
                 const char *url, s_body_t *body, s_hop_t *hop)
{
    CURL *easy = curl_easy_init();
    if (!easy)
        return -1;
    memset(hop, 0, sizeof *hop);
    body->len = 0;
    body->too_large = false;
    long timeout = validator_remaining_ms(check);
    if (timeout < 1)
        timeout = 1;
    int bad = 0;
    bad |= curl_easy_setopt(easy, CURLOPT_URL, url);
    bad |= curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    bad |= curl_easy_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    /* No proxy, whatever http_proxy and friends in the environment say: the applicant's
     * server is what must answer. */
    bad |= curl_easy_setopt(easy, CURLOPT_PROXY, "");
    bad |= curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(easy, CURLOPT_TIMEOUT_MS, timeout);
    bad |= curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS, timeout);
    bad |= curl_easy_setopt(easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    bad |= curl_easy_setopt(easy, CURLOPT_USERAGENT, "certfleet-validator");
    bad |= curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, s_write);
    bad |= curl_easy_setopt(easy, CURLOPT_WRITEDATA, body);
    bad |= curl_easy_setopt(easy, CURLOPT_ERRORBUFFER, hop->error);
    /* An https redirect target is not checked against any trust store: what is proven is
     * control of the resource, and the applicant picked the target (as Boulder does). */
    bad |= curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 0L);
    bad |= curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 0L);
    if (connect_to)
        bad |= curl_easy_setopt(easy, CURLOPT_CONNECT_TO, connect_to);
    if (bad || curl_multi_add_handle(multi, easy) != CURLM_OK) {
        curl_easy_cleanup(easy);
        return -1;
    }
    hop->code = CURLE_OK;
    int running = 1;
    while (running) {
        if (curl_multi_perform(multi, &running) != CURLM_OK)
            break;
        if (!running)
            break;
        curl_multi_poll(multi, NULL, 0, 200, NULL);
        validator_alive(check);
    }
    int queued;
    CURLMsg *msg;
    while ((msg = curl_multi_info_read(multi, &queued)))
        if (msg->msg == CURLMSG_DONE && msg->easy_handle == easy)
            hop->code = msg->data.result;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &hop->status);
    char *location = NULL;
    if (curl_easy_getinfo(easy, CURLINFO_REDIRECT_URL, &location) == CURLE_OK && location)
        snprintf(hop->location, sizeof hop->location, "%s", location);
    curl_multi_remove_handle(multi, easy);
    curl_easy_cleanup(easy);
    return 0;
}

/* Check a redirect target; 0, or -1 with PROBLEM set. */
static int s_redirect_ok(const validator_check_t *check, const char *from, const char *to,
                         validator_problem_t *problem)
{
    char quoted[300];
    validator_quote(quoted, sizeof quoted, to, strlen(to), 200);
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL;
    int rc = -1;
    if (!u || strlen(to) >= S_URL_MAX ||
        curl_url_set(u, CURLUPART_URL, to, CURLU_NON_SUPPORT_SCHEME) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT) != CURLUE_OK) {
        validator_problem(problem, "connection", "%s redirected to %s, which is not a valid URL",
                          from, quoted);
        goto out;
    }
    bool http = strcmp(scheme, "http") == 0, https = strcmp(scheme, "https") == 0;
    if (!http && !https) {
        validator_problem(problem, "connection",
                          "%s redirected to %s: only http and https redirects are followed", from,
                          quoted);
        goto out;
    }
    int allowed = http ? check->config->http_port : check->config->tls_alpn_port;
    if (atoi(port) != allowed) {
        validator_problem(problem, "connection",
                          "%s redirected to %s: %s redirects are followed only to port %d", from,
                          quoted, scheme, allowed);
        goto out;
    }
    unsigned char addr[16];
    if (host[0] == '[' || inet_pton(AF_INET, host, addr) == 1) {
        validator_problem(problem, "connection",
                          "%s redirected to %s: redirects to an IP address are not followed", from,
                          quoted);
        goto out;
    }
    rc = 0;
out:
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_url_cleanup(u);
    return rc;
}

/* A failed transfer as a problem. */
static void s_transfer_problem(const validator_check_t *check, const char *url, const s_hop_t *hop,
                               const s_body_t *body, validator_problem_t *problem)
{
    const char *why = hop->error[0] ? hop->error : curl_easy_strerror(hop->code);
    switch (hop->code) {
    case CURLE_WRITE_ERROR:
        if (body->too_large) {
            validator_problem(problem, "incorrectResponse",
                              "the response from %s is larger than %d bytes", url,
                              VALIDATOR_BODY_MAX);
            return;
        }
        break;
    case CURLE_OPERATION_TIMEDOUT:
        validator_problem(problem, "connection",
                          "no complete response from %s within %d ms (the time allowed for the "
                          "whole check)",
                          url, check->config->timeout_ms);
        return;
    case CURLE_COULDNT_RESOLVE_HOST:
        validator_problem(problem, "dns", "could not resolve the host of %s: %s", url, why);
        return;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
        validator_problem(problem, "tls", "TLS with %s failed: %s", url, why);
        return;
    default:
        break;
    }
    validator_problem(problem, "connection", "could not fetch %s: %s", url, why);
}

int validator_http01(const validator_check_t *check, validator_problem_t *problem, cf_error_t *err)
{
    int rc = -1;
    CURLM *multi = curl_multi_init();
    s_body_t *body = calloc(1, sizeof *body);
    struct curl_slist *connect_to = NULL;
    char url[S_URL_MAX], previous[S_URL_MAX];
    if (!multi || !body)
        goto oom;
    if (check->config->connect_address) {
        /* Any host, any port, to that address, same port: "::ADDR:". */
        char rule[300];
        bool v6 = strchr(check->config->connect_address, ':') != NULL;
        snprintf(rule, sizeof rule, "::%s%s%s:", v6 ? "[" : "", check->config->connect_address,
                 v6 ? "]" : "");
        if (!(connect_to = curl_slist_append(NULL, rule)))
            goto oom;
    }
    snprintf(url, sizeof url, "http://%s:%d/.well-known/acme-challenge/%s", check->name,
             check->config->http_port, check->token);
    for (int redirects = 0;; redirects++) {
        s_hop_t hop;
        if (s_get(check, multi, connect_to, url, body, &hop) != 0)
            goto oom;
        if (hop.code != CURLE_OK) {
            s_transfer_problem(check, url, &hop, body, problem);
            rc = 0;
            goto out;
        }
        if (hop.status >= 300 && hop.status < 400 && hop.location[0]) {
            if (redirects == check->config->http_max_redirects) {
                validator_problem(problem, "connection",
                                  "too many redirects: %s is redirect number %d (at most %d are "
                                  "followed)",
                                  url, redirects + 1, check->config->http_max_redirects);
                rc = 0;
                goto out;
            }
            if (s_redirect_ok(check, url, hop.location, problem) != 0) {
                rc = 0;
                goto out;
            }
            snprintf(previous, sizeof previous, "%s", url);
            snprintf(url, sizeof url, "%s", hop.location);
            cf_log_debug("http-01 of \"%s\": %s redirected to %s", check->name, previous, url);
            continue;
        }
        if (hop.status != 200) {
            validator_problem(problem, "unauthorized", "%s answered HTTP status %ld, not 200", url,
                              hop.status);
            rc = 0;
            goto out;
        }
        break;
    }
    /* RFC 8555 8.3: whitespace at the end of the body is ignored. */
    size_t len = body->len;
    while (len > 0 && (body->data[len - 1] == ' ' || body->data[len - 1] == '\t' ||
                       body->data[len - 1] == '\r' || body->data[len - 1] == '\n'))
        len--;
    size_t want = strlen(check->key_authorization);
    if (len == want && memcmp(body->data, check->key_authorization, want) == 0) {
        rc = 1;
        goto out;
    }
    char expected[200], found[200];
    validator_quote(expected, sizeof expected, check->key_authorization, want, 150);
    validator_quote(found, sizeof found, body->data, len, 120);
    validator_problem(problem, "incorrectResponse",
                      "the key authorization from %s did not match: expected %s, found %s", url,
                      expected, found);
    rc = 0;
    goto out;
oom:
    cf_error_set(err, "internal", "", "could not set up libcurl for http-01");
out:
    curl_slist_free_all(connect_to);
    if (multi)
        curl_multi_cleanup(multi);
    free(body);
    return rc;
}
