/* crl.build: build, sign and store one CRL of a CA (django-ca's get_crl; schemas/jobs.md,
 * docs/crl.md). The entries stream from PostgreSQL through a cursor into cf_crl's writer, the
 * DER goes back with COPY, and Redis gets it after the commit when it is small enough.
 *
 * Order: every check of the params and the CA first (an error then has written nothing), then
 * the key, then the Redis lock of (CA, scope, shard), then a savepoint, the CRL number, the
 * entries, the signature and the row. A failure after the savepoint rolls back to it, so that
 * even then the job's transaction holds nothing of ours. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "cf_ca.h"
#include "cf_crl.h"
#include "cf_crl_lock.h"
#include "cf_general_name.h"
#include "cf_key.h"
#include "cf_log.h"
#include "cf_msgpack.h"
#include "cf_params.h"
#include "cf_revocation.h"
#include "cf_x509_ext.h"
#include "crl.h"

/* Rows per FETCH: a chunk of entries between keepalives and lock renewals. */
#define S_FETCH       10000
#define S_COUNTER_MAX 128

static const char *const s_allowed[] = {
    "ca",        "scope",         "shard",
    "expires",   "algorithm",     "counter",
    "full_name", "relative_name", "include_issuing_distribution_point",
    "if_stale",  "password",      NULL};

cf_keystore_t *crl_keystore(cf_handler_ctx_t *ctx)
{
    crl_t *state = ctx->state;
    if (!state->keystore)
        state->keystore = cf_keystore_new(ctx->config, ctx->pg);
    return state->keystore;
}

void crl_state_destroy(crl_t *state)
{
    if (state)
        cf_keystore_destroy(&state->keystore);
}

/* ---- the issuing distribution point ------------------------------------------------------ */

/* The full names of the first distribution point of the CA's sign_crl_distribution_points
 * that has them (borrowed), or NULL. */
static const json_t *s_sign_full_name(const cf_ca_t *ca)
{
    const json_t *crldp = cf_extensions_find(ca->sign_extensions, "crl_distribution_points");
    size_t i;
    json_t *dp;
    json_array_foreach(json_object_get(crldp, "value"), i, dp)
    {
        const json_t *full = json_object_get(dp, "full_name");
        if (json_is_array(full) && json_array_size(full) > 0)
            return full;
    }
    return NULL;
}

/* jobs.md answers every bad name as invalid_value (the message says what is wrong); only
 * the structural codes stay as they are. */
static void s_name_code(cf_error_t *err)
{
    static const char *const keep[] = {"invalid_type", "missing_field", "unknown_field", "internal",
                                       NULL};
    for (const char *const *k = keep; *k; k++)
        if (strcmp(err->code, *k) == 0)
            return;
    snprintf(err->code, sizeof err->code, "invalid_value");
}

/* The model's error field "value.full_name[0]" as "params.full_name[0]". */
static void s_idp_field(cf_error_t *err)
{
    s_name_code(err);
    char field[CF_ERROR_FIELD_MAX];
    const char *rest = strncmp(err->field, "value.", 6) == 0 ? err->field + 6 : err->field;
    if (!*rest)
        rest = "full_name";
    snprintf(field, sizeof field, "params.%s", rest);
    snprintf(err->field, sizeof err->field, "%s", field);
}

