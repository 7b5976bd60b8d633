/* cf_x509_name: django-ca's NameModel and NameAttributeModel as jansson values, the string
 * forms users type, and the conversion to and from OpenSSL's X509_NAME.
 *
 * Values are encoded the way python-cryptography (and so django-ca) encodes them, not the way
 * OpenSSL's string table would: UTF8String by default, PrintableString for country codes,
 * serialNumber and dnQualifier, IA5String for emailAddress and domainComponent, and a BIT STRING
 * with zero unused bits for x500UniqueIdentifier. */
#include "cf_x509_name.h"
#include "cf_model_util.h"

#include <ctype.h>
#include <openssl/asn1.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_msgpack.h"

#define S_OID_COMMON_NAME "2.5.4.3"
#define S_OID_X500_UID    "2.5.4.45"
/* Longest dotted OID we accept as text: far beyond any registered OID, short enough that
 * hostile input cannot make OpenSSL's bignum arc parser work hard. */
#define S_OID_TEXT_MAX 256

typedef struct {
    const char *oid;      /* dotted form: the model's normal form */
    const char *name;     /* name in string forms: django-ca's shortcut or RFC 4519 name */
    const char *alias[3]; /* further names accepted on input (case-insensitive) */
    int asn1_type;        /* ASN.1 type values are encoded with (python-cryptography's choice) */
    bool multiple;        /* may occur more than once in a name (django-ca's MULTIPLE_OIDS) */
    bool country;         /* a country code: exactly two characters */
} s_attr_type_t;

