/* cf_lock: Redis locks with owner tokens, compare-and-delete release, and fencing counters.
 *
 * The token is 16 random bytes from OpenSSL's RAND_bytes: a guessable token would let anyone
 * release or extend a lock that is not theirs. Renew and release compare the token and act
 * in one script, because a GET then DEL from the client could delete a lock that expired and
 * was taken by someone else in between. Scripts are sent as EVALSHA (40 bytes instead of the
 * whole text) and as EVAL only when Redis answers NOSCRIPT (after a restart or a failover). */
#include "cf_lock.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* SET lock:KEY token NX PX ttl, then INCR fence:KEY, as one step: done as two commands, a
 * holder whose lock expired between them could draw a fence number after the next holder's,
 * and the fence would go backwards. Returns the new fence, or 0 when the lock is taken. */
static const char s_acquire_lua[] =
    "if redis.call('set', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then "
    "return redis.call('incr', KEYS[2]) end return 0";
/* Only the owner may extend or delete: both compare the token first, atomically. */
static const char s_renew_lua[] = "if redis.call('get', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
static const char s_release_lua[] = "if redis.call('get', KEYS[1]) == ARGV[1] then "
                                    "return redis.call('del', KEYS[1]) end return 0";

#define S_TOKEN_BYTES 16
#define S_SHA_HEX     41 /* SHA-1 in hex, and the NUL */

struct _cf_lock_t {
    cf_redis_t *redis;                 /* borrowed connection */
    char *key;                         /* "lock:<name>" */
    char *fence_key;                   /* "fence:<name>" */
    int ttl_ms;                        /* lock lifetime */
    char token[2 * S_TOKEN_BYTES + 1]; /* random token of the current hold, hex */
    uint64_t fence;                    /* fencing token of the last acquire */
    bool held;                         /* we believe we hold it */
};

