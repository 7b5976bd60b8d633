/* cf_metrics: series registered once and found again, the exposition text (HELP and TYPE once
 * per name, cumulative histogram buckets, escaped labels), lock-free updates from several
 * threads, the outcome of reply envelopes, health checks, and the HTTP server on loopback.
 * Reads as cf_metrics's usage example. The registry is one per process, so every test uses
 * its own metric names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>

#include "cf_config.h"
#include "cf_job.h"
#include "cf_log.h"
#include "cf_metrics.h"
#include "cf_msgpack.h"
#include "cf_test.h"
#include "cf_test_metrics.h"

/* The rendered text (freed by the caller). */
static char *s_render(void)
{
    size_t len = 0;
    char *text = cf_metrics_render(&len);
    assert_non_null(text);
    assert_int_equal(strlen(text), len);
    return text;
}

/* How often NEEDLE occurs in HAY. */
static int s_occurrences(const char *hay, const char *needle)
{
    int n = 0;
    for (const char *p = strstr(hay, needle); p; p = strstr(p + 1, needle))
        n++;
    return n;
}

static void s_assert_line(const char *text, const char *line)
{
    char want[512];
    snprintf(want, sizeof want, "\n%s\n", line);
    if (!strstr(text, want))
        fail_msg("missing line \"%s\" in:\n%s", line, text);
}

/* ---- registry and exposition -------------------------------------------------------- */

static void test_counter(void **state)
{
    cf_metric_t *ok =
        cf_metrics_counter("t_jobs_total", "Jobs \\ done\nper kind", "kind=\"a\",outcome=\"ok\"");
    cf_metric_t *err = cf_metrics_counter("t_jobs_total", "ignored: the first help wins",
                                          "kind=\"a\",outcome=\"busy\"");
    assert_non_null(ok);
    assert_non_null(err);
    assert_ptr_not_equal(ok, err);
    /* The same name and labels: the same series. */
    assert_ptr_equal(cf_metrics_counter("t_jobs_total", "", "kind=\"a\",outcome=\"ok\""), ok);
    cf_metric_add(ok, 3);
    cf_metric_add(ok, 2);
    cf_metric_add(err, 1);
    char *text = s_render();
    /* HELP is escaped, and HELP and TYPE come once for both series. */
    assert_int_equal(s_occurrences(text, "# HELP t_jobs_total Jobs \\\\ done\\nper kind\n"), 1);
    assert_int_equal(s_occurrences(text, "# TYPE t_jobs_total counter\n"), 1);
    s_assert_line(text, "t_jobs_total{kind=\"a\",outcome=\"ok\"} 5");
    s_assert_line(text, "t_jobs_total{kind=\"a\",outcome=\"busy\"} 1");
    free(text);
}

static void test_gauge_without_labels(void **state)
{
    cf_metric_t *g = cf_metrics_gauge("t_depth", "Depth", "");
    assert_non_null(g);
    assert_ptr_equal(cf_metrics_gauge("t_depth", "Depth", NULL), g);
    cf_metric_set(g, 42);
    cf_metric_set(g, -7);
    char *text = s_render();
    assert_non_null(strstr(text, "# TYPE t_depth gauge\n"));
    s_assert_line(text, "t_depth -7");
    free(text);
}

