/* cf_jws: ACME's flattened JWS signed and verified with every algorithm, checked against the
 * RFCs' own signatures and against JWS made by Python's acme/josepy, and refused in every
 * malformed shape a client can send. Reads as cf_jws's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cf_base64url.h"
#include "cf_jws.h"
#include "cf_key.h"

/* Keys are slow to make (RSA): one set for all tests. */
typedef struct {
    EVP_PKEY *rsa2048;
    EVP_PKEY *rsa1024;
    EVP_PKEY *p256;
    EVP_PKEY *p384;
    EVP_PKEY *p521;
    EVP_PKEY *ed25519;
    EVP_PKEY *p256_other; /* a second P-256 key: "wrong key" tests */
} s_keys_t;

static EVP_PKEY *s_key(const char *type, int size, const char *curve)
{
    cf_key_params_t params;
    cf_error_t err = {0};
    if (cf_key_params_init(&params, NULL, type, size, curve, &err) != 0)
        fail_msg("%s: %s", err.field, err.message);
    EVP_PKEY *key = cf_key_generate(&params, &err);
    if (!key)
        fail_msg("%s", err.message);
    return key;
}

static int s_setup(void **state)
{
    s_keys_t *k = calloc(1, sizeof *k);
    if (!k)
        return -1;
    k->rsa2048 = s_key("RSA", 2048, NULL);
    k->rsa1024 = s_key("RSA", 1024, NULL);
    k->p256 = s_key("EC", 0, "secp256r1");
    k->p384 = s_key("EC", 0, "secp384r1");
    k->p521 = s_key("EC", 0, "secp521r1");
    k->ed25519 = s_key("Ed25519", 0, NULL);
    k->p256_other = s_key("EC", 0, "secp256r1");
    *state = k;
    return 0;
}

static int s_teardown(void **state)
{
    s_keys_t *k = *state;
    EVP_PKEY_free(k->rsa2048);
    EVP_PKEY_free(k->rsa1024);
    EVP_PKEY_free(k->p256);
    EVP_PKEY_free(k->p384);
    EVP_PKEY_free(k->p521);
    EVP_PKEY_free(k->ed25519);
    EVP_PKEY_free(k->p256_other);
    free(k);
    return 0;
}

static char *s_b64(const char *text)
{
    char *b64 = cf_base64url_encode(text, strlen(text));
    assert_non_null(b64);
    return b64;
}

/* A flattened JWS from a protected HEADER and PAYLOAD (both plain JSON text, encoded here)
 * and SIGNATURE (already base64url). Caller frees. */
static char *s_flat(const char *header, const char *payload, const char *signature)
{
    char *h = s_b64(header);
    char *p = s_b64(payload);
    size_t n = strlen(h) + strlen(p) + strlen(signature) + 64;
    char *out = malloc(n);
    assert_non_null(out);
    snprintf(out, n, "{\"protected\":\"%s\",\"payload\":\"%s\",\"signature\":\"%s\"}", h, p,
             signature);
    free(h);
    free(p);
    return out;
}

/* Expect BODY to be refused by cf_jws_parse with CODE at FIELD. */
static void s_parse_fail(const char *body, size_t len, const char *code, const char *field)
{
    cf_error_t err = {0};
    cf_jws_t *jws = cf_jws_parse(body, len, &err);
    if (jws)
        fail_msg("parsed although it should not: %.200s", body);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    /* PostgreSQL style: a message, no final period (it may start with "JWS"). */
    assert_true(err.message[0] != '\0' && err.message[strlen(err.message) - 1] != '.');
}

static void s_parse_fail_str(const char *body, const char *code, const char *field)
{
    s_parse_fail(body, strlen(body), code, field);
}

/* Expect the header HEADER (with a valid-looking payload and signature) to be refused. */
static void s_header_fail(const char *header, const char *code, const char *field)
{
    char *body = s_flat(header, "{}", "AAAA");
    s_parse_fail_str(body, code, field);
    free(body);
}

/* Parse TEXT, which must succeed. */
static cf_jws_t *s_parse(const char *text)
{
    cf_error_t err = {0};
    cf_jws_t *jws = cf_jws_parse(text, strlen(text), &err);
    if (!jws)
        fail_msg("%s at \"%s\": %s", err.code, err.field, err.message);
    return jws;
}

/* ------------------------------------------------------------------ round trips */

