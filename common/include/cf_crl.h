/* cf_crl: a streaming writer of signed X.509 v2 CRLs (RFC 5280 section 5) for CRLs of any
 * size. It never builds an X509_CRL with one X509_REVOKED per entry: each revoked certificate
 * is encoded straight to DER into one growing buffer, and the rest of the CRL (version,
 * signature algorithm, issuer, thisUpdate, nextUpdate, crlExtensions) comes from an entry-less
 * X509_CRL that OpenSSL builds and signs once, when the writer is made, to learn its DER.
 * Room is kept in front of the entries so that the finished CRL is assembled in place: the
 * whole CRL costs one buffer of about its DER size (docs/crl.md).
 *
 *   cf_crl_writer_t *w = cf_crl_writer_new (issuer, key, md, &info, &err);
 *   cf_crl_writer_add (w, "0A1B", revoked_at, 1, CF_CRL_NO_DATE, &err);   // many times
 *   cf_crl_writer_finish (w, &err);
 *   const unsigned char *der = cf_crl_writer_der (w, &len);
 *
 * Error codes: "invalid_value" (field "serial", "reason", "revocation_date",
 * "invalidity_date", "this_update", "next_update", "number"), "crypto_error", "internal". */
#ifndef CF_CRL_H
#define CF_CRL_H

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_error.h"

/* No date: an entry without invalidityDate. */
#define CF_CRL_NO_DATE INT64_MIN
/* Longest serial accepted, in hex digits (32 octets; RFC 5280 asks for at most 20). */
#define CF_CRL_SERIAL_HEX_MAX 64

typedef struct _cf_crl_writer_t cf_crl_writer_t;

/* What goes into the CRL besides its entries: a plain value. */
typedef struct {
    int64_t this_update;       /* Unix seconds */
    int64_t next_update;       /* Unix seconds, after this_update */
    int64_t number;            /* CRL Number, >= 0 */
    const X509_EXTENSION *idp; /* IssuingDistributionPoint to add, or NULL (borrowed) */
    size_t headroom;           /* bytes kept free right before the finished DER (a cache header) */
} cf_crl_info_t;

/* A writer for a CRL of ISSUER (its subject is the CRL's issuer, its subject key identifier,
 * else the SHA-1 of its public key, the AuthorityKeyIdentifier), signed with KEY and MD (NULL
 * for Ed25519 and Ed448). All borrowed; KEY must outlive the writer. NULL + err. */
cf_crl_writer_t *cf_crl_writer_new(X509 *issuer, EVP_PKEY *key, const EVP_MD *md,
                                   const cf_crl_info_t *info, cf_error_t *err);
/* Free the writer and its buffer; nulls the caller's pointer. */
void cf_crl_writer_destroy(cf_crl_writer_t **self_p);

/* Make room for about ENTRIES more entries at once, so that the buffer does not grow (and
 * copy) step by step. 0 or -1 (out of memory). */
int cf_crl_writer_reserve(cf_crl_writer_t *self, size_t entries);
/* Add one entry: SERIAL (hex digits, any case, optional colons; never negative), revoked at
 * REVOKED (Unix s), REASON (an RFC 5280 CRLReason code: 0 unspecified, which is left out, 1..6
 * or 8..10), INVALIDITY (Unix s, or CF_CRL_NO_DATE). 0 or -1 + err; a refused entry leaves
 * the CRL as it was. */
int cf_crl_writer_add(cf_crl_writer_t *self, const char *serial, int64_t revoked, int reason,
                      int64_t invalidity, cf_error_t *err);
/* Entries added so far. */
size_t cf_crl_writer_entries(const cf_crl_writer_t *self);
/* Bytes used so far (the entries' DER and the reserved room), for progress logs. */
size_t cf_crl_writer_size(const cf_crl_writer_t *self);

/* Assemble and sign the CRL. After it no entry can be added. 0 or -1 + err. */
int cf_crl_writer_finish(cf_crl_writer_t *self, cf_error_t *err);
/* The finished CRL's DER (borrowed, lives as long as the writer) and its length; NULL before
 * a successful finish. The info's HEADROOM bytes right before it are the caller's to write. */
unsigned char *cf_crl_writer_der(cf_crl_writer_t *self, size_t *len);

/* Hand the finished CRL's buffer over to the caller (who frees it with free()): the DER
 * starts at *OFFSET (with the info's HEADROOM bytes before it) and is *LEN bytes long.
 * Afterwards cf_crl_writer_der answers NULL. NULL before a successful finish. */
unsigned char *cf_crl_writer_release(cf_crl_writer_t *self, size_t *offset, size_t *len);

/* Encode a Unix time as a DER Time: UTCTime for the years 1950..2049, else GeneralizedTime
 * (GENERALIZED: always GeneralizedTime, as invalidityDate is). OUT holds at least 17 bytes.
 * The length written, or -1 when the year is not within 0..9999. */
int cf_crl_der_time(unsigned char *out, int64_t t, bool generalized);

#endif
