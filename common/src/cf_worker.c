/* cf_worker: the shared worker runtime: connect, announce, heartbeat, dispatch, and run
 * durable jobs exactly-once in effect (Redis lock + job_results in the job's transaction). */
#include "cf_worker.h"

#include <czmq.h>
#include <string.h>
#include <unistd.h>

#include "cf_curve.h"
#include "cf_lock.h"
#include "cf_log.h"
#include "cf_metrics.h"
#include "cf_proto.h"

typedef struct {
    uint8_t id[CF_JOB_ID_SIZE]; /* job id as the broker framed it */
    uint8_t route[256];         /* client route to echo back */
    size_t route_len;           /* its length */
    cf_job_t *job;              /* decoded job, NULL when it did not decode */
    void *reply;                /* the reply to send, once known */
    size_t reply_len;           /* its length */
    bool locked;                /* we hold its Redis lock */
    bool ok;                    /* the reply is an ok reply */
    uint64_t received_ns;       /* when it came in (cf_metrics_clock_ns) */
} s_task_t;

struct _cf_worker_t {
    cf_config_t *config;          /* borrowed */
    const cf_handler_t *handlers; /* borrowed table */
    void *state;                  /* handed to handlers */
    char *name;                   /* worker name, for logs, job_results and broker.status */
    char *endpoint;               /* broker endpoint */
    int heartbeat_ms;             /* heartbeat interval */
    int liveness;                 /* missed heartbeats before the broker counts as gone */
    int credit;                   /* jobs we may hold at once */
    int batch_max;                /* jobs per transaction for batch handlers */
    int lock_ttl_ms;              /* TTL of the job locks */
    const char *const *locked;    /* the job lock keys held while a durable handler runs */
    size_t nlocked;               /* how many */
    uint64_t renew_at;            /* monotonic ms when they are renewed next */
    char token[33];               /* our lock token */
    zsock_t *sock;                /* DEALER to the broker */
    void *raw;                    /* libzmq socket */
    cf_pg_t *pg;                  /* system of record */
    cf_redis_t *redis;            /* locks */
    zlistx_t *queue;              /* s_task_t waiting to run */
    uint64_t hb_at;               /* when to send the next heartbeat */
    uint64_t broker_expiry;       /* when the broker counts as gone */
    bool redis_warned;            /* logged that locks are off */
    zlistx_t *deferred;           /* s_deferred_t: Redis commands waiting for the commit */
    cf_curve_t *curve;            /* [curve] keys applied to every new socket */
    zhashx_t *acme_cache;         /* CA name -> s_acme_t, for jobs of "@acme" clients */
    uint64_t connected_at;        /* monotonic ms of the last (re)connect */
    uint64_t reconnect_at;        /* monotonic ms of a reconnect put off, or 0 */
    const char *running;          /* job type of the handler running now, or NULL */
    int64_t held;                 /* jobs received and not yet answered */
    bool broker_up;               /* the broker was heard from since the last (re)connect */
    int probe_ms;                 /* [metrics] health_interval_ms: idle health probes */
    uint64_t probe_at;            /* monotonic ms of the next probe */
    cf_metric_t *m_held;          /* certfleet_worker_in_flight */
    cf_metric_t *m_broker;        /* certfleet_worker_broker_connected */
};

/* ---- metrics and health (docs/metrics.md) ---------------------------------------------- */

static void s_lock_contended(const char *lock)
{
    char value[80], labels[96];
    cf_metrics_label_escape(lock, value, sizeof value);
    snprintf(labels, sizeof labels, "lock=\"%s\"", value);
    cf_metric_add(cf_metrics_counter("certfleet_lock_contention_total",
                                     "Locks found held by another worker (job: a job id in "
                                     "progress elsewhere; a job type: a handler had to wait)",
                                     labels),
                  1);
}

static void s_broker_health(cf_worker_t *self, bool up, const char *detail)
{
    if (self->broker_up == up)
        return;
    self->broker_up = up;
    cf_metric_set(self->m_broker, up ? 1 : 0);
    cf_health_set("broker", up, detail);
}

static int s_send_frames(cf_worker_t *self, int command, const void *a, size_t alen, const void *b,
                         size_t blen, const void *c, size_t clen);

/* A Redis command a handler wants run only once its transaction has committed. */
typedef struct {
    int argc;
    char **argv;
    size_t *lens;
    unsigned char *value; /* or a large value for argv[0] (the key), owned */
    size_t offset;        /* where it starts in VALUE */
    size_t value_len;     /* its length */
    int64_t exat;         /* its expiry */
} s_deferred_t;

static void s_deferred_free(void **item)
{
    s_deferred_t *d = *item;
    if (!d)
        return;
    for (int i = 0; i < d->argc; i++)
        free(d->argv[i]);
    free(d->argv);
    free(d->lens);
    free(d->value);
    free(d);
    *item = NULL;
}

int cf_handler_defer_redis_value(cf_handler_ctx_t *ctx, const char *key, unsigned char *buf,
                                 size_t offset, size_t len, int64_t exat)
{
    if (cf_handler_defer_redis(ctx, 1, &key, NULL) != 0) {
        free(buf);
        return -1;
    }
    s_deferred_t *d = zlistx_last(ctx->worker->deferred);
    d->value = buf;
    d->offset = offset;
    d->value_len = len;
    d->exat = exat;
    return 0;
}

