/* cf_jws: flattened JWS for ACME (RFC 8555 6.2, RFC 7515, RFC 7518 3.3-3.4, RFC 8037),
 * parsing and verification on the server side, signing on the client side, and key
 * authorizations (RFC 8555 8.1). */
#include "cf_jws.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_base64url.h"
#include "cf_key.h"

/* A JWS algorithm ACME accepts and the key it needs. */
typedef struct {
    const char *alg;   /* JOSE name */
    const char *type;  /* cf_key_type_name of the key */
    const char *curve; /* cf_key_curve of an EC key, NULL otherwise */
    const char *md;    /* digest name, NULL for EdDSA (it hashes internally) */
    size_t coord;      /* EC: bytes of r and of s in the raw signature */
} s_alg_t;

static const s_alg_t s_algs[] = {
    {"RS256", "RSA", NULL, "SHA256", 0},        {"ES256", "EC", "secp256r1", "SHA256", 32},
    {"ES384", "EC", "secp384r1", "SHA384", 48}, {"ES512", "EC", "secp521r1", "SHA512", 66},
    {"EdDSA", "Ed25519", NULL, NULL, 0},        {NULL, NULL, NULL, NULL, 0},
};

/* RSA keys below this size are refused: RFC 8555 leaves it to the server, the CA/B Forum
 * Baseline Requirements and every public ACME CA draw the line here. */
#define S_RSA_MIN_BITS 2048

static const s_alg_t *s_alg_by_name(const char *alg)
{
    for (const s_alg_t *a = s_algs; alg && a->alg; a++)
        if (strcmp(a->alg, alg) == 0)
            return a;
    return NULL;
}

static const s_alg_t *s_alg_by_key(const EVP_PKEY *key)
{
    const char *type = key ? cf_key_type_name(key) : NULL;
    if (!type)
        return NULL;
    const char *curve = strcmp(type, "EC") == 0 ? cf_key_curve(key) : NULL;
    for (const s_alg_t *a = s_algs; a->alg; a++) {
        if (strcmp(a->type, type) != 0)
            continue;
        if (!a->curve || (curve && strcmp(a->curve, curve) == 0))
            return a;
    }
    return NULL;
}

/* True when the JSON text nests no deeper than MAX. Checked before jansson sees the text, so
 * that the depth bound does not depend on the parser's own (recursive) limit. */
