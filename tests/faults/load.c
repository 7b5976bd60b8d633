/* faults-load: the work that runs during the fault matrix and the soak test
 * (docs/reliability.md). Many jobs in flight through cf_client; every job id, its type and
 * params, and its one final reply go to a journal that tests/faults/check.sh reads.
 *
 *   faults-load load   --config F --journal J --ca CA --csr DER [options]
 *   faults-load probe  --config F --journal J --ca CA --csr DER --kinds issue,revoke,...
 *   faults-load resume --config F --journal J --from JOURNAL
 *
 * load: mixed cert.issue, cert.revoke (of serials it issued), crl.build (one in flight) and
 * ocsp.presign (one in flight) until --seconds pass, --jobs are sent or --stop-file exists;
 * then it waits for every final answer. --rate R sends at most R new jobs a second. --abandon N
 * sends N jobs and exits without reading a reply (a client that disconnects mid-job). --slow-ms M
 * reads each reply M ms late. probe: one job of each kind until each has succeeded once; prints the
 * seconds it took. resume: sends again, with the same id and params, every job of --from that has
 * no final answer there, and waits for the answers.
 *
 * A job whose client attempts ran out (local "timeout"), or that got "busy", "unavailable"
 * or "in_progress" at the end, is sent again with the SAME id until it gets a final answer;
 * a job still unanswered --give-up-s (300) after its first send is journaled as given up (the
 * checker counts it as lost).
 *
 * Journal lines (tab-separated):
 *   S  ms  id  type  params-hex               first send
 *   F  ms  id  type  ok|error  code  k=v...   the final answer
 *   X  ms  id  type  gave_up                  given up (--give-up-s) */
#include <czmq.h>
#include <getopt.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_config.h"
#include "cf_job.h"
#include "cf_log.h"
#include "cf_msgpack.h"

typedef enum {
    S_ISSUE,
    S_REVOKE,
    S_CRL,
    S_PRESIGN,
    S_VALIDATE,
    S_NOTIFY,
    S_ECHO,
    S_KINDS
} s_kind_t;

static const char *s_kind_names[S_KINDS] = {"issue",    "revoke", "crl", "presign",
                                            "validate", "notify", "echo"};
static const char *s_kind_types[S_KINDS] = {"cert.issue",   "cert.revoke",   "crl.build",
                                            "ocsp.presign", "acme.validate", "notify.expiring",
                                            "sys.echo"};

typedef struct {
    uint8_t id[CF_JOB_ID_SIZE]; /* job id, the same on every send */
    s_kind_t kind;              /* what it is */
    void *params;               /* packed params map, resent as it is */
    size_t params_len;          /* its length */
    int resends;                /* sends after a timeout or a retryable final error */
    uint64_t first_sent;        /* monotonic ms of the first send */
    uint64_t retry_at;          /* monotonic ms of the next send; 0 while in flight */
} s_job_t;

typedef struct {
    cf_client_t *client;   /* the broker connection */
    FILE *journal;         /* append-only journal */
    const char *ca;        /* the CA to work on */
    void *csr;             /* DER CSR for cert.issue */
    size_t csr_len;        /* its length */
    zhashx_t *jobs;        /* hex id -> s_job_t, every job without a final answer */
    zlistx_t *serials;     /* serials issued and not yet revoked (load mode) */
    uint64_t give_up_ms;   /* a job unanswered this long after its first send is given up */
    bool crl_busy;         /* a crl.build is unanswered */
    bool presign_busy;     /* an ocsp.presign is unanswered */
    const char *crl_scope; /* scope of the crl.build jobs */
    uint64_t sent;         /* jobs sent (first sends) */
    uint64_t ok;           /* final ok answers */
    uint64_t failed;       /* final error answers */
    uint64_t gave_up;      /* jobs given up */
    uint64_t resends;      /* resends with the same id */
    uint64_t busy;         /* busy answers */
    /* probe mode */
    bool probe;                   /* probe mode */
    bool want[S_KINDS];           /* kinds to probe */
    bool done[S_KINDS];           /* kinds that succeeded */
    bool probing[S_KINDS];        /* a probe of that kind is unanswered */
    uint64_t next_probe[S_KINDS]; /* monotonic ms before which no new probe of it is sent */
    char probe_serial[80];        /* serial issued by the issue probe, for the revoke probe */
} s_driver_t;

