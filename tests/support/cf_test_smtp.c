/* cf_test_smtp: an SMTP sink for tests (see cf_test_smtp.h). One thread accepts; each
 * connection gets a thread of its own; stop shuts every socket down so that blocked threads
 * return, then joins them. */
#include "cf_test_smtp.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#define S_CONNS_MAX   1024
#define S_REFUSED_MAX 16
#define S_LINE_MAX    4096

typedef struct {
    cf_test_smtp_t *server; /* back pointer */
    int fd;                 /* the connection; -1 once closed */
    pthread_t thread;       /* its thread */
    bool used;              /* slot taken (thread not yet joined) */
    char buf[S_LINE_MAX];   /* bytes read, not yet consumed */
    size_t have;            /* how many */
} s_conn_t;

struct _cf_test_smtp_t {
    pthread_mutex_t mutex;        /* guards everything below */
    int port;                     /* the port, kept across stop and start */
    int listener;                 /* -1 while stopped */
    bool running;                 /* the accept thread runs */
    pthread_t acceptor;           /* the accept thread */
    s_conn_t conns[S_CONNS_MAX];  /* connections */
    cf_test_smtp_mail_t *mails;   /* accepted mails */
    size_t nmails, capmails;      /* count, room */
    char *refused[S_REFUSED_MAX]; /* recipients answered with 550 */
    size_t nrefused;              /* how many */
};

