/* key_change: account key roll-over (RFC 8555 7.3.5). The outer JWS is the account's request
 * (kid, old key); its payload is an inner JWS signed by the new key (jwk) for the same URL,
 * whose payload names the account and its old key. A new key that another account of this CA
 * already uses is a conflict (409, with that account's URL). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "cf_key.h"
#include "cf_log.h"

#define S_SQL_ROLL                                                                                 \
    "UPDATE acme_accounts SET jwk = $2::jsonb, thumbprint = $3, updated_at = now()"                \
    " WHERE id = $1 AND status = 'valid'"

static void s_conflict(acme_req_t *req, const char *slug)
{
    acme_object_url(req, "acct", slug, NULL, req->reply.location);
    acme_problem(req, "malformed", MHD_HTTP_CONFLICT, "another account already uses the new key");
    /* acme_problem keeps the Location set above: it only replaces the body. */
}

void acme_key_change(acme_req_t *req)
{
    const json_t *payload = acme_payload(req);
    if (!payload)
        return;
    cf_error_t err = {0};
    char *inner_text = json_dumps(payload, JSON_COMPACT);
    cf_jws_t *inner = inner_text ? cf_jws_parse(inner_text, strlen(inner_text), &err) : NULL;
    EVP_PKEY *new_key = NULL;
    json_t *new_jwk = NULL;
    char *jwk_text = NULL;
    char old_tp[CF_KEY_THUMBPRINT_MAX + 4], new_tp[CF_KEY_THUMBPRINT_MAX + 4];
    acme_account_t other = {0};
    if (!inner) {
        acme_problem(req, "malformed", 0, "the payload is not a valid inner JWS: %s", err.message);
        goto out;
    }
    if (!inner->jwk || inner->kid) {
        acme_problem(req, "malformed", 0, "the inner JWS must carry the new key as \"jwk\"");
        goto out;
    }
    if (!(new_key = cf_key_from_jwk(inner->jwk, &err))) {
        acme_problem(req, "badPublicKey", 0, "unusable new key: %s", err.message);
        goto out;
    }
    if (cf_jws_verify(inner, new_key, &err) != 0) {
        acme_problem(req, strcmp(err.code, "badSignatureAlgorithm") == 0 ? err.code : "malformed",
                     0, "the inner JWS does not verify with the new key: %s", err.message);
        goto out;
    }
    if (!inner->url || strcmp(inner->url, req->jws->url) != 0) {
        acme_problem(req, "malformed", 0, "the inner JWS \"url\" is not the outer one");
        goto out;
    }
    const json_t *ip = inner->payload_json;
    const json_t *account = json_object_get(ip, "account");
    const json_t *old_key = json_object_get(ip, "oldKey");
    if (!json_is_string(account) || !json_is_object(old_key)) {
        acme_problem(req, "malformed", 0,
                     "the inner payload needs \"account\" (a URL) and \"oldKey\" (a JWK)");
        goto out;
    }
    if (strcmp(json_string_value(account), req->jws->kid) != 0) {
        acme_problem(req, "malformed", 0, "the inner \"account\" is not the outer \"kid\"");
        goto out;
    }
    if (cf_key_jwk_thumbprint(old_key, old_tp, sizeof old_tp) != 0 ||
        strcmp(old_tp, req->account.thumbprint) != 0) {
        acme_problem(req, "malformed", 0, "\"oldKey\" is not the account's current key");
        goto out;
    }
    if (!(new_jwk = cf_key_public_jwk(new_key, &err)) ||
        cf_key_jwk_thumbprint(new_jwk, new_tp, sizeof new_tp) != 0) {
        acme_problem(req, "badPublicKey", 0, "unsupported new key");
        goto out;
    }
    if (strcmp(new_tp, old_tp) == 0) {
        acme_problem(req, "malformed", 0, "the new key is the old key");
        goto out;
    }
    int found = acme_account_load_thumbprint(req, new_tp, &other);
    if (found < 0) {
        acme_internal(req);
        goto out;
    }
    if (found == 1) {
        s_conflict(req, other.slug);
        goto out;
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)req->account.id);
    if (!(jwk_text = json_dumps(new_jwk, JSON_COMPACT))) {
        acme_internal(req);
        goto out;
    }
    const char *v[] = {id, jwk_text, new_tp};
    PGresult *res = acme_sql(req->store, "acme_account_roll", S_SQL_ROLL, 3, v, NULL, NULL,
                             "change an ACME account's key");
    if (!res && strcmp(acme_sqlstate(req->store), "23505") == 0) {
        /* Another account took the key between our look and our write. */
        if (acme_account_load_thumbprint(req, new_tp, &other) == 1)
            s_conflict(req, other.slug);
        else
            acme_internal(req);
        goto out;
    }
    if (!res) {
        acme_internal(req);
        goto out;
    }
    PQclear(res);
    cf_audit("acme.account.key_change", "ca", req->ca.name, "account", req->account.slug,
             "old_thumbprint", old_tp, "new_thumbprint", new_tp, NULL);
    json_decref(req->account.jwk);
    req->account.jwk = json_incref(new_jwk);
    snprintf(req->account.thumbprint, sizeof req->account.thumbprint, "%s", new_tp);
    acme_account_reply(req, &req->account, MHD_HTTP_OK);
out:
    acme_account_clear(&other);
    free(jwk_text);
    json_decref(new_jwk);
    EVP_PKEY_free(new_key);
    cf_jws_destroy(&inner);
    free(inner_text);
}
