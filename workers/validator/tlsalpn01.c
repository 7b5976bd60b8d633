/* tls-alpn-01 (RFC 8737): a TLS 1.2+ handshake with <name>:<tls_alpn_port>, SNI <name>, ALPN
 * "acme-tls/1" only, which the server must select; its certificate must carry exactly one
 * subjectAltName entry, the dNSName <name>, and the critical acmeIdentifier extension
 * (1.3.6.1.5.5.7.1.31) whose value is the DER OCTET STRING of SHA-256(key authorization).
 * The certificate is not verified against any trust store (RFC 8737 section 3: it is
 * self-signed and only proves control). The name is resolved with the validator's own DNS
 * client, A before AAAA, unless [validator] connect_address says where to connect. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "validator.h"

#define S_ACME_IDENTIFIER_OID "1.3.6.1.5.5.7.1.31"

static const unsigned char s_alpn[] = "\x0a"
                                      "acme-tls/1";

/* Where to connect: connect_address, else the name's first A (or AAAA) record. 1 with
 * ADDR filled, 0 with PROBLEM, -1 internal failure. */
static int s_address(const validator_check_t *check, struct sockaddr_storage *addr,
                     socklen_t *addrlen, char *text, size_t textlen, validator_problem_t *problem,
                     cf_error_t *err)
{
    int port = check->config->tls_alpn_port;
    memset(addr, 0, sizeof *addr);
    if (check->config->connect_address) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
        if (inet_pton(AF_INET, check->config->connect_address, &v4->sin_addr) == 1) {
            v4->sin_family = AF_INET;
            v4->sin_port = htons((uint16_t)port);
            *addrlen = sizeof *v4;
        } else if (inet_pton(AF_INET6, check->config->connect_address, &v6->sin6_addr) == 1) {
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons((uint16_t)port);
            *addrlen = sizeof *v6;
        } else {
            cf_error_set(err, "internal", "",
                         "[validator] connect_address \"%s\" is not an IP address",
                         check->config->connect_address);
            return -1;
        }
        snprintf(text, textlen, "%s", check->config->connect_address);
        return 1;
    }
    const uint16_t types[2] = {CF_DNS_TYPE_A, CF_DNS_TYPE_AAAA};
    for (int t = 0; t < 2; t++) {
        cf_dns_answer_t *answer = NULL;
        int rc = validator_dns_query(check, check->name, types[t], &answer, problem, err);
        if (rc != 1)
            return rc;
        size_t len = 0;
        const uint8_t *ip = cf_dns_answer_rcode(answer) == CF_DNS_RCODE_NOERROR
                                ? cf_dns_answer_value(answer, 0, &len)
                                : NULL;
        if (ip && t == 0 && len == 4) {
            struct sockaddr_in *v4 = (struct sockaddr_in *)addr;
            v4->sin_family = AF_INET;
            v4->sin_port = htons((uint16_t)port);
            memcpy(&v4->sin_addr, ip, 4);
            *addrlen = sizeof *v4;
            inet_ntop(AF_INET, ip, text, (socklen_t)textlen);
        } else if (ip && t == 1 && len == 16) {
            struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)addr;
            v6->sin6_family = AF_INET6;
            v6->sin6_port = htons((uint16_t)port);
            memcpy(&v6->sin6_addr, ip, 16);
            *addrlen = sizeof *v6;
            inet_ntop(AF_INET6, ip, text, (socklen_t)textlen);
        }
        cf_dns_answer_destroy(&answer);
        if (*addrlen)
            return 1;
    }
    validator_problem(problem, "dns", "\"%s\" has no A or AAAA record", check->name);
    return 0;
}

/* The TLS error queue as text (cleared), or FALLBACK. */
static const char *s_tls_error(char *buf, size_t len, const char *fallback)
{
    unsigned long e = ERR_get_error();
    if (!e) {
        snprintf(buf, len, "%s", fallback);
        return buf;
    }
    ERR_error_string_n(e, buf, len);
    ERR_clear_error();
    return buf;
}

static void s_hex(char *out, size_t outlen, const unsigned char *b, size_t n)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 3 <= outlen; i++)
        o += (size_t)snprintf(out + o, outlen - o, "%02x", b[i]);
    if (outlen)
        out[o < outlen ? o : outlen - 1] = '\0';
}

