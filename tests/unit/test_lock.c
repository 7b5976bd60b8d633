/* cf_lock against a real Redis: one holder at a time, a TTL that frees the lock of a holder
 * that died, only the owner may renew or release, fencing tokens that only go up, and batch
 * locks for a worker's job ids. Keys hold the pid so that runs never collide. Reads as
 * cf_lock's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "cf_lock.h"
#include "cf_log.h"
#include "cf_test.h"

static int s_group_setup(void **state)
{
    char host[64];
    int port;
    if (cf_test_redis(host, sizeof host, &port) != 0)
        return -1;
    cf_redis_t *redis = cf_redis_new(host, port, 2000);
    if (!redis)
        return -1;
    *state = redis;
    return 0;
}

static int s_group_teardown(void **state)
{
    cf_redis_t *redis = *state;
    cf_redis_destroy(&redis);
    return 0;
}

/* NAME made unique to this run; its lock and fence keys are removed first. */
static const char *s_name(cf_redis_t *redis, char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "cf_test_lock:%d:%s", (int)getpid(), name);
    redisReply *r = cf_redis_command(redis, "DEL lock:%s fence:%s", buf, buf);
    assert_non_null(r);
    freeReplyObject(r);
    return buf;
}

/* The token stored under "lock:NAME", or "" when the key is not there, written into OUT. */
static const char *s_holder(cf_redis_t *redis, const char *name, char out[64])
{
    redisReply *r = cf_redis_command(redis, "GET lock:%s", name);
    assert_non_null(r);
    snprintf(out, 64, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    return out;
}

static void s_cleanup(cf_redis_t *redis, const char *name)
{
    redisReply *r = cf_redis_command(redis, "DEL lock:%s fence:%s", name, name);
    if (r)
        freeReplyObject(r);
}

static void s_sleep_ms(int ms)
{
    nanosleep(&(struct timespec){ms / 1000, (ms % 1000) * 1000000L}, NULL);
}

static void test_lock_mutual_exclusion(void **state)
{
    cf_redis_t *redis = *state;
    char name[128], holder[64];
    s_name(redis, name, sizeof name, "mutex");
    cf_lock_t *a = cf_lock_new(redis, name, 10000);
    cf_lock_t *b = cf_lock_new(redis, name, 10000);
    assert_non_null(a);
    assert_non_null(b);
    assert_false(cf_lock_held(a));
    assert_string_equal(cf_lock_token(a), "");
    assert_int_equal(cf_lock_fence(a), 0);

    assert_int_equal(cf_lock_acquire(a), 1);
    assert_true(cf_lock_held(a));
    assert_int_equal(strlen(cf_lock_token(a)), 32);
    assert_string_equal(s_holder(redis, name, holder), cf_lock_token(a));
    /* Held: the other gets 0, and so does a second acquire by the holder. */
    assert_int_equal(cf_lock_acquire(b), 0);
    assert_false(cf_lock_held(b));
    assert_int_equal(cf_lock_acquire(a), 0);
    assert_true(cf_lock_held(a));

    assert_int_equal(cf_lock_release(a), 1);
    assert_false(cf_lock_held(a));
    assert_string_equal(s_holder(redis, name, holder), "");
    assert_int_equal(cf_lock_release(a), 0); /* already released */
    assert_int_equal(cf_lock_acquire(b), 1);
    assert_int_equal(cf_lock_acquire(a), 0);
    assert_int_equal(cf_lock_release(b), 1);
    cf_lock_destroy(&a);
    cf_lock_destroy(&b);
    assert_null(a);
    cf_lock_destroy(&a);
    s_cleanup(redis, name);
}

/* A holder that stops renewing loses the lock after the TTL; its late release then must not
 * delete the new holder's lock. */
static void test_lock_expiry_and_non_owner_release(void **state)
{
    cf_redis_t *redis = *state;
    char name[128], holder[64];
    s_name(redis, name, sizeof name, "expiry");
    cf_lock_t *a = cf_lock_new(redis, name, 150);
    cf_lock_t *b = cf_lock_new(redis, name, 10000);
    assert_int_equal(cf_lock_acquire(a), 1);
    assert_int_equal(cf_lock_acquire(b), 0);
    s_sleep_ms(300);
    assert_int_equal(cf_lock_acquire(b), 1);
    /* a still believes it holds the lock; Redis knows better. */
    assert_true(cf_lock_held(a));
    assert_int_equal(cf_lock_release(a), 0);
    assert_false(cf_lock_held(a));
    assert_string_equal(s_holder(redis, name, holder), cf_lock_token(b));
    /* One that never held it cannot release it either. */
    cf_lock_t *c = cf_lock_new(redis, name, 10000);
    assert_int_equal(cf_lock_release(c), 0);
    assert_string_equal(s_holder(redis, name, holder), cf_lock_token(b));
    cf_lock_destroy(&c);
    cf_lock_destroy(&a);
    assert_string_equal(s_holder(redis, name, holder), cf_lock_token(b));
    assert_int_equal(cf_lock_release(b), 1);
    cf_lock_destroy(&b);
    s_cleanup(redis, name);
}

/* A long job keeps its lock by renewing before the TTL runs out. */
static void test_lock_renew(void **state)
{
    cf_redis_t *redis = *state;
    char name[128];
    s_name(redis, name, sizeof name, "renew");
    cf_lock_t *a = cf_lock_new(redis, name, 300);
    cf_lock_t *b = cf_lock_new(redis, name, 10000);
    assert_int_equal(cf_lock_renew(a), 0); /* nothing to renew yet */
    assert_int_equal(cf_lock_acquire(a), 1);
    for (int i = 0; i < 4; i++) {
        s_sleep_ms(150);
        assert_int_equal(cf_lock_renew(a), 1);
    }
    /* 600 ms after the acquire, twice the TTL: still ours thanks to the renewals. */
    assert_int_equal(cf_lock_acquire(b), 0);
    redisReply *r = cf_redis_command(redis, "PTTL lock:%s", name);
    assert_non_null(r);
    assert_true(r->integer > 150 && r->integer <= 300);
    freeReplyObject(r);
    assert_int_equal(cf_lock_release(a), 1);

    /* Renewing a lock that ran out and was taken says so, and leaves the taker's alone. */
    assert_int_equal(cf_lock_acquire(a), 1);
    s_sleep_ms(400);
    assert_int_equal(cf_lock_acquire(b), 1);
    assert_int_equal(cf_lock_renew(a), 0);
    assert_false(cf_lock_held(a));
    assert_int_equal(cf_lock_renew(b), 1);
    assert_int_equal(cf_lock_release(b), 1);

    /* Also when it ran out and nobody took it. */
    assert_int_equal(cf_lock_acquire(a), 1);
    s_sleep_ms(400);
    assert_int_equal(cf_lock_renew(a), 0);
    assert_false(cf_lock_held(a));
    cf_lock_destroy(&a);
    cf_lock_destroy(&b);
    s_cleanup(redis, name);
}

/* Every acquire of a key gets a larger fencing token, whoever acquires: a write stamped with
 * an older token can be refused. */
static void test_lock_fencing(void **state)
{
    cf_redis_t *redis = *state;
    char name[128];
    s_name(redis, name, sizeof name, "fence");
    cf_lock_t *a = cf_lock_new(redis, name, 10000);
    cf_lock_t *b = cf_lock_new(redis, name, 10000);
    uint64_t last = 0;
    for (int i = 0; i < 6; i++) {
        cf_lock_t *l = i % 2 ? b : a;
        assert_int_equal(cf_lock_acquire(l), 1);
        assert_true(cf_lock_fence(l) > last);
        last = cf_lock_fence(l);
        /* A failed acquire takes no token. */
        cf_lock_t *other = i % 2 ? a : b;
        uint64_t before = cf_lock_fence(other);
        assert_int_equal(cf_lock_acquire(other), 0);
        assert_true(cf_lock_fence(other) == before);
        assert_int_equal(cf_lock_release(l), 1);
    }
    redisReply *r = cf_redis_command(redis, "GET fence:%s", name);
    assert_non_null(r);
    assert_true(strtoull(r->str, NULL, 10) == last);
    freeReplyObject(r);
    cf_lock_destroy(&a);
    cf_lock_destroy(&b);
    s_cleanup(redis, name);
}

/* Destroying a held lock gives it back at once, without waiting for the TTL. */
static void test_lock_destroy_releases(void **state)
{
    cf_redis_t *redis = *state;
    char name[128], holder[64];
    s_name(redis, name, sizeof name, "destroy");
    cf_lock_t *a = cf_lock_new(redis, name, 60000);
    cf_lock_t *b = cf_lock_new(redis, name, 60000);
    assert_int_equal(cf_lock_acquire(a), 1);
    cf_lock_destroy(&a);
    assert_string_equal(s_holder(redis, name, holder), "");
    assert_int_equal(cf_lock_acquire(b), 1);
    cf_lock_destroy(&b);
    s_cleanup(redis, name);
}

/* Scripts go as EVALSHA; after Redis forgot them (a restart, a failover, SCRIPT FLUSH) the
 * NOSCRIPT answer makes the lock send the text once, and nothing else changes. */
static void test_lock_script_cache_flushed(void **state)
{
    cf_redis_t *redis = *state;
    char name[128], holder[64];
    s_name(redis, name, sizeof name, "noscript");
    cf_lock_t *a = cf_lock_new(redis, name, 10000);
    redisReply *r = cf_redis_command(redis, "SCRIPT FLUSH");
    assert_non_null(r);
    freeReplyObject(r);
    assert_int_equal(cf_lock_acquire(a), 1);
    r = cf_redis_command(redis, "SCRIPT FLUSH");
    freeReplyObject(r);
    assert_int_equal(cf_lock_renew(a), 1);
    r = cf_redis_command(redis, "SCRIPT FLUSH");
    freeReplyObject(r);
    assert_int_equal(cf_lock_release(a), 1);
    assert_string_equal(s_holder(redis, name, holder), "");

    /* The batch release too, on a pipeline. */
    const char *keys[] = {name};
    bool acquired[1];
    assert_int_equal(cf_locks_acquire(redis, keys, 1, "batch-token", 10000, acquired), 0);
    assert_true(acquired[0]);
    r = cf_redis_command(redis, "SCRIPT FLUSH");
    freeReplyObject(r);
    assert_int_equal(cf_locks_release(redis, keys, 1, "batch-token"), 0);
    assert_string_equal(s_holder(redis, name, holder), "");
    cf_lock_destroy(&a);
    s_cleanup(redis, name);
}

/* A worker locks a batch of job ids in one round trip; the ones another worker holds come
 * back not acquired, and releasing the batch deletes only ours. */
static void test_locks_batch(void **state)
{
    cf_redis_t *redis = *state;
    enum { N = 5 };
    char names[N][128], holder[64];
    const char *keys[N];
    for (int i = 0; i < N; i++) {
        char job[16];
        snprintf(job, sizeof job, "job%d", i);
        keys[i] = s_name(redis, names[i], sizeof names[i], job);
    }
    /* Another worker already holds jobs 1 and 3. */
    const char *theirs[] = {keys[1], keys[3]};
    bool got_theirs[2];
    assert_int_equal(cf_locks_acquire(redis, theirs, 2, "other-token", 60000, got_theirs), 0);
    assert_true(got_theirs[0] && got_theirs[1]);

    bool acquired[N];
    memset(acquired, 1, sizeof acquired);
    assert_int_equal(cf_locks_acquire(redis, keys, N, "our-token", 60000, acquired), 0);
    const bool want[N] = {true, false, true, false, true};
    for (int i = 0; i < N; i++) {
        assert_int_equal(acquired[i], want[i]);
        assert_string_equal(s_holder(redis, keys[i], holder),
                            want[i] ? "our-token" : "other-token");
    }
    /* The TTL is set on every lock taken. */
    redisReply *r = cf_redis_command(redis, "PTTL lock:%s", keys[0]);
    assert_non_null(r);
    assert_true(r->integer > 0 && r->integer <= 60000);
    freeReplyObject(r);

    /* Renewing the batch extends ours only; theirs keep their own TTL. */
    assert_int_equal(cf_locks_renew(redis, keys, N, "our-token", 90000), 0);
    for (int i = 0; i < N; i++) {
        r = cf_redis_command(redis, "PTTL lock:%s", keys[i]);
        assert_non_null(r);
        if (want[i])
            assert_true(r->integer > 60000 && r->integer <= 90000);
        else
            assert_true(r->integer > 0 && r->integer <= 60000);
        freeReplyObject(r);
    }
    /* Also after Redis forgot its scripts. */
    r = cf_redis_command(redis, "SCRIPT FLUSH");
    freeReplyObject(r);
    assert_int_equal(cf_locks_renew(redis, keys, N, "our-token", 95000), 0);
    r = cf_redis_command(redis, "PTTL lock:%s", keys[2]);
    assert_true(r->integer > 90000 && r->integer <= 95000);
    freeReplyObject(r);

    /* Release the whole batch: only ours go. */
    assert_int_equal(cf_locks_release(redis, keys, N, "our-token"), 0);
    for (int i = 0; i < N; i++)
        assert_string_equal(s_holder(redis, keys[i], holder), want[i] ? "" : "other-token");
    /* A single lock object sees the batch locks like any other. */
    cf_lock_t *single = cf_lock_new(redis, keys[1], 1000);
    assert_int_equal(cf_lock_acquire(single), 0);
    cf_lock_destroy(&single);

    assert_int_equal(cf_locks_release(redis, theirs, 2, "other-token"), 0);
    for (int i = 0; i < N; i++) {
        assert_string_equal(s_holder(redis, keys[i], holder), "");
        s_cleanup(redis, keys[i]);
    }
    /* An empty batch is no round trip and no error. */
    assert_int_equal(cf_locks_acquire(redis, keys, 0, "our-token", 1000, acquired), 0);
    assert_int_equal(cf_locks_release(redis, keys, 0, "our-token"), 0);
    assert_int_equal(cf_locks_renew(redis, keys, 0, "our-token", 1000), 0);
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    cf_log_init("test_lock", CF_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lock_mutual_exclusion),
        cmocka_unit_test(test_lock_expiry_and_non_owner_release),
        cmocka_unit_test(test_lock_renew),
        cmocka_unit_test(test_lock_fencing),
        cmocka_unit_test(test_lock_destroy_releases),
        cmocka_unit_test(test_lock_script_cache_flushed),
        cmocka_unit_test(test_locks_batch),
    };
    return cmocka_run_group_tests(tests, s_group_setup, s_group_teardown);
}
