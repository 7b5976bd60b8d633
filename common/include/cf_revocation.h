/* cf_revocation: what the signer, the crl and ocsp workers and certfleet-ocspd agree on about
 * revocation: RFC 5280 reason names and codes, CRL scopes, and the layout of the Redis cache
 * (keys and the value header) in front of the PostgreSQL tables of schemas/sql/0005.
 *
 * Redis keys (ca_id is certificate_authorities.id; SERIAL upper-case hex without colons):
 *   cf:ocsp:<ca_id>:<SERIAL>         the pre-signed OCSPResponse of one certificate
 *   cf:crl:<ca_id>:<scope>:<shard>   the current CRL (DER) of one scope and shard
 * Each value is a 24-byte header followed by the DER:
 *   "CFR1" | this_update (int64 BE, Unix s) | next_update (int64 BE) | 4 bytes zero
 * and expires (EXPIREAT) at next_update. Redis is a cache: PostgreSQL stays the record, and a
 * reader that misses in Redis reads the table and may put the value back. */
#ifndef CF_REVOCATION_H
#define CF_REVOCATION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_error.h"

/* RFC 5280 CRLReason codes by django-ca's ReasonFlags names: unspecified (0),
 * key_compromise (1), ca_compromise (2), affiliation_changed (3), superseded (4),
 * cessation_of_operation (5), certificate_hold (6), remove_from_crl (8),
 * privilege_withdrawn (9), aa_compromise (10). The code, or -1 for an unknown name. */
int cf_reason_code(const char *name);
/* The name of CODE, or NULL. */
const char *cf_reason_name(int code);
/* Also accepts RFC 5280's camelCase spelling ("keyCompromise") and any case; writes the
 * django-ca name into OUT. 0, or -1 + err ("invalid_value", FIELD, listing the names). */
int cf_reason_parse(const char *text, const char *field, const char **out, cf_error_t *err);

/* CRL scopes (django-ca's get_crl scope; None is "all"). */
typedef enum { CF_SCOPE_ALL = 0, CF_SCOPE_CA, CF_SCOPE_USER, CF_SCOPE_ATTRIBUTE } cf_scope_t;
/* "all", "ca", "user", "attribute". */
const char *cf_scope_name(cf_scope_t scope);
/* NULL, "" , "all" and "none" (any case) give CF_SCOPE_ALL. 0 or -1 + err (FIELD). */
int cf_scope_parse(const char *text, const char *field, cf_scope_t *out, cf_error_t *err);

#define CF_REVSTORE_HEADER 24

/* Redis keys (written into BUF, truncated to LEN). */
void cf_revstore_ocsp_key(char *buf, size_t len, int64_t ca_id, const char *serial);
void cf_revstore_crl_key(char *buf, size_t len, int64_t ca_id, cf_scope_t scope, int shard);
/* Write the 24-byte header into OUT. */
void cf_revstore_header(unsigned char out[CF_REVSTORE_HEADER], int64_t this_update,
                        int64_t next_update);
/* Read a header: 0 and the times, or -1 when VALUE is too short or not "CFR1". */
int cf_revstore_parse(const unsigned char *value, size_t len, int64_t *this_update,
                      int64_t *next_update);

/* A serial as typed by people ("0A:1b:...", "a1b2", with or without colons) as the stored
 * upper-case hex without colons, as cf_serial_hex writes it (whole octets, no leading zero
 * octets). 0, or -1 + err
 * ("invalid_value", FIELD) when it is empty, too long (over 40 hex digits) or not hex. */
int cf_serial_normalize(const char *text, const char *field, char *out, size_t len,
                        cf_error_t *err);

#endif