static void s_job_free(void **item_p)
{
    s_job_t *job = *item_p;
    if (job) {
        free(job->params);
        free(job);
        *item_p = NULL;
    }
}

static void s_hex(const void *data, size_t len, char *out)
{
    static const char digits[] = "0123456789abcdef";
    const uint8_t *p = data;
    for (size_t i = 0; i < len; i++) {
        out[2 * i] = digits[p[i] >> 4];
        out[2 * i + 1] = digits[p[i] & 15];
    }
    out[2 * len] = '\0';
}

static int s_unhex(const char *text, size_t len, uint8_t *out)
{
    if (len % 2)
        return -1;
    for (size_t i = 0; i < len / 2; i++) {
        unsigned int byte;
        if (sscanf(text + 2 * i, "%2x", &byte) != 1)
            return -1;
        out[i] = (uint8_t)byte;
    }
    return 0;
}

static void *s_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    uint8_t *data = NULL;
    size_t size = 0, cap = 0;
    for (;;) {
        if (size == cap) {
            cap = cap ? 2 * cap : 4096;
            uint8_t *bigger = realloc(data, cap);
            if (!bigger) {
                free(data);
                fclose(f);
                return NULL;
            }
            data = bigger;
        }
        size_t n = fread(data + size, 1, cap - size, f);
        if (n == 0)
            break;
        size += n;
    }
    fclose(f);
    *len = size;
    return data;
}

/* Pack the params of a new job of KIND into BUF; false when nothing can be sent now. */
static bool s_pack_params(s_driver_t *d, s_kind_t kind, msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    switch (kind) {
    case S_ISSUE:
        msgpack_pack_map(&pk, 2);
        cf_msgpack_pack_cstr(&pk, "ca");
        cf_msgpack_pack_cstr(&pk, d->ca);
        cf_msgpack_pack_cstr(&pk, "csr");
        msgpack_pack_bin(&pk, d->csr_len);
        msgpack_pack_bin_body(&pk, d->csr, d->csr_len);
        return true;
    case S_REVOKE: {
        char *serial = NULL;
        if (d->probe) {
            if (!d->probe_serial[0])
                return false;
            serial = strdup(d->probe_serial);
            d->probe_serial[0] = '\0';
        } else {
            serial = zlistx_first(d->serials);
            if (!serial)
                return false;
            serial = strdup(serial);
            zlistx_delete(d->serials, zlistx_cursor(d->serials));
        }
        if (!serial)
            return false;
        msgpack_pack_map(&pk, 3);
        cf_msgpack_pack_cstr(&pk, "ca");
        cf_msgpack_pack_cstr(&pk, d->ca);
        cf_msgpack_pack_cstr(&pk, "serial");
        cf_msgpack_pack_cstr(&pk, serial);
        cf_msgpack_pack_cstr(&pk, "reason");
        cf_msgpack_pack_cstr(&pk, "superseded");
        free(serial);
        return true;
    }
    case S_CRL:
        msgpack_pack_map(&pk, 2);
        cf_msgpack_pack_cstr(&pk, "ca");
        cf_msgpack_pack_cstr(&pk, d->ca);
        cf_msgpack_pack_cstr(&pk, "scope");
        cf_msgpack_pack_cstr(&pk, d->crl_scope);
        return true;
    case S_PRESIGN:
        msgpack_pack_map(&pk, 1);
        cf_msgpack_pack_cstr(&pk, "ca");
        cf_msgpack_pack_cstr(&pk, d->ca);
        return true;
    case S_VALIDATE:
        /* No such challenge: the validator's "unknown_challenge" proves it serves. */
        msgpack_pack_map(&pk, 1);
        cf_msgpack_pack_cstr(&pk, "challenge");
        cf_msgpack_pack_cstr(&pk, "fault-matrix-probe");
        return true;
    case S_NOTIFY:
        /* A parameter no job type has: the notifier's refusal proves it serves, and no mail
         * goes out. */
        msgpack_pack_map(&pk, 1);
        cf_msgpack_pack_cstr(&pk, "fault_matrix_probe");
        msgpack_pack_true(&pk);
        return true;
    case S_ECHO:
        msgpack_pack_map(&pk, 1);
        cf_msgpack_pack_cstr(&pk, "probe");
        msgpack_pack_true(&pk);
        return true;
    case S_KINDS:
        break;
    }
    return false;
}

