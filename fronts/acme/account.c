/* account: ACME accounts (RFC 8555 7.3, django-ca's AcmeAccount): newAccount with the CA's
 * registration, contact and terms-of-service rules, the account URL (read, contact update,
 * deactivation) and its orders list. An account belongs to one CA and is found by its key's
 * RFC 7638 thumbprint, so one key has at most one account per CA. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "acme.h"
#include "cf_key.h"
#include "cf_log.h"

#define S_MAX_CONTACTS 10
#define S_MAX_ORDERS   1000 /* in one orders list */

#define S_SQL_COLUMNS                                                                              \
    "SELECT id, slug, status, thumbprint, jwk::text, contact::text, terms_of_service_agreed"       \
    " FROM acme_accounts"
#define S_SQL_BY_SLUG  S_SQL_COLUMNS " WHERE ca_id = $1 AND slug = $2"
#define S_SQL_BY_THUMB S_SQL_COLUMNS " WHERE ca_id = $1 AND thumbprint = $2"
#define S_SQL_INSERT                                                                               \
    "INSERT INTO acme_accounts (ca_id, slug, jwk, thumbprint, contact, terms_of_service_agreed)"   \
    " VALUES ($1, $2, $3::jsonb, $4, $5::jsonb, $6::boolean)"
#define S_SQL_UPDATE                                                                               \
    "UPDATE acme_accounts SET contact = $2::jsonb, terms_of_service_agreed ="                      \
    " terms_of_service_agreed OR $3::boolean, updated_at = now() WHERE id = $1"
#define S_SQL_DEACTIVATE                                                                           \
    "UPDATE acme_accounts SET status = 'deactivated', updated_at = now() WHERE id = $1"
/* RFC 8555 7.3.6: what the account had pending ends with it. */
#define S_SQL_DEACTIVATE_ORDERS                                                                    \
    "UPDATE acme_orders SET status = 'invalid', error = $2::jsonb WHERE account_id = $1"           \
    " AND status IN ('pending', 'ready')"
#define S_SQL_ORDERS                                                                               \
    "SELECT slug FROM acme_orders WHERE account_id = $1 AND (status IN ('processing', 'valid')"    \
    " OR (status IN ('pending', 'ready') AND expires > now())) ORDER BY id DESC LIMIT 1000"

void acme_account_clear(acme_account_t *acct)
{
    json_decref(acct->jwk);
    json_decref(acct->contact);
    memset(acct, 0, sizeof *acct);
}

static int s_load(acme_req_t *req, const char *stmt, const char *sql, const char *key,
                  acme_account_t *out)
{
    memset(out, 0, sizeof *out);
    char ca_id[24];
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)req->ca.id);
    const char *v[] = {ca_id, key};
    PGresult *res = acme_sql(req->store, stmt, sql, 2, v, NULL, NULL, "read an ACME account");
    if (!res)
        return -1;
    int rc = 0;
    if (PQntuples(res) == 1) {
        out->id = acme_int(res, 0, 0);
        snprintf(out->slug, sizeof out->slug, "%s", PQgetvalue(res, 0, 1));
        snprintf(out->status, sizeof out->status, "%s", PQgetvalue(res, 0, 2));
        snprintf(out->thumbprint, sizeof out->thumbprint, "%s", PQgetvalue(res, 0, 3));
        out->jwk = json_loads(PQgetvalue(res, 0, 4), 0, NULL);
        out->contact = json_loads(PQgetvalue(res, 0, 5), 0, NULL);
        out->tos_agreed = PQgetvalue(res, 0, 6)[0] == 't';
        rc = out->jwk && out->contact ? 1 : -1;
        if (rc < 0)
            acme_account_clear(out);
    }
    PQclear(res);
    return rc;
}

int acme_account_load(acme_req_t *req, const char *slug, acme_account_t *out)
{
    return s_load(req, "acme_account_slug", S_SQL_BY_SLUG, slug, out);
}

int acme_account_load_thumbprint(acme_req_t *req, const char *thumbprint, acme_account_t *out)
{
    return s_load(req, "acme_account_thumb", S_SQL_BY_THUMB, thumbprint, out);
}

