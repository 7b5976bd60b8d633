/* acme.validate: validate one ACME challenge and move the challenge, its authorization and its
 * order on as RFC 8555 7.1.6 draws them (schemas/jobs.md, docs/validator.md).
 *
 * Pure handler: no transaction is open while the network check runs (it may take
 * [validator] timeout_ms). A Redis lock per challenge keeps two workers from checking one
 * challenge at once; the verdict is written in one short transaction at the end that
 * changes the challenge only while it is still "processing", so a second run, with or
 * without the lock, can never overwrite a verdict. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_jws.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_msgpack.h"
#include "cf_params.h"
#include "validator.h"

#define S_LOCK_WAIT_MS  5000  /* how long a second job waits for the first one's verdict */
#define S_LOCK_SLACK_MS 30000 /* lock TTL beyond the check's own timeout */
#define S_SLUG_MAX      128
#define S_KEYAUTH_MAX   256
#define S_URN           "urn:ietf:params:acme:error:"

static const char *const s_allowed[] = {"challenge", NULL};

/* The challenge with its authorization, order and account, in one query. */
static const char s_load_sql[] =
    "SELECT c.id, c.type, c.status, c.token, c.error::text, "
    "a.id, a.value, a.wildcard, a.status, a.expires <= now(), "
    "o.id, o.status, o.expires <= now(), acc.jwk::text, acc.status, btrim(ca.caa) "
    "FROM acme_challenges c JOIN acme_authorizations a ON a.id = c.authorization_id "
    "JOIN acme_orders o ON o.id = a.order_id JOIN acme_accounts acc ON acc.id = o.account_id "
    "JOIN certificate_authorities ca ON ca.id = acc.ca_id WHERE c.slug = $1";
enum {
    S_C_ID,
    S_C_TYPE,
    S_C_STATUS,
    S_C_TOKEN,
    S_C_ERROR,
    S_A_ID,
    S_A_VALUE,
    S_A_WILDCARD,
    S_A_STATUS,
    S_A_EXPIRED,
    S_O_ID,
    S_O_STATUS,
    S_O_EXPIRED,
    S_ACC_JWK,
    S_ACC_STATUS,
    S_CA_CAA,
};

/* Two challenges of one order may finish at once on two workers: the order row is locked
 * first, so that the second transaction sees the first one's authorization when it asks
 * whether every authorization is valid. */
static const char s_lock_order_sql[] = "SELECT 1 FROM acme_orders WHERE id = $1 FOR UPDATE";
static const char s_challenge_sql[] =
    "UPDATE acme_challenges SET status = $2, "
    "validated = CASE WHEN $2 = 'valid' THEN now() END, error = $3::jsonb "
    "WHERE id = $1 AND status = 'processing'";
/* pending -> valid | invalid | expired; valid -> expired (RFC 8555 7.1.6). */
static const char s_authz_sql[] =
    "UPDATE acme_authorizations SET status = $2 "
    "WHERE id = $1 AND (status = 'pending' OR ($2 = 'expired' AND status = 'valid'))";
/* pending -> ready once every authorization of the order is valid. */
static const char s_order_ready_sql[] =
    "UPDATE acme_orders o SET status = 'ready' WHERE o.id = $1 AND o.status = 'pending' "
    "AND o.expires > now() AND NOT EXISTS (SELECT 1 FROM acme_authorizations a "
    "WHERE a.order_id = o.id AND a.status <> 'valid')";
/* pending | ready -> invalid, on an authorization failure or the order's expiry. */
static const char s_order_invalid_sql[] =
    "UPDATE acme_orders SET status = 'invalid', error = $2::jsonb "
    "WHERE id = $1 AND status IN ('pending', 'ready')";

/* What the verdict does to the authorization and the order. */
typedef enum {
    S_VALID,         /* challenge valid, authz valid, order ready when all are */
    S_INVALID,       /* challenge invalid, authz invalid, order invalid */
    S_AUTHZ_EXPIRED, /* challenge invalid, authz expired, order invalid */
    S_ORDER_EXPIRED, /* challenge invalid, order invalid; the authz keeps its own clock */
    S_DETACHED,      /* challenge invalid only: its authorization is no longer pending */
} s_outcome_t;