static bool s_depth_ok(const char *text, size_t len, int max)
{
    int depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++; /* the escaped character cannot end the string */
            else if (c == '"')
                in_string = false;
        } else if (c == '"') {
            in_string = true;
        } else if (c == '{' || c == '[') {
            if (++depth > max)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

/* A JSON object from LEN bytes of TEXT (duplicate members refused), or NULL. */
static json_t *s_load_object(const char *text, size_t len)
{
    if (!s_depth_ok(text, len, CF_JWS_MAX_DEPTH))
        return NULL;
    json_error_t jerr;
    json_t *v = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (v && !json_is_object(v)) {
        json_decref(v);
        return NULL;
    }
    return v;
}

/* The base64url string member NAME of OBJ, decoded (caller owns), or NULL + err. */
static unsigned char *s_member_b64(const json_t *obj, const char *name, const char **text,
                                   size_t *out_len, cf_error_t *err)
{
    json_t *v = json_object_get(obj, name);
    if (!json_is_string(v)) {
        cf_error_set(err, "malformed", name, "JWS member \"%s\" must be a string", name);
        return NULL;
    }
    unsigned char *data = cf_base64url_decode(json_string_value(v), json_string_length(v), out_len);
    if (!data) {
        cf_error_set(err, "malformed", name, "JWS member \"%s\" is not unpadded base64url", name);
        return NULL;
    }
    *text = json_string_value(v);
    return data;
}

/* Optional string member NAME of the protected header into *OUT. 0 or -1 + err. */
static int s_header_string(const json_t *header, const char *name, bool non_empty, const char **out,
                           cf_error_t *err)
{
    char field[64];
    snprintf(field, sizeof field, "protected.%s", name);
    json_t *v = json_object_get(header, name);
    *out = NULL;
    if (!v)
        return 0;
    if (!json_is_string(v) || (non_empty && json_string_length(v) == 0)) {
        cf_error_set(err, "malformed", field, "header parameter \"%s\" must be a%s string", name,
                     non_empty ? " non-empty" : "");
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

/* Check the protected header and fill the borrowed pointers of SELF. 0 or -1 + err. */
static int s_check_header(cf_jws_t *self, cf_error_t *err)
{
    const json_t *h = self->header;
    json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg)) {
        cf_error_set(err, "malformed", "protected.alg",
                     "header parameter \"alg\" is missing or not a string");
        return -1;
    }
    if (!s_alg_by_name(json_string_value(alg))) {
        cf_error_set(err, "badSignatureAlgorithm", "protected.alg",
                     "algorithm \"%.40s\" is not supported", json_string_value(alg));
        return -1;
    }
    self->alg = json_string_value(alg);
    /* RFC 7515 4.1.11: extensions we do not understand make the JWS unusable, and ACME
     * defines none. */
    if (json_object_get(h, "crit")) {
        cf_error_set(err, "malformed", "protected.crit",
                     "header parameter \"crit\" is not supported");
        return -1;
    }
    json_t *jwk = json_object_get(h, "jwk");
    json_t *kid = json_object_get(h, "kid");
    /* RFC 8555 6.2: exactly one, so the server never has to choose which key counts. */
    if ((jwk != NULL) == (kid != NULL)) {
        cf_error_set(err, "malformed", "protected",
                     "protected header must contain exactly one of \"jwk\" and \"kid\"");
        return -1;
    }
    if (jwk) {
        if (!json_is_object(jwk)) {
            cf_error_set(err, "malformed", "protected.jwk",
                         "header parameter \"jwk\" must be an object");
            return -1;
        }
        /* A private key sent in the clear is a client bug; storing it would be ours. */
        static const char *const secret[] = {"d", "p", "q", "dp", "dq", "qi", "oth", "k", NULL};
        for (int i = 0; secret[i]; i++) {
            if (json_object_get(jwk, secret[i])) {
                cf_error_set(err, "malformed", "protected.jwk",
                             "JWK must not contain private key member \"%s\"", secret[i]);
                return -1;
            }
        }
        self->jwk = jwk;
    }
    if (s_header_string(h, "kid", true, &self->kid, err) != 0 ||
        s_header_string(h, "nonce", false, &self->nonce, err) != 0 ||
        s_header_string(h, "url", false, &self->url, err) != 0)
        return -1;
    return 0;
}

cf_jws_t *cf_jws_parse(const char *body, size_t len, cf_error_t *err)
{
    json_t *outer = NULL;
    cf_jws_t *self = NULL;
    unsigned char *protected = NULL;
    const char *protected_b64 = NULL;
    const char *payload_b64 = NULL;
    const char *signature_b64 = NULL;
    size_t protected_len = 0;
    if (!body || len == 0) {
        cf_error_set(err, "malformed", "", "request body is empty");
        goto fail;
    }
    if (len > CF_JWS_MAX_BYTES) {
        cf_error_set(err, "malformed", "", "request body is longer than %d bytes",
                     CF_JWS_MAX_BYTES);
        goto fail;
    }
    outer = s_load_object(body, len);
    if (!outer) {
        cf_error_set(err, "malformed", "", "request body is not a JSON object");
        goto fail;
    }
    if (json_object_get(outer, "header")) {
        cf_error_set(err, "malformed", "header", "unprotected JWS header is not allowed");
        goto fail;
    }
    const char *name;
    json_t *value;
    json_object_foreach(outer, name, value)
    {
        if (strcmp(name, "protected") != 0 && strcmp(name, "payload") != 0 &&
            strcmp(name, "signature") != 0) {
            cf_error_set(err, "malformed", "",
                         "flattened JWS must have only \"protected\", \"payload\" and "
                         "\"signature\" members");
            goto fail;
        }
    }
    self = calloc(1, sizeof *self);
    if (!self) {
        cf_error_set(err, "internal", "", "out of memory");
        goto fail;
    }
    protected = s_member_b64(outer, "protected", &protected_b64, &protected_len, err);
    if (!protected)
        goto fail;
    self->header = protected_len ? s_load_object((const char *)protected, protected_len) : NULL;
    if (!self->header) {
        cf_error_set(err, "malformed", "protected", "protected header is not a JSON object");
        goto fail;
    }
    if (s_check_header(self, err) != 0)
        goto fail;
    self->payload = s_member_b64(outer, "payload", &payload_b64, &self->payload_len, err);
    if (!self->payload)
        goto fail;
    if (self->payload_len > 0) {
        self->payload_json = s_load_object((const char *)self->payload, self->payload_len);
        if (!self->payload_json) {
            cf_error_set(err, "malformed", "payload", "payload is not a JSON object");
            goto fail;
        }
    }
    self->signature = s_member_b64(outer, "signature", &signature_b64, &self->signature_len, err);
    if (!self->signature)
        goto fail;
    if (self->signature_len == 0) {
        cf_error_set(err, "malformed", "signature", "signature is empty");
        goto fail;
    }
    size_t plen = strlen(protected_b64);
    size_t ylen = strlen(payload_b64);
    self->signing_input = malloc(plen + 1 + ylen + 1);
    if (!self->signing_input) {
        cf_error_set(err, "internal", "", "out of memory");
        goto fail;
    }
    memcpy(self->signing_input, protected_b64, plen);
    self->signing_input[plen] = '.';
    memcpy(self->signing_input + plen + 1, payload_b64, ylen + 1);
    free(protected);
    json_decref(outer);
    return self;
fail:
    free(protected);
    cf_jws_destroy(&self);
    json_decref(outer);
    return NULL;
}

void cf_jws_destroy(cf_jws_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_jws_t *self = *self_p;
    json_decref(self->header);
    free(self->payload);
    json_decref(self->payload_json);
    free(self->signing_input);
    free(self->signature);
    free(self);
    *self_p = NULL;
}

/* DER ECDSA-Sig-Value from the raw r||s of RFC 7518 3.4 (caller owns), or NULL. */
static unsigned char *s_ecdsa_raw_to_der(const unsigned char *raw, size_t coord, int *der_len)
{
    unsigned char *der = NULL;
    ECDSA_SIG *sig = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(raw, (int)coord, NULL);
    BIGNUM *s = BN_bin2bn(raw + coord, (int)coord, NULL);
    if (!sig || !r || !s || ECDSA_SIG_set0(sig, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        goto out;
    }
    /* SIG owns R and S now. */
    *der_len = i2d_ECDSA_SIG(sig, &der);
    if (*der_len <= 0) {
        OPENSSL_free(der);
        der = NULL;
    }
out:
    ECDSA_SIG_free(sig);
    return der;
}

/* The raw r||s (2 * COORD bytes into RAW) of a DER ECDSA-Sig-Value. 0 or -1. */
static int s_ecdsa_der_to_raw(const unsigned char *der, size_t der_len, size_t coord,
                              unsigned char *raw)
{
    const unsigned char *p = der;
    ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &p, (long)der_len);
    int rc = -1;
    if (sig && BN_bn2binpad(ECDSA_SIG_get0_r(sig), raw, (int)coord) == (int)coord &&
        BN_bn2binpad(ECDSA_SIG_get0_s(sig), raw + coord, (int)coord) == (int)coord)
        rc = 0;
    ECDSA_SIG_free(sig);
    return rc;
}

int cf_jws_verify(const cf_jws_t *self, EVP_PKEY *key, cf_error_t *err)
{
    const s_alg_t *alg = self ? s_alg_by_name(self->alg) : NULL;
    const s_alg_t *fits = s_alg_by_key(key);
    const char *type = key ? cf_key_type_name(key) : NULL;
    if (!alg) {
        cf_error_set(err, "badSignatureAlgorithm", "protected.alg", "algorithm is not supported");
        return -1;
    }
    if (fits != alg) {
        const char *curve = type && strcmp(type, "EC") == 0 ? cf_key_curve(key) : NULL;
        cf_error_set(err, "badSignatureAlgorithm", "protected.alg",
                     "algorithm \"%s\" does not suit the key (%s%s%s)", alg->alg,
                     type ? type : "unsupported type", curve ? " " : "", curve ? curve : "");
        return -1;
    }
    if (strcmp(alg->type, "RSA") == 0 && cf_key_size(key) < S_RSA_MIN_BITS) {
        cf_error_set(err, "badSignatureAlgorithm", "protected.alg",
                     "RSA keys must have at least %d bits, this one has %d", S_RSA_MIN_BITS,
                     cf_key_size(key));
        return -1;
    }
    if (!self->signing_input || !self->signature) {
        cf_error_set(err, "unauthorized", "signature", "JWS has no signature");
        return -1;
    }
    const unsigned char *sig = self->signature;
    size_t sig_len = self->signature_len;
    unsigned char *der = NULL;
    int verified = 0;
    EVP_MD_CTX *ctx = NULL;
    if (alg->coord) {
        /* RFC 7518 3.4: exactly 2 * coordinate size; anything else is not a signature. */
        int der_len = 0;
        if (sig_len != 2 * alg->coord)
            goto out;
        der = s_ecdsa_raw_to_der(sig, alg->coord, &der_len);
        if (!der)
            goto out;
        sig = der;
        sig_len = (size_t)der_len;
    }
    ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestVerifyInit_ex(ctx, NULL, alg->md, NULL, NULL, key, NULL) != 1)
        goto out;
    /* RSA verification defaults to PKCS#1 v1.5 padding, which is what RS256 means. */
    verified = EVP_DigestVerify(ctx, sig, sig_len, (const unsigned char *)self->signing_input,
                                strlen(self->signing_input));
out:
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(der);
    ERR_clear_error();
    if (verified != 1) {
        cf_error_set(err, "unauthorized", "signature", "JWS signature does not verify");
        return -1;
    }
    return 0;
}

