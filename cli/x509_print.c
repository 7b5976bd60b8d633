/* Reading, showing and writing X.509 objects for the commands (see x509_print.h). The text
 * and JSON forms are those of `certfleet x509 show`. */
#include "x509_print.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_issue.h"
#include "cf_msgpack.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"
#include "cli.h"

/* CRLs of large CAs run to several MiB (~36 bytes per entry); 256 MiB is far beyond any. */
#define S_FILE_MAX (256u << 20)

unsigned char *cf_cli_read_file(const char *path, size_t *len)
{
    FILE *f = strcmp(path, "-") == 0 ? stdin : fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, used = 0;
    unsigned char *buf = malloc(cap);
    while (buf) {
        size_t n = fread(buf + used, 1, cap - used, f);
        used += n;
        if (n == 0)
            break;
        if (used == cap) {
            unsigned char *bigger = cap < S_FILE_MAX ? realloc(buf, cap * 2) : NULL;
            if (!bigger) {
                int saved = cap < S_FILE_MAX ? ENOMEM : EFBIG;
                free(buf);
                errno = saved;
                buf = NULL;
                break;
            }
            buf = bigger;
            cap *= 2;
        }
    }
    int saved = errno;
    if (buf && ferror(f)) {
        free(buf);
        buf = NULL;
    }
    if (f != stdin)
        fclose(f);
    errno = saved;
    *len = used;
    return buf;
}

/* Decode DER as KIND; only a complete object counts (no trailing bytes). */
static int s_decode_der(const unsigned char *der, long len, cf_x509_kind_t kind,
                        cf_x509_object_t *obj)
{
    const unsigned char *p = der;
    obj->kind = kind;
    if (kind == CF_X509_CERT)
        obj->cert = d2i_X509(NULL, &p, len);
    else if (kind == CF_X509_CSR)
        obj->req = d2i_X509_REQ(NULL, &p, len);
    else
        obj->crl = d2i_X509_CRL(NULL, &p, len);
    bool ok = (obj->cert || obj->req || obj->crl) && p == der + len;
    if (!ok) {
        X509_free(obj->cert);
        X509_REQ_free(obj->req);
        X509_CRL_free(obj->crl);
        obj->cert = NULL;
        obj->req = NULL;
        obj->crl = NULL;
    }
    ERR_clear_error();
    return ok ? 0 : -1;
}

int cf_x509_object_load(const unsigned char *data, size_t len, cf_x509_object_t *obj)
{
    if (len > 11 && memmem(data, len, "-----BEGIN ", 11)) {
        BIO *bio = BIO_new_mem_buf(data, (int)len);
        char *name = NULL, *header = NULL;
        unsigned char *der = NULL;
        long der_len = 0;
        int rc = -1;
        while (bio && rc != 0 && PEM_read_bio(bio, &name, &header, &der, &der_len)) {
            if (!strcmp(name, "CERTIFICATE") || !strcmp(name, "X509 CERTIFICATE"))
                rc = s_decode_der(der, der_len, CF_X509_CERT, obj);
            else if (!strcmp(name, "TRUSTED CERTIFICATE")) {
                const unsigned char *p = der;
                obj->kind = CF_X509_CERT;
                obj->cert = d2i_X509_AUX(NULL, &p, der_len);
                rc = obj->cert ? 0 : -1;
            } else if (!strcmp(name, "CERTIFICATE REQUEST") ||
                       !strcmp(name, "NEW CERTIFICATE REQUEST"))
                rc = s_decode_der(der, der_len, CF_X509_CSR, obj);
            else if (!strcmp(name, "X509 CRL"))
                rc = s_decode_der(der, der_len, CF_X509_CRL, obj);
            OPENSSL_free(name);
            OPENSSL_free(header);
            OPENSSL_free(der);
            name = header = NULL;
            der = NULL;
        }
        BIO_free(bio);
        ERR_clear_error();
        return rc;
    }
    if (len > LONG_MAX)
        return -1;
    for (cf_x509_kind_t k = CF_X509_CERT; k <= CF_X509_CRL; k++)
        if (s_decode_der(data, (long)len, k, obj) == 0)
            return 0;
    return -1;
}

