/* cf_pg: a PostgreSQL connection that reconnects by itself and keeps its prepared statements. */
#include "cf_pg.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"

typedef struct s_stmt_t {
    char *name;            /* statement name */
    char *sql;             /* its text */
    bool prepared;         /* prepared on the current connection */
    struct s_stmt_t *next; /* next statement */
} s_stmt_t;

struct _cf_pg_t {
    char *conninfo;    /* libpq connection string */
    PGconn *conn;      /* current connection, or NULL */
    s_stmt_t *stmts;   /* registered statements */
    bool in_tx;        /* inside BEGIN .. COMMIT */
    char errstr[1024]; /* last error */
    char sqlstate[8];  /* SQLSTATE of the last error */
};

/* Migrations of every process serialise on this advisory lock key. */
#define S_MIGRATE_LOCK 7301955101LL

static void s_set_error(cf_pg_t *self, const char *what, const PGresult *res)
{
    const char *msg =
        res ? PQresultErrorMessage(res) : (self->conn ? PQerrorMessage(self->conn) : "");
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(self->sqlstate, sizeof self->sqlstate, "%s", state ? state : "");
    snprintf(self->errstr, sizeof self->errstr, "%s: %s", what,
             msg && *msg ? msg : "unknown error");
    size_t n = strlen(self->errstr);
    while (n && (self->errstr[n - 1] == '\n' || self->errstr[n - 1] == ' '))
        self->errstr[--n] = '\0';
}

static void s_clear_error(cf_pg_t *self)
{
    self->errstr[0] = '\0';
    self->sqlstate[0] = '\0';
}

cf_pg_t *cf_pg_new(const char *conninfo)
{
    cf_pg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    /* Never wait forever for a server that does not answer. */
    size_t len = strlen(conninfo) + 32;
    self->conninfo = malloc(len);
    if (!self->conninfo) {
        free(self);
        return NULL;
    }
    if (strstr(conninfo, "connect_timeout") || strstr(conninfo, "://"))
        snprintf(self->conninfo, len, "%s", conninfo);
    else
        snprintf(self->conninfo, len, "%s connect_timeout=5", conninfo);
    return self;
}

cf_pg_t *cf_pg_new_from_config(cf_config_t *cfg)
{
    return cf_pg_new(cf_config_get(cfg, "postgres", "dsn", "host=127.0.0.1 dbname=certfleet"));
}

static void s_disconnect(cf_pg_t *self)
{
    if (self->conn)
        PQfinish(self->conn);
    self->conn = NULL;
    self->in_tx = false;
    for (s_stmt_t *s = self->stmts; s; s = s->next)
        s->prepared = false;
}

void cf_pg_destroy(cf_pg_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_pg_t *self = *self_p;
    s_disconnect(self);
    s_stmt_t *s = self->stmts;
    while (s) {
        s_stmt_t *next = s->next;
        free(s->name);
        free(s->sql);
        free(s);
        s = next;
    }
    free(self->conninfo);
    free(self);
    *self_p = NULL;
}

int cf_pg_connect(cf_pg_t *self)
{
    if (self->conn && PQstatus(self->conn) == CONNECTION_OK)
        return 0;
    s_disconnect(self);
    self->conn = PQconnectdb(self->conninfo);
    if (PQstatus(self->conn) != CONNECTION_OK) {
        s_set_error(self, "could not connect to PostgreSQL", NULL);
        s_disconnect(self);
        return -1;
    }
    /* Keep server-side errors short and in English-independent form for our logs. */
    PGresult *res = PQexec(self->conn, "SET client_min_messages = warning");
    PQclear(res);
    s_clear_error(self);
    return 0;
}

const char *cf_pg_errstr(cf_pg_t *self)
{
    return self->errstr;
}

const char *cf_pg_sqlstate(cf_pg_t *self)
{
    return self->sqlstate;
}

