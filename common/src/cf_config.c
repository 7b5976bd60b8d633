/* cf_config: INI file + CERTFLEET_<SECTION>_<KEY> environment overrides + defaults.
 *
 * Format: "[section]" headers, "key = value" lines, whole-line comments starting with '#'
 * or ';', blank lines. A value is everything after '=' with the surrounding blanks trimmed;
 * a value written in double quotes keeps its blanks (the quotes are dropped). Section and
 * key names are matched without regard to case, as the environment variables are. Anything
 * else is refused with its line number: a config that says something we do not understand
 * must stop the process, not be half applied. */
#include "cf_config.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cf_log.h"

typedef struct s_entry_t {
    char *section;          /* section name as written */
    char *key;              /* key name */
    char *value;            /* value, trimmed */
    struct s_entry_t *next; /* next entry */
} s_entry_t;

struct _cf_config_t {
    s_entry_t *entries; /* every key, newest first */
    char *path;         /* file it came from, or NULL */
};

cf_config_t *cf_config_new(void)
{
    return calloc(1, sizeof(cf_config_t));
}

void cf_config_destroy(cf_config_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_config_t *self = *self_p;
    s_entry_t *e = self->entries;
    while (e) {
        s_entry_t *next = e->next;
        free(e->section);
        free(e->key);
        free(e->value);
        free(e);
        e = next;
    }
    free(self->path);
    free(self);
    *self_p = NULL;
}

static char *s_trim(char *s)
{
    while (isspace((unsigned char)*s))
        s++;
    char *end = s + strlen(s);
    while (end > s && isspace((unsigned char)end[-1]))
        *--end = '\0';
    return s;
}