/* Sign with KEY as ALG, parse, verify with the key in the JWK; also a kid, POST-as-GET JWS. */
static void s_roundtrip(EVP_PKEY *key, const char *alg)
{
    cf_error_t err = {0};
    assert_string_equal(cf_jws_alg_for_key(key), alg);
    char *text = cf_jws_sign(key, NULL, "bm9uY2U", "https://acme.test/new-acct",
                             "{\"termsOfServiceAgreed\":true}", &err);
    assert_non_null(text);
    cf_jws_t *jws = s_parse(text);
    assert_string_equal(jws->alg, alg);
    assert_string_equal(jws->nonce, "bm9uY2U");
    assert_string_equal(jws->url, "https://acme.test/new-acct");
    assert_null(jws->kid);
    assert_non_null(jws->jwk);
    assert_int_equal(jws->payload_len, strlen("{\"termsOfServiceAgreed\":true}"));
    assert_true(json_is_true(json_object_get(jws->payload_json, "termsOfServiceAgreed")));
    EVP_PKEY *pub = cf_key_from_jwk(jws->jwk, &err);
    assert_non_null(pub);
    assert_int_equal(cf_jws_verify(jws, pub, &err), 0);
    assert_int_equal(cf_jws_verify(jws, key, &err), 0);

    /* One flipped bit anywhere in the signature or the signed text: unauthorized. */
    jws->signature[jws->signature_len / 2] ^= 0x01;
    assert_int_equal(cf_jws_verify(jws, pub, &err), -1);
    assert_string_equal(err.code, "unauthorized");
    jws->signature[jws->signature_len / 2] ^= 0x01;
    jws->signing_input[3] ^= 0x01;
    assert_int_equal(cf_jws_verify(jws, pub, &err), -1);
    assert_string_equal(err.code, "unauthorized");
    EVP_PKEY_free(pub);
    cf_jws_destroy(&jws);
    assert_null(jws);
    free(text);

    text = cf_jws_sign(key, "https://acme.test/acct/1", "bm9uY2Uy", "https://acme.test/order/7", "",
                       &err);
    assert_non_null(text);
    jws = s_parse(text);
    assert_string_equal(jws->kid, "https://acme.test/acct/1");
    assert_null(jws->jwk);
    assert_int_equal(jws->payload_len, 0);
    assert_string_equal((const char *)jws->payload, "");
    assert_null(jws->payload_json);
    assert_int_equal(cf_jws_verify(jws, key, &err), 0);
    cf_jws_destroy(&jws);
    free(text);
}

static void test_roundtrip_rsa2048(void **state)
{
    s_roundtrip(((s_keys_t *)*state)->rsa2048, "RS256");
}

static void test_roundtrip_p256(void **state)
{
    s_roundtrip(((s_keys_t *)*state)->p256, "ES256");
}

static void test_roundtrip_p384(void **state)
{
    s_roundtrip(((s_keys_t *)*state)->p384, "ES384");
}

static void test_roundtrip_p521(void **state)
{
    s_roundtrip(((s_keys_t *)*state)->p521, "ES512");
}

static void test_roundtrip_ed25519(void **state)
{
    s_roundtrip(((s_keys_t *)*state)->ed25519, "EdDSA");
}

/* Many ES512 signatures: r and s often have leading zero bytes, which the fixed-size raw
 * form must keep (and which a DER-length-based conversion would lose). */
static void test_ecdsa_fixed_size(void **state)
{
    s_keys_t *k = *state;
    EVP_PKEY *keys[] = {k->p256, k->p384, k->p521};
    size_t sizes[] = {64, 96, 132};
    for (int i = 0; i < 3; i++) {
        for (int n = 0; n < 40; n++) {
            cf_error_t err = {0};
            char payload[64];
            snprintf(payload, sizeof payload, "{\"n\":%d}", n);
            char *text = cf_jws_sign(keys[i], "k", "n", "u", payload, &err);
            assert_non_null(text);
            cf_jws_t *jws = s_parse(text);
            assert_int_equal(jws->signature_len, sizes[i]);
            assert_int_equal(cf_jws_verify(jws, keys[i], &err), 0);
            cf_jws_destroy(&jws);
            free(text);
        }
    }
}

static void test_wrong_key(void **state)
{
    s_keys_t *k = *state;
    cf_error_t err = {0};
    char *text = cf_jws_sign(k->p256, NULL, "n", "u", "{}", &err);
    cf_jws_t *jws = s_parse(text);
    assert_int_equal(cf_jws_verify(jws, k->p256_other, &err), -1);
    assert_string_equal(err.code, "unauthorized");
    assert_string_equal(err.field, "signature");
    cf_jws_destroy(&jws);
    free(text);
}

/* ------------------------------------------------------------------ algorithm vs key */

static void s_verify_alg_fail(EVP_PKEY *signer, EVP_PKEY *verifier)
{
    cf_error_t err = {0};
    char *text = cf_jws_sign(signer, "kid", "n", "u", "{}", &err);
    assert_non_null(text);
    cf_jws_t *jws = s_parse(text);
    assert_int_equal(cf_jws_verify(jws, verifier, &err), -1);
    assert_string_equal(err.code, "badSignatureAlgorithm");
    assert_string_equal(err.field, "protected.alg");
    cf_jws_destroy(&jws);
    free(text);
}

