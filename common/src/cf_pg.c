/* cf_pg: a PostgreSQL connection that reconnects by itself and keeps its prepared statements.
 *
 * Reconnecting is only safe where nothing was lost with the old connection: outside a
 * transaction a statement that failed because the connection broke is run once more on a
 * fresh one; inside a transaction the failure is returned, because the work done so far in
 * it is gone and only the caller knows how to redo it. */
#include "cf_pg.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"
#include "cf_metrics.h"

/* Most migrations a folder may hold; more is surely a wrong folder. */
#define S_MIGRATIONS_MAX 4096

typedef struct s_stmt_t {
    char *name;            /* statement name */
    char *sql;             /* its text */
    bool prepared;         /* prepared on the current connection */
    struct s_stmt_t *next; /* next statement */
} s_stmt_t;

struct _cf_pg_t {
    char *conninfo;    /* libpq connection string */
    PGconn *conn;      /* current connection, or NULL */
    unsigned long gen; /* how many connections were made; a change means session state is gone */
    s_stmt_t *stmts;   /* registered statements */
    bool in_tx;        /* inside cf_pg_begin .. commit/rollback */
    bool open_tx;      /* after our last statement the server had a transaction open */
    bool had_conn;     /* a connection was made before: the next one is a reconnect */
    char errstr[1024]; /* last error */
    char sqlstate[8];  /* SQLSTATE of the last error */
};

/* Migrations of every process serialise on this advisory lock key ("cfmig" in ASCII). */
#define S_MIGRATE_LOCK 0x63666d6967LL

/* certfleet_postgres_errors_total{kind}: "connect" (no connection) or "command" (a failed
 * statement, prepare, commit or rollback). */
static void s_count_error(const char *kind)
{
    char labels[32];
    snprintf(labels, sizeof labels, "kind=\"%s\"", kind);
    cf_metric_add(cf_metrics_counter("certfleet_postgres_errors_total",
                                     "PostgreSQL connection failures and failed commands", labels),
                  1);
}

static void s_set_error(cf_pg_t *self, const char *what, const PGresult *res)
{
    s_count_error(strncmp(what, "could not connect", 17) == 0 ? "connect" : "command");
    const char *msg =
        res ? PQresultErrorMessage(res) : (self->conn ? PQerrorMessage(self->conn) : "");
    if ((!msg || !*msg) && self->conn)
        msg = PQerrorMessage(self->conn);
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    snprintf(self->sqlstate, sizeof self->sqlstate, "%s", state ? state : "");
    snprintf(self->errstr, sizeof self->errstr, "%s: %s", what,
             msg && *msg ? msg : "unknown error");
    /* libpq ends its messages with a newline; ours are single lines. */
    for (char *p = self->errstr; *p; p++)
        if (*p == '\n')
            *p = ' ';
    size_t n = strlen(self->errstr);
    while (n && self->errstr[n - 1] == ' ')
        self->errstr[--n] = '\0';
}

static void s_clear_error(cf_pg_t *self)
{
    self->errstr[0] = '\0';
    self->sqlstate[0] = '\0';
}

/* Server notices (NOTICE, WARNING) go to our log rather than straight to stderr. */
static void s_notice(void *arg, const char *message)
{
    char line[1024];
    snprintf(line, sizeof line, "%s", message);
    size_t n = strlen(line);
    while (n && line[n - 1] == '\n')
        line[--n] = '\0';
    cf_log_info("PostgreSQL: %s", line);
}

