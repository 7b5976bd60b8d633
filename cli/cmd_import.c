/* certfleet ca import / cert import: bring existing CAs and certificates in, through the
 * ca.import and cert.import jobs (schemas/jobs.md). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_client.h"
#include "cf_msgpack.h"
#include "cli.h"

/* Pack FILE's bytes as a value: PEM text as str, anything else (DER) as bin. */
static int s_pack_file(msgpack_packer *pk, const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return cf_cli_fail("could not read \"%s\"", path);
    unsigned char *buf = malloc(1 << 20);
    size_t n = buf ? fread(buf, 1, (1 << 20) - 1, f) : 0;
    fclose(f);
    if (!buf || n == 0) {
        free(buf);
        return cf_cli_fail("\"%s\" is empty or unreadable", path);
    }
    buf[n] = '\0';
    if (strstr((char *)buf, "-----BEGIN")) {
        msgpack_pack_str(pk, n);
        msgpack_pack_str_body(pk, buf, n);
    } else {
        msgpack_pack_bin(pk, n);
        msgpack_pack_bin_body(pk, buf, n);
    }
    free(buf);
    return 0;
}

static int s_submit(cf_cli_t *cli, const char *type, msgpack_sbuffer *params)
{
    cf_reply_t *reply = cf_cli_call(cli, type, params->data, params->size, 0);
    if (!reply)
        return 1;
    int rc;
    if (!cf_reply_ok(reply)) {
        rc = cf_cli_fail_reply(type, reply);
    } else {
        json_t *doc = cf_reply_to_json(reply);
        const json_t *result = json_object_get(doc, "result");
        if (cli->json)
            cf_cli_print_json(result);
        else if (strcmp(type, "ca.import") == 0)
            printf("Imported certificate authority \"%s\" (serial %s)\n",
                   json_string_value(json_object_get(result, "name")),
                   json_string_value(json_object_get(result, "serial")));
        else
            printf("Imported certificate %s of \"%s\"\n",
                   json_string_value(json_object_get(result, "serial")),
                   json_string_value(json_object_get(result, "ca")));
        json_decref(doc);
        rc = 0;
    }
    cf_reply_destroy(&reply);
    return rc;
}

int cf_cli_ca_import(cf_cli_t *cli, int argc, char **argv)
{
    static const char *const opts[][2] = {{"--parent", "parent"},
                                          {"--key-password", "key_password"},
                                          {"--key-backend", "key_backend"},
                                          {"--password", "password"},
                                          {"--default-hostname", "default_hostname"},
                                          {NULL, NULL}};
    const char *pos[3] = {NULL, NULL, NULL};
    const char *vals[5] = {NULL};
    int npos = 0;
    for (int i = 1; i < argc; i++) {
        bool matched = false;
        for (int k = 0; opts[k][0]; k++) {
            if (strcmp(argv[i], opts[k][0]) == 0 && i + 1 < argc) {
                vals[k] = argv[++i];
                matched = true;
            }
        }
        if (matched)
            continue;
        if (argv[i][0] == '-' || npos == 3)
            return cf_cli_usage_error("ca import NAME CERTIFICATE KEY [--parent NAME] "
                                      "[--key-password P] [--key-backend B] [--password P] "
                                      "[--default-hostname HOST]");
        pos[npos++] = argv[i];
    }
    if (npos != 3)
        return cf_cli_usage_error("ca import NAME CERTIFICATE KEY [OPTIONS]");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    int n = 3;
    for (int k = 0; k < 5; k++)
        n += vals[k] != NULL;
    msgpack_pack_map(&pk, (size_t)n);
    cf_msgpack_pack_cstr(&pk, "name");
    cf_msgpack_pack_cstr(&pk, pos[0]);
    cf_msgpack_pack_cstr(&pk, "certificate");
    int rc = s_pack_file(&pk, pos[1]);
    if (rc == 0) {
        cf_msgpack_pack_cstr(&pk, "key");
        rc = s_pack_file(&pk, pos[2]);
    }
    for (int k = 0; rc == 0 && k < 5; k++) {
        if (!vals[k])
            continue;
        cf_msgpack_pack_cstr(&pk, opts[k][1]);
        cf_msgpack_pack_cstr(&pk, vals[k]);
    }
    if (rc == 0)
        rc = s_submit(cli, "ca.import", &buf);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}

int cf_cli_cert_import(cf_cli_t *cli, int argc, char **argv)
{
    const char *ca = NULL, *file = NULL, *profile = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--ca") == 0 && i + 1 < argc)
            ca = argv[++i];
        else if (strcmp(argv[i], "--profile") == 0 && i + 1 < argc)
            profile = argv[++i];
        else if (argv[i][0] != '-' && !file)
            file = argv[i];
        else
            return cf_cli_usage_error("cert import --ca NAME FILE [--profile P]");
    }
    if (!ca || !file)
        return cf_cli_usage_error("cert import --ca NAME FILE [--profile P]");
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, profile ? 3 : 2);
    cf_msgpack_pack_cstr(&pk, "ca");
    cf_msgpack_pack_cstr(&pk, ca);
    if (profile) {
        cf_msgpack_pack_cstr(&pk, "profile");
        cf_msgpack_pack_cstr(&pk, profile);
    }
    cf_msgpack_pack_cstr(&pk, "certificate");
    int rc = s_pack_file(&pk, file);
    if (rc == 0)
        rc = s_submit(cli, "cert.import", &buf);
    msgpack_sbuffer_destroy(&buf);
    return rc;
}