static void test_histogram(void **state)
{
    cf_metric_t *h = cf_metrics_histogram("t_seconds", "Durations", "svc=\"x\"");
    assert_non_null(h);
    cf_metric_observe(h, 0.0003); /* first bucket */
    cf_metric_observe(h, 0.001);  /* exactly on a bound: le means <= */
    cf_metric_observe(h, 5.0);    /* 8.192 */
    cf_metric_observe(h, 20.0);   /* past 10 s: +Inf only */
    cf_metric_observe(h, -1.0);   /* a clock that stepped back counts as 0 */
    char *text = s_render();
    assert_non_null(strstr(text, "# TYPE t_seconds histogram\n"));
    s_assert_line(text, "t_seconds_bucket{svc=\"x\",le=\"0.0005\"} 2");
    s_assert_line(text, "t_seconds_bucket{svc=\"x\",le=\"0.001\"} 3");
    s_assert_line(text, "t_seconds_bucket{svc=\"x\",le=\"0.002\"} 3");
    s_assert_line(text, "t_seconds_bucket{svc=\"x\",le=\"4.096\"} 3");
    s_assert_line(text, "t_seconds_bucket{svc=\"x\",le=\"8.192\"} 4");
    s_assert_line(text, "t_seconds_bucket{svc=\"x\",le=\"10\"} 4");
    s_assert_line(text, "t_seconds_bucket{svc=\"x\",le=\"+Inf\"} 5");
    s_assert_line(text, "t_seconds_sum{svc=\"x\"} 25.001300000");
    s_assert_line(text, "t_seconds_count{svc=\"x\"} 5");
    /* Sixteen bounds and +Inf. */
    assert_int_equal(s_occurrences(text, "t_seconds_bucket{svc=\"x\""), 17);
    free(text);

    cf_metric_t *bare = cf_metrics_histogram("t_bare_seconds", "No labels", "");
    cf_metric_observe(bare, 0.5);
    text = s_render();
    s_assert_line(text, "t_bare_seconds_bucket{le=\"0.512\"} 1");
    s_assert_line(text, "t_bare_seconds_count 1");
    free(text);
}

static void test_label_escape(void **state)
{
    char out[64];
    cf_metrics_label_escape("a\"b\\c\nd", out, sizeof out);
    assert_string_equal(out, "a\\\"b\\\\c\\nd");
    /* Cut to the buffer, never in the middle of an escape. */
    cf_metrics_label_escape("ab\"cd", out, 4);
    assert_string_equal(out, "ab");
    cf_metrics_label_escape("abcdef", out, 4);
    assert_string_equal(out, "abc");
    cf_metrics_label_escape(NULL, out, sizeof out);
    assert_string_equal(out, "");

    char labels[128], value[64];
    cf_metrics_label_escape("say \"hi\"", value, sizeof value);
    snprintf(labels, sizeof labels, "name=\"%s\"", value);
    cf_metric_add(cf_metrics_counter("t_escaped_total", "Escaped", labels), 1);
    char *text = s_render();
    s_assert_line(text, "t_escaped_total{name=\"say \\\"hi\\\"\"} 1");
    free(text);
}

static void test_refused(void **state)
{
    /* A name that is not a metric name, or a name used with another type, gets no series;
     * updates through NULL do nothing. */
    assert_null(cf_metrics_counter("9lives", "", ""));
    assert_null(cf_metrics_counter("has space", "", ""));
    assert_null(cf_metrics_counter(NULL, "", ""));
    assert_null(cf_metrics_counter("t_raw_newline", "", "a=\"x\ny\""));
    assert_non_null(cf_metrics_counter("t_kind", "", ""));
    assert_null(cf_metrics_gauge("t_kind", "", ""));
    assert_null(cf_metrics_histogram("t_kind", "", ""));
    cf_metric_add(NULL, 1);
    cf_metric_set(NULL, 1);
    cf_metric_observe(NULL, 1.0);
    char *text = s_render();
    assert_null(strstr(text, "9lives"));
    assert_null(strstr(text, "t_raw_newline"));
    assert_int_equal(s_occurrences(text, "# TYPE t_kind "), 1);
    free(text);
}

/* ---- threads ------------------------------------------------------------------------ */

#define S_THREADS 4
#define S_ROUNDS  50000

static void *s_hammer(void *arg)
{
    (void)arg;
    for (int i = 0; i < S_ROUNDS; i++) {
        /* Registering again on every round is the lookup path, racing the first insert. */
        cf_metric_add(cf_metrics_counter("t_race_total", "Race", "t=\"shared\""), 1);
        cf_metric_observe(cf_metrics_histogram("t_race_seconds", "Race", ""), 0.001);
        if (i % 1000 == 0) {
            char labels[32];
            snprintf(labels, sizeof labels, "n=\"%d\"", i / 1000);
            cf_metric_add(cf_metrics_counter("t_race_many_total", "Race", labels), 1);
            /* A scrape in the middle of it all must be well-formed. */
            char *text = cf_metrics_render(NULL);
            assert_non_null(text);
            free(text);
        }
    }
    return NULL;
}

