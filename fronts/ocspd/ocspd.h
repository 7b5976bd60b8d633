/* certfleet-ocspd: the parts of the OCSP, CRL and CA-certificate HTTP server shared by its
 * files (docs/ocspd.md). The server object, its settings, the cache of CAs, the per-thread
 * store connections, and the HTTP reply helpers. */
#ifndef OCSPD_H
#define OCSPD_H

#include <libpq-fe.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_config.h"
#include "cf_front.h"
#include "cf_ocsp_request.h"
#include "cf_revocation.h"

/* [ocspd] settings, read once at start (every key has a safe default). */
typedef struct {
    char listen[300];            /* listen = HOST:PORT ("[::1]:8080" for IPv6) */
    int threads;                 /* threads: MHD thread pool size */
    int connection_timeout_s;    /* connection_timeout_s: idle connections closed after */
    size_t max_request_bytes;    /* max_request_bytes: largest OCSP request body */
    int64_t ca_cache_ms;         /* ca_cache_ms: how long the CA list is trusted */
    int max_connections;         /* max_connections: open connections at most */
    int per_ip_connection_limit; /* per_ip_connection_limit: 0 = no limit */
    size_t connection_memory;    /* connection_memory_limit: MHD pool per connection */
    size_t crl_cache_max_bytes;  /* crl_cache_max_bytes: larger CRLs never go into Redis */
} ocspd_settings_t;

/* Read the [ocspd] section. 0, or -1 (logged) when a value is out of range. */
int ocspd_settings_load(cf_config_t *cfg, ocspd_settings_t *out);

/* ---- store: per-thread Redis and PostgreSQL connections ------------------------------- */

typedef struct _ocspd_store_t ocspd_store_t;

/* A stored document: an OCSPResponse, a CRL or a certificate, with its validity. */
typedef struct {
    unsigned char *data; /* the bytes (caller owns, free) */
    size_t len;          /* their length */
    int64_t this_update; /* Unix s; 0 when the document has none */
    int64_t next_update; /* Unix s; 0 when the document has none */
} ocspd_blob_t;

/* Free the bytes of BLOB and zero it. */
void ocspd_blob_clear(ocspd_blob_t *blob);

/* The calling thread's connections, made on first use from CFG (NULL when out of memory).
 * They live until the thread ends (KEY's destructor). */
ocspd_store_t *ocspd_store_get(pthread_key_t key, cf_config_t *cfg);
/* The destructor to give pthread_key_create. */
void ocspd_store_destroy(void *store);

/* The current pre-signed OCSPResponse of (CA_ID, SERIAL): Redis first, then PostgreSQL (and
 * then back into Redis). 1 found, 0 none current, -1 neither store could answer. */
int ocspd_store_ocsp(ocspd_store_t *self, int64_t ca_id, const char *serial, ocspd_blob_t *out);
/* The current CRL of (CA_ID, SCOPE, SHARD), put back into Redis only when its DER is at most
 * CACHE_MAX bytes. 1, 0 or -1 as above. */
int ocspd_store_crl(ocspd_store_t *self, int64_t ca_id, cf_scope_t scope, int shard,
                    size_t cache_max, ocspd_blob_t *out);
/* Every CA row (id, name, der), binary format (caller owns, PQclear), or NULL. */
PGresult *ocspd_store_cas(ocspd_store_t *self);
/* True when both Redis and PostgreSQL answer. */
bool ocspd_store_healthy(ocspd_store_t *self);

/* ---- CA cache ------------------------------------------------------------------------- */

typedef struct {
    int64_t id;                  /* certificate_authorities.id */
    char *name;                  /* its name */
    unsigned char *der;          /* its certificate */
    size_t der_len;              /* length of der */
    unsigned char name_hash[20]; /* SHA-1 of the subject's DER (CertID issuerNameHash) */
    unsigned char key_hash[20];  /* SHA-1 of the public key bits (CertID issuerKeyHash) */
} ocspd_ca_t;

