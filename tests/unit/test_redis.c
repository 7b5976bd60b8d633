/* cf_redis against a real Redis: commands, binary-safe argument vectors, error replies kept
 * on the connection, pipelining, reconnecting after the server drops us, and failing fast
 * when nothing listens. Reads as cf_redis's usage example. */
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

#include "cf_log.h"
#include "cf_redis.h"
#include "cf_test.h"

static cf_redis_t *s_redis(void)
{
    char host[64];
    int port;
    assert_int_equal(cf_test_redis(host, sizeof host, &port), 0);
    cf_redis_t *r = cf_redis_new(host, port, 2000);
    assert_non_null(r);
    return r;
}

/* A key of this run only: runs in parallel never collide. */
static void s_key(char *buf, size_t len, const char *name)
{
    snprintf(buf, len, "cf_test_redis:%d:%s", (int)getpid(), name);
}

static long long s_client_id(cf_redis_t *r)
{
    redisReply *reply = cf_redis_command(r, "CLIENT ID");
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    long long id = reply->integer;
    freeReplyObject(reply);
    return id;
}

/* Drop connection ID from another one, as a restarting server or a timeout would. */
static void s_kill_id(long long id)
{
    cf_redis_t *admin = s_redis();
    redisReply *reply = cf_redis_command(admin, "CLIENT KILL ID %lld", id);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(reply->integer, 1);
    freeReplyObject(reply);
    cf_redis_destroy(&admin);
}

static void s_kill(cf_redis_t *r)
{
    s_kill_id(s_client_id(r));
}

static void test_redis_command(void **state)
{
    char key[128];
    s_key(key, sizeof key, "counter");
    cf_redis_t *r = s_redis();
    assert_string_equal(cf_redis_errstr(r), "");
    redisReply *reply = cf_redis_command(r, "SET %s %d PX 60000", key, 41);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    assert_string_equal(reply->str, "OK");
    freeReplyObject(reply);
    reply = cf_redis_command(r, "INCR %s", key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(reply->integer, 42);
    freeReplyObject(reply);
    /* %s is one argument, blanks and all. */
    reply = cf_redis_command(r, "SET %s %s PX 60000", key, "two words");
    assert_non_null(reply);
    freeReplyObject(reply);
    reply = cf_redis_command(r, "GET %s", key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_string_equal(reply->str, "two words");
    freeReplyObject(reply);
    reply = cf_redis_command(r, "DEL %s", key);
    freeReplyObject(reply);
    /* A missing key is a nil reply, not an error. */
    reply = cf_redis_command(r, "GET %s", key);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_NIL);
    freeReplyObject(reply);
    cf_redis_destroy(&r);
    assert_null(r);
    cf_redis_destroy(&r);
}

/* Argument vectors carry any bytes, NULs included. */
static void test_redis_commandargv_binary(void **state)
{
    char key[128];
    s_key(key, sizeof key, "binary");
    static const char value[] = {'\0', '\xff', '\r', '\n', 'a', '\0', ' ', '\x80'};
    const char *argv[] = {"SET", key, value, "PX", "60000"};
    const size_t argvlen[] = {3, strlen(key), sizeof value, 2, 5};
    cf_redis_t *r = s_redis();
    redisReply *reply = cf_redis_commandargv(r, 5, argv, argvlen);
    assert_non_null(reply);
    freeReplyObject(reply);

    const char *get[] = {"GET", key};
    reply = cf_redis_commandargv(r, 2, get, NULL); /* NULL lengths: C strings */
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STRING);
    assert_int_equal(reply->len, sizeof value);
    assert_memory_equal(reply->str, value, sizeof value);
    freeReplyObject(reply);
    reply = cf_redis_command(r, "DEL %b", key, strlen(key));
    assert_non_null(reply);
    assert_int_equal(reply->integer, 1);
    freeReplyObject(reply);
    cf_redis_destroy(&r);
}

/* An error reply gives NULL, its text kept on the connection, which stays usable. */
static void test_redis_error_reply(void **state)
{
    char key[128];
    s_key(key, sizeof key, "notanumber");
    cf_redis_t *r = s_redis();
    redisReply *reply = cf_redis_command(r, "SET %s abc PX 60000", key);
    freeReplyObject(reply);
    assert_null(cf_redis_command(r, "INCR %s", key));
    assert_non_null(strstr(cf_redis_errstr(r), "Redis error: ERR value is not an integer"));
    assert_null(cf_redis_commandargv(r, 1, (const char *[]){"NOSUCHCOMMAND"}, NULL));
    assert_non_null(strstr(cf_redis_errstr(r), "unknown command"));
    reply = cf_redis_command(r, "PING");
    assert_non_null(reply);
    assert_string_equal(reply->str, "PONG");
    freeReplyObject(reply);
    reply = cf_redis_command(r, "DEL %s", key);
    freeReplyObject(reply);
    cf_redis_destroy(&r);
}

