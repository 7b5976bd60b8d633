/* cf_general_name: django-ca's GeneralNameModel and OtherNameModel as jansson values:
 *   {"type": "DNS", "value": "example.com"}
 *   {"type": "dirName", "value": [{"oid": "2.5.4.3", "value": "example.com"}]}
 *   {"type": "otherName", "value": {"oid": "1.2.3", "type": "UTF8String", "value": "x"}}
 * Types: email, URI, IP (address or network, v4 or v6), DNS, RID, dirName, otherName with the
 * nine OtherName types. Validation and normalisation follow the reference; errors name the
 * field relative to the value given ("value", "value.type", "[2].value"). */
#ifndef CF_GENERAL_NAME_H
#define CF_GENERAL_NAME_H

#include <jansson.h>
#include <openssl/x509v3.h>

#include "cf_error.h"

/* Validate and normalise one general name (new reference) or NULL + err. */
json_t *cf_general_name_parse(const json_t *in, cf_error_t *err);
/* A JSON array of general names; an empty list is allowed here (callers that forbid it check). */
json_t *cf_general_names_parse(const json_t *in, cf_error_t *err);
/* Parse the short text form used on command lines: "DNS:example.com", "IP:127.0.0.1",
 * "email:a@b", "URI:https://..", "dirName:/CN=x", "RID:1.2.3", "otherName:1.2.3;UTF8:x";
 * text with no prefix is DNS (or IP when it parses as an address). */
json_t *cf_general_name_from_string(const char *text, cf_error_t *err);
/* "DNS:example.com" form of a model; caller frees. */
char *cf_general_name_to_string(const json_t *model);

/* Model -> OpenSSL (caller owns) and back. */
GENERAL_NAME *cf_general_name_to_openssl(const json_t *model, cf_error_t *err);
GENERAL_NAMES *cf_general_names_to_openssl(const json_t *list, cf_error_t *err);
json_t *cf_general_name_from_openssl(const GENERAL_NAME *gn, cf_error_t *err);
json_t *cf_general_names_from_openssl(const GENERAL_NAMES *gns, cf_error_t *err);

#endif
