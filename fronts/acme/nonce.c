/* nonce: anti-replay nonces (RFC 8555 6.5) in Redis, shared by every thread and every
 * certfleet-acme process: cf:acme:nonce:<nonce> is set with the nonce TTL when a reply
 * carries it and deleted when a request uses it, so that DEL's count says whether it was
 * good and no nonce is accepted twice, whichever process sees it. */
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "cf_base64url.h"
#include "cf_log.h"

/* 128 random bits: guessing one of the live nonces is hopeless. */
#define S_NONCE_BYTES 16
#define S_KEY_PREFIX  "cf:acme:nonce:"

int acme_nonce_new(acme_store_t *store, int64_t ttl_s, char *out, size_t len)
{
    unsigned char raw[S_NONCE_BYTES];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    char *text = cf_base64url_encode(raw, sizeof raw);
    if (!text || strlen(text) >= len) {
        free(text);
        return -1;
    }
    cf_redis_t *redis = acme_store_redis(store);
    redisReply *r =
        cf_redis_command(redis, "SET " S_KEY_PREFIX "%s 1 EX %lld", text, (long long)ttl_s);
    int rc = -1;
    if (r && r->type == REDIS_REPLY_STATUS) {
        strcpy(out, text);
        rc = 0;
    } else {
        cf_log_warn("could not store a nonce in Redis: %s", cf_redis_errstr(redis));
    }
    freeReplyObject(r);
    free(text);
    return rc;
}

int acme_nonce_consume(acme_store_t *store, const char *nonce)
{
    /* Only what we could have made reaches Redis. */
    size_t n = strlen(nonce);
    if (n == 0 || n > 64 ||
        strspn(nonce, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != n)
        return 0;
    cf_redis_t *redis = acme_store_redis(store);
    redisReply *r = cf_redis_command(redis, "DEL " S_KEY_PREFIX "%s", nonce);
    if (!r) {
        cf_log_warn("could not check a nonce in Redis: %s", cf_redis_errstr(redis));
        return -1;
    }
    int rc = r->type == REDIS_REPLY_INTEGER && r->integer == 1 ? 1 : 0;
    freeReplyObject(r);
    return rc;
}