static void s_transmit(s_driver_t *d, s_job_t *job)
{
    job->retry_at = 0;
    if (cf_client_send(d->client, job->id, s_kind_types[job->kind], job->params, job->params_len, 0,
                       NULL) != 0)
        cf_log_error("could not send job of type \"%s\"", s_kind_types[job->kind]);
}

/* Track and send a job; S line in the journal. */
static void s_start(s_driver_t *d, const uint8_t *id, s_kind_t kind, void *params, size_t len,
                    bool journal)
{
    s_job_t *job = calloc(1, sizeof *job);
    assert(job);
    if (id)
        memcpy(job->id, id, CF_JOB_ID_SIZE);
    else
        cf_job_id_random(job->id);
    job->kind = kind;
    job->params = params;
    job->params_len = len;
    job->first_sent = cf_mono_ms();
    char hex[2 * CF_JOB_ID_SIZE + 1];
    cf_job_id_hex(job->id, hex);
    if (journal) {
        char *phex = malloc(2 * len + 1);
        assert(phex);
        s_hex(params, len, phex);
        fprintf(d->journal, "S\t%llu\t%s\t%s\t%s\n", (unsigned long long)cf_now_ms(), hex,
                s_kind_types[kind], phex);
        fflush(d->journal);
        free(phex);
    }
    zhashx_insert(d->jobs, hex, job);
    d->sent++;
    s_transmit(d, job);
}

static bool s_new_job(s_driver_t *d, s_kind_t kind)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    if (!s_pack_params(d, kind, &buf)) {
        msgpack_sbuffer_destroy(&buf);
        return false;
    }
    size_t len = buf.size;
    s_start(d, NULL, kind, msgpack_sbuffer_release(&buf), len, true);
    return true;
}

/* A str or positive int field of a result map, as text into OUT. */
static void s_field(const msgpack_object *map, const char *key, char *out, size_t size)
{
    out[0] = '\0';
    const msgpack_object *v = map ? cf_msgpack_map_get(map, key) : NULL;
    if (!v)
        return;
    if (v->type == MSGPACK_OBJECT_STR) {
        size_t n = v->via.str.size < size - 1 ? v->via.str.size : size - 1;
        memcpy(out, v->via.str.ptr, n);
        out[n] = '\0';
    } else if (v->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        snprintf(out, size, "%llu", (unsigned long long)v->via.u64);
    } else if (v->type == MSGPACK_OBJECT_BOOLEAN) {
        snprintf(out, size, "%d", v->via.boolean ? 1 : 0);
    }
}

static bool s_not_final(const char *code)
{
    return strcmp(code, "timeout") == 0 || strcmp(code, "busy") == 0 ||
           strcmp(code, "unavailable") == 0 || strcmp(code, "in_progress") == 0;
}

/* Did a probe of KIND succeed with this answer? */
static bool s_probe_success(s_kind_t kind, bool ok, const char *code)
{
    if (ok)
        return true;
    if (kind == S_VALIDATE)
        return strcmp(code, "unknown_challenge") == 0;
    if (kind == S_NOTIFY)
        return strcmp(code, "unknown_job_type") != 0 && strcmp(code, "deadline_exceeded") != 0 &&
               strcmp(code, "internal") != 0;
    return false;
}