/* Write a large deferred value piece by piece: SET key:tmp, APPEND..., EXPIREAT, RENAME.
 * Each piece is its own round trip, so hiredis never buffers more than one. 0 or -1. */
static int s_deferred_value(cf_worker_t *self, s_deferred_t *d)
{
    enum { PIECE = 1 << 20 };
    char tmp[512], exat[24];
    snprintf(tmp, sizeof tmp, "%s:tmp:%s", d->argv[0], self->token);
    snprintf(exat, sizeof exat, "%lld", (long long)d->exat);
    size_t done = 0;
    do {
        size_t n = d->value_len - done < PIECE ? d->value_len - done : PIECE;
        const char *argv[3] = {done ? "APPEND" : "SET", tmp,
                               (const char *)d->value + d->offset + done};
        size_t lens[3] = {strlen(argv[0]), strlen(tmp), n};
        redisReply *r = cf_redis_commandargv(self->redis, 3, argv, lens);
        if (!r)
            return -1;
        freeReplyObject(r);
        done += n;
    } while (done < d->value_len);
    redisReply *r = cf_redis_command(self->redis, "EXPIREAT %s %s", tmp, exat);
    if (!r)
        return -1;
    freeReplyObject(r);
    r = cf_redis_command(self->redis, "RENAME %s %s", tmp, d->argv[0]);
    if (!r)
        return -1;
    freeReplyObject(r);
    return 0;
}

int cf_handler_defer_redis(cf_handler_ctx_t *ctx, int argc, const char **argv,
                           const size_t *argvlen)
{
    cf_worker_t *self = ctx->worker;
    s_deferred_t *d = calloc(1, sizeof *d);
    if (!d)
        return -1;
    d->argv = calloc((size_t)argc, sizeof *d->argv);
    d->lens = calloc((size_t)argc, sizeof *d->lens);
    if (!d->argv || !d->lens) {
        void *item = d;
        s_deferred_free(&item);
        return -1;
    }
    for (int i = 0; i < argc; i++) {
        size_t len = argvlen ? argvlen[i] : strlen(argv[i]);
        d->argv[i] = malloc(len + 1);
        if (!d->argv[i]) {
            d->argc = i;
            void *item = d;
            s_deferred_free(&item);
            return -1;
        }
        memcpy(d->argv[i], argv[i], len);
        d->argv[i][len] = '\0';
        d->lens[i] = len;
    }
    d->argc = argc;
    zlistx_add_end(self->deferred, d);
    return 0;
}

/* Run the deferred Redis commands (after a commit, or after a pure handler), pipelined.
 * Redis is a cache here: a failure is logged, never undoes the commit. */
static void s_deferred_run(cf_worker_t *self)
{
    size_t n = zlistx_size(self->deferred);
    if (!n)
        return;
    size_t queued = 0, failed = 0, values = 0;
    for (s_deferred_t *d = zlistx_first(self->deferred); d; d = zlistx_next(self->deferred)) {
        if (d->value)
            values++;
        else if (cf_redis_appendargv(self->redis, d->argc, (const char **)d->argv, d->lens) == 0)
            queued++;
        else
            failed++;
    }
    for (size_t i = 0; i < queued; i++) {
        redisReply *r = cf_redis_get_reply(self->redis);
        if (!r) {
            failed += queued - i;
            cf_redis_disconnect(self->redis);
            break;
        }
        if (r->type == REDIS_REPLY_ERROR)
            failed++;
        freeReplyObject(r);
    }
    for (s_deferred_t *d = zlistx_first(self->deferred); values && d;
         d = zlistx_next(self->deferred)) {
        if (d->value && s_deferred_value(self, d) != 0)
            failed++;
    }
    if (failed)
        cf_log_warn("%zu of %zu cache writes to Redis failed after a commit: %s", failed, n,
                    cf_redis_errstr(self->redis));
    zlistx_purge(self->deferred);
}

int cf_handler_lock_wait(cf_handler_ctx_t *ctx, cf_lock_t *lock, int wait_ms)
{
    uint64_t until = cf_mono_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
    for (bool first = true;; first = false) {
        int got = cf_lock_acquire(lock);
        if (got == 0 && first)
            s_lock_contended(ctx->worker->running ? ctx->worker->running : "other");
        if (got != 0 || cf_mono_ms() >= until)
            return got;
        cf_worker_keepalive(ctx->worker);
        zclock_sleep(20);
    }
}

void cf_worker_keepalive(cf_worker_t *self)
{
    uint64_t now = cf_mono_ms();
    if (now >= self->hb_at) {
        s_send_frames(self, CF_PROTO_HEARTBEAT, NULL, 0, NULL, 0, NULL, 0);
        self->hb_at = now + (uint64_t)self->heartbeat_ms;
    }
    /* The broker's heartbeats wait unread while a handler runs: not missing. */
    self->broker_expiry = now + (uint64_t)self->heartbeat_ms * (uint64_t)self->liveness;
    /* A long job keeps its job locks: they expire only when their worker is gone. */
    if (self->nlocked > 0 && now >= self->renew_at) {
        if (cf_locks_renew(self->redis, self->locked, self->nlocked, self->token,
                           self->lock_ttl_ms) != 0)
            cf_log_warn("could not renew job locks: %s", cf_redis_errstr(self->redis));
        self->renew_at = now + (uint64_t)self->lock_ttl_ms / 3;
    }
}

