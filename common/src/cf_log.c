/* cf_log: level-gated text or JSON lines on stderr, and the [AUDIT] log.
 *
 * The settings are process state set once at start (as Redis's server.verbosity); they are
 * the one exception to "no mutable globals". Every line is formatted into one buffer and
 * written with one stdio call, so that lines of several threads (and of several processes
 * sharing one log file opened with O_APPEND) never interleave.
 *
 * A message or audit value may hold anything a client sent us: control characters are
 * escaped in text lines so nobody can forge a line, and JSON lines are always valid UTF-8. */
#include "cf_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

/* Longest line we write; longer messages are cut. */
#define S_LINE_MAX 8192
/* Bytes a JSON line keeps free for closing what it opened. */
#define S_JSON_RESERVE 40
/* Bytes every line keeps for its end: "}", newline, NUL. */
#define S_TAIL 3

static struct {
    char ident[64];       /* process name, e.g. "certfleet-broker" */
    cf_log_level_t level; /* highest level written */
    bool json;            /* JSON lines instead of text */
} s_log = {"certfleet", CF_LOG_INFO, false};

static const char *const s_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

/* A line being built; appends past the end are dropped (the line is cut, not overrun). */
typedef struct {
    char buf[S_LINE_MAX]; /* the line */
    size_t len;           /* bytes used */
    bool cut;             /* a JSON string was cut: add nothing more */
} s_line_t;

void cf_log_init(const char *ident, cf_log_level_t level, bool json)
{
    snprintf(s_log.ident, sizeof s_log.ident, "%s", ident && *ident ? ident : "certfleet");
    if (level < CF_LOG_ERROR)
        level = CF_LOG_ERROR;
    if (level > CF_LOG_DEBUG)
        level = CF_LOG_DEBUG;
    s_log.level = level;
    s_log.json = json;
}

void cf_log_configure(cf_config_t *cfg, const char *ident)
{
    const char *level = cf_config_get(cfg, "log", "level", "info");
    const char *format = cf_config_get(cfg, "log", "format", "text");
    cf_log_level_t lvl = CF_LOG_INFO;
    bool known = false;
    for (int i = CF_LOG_ERROR; i <= CF_LOG_DEBUG; i++) {
        if (strcasecmp(level, s_names[i]) == 0) {
            lvl = (cf_log_level_t)i;
            known = true;
        }
    }
    if (strcasecmp(level, "warning") == 0) {
        lvl = CF_LOG_WARN;
        known = true;
    }
    bool json = strcasecmp(format, "json") == 0;
    cf_log_init(ident, lvl, json);
    /* Said after init, so that the warning comes out in the format asked for. */
    if (!known)
        cf_log_warn("unknown log level \"%s\", using \"info\"", level);
    if (!json && strcasecmp(format, "text") != 0)
        cf_log_warn("unknown log format \"%s\", using \"text\"", format);
}

bool cf_log_enabled(cf_log_level_t level)
{
    return level <= s_log.level;
}

static void s_putc(s_line_t *line, char c)
{
    if (line->len < sizeof line->buf - S_TAIL)
        line->buf[line->len++] = c;
}

static void s_puts(s_line_t *line, const char *s)
{
    while (*s)
        s_putc(line, *s++);
}

static void s_printf(s_line_t *line, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void s_printf(s_line_t *line, const char *fmt, ...)
{
    if (line->len >= sizeof line->buf - S_TAIL)
        return;
    size_t room = sizeof line->buf - S_TAIL - line->len;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(line->buf + line->len, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        line->len += (size_t)n < room ? (size_t)n : room - 1;
}

/* Text: printable bytes as they are (UTF-8 included), control characters as \n, \t, \xNN,
 * so that a value can never start a line of its own. */
static void s_put_text(s_line_t *line, const char *s, bool quoted)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n')
            s_puts(line, "\\n");
        else if (*p == '\t')
            s_puts(line, "\\t");
        else if (*p == '\r')
            s_puts(line, "\\r");
        else if (*p < 0x20 || *p == 0x7f)
            s_printf(line, "\\x%02x", *p);
        else if (quoted && (*p == '"' || *p == '\\')) {
            s_putc(line, '\\');
            s_putc(line, (char)*p);
        } else
            s_putc(line, (char)*p);
    }
}

