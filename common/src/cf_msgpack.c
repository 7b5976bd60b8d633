/* cf_msgpack: a bounds-checking pre-scan of untrusted MessagePack, and the msgpack <-> JSON
 * mapping. The scan never allocates: it walks the bytes with a fixed stack of pending counts. */
#include "cf_msgpack.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_MAX_DEPTH 64

static uint64_t s_be(const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p[i];
    return v;
}

int cf_msgpack_check(const void *data, size_t len, const cf_msgpack_limits_t *limits,
                     cf_error_t *err)
{
    static const cf_msgpack_limits_t dflt = CF_MSGPACK_LIMITS_DEFAULT;
    const cf_msgpack_limits_t *lim = limits ? limits : &dflt;
    const uint8_t *p = data;
    size_t max_depth = lim->max_depth < S_MAX_DEPTH ? lim->max_depth : S_MAX_DEPTH;
    uint64_t pending[S_MAX_DEPTH + 1];
    size_t depth = 0, pos = 0, items = 0;

    if (len == 0) {
        cf_error_set(err, "truncated", "", "empty message");
        return -1;
    }
    if (len > lim->max_bytes) {
        cf_error_set(err, "too_large", "", "message of %zu bytes exceeds the limit of %zu", len,
                     lim->max_bytes);
        return -1;
    }
    pending[0] = 1;
    for (;;) {
        while (pending[depth] == 0) {
            if (depth == 0)
                goto done;
            depth--;
        }
        pending[depth]--;
        if (++items > lim->max_items) {
            cf_error_set(err, "too_many_items", "", "message holds more than %zu items",
                         lim->max_items);
            return -1;
        }
        if (pos >= len)
            goto truncated;
        uint8_t b = p[pos++];
        uint64_t body = 0;     /* bytes of payload that follow the header */
        uint64_t children = 0; /* objects contained (maps count keys and values) */
        int nlen = 0;          /* width of a length field */
        bool is_str = false;
        if (b <= 0x7f || b >= 0xe0 || (b >= 0xc0 && b <= 0xc3 && b != 0xc1)) {
            /* fixint, nil, bool */
        } else if (b >= 0x80 && b <= 0x8f) {
            children = 2u * (b & 0x0f);
        } else if (b >= 0x90 && b <= 0x9f) {
            children = b & 0x0f;
        } else if (b >= 0xa0 && b <= 0xbf) {
            body = b & 0x1f;
            is_str = true;
        } else {
            switch (b) {
            case 0xc4:
                nlen = 1;
                is_str = true;
                break; /* bin 8/16/32 */
            case 0xc5:
                nlen = 2;
                is_str = true;
                break;
            case 0xc6:
                nlen = 4;
                is_str = true;
                break;
            case 0xca:
                body = 4;
                break; /* float32 */
            case 0xcb:
                body = 8;
                break;
            case 0xcc:
            case 0xd0:
                body = 1;
                break;
            case 0xcd:
            case 0xd1:
                body = 2;
                break;
            case 0xce:
            case 0xd2:
                body = 4;
                break;
            case 0xcf:
            case 0xd3:
                body = 8;
                break;
            case 0xd9:
                nlen = 1;
                is_str = true;
                break; /* str 8/16/32 */
            case 0xda:
                nlen = 2;
                is_str = true;
                break;
            case 0xdb:
                nlen = 4;
                is_str = true;
                break;
            case 0xdc:
            case 0xde:
                nlen = 2;
                break; /* array/map 16 */
            case 0xdd:
            case 0xdf:
                nlen = 4;
                break; /* array/map 32 */
            default:
                cf_error_set(err, "unsupported_type", "",
                             "unsupported msgpack type 0x%02x at byte %zu (ext types and "
                             "timestamps are not used by certfleet)",
                             b, pos - 1);
                return -1;
            }
            if (nlen) {
                if (len - pos < (size_t)nlen)
                    goto truncated;
                uint64_t n = s_be(p + pos, nlen);
                pos += nlen;
                if (is_str)
                    body = n;
                else
                    children = (b == 0xde || b == 0xdf) ? 2 * n : n;
            }
        }
        if (is_str && body > lim->max_str) {
            cf_error_set(err, "too_large", "",
                         "string of %llu bytes at byte %zu exceeds the limit of %zu",
                         (unsigned long long)body, pos, lim->max_str);
            return -1;
        }
        if (body > len - pos)
            goto truncated;
        pos += body;
        if (children > 0) {
            /* Every child takes at least one byte: a count larger than what is left is a lie
             * that would make the unpacker allocate for nothing. */
            if (children > len - pos)
                goto truncated;
            if (depth + 1 > max_depth) {
                cf_error_set(err, "too_deep", "", "nesting deeper than %zu levels", max_depth);
                return -1;
            }
            pending[++depth] = children;
        }
    }
done:
    if (pos != len) {
        cf_error_set(err, "trailing_bytes", "", "%zu bytes after the end of the message",
                     len - pos);
        return -1;
    }
    return 0;
truncated:
    cf_error_set(err, "truncated", "", "message ends early (%zu bytes)", len);
    return -1;
}

