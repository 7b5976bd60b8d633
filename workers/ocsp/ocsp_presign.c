/* ocsp.presign: sign and store the OCSP responses of one shard of a CA's certificates and
 * child CAs. Pure (no runtime transaction): a Redis lock per (CA, shards, shard) keeps two
 * workers off one shard, the rows are read in chunks by id (keyset), each chunk is signed,
 * upserted in its own transaction and then written to Redis in one pipeline. A worker killed
 * anywhere leaves whole chunks behind; the next run redoes only what is due. docs/ocsp.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_lock.h"
#include "cf_log.h"
#include "cf_msgpack.h"
#include "cf_params.h"
#include "cf_revocation.h"
#include "ocsp.h"

#define S_CHUNK           1000 /* rows per chunk: one SELECT, one upsert, one Redis pipeline */
#define S_LOCK_TTL_MS     10000
#define S_KEEPALIVE_EVERY 64 /* signatures between keepalive checks (RSA-4096: ~0.4 s) */

static const char *const s_allowed[] = {"ca", "shards", "shard", "force", NULL};

/* The two sources of a shard: the CA's certificates and its child CAs. */
typedef enum { S_CERTS = 0, S_CHILD_CAS = 1 } s_source_t;

/* Rows of a source in shard order within an id window, with what the stored response says:
 * due or not. Columns: id, serial, revoked, revoked_date, revoked_reason, compromised, due,
 * stored_revoked. The window ($4, $9] keeps every statement's cost bounded: the modulo
 * cannot use an index, and a join over all remaining rows would make a shard's run
 * quadratic. The stored response is looked up row by row (LATERAL) through its primary key. */
#define S_DUE                                                                                      \
    "($6::boolean OR r.status IS NULL "                                                            \
    " OR r.status <> CASE WHEN c.revoked THEN 'revoked' ELSE 'good' END "                          \
    " OR r.responder_id <> $7::bigint "                                                            \
    " OR to_timestamp($5::bigint) >= r.this_update + (r.next_update - r.this_update) / 2), "       \
    "COALESCE(r.status = 'revoked', false) "
#define S_RESPONSE                                                                                 \
    "LEFT JOIN LATERAL (SELECT status, responder_id, this_update, next_update "                    \
    "FROM ocsp_responses r WHERE r.ca_id = $1::bigint AND r.serial = c.serial LIMIT 1) r ON true " \
    "ORDER BY c.id"
static const char *const s_select_sql[2] = {
    "SELECT c.id, c.serial, c.revoked, extract(epoch FROM c.revoked_date)::bigint, "
    "c.revoked_reason, extract(epoch FROM c.compromised)::bigint, " S_DUE
    "FROM (SELECT id, serial, revoked, revoked_date, revoked_reason, compromised "
    "FROM certificates WHERE ca_id = $1::bigint AND $3::bigint < $2::bigint "
    "AND id > $4::bigint AND id <= $9::bigint AND expires > to_timestamp($5::bigint) "
    "ORDER BY id LIMIT $8::int) c " S_RESPONSE,
    "SELECT c.id, c.serial, c.revoked, extract(epoch FROM c.revoked_date)::bigint, "
    "c.revoked_reason, extract(epoch FROM c.compromised)::bigint, " S_DUE
    "FROM (SELECT id, serial, revoked, revoked_date, revoked_reason, compromised "
    "FROM certificate_authorities WHERE parent_id = $1::bigint AND id % $2::bigint = $3::bigint "
    "AND id > $4::bigint AND id <= $9::bigint AND expires > to_timestamp($5::bigint) "
    "ORDER BY id LIMIT $8::int) c " S_RESPONSE,
};

/* The ends of a CA's certificate ids ($1: the CA), through (ca_id, id). */
static const char s_cert_min_sql[] =
    "SELECT COALESCE(min(id), 0) FROM certificates WHERE ca_id = $1::bigint";
static const char s_cert_max_sql[] =
    "SELECT COALESCE(max(id), 0) FROM certificates WHERE ca_id = $1::bigint";

