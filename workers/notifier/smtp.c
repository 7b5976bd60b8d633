/* Sending mail over SMTP with libcurl (smtp:// with STARTTLS as configured, or smtps://).
 * The transfer runs on a multi handle in slices of 100 ms so that the worker keeps
 * heartbeating the broker while a slow server answers; one easy handle per job keeps its
 * connection open from one mail to the next. */
#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"
#include "notify.h"

struct _notify_smtp_t {
    const notify_smtp_config_t *config; /* settings (borrowed) */
    cf_worker_t *worker;                /* keepalives while waiting */
    CURLM *multi;                       /* drives the transfer */
    CURL *easy;                         /* one per session: its connection is reused */
};

/* The message being uploaded. */
typedef struct {
    const char *data; /* the message */
    size_t len;       /* its length */
    size_t off;       /* bytes handed to libcurl so far */
} s_upload_t;

static size_t s_read(char *out, size_t size, size_t n, void *arg)
{
    s_upload_t *u = arg;
    size_t room = size * n, left = u->len - u->off;
    size_t take = left < room ? left : room;
    memcpy(out, u->data + u->off, take);
    u->off += take;
    return take;
}

notify_smtp_t *notify_smtp_new(const notify_smtp_config_t *config, cf_worker_t *worker)
{
    notify_smtp_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->worker = worker;
    self->multi = curl_multi_init();
    self->easy = curl_easy_init();
    if (!self->multi || !self->easy)
        notify_smtp_destroy(&self);
    return self;
}

void notify_smtp_destroy(notify_smtp_t **self_p)
{
    notify_smtp_t *self = *self_p;
    if (!self)
        return;
    if (self->easy)
        curl_easy_cleanup(self->easy);
    if (self->multi)
        curl_multi_cleanup(self->multi);
    free(self);
    *self_p = NULL;
}

/* True for the errors that say the server itself cannot be used, as opposed to a refusal of
 * one mail: trying the next mail would only fail the same way (and wait as long). */
static bool s_server_failed(CURLcode rc)
{
    switch (rc) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_USE_SSL_FAILED:
    case CURLE_LOGIN_DENIED:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_GOT_NOTHING:
    case CURLE_AUTH_ERROR:
        return true;
    default:
        return false;
    }
}

int notify_smtp_send(notify_smtp_t *self, const char *rcpt, const char *msg, size_t len,
                     char *errbuf, size_t errlen)
{
    const notify_smtp_config_t *c = self->config;
    char curl_error[CURL_ERROR_SIZE] = "", from[320], to[320];
    snprintf(from, sizeof from, "<%s>", c->from_addr);
    snprintf(to, sizeof to, "<%s>", rcpt);
    struct curl_slist *rcpts = curl_slist_append(NULL, to);
    s_upload_t upload = {msg, len, 0};
    CURL *e = self->easy;
    /* Reset, then set everything again: the connection cache survives a reset. */
    curl_easy_reset(e);
    int bad = 0;
    bad |= curl_easy_setopt(e, CURLOPT_URL, c->url);
    bad |= curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
    bad |= curl_easy_setopt(e, CURLOPT_PROXY, "");
    bad |= curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)c->timeout_ms);
    bad |= curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->timeout_ms);
    bad |= curl_easy_setopt(e, CURLOPT_USE_SSL, (long)c->use_ssl);
    bad |= curl_easy_setopt(e, CURLOPT_MAIL_FROM, from);
    bad |= curl_easy_setopt(e, CURLOPT_MAIL_RCPT, rcpts);
    bad |= curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    bad |= curl_easy_setopt(e, CURLOPT_READFUNCTION, s_read);
    bad |= curl_easy_setopt(e, CURLOPT_READDATA, &upload);
    bad |= curl_easy_setopt(e, CURLOPT_ERRORBUFFER, curl_error);
    if (c->username) {
        bad |= curl_easy_setopt(e, CURLOPT_USERNAME, c->username);
        bad |= curl_easy_setopt(e, CURLOPT_PASSWORD, c->password ? c->password : "");
    }
    if (c->ca_file)
        bad |= curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    if (!rcpts || bad != 0 || curl_multi_add_handle(self->multi, e) != CURLM_OK) {
        curl_slist_free_all(rcpts);
        snprintf(errbuf, errlen, "could not set up the SMTP transfer");
        return NOTIFY_SERVER_FAILED;
    }
    int running = 1;
    CURLcode result = CURLE_OK;
    while (running) {
        if (curl_multi_perform(self->multi, &running) != CURLM_OK) {
            result = CURLE_RECV_ERROR;
            break;
        }
        if (running) {
            curl_multi_poll(self->multi, NULL, 0, 100, NULL);
            cf_worker_keepalive(self->worker);
        }
    }
    CURLMsg *m;
    int queued;
    while ((m = curl_multi_info_read(self->multi, &queued)))
        if (m->msg == CURLMSG_DONE && m->easy_handle == e)
            result = m->data.result;
    curl_multi_remove_handle(self->multi, e);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(e, CURLOPT_MAIL_RCPT, NULL);
    curl_slist_free_all(rcpts);
    if (result == CURLE_OK)
        return NOTIFY_SENT;
    snprintf(errbuf, errlen, "%s", curl_error[0] ? curl_error : curl_easy_strerror(result));
    return s_server_failed(result) ? NOTIFY_SERVER_FAILED : NOTIFY_REFUSED;
}
