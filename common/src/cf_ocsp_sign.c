/* cf_ocsp_sign: OCSP responses in the RFC 5019 profile, encoded without OpenSSL's OCSP
 * objects. Everything in a response but the serial, the status and the times is the same for
 * every certificate of a CA, so it is encoded once per responder (the template) and each
 * response costs one signature plus a few hundred bytes of copying:
 *
 *   OCSPResponse     SEQ { ENUM successful, [0] SEQ { id-pkix-ocsp-basic, OCTET {
 *   BasicOCSPResponse  SEQ { tbsResponseData, signatureAlgorithm, BIT STRING signature,
 *                            [0] SEQ { responder certificate } } } } }
 *   tbsResponseData  SEQ { [2] KeyHash (byKey), producedAt, SEQ { SingleResponse } }
 *   SingleResponse   SEQ { CertID, certStatus, thisUpdate, [0] nextUpdate,
 *                          [1] { invalidityDate }? }
 *   CertID           SEQ { sha1, OCTET issuerNameHash, OCTET issuerKeyHash, INTEGER serial }
 *
 * The version (v1, the DEFAULT) is left out as DER requires, and there is no nonce: these
 * responses are pre-signed and served to anyone who asks (RFC 5019 2.1.1, 2.2.1). */
#include "cf_ocsp.h"

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/params.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_key.h"
#include "cf_revocation.h"

/* The longest serial we encode: RFC 5280 allows 20 octets; imported certificates sometimes
 * carry a little more. */
#define S_SERIAL_MAX 64
#define S_GENTIME    17 /* 0x18 0x0f "YYYYMMDDHHMMSSZ" */
/* Room for the headers around BasicOCSPResponse: six headers of at most 5 octets (lengths
 * below 2^24), the 3 octets of responseStatus and the 11 of the OID. */
#define S_HEAD 48

typedef struct {
    unsigned char responder_id[24]; /* [2] EXPLICIT OCTET STRING (SHA-1 of the key bits) */
    unsigned char cert_id[55];      /* CertID up to the serial: sha1 AlgorithmIdentifier and
                                     * the issuer's name and key hashes, TLVs */
    unsigned char *sigalg;          /* signatureAlgorithm, DER */
    int sigalg_len;                 /* its length */
    unsigned char *certs;           /* [0] EXPLICIT SEQUENCE OF Certificate, DER */
    int certs_len;                  /* its length */
    EVP_MD_CTX *base;               /* initialised for signing: copied for each signature,
                                     * which is cheaper than a fresh EVP_DigestSignInit */
    EVP_MD_CTX *work;               /* the copy a signature is made with */
    size_t sig_max;                 /* the longest signature the key makes */
    unsigned char *sig;             /* room for one signature */
} s_signer_t;

static const unsigned char s_sha1_algid[] = {0x30, 0x09, 0x06, 0x05, 0x2b, 0x0e,
                                             0x03, 0x02, 0x1a, 0x05, 0x00};
static const unsigned char s_basic_oid[] = {0x06, 0x09, 0x2b, 0x06, 0x01, 0x05,
                                            0x05, 0x07, 0x30, 0x01, 0x01}; /* id-pkix-ocsp-basic */
static const unsigned char s_invalidity_oid[] = {0x06, 0x03, 0x55, 0x1d, 0x18};

/* ---------------------------------------------------------------- DER writing */

/* Octets a DER length takes. */
static size_t s_len_size(size_t len)
{
    size_t n = 1;
    if (len >= 0x80)
        for (size_t v = len; v; v >>= 8)
            n++;
    return n;
}

/* Octets of a whole TLV whose content is LEN long. */
static size_t s_tlv_size(size_t len)
{
    return 1 + s_len_size(len) + len;
}

/* Write tag and length at P; the next free octet. */
static unsigned char *s_put_hdr(unsigned char *p, unsigned char tag, size_t len)
{
    *p++ = tag;
    if (len < 0x80) {
        *p++ = (unsigned char)len;
        return p;
    }
    size_t n = s_len_size(len) - 1;
    *p++ = (unsigned char)(0x80 | n);
    for (size_t i = n; i-- > 0;)
        *p++ = (unsigned char)(len >> (8 * i));
    return p;
}

