/* distribution: CA certificates and CRLs at the URLs that certificates carry
 * (cf_ca_url_issuer, cf_ca_url_crl, cf_ca_url_crl_ca), as DER or, with ?format=pem, PEM. */
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_log.h"
#include "ocspd.h"

#define S_PEM_TYPE "application/x-pem-file"

/* True when NAME (LEN bytes) ends with SUFFIX. */
static bool s_ends(const char *name, size_t len, const char *suffix)
{
    size_t n = strlen(suffix);
    return len > n && memcmp(name + len - n, suffix, n) == 0;
}

/* Replace BLOB's DER by its PEM with LABEL. 0 or -1. */
static int s_to_pem(ocspd_blob_t *blob, const char *label)
{
    size_t lines = (blob->len + 47) / 48;
    size_t cap = 2 * (strlen(label) + 32) + lines * 66 + 1;
    unsigned char *pem = malloc(cap);
    if (!pem)
        return -1;
    size_t n = (size_t)snprintf((char *)pem, cap, "-----BEGIN %s-----\n", label);
    for (size_t off = 0; off < blob->len; off += 48) {
        size_t chunk = blob->len - off < 48 ? blob->len - off : 48;
        n += (size_t)EVP_EncodeBlock(pem + n, blob->data + off, (int)chunk);
        pem[n++] = '\n';
    }
    n += (size_t)snprintf((char *)pem + n, cap - n, "-----END %s-----\n", label);
    free(blob->data);
    blob->data = pem;
    blob->len = n;
    return 0;
}

/* The ?format= of the URL: 0 DER (the default), 1 PEM, -1 neither. */
static int s_format(struct MHD_Connection *conn)
{
    const char *format = MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "format");
    if (!format || strcasecmp(format, "der") == 0)
        return 0;
    if (strcasecmp(format, "pem") == 0)
        return 1;
    return -1;
}

/* Send BLOB as DER of DER_TYPE, or as PEM with LABEL when PEM. */
static enum MHD_Result s_send(struct MHD_Connection *conn, ocspd_blob_t *blob, bool pem,
                              const char *der_type, const char *label)
{
    if (pem && s_to_pem(blob, label) != 0) {
        ocspd_blob_clear(blob);
        return ocspd_send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    }
    return ocspd_send_document(conn, pem ? S_PEM_TYPE : der_type, blob);
}

enum MHD_Result ocspd_ca_cert_handle(ocspd_t *srv, struct MHD_Connection *conn, const char *path)
{
    /* NAME.der, NAME.crt (DER) or NAME.pem. */
    size_t len = strlen(path);
    int format = s_format(conn);
    bool pem = s_ends(path, len, ".pem") || format == 1;
    if (!s_ends(path, len, ".der") && !s_ends(path, len, ".crt") && !s_ends(path, len, ".pem"))
        return ocspd_send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    if (format < 0)
        return ocspd_send_text(conn, MHD_HTTP_BAD_REQUEST, "format is der or pem\n");

    ocspd_store_t *store = ocspd_store_get(srv->store_key, srv->cfg);
    ocspd_ca_set_t *set = ocspd_cas_acquire(srv->cas, store);
    if (!set)
        return ocspd_send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable\n");
    const ocspd_ca_t *ca = ocspd_ca_find_name(set, path, len - 4);
    ocspd_blob_t blob = {0};
    if (ca && (blob.data = malloc(ca->der_len)) != NULL) {
        memcpy(blob.data, ca->der, ca->der_len);
        blob.len = ca->der_len;
    }
    ocspd_cas_release(srv->cas, &set);
    if (!ca)
        return ocspd_send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    if (!blob.data)
        return ocspd_send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    return s_send(conn, &blob, pem, "application/pkix-cert", "CERTIFICATE");
}

/* A shard number: decimal digits only, below 4096 (the schema's limit). -1 otherwise. */
static int s_shard(const char *p, size_t len)
{
    if (len == 0 || len > 4)
        return -1;
    int shard = 0;
    for (size_t i = 0; i < len; i++) {
        if (p[i] < '0' || p[i] > '9')
            return -1;
        shard = shard * 10 + (p[i] - '0');
    }
    return shard < 4096 ? shard : -1;
}

/* Which CRL PATH (after "/crl/") names: the CA name (in NAME, LEN), scope and shard.
 *   NAME.crl              user scope, shard 0 (what a non-sharded CA's certificates carry)
 *   NAME/K.crl            user scope, shard K
 *   NAME/ca.crl           ca scope
 *   NAME/user.crl         user scope, shard 0
 *   NAME/all.crl          all scope, shard 0;   NAME/all/K.crl   all scope, shard K
 *   NAME/attribute.crl    attribute scope
 * 0, or -1 when PATH is none of these. */
static int s_crl_path(const char *path, const char **name, size_t *name_len, cf_scope_t *scope,
                      int *shard)
{
    size_t len = strlen(path);
    if (!s_ends(path, len, ".crl"))
        return -1;
    len -= 4; /* path[0..len) without ".crl" */
    const char *slash = memchr(path, '/', len);
    *name = path;
    *shard = 0;
    *scope = CF_SCOPE_USER;
    if (!slash) {
        *name_len = len;
        return 0;
    }
    *name_len = (size_t)(slash - path);
    const char *rest = slash + 1;
    size_t rest_len = len - *name_len - 1;
    if (*name_len == 0 || rest_len == 0)
        return -1;
    if (rest_len == 2 && memcmp(rest, "ca", 2) == 0) {
        *scope = CF_SCOPE_CA;
        return 0;
    }
    if (rest_len == 4 && memcmp(rest, "user", 4) == 0)
        return 0;
    if (rest_len == 9 && memcmp(rest, "attribute", 9) == 0) {
        *scope = CF_SCOPE_ATTRIBUTE;
        return 0;
    }
    if (rest_len >= 3 && memcmp(rest, "all", 3) == 0) {
        *scope = CF_SCOPE_ALL;
        if (rest_len == 3)
            return 0;
        if (rest[3] != '/')
            return -1;
        *shard = s_shard(rest + 4, rest_len - 4);
        return *shard < 0 ? -1 : 0;
    }
    *shard = s_shard(rest, rest_len);
    return *shard < 0 ? -1 : 0;
}

enum MHD_Result ocspd_crl_handle(ocspd_t *srv, struct MHD_Connection *conn, const char *path)
{
    const char *name;
    size_t name_len;
    cf_scope_t scope;
    int shard;
    if (s_crl_path(path, &name, &name_len, &scope, &shard) != 0)
        return ocspd_send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    int format = s_format(conn);
    if (format < 0)
        return ocspd_send_text(conn, MHD_HTTP_BAD_REQUEST, "format is der or pem\n");

    ocspd_store_t *store = ocspd_store_get(srv->store_key, srv->cfg);
    ocspd_ca_set_t *set = ocspd_cas_acquire(srv->cas, store);
    if (!set)
        return ocspd_send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable\n");
    const ocspd_ca_t *ca = ocspd_ca_find_name(set, name, name_len);
    int64_t ca_id = ca ? ca->id : 0;
    ocspd_cas_release(srv->cas, &set);
    if (!ca)
        return ocspd_send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");

    ocspd_blob_t blob = {0};
    int found =
        ocspd_store_crl(store, ca_id, scope, shard, srv->settings.crl_cache_max_bytes, &blob);
    if (found == 0)
        return ocspd_send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
    if (found < 0)
        return ocspd_send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable\n");
    return s_send(conn, &blob, format == 1, "application/pkix-crl", "X509 CRL");
}
