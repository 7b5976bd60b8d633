/* certfleet watcher: the mail addresses told when certificates expire (django-ca's Watcher
 * model; docs/notify.md). Watchers live in PostgreSQL only, so these verbs read and write the
 * tables directly, each in one transaction; the mails themselves are notify.expiring jobs
 * (certfleet notify expiring). */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_mail.h"
#include "cli.h"
#include "options.h"
#include "store.h"
#include "x509_print.h"

static const char s_help_text[] =
    "usage: certfleet [--json] watcher VERB ...\n"
    "\n"
    "  watcher add EMAIL [--name NAME] [--cert SERIAL]... [--ca NAME]\n"
    "                                  create the watcher (or rename it with --name) and let it\n"
    "                                  watch these certificates\n"
    "  watcher remove EMAIL [--cert SERIAL]... [--ca NAME]\n"
    "                                  stop watching these certificates; without --cert,\n"
    "                                  remove the watcher and all it watches\n"
    "  watcher list [--cert SERIAL] [--ca NAME]\n"
    "                                  every watcher, or the watchers of one certificate with\n"
    "                                  the expiry notices they got\n"
    "\n"
    "  Addresses match without regard to case. --ca picks the certificate authority when a\n"
    "  serial belongs to certificates of several.\n";

enum { O_NAME = 256, O_CERT, O_CA };

#define S_CERTS_MAX 256 /* --cert options on one line */

/* The words of one verb: EMAIL (add, remove), --name, --cert ..., --ca. */
typedef struct {
    const char *mail;               /* EMAIL, or NULL (list) */
    const char *name;               /* --name, or NULL */
    const char *certs[S_CERTS_MAX]; /* --cert, as typed */
    int ncerts;                     /* how many */
    const char *ca;                 /* --ca, or NULL */
} s_args_t;

/* Parse ARGV for VERB ("add" takes --name, "list" no EMAIL and one --cert at most). 0, or the
 * exit code of a usage error (-1: --help printed, exit 0). */
static int s_args(int argc, char **argv, const char *verb, s_args_t *a)
{
    static const struct option opts[] = {{"name", required_argument, NULL, O_NAME},
                                         {"cert", required_argument, NULL, O_CERT},
                                         {"ca", required_argument, NULL, O_CA},
                                         {"help", no_argument, NULL, 'h'},
                                         {NULL, 0, NULL, 0}};
    bool list = strcmp(verb, "list") == 0, add = strcmp(verb, "add") == 0;
    int c;
    optind = 1;
    opterr = 0;
    while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
        switch (c) {
        case O_NAME:
            if (!add)
                return cf_cli_usage_error("unknown option \"--name\" (see certfleet watcher "
                                          "help)");
            a->name = optarg;
            break;
        case O_CERT:
            if (a->ncerts == S_CERTS_MAX || (list && a->ncerts == 1))
                return cf_cli_usage_error(list ? "give --cert once" : "too many --cert options");
            a->certs[a->ncerts++] = optarg;
            break;
        case O_CA:
            a->ca = optarg;
            break;
        case 'h':
            fputs(s_help_text, stdout);
            return -1;
        default:
            return cf_cli_option_error(c, argv, "watcher");
        }
    }
    if (argc - optind != (list ? 0 : 1)) {
        if (list)
            return cf_cli_usage("watcher list [--cert SERIAL] [--ca NAME]");
        if (add)
            return cf_cli_usage("watcher add EMAIL [--name NAME] [--cert SERIAL]... [--ca NAME]");
        return cf_cli_usage("watcher remove EMAIL [--cert SERIAL]... [--ca NAME]");
    }
    if (!list) {
        a->mail = argv[optind];
        if (!cf_mail_addr_valid(a->mail))
            return cf_cli_usage_error("\"%s\" is not a valid mail address (local@domain, at "
                                      "most 254 characters)",
                                      a->mail);
    }
    if (a->name) {
        bool bad = strlen(a->name) > 200;
        for (const unsigned char *p = (const unsigned char *)a->name; *p && !bad; p++)
            bad = *p < 0x20 || *p == 0x7f;
        if (bad)
            return cf_cli_usage_error("option \"--name\" needs at most 200 characters and no "
                                      "control characters");
    }
    char hex[128];
    for (int i = 0; i < a->ncerts; i++)
        if (cf_cli_serial_normalize(a->certs[i], hex, sizeof hex) != 0)
            return cf_cli_usage_error("\"%s\" is not a serial number (hex digits, colons "
                                      "optional)",
                                      a->certs[i]);
    if (a->ca && a->ncerts == 0)
        return cf_cli_usage_error("option \"--ca\" needs --cert");
    return 0;
}

