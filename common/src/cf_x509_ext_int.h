/* cf_x509_ext_int: what the cf_x509_ext*.c files share and nothing else includes: the
 * per-type definition every extension model provides, and the helpers they all use for JSON
 * fields, OIDs, integers, base64, general names, DER and text. */
#ifndef CF_X509_EXT_INT_H
#define CF_X509_EXT_INT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <openssl/asn1.h>
#include <openssl/x509v3.h>

#include "cf_error.h"

/* Definition flags. */
#define CF_EXT_SIGN          0x1 /* in django-ca's SignCertificateExtensions */
#define CF_EXT_READ_ONLY     0x2 /* parsed from DER, never encoded (SCTs) */
#define CF_EXT_MUST_CRITICAL 0x4 /* critical must be true (precert poison, RFC 6962) */
#define CF_EXT_NO_VALUE      0x8 /* the value is null and may be left out */

/* Growing text buffer for cf_extension_to_text; FAILED is set on allocation failure. */
typedef struct {
    char *data;  /* NUL-terminated text so far */
    size_t len;  /* bytes used, without the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed: the text is incomplete */
    int base;    /* indent levels added to every line */
} cf_ext_buf_t;

/* One extension model. VALUE is always the "value" member of the model. Parse errors name
 * fields relative to the value ("path_length", "[0].access_method"); the caller prefixes. */
typedef struct {
    const char *type;     /* the model's "type" literal */
    const char *oid;      /* dotted OID of the extension */
    const char *name;     /* human-readable name (django-ca's EXTENSION_NAMES) */
    int default_critical; /* 0 or 1; -1 when "critical" is mandatory */
    unsigned flags;       /* CF_EXT_* */
    /* Validate and normalise a value; NULL + err. */
    json_t *(*parse)(const json_t *value, cf_error_t *err);
    /* Normalised value -> DER of extnValue (OPENSSL_malloc'd into *der). 0 or -1. */
    int (*encode)(const json_t *value, unsigned char **der, int *len, cf_error_t *err);
    /* DER of extnValue -> normalised value; NULL + err. */
    json_t *(*decode)(const unsigned char *der, long len, cf_error_t *err);
    /* Append the value's lines, indented by one level per nesting. */
    void (*text)(const json_t *value, cf_ext_buf_t *out);
} cf_ext_def_t;

/* The definitions, one per file that holds them. */
extern const cf_ext_def_t cf_ext_def_authority_information_access;
extern const cf_ext_def_t cf_ext_def_subject_information_access;
extern const cf_ext_def_t cf_ext_def_crl_distribution_points;
extern const cf_ext_def_t cf_ext_def_freshest_crl;
extern const cf_ext_def_t cf_ext_def_issuing_distribution_point;
extern const cf_ext_def_t cf_ext_def_certificate_policies;
extern const cf_ext_def_t cf_ext_def_policy_constraints;
extern const cf_ext_def_t cf_ext_def_inhibit_any_policy;
extern const cf_ext_def_t cf_ext_def_basic_constraints;
extern const cf_ext_def_t cf_ext_def_key_usage;
extern const cf_ext_def_t cf_ext_def_extended_key_usage;
extern const cf_ext_def_t cf_ext_def_tls_feature;
extern const cf_ext_def_t cf_ext_def_ocsp_no_check;
extern const cf_ext_def_t cf_ext_def_precert_poison;
extern const cf_ext_def_t cf_ext_def_subject_key_identifier;
extern const cf_ext_def_t cf_ext_def_crl_number;
extern const cf_ext_def_t cf_ext_def_delta_crl_indicator;
extern const cf_ext_def_t cf_ext_def_ms_certificate_template;
extern const cf_ext_def_t cf_ext_def_subject_alternative_name;
extern const cf_ext_def_t cf_ext_def_issuer_alternative_name;
extern const cf_ext_def_t cf_ext_def_name_constraints;
extern const cf_ext_def_t cf_ext_def_authority_key_identifier;
extern const cf_ext_def_t cf_ext_def_precertificate_signed_certificate_timestamps;
extern const cf_ext_def_t cf_ext_def_signed_certificate_timestamps;

/* --- JSON fields ------------------------------------------------------------------------- */

/* Field paths: PARENT.KEY and PARENT[I] into OUT (CF_ERROR_FIELD_MAX bytes); PARENT may be "". */
void cf_ext_path_key(char *out, const char *parent, const char *key);
void cf_ext_path_index(char *out, const char *parent, size_t i);

/* IN must be an object whose keys are all in ALLOWED (NULL-terminated) and that has every key
 * of REQUIRED (NULL-terminated, may be NULL). WHAT names the object in messages. 0 or -1. */
int cf_ext_check_object(const json_t *in, const char *what, const char *const *allowed,
                        const char *const *required, cf_error_t *err);
/* A member that may be absent or null: NULL then, else the member (borrowed). */
json_t *cf_ext_opt(const json_t *obj, const char *key);
/* Optional boolean member KEY of OBJ with default DEF. 0 or -1 ("invalid_type" at KEY). */
int cf_ext_get_bool(const json_t *obj, const char *key, bool def, bool *out, cf_error_t *err);
/* V must be a JSON integer in [MIN, MAX]. FIELD names it. 0 or -1. */
int cf_ext_get_int(const json_t *v, const char *field, json_int_t min, json_int_t max,
                   json_int_t *out, cf_error_t *err);
