/* certfleet-notifier: the worker that mails watchers about expiring certificates
 * (notify.expiring, schemas/jobs.md and docs/notify.md). Every worker also serves the
 * built-in health checks sys.echo and sys.ping (schemas/jobs.md). */
#include <curl/curl.h>
#include <stdio.h>

#include "notify.h"

static const cf_handler_t s_handlers[] = {
    /* Pure for the runtime: a mail cannot be rolled back, so the handler commits one notice
     * at a time in transactions of its own instead of one job_results transaction. */
    {"notify.expiring", notify_expiring, CF_HANDLER_PURE},
    CF_WORKER_SYS_HANDLERS,
    {NULL, NULL, 0},
};

int main(int argc, char **argv)
{
    /* libcurl's global setup is not thread-safe: once, before anything else runs. */
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "certfleet-notifier: could not initialise libcurl\n");
        return 1;
    }
    notify_state_t state = {0};
    int rc = cf_worker_main(argc, argv, "certfleet-notifier", s_handlers, &state);
    notify_state_destroy(&state);
    curl_global_cleanup();
    return rc;
}
