/* cf_x509_ext: django-ca's X.509 extension models (django_ca.pydantic.extensions and
 * extension_attributes) as jansson values, their validation and normalisation, conversion to
 * and from OpenSSL, and a readable text form. docs/x509-model.md describes every model.
 *
 * An extension model is {"type": "<literal>", "critical": bool, "value": ...}. Parsing fills
 * in the default "critical" (django-ca's EXTENSION_DEFAULT_CRITICAL; "ms_certificate_template"
 * and "unknown" have none and require it) and normalises the value: aliases become dotted
 * OIDs, base64 gets its canonical spelling, key usages and reasons are sorted, and every
 * optional field of a nested model is present (null when not set). Normalised models compare
 * with json_equal; parsing a normalised model returns an equal one.
 *
 * Errors carry a code and the field relative to the value given ("critical",
 * "value.full_name[0]", "[2].value.path_length" for lists). Codes: "invalid_type",
 * "missing_field", "unknown_field", "unknown_extension", "invalid_value", "invalid_oid",
 * "invalid_base64", "empty_list", "duplicate_value", "duplicate_extension",
 * "contradictory_fields", "invalid_critical", "read_only", "extension_not_allowed",
 * "invalid_der", "unsupported_value", plus the codes of cf_x509_name.h and cf_general_name.h
 * for nested names. */
#ifndef CF_X509_EXT_H
#define CF_X509_EXT_H

#include <jansson.h>
#include <stdbool.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "cf_error.h"

/* Validate and normalise one extension model; NULL + err. Caller owns the result. */
json_t *cf_extension_parse(const json_t *in, cf_error_t *err);
/* Validate and normalise a JSON array of extension models; a type (or, for "unknown", an
 * OID) given twice is refused with "duplicate_extension" at "[i].type". Caller owns. */
json_t *cf_extensions_parse(const json_t *list, cf_error_t *err);
/* Like cf_extensions_parse, then refuse every type a signing request may not carry
 * (cf_extension_sign_allowed) with "extension_not_allowed" at "[i].type". Caller owns. */
json_t *cf_extensions_parse_for_sign(const json_t *list, cf_error_t *err);

/* Model -> OpenSSL (caller owns), DER exactly as OpenSSL's own structures encode it. The model
 * is parsed first, so any model cf_extension_parse accepts works. The read-only SCT models fail
 * with "read_only". */
X509_EXTENSION *cf_extension_to_openssl(const json_t *model, cf_error_t *err);
/* A list of models as a new stack (caller frees with sk_X509_EXTENSION_pop_free). */
STACK_OF(X509_EXTENSION) * cf_extensions_to_openssl(const json_t *list, cf_error_t *err);
/* Add every extension of LIST to CERT / CRL. 0 or -1; on -1 some may have been added. */
int cf_extensions_add_to_cert(X509 *cert, const json_t *list, cf_error_t *err);
int cf_extensions_add_to_crl(X509_CRL *crl, const json_t *list, cf_error_t *err);

/* OpenSSL -> normalised model (caller owns). Describes what is there: the input-only rules
 * (non-empty lists, no duplicates, contradictory fields, critical flags) are not applied, so
 * any well-formed certificate can be shown. OIDs without a model become {"type": "unknown"}.
 * DER that does not decode as its OID says, or with trailing bytes, fails with "invalid_der". */
json_t *cf_extension_from_openssl(const X509_EXTENSION *ext, cf_error_t *err);
/* Any extension in the unknown shape, {"type": "unknown", "value": {"oid", "value"}} with its
 * raw DER, whatever its OID: how `x509 show` still shows one whose value does not decode. */
json_t *cf_extension_raw_from_openssl(const X509_EXTENSION *ext, cf_error_t *err);
/* Every extension of a certificate / request / CRL, in order, as a JSON array (caller owns);
 * errors are prefixed with the extension's index ("[3].value"). */
json_t *cf_extensions_from_cert(const X509 *cert, cf_error_t *err);
json_t *cf_extensions_from_req(const X509_REQ *req, cf_error_t *err);
json_t *cf_extensions_from_crl(const X509_CRL *crl, cf_error_t *err);

/* Readable multi-line text of a model for `certfleet x509 show`: a heading with the
 * extension's name and "(critical)", then its value indented; caller frees. NULL when MODEL is
 * not a normalised model. */
char *cf_extension_to_text(const json_t *model);

/* "basic_constraints" -> "2.5.29.19"; NULL for unknown types (and for "unknown"). */
const char *cf_extension_oid(const char *type);
/* "2.5.29.19" -> "basic_constraints"; NULL when the OID has no model. */
const char *cf_extension_type_from_oid(const char *oid);
/* "basic_constraints" -> "Basic Constraints"; NULL for unknown types. */
const char *cf_extension_name(const char *type);
/* The default critical flag of TYPE into *CRITICAL; -1 when TYPE is unknown or has none. */
int cf_extension_default_critical(const char *type, bool *critical);
/* True for the types of django-ca's SignCertificateExtensions, the set a signing request may
 * carry: authority_information_access, certificate_policies, crl_distribution_points,
 * extended_key_usage, freshest_crl, issuer_alternative_name, key_usage, ocsp_no_check,
 * subject_alternative_name, tls_feature. */
bool cf_extension_sign_allowed(const char *type);
/* True for the read-only types (the two SCT lists): parsed from DER, never encoded. */
bool cf_extension_read_only(const char *type);

/* The first model of TYPE in LIST (borrowed), NULL when absent. */
json_t *cf_extensions_find(const json_t *list, const char *type);
/* The first model in LIST whose extension has OID (an "unknown" model's value.oid counts),
 * borrowed, NULL when absent. */
json_t *cf_extensions_find_oid(const json_t *list, const char *oid);

#endif
