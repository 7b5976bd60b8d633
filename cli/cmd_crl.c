/* certfleet crl: certificate revocation lists. `build` fans out crl.build jobs to the crl
 * workers (django-ca's cache_crls with --all, dump_crl's building part otherwise); `dump`
 * reads the stored CRL from PostgreSQL (table crls), as certfleet-ocspd serves it. */
#include <getopt.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_msgpack.h"
#include "cf_revocation.h"
#include "cli.h"
#include "options.h"
#include "jobs_many.h"
#include "store.h"

static const char s_help_text[] =
    "usage: certfleet [--json] crl VERB ...\n"
    "\n"
    "  crl build CA ... | --all [OPTIONS]   build, sign and store CRLs (crl.build jobs)\n"
    "      without --scope: for each CA the \"ca\" scope and the \"user\" scope of every shard\n"
    "      --all                          every enabled, unrevoked, unexpired CA\n"
    "      --scope all|ca|user|attribute  only this scope (all shards of it, or --shard K)\n"
    "      --shard K                      only shard K of the scope (needs --scope)\n"
    "      --expires SECONDS              until nextUpdate (600 .. 31536000, default 86400)\n"
    "      --algorithm A                  signature hash (default: the CA's)\n"
    "      --counter KEY                  the CRL Number sequence (default: the scope's)\n"
    "      --if-stale                     only where the CRL is missing, stale or half expired\n"
    "      --password-file F              the CAs' key password (first line of F)\n"
    "  crl dump CA [--scope S] [--shard K] [--pem | --der] [-o FILE]\n"
    "                                     the stored CRL (default: scope user, shard 0, the one\n"
    "                                     the CA's certificates point to); PEM on standard\n"
    "                                     output, DER into -o FILE unless --pem\n";

enum {
    O_ALL = 256,
    O_SCOPE,
    O_SHARD,
    O_EXPIRES,
    O_ALGORITHM,
    O_COUNTER,
    O_IF_STALE,
    O_PASSWORD_FILE,
    O_PEM,
    O_DER,
};

static int s_help(FILE *out, int rc)
{
    fputs(s_help_text, out);
    return rc;
}

/* --- build ------------------------------------------------------------------------------- */

/* Queue one crl.build of CA, SCOPE and SHARD, with the shared options in BASE. */
static int s_add(cf_cli_batch_t *batch, json_t *jobs, const json_t *base, const char *ca,
                 cf_scope_t scope, int shard)
{
    json_t *params = json_deep_copy(base);
    json_object_set_new(params, "ca", json_string(ca));
    json_object_set_new(params, "scope", json_string(cf_scope_name(scope)));
    json_object_set_new(params, "shard", json_integer(shard));
    char what[160];
    if (scope == CF_SCOPE_ALL || scope == CF_SCOPE_USER)
        snprintf(what, sizeof what, "crl.build \"%s\" %s/%d", ca, cf_scope_name(scope), shard);
    else
        snprintf(what, sizeof what, "crl.build \"%s\" %s", ca, cf_scope_name(scope));
    int rc = cf_cli_batch_add(batch, "crl.build", params, what);
    json_decref(params);
    json_array_append_new(jobs, json_pack("{s:s, s:s, s:i}", "ca", ca, "scope",
                                          cf_scope_name(scope), "shard", shard));
    return rc;
}

static void s_status(void *arg, char *buf, size_t len, double seconds)
{
    (void)arg;
    snprintf(buf, len, ", %.0fs", seconds);
}

