/* order: newOrder (RFC 8555 7.4) and the order URL. An order gets one authorization per
 * distinct identifier and each authorization the challenges its identifier allows (http-01,
 * dns-01 and tls-alpn-01; dns-01 alone for a wildcard, 7.1.3), all written in one
 * transaction that also counts the account's open orders against max_pending_orders under
 * a lock of the account row, so that concurrent requests cannot pass the limit. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "acme.h"
#include "cf_log.h"

#define S_MAX_IDENTIFIERS 100  /* distinct identifiers in one order */
#define S_MAX_RAW         1000 /* identifiers in the request, duplicates included */

#define S_SQL_LOCK_ACCOUNT "SELECT id FROM acme_accounts WHERE id = $1 FOR UPDATE"
#define S_SQL_OPEN_ORDERS                                                                          \
    "SELECT count(*) FROM acme_orders WHERE account_id = $1 AND (status = 'processing' OR"         \
    " (status IN ('pending', 'ready') AND expires > now()))"
#define S_SQL_INSERT_ORDER                                                                         \
    "INSERT INTO acme_orders (account_id, slug, expires, not_before, not_after) VALUES ($1, $2,"   \
    " now() + $3::bigint * interval '1 second', to_timestamp($4::bigint), "                        \
    "to_timestamp($5::bigint))"                                                                    \
    " RETURNING id, expires"
/* Slugs and names are base64url and LDH: array literals of them need no quoting. */
#define S_SQL_INSERT_AUTHZ                                                                         \
    "INSERT INTO acme_authorizations (order_id, slug, value, wildcard, expires)"                   \
    " SELECT $1, t.s, t.v, t.w, $2::timestamptz FROM unnest($3::text[], $4::text[],"               \
    " $5::boolean[]) AS t(s, v, w)"
#define S_SQL_INSERT_CHALL                                                                         \
    "INSERT INTO acme_challenges (authorization_id, slug, type, token) SELECT z.id, t.s, t.ty,"    \
    " t.tok FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) AS t(a, s, ty, tok)"       \
    " JOIN acme_authorizations z ON z.slug = t.a"
#define S_SQL_LOAD                                                                                 \
    "SELECT o.id, o.account_id, o.slug, CASE WHEN o.status IN ('pending', 'ready') AND"            \
    " o.expires <= now() THEN 'invalid' ELSE o.status END, floor(extract(epoch FROM o.expires)),"  \
    " floor(extract(epoch FROM o.not_before)), floor(extract(epoch FROM o.not_after)),"            \
    " o.error::text, c.slug, c.certificate_id IS NOT NULL FROM acme_orders o JOIN acme_accounts a" \
    " ON a.id = o.account_id LEFT JOIN acme_certificates c ON c.order_id = o.id"                   \
    " WHERE o.slug = $1 AND a.ca_id = $2"
#define S_SQL_AUTHZS                                                                               \
    "SELECT slug, value, wildcard FROM acme_authorizations WHERE order_id = $1 ORDER BY id"

/* One identifier of a new order. */
typedef struct {
    char name[ACME_NAME_MAX]; /* lower case, "*." kept for a wildcard */
    char slug[ACME_SLUG_MAX]; /* its authorization's slug */
} s_ident_t;

void acme_order_clear(acme_order_t *order)
{
    free(order->error);
    memset(order, 0, sizeof *order);
}

int acme_order_load(acme_req_t *req, const char *slug, acme_order_t *out)
{
    memset(out, 0, sizeof *out);
    char ca_id[24];
    snprintf(ca_id, sizeof ca_id, "%lld", (long long)req->ca.id);
    const char *v[] = {slug, ca_id};
    PGresult *res =
        acme_sql(req->store, "acme_order_load", S_SQL_LOAD, 2, v, NULL, NULL, "read an order");
    if (!res)
        return -1;
    int rc = 0;
    if (PQntuples(res) == 1) {
        out->id = acme_int(res, 0, 0);
        out->account_id = acme_int(res, 0, 1);
        snprintf(out->slug, sizeof out->slug, "%s", PQgetvalue(res, 0, 2));
        snprintf(out->status, sizeof out->status, "%s", PQgetvalue(res, 0, 3));
        out->expires = acme_int(res, 0, 4);
        out->not_before = acme_int(res, 0, 5);
        out->not_after = acme_int(res, 0, 6);
        if (!PQgetisnull(res, 0, 7))
            out->error = strdup(PQgetvalue(res, 0, 7));
        snprintf(out->cert_slug, sizeof out->cert_slug, "%s", PQgetvalue(res, 0, 8));
        out->cert_issued = PQgetvalue(res, 0, 9)[0] == 't';
        rc = 1;
    }
    PQclear(res);
    return rc;
}

