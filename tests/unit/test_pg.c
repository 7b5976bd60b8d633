/* cf_pg against a real PostgreSQL (a fresh database per run): prepared statements that
 * survive reconnects, transactions that never retry silently, SQLSTATEs for the caller to
 * branch on, and migrations that apply once however many processes start together. Reads
 * as cf_pg's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cf_log.h"
#include "cf_pg.h"
#include "cf_test.h"

/* The database of this run, made by the group setup. */
typedef struct {
    char conninfo[1024]; /* libpq conninfo of the fresh database */
} s_db_t;

static int s_group_setup(void **state)
{
    s_db_t *db = calloc(1, sizeof *db);
    if (!db || cf_test_pg_create_db("cf_test_pg", db->conninfo, sizeof db->conninfo) != 0) {
        free(db);
        return -1;
    }
    *state = db;
    return 0;
}

static int s_group_teardown(void **state)
{
    s_db_t *db = *state;
    cf_test_pg_drop_db(db->conninfo);
    free(db);
    return 0;
}

/* A connection to this run's database. */
static cf_pg_t *s_pg(void **state)
{
    cf_pg_t *pg = cf_pg_new(((s_db_t *)*state)->conninfo);
    assert_non_null(pg);
    return pg;
}

/* One integer from a one-row query (no parameters). */
static long s_scalar(cf_pg_t *pg, const char *sql)
{
    PGresult *res = cf_pg_exec_params(pg, sql, 0, NULL, NULL, NULL, 0);
    if (!res)
        fail_msg("%s: %s", sql, cf_pg_errstr(pg));
    assert_int_equal(PQntuples(res), 1);
    long n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    return n;
}

static int s_backend_pid(cf_pg_t *pg)
{
    return (int)s_scalar(pg, "SELECT pg_backend_pid()");
}

/* End backend PID from another session and wait until it is gone. */
static void s_terminate(void **state, int pid)
{
    cf_pg_t *killer = s_pg(state);
    char pidtext[16];
    snprintf(pidtext, sizeof pidtext, "%d", pid);
    const char *params[] = {pidtext};
    PGresult *res = cf_pg_exec_params(killer, "SELECT pg_terminate_backend($1::integer)", 1, params,
                                      NULL, NULL, 0);
    assert_non_null(res);
    PQclear(res);
    for (int i = 0; i < 500; i++) {
        res = cf_pg_exec_params(killer, "SELECT 1 FROM pg_stat_activity WHERE pid = $1::integer", 1,
                                params, NULL, NULL, 0);
        assert_non_null(res);
        int left = PQntuples(res);
        PQclear(res);
        if (left == 0)
            break;
        nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    }
    cf_pg_destroy(&killer);
}

static void test_pg_connect_failure(void **state)
{
    char conninfo[128];
    snprintf(conninfo, sizeof conninfo, "host=127.0.0.1 port=%d user=nobody dbname=none",
             cf_test_free_port());
    cf_pg_t *pg = cf_pg_new(conninfo);
    assert_non_null(pg);
    assert_string_equal(cf_pg_errstr(pg), "");
    assert_int_equal(cf_pg_connect(pg), -1);
    assert_non_null(strstr(cf_pg_errstr(pg), "could not connect to PostgreSQL: "));
    assert_null(strchr(cf_pg_errstr(pg), '\n'));
    assert_int_equal(cf_pg_exec(pg, "SELECT 1"), -1);
    assert_null(cf_pg_conn(pg));
    cf_pg_destroy(&pg);
    assert_null(pg);
    cf_pg_destroy(&pg);
}

/* Statements are registered once and prepared lazily; parameters are sent apart from the
 * SQL text, never spliced into it. */