static void s_handle(s_driver_t *d, cf_reply_t *reply)
{
    if (!cf_reply_id(reply))
        return;
    char hex[2 * CF_JOB_ID_SIZE + 1];
    cf_job_id_hex(cf_reply_id(reply), hex);
    s_job_t *job = zhashx_lookup(d->jobs, hex);
    if (!job)
        return;
    const char *type = s_kind_types[job->kind];
    bool ok = cf_reply_ok(reply);
    const cf_error_t *err = cf_reply_error(reply);
    const char *code = ok ? "-" : err->code;
    if (!ok && s_not_final(code)) {
        if (strcmp(code, "busy") == 0)
            d->busy++;
        if (cf_mono_ms() - job->first_sent >= d->give_up_ms) {
            fprintf(d->journal, "X\t%llu\t%s\t%s\tgave_up\n", (unsigned long long)cf_now_ms(), hex,
                    type);
            fflush(d->journal);
            d->gave_up++;
            if (job->kind == S_CRL)
                d->crl_busy = false;
            if (job->kind == S_PRESIGN)
                d->presign_busy = false;
            if (d->probe)
                d->probing[job->kind] = false;
            zhashx_delete(d->jobs, hex);
            return;
        }
        job->resends++;
        d->resends++;
        /* busy: the queue is full, come back a little later; a timeout is resent at once. */
        job->retry_at = cf_mono_ms() + (strcmp(code, "timeout") == 0 ? 1 : 100 + random() % 200);
        return;
    }
    const msgpack_object *res = ok ? cf_reply_result(reply) : NULL;
    char extra[512] = "";
    char serial[80], ca[80], number[32], scope[16], shard[16], skipped[8];
    s_field(res, "serial", serial, sizeof serial);
    s_field(res, "ca", ca, sizeof ca);
    if (ok && job->kind == S_ISSUE) {
        snprintf(extra, sizeof extra, "serial=%s\tca=%s", serial, ca);
        if (d->probe)
            snprintf(d->probe_serial, sizeof d->probe_serial, "%s", serial);
        else if (serial[0])
            zlistx_add_end(d->serials, strdup(serial));
    } else if (ok && job->kind == S_REVOKE) {
        snprintf(extra, sizeof extra, "serial=%s\tca=%s", serial, ca);
    } else if (ok && job->kind == S_CRL) {
        s_field(res, "number", number, sizeof number);
        s_field(res, "scope", scope, sizeof scope);
        s_field(res, "shard", shard, sizeof shard);
        s_field(res, "skipped", skipped, sizeof skipped);
        snprintf(extra, sizeof extra, "ca=%s\tscope=%s\tshard=%s\tnumber=%s\tskipped=%s", ca, scope,
                 shard, number, skipped);
    } else if (!ok) {
        snprintf(extra, sizeof extra, "field=%s", err->field);
    }
    fprintf(d->journal, "F\t%llu\t%s\t%s\t%s\t%s\t%s\n", (unsigned long long)cf_now_ms(), hex, type,
            ok ? "ok" : "error", code, extra);
    fflush(d->journal);
    if (ok)
        d->ok++;
    else
        d->failed++;
    if (job->kind == S_CRL)
        d->crl_busy = false;
    if (job->kind == S_PRESIGN)
        d->presign_busy = false;
    if (d->probe) {
        d->probing[job->kind] = false;
        if (s_probe_success(job->kind, ok, code))
            d->done[job->kind] = true;
        else
            d->next_probe[job->kind] = cf_mono_ms() + 200;
        /* A failed revocation used the probe's serial up: issue another. */
        if (job->kind == S_REVOKE && !ok)
            d->done[S_ISSUE] = false;
    }
    zhashx_delete(d->jobs, hex);
}

/* Send again the jobs whose pause is over. */
static void s_resend_due(s_driver_t *d)
{
    uint64_t now = cf_mono_ms();
    for (s_job_t *job = zhashx_first(d->jobs); job; job = zhashx_next(d->jobs))
        if (job->retry_at && job->retry_at <= now)
            s_transmit(d, job);
}

