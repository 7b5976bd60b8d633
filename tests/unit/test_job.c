/* cf_job and cf_msgpack: envelope round trips and every class of malformed input, each with
 * its specific error code and field. Reads as the envelope's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "cf_job.h"
#include "cf_msgpack.h"

static const uint8_t s_id[CF_JOB_ID_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};

/* Pack a map from alternating key / packing callbacks: kept small by packing by hand. */
static void s_pack_params(msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    cf_msgpack_pack_cstr(&pk, "ca");
    cf_msgpack_pack_cstr(&pk, "root");
    cf_msgpack_pack_cstr(&pk, "der");
    msgpack_pack_bin(&pk, 3);
    msgpack_pack_bin_body(&pk, "\x30\x03\x01", 3);
}

static void test_job_round_trip(void **state)
{
    msgpack_sbuffer params, job;
    msgpack_sbuffer_init(&params);
    msgpack_sbuffer_init(&job);
    s_pack_params(&params);
    assert_int_equal(
        cf_job_pack(&job, s_id, "cert.issue", 1234567890123ull, params.data, params.size), 0);
    cf_error_t err = {0};
    cf_job_t *decoded = cf_job_decode(job.data, job.size, &err, NULL, NULL);
    assert_non_null(decoded);
    assert_memory_equal(cf_job_id(decoded), s_id, CF_JOB_ID_SIZE);
    assert_string_equal(cf_job_type(decoded), "cert.issue");
    assert_int_equal(cf_job_deadline_ms(decoded), 1234567890123ull);
    const msgpack_object *ca = cf_msgpack_map_get(cf_job_params(decoded), "ca");
    assert_non_null(ca);
    assert_int_equal(ca->type, MSGPACK_OBJECT_STR);
    size_t len;
    const void *data = cf_job_data(decoded, &len);
    assert_int_equal(len, job.size);
    assert_memory_equal(data, job.data, len);
    cf_job_destroy(&decoded);
    assert_null(decoded);
    msgpack_sbuffer_destroy(&params);
    msgpack_sbuffer_destroy(&job);
}

static void test_job_without_params(void **state)
{
    msgpack_sbuffer job;
    msgpack_sbuffer_init(&job);
    cf_job_pack(&job, s_id, "sys.ping", 0, NULL, 0);
    cf_error_t err = {0};
    cf_job_t *decoded = cf_job_decode(job.data, job.size, &err, NULL, NULL);
    assert_non_null(decoded);
    assert_int_equal(cf_job_params(decoded)->type, MSGPACK_OBJECT_MAP);
    assert_int_equal(cf_job_params(decoded)->via.map.size, 0);
    assert_int_equal(cf_job_deadline_ms(decoded), 0);
    cf_job_destroy(&decoded);
    msgpack_sbuffer_destroy(&job);
}

static void test_reply_round_trips(void **state)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_sbuffer result;
    msgpack_sbuffer_init(&result);
    s_pack_params(&result);
    cf_reply_pack_ok(&buf, s_id, result.data, result.size);
    cf_error_t err = {0};
    cf_reply_t *reply = cf_reply_decode(buf.data, buf.size, &err);
    assert_non_null(reply);
    assert_true(cf_reply_ok(reply));
    assert_memory_equal(cf_reply_id(reply), s_id, CF_JOB_ID_SIZE);
    assert_non_null(cf_msgpack_map_get(cf_reply_result(reply), "der"));
    assert_null(cf_reply_error(reply));
    json_t *j = cf_reply_to_json(reply);
    assert_string_equal(json_string_value(json_object_get(j, "status")), "ok");
    /* bin becomes base64 in JSON */
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "result"), "der")),
                        "MAMB");
    json_decref(j);
    cf_reply_destroy(&reply);

    msgpack_sbuffer_clear(&buf);
    cf_error_t e;
    cf_error_set(&e, "unknown_ca", "params.ca", "certificate authority \"%s\" does not exist", "x");
    cf_reply_pack_error(&buf, s_id, &e);
    reply = cf_reply_decode(buf.data, buf.size, &err);
    assert_non_null(reply);
    assert_false(cf_reply_ok(reply));
    assert_string_equal(cf_reply_error(reply)->code, "unknown_ca");
    assert_string_equal(cf_reply_error(reply)->field, "params.ca");
    assert_string_equal(cf_reply_error(reply)->message,
                        "certificate authority \"x\" does not exist");
    cf_reply_destroy(&reply);
    msgpack_sbuffer_destroy(&buf);
    msgpack_sbuffer_destroy(&result);
}