static void test_pg_prepared_and_params(void **state)
{
    cf_pg_t *pg = s_pg(state);
    assert_int_equal(cf_pg_connect(pg), 0);
    assert_int_equal(cf_pg_exec(pg, "CREATE TABLE kv (k text PRIMARY KEY, v integer NOT NULL)"), 0);
    assert_int_equal(cf_pg_prepare(pg, "kv_put", "INSERT INTO kv (k, v) VALUES ($1, $2::integer)"),
                     0);
    assert_int_equal(cf_pg_prepare(pg, "kv_get", "SELECT v FROM kv WHERE k = $1"), 0);
    /* The same text again is fine, other text under the same name is a programmer error. */
    assert_int_equal(cf_pg_prepare(pg, "kv_get", "SELECT v FROM kv WHERE k = $1"), 0);
    assert_int_equal(cf_pg_prepare(pg, "kv_get", "SELECT 1"), -1);
    assert_non_null(strstr(cf_pg_errstr(pg), "\"kv_get\" is already registered"));

    const char *put[] = {"o'brien; DROP TABLE kv", "7"};
    PGresult *res = cf_pg_exec_prepared(pg, "kv_put", 2, put, NULL, NULL, 0);
    assert_non_null(res);
    assert_string_equal(PQcmdTuples(res), "1");
    PQclear(res);

    const char *get[] = {"o'brien; DROP TABLE kv"};
    res = cf_pg_exec_prepared(pg, "kv_get", 1, get, NULL, NULL, 0);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    assert_string_equal(PQgetvalue(res, 0, 0), "7");
    PQclear(res);

    res = cf_pg_exec_params(pg, "SELECT v + $2::integer FROM kv WHERE k = $1", 2,
                            (const char *[]){"o'brien; DROP TABLE kv", "35"}, NULL, NULL, 0);
    assert_non_null(res);
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    PQclear(res);

    /* No rows is a result, not an error. */
    res = cf_pg_exec_prepared(pg, "kv_get", 1, (const char *[]){"absent"}, NULL, NULL, 0);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 0);
    PQclear(res);

    /* Errors: NULL, and the reason kept on the connection as one line. */
    assert_null(cf_pg_exec_prepared(pg, "nosuch", 0, NULL, NULL, NULL, 0));
    assert_string_equal(cf_pg_errstr(pg), "statement \"nosuch\" is not registered");
    assert_null(
        cf_pg_exec_prepared(pg, "kv_put", 2, (const char *[]){"x", "seven"}, NULL, NULL, 0));
    assert_string_equal(cf_pg_sqlstate(pg), "22P02");
    assert_non_null(strstr(cf_pg_errstr(pg), "statement \"kv_put\" failed: ERROR:"));
    assert_null(strchr(cf_pg_errstr(pg), '\n'));
    assert_int_equal(cf_pg_exec(pg, "SELEC 1"), -1);
    assert_string_equal(cf_pg_sqlstate(pg), "42601");
    /* A success clears the error. */
    assert_int_equal(cf_pg_exec(pg, "SELECT 1"), 0);
    assert_string_equal(cf_pg_errstr(pg), "");
    assert_string_equal(cf_pg_sqlstate(pg), "");
    cf_pg_destroy(&pg);
}

static void test_pg_transactions(void **state)
{
    cf_pg_t *pg = s_pg(state);
    assert_int_equal(cf_pg_exec(pg, "CREATE TABLE tx (n integer)"), 0);
    assert_false(cf_pg_in_transaction(pg));

    assert_int_equal(cf_pg_begin(pg), 0);
    assert_true(cf_pg_in_transaction(pg));
    assert_int_equal(cf_pg_begin(pg), -1); /* no nesting */
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO tx VALUES (1)"), 0);
    assert_int_equal(cf_pg_rollback(pg), 0);
    assert_false(cf_pg_in_transaction(pg));
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM tx"), 0);

    assert_int_equal(cf_pg_begin(pg), 0);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO tx VALUES (2)"), 0);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO tx VALUES (3)"), 0);
    assert_int_equal(cf_pg_commit(pg), 0);
    assert_false(cf_pg_in_transaction(pg));
    assert_int_equal(s_scalar(pg, "SELECT sum(n) FROM tx"), 5);

    /* COMMIT of a transaction that failed rolls back, and says so. */
    assert_int_equal(cf_pg_begin(pg), 0);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO tx VALUES (100)"), 0);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO tx VALUES ('x')"), -1);
    assert_int_equal(cf_pg_commit(pg), -1);
    assert_string_equal(cf_pg_sqlstate(pg), "25P02");
    assert_false(cf_pg_in_transaction(pg));
    assert_int_equal(s_scalar(pg, "SELECT sum(n) FROM tx"), 5);
    cf_pg_destroy(&pg);
}

