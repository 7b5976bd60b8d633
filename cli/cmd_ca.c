/* certfleet ca: certificate authorities, as django-ca's init_ca, list_cas, view_ca, dump_ca
 * and edit_ca. `init` is a ca.init job sent through the broker, so that only the signer ever
 * holds CA keys; list, view and dump read PostgreSQL, and edit updates it directly (the
 * signer's CA cache notices within [signer] cache_ms). */
#include <getopt.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_ca.h"
#include "cf_key.h"
#include "cf_msgpack.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"
#include "cli.h"
#include "options.h"
#include "store.h"
#include "x509_print.h"

static const char s_help_text[] =
    "usage: certfleet [--json] ca VERB ...\n"
    "\n"
    "  ca init NAME SUBJECT [OPTIONS]      create a root CA (or an intermediate: --parent)\n"
    "      SUBJECT is \"CN=Root,O=Org\", \"/O=Org/CN=Root\" or a JSON Name model\n"
    "      --parent NAME                   the CA that signs it\n"
    "      --key-type RSA|DSA|EC|Ed25519|Ed448   --key-size BITS   --elliptic-curve CURVE\n"
    "      --algorithm SHA-256|SHA-384|SHA-512|...   signature hash\n"
    "      --expires DAYS                  validity (default [ca] default_expires_days)\n"
    "      --path-length N                 BasicConstraints path length\n"
    "      --key-backend storages|db       where the key is kept\n"
    "      --password P | --password-file F    encrypts the new key\n"
    "      --parent-password P             the parent's key password\n"
    "      --default-hostname HOST[:PORT] | --no-default-hostname   for AIA and CRL URLs\n"
    "      --extension JSON                an extension of the CA itself (repeatable)\n"
    "      --sign-extension JSON           an AIA, certificate policies, CRL DP or issuer\n"
    "                                      alternative name added to all it signs (repeatable)\n"
    "      --acme-enable  --acme-profile P  --api-enable  --website URL\n"
    "      --terms-of-service URL  --caa S  --crl-shards N  --ocsp-response-validity SECONDS\n"
    "  ca list                             every CA, children below their parent\n"
    "  ca view NAME                        one CA: its settings, certificate and chain\n"
    "  ca dump NAME [--bundle] [--format PEM|DER] [-o FILE]\n"
    "                                      its certificate (--bundle: the root down to it)\n"
    "  ca edit NAME [OPTIONS]              change settings, print what changed\n"
    "  ca import NAME CERT KEY [--parent P] [--key-password P] [--key-backend B] [--password P]\n"
    "                                      bring an existing CA (certificate + key) in\n"
    "      --enable | --disable  --acme-enable | --acme-disable  --acme-profile P\n"
    "      --website URL  --terms-of-service URL  --caa S  --ocsp-response-validity SECONDS\n"
    "      --sign-extension JSON           (repeatable)\n"
    "  ca revoke NAME [--reason R] [--compromised TIME]   revoke a CA (ca revoke --help)\n";

/* Long options of every verb; values above the characters so that they never clash. */
enum {
    O_PARENT = 256,
    O_KEY_TYPE,
    O_KEY_SIZE,
    O_CURVE,
    O_ALGORITHM,
    O_EXPIRES,
    O_PATH_LENGTH,
    O_KEY_BACKEND,
    O_PASSWORD,
    O_PASSWORD_FILE,
    O_PARENT_PASSWORD,
    O_HOSTNAME,
    O_NO_HOSTNAME,
    O_EXTENSION,
    O_SIGN_EXTENSION,
    O_ACME_ENABLE,
    O_ACME_DISABLE,
    O_ACME_PROFILE,
    O_WEBSITE,
    O_TOS,
    O_CAA,
    O_API_ENABLE,
    O_CRL_SHARDS,
    O_OCSP_VALIDITY,
    O_ENABLE,
    O_DISABLE,
    O_BUNDLE,
    O_FORMAT,
};

/* The sign_* columns and job params, by the extension type each holds. */
static const char *const s_sign_types[] = {"authority_information_access", "certificate_policies",
                                           "crl_distribution_points", "issuer_alternative_name",
                                           NULL};

static int s_help(FILE *out, int rc)
{
    fputs(s_help_text, out);
    return rc;
}