static void s_alive(void *arg)
{
    cf_handler_ctx_t *ctx = arg;
    cf_worker_keepalive(ctx->worker);
}

static bool s_true(const PGresult *res, int col)
{
    return !PQgetisnull(res, 0, col) && PQgetvalue(res, 0, col)[0] == 't';
}

/* Load the rows of SLUG. 1 found (*RES, caller clears), 0 unknown (err set), -1 err. */
static int s_load(cf_handler_ctx_t *ctx, const char *slug, PGresult **res, cf_error_t *err)
{
    cf_pg_prepare(ctx->pg, "validator_load", s_load_sql);
    const char *values[1] = {slug};
    *res = cf_pg_exec_prepared(ctx->pg, "validator_load", 1, values, NULL, NULL, 0);
    if (!*res) {
        cf_log_error("could not load challenge \"%s\": %s", slug, cf_pg_errstr(ctx->pg));
        cf_error_set(err, "unavailable", "", "the database is unavailable");
        return -1;
    }
    if (PQntuples(*res) != 1) {
        PQclear(*res);
        *res = NULL;
        cf_error_set(err, "unknown_challenge", "params.challenge", "no challenge \"%s\"", slug);
        return 0;
    }
    return 1;
}

/* Pack {challenge, status, error} with ERROR_TEXT a JSON text or NULL. */
static void s_pack_result(msgpack_packer *pk, const char *slug, const char *status,
                          const char *error_text)
{
    json_t *error = error_text ? json_loads(error_text, 0, NULL) : NULL;
    msgpack_pack_map(pk, 3);
    cf_msgpack_pack_cstr(pk, "challenge");
    cf_msgpack_pack_cstr(pk, slug);
    cf_msgpack_pack_cstr(pk, "status");
    cf_msgpack_pack_cstr(pk, status);
    cf_msgpack_pack_cstr(pk, "error");
    if (!error || cf_json_to_msgpack(error, pk) != 0)
        msgpack_pack_nil(pk);
    json_decref(error);
}

/* Answer with what the row says now (a challenge that is not processing). */
static int s_answer_current(msgpack_packer *pk, const char *slug, const PGresult *res)
{
    s_pack_result(pk, slug, PQgetvalue(res, 0, S_C_STATUS),
                  PQgetisnull(res, 0, S_C_ERROR) ? NULL : PQgetvalue(res, 0, S_C_ERROR));
    return 0;
}

/* A DNS name of letters, digits and hyphens, as http-01 URLs and DNS queries need it. */
static bool s_dns_name_ok(const char *name)
{
    size_t n = strlen(name), label = 0;
    if (n == 0 || n > 253)
        return false;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)name[i];
        if (c == '.') {
            if (label == 0)
                return false;
            label = 0;
            continue;
        }
        if (!isalnum(c) && c != '-' && c != '_')
            return false;
        if (++label > 63)
            return false;
    }
    return label > 0;
}

/* A problem document (RFC 7807) as JSON text; caller frees. */
static char *s_problem_text(const char *type, const char *detail)
{
    char urn[96];
    snprintf(urn, sizeof urn, S_URN "%s", type);
    json_t *doc =
        json_pack("{s:s, s:s, s:i}", "type", urn, "detail", detail, "status",
                  strcmp(type, "unauthorized") == 0 || strcmp(type, "caa") == 0 ? 403 : 400);
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    return text;
}

/* Run one statement of the verdict's transaction. Affected rows, or -1. */
static int s_exec(cf_handler_ctx_t *ctx, const char *sql, int n, const char *const *values)
{
    PGresult *res = cf_pg_exec_params(ctx->pg, sql, n, values, NULL, NULL, 0);
    if (!res)
        return -1;
    int rows = atoi(PQcmdTuples(res));
    PQclear(res);
    return rows;
}

