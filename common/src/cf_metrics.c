/* cf_metrics: the process's metric registry, its text exposition (format 0.0.4), the health
 * checks and the small HTTP server that serves both (cf_metrics.h, docs/metrics.md).
 *
 * The registry is append-only: families and series are linked lists whose nodes are never
 * freed while the process runs, published with release stores. Readers (lookups, scrapes)
 * walk them without a lock; only registration takes the mutex, re-checking under it so that
 * two threads registering the same series get the same pointer. Updates are relaxed atomics:
 * a scrape may see one series a little ahead of another, never a torn value. */
#include "cf_metrics.h"

#include <jansson.h>
#include <math.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_error.h"
#include "cf_front.h"
#include "cf_log.h"

#ifndef CF_VERSION
#define CF_VERSION "unknown"
#endif

/* Histogram bounds in seconds: 0.5 ms doubling up to 8.192 s, then 10 s; +Inf after them. */
#define S_BOUNDS 16
static const double s_bounds[S_BOUNDS] = {0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064,
                                          0.128,  0.256, 0.512, 1.024, 2.048, 4.096, 8.192, 10.0};
static const char *const s_bound_text[S_BOUNDS + 1] = {
    "0.0005", "0.001", "0.002", "0.004", "0.008", "0.016", "0.032", "0.064", "0.128",
    "0.256",  "0.512", "1.024", "2.048", "4.096", "8.192", "10",    "+Inf"};

/* What the HTTP server accepts: a scraper or two and a health checker, on loopback. */
#define S_HTTP_CONNECTIONS 32
#define S_HTTP_TIMEOUT_S   10
#define S_HTTP_MEMORY      (32 * 1024)
#define S_CHECK_NAME_MAX   64
#define S_CHECK_DETAIL_MAX 256

typedef enum { S_COUNTER, S_GAUGE, S_HISTOGRAM } s_kind_t;

typedef struct s_family_s s_family_t;

struct cf_metric_s {
    s_family_t *family;     /* its metric name */
    char *labels;           /* inside of the braces, "" for none */
    _Atomic uint64_t count; /* counter value */
    _Atomic int64_t gauge;  /* gauge value */
    _Atomic uint64_t
        buckets[S_BOUNDS + 1];   /* histogram: observations per bucket (not cumulative) */
    _Atomic uint64_t sum_ns;     /* histogram: sum of observations in ns */
    _Atomic(cf_metric_t *) next; /* next series of the family */
};

struct s_family_s {
    char *name;                   /* metric name */
    char *help;                   /* HELP text, already escaped */
    s_kind_t kind;                /* its type */
    _Atomic(cf_metric_t *) first; /* its series, in registration order */
    cf_metric_t *last;            /* the last one (under the mutex) */
    _Atomic(s_family_t *) next;   /* next family */
};

typedef struct s_check_s {
    char name[S_CHECK_NAME_MAX];     /* check name */
    bool ok;                         /* passes */
    bool seen;                       /* set at least once (changes after that are logged) */
    char detail[S_CHECK_DETAIL_MAX]; /* why (printable ASCII) */
    uint64_t set_ms;                 /* monotonic ms of the last set */
    int ttl_ms;                      /* fails when not set for this long (0: never) */
    cf_health_probe_fn *probe;       /* computed at /health, or NULL */
    void *probe_arg;                 /* its argument */
    struct s_check_s *next;          /* next check */
} s_check_t;

/* The registry, the checks and the server are process state by nature (one /metrics per
 * process), as the logger is. */
static struct {
    pthread_mutex_t lock;        /* registration only */
    _Atomic(s_family_t *) first; /* families, in registration order */
    s_family_t *last;            /* the last one (under the lock) */
} s_registry = {PTHREAD_MUTEX_INITIALIZER, NULL, NULL};

static struct {
    pthread_mutex_t lock; /* the list and every field of it */
    s_check_t *first;     /* checks, in the order first set */
} s_health = {PTHREAD_MUTEX_INITIALIZER, NULL};

