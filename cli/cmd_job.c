/* certfleet job submit FILE.json: any job written as JSON, sent as MessagePack, the reply
 * printed as JSON. The file holds {"type": "...", "params": {...}} and optionally "id" (32 hex
 * digits; random when absent) and "deadline_ms" (absolute Unix ms). "-" reads stdin. */
#include <stdio.h>
#include <string.h>

#include "cf_client.h"
#include "cf_job.h"
#include "cf_msgpack.h"
#include "cli.h"

static int s_hex_id(const char *hex, uint8_t id[CF_JOB_ID_SIZE])
{
    if (strlen(hex) != 2 * CF_JOB_ID_SIZE)
        return -1;
    for (int i = 0; i < CF_JOB_ID_SIZE; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        id[i] = (uint8_t)v;
    }
    return 0;
}

/* Print a reply as JSON and return the exit code: 0 for ok, 1 for an error reply. */
static int s_print_reply(const cf_reply_t *reply)
{
    json_t *out = cf_reply_to_json(reply);
    char *text = json_dumps(out, JSON_INDENT(2) | JSON_SORT_KEYS);
    puts(text ? text : "{}");
    free(text);
    json_decref(out);
    return cf_reply_ok(reply) ? 0 : 1;
}

static int s_submit(cf_cli_t *cli, const char *path)
{
    json_error_t jerr;
    json_t *doc =
        strcmp(path, "-") == 0 ? json_loadf(stdin, 0, &jerr) : json_load_file(path, 0, &jerr);
    if (!doc)
        return cf_cli_fail("could not read job \"%s\": %s (line %d)", path, jerr.text, jerr.line);
    int rc = 1;
    cf_client_t *client = NULL;
    msgpack_sbuffer params;
    msgpack_sbuffer_init(&params);
    const char *type = json_string_value(json_object_get(doc, "type"));
    json_t *jparams = json_object_get(doc, "params");
    json_t *jid = json_object_get(doc, "id");
    json_t *jdeadline = json_object_get(doc, "deadline_ms");
    uint8_t id[CF_JOB_ID_SIZE];
    if (!json_is_object(doc) || !type) {
        rc = cf_cli_fail("job \"%s\" needs a string \"type\"", path);
        goto out;
    }
    if (jparams && !json_is_object(jparams)) {
        rc = cf_cli_fail("job \"%s\": \"params\" must be an object", path);
        goto out;
    }
    if (jid && (!json_is_string(jid) || s_hex_id(json_string_value(jid), id) != 0)) {
        rc = cf_cli_fail("job \"%s\": \"id\" must be 32 hex digits", path);
        goto out;
    }
    if (jdeadline && (!json_is_integer(jdeadline) || json_integer_value(jdeadline) < 0)) {
        rc = cf_cli_fail("job \"%s\": \"deadline_ms\" must be a Unix time in milliseconds", path);
        goto out;
    }
    if (jparams) {
        msgpack_packer pk;
        msgpack_packer_init(&pk, &params, msgpack_sbuffer_write);
        cf_json_to_msgpack(jparams, &pk);
    }
    client = cf_client_new_from_config(cli->config);
    if (!client) {
        rc = cf_cli_fail("could not connect to the broker");
        goto out;
    }
    if (cf_client_send(client, jid ? id : NULL, type, params.data, params.size,
                       jdeadline ? (uint64_t)json_integer_value(jdeadline) : 0, NULL) != 0) {
        rc = cf_cli_fail("could not send the job");
        goto out;
    }
    cf_reply_t *reply = cf_client_recv(client, -1);
    if (!reply) {
        rc = cf_cli_fail("interrupted");
        goto out;
    }
    rc = s_print_reply(reply);
    cf_reply_destroy(&reply);
out:
    cf_client_destroy(&client);
    msgpack_sbuffer_destroy(&params);
    json_decref(doc);
    return rc;
}

int cf_cmd_job(cf_cli_t *cli, int argc, char **argv)
{
    if (argc == 2 && strcmp(argv[0], "submit") == 0)
        return s_submit(cli, argv[1]);
    return cf_cli_usage("job submit FILE.json");
}
