/* park: requests that wait for a job without holding their HTTP thread (docs/acme.md
 * "Waiting for jobs"). Each MHD thread polls many connections, so a handler that waited for
 * a reply there (finalize for cert.issue, revokeCert for cert.revoke, a challenge POST for
 * acme.validate) would stall every other connection of that thread, all of them while the
 * signer is down. Instead the handler suspends its connection and hands the job to the
 * parking thread, which sends it through a broker client of its own and, when the reply comes
 * or the wait is over, stores the reply in the request and resumes the connection; MHD then
 * calls the request again on its own thread, which finishes it (http.c).
 *
 * A parked request ends only through its resume: MHD neither times out a suspended connection
 * nor notices its client leave, and acme_park_stop resumes every one before the daemon stops. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "acme.h"
#include "cf_log.h"
#include "cf_metrics.h"

typedef struct s_entry {
    acme_req_t *req;            /* the parked request (its connection is suspended) */
    uint8_t id[CF_JOB_ID_SIZE]; /* the job's id */
    bool has_id;                /* id given by the handler (else made when sent) */
    char type[32];              /* the job type */
    unsigned char *params;      /* the packed params (owned) */
    size_t params_len;          /* their length */
    uint64_t deadline_ms;       /* the job's deadline, Unix ms, 0 for none */
    uint64_t until_mono;        /* resume without a reply at this cf_mono_ms */
    struct s_entry *next;       /* the list it is on */
} s_entry_t;

struct _acme_park_t {
    cf_config_t *cfg;        /* for the broker client (borrowed) */
    pthread_t thread;        /* the parking thread */
    bool started;            /* thread runs */
    int wake[2];             /* pipe: a byte is written on every hand-over and on stop */
    pthread_mutex_t mu;      /* guards incoming and stop */
    s_entry_t *incoming;     /* handed over by handlers, not sent yet */
    bool stop;               /* acme_park_stop was called */
    s_entry_t *active;       /* sent, waiting (the parking thread's alone) */
    cf_metric_t *m_parked;   /* gauge: requests parked now */
    cf_metric_t *m_replied;  /* counter: parked requests resumed with their job's reply */
    cf_metric_t *m_timedout; /* counter: parked requests resumed at the end of their wait */
};

/* The longest the parking thread sleeps without looking at the clock. */
#define S_IDLE_MS 1000

static void s_entry_free(s_entry_t *e)
{
    free(e->params);
    free(e);
}

/* Hand REPLY (taken, may be NULL) to E's request and resume its connection. */
static void s_resume(s_entry_t *e, cf_reply_t *reply)
{
    e->req->parked_reply = reply;
    MHD_resume_connection(e->req->conn);
    s_entry_free(e);
}

static void s_send(cf_client_t *client, s_entry_t *e, s_entry_t *active)
{
    /* Two requests may wait for one job (a finalize posted twice for one order: same id).
     * The job is sent once; the reply goes to the first, the other resumes without one and
     * reads the stored outcome. */
    for (s_entry_t *a = active; e->has_id && a; a = a->next)
        if (memcmp(a->id, e->id, CF_JOB_ID_SIZE) == 0)
            return;
    if (!client) {
        cf_log_error("no broker client: %s not sent", e->type);
    } else if (cf_client_send(client, e->has_id ? e->id : NULL, e->type, e->params, e->params_len,
                              e->deadline_ms, e->id) != 0) {
        cf_log_warn("%s already in flight on the parking client", e->type);
    }
    e->has_id = true;
}

/* Resume every entry waiting for job ID: the first with REPLY (taken), the others without. */
static void s_answered(acme_park_t *self, cf_reply_t *reply)
{
    const uint8_t *rid = cf_reply_id(reply);
    for (s_entry_t **pp = &self->active; rid && *pp;) {
        s_entry_t *e = *pp;
        if (memcmp(e->id, rid, CF_JOB_ID_SIZE) != 0) {
            pp = &e->next;
            continue;
        }
        *pp = e->next;
        cf_metric_add(self->m_replied, 1);
        s_resume(e, reply);
        reply = NULL;
    }
    cf_reply_destroy(&reply); /* a reply nobody waits for any more */
}

/* Wait for a reply, a hand-over or the nearest end of a wait; then deal with what came. */
static void s_wait(acme_park_t *self, cf_client_t *client)
{
    uint64_t now = cf_mono_ms(), until = now + S_IDLE_MS;
    for (s_entry_t *e = self->active; e; e = e->next)
        until = e->until_mono < until ? e->until_mono : until;
    int wait = self->active ? (int)(until > now ? until - now : 0) : -1;
    if (client && cf_client_pending(client) > 0) {
        cf_reply_t *reply = cf_client_recv(client, wait); /* returns early on a wake byte */
        if (reply)
            s_answered(self, reply);
    } else {
        struct pollfd pfd = {.fd = self->wake[0], .events = POLLIN};
        poll(&pfd, 1, wait);
    }
    now = cf_mono_ms();
    for (s_entry_t **pp = &self->active; *pp;) {
        s_entry_t *e = *pp;
        if (e->until_mono <= now || !client) {
            *pp = e->next;
            cf_metric_add(self->m_timedout, 1);
            s_resume(e, NULL);
        } else {
            pp = &e->next;
        }
    }
}

