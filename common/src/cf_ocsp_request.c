/* cf_ocsp_request: the CertID of an OCSP request from untrusted bytes, the unsigned error
 * responses, and the tolerant base64 of the GET form. */
#include "cf_ocsp_request.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ocsp.h>
#include <openssl/objects.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CODE "malformed_request"

/* Each error response is SEQUENCE { responseStatus ENUMERATED } with no responseBytes:
 * five fixed bytes, so they are constants rather than built with OpenSSL at run time. */
static const unsigned char s_malformed[] = {0x30, 0x03, 0x0a, 0x01, CF_OCSP_MALFORMED_REQUEST};
static const unsigned char s_internal[] = {0x30, 0x03, 0x0a, 0x01, CF_OCSP_INTERNAL_ERROR};
static const unsigned char s_try_later[] = {0x30, 0x03, 0x0a, 0x01, CF_OCSP_TRY_LATER};
static const unsigned char s_unauthorized[] = {0x30, 0x03, 0x0a, 0x01, CF_OCSP_UNAUTHORIZED};

/* Copy an OCTET STRING hash into OUT; -1 when it does not fit. */
static int s_copy_hash(const ASN1_OCTET_STRING *s, unsigned char *out, size_t *out_len)
{
    int n = s ? ASN1_STRING_length(s) : -1;
    if (n <= 0 || n > CF_OCSP_HASH_MAX)
        return -1;
    memcpy(out, ASN1_STRING_get0_data(s), (size_t)n);
    *out_len = (size_t)n;
    return 0;
}

/* The serial as cf_serial_hex writes it (BN_bn2hex): whole octets in upper case without
 * leading zero octets, "0" for zero, "-" first when negative. -1 when too long. */
static int s_serial_hex(const ASN1_INTEGER *serial, char *out, size_t len)
{
    static const char hex[] = "0123456789ABCDEF";
    const unsigned char *p = ASN1_STRING_get0_data(serial);
    int n = ASN1_STRING_length(serial);
    if (!p || n < 0)
        return -1;
    while (n > 0 && *p == 0) {
        p++;
        n--;
    }
    if (n > CF_OCSP_SERIAL_MAX_OCTETS)
        return -1;
    size_t o = 0;
    if (n == 0) {
        snprintf(out, len, "0");
        return 0;
    }
    if (ASN1_STRING_type(serial) == V_ASN1_NEG_INTEGER)
        out[o++] = '-';
    if (o + 2 * (size_t)n + 1 > len)
        return -1;
    for (int i = 0; i < n; i++) {
        out[o++] = hex[p[i] >> 4];
        out[o++] = hex[p[i] & 0x0f];
    }
    out[o] = '\0';
    return 0;
}

int cf_ocsp_request_parse(const unsigned char *der, size_t len, cf_ocsp_certid_t *out,
                          cf_error_t *err)
{
    int rc = -1;
    OCSP_REQUEST *req = NULL;
    memset(out, 0, sizeof *out);
    if (!der || len == 0) {
        cf_error_set(err, S_CODE, "", "empty OCSP request");
        goto out;
    }
    if (len > CF_OCSP_REQUEST_MAX) {
        cf_error_set(err, S_CODE, "", "OCSP request of %zu bytes is over the limit of %d", len,
                     CF_OCSP_REQUEST_MAX);
        goto out;
    }
    const unsigned char *p = der;
    req = d2i_OCSP_REQUEST(NULL, &p, (long)len);
    if (!req) {
        cf_error_set(err, S_CODE, "", "not a DER OCSPRequest");
        cf_error_add_openssl(err);
        goto out;
    }
    /* A request followed by more bytes is not one DER value: refuse rather than guess. */
    if (p != der + len) {
        cf_error_set(err, S_CODE, "", "%zu bytes after the OCSPRequest", len - (size_t)(p - der));
        goto out;
    }
    int count = OCSP_request_onereq_count(req);
    if (count != 1) {
        cf_error_set(err, S_CODE, "", "OCSP request holds %d requests, exactly one is served",
                     count);
        goto out;
    }
    OCSP_CERTID *cid = OCSP_onereq_get0_id(OCSP_request_onereq_get0(req, 0));
    ASN1_OCTET_STRING *name_hash = NULL, *key_hash = NULL;
    ASN1_OBJECT *md = NULL;
    ASN1_INTEGER *serial = NULL;
    if (!cid || !OCSP_id_get0_info(&name_hash, &md, &key_hash, &serial, cid) || !md || !serial) {
        cf_error_set(err, S_CODE, "", "OCSP request without a complete CertID");
        goto out;
    }
    out->hash_nid = OBJ_obj2nid(md);
    if (s_copy_hash(name_hash, out->name_hash, &out->name_hash_len) != 0 ||
        s_copy_hash(key_hash, out->key_hash, &out->key_hash_len) != 0) {
        cf_error_set(err, S_CODE, "", "CertID hashes are empty or too long");
        goto out;
    }
    /* For a hash we know, both values must have its size: anything else cannot match. */
    const EVP_MD *evp = out->hash_nid != NID_undef ? EVP_get_digestbynid(out->hash_nid) : NULL;
    if (evp && ((size_t)EVP_MD_get_size(evp) != out->name_hash_len ||
                (size_t)EVP_MD_get_size(evp) != out->key_hash_len)) {
        cf_error_set(err, S_CODE, "", "CertID hashes do not have the size of %s",
                     OBJ_nid2sn(out->hash_nid));
        goto out;
    }
    if (s_serial_hex(serial, out->serial, sizeof out->serial) != 0) {
        cf_error_set(err, S_CODE, "", "serial number over %d octets", CF_OCSP_SERIAL_MAX_OCTETS);
        goto out;
    }
    out->has_nonce = OCSP_REQUEST_get_ext_by_NID(req, NID_id_pkix_OCSP_Nonce, -1) >= 0;
    rc = 0;
out:
    OCSP_REQUEST_free(req);
    /* Hostile input leaves OpenSSL errors behind: never let them leak into the next call. */
    ERR_clear_error();
    if (rc != 0)
        memset(out, 0, sizeof *out);
    return rc;
}