/* One reply (or none within WAIT_MS) handled. */
static void s_pump(s_driver_t *d, int wait_ms, int slow_ms)
{
    s_resend_due(d);
    cf_reply_t *reply = cf_client_recv(d->client, wait_ms);
    if (reply) {
        if (slow_ms > 0)
            usleep((useconds_t)slow_ms * 1000);
        s_handle(d, reply);
        cf_reply_destroy(&reply);
    }
}

static s_kind_t s_pick(s_driver_t *d)
{
    long r = random() % 100;
    if (r < 25 && zlistx_size(d->serials) > 0)
        return S_REVOKE;
    if (r >= 90 && !d->crl_busy)
        return S_CRL;
    if (r >= 80 && r < 90 && !d->presign_busy)
        return S_PRESIGN;
    return S_ISSUE;
}

static void s_usage(void)
{
    fprintf(stderr,
            "usage: faults-load load|probe|resume --config FILE --journal FILE [--ca NAME]\n"
            "  [--csr DER] [--seconds N] [--jobs N] [--inflight N] [--stop-file FILE]\n"
            "  [--abandon N] [--slow-ms N] [--give-up-s N] [--timeout-ms N] [--attempts N]\n"
            "  [--kinds issue,revoke,crl,presign,validate,notify,echo] [--limit-s N]\n"
            "  [--crl-scope all|user|ca] [--from JOURNAL] [--rate JOBS-PER-S]\n");
}