static struct {
    pthread_mutex_t lock;   /* start and stop */
    struct MHD_Daemon *mhd; /* the server, or NULL */
    int port;               /* bound port, 0 when off */
    char program[64];       /* for /health */
} s_server = {PTHREAD_MUTEX_INITIALIZER, NULL, 0, ""};

/* ---- registry --------------------------------------------------------------------------- */

static bool s_name_valid(const char *name)
{
    if (!name || !*name)
        return false;
    for (const char *p = name; *p; p++) {
        char c = *p;
        bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == ':';
        if (!alpha && !(p != name && c >= '0' && c <= '9'))
            return false;
    }
    return true;
}

/* HELP text escaping: backslash and newline (format 0.0.4). */
static char *s_help_escape(const char *help)
{
    size_t n = strlen(help);
    char *out = malloc(2 * n + 1), *p = out;
    if (!out)
        return NULL;
    for (const char *s = help; *s; s++) {
        if (*s == '\\' || *s == '\n') {
            *p++ = '\\';
            *p++ = *s == '\n' ? 'n' : '\\';
        } else {
            *p++ = *s;
        }
    }
    *p = '\0';
    return out;
}

static s_family_t *s_family_find(const char *name)
{
    for (s_family_t *f = atomic_load_explicit(&s_registry.first, memory_order_acquire); f;
         f = atomic_load_explicit(&f->next, memory_order_acquire))
        if (strcmp(f->name, name) == 0)
            return f;
    return NULL;
}

static cf_metric_t *s_series_find(s_family_t *f, const char *labels)
{
    for (cf_metric_t *m = atomic_load_explicit(&f->first, memory_order_acquire); m;
         m = atomic_load_explicit(&m->next, memory_order_acquire))
        if (strcmp(m->labels, labels) == 0)
            return m;
    return NULL;
}

static const char *s_kind_name(s_kind_t kind)
{
    return kind == S_COUNTER ? "counter" : kind == S_GAUGE ? "gauge" : "histogram";
}

static cf_metric_t *s_register(s_kind_t kind, const char *name, const char *help,
                               const char *labels)
{
    if (!labels)
        labels = "";
    /* The fast path: a series registered before needs no lock. */
    s_family_t *f = name ? s_family_find(name) : NULL;
    cf_metric_t *m = f && f->kind == kind ? s_series_find(f, labels) : NULL;
    if (m)
        return m;
    if (!s_name_valid(name) || strchr(labels, '\n')) {
        cf_log_error("metric \"%s\" refused: not a valid name or label set", name ? name : "");
        return NULL;
    }
    pthread_mutex_lock(&s_registry.lock);
    f = s_family_find(name);
    if (f && f->kind != kind) {
        /* A programming error, but a metric must never take a process down. */
        cf_log_error("metric \"%s\" is a %s, not a %s", name, s_kind_name(f->kind),
                     s_kind_name(kind));
        m = NULL;
        goto out;
    }
    if (f && (m = s_series_find(f, labels)) != NULL)
        goto out;
    if (!f) {
        f = calloc(1, sizeof *f);
        if (!f)
            goto out;
        f->name = strdup(name);
        f->help = s_help_escape(help ? help : "");
        f->kind = kind;
        if (!f->name || !f->help) {
            free(f->name);
            free(f->help);
            free(f);
            f = NULL;
            goto out;
        }
        if (s_registry.last)
            atomic_store_explicit(&s_registry.last->next, f, memory_order_release);
        else
            atomic_store_explicit(&s_registry.first, f, memory_order_release);
        s_registry.last = f;
    }
    m = calloc(1, sizeof *m);
    if (!m)
        goto out;
    m->family = f;
    m->labels = strdup(labels);
    if (!m->labels) {
        free(m);
        m = NULL;
        goto out;
    }
    if (f->last)
        atomic_store_explicit(&f->last->next, m, memory_order_release);
    else
        atomic_store_explicit(&f->first, m, memory_order_release);
    f->last = m;
out:
    pthread_mutex_unlock(&s_registry.lock);
    return m;
}

cf_metric_t *cf_metrics_counter(const char *name, const char *help, const char *labels)
{
    return s_register(S_COUNTER, name, help, labels);
}

