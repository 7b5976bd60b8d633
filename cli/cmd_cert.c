/* certfleet cert: certificates, as django-ca's sign_cert, list_certs, view_cert and dump_cert.
 * `sign` is a cert.issue job sent through the broker (only the signer holds CA keys); list,
 * view and dump read PostgreSQL. Serials are accepted with or without colons, in any case. */
#include <getopt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_ca.h"
#include "cf_msgpack.h"
#include "cli.h"
#include "options.h"
#include "store.h"
#include "x509_print.h"

static const char s_help_text[] =
    "usage: certfleet [--json] cert VERB ...\n"
    "\n"
    "  cert sign --ca NAME --csr FILE [OPTIONS]   sign a CSR (PEM or DER)\n"
    "      --profile P                 a profile of schemas/profiles (default [ca] "
    "default_profile)\n"
    "      --subject S                 \"CN=x,O=y\", \"/O=y/CN=x\" or a JSON Name model\n"
    "                                  (default: the CSR's)\n"
    "      --expires DAYS              validity (default: the profile's)\n"
    "      --algorithm A               signature hash (default: the CA's)\n"
    "      --extension JSON            an extension model (repeatable)\n"
    "      --password P | --password-file F   the CA's key password\n"
    "      --no-crl-url  --no-ocsp-url  --no-issuer-url   leave the CA's URLs out\n"
    "      --watch EMAIL               told by mail when it is about to expire (repeatable)\n"
    "      --out FILE, -o FILE         write the certificate there (default: standard output)\n"
    "      --bundle                    the certificate followed by its chain\n"
    "      --format PEM|DER            (default PEM); the serial goes to standard error\n"
    "  cert list [--ca NAME] [--expired] [--revoked]\n"
    "                                  valid certificates (and expired, revoked ones)\n"
    "  cert view SERIAL [--ca NAME]    one certificate: its record and contents\n"
    "  cert dump SERIAL [--ca NAME] [--bundle] [--format PEM|DER] [-o FILE]\n"
    "  cert import --ca NAME FILE [--profile P]   record an existing certificate of NAME\n"
    "                                  the certificate (--bundle: followed by its chain)\n"
    "  cert revoke SERIAL [--ca NAME] [--reason R] [--compromised TIME]   (cert revoke --help)\n";

enum {
    O_CA = 256,
    O_CSR,
    O_PROFILE,
    O_SUBJECT,
    O_EXPIRES,
    O_ALGORITHM,
    O_EXTENSION,
    O_PASSWORD,
    O_PASSWORD_FILE,
    O_BUNDLE,
    O_FORMAT,
    O_NO_CRL,
    O_NO_OCSP,
    O_NO_ISSUER,
    O_EXPIRED,
    O_REVOKED,
    O_WATCH,
};

static int s_help(FILE *out, int rc)
{
    fputs(s_help_text, out);
    return rc;
}

/* Write CERTS as asked: to PATH or standard output; 0 or 1 (printed). */
static int s_write(X509 *const *certs, int n, bool der, const char *path)
{
    if (cf_cli_write_certs(certs, n, der, path) != 0)
        return cf_cli_fail("could not write \"%s\": %m", path ? path : "standard output");
    return 0;
}

/* --- sign -------------------------------------------------------------------------------- */

/* A certificate from a msgpack bin (caller owns); NULL when it is not one. */
static X509 *s_cert_from_bin(const msgpack_object *o)
{
    if (!o || o->type != MSGPACK_OBJECT_BIN)
        return NULL;
    const unsigned char *p = (const unsigned char *)o->via.bin.ptr;
    return d2i_X509(NULL, &p, (long)o->via.bin.size);
}

/* The certificate of a cert.issue result, then its chain (the issuing CA first), into CERTS
 * (room for 34). The count, or -1. */
static int s_result_certs(const msgpack_object *result, X509 **certs)
{
    certs[0] = s_cert_from_bin(cf_msgpack_map_get(result, "der"));
    if (!certs[0])
        return -1;
    int n = 1;
    const msgpack_object *chain = cf_msgpack_map_get(result, "chain");
    for (uint32_t i = 0;
         chain && chain->type == MSGPACK_OBJECT_ARRAY && i < chain->via.array.size && n < 34; i++) {
        X509 *c = s_cert_from_bin(&chain->via.array.ptr[i]);
        if (!c)
            break;
        certs[n++] = c;
    }
    return n;
}