PGconn *cf_pg_conn(cf_pg_t *self)
{
    return cf_pg_connect(self) == 0 ? self->conn : NULL;
}

bool cf_pg_in_transaction(cf_pg_t *self)
{
    return self->in_tx;
}

int cf_pg_prepare(cf_pg_t *self, const char *name, const char *sql)
{
    for (s_stmt_t *s = self->stmts; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return strcmp(s->sql, sql) == 0 ? 0 : -1;
    s_stmt_t *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->name = strdup(name);
    s->sql = strdup(sql);
    s->next = self->stmts;
    self->stmts = s;
    return 0;
}

static bool s_result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* A connection that broke underneath us (server restart, network) shows as CONNECTION_BAD. */
static bool s_lost(cf_pg_t *self)
{
    return !self->conn || PQstatus(self->conn) != CONNECTION_OK;
}

static PGresult *s_run_prepared(cf_pg_t *self, s_stmt_t *s, int nparams, const char *const *values,
                                const int *lengths, const int *formats, int result_format)
{
    if (!s->prepared) {
        PGresult *p = PQprepare(self->conn, s->name, s->sql, 0, NULL);
        if (!s_result_ok(p)) {
            s_set_error(self, "could not prepare statement", p);
            PQclear(p);
            return NULL;
        }
        PQclear(p);
        s->prepared = true;
    }
    PGresult *res =
        PQexecPrepared(self->conn, s->name, nparams, values, lengths, formats, result_format);
    if (!s_result_ok(res)) {
        s_set_error(self, "statement failed", res);
        PQclear(res);
        return NULL;
    }
    return res;
}

PGresult *cf_pg_exec_prepared(cf_pg_t *self, const char *name, int nparams,
                              const char *const *values, const int *lengths, const int *formats,
                              int result_format)
{
    s_stmt_t *s = self->stmts;
    while (s && strcmp(s->name, name) != 0)
        s = s->next;
    if (!s) {
        snprintf(self->errstr, sizeof self->errstr, "statement \"%s\" is not registered", name);
        return NULL;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!self->in_tx && cf_pg_connect(self) != 0)
            return NULL;
        if (self->in_tx && s_lost(self)) {
            s_set_error(self, "connection lost inside a transaction", NULL);
            return NULL;
        }
        s_clear_error(self);
        PGresult *res = s_run_prepared(self, s, nparams, values, lengths, formats, result_format);
        if (res || self->in_tx || !s_lost(self))
            return res;
        cf_log_warn("PostgreSQL connection lost, reconnecting: %s", self->errstr);
        s_disconnect(self);
    }
    return NULL;
}

PGresult *cf_pg_exec_params(cf_pg_t *self, const char *sql, int nparams, const char *const *values,
                            const int *lengths, const int *formats, int result_format)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!self->in_tx && cf_pg_connect(self) != 0)
            return NULL;
        if (self->in_tx && s_lost(self)) {
            s_set_error(self, "connection lost inside a transaction", NULL);
            return NULL;
        }
        s_clear_error(self);
        PGresult *res =
            PQexecParams(self->conn, sql, nparams, NULL, values, lengths, formats, result_format);
        if (s_result_ok(res))
            return res;
        s_set_error(self, "statement failed", res);
        PQclear(res);
        if (self->in_tx || !s_lost(self))
            return NULL;
        cf_log_warn("PostgreSQL connection lost, reconnecting: %s", self->errstr);
        s_disconnect(self);
    }
    return NULL;
}

int cf_pg_exec(cf_pg_t *self, const char *sql)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!self->in_tx && cf_pg_connect(self) != 0)
            return -1;
        s_clear_error(self);
        PGresult *res = PQexec(self->conn, sql);
        if (s_result_ok(res)) {
            PQclear(res);
            return 0;
        }
        s_set_error(self, "statement failed", res);
        PQclear(res);
        if (self->in_tx || !s_lost(self))
            return -1;
        s_disconnect(self);
    }
    return -1;
}

