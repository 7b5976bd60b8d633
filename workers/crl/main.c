/* certfleet-crl: the worker that builds certificate revocation lists (crl.build, schemas/jobs.md
 * and docs/crl.md). Every worker also serves the built-in health checks sys.echo and sys.ping. */
#include "crl.h"

static const cf_handler_t s_handlers[] = {
    {"crl.build", crl_build, CF_HANDLER_DURABLE},
    CF_WORKER_SYS_HANDLERS,
    {NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    crl_t state = {0};
    int rc = cf_worker_main(argc, argv, "certfleet-crl", s_handlers, &state);
    crl_state_destroy(&state);
    return rc;
}
