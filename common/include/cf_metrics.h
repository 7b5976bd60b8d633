/* cf_metrics: Prometheus text metrics and a health check for every long-running process
 * (docs/metrics.md).
 *
 * A process registers its series once (a name, a help text and a fixed label set) and keeps
 * the pointer; updates are lock-free atomics, so the main loop never waits for a scrape. A
 * small HTTP server (libmicrohttpd, its own thread) answers on a loopback port:
 *
 *   GET /metrics   text exposition format 0.0.4, every registered series
 *   GET /health    200 {"status":"ok",...} when every health check passes, else 503 with
 *                  {"status":"unhealthy","checks":{"postgres":{"ok":false,"detail":"..."}}}
 *
 * Settings: [metrics] port (0: off, the default), address (127.0.0.1). Each process of a host
 * needs its own port: set it per process with CERTFLEET_METRICS_PORT (deploy/ does). */
#ifndef CF_METRICS_H
#define CF_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_config.h"

typedef struct cf_metric_s cf_metric_t;

/* The series NAME{LABELS}: LABELS is the inside of the braces, already escaped, e.g.
 * "service=\"cert.issue\",outcome=\"ok\"" (or "" for none). Registering the same name and
 * labels again returns the same series; the pointer lives until the process ends. Thread-safe.
 * NULL only when out of memory (every update function accepts NULL and does nothing). */
cf_metric_t *cf_metrics_counter(const char *name, const char *help, const char *labels);
cf_metric_t *cf_metrics_gauge(const char *name, const char *help, const char *labels);
/* A histogram of durations in seconds with the buckets 0.0005 .. 10 s (doubling steps). */
cf_metric_t *cf_metrics_histogram(const char *name, const char *help, const char *labels);

void cf_metric_add(cf_metric_t *m, uint64_t n);    /* counter += n */
void cf_metric_set(cf_metric_t *m, int64_t value); /* gauge = value */
void cf_metric_observe(cf_metric_t *m, double seconds);

/* Escape VALUE for use inside a label's quotes into OUT (at most LEN bytes, cut if longer). */
void cf_metrics_label_escape(const char *value, char *out, size_t len);

/* A named health check, set by the process as it learns (thread-safe): e.g. ("postgres", false,
 * "connection refused"). /health is healthy when every check set so far is ok. */
void cf_health_set(const char *check, bool ok, const char *detail);

/* Start the HTTP server when [metrics] port is set; also registers
 * certfleet_build_info{program,version} and certfleet_process_start_time_seconds.
 * 0 (also when off), -1 when the port cannot be bound (logged). */
int cf_metrics_start(cf_config_t *config, const char *program);
/* The port actually bound (0 when off). */
int cf_metrics_port(void);
/* Stop the server (the series stay). */
void cf_metrics_stop(void);

/* ---- additions used by the runtime, the broker and the fronts ---- */

/* The outcome of a reply envelope for jobs_total: "ok", its error code (only [a-z0-9_]), or
 * "invalid_reply" when the bytes are not a reply. Reads only "status" and "error"."code",
 * skipping everything else without allocating, so that a large result costs one pass. */
void cf_metrics_reply_outcome(const void *reply, size_t len, char *out, size_t outlen);

/* A monotonic clock in nanoseconds, for durations given to cf_metric_observe. */
uint64_t cf_metrics_clock_ns(void);
/* Seconds since START_NS (a cf_metrics_clock_ns value). */
double cf_metrics_since(uint64_t start_ns);

/* One HTTP request answered by FRONT ("acme", "ocspd") with status CODE after SECONDS:
 * certfleet_http_requests_total{front,code} and certfleet_http_request_duration_seconds{front}. */
void cf_metrics_http_request(const char *front, unsigned int code, double seconds);

/* CHECK fails by itself when it is not set again within TTL_MS (0: never), e.g. a main loop
 * that sets it on every turn and might hang. Thread-safe. */
void cf_health_set_ttl(const char *check, int ttl_ms);

/* A check computed when /health is asked (in the server's thread): FN writes a detail and
 * says whether it passes. ARG must stay valid until cf_metrics_stop, or until the probe is
 * removed by setting a NULL FN (the check then keeps its last result). Thread-safe. */
typedef bool(cf_health_probe_fn)(void *arg, char *detail, size_t len);
void cf_health_probe(const char *check, cf_health_probe_fn *fn, void *arg);

/* The exposition text of every series (caller frees), or NULL when out of memory. */
char *cf_metrics_render(size_t *len);
/* The /health document (caller frees) and its HTTP status (200 or 503), running the probes;
 * NULL when out of memory. */
char *cf_health_render(int *http_status);

#endif
