/* cf_pg: a PostgreSQL connection that reconnects by itself, keeps its prepared statements
 * across reconnects, runs transactions, and carries its own error (as hiredis does). */
#ifndef CF_PG_H
#define CF_PG_H

#include <libpq-fe.h>
#include <stdbool.h>

#include "cf_config.h"

typedef struct _cf_pg_t cf_pg_t;

/* A connection for CONNINFO (libpq syntax). Connects lazily on first use; returns NULL only
 * when out of memory. A connect_timeout of 5 s is added unless CONNINFO names one. */
cf_pg_t *cf_pg_new(const char *conninfo);
/* [postgres] dsn from the config (default "host=127.0.0.1 dbname=certfleet"). */
cf_pg_t *cf_pg_new_from_config(cf_config_t *cfg);
void cf_pg_destroy(cf_pg_t **self_p);

/* Connect now if not connected. 0 or -1. */
int cf_pg_connect(cf_pg_t *self);
/* The last error, readable; "" when none. */
const char *cf_pg_errstr(cf_pg_t *self);
/* SQLSTATE of the last failed statement ("23505" for unique violation), or "". */
const char *cf_pg_sqlstate(cf_pg_t *self);

/* Register a named statement; it is prepared on first use and again after a reconnect. */
int cf_pg_prepare(cf_pg_t *self, const char *name, const char *sql);
/* Run a registered statement. Returns the result (caller owns, PQclear) when its status is
 * PGRES_COMMAND_OK or PGRES_TUPLES_OK, else NULL with the error kept. Outside a transaction
 * a lost connection is reconnected and the statement tried once more. */
PGresult *cf_pg_exec_prepared(cf_pg_t *self, const char *name, int nparams,
                              const char *const *values, const int *lengths, const int *formats,
                              int result_format);
/* Same for a statement given as text (PQexecParams). */
PGresult *cf_pg_exec_params(cf_pg_t *self, const char *sql, int nparams, const char *const *values,
                            const int *lengths, const int *formats, int result_format);
/* Run SQL (may hold several statements) and drop the result. 0 or -1. */
int cf_pg_exec(cf_pg_t *self, const char *sql);

/* Transactions. begin reconnects first if needed; commit/rollback end it. 0 or -1.
 * commit fails (and the transaction is gone) when a statement in it had failed. rollback
 * keeps the error that led to it, so cf_pg_sqlstate still tells what went wrong. A
 * transaction opened with cf_pg_exec ("BEGIN") counts too: once its connection broke, every
 * statement fails until cf_pg_commit or cf_pg_rollback ends it. */
int cf_pg_begin(cf_pg_t *self);
int cf_pg_commit(cf_pg_t *self);
int cf_pg_rollback(cf_pg_t *self);
bool cf_pg_in_transaction(cf_pg_t *self);

/* The raw libpq connection (borrowed), connecting first; NULL when it cannot. */
PGconn *cf_pg_conn(cf_pg_t *self);

/* Apply the numbered migrations NNNN_name.sql of DIR that are not yet applied, in order,
 * each in its own transaction, under a PostgreSQL advisory lock so that two processes
 * never migrate at once. Records them in schema_migrations. Sets *applied to the count
 * applied now. 0 or -1 (the error in cf_pg_errstr). */
int cf_pg_migrate(cf_pg_t *self, const char *dir, int *applied);

/* BYTES as a bytea text literal ("\\x0a1b..."), for a text-format parameter. Caller frees;
 * NULL when out of memory. */
char *cf_pg_bytea_hex(const unsigned char *bytes, size_t len);

#endif
