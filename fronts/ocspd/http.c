/* http: the libmicrohttpd daemon (a pool of threads, each polling its connections with epoll,
 * so a client that sends nothing or sends slowly holds only its own connection until the
 * timeout), the per-request state, routing by path, and the reply helpers with RFC 5019
 * section 6 caching headers. */
#include <netdb.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "cf_front.h"
#include "cf_log.h"
#include "cf_metrics.h"
#include "ocspd.h"

/* Past max_request_bytes the body is read and dropped (so that the 413 reaches a client
 * that does not wait for "100 Continue"), but only up to this much more: then we hang up. */
/* How long a cache may keep a CA certificate (it changes only when the CA is renewed). */
#define S_TIMELESS_MAX_AGE 3600

/* ---- replies --------------------------------------------------------------------------- */

static void s_http_date(char *buf, size_t len, int64_t t)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(buf, len, "%a, %d %b %Y %H:%M:%S GMT", &tm);
}

/* True when an If-None-Match header names ETAG (or is "*"). Weak tags compare as strong:
 * the body is the same bytes either way. */
static bool s_etag_matches(struct MHD_Connection *conn, const char *etag)
{
    const char *inm =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_IF_NONE_MATCH);
    if (!inm)
        return false;
    if (strcmp(inm, "*") == 0)
        return true;
    return strstr(inm, etag) != NULL;
}

static enum MHD_Result s_queue(struct MHD_Connection *conn, unsigned int status,
                               struct MHD_Response *resp)
{
    if (!resp)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

enum MHD_Result ocspd_send_document(struct MHD_Connection *conn, const char *content_type,
                                    ocspd_blob_t *body)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char etag[2 * EVP_MAX_MD_SIZE + 3] = "\"";
    if (!EVP_Digest(body->data, body->len, md, &mdlen, EVP_sha1(), NULL)) {
        ocspd_blob_clear(body);
        return ocspd_send_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal error\n");
    }
    for (unsigned int i = 0; i < mdlen; i++)
        snprintf(etag + 1 + 2 * i, 3, "%02x", md[i]);
    strcat(etag, "\"");

    /* RFC 5019 section 6.2: the document is good until its nextUpdate, the same for every
     * client; must-revalidate so that no cache serves it past that. */
    int64_t now = (int64_t)time(NULL);
    int64_t max_age = body->next_update > now ? body->next_update - now : 0;
    char last_modified[64], expires[64], cache_control[128];
    s_http_date(last_modified, sizeof last_modified, body->this_update);
    s_http_date(expires, sizeof expires, body->next_update);
    snprintf(cache_control, sizeof cache_control,
             "max-age=%lld, public, no-transform, must-revalidate", (long long)max_age);
    /* A CA certificate has no update times: it changes only when the CA is renewed. */
    bool timeless = body->this_update == 0 && body->next_update == 0;
    if (timeless)
        snprintf(cache_control, sizeof cache_control, "max-age=%d, public, no-transform",
                 S_TIMELESS_MAX_AGE);

    bool not_modified = s_etag_matches(conn, etag);
    struct MHD_Response *resp;
    if (not_modified) {
        resp = MHD_create_response_from_buffer(0, NULL, MHD_RESPMEM_PERSISTENT);
    } else {
        resp = MHD_create_response_from_buffer(body->len, body->data, MHD_RESPMEM_MUST_FREE);
        if (resp)
            body->data = NULL; /* MHD frees it now */
    }
    ocspd_blob_clear(body);
    if (!resp)
        return MHD_NO;
    if (!not_modified)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
    if (!timeless) {
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LAST_MODIFIED, last_modified);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_EXPIRES, expires);
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, cache_control);
    return s_queue(conn, not_modified ? MHD_HTTP_NOT_MODIFIED : MHD_HTTP_OK, resp);
}

