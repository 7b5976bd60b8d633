/* certfleet: parse the global flags, load the config, dispatch to the noun's command. */
#include <errno.h>
#include <getopt.h>
#include <openssl/crypto.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"
#include "cf_secret.h"
#include "cli.h"

/* certfleet keygen (cmd_keygen.c). */
int cf_cmd_keygen(cf_cli_t *cli, int argc, char **argv);
/* certfleet watcher and notify (cmd_watcher.c, cmd_notify.c). */
int cf_cmd_watcher(cf_cli_t *cli, int argc, char **argv);
int cf_cmd_notify(cf_cli_t *cli, int argc, char **argv);

typedef struct {
    const char *noun;
    int (*run)(cf_cli_t *cli, int argc, char **argv);
    const char *help;
} s_command_t;

static const s_command_t s_commands[] = {
    {"db", cf_cmd_db, "db migrate                  apply the SQL migrations in schemas/sql"},
    {"status", cf_cmd_status,
     "status                      workers, credit and queues of the broker"},
    {"job", cf_cmd_job,
     "job submit FILE.json        send any job written as JSON, print the reply"},
    {"x509", cf_cmd_x509, "x509 show FILE              a certificate, CSR or CRL (PEM or DER)"},
    {"ca", cf_cmd_ca,
     "ca VERB ...                 certificate authorities: init list view dump edit import revoke"},
    {"cert", cf_cmd_cert,
     "cert VERB ...               certificates: sign list view dump import revoke"},
    {"crl", cf_cmd_crl, "crl build|dump ...          certificate revocation lists"},
    {"ocsp", cf_cmd_ocsp, "ocsp keygen|presign ...     OCSP responder certificates and responses"},
    {"watcher", cf_cmd_watcher,
     "watcher add|remove|list ... mail addresses told when certificates expire"},
    {"notify", cf_cmd_notify,
     "notify expiring ...         mail the watchers of expiring certificates"},
    {"keygen", cf_cmd_keygen,
     "keygen NAME ...             a CURVE key pair for a process of the fleet"},
    {NULL, NULL, NULL},
};

int cf_cli_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("certfleet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 1;
}

int cf_cli_usage(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("usage: certfleet ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

int cf_cli_usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("certfleet: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    return 2;
}

int cf_cli_option_error(int c, char **argv, const char *noun)
{
    const char *opt = optind > 0 ? argv[optind - 1] : "?";
    if (c == ':')
        return cf_cli_usage_error("option \"%s\" needs a value (see certfleet %s help)", opt, noun);
    if (optopt && optopt != '?' && strncmp(opt, "--", 2) != 0)
        return cf_cli_usage_error("unknown option \"-%c\" (see certfleet %s help)", optopt, noun);
    return cf_cli_usage_error("unknown option \"%s\" (see certfleet %s help)", opt, noun);
}

char *cf_cli_read_password(const char *path)
{
    cf_error_t err = {0};
    size_t len = 0;
    char *secret = cf_secret_file_read(path, &len, &err);
    if (!secret) {
        cf_cli_fail("%s", err.message);
    } else if (len == 0) {
        cf_cli_fail("password file \"%s\" is empty", path);
        free(secret);
        secret = NULL;
    }
    return secret;
}

int cf_cli_password_option(json_t *params, bool from_file, const char *arg, char **secret_p)
{
    if (json_object_get(params, "password"))
        return cf_cli_usage_error("give --password or --password-file, once");
    if (from_file && !(*secret_p = cf_cli_read_password(arg)))
        return 1;
    json_object_set_new(params, "password", json_string(from_file ? *secret_p : arg));
    return 0;
}

void cf_cli_free_secret(char *secret)
{
    if (secret)
        OPENSSL_cleanse(secret, strlen(secret));
    free(secret);
}

void cf_cli_print_json(const json_t *doc)
{
    char *text = json_dumps(doc, JSON_INDENT(2));
    puts(text ? text : "null");
    free(text);
}

int cf_cli_parse_int(const char *opt, const char *text, long long min, long long max,
                     long long *out)
{
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || v < min || v > max) {
        cf_cli_usage_error("option \"%s\" needs an integer from %lld to %lld, not \"%s\"", opt, min,
                           max, text);
        return -1;
    }
    *out = v;
    return 0;
}

static void s_help(FILE *out)
{
    fprintf(out, "usage: certfleet [--config FILE] [--json] COMMAND ...\n\ncommands:\n");
    for (const s_command_t *c = s_commands; c->noun; c++)
        fprintf(out, "  %s\n", c->help);
    fprintf(out,
            "\nThe config file is --config FILE, else $CERTFLEET_CONFIG; every setting can be\n"
            "overridden by CERTFLEET_<SECTION>_<KEY>.\n");
}

int main(int argc, char **argv)
{
    const char *config_path = NULL;
    cf_cli_t cli = {0};
    /* Global flags may stand anywhere; strip them so commands see only their own words. */
    int out = 1;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--json") == 0)
            cli.json = true;
        else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strncmp(argv[i], "--config=", 9) == 0)
            config_path = argv[i] + 9;
        else
            argv[out++] = argv[i];
    }
    argc = out;
    if (argc < 2 || strcmp(argv[1], "help") == 0 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        s_help(argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    char err[512] = "";
    cli.config = cf_config_load(config_path, err, sizeof err);
    if (!cli.config)
        return cf_cli_fail("%s", err);
    cf_log_configure(cli.config, "certfleet");
    int rc = -1;
    for (const s_command_t *c = s_commands; c->noun; c++) {
        if (strcmp(c->noun, argv[1]) == 0) {
            rc = c->run(&cli, argc - 2, argv + 2);
            break;
        }
    }
    if (rc == -1) {
        fprintf(stderr, "certfleet: unknown command \"%s\"\n", argv[1]);
        s_help(stderr);
        rc = 2;
    }
    cf_config_destroy(&cli.config);
    return rc;
}
