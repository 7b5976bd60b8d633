/* certfleet-validator: the worker that validates ACME challenges.
 * Its services grow with the issues that bring them; every worker also serves the built-in
 * health checks sys.echo and sys.ping (schemas/jobs.md). */
#include "cf_worker.h"

static const cf_handler_t s_handlers[] = {
    CF_WORKER_SYS_HANDLERS,
    {NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    return cf_worker_main(argc, argv, "certfleet-validator", s_handlers, NULL);
}
