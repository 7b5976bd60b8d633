/* x509_ext_testlib: what the test_x509_ext_*.c programs share: build a model from JSON text,
 * check its normalised form and every round trip (parse again, JSON text, MessagePack, DER
 * through OpenSSL), and check errors by code and field. Included by each test program, so
 * everything is static and marked unused. */
#ifndef X509_EXT_TESTLIB_H
#define X509_EXT_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <msgpack.h>
#include <openssl/conf.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "cf_msgpack.h"
#include "cf_x509_ext.h"

#define TL_UNUSED __attribute__((unused))

/* JSON text -> value; the test fails on bad JSON. Caller owns. */
TL_UNUSED static json_t *tl_json(const char *text)
{
    json_error_t e;
    json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
    if (!j)
        fail_msg("bad JSON in test (%s): %s", e.text, text);
    return j;
}

/* Compact sorted text of a value (caller frees). */
TL_UNUSED static char *tl_dump(const json_t *j)
{
    return json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
}

TL_UNUSED static void tl_assert_equal(const json_t *got, const json_t *want, const char *what)
{
    if (json_equal(got, want))
        return;
    char *g = got ? tl_dump(got) : strdup("(null)");
    char *w = tl_dump(want);
    print_error("%s:\n  got  %s\n  want %s\n", what, g, w);
    free(g);
    free(w);
    fail();
}

/* MODEL -> DER of the whole Extension, through cf_extension_to_openssl; caller frees. */
TL_UNUSED static unsigned char *tl_der(const json_t *model, int *len)
{
    cf_error_t err = {0};
    X509_EXTENSION *ext = cf_extension_to_openssl(model, &err);
    if (!ext)
        fail_msg("to_openssl failed: %s %s: %s", err.code, err.field, err.message);
    unsigned char *der = NULL;
    *len = i2d_X509_EXTENSION(ext, &der);
    X509_EXTENSION_free(ext);
    assert_true(*len > 0);
    return der;
}

/* DER -> model through d2i and cf_extension_from_openssl; caller owns. */
TL_UNUSED static json_t *tl_from_der(const unsigned char *der, int len)
{
    const unsigned char *p = der;
    X509_EXTENSION *ext = d2i_X509_EXTENSION(NULL, &p, len);
    assert_non_null(ext);
    cf_error_t err = {0};
    json_t *model = cf_extension_from_openssl(ext, &err);
    X509_EXTENSION_free(ext);
    if (!model)
        fail_msg("from_openssl failed: %s %s: %s", err.code, err.field, err.message);
    return model;
}

/* Every round trip of a normalised MODEL. */
TL_UNUSED static void tl_round_trips(const json_t *model)
{
    cf_error_t err = {0};
    /* Parsing is idempotent. */
    json_t *again = cf_extension_parse(model, &err);
    if (!again)
        fail_msg("normalised model does not parse: %s %s: %s", err.code, err.field, err.message);
    tl_assert_equal(again, model, "parse of the normalised model");
    json_decref(again);

    /* JSON text. */
    char *text = json_dumps(model, JSON_COMPACT);
    json_t *loaded = tl_json(text);
    free(text);
    again = cf_extension_parse(loaded, &err);
    tl_assert_equal(again, model, "JSON text round trip");
    json_decref(again);
    json_decref(loaded);

    /* MessagePack: msgpack -> json -> model. */
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    assert_int_equal(cf_json_to_msgpack(model, &pk), 0);
    msgpack_unpacked up;
    assert_int_equal(cf_msgpack_unpack(buf.data, buf.size, NULL, &up, &err), 0);
    json_t *from_mp = cf_msgpack_to_json(&up.data, &err);
    assert_non_null(from_mp);
    again = cf_extension_parse(from_mp, &err);
    tl_assert_equal(again, model, "MessagePack round trip");
    json_decref(again);
    json_decref(from_mp);
    msgpack_unpacked_destroy(&up);
    msgpack_sbuffer_destroy(&buf);

    /* DER, unless the model is read-only. */
    const char *type = json_string_value(json_object_get(model, "type"));
    if (!cf_extension_read_only(type)) {
        int len;
        unsigned char *der = tl_der(model, &len);
        json_t *back = tl_from_der(der, len);
        tl_assert_equal(back, model, "DER round trip");
        json_decref(back);
        OPENSSL_free(der);
    }

    /* Text always renders. */
    char *shown = cf_extension_to_text(model);
    assert_non_null(shown);
    assert_non_null(strstr(shown, cf_extension_name(type)));
    free(shown);
}

