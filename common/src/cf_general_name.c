/* cf_general_name: django-ca's GeneralNameModel and OtherNameModel as jansson values, their
 * validation and normal forms, the "TYPE:value" text form, and GENERAL_NAME conversion.
 *
 * Validation follows django-ca's validators for ASCII input (IDNA is not applied: names must
 * already be in A-label form), and what python-cryptography refuses when it encodes. */
#include "cf_general_name.h"
#include "cf_model_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <openssl/asn1.h>
#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/objects.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "cf_x509_name.h"

/* Longest INTEGER given as a string: 2048 digits is a 8192-bit number, more than any use. */
#define S_INT_TEXT_MAX 2048

typedef enum {
    S_GN_EMAIL,
    S_GN_URI,
    S_GN_IP,
    S_GN_DNS,
    S_GN_RID,
    S_GN_DIRNAME,
    S_GN_OTHERNAME,
    S_GN_NONE,
} s_gn_kind_t;

/* django-ca's GENERAL_NAME_TYPES, in its order. */
static const char *const s_gn_types[] = {"email", "URI",     "IP",       "DNS",
                                         "RID",   "dirName", "otherName"};

typedef enum {
    S_ON_UTF8,
    S_ON_UNIV,
    S_ON_IA5,
    S_ON_BOOL,
    S_ON_NULL,
    S_ON_UTC,
    S_ON_GENTIME,
    S_ON_INT,
    S_ON_OCTET,
    S_ON_NONE,
} s_on_kind_t;

/* django-ca's OTHER_NAME_TYPES (canonical names) and OTHER_NAME_ALIASES. */
static const struct {
    const char *name;  /* canonical type literal, the normal form */
    const char *alias; /* alias accepted on input, used in the text form; may be NULL */
} s_on_types[] = {
    {"UTF8String", "UTF8"},
    {"UNIVERSALSTRING", "UNIV"},
    {"IA5STRING", "IA5"},
    {"BOOLEAN", "BOOL"},
    {"NULL", NULL},
    {"UTCTIME", "UTC"},
    {"GENERALIZEDTIME", "GENTIME"},
    {"INTEGER", "INT"},
    {"OctetString", NULL},
};

static s_gn_kind_t s_gn_kind(const char *type)
{
    for (int i = 0; i < S_GN_NONE; i++)
        if (strcmp(s_gn_types[i], type) == 0)
            return (s_gn_kind_t)i;
    return S_GN_NONE;
}

static s_on_kind_t s_on_kind(const char *type)
{
    for (int i = 0; i < S_ON_NONE; i++)
        if (strcmp(s_on_types[i].name, type) == 0 ||
            (s_on_types[i].alias && strcmp(s_on_types[i].alias, type) == 0))
            return (s_on_kind_t)i;
    return S_ON_NONE;
}

/* --- small helpers ----------------------------------------------------------------------- */

static bool s_has_nul(const json_t *s)
{
    return strlen(json_string_value(s)) != json_string_length(s);
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

/* --- DNS names, email addresses, URIs ---------------------------------------------------- */

/* NULL when NAME is a valid DNS name in ASCII (IDNA's rules for A-labels: letters, digits and
 * hyphens, labels of 1-63 characters, no hyphen at either end nor in the third and fourth
 * position unless "xn--"), else why not. PREFIX allows "*." and "." (wildcards and name
 * constraints), as django-ca's encode_dns does; a trailing dot is allowed. */
static const char *s_dns_problem(const char *name, size_t len, bool prefix)
{
    if (!cf_model_is_ascii(name, len))
        return "must be ASCII: give internationalised names in IDNA form (\"xn--...\")";
    const char *p = name;
    size_t n = len;
    if (prefix && n >= 2 && p[0] == '*' && p[1] == '.') {
        p += 2;
        n -= 2;
    } else if (prefix && n >= 1 && p[0] == '.') {
        p++;
        n--;
    }
    if (n > 0 && p[n - 1] == '.')
        n--;
    if (n == 0)
        return "is empty";
    if (n > 253)
        return "is longer than 253 characters";
    size_t start = 0;
    for (size_t i = 0; i <= n; i++) {
        if (i < n && p[i] != '.') {
            unsigned char c = (unsigned char)p[i];
            if (!isalnum(c) && c != '-')
                return "contains a character that is not a letter, digit, hyphen or dot";
            continue;
        }
        size_t l = i - start;
        const char *label = p + start;
        if (l == 0)
            return "has an empty label";
        if (l > 63)
            return "has a label longer than 63 characters";
        if (label[0] == '-' || label[l - 1] == '-')
            return "has a label that starts or ends with a hyphen";
        if (l >= 4 && label[2] == '-' && label[3] == '-' && strncasecmp(label, "xn", 2) != 0)
            return "has a label with hyphens in the third and fourth position";
        start = i + 1;
    }
    return NULL;
}

static const char *s_email_problem(const char *addr, size_t len)
{
    const char *at = NULL;
    for (size_t i = 0; i < len; i++)
        if (addr[i] == '@')
            at = addr + i;
    if (!at)
        return "has no \"@\"";
    if (at == addr)
        return "has an empty local part";
    for (const char *p = addr; p < at; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e)
            return "must be ASCII without control characters";
    const char *why = s_dns_problem(at + 1, len - (size_t)(at + 1 - addr), false);
    return why ? "has an invalid domain" : NULL;
}

/* Validate URI; on success write its normal form (scheme in lower case, as urlparse does)
 * into a new string at *NORM. NULL on success, else why not. */
static const char *s_uri_problem(const char *uri, size_t len, char **norm)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)uri[i] <= 0x20 || (unsigned char)uri[i] > 0x7e)
            return "must be ASCII without blanks or control characters: IDNA-encode host "
                   "names and percent-encode the rest";
    size_t i = 0;
    if (len == 0 || !isalpha((unsigned char)uri[0]))
        return "must start with a scheme (\"https://...\")";
    while (i < len && (isalnum((unsigned char)uri[i]) || strchr("+-.", uri[i])))
        i++;
    if (i == len || uri[i] != ':')
        return "must start with a scheme (\"https://...\")";
    size_t scheme_len = i;
    i++;
    /* django-ca IDNA-encodes the network location, which fails when there is none. */
    if (len - i < 2 || uri[i] != '/' || uri[i + 1] != '/')
        return "must have a host (\"scheme://host/...\")";
    i += 2;
    size_t host = i;
    while (i < len && !strchr("/?#", uri[i]))
        i++;
    size_t auth_end = i;
    if (memchr(uri + host, '@', auth_end - host))
        return "must not contain user information";
    size_t host_end;
    if (host < auth_end && uri[host] == '[') {
        const char *close = memchr(uri + host, ']', auth_end - host);
        char lit[64];
        size_t l = close ? (size_t)(close - uri) - host - 1 : 0;
        unsigned char buf[16];
        if (!close || l == 0 || l >= sizeof lit)
            return "has an invalid IPv6 literal";
        memcpy(lit, uri + host + 1, l);
        lit[l] = '\0';
        if (inet_pton(AF_INET6, lit, buf) != 1)
            return "has an invalid IPv6 literal";
        host_end = (size_t)(close - uri) + 1;
    } else {
        const char *colon = memchr(uri + host, ':', auth_end - host);
        host_end = colon ? (size_t)(colon - uri) : auth_end;
        if (host_end == host)
            return "must have a host (\"scheme://host/...\")";
        if (s_dns_problem(uri + host, host_end - host, false))
            return "has an invalid host name";
    }
    if (host_end < auth_end) {
        if (uri[host_end] != ':' || auth_end - host_end < 2 || auth_end - host_end > 6)
            return "has an invalid port";
        unsigned long port = 0;
        for (size_t k = host_end + 1; k < auth_end; k++) {
            if (!isdigit((unsigned char)uri[k]))
                return "has an invalid port";
            port = port * 10 + (unsigned long)(uri[k] - '0');
        }
        if (port > 65535)
            return "has a port above 65535";
    }
    *norm = malloc(len + 1);
    if (!*norm)
        return "could not be copied (out of memory)";
    memcpy(*norm, uri, len);
    (*norm)[len] = '\0';
    for (size_t k = 0; k < scheme_len; k++)
        (*norm)[k] = (char)tolower((unsigned char)(*norm)[k]);
    return NULL;
}

