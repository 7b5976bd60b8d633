/* Storing a finished CRL into crls without a second whole copy in libpq: the DER goes to the
 * server with COPY ... FROM STDIN in binary format, in chunks, into a temporary table, and an
 * INSERT ... SELECT moves it into crls. A plain bytea parameter would have libpq copy the
 * whole CRL into its output buffer (and text format would double it again). */
#include <stdio.h>
#include <string.h>

#include "cf_log.h"
#include "crl.h"

/* Bytes handed to libpq per PQputCopyData: libpq flushes as it goes in blocking mode. */
#define S_CHUNK (1024 * 1024)

/* The temporary table, made once per session; ON COMMIT DELETE ROWS empties it with every
 * transaction, so a rolled back job leaves nothing behind either. */
static int s_upload_table(PGconn *conn)
{
    PGresult *res = PQexec(conn, "SELECT to_regclass('pg_temp.cf_crl_upload') IS NULL");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) {
        PQclear(res);
        return -1;
    }
    bool missing = strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    res = PQexec(conn, missing ? "CREATE TEMP TABLE cf_crl_upload (der bytea NOT NULL) "
                                 "ON COMMIT DELETE ROWS"
                               : "DELETE FROM cf_crl_upload");
    int rc = PQresultStatus(res) == PGRES_COMMAND_OK ? 0 : -1;
    PQclear(res);
    return rc;
}

static void s_be32(unsigned char *out, uint32_t v)
{
    out[0] = (unsigned char)(v >> 24);
    out[1] = (unsigned char)(v >> 16);
    out[2] = (unsigned char)(v >> 8);
    out[3] = (unsigned char)v;
}

/* COPY the DER as one row of cf_crl_upload. 0 or -1. */
static int s_copy(cf_handler_ctx_t *ctx, PGconn *conn, const unsigned char *der, size_t len)
{
    PGresult *res = PQexec(conn, "COPY cf_crl_upload (der) FROM STDIN (FORMAT binary)");
    ExecStatusType st = PQresultStatus(res);
    PQclear(res);
    if (st != PGRES_COPY_IN)
        return -1;
    /* Binary COPY: signature, flags, header extension length; one tuple of one field. */
    unsigned char head[11 + 4 + 4 + 2 + 4];
    memcpy(head, "PGCOPY\n\377\r\n\0", 11);
    s_be32(head + 11, 0);
    s_be32(head + 15, 0);
    head[19] = 0;
    head[20] = 1;
    s_be32(head + 21, (uint32_t)len);
    bool ok = PQputCopyData(conn, (const char *)head, sizeof head) == 1;
    for (size_t off = 0; ok && off < len; off += S_CHUNK) {
        size_t n = len - off < S_CHUNK ? len - off : S_CHUNK;
        ok = PQputCopyData(conn, (const char *)der + off, (int)n) == 1;
        cf_worker_keepalive(ctx->worker);
    }
    static const unsigned char trailer[2] = {0xff, 0xff};
    ok = ok && PQputCopyData(conn, (const char *)trailer, sizeof trailer) == 1;
    if (PQputCopyEnd(conn, ok ? NULL : "could not send the CRL") != 1)
        ok = false;
    while ((res = PQgetResult(conn)) != NULL) {
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            cf_log_error("could not upload CRL: %s", PQresultErrorMessage(res));
            ok = false;
        }
        PQclear(res);
    }
    return ok ? 0 : -1;
}

int crl_store(cf_handler_ctx_t *ctx, int64_t ca_id, const char *scope, int shard, int64_t number,
              int64_t this_update, int64_t next_update, int64_t entries, const unsigned char *der,
              size_t len, int64_t marks_seen, int *stored)
{
    *stored = 0;
    if (len > 0x7fffffffu)
        return -1; /* a bytea holds at most 1 GB anyway */
    PGconn *conn = cf_pg_conn(ctx->pg);
    if (!conn || s_upload_table(conn) != 0 || s_copy(ctx, conn, der, len) != 0) {
        if (conn)
            cf_log_error("could not store CRL: %s", PQerrorMessage(conn));
        return -1;
    }
    char id[24], sh[16], num[24], t1[24], t2[24], n[24], marks[24];
    snprintf(marks, sizeof marks, "%lld", (long long)marks_seen);
    snprintf(id, sizeof id, "%lld", (long long)ca_id);
    snprintf(sh, sizeof sh, "%d", shard);
    snprintf(num, sizeof num, "%lld", (long long)number);
    snprintf(t1, sizeof t1, "%lld", (long long)this_update);
    snprintf(t2, sizeof t2, "%lld", (long long)next_update);
    snprintf(n, sizeof n, "%lld", (long long)entries);
    const char *values[] = {id, scope, sh, num, t1, t2, n, ctx->name ? ctx->name : "", marks};
    /* A revocation that marked the stored row after MARKS_SEEN was read came too late for
     * this build's entries: the new CRL is stored stale, and the next if_stale build lists
     * it. Only a higher number replaces the stored CRL: a build that lost a race to a newer one
     * (or used a counter of its own that is behind) must not move the CRL backwards. */
    PGresult *res = cf_pg_exec_params(
        ctx->pg,
        "INSERT INTO crls AS c (ca_id, scope, shard, number, this_update, next_update, entries, "
        "der, stale, built_by, updated_at) "
        "SELECT $1::bigint, $2, $3::int, $4::bigint, to_timestamp($5::bigint), "
        "to_timestamp($6::bigint), $7::bigint, der, false, $8, now() FROM cf_crl_upload "
        "ON CONFLICT (ca_id, scope, shard) DO UPDATE SET number = EXCLUDED.number, "
        "this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, "
        "entries = EXCLUDED.entries, der = EXCLUDED.der, stale = c.marks <> $9::bigint, "
        "built_by = EXCLUDED.built_by, updated_at = now() WHERE c.number < EXCLUDED.number "
        "RETURNING 1",
        9, values, NULL, NULL, 0);
    if (!res)
        return -1;
    *stored = PQntuples(res) == 1;
    PQclear(res);
    return 0;
}
