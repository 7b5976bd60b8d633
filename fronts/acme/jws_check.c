/* jws_check: what every ACME POST goes through before its handler (RFC 8555 6.2-6.5): the
 * application/jose+json media type, a well-formed flattened JWS with a supported algorithm,
 * "jwk" only where a request may carry a bare key (newAccount, revokeCert by the
 * certificate's key) and "kid" naming a valid account of this CA everywhere else, a
 * signature that verifies, a "url" that is exactly the URL requested and a nonce that was
 * issued and is used now, once.
 *
 * Order of the checks: the signature before the nonce, so that a forged request cannot use
 * up a client's nonce; the account before the signature, as it holds the key. */
#include <string.h>
#include <strings.h>

#include "acme.h"
#include "cf_key.h"
#include "cf_log.h"

/* True when the media type of CONTENT_TYPE (parameters ignored) is TYPE, in any case. */
static bool s_media_is(const char *content_type, const char *type)
{
    while (*content_type == ' ' || *content_type == '\t')
        content_type++;
    size_t n = strcspn(content_type, ";");
    while (n > 0 && (content_type[n - 1] == ' ' || content_type[n - 1] == '\t'))
        n--;
    return n == strlen(type) && strncasecmp(content_type, type, n) == 0;
}

/* The problem for a cf_jws error. */
static void s_jws_problem(acme_req_t *req, const cf_error_t *err)
{
    const char *type = err->code;
    if (strcmp(type, "badSignatureAlgorithm") != 0 && strcmp(type, "unauthorized") != 0)
        type = "malformed";
    json_t *problem = acme_problem_new(type, 0, err->message[0] ? err->message : "bad JWS");
    /* RFC 8555 6.2: tell the client what it may use instead. */
    if (problem && strcmp(type, "badSignatureAlgorithm") == 0)
        json_object_set_new(problem, "algorithms",
                            json_pack("[s,s,s,s,s]", "RS256", "ES256", "ES384", "ES512", "EdDSA"));
    cf_log_debug("%s %s: %s: %s (%s)", req->method, req->url, type, err->message, err->field);
    acme_problem_send(req, problem);
}

/* The account a "kid" names: an account URL of this CA whose account is valid. 0 or -1. */
static int s_kid_account(acme_req_t *req, const char *kid)
{
    char prefix[ACME_URL_MAX];
    snprintf(prefix, sizeof prefix, "%s/acct/", req->ca_url);
    size_t plen = strlen(prefix);
    const char *slug = kid + plen;
    if (strncmp(kid, prefix, plen) != 0 || !acme_slug_valid(slug)) {
        acme_problem(req, "accountDoesNotExist", 0,
                     "\"kid\" is not an account URL of this certificate authority");
        return -1;
    }
    int found = acme_account_load(req, slug, &req->account);
    if (found < 0) {
        acme_internal(req);
        return -1;
    }
    if (found == 0) {
        acme_problem(req, "accountDoesNotExist", 0, "no account \"%s\"", kid);
        return -1;
    }
    req->has_account = true;
    if (strcmp(req->account.status, "valid") != 0) {
        acme_problem(req, "unauthorized", 0, "account is %s", req->account.status);
        return -1;
    }
    cf_error_t err = {0};
    req->key = cf_key_from_jwk(req->account.jwk, &err);
    if (!req->key) {
        cf_log_error("stored key of ACME account \"%s\" is unusable: %s", slug, err.message);
        acme_internal(req);
        return -1;
    }
    return 0;
}

int acme_jws_check(acme_req_t *req, acme_auth_t auth)
{
    const char *ct =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
    if (!ct || !s_media_is(ct, "application/jose+json")) {
        acme_problem(req, "malformed", MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
                     "requests must have Content-Type \"application/jose+json\"");
        return -1;
    }
    cf_error_t err = {0};
    req->jws = cf_jws_parse(req->body ? req->body : "", req->body_len, &err);
    if (!req->jws) {
        s_jws_problem(req, &err);
        return -1;
    }
    const cf_jws_t *jws = req->jws;
    if (jws->jwk && auth == ACME_AUTH_KID) {
        acme_problem(req, "malformed", 0,
                     "this request must name its account with \"kid\", not carry \"jwk\"");
        return -1;
    }
    if (jws->kid && auth == ACME_AUTH_JWK) {
        acme_problem(req, "malformed", 0, "a new account request must carry \"jwk\", not \"kid\"");
        return -1;
    }
    if (!jws->jwk && !jws->kid) { /* cf_jws_parse refuses this; stay safe regardless */
        acme_problem(req, "malformed", 0, "the protected header needs \"jwk\" or \"kid\"");
        return -1;
    }
    if (jws->jwk) {
        req->key = cf_key_from_jwk(jws->jwk, &err);
        if (!req->key) {
            acme_problem(req, "badPublicKey", 0, "unusable \"jwk\": %s", err.message);
            return -1;
        }
    } else if (s_kid_account(req, jws->kid) != 0) {
        return -1;
    }
    if (cf_jws_verify(jws, req->key, &err) != 0) {
        s_jws_problem(req, &err);
        return -1;
    }
    if (!jws->url || strcmp(jws->url, req->url) != 0) {
        acme_problem(req, "unauthorized", 0,
                     "the JWS \"url\" header is not the URL this request was sent to");
        return -1;
    }
    if (!jws->nonce) {
        acme_problem(req, "badNonce", 0, "the JWS has no \"nonce\" header");
        return -1;
    }
    int fresh = acme_nonce_consume(req->store, jws->nonce);
    if (fresh < 0) {
        acme_internal(req);
        return -1;
    }
    if (fresh == 0) {
        acme_problem(req, "badNonce", 0, "the nonce was not issued here, or is used or expired");
        return -1;
    }
    return 0;
}

const json_t *acme_payload(acme_req_t *req)
{
    if (!req->jws->payload_json || !json_is_object(req->jws->payload_json)) {
        acme_problem(req, "malformed", 0, "this request needs a JSON object as payload");
        return NULL;
    }
    return req->jws->payload_json;
}

bool acme_post_as_get(const acme_req_t *req)
{
    return req->jws->payload_len == 0;
}
