/* Fuzz target: ACME request bodies (flattened JWS) as the ACME front reads them from any
 * client on the network: cf_jws_parse, then the JWK in the header turned into a key, the
 * signature checked with it and with fixed keys of every supported type (so that every
 * algorithm/key pairing is tried), and the key authorization the validator derives from the
 * JWK. Must never crash, leak, or read beyond the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cf_jws.h"
#include "cf_key.h"

/* Public keys of every type cf_jws_verify accepts: the RFCs' example keys (RFC 7638's RSA
 * key, RFC 7515 A.3 P-256 and A.4 P-521, RFC 8037 Ed25519) and a P-384 key. */
static const char *const s_fixed_jwks[] = {
    "{\"kty\":\"RSA\",\"e\":\"AQAB\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4"
    "cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl"
    "93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1"
    "n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-k"
    "EgU8awapJzKnqDKgw\"}",
    "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
    "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
    "{\"kty\":\"EC\",\"crv\":\"P-384\",\"x\":\"oOsApvdB41tU2dnys5OqYpFbQoLbiNaJyqW8g7Fz3wOPhx2At"
    "CjZSFGUkaO8rxAT\",\"y\":\"TEx-PkCtLTN9L5JSNyJKpLT6y9nGV6tR46HQHxIP2Wrb89OwsGOMHfxc95SenpOm\"}",
    "{\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5E"
    "OnYG_NjFZ6OvLFV1jSfS9tsz4qUxcWceqwQGk\",\"y\":\"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2T"
    "h-x3S1WDhjDly79ajL4Kkd0AZMaZmh9ubmf63e3kyMj2\"}",
    "{\"kty\":\"OKP\",\"crv\":\"Ed25519\",\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
};

#define S_FIXED (sizeof s_fixed_jwks / sizeof s_fixed_jwks[0])

/* The fixed keys, made once per process: key parsing is not what this target is about, and
 * libFuzzer runs millions of inputs. */
static EVP_PKEY **s_fixed_keys(void)
{
    static EVP_PKEY *keys[S_FIXED];
    static int ready;
    if (!ready) {
        for (size_t i = 0; i < S_FIXED; i++) {
            json_t *jwk = json_loads(s_fixed_jwks[i], 0, NULL);
            keys[i] = cf_key_from_jwk(jwk, NULL);
            json_decref(jwk);
            if (!keys[i])
                abort(); /* a broken constant, not a finding */
        }
        ready = 1;
    }
    return keys;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    EVP_PKEY **fixed = s_fixed_keys();
    cf_error_t err = {0};
    cf_jws_t *jws = cf_jws_parse((const char *)data, size, &err);
    if (!jws)
        return 0;
    /* Invariants the front relies on. */
    if (!jws->alg || !jws->header || !jws->signing_input || !jws->signature ||
        (jws->jwk == NULL) == (jws->kid == NULL) ||
        (jws->payload_len > 0) != (jws->payload_json != NULL) ||
        strlen((const char *)jws->payload) > jws->payload_len)
        abort();
    for (size_t i = 0; i < S_FIXED; i++)
        cf_jws_verify(jws, fixed[i], &err);
    if (jws->jwk) {
        EVP_PKEY *key = cf_key_from_jwk(jws->jwk, &err);
        if (key) {
            cf_jws_verify(jws, key, &err);
            EVP_PKEY_free(key);
        }
        char authz[256];
        char txt[64];
        const char *token = jws->nonce ? jws->nonce : "token";
        if (cf_acme_key_authorization(token, jws->jwk, authz, sizeof authz) == 0 &&
            cf_acme_dns01_value(authz, txt, sizeof txt) != 0)
            abort();
    }
    cf_jws_destroy(&jws);
    return 0;
}
