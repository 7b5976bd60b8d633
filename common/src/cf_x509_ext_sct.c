/* cf_x509_ext_sct: the two read-only lists of signed certificate timestamps (RFC 6962):
 * precertificate_signed_certificate_timestamps (embedded in certificates) and
 * signed_certificate_timestamps (in OCSP responses). Like django-ca's models they keep
 * version, log ID, timestamp and entry type but not the signature, so they can be read and
 * validated but never encoded: a CA receives SCTs from logs, it does not make them. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/ct.h>
#include <openssl/err.h>

#include "cf_x509_ext_int.h"

/* 9999-12-31T23:59:59.999Z in milliseconds: the last instant the text form can carry. */
#define S_MAX_MS 253402300799999ULL

/* "2023-12-10T00:00:00Z", with ".mmm" when the milliseconds are not zero. */
static json_t *s_timestamp_text(uint64_t ms)
{
    if (ms > S_MAX_MS)
        return NULL;
    time_t secs = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&secs, &tm))
        return NULL;
    char text[40];
    size_t n = strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0)
        return NULL;
    if (ms % 1000)
        snprintf(text + n, sizeof text - n, ".%03uZ", (unsigned)(ms % 1000));
    else
        snprintf(text + n, sizeof text - n, "Z");
    return json_string(text);
}

/* Parse "YYYY-MM-DDTHH:MM:SS[.f{1,6}][Z|+00:00]" (no zone: UTC, like the reference's naive
 * datetimes) into milliseconds; -1 when malformed, not a real date, or finer than a
 * millisecond (an SCT cannot carry that). */
static int s_timestamp_parse(const char *s, size_t len, uint64_t *ms)
{
    unsigned y, mo, d, h, mi, sec;
    int used = 0;
    if (len < 19 ||
        sscanf(s, "%4u-%2u-%2uT%2u:%2u:%2u%n", &y, &mo, &d, &h, &mi, &sec, &used) != 6 ||
        used != 19 || s[4] != '-' || s[7] != '-' || s[10] != 'T' || s[13] != ':' || s[16] != ':')
        return -1;
    for (int i = 0; i < 19; i++)
        if (i != 4 && i != 7 && i != 10 && i != 13 && i != 16 && (s[i] < '0' || s[i] > '9'))
            return -1;
    const char *p = s + 19, *end = s + len;
    unsigned frac_us = 0;
    if (p < end && *p == '.') {
        p++;
        int digits = 0;
        while (p < end && *p >= '0' && *p <= '9' && digits < 6) {
            frac_us = frac_us * 10 + (unsigned)(*p - '0');
            p++;
            digits++;
        }
        if (digits == 0)
            return -1;
        for (; digits < 6; digits++)
            frac_us *= 10;
    }
    if (p < end && *p == 'Z')
        p++;
    else if (end - p == 6 && memcmp(p, "+00:00", 6) == 0)
        p += 6;
    if (p != end || frac_us % 1000 || y < 1970)
        return -1;
    struct tm tm = {.tm_year = (int)y - 1900,
                    .tm_mon = (int)mo - 1,
                    .tm_mday = (int)d,
                    .tm_hour = (int)h,
                    .tm_min = (int)mi,
                    .tm_sec = (int)sec};
    time_t t = timegm(&tm);
    /* timegm normalises 2023-02-30 into March: a changed field means no such date. */
    if (t == (time_t)-1 || tm.tm_year != (int)y - 1900 || tm.tm_mon != (int)mo - 1 ||
        tm.tm_mday != (int)d || tm.tm_hour != (int)h || tm.tm_min != (int)mi ||
        tm.tm_sec != (int)sec)
        return -1;
    *ms = (uint64_t)t * 1000 + frac_us / 1000;
    return 0;
}

static json_t *s_sct_parse_one(const json_t *in, const char *field, cf_error_t *err)
{
    static const char *const fields[] = {"version", "log_id", "timestamp", "entry_type", NULL};
    static const char *const required[] = {"log_id", "timestamp", "entry_type", NULL};
    if (cf_ext_check_object(in, "signed certificate timestamp", fields, required, err) != 0)
        goto fail;
    const json_t *version = json_object_get(in, "version");
    if (version && !(json_is_string(version) && strcmp(json_string_value(version), "v1") == 0)) {
        cf_error_set(err, "invalid_value", "version", "version must be \"v1\"");
        goto fail;
    }
    const char *entry = json_string_value(json_object_get(in, "entry_type"));
    if (!entry || (strcmp(entry, "precertificate") && strcmp(entry, "x509_certificate"))) {
        cf_error_set(err, "invalid_value", "entry_type",
                     "entry_type must be \"precertificate\" or \"x509_certificate\"");
        goto fail;
    }
    const json_t *ts = json_object_get(in, "timestamp");
    uint64_t ms;
    if (!json_is_string(ts) ||
        s_timestamp_parse(json_string_value(ts), json_string_length(ts), &ms) != 0) {
        cf_error_set(err, json_is_string(ts) ? "invalid_value" : "invalid_type", "timestamp",
                     "timestamp must be an ISO 8601 UTC time with at most millisecond precision");
        goto fail;
    }
    json_t *log_id = cf_ext_parse_base64(json_object_get(in, "log_id"), "log_id", err);
    if (!log_id)
        goto fail;
    json_t *out = json_pack("{s:s, s:o, s:o, s:s}", "version", "v1", "log_id", log_id, "timestamp",
                            s_timestamp_text(ms), "entry_type", entry);
    if (!out)
        cf_error_set(err, "internal", "", "out of memory");
    return out;
fail:
    cf_error_prefix_field(err, field);
    return NULL;
}

