/* The verbs of one noun of the certfleet command (see options.h). */
#include "options.h"

#include <stdio.h>
#include <string.h>

int cf_cli_dispatch(cf_cli_t *cli, int argc, char **argv, const char *noun, const char *help,
                    const cf_cli_verb_t *verbs)
{
    if (argc < 1) {
        fputs(help, stderr);
        return 2;
    }
    if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "-h") == 0) {
        fputs(help, stdout);
        return 0;
    }
    for (int i = 0; verbs[i].verb; i++)
        if (strcmp(verbs[i].verb, argv[0]) == 0)
            return verbs[i].run(cli, argc, argv);
    return cf_cli_usage_error("unknown command \"%s %s\" (see certfleet %s help)", noun, argv[0],
                              noun);
}