/* Child CAs: the highest id of the CA's children ($1), and the first id after $2 (a window is
 * never spent on a gap: CA ids start at a random point per database). */
static const char s_child_max_sql[] =
    "SELECT COALESCE(max(id), 0) FROM certificate_authorities WHERE parent_id = $1::bigint";
static const char s_child_next_sql[] =
    "SELECT COALESCE(min(id), 0) FROM certificate_authorities WHERE parent_id = $1::bigint "
    "AND id > $2::bigint";

/* Rows whose stored response says revoked but the row does not any more (unrevoked): lock
 * them and see that it is still so before a good response may replace the revoked one. */
static const char *const s_unrevoke_sql[2] = {
    "SELECT serial FROM certificates WHERE id = ANY ($1::bigint[]) AND NOT revoked FOR SHARE",
    "SELECT serial FROM certificate_authorities WHERE id = ANY ($1::bigint[]) AND NOT revoked "
    "FOR SHARE",
};

/* Re-read what a chunk stored, for a run that finds the previous one died between its commit
 * and its Redis writes (see s_repair). */
static const char *const s_repair_sql[2] = {
    "SELECT r.serial, r.der, extract(epoch FROM r.this_update)::bigint, "
    "extract(epoch FROM r.next_update)::bigint FROM certificates c JOIN ocsp_responses r "
    "ON r.ca_id = c.ca_id AND r.serial = c.serial WHERE c.ca_id = $1::bigint "
    "AND c.id BETWEEN $2::bigint AND $3::bigint AND $5::bigint < $4::bigint "
    "AND r.next_update > now()",
    "SELECT r.serial, r.der, extract(epoch FROM r.this_update)::bigint, "
    "extract(epoch FROM r.next_update)::bigint FROM certificate_authorities a "
    "JOIN ocsp_responses r ON r.ca_id = a.parent_id AND r.serial = a.serial "
    "WHERE a.parent_id = $1::bigint AND a.id BETWEEN $2::bigint AND $3::bigint "
    "AND a.id % $4::bigint = $5::bigint AND r.next_update > now()",
};

typedef struct {
    cf_handler_ctx_t *ctx;     /* the job's context */
    const cf_ca_t *ca;         /* the CA */
    cf_ocsp_responder_t *resp; /* its current responder */
    int64_t shards;            /* the split */
    int64_t shard;             /* our part */
    bool force;                /* re-sign everything */
    cf_lock_t *lock;           /* the shard lock (NULL: Redis is down, run without) */
    uint64_t renewed_at;       /* monotonic ms of the last lock renewal */
    char pending_key[160];     /* Redis key of the chunk between commit and cache write */
    int64_t signed_n;          /* responses stored */
    int64_t good;              /* of them good */
    int64_t revoked;           /* of them revoked */
    int64_t skipped;           /* rows not due (or not storable) */
} s_run_t;

/* Keep the broker and the shard lock alive. 0, or -1 + err when the lock was lost. */
static int s_alive(s_run_t *run, cf_error_t *err)
{
    cf_worker_keepalive(run->ctx->worker);
    if (!run->lock || cf_mono_ms() - run->renewed_at < S_LOCK_TTL_MS / 4)
        return 0;
    int held = cf_lock_renew(run->lock);
    if (held == 0) {
        cf_error_set(err, "in_progress", "",
                     "lost the lock on shard %lld of %lld of \"%s\" to another worker",
                     (long long)run->shard, (long long)run->shards, run->ca->name);
        return -1;
    }
    if (held < 0)
        cf_log_warn("could not renew the OCSP shard lock: %s", cf_redis_errstr(run->ctx->redis));
    run->renewed_at = cf_mono_ms();
    return 0;
}

