/* notify.expiring: mail the watchers of certificates that expire within a threshold
 * (django-ca's notify_expiring_certs). Params and result: schemas/jobs.md; the rules, and why
 * they are safe with many notifiers at once: docs/notify.md.
 *
 * The handler runs its own transactions (it is not a job_results-durable handler: a mail
 * cannot be rolled back, so the unit of work is one notice, not one job):
 *   1. one short transaction records every notice now due as a pending row (the primary key
 *      (certificate, watcher, threshold) makes that idempotent) and marks skipped the larger
 *      thresholds that a smaller due one supersedes;
 *   2. then, one transaction per mail: claim one notice with FOR UPDATE SKIP LOCKED, send,
 *      mark it sent (or failed, with the next attempt time), commit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_log.h"
#include "cf_msgpack.h"
#include "cf_params.h"
#include "notify.h"

#define S_LIMIT_MAX 10000

static const char *const s_allowed[] = {"thresholds", "limit", "ca", "dry_run", NULL};

/* The notices a job may mail now ($1 thresholds int[], $2 CA name or NULL): open, due for an
 * attempt, still watched, of an unrevoked and unexpired certificate, and not superseded by a
 * notice for fewer days of the same certificate and watcher. */
#define S_MAILABLE                                                                                 \
    "FROM expiry_notices n "                                                                       \
    "JOIN certificate_watchers cw ON cw.certificate_id = n.certificate_id "                        \
    "AND cw.watcher_id = n.watcher_id "                                                            \
    "JOIN watchers w ON w.id = n.watcher_id "                                                      \
    "JOIN certificates c ON c.id = n.certificate_id "                                              \
    "JOIN certificate_authorities a ON a.id = c.ca_id "                                            \
    "WHERE n.status IN ('pending', 'failed') AND n.next_attempt <= now() "                         \
    "AND n.threshold_days = ANY ($1::int[]) AND NOT c.revoked AND c.expires > now() "              \
    "AND c.expires <= now() + make_interval(days => n.threshold_days) "                            \
    "AND ($2::text IS NULL OR a.name = $2) "                                                       \
    "AND NOT EXISTS (SELECT 1 FROM expiry_notices m WHERE m.certificate_id = n.certificate_id "    \
    "AND m.watcher_id = n.watcher_id AND m.threshold_days < n.threshold_days) "

/* Every (certificate, watcher, threshold) due now ($1, $2 as above). */
#define S_DUE                                                                                      \
    "FROM certificate_watchers cw JOIN certificates c ON c.id = cw.certificate_id "                \
    "JOIN certificate_authorities a ON a.id = c.ca_id "                                            \
    "CROSS JOIN unnest($1::int[]) AS t(days) "                                                     \
    "WHERE NOT c.revoked AND c.expires > now() "                                                   \
    "AND c.expires <= now() + make_interval(days => t.days) "                                      \
    "AND ($2::text IS NULL OR a.name = $2) "

/* Ordered so that two notifiers recording at once take the key locks in the same order. */
static const char s_record_sql[] =
    "INSERT INTO expiry_notices (certificate_id, watcher_id, threshold_days) "
    "SELECT cw.certificate_id, cw.watcher_id, t.days " S_DUE "ORDER BY 1, 2, 3 "
    "ON CONFLICT DO NOTHING";

/* Rows another notifier holds (it is mailing them) are left alone: SKIP LOCKED. */
static const char s_skip_sql[] =
    "WITH sup AS (SELECT n.certificate_id, n.watcher_id, n.threshold_days FROM expiry_notices n "
    "JOIN certificates c ON c.id = n.certificate_id "
    "JOIN certificate_authorities a ON a.id = c.ca_id "
    "WHERE n.status IN ('pending', 'failed') AND n.threshold_days = ANY ($1::int[]) "
    "AND ($2::text IS NULL OR a.name = $2) "
    "AND EXISTS (SELECT 1 FROM expiry_notices m WHERE m.certificate_id = n.certificate_id "
    "AND m.watcher_id = n.watcher_id AND m.threshold_days < n.threshold_days) "
    "ORDER BY 1, 2, 3 FOR UPDATE OF n SKIP LOCKED) "
    "UPDATE expiry_notices e SET status = 'skipped', updated_at = now() FROM sup "
    "WHERE e.certificate_id = sup.certificate_id AND e.watcher_id = sup.watcher_id "
    "AND e.threshold_days = sup.threshold_days";

