/* Shared by the commands that read, show and write X.509 objects (x509, ca, cert): files in,
 * a certificate, CSR or CRL described as `x509 show` does (JSON with django-ca's models, or
 * text), serials as users type and read them, certificates out as PEM or DER. */
#ifndef CF_X509_PRINT_H
#define CF_X509_PRINT_H

#include <jansson.h>
#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>

typedef enum { CF_X509_CERT, CF_X509_CSR, CF_X509_CRL } cf_x509_kind_t;

/* One decoded object: exactly one of the pointers is set, as KIND says. */
typedef struct {
    cf_x509_kind_t kind; /* what the file holds */
    X509 *cert;          /* set for CF_X509_CERT */
    X509_REQ *req;       /* set for CF_X509_CSR */
    X509_CRL *crl;       /* set for CF_X509_CRL */
} cf_x509_object_t;

/* The whole file PATH ("-": standard input), at most 256 MiB (caller frees); NULL with errno. */
unsigned char *cf_cli_read_file(const char *path, size_t *len);

/* Decode the first certificate, CSR or CRL of PEM text, or a DER object (detected). 0 or -1. */
int cf_x509_object_load(const unsigned char *data, size_t len, cf_x509_object_t *obj);
/* Free what OBJ holds and zero it. */
void cf_x509_object_clear(cf_x509_object_t *obj);

/* The document `x509 show --json` prints (new reference): names and extensions as models,
 * fingerprints, public key; a model that cannot be made is null with its reason in "errors". */
json_t *cf_x509_describe(const cf_x509_object_t *obj);
/* The same for a certificate. */
json_t *cf_x509_describe_cert(X509 *cert);
/* Print a document of cf_x509_describe as `x509 show` does. */
void cf_x509_print_text(const json_t *doc);

/* "0A:1B:..." of DATA (caller frees). */
char *cf_x509_hex_colons(const unsigned char *data, size_t len);
/* A serial as typed ("0a:1b", "A1B", any case, colons optional) in the stored form: upper-case
 * hex without colons or leading zero bytes (cf_serial_hex). 0, or -1 when it is not hex. */
int cf_cli_serial_normalize(const char *in, char *out, size_t outlen);
/* A stored serial with a colon between every two digits, as django-ca shows it (caller frees). */
char *cf_cli_serial_colons(const char *hex);

/* Write CERTS (N of them) as PEM, or one certificate as DER, to PATH (NULL or "-": standard
 * output). 0, or -1 with errno. */
int cf_cli_write_certs(X509 *const *certs, int n, bool der, const char *path);
/* CERTS as a JSON array of PEM strings, or of base64 DER when DER (new reference). */
json_t *cf_cli_certs_json(X509 *const *certs, int n, bool der);

/* The extension models of an option's value OPT TEXT: a JSON model or an array of them, each
 * validated and normalised by the data model (new reference); NULL after printing why. */
json_t *cf_cli_extensions_arg(const char *opt, const char *text);
/* "PEM" or "DER" (any case) into *DER; 0, or -1 after printing why (a usage error). */
int cf_cli_parse_format(const char *text, bool *der);

#endif
