/* certfleet-ocsp: makes the CAs' delegated OCSP responder certificates (ocsp.keygen) and
 * pre-signs OCSP responses shard by shard (ocsp.presign). Every worker also serves the
 * health checks sys.echo and sys.ping (schemas/jobs.md). */
#include "ocsp.h"

static const cf_handler_t s_handlers[] = {
    {"ocsp.keygen", ocsp_keygen, CF_HANDLER_DURABLE},
    /* Pure: no runtime transaction; it commits chunk by chunk and is safe to run again. */
    {"ocsp.presign", ocsp_presign, CF_HANDLER_PURE},
    CF_WORKER_SYS_HANDLERS,
    {NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    ocsp_state_t state = {0};
    int rc = cf_worker_main(argc, argv, "certfleet-ocsp", s_handlers, &state);
    ocsp_state_destroy(&state);
    return rc;
}
