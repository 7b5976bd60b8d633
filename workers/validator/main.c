/* certfleet-validator: the worker that validates ACME challenges (acme.validate,
 * schemas/jobs.md and docs/validator.md). Every worker also serves the built-in health
 * checks sys.echo and sys.ping. */
#include <curl/curl.h>
#include <stdio.h>

#include "validator.h"

static const cf_handler_t s_handlers[] = {
    /* Pure: the network checks must run with no transaction open; the handler writes its
     * verdict in one short transaction of its own, only while the challenge is processing. */
    {"acme.validate", validator_acme_validate, CF_HANDLER_PURE},
    CF_WORKER_SYS_HANDLERS,
    {NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    /* libcurl's global setup is not thread-safe: once, before anything else runs. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "certfleet-validator: could not initialise libcurl\n");
        return 1;
    }
    validator_state_t state = {0};
    int rc = cf_worker_main(argc, argv, "certfleet-validator", s_handlers, &state);
    validator_state_destroy(&state);
    curl_global_cleanup();
    return rc;
}