/* Parse IN; it must normalise to WANT (JSON texts), and WANT must survive every round trip. */
TL_UNUSED static void tl_check(const char *in, const char *want)
{
    json_t *input = tl_json(in);
    json_t *expected = tl_json(want);
    cf_error_t err = {0};
    json_t *got = cf_extension_parse(input, &err);
    if (!got)
        fail_msg("parse of %s failed: %s %s: %s", in, err.code, err.field, err.message);
    tl_assert_equal(got, expected, in);
    tl_round_trips(got);
    json_decref(got);
    json_decref(expected);
    json_decref(input);
}

/* Parse IN; it must fail with CODE at FIELD. */
TL_UNUSED static void tl_check_error(const char *in, const char *code, const char *field)
{
    json_t *input = tl_json(in);
    cf_error_t err = {0};
    json_t *got = cf_extension_parse(input, &err);
    if (got) {
        char *g = tl_dump(got);
        print_error("%s parsed as %s\n", in, g);
        free(g);
        fail();
    }
    if (strcmp(err.code, code) != 0 || strcmp(err.field, field) != 0)
        fail_msg("%s: got %s at \"%s\" (%s), want %s at \"%s\"", in, err.code, err.field,
                 err.message, code, field);
    /* Messages follow the house style: lower case start, no final period. */
    size_t n = strlen(err.message);
    assert_true(n > 0);
    assert_false(err.message[n - 1] == '.');
    json_decref(input);
}

/* DER of the Extension OpenSSL's config language makes from NAME = VALUE (with CONF_TEXT as
 * extra sections, may be NULL); caller frees. */
TL_UNUSED static unsigned char *tl_nconf_der(const char *name, const char *value,
                                             const char *conf_text, int *len)
{
    /* Some methods (certificatePolicies) want a config database even when they use none. */
    CONF *conf = NCONF_new(NULL);
    BIO *bio = BIO_new_mem_buf(conf_text ? conf_text : "\n", -1);
    long eline = 0;
    if (!NCONF_load_bio(conf, bio, &eline))
        fail_msg("bad config in test at line %ld", eline);
    BIO_free(bio);
    X509V3_CTX ctx;
    X509V3_set_ctx(&ctx, NULL, NULL, NULL, NULL, 0);
    X509V3_set_nconf(&ctx, conf);
    X509_EXTENSION *ext = X509V3_EXT_nconf(conf, &ctx, name, value);
    if (!ext) {
        ERR_print_errors_fp(stderr);
        fail_msg("X509V3_EXT_nconf(%s, %s) failed", name, value);
    }
    unsigned char *der = NULL;
    *len = i2d_X509_EXTENSION(ext, &der);
    X509_EXTENSION_free(ext);
    NCONF_free(conf);
    return der;
}

/* MODEL (JSON text) must encode to exactly the DER OpenSSL's config makes of NAME = VALUE. */
TL_UNUSED static void tl_check_nconf(const char *model, const char *name, const char *value,
                                     const char *conf_text)
{
    json_t *m = tl_json(model);
    int len1, len2;
    unsigned char *ours = tl_der(m, &len1);
    unsigned char *theirs = tl_nconf_der(name, value, conf_text, &len2);
    if (len1 != len2 || memcmp(ours, theirs, (size_t)len1) != 0) {
        print_error("DER differs for %s = %s\n  ours:   ", name, value);
        for (int i = 0; i < len1; i++)
            print_error("%02X", ours[i]);
        print_error("\n  nconf:  ");
        for (int i = 0; i < len2; i++)
            print_error("%02X", theirs[i]);
        print_error("\n");
        fail();
    }
    /* And OpenSSL's DER reads back as the model (normalised). */
    cf_error_t err = {0};
    json_t *norm = cf_extension_parse(m, &err);
    assert_non_null(norm);
    json_t *back = tl_from_der(theirs, len2);
    tl_assert_equal(back, norm, "model of OpenSSL's DER");
    json_decref(back);
    json_decref(norm);
    OPENSSL_free(ours);
    OPENSSL_free(theirs);
    json_decref(m);
}

#endif
