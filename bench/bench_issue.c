/* certfleet-bench-issue: end-to-end issuance (client -> broker -> signer -> PostgreSQL commit
 * -> reply) in certificates/s with p50/p99 latency, for one CA, from CSRs made in advance.
 *
 *   certfleet-bench-issue --endpoint E --ca NAME --csrs DIR [--count N] [--depth D]
 * DIR holds N DER CSRs named 0.der, 1.der, ... (bench/run_issue.sh makes them). Prints one
 * line: "certs_per_s p50_us p99_us ok failed". */
#include <czmq.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_client.h"

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

int main(int argc, char **argv)
{
    const char *endpoint = "tcp://127.0.0.1:5555", *ca = NULL, *dir = NULL;
    int count = 1000, depth = 256;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--endpoint"))
            endpoint = argv[i + 1];
        else if (!strcmp(argv[i], "--ca"))
            ca = argv[i + 1];
        else if (!strcmp(argv[i], "--csrs"))
            dir = argv[i + 1];
        else if (!strcmp(argv[i], "--count"))
            count = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--depth"))
            depth = atoi(argv[i + 1]);
    }
    if (!ca || !dir || count <= 0) {
        fprintf(stderr, "usage: certfleet-bench-issue --endpoint E --ca NAME --csrs DIR [--count "
                        "N] [--depth D]\n");
        return 2;
    }
    zsys_init();
    zsys_set_logstream(NULL);
    /* Pack every job's params up front: the loop below measures the fleet, not the packing. */
    msgpack_sbuffer *params = calloc((size_t)count, sizeof *params);
    for (int i = 0; i < count; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%d.der", dir, i);
        FILE *f = fopen(path, "rb");
        if (!f) {
            fprintf(stderr, "missing %s\n", path);
            return 1;
        }
        unsigned char der[4096];
        size_t n = fread(der, 1, sizeof der, f);
        fclose(f);
        msgpack_sbuffer_init(&params[i]);
        msgpack_packer pk;
        msgpack_packer_init(&pk, &params[i], msgpack_sbuffer_write);
        msgpack_pack_map(&pk, 3);
        cf_msgpack_pack_cstr(&pk, "ca");
        cf_msgpack_pack_cstr(&pk, ca);
        cf_msgpack_pack_cstr(&pk, "csr");
        msgpack_pack_bin(&pk, n);
        msgpack_pack_bin_body(&pk, der, n);
        cf_msgpack_pack_cstr(&pk, "profile");
        cf_msgpack_pack_cstr(&pk, "webserver");
    }
    cf_client_t *c = cf_client_new(endpoint);
    cf_client_set_timeout(c, 30000);
    uint64_t *sent = calloc((size_t)count, sizeof *sent), *lat = calloc((size_t)count, sizeof *lat);
    int next = 0, done = 0, ok = 0, failed = 0;
    uint64_t start = s_now_us();
    uint8_t id[CF_JOB_ID_SIZE];
    cf_job_id_random(id);
    while (done < count) {
        while (next < count && (int)cf_client_pending(c) < depth) {
            memcpy(id, &next, sizeof next);
            sent[next] = s_now_us();
            cf_client_send(c, id, "cert.issue", params[next].data, params[next].size, 0, NULL);
            next++;
        }
        cf_reply_t *r = cf_client_recv(c, 60000);
        if (!r)
            break;
        int k;
        memcpy(&k, cf_reply_id(r) ? cf_reply_id(r) : id, sizeof k);
        if (cf_reply_ok(r)) {
            lat[ok++] = s_now_us() - sent[k];
        } else {
            if (!failed)
                fprintf(stderr, "job failed: %s: %s\n", cf_reply_error(r)->code,
                        cf_reply_error(r)->message);
            failed++;
        }
        done++;
        cf_reply_destroy(&r);
    }
    double secs = (double)(s_now_us() - start) / 1e6;
    qsort(lat, (size_t)ok, sizeof *lat, s_cmp);
    printf("%.0f %llu %llu %d %d\n", ok / secs, ok ? (unsigned long long)lat[ok / 2] : 0ULL,
           ok ? (unsigned long long)lat[(size_t)(ok * 0.99)] : 0ULL, ok, failed);
    for (int i = 0; i < count; i++)
        msgpack_sbuffer_destroy(&params[i]);
    free(params);
    free(sent);
    free(lat);
    cf_client_destroy(&c);
    return failed ? 1 : 0;
}