static int s_sign(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"ca", required_argument, NULL, O_CA},
        {"csr", required_argument, NULL, O_CSR},
        {"profile", required_argument, NULL, O_PROFILE},
        {"subject", required_argument, NULL, O_SUBJECT},
        {"expires", required_argument, NULL, O_EXPIRES},
        {"algorithm", required_argument, NULL, O_ALGORITHM},
        {"extension", required_argument, NULL, O_EXTENSION},
        {"password", required_argument, NULL, O_PASSWORD},
        {"password-file", required_argument, NULL, O_PASSWORD_FILE},
        {"out", required_argument, NULL, 'o'},
        {"bundle", no_argument, NULL, O_BUNDLE},
        {"format", required_argument, NULL, O_FORMAT},
        {"no-crl-url", no_argument, NULL, O_NO_CRL},
        {"no-ocsp-url", no_argument, NULL, O_NO_OCSP},
        {"no-issuer-url", no_argument, NULL, O_NO_ISSUER},
        {"watch", required_argument, NULL, O_WATCH},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int rc = 2, c, n = 0;
    long long days;
    bool bundle = false, der = false;
    const char *csr_path = NULL, *path = NULL;
    json_t *params = json_object(), *exts = json_array(), *doc = NULL;
    char *secret = NULL;
    unsigned char *csr = NULL;
    size_t csr_len = 0;
    cf_x509_object_t obj = {0};
    cf_reply_t *reply = NULL;
    X509 *certs[34] = {0};
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case O_CA:
            json_object_set_new(params, "ca", json_string(optarg));
            break;
        case O_CSR:
            csr_path = optarg;
            break;
        case O_PROFILE:
            json_object_set_new(params, "profile", json_string(optarg));
            break;
        case O_SUBJECT: {
            json_error_t jerr;
            json_t *subject = optarg[0] == '[' ? json_loads(optarg, 0, &jerr) : json_string(optarg);
            if (!subject) {
                rc = cf_cli_fail("--subject is not JSON: %s (column %d)", jerr.text, jerr.column);
                goto out;
            }
            json_object_set_new(params, "subject", subject);
            break;
        }
        case O_EXPIRES:
            if (cf_cli_parse_int("--expires", optarg, 1, 365LL * 1000, &days) != 0)
                goto out;
            json_object_set_new(params, "expires",
                                json_integer((long long)time(NULL) + days * 86400));
            break;
        case O_ALGORITHM:
            json_object_set_new(params, "algorithm", json_string(optarg));
            break;
        case O_EXTENSION: {
            json_t *models = cf_cli_extensions_arg("--extension", optarg);
            if (!models) {
                rc = 1;
                goto out;
            }
            json_array_extend(exts, models);
            json_decref(models);
            break;
        }
        case O_PASSWORD:
        case O_PASSWORD_FILE:
            if ((c = cf_cli_password_option(params, c == O_PASSWORD_FILE, optarg, &secret)) != 0) {
                rc = c;
                goto out;
            }
            break;
        case 'o':
            path = optarg;
            break;
        case O_BUNDLE:
            bundle = true;
            break;
        case O_FORMAT:
            if (cf_cli_parse_format(optarg, &der) != 0)
                goto out;
            break;
        case O_NO_CRL:
            json_object_set_new(params, "add_crl_url", json_false());
            break;
        case O_NO_OCSP:
            json_object_set_new(params, "add_ocsp_url", json_false());
            break;
        case O_NO_ISSUER:
            json_object_set_new(params, "add_issuer_url", json_false());
            break;
        case O_WATCH:
            /* Checked by cert.issue, which names the bad one (params.watchers[i]). */
            if (!json_object_get(params, "watchers"))
                json_object_set_new(params, "watchers", json_array());
            json_array_append_new(json_object_get(params, "watchers"), json_string(optarg));
            break;
        case 'h':
            rc = s_help(stdout, 0);
            goto out;
        default:
            rc = cf_cli_option_error(c, argv, "cert");
            goto out;
        }
    }
    if (argc != optind || !json_object_get(params, "ca") || !csr_path) {
        rc = cf_cli_usage("cert sign --ca NAME --csr FILE [OPTIONS]   (certfleet cert help)");
        goto out;
    }
    if (bundle && der) {
        rc = cf_cli_usage_error("a bundle is several certificates: write it as PEM, not DER");
        goto out;
    }
    rc = 1;
    /* Checked here so that a wrong file gets a plain answer without a round trip. */
    if (!(csr = cf_cli_read_file(csr_path, &csr_len))) {
        rc = cf_cli_fail("could not read \"%s\": %m", csr_path);
        goto out;
    }
    if (cf_x509_object_load(csr, csr_len, &obj) != 0 || obj.kind != CF_X509_CSR) {
        rc = cf_cli_fail("\"%s\" holds no certificate signing request in PEM or DER", csr_path);
        goto out;
    }
    bool pem = csr_len > 11 && memmem(csr, csr_len, "-----BEGIN ", 11);
    if (json_array_size(exts) > 0)
        json_object_set(params, "extensions", exts);
    /* The params map by hand: the CSR goes as str (PEM) or bin (DER), which JSON cannot say. */
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, json_object_size(params) + 1);
    const char *key;
    json_t *value;
    json_object_foreach(params, key, value)
    {
        cf_msgpack_pack_cstr(&pk, key);
        cf_json_to_msgpack(value, &pk);
    }
    cf_msgpack_pack_cstr(&pk, "csr");
    if (pem) {
        msgpack_pack_str(&pk, csr_len);
        msgpack_pack_str_body(&pk, csr, csr_len);
    } else {
        msgpack_pack_bin(&pk, csr_len);
        msgpack_pack_bin_body(&pk, csr, csr_len);
    }
    if (!(reply = cf_cli_call(cli, "cert.issue", buf.data, buf.size, 0)))
        goto out;
    if (!cf_reply_ok(reply)) {
        rc = cf_cli_fail_reply("cert.issue", reply);
        goto out;
    }
    const msgpack_object *result = cf_reply_result(reply);
    if ((n = s_result_certs(result, certs)) < 0) {
        rc = cf_cli_fail("cert.issue: the reply holds no certificate");
        goto out;
    }
    int count = bundle ? n : 1;
    if (cli->json) {
        doc = cf_reply_to_json(reply);
        json_t *res = json_object_get(doc, "result");
        if (path) {
            if (s_write(certs, count, der, path) != 0)
                goto out;
            json_object_set_new(res, "file", json_string(path));
        }
        cf_cli_print_json(res);
    } else {
        if (s_write(certs, count, der, path) != 0)
            goto out;
        char *serial = cf_serial_hex(X509_get0_serialNumber(certs[0]));
        fprintf(stderr, "%s\n", serial ? serial : "?");
        free(serial);
    }
    rc = 0;