/* --- IP addresses and networks ----------------------------------------------------------- */

typedef struct {
    unsigned char bytes[32]; /* address, then the mask for networks */
    int len;                 /* 4 or 16: an address; 8 or 32: a network */
} s_ip_t;

/* Python's ipaddress: IPv4 dotted quad, IPv6 with the longest run (first of equals) of two or
 * more zero groups as "::", lower case, no leading zeros, no embedded dotted quad. */
static void s_ip_addr_format(const unsigned char *b, int family_len, char *out, size_t outlen)
{
    if (family_len == 4) {
        snprintf(out, outlen, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
        return;
    }
    unsigned w[8];
    for (int i = 0; i < 8; i++)
        w[i] = (unsigned)b[2 * i] << 8 | b[2 * i + 1];
    int best = -1, best_len = 0;
    for (int i = 0; i < 8;) {
        if (w[i] != 0) {
            i++;
            continue;
        }
        int j = i;
        while (j < 8 && w[j] == 0)
            j++;
        if (j - i > best_len && j - i >= 2) {
            best = i;
            best_len = j - i;
        }
        i = j;
    }
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < 8; i++) {
        if (i == best) {
            used += (size_t)snprintf(out + used, outlen - used, "::");
            i += best_len - 1;
            continue;
        }
        bool after_gap = best >= 0 && i == best + best_len;
        used += (size_t)snprintf(out + used, outlen - used, "%s%x",
                                 (i == 0 || after_gap) ? "" : ":", w[i]);
    }
}

static int s_mask_prefix(const unsigned char *mask, int n)
{
    int prefix = 0;
    bool ended = false;
    for (int i = 0; i < n; i++) {
        for (int bit = 7; bit >= 0; bit--) {
            bool set = (mask[i] >> bit) & 1;
            if (set && ended)
                return -1;
            if (set)
                prefix++;
            else
                ended = true;
        }
    }
    return prefix;
}

static void s_ip_format(const s_ip_t *ip, char *out, size_t outlen)
{
    int alen = ip->len == 4 || ip->len == 8 ? 4 : 16;
    s_ip_addr_format(ip->bytes, alen, out, outlen);
    if (ip->len == 8 || ip->len == 32) {
        size_t used = strlen(out);
        snprintf(out + used, outlen - used, "/%d", s_mask_prefix(ip->bytes + alen, alen));
    }
}

/* "127.0.0.1", "::1", "10.0.0.0/8", "fd00::/8": strict, like Python's ip_address() and
 * ip_network() (host bits of a network must be zero). NULL on success, else why not. */
static const char *s_ip_parse(const char *text, s_ip_t *ip)
{
    char addr[64];
    const char *slash = strchr(text, '/');
    size_t alen = slash ? (size_t)(slash - text) : strlen(text);
    if (alen == 0 || alen >= sizeof addr)
        return "is not an IP address or network";
    memcpy(addr, text, alen);
    addr[alen] = '\0';
    int n;
    memset(ip, 0, sizeof *ip);
    if (inet_pton(AF_INET, addr, ip->bytes) == 1)
        n = 4;
    else if (inet_pton(AF_INET6, addr, ip->bytes) == 1)
        n = 16;
    else
        return "is not an IP address or network";
    ip->len = n;
    if (!slash)
        return NULL;
    const char *p = slash + 1;
    size_t plen = strlen(p);
    if (plen == 0 || plen > 3)
        return "has an invalid prefix length";
    int prefix = 0;
    for (size_t i = 0; i < plen; i++) {
        if (!isdigit((unsigned char)p[i]))
            return "has an invalid prefix length";
        prefix = prefix * 10 + (p[i] - '0');
    }
    if (prefix > n * 8)
        return "has a prefix length beyond the address size";
    unsigned char *mask = ip->bytes + n;
    for (int bit = 0; bit < prefix; bit++)
        mask[bit / 8] |= (unsigned char)(0x80 >> (bit % 8));
    for (int i = 0; i < n; i++)
        if (ip->bytes[i] & ~mask[i])
            return "has host bits set";
    ip->len = 2 * n;
    return NULL;
}

/* --- datetimes --------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil). */
static int64_t s_days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static void s_civil_from_days(int64_t z, int64_t *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = yoe + era * 400 + (*m <= 2);
}

static int s_days_in_month(int64_t y, int m)
{
    static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days[m - 1];
}

static bool s_digits(const char *p, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)p[i]))
            return false;
        v = v * 10 + (p[i] - '0');
    }
    *out = v;
    return true;
}

static int64_t s_epoch(int64_t y, int mo, int d, int h, int mi, int s)
{
    return s_days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + s;
}

static void s_epoch_split(int64_t t, int64_t *y, int *mo, int *d, int *h, int *mi, int *s)
{
    int64_t days = t >= 0 ? t / 86400 : -((-t + 86399) / 86400);
    int64_t rem = t - days * 86400;
    s_civil_from_days(days, y, mo, d);
    *h = (int)(rem / 3600);
    *mi = (int)(rem / 60 % 60);
    *s = (int)(rem % 60);
}