static const char s_count_sql[] = "SELECT count(*) " S_MAILABLE;

enum { S_CID, S_WID, S_DAYS, S_MAIL, S_NAME, S_SERIAL, S_CN, S_CA, S_EXPIRES };
static const char s_claim_sql[] =
    "SELECT n.certificate_id, n.watcher_id, n.threshold_days, w.mail, w.name, c.serial, c.cn, "
    "a.name, extract(epoch FROM c.expires)::bigint " S_MAILABLE
    "ORDER BY c.expires, n.certificate_id, n.watcher_id LIMIT 1 FOR UPDATE OF n SKIP LOCKED";

static const char s_sent_sql[] =
    "UPDATE expiry_notices SET status = 'sent', attempts = attempts + 1, sent_at = now(), "
    "last_error = '', updated_at = now() "
    "WHERE certificate_id = $1 AND watcher_id = $2 AND threshold_days = $3";

static const char s_failed_sql[] =
    "UPDATE expiry_notices SET status = 'failed', attempts = attempts + 1, "
    "next_attempt = now() + make_interval(secs => $4::int), last_error = $5, updated_at = now() "
    "WHERE certificate_id = $1 AND watcher_id = $2 AND threshold_days = $3";

/* What a dry run would do, without writing: the notices it would mail (smallest due
 * threshold, no notice for fewer days recorded, open and due for an attempt) and those it
 * would skip. */
enum { S_D_SERIAL, S_D_CN, S_D_CA, S_D_MAIL, S_D_DAYS, S_D_EXPIRES, S_D_ACTION };
static const char s_dry_sql[] =
    "WITH due AS (SELECT cw.certificate_id AS cid, cw.watcher_id AS wid, t.days, c.expires, "
    "c.serial, c.cn, a.name AS ca " S_DUE "), "
    "st AS (SELECT d.*, n.status, n.next_attempt, "
    "min(d.days) OVER (PARTITION BY d.cid, d.wid) AS smallest_due, "
    "(SELECT min(m.threshold_days) FROM expiry_notices m WHERE m.certificate_id = d.cid "
    "AND m.watcher_id = d.wid) AS smallest_recorded "
    "FROM due d LEFT JOIN expiry_notices n ON n.certificate_id = d.cid "
    "AND n.watcher_id = d.wid AND n.threshold_days = d.days), "
    "act AS (SELECT st.*, CASE WHEN days > smallest_due OR smallest_recorded < days "
    "THEN 'skip' ELSE 'mail' END AS action FROM st "
    "WHERE status IS NULL OR status IN ('pending', 'failed')) "
    "SELECT act.serial, act.cn, act.ca, w.mail, act.days, "
    "extract(epoch FROM act.expires)::bigint, act.action FROM act "
    "JOIN watchers w ON w.id = act.wid "
    "WHERE act.action = 'skip' OR act.next_attempt IS NULL OR act.next_attempt <= now() "
    "ORDER BY act.expires, act.cid, act.wid, act.days";

/* The job's params. */
typedef struct {
    int thresholds[NOTIFY_THRESHOLDS_MAX];     /* largest first */
    size_t n;                                  /* how many */
    int64_t limit;                             /* mails per job */
    const char *ca;                            /* only this CA's certificates, or NULL */
    bool dry_run;                              /* count and list, write nothing, send nothing */
    char array[NOTIFY_THRESHOLDS_MAX * 6 + 3]; /* the thresholds as a PostgreSQL int[] */
} s_params_t;