/* resume: queue every job of FROM with an S line and no F or X line. */
static int s_load_unanswered(s_driver_t *d, const char *from)
{
    FILE *f = fopen(from, "r");
    if (!f) {
        fprintf(stderr, "faults-load: could not open \"%s\"\n", from);
        return -1;
    }
    zhashx_t *open = zhashx_new();
    zhashx_set_destructor(open, (zhashx_destructor_fn *)zstr_free);
    char *line = NULL;
    size_t cap = 0;
    while (getline(&line, &cap, f) > 0) {
        line[strcspn(line, "\n")] = '\0';
        char *save = NULL, *tag = strtok_r(line, "\t", &save);
        char *ms = tag ? strtok_r(NULL, "\t", &save) : NULL;
        char *id = ms ? strtok_r(NULL, "\t", &save) : NULL;
        char *rest = id ? save : NULL;
        if (!rest)
            continue;
        if (strcmp(tag, "S") == 0)
            zhashx_update(open, id, strdup(rest));
        else
            zhashx_delete(open, id);
    }
    free(line);
    fclose(f);
    int rc = 0;
    for (char *rest = zhashx_first(open); rest; rest = zhashx_next(open)) {
        const char *id = zhashx_cursor(open);
        char *tab = strchr(rest, '\t');
        if (!tab || strlen(id) != 2 * CF_JOB_ID_SIZE) {
            rc = -1;
            continue;
        }
        *tab = '\0';
        s_kind_t kind = S_KINDS;
        for (int k = 0; k < S_KINDS; k++)
            if (strcmp(rest, s_kind_types[k]) == 0)
                kind = (s_kind_t)k;
        size_t hexlen = strlen(tab + 1);
        uint8_t raw_id[CF_JOB_ID_SIZE];
        uint8_t *params = malloc(hexlen / 2 + 1);
        assert(params);
        if (kind == S_KINDS || s_unhex(id, strlen(id), raw_id) != 0 ||
            s_unhex(tab + 1, hexlen, params) != 0) {
            free(params);
            rc = -1;
            continue;
        }
        if (kind == S_CRL)
            d->crl_busy = true;
        s_start(d, raw_id, kind, params, hexlen / 2, false);
    }
    zhashx_destroy(&open);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        s_usage();
        return 2;
    }
    const char *mode = argv[1];
    const char *config = NULL, *journal = NULL, *ca = NULL, *csr = NULL, *stop_file = NULL;
    const char *kinds = "issue,revoke,crl,presign,echo", *from = NULL, *crl_scope = "all";
    long seconds = 0, max_jobs = 0, inflight = 64, abandon = 0, slow_ms = 0, give_up_s = 300;
    long timeout_ms = 2000, attempts = 3, limit_s = 300, rate = 0;
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"journal", required_argument, NULL, 'j'},
        {"ca", required_argument, NULL, 'a'},
        {"csr", required_argument, NULL, 'r'},
        {"seconds", required_argument, NULL, 's'},
        {"jobs", required_argument, NULL, 'n'},
        {"inflight", required_argument, NULL, 'i'},
        {"stop-file", required_argument, NULL, 'f'},
        {"abandon", required_argument, NULL, 'b'},
        {"slow-ms", required_argument, NULL, 'w'},
        {"give-up-s", required_argument, NULL, 'p'},
        {"timeout-ms", required_argument, NULL, 't'},
        {"attempts", required_argument, NULL, 'e'},
        {"kinds", required_argument, NULL, 'k'},
        {"limit-s", required_argument, NULL, 'l'},
        {"from", required_argument, NULL, 'm'},
        {"crl-scope", required_argument, NULL, 'o'},
        {"rate", required_argument, NULL, 'g'},
        {NULL, 0, NULL, 0},
    };
    int opt;
    optind = 2;
    while ((opt = getopt_long(argc, argv, "", options, NULL)) != -1) {
        switch (opt) {
        case 'c':
            config = optarg;
            break;
        case 'j':
            journal = optarg;
            break;
        case 'a':
            ca = optarg;
            break;
        case 'r':
            csr = optarg;
            break;
        case 's':
            seconds = atol(optarg);
            break;
        case 'n':
            max_jobs = atol(optarg);
            break;
        case 'i':
            inflight = atol(optarg);
            break;
        case 'f':
            stop_file = optarg;
            break;
        case 'b':
            abandon = atol(optarg);
            break;
        case 'w':
            slow_ms = atol(optarg);
            break;
        case 'p':
            give_up_s = atol(optarg);
            break;
        case 't':
            timeout_ms = atol(optarg);
            break;
        case 'e':
            attempts = atol(optarg);
            break;
        case 'k':
            kinds = optarg;
            break;
        case 'l':
            limit_s = atol(optarg);
            break;
        case 'm':
            from = optarg;
            break;
        case 'o':
            crl_scope = optarg;
            break;
        case 'g':
            rate = atol(optarg);
            break;
        default:
            s_usage();
            return 2;
        }
    }
    bool is_load = strcmp(mode, "load") == 0, is_probe = strcmp(mode, "probe") == 0;
    bool is_resume = strcmp(mode, "resume") == 0;
    if ((!is_load && !is_probe && !is_resume) || !config || !journal ||
        ((is_load || is_probe) && (!ca || !csr)) || (is_resume && !from) || inflight < 1) {
        s_usage();
        return 2;
    }
    zsys_init();
    char errbuf[256];
    cf_config_t *cfg = cf_config_load(config, errbuf, sizeof errbuf);
    if (!cfg) {
        fprintf(stderr, "faults-load: %s\n", errbuf);
        return 1;
    }
    cf_log_configure(cfg, "faults-load");
    srandom((unsigned int)(cf_now_ms() ^ (uint64_t)getpid()));
    s_driver_t d = {0};
    d.ca = ca;
    d.give_up_ms = (uint64_t)give_up_s * 1000;
    d.crl_scope = crl_scope;
    d.probe = is_probe;
    d.jobs = zhashx_new();
    zhashx_set_destructor(d.jobs, s_job_free);
    d.serials = zlistx_new();
    zlistx_set_destructor(d.serials, (zlistx_destructor_fn *)zstr_free);
    d.client = cf_client_new_from_config(cfg);
    d.journal = fopen(journal, "a");
    if (csr)
        d.csr = s_read_file(csr, &d.csr_len);
    if (!d.client || !d.journal || (csr && !d.csr)) {
        fprintf(stderr, "faults-load: could not start (client, journal \"%s\" or CSR)\n", journal);
        return 1;
    }
    cf_client_set_timeout(d.client, (int)timeout_ms);
    cf_client_set_attempts(d.client, (int)attempts);
    int rc = 0;
    uint64_t start = cf_mono_ms();

    if (is_load && abandon > 0) {
        for (long i = 0; i < abandon; i++)
            s_new_job(&d, S_ISSUE);
        /* Give the sockets' I/O thread time to hand the jobs to the broker, then vanish
         * without reading one reply. */
        usleep(500 * 1000);
        printf("sent=%llu abandoned\n", (unsigned long long)d.sent);
        fflush(stdout);
        _exit(0);
    } else if (is_load) {
        for (;;) {
            bool stop = (seconds > 0 && cf_mono_ms() - start >= (uint64_t)seconds * 1000) ||
                        (max_jobs > 0 && d.sent >= (uint64_t)max_jobs) ||
                        (stop_file && access(stop_file, F_OK) == 0) || zsys_interrupted;
            if (stop)
                break;
            /* --rate: no more first sends than RATE per second since the start. */
            uint64_t allowed =
                rate > 0 ? (uint64_t)rate * (cf_mono_ms() - start) / 1000 + 1 : UINT64_MAX;
            while (zhashx_size(d.jobs) < (size_t)inflight && d.sent < allowed &&
                   !(max_jobs > 0 && d.sent >= (uint64_t)max_jobs)) {
                s_kind_t kind = s_pick(&d);
                if (!s_new_job(&d, kind))
                    break;
                if (kind == S_CRL)
                    d.crl_busy = true;
                if (kind == S_PRESIGN)
                    d.presign_busy = true;
            }
            s_pump(&d, 20, (int)slow_ms);
        }
    } else if (is_resume) {
        if (s_load_unanswered(&d, from) != 0)
            rc = 1;
    } else {
        char *list = strdup(kinds);
        char *save = NULL;
        for (char *k = strtok_r(list, ",", &save); k; k = strtok_r(NULL, ",", &save)) {
            int found = 0;
            for (int i = 0; i < S_KINDS; i++)
                if (strcmp(k, s_kind_names[i]) == 0)
                    d.want[i] = true, found = 1;
            if (!found) {
                fprintf(stderr, "faults-load: unknown probe kind \"%s\"\n", k);
                return 2;
            }
        }
        free(list);
        for (;;) {
            bool all = true;
            for (int k = 0; k < S_KINDS; k++) {
                if (!d.want[k] || d.done[k])
                    continue;
                all = false;
                if (!d.probing[k] && cf_mono_ms() >= d.next_probe[k] && s_new_job(&d, (s_kind_t)k))
                    d.probing[k] = true;
            }
            if (all)
                break;
            if (cf_mono_ms() - start >= (uint64_t)limit_s * 1000 || zsys_interrupted) {
                printf("never recovered within %ld s:", limit_s);
                for (int k = 0; k < S_KINDS; k++)
                    if (d.want[k] && !d.done[k])
                        printf(" %s", s_kind_names[k]);
                printf("\n");
                rc = 1;
                break;
            }
            s_pump(&d, 20, 0);
        }
        if (rc == 0)
            printf("recovered_s=%.1f\n", (double)(cf_mono_ms() - start) / 1000.0);
    }
    /* Every job sent gets its final answer (or reaches the cap). */
    while (zhashx_size(d.jobs) > 0 && !zsys_interrupted)
        s_pump(&d, 100, (int)slow_ms);
    printf("sent=%llu ok=%llu error=%llu gave_up=%llu resends=%llu busy=%llu client_resent=%llu "
           "duplicates_dropped=%llu\n",
           (unsigned long long)d.sent, (unsigned long long)d.ok, (unsigned long long)d.failed,
           (unsigned long long)d.gave_up, (unsigned long long)d.resends, (unsigned long long)d.busy,
           (unsigned long long)cf_client_resent(d.client),
           (unsigned long long)cf_client_duplicates(d.client));
    if (d.gave_up > 0)
        rc = 1;
    fclose(d.journal);
    free(d.csr);
    zhashx_destroy(&d.jobs);
    zlistx_destroy(&d.serials);
    cf_client_destroy(&d.client);
    cf_config_destroy(&cfg);
    return rc;
}