/* A duplicate is told from an outage by its SQLSTATE, also after the rollback. */
static void test_pg_unique_violation(void **state)
{
    cf_pg_t *pg = s_pg(state);
    assert_int_equal(cf_pg_exec(pg, "CREATE TABLE serials (serial text PRIMARY KEY)"), 0);
    assert_int_equal(cf_pg_prepare(pg, "serial_add", "INSERT INTO serials VALUES ($1)"), 0);
    const char *serial[] = {"01ab"};
    PGresult *res = cf_pg_exec_prepared(pg, "serial_add", 1, serial, NULL, NULL, 0);
    assert_non_null(res);
    PQclear(res);
    assert_null(cf_pg_exec_prepared(pg, "serial_add", 1, serial, NULL, NULL, 0));
    assert_string_equal(cf_pg_sqlstate(pg), "23505");
    assert_non_null(strstr(cf_pg_errstr(pg), "duplicate key"));

    assert_int_equal(cf_pg_begin(pg), 0);
    assert_null(cf_pg_exec_params(pg, "INSERT INTO serials VALUES ($1)", 1, serial, NULL, NULL, 0));
    assert_int_equal(cf_pg_rollback(pg), 0);
    assert_string_equal(cf_pg_sqlstate(pg), "23505");
    cf_pg_destroy(&pg);
}

/* Outside a transaction a lost connection is made again, and the registered statements
 * are prepared again on it. */
static void test_pg_reconnect(void **state)
{
    cf_pg_t *pg = s_pg(state);
    assert_int_equal(cf_pg_prepare(pg, "add", "SELECT $1::integer + 1"), 0);
    PGresult *res = cf_pg_exec_prepared(pg, "add", 1, (const char *[]){"1"}, NULL, NULL, 0);
    assert_non_null(res);
    PQclear(res);
    int before = s_backend_pid(pg);

    /* The server ends our session (as a restart or an administrator would). */
    res = PQexec(cf_pg_conn(pg), "SELECT pg_terminate_backend(pg_backend_pid())");
    PQclear(res);

    res = cf_pg_exec_prepared(pg, "add", 1, (const char *[]){"41"}, NULL, NULL, 0);
    if (!res)
        fail_msg("no reconnect: %s", cf_pg_errstr(pg));
    assert_string_equal(PQgetvalue(res, 0, 0), "42");
    PQclear(res);
    assert_int_not_equal(s_backend_pid(pg), before);

    /* Also when the session is ended from elsewhere and we only find out by using it. */
    before = s_backend_pid(pg);
    s_terminate(state, before);
    assert_int_equal(cf_pg_exec(pg, "SELECT 1"), 0);
    assert_int_not_equal(s_backend_pid(pg), before);
    cf_pg_destroy(&pg);
}

/* Inside a transaction a lost connection is an error: the work done in it is gone and only
 * the caller knows how to redo it. */