/* Decode BYTES and expect error CODE on FIELD. */
static void s_expect(const void *bytes, size_t len, const char *code, const char *field)
{
    cf_error_t err = {0};
    cf_job_t *job = cf_job_decode(bytes, len, &err, NULL, NULL);
    assert_null(job);
    assert_string_equal(err.code, code);
    assert_string_equal(err.field, field);
    assert_true(strlen(err.message) > 0);
}

/* Build an envelope with some fields replaced, by packing the map by hand. */
typedef enum { F_V, F_ID, F_TYPE, F_DEADLINE, F_PARAMS } s_field_t;

static void s_envelope(msgpack_sbuffer *buf, unsigned omit, s_field_t bad, int badkind)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    int n = 5 - __builtin_popcount(omit);
    msgpack_pack_map(&pk, n);
    for (int f = F_V; f <= F_PARAMS; f++) {
        if (omit & (1u << f))
            continue;
        static const char *names[] = {"v", "id", "type", "deadline_ms", "params"};
        cf_msgpack_pack_cstr(&pk, names[f]);
        bool isbad = badkind && (int)bad == f;
        switch (f) {
        case F_V:
            if (isbad && badkind == 1)
                cf_msgpack_pack_cstr(&pk, "1");
            else
                msgpack_pack_uint8(&pk, isbad ? 9 : 1);
            break;
        case F_ID:
            if (isbad && badkind == 1) {
                cf_msgpack_pack_cstr(&pk, "0102");
            } else {
                msgpack_pack_bin(&pk, isbad ? 8 : 16);
                msgpack_pack_bin_body(&pk, s_id, isbad ? 8 : 16);
            }
            break;
        case F_TYPE:
            if (isbad && badkind == 1)
                msgpack_pack_int(&pk, 7);
            else
                cf_msgpack_pack_cstr(&pk, isbad ? "Cert Issue!" : "sys.echo");
            break;
        case F_DEADLINE:
            if (isbad)
                msgpack_pack_int(&pk, -5);
            else
                msgpack_pack_uint64(&pk, 0);
            break;
        case F_PARAMS:
            if (isbad)
                msgpack_pack_array(&pk, 0);
            else
                msgpack_pack_map(&pk, 0);
            break;
        }
    }
}

static void test_malformed_fields(void **state)
{
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
#define CASE(omit, bad, kind, code, field)                                                         \
    do {                                                                                           \
        msgpack_sbuffer_clear(&b);                                                                 \
        s_envelope(&b, omit, bad, kind);                                                           \
        s_expect(b.data, b.size, code, field);                                                     \
    } while (0)
    CASE(1u << F_ID, F_V, 0, "missing_field", "id");
    CASE(1u << F_V, F_V, 0, "missing_field", "v");
    CASE(1u << F_TYPE, F_V, 0, "missing_field", "type");
    CASE(0, F_V, 1, "invalid_type", "v");
    CASE(0, F_V, 2, "unsupported_version", "v");
    CASE(0, F_ID, 1, "invalid_type", "id");
    CASE(0, F_ID, 2, "invalid_value", "id");
    CASE(0, F_TYPE, 1, "invalid_type", "type");
    CASE(0, F_TYPE, 2, "invalid_value", "type");
    CASE(0, F_DEADLINE, 1, "invalid_type", "deadline_ms");
    CASE(0, F_PARAMS, 1, "invalid_type", "params");
#undef CASE
    /* Not a map at all. */
    s_expect("\x93\x01\x02\x03", 4, "invalid_type", "");
    msgpack_sbuffer_destroy(&b);
}

static void test_malformed_bytes(void **state)
{
    /* Empty and truncated input. */
    s_expect("", 0, "truncated", "");
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    s_envelope(&b, 0, F_V, 0);
    for (size_t cut = 1; cut < b.size; cut++)
        s_expect(b.data, cut, "truncated", "");
    /* Trailing garbage after a complete envelope. */
    msgpack_sbuffer_write(&b, "\xc0", 1);
    s_expect(b.data, b.size, "trailing_bytes", "");
    msgpack_sbuffer_destroy(&b);
    /* Hostile counts: an 8-byte message claiming 2^32-1 array items or a 4 GiB string must
     * be refused without allocating. */
    s_expect("\xdd\xff\xff\xff\xff\x00\x00\x00", 8, "truncated", "");
    s_expect("\xdf\xff\xff\xff\xff\x00\x00\x00", 8, "truncated", "");
    s_expect("\xdb\xff\xff\xff\xff\x00\x00\x00", 8, "too_large", "");
    /* Ext types (and so msgpack timestamps) are not used. */
    s_expect("\xd6\xff\x00\x00\x00\x01", 6, "unsupported_type", "");
    s_expect("\xc1", 1, "unsupported_type", "");
}

