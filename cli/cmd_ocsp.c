/* certfleet ocsp: delegated OCSP responders and pre-signed responses. `keygen` sends one
 * ocsp.keygen per CA (django-ca's regenerate_ocsp_keys), `presign` one ocsp.presign per shard
 * of each CA's certificates, all to the ocsp workers with many in flight at once. */
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_msgpack.h"
#include "cli.h"
#include "options.h"
#include "jobs_many.h"
#include "store.h"
#include "x509_print.h"

static const char s_help_text[] =
    "usage: certfleet [--json] ocsp VERB ...\n"
    "\n"
    "  ocsp keygen CA ... | --all [OPTIONS]   make (or renew) each CA's OCSP responder "
    "certificate\n"
    "      --all                          every enabled, unrevoked, unexpired CA\n"
    "      --force                        renew even when the current one is not due\n"
    "      --key-type RSA|DSA|EC|Ed25519|Ed448   --key-size BITS   --elliptic-curve CURVE\n"
    "                                     (default: the CA's)\n"
    "      --expires DAYS                 validity (default: the CA's, 3 days)\n"
    "      --algorithm A                  signature hash (default: the CA's)\n"
    "      --profile P                    profile of the certificate (default ocsp)\n"
    "      --key-backend B                where its key is kept (default [ocsp] key_backend)\n"
    "      --password-file F              the CAs' key password (first line of F)\n"
    "  ocsp presign CA ... | --all [--shards N] [--force]\n"
    "                                     sign and store the OCSP responses that are due\n"
    "      --shards N                     split each CA's work into at most N jobs (default\n"
    "                                     [ocsp] presign_shards, 64); never more than one job\n"
    "                                     per 1000 certificates, at least one\n"
    "      --force                        re-sign every response, not only the due ones\n"
    "      --all skips CAs without a current responder (run ocsp keygen first)\n";

/* Certificates per presign shard below which another shard is not worth a job. */
#define S_CERTS_PER_SHARD 1000

enum {
    O_ALL = 256,
    O_FORCE,
    O_KEY_TYPE,
    O_KEY_SIZE,
    O_CURVE,
    O_EXPIRES,
    O_ALGORITHM,
    O_PROFILE,
    O_KEY_BACKEND,
    O_PASSWORD_FILE,
    O_SHARDS,
};

static int s_help(FILE *out, int rc)
{
    fputs(s_help_text, out);
    return rc;
}

/* "CA ... | --all": a usage error unless exactly one of them; 0 or 2. */
static int s_targets(int names, bool all, const char *usage)
{
    if ((names == 0) == !all)
        return cf_cli_usage("%s   (certfleet ocsp help)", usage);
    return 0;
}

/* --- keygen ------------------------------------------------------------------------------ */

static void s_keygen_report(cf_cli_t *cli, const cf_cli_batch_t *batch, const json_t *cas)
{
    json_t *list = json_array();
    int width = 2;
    for (size_t i = 0; i < cf_cli_batch_size(batch); i++) {
        const char *name = json_string_value(json_object_get(json_array_get(cas, i), "name"));
        int w = (int)strlen(name);
        width = w > width ? w : width;
        const cf_reply_t *reply = cf_cli_batch_reply(batch, i);
        json_t *row = NULL;
        if (reply && cf_reply_ok(reply)) {
            json_t *doc = cf_reply_to_json(reply);
            row = json_incref(json_object_get(doc, "result"));
            json_decref(doc);
        }
        if (!json_is_object(row)) {
            json_decref(row);
            row = json_pack("{s:s, s:o}", "ca", name, "error", cf_cli_batch_error_json(batch, i));
        }
        json_array_append_new(list, row);
    }
    if (cli->json) {
        cf_cli_print_json(list);
        json_decref(list);
        return;
    }
    printf("%-*s  %-7s  %-20s  %s\n", width, "CA", "RENEWED", "EXPIRES", "SERIAL");
    size_t i;
    json_t *row;
    json_array_foreach(list, i, row)
    {
        const char *name = json_string_value(json_object_get(json_array_get(cas, i), "name"));
        if (json_object_get(row, "error")) {
            printf("%-*s  %-7s  %-20s  %s\n", width, name, "failed", "-", "-");
            continue;
        }
        char expires[32];
        cf_cli_time(json_integer_value(json_object_get(row, "expires")), expires, sizeof expires);
        char *colons = cf_cli_serial_colons(json_string_value(json_object_get(row, "serial")));
        printf("%-*s  %-7s  %-20s  %s\n", width, name,
               json_is_true(json_object_get(row, "renewed")) ? "yes" : "no", expires,
               colons ? colons : "?");
        free(colons);
    }
    json_decref(list);
}