/* Write the verdict. 1 written, 0 the challenge was no longer processing (nothing written),
 * -1 database error (err set). */
static int s_write(cf_handler_ctx_t *ctx, const PGresult *row, s_outcome_t outcome,
                   const char *problem, const char *order_problem, cf_error_t *err)
{
    const char *challenge_id = PQgetvalue(row, 0, S_C_ID);
    const char *authz_id = PQgetvalue(row, 0, S_A_ID);
    const char *order_id = PQgetvalue(row, 0, S_O_ID);
    if (cf_pg_begin(ctx->pg) != 0)
        goto fail;
    const char *lock_values[1] = {order_id};
    if (s_exec(ctx, s_lock_order_sql, 1, lock_values) < 0)
        goto fail;
    const char *c_values[3] = {challenge_id, outcome == S_VALID ? "valid" : "invalid", problem};
    int changed = s_exec(ctx, s_challenge_sql, 3, c_values);
    if (changed < 0)
        goto fail;
    if (changed == 0) {
        cf_pg_rollback(ctx->pg);
        return 0;
    }
    const char *authz_status = outcome == S_VALID           ? "valid"
                               : outcome == S_INVALID       ? "invalid"
                               : outcome == S_AUTHZ_EXPIRED ? "expired"
                                                            : NULL;
    if (authz_status) {
        const char *a_values[2] = {authz_id, authz_status};
        if (s_exec(ctx, s_authz_sql, 2, a_values) < 0)
            goto fail;
    }
    if (outcome == S_VALID) {
        const char *o_values[1] = {order_id};
        if (s_exec(ctx, s_order_ready_sql, 1, o_values) < 0)
            goto fail;
    } else if (outcome != S_DETACHED) {
        const char *o_values[2] = {order_id, order_problem};
        if (s_exec(ctx, s_order_invalid_sql, 2, o_values) < 0)
            goto fail;
    }
    if (cf_pg_commit(ctx->pg) != 0)
        goto fail;
    return 1;
fail:
    cf_log_error("could not record the verdict on challenge %s: %s", challenge_id,
                 cf_pg_errstr(ctx->pg));
    if (cf_pg_in_transaction(ctx->pg))
        cf_pg_rollback(ctx->pg);
    cf_error_set(err, "unavailable", "", "the database is unavailable");
    return -1;
}

/* After a passed challenge: the CAA records must allow the order's CA to issue for the name
 * (caa.c). Skipped when [validator] caa_check is off or the CA has no CAA identity; *CAA
 * says which, for the audit line. 1 allowed, 0 refused (PROBLEM set), -1 err. */
static int s_caa(cf_handler_ctx_t *ctx, const PGresult *row, const validator_check_t *passed,
                 const char **caa, validator_problem_t *problem, cf_error_t *err)
{
    const validator_config_t *cfg = validator_config(ctx);
    const char *identity = PQgetvalue(row, 0, S_CA_CAA);
    if (!cfg->caa_check) {
        *caa = "skipped ([validator] caa_check off)";
        return 1;
    }
    if (*identity == '\0') {
        *caa = "skipped (the CA has no CAA identity)";
        return 1;
    }
    /* Its own timeout_ms: the challenge may have used up most of its own. */
    validator_check_t check = *passed;
    check.deadline = cf_mono_ms() + (uint64_t)cfg->timeout_ms;
    int rc = validator_caa(&check, identity, s_true(row, S_A_WILDCARD), problem, err);
    *caa = rc == 1 ? "allowed" : "refused";
    return rc;
}

/* Decide what happens to a processing challenge: check it, unless its authorization, order
 * or account already settle it. 0 with *OUTCOME and PROBLEM, -1 err. */