/* Put every model of --sign-extension TEXT under "sign_<type>" in TARGET; 0 or 1 (printed). */
static int s_sign_extensions(json_t *target, const char *text)
{
    json_t *models = cf_cli_extensions_arg("--sign-extension", text);
    if (!models)
        return 1;
    size_t i;
    json_t *m;
    int rc = 0;
    json_array_foreach(models, i, m)
    {
        const char *type = json_string_value(json_object_get(m, "type"));
        const char *const *t = s_sign_types;
        while (*t && strcmp(*t, type) != 0)
            t++;
        if (!*t) {
            rc =
                cf_cli_fail("--sign-extension: \"%s\" cannot be added to what a CA signs; it takes "
                            "authority_information_access, certificate_policies, "
                            "crl_distribution_points or issuer_alternative_name",
                            type);
            break;
        }
        char key[80];
        snprintf(key, sizeof key, "sign_%s", type);
        if (json_object_get(target, key)) {
            rc = cf_cli_fail("--sign-extension: \"%s\" is given twice", type);
            break;
        }
        json_object_set(target, key, m);
    }
    json_decref(models);
    return rc;
}

/* A Name given on the command line: a JSON model when it starts with '[', else text that the
 * signer parses ("CN=x,O=y" or "/O=y/CN=x"). NULL after printing why. */
static json_t *s_subject_arg(const char *text)
{
    if (text[0] != '[')
        return json_string(text);
    json_error_t jerr;
    json_t *model = json_loads(text, 0, &jerr);
    if (!model)
        cf_cli_fail("subject is not JSON: %s (column %d)", jerr.text, jerr.column);
    return model;
}

/* Overwrite a secret string held in a JSON object before it is freed. */
static void s_wipe_member(json_t *obj, const char *key)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (s)
        OPENSSL_cleanse((char *)s, strlen(s));
}

/* --- init -------------------------------------------------------------------------------- */

static int s_init(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"parent", required_argument, NULL, O_PARENT},
        {"key-type", required_argument, NULL, O_KEY_TYPE},
        {"key-size", required_argument, NULL, O_KEY_SIZE},
        {"elliptic-curve", required_argument, NULL, O_CURVE},
        {"algorithm", required_argument, NULL, O_ALGORITHM},
        {"expires", required_argument, NULL, O_EXPIRES},
        {"path-length", required_argument, NULL, O_PATH_LENGTH},
        {"key-backend", required_argument, NULL, O_KEY_BACKEND},
        {"password", required_argument, NULL, O_PASSWORD},
        {"password-file", required_argument, NULL, O_PASSWORD_FILE},
        {"parent-password", required_argument, NULL, O_PARENT_PASSWORD},
        {"default-hostname", required_argument, NULL, O_HOSTNAME},
        {"no-default-hostname", no_argument, NULL, O_NO_HOSTNAME},
        {"extension", required_argument, NULL, O_EXTENSION},
        {"sign-extension", required_argument, NULL, O_SIGN_EXTENSION},
        {"acme-enable", no_argument, NULL, O_ACME_ENABLE},
        {"acme-profile", required_argument, NULL, O_ACME_PROFILE},
        {"website", required_argument, NULL, O_WEBSITE},
        {"terms-of-service", required_argument, NULL, O_TOS},
        {"caa", required_argument, NULL, O_CAA},
        {"api-enable", no_argument, NULL, O_API_ENABLE},
        {"crl-shards", required_argument, NULL, O_CRL_SHARDS},
        {"ocsp-response-validity", required_argument, NULL, O_OCSP_VALIDITY},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int rc = 2, c;
    long long n;
    json_t *params = json_object(), *exts = json_array(), *doc = NULL;
    char *secret = NULL;
    cf_reply_t *reply = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        const char *key = NULL; /* a string param set from optarg */
        switch (c) {
        case O_PARENT:
            key = "parent";
            break;
        case O_KEY_TYPE:
            key = "key_type";
            break;
        case O_CURVE:
            key = "elliptic_curve";
            break;
        case O_ALGORITHM:
            key = "algorithm";
            break;
        case O_KEY_BACKEND:
            key = "key_backend";
            break;
        case O_PARENT_PASSWORD:
            key = "parent_password";
            break;
        case O_ACME_PROFILE:
            key = "acme_profile";
            break;
        case O_WEBSITE:
            key = "website";
            break;
        case O_TOS:
            key = "terms_of_service";
            break;
        case O_CAA:
            key = "caa";
            break;
        case O_KEY_SIZE:
            if (cf_cli_parse_int("--key-size", optarg, 1, INT_MAX, &n) != 0)
                goto out;
            json_object_set_new(params, "key_size", json_integer(n));
            break;
        case O_EXPIRES:
            if (cf_cli_parse_int("--expires", optarg, 1, 365LL * 1000, &n) != 0)
                goto out;
            json_object_set_new(params, "expires", json_integer((long long)time(NULL) + n * 86400));
            break;
        case O_PATH_LENGTH:
            if (cf_cli_parse_int("--path-length", optarg, 0, 1000, &n) != 0)
                goto out;
            json_object_set_new(params, "path_length", json_integer(n));
            break;
        case O_CRL_SHARDS:
            if (cf_cli_parse_int("--crl-shards", optarg, 1, 4096, &n) != 0)
                goto out;
            json_object_set_new(params, "crl_shards", json_integer(n));
            break;
        case O_OCSP_VALIDITY:
            /* The schema's floor: responses valid for less than ten minutes churn for nothing. */
            if (cf_cli_parse_int("--ocsp-response-validity", optarg, 600, INT_MAX, &n) != 0)
                goto out;
            json_object_set_new(params, "ocsp_response_validity", json_integer(n));
            break;
        case O_PASSWORD:
        case O_PASSWORD_FILE:
            if ((c = cf_cli_password_option(params, c == O_PASSWORD_FILE, optarg, &secret)) != 0) {
                rc = c;
                goto out;
            }
            break;
        case O_HOSTNAME:
        case O_NO_HOSTNAME:
            if (json_object_get(params, "default_hostname")) {
                rc = cf_cli_usage_error("give --default-hostname or --no-default-hostname, once");
                goto out;
            }
            json_object_set_new(params, "default_hostname",
                                c == O_HOSTNAME ? json_string(optarg) : json_false());
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
        case O_SIGN_EXTENSION:
            if (s_sign_extensions(params, optarg) != 0) {
                rc = 1;
                goto out;
            }
            break;
        case O_ACME_ENABLE:
            json_object_set_new(params, "acme_enabled", json_true());
            break;
        case O_API_ENABLE:
            json_object_set_new(params, "api_enabled", json_true());
            break;
        case 'h':
            rc = s_help(stdout, 0);
            goto out;
        default:
            rc = cf_cli_option_error(c, argv, "ca");
            goto out;
        }
        if (key)
            json_object_set_new(params, key, json_string(optarg));
    }
    if (argc - optind != 2) {
        rc = cf_cli_usage("ca init NAME SUBJECT [OPTIONS]   (certfleet ca help)");
        goto out;
    }
    json_t *subject = s_subject_arg(argv[optind + 1]);
    if (!subject) {
        rc = 1;
        goto out;
    }
    json_object_set_new(params, "name", json_string(argv[optind]));
    json_object_set_new(params, "subject", subject);
    if (json_array_size(exts) > 0)
        json_object_set(params, "extensions", exts);
    /* An RSA key of 8192 bits can take a minute to make: wait longer than for a signature. */
    reply = cf_cli_call_json(cli, "ca.init", params, 60);
    if (!reply) {
        rc = 1;
        goto out;
    }
    if (!cf_reply_ok(reply)) {
        rc = cf_cli_fail_reply("ca.init", reply);
        goto out;
    }
    doc = cf_reply_to_json(reply);
    const json_t *result = json_object_get(doc, "result");
    if (cli->json) {
        cf_cli_print_json(result);
    } else {
        char *colons = cf_cli_serial_colons(json_string_value(json_object_get(result, "serial")));
        char expires[32];
        cf_cli_time(json_integer_value(json_object_get(result, "expires")), expires,
                    sizeof expires);
        printf("Created certificate authority \"%s\"\n", argv[optind]);
        printf("  %-22s %s\n", "Serial:", colons ? colons : "?");
        printf("  %-22s %s\n", "Expires:", expires);
        free(colons);
    }
    rc = 0;
