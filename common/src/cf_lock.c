/* cf_lock: Redis locks with owner tokens, compare-and-delete release, and fencing counters. */
#include "cf_lock.h"

#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Only the owner may extend or delete: both compare the token first, atomically. */
static const char *const s_renew_lua =
    "if redis.call('get', KEYS[1]) == ARGV[1] then "
    "return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end";
static const char *const s_release_lua = "if redis.call('get', KEYS[1]) == ARGV[1] then "
                                         "return redis.call('del', KEYS[1]) else return 0 end";

struct _cf_lock_t {
    cf_redis_t *redis; /* borrowed connection */
    char *key;         /* "lock:<name>" */
    char *fence_key;   /* "fence:<name>" */
    int ttl_ms;        /* lock lifetime */
    char token[33];    /* random token of the current hold */
    uint64_t fence;    /* fencing token of the last acquire */
    bool held;         /* we believe we hold it */
};

static void s_token(char out[33])
{
    uint8_t raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        abort(); /* a guessable token would let others release our locks */
    for (int i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
}

cf_lock_t *cf_lock_new(cf_redis_t *redis, const char *key, int ttl_ms)
{
    cf_lock_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->redis = redis;
    self->ttl_ms = ttl_ms > 0 ? ttl_ms : 1;
    size_t n = strlen(key) + 8;
    self->key = malloc(n);
    self->fence_key = malloc(n);
    if (!self->key || !self->fence_key) {
        free(self->key);
        free(self->fence_key);
        free(self);
        return NULL;
    }
    snprintf(self->key, n, "lock:%s", key);
    snprintf(self->fence_key, n, "fence:%s", key);
    return self;
}

void cf_lock_destroy(cf_lock_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_lock_t *self = *self_p;
    if (self->held)
        cf_lock_release(self);
    free(self->key);
    free(self->fence_key);
    free(self);
    *self_p = NULL;
}

int cf_lock_acquire(cf_lock_t *self)
{
    char token[33];
    s_token(token);
    redisReply *r =
        cf_redis_command(self->redis, "SET %s %s NX PX %d", self->key, token, self->ttl_ms);
    if (!r)
        return -1;
    bool ok = r->type == REDIS_REPLY_STATUS;
    freeReplyObject(r);
    if (!ok)
        return 0;
    memcpy(self->token, token, sizeof token);
    self->held = true;
    r = cf_redis_command(self->redis, "INCR %s", self->fence_key);
    if (!r || r->type != REDIS_REPLY_INTEGER) {
        if (r)
            freeReplyObject(r);
        cf_lock_release(self);
        return -1;
    }
    self->fence = (uint64_t)r->integer;
    freeReplyObject(r);
    return 1;
}

int cf_lock_renew(cf_lock_t *self)
{
    if (!self->held)
        return 0;
    redisReply *r = cf_redis_command(self->redis, "EVAL %s 1 %s %s %d", s_renew_lua, self->key,
                                     self->token, self->ttl_ms);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 1 : 0;
    freeReplyObject(r);
    if (!rc)
        self->held = false;
    return rc;
}

int cf_lock_release(cf_lock_t *self)
{
    if (!self->held)
        return 0;
    redisReply *r =
        cf_redis_command(self->redis, "EVAL %s 1 %s %s", s_release_lua, self->key, self->token);
    if (!r)
        return -1;
    self->held = false;
    int rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 1 : 0;
    freeReplyObject(r);
    return rc;
}

bool cf_lock_held(cf_lock_t *self)
{
    return self->held;
}

uint64_t cf_lock_fence(cf_lock_t *self)
{
    return self->fence;
}

const char *cf_lock_token(cf_lock_t *self)
{
    return self->held ? self->token : "";
}

int cf_locks_acquire(cf_redis_t *redis, const char *const *keys, size_t n, const char *token,
                     int ttl_ms, bool *acquired)
{
    for (size_t i = 0; i < n; i++) {
        acquired[i] = false;
        if (cf_redis_append(redis, "SET lock:%s %s NX PX %d", keys[i], token, ttl_ms) != 0)
            return -1;
    }
    for (size_t i = 0; i < n; i++) {
        redisReply *r = cf_redis_get_reply(redis);
        if (!r)
            return -1;
        acquired[i] = r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
    }
    return 0;
}

int cf_locks_release(cf_redis_t *redis, const char *const *keys, size_t n, const char *token)
{
    for (size_t i = 0; i < n; i++)
        if (cf_redis_append(redis, "EVAL %s 1 lock:%s %s", s_release_lua, keys[i], token) != 0)
            return -1;
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        redisReply *r = cf_redis_get_reply(redis);
        if (!r)
            rc = -1;
        else
            freeReplyObject(r);
    }
    return rc;
}
