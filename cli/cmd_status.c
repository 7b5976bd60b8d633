/* certfleet status: the broker's workers, credit and queues (the broker.status job). */
#include <stdio.h>
#include <string.h>

#include "cf_client.h"
#include "cf_proto.h"
#include "cli.h"

static long long s_int(const json_t *obj, const char *key)
{
    return (long long)json_integer_value(json_object_get(obj, key));
}

static void s_print_text(const json_t *r)
{
    const json_t *b = json_object_get(r, "broker");
    printf("broker %s (pid %lld, up %llds)\n\n", json_string_value(json_object_get(b, "endpoint")),
           s_int(b, "pid"), s_int(b, "uptime_s"));
    size_t i;
    json_t *w;
    printf("%-44s %8s %7s %9s\n", "WORKER", "PID", "CREDIT", "IN FLIGHT");
    json_array_foreach(json_object_get(r, "workers"), i, w)
        printf("%-44s %8lld %7lld %9lld\n", json_string_value(json_object_get(w, "name")),
               s_int(w, "pid"), s_int(w, "credit"), s_int(w, "in_flight"));
    printf("\n%-20s %7s %7s %9s %7s %10s %10s %6s %7s\n", "SERVICE", "WORKERS", "CREDIT",
           "IN FLIGHT", "QUEUED", "REQUESTS", "REPLIES", "BUSY", "EXPIRED");
    json_array_foreach(json_object_get(r, "services"), i, w)
        printf("%-20s %7lld %7lld %9lld %7lld %10lld %10lld %6lld %7lld\n",
               json_string_value(json_object_get(w, "name")), s_int(w, "workers"),
               s_int(w, "credit"), s_int(w, "in_flight"), s_int(w, "queued"), s_int(w, "requests"),
               s_int(w, "replies"), s_int(w, "busy"), s_int(w, "expired"));
    const json_t *t = json_object_get(r, "totals");
    printf("\ntotals: %lld received, %lld answered, %lld in the system, %lld duplicates dropped, "
           "%lld malformed, %lld requeued, %lld busy, %lld expired\n",
           s_int(t, "received"), s_int(t, "answered"), s_int(t, "in_system"),
           s_int(t, "duplicates"), s_int(t, "malformed"), s_int(t, "requeued"), s_int(t, "busy"),
           s_int(t, "expired"));
}

int cf_cmd_status(cf_cli_t *cli, int argc, char **argv)
{
    if (argc != 0)
        return cf_cli_usage("status");
    cf_client_t *client = cf_client_new_from_config(cli->config);
    const char *endpoint =
        cf_config_get(cli->config, "broker", "endpoint", CF_PROTO_ENDPOINT_DEFAULT);
    if (!client)
        return cf_cli_fail("could not connect to the broker at \"%s\"", endpoint);
    /* Status is for humans and scripts checking liveness: answer quickly either way. */
    cf_client_set_timeout(client, 1000);
    cf_client_set_attempts(client, 2);
    cf_reply_t *reply = cf_client_call(client, "broker.status", NULL, 0, 0);
    int rc = 1;
    if (!cf_reply_ok(reply)) {
        const cf_error_t *e = cf_reply_error(reply);
        rc = cf_cli_fail("broker at \"%s\" did not answer: %s", endpoint, e->message);
    } else {
        json_t *doc = cf_reply_to_json(reply);
        json_t *result = json_object_get(doc, "result");
        if (cli->json) {
            char *text = json_dumps(result, JSON_INDENT(2) | JSON_SORT_KEYS);
            puts(text);
            free(text);
        } else {
            s_print_text(result);
        }
        json_decref(doc);
        rc = 0;
    }
    cf_reply_destroy(&reply);
    cf_client_destroy(&client);
    return rc;
}
