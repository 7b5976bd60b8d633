/* cf_broker: one ROUTER socket, clients and workers on it, routing by job type.
 *
 * Jobs live in exactly one place: a service's queue, or a worker's in-flight list; the
 * jobs table finds them by id, which is how resends of a job that is already queued or
 * running are recognised and dropped (the reply will come once). */
#include "broker.h"

#include <czmq.h>
#include <string.h>
#include <unistd.h>

#include "cf_curve.h"
#include "cf_job.h"
#include "cf_log.h"
#include "cf_metrics.h"
#include "cf_msgpack.h"
#include "cf_proto.h"

#define S_ROUTE_MAX 255
#define S_TICK_MS   100
/* How often the allow-list directory is looked at for changes, and how soon again when a
 * key that is not in the table speaks (it may have just been added). */
#define S_GRANTS_CHECK_MS 2000
#define S_GRANTS_MISS_MS  200
/* /health fails when the loop has not ticked for this long. */
#define S_ROUTING_TTL_MS 5000

typedef struct s_service_t s_service_t;
typedef struct s_worker_t s_worker_t;

typedef struct {
    cf_job_t *job;                    /* the decoded job; its bytes are forwarded as they are */
    char key[2 * CF_JOB_ID_SIZE + 1]; /* hex id, key of the jobs table */
    uint8_t route[S_ROUTE_MAX];       /* the client's route */
    size_t route_len;                 /* its length */
    s_service_t *service;             /* where it queues */
    s_worker_t *worker;               /* who runs it, when in flight */
    void *handle;                     /* its node in the queue or in the worker's list */
    void *auth;                       /* REQUEST's authorization frame for the worker, or NULL */
    size_t auth_len;                  /* its length */
} s_job_t;

struct s_service_t {
    char *name;               /* job type */
    zlistx_t *queue;          /* s_job_t waiting, oldest first */
    zlistx_t *workers;        /* s_worker_t serving it, round-robin order */
    uint64_t requests;        /* jobs admitted */
    uint64_t replies;         /* replies forwarded */
    uint64_t busy;            /* jobs refused with busy */
    uint64_t expired;         /* jobs answered deadline_exceeded */
    uint64_t in_flight;       /* jobs held by workers */
    cf_metric_t *m_queue;     /* certfleet_broker_queue_depth */
    cf_metric_t *m_workers;   /* certfleet_broker_workers */
    cf_metric_t *m_in_flight; /* certfleet_broker_in_flight */
};

struct s_worker_t {
    uint8_t route[S_ROUTE_MAX];    /* routing id */
    size_t route_len;              /* its length */
    char key[2 * S_ROUTE_MAX + 1]; /* hex routing id, key of the workers table */
    char *name;                    /* announced name */
    uint32_t pid;                  /* announced pid */
    zlistx_t *services;            /* s_service_t served */
    uint32_t credit;               /* jobs it may hold */
    uint32_t in_flight;            /* jobs it holds */
    zlistx_t *jobs;                /* s_job_t it holds */
    uint64_t expiry;               /* monotonic ms after which it counts as dead */
    char user[41];                 /* its CURVE public key (Z85), "" when insecure */
};

struct _cf_broker_t {
    cf_config_t *config;       /* borrowed */
    char *endpoint;            /* bind address */
    int heartbeat_ms;          /* heartbeat interval */
    int liveness;              /* heartbeats missed before a worker is dropped */
    size_t queue_max;          /* bound of each service queue */
    zsock_t *sock;             /* ROUTER */
    void *raw;                 /* libzmq socket */
    zhashx_t *services;        /* name -> s_service_t */
    zhashx_t *workers;         /* hex route -> s_worker_t */
    zhashx_t *jobs;            /* hex id -> s_job_t */
    uint64_t started;          /* monotonic ms at start */
    uint64_t hb_at;            /* next heartbeat to workers */
    uint64_t tick_at;          /* next expiry and deadline sweep */
    uint64_t received;         /* jobs received */
    uint64_t answered;         /* replies sent to clients */
    uint64_t duplicates;       /* resends of queued or running jobs dropped */
    uint64_t malformed;        /* messages refused */
    uint64_t requeued;         /* jobs moved from a dead worker to the queue */
    uint64_t busy;             /* jobs refused with busy */
    uint64_t expired;          /* jobs answered deadline_exceeded */
    cf_metric_t *m_requeued;   /* certfleet_broker_requeued_total */
    cf_metric_t *m_duplicates; /* certfleet_broker_duplicates_total */

    /* CURVE and grants (docs/security.md) */
    cf_curve_t *curve;       /* [curve] keys of the ROUTER socket */
    zactor_t *auth;          /* zauth: ZAP handler admitting the keys of clients_dir */
    cf_grants_t *grants;     /* key -> grant, from clients_dir; NULL when insecure */
    uint64_t grants_at;      /* monotonic ms of the next look at clients_dir */
    uint64_t grants_miss_at; /* monotonic ms before which an unknown key causes no look */
    uint64_t forbidden;      /* messages refused by the grants */
};

static void s_hex(const uint8_t *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[data[i] >> 4];
        out[2 * i + 1] = digits[data[i] & 15];
    }
    out[2 * len] = '\0';
}

