/* Reading certfleet's tables for the ca and cert commands (see store.h). */
#include "store.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

cf_pg_t *cf_cli_pg_open(cf_cli_t *cli)
{
    cf_pg_t *pg = cf_pg_new_from_config(cli->config);
    if (!pg) {
        cf_cli_fail("out of memory");
        return NULL;
    }
    if (cf_pg_connect(pg) != 0) {
        /* libpq's text ends with a newline and may run to several lines: keep the first. */
        char why[512];
        snprintf(why, sizeof why, "%s", cf_pg_errstr(pg));
        why[strcspn(why, "\n")] = '\0';
        cf_cli_fail("could not connect to PostgreSQL: %s", why);
        cf_pg_destroy(&pg);
    }
    return pg;
}

void cf_cli_time(long long t, char *out, size_t outlen)
{
    time_t tt = (time_t)t;
    struct tm tm;
    if (!gmtime_r(&tt, &tm) || strftime(out, outlen, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        snprintf(out, outlen, "%lld", t);
}

/* PostgreSQL's JSON form of timestamptz: "YYYY-MM-DDTHH:MM:SS[.f]+HH[:MM]"; -1 if not one. */
static int s_pg_time(const char *s, long long *out)
{
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest || strlen(s) < 19)
        return -1;
    if (*rest == '.') {
        rest++;
        while (*rest >= '0' && *rest <= '9')
            rest++;
    }
    int hh = 0, mm = 0;
    char sign = *rest;
    if (sign != '+' && sign != '-')
        return -1;
    int n = 0;
    if (sscanf(rest + 1, "%2d%n", &hh, &n) != 1)
        return -1;
    rest += 1 + n;
    if (*rest == ':' && sscanf(rest + 1, "%2d%n", &mm, &n) == 1)
        rest += 1 + n;
    if (*rest)
        return -1;
    long long t = (long long)timegm(&tm), off = hh * 3600LL + mm * 60LL;
    *out = sign == '+' ? t - off : t + off;
    return 0;
}

void cf_cli_row_tidy(json_t *row)
{
    const char *key;
    json_t *v;
    json_object_foreach(row, key, v)
    {
        long long t;
        if (json_is_string(v) && s_pg_time(json_string_value(v), &t) == 0) {
            char text[32];
            cf_cli_time(t, text, sizeof text);
            json_string_set(v, text);
        }
    }
}

unsigned char *cf_cli_bytea(const char *text, size_t *len)
{
    if (!text || strncmp(text, "\\x", 2) != 0)
        return NULL;
    size_t n = strlen(text + 2);
    if (n % 2 != 0)
        return NULL;
    unsigned char *out = malloc(n / 2 + 1);
    if (!out)
        return NULL;
    for (size_t i = 0; i < n / 2; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)text[2 + 2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)text[3 + 2 * i]);
        if (hi < 0 || lo < 0) {
            free(out);
            return NULL;
        }
        out[i] = (unsigned char)(hi << 4 | lo);
    }
    *len = n / 2;
    return out;
}

X509 *cf_cli_bytea_x509(const char *text)
{
    size_t len = 0;
    unsigned char *der = cf_cli_bytea(text, &len);
    const unsigned char *p = der;
    X509 *cert = der ? d2i_X509(NULL, &p, (long)len) : NULL;
    free(der);
    ERR_clear_error();
    return cert;
}
