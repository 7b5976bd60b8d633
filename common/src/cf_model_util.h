/* Helpers the name and general-name models share (internal to libcertfleet). */
#ifndef CF_MODEL_UTIL_H
#define CF_MODEL_UTIL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "cf_error.h"

/* True when the LEN bytes of S are all ASCII. */
bool cf_model_is_ascii(const char *s, size_t len);
/* Refuse keys of OBJ outside ALLOWED ("unknown_field"), then require each of them
 * ("missing_field"). 0 or -1 + err naming the key. */
int cf_model_check_fields(const json_t *obj, const char *const *allowed, cf_error_t *err);

#endif