out:
    s_wipe_member(params, "password");
    s_wipe_member(params, "parent_password");
    cf_cli_free_secret(secret);
    cf_reply_destroy(&reply);
    json_decref(doc);
    json_decref(exts);
    json_decref(params);
    return rc;
}

/* --- list -------------------------------------------------------------------------------- */

typedef struct {
    PGresult *res; /* id, name, serial, cn, expires (Unix s), enabled, revoked, parent_id, parent */
    json_t *out;   /* the JSON list being built */
    int width;     /* of the NAME column, indentation included */
    int cn_width;  /* of the CN column */
} s_list_t;

static int s_list_width(const s_list_t *l, int row, int depth)
{
    int w = depth * 3 + (int)strlen(PQgetvalue(l->res, row, 1));
    const char *id = PQgetvalue(l->res, row, 0);
    for (int k = 0; k < PQntuples(l->res) && depth < 32; k++) {
        if (strcmp(PQgetvalue(l->res, k, 7), id) == 0) {
            int child = s_list_width(l, k, depth + 1);
            if (child > w)
                w = child;
        }
    }
    return w;
}

/* Print ROW and below it its children (rows are ordered by name), django-ca's tree. PREFIX
 * is the drawing of the levels above. */
static void s_list_row(s_list_t *l, int row, int depth, const char *prefix, bool last, bool text)
{
    PGresult *res = l->res;
    char expires[32];
    cf_cli_time(atoll(PQgetvalue(res, row, 4)), expires, sizeof expires);
    bool enabled = PQgetvalue(res, row, 5)[0] == 't', revoked = PQgetvalue(res, row, 6)[0] == 't';
    const char *parent = PQgetisnull(res, row, 8) ? NULL : PQgetvalue(res, row, 8);
    if (text) {
        const char *branch = depth == 0 ? "" : last ? "└─ " : "├─ ";
        char *colons = cf_cli_serial_colons(PQgetvalue(res, row, 2));
        /* printf pads by bytes and the tree is drawn in three-byte characters: pad by hand. */
        int used = (depth > 0 ? depth * 3 : 0) + (int)strlen(PQgetvalue(res, row, 1));
        printf("%s%s%s%*s  %-59s  %-*s  %-20s  %-7s  %s\n", prefix, branch, PQgetvalue(res, row, 1),
               l->width - used, "", colons ? colons : "?", l->cn_width, PQgetvalue(res, row, 3),
               expires,
               revoked   ? "revoked"
               : enabled ? "yes"
                         : "no",
               parent ? parent : "-");
        free(colons);
    } else {
        json_array_append_new(
            l->out, json_pack("{s:s, s:s, s:s, s:s, s:b, s:b, s:s?, s:i}", "name",
                              PQgetvalue(res, row, 1), "serial", PQgetvalue(res, row, 2), "cn",
                              PQgetvalue(res, row, 3), "expires", expires, "enabled", enabled,
                              "revoked", revoked, "parent", parent, "depth", depth));
    }
    if (depth >= 32)
        return; /* a cycle cannot be made through the foreign key, but never loop */
    char next[512];
    snprintf(next, sizeof next, "%s%s", prefix, depth == 0 ? "" : last ? "   " : "│  ");
    const char *id = PQgetvalue(res, row, 0);
    int lastchild = -1;
    for (int k = 0; k < PQntuples(res); k++)
        if (strcmp(PQgetvalue(res, k, 7), id) == 0)
            lastchild = k;
    for (int k = 0; k <= lastchild; k++)
        if (strcmp(PQgetvalue(res, k, 7), id) == 0)
            s_list_row(l, k, depth + 1, next, k == lastchild, text);
}