static void s_task_destroy(s_task_t **task_p)
{
    s_task_t *task = *task_p;
    if (!task)
        return;
    cf_job_destroy(&task->job);
    free(task->reply);
    free(task);
    *task_p = NULL;
}

static void s_task_free(void **item)
{
    s_task_destroy((s_task_t **)item);
}

static void s_task_reply_error(s_task_t *task, const cf_error_t *err)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cf_reply_pack_error(&buf, task->id, err);
    task->ok = false;
    free(task->reply);
    task->reply_len = buf.size;
    task->reply = msgpack_sbuffer_release(&buf);
}

static void s_task_reply_code(s_task_t *task, const char *code, const char *message)
{
    cf_error_t err;
    cf_error_set(&err, code, "", "%s", message);
    s_task_reply_error(task, &err);
}

static const cf_handler_t *s_find(cf_worker_t *self, const char *type)
{
    for (const cf_handler_t *h = self->handlers; h->type; h++)
        if (strcmp(h->type, type) == 0)
            return h;
    return NULL;
}

static int s_send_frames(cf_worker_t *self, int command, const void *a, size_t alen, const void *b,
                         size_t blen, const void *c, size_t clen)
{
    uint8_t cmd = (uint8_t)command;
    int more_after_cmd = a ? ZMQ_SNDMORE : 0;
    /* Never wait for a peer: with no connection to the broker (down, or refusing our key)
     * a DEALER would block here for good. What is not sent is made up for: the broker's
     * silence brings a reconnect and READY, clients resend jobs whose reply got lost. */
    if (zmq_send(self->raw, CF_PROTO_WORKER, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0 ||
        zmq_send(self->raw, &cmd, 1, more_after_cmd) < 0)
        return -1;
    if (a && zmq_send(self->raw, a, alen, b ? ZMQ_SNDMORE : 0) < 0)
        return -1;
    if (b && zmq_send(self->raw, b, blen, c ? ZMQ_SNDMORE : 0) < 0)
        return -1;
    if (c && zmq_send(self->raw, c, clen, 0) < 0)
        return -1;
    return 0;
}

/* ---- authorization of "@acme" clients (docs/security.md) ----------------------------------- */

/* How long a CA's acme_enabled is trusted before it is read again. */
#define S_ACME_CACHE_MS 5000

typedef struct {
    bool enabled;   /* the CA exists and has acme_enabled */
    uint64_t until; /* monotonic ms after which it is read again */
} s_acme_t;

static void s_acme_free(void **item)
{
    free(*item);
    *item = NULL;
}

/* cf_curve_acme_fn on the worker's own connection: 1, 0 or -1 (database error). */
static int s_acme_enabled(void *arg, const char *ca)
{
    cf_worker_t *self = arg;
    uint64_t now = cf_mono_ms();
    s_acme_t *hit = zhashx_lookup(self->acme_cache, ca);
    if (hit && now < hit->until)
        return hit->enabled ? 1 : 0;
    const char *values[1] = {ca};
    PGresult *res = cf_pg_exec_params(
        self->pg, "SELECT acme_enabled FROM certificate_authorities WHERE name = $1", 1, values,
        NULL, NULL, 0);
    if (!res) {
        cf_log_error("could not read acme_enabled of CA \"%s\": %s", ca, cf_pg_errstr(self->pg));
        return -1;
    }
    bool enabled = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    PQclear(res);
    s_acme_t *entry = malloc(sizeof *entry);
    if (entry) {
        entry->enabled = enabled;
        entry->until = now + S_ACME_CACHE_MS;
        zhashx_update(self->acme_cache, ca, entry);
    }
    return enabled ? 1 : 0;
}

/* A REQUEST's sixth frame: check the job against it; on refusal the task gets its reply. */
static void s_authorize(cf_worker_t *self, s_task_t *task, const void *frame, size_t len)
{
    cf_error_t err = {0};
    int rc = cf_curve_check_auth(frame, len, task->job, s_acme_enabled, self, &err);
    if (rc == 0)
        return;
    if (rc == -1) {
        char hex[2 * CF_JOB_ID_SIZE + 1];
        cf_job_id_hex(task->id, hex);
        cf_log_warn("refused job \"%s\" of type \"%s\": %s", hex, cf_job_type(task->job),
                    err.message);
    }
    s_task_reply_error(task, &err);
}

static int s_connect(cf_worker_t *self)
{
    zsock_destroy(&self->sock);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock)
        return -1;
    self->raw = zsock_resolve(self->sock);
    int linger = 0, hwm = 1000000;
    zmq_setsockopt(self->raw, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->raw, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->raw, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* A new socket each time: the keys go on it before the connect starts the handshake. */
    if (cf_curve_apply(self->curve, self->raw) != 0) {
        cf_log_error("could not apply the CURVE keys: %s", zmq_strerror(zmq_errno()));
        return -1;
    }
    self->connected_at = cf_mono_ms();
    self->reconnect_at = 0;
    if (zsock_connect(self->sock, "%s", self->endpoint) != 0) {
        cf_log_error("could not connect to broker \"%s\": %s", self->endpoint,
                     zmq_strerror(zmq_errno()));
        return -1;
    }
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    size_t n = 0;
    for (const cf_handler_t *h = self->handlers; h->type; h++)
        n++;
    msgpack_pack_map(&pk, 4);
    cf_msgpack_pack_cstr(&pk, "name");
    cf_msgpack_pack_cstr(&pk, self->name);
    cf_msgpack_pack_cstr(&pk, "services");
    msgpack_pack_array(&pk, n);
    for (const cf_handler_t *h = self->handlers; h->type; h++)
        cf_msgpack_pack_cstr(&pk, h->type);
    cf_msgpack_pack_cstr(&pk, "credit");
    msgpack_pack_uint32(&pk, (uint32_t)self->credit);
    cf_msgpack_pack_cstr(&pk, "pid");
    msgpack_pack_uint32(&pk, (uint32_t)getpid());
    int rc = s_send_frames(self, CF_PROTO_READY, buf.data, buf.size, NULL, 0, NULL, 0);
    msgpack_sbuffer_destroy(&buf);
    uint64_t now = cf_mono_ms();
    self->hb_at = now + (uint64_t)self->heartbeat_ms;
    self->broker_expiry = now + (uint64_t)self->heartbeat_ms * (uint64_t)self->liveness;
    cf_log_info("worker \"%s\" connected to broker \"%s\" with credit %d", self->name,
                self->endpoint, self->credit);
    return rc;
}

cf_worker_t *cf_worker_new(cf_config_t *config, const char *program, const cf_handler_t *handlers,
                           void *state)
{
    cf_worker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->handlers = handlers;
    self->state = state;
    char host[128] = "localhost";
    gethostname(host, sizeof host - 1);
    const char *name = cf_config_get(config, "worker", "name", NULL);
    self->name = name ? strdup(name) : zsys_sprintf("%s@%s:%d", program, host, (int)getpid());
    self->endpoint = strdup(cf_config_get(config, "broker", "endpoint", CF_PROTO_ENDPOINT_DEFAULT));
    self->heartbeat_ms =
        (int)cf_config_get_int(config, "broker", "heartbeat_ms", CF_PROTO_HEARTBEAT_MS);
    self->liveness = (int)cf_config_get_int(config, "broker", "liveness", CF_PROTO_LIVENESS);
    self->credit = (int)cf_config_get_int(config, "worker", "credit", 64);
    self->batch_max = (int)cf_config_get_int(config, "worker", "batch_max", 64);
    self->lock_ttl_ms = (int)cf_config_get_int(config, "worker", "job_lock_ttl_ms", 15000);
    if (self->heartbeat_ms < 10)
        self->heartbeat_ms = 10;
    if (self->liveness < 2)
        self->liveness = 2;
    if (self->credit < 1)
        self->credit = 1;
    if (self->batch_max < 1)
        self->batch_max = 1;
    self->probe_ms = (int)cf_config_get_int(config, "metrics", "health_interval_ms", 5000);
    self->m_held = cf_metrics_gauge("certfleet_worker_in_flight",
                                    "Jobs this worker has received and not answered yet", "");
    self->m_broker = cf_metrics_gauge("certfleet_worker_broker_connected",
                                      "1 while the broker is heard from, else 0", "");
    uint8_t tok[16];
    cf_job_id_random(tok);
    cf_job_id_hex(tok, self->token);
    self->pg = cf_pg_new_from_config(config);
    self->redis = cf_redis_new_from_config(config);
    char err[512] = "";
    self->curve = cf_curve_new(config, CF_CURVE_CLIENT, err, sizeof err);
    if (!self->curve)
        cf_log_error("%s", err);
    else if (cf_curve_insecure(self->curve))
        cf_log_warn("[curve] insecure = true: the connection to the broker is neither encrypted "
                    "nor authenticated (for local development only)");
    self->acme_cache = zhashx_new();
    self->queue = zlistx_new();
    self->deferred = zlistx_new();
    if (!self->name || !self->endpoint || !self->pg || !self->redis || !self->queue ||
        !self->deferred || !self->curve || !self->acme_cache) {
        cf_worker_destroy(&self);
        return NULL;
    }
    zlistx_set_destructor(self->queue, s_task_free);
    zlistx_set_destructor(self->deferred, s_deferred_free);
    zhashx_set_destructor(self->acme_cache, s_acme_free);
    return self;
}

void cf_worker_destroy(cf_worker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_worker_t *self = *self_p;
    zlistx_destroy(&self->queue);
    zlistx_destroy(&self->deferred);
    zsock_destroy(&self->sock);
    cf_pg_destroy(&self->pg);
    cf_redis_destroy(&self->redis);
    cf_curve_destroy(&self->curve);
    zhashx_destroy(&self->acme_cache);
    free(self->name);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

/* Read every message waiting on the socket. */
static void s_receive(cf_worker_t *self)
{
    for (;;) {
        zmq_msg_t frames[CF_PROTO_MAX_FRAMES];
        int n = 0;
        bool more = true;
        while (more) {
            zmq_msg_t *f = n < CF_PROTO_MAX_FRAMES ? &frames[n] : NULL;
            zmq_msg_t scratch;
            if (!f)
                f = &scratch;
            zmq_msg_init(f);
            if (zmq_msg_recv(f, self->raw, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                zmq_msg_close(f);
                break;
            }
            more = zmq_msg_more(f);
            if (f == &scratch)
                zmq_msg_close(f);
            else
                n++;
        }
        if (n == 0)
            return;
        self->broker_expiry =
            cf_mono_ms() + (uint64_t)self->heartbeat_ms * (uint64_t)self->liveness;
        s_broker_health(self, true, self->endpoint);
        if (n >= 2 && zmq_msg_size(&frames[0]) == 4 &&
            memcmp(zmq_msg_data(&frames[0]), CF_PROTO_WORKER, 4) == 0 &&
            zmq_msg_size(&frames[1]) == 1) {
            uint8_t cmd = *(uint8_t *)zmq_msg_data(&frames[1]);
            /* A sixth frame is the broker's authorization of a restricted client's job. */
            if (cmd == CF_PROTO_REQUEST && (n == 5 || n == 6) &&
                zmq_msg_size(&frames[2]) == CF_JOB_ID_SIZE && zmq_msg_size(&frames[3]) <= 255) {
                s_task_t *task = calloc(1, sizeof *task);
                if (task) {
                    memcpy(task->id, zmq_msg_data(&frames[2]), CF_JOB_ID_SIZE);
                    task->received_ns = cf_metrics_clock_ns();
                    cf_metric_set(self->m_held, ++self->held);
                    task->route_len = zmq_msg_size(&frames[3]);
                    memcpy(task->route, zmq_msg_data(&frames[3]), task->route_len);
                    cf_error_t err = {0};
                    task->job = cf_job_decode(zmq_msg_data(&frames[4]), zmq_msg_size(&frames[4]),
                                              &err, NULL, NULL);
                    if (!task->job)
                        s_task_reply_error(task, &err);
                    else if (n == 6)
                        s_authorize(self, task, zmq_msg_data(&frames[5]), zmq_msg_size(&frames[5]));
                    zlistx_add_end(self->queue, task);
                }
            } else if (cmd == CF_PROTO_DISCONNECT) {
                cf_log_warn("broker asked worker \"%s\" to reconnect", self->name);
                s_broker_health(self, false, "broker asked for a reconnect");
                /* Sent away right after announcing (the broker refuses this key as a worker's):
                 * try again a heartbeat later, not in a tight loop. */
                if (cf_mono_ms() - self->connected_at >= (uint64_t)self->heartbeat_ms)
                    s_connect(self);
                else
                    self->reconnect_at = self->connected_at + (uint64_t)self->heartbeat_ms;
            } else if (cmd != CF_PROTO_HEARTBEAT) {
                cf_log_warn("dropped a malformed message from the broker (command %u)", cmd);
            }
        }
        for (int i = 0; i < n; i++)
            zmq_msg_close(&frames[i]);
    }
}

/* certfleet_jobs_total and certfleet_job_duration_seconds for a reply about to go out. The
 * outcome is read from the reply itself: stored replies of repeated ids count as what they
 * said the first time. */
static void s_count_reply(cf_worker_t *self, s_task_t *task)
{
    const char *type = task->job ? cf_job_type(task->job) : NULL;
    const cf_handler_t *h = NULL;
    for (const cf_handler_t *x = self->handlers; type && x->type; x++)
        if (strcmp(x->type, type) == 0)
            h = x;
    /* Only served types become labels: a label per stray type would grow without bound. */
    const char *service = h ? h->type : "other";
    char outcome[CF_ERROR_CODE_MAX], labels[160];
    cf_metrics_reply_outcome(task->reply, task->reply_len, outcome, sizeof outcome);
    snprintf(labels, sizeof labels, "service=\"%s\",outcome=\"%s\"", service, outcome);
    cf_metric_add(cf_metrics_counter("certfleet_jobs_total",
                                     "Jobs answered by this worker, by job type and outcome "
                                     "(ok or the error code)",
                                     labels),
                  1);
    if (h) {
        snprintf(labels, sizeof labels, "service=\"%s\"", service);
        cf_metric_observe(cf_metrics_histogram("certfleet_job_duration_seconds",
                                               "Time from a job's arrival at the worker to its "
                                               "reply",
                                               labels),
                          cf_metrics_since(task->received_ns));
    }
    if (self->held > 0)
        self->held--;
    cf_metric_set(self->m_held, self->held);
}

static void s_send_reply(cf_worker_t *self, s_task_t *task)
{
    s_count_reply(self, task);
    if (s_send_frames(self, CF_PROTO_REPLY, task->id, CF_JOB_ID_SIZE, task->route, task->route_len,
                      task->reply, task->reply_len) != 0)
        cf_log_warn("could not send a reply to the broker: %s", zmq_strerror(zmq_errno()));
}

/* Run the handler and keep its reply in the task. Returns 0, -1 (error reply, nothing
 * written) or CF_HANDLER_ABORT. */
static int s_call(cf_worker_t *self, const cf_handler_t *h, s_task_t *task)
{
    cf_handler_ctx_t ctx = {self, self->config, self->pg, self->redis, self->name, self->state};
    msgpack_sbuffer result;
    msgpack_sbuffer_init(&result);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &result, msgpack_sbuffer_write);
    cf_error_t err = {0};
    self->running = h->type;
    int rc = h->fn(&ctx, task->job, &pk, &err);
    self->running = NULL;
    if (rc == 0) {
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        cf_reply_pack_ok(&buf, task->id, result.data, result.size);
        task->ok = true;
        free(task->reply);
        task->reply_len = buf.size;
        task->reply = msgpack_sbuffer_release(&buf);
    } else if (rc == CF_HANDLER_ABORT) {
        char hex[2 * CF_JOB_ID_SIZE + 1];
        cf_job_id_hex(task->id, hex);
        cf_log_error("job \"%s\" of type \"%s\" aborted its transaction: %s", hex, h->type,
                     err.message);
    } else {
        if (!cf_error_isset(&err))
            cf_error_set(&err, "internal", "", "the job failed");
        s_task_reply_error(task, &err);
        rc = -1;
    }
    msgpack_sbuffer_destroy(&result);
    return rc;
}

static char *s_join_hex(s_task_t **tasks, size_t n, bool replies)
{
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += (replies ? 2 * tasks[i]->reply_len : 2 * CF_JOB_ID_SIZE) + 1;
    char *out = malloc(total + 1), *p = out;
    if (!out)
        return NULL;
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        const uint8_t *b = replies ? tasks[i]->reply : tasks[i]->id;
        size_t len = replies ? tasks[i]->reply_len : CF_JOB_ID_SIZE;
        if (i)
            *p++ = ',';
        for (size_t j = 0; j < len; j++) {
            *p++ = digits[b[j] >> 4];
            *p++ = digits[b[j] & 15];
        }
    }
    *p = '\0';
    return out;
}

/* Fill in the stored replies of jobs that already ran. 0 or -1 (database error). */
static int s_lookup_stored(cf_worker_t *self, s_task_t **tasks, size_t n)
{
    char *ids = s_join_hex(tasks, n, false);
    if (!ids)
        return -1;
    const char *values[1] = {ids};
    PGresult *res =
        cf_pg_exec_prepared(self->pg, "cf_job_results_lookup", 1, values, NULL, NULL, 1);
    free(ids);
    if (!res)
        return -1;
    for (int r = 0; r < PQntuples(res); r++) {
        if (PQgetlength(res, r, 0) != CF_JOB_ID_SIZE)
            continue;
        const char *id = PQgetvalue(res, r, 0);
        for (size_t i = 0; i < n; i++) {
            if (memcmp(tasks[i]->id, id, CF_JOB_ID_SIZE) != 0)
                continue;
            size_t len = (size_t)PQgetlength(res, r, 1);
            free(tasks[i]->reply);
            tasks[i]->reply = malloc(len);
            if (tasks[i]->reply)
                memcpy(tasks[i]->reply, PQgetvalue(res, r, 1), len);
            tasks[i]->reply_len = tasks[i]->reply ? len : 0;
        }
    }
    PQclear(res);
    return 0;
}

/* Run N durable jobs of one handler in one transaction with their job_results rows.
 * 0 on commit; -1 when rolled back (replies cleared). */
static int s_execute(cf_worker_t *self, const cf_handler_t *h, s_task_t **tasks, size_t n)
{
    zlistx_purge(self->deferred);
    if (cf_pg_begin(self->pg) != 0)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (s_call(self, h, tasks[i]) == CF_HANDLER_ABORT)
            goto rollback;
    }
    char *ids = s_join_hex(tasks, n, false);
    char *replies = s_join_hex(tasks, n, true);
    char *statuses = malloc(6 * n + 1), *p = statuses;
    for (size_t i = 0; statuses && i < n; i++)
        p += sprintf(p, "%s%s", i ? "," : "", tasks[i]->ok ? "ok" : "error");
    int rc = -1;
    if (ids && replies && statuses) {
        const char *values[5] = {ids, h->type, statuses, replies, self->name};
        PGresult *res =
            cf_pg_exec_prepared(self->pg, "cf_job_results_insert", 5, values, NULL, NULL, 0);
        if (res) {
            PQclear(res);
            rc = cf_pg_commit(self->pg);
        }
    }
    free(ids);
    free(replies);
    free(statuses);
    if (rc == 0) {
        cf_health_set("postgres", true, "");
        s_deferred_run(self);
        return 0;
    }
rollback:
    zlistx_purge(self->deferred);
    if (cf_pg_in_transaction(self->pg))
        cf_pg_rollback(self->pg);
    for (size_t i = 0; i < n; i++) {
        free(tasks[i]->reply);
        tasks[i]->reply = NULL;
        tasks[i]->reply_len = 0;
    }
    return -1;
}