void acme_order_reply(acme_req_t *req, const acme_order_t *order, unsigned int status)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)order->id);
    const char *v[] = {id};
    PGresult *res = acme_sql(req->store, "acme_order_authzs", S_SQL_AUTHZS, 1, v, NULL, NULL,
                             "read an order's authorizations");
    if (!res) {
        acme_internal(req);
        return;
    }
    json_t *idents = json_array(), *authzs = json_array();
    for (int i = 0; idents && authzs && i < PQntuples(res); i++) {
        char name[ACME_NAME_MAX + 2], url[ACME_URL_MAX];
        bool wildcard = PQgetvalue(res, i, 2)[0] == 't';
        snprintf(name, sizeof name, "%s%s", wildcard ? "*." : "", PQgetvalue(res, i, 1));
        acme_object_url(req, "authz", PQgetvalue(res, i, 0), NULL, url);
        json_array_append_new(idents, json_pack("{s:s, s:s}", "type", "dns", "value", name));
        json_array_append_new(authzs, json_string(url));
    }
    PQclear(res);
    char finalize[ACME_URL_MAX];
    acme_object_url(req, "order", order->slug, "finalize", finalize);
    json_t *doc = idents && authzs
                      ? json_pack("{s:s, s:o, s:O, s:O, s:s}", "status", order->status, "expires",
                                  acme_time_json(order->expires), "identifiers", idents,
                                  "authorizations", authzs, "finalize", finalize)
                      : NULL;
    json_decref(idents);
    json_decref(authzs);
    if (doc && order->not_before)
        json_object_set_new(doc, "notBefore", acme_time_json(order->not_before));
    if (doc && order->not_after)
        json_object_set_new(doc, "notAfter", acme_time_json(order->not_after));
    if (doc && order->cert_issued && strcmp(order->status, "valid") == 0) {
        char cert[ACME_URL_MAX];
        acme_object_url(req, "cert", order->cert_slug, NULL, cert);
        json_object_set_new(doc, "certificate", json_string(cert));
    }
    json_t *error = order->error ? json_loads(order->error, 0, NULL) : NULL;
    if (doc && error && strcmp(order->status, "invalid") == 0)
        json_object_set(doc, "error", error);
    json_decref(error);
    /* RFC 8555 7.4: tell a polling client when to look again. */
    if (strcmp(order->status, "pending") == 0 || strcmp(order->status, "processing") == 0)
        req->reply.retry_after = req->srv->settings.retry_after_s;
    acme_reply_json(req, status, doc);
}

/* RFC 3339 date-time ("2024-05-01T12:00:00Z", "...T12:00:00.5+02:00") as Unix seconds.
 * 0 or -1. */
static int s_parse_time(const char *text, int64_t *out)
{
    struct tm tm = {0};
    const char *p = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!p || strlen(text) < 19 || !isdigit((unsigned char)text[0]))
        return -1;
    if (*p == '.') {
        p++;
        if (!isdigit((unsigned char)*p))
            return -1;
        while (isdigit((unsigned char)*p))
            p++;
    }
    int64_t offset = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if ((*p == '+' || *p == '-') && isdigit((unsigned char)p[1]) &&
               isdigit((unsigned char)p[2]) && p[3] == ':' && isdigit((unsigned char)p[4]) &&
               isdigit((unsigned char)p[5])) {
        int hh = (p[1] - '0') * 10 + (p[2] - '0'), mm = (p[4] - '0') * 10 + (p[5] - '0');
        if (hh > 23 || mm > 59)
            return -1;
        offset = (*p == '+' ? 1 : -1) * (int64_t)(hh * 3600 + mm * 60);
        p += 6;
    } else {
        return -1;
    }
    if (*p != '\0')
        return -1;
    *out = (int64_t)timegm(&tm) - offset;
    return 0;
}

/* The optional time member KEY of PAYLOAD into *OUT (0 when absent). 0, or -1 with the
 * problem set. */
