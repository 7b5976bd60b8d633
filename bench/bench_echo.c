/* certfleet-bench-echo: jobs/s and p50/p99 latency through the broker at several depths of
 * jobs in flight, next to a raw ZeroMQ DEALER -> ROUTER echo of the same size measured in
 * the same run (the peer: what the wire costs with no broker, no worker, no decoding).
 *
 *   certfleet-bench-echo --endpoint tcp://127.0.0.1:5555 [--type sys.ping] [--seconds 3]
 *                        [--depths 1,16,256] [--size 200] [--config FILE]
 *
 * With --config the client comes from that file (endpoint and [curve] keys): against a
 * fleet that runs with CURVE, the raw echo then runs with CURVE too (keys made on the spot),
 * so that the ratio compares like with like. */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/wait.h>

#include "cf_client.h"
#include "cf_curve.h"
#include "cf_log.h"

/* The raw echo's CURVE keys, when the fleet runs with CURVE (else NULL). */
static zcert_t *s_raw_server_cert, *s_raw_client_cert;

typedef struct {
    double rate;   /* round trips per second */
    double p50_us; /* median latency */
    double p99_us; /* 99th percentile */
} s_result_t;

static int s_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static uint64_t s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void s_percentiles(uint64_t *lat, size_t n, s_result_t *r)
{
    qsort(lat, n, sizeof *lat, s_cmp);
    r->p50_us = n ? (double)lat[n / 2] : 0;
    r->p99_us = n ? (double)lat[(size_t)((double)n * 0.99)] : 0;
}