static void s_run_durable(cf_worker_t *self, const cf_handler_t *h, s_task_t **tasks, size_t n)
{
    const char *keys[n];
    char keybuf[n][48];
    bool acquired[n];
    for (size_t i = 0; i < n; i++) {
        char hex[2 * CF_JOB_ID_SIZE + 1];
        cf_job_id_hex(tasks[i]->id, hex);
        snprintf(keybuf[i], sizeof keybuf[i], "job:%s", hex);
        keys[i] = keybuf[i];
    }
    bool locks_on =
        cf_locks_acquire(self->redis, keys, n, self->token, self->lock_ttl_ms, acquired) == 0;
    if (!locks_on) {
        /* Without Redis the job_results primary key still keeps jobs exactly-once; the lock
         * only saves running a job twice at the same time. */
        if (!self->redis_warned)
            cf_log_warn("job locks are off, Redis failed: %s", cf_redis_errstr(self->redis));
        self->redis_warned = true;
        cf_health_set("redis", false, cf_redis_errstr(self->redis));
    } else {
        self->redis_warned = false;
        cf_health_set("redis", true, "");
    }
    s_task_t *run[n];
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        tasks[i]->locked = locks_on && acquired[i];
        if (locks_on && !acquired[i]) {
            s_lock_contended("job");
            s_task_reply_code(tasks[i], "in_progress", "job is running on another worker");
        } else
            run[m++] = tasks[i];
    }
    if (m > 0 && s_lookup_stored(self, run, m) != 0) {
        cf_log_error("could not look up job results: %s", cf_pg_errstr(self->pg));
        cf_health_set("postgres", false, cf_pg_errstr(self->pg));
        for (size_t i = 0; i < m; i++)
            s_task_reply_code(run[i], "unavailable", "the database is unavailable");
        m = 0;
    }
    size_t k = 0;
    for (size_t i = 0; i < m; i++)
        if (!run[i]->reply)
            run[k++] = run[i];
    size_t nl = 0;
    for (size_t i = 0; i < n; i++)
        if (tasks[i]->locked)
            keys[nl++] = keys[i];
    self->locked = keys;
    self->nlocked = nl;
    self->renew_at = cf_mono_ms() + (uint64_t)self->lock_ttl_ms / 3;
    if (k > 0 && s_execute(self, h, run, k) != 0) {
        /* One bad job must not fail its batch-mates: run each alone. */
        for (size_t i = 0; i < k; i++) {
            if (k > 1 && s_execute(self, h, &run[i], 1) == 0)
                continue;
            bool dup = strcmp(cf_pg_sqlstate(self->pg), "23505") == 0;
            if (dup && s_lookup_stored(self, &run[i], 1) == 0 && run[i]->reply)
                continue;
            cf_log_error("job of type \"%s\" failed in the database: %s", h->type,
                         cf_pg_errstr(self->pg));
            s_task_reply_code(run[i], "unavailable", "the database is unavailable");
        }
    }
    self->locked = NULL;
    self->nlocked = 0;
    if (nl > 0)
        cf_locks_release(self->redis, keys, nl, self->token);
}

