/* cf_error: codes, messages and field paths for replies and validation. */
#include "cf_error.h"

#include <openssl/err.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void cf_error_set(cf_error_t *err, const char *code, const char *field, const char *fmt, ...)
{
    if (!err)
        return;
    snprintf(err->code, sizeof err->code, "%s", code ? code : "internal");
    snprintf(err->field, sizeof err->field, "%s", field ? field : "");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

void cf_error_clear(cf_error_t *err)
{
    if (err)
        memset(err, 0, sizeof *err);
}

bool cf_error_isset(const cf_error_t *err)
{
    return err && err->code[0] != '\0';
}

void cf_error_prefix_field(cf_error_t *err, const char *prefix)
{
    if (!err || !prefix || !*prefix)
        return;
    /* Room for both parts; the result is cut to the field's size. */
    char joined[2 * CF_ERROR_FIELD_MAX + 2];
    if (err->field[0] == '\0')
        snprintf(joined, sizeof joined, "%s", prefix);
    else if (err->field[0] == '[')
        snprintf(joined, sizeof joined, "%s%s", prefix, err->field);
    else
        snprintf(joined, sizeof joined, "%s.%s", prefix, err->field);
    size_t n = strnlen(joined, sizeof err->field - 1);
    memcpy(err->field, joined, n);
    err->field[n] = '\0';
}

void cf_error_add_openssl(cf_error_t *err)
{
    unsigned long e;
    char buf[256];
    while ((e = ERR_get_error()) != 0) {
        if (!err)
            continue;
        ERR_error_string_n(e, buf, sizeof buf);
        size_t used = strlen(err->message);
        if (used + 3 < sizeof err->message)
            snprintf(err->message + used, sizeof err->message - used, ": %s", buf);
    }
}
