/* certfleet-acme: the parts of the RFC 8555 ACME server shared by its files (docs/acme.md).
 * The server and its settings, the per-thread store connections, one request's state with
 * the reply it builds, the checks every JWS request goes through, and the handlers. */
#ifndef ACME_H
#define ACME_H

#include <jansson.h>
#include <libpq-fe.h>
#include <microhttpd.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_client.h"
#include "cf_config.h"
#include "cf_jws.h"
#include "cf_redis.h"

#define ACME_SLUG_MAX    64   /* room for a slug (16 characters are made) with its NUL */
#define ACME_URL_MAX     1024 /* room for any URL this server makes or accepts */
#define ACME_NAME_MAX    254  /* a DNS name (253) with its NUL */
#define ACME_STATUS_MAX  16   /* the longest status word with its NUL */
#define ACME_TOKEN_BYTES 32   /* random octets in a challenge token (RFC 8555 8.1) */
#define ACME_SLUG_BYTES  12   /* random octets in an object slug */

/* [acme] settings, read once at start (every key has a safe default). */
typedef struct {
    char listen[300];            /* listen = HOST:PORT */
    char base_url[512];          /* base_url: scheme://host[:port] the clients see */
    int threads;                 /* threads: MHD thread pool size */
    int connection_timeout_s;    /* connection_timeout_s: idle connections closed after */
    int max_connections;         /* max_connections: open connections at most */
    size_t connection_memory;    /* connection_memory_limit: MHD pool per connection */
    int64_t nonce_ttl_s;         /* nonce_ttl_s: how long an unused nonce stays good */
    int64_t order_lifetime_s;    /* order_lifetime_s: orders and authorizations expire after */
    int64_t max_pending_orders;  /* max_pending_orders: open orders per account */
    size_t max_body_bytes;       /* max_body_bytes: largest request body */
    int64_t finalize_wait_ms;    /* finalize_wait_ms: wait for cert.issue (and cert.revoke) */
    int64_t validate_deadline_s; /* validate_deadline_s: deadline of an acme.validate job */
    int retry_after_s;           /* retry_after_s: Retry-After on unfinished objects */
    int64_t challenge_wait_ms;   /* challenge_wait_ms: a challenge POST waits for the verdict */
} acme_settings_t;

/* Read the [acme] section. 0, or -1 (logged) when a value is out of range. */
int acme_settings_load(cf_config_t *cfg, acme_settings_t *out);

/* ---- store: per-thread PostgreSQL, Redis and broker connections ------------------------ */

typedef struct _acme_store_t acme_store_t;

/* The calling thread's connections, made on first use from CFG (NULL when out of memory).
 * They live until the thread ends (KEY's destructor). */
acme_store_t *acme_store_get(pthread_key_t key, cf_config_t *cfg);
/* The destructor to give pthread_key_create. */
void acme_store_destroy(void *store);
/* Run SQL as the named prepared statement (registered on first use), text results. The
 * result (caller owns, PQclear) or NULL (logged with WHAT). */
PGresult *acme_sql(acme_store_t *self, const char *name, const char *sql, int nparams,
                   const char *const *values, const int *lengths, const int *formats,
                   const char *what);
/* Transactions on the thread's connection. 0 or -1 (logged). */
int acme_begin(acme_store_t *self);
int acme_commit(acme_store_t *self);
void acme_rollback(acme_store_t *self);
/* SQLSTATE of the last failed statement, or "". */
const char *acme_sqlstate(acme_store_t *self);
/* The thread's Redis connection (borrowed). */
cf_redis_t *acme_store_redis(acme_store_t *self);
/* The thread's broker client (borrowed), made on first use; replies left over from jobs
 * nobody waits for any more (acme.validate, timed-out issuance) are read and dropped first.
 * NULL when the client cannot be made. */
cf_client_t *acme_store_client(acme_store_t *self);
/* True when both PostgreSQL and Redis answer. */
bool acme_store_healthy(acme_store_t *self);

/* A fresh random slug (ACME_SLUG_BYTES octets) or token (ACME_TOKEN_BYTES), base64url, into
 * OUT of ACME_SLUG_MAX bytes. 0 or -1. */
int acme_random_slug(char out[ACME_SLUG_MAX]);
int acme_random_token(char out[ACME_SLUG_MAX]);
/* True when TEXT is a plausible slug or token: 1..63 base64url characters. */
bool acme_slug_valid(const char *text);
/* Column COL of row ROW as an integer (0 when NULL). */
int64_t acme_int(const PGresult *res, int row, int col);

/* ---- the CA a request addresses -------------------------------------------------------- */