static int s_list(cf_cli_t *cli, int argc, char **argv)
{
    if (argc != 1)
        return cf_cli_usage("ca list");
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg)
        return 1;
    s_list_t l = {0};
    l.res = cf_pg_exec_params(
        pg,
        "SELECT c.id, c.name, c.serial, c.cn, extract(epoch FROM c.expires)::bigint, c.enabled, "
        "c.revoked, COALESCE(c.parent_id, 0), p.name FROM certificate_authorities c "
        "LEFT JOIN certificate_authorities p ON p.id = c.parent_id ORDER BY c.name",
        0, NULL, NULL, NULL, 0);
    if (!l.res) {
        int rc = cf_cli_fail("could not list certificate authorities: %s", cf_pg_errstr(pg));
        cf_pg_destroy(&pg);
        return rc;
    }
    bool text = !cli->json;
    l.out = json_array();
    l.width = 4;
    l.cn_width = 2;
    for (int k = 0; k < PQntuples(l.res); k++) {
        int cn = (int)strlen(PQgetvalue(l.res, k, 3));
        if (cn > l.cn_width)
            l.cn_width = cn;
        if (strcmp(PQgetvalue(l.res, k, 7), "0") == 0) {
            int w = s_list_width(&l, k, 0);
            if (w > l.width)
                l.width = w;
        }
    }
    if (text && PQntuples(l.res) == 0)
        printf("no certificate authorities\n");
    else if (text)
        printf("%-*s  %-59s  %-*s  %-20s  %-7s  %s\n", l.width, "NAME", "SERIAL", l.cn_width, "CN",
               "EXPIRES", "ENABLED", "PARENT");
    for (int k = 0; k < PQntuples(l.res); k++)
        if (strcmp(PQgetvalue(l.res, k, 7), "0") == 0)
            s_list_row(&l, k, 0, "", true, text);
    if (!text)
        cf_cli_print_json(l.out);
    json_decref(l.out);
    PQclear(l.res);
    cf_pg_destroy(&pg);
    return 0;
}

/* --- view -------------------------------------------------------------------------------- */

/* Columns shown in this order with these labels (UNIT follows the value); the others of the
 * row come after them under their own names, so that a new column is never hidden. */