const char *cf_jws_alg_for_key(const EVP_PKEY *key)
{
    const s_alg_t *alg = s_alg_by_key(key);
    return alg ? alg->alg : NULL;
}

/* Sign LEN bytes of INPUT with KEY as ALG wants it; the JWS signature (caller owns). */
static unsigned char *s_sign(const s_alg_t *alg, EVP_PKEY *key, const char *input, size_t *out_len)
{
    unsigned char *sig = NULL;
    unsigned char *raw = NULL;
    size_t sig_len = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    if (!ctx || EVP_DigestSignInit_ex(ctx, NULL, alg->md, NULL, NULL, key, NULL) != 1 ||
        EVP_DigestSign(ctx, NULL, &sig_len, (const unsigned char *)input, strlen(input)) != 1 ||
        !(sig = malloc(sig_len)) ||
        EVP_DigestSign(ctx, sig, &sig_len, (const unsigned char *)input, strlen(input)) != 1)
        goto fail;
    EVP_MD_CTX_free(ctx);
    if (!alg->coord) {
        *out_len = sig_len;
        return sig;
    }
    /* OpenSSL gives DER; JOSE wants r and s as fixed-size big-endian numbers. */
    raw = malloc(2 * alg->coord);
    if (!raw || s_ecdsa_der_to_raw(sig, sig_len, alg->coord, raw) != 0) {
        free(raw);
        free(sig);
        return NULL;
    }
    free(sig);
    *out_len = 2 * alg->coord;
    return raw;
fail:
    EVP_MD_CTX_free(ctx);
    free(sig);
    return NULL;
}

