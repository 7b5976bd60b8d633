/* certfleet db migrate: apply the numbered SQL migrations (schemas/sql) under an advisory
 * lock, so that any number of processes may run it at once. */
#include <stdio.h>
#include <string.h>

#include "cf_pg.h"
#include "cli.h"

int cf_cmd_db(cf_cli_t *cli, int argc, char **argv)
{
    if (argc != 1 || strcmp(argv[0], "migrate") != 0)
        return cf_cli_usage("db migrate");
    const char *dir =
        cf_config_get(cli->config, "postgres", "migrations_dir", CF_SOURCE_DIR "/schemas/sql");
    cf_pg_t *pg = cf_pg_new_from_config(cli->config);
    if (!pg)
        return cf_cli_fail("out of memory");
    int applied = 0, rc = 0;
    if (cf_pg_migrate(pg, dir, &applied) != 0) {
        rc = cf_cli_fail("%s", cf_pg_errstr(pg));
    } else if (cli->json) {
        printf("{\"applied\": %d}\n", applied);
    } else {
        printf("applied %d migration%s\n", applied, applied == 1 ? "" : "s");
    }
    cf_pg_destroy(&pg);
    return rc;
}
