/* cf_redis: a Redis connection with timeouts that reconnects by itself.
 *
 * Every read and write is bounded by the timeout (redisSetTimeout), so a Redis that stops
 * answering costs a caller at most that long. A command that fails with an I/O error is sent
 * once more on a fresh connection: Redis commands are small and the ones we send are safe to
 * repeat (SET NX, compare-and-delete scripts, INCR for a fencing counter that only has to
 * grow). A pipeline is never resent: its replies would no longer match what the caller
 * counts on. */
#include "cf_redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"
#include "cf_metrics.h"

struct _cf_redis_t {
    char *host;          /* server host */
    int port;            /* server port */
    int timeout_ms;      /* connect and command timeout */
    char *password;      /* AUTH password, or NULL */
    int db;              /* SELECT index */
    redisContext *ctx;   /* current connection, or NULL */
    size_t pending;      /* pipelined commands whose replies are not read yet */
    bool had_conn;       /* a connection was made before: the next one is a reconnect */
    char errstr[512];    /* last error */
    char reply_err[256]; /* text of the last error reply of Redis, or "" */
};

cf_redis_t *cf_redis_new(const char *host, int port, int timeout_ms)
{
    cf_redis_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->host = strdup(host && *host ? host : "127.0.0.1");
    self->port = port > 0 ? port : 6379;
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 2000;
    if (!self->host) {
        free(self);
        return NULL;
    }
    return self;
}

cf_redis_t *cf_redis_new_from_config(cf_config_t *cfg)
{
    cf_redis_t *self = cf_redis_new(cf_config_get(cfg, "redis", "host", "127.0.0.1"),
                                    (int)cf_config_get_int(cfg, "redis", "port", 6379),
                                    (int)cf_config_get_int(cfg, "redis", "timeout_ms", 2000));
    if (!self)
        return NULL;
    const char *pw = cf_config_get(cfg, "redis", "password", NULL);
    if (pw && *pw && !(self->password = strdup(pw))) {
        cf_redis_destroy(&self);
        return NULL;
    }
    self->db = (int)cf_config_get_int(cfg, "redis", "db", 0);
    return self;
}

void cf_redis_disconnect(cf_redis_t *self)
{
    if (self->ctx)
        redisFree(self->ctx);
    self->ctx = NULL;
    self->pending = 0;
}

void cf_redis_destroy(cf_redis_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_redis_t *self = *self_p;
    cf_redis_disconnect(self);
    if (self->password)
        memset(self->password, 0, strlen(self->password));
    free(self->password);
    free(self->host);
    free(self);
    *self_p = NULL;
}

const char *cf_redis_errstr(cf_redis_t *self)
{
    return self->errstr;
}

bool cf_redis_error_reply_is(cf_redis_t *self, const char *prefix)
{
    size_t n = strlen(prefix);
    return self->reply_err[0] && strncmp(self->reply_err, prefix, n) == 0 &&
           (self->reply_err[n] == ' ' || self->reply_err[n] == '\0');
}

/* certfleet_redis_errors_total{kind}: "connect" (no connection) or "command" (an I/O error
 * or an error reply to a command). */
static void s_count_error(const char *kind)
{
    char labels[32];
    snprintf(labels, sizeof labels, "kind=\"%s\"", kind);
    cf_metric_add(cf_metrics_counter("certfleet_redis_errors_total",
                                     "Redis connection failures and failed commands", labels),
                  1);
}

static void s_io_error(cf_redis_t *self, const char *what)
{
    snprintf(self->errstr, sizeof self->errstr, "Redis I/O error at %s:%d (%s): %s", self->host,
             self->port, what,
             self->ctx && self->ctx->errstr[0] ? self->ctx->errstr : "connection closed");
    self->reply_err[0] = '\0';
}

/* Run a setup command (AUTH, SELECT) on a fresh connection. 0 or -1. */
static int s_setup(cf_redis_t *self, const char *what, int argc, const char **argv)
{
    redisReply *r = redisCommandArgv(self->ctx, argc, argv, NULL);
    if (!r) {
        s_io_error(self, "connection lost");
        return -1;
    }
    int rc = 0;
    if (r->type == REDIS_REPLY_ERROR) {
        /* Never echo the password: name the step only. */
        snprintf(self->errstr, sizeof self->errstr, "Redis at %s:%d refused %s: %.*s", self->host,
                 self->port, what, (int)r->len, r->str);
        rc = -1;
    }
    freeReplyObject(r);
    return rc;
}

