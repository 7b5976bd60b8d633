/* http: the libmicrohttpd daemon (a pool of threads, each polling its connections with epoll),
 * request bodies and their limit, routing of /acme/NAME/... to the handlers with the JWS
 * checks in front of every POST, and the headers every reply carries: a fresh Replay-Nonce,
 * Cache-Control: no-store and the Link to the directory (RFC 8555 6.5, 7.1). */
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "acme.h"
#include "cf_front.h"
#include "cf_log.h"
#include "cf_metrics.h"

/* Past max_body_bytes the body is read and dropped (so that the 413 reaches a client that
 * does not wait for "100 Continue"), but only up to this much more: then we hang up. */

/* The state of one HTTP request (MHD's per-request pointer). */
typedef struct {
    cf_front_body_t body; /* the body, bounded by max_body_bytes */
    bool answered;        /* a reply was queued before the body was read */
    uint64_t started_ns;  /* cf_metrics_clock_ns at the headers */
    acme_req_t req;       /* the request being answered; lives on while it is parked */
} s_request_t;

/* One route under /acme/NAME/: KIND, then a slug when SLUG, then SUB when not NULL. */
typedef struct {
    const char *kind;             /* first path segment after the CA name */
    bool slug;                    /* a slug follows */
    const char *sub;              /* a last segment after the slug, or NULL */
    bool post;                    /* JWS POST (else GET/HEAD) */
    acme_auth_t auth;             /* jwk/kid rule of a POST */
    void (*handle)(acme_req_t *); /* the handler */
} s_route_t;

static const s_route_t s_routes[] = {
    {"directory", false, NULL, false, ACME_AUTH_KID, acme_directory},
    {"new-nonce", false, NULL, false, ACME_AUTH_KID, acme_new_nonce},
    {"new-account", false, NULL, true, ACME_AUTH_JWK, acme_new_account},
    {"new-order", false, NULL, true, ACME_AUTH_KID, acme_new_order},
    {"revoke-cert", false, NULL, true, ACME_AUTH_EITHER, acme_revoke},
    {"key-change", false, NULL, true, ACME_AUTH_KID, acme_key_change},
    {"acct", true, NULL, true, ACME_AUTH_KID, acme_account_post},
    {"acct", true, "orders", true, ACME_AUTH_KID, acme_account_orders},
    {"order", true, NULL, true, ACME_AUTH_KID, acme_order_post},
    {"order", true, "finalize", true, ACME_AUTH_KID, acme_finalize},
    {"authz", true, NULL, true, ACME_AUTH_KID, acme_authz_post},
    {"chall", true, NULL, true, ACME_AUTH_KID, acme_challenge_post},
    {"cert", true, NULL, true, ACME_AUTH_KID, acme_certificate_post},
    {NULL, false, NULL, false, ACME_AUTH_KID, NULL},
};

/* ---- replies --------------------------------------------------------------------------- */

static void s_reply_set(acme_req_t *req, unsigned int status, const char *content_type, char *body,
                        size_t len)
{
    free(req->reply.body);
    req->reply.body = body;
    req->reply.len = len;
    req->reply.status = status;
    req->reply.content_type = content_type;
}

void acme_reply_bytes(acme_req_t *req, unsigned int status, const char *content_type,
                      const void *body, size_t len)
{
    char *copy = malloc(len ? len : 1);
    if (!copy) {
        s_reply_set(req, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, NULL, 0);
        return;
    }
    if (len)
        memcpy(copy, body, len);
    s_reply_set(req, status, content_type, copy, len);
}

void acme_reply_json(acme_req_t *req, unsigned int status, json_t *doc)
{
    char *text = doc ? json_dumps(doc, JSON_COMPACT) : NULL;
    json_decref(doc);
    if (!text) {
        cf_log_error("could not render a JSON reply (out of memory)");
        acme_internal(req);
        return;
    }
    s_reply_set(req, status, "application/json", text, strlen(text));
}

void acme_reply_empty(acme_req_t *req, unsigned int status)
{
    s_reply_set(req, status, NULL, NULL, 0);
}

void acme_object_url(const acme_req_t *req, const char *kind, const char *slug, const char *sub,
                     char *out)
{
    snprintf(out, ACME_URL_MAX, "%s/%s/%s%s%s", req->ca_url, kind, slug, sub ? "/" : "",
             sub ? sub : "");
}

void acme_time_text(int64_t t, char *out, size_t len)
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

json_t *acme_time_json(int64_t t)
{
    char text[32];
    acme_time_text(t, text, sizeof text);
    return json_string(text);
}

void acme_req_clear(acme_req_t *req)
{
    cf_jws_destroy(&req->jws);
    EVP_PKEY_free(req->key);
    req->key = NULL;
    acme_account_clear(&req->account);
    free(req->reply.body);
    req->reply.body = NULL;
}