/* Reply with the account object (RFC 8555 7.1.2) and its URL as Location. */
void acme_account_reply(acme_req_t *req, const acme_account_t *acct, unsigned int status)
{
    char orders[ACME_URL_MAX];
    acme_object_url(req, "acct", acct->slug, "orders", orders);
    json_t *doc =
        json_pack("{s:s, s:O, s:b, s:s}", "status", acct->status, "contact", acct->contact,
                  "termsOfServiceAgreed", acct->tos_agreed, "orders", orders);
    acme_object_url(req, "acct", acct->slug, NULL, req->reply.location);
    acme_reply_json(req, status, doc);
}

/* Check one contact URL: "mailto:" and one plain address (no hfields, no list). 0, or -1 with
 * the problem set. */
static int s_check_contact(acme_req_t *req, const char *url, size_t len)
{
    if (len != strlen(url) || len > 320) {
        acme_problem(req, "invalidContact", 0, "contact URLs are at most 320 characters");
        return -1;
    }
    if (strncasecmp(url, "mailto:", 7) != 0) {
        acme_problem(req, "unsupportedContact", 0,
                     "only \"mailto:\" contact URLs are supported, not \"%.64s\"", url);
        return -1;
    }
    const char *addr = url + 7;
    const char *at = strchr(addr, '@');
    size_t local = at ? (size_t)(at - addr) : 0;
    /* A local part of printable ASCII without the characters that would make the URL
     * anything but one plain address (RFC 6068: no hfields, no address lists). */
    static const char bad[] = " \t\"(),:;<>@[\\]?%&=";
    bool ok = at && local > 0 && local <= 64 && strchr(at + 1, '@') == NULL;
    for (size_t i = 0; ok && i < local; i++)
        ok = addr[i] > 0x20 && addr[i] < 0x7f && !strchr(bad, addr[i]);
    char domain[ACME_NAME_MAX], why[128];
    if (!ok || strchr(at + 1, '*') || acme_name_check(at + 1, domain, why, sizeof why) != 0) {
        acme_problem(req, "invalidContact", 0, "\"%.100s\" is not a valid mailto: address", url);
        return -1;
    }
    return 0;
}

/* The contact list of PAYLOAD (a new empty one when absent), or NULL with the problem set. */
static json_t *s_contacts(acme_req_t *req, const json_t *payload)
{
    const json_t *contact = json_object_get(payload, "contact");
    if (!contact || json_is_null(contact))
        return json_array();
    if (!json_is_array(contact) || json_array_size(contact) > S_MAX_CONTACTS) {
        acme_problem(req, "malformed", 0, "\"contact\" is a list of at most %d URLs",
                     S_MAX_CONTACTS);
        return NULL;
    }
    size_t i;
    const json_t *c;
    json_array_foreach(contact, i, c)
    {
        if (!json_is_string(c)) {
            acme_problem(req, "malformed", 0, "\"contact\" is a list of strings");
            return NULL;
        }
        if (s_check_contact(req, json_string_value(c), json_string_length(c)) != 0)
            return NULL;
    }
    return json_deep_copy(contact);
}

