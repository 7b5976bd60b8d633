/* cf_error: the error every validation and job reply carries: a snake_case code, a
 * readable message in PostgreSQL's style, and the path of the offending field. */
#ifndef CF_ERROR_H
#define CF_ERROR_H

#include <stdbool.h>
#include <stddef.h>

#define CF_ERROR_CODE_MAX    48
#define CF_ERROR_FIELD_MAX   160
#define CF_ERROR_MESSAGE_MAX 512

typedef struct {
    char code[CF_ERROR_CODE_MAX];       /* snake_case, e.g. "invalid_params"; "" when clear */
    char field[CF_ERROR_FIELD_MAX];     /* dotted path, e.g. "params.subject[0].oid"; may be "" */
    char message[CF_ERROR_MESSAGE_MAX]; /* lower case, no final period, says why */
} cf_error_t;

/* Set all three parts; a NULL err is allowed (the error is then dropped). */
void cf_error_set(cf_error_t *err, const char *code, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Forget any error. */
void cf_error_clear(cf_error_t *err);
/* True when an error was set. */
bool cf_error_isset(const cf_error_t *err);
/* Prefix the field path: "value[0]" becomes "params.extensions[2].value[0]". */
void cf_error_prefix_field(cf_error_t *err, const char *prefix);
/* Append the text of OpenSSL's error queue (and clear it) to the message. */
void cf_error_add_openssl(cf_error_t *err);

#endif
