/* ocsp_handler: OCSP over HTTP (RFC 6960 appendix A, profiled by RFC 5019): POST of the DER
 * request or GET of its base64, answered with the pre-signed response of the certificate, or
 * with an unsigned error response (malformedRequest, unauthorized, tryLater). */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_log.h"
#include "ocspd.h"

/* The request as the client sent it: the POST body, or the GET path's base64 decoded. */
typedef struct {
    const char *name;         /* CA name from the URL, or NULL for /ocsp/ */
    size_t name_len;          /* its length */
    unsigned char *decoded;   /* GET: the decoded request (owned), else NULL */
    const unsigned char *der; /* the request bytes */
    size_t len;               /* their length */
} s_query_t;

/* Length of the first path segment of P (up to '/' or the end). */
static size_t s_segment(const char *p)
{
    const char *slash = strchr(p, '/');
    return slash ? (size_t)(slash - p) : strlen(p);
}

/* Decode a GET request's base64 (leading slashes skipped: a DER request's base64 starts with
 * 'M', never '/', and some clients join the URL and the request with a second slash). */
static unsigned char *s_decode(const char *b64, size_t max, size_t *len)
{
    while (*b64 == '/')
        b64++;
    if (*b64 == '\0')
        return NULL;
    return cf_ocsp_base64_decode(b64, strlen(b64), max, len);
}

/* What the CA name and request of this URL are. 0, or -1 for a malformed request, or 1 for an
 * unknown path (404). SET names the CAs. */
static int s_read_query(ocspd_t *srv, const ocspd_ca_set_t *set, bool post, const char *path,
                        const ocspd_request_t *req, s_query_t *q)
{
    /* PATH is "", "/", "/NAME", "/NAME/" or, for GET, "/NAME/<base64>" or "/<base64>". */
    const char *p = path[0] == '/' ? path + 1 : path;
    size_t seg = s_segment(p);
    if (post) {
        if (seg > 0) {
            q->name = p;
            q->name_len = seg;
            const char *rest = p + seg;
            if (rest[0] == '/')
                rest++;
            if (rest[0] != '\0')
                return 1;
        }
        q->der = req->body.data;
        q->len = req->body.len;
        return 0;
    }
    size_t max = srv->settings.max_request_bytes;
    if (seg > 0 && set && ocspd_ca_find_name(set, p, seg)) {
        q->name = p;
        q->name_len = seg;
        q->decoded = s_decode(p + seg, max, &q->len);
    } else {
        /* No CA of that name: the whole rest is the request of the nameless form, unless it
         * does not decode, when it is most likely a CA we do not know (unauthorized). */
        q->decoded = s_decode(p, max, &q->len);
        if (!q->decoded && seg > 0 && p[seg] == '/') {
            q->name = p;
            q->name_len = seg;
            q->decoded = s_decode(p + seg, max, &q->len);
        }
    }
    q->der = q->decoded;
    return q->decoded ? 0 : -1;
}

enum MHD_Result ocspd_ocsp_handle(ocspd_t *srv, struct MHD_Connection *conn, const char *method,
                                  const char *path, ocspd_request_t *req)
{
    bool post = strcmp(method, MHD_HTTP_METHOD_POST) == 0;
    if (!post && strcmp(method, MHD_HTTP_METHOD_GET) != 0)
        return ocspd_send_405(conn, "GET, POST");
    if (post) {
        /* RFC 6960 A.1 names application/ocsp-request; the body is parsed whatever the
         * header says, as it is checked strictly anyway (documented in docs/ocspd.md). */
        const char *type =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_TYPE);
        if (!type || strncasecmp(type, "application/ocsp-request", 24) != 0)
            cf_log_debug("OCSP POST with content type \"%s\"", type ? type : "");
    }

    enum MHD_Result result;
    s_query_t q = {0};
    ocspd_blob_t blob = {0};
    ocspd_store_t *store = ocspd_store_get(srv->store_key, srv->cfg);
    ocspd_ca_set_t *set = ocspd_cas_acquire(srv->cas, store);

    int read = s_read_query(srv, set, post, path, req, &q);
    if (read == 1) {
        result = ocspd_send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
        goto out;
    }
    cf_error_t err = {0};
    cf_ocsp_certid_t id;
    if (read != 0 || cf_ocsp_request_parse(q.der, q.len, &id, &err) != 0) {
        cf_log_debug("malformed OCSP request: %s", read != 0 ? "bad base64" : err.message);
        result = ocspd_send_ocsp_error(conn, MHD_HTTP_OK, CF_OCSP_MALFORMED_REQUEST);
        goto out;
    }
    if (!store || !set) {
        result = ocspd_send_ocsp_error(conn, MHD_HTTP_OK, CF_OCSP_TRY_LATER);
        goto out;
    }
    /* RFC 5019 section 2.1.1: SHA-1 CertIDs only; responses are pre-signed for those. */
    const ocspd_ca_t *ca = NULL;
    if (cf_ocsp_certid_is_sha1(&id)) {
        ca = q.name ? ocspd_ca_find_name(set, q.name, q.name_len)
                    : ocspd_ca_find_hashes(set, id.name_hash, id.key_hash);
        if (ca && (memcmp(ca->name_hash, id.name_hash, 20) != 0 ||
                   memcmp(ca->key_hash, id.key_hash, 20) != 0))
            ca = NULL; /* a certificate of another issuer asked at this CA's URL */
    }
    if (!ca) {
        cf_log_debug("OCSP request for serial %s: no such issuer here", id.serial);
        result = ocspd_send_ocsp_error(conn, MHD_HTTP_OK, CF_OCSP_UNAUTHORIZED);
        goto out;
    }
    int found = ocspd_store_ocsp(store, ca->id, id.serial, &blob);
    if (found == 1) {
        result = ocspd_send_document(conn, "application/ocsp-response", &blob);
    } else if (found == 0) {
        /* RFC 5019 section 2.2.3: no current response is "unauthorized", never "unknown". */
        cf_log_debug("no OCSP response for CA \"%s\" serial %s", ca->name, id.serial);
        result = ocspd_send_ocsp_error(conn, MHD_HTTP_OK, CF_OCSP_UNAUTHORIZED);
    } else {
        result = ocspd_send_ocsp_error(conn, MHD_HTTP_OK, CF_OCSP_TRY_LATER);
    }
out:
    ocspd_blob_clear(&blob);
    free(q.decoded);
    ocspd_cas_release(srv->cas, &set);
    return result;
}