/* The IssuingDistributionPoint for this CRL in *OUT (caller owns; NULL: none). 0 or -1 + err. */
static int s_idp(const cf_ca_t *ca, cf_scope_t scope, int shard, const json_t *params,
                 X509_EXTENSION **out, cf_error_t *err)
{
    *out = NULL;
    const json_t *full_param = json_object_get(params, "full_name");
    const json_t *rel = json_object_get(params, "relative_name");
    const json_t *inc = json_object_get(params, "include_issuing_distribution_point");
    if (rel && json_is_null(rel))
        rel = NULL;
    if (inc && !json_is_null(inc) && !json_is_boolean(inc)) {
        cf_error_set(err, "invalid_type", "params.include_issuing_distribution_point",
                     "\"include_issuing_distribution_point\" must be a boolean or nil");
        return -1;
    }
    if (rel && full_param && !json_is_null(full_param)) {
        cf_error_set(err, "invalid_value", "params.relative_name",
                     "only one of full_name and relative_name may be given");
        return -1;
    }
    json_t *full = NULL; /* owned */
    char *url = NULL;
    if (full_param) {
        if (!json_is_null(full_param)) {
            if (!json_is_array(full_param)) {
                cf_error_set(err, "invalid_type", "params.full_name",
                             "\"full_name\" must be a list of general names or nil");
                return -1;
            }
            if (json_array_size(full_param) == 0) {
                cf_error_set(err, "invalid_value", "params.full_name",
                             "\"full_name\" must not be empty (give nil for none)");
                return -1;
            }
            if (!(full = cf_general_names_parse(full_param, err))) {
                s_name_code(err);
                cf_error_prefix_field(err, "params.full_name");
                return -1;
            }
        }
    } else if (!rel) {
        /* The URL the CRL's certificates carry: openssl and browsers only use a CRL for a
         * certificate when the IDP's name matches the certificate's distribution point. */
        if ((scope == CF_SCOPE_ALL || scope == CF_SCOPE_USER) && ca->crl_shards > 1 &&
            ca->default_hostname)
            url = cf_ca_url_crl(ca->default_hostname, ca->name, shard);
        else if (scope == CF_SCOPE_CA && ca->default_hostname)
            url = cf_ca_url_crl_ca(ca->default_hostname, ca->name);
        if (url)
            full = json_pack("[{s:s, s:s}]", "type", "URI", "value", url);
        else if (s_sign_full_name(ca))
            full = json_deep_copy(s_sign_full_name(ca));
        free(url);
    }
    const char *flag = scope == CF_SCOPE_USER        ? "only_contains_user_certs"
                       : scope == CF_SCOPE_CA        ? "only_contains_ca_certs"
                       : scope == CF_SCOPE_ATTRIBUTE ? "only_contains_attribute_certs"
                                                     : NULL;
    bool carries = flag || full || rel;
    bool include = inc && json_is_boolean(inc) ? json_is_true(inc) : carries;
    if (include && !carries) {
        json_decref(full);
        cf_error_set(err, "invalid_value", "params.include_issuing_distribution_point",
                     "the issuing distribution point would be empty: the \"all\" scope needs a "
                     "full_name or relative_name");
        return -1;
    }
    if (!include) {
        json_decref(full);
        return 0;
    }
    json_t *value = json_object();
    if (flag)
        json_object_set_new(value, flag, json_true());
    if (full)
        json_object_set_new(value, "full_name", full);
    if (rel)
        json_object_set(value, "relative_name", (json_t *)rel);
    json_t *model = json_pack("{s:s, s:b, s:o}", "type", "issuing_distribution_point", "critical",
                              1, "value", value);
    if (!model) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    *out = cf_extension_to_openssl(model, err);
    json_decref(model);
    if (!*out) {
        s_idp_field(err);
        return -1;
    }
    return 0;
}

/* ---- entries ----------------------------------------------------------------------------- */

/* The SELECT of the scope's entries: serial, revocation date, reason, invalidity date. */
static void s_entries_sql(char *sql, size_t len, int64_t ca_id, cf_scope_t scope, int shard)
{
    char user[512], cas[512];
    /* The user part walks the partial index certificates_revoked (ca_id, crl_shard, expires). */
    snprintf(user, sizeof user,
             "SELECT serial, extract(epoch FROM COALESCE(revoked_date, now()))::bigint, "
             "revoked_reason, extract(epoch FROM compromised)::bigint FROM certificates "
             "WHERE ca_id = %lld AND crl_shard = %d AND revoked AND expires > now()",
             (long long)ca_id, shard);
    snprintf(cas, sizeof cas,
             "SELECT serial, extract(epoch FROM COALESCE(revoked_date, now()))::bigint, "
             "revoked_reason, extract(epoch FROM compromised)::bigint FROM "
             "certificate_authorities WHERE parent_id = %lld AND revoked AND expires > now()",
             (long long)ca_id);
    if (scope == CF_SCOPE_USER)
        snprintf(sql, len, "%s", user);
    else if (scope == CF_SCOPE_CA)
        snprintf(sql, len, "%s", cas);
    else
        snprintf(sql, len, "%s UNION ALL %s", user, cas);
}

