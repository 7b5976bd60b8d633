/* cf_lock: a Redis lock with a random token and a TTL (SET key token NX PX ttl), renewed and
 * released by compare-and-delete scripts so that only the owner can, plus a fencing counter
 * that increases with every successful acquire, for writes that must never go backwards. */
#ifndef CF_LOCK_H
#define CF_LOCK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_redis.h"

typedef struct _cf_lock_t cf_lock_t;

/* A lock on KEY (Redis key "lock:KEY"); REDIS is borrowed and must outlive the lock. */
cf_lock_t *cf_lock_new(cf_redis_t *redis, const char *key, int ttl_ms);
/* Destroy; releases the lock first if it is held. */
void cf_lock_destroy(cf_lock_t **self_p);

/* 1 acquired (a fresh token, the fencing counter "fence:KEY" incremented), 0 held by
 * someone else, -1 Redis error. */
int cf_lock_acquire(cf_lock_t *self);
/* Extend the TTL if we still hold it: 1 yes, 0 lost it, -1 error. */
int cf_lock_renew(cf_lock_t *self);
/* Delete it if we still hold it: 1 released, 0 not ours any more (expired or taken), -1 error. */
int cf_lock_release(cf_lock_t *self);
/* True between a successful acquire and release (our belief; the TTL may have run out). */
bool cf_lock_held(cf_lock_t *self);
/* The fencing token of the last successful acquire (strictly increasing per key), or 0. */
uint64_t cf_lock_fence(cf_lock_t *self);
/* The random token of the last acquire (hex), or "". */
const char *cf_lock_token(cf_lock_t *self);

/* Many locks in one pipelined round trip, all with the same TOKEN (no fencing): for a worker
 * that locks a batch of job ids. ACQUIRED[i] says whether KEYS[i] ("lock:" is prepended) was
 * taken. 0 or -1. */
int cf_locks_acquire(cf_redis_t *redis, const char *const *keys, size_t n, const char *token,
                     int ttl_ms, bool *acquired);
/* Release the ones in KEYS that still hold TOKEN, in one round trip. 0 or -1. */
int cf_locks_release(cf_redis_t *redis, const char *const *keys, size_t n, const char *token);
/* Extend to TTL_MS the ones in KEYS that still hold TOKEN, in one round trip (a long job's
 * locks, renewed while it runs). 0 or -1. */
int cf_locks_renew(cf_redis_t *redis, const char *const *keys, size_t n, const char *token,
                   int ttl_ms);

#endif
