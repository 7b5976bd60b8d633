/* cf_keystore: where CA private keys live (django-ca's key backends), picked by name, and
 * the passwords that unlock them.
 *
 * Backends:
 * - "storages": one PKCS#8 PEM file per key under [keys] storages_dir (default
 *   /var/lib/certfleet/keys, created 0700), files 0600, written to a temporary file and
 *   published with link(2) so that a reader never sees half a key and an existing key is
 *   never overwritten. Options: {"path": "<file name relative to storages_dir>"}.
 * - "db": the DER PKCS#8 in PostgreSQL table private_keys, written in the caller's open
 *   transaction if there is one (a failed store then leaves that transaction aborted: the
 *   caller rolls back). Options: {}. A password is required unless
 *   [keys] allow_unencrypted_db = true: a database dump or replica must never leak a key.
 *
 * A keystore belongs to one worker process (not thread-safe) and caches every key it loads
 * for the life of the process. A cached encrypted key is still only handed out for the
 * right password: the cache keeps an HMAC of it (keyed by a per-process random key), never
 * the password itself.
 *
 * Passwords come from the job, else [keys] password_env_<id> (the name of an environment
 * variable), [keys] password_file_<id> (a file whose first line is the password),
 * [keys] password_env, [keys] password_file, in this order; <id> is the key id with every
 * character other than letters, digits and '_' written as '_'. Passwords never appear in
 * logs or error messages, and are wiped when freed.
 *
 * Error codes: "unknown_backend" (field "key_backend"), "key_not_found", "key_exists",
 * "wrong_password" and "password_required" (field "password"), "password_unavailable",
 * "invalid_key", "invalid_value" (field "key_id" or "options.path"), "storage_error",
 * "database_error". */
#ifndef CF_KEYSTORE_H
#define CF_KEYSTORE_H

#include <jansson.h>
#include <openssl/evp.h>
#include <stdbool.h>

#include "cf_config.h"
#include "cf_error.h"
#include "cf_pg.h"

#define CF_KEYSTORE_ID_MAX 128 /* longest key id, in bytes */

typedef struct _cf_keystore_t cf_keystore_t;
typedef struct _cf_password_t cf_password_t;

/* A keystore reading [keys] from CFG; PG (may be NULL: no "db" backend) is the connection
 * the db backend uses. Both are borrowed and must outlive the keystore. NULL when out of
 * memory. */
cf_keystore_t *cf_keystore_new(cf_config_t *cfg, cf_pg_t *pg);
/* Free the keystore and every cached key. */
void cf_keystore_destroy(cf_keystore_t **self_p);

/* Store KEY under KEY_ID in BACKEND, encrypted with PASSWORD (NULL or "": unencrypted).
 * *OPTIONS_OUT (caller owns) gets the key_backend_options to keep with the CA. Refuses to
 * overwrite an existing key ("key_exists"). Does not cache the key: the caller's transaction
 * may still roll back. 0 or -1 + err. */
int cf_keystore_store(cf_keystore_t *self, const char *backend, const char *key_id,
                      const EVP_PKEY *key, const char *password, json_t **options_out,
                      cf_error_t *err);
/* The key KEY_ID of BACKEND (a new reference: caller owns, EVP_PKEY_free), from the cache
 * when loaded before, else read with OPTIONS (may be NULL) and PASSWORD (may be NULL: none)
 * and cached. NULL + err. */
EVP_PKEY *cf_keystore_load(cf_keystore_t *self, const char *backend, const char *key_id,
                           const json_t *options, const cf_password_t *password, cf_error_t *err);
/* True when the key can be loaded with this password (django-ca's check_usable); err says
 * why not. */
bool cf_keystore_usable(cf_keystore_t *self, const char *backend, const char *key_id,
                        const json_t *options, const cf_password_t *password, cf_error_t *err);
/* Drop KEY_ID of BACKEND from the cache (after a key was replaced or deleted). */
void cf_keystore_forget(cf_keystore_t *self, const char *backend, const char *key_id);
/* Number of cached keys. */
size_t cf_keystore_cached(cf_keystore_t *self);

/* A password holding a copy of VALUE (NULL or "": no password), source "job". NULL when out
 * of memory. */
cf_password_t *cf_password_new(const char *value);
/* The password for KEY_ID: JOB_PASSWORD when given (not NULL nor ""), else from the
 * environment or a file as configured (see above); a password with no value when none is
 * configured. Caller owns (cf_password_free). NULL + err ("password_unavailable") when a
 * configured password file cannot be read. */
cf_password_t *cf_password_resolve(cf_config_t *cfg, const char *key_id, const char *job_password,
                                   cf_error_t *err);
/* The password (borrowed), or NULL when there is none. */
const char *cf_password_value(const cf_password_t *self);
/* Where it came from, for logs: "job", "environment variable \"X\"", "file \"F\"", "none". */
const char *cf_password_source(const cf_password_t *self);
/* Wipe and free; nulls the caller's pointer. */
void cf_password_free(cf_password_t **self_p);

#endif