void acme_new_account(acme_req_t *req)
{
    const json_t *payload = acme_payload(req);
    if (!payload)
        return;
    const json_t *only = json_object_get(payload, "onlyReturnExisting");
    const json_t *tos = json_object_get(payload, "termsOfServiceAgreed");
    if ((only && !json_is_boolean(only)) || (tos && !json_is_boolean(tos))) {
        acme_problem(req, "malformed", 0,
                     "\"onlyReturnExisting\" and \"termsOfServiceAgreed\" are booleans");
        return;
    }
    /* The key as we store it: only its public members, in one spelling. */
    cf_error_t err = {0};
    json_t *jwk = cf_key_public_jwk(req->key, &err), *contact = NULL;
    char thumbprint[CF_KEY_THUMBPRINT_MAX + 4], slug[ACME_SLUG_MAX], ca_id[24];
    char *jwk_text = NULL, *contact_text = NULL;
    acme_account_t acct = {0};
    if (!jwk) {
        acme_problem(req, "badPublicKey", 0, "unsupported account key: %s", err.message);
        goto out;
    }
    if (cf_key_jwk_thumbprint(jwk, thumbprint, sizeof thumbprint) != 0) {
        acme_problem(req, "badPublicKey", 0, "unsupported account key");
        goto out;
    }
    int found = acme_account_load_thumbprint(req, thumbprint, &acct);
    if (found < 0) {
        acme_internal(req);
        goto out;
    }
    if (found == 1) {
        /* RFC 8555 7.3.1: the key's account, with 200; a deactivated one is gone for good. */
        if (strcmp(acct.status, "valid") != 0)
            acme_problem(req, "unauthorized", 0, "the account of this key is %s", acct.status);
        else
            acme_account_reply(req, &acct, MHD_HTTP_OK);
        goto out;
    }
    if (json_is_true(only)) {
        acme_problem(req, "accountDoesNotExist", 0, "no account has this key");
        goto out;
    }
    if (!req->ca.registration) {
        acme_problem(req, "unauthorized", 0,
                     "certificate authority \"%s\" does not accept new accounts", req->ca.name);
        goto out;
    }
    if (req->ca.terms_of_service[0] && !json_is_true(tos)) {
        json_t *problem =
            acme_problem_new("userActionRequired", 0, "agree to the terms of service first");
        if (problem)
            json_object_set_new(problem, "instance", json_string(req->ca.terms_of_service));
        acme_problem_send(req, problem);
        goto out;
    }
    if (!(contact = s_contacts(req, payload)))
        goto out;
    if (req->ca.requires_contact && json_array_size(contact) == 0) {
        acme_problem(req, "invalidContact", 0,
                     "certificate authority \"%s\" requires a contact address", req->ca.name);
        goto out;
    }
    jwk_text = json_dumps(jwk, JSON_COMPACT);
    contact_text = json_dumps(contact, JSON_COMPACT);
    if (!jwk_text || !contact_text || acme_random_slug(slug) != 0) {
        acme_internal(req);
        goto out;
    }
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)req->ca.id);
    const char *v[] = {ca_id,      slug,         jwk_text,
                       thumbprint, contact_text, json_is_true(tos) ? "true" : "false"};
    PGresult *res = acme_sql(req->store, "acme_account_insert", S_SQL_INSERT, 6, v, NULL, NULL,
                             "create an ACME account");
    if (!res && strcmp(acme_sqlstate(req->store), "23505") == 0) {
        /* The same key registered at the same moment by another request: that one won. */
        if (acme_account_load_thumbprint(req, thumbprint, &acct) == 1 &&
            strcmp(acct.status, "valid") == 0)
            acme_account_reply(req, &acct, MHD_HTTP_OK);
        else
            acme_internal(req);
        goto out;
    }
    if (!res) {
        acme_internal(req);
        goto out;
    }
    PQclear(res);
    if (acme_account_load(req, slug, &acct) != 1) {
        acme_internal(req);
        goto out;
    }
    cf_audit("acme.account.new", "ca", req->ca.name, "account", slug, "thumbprint", thumbprint,
             "contact", contact_text, NULL);
    acme_account_reply(req, &acct, MHD_HTTP_CREATED);
out:
    acme_account_clear(&acct);
    json_decref(jwk);
    json_decref(contact);
    free(jwk_text);
    free(contact_text);
}

/* True when the request's account is the one of the URL; else the problem is set. */
static bool s_own_account(acme_req_t *req)
{
    if (strcmp(req->account.slug, req->slug) != 0) {
        acme_problem(req, "unauthorized", 0, "the request is signed by another account");
        return false;
    }
    return true;
}