static int64_t s_int(const PGresult *res, int row, int col)
{
    return PQgetisnull(res, row, col) ? 0 : strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool s_bool(const PGresult *res, int row, int col)
{
    return !PQgetisnull(res, row, col) && PQgetvalue(res, row, col)[0] == 't';
}

/* Mark the rows that may replace a stored revoked response (in the chunk's transaction).
 * 0 or -1 + err. */
static int s_unrevoke(s_run_t *run, s_source_t source, const PGresult *res, const int *rows_of,
                      cf_ocsp_row_t *rows, size_t n, cf_error_t *err)
{
    size_t cap = 2, len = 0;
    char *ids = malloc(cap);
    if (!ids)
        goto oom;
    ids[len++] = '{';
    for (size_t i = 0; i < n; i++) {
        int r = rows_of[i];
        if (rows[i].revoked || !s_bool(res, r, 7))
            continue;
        const char *id = PQgetvalue(res, r, 0);
        size_t need = len + strlen(id) + 3;
        if (need > cap) {
            cap = need * 2;
            char *grown = realloc(ids, cap);
            if (!grown)
                goto oom;
            ids = grown;
        }
        len += (size_t)sprintf(ids + len, "%s%s", len > 1 ? "," : "", id);
    }
    if (len == 1) {
        free(ids);
        return 0;
    }
    ids[len++] = '}';
    ids[len] = '\0';
    const char *values[1] = {ids};
    PGresult *locked =
        cf_pg_exec_params(run->ctx->pg, s_unrevoke_sql[source], 1, values, NULL, NULL, 0);
    free(ids);
    if (!locked) {
        cf_error_set(err, "unavailable", "", "could not lock unrevoked certificates: %s",
                     cf_pg_errstr(run->ctx->pg));
        return -1;
    }
    for (int k = 0; k < PQntuples(locked); k++)
        for (size_t i = 0; i < n; i++)
            if (strcmp(rows[i].serial, PQgetvalue(locked, k, 0)) == 0)
                rows[i].replace_revoked = true;
    PQclear(locked);
    return 0;
oom:
    free(ids);
    cf_error_set(err, "internal", "", "out of memory");
    return -1;
}

/* Write the responses of the chunk a dead run committed but may not have cached. The pending
 * marker "SOURCE:FIRST:LAST" is set before each chunk's commit and deleted with its cache
 * writes. 0 or -1 + err. */
static int s_repair(s_run_t *run, cf_error_t *err)
{
    cf_handler_ctx_t *ctx = run->ctx;
    redisReply *r = cf_redis_command(ctx->redis, "GET %s", run->pending_key);
    if (!r)
        return 0; /* Redis is a cache: nothing to repair when it is gone */
    int source = -1;
    long long first = 0, last = 0;
    if (r->type == REDIS_REPLY_STRING &&
        sscanf(r->str, "%d:%lld:%lld", &source, &first, &last) != 3)
        source = -1;
    freeReplyObject(r);
    if (source != S_CERTS && source != S_CHILD_CAS)
        return 0;
    char ca_text[32], first_text[32], last_text[32], shards_text[32], shard_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)run->ca->id);
    snprintf(first_text, sizeof first_text, "%lld", first);
    snprintf(last_text, sizeof last_text, "%lld", last);
    snprintf(shards_text, sizeof shards_text, "%lld", (long long)run->shards);
    snprintf(shard_text, sizeof shard_text, "%lld", (long long)run->shard);
    const char *values[5] = {ca_text, first_text, last_text, shards_text, shard_text};
    PGresult *res = cf_pg_exec_params(ctx->pg, s_repair_sql[source], 5, values, NULL, NULL, 1);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not re-read OCSP responses: %s",
                     cf_pg_errstr(ctx->pg));
        return -1;
    }
    size_t queued = 0;
    for (int i = 0; i < PQntuples(res); i++) {
        int64_t t[2];
        for (int c = 0; c < 2; c++) {
            const unsigned char *b = (const unsigned char *)PQgetvalue(res, i, 2 + c);
            uint64_t u = 0;
            for (int k = 0; k < 8 && PQgetlength(res, i, 2 + c) == 8; k++)
                u = (u << 8) | b[k];
            t[c] = (int64_t)u;
        }
        char serial[128], key[160], at[32];
        snprintf(serial, sizeof serial, "%.*s", PQgetlength(res, i, 0), PQgetvalue(res, i, 0));
        cf_revstore_ocsp_key(key, sizeof key, run->ca->id, serial);
        snprintf(at, sizeof at, "%lld", (long long)t[1]);
        size_t vlen;
        unsigned char *value =
            cf_ocsp_cache_value(t[0], t[1], (const unsigned char *)PQgetvalue(res, i, 1),
                                PQgetlength(res, i, 1), &vlen);
        if (!value)
            continue;
        const char *argv[5] = {"SET", key, (const char *)value, "EXAT", at};
        size_t lens[5] = {3, strlen(key), vlen, 4, strlen(at)};
        if (cf_redis_appendargv(ctx->redis, 5, argv, lens) == 0)
            queued++;
        free(value);
    }
    int rows = PQntuples(res);
    PQclear(res);
    const char *del[2] = {"DEL", run->pending_key};
    if (cf_redis_appendargv(ctx->redis, 2, del, NULL) == 0)
        queued++;
    for (size_t i = 0; i < queued; i++) {
        redisReply *reply = cf_redis_get_reply(ctx->redis);
        if (!reply) {
            cf_redis_disconnect(ctx->redis);
            break;
        }
        freeReplyObject(reply);
    }
    cf_log_info("rewrote %d cached OCSP responses of \"%s\" left by an interrupted run", rows,
                run->ca->name);
    return 0;
}

