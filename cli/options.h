/* The verbs of one noun of the certfleet command: a table from verb to function, and the
 * words every noun takes the same way (help, no verb, an unknown verb). */
#ifndef CF_CLI_OPTIONS_H
#define CF_CLI_OPTIONS_H

#include "cli.h"

typedef struct {
    const char *verb;                                 /* the word after the noun */
    int (*run)(cf_cli_t *cli, int argc, char **argv); /* gets ARGV from the verb on */
} cf_cli_verb_t;

/* Run the verb ARGV[0] of NOUN from VERBS (ended by a NULL verb) and return its exit code.
 * No verb prints HELP to standard error (2); "help", "--help" and "-h" print it to standard
 * output (0); an unknown verb is a usage error (2). */
int cf_cli_dispatch(cf_cli_t *cli, int argc, char **argv, const char *noun, const char *help,
                    const cf_cli_verb_t *verbs);

#endif
