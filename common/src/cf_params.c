/* cf_params: typed access to job params with field-naming errors. */
#include "cf_params.h"

#include <string.h>

static void s_field(char *buf, size_t len, const char *key)
{
    snprintf(buf, len, "params.%s", key);
}

int cf_params_check_keys(const json_t *params, const char *const *allowed, cf_error_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)params, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a && !ok; a++)
            ok = strcmp(*a, key) == 0;
        if (!ok) {
            char f[CF_ERROR_FIELD_MAX];
            s_field(f, sizeof f, key);
            cf_error_set(err, "unknown_field", f, "unknown parameter \"%s\"", key);
            return -1;
        }
    }
    return 0;
}

int cf_params_str(const json_t *params, const char *key, bool required, const char *dflt,
                  const char **out, cf_error_t *err)
{
    json_t *v = json_object_get(params, key);
    char f[CF_ERROR_FIELD_MAX];
    s_field(f, sizeof f, key);
    if (!v || json_is_null(v)) {
        if (required) {
            cf_error_set(err, "missing_field", f, "parameter \"%s\" is required", key);
            return -1;
        }
        *out = dflt;
        return 0;
    }
    if (!json_is_string(v)) {
        cf_error_set(err, "invalid_type", f, "parameter \"%s\" must be a string", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

int cf_params_int(const json_t *params, const char *key, int64_t dflt, int64_t min, int64_t max,
                  int64_t *out, cf_error_t *err)
{
    json_t *v = json_object_get(params, key);
    char f[CF_ERROR_FIELD_MAX];
    s_field(f, sizeof f, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_integer(v)) {
        cf_error_set(err, "invalid_type", f, "parameter \"%s\" must be an integer", key);
        return -1;
    }
    int64_t n = json_integer_value(v);
    if (n < min || n > max) {
        cf_error_set(err, "invalid_value", f, "parameter \"%s\" must be from %lld to %lld", key,
                     (long long)min, (long long)max);
        return -1;
    }
    *out = n;
    return 0;
}

int cf_params_bool(const json_t *params, const char *key, bool dflt, bool *out, cf_error_t *err)
{
    json_t *v = json_object_get(params, key);
    if (!v || json_is_null(v)) {
        *out = dflt;
        return 0;
    }
    if (!json_is_boolean(v)) {
        char f[CF_ERROR_FIELD_MAX];
        s_field(f, sizeof f, key);
        cf_error_set(err, "invalid_type", f, "parameter \"%s\" must be true or false", key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}