/* Print the results of the batch as a table or a JSON list (JOBS: ca, scope, shard of each). */
static void s_build_report(cf_cli_t *cli, const cf_cli_batch_t *batch, const json_t *jobs)
{
    size_t n = cf_cli_batch_size(batch);
    json_t *list = json_array();
    for (size_t i = 0; i < n; i++) {
        const cf_reply_t *reply = cf_cli_batch_reply(batch, i);
        json_t *row = NULL;
        if (reply && cf_reply_ok(reply)) {
            json_t *doc = cf_reply_to_json(reply);
            row = json_incref(json_object_get(doc, "result"));
            json_decref(doc);
        }
        if (!json_is_object(row)) {
            json_decref(row);
            row = json_deep_copy(json_array_get(jobs, i));
            json_object_set_new(row, "error", cf_cli_batch_error_json(batch, i));
        }
        json_array_append_new(list, row);
    }
    if (cli->json) {
        cf_cli_print_json(list);
        json_decref(list);
        return;
    }
    int width = 2;
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        int w = (int)strlen(json_string_value(json_object_get(json_array_get(jobs, i), "ca")));
        width = w > width ? w : width;
    }
    printf("%-*s  %-9s  %5s  %8s  %8s  %9s  %-20s  %s\n", width, "CA", "SCOPE", "SHARD", "NUMBER",
           "ENTRIES", "SIZE", "NEXT UPDATE", "STATUS");
    json_array_foreach(list, i, row)
    {
        const json_t *job = json_array_get(jobs, i);
        const char *ca = json_string_value(json_object_get(job, "ca"));
        const char *scope = json_string_value(json_object_get(job, "scope"));
        long long shard = json_integer_value(json_object_get(job, "shard"));
        if (json_object_get(row, "error")) {
            printf("%-*s  %-9s  %5lld  %8s  %8s  %9s  %-20s  %s\n", width, ca, scope, shard, "-",
                   "-", "-", "-", "failed");
            continue;
        }
        char next[32];
        cf_cli_time(json_integer_value(json_object_get(row, "next_update")), next, sizeof next);
        printf("%-*s  %-9s  %5lld  %8lld  %8lld  %9lld  %-20s  %s\n", width, ca, scope, shard,
               (long long)json_integer_value(json_object_get(row, "number")),
               (long long)json_integer_value(json_object_get(row, "entries")),
               (long long)json_integer_value(json_object_get(row, "size")), next,
               json_is_true(json_object_get(row, "skipped")) ? "current" : "built");
    }
    json_decref(list);
}