/* ISO 8601 with a timezone ("2021-10-05T22:01:04Z", "...+02:00"; 'T', 't' or ' ' between date
 * and time; seconds optional; no fractions), or when COMPACT, also the ASN.1 forms of OpenSSL
 * configs ("211005220104Z" UTCTime, "20211005220104Z" GeneralizedTime). NULL or why not. */
static const char *s_datetime_parse(const char *text, bool utc_type, bool compact, int64_t *out)
{
    size_t len = strlen(text);
    int y = 0, mo = 0, d = 0, h = 0, mi = 0, s = 0, off = 0;
    bool all_digits = len >= 13;
    for (size_t i = 0; all_digits && i + 1 < len; i++)
        all_digits = isdigit((unsigned char)text[i]) != 0;
    if (compact && (len == 13 || len == 15) && text[len - 1] == 'Z' && all_digits) {
        const char *p = text;
        if (len == 13) {
            s_digits(p, 2, &y);
            y += y < 50 ? 2000 : 1900;
            p += 2;
        } else {
            s_digits(p, 4, &y);
            p += 4;
        }
        s_digits(p, 2, &mo);
        s_digits(p + 2, 2, &d);
        s_digits(p + 4, 2, &h);
        s_digits(p + 6, 2, &mi);
        s_digits(p + 8, 2, &s);
    } else {
        if (len < 16 || !s_digits(text, 4, &y) || text[4] != '-' || !s_digits(text + 5, 2, &mo) ||
            text[7] != '-' || !s_digits(text + 8, 2, &d) || !strchr("Tt ", text[10]) ||
            !s_digits(text + 11, 2, &h) || text[13] != ':' || !s_digits(text + 14, 2, &mi))
            return "is not an ISO 8601 datetime (\"2021-10-05T22:01:04Z\")";
        const char *p = text + 16;
        if (*p == ':') {
            if (!s_digits(p + 1, 2, &s))
                return "is not an ISO 8601 datetime (\"2021-10-05T22:01:04Z\")";
            p += 3;
        }
        if (*p == '.' || *p == ',')
            return "has fractional seconds, which are not supported";
        if (*p == '\0')
            return "has no timezone: give \"Z\" or an offset like \"+02:00\"";
        if ((*p == 'Z' || *p == 'z') && p[1] == '\0') {
            off = 0;
        } else if (*p == '+' || *p == '-') {
            int oh, om = 0;
            const char *q = p + 1;
            if (!s_digits(q, 2, &oh))
                return "has an invalid timezone offset";
            q += 2;
            if (*q == ':')
                q++;
            if (*q && (!s_digits(q, 2, &om) || q[2] != '\0'))
                return "has an invalid timezone offset";
            if (oh > 23 || om > 59)
                return "has an invalid timezone offset";
            off = (oh * 60 + om) * 60 * (*p == '-' ? -1 : 1);
        } else {
            return "has an invalid timezone";
        }
    }
    if (mo < 1 || mo > 12 || d < 1 || d > s_days_in_month(y, mo) || h > 23 || mi > 59 || s > 59)
        return "is not a valid date and time";
    int64_t t = s_epoch(y, mo, d, h, mi, s) - off;
    int64_t uy;
    int umo, ud, uh, umi, us;
    s_epoch_split(t, &uy, &umo, &ud, &uh, &umi, &us);
    if (utc_type && (uy < 1950 || uy > 2049))
        return "is outside the years 1950-2049 that a UTCTime can hold";
    if (uy < 1 || uy > 9999)
        return "is outside the years 1-9999";
    *out = t;
    return NULL;
}

/* The model's normal form: ISO 8601 in UTC with "Z", e.g. "2021-10-05T22:01:04Z". */
static void s_datetime_format(int64_t t, char *out, size_t outlen)
{
    int64_t y;
    int mo, d, h, mi, s;
    s_epoch_split(t, &y, &mo, &d, &h, &mi, &s);
    snprintf(out, outlen, "%04d-%02d-%02dT%02d:%02d:%02dZ", (int)y, mo, d, h, mi, s);
}

/* The ASN.1 form: "YYMMDDHHMMSSZ" (UTCTime) or "YYYYMMDDHHMMSSZ" (GeneralizedTime). */
static void s_datetime_format_asn1(int64_t t, bool utc_type, char *out, size_t outlen)
{
    int64_t y;
    int mo, d, h, mi, s;
    s_epoch_split(t, &y, &mo, &d, &h, &mi, &s);
    if (utc_type)
        snprintf(out, outlen, "%02d%02d%02d%02d%02d%02dZ", (int)(y % 100), mo, d, h, mi, s);
    else
        snprintf(out, outlen, "%04d%02d%02d%02d%02d%02dZ", (int)y, mo, d, h, mi, s);
}

/* --- INTEGER ----------------------------------------------------------------------------- */

/* A BIGNUM from "123", "-5", "0x1F" or "-0x1f" (the whole string); NULL when not a number. */
static BIGNUM *s_bn_from_text(const char *text)
{
    size_t len = strlen(text);
    if (len == 0 || len > S_INT_TEXT_MAX)
        return NULL;
    bool neg = text[0] == '-';
    const char *p = text + (neg || text[0] == '+');
    bool hex = p[0] == '0' && p[1] == 'x';
    if (hex)
        p += 2;
    if (*p == '\0')
        return NULL;
    for (const char *q = p; *q; q++)
        if (hex ? !isxdigit((unsigned char)*q) : !isdigit((unsigned char)*q))
            return NULL;
    BIGNUM *bn = NULL;
    int used = hex ? BN_hex2bn(&bn, p) : BN_dec2bn(&bn, p);
    if (!bn || (size_t)used != strlen(p)) {
        BN_free(bn);
        ERR_clear_error();
        return NULL;
    }
    if (neg)
        BN_set_negative(bn, 1);
    return bn;
}

/* The model's normal form of an integer: a JSON integer when it fits in 64 bits, else the
 * string "0x<HEX>" (or "-0x<HEX>"), upper case without leading zeros. */
static json_t *s_bn_to_json(const BIGNUM *bn)
{
    if (BN_num_bits(bn) <= 63) {
        int64_t v = (int64_t)BN_get_word(bn);
        return json_integer(BN_is_negative(bn) ? -v : v);
    }
    char *hex = BN_bn2hex(bn);
    if (!hex)
        return NULL;
    const char *digits = hex + (hex[0] == '-');
    while (digits[0] == '0' && digits[1])
        digits++;
    char *text = malloc(strlen(digits) + 4);
    json_t *out = NULL;
    if (text) {
        snprintf(text, strlen(digits) + 4, "%s0x%s", BN_is_negative(bn) ? "-" : "", digits);
        out = json_string(text);
    }
    free(text);
    OPENSSL_free(hex);
    return out;
}

