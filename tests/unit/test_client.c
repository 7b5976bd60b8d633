/* cf_client without a broker: a job nobody answers is given up after its attempts with a local
 * "timeout" reply, and a wake fd (cf_client_set_wake_fd) makes a waiting cf_client_recv return
 * at once, the job still pending, so that its thread can do other work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_test.h"

/* A client of a broker that is not there (a free port nobody listens on). */
static cf_client_t *s_client(int timeout_ms, int attempts)
{
    char endpoint[64];
    snprintf(endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", cf_test_free_port());
    cf_client_t *c = cf_client_new(endpoint);
    assert_non_null(c);
    cf_client_set_timeout(c, timeout_ms);
    cf_client_set_attempts(c, attempts);
    return c;
}

static void test_unanswered_job_times_out(void **state)
{
    (void)state;
    cf_client_t *c = s_client(50, 2);
    assert_int_equal(cf_client_send(c, NULL, "sys.ping", NULL, 0, 0, NULL), 0);
    assert_int_equal(cf_client_pending(c), 1);
    cf_reply_t *r = cf_client_recv(c, -1);
    assert_non_null(r);
    assert_false(cf_reply_ok(r));
    assert_string_equal(cf_reply_error(r)->code, "timeout");
    assert_int_equal(cf_client_pending(c), 0);
    assert_null(cf_client_recv(c, -1)); /* nothing pending: no wait at all */
    cf_reply_destroy(&r);
    cf_client_destroy(&c);
}

static void test_wake_fd_ends_the_wait(void **state)
{
    (void)state;
    /* Without the wake byte this recv would wait until the attempts ran out (a minute) and
     * then return the timeout reply; with it, it returns NULL and the job stays pending. */
    cf_client_t *c = s_client(30000, 2);
    int fds[2];
    assert_int_equal(pipe2(fds, O_NONBLOCK), 0);
    cf_client_set_wake_fd(c, fds[0]);
    assert_int_equal(cf_client_send(c, NULL, "sys.ping", NULL, 0, 0, NULL), 0);
    assert_int_equal(write(fds[1], "x", 1), 1);
    assert_null(cf_client_recv(c, -1));
    assert_int_equal(cf_client_pending(c), 1);
    /* Drained, the fd no longer wakes: a bounded wait ends by its time, still NULL. */
    char byte;
    assert_int_equal(read(fds[0], &byte, 1), 1);
    assert_null(cf_client_recv(c, 20));
    assert_int_equal(cf_client_pending(c), 1);
    cf_client_set_wake_fd(c, -1);
    cf_client_destroy(&c);
    close(fds[0]);
    close(fds[1]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_unanswered_job_times_out),
        cmocka_unit_test(test_wake_fd_ends_the_wait),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