/* --- values ------------------------------------------------------------------------------ */

static json_t *s_time(const ASN1_TIME *t)
{
    struct tm tm;
    if (!t || !ASN1_TIME_to_tm(t, &tm)) {
        ERR_clear_error();
        return json_null();
    }
    char buf[80];
    snprintf(buf, sizeof buf, "%04d-%02d-%02dT%02d:%02d:%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    return json_string(buf);
}

char *cf_x509_hex_colons(const unsigned char *data, size_t len)
{
    char *out = malloc(len ? len * 3 : 1);
    if (!out)
        return NULL;
    out[0] = '\0';
    for (size_t i = 0; i < len; i++)
        snprintf(out + 3 * i, 4, "%02X%s", data[i], i + 1 < len ? ":" : "");
    return out;
}

/* Serial as django-ca shows it: upper-case hex, even length, colon every two digits. */
static json_t *s_serial(const ASN1_INTEGER *serial)
{
    BIGNUM *bn = serial ? ASN1_INTEGER_to_BN(serial, NULL) : NULL;
    json_t *out = NULL;
    if (bn) {
        int n = BN_num_bytes(bn);
        unsigned char *bytes = malloc(n > 0 ? (size_t)n : 1);
        if (bytes) {
            if (n == 0)
                bytes[0] = 0;
            BN_bn2bin(bn, bytes);
            char *hex = cf_x509_hex_colons(bytes, n > 0 ? (size_t)n : 1);
            if (hex) {
                char *signed_hex = NULL;
                if (asprintf(&signed_hex, "%s%s", BN_is_negative(bn) ? "-" : "", hex) >= 0)
                    out = json_string(signed_hex);
                free(signed_hex);
            }
            free(hex);
            free(bytes);
        }
        BN_free(bn);
    }
    ERR_clear_error();
    return out ? out : json_null();
}

static json_t *s_fingerprints(const cf_x509_object_t *obj)
{
    json_t *out = json_object();
    const EVP_MD *mds[2] = {EVP_sha256(), EVP_sha512()};
    const char *keys[2] = {"sha256", "sha512"};
    for (int i = 0; i < 2; i++) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int n = 0;
        int ok = obj->kind == CF_X509_CERT  ? X509_digest(obj->cert, mds[i], md, &n)
                 : obj->kind == CF_X509_CSR ? X509_REQ_digest(obj->req, mds[i], md, &n)
                                            : X509_CRL_digest(obj->crl, mds[i], md, &n);
        char *hex = ok ? cf_x509_hex_colons(md, n) : NULL;
        json_object_set_new(out, keys[i], hex ? json_string(hex) : json_null());
        free(hex);
    }
    ERR_clear_error();
    return out;
}

static json_t *s_public_key(EVP_PKEY *pkey)
{
    if (!pkey) {
        ERR_clear_error();
        return json_null();
    }
    const char *type;
    switch (EVP_PKEY_get_base_id(pkey)) {
    case EVP_PKEY_RSA:
        type = "RSA";
        break;
    case EVP_PKEY_RSA_PSS:
        type = "RSA-PSS";
        break;
    case EVP_PKEY_DSA:
        type = "DSA";
        break;
    case EVP_PKEY_EC:
        type = "EC";
        break;
    case EVP_PKEY_ED25519:
        type = "Ed25519";
        break;
    case EVP_PKEY_ED448:
        type = "Ed448";
        break;
    default:
        type = EVP_PKEY_get0_type_name(pkey);
        break;
    }
    json_t *out = json_pack("{s:s?, s:i}", "type", type, "bits", EVP_PKEY_get_bits(pkey));
    char curve[80];
    if (EVP_PKEY_get_base_id(pkey) == EVP_PKEY_EC &&
        EVP_PKEY_get_utf8_string_param(pkey, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof curve, NULL))
        json_object_set_new(out, "curve", json_string(curve));
    ERR_clear_error();
    return out;
}

static json_t *s_signature_algorithm(int nid)
{
    const char *name = nid != NID_undef ? OBJ_nid2ln(nid) : NULL;
    return name ? json_string(name) : json_null();
}