/* The certificate checks of RFC 8737 section 3. 1 or 0 with PROBLEM. */
static int s_check_cert(const validator_check_t *check, X509 *cert, validator_problem_t *problem)
{
    int crit = -1;
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, &crit, NULL);
    if (!sans) {
        if (crit == -2)
            validator_problem(problem, "incorrectResponse",
                              "the certificate has several subjectAltName extensions");
        else
            validator_problem(problem, "incorrectResponse",
                              "the certificate has no readable subjectAltName, expected the one "
                              "dNSName \"%s\"",
                              check->name);
        return 0;
    }
    int n = sk_GENERAL_NAME_num(sans);
    const GENERAL_NAME *gn = n == 1 ? sk_GENERAL_NAME_value(sans, 0) : NULL;
    const char *dns = NULL;
    int dns_len = 0;
    if (gn && gn->type == GEN_DNS) {
        dns = (const char *)ASN1_STRING_get0_data(gn->d.dNSName);
        dns_len = ASN1_STRING_length(gn->d.dNSName);
    }
    size_t want = strlen(check->name);
    bool match = dns && dns_len >= 0 && (size_t)dns_len == want &&
                 !memchr(dns, '\0', (size_t)dns_len) && strncasecmp(dns, check->name, want) == 0;
    char found[160] = "";
    if (dns && !match)
        validator_quote(found, sizeof found, dns, (size_t)dns_len, 100);
    GENERAL_NAMES_free(sans);
    if (!match) {
        if (n != 1)
            validator_problem(problem, "incorrectResponse",
                              "the certificate has %d subjectAltName entries, expected exactly "
                              "one dNSName \"%s\"",
                              n, check->name);
        else if (!dns)
            validator_problem(problem, "incorrectResponse",
                              "the certificate's subjectAltName is not a dNSName, expected "
                              "\"%s\"",
                              check->name);
        else
            validator_problem(problem, "incorrectResponse",
                              "the certificate's subjectAltName is %s, expected \"%s\"", found,
                              check->name);
        return 0;
    }
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (EVP_Digest(check->key_authorization, strlen(check->key_authorization), digest, &dlen,
                   EVP_sha256(), NULL) != 1 ||
        dlen != sizeof digest) {
        validator_problem(problem, "tls", "could not compute SHA-256 of the key authorization");
        return 0;
    }
    char expected[80];
    s_hex(expected, sizeof expected, digest, sizeof digest);
    ASN1_OBJECT *oid = OBJ_txt2obj(S_ACME_IDENTIFIER_OID, 1);
    int idx = oid ? X509_get_ext_by_OBJ(cert, oid, -1) : -1;
    int again = idx >= 0 ? X509_get_ext_by_OBJ(cert, oid, idx) : -1;
    ASN1_OBJECT_free(oid);
    if (idx < 0) {
        validator_problem(problem, "incorrectResponse",
                          "the certificate has no acmeIdentifier extension (%s), expected one "
                          "with the SHA-256 %s",
                          S_ACME_IDENTIFIER_OID, expected);
        return 0;
    }
    if (again >= 0) {
        validator_problem(problem, "incorrectResponse",
                          "the certificate has more than one acmeIdentifier extension");
        return 0;
    }
    X509_EXTENSION *ext = X509_get_ext(cert, idx);
    if (!X509_EXTENSION_get_critical(ext)) {
        validator_problem(problem, "incorrectResponse",
                          "the certificate's acmeIdentifier extension is not critical");
        return 0;
    }
    /* The extnValue must be exactly the DER of an OCTET STRING of 32 octets. */
    const ASN1_OCTET_STRING *value = X509_EXTENSION_get_data(ext);
    const unsigned char *v = ASN1_STRING_get0_data(value);
    int vlen = ASN1_STRING_length(value);
    if (vlen != 2 + (int)sizeof digest || v[0] != 0x04 || v[1] != sizeof digest) {
        char shown[120];
        s_hex(shown, sizeof shown, v, vlen > 0 ? (size_t)(vlen < 48 ? vlen : 48) : 0);
        validator_problem(problem, "incorrectResponse",
                          "the certificate's acmeIdentifier is not an OCTET STRING of 32 octets "
                          "(found %d octets: %s%s), expected the SHA-256 %s",
                          vlen, shown, vlen > 48 ? "..." : "", expected);
        return 0;
    }
    if (CRYPTO_memcmp(v + 2, digest, sizeof digest) != 0) {
        char found_hex[80];
        s_hex(found_hex, sizeof found_hex, v + 2, sizeof digest);
        validator_problem(problem, "incorrectResponse",
                          "the certificate's acmeIdentifier does not match: expected the SHA-256 "
                          "%s, found %s",
                          expected, found_hex);
        return 0;
    }
    return 1;
}