/* One chunk of SOURCE with ids in (*LAST_ID, HI]: sign what is due, store, cache. *LAST_ID
 * moves to where the next chunk starts. 0 or -1 + err. */
static int s_chunk(s_run_t *run, s_source_t source, int64_t *last_id, int64_t hi, cf_error_t *err)
{
    cf_handler_ctx_t *ctx = run->ctx;
    int64_t this_update = (int64_t)time(NULL);
    int64_t next_update =
        this_update +
        (run->ca->ocsp_response_validity > 0 ? run->ca->ocsp_response_validity : 86400);
    char ca_text[32], shards_text[32], shard_text[32], last_text[32], now_text[32], resp_text[32],
        limit_text[16], hi_text[32];
    snprintf(hi_text, sizeof hi_text, "%lld", (long long)hi);
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)run->ca->id);
    snprintf(shards_text, sizeof shards_text, "%lld", (long long)run->shards);
    snprintf(shard_text, sizeof shard_text, "%lld", (long long)run->shard);
    snprintf(last_text, sizeof last_text, "%lld", (long long)*last_id);
    snprintf(now_text, sizeof now_text, "%lld", (long long)this_update);
    snprintf(resp_text, sizeof resp_text, "%lld", (long long)run->resp->id);
    snprintf(limit_text, sizeof limit_text, "%d", S_CHUNK);
    const char *values[9] = {ca_text,   shards_text, shard_text,
                             last_text, now_text,    run->force ? "true" : "false",
                             resp_text, limit_text,  hi_text};
    const char *name = source == S_CERTS ? "ocsp_presign_certs" : "ocsp_presign_cas";
    cf_pg_prepare(ctx->pg, name, s_select_sql[source]);
    PGresult *res = cf_pg_exec_prepared(ctx->pg, name, 9, values, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not read the certificates of \"%s\": %s",
                     run->ca->name, cf_pg_errstr(ctx->pg));
        return -1;
    }
    int nrows = PQntuples(res);
    /* A full chunk may have more rows in the window after it; else the window is done. */
    *last_id = nrows == S_CHUNK ? s_int(res, nrows - 1, 0) : hi;
    int rc = -1;
    cf_ocsp_row_t *rows = calloc((size_t)nrows + 1, sizeof *rows);
    int *rows_of = calloc((size_t)nrows + 1, sizeof *rows_of);
    size_t n = 0;
    if (!rows || !rows_of) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    for (int r = 0; r < nrows; r++) {
        if (!s_bool(res, r, 6)) {
            run->skipped++;
            continue;
        }
        if (n % S_KEEPALIVE_EVERY == 0 && s_alive(run, err) != 0)
            goto out;
        const char *reason = PQgetvalue(res, r, 4);
        cf_ocsp_status_t st = {.serial = PQgetvalue(res, r, 1),
                               .revoked = s_bool(res, r, 2),
                               .revoked_date = s_int(res, r, 3),
                               .reason = *reason ? reason : NULL,
                               .compromised = s_int(res, r, 5)};
        unsigned char *der = NULL;
        int len = 0;
        cf_error_t serr = {0};
        if (cf_ocsp_sign(run->ca, run->resp, &st, this_update, next_update, &der, &len, &serr) !=
            0) {
            if (strcmp(serr.code, "invalid_value") != 0) {
                *err = serr;
                goto out;
            }
            /* One unreadable row must not hold up the shard. */
            cf_log_error("could not sign the OCSP response of \"%s\" of \"%s\": %s", st.serial,
                         run->ca->name, serr.message);
            run->skipped++;
            continue;
        }
        rows[n] =
            (cf_ocsp_row_t){.serial = st.serial, .revoked = st.revoked, .der = der, .len = len};
        rows_of[n] = r;
        n++;
    }
    if (n == 0) {
        rc = 0;
        goto out;
    }
    /* Mark the chunk as pending in Redis before the commit: if we die after the commit and
     * before the cache writes, the next run of this shard writes the cache from the table. */
    char pending[96];
    snprintf(pending, sizeof pending, "%d:%lld:%lld", (int)source,
             (long long)s_int(res, rows_of[0], 0), (long long)s_int(res, rows_of[n - 1], 0));
    redisReply *mark = cf_redis_command(ctx->redis, "SET %s %s EX %lld", run->pending_key, pending,
                                        (long long)(next_update - this_update + 60));
    if (mark)
        freeReplyObject(mark);
    size_t stored = 0;
    if (cf_pg_begin(ctx->pg) != 0) {
        cf_error_set(err, "unavailable", "", "could not start a transaction: %s",
                     cf_pg_errstr(ctx->pg));
        goto out;
    }
    /* No wait for the WAL flush: a chunk lost in a crash is only due again on the next run
     * (cert.revoke's own responses commit synchronously in the signer). */
    if (cf_pg_exec(ctx->pg, "SET LOCAL synchronous_commit = off") != 0 ||
        s_unrevoke(run, source, res, rows_of, rows, n, err) != 0 ||
        cf_ocsp_store_many(ctx->pg, run->ca->id, run->resp->id, this_update, next_update, rows, n,
                           &stored, err) != 0 ||
        cf_pg_commit(ctx->pg) != 0) {
        if (!cf_error_isset(err))
            cf_error_set(err, "unavailable", "", "could not commit OCSP responses: %s",
                         cf_pg_errstr(ctx->pg));
        if (cf_pg_in_transaction(ctx->pg))
            cf_pg_rollback(ctx->pg);
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].stored) {
            run->skipped++;
            continue;
        }
        run->signed_n++;
        if (rows[i].revoked)
            run->revoked++;
        else
            run->good++;
    }
    cf_ocsp_cache_many(ctx->redis, run->ca->id, rows, n, this_update, next_update);
    cf_error_t cerr = {0};
    if (cf_ocsp_cache_recheck(ctx->pg, ctx->redis, run->ca->id, rows, n, &cerr) < 0)
        cf_log_warn("could not re-check cached OCSP responses of \"%s\": %s", run->ca->name,
                    cerr.message);
    redisReply *del = cf_redis_command(ctx->redis, "DEL %s", run->pending_key);
    if (del)
        freeReplyObject(del);
    rc = 0;