static void test_pg_no_retry_in_transaction(void **state)
{
    cf_pg_t *pg = s_pg(state);
    assert_int_equal(cf_pg_exec(pg, "CREATE TABLE lost (n integer)"), 0);

    /* Killed from elsewhere: the next statement finds out, and fails. */
    assert_int_equal(cf_pg_begin(pg), 0);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO lost VALUES (1)"), 0);
    s_terminate(state, s_backend_pid(pg));
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO lost VALUES (2)"), -1);
    assert_string_not_equal(cf_pg_errstr(pg), "");
    /* And every later statement of that transaction fails too, without touching a new one. */
    assert_null(cf_pg_exec_params(pg, "INSERT INTO lost VALUES (3)", 0, NULL, NULL, NULL, 0));
    assert_string_equal(cf_pg_sqlstate(pg), "08006");
    assert_true(cf_pg_in_transaction(pg));
    assert_int_equal(cf_pg_commit(pg), -1);
    assert_false(cf_pg_in_transaction(pg));
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM lost"), 0);

    /* Killed by our own statement: the same. */
    assert_int_equal(cf_pg_begin(pg), 0);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO lost VALUES (4)"), 0);
    PGresult *res = PQexec(cf_pg_conn(pg), "SELECT pg_terminate_backend(pg_backend_pid())");
    PQclear(res);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO lost VALUES (5)"), -1);
    assert_string_equal(cf_pg_sqlstate(pg), "08006");
    assert_int_equal(cf_pg_rollback(pg), -1); /* nothing left to roll back */
    assert_false(cf_pg_in_transaction(pg));
    /* After the transaction ended, the next statement reconnects. */
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM lost"), 0);

    /* A transaction opened by hand is one too: no statement of it lands in autocommit on a
     * new connection, not even after the first failure. */
    assert_int_equal(cf_pg_exec(pg, "BEGIN"), 0);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO lost VALUES (6)"), 0);
    res = PQexec(cf_pg_conn(pg), "SELECT pg_terminate_backend(pg_backend_pid())");
    PQclear(res);
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO lost VALUES (7)"), -1);
    assert_string_equal(cf_pg_sqlstate(pg), "08006");
    assert_int_equal(cf_pg_exec(pg, "INSERT INTO lost VALUES (8)"), -1);
    assert_int_equal(cf_pg_rollback(pg), -1);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM lost"), 0);
    cf_pg_destroy(&pg);
}

/* A fresh migrations folder (caller removes it with s_rmdir). */
static void s_mkdir(char dir[64])
{
    snprintf(dir, 64, "/tmp/cf_test_migrations_XXXXXX");
    assert_non_null(mkdtemp(dir));
}

static void s_put(const char *dir, const char *name, const char *sql)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(sql, f);
    fclose(f);
}

static void s_rmdir(const char *dir, const char *const *names)
{
    char path[256];
    for (; *names; names++) {
        snprintf(path, sizeof path, "%s/%s", dir, *names);
        unlink(path);
    }
    rmdir(dir);
}

/* Each migration test uses its own version numbers: they share schema_migrations. */
static void test_pg_migrate(void **state)
{
    char dir[64];
    s_mkdir(dir);
    s_put(dir, "0001_a.sql", "CREATE TABLE mig_a (n integer);\nINSERT INTO mig_a VALUES (1);\n");
    s_put(dir, "0002_b.sql", "INSERT INTO mig_a VALUES (2);\n");
    s_put(dir, "README", "not a migration\n");
    cf_pg_t *pg = s_pg(state);
    int applied = -1;
    if (cf_pg_migrate(pg, dir, &applied) != 0)
        fail_msg("%s", cf_pg_errstr(pg));
    assert_int_equal(applied, 2);
    assert_int_equal(cf_pg_migrate(pg, dir, &applied), 0);
    assert_int_equal(applied, 0);
    assert_int_equal(s_scalar(pg, "SELECT sum(n) FROM mig_a"), 3);
    PGresult *res = cf_pg_exec_params(
        pg, "SELECT version, name FROM schema_migrations WHERE version < 100 ORDER BY version", 0,
        NULL, NULL, NULL, 0);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 2);
    assert_string_equal(PQgetvalue(res, 0, 0), "1");
    assert_string_equal(PQgetvalue(res, 0, 1), "0001_a.sql");
    assert_string_equal(PQgetvalue(res, 1, 1), "0002_b.sql");
    PQclear(res);

    /* Not inside a transaction, and not from a folder that is not there. */
    assert_int_equal(cf_pg_begin(pg), 0);
    assert_int_equal(cf_pg_migrate(pg, dir, &applied), -1);
    assert_int_equal(cf_pg_rollback(pg), 0);
    assert_int_equal(cf_pg_migrate(pg, "/nonexistent/migrations", &applied), -1);
    assert_non_null(strstr(cf_pg_errstr(pg), "\"/nonexistent/migrations\""));
    cf_pg_destroy(&pg);
    s_rmdir(dir, (const char *[]){"0001_a.sql", "0002_b.sql", "README", NULL});
}

/* A broken migration is rolled back whole, is not recorded, and is named in the error; the
 * ones before it stay applied. */