int validator_tlsalpn01(const validator_check_t *check, validator_problem_t *problem,
                        cf_error_t *err)
{
    struct sockaddr_storage addr;
    socklen_t addrlen = 0;
    char where[INET6_ADDRSTRLEN + 16] = "";
    int rc = s_address(check, &addr, &addrlen, where, sizeof where, problem, err);
    if (rc != 1)
        return rc;
    rc = -1;
    int port = check->config->tls_alpn_port;
    SSL_CTX *ctx = NULL;
    SSL *ssl = NULL;
    X509 *cert = NULL;
    char why[256];
    int fd = socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        cf_error_set(err, "internal", "", "could not make a TCP socket: %s", strerror(errno));
        goto out;
    }
    if (connect(fd, (struct sockaddr *)&addr, addrlen) != 0) {
        int w = errno == EINPROGRESS ? validator_wait(check, fd, POLLOUT, 0) : -1;
        int soerr = errno;
        socklen_t slen = sizeof soerr;
        if (w == 1 && getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &slen) == 0 && soerr == 0) {
            /* connected */
        } else if (w == 0) {
            validator_problem(problem, "connection",
                              "could not connect to \"%s\" (%s) port %d within %d ms", check->name,
                              where, port, check->config->timeout_ms);
            rc = 0;
            goto out;
        } else {
            validator_problem(problem, "connection", "could not connect to \"%s\" (%s) port %d: %s",
                              check->name, where, port, strerror(soerr));
            rc = 0;
            goto out;
        }
    }
    ERR_clear_error();
    if (!(ctx = SSL_CTX_new(TLS_client_method())) ||
        SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 || !(ssl = SSL_new(ctx)) ||
        SSL_set_fd(ssl, fd) != 1 || SSL_set_tlsext_host_name(ssl, check->name) != 1 ||
        SSL_set_alpn_protos(ssl, s_alpn, sizeof s_alpn - 1) != 0) {
        cf_error_set(err, "internal", "", "could not set up TLS: %s",
                     s_tls_error(why, sizeof why, "unknown error"));
        goto out;
    }
    SSL_set_verify(ssl, SSL_VERIFY_NONE, NULL);
    for (;;) {
        int r = SSL_connect(ssl);
        if (r == 1)
            break;
        int e = SSL_get_error(ssl, r);
        int w = e == SSL_ERROR_WANT_READ    ? validator_wait(check, fd, POLLIN, 0)
                : e == SSL_ERROR_WANT_WRITE ? validator_wait(check, fd, POLLOUT, 0)
                                            : -2;
        if (w == 1)
            continue;
        if (w == 0)
            validator_problem(problem, "connection",
                              "the TLS handshake with \"%s\" (%s) port %d did not finish within "
                              "%d ms",
                              check->name, where, port, check->config->timeout_ms);
        else
            validator_problem(
                problem, "tls", "the TLS handshake with \"%s\" (%s) port %d failed: %s",
                check->name, where, port,
                s_tls_error(why, sizeof why,
                            e == SSL_ERROR_SYSCALL ? "connection closed" : "handshake refused"));
        rc = 0;
        goto out;
    }
    const unsigned char *proto = NULL;
    unsigned int proto_len = 0;
    SSL_get0_alpn_selected(ssl, &proto, &proto_len);
    if (proto_len != sizeof s_alpn - 2 || memcmp(proto, s_alpn + 1, proto_len) != 0) {
        char found[80];
        if (proto_len)
            validator_quote(found, sizeof found, proto, proto_len, 40);
        validator_problem(problem, "tls",
                          "\"%s\" (%s) port %d did not select the ALPN protocol \"acme-tls/1\" "
                          "(selected %s)",
                          check->name, where, port, proto_len ? found : "none");
        rc = 0;
        goto out;
    }
    if (!(cert = SSL_get1_peer_certificate(ssl))) {
        validator_problem(problem, "tls", "\"%s\" (%s) port %d presented no certificate",
                          check->name, where, port);
        rc = 0;
        goto out;
    }
    rc = s_check_cert(check, cert, problem);
out:
    if (ssl) {
        /* Best effort close_notify on the non-blocking socket; nothing waits for it. */
        SSL_shutdown(ssl);
        SSL_free(ssl);
    }
    SSL_CTX_free(ctx);
    X509_free(cert);
    if (fd >= 0)
        close(fd);
    ERR_clear_error();
    return rc;
}