out:
    for (size_t i = 0; rows && i < n; i++)
        OPENSSL_free((void *)rows[i].der);
    free(rows);
    free(rows_of);
    PQclear(res);
    return rc;
}

/* One id from SQL ($1 the CA, $2 AFTER) into *OUT. 0 or -1 + err. */
static int s_query_id(s_run_t *run, const char *sql, int64_t after, int64_t *out, cf_error_t *err)
{
    char ca_text[32], after_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)run->ca->id);
    snprintf(after_text, sizeof after_text, "%lld", (long long)after);
    const char *values[2] = {ca_text, after_text};
    int nparams = strstr(sql, "$2") ? 2 : 1;
    PGresult *res = cf_pg_exec_params(run->ctx->pg, sql, nparams, values, NULL, NULL, 0);
    if (!res || PQntuples(res) != 1) {
        PQclear(res);
        cf_error_set(err, "unavailable", "", "could not read the certificates of \"%s\": %s",
                     run->ca->name, cf_pg_errstr(run->ctx->pg));
        return -1;
    }
    *out = s_int(res, 0, 0);
    PQclear(res);
    return 0;
}

/* Take the shard lock, waiting up to [ocsp] lock_wait_ms for another worker to finish it.
 * 0, or -1 + err ("in_progress"). */
