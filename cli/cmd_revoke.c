/* certfleet cert revoke and ca revoke (django-ca's revoke_cert and revoke_ca): one cert.revoke
 * job through the broker, served by the signer, which marks the row revoked, marks the
 * issuer's CRLs stale and re-signs the OCSP response in one transaction. Every argument is
 * checked here first, so that a mistyped command contacts nothing. */
#include <ctype.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_msgpack.h"
#include "cf_revocation.h"
#include "cli.h"
#include "store.h"
#include "x509_print.h"

static const char s_help_text[] =
    "usage: certfleet [--json] cert revoke SERIAL [--ca NAME] [--reason R] [--compromised TIME]\n"
    "       certfleet [--json] ca revoke NAME [--reason R] [--compromised TIME]\n"
    "\n"
    "  SERIAL                  hex, colons optional, any case\n"
    "  --ca NAME               the issuing CA, when the serial is known under several\n"
    "  --reason R              unspecified (default), key_compromise, ca_compromise,\n"
    "                          affiliation_changed, superseded, cessation_of_operation,\n"
    "                          certificate_hold, remove_from_crl, privilege_withdrawn,\n"
    "                          aa_compromise (RFC 5280's keyCompromise etc. too)\n"
    "  --compromised TIME      when the key was compromised, in UTC: 2026-11-20T10:00:00Z,\n"
    "                          \"2026-11-20 10:00:00\" or Unix seconds; not in the future\n"
    "\n"
    "The CA's CRLs are marked stale (certfleet crl build --all --if-stale rebuilds them) and the\n"
    "OCSP response is re-signed at once when the CA has a responder.\n";

enum { O_CA = 256, O_REASON, O_COMPROMISED };

/* TEXT, the value of option OPT, as Unix seconds: ISO 8601 in UTC ("2026-11-20T10:00:00Z",
 * "2026-11-20 10:00:00", "+00:00" allowed) or digits. Not in the future. 0, or -1 after
 * printing why (a usage error). */
static int s_parse_time(const char *opt, const char *text, long long *out)
{
    long long t = -1;
    bool digits = *text != '\0';
    for (const char *p = text; *p; p++)
        digits = digits && isdigit((unsigned char)*p);
    if (digits) {
        if (cf_cli_parse_int(opt, text, 0, 253402300799LL, &t) != 0)
            return -1;
    } else {
        struct tm tm = {0};
        const char *rest = strptime(text, "%Y-%m-%dT%H:%M:%S", &tm);
        if (!rest) {
            memset(&tm, 0, sizeof tm);
            rest = strptime(text, "%Y-%m-%d %H:%M:%S", &tm);
        }
        if (rest && (strcmp(rest, "") == 0 || strcmp(rest, "Z") == 0 || strcmp(rest, "z") == 0 ||
                     strcmp(rest, "+00:00") == 0 || strcmp(rest, "+0000") == 0)) {
            struct tm want = tm, back;
            time_t tt = timegm(&tm);
            /* strptime takes 2026-02-31; timegm would quietly make it March 3rd. */
            if (tt != (time_t)-1 && gmtime_r(&tt, &back) && back.tm_year == want.tm_year &&
                back.tm_mon == want.tm_mon && back.tm_mday == want.tm_mday &&
                back.tm_hour == want.tm_hour && back.tm_min == want.tm_min &&
                back.tm_sec == want.tm_sec && tt >= 0)
                t = (long long)tt;
        }
        if (t < 0) {
            cf_cli_usage_error("option \"%s\" needs a time in UTC as 2026-11-20T10:00:00Z, "
                               "\"2026-11-20 10:00:00\" or Unix seconds, not \"%s\"",
                               opt, text);
            return -1;
        }
    }
    if (t > (long long)time(NULL)) {
        char when[32];
        cf_cli_time(t, when, sizeof when);
        cf_cli_usage_error("option \"%s\": %s is in the future", opt, when);
        return -1;
    }
    *out = t;
    return 0;
}

/* The options of both verbs into PARAMS; the index of the first operand, or -(exit code). */
static int s_options(int argc, char **argv, const char *noun, json_t *params)
{
    static const struct option cert_opts[] = {
        {"ca", required_argument, NULL, O_CA},
        {"reason", required_argument, NULL, O_REASON},
        {"compromised", required_argument, NULL, O_COMPROMISED},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    /* ca revoke has no --ca: the CA is the operand. */
    const struct option *opts = strcmp(noun, "cert") == 0 ? cert_opts : cert_opts + 1;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_CA:
            json_object_set_new(params, "ca", json_string(optarg));
            break;
        case O_REASON: {
            const char *name = NULL;
            cf_error_t err = {0};
            if (cf_reason_parse(optarg, "--reason", &name, &err) != 0)
                return -cf_cli_usage_error("option \"--reason\": %s", err.message);
            json_object_set_new(params, "reason", json_string(name));
            break;
        }
        case O_COMPROMISED: {
            long long t;
            if (s_parse_time("--compromised", optarg, &t) != 0)
                return -2;
            json_object_set_new(params, "compromised", json_integer(t));
            break;
        }
        case 'h':
            fputs(s_help_text, stdout);
            return 0;
        default:
            return -cf_cli_option_error(c, argv, noun);
        }
    }
    return optind;
}