cf_pg_t *cf_pg_new(const char *conninfo)
{
    if (!conninfo)
        conninfo = "";
    cf_pg_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    /* Never wait forever for a server that does not answer. A URI takes its options after
     * '?', so only the keyword form gets the default added. */
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
    const char *dsn = cf_config_get(cfg, "postgres", "dsn", "host=127.0.0.1 dbname=certfleet");
    if (strstr(dsn, "options") || strstr(dsn, "://"))
        return cf_pg_new(dsn);
    /* A worker that stalls inside a transaction (stopped, swapped out, partitioned) holds row
     * and index locks that block every other worker touching the same job ids: the server
     * ends such a session, and nobody waits for a lock longer than lock_timeout. */
    char *full = NULL;
    long long lock = (long long)cf_config_get_int(cfg, "postgres", "lock_timeout_ms", 5000);
    long long idle =
        (long long)cf_config_get_int(cfg, "postgres", "idle_in_transaction_timeout_ms", 15000);
    long long stmt = (long long)cf_config_get_int(cfg, "postgres", "statement_timeout_ms", 60000);
    if (asprintf(&full,
                 "%s options='-c lock_timeout=%lld -c idle_in_transaction_session_timeout=%lld "
                 "-c statement_timeout=%lld'",
                 dsn, lock, idle, stmt) < 0)
        return NULL;
    cf_pg_t *self = cf_pg_new(full);
    free(full);
    return self;
}

static void s_disconnect(cf_pg_t *self)
{
    if (self->conn)
        PQfinish(self->conn);
    self->conn = NULL;
    self->in_tx = false;
    self->open_tx = false;
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
    if (self->conn)
        cf_log_warn("PostgreSQL connection lost, reconnecting");
    s_disconnect(self);
    self->conn = PQconnectdb(self->conninfo);
    self->gen++;
    if (!self->conn) {
        snprintf(self->errstr, sizeof self->errstr,
                 "could not connect to PostgreSQL: out of memory");
        s_count_error("connect");
        self->sqlstate[0] = '\0';
        return -1;
    }
    if (PQstatus(self->conn) != CONNECTION_OK) {
        s_set_error(self, "could not connect to PostgreSQL", NULL);
        s_disconnect(self);
        return -1;
    }
    PQsetNoticeProcessor(self->conn, s_notice, NULL);
    if (self->had_conn)
        cf_metric_add(cf_metrics_counter("certfleet_postgres_reconnects_total",
                                         "PostgreSQL connections made again after one was lost",
                                         ""),
                      1);
    self->had_conn = true;
    /* "relation already exists, skipping" and the like are not worth a log line. */
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
    if (self->in_tx)
        return self->conn; /* reconnecting would silently end the transaction */
    return cf_pg_connect(self) == 0 ? self->conn : NULL;
}

bool cf_pg_in_transaction(cf_pg_t *self)
{
    return self->in_tx;
}

int cf_pg_prepare(cf_pg_t *self, const char *name, const char *sql)
{
    for (s_stmt_t *s = self->stmts; s; s = s->next) {
        if (strcmp(s->name, name) == 0) {
            if (strcmp(s->sql, sql) == 0)
                return 0;
            snprintf(self->errstr, sizeof self->errstr,
                     "statement \"%s\" is already registered with other text", name);
            return -1;
        }
    }
    s_stmt_t *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    s->name = strdup(name);
    s->sql = strdup(sql);
    if (!s->name || !s->sql) {
        free(s->name);
        free(s->sql);
        free(s);
        snprintf(self->errstr, sizeof self->errstr, "out of memory");
        return -1;
    }
    s->next = self->stmts;
    self->stmts = s;
    return 0;
}

static bool s_result_ok(const PGresult *res)
{
    ExecStatusType st = PQresultStatus(res);
    return st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
}

/* A connection that broke underneath us (server restart, backend terminated, network) shows
 * as CONNECTION_BAD once libpq has tried to use it. */
static bool s_lost(cf_pg_t *self)
{
    return !self->conn || PQstatus(self->conn) != CONNECTION_OK;
}

/* Whether a failed call may be run again on a fresh connection: only when the connection
 * broke and no transaction of ours was open on it. */
static bool s_retry(cf_pg_t *self, bool in_tx, int attempt)
{
    if (attempt > 0 || in_tx || !s_lost(self))
        return false;
    cf_log_warn("PostgreSQL connection lost, retrying on a new one: %s", self->errstr);
    s_disconnect(self);
    return true;
}

/* Get a usable connection for one call. Outside a transaction that may mean connecting;
 * inside one a lost connection is an error. */
static int s_ready(cf_pg_t *self, bool in_tx)
{
    if (!in_tx)
        return cf_pg_connect(self);
    if (s_lost(self)) {
        snprintf(self->errstr, sizeof self->errstr,
                 "connection to PostgreSQL lost inside a transaction");
        snprintf(self->sqlstate, sizeof self->sqlstate, "08006");
        return -1;
    }
    return 0;
}

