/* cf_log: level-gated text or JSON lines on stderr, and the [AUDIT] log.
 * The settings are process state set once at start (like Redis's server.verbosity); they
 * are the one exception to "no mutable globals". */
#include "cf_log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

static struct {
    char ident[64];       /* process name */
    cf_log_level_t level; /* highest level written */
    bool json;            /* JSON lines instead of text */
} s_log = {"certfleet", CF_LOG_INFO, false};

static const char *const s_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

void cf_log_init(const char *ident, cf_log_level_t level, bool json)
{
    snprintf(s_log.ident, sizeof s_log.ident, "%s", ident ? ident : "certfleet");
    s_log.level = level;
    s_log.json = json;
}

void cf_log_configure(cf_config_t *cfg, const char *ident)
{
    const char *level = cf_config_get(cfg, "log", "level", "info");
    const char *format = cf_config_get(cfg, "log", "format", "text");
    cf_log_level_t lvl = CF_LOG_INFO;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(level, s_names[i]) == 0 || (i == 1 && strcasecmp(level, "warning") == 0))
            lvl = (cf_log_level_t)i;
    cf_log_init(ident, lvl, strcasecmp(format, "json") == 0);
}

bool cf_log_enabled(cf_log_level_t level)
{
    return level <= s_log.level;
}

static void s_timestamp(char *buf, size_t len)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    struct tm tm;
    gmtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", (long)(tv.tv_usec / 1000));
}

/* Write one whole line with a single call, so that lines of several threads do not mix. */
static void s_emit(const char *line)
{
    fputs(line, stderr);
    fflush(stderr);
}

void cf_log_write(cf_log_level_t level, const char *file, int line, const char *fmt, ...)
{
    char msg[2048], ts[40], out[2600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s_timestamp(ts, sizeof ts);
    if (s_log.json) {
        json_t *obj = json_pack("{s:s, s:s, s:s, s:i, s:s}", "ts", ts, "level", s_names[level],
                                "proc", s_log.ident, "pid", (int)getpid(), "msg", msg);
        if (level == CF_LOG_DEBUG)
            json_object_set_new(obj, "src", json_sprintf("%s:%d", file, line));
        char *text = json_dumps(obj, JSON_COMPACT);
        snprintf(out, sizeof out, "%s\n", text ? text : "{}");
        free(text);
        json_decref(obj);
    } else if (level == CF_LOG_DEBUG) {
        snprintf(out, sizeof out, "%s %s[%d] %s %s (%s:%d)\n", ts, s_log.ident, (int)getpid(),
                 s_names[level], msg, file, line);
    } else {
        snprintf(out, sizeof out, "%s %s[%d] %s %s\n", ts, s_log.ident, (int)getpid(),
                 s_names[level], msg);
    }
    s_emit(out);
}

void cf_audit(const char *event, ...)
{
    char ts[40];
    s_timestamp(ts, sizeof ts);
    va_list ap;
    va_start(ap, event);
    if (s_log.json) {
        json_t *obj = json_pack("{s:s, s:b, s:s, s:s, s:i}", "ts", ts, "audit", 1, "event", event,
                                "proc", s_log.ident, "pid", (int)getpid());
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL) {
            const char *v = va_arg(ap, const char *);
            json_object_set_new(obj, k, json_string(v ? v : ""));
        }
        char *text = json_dumps(obj, JSON_COMPACT);
        char out[4096];
        snprintf(out, sizeof out, "%s\n", text ? text : "{}");
        free(text);
        json_decref(obj);
        s_emit(out);
    } else {
        char out[4096];
        size_t n = (size_t)snprintf(out, sizeof out, "%s %s[%d] [AUDIT] %s", ts, s_log.ident,
                                    (int)getpid(), event);
        const char *k;
        while ((k = va_arg(ap, const char *)) != NULL && n < sizeof out) {
            const char *v = va_arg(ap, const char *);
            v = v ? v : "";
            bool quote = *v == '\0' || strpbrk(v, " \t\"=") != NULL;
            n += (size_t)snprintf(out + n, sizeof out - n, quote ? " %s=\"%s\"" : " %s=%s", k, v);
        }
        if (n < sizeof out - 1) {
            out[n] = '\n';
            out[n + 1] = '\0';
        } else {
            out[sizeof out - 2] = '\n';
        }
        s_emit(out);
    }
    va_end(ap);
}