/* Many commands, one round trip: queue them, then read the replies in order. Error replies
 * come back as replies, so that each can be matched to its command. */
static void test_redis_pipeline(void **state)
{
    char key[128];
    s_key(key, sizeof key, "pipeline");
    cf_redis_t *r = s_redis();
    assert_int_equal(cf_redis_append(r, "SET %s 1 PX 60000", key), 0);
    assert_int_equal(cf_redis_append(r, "INCRBY %s %d", key, 10), 0);
    assert_int_equal(
        cf_redis_appendargv(r, 2, (const char *[]){"HGET", key}, (const size_t[]){4, strlen(key)}),
        0);
    assert_int_equal(cf_redis_append(r, "GET %s", key), 0);

    redisReply *reply = cf_redis_get_reply(r);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_STATUS);
    freeReplyObject(reply);
    reply = cf_redis_get_reply(r);
    assert_non_null(reply);
    assert_int_equal(reply->integer, 11);
    freeReplyObject(reply);
    reply = cf_redis_get_reply(r);
    assert_non_null(reply);
    assert_int_equal(reply->type, REDIS_REPLY_ERROR); /* HGET of a string: WRONGTYPE */
    freeReplyObject(reply);
    reply = cf_redis_get_reply(r);
    assert_non_null(reply);
    assert_string_equal(reply->str, "11");
    freeReplyObject(reply);

    reply = cf_redis_command(r, "DEL %s", key);
    freeReplyObject(reply);
    cf_redis_destroy(&r);
}

/* After the server drops us, the next command connects again and runs. */
static void test_redis_reconnect(void **state)
{
    cf_redis_t *r = s_redis();
    long long before = s_client_id(r);
    s_kill(r);
    redisReply *reply = cf_redis_command(r, "PING");
    if (!reply)
        fail_msg("no reconnect: %s", cf_redis_errstr(r));
    assert_string_equal(reply->str, "PONG");
    freeReplyObject(reply);
    assert_true(s_client_id(r) != before);

    /* Same for an argument vector. */
    s_kill(r);
    reply = cf_redis_commandargv(r, 1, (const char *[]){"PING"}, NULL);
    assert_non_null(reply);
    freeReplyObject(reply);

    /* A queued batch is not retried: the caller sees NULL and starts again. (The id is read
     * before queueing: a plain command in the middle of a pipeline would drop it.) */
    long long id = s_client_id(r);
    assert_int_equal(cf_redis_append(r, "PING"), 0);
    s_kill_id(id);
    assert_null(cf_redis_get_reply(r));
    assert_non_null(strstr(cf_redis_errstr(r), "Redis I/O error"));
    assert_null(cf_redis_get_reply(r));
    assert_int_equal(cf_redis_append(r, "PING"), 0);
    reply = cf_redis_get_reply(r);
    assert_non_null(reply);
    assert_string_equal(reply->str, "PONG");
    freeReplyObject(reply);
    cf_redis_destroy(&r);
}

static double s_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Nobody listening: an error at once, not a hang. */
static void test_redis_closed_port(void **state)
{
    int port = cf_test_free_port();
    assert_true(port > 0);
    cf_redis_t *r = cf_redis_new("127.0.0.1", port, 5000);
    assert_non_null(r);
    double start = s_now();
    assert_null(cf_redis_command(r, "PING"));
    assert_true(s_now() - start < 1.0);
    char want[64];
    snprintf(want, sizeof want, "could not connect to Redis at 127.0.0.1:%d: ", port);
    assert_non_null(strstr(cf_redis_errstr(r), want));
    assert_int_equal(cf_redis_append(r, "PING"), -1);
    assert_null(cf_redis_get_reply(r));
    cf_redis_destroy(&r);
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    /* Reconnect warnings are expected here; errors still show. */
    cf_log_init("test_redis", CF_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_redis_command),     cmocka_unit_test(test_redis_commandargv_binary),
        cmocka_unit_test(test_redis_error_reply), cmocka_unit_test(test_redis_pipeline),
        cmocka_unit_test(test_redis_reconnect),   cmocka_unit_test(test_redis_closed_port),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