/* The id of the certificate SERIAL (as typed) of CA (NULL: any) into ID, and its serial
 * (normalized) into HEX; 0, or 1 after printing why. */
static int s_cert_id(cf_pg_t *pg, const char *serial, const char *ca, char *id, size_t idlen,
                     char *hex, size_t hexlen)
{
    PGresult *res = cf_cli_cert_find(pg, serial, ca, hex, hexlen);
    if (!res)
        return 1;
    snprintf(id, idlen, "%s", PQgetvalue(res, 0, 0));
    PQclear(res);
    return 0;
}

/* The watcher ID as JSON {mail, name, created, certificates: [{serial, ca, cn, expires}]}
 * (new reference), or NULL after printing why. */
static json_t *s_watcher_json(cf_pg_t *pg, const char *id)
{
    const char *values[1] = {id};
    PGresult *w = cf_pg_exec_params(
        pg, "SELECT mail, name, extract(epoch FROM created_at)::bigint FROM watchers WHERE id = $1",
        1, values, NULL, NULL, 0);
    PGresult *c = w ? cf_pg_exec_params(pg,
                                        "SELECT c.serial, a.name, c.cn, "
                                        "extract(epoch FROM c.expires)::bigint "
                                        "FROM certificate_watchers cw "
                                        "JOIN certificates c ON c.id = cw.certificate_id "
                                        "JOIN certificate_authorities a ON a.id = c.ca_id "
                                        "WHERE cw.watcher_id = $1 ORDER BY c.expires, c.serial",
                                        1, values, NULL, NULL, 0)
                    : NULL;
    json_t *doc = NULL;
    if (!w || !c || PQntuples(w) != 1) {
        cf_cli_fail("could not read the watcher: %s", cf_pg_errstr(pg));
        goto out;
    }
    char when[32];
    cf_cli_time(atoll(PQgetvalue(w, 0, 2)), when, sizeof when);
    json_t *certs = json_array();
    for (int r = 0; r < PQntuples(c); r++) {
        char exp[32];
        cf_cli_time(atoll(PQgetvalue(c, r, 3)), exp, sizeof exp);
        json_array_append_new(certs, json_pack("{s:s, s:s, s:s, s:s}", "serial",
                                               PQgetvalue(c, r, 0), "ca", PQgetvalue(c, r, 1), "cn",
                                               PQgetvalue(c, r, 2), "expires", exp));
    }
    doc = json_pack("{s:s, s:s, s:s, s:o}", "mail", PQgetvalue(w, 0, 0), "name",
                    PQgetvalue(w, 0, 1), "created", when, "certificates", certs);
out:
    PQclear(w);
    PQclear(c);
    return doc;
}

/* Print the address of watcher DOC, and its name in parentheses when it has one. */
static void s_mail_line(const json_t *doc)
{
    const char *name = json_string_value(json_object_get(doc, "name"));
    printf("%s%s%s%s\n", json_string_value(json_object_get(doc, "mail")), *name ? " (" : "", name,
           *name ? ")" : "");
}

/* Print the watcher DOC as text: its address and name, then what it watches. */
static void s_watcher_text(const json_t *doc)
{
    s_mail_line(doc);
    const json_t *certs = json_object_get(doc, "certificates");
    if (json_array_size(certs) == 0) {
        printf("  watches no certificates\n");
        return;
    }
    size_t i;
    json_t *c;
    json_array_foreach(certs, i, c)
    {
        char *colons = cf_cli_serial_colons(json_string_value(json_object_get(c, "serial")));
        printf("  %s  %s  %s  expires %s\n", colons ? colons : "?",
               json_string_value(json_object_get(c, "ca")),
               json_string_value(json_object_get(c, "cn")),
               json_string_value(json_object_get(c, "expires")));
        free(colons);
    }
}