static void test_alg_key_mismatch(void **state)
{
    s_keys_t *k = *state;
    s_verify_alg_fail(k->p256, k->p384);       /* ES256 with a P-384 key */
    s_verify_alg_fail(k->p384, k->p256);       /* ES384 with a P-256 key */
    s_verify_alg_fail(k->p521, k->p384);       /* ES512 with a P-384 key */
    s_verify_alg_fail(k->rsa2048, k->p256);    /* RS256 with an EC key */
    s_verify_alg_fail(k->p256, k->rsa2048);    /* ES256 with an RSA key */
    s_verify_alg_fail(k->ed25519, k->p256);    /* EdDSA with an EC key */
    s_verify_alg_fail(k->p256, k->ed25519);    /* ES256 with an Ed25519 key */
    s_verify_alg_fail(k->rsa1024, k->rsa1024); /* RS256, but the key is too small */
}

/* A header that claims ES256 over a P-384 key from its own JWK, signed the ES384 way. */
static void test_alg_header_lies(void **state)
{
    s_keys_t *k = *state;
    cf_error_t err = {0};
    char *text = cf_jws_sign(k->p384, NULL, "n", "u", "{}", &err);
    cf_jws_t *real = s_parse(text);
    json_t *header = json_deep_copy(real->header);
    json_object_set_new(header, "alg", json_string("ES256"));
    char *htext = json_dumps(header, JSON_COMPACT);
    char *sig = cf_base64url_encode(real->signature, real->signature_len);
    char *forged = s_flat(htext, "{}", sig);
    cf_jws_t *jws = s_parse(forged);
    EVP_PKEY *pub = cf_key_from_jwk(jws->jwk, &err);
    assert_non_null(pub);
    assert_int_equal(cf_jws_verify(jws, pub, &err), -1);
    assert_string_equal(err.code, "badSignatureAlgorithm");
    EVP_PKEY_free(pub);
    cf_jws_destroy(&jws);
    cf_jws_destroy(&real);
    free(forged);
    free(sig);
    free(htext);
    json_decref(header);
    free(text);
}

static void test_unsupported_keys(void **state)
{
    cf_error_t err = {0};
    EVP_PKEY *ed448 = s_key("Ed448", 0, NULL);
    EVP_PKEY *k256 = s_key("EC", 0, "secp256k1");
    assert_null(cf_jws_alg_for_key(ed448));
    assert_null(cf_jws_alg_for_key(k256));
    assert_null(cf_jws_alg_for_key(NULL));
    assert_null(cf_jws_sign(ed448, NULL, "n", "u", "{}", &err));
    assert_string_equal(err.code, "badSignatureAlgorithm");
    /* A JWS that claims EdDSA must not verify with an Ed448 key (only Ed25519 is allowed). */
    s_keys_t *k = *state;
    char *text = cf_jws_sign(k->ed25519, "kid", "n", "u", "{}", &err);
    cf_jws_t *jws = s_parse(text);
    assert_int_equal(cf_jws_verify(jws, ed448, &err), -1);
    assert_string_equal(err.code, "badSignatureAlgorithm");
    cf_jws_destroy(&jws);
    free(text);
    EVP_PKEY_free(ed448);
    EVP_PKEY_free(k256);
}

/* The keyChange inner JWS (RFC 8555 7.3.5) has no nonce; destroy takes NULL. */
static void test_sign_minimal(void **state)
{
    s_keys_t *k = *state;
    cf_error_t err = {0};
    char *text = cf_jws_sign(k->p256, NULL, NULL, NULL, "{\"account\":\"a\"}", &err);
    assert_non_null(text);
    cf_jws_t *jws = s_parse(text);
    assert_null(jws->nonce);
    assert_null(jws->url);
    assert_int_equal(cf_jws_verify(jws, k->p256, &err), 0);
    cf_jws_destroy(&jws);
    cf_jws_destroy(&jws);
    cf_jws_destroy(NULL);
    free(text);
    /* A hand-made cf_jws_t without alg or signature is refused, not dereferenced. */
    cf_jws_t empty = {0};
    assert_int_equal(cf_jws_verify(&empty, k->p256, &err), -1);
    assert_string_equal(err.code, "badSignatureAlgorithm");
    empty.alg = "ES256";
    assert_int_equal(cf_jws_verify(&empty, k->p256, &err), -1);
    assert_string_equal(err.code, "unauthorized");
    assert_int_equal(cf_jws_verify(NULL, k->p256, &err), -1);
}

/* ------------------------------------------------------------------ known answers */

/* Verify SIGNATURE over SIGNING_INPUT as ALG with the public JWK, without cf_jws_parse (the
 * RFCs' examples have no jwk/kid, which ACME requires). */