static int s_keygen(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"all", no_argument, NULL, O_ALL},
        {"force", no_argument, NULL, O_FORCE},
        {"key-type", required_argument, NULL, O_KEY_TYPE},
        {"key-size", required_argument, NULL, O_KEY_SIZE},
        {"elliptic-curve", required_argument, NULL, O_CURVE},
        {"expires", required_argument, NULL, O_EXPIRES},
        {"algorithm", required_argument, NULL, O_ALGORITHM},
        {"profile", required_argument, NULL, O_PROFILE},
        {"key-backend", required_argument, NULL, O_KEY_BACKEND},
        {"password-file", required_argument, NULL, O_PASSWORD_FILE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0}};
    int rc = 2, c;
    bool all = false;
    long long n;
    const char *password_file = NULL;
    json_t *base = json_object(), *cas = NULL;
    char *secret = NULL;
    cf_cli_batch_t *batch = NULL;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        const char *key = NULL; /* a string param set from optarg */
        switch (c) {
        case O_ALL:
            all = true;
            break;
        case O_FORCE:
            json_object_set_new(base, "force", json_true());
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
        case O_PROFILE:
            key = "profile";
            break;
        case O_KEY_BACKEND:
            key = "key_backend";
            break;
        case O_KEY_SIZE:
            if (cf_cli_parse_int("--key-size", optarg, 1, INT_MAX, &n) != 0)
                goto out;
            json_object_set_new(base, "key_size", json_integer(n));
            break;
        case O_EXPIRES:
            if (cf_cli_parse_int("--expires", optarg, 1, 365LL * 100, &n) != 0)
                goto out;
            json_object_set_new(base, "expires", json_integer(n));
            break;
        case O_PASSWORD_FILE:
            password_file = optarg;
            break;
        case 'h':
            rc = s_help(stdout, 0);
            goto out;
        default:
            rc = cf_cli_option_error(c, argv, "ocsp");
            goto out;
        }
        if (key)
            json_object_set_new(base, key, json_string(optarg));
    }
    int names = argc - optind;
    if ((rc = s_targets(names, all, "ocsp keygen CA ... | --all [OPTIONS]")) != 0)
        goto out;
    rc = 1;
    if ((password_file && cf_cli_password_option(base, true, password_file, &secret) != 0) ||
        !(cas = cf_cli_cas_select(cli, argv + optind, names, all, false)))
        goto out;
    if (!(batch = cf_cli_batch_new("ocsp keygen", NULL)))
        goto out;
    size_t i;
    json_t *ca;
    json_array_foreach(cas, i, ca)
    {
        const char *name = json_string_value(json_object_get(ca, "name"));
        json_t *params = json_deep_copy(base);
        json_object_set_new(params, "ca", json_string(name));
        char what[128];
        snprintf(what, sizeof what, "ocsp.keygen \"%s\"", name);
        int added = cf_cli_batch_add(batch, "ocsp.keygen", params, what);
        json_decref(params);
        if (added != 0)
            goto out;
    }
    if (cf_cli_batch_size(batch) == 0) {
        if (cli->json)
            cf_cli_print_json(cas);
        else
            fprintf(stderr, "certfleet: no certificate authority to make a responder for\n");
        rc = 0;
        goto out;
    }
    int failed = cf_cli_batch_run(batch, cli);
    if (failed < 0)
        goto out;
    s_keygen_report(cli, batch, cas);
    cf_cli_batch_print_failures(batch);
    rc = failed > 0 ? 1 : 0;
out:
    cf_cli_batch_destroy(&batch);
    cf_cli_free_secret(secret);
    json_decref(cas);
    json_decref(base);
    return rc;
}

/* --- presign ----------------------------------------------------------------------------- */

/* The counts of one CA's shards, summed as their replies come. */
typedef struct {
    const char *name; /* the CA (borrowed from the selection) */
    int shards;       /* jobs sent for it */
    long long signed_, good, revoked, skipped;
    int failed; /* shards that failed */
} s_ca_sum_t;

