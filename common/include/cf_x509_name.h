/* cf_x509_name: the Name model of django-ca's NameModel: an ordered JSON array of
 * {"oid": "<dotted>", "value": "<str>"}, with its validation (country codes of exactly two
 * characters, duplicate OIDs refused except where the reference allows them, x500UniqueIdentifier
 * values base64), the string forms users type, and conversion to and from OpenSSL.
 *
 * Models are jansson values in normalised form: short names on input ("CN") become dotted
 * OIDs ("2.5.4.3") on output. Errors name the field relative to the value given, e.g.
 * "[1].value"; callers prefix their own path with cf_error_prefix_field.
 *
 * Rules (django-ca's, plus what python-cryptography enforces when it encodes):
 * - "oid" is a dotted OID or a known name, case-insensitive: CN, C, L, ST, O, OU, SN, DC,
 *   street, serialNumber, title, givenName (GN), initials, pseudonym, generationQualifier,
 *   dnQualifier, postalCode, postalAddress, businessCategory, emailAddress, uid (userid),
 *   unstructuredName, organizationIdentifier, x500UniqueIdentifier, jurisdictionCountryName (..C),
 *   jurisdictionStateOrProvinceName (..ST), jurisdictionLocalityName (..L), inn, ogrn, snils,
 *   and the long forms (commonName, countryName, ...).
 * - Duplicates: an OID may occur only once, except domainComponent, organizationalUnitName and
 *   streetAddress (django-ca's MULTIPLE_OIDS): "duplicate_attribute" at "[i].oid".
 * - countryName and jurisdictionCountryName: exactly two characters ("invalid_country_code");
 *   commonName not empty; C, serialNumber, dnQualifier PrintableString characters only;
 *   emailAddress and DC ASCII only ("invalid_value"); x500UniqueIdentifier padded standard
 *   base64 ("invalid_base64"), normalised to its canonical spelling. No NUL characters.
 * - Other codes: "invalid_type" (wrong JSON type), "missing_field", "unknown_field" (keys
 *   other than oid/value are refused), "invalid_oid", "invalid_syntax" (string forms).
 * - Encoding: UTF8String, except PrintableString for C, jurisdictionC, serialNumber and
 *   dnQualifier, IA5String for emailAddress and DC, BIT STRING (no unused bits) for
 *   x500UniqueIdentifier: what python-cryptography writes. Every attribute is its own RDN;
 *   multi-valued RDNs read from OpenSSL are flattened (as django-ca does). */
#ifndef CF_X509_NAME_H
#define CF_X509_NAME_H

#include <jansson.h>
#include <openssl/x509.h>

#include "cf_error.h"

/* Validate and normalise one name attribute {"oid", "value"} (new reference) or NULL + err. */
json_t *cf_name_attribute_parse(const json_t *in, cf_error_t *err);
/* Validate and normalise a Name (JSON array of attributes; empty is allowed); NULL + err. */
json_t *cf_name_parse(const json_t *in, cf_error_t *err);
/* Parse "CN=example.com,O=Org" (RFC 4514 syntax, order as written, '+' splits like ',') or
 * "/C=AT/CN=example.com" (leading '/'). A backslash escapes the next character, a backslash
 * and two hex digits is a byte, "..." quotes a value; blanks around keys and values are
 * dropped; empty components are skipped. The result is validated like cf_name_parse. */
json_t *cf_name_from_string(const char *text, cf_error_t *err);
/* Format as "/C=AT/O=Org/CN=example.com" (short names where known, else the dotted OID;
 * separators, '=', '+', '"' and backslash escaped); an empty name is "/"; caller frees. */
char *cf_name_to_string(const json_t *model);
/* Format as RFC 4514 ("CN=example.com,O=Org,C=AT": reversed order); caller frees. */
char *cf_name_to_rfc4514(const json_t *model);

/* Model -> OpenSSL (caller owns); the model is validated with cf_name_parse first. */
X509_NAME *cf_name_to_openssl(const json_t *model, cf_error_t *err);
/* OpenSSL -> model (new reference). Faithful to the certificate: the policy rules above
 * (duplicates, country code length, empty CN) are not applied, so that any certificate can be
 * shown; run cf_name_parse on the result to apply them. Values that cannot be text (non-string
 * ASN.1 types, invalid encodings, NUL characters) fail with "unsupported_value". */
json_t *cf_name_from_openssl(const X509_NAME *name, cf_error_t *err);

/* "CN" -> "2.5.4.3" (also long names like "commonName"); NULL when unknown. */
const char *cf_name_oid_from_short(const char *short_name);
/* "2.5.4.3" -> "CN"; NULL when there is no short name. */
const char *cf_name_short_from_oid(const char *oid);

/* True when TEXT is a dotted OID of at least two arcs that OpenSSL accepts (canonical
 * spelling only: no leading zeros, first arc 0-2, second arc below 40 under 0 and 1). */
bool cf_oid_is_valid(const char *text);
/* The dotted form of OBJ ("2.5.4.3", never a name); caller frees; NULL when OBJ is empty. */
char *cf_oid_from_openssl(const ASN1_OBJECT *obj);

#endif