typedef struct {
    int64_t id;                 /* certificate_authorities.id */
    char name[65];              /* its name */
    bool registration;          /* acme_registration: new accounts allowed */
    bool requires_contact;      /* acme_requires_contact */
    char profile[65];           /* acme_profile, "" for the signer's default */
    char website[512];          /* "" when none */
    char terms_of_service[512]; /* "" when none */
    char caa[256];              /* the CAA identity, "" when none */
} acme_ca_t;

/* The ACME-enabled, usable CA called NAME. 1 found, 0 not served, -1 store error. */
int acme_ca_load(acme_store_t *store, const char *name, acme_ca_t *out);

/* ---- the server ------------------------------------------------------------------------- */

typedef struct _acme_park_t acme_park_t;

typedef struct {
    cf_config_t *cfg;         /* the config (borrowed; read-only while running) */
    acme_settings_t settings; /* [acme] */
    pthread_key_t store_key;  /* each MHD thread's acme_store_t */
    struct MHD_Daemon *mhd;   /* the HTTP daemon, NULL when stopped */
    acme_park_t *park;        /* the parking thread (park.c) */
} acme_t;

/* Start the daemon on settings.listen. 0, or -1 (logged). */
int acme_http_start(acme_t *srv);
/* Stop it: every connection closed, every thread joined. */
void acme_http_stop(acme_t *srv);

/* ---- one request ------------------------------------------------------------------------ */

/* The reply a handler builds; http.c sends it with the headers every reply carries. */
typedef struct {
    unsigned int status;         /* HTTP status; 0 until a handler sets one */
    char *body;                  /* owned, may be NULL */
    size_t len;                  /* its length */
    const char *content_type;    /* static */
    char location[ACME_URL_MAX]; /* Location, "" for none */
    char link_up[ACME_URL_MAX];  /* Link rel="up", "" for none */
    char allow[32];              /* Allow (405), "" for none */
    int retry_after;             /* Retry-After seconds, 0 for none */
    char nonce[64];              /* Replay-Nonce made by the handler, "" to make one */
} acme_reply_t;

/* An ACME account row. */
typedef struct {
    int64_t id;                   /* acme_accounts.id */
    char slug[ACME_SLUG_MAX];     /* its slug */
    char status[ACME_STATUS_MAX]; /* valid, deactivated, revoked */
    char thumbprint[64];          /* RFC 7638 thumbprint of its key */
    json_t *jwk;                  /* its public key (owned) */
    json_t *contact;              /* its contact URLs (owned) */
    bool tos_agreed;              /* terms_of_service_agreed */
} acme_account_t;

typedef struct acme_req {
    acme_t *srv;                 /* the server */
    struct MHD_Connection *conn; /* the connection */
    acme_store_t *store;         /* the thread's connections */
    const char *method;          /* the HTTP method */
    const char *body;            /* the request body (borrowed) */
    size_t body_len;             /* its length */
    acme_ca_t ca;                /* the CA addressed */
    char ca_url[ACME_URL_MAX];   /* base_url/acme/NAME: every object URL starts so */
    char url[ACME_URL_MAX];      /* base_url + path: what the JWS "url" must say */
    char slug[ACME_SLUG_MAX];    /* the object slug of the path, "" for none */
    cf_jws_t *jws;               /* the parsed request (POST), owned */
    EVP_PKEY *key;               /* the key that signed it, owned */
    acme_account_t account;      /* the signer's account (kid requests) */
    bool has_account;            /* account is set */
    acme_reply_t reply;          /* what goes back */
    /* Parked (park.c): the connection is suspended until the job's reply or the wait's end. */
    bool parked;                                           /* waiting for RESUME */
    void (*resume)(struct acme_req *, const cf_reply_t *); /* finishes the request */
    void *resume_arg;                                      /* what RESUME needs (owned) */
    void (*resume_free)(void *);                           /* frees RESUME_ARG, or NULL */
    cf_reply_t *parked_reply; /* the job's reply, NULL when none came */
} acme_req_t;

/* What a parked request does when its job has answered or its wait is over: REPLY (borrowed)
 * is the job's reply, NULL when none came in time; it sets req->reply as any handler does. */
typedef void(acme_resume_fn)(acme_req_t *req, const cf_reply_t *reply);

/* ---- waiting for jobs without holding the HTTP thread (park.c) -------------------------- */