static void test_pg_migrate_broken(void **state)
{
    char dir[64];
    s_mkdir(dir);
    s_put(dir, "0101_c.sql", "CREATE TABLE mig_c (n integer);\n");
    s_put(dir, "0102_broken.sql", "INSERT INTO mig_c VALUES (1);\nSELEC oops;\n");
    cf_pg_t *pg = s_pg(state);
    int applied = -1;
    assert_int_equal(cf_pg_migrate(pg, dir, &applied), -1);
    assert_int_equal(applied, 1);
    assert_non_null(strstr(cf_pg_errstr(pg), "migration \"0102_broken.sql\" failed"));
    assert_non_null(strstr(cf_pg_errstr(pg), "syntax error"));
    assert_false(cf_pg_in_transaction(pg));
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM schema_migrations WHERE version = 101"), 1);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM schema_migrations WHERE version = 102"), 0);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM mig_c"), 0);

    /* Fixed, it applies on the next run; the advisory lock was given back. */
    s_put(dir, "0102_broken.sql", "INSERT INTO mig_c VALUES (1);\n");
    assert_int_equal(cf_pg_migrate(pg, dir, &applied), 0);
    assert_int_equal(applied, 1);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM mig_c"), 1);
    cf_pg_destroy(&pg);
    s_rmdir(dir, (const char *[]){"0101_c.sql", "0102_broken.sql", NULL});
}

/* Every process of a fleet migrates at start; together they apply each file exactly once. */
static void test_pg_migrate_concurrent(void **state)
{
    enum { MIGRATORS = 4 };
    char dir[64];
    s_mkdir(dir);
    /* The sleep holds the first migrator inside its transaction while the others arrive. */
    s_put(dir, "0201_x.sql",
          "CREATE TABLE mig_x (version integer);\n"
          "INSERT INTO mig_x VALUES (201);\nSELECT pg_sleep(0.3);\n");
    s_put(dir, "0202_y.sql", "INSERT INTO mig_x VALUES (202);\n");
    const char *conninfo = ((s_db_t *)*state)->conninfo;
    pid_t pids[MIGRATORS];
    for (int i = 0; i < MIGRATORS; i++) {
        pids[i] = fork();
        assert_true(pids[i] >= 0);
        if (pids[i] == 0) {
            /* Each process has its own connection, as each service would. */
            cf_pg_t *pg = cf_pg_new(conninfo);
            int applied = 0;
            int rc = cf_pg_migrate(pg, dir, &applied);
            if (rc != 0)
                fprintf(stderr, "migrator %d: %s\n", i, cf_pg_errstr(pg));
            cf_pg_destroy(&pg);
            _exit(rc == 0 ? applied : 100);
        }
    }
    int total = 0;
    for (int i = 0; i < MIGRATORS; i++) {
        int status;
        assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 100);
        total += WEXITSTATUS(status);
    }
    assert_int_equal(total, 2);
    cf_pg_t *pg = s_pg(state);
    assert_int_equal(s_scalar(pg, "SELECT count(*) FROM mig_x"), 2);
    assert_int_equal(s_scalar(pg, "SELECT count(DISTINCT version) FROM mig_x"), 2);
    assert_int_equal(
        s_scalar(pg, "SELECT count(*) FROM schema_migrations WHERE version IN (201, 202)"), 2);
    cf_pg_destroy(&pg);
    s_rmdir(dir, (const char *[]){"0201_x.sql", "0202_y.sql", NULL});
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    /* Reconnect warnings are expected here; errors still show. */
    cf_log_init("test_pg", CF_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pg_connect_failure),
        cmocka_unit_test(test_pg_prepared_and_params),
        cmocka_unit_test(test_pg_transactions),
        cmocka_unit_test(test_pg_unique_violation),
        cmocka_unit_test(test_pg_reconnect),
        cmocka_unit_test(test_pg_no_retry_in_transaction),
        cmocka_unit_test(test_pg_migrate),
        cmocka_unit_test(test_pg_migrate_broken),
        cmocka_unit_test(test_pg_migrate_concurrent),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
