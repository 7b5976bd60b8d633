/* cf_curve: CURVE security and per-client authorization of the fabric (docs/security.md).
 *
 * Every process that speaks to the broker reads the [curve] section:
 *
 *   [curve]
 *   insecure = false                      # true: plain TCP, no encryption, no authentication
 *   secret_key_file = /etc/certfleet/keys/signer.key   # this process's own certificate
 *   broker_public_key_file = /etc/certfleet/keys/broker.pub   # clients and workers, or:
 *   broker_public_key = <40 Z85 characters>
 *   clients_dir = /etc/certfleet/clients  # the broker: the allow-list, one .pub per key
 *
 * Certificates are czmq zcert files (written by `certfleet keygen`). A public certificate in
 * clients_dir carries the key's grant as metadata: name, role (client, worker or
 * "client,worker"), job_types (exact types, prefixes like "cert.*", or "*") and cas (CA
 * names, "*", or "@acme": the CAs with acme_enabled). The broker loads the directory into a
 * grant table (cf_grants_t) and checks every message against the sender's grant; what it
 * cannot check without a database (@acme) travels to the worker in an extra REQUEST frame
 * (cf_grant_pack_auth), which the worker runtime checks (cf_curve_check_auth). */
#ifndef CF_CURVE_H
#define CF_CURVE_H

#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>

#include "cf_config.h"
#include "cf_error.h"
#include "cf_job.h"

/* ---- a process's keys -------------------------------------------------------------------- */

typedef struct _cf_curve_t cf_curve_t;

typedef enum {
    CF_CURVE_CLIENT = 0, /* clients and workers: DEALER sockets that connect to the broker */
    CF_CURVE_SERVER = 1, /* the broker: the ROUTER socket, CURVE server with ZAP */
} cf_curve_side_t;

/* The [curve] settings of a process on SIDE. NULL with ERR (naming the settings) when keys are
 * missing or unreadable and insecure is not set; with insecure = true a cf_curve_t that
 * applies nothing (cf_curve_insecure). */
cf_curve_t *cf_curve_new(cf_config_t *config, cf_curve_side_t side, char *err, size_t errlen);
/* For a process that makes its broker clients later (a front, the scheduler): check at start
 * that the [curve] settings can make one, so that it refuses to start instead of failing
 * at its first job. 0, or -1 after logging why (naming the settings). */
int cf_curve_check_client(cf_config_t *config, const char *program);
/* A client side from a secret key file and the broker's public key (Z85, 40 characters). */
cf_curve_t *cf_curve_new_client(const char *secret_key_file, const char *broker_public_key,
                                char *err, size_t errlen);
void cf_curve_destroy(cf_curve_t **self_p);

/* True when the process runs without CURVE ([curve] insecure = true). */
bool cf_curve_insecure(const cf_curve_t *self);
/* This process's public key (Z85), or NULL when insecure. */
const char *cf_curve_public_key(const cf_curve_t *self);
/* The broker's allow-list directory (server side), or NULL. */
const char *cf_curve_clients_dir(const cf_curve_t *self);
/* Apply the keys to SOCKET (a zsock_t or a libzmq socket) before it connects or binds. Client
 * side: own certificate and the broker's public key. Server side: own certificate, CURVE
 * server, ZAP domain "certfleet". Nothing when insecure. 0 or -1. */
int cf_curve_apply(const cf_curve_t *self, void *socket);

/* ---- grants --------------------------------------------------------------------------------- */

typedef struct _cf_grant_t cf_grant_t;

/* What a CA name is to a grant. */
typedef enum {
    CF_GRANT_CA_DENY = 0,  /* not allowed */
    CF_GRANT_CA_ALLOW = 1, /* allowed by name or by "*" */
    CF_GRANT_CA_ACME = 2,  /* allowed only if the CA has acme_enabled ("@acme") */
} cf_grant_ca_t;

/* Parse a grant from the metadata texts (NULL: absent). ROLE: "client", "worker",
 * "client,worker"; JOB_TYPES and CAS: comma lists (absent: nothing). NULL with ERR when a part
 * is malformed. NAME NULL or empty gives "?". */
cf_grant_t *cf_grant_new(const char *name, const char *role, const char *job_types, const char *cas,
                         char *err, size_t errlen);
void cf_grant_destroy(cf_grant_t **self_p);
const char *cf_grant_name(const cf_grant_t *self);
bool cf_grant_is_client(const cf_grant_t *self);
bool cf_grant_is_worker(const cf_grant_t *self);
/* True when the grant lets a client submit jobs of TYPE (broker.status and sys.ping always). */
bool cf_grant_allows_type(const cf_grant_t *self, const char *type);
/* What CA (a name) is to the grant. */
cf_grant_ca_t cf_grant_ca(const cf_grant_t *self, const char *ca);
/* Authorize JOB for a client with this grant: 0 allowed, -1 forbidden (ERR: code
 * "forbidden", field "type" or the CA-naming param, a message naming the client). Sets
 * *ACME_CHECK when a CA is allowed only through "@acme": the worker must check it. */
int cf_grant_authorize(const cf_grant_t *self, const cf_job_t *job, bool *acme_check,
                       cf_error_t *err);
/* Pack the REQUEST's authorization frame {client: NAME, cas: [...]} into BUF. 0 or -1. */
int cf_grant_pack_auth(const cf_grant_t *self, msgpack_sbuffer *buf);

/* Is CA an existing CA with acme_enabled? 1 yes, 0 no (absent or not enabled), -1 could not
 * tell (database error). */
typedef int(cf_curve_acme_fn)(void *arg, const char *ca);
/* The worker's check of a REQUEST's authorization frame (FRAME, LEN) against JOB: each CA the
 * job names must be allowed by the frame's cas, "@acme" entries asked through ACME. 0
 * allowed; -1 forbidden or unreadable frame (ERR set, code "forbidden"); -2 the lookup
 * failed (ERR set, code "unavailable"). */
int cf_curve_check_auth(const void *frame, size_t len, const cf_job_t *job, cf_curve_acme_fn *acme,
                        void *arg, cf_error_t *err);

/* ---- the broker's grant table ------------------------------------------------------------- */

typedef struct _cf_grants_t cf_grants_t;

/* The grants of the public certificates in DIR (loaded by the first cf_grants_refresh). */
cf_grants_t *cf_grants_new(const char *dir);
void cf_grants_destroy(cf_grants_t **self_p);
/* Reload the table when the directory changed since the last look (files added, removed,
 * rewritten). 1 reloaded, 0 unchanged, -1 unreadable (the table is kept). */
int cf_grants_refresh(cf_grants_t *self);
/* The grant of PUBLIC_KEY (Z85), or NULL (borrowed, valid until the next reload). */
const cf_grant_t *cf_grants_lookup(cf_grants_t *self, const char *public_key);
/* How many keys the table holds. */
size_t cf_grants_size(cf_grants_t *self);

#endif
