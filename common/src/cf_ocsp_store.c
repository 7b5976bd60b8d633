/* cf_ocsp_store: pre-signed OCSP responses into PostgreSQL (ocsp_responses, one current row per
 * CA and serial) and into the Redis cache in front of it (cf_revocation.h). The bulk paths
 * send a whole chunk as one statement with binary array parameters and one Redis pipeline, so
 * that storing costs little next to signing. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"
#include "cf_ocsp.h"
#include "cf_revocation.h"

/* PostgreSQL type oids of the array elements we send (pg_type.dat). */
#define S_OID_BYTEA 17
#define S_OID_TEXT  25

#define S_KEY_MAX 160

unsigned char *cf_ocsp_cache_value(int64_t this_update, int64_t next_update,
                                   const unsigned char *der, int len, size_t *out_len)
{
    if (!der || len <= 0)
        return NULL;
    unsigned char *value = malloc(CF_REVSTORE_HEADER + (size_t)len);
    if (!value)
        return NULL;
    cf_revstore_header(value, this_update, next_update);
    memcpy(value + CF_REVSTORE_HEADER, der, (size_t)len);
    *out_len = CF_REVSTORE_HEADER + (size_t)len;
    return value;
}

int cf_ocsp_store(cf_pg_t *pg, int64_t ca_id, const cf_ocsp_status_t *st, int64_t responder_id,
                  int64_t this_update, int64_t next_update, const unsigned char *der, int len,
                  cf_error_t *err)
{
    char ca_text[32], this_text[32], next_text[32], resp_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)ca_id);
    snprintf(this_text, sizeof this_text, "%lld", (long long)this_update);
    snprintf(next_text, sizeof next_text, "%lld", (long long)next_update);
    snprintf(resp_text, sizeof resp_text, "%lld", (long long)responder_id);
    const char *values[7] = {ca_text,          st->serial, st->revoked ? "revoked" : "good",
                             this_text,        next_text,  resp_text,
                             (const char *)der};
    int lengths[7] = {0, 0, 0, 0, 0, 0, len};
    int formats[7] = {0, 0, 0, 0, 0, 0, 1};
    cf_pg_prepare(pg, "cf_ocsp_store",
                  "INSERT INTO ocsp_responses (ca_id, serial, status, this_update, next_update, "
                  "responder_id, der) VALUES ($1::bigint, $2, $3, to_timestamp($4::bigint), "
                  "to_timestamp($5::bigint), $6::bigint, $7::bytea) "
                  "ON CONFLICT (ca_id, serial) DO UPDATE SET status = EXCLUDED.status, "
                  "this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, "
                  "responder_id = EXCLUDED.responder_id, der = EXCLUDED.der");
    PGresult *res = cf_pg_exec_prepared(pg, "cf_ocsp_store", 7, values, lengths, formats, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not store the OCSP response of \"%s\": %s",
                     st->serial, cf_pg_errstr(pg));
        return -1;
    }
    PQclear(res);
    return 0;
}

/* ---------------------------------------------------------------- binary arrays */

/* A growing buffer for a one-dimensional array in PostgreSQL's binary format (array_send):
 * ndim, has-nulls flag, element oid, then per dimension its size and lower bound, then each
 * element as a 4-octet length and its bytes; all integers big-endian. */
typedef struct {
    unsigned char *data; /* the bytes */
    size_t len;          /* used */
    size_t cap;          /* allocated */
    bool oom;            /* an allocation failed */
} s_array_t;

static void s_reserve(s_array_t *a, size_t more)
{
    if (a->oom || a->len + more <= a->cap)
        return;
    size_t cap = a->cap ? a->cap : 256;
    while (cap < a->len + more)
        cap *= 2;
    unsigned char *data = realloc(a->data, cap);
    if (!data) {
        a->oom = true;
        return;
    }
    a->data = data;
    a->cap = cap;
}

static void s_put32(s_array_t *a, uint32_t v)
{
    s_reserve(a, 4);
    if (a->oom)
        return;
    a->data[a->len++] = (unsigned char)(v >> 24);
    a->data[a->len++] = (unsigned char)(v >> 16);
    a->data[a->len++] = (unsigned char)(v >> 8);
    a->data[a->len++] = (unsigned char)v;
}

static void s_array_begin(s_array_t *a, uint32_t oid, size_t n)
{
    s_put32(a, 1);
    s_put32(a, 0);
    s_put32(a, oid);
    s_put32(a, (uint32_t)n);
    s_put32(a, 1);
}

static void s_array_add(s_array_t *a, const void *data, size_t len)
{
    s_put32(a, (uint32_t)len);
    s_reserve(a, len);
    if (a->oom)
        return;
    memcpy(a->data + a->len, data, len);
    a->len += len;
}

static int s_cmp_serial(const void *a, const void *b)
{
    const cf_ocsp_row_t *const *x = a, *const *y = b;
    return strcmp((*x)->serial, (*y)->serial);
}

