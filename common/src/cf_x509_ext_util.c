/* cf_x509_ext_util: helpers every extension model uses: JSON field checks with the error
 * codes of cf_x509_ext.h, OIDs, integers (including ones beyond 64 bits), base64, general
 * names through cf_general_name.h, strict DER decoding and the text buffer. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>

#include "cf_general_name.h"
#include "cf_msgpack.h"
#include "cf_x509_ext_int.h"
#include "cf_x509_name.h"

/* RFC 5280 caps serial numbers and CRL numbers at 20 octets. */
#define S_BIGINT_MAX_OCTETS 20

void cf_ext_path_key(char *out, const char *parent, const char *key)
{
    snprintf(out, CF_ERROR_FIELD_MAX, "%s%s%s", parent, *parent ? "." : "", key);
}

void cf_ext_path_index(char *out, const char *parent, size_t i)
{
    snprintf(out, CF_ERROR_FIELD_MAX, "%s[%zu]", parent, i);
}

int cf_ext_check_object(const json_t *in, const char *what, const char *const *allowed,
                        const char *const *required, cf_error_t *err)
{
    if (!json_is_object(in)) {
        cf_error_set(err, "invalid_type", "", "%s must be an object", what);
        return -1;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)in, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            cf_error_set(err, "unknown_field", key, "unknown field \"%s\" in %s", key, what);
            return -1;
        }
    }
    for (const char *const *r = required; r && *r; r++) {
        if (!json_object_get(in, *r)) {
            cf_error_set(err, "missing_field", *r, "field \"%s\" is required in %s", *r, what);
            return -1;
        }
    }
    return 0;
}

int cf_ext_append(json_t *arr, json_t *item)
{
    if (!item)
        return -1;
    if (!arr) {
        json_decref(item);
        return -1;
    }
    /* json_array_append_new releases ITEM itself when it fails. */
    return json_array_append_new(arr, item) == 0 ? 0 : -1;
}

json_t *cf_ext_opt(const json_t *obj, const char *key)
{
    json_t *v = json_object_get(obj, key);
    return json_is_null(v) ? NULL : v;
}