static void s_service_free(void **item)
{
    s_service_t *svc = *item;
    if (!svc)
        return;
    zlistx_destroy(&svc->queue);
    zlistx_destroy(&svc->workers);
    free(svc->name);
    free(svc);
    *item = NULL;
}

static s_service_t *s_service_require(cf_broker_t *self, const char *name)
{
    s_service_t *svc = zhashx_lookup(self->services, name);
    if (svc)
        return svc;
    svc = calloc(1, sizeof *svc);
    if (!svc)
        return NULL;
    svc->name = strdup(name);
    svc->queue = zlistx_new();
    svc->workers = zlistx_new();
    /* Service names are valid job types: nothing in them needs escaping. */
    char labels[CF_JOB_TYPE_MAX + 16];
    snprintf(labels, sizeof labels, "service=\"%s\"", name);
    svc->m_queue = cf_metrics_gauge("certfleet_broker_queue_depth",
                                    "Jobs waiting in the broker for a worker", labels);
    svc->m_workers =
        cf_metrics_gauge("certfleet_broker_workers", "Workers serving the job type", labels);
    svc->m_in_flight = cf_metrics_gauge("certfleet_broker_in_flight",
                                        "Jobs handed to workers and not answered yet", labels);
    zhashx_insert(self->services, name, svc);
    return svc;
}

/* certfleet_broker_jobs_total{service,outcome}. SERVICE is a job type the broker serves or
 * defines, else "other": a label per stray type would grow without bound. */
static void s_count_job(const char *service, const char *outcome)
{
    char labels[CF_JOB_TYPE_MAX + CF_ERROR_CODE_MAX + 32];
    snprintf(labels, sizeof labels, "service=\"%s\",outcome=\"%s\"", service ? service : "other",
             outcome);
    cf_metric_add(cf_metrics_counter("certfleet_broker_jobs_total",
                                     "Jobs answered through the broker, by job type and outcome "
                                     "(ok or the error code)",
                                     labels),
                  1);
}

/* ---- sending ----------------------------------------------------------------------- */