/* V must be a non-empty array (FIELD names it). 0 or -1 ("invalid_type", "empty_list"). */
int cf_ext_check_list(const json_t *v, const char *field, cf_error_t *err);
/* Refuse the second of two equal elements of ARR: "duplicate_value" at FIELD[i]. 0 or -1. */
int cf_ext_check_unique(const json_t *arr, const char *field, cf_error_t *err);
/* Append ITEM (consumed, may be NULL) to ARR (may be NULL): 0 or -1. */
int cf_ext_append(json_t *arr, json_t *item);
/* Set a new reference as an object member, consumed even on failure: 0 or -1. */
int cf_ext_set(json_t *obj, const char *key, json_t *value);
/* A JSON string that must be a dotted OID in canonical spelling; new string or NULL + err. */
json_t *cf_ext_parse_oid(const json_t *v, const char *field, cf_error_t *err);
/* A JSON string of padded standard base64; new string in canonical spelling or NULL + err. */
json_t *cf_ext_parse_base64(const json_t *v, const char *field, cf_error_t *err);
/* A non-negative integer that may exceed 64 bits (serials, CRL numbers): a JSON integer, or a
 * string of decimal digits. Normalised to an integer when it fits in int64, else the decimal
 * string without leading zeros. New value or NULL + err. */
json_t *cf_ext_parse_bigint(const json_t *v, const char *field, cf_error_t *err);
/* A text field: a JSON string without NUL characters. New reference or NULL + err. */
json_t *cf_ext_parse_text(const json_t *v, const char *field, bool ascii_only, cf_error_t *err);

/* --- general names and names (through cf_general_name.h / cf_x509_name.h) ---------------- */

/* A non-empty list of general names without duplicates, normalised; errors at FIELD... */
json_t *cf_ext_parse_general_names(const json_t *v, const char *field, cf_error_t *err);
/* One general name, normalised; errors at FIELD... */
json_t *cf_ext_parse_general_name(const json_t *v, const char *field, cf_error_t *err);
/* Normalised list -> OpenSSL (caller owns); errors at FIELD... */
GENERAL_NAMES *cf_ext_general_names_to_openssl(const json_t *list, const char *field,
                                               cf_error_t *err);
/* OpenSSL -> model; errors at FIELD... */
json_t *cf_ext_general_names_from_openssl(const GENERAL_NAMES *gns, const char *field,
                                          cf_error_t *err);

/* --- OpenSSL values ---------------------------------------------------------------------- */

/* Dotted OID -> new object (caller frees) or NULL + err at FIELD. */
ASN1_OBJECT *cf_ext_oid_to_openssl(const char *oid, const char *field, cf_error_t *err);
/* Object -> new JSON string with the dotted OID, or NULL + err ("invalid_der"). */
json_t *cf_ext_oid_from_openssl(const ASN1_OBJECT *obj, const char *field, cf_error_t *err);
/* JSON integer (or a big integer from cf_ext_parse_bigint) -> new ASN1_INTEGER or NULL. */
ASN1_INTEGER *cf_ext_int_to_openssl(const json_t *v, cf_error_t *err);
/* ASN1_INTEGER -> JSON integer, or decimal string when BIG and it exceeds int64; negative
 * values or values beyond int64 when !BIG fail with "unsupported_value" at FIELD. */
json_t *cf_ext_int_from_openssl(const ASN1_INTEGER *i, bool big, const char *field,
                                cf_error_t *err);
/* A string of any ASN.1 string type as UTF-8 JSON string, or NULL + "unsupported_value". */
json_t *cf_ext_string_from_openssl(const ASN1_STRING *s, const char *field, cf_error_t *err);
/* Base64 JSON string of raw bytes (for octet strings, key identifiers). */
json_t *cf_ext_base64_from_bytes(const unsigned char *data, size_t len);
/* Decode a normalised base64 JSON string into a new octet string (caller frees). */
ASN1_OCTET_STRING *cf_ext_octets_from_base64(const json_t *v, cf_error_t *err);

/* i2d of VAL with IT into *DER (OPENSSL_malloc'd). 0 or -1 with "internal" error. */
int cf_ext_i2d(const void *val, const ASN1_ITEM *it, unsigned char **der, int *len,
               cf_error_t *err);
/* d2i of exactly LEN bytes with IT; NULL + "invalid_der" when malformed or not all used. */
void *cf_ext_d2i(const unsigned char *der, long len, const ASN1_ITEM *it, cf_error_t *err);

/* --- text -------------------------------------------------------------------------------- */

/* Append one line: INDENT levels of two spaces (plus the buffer's base), then the text. */
void cf_ext_line(cf_ext_buf_t *b, int indent, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Append raw text. */
void cf_ext_puts(cf_ext_buf_t *b, const char *s);
/* Lines "* DNS:example.com" for a list of general names. */
void cf_ext_text_general_names(cf_ext_buf_t *b, int indent, const json_t *list);
/* "AB:CD:..." of base64 JSON string V (caller frees); NULL on bad input. */
char *cf_ext_hex_of_base64(const json_t *v);

/* --- shared between groups --------------------------------------------------------------- */

/* Access description lists (AIA and SIA), in cf_x509_ext_access.c: none. */
/* A lone integer value (inhibit_any_policy, crl_number, delta_crl_indicator). */
json_t *cf_ext_decode_integer(const unsigned char *der, long len, bool big, cf_error_t *err);
int cf_ext_encode_integer(const json_t *value, unsigned char **der, int *len, cf_error_t *err);
void cf_ext_text_integer(const json_t *value, cf_ext_buf_t *out);

#endif