static unsigned char *s_put(unsigned char *p, const void *data, size_t len)
{
    memcpy(p, data, len);
    return p + len;
}

/* GeneralizedTime TLV (17 octets) for T. -1 when the year does not fit four digits. */
static int s_gentime(unsigned char out[S_GENTIME], int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if ((int64_t)tt != t || !gmtime_r(&tt, &tm) || tm.tm_year + 1900 < 1 ||
        tm.tm_year + 1900 > 9999)
        return -1;
    char text[16];
    snprintf(text, sizeof text, "%04d%02d%02d%02d%02d%02dZ", tm.tm_year + 1900, tm.tm_mon + 1,
             tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
    out[0] = 0x18;
    out[1] = 15;
    memcpy(out + 2, text, 15);
    return 0;
}

/* The INTEGER content (minimal, positive) of a hex serial into OUT. Its length, or -1 when it
 * is not hex or too long. */
static int s_serial(const char *hex, unsigned char out[S_SERIAL_MAX + 1])
{
    size_t n = hex ? strlen(hex) : 0;
    if (n == 0 || n > 2 * S_SERIAL_MAX + 2)
        return -1;
    unsigned char raw[S_SERIAL_MAX + 2];
    size_t len = (n + 1) / 2;
    for (size_t i = 0; i < len; i++) {
        /* An odd count: the first octet has one digit. */
        size_t at = i * 2 - (n % 2 ? 1 : 0);
        int hi = (n % 2 && i == 0) ? 0 : OPENSSL_hexchar2int((unsigned char)hex[at]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[at + 1]);
        if (hi < 0 || lo < 0)
            return -1;
        raw[i] = (unsigned char)(hi << 4 | lo);
    }
    size_t skip = 0;
    while (skip + 1 < len && raw[skip] == 0)
        skip++;
    len -= skip;
    size_t pad = (raw[skip] & 0x80) ? 1 : 0;
    if (len + pad > S_SERIAL_MAX + 1)
        return -1;
    out[0] = 0;
    memcpy(out + pad, raw + skip, len);
    return (int)(len + pad);
}

/* ---------------------------------------------------------------- the responder */

static void s_signer_free(s_signer_t *s)
{
    if (!s)
        return;
    OPENSSL_free(s->sigalg);
    OPENSSL_free(s->certs);
    EVP_MD_CTX_free(s->base);
    EVP_MD_CTX_free(s->work);
    OPENSSL_free(s->sig);
    free(s);
}

/* The signature hash: the SHA-2 hash the responder certificate was signed with, else
 * SHA-256. Responses must verify everywhere: RFC 5019 asks clients for SHA-256 only, and
 * OpenSSL 3.0 cannot even verify ECDSA with SHA-3. Ed25519/Ed448 take none. */
static const EVP_MD *s_default_md(X509 *cert, EVP_PKEY *key)
{
    if (!cf_key_default_algorithm(key))
        return NULL;
    int mdnid = NID_undef, pknid = NID_undef;
    if (OBJ_find_sigid_algs(X509_get_signature_nid(cert), &mdnid, &pknid)) {
        switch (mdnid) {
        case NID_sha224:
        case NID_sha256:
        case NID_sha384:
        case NID_sha512:
            return EVP_get_digestbynid(mdnid);
        default:
            break;
        }
    }
    return EVP_sha256();
}

static s_signer_t *s_signer_new(X509 *ca_cert, X509 *cert, EVP_PKEY *key, const EVP_MD *md,
                                cf_error_t *err)
{
    s_signer_t *s = calloc(1, sizeof *s);
    unsigned char name_hash[20], key_hash[20], resp_hash[20];
    unsigned int hl;
    unsigned char *name_der = NULL;
    int name_len;
    const unsigned char *bits;
    int bits_len;
    if (!s)
        goto fail;
    /* CertID: SHA-1 over the issuer's subject DER and over its public key's BIT STRING
     * contents (RFC 6960 4.1.1), as OCSP_cert_to_id (EVP_sha1 ()) computes them. */
    name_len = i2d_X509_NAME(X509_get_subject_name(ca_cert), &name_der);
    if (name_len <= 0 ||
        EVP_Digest(name_der, (size_t)name_len, name_hash, &hl, EVP_sha1(), NULL) != 1 ||
        X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, X509_get_X509_PUBKEY(ca_cert)) != 1 ||
        EVP_Digest(bits, (size_t)bits_len, key_hash, &hl, EVP_sha1(), NULL) != 1)
        goto fail;
    unsigned char *p = s_put(s->cert_id, s_sha1_algid, sizeof s_sha1_algid);
    p = s_put_hdr(p, 0x04, 20);
    p = s_put(p, name_hash, 20);
    p = s_put_hdr(p, 0x04, 20);
    s_put(p, key_hash, 20);
    /* ResponderID byKey: [2] EXPLICIT KeyHash (SHA-1 of the responder key's bits). */
    if (X509_PUBKEY_get0_param(NULL, &bits, &bits_len, NULL, X509_get_X509_PUBKEY(cert)) != 1 ||
        EVP_Digest(bits, (size_t)bits_len, resp_hash, &hl, EVP_sha1(), NULL) != 1)
        goto fail;
    p = s_put_hdr(s->responder_id, 0xa2, 22);
    p = s_put_hdr(p, 0x04, 20);
    s_put(p, resp_hash, 20);
    /* certs: [0] EXPLICIT SEQUENCE OF Certificate, the responder's alone. */
    unsigned char *cert_der = NULL;
    int cert_len = i2d_X509(cert, &cert_der);
    if (cert_len <= 0)
        goto fail;
    size_t seq = s_tlv_size((size_t)cert_len);
    s->certs_len = (int)s_tlv_size(seq);
    s->certs = OPENSSL_malloc((size_t)s->certs_len);
    if (!s->certs) {
        OPENSSL_free(cert_der);
        goto fail;
    }
    p = s_put_hdr(s->certs, 0xa0, seq);
    p = s_put_hdr(p, 0x30, (size_t)cert_len);
    s_put(p, cert_der, (size_t)cert_len);
    OPENSSL_free(cert_der);
    /* The signing context, and from it the AlgorithmIdentifier the provider writes for this
     * key and digest (the value X509_sign would put into a certificate). */
    s->base = EVP_MD_CTX_new();
    s->work = EVP_MD_CTX_new();
    if (!s->base || !s->work ||
        EVP_DigestSignInit_ex(s->base, NULL, md ? EVP_MD_get0_name(md) : NULL, NULL, NULL, key,
                              NULL) != 1)
        goto fail;
    unsigned char aid[128];
    OSSL_PARAM params[] = {
        OSSL_PARAM_octet_string(OSSL_SIGNATURE_PARAM_ALGORITHM_ID, aid, sizeof aid),
        OSSL_PARAM_END};
    if (EVP_PKEY_CTX_get_params(EVP_MD_CTX_get_pkey_ctx(s->base), params) != 1 ||
        !OSSL_PARAM_modified(&params[0]) || params[0].return_size == 0)
        goto fail;
    s->sigalg_len = (int)params[0].return_size;
    s->sigalg = OPENSSL_memdup(aid, params[0].return_size);
    s->sig_max = (size_t)EVP_PKEY_get_size(key);
    s->sig = OPENSSL_malloc(s->sig_max ? s->sig_max : 1);
    if (!s->sigalg || !s->sig || s->sig_max == 0)
        goto fail;
    OPENSSL_free(name_der);
    return s;
fail:
    cf_error_set(err, "internal", "", "could not prepare the OCSP responder");
    cf_error_add_openssl(err);
    OPENSSL_free(name_der);
    s_signer_free(s);
    return NULL;
}