static bool s_valid_name(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!isalnum((unsigned char)*s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

int cf_config_set(cf_config_t *self, const char *section, const char *key, const char *value)
{
    for (s_entry_t *e = self->entries; e; e = e->next) {
        if (strcasecmp(e->section, section) == 0 && strcasecmp(e->key, key) == 0) {
            char *copy = strdup(value);
            if (!copy)
                return -1;
            free(e->value);
            e->value = copy;
            return 0;
        }
    }
    s_entry_t *e = calloc(1, sizeof *e);
    if (!e)
        return -1;
    e->section = strdup(section);
    e->key = strdup(key);
    e->value = strdup(value);
    if (!e->section || !e->key || !e->value) {
        free(e->section);
        free(e->key);
        free(e->value);
        free(e);
        return -1;
    }
    e->next = self->entries;
    self->entries = e;
    return 0;
}

cf_config_t *cf_config_load(const char *path, char *errbuf, size_t errlen)
{
    if (!path || !*path)
        path = getenv("CERTFLEET_CONFIG");
    cf_config_t *self = cf_config_new();
    if (!self) {
        snprintf(errbuf, errlen, "out of memory");
        return NULL;
    }
    if (!path || !*path)
        return self;
    FILE *f = fopen(path, "r");
    if (!f) {
        snprintf(errbuf, errlen, "could not open config file \"%s\": %s", path, strerror(errno));
        cf_config_destroy(&self);
        return NULL;
    }
    self->path = strdup(path);
    if (!self->path) {
        snprintf(errbuf, errlen, "out of memory");
        fclose(f);
        cf_config_destroy(&self);
        return NULL;
    }
    char line[4096], section[128] = "";
    int lineno = 0;
    while (fgets(line, sizeof line, f)) {
        lineno++;
        if (!strchr(line, '\n') && !feof(f)) {
            snprintf(errbuf, errlen, "config file \"%s\" line %d: line too long", path, lineno);
            goto fail;
        }
        char *s = line;
        /* A byte order mark from an editor on the first line is not part of the text. */
        if (lineno == 1 && strncmp(s, "\xef\xbb\xbf", 3) == 0)
            s += 3;
        s = s_trim(s);
        if (*s == '\0' || *s == '#' || *s == ';')
            continue;
        if (*s == '[') {
            char *end = strchr(s, ']');
            if (!end || end[1] != '\0') {
                snprintf(errbuf, errlen, "config file \"%s\" line %d: malformed section header",
                         path, lineno);
                goto fail;
            }
            *end = '\0';
            char *name = s_trim(s + 1);
            if (!s_valid_name(name) || strlen(name) >= sizeof section) {
                snprintf(errbuf, errlen, "config file \"%s\" line %d: bad section name \"%s\"",
                         path, lineno, name);
                goto fail;
            }
            snprintf(section, sizeof section, "%s", name);
            continue;
        }
        char *eq = strchr(s, '=');
        if (!eq) {
            snprintf(errbuf, errlen, "config file \"%s\" line %d: expected \"key = value\"", path,
                     lineno);
            goto fail;
        }
        *eq = '\0';
        char *key = s_trim(s), *value = s_trim(eq + 1);
        size_t vlen = strlen(value);
        if (vlen >= 2 && value[0] == '"' && value[vlen - 1] == '"') {
            value[vlen - 1] = '\0';
            value++;
        }
        if (!section[0]) {
            snprintf(errbuf, errlen, "config file \"%s\" line %d: key \"%s\" outside a section",
                     path, lineno, key);
            goto fail;
        }
        if (!s_valid_name(key)) {
            snprintf(errbuf, errlen, "config file \"%s\" line %d: bad key name \"%s\"", path,
                     lineno, key);
            goto fail;
        }
        if (cf_config_set(self, section, key, value) != 0) {
            snprintf(errbuf, errlen, "out of memory");
            goto fail;
        }
    }
    fclose(f);
    return self;
fail:
    fclose(f);
    cf_config_destroy(&self);
    return NULL;
}

/* CERTFLEET_<SECTION>_<KEY>, upper case, '-' and '.' as '_'. */
static const char *s_env(const char *section, const char *key)
{
    char name[300];
    int n = snprintf(name, sizeof name, "CERTFLEET_%s_%s", section, key);
    if (n < 0 || (size_t)n >= sizeof name)
        return NULL;
    for (char *p = name; *p; p++) {
        if (*p == '-' || *p == '.')
            *p = '_';
        else
            *p = (char)toupper((unsigned char)*p);
    }
    return getenv(name);
}

const char *cf_config_get(cf_config_t *self, const char *section, const char *key, const char *dflt)
{
    const char *env = s_env(section, key);
    if (env)
        return env;
    for (s_entry_t *e = self ? self->entries : NULL; e; e = e->next)
        if (strcasecmp(e->section, section) == 0 && strcasecmp(e->key, key) == 0)
            return e->value;
    return dflt;
}

int64_t cf_config_get_int(cf_config_t *self, const char *section, const char *key, int64_t dflt)
{
    const char *v = cf_config_get(self, section, key, NULL);
    if (!v)
        return dflt;
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end != '\0') {
        cf_log_warn("config \"%s.%s\" = \"%s\" is not an integer, using %lld", section, key, v,
                    (long long)dflt);
        return dflt;
    }
    return n;
}

bool cf_config_get_bool(cf_config_t *self, const char *section, const char *key, bool dflt)
{
    const char *v = cf_config_get(self, section, key, NULL);
    if (!v)
        return dflt;
    if (!strcasecmp(v, "1") || !strcasecmp(v, "true") || !strcasecmp(v, "yes") ||
        !strcasecmp(v, "on"))
        return true;
    if (!strcasecmp(v, "0") || !strcasecmp(v, "false") || !strcasecmp(v, "no") ||
        !strcasecmp(v, "off"))
        return false;
    cf_log_warn("config \"%s.%s\" = \"%s\" is not a boolean, using %s", section, key, v,
                dflt ? "true" : "false");
    return dflt;
}

const char *cf_config_path(cf_config_t *self)
{
    return self ? self->path : NULL;
}
