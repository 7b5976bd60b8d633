/* dns-01 (RFC 8555 8.4): ask [validator] dns_resolver for the TXT records of
 * _acme-challenge.<name>; one must equal base64url(SHA-256(key authorization)). The client is
 * our own (cf_dns for the bytes): one UDP socket connected to the resolver, so that only its
 * datagrams arrive, a random id and source port, answers with another id or question
 * ignored (they may be spoofed), resends with backoff, and TCP when the answer is truncated.
 * Waits are cut into slices of at most 200 ms so that the worker keeps heartbeating. */
#include <errno.h>
#include <netdb.h>
#include <openssl/rand.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "cf_jws.h"
#include "cf_log.h"
#include "validator.h"

#define S_MSG_MAX      65535 /* the largest DNS message (TCP) */
#define S_RESEND_FIRST 1000  /* ms before the first UDP resend; doubled each time */

const char *validator_rcode_name(int rcode)
{
    static const char *const names[] = {"NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN",
                                        "NOTIMP",  "REFUSED", "YXDOMAIN", "YXRRSET",
                                        "NXRRSET", "NOTAUTH", "NOTZONE"};
    return rcode >= 0 && rcode < (int)(sizeof names / sizeof names[0]) ? names[rcode] : "RCODE?";
}

static const char *s_type_name(uint16_t qtype)
{
    return qtype == CF_DNS_TYPE_TXT    ? "TXT"
           : qtype == CF_DNS_TYPE_A    ? "A"
           : qtype == CF_DNS_TYPE_AAAA ? "AAAA"
           : qtype == CF_DNS_TYPE_CAA  ? "CAA"
                                       : "?";
}

static uint16_t s_random_id(void)
{
    unsigned char b[2] = {0, 0};
    if (RAND_bytes(b, sizeof b) != 1)
        cf_log_warn("RAND_bytes failed: DNS query id not random");
    return (uint16_t)((b[0] << 8) | b[1]);
}

/* Send or receive exactly LEN bytes on a non-blocking stream. 1 done, 0 deadline or peer
 * closed, -1 socket error. */
static int s_stream_io(const validator_check_t *check, int fd, uint8_t *buf, size_t len,
                       bool sending)
{
    size_t done = 0;
    while (done < len) {
        ssize_t n = sending ? send(fd, buf + done, len - done, MSG_NOSIGNAL)
                            : recv(fd, buf + done, len - done, 0);
        if (n > 0) {
            done += (size_t)n;
            continue;
        }
        if (n == 0)
            return 0;
        if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
            return -1;
        int w = validator_wait(check, fd, sending ? POLLOUT : POLLIN, 0);
        if (w <= 0)
            return w;
    }
    return 1;
}

/* The query over TCP (RFC 1035 4.2.2: two length octets before each message). */
static int s_query_tcp(const validator_check_t *check, const struct addrinfo *ai, const char *name,
                       uint16_t qtype, uint8_t *buf, cf_dns_answer_t **answer,
                       validator_problem_t *problem, cf_error_t *err)
{
    int rc = 0;
    uint16_t id = s_random_id();
    uint8_t query[2 + CF_DNS_QUERY_MAX];
    int qlen = cf_dns_query_build(query + 2, CF_DNS_QUERY_MAX, id, name, qtype);
    if (qlen < 0) {
        validator_problem(problem, "dns", "\"%s\" is not a name that can be looked up", name);
        return 0;
    }
    query[0] = (uint8_t)(qlen >> 8);
    query[1] = (uint8_t)qlen;
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        cf_error_set(err, "internal", "", "could not make a TCP socket: %s", strerror(errno));
        return -1;
    }
    const char *step = "connect to";
    int w = 1;
    if (connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        if (errno != EINPROGRESS)
            goto failed;
        w = validator_wait(check, fd, POLLOUT, 0);
        int soerr = 0;
        socklen_t slen = sizeof soerr;
        if (w <= 0)
            goto failed;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) != 0 || soerr != 0) {
            errno = soerr;
            w = -1;
            goto failed;
        }
    }
    step = "send the query to";
    if ((w = s_stream_io(check, fd, query, (size_t)qlen + 2, true)) != 1)
        goto failed;
    step = "read the answer of";
    uint8_t lenb[2];
    if ((w = s_stream_io(check, fd, lenb, 2, false)) != 1)
        goto failed;
    size_t mlen = (size_t)((lenb[0] << 8) | lenb[1]);
    if ((w = s_stream_io(check, fd, buf, mlen, false)) != 1)
        goto failed;
    cf_error_t perr = {0};
    if (!(*answer = cf_dns_answer_parse(buf, mlen, id, name, qtype, &perr))) {
        if (strcmp(perr.code, "internal") == 0) {
            *err = perr;
            rc = -1;
        } else {
            validator_problem(problem, "dns", "the resolver's TCP answer for %s %s is unusable: %s",
                              s_type_name(qtype), name, perr.message);
        }
        goto out;
    }
    rc = 1;
    goto out;