/* Resolve every --cert of A into IDS (room for S_CERTS_MAX, 32 bytes each); 0 or 1. */
static int s_cert_ids(cf_pg_t *pg, const s_args_t *a, char ids[][32], char hexes[][128])
{
    for (int i = 0; i < a->ncerts; i++)
        if (s_cert_id(pg, a->certs[i], a->ca, ids[i], 32, hexes[i], 128) != 0)
            return 1;
    return 0;
}

/* Parse ARGV for VERB into A and connect, inside a transaction unless VERB is "list": the
 * connection into *PG_P, or NULL there and the exit code to return. */
static int s_start(cf_cli_t *cli, int argc, char **argv, const char *verb, s_args_t *a,
                   cf_pg_t **pg_p)
{
    *pg_p = NULL;
    int rc = s_args(argc, argv, verb, a);
    if (rc != 0)
        return rc < 0 ? 0 : rc;
    cf_pg_t *pg = cf_cli_pg_open(cli);
    if (!pg)
        return 1;
    if (strcmp(verb, "list") != 0 && cf_pg_begin(pg) != 0) {
        rc = cf_cli_fail("could not begin a transaction: %s", cf_pg_errstr(pg));
        cf_pg_destroy(&pg);
        return rc;
    }
    *pg_p = pg;
    return 0;
}

/* Roll back what was not committed and close the connection. */
static void s_close(cf_pg_t **pg_p)
{
    if (cf_pg_in_transaction(*pg_p))
        cf_pg_rollback(*pg_p);
    cf_pg_destroy(pg_p);
}

static int s_add(cf_cli_t *cli, int argc, char **argv)
{
    s_args_t a = {0};
    cf_pg_t *pg;
    int rc = s_start(cli, argc, argv, "add", &a, &pg);
    if (!pg)
        return rc;
    char ids[S_CERTS_MAX][32], hexes[S_CERTS_MAX][128];
    json_t *doc = NULL;
    rc = 1;
    if (s_cert_ids(pg, &a, ids, hexes) != 0)
        goto out;
    /* A new watcher, or the existing one (any case) renamed when --name is given. */
    const char *values[2] = {a.mail, a.name};
    PGresult *res = cf_pg_exec_params(
        pg,
        "INSERT INTO watchers (mail, name) VALUES ($1, coalesce($2, '')) "
        "ON CONFLICT ((lower(mail))) DO UPDATE SET name = coalesce($2, watchers.name) "
        "RETURNING id, (xmax = 0)",
        2, values, NULL, NULL, 0);
    if (!res) {
        cf_cli_fail("could not store watcher \"%s\": %s", a.mail, cf_pg_errstr(pg));
        goto out;
    }
    char id[32];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    bool created = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    int linked = 0;
    for (int i = 0; i < a.ncerts; i++) {
        const char *lv[2] = {ids[i], id};
        res = cf_pg_exec_params(pg,
                                "INSERT INTO certificate_watchers (certificate_id, watcher_id) "
                                "VALUES ($1::bigint, $2::bigint) ON CONFLICT DO NOTHING",
                                2, lv, NULL, NULL, 0);
        if (!res) {
            cf_cli_fail("could not link watcher \"%s\" to certificate \"%s\": %s", a.mail, hexes[i],
                        cf_pg_errstr(pg));
            goto out;
        }
        linked += atoi(PQcmdTuples(res));
        PQclear(res);
    }
    if (!(doc = s_watcher_json(pg, id)))
        goto out;
    if (cf_pg_commit(pg) != 0) {
        cf_cli_fail("could not store watcher \"%s\": %s", a.mail, cf_pg_errstr(pg));
        goto out;
    }
    if (cli->json) {
        json_object_set_new(doc, "created", json_boolean(created));
        json_object_set_new(doc, "linked", json_integer(linked));
        cf_cli_print_json(doc);
    } else {
        printf("watcher %s: %s, %d certificate%s added\n", created ? "created" : "updated",
               json_string_value(json_object_get(doc, "mail")), linked, linked == 1 ? "" : "s");
        s_watcher_text(doc);
    }
    rc = 0;
out:
    json_decref(doc);
    s_close(&pg);
    return rc;
}