static int s_lock(s_run_t *run, cf_error_t *err)
{
    cf_handler_ctx_t *ctx = run->ctx;
    char key[128];
    snprintf(key, sizeof key, "ocsp-presign:%lld:%lld:%lld", (long long)run->ca->id,
             (long long)run->shards, (long long)run->shard);
    snprintf(run->pending_key, sizeof run->pending_key, "cf:ocsp-presign-pending:%lld:%lld:%lld",
             (long long)run->ca->id, (long long)run->shards, (long long)run->shard);
    run->lock = cf_lock_new(ctx->redis, key, S_LOCK_TTL_MS);
    if (!run->lock) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    int got = cf_handler_lock_wait(
        ctx, run->lock, (int)cf_config_get_int(ctx->config, "ocsp", "lock_wait_ms", 15000));
    if (got == 1) {
        run->renewed_at = cf_mono_ms();
        return 0;
    }
    if (got < 0) {
        /* The table is the record and every write an idempotent upsert: without Redis the
         * lock only saves double work, so go on without it. */
        cf_log_warn("OCSP shard lock unavailable, running without it: %s",
                    cf_redis_errstr(ctx->redis));
        cf_lock_destroy(&run->lock);
        return 0;
    }
    cf_lock_destroy(&run->lock);
    cf_error_set(err, "in_progress", "",
                 "shard %lld of %lld of \"%s\" is being signed by another "
                 "worker",
                 (long long)run->shard, (long long)run->shards, run->ca->name);
    return -1;
}

