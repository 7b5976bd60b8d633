/* cf_revocation: reason codes, CRL scopes and the Redis cache layout (cf_revocation.h). */
#include "cf_revocation.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const struct {
    const char *name;  /* django-ca's ReasonFlags name */
    const char *camel; /* RFC 5280's spelling */
    int code;
} s_reasons[] = {
    {"unspecified", "unspecified", 0},
    {"key_compromise", "keyCompromise", 1},
    {"ca_compromise", "cACompromise", 2},
    {"affiliation_changed", "affiliationChanged", 3},
    {"superseded", "superseded", 4},
    {"cessation_of_operation", "cessationOfOperation", 5},
    {"certificate_hold", "certificateHold", 6},
    {"remove_from_crl", "removeFromCRL", 8},
    {"privilege_withdrawn", "privilegeWithdrawn", 9},
    {"aa_compromise", "aACompromise", 10},
};
#define S_REASONS (sizeof s_reasons / sizeof s_reasons[0])

int cf_reason_code(const char *name)
{
    for (size_t i = 0; name && i < S_REASONS; i++)
        if (strcmp(s_reasons[i].name, name) == 0)
            return s_reasons[i].code;
    return -1;
}

const char *cf_reason_name(int code)
{
    for (size_t i = 0; i < S_REASONS; i++)
        if (s_reasons[i].code == code)
            return s_reasons[i].name;
    return NULL;
}

int cf_reason_parse(const char *text, const char *field, const char **out, cf_error_t *err)
{
    for (size_t i = 0; text && i < S_REASONS; i++) {
        if (strcasecmp(s_reasons[i].name, text) == 0 || strcasecmp(s_reasons[i].camel, text) == 0) {
            *out = s_reasons[i].name;
            return 0;
        }
    }
    cf_error_set(err, "invalid_value", field,
                 "unknown revocation reason \"%.64s\" (one of unspecified, key_compromise, "
                 "ca_compromise, affiliation_changed, superseded, cessation_of_operation, "
                 "certificate_hold, remove_from_crl, privilege_withdrawn, aa_compromise)",
                 text ? text : "");
    return -1;
}

static const char *const s_scopes[] = {"all", "ca", "user", "attribute"};

const char *cf_scope_name(cf_scope_t scope)
{
    return (unsigned)scope < 4 ? s_scopes[scope] : "all";
}

int cf_scope_parse(const char *text, const char *field, cf_scope_t *out, cf_error_t *err)
{
    if (!text || !*text || strcasecmp(text, "none") == 0) {
        *out = CF_SCOPE_ALL;
        return 0;
    }
    for (int i = 0; i < 4; i++) {
        if (strcasecmp(text, s_scopes[i]) == 0) {
            *out = (cf_scope_t)i;
            return 0;
        }
    }
    cf_error_set(err, "invalid_value", field,
                 "unknown CRL scope \"%.64s\" (one of all, ca, user, attribute)", text);
    return -1;
}

void cf_revstore_ocsp_key(char *buf, size_t len, int64_t ca_id, const char *serial)
{
    snprintf(buf, len, "cf:ocsp:%lld:%s", (long long)ca_id, serial);
}

void cf_revstore_crl_key(char *buf, size_t len, int64_t ca_id, cf_scope_t scope, int shard)
{
    snprintf(buf, len, "cf:crl:%lld:%s:%d", (long long)ca_id, cf_scope_name(scope), shard);
}

static void s_put64(unsigned char *p, int64_t v)
{
    uint64_t u = (uint64_t)v;
    for (int i = 7; i >= 0; i--) {
        p[i] = (unsigned char)(u & 0xff);
        u >>= 8;
    }
}

static int64_t s_get64(const unsigned char *p)
{
    uint64_t u = 0;
    for (int i = 0; i < 8; i++)
        u = (u << 8) | p[i];
    return (int64_t)u;
}

void cf_revstore_header(unsigned char out[CF_REVSTORE_HEADER], int64_t this_update,
                        int64_t next_update)
{
    memcpy(out, "CFR1", 4);
    s_put64(out + 4, this_update);
    s_put64(out + 12, next_update);
    memset(out + 20, 0, 4);
}

int cf_revstore_parse(const unsigned char *value, size_t len, int64_t *this_update,
                      int64_t *next_update)
{
    if (!value || len < CF_REVSTORE_HEADER || memcmp(value, "CFR1", 4) != 0)
        return -1;
    if (this_update)
        *this_update = s_get64(value + 4);
    if (next_update)
        *next_update = s_get64(value + 12);
    return 0;
}

int cf_serial_normalize(const char *text, const char *field, char *out, size_t len, cf_error_t *err)
{
    size_t n = 0;
    for (const char *p = text ? text : ""; *p; p++) {
        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)*p)) {
            cf_error_set(err, "invalid_value", field, "serial \"%.80s\" is not hexadecimal", text);
            return -1;
        }
        if (n + 1 >= len || n >= 40) {
            cf_error_set(err, "invalid_value", field,
                         "serial is longer than 20 octets (40 hex digits)");
            return -1;
        }
        out[n++] = (char)toupper((unsigned char)*p);
    }
    if (n == 0) {
        cf_error_set(err, "invalid_value", field, "serial is empty");
        return -1;
    }
    out[n] = '\0';
    /* As BN_bn2hex writes it (cf_serial_hex): whole octets, no leading zero octets. */
    size_t skip = 0;
    while (skip + 1 < n && out[skip] == '0')
        skip++;
    memmove(out, out + skip, n - skip + 1);
    n -= skip;
    if (n % 2 && !(n == 1 && out[0] == '0')) {
        if (n + 2 > len) {
            cf_error_set(err, "invalid_value", field, "serial is too long");
            return -1;
        }
        memmove(out + 1, out, n + 1);
        out[0] = '0';
    }
    return 0;
}