enum MHD_Result ocspd_send_ocsp_error(struct MHD_Connection *conn, unsigned int http_status,
                                      cf_ocsp_error_status_t status)
{
    size_t len = 0;
    const unsigned char *der = cf_ocsp_error_response(status, &len);
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(len, (void *)der, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/ocsp-response");
    /* An error is about this moment (or this client): a cache must not replay it. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return s_queue(conn, http_status, resp);
}

enum MHD_Result ocspd_send_text(struct MHD_Connection *conn, unsigned int http_status,
                                const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_MUST_COPY);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return s_queue(conn, http_status, resp);
}

enum MHD_Result ocspd_send_405(struct MHD_Connection *conn, const char *allow)
{
    static const char text[] = "method not allowed\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof text - 1, (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    return s_queue(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
}

/* ---- requests -------------------------------------------------------------------------- */

/* MHD's per-request pointer: the request, and when its headers came (for metrics). */
typedef struct {
    ocspd_request_t req; /* first: the pointer handlers get is this one's */
    uint64_t started_ns; /* cf_metrics_clock_ns at the headers */
} s_state_t;

/* Count a reply once it is queued (certfleet_http_requests_total and its duration). */
static enum MHD_Result s_counted(struct MHD_Connection *conn, ocspd_request_t *req,
                                 enum MHD_Result rc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (rc == MHD_YES && ci)
        cf_metrics_http_request("ocspd", ci->http_status,
                                cf_metrics_since(((s_state_t *)req)->started_ns));
    return rc;
}

static bool s_is(const char *method, const char *name)
{
    return strcmp(method, name) == 0;
}

/* Route one complete request. */
static enum MHD_Result s_dispatch(ocspd_t *srv, struct MHD_Connection *conn, const char *url,
                                  const char *method, ocspd_request_t *req)
{
    bool get = s_is(method, MHD_HTTP_METHOD_GET) || s_is(method, MHD_HTTP_METHOD_HEAD);
    if (strcmp(url, "/health") == 0) {
        if (!get)
            return ocspd_send_405(conn, "GET, HEAD");
        ocspd_store_t *store = ocspd_store_get(srv->store_key, srv->cfg);
        if (store && ocspd_store_healthy(store))
            return ocspd_send_text(conn, MHD_HTTP_OK, "ok\n");
        return ocspd_send_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable\n");
    }
    if (strncmp(url, "/ocsp", 5) == 0 && (url[5] == '\0' || url[5] == '/'))
        return ocspd_ocsp_handle(srv, conn, method, url + 5, req);
    if (strncmp(url, "/ca/", 4) == 0) {
        if (!get)
            return ocspd_send_405(conn, "GET, HEAD");
        return ocspd_ca_cert_handle(srv, conn, url + 4);
    }
    if (strncmp(url, "/crl/", 5) == 0) {
        if (!get)
            return ocspd_send_405(conn, "GET, HEAD");
        return ocspd_crl_handle(srv, conn, url + 5);
    }
    return ocspd_send_text(conn, MHD_HTTP_NOT_FOUND, "not found\n");
}

/* Append a chunk of the body, or count it as dropped once past the limit. -1 to hang up. */
static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    ocspd_t *srv = cls;
    ocspd_request_t *req = *con_cls;
    if (!req) {
        /* First call, headers only. A body announced too large is refused before it is
         * read: MHD then answers without "100 Continue" and closes the connection. */
        s_state_t *st = calloc(1, sizeof *st);
        if (!st)
            return MHD_NO;
        st->started_ns = cf_metrics_clock_ns();
        req = &st->req;
        *con_cls = req;
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > srv->settings.max_request_bytes) {
            req->body.too_large = true;
            req->answered = true;
            cf_log_debug("%s %s: body of %s bytes refused", method, url, length);
            return s_counted(
                conn, req,
                ocspd_send_ocsp_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, CF_OCSP_MALFORMED_REQUEST));
        }
        return MHD_YES;
    }
    if (req->answered) {
        /* The 413 is queued already: whatever MHD still hands us is dropped. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (cf_front_body_take(&req->body, upload_data, *upload_data_size,
                               srv->settings.max_request_bytes) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (req->body.too_large)
        return s_counted(
            conn, req,
            ocspd_send_ocsp_error(conn, MHD_HTTP_CONTENT_TOO_LARGE, CF_OCSP_MALFORMED_REQUEST));
    cf_log_debug("%s %s", method, url);
    return s_counted(conn, req, s_dispatch(srv, conn, url, method, req));
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    ocspd_request_t *req = *con_cls;
    if (!req)
        return;
    cf_front_body_free(&req->body);
    free(req);
    *con_cls = NULL;
}

int ocspd_http_start(ocspd_t *srv)
{
    const ocspd_settings_t *s = &srv->settings;
    const cf_front_daemon_t d = {.listen = s->listen,
                                 .threads = s->threads,
                                 .connection_timeout_s = s->connection_timeout_s,
                                 .connection_memory = s->connection_memory,
                                 .max_connections = s->max_connections,
                                 .per_ip_connection_limit = s->per_ip_connection_limit};
    srv->mhd = cf_front_daemon_start(&d, s_access, s_completed, srv);
    return srv->mhd ? 0 : -1;
}

void ocspd_http_stop(ocspd_t *srv)
{
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
}
