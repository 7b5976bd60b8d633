/* Helpers the name and general-name models share. */
#include "cf_model_util.h"

#include <string.h>

bool cf_model_is_ascii(const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] >= 0x80)
            return false;
    return true;
}

int cf_model_check_fields(const json_t *obj, const char *const *allowed, cf_error_t *err)
{
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)obj, key, v)
    {
        bool ok = false;
        for (const char *const *a = allowed; *a; a++)
            if (strcmp(*a, key) == 0)
                ok = true;
        if (!ok) {
            cf_error_set(err, "unknown_field", key, "unknown field \"%s\"", key);
            return -1;
        }
    }
    for (const char *const *a = allowed; *a; a++) {
        if (!json_object_get(obj, *a)) {
            cf_error_set(err, "missing_field", *a, "field \"%s\" is required", *a);
            return -1;
        }
    }
    return 0;
}