static void s_send_client(cf_broker_t *self, const uint8_t *route, size_t route_len,
                          const void *body, size_t len)
{
    if (zmq_send(self->raw, route, route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send(self->raw, CF_PROTO_CLIENT, 4, ZMQ_SNDMORE);
    zmq_send(self->raw, body, len, 0);
    self->answered++;
}

static void s_reply_error(cf_broker_t *self, const uint8_t *route, size_t route_len,
                          const uint8_t *id, const cf_error_t *err)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    cf_reply_pack_error(&buf, id, err);
    s_send_client(self, route, route_len, buf.data, buf.size);
    msgpack_sbuffer_destroy(&buf);
}

static void s_send_worker(cf_broker_t *self, s_worker_t *w, uint8_t cmd, s_job_t *job)
{
    if (zmq_send(self->raw, w->route, w->route_len, ZMQ_SNDMORE | ZMQ_DONTWAIT) < 0)
        return;
    zmq_send(self->raw, CF_PROTO_WORKER, 4, ZMQ_SNDMORE);
    zmq_send(self->raw, &cmd, 1, job ? ZMQ_SNDMORE : 0);
    if (job) {
        size_t len;
        const void *body = cf_job_data(job->job, &len);
        zmq_send(self->raw, cf_job_id(job->job), CF_JOB_ID_SIZE, ZMQ_SNDMORE);
        zmq_send(self->raw, job->route, job->route_len, ZMQ_SNDMORE);
        zmq_send(self->raw, body, len, job->auth ? ZMQ_SNDMORE : 0);
        if (job->auth)
            zmq_send(self->raw, job->auth, job->auth_len, 0);
    }
}

/* ---- jobs -------------------------------------------------------------------------- */

/* Forget a job wherever it is. */
static void s_job_finish(cf_broker_t *self, s_job_t *job)
{
    if (job->worker) {
        zlistx_detach(job->worker->jobs, job->handle);
        job->service->in_flight--;
    } else if (job->handle)
        zlistx_detach(job->service->queue, job->handle);
    zhashx_delete(self->jobs, job->key);
    cf_job_destroy(&job->job);
    free(job->auth);
    free(job);
}

static void s_job_expire(cf_broker_t *self, s_job_t *job)
{
    cf_error_t err;
    cf_error_set(&err, "deadline_exceeded", "deadline_ms",
                 "deadline passed before a worker took the job");
    s_reply_error(self, job->route, job->route_len, cf_job_id(job->job), &err);
    s_count_job(job->service->name, err.code);
    job->service->expired++;
    self->expired++;
    s_job_finish(self, job);
}

static bool s_expired(const s_job_t *job, uint64_t now_ms)
{
    uint64_t deadline = cf_job_deadline_ms(job->job);
    return deadline != 0 && now_ms > deadline;
}

/* A worker of SVC with credit to spare, in round-robin order. */
static s_worker_t *s_pick(s_service_t *svc)
{
    s_worker_t *w = zlistx_first(svc->workers);
    while (w) {
        if (w->in_flight < w->credit) {
            /* Move it to the back so that its peers get the next jobs. */
            zlistx_move_end(svc->workers, zlistx_cursor(svc->workers));
            return w;
        }
        w = zlistx_next(svc->workers);
    }
    return NULL;
}

/* Hand queued jobs of SVC to workers while any has credit. */
static void s_dispatch(cf_broker_t *self, s_service_t *svc)
{
    uint64_t now = 0;
    while (zlistx_size(svc->queue)) {
        s_worker_t *w = s_pick(svc);
        if (!w)
            return;
        s_job_t *job = zlistx_detach(svc->queue, NULL);
        job->handle = NULL;
        if (cf_job_deadline_ms(job->job)) {
            if (!now)
                now = cf_now_ms();
            if (s_expired(job, now)) {
                s_job_expire(self, job);
                continue;
            }
        }
        job->worker = w;
        job->handle = zlistx_add_end(w->jobs, job);
        w->in_flight++;
        svc->in_flight++;
        s_send_worker(self, w, CF_PROTO_REQUEST, job);
    }
}

/* ---- workers ----------------------------------------------------------------------- */

/* Drop a worker; the jobs it held go back to the front of their queues. */
static void s_worker_delete(cf_broker_t *self, s_worker_t *w, const char *why)
{
    size_t held = zlistx_size(w->jobs);
    cf_log_warn("dropping worker \"%s\" (%s), %zu jobs requeued", w->name ? w->name : "?", why,
                held);
    s_job_t *job;
    while ((job = zlistx_detach(w->jobs, NULL)) != NULL) {
        job->worker = NULL;
        job->service->in_flight--;
        job->handle = zlistx_add_start(job->service->queue, job);
        self->requeued++;
        cf_metric_add(self->m_requeued, 1);
    }
    s_service_t *svc = zlistx_first(w->services);
    while (svc) {
        void *h = zlistx_find(svc->workers, w);
        if (h)
            zlistx_detach(svc->workers, h);
        svc = zlistx_next(w->services);
    }
    /* Requeued jobs may have other workers ready for them. */
    svc = zlistx_first(w->services);
    while (svc) {
        s_dispatch(self, svc);
        svc = zlistx_next(w->services);
    }
    zlistx_destroy(&w->services);
    zlistx_destroy(&w->jobs);
    zhashx_delete(self->workers, w->key);
    free(w->name);
    free(w);
}

static void s_worker_ready(cf_broker_t *self, const uint8_t *route, size_t route_len,
                           const void *body, size_t len)
{
    char key[2 * S_ROUTE_MAX + 1];
    s_hex(route, route_len, key);
    s_worker_t *old = zhashx_lookup(self->workers, key);
    if (old)
        s_worker_delete(self, old, "announced again");
    msgpack_unpacked u;
    cf_error_t err = {0};
    if (cf_msgpack_unpack(body, len, NULL, &u, &err) != 0) {
        cf_log_warn("refused a worker: malformed READY: %s", err.message);
        self->malformed++;
        return;
    }
    const msgpack_object *services = cf_msgpack_map_get(&u.data, "services");
    const msgpack_object *credit = cf_msgpack_map_get(&u.data, "credit");
    const msgpack_object *pid = cf_msgpack_map_get(&u.data, "pid");
    if (!services || services->type != MSGPACK_OBJECT_ARRAY || !credit ||
        credit->type != MSGPACK_OBJECT_POSITIVE_INTEGER || credit->via.u64 == 0) {
        cf_log_warn("refused a worker: READY needs \"services\" and a positive \"credit\"");
        self->malformed++;
        msgpack_unpacked_destroy(&u);
        return;
    }
    s_worker_t *w = calloc(1, sizeof *w);
    memcpy(w->route, route, route_len);
    w->route_len = route_len;
    memcpy(w->key, key, sizeof key);
    w->name = cf_msgpack_strdup(cf_msgpack_map_get(&u.data, "name"));
    if (!w->name)
        w->name = strdup(key);
    w->pid = pid && pid->type == MSGPACK_OBJECT_POSITIVE_INTEGER ? (uint32_t)pid->via.u64 : 0;
    w->credit = credit->via.u64 > 100000 ? 100000 : (uint32_t)credit->via.u64;
    w->services = zlistx_new();
    w->jobs = zlistx_new();
    w->expiry = cf_mono_ms() + (uint64_t)self->heartbeat_ms * (uint64_t)self->liveness;
    zhashx_insert(self->workers, key, w);
    for (uint32_t i = 0; i < services->via.array.size; i++) {
        const msgpack_object *s = &services->via.array.ptr[i];
        if (s->type != MSGPACK_OBJECT_STR || !cf_job_type_valid(s->via.str.ptr, s->via.str.size))
            continue;
        char name[CF_JOB_TYPE_MAX + 1];
        snprintf(name, sizeof name, "%.*s", (int)s->via.str.size, s->via.str.ptr);
        s_service_t *svc = s_service_require(self, name);
        if (svc && !zlistx_find(w->services, svc)) {
            zlistx_add_end(w->services, svc);
            zlistx_add_end(svc->workers, w);
        }
    }
    msgpack_unpacked_destroy(&u);
    cf_log_info("worker \"%s\" ready with credit %u for %zu services", w->name, w->credit,
                zlistx_size(w->services));
    s_service_t *svc = zlistx_first(w->services);
    while (svc) {
        s_dispatch(self, svc);
        svc = zlistx_next(w->services);
    }
}

/* ---- grants (docs/security.md) --------------------------------------------------------- */

/* Drop the workers whose key is no longer a worker's in clients_dir: removing a key from
 * the directory ends what it may do, not only its next connection. */
static void s_grants_changed(cf_broker_t *self)
{
    zlistx_t *gone = zlistx_new();
    for (s_worker_t *w = zhashx_first(self->workers); w; w = zhashx_next(self->workers)) {
        const cf_grant_t *g = cf_grants_lookup(self->grants, w->user);
        if (!g || !cf_grant_is_worker(g))
            zlistx_add_end(gone, w);
    }
    for (s_worker_t *w = zlistx_first(gone); w; w = zlistx_next(gone)) {
        s_send_worker(self, w, CF_PROTO_DISCONNECT, NULL);
        s_worker_delete(self, w, "its key left the allow-list");
    }
    zlistx_destroy(&gone);
}

/* The grant of the key that sent FRAME (its ZAP User-Id), or NULL. A key not in the table
 * makes the broker look at the directory again (at most every S_GRANTS_MISS_MS): zauth may
 * have admitted a key added since the last look. */
static const cf_grant_t *s_grant(cf_broker_t *self, zmq_msg_t *frame, const char **user_out)
{
    const char *user = zmq_msg_gets(frame, "User-Id");
    *user_out = user ? user : "";
    if (!user)
        return NULL;
    const cf_grant_t *g = cf_grants_lookup(self->grants, user);
    uint64_t now = cf_mono_ms();
    if (!g && now >= self->grants_miss_at) {
        self->grants_miss_at = now + S_GRANTS_MISS_MS;
        if (cf_grants_refresh(self->grants) == 1) {
            s_grants_changed(self);
            g = cf_grants_lookup(self->grants, user);
        }
    }
    return g;
}

/* In a CURVE fleet only keys with role worker speak as workers. Others are dropped, logged
 * and sent DISCONNECT. True when the message may go on; *USER_OUT is the sender's key. */
static bool s_worker_allowed(cf_broker_t *self, zmq_msg_t *frames, uint8_t cmd,
                             const char **user_out)
{
    *user_out = "";
    if (!self->grants)
        return true;
    const cf_grant_t *g = s_grant(self, &frames[1], user_out);
    if (g && cf_grant_is_worker(g))
        return true;
    self->forbidden++;
    if (cmd == CF_PROTO_READY)
        cf_log_warn("refused worker frames from key \"%s\" (%s): it has no role worker in "
                    "[curve] clients_dir",
                    *user_out, g ? cf_grant_name(g) : "no grant");
    if (cmd != CF_PROTO_DISCONNECT) {
        s_worker_t stranger = {0};
        size_t len = zmq_msg_size(&frames[0]);
        memcpy(stranger.route, zmq_msg_data(&frames[0]), len < S_ROUTE_MAX ? len : S_ROUTE_MAX);
        stranger.route_len = len < S_ROUTE_MAX ? len : S_ROUTE_MAX;
        s_send_worker(self, &stranger, CF_PROTO_DISCONNECT, NULL);
    }
    return false;
}

static void s_worker_message(cf_broker_t *self, zmq_msg_t *frames, int n)
{
    const uint8_t *route = zmq_msg_data(&frames[0]);
    size_t route_len = zmq_msg_size(&frames[0]);
    if (n < 3 || zmq_msg_size(&frames[2]) != 1) {
        self->malformed++;
        return;
    }
    uint8_t cmd = *(uint8_t *)zmq_msg_data(&frames[2]);
    const char *user;
    if (!s_worker_allowed(self, frames, cmd, &user))
        return;
    char key[2 * S_ROUTE_MAX + 1];
    s_hex(route, route_len, key);
    s_worker_t *w = zhashx_lookup(self->workers, key);
    if (cmd == CF_PROTO_READY && n == 4) {
        s_worker_ready(self, route, route_len, zmq_msg_data(&frames[3]), zmq_msg_size(&frames[3]));
        s_worker_t *ready = zhashx_lookup(self->workers, key);
        if (ready)
            snprintf(ready->user, sizeof ready->user, "%s", user);
        return;
    }
    if (cmd == CF_PROTO_REPLY && n == 6 && zmq_msg_size(&frames[3]) == CF_JOB_ID_SIZE &&
        zmq_msg_size(&frames[4]) <= S_ROUTE_MAX) {
        /* Forward even from a worker we do not know (e.g. after our restart): the result is
         * real, and the client drops it if it already has one. */
        s_send_client(self, zmq_msg_data(&frames[4]), zmq_msg_size(&frames[4]),
                      zmq_msg_data(&frames[5]), zmq_msg_size(&frames[5]));
        char jkey[2 * CF_JOB_ID_SIZE + 1];
        s_hex(zmq_msg_data(&frames[3]), CF_JOB_ID_SIZE, jkey);
        s_job_t *job = zhashx_lookup(self->jobs, jkey);
        char outcome[CF_ERROR_CODE_MAX];
        cf_metrics_reply_outcome(zmq_msg_data(&frames[5]), zmq_msg_size(&frames[5]), outcome,
                                 sizeof outcome);
        s_count_job(job ? job->service->name : NULL, outcome);
        if (job) {
            job->service->replies++;
            s_job_finish(self, job);
        }
        if (!w) {
            s_worker_t stranger = {0};
            memcpy(stranger.route, route, route_len);
            stranger.route_len = route_len;
            s_send_worker(self, &stranger, CF_PROTO_DISCONNECT, NULL);
            return;
        }
        if (w->in_flight > 0)
            w->in_flight--;
        w->expiry = cf_mono_ms() + (uint64_t)self->heartbeat_ms * (uint64_t)self->liveness;
        s_service_t *svc = zlistx_first(w->services);
        while (svc && w->in_flight < w->credit) {
            if (zlistx_size(svc->queue))
                s_dispatch(self, svc);
            svc = zlistx_next(w->services);
        }
        return;
    }
    if (cmd == CF_PROTO_HEARTBEAT) {
        if (w) {
            w->expiry = cf_mono_ms() + (uint64_t)self->heartbeat_ms * (uint64_t)self->liveness;
        } else {
            s_worker_t stranger = {0};
            memcpy(stranger.route, route, route_len);
            stranger.route_len = route_len;
            s_send_worker(self, &stranger, CF_PROTO_DISCONNECT, NULL);
        }
        return;
    }
    if (cmd == CF_PROTO_DISCONNECT) {
        if (w)
            s_worker_delete(self, w, "disconnected");
        return;
    }
    self->malformed++;
    cf_log_debug("dropped a malformed worker message (command %u, %d frames)", cmd, n);
}

/* ---- broker.status ------------------------------------------------------------------- */

static void s_pack_u64(msgpack_packer *pk, const char *key, uint64_t v)
{
    cf_msgpack_pack_cstr(pk, key);
    msgpack_pack_uint64(pk, v);
}

static void s_status(cf_broker_t *self, const uint8_t *route, size_t route_len, const cf_job_t *job)
{
    msgpack_sbuffer result;
    msgpack_sbuffer_init(&result);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &result, msgpack_sbuffer_write);
    uint64_t now = cf_mono_ms();
    msgpack_pack_map(&pk, 4);
    cf_msgpack_pack_cstr(&pk, "broker");
    msgpack_pack_map(&pk, 3);
    cf_msgpack_pack_cstr(&pk, "endpoint");
    cf_msgpack_pack_cstr(&pk, self->endpoint);
    s_pack_u64(&pk, "pid", (uint64_t)getpid());
    s_pack_u64(&pk, "uptime_s", (now - self->started) / 1000);

    cf_msgpack_pack_cstr(&pk, "workers");
    msgpack_pack_array(&pk, zhashx_size(self->workers));
    for (s_worker_t *w = zhashx_first(self->workers); w; w = zhashx_next(self->workers)) {
        msgpack_pack_map(&pk, 6);
        cf_msgpack_pack_cstr(&pk, "name");
        cf_msgpack_pack_cstr(&pk, w->name);
        s_pack_u64(&pk, "pid", w->pid);
        s_pack_u64(&pk, "credit", w->credit);
        s_pack_u64(&pk, "in_flight", w->in_flight);
        s_pack_u64(&pk, "expires_in_ms", w->expiry > now ? w->expiry - now : 0);
        cf_msgpack_pack_cstr(&pk, "services");
        msgpack_pack_array(&pk, zlistx_size(w->services));
        for (s_service_t *s = zlistx_first(w->services); s; s = zlistx_next(w->services))
            cf_msgpack_pack_cstr(&pk, s->name);
    }

    cf_msgpack_pack_cstr(&pk, "services");
    zlistx_t *names = zhashx_keys(self->services);
    zlistx_set_comparator(names, (zlistx_comparator_fn *)strcmp);
    zlistx_sort(names);
    msgpack_pack_array(&pk, zlistx_size(names));
    for (const char *name = zlistx_first(names); name; name = zlistx_next(names)) {
        s_service_t *s = zhashx_lookup(self->services, name);
        uint64_t credit = 0, in_flight = 0;
        for (s_worker_t *w = zlistx_first(s->workers); w; w = zlistx_next(s->workers)) {
            credit += w->credit;
            in_flight += w->in_flight;
        }
        msgpack_pack_map(&pk, 9);
        cf_msgpack_pack_cstr(&pk, "name");
        cf_msgpack_pack_cstr(&pk, s->name);
        s_pack_u64(&pk, "workers", zlistx_size(s->workers));
        s_pack_u64(&pk, "credit", credit);
        s_pack_u64(&pk, "in_flight", in_flight);
        s_pack_u64(&pk, "queued", zlistx_size(s->queue));
        s_pack_u64(&pk, "requests", s->requests);
        s_pack_u64(&pk, "replies", s->replies);
        s_pack_u64(&pk, "busy", s->busy);
        s_pack_u64(&pk, "expired", s->expired);
    }
    zlistx_destroy(&names);

    cf_msgpack_pack_cstr(&pk, "totals");
    msgpack_pack_map(&pk, 9);
    s_pack_u64(&pk, "received", self->received);
    s_pack_u64(&pk, "answered", self->answered);
    s_pack_u64(&pk, "in_system", zhashx_size(self->jobs));
    s_pack_u64(&pk, "duplicates", self->duplicates);
    s_pack_u64(&pk, "malformed", self->malformed);
    s_pack_u64(&pk, "requeued", self->requeued);
    s_pack_u64(&pk, "busy", self->busy);
    s_pack_u64(&pk, "expired", self->expired);
    s_pack_u64(&pk, "forbidden", self->forbidden);

    msgpack_sbuffer reply;
    msgpack_sbuffer_init(&reply);
    cf_reply_pack_ok(&reply, cf_job_id(job), result.data, result.size);
    s_send_client(self, route, route_len, reply.data, reply.size);
    msgpack_sbuffer_destroy(&reply);
    msgpack_sbuffer_destroy(&result);
}