cf_metric_t *cf_metrics_gauge(const char *name, const char *help, const char *labels)
{
    return s_register(S_GAUGE, name, help, labels);
}

cf_metric_t *cf_metrics_histogram(const char *name, const char *help, const char *labels)
{
    return s_register(S_HISTOGRAM, name, help, labels);
}

void cf_metric_add(cf_metric_t *m, uint64_t n)
{
    if (m)
        atomic_fetch_add_explicit(&m->count, n, memory_order_relaxed);
}

void cf_metric_set(cf_metric_t *m, int64_t value)
{
    if (m)
        atomic_store_explicit(&m->gauge, value, memory_order_relaxed);
}

void cf_metric_observe(cf_metric_t *m, double seconds)
{
    if (!m)
        return;
    /* A clock that stepped back or a NaN counts as zero; the sum must stay meaningful. */
    if (!(seconds > 0))
        seconds = 0;
    if (seconds > 1e9)
        seconds = 1e9;
    int b = 0;
    while (b < S_BOUNDS && seconds > s_bounds[b])
        b++;
    atomic_fetch_add_explicit(&m->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&m->sum_ns, (uint64_t)llround(seconds * 1e9), memory_order_relaxed);
}

void cf_metrics_label_escape(const char *value, char *out, size_t len)
{
    if (!out || len == 0)
        return;
    size_t o = 0;
    for (const char *p = value ? value : ""; *p; p++) {
        const char *esc = *p == '\\' ? "\\\\" : *p == '"' ? "\\\"" : *p == '\n' ? "\\n" : NULL;
        size_t need = esc ? 2 : 1;
        if (o + need >= len)
            break; /* cut, never in the middle of an escape */
        if (esc) {
            out[o++] = esc[0];
            out[o++] = esc[1];
        } else {
            out[o++] = *p;
        }
    }
    out[o] = '\0';
}

/* ---- exposition ------------------------------------------------------------------------- */

typedef struct {
    char *data; /* text so far */
    size_t len; /* its length */
    size_t cap; /* allocated */
    bool oom;   /* an allocation failed */
} s_buf_t;

static void s_printf(s_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_printf(s_buf_t *b, const char *fmt, ...)
{
    if (b->oom)
        return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = true;
            return;
        }
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap * 2 + (size_t)n + 1;
        char *data = realloc(b->data, cap);
        if (!data) {
            b->oom = true;
            return;
        }
        b->data = data;
        b->cap = cap;
    }
}

/* One series line: NAME SUFFIX {LABELS[,EXTRA]} */
static void s_series_name(s_buf_t *b, const char *name, const char *suffix, const char *labels,
                          const char *extra)
{
    bool any = labels[0] || extra;
    s_printf(b, "%s%s%s%s%s%s%s", name, suffix, any ? "{" : "", labels,
             labels[0] && extra ? "," : "", extra ? extra : "", any ? "}" : "");
}

