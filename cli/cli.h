/* The certfleet command: one file per noun (cmd_<noun>.c), each an entry of the table in
 * main.c. Every subcommand prints readable text, or JSON with --json. */
#ifndef CF_CLI_H
#define CF_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cf_config.h"
#include "cf_job.h"

typedef struct {
    cf_config_t *config; /* the loaded config (borrowed) */
    bool json;           /* --json given anywhere on the line */
} cf_cli_t;

/* Each takes the words after the noun (argv[0] is the verb) and returns the exit code. */
int cf_cmd_db(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_status(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_job(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_x509(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_ca(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_cert(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_crl(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_ocsp(cf_cli_t *cli, int argc, char **argv);

/* Print an error line "certfleet: ..." to stderr and return 1 (or 2 for usage). */
int cf_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cf_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print "certfleet: ..." for a command line that cannot work and return 2. */
int cf_cli_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* After getopt_long returned C (':' a value is missing, '?' an unknown option): say which
 * option of ARGV, point to `certfleet NOUN help` and return 2. */
int cf_cli_option_error(int c, char **argv, const char *noun);
/* The first line of the file PATH, without its line end (caller frees with cf_cli_free_secret);
 * NULL after printing why. */
char *cf_cli_read_password(const char *path);
/* Wipe and free a secret string. */
void cf_cli_free_secret(char *secret);
/* --password ARG, or --password-file ARG (FROM_FILE), into PARAMS' "password", once; a
 * password read from a file is kept in *SECRET_P for cf_cli_free_secret. 0, 2 (given twice,
 * said) or 1 (the file could not be read, said): the command's exit code on failure. */
int cf_cli_password_option(json_t *params, bool from_file, const char *arg, char **secret_p);

/* Print DOC as one indented JSON document on standard output. */
void cf_cli_print_json(const json_t *doc);
/* Parse TEXT, the value of option OPT, as an integer in MIN..MAX into *OUT; 0, or -1 after
 * printing why. */
int cf_cli_parse_int(const char *opt, const char *text, long long min, long long max,
                     long long *out);

/* Send one job (PARAMS: a packed msgpack map, or NULL) through the broker and wait for its
 * reply (caller owns; NULL when the broker cannot be reached, after printing why). While it
 * waits, the elapsed time is shown on standard error when that is a terminal. ATTEMPTS > 0
 * raises [client] attempts for jobs that may run long (CA key generation). */
cf_reply_t *cf_cli_call(cf_cli_t *cli, const char *type, const void *params, size_t len,
                        int attempts);
/* cf_cli_call with PARAMS as a JSON object (packed as MessagePack here). */
cf_reply_t *cf_cli_call_json(cf_cli_t *cli, const char *type, const json_t *params, int attempts);
/* ca import and cert import (cmd_import.c); ARGV[0] is the verb. */
int cf_cli_ca_import(cf_cli_t *cli, int argc, char **argv);
int cf_cli_cert_import(cf_cli_t *cli, int argc, char **argv);
/* cert revoke and ca revoke (cmd_revoke.c); ARGV[0] is the verb. */
int cf_cli_cert_revoke(cf_cli_t *cli, int argc, char **argv);
int cf_cli_ca_revoke(cf_cli_t *cli, int argc, char **argv);
/* Print an error reply as one line "certfleet: TYPE: message (code, field)"; returns 1. */
int cf_cli_fail_reply(const char *type, const cf_reply_t *reply);

#endif