static const struct {
    const char *key;
    const char *label;
    const char *unit;
} s_view_fields[] = {{"name", "Name:", NULL},
                     {"serial", "Serial:", NULL},
                     {"cn", "Common name:", NULL},
                     {"enabled", "Enabled:", NULL},
                     {"revoked", "Revoked:", NULL},
                     {"revoked_date", "Revoked on:", NULL},
                     {"revoked_reason", "Revocation reason:", NULL},
                     {"compromised", "Compromised:", NULL},
                     {"valid_from", "Valid from:", NULL},
                     {"expires", "Expires:", NULL},
                     {"key_type", "Key type:", NULL},
                     {"algorithm", "Signs with:", NULL},
                     {"key_backend", "Key backend:", NULL},
                     {"key_backend_options", "Key backend options:", NULL},
                     {"path_length", "Path length:", NULL},
                     {"default_hostname", "Default hostname:", NULL},
                     {"caa", "CAA:", NULL},
                     {"website", "Website:", NULL},
                     {"terms_of_service", "Terms of service:", NULL},
                     {"acme_enabled", "ACME enabled:", NULL},
                     {"acme_registration", "ACME registration:", NULL},
                     {"acme_requires_contact", "ACME requires contact:", NULL},
                     {"acme_profile", "ACME profile:", NULL},
                     {"api_enabled", "API enabled:", NULL},
                     {"ocsp_responder_key_validity", "OCSP key validity:", " days"},
                     {"ocsp_response_validity", "OCSP response validity:", " seconds"},
                     {"crl_shards", "CRL shards:", NULL},
                     {"created_at", "Created:", NULL},
                     {"updated_at", "Updated:", NULL},
                     {NULL, NULL, NULL}};

/* Shown elsewhere (the certificate section, the sign extensions) or not for people. */
static const char *const s_view_hidden[] = {"id",
                                            "der",
                                            "subject",
                                            "issuer",
                                            "parent_id",
                                            "sign_authority_information_access",
                                            "sign_certificate_policies",
                                            "sign_crl_distribution_points",
                                            "sign_issuer_alternative_name",
                                            NULL};

static void s_line(const char *label, const char *value)
{
    printf("  %-24s %s\n", label, value && *value ? value : "-");
}

/* A column's value as text: yes/no, numbers, JSON for objects; caller frees. */
static char *s_value_text(const char *key, const json_t *v, const char *unit)
{
    char *out = NULL;
    if (!v || json_is_null(v))
        return strdup("-");
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "yes" : "no");
    if (json_is_string(v) && strcmp(key, "serial") == 0)
        return cf_cli_serial_colons(json_string_value(v));
    if (json_is_string(v))
        return strdup(*json_string_value(v) ? json_string_value(v) : "-");
    if (json_is_integer(v)) {
        if (asprintf(&out, "%lld%s", (long long)json_integer_value(v), unit ? unit : "") < 0)
            out = NULL;
        return out;
    }
    return json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS);
}

static bool s_in(const char *key, const char *const *list)
{
    for (; *list; list++)
        if (strcmp(*list, key) == 0)
            return true;
    return false;
}

static bool s_view_known(const char *key)
{
    for (int i = 0; s_view_fields[i].key; i++)
        if (strcmp(s_view_fields[i].key, key) == 0)
            return true;
    return s_in(key, s_view_hidden);
}

static void s_indented(const char *text, const char *indent)
{
    char *copy = strdup(text ? text : "");
    for (char *line = copy, *next; line && *line; line = next) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        printf("%s%s\n", indent, line);
    }
    free(copy);
}

static void s_view_text(const json_t *doc)
{
    printf("Certificate authority \"%s\"\n", json_string_value(json_object_get(doc, "name")));
    for (int i = 0; s_view_fields[i].key; i++) {
        char *v = s_value_text(s_view_fields[i].key, json_object_get(doc, s_view_fields[i].key),
                               s_view_fields[i].unit);
        s_line(s_view_fields[i].label, v);
        free(v);
    }
    const char *key;
    json_t *value;
    json_t *row = json_object_get(doc, "row");
    json_object_foreach(row, key, value)
    {
        if (s_view_known(key))
            continue;
        char label[80], *v = s_value_text(key, value, NULL);
        snprintf(label, sizeof label, "%s:", key);
        s_line(label, v);
        free(v);
    }
    const json_t *parent = json_object_get(doc, "parent");
    s_line("Parent:", json_string_value(parent));
    const json_t *children = json_object_get(doc, "children");
    size_t i;
    json_t *e;
    if (json_array_size(children) == 0)
        s_line("Children:", NULL);
    json_array_foreach(children, i, e)
    {
        s_line(i == 0 ? "Children:" : "", json_string_value(e));
    }
    const json_t *max = json_object_get(doc, "max_path_length");
    char maxbuf[32];
    snprintf(maxbuf, sizeof maxbuf, "%lld", (long long)json_integer_value(max));
    s_line("Max path length:", json_is_integer(max) ? maxbuf : "unlimited");
    s_line("Allows intermediate CA:",
           json_is_true(json_object_get(doc, "allows_intermediate_ca")) ? "yes" : "no");
    const char *why = json_string_value(json_object_get(doc, "unusable_reason"));
    char usable[600];
    snprintf(usable, sizeof usable, "no: %s", why ? why : "");
    s_line("Usable:", json_is_true(json_object_get(doc, "usable")) ? "yes" : usable);
    json_array_foreach(json_object_get(doc, "bundle"), i, e)
    {
        char *colons = cf_cli_serial_colons(json_string_value(json_object_get(e, "serial")));
        char line[1024];
        snprintf(line, sizeof line, "%s  %s", json_string_value(json_object_get(e, "subject")),
                 colons ? colons : "?");
        s_line(i == 0 ? "Bundle (root first):" : "", line);
        free(colons);
    }
    const json_t *jwk = json_object_get(doc, "public_key_jwk");
    char *jwk_text = json_is_object(jwk) ? json_dumps(jwk, JSON_COMPACT) : NULL;
    s_line("Public key (JWK):", jwk_text ? jwk_text : "(not available for this key type)");
    free(jwk_text);
    const json_t *thumb = json_object_get(doc, "public_key_thumbprint");
    if (json_is_string(thumb))
        s_line("JWK thumbprint:", json_string_value(thumb));
    const json_t *sign = json_object_get(doc, "sign_extensions");
    if (json_array_size(sign) == 0)
        s_line("Adds to what it signs:", "nothing");
    else
        printf("  Adds to what it signs:\n");
    json_array_foreach(sign, i, e)
    {
        char *text = cf_extension_to_text(e);
        s_indented(text ? text : json_string_value(json_object_get(e, "type")), "    ");
        free(text);
    }
    printf("\n");
    cf_x509_print_text(json_object_get(doc, "certificate"));
    printf("\n%s", json_string_value(json_object_get(doc, "pem")));
}