out:
    /* The password also sits in PARAMS and in BUF: wipe both copies. */
    if (json_string_value(json_object_get(params, "password"))) {
        char *pw = (char *)json_string_value(json_object_get(params, "password"));
        OPENSSL_cleanse(pw, strlen(pw));
    }
    if (buf.data)
        OPENSSL_cleanse(buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    cf_cli_free_secret(secret);
    for (int i = 0; i < n; i++)
        X509_free(certs[i]);
    cf_reply_destroy(&reply);
    cf_x509_object_clear(&obj);
    free(csr);
    json_decref(doc);
    json_decref(exts);
    json_decref(params);
    return rc;
}

/* --- lookups ----------------------------------------------------------------------------- */

/* The certificate SERIAL (as typed) of CA_NAME (NULL: any CA): its row as JSON (caller owns),
 * its CA's name into CA_OUT, its expiry into *EXPIRES; NULL after printing why. */
static json_t *s_find(cf_pg_t *pg, const char *serial, const char *ca_name, char *ca_out,
                      size_t ca_len, long long *expires)
{
    char hex[128];
    PGresult *res = cf_cli_cert_find(pg, serial, ca_name, hex, sizeof hex);
    if (!res)
        return NULL;
    json_t *row = json_loads(PQgetvalue(res, 0, 2), 0, NULL);
    if (!row) {
        cf_cli_fail("could not read certificate \"%s\"", hex);
    } else {
        snprintf(ca_out, ca_len, "%s", PQgetvalue(res, 0, 1));
        *expires = atoll(PQgetvalue(res, 0, 3));
    }
    PQclear(res);
    return row;
}

/* The addresses watching the certificate ROW (docs/notify.md) as a JSON list (new reference;
 * empty when the database cannot say). */
static json_t *s_watchers(cf_pg_t *pg, const json_t *row)
{
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)json_integer_value(json_object_get(row, "id")));
    const char *values[1] = {id};
    PGresult *res =
        cf_pg_exec_params(pg,
                          "SELECT w.mail FROM certificate_watchers cw JOIN watchers w "
                          "ON w.id = cw.watcher_id WHERE cw.certificate_id = $1::bigint "
                          "ORDER BY lower(w.mail)",
                          1, values, NULL, NULL, 0);
    json_t *list = json_array();
    for (int r = 0; res && r < PQntuples(res); r++)
        json_array_append_new(list, json_string(PQgetvalue(res, r, 0)));
    PQclear(res);
    return list;
}