/* Remember whether the server has a transaction open, while the connection can still say:
 * once it broke, libpq answers PQTRANS_UNKNOWN. */
static void s_note_tx(cf_pg_t *self)
{
    if (!self->conn || PQstatus(self->conn) != CONNECTION_OK)
        return;
    PGTransactionStatusType ts = PQtransactionStatus(self->conn);
    self->open_tx = ts == PQTRANS_INTRANS || ts == PQTRANS_INERROR;
}

/* A transaction opened by hand (cf_pg_exec "BEGIN") is a transaction too, also after its
 * connection broke: then it lasts, failing every statement, until commit or rollback. */
static bool s_in_tx(cf_pg_t *self)
{
    if (self->in_tx)
        return true;
    if (!self->conn)
        return false;
    s_note_tx(self);
    return self->open_tx;
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
    s_note_tx(self);
    if (!s_result_ok(res)) {
        char what[200];
        snprintf(what, sizeof what, "statement \"%s\" failed", s->name);
        s_set_error(self, what, res);
        /* Someone ran DEALLOCATE or DISCARD ALL on our session: prepare it again next time. */
        if (strcmp(self->sqlstate, "26000") == 0)
            s->prepared = false;
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
        self->sqlstate[0] = '\0';
        return NULL;
    }
    for (int attempt = 0;; attempt++) {
        bool in_tx = s_in_tx(self);
        if (s_ready(self, in_tx) != 0)
            return NULL;
        s_clear_error(self);
        PGresult *res = s_run_prepared(self, s, nparams, values, lengths, formats, result_format);
        if (res)
            return res;
        /* Prepared again at once when someone deallocated it under us. */
        bool unprepared = !in_tx && attempt == 0 && strcmp(self->sqlstate, "26000") == 0;
        if (!unprepared && !s_retry(self, in_tx, attempt))
            return NULL;
    }
}

PGresult *cf_pg_exec_params(cf_pg_t *self, const char *sql, int nparams, const char *const *values,
                            const int *lengths, const int *formats, int result_format)
{
    for (int attempt = 0;; attempt++) {
        bool in_tx = s_in_tx(self);
        if (s_ready(self, in_tx) != 0)
            return NULL;
        s_clear_error(self);
        PGresult *res =
            PQexecParams(self->conn, sql, nparams, NULL, values, lengths, formats, result_format);
        s_note_tx(self);
        if (s_result_ok(res))
            return res;
        s_set_error(self, "statement failed", res);
        PQclear(res);
        if (!s_retry(self, in_tx, attempt))
            return NULL;
    }
}

int cf_pg_exec(cf_pg_t *self, const char *sql)
{
    /* PQexec, not PQexecParams: a migration is a script of many statements. */
    for (int attempt = 0;; attempt++) {
        bool in_tx = s_in_tx(self);
        if (s_ready(self, in_tx) != 0)
            return -1;
        s_clear_error(self);
        PGresult *res = PQexec(self->conn, sql);
        s_note_tx(self);
        if (s_result_ok(res)) {
            PQclear(res);
            return 0;
        }
        s_set_error(self, "statement failed", res);
        PQclear(res);
        if (!s_retry(self, in_tx, attempt))
            return -1;
    }
}

int cf_pg_begin(cf_pg_t *self)
{
    if (s_in_tx(self)) {
        snprintf(self->errstr, sizeof self->errstr, "a transaction is already open");
        self->sqlstate[0] = '\0';
        return -1;
    }
    if (cf_pg_exec(self, "BEGIN") != 0)
        return -1;
    self->in_tx = true;
    return 0;
}