static void test_limits(void **state)
{
    /* Nesting deeper than the limit. */
    uint8_t deep[200];
    memset(deep, 0x91, sizeof deep); /* fixarray of 1, nested */
    deep[sizeof deep - 1] = 0xc0;
    s_expect(deep, sizeof deep, "too_deep", "");
    /* Oversized message. */
    size_t big = (1u << 20) + 16;
    uint8_t *huge = calloc(1, big);
    huge[0] = 0xc6; /* bin32 */
    huge[1] = 0x00;
    huge[2] = 0x10;
    huge[3] = 0x00;
    huge[4] = 0x0b;
    s_expect(huge, big, "too_large", "");
    free(huge);
    /* Too many items, with custom limits. */
    cf_msgpack_limits_t lim = {1024, 8, 10, 1024};
    uint8_t many[20] = {0x9f}; /* fixarray of 15 nils would be 16 items */
    memset(many + 1, 0xc0, 15);
    cf_error_t err = {0};
    assert_int_equal(cf_msgpack_check(many, 16, &lim, &err), -1);
    assert_string_equal(err.code, "too_many_items");
    lim.max_items = 16;
    assert_int_equal(cf_msgpack_check(many, 16, &lim, &err), 0);
}

static void test_json_mapping(void **state)
{
    json_error_t jerr;
    json_t *in =
        json_loads("{\"a\": [1, -2, 2.5, true, null, \"x\"], \"b\": {\"c\": \"d\"}}", 0, &jerr);
    msgpack_sbuffer b;
    msgpack_sbuffer_init(&b);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &b, msgpack_sbuffer_write);
    assert_int_equal(cf_json_to_msgpack(in, &pk), 0);
    msgpack_unpacked u;
    cf_error_t err = {0};
    assert_int_equal(cf_msgpack_unpack(b.data, b.size, NULL, &u, &err), 0);
    json_t *out = cf_msgpack_to_json(&u.data, &err);
    assert_true(json_equal(in, out));
    json_decref(out);
    msgpack_unpacked_destroy(&u);
    json_decref(in);
    /* Non-string keys are refused, naming where. */
    assert_int_equal(cf_msgpack_unpack("\x81\xa1k\x81\x01\x02", 6, NULL, &u, &err), 0);
    assert_null(cf_msgpack_to_json(&u.data, &err));
    assert_string_equal(err.code, "invalid_type");
    assert_string_equal(err.field, "k");
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&b);
}

static void test_base64(void **state)
{
    size_t n;
    char *enc = cf_base64_encode("example.com", 11);
    assert_string_equal(enc, "ZXhhbXBsZS5jb20=");
    unsigned char *dec = cf_base64_decode(enc, strlen(enc), &n);
    assert_int_equal(n, 11);
    assert_memory_equal(dec, "example.com", 11);
    free(dec);
    free(enc);
    assert_null(cf_base64_decode("abc", 3, &n));
    assert_null(cf_base64_decode("ab=c", 4, &n));
    assert_null(cf_base64_decode("a*bc", 4, &n));
}

static void test_job_types(void **state)
{
    assert_true(cf_job_type_valid("cert.issue", 10));
    assert_true(cf_job_type_valid("ocsp.presign_v2", 15));
    assert_false(cf_job_type_valid("cert", 4));
    assert_false(cf_job_type_valid("cert..issue", 11));
    assert_false(cf_job_type_valid(".cert", 5));
    assert_false(cf_job_type_valid("Cert.Issue", 10));
    assert_true(cf_job_type_known("cert.issue"));
    assert_false(cf_job_type_known("no.such"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_job_round_trip),    cmocka_unit_test(test_job_without_params),
        cmocka_unit_test(test_reply_round_trips), cmocka_unit_test(test_malformed_fields),
        cmocka_unit_test(test_malformed_bytes),   cmocka_unit_test(test_limits),
        cmocka_unit_test(test_json_mapping),      cmocka_unit_test(test_base64),
        cmocka_unit_test(test_job_types),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