static void *s_run(void *arg)
{
    acme_park_t *self = arg;
    /* The thread's own client (a client is not thread-safe); made here, closed here. */
    cf_client_t *client = cf_client_new_from_config(self->cfg);
    if (client)
        cf_client_set_wake_fd(client, self->wake[0]);
    for (;;) {
        char drain[64];
        while (read(self->wake[0], drain, sizeof drain) > 0) {
        }
        pthread_mutex_lock(&self->mu);
        s_entry_t *fresh = self->incoming;
        self->incoming = NULL;
        bool stop = self->stop;
        pthread_mutex_unlock(&self->mu);
        while (fresh) {
            s_entry_t *e = fresh;
            fresh = e->next;
            s_send(client, e, self->active);
            e->next = self->active;
            self->active = e;
        }
        if (stop)
            break;
        int64_t parked = 0;
        for (s_entry_t *e = self->active; e; e = e->next)
            parked++;
        cf_metric_set(self->m_parked, parked);
        s_wait(self, client);
    }
    /* Stopping: every parked request is resumed without a reply (it answers as if its wait
     * had ended), so that the daemon can stop. */
    while (self->active) {
        s_entry_t *e = self->active;
        self->active = e->next;
        s_resume(e, NULL);
    }
    cf_client_destroy(&client);
    return NULL;
}

/* Wake the parking thread (the pipe is non-blocking: a full pipe is awake already). */
static void s_wake(acme_park_t *self)
{
    char one = 1;
    if (write(self->wake[1], &one, 1) < 0 && errno != EAGAIN)
        cf_log_warn("could not wake the parking thread: %s", strerror(errno));
}

acme_park_t *acme_park_new(cf_config_t *cfg)
{
    acme_park_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->wake[0] = self->wake[1] = -1;
    self->m_parked =
        cf_metrics_gauge("certfleet_acme_parked_requests",
                         "ACME requests waiting for a job's reply without a thread", "");
    self->m_replied = cf_metrics_counter("certfleet_acme_park_resumed_total",
                                         "parked ACME requests resumed, by why", "why=\"reply\"");
    self->m_timedout =
        cf_metrics_counter("certfleet_acme_park_resumed_total",
                           "parked ACME requests resumed, by why", "why=\"wait_over\"");
    pthread_mutex_init(&self->mu, NULL);
    if (pipe2(self->wake, O_NONBLOCK | O_CLOEXEC) != 0 ||
        pthread_create(&self->thread, NULL, s_run, self) != 0) {
        cf_log_error("could not start the parking thread");
        acme_park_destroy(&self);
        return NULL;
    }
    self->started = true;
    return self;
}

void acme_park_stop(acme_park_t *self)
{
    if (!self || !self->started)
        return;
    pthread_mutex_lock(&self->mu);
    self->stop = true;
    pthread_mutex_unlock(&self->mu);
    s_wake(self);
    pthread_join(self->thread, NULL);
    self->started = false;
}

void acme_park_destroy(acme_park_t **self_p)
{
    acme_park_t *self = self_p ? *self_p : NULL;
    if (!self)
        return;
    acme_park_stop(self);
    pthread_mutex_destroy(&self->mu);
    for (int i = 0; i < 2; i++)
        if (self->wake[i] >= 0)
            close(self->wake[i]);
    free(self);
    *self_p = NULL;
}

int acme_park(acme_req_t *req, const uint8_t *id, const char *type, const void *params,
              size_t params_len, uint64_t deadline_ms, int64_t wait_ms, acme_resume_fn *resume,
              void *arg, void (*free_arg)(void *))
{
    acme_park_t *self = req->srv->park;
    s_entry_t *e = self ? calloc(1, sizeof *e) : NULL;
    if (!e || !(e->params = malloc(params_len ? params_len : 1))) {
        free(e);
        return -1;
    }
    if (id) {
        memcpy(e->id, id, CF_JOB_ID_SIZE);
        e->has_id = true;
    }
    snprintf(e->type, sizeof e->type, "%s", type);
    if (params_len)
        memcpy(e->params, params, params_len);
    e->params_len = params_len;
    e->deadline_ms = deadline_ms;
    e->until_mono = cf_mono_ms() + (uint64_t)(wait_ms > 0 ? wait_ms : 0);
    e->req = req;
    pthread_mutex_lock(&self->mu);
    if (self->stop) {
        /* Stopping: nobody would resume it before the daemon stops. */
        pthread_mutex_unlock(&self->mu);
        s_entry_free(e);
        return -1;
    }
    req->resume = resume;
    req->resume_arg = arg;
    req->resume_free = free_arg;
    req->parked_reply = NULL;
    req->parked = true;
    /* Suspended before the entry is handed over: its resume can then never come first. */
    MHD_suspend_connection(req->conn);
    e->next = self->incoming;
    self->incoming = e;
    pthread_mutex_unlock(&self->mu);
    s_wake(self);
    return 0;
}

void acme_park_finish(acme_req_t *req)
{
    acme_resume_fn *resume = req->resume;
    req->parked = false;
    req->resume = NULL;
    resume(req, req->parked_reply);
    cf_reply_destroy(&req->parked_reply);
    if (req->resume_free)
        req->resume_free(req->resume_arg);
    req->resume_arg = NULL;
    req->resume_free = NULL;
}
