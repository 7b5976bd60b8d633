/* store: each MHD thread's own Redis and PostgreSQL connections (neither client is safe to
 * share between threads, and one per thread needs no lock), and the reads of pre-signed OCSP
 * responses and CRLs: Redis first, PostgreSQL on a miss, then the value back into Redis.
 * Hot OCSP responses can also be kept in the thread for [ocspd] response_cache_ms (0, off),
 * which spares a Redis round trip per request for the serials asked most; a
 * revocation then shows within that time instead of at once. */
#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_job.h"
#include "cf_log.h"
#include "cf_pg.h"
#include "cf_redis.h"
#include "ocspd.h"

/* One slot of the thread's cache of OCSP responses (direct-mapped by CA id and serial). */
typedef struct {
    int64_t ca_id;       /* 0: empty */
    char serial[48];     /* as stored */
    ocspd_blob_t blob;   /* the response and its times (owned) */
    uint64_t fetched_ms; /* monotonic ms when it was read from Redis or PostgreSQL */
} s_slot_t;

#define S_SLOTS 1024

struct _ocspd_store_t {
    cf_redis_t *redis;       /* this thread's Redis connection */
    cf_pg_t *pg;             /* this thread's PostgreSQL connection */
    int64_t cache_ms;        /* [ocspd] response_cache_ms */
    s_slot_t slots[S_SLOTS]; /* hot OCSP responses */
};

static s_slot_t *s_slot(ocspd_store_t *self, int64_t ca_id, const char *serial)
{
    uint64_t h = 1469598103934665603ull ^ (uint64_t)ca_id;
    for (const char *p = serial; *p; p++)
        h = (h ^ (unsigned char)*p) * 1099511628211ull;
    return &self->slots[h % S_SLOTS];
}

/* A copy of the cached response of (CA_ID, SERIAL) when it is fresh. 1 or 0. */
static int s_cache_get(ocspd_store_t *self, int64_t ca_id, const char *serial, ocspd_blob_t *out)
{
    s_slot_t *slot = s_slot(self, ca_id, serial);
    if (self->cache_ms <= 0 || slot->ca_id != ca_id || strcmp(slot->serial, serial) != 0 ||
        cf_mono_ms() - slot->fetched_ms >= (uint64_t)self->cache_ms ||
        (int64_t)time(NULL) >= slot->blob.next_update)
        return 0;
    out->data = malloc(slot->blob.len);
    if (!out->data)
        return 0;
    memcpy(out->data, slot->blob.data, slot->blob.len);
    out->len = slot->blob.len;
    out->this_update = slot->blob.this_update;
    out->next_update = slot->blob.next_update;
    return 1;
}

static void s_cache_put(ocspd_store_t *self, int64_t ca_id, const char *serial,
                        const ocspd_blob_t *blob)
{
    s_slot_t *slot = s_slot(self, ca_id, serial);
    if (self->cache_ms <= 0 || strlen(serial) >= sizeof slot->serial)
        return;
    unsigned char *copy = malloc(blob->len);
    if (!copy)
        return;
    memcpy(copy, blob->data, blob->len);
    ocspd_blob_clear(&slot->blob);
    slot->blob = (ocspd_blob_t){.data = copy,
                                .len = blob->len,
                                .this_update = blob->this_update,
                                .next_update = blob->next_update};
    slot->ca_id = ca_id;
    snprintf(slot->serial, sizeof slot->serial, "%s", serial);
    slot->fetched_ms = cf_mono_ms();
}

/* Rows are read in binary: bytea as its bytes, bigint as 8 bytes big-endian. Times are
 * whole seconds, truncated as the signed thisUpdate/nextUpdate are. */
#define S_SQL_OCSP                                                                                 \
    "SELECT der, floor(extract(epoch FROM this_update))::bigint,"                                  \
    " floor(extract(epoch FROM next_update))::bigint FROM ocsp_responses"                          \
    " WHERE ca_id = $1 AND serial = $2 AND next_update > now()"
#define S_SQL_CRL                                                                                  \
    "SELECT der, floor(extract(epoch FROM this_update))::bigint,"                                  \
    " floor(extract(epoch FROM next_update))::bigint FROM crls"                                    \
    " WHERE ca_id = $1 AND scope = $2 AND shard = $3"