int cf_pg_commit(cf_pg_t *self)
{
    if (s_ready(self, true) != 0) {
        self->in_tx = false;
        self->open_tx = false;
        return -1;
    }
    s_clear_error(self);
    PGresult *res = PQexec(self->conn, "COMMIT");
    int rc = -1;
    if (!s_result_ok(res)) {
        s_set_error(self, "could not commit", res);
    } else if (strcmp(PQcmdStatus(res), "COMMIT") != 0) {
        /* COMMIT of a transaction that had failed answers ROLLBACK, and "OK". */
        snprintf(self->errstr, sizeof self->errstr,
                 "could not commit: the transaction had failed and was rolled back");
        snprintf(self->sqlstate, sizeof self->sqlstate, "25P02");
    } else {
        rc = 0;
    }
    PQclear(res);
    self->in_tx = false;
    self->open_tx = false;
    return rc;
}

int cf_pg_rollback(cf_pg_t *self)
{
    self->in_tx = false;
    self->open_tx = false;
    /* A lost connection took the transaction with it: nothing left to roll back. */
    if (s_lost(self))
        return -1;
    /* The error that made the caller roll back stays readable (cf_pg_sqlstate after a failed
     * batch tells a duplicate from an outage). */
    PGresult *res = PQexec(self->conn, "ROLLBACK");
    int rc = s_result_ok(res) ? 0 : -1;
    if (rc != 0)
        s_set_error(self, "could not roll back", res);
    PQclear(res);
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
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0)
        n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0)
        buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    if (buf)
        buf[n] = '\0';
    fclose(f);
    return buf;
}

/* A migration file is NNNN_name.sql: four digits, '_', a name, ".sql". */
static bool s_migration_name(const char *name)
{
    size_t len = strlen(name);
    return len > 9 && strspn(name, "0123456789") == 4 && name[4] == '_' &&
           strcmp(name + len - 4, ".sql") == 0;
}

/* The migration files of DIR, sorted. 0 or -1. */
static int s_list_migrations(cf_pg_t *self, const char *dir, char ***names_p, size_t *n_p)
{
    *names_p = NULL;
    *n_p = 0;
    DIR *d = opendir(dir);
    if (!d) {
        snprintf(self->errstr, sizeof self->errstr, "could not open migrations folder \"%s\": %s",
                 dir, strerror(errno));
        return -1;
    }
    char **names = calloc(S_MIGRATIONS_MAX, sizeof *names);
    size_t n = 0;
    int rc = -1;
    struct dirent *ent;
    if (!names) {
        snprintf(self->errstr, sizeof self->errstr, "out of memory");
        goto out;
    }
    while ((ent = readdir(d)) != NULL) {
        if (!s_migration_name(ent->d_name))
            continue;
        if (n == S_MIGRATIONS_MAX) {
            snprintf(self->errstr, sizeof self->errstr,
                     "migrations folder \"%s\" holds more than %d migrations", dir,
                     S_MIGRATIONS_MAX);
            goto out;
        }
        if (!(names[n++] = strdup(ent->d_name))) {
            snprintf(self->errstr, sizeof self->errstr, "out of memory");
            goto out;
        }
    }
    qsort(names, n, sizeof *names, s_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strncmp(names[i - 1], names[i], 4) == 0) {
            snprintf(self->errstr, sizeof self->errstr,
                     "migrations \"%s\" and \"%s\" have the same number", names[i - 1], names[i]);
            goto out;
        }
    }
    rc = 0;
out:
    closedir(d);
    if (rc != 0) {
        for (size_t i = 0; names && i < n; i++)
            free(names[i]);
        free(names);
        return -1;
    }
    *names_p = names;
    *n_p = n;
    return 0;
}

/* Apply one migration in its own transaction unless schema_migrations has it. 1 applied,
 * 0 already there, -1 error. */
