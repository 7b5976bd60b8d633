/* cf_ca: a certificate authority as stored in PostgreSQL (schemas/sql/0003), loaded for the
 * workers that sign with it and the commands that show it, plus django-ca's read side:
 * bundle, root, max_path_length, allows_intermediate_ca, usable / check_usable. */
#ifndef CF_CA_H
#define CF_CA_H

#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf_config.h"
#include "cf_error.h"
#include "cf_keystore.h"
#include "cf_pg.h"

#define CF_CA_NAME_MAX 64

/* One row of certificate_authorities: a plain record, filled by cf_ca_load. */
typedef struct {
    int64_t id;                      /* primary key */
    char name[CF_CA_NAME_MAX + 1];   /* unique name */
    char serial[80];                 /* upper-case hex */
    X509 *cert;                      /* the CA certificate */
    int64_t parent_id;               /* 0 for a root */
    char key_backend[32];            /* "storages" or "db" */
    json_t *key_backend_options;     /* how the backend finds the key */
    char key_type[16];               /* RSA, DSA, EC, Ed25519, Ed448 */
    char algorithm[16];              /* signature hash for what it signs; "" for Ed keys */
    int path_length;                 /* BasicConstraints path length, -1 for none */
    json_t *sign_extensions;         /* the sign_* extension models as a list (may be empty) */
    char *default_hostname;          /* NULL for none */
    bool enabled;                    /* may sign */
    bool revoked;                    /* revoked itself */
    bool acme_enabled;               /* ACME front serves it */
    int crl_shards;                  /* CRL shards (1: one CRL) */
    int ocsp_response_validity;      /* seconds */
    int ocsp_responder_key_validity; /* days */
    int64_t valid_from;              /* Unix seconds */
    int64_t expires;                 /* Unix seconds */
    json_t *row;                     /* the whole row as JSON (for view and dump) */
} cf_ca_t;

/* The CA named NAME; NULL + err ("unknown_ca", field "ca") when there is none. */
cf_ca_t *cf_ca_load(cf_pg_t *pg, const char *name, cf_error_t *err);
/* The CA with primary key ID. */
cf_ca_t *cf_ca_load_id(cf_pg_t *pg, int64_t id, cf_error_t *err);
void cf_ca_destroy(cf_ca_t **self_p);

/* The key id under which its key backend keeps the CA's private key. */
void cf_ca_key_id(const cf_ca_t *self, char *out, size_t len);
/* The CA's private key from KEYSTORE, unlocked with JOB_PASSWORD (NULL or "": the password
 * configured for its key id, see cf_password_resolve). Caller owns. NULL + err (a wrong
 * password names field "params.password"). */
EVP_PKEY *cf_ca_private_key(const cf_ca_t *self, cf_config_t *cfg, cf_keystore_t *keystore,
                            const char *job_password, cf_error_t *err);
/* The CA's certificates from the root down to SELF (caller frees with sk_X509_pop_free).
 * NULL + err. */
STACK_OF(X509) * cf_ca_bundle(cf_pg_t *pg, const cf_ca_t *self, cf_error_t *err);
/* The root CA's id (SELF's own for a root). */
int64_t cf_ca_root_id(cf_pg_t *pg, const cf_ca_t *self, cf_error_t *err);
/* django-ca's max_path_length: the tightest path length of SELF and its parents, reduced by
 * their depth; -1 when none of them has one. */
int cf_ca_max_path_length(cf_pg_t *pg, const cf_ca_t *self, cf_error_t *err);
/* django-ca's allows_intermediate_ca: max_path_length is -1 or > 0. */
bool cf_ca_allows_intermediate(cf_pg_t *pg, const cf_ca_t *self);
/* 0 when the CA may sign now: enabled, not revoked, valid (not expired, not before
 * valid_from). Else -1 with err code "ca_disabled", "ca_revoked", "ca_expired" or
 * "ca_not_yet_valid" (field "ca"). */
int cf_ca_check_usable(const cf_ca_t *self, int64_t now, cf_error_t *err);

/* The URLs that default_hostname puts into certificates and that certfleet-ocspd serves
 * (HOST may carry a port): the CA certificate, its CRL (SHARD < 0: the user CRL of an unsharded
 * CA; "ca" scope: cf_ca_url_crl_ca), and its OCSP responder. Caller frees. */
char *cf_ca_url_issuer(const char *host, const char *ca_name);
char *cf_ca_url_crl(const char *host, const char *ca_name, int shard);
char *cf_ca_url_crl_ca(const char *host, const char *ca_name);
char *cf_ca_url_ocsp(const char *host, const char *ca_name);

/* Upper-case hex of an ASN.1 integer (a serial), no colons; caller frees. */
char *cf_serial_hex(const ASN1_INTEGER *serial);

#endif