static int s_build(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, O_ALL},
        {"scope", required_argument, NULL, O_SCOPE},
        {"shard", required_argument, NULL, O_SHARD},
        {"expires", required_argument, NULL, O_EXPIRES},
        {"algorithm", required_argument, NULL, O_ALGORITHM},
        {"counter", required_argument, NULL, O_COUNTER},
        {"if-stale", no_argument, NULL, O_IF_STALE},
        {"password-file", required_argument, NULL, O_PASSWORD_FILE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int rc = 2, c;
    bool all = false, has_scope = false;
    long long shard = -1, n;
    cf_scope_t scope = CF_SCOPE_ALL;
    const char *password_file = NULL;
    json_t *base = json_object(), *cas = NULL, *jobs = json_array();
    char *secret = NULL;
    cf_cli_batch_t *batch = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_ALL:
            all = true;
            break;
        case O_SCOPE: {
            cf_error_t err = {0};
            if (cf_scope_parse(optarg, "--scope", &scope, &err) != 0) {
                rc = cf_cli_usage_error("option \"--scope\": %s", err.message);
                goto out;
            }
            has_scope = true;
            break;
        }
        case O_SHARD:
            if (cf_cli_parse_int("--shard", optarg, 0, 4095, &shard) != 0)
                goto out;
            break;
        case O_EXPIRES:
            if (cf_cli_parse_int("--expires", optarg, 600, 31536000, &n) != 0)
                goto out;
            json_object_set_new(base, "expires", json_integer(n));
            break;
        case O_ALGORITHM:
            json_object_set_new(base, "algorithm", json_string(optarg));
            break;
        case O_COUNTER:
            json_object_set_new(base, "counter", json_string(optarg));
            break;
        case O_IF_STALE:
            json_object_set_new(base, "if_stale", json_true());
            break;
        case O_PASSWORD_FILE:
            password_file = optarg;
            break;
        case 'h':
            rc = s_help(stdout, 0);
            goto out;
        default:
            rc = cf_cli_option_error(c, argv, "crl");
            goto out;
        }
    }
    int names = argc - optind;
    if ((names == 0) == !all) {
        rc = cf_cli_usage("crl build CA ... | --all [OPTIONS]   (certfleet crl help)");
        goto out;
    }
    if (shard >= 0 && !has_scope) {
        rc = cf_cli_usage_error("option \"--shard\" needs --scope (see certfleet crl help)");
        goto out;
    }
    if (shard > 0 && (scope == CF_SCOPE_CA || scope == CF_SCOPE_ATTRIBUTE)) {
        rc = cf_cli_usage_error("scope \"%s\" has only shard 0", cf_scope_name(scope));
        goto out;
    }
    rc = 1;
    if ((password_file && cf_cli_password_option(base, true, password_file, &secret) != 0) ||
        !(cas = cf_cli_cas_select(cli, argv + optind, names, all, false)))
        goto out;
    if (!(batch = cf_cli_batch_new("crl build", NULL)))
        goto out;
    size_t i;
    json_t *ca;
    json_array_foreach(cas, i, ca)
    {
        const char *name = json_string_value(json_object_get(ca, "name"));
        int shards = (int)json_integer_value(json_object_get(ca, "crl_shards"));
        shards = shards > 0 ? shards : 1;
        bool sharded = scope == CF_SCOPE_ALL || scope == CF_SCOPE_USER;
        if (has_scope && sharded && shard >= shards) {
            /* --all: only the CAs that have that shard; a named CA must have it. */
            if (all)
                continue;
            cf_cli_fail("certificate authority \"%s\" has %d CRL shard%s (0 .. %d)", name, shards,
                        shards == 1 ? "" : "s", shards - 1);
            goto out;
        }
        if (has_scope && (!sharded || shard >= 0)) {
            if (s_add(batch, jobs, base, name, scope, shard >= 0 ? (int)shard : 0) != 0)
                goto out;
            continue;
        }
        /* django-ca's cache_crls: the CA scope, then every shard of the user scope (or of the
         * scope asked for). */
        if (!has_scope && s_add(batch, jobs, base, name, CF_SCOPE_CA, 0) != 0)
            goto out;
        for (int k = 0; k < shards; k++)
            if (s_add(batch, jobs, base, name, has_scope ? scope : CF_SCOPE_USER, k) != 0)
                goto out;
    }
    if (cf_cli_batch_size(batch) == 0) {
        if (cli->json)
            cf_cli_print_json(jobs);
        else
            fprintf(stderr, "certfleet: no certificate authority to build CRLs for\n");
        rc = 0;
        goto out;
    }
    cf_cli_batch_set_hooks(batch, NULL, s_status, NULL);
    int failed = cf_cli_batch_run(batch, cli);
    if (failed < 0)
        goto out;
    s_build_report(cli, batch, jobs);
    cf_cli_batch_print_failures(batch);
    rc = failed > 0 ? 1 : 0;
out:
    cf_cli_batch_destroy(&batch);
    cf_cli_free_secret(secret);
    json_decref(cas);
    json_decref(jobs);
    json_decref(base);
    return rc;
}

/* --- dump -------------------------------------------------------------------------------- */

/* The CRLs stored for CA NAME as "ca, user/0, user/1" into OUT ("" when none). */
static void s_built_list(cf_pg_t *pg, const char *name, char *out, size_t len)
{
    const char *values[1] = {name};
    PGresult *res = cf_pg_exec_params(pg,
                                      "SELECT c.scope, c.shard FROM crls c JOIN "
                                      "certificate_authorities a ON a.id = c.ca_id "
                                      "WHERE a.name = $1 ORDER BY c.scope, c.shard",
                                      1, values, NULL, NULL, 0);
    out[0] = '\0';
    for (int k = 0; res && k < PQntuples(res); k++) {
        size_t used = strlen(out);
        const char *scope = PQgetvalue(res, k, 0);
        bool sharded = strcmp(scope, "all") == 0 || strcmp(scope, "user") == 0;
        if (sharded)
            snprintf(out + used, len - used, "%s%s/%s", k ? ", " : "", scope,
                     PQgetvalue(res, k, 1));
        else
            snprintf(out + used, len - used, "%s%s", k ? ", " : "", scope);
    }
    PQclear(res);
}