static const char *s_status(bool revoked, long long expires)
{
    return revoked ? "revoked" : expires <= (long long)time(NULL) ? "expired" : "valid";
}

/* --- list -------------------------------------------------------------------------------- */

static int s_list(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"ca", required_argument, NULL, O_CA},
                                         {"expired", no_argument, NULL, O_EXPIRED},
                                         {"revoked", no_argument, NULL, O_REVOKED},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    const char *ca_name = NULL;
    bool expired = false, revoked = false;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_CA:
            ca_name = optarg;
            break;
        case O_EXPIRED:
            expired = true;
            break;
        case O_REVOKED:
            revoked = true;
            break;
        case 'h':
            return s_help(stdout, 0);
        default:
            return cf_cli_option_error(c, argv, "cert");
        }
    }
    if (argc != optind)
        return cf_cli_usage("cert list [--ca NAME] [--expired] [--revoked]");
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg)
        return 1;
    if (cf_cli_ca_exists(pg, ca_name) != 0) {
        cf_pg_destroy(&pg);
        return 1;
    }
    /* django-ca's list_certs: valid certificates unless asked for expired or revoked ones. */
    const char *values[3] = {ca_name, expired ? "true" : "false", revoked ? "true" : "false"};
    PGresult *res = cf_pg_exec_params(
        pg,
        "SELECT c.serial, c.cn, a.name, extract(epoch FROM c.expires)::bigint, c.revoked "
        "FROM certificates c JOIN certificate_authorities a ON a.id = c.ca_id "
        "WHERE ($1::text IS NULL OR a.name = $1) AND ($2::boolean OR c.expires > now()) "
        "AND ($3::boolean OR NOT c.revoked) ORDER BY c.expires, a.name, c.serial",
        3, values, NULL, NULL, 0);
    if (!res) {
        int rc = cf_cli_fail("could not list certificates: %s", cf_pg_errstr(pg));
        cf_pg_destroy(&pg);
        return rc;
    }
    int rows = PQntuples(res), cn_width = 2, ca_width = 2;
    for (int k = 0; k < rows; k++) {
        int w = (int)strlen(PQgetvalue(res, k, 1));
        cn_width = w > cn_width ? w : cn_width;
        w = (int)strlen(PQgetvalue(res, k, 2));
        ca_width = w > ca_width ? w : ca_width;
    }
    json_t *out = cli->json ? json_array() : NULL;
    if (!out && rows == 0)
        printf("no certificates\n");
    else if (!out)
        printf("%-59s  %-*s  %-*s  %-20s  %s\n", "SERIAL", cn_width, "CN", ca_width, "CA",
               "EXPIRES", "STATUS");
    for (int k = 0; k < rows; k++) {
        long long exp = atoll(PQgetvalue(res, k, 3));
        char when[32];
        cf_cli_time(exp, when, sizeof when);
        const char *status = s_status(PQgetvalue(res, k, 4)[0] == 't', exp);
        if (out) {
            json_array_append_new(out, json_pack("{s:s, s:s, s:s, s:s, s:s}", "serial",
                                                 PQgetvalue(res, k, 0), "cn", PQgetvalue(res, k, 1),
                                                 "ca", PQgetvalue(res, k, 2), "expires", when,
                                                 "status", status));
            continue;
        }
        char *colons = cf_cli_serial_colons(PQgetvalue(res, k, 0));
        printf("%-59s  %-*s  %-*s  %-20s  %s\n", colons ? colons : "?", cn_width,
               PQgetvalue(res, k, 1), ca_width, PQgetvalue(res, k, 2), when, status);
        free(colons);
    }
    if (out) {
        cf_cli_print_json(out);
        json_decref(out);
    }
    PQclear(res);
    cf_pg_destroy(&pg);
    return 0;
}

/* --- view and dump ----------------------------------------------------------------------- */

/* SERIAL [--ca NAME] and the options of dump; 0, or the exit code of a usage error. */
typedef struct {
    const char *serial; /* as typed */
    const char *ca;     /* --ca, or NULL */
    bool bundle;        /* --bundle (dump) */
    bool der;           /* --format DER (dump) */
    const char *path;   /* -o FILE (dump) */
} s_args_t;