static int s_verify_raw(const char *alg, const char *jwk_text, const char *input,
                        const char *signature)
{
    json_error_t jerr;
    cf_error_t err = {0};
    json_t *jwk = json_loads(jwk_text, 0, &jerr);
    assert_non_null(jwk);
    EVP_PKEY *key = cf_key_from_jwk(jwk, &err);
    assert_non_null(key);
    cf_jws_t jws = {
        .alg = alg,
        .signing_input = strdup(input),
    };
    jws.signature = cf_base64url_decode(signature, strlen(signature), &jws.signature_len);
    assert_non_null(jws.signature);
    int rc = cf_jws_verify(&jws, key, &err);
    if (rc == 0) {
        /* The same with one bit of the signed text changed. */
        jws.signing_input[strlen(input) - 1] ^= 0x02;
        assert_int_equal(cf_jws_verify(&jws, key, &err), -1);
        assert_string_equal(err.code, "unauthorized");
    }
    free(jws.signing_input);
    free(jws.signature);
    EVP_PKEY_free(key);
    json_decref(jwk);
    return rc;
}

static void test_rfc_vectors(void **state)
{
    /* RFC 7515 appendix A.3: ES256. */
    assert_int_equal(
        s_verify_raw("ES256",
                     "{\"kty\":\"EC\",\"crv\":\"P-256\","
                     "\"x\":\"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU\","
                     "\"y\":\"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0\"}",
                     "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0"
                     "dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ",
                     "DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqP"
                     "P3-Kg6NU1Q"),
        0);
    /* RFC 7515 appendix A.4: ES512 (P-521, 66-byte r and s). */
    assert_int_equal(
        s_verify_raw("ES512",
                     "{\"kty\":\"EC\",\"crv\":\"P-521\","
                     "\"x\":\"AekpBQ8ST8a8VcfVOTNl353vSrDCLLJXmPk06wTjxrrjcBpXp5EOnYG_NjFZ6OvLFV1"
                     "jSfS9tsz4qUxcWceqwQGk\","
                     "\"y\":\"ADSmRA43Z1DSNx_RvcLI87cdL07l6jQyyBXMoxVg_l2Th-x3S1WDhjDly79ajL4Kkd0"
                     "AZMaZmh9ubmf63e3kyMj2\"}",
                     "eyJhbGciOiJFUzUxMiJ9.UGF5bG9hZA",
                     "AdwMgeerwtHoh-l192l60hp9wAHZFVJbLfD_UxMi70cwnZOYaRI1bKPWROc-mZZqwqT2SI-KGDK"
                     "B34XO0aw_7XdtAG8GaSwFKdCAPZgoXD2YBJZCPEX3xKpRwcdOO8KpEHwJjyqOgzDO7iKvU8vcnw"
                     "NrmxYbSW9ERBXukOXolLzeO_Jn"),
        0);
    /* RFC 8037 appendix A.4: EdDSA with Ed25519. */
    assert_int_equal(s_verify_raw("EdDSA",
                                  "{\"kty\":\"OKP\",\"crv\":\"Ed25519\","
                                  "\"x\":\"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo\"}",
                                  "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc",
                                  "hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5"
                                  "BhVsPt9g7sVvpAr_MuM0KAg"),
                     0);
}

/* JWS made by Python's acme.jws.JWS.sign (josepy 1.13): its JSON has spaces and the members
 * in another order, the header has its own member order; all of it must verify. */
static const char s_josepy_es256[] =
    "{\"protected\": \"eyJhbGciOiAiRVMyNTYiLCAiandrIjogeyJ4IjogImlvbHhFeGVORXlJcXl0WWZUQm5vZnF6"
    "UGtmU0trcmpvN3FJY0Jacy1zdjAiLCAieSI6ICJvUzBBWi02Z1REYXAtenJOalRqdUZXTGx6QkJ3dVlvV1EtLWlTd0"
    "stdi1zIiwgImNydiI6ICJQLTI1NiIsICJrdHkiOiAiRUMifSwgIm5vbmNlIjogImJtOXVZMlV0WVdKaiIsICJ1cmwi"
    "OiAiaHR0cHM6Ly9hY21lLnRlc3QvbmV3LWFjY3QifQ\", \"signature\": \"1aw6mr93pQwugofJEB-88OSKSZ7"
    "Ud1nNvjw520d3L9qY8yQz76ozCshWfh5NXvlry9-GCB17d_BwjybAGyAgNA\", \"payload\": \"eyJ0ZXJtc09m"
    "U2VydmljZUFncmVlZCI6dHJ1ZSwiY29udGFjdCI6WyJtYWlsdG86YUBleGFtcGxlLm9yZyJdfQ\"}";
