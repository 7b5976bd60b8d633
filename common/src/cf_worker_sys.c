/* The built-in services every worker serves: sys.echo and sys.ping (schemas/jobs.md). */
#include <time.h>
#include <unistd.h>

#include "cf_worker.h"

/* Longest sys.echo may be asked to sleep: enough to test deadlines and dying workers, short
 * enough that nobody can park a worker. */
#define S_ECHO_SLEEP_MAX_MS 10000

int cf_sys_echo(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result, cf_error_t *err)
{
    const msgpack_object *params = cf_job_params(job);
    const msgpack_object *sleep_ms = cf_msgpack_map_get(params, "sleep_ms");
    if (sleep_ms) {
        if (sleep_ms->type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            sleep_ms->via.u64 > S_ECHO_SLEEP_MAX_MS) {
            cf_error_set(err, "invalid_value", "params.sleep_ms",
                         "\"sleep_ms\" must be an integer from 0 to %d", S_ECHO_SLEEP_MAX_MS);
            return -1;
        }
        struct timespec ts = {(time_t)(sleep_ms->via.u64 / 1000),
                              (long)(sleep_ms->via.u64 % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    const msgpack_object *fail = cf_msgpack_map_get(params, "fail");
    if (fail) {
        if (fail->type != MSGPACK_OBJECT_STR || fail->via.str.size == 0 ||
            fail->via.str.size > 40) {
            cf_error_set(err, "invalid_value", "params.fail",
                         "\"fail\" must be an error code of 1 to 40 characters");
            return -1;
        }
        char code[48];
        snprintf(code, sizeof code, "%.*s", (int)fail->via.str.size, fail->via.str.ptr);
        cf_error_set(err, code, "params.fail", "failed on request");
        return -1;
    }
    msgpack_pack_map(result, 2);
    cf_msgpack_pack_cstr(result, "echo");
    msgpack_pack_object(result, *params);
    cf_msgpack_pack_cstr(result, "worker");
    cf_msgpack_pack_cstr(result, ctx->name);
    return 0;
}

int cf_sys_ping(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result, cf_error_t *err)
{
    msgpack_pack_map(result, 3);
    cf_msgpack_pack_cstr(result, "pong");
    msgpack_pack_true(result);
    cf_msgpack_pack_cstr(result, "worker");
    cf_msgpack_pack_cstr(result, ctx->name);
    cf_msgpack_pack_cstr(result, "time");
    msgpack_pack_int64(result, (int64_t)time(NULL));
    return 0;
}