/* ---- clients ----------------------------------------------------------------------- */

static void s_client_message(cf_broker_t *self, zmq_msg_t *frames, int n)
{
    const uint8_t *route = zmq_msg_data(&frames[0]);
    size_t route_len = zmq_msg_size(&frames[0]);
    cf_error_t err = {0};
    if (n != 3) {
        self->malformed++;
        cf_error_set(&err, "malformed", "",
                     "a job is sent as two frames: \"CFC1\" and the envelope");
        s_reply_error(self, route, route_len, NULL, &err);
        s_count_job(NULL, err.code);
        return;
    }
    self->received++;
    uint8_t id[CF_JOB_ID_SIZE];
    bool has_id = false;
    cf_job_t *decoded =
        cf_job_decode(zmq_msg_data(&frames[2]), zmq_msg_size(&frames[2]), &err, id, &has_id);
    if (!decoded) {
        self->malformed++;
        s_reply_error(self, route, route_len, has_id ? id : NULL, &err);
        s_count_job(NULL, err.code);
        return;
    }
    const char *type = cf_job_type(decoded);
    /* Authorization before anything else: a refused job must not even count as a resend. */
    const cf_grant_t *grant = NULL;
    bool acme_check = false;
    if (self->grants) {
        const char *user;
        grant = s_grant(self, &frames[1], &user);
        int allowed = grant ? cf_grant_authorize(grant, decoded, &acme_check, &err) : -1;
        if (!grant)
            cf_error_set(&err, "forbidden", "", "this client's key has no grant in the allow-list");
        if (allowed != 0) {
            self->forbidden++;
            cf_log_info("refused a job of type \"%s\" from key \"%s\": %s", type, user,
                        err.message);
            s_reply_error(self, route, route_len, cf_job_id(decoded), &err);
            s_count_job(cf_job_type_known(type) ? type : NULL, err.code);
            cf_job_destroy(&decoded);
            return;
        }
    }
    char key[2 * CF_JOB_ID_SIZE + 1];
    s_hex(cf_job_id(decoded), CF_JOB_ID_SIZE, key);
    s_job_t *dup = zhashx_lookup(self->jobs, key);
    if (dup) {
        /* A resend of a job that is queued or running: its reply will come once. Remember the
         * newest route, in case the client came back with another. */
        self->duplicates++;
        cf_metric_add(self->m_duplicates, 1);
        memcpy(dup->route, route, route_len);
        dup->route_len = route_len;
        cf_job_destroy(&decoded);
        return;
    }
    if (strcmp(type, "broker.status") == 0) {
        s_status(self, route, route_len, decoded);
        s_count_job(type, "ok");
        cf_job_destroy(&decoded);
        return;
    }
    s_service_t *svc = zhashx_lookup(self->services, type);
    if (!svc && !cf_job_type_known(type)) {
        cf_error_set(&err, "unknown_job_type", "type",
                     "no worker serves job type \"%s\" and certfleet does not define it", type);
        s_reply_error(self, route, route_len, cf_job_id(decoded), &err);
        s_count_job(NULL, err.code);
        cf_job_destroy(&decoded);
        return;
    }
    if (cf_job_deadline_ms(decoded) && cf_now_ms() > cf_job_deadline_ms(decoded)) {
        cf_error_set(&err, "deadline_exceeded", "deadline_ms",
                     "deadline passed before the job arrived");
        s_reply_error(self, route, route_len, cf_job_id(decoded), &err);
        s_count_job(type, err.code);
        self->expired++;
        cf_job_destroy(&decoded);
        return;
    }
    if (!svc)
        svc = s_service_require(self, type);
    if (!svc || zlistx_size(svc->queue) >= self->queue_max) {
        if (svc)
            svc->busy++;
        self->busy++;
        cf_error_set(&err, "busy", "", "queue of \"%s\" is full (%zu jobs), try again later", type,
                     self->queue_max);
        s_reply_error(self, route, route_len, cf_job_id(decoded), &err);
        s_count_job(svc ? type : NULL, err.code);
        cf_job_destroy(&decoded);
        return;
    }
    s_job_t *job = calloc(1, sizeof *job);
    job->job = decoded;
    memcpy(job->key, key, sizeof key);
    memcpy(job->route, route, route_len);
    job->route_len = route_len;
    if (acme_check) {
        /* The worker checks what needs the database: CAs allowed through "@acme". */
        msgpack_sbuffer auth;
        msgpack_sbuffer_init(&auth);
        cf_grant_pack_auth(grant, &auth);
        job->auth_len = auth.size;
        job->auth = msgpack_sbuffer_release(&auth);
    }
    job->service = svc;
    job->handle = zlistx_add_end(svc->queue, job);
    zhashx_insert(self->jobs, key, job);
    svc->requests++;
    s_dispatch(self, svc);
}