/* The CRLReason code of a stored reason name ("" is unspecified). */
static int s_reason(const char *name)
{
    if (!*name)
        return 0;
    int code = cf_reason_code(name);
    if (code < 0) {
        const char *canon = NULL;
        cf_error_t ignored = {0};
        if (cf_reason_parse(name, "revoked_reason", &canon, &ignored) == 0)
            code = cf_reason_code(canon);
    }
    if (code < 0) {
        cf_log_warn("unknown revocation reason \"%s\" is listed as unspecified", name);
        code = 0;
    }
    return code;
}

/* Stream the entries into W. 0, -1 + err (bad stored data), or CF_HANDLER_ABORT. */
static int s_add_entries(cf_handler_ctx_t *ctx, cf_lock_t *lock, cf_crl_writer_t *w,
                         const cf_ca_t *ca, cf_scope_t scope, int shard, cf_error_t *err)
{
    if (scope == CF_SCOPE_ATTRIBUTE)
        return 0; /* reserved: always empty (django-ca) */
    char select[1200], sql[1300];
    s_entries_sql(select, sizeof select, ca->id, scope, shard);
    snprintf(sql, sizeof sql, "DECLARE cf_crl_entries NO SCROLL CURSOR FOR %s", select);
    if (cf_pg_exec(ctx->pg, sql) != 0) {
        cf_error_set(err, "unavailable", "", "could not read revoked certificates: %s",
                     cf_pg_errstr(ctx->pg));
        return CF_HANDLER_ABORT;
    }
    int rc = 0;
    for (;;) {
        PGresult *res = cf_pg_exec_params(ctx->pg, "FETCH FORWARD 10000 FROM cf_crl_entries", 0,
                                          NULL, NULL, NULL, 0);
        if (!res) {
            cf_error_set(err, "unavailable", "", "could not read revoked certificates: %s",
                         cf_pg_errstr(ctx->pg));
            return CF_HANDLER_ABORT;
        }
        int n = PQntuples(res);
        for (int i = 0; i < n && rc == 0; i++) {
            const char *serial = PQgetvalue(res, i, 0);
            int64_t revoked = strtoll(PQgetvalue(res, i, 1), NULL, 10);
            int reason = s_reason(PQgetvalue(res, i, 2));
            int64_t invalidity =
                PQgetisnull(res, i, 3) ? CF_CRL_NO_DATE : strtoll(PQgetvalue(res, i, 3), NULL, 10);
            if (cf_crl_writer_add(w, serial, revoked, reason, invalidity, err) != 0) {
                /* Leaving a revoked certificate out would be worse than no new CRL. */
                cf_log_error("CRL of \"%s\": revoked certificate \"%s\" cannot be listed: %s",
                             ca->name, serial, err->message);
                cf_error_set(err, "internal", "",
                             "revoked certificate \"%.80s\" of certificate authority \"%s\" "
                             "cannot be listed",
                             serial, ca->name);
                rc = -1;
            }
        }
        PQclear(res);
        if (rc != 0 || n < S_FETCH)
            break;
        /* Between chunks: stay alive for the broker and keep the lock. */
        cf_worker_keepalive(ctx->worker);
        if (cf_lock_renew(lock) != 1)
            cf_log_warn("CRL of \"%s\": lost its lock while building", ca->name);
    }
    if (cf_pg_exec(ctx->pg, "CLOSE cf_crl_entries") != 0) {
        cf_error_set(err, "unavailable", "", "could not read revoked certificates: %s",
                     cf_pg_errstr(ctx->pg));
        return CF_HANDLER_ABORT;
    }
    return rc;
}

/* ---- the stored CRL ---------------------------------------------------------------------- */

typedef struct {
    int64_t number;      /* CRL Number */
    int64_t this_update; /* Unix s */
    int64_t next_update; /* Unix s */
    int64_t entries;     /* revoked certificates listed */
    int64_t size;        /* bytes of DER */
    bool skipped;        /* answered from the stored CRL */
} s_outcome_t;