/* Start the parking thread (its broker client from CFG). NULL when it cannot be started. */
acme_park_t *acme_park_new(cf_config_t *cfg);
/* Resume every parked request without a reply and join the thread: before the daemon stops. */
void acme_park_stop(acme_park_t *self);
void acme_park_destroy(acme_park_t **self_p);
/* Send the job (ID, or NULL for a new one; TYPE; packed PARAMS; DEADLINE_MS, Unix ms) and park
 * REQ until its reply comes, at most WAIT_MS: the connection is suspended, its thread serves
 * the others, and RESUME finishes the request on that thread afterwards. ARG is RESUME's,
 * freed with FREE_ARG (may be NULL) after it. 0, or -1 when it could not be parked (out of
 * memory, stopping): then nothing was sent and ARG is still the caller's. */
int acme_park(acme_req_t *req, const uint8_t *id, const char *type, const void *params,
              size_t params_len, uint64_t deadline_ms, int64_t wait_ms, acme_resume_fn *resume,
              void *arg, void (*free_arg)(void *));
/* Run the parked request's RESUME with its reply and free what parking held (http.c). */
void acme_park_finish(acme_req_t *req);

/* Free what REQ owns. */
void acme_req_clear(acme_req_t *req);

/* Set the reply to DOC (a new reference, taken) as application/json with STATUS. */
void acme_reply_json(acme_req_t *req, unsigned int status, json_t *doc);
/* Set an empty reply with STATUS. */
void acme_reply_empty(acme_req_t *req, unsigned int status);
/* Set the reply to BODY (LEN bytes, copied) with CONTENT_TYPE (static) and STATUS. */
void acme_reply_bytes(acme_req_t *req, unsigned int status, const char *content_type,
                      const void *body, size_t len);
/* Write URL ("<ca_url>/<kind>/<slug>[/<sub>]") into OUT (ACME_URL_MAX). */
void acme_object_url(const acme_req_t *req, const char *kind, const char *slug, const char *sub,
                     char *out);
/* RFC 3339 text of Unix time T (UTC, whole seconds) into OUT of at least 32 bytes. */
void acme_time_text(int64_t t, char *out, size_t len);
/* A new JSON string of RFC 3339 time T. */
json_t *acme_time_json(int64_t t);

/* ---- problems (problem.c) --------------------------------------------------------------- */

/* A problem document {type: urn:ietf:params:acme:error:TYPE, detail, status} (new reference).
 * STATUS 0 takes the type's usual HTTP status. */