failed:
    if (w == 0)
        validator_problem(problem, "dns",
                          "could not %s the resolver over TCP for %s %s: timed out or closed", step,
                          s_type_name(qtype), name);
    else
        validator_problem(problem, "dns", "could not %s the resolver over TCP for %s %s: %s", step,
                          s_type_name(qtype), name, strerror(errno));
out:
    close(fd);
    return rc;
}

int validator_dns_query(const validator_check_t *check, const char *name, uint16_t qtype,
                        cf_dns_answer_t **answer, validator_problem_t *problem, cf_error_t *err)
{
    const validator_config_t *cfg = check->config;
    *answer = NULL;
    char port[16];
    snprintf(port, sizeof port, "%d", cfg->dns_port);
    struct addrinfo hints = {.ai_socktype = SOCK_DGRAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai = NULL;
    int gai = getaddrinfo(cfg->dns_host, port, &hints, &ai);
    if (gai != 0 || !ai) {
        validator_problem(problem, "dns", "the resolver \"%s\" has no address: %s", cfg->dns_host,
                          gai_strerror(gai));
        return 0;
    }
    int rc = -1, fd = -1;
    uint8_t *buf = malloc(S_MSG_MAX);
    uint16_t id = s_random_id();
    uint8_t query[CF_DNS_QUERY_MAX];
    int qlen = cf_dns_query_build(query, sizeof query, id, name, qtype);
    if (!buf) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    if (qlen < 0) {
        validator_problem(problem, "dns", "\"%s\" is not a name that can be looked up", name);
        rc = 0;
        goto out;
    }
    /* A connected UDP socket: the kernel drops datagrams from anyone but the resolver. */
    fd = socket(ai->ai_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, ai->ai_addr, ai->ai_addrlen) != 0) {
        validator_problem(problem, "dns", "could not reach the resolver %s port %d: %s",
                          cfg->dns_host, cfg->dns_port, strerror(errno));
        rc = 0;
        goto out;
    }
    int resend = S_RESEND_FIRST;
    uint64_t resend_at = 0;
    const char *last_error = "no answer";
    char why[CF_ERROR_MESSAGE_MAX] = "";
    for (;;) {
        if (cf_mono_ms() >= resend_at) {
            /* A lost query or answer is normal for UDP: send again, waiting longer each
             * time. ECONNREFUSED (an ICMP port unreachable) comes back on a later call. */
            if (send(fd, query, (size_t)qlen, 0) < 0 && errno != EAGAIN && errno != ECONNREFUSED) {
                snprintf(why, sizeof why, "%s", strerror(errno));
                last_error = why;
            }
            resend_at = cf_mono_ms() + (uint64_t)resend;
            resend *= 2;
        }
        int w = validator_wait(check, fd, POLLIN, resend_at);
        if (w < 0) {
            cf_error_set(err, "internal", "", "poll failed: %s", strerror(errno));
            goto out;
        }
        if (w == 0 && validator_remaining_ms(check) == 0) {
            validator_problem(problem, "dns",
                              "the resolver %s port %d gave no usable answer for %s %s within "
                              "%d ms: %s",
                              cfg->dns_host, cfg->dns_port, s_type_name(qtype), name,
                              cfg->timeout_ms, last_error);
            rc = 0;
            goto out;
        }
        if (w == 0)
            continue;
        ssize_t n = recv(fd, buf, S_MSG_MAX, 0);
        if (n < 0) {
            if (errno == ECONNREFUSED) {
                last_error = "connection refused";
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                snprintf(why, sizeof why, "%s", strerror(errno));
                last_error = why;
            }
            continue;
        }
        cf_error_t perr = {0};
        cf_dns_answer_t *a = cf_dns_answer_parse(buf, (size_t)n, id, name, qtype, &perr);
        if (!a) {
            if (strcmp(perr.code, "internal") == 0) {
                *err = perr;
                goto out;
            }
            /* Not our answer (another id or question) or broken: keep listening for the
             * real one until the deadline, and say what was wrong if none comes. */
            snprintf(why, sizeof why, "%s", perr.message);
            last_error = why;
            cf_log_debug("dropped a DNS answer for %s %s: %s", s_type_name(qtype), name,
                         perr.message);
            continue;
        }
        if (cf_dns_answer_truncated(a)) {
            cf_dns_answer_destroy(&a);
            rc = s_query_tcp(check, ai, name, qtype, buf, answer, problem, err);
            goto out;
        }
        *answer = a;
        rc = 1;
        goto out;
    }
out:
    if (fd >= 0)
        close(fd);
    free(buf);
    freeaddrinfo(ai);
    return rc;
}