int cf_ocsp_store_many(cf_pg_t *pg, int64_t ca_id, int64_t responder_id, int64_t this_update,
                       int64_t next_update, cf_ocsp_row_t *rows, size_t n, size_t *stored,
                       cf_error_t *err)
{
    if (stored)
        *stored = 0;
    for (size_t i = 0; i < n; i++)
        rows[i].stored = false;
    if (n == 0)
        return 0;
    s_array_t serials = {0}, statuses = {0}, ders = {0}, replace = {0};
    size_t nreplace = 0;
    for (size_t i = 0; i < n; i++)
        nreplace += rows[i].replace_revoked && !rows[i].revoked;
    s_array_begin(&serials, S_OID_TEXT, n);
    s_array_begin(&statuses, S_OID_TEXT, n);
    s_array_begin(&ders, S_OID_BYTEA, n);
    s_array_begin(&replace, S_OID_TEXT, nreplace);
    for (size_t i = 0; i < n; i++) {
        const char *status = rows[i].revoked ? "revoked" : "good";
        s_array_add(&serials, rows[i].serial, strlen(rows[i].serial));
        s_array_add(&statuses, status, strlen(status));
        s_array_add(&ders, rows[i].der, (size_t)rows[i].len);
        if (rows[i].replace_revoked && !rows[i].revoked)
            s_array_add(&replace, rows[i].serial, strlen(rows[i].serial));
    }
    const cf_ocsp_row_t **sorted = malloc(n * sizeof *sorted);
    int rc = -1;
    PGresult *res = NULL;
    if (serials.oom || statuses.oom || ders.oom || replace.oom || !sorted) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    char ca_text[32], this_text[32], next_text[32], resp_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)ca_id);
    snprintf(this_text, sizeof this_text, "%lld", (long long)this_update);
    snprintf(next_text, sizeof next_text, "%lld", (long long)next_update);
    snprintf(resp_text, sizeof resp_text, "%lld", (long long)responder_id);
    const char *values[8] = {ca_text,
                             (const char *)serials.data,
                             (const char *)statuses.data,
                             (const char *)ders.data,
                             this_text,
                             next_text,
                             resp_text,
                             (const char *)replace.data};
    int lengths[8] = {0, (int)serials.len, (int)statuses.len, (int)ders.len, 0, 0,
                      0, (int)replace.len};
    int formats[8] = {0, 1, 1, 1, 0, 0, 0, 1};
    /* A stored revoked response is replaced by a good one only when the caller says so: a
     * run that read the certificate as good just before cert.revoke committed must not undo
     * the revoked response (see docs/ocsp.md, "Races with revocation"). */
    cf_pg_prepare(pg, "cf_ocsp_store_many",
                  "INSERT INTO ocsp_responses AS o (ca_id, serial, status, this_update, "
                  "next_update, responder_id, der) "
                  "SELECT $1::bigint, t.s, t.st, to_timestamp($5::bigint), "
                  "to_timestamp($6::bigint), $7::bigint, t.d "
                  "FROM unnest($2::text[], $3::text[], $4::bytea[]) AS t(s, st, d) "
                  "ON CONFLICT (ca_id, serial) DO UPDATE SET status = EXCLUDED.status, "
                  "this_update = EXCLUDED.this_update, next_update = EXCLUDED.next_update, "
                  "responder_id = EXCLUDED.responder_id, der = EXCLUDED.der "
                  "WHERE o.status = 'good' OR EXCLUDED.status = 'revoked' "
                  "OR EXCLUDED.serial = ANY ($8::text[]) "
                  "RETURNING o.serial");
    res = cf_pg_exec_prepared(pg, "cf_ocsp_store_many", 8, values, lengths, formats, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not store %zu OCSP responses: %s", n,
                     cf_pg_errstr(pg));
        goto out;
    }
    for (size_t i = 0; i < n; i++)
        sorted[i] = &rows[i];
    qsort(sorted, n, sizeof *sorted, s_cmp_serial);
    size_t count = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        cf_ocsp_row_t key = {.serial = PQgetvalue(res, r, 0)};
        const cf_ocsp_row_t *kp = &key;
        const cf_ocsp_row_t **hit = bsearch(&kp, sorted, n, sizeof *sorted, s_cmp_serial);
        if (hit && !(*hit)->stored) {
            ((cf_ocsp_row_t *)*hit)->stored = true;
            count++;
        }
    }
    if (stored)
        *stored = count;
    rc = 0;
out:
    PQclear(res);
    free(sorted);
    free(serials.data);
    free(statuses.data);
    free(ders.data);
    free(replace.data);
    return rc;
}

/* ---------------------------------------------------------------- Redis */