static int s_remove(cf_cli_t *cli, int argc, char **argv)
{
    s_args_t a = {0};
    cf_pg_t *pg;
    int rc = s_start(cli, argc, argv, "remove", &a, &pg);
    if (!pg)
        return rc;
    char ids[S_CERTS_MAX][32], hexes[S_CERTS_MAX][128];
    json_t *doc = NULL;
    PGresult *res = NULL;
    rc = 1;
    const char *values[1] = {a.mail};
    if (!(res = cf_pg_exec_params(pg, "SELECT id, mail FROM watchers WHERE lower(mail) = lower($1)",
                                  1, values, NULL, NULL, 0))) {
        cf_cli_fail("could not look up watcher \"%s\": %s", a.mail, cf_pg_errstr(pg));
        goto out;
    }
    if (PQntuples(res) == 0) {
        cf_cli_fail("watcher \"%s\" does not exist", a.mail);
        goto out;
    }
    char id[32], mail[300];
    snprintf(id, sizeof id, "%s", PQgetvalue(res, 0, 0));
    snprintf(mail, sizeof mail, "%s", PQgetvalue(res, 0, 1));
    PQclear(res);
    res = NULL;
    if (a.ncerts == 0) {
        /* The links and the notices go with it (ON DELETE CASCADE). */
        const char *dv[1] = {id};
        if (!(res = cf_pg_exec_params(pg, "DELETE FROM watchers WHERE id = $1::bigint", 1, dv, NULL,
                                      NULL, 0)) ||
            cf_pg_commit(pg) != 0) {
            cf_cli_fail("could not remove watcher \"%s\": %s", mail, cf_pg_errstr(pg));
            goto out;
        }
        if (cli->json) {
            json_t *out = json_pack("{s:s, s:b}", "mail", mail, "removed", 1);
            cf_cli_print_json(out);
            json_decref(out);
        } else {
            printf("watcher removed: %s\n", mail);
        }
        rc = 0;
        goto out;
    }
    if (s_cert_ids(pg, &a, ids, hexes) != 0)
        goto out;
    for (int i = 0; i < a.ncerts; i++) {
        const char *lv[2] = {ids[i], id};
        PQclear(res);
        if (!(res = cf_pg_exec_params(pg,
                                      "DELETE FROM certificate_watchers WHERE certificate_id = "
                                      "$1::bigint AND watcher_id = $2::bigint",
                                      2, lv, NULL, NULL, 0))) {
            cf_cli_fail("could not unlink watcher \"%s\": %s", mail, cf_pg_errstr(pg));
            goto out;
        }
        /* All or nothing: a certificate it does not watch is a mistake worth stopping for. */
        if (atoi(PQcmdTuples(res)) == 0) {
            cf_cli_fail("watcher \"%s\" does not watch certificate \"%s\"", mail, hexes[i]);
            goto out;
        }
    }
    if (!(doc = s_watcher_json(pg, id)))
        goto out;
    if (cf_pg_commit(pg) != 0) {
        cf_cli_fail("could not unlink watcher \"%s\": %s", mail, cf_pg_errstr(pg));
        goto out;
    }
    if (cli->json) {
        json_object_set_new(doc, "unlinked", json_integer(a.ncerts));
        cf_cli_print_json(doc);
    } else {
        printf("watcher %s: %d certificate%s removed\n", mail, a.ncerts, a.ncerts == 1 ? "" : "s");
        s_watcher_text(doc);
    }
    rc = 0;
out:
    PQclear(res);
    json_decref(doc);
    s_close(&pg);
    return rc;
}