static const char s_josepy_rs256[] =
    "{\"protected\": \"eyJhbGciOiAiUlMyNTYiLCAiandrIjogeyJuIjogIm9rbnVST1pOSTEzZzJtUEJDUVBveUFT"
    "UktjOTNnWG94ZnVYYXBiODJtdVBrMWFPdk1EN0w4aDJsRnNYR1Q0NEMybXpBbmM1aGZ0Sm1Od2lhUzlxY1BxRmZaNm"
    "1jaVJtcVVTaTM4UldkbFgxNkUxMjdzUU54X2ZKZm9UVTR1SS1rS0YxZGhaX2M5N1BzNnIzaGN6UGZvZ2kyU0F3VEdW"
    "cVgyX0Z4emdaNkJ4S2tCUWZ4SUl0RHRRZEFha0E2TENJOVZsWVpaeDhMc0xmaEhLUk04LUZwR3NBNmQ2Y1M0QjdNeG"
    "Nqc2QzVkpjNTRNOXFuTlBNb29pQ1JQQnZ4dm5idWFvQ19yalRrbDV0VzlMN2RNTDNCRnlKZUV3UmlrNXJBXzJheWww"
    "UlZJa21IQTlsR19GajBNTXZzblBFQXZZZnJacGI4V2cyT21ZbzQ3QTZ0ZHh5b0dUdyIsICJlIjogIkFRQUIiLCAia3"
    "R5IjogIlJTQSJ9LCAibm9uY2UiOiAiYm05dVkyVXRaR1ZtIiwgInVybCI6ICJodHRwczovL2FjbWUudGVzdC9vcmRl"
    "ci8xIn0\", \"signature\": \"YPrtW4G4L80KSV0CWaAHHG8z6ldpdcKM66CH27EM3Yu69d8F4ZYDuf71S1y_VWF"
    "QFNhre8yL4ey74Zp7OY-OtAK6rA3qVlosTDZ8PkQg664Vsz5-ibvvry4gM0I2MxzDAxxyb0fy6qoxQNUWYuZlMgS9Q"
    "WUzaPKyxl8lZbE7cPq4J65Zmuq5Hi0oEBdfRk0l9AnQlDVws5oGKOct0bXPHqLfi6ITBF44pXQoqvU0d3iDLwVLg3m"
    "5jMuFMxofGUWgpctNLUsFM6LPO5NUvJpVjyFzxRVI3WiQEwo57juM2K1vh4g4iFSMDUIO1pYKUGefPyYpQPLGEc02J"
    "5TZP1I-Wg\", \"payload\": \"\"}";
static const char s_josepy_es384[] =
    "{\"protected\": \"eyJhbGciOiAiRVMzODQiLCAiandrIjogeyJ4IjogIm9Pc0FwdmRCNDF0VTJkbnlzNU9xWXBG"
    "YlFvTGJpTmFKeXFXOGc3Rnozd09QaHgyQXRDalpTRkdVa2FPOHJ4QVQiLCAieSI6ICJURXgtUGtDdExUTjlMNUpTTn"
    "lKS3BMVDZ5OW5HVjZ0UjQ2SFFIeElQMldyYjg5T3dzR09NSGZ4Yzk1U2VucE9tIiwgImNydiI6ICJQLTM4NCIsICJr"
    "dHkiOiAiRUMifSwgIm5vbmNlIjogImJqTSIsICJ1cmwiOiAiaHR0cHM6Ly9hY21lLnRlc3QvbmV3LW9yZGVyIn0\", "
    "\"signature\": \"XBxZ01ozHbfJuqPJR-Fud1C1gmKT7uUCbp1IMBwROSOo6ZKVLCubMP8w_twaMDh6LqmKFoUBa6"
    "sgXpMEG7UsOekgaI2RyUm1MOjfBQTHaZnY0EpYVGG6ZRXOvo-yuAzn\", \"payload\": \"eyJpZGVudGlmaWVyc"
    "yI6W3sidHlwZSI6ImRucyIsInZhbHVlIjoiYS5leGFtcGxlIn1dfQ\"}";

static void s_josepy(const char *text, const char *alg, const char *nonce, const char *url)
{
    cf_error_t err = {0};
    cf_jws_t *jws = s_parse(text);
    assert_string_equal(jws->alg, alg);
    assert_string_equal(jws->nonce, nonce);
    assert_string_equal(jws->url, url);
    EVP_PKEY *key = cf_key_from_jwk(jws->jwk, &err);
    assert_non_null(key);
    assert_int_equal(cf_jws_verify(jws, key, &err), 0);
    EVP_PKEY_free(key);
    cf_jws_destroy(&jws);
}

static void test_josepy_interop(void **state)
{
    s_josepy(s_josepy_es256, "ES256", "bm9uY2UtYWJj", "https://acme.test/new-acct");
    s_josepy(s_josepy_rs256, "RS256", "bm9uY2UtZGVm", "https://acme.test/order/1");
    s_josepy(s_josepy_es384, "ES384", "bjM", "https://acme.test/new-order");
}

/* ------------------------------------------------------------------ malformed input */