static int s_view(cf_cli_t *cli, int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-')
        return cf_cli_usage("ca view NAME");
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg)
        return 1;
    cf_error_t err = {0};
    cf_ca_t *ca = cf_ca_load(pg, argv[1], &err);
    if (!ca) {
        cf_pg_destroy(&pg);
        return cf_cli_fail("%s", err.message);
    }
    json_t *doc = json_deep_copy(ca->row);
    cf_cli_row_tidy(doc);
    json_object_del(doc, "der");
    json_t *row = json_deep_copy(doc);
    cf_ca_t *parent = ca->parent_id ? cf_ca_load_id(pg, ca->parent_id, &err) : NULL;
    json_object_set_new(doc, "parent", parent ? json_string(parent->name) : json_null());
    cf_ca_destroy(&parent);
    json_t *children = json_array();
    char id[32];
    snprintf(id, sizeof id, "%lld", (long long)ca->id);
    const char *values[1] = {id};
    PGresult *res = cf_pg_exec_params(pg,
                                      "SELECT name FROM certificate_authorities WHERE parent_id = "
                                      "$1::bigint ORDER BY name",
                                      1, values, NULL, NULL, 0);
    for (int k = 0; res && k < PQntuples(res); k++)
        json_array_append_new(children, json_string(PQgetvalue(res, k, 0)));
    PQclear(res);
    json_object_set_new(doc, "children", children);
    int max = cf_ca_max_path_length(pg, ca, &err);
    json_object_set_new(doc, "max_path_length", max >= 0 ? json_integer(max) : json_null());
    json_object_set_new(doc, "allows_intermediate_ca",
                        json_boolean(cf_ca_allows_intermediate(pg, ca)));
    cf_error_clear(&err);
    bool usable = cf_ca_check_usable(ca, (int64_t)time(NULL), &err) == 0;
    json_object_set_new(doc, "usable", json_boolean(usable));
    json_object_set_new(doc, "unusable_reason", usable ? json_null() : json_string(err.message));
    json_t *bundle = json_array();
    STACK_OF(X509) *chain = cf_ca_bundle(pg, ca, &err);
    for (int k = 0; chain && k < sk_X509_num(chain); k++) {
        X509 *cert = sk_X509_value(chain, k);
        cf_error_t nerr = {0};
        json_t *subject = cf_name_from_openssl(X509_get_subject_name(cert), &nerr);
        char *subject_text = subject ? cf_name_to_string(subject) : NULL;
        char *serial = cf_serial_hex(X509_get0_serialNumber(cert));
        json_array_append_new(bundle,
                              json_pack("{s:s?, s:s?}", "subject", subject_text, "serial", serial));
        free(serial);
        free(subject_text);
        json_decref(subject);
    }
    sk_X509_pop_free(chain, X509_free);
    json_object_set_new(doc, "bundle", bundle);
    json_object_set_new(doc, "sign_extensions", json_incref(ca->sign_extensions));
    json_t *certificate = cf_x509_describe_cert(ca->cert);
    json_object_set(doc, "fingerprints", json_object_get(certificate, "fingerprints"));
    json_t *jwk = cf_key_public_jwk(X509_get0_pubkey(ca->cert), &err);
    char thumb[CF_KEY_THUMBPRINT_MAX];
    bool has_thumb = jwk && cf_key_jwk_thumbprint(jwk, thumb, sizeof thumb) == 0;
    json_object_set_new(doc, "public_key_jwk", jwk ? jwk : json_null());
    json_object_set_new(doc, "public_key_thumbprint", has_thumb ? json_string(thumb) : json_null());
    json_object_set_new(doc, "certificate", certificate);
    json_t *pem = cf_cli_certs_json(&ca->cert, 1, false);
    json_object_set(doc, "pem", json_array_get(pem, 0));
    json_decref(pem);
    if (cli->json) {
        cf_cli_print_json(doc);
    } else {
        json_object_set_new(doc, "row", row);
        row = NULL;
        s_view_text(doc);
    }
    json_decref(row);
    json_decref(doc);
    cf_ca_destroy(&ca);
    cf_pg_destroy(&pg);
    return 0;
}