static int s_args(int argc, char **argv, bool dump, s_args_t *a)
{
    static const struct option opts[] = {{"ca", required_argument, NULL, O_CA},
                                         {"bundle", no_argument, NULL, O_BUNDLE},
                                         {"format", required_argument, NULL, O_FORMAT},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, dump ? ":ho:" : ":h", opts, NULL)) != -1) {
        if (c == 'h')
            return s_help(stdout, 0) - 1; /* -1: done, exit 0 */
        if (c == O_CA) {
            a->ca = optarg;
        } else if (dump && c == O_BUNDLE) {
            a->bundle = true;
        } else if (dump && c == O_FORMAT) {
            if (cf_cli_parse_format(optarg, &a->der) != 0)
                return 2;
        } else if (dump && c == 'o') {
            a->path = optarg;
        } else {
            return cf_cli_option_error(c == O_BUNDLE || c == O_FORMAT ? '?' : c, argv, "cert");
        }
    }
    if (argc - optind != 1)
        return dump ? cf_cli_usage("cert dump SERIAL [--ca NAME] [--bundle] [--format PEM|DER] "
                                   "[-o FILE]")
                    : cf_cli_usage("cert view SERIAL [--ca NAME]");
    if (a->bundle && a->der)
        return cf_cli_usage_error("a bundle is several certificates: write it as PEM, not DER");
    a->serial = argv[optind];
    return 0;
}

static const struct {
    const char *key;
    const char *label;
} s_view_fields[] = {{"serial", "Serial:"},
                     {"cn", "Common name:"},
                     {"ca", "Certificate authority:"},
                     {"status", "Status:"},
                     {"valid_from", "Valid from:"},
                     {"expires", "Expires:"},
                     {"profile", "Profile:"},
                     {"autogenerated", "Autogenerated:"},
                     {"crl_shard", "CRL shard:"},
                     {"revoked_date", "Revoked on:"},
                     {"revoked_reason", "Revocation reason:"},
                     {"compromised", "Compromised:"},
                     {"job_id", "Job id:"},
                     {"created_at", "Created:"},
                     {NULL, NULL}};

static void s_view_text(const json_t *doc)
{
    printf("Certificate record\n");
    for (int i = 0; s_view_fields[i].key; i++) {
        const json_t *v = json_object_get(doc, s_view_fields[i].key);
        char num[32], *colons = NULL;
        const char *text = "-";
        if (json_is_string(v) && *json_string_value(v))
            text = json_string_value(v);
        else if (json_is_integer(v))
            snprintf(num, sizeof num, "%lld", (long long)json_integer_value(v)), text = num;
        else if (json_is_boolean(v))
            text = json_is_true(v) ? "yes" : "no";
        if (strcmp(s_view_fields[i].key, "serial") == 0 && json_is_string(v))
            text = colons = cf_cli_serial_colons(json_string_value(v));
        printf("  %-22s %s\n", s_view_fields[i].label, text ? text : "?");
        free(colons);
    }
    printf("  %-22s %s\n", "CSR:", json_is_string(json_object_get(doc, "csr")) ? "kept" : "-");
    const json_t *watchers = json_object_get(doc, "watchers");
    printf("  %-22s %s", "Watchers:", json_array_size(watchers) ? "" : "-");
    for (size_t i = 0; i < json_array_size(watchers); i++)
        printf("%s%s", i ? ", " : "", json_string_value(json_array_get(watchers, i)));
    printf("\n");
    printf("\n");
    cf_x509_print_text(json_object_get(doc, "certificate"));
    printf("\n%s", json_string_value(json_object_get(doc, "pem")));
}

/* The CSR column (bytea text) as PEM (new reference), or null. */
static json_t *s_csr_pem(const json_t *v)
{
    size_t len = 0;
    unsigned char *der = cf_cli_bytea(json_string_value(v), &len);
    const unsigned char *p = der;
    X509_REQ *req = der ? d2i_X509_REQ(NULL, &p, (long)len) : NULL;
    free(der);
    json_t *out = json_null();
    BIO *bio = req ? BIO_new(BIO_s_mem()) : NULL;
    if (bio && PEM_write_bio_X509_REQ(bio, req) == 1) {
        char *data;
        long n = BIO_get_mem_data(bio, &data);
        json_decref(out);
        out = json_stringn(data, (size_t)n);
    }
    BIO_free(bio);
    X509_REQ_free(req);
    return out ? out : json_null();
}