static void test_parse_key_choice(void **state)
{
    const char *jwk = "{\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"AA\",\"y\":\"AA\"}";
    char header[512];
    snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"jwk\":%s,\"kid\":\"k\"}", jwk);
    s_header_fail(header, "malformed", "protected");
    s_header_fail("{\"alg\":\"ES256\",\"nonce\":\"n\",\"url\":\"u\"}", "malformed", "protected");
    s_header_fail("{\"alg\":\"ES256\",\"jwk\":\"key\"}", "malformed", "protected.jwk");
    s_header_fail("{\"alg\":\"ES256\",\"jwk\":{\"kty\":\"EC\",\"d\":\"AA\"}}", "malformed",
                  "protected.jwk");
    s_header_fail("{\"alg\":\"ES256\",\"kid\":5}", "malformed", "protected.kid");
    s_header_fail("{\"alg\":\"ES256\",\"kid\":\"\"}", "malformed", "protected.kid");
    s_header_fail("{\"alg\":\"ES256\",\"kid\":null}", "malformed", "protected.kid");
    s_header_fail("{\"alg\":\"ES256\",\"kid\":\"k\",\"nonce\":1}", "malformed", "protected.nonce");
    s_header_fail("{\"alg\":\"ES256\",\"kid\":\"k\",\"url\":[]}", "malformed", "protected.url");
}

static void test_parse_alg(void **state)
{
    s_header_fail("{\"kid\":\"k\"}", "malformed", "protected.alg");
    s_header_fail("{\"alg\":256,\"kid\":\"k\"}", "malformed", "protected.alg");
    s_header_fail("{\"alg\":\"none\",\"kid\":\"k\"}", "badSignatureAlgorithm", "protected.alg");
    s_header_fail("{\"alg\":\"HS256\",\"kid\":\"k\"}", "badSignatureAlgorithm", "protected.alg");
    s_header_fail("{\"alg\":\"PS256\",\"kid\":\"k\"}", "badSignatureAlgorithm", "protected.alg");
    s_header_fail("{\"alg\":\"es256\",\"kid\":\"k\"}", "badSignatureAlgorithm", "protected.alg");
    s_header_fail("{\"alg\":\"ES256K\",\"kid\":\"k\"}", "badSignatureAlgorithm", "protected.alg");
    s_header_fail("{\"alg\":\"ES256\",\"kid\":\"k\",\"crit\":[\"b64\"],\"b64\":false}", "malformed",
                  "protected.crit");
    /* Two "alg" members: which one was signed for? Refuse. */
    s_header_fail("{\"alg\":\"ES256\",\"alg\":\"none\",\"kid\":\"k\"}", "malformed", "protected");
    s_header_fail("[\"ES256\"]", "malformed", "protected");
    s_header_fail("\"ES256\"", "malformed", "protected");
    s_header_fail("", "malformed", "protected");
}

static void test_parse_encoding(void **state)
{
    const char *h = "eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ"; /* {"alg":"ES256","kid":"k"} */
    char body[512];
    /* The reference: this one parses. */
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"payload\":\"e30\",\"signature\":\"AAAA\"}",
             h);
    cf_jws_t *jws = s_parse(body);
    cf_jws_destroy(&jws);

    s_parse_fail_str("{\"protected\":\"eyJ+\",\"payload\":\"\",\"signature\":\"AAAA\"}",
                     "malformed", "protected");
    snprintf(body, sizeof body, "{\"protected\":\"%s=\",\"payload\":\"\",\"signature\":\"AAAA\"}",
             h);
    s_parse_fail_str(body, "malformed", "protected");
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"payload\":\"e30=\",\"signature\":\"AA\"}",
             h);
    s_parse_fail_str(body, "malformed", "payload");
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AAA=\"}",
             h);
    s_parse_fail_str(body, "malformed", "signature");
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AA/A\"}",
             h);
    s_parse_fail_str(body, "malformed", "signature");
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AA A\"}",
             h);
    s_parse_fail_str(body, "malformed", "signature");
    /* Stray bits in the last character: a second spelling of the same bytes. */
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"AB\"}", h);
    s_parse_fail_str(body, "malformed", "signature");
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":\"\"}", h);
    s_parse_fail_str(body, "malformed", "signature");
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"payload\":\"\",\"signature\":7}", h);
    s_parse_fail_str(body, "malformed", "signature");
    snprintf(body, sizeof body, "{\"protected\":\"%s\",\"signature\":\"AAAA\"}", h);
    s_parse_fail_str(body, "malformed", "payload");
    s_parse_fail_str("{\"protected\":{\"alg\":\"ES256\"},\"payload\":\"\",\"signature\":\"AAAA\"}",
                     "malformed", "protected");
}

