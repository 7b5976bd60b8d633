/* certfleet-scheduler: parse flags, load config, start metrics, then lead or follow until told
 * to stop (or, with --once, run every task once and exit). */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "cf_log.h"
#include "cf_curve.h"
#include "cf_metrics.h"
#include "scheduler.h"

static const char s_usage[] =
    "usage: certfleet-scheduler [--config FILE] [--name NAME] [--once]\n"
    "  --config FILE   the config file (default: $CERTFLEET_CONFIG)\n"
    "  --name NAME     this scheduler's name in scheduler_runs (default: [scheduler] name, else\n"
    "                  host:pid)\n"
    "  --once          take the lock, run every enabled task whose current period has not run,\n"
    "                  wait for the replies and exit (0: all ok, 1: something failed)\n";

int main(int argc, char **argv)
{
    const char *config_path = NULL, *name = NULL;
    bool once = false;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc) {
            name = argv[++i];
        } else if (strcmp(argv[i], "--once") == 0) {
            once = true;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(s_usage, stdout);
            return 0;
        } else {
            fprintf(stderr, "certfleet-scheduler: unknown argument \"%s\"\n%s", argv[i], s_usage);
            return 2;
        }
    }
    if (name && !*name) {
        fprintf(stderr, "certfleet-scheduler: option \"--name\" needs a non-empty name\n");
        return 2;
    }
    char err[512] = "";
    cf_config_t *config = cf_config_load(config_path, err, sizeof err);
    if (!config) {
        fprintf(stderr, "certfleet-scheduler: %s\n", err);
        return 1;
    }
    cf_log_configure(config, "certfleet-scheduler");
    zsys_init();
    /* We handle SIGINT/SIGTERM through czmq's flag; no czmq log noise on stdout. */
    zsys_set_logstream(NULL);
    int rc = 1;
    cf_scheduler_t *scheduler = NULL;
    if (cf_curve_check_client(config, "certfleet-scheduler") != 0) {
        cf_config_destroy(&config);
        return 1;
    }
    scheduler = cf_scheduler_new(config, name);
    if (!scheduler) {
        cf_log_error("could not start certfleet-scheduler");
    } else if (once) {
        rc = cf_scheduler_run_once(scheduler) == 0 ? 0 : 1;
    } else if (cf_metrics_start(config, "certfleet-scheduler") == 0) {
        rc = cf_scheduler_run(scheduler) == 0 ? 0 : 1;
        cf_metrics_stop();
    }
    cf_scheduler_destroy(&scheduler);
    cf_config_destroy(&config);
    return rc;
}
