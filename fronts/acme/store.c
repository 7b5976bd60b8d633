/* store: each MHD thread's own PostgreSQL, Redis and broker connections (none of the three
 * clients may be shared between threads, and one each per thread needs no lock), the SQL
 * helper every handler uses, random slugs and tokens, and the CA lookup. */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "cf_base64url.h"
#include "cf_log.h"
#include "cf_pg.h"

struct _acme_store_t {
    cf_config_t *cfg;    /* the config, for making the broker client (borrowed) */
    cf_pg_t *pg;         /* this thread's PostgreSQL connection */
    cf_redis_t *redis;   /* this thread's Redis connection */
    cf_client_t *client; /* this thread's broker client, NULL until first needed */
};

/* Only the CAs that serve ACME and could sign now: a disabled, revoked or expired CA has no
 * directory (its URLs answer 404). */
#define S_SQL_CA                                                                                   \
    "SELECT id, name, acme_registration, acme_requires_contact, coalesce(acme_profile, ''),"       \
    " website, terms_of_service, caa FROM certificate_authorities WHERE name = $1"                 \
    " AND acme_enabled AND enabled AND NOT revoked AND expires > now()"

void acme_store_destroy(void *store)
{
    acme_store_t *self = store;
    if (!self)
        return;
    cf_client_destroy(&self->client);
    cf_redis_destroy(&self->redis);
    cf_pg_destroy(&self->pg);
    free(self);
}

acme_store_t *acme_store_get(pthread_key_t key, cf_config_t *cfg)
{
    acme_store_t *self = pthread_getspecific(key);
    if (self)
        return self;
    self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->redis = cf_redis_new_from_config(cfg);
    self->pg = cf_pg_new_from_config(cfg);
    if (!self->redis || !self->pg || pthread_setspecific(key, self) != 0) {
        acme_store_destroy(self);
        return NULL;
    }
    return self;
}

PGresult *acme_sql(acme_store_t *self, const char *name, const char *sql, int nparams,
                   const char *const *values, const int *lengths, const int *formats,
                   const char *what)
{
    /* Registering again with the same text is a no-op: each statement is prepared once per
     * connection, on first use. */
    if (cf_pg_prepare(self->pg, name, sql) != 0) {
        cf_log_error("could not register statement \"%s\": %s", name, cf_pg_errstr(self->pg));
        return NULL;
    }
    PGresult *res = cf_pg_exec_prepared(self->pg, name, nparams, values, lengths, formats, 0);
    if (!res && strcmp(cf_pg_sqlstate(self->pg), "23505") != 0)
        cf_log_warn("could not %s: %s", what, cf_pg_errstr(self->pg));
    return res;
}

int acme_begin(acme_store_t *self)
{
    if (cf_pg_begin(self->pg) != 0) {
        cf_log_warn("could not begin a transaction: %s", cf_pg_errstr(self->pg));
        return -1;
    }
    return 0;
}

int acme_commit(acme_store_t *self)
{
    if (cf_pg_commit(self->pg) != 0) {
        cf_log_warn("could not commit: %s", cf_pg_errstr(self->pg));
        return -1;
    }
    return 0;
}

void acme_rollback(acme_store_t *self)
{
    if (cf_pg_in_transaction(self->pg))
        cf_pg_rollback(self->pg);
}

const char *acme_sqlstate(acme_store_t *self)
{
    return cf_pg_sqlstate(self->pg);
}

cf_redis_t *acme_store_redis(acme_store_t *self)
{
    return self->redis;
}

cf_client_t *acme_store_client(acme_store_t *self)
{
    if (!self->client) {
        self->client = cf_client_new_from_config(self->cfg);
        if (!self->client)
            return NULL;
    }
    /* Jobs sent without waiting (acme.validate) or given up on (a slow cert.issue) answer
     * later: read those replies now, so that they neither pile up nor get taken for the
     * reply of the next job. Reading also resends what is overdue. */
    cf_reply_t *stale;
    while ((stale = cf_client_recv(self->client, 0)) != NULL)
        cf_reply_destroy(&stale);
    return self->client;
}

bool acme_store_healthy(acme_store_t *self)
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

static int s_random(size_t nbytes, char out[ACME_SLUG_MAX])
{
    unsigned char raw[ACME_TOKEN_BYTES];
    if (nbytes > sizeof raw || RAND_bytes(raw, (int)nbytes) != 1)
        return -1;
    char *text = cf_base64url_encode(raw, nbytes);
    if (!text || strlen(text) >= ACME_SLUG_MAX) {
        free(text);
        return -1;
    }
    strcpy(out, text);
    free(text);
    return 0;
}

int acme_random_slug(char out[ACME_SLUG_MAX])
{
    return s_random(ACME_SLUG_BYTES, out);
}

int acme_random_token(char out[ACME_SLUG_MAX])
{
    return s_random(ACME_TOKEN_BYTES, out);
}

bool acme_slug_valid(const char *text)
{
    size_t n = strlen(text);
    if (n == 0 || n >= ACME_SLUG_MAX)
        return false;
    return strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == n;
}

int64_t acme_int(const PGresult *res, int row, int col)
{
    if (PQgetisnull(res, row, col))
        return 0;
    return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

static bool s_ca_name_valid(const char *name)
{
    size_t n = strlen(name);
    if (n == 0 || n > 64)
        return false;
    static const char alnum[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    return strchr(alnum, name[0]) && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrst"
                                                  "uvwxyz0123456789._-") == n;
}

int acme_ca_load(acme_store_t *store, const char *name, acme_ca_t *out)
{
    memset(out, 0, sizeof *out);
    if (!s_ca_name_valid(name))
        return 0;
    const char *v[] = {name};
    PGresult *res = acme_sql(store, "acme_ca", S_SQL_CA, 1, v, NULL, NULL, "read the CA");
    if (!res)
        return -1;
    int rc = 0;
    if (PQntuples(res) == 1) {
        out->id = acme_int(res, 0, 0);
        snprintf(out->name, sizeof out->name, "%s", PQgetvalue(res, 0, 1));
        out->registration = PQgetvalue(res, 0, 2)[0] == 't';
        out->requires_contact = PQgetvalue(res, 0, 3)[0] == 't';
        snprintf(out->profile, sizeof out->profile, "%s", PQgetvalue(res, 0, 4));
        snprintf(out->website, sizeof out->website, "%s", PQgetvalue(res, 0, 5));
        snprintf(out->terms_of_service, sizeof out->terms_of_service, "%s", PQgetvalue(res, 0, 6));
        snprintf(out->caa, sizeof out->caa, "%s", PQgetvalue(res, 0, 7));
        rc = 1;
    }
    PQclear(res);
    return rc;
}