static int s_params(const json_t *params, const notify_state_t *state, s_params_t *p,
                    cf_error_t *err)
{
    if (cf_params_check_keys(params, s_allowed, err) ||
        cf_params_int(params, "limit", 500, 1, S_LIMIT_MAX, &p->limit, err) ||
        cf_params_str(params, "ca", false, NULL, &p->ca, err) ||
        cf_params_bool(params, "dry_run", false, &p->dry_run, err))
        return -1;
    if (p->ca && !*p->ca) {
        cf_error_set(err, "invalid_value", "params.ca", "parameter \"ca\" must not be empty");
        return -1;
    }
    const json_t *list = json_object_get(params, "thresholds");
    if (!list || json_is_null(list)) {
        memcpy(p->thresholds, state->thresholds, state->nthresholds * sizeof(int));
        p->n = state->nthresholds;
    } else if (!json_is_array(list)) {
        cf_error_set(err, "invalid_type", "params.thresholds",
                     "parameter \"thresholds\" must be a list of days");
        return -1;
    } else if (json_array_size(list) == 0 || json_array_size(list) > NOTIFY_THRESHOLDS_MAX) {
        cf_error_set(err, "invalid_value", "params.thresholds",
                     "parameter \"thresholds\" must hold 1 to %d numbers of days",
                     NOTIFY_THRESHOLDS_MAX);
        return -1;
    } else {
        size_t i;
        const json_t *v;
        json_array_foreach(list, i, v)
        {
            char field[64];
            snprintf(field, sizeof field, "params.thresholds[%zu]", i);
            if (!json_is_integer(v)) {
                cf_error_set(err, "invalid_type", field, "a threshold must be an integer");
                return -1;
            }
            json_int_t d = json_integer_value(v);
            if (d < 1 || d > NOTIFY_DAYS_MAX) {
                cf_error_set(err, "invalid_value", field,
                             "a threshold must be from 1 to %d days, not %lld", NOTIFY_DAYS_MAX,
                             (long long)d);
                return -1;
            }
            bool seen = false;
            for (size_t k = 0; k < p->n; k++)
                seen = seen || p->thresholds[k] == (int)d;
            if (!seen)
                p->thresholds[p->n++] = (int)d;
        }
    }
    size_t o = 0;
    p->array[o++] = '{';
    for (size_t i = 0; i < p->n; i++)
        o += (size_t)snprintf(p->array + o, sizeof p->array - o, "%s%d", i ? "," : "",
                              p->thresholds[i]);
    snprintf(p->array + o, sizeof p->array - o, "}");
    return 0;
}

static PGresult *s_exec(cf_handler_ctx_t *ctx, const char *name, const char *sql, int n,
                        const char *const *values)
{
    cf_pg_prepare(ctx->pg, name, sql);
    return cf_pg_exec_prepared(ctx->pg, name, n, values, NULL, NULL, 0);
}

/* The database failed: roll back, log, and answer "unavailable". -1. */
static int s_db_failed(cf_handler_ctx_t *ctx, const char *what, cf_error_t *err)
{
    cf_log_error("notify.expiring: could not %s: %s", what, cf_pg_errstr(ctx->pg));
    if (cf_pg_in_transaction(ctx->pg))
        cf_pg_rollback(ctx->pg);
    cf_error_set(err, "unavailable", "", "the database is unavailable");
    return -1;
}

/* 0 when CA NAME exists; -1 + err ("unknown_ca" or "unavailable"). */
static int s_ca_exists(cf_handler_ctx_t *ctx, const char *name, cf_error_t *err)
{
    const char *values[1] = {name};
    PGresult *res = s_exec(ctx, "notify_ca",
                           "SELECT 1 FROM certificate_authorities WHERE name = $1", 1, values);
    if (!res)
        return s_db_failed(ctx, "look up the certificate authority", err);
    int rows = PQntuples(res);
    PQclear(res);
    if (rows == 0) {
        cf_error_set(err, "unknown_ca", "params.ca", "certificate authority \"%s\" does not exist",
                     name);
        return -1;
    }
    return 0;
}

static void s_pack_counts(msgpack_packer *pk, int extra, int64_t due, int64_t sent, int64_t failed,
                          int64_t skipped, bool dry_run)
{
    msgpack_pack_map(pk, (size_t)(5 + extra));
    cf_msgpack_pack_cstr(pk, "due");
    msgpack_pack_int64(pk, due);
    cf_msgpack_pack_cstr(pk, "sent");
    msgpack_pack_int64(pk, sent);
    cf_msgpack_pack_cstr(pk, "failed");
    msgpack_pack_int64(pk, failed);
    cf_msgpack_pack_cstr(pk, "skipped");
    msgpack_pack_int64(pk, skipped);
    cf_msgpack_pack_cstr(pk, "dry_run");
    if (dry_run)
        msgpack_pack_true(pk);
    else
        msgpack_pack_false(pk);
}