char *cf_metrics_render(size_t *len)
{
    s_buf_t b = {malloc(4096), 0, 4096, false};
    if (!b.data)
        return NULL;
    b.data[0] = '\0';
    for (s_family_t *f = atomic_load_explicit(&s_registry.first, memory_order_acquire); f;
         f = atomic_load_explicit(&f->next, memory_order_acquire)) {
        s_printf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name,
                 s_kind_name(f->kind));
        for (cf_metric_t *m = atomic_load_explicit(&f->first, memory_order_acquire); m;
             m = atomic_load_explicit(&m->next, memory_order_acquire)) {
            if (f->kind == S_COUNTER) {
                s_series_name(&b, f->name, "", m->labels, NULL);
                s_printf(&b, " %llu\n",
                         (unsigned long long)atomic_load_explicit(&m->count, memory_order_relaxed));
            } else if (f->kind == S_GAUGE) {
                s_series_name(&b, f->name, "", m->labels, NULL);
                s_printf(&b, " %lld\n",
                         (long long)atomic_load_explicit(&m->gauge, memory_order_relaxed));
            } else {
                /* _count is the sum of the buckets read here, so it always equals the +Inf
                 * bucket even while observations come in. */
                uint64_t cumulative = 0;
                for (int i = 0; i <= S_BOUNDS; i++) {
                    cumulative += atomic_load_explicit(&m->buckets[i], memory_order_relaxed);
                    char le[32];
                    snprintf(le, sizeof le, "le=\"%s\"", s_bound_text[i]);
                    s_series_name(&b, f->name, "_bucket", m->labels, le);
                    s_printf(&b, " %llu\n", (unsigned long long)cumulative);
                }
                uint64_t sum_ns = atomic_load_explicit(&m->sum_ns, memory_order_relaxed);
                s_series_name(&b, f->name, "_sum", m->labels, NULL);
                s_printf(&b, " %llu.%09llu\n", (unsigned long long)(sum_ns / 1000000000u),
                         (unsigned long long)(sum_ns % 1000000000u));
                s_series_name(&b, f->name, "_count", m->labels, NULL);
                s_printf(&b, " %llu\n", (unsigned long long)cumulative);
            }
        }
    }
    if (b.oom) {
        free(b.data);
        return NULL;
    }
    if (len)
        *len = b.len;
    return b.data;
}

/* ---- health ----------------------------------------------------------------------------- */

uint64_t cf_metrics_clock_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

double cf_metrics_since(uint64_t start_ns)
{
    uint64_t now = cf_metrics_clock_ns();
    return now > start_ns ? (double)(now - start_ns) / 1e9 : 0.0;
}

/* The check named NAME, made when missing (under the health lock); NULL when out of memory. */
static s_check_t *s_check_require(const char *name)
{
    s_check_t **pp = &s_health.first;
    for (; *pp; pp = &(*pp)->next)
        if (strcmp((*pp)->name, name) == 0)
            return *pp;
    s_check_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    snprintf(c->name, sizeof c->name, "%s", name);
    c->ok = true;
    c->set_ms = cf_metrics_clock_ns() / 1000000u;
    *pp = c;
    return c;
}

/* Details come from server error messages: keep them printable ASCII on one line, so that
 * the JSON is always valid whatever a library wrote. */
static void s_detail_copy(char *out, const char *detail)
{
    size_t o = 0;
    for (const char *p = detail ? detail : ""; *p && o + 1 < S_CHECK_DETAIL_MAX; p++) {
        unsigned char c = (unsigned char)*p;
        out[o++] = c >= 0x20 && c < 0x7f ? (char)c : ' ';
    }
    while (o > 0 && out[o - 1] == ' ')
        o--;
    out[o] = '\0';
}

void cf_health_set(const char *check, bool ok, const char *detail)
{
    if (!check || !*check)
        return;
    pthread_mutex_lock(&s_health.lock);
    s_check_t *c = s_check_require(check);
    if (c) {
        if (c->seen && c->ok != ok)
            cf_log_info("health check \"%s\" %s%s%s", check, ok ? "passes" : "fails",
                        detail && *detail ? ": " : "", detail ? detail : "");
        c->ok = ok;
        c->seen = true;
        s_detail_copy(c->detail, detail);
        c->set_ms = cf_metrics_clock_ns() / 1000000u;
    }
    pthread_mutex_unlock(&s_health.lock);
}

void cf_health_set_ttl(const char *check, int ttl_ms)
{
    if (!check || !*check)
        return;
    pthread_mutex_lock(&s_health.lock);
    s_check_t *c = s_check_require(check);
    if (c)
        c->ttl_ms = ttl_ms > 0 ? ttl_ms : 0;
    pthread_mutex_unlock(&s_health.lock);
}

void cf_health_probe(const char *check, cf_health_probe_fn *fn, void *arg)
{
    if (!check || !*check)
        return;
    pthread_mutex_lock(&s_health.lock);
    s_check_t *c = s_check_require(check);
    if (c) {
        c->probe = fn;
        c->probe_arg = arg;
    }
    pthread_mutex_unlock(&s_health.lock);
}

