/* The validator worker: acme.validate and the three challenge checks (docs/validator.md).
 * The checks open outbound connections (CONVENTIONS.md rule 15: only the validator and the
 * notifier may) and never touch the database; validate.c reads and writes the rows. */
#ifndef CF_VALIDATOR_WORKER_H
#define CF_VALIDATOR_WORKER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_dns.h"
#include "cf_worker.h"

#define VALIDATOR_BODY_MAX   8192 /* the largest http-01 body read */
#define VALIDATOR_DETAIL_MAX 480  /* a problem document's detail */

/* [validator] settings, read once per process. */
typedef struct {
    int http_port;          /* http-01 port, and the port of http redirects (80) */
    int tls_alpn_port;      /* tls-alpn-01 port, and the port of https redirects (443) */
    char *connect_address;  /* connect here whatever a name resolves to; NULL: resolve */
    char *dns_host;         /* the resolver's address (numeric or a name) */
    int dns_port;           /* its port (53) */
    int timeout_ms;         /* one check in all, redirects and retries included (10000) */
    int http_max_redirects; /* redirects followed by http-01 (10) */
    bool caa_check;         /* check CAA (RFC 8659) before an authorization becomes valid */
} validator_config_t;

/* The process's state, handed to cf_worker_main. */
typedef struct {
    bool loaded;               /* config read */
    validator_config_t config; /* the settings */
} validator_state_t;

/* What one check needs. */
typedef struct {
    const validator_config_t *config; /* settings */
    const char *name;                 /* the identifier: a DNS name, no "*." */
    const char *token;                /* the challenge token (base64url) */
    const char *key_authorization;    /* token "." thumbprint */
    uint64_t deadline;                /* cf_mono_ms () when the check gives up */
    void (*alive)(void *arg);         /* called at least every 250 ms while waiting */
    void *alive_arg;                  /* its argument */
} validator_check_t;

/* The verdict of a failed check: an RFC 8555 problem. */
typedef struct {
    const char *type;                  /* "connection", "incorrectResponse", "dns", "tls",
                                        * "unauthorized", "caa" (without the urn prefix) */
    char detail[VALIDATOR_DETAIL_MAX]; /* says what was expected and what was found */
} validator_problem_t;

/* The settings, read on the first job. Borrowed from the state. */
const validator_config_t *validator_config(cf_handler_ctx_t *ctx);
/* Free the state (at exit). */
void validator_state_destroy(validator_state_t *state);

/* Set PROBLEM's type and detail. */
void validator_problem(validator_problem_t *problem, const char *type, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Untrusted bytes as a quoted, printable excerpt of at most MAX characters ("..." when cut)
 * into OUT, for a problem's detail. */
void validator_quote(char *out, size_t outlen, const void *data, size_t len, size_t max);
/* Milliseconds left before the check's deadline (0 when past it). */
int validator_remaining_ms(const validator_check_t *check);
/* Call the check's keepalive. */
void validator_alive(const validator_check_t *check);
/* Wait for EVENTS (poll) on FD in slices of at most 200 ms, calling the keepalive between
 * them. 1 ready, 0 the deadline (or UNTIL, a cf_mono_ms time, when not 0) came first, -1
 * poll failed. */
int validator_wait(const validator_check_t *check, int fd, short events, uint64_t until);

/* The checks: 1 valid, 0 invalid (PROBLEM set), -1 internal failure (ERR set, e.g. out of
 * memory: the challenge stays as it is). */
int validator_http01(const validator_check_t *check, validator_problem_t *problem, cf_error_t *err);
int validator_dns01(const validator_check_t *check, validator_problem_t *problem, cf_error_t *err);
int validator_tlsalpn01(const validator_check_t *check, validator_problem_t *problem,
                        cf_error_t *err);

/* Ask the resolver for NAME's records of QTYPE (cf_dns.h), over UDP and over TCP when the
 * answer is truncated. 1 with *ANSWER (caller owns; any RCODE), 0 when no usable answer
 * came (PROBLEM set, type "dns"), -1 internal failure. */
int validator_dns_query(const validator_check_t *check, const char *name, uint16_t qtype,
                        cf_dns_answer_t **answer, validator_problem_t *problem, cf_error_t *err);

/* The name of a DNS RCODE ("SERVFAIL"), for a problem's detail. */
const char *validator_rcode_name(int rcode);

/* CAA (RFC 8659): may the CA whose CAA identity is IDENTITY issue for the check's name (a
 * wildcard when WILDCARD)? 1 allowed, 0 refused (PROBLEM set, type "caa": the records found,
 * or the DNS failure, as a lookup that fails refuses), -1 internal failure. */
int validator_caa(const validator_check_t *check, const char *identity, bool wildcard,
                  validator_problem_t *problem, cf_error_t *err);

int validator_acme_validate(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                            cf_error_t *err);

#endif