/* ---- the loop ------------------------------------------------------------------------ */

static void s_tick(cf_broker_t *self)
{
    uint64_t now = cf_mono_ms();
    if (self->grants && now >= self->grants_at) {
        self->grants_at = now + S_GRANTS_CHECK_MS;
        if (cf_grants_refresh(self->grants) == 1)
            s_grants_changed(self);
    }
    if (now >= self->hb_at) {
        for (s_worker_t *w = zhashx_first(self->workers); w; w = zhashx_next(self->workers))
            s_send_worker(self, w, CF_PROTO_HEARTBEAT, NULL);
        self->hb_at = now + (uint64_t)self->heartbeat_ms;
    }
    /* Collect first: deleting while walking the table would break the walk. */
    zlistx_t *dead = zlistx_new();
    for (s_worker_t *w = zhashx_first(self->workers); w; w = zhashx_next(self->workers))
        if (now > w->expiry)
            zlistx_add_end(dead, w);
    for (s_worker_t *w = zlistx_first(dead); w; w = zlistx_next(dead))
        s_worker_delete(self, w, "heartbeats stopped");
    zlistx_destroy(&dead);
    uint64_t wall = cf_now_ms();
    for (s_service_t *s = zhashx_first(self->services); s; s = zhashx_next(self->services)) {
        void *h = zlistx_first(s->queue) ? zlistx_cursor(s->queue) : NULL;
        while (h) {
            s_job_t *job = zlistx_handle_item(h);
            void *next = zlistx_next(s->queue) ? zlistx_cursor(s->queue) : NULL;
            if (s_expired(job, wall))
                s_job_expire(self, job);
            h = next;
        }
    }
    for (s_service_t *s = zhashx_first(self->services); s; s = zhashx_next(self->services)) {
        cf_metric_set(s->m_queue, (int64_t)zlistx_size(s->queue));
        cf_metric_set(s->m_workers, (int64_t)zlistx_size(s->workers));
        cf_metric_set(s->m_in_flight, (int64_t)s->in_flight);
    }
    /* Renewed every tick: a loop that hangs turns /health unhealthy (cf_health_set_ttl). */
    cf_health_set("routing", true, self->endpoint);
    self->tick_at = now + S_TICK_MS;
}