int cf_ext_get_bool(const json_t *obj, const char *key, bool def, bool *out, cf_error_t *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v) {
        *out = def;
        return 0;
    }
    if (!json_is_boolean(v)) {
        cf_error_set(err, "invalid_type", key, "\"%s\" must be a boolean", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

int cf_ext_get_int(const json_t *v, const char *field, json_int_t min, json_int_t max,
                   json_int_t *out, cf_error_t *err)
{
    if (!json_is_integer(v)) {
        cf_error_set(err, "invalid_type", field, "value must be an integer");
        return -1;
    }
    json_int_t i = json_integer_value(v);
    if (i < min || i > max) {
        cf_error_set(err, "invalid_value", field,
                     "%" JSON_INTEGER_FORMAT " is out of range (%" JSON_INTEGER_FORMAT
                     " to %" JSON_INTEGER_FORMAT ")",
                     i, min, max);
        return -1;
    }
    *out = i;
    return 0;
}

int cf_ext_check_list(const json_t *v, const char *field, cf_error_t *err)
{
    if (!json_is_array(v)) {
        cf_error_set(err, "invalid_type", field, "value must be a list");
        return -1;
    }
    if (json_array_size(v) == 0) {
        cf_error_set(err, "empty_list", field, "list must not be empty");
        return -1;
    }
    return 0;
}

int cf_ext_check_unique(const json_t *arr, const char *field, cf_error_t *err)
{
    /* A JSON object keyed by each element's canonical text is the hash set: lists come from
     * untrusted input and may be long, so no pairwise comparison. */
    json_t *seen = json_object();
    int rc = -1;
    if (!seen)
        goto cleanup;
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        char *key = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
        if (!key)
            goto cleanup;
        if (json_object_get(seen, key)) {
            char path[CF_ERROR_FIELD_MAX];
            cf_ext_path_index(path, field, i);
            cf_error_set(err, "duplicate_value", path, "value occurs more than once: %.200s", key);
            free(key);
            goto cleanup;
        }
        int set = json_object_set_new(seen, key, json_true());
        free(key);
        if (set != 0)
            goto cleanup;
    }
    rc = 0;
cleanup:
    if (rc != 0 && !cf_error_isset(err))
        cf_error_set(err, "internal", field, "out of memory");
    json_decref(seen);
    return rc;
}

int cf_ext_set(json_t *obj, const char *key, json_t *value)
{
    /* json_object_set_new consumes VALUE even on failure; NULL means an earlier failure. */
    if (!value)
        return -1;
    return json_object_set_new(obj, key, value) == 0 ? 0 : -1;
}

json_t *cf_ext_parse_oid(const json_t *v, const char *field, cf_error_t *err)
{
    if (!json_is_string(v)) {
        cf_error_set(err, "invalid_type", field, "object identifier must be a string");
        return NULL;
    }
    const char *s = json_string_value(v);
    if (strlen(s) != json_string_length(v) || !cf_oid_is_valid(s)) {
        cf_error_set(err, "invalid_oid", field, "\"%.100s\" is not a valid object identifier", s);
        return NULL;
    }
    return json_string(s);
}

json_t *cf_ext_parse_base64(const json_t *v, const char *field, cf_error_t *err)
{
    if (!json_is_string(v)) {
        cf_error_set(err, "invalid_type", field, "value must be a base64 string");
        return NULL;
    }
    size_t n;
    unsigned char *raw = cf_base64_decode(json_string_value(v), json_string_length(v), &n);
    if (!raw) {
        cf_error_set(err, "invalid_base64", field, "value is not valid base64");
        return NULL;
    }
    /* Re-encoding gives the one canonical spelling ("kB==" and "kA==" are both 0x90). */
    json_t *out = cf_ext_base64_from_bytes(raw, n);
    free(raw);
    if (!out)
        cf_error_set(err, "internal", field, "out of memory");
    return out;
}

json_t *cf_ext_parse_bigint(const json_t *v, const char *field, cf_error_t *err)
{
    if (json_is_integer(v)) {
        if (json_integer_value(v) < 0) {
            cf_error_set(err, "invalid_value", field, "value must not be negative");
            return NULL;
        }
        return json_integer(json_integer_value(v));
    }
    if (!json_is_string(v)) {
        cf_error_set(err, "invalid_type", field, "value must be an integer");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > 64 || strspn(s, "0123456789") != len) {
        cf_error_set(err, "invalid_value", field, "value must be an integer or decimal digits");
        return NULL;
    }
    BIGNUM *bn = NULL;
    json_t *out = NULL;
    if (!BN_dec2bn(&bn, s)) {
        cf_error_set(err, "internal", field, "out of memory");
        goto cleanup;
    }
    if (BN_num_bytes(bn) > S_BIGINT_MAX_OCTETS) {
        cf_error_set(err, "invalid_value", field, "value is longer than %d octets",
                     S_BIGINT_MAX_OCTETS);
        goto cleanup;
    }
    ASN1_INTEGER *ai = BN_to_ASN1_INTEGER(bn, NULL);
    if (!ai) {
        cf_error_set(err, "internal", field, "out of memory");
        goto cleanup;
    }
    out = cf_ext_int_from_openssl(ai, true, field, err);
    ASN1_INTEGER_free(ai);
cleanup:
    BN_free(bn);
    ERR_clear_error();
    return out;
}

json_t *cf_ext_parse_text(const json_t *v, const char *field, bool ascii_only, cf_error_t *err)
{
    if (!json_is_string(v)) {
        cf_error_set(err, "invalid_type", field, "value must be a string");
        return NULL;
    }
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (strlen(s) != len) {
        cf_error_set(err, "invalid_value", field, "value must not contain NUL characters");
        return NULL;
    }
    for (size_t i = 0; ascii_only && i < len; i++) {
        if ((unsigned char)s[i] >= 0x80) {
            cf_error_set(err, "invalid_value", field, "value must be ASCII (IA5String)");
            return NULL;
        }
    }
    return json_incref((json_t *)v);
}

/* --- general names ----------------------------------------------------------------------- */

json_t *cf_ext_parse_general_names(const json_t *v, const char *field, cf_error_t *err)
{
    if (cf_ext_check_list(v, field, err) != 0)
        return NULL;
    json_t *out = cf_general_names_parse(v, err);
    if (!out) {
        cf_error_prefix_field(err, field);
        return NULL;
    }
    if (cf_ext_check_unique(out, field, err) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

json_t *cf_ext_parse_general_name(const json_t *v, const char *field, cf_error_t *err)
{
    json_t *out = cf_general_name_parse(v, err);
    if (!out)
        cf_error_prefix_field(err, field);
    return out;
}

GENERAL_NAMES *cf_ext_general_names_to_openssl(const json_t *list, const char *field,
                                               cf_error_t *err)
{
    GENERAL_NAMES *gns = cf_general_names_to_openssl(list, err);
    if (!gns)
        cf_error_prefix_field(err, field);
    return gns;
}

json_t *cf_ext_general_names_from_openssl(const GENERAL_NAMES *gns, const char *field,
                                          cf_error_t *err)
{
    json_t *out = cf_general_names_from_openssl(gns, err);
    if (!out)
        cf_error_prefix_field(err, field);
    return out;
}

/* --- OpenSSL values ---------------------------------------------------------------------- */

ASN1_OBJECT *cf_ext_oid_to_openssl(const char *oid, const char *field, cf_error_t *err)
{
    ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
    if (!obj) {
        cf_error_set(err, "invalid_oid", field, "\"%.100s\" is not a valid object identifier", oid);
        ERR_clear_error();
    }
    return obj;
}

json_t *cf_ext_oid_from_openssl(const ASN1_OBJECT *obj, const char *field, cf_error_t *err)
{
    char *text = cf_oid_from_openssl(obj);
    json_t *out = text ? json_string(text) : NULL;
    free(text);
    if (!out)
        cf_error_set(err, "invalid_der", field, "object identifier cannot be read");
    return out;
}

ASN1_INTEGER *cf_ext_int_to_openssl(const json_t *v, cf_error_t *err)
{
    ASN1_INTEGER *ai = NULL;
    if (json_is_integer(v)) {
        ai = ASN1_INTEGER_new();
        if (ai && !ASN1_INTEGER_set_int64(ai, json_integer_value(v))) {
            ASN1_INTEGER_free(ai);
            ai = NULL;
        }
    } else if (json_is_string(v)) {
        BIGNUM *bn = NULL;
        if (BN_dec2bn(&bn, json_string_value(v)))
            ai = BN_to_ASN1_INTEGER(bn, NULL);
        BN_free(bn);
    }
    if (!ai) {
        cf_error_set(err, "internal", "", "could not encode integer");
        cf_error_add_openssl(err);
    }
    return ai;
}

json_t *cf_ext_int_from_openssl(const ASN1_INTEGER *i, bool big, const char *field, cf_error_t *err)
{
    if (ASN1_STRING_type(i) == V_ASN1_NEG_INTEGER) {
        cf_error_set(err, "unsupported_value", field, "negative integers are not supported");
        return NULL;
    }
    int64_t v;
    if (ASN1_INTEGER_get_int64(&v, i))
        return json_integer((json_int_t)v);
    ERR_clear_error();
    if (!big) {
        cf_error_set(err, "unsupported_value", field, "integer is too large");
        return NULL;
    }
    BIGNUM *bn = ASN1_INTEGER_to_BN(i, NULL);
    char *dec = bn ? BN_bn2dec(bn) : NULL;
    json_t *out = dec ? json_string(dec) : NULL;
    OPENSSL_free(dec);
    BN_free(bn);
    if (!out) {
        cf_error_set(err, "unsupported_value", field, "integer cannot be read");
        ERR_clear_error();
    }
    return out;
}

json_t *cf_ext_string_from_openssl(const ASN1_STRING *s, const char *field, cf_error_t *err)
{
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, s);
    json_t *out = NULL;
    if (n >= 0 && !memchr(utf8, 0, (size_t)n))
        out = json_stringn((const char *)utf8, (size_t)n);
    OPENSSL_free(utf8);
    if (!out) {
        cf_error_set(err, "unsupported_value", field, "string cannot be read as UTF-8 text");
        ERR_clear_error();
    }
    return out;
}

json_t *cf_ext_base64_from_bytes(const unsigned char *data, size_t len)
{
    char *b64 = cf_base64_encode(data, len);
    json_t *out = b64 ? json_string(b64) : NULL;
    free(b64);
    return out;
}

ASN1_OCTET_STRING *cf_ext_octets_from_base64(const json_t *v, cf_error_t *err)
{
    size_t n = 0;
    unsigned char *raw = cf_base64_decode(json_string_value(v), json_string_length(v), &n);
    ASN1_OCTET_STRING *os = raw ? ASN1_OCTET_STRING_new() : NULL;
    if (os && !ASN1_OCTET_STRING_set(os, raw, (int)n)) {
        ASN1_OCTET_STRING_free(os);
        os = NULL;
    }
    free(raw);
    if (!os)
        cf_error_set(err, "invalid_base64", "", "value is not valid base64");
    return os;
}

int cf_ext_i2d(const void *val, const ASN1_ITEM *it, unsigned char **der, int *len, cf_error_t *err)
{
    *der = NULL;
    int n = ASN1_item_i2d((const ASN1_VALUE *)val, der, it);
    if (n <= 0) {
        cf_error_set(err, "internal", "", "could not encode extension");
        cf_error_add_openssl(err);
        *der = NULL;
        return -1;
    }
    *len = n;
    return 0;
}

void *cf_ext_d2i(const unsigned char *der, long len, const ASN1_ITEM *it, cf_error_t *err)
{
    const unsigned char *p = der;
    ASN1_VALUE *v = ASN1_item_d2i(NULL, &p, len, it);
    if (!v) {
        cf_error_set(err, "invalid_der", "", "extension value is not valid DER for its type");
        ERR_clear_error();
        return NULL;
    }
    if (p != der + len) {
        ASN1_item_free(v, it);
        cf_error_set(err, "invalid_der", "", "extension value has trailing bytes");
        return NULL;
    }
    return v;
}

/* --- text -------------------------------------------------------------------------------- */

static void s_append(cf_ext_buf_t *b, const char *s, size_t n)
{
    if (b->failed)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->failed = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
    memcpy(b->data + b->len, s, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void cf_ext_puts(cf_ext_buf_t *b, const char *s)
{
    s_append(b, s, strlen(s));
}

void cf_ext_line(cf_ext_buf_t *b, int indent, const char *fmt, ...)
{
    for (int i = 0; i < indent + b->base; i++)
        s_append(b, "  ", 2);
    va_list ap;
    va_start(ap, fmt);
    char small[512];
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->failed = true;
        return;
    }
    if ((size_t)n < sizeof small) {
        s_append(b, small, (size_t)n);
    } else {
        char *big = malloc((size_t)n + 1);
        if (!big) {
            b->failed = true;
            return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        s_append(b, big, (size_t)n);
        free(big);
    }
    s_append(b, "\n", 1);
}

void cf_ext_text_general_names(cf_ext_buf_t *b, int indent, const json_t *list)
{
    size_t i;
    json_t *gn;
    json_array_foreach(list, i, gn)
    {
        char *s = cf_general_name_to_string(gn);
        cf_ext_line(b, indent, "* %s", s ? s : "(unreadable)");
        free(s);
    }
}

char *cf_ext_hex_of_base64(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    size_t n;
    unsigned char *raw = cf_base64_decode(json_string_value(v), json_string_length(v), &n);
    if (!raw)
        return NULL;
    char *hex = malloc(n ? 3 * n : 1);
    if (hex) {
        size_t p = 0;
        for (size_t i = 0; i < n; i++) {
            if (i)
                hex[p++] = ':';
            snprintf(hex + p, 3, "%02X", raw[i]);
            p += 2;
        }
        hex[p] = '\0';
    }
    free(raw);
    return hex;
}