char *cf_jws_sign(EVP_PKEY *key, const char *kid, const char *nonce, const char *url,
                  const char *payload, cf_error_t *err)
{
    const s_alg_t *alg = s_alg_by_key(key);
    char *out = NULL;
    char *header_text = NULL;
    char *protected_b64 = NULL;
    char *payload_b64 = NULL;
    char *input = NULL;
    char *sig_b64 = NULL;
    unsigned char *sig = NULL;
    size_t sig_len = 0;
    json_t *header = NULL;
    json_t *jws = NULL;
    if (!alg) {
        cf_error_set(err, "badSignatureAlgorithm", "protected.alg",
                     "no JWS algorithm for this key");
        return NULL;
    }
    header = json_object();
    if (!header || json_object_set_new(header, "alg", json_string(alg->alg)) != 0)
        goto fail;
    if (kid) {
        if (json_object_set_new(header, "kid", json_string(kid)) != 0)
            goto fail;
    } else {
        json_t *jwk = cf_key_public_jwk(key, err);
        if (!jwk || json_object_set_new(header, "jwk", jwk) != 0)
            goto fail;
    }
    if ((nonce && json_object_set_new(header, "nonce", json_string(nonce)) != 0) ||
        (url && json_object_set_new(header, "url", json_string(url)) != 0))
        goto fail;
    header_text = json_dumps(header, JSON_COMPACT);
    if (!header_text)
        goto fail;
    const char *body = payload ? payload : "";
    protected_b64 = cf_base64url_encode(header_text, strlen(header_text));
    payload_b64 = cf_base64url_encode(body, strlen(body));
    if (!protected_b64 || !payload_b64)
        goto fail;
    size_t plen = strlen(protected_b64);
    size_t ylen = strlen(payload_b64);
    input = malloc(plen + 1 + ylen + 1);
    if (!input)
        goto fail;
    memcpy(input, protected_b64, plen);
    input[plen] = '.';
    memcpy(input + plen + 1, payload_b64, ylen + 1);
    sig = s_sign(alg, key, input, &sig_len);
    if (!sig || !(sig_b64 = cf_base64url_encode(sig, sig_len)))
        goto fail;
    jws = json_pack("{s:s, s:s, s:s}", "protected", protected_b64, "payload", payload_b64,
                    "signature", sig_b64);
    if (!jws || !(out = json_dumps(jws, JSON_COMPACT)))
        goto fail;
    goto out;
fail:
    if (!cf_error_isset(err)) {
        cf_error_set(err, "internal", "", "could not sign JWS");
        cf_error_add_openssl(err);
    }
    ERR_clear_error();
out:
    json_decref(jws);
    json_decref(header);
    free(sig_b64);
    free(sig);
    free(input);
    free(payload_b64);
    free(protected_b64);
    free(header_text);
    return out;
}

