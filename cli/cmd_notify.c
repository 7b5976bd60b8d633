/* certfleet notify: expiry mail (django-ca's notify_expiring_certs). `expiring` sends one
 * notify.expiring job to the notifier workers and prints its result (docs/notify.md). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_msgpack.h"
#include "cli.h"
#include "store.h"
#include "x509_print.h"

static const char s_help_text[] =
    "usage: certfleet [--json] notify VERB ...\n"
    "\n"
    "  notify expiring [OPTIONS]       mail the watchers of certificates that expire soon\n"
    "                                  (a notify.expiring job for certfleet-notifier)\n"
    "      --thresholds 30,14,7        days before expiry (default: the notifier's [notify]\n"
    "                                  thresholds, 30,14,7,3,1)\n"
    "      --ca NAME                   only the certificates of this CA\n"
    "      --limit N                   at most N mails in this run (default 500)\n"
    "      --dry-run                   list what would be mailed; send and record nothing\n"
    "\n"
    "  Exits 1 when a mail failed (it is tried again by a later run).\n";

enum { O_THRESHOLDS = 256, O_CA, O_LIMIT, O_DRY_RUN };

/* The job may send hundreds of mails: wait for it up to 10 minutes ([client] timeout_ms of
 * 3 s times this), not the usual 30 seconds. */
#define S_ATTEMPTS 200

static int s_help(FILE *out, int rc)
{
    fputs(s_help_text, out);
    return rc;
}

/* "30,14,7" as a JSON list of days into *OUT (new reference); 0, or 2 after printing why. */
static int s_thresholds(const char *text, json_t **out)
{
    json_t *list = json_array();
    char *copy = strdup(text), *save = NULL;
    int rc = 0;
    for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long long days;
        if (cf_cli_parse_int("--thresholds", tok, 1, 3650, &days) != 0) {
            rc = 2;
            break;
        }
        json_array_append_new(list, json_integer(days));
    }
    if (rc == 0 && (json_array_size(list) == 0 || json_array_size(list) > 32))
        rc = cf_cli_usage_error("option \"--thresholds\" needs 1 to 32 numbers of days, as "
                                "30,14,7");
    free(copy);
    if (rc != 0)
        json_decref(list);
    else
        *out = list;
    return rc;
}

static void s_print_text(const json_t *r)
{
    long long due = json_integer_value(json_object_get(r, "due"));
    long long skipped = json_integer_value(json_object_get(r, "skipped"));
    if (json_is_true(json_object_get(r, "dry_run"))) {
        printf("dry run: %lld mail%s due, %lld notice%s would be skipped\n", due,
               due == 1 ? "" : "s", skipped, skipped == 1 ? "" : "s");
        const json_t *list = json_object_get(r, "notices");
        if (json_array_size(list) == 0)
            return;
        printf("\n%-59s  %-24s  %-16s  %4s  %-20s  %s\n", "SERIAL", "CN", "CA", "DAYS", "EXPIRES",
               "MAIL");
        size_t i;
        json_t *n;
        json_array_foreach(list, i, n)
        {
            char when[32];
            cf_cli_time(json_integer_value(json_object_get(n, "expires")), when, sizeof when);
            char *colons = cf_cli_serial_colons(json_string_value(json_object_get(n, "serial")));
            printf("%-59s  %-24s  %-16s  %4lld  %-20s  %s\n", colons ? colons : "?",
                   json_string_value(json_object_get(n, "cn")),
                   json_string_value(json_object_get(n, "ca")),
                   (long long)json_integer_value(json_object_get(n, "threshold_days")), when,
                   json_string_value(json_object_get(n, "mail")));
            free(colons);
        }
        return;
    }
    printf("%lld due, %lld sent, %lld failed, %lld skipped\n", due,
           (long long)json_integer_value(json_object_get(r, "sent")),
           (long long)json_integer_value(json_object_get(r, "failed")), skipped);
}

static int s_expiring(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {{"thresholds", required_argument, NULL, O_THRESHOLDS},
                                         {"ca", required_argument, NULL, O_CA},
                                         {"limit", required_argument, NULL, O_LIMIT},
                                         {"dry-run", no_argument, NULL, O_DRY_RUN},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    json_t *params = json_object(), *doc = NULL;
    cf_reply_t *reply = NULL;
    int rc = 2, c;
    long long limit;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_THRESHOLDS: {
            json_t *list = NULL;
            if (s_thresholds(optarg, &list) != 0)
                goto out;
            json_object_set_new(params, "thresholds", list);
            break;
        }
        case O_CA:
            json_object_set_new(params, "ca", json_string(optarg));
            break;
        case O_LIMIT:
            if (cf_cli_parse_int("--limit", optarg, 1, 10000, &limit) != 0)
                goto out;
            json_object_set_new(params, "limit", json_integer(limit));
            break;
        case O_DRY_RUN:
            json_object_set_new(params, "dry_run", json_true());
            break;
        case 'h':
            rc = s_help(stdout, 0);
            goto out;
        default:
            rc = cf_cli_option_error(c, argv, "notify");
            goto out;
        }
    }
    if (argc != optind) {
        rc = cf_cli_usage("notify expiring [--thresholds DAYS,...] [--ca NAME] [--limit N] "
                          "[--dry-run]");
        goto out;
    }
    rc = 1;
    if (!(reply = cf_cli_call_json(cli, "notify.expiring", params, S_ATTEMPTS)))
        goto out;
    if (!cf_reply_ok(reply)) {
        rc = cf_cli_fail_reply("notify.expiring", reply);
        goto out;
    }
    doc = cf_reply_to_json(reply);
    const json_t *result = json_object_get(doc, "result");
    if (cli->json)
        cf_cli_print_json(result);
    else
        s_print_text(result);
    long long failed = json_integer_value(json_object_get(result, "failed"));
    if (failed > 0) {
        fprintf(stderr,
                "certfleet: %lld mail%s failed; a later run tries again (certfleet watcher list "
                "--cert SERIAL shows why)\n",
                failed, failed == 1 ? "" : "s");
        goto out;
    }
    rc = 0;
out:
    cf_reply_destroy(&reply);
    json_decref(doc);
    json_decref(params);
    return rc;
}

int cf_cmd_notify(cf_cli_t *cli, int argc, char **argv)
{
    if (argc < 1)
        return s_help(stderr, 2);
    if (strcmp(argv[0], "help") == 0 || strcmp(argv[0], "--help") == 0 ||
        strcmp(argv[0], "-h") == 0)
        return s_help(stdout, 0);
    if (strcmp(argv[0], "expiring") == 0)
        return s_expiring(cli, argc, argv);
    return cf_cli_usage_error("unknown command \"notify %s\" (see certfleet notify help)", argv[0]);
}