static void test_parse_payload(void **state)
{
    const char *h = "{\"alg\":\"ES256\",\"kid\":\"k\"}";
    const char *bad[] = {"[1]", "\"text\"", "42", "null", "{", "{}}", "{\"a\":1,\"a\":2}", NULL};
    for (int i = 0; bad[i]; i++) {
        char *body = s_flat(h, bad[i], "AAAA");
        s_parse_fail_str(body, "malformed", "payload");
        free(body);
    }
    /* Nesting beyond CF_JWS_MAX_DEPTH in the payload. */
    char deep[128] = "";
    for (int i = 0; i < CF_JWS_MAX_DEPTH; i++)
        strcat(deep, "{\"a\":");
    strcat(deep, "1");
    for (int i = 0; i < CF_JWS_MAX_DEPTH; i++)
        strcat(deep, "}");
    char *body = s_flat(h, deep, "AAAA");
    cf_jws_t *jws = s_parse(body); /* exactly at the limit */
    cf_jws_destroy(&jws);
    free(body);
    char deeper[160];
    snprintf(deeper, sizeof deeper, "{\"b\":%s}", deep);
    body = s_flat(h, deeper, "AAAA");
    s_parse_fail_str(body, "malformed", "payload");
    free(body);
}

static void test_parse_outer(void **state)
{
    const char *good = "{\"protected\":\"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ\",\"payload\":\"\","
                       "\"signature\":\"AAAA\"";
    char body[512];
    snprintf(body, sizeof body, "%s,\"header\":{\"kid\":\"k\"}}", good);
    s_parse_fail_str(body, "malformed", "header");
    snprintf(body, sizeof body, "%s,\"signatures\":[]}", good);
    s_parse_fail_str(body, "malformed", "");
    snprintf(body, sizeof body, "%s,\"payload\":\"\"}", good); /* duplicate member */
    s_parse_fail_str(body, "malformed", "");
    snprintf(body, sizeof body, "%s}garbage", good);
    s_parse_fail_str(body, "malformed", "");
    snprintf(body, sizeof body, "%s}{}", good);
    s_parse_fail_str(body, "malformed", "");
    snprintf(body, sizeof body, "%s} \r\n", good); /* trailing white space is JSON */
    cf_jws_t *jws = s_parse(body);
    cf_jws_destroy(&jws);
    /* An embedded NUL ends nothing: the length counts. */
    snprintf(body, sizeof body, "%s}", good);
    size_t n = strlen(body);
    body[n] = '\0';
    body[n + 1] = ' ';
    s_parse_fail(body, n + 2, "malformed", "");
    s_parse_fail_str("", "malformed", "");
    s_parse_fail(NULL, 0, "malformed", "");
    s_parse_fail_str("[]", "malformed", "");
    s_parse_fail_str("\"protected\"", "malformed", "");
    s_parse_fail_str("eyJhbGciOiJFUzI1NiJ9.e30.AAAA", "malformed", ""); /* compact form */
    s_parse_fail_str("{\"protected\":\"\xff\xfe\",\"payload\":\"\",\"signature\":\"AAAA\"}",
                     "malformed", "");
}

static void test_parse_bounds(void **state)
{
    /* One byte over the limit, otherwise valid: refused before JSON parsing. */
    const char *prefix = "{\"protected\":\"eyJhbGciOiJFUzI1NiIsImtpZCI6ImsifQ\",\"payload\":\"\","
                         "\"signature\":\"";
    size_t total = CF_JWS_MAX_BYTES + 1;
    char *big = malloc(total + 1);
    assert_non_null(big);
    size_t plen = strlen(prefix);
    memcpy(big, prefix, plen);
    memset(big + plen, 'A', total - plen - 2);
    memcpy(big + total - 2, "\"}", 2);
    big[total] = '\0';
    s_parse_fail(big, total, "malformed", "");
    /* At the limit it is parsed (the signature is only wrong, not malformed); the length of
     * the A run is a multiple of four so the base64url is canonical. */
    size_t run = (CF_JWS_MAX_BYTES - plen - 2) / 4 * 4;
    size_t len = plen + run + 2;
    memcpy(big + plen + run, "\"}", 2);
    cf_error_t err = {0};
    cf_jws_t *jws = cf_jws_parse(big, len, &err);
    assert_non_null(jws);
    assert_int_equal(jws->signature_len, run / 4 * 3);
    cf_jws_destroy(&jws);
    free(big);

    /* Deep nesting of the body itself. */
    char deep[4096];
    size_t o = 0;
    for (int i = 0; i < 1000; i++)
        deep[o++] = '[';
    for (int i = 0; i < 1000; i++)
        deep[o++] = ']';
    s_parse_fail(deep, o, "malformed", "");
    /* Brackets inside strings do not count as nesting. */
    char header[600];
    char many[300];
    memset(many, '[', sizeof many - 1);
    many[sizeof many - 1] = '\0';
    snprintf(header, sizeof header, "{\"alg\":\"ES256\",\"kid\":\"%s\\\"\"}", many);
    char *body = s_flat(header, "{}", "AAAA");
    jws = s_parse(body);
    assert_int_equal(strlen(jws->kid), sizeof many);
    cf_jws_destroy(&jws);
    free(body);
}

/* ------------------------------------------------------------------ key authorizations */