static json_t *s_sct_parse(const json_t *value, cf_error_t *err)
{
    if (cf_ext_check_list(value, "", err) != 0)
        return NULL;
    json_t *out = json_array();
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", i);
        json_t *sct = s_sct_parse_one(v, path, err);
        if (cf_ext_append(out, sct) != 0) {
            json_decref(out);
            return NULL;
        }
    }
    if (cf_ext_check_unique(out, "", err) != 0) {
        json_decref(out);
        return NULL;
    }
    return out;
}

/* The entry type is not in the DER: it follows from the extension, as in cryptography. */
static json_t *s_sct_decode(const unsigned char *der, long len, const char *entry_type,
                            cf_error_t *err)
{
    const unsigned char *p = der;
    STACK_OF(SCT) *scts = d2i_SCT_LIST(NULL, &p, len);
    if (!scts || p != der + len) {
        SCT_LIST_free(scts);
        ERR_clear_error();
        cf_error_set(err, "invalid_der", "", "not a valid signed certificate timestamp list");
        return NULL;
    }
    json_t *out = json_array();
    for (int i = 0; out && i < sk_SCT_num(scts); i++) {
        const SCT *sct = sk_SCT_value(scts, i);
        char path[CF_ERROR_FIELD_MAX];
        cf_ext_path_index(path, "", (size_t)i);
        if (SCT_get_version(sct) != SCT_VERSION_V1) {
            cf_error_set(err, "unsupported_value", path, "only version 1 SCTs are supported");
            json_decref(out);
            out = NULL;
            break;
        }
        unsigned char *log_id = NULL;
        size_t log_id_len = SCT_get0_log_id(sct, &log_id);
        json_t *ts = s_timestamp_text(SCT_get_timestamp(sct));
        if (!ts) {
            cf_error_set(err, "unsupported_value", path, "timestamp is out of range");
            json_decref(out);
            out = NULL;
            break;
        }
        json_t *item = json_pack("{s:s, s:o, s:o, s:s}", "version", "v1", "log_id",
                                 cf_ext_base64_from_bytes(log_id, log_id_len), "timestamp", ts,
                                 "entry_type", entry_type);
        if (!item || json_array_append_new(out, item)) {
            json_decref(out);
            out = NULL;
        }
    }
    SCT_LIST_free(scts);
    if (!out && !cf_error_isset(err))
        cf_error_set(err, "internal", "", "out of memory");
    return out;
}

static json_t *s_precert_decode(const unsigned char *der, long len, cf_error_t *err)
{
    return s_sct_decode(der, len, "precertificate", err);
}

static json_t *s_cert_decode(const unsigned char *der, long len, cf_error_t *err)
{
    return s_sct_decode(der, len, "x509_certificate", err);
}

static void s_sct_text(const json_t *value, cf_ext_buf_t *out)
{
    size_t i;
    json_t *v;
    json_array_foreach(value, i, v)
    {
        const char *entry = json_string_value(json_object_get(v, "entry_type"));
        const char *ts = json_string_value(json_object_get(v, "timestamp"));
        const char *version = json_string_value(json_object_get(v, "version"));
        char *hex = cf_ext_hex_of_base64(json_object_get(v, "log_id"));
        cf_ext_line(out, 0, "* %s (%s):",
                    entry && strcmp(entry, "precertificate") == 0 ? "Precertificate"
                                                                  : "X.509 certificate",
                    version ? version : "?");
        cf_ext_line(out, 1, "Timestamp: %s", ts ? ts : "?");
        cf_ext_line(out, 1, "Log ID: %s", hex ? hex : "?");
        free(hex);
    }
}

const cf_ext_def_t cf_ext_def_precertificate_signed_certificate_timestamps = {
    "precertificate_signed_certificate_timestamps",
    "1.3.6.1.4.1.11129.2.4.2",
    "Precertificate Signed Certificate Timestamps",
    0,
    CF_EXT_READ_ONLY,
    s_sct_parse,
    NULL,
    s_precert_decode,
    s_sct_text,
};

const cf_ext_def_t cf_ext_def_signed_certificate_timestamps = {
    "signed_certificate_timestamps",
    "1.3.6.1.4.1.11129.2.4.5",
    "Signed Certificate Timestamps",
    0,
    CF_EXT_READ_ONLY,
    s_sct_parse,
    NULL,
    s_cert_decode,
    s_sct_text,
};