/* Run the probes, outside the lock: a probe may talk to a server for a while. */
static void s_run_probes(void)
{
    enum { MAX = 16 };
    struct {
        char name[S_CHECK_NAME_MAX];
        cf_health_probe_fn *fn;
        void *arg;
    } probes[MAX];
    int n = 0;
    pthread_mutex_lock(&s_health.lock);
    for (s_check_t *c = s_health.first; c && n < MAX; c = c->next) {
        if (!c->probe)
            continue;
        memcpy(probes[n].name, c->name, sizeof c->name);
        probes[n].fn = c->probe;
        probes[n].arg = c->probe_arg;
        n++;
    }
    pthread_mutex_unlock(&s_health.lock);
    for (int i = 0; i < n; i++) {
        char detail[S_CHECK_DETAIL_MAX] = "";
        bool ok = probes[i].fn(probes[i].arg, detail, sizeof detail);
        cf_health_set(probes[i].name, ok, detail);
    }
}

char *cf_health_render(int *http_status)
{
    s_run_probes();
    json_t *doc = json_object(), *checks = json_object();
    if (!doc || !checks) {
        json_decref(doc);
        json_decref(checks);
        return NULL;
    }
    bool healthy = true;
    uint64_t now_ms = cf_metrics_clock_ns() / 1000000u;
    pthread_mutex_lock(&s_health.lock);
    for (s_check_t *c = s_health.first; c; c = c->next) {
        bool ok = c->ok;
        char detail[S_CHECK_DETAIL_MAX + 64];
        snprintf(detail, sizeof detail, "%s", c->detail);
        if (c->ttl_ms && now_ms - c->set_ms > (uint64_t)c->ttl_ms) {
            ok = false;
            snprintf(detail, sizeof detail, "not updated for %llu ms",
                     (unsigned long long)(now_ms - c->set_ms));
        }
        healthy = healthy && ok;
        json_t *one = json_pack("{s:b,s:s}", "ok", ok, "detail", detail);
        if (one)
            json_object_set_new(checks, c->name, one);
    }
    pthread_mutex_unlock(&s_health.lock);
    pthread_mutex_lock(&s_server.lock);
    json_object_set_new(doc, "program", json_string(s_server.program));
    pthread_mutex_unlock(&s_server.lock);
    json_object_set_new(doc, "status", json_string(healthy ? "ok" : "unhealthy"));
    json_object_set_new(doc, "checks", checks);
    char *text = json_dumps(doc, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(doc);
    if (http_status)
        *http_status = healthy ? 200 : 503;
    return text;
}

/* ---- reply outcome ---------------------------------------------------------------------- */

typedef struct {
    const uint8_t *p;   /* next byte */
    const uint8_t *end; /* past the last */
} s_mp_t;

static bool s_mp_take(s_mp_t *r, size_t n, const uint8_t **out)
{
    if ((size_t)(r->end - r->p) < n)
        return false;
    if (out)
        *out = r->p;
    r->p += n;
    return true;
}

static bool s_mp_uint(s_mp_t *r, int bytes, uint64_t *v)
{
    const uint8_t *b;
    if (!s_mp_take(r, (size_t)bytes, &b))
        return false;
    *v = 0;
    for (int i = 0; i < bytes; i++)
        *v = (*v << 8) | b[i];
    return true;
}

/* Read one header: *SKIP bytes of payload follow (not consumed), *ITEMS more objects are
 * nested in it; *IS_STR and *IS_MAP say what it is. */
static bool s_mp_header(s_mp_t *r, uint64_t *skip, uint64_t *items, bool *is_str, bool *is_map)
{
    const uint8_t *t;
    if (!s_mp_take(r, 1, &t))
        return false;
    uint8_t c = *t;
    *skip = 0;
    *items = 0;
    *is_str = false;
    *is_map = false;
    uint64_t n = 0;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3)
        return true;
    if ((c & 0xf0) == 0x80) {
        *items = 2u * (c & 0x0f);
        *is_map = true;
        return true;
    }
    if ((c & 0xf0) == 0x90) {
        *items = c & 0x0f;
        return true;
    }
    if ((c & 0xe0) == 0xa0) {
        *skip = c & 0x1f;
        *is_str = true;
        return true;
    }
    switch (c) {
    case 0xc4:
    case 0xc5:
    case 0xc6: /* bin 8/16/32 */
        if (!s_mp_uint(r, 1 << (c - 0xc4), &n))
            return false;
        *skip = n;
        return true;
    case 0xc7:
    case 0xc8:
    case 0xc9: /* ext 8/16/32: length, then a type byte */
        if (!s_mp_uint(r, 1 << (c - 0xc7), &n))
            return false;
        *skip = n + 1;
        return true;
    case 0xca:
        *skip = 4;
        return true;
    case 0xcb:
        *skip = 8;
        return true;
    case 0xcc:
    case 0xd0:
        *skip = 1;
        return true;
    case 0xcd:
    case 0xd1:
        *skip = 2;
        return true;
    case 0xce:
    case 0xd2:
        *skip = 4;
        return true;
    case 0xcf:
    case 0xd3:
        *skip = 8;
        return true;
    case 0xd4:
        *skip = 2;
        return true;
    case 0xd5:
        *skip = 3;
        return true;
    case 0xd6:
        *skip = 5;
        return true;
    case 0xd7:
        *skip = 9;
        return true;
    case 0xd8:
        *skip = 17;
        return true;
    case 0xd9:
    case 0xda:
    case 0xdb: /* str 8/16/32 */
        if (!s_mp_uint(r, 1 << (c - 0xd9), &n))
            return false;
        *skip = n;
        *is_str = true;
        return true;
    case 0xdc:
    case 0xdd: /* array 16/32 */
        if (!s_mp_uint(r, c == 0xdc ? 2 : 4, &n))
            return false;
        *items = n;
        return true;
    case 0xde:
    case 0xdf: /* map 16/32 */
        if (!s_mp_uint(r, c == 0xde ? 2 : 4, &n))
            return false;
        *items = 2 * n;
        *is_map = true;
        return true;
    default: /* 0xc1: never used */
        return false;
    }
}

