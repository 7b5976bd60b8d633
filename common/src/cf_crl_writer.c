/* cf_crl_writer: signed X.509 v2 CRLs written entry by entry into one buffer (cf_crl.h).
 *
 * Buffer layout while entries are added:
 *
 *   [ room: headroom + outer header + TBS header + TBS prefix + revoked header ][ entries ]
 *
 * The TBS prefix (version, signature AlgorithmIdentifier, issuer, thisUpdate, nextUpdate) and
 * suffix (the [0] crlExtensions) come from an entry-less X509_CRL signed once in
 * cf_crl_writer_new. finish() writes the revoked header, the prefix and the TBS header right
 * before the entries, appends the suffix, signs the now contiguous TBS, appends the signature
 * AlgorithmIdentifier and BIT STRING and finally writes the outer header before the TBS. */
#include "cf_crl.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/x509v3.h>

/* Largest DER header we reserve room for: tag + 0x84 + four length octets. */
#define S_HDR_MAX 6
/* Bytes of one entry at most: 2 (SEQ) + 2 + 33 (INTEGER) + 17 (time) + 2 (extensions SEQ)
 * + 12 (reasonCode) + 26 (invalidityDate), rounded up. */
#define S_ENTRY_MAX 128
/* Typical size of an entry, for cf_crl_writer_reserve. */
#define S_ENTRY_TYPICAL 48

struct _cf_crl_writer_t {
    EVP_PKEY *key;         /* signing key (borrowed) */
    const EVP_MD *md;      /* digest, NULL for EdDSA (borrowed) */
    unsigned char *buf;    /* the one buffer */
    size_t cap;            /* bytes allocated */
    size_t room;           /* offset of the first entry: the room reserved in front */
    size_t end;            /* bytes used (entries end here until finish) */
    size_t entries;        /* entries added */
    unsigned char *prefix; /* TBS content up to nextUpdate (OPENSSL_malloc'd) */
    size_t prefix_len;     /* its length */
    unsigned char *suffix; /* TBS content after the revoked list: the [0] extensions */
    size_t suffix_len;     /* its length */
    unsigned char *alg;    /* outer signatureAlgorithm DER */
    size_t alg_len;        /* its length */
    size_t headroom;       /* caller's bytes before the DER */
    size_t der_off;        /* finished: where the DER starts */
    size_t der_len;        /* finished: its length; 0 before */
    bool finished;         /* finish ran (successfully or not): no more entries */
};

/* ---- DER helpers ---------------------------------------------------------------------- */

/* Octets of a DER length field for LEN. */
static size_t s_len_size(size_t len)
{
    if (len < 0x80)
        return 1;
    size_t n = 1;
    for (size_t v = len; v; v >>= 8)
        n++;
    return n;
}

/* Write TAG and the length LEN at OUT; the header's size. */
static size_t s_put_hdr(unsigned char *out, unsigned char tag, size_t len)
{
    size_t n = s_len_size(len);
    out[0] = tag;
    if (n == 1) {
        out[1] = (unsigned char)len;
    } else {
        out[1] = (unsigned char)(0x80 | (n - 1));
        for (size_t i = 0; i < n - 1; i++)
            out[1 + n - 1 - i] = (unsigned char)(len >> (8 * i));
    }
    return 1 + n;
}

/* Read the TLV at P (END bounds it): its tag, header size and content length. 0 or -1. */
static int s_get_tlv(const unsigned char *p, const unsigned char *end, unsigned char *tag,
                     size_t *hdr, size_t *len)
{
    if (end - p < 2)
        return -1;
    *tag = p[0];
    if (p[1] < 0x80) {
        *hdr = 2;
        *len = p[1];
    } else {
        size_t n = p[1] & 0x7f;
        if (n == 0 || n > 4 || (size_t)(end - p) < 2 + n)
            return -1;
        size_t v = 0;
        for (size_t i = 0; i < n; i++)
            v = (v << 8) | p[2 + i];
        *hdr = 2 + n;
        *len = v;
    }
    if ((size_t)(end - p) - *hdr < *len)
        return -1;
    return 0;
}