static void test_key_authorization(void **state)
{
    json_error_t jerr;
    char out[256];
    const char *token = "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA"; /* RFC 8555 8.3 */
    /* RFC 7638 3.1: the thumbprint of RFC 7517's RSA key is known. */
    json_t *rsa = json_loads(
        "{\"kty\":\"RSA\",\"n\":\"0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86z"
        "wu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5"
        "w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpb"
        "ISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8aw"
        "apJzKnqDKgw\",\"e\":\"AQAB\",\"alg\":\"RS256\",\"kid\":\"2011-04-29\"}",
        0, &jerr);
    assert_non_null(rsa);
    assert_int_equal(cf_acme_key_authorization(token, rsa, out, sizeof out), 0);
    assert_string_equal(out, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                             "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");

    /* The P-256 key of s_josepy_es256; the expected values are what Python's
     * acme.challenges.HTTP01.key_authorization and DNS01.validation give for it. */
    json_t *ec = json_loads("{\"kty\":\"EC\",\"crv\":\"P-256\","
                            "\"x\":\"iolxExeNEyIqytYfTBnofqzPkfSKkrjo7qIcBZs-sv0\","
                            "\"y\":\"oS0AZ-6gTDap-zrNjTjuFWLlzBBwuYoWQ--iSwK-v-s\"}",
                            0, &jerr);
    assert_non_null(ec);
    assert_int_equal(cf_acme_key_authorization(token, ec, out, sizeof out), 0);
    assert_string_equal(out, "evaGxfADs6pSRb2LAv9IZf17Dt3juxGJ-PCt92wr-oA."
                             "jJfuYGsSQ6BFbJeXe848fJfaFd7iEapu92K6OQWqrJw");
    char txt[64];
    assert_int_equal(cf_acme_dns01_value(out, txt, sizeof txt), 0);
    assert_string_equal(txt, "PVuGSGYTfc7aW7DdNXUN18umSf1VFCOQS73TwxDbeS8");
    /* Exactly enough room: 43 characters and the NUL. */
    assert_int_equal(cf_acme_dns01_value(out, txt, 44), 0);
    assert_int_equal(cf_acme_dns01_value(out, txt, 43), -1);
    assert_int_equal(cf_acme_dns01_value(NULL, txt, sizeof txt), -1);

    /* Too small an output, a token outside the alphabet, a JWK that is not one. */
    assert_int_equal(cf_acme_key_authorization(token, ec, out, 60), -1);
    assert_int_equal(cf_acme_key_authorization("a/../b", ec, out, sizeof out), -1);
    assert_int_equal(cf_acme_key_authorization("a\r\nb", ec, out, sizeof out), -1);
    assert_int_equal(cf_acme_key_authorization("", ec, out, sizeof out), -1);
    assert_int_equal(cf_acme_key_authorization(NULL, ec, out, sizeof out), -1);
    json_t *junk = json_loads("{\"kty\":\"oct\",\"k\":\"AAAA\"}", 0, &jerr);
    assert_int_equal(cf_acme_key_authorization(token, junk, out, sizeof out), -1);
    json_decref(junk);
    json_decref(ec);
    json_decref(rsa);
}

/* A client's key authorization agrees with what a server computes from the JWS it got. */
static void test_key_authorization_from_jws(void **state)
{
    s_keys_t *k = *state;
    cf_error_t err = {0};
    char *text = cf_jws_sign(k->ed25519, NULL, "n", "u", "{}", &err);
    cf_jws_t *jws = s_parse(text);
    json_t *jwk = cf_key_public_jwk(k->ed25519, &err);
    char a[128];
    char b[128];
    assert_int_equal(cf_acme_key_authorization("tok", jws->jwk, a, sizeof a), 0);
    assert_int_equal(cf_acme_key_authorization("tok", jwk, b, sizeof b), 0);
    assert_string_equal(a, b);
    json_decref(jwk);
    cf_jws_destroy(&jws);
    free(text);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_roundtrip_rsa2048),
        cmocka_unit_test(test_roundtrip_p256),
        cmocka_unit_test(test_roundtrip_p384),
        cmocka_unit_test(test_roundtrip_p521),
        cmocka_unit_test(test_roundtrip_ed25519),
        cmocka_unit_test(test_ecdsa_fixed_size),
        cmocka_unit_test(test_wrong_key),
        cmocka_unit_test(test_alg_key_mismatch),
        cmocka_unit_test(test_alg_header_lies),
        cmocka_unit_test(test_unsupported_keys),
        cmocka_unit_test(test_sign_minimal),
        cmocka_unit_test(test_rfc_vectors),
        cmocka_unit_test(test_josepy_interop),
        cmocka_unit_test(test_parse_key_choice),
        cmocka_unit_test(test_parse_alg),
        cmocka_unit_test(test_parse_encoding),
        cmocka_unit_test(test_parse_payload),
        cmocka_unit_test(test_parse_outer),
        cmocka_unit_test(test_parse_bounds),
        cmocka_unit_test(test_key_authorization),
        cmocka_unit_test(test_key_authorization_from_jws),
    };
    return cmocka_run_group_tests(tests, s_setup, s_teardown);
}