static int s_time_member(acme_req_t *req, const json_t *payload, const char *key, int64_t *out)
{
    *out = 0;
    const json_t *v = json_object_get(payload, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_string(v) || s_parse_time(json_string_value(v), out) != 0 || *out <= 0) {
        acme_problem(req, "malformed", 0, "\"%s\" is not an RFC 3339 date-time", key);
        return -1;
    }
    return 0;
}

/* The distinct identifiers of PAYLOAD into IDS (S_MAX_IDENTIFIERS), their count in *N. 0, or
 * -1 with the problem set (subproblems name each identifier refused, RFC 8555 6.7.1). */
static int s_identifiers(acme_req_t *req, const json_t *payload, s_ident_t *ids, size_t *n)
{
    const json_t *list = json_object_get(payload, "identifiers");
    if (!json_is_array(list) || json_array_size(list) == 0 || json_array_size(list) > S_MAX_RAW) {
        acme_problem(req, "malformed", 0, "\"identifiers\" is a list of 1 to %d identifiers",
                     S_MAX_IDENTIFIERS);
        return -1;
    }
    json_t *subproblems = json_array();
    const char *first_type = NULL;
    char first_detail[256] = "";
    size_t i;
    const json_t *item;
    *n = 0;
    json_array_foreach(list, i, item)
    {
        const json_t *type = json_object_get(item, "type");
        const json_t *value = json_object_get(item, "value");
        if (!json_is_object(item) || !json_is_string(type) || !json_is_string(value)) {
            json_decref(subproblems);
            acme_problem(req, "malformed", 0, "an identifier is {\"type\", \"value\"}");
            return -1;
        }
        const char *why_type = NULL;
        char why[160] = "", name[ACME_NAME_MAX];
        const char *text = json_string_value(value);
        if (strcmp(json_string_value(type), "dns") != 0) {
            why_type = "unsupportedIdentifier";
            snprintf(why, sizeof why, "identifier type \"%.32s\" is not supported (only \"dns\")",
                     json_string_value(type));
        } else if (json_string_length(value) != strlen(text) ||
                   acme_name_check(text, name, why, sizeof why) != 0) {
            why_type = "rejectedIdentifier";
        }
        if (why_type) {
            char detail[256];
            snprintf(detail, sizeof detail, "\"%.100s\": %s", text, why);
            json_t *sub = acme_problem_new(why_type, 0, detail);
            if (sub) {
                json_object_del(sub, "status");
                json_object_set_new(
                    sub, "identifier",
                    json_pack("{s:s, s:s}", "type", json_string_value(type), "value", text));
                json_array_append_new(subproblems, sub);
            }
            if (!first_type) {
                first_type = why_type;
                snprintf(first_detail, sizeof first_detail, "%s", detail);
            }
            continue;
        }
        bool dup = false;
        for (size_t k = 0; k < *n && !dup; k++)
            dup = strcmp(ids[k].name, name) == 0;
        if (dup)
            continue;
        if (*n == S_MAX_IDENTIFIERS) {
            json_decref(subproblems);
            acme_problem(req, "rejectedIdentifier", 0, "an order has at most %d identifiers",
                         S_MAX_IDENTIFIERS);
            return -1;
        }
        memcpy(ids[*n].name, name, sizeof name);
        (*n)++;
    }
    if (first_type) {
        size_t count = json_array_size(subproblems);
        json_t *problem =
            count > 1 ? acme_problem_new("rejectedIdentifier", 0,
                                         "some identifiers cannot be ordered; see subproblems")
                      : acme_problem_new(first_type, 0, first_detail);
        /* Several refusals of mixed kinds: the top type is the common one, rejectedIdentifier,
         * unless every refusal is unsupportedIdentifier. */
        if (problem && count > 1) {
            bool all_unsupported = true;
            size_t k;
            json_t *sub;
            json_array_foreach(subproblems, k, sub) all_unsupported =
                all_unsupported && strstr(json_string_value(json_object_get(sub, "type")),
                                          "unsupportedIdentifier") != NULL;
            if (all_unsupported)
                json_object_set_new(
                    problem, "type",
                    json_string("urn:ietf:params:acme:error:unsupportedIdentifier"));
            json_object_set(problem, "subproblems", subproblems);
        }
        json_decref(subproblems);
        acme_problem_send(req, problem);
        return -1;
    }
    json_decref(subproblems);
    return 0;
}

/* A PostgreSQL array literal "{a,b,...}" being built. */
typedef struct {
    char *text; /* the literal so far */
    size_t len; /* its length */
    size_t cap; /* allocated */
    size_t n;   /* items */
} s_lit_t;