static void test_threads(void **state)
{
    pthread_t threads[S_THREADS];
    for (int i = 0; i < S_THREADS; i++)
        assert_int_equal(pthread_create(&threads[i], NULL, s_hammer, NULL), 0);
    for (int i = 0; i < S_THREADS; i++)
        pthread_join(threads[i], NULL);
    char *text = s_render();
    char line[128];
    snprintf(line, sizeof line, "t_race_total{t=\"shared\"} %d", S_THREADS * S_ROUNDS);
    s_assert_line(text, line);
    snprintf(line, sizeof line, "t_race_seconds_count %d", S_THREADS * S_ROUNDS);
    s_assert_line(text, line);
    snprintf(line, sizeof line, "t_race_seconds_bucket{le=\"0.001\"} %d", S_THREADS * S_ROUNDS);
    s_assert_line(text, line);
    /* Every thread registered the same 50 series: each exists once, with all four counts. */
    snprintf(line, sizeof line, "t_race_many_total{n=\"0\"} %d", S_THREADS);
    s_assert_line(text, line);
    snprintf(line, sizeof line, "t_race_many_total{n=\"49\"} %d", S_THREADS);
    s_assert_line(text, line);
    assert_int_equal(s_occurrences(text, "\nt_race_many_total{"), S_ROUNDS / 1000);
    free(text);
}

/* ---- reply outcomes --------------------------------------------------------------------- */

static void s_outcome(const void *data, size_t len, const char *want)
{
    char out[48];
    cf_metrics_reply_outcome(data, len, out, sizeof out);
    assert_string_equal(out, want);
}

static void test_reply_outcome(void **state)
{
    uint8_t id[CF_JOB_ID_SIZE] = {1, 2, 3};
    msgpack_sbuffer buf;

    /* An ok reply whose result is nested maps, arrays, bins and numbers. */
    msgpack_sbuffer result;
    msgpack_sbuffer_init(&result);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &result, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 3);
    cf_msgpack_pack_cstr(&pk, "list");
    msgpack_pack_array(&pk, 3);
    msgpack_pack_int64(&pk, -70000);
    msgpack_pack_double(&pk, 1.5);
    msgpack_pack_map(&pk, 1);
    cf_msgpack_pack_cstr(&pk, "status");
    cf_msgpack_pack_cstr(&pk, "error"); /* nested: not the envelope's status */
    cf_msgpack_pack_cstr(&pk, "der");
    msgpack_pack_bin(&pk, 300);
    char der[300] = {0};
    msgpack_pack_bin_body(&pk, der, sizeof der);
    cf_msgpack_pack_cstr(&pk, "n");
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_sbuffer_init(&buf);
    cf_reply_pack_ok(&buf, id, result.data, result.size);
    s_outcome(buf.data, buf.size, "ok");
    /* Cut anywhere: never ok, never a crash. */
    for (size_t cut = 0; cut < buf.size; cut++)
        s_outcome(buf.data, cut, "invalid_reply");
    msgpack_sbuffer_destroy(&buf);
    msgpack_sbuffer_destroy(&result);

    cf_error_t err;
    cf_error_set(&err, "in_progress", "", "job is running on another worker");
    msgpack_sbuffer_init(&buf);
    cf_reply_pack_error(&buf, id, &err);
    s_outcome(buf.data, buf.size, "in_progress");
    msgpack_sbuffer_destroy(&buf);

    /* A code that is not snake_case never becomes a label. */
    cf_error_set(&err, "Bad Code\"", "", "x");
    msgpack_sbuffer_init(&buf);
    cf_reply_pack_error(&buf, id, &err);
    s_outcome(buf.data, buf.size, "invalid_reply");
    msgpack_sbuffer_destroy(&buf);

    /* Not a map, a map without status, garbage, nothing. */
    static const uint8_t not_map[] = {0x93, 0x01, 0x02, 0x03};
    static const uint8_t no_status[] = {0x81, 0xa1, 'v', 0x01};
    static const uint8_t reserved[] = {0x81, 0xc1, 0xc1};
    static const uint8_t huge_array[] = {0x81, 0xa1, 'x', 0xdd, 0xff, 0xff, 0xff, 0xff};
    s_outcome(not_map, sizeof not_map, "invalid_reply");
    s_outcome(no_status, sizeof no_status, "invalid_reply");
    s_outcome(reserved, sizeof reserved, "invalid_reply");
    s_outcome(huge_array, sizeof huge_array, "invalid_reply");
    s_outcome(NULL, 0, "invalid_reply");
}