/* A time of the result (Unix seconds, or text as the worker wrote it) for people. */
static void s_time_text(const json_t *v, char *out, size_t len)
{
    if (json_is_integer(v))
        cf_cli_time(json_integer_value(v), out, len);
    else
        snprintf(out, len, "%s", json_is_string(v) ? json_string_value(v) : "-");
}

/* Send the cert.revoke job PARAMS and print its result; the exit code. NAME is the CA being
 * revoked (ca revoke), else NULL. */
static int s_revoke(cf_cli_t *cli, const json_t *params, const char *name)
{
    cf_reply_t *reply = cf_cli_call_json(cli, "cert.revoke", params, 0);
    if (!reply)
        return 1;
    if (!cf_reply_ok(reply)) {
        int rc = cf_cli_fail_reply("cert.revoke", reply);
        cf_reply_destroy(&reply);
        return rc;
    }
    json_t *doc = cf_reply_to_json(reply);
    const json_t *r = json_object_get(doc, "result");
    if (cli->json) {
        cf_cli_print_json(r);
    } else {
        const char *serial = json_string_value(json_object_get(r, "serial"));
        const char *issuer = json_string_value(json_object_get(r, "ca"));
        const char *kind = json_string_value(json_object_get(r, "kind"));
        const char *ocsp = json_string_value(json_object_get(r, "ocsp"));
        char *colons = cf_cli_serial_colons(serial ? serial : "");
        char revoked[48], compromised[48];
        s_time_text(json_object_get(r, "revoked_date"), revoked, sizeof revoked);
        s_time_text(json_object_get(r, "compromised"), compromised, sizeof compromised);
        if (name)
            printf("Revoked certificate authority \"%s\"\n", name);
        else if (kind && strcmp(kind, "ca") == 0)
            printf("Revoked a certificate authority\n");
        else
            printf("Revoked certificate\n");
        printf("  %-22s %s\n", "Serial:", colons ? colons : "?");
        printf("  %-22s %s\n",
               kind && strcmp(kind, "ca") == 0 ? "Issuer:" : "Certificate authority:",
               issuer ? issuer : "-");
        printf("  %-22s %s\n", "Reason:", json_string_value(json_object_get(r, "reason")));
        printf("  %-22s %s\n", "Revoked on:", revoked);
        printf("  %-22s %s\n", "Compromised:", compromised);
        printf("  %-22s %s\n", "OCSP response:",
               ocsp && strcmp(ocsp, "resigned") == 0 ? "re-signed as revoked"
               : ocsp && strcmp(ocsp, "no_responder") == 0
                   ? "not re-signed: the CA has no OCSP responder"
                   : (ocsp ? ocsp : "-"));
        printf("  %-22s %lld\n", "CRLs marked stale:",
               (long long)json_integer_value(json_object_get(r, "crls_marked")));
        free(colons);
    }
    json_decref(doc);
    cf_reply_destroy(&reply);
    return 0;
}

int cf_cli_cert_revoke(cf_cli_t *cli, int argc, char **argv)
{
    json_t *params = json_object();
    int rc = s_options(argc, argv, "cert", params);
    if (rc <= 0) {
        json_decref(params);
        return -rc;
    }
    char serial[128];
    if (argc - rc != 1) {
        rc = cf_cli_usage(
            "cert revoke SERIAL [--ca NAME] [--reason R] [--compromised TIME]   (certfleet cert "
            "revoke --help)");
    } else if (!*argv[rc] || cf_cli_serial_normalize(argv[rc], serial, sizeof serial) != 0) {
        rc = cf_cli_usage_error("\"%s\" is not a serial number (hex digits, colons optional)",
                                argv[rc]);
    } else {
        json_object_set_new(params, "serial", json_string(serial));
        rc = s_revoke(cli, params, NULL);
    }
    json_decref(params);
    return rc;
}

int cf_cli_ca_revoke(cf_cli_t *cli, int argc, char **argv)
{
    json_t *params = json_object();
    int rc = s_options(argc, argv, "ca", params);
    if (rc <= 0) {
        json_decref(params);
        return -rc;
    }
    if (argc - rc != 1) {
        json_decref(params);
        return cf_cli_usage(
            "ca revoke NAME [--reason R] [--compromised TIME]   (certfleet ca revoke --help)");
    }
    const char *name = argv[rc];
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg) {
        json_decref(params);
        return 1;
    }
    /* The job takes a serial: a CA is revoked by its own certificate's serial. */
    const char *values[1] = {name};
    PGresult *res = cf_pg_exec_params(
        pg, "SELECT serial FROM certificate_authorities WHERE name = $1", 1, values, NULL, NULL, 0);
    if (!res)
        rc = cf_cli_fail("could not look up certificate authority \"%s\": %s", name,
                         cf_pg_errstr(pg));
    else if (PQntuples(res) == 0)
        rc = cf_cli_fail("certificate authority \"%s\" does not exist", name);
    else
        rc = 0;
    if (rc == 0)
        json_object_set_new(params, "serial", json_string(PQgetvalue(res, 0, 0)));
    PQclear(res);
    cf_pg_destroy(&pg);
    if (rc == 0)
        rc = s_revoke(cli, params, name);
    json_decref(params);
    return rc;
}