static void s_send(s_conn_t *c, const char *text)
{
    size_t len = strlen(text), off = 0;
    while (off < len) {
        ssize_t n = send(c->fd, text + off, len - off, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        off += (size_t)n;
    }
}

/* The next line without its CRLF into OUT; its length, or -1 at the end of the connection. */
static ssize_t s_line(s_conn_t *c, char *out, size_t outlen)
{
    for (;;) {
        char *nl = memchr(c->buf, '\n', c->have);
        if (nl) {
            size_t len = (size_t)(nl - c->buf);
            size_t keep = len > 0 && c->buf[len - 1] == '\r' ? len - 1 : len;
            if (keep >= outlen)
                keep = outlen - 1;
            memcpy(out, c->buf, keep);
            out[keep] = '\0';
            memmove(c->buf, nl + 1, c->have - len - 1);
            c->have -= len + 1;
            return (ssize_t)keep;
        }
        if (c->have == sizeof c->buf)
            c->have = 0; /* an overlong line: dropped */
        ssize_t n = recv(c->fd, c->buf + c->have, sizeof c->buf - c->have, 0);
        if (n <= 0)
            return -1;
        c->have += (size_t)n;
    }
}

/* The address between < and > of ARG ("FROM:<a@b>"), copied. */
static char *s_addr(const char *arg)
{
    const char *lt = strchr(arg, '<'), *gt = lt ? strchr(lt, '>') : NULL;
    if (!lt || !gt)
        return strdup(arg);
    return strndup(lt + 1, (size_t)(gt - lt - 1));
}

static bool s_is_refused(cf_test_smtp_t *s, const char *addr)
{
    bool refused = false;
    pthread_mutex_lock(&s->mutex);
    for (size_t i = 0; i < s->nrefused && !refused; i++)
        refused = strcasecmp(s->refused[i], addr) == 0;
    pthread_mutex_unlock(&s->mutex);
    return refused;
}

static void s_record(cf_test_smtp_t *s, const char *from, const char *rcpt, char *data)
{
    pthread_mutex_lock(&s->mutex);
    if (s->nmails == s->capmails) {
        size_t cap = s->capmails ? 2 * s->capmails : 16;
        cf_test_smtp_mail_t *m = realloc(s->mails, cap * sizeof *m);
        if (m) {
            s->mails = m;
            s->capmails = cap;
        }
    }
    if (s->nmails < s->capmails) {
        s->mails[s->nmails++] = (cf_test_smtp_mail_t){strdup(from), strdup(rcpt), data};
        data = NULL;
    }
    pthread_mutex_unlock(&s->mutex);
    free(data);
}

static void *s_conn_main(void *arg)
{
    s_conn_t *c = arg;
    cf_test_smtp_t *s = c->server;
    char line[S_LINE_MAX], *from = NULL, rcpt[S_LINE_MAX] = "";
    s_send(c, "220 cf-test-smtp ESMTP ready\r\n");
    while (s_line(c, line, sizeof line) >= 0) {
        if (strncasecmp(line, "EHLO", 4) == 0) {
            s_send(c, "250-cf-test-smtp\r\n250-8BITMIME\r\n250 SIZE 10485760\r\n");
        } else if (strncasecmp(line, "HELO", 4) == 0) {
            s_send(c, "250 cf-test-smtp\r\n");
        } else if (strncasecmp(line, "MAIL FROM:", 10) == 0) {
            free(from);
            from = s_addr(line + 10);
            rcpt[0] = '\0';
            s_send(c, "250 sender ok\r\n");
        } else if (strncasecmp(line, "RCPT TO:", 8) == 0) {
            char *addr = s_addr(line + 8);
            if (!from) {
                s_send(c, "503 MAIL first\r\n");
            } else if (s_is_refused(s, addr)) {
                s_send(c, "550 mailbox unavailable\r\n");
            } else {
                size_t used = strlen(rcpt);
                snprintf(rcpt + used, sizeof rcpt - used, "%s%s", used ? "," : "", addr);
                s_send(c, "250 recipient ok\r\n");
            }
            free(addr);
        } else if (strncasecmp(line, "DATA", 4) == 0) {
            if (!from || !rcpt[0]) {
                s_send(c, "503 no valid recipients\r\n");
                continue;
            }
            s_send(c, "354 end with <CRLF>.<CRLF>\r\n");
            char *data = NULL;
            size_t size = 0;
            FILE *f = open_memstream(&data, &size);
            ssize_t n;
            bool ended = false;
            while ((n = s_line(c, line, sizeof line)) >= 0) {
                if (strcmp(line, ".") == 0) {
                    ended = true;
                    break;
                }
                fprintf(f, "%s\r\n", line[0] == '.' ? line + 1 : line);
            }
            fclose(f);
            if (!ended) {
                free(data);
                break;
            }
            s_record(s, from, rcpt, data);
            free(from);
            from = NULL;
            rcpt[0] = '\0';
            s_send(c, "250 queued\r\n");
        } else if (strncasecmp(line, "RSET", 4) == 0) {
            free(from);
            from = NULL;
            rcpt[0] = '\0';
            s_send(c, "250 ok\r\n");
        } else if (strncasecmp(line, "NOOP", 4) == 0) {
            s_send(c, "250 ok\r\n");
        } else if (strncasecmp(line, "QUIT", 4) == 0) {
            s_send(c, "221 bye\r\n");
            break;
        } else {
            /* Any other verb (VRFY, EXPN, HELP, ...): the reply RFC 5321 4.2.4 gives a server
             * for commands it does not serve. The sink needs no more than the verbs above. */
            s_send(c, "502 command not implemented\r\n");
        }
    }
    free(from);
    pthread_mutex_lock(&s->mutex);
    close(c->fd);
    c->fd = -1;
    pthread_mutex_unlock(&s->mutex);
    return NULL;
}

static void *s_accept_main(void *arg)
{
    cf_test_smtp_t *s = arg;
    for (;;) {
        pthread_mutex_lock(&s->mutex);
        int listener = s->listener;
        pthread_mutex_unlock(&s->mutex);
        if (listener < 0)
            break;
        int fd = accept(listener, NULL, NULL);
        if (fd < 0)
            break; /* the listener was shut down */
        pthread_mutex_lock(&s->mutex);
        s_conn_t *c = NULL;
        for (int i = 0; i < S_CONNS_MAX && !c; i++)
            if (!s->conns[i].used)
                c = &s->conns[i];
        if (c) {
            memset(c, 0, sizeof *c);
            c->server = s;
            c->fd = fd;
            c->used = pthread_create(&c->thread, NULL, s_conn_main, c) == 0;
        }
        pthread_mutex_unlock(&s->mutex);
        if (!c || !c->used)
            close(fd);
    }
    return NULL;
}

int cf_test_smtp_start(cf_test_smtp_t *self)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)self->port)};
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(fd, 64) != 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    socklen_t len = sizeof sa;
    getsockname(fd, (struct sockaddr *)&sa, &len);
    self->port = ntohs(sa.sin_port);
    self->listener = fd;
    if (pthread_create(&self->acceptor, NULL, s_accept_main, self) != 0) {
        close(fd);
        self->listener = -1;
        return -1;
    }
    self->running = true;
    return 0;
}