/* --- dump -------------------------------------------------------------------------------- */

static int s_dump(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"bundle", no_argument, NULL, O_BUNDLE},
                                         {"format", required_argument, NULL, O_FORMAT},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool bundle = false, der = false;
    const char *path = NULL;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case O_BUNDLE:
            bundle = true;
            break;
        case O_FORMAT:
            if (cf_cli_parse_format(optarg, &der) != 0)
                return 2;
            break;
        case 'o':
            path = optarg;
            break;
        case 'h':
            return s_help(stdout, 0);
        default:
            return cf_cli_option_error(c, argv, "ca");
        }
    }
    if (argc - optind != 1)
        return cf_cli_usage("ca dump NAME [--bundle] [--format PEM|DER] [-o FILE]");
    if (bundle && der)
        return cf_cli_usage_error("a bundle is several certificates: write it as PEM, not DER");
    const char *name = argv[optind];
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg)
        return 1;
    int rc = 1;
    cf_error_t err = {0};
    STACK_OF(X509) *chain = NULL;
    cf_ca_t *ca = cf_ca_load(pg, name, &err);
    if (!ca) {
        rc = cf_cli_fail("%s", err.message);
        goto out;
    }
    if (bundle) {
        if (!(chain = cf_ca_bundle(pg, ca, &err))) {
            rc = cf_cli_fail("could not build the bundle of \"%s\": %s", name, err.message);
            goto out;
        }
    } else {
        chain = sk_X509_new_null();
        X509_up_ref(ca->cert);
        sk_X509_push(chain, ca->cert);
    }
    X509 **certs = (X509 **)malloc(sizeof(X509 *) * (size_t)sk_X509_num(chain));
    if (!certs) {
        rc = cf_cli_fail("out of memory");
        goto out;
    }
    for (int k = 0; k < sk_X509_num(chain); k++)
        certs[k] = sk_X509_value(chain, k);
    int n = sk_X509_num(chain);
    if (cli->json) {
        /* One document: the certificates themselves, and the file when one was written. */
        if (path && cf_cli_write_certs(certs, n, der, path) != 0) {
            rc = cf_cli_fail("could not write \"%s\": %m", path);
        } else {
            json_t *doc =
                json_pack("{s:s, s:s, s:s, s:o}", "name", ca->name, "serial", ca->serial, "format",
                          der ? "DER" : "PEM", "certificates", cf_cli_certs_json(certs, n, der));
            if (path)
                json_object_set_new(doc, "file", json_string(path));
            cf_cli_print_json(doc);
            json_decref(doc);
            rc = 0;
        }
    } else if (cf_cli_write_certs(certs, n, der, path) != 0) {
        rc = cf_cli_fail("could not write \"%s\": %m", path ? path : "standard output");
    } else {
        rc = 0;
    }
    free(certs);
out:
    sk_X509_pop_free(chain, X509_free);
    cf_ca_destroy(&ca);
    cf_pg_destroy(&pg);
    return rc;
}

/* --- edit -------------------------------------------------------------------------------- */

/* Send ca.edit with WANT (setting -> value) for CA NAME; the reply's "changed" (setting ->
 * {old, new}) into *CHANGED (new reference). 0, or 1 after printing why. */
static int s_edit_apply(cf_cli_t *cli, const char *name, json_t *want, json_t **changed)
{
    json_object_set_new(want, "ca", json_string(name));
    cf_reply_t *reply = cf_cli_call_json(cli, "ca.edit", want, 0);
    int rc = 1;
    if (!reply)
        return rc;
    if (!cf_reply_ok(reply)) {
        rc = cf_cli_fail_reply("ca.edit", reply);
    } else {
        json_t *doc = cf_reply_to_json(reply);
        *changed = json_incref(json_object_get(json_object_get(doc, "result"), "changed"));
        json_decref(doc);
        rc = *changed ? 0 : cf_cli_fail("ca.edit: the reply lists no changes");
    }
    cf_reply_destroy(&reply);
    return rc;
}

