/* cf_redis: a Redis connection with timeouts that reconnects by itself and carries its own
 * error. Replies are hiredis redisReply objects (caller frees with freeReplyObject). */
#ifndef CF_REDIS_H
#define CF_REDIS_H

#include <hiredis/hiredis.h>
#include <stdbool.h>

#include "cf_config.h"

typedef struct _cf_redis_t cf_redis_t;

/* A connection to HOST:PORT; every call times out after TIMEOUT_MS. Connects lazily;
 * NULL only when out of memory. */
cf_redis_t *cf_redis_new(const char *host, int port, int timeout_ms);
/* [redis] host (127.0.0.1), port (6379), timeout_ms (2000), password (none), db (0). */
cf_redis_t *cf_redis_new_from_config(cf_config_t *cfg);
void cf_redis_destroy(cf_redis_t **self_p);

/* The last error, or "". */
const char *cf_redis_errstr(cf_redis_t *self);
/* True when the last call failed because Redis answered an error reply whose code is
 * PREFIX, e.g. cf_redis_error_reply_is (r, "NOSCRIPT"). */
bool cf_redis_error_reply_is(cf_redis_t *self, const char *prefix);
/* Drop the connection; the next call reconnects. For a caller that gives up on a pipeline
 * before reading all its replies. */
void cf_redis_disconnect(cf_redis_t *self);

/* Run one command (hiredis format). NULL on I/O error (one reconnect and retry first) or
 * when Redis answers an error reply (then the error text is kept and the reply freed). */
redisReply *cf_redis_command(cf_redis_t *self, const char *fmt, ...);
/* Same with an argument vector. */
redisReply *cf_redis_commandargv(cf_redis_t *self, int argc, const char **argv,
                                 const size_t *argvlen);
/* Pipelining: queue commands, then read their replies in order. A queued batch is not
 * retried on a lost connection: the caller sees NULL and may start again. A plain command
 * sent while replies are still unread drops the connection first (they would be lost). */
int cf_redis_append(cf_redis_t *self, const char *fmt, ...);
int cf_redis_appendargv(cf_redis_t *self, int argc, const char **argv, const size_t *argvlen);
/* Next reply of the pipeline (caller owns; error replies are returned, not dropped). */
redisReply *cf_redis_get_reply(cf_redis_t *self);

#endif
