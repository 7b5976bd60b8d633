/* certfleet-signer: creates certificate authorities, issues and revokes certificates.
 * Every worker also serves the health checks sys.echo and sys.ping (schemas/jobs.md). */
#include "signer.h"

static const cf_handler_t s_handlers[] = {
    {"ca.init", signer_ca_init, CF_HANDLER_DURABLE},
    {"ca.edit", signer_ca_edit, CF_HANDLER_DURABLE},
    {"ca.import", signer_ca_import, CF_HANDLER_DURABLE},
    {"cert.issue", signer_cert_issue, CF_HANDLER_DURABLE | CF_HANDLER_BATCH},
    {"cert.import", signer_cert_import, CF_HANDLER_DURABLE},
    {"cert.revoke", signer_cert_revoke, CF_HANDLER_DURABLE},
    CF_WORKER_SYS_HANDLERS,
    {NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    signer_t state = {0};
    int rc = cf_worker_main(argc, argv, "certfleet-signer", s_handlers, &state);
    signer_state_destroy(&state);
    return rc;
}
