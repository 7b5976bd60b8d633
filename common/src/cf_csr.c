/* cf_csr: certificate signing requests read without decoding their key (cf_csr.h). */
#include "cf_csr.h"

#include <openssl/asn1t.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <string.h>

/* SubjectPublicKeyInfo with the key left as bits (RFC 5280 4.1). */
typedef struct {
    X509_ALGOR *algor;
    ASN1_BIT_STRING *public_key;
} CF_SPKI;

ASN1_SEQUENCE(CF_SPKI) =
    {
        ASN1_SIMPLE(CF_SPKI, algor, X509_ALGOR),
        ASN1_SIMPLE(CF_SPKI, public_key, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CF_SPKI)

    /* CertificationRequestInfo (RFC 2986 4.1), its encoding kept as received: the signature is
     * over those bytes. */
    typedef struct {
    ASN1_ENCODING enc;
    ASN1_INTEGER *version;
    X509_NAME *subject;
    CF_SPKI *spki;
    STACK_OF(X509_ATTRIBUTE) * attributes;
} CF_REQ_INFO;

ASN1_SEQUENCE_enc(CF_REQ_INFO, enc, NULL) =
    {
        ASN1_SIMPLE(CF_REQ_INFO, version, ASN1_INTEGER),
        ASN1_SIMPLE(CF_REQ_INFO, subject, X509_NAME),
        ASN1_SIMPLE(CF_REQ_INFO, spki, CF_SPKI),
        /* Optional as in OpenSSL's own template: some requests leave the empty set out. */
        ASN1_IMP_SET_OF_OPT(CF_REQ_INFO, attributes, X509_ATTRIBUTE, 0),
} static_ASN1_SEQUENCE_END_ref(CF_REQ_INFO, CF_REQ_INFO)

    /* CertificationRequest (RFC 2986 4.2). */
    typedef struct {
    CF_REQ_INFO *info;
    X509_ALGOR *sig_alg;
    ASN1_BIT_STRING *signature;
} CF_REQ;

ASN1_SEQUENCE(CF_REQ) =
    {
        ASN1_SIMPLE(CF_REQ, info, CF_REQ_INFO),
        ASN1_SIMPLE(CF_REQ, sig_alg, X509_ALGOR),
        ASN1_SIMPLE(CF_REQ, signature, ASN1_BIT_STRING),
} static_ASN1_SEQUENCE_END(CF_REQ)

    /* A BIT STRING of whole octets (no unused bits), as keys and signatures are. */
    static bool s_whole_octets(const ASN1_BIT_STRING *bits)
{
    return !(bits->flags & ASN1_STRING_FLAG_BITS_LEFT) || (bits->flags & 0x07) == 0;
}

/* The verifying key of SPKI, made without the decoders: an EC key on a named curve, or an
 * Ed25519 key. NULL when the key is of another kind, or not a valid key (the usual way then
 * decides). */
static EVP_PKEY *s_fast_key(const CF_SPKI *spki)
{
    const ASN1_OBJECT *aobj;
    int ptype;
    const void *pval;
    X509_ALGOR_get0(&aobj, &ptype, &pval, spki->algor);
    if (!s_whole_octets(spki->public_key))
        return NULL;
    const unsigned char *bits = ASN1_STRING_get0_data(spki->public_key);
    int len = ASN1_STRING_length(spki->public_key);
    int nid = OBJ_obj2nid(aobj);
    if (nid == NID_ED25519 && ptype == V_ASN1_UNDEF && len == 32)
        return EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, bits, (size_t)len);
    if (nid != NID_X9_62_id_ecPublicKey || ptype != V_ASN1_OBJECT || len < 1 || bits[0] != 0x04)
        return NULL; /* compressed points and explicit curves: the usual way */
    /* The NIST curves certfleet makes keys on; any other (SM2 among them, which OpenSSL
     * treats as a key type of its own) goes the usual way. */
    int curve = OBJ_obj2nid(pval);
    if (curve != NID_X9_62_prime256v1 && curve != NID_secp384r1 && curve != NID_secp521r1)
        return NULL;
    const char *group = OSSL_EC_curve_nid2name(curve);
    if (!group)
        return NULL;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, (char *)group, 0),
        OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, (void *)bits, (size_t)len),
        OSSL_PARAM_construct_end(),
    };
    EVP_PKEY *key = NULL;
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
    /* fromdata reads the point with EC_POINT_oct2point, which refuses one off the curve. */
    if (!ctx || EVP_PKEY_fromdata_init(ctx) != 1 ||
        EVP_PKEY_fromdata(ctx, &key, EVP_PKEY_PUBLIC_KEY, params) != 1) {
        EVP_PKEY_free(key);
        key = NULL;
    }
    EVP_PKEY_CTX_free(ctx);
    return key;
}

/* The fast way: 1 read and verified, 0 not for this way (the usual way decides), -1 read
 * by the template but the signature does not verify. */
