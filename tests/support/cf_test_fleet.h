/* cf_test_fleet: what an integration test needs to run a real fleet: a temp folder, a fresh
 * migrated database, a config pointing at it and at the test Redis, the programs started
 * from CF_BIN_DIR, a wait for workers, and a cleanup that fails on sanitizer reports. */
#ifndef CF_TEST_FLEET_H
#define CF_TEST_FLEET_H

#include <sys/types.h>

typedef struct {
    char dir[256];      /* temp folder: config, keys, logs */
    char config[300];   /* config file */
    char keys[300];     /* [keys] storages_dir */
    char conninfo[512]; /* the fresh database */
    char endpoint[64];  /* broker endpoint on a free loopback port */
} cf_test_fleet_t;

/* Make the folder (/tmp/certfleet-PREFIX.XXXXXX), a fresh database with every migration, and
 * pick a broker port. 0 or -1. */
int cf_test_fleet_init(cf_test_fleet_t *f, const char *prefix);
/* Write the config: endpoint, database, Redis, fast heartbeats (200 ms, liveness 3), credit
 * and batches of 32, 2 s job locks, short PostgreSQL lock timeouts, the keys folder, plain TCP
 * ([curve] insecure = true); then
 * EXTRA (more INI lines, may be NULL; a repeated key overrides). 0 or -1. */
int cf_test_fleet_write_config(cf_test_fleet_t *f, const char *extra);
/* Start PROG (a program of CF_BIN_DIR) with the config, its output in DIR/LOG. */
pid_t cf_test_fleet_start(cf_test_fleet_t *f, const char *prog, const char *log);
/* Start the N programs PROGS[i][0], each logging to DIR/PROGS[i][1], in that order, into
 * PIDS (counting them in *NPIDS as they start), then wait until broker.status reports WORKERS
 * workers; the test fails when a program cannot start or the workers do not come within
 * TIMEOUT_MS. */
void cf_test_fleet_start_all(cf_test_fleet_t *f, const char *const (*progs)[2], int n, pid_t *pids,
                             int *npids, int workers, int timeout_ms);
/* SIGTERM the N processes of PIDS (0 entries skipped), the last started first. */
void cf_test_fleet_stop_all(const pid_t *pids, int n);
/* 0 once broker.status reports exactly N workers; -1 after TIMEOUT_MS. */
int cf_test_fleet_wait_workers(cf_test_fleet_t *f, int n, int timeout_ms);
/* Drop the database and remove the folder. Returns how many process logs held a sanitizer
 * report (they are printed first): a test fails when it is not 0. */
int cf_test_fleet_cleanup(cf_test_fleet_t *f);

#endif