typedef struct {
    s_ca_sum_t *cas;   /* one per CA with jobs */
    size_t *ca_of_job; /* job index -> index into cas */
    long long signed_; /* responses signed so far, every CA */
    long long good;    /* of them good */
    long long revoked; /* of them revoked */
    long long skipped; /* responses not due, left alone */
} s_presign_t;

static long long s_result_int(const msgpack_object *result, const char *key)
{
    const msgpack_object *v = cf_msgpack_map_get(result, key);
    if (v && v->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        return v->via.u64 > LLONG_MAX ? LLONG_MAX : (long long)v->via.u64;
    return 0;
}

static void s_presign_reply(void *arg, size_t index, const cf_reply_t *reply)
{
    s_presign_t *p = arg;
    s_ca_sum_t *ca = &p->cas[p->ca_of_job[index]];
    if (!cf_reply_ok(reply)) {
        ca->failed++;
        return;
    }
    const msgpack_object *r = cf_reply_result(reply);
    long long s = s_result_int(r, "signed"), g = s_result_int(r, "good"),
              v = s_result_int(r, "revoked"), k = s_result_int(r, "skipped");
    ca->signed_ += s;
    ca->good += g;
    ca->revoked += v;
    ca->skipped += k;
    p->signed_ += s;
    p->good += g;
    p->revoked += v;
    p->skipped += k;
}

static void s_presign_status(void *arg, char *buf, size_t len, double seconds)
{
    const s_presign_t *p = arg;
    snprintf(buf, len, ", %lld responses signed, %.0f/s", p->signed_,
             seconds > 0 ? (double)p->signed_ / seconds : 0.0);
}

static void s_presign_report(cf_cli_t *cli, const s_presign_t *p, size_t ncas, double seconds,
                             const json_t *without)
{
    double rate = seconds > 0 ? (double)p->signed_ / seconds : 0.0;
    if (cli->json) {
        json_t *list = json_array();
        for (size_t i = 0; i < ncas; i++) {
            const s_ca_sum_t *c = &p->cas[i];
            json_array_append_new(
                list, json_pack("{s:s, s:i, s:I, s:I, s:I, s:I, s:i}", "ca", c->name, "shards",
                                c->shards, "signed", (json_int_t)c->signed_, "good",
                                (json_int_t)c->good, "revoked", (json_int_t)c->revoked, "skipped",
                                (json_int_t)c->skipped, "failed", c->failed));
        }
        json_t *doc =
            json_pack("{s:o, s:I, s:I, s:I, s:I, s:f, s:f, s:O}", "cas", list, "signed",
                      (json_int_t)p->signed_, "good", (json_int_t)p->good, "revoked",
                      (json_int_t)p->revoked, "skipped", (json_int_t)p->skipped, "seconds", seconds,
                      "responses_per_s", rate, "without_responder", without);
        cf_cli_print_json(doc);
        json_decref(doc);
        return;
    }
    int width = 2;
    for (size_t i = 0; i < ncas; i++) {
        int w = (int)strlen(p->cas[i].name);
        width = w > width ? w : width;
    }
    printf("%-*s  %6s  %9s  %9s  %9s  %9s  %6s\n", width, "CA", "SHARDS", "SIGNED", "GOOD",
           "REVOKED", "SKIPPED", "FAILED");
    for (size_t i = 0; i < ncas; i++) {
        const s_ca_sum_t *c = &p->cas[i];
        printf("%-*s  %6d  %9lld  %9lld  %9lld  %9lld  %6d\n", width, c->name, c->shards,
               c->signed_, c->good, c->revoked, c->skipped, c->failed);
    }
    printf("\nsigned %lld responses (%lld good, %lld revoked), %lld skipped as not due, in %.1f s: "
           "%.0f responses/s\n",
           p->signed_, p->good, p->revoked, p->skipped, seconds, rate);
}

static int s_presign(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"all", no_argument, NULL, O_ALL},
                                         {"shards", required_argument, NULL, O_SHARDS},
                                         {"force", no_argument, NULL, O_FORCE},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    int rc = 2, c;
    bool all = false, force = false;
    long long max_shards = cf_config_get_int(cli->config, "ocsp", "presign_shards", 64);
    json_t *cas = NULL, *without = json_array();
    cf_cli_batch_t *batch = NULL;
    s_presign_t sums = {0};
    size_t ncas = 0;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_ALL:
            all = true;
            break;
        case O_SHARDS:
            if (cf_cli_parse_int("--shards", optarg, 1, 4096, &max_shards) != 0)
                goto out;
            break;
        case O_FORCE:
            force = true;
            break;
        case 'h':
            rc = s_help(stdout, 0);
            goto out;
        default:
            rc = cf_cli_option_error(c, argv, "ocsp");
            goto out;
        }
    }
    int names = argc - optind;
    if ((rc = s_targets(names, all, "ocsp presign CA ... | --all [--shards N] [--force]")) != 0)
        goto out;
    max_shards = max_shards < 1 ? 1 : max_shards > 4096 ? 4096 : max_shards;
    rc = 1;
    if (!(cas = cf_cli_cas_select(cli, argv + optind, names, all, true)))
        goto out;
    size_t total_jobs = 0, i;
    json_t *ca;
    /* At most one shard per S_CERTS_PER_SHARD certificates: a job per few certificates costs
     * more in round trips and locks than it saves. */
    json_array_foreach(cas, i, ca)
    {
        long long certs = json_integer_value(json_object_get(ca, "certificates"));
        long long need = (certs + S_CERTS_PER_SHARD - 1) / S_CERTS_PER_SHARD;
        need = need < 1 ? 1 : need;
        json_object_set_new(ca, "shards", json_integer(need < max_shards ? need : max_shards));
        total_jobs += (size_t)json_integer_value(json_object_get(ca, "shards"));
    }
    sums.cas = calloc(json_array_size(cas) + 1, sizeof *sums.cas);
    sums.ca_of_job = calloc(total_jobs + 1, sizeof *sums.ca_of_job);
    if (!sums.cas || !sums.ca_of_job || !(batch = cf_cli_batch_new("ocsp presign", "shards"))) {
        cf_cli_fail("out of memory");
        goto out;
    }
    int missing = 0;
    json_array_foreach(cas, i, ca)
    {
        const char *name = json_string_value(json_object_get(ca, "name"));
        if (!json_is_true(json_object_get(ca, "responder"))) {
            /* Every shard would fail with no_responder: say it once. With --all such a CA is
             * not an error, only not ready yet. */
            json_array_append_new(without, json_string(name));
            if (all) {
                fprintf(stderr,
                        "certfleet: skipping certificate authority \"%s\": it has no OCSP "
                        "responder (run certfleet ocsp keygen %s)\n",
                        name, name);
            } else {
                cf_cli_fail("certificate authority \"%s\" has no OCSP responder (run certfleet "
                            "ocsp keygen %s)",
                            name, name);
                missing++;
            }
            continue;
        }
        int shards = (int)json_integer_value(json_object_get(ca, "shards"));
        sums.cas[ncas] = (s_ca_sum_t){.name = name, .shards = shards};
        for (int k = 0; k < shards; k++) {
            json_t *params = json_pack("{s:s, s:i, s:i, s:b}", "ca", name, "shards", shards,
                                       "shard", k, "force", force);
            char what[160];
            snprintf(what, sizeof what, "ocsp.presign \"%s\" shard %d/%d", name, k, shards);
            sums.ca_of_job[cf_cli_batch_size(batch)] = ncas;
            int added = cf_cli_batch_add(batch, "ocsp.presign", params, what);
            json_decref(params);
            if (added != 0)
                goto out;
        }
        ncas++;
    }
    int failed = 0;
    if (cf_cli_batch_size(batch) > 0) {
        cf_cli_batch_set_hooks(batch, s_presign_reply, s_presign_status, &sums);
        if ((failed = cf_cli_batch_run(batch, cli)) < 0)
            goto out;
    } else if (missing == 0 && !cli->json) {
        fprintf(stderr, "certfleet: no certificate authority to sign OCSP responses for\n");
    }
    if (cf_cli_batch_size(batch) > 0 || cli->json)
        s_presign_report(cli, &sums, ncas, cf_cli_batch_seconds(batch), without);
    cf_cli_batch_print_failures(batch);
    rc = failed > 0 || missing > 0 ? 1 : 0;
out:
    cf_cli_batch_destroy(&batch);
    free(sums.cas);
    free(sums.ca_of_job);
    json_decref(without);
    json_decref(cas);
    return rc;
}

int cf_cmd_ocsp(cf_cli_t *cli, int argc, char **argv)
{
    static const cf_cli_verb_t verbs[] = {
        {"keygen", s_keygen}, {"presign", s_presign}, {NULL, NULL}};
    return cf_cli_dispatch(cli, argc, argv, "ocsp", s_help_text, verbs);
}