static bool s_expired(const s_task_t *task)
{
    uint64_t deadline = cf_job_deadline_ms(task->job);
    return deadline != 0 && cf_now_ms() > deadline;
}

/* Take the first queued job (and, for batch handlers, its queued peers) and answer them. */
static void s_process(cf_worker_t *self)
{
    s_task_t *task = zlistx_detach(self->queue, NULL);
    if (!task)
        return;
    const cf_handler_t *h = task->job ? s_find(self, cf_job_type(task->job)) : NULL;
    if (task->reply) {
        /* Decode error: the reply is already made. */
    } else if (!h) {
        cf_error_t err;
        cf_error_set(&err, "unknown_job_type", "type", "worker \"%s\" does not serve \"%s\"",
                     self->name, cf_job_type(task->job));
        s_task_reply_error(task, &err);
    } else if (s_expired(task)) {
        s_task_reply_code(task, "deadline_exceeded", "deadline passed before the job ran");
    } else if (!(h->flags & CF_HANDLER_DURABLE)) {
        zlistx_purge(self->deferred);
        s_call(self, h, task);
        s_deferred_run(self);
        if (!task->reply)
            s_task_reply_code(task, "internal", "the job failed");
    } else {
        size_t cap = (h->flags & CF_HANDLER_BATCH) ? (size_t)self->batch_max : 1;
        s_task_t *batch[cap];
        size_t n = 0;
        batch[n++] = task;
        /* Gather queued jobs of the same type that are still in time. */
        void *handle = zlistx_first(self->queue) ? zlistx_cursor(self->queue) : NULL;
        while (handle && n < cap) {
            s_task_t *t = zlistx_handle_item(handle);
            void *next = zlistx_next(self->queue) ? zlistx_cursor(self->queue) : NULL;
            if (t->job && !t->reply && strcmp(cf_job_type(t->job), h->type) == 0 && !s_expired(t)) {
                zlistx_detach(self->queue, handle);
                batch[n++] = t;
            }
            handle = next;
        }
        s_run_durable(self, h, batch, n);
        for (size_t i = 1; i < n; i++) {
            s_send_reply(self, batch[i]);
            s_task_destroy(&batch[i]);
        }
    }
    s_send_reply(self, task);
    s_task_destroy(&task);
}

