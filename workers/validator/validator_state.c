/* The validator's settings and the helpers its checks share. */
#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_job.h"
#include "cf_log.h"
#include "validator.h"

#define S_RESOLV_CONF "/etc/resolv.conf"

/* The first "nameserver" of resolv.conf into OUT; "127.0.0.1" when there is none. */
static void s_first_nameserver(char *out, size_t len)
{
    snprintf(out, len, "127.0.0.1");
    FILE *f = fopen(S_RESOLV_CONF, "r");
    if (!f)
        return;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        char addr[256];
        if (sscanf(line, " nameserver %255s", addr) == 1) {
            snprintf(out, len, "%s", addr);
            break;
        }
    }
    fclose(f);
}

/* "host", "host:port", "[v6]" or "[v6]:port"; a bare IPv6 address has no port. 0 or -1. */
static int s_split_host_port(const char *text, char **host, int *port)
{
    char buf[300];
    snprintf(buf, sizeof buf, "%s", text);
    char *h = buf, *p = NULL;
    if (buf[0] == '[') {
        char *close = strchr(buf, ']');
        if (!close)
            return -1;
        *close = '\0';
        h = buf + 1;
        if (close[1] == ':')
            p = close + 2;
        else if (close[1] != '\0')
            return -1;
    } else {
        char *colon = strchr(buf, ':');
        if (colon && !strchr(colon + 1, ':')) {
            *colon = '\0';
            p = colon + 1;
        }
    }
    if (p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (*p == '\0' || *end != '\0' || v < 1 || v > 65535)
            return -1;
        *port = (int)v;
    }
    if (*h == '\0' || !(*host = strdup(h)))
        return -1;
    return 0;
}

static int s_port(cf_config_t *cfg, const char *key, int dflt)
{
    int64_t v = cf_config_get_int(cfg, "validator", key, dflt);
    if (v < 1 || v > 65535) {
        cf_log_warn("[validator] %s = %lld is not a port, using %d", key, (long long)v, dflt);
        return dflt;
    }
    return (int)v;
}

const validator_config_t *validator_config(cf_handler_ctx_t *ctx)
{
    validator_state_t *state = ctx->state;
    if (state->loaded)
        return &state->config;
    validator_config_t *c = &state->config;
    cf_config_t *cfg = ctx->config;
    c->http_port = s_port(cfg, "http_port", 80);
    c->tls_alpn_port = s_port(cfg, "tls_alpn_port", 443);
    int64_t timeout = cf_config_get_int(cfg, "validator", "timeout_ms", 10000);
    c->timeout_ms = timeout < 100 ? 100 : timeout > 600000 ? 600000 : (int)timeout;
    int64_t redirects = cf_config_get_int(cfg, "validator", "http_max_redirects", 10);
    c->http_max_redirects = redirects < 0 ? 0 : redirects > 50 ? 50 : (int)redirects;
    c->caa_check = cf_config_get_bool(cfg, "validator", "caa_check", true);
    const char *connect = cf_config_get(cfg, "validator", "connect_address", "");
    if (*connect && strcmp(connect, "none") != 0)
        c->connect_address = strdup(connect);
    char resolver[300];
    const char *configured = cf_config_get(cfg, "validator", "dns_resolver", "");
    if (*configured)
        snprintf(resolver, sizeof resolver, "%s", configured);
    else
        s_first_nameserver(resolver, sizeof resolver);
    c->dns_port = 53;
    if (s_split_host_port(resolver, &c->dns_host, &c->dns_port) != 0) {
        cf_log_warn("[validator] dns_resolver \"%s\" is not host:port, using 127.0.0.1:53",
                    resolver);
        free(c->dns_host);
        c->dns_host = strdup("127.0.0.1");
        c->dns_port = 53;
    }
    cf_log_info("validator: http-01 port %d, tls-alpn-01 port %d, resolver %s port %d, "
                "timeout %d ms, %d redirects, CAA check %s%s%s",
                c->http_port, c->tls_alpn_port, c->dns_host ? c->dns_host : "?", c->dns_port,
                c->timeout_ms, c->http_max_redirects, c->caa_check ? "on" : "off",
                c->connect_address ? ", connecting to " : "",
                c->connect_address ? c->connect_address : "");
    state->loaded = true;
    return c;
}

void validator_state_destroy(validator_state_t *state)
{
    free(state->config.connect_address);
    free(state->config.dns_host);
    memset(state, 0, sizeof *state);
}

void validator_problem(validator_problem_t *problem, const char *type, const char *fmt, ...)
{
    problem->type = type;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(problem->detail, sizeof problem->detail, fmt, ap);
    va_end(ap);
}

void validator_quote(char *out, size_t outlen, const void *data, size_t len, size_t max)
{
    const unsigned char *b = data;
    size_t o = 0, shown = 0;
    if (outlen < 8) {
        if (outlen)
            out[0] = '\0';
        return;
    }
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        /* Room for an escape, the closing quote, "..." and the NUL. */
        if (shown == max || o + 4 + 1 + 3 + 1 > outlen) {
            memcpy(out + o, "\"...", 4);
            out[o + 4] = '\0';
            return;
        }
        unsigned char c = b[i];
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c >= 0x20 && c < 0x7f) {
            out[o++] = (char)c;
        } else {
            o += (size_t)snprintf(out + o, 5, "\\x%02x", c);
        }
        shown++;
    }
    out[o++] = '"';
    out[o] = '\0';
}

int validator_remaining_ms(const validator_check_t *check)
{
    uint64_t now = cf_mono_ms();
    return now >= check->deadline ? 0 : (int)(check->deadline - now);
}

void validator_alive(const validator_check_t *check)
{
    if (check->alive)
        check->alive(check->alive_arg);
}

int validator_wait(const validator_check_t *check, int fd, short events, uint64_t until)
{
    for (;;) {
        int left = validator_remaining_ms(check);
        if (until) {
            uint64_t now = cf_mono_ms();
            int to_until = now >= until ? 0 : (int)(until - now);
            if (to_until < left)
                left = to_until;
        }
        if (left <= 0)
            return 0;
        struct pollfd p = {.fd = fd, .events = events};
        int n = poll(&p, 1, left < 200 ? left : 200);
        validator_alive(check);
        if (n < 0 && errno != EINTR)
            return -1;
        if (n > 0)
            return 1;
    }
}