/* Record a model that could not be made: KEY becomes null and ERRORS gets the reason. */
static void s_set_model(json_t *doc, const char *key, json_t *model, const cf_error_t *err,
                        json_t *errors)
{
    if (!model) {
        cf_error_t e = *err;
        cf_error_prefix_field(&e, key);
        json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "code", e.code, "field", e.field,
                                                "message", e.message));
    }
    json_object_set_new(doc, key, model ? model : json_null());
}

static const char *s_reason_name(int code)
{
    /* RFC 5280 CRLReason codes as django-ca's ReasonFlags names them. */
    static const char *const names[] = {
        "unspecified",     "key_compromise",         "ca_compromise",    "affiliation_changed",
        "superseded",      "cessation_of_operation", "certificate_hold", NULL,
        "remove_from_crl", "privilege_withdrawn",    "aa_compromise"};
    return code >= 0 && code <= 10 ? names[code] : NULL;
}

static json_t *s_crl_entries(const X509_CRL *crl)
{
    json_t *out = json_array();
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED((X509_CRL *)crl);
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); i++) {
        const X509_REVOKED *r = sk_X509_REVOKED_value(revoked, i);
        json_t *reason = json_null();
        int crit = 0;
        ASN1_ENUMERATED *e = X509_REVOKED_get_ext_d2i(r, NID_crl_reason, &crit, NULL);
        if (e) {
            const char *name = s_reason_name((int)ASN1_ENUMERATED_get(e));
            reason = name ? json_string(name) : json_integer(ASN1_ENUMERATED_get(e));
            ASN1_ENUMERATED_free(e);
        }
        json_array_append_new(
            out, json_pack("{s:o, s:o, s:o}", "serial", s_serial(X509_REVOKED_get0_serialNumber(r)),
                           "revocation_date", s_time(X509_REVOKED_get0_revocationDate(r)), "reason",
                           reason));
    }
    ERR_clear_error();
    return out;
}

/* Every extension of SK as its model, under "extensions". One whose value does not decode is
 * shown raw (the unknown shape, its DER in base64) and its reason goes to ERRORS with the
 * field "extensions[I]...": one bad extension must not hide the others. */
static void s_set_extensions(json_t *doc, const STACK_OF(X509_EXTENSION) * sk, json_t *errors)
{
    json_t *list = json_array();
    for (int i = 0; list && i < sk_X509_EXTENSION_num(sk); i++) {
        const X509_EXTENSION *ext = sk_X509_EXTENSION_value(sk, i);
        cf_error_t err = {0};
        json_t *model = cf_extension_from_openssl(ext, &err);
        if (!model) {
            char index[32];
            snprintf(index, sizeof index, "extensions[%d]", i);
            cf_error_prefix_field(&err, index);
            json_array_append_new(errors, json_pack("{s:s, s:s, s:s}", "code", err.code, "field",
                                                    err.field, "message", err.message));
            cf_error_t raw_err = {0};
            model = cf_extension_raw_from_openssl(ext, &raw_err);
        }
        json_array_append_new(list, model ? model : json_null()); /* indices stay aligned */
    }
    json_object_set_new(doc, "extensions", list ? list : json_null());
}