/* The dry run: counts, and the first LIMIT notices that would be mailed. */
static int s_dry_run(cf_handler_ctx_t *ctx, const s_params_t *p, msgpack_packer *result,
                     cf_error_t *err)
{
    const char *values[2] = {p->array, p->ca};
    PGresult *res = s_exec(ctx, "notify_dry", s_dry_sql, 2, values);
    if (!res)
        return s_db_failed(ctx, "read the due notices", err);
    int64_t due = 0, skipped = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        if (strcmp(PQgetvalue(res, r, S_D_ACTION), "mail") == 0)
            due++;
        else
            skipped++;
    }
    int64_t listed = due < p->limit ? due : p->limit;
    s_pack_counts(result, 1, due, 0, 0, skipped, true);
    cf_msgpack_pack_cstr(result, "notices");
    msgpack_pack_array(result, (size_t)listed);
    for (int r = 0, k = 0; r < PQntuples(res) && k < listed; r++) {
        if (strcmp(PQgetvalue(res, r, S_D_ACTION), "mail") != 0)
            continue;
        k++;
        msgpack_pack_map(result, 6);
        cf_msgpack_pack_cstr(result, "serial");
        cf_msgpack_pack_cstr(result, PQgetvalue(res, r, S_D_SERIAL));
        cf_msgpack_pack_cstr(result, "cn");
        cf_msgpack_pack_cstr(result, PQgetvalue(res, r, S_D_CN));
        cf_msgpack_pack_cstr(result, "ca");
        cf_msgpack_pack_cstr(result, PQgetvalue(res, r, S_D_CA));
        cf_msgpack_pack_cstr(result, "mail");
        cf_msgpack_pack_cstr(result, PQgetvalue(res, r, S_D_MAIL));
        cf_msgpack_pack_cstr(result, "threshold_days");
        msgpack_pack_int(result, atoi(PQgetvalue(res, r, S_D_DAYS)));
        cf_msgpack_pack_cstr(result, "expires");
        msgpack_pack_int64(result, atoll(PQgetvalue(res, r, S_D_EXPIRES)));
    }
    PQclear(res);
    return 0;
}

/* Step 1: record the due notices and skip the superseded ones, in one transaction. The number
 * skipped, or -1 + err. */
static int64_t s_record(cf_handler_ctx_t *ctx, const s_params_t *p, cf_error_t *err)
{
    const char *values[2] = {p->array, p->ca};
    if (cf_pg_begin(ctx->pg) != 0)
        return s_db_failed(ctx, "begin a transaction", err);
    PGresult *res = s_exec(ctx, "notify_record", s_record_sql, 2, values);
    if (!res)
        return s_db_failed(ctx, "record the due notices", err);
    PQclear(res);
    if (!(res = s_exec(ctx, "notify_skip", s_skip_sql, 2, values)))
        return s_db_failed(ctx, "skip the superseded notices", err);
    int64_t skipped = atoll(PQcmdTuples(res));
    PQclear(res);
    if (cf_pg_commit(ctx->pg) != 0)
        return s_db_failed(ctx, "record the due notices", err);
    return skipped;
}

/* Mark the claimed notice ROW sent (ERROR NULL) or failed, and commit. 0, or -1 + err. */
static int s_finish(cf_handler_ctx_t *ctx, const PGresult *row, const char *error, int retry_s,
                    cf_error_t *err)
{
    char retry[16];
    snprintf(retry, sizeof retry, "%d", retry_s);
    const char *values[5] = {PQgetvalue(row, 0, S_CID), PQgetvalue(row, 0, S_WID),
                             PQgetvalue(row, 0, S_DAYS), retry, error};
    PGresult *res = error ? s_exec(ctx, "notify_failed", s_failed_sql, 5, values)
                          : s_exec(ctx, "notify_sent", s_sent_sql, 3, values);
    bool ok = res != NULL;
    PQclear(res);
    if (!ok || cf_pg_commit(ctx->pg) != 0) {
        if (!error)
            /* The one window: the server took the mail, the record of it is lost; a later job
             * mails this notice again. */
            cf_log_error("notify.expiring: the mail to \"%s\" about certificate %s was sent, "
                         "but could not be recorded: it may be sent again",
                         PQgetvalue(row, 0, S_MAIL), PQgetvalue(row, 0, S_SERIAL));
        return s_db_failed(ctx, "record a notice", err);
    }
    return 0;
}