/* if_stale: 1 and OUT filled when the stored CRL is current (there, not stale, within the first
 * half of its validity), 0 when a build is due, CF_HANDLER_ABORT. FOR UPDATE waits for a builder
 * that released the Redis lock but has not committed yet, and then reads its row. */
static int s_current(cf_handler_ctx_t *ctx, int64_t ca_id, const char *scope, int shard,
                     int64_t now, s_outcome_t *out, cf_error_t *err)
{
    char id[24], sh[16];
    snprintf(id, sizeof id, "%lld", (long long)ca_id);
    snprintf(sh, sizeof sh, "%d", shard);
    const char *values[] = {id, scope, sh};
    PGresult *res = cf_pg_exec_params(
        ctx->pg,
        "SELECT number, extract(epoch FROM this_update)::bigint, "
        "extract(epoch FROM next_update)::bigint, entries, octet_length(der), stale "
        "FROM crls WHERE ca_id = $1::bigint AND scope = $2 AND shard = $3::int FOR UPDATE",
        3, values, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not read the stored CRL: %s",
                     cf_pg_errstr(ctx->pg));
        return CF_HANDLER_ABORT;
    }
    int rc = 0;
    if (PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 5), "f") == 0) {
        s_outcome_t o = {
            .number = strtoll(PQgetvalue(res, 0, 0), NULL, 10),
            .this_update = strtoll(PQgetvalue(res, 0, 1), NULL, 10),
            .next_update = strtoll(PQgetvalue(res, 0, 2), NULL, 10),
            .entries = strtoll(PQgetvalue(res, 0, 3), NULL, 10),
            .size = strtoll(PQgetvalue(res, 0, 4), NULL, 10),
            .skipped = true,
        };
        if (now < o.this_update + (o.next_update - o.this_update) / 2) {
            *out = o;
            rc = 1;
        }
    }
    PQclear(res);
    return rc;
}

/* The revocations counted on the stored CRL of (CA_ID, SCOPE, SHARD) so far (read before the
 * entries are): -1 when none is stored, -2 on a database error. */
static int64_t s_marks(cf_handler_ctx_t *ctx, int64_t ca_id, const char *scope, int shard)
{
    char id[24], sh[16];
    snprintf(id, sizeof id, "%lld", (long long)ca_id);
    snprintf(sh, sizeof sh, "%d", shard);
    const char *values[] = {id, scope, sh};
    PGresult *res = cf_pg_exec_params(
        ctx->pg,
        "SELECT marks FROM crls WHERE ca_id = $1::bigint AND scope = $2 AND shard = $3::int", 3,
        values, NULL, NULL, 0);
    if (!res)
        return -2;
    int64_t marks = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return marks;
}

/* The next number of COUNTER: 0 for a new counter, then one more each time. The row lock of
 * the upsert orders concurrent builders until their commit. -1 on error. */
static int64_t s_next_number(cf_handler_ctx_t *ctx, int64_t ca_id, const char *counter)
{
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)ca_id);
    const char *values[] = {id, counter};
    PGresult *res = cf_pg_exec_params(
        ctx->pg,
        "INSERT INTO crl_counters (ca_id, counter, number) VALUES ($1::bigint, $2, 0) "
        "ON CONFLICT (ca_id, counter) DO UPDATE SET number = crl_counters.number + 1 "
        "RETURNING number",
        2, values, NULL, NULL, 0);
    if (!res)
        return -1;
    int64_t n = PQntuples(res) == 1 ? strtoll(PQgetvalue(res, 0, 0), NULL, 10) : -1;
    PQclear(res);
    return n;
}

/* After the commit: the new CRL into Redis (header + DER, expiring at nextUpdate) when small
 * enough, else delete the cached older one so that readers go to PostgreSQL. */