/* The whole document; every model that cannot be made is null with a reason in "errors". */
json_t *cf_x509_describe(const cf_x509_object_t *obj)
{
    json_t *doc = json_object();
    json_t *errors = json_array();
    cf_error_t err = {0};
    json_t *m;
    switch (obj->kind) {
    case CF_X509_CERT:
        json_object_set_new(doc, "type", json_string("certificate"));
        json_object_set_new(doc, "version", json_integer(X509_get_version(obj->cert) + 1));
        json_object_set_new(doc, "serial", s_serial(X509_get0_serialNumber(obj->cert)));
        m = cf_name_from_openssl(X509_get_subject_name(obj->cert), &err);
        s_set_model(doc, "subject", m, &err, errors);
        m = cf_name_from_openssl(X509_get_issuer_name(obj->cert), &err);
        s_set_model(doc, "issuer", m, &err, errors);
        json_object_set_new(doc, "not_before", s_time(X509_get0_notBefore(obj->cert)));
        json_object_set_new(doc, "not_after", s_time(X509_get0_notAfter(obj->cert)));
        json_object_set_new(doc, "public_key", s_public_key(X509_get0_pubkey(obj->cert)));
        json_object_set_new(doc, "signature_algorithm",
                            s_signature_algorithm(X509_get_signature_nid(obj->cert)));
        s_set_extensions(doc, X509_get0_extensions(obj->cert), errors);
        break;
    case CF_X509_CSR:
        json_object_set_new(doc, "type", json_string("csr"));
        m = cf_name_from_openssl(X509_REQ_get_subject_name(obj->req), &err);
        s_set_model(doc, "subject", m, &err, errors);
        json_object_set_new(doc, "public_key", s_public_key(X509_REQ_get0_pubkey(obj->req)));
        json_object_set_new(doc, "signature_algorithm",
                            s_signature_algorithm(X509_REQ_get_signature_nid(obj->req)));
        /* A request keeps its extensions in an attribute that may not decode at all. */
        ERR_set_mark();
        STACK_OF(X509_EXTENSION) *req_exts = X509_REQ_get_extensions(obj->req);
        bool undecodable = !req_exts && ERR_peek_error() != 0;
        ERR_pop_to_mark();
        if (undecodable) {
            cf_error_set(&err, "invalid_der", "", "the request's extensions cannot be decoded");
            s_set_model(doc, "extensions", NULL, &err, errors);
        } else {
            s_set_extensions(doc, req_exts, errors);
        }
        sk_X509_EXTENSION_pop_free(req_exts, X509_EXTENSION_free);
        break;
    case CF_X509_CRL:
    default:
        json_object_set_new(doc, "type", json_string("crl"));
        json_object_set_new(doc, "version", json_integer(X509_CRL_get_version(obj->crl) + 1));
        m = cf_name_from_openssl(X509_CRL_get_issuer(obj->crl), &err);
        s_set_model(doc, "issuer", m, &err, errors);
        json_object_set_new(doc, "last_update", s_time(X509_CRL_get0_lastUpdate(obj->crl)));
        json_object_set_new(doc, "next_update", s_time(X509_CRL_get0_nextUpdate(obj->crl)));
        json_object_set_new(doc, "signature_algorithm",
                            s_signature_algorithm(X509_CRL_get_signature_nid(obj->crl)));
        json_object_set_new(doc, "entries", s_crl_entries(obj->crl));
        s_set_extensions(doc, X509_CRL_get0_extensions(obj->crl), errors);
        break;
    }
    json_object_set_new(doc, "fingerprints", s_fingerprints(obj));
    if (json_array_size(errors) > 0)
        json_object_set_new(doc, "errors", errors);
    else
        json_decref(errors);
    ERR_clear_error();
    return doc;
}

/* --- text -------------------------------------------------------------------------------- */

static void s_line(const char *label, const char *value)
{
    printf("  %-22s %s\n", label, value ? value : "-");
}

static const char *s_str(const json_t *doc, const char *key)
{
    return json_string_value(json_object_get(doc, key));
}

/* The reason a model is missing or shown raw, from the document's "errors"; NULL: none. */
static const char *s_error_find(const json_t *doc, const char *key)
{
    size_t i;
    json_t *e;
    json_array_foreach(json_object_get(doc, "errors"), i, e)
    {
        const char *field = s_str(e, "field");
        size_t klen = strlen(key);
        if (field && strncmp(field, key, klen) == 0 &&
            strchr(".[", field[klen] ? field[klen] : '.'))
            return s_str(e, "message");
    }
    return NULL;
}

static const char *s_error_for(const json_t *doc, const char *key)
{
    const char *message = s_error_find(doc, key);
    return message ? message : "unknown error";
}

static void s_name_line(const json_t *doc, const char *label, const char *key)
{
    const json_t *model = json_object_get(doc, key);
    if (json_is_null(model)) {
        printf("  %-22s (cannot be shown: %s)\n", label, s_error_for(doc, key));
        return;
    }
    char *text = cf_name_to_string(model);
    s_line(label, text);
    free(text);
}

