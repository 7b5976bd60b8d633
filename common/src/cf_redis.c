/* cf_redis: a Redis connection with timeouts that reconnects by itself. */
#include "cf_redis.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"

struct _cf_redis_t {
    char *host;        /* server host */
    int port;          /* server port */
    int timeout_ms;    /* connect and command timeout */
    char *password;    /* AUTH password, or NULL */
    int db;            /* SELECT index */
    redisContext *ctx; /* current connection, or NULL */
    char errstr[512];  /* last error */
};

cf_redis_t *cf_redis_new(const char *host, int port, int timeout_ms)
{
    cf_redis_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->host = strdup(host);
    self->port = port;
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
    if (self) {
        const char *pw = cf_config_get(cfg, "redis", "password", NULL);
        self->password = pw && *pw ? strdup(pw) : NULL;
        self->db = (int)cf_config_get_int(cfg, "redis", "db", 0);
    }
    return self;
}

static void s_disconnect(cf_redis_t *self)
{
    if (self->ctx)
        redisFree(self->ctx);
    self->ctx = NULL;
}

void cf_redis_destroy(cf_redis_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_redis_t *self = *self_p;
    s_disconnect(self);
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

static int s_connect(cf_redis_t *self)
{
    if (self->ctx && self->ctx->err == 0)
        return 0;
    s_disconnect(self);
    struct timeval tv = {self->timeout_ms / 1000, (self->timeout_ms % 1000) * 1000};
    self->ctx = redisConnectWithTimeout(self->host, self->port, tv);
    if (!self->ctx || self->ctx->err) {
        snprintf(self->errstr, sizeof self->errstr, "could not connect to Redis at %s:%d: %s",
                 self->host, self->port, self->ctx ? self->ctx->errstr : "out of memory");
        s_disconnect(self);
        return -1;
    }
    redisSetTimeout(self->ctx, tv);
    redisReply *r = NULL;
    if (self->password) {
        r = redisCommand(self->ctx, "AUTH %s", self->password);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(self->errstr, sizeof self->errstr, "Redis refused authentication");
            goto fail;
        }
        freeReplyObject(r);
    }
    if (self->db) {
        r = redisCommand(self->ctx, "SELECT %d", self->db);
        if (!r || r->type == REDIS_REPLY_ERROR) {
            snprintf(self->errstr, sizeof self->errstr, "Redis refused SELECT %d", self->db);
            goto fail;
        }
        freeReplyObject(r);
    }
    self->errstr[0] = '\0';
    return 0;
fail:
    if (r)
        freeReplyObject(r);
    s_disconnect(self);
    return -1;
}

/* Turn a reply into the caller's: NULL on I/O error or an error reply, the error kept. */
static redisReply *s_check(cf_redis_t *self, redisReply *r)
{
    if (!r) {
        snprintf(self->errstr, sizeof self->errstr, "Redis I/O error: %s",
                 self->ctx ? self->ctx->errstr : "no connection");
        s_disconnect(self);
        return NULL;
    }
    if (r->type == REDIS_REPLY_ERROR) {
        snprintf(self->errstr, sizeof self->errstr, "Redis error: %.*s", (int)r->len, r->str);
        freeReplyObject(r);
        return NULL;
    }
    return r;
}

redisReply *cf_redis_commandargv(cf_redis_t *self, int argc, const char **argv,
                                 const size_t *argvlen)
{
    for (int attempt = 0; attempt < 2; attempt++) {
        if (s_connect(self) != 0)
            return NULL;
        redisReply *r = redisCommandArgv(self->ctx, argc, argv, argvlen);
        if (r || attempt == 1)
            return s_check(self, r);
        cf_log_warn("Redis connection lost, reconnecting: %s", self->ctx->errstr);
        s_disconnect(self);
    }
    return NULL;
}

redisReply *cf_redis_command(cf_redis_t *self, const char *fmt, ...)
{
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
        s_disconnect(self);
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
    return rc == REDIS_OK ? 0 : -1;
}

int cf_redis_appendargv(cf_redis_t *self, int argc, const char **argv, const size_t *argvlen)
{
    if (s_connect(self) != 0)
        return -1;
    return redisAppendCommandArgv(self->ctx, argc, argv, argvlen) == REDIS_OK ? 0 : -1;
}

redisReply *cf_redis_get_reply(cf_redis_t *self)
{
    if (!self->ctx) {
        snprintf(self->errstr, sizeof self->errstr, "no Redis connection");
        return NULL;
    }
    void *r = NULL;
    if (redisGetReply(self->ctx, &r) != REDIS_OK) {
        snprintf(self->errstr, sizeof self->errstr, "Redis I/O error: %s", self->ctx->errstr);
        s_disconnect(self);
        return NULL;
    }
    return r;
}