/* --- otherName model --------------------------------------------------------------------- */

static json_t *s_other_name_parse(const json_t *in, cf_error_t *err)
{
    static const char *const fields[] = {"oid", "type", "value", NULL};
    if (!json_is_object(in)) {
        cf_error_set(err, "invalid_type", "", "otherName value must be an object");
        return NULL;
    }
    if (cf_model_check_fields(in, fields, err) != 0)
        return NULL;
    const json_t *joid = json_object_get(in, "oid");
    const json_t *jtype = json_object_get(in, "type");
    const json_t *v = json_object_get(in, "value");
    if (!json_is_string(joid)) {
        cf_error_set(err, "invalid_type", "oid", "oid must be a string");
        return NULL;
    }
    if (s_has_nul(joid) || !cf_oid_is_valid(json_string_value(joid))) {
        cf_error_set(err, "invalid_oid", "oid", "\"%.64s\" is not a valid dotted object identifier",
                     json_string_value(joid));
        return NULL;
    }
    if (!json_is_string(jtype)) {
        cf_error_set(err, "invalid_type", "type", "type must be a string");
        return NULL;
    }
    s_on_kind_t kind = s_on_kind(json_string_value(jtype));
    if (kind == S_ON_NONE || s_has_nul(jtype)) {
        cf_error_set(err, "unknown_type", "type",
                     "unknown otherName type \"%.64s\" (expected one of UTF8String, "
                     "UNIVERSALSTRING, IA5STRING, BOOLEAN, NULL, UTCTIME, GENERALIZEDTIME, "
                     "INTEGER, OctetString or an alias UTF8, UNIV, IA5, BOOL, UTC, GENTIME, INT)",
                     json_string_value(jtype));
        return NULL;
    }
    const char *tname = s_on_types[kind].name;
    json_t *value = NULL;
    switch (kind) {
    case S_ON_UTF8:
    case S_ON_UNIV:
    case S_ON_IA5:
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", "value", "%s value must be a string", tname);
            return NULL;
        }
        if (s_has_nul(v)) {
            cf_error_set(err, "invalid_value", "value", "%s value must not contain a NUL character",
                         tname);
            return NULL;
        }
        if (kind == S_ON_IA5 && !cf_model_is_ascii(json_string_value(v), json_string_length(v))) {
            cf_error_set(err, "invalid_value", "value", "IA5STRING value must be ASCII");
            return NULL;
        }
        value = json_copy((json_t *)v);
        break;
    case S_ON_BOOL:
        if (!json_is_boolean(v)) {
            cf_error_set(err, "invalid_type", "value", "BOOLEAN value must be a boolean");
            return NULL;
        }
        value = json_copy((json_t *)v);
        break;
    case S_ON_NULL:
        if (!json_is_null(v)) {
            cf_error_set(err, "invalid_type", "value", "NULL value must be null");
            return NULL;
        }
        value = json_null();
        break;
    case S_ON_UTC:
    case S_ON_GENTIME: {
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", "value",
                         "%s value must be a datetime string with a timezone", tname);
            return NULL;
        }
        int64_t t;
        const char *why = s_has_nul(v)
                              ? "contains a NUL character"
                              : s_datetime_parse(json_string_value(v), kind == S_ON_UTC, false, &t);
        if (why) {
            cf_error_set(err, "invalid_datetime", "value", "%s value \"%.64s\" %s", tname,
                         json_string_value(v), why);
            return NULL;
        }
        char text[80];
        s_datetime_format(t, text, sizeof text);
        value = json_string(text);
        break;
    }
    case S_ON_INT:
        if (json_is_integer(v)) {
            value = json_copy((json_t *)v);
        } else if (json_is_string(v)) {
            BIGNUM *bn = s_has_nul(v) ? NULL : s_bn_from_text(json_string_value(v));
            if (!bn) {
                cf_error_set(err, "invalid_value", "value",
                             "INTEGER value \"%.64s\" is neither a decimal nor a \"0x\" "
                             "hexadecimal integer",
                             json_string_value(v));
                return NULL;
            }
            value = s_bn_to_json(bn);
            BN_free(bn);
        } else {
            cf_error_set(err, "invalid_type", "value",
                         "INTEGER value must be an integer or a string holding one");
            return NULL;
        }
        break;
    case S_ON_OCTET: {
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", "value",
                         "value of type OctetString must be a hex string");
            return NULL;
        }
        const char *hex = json_string_value(v);
        size_t len = json_string_length(v);
        char *upper = malloc(len + 1);
        if (!upper)
            break;
        for (size_t i = 0; i < len; i++) {
            if (!isxdigit((unsigned char)hex[i])) {
                free(upper);
                cf_error_set(err, "invalid_hex", "value",
                             "value of type OctetString must be hexadecimal digits");
                return NULL;
            }
            upper[i] = (char)toupper((unsigned char)hex[i]);
        }
        upper[len] = '\0';
        value = json_string(upper);
        free(upper);
        break;
    }
    case S_ON_NONE:
        break;
    }
    json_t *out = value ? json_pack("{s:s, s:s, s:o}", "oid", json_string_value(joid), "type",
                                    tname, "value", value)
                        : NULL;
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

/* --- GeneralName model ------------------------------------------------------------------- */

