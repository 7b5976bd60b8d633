/* cf_client: at-least-once job submission with resends under the same id. */
#include "cf_client.h"

#include <czmq.h>
#include <string.h>

#include "cf_log.h"
#include "cf_proto.h"

typedef struct {
    uint8_t id[CF_JOB_ID_SIZE]; /* job id */
    void *data;                 /* encoded job, resent as it is */
    size_t len;                 /* its length */
    uint64_t due;               /* monotonic ms at which to send again (or give up) */
    int attempts;               /* sends so far */
} s_pending_t;

struct _cf_client_t {
    zsock_t *sock;       /* DEALER connected to the broker */
    void *raw;           /* the libzmq socket behind it */
    int timeout_ms;      /* wait before a resend */
    int attempts;        /* sends in all */
    cf_curve_t *curve;   /* CURVE keys applied to the socket, or NULL (plain) */
    zhashx_t *pending;   /* hex id -> s_pending_t */
    uint64_t next_scan;  /* monotonic ms of the next look for overdue jobs */
    uint64_t resent;     /* counter */
    uint64_t duplicates; /* counter */
    int wake_fd;         /* cf_client_recv also returns when this is readable; -1: none */
};

/* Pause before resending a job that got a retryable reply. */
#define S_RETRY_PAUSE_MS 200
/* How often to look for overdue jobs: a scan walks every pending job. */
#define S_SCAN_MS 50

static void s_pending_free(void **item_p)
{
    s_pending_t *p = *item_p;
    if (p) {
        free(p->data);
        free(p);
        *item_p = NULL;
    }
}

cf_client_t *cf_client_new(const char *endpoint)
{
    return cf_client_new_curve(endpoint, NULL);
}

cf_client_t *cf_client_new_curve(const char *endpoint, cf_curve_t **curve_p)
{
    cf_client_t *self = calloc(1, sizeof *self);
    if (!self) {
        if (curve_p)
            cf_curve_destroy(curve_p);
        return NULL;
    }
    if (curve_p) {
        self->curve = *curve_p;
        *curve_p = NULL;
    }
    self->timeout_ms = 3000;
    self->attempts = 10;
    self->wake_fd = -1;
    self->pending = zhashx_new();
    zhashx_set_destructor(self->pending, s_pending_free);
    self->sock = zsock_new(ZMQ_DEALER);
    if (!self->sock)
        goto fail;
    self->raw = zsock_resolve(self->sock);
    /* A routing id of our own, so that the broker can route replies to us across its
     * restarts and our reconnects. It must not start with a zero byte (reserved). */
    uint8_t rid[16];
    cf_job_id_random(rid);
    rid[0] |= 0x80;
    zmq_setsockopt(self->raw, ZMQ_ROUTING_ID, rid, sizeof rid);
    int linger = 0, hwm = 1000000;
    zmq_setsockopt(self->raw, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->raw, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->raw, ZMQ_RCVHWM, &hwm, sizeof hwm);
    /* Keys go on before the connect: the handshake starts with it. */
    if (self->curve && cf_curve_apply(self->curve, self->raw) != 0) {
        cf_log_error("could not apply the CURVE keys: %s", zmq_strerror(zmq_errno()));
        goto fail;
    }
    if (zsock_connect(self->sock, "%s", endpoint) != 0) {
        cf_log_error("could not connect to broker \"%s\": %s", endpoint, zmq_strerror(zmq_errno()));
        goto fail;
    }
    return self;
fail:
    cf_client_destroy(&self);
    return NULL;
}

cf_client_t *cf_client_new_from_config(cf_config_t *cfg)
{
    char err[512] = "";
    cf_curve_t *curve = cf_curve_new(cfg, CF_CURVE_CLIENT, err, sizeof err);
    if (!curve) {
        cf_log_error("%s", err);
        return NULL;
    }
    /* Info, not a warning: the certfleet command makes a client per run and its standard
     * error is for the command's own messages; long-running processes warn at start. */
    if (cf_curve_insecure(curve))
        cf_log_info("[curve] insecure = true: jobs go to the broker unencrypted and "
                    "unauthenticated");
    cf_client_t *self = cf_client_new_curve(
        cf_config_get(cfg, "broker", "endpoint", CF_PROTO_ENDPOINT_DEFAULT), &curve);
    if (self) {
        self->timeout_ms = (int)cf_config_get_int(cfg, "client", "timeout_ms", 3000);
        self->attempts = (int)cf_config_get_int(cfg, "client", "attempts", 10);
    }
    return self;
}

