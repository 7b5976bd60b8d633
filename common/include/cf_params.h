/* cf_params: read job params (as JSON, after cf_msgpack_to_json) with errors that name the
 * field as "params.<key>". Every handler refuses keys it does not know. */
#ifndef CF_PARAMS_H
#define CF_PARAMS_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "cf_error.h"

/* -1 + err ("unknown_field") when PARAMS has a key not in ALLOWED (NULL-terminated). */
int cf_params_check_keys(const json_t *params, const char *const *allowed, cf_error_t *err);
/* *OUT = the string KEY (borrowed) or DFLT when absent or null; -1 + err for other types or
 * when REQUIRED and absent. */
int cf_params_str(const json_t *params, const char *key, bool required, const char *dflt,
                  const char **out, cf_error_t *err);
/* *OUT = the integer KEY or DFLT when absent; -1 + err for other types or out of MIN..MAX. */
int cf_params_int(const json_t *params, const char *key, int64_t dflt, int64_t min, int64_t max,
                  int64_t *out, cf_error_t *err);
/* *OUT = the boolean KEY or DFLT when absent; -1 + err for other types. */
int cf_params_bool(const json_t *params, const char *key, bool dflt, bool *out, cf_error_t *err);

#endif