/* watcher list --cert: the certificate's watchers and the notices each got. */
static int s_list_cert(cf_cli_t *cli, cf_pg_t *pg, const s_args_t *a)
{
    char id[32], hex[128];
    if (s_cert_id(pg, a->certs[0], a->ca, id, sizeof id, hex, sizeof hex) != 0)
        return 1;
    const char *values[1] = {id};
    PGresult *res = cf_pg_exec_params(
        pg,
        "SELECT w.mail, w.name, coalesce((SELECT json_agg(json_build_object("
        "'threshold_days', n.threshold_days, 'status', n.status, 'attempts', n.attempts, "
        "'sent_at', n.sent_at, 'next_attempt', n.next_attempt, 'last_error', n.last_error) "
        "ORDER BY n.threshold_days DESC) FROM expiry_notices n "
        "WHERE n.certificate_id = cw.certificate_id AND n.watcher_id = w.id), '[]')::text "
        "FROM certificate_watchers cw JOIN watchers w ON w.id = cw.watcher_id "
        "WHERE cw.certificate_id = $1::bigint ORDER BY lower(w.mail)",
        1, values, NULL, NULL, 0);
    if (!res)
        return cf_cli_fail("could not list the watchers of certificate \"%s\": %s", hex,
                           cf_pg_errstr(pg));
    json_t *list = json_array();
    for (int r = 0; r < PQntuples(res); r++) {
        json_t *notices = json_loads(PQgetvalue(res, r, 2), 0, NULL);
        size_t i;
        json_t *n;
        json_array_foreach(notices, i, n) cf_cli_row_tidy(n);
        json_array_append_new(list, json_pack("{s:s, s:s, s:o}", "mail", PQgetvalue(res, r, 0),
                                              "name", PQgetvalue(res, r, 1), "notices",
                                              notices ? notices : json_array()));
    }
    PQclear(res);
    if (cli->json) {
        cf_cli_print_json(list);
    } else if (json_array_size(list) == 0) {
        printf("certificate %s has no watchers\n", hex);
    } else {
        size_t i;
        json_t *w;
        json_array_foreach(list, i, w)
        {
            s_mail_line(w);
            size_t k;
            json_t *n;
            json_array_foreach(json_object_get(w, "notices"), k, n)
            {
                const json_t *sent = json_object_get(n, "sent_at");
                const char *err = json_string_value(json_object_get(n, "last_error"));
                printf("  %4lld days  %-8s  %s%s%s\n",
                       (long long)json_integer_value(json_object_get(n, "threshold_days")),
                       json_string_value(json_object_get(n, "status")),
                       json_is_string(sent) ? json_string_value(sent) : "", err && *err ? "  " : "",
                       err ? err : "");
            }
        }
    }
    json_decref(list);
    return 0;
}

static int s_list(cf_cli_t *cli, int argc, char **argv)
{
    s_args_t a = {0};
    cf_pg_t *pg;
    int rc = s_start(cli, argc, argv, "list", &a, &pg);
    if (!pg)
        return rc;
    if (a.ncerts == 1) {
        rc = s_list_cert(cli, pg, &a);
        cf_pg_destroy(&pg);
        return rc;
    }
    PGresult *res = cf_pg_exec_params(pg,
                                      "SELECT w.mail, w.name, count(cw.certificate_id), "
                                      "extract(epoch FROM w.created_at)::bigint FROM watchers w "
                                      "LEFT JOIN certificate_watchers cw ON cw.watcher_id = w.id "
                                      "GROUP BY w.id ORDER BY lower(w.mail)",
                                      0, NULL, NULL, NULL, 0);
    if (!res) {
        rc = cf_cli_fail("could not list the watchers: %s", cf_pg_errstr(pg));
        cf_pg_destroy(&pg);
        return rc;
    }
    int rows = PQntuples(res), width = 4;
    for (int r = 0; r < rows; r++) {
        int w = (int)strlen(PQgetvalue(res, r, 0));
        width = w > width ? w : width;
    }
    json_t *out = cli->json ? json_array() : NULL;
    if (!out && rows == 0)
        printf("no watchers\n");
    else if (!out)
        printf("%-*s  %12s  %-20s  %s\n", width, "MAIL", "CERTIFICATES", "CREATED", "NAME");
    for (int r = 0; r < rows; r++) {
        char when[32];
        cf_cli_time(atoll(PQgetvalue(res, r, 3)), when, sizeof when);
        if (out)
            json_array_append_new(
                out, json_pack("{s:s, s:s, s:I, s:s}", "mail", PQgetvalue(res, r, 0), "name",
                               PQgetvalue(res, r, 1), "certificates",
                               (json_int_t)atoll(PQgetvalue(res, r, 2)), "created", when));
        else
            printf("%-*s  %12s  %-20s  %s\n", width, PQgetvalue(res, r, 0), PQgetvalue(res, r, 2),
                   when, PQgetvalue(res, r, 1));
    }
    if (out) {
        cf_cli_print_json(out);
        json_decref(out);
    }
    PQclear(res);
    cf_pg_destroy(&pg);
    return 0;
}

int cf_cmd_watcher(cf_cli_t *cli, int argc, char **argv)
{
    static const cf_cli_verb_t verbs[] = {
        {"add", s_add}, {"remove", s_remove}, {"list", s_list}, {NULL, NULL}};
    return cf_cli_dispatch(cli, argc, argv, "watcher", s_help_text, verbs);
}