void cf_client_destroy(cf_client_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_client_t *self = *self_p;
    zhashx_destroy(&self->pending);
    zsock_destroy(&self->sock);
    cf_curve_destroy(&self->curve);
    free(self);
    *self_p = NULL;
}

void cf_client_set_timeout(cf_client_t *self, int timeout_ms)
{
    self->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
}

void cf_client_set_attempts(cf_client_t *self, int attempts)
{
    self->attempts = attempts > 0 ? attempts : 1;
}

size_t cf_client_pending(cf_client_t *self)
{
    return zhashx_size(self->pending);
}

uint64_t cf_client_resent(cf_client_t *self)
{
    return self->resent;
}

uint64_t cf_client_duplicates(cf_client_t *self)
{
    return self->duplicates;
}

/* Send without blocking: with no broker connected the job simply waits for its resend. */
static void s_transmit(cf_client_t *self, s_pending_t *p)
{
    p->attempts++;
    p->due = cf_mono_ms() + (uint64_t)self->timeout_ms;
    if (zmq_send(self->raw, CF_PROTO_CLIENT, 4, ZMQ_SNDMORE | ZMQ_DONTWAIT) == 4)
        zmq_send(self->raw, p->data, p->len, ZMQ_DONTWAIT);
}

static int s_track(cf_client_t *self, const uint8_t *id, void *data, size_t len)
{
    char hex[2 * CF_JOB_ID_SIZE + 1];
    cf_job_id_hex(id, hex);
    if (zhashx_lookup(self->pending, hex)) {
        free(data);
        return -1;
    }
    s_pending_t *p = calloc(1, sizeof *p);
    if (!p) {
        free(data);
        return -1;
    }
    memcpy(p->id, id, CF_JOB_ID_SIZE);
    p->data = data;
    p->len = len;
    zhashx_insert(self->pending, hex, p);
    s_transmit(self, p);
    return 0;
}

int cf_client_send(cf_client_t *self, const uint8_t *id, const char *type, const void *params,
                   size_t params_len, uint64_t deadline_ms, uint8_t id_out[CF_JOB_ID_SIZE])
{
    uint8_t fresh[CF_JOB_ID_SIZE];
    if (!id) {
        cf_job_id_random(fresh);
        id = fresh;
    }
    if (id_out)
        memcpy(id_out, id, CF_JOB_ID_SIZE);
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cf_job_pack(&buf, id, type, deadline_ms, params, params_len);
    size_t len = buf.size;
    return s_track(self, id, msgpack_sbuffer_release(&buf), len);
}

int cf_client_send_raw(cf_client_t *self, const void *job, size_t len, cf_error_t *err)
{
    cf_job_t *decoded = cf_job_decode(job, len, err, NULL, NULL);
    if (!decoded)
        return -1;
    void *copy = malloc(len);
    int rc = -1;
    if (copy) {
        memcpy(copy, job, len);
        rc = s_track(self, cf_job_id(decoded), copy, len);
        if (rc != 0)
            cf_error_set(err, "duplicate_id", "id", "a job with this id is already pending");
    }
    cf_job_destroy(&decoded);
    return rc;
}

/* Resend overdue jobs; give up on those out of attempts (returned as a timeout reply). */
static cf_reply_t *s_scan(cf_client_t *self, uint64_t now)
{
    self->next_scan = now + S_SCAN_MS;
    s_pending_t *p = zhashx_first(self->pending);
    while (p) {
        if (now >= p->due) {
            if (p->attempts >= self->attempts) {
                cf_error_t err;
                cf_error_set(&err, "timeout", "", "no reply after %d attempts of %d ms",
                             p->attempts, self->timeout_ms);
                cf_reply_t *reply = cf_reply_new_error(p->id, &err);
                char hex[2 * CF_JOB_ID_SIZE + 1];
                cf_job_id_hex(p->id, hex);
                zhashx_delete(self->pending, hex);
                return reply;
            }
            self->resent++;
            s_transmit(self, p);
        }
        p = zhashx_next(self->pending);
    }
    return NULL;
}

static bool s_retryable(const cf_reply_t *reply)
{
    const cf_error_t *e = cf_reply_error(reply);
    return e && (strcmp(e->code, "in_progress") == 0 || strcmp(e->code, "unavailable") == 0);
}

