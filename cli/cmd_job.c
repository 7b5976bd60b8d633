/* certfleet job submit FILE.json: any job written as JSON, sent as MessagePack, the reply
 * printed as JSON. The file holds {"type": "...", "params": {...}} and optionally "id" (32 hex
 * digits; random when absent) and "deadline_ms" (absolute Unix ms). "-" reads stdin. */
#include <czmq.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_job.h"
#include "cf_msgpack.h"
#include "cf_proto.h"
#include "cli.h"

cf_reply_t *cf_cli_call(cf_cli_t *cli, const char *type, const void *params, size_t len,
                        int attempts)
{
    const char *endpoint =
        cf_config_get(cli->config, "broker", "endpoint", CF_PROTO_ENDPOINT_DEFAULT);
    cf_client_t *client = cf_client_new_from_config(cli->config);
    if (!client) {
        cf_cli_fail("could not connect to the broker at \"%s\"", endpoint);
        return NULL;
    }
    if (attempts > cf_config_get_int(cli->config, "client", "attempts", 10))
        cf_client_set_attempts(client, attempts);
    uint8_t id[CF_JOB_ID_SIZE];
    if (cf_client_send(client, NULL, type, params, len, 0, id) != 0) {
        cf_cli_fail("could not send the job to the broker at \"%s\"", endpoint);
        cf_client_destroy(&client);
        return NULL;
    }
    /* Wait in short steps so that a terminal sees the time pass (key generation and a busy
     * signer can take seconds); scripts reading standard error see nothing extra. */
    bool tty = isatty(STDERR_FILENO);
    uint64_t start = cf_mono_ms(), shown = 0;
    cf_reply_t *reply = NULL;
    while (!reply && cf_client_pending(client) > 0 && !zsys_interrupted) {
        reply = cf_client_recv(client, 250);
        uint64_t seconds = (cf_mono_ms() - start) / 1000;
        if (!reply && tty && seconds > shown) {
            fprintf(stderr, "\r%s: waiting for the reply ... %llus ", type,
                    (unsigned long long)seconds);
            shown = seconds;
        }
    }
    if (shown > 0)
        fputs("\r\033[K", stderr);
    if (!reply) {
        cf_error_t err;
        cf_error_set(&err, "interrupted", "", "interrupted while waiting for the reply");
        reply = cf_reply_new_error(id, &err);
    }
    cf_client_destroy(&client);
    return reply;
}

cf_reply_t *cf_cli_call_json(cf_cli_t *cli, const char *type, const json_t *params, int attempts)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    cf_reply_t *reply = NULL;
    if (cf_json_to_msgpack(params, &pk) != 0)
        cf_cli_fail("%s: could not pack the parameters", type);
    else
        reply = cf_cli_call(cli, type, buf.data, buf.size, attempts);
    /* The params may hold a key password: wipe them. */
    if (buf.data)
        OPENSSL_cleanse(buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
    return reply;
}

int cf_cli_fail_reply(const char *type, const cf_reply_t *reply)
{
    const cf_error_t *e = cf_reply_error(reply);
    if (!e)
        return cf_cli_fail("%s: the reply holds no error", type);
    if (e->field[0])
        return cf_cli_fail("%s: %s (%s, %s)", type, e->message, e->code, e->field);
    return cf_cli_fail("%s: %s (%s)", type, e->message, e->code);
}

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