/* ---- health ----------------------------------------------------------------------------- */

static json_t *s_health(int *status)
{
    char *doc = cf_health_render(status);
    assert_non_null(doc);
    json_error_t jerr;
    json_t *j = json_loads(doc, 0, &jerr);
    if (!j)
        fail_msg("/health is not JSON (%s): %s", jerr.text, doc);
    free(doc);
    return j;
}

static bool s_probe_value;

static bool s_probe(void *arg, char *detail, size_t len)
{
    (*(int *)arg)++;
    snprintf(detail, len, "%s", s_probe_value ? "" : "store down");
    return s_probe_value;
}

/* Runs first of the health tests: the checks are process-wide and never removed. */
static void test_health(void **state)
{
    int status = 0;
    json_t *j = s_health(&status);
    assert_int_equal(status, 200);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    assert_int_equal(json_object_size(json_object_get(j, "checks")), 0);
    json_decref(j);

    cf_health_set("postgres", true, "");
    cf_health_set("redis", false, "could not connect\n\x01to Redis");
    j = s_health(&status);
    assert_int_equal(status, 503);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "unhealthy");
    json_t *redis = json_object_get(json_object_get(j, "checks"), "redis");
    assert_false(json_boolean_value(json_object_get(redis, "ok")));
    /* Control characters are not passed on. */
    assert_string_equal(json_string_value(json_object_get(redis, "detail")),
                        "could not connect  to Redis");
    json_t *pg = json_object_get(json_object_get(j, "checks"), "postgres");
    assert_true(json_boolean_value(json_object_get(pg, "ok")));
    json_decref(j);

    cf_health_set("redis", true, "");
    j = s_health(&status);
    assert_int_equal(status, 200);
    json_decref(j);

    /* A probe runs at every /health. */
    int runs = 0;
    s_probe_value = false;
    cf_health_probe("store", s_probe, &runs);
    j = s_health(&status);
    assert_int_equal(status, 503);
    assert_int_equal(runs, 1);
    json_t *store = json_object_get(json_object_get(j, "checks"), "store");
    assert_string_equal(json_string_value(json_object_get(store, "detail")), "store down");
    json_decref(j);
    s_probe_value = true;
    j = s_health(&status);
    assert_int_equal(status, 200);
    assert_int_equal(runs, 2);
    json_decref(j);
    /* RUNS goes with this frame: the probe must go first (a NULL function removes it). */
    cf_health_probe("store", NULL, NULL);
    j = s_health(&status);
    assert_int_equal(runs, 2);
    json_decref(j);

    /* A check with a TTL fails once it is not renewed in time. */
    cf_health_set("loop", true, "");
    cf_health_set_ttl("loop", 1);
    usleep(50 * 1000);
    j = s_health(&status);
    assert_int_equal(status, 503);
    json_t *loop = json_object_get(json_object_get(j, "checks"), "loop");
    assert_non_null(strstr(json_string_value(json_object_get(loop, "detail")), "not updated"));
    json_decref(j);
    cf_health_set_ttl("loop", 0);
    j = s_health(&status);
    assert_int_equal(status, 200);
    json_decref(j);
}

/* ---- the HTTP server -------------------------------------------------------------------- */