static void s_deactivate(acme_req_t *req)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)req->account.id);
    json_t *problem = acme_problem_new("unauthorized", 0, "the account was deactivated");
    char *error = problem ? json_dumps(problem, JSON_COMPACT) : NULL;
    json_decref(problem);
    const char *v[] = {id, error};
    PGresult *r1 = NULL, *r2 = NULL;
    bool ok = error && acme_begin(req->store) == 0 &&
              (r1 = acme_sql(req->store, "acme_account_deactivate", S_SQL_DEACTIVATE, 1, v, NULL,
                             NULL, "deactivate an ACME account")) &&
              (r2 = acme_sql(req->store, "acme_account_deactivate_orders", S_SQL_DEACTIVATE_ORDERS,
                             2, v, NULL, NULL, "end the orders of a deactivated account")) &&
              acme_commit(req->store) == 0;
    PQclear(r1);
    PQclear(r2);
    free(error);
    if (!ok) {
        acme_rollback(req->store);
        acme_internal(req);
        return;
    }
    cf_audit("acme.account.deactivate", "ca", req->ca.name, "account", req->account.slug, NULL);
    snprintf(req->account.status, sizeof req->account.status, "deactivated");
    acme_account_reply(req, &req->account, MHD_HTTP_OK);
}

void acme_account_post(acme_req_t *req)
{
    if (!s_own_account(req))
        return;
    if (acme_post_as_get(req)) {
        acme_account_reply(req, &req->account, MHD_HTTP_OK);
        return;
    }
    const json_t *payload = acme_payload(req);
    if (!payload)
        return;
    const json_t *status = json_object_get(payload, "status");
    if (status) {
        if (!json_is_string(status) || strcmp(json_string_value(status), "deactivated") != 0) {
            acme_problem(req, "malformed", 0,
                         "an account's \"status\" can only become "
                         "\"deactivated\"");
            return;
        }
        s_deactivate(req);
        return;
    }
    const json_t *tos = json_object_get(payload, "termsOfServiceAgreed");
    if (tos && !json_is_boolean(tos)) {
        acme_problem(req, "malformed", 0, "\"termsOfServiceAgreed\" is a boolean");
        return;
    }
    if (!json_object_get(payload, "contact") && !json_is_true(tos)) {
        acme_account_reply(req, &req->account, MHD_HTTP_OK); /* nothing to change */
        return;
    }
    json_t *contact = json_object_get(payload, "contact") ? s_contacts(req, payload)
                                                          : json_deep_copy(req->account.contact);
    if (!contact)
        return;
    if (req->ca.requires_contact && json_array_size(contact) == 0) {
        json_decref(contact);
        acme_problem(req, "invalidContact", 0,
                     "certificate authority \"%s\" requires a contact address", req->ca.name);
        return;
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)req->account.id);
    char *text = json_dumps(contact, JSON_COMPACT);
    const char *v[] = {id, text, json_is_true(tos) ? "true" : "false"};
    PGresult *res = text ? acme_sql(req->store, "acme_account_update", S_SQL_UPDATE, 3, v, NULL,
                                    NULL, "update an ACME account")
                         : NULL;
    free(text);
    if (!res) {
        json_decref(contact);
        acme_internal(req);
        return;
    }
    PQclear(res);
    json_decref(req->account.contact);
    req->account.contact = contact;
    req->account.tos_agreed = req->account.tos_agreed || json_is_true(tos);
    acme_account_reply(req, &req->account, MHD_HTTP_OK);
}

void acme_account_orders(acme_req_t *req)
{
    if (!s_own_account(req))
        return;
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)req->account.id);
    const char *v[] = {id};
    PGresult *res = acme_sql(req->store, "acme_account_orders", S_SQL_ORDERS, 1, v, NULL, NULL,
                             "list the orders of an ACME account");
    if (!res) {
        acme_internal(req);
        return;
    }
    json_t *list = json_array();
    for (int i = 0; list && i < PQntuples(res) && i < S_MAX_ORDERS; i++) {
        char url[ACME_URL_MAX];
        acme_object_url(req, "order", PQgetvalue(res, i, 0), NULL, url);
        json_array_append_new(list, json_string(url));
    }
    PQclear(res);
    acme_reply_json(req, MHD_HTTP_OK, list ? json_pack("{s:o}", "orders", list) : NULL);
}