static int s_edit(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"enable", no_argument, NULL, O_ENABLE},
        {"disable", no_argument, NULL, O_DISABLE},
        {"website", required_argument, NULL, O_WEBSITE},
        {"terms-of-service", required_argument, NULL, O_TOS},
        {"caa", required_argument, NULL, O_CAA},
        {"acme-enable", no_argument, NULL, O_ACME_ENABLE},
        {"acme-disable", no_argument, NULL, O_ACME_DISABLE},
        {"acme-profile", required_argument, NULL, O_ACME_PROFILE},
        {"ocsp-response-validity", required_argument, NULL, O_OCSP_VALIDITY},
        {"sign-extension", required_argument, NULL, O_SIGN_EXTENSION},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int rc = 2, c;
    long long n;
    json_t *want = json_object(), *changed = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        const char *key = NULL;
        json_t *value = NULL;
        switch (c) {
        case O_ENABLE:
        case O_DISABLE:
            key = "enabled";
            value = json_boolean(c == O_ENABLE);
            break;
        case O_ACME_ENABLE:
        case O_ACME_DISABLE:
            key = "acme_enabled";
            value = json_boolean(c == O_ACME_ENABLE);
            break;
        case O_WEBSITE:
            key = "website";
            value = json_string(optarg);
            break;
        case O_TOS:
            key = "terms_of_service";
            value = json_string(optarg);
            break;
        case O_CAA:
            key = "caa";
            value = json_string(optarg);
            break;
        case O_ACME_PROFILE:
            key = "acme_profile";
            value = *optarg ? json_string(optarg) : json_null();
            break;
        case O_OCSP_VALIDITY:
            if (cf_cli_parse_int("--ocsp-response-validity", optarg, 600, INT_MAX, &n) != 0)
                goto out;
            key = "ocsp_response_validity";
            value = json_integer(n);
            break;
        case O_SIGN_EXTENSION: {
            json_t *sign = json_object();
            if (s_sign_extensions(sign, optarg) != 0) {
                json_decref(sign);
                rc = 1;
                goto out;
            }
            const char *k;
            json_t *v;
            json_object_foreach(sign, k, v)
            {
                if (json_object_get(want, k)) {
                    json_decref(sign);
                    rc = cf_cli_usage_error("--sign-extension: \"%s\" is given twice", k + 5);
                    goto out;
                }
                json_object_set(want, k, v);
            }
            json_decref(sign);
            break;
        }
        case 'h':
            rc = s_help(stdout, 0);
            goto out;
        default:
            rc = cf_cli_option_error(c, argv, "ca");
            goto out;
        }
        if (key && json_object_get(want, key) && !json_equal(json_object_get(want, key), value)) {
            json_decref(value);
            rc = cf_cli_usage_error("contradictory options for \"%s\"", key);
            goto out;
        }
        if (key)
            json_object_set_new(want, key, value);
    }
    if (argc - optind != 1) {
        rc = cf_cli_usage("ca edit NAME [OPTIONS]   (certfleet ca help)");
        goto out;
    }
    if (json_object_size(want) == 0) {
        rc = cf_cli_usage_error("ca edit: nothing to change (see certfleet ca help)");
        goto out;
    }
    const char *name = argv[optind];
    rc = 1;
    if (s_edit_apply(cli, name, want, &changed) != 0)
        goto out;
    if (cli->json) {
        json_t *doc = json_pack("{s:s, s:O}", "name", name, "changed", changed);
        cf_cli_print_json(doc);
        json_decref(doc);
    } else if (json_object_size(changed) == 0) {
        printf("certificate authority \"%s\": nothing changed\n", name);
    } else {
        printf("certificate authority \"%s\":\n", name);
        const char *k;
        json_t *v;
        json_object_foreach(changed, k, v)
        {
            char *was = s_value_text(k, json_object_get(v, "old"), NULL);
            char *now = s_value_text(k, json_object_get(v, "new"), NULL);
            printf("  %-34s %s -> %s\n", k, was ? was : "?", now ? now : "?");
            free(was);
            free(now);
        }
    }
    rc = 0;
out:
    json_decref(changed);
    json_decref(want);
    return rc;
}

int cf_cmd_ca(cf_cli_t *cli, int argc, char **argv)
{
    static const cf_cli_verb_t verbs[] = {{"init", s_init},
                                          {"list", s_list},
                                          {"view", s_view},
                                          {"dump", s_dump},
                                          {"edit", s_edit},
                                          {"import", cf_cli_ca_import},
                                          {"revoke", cf_cli_ca_revoke},
                                          {NULL, NULL}};
    return cf_cli_dispatch(cli, argc, argv, "ca", s_help_text, verbs);
}