static int s_judge(cf_handler_ctx_t *ctx, const PGresult *row, s_outcome_t *outcome,
                   validator_problem_t *problem, const char **caa, cf_error_t *err)
{
    const char *type = PQgetvalue(row, 0, S_C_TYPE);
    const char *name = PQgetvalue(row, 0, S_A_VALUE);
    const char *authz_status = PQgetvalue(row, 0, S_A_STATUS);
    *outcome = S_INVALID;
    if (strcmp(authz_status, "pending") != 0) {
        *outcome = S_DETACHED;
        validator_problem(problem, "unauthorized", "the authorization of \"%s\" is %s, not pending",
                          name, authz_status);
        return 0;
    }
    if (s_true(row, S_A_EXPIRED)) {
        *outcome = S_AUTHZ_EXPIRED;
        validator_problem(problem, "unauthorized", "the authorization of \"%s\" has expired", name);
        return 0;
    }
    if (s_true(row, S_O_EXPIRED)) {
        *outcome = S_ORDER_EXPIRED;
        validator_problem(problem, "unauthorized", "the order of \"%s\" has expired", name);
        return 0;
    }
    if (strcmp(PQgetvalue(row, 0, S_O_STATUS), "pending") != 0) {
        *outcome = S_DETACHED;
        validator_problem(problem, "unauthorized", "the order of \"%s\" is %s, not pending", name,
                          PQgetvalue(row, 0, S_O_STATUS));
        return 0;
    }
    if (strcmp(PQgetvalue(row, 0, S_ACC_STATUS), "valid") != 0) {
        validator_problem(problem, "unauthorized", "the account is %s",
                          PQgetvalue(row, 0, S_ACC_STATUS));
        return 0;
    }
    if (s_true(row, S_A_WILDCARD) && strcmp(type, "dns-01") != 0) {
        validator_problem(problem, "unauthorized",
                          "a wildcard name (\"*.%s\") can only be validated with dns-01, not %s",
                          name, type);
        return 0;
    }
    if (!s_dns_name_ok(name)) {
        validator_problem(problem, "unauthorized", "\"%s\" is not a DNS name that can be checked",
                          name);
        return 0;
    }
    json_t *jwk = json_loads(PQgetvalue(row, 0, S_ACC_JWK), 0, NULL);
    char keyauth[S_KEYAUTH_MAX];
    int made =
        jwk ? cf_acme_key_authorization(PQgetvalue(row, 0, S_C_TOKEN), jwk, keyauth, sizeof keyauth)
            : -1;
    json_decref(jwk);
    if (made != 0) {
        /* A token or key that the front stored should always work: not the applicant's
         * fault, so the challenge is left as it is. */
        cf_log_error("no key authorization for challenge %s (bad token or account key)",
                     PQgetvalue(row, 0, S_C_ID));
        cf_error_set(err, "internal", "", "could not compute the key authorization");
        return -1;
    }
    const validator_config_t *cfg = validator_config(ctx);
    validator_check_t check = {
        .config = cfg,
        .name = name,
        .token = PQgetvalue(row, 0, S_C_TOKEN),
        .key_authorization = keyauth,
        .deadline = cf_mono_ms() + (uint64_t)cfg->timeout_ms,
        .alive = s_alive,
        .alive_arg = ctx,
    };
    int rc;
    if (strcmp(type, "http-01") == 0)
        rc = validator_http01(&check, problem, err);
    else if (strcmp(type, "dns-01") == 0)
        rc = validator_dns01(&check, problem, err);
    else if (strcmp(type, "tls-alpn-01") == 0)
        rc = validator_tlsalpn01(&check, problem, err);
    else {
        cf_error_set(err, "internal", "", "unknown challenge type \"%s\"", type);
        return -1;
    }
    if (rc == 1)
        rc = s_caa(ctx, row, &check, caa, problem, err);
    if (rc < 0)
        return -1;
    *outcome = rc == 1 ? S_VALID : S_INVALID;
    return 0;
}