static enum MHD_Result s_send(acme_req_t *req)
{
    acme_reply_t *r = &req->reply;
    if (r->status == 0)
        acme_internal(req); /* a handler that set nothing is a bug: answer anyway */
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(r->len, r->body, MHD_RESPMEM_MUST_FREE);
    if (!resp)
        return MHD_NO;
    r->body = NULL; /* MHD frees it now */
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    /* RFC 8555 7.2: nonces and every ACME object are per client and per moment. */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    /* Best effort: without Redis the reply still goes out, and the client's next request
     * gets badNonce and retries. */
    if (r->nonce[0] || (req->store && acme_nonce_new(req->store, req->srv->settings.nonce_ttl_s,
                                                     r->nonce, sizeof r->nonce) == 0))
        MHD_add_response_header(resp, "Replay-Nonce", r->nonce);
    char link[ACME_URL_MAX + 32];
    if (req->ca_url[0]) {
        snprintf(link, sizeof link, "<%s/directory>;rel=\"index\"", req->ca_url);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LINK, link);
    }
    if (r->link_up[0]) {
        snprintf(link, sizeof link, "<%s>;rel=\"up\"", r->link_up);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LINK, link);
    }
    if (r->location[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, r->location);
    if (r->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, r->allow);
    if (r->retry_after > 0) {
        char secs[16];
        snprintf(secs, sizeof secs, "%d", r->retry_after);
        MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, secs);
    }
    enum MHD_Result rc = MHD_queue_response(req->conn, r->status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* ---- routing --------------------------------------------------------------------------- */

/* Split PATH (after "/acme/") into the CA name, the kind, the slug and the sub-resource.
 * The route, or NULL when no route has this shape. */
static const s_route_t *s_route(const char *path, char *name, size_t namelen, char *slug)
{
    char segs[4][ACME_SLUG_MAX + 1];
    int n = 0;
    const char *p = path;
    while (*p && n < 4) {
        size_t len = strcspn(p, "/");
        if (len == 0 || len > ACME_SLUG_MAX)
            return NULL;
        memcpy(segs[n], p, len);
        segs[n][len] = '\0';
        n++;
        p += len;
        if (*p == '/') {
            p++;
            if (*p == '\0')
                return NULL; /* a trailing slash names nothing */
        }
    }
    if (*p || n < 2 || strlen(segs[0]) >= namelen)
        return NULL;
    snprintf(name, namelen, "%s", segs[0]);
    for (const s_route_t *r = s_routes; r->kind; r++) {
        int want = 2 + (r->slug ? 1 : 0) + (r->sub ? 1 : 0);
        if (n != want || strcmp(segs[1], r->kind) != 0)
            continue;
        if (r->sub && strcmp(segs[3], r->sub) != 0)
            continue;
        if (r->slug) {
            if (!acme_slug_valid(segs[2]))
                return NULL;
            snprintf(slug, ACME_SLUG_MAX, "%s", segs[2]);
        }
        return r;
    }
    return NULL;
}

static bool s_is(const char *method, const char *name)
{
    return strcmp(method, name) == 0;
}

/* Answer one complete request into REQ->reply. */
static void s_dispatch(acme_req_t *req, const char *path)
{
    acme_t *srv = req->srv;
    if (strncmp(path, "/acme/", 6) != 0) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND, "no such resource");
        return;
    }
    char name[80] = "";
    const s_route_t *route = s_route(path + 6, name, sizeof name, req->slug);
    if (!route) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND, "no such resource");
        return;
    }
    int found = acme_ca_load(req->store, name, &req->ca);
    if (found < 0) {
        acme_internal(req);
        return;
    }
    if (found == 0) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND,
                     "no ACME directory for certificate authority \"%s\"", name);
        return;
    }
    snprintf(req->ca_url, sizeof req->ca_url, "%s/acme/%s", srv->settings.base_url, req->ca.name);
    bool get = s_is(req->method, MHD_HTTP_METHOD_GET) || s_is(req->method, MHD_HTTP_METHOD_HEAD);
    if (!route->post) {
        if (!get) {
            acme_problem(req, "malformed", MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
            snprintf(req->reply.allow, sizeof req->reply.allow, "GET, HEAD");
            return;
        }
        route->handle(req);
        return;
    }
    if (!s_is(req->method, MHD_HTTP_METHOD_POST)) {
        /* RFC 8555 6.3: every resource but the directory and newNonce is POST only. */
        acme_problem(req, "malformed", MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed");
        snprintf(req->reply.allow, sizeof req->reply.allow, "POST");
        return;
    }
    if (acme_jws_check(req, route->auth) != 0)
        return;
    route->handle(req);
}

static enum MHD_Result s_text(struct MHD_Connection *conn, unsigned int status, const char *text)
{
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(text), (void *)text, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

/* Send the reply REQ holds and free what it owns. */
static enum MHD_Result s_finish(acme_req_t *req)
{
    cf_log_debug("%s %s: %u", req->method, req->url, req->reply.status);
    enum MHD_Result rc = s_send(req);
    acme_req_clear(req);
    return rc;
}

/* Answer a complete request (or a refused one: TOO_LARGE). A handler that parked the request
 * (park.c) leaves it unanswered: MHD calls s_access again when it is resumed. */
static enum MHD_Result s_answer(acme_t *srv, struct MHD_Connection *conn, const char *url,
                                const char *method, s_request_t *state, bool too_large)
{
    acme_store_t *store = acme_store_get(srv->store_key, srv->cfg);
    if (strcmp(url, "/health") == 0) {
        if (store && acme_store_healthy(store))
            return s_text(conn, MHD_HTTP_OK, "ok\n");
        return s_text(conn, MHD_HTTP_SERVICE_UNAVAILABLE, "unavailable\n");
    }
    acme_req_t *req = &state->req;
    *req = (acme_req_t){.srv = srv, .conn = conn, .store = store, .method = method};
    snprintf(req->url, sizeof req->url, "%s%s", srv->settings.base_url, url);
    if (!store) {
        acme_internal(req);
    } else if (too_large) {
        acme_problem(req, "malformed", MHD_HTTP_CONTENT_TOO_LARGE,
                     "request body is larger than %zu bytes", srv->settings.max_body_bytes);
    } else {
        req->body = (const char *)state->body.data;
        req->body_len = state->body.len;
        s_dispatch(req, url);
    }
    if (req->parked)
        return MHD_YES;
    return s_finish(req);
}

/* Count a reply once it is queued (certfleet_http_requests_total and its duration). */
static enum MHD_Result s_counted(struct MHD_Connection *conn, const s_request_t *state,
                                 enum MHD_Result rc)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_HTTP_STATUS);
    if (rc == MHD_YES && ci)
        cf_metrics_http_request("acme", ci->http_status, cf_metrics_since(state->started_ns));
    return rc;
}