static int s_view_or_dump(cf_cli_t *cli, int argc, char **argv, bool dump)
{
    s_args_t a = {0};
    int rc = s_args(argc, argv, dump, &a);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg)
        return 1;
    char ca_name[CF_CA_NAME_MAX + 1];
    long long expires = 0;
    X509 *cert = NULL;
    X509 **certs = NULL;
    STACK_OF(X509) *chain = NULL;
    cf_ca_t *ca = NULL;
    json_t *doc = NULL;
    json_t *row = s_find(pg, a.serial, a.ca, ca_name, sizeof ca_name, &expires);
    rc = 1;
    if (!row)
        goto out;
    const char *serial = json_string_value(json_object_get(row, "serial"));
    if (!(cert = cf_cli_bytea_x509(json_string_value(json_object_get(row, "der"))))) {
        rc = cf_cli_fail("the stored certificate \"%s\" does not parse", serial);
        goto out;
    }
    if (!dump) {
        doc = row;
        row = NULL;
        cf_cli_row_tidy(doc);
        json_object_del(doc, "der");
        json_object_set_new(doc, "ca", json_string(ca_name));
        json_object_set_new(
            doc, "status",
            json_string(s_status(json_is_true(json_object_get(doc, "revoked")), expires)));
        json_t *csr = json_object_get(doc, "csr");
        json_object_set_new(doc, "csr", json_is_string(csr) ? s_csr_pem(csr) : json_null());
        const char *job = json_string_value(json_object_get(doc, "job_id"));
        if (job && strncmp(job, "\\x", 2) == 0)
            json_object_set_new(doc, "job_id", json_string(job + 2));
        json_object_set_new(doc, "certificate", cf_x509_describe_cert(cert));
        json_object_set_new(doc, "watchers", s_watchers(pg, doc));
        json_t *pem = cf_cli_certs_json(&cert, 1, false);
        json_object_set(doc, "pem", json_array_get(pem, 0));
        json_decref(pem);
        if (cli->json)
            cf_cli_print_json(doc);
        else
            s_view_text(doc);
        rc = 0;
        goto out;
    }
    /* dump: the certificate, then (--bundle) its CA up to the root, as a server sends them. */
    int n = 1;
    if (a.bundle) {
        cf_error_t err = {0};
        if (!(ca = cf_ca_load(pg, ca_name, &err)) || !(chain = cf_ca_bundle(pg, ca, &err))) {
            rc = cf_cli_fail("could not build the bundle of \"%s\": %s", serial, err.message);
            goto out;
        }
        n += sk_X509_num(chain);
    }
    if (!(certs = calloc((size_t)n, sizeof *certs))) {
        rc = cf_cli_fail("out of memory");
        goto out;
    }
    certs[0] = cert;
    for (int k = 1; k < n; k++)
        certs[k] = sk_X509_value(chain, n - 1 - k);
    if (cli->json) {
        if (a.path && s_write(certs, n, a.der, a.path) != 0)
            goto out;
        doc = json_pack("{s:s, s:s, s:s, s:o}", "serial", serial, "ca", ca_name, "format",
                        a.der ? "DER" : "PEM", "certificates", cf_cli_certs_json(certs, n, a.der));
        if (a.path)
            json_object_set_new(doc, "file", json_string(a.path));
        cf_cli_print_json(doc);
    } else if (s_write(certs, n, a.der, a.path) != 0) {
        goto out;
    }
    rc = 0;
out:
    free(certs);
    sk_X509_pop_free(chain, X509_free);
    cf_ca_destroy(&ca);
    X509_free(cert);
    json_decref(doc);
    json_decref(row);
    cf_pg_destroy(&pg);
    return rc;
}

static int s_view(cf_cli_t *cli, int argc, char **argv)
{
    return s_view_or_dump(cli, argc, argv, false);
}

static int s_dump(cf_cli_t *cli, int argc, char **argv)
{
    return s_view_or_dump(cli, argc, argv, true);
}

int cf_cmd_cert(cf_cli_t *cli, int argc, char **argv)
{
    static const cf_cli_verb_t verbs[] = {{"sign", s_sign},
                                          {"list", s_list},
                                          {"view", s_view},
                                          {"dump", s_dump},
                                          {"import", cf_cli_cert_import},
                                          {"revoke", cf_cli_cert_revoke},
                                          {NULL, NULL}};
    return cf_cli_dispatch(cli, argc, argv, "cert", s_help_text, verbs);
}
