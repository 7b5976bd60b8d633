/* The certfleet command: one file per noun (cmd_<noun>.c), each an entry of the table in
 * main.c. Every subcommand prints readable text, or JSON with --json. */
#ifndef CF_CLI_H
#define CF_CLI_H

#include <stdbool.h>

#include "cf_config.h"

typedef struct {
    cf_config_t *config; /* the loaded config (borrowed) */
    bool json;           /* --json given anywhere on the line */
} cf_cli_t;

/* Each takes the words after the noun (argv[0] is the verb) and returns the exit code. */
int cf_cmd_db(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_status(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_job(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_x509(cf_cli_t *cli, int argc, char **argv);

/* Print an error line "certfleet: ..." to stderr and return 1 (or 2 for usage). */
int cf_cli_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int cf_cli_usage(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
