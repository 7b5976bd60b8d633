/* Fuzz target: the x509 data model on untrusted bytes. The bytes are read two ways:
 * - as MessagePack (what jobs carry): checked, unpacked, mapped to JSON, then parsed as an
 *   extension, a list of extensions (also under the signing rule), a name and general names;
 *   every extension model that parses must survive parse -> DER -> model unchanged;
 * - as the DER of an X509_EXTENSION (what certificates carry): read into a model, shown as
 *   text, and if it is valid input, encoded and read back unchanged.
 * Must never crash, leak, or break a round trip (a broken round trip aborts). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <openssl/err.h>
#include <openssl/x509.h>

#include "cf_general_name.h"
#include "cf_msgpack.h"
#include "cf_x509_ext.h"
#include "cf_x509_name.h"

static void s_die(const char *what, const json_t *a, const json_t *b)
{
    char *sa = a ? json_dumps(a, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    char *sb = b ? json_dumps(b, JSON_ENCODE_ANY | JSON_SORT_KEYS) : NULL;
    fprintf(stderr, "%s\n  %s\n  %s\n", what, sa ? sa : "(null)", sb ? sb : "(null)");
    free(sa);
    free(sb);
    abort();
}

/* A parsed (normalised) model: idempotent, and DER round trips to the same model. */
static void s_check_model(const json_t *model)
{
    cf_error_t err = {0};
    json_t *again = cf_extension_parse(model, &err);
    if (!again || !json_equal(again, model))
        s_die("parse is not idempotent", model, again);
    json_decref(again);
    free(cf_extension_to_text(model));

    const char *type = json_string_value(json_object_get(model, "type"));
    X509_EXTENSION *ext = cf_extension_to_openssl(model, &err);
    if (cf_extension_read_only(type)) {
        if (ext)
            s_die("read-only model was encoded", model, NULL);
        return;
    }
    if (!ext)
        s_die(err.message, model, NULL);
    unsigned char *der = NULL;
    int len = i2d_X509_EXTENSION(ext, &der);
    X509_EXTENSION_free(ext);
    const unsigned char *p = der;
    X509_EXTENSION *read = len > 0 ? d2i_X509_EXTENSION(NULL, &p, len) : NULL;
    json_t *back = read ? cf_extension_from_openssl(read, &err) : NULL;
    if (!back || !json_equal(back, model))
        s_die("DER round trip changed the model", model, back);
    json_decref(back);
    X509_EXTENSION_free(read);
    OPENSSL_free(der);
}

static void s_msgpack(const uint8_t *data, size_t size)
{
    cf_error_t err = {0};
    msgpack_unpacked up;
    if (cf_msgpack_unpack(data, size, NULL, &up, &err) != 0)
        return;
    json_t *j = cf_msgpack_to_json(&up.data, &err);
    msgpack_unpacked_destroy(&up);
    if (!j)
        return;

    json_t *model = cf_extension_parse(j, &err);
    if (model)
        s_check_model(model);
    json_decref(model);

    json_t *list = cf_extensions_parse(j, &err);
    for (size_t i = 0; list && i < json_array_size(list); i++)
        s_check_model(json_array_get(list, i));
    if (list) {
        STACK_OF(X509_EXTENSION) *sk = cf_extensions_to_openssl(list, &err);
        sk_X509_EXTENSION_pop_free(sk, X509_EXTENSION_free);
    }
    json_decref(list);
    json_decref(cf_extensions_parse_for_sign(j, &err));

    /* The other shapes of the data model. */
    json_decref(cf_name_parse(j, &err));
    json_decref(cf_general_names_parse(j, &err));
    json_decref(cf_general_name_parse(j, &err));
    json_decref(j);
}

static void s_der(const uint8_t *data, size_t size)
{
    const unsigned char *p = data;
    X509_EXTENSION *ext = d2i_X509_EXTENSION(NULL, &p, (long)size);
    if (!ext)
        return;
    cf_error_t err = {0};
    json_t *model = cf_extension_from_openssl(ext, &err);
    if (model) {
        free(cf_extension_to_text(model));
        /* Read leniently; what also passes as input must round trip. */
        json_t *parsed = cf_extension_parse(model, &err);
        if (parsed)
            s_check_model(parsed);
        json_decref(parsed);
    }
    json_decref(model);
    X509_EXTENSION_free(ext);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    s_msgpack(data, size);
    s_der(data, size);
    ERR_clear_error();
    return 0;
}
