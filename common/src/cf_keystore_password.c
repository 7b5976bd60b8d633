/* cf_password: a private key password and where it came from (see cf_keystore.h). Every copy
 * of a password this file makes is wiped before it is freed; none is ever logged. */
#include "cf_keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cf_log.h"
#include "cf_secret.h"

struct _cf_password_t {
    char *value;     /* the password, NUL-terminated; NULL when there is none */
    size_t len;      /* its length, for wiping */
    char source[96]; /* where it came from, for logs (never the value) */
};

static cf_password_t *s_new(const char *value, size_t len, const char *source)
{
    cf_password_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (value && len > 0) {
        self->value = malloc(len + 1);
        if (!self->value) {
            free(self);
            return NULL;
        }
        memcpy(self->value, value, len);
        self->value[len] = '\0';
        self->len = len;
    }
    snprintf(self->source, sizeof self->source, "%s", self->value ? source : "none");
    return self;
}

cf_password_t *cf_password_new(const char *value)
{
    return s_new(value, value ? strlen(value) : 0, "job");
}

void cf_password_free(cf_password_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_password_t *self = *self_p;
    if (self->value) {
        OPENSSL_cleanse(self->value, self->len);
        free(self->value);
    }
    free(self);
    *self_p = NULL;
}

const char *cf_password_value(const cf_password_t *self)
{
    return self ? self->value : NULL;
}

const char *cf_password_source(const cf_password_t *self)
{
    return self ? self->source : "none";
}

/* Config key PREFIX<id>: the id with everything but [A-Za-z0-9_] as '_', so that it is also
 * a valid part of a CERTFLEET_KEYS_... environment variable name. */
static void s_config_key(char *out, size_t outlen, const char *prefix, const char *key_id)
{
    int n = snprintf(out, outlen, "%s%s", prefix, key_id);
    if (n < 0)
        return;
    for (char *p = out + strlen(prefix); *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
            *p = '_';
}

/* The password in environment variable NAME; NULL without error when it is not set. */
static cf_password_t *s_from_env(const char *setting, const char *name, bool *found)
{
    const char *value = getenv(name);
    *found = false;
    if (!value || !*value) {
        cf_log_warn("config \"keys.%s\" names environment variable \"%s\", which is not set",
                    setting, name);
        return NULL;
    }
    *found = true;
    char source[96];
    snprintf(source, sizeof source, "environment variable \"%.60s\"", name);
    return s_new(value, strlen(value), source);
}

/* The first line of file PATH. NULL + err when it cannot be read. */
static cf_password_t *s_from_file(const char *path, cf_error_t *err)
{
    size_t len = 0;
    char *secret = cf_secret_file_read(path, &len, err);
    if (!secret)
        return NULL;
    char source[96];
    snprintf(source, sizeof source, "file \"%.80s\"", path);
    cf_password_t *pw = s_new(secret, len, source);
    if (!pw)
        cf_error_set(err, "internal", "", "out of memory");
    OPENSSL_cleanse(secret, len);
    free(secret);
    return pw;
}

cf_password_t *cf_password_resolve(cf_config_t *cfg, const char *key_id, const char *job_password,
                                   cf_error_t *err)
{
    if (job_password && *job_password)
        return s_new(job_password, strlen(job_password), "job");

    /* Most specific first: the key's own settings, then the general ones. */
    char env_key[CF_KEYSTORE_ID_MAX + 32];
    char file_key[CF_KEYSTORE_ID_MAX + 32];
    s_config_key(env_key, sizeof env_key, "password_env_", key_id ? key_id : "");
    s_config_key(file_key, sizeof file_key, "password_file_", key_id ? key_id : "");
    const char *settings[4][2] = {
        {"env", key_id ? env_key : NULL},
        {"file", key_id ? file_key : NULL},
        {"env", "password_env"},
        {"file", "password_file"},
    };
    for (int i = 0; i < 4; i++) {
        if (!settings[i][1])
            continue;
        const char *value = cf_config_get(cfg, "keys", settings[i][1], NULL);
        if (!value || !*value)
            continue;
        if (settings[i][0][0] == 'f')
            return s_from_file(value, err);
        bool found = false;
        cf_password_t *pw = s_from_env(settings[i][1], value, &found);
        if (found) {
            if (!pw)
                cf_error_set(err, "internal", "", "out of memory");
            return pw;
        }
    }
    cf_password_t *none = s_new(NULL, 0, "none");
    if (!none)
        cf_error_set(err, "internal", "", "out of memory");
    return none;
}
