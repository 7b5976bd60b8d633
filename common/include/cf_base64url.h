/* cf_base64url: the URL-safe base64 of RFC 4648 section 5 without padding, as JOSE (JWK, JWS,
 * ACME) writes it. Decoding is strict: no padding, no whitespace, no characters outside the
 * alphabet, no stray bits in the last character, so that one value has one spelling. */
#ifndef CF_BASE64URL_H
#define CF_BASE64URL_H

#include <stddef.h>

/* Encode LEN bytes; a new NUL-terminated string (caller owns, free) or NULL. */
char *cf_base64url_encode(const void *data, size_t len);
/* Decode TEXT_LEN characters; new bytes (caller owns, free; one spare NUL byte after them),
 * length in *OUT_LEN, or NULL when the text is not canonical unpadded base64url. */
unsigned char *cf_base64url_decode(const char *text, size_t text_len, size_t *out_len);

#endif
