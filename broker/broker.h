/* cf_broker: routes jobs from clients to workers by job type (schemas/protocol.md). Holds no
 * durable state: bounded queues per service, worker credit, heartbeats and expiry, job
 * deadlines, duplicate suppression of resent job ids, and the broker.status service. */
#ifndef CF_BROKER_H
#define CF_BROKER_H

#include "cf_config.h"

typedef struct _cf_broker_t cf_broker_t;

/* Settings: [broker] endpoint, heartbeat_ms (1000), liveness (3), queue_max (10000). */
cf_broker_t *cf_broker_new(cf_config_t *config);
void cf_broker_destroy(cf_broker_t **self_p);
/* Bind the ROUTER socket to the configured endpoint. 0 or -1. */
int cf_broker_bind(cf_broker_t *self);
/* Route until SIGINT/SIGTERM. 0 on a clean stop. */
int cf_broker_run(cf_broker_t *self);

#endif