int cf_ocsp_cache_many(cf_redis_t *redis, int64_t ca_id, const cf_ocsp_row_t *rows, size_t n,
                       int64_t this_update, int64_t next_update)
{
    char at[32];
    snprintf(at, sizeof at, "%lld", (long long)next_update);
    size_t queued = 0, failed = 0;
    unsigned char *value = NULL;
    size_t cap = 0;
    for (size_t i = 0; i < n; i++) {
        if (!rows[i].stored)
            continue;
        size_t need = CF_REVSTORE_HEADER + (size_t)rows[i].len;
        if (need > cap) {
            unsigned char *grown = realloc(value, need);
            if (!grown) {
                failed++;
                continue;
            }
            value = grown;
            cap = need;
        }
        cf_revstore_header(value, this_update, next_update);
        memcpy(value + CF_REVSTORE_HEADER, rows[i].der, (size_t)rows[i].len);
        char key[S_KEY_MAX];
        cf_revstore_ocsp_key(key, sizeof key, ca_id, rows[i].serial);
        const char *argv[5] = {"SET", key, (const char *)value, "EXAT", at};
        size_t lens[5] = {3, strlen(key), need, 4, strlen(at)};
        /* hiredis formats the command into its output buffer at once: VALUE may be reused. */
        if (cf_redis_appendargv(redis, 5, argv, lens) == 0) {
            queued++;
        } else {
            /* Redis is gone: every further append would wait for its own connect timeout. */
            for (size_t k = i; k < n; k++)
                failed += rows[k].stored;
            break;
        }
    }
    free(value);
    for (size_t i = 0; i < queued; i++) {
        redisReply *r = cf_redis_get_reply(redis);
        if (!r) {
            cf_redis_disconnect(redis);
            cf_log_warn("OCSP cache writes to Redis broke off: %s", cf_redis_errstr(redis));
            return -1;
        }
        if (r->type == REDIS_REPLY_ERROR)
            failed++;
        freeReplyObject(r);
    }
    if (failed)
        cf_log_warn("%zu of %zu OCSP cache writes to Redis failed: %s", failed, n,
                    cf_redis_errstr(redis));
    return (int)failed;
}

int cf_ocsp_cache_recheck(cf_pg_t *pg, cf_redis_t *redis, int64_t ca_id, const cf_ocsp_row_t *rows,
                          size_t n, cf_error_t *err)
{
    size_t count = 0;
    for (size_t i = 0; i < n; i++)
        count += rows[i].stored && !rows[i].revoked;
    if (count == 0)
        return 0;
    s_array_t serials = {0};
    s_array_begin(&serials, S_OID_TEXT, count);
    for (size_t i = 0; i < n; i++)
        if (rows[i].stored && !rows[i].revoked)
            s_array_add(&serials, rows[i].serial, strlen(rows[i].serial));
    if (serials.oom) {
        free(serials.data);
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    char ca_text[32];
    snprintf(ca_text, sizeof ca_text, "%lld", (long long)ca_id);
    const char *values[2] = {ca_text, (const char *)serials.data};
    int lengths[2] = {0, (int)serials.len};
    int formats[2] = {0, 1};
    cf_pg_prepare(pg, "cf_ocsp_cache_recheck",
                  "SELECT serial, der, extract(epoch FROM this_update)::bigint, "
                  "extract(epoch FROM next_update)::bigint FROM ocsp_responses "
                  "WHERE ca_id = $1::bigint AND serial = ANY ($2::text[]) AND status = 'revoked'");
    PGresult *res =
        cf_pg_exec_prepared(pg, "cf_ocsp_cache_recheck", 2, values, lengths, formats, 1);
    free(serials.data);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not re-read OCSP responses: %s",
                     cf_pg_errstr(pg));
        return -1;
    }
    int rewritten = 0;
    for (int r = 0; r < PQntuples(res); r++) {
        /* Binary results: text as is, bytea raw, bigint as 8 octets big-endian. */
        char serial[128];
        snprintf(serial, sizeof serial, "%.*s", PQgetlength(res, r, 0), PQgetvalue(res, r, 0));
        int64_t t[2];
        for (int c = 0; c < 2; c++) {
            const unsigned char *b = (const unsigned char *)PQgetvalue(res, r, 2 + c);
            uint64_t u = 0;
            for (int k = 0; k < 8 && PQgetlength(res, r, 2 + c) == 8; k++)
                u = (u << 8) | b[k];
            t[c] = (int64_t)u;
        }
        size_t vlen;
        unsigned char *value =
            cf_ocsp_cache_value(t[0], t[1], (const unsigned char *)PQgetvalue(res, r, 1),
                                PQgetlength(res, r, 1), &vlen);
        if (!value)
            continue;
        char key[S_KEY_MAX], at[32];
        cf_revstore_ocsp_key(key, sizeof key, ca_id, serial);
        snprintf(at, sizeof at, "%lld", (long long)t[1]);
        const char *argv[5] = {"SET", key, (const char *)value, "EXAT", at};
        size_t lens[5] = {3, strlen(key), vlen, 4, strlen(at)};
        redisReply *reply = cf_redis_commandargv(redis, 5, argv, lens);
        free(value);
        if (reply) {
            freeReplyObject(reply);
            rewritten++;
        } else {
            cf_log_warn("could not rewrite the revoked OCSP response of \"%s\" to Redis: %s",
                        serial, cf_redis_errstr(redis));
        }
    }
    PQclear(res);
    return rewritten;
}
