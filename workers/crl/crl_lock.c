/* The Redis lock that keeps two workers from building the same (CA, scope, shard) at once:
 * key cf:lock:crl:<ca_id>:<scope>:<shard> as schemas/jobs.md names it (cf_lock would prefix
 * "lock:"), a random token so that only the holder renews or deletes it, and a TTL so that a
 * dead worker's lock goes away by itself. */
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/rand.h>

#include "cf_log.h"
#include "crl.h"

/* Compare-and-renew and compare-and-delete: only the token's owner may. */
static const char s_renew_lua[] = "if redis.call('get', KEYS[1]) == ARGV[1] then "
                                  "return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0";
static const char s_release_lua[] = "if redis.call('get', KEYS[1]) == ARGV[1] then "
                                    "return redis.call('del', KEYS[1]) end return 0";

/* How long to sleep between tries: short, so that a waiting builder starts soon after the
 * holder lets go. */
#define S_POLL_MS 20

static void s_sleep_ms(int ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int crl_lock_acquire(cf_handler_ctx_t *ctx, crl_lock_t *lock, const char *key, int ttl_ms,
                     int wait_ms)
{
    memset(lock, 0, sizeof *lock);
    snprintf(lock->key, sizeof lock->key, "%s", key);
    lock->ttl_ms = ttl_ms;
    unsigned char raw[16];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(lock->token + 2 * i, 3, "%02x", raw[i]);
    uint64_t deadline = cf_mono_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", ttl_ms);
    for (;;) {
        const char *argv[] = {"SET", lock->key, lock->token, "NX", "PX", ttl};
        redisReply *r = cf_redis_commandargv(ctx->redis, 6, argv, NULL);
        if (!r) {
            cf_log_error("could not take lock \"%s\": %s", lock->key, cf_redis_errstr(ctx->redis));
            return -1;
        }
        bool taken = r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        if (taken) {
            lock->held = 1;
            return 1;
        }
        if (cf_mono_ms() >= deadline)
            return 0;
        /* The broker must keep counting us as alive while we wait for the other builder. */
        cf_worker_keepalive(ctx->worker);
        s_sleep_ms(S_POLL_MS);
    }
}

static int s_script(cf_handler_ctx_t *ctx, crl_lock_t *lock, const char *script)
{
    char ttl[24];
    snprintf(ttl, sizeof ttl, "%d", lock->ttl_ms);
    const char *argv[] = {"EVAL", script, "1", lock->key, lock->token, ttl};
    redisReply *r = cf_redis_commandargv(ctx->redis, 6, argv, NULL);
    if (!r)
        return -1;
    int rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 1 : 0;
    freeReplyObject(r);
    return rc;
}

int crl_lock_renew(cf_handler_ctx_t *ctx, crl_lock_t *lock)
{
    if (!lock->held)
        return 0;
    int rc = s_script(ctx, lock, s_renew_lua);
    if (rc == 0)
        lock->held = 0;
    return rc;
}

void crl_lock_release(cf_handler_ctx_t *ctx, crl_lock_t *lock)
{
    if (!lock->held)
        return;
    if (s_script(ctx, lock, s_release_lua) < 0)
        cf_log_warn("could not release lock \"%s\" (it expires by itself): %s", lock->key,
                    cf_redis_errstr(ctx->redis));
    lock->held = 0;
}
