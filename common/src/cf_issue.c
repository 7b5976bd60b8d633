/* cf_issue: certificate construction and signing. */
#include "cf_issue.h"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>
#include <stdlib.h>
#include <string.h>

#include "cf_msgpack.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"

ASN1_INTEGER *cf_serial_random(void)
{
    unsigned char raw[CF_SERIAL_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return NULL;
    /* Clear the top bit so the DER INTEGER is positive and never needs a 21st octet; a zero
     * first byte is fine (still at least 64 random bits in any case). */
    raw[0] &= 0x7f;
    raw[0] |= 0x40;
    BIGNUM *bn = BN_bin2bn(raw, sizeof raw, NULL);
    ASN1_INTEGER *serial = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
    BN_free(bn);
    return serial;
}

static json_t *s_key_id_model(const char *type, const unsigned char *id, size_t len)
{
    char *b64 = cf_base64_encode(id, len);
    json_t *m = NULL;
    if (!b64)
        return NULL;
    if (strcmp(type, "subject_key_identifier") == 0)
        m = json_pack("{s:s, s:b, s:s}", "type", type, "critical", 0, "value", b64);
    else
        m = json_pack("{s:s, s:b, s:{s:s, s:n, s:n}}", "type", type, "critical", 0, "value",
                      "key_identifier", b64, "authority_cert_issuer",
                      "authority_cert_serial_number");
    free(b64);
    return m;
}

static int s_key_sha1(EVP_PKEY *key, unsigned char out[20], cf_error_t *err)
{
    X509_PUBKEY *pub = NULL;
    const unsigned char *bits;
    int len;
    unsigned int mdlen;
    if (X509_PUBKEY_set(&pub, key) != 1 ||
        X509_PUBKEY_get0_param(NULL, &bits, &len, NULL, pub) != 1 ||
        EVP_Digest(bits, (size_t)len, out, &mdlen, EVP_sha1(), NULL) != 1) {
        X509_PUBKEY_free(pub);
        cf_error_set(err, "internal", "", "could not hash the public key");
        cf_error_add_openssl(err);
        return -1;
    }
    X509_PUBKEY_free(pub);
    return 0;
}

json_t *cf_issue_ski_model(EVP_PKEY *key, cf_error_t *err)
{
    unsigned char id[20];
    if (s_key_sha1(key, id, err) != 0)
        return NULL;
    return s_key_id_model("subject_key_identifier", id, sizeof id);
}

json_t *cf_issue_ski_model_pubkey(const X509_PUBKEY *pub, cf_error_t *err)
{
    const unsigned char *bits;
    int len;
    unsigned char id[20];
    unsigned int mdlen;
    if (X509_PUBKEY_get0_param(NULL, &bits, &len, NULL, pub) != 1 ||
        EVP_Digest(bits, (size_t)len, id, &mdlen, EVP_sha1(), NULL) != 1) {
        cf_error_set(err, "internal", "", "could not hash the public key");
        cf_error_add_openssl(err);
        return NULL;
    }
    return s_key_id_model("subject_key_identifier", id, sizeof id);
}

json_t *cf_issue_aki_model(X509 *issuer, cf_error_t *err)
{
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    if (ski)
        return s_key_id_model("authority_key_identifier", ASN1_STRING_get0_data(ski),
                              (size_t)ASN1_STRING_length(ski));
    unsigned char id[20];
    if (s_key_sha1(X509_get0_pubkey(issuer), id, err) != 0)
        return NULL;
    return s_key_id_model("authority_key_identifier", id, sizeof id);
}

/* Copy an encoded SubjectPublicKeyInfo into CERT without decoding the key: X509_set_pubkey
 * would encode the EVP_PKEY again through OpenSSL 3's encoder machinery, which costs more than
 * signing the certificate. */
static int s_copy_pubkey(X509 *cert, const X509_PUBKEY *from)
{
    ASN1_OBJECT *alg;
    const unsigned char *bits;
    int len;
    X509_ALGOR *algor;
    if (X509_PUBKEY_get0_param(&alg, &bits, &len, &algor, from) != 1)
        return -1;
    const ASN1_OBJECT *aobj;
    int ptype;
    const void *pval;
    X509_ALGOR_get0(&aobj, &ptype, &pval, algor);
    void *pcopy = NULL;
    if (ptype == V_ASN1_OBJECT)
        pcopy = OBJ_dup(pval);
    else if (ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OCTET_STRING)
        pcopy = ASN1_STRING_dup(pval);
    else if (ptype != V_ASN1_NULL && ptype != V_ASN1_UNDEF)
        return -1;
    unsigned char *copy = OPENSSL_memdup(bits, (size_t)len);
    ASN1_OBJECT *oid = OBJ_dup(aobj);
    if (!copy || !oid ||
        ((ptype == V_ASN1_OBJECT || ptype == V_ASN1_SEQUENCE || ptype == V_ASN1_OCTET_STRING) &&
         !pcopy) ||
        X509_PUBKEY_set0_param(X509_get_X509_PUBKEY(cert), oid, ptype, pcopy, copy, len) != 1) {
        OPENSSL_free(copy);
        ASN1_OBJECT_free(oid);
        return -1;
    }
    return 0;
}

X509 *cf_issue_cert(const cf_issue_t *req, cf_error_t *err)
{
    X509 *cert = X509_new();
    X509_NAME *subject = cf_name_to_openssl(req->subject, err);
    ASN1_INTEGER *serial = req->serial ? ASN1_INTEGER_dup(req->serial) : cf_serial_random();
    if (!cert || !subject || !serial) {
        if (!cf_error_isset(err))
            cf_error_set(err, "internal", "", "could not start the certificate");
        cf_error_prefix_field(err, "subject");
        goto fail;
    }
    if (X509_set_version(cert, 2) != 1 || X509_set_serialNumber(cert, serial) != 1 ||
        X509_set_subject_name(cert, subject) != 1 ||
        X509_set_issuer_name(cert, req->issuer_cert ? X509_get_subject_name(req->issuer_cert)
                                                    : subject) != 1 ||
        !ASN1_TIME_set(X509_getm_notBefore(cert), (time_t)req->not_before) ||
        !ASN1_TIME_set(X509_getm_notAfter(cert), (time_t)req->not_after) ||
        (req->public_key_info ? s_copy_pubkey(cert, req->public_key_info) != 0
                              : X509_set_pubkey(cert, req->public_key) != 1)) {
        cf_error_set(err, "internal", "", "could not fill in the certificate");
        cf_error_add_openssl(err);
        goto fail;
    }
    if (req->extensions && cf_extensions_add_to_cert(cert, req->extensions, err) != 0) {
        cf_error_prefix_field(err, "extensions");
        goto fail;
    }
    if (X509_sign(cert, req->issuer_key, req->md) <= 0) {
        cf_error_set(err, "signing_failed", "", "could not sign the certificate");
        cf_error_add_openssl(err);
        goto fail;
    }
    X509_NAME_free(subject);
    ASN1_INTEGER_free(serial);
    return cert;
fail:
    X509_free(cert);
    X509_NAME_free(subject);
    ASN1_INTEGER_free(serial);
    return NULL;
}

char *cf_cert_pem(X509 *cert)
{
    BIO *bio = BIO_new(BIO_s_mem());
    char *out = NULL;
    if (bio && PEM_write_bio_X509(bio, cert) == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        out = malloc((size_t)n + 1);
        if (out) {
            memcpy(out, data, (size_t)n);
            out[n] = '\0';
        }
    }
    BIO_free(bio);
    return out;
}

int cf_cert_der(X509 *cert, unsigned char **der)
{
    *der = NULL;
    return i2d_X509(cert, der);
}

int cf_issue_crl_shard(const ASN1_INTEGER *serial, int shards)
{
    if (shards <= 1)
        return 0;
    const unsigned char *b = ASN1_STRING_get0_data(serial);
    int len = ASN1_STRING_length(serial);
    uint32_t v = 0;
    for (int i = len > 4 ? len - 4 : 0; i < len; i++)
        v = (v << 8) | b[i];
    return (int)(v % (uint32_t)shards);
}