/* True when TEXT is a non-empty run of base64url characters. */
static bool s_is_b64url_token(const char *text)
{
    if (!text || !*text)
        return false;
    for (const char *p = text; *p; p++) {
        char c = *p;
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_'))
            return false;
    }
    return true;
}

int cf_acme_key_authorization(const char *token, const json_t *jwk, char *out, size_t len)
{
    char thumbprint[CF_KEY_THUMBPRINT_MAX];
    /* The token ends up in URLs and HTTP bodies: only RFC 8555 8.1's alphabet may pass. */
    if (!out || !s_is_b64url_token(token) ||
        cf_key_jwk_thumbprint(jwk, thumbprint, sizeof thumbprint) != 0)
        return -1;
    int n = snprintf(out, len, "%s.%s", token, thumbprint);
    return n >= 0 && (size_t)n < len ? 0 : -1;
}

int cf_acme_dns01_value(const char *key_authorization, char *out, size_t len)
{
    unsigned char digest[32];
    unsigned int dlen = 0;
    if (!key_authorization || !out ||
        EVP_Digest(key_authorization, strlen(key_authorization), digest, &dlen, EVP_sha256(),
                   NULL) != 1)
        return -1;
    char *b64 = cf_base64url_encode(digest, dlen);
    int rc = -1;
    if (b64 && strlen(b64) < len) {
        memcpy(out, b64, strlen(b64) + 1);
        rc = 0;
    }
    free(b64);
    return rc;
}