/* With metrics on, an idle worker asks PostgreSQL and Redis now and then, so that /health
 * shows a lost server before a job finds out (and a lost connection is renewed early). */
static void s_probe(cf_worker_t *self)
{
    if (self->probe_ms <= 0 || cf_mono_ms() < self->probe_at)
        return;
    /* A server that does not answer holds us up to its timeout: heartbeat around it. */
    cf_worker_keepalive(self);
    if (cf_pg_exec(self->pg, "SELECT 1") == 0)
        cf_health_set("postgres", true, "");
    else
        cf_health_set("postgres", false, cf_pg_errstr(self->pg));
    redisReply *r = cf_redis_command(self->redis, "PING");
    cf_health_set("redis", r != NULL, r ? "" : cf_redis_errstr(self->redis));
    if (r)
        freeReplyObject(r);
    cf_worker_keepalive(self);
    self->probe_at = cf_mono_ms() + (uint64_t)self->probe_ms;
}

static void s_heartbeat(cf_worker_t *self)
{
    uint64_t now = cf_mono_ms();
    if (self->reconnect_at && now >= self->reconnect_at) {
        s_connect(self);
        return;
    }
    if (now >= self->broker_expiry) {
        cf_log_warn("broker \"%s\" is silent, reconnecting", self->endpoint);
        s_broker_health(self, false, "broker silent, reconnecting");
        s_connect(self);
        return;
    }
    if (now >= self->hb_at) {
        s_send_frames(self, CF_PROTO_HEARTBEAT, NULL, 0, NULL, 0, NULL, 0);
        self->hb_at = now + (uint64_t)self->heartbeat_ms;
    }
}

