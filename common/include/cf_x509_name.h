/* cf_x509_name: the Name model of django-ca's NameModel: an ordered JSON array of
 * {"oid": "<dotted>", "value": "<str>"}, with its validation (country codes of exactly two
 * characters, duplicate OIDs refused except where the reference allows them, x500UniqueIdentifier
 * values base64), the string forms users type, and conversion to and from OpenSSL.
 *
 * Models are jansson values in normalised form: short names on input ("CN") become dotted
 * OIDs ("2.5.4.3") on output. Errors name the field relative to the value given, e.g.
 * "[1].value"; callers prefix their own path with cf_error_prefix_field. */
#ifndef CF_X509_NAME_H
#define CF_X509_NAME_H

#include <jansson.h>
#include <openssl/x509.h>

#include "cf_error.h"

/* Validate and normalise one name attribute {"oid", "value"} (new reference) or NULL + err. */
json_t *cf_name_attribute_parse(const json_t *in, cf_error_t *err);
/* Validate and normalise a Name (JSON array of attributes); NULL + err. */
json_t *cf_name_parse(const json_t *in, cf_error_t *err);
/* Parse "CN=example.com,O=Org" (RFC 4514 order as written) or "/C=AT/CN=example.com". */
json_t *cf_name_from_string(const char *text, cf_error_t *err);
/* Format as "/C=AT/O=Org/CN=example.com" (short names where known); caller frees. */
char *cf_name_to_string(const json_t *model);
/* Format as RFC 4514 ("CN=example.com,O=Org,C=AT": reversed order); caller frees. */
char *cf_name_to_rfc4514(const json_t *model);

/* Model -> OpenSSL (caller owns) and back. */
X509_NAME *cf_name_to_openssl(const json_t *model, cf_error_t *err);
json_t *cf_name_from_openssl(const X509_NAME *name, cf_error_t *err);

/* "CN" -> "2.5.4.3" (also long names like "commonName"); NULL when unknown. */
const char *cf_name_oid_from_short(const char *short_name);
/* "2.5.4.3" -> "CN"; NULL when there is no short name. */
const char *cf_name_short_from_oid(const char *oid);

/* True when TEXT is a dotted OID of at least two arcs that OpenSSL accepts. */
bool cf_oid_is_valid(const char *text);

#endif