bool cf_ocsp_certid_is_sha1(const cf_ocsp_certid_t *id)
{
    return id->hash_nid == NID_sha1 && id->name_hash_len == 20 && id->key_hash_len == 20;
}

const unsigned char *cf_ocsp_error_response(cf_ocsp_error_status_t status, size_t *len)
{
    const unsigned char *der = NULL;
    switch (status) {
    case CF_OCSP_MALFORMED_REQUEST:
        der = s_malformed;
        break;
    case CF_OCSP_INTERNAL_ERROR:
        der = s_internal;
        break;
    case CF_OCSP_TRY_LATER:
        der = s_try_later;
        break;
    case CF_OCSP_UNAUTHORIZED:
        der = s_unauthorized;
        break;
    }
    if (der && len)
        *len = sizeof s_malformed;
    return der;
}

/* The value of one base64 character, or -1. */
static int s_b64_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+' || c == ' ' || c == '-')
        return 62;
    if (c == '/' || c == '_')
        return 63;
    return -1;
}

/* The character a "%XX" escape at P stands for, or 0 when it is not one we undo. */
static char s_escaped(const char *p, size_t left)
{
    if (left < 3 || p[0] != '%')
        return 0;
    char a = p[1], b = (char)(p[2] & ~0x20); /* upper-case the second digit */
    if (a == '2' && b == 'B')
        return '+';
    if (a == '2' && b == 'F')
        return '/';
    if (a == '3' && b == 'D')
        return '=';
    return 0;
}

unsigned char *cf_ocsp_base64_decode(const char *text, size_t text_len, size_t max, size_t *out_len)
{
    /* Every 4 characters give at most 3 bytes; escapes only make the output shorter. */
    size_t cap = text_len / 4 * 3 + 3;
    if (cap > max + 3)
        cap = max + 3;
    unsigned char *out = malloc(cap + 1);
    if (!out)
        return NULL;
    size_t n = 0;
    unsigned acc = 0;
    int bits = 0, quads = 0, pad = 0;
    for (size_t i = 0; i < text_len; i++) {
        char c = text[i];
        char e = s_escaped(text + i, text_len - i);
        if (e) {
            c = e;
            i += 2;
        }
        if (c == '=') {
            pad++;
            continue;
        }
        int v = s_b64_value(c);
        if (v < 0 || pad > 0) /* unknown character, or data after padding */
            goto fail;
        acc = (acc << 6) | (unsigned)v;
        bits += 6;
        quads = (quads + 1) % 4;
        if (bits >= 8) {
            bits -= 8;
            if (n >= max || n >= cap)
                goto fail;
            out[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* One character alone in its group carries no whole byte; padding must fill the group. */
    if (quads == 1 || pad > 2 || (pad > 0 && (quads + pad) % 4 != 0))
        goto fail;
    out[n] = 0;
    *out_len = n;
    return out;
fail:
    free(out);
    return NULL;
}