int cf_test_smtp_stop(cf_test_smtp_t *self)
{
    if (!self->running)
        return 0;
    pthread_mutex_lock(&self->mutex);
    int listener = self->listener;
    self->listener = -1;
    shutdown(listener, SHUT_RDWR);
    for (int i = 0; i < S_CONNS_MAX; i++)
        if (self->conns[i].used && self->conns[i].fd >= 0)
            shutdown(self->conns[i].fd, SHUT_RDWR);
    pthread_mutex_unlock(&self->mutex);
    pthread_join(self->acceptor, NULL);
    close(listener);
    self->running = false;
    /* No lock here: the acceptor is gone, so no slot changes hands any more. */
    for (int i = 0; i < S_CONNS_MAX; i++) {
        if (self->conns[i].used) {
            pthread_join(self->conns[i].thread, NULL);
            self->conns[i].used = false;
        }
    }
    return 0;
}

cf_test_smtp_t *cf_test_smtp_new(void)
{
    cf_test_smtp_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    pthread_mutex_init(&self->mutex, NULL);
    self->listener = -1;
    if (cf_test_smtp_start(self) != 0) {
        pthread_mutex_destroy(&self->mutex);
        free(self);
        return NULL;
    }
    return self;
}

void cf_test_smtp_mail_free(cf_test_smtp_mail_t *mail)
{
    free(mail->from);
    free(mail->rcpt);
    free(mail->data);
    memset(mail, 0, sizeof *mail);
}

void cf_test_smtp_destroy(cf_test_smtp_t **self_p)
{
    cf_test_smtp_t *self = *self_p;
    if (!self)
        return;
    cf_test_smtp_stop(self);
    for (size_t i = 0; i < self->nmails; i++)
        cf_test_smtp_mail_free(&self->mails[i]);
    free(self->mails);
    for (size_t i = 0; i < self->nrefused; i++)
        free(self->refused[i]);
    pthread_mutex_destroy(&self->mutex);
    free(self);
    *self_p = NULL;
}

int cf_test_smtp_port(cf_test_smtp_t *self)
{
    return self->port;
}

void cf_test_smtp_refuse(cf_test_smtp_t *self, const char *addr)
{
    pthread_mutex_lock(&self->mutex);
    if (self->nrefused < S_REFUSED_MAX)
        self->refused[self->nrefused++] = strdup(addr);
    pthread_mutex_unlock(&self->mutex);
}

size_t cf_test_smtp_count(cf_test_smtp_t *self)
{
    pthread_mutex_lock(&self->mutex);
    size_t n = self->nmails;
    pthread_mutex_unlock(&self->mutex);
    return n;
}

int cf_test_smtp_mail(cf_test_smtp_t *self, size_t i, cf_test_smtp_mail_t *out)
{
    int rc = -1;
    pthread_mutex_lock(&self->mutex);
    if (i < self->nmails) {
        out->from = strdup(self->mails[i].from);
        out->rcpt = strdup(self->mails[i].rcpt);
        out->data = strdup(self->mails[i].data ? self->mails[i].data : "");
        rc = 0;
    }
    pthread_mutex_unlock(&self->mutex);
    return rc;
}