/* Days since 1970-01-01 -> civil date (proleptic Gregorian). */
static void s_civil(int64_t days, int64_t *y, int *m, int *d)
{
    days += 719468; /* days from 0000-03-01 to 1970-01-01 */
    int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    int64_t doe = days - era * 146097;                                   /* 0..146096 */
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365; /* 0..399 */
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);               /* 0..365 */
    int64_t mp = (5 * doy + 2) / 153;                                    /* 0..11, March first */
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

int cf_crl_der_time(unsigned char *out, int64_t t, bool generalized)
{
    /* Outside these bounds the year has more than four digits (and days * 86400 stays far
     * from overflowing). */
    if (t < -62167219200LL || t > 253402300799LL)
        return -1;
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t secs = t - days * 86400;
    int64_t year;
    int month, day;
    s_civil(days, &year, &month, &day);
    bool utc = !generalized && year >= 1950 && year <= 2049;
    int hh = (int)(secs / 3600), mi = (int)(secs / 60 % 60), ss = (int)(secs % 60);
    char text[20];
    if (utc)
        snprintf(text, sizeof text, "%02d%02d%02d%02d%02d%02dZ", (int)(year % 100), month, day, hh,
                 mi, ss);
    else
        snprintf(text, sizeof text, "%04d%02d%02d%02d%02d%02dZ", (int)year, month, day, hh, mi, ss);
    size_t n = strlen(text);
    out[0] = utc ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME;
    out[1] = (unsigned char)n;
    memcpy(out + 2, text, n);
    return (int)(n + 2);
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

/* SERIAL as a DER INTEGER into OUT (at least 2 + 1 + CF_CRL_SERIAL_HEX_MAX / 2 bytes). The
 * length, or -1 for an empty, too long or non-hex serial. */
static int s_serial_der(unsigned char *out, const char *serial)
{
    unsigned char digits[CF_CRL_SERIAL_HEX_MAX];
    size_t nd = 0;
    for (const char *p = serial; *p; p++) {
        if (*p == ':')
            continue;
        int v = s_hexval(*p);
        if (v < 0 || nd == sizeof digits)
            return -1;
        digits[nd++] = (unsigned char)v;
    }
    if (nd == 0)
        return -1;
    /* Pack into octets, a leading nibble alone when the count is odd. */
    unsigned char bytes[CF_CRL_SERIAL_HEX_MAX / 2 + 1];
    size_t nb = 0, i = 0;
    if (nd % 2)
        bytes[nb++] = digits[i++];
    for (; i < nd; i += 2)
        bytes[nb++] = (unsigned char)(digits[i] << 4 | digits[i + 1]);
    /* DER: no redundant leading zero octets; a 0x00 in front when the high bit is set, since
     * serials are positive. */
    size_t start = 0;
    while (start + 1 < nb && bytes[start] == 0 && !(bytes[start + 1] & 0x80))
        start++;
    bool pad = bytes[start] & 0x80;
    size_t len = nb - start + (pad ? 1 : 0);
    size_t pos = s_put_hdr(out, V_ASN1_INTEGER, len);
    if (pad)
        out[pos++] = 0;
    memcpy(out + pos, bytes + start, nb - start);
    return (int)(pos + nb - start);
}

/* Make sure NEED more bytes fit after END. 0 or -1. */
static int s_grow(cf_crl_writer_t *self, size_t need)
{
    if (self->cap - self->end >= need)
        return 0;
    size_t want = self->end + need;
    /* Grow by half: large blocks are mmap'd, so glibc's realloc moves them with mremap and
     * does not copy; the smaller factor keeps the slack low for huge CRLs. */
    size_t cap = self->cap + self->cap / 2;
    if (cap < want)
        cap = want;
    unsigned char *buf = realloc(self->buf, cap);
    if (!buf)
        return -1;
    self->buf = buf;
    self->cap = cap;
    return 0;
}

/* ---- the template ---------------------------------------------------------------------- */

/* The AuthorityKeyIdentifier of certificates and CRLs ISSUER signs: its SKI, else the SHA-1
 * of its public key (RFC 5280 4.2.1.2 method 1). */
static int s_add_aki(X509_CRL *crl, X509 *issuer)
{
    AUTHORITY_KEYID *akid = AUTHORITY_KEYID_new();
    if (!akid)
        return -1;
    int rc = -1;
    const ASN1_OCTET_STRING *ski = X509_get0_subject_key_id(issuer);
    if (ski) {
        akid->keyid = ASN1_OCTET_STRING_dup(ski);
    } else {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned int mdlen = 0;
        if (X509_pubkey_digest(issuer, EVP_sha1(), md, &mdlen) == 1 &&
            (akid->keyid = ASN1_OCTET_STRING_new()) != NULL &&
            ASN1_OCTET_STRING_set(akid->keyid, md, (int)mdlen) != 1) {
            ASN1_OCTET_STRING_free(akid->keyid);
            akid->keyid = NULL;
        }
    }
    if (akid->keyid && X509_CRL_add1_ext_i2d(crl, NID_authority_key_identifier, akid, 0, 0) == 1)
        rc = 0;
    AUTHORITY_KEYID_free(akid);
    return rc;
}

/* Build and sign the entry-less CRL; its DER into *DER (OPENSSL_malloc'd). 0 or -1 + err. */
static int s_template(X509 *issuer, EVP_PKEY *key, const EVP_MD *md, const cf_crl_info_t *info,
                      unsigned char **der, int *len, cf_error_t *err)
{
    int rc = -1;
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *t1 = ASN1_TIME_set(NULL, (time_t)info->this_update);
    ASN1_TIME *t2 = ASN1_TIME_set(NULL, (time_t)info->next_update);
    ASN1_INTEGER *number = ASN1_INTEGER_new();
    if (!crl || !t1 || !t2 || !number) {
        cf_error_set(err, "internal", "", "could not make the CRL template");
        goto out;
    }
    if (X509_CRL_set_version(crl, X509_CRL_VERSION_2) != 1 ||
        X509_CRL_set_issuer_name(crl, X509_get_subject_name(issuer)) != 1 ||
        X509_CRL_set1_lastUpdate(crl, t1) != 1 || X509_CRL_set1_nextUpdate(crl, t2) != 1 ||
        s_add_aki(crl, issuer) != 0 || ASN1_INTEGER_set_int64(number, info->number) != 1 ||
        X509_CRL_add1_ext_i2d(crl, NID_crl_number, number, 0, 0) != 1 ||
        (info->idp && X509_CRL_add_ext(crl, (X509_EXTENSION *)info->idp, -1) != 1)) {
        cf_error_set(err, "crypto_error", "", "could not make the CRL template");
        cf_error_add_openssl(err);
        goto out;
    }
    /* Signing fills in both AlgorithmIdentifiers exactly as OpenSSL would for this key and
     * digest (RSA, RSA-PSS, DSA, ECDSA, EdDSA); the signature itself is thrown away. */
    if (X509_CRL_sign(crl, key, md) <= 0) {
        cf_error_set(err, "crypto_error", "", "could not sign the CRL");
        cf_error_add_openssl(err);
        goto out;
    }
    *der = NULL;
    *len = i2d_X509_CRL(crl, der);
    if (*len <= 0) {
        cf_error_set(err, "crypto_error", "", "could not encode the CRL template");
        cf_error_add_openssl(err);
        goto out;
    }
    rc = 0;
out:
    ASN1_INTEGER_free(number);
    ASN1_TIME_free(t1);
    ASN1_TIME_free(t2);
    X509_CRL_free(crl);
    return rc;
}

/* Split the template's DER into the TBS prefix and suffix and the outer AlgorithmIdentifier. */
static int s_split(cf_crl_writer_t *self, const unsigned char *der, size_t len)
{
    const unsigned char *end = der + len, *p = der;
    unsigned char tag;
    size_t hdr, clen;
    if (s_get_tlv(p, end, &tag, &hdr, &clen) || tag != 0x30)
        return -1;
    p += hdr;
    /* tbsCertList */
    if (s_get_tlv(p, end, &tag, &hdr, &clen) || tag != 0x30)
        return -1;
    const unsigned char *tbs = p + hdr, *tbs_end = p + hdr + clen;
    const unsigned char *alg = tbs_end;
    /* signatureAlgorithm */
    if (s_get_tlv(alg, end, &tag, &hdr, &clen) || tag != 0x30)
        return -1;
    size_t alg_len = hdr + clen;
    /* TBS elements: version, signature, issuer, thisUpdate, nextUpdate, then an (empty)
     * revokedCertificates SEQUENCE if OpenSSL wrote one, then [0] crlExtensions. */
    const unsigned char *q = tbs;
    for (int i = 0; i < 5; i++) {
        if (s_get_tlv(q, tbs_end, &tag, &hdr, &clen))
            return -1;
        static const unsigned char want[] = {V_ASN1_INTEGER, 0x30, 0x30, 0, 0};
        if (i < 3 && tag != want[i])
            return -1;
        if (i >= 3 && tag != V_ASN1_UTCTIME && tag != V_ASN1_GENERALIZEDTIME)
            return -1;
        q += hdr + clen;
    }
    size_t prefix_len = (size_t)(q - tbs);
    if (q < tbs_end && *q == 0x30) {
        if (s_get_tlv(q, tbs_end, &tag, &hdr, &clen))
            return -1;
        q += hdr + clen;
    }
    if (q == tbs_end || *q != 0xA0)
        return -1;
    size_t suffix_len = (size_t)(tbs_end - q);
    self->prefix = OPENSSL_memdup(tbs, prefix_len);
    self->suffix = OPENSSL_memdup(q, suffix_len);
    self->alg = OPENSSL_memdup(alg, alg_len);
    if (!self->prefix || !self->suffix || !self->alg)
        return -1;
    self->prefix_len = prefix_len;
    self->suffix_len = suffix_len;
    self->alg_len = alg_len;
    return 0;
}

cf_crl_writer_t *cf_crl_writer_new(X509 *issuer, EVP_PKEY *key, const EVP_MD *md,
                                   const cf_crl_info_t *info, cf_error_t *err)
{
    if (!issuer || !key || !info) {
        cf_error_set(err, "internal", "", "a CRL needs an issuer, a key and its info");
        return NULL;
    }
    unsigned char probe[20];
    if (cf_crl_der_time(probe, info->this_update, false) < 0) {
        cf_error_set(err, "invalid_value", "this_update", "thisUpdate is out of range");
        return NULL;
    }
    if (cf_crl_der_time(probe, info->next_update, false) < 0 ||
        info->next_update <= info->this_update) {
        cf_error_set(err, "invalid_value", "next_update",
                     "nextUpdate must be after thisUpdate and before the year 10000");
        return NULL;
    }
    if (info->number < 0) {
        cf_error_set(err, "invalid_value", "number", "the CRL number must not be negative");
        return NULL;
    }
    if (info->headroom > 4096) {
        cf_error_set(err, "invalid_value", "headroom", "headroom is limited to 4096 bytes");
        return NULL;
    }
    cf_crl_writer_t *self = calloc(1, sizeof *self);
    if (!self) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    self->key = key;
    self->md = md;
    self->headroom = info->headroom;
    unsigned char *der = NULL;
    int len = 0;
    if (s_template(issuer, key, md, info, &der, &len, err) != 0)
        goto fail;
    if (s_split(self, der, (size_t)len) != 0) {
        cf_error_set(err, "internal", "", "could not take the CRL template apart");
        goto fail;
    }
    OPENSSL_free(der);
    der = NULL;
    /* Room for: headroom, outer header, TBS header, prefix, revoked header. */
    self->room = self->headroom + 3 * S_HDR_MAX + self->prefix_len;
    self->cap = self->room + 64 * S_ENTRY_TYPICAL;
    self->buf = malloc(self->cap);
    if (!self->buf) {
        cf_error_set(err, "internal", "", "out of memory");
        goto fail;
    }
    self->end = self->room;
    return self;
fail:
    OPENSSL_free(der);
    cf_crl_writer_destroy(&self);
    return NULL;
}

void cf_crl_writer_destroy(cf_crl_writer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_crl_writer_t *self = *self_p;
    free(self->buf);
    OPENSSL_free(self->prefix);
    OPENSSL_free(self->suffix);
    OPENSSL_free(self->alg);
    free(self);
    *self_p = NULL;
}

int cf_crl_writer_reserve(cf_crl_writer_t *self, size_t entries)
{
    if (entries > (SIZE_MAX - self->end) / S_ENTRY_TYPICAL - 1)
        return -1;
    size_t need = entries * S_ENTRY_TYPICAL + 1024;
    if (self->cap - self->end >= need)
        return 0;
    unsigned char *buf = realloc(self->buf, self->end + need);
    if (!buf)
        return -1;
    self->buf = buf;
    self->cap = self->end + need;
    return 0;
}

int cf_crl_writer_add(cf_crl_writer_t *self, const char *serial, int64_t revoked, int reason,
                      int64_t invalidity, cf_error_t *err)
{
    if (self->finished) {
        cf_error_set(err, "internal", "", "the CRL is finished: no entry can be added");
        return -1;
    }
    unsigned char body[S_ENTRY_MAX];
    size_t n = 0;
    int k = serial ? s_serial_der(body, serial) : -1;
    if (k < 0) {
        cf_error_set(err, "invalid_value", "serial",
                     "serial \"%.80s\" is not hex of at most %d digits", serial ? serial : "",
                     CF_CRL_SERIAL_HEX_MAX);
        return -1;
    }
    n += (size_t)k;
    k = cf_crl_der_time(body + n, revoked, false);
    if (k < 0) {
        cf_error_set(err, "invalid_value", "revocation_date", "revocation date is out of range");
        return -1;
    }
    n += (size_t)k;
    if (reason < 0 || reason > 10 || reason == 7) {
        cf_error_set(err, "invalid_value", "reason", "%d is not a CRLReason code", reason);
        return -1;
    }
    unsigned char exts[64];
    size_t en = 0;
    if (reason != 0) {
        /* Extension { extnID 2.5.29.21, extnValue OCTET STRING { ENUMERATED reason } } */
        static const unsigned char head[] = {0x30, 0x0A, 0x06, 0x03, 0x55, 0x1D,
                                             0x15, 0x04, 0x03, 0x0A, 0x01};
        memcpy(exts + en, head, sizeof head);
        en += sizeof head;
        exts[en++] = (unsigned char)reason;
    }
    if (invalidity != CF_CRL_NO_DATE) {
        unsigned char t[20];
        k = cf_crl_der_time(t, invalidity, true);
        if (k < 0) {
            cf_error_set(err, "invalid_value", "invalidity_date",
                         "invalidity date is out of range");
            return -1;
        }
        /* Extension { extnID 2.5.29.24, extnValue OCTET STRING { GeneralizedTime } } */
        static const unsigned char oid[] = {0x06, 0x03, 0x55, 0x1D, 0x18};
        en += s_put_hdr(exts + en, 0x30, sizeof oid + 2 + (size_t)k);
        memcpy(exts + en, oid, sizeof oid);
        en += sizeof oid;
        en += s_put_hdr(exts + en, V_ASN1_OCTET_STRING, (size_t)k);
        memcpy(exts + en, t, (size_t)k);
        en += (size_t)k;
    }
    if (en) {
        n += s_put_hdr(body + n, 0x30, en);
        memcpy(body + n, exts, en);
        n += en;
    }
    if (s_grow(self, n + 4) != 0) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    self->end += s_put_hdr(self->buf + self->end, 0x30, n);
    memcpy(self->buf + self->end, body, n);
    self->end += n;
    self->entries++;
    return 0;
}

size_t cf_crl_writer_entries(const cf_crl_writer_t *self)
{
    return self->entries;
}

size_t cf_crl_writer_size(const cf_crl_writer_t *self)
{
    return self->end;
}

int cf_crl_writer_finish(cf_crl_writer_t *self, cf_error_t *err)
{
    if (self->finished) {
        cf_error_set(err, "internal", "", "the CRL was finished before");
        return -1;
    }
    self->finished = true;
    size_t entries_len = self->end - self->room;
    /* RFC 5280 5.1.2.6: with no revoked certificates the list is left out altogether. */
    size_t rev_len = self->entries ? s_len_size(entries_len) + 1 + entries_len : 0;
    size_t tbs_content = self->prefix_len + rev_len + self->suffix_len;
    if (tbs_content > 0xFFFFFF00u) {
        cf_error_set(err, "invalid_value", "", "the CRL would be larger than 4 GiB");
        return -1;
    }
    size_t tbs_start = self->room;
    if (self->entries) {
        tbs_start -= 1 + s_len_size(entries_len);
        s_put_hdr(self->buf + tbs_start, 0x30, entries_len);
    }
    tbs_start -= self->prefix_len;
    memcpy(self->buf + tbs_start, self->prefix, self->prefix_len);
    tbs_start -= 1 + s_len_size(tbs_content);
    s_put_hdr(self->buf + tbs_start, 0x30, tbs_content);
    if (s_grow(self, self->suffix_len) != 0) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    memcpy(self->buf + self->end, self->suffix, self->suffix_len);
    self->end += self->suffix_len;
    size_t tbs_len = self->end - tbs_start;

    int rc = -1;
    unsigned char *sig = NULL;
    size_t siglen = 0;
    EVP_MD_CTX *mctx = EVP_MD_CTX_new();
    /* One-shot signing: EdDSA allows nothing else, and the TBS is contiguous anyway. */
    if (!mctx || EVP_DigestSignInit(mctx, NULL, self->md, NULL, self->key) != 1 ||
        EVP_DigestSign(mctx, NULL, &siglen, self->buf + tbs_start, tbs_len) != 1 ||
        !(sig = OPENSSL_malloc(siglen)) ||
        EVP_DigestSign(mctx, sig, &siglen, self->buf + tbs_start, tbs_len) != 1) {
        cf_error_set(err, "crypto_error", "", "could not sign the CRL");
        cf_error_add_openssl(err);
        goto out;
    }
    size_t bits_len = siglen + 1;
    if (s_grow(self, self->alg_len + 1 + s_len_size(bits_len) + bits_len) != 0) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    memcpy(self->buf + self->end, self->alg, self->alg_len);
    self->end += self->alg_len;
    self->end += s_put_hdr(self->buf + self->end, V_ASN1_BIT_STRING, bits_len);
    self->buf[self->end++] = 0; /* no unused bits */
    memcpy(self->buf + self->end, sig, siglen);
    self->end += siglen;
    size_t outer = self->end - tbs_start;
    size_t start = tbs_start - 1 - s_len_size(outer);
    s_put_hdr(self->buf + start, 0x30, outer);
    self->der_off = start;
    self->der_len = self->end - start;
    rc = 0;
out:
    OPENSSL_free(sig);
    EVP_MD_CTX_free(mctx);
    return rc;
}

unsigned char *cf_crl_writer_der(cf_crl_writer_t *self, size_t *len)
{
    if (!self->der_len) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = self->der_len;
    return self->buf + self->der_off;
}

unsigned char *cf_crl_writer_release(cf_crl_writer_t *self, size_t *offset, size_t *len)
{
    if (!self->der_len)
        return NULL;
    unsigned char *buf = self->buf;
    *offset = self->der_off;
    *len = self->der_len;
    self->buf = NULL;
    self->cap = 0;
    self->der_len = 0;
    return buf;
}