#define S_SQL_CAS "SELECT id, name, der FROM certificate_authorities ORDER BY id"

void ocspd_blob_clear(ocspd_blob_t *blob)
{
    free(blob->data);
    memset(blob, 0, sizeof *blob);
}

void ocspd_store_destroy(void *store)
{
    ocspd_store_t *self = store;
    if (!self)
        return;
    cf_redis_destroy(&self->redis);
    cf_pg_destroy(&self->pg);
    for (size_t i = 0; i < S_SLOTS; i++)
        ocspd_blob_clear(&self->slots[i].blob);
    free(self);
}

ocspd_store_t *ocspd_store_get(pthread_key_t key, cf_config_t *cfg)
{
    ocspd_store_t *self = pthread_getspecific(key);
    if (self)
        return self;
    self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->redis = cf_redis_new_from_config(cfg);
    self->pg = cf_pg_new_from_config(cfg);
    self->cache_ms = cf_config_get_int(cfg, "ocspd", "response_cache_ms", 0);
    if (!self->redis || !self->pg || cf_pg_prepare(self->pg, "ocspd_ocsp", S_SQL_OCSP) != 0 ||
        cf_pg_prepare(self->pg, "ocspd_crl", S_SQL_CRL) != 0 ||
        cf_pg_prepare(self->pg, "ocspd_cas", S_SQL_CAS) != 0 ||
        pthread_setspecific(key, self) != 0) {
        ocspd_store_destroy(self);
        return NULL;
    }
    return self;
}

static int64_t s_int8(const char *p)
{
    uint32_t hi, lo;
    memcpy(&hi, p, 4);
    memcpy(&lo, p + 4, 4);
    return (int64_t)(((uint64_t)ntohl(hi) << 32) | ntohl(lo));
}

/* Look KEY up in Redis. 1 (OUT filled) on a current value, 0 on a miss (also an expired or
 * damaged value: PostgreSQL then decides), -1 when Redis did not answer. */
static int s_redis_get(ocspd_store_t *self, const char *key, ocspd_blob_t *out)
{
    redisReply *r = cf_redis_command(self->redis, "GET %s", key);
    if (!r) {
        cf_log_warn("could not read \"%s\" from Redis: %s", key, cf_redis_errstr(self->redis));
        return -1;
    }
    int rc = 0;
    int64_t this_update, next_update;
    if (r->type == REDIS_REPLY_STRING &&
        cf_revstore_parse((const unsigned char *)r->str, r->len, &this_update, &next_update) == 0 &&
        r->len > CF_REVSTORE_HEADER && next_update > (int64_t)time(NULL)) {
        size_t n = r->len - CF_REVSTORE_HEADER;
        out->data = malloc(n);
        if (out->data) {
            memcpy(out->data, r->str + CF_REVSTORE_HEADER, n);
            out->len = n;
            out->this_update = this_update;
            out->next_update = next_update;
            rc = 1;
        } else {
            rc = -1;
        }
    } else if (r->type == REDIS_REPLY_STRING) {
        cf_log_warn("Redis value \"%s\" is damaged or out of date, reading PostgreSQL", key);
    }
    freeReplyObject(r);
    return rc;
}

/* Put BLOB back under KEY until its next_update, as the workers write it. Best effort: a
 * failure only costs the next reader a PostgreSQL query. */
static void s_redis_put(ocspd_store_t *self, const char *key, const ocspd_blob_t *blob)
{
    if (blob->next_update <= (int64_t)time(NULL))
        return;
    size_t n = CF_REVSTORE_HEADER + blob->len;
    unsigned char *value = malloc(n);
    if (!value)
        return;
    cf_revstore_header(value, blob->this_update, blob->next_update);
    memcpy(value + CF_REVSTORE_HEADER, blob->data, blob->len);
    /* NX: a worker that stored a newer value meanwhile must not be overwritten by ours. */
    redisReply *r = cf_redis_command(self->redis, "SET %s %b NX EXAT %lld", key, value, n,
                                     (long long)blob->next_update);
    if (!r)
        cf_log_warn("could not put \"%s\" back into Redis: %s", key, cf_redis_errstr(self->redis));
    else
        cf_log_debug("put \"%s\" back into Redis", key);
    freeReplyObject(r);
    free(value);
}