/* One snapshot of every CA, shared by reference. */
typedef struct _ocspd_ca_set_t ocspd_ca_set_t;
typedef struct _ocspd_cas_t ocspd_cas_t;

/* A cache that reloads the CA list after TTL_MS. NULL when out of memory. */
ocspd_cas_t *ocspd_cas_new(int64_t ttl_ms);
void ocspd_cas_destroy(ocspd_cas_t **self_p);
/* The current snapshot (reloaded through STORE when stale; a stale one is kept when the
 * reload fails), or NULL when none could ever be loaded. Release it after use. */
ocspd_ca_set_t *ocspd_cas_acquire(ocspd_cas_t *self, ocspd_store_t *store);
void ocspd_cas_release(ocspd_cas_t *self, ocspd_ca_set_t **set_p);
/* The CA called NAME (LEN bytes), or NULL. */
const ocspd_ca_t *ocspd_ca_find_name(const ocspd_ca_set_t *set, const char *name, size_t len);
/* The CA whose SHA-1 name and key hashes are these, or NULL. */
const ocspd_ca_t *ocspd_ca_find_hashes(const ocspd_ca_set_t *set, const unsigned char *name_hash,
                                       const unsigned char *key_hash);

/* ---- the server ----------------------------------------------------------------------- */

typedef struct {
    cf_config_t *cfg;          /* the config (borrowed; read-only while running) */
    ocspd_settings_t settings; /* [ocspd] */
    ocspd_cas_t *cas;          /* the CA cache */
    pthread_key_t store_key;   /* each MHD thread's ocspd_store_t */
    struct MHD_Daemon *mhd;    /* the HTTP daemon, NULL when stopped */
} ocspd_t;

/* The state of one HTTP request (MHD's per-request pointer). */
typedef struct {
    cf_front_body_t body; /* the POST body, bounded by max_request_bytes */
    bool answered;        /* a reply was queued before the body was read */
} ocspd_request_t;

/* Start the daemon on settings.listen. 0, or -1 (logged). */
int ocspd_http_start(ocspd_t *srv);
/* Stop it: every connection closed, every thread joined. */
void ocspd_http_stop(ocspd_t *srv);

/* ---- replies (http.c) ------------------------------------------------------------------ */

/* 200 with BODY (taken over and freed), CONTENT_TYPE and the RFC 5019 section 6 caching
 * headers of BODY's this/next update and its ETag; 304 when If-None-Match names the ETag. */
enum MHD_Result ocspd_send_document(struct MHD_Connection *conn, const char *content_type,
                                    ocspd_blob_t *body);
/* An unsigned OCSP error response with HTTP STATUS (200 except for 413), never cached. */
enum MHD_Result ocspd_send_ocsp_error(struct MHD_Connection *conn, unsigned int http_status,
                                      cf_ocsp_error_status_t status);
/* A short text/plain reply, never cached. */
enum MHD_Result ocspd_send_text(struct MHD_Connection *conn, unsigned int http_status,
                                const char *text);
/* 405 with an Allow header. */
enum MHD_Result ocspd_send_405(struct MHD_Connection *conn, const char *allow);

/* ---- handlers ------------------------------------------------------------------------- */

/* /ocsp..., PATH is what follows "/ocsp" ("", "/", "/NAME/", "/NAME/<base64>", ...). */
enum MHD_Result ocspd_ocsp_handle(ocspd_t *srv, struct MHD_Connection *conn, const char *method,
                                  const char *path, ocspd_request_t *req);
/* /ca/NAME.der|.pem, PATH after "/ca/". */
enum MHD_Result ocspd_ca_cert_handle(ocspd_t *srv, struct MHD_Connection *conn, const char *path);
/* /crl/NAME.crl, /crl/NAME/K.crl, /crl/NAME/ca.crl, ..., PATH after "/crl/". */
enum MHD_Result ocspd_crl_handle(ocspd_t *srv, struct MHD_Connection *conn, const char *path);

#endif