/* Skip one whole object, however deeply nested, without recursion. */
static bool s_mp_skip(s_mp_t *r)
{
    uint64_t pending = 1;
    while (pending) {
        uint64_t skip, items;
        bool is_str, is_map;
        if (!s_mp_header(r, &skip, &items, &is_str, &is_map) || !s_mp_take(r, skip, NULL))
            return false;
        pending--;
        /* Every nested object takes at least one byte: more than that is a lie. */
        if (items > (uint64_t)(r->end - r->p))
            return false;
        pending += items;
    }
    return true;
}

/* A string object into OUT when it fits; false when it is not a string. */
static bool s_mp_str(s_mp_t *r, char *out, size_t outlen)
{
    uint64_t skip, items;
    bool is_str, is_map;
    const uint8_t *s;
    if (!s_mp_header(r, &skip, &items, &is_str, &is_map) || !is_str || !s_mp_take(r, skip, &s))
        return false;
    size_t n = skip < outlen ? (size_t)skip : outlen - 1;
    memcpy(out, s, n);
    out[n] = '\0';
    return skip < outlen;
}

/* A map header at R: *PAIRS key/value pairs follow. */
static bool s_mp_map(s_mp_t *r, uint64_t *pairs)
{
    uint64_t skip, items;
    bool is_str, is_map;
    if (!s_mp_header(r, &skip, &items, &is_str, &is_map) || !is_map)
        return false;
    *pairs = items / 2;
    return true;
}

/* In the map at R, find the string value of KEY (into OUT) and leave the map behind; with
 * NESTED, the value of NESTED is itself searched for KEY instead. False on bad msgpack. */
