/* cf_base64url: unpadded URL-safe base64 (RFC 4648 section 5, RFC 7515 appendix C). */
#include "cf_base64url.h"

#include <stdint.h>
#include <stdlib.h>

static const char s_alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* Value of one alphabet character, or -1. */
static int s_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

char *cf_base64url_encode(const void *data, size_t len)
{
    if (len > SIZE_MAX / 2)
        return NULL;
    const unsigned char *in = data;
    char *out = malloc((len + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = s_alphabet[v >> 18 & 63];
        out[o++] = s_alphabet[v >> 12 & 63];
        out[o++] = s_alphabet[v >> 6 & 63];
        out[o++] = s_alphabet[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = s_alphabet[v >> 18 & 63];
        out[o++] = s_alphabet[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = s_alphabet[v >> 18 & 63];
        out[o++] = s_alphabet[v >> 12 & 63];
        out[o++] = s_alphabet[v >> 6 & 63];
    }
    out[o] = '\0';
    return out;
}

unsigned char *cf_base64url_decode(const char *text, size_t text_len, size_t *out_len)
{
    /* One leftover character cannot hold a whole byte: never valid. */
    if (!text || text_len % 4 == 1 || text_len > SIZE_MAX / 2)
        return NULL;
    unsigned char *out = malloc(text_len / 4 * 3 + 3);
    if (!out)
        return NULL;
    size_t o = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < text_len; i++) {
        int v = s_value((unsigned char)text[i]);
        if (v < 0)
            goto fail;
        acc = acc << 6 | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The bits left over must be zero, or two spellings would decode the same. */
    if (acc != 0)
        goto fail;
    out[o] = 0;
    *out_len = o;
    return out;
fail:
    free(out);
    return NULL;
}