/* Room for MORE bytes and a NUL. 0 or -1. */
static int s_lit_grow(s_lit_t *lit, size_t more)
{
    if (lit->len + more + 1 <= lit->cap)
        return 0;
    size_t c = lit->cap ? lit->cap * 2 : 256;
    while (c < lit->len + more + 1)
        c *= 2;
    char *t = realloc(lit->text, c);
    if (!t)
        return -1;
    lit->text = t;
    lit->cap = c;
    return 0;
}

static int s_lit_open(s_lit_t *lit)
{
    memset(lit, 0, sizeof *lit);
    if (s_lit_grow(lit, 1) != 0)
        return -1;
    strcpy(lit->text, "{");
    lit->len = 1;
    return 0;
}

/* Append ITEM (characters that need no quoting). 0 or -1. */
static int s_lit_item(s_lit_t *lit, const char *item)
{
    size_t n = strlen(item);
    if (s_lit_grow(lit, n + 1) != 0)
        return -1;
    if (lit->n++ > 0)
        lit->text[lit->len++] = ',';
    memcpy(lit->text + lit->len, item, n + 1);
    lit->len += n;
    return 0;
}

static int s_lit_close(s_lit_t *lit)
{
    if (s_lit_grow(lit, 1) != 0)
        return -1;
    lit->text[lit->len++] = '}';
    lit->text[lit->len] = '\0';
    return 0;
}

/* Write the order, its authorizations and their challenges. 1 written (slug in ORDER_SLUG),
 * 0 refused for the open-orders limit, -1 store error. */
