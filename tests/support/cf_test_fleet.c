/* cf_test_fleet: a real fleet for integration tests. */
#include "cf_test_fleet.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <signal.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_pg.h"
#include "cf_test.h"

int cf_test_fleet_init(cf_test_fleet_t *f, const char *prefix)
{
    memset(f, 0, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/certfleet-%s.XXXXXX", prefix);
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->config, sizeof f->config, "%s/certfleet.conf", f->dir);
    snprintf(f->keys, sizeof f->keys, "%s/keys", f->dir);
    if (cf_test_pg_create_db(prefix, f->conninfo, sizeof f->conninfo) != 0)
        return -1;
    cf_pg_t *pg = cf_pg_new(f->conninfo);
    char sqldir[512];
    snprintf(sqldir, sizeof sqldir, "%s/schemas/sql", cf_test_source_dir());
    int applied = 0;
    int rc = cf_pg_migrate(pg, sqldir, &applied);
    if (rc != 0)
        fprintf(stderr, "migrations failed: %s\n", cf_pg_errstr(pg));
    cf_pg_destroy(&pg);
    snprintf(f->endpoint, sizeof f->endpoint, "tcp://127.0.0.1:%d", cf_test_free_port());
    return rc;
}

int cf_test_fleet_write_config(cf_test_fleet_t *f, const char *extra)
{
    char host[64];
    int port;
    if (cf_test_redis(host, sizeof host, &port) != 0)
        return -1;
    FILE *out = fopen(f->config, "w");
    if (!out)
        return -1;
    /* Short job locks and PostgreSQL timeouts: a killed or stopped worker must not hold its
     * jobs for a minute in a test. */
    fprintf(out,
            "[broker]\nendpoint = %s\nheartbeat_ms = 200\nliveness = 3\n"
            "[worker]\ncredit = 32\nbatch_max = 32\njob_lock_ttl_ms = 2000\n"
            "[postgres]\ndsn = %s\nlock_timeout_ms = 1000\nidle_in_transaction_timeout_ms = 3000\n"
            "[redis]\nhost = %s\nport = %d\n[keys]\nstorages_dir = %s\n[log]\nlevel = info\n"
            "[curve]\ninsecure = true\n%s",
            f->endpoint, f->conninfo, host, port, f->keys, extra ? extra : "");
    return fclose(out) == 0 ? 0 : -1;
}

pid_t cf_test_fleet_start(cf_test_fleet_t *f, const char *prog, const char *log)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s", f->dir, log);
    return cf_test_spawn(path, NULL, prog, "--config", f->config, NULL);
}

int cf_test_fleet_wait_workers(cf_test_fleet_t *f, int n, int timeout_ms)
{
    for (int waited = 0; waited <= timeout_ms; waited += 100) {
        cf_client_t *c = cf_client_new(f->endpoint);
        cf_client_set_timeout(c, 300);
        cf_client_set_attempts(c, 1);
        cf_reply_t *r = cf_client_call(c, "broker.status", NULL, 0, 0);
        int have = -1;
        if (cf_reply_ok(r)) {
            const msgpack_object *w = cf_msgpack_map_get(cf_reply_result(r), "workers");
            have = w ? (int)w->via.array.size : -1;
        }
        cf_reply_destroy(&r);
        cf_client_destroy(&c);
        if (have == n)
            return 0;
        usleep(100 * 1000);
    }
    return -1;
}

int cf_test_fleet_cleanup(cf_test_fleet_t *f)
{
    if (f->conninfo[0])
        cf_test_pg_drop_db(f->conninfo);
    char cmd[700];
    snprintf(cmd, sizeof cmd,
             "grep -l -E 'AddressSanitizer|LeakSanitizer|runtime error:' '%s'/*.log 2>/dev/null | "
             "wc -l",
             f->dir);
    int reports = 0;
    FILE *p = popen(cmd, "r");
    if (p) {
        if (fscanf(p, "%d", &reports) != 1)
            reports = 0;
        pclose(p);
    }
    if (reports > 0) {
        snprintf(cmd, sizeof cmd, "cat '%s'/*.log >&2", f->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not print the logs of %s\n", f->dir);
    }
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", f->dir);
    return reports;
}

void cf_test_fleet_start_all(cf_test_fleet_t *f, const char *const (*progs)[2], int n, pid_t *pids,
                             int *npids, int workers, int timeout_ms)
{
    for (int i = 0; i < n; i++) {
        pids[i] = cf_test_fleet_start(f, progs[i][0], progs[i][1]);
        if (pids[i] <= 0)
            fail_msg("could not start %s", progs[i][0]);
        (*npids)++;
    }
    if (cf_test_fleet_wait_workers(f, workers, timeout_ms) != 0)
        fail_msg("broker never reported %d workers", workers);
}

void cf_test_fleet_stop_all(const pid_t *pids, int n)
{
    for (int i = n - 1; i >= 0; i--)
        if (pids[i] > 0)
            cf_test_kill(pids[i], SIGTERM);
}