void cf_x509_print_text(const json_t *doc)
{
    const char *type = s_str(doc, "type");
    bool crl = strcmp(type, "crl") == 0;
    printf("%s\n", strcmp(type, "certificate") == 0 ? "Certificate"
                   : crl                            ? "Certificate revocation list"
                                                    : "Certificate signing request");
    if (json_object_get(doc, "subject"))
        s_name_line(doc, "Subject:", "subject");
    if (json_object_get(doc, "issuer"))
        s_name_line(doc, "Issuer:", "issuer");
    if (json_object_get(doc, "serial"))
        s_line("Serial:", s_str(doc, "serial"));
    if (json_object_get(doc, "not_before")) {
        s_line("Not before:", s_str(doc, "not_before"));
        s_line("Not after:", s_str(doc, "not_after"));
    }
    if (crl) {
        s_line("Last update:", s_str(doc, "last_update"));
        s_line("Next update:", s_str(doc, "next_update"));
    }
    const json_t *pk = json_object_get(doc, "public_key");
    if (json_is_object(pk)) {
        char buf[160];
        const char *curve = s_str(pk, "curve");
        snprintf(buf, sizeof buf, "%s, %lld bits%s%s%s",
                 s_str(pk, "type") ? s_str(pk, "type") : "?",
                 (long long)json_integer_value(json_object_get(pk, "bits")), curve ? " (" : "",
                 curve ? curve : "", curve ? ")" : "");
        s_line("Public key:", buf);
    }
    s_line("Signature algorithm:", s_str(doc, "signature_algorithm"));
    const json_t *fp = json_object_get(doc, "fingerprints");
    s_line("SHA-256 fingerprint:", s_str(fp, "sha256"));
    s_line("SHA-512 fingerprint:", s_str(fp, "sha512"));
    if (crl) {
        const json_t *entries = json_object_get(doc, "entries");
        printf("  Revoked certificates:  %zu\n", json_array_size(entries));
        size_t i;
        json_t *e;
        json_array_foreach(entries, i, e)
        {
            const json_t *reason = json_object_get(e, "reason");
            char rbuf[32] = "";
            if (json_is_integer(reason))
                snprintf(rbuf, sizeof rbuf, "%lld", (long long)json_integer_value(reason));
            printf("    %s  revoked %s%s%s\n", s_str(e, "serial") ? s_str(e, "serial") : "?",
                   s_str(e, "revocation_date") ? s_str(e, "revocation_date") : "?",
                   json_is_null(reason) ? "" : "  reason ",
                   json_is_string(reason) ? json_string_value(reason) : rbuf);
        }
    }
    const json_t *exts = json_object_get(doc, "extensions");
    if (json_is_null(exts)) {
        printf("  Extensions:            (cannot be shown: %s)\n", s_error_for(doc, "extensions"));
        return;
    }
    if (json_array_size(exts) == 0)
        printf("  Extensions:            none\n");
    else
        printf("  Extensions:\n");
    size_t i;
    json_t *ext;
    json_array_foreach(exts, i, ext)
    {
        char key[32];
        snprintf(key, sizeof key, "extensions[%zu]", i);
        const char *bad = s_error_find(doc, key);
        if (bad)
            printf("    (cannot be decoded, shown raw: %s)\n", bad);
        char *text = cf_extension_to_text(ext);
        if (!text) {
            printf("    %s\n", s_str(ext, "type") ? s_str(ext, "type") : "?");
            continue;
        }
        /* Indent every line of the extension's text under the heading. */
        for (char *line = text, *next; line && *line; line = next) {
            next = strchr(line, '\n');
            if (next)
                *next++ = '\0';
            printf("    %s\n", line);
        }
        free(text);
    }
}

void cf_x509_object_clear(cf_x509_object_t *obj)
{
    X509_free(obj->cert);
    X509_REQ_free(obj->req);
    X509_CRL_free(obj->crl);
    memset(obj, 0, sizeof *obj);
}

json_t *cf_x509_describe_cert(X509 *cert)
{
    cf_x509_object_t obj = {.kind = CF_X509_CERT, .cert = cert};
    return cf_x509_describe(&obj);
}

/* --- serials and output ------------------------------------------------------------------ */