cf_ocsp_responder_t *cf_ocsp_responder_new(int64_t id, int64_t ca_id, X509 *ca_cert, X509 *cert,
                                           EVP_PKEY *key, const EVP_MD *md, cf_error_t *err)
{
    if (!ca_cert || !cert || !key || !cf_key_matches_cert(key, cert)) {
        cf_error_set(err, "internal", "",
                     "the OCSP responder's private key does not match its certificate");
        return NULL;
    }
    if (!cf_key_default_algorithm(key))
        md = NULL; /* Ed25519 and Ed448 hash inside the signature */
    else if (!md)
        md = s_default_md(cert, key);
    cf_ocsp_responder_t *self = calloc(1, sizeof *self);
    if (!self) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    self->id = id;
    self->ca_id = ca_id;
    self->md = md;
    self->expires = 0;
    const ASN1_TIME *na = X509_get0_notAfter(cert);
    struct tm tm;
    if (na && ASN1_TIME_to_tm(na, &tm) == 1)
        self->expires = (int64_t)timegm(&tm);
    X509_up_ref(cert);
    self->cert = cert;
    EVP_PKEY_up_ref(key);
    self->key = key;
    if (!(self->signer = s_signer_new(ca_cert, cert, key, md, err)))
        cf_ocsp_responder_destroy(&self);
    return self;
}