static int s_read_fast(const unsigned char *der, size_t len, cf_csr_t *out)
{
    const unsigned char *p = der;
    CF_REQ *req = (CF_REQ *)ASN1_item_d2i(NULL, &p, (long)len, ASN1_ITEM_rptr(CF_REQ));
    if (!req || p != der + len) {
        ASN1_item_free((ASN1_VALUE *)req, ASN1_ITEM_rptr(CF_REQ));
        return 0;
    }
    int rc = 0;
    EVP_PKEY *key = NULL;
    EVP_MD_CTX *md = NULL;
    X509_PUBKEY *pub = NULL;
    const ASN1_OBJECT *sig_obj;
    int sig_ptype, md_nid, pk_nid;
    X509_ALGOR_get0(&sig_obj, &sig_ptype, NULL, req->sig_alg);
    int sig_nid = OBJ_obj2nid(sig_obj);
    /* ECDSA and Ed25519 signature algorithms carry no parameters (RFC 5758 3.2, RFC 8410 3). */
    if (sig_ptype != V_ASN1_UNDEF || !OBJ_find_sigid_algs(sig_nid, &md_nid, &pk_nid) ||
        !s_whole_octets(req->signature) || !(key = s_fast_key(req->info->spki)))
        goto out;
    bool ed = EVP_PKEY_is_a(key, "ED25519");
    if ((ed && (sig_nid != NID_ED25519 || md_nid != NID_undef)) ||
        (!ed && (pk_nid != NID_X9_62_id_ecPublicKey || md_nid == NID_undef)))
        goto out;
    rc = -1;
    md = EVP_MD_CTX_new();
    if (!md ||
        EVP_DigestVerifyInit_ex(md, NULL, ed ? NULL : OBJ_nid2sn(md_nid), NULL, NULL, key, NULL) !=
            1 ||
        EVP_DigestVerify(md, ASN1_STRING_get0_data(req->signature),
                         (size_t)ASN1_STRING_length(req->signature), req->info->enc.enc,
                         (size_t)req->info->enc.len) != 1)
        goto out;
    /* The SubjectPublicKeyInfo for the certificate, as received: algorithm and bits copied,
     * nothing decoded. */
    const ASN1_OBJECT *aobj;
    int ptype;
    const void *pval;
    X509_ALGOR_get0(&aobj, &ptype, &pval, req->info->spki->algor);
    ASN1_OBJECT *oid = OBJ_dup(aobj);
    void *param = ptype == V_ASN1_OBJECT ? (void *)OBJ_dup(pval) : NULL;
    int klen = ASN1_STRING_length(req->info->spki->public_key);
    unsigned char *bits =
        OPENSSL_memdup(ASN1_STRING_get0_data(req->info->spki->public_key), (size_t)klen);
    if (!(pub = X509_PUBKEY_new()) || !oid || (ptype == V_ASN1_OBJECT && !param) || !bits ||
        X509_PUBKEY_set0_param(pub, oid, ptype, param, bits, klen) != 1) {
        ASN1_OBJECT_free(oid);
        ASN1_OBJECT_free(param);
        OPENSSL_free(bits);
        goto out;
    }
    out->subject = req->info->subject;
    out->pubkey = pub;
    out->own_pubkey = pub;
    out->parsed = req;
    out->fast = true;
    pub = NULL;
    req = NULL;
    rc = 1;
out:
    X509_PUBKEY_free(pub);
    EVP_MD_CTX_free(md);
    EVP_PKEY_free(key);
    ASN1_item_free((ASN1_VALUE *)req, ASN1_ITEM_rptr(CF_REQ));
    return rc;
}

int cf_csr_read(const unsigned char *der, size_t len, cf_csr_t *out, cf_error_t *err)
{
    memset(out, 0, sizeof *out);
    out->der = der;
    out->der_len = len;
    int fast = len > 0 && len < 1L << 20 ? s_read_fast(der, len, out) : 0;
    if (fast == 1) {
        ERR_clear_error();
        return 0;
    }
    if (fast == 0) {
        const unsigned char *p = der;
        X509_REQ *req = len < 1L << 20 ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
        EVP_PKEY *pub = req && p == der + len ? X509_REQ_get0_pubkey(req) : NULL;
        if (pub && X509_REQ_verify(req, pub) == 1) {
            out->subject = X509_REQ_get_subject_name(req);
            out->pubkey = X509_REQ_get_X509_PUBKEY(req);
            out->parsed = req;
            ERR_clear_error();
            return 0;
        }
        bool parsed = req && p == der + len;
        X509_REQ_free(req);
        if (!parsed) {
            ERR_clear_error();
            memset(out, 0, sizeof *out);
            cf_error_set(err, "invalid_csr", "params.csr", "CSR is neither PEM nor DER");
            return -1;
        }
    }
    ERR_clear_error();
    memset(out, 0, sizeof *out);
    cf_error_set(err, "invalid_csr", "params.csr", "CSR signature does not verify");
    return -1;
}

void cf_csr_clear(cf_csr_t *csr)
{
    if (csr->fast)
        ASN1_item_free((ASN1_VALUE *)csr->parsed, ASN1_ITEM_rptr(CF_REQ));
    else
        X509_REQ_free(csr->parsed);
    X509_PUBKEY_free(csr->own_pubkey);
    memset(csr, 0, sizeof *csr);
}
