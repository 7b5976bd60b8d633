/* cf_test: what tests share: the services tests/run.sh starts (PostgreSQL and Redis on
 * loopback), fresh databases, free ports, and spawning certfleet's programs. */
#ifndef CF_TEST_H
#define CF_TEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/types.h>

/* Skip the whole test program (exit 77) unless tests/run.sh's services are there. */
#define CF_TEST_NEEDS_SERVICES()                                                                   \
    do {                                                                                           \
        if (!getenv("CERTFLEET_TEST_PG") || !getenv("CERTFLEET_TEST_REDIS")) {                     \
            fprintf(stderr, "skipped: CERTFLEET_TEST_PG and CERTFLEET_TEST_REDIS are not set "     \
                            "(tests/run.sh sets them)\n");                                         \
            exit(77);                                                                              \
        }                                                                                          \
    } while (0)

/* The admin conninfo from CERTFLEET_TEST_PG, or NULL. */
const char *cf_test_pg_admin(void);
/* Create a fresh empty database PREFIX_<pid>_<random> and write its conninfo. 0 or -1. */
int cf_test_pg_create_db(const char *prefix, char *conninfo_out, size_t len);
/* Drop a database made by cf_test_pg_create_db (its sessions are ended first). */
void cf_test_pg_drop_db(const char *conninfo);
/* Host and port from CERTFLEET_TEST_REDIS ("127.0.0.1:PORT"). 0 or -1. */
int cf_test_redis(char *host, size_t hostlen, int *port);
/* A free TCP port on 127.0.0.1. */
int cf_test_free_port(void);
/* The source tree (CF_SOURCE_DIR from the environment, else the build's). */
const char *cf_test_source_dir(void);

/* Start PROG (a program in CF_BIN_DIR unless it holds a '/') with the NULL-terminated
 * arguments, output appended to LOGFILE, ENV_EXTRA ("K=V" strings, NULL-terminated, or
 * NULL) added to the environment. The child dies with the test (PR_SET_PDEATHSIG). */
pid_t cf_test_spawn(const char *logfile, const char *const *env_extra, const char *prog, ...)
    __attribute__((sentinel));
/* Send SIG and reap the child, SIGKILL after 10 s. 0 or -1. */
int cf_test_kill(pid_t pid, int sig);
/* Wait up to TIMEOUT_MS for the child to exit. 0 (status written) or -1 (still running). */
int cf_test_wait_exit(pid_t pid, int timeout_ms, int *status);

#endif
