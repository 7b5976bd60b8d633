/* certfleet-acme: an RFC 8555 ACME server for the ACME-enabled CAs (docs/acme.md). A thin
 * main: flags, config, start the HTTP daemon, wait for SIGINT/SIGTERM, stop in reverse order. */
#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "acme.h"
#include "cf_curve.h"
#include "cf_front.h"
#include "cf_log.h"
#include "cf_metrics.h"

#define S_PROGRAM "certfleet-acme"

int acme_settings_load(cf_config_t *cfg, acme_settings_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->listen, sizeof out->listen, "%s",
             cf_config_get(cfg, "acme", "listen", "127.0.0.1:8000"));
    char dflt_base[sizeof out->base_url];
    snprintf(dflt_base, sizeof dflt_base, "http://%s", out->listen);
    const char *base = cf_config_get(cfg, "acme", "base_url", dflt_base);
    size_t blen = strlen(base);
    while (blen > 0 && base[blen - 1] == '/')
        blen--; /* "https://acme.example/" and "https://acme.example" mean the same */
    if (blen == 0 || blen >= sizeof out->base_url ||
        (strncmp(base, "http://", 7) != 0 && strncmp(base, "https://", 8) != 0)) {
        cf_log_error("config \"acme.base_url\" = \"%s\" is not an http or https URL", base);
        return -1;
    }
    memcpy(out->base_url, base, blen);
    out->base_url[blen] = '\0';
    int64_t threads, timeout, max_conn, mem, nonce_ttl, lifetime, pending, body, wait, vdead, retry,
        chall_wait;
    if (cf_front_setting(cfg, "acme", "threads", 8, 1, 1024, &threads) != 0 ||
        cf_front_setting(cfg, "acme", "connection_timeout_s", 30, 1, 3600, &timeout) != 0 ||
        cf_front_setting(cfg, "acme", "max_connections", 1024, 1, 1000000, &max_conn) != 0 ||
        cf_front_setting(cfg, "acme", "connection_memory_limit", 65536, 16384, 16 << 20, &mem) !=
            0 ||
        cf_front_setting(cfg, "acme", "nonce_ttl_s", 3600, 10, 86400 * 7, &nonce_ttl) != 0 ||
        cf_front_setting(cfg, "acme", "order_lifetime_s", 86400, 60, 86400 * 90, &lifetime) != 0 ||
        cf_front_setting(cfg, "acme", "max_pending_orders", 100, 1, 1000000, &pending) != 0 ||
        cf_front_setting(cfg, "acme", "max_body_bytes", 65536, 1024, CF_JWS_MAX_BYTES, &body) !=
            0 ||
        cf_front_setting(cfg, "acme", "finalize_wait_ms", 30000, 100, 600000, &wait) != 0 ||
        cf_front_setting(cfg, "acme", "validate_deadline_s", 300, 5, 86400, &vdead) != 0 ||
        cf_front_setting(cfg, "acme", "retry_after_s", 1, 1, 3600, &retry) != 0 ||
        cf_front_setting(cfg, "acme", "challenge_wait_ms", 0, 0, 60000, &chall_wait) != 0)
        return -1;
    out->threads = (int)threads;
    out->connection_timeout_s = (int)timeout;
    out->max_connections = (int)max_conn;
    out->connection_memory = (size_t)mem;
    out->nonce_ttl_s = nonce_ttl;
    out->order_lifetime_s = lifetime;
    out->max_pending_orders = pending;
    out->max_body_bytes = (size_t)body;
    out->finalize_wait_ms = wait;
    out->validate_deadline_s = vdead;
    out->retry_after_s = (int)retry;
    out->challenge_wait_ms = chall_wait;
    return 0;
}

/* The stores check of the metrics port's /health: the same test as GET /health. */
static bool s_health_probe(void *arg, char *detail, size_t len)
{
    acme_t *srv = arg;
    acme_store_t *store = acme_store_get(srv->store_key, srv->cfg);
    bool ok = store && acme_store_healthy(store);
    snprintf(detail, len, "%s", ok ? "" : "PostgreSQL or Redis does not answer (see the log)");
    return ok;
}

int main(int argc, char **argv)
{
    int exit_code = 0;
    cf_config_t *cfg =
        cf_front_init(argc, argv, S_PROGRAM,
                      "serves RFC 8555 ACME for the ACME-enabled CAs (docs/acme.md)", &exit_code);
    if (!cfg)
        return exit_code;
    if (cf_curve_check_client(cfg, S_PROGRAM) != 0) {
        cf_config_destroy(&cfg);
        return 1;
    }

    /* czmq would install its own SIGINT/SIGTERM handlers when the first broker client is
     * made in an MHD thread; the signals are ours (sigwait below). */
    zsys_handler_set(NULL);
    /* Block the stop signals before any thread starts, so that every MHD thread inherits
     * the mask and only sigwait below sees them. A peer that hangs up must not kill us. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    acme_t srv = {.cfg = cfg};
    bool have_key = false;
    if (acme_settings_load(cfg, &srv.settings) != 0)
        goto out;
    if (pthread_key_create(&srv.store_key, acme_store_destroy) != 0)
        goto out;
    have_key = true;
    if (!(srv.park = acme_park_new(cfg)) || acme_http_start(&srv) != 0)
        goto out;
    cf_health_probe("stores", s_health_probe, &srv);
    if (cf_metrics_start(cfg, S_PROGRAM) != 0)
        goto out;
    cf_log_info("serving ACME under %s/acme/<CA name>/directory", srv.settings.base_url);

    int sig = 0;
    sigwait(&stop, &sig);
    cf_log_info("signal %d: stopping", sig);
    rc = 0;
out:
    cf_metrics_stop();
    /* Stopping the daemon joins its threads, whose connections go with them (before czmq's
     * own shutdown at exit, which needs every socket closed). */
    acme_http_stop(&srv);
    acme_park_destroy(&srv.park);
    if (have_key)
        pthread_key_delete(srv.store_key);
    cf_config_destroy(&cfg);
    if (rc != 0)
        cf_log_error("%s stopped on an error", S_PROGRAM);
    return rc;
}
