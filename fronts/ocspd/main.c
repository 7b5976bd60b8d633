/* certfleet-ocspd: answers OCSP (RFC 6960, RFC 5019) from pre-signed responses and serves
 * CRLs and CA certificates, reading Redis and PostgreSQL only (docs/ocspd.md). A thin main:
 * flags, config, start the HTTP daemon, wait for SIGINT/SIGTERM, stop in reverse order. */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cf_front.h"
#include "cf_log.h"
#include "cf_metrics.h"
#include "ocspd.h"

#define S_PROGRAM "certfleet-ocspd"

int ocspd_settings_load(cf_config_t *cfg, ocspd_settings_t *out)
{
    memset(out, 0, sizeof *out);
    snprintf(out->listen, sizeof out->listen, "%s",
             cf_config_get(cfg, "ocspd", "listen", "127.0.0.1:8080"));
    int64_t threads, timeout, max_req, cache_ms, max_conn, per_ip, mem, crl_max;
    if (cf_front_setting(cfg, "ocspd", "threads", 4, 1, 1024, &threads) != 0 ||
        cf_front_setting(cfg, "ocspd", "connection_timeout_s", 10, 1, 3600, &timeout) != 0 ||
        cf_front_setting(cfg, "ocspd", "max_request_bytes", 8192, 256, CF_OCSP_REQUEST_MAX,
                         &max_req) != 0 ||
        cf_front_setting(cfg, "ocspd", "ca_cache_ms", 5000, 0, 86400000, &cache_ms) != 0 ||
        cf_front_setting(cfg, "ocspd", "max_connections", 1024, 1, 1000000, &max_conn) != 0 ||
        cf_front_setting(cfg, "ocspd", "per_ip_connection_limit", 0, 0, 1000000, &per_ip) != 0 ||
        /* MHD keeps the request line and headers in this pool: room for a GET whose base64
         * (maybe percent-encoded) is as long as the largest request allows. */
        cf_front_setting(cfg, "ocspd", "connection_memory_limit", 4 * max_req + 16384, 8192,
                         16 << 20, &mem) != 0 ||
        cf_front_setting(cfg, "ocspd", "crl_cache_max_bytes", 4 << 20, 0, 512 << 20, &crl_max) != 0)
        return -1;
    out->threads = (int)threads;
    out->connection_timeout_s = (int)timeout;
    out->max_request_bytes = (size_t)max_req;
    out->ca_cache_ms = cache_ms;
    out->max_connections = (int)max_conn;
    out->per_ip_connection_limit = (int)per_ip;
    out->connection_memory = (size_t)mem;
    out->crl_cache_max_bytes = (size_t)crl_max;
    return 0;
}

/* The stores check of the metrics port's /health: the same test as GET /health. */
static bool s_health_probe(void *arg, char *detail, size_t len)
{
    ocspd_t *srv = arg;
    ocspd_store_t *store = ocspd_store_get(srv->store_key, srv->cfg);
    bool ok = store && ocspd_store_healthy(store);
    snprintf(detail, len, "%s", ok ? "" : "PostgreSQL or Redis does not answer (see the log)");
    return ok;
}

int main(int argc, char **argv)
{
    int exit_code = 0;
    cf_config_t *cfg = cf_front_init(
        argc, argv, S_PROGRAM, "serves OCSP, CRLs and CA certificates over HTTP (docs/ocspd.md)",
        &exit_code);
    if (!cfg)
        return exit_code;

    /* Block the stop signals before any thread starts, so that every MHD thread inherits
     * the mask and only sigwait below sees them. A peer that hangs up must not kill us. */
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGINT);
    sigaddset(&stop, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop, NULL);
    signal(SIGPIPE, SIG_IGN);

    int rc = 1;
    ocspd_t srv = {.cfg = cfg};
    bool have_key = false;
    if (ocspd_settings_load(cfg, &srv.settings) != 0)
        goto out;
    if (pthread_key_create(&srv.store_key, ocspd_store_destroy) != 0)
        goto out;
    have_key = true;
    srv.cas = ocspd_cas_new(srv.settings.ca_cache_ms);
    if (!srv.cas || ocspd_http_start(&srv) != 0)
        goto out;
    cf_health_probe("stores", s_health_probe, &srv);
    if (cf_metrics_start(cfg, S_PROGRAM) != 0)
        goto out;

    int sig = 0;
    sigwait(&stop, &sig);
    cf_log_info("signal %d: stopping", sig);
    rc = 0;
out:
    cf_metrics_stop();
    /* Stopping the daemon joins its threads, whose store connections go with them. */
    ocspd_http_stop(&srv);
    ocspd_cas_destroy(&srv.cas);
    if (have_key)
        pthread_key_delete(srv.store_key);
    cf_config_destroy(&cfg);
    if (rc != 0)
        cf_log_error("%s stopped on an error", S_PROGRAM);
    return rc;
}