static int s_apply(cf_pg_t *self, const char *dir, const char *name, unsigned long gen)
{
    char version[8], path[4096];
    snprintf(version, sizeof version, "%.4s", name);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    const char *params[2] = {version, name};
    char *sql = NULL;
    int rc = -1;
    if (cf_pg_begin(self) != 0)
        goto out;
    /* A reconnect since we took the advisory lock would mean we no longer hold it. */
    if (self->gen != gen) {
        snprintf(self->errstr, sizeof self->errstr,
                 "connection to PostgreSQL lost while migrating");
        goto out;
    }
    PGresult *res =
        cf_pg_exec_params(self, "SELECT name FROM schema_migrations WHERE version = $1::integer", 1,
                          params, NULL, NULL, 0);
    if (!res)
        goto out;
    bool done = PQntuples(res) > 0;
    if (done && strcmp(PQgetvalue(res, 0, 0), name) != 0)
        cf_log_warn("migration %s was applied as \"%s\", the file is now \"%s\"", version,
                    PQgetvalue(res, 0, 0), name);
    PQclear(res);
    if (done) {
        rc = cf_pg_commit(self) == 0 ? 0 : -1;
        goto out;
    }
    if (!(sql = s_read_file(path))) {
        snprintf(self->errstr, sizeof self->errstr, "could not read migration \"%s\": %s", path,
                 strerror(errno));
        goto out;
    }
    if (cf_pg_exec(self, sql) != 0)
        goto out;
    res = cf_pg_exec_params(
        self, "INSERT INTO schema_migrations (version, name) VALUES ($1::integer, $2)", 2, params,
        NULL, NULL, 0);
    if (!res)
        goto out;
    PQclear(res);
    if (cf_pg_commit(self) != 0)
        goto out;
    cf_log_info("applied migration \"%s\"", name);
    rc = 1;
out:
    if (rc < 0) {
        char why[sizeof self->errstr];
        snprintf(why, sizeof why, "%s", self->errstr);
        if (self->in_tx)
            cf_pg_rollback(self);
        snprintf(self->errstr, sizeof self->errstr, "migration \"%s\" failed: %s", name, why);
    }
    free(sql);
    return rc;
}

int cf_pg_migrate(cf_pg_t *self, const char *dir, int *applied)
{
    *applied = 0;
    if (s_in_tx(self)) {
        snprintf(self->errstr, sizeof self->errstr, "cannot migrate inside a transaction");
        return -1;
    }
    char **names = NULL;
    size_t n = 0;
    if (s_list_migrations(self, dir, &names, &n) != 0)
        return -1;
    int rc = -1;
    bool locked = false;
    unsigned long gen = 0;
    /* One migrator at a time, however many processes start at once. A session lock (not one
     * per transaction) so that the whole run is one unit; lock_timeout bounds the wait for a
     * migrator that hangs, and the SET is undone with the statement if the lock fails. */
    char sql[200];
    snprintf(sql, sizeof sql,
             "SET lock_timeout = '5min'; SELECT pg_advisory_lock(%lld); RESET lock_timeout",
             S_MIGRATE_LOCK);
    if (cf_pg_exec(self, sql) != 0)
        goto out;
    locked = true;
    gen = self->gen;
    if (cf_pg_exec(self,
                   "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                   "name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())") != 0)
        goto out;
    if (self->gen != gen) {
        snprintf(self->errstr, sizeof self->errstr,
                 "connection to PostgreSQL lost while migrating");
        goto out;
    }
    for (size_t i = 0; i < n; i++) {
        int step = s_apply(self, dir, names[i], gen);
        if (step < 0)
            goto out;
        *applied += step;
    }
    rc = 0;
out:
    /* The lock belongs to the session: unlock only on the connection that took it. */
    if (locked && !s_lost(self) && self->gen == gen) {
        char keep[sizeof self->errstr], state[sizeof self->sqlstate];
        snprintf(keep, sizeof keep, "%s", self->errstr);
        snprintf(state, sizeof state, "%s", self->sqlstate);
        snprintf(sql, sizeof sql, "SELECT pg_advisory_unlock(%lld)", S_MIGRATE_LOCK);
        PGresult *res = PQexec(self->conn, sql);
        PQclear(res);
        snprintf(self->errstr, sizeof self->errstr, "%s", keep);
        snprintf(self->sqlstate, sizeof self->sqlstate, "%s", state);
    }
    for (size_t i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return rc;
}

char *cf_pg_bytea_hex(const unsigned char *bytes, size_t len)
{
    char *hex = malloc(2 * len + 3);
    if (!hex)
        return NULL;
    hex[0] = '\\';
    hex[1] = 'x';
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        hex[2 + 2 * i] = digits[bytes[i] >> 4];
        hex[3 + 2 * i] = digits[bytes[i] & 15];
    }
    hex[2 + 2 * len] = '\0';
    return hex;
}