int cf_worker_run(cf_worker_t *self)
{
    cf_pg_prepare(self->pg, "cf_job_results_lookup",
                  "SELECT id, reply FROM job_results WHERE id = ANY (SELECT decode(x, 'hex') "
                  "FROM unnest(string_to_array($1, ',')) AS x)");
    cf_pg_prepare(self->pg, "cf_job_results_insert",
                  "INSERT INTO job_results (id, type, status, reply, worker) "
                  "SELECT decode(t.i, 'hex'), $2, t.s, decode(t.r, 'hex'), $5 "
                  "FROM unnest(string_to_array($1, ','), string_to_array($3, ','), "
                  "string_to_array($4, ',')) AS t(i, s, r)");
    cf_metric_set(self->m_broker, 0);
    cf_health_set("broker", false, "waiting for the broker");
    if (cf_metrics_port() == 0)
        self->probe_ms = 0; /* nobody would see the result */
    if (s_connect(self) != 0)
        return -1;
    s_probe(self);
    while (!zsys_interrupted) {
        uint64_t now = cf_mono_ms();
        long wait =
            zlistx_size(self->queue) ? 0 : (long)(self->hb_at > now ? self->hb_at - now : 0);
        zmq_pollitem_t item = {self->raw, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, wait);
        if (rc < 0 && zmq_errno() != EINTR)
            break;
        s_receive(self);
        /* Run what is queued, heartbeating in between so that a long batch is not taken
         * for a dead worker. */
        while (zlistx_size(self->queue) && !zsys_interrupted) {
            s_process(self);
            s_heartbeat(self);
            s_receive(self);
        }
        s_heartbeat(self);
        if (!zlistx_size(self->queue))
            s_probe(self);
    }
    s_send_frames(self, CF_PROTO_DISCONNECT, NULL, 0, NULL, 0, NULL, 0);
    cf_log_info("worker \"%s\" stopping", self->name);
    return 0;
}