json_t *acme_problem_new(const char *type, unsigned int status, const char *detail);
/* Set the reply to a problem (application/problem+json); STATUS 0 as above. */
void acme_problem(acme_req_t *req, const char *type, unsigned int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Set the reply to PROBLEM (taken), e.g. one with subproblems. */
void acme_problem_send(acme_req_t *req, json_t *problem);
/* The usual HTTP status of problem TYPE (without the URN prefix). */
unsigned int acme_problem_status(const char *type);
/* The 500 reply for a failure of ours (detail in the log, not in the reply). */
void acme_internal(acme_req_t *req);

/* ---- nonces (nonce.c) ------------------------------------------------------------------- */

/* A fresh nonce stored in Redis for TTL_S seconds, into OUT (at least 32 bytes). 0 or -1. */
int acme_nonce_new(acme_store_t *store, int64_t ttl_s, char *out, size_t len);
/* Use NONCE up: 1 when it was issued and unused (it is gone now), 0 when not, -1 on a
 * Redis failure. */
int acme_nonce_consume(acme_store_t *store, const char *nonce);

/* ---- the JWS checks of RFC 8555 6.2-6.5 (jws_check.c) ----------------------------------- */

typedef enum {
    ACME_AUTH_KID,    /* an account's request: "kid" only */
    ACME_AUTH_JWK,    /* newAccount: "jwk" only */
    ACME_AUTH_EITHER, /* revokeCert: the account's kid or the certificate key's jwk */
} acme_auth_t;

/* Check the request: media type, JWS syntax and algorithm, jwk/kid as AUTH allows, the
 * account (kid: an account URL of this CA whose status is valid), the signature, the "url"
 * header against the request URL and the nonce (used up). Fills req->jws, req->key and
 * req->account. 0, or -1 with the problem set. */
int acme_jws_check(acme_req_t *req, acme_auth_t auth);
/* The payload object of a request that must carry one, or NULL with a malformed problem
 * set (borrowed from req->jws). */
const json_t *acme_payload(acme_req_t *req);
/* True for POST-as-GET (an empty payload). */
bool acme_post_as_get(const acme_req_t *req);

/* ---- accounts (account.c) --------------------------------------------------------------- */

/* The account with SLUG of the request's CA. 1, 0 none, -1 store error. */
int acme_account_load(acme_req_t *req, const char *slug, acme_account_t *out);
/* The account of the request's CA whose key has THUMBPRINT. 1, 0, -1. */
int acme_account_load_thumbprint(acme_req_t *req, const char *thumbprint, acme_account_t *out);
void acme_account_clear(acme_account_t *acct);
/* Reply with the account object (RFC 8555 7.1.2) and its URL as Location. */
void acme_account_reply(acme_req_t *req, const acme_account_t *acct, unsigned int status);

/* ---- names (names.c) -------------------------------------------------------------------- */

/* Lower-case NAME into OUT (ACME_NAME_MAX) and check it as a DNS identifier: LDH labels of
 * 1-63 characters, at least two, 253 characters at most, a last label that is not all
 * digits, "*." allowed only as the whole leftmost label. 0, or -1 with why in WHY. */
int acme_name_check(const char *name, char out[ACME_NAME_MAX], char *why, size_t whylen);

/* ---- orders (order.c) ------------------------------------------------------------------- */

typedef struct {
    int64_t id;                    /* acme_orders.id */
    int64_t account_id;            /* its account */
    char slug[ACME_SLUG_MAX];      /* its slug */
    char status[ACME_STATUS_MAX];  /* as reported: an expired pending/ready order is invalid */
    int64_t expires;               /* Unix s */
    int64_t not_before;            /* Unix s, 0 when not asked */
    int64_t not_after;             /* Unix s, 0 when not asked */
    char *error;                   /* its problem document as JSON text, or NULL (owned) */
    char cert_slug[ACME_SLUG_MAX]; /* its acme_certificates slug, "" before finalize */
    bool cert_issued;              /* that row has its certificate */
} acme_order_t;

/* The order SLUG of the request's CA. 1, 0 none, -1 store error. */
int acme_order_load(acme_req_t *req, const char *slug, acme_order_t *out);
void acme_order_clear(acme_order_t *order);
/* Reply with the order as RFC 8555 7.1.3 shows it (Retry-After while it is unfinished). */
void acme_order_reply(acme_req_t *req, const acme_order_t *order, unsigned int status);

/* ---- authorizations and challenges (authz.c) ------------------------------------------ */

typedef struct {
    int64_t id;                   /* acme_authorizations.id */
    char slug[ACME_SLUG_MAX];     /* its slug */
    char value[ACME_NAME_MAX];    /* the name, without "*." */
    bool wildcard;                /* for "*.<value>" */
    char status[ACME_STATUS_MAX]; /* as reported: pending or valid past expiry is expired */
    int64_t expires;              /* Unix s */
    int64_t order_id;             /* its order */
    int64_t account_id;           /* the order's account */
} acme_authz_t;

/* The authorization SLUG of the request's CA. 1, 0 none, -1 store error. */
int acme_authz_load(acme_req_t *req, const char *slug, acme_authz_t *out);
/* The challenge object (RFC 8555 7.1.5) of one acme_challenges row (new reference). ERROR is
 * its problem document as JSON text or NULL; VALIDATED 0 when none. */
json_t *acme_challenge_json(const acme_req_t *req, const char *slug, const char *type,
                            const char *status, const char *token, int64_t validated,
                            const char *error);

/* ---- finalize (finalize.c) -------------------------------------------------------------- */

/* An order left processing when the finalize request stopped waiting: look up the
 * cert.issue job's stored result and complete the order with it; with none after the job's
 * deadline, send the job again (same id, at most once per finalize_wait_ms). ORDER is
 * reloaded when it changed. */
void acme_finalize_resume(acme_req_t *req, acme_order_t *order);

/* ---- handlers --------------------------------------------------------------------------- */

void acme_directory(acme_req_t *req);        /* GET  /acme/NAME/directory */
void acme_new_nonce(acme_req_t *req);        /* HEAD|GET /acme/NAME/new-nonce */
void acme_new_account(acme_req_t *req);      /* POST /acme/NAME/new-account */
void acme_account_post(acme_req_t *req);     /* POST /acme/NAME/acct/SLUG */
void acme_account_orders(acme_req_t *req);   /* POST /acme/NAME/acct/SLUG/orders */
void acme_key_change(acme_req_t *req);       /* POST /acme/NAME/key-change */
void acme_new_order(acme_req_t *req);        /* POST /acme/NAME/new-order */
void acme_order_post(acme_req_t *req);       /* POST /acme/NAME/order/SLUG */
void acme_finalize(acme_req_t *req);         /* POST /acme/NAME/order/SLUG/finalize */
void acme_authz_post(acme_req_t *req);       /* POST /acme/NAME/authz/SLUG */
void acme_challenge_post(acme_req_t *req);   /* POST /acme/NAME/chall/SLUG */
void acme_certificate_post(acme_req_t *req); /* POST /acme/NAME/cert/SLUG */
void acme_revoke(acme_req_t *req);           /* POST /acme/NAME/revoke-cert */

#endif