int validator_acme_validate(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                            cf_error_t *err)
{
    int rc = -1;
    PGresult *row = NULL;
    cf_lock_t *lock = NULL;
    char *problem_text = NULL, *order_problem_text = NULL;
    const char *slug;
    json_t *params = cf_msgpack_to_json(cf_job_params(job), err);
    if (!params) {
        cf_error_prefix_field(err, "params");
        goto out;
    }
    if (cf_params_check_keys(params, s_allowed, err) ||
        cf_params_str(params, "challenge", true, NULL, &slug, err))
        goto out;
    if (*slug == '\0' || strlen(slug) > S_SLUG_MAX) {
        cf_error_set(err, "invalid_value", "params.challenge",
                     "a challenge slug has 1 to %d characters", S_SLUG_MAX);
        goto out;
    }
    int found = s_load(ctx, slug, &row, err);
    if (found <= 0)
        goto out;
    if (strcmp(PQgetvalue(row, 0, S_C_STATUS), "processing") != 0) {
        rc = s_answer_current(result, slug, row);
        goto out;
    }
    const validator_config_t *cfg = validator_config(ctx);
    char key[S_SLUG_MAX + 32];
    snprintf(key, sizeof key, "acme-challenge:%s", slug);
    if (!(lock = cf_lock_new(ctx->redis, key, cfg->timeout_ms + S_LOCK_SLACK_MS))) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    int got = cf_handler_lock_wait(ctx, lock, S_LOCK_WAIT_MS);
    if (got == 0) {
        cf_error_set(err, "in_progress", "params.challenge",
                     "challenge \"%s\" is being validated by another worker", slug);
        goto out;
    }
    if (got < 0) {
        /* The verdict is written only while the challenge is processing: without Redis the
         * lock only saves checking twice, so go on without it. */
        cf_log_warn("challenge lock unavailable, validating without it: %s",
                    cf_redis_errstr(ctx->redis));
        cf_lock_destroy(&lock);
    }
    /* Another worker may have finished it while we waited for the lock. */
    PQclear(row);
    row = NULL;
    if ((found = s_load(ctx, slug, &row, err)) <= 0)
        goto out;
    if (strcmp(PQgetvalue(row, 0, S_C_STATUS), "processing") != 0) {
        rc = s_answer_current(result, slug, row);
        goto out;
    }
    s_outcome_t outcome;
    validator_problem_t problem = {0};
    const char *caa = "not checked";
    if (s_judge(ctx, row, &outcome, &problem, &caa, err) != 0)
        goto out;
    const char *name = PQgetvalue(row, 0, S_A_VALUE);
    if (outcome != S_VALID) {
        char order_detail[VALIDATOR_DETAIL_MAX + 64];
        snprintf(order_detail, sizeof order_detail, "the authorization of \"%s\" failed: %s", name,
                 problem.detail);
        problem_text = s_problem_text(problem.type, problem.detail);
        order_problem_text = s_problem_text(problem.type, order_detail);
        if (!problem_text || !order_problem_text) {
            cf_error_set(err, "internal", "", "out of memory");
            goto out;
        }
    }
    int written = s_write(ctx, row, outcome, problem_text, order_problem_text, err);
    if (written < 0)
        goto out;
    if (written == 0) {
        /* Someone else's verdict got there first: answer with it. */
        PQclear(row);
        row = NULL;
        if (s_load(ctx, slug, &row, err) <= 0)
            goto out;
        rc = s_answer_current(result, slug, row);
        goto out;
    }
    const char *status = outcome == S_VALID ? "valid" : "invalid";
    cf_audit("acme.validate", "challenge", slug, "type", PQgetvalue(row, 0, S_C_TYPE), "identifier",
             name, "status", status, "problem", outcome == S_VALID ? "" : problem.type, "detail",
             outcome == S_VALID ? "" : problem.detail, "caa", caa, NULL);
    s_pack_result(result, slug, status, problem_text);
    rc = 0;
out:
    if (lock && cf_lock_held(lock))
        cf_lock_release(lock);
    cf_lock_destroy(&lock);
    free(problem_text);
    free(order_problem_text);
    PQclear(row);
    json_decref(params);
    return rc;
}
