/* certfleet x509 show FILE: a certificate, certificate signing request or CRL, PEM or DER
 * (detected), as readable text or, with --json, one JSON object whose names and extensions
 * have the shapes of django-ca's models. FILE "-" reads standard input; of a PEM file with
 * several blocks the first certificate, request or CRL is shown. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "x509_print.h"

int cf_cmd_x509(cf_cli_t *cli, int argc, char **argv)
{
    if (argc != 2 || strcmp(argv[0], "show") != 0)
        return cf_cli_usage("x509 show FILE   (a certificate, CSR or CRL, PEM or DER; - for "
                            "standard input)");
    size_t len = 0;
    unsigned char *data = cf_cli_read_file(argv[1], &len);
    if (!data)
        return cf_cli_fail("could not read \"%s\": %m", argv[1]);
    cf_x509_object_t obj = {0};
    int rc = cf_x509_object_load(data, len, &obj);
    free(data);
    if (rc != 0)
        return cf_cli_fail("\"%s\" holds no certificate, certificate signing request or CRL "
                           "in PEM or DER",
                           argv[1]);
    json_t *doc = cf_x509_describe(&obj);
    if (cli->json)
        cf_cli_print_json(doc);
    else
        cf_x509_print_text(doc);
    json_decref(doc);
    cf_x509_object_clear(&obj);
    return 0;
}
