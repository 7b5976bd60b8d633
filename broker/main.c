/* certfleet-broker: parse flags, load config, bind, route until told to stop. */
#include <czmq.h>
#include <stdio.h>
#include <string.h>

#include "broker.h"
#include "cf_log.h"
#include "cf_metrics.h"

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: certfleet-broker [--config FILE]\n");
            return 0;
        } else {
            fprintf(stderr, "certfleet-broker: unknown argument \"%s\"\n", argv[i]);
            return 2;
        }
    }
    char err[512] = "";
    cf_config_t *config = cf_config_load(config_path, err, sizeof err);
    if (!config) {
        fprintf(stderr, "certfleet-broker: %s\n", err);
        return 1;
    }
    cf_log_configure(config, "certfleet-broker");
    zsys_init();
    zsys_set_logstream(NULL);
    if (cf_metrics_start(config, "certfleet-broker") != 0) {
        cf_config_destroy(&config);
        return 1;
    }
    int rc = 1;
    cf_broker_t *broker = cf_broker_new(config);
    if (broker && cf_broker_bind(broker) == 0)
        rc = cf_broker_run(broker) == 0 ? 0 : 1;
    cf_broker_destroy(&broker);
    cf_metrics_stop();
    cf_config_destroy(&config);
    return rc;
}