void cf_ocsp_responder_destroy(cf_ocsp_responder_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_ocsp_responder_t *self = *self_p;
    s_signer_free(self->signer);
    X509_free(self->cert);
    EVP_PKEY_free(self->key);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- signing */

int cf_ocsp_sign(const cf_ca_t *ca, cf_ocsp_responder_t *responder, const cf_ocsp_status_t *st,
                 int64_t this_update, int64_t next_update, unsigned char **der, int *len,
                 cf_error_t *err)
{
    s_signer_t *s = responder ? responder->signer : NULL;
    *der = NULL;
    *len = 0;
    if (!s || !ca || !st || ca->id != responder->ca_id) {
        cf_error_set(err, "internal", "", "OCSP responder does not answer for this CA");
        return -1;
    }
    unsigned char serial[S_SERIAL_MAX + 1];
    int serial_len = s_serial(st->serial, serial);
    if (serial_len < 0) {
        cf_error_set(err, "invalid_value", "serial", "serial \"%.80s\" cannot be encoded",
                     st->serial ? st->serial : "");
        return -1;
    }
    unsigned char this_t[S_GENTIME], next_t[S_GENTIME], rev_t[S_GENTIME], inv_t[S_GENTIME];
    if (s_gentime(this_t, this_update) != 0 || s_gentime(next_t, next_update) != 0 ||
        next_update < this_update || (st->revoked && s_gentime(rev_t, st->revoked_date) != 0) ||
        (st->revoked && st->compromised && s_gentime(inv_t, st->compromised) != 0)) {
        cf_error_set(err, "invalid_value", "", "time out of range for an OCSP response");
        return -1;
    }
    int reason = -1;
    if (st->revoked && st->reason && *st->reason) {
        reason = cf_reason_code(st->reason);
        if (reason < 0) {
            cf_error_set(err, "invalid_value", "reason", "unknown revocation reason \"%.64s\"",
                         st->reason);
            return -1;
        }
        if (reason == 0)
            reason = -1; /* unspecified: left out, as RFC 5280 5.3.1 asks of CRLs */
    }
    /* Sizes, innermost first. */
    size_t cert_id = s_tlv_size(sizeof s->cert_id + s_tlv_size((size_t)serial_len));
    size_t revoked_info = S_GENTIME + (reason >= 0 ? 5 : 0);
    size_t status = st->revoked ? s_tlv_size(revoked_info) : 2;
    size_t ext = 0, exts = 0, ext_wrap = 0;
    if (st->revoked && st->compromised) {
        ext = s_tlv_size(sizeof s_invalidity_oid + s_tlv_size(S_GENTIME)); /* Extension */
        exts = s_tlv_size(ext);                                            /* Extensions */
        ext_wrap = s_tlv_size(exts);                                       /* [1] EXPLICIT */
    }
    size_t single_body = cert_id + status + S_GENTIME + (2 + S_GENTIME) + ext_wrap;
    size_t single = s_tlv_size(single_body);
    size_t responses = s_tlv_size(single);
    size_t tbs_body = sizeof s->responder_id + S_GENTIME + responses;
    size_t tbs_len = s_tlv_size(tbs_body);
    /* The output is built in one buffer: the tbsResponseData after S_HEAD octets kept free
     * for the outer headers, which depend on the signature's length and are written last. */
    size_t basic_max =
        tbs_len + (size_t)s->sigalg_len + s_tlv_size(s->sig_max + 1) + (size_t)s->certs_len;
    unsigned char *out = OPENSSL_malloc(S_HEAD + basic_max);
    if (!out) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    size_t head = S_HEAD;
    unsigned char *tbs = out + head, *p = tbs;
    p = s_put_hdr(p, 0x30, tbs_body);
    p = s_put(p, s->responder_id, sizeof s->responder_id);
    p = s_put(p, this_t, S_GENTIME); /* producedAt */
    p = s_put_hdr(p, 0x30, single);
    p = s_put_hdr(p, 0x30, single_body);
    p = s_put_hdr(p, 0x30, sizeof s->cert_id + s_tlv_size((size_t)serial_len));
    p = s_put(p, s->cert_id, sizeof s->cert_id);
    p = s_put_hdr(p, 0x02, (size_t)serial_len);
    p = s_put(p, serial, (size_t)serial_len);
    if (st->revoked) {
        p = s_put_hdr(p, 0xa1, revoked_info); /* revoked [1] IMPLICIT RevokedInfo */
        p = s_put(p, rev_t, S_GENTIME);
        if (reason >= 0) {
            p = s_put_hdr(p, 0xa0, 3); /* revocationReason [0] EXPLICIT CRLReason */
            p = s_put_hdr(p, 0x0a, 1);
            *p++ = (unsigned char)reason;
        }
    } else {
        p = s_put_hdr(p, 0x80, 0); /* good [0] IMPLICIT NULL */
    }
    p = s_put(p, this_t, S_GENTIME);
    p = s_put_hdr(p, 0xa0, S_GENTIME); /* nextUpdate [0] EXPLICIT */
    p = s_put(p, next_t, S_GENTIME);
    if (ext_wrap) {
        p = s_put_hdr(p, 0xa1, exts); /* singleExtensions [1] EXPLICIT */
        p = s_put_hdr(p, 0x30, ext);
        p = s_put_hdr(p, 0x30, sizeof s_invalidity_oid + s_tlv_size(S_GENTIME));
        p = s_put(p, s_invalidity_oid, sizeof s_invalidity_oid);
        p = s_put_hdr(p, 0x04, S_GENTIME);
        p = s_put(p, inv_t, S_GENTIME);
    }
    if ((size_t)(p - tbs) != tbs_len) {
        OPENSSL_free(out);
        cf_error_set(err, "internal", "", "OCSP response template is inconsistent");
        return -1;
    }
    size_t sig_len = s->sig_max;
    if (EVP_MD_CTX_copy_ex(s->work, s->base) != 1 ||
        EVP_DigestSign(s->work, s->sig, &sig_len, tbs, tbs_len) != 1) {
        OPENSSL_free(out);
        cf_error_set(err, "signing_failed", "", "could not sign the OCSP response");
        cf_error_add_openssl(err);
        return -1;
    }
    p = s_put(p, s->sigalg, (size_t)s->sigalg_len);
    p = s_put_hdr(p, 0x03, sig_len + 1);
    *p++ = 0; /* no unused bits */
    p = s_put(p, s->sig, sig_len);
    p = s_put(p, s->certs, (size_t)s->certs_len);
    size_t basic_body = (size_t)(p - tbs);
    size_t end = (size_t)(p - out);
    /* Now the headers, backwards from the tbsResponseData. */
    size_t basic = s_tlv_size(basic_body);
    size_t octets = s_tlv_size(basic);
    size_t rbytes_body = sizeof s_basic_oid + octets;
    size_t rbytes = s_tlv_size(rbytes_body);
    size_t resp_body = 3 + s_tlv_size(rbytes);
    size_t total = s_tlv_size(resp_body);
    if (total - basic_body > head) {
        OPENSSL_free(out);
        cf_error_set(err, "internal", "", "OCSP response is too large");
        return -1;
    }
    size_t start = head - (total - basic_body);
    unsigned char *q = out + start;
    q = s_put_hdr(q, 0x30, resp_body);
    q = s_put_hdr(q, 0x0a, 1);
    *q++ = 0; /* successful */
    q = s_put_hdr(q, 0xa0, rbytes);
    q = s_put_hdr(q, 0x30, rbytes_body);
    q = s_put(q, s_basic_oid, sizeof s_basic_oid);
    q = s_put_hdr(q, 0x04, basic);
    q = s_put_hdr(q, 0x30, basic_body);
    if (q != tbs || start + total != end) {
        OPENSSL_free(out);
        cf_error_set(err, "internal", "", "OCSP response layout is inconsistent");
        return -1;
    }
    if (start > 0)
        memmove(out, out + start, total);
    *der = out;
    *len = (int)total;
    return 0;
}