int notify_expiring(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                    cf_error_t *err)
{
    notify_state_t *state = notify_state(ctx);
    s_params_t p = {0};
    int rc = -1;
    notify_smtp_t *smtp = NULL;
    PGresult *row = NULL;
    json_t *params = cf_msgpack_to_json(cf_job_params(job), err);
    if (!params) {
        cf_error_prefix_field(err, "params");
        goto out;
    }
    if (s_params(params, state, &p, err) != 0 || (p.ca && s_ca_exists(ctx, p.ca, err) != 0))
        goto out;
    if (p.dry_run) {
        rc = s_dry_run(ctx, &p, result, err);
        goto out;
    }
    /* Checked before anything is recorded: without a sender nothing could go out. */
    if (state->smtp.error[0]) {
        cf_error_set(err, "smtp_not_configured", "", "expiry mail cannot be sent: %s",
                     state->smtp.error);
        goto out;
    }
    int64_t skipped = s_record(ctx, &p, err);
    if (skipped < 0)
        goto out;
    const char *values[2] = {p.array, p.ca};
    PGresult *res = s_exec(ctx, "notify_count", s_count_sql, 2, values);
    if (!res) {
        s_db_failed(ctx, "count the due notices", err);
        goto out;
    }
    int64_t due = atoll(PQgetvalue(res, 0, 0)), sent = 0, failed = 0;
    PQclear(res);
    if (!(smtp = notify_smtp_new(&state->smtp, ctx->worker))) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    /* Held while a mail is on its way: the row lock is what keeps other notifiers off this
     * notice, so the session must outlive the slowest send. */
    char idle_sql[96];
    snprintf(idle_sql, sizeof idle_sql, "SET LOCAL idle_in_transaction_session_timeout = %d",
             state->smtp.timeout_ms + 30000);
    char server_error[NOTIFY_ERROR_MAX] = "";
    uint64_t deadline = cf_job_deadline_ms(job);
    while (sent + failed < p.limit) {
        /* Past the deadline nobody waits for the reply: leave the rest to the next job. */
        if (deadline && cf_now_ms() > deadline)
            break;
        cf_worker_keepalive(ctx->worker);
        if (cf_pg_begin(ctx->pg) != 0 || cf_pg_exec(ctx->pg, idle_sql) != 0 ||
            !(row = s_exec(ctx, "notify_claim", s_claim_sql, 2, values))) {
            s_db_failed(ctx, "claim a notice", err);
            goto out;
        }
        if (PQntuples(row) == 0) {
            cf_pg_rollback(ctx->pg);
            break;
        }
        char error[NOTIFY_ERROR_MAX] = "";
        if (server_error[0]) {
            /* The server already failed in this job: do not wait for it again. */
            snprintf(error, sizeof error, "not tried, the mail server failed earlier: %s",
                     server_error);
        } else {
            notify_mail_t mail = {.from = state->smtp.from,
                                  .from_domain = state->smtp.from_domain,
                                  .to = PQgetvalue(row, 0, S_MAIL),
                                  .to_name = PQgetvalue(row, 0, S_NAME),
                                  .cn = PQgetvalue(row, 0, S_CN),
                                  .serial = PQgetvalue(row, 0, S_SERIAL),
                                  .ca = PQgetvalue(row, 0, S_CA),
                                  .expires = atoll(PQgetvalue(row, 0, S_EXPIRES)),
                                  .now = (int64_t)time(NULL)};
            size_t len = 0;
            char *msg = notify_mail_compose(&mail, &len);
            int how = msg ? notify_smtp_send(smtp, mail.to, msg, len, error, sizeof error)
                          : NOTIFY_REFUSED;
            free(msg);
            if (!msg)
                snprintf(error, sizeof error, "out of memory");
            if (how == NOTIFY_SERVER_FAILED)
                snprintf(server_error, sizeof server_error, "%s", error);
            if (how == NOTIFY_SENT)
                error[0] = '\0';
        }
        if (s_finish(ctx, row, error[0] ? error : NULL, state->retry_s, err) != 0)
            goto out;
        if (error[0]) {
            failed++;
            cf_log_warn("notify.expiring: could not mail \"%s\" about certificate %s of \"%s\": "
                        "%s",
                        PQgetvalue(row, 0, S_MAIL), PQgetvalue(row, 0, S_SERIAL),
                        PQgetvalue(row, 0, S_CA), error);
        } else {
            sent++;
            cf_audit("notify.sent", "ca", PQgetvalue(row, 0, S_CA), "serial",
                     PQgetvalue(row, 0, S_SERIAL), "mail", PQgetvalue(row, 0, S_MAIL),
                     "threshold_days", PQgetvalue(row, 0, S_DAYS), NULL);
        }
        PQclear(row);
        row = NULL;
    }
    s_pack_counts(result, 0, due, sent, failed, skipped, false);
    rc = 0;
out:
    PQclear(row);
    notify_smtp_destroy(&smtp);
    json_decref(params);
    return rc;
}