static int s_write(acme_req_t *req, const s_ident_t *ids, size_t n, int64_t not_before,
                   int64_t not_after, char order_slug[ACME_SLUG_MAX])
{
    static const char *const all_types[] = {"http-01", "dns-01", "tls-alpn-01"};
    int rc = -1;
    PGresult *res = NULL;
    s_lit_t az_slug, az_value, az_wild, ch_az, ch_slug, ch_type, ch_token;
    s_lit_t *lits[] = {&az_slug, &az_value, &az_wild, &ch_az, &ch_slug, &ch_type, &ch_token};
    bool lits_ok = true;
    for (size_t i = 0; i < 7; i++)
        lits_ok = s_lit_open(lits[i]) == 0 && lits_ok;
    for (size_t i = 0; lits_ok && i < n; i++) {
        bool wildcard = strncmp(ids[i].name, "*.", 2) == 0;
        char slug[ACME_SLUG_MAX];
        lits_ok = acme_random_slug(slug) == 0 && s_lit_item(&az_slug, slug) == 0 &&
                  s_lit_item(&az_value, ids[i].name + (wildcard ? 2 : 0)) == 0 &&
                  s_lit_item(&az_wild, wildcard ? "t" : "f") == 0;
        for (size_t t = wildcard ? 1 : 0; lits_ok && t < (wildcard ? 2u : 3u); t++) {
            char cslug[ACME_SLUG_MAX], token[ACME_SLUG_MAX];
            lits_ok = acme_random_slug(cslug) == 0 && acme_random_token(token) == 0 &&
                      s_lit_item(&ch_az, slug) == 0 && s_lit_item(&ch_slug, cslug) == 0 &&
                      s_lit_item(&ch_type, all_types[t]) == 0 && s_lit_item(&ch_token, token) == 0;
        }
    }
    for (size_t i = 0; lits_ok && i < 7; i++)
        lits_ok = s_lit_close(lits[i]) == 0;
    if (!lits_ok || acme_random_slug(order_slug) != 0)
        goto out;

    char acct[24], lifetime[24], nb[24], na[24], order_id[24], expires[64];
    snprintf(acct, sizeof acct, "%lld", (long long)req->account.id);
    snprintf(lifetime, sizeof lifetime, "%lld", (long long)req->srv->settings.order_lifetime_s);
    snprintf(nb, sizeof nb, "%lld", (long long)not_before);
    snprintf(na, sizeof na, "%lld", (long long)not_after);
    const char *va[] = {acct};
    const char *vo[] = {acct, order_slug, lifetime, not_before ? nb : NULL, not_after ? na : NULL};
    if (acme_begin(req->store) != 0)
        goto out;
    if (!(res = acme_sql(req->store, "acme_order_lock", S_SQL_LOCK_ACCOUNT, 1, va, NULL, NULL,
                         "lock an ACME account")))
        goto out;
    PQclear(res);
    if (!(res = acme_sql(req->store, "acme_order_open", S_SQL_OPEN_ORDERS, 1, va, NULL, NULL,
                         "count open orders")))
        goto out;
    if (acme_int(res, 0, 0) >= req->srv->settings.max_pending_orders) {
        rc = 0;
        goto out;
    }
    PQclear(res);
    if (!(res = acme_sql(req->store, "acme_order_insert", S_SQL_INSERT_ORDER, 5, vo, NULL, NULL,
                         "create an order")))
        goto out;
    snprintf(order_id, sizeof order_id, "%s", PQgetvalue(res, 0, 0));
    snprintf(expires, sizeof expires, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    const char *vz[] = {order_id, expires, az_slug.text, az_value.text, az_wild.text};
    if (!(res = acme_sql(req->store, "acme_order_authzs_insert", S_SQL_INSERT_AUTHZ, 5, vz, NULL,
                         NULL, "create authorizations")))
        goto out;
    PQclear(res);
    const char *vc[] = {ch_az.text, ch_slug.text, ch_type.text, ch_token.text};
    if (!(res = acme_sql(req->store, "acme_order_challs_insert", S_SQL_INSERT_CHALL, 4, vc, NULL,
                         NULL, "create challenges")))
        goto out;
    PQclear(res);
    res = NULL;
    if (acme_commit(req->store) != 0)
        goto out;
    rc = 1;
out:
    PQclear(res);
    if (rc != 1)
        acme_rollback(req->store);
    for (size_t i = 0; i < 7; i++)
        free(lits[i]->text);
    return rc;
}

void acme_new_order(acme_req_t *req)
{
    const json_t *payload = acme_payload(req);
    if (!payload)
        return;
    s_ident_t *ids = calloc(S_MAX_IDENTIFIERS, sizeof *ids);
    size_t n = 0;
    int64_t not_before, not_after, now = (int64_t)time(NULL);
    acme_order_t order = {0};
    char slug[ACME_SLUG_MAX];
    if (!ids) {
        acme_internal(req);
        return;
    }
    if (s_identifiers(req, payload, ids, &n) != 0 ||
        s_time_member(req, payload, "notBefore", &not_before) != 0 ||
        s_time_member(req, payload, "notAfter", &not_after) != 0)
        goto out;
    /* A certificate starts when it is signed: a notBefore in the future cannot be kept. */
    if (not_before > now + 60) {
        acme_problem(req, "malformed", 0, "\"notBefore\" may not be in the future");
        goto out;
    }
    if (not_after && (not_after <= now || (not_before && not_after <= not_before))) {
        acme_problem(req, "malformed", 0,
                     "\"notAfter\" must be in the future and after "
                     "\"notBefore\"");
        goto out;
    }
    int written = s_write(req, ids, n, not_before, not_after, slug);
    if (written < 0) {
        acme_internal(req);
        goto out;
    }
    if (written == 0) {
        req->reply.retry_after = 60;
        acme_problem(req, "rateLimited", 0, "the account has %lld open orders, the most allowed",
                     (long long)req->srv->settings.max_pending_orders);
        goto out;
    }
    if (acme_order_load(req, slug, &order) != 1) {
        acme_internal(req);
        goto out;
    }
    cf_log_info("order \"%s\" of account \"%s\" (CA \"%s\"): %zu identifiers", slug,
                req->account.slug, req->ca.name, n);
    acme_object_url(req, "order", slug, NULL, req->reply.location);
    acme_order_reply(req, &order, MHD_HTTP_CREATED);
out:
    acme_order_clear(&order);
    free(ids);
}

void acme_order_post(acme_req_t *req)
{
    if (!acme_post_as_get(req)) {
        acme_problem(req, "malformed", 0, "an order is read with POST-as-GET (empty payload)");
        return;
    }
    acme_order_t order;
    int found = acme_order_load(req, req->slug, &order);
    if (found < 0) {
        acme_internal(req);
        return;
    }
    if (found == 0) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND, "no such order");
        return;
    }
    if (order.account_id != req->account.id) {
        acme_problem(req, "unauthorized", 0, "the order belongs to another account");
    } else {
        if (strcmp(order.status, "processing") == 0)
            acme_finalize_resume(req, &order);
        acme_order_reply(req, &order, MHD_HTTP_OK);
    }
    acme_order_clear(&order);
}