/* The [curve] keys and, unless insecure, the grant table. 0, or -1 after logging why. */
static int s_curve_setup(cf_broker_t *self, cf_config_t *config)
{
    char err[512] = "";
    self->curve = cf_curve_new(config, CF_CURVE_SERVER, err, sizeof err);
    if (!self->curve) {
        cf_log_error("%s", err);
        return -1;
    }
    if (cf_curve_insecure(self->curve)) {
        cf_log_warn("[curve] insecure = true: clients and workers connect unencrypted and "
                    "unauthenticated, every job is allowed (for local development only)");
        return 0;
    }
    self->grants = cf_grants_new(cf_curve_clients_dir(self->curve));
    if (!self->grants || cf_grants_refresh(self->grants) < 0) {
        cf_log_error("could not load [curve] clients_dir \"%s\"",
                     cf_curve_clients_dir(self->curve));
        return -1;
    }
    self->grants_at = cf_mono_ms() + S_GRANTS_CHECK_MS;
    return 0;
}

cf_broker_t *cf_broker_new(cf_config_t *config)
{
    cf_broker_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->config = config;
    self->endpoint = strdup(cf_config_get(config, "broker", "endpoint", CF_PROTO_ENDPOINT_DEFAULT));
    self->heartbeat_ms =
        (int)cf_config_get_int(config, "broker", "heartbeat_ms", CF_PROTO_HEARTBEAT_MS);
    self->liveness = (int)cf_config_get_int(config, "broker", "liveness", CF_PROTO_LIVENESS);
    int64_t qmax = cf_config_get_int(config, "broker", "queue_max", 10000);
    self->queue_max = qmax > 0 ? (size_t)qmax : 1;
    if (self->heartbeat_ms < 10)
        self->heartbeat_ms = 10;
    if (self->liveness < 2)
        self->liveness = 2;
    self->services = zhashx_new();
    zhashx_set_destructor(self->services, s_service_free);
    self->workers = zhashx_new();
    self->jobs = zhashx_new();
    self->started = cf_mono_ms();
    if (s_curve_setup(self, config) != 0) {
        cf_broker_destroy(&self);
        return NULL;
    }
    self->m_requeued = cf_metrics_counter("certfleet_broker_requeued_total",
                                          "Jobs moved back to their queue from a lost worker", "");
    self->m_duplicates =
        cf_metrics_counter("certfleet_broker_duplicates_total",
                           "Resends of jobs already queued or running, dropped", "");
    return self;
}