/* Append a chunk of the body, or count it as dropped once past the limit. -1 to hang up. */
static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    acme_t *srv = cls;
    s_request_t *state = *con_cls;
    if (!state) {
        /* First call, headers only. A body announced too large is refused before it is
         * read: MHD then answers without "100 Continue" and closes the connection. */
        state = calloc(1, sizeof *state);
        if (!state)
            return MHD_NO;
        *con_cls = state;
        state->started_ns = cf_metrics_clock_ns();
        const char *length =
            MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (length && strtoull(length, NULL, 10) > srv->settings.max_body_bytes) {
            state->body.too_large = true;
            state->answered = true;
            return s_counted(conn, state, s_answer(srv, conn, url, method, state, true));
        }
        return MHD_YES;
    }
    if (state->req.parked) {
        /* Resumed (park.c): the job answered or the wait is over; finish the request. */
        acme_park_finish(&state->req);
        return s_counted(conn, state, s_finish(&state->req));
    }
    if (state->answered) {
        /* The 413 is queued already: whatever MHD still hands us is dropped. */
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (*upload_data_size > 0) {
        if (cf_front_body_take(&state->body, upload_data, *upload_data_size,
                               srv->settings.max_body_bytes) != 0)
            return MHD_NO;
        *upload_data_size = 0;
        return MHD_YES;
    }
    enum MHD_Result rc = s_answer(srv, conn, url, method, state, state->body.too_large);
    return state->req.parked ? rc : s_counted(conn, state, rc);
}

static void s_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                        enum MHD_RequestTerminationCode toe)
{
    s_request_t *state = *con_cls;
    if (!state)
        return;
    if (state->req.parked) {
        /* Cannot happen (a suspended connection ends only after its resume, park.c); if it
         * did, the parking thread still points at the request: keep it rather than free it. */
        cf_log_error("a parked ACME request ended before its resume; its memory is kept");
        *con_cls = NULL;
        return;
    }
    cf_front_body_free(&state->body);
    free(state);
    *con_cls = NULL;
}

int acme_http_start(acme_t *srv)
{
    const acme_settings_t *s = &srv->settings;
    const cf_front_daemon_t d = {.listen = s->listen,
                                 .threads = s->threads,
                                 .connection_timeout_s = s->connection_timeout_s,
                                 .connection_memory = s->connection_memory,
                                 .max_connections = s->max_connections,
                                 .suspend_resume = true};
    srv->mhd = cf_front_daemon_start(&d, s_access, s_completed, srv);
    return srv->mhd ? 0 : -1;
}

void acme_http_stop(acme_t *srv)
{
    /* Parked requests first: MHD must not stop with a suspended connection. */
    acme_park_stop(srv->park);
    if (srv->mhd)
        MHD_stop_daemon(srv->mhd);
    srv->mhd = NULL;
}