static bool s_mp_find(s_mp_t *r, const char *key, const char *nested, char *out, size_t outlen,
                      char *nested_out, size_t nested_len)
{
    uint64_t pairs = 0;
    if (!s_mp_map(r, &pairs))
        return false;
    for (uint64_t i = 0; i < pairs; i++) {
        char k[16];
        s_mp_t at = *r;
        if (!s_mp_str(r, k, sizeof k)) {
            *r = at; /* not a short string key: skip it and its value */
            if (!s_mp_skip(r) || !s_mp_skip(r))
                return false;
            continue;
        }
        at = *r;
        if (strcmp(k, key) == 0) {
            if (!s_mp_str(r, out, outlen)) {
                out[0] = '\0';
                *r = at;
                if (!s_mp_skip(r))
                    return false;
            }
        } else if (nested && strcmp(k, nested) == 0) {
            if (!s_mp_find(r, "code", NULL, nested_out, nested_len, NULL, 0)) {
                nested_out[0] = '\0';
                *r = at;
                if (!s_mp_skip(r))
                    return false;
            }
        } else if (!s_mp_skip(r)) {
            return false;
        }
    }
    return true;
}

void cf_metrics_reply_outcome(const void *reply, size_t len, char *out, size_t outlen)
{
    if (!out || outlen == 0)
        return;
    s_mp_t r = {reply, reply ? (const uint8_t *)reply + len : NULL};
    char status[8] = "", code[CF_ERROR_CODE_MAX] = "";
    bool ok = reply && s_mp_find(&r, "status", "error", status, sizeof status, code, sizeof code);
    const char *result = "invalid_reply";
    if (ok && strcmp(status, "ok") == 0) {
        result = "ok";
    } else if (ok && strcmp(status, "error") == 0 && code[0]) {
        /* Codes are snake_case; anything else must not reach a label. */
        bool clean = true;
        for (const char *p = code; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
                clean = false;
        if (clean)
            result = code;
    }
    snprintf(out, outlen, "%s", result);
}

/* ---- HTTP metrics --------------------------------------------------------------------- */

void cf_metrics_http_request(const char *front, unsigned int code, double seconds)
{
    char f[64], labels[128];
    cf_metrics_label_escape(front ? front : "", f, sizeof f);
    snprintf(labels, sizeof labels, "front=\"%s\",code=\"%u\"", f, code);
    cf_metric_add(cf_metrics_counter("certfleet_http_requests_total",
                                     "HTTP requests answered, by front and status code", labels),
                  1);
    snprintf(labels, sizeof labels, "front=\"%s\"", f);
    cf_metric_observe(cf_metrics_histogram("certfleet_http_request_duration_seconds",
                                           "Time from a request's headers to its reply", labels),
                      seconds);
}

/* ---- the server ------------------------------------------------------------------------- */

/* Marks a request whose reply is queued: whatever body follows is dropped. */
static char s_answered;

static enum MHD_Result s_reply(struct MHD_Connection *conn, unsigned int status,
                               const char *content_type, char *body, size_t len, const char *allow)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (allow)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, allow);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result s_text(struct MHD_Connection *conn, unsigned int status, const char *text,
                              const char *allow)
{
    char *body = strdup(text);
    if (!body)
        return MHD_NO;
    return s_reply(conn, status, "text/plain; charset=utf-8", body, strlen(body), allow);
}

