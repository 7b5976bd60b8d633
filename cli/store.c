/* Reading certfleet's tables for the ca, cert and watcher commands (see store.h). */
#include "store.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "x509_print.h"

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

int cf_cli_ca_exists(cf_pg_t *pg, const char *name)
{
    if (!name)
        return 0;
    const char *values[1] = {name};
    PGresult *res = cf_pg_exec_params(pg, "SELECT 1 FROM certificate_authorities WHERE name = $1",
                                      1, values, NULL, NULL, 0);
    int rc = 0;
    if (!res)
        rc = cf_cli_fail("could not look up certificate authority \"%s\": %s", name,
                         cf_pg_errstr(pg));
    else if (PQntuples(res) == 0)
        rc = cf_cli_fail("certificate authority \"%s\" does not exist", name);
    PQclear(res);
    return rc;
}

PGresult *cf_cli_cert_find(cf_pg_t *pg, const char *serial, const char *ca, char *hex,
                           size_t hexlen)
{
    if (cf_cli_serial_normalize(serial, hex, hexlen) != 0) {
        cf_cli_fail("\"%s\" is not a serial number (hex digits, colons optional)", serial);
        return NULL;
    }
    if (cf_cli_ca_exists(pg, ca) != 0)
        return NULL;
    const char *values[2] = {hex, ca};
    PGresult *res = cf_pg_exec_params(
        pg,
        "SELECT c.id, a.name, row_to_json(c)::text, extract(epoch FROM c.expires)::bigint "
        "FROM certificates c JOIN certificate_authorities a ON a.id = c.ca_id "
        "WHERE c.serial = $1 AND ($2::text IS NULL OR a.name = $2) ORDER BY a.name",
        2, values, NULL, NULL, 0);
    if (!res) {
        cf_cli_fail("could not look up certificate \"%s\": %s", hex, cf_pg_errstr(pg));
        return NULL;
    }
    if (PQntuples(res) == 1)
        return res;
    if (PQntuples(res) == 0) {
        if (ca)
            cf_cli_fail("certificate \"%s\" of certificate authority \"%s\" does not exist", hex,
                        ca);
        else
            cf_cli_fail("certificate \"%s\" does not exist", hex);
    } else {
        /* The same serial under several CAs: only --ca can tell which one is meant. */
        char names[512] = "";
        for (int k = 0; k < PQntuples(res); k++)
            snprintf(names + strlen(names), sizeof names - strlen(names), "%s\"%s\"", k ? ", " : "",
                     PQgetvalue(res, k, 1));
        cf_cli_fail("serial \"%s\" belongs to certificates of %s: choose one with --ca", hex,
                    names);
    }
    PQclear(res);
    return NULL;
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