/* The raw peer: a ROUTER that echoes every message, in its own process like the broker. */
static pid_t s_raw_server(const char *endpoint)
{
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    void *ctx = zmq_ctx_new();
    void *router = zmq_socket(ctx, ZMQ_ROUTER);
    if (s_raw_server_cert) {
        int on = 1;
        zmq_setsockopt(router, ZMQ_CURVE_SERVER, &on, sizeof on);
        zmq_setsockopt(router, ZMQ_CURVE_SECRETKEY, zcert_secret_key(s_raw_server_cert), 32);
    }
    int hwm = 1000000;
    zmq_setsockopt(router, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(router, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (zmq_bind(router, endpoint) != 0)
        _exit(1);
    for (;;) {
        zmq_msg_t route, body;
        zmq_msg_init(&route);
        zmq_msg_init(&body);
        if (zmq_msg_recv(&route, router, 0) < 0 || zmq_msg_recv(&body, router, 0) < 0)
            _exit(0);
        zmq_msg_send(&route, router, ZMQ_SNDMORE);
        zmq_msg_send(&body, router, 0);
    }
}

static void s_raw_run(const char *endpoint, int depth, double seconds, size_t size, s_result_t *r)
{
    void *ctx = zmq_ctx_new();
    void *dealer = zmq_socket(ctx, ZMQ_DEALER);
    int hwm = 1000000, linger = 0;
    zmq_setsockopt(dealer, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(dealer, ZMQ_RCVHWM, &hwm, sizeof hwm);
    zmq_setsockopt(dealer, ZMQ_LINGER, &linger, sizeof linger);
    if (s_raw_server_cert) {
        zmq_setsockopt(dealer, ZMQ_CURVE_SERVERKEY, zcert_public_key(s_raw_server_cert), 32);
        zmq_setsockopt(dealer, ZMQ_CURVE_PUBLICKEY, zcert_public_key(s_raw_client_cert), 32);
        zmq_setsockopt(dealer, ZMQ_CURVE_SECRETKEY, zcert_secret_key(s_raw_client_cert), 32);
    }
    zmq_connect(dealer, endpoint);
    uint8_t *msg = calloc(1, size < 8 ? 8 : size);
    size_t cap = 1 << 22, n = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    uint64_t start = s_now_us(), end = start + (uint64_t)(seconds * 1e6);
    int inflight = 0;
    uint64_t done = 0;
    while (s_now_us() < end || inflight > 0) {
        while (inflight < depth && s_now_us() < end) {
            uint64_t t = s_now_us();
            memcpy(msg, &t, 8);
            zmq_send(dealer, msg, size < 8 ? 8 : size, 0);
            inflight++;
        }
        uint8_t back[8];
        if (zmq_recv(dealer, back, 8, 0) >= 8) {
            uint64_t t;
            memcpy(&t, back, 8);
            if (n < cap)
                lat[n++] = s_now_us() - t;
            inflight--;
            done++;
        }
    }
    r->rate = (double)done / ((double)(s_now_us() - start) / 1e6);
    s_percentiles(lat, n, r);
    free(lat);
    free(msg);
    zmq_close(dealer);
    zmq_ctx_term(ctx);
}

static void s_fleet_run(const char *endpoint, cf_config_t *config, const char *type, int depth,
                        double seconds, size_t size, s_result_t *r)
{
    cf_client_t *c = config ? cf_client_new_from_config(config) : cf_client_new(endpoint);
    if (!c) {
        fprintf(stderr, "certfleet-bench-echo: no client (see the log above)\n");
        exit(1);
    }
    cf_client_set_timeout(c, 30000);
    /* Params of about SIZE bytes, so both sides move the same payload. */
    msgpack_sbuffer params;
    msgpack_sbuffer_init(&params);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &params, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    cf_msgpack_pack_cstr(&pk, "pad");
    size_t pad = size > 64 ? size - 64 : 1;
    msgpack_pack_bin(&pk, pad);
    char *zeros = calloc(1, pad);
    msgpack_pack_bin_body(&pk, zeros, pad);
    free(zeros);
    size_t cap = 1 << 22, n = 0;
    uint64_t *lat = malloc(cap * sizeof *lat);
    /* Send times by job, found again by the counter kept in the id's first 8 bytes. */
    size_t ring = 1 << 16;
    uint64_t *sent_at = calloc(ring, sizeof *sent_at);
    uint64_t start = s_now_us(), end = start + (uint64_t)(seconds * 1e6), counter = 0, done = 0;
    uint8_t id[CF_JOB_ID_SIZE];
    cf_job_id_random(id);
    while (s_now_us() < end || cf_client_pending(c) > 0) {
        while ((int)cf_client_pending(c) < depth && s_now_us() < end) {
            memcpy(id, &counter, 8);
            sent_at[counter % ring] = s_now_us();
            cf_client_send(c, id, type, params.data, params.size, 0, NULL);
            counter++;
        }
        cf_reply_t *reply = cf_client_recv(c, 1000);
        if (!reply)
            continue;
        if (!cf_reply_ok(reply)) {
            fprintf(stderr, "job failed: %s: %s\n", cf_reply_error(reply)->code,
                    cf_reply_error(reply)->message);
        } else if (cf_reply_id(reply)) {
            uint64_t k;
            memcpy(&k, cf_reply_id(reply), 8);
            if (n < cap)
                lat[n++] = s_now_us() - sent_at[k % ring];
        }
        done++;
        cf_reply_destroy(&reply);
    }
    r->rate = (double)done / ((double)(s_now_us() - start) / 1e6);
    s_percentiles(lat, n, r);
    free(lat);
    free(sent_at);
    msgpack_sbuffer_destroy(&params);
    cf_client_destroy(&c);
}

int main(int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:5555", *type = "sys.ping", *depths = "1,16,256";
    const char *config_path = NULL;
    double seconds = 3;
    size_t size = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0)
            endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--type") == 0)
            type = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--depths") == 0)
            depths = argv[i + 1];
        else if (strcmp(argv[i], "--size") == 0)
            size = (size_t)atol(argv[i + 1]);
        else if (strcmp(argv[i], "--config") == 0)
            config_path = argv[i + 1];
    }
    zsys_init();
    zsys_set_logstream(NULL);
    cf_config_t *config = NULL;
    bool curve = false;
    if (config_path) {
        char err[512] = "";
        if (!(config = cf_config_load(config_path, err, sizeof err))) {
            fprintf(stderr, "certfleet-bench-echo: %s\n", err);
            return 1;
        }
        cf_log_configure(config, "certfleet-bench-echo");
        endpoint = cf_config_get(config, "broker", "endpoint", endpoint);
        cf_curve_t *keys = cf_curve_new(config, CF_CURVE_CLIENT, err, sizeof err);
        if (!keys) {
            fprintf(stderr, "certfleet-bench-echo: %s\n", err);
            return 1;
        }
        curve = !cf_curve_insecure(keys);
        cf_curve_destroy(&keys);
    }
    if (curve) {
        s_raw_server_cert = zcert_new();
        s_raw_client_cert = zcert_new();
    }
    char raw_ep[64];
    snprintf(raw_ep, sizeof raw_ep, "tcp://127.0.0.1:%d", 20000 + (int)(getpid() % 20000));
    pid_t raw = s_raw_server(raw_ep);
    usleep(200 * 1000);
    printf("# %s through the broker vs raw ZeroMQ DEALER->ROUTER echo, %zu-byte payload, %.0f s "
           "per cell%s\n",
           type, size, seconds, curve ? ", both with CURVE" : "");
    printf("| in flight | raw round trips/s | raw p50 us | raw p99 us | certfleet jobs/s | p50 us "
           "| p99 us | certfleet / raw |\n");
    printf("|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    char *list = strdup(depths);
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        int depth = atoi(tok);
        s_result_t a, b;
        s_raw_run(raw_ep, depth, seconds, size, &a);
        s_fleet_run(endpoint, config, type, depth, seconds, size, &b);
        printf("| %d | %.0f | %.0f | %.0f | %.0f | %.0f | %.0f | %.2f |\n", depth, a.rate, a.p50_us,
               a.p99_us, b.rate, b.p50_us, b.p99_us, a.rate > 0 ? b.rate / a.rate : 0);
        fflush(stdout);
    }
    free(list);
    kill(raw, SIGTERM);
    waitpid(raw, NULL, 0);
    zcert_destroy(&s_raw_server_cert);
    zcert_destroy(&s_raw_client_cert);
    cf_config_destroy(&config);
    return 0;
}