int cf_pg_begin(cf_pg_t *self)
{
    if (self->in_tx) {
        snprintf(self->errstr, sizeof self->errstr, "a transaction is already open");
        return -1;
    }
    if (cf_pg_exec(self, "BEGIN") != 0)
        return -1;
    self->in_tx = true;
    return 0;
}

int cf_pg_commit(cf_pg_t *self)
{
    int rc = cf_pg_exec(self, "COMMIT");
    self->in_tx = false;
    if (rc == 0 && s_lost(self))
        rc = -1;
    return rc;
}

int cf_pg_rollback(cf_pg_t *self)
{
    int rc = s_lost(self) ? -1 : cf_pg_exec(self, "ROLLBACK");
    self->in_tx = false;
    return rc;
}

static int s_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static char *s_read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

int cf_pg_migrate(cf_pg_t *self, const char *dir, int *applied)
{
    *applied = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(self->errstr, sizeof self->errstr, "could not open migrations folder \"%s\": %s",
                 dir, strerror(errno));
        return -1;
    }
    char *names[1024];
    size_t n = 0;
    struct dirent *ent;
    while ((ent = readdir(d)) != NULL && n < 1024) {
        size_t len = strlen(ent->d_name);
        if (len > 9 && ent->d_name[4] == '_' && strcmp(ent->d_name + len - 4, ".sql") == 0 &&
            strspn(ent->d_name, "0123456789") == 4)
            names[n++] = strdup(ent->d_name);
    }
    closedir(d);
    qsort(names, n, sizeof *names, s_cmp);
    int rc = -1;
    char lock_sql[96];
    snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_lock(%lld)", S_MIGRATE_LOCK);
    /* The lock serialises migrators; the table records what ran, so a second run applies
     * nothing and two at once apply each file once. */
    if (cf_pg_exec(self, lock_sql) != 0)
        goto out;
    if (cf_pg_exec(self,
                   "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                   "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())") != 0)
        goto unlock;
    for (size_t i = 0; i < n; i++) {
        char version[8];
        snprintf(version, sizeof version, "%.4s", names[i]);
        const char *params[2] = {version, names[i]};
        PGresult *res =
            cf_pg_exec_params(self, "SELECT 1 FROM schema_migrations WHERE version = $1::integer",
                              1, params, NULL, NULL, 0);
        if (!res)
            goto unlock;
        bool done = PQntuples(res) > 0;
        PQclear(res);
        if (done)
            continue;
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        char *sql = s_read_file(path);
        if (!sql) {
            snprintf(self->errstr, sizeof self->errstr, "could not read migration \"%s\"", path);
            goto unlock;
        }
        int step = cf_pg_begin(self);
        if (step == 0)
            step = cf_pg_exec(self, sql);
        free(sql);
        if (step == 0) {
            res = cf_pg_exec_params(
                self, "INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2)", 2,
                params, NULL, NULL, 0);
            step = res ? 0 : -1;
            PQclear(res);
        }
        if (step == 0)
            step = cf_pg_commit(self);
        if (step != 0) {
            char why[1024];
            snprintf(why, sizeof why, "%s", self->errstr);
            if (self->in_tx)
                cf_pg_rollback(self);
            snprintf(self->errstr, sizeof self->errstr, "migration \"%s\" failed: %s", names[i],
                     why);
            goto unlock;
        }
        cf_log_info("applied migration \"%s\"", names[i]);
        (*applied)++;
    }
    rc = 0;
unlock:
    snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_unlock(%lld)", S_MIGRATE_LOCK);
    if (!s_lost(self)) {
        char keep[1024];
        snprintf(keep, sizeof keep, "%s", self->errstr);
        cf_pg_exec(self, lock_sql);
        if (rc != 0)
            snprintf(self->errstr, sizeof self->errstr, "%s", keep);
    }
out:
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    return rc;
}