static enum MHD_Result s_access(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload_data,
                                size_t *upload_data_size, void **con_cls)
{
    if (*con_cls == &s_answered) {
        *upload_data_size = 0;
        return MHD_YES;
    }
    *con_cls = &s_answered;
    bool metrics = strcmp(url, "/metrics") == 0, health = strcmp(url, "/health") == 0;
    if (!metrics && !health)
        return s_text(conn, MHD_HTTP_NOT_FOUND, "not found: try /metrics or /health\n", NULL);
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return s_text(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method not allowed\n", "GET, HEAD");
    if (metrics) {
        size_t len = 0;
        char *text = cf_metrics_render(&len);
        if (!text)
            return s_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
        return s_reply(conn, MHD_HTTP_OK, "text/plain; version=0.0.4; charset=utf-8", text, len,
                       NULL);
    }
    int status = 503;
    char *doc = cf_health_render(&status);
    if (!doc)
        return s_text(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "out of memory\n", NULL);
    size_t len = strlen(doc);
    /* A newline after the document, for humans with curl. */
    char *body = realloc(doc, len + 2);
    if (!body) {
        free(doc);
        return MHD_NO;
    }
    body[len++] = '\n';
    body[len] = '\0';
    return s_reply(conn, (unsigned int)status, "application/json", body, len, NULL);
}

int cf_metrics_start(cf_config_t *config, const char *program)
{
    char labels[256], prog[128], version[64];
    cf_metrics_label_escape(program ? program : "", prog, sizeof prog);
    cf_metrics_label_escape(CF_VERSION, version, sizeof version);
    snprintf(labels, sizeof labels, "program=\"%s\",version=\"%s\"", prog, version);
    cf_metric_set(cf_metrics_gauge("certfleet_build_info",
                                   "Always 1; the labels name the program and its version", labels),
                  1);
    cf_metric_set(cf_metrics_gauge("certfleet_process_start_time_seconds",
                                   "Start time of the process since the Unix epoch in seconds", ""),
                  (int64_t)time(NULL));

    int64_t port = cf_config_get_int(config, "metrics", "port", 0);
    const char *address = cf_config_get(config, "metrics", "address", "127.0.0.1");
    if (port < 0 || port > 65535) {
        cf_log_error("config \"metrics.port\" = %lld is out of range [0, 65535]", (long long)port);
        return -1;
    }
    pthread_mutex_lock(&s_server.lock);
    snprintf(s_server.program, sizeof s_server.program, "%s", program ? program : "");
    int rc = 0;
    if (port == 0 || s_server.mhd)
        goto out;
    rc = -1;
    /* cf_front_listen_addr reads "HOST:PORT" and "[V6]:PORT". */
    char listen[300];
    bool bare_v6 = strchr(address, ':') && address[0] != '[';
    snprintf(listen, sizeof listen, "%s%s%s:%lld", bare_v6 ? "[" : "", address, bare_v6 ? "]" : "",
             (long long)port);
    struct sockaddr_storage addr = {0};
    bool v6 = false;
    if (cf_front_listen_addr(listen, &addr, &v6) != 0) {
        cf_log_error("could not resolve metrics address \"%s\"", listen);
        goto out;
    }
    unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_AUTO | MHD_USE_ERROR_LOG;
    if (v6)
        flags |= MHD_USE_IPv6;
    s_server.mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, s_access, NULL,
        /* First, so that MHD's complaints about the options below come through our log. */
        MHD_OPTION_EXTERNAL_LOGGER, cf_front_mhd_log, NULL, MHD_OPTION_SOCK_ADDR,
        (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_LIMIT, (unsigned int)S_HTTP_CONNECTIONS,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned int)S_HTTP_TIMEOUT_S,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)S_HTTP_MEMORY, MHD_OPTION_END);
    if (!s_server.mhd) {
        cf_log_error("could not serve metrics on \"%s\" (is the port taken? each process of a "
                     "host needs its own [metrics] port)",
                     listen);
        goto out;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(s_server.mhd, MHD_DAEMON_INFO_BIND_PORT);
    s_server.port = info ? (int)info->port : (int)port;
    cf_log_info("serving /metrics and /health on %s", listen);
    rc = 0;
out:
    pthread_mutex_unlock(&s_server.lock);
    return rc;
}

int cf_metrics_port(void)
{
    pthread_mutex_lock(&s_server.lock);
    int port = s_server.port;
    pthread_mutex_unlock(&s_server.lock);
    return port;
}

void cf_metrics_stop(void)
{
    pthread_mutex_lock(&s_server.lock);
    struct MHD_Daemon *mhd = s_server.mhd;
    s_server.mhd = NULL;
    s_server.port = 0;
    pthread_mutex_unlock(&s_server.lock);
    /* Joins the server thread: no probe runs after this. */
    if (mhd)
        MHD_stop_daemon(mhd);
    pthread_mutex_lock(&s_health.lock);
    for (s_check_t *c = s_health.first; c; c = c->next) {
        c->probe = NULL;
        c->probe_arg = NULL;
    }
    pthread_mutex_unlock(&s_health.lock);
}