/* Write CRL to PATH (NULL or "-": standard output) as PEM or DER; 0 or 1 (printed). */
static int s_write_crl(X509_CRL *crl, const unsigned char *der, size_t len, bool pem,
                       const char *path)
{
    bool to_stdout = !path || strcmp(path, "-") == 0;
    FILE *f = to_stdout ? stdout : fopen(path, "wb");
    if (!f)
        return cf_cli_fail("could not write \"%s\": %m", path);
    bool ok = pem ? PEM_write_X509_CRL(f, crl) == 1 : fwrite(der, 1, len, f) == len;
    ok = (to_stdout ? fflush(f) : fclose(f)) == 0 && ok;
    ERR_clear_error();
    if (!ok)
        return cf_cli_fail("could not write \"%s\": %m", to_stdout ? "standard output" : path);
    return 0;
}

static int s_dump(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"scope", required_argument, NULL, O_SCOPE},
                                         {"shard", required_argument, NULL, O_SHARD},
                                         {"pem", no_argument, NULL, O_PEM},
                                         {"der", no_argument, NULL, O_DER},
                                         {"out", required_argument, NULL, 'o'},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int c;
    long long shard = 0;
    cf_scope_t scope = CF_SCOPE_USER;
    const char *path = NULL;
    bool pem = false, der = false;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":ho:", opts, NULL)) != -1) {
        switch (c) {
        case O_SCOPE: {
            cf_error_t err = {0};
            if (cf_scope_parse(optarg, "--scope", &scope, &err) != 0)
                return cf_cli_usage_error("option \"--scope\": %s", err.message);
            break;
        }
        case O_SHARD:
            if (cf_cli_parse_int("--shard", optarg, 0, 4095, &shard) != 0)
                return 2;
            break;
        case O_PEM:
            pem = true;
            break;
        case O_DER:
            der = true;
            break;
        case 'o':
            path = optarg;
            break;
        case 'h':
            return s_help(stdout, 0);
        default:
            return cf_cli_option_error(c, argv, "crl");
        }
    }
    if (argc - optind != 1)
        return cf_cli_usage("crl dump CA [--scope S] [--shard K] [--pem | --der] [-o FILE]");
    if (pem && der)
        return cf_cli_usage_error("give --pem or --der, not both");
    bool to_stdout = !path || strcmp(path, "-") == 0;
    /* PEM on a terminal or a pipe by default, DER into a file: what each is usually for. */
    pem = pem || (!der && to_stdout);
    if (!pem && to_stdout && !cli->json && isatty(STDOUT_FILENO))
        return cf_cli_usage_error("refusing to write a DER CRL to a terminal (use -o FILE or "
                                  "--pem)");
    const char *name = argv[optind];
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg)
        return 1;
    int rc = 1;
    char shard_text[16];
    snprintf(shard_text, sizeof shard_text, "%lld", shard);
    const char *values[3] = {name, cf_scope_name(scope), shard_text};
    X509_CRL *crl = NULL;
    unsigned char *bytes = NULL;
    size_t len = 0;
    json_t *doc = NULL;
    PGresult *res =
        cf_pg_exec_params(pg,
                          "SELECT c.number, extract(epoch FROM c.this_update)::bigint, "
                          "extract(epoch FROM c.next_update)::bigint, c.entries, c.stale, c.der "
                          "FROM crls c JOIN certificate_authorities a ON a.id = c.ca_id "
                          "WHERE a.name = $1 AND c.scope = $2 AND c.shard = $3::integer",
                          3, values, NULL, NULL, 0);
    if (!res) {
        rc = cf_cli_fail("could not read the CRLs of certificate authority \"%s\": %s", name,
                         cf_pg_errstr(pg));
        goto out;
    }
    if (PQntuples(res) == 0) {
        PGresult *ca = cf_pg_exec_params(
            pg, "SELECT 1 FROM certificate_authorities WHERE name = $1", 1, values, NULL, NULL, 0);
        bool exists = ca && PQntuples(ca) > 0;
        PQclear(ca);
        char built[512];
        s_built_list(pg, name, built, sizeof built);
        if (!exists)
            rc = cf_cli_fail("certificate authority \"%s\" does not exist", name);
        else if (built[0])
            rc = cf_cli_fail("no CRL of certificate authority \"%s\" for scope %s, shard %lld has "
                             "been built (there are: %s)",
                             name, cf_scope_name(scope), shard, built);
        else
            rc = cf_cli_fail("no CRL of certificate authority \"%s\" has been built (run "
                             "certfleet crl build %s)",
                             name, name);
        goto out;
    }
    const unsigned char *p = bytes = cf_cli_bytea(PQgetvalue(res, 0, 5), &len);
    if (!bytes || !(crl = d2i_X509_CRL(NULL, &p, (long)len))) {
        ERR_clear_error();
        rc = cf_cli_fail("the stored CRL of certificate authority \"%s\" does not parse", name);
        goto out;
    }
    if (cli->json) {
        char this_update[32], next_update[32];
        cf_cli_time(atoll(PQgetvalue(res, 0, 1)), this_update, sizeof this_update);
        cf_cli_time(atoll(PQgetvalue(res, 0, 2)), next_update, sizeof next_update);
        json_t *body = NULL;
        if (pem) {
            BIO *bio = BIO_new(BIO_s_mem());
            char *data = NULL;
            long n =
                bio && PEM_write_bio_X509_CRL(bio, crl) == 1 ? BIO_get_mem_data(bio, &data) : 0;
            body = n > 0 ? json_stringn(data, (size_t)n) : NULL;
            BIO_free(bio);
        } else {
            char *b64 = cf_base64_encode(bytes, len);
            body = b64 ? json_string(b64) : NULL;
            free(b64);
        }
        if (!body) {
            rc = cf_cli_fail("out of memory");
            goto out;
        }
        if (path && !to_stdout && s_write_crl(crl, bytes, len, pem, path) != 0)
            goto out;
        doc = json_pack("{s:s, s:s, s:I, s:I, s:s, s:s, s:I, s:b, s:I, s:s, s:o}", "ca", name,
                        "scope", cf_scope_name(scope), "shard", (json_int_t)shard, "number",
                        (json_int_t)atoll(PQgetvalue(res, 0, 0)), "this_update", this_update,
                        "next_update", next_update, "entries",
                        (json_int_t)atoll(PQgetvalue(res, 0, 3)), "stale",
                        PQgetvalue(res, 0, 4)[0] == 't', "size", (json_int_t)len, "format",
                        pem ? "PEM" : "DER", "crl", body);
        if (path && !to_stdout)
            json_object_set_new(doc, "file", json_string(path));
        cf_cli_print_json(doc);
        rc = 0;
        goto out;
    }
    rc = s_write_crl(crl, bytes, len, pem, path);
out:
    json_decref(doc);
    X509_CRL_free(crl);
    free(bytes);
    PQclear(res);
    cf_pg_destroy(&pg);
    return rc;
}

int cf_cmd_crl(cf_cli_t *cli, int argc, char **argv)
{
    static const cf_cli_verb_t verbs[] = {{"build", s_build}, {"dump", s_dump}, {NULL, NULL}};
    return cf_cli_dispatch(cli, argc, argv, "crl", s_help_text, verbs);
}