json_t *cf_general_name_parse(const json_t *in, cf_error_t *err)
{
    static const char *const fields[] = {"type", "value", NULL};
    if (!json_is_object(in)) {
        cf_error_set(err, "invalid_type", "", "general name must be an object");
        return NULL;
    }
    if (cf_model_check_fields(in, fields, err) != 0)
        return NULL;
    const json_t *jtype = json_object_get(in, "type");
    const json_t *v = json_object_get(in, "value");
    if (!json_is_string(jtype)) {
        cf_error_set(err, "invalid_type", "type", "type must be a string");
        return NULL;
    }
    s_gn_kind_t kind = s_has_nul(jtype) ? S_GN_NONE : s_gn_kind(json_string_value(jtype));
    if (kind == S_GN_NONE) {
        cf_error_set(err, "unknown_type", "type",
                     "unknown general name type \"%.64s\" (expected one of email, URI, IP, DNS, "
                     "RID, dirName, otherName)",
                     json_string_value(jtype));
        return NULL;
    }
    const char *tname = s_gn_types[kind];
    json_t *value = NULL;
    if (kind == S_GN_DIRNAME) {
        if (!json_is_array(v)) {
            cf_error_set(err, "invalid_type", "value", "dirName value must be a name (an array)");
            return NULL;
        }
        value = cf_name_parse(v, err);
        if (!value) {
            cf_error_prefix_field(err, "value");
            return NULL;
        }
    } else if (kind == S_GN_OTHERNAME) {
        if (!json_is_object(v)) {
            cf_error_set(err, "invalid_type", "value", "otherName value must be an object");
            return NULL;
        }
        value = s_other_name_parse(v, err);
        if (!value) {
            cf_error_prefix_field(err, "value");
            return NULL;
        }
    } else {
        if (!json_is_string(v)) {
            cf_error_set(err, "invalid_type", "value", "%s value must be a string", tname);
            return NULL;
        }
        const char *text = json_string_value(v);
        size_t len = json_string_length(v);
        const char *why = NULL, *code = "invalid_value";
        char *norm = NULL;
        char ipbuf[64];
        if (s_has_nul(v)) {
            why = "contains a NUL character";
        } else if (kind == S_GN_DNS) {
            code = "invalid_dns_name";
            why = s_dns_problem(text, len, true);
        } else if (kind == S_GN_EMAIL) {
            code = "invalid_email";
            why = s_email_problem(text, len);
        } else if (kind == S_GN_URI) {
            code = "invalid_uri";
            why = s_uri_problem(text, len, &norm);
        } else if (kind == S_GN_IP) {
            s_ip_t ip;
            code = "invalid_ip_address";
            why = s_ip_parse(text, &ip);
            if (!why) {
                s_ip_format(&ip, ipbuf, sizeof ipbuf);
                text = ipbuf;
            }
        } else if (kind == S_GN_RID) {
            code = "invalid_oid";
            if (!cf_oid_is_valid(text))
                why = "is not a valid dotted object identifier";
        }
        if (why) {
            cf_error_set(err, code, "value", "%s \"%.128s\" %s", tname, json_string_value(v), why);
            return NULL;
        }
        value = json_string(norm ? norm : text);
        free(norm);
    }
    json_t *out = value ? json_pack("{s:s, s:o}", "type", tname, "value", value) : NULL;
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

json_t *cf_general_names_parse(const json_t *in, cf_error_t *err)
{
    if (!json_is_array(in)) {
        cf_error_set(err, "invalid_type", "", "general names must be an array");
        return NULL;
    }
    json_t *out = json_array();
    size_t i;
    json_t *item;
    json_array_foreach(in, i, item)
    {
        json_t *gn = out ? cf_general_name_parse(item, err) : NULL;
        if (!gn || json_array_append_new(out, gn) != 0) {
            char idx[32];
            snprintf(idx, sizeof idx, "[%zu]", i);
            if (!cf_error_isset(err))
                cf_error_set(err, "internal", "", "out of memory");
            cf_error_prefix_field(err, idx);
            json_decref(out);
            return NULL;
        }
    }
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

/* --- text form --------------------------------------------------------------------------- */

static json_t *s_other_name_from_text(const char *text, cf_error_t *err)
{
    /* "1.2.3;UTF8:value", as OpenSSL configs and django-ca's parse_general_name write it. */
    const char *semi = strchr(text, ';');
    const char *colon = semi ? strchr(semi + 1, ':') : NULL;
    if (!semi || !colon) {
        cf_error_set(err, "invalid_syntax", "value",
                     "otherName \"%.64s\" must look like \"1.2.3;UTF8:value\"", text);
        return NULL;
    }
    char *oid = strndup(text, (size_t)(semi - text));
    char *type = strndup(semi + 1, (size_t)(colon - semi - 1));
    const char *raw = colon + 1;
    json_t *value = NULL, *out = NULL;
    if (!oid || !type) {
        cf_error_set(err, "internal", "", "out of memory");
        goto done;
    }
    s_on_kind_t kind = s_on_kind(type);
    switch (kind) {
    case S_ON_BOOL:
        if (!strcasecmp(raw, "true") || !strcasecmp(raw, "y") || !strcasecmp(raw, "yes"))
            value = json_true();
        else if (!strcasecmp(raw, "false") || !strcasecmp(raw, "n") || !strcasecmp(raw, "no"))
            value = json_false();
        else {
            cf_error_set(err, "invalid_value", "value.value",
                         "BOOLEAN value \"%.64s\" must be TRUE or FALSE", raw);
            goto done;
        }
        break;
    case S_ON_NULL:
        if (*raw) {
            cf_error_set(err, "invalid_value", "value.value", "NULL must not have a value");
            goto done;
        }
        value = json_null();
        break;
    case S_ON_UTC:
    case S_ON_GENTIME: {
        int64_t t;
        const char *why = s_datetime_parse(raw, kind == S_ON_UTC, true, &t);
        if (why) {
            cf_error_set(err, "invalid_datetime", "value.value", "%s value \"%.64s\" %s",
                         s_on_types[kind].name, raw, why);
            goto done;
        }
        char iso[80];
        s_datetime_format(t, iso, sizeof iso);
        value = json_string(iso);
        break;
    }
    default:
        /* Strings, INTEGER and OctetString are taken as text; the model validates them. */
        value = json_string(raw);
        if (!value) {
            cf_error_set(err, "invalid_value", "value.value", "value is not valid UTF-8");
            goto done;
        }
    }
    json_t *model = json_pack("{s:s, s:{s:s, s:s, s:o}}", "type", "otherName", "value", "oid", oid,
                              "type", type, "value", value);
    value = NULL;
    if (!model) {
        cf_error_set(err, "internal", "", "out of memory");
        goto done;
    }
    out = cf_general_name_parse(model, err);
    json_decref(model);
done:
    json_decref(value);
    free(oid);
    free(type);
    return out;
}

json_t *cf_general_name_from_string(const char *text, cf_error_t *err)
{
    if (!text) {
        cf_error_set(err, "invalid_type", "", "general name must be a string");
        return NULL;
    }
    const char *colon = strchr(text, ':');
    s_gn_kind_t kind = S_GN_NONE;
    if (colon) {
        for (int i = 0; i < S_GN_NONE; i++)
            if (strlen(s_gn_types[i]) == (size_t)(colon - text) &&
                strncasecmp(s_gn_types[i], text, (size_t)(colon - text)) == 0)
                kind = (s_gn_kind_t)i;
    }
    json_t *model = NULL, *out = NULL;
    if (kind == S_GN_NONE) {
        /* No prefix: guess as django-ca's parse_general_name does: URI, email, IP, and DNS as
         * the fallback that takes almost anything. */
        const char *guesses[4] = {NULL, NULL, "IP", "DNS"};
        const char *p = text;
        while (isalnum((unsigned char)*p))
            p++;
        if (p - text >= 2 && strncmp(p, "://", 3) == 0)
            guesses[0] = "URI";
        if (strchr(text, '@'))
            guesses[1] = "email";
        for (int i = 0; i < 4; i++) {
            if (!guesses[i])
                continue;
            model = json_pack("{s:s, s:s}", "type", guesses[i], "value", text);
            cf_error_t ignored = {0};
            out = model ? cf_general_name_parse(model, i == 3 ? err : &ignored) : NULL;
            json_decref(model);
            if (out || i == 3)
                break;
        }
        if (!out && !cf_error_isset(err))
            cf_error_set(err, "invalid_value", "", "general name is not valid UTF-8");
        return out;
    }
    const char *value = colon + 1;
    if (kind == S_GN_DIRNAME) {
        json_t *name = cf_name_from_string(value, err);
        if (!name) {
            cf_error_prefix_field(err, "value");
            return NULL;
        }
        model = json_pack("{s:s, s:o}", "type", "dirName", "value", name);
    } else if (kind == S_GN_OTHERNAME) {
        return s_other_name_from_text(value, err);
    } else {
        model = json_pack("{s:s, s:s}", "type", s_gn_types[kind], "value", value);
    }
    if (!model) {
        cf_error_set(err, "invalid_value", "value", "general name is not valid UTF-8");
        return NULL;
    }
    out = cf_general_name_parse(model, err);
    json_decref(model);
    return out;
}

char *cf_general_name_to_string(const json_t *model)
{
    const char *type = json_string_value(json_object_get(model, "type"));
    const json_t *value = json_object_get(model, "value");
    s_gn_kind_t kind = type ? s_gn_kind(type) : S_GN_NONE;
    char *out = NULL;
    if (kind == S_GN_NONE || !value)
        return NULL;
    if (kind == S_GN_DIRNAME) {
        char *name = cf_name_to_string(value);
        if (name && asprintf(&out, "dirName:%s", name) < 0)
            out = NULL;
        free(name);
        return out;
    }
    if (kind != S_GN_OTHERNAME) {
        if (!json_is_string(value) || asprintf(&out, "%s:%s", type, json_string_value(value)) < 0)
            return NULL;
        return out;
    }
    const char *oid = json_string_value(json_object_get(value, "oid"));
    const char *otype = json_string_value(json_object_get(value, "type"));
    const json_t *v = json_object_get(value, "value");
    s_on_kind_t okind = otype ? s_on_kind(otype) : S_ON_NONE;
    if (!oid || okind == S_ON_NONE || !v)
        return NULL;
    const char *label = s_on_types[okind].alias ? s_on_types[okind].alias : s_on_types[okind].name;
    char buf[64] = "";
    const char *text = buf;
    if (json_is_string(v) && (okind == S_ON_UTC || okind == S_ON_GENTIME)) {
        int64_t t;
        if (s_datetime_parse(json_string_value(v), okind == S_ON_UTC, false, &t) == NULL)
            s_datetime_format_asn1(t, okind == S_ON_UTC, buf, sizeof buf);
        else
            text = json_string_value(v);
    } else if (json_is_string(v)) {
        text = json_string_value(v);
    } else if (json_is_boolean(v)) {
        text = json_is_true(v) ? "TRUE" : "FALSE";
    } else if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
    }
    if (asprintf(&out, "otherName:%s;%s:%s", oid, label, text) < 0)
        return NULL;
    return out;
}

/* --- OpenSSL ----------------------------------------------------------------------------- */

static ASN1_STRING *s_ia5(const char *text, size_t len)
{
    ASN1_STRING *s = ASN1_IA5STRING_new();
    if (s && !ASN1_STRING_set(s, text, (int)len)) {
        ASN1_STRING_free(s);
        return NULL;
    }
    return s;
}

/* The ASN1_TYPE of a normalised otherName value; NULL with err set. */
static ASN1_TYPE *s_other_value_to_openssl(const json_t *on, cf_error_t *err)
{
    s_on_kind_t kind = s_on_kind(json_string_value(json_object_get(on, "type")));
    const json_t *v = json_object_get(on, "value");
    const char *text = json_string_value(v);
    size_t len = json_string_length(v);
    ASN1_TYPE *t = ASN1_TYPE_new();
    ASN1_STRING *s = NULL;
    int type = V_ASN1_UNDEF;
    if (!t)
        goto fail;
    switch (kind) {
    case S_ON_UTF8:
        type = V_ASN1_UTF8STRING;
        s = ASN1_UTF8STRING_new();
        if (s && !ASN1_STRING_set(s, text, (int)len))
            goto fail;
        break;
    case S_ON_IA5:
        type = V_ASN1_IA5STRING;
        s = s_ia5(text, len);
        break;
    case S_ON_UNIV:
        type = V_ASN1_UNIVERSALSTRING;
        if (ASN1_mbstring_copy(&s, (const unsigned char *)text, (int)len, MBSTRING_UTF8,
                               B_ASN1_UNIVERSALSTRING) < 0)
            goto fail;
        break;
    case S_ON_BOOL:
        ASN1_TYPE_set(t, V_ASN1_BOOLEAN, json_is_true(v) ? (void *)t : NULL);
        return t;
    case S_ON_NULL:
        ASN1_TYPE_set(t, V_ASN1_NULL, NULL);
        return t;
    case S_ON_UTC:
    case S_ON_GENTIME: {
        int64_t when;
        char asn1[80];
        if (s_datetime_parse(text, kind == S_ON_UTC, false, &when) != NULL)
            goto fail;
        s_datetime_format_asn1(when, kind == S_ON_UTC, asn1, sizeof asn1);
        type = kind == S_ON_UTC ? V_ASN1_UTCTIME : V_ASN1_GENERALIZEDTIME;
        s = kind == S_ON_UTC ? ASN1_UTCTIME_new() : ASN1_GENERALIZEDTIME_new();
        int ok = s && (kind == S_ON_UTC ? ASN1_UTCTIME_set_string(s, asn1)
                                        : ASN1_GENERALIZEDTIME_set_string(s, asn1));
        if (!ok)
            goto fail;
        break;
    }
    case S_ON_INT:
        type = V_ASN1_INTEGER;
        if (json_is_integer(v)) {
            s = ASN1_INTEGER_new();
            if (s && !ASN1_INTEGER_set_int64(s, json_integer_value(v)))
                goto fail;
        } else {
            BIGNUM *bn = s_bn_from_text(text);
            s = bn ? BN_to_ASN1_INTEGER(bn, NULL) : NULL;
            BN_free(bn);
        }
        break;
    case S_ON_OCTET: {
        if (len % 2) {
            cf_error_set(err, "invalid_hex", "value.value",
                         "value of type OctetString has an odd number of hex digits");
            goto fail_set;
        }
        unsigned char *bytes = malloc(len / 2 + 1);
        if (!bytes)
            goto fail;
        for (size_t i = 0; i < len / 2; i++)
            bytes[i] = (unsigned char)(s_hexval(text[2 * i]) * 16 + s_hexval(text[2 * i + 1]));
        type = V_ASN1_OCTET_STRING;
        s = ASN1_OCTET_STRING_new();
        int ok = s && ASN1_OCTET_STRING_set(s, bytes, (int)(len / 2));
        free(bytes);
        if (!ok)
            goto fail;
        break;
    }
    case S_ON_NONE:
        goto fail;
    }
    if (!s)
        goto fail;
    ASN1_TYPE_set(t, type, s);
    return t;
fail:
    cf_error_set(err, "invalid_value", "value.value", "could not encode the otherName value");
    cf_error_add_openssl(err);
fail_set:
    ASN1_STRING_free(s);
    ASN1_TYPE_free(t);
    return NULL;
}

GENERAL_NAME *cf_general_name_to_openssl(const json_t *model, cf_error_t *err)
{
    json_t *norm = cf_general_name_parse(model, err);
    if (!norm)
        return NULL;
    s_gn_kind_t kind = s_gn_kind(json_string_value(json_object_get(norm, "type")));
    const json_t *v = json_object_get(norm, "value");
    GENERAL_NAME *gn = GENERAL_NAME_new();
    if (!gn)
        goto fail;
    switch (kind) {
    case S_GN_EMAIL:
    case S_GN_URI:
    case S_GN_DNS: {
        ASN1_STRING *s = s_ia5(json_string_value(v), json_string_length(v));
        if (!s)
            goto fail;
        GENERAL_NAME_set0_value(gn,
                                kind == S_GN_EMAIL ? GEN_EMAIL
                                : kind == S_GN_URI ? GEN_URI
                                                   : GEN_DNS,
                                s);
        break;
    }
    case S_GN_IP: {
        s_ip_t ip;
        ASN1_OCTET_STRING *o = NULL;
        if (s_ip_parse(json_string_value(v), &ip) != NULL || !(o = ASN1_OCTET_STRING_new()) ||
            !ASN1_OCTET_STRING_set(o, ip.bytes, ip.len)) {
            ASN1_OCTET_STRING_free(o);
            goto fail;
        }
        GENERAL_NAME_set0_value(gn, GEN_IPADD, o);
        break;
    }
    case S_GN_RID: {
        ASN1_OBJECT *obj = OBJ_txt2obj(json_string_value(v), 1);
        if (!obj)
            goto fail;
        GENERAL_NAME_set0_value(gn, GEN_RID, obj);
        break;
    }
    case S_GN_DIRNAME: {
        X509_NAME *name = cf_name_to_openssl(v, err);
        if (!name) {
            cf_error_prefix_field(err, "value");
            goto fail_set;
        }
        GENERAL_NAME_set0_value(gn, GEN_DIRNAME, name);
        break;
    }
    case S_GN_OTHERNAME: {
        ASN1_TYPE *t = s_other_value_to_openssl(v, err);
        if (!t)
            goto fail_set;
        ASN1_OBJECT *obj = OBJ_txt2obj(json_string_value(json_object_get(v, "oid")), 1);
        if (!obj || !GENERAL_NAME_set0_othername(gn, obj, t)) {
            ASN1_OBJECT_free(obj);
            ASN1_TYPE_free(t);
            goto fail;
        }
        break;
    }
    case S_GN_NONE:
        goto fail;
    }
    json_decref(norm);
    return gn;
fail:
    cf_error_set(err, "invalid_value", "value", "could not encode the general name");
    cf_error_add_openssl(err);
fail_set:
    GENERAL_NAME_free(gn);
    json_decref(norm);
    return NULL;
}

GENERAL_NAMES *cf_general_names_to_openssl(const json_t *list, cf_error_t *err)
{
    if (!json_is_array(list)) {
        cf_error_set(err, "invalid_type", "", "general names must be an array");
        return NULL;
    }
    GENERAL_NAMES *gns = sk_GENERAL_NAME_new_null();
    if (!gns) {
        cf_error_set(err, "internal", "", "out of memory");
        return NULL;
    }
    size_t i;
    json_t *item;
    json_array_foreach(list, i, item)
    {
        GENERAL_NAME *gn = cf_general_name_to_openssl(item, err);
        if (!gn || !sk_GENERAL_NAME_push(gns, gn)) {
            char idx[32];
            snprintf(idx, sizeof idx, "[%zu]", i);
            if (gn) {
                GENERAL_NAME_free(gn);
                cf_error_set(err, "internal", "", "out of memory");
            }
            cf_error_prefix_field(err, idx);
            GENERAL_NAMES_free(gns);
            return NULL;
        }
    }
    return gns;
}

/* Text of an IA5String or UTF8String from a certificate: valid UTF-8 without NUL, else NULL. */
static json_t *s_text_from_openssl(const ASN1_STRING *s)
{
    const unsigned char *data = ASN1_STRING_get0_data(s);
    size_t len = (size_t)ASN1_STRING_length(s);
    if (!data || memchr(data, '\0', len))
        return NULL;
    return json_stringn((const char *)data, len);
}

static json_t *s_other_name_from_openssl(const GENERAL_NAME *gn, cf_error_t *err)
{
    ASN1_OBJECT *obj = NULL;
    ASN1_TYPE *t = NULL;
    if (!GENERAL_NAME_get0_otherName(gn, &obj, &t) || !t) {
        cf_error_set(err, "unsupported_value", "value", "otherName without a value");
        return NULL;
    }
    char *oid = cf_oid_from_openssl(obj);
    int type = ASN1_TYPE_get(t);
    s_on_kind_t kind = S_ON_NONE;
    json_t *value = NULL, *out = NULL;
    if (!oid) {
        cf_error_set(err, "unsupported_value", "value.oid", "otherName has no valid type id");
        goto done;
    }
    switch (type) {
    case V_ASN1_UTF8STRING:
        kind = S_ON_UTF8;
        value = s_text_from_openssl(t->value.utf8string);
        break;
    case V_ASN1_IA5STRING:
        kind = S_ON_IA5;
        if (cf_model_is_ascii((const char *)ASN1_STRING_get0_data(t->value.ia5string),
                              (size_t)ASN1_STRING_length(t->value.ia5string)))
            value = s_text_from_openssl(t->value.ia5string);
        break;
    case V_ASN1_UNIVERSALSTRING: {
        kind = S_ON_UNIV;
        unsigned char *utf8 = NULL;
        int n = ASN1_STRING_to_UTF8(&utf8, t->value.universalstring);
        if (n >= 0 && !memchr(utf8, '\0', (size_t)n))
            value = json_stringn((const char *)utf8, (size_t)n);
        OPENSSL_free(utf8);
        ERR_clear_error();
        break;
    }
    case V_ASN1_BOOLEAN:
        kind = S_ON_BOOL;
        value = json_boolean(t->value.boolean != 0);
        break;
    case V_ASN1_NULL:
        kind = S_ON_NULL;
        value = json_null();
        break;
    case V_ASN1_UTCTIME:
    case V_ASN1_GENERALIZEDTIME: {
        kind = type == V_ASN1_UTCTIME ? S_ON_UTC : S_ON_GENTIME;
        struct tm tm;
        if (ASN1_TIME_to_tm(t->value.utctime, &tm) && tm.tm_year + 1900 >= 1 &&
            tm.tm_year + 1900 <= 9999) {
            char iso[80];
            s_datetime_format(s_epoch(tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                                      tm.tm_min, tm.tm_sec),
                              iso, sizeof iso);
            value = json_string(iso);
        }
        ERR_clear_error();
        break;
    }
    case V_ASN1_INTEGER: {
        kind = S_ON_INT;
        BIGNUM *bn = ASN1_INTEGER_to_BN(t->value.integer, NULL);
        value = bn ? s_bn_to_json(bn) : NULL;
        BN_free(bn);
        ERR_clear_error();
        break;
    }
    case V_ASN1_OCTET_STRING: {
        kind = S_ON_OCTET;
        const unsigned char *d = ASN1_STRING_get0_data(t->value.octet_string);
        size_t n = (size_t)ASN1_STRING_length(t->value.octet_string);
        char *hex = malloc(2 * n + 1);
        if (hex) {
            for (size_t i = 0; i < n; i++)
                snprintf(hex + 2 * i, 3, "%02X", d[i]);
            hex[2 * n] = '\0';
            value = json_string(hex);
        }
        free(hex);
        break;
    }
    default:
        cf_error_set(err, "unsupported_value", "value.type",
                     "otherName \"%s\" holds an ASN.1 type (tag %d) that the model does not "
                     "support",
                     oid, type);
        goto done;
    }
    if (!value) {
        cf_error_set(err, "unsupported_value", "value.value",
                     "otherName \"%s\" of type %s holds a value that cannot be represented", oid,
                     s_on_types[kind].name);
        goto done;
    }
    out = json_pack("{s:s, s:{s:s, s:s, s:O}}", "type", "otherName", "value", "oid", oid, "type",
                    s_on_types[kind].name, "value", value);
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
done:
    json_decref(value);
    free(oid);
    return out;
}

json_t *cf_general_name_from_openssl(const GENERAL_NAME *gn, cf_error_t *err)
{
    if (!gn) {
        cf_error_set(err, "invalid_value", "", "no general name given");
        return NULL;
    }
    int type;
    void *v = GENERAL_NAME_get0_value(gn, &type);
    const char *tname = NULL;
    json_t *value = NULL;
    switch (type) {
    case GEN_EMAIL:
    case GEN_DNS:
    case GEN_URI:
        tname = type == GEN_EMAIL ? "email" : type == GEN_DNS ? "DNS" : "URI";
        value = v ? s_text_from_openssl(v) : NULL;
        if (!value) {
            cf_error_set(err, "unsupported_value", "value",
                         "%s name is not valid UTF-8 or contains a NUL character", tname);
            return NULL;
        }
        break;
    case GEN_IPADD: {
        tname = "IP";
        s_ip_t ip = {0};
        int n = v ? ASN1_STRING_length(v) : 0;
        char text[80];
        if (n != 4 && n != 16 && n != 8 && n != 32) {
            cf_error_set(err, "invalid_ip_address", "value",
                         "IP address of %d bytes (expected 4 or 16, or 8 or 32 for a network)", n);
            return NULL;
        }
        memcpy(ip.bytes, ASN1_STRING_get0_data(v), (size_t)n);
        ip.len = n;
        if (n == 8 || n == 32) {
            int half = n / 2;
            bool host_bits = false;
            for (int i = 0; i < half; i++)
                host_bits |= (ip.bytes[i] & ~ip.bytes[half + i]) != 0;
            if (s_mask_prefix(ip.bytes + half, half) < 0 || host_bits) {
                cf_error_set(err, "invalid_ip_address", "value",
                             "IP network has a non-contiguous mask or host bits set");
                return NULL;
            }
        }
        s_ip_format(&ip, text, sizeof text);
        value = json_string(text);
        break;
    }
    case GEN_RID: {
        tname = "RID";
        char *oid = cf_oid_from_openssl(v);
        value = oid ? json_string(oid) : NULL;
        free(oid);
        if (!value) {
            cf_error_set(err, "unsupported_value", "value", "RID has no valid object identifier");
            return NULL;
        }
        break;
    }
    case GEN_DIRNAME:
        tname = "dirName";
        value = cf_name_from_openssl(v, err);
        if (!value) {
            cf_error_prefix_field(err, "value");
            return NULL;
        }
        break;
    case GEN_OTHERNAME:
        return s_other_name_from_openssl(gn, err);
    default:
        cf_error_set(err, "unsupported_value", "type",
                     "general name type %d (x400Address or ediPartyName) is not supported", type);
        return NULL;
    }
    json_t *out = json_pack("{s:s, s:o}", "type", tname, "value", value);
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

json_t *cf_general_names_from_openssl(const GENERAL_NAMES *gns, cf_error_t *err)
{
    json_t *out = json_array();
    int n = gns ? sk_GENERAL_NAME_num(gns) : 0;
    for (int i = 0; out && i < n; i++) {
        json_t *gn = cf_general_name_from_openssl(sk_GENERAL_NAME_value(gns, i), err);
        if (!gn || json_array_append_new(out, gn) != 0) {
            char idx[32];
            snprintf(idx, sizeof idx, "[%d]", i);
            if (!cf_error_isset(err))
                cf_error_set(err, "internal", "", "out of memory");
            cf_error_prefix_field(err, idx);
            json_decref(out);
            return NULL;
        }
    }
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}