int cf_msgpack_unpack(const void *data, size_t len, const cf_msgpack_limits_t *limits,
                      msgpack_unpacked *result, cf_error_t *err)
{
    if (cf_msgpack_check(data, len, limits, err) != 0)
        return -1;
    size_t off = 0;
    msgpack_unpacked_init(result);
    if (msgpack_unpack_next(result, data, len, &off) != MSGPACK_UNPACK_SUCCESS) {
        msgpack_unpacked_destroy(result);
        cf_error_set(err, "malformed", "", "message could not be decoded");
        return -1;
    }
    return 0;
}

static void s_field_key(char *buf, size_t len, const char *parent, const char *key, size_t klen)
{
    snprintf(buf, len, "%s%s%.*s", parent, *parent ? "." : "", (int)klen, key);
}

static json_t *s_to_json(const msgpack_object *o, const char *path, cf_error_t *err)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > INT64_MAX) {
            cf_error_set(err, "invalid_value", path, "integer is too large");
            return NULL;
        }
        return json_integer((json_int_t)o->via.u64);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return json_real(o->via.f64);
    case MSGPACK_OBJECT_STR: {
        json_t *s = json_stringn(o->via.str.ptr, o->via.str.size);
        if (!s)
            cf_error_set(err, "invalid_value", path, "string is not valid UTF-8");
        return s;
    }
    case MSGPACK_OBJECT_BIN: {
        char *b64 = cf_base64_encode(o->via.bin.ptr, o->via.bin.size);
        json_t *s = b64 ? json_string(b64) : NULL;
        free(b64);
        return s;
    }
    case MSGPACK_OBJECT_ARRAY: {
        json_t *arr = json_array();
        for (uint32_t i = 0; arr && i < o->via.array.size; i++) {
            char sub[CF_ERROR_FIELD_MAX];
            snprintf(sub, sizeof sub, "%s[%u]", path, i);
            json_t *v = s_to_json(&o->via.array.ptr[i], sub, err);
            if (!v || json_array_append_new(arr, v) != 0) {
                json_decref(arr);
                return NULL;
            }
        }
        return arr;
    }
    case MSGPACK_OBJECT_MAP: {
        json_t *obj = json_object();
        for (uint32_t i = 0; obj && i < o->via.map.size; i++) {
            const msgpack_object_kv *kv = &o->via.map.ptr[i];
            if (kv->key.type != MSGPACK_OBJECT_STR ||
                (kv->key.via.str.size && memchr(kv->key.via.str.ptr, 0, kv->key.via.str.size))) {
                cf_error_set(err, "invalid_type", path, "map keys must be strings");
                json_decref(obj);
                return NULL;
            }
            char sub[CF_ERROR_FIELD_MAX];
            s_field_key(sub, sizeof sub, path, kv->key.via.str.ptr, kv->key.via.str.size);
            json_t *v = s_to_json(&kv->val, sub, err);
            if (!v || json_object_setn_new(obj, kv->key.via.str.ptr, kv->key.via.str.size, v)) {
                if (v == NULL && !cf_error_isset(err))
                    cf_error_set(err, "invalid_value", sub, "map key is not valid UTF-8");
                json_decref(obj);
                return NULL;
            }
        }
        return obj;
    }
    default:
        cf_error_set(err, "unsupported_type", path, "ext types are not supported");
        return NULL;
    }
}