static const s_attr_type_t s_attr_types[] = {
    {"2.5.4.3", "CN", {"commonName"}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.6", "C", {"countryName"}, V_ASN1_PRINTABLESTRING, false, true},
    {"2.5.4.7", "L", {"localityName"}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.8", "ST", {"stateOrProvinceName"}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.9", "street", {"streetAddress"}, V_ASN1_UTF8STRING, true, false},
    {"2.5.4.10", "O", {"organizationName"}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.11", "OU", {"organizationalUnitName"}, V_ASN1_UTF8STRING, true, false},
    {"2.5.4.4", "SN", {"surname"}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.5", "serialNumber", {NULL}, V_ASN1_PRINTABLESTRING, false, false},
    {"2.5.4.12", "title", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.15", "businessCategory", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.16", "postalAddress", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.17", "postalCode", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.42", "givenName", {"GN"}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.43", "initials", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.44", "generationQualifier", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.45", "x500UniqueIdentifier", {NULL}, V_ASN1_BIT_STRING, false, false},
    {"2.5.4.46", "dnQualifier", {NULL}, V_ASN1_PRINTABLESTRING, false, false},
    {"2.5.4.65", "pseudonym", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"2.5.4.97", "organizationIdentifier", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"1.2.840.113549.1.9.1", "emailAddress", {NULL}, V_ASN1_IA5STRING, false, false},
    {"1.2.840.113549.1.9.2", "unstructuredName", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"0.9.2342.19200300.100.1.25", "DC", {"domainComponent"}, V_ASN1_IA5STRING, true, false},
    {"0.9.2342.19200300.100.1.1", "uid", {"userid", "userId"}, V_ASN1_UTF8STRING, false, false},
    {"1.3.6.1.4.1.311.60.2.1.1",
     "jurisdictionLocalityName",
     {"jurisdictionL"},
     V_ASN1_UTF8STRING,
     false,
     false},
    {"1.3.6.1.4.1.311.60.2.1.2",
     "jurisdictionStateOrProvinceName",
     {"jurisdictionST"},
     V_ASN1_UTF8STRING,
     false,
     false},
    {"1.3.6.1.4.1.311.60.2.1.3",
     "jurisdictionCountryName",
     {"jurisdictionC"},
     V_ASN1_PRINTABLESTRING,
     false,
     true},
    {"1.2.643.3.131.1.1", "inn", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"1.2.643.100.1", "ogrn", {NULL}, V_ASN1_UTF8STRING, false, false},
    {"1.2.643.100.3", "snils", {NULL}, V_ASN1_UTF8STRING, false, false},
    {NULL, NULL, {NULL}, 0, false, false},
};

static const s_attr_type_t *s_type_by_oid(const char *oid)
{
    for (const s_attr_type_t *t = s_attr_types; t->oid; t++)
        if (strcmp(t->oid, oid) == 0)
            return t;
    return NULL;
}

static const s_attr_type_t *s_type_by_name(const char *name)
{
    for (const s_attr_type_t *t = s_attr_types; t->oid; t++) {
        if (strcasecmp(t->name, name) == 0)
            return t;
        for (int i = 0; i < 3 && t->alias[i]; i++)
            if (strcasecmp(t->alias[i], name) == 0)
                return t;
    }
    return NULL;
}

const char *cf_name_oid_from_short(const char *short_name)
{
    const s_attr_type_t *t = short_name ? s_type_by_name(short_name) : NULL;
    return t ? t->oid : NULL;
}

const char *cf_name_short_from_oid(const char *oid)
{
    const s_attr_type_t *t = oid ? s_type_by_oid(oid) : NULL;
    return t ? t->name : NULL;
}

bool cf_oid_is_valid(const char *text)
{
    if (!text)
        return false;
    size_t len = strlen(text);
    if (len < 3 || len > S_OID_TEXT_MAX)
        return false;
    /* Syntax first: digits and single dots, no leading zeros, so that only the canonical
     * spelling of an OID is accepted and the model has one normal form. */
    int arcs = 0;
    unsigned long first = 0, second = 0;
    const char *p = text;
    while (*p) {
        if (!isdigit((unsigned char)*p))
            return false;
        const char *start = p;
        unsigned long v = 0;
        while (isdigit((unsigned char)*p)) {
            if (v < 1000000)
                v = v * 10 + (unsigned long)(*p - '0');
            p++;
        }
        if (*start == '0' && p - start > 1)
            return false;
        if (arcs == 0)
            first = v;
        else if (arcs == 1)
            second = v;
        arcs++;
        if (*p == '.') {
            p++;
            if (*p == '\0')
                return false;
        }
    }
    if (arcs < 2 || first > 2 || (first < 2 && second > 39))
        return false;
    ASN1_OBJECT *obj = OBJ_txt2obj(text, 1);
    if (!obj) {
        ERR_clear_error();
        return false;
    }
    ASN1_OBJECT_free(obj);
    return true;
}

char *cf_oid_from_openssl(const ASN1_OBJECT *obj)
{
    if (!obj)
        return NULL;
    char small[128];
    int n = OBJ_obj2txt(small, sizeof small, obj, 1);
    if (n <= 0) {
        ERR_clear_error();
        return NULL;
    }
    char *out = malloc((size_t)n + 1);
    if (!out)
        return NULL;
    if ((size_t)n < sizeof small)
        memcpy(out, small, (size_t)n + 1);
    else if (OBJ_obj2txt(out, n + 1, obj, 1) != n) {
        free(out);
        ERR_clear_error();
        return NULL;
    }
    return out;
}

/* --- validation helpers ------------------------------------------------------------------ */

static size_t s_utf8_chars(const char *s, size_t len)
{
    size_t n = 0;
    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            n++;
    return n;
}

static bool s_is_printable_string(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (!(isalnum(c) && c < 0x80) && !strchr(" '()+,-./:=?", c))
            return false;
    }
    return true;
}

/* The display name of an OID for messages: "commonName" where known, else the OID. */
static const char *s_display(const char *oid)
{
    const s_attr_type_t *t = s_type_by_oid(oid);
    if (!t)
        return oid;
    return t->alias[0] && strlen(t->name) <= 2 ? t->alias[0] : t->name;
}

/* --- models ------------------------------------------------------------------------------ */

json_t *cf_name_attribute_parse(const json_t *in, cf_error_t *err)
{
    static const char *const fields[] = {"oid", "value", NULL};
    if (!json_is_object(in)) {
        cf_error_set(err, "invalid_type", "", "name attribute must be an object");
        return NULL;
    }
    if (cf_model_check_fields(in, fields, err) != 0)
        return NULL;
    const json_t *joid = json_object_get(in, "oid");
    const json_t *jvalue = json_object_get(in, "value");
    if (!json_is_string(joid)) {
        cf_error_set(err, "invalid_type", "oid", "oid must be a string");
        return NULL;
    }
    const char *oid_text = json_string_value(joid);
    bool has_nul = strlen(oid_text) != json_string_length(joid);
    const s_attr_type_t *t = has_nul ? NULL : s_type_by_name(oid_text);
    const char *oid = t ? t->oid : oid_text;
    if (!t) {
        if (has_nul || !cf_oid_is_valid(oid_text)) {
            cf_error_set(err, "invalid_oid", "oid",
                         "\"%.64s\" is neither a dotted object identifier nor a known attribute "
                         "name",
                         oid_text);
            return NULL;
        }
        t = s_type_by_oid(oid);
    }
    if (!json_is_string(jvalue)) {
        cf_error_set(err, "invalid_type", "value", "value of attribute \"%s\" must be a string",
                     s_display(oid));
        return NULL;
    }
    const char *value = json_string_value(jvalue);
    size_t len = json_string_length(jvalue);
    if (memchr(value, '\0', len)) {
        cf_error_set(err, "invalid_value", "value",
                     "value of attribute \"%s\" must not contain a NUL character", s_display(oid));
        return NULL;
    }
    if (t && t->country && s_utf8_chars(value, len) != 2) {
        cf_error_set(err, "invalid_country_code", "value",
                     "country code \"%.64s\" must have exactly two characters", value);
        return NULL;
    }
    if (strcmp(oid, S_OID_COMMON_NAME) == 0 && len == 0) {
        cf_error_set(err, "invalid_value", "value", "commonName must not be empty");
        return NULL;
    }
    json_t *norm_value = NULL;
    if (t && t->asn1_type == V_ASN1_PRINTABLESTRING && !s_is_printable_string(value, len)) {
        cf_error_set(err, "invalid_value", "value",
                     "value of attribute \"%s\" must contain only PrintableString characters "
                     "(letters, digits, space and '()+,-./:=?)",
                     s_display(oid));
        return NULL;
    }
    if (t && t->asn1_type == V_ASN1_IA5STRING && !cf_model_is_ascii(value, len)) {
        cf_error_set(err, "invalid_value", "value", "value of attribute \"%s\" must be ASCII",
                     s_display(oid));
        return NULL;
    }
    if (strcmp(oid, S_OID_X500_UID) == 0) {
        /* Re-encode so that the model holds the one canonical base64 spelling. */
        size_t raw_len;
        unsigned char *raw = cf_base64_decode(value, len, &raw_len);
        if (!raw) {
            cf_error_set(err, "invalid_base64", "value",
                         "value of attribute \"x500UniqueIdentifier\" must be base64");
            return NULL;
        }
        char *b64 = cf_base64_encode(raw, raw_len);
        free(raw);
        norm_value = b64 ? json_string(b64) : NULL;
        free(b64);
    } else {
        norm_value = json_stringn(value, len);
    }
    json_t *out = norm_value ? json_pack("{s:s, s:o}", "oid", oid, "value", norm_value) : NULL;
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

json_t *cf_name_parse(const json_t *in, cf_error_t *err)
{
    if (!json_is_array(in)) {
        cf_error_set(err, "invalid_type", "", "name must be an array of attributes");
        return NULL;
    }
    json_t *out = json_array();
    json_t *seen = json_object(); /* OIDs met so far, as a set: names can be long */
    if (!out || !seen) {
        cf_error_set(err, "internal", "", "out of memory");
        goto fail;
    }
    size_t i;
    json_t *item;
    json_array_foreach(in, i, item)
    {
        char idx[32];
        snprintf(idx, sizeof idx, "[%zu]", i);
        json_t *attr = cf_name_attribute_parse(item, err);
        if (!attr) {
            cf_error_prefix_field(err, idx);
            goto fail;
        }
        const char *oid = json_string_value(json_object_get(attr, "oid"));
        const s_attr_type_t *t = s_type_by_oid(oid);
        if (json_object_get(seen, oid) && !(t && t->multiple)) {
            cf_error_set(err, "duplicate_attribute", "oid",
                         "attribute \"%s\" must not occur more than once in a name",
                         s_display(oid));
            cf_error_prefix_field(err, idx);
            json_decref(attr);
            goto fail;
        }
        if (json_object_set_new(seen, oid, json_true()) != 0 ||
            json_array_append_new(out, attr) != 0) {
            cf_error_set(err, "internal", "", "out of memory");
            goto fail;
        }
    }
    json_decref(seen);
    return out;
fail:
    json_decref(seen);
    json_decref(out);
    return NULL;
}

/* --- string forms ------------------------------------------------------------------------ */

typedef struct {
    char *data;  /* NUL-terminated text so far */
    size_t len;  /* bytes used, without the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed: the result is dropped */
} s_buf_t;

static void s_buf_putn(s_buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *d = realloc(b->data, cap);
        if (!d) {
            b->failed = true;
            return;
        }
        b->data = d;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

static void s_buf_puts(s_buf_t *b, const char *s)
{
    s_buf_putn(b, s, strlen(s));
}

static char *s_buf_finish(s_buf_t *b)
{
    if (!b->failed && !b->data)
        s_buf_putn(b, "", 0);
    if (b->failed) {
        free(b->data);
        return NULL;
    }
    return b->data;
}

/* Escape a value so that both string forms read it back unchanged: the separators of both
 * forms, '=', '+', '"', '\\' and RFC 4514's specials get a backslash; control characters, a
 * leading '#' or space and a trailing space are written as \XX. */
static void s_put_escaped(s_buf_t *b, const char *v, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)v[i];
        char hex[4];
        if (c < 0x20 || c == 0x7f || (i == 0 && (c == '#' || c == ' ')) ||
            (i == len - 1 && c == ' ')) {
            snprintf(hex, sizeof hex, "\\%02X", c);
            s_buf_puts(b, hex);
        } else if (strchr("/,=+\"\\<>;", c)) {
            char esc[3] = {'\\', (char)c, '\0'};
            s_buf_puts(b, esc);
        } else {
            s_buf_putn(b, (const char *)&c, 1);
        }
    }
}

static void s_put_attribute(s_buf_t *b, const json_t *attr)
{
    const char *oid = json_string_value(json_object_get(attr, "oid"));
    const json_t *value = json_object_get(attr, "value");
    const char *key = oid ? cf_name_short_from_oid(oid) : NULL;
    s_buf_puts(b, key ? key : (oid ? oid : "?"));
    s_buf_puts(b, "=");
    if (json_is_string(value))
        s_put_escaped(b, json_string_value(value), json_string_length(value));
}

char *cf_name_to_string(const json_t *model)
{
    if (!json_is_array(model))
        return NULL;
    s_buf_t b = {0};
    size_t i;
    json_t *attr;
    if (json_array_size(model) == 0)
        s_buf_puts(&b, "/");
    json_array_foreach(model, i, attr)
    {
        s_buf_puts(&b, "/");
        s_put_attribute(&b, attr);
    }
    return s_buf_finish(&b);
}

char *cf_name_to_rfc4514(const json_t *model)
{
    if (!json_is_array(model))
        return NULL;
    s_buf_t b = {0};
    for (size_t i = json_array_size(model); i > 0; i--) {
        if (i != json_array_size(model))
            s_buf_puts(&b, ",");
        s_put_attribute(&b, json_array_get(model, i - 1));
    }
    return s_buf_finish(&b);
}

static int s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* Read one "key=value" component starting at *PP, stopping at an unescaped separator of SEPS
 * (left unconsumed). Key and value are trimmed of unescaped blanks. 0, 1 (empty component), or
 * -1 with err set. */
static int s_read_component(const char **pp, const char *seps, s_buf_t *key, s_buf_t *value,
                            size_t index, cf_error_t *err)
{
    char idx[32];
    snprintf(idx, sizeof idx, "[%zu]", index);
    const char *p = *pp;
    while (*p == ' ' || *p == '\t')
        p++;
    if (*p == '\0' || strchr(seps, *p)) {
        *pp = p;
        return 1;
    }
    const char *kstart = p;
    while (*p && *p != '=' && !strchr(seps, *p))
        p++;
    if (*p != '=') {
        cf_error_set(err, "invalid_syntax", idx, "name component \"%.*s\" has no \"=\"",
                     (int)(p - kstart > 64 ? 64 : p - kstart), kstart);
        return -1;
    }
    const char *kend = p;
    while (kend > kstart && (kend[-1] == ' ' || kend[-1] == '\t'))
        kend--;
    s_buf_putn(key, kstart, (size_t)(kend - kstart));
    p++; /* '=' */
    while (*p == ' ' || *p == '\t')
        p++;
    bool quoted = *p == '"';
    if (quoted)
        p++;
    size_t keep = 0; /* value length up to the last character that is not a trailing blank */
    for (;;) {
        char c = *p;
        if (c == '\0') {
            if (quoted) {
                cf_error_set(err, "invalid_syntax", idx, "quoted value is not closed");
                return -1;
            }
            break;
        }
        if (quoted && c == '"') {
            p++;
            while (*p == ' ' || *p == '\t')
                p++;
            if (*p != '\0' && !strchr(seps, *p)) {
                cf_error_set(err, "invalid_syntax", idx, "text after a quoted value");
                return -1;
            }
            keep = value->len;
            break;
        }
        if (!quoted && strchr(seps, c))
            break;
        if (c == '\\') {
            if (p[1] == '\0') {
                cf_error_set(err, "invalid_syntax", idx, "name ends in a lone backslash");
                return -1;
            }
            int hi = s_hexval(p[1]), lo = hi >= 0 ? s_hexval(p[2]) : -1;
            if (hi >= 0 && lo >= 0) {
                char byte = (char)(hi * 16 + lo);
                s_buf_putn(value, &byte, 1);
                p += 3;
            } else {
                s_buf_putn(value, p + 1, 1);
                p += 2;
            }
            keep = value->len;
            continue;
        }
        s_buf_putn(value, p, 1);
        if (quoted || (c != ' ' && c != '\t'))
            keep = value->len;
        p++;
    }
    if (value->data)
        value->data[keep] = '\0';
    value->len = keep;
    *pp = p;
    return 0;
}

json_t *cf_name_from_string(const char *text, cf_error_t *err)
{
    if (!text) {
        cf_error_set(err, "invalid_type", "", "name must be a string");
        return NULL;
    }
    const char *p = text;
    while (*p == ' ' || *p == '\t')
        p++;
    /* "/C=AT/CN=x" is OpenSSL's form; anything else is RFC 4514's, read in the order written
     * (as django-ca does), with '+' of multi-valued RDNs flattened into separate attributes. */
    const char *seps = *p == '/' ? "/" : ",+";
    json_t *attrs = json_array();
    if (!attrs) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    size_t index = 0;
    while (*p) {
        if (strchr(seps, *p)) {
            p++;
            continue;
        }
        s_buf_t key = {0}, value = {0};
        int rc = s_read_component(&p, seps, &key, &value, index, err);
        if (rc == 0) {
            char idx[32];
            snprintf(idx, sizeof idx, "[%zu]", index);
            const char *k = key.data ? key.data : "";
            const char *oid = cf_name_oid_from_short(k);
            if (!oid && cf_oid_is_valid(k))
                oid = k;
            json_t *jv = json_stringn(value.data ? value.data : "", value.len);
            if (key.failed || value.failed) {
                cf_error_set(err, "internal", "", "out of memory");
                rc = -1;
            } else if (!oid) {
                cf_error_set(err, "invalid_oid", idx, "unknown name attribute \"%.64s\"", k);
                rc = -1;
            } else if (!jv) {
                cf_error_set(err, "invalid_value", idx, "value of \"%.64s\" is not valid UTF-8", k);
                rc = -1;
            } else if (json_array_append_new(
                           attrs, json_pack("{s:s, s:O}", "oid", oid, "value", jv)) != 0) {
                cf_error_set(err, "internal", "", "out of memory");
                rc = -1;
            }
            json_decref(jv);
            index++;
        }
        free(key.data);
        free(value.data);
        if (rc < 0) {
            json_decref(attrs);
            return NULL;
        }
    }
    json_t *out = cf_name_parse(attrs, err);
    json_decref(attrs);
    return out;
}

/* --- OpenSSL ----------------------------------------------------------------------------- */

X509_NAME *cf_name_to_openssl(const json_t *model, cf_error_t *err)
{
    json_t *norm = cf_name_parse(model, err);
    if (!norm)
        return NULL;
    X509_NAME *name = X509_NAME_new();
    if (!name) {
        cf_error_set(err, "internal", "", "could not allocate a name");
        cf_error_add_openssl(err);
        goto fail;
    }
    size_t i;
    json_t *attr;
    json_array_foreach(norm, i, attr)
    {
        const char *oid = json_string_value(json_object_get(attr, "oid"));
        const json_t *jvalue = json_object_get(attr, "value");
        const s_attr_type_t *t = s_type_by_oid(oid);
        int type = t ? t->asn1_type : V_ASN1_UTF8STRING;
        const unsigned char *bytes = (const unsigned char *)json_string_value(jvalue);
        size_t len = json_string_length(jvalue);
        unsigned char *raw = NULL;
        if (type == V_ASN1_BIT_STRING) {
            raw = cf_base64_decode((const char *)bytes, len, &len);
            bytes = raw;
        }
        ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
        X509_NAME_ENTRY *entry =
            obj && bytes && len <= INT32_MAX
                ? X509_NAME_ENTRY_create_by_OBJ(NULL, obj, type, bytes, (int)len)
                : NULL;
        if (entry && type == V_ASN1_BIT_STRING) {
            /* Left alone, OpenSSL drops trailing zero bits and bytes of a BIT STRING; the
             * identifier is opaque bytes, so say "no unused bits" like cryptography does. */
            ASN1_STRING *data = X509_NAME_ENTRY_get_data(entry);
            data->flags &= ~(long)0x07;
            data->flags |= ASN1_STRING_FLAG_BITS_LEFT;
        }
        int ok = entry && X509_NAME_add_entry(name, entry, -1, 0);
        X509_NAME_ENTRY_free(entry);
        ASN1_OBJECT_free(obj);
        free(raw);
        if (!ok) {
            char idx[32];
            snprintf(idx, sizeof idx, "[%zu]", i);
            cf_error_set(err, "invalid_value", idx, "could not encode attribute \"%s\"",
                         s_display(oid));
            cf_error_add_openssl(err);
            goto fail;
        }
    }
    json_decref(norm);
    return name;
fail:
    X509_NAME_free(name);
    json_decref(norm);
    return NULL;
}

/* One entry of an OpenSSL name as {"oid", "value"}, or NULL with err set. */
static json_t *s_entry_to_model(const X509_NAME_ENTRY *entry, cf_error_t *err)
{
    char *oid = cf_oid_from_openssl(X509_NAME_ENTRY_get_object(entry));
    const ASN1_STRING *data = X509_NAME_ENTRY_get_data(entry);
    json_t *value = NULL, *out = NULL;
    if (!oid || !data) {
        cf_error_set(err, "unsupported_value", "oid", "attribute has no valid object identifier");
        goto done;
    }
    if (strcmp(oid, S_OID_X500_UID) == 0) {
        /* The identifier is bytes (normally a BIT STRING; its unused-bits count is not part
         * of the model). Any other type is taken by its content octets. */
        char *b64 = cf_base64_encode(ASN1_STRING_get0_data(data), (size_t)ASN1_STRING_length(data));
        value = b64 ? json_string(b64) : NULL;
        free(b64);
    } else {
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, data);
        if (n < 0) {
            ERR_clear_error();
            cf_error_set(err, "unsupported_value", "value",
                         "value of attribute \"%s\" is not a string type (ASN.1 tag %d) or not "
                         "valid in its encoding",
                         s_display(oid), ASN1_STRING_type(data));
            goto done;
        }
        if (memchr(utf8, '\0', (size_t)n)) {
            cf_error_set(err, "unsupported_value", "value",
                         "value of attribute \"%s\" contains a NUL character", s_display(oid));
        } else {
            value = json_stringn((const char *)utf8, (size_t)n);
            if (!value)
                cf_error_set(err, "unsupported_value", "value",
                             "value of attribute \"%s\" is not valid UTF-8", s_display(oid));
        }
        OPENSSL_free(utf8);
        if (!value)
            goto done;
    }
    out = value ? json_pack("{s:s, s:O}", "oid", oid, "value", value) : NULL;
    if (!out && !cf_error_isset(err))
        cf_error_set(err, "internal", "", "out of memory");
done:
    json_decref(value);
    free(oid);
    return out;
}

json_t *cf_name_from_openssl(const X509_NAME *name, cf_error_t *err)
{
    if (!name) {
        cf_error_set(err, "invalid_value", "", "no name given");
        return NULL;
    }
    json_t *out = json_array();
    int count = X509_NAME_entry_count(name);
    for (int i = 0; out && i < count; i++) {
        json_t *attr = s_entry_to_model(X509_NAME_get_entry(name, i), err);
        if (!attr || json_array_append_new(out, attr) != 0) {
            char idx[32];
            snprintf(idx, sizeof idx, "[%d]", i);
            cf_error_prefix_field(err, idx);
            json_decref(out);
            return NULL;
        }
    }
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}