static int s_cache(cf_handler_ctx_t *ctx, const cf_ca_t *ca, cf_scope_t scope, int shard,
                   cf_crl_writer_t *w, size_t len, const s_outcome_t *o)
{
    char key[128];
    cf_revstore_crl_key(key, sizeof key, ca->id, scope, shard);
    int64_t max = cf_config_get_int(ctx->config, "crl", "cache_max_bytes", 16777216);
    if ((int64_t)len <= max) {
        /* The writer left CF_REVSTORE_HEADER bytes in front of the DER for the header; the
         * buffer itself goes to Redis after the commit, without a copy. */
        size_t off = 0, der_len = 0;
        unsigned char *buf = cf_crl_writer_release(w, &off, &der_len);
        if (!buf)
            return -1;
        cf_revstore_header(buf + off - CF_REVSTORE_HEADER, o->this_update, o->next_update);
        return cf_handler_defer_redis_value(ctx, key, buf, off - CF_REVSTORE_HEADER,
                                            der_len + CF_REVSTORE_HEADER, o->next_update);
    }
    const char *argv[] = {"DEL", key};
    return cf_handler_defer_redis(ctx, 2, argv, NULL);
}

/* ---- the handler ------------------------------------------------------------------------- */

static void s_pack_result(msgpack_packer *pk, const cf_ca_t *ca, cf_scope_t scope, int shard,
                          const s_outcome_t *o)
{
    msgpack_pack_map(pk, 9);
    cf_msgpack_pack_cstr(pk, "ca");
    cf_msgpack_pack_cstr(pk, ca->name);
    cf_msgpack_pack_cstr(pk, "scope");
    cf_msgpack_pack_cstr(pk, cf_scope_name(scope));
    cf_msgpack_pack_cstr(pk, "shard");
    msgpack_pack_int(pk, shard);
    cf_msgpack_pack_cstr(pk, "number");
    msgpack_pack_int64(pk, o->number);
    cf_msgpack_pack_cstr(pk, "this_update");
    msgpack_pack_int64(pk, o->this_update);
    cf_msgpack_pack_cstr(pk, "next_update");
    msgpack_pack_int64(pk, o->next_update);
    cf_msgpack_pack_cstr(pk, "entries");
    msgpack_pack_int64(pk, o->entries);
    cf_msgpack_pack_cstr(pk, "size");
    msgpack_pack_int64(pk, o->size);
    cf_msgpack_pack_cstr(pk, "skipped");
    if (o->skipped)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

/* Undo our writes (back to the savepoint). RC when that worked, else CF_HANDLER_ABORT. */
static int s_undo(cf_handler_ctx_t *ctx, int rc)
{
    if (cf_pg_exec(ctx->pg, "ROLLBACK TO SAVEPOINT cf_crl_build") != 0)
        return CF_HANDLER_ABORT;
    return rc;
}

int crl_build(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result, cf_error_t *err)
{
    int rc = -1;
    cf_ca_t *ca = NULL;
    EVP_PKEY *key = NULL;
    X509_EXTENSION *idp = NULL;
    cf_crl_writer_t *w = NULL;
    cf_lock_t *lock = NULL;
    const char *ca_name, *algorithm, *counter, *password;
    int64_t shard, expires;
    bool if_stale;
    cf_scope_t scope = CF_SCOPE_ALL;
    char counter_buf[S_COUNTER_MAX + 16];

    json_t *params = cf_msgpack_to_json(cf_job_params(job), err);
    if (!params) {
        cf_error_prefix_field(err, "params");
        goto out;
    }
    if (cf_params_check_keys(params, s_allowed, err) ||
        cf_params_str(params, "ca", true, NULL, &ca_name, err) ||
        cf_params_int(params, "shard", 0, 0, 4095, &shard, err) ||
        cf_params_int(params, "expires", 86400, 600, 31536000, &expires, err) ||
        cf_params_str(params, "algorithm", false, NULL, &algorithm, err) ||
        cf_params_str(params, "counter", false, NULL, &counter, err) ||
        cf_params_bool(params, "if_stale", false, &if_stale, err) ||
        cf_params_str(params, "password", false, NULL, &password, err))
        goto out;
    const json_t *scope_param = json_object_get(params, "scope");
    if (scope_param && !json_is_null(scope_param) && !json_is_string(scope_param)) {
        cf_error_set(err, "invalid_type", "params.scope", "\"scope\" must be a string or nil");
        goto out;
    }
    if (cf_scope_parse(json_string_value(scope_param), "params.scope", &scope, err) != 0)
        goto out;
    if (counter && (!*counter || strlen(counter) > S_COUNTER_MAX)) {
        cf_error_set(err, "invalid_value", "params.counter",
                     "\"counter\" must be 1 to %d characters", S_COUNTER_MAX);
        goto out;
    }
    if (!(ca = cf_ca_load(ctx->pg, ca_name, err))) {
        if (strcmp(err->code, "unknown_ca") == 0)
            snprintf(err->field, sizeof err->field, "params.ca");
        else
            rc = CF_HANDLER_ABORT;
        goto out;
    }
    if (!ca->cert) {
        cf_error_set(err, "internal", "", "certificate authority \"%s\" has no certificate",
                     ca->name);
        goto out;
    }
    int max_shard = scope == CF_SCOPE_ALL || scope == CF_SCOPE_USER ? ca->crl_shards - 1 : 0;
    if (shard > max_shard) {
        cf_error_set(err, "invalid_value", "params.shard",
                     "shard %lld is out of range: the %s scope of certificate authority \"%s\" "
                     "has shards 0 to %d",
                     (long long)shard, cf_scope_name(scope), ca->name, max_shard);
        goto out;
    }
    bool ed = strcmp(ca->key_type, "Ed25519") == 0 || strcmp(ca->key_type, "Ed448") == 0;
    if (algorithm && *algorithm && ed) {
        cf_error_set(err, "invalid_value", "params.algorithm",
                     "certificate authority \"%s\" has an %s key, which takes no algorithm",
                     ca->name, ca->key_type);
        goto out;
    }
    if (algorithm && *algorithm && !cf_key_algorithm_md(algorithm, err)) {
        snprintf(err->field, sizeof err->field, "params.algorithm");
        goto out;
    }
    if (s_idp(ca, scope, (int)shard, params, &idp, err) != 0)
        goto out;
    if (!counter) {
        /* django-ca counts per scope; each shard of a sharded CA is a CRL of its own. */
        if (ca->crl_shards > 1 && (scope == CF_SCOPE_ALL || scope == CF_SCOPE_USER))
            snprintf(counter_buf, sizeof counter_buf, "%s/%d", cf_scope_name(scope), (int)shard);
        else
            snprintf(counter_buf, sizeof counter_buf, "%s", cf_scope_name(scope));
        counter = counter_buf;
    }
    if (!(key = cf_ca_private_key(ca, ctx->config, crl_keystore(ctx), password, err)))
        goto out;
    const EVP_MD *md = NULL;
    if (cf_key_check_algorithm(
            key, algorithm && *algorithm ? algorithm : (*ca->algorithm ? ca->algorithm : NULL), &md,
            err) != 0) {
        snprintf(err->field, sizeof err->field, "params.algorithm");
        goto out;
    }

    /* One builder per (CA, scope, shard): a second one waits and then builds the next number,
     * so numbers never repeat and a CRL never replaces a newer one. */
    char lock_key[128];
    snprintf(lock_key, sizeof lock_key, "crl:%lld:%s:%d", (long long)ca->id, cf_scope_name(scope),
             (int)shard);
    int wait_ms = (int)cf_config_get_int(ctx->config, "crl", "lock_wait_ms", 30000);
    int ttl_ms = (int)cf_config_get_int(ctx->config, "crl", "lock_ttl_ms", 60000);
    lock = cf_lock_new(ctx->redis, lock_key, ttl_ms);
    int got = lock ? cf_handler_lock_wait(ctx, lock, wait_ms) : -1;
    if (got != 1) {
        cf_error_set(err, "unavailable", "",
                     got == 0 ? "another worker is still building the %s CRL (shard %d) of "
                                "certificate authority \"%s\": try again later"
                              : "could not lock the %s CRL (shard %d) of certificate authority "
                                "\"%s\": Redis is not available",
                     cf_scope_name(scope), (int)shard, ca->name);
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    int64_t now = (int64_t)time(NULL);
    s_outcome_t o = {.skipped = false};
    if (if_stale) {
        int cur = s_current(ctx, ca->id, cf_scope_name(scope), (int)shard, now, &o, err);
        if (cur == CF_HANDLER_ABORT) {
            rc = cur;
            goto out;
        }
        if (cur == 1) {
            s_pack_result(result, ca, scope, (int)shard, &o);
            rc = 0;
            goto out;
        }
    }
    if (cf_pg_exec(ctx->pg, "SAVEPOINT cf_crl_build") != 0) {
        cf_error_set(err, "unavailable", "", "could not build CRL: %s", cf_pg_errstr(ctx->pg));
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    o.number = s_next_number(ctx, ca->id, counter);
    if (o.number < 0) {
        cf_error_set(err, "unavailable", "", "could not draw a CRL number: %s",
                     cf_pg_errstr(ctx->pg));
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    o.this_update = now;
    o.next_update = now + expires;
    cf_crl_info_t info = {
        .this_update = o.this_update,
        .next_update = o.next_update,
        .number = o.number,
        .idp = idp,
        .headroom = CF_REVSTORE_HEADER,
    };
    if (!(w = cf_crl_writer_new(ca->cert, key, md, &info, err))) {
        rc = s_undo(ctx, -1);
        goto out;
    }
    int64_t marks = s_marks(ctx, ca->id, cf_scope_name(scope), (int)shard);
    if (marks == -1) {
        /* The first CRL of this scope: no stored row for a revocation to mark stale. Wait for
         * the revocations under way and hold off new ones until this commit, so that the
         * entries read below list every revocation that committed (cf_crl_lock.h). */
        if (cf_crl_lock(ctx->pg, ca->id, scope, true) != 0) {
            cf_error_set(err, "unavailable", "",
                         "could not lock the %s CRLs of certificate authority \"%s\": %s",
                         cf_scope_name(scope), ca->name, cf_pg_errstr(ctx->pg));
            rc = CF_HANDLER_ABORT;
            goto out;
        }
        marks = s_marks(ctx, ca->id, cf_scope_name(scope), (int)shard);
    }
    if (marks < -1) {
        cf_error_set(err, "unavailable", "", "could not read the stored CRL: %s",
                     cf_pg_errstr(ctx->pg));
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    rc = s_add_entries(ctx, lock, w, ca, scope, (int)shard, err);
    if (rc != 0) {
        rc = rc == CF_HANDLER_ABORT ? rc : s_undo(ctx, rc);
        goto out;
    }
    rc = -1;
    if (cf_crl_writer_finish(w, err) != 0) {
        rc = s_undo(ctx, -1);
        goto out;
    }
    size_t len = 0;
    unsigned char *der = cf_crl_writer_der(w, &len);
    o.entries = (int64_t)cf_crl_writer_entries(w);
    o.size = (int64_t)len;
    int stored = 0;
    cf_worker_keepalive(ctx->worker);
    if (crl_store(ctx, ca->id, cf_scope_name(scope), (int)shard, o.number, o.this_update,
                  o.next_update, o.entries, der, len, marks, &stored) != 0) {
        cf_error_set(err, "unavailable", "", "could not store CRL: %s", cf_pg_errstr(ctx->pg));
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    if (stored && s_cache(ctx, ca, scope, (int)shard, w, len, &o) != 0) {
        cf_error_set(err, "internal", "", "out of memory");
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    if (!stored)
        cf_log_warn("CRL %lld (%s, shard %d) of \"%s\" not stored: a higher number is there",
                    (long long)o.number, cf_scope_name(scope), (int)shard, ca->name);
    char num[24], entries[24], sh[16], size[24];
    snprintf(num, sizeof num, "%lld", (long long)o.number);
    snprintf(entries, sizeof entries, "%lld", (long long)o.entries);
    snprintf(sh, sizeof sh, "%d", (int)shard);
    snprintf(size, sizeof size, "%lld", (long long)o.size);
    cf_audit("crl.build", "ca", ca->name, "scope", cf_scope_name(scope), "shard", sh, "number", num,
             "counter", counter, "entries", entries, "size", size, "stored",
             stored ? "true" : "false", NULL);
    s_pack_result(result, ca, scope, (int)shard, &o);
    rc = 0;
out:
    /* Released before the commit: a builder that takes it next waits for our commit on the
     * crl_counters row lock, so it still draws the next number. */
    cf_lock_destroy(&lock); /* releases it */
    cf_crl_writer_destroy(&w);
    X509_EXTENSION_free(idp);
    EVP_PKEY_free(key);
    cf_ca_destroy(&ca);
    json_decref(params);
    return rc;
}
