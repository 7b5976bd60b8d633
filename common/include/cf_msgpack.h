/* cf_msgpack: safe decoding of untrusted MessagePack and its mapping to and from JSON.
 *
 * msgpack-c's unpacker trusts the counts in the input: an 8-byte message claiming a
 * 2^32-element array makes it allocate gigabytes. cf_msgpack_check walks the raw bytes
 * first and refuses anything whose sizes, counts, nesting or total item count exceed the
 * limits or the bytes actually present, so the unpacker only ever sees sane input.
 *
 * JSON mapping (used by the CLI, profiles, the ACME front and the x509 data model):
 * msgpack bin becomes a base64 JSON string; everywhere a bin is expected a base64 string is
 * accepted too. msgpack timestamps and other ext types are refused. Map keys must be strings. */
#ifndef CF_MSGPACK_H
#define CF_MSGPACK_H

#include <jansson.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_error.h"

typedef struct {
    size_t max_bytes; /* whole message */
    size_t max_depth; /* nesting of maps and arrays */
    size_t max_items; /* every object counted, keys included */
    size_t max_str;   /* one str or bin */
} cf_msgpack_limits_t;

/* 1 MiB message, 32 levels, 100,000 items, 1 MiB per string. */
#define CF_MSGPACK_LIMITS_DEFAULT                                                                  \
    {                                                                                              \
        1u << 20, 32, 100000, 1u << 20                                                             \
    }

/* 0 when DATA holds exactly one well-formed object within LIMITS (NULL: the defaults), else
 * -1 with err->code one of "too_large", "too_deep", "too_many_items", "truncated",
 * "trailing_bytes", "unsupported_type" and a message saying where. */
int cf_msgpack_check(const void *data, size_t len, const cf_msgpack_limits_t *limits,
                     cf_error_t *err);

/* Check, then unpack into RESULT (caller calls msgpack_unpacked_destroy). 0 or -1. */
int cf_msgpack_unpack(const void *data, size_t len, const cf_msgpack_limits_t *limits,
                      msgpack_unpacked *result, cf_error_t *err);

/* A msgpack object as a new JSON value (caller owns), bin as base64; NULL with err set
 * ("invalid_type", field path) for ext types or non-string keys. */
json_t *cf_msgpack_to_json(const msgpack_object *obj, cf_error_t *err);
/* Pack a JSON value. Integers stay integers, reals become float64. 0 or -1. */
int cf_json_to_msgpack(const json_t *json, msgpack_packer *pk);

/* Lookups in a decoded map; NULL when absent. KEY is matched exactly. */
const msgpack_object *cf_msgpack_map_get(const msgpack_object *map, const char *key);
/* Copy a str value into a new NUL-terminated string (caller frees); NULL if not a str or
 * it holds a NUL byte. */
char *cf_msgpack_strdup(const msgpack_object *obj);
/* Pack a NUL-terminated string as str. */
void cf_msgpack_pack_cstr(msgpack_packer *pk, const char *s);

/* Base64 (standard alphabet, padded). Encode returns a new string (caller frees). Decode
 * returns a new buffer and its length (caller frees), NULL on bad input. */
char *cf_base64_encode(const void *data, size_t len);
unsigned char *cf_base64_decode(const char *text, size_t text_len, size_t *out_len);

#endif