/* A fresh random token in hex. 0 or -1 (no randomness: then no lock either). */
static int s_token(char out[2 * S_TOKEN_BYTES + 1])
{
    unsigned char raw[S_TOKEN_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    for (int i = 0; i < S_TOKEN_BYTES; i++)
        snprintf(out + 2 * i, 3, "%02x", raw[i]);
    return 0;
}

/* The SHA-1 of a script in hex, as EVALSHA names it. */
static void s_sha1(const char *script, char out[S_SHA_HEX])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    out[0] = '\0';
    if (EVP_Digest(script, strlen(script), md, &len, EVP_sha1(), NULL) != 1 || len != 20)
        return; /* an empty sha gets NOSCRIPT, then EVAL: slower, still right */
    for (unsigned i = 0; i < len; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* EVALSHA SCRIPT with ARGV (keys and args as Redis expects after the numkeys), EVAL when
 * Redis does not know the script yet. */
static redisReply *s_eval(cf_redis_t *redis, const char *script, int nkeys, int argc,
                          const char **args)
{
    char sha[S_SHA_HEX], numkeys[12];
    s_sha1(script, sha);
    snprintf(numkeys, sizeof numkeys, "%d", nkeys);
    const char *argv[3 + 8];
    if (argc > 8)
        return NULL;
    argv[0] = "EVALSHA";
    argv[1] = sha;
    argv[2] = numkeys;
    memcpy(argv + 3, args, (size_t)argc * sizeof *args);
    redisReply *r = cf_redis_commandargv(redis, 3 + argc, argv, NULL);
    if (!r && cf_redis_error_reply_is(redis, "NOSCRIPT")) {
        argv[0] = "EVAL";
        argv[1] = script;
        r = cf_redis_commandargv(redis, 3 + argc, argv, NULL);
    }
    return r;
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
    /* A holder asking again is told it is taken (by itself) and keeps its hold. */
    char token[sizeof self->token], ttl[16];
    if (s_token(token) != 0)
        return -1;
    snprintf(ttl, sizeof ttl, "%d", self->ttl_ms);
    const char *args[] = {self->key, self->fence_key, token, ttl};
    redisReply *r = s_eval(self->redis, s_acquire_lua, 2, 4, args);
    if (!r)
        return -1;
    int rc = -1;
    if (r->type == REDIS_REPLY_INTEGER && r->integer > 0) {
        memcpy(self->token, token, sizeof token);
        self->fence = (uint64_t)r->integer;
        self->held = true;
        rc = 1;
    } else if (r->type == REDIS_REPLY_INTEGER && r->integer == 0) {
        rc = 0;
    }
    freeReplyObject(r);
    return rc;
}

int cf_lock_renew(cf_lock_t *self)
{
    if (!self->held)
        return 0;
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", self->ttl_ms);
    const char *args[] = {self->key, self->token, ttl};
    redisReply *r = s_eval(self->redis, s_renew_lua, 1, 3, args);
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
    const char *args[] = {self->key, self->token};
    redisReply *r = s_eval(self->redis, s_release_lua, 1, 2, args);
    if (!r)
        return -1; /* still ours as far as we know: destroy tries again */
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

/* Read N pipelined replies; OK[i] says whether reply i satisfied WANT. 0, or -1 when the
 * pipeline broke (the connection is then dropped, so nothing stale is read later). */
typedef enum { S_WANT_OK, S_WANT_ONE } s_want_t;
static int s_read_replies(cf_redis_t *redis, size_t n, s_want_t want, bool *ok, bool *noscript)
{
    int rc = 0;
    for (size_t i = 0; i < n; i++) {
        ok[i] = false;
        if (noscript)
            noscript[i] = false;
        redisReply *r = cf_redis_get_reply(redis);
        if (!r)
            return -1;
        if (want == S_WANT_OK)
            ok[i] = r->type == REDIS_REPLY_STATUS;
        else
            ok[i] = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
        if (r->type == REDIS_REPLY_ERROR) {
            if (noscript && strncmp(r->str, "NOSCRIPT", 8) == 0)
                noscript[i] = true;
            else
                rc = -1;
        }
        freeReplyObject(r);
    }
    return rc;
}

int cf_locks_acquire(cf_redis_t *redis, const char *const *keys, size_t n, const char *token,
                     int ttl_ms, bool *acquired)
{
    for (size_t i = 0; i < n; i++)
        acquired[i] = false;
    if (n == 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        if (cf_redis_append(redis, "SET lock:%s %s NX PX %d", keys[i], token,
                            ttl_ms > 0 ? ttl_ms : 1) != 0) {
            cf_redis_disconnect(redis);
            return -1;
        }
    }
    if (s_read_replies(redis, n, S_WANT_OK, acquired, NULL) != 0) {
        cf_redis_disconnect(redis);
        return -1;
    }
    return 0;
}

/* Queue SCRIPT (KEYS[1] = lock:KEY, ARGV = TOKEN and EXTRA when not NULL) for the keys not
 * yet done; EVAL when USE_EVAL, else EVALSHA. */
static int s_append_script(cf_redis_t *redis, const char *script, const char *const *keys, size_t n,
                           const char *token, const char *extra, const bool *skip, bool use_eval)
{
    char sha[S_SHA_HEX];
    s_sha1(script, sha);
    for (size_t i = 0; i < n; i++) {
        if (skip && skip[i])
            continue;
        int rc;
        if (extra)
            rc = cf_redis_append(redis, "%s %s 1 lock:%s %s %s", use_eval ? "EVAL" : "EVALSHA",
                                 use_eval ? script : sha, keys[i], token, extra);
        else
            rc = cf_redis_append(redis, "%s %s 1 lock:%s %s", use_eval ? "EVAL" : "EVALSHA",
                                 use_eval ? script : sha, keys[i], token);
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Run SCRIPT for every key in one pipelined round trip (again with the script's text for the
 * ones Redis refused with NOSCRIPT, after it lost its script cache). 0 or -1. */
static int s_locks_script(cf_redis_t *redis, const char *script, const char *const *keys, size_t n,
                          const char *token, const char *extra)
{
    if (n == 0)
        return 0;
    bool *ok = calloc(n, sizeof *ok), *noscript = calloc(n, sizeof *noscript);
    bool *done = calloc(n, sizeof *done);
    int rc = -1;
    if (!ok || !noscript || !done)
        goto out;
    if (s_append_script(redis, script, keys, n, token, extra, NULL, false) != 0 ||
        s_read_replies(redis, n, S_WANT_ONE, ok, noscript) != 0)
        goto fail;
    size_t again = 0;
    for (size_t i = 0; i < n; i++) {
        done[i] = !noscript[i];
        again += noscript[i];
    }
    if (again > 0 && (s_append_script(redis, script, keys, n, token, extra, done, true) != 0 ||
                      s_read_replies(redis, again, S_WANT_ONE, ok, NULL) != 0))
        goto fail;
    rc = 0;
    goto out;
fail:
    cf_redis_disconnect(redis);
out:
    free(ok);
    free(noscript);
    free(done);
    return rc;
}

int cf_locks_release(cf_redis_t *redis, const char *const *keys, size_t n, const char *token)
{
    return s_locks_script(redis, s_release_lua, keys, n, token, NULL);
}

int cf_locks_renew(cf_redis_t *redis, const char *const *keys, size_t n, const char *token,
                   int ttl_ms)
{
    char ttl[16];
    snprintf(ttl, sizeof ttl, "%d", ttl_ms > 0 ? ttl_ms : 1);
    return s_locks_script(redis, s_renew_lua, keys, n, token, ttl);
}
