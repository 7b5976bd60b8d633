/* Reading certfleet's tables for the ca, cert and watcher commands: a connection that says
 * why it failed, CAs and certificates looked up by name and serial, rows as JSON with
 * readable times, bytea columns decoded. */
#ifndef CF_CLI_STORE_H
#define CF_CLI_STORE_H

#include <jansson.h>
#include <openssl/x509.h>
#include <stddef.h>

#include "cf_pg.h"
#include "cli.h"

/* A connection to [postgres] dsn, connected now (caller destroys); NULL after printing why. */
cf_pg_t *cf_cli_pg_open(cf_cli_t *cli);

/* 0 when certificate authority NAME exists (or NAME is NULL), else 1 after printing why. */
int cf_cli_ca_exists(cf_pg_t *pg, const char *name);
/* The certificate SERIAL (as typed) of certificate authority CA (NULL: of any) as one row
 * (caller clears): its id, its CA's name, the row as JSON text and its expiry in Unix seconds;
 * the serial, normalized, into HEX (at least 128 bytes). NULL after printing why: not a
 * serial, no such CA or certificate, or a serial that certificates of several CAs hold. */
PGresult *cf_cli_cert_find(cf_pg_t *pg, const char *serial, const char *ca, char *hex,
                           size_t hexlen);

/* Unix seconds as "2026-11-23T15:00:00Z" into OUT (at least 21 bytes). */
void cf_cli_time(long long t, char *out, size_t outlen);
/* Rewrite every timestamp of a row_to_json row ("2026-11-23T15:00:00.123+01:00") in UTC as
 * cf_cli_time writes it, so that every command shows times one way. */
void cf_cli_row_tidy(json_t *row);

/* The bytes of a bytea column in text form ("\x3082..."), caller frees; NULL when malformed. */
unsigned char *cf_cli_bytea(const char *text, size_t *len);
/* A certificate from a bytea column in text form (caller owns); NULL when it does not parse. */
X509 *cf_cli_bytea_x509(const char *text);

#endif