json_t *cf_msgpack_to_json(const msgpack_object *obj, cf_error_t *err)
{
    return s_to_json(obj, "", err);
}

int cf_json_to_msgpack(const json_t *json, msgpack_packer *pk)
{
    switch (json_typeof(json)) {
    case JSON_NULL:
        return msgpack_pack_nil(pk);
    case JSON_TRUE:
        return msgpack_pack_true(pk);
    case JSON_FALSE:
        return msgpack_pack_false(pk);
    case JSON_INTEGER:
        return msgpack_pack_int64(pk, json_integer_value(json));
    case JSON_REAL:
        return msgpack_pack_double(pk, json_real_value(json));
    case JSON_STRING:
        msgpack_pack_str(pk, json_string_length(json));
        return msgpack_pack_str_body(pk, json_string_value(json), json_string_length(json));
    case JSON_ARRAY: {
        size_t i;
        json_t *v;
        msgpack_pack_array(pk, json_array_size(json));
        json_array_foreach(json, i, v)
        {
            if (cf_json_to_msgpack(v, pk) != 0)
                return -1;
        }
        return 0;
    }
    case JSON_OBJECT: {
        const char *k;
        size_t klen;
        json_t *v;
        void *tmp;
        msgpack_pack_map(pk, json_object_size(json));
        json_object_keylen_foreach_safe((json_t *)json, tmp, k, klen, v)
        {
            msgpack_pack_str(pk, klen);
            msgpack_pack_str_body(pk, k, klen);
            if (cf_json_to_msgpack(v, pk) != 0)
                return -1;
        }
        return 0;
    }
    }
    return -1;
}

const msgpack_object *cf_msgpack_map_get(const msgpack_object *map, const char *key)
{
    if (!map || map->type != MSGPACK_OBJECT_MAP)
        return NULL;
    size_t klen = strlen(key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr[i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen &&
            memcmp(k->via.str.ptr, key, klen) == 0)
            return &map->via.map.ptr[i].val;
    }
    return NULL;
}

char *cf_msgpack_strdup(const msgpack_object *obj)
{
    if (!obj || obj->type != MSGPACK_OBJECT_STR)
        return NULL;
    if (obj->via.str.size && memchr(obj->via.str.ptr, 0, obj->via.str.size))
        return NULL;
    char *s = malloc(obj->via.str.size + 1);
    if (!s)
        return NULL;
    memcpy(s, obj->via.str.ptr, obj->via.str.size);
    s[obj->via.str.size] = '\0';
    return s;
}

void cf_msgpack_pack_cstr(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);
    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

char *cf_base64_encode(const void *data, size_t len)
{
    if (len > (size_t)INT32_MAX / 2)
        return NULL;
    char *out = malloc(4 * ((len + 2) / 3) + 1);
    if (!out)
        return NULL;
    EVP_EncodeBlock((unsigned char *)out, data, (int)len);
    return out;
}

unsigned char *cf_base64_decode(const char *text, size_t text_len, size_t *out_len)
{
    if (text_len % 4 != 0 || text_len > (size_t)INT32_MAX / 2)
        return NULL;
    for (size_t i = 0; i < text_len; i++) {
        char c = text[i];
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                  c == '+' || c == '/' || (c == '=' && i >= text_len - 2);
        if (!ok || (i == text_len - 2 && c == '=' && text[i + 1] != '='))
            return NULL;
    }
    unsigned char *out = malloc(text_len / 4 * 3 + 1);
    if (!out)
        return NULL;
    int n = text_len ? EVP_DecodeBlock(out, (const unsigned char *)text, (int)text_len) : 0;
    if (n < 0) {
        free(out);
        return NULL;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    if (text_len >= 1 && text[text_len - 1] == '=')
        n--;
    if (text_len >= 2 && text[text_len - 2] == '=')
        n--;
    *out_len = (size_t)n;
    return out;
}