int validator_dns01(const validator_check_t *check, validator_problem_t *problem, cf_error_t *err)
{
    char qname[300], expected[64];
    snprintf(qname, sizeof qname, "_acme-challenge.%s", check->name);
    if (cf_acme_dns01_value(check->key_authorization, expected, sizeof expected) != 0) {
        cf_error_set(err, "internal", "", "could not compute the dns-01 value");
        return -1;
    }
    cf_dns_answer_t *answer = NULL;
    int rc = validator_dns_query(check, qname, CF_DNS_TYPE_TXT, &answer, problem, err);
    if (rc != 1)
        return rc;
    int rcode = cf_dns_answer_rcode(answer);
    size_t count = cf_dns_answer_count(answer);
    rc = 0;
    if (rcode == CF_DNS_RCODE_NXDOMAIN) {
        validator_problem(problem, "unauthorized",
                          "no TXT record found at %s: the name does not exist (NXDOMAIN)", qname);
        goto out;
    }
    if (rcode != CF_DNS_RCODE_NOERROR) {
        validator_problem(problem, "dns", "the resolver answered %s for TXT %s",
                          validator_rcode_name(rcode), qname);
        goto out;
    }
    if (count == 0) {
        validator_problem(problem, "unauthorized", "no TXT record found at %s", qname);
        goto out;
    }
    size_t want = strlen(expected);
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const uint8_t *v = cf_dns_answer_value(answer, i, &len);
        if (len == want && memcmp(v, expected, want) == 0) {
            rc = 1;
            goto out;
        }
    }
    /* Name what was found: the first few records, each cut short. */
    char found[320] = "";
    size_t used = 0;
    for (size_t i = 0; i < count && i < 3; i++) {
        size_t len;
        const uint8_t *v = cf_dns_answer_value(answer, i, &len);
        char q[100];
        validator_quote(q, sizeof q, v, len, 64);
        int n = snprintf(found + used, sizeof found - used, "%s%s", i ? ", " : "", q);
        if (n < 0 || (size_t)n >= sizeof found - used)
            break;
        used += (size_t)n;
    }
    validator_problem(problem, "incorrectResponse",
                      "no TXT record at %s matches: expected \"%s\", found %s%s (%zu record%s)",
                      qname, expected, found, count > 3 ? ", ..." : "", count,
                      count == 1 ? "" : "s");
out:
    cf_dns_answer_destroy(&answer);
    return rc;
}