int cf_worker_main(int argc, char **argv, const char *program, const cf_handler_t *handlers,
                   void *state)
{
    const char *config_path = NULL, *name = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
            config_path = argv[++i];
        else if (strcmp(argv[i], "--name") == 0 && i + 1 < argc)
            name = argv[++i];
        else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            printf("usage: %s [--config FILE] [--name NAME]\nserves:", program);
            for (const cf_handler_t *h = handlers; h->type; h++)
                printf(" %s", h->type);
            printf("\n");
            return 0;
        } else {
            fprintf(stderr, "%s: unknown argument \"%s\"\n", program, argv[i]);
            return 2;
        }
    }
    char err[512] = "";
    cf_config_t *config = cf_config_load(config_path, err, sizeof err);
    if (!config) {
        fprintf(stderr, "%s: %s\n", program, err);
        return 1;
    }
    if (name)
        cf_config_set(config, "worker", "name", name);
    cf_log_configure(config, program);
    zsys_init();
    /* We handle SIGINT/SIGTERM through czmq's flag; no czmq log noise on stdout. */
    zsys_set_logstream(NULL);
    int rc = 1;
    if (cf_metrics_start(config, program) != 0) {
        cf_config_destroy(&config);
        return 1;
    }
    cf_worker_t *worker = cf_worker_new(config, program, handlers, state);
    if (worker) {
        rc = cf_worker_run(worker) == 0 ? 0 : 1;
        cf_worker_destroy(&worker);
    } else {
        cf_log_error("could not start %s", program);
    }
    cf_metrics_stop();
    cf_config_destroy(&config);
    return rc;
}