static void test_server(void **state)
{
    cf_config_t *cfg = cf_config_new();
    int port = cf_test_free_port();
    char text[16];
    snprintf(text, sizeof text, "%d", port);
    assert_int_equal(cf_config_set(cfg, "metrics", "port", text), 0);
    assert_int_equal(cf_metrics_start(cfg, "test-metrics"), 0);
    assert_int_equal(cf_metrics_port(), port);

    char *body = NULL, ctype[128];
    assert_int_equal(cf_test_http(port, "GET", "/metrics", &body, ctype, sizeof ctype), 200);
    assert_string_equal(ctype, "text/plain; version=0.0.4; charset=utf-8");
    assert_non_null(strstr(body, "# TYPE certfleet_build_info gauge\n"));
    assert_non_null(strstr(body, "certfleet_build_info{program=\"test-metrics\",version=\""));
    assert_non_null(strstr(body, "\ncertfleet_process_start_time_seconds "));
    assert_non_null(strstr(body, "\nt_jobs_total{kind=\"a\",outcome=\"ok\"} 5\n"));
    free(body);

    assert_int_equal(cf_test_http(port, "GET", "/health", &body, ctype, sizeof ctype), 200);
    assert_string_equal(ctype, "application/json");
    json_t *j = json_loads(body, 0, NULL);
    assert_non_null(j);
    assert_string_equal(json_string_value(json_object_get(j, "program")), "test-metrics");
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    json_decref(j);
    free(body);

    cf_health_set("postgres", false, "connection refused");
    assert_int_equal(cf_test_http(port, "GET", "/health", &body, NULL, 0), 503);
    assert_non_null(strstr(body, "connection refused"));
    free(body);
    cf_health_set("postgres", true, "");

    assert_int_equal(cf_test_http(port, "HEAD", "/metrics", NULL, NULL, 0), 200);
    assert_int_equal(cf_test_http(port, "GET", "/", NULL, NULL, 0), 404);
    assert_int_equal(cf_test_http(port, "GET", "/metrics/extra", NULL, NULL, 0), 404);
    assert_int_equal(cf_test_http(port, "GET", "/metrics?x=1", NULL, NULL, 0), 200);
    assert_int_equal(cf_test_http(port, "POST", "/metrics", NULL, NULL, 0), 405);
    assert_int_equal(cf_test_http(port, "DELETE", "/health", NULL, NULL, 0), 405);
    assert_int_equal(cf_test_http(port, "POST", "/nowhere", NULL, NULL, 0), 404);

    /* Starting again is harmless; stopping turns it off. */
    assert_int_equal(cf_metrics_start(cfg, "test-metrics"), 0);
    cf_metrics_stop();
    assert_int_equal(cf_metrics_port(), 0);
    cf_metrics_stop();
    cf_config_destroy(&cfg);
}

static void test_server_refused(void **state)
{
    /* Off by default. */
    cf_config_t *cfg = cf_config_new();
    assert_int_equal(cf_metrics_start(cfg, "test-metrics"), 0);
    assert_int_equal(cf_metrics_port(), 0);

    /* A port out of range, and a port someone else holds, are errors. */
    assert_int_equal(cf_config_set(cfg, "metrics", "port", "70000"), 0);
    assert_int_equal(cf_metrics_start(cfg, "test-metrics"), -1);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = 0};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fd, 1), 0);
    socklen_t salen = sizeof sa;
    assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &salen), 0);
    char text[16];
    snprintf(text, sizeof text, "%d", ntohs(sa.sin_port));
    assert_int_equal(cf_config_set(cfg, "metrics", "port", text), 0);
    assert_int_equal(cf_metrics_start(cfg, "test-metrics"), -1);
    assert_int_equal(cf_metrics_port(), 0);
    close(fd);

    /* An address that does not resolve. */
    assert_int_equal(cf_config_set(cfg, "metrics", "port", "1"), 0);
    assert_int_equal(cf_config_set(cfg, "metrics", "address", "no such host."), 0);
    assert_int_equal(cf_metrics_start(cfg, "test-metrics"), -1);
    cf_config_destroy(&cfg);
}

int main(void)
{
    cf_log_init("test_metrics", CF_LOG_ERROR, false);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_counter),       cmocka_unit_test(test_gauge_without_labels),
        cmocka_unit_test(test_histogram),     cmocka_unit_test(test_label_escape),
        cmocka_unit_test(test_refused),       cmocka_unit_test(test_threads),
        cmocka_unit_test(test_reply_outcome), cmocka_unit_test(test_health),
        cmocka_unit_test(test_server),        cmocka_unit_test(test_server_refused),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    curl_global_cleanup();
    return rc;
}
