/* authz: the authorization URL (RFC 8555 7.5): read with POST-as-GET, or deactivated by its
 * account (7.5.2), which also ends its order (an order cannot become ready without it). An
 * authorization past its expiry is shown as "expired". */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "cf_log.h"

#define S_SQL_LOAD                                                                                 \
    "SELECT z.id, z.slug, z.value, z.wildcard, CASE WHEN z.status IN ('pending', 'valid') AND"     \
    " z.expires <= now() THEN 'expired' ELSE z.status END, floor(extract(epoch FROM z.expires)),"  \
    " o.id, o.account_id FROM acme_authorizations z JOIN acme_orders o ON o.id = z.order_id"       \
    " JOIN acme_accounts a ON a.id = o.account_id WHERE z.slug = $1 AND a.ca_id = $2"
#define S_SQL_CHALLS                                                                               \
    "SELECT slug, type, status, token, floor(extract(epoch FROM validated)), error::text"          \
    " FROM acme_challenges WHERE authorization_id = $1 ORDER BY id"
#define S_SQL_DEACTIVATE                                                                           \
    "UPDATE acme_authorizations SET status = 'deactivated' WHERE id = $1 AND status IN"            \
    " ('pending', 'valid') AND expires > now()"
#define S_SQL_END_ORDER                                                                            \
    "UPDATE acme_orders SET status = 'invalid', error = $2::jsonb WHERE id = $1 AND status IN"     \
    " ('pending', 'ready')"

json_t *acme_challenge_json(const acme_req_t *req, const char *slug, const char *type,
                            const char *status, const char *token, int64_t validated,
                            const char *error)
{
    char url[ACME_URL_MAX];
    acme_object_url(req, "chall", slug, NULL, url);
    json_t *doc = json_pack("{s:s, s:s, s:s, s:s}", "type", type, "url", url, "status", status,
                            "token", token);
    if (doc && validated && strcmp(status, "valid") == 0)
        json_object_set_new(doc, "validated", acme_time_json(validated));
    json_t *problem = error ? json_loads(error, 0, NULL) : NULL;
    if (doc && problem)
        json_object_set(doc, "error", problem);
    json_decref(problem);
    return doc;
}

int acme_authz_load(acme_req_t *req, const char *slug, acme_authz_t *out)
{
    memset(out, 0, sizeof *out);
    char ca_id[24];
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)req->ca.id);
    const char *v[] = {slug, ca_id};
    PGresult *res = acme_sql(req->store, "acme_authz_load", S_SQL_LOAD, 2, v, NULL, NULL,
                             "read an authorization");
    if (!res)
        return -1;
    int rc = 0;
    if (PQntuples(res) == 1) {
        out->id = acme_int(res, 0, 0);
        snprintf(out->slug, sizeof out->slug, "%s", PQgetvalue(res, 0, 1));
        snprintf(out->value, sizeof out->value, "%s", PQgetvalue(res, 0, 2));
        out->wildcard = PQgetvalue(res, 0, 3)[0] == 't';
        snprintf(out->status, sizeof out->status, "%s", PQgetvalue(res, 0, 4));
        out->expires = acme_int(res, 0, 5);
        out->order_id = acme_int(res, 0, 6);
        out->account_id = acme_int(res, 0, 7);
        rc = 1;
    }
    PQclear(res);
    return rc;
}

/* Reply with the authorization object (RFC 8555 7.1.4). */
static void s_reply(acme_req_t *req, const acme_authz_t *az)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)az->id);
    const char *v[] = {id};
    PGresult *res = acme_sql(req->store, "acme_authz_challs", S_SQL_CHALLS, 1, v, NULL, NULL,
                             "read an authorization's challenges");
    if (!res) {
        acme_internal(req);
        return;
    }
    json_t *challs = json_array();
    for (int i = 0; challs && i < PQntuples(res); i++)
        json_array_append_new(
            challs,
            acme_challenge_json(req, PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
                                PQgetvalue(res, i, 2), PQgetvalue(res, i, 3), acme_int(res, i, 4),
                                PQgetisnull(res, i, 5) ? NULL : PQgetvalue(res, i, 5)));
    PQclear(res);
    json_t *doc = challs ? json_pack("{s:{s:s, s:s}, s:s, s:o, s:o}", "identifier", "type", "dns",
                                     "value", az->value, "status", az->status, "expires",
                                     acme_time_json(az->expires), "challenges", challs)
                         : NULL;
    if (doc && az->wildcard)
        json_object_set_new(doc, "wildcard", json_true());
    if (strcmp(az->status, "pending") == 0)
        req->reply.retry_after = req->srv->settings.retry_after_s;
    acme_reply_json(req, MHD_HTTP_OK, doc);
}

static void s_deactivate(acme_req_t *req, acme_authz_t *az)
{
    char id[24], order_id[24];
    snprintf(id, sizeof id, "%lld", (long long)az->id);
    snprintf(order_id, sizeof order_id, "%lld", (long long)az->order_id);
    json_t *problem =
        acme_problem_new("unauthorized", 0, "an authorization of the order was deactivated");
    char *error = problem ? json_dumps(problem, JSON_COMPACT) : NULL;
    json_decref(problem);
    const char *v1[] = {id}, *v2[] = {order_id, error};
    PGresult *r1 = NULL, *r2 = NULL;
    bool ok = error && acme_begin(req->store) == 0 &&
              (r1 = acme_sql(req->store, "acme_authz_deactivate", S_SQL_DEACTIVATE, 1, v1, NULL,
                             NULL, "deactivate an authorization"));
    bool changed = ok && PQcmdTuples(r1)[0] == '1';
    ok = ok &&
         (!changed || (r2 = acme_sql(req->store, "acme_authz_end_order", S_SQL_END_ORDER, 2, v2,
                                     NULL, NULL, "end an order"))) &&
         acme_commit(req->store) == 0;
    PQclear(r1);
    PQclear(r2);
    free(error);
    if (!ok) {
        acme_rollback(req->store);
        acme_internal(req);
        return;
    }
    if (!changed) {
        acme_problem(req, "malformed", 0, "an authorization that is %s cannot be deactivated",
                     az->status);
        return;
    }
    cf_audit("acme.authz.deactivate", "ca", req->ca.name, "account", req->account.slug,
             "authorization", az->slug, "identifier", az->value, NULL);
    snprintf(az->status, sizeof az->status, "deactivated");
    s_reply(req, az);
}

void acme_authz_post(acme_req_t *req)
{
    acme_authz_t az;
    int found = acme_authz_load(req, req->slug, &az);
    if (found < 0) {
        acme_internal(req);
        return;
    }
    if (found == 0) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND, "no such authorization");
        return;
    }
    if (az.account_id != req->account.id) {
        acme_problem(req, "unauthorized", 0, "the authorization belongs to another account");
        return;
    }
    if (acme_post_as_get(req)) {
        s_reply(req, &az);
        return;
    }
    const json_t *payload = acme_payload(req);
    if (!payload)
        return;
    const json_t *status = json_object_get(payload, "status");
    if (!status && json_object_size(payload) == 0) {
        s_reply(req, &az); /* "{}" changes nothing */
        return;
    }
    if (!json_is_string(status) || strcmp(json_string_value(status), "deactivated") != 0) {
        acme_problem(req, "malformed", 0,
                     "an authorization's \"status\" can only become \"deactivated\"");
        return;
    }
    s_deactivate(req, &az);
}