int cf_cli_serial_normalize(const char *in, char *out, size_t outlen)
{
    size_t n = 0;
    bool leading = true;
    for (const char *p = in; *p; p++) {
        if (*p == ':' || *p == ' ')
            continue;
        if (!isxdigit((unsigned char)*p))
            return -1;
        if (leading && *p == '0')
            continue; /* stored serials have no leading zero bytes */
        leading = false;
        if (n + 2 >= outlen)
            return -1;
        out[n++] = (char)toupper((unsigned char)*p);
    }
    if (n == 0 && outlen >= 2) {
        out[n++] = '0';
    } else if (n % 2 == 1) {
        /* Whole bytes, as BN_bn2hex writes them: "A1B" is stored as "0A1B". */
        if (n + 2 > outlen)
            return -1;
        memmove(out + 1, out, n);
        out[0] = '0';
        n++;
    }
    if (n == 0 || n >= outlen)
        return -1;
    out[n] = '\0';
    return 0;
}

char *cf_cli_serial_colons(const char *hex)
{
    size_t n = strlen(hex);
    char *out = malloc(n + n / 2 + 2);
    if (!out)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && i % 2 == 0)
            out[o++] = ':';
        out[o++] = hex[i];
    }
    out[o] = '\0';
    return out;
}

int cf_cli_write_certs(X509 *const *certs, int n, bool der, const char *path)
{
    bool to_stdout = !path || strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (!f)
        return -1;
    int rc = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        if (der) {
            unsigned char *buf = NULL;
            int len = i2d_X509(certs[i], &buf);
            if (len <= 0 || fwrite(buf, 1, (size_t)len, f) != (size_t)len)
                rc = -1;
            OPENSSL_free(buf);
        } else if (PEM_write_X509(f, certs[i]) != 1) {
            rc = -1;
        }
    }
    int saved = rc != 0 ? (errno ? errno : EIO) : 0;
    ERR_clear_error();
    if (fflush(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    if (!to_stdout && fclose(f) != 0 && rc == 0) {
        rc = -1;
        saved = errno;
    }
    errno = saved;
    return rc;
}

json_t *cf_cli_certs_json(X509 *const *certs, int n, bool der)
{
    json_t *out = json_array();
    for (int i = 0; i < n; i++) {
        char *text = NULL;
        if (der) {
            unsigned char *buf = NULL;
            int len = i2d_X509(certs[i], &buf);
            text = len > 0 ? cf_base64_encode(buf, (size_t)len) : NULL;
            OPENSSL_free(buf);
        } else {
            text = cf_cert_pem(certs[i]);
        }
        json_array_append_new(out, text ? json_string(text) : json_null());
        free(text);
    }
    ERR_clear_error();
    return out;
}

json_t *cf_cli_extensions_arg(const char *opt, const char *text)
{
    json_error_t jerr;
    json_t *in = json_loads(text, JSON_DECODE_ANY, &jerr);
    if (!in) {
        cf_cli_fail("%s is not JSON: %s (column %d)", opt, jerr.text, jerr.column);
        return NULL;
    }
    if (!json_is_object(in) && !json_is_array(in)) {
        json_decref(in);
        cf_cli_fail("%s must be an extension model {\"type\": ..., \"value\": ...} or a list "
                    "of them",
                    opt);
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *one;
    json_t *list = json_is_array(in) ? json_incref(in) : json_pack("[O]", in);
    json_array_foreach(list, i, one)
    {
        cf_error_t err = {0};
        json_t *model = cf_extension_parse(one, &err);
        if (!model) {
            if (err.field[0])
                cf_cli_fail("%s: %s (%s, field \"%s\")", opt, err.message, err.code, err.field);
            else
                cf_cli_fail("%s: %s (%s)", opt, err.message, err.code);
            json_decref(out);
            out = NULL;
            break;
        }
        json_array_append_new(out, model);
    }
    json_decref(list);
    json_decref(in);
    return out;
}

int cf_cli_parse_format(const char *text, bool *der)
{
    if (strcasecmp(text, "PEM") == 0)
        *der = false;
    else if (strcasecmp(text, "DER") == 0)
        *der = true;
    else {
        cf_cli_usage_error("--format is PEM or DER, not \"%s\"", text);
        return -1;
    }
    return 0;
}
