/* certfleet keygen: a CURVE key pair for one process of the fleet (docs/security.md).
 *
 *   certfleet keygen NAME [--dir DIR] [--role client|worker|client,worker]
 *                         [--job-types LIST] [--cas LIST] [--force]
 *
 * Writes DIR/NAME.key (the secret certificate, mode 0600, for the process's
 * [curve] secret_key_file) and DIR/NAME.pub (the public certificate with the grant as
 * metadata, for the broker's [curve] clients_dir), and prints the public key. */
#include <czmq.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cf_curve.h"
#include "cli.h"

int cf_cmd_keygen(cf_cli_t *cli, int argc, char **argv);

static int s_usage(void)
{
    return cf_cli_usage("keygen NAME [--dir DIR] [--role client|worker|client,worker] "
                        "[--job-types LIST] [--cas LIST] [--force]");
}

static void s_help(void)
{
    printf("usage: certfleet keygen NAME [--dir DIR] [--role client|worker|client,worker]\n"
           "                        [--job-types LIST] [--cas LIST] [--force]\n\n"
           "Writes DIR/NAME.key (secret, mode 0600: the process's [curve] secret_key_file)\n"
           "and DIR/NAME.pub (public, with the grant: copy it into the broker's [curve]\n"
           "clients_dir), and prints the public key.\n\n"
           "  --dir DIR          where to write (default: the current directory)\n"
           "  --role ROLE        client (default), worker, or client,worker\n"
           "  --job-types LIST   job types a client may submit: exact types, prefixes like\n"
           "                     cert.*, or * (broker.status and sys.ping are always allowed)\n"
           "  --cas LIST         CAs a client may use: names, * (all), or @acme (the CAs\n"
           "                     with ACME enabled)\n"
           "  --force            replace existing files\n");
}

static bool s_name_valid(const char *name)
{
    size_t len = strlen(name);
    if (len == 0 || len > 64 || name[0] == '.')
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        if (!ok)
            return false;
    }
    return true;
}

int cf_cmd_keygen(cf_cli_t *cli, int argc, char **argv)
{
    static const struct option opts[] = {
        {"dir", required_argument, NULL, 'd'},
        {"role", required_argument, NULL, 'r'},
        {"job-types", required_argument, NULL, 't'},
        {"cas", required_argument, NULL, 'c'},
        {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *dir = ".", *role = "client", *job_types = NULL, *cas = NULL;
    bool force = false;
    /* getopt_long wants the program name in argv[0]; ours holds the first word. */
    char *args[argc + 2];
    args[0] = "certfleet keygen";
    for (int i = 0; i < argc; i++)
        args[i + 1] = argv[i];
    args[argc + 1] = NULL;
    optind = 1;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc + 1, args, ":d:r:t:c:fh", opts, NULL)) != -1) {
        switch (c) {
        case 'd':
            dir = optarg;
            break;
        case 'r':
            role = optarg;
            break;
        case 't':
            job_types = optarg;
            break;
        case 'c':
            cas = optarg;
            break;
        case 'f':
            force = true;
            break;
        case 'h':
            s_help();
            return 0;
        default:
            return cf_cli_option_error(c, args, "keygen");
        }
    }
    if (optind == argc && argc == 1 && strcmp(argv[0], "help") == 0) {
        s_help();
        return 0;
    }
    if (argc + 1 - optind != 1)
        return s_usage();
    const char *name = args[optind];
    if (!s_name_valid(name))
        return cf_cli_usage_error("key name \"%s\" must be 1-64 letters, digits, '.', '_' or '-' "
                                  "and not start with '.'",
                                  name);
    /* Validate the grant as the broker will read it. */
    char err[256] = "";
    cf_grant_t *grant = cf_grant_new(name, role, job_types, cas, err, sizeof err);
    if (!grant)
        return cf_cli_usage_error("%s", err);
    cf_grant_destroy(&grant);

    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return cf_cli_fail("could not create directory \"%s\": %s", dir, strerror(errno));
    char secret_path[4096], public_path[4096];
    snprintf(secret_path, sizeof secret_path, "%s/%s.key", dir, name);
    snprintf(public_path, sizeof public_path, "%s/%s.pub", dir, name);
    struct stat st;
    if (!force && (stat(secret_path, &st) == 0 || stat(public_path, &st) == 0))
        return cf_cli_fail("key \"%s\" exists in \"%s\" (--force replaces it)", name, dir);

    zcert_t *cert = zcert_new();
    if (!cert)
        return cf_cli_fail("could not make a CURVE key pair (is libzmq built with CURVE?)");
    zcert_set_meta(cert, "name", "%s", name);
    zcert_set_meta(cert, "role", "%s", role);
    if (job_types)
        zcert_set_meta(cert, "job_types", "%s", job_types);
    if (cas)
        zcert_set_meta(cert, "cas", "%s", cas);
    int rc = 1;
    /* The secret file is made unreadable to others before anything is written to it. */
    mode_t old = umask(077);
    int saved = zcert_save_secret(cert, secret_path);
    umask(old);
    if (saved != 0 || chmod(secret_path, 0600) != 0) {
        rc = cf_cli_fail("could not write \"%s\": %s", secret_path, strerror(errno));
        goto out;
    }
    if (zcert_save_public(cert, public_path) != 0) {
        rc = cf_cli_fail("could not write \"%s\": %s", public_path, strerror(errno));
        goto out;
    }
    if (cli->json) {
        json_t *doc =
            json_pack("{s:s, s:s, s:s, s:s, s:s, s:s?, s:s?}", "name", name, "public_key",
                      zcert_public_txt(cert), "secret_key_file", secret_path, "public_key_file",
                      public_path, "role", role, "job_types", job_types, "cas", cas);
        cf_cli_print_json(doc);
        json_decref(doc);
    } else {
        printf("%s\n", zcert_public_txt(cert));
    }
    rc = 0;
out:
    zcert_destroy(&cert);
    return rc;
}
