/* The notifier's settings ([notify] and [smtp]), read once per process on the first job. */
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_mail.h"
#include "cf_secret.h"
#include "cf_log.h"
#include "notify.h"

#define S_THRESHOLDS_DEFAULT "30,14,7,3,1"

static int s_int_desc(const void *a, const void *b)
{
    int x = *(const int *)a, y = *(const int *)b;
    return (x < y) - (x > y);
}

int notify_parse_thresholds(const char *text, int *out)
{
    int n = 0;
    const char *p = text;
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        char *end;
        errno = 0;
        long v = strtol(p, &end, 10);
        if (end == p || errno != 0 || v < 1 || v > NOTIFY_DAYS_MAX)
            return -1;
        bool seen = false;
        for (int i = 0; i < n; i++)
            seen = seen || out[i] == (int)v;
        if (!seen) {
            if (n == NOTIFY_THRESHOLDS_MAX)
                return -1;
            out[n++] = (int)v;
        }
        p = end;
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p == '\0')
            break;
        if (*p++ != ',')
            return -1;
    }
    qsort(out, (size_t)n, sizeof *out, s_int_desc);
    return n;
}

static char *s_dup_or_null(const char *s)
{
    return s && *s ? strdup(s) : NULL;
}

/* The first line of PATH (caller wipes and frees), or NULL with why in ERR. */
static char *s_read_secret(const char *path, char *err, size_t errlen)
{
    cf_error_t e = {0};
    size_t len = 0;
    char *secret = cf_secret_file_read(path, &len, &e);
    if (!secret) {
        snprintf(err, errlen, "[smtp] password_file: %s", e.message);
    } else if (len == 0) {
        snprintf(err, errlen, "[smtp] password_file \"%s\" is empty", path);
        free(secret);
        secret = NULL;
    }
    return secret;
}

/* Fill C from [smtp]; what makes sending impossible goes into C->error. */
static void s_smtp_load(cf_config_t *cfg, notify_smtp_config_t *c)
{
    c->url = strdup(cf_config_get(cfg, "smtp", "url", "smtp://127.0.0.1:25"));
    c->from = s_dup_or_null(cf_config_get(cfg, "smtp", "from", NULL));
    c->username = s_dup_or_null(cf_config_get(cfg, "smtp", "username", NULL));
    c->ca_file = s_dup_or_null(cf_config_get(cfg, "smtp", "ca_file", NULL));
    int64_t timeout = cf_config_get_int(cfg, "smtp", "timeout_ms", 10000);
    if (timeout < 100 || timeout > 600000) {
        cf_log_warn("[smtp] timeout_ms = %lld is not from 100 to 600000, using 10000",
                    (long long)timeout);
        timeout = 10000;
    }
    c->timeout_ms = (int)timeout;
    const char *starttls = cf_config_get(cfg, "smtp", "starttls", "try");
    const char *password_file = cf_config_get(cfg, "smtp", "password_file", NULL);
    if (strcmp(starttls, "none") == 0)
        c->use_ssl = CURLUSESSL_NONE;
    else if (strcmp(starttls, "try") == 0)
        c->use_ssl = CURLUSESSL_TRY;
    else if (strcmp(starttls, "required") == 0)
        c->use_ssl = CURLUSESSL_ALL;
    else
        snprintf(c->error, sizeof c->error,
                 "[smtp] starttls \"%s\" is not one of none, try, required", starttls);
    if (!c->url || (strncmp(c->url, "smtp://", 7) != 0 && strncmp(c->url, "smtps://", 8) != 0)) {
        snprintf(c->error, sizeof c->error, "[smtp] url \"%s\" is not an smtp:// or smtps:// URL",
                 c->url ? c->url : "");
        return;
    }
    if (!c->from) {
        snprintf(c->error, sizeof c->error, "[smtp] from is not set: no sender for expiry mail");
        return;
    }
    /* "Name <addr>" or a bare address. */
    const char *lt = strrchr(c->from, '<');
    char addr[300];
    if (lt) {
        snprintf(addr, sizeof addr, "%s", lt + 1);
        char *gt = strchr(addr, '>');
        if (gt && gt[1] == '\0')
            *gt = '\0';
        else
            addr[0] = '\0';
    } else {
        snprintf(addr, sizeof addr, "%s", c->from);
    }
    if (strpbrk(c->from, "\r\n") || !cf_mail_addr_valid(addr)) {
        snprintf(c->error, sizeof c->error, "[smtp] from \"%s\" holds no valid mail address",
                 c->from);
        return;
    }
    c->from_addr = strdup(addr);
    c->from_domain = strdup(strrchr(addr, '@') + 1);
    if (password_file && *password_file)
        c->password = s_read_secret(password_file, c->error, sizeof c->error);
}

notify_state_t *notify_state(cf_handler_ctx_t *ctx)
{
    notify_state_t *s = ctx->state;
    if (s->loaded)
        return s;
    s->loaded = true;
    const char *text = cf_config_get(ctx->config, "notify", "thresholds", S_THRESHOLDS_DEFAULT);
    int n = notify_parse_thresholds(text, s->thresholds);
    if (n <= 0) {
        cf_log_warn("[notify] thresholds \"%s\" is not a list of days from 1 to %d, using %s", text,
                    NOTIFY_DAYS_MAX, S_THRESHOLDS_DEFAULT);
        n = notify_parse_thresholds(S_THRESHOLDS_DEFAULT, s->thresholds);
    }
    s->nthresholds = (size_t)n;
    int64_t retry = cf_config_get_int(ctx->config, "notify", "retry_s", 300);
    if (retry < 1 || retry > 86400 * 30) {
        cf_log_warn("[notify] retry_s = %lld is not from 1 to 2592000, using 300",
                    (long long)retry);
        retry = 300;
    }
    s->retry_s = (int)retry;
    s_smtp_load(ctx->config, &s->smtp);
    if (s->smtp.error[0])
        cf_log_warn("expiry mail cannot be sent: %s", s->smtp.error);
    return s;
}

void notify_state_destroy(notify_state_t *state)
{
    notify_smtp_config_t *c = &state->smtp;
    if (c->password)
        OPENSSL_cleanse(c->password, strlen(c->password));
    free(c->password);
    free(c->url);
    free(c->from);
    free(c->from_addr);
    free(c->from_domain);
    free(c->username);
    free(c->ca_file);
    memset(state, 0, sizeof *state);
}