void cf_broker_destroy(cf_broker_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_broker_t *self = *self_p;
    if (self->workers) {
        s_worker_t *w;
        while ((w = zhashx_first(self->workers)) != NULL)
            s_worker_delete(self, w, "broker stopping");
        zhashx_destroy(&self->workers);
    }
    if (self->jobs) {
        s_job_t *job;
        while ((job = zhashx_first(self->jobs)) != NULL)
            s_job_finish(self, job);
        zhashx_destroy(&self->jobs);
    }
    zhashx_destroy(&self->services);
    zsock_destroy(&self->sock);
    zactor_destroy(&self->auth);
    cf_grants_destroy(&self->grants);
    cf_curve_destroy(&self->curve);
    free(self->endpoint);
    free(self);
    *self_p = NULL;
}

int cf_broker_bind(cf_broker_t *self)
{
    self->sock = zsock_new(ZMQ_ROUTER);
    if (!self->sock)
        return -1;
    self->raw = zsock_resolve(self->sock);
    int linger = 0, hwm = 1000000;
    zmq_setsockopt(self->raw, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(self->raw, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(self->raw, ZMQ_RCVHWM, &hwm, sizeof hwm);
    if (!cf_curve_insecure(self->curve)) {
        /* The ZAP handler first: a CURVE server without one admits every key. zauth reads
         * clients_dir again whenever it changes. */
        self->auth = zactor_new(zauth, NULL);
        if (!self->auth ||
            zstr_sendx(self->auth, "CURVE", cf_curve_clients_dir(self->curve), NULL) != 0 ||
            zsock_wait(self->auth) != 0 || cf_curve_apply(self->curve, self->raw) != 0) {
            cf_log_error("could not set up CURVE on the broker socket: %s",
                         zmq_strerror(zmq_errno()));
            return -1;
        }
        cf_log_info("CURVE on: public key \"%s\", %zu keys allowed from \"%s\"",
                    cf_curve_public_key(self->curve), cf_grants_size(self->grants),
                    cf_curve_clients_dir(self->curve));
    }
    if (zmq_bind(self->raw, self->endpoint) != 0) {
        cf_log_error("could not bind broker to \"%s\": %s", self->endpoint,
                     zmq_strerror(zmq_errno()));
        cf_health_set("routing", false, "could not bind the broker endpoint");
        return -1;
    }
    cf_log_info("broker listening on \"%s\" (heartbeat %d ms, liveness %d, queue_max %zu)",
                self->endpoint, self->heartbeat_ms, self->liveness, self->queue_max);
    return 0;
}

int cf_broker_run(cf_broker_t *self)
{
    self->hb_at = cf_mono_ms() + (uint64_t)self->heartbeat_ms;
    self->tick_at = cf_mono_ms() + S_TICK_MS;
    cf_health_set("routing", true, self->endpoint);
    cf_health_set_ttl("routing", S_ROUTING_TTL_MS);
    while (!zsys_interrupted) {
        uint64_t now = cf_mono_ms();
        long wait = self->tick_at > now ? (long)(self->tick_at - now) : 0;
        zmq_pollitem_t item = {self->raw, 0, ZMQ_POLLIN, 0};
        int rc = zmq_poll(&item, 1, wait);
        if (rc < 0 && zmq_errno() != EINTR)
            break;
        /* Drain everything waiting before sweeping: under load the sweep runs once per tick. */
        for (int budget = 0; budget < 100000; budget++) {
            zmq_msg_t frames[CF_PROTO_MAX_FRAMES];
            int n = 0;
            bool more = true;
            while (more) {
                zmq_msg_t scratch, *f = n < CF_PROTO_MAX_FRAMES ? &frames[n] : &scratch;
                zmq_msg_init(f);
                if (zmq_msg_recv(f, self->raw, n == 0 ? ZMQ_DONTWAIT : 0) < 0) {
                    zmq_msg_close(f);
                    break;
                }
                more = zmq_msg_more(f);
                if (f == &scratch) {
                    zmq_msg_close(f);
                    n = CF_PROTO_MAX_FRAMES + 1; /* too many frames: refuse below */
                } else {
                    n++;
                }
            }
            if (n == 0)
                break;
            if (n > CF_PROTO_MAX_FRAMES) {
                self->malformed++;
                n = CF_PROTO_MAX_FRAMES;
            } else if (n >= 2 && zmq_msg_size(&frames[1]) == 4 &&
                       memcmp(zmq_msg_data(&frames[1]), CF_PROTO_CLIENT, 4) == 0) {
                s_client_message(self, frames, n);
            } else if (n >= 2 && zmq_msg_size(&frames[1]) == 4 &&
                       memcmp(zmq_msg_data(&frames[1]), CF_PROTO_WORKER, 4) == 0) {
                s_worker_message(self, frames, n);
            } else {
                self->malformed++;
            }
            for (int i = 0; i < n; i++)
                zmq_msg_close(&frames[i]);
            if (cf_mono_ms() >= self->tick_at)
                break;
        }
        if (cf_mono_ms() >= self->tick_at)
            s_tick(self);
    }
    cf_log_info("broker stopping");
    cf_health_set("routing", false, "stopping");
    /* Tell workers to come back when a broker is there again. */
    for (s_worker_t *w = zhashx_first(self->workers); w; w = zhashx_next(self->workers))
        s_send_worker(self, w, CF_PROTO_DISCONNECT, NULL);
    return 0;
}