int ocsp_presign(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                 cf_error_t *err)
{
    int rc = -1;
    json_t *params = ocsp_params(job, err);
    cf_ca_t *ca = NULL;
    const char *ca_name;
    s_run_t run = {.ctx = ctx};
    int64_t now = (int64_t)time(NULL);
    if (!params || cf_params_check_keys(params, s_allowed, err) ||
        cf_params_str(params, "ca", true, NULL, &ca_name, err) ||
        cf_params_int(params, "shards", 1, 1, 4096, &run.shards, err) ||
        cf_params_int(params, "shard", 0, 0, 4095, &run.shard, err) ||
        cf_params_bool(params, "force", false, &run.force, err))
        goto out;
    if (run.shard >= run.shards) {
        cf_error_set(err, "invalid_value", "params.shard", "shard %lld is not below shards (%lld)",
                     (long long)run.shard, (long long)run.shards);
        goto out;
    }
    if (!(ca = cf_ca_load(ctx->pg, ca_name, err))) {
        if (strcmp(err->code, "unknown_ca") == 0)
            snprintf(err->field, sizeof err->field, "params.ca");
        goto out;
    }
    run.ca = ca;
    if (!(run.resp = ocsp_responder(ctx, ca, now, err)))
        goto out;
    if (s_lock(&run, err) != 0)
        goto out;
    if (run.lock && s_repair(&run, err) != 0)
        goto out;
    /* Child CAs (few) are shared by id modulo shards, in windows of ids that hold about a
     * chunk of the shard's rows. */
    int64_t window = S_CHUNK * run.shards;
    for (int source = S_CERTS; source <= S_CHILD_CAS; source++) {
        if (source == S_CERTS) {
            /* Certificates: the shard-th of `shards` equal slices of the CA's id range, read
             * through (ca_id, id), so that a shard reads its own rows and no others. */
            int64_t lo, top;
            if (s_query_id(&run, s_cert_min_sql, 0, &lo, err) != 0 ||
                s_query_id(&run, s_cert_max_sql, 0, &top, err) != 0)
                goto out;
            if (top == 0)
                continue;
            int64_t span = top - lo + 1;
            int64_t from =
                lo - 1 + span / run.shards * run.shard + span % run.shards * run.shard / run.shards;
            int64_t to = lo - 1 + span / run.shards * (run.shard + 1) +
                         span % run.shards * (run.shard + 1) / run.shards;
            int64_t last = from;
            while (last < to) {
                if (s_alive(&run, err) != 0 || s_chunk(&run, source, &last, to, err) != 0)
                    goto out;
            }
            continue;
        }
        int64_t max_id, next, last = 0;
        if (s_query_id(&run, s_child_max_sql, 0, &max_id, err) != 0)
            goto out;
        while (last < max_id) {
            if (s_query_id(&run, s_child_next_sql, last, &next, err) != 0)
                goto out;
            if (next == 0)
                break;
            last = next - 1;
            int64_t hi = last + window < max_id ? last + window : max_id;
            /* Chunk by chunk through the window; s_chunk moves LAST to HI at its end. */
            while (last < hi) {
                if (s_alive(&run, err) != 0 || s_chunk(&run, source, &last, hi, err) != 0)
                    goto out;
            }
        }
    }
    char shard_text[48], signed_text[24], good_text[24], revoked_text[24], skipped_text[24];
    snprintf(shard_text, sizeof shard_text, "%lld/%lld", (long long)run.shard,
             (long long)run.shards);
    snprintf(signed_text, sizeof signed_text, "%lld", (long long)run.signed_n);
    snprintf(good_text, sizeof good_text, "%lld", (long long)run.good);
    snprintf(revoked_text, sizeof revoked_text, "%lld", (long long)run.revoked);
    snprintf(skipped_text, sizeof skipped_text, "%lld", (long long)run.skipped);
    char resp_text[24];
    snprintf(resp_text, sizeof resp_text, "%lld", (long long)run.resp->id);
    cf_audit("ocsp.presign", "ca", ca->name, "shard", shard_text, "responder_id", resp_text,
             "signed", signed_text, "good", good_text, "revoked", revoked_text, "skipped",
             skipped_text, NULL);
    msgpack_pack_map(result, 7);
    cf_msgpack_pack_cstr(result, "ca");
    cf_msgpack_pack_cstr(result, ca->name);
    cf_msgpack_pack_cstr(result, "shard");
    msgpack_pack_int64(result, run.shard);
    cf_msgpack_pack_cstr(result, "shards");
    msgpack_pack_int64(result, run.shards);
    cf_msgpack_pack_cstr(result, "signed");
    msgpack_pack_int64(result, run.signed_n);
    cf_msgpack_pack_cstr(result, "good");
    msgpack_pack_int64(result, run.good);
    cf_msgpack_pack_cstr(result, "revoked");
    msgpack_pack_int64(result, run.revoked);
    cf_msgpack_pack_cstr(result, "skipped");
    msgpack_pack_int64(result, run.skipped);
    rc = 0;
out:
    if (run.lock)
        cf_lock_release(run.lock);
    cf_lock_destroy(&run.lock);
    cf_ca_destroy(&ca);
    json_decref(params);
    return rc;
}