/* Length of the valid UTF-8 sequence at P, or 0 when it is not one. */
static size_t s_utf8_len(const unsigned char *p)
{
    if (p[0] < 0x80)
        return 1;
    size_t n;
    unsigned min;
    unsigned cp;
    if ((p[0] & 0xe0) == 0xc0) {
        n = 2, min = 0x80, cp = p[0] & 0x1f;
    } else if ((p[0] & 0xf0) == 0xe0) {
        n = 3, min = 0x800, cp = p[0] & 0x0f;
    } else if ((p[0] & 0xf8) == 0xf0) {
        n = 4, min = 0x10000, cp = p[0] & 0x07;
    } else {
        return 0;
    }
    for (size_t i = 1; i < n; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (p[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

/* A JSON string, quotes included; bytes that are not UTF-8 become U+FFFD. A string that does
 * not fit is cut between characters (never inside an escape) and the line marked cut, so
 * that the caller adds nothing more and the line stays valid JSON. */
static void s_put_json(s_line_t *line, const char *s)
{
    s_putc(line, '"');
    /* Room for the closing quote, "}" and anything a caller adds after a cut. */
    size_t room = sizeof line->buf - line->len;
    size_t avail = room > S_JSON_RESERVE ? room - S_JSON_RESERVE : 0;
    size_t used = 0;
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        char esc[8];
        const char *piece = esc;
        size_t n, step = 1;
        if (*p == '"' || *p == '\\') {
            esc[0] = '\\', esc[1] = (char)*p, n = 2;
        } else if (*p == '\n') {
            memcpy(esc, "\\n", 2), n = 2;
        } else if (*p < 0x20 || *p == 0x7f) {
            snprintf(esc, sizeof esc, "\\u%04x", *p), n = 6;
        } else if ((step = s_utf8_len(p)) == 0) {
            memcpy(esc, "\\ufffd", 6), n = 6, step = 1;
        } else {
            piece = (const char *)p, n = step;
        }
        if (used + n > avail) {
            line->cut = true;
            break;
        }
        memcpy(line->buf + line->len, piece, n);
        line->len += n;
        used += n;
        p += step;
    }
    s_putc(line, '"');
}

static void s_timestamp(char *buf, size_t len)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    size_t n = strftime(buf, len, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf + n, len - n, ".%03ldZ", ts.tv_nsec / 1000000L);
}

/* The fields every JSON line starts with: {"ts":..,"level":..,"proc":..,"pid":.. */
static void s_json_head(s_line_t *line, const char *ts, const char *level)
{
    s_puts(line, "{\"ts\":");
    s_put_json(line, ts);
    if (level) {
        s_puts(line, ",\"level\":");
        s_put_json(line, level);
    } else {
        s_puts(line, ",\"audit\":true");
    }
    s_puts(line, ",\"proc\":");
    s_put_json(line, s_log.ident);
    s_printf(line, ",\"pid\":%d", (int)getpid());
}

static void s_emit(s_line_t *line, bool json)
{
    if (json)
        line->buf[line->len++] = '}';
    line->buf[line->len++] = '\n';
    line->buf[line->len] = '\0';
    fwrite(line->buf, 1, line->len, stderr);
    fflush(stderr);
}

void cf_log_write(cf_log_level_t level, const char *file, int line, const char *fmt, ...)
{
    if (level < CF_LOG_ERROR || level > CF_LOG_DEBUG)
        level = CF_LOG_ERROR;
    char msg[S_LINE_MAX / 2], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s_timestamp(ts, sizeof ts);
    s_line_t out = {.len = 0};
    if (s_log.json) {
        s_json_head(&out, ts, s_names[level]);
        s_puts(&out, ",\"msg\":");
        s_put_json(&out, msg);
        /* Where a debug line comes from helps whoever turned debug on. */
        if (level == CF_LOG_DEBUG && file && !out.cut) {
            char src[300];
            snprintf(src, sizeof src, "%s:%d", file, line);
            s_puts(&out, ",\"src\":");
            s_put_json(&out, src);
        }
    } else {
        s_printf(&out, "%s %s[%d] %s ", ts, s_log.ident, (int)getpid(), s_names[level]);
        s_put_text(&out, msg, false);
        if (level == CF_LOG_DEBUG && file)
            s_printf(&out, " (%s:%d)", file, line);
    }
    s_emit(&out, s_log.json);
}

/* A text value needs quotes when it is empty or holds a space, a quote, '=' or a backslash:
 * then key=value splits unambiguously on spaces. */
static bool s_needs_quotes(const char *v)
{
    if (*v == '\0')
        return true;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++)
        if (*p <= ' ' || *p == '"' || *p == '=' || *p == '\\' || *p == 0x7f)
            return true;
    return false;
}

void cf_audit(const char *event, ...)
{
    char ts[40];
    s_timestamp(ts, sizeof ts);
    s_line_t out = {.len = 0};
    va_list ap;
    va_start(ap, event);
    if (s_log.json) {
        s_json_head(&out, ts, NULL);
        s_puts(&out, ",\"event\":");
        s_put_json(&out, event ? event : "");
    } else {
        s_printf(&out, "%s %s[%d] [AUDIT] ", ts, s_log.ident, (int)getpid());
        s_put_text(&out, event ? event : "", false);
    }
    const char *key;
    while (!out.cut && (key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        if (!value)
            value = "";
        if (s_log.json) {
            s_putc(&out, ',');
            s_put_json(&out, key);
            s_putc(&out, ':');
            s_put_json(&out, value);
        } else {
            s_putc(&out, ' ');
            s_put_text(&out, key, false);
            s_putc(&out, '=');
            bool quote = s_needs_quotes(value);
            if (quote)
                s_putc(&out, '"');
            s_put_text(&out, value, quote);
            if (quote)
                s_putc(&out, '"');
        }
    }
    va_end(ap);
    s_emit(&out, s_log.json);
}
