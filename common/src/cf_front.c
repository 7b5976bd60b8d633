/* cf_front: the shared start-up and listen address of the HTTP fronts (cf_front.h). */
#include "cf_front.h"

#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"

cf_config_t *cf_front_init(int argc, char **argv, const char *program, const char *what,
                           int *exit_code)
{
    const char *config_path = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
            config_path = argv[++i];
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [--config FILE]\n%s\n", program, what);
            *exit_code = 0;
            return NULL;
        } else {
            fprintf(stderr, "%s: unknown argument \"%s\"\n", program, argv[i]);
            *exit_code = 2;
            return NULL;
        }
    }
    char errbuf[512] = "";
    cf_config_t *cfg = cf_config_load(config_path, errbuf, sizeof errbuf);
    if (!cfg) {
        fprintf(stderr, "%s: %s\n", program, errbuf);
        *exit_code = 1;
        return NULL;
    }
    cf_log_configure(cfg, program);
    return cfg;
}

int cf_front_setting(cf_config_t *cfg, const char *section, const char *key, int64_t dflt,
                     int64_t lo, int64_t hi, int64_t *out)
{
    int64_t v = cf_config_get_int(cfg, section, key, dflt);
    if (v < lo || v > hi) {
        cf_log_error("config \"%s.%s\" = %lld is out of range [%lld, %lld]", section, key,
                     (long long)v, (long long)lo, (long long)hi);
        return -1;
    }
    *out = v;
    return 0;
}

int cf_front_listen_addr(const char *listen, struct sockaddr_storage *addr, bool *v6)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || colon[1] == '\0')
        return -1;
    size_t hlen = (size_t)(colon - listen);
    const char *h = listen;
    if (h[0] == '[' && hlen >= 2 && h[hlen - 1] == ']') {
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof host)
        return -1;
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE}, *ai = NULL;
    bool any = strcmp(host, "*") == 0 || host[0] == '\0';
    if (getaddrinfo(any ? NULL : host, colon + 1, &hints, &ai) != 0 || !ai)
        return -1;
    memcpy(addr, ai->ai_addr, ai->ai_addrlen);
    *v6 = ai->ai_family == AF_INET6;
    freeaddrinfo(ai);
    return 0;
}

void cf_front_mhd_log(void *cls, const char *fmt, va_list ap)
{
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
    cf_log_warn("libmicrohttpd: %s", line);
}

struct MHD_Daemon *cf_front_daemon_start(const cf_front_daemon_t *s,
                                         MHD_AccessHandlerCallback access,
                                         MHD_RequestCompletedCallback completed, void *cls)
{
    struct sockaddr_storage addr = {0};
    bool v6 = false;
    if (cf_front_listen_addr(s->listen, &addr, &v6) != 0) {
        cf_log_error("could not resolve listen address \"%s\"", s->listen);
        return NULL;
    }
    unsigned int flags =
        MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_TURBO | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    if (s->suspend_resume)
        flags |= MHD_ALLOW_SUSPEND_RESUME;
    struct MHD_Daemon *mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, access, cls,
        /* First, so that MHD's own complaints about the options below come through it. */
        MHD_OPTION_EXTERNAL_LOGGER, cf_front_mhd_log, cls, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr,
        /* A restart must not wait for the old connections' TIME_WAIT to pass. */
        MHD_OPTION_LISTENING_ADDRESS_REUSE, (unsigned int)1, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)s->threads, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)s->connection_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        s->connection_memory, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)s->max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned int)s->per_ip_connection_limit,
        MHD_OPTION_NOTIFY_COMPLETED, completed, cls, MHD_OPTION_END);
    if (!mhd) {
        cf_log_error("could not listen on \"%s\"", s->listen);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(mhd, MHD_DAEMON_INFO_BIND_PORT);
    cf_log_info("listening on %s (port %u), %d threads", s->listen,
                info ? (unsigned int)info->port : 0u, s->threads);
    return mhd;
}

int cf_front_body_take(cf_front_body_t *b, const char *data, size_t size, size_t max)
{
    if (b->too_large || size > max - b->len) {
        b->too_large = true;
        b->dropped += size;
        return b->dropped > CF_FRONT_DROP_MAX ? -1 : 0;
    }
    if (b->len + size > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + size)
            cap *= 2;
        if (cap > max)
            cap = max;
        unsigned char *grown = realloc(b->data, cap);
        if (!grown)
            return -1;
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, data, size);
    b->len += size;
    return 0;
}

void cf_front_body_free(cf_front_body_t *b)
{
    free(b->data);
    *b = (cf_front_body_t){0};
}