/* Run a statement whose one row is (der, this_update, next_update). 1, 0 or -1. */
static int s_pg_get(ocspd_store_t *self, const char *stmt, int nparams, const char *const *params,
                    const char *what, ocspd_blob_t *out)
{
    PGresult *res = cf_pg_exec_prepared(self->pg, stmt, nparams, params, NULL, NULL, 1);
    if (!res) {
        cf_log_warn("could not read %s from PostgreSQL: %s", what, cf_pg_errstr(self->pg));
        return -1;
    }
    int rc = 0;
    if (PQntuples(res) == 1 && PQgetlength(res, 0, 1) == 8 && PQgetlength(res, 0, 2) == 8) {
        size_t n = (size_t)PQgetlength(res, 0, 0);
        out->data = malloc(n ? n : 1);
        if (out->data) {
            memcpy(out->data, PQgetvalue(res, 0, 0), n);
            out->len = n;
            out->this_update = s_int8(PQgetvalue(res, 0, 1));
            out->next_update = s_int8(PQgetvalue(res, 0, 2));
            rc = 1;
        } else {
            rc = -1;
        }
    }
    PQclear(res);
    return rc;
}

int ocspd_store_ocsp(ocspd_store_t *self, int64_t ca_id, const char *serial, ocspd_blob_t *out)
{
    memset(out, 0, sizeof *out);
    if (s_cache_get(self, ca_id, serial, out) == 1)
        return 1;
    char key[200];
    cf_revstore_ocsp_key(key, sizeof key, ca_id, serial);
    int in_redis = s_redis_get(self, key, out);
    if (in_redis == 1) {
        s_cache_put(self, ca_id, serial, out);
        return 1;
    }
    char id[24];
    snprintf(id, sizeof id, "%lld", (long long)ca_id);
    const char *params[] = {id, serial};
    int rc = s_pg_get(self, "ocspd_ocsp", 2, params, "an OCSP response", out);
    /* Refill only after a clean miss: when Redis is down, writing would just time out too. */
    if (rc == 1 && in_redis == 0)
        s_redis_put(self, key, out);
    if (rc == 1)
        s_cache_put(self, ca_id, serial, out);
    return rc;
}

int ocspd_store_crl(ocspd_store_t *self, int64_t ca_id, cf_scope_t scope, int shard,
                    size_t cache_max, ocspd_blob_t *out)
{
    memset(out, 0, sizeof *out);
    char key[200];
    cf_revstore_crl_key(key, sizeof key, ca_id, scope, shard);
    int in_redis = s_redis_get(self, key, out);
    if (in_redis == 1)
        return 1;
    char id[24], shard_text[16];
    snprintf(id, sizeof id, "%lld", (long long)ca_id);
    snprintf(shard_text, sizeof shard_text, "%d", shard);
    const char *params[] = {id, cf_scope_name(scope), shard_text};
    int rc = s_pg_get(self, "ocspd_crl", 3, params, "a CRL", out);
    /* A CRL of many MiB would make every Redis GET of it slow for everyone sharing Redis:
     * such CRLs are read from PostgreSQL each time (a caching proxy in front absorbs it). */
    if (rc == 1 && in_redis == 0 && out->len <= cache_max)
        s_redis_put(self, key, out);
    return rc;
}

PGresult *ocspd_store_cas(ocspd_store_t *self)
{
    PGresult *res = cf_pg_exec_prepared(self->pg, "ocspd_cas", 0, NULL, NULL, NULL, 1);
    if (!res)
        cf_log_warn("could not read the CAs from PostgreSQL: %s", cf_pg_errstr(self->pg));
    return res;
}

bool ocspd_store_healthy(ocspd_store_t *self)
{
    redisReply *r = cf_redis_command(self->redis, "PING");
    bool redis_ok = r && r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (!redis_ok)
        cf_log_warn("health: Redis does not answer: %s", cf_redis_errstr(self->redis));
    bool pg_ok = cf_pg_exec(self->pg, "SELECT 1") == 0;
    if (!pg_ok)
        cf_log_warn("health: PostgreSQL does not answer: %s", cf_pg_errstr(self->pg));
    return redis_ok && pg_ok;
}