static int s_connect(cf_redis_t *self)
{
    if (self->ctx && self->ctx->err == 0)
        return 0;
    if (self->pending) {
        /* The replies the caller waits for went with the old connection. */
        snprintf(self->errstr, sizeof self->errstr,
                 "connection to Redis lost with %zu pipelined replies unread", self->pending);
        return -1;
    }
    cf_redis_disconnect(self);
    struct timeval tv = {self->timeout_ms / 1000, (self->timeout_ms % 1000) * 1000};
    self->ctx = redisConnectWithTimeout(self->host, self->port, tv);
    if (!self->ctx || self->ctx->err) {
        snprintf(self->errstr, sizeof self->errstr, "could not connect to Redis at %s:%d: %s",
                 self->host, self->port, self->ctx ? self->ctx->errstr : "out of memory");
        self->reply_err[0] = '\0';
        cf_redis_disconnect(self);
        s_count_error("connect");
        return -1;
    }
    if (redisSetTimeout(self->ctx, tv) != REDIS_OK || redisEnableKeepAlive(self->ctx) != REDIS_OK) {
        s_io_error(self, "could not set timeouts");
        cf_redis_disconnect(self);
        s_count_error("connect");
        return -1;
    }
    char db[16];
    snprintf(db, sizeof db, "%d", self->db);
    const char *auth[] = {"AUTH", self->password};
    const char *select[] = {"SELECT", db};
    if ((self->password && s_setup(self, "AUTH", 2, auth) != 0) ||
        (self->db && s_setup(self, "SELECT", 2, select) != 0)) {
        cf_redis_disconnect(self);
        s_count_error("connect");
        return -1;
    }
    if (self->had_conn)
        cf_metric_add(cf_metrics_counter("certfleet_redis_reconnects_total",
                                         "Redis connections made again after one was lost", ""),
                      1);
    self->had_conn = true;
    return 0;
}

/* Turn a reply into the caller's: NULL on I/O error or an error reply, the error kept. */
static redisReply *s_check(cf_redis_t *self, redisReply *r)
{
    if (!r) {
        s_io_error(self, "connection lost");
        cf_redis_disconnect(self);
        s_count_error("command");
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(self->reply_err, sizeof self->reply_err, "%.*s", (int)r->len, r->str);
        /* NOSCRIPT is the expected answer to EVALSHA after a restart (cf_lock sends EVAL). */
        if (!cf_redis_error_reply_is(self, "NOSCRIPT"))
            s_count_error("command");
        snprintf(self->errstr, sizeof self->errstr, "Redis error: %s", self->reply_err);
        freeReplyObject(r);
        return NULL;
    }
    self->errstr[0] = '\0';
    self->reply_err[0] = '\0';
    return r;
}

/* Before a plain command: a pipeline left half read would hand its replies to the wrong
 * commands, so the connection is dropped (and a warning logged: it is a caller's bug). */
static void s_drop_pipeline(cf_redis_t *self)
{
    if (!self->pending)
        return;
    cf_log_warn("Redis pipeline of %zu replies left unread, reconnecting", self->pending);
    cf_redis_disconnect(self);
}

redisReply *cf_redis_commandargv(cf_redis_t *self, int argc, const char **argv,
                                 const size_t *argvlen)
{
    s_drop_pipeline(self);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s_connect(self) != 0)
            return NULL;
        redisReply *r = redisCommandArgv(self->ctx, argc, argv, argvlen);
        if (r || attempt == 1)
            return s_check(self, r);
        cf_log_warn("Redis connection lost, reconnecting: %s", self->ctx->errstr);
        cf_redis_disconnect(self);
    }
    return NULL;
}

redisReply *cf_redis_command(cf_redis_t *self, const char *fmt, ...)
{
    s_drop_pipeline(self);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s_connect(self) != 0)
            return NULL;
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = redisvCommand(self->ctx, fmt, ap);
        va_end(ap);
        if (r || attempt == 1)
            return s_check(self, r);
        cf_log_warn("Redis connection lost, reconnecting: %s", self->ctx->errstr);
        cf_redis_disconnect(self);
    }
    return NULL;
}

int cf_redis_append(cf_redis_t *self, const char *fmt, ...)
{
    if (s_connect(self) != 0)
        return -1;
    va_list ap;
    va_start(ap, fmt);
    int rc = redisvAppendCommand(self->ctx, fmt, ap);
    va_end(ap);
    if (rc != REDIS_OK) {
        s_io_error(self, "could not queue a command");
        s_count_error("command");
        return -1;
    }
    self->pending++;
    return 0;
}

int cf_redis_appendargv(cf_redis_t *self, int argc, const char **argv, const size_t *argvlen)
{
    if (s_connect(self) != 0)
        return -1;
    if (redisAppendCommandArgv(self->ctx, argc, argv, argvlen) != REDIS_OK) {
        s_io_error(self, "could not queue a command");
        s_count_error("command");
        return -1;
    }
    self->pending++;
    return 0;
}

redisReply *cf_redis_get_reply(cf_redis_t *self)
{
    if (!self->ctx || !self->pending) {
        snprintf(self->errstr, sizeof self->errstr, "no pipelined Redis reply to read");
        self->reply_err[0] = '\0';
        return NULL;
    }
    void *r = NULL;
    if (redisGetReply(self->ctx, &r) != REDIS_OK || !r) {
        s_io_error(self, "connection lost");
        s_count_error("command");
        cf_redis_disconnect(self);
        return NULL;
    }
    self->pending--;
    return r;
}
