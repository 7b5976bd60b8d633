/* certfleet-bench-http: a small HTTP/1.1 load generator for the OCSP and CRL benchmarks.
 * N connections (one thread each) send the same request for a fixed time; with keep-alive
 * each connection is reused, and a server that closes it (the openssl ocsp responder
 * answers HTTP/1.0 and closes) is reconnected, the reconnect counted in the request's time.
 * Prints one table row: connections, requests, errors, requests/s, p50 and p99 in ms.
 *
 *   certfleet-bench-http --host 127.0.0.1 --port 8080 --path /ocsp/NAME/ \
 *       --body request.der [--type application/ocsp-request] [--connections 16]
 *       [--seconds 5] [--label NAME] [--header]
 * Without --body the request is a GET of --path. */
#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_SAMPLES 2000000

typedef struct {
    const char *host;
    int port;
    char *request; /* the whole request: head and body */
    size_t request_len;
    double seconds;
} s_config_t;

typedef struct {
    const s_config_t *cfg;
    uint64_t done;     /* answered 200 */
    uint64_t errors;   /* other status, short reads, refused connections */
    uint32_t *samples; /* latency in microseconds */
    size_t nsamples;   /* used */
    size_t cap;        /* allocated */
} s_thread_t;

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int s_connect(const s_config_t *cfg)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)cfg->port)};
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (inet_pton(AF_INET, cfg->host, &sa.sin_addr) != 1 ||
        connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static int s_send_all(int fd, const char *buf, size_t len)
{
    while (len) {
        ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        buf += n;
        len -= (size_t)n;
    }
    return 0;
}

/* Read one response. Returns the status code, or -1; *KEEP says whether the connection
 * stays open. BUF is scratch space of CAP bytes; bodies larger than it are read through. */
static int s_read_response(int fd, char *buf, size_t cap, bool *keep)
{
    size_t have = 0;
    char *end = NULL;
    while (!end) {
        if (have + 1 >= cap)
            return -1;
        ssize_t n = recv(fd, buf + have, cap - 1 - have, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        have += (size_t)n;
        buf[have] = '\0';
        end = strstr(buf, "\r\n\r\n");
    }
    int status = 0;
    if (sscanf(buf, "HTTP/%*d.%*d %d", &status) != 1)
        return -1;
    *keep = strncmp(buf, "HTTP/1.1", 8) == 0;
    long long length = -1;
    for (char *line = strstr(buf, "\r\n"); line && line < end; line = strstr(line + 2, "\r\n")) {
        char *h = line + 2;
        if (strncasecmp(h, "Content-Length:", 15) == 0)
            length = atoll(h + 15);
        else if (strncasecmp(h, "Connection:", 11) == 0)
            *keep = strstr(h, "close") == NULL || strstr(h, "close") > strstr(h, "\r\n");
    }
    size_t body_have = have - (size_t)(end + 4 - buf);
    if (length < 0) { /* read to the end of the connection */
        *keep = false;
        for (;;) {
            ssize_t n = recv(fd, buf, cap, 0);
            if (n <= 0)
                break;
        }
        return status;
    }
    while ((long long)body_have < length) {
        size_t want = (size_t)(length - (long long)body_have);
        ssize_t n = recv(fd, buf, want < cap ? want : cap, 0);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        body_have += (size_t)n;
    }
    return status;
}

static void *s_run(void *arg)
{
    s_thread_t *t = arg;
    const s_config_t *cfg = t->cfg;
    char *buf = malloc(65536);
    int fd = -1;
    double stop = s_now() + cfg->seconds;
    while (buf) {
        double start = s_now();
        if (start >= stop)
            break;
        if (fd < 0 && (fd = s_connect(cfg)) < 0) {
            t->errors++;
            usleep(1000);
            continue;
        }
        bool keep = false;
        int status = -1;
        if (s_send_all(fd, cfg->request, cfg->request_len) == 0)
            status = s_read_response(fd, buf, 65536, &keep);
        if (status == 200) {
            t->done++;
            if (t->nsamples < t->cap)
                t->samples[t->nsamples++] = (uint32_t)((s_now() - start) * 1e6);
        } else {
            t->errors++;
            keep = false;
        }
        if (!keep) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0)
        close(fd);
    free(buf);
    return NULL;
}

static int s_cmp(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static char *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    char *data = NULL;
    size_t cap = 0;
    *len = 0;
    for (;;) {
        if (*len == cap) {
            cap = cap ? 2 * cap : 4096;
            char *more = realloc(data, cap);
            if (!more) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = more;
        }
        size_t n = fread(data + *len, 1, cap - *len, f);
        if (n == 0)
            break;
        *len += n;
    }
    fclose(f);
    return data;
}

int main(int argc, char **argv)
{
    s_config_t cfg = {.host = "127.0.0.1", .port = 8080, .seconds = 5};
    const char *path = "/", *body_file = NULL, *type = "application/ocsp-request";
    const char *label = "certfleet";
    int connections = 16;
    bool header = false;
    static const struct option opts[] = {
        {"host", required_argument, NULL, 'H'},    {"port", required_argument, NULL, 'p'},
        {"path", required_argument, NULL, 'P'},    {"body", required_argument, NULL, 'b'},
        {"type", required_argument, NULL, 't'},    {"connections", required_argument, NULL, 'c'},
        {"seconds", required_argument, NULL, 's'}, {"label", required_argument, NULL, 'l'},
        {"header", no_argument, NULL, 'h'},        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (c) {
        case 'H':
            cfg.host = optarg;
            break;
        case 'p':
            cfg.port = atoi(optarg);
            break;
        case 'P':
            path = optarg;
            break;
        case 'b':
            body_file = optarg;
            break;
        case 't':
            type = optarg;
            break;
        case 'c':
            connections = atoi(optarg);
            break;
        case 's':
            cfg.seconds = atof(optarg);
            break;
        case 'l':
            label = optarg;
            break;
        case 'h':
            header = true;
            break;
        default:
            fprintf(stderr, "usage: see the comment at the top of bench/bench_http.c\n");
            return 2;
        }
    }
    if (connections < 1 || connections > 1024 || cfg.seconds <= 0 || cfg.port <= 0) {
        fprintf(stderr, "certfleet-bench-http: bad --connections, --seconds or --port\n");
        return 2;
    }
    size_t body_len = 0;
    char *body = NULL;
    if (body_file && !(body = s_read_file(body_file, &body_len))) {
        fprintf(stderr, "certfleet-bench-http: cannot read %s\n", body_file);
        return 1;
    }
    char head[1024];
    int hl = body ? snprintf(head, sizeof head,
                             "POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: %s\r\n"
                             "Content-Length: %zu\r\n\r\n",
                             path, cfg.host, cfg.port, type, body_len)
                  : snprintf(head, sizeof head, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", path,
                             cfg.host, cfg.port);
    cfg.request_len = (size_t)hl + body_len;
    cfg.request = malloc(cfg.request_len);
    memcpy(cfg.request, head, (size_t)hl);
    if (body_len)
        memcpy(cfg.request + hl, body, body_len);
    free(body);

    s_thread_t *threads = calloc((size_t)connections, sizeof *threads);
    pthread_t *tids = calloc((size_t)connections, sizeof *tids);
    size_t cap = S_MAX_SAMPLES / (size_t)connections;
    for (int i = 0; i < connections; i++) {
        threads[i] = (s_thread_t){.cfg = &cfg, .cap = cap};
        threads[i].samples = malloc(cap * sizeof(uint32_t));
    }
    double start = s_now();
    for (int i = 0; i < connections; i++)
        pthread_create(&tids[i], NULL, s_run, &threads[i]);
    uint64_t done = 0, errors = 0;
    size_t total = 0;
    for (int i = 0; i < connections; i++) {
        pthread_join(tids[i], NULL);
        done += threads[i].done;
        errors += threads[i].errors;
        total += threads[i].nsamples;
    }
    double elapsed = s_now() - start;
    uint32_t *all = malloc((total ? total : 1) * sizeof(uint32_t));
    size_t k = 0;
    for (int i = 0; i < connections; i++) {
        memcpy(all + k, threads[i].samples, threads[i].nsamples * sizeof(uint32_t));
        k += threads[i].nsamples;
        free(threads[i].samples);
    }
    qsort(all, total, sizeof(uint32_t), s_cmp);
    double p50 = total ? all[total / 2] / 1000.0 : 0,
           p99 = total ? all[total * 99 / 100] / 1000.0 : 0;
    if (header)
        printf("%-28s %11s %10s %8s %12s %9s %9s\n", "server", "connections", "requests", "errors",
               "requests/s", "p50 ms", "p99 ms");
    printf("%-28s %11d %10llu %8llu %12.0f %9.3f %9.3f\n", label, connections,
           (unsigned long long)done, (unsigned long long)errors, (double)done / elapsed, p50, p99);
    free(all);
    free(threads);
    free(tids);
    free(cfg.request);
    return done ? 0 : 1;
}