/* Read one message if there is one; returns a final reply or NULL. */
static cf_reply_t *s_read(cf_client_t *self)
{
    zmq_msg_t frames[2];
    int n = 0;
    for (;;) {
        if (n == 2) {
            /* Too many frames: drain and drop. */
            zmq_msg_t extra;
            zmq_msg_init(&extra);
            zmq_msg_recv(&extra, self->raw, 0);
            int more = zmq_msg_more(&extra);
            zmq_msg_close(&extra);
            if (!more)
                break;
            continue;
        }
        zmq_msg_init(&frames[n]);
        if (zmq_msg_recv(&frames[n], self->raw, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&frames[n]);
            break;
        }
        n++;
        if (!zmq_msg_more(&frames[n - 1]))
            break;
    }
    cf_reply_t *reply = NULL;
    if (n == 2 && zmq_msg_size(&frames[0]) == 4 &&
        memcmp(zmq_msg_data(&frames[0]), CF_PROTO_CLIENT, 4) == 0) {
        cf_error_t err = {0};
        reply = cf_reply_decode(zmq_msg_data(&frames[1]), zmq_msg_size(&frames[1]), &err);
        if (!reply)
            cf_log_warn("dropped a malformed reply from the broker: %s", err.message);
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&frames[i]);
    if (!reply || !cf_reply_id(reply))
        return reply;
    char hex[2 * CF_JOB_ID_SIZE + 1];
    cf_job_id_hex(cf_reply_id(reply), hex);
    s_pending_t *p = zhashx_lookup(self->pending, hex);
    if (!p) {
        self->duplicates++;
        cf_reply_destroy(&reply);
        return NULL;
    }
    if (s_retryable(reply) && p->attempts < self->attempts) {
        /* Back off: a job held by a stopped worker stays locked until its lock's TTL. */
        uint64_t pause = (uint64_t)S_RETRY_PAUSE_MS * (uint64_t)p->attempts;
        if (pause > (uint64_t)self->timeout_ms)
            pause = (uint64_t)self->timeout_ms;
        p->due = cf_mono_ms() + pause;
        cf_reply_destroy(&reply);
        return NULL;
    }
    zhashx_delete(self->pending, hex);
    return reply;
}

cf_reply_t *cf_client_recv(cf_client_t *self, int timeout_ms)
{
    uint64_t start = cf_mono_ms();
    for (;;) {
        if (zhashx_size(self->pending) == 0)
            return NULL;
        cf_reply_t *reply = s_read(self);
        if (reply)
            return reply;
        uint64_t now = cf_mono_ms();
        if (now >= self->next_scan) {
            reply = s_scan(self, now);
            if (reply)
                return reply;
        }
        if (timeout_ms >= 0 && now - start >= (uint64_t)timeout_ms)
            return NULL;
        long wait = (long)(self->next_scan > now ? self->next_scan - now : 0);
        if (timeout_ms >= 0 && (long)(start + timeout_ms - now) < wait)
            wait = (long)(start + timeout_ms - now);
        zmq_pollitem_t items[2] = {{self->raw, 0, ZMQ_POLLIN, 0},
                                   {NULL, self->wake_fd, ZMQ_POLLIN, 0}};
        int rc = zmq_poll(items, self->wake_fd >= 0 ? 2 : 1, wait);
        if (rc < 0 && zmq_errno() == EINTR && zsys_interrupted)
            return NULL;
        if (self->wake_fd >= 0 && (items[1].revents & ZMQ_POLLIN))
            return NULL; /* woken: the owner has other work */
    }
}

void cf_client_set_wake_fd(cf_client_t *self, int fd)
{
    self->wake_fd = fd;
}

cf_reply_t *cf_client_call(cf_client_t *self, const char *type, const void *params,
                           size_t params_len, uint64_t deadline_ms)
{
    uint8_t id[CF_JOB_ID_SIZE];
    cf_error_t err;
    if (cf_client_send(self, NULL, type, params, params_len, deadline_ms, id) != 0) {
        cf_error_set(&err, "internal", "", "could not queue the job");
        return cf_reply_new_error(NULL, &err);
    }
    for (;;) {
        cf_reply_t *reply = cf_client_recv(self, -1);
        if (!reply) {
            if (zsys_interrupted) {
                cf_error_set(&err, "interrupted", "", "interrupted while waiting for the reply");
                return cf_reply_new_error(id, &err);
            }
            continue;
        }
        if (!cf_reply_id(reply) || memcmp(cf_reply_id(reply), id, CF_JOB_ID_SIZE) == 0)
            return reply;
        cf_reply_destroy(&reply);
    }
}
