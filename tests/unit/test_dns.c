/* cf_dns: the query bytes, and the answer parser on answers captured from dnsmasq (TXT records
 * of one and several strings, a CNAME before the TXT, NXDOMAIN, a truncated UDP answer) and on
 * hand-made hostile ones (compression loops and forward pointers, cut messages, lying counts,
 * CNAME loops, bad TXT and address lengths, another id or question), and CAA records (RFC 8659:
 * captured from dnsmasq; cut, empty, oversize and zero-length tags). Every byte of the captured
 * answers is also flipped to every value: the parser must answer or refuse, never crash (run
 * under ASan in CI). Reads as cf_dns's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "cf_dns.h"

#define S_NAME "_acme-challenge.example.test"

/* dnsmasq --txt-record=_acme-challenge.example.test,"abc","def"
 *         --txt-record=_acme-challenge.example.test,"second"   (id 0x1234) */
static const char s_two_records[] =
    "1234858000010002000000010f5f61636d652d6368616c6c656e6765076578616d706c6504746573740000100001"
    "c00c00100001000000000007067365636f6e64c00c00100001000000000008036162630364656600002904d00000"
    "00000000";
/* dnsmasq --cname=_acme-challenge.alias.test,_acme-challenge.example.test (id 0x2345) */
static const char s_cname_then_txt[] =
    "2345858000010003000000010f5f61636d652d6368616c6c656e676505616c69617304746573740000100001c00c"
    "0005000100000000001e0f5f61636d652d6368616c6c656e6765076578616d706c65047465737400c03800100001"
    "000000000007067365636f6e64c03800100001000000000008036162630364656600002904d0000000000000";
/* dnsmasq --local=/test/, a name it does not have (id 0x3456) */
static const char s_nxdomain[] = "3456818300010000000000010f5f61636d652d6368616c6c656e6765076e6f74"
                                 "68696e670474657374000010000100002904d0000000000000";
/* The start of a truncated (TC) UDP answer of 30 long TXT records (id 0x4567). */
static const char s_truncated[] =
    "456787800001000f000000010f5f61636d652d6368616c6c656e67650362696704746573740000100001c00c0010"
    "000100000000003f3e78787878";

/* dnsmasq --dns-rr=caa.example.test,257,<0 issue "other.example; account=1">
 *         --dns-rr=caa.example.test,257,<0 issue "ca.example.test"> (id 0x5678) */
static const char s_caa_two[] =
    "56788580000100020000000103636161076578616d706c6504746573740001010001c00c0101000100000000001f"
    "000569737375656f746865722e6578616d706c653b206163636f756e743d31c00c01010001000000000016000569"
    "7373756563612e6578616d706c652e7465737400002904d0000000000000";
/* dnsmasq --dns-rr=crit.example.test,257,<0 issue "ca.example.test">
 *         --dns-rr=crit.example.test,257,<128 tbs "x"> (id 0x6789) */
static const char s_caa_critical[] =
    "6789858000010002000000010463726974076578616d706c6504746573740001010001c00c010100010000000000"
    "160005697373756563612e6578616d706c652e74657374c00c0101000100000000000680037462737800002904d0"
    "000000000000";

static uint8_t *s_unhex(const char *hex, size_t *len)
{
    size_t n = strlen(hex) / 2;
    uint8_t *out = malloc(n + 1);
    assert_non_null(out);
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        assert_int_equal(sscanf(hex + 2 * i, "%2x", &v), 1);
        out[i] = (uint8_t)v;
    }
    *len = n;
    return out;
}

/* Parse HEX as the answer to NAME/TXT with ID, expecting it to work. */
static cf_dns_answer_t *s_parse_ok(const char *hex, uint16_t id, const char *name, uint16_t qtype)
{
    size_t len;
    uint8_t *msg = s_unhex(hex, &len);
    cf_error_t err = {0};
    cf_dns_answer_t *a = cf_dns_answer_parse(msg, len, id, name, qtype, &err);
    free(msg);
    if (!a)
        fail_msg("parse failed: %s: %s", err.code, err.message);
    return a;
}

static void s_assert_value(cf_dns_answer_t *a, size_t i, const char *want)
{
    size_t len;
    const uint8_t *v = cf_dns_answer_value(a, i, &len);
    assert_non_null(v);
    assert_int_equal(len, strlen(want));
    assert_memory_equal(v, want, len);
    assert_int_equal(v[len], 0);
}

/* ---- a small builder for hand-made answers ------------------------------------------- */

typedef struct {
    uint8_t b[4096];
    size_t n;
} s_msg_t;

static void s_put(s_msg_t *m, const void *data, size_t len)
{
    assert_true(m->n + len <= sizeof m->b);
    memcpy(m->b + m->n, data, len);
    m->n += len;
}

static void s_u16(s_msg_t *m, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    s_put(m, b, 2);
}

static void s_name(s_msg_t *m, const char *dotted)
{
    const char *p = dotted;
    while (*p) {
        const char *dot = strchr(p, '.');
        size_t l = dot ? (size_t)(dot - p) : strlen(p);
        uint8_t lb = (uint8_t)l;
        s_put(m, &lb, 1);
        s_put(m, p, l);
        p += l + (dot ? 1 : 0);
    }
    uint8_t zero = 0;
    s_put(m, &zero, 1);
}

/* Header (response, RD RA, RCODE) and the question for NAME/QTYPE. */
static void s_header(s_msg_t *m, uint16_t id, int rcode, uint16_t ancount, const char *name,
                     uint16_t qtype)
{
    m->n = 0;
    s_u16(m, id);
    s_u16(m, (uint16_t)(0x8180 | rcode));
    s_u16(m, 1);
    s_u16(m, ancount);
    s_u16(m, 0);
    s_u16(m, 0);
    s_name(m, name);
    s_u16(m, qtype);
    s_u16(m, 1);
}

/* A record's fixed part after its owner name. */
static void s_rr(s_msg_t *m, uint16_t type, uint16_t rdlength)
{
    s_u16(m, type);
    s_u16(m, 1);
    s_u16(m, 0);
    s_u16(m, 60);
    s_u16(m, rdlength);
}

static cf_dns_answer_t *s_parse_msg(const s_msg_t *m, uint16_t id, const char *name, uint16_t qtype,
                                    cf_error_t *err)
{
    return cf_dns_answer_parse(m->b, m->n, id, name, qtype, err);
}

static void s_assert_refused(const s_msg_t *m, const char *code)
{
    cf_error_t err = {0};
    cf_dns_answer_t *a = s_parse_msg(m, 7, S_NAME, CF_DNS_TYPE_TXT, &err);
    if (a) {
        cf_dns_answer_destroy(&a);
        fail_msg("expected \"%s\", the answer parsed", code);
    }
    if (strcmp(err.code, code) != 0)
        fail_msg("expected \"%s\", got \"%s\": %s", code, err.code, err.message);
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_query_bytes(void **state)
{
    uint8_t q[CF_DNS_QUERY_MAX];
    int n = cf_dns_query_build(q, sizeof q, 0xbeef, "_acme-challenge.Example.TEST.", 16);
    const uint8_t want[] = {
        0xbe, 0xef, 0x01, 0x00, 0,    1,   0,   0,   0,   0,   0,   1, /* id, RD, 1 question, 1
                                                                          additional */
        15,   '_',  'a',  'c',  'm',  'e', '-', 'c', 'h', 'a', 'l', 'l', 'e', 'n', 'g', 'e',
        7,    'e',  'x',  'a',  'm',  'p', 'l', 'e', 4,   't', 'e', 's', 't', 0, /* lower case */
        0,    16,   0,    1,                                                     /* TXT IN */
        0,    0,    41,   0x04, 0xd0, 0,   0,   0,   0,   0,   0, /* OPT, 1232 octets */
    };
    assert_int_equal(n, (int)sizeof want);
    assert_memory_equal(q, want, sizeof want);

    /* What is not a name, and a buffer too small. */
    char label64[80], long_name[300];
    memset(label64, 'a', 64);
    label64[64] = '\0';
    for (int i = 0; i < 127; i++)
        memcpy(long_name + 2 * i, "a.", 2);
    memcpy(long_name + 254, "a", 2); /* 255 characters */
    const char *bad[] = {"", ".", "a..b", ".a", "a b", "a\\.b", "tab\there", label64, long_name};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(cf_dns_query_build(q, sizeof q, 1, bad[i], 16), -1);
    label64[63] = '\0'; /* 63 is the most a label may have */
    assert_true(cf_dns_query_build(q, sizeof q, 1, label64, 16) > 0);
    assert_int_equal(cf_dns_query_build(q, 20, 1, S_NAME, 16), -1);
}

static void test_two_txt_records(void **state)
{
    cf_dns_answer_t *a = s_parse_ok(s_two_records, 0x1234, S_NAME, CF_DNS_TYPE_TXT);
    assert_int_equal(cf_dns_answer_rcode(a), CF_DNS_RCODE_NOERROR);
    assert_false(cf_dns_answer_truncated(a));
    assert_int_equal(cf_dns_answer_count(a), 2);
    s_assert_value(a, 0, "second");
    s_assert_value(a, 1, "abcdef"); /* "abc" "def": one record of two strings */
    assert_null(cf_dns_answer_value(a, 2, NULL));
    cf_dns_answer_destroy(&a);
    assert_null(a);
    cf_dns_answer_destroy(&a);
    /* The question compares without regard to case. */
    a = s_parse_ok(s_two_records, 0x1234, "_ACME-Challenge.example.test.", CF_DNS_TYPE_TXT);
    assert_int_equal(cf_dns_answer_count(a), 2);
    cf_dns_answer_destroy(&a);
}

static void test_cname_before_txt(void **state)
{
    cf_dns_answer_t *a =
        s_parse_ok(s_cname_then_txt, 0x2345, "_acme-challenge.alias.test", CF_DNS_TYPE_TXT);
    assert_int_equal(cf_dns_answer_count(a), 2);
    s_assert_value(a, 0, "second");
    s_assert_value(a, 1, "abcdef");
    cf_dns_answer_destroy(&a);

    /* The CNAME after the records it leads to, and a TXT of another name that must not count. */
    s_msg_t m;
    s_header(&m, 7, 0, 3, S_NAME, CF_DNS_TYPE_TXT);
    s_name(&m, "target.test");
    s_rr(&m, CF_DNS_TYPE_TXT, 4);
    s_put(&m, "\x03yes", 4);
    s_name(&m, "other.test");
    s_rr(&m, CF_DNS_TYPE_TXT, 3);
    s_put(&m, "\x02no", 3);
    s_put(&m, "\xc0\x0c", 2); /* owner: the question's name */
    s_rr(&m, CF_DNS_TYPE_CNAME, 13);
    s_name(&m, "target.test");
    cf_error_t err = {0};
    a = s_parse_msg(&m, 7, S_NAME, CF_DNS_TYPE_TXT, &err);
    assert_non_null(a);
    assert_int_equal(cf_dns_answer_count(a), 1);
    s_assert_value(a, 0, "yes");
    cf_dns_answer_destroy(&a);
}

static void test_compression_pointers(void **state)
{
    /* A TXT owner written as a pointer to the question, a CNAME target ending in a pointer. */
    s_msg_t m;
    s_header(&m, 7, 0, 2, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_CNAME, 7);
    size_t target = m.n;
    s_put(&m, "\x04next\xc0\x1c", 7); /* "next" + pointer to "example.test" at offset 28 */
    uint8_t ptr[2] = {0xc0, (uint8_t)target};
    s_put(&m, ptr, 2);
    s_rr(&m, CF_DNS_TYPE_TXT, 3);
    s_put(&m, "\x02ok", 3);
    cf_error_t err = {0};
    cf_dns_answer_t *a = s_parse_msg(&m, 7, S_NAME, CF_DNS_TYPE_TXT, &err);
    if (!a)
        fail_msg("%s", err.message);
    assert_int_equal(cf_dns_answer_count(a), 1);
    s_assert_value(a, 0, "ok");
    cf_dns_answer_destroy(&a);

    /* A pointer to itself. */
    s_header(&m, 7, 0, 1, S_NAME, CF_DNS_TYPE_TXT);
    ptr[1] = (uint8_t)m.n;
    s_put(&m, ptr, 2);
    s_rr(&m, CF_DNS_TYPE_TXT, 2);
    s_put(&m, "\x01x", 2);
    s_assert_refused(&m, "malformed");

    /* Two labels and a pointer back to the first: a loop through labels. */
    s_header(&m, 7, 0, 1, S_NAME, CF_DNS_TYPE_TXT);
    size_t start = m.n;
    s_put(&m,
          "\x01"
          "a\x01"
          "b",
          4);
    ptr[1] = (uint8_t)start;
    s_put(&m, ptr, 2);
    s_rr(&m, CF_DNS_TYPE_TXT, 2);
    s_put(&m, "\x01x", 2);
    s_assert_refused(&m, "malformed");

    /* A pointer forward. */
    s_header(&m, 7, 0, 1, S_NAME, CF_DNS_TYPE_TXT);
    ptr[1] = (uint8_t)(m.n + 2);
    s_put(&m, ptr, 2);
    s_put(&m,
          "\x01"
          "a\x00",
          3);
    s_rr(&m, CF_DNS_TYPE_TXT, 2);
    s_put(&m, "\x01x", 2);
    s_assert_refused(&m, "malformed");

    /* Two pointers pointing at each other (the question's name replaced by a pointer). */
    m.n = 0;
    s_u16(&m, 7);
    s_u16(&m, 0x8180);
    s_u16(&m, 1);
    s_u16(&m, 0);
    s_u16(&m, 0);
    s_u16(&m, 0);
    s_put(&m, "\xc0\x0e\xc0\x0c", 4);
    s_u16(&m, 16);
    s_u16(&m, 1);
    s_assert_refused(&m, "malformed");

    /* Reserved label types 0x40 and 0x80. */
    s_header(&m, 7, 0, 1, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m,
          "\x41"
          "a\x00",
          3);
    s_rr(&m, CF_DNS_TYPE_TXT, 2);
    s_put(&m, "\x01x", 2);
    s_assert_refused(&m, "malformed");

    /* A name of more than 255 octets, through pointers: five labels of 63 octets, kept in
     * the RDATA of a record of another type, and an owner that points at the last one. */
    s_header(&m, 7, 0, 2, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, 99, 65 + 4 * 66);
    size_t prev = 0, first = m.n;
    for (int i = 0; i < 5; i++) {
        size_t here = m.n;
        uint8_t l = 63;
        s_put(&m, &l, 1);
        for (int k = 0; k < 63; k++)
            s_put(&m, "a", 1);
        if (i > 0) {
            ptr[0] = (uint8_t)(0xc0 | (prev >> 8));
            ptr[1] = (uint8_t)prev;
            s_put(&m, ptr, 2);
        } else {
            s_put(&m, "", 1);
        }
        prev = here;
    }
    assert_int_equal(m.n - first, 65 + 4 * 66);
    ptr[0] = (uint8_t)(0xc0 | (prev >> 8));
    ptr[1] = (uint8_t)prev;
    s_put(&m, ptr, 2);
    s_rr(&m, CF_DNS_TYPE_TXT, 2);
    s_put(&m, "\x01x", 2);
    s_assert_refused(&m, "malformed");
}

static void test_cname_loop(void **state)
{
    s_msg_t m;
    s_header(&m, 7, 0, 2, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_CNAME, 8);
    s_name(&m, "b.test");
    s_name(&m, "b.test");
    s_rr(&m, CF_DNS_TYPE_CNAME, 2);
    s_put(&m, "\xc0\x0c", 2);
    s_assert_refused(&m, "malformed");

    /* A chain longer than CF_DNS_MAX_CNAMES. */
    s_header(&m, 7, 0, CF_DNS_MAX_CNAMES + 1, S_NAME, CF_DNS_TYPE_TXT);
    char owner[32], target[32];
    snprintf(owner, sizeof owner, "%s", S_NAME);
    for (int i = 0; i <= CF_DNS_MAX_CNAMES; i++) {
        snprintf(target, sizeof target, "c%d.test", i);
        s_name(&m, owner);
        s_rr(&m, CF_DNS_TYPE_CNAME, (uint16_t)(strlen(target) + 2));
        s_name(&m, target);
        snprintf(owner, sizeof owner, "%s", target);
    }
    s_assert_refused(&m, "malformed");

    /* A CNAME whose target runs past its RDATA. */
    s_header(&m, 7, 0, 1, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_CNAME, 3);
    s_name(&m, "b.test");
    s_assert_refused(&m, "malformed");
}

static void test_truncated(void **state)
{
    /* Every prefix of a real answer: refused while it ends before its records do. */
    size_t len;
    uint8_t *msg = s_unhex(s_cname_then_txt, &len);
    size_t records_end = len - 11; /* the OPT record is not read */
    for (size_t n = 0; n < len; n++) {
        cf_error_t err = {0};
        uint8_t *copy = malloc(n ? n : 1);
        memcpy(copy, msg, n);
        cf_dns_answer_t *a =
            cf_dns_answer_parse(copy, n, 0x2345, "_acme-challenge.alias.test", 16, &err);
        if (n < records_end) {
            assert_null(a);
            assert_string_equal(err.code, "truncated");
        } else {
            assert_non_null(a);
        }
        cf_dns_answer_destroy(&a);
        free(copy);
    }
    free(msg);

    /* TC set: no records, ask again over TCP. */
    cf_dns_answer_t *a =
        s_parse_ok(s_truncated, 0x4567, "_acme-challenge.big.test", CF_DNS_TYPE_TXT);
    assert_true(cf_dns_answer_truncated(a));
    assert_int_equal(cf_dns_answer_count(a), 0);
    cf_dns_answer_destroy(&a);

    /* More records claimed than the bytes can hold. */
    s_msg_t m;
    s_header(&m, 7, 0, 65535, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_TXT, 2);
    s_put(&m, "\x01x", 2);
    s_assert_refused(&m, "truncated");

    /* RDLENGTH past the end. */
    s_header(&m, 7, 0, 1, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_TXT, 200);
    s_put(&m, "\x01x", 2);
    s_assert_refused(&m, "truncated");
}

static void test_wrong_answers(void **state)
{
    size_t len;
    uint8_t *msg = s_unhex(s_two_records, &len);
    cf_error_t err = {0};
    assert_null(cf_dns_answer_parse(msg, len, 0x1235, S_NAME, 16, &err));
    assert_string_equal(err.code, "wrong_id");
    assert_null(cf_dns_answer_parse(msg, len, 0x1234, "_acme-challenge.other.test", 16, &err));
    assert_string_equal(err.code, "wrong_question");
    assert_null(cf_dns_answer_parse(msg, len, 0x1234, S_NAME, CF_DNS_TYPE_A, &err));
    assert_string_equal(err.code, "wrong_question");
    msg[2] &= 0x7f; /* a query, not a response */
    assert_null(cf_dns_answer_parse(msg, len, 0x1234, S_NAME, 16, &err));
    assert_string_equal(err.code, "wrong_question");
    assert_null(cf_dns_answer_parse(msg, len, 0x1234, "a..b", 16, &err));
    free(msg);

    /* TXT strings that do not fill the record, an empty TXT, and an A of 5 octets. */
    s_msg_t m;
    s_header(&m, 7, 0, 1, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_TXT, 3);
    s_put(&m,
          "\x05"
          "ab",
          3);
    s_assert_refused(&m, "malformed");
    s_header(&m, 7, 0, 1, S_NAME, CF_DNS_TYPE_TXT);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_TXT, 0);
    s_assert_refused(&m, "malformed");
    s_header(&m, 7, 0, 1, "example.test", CF_DNS_TYPE_A);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_A, 5);
    s_put(&m, "\x01\x02\x03\x04\x05", 5);
    assert_null(cf_dns_answer_parse(m.b, m.n, 7, "example.test", CF_DNS_TYPE_A, &err));
    assert_string_equal(err.code, "malformed");

    /* An A answer that is right, with a record of another class skipped. */
    s_header(&m, 7, 0, 2, "example.test", CF_DNS_TYPE_A);
    s_put(&m, "\xc0\x0c", 2);
    s_u16(&m, CF_DNS_TYPE_A);
    s_u16(&m, 3); /* CHAOS */
    s_u16(&m, 0);
    s_u16(&m, 60);
    s_u16(&m, 4);
    s_put(&m, "\x09\x09\x09\x09", 4);
    s_put(&m, "\xc0\x0c", 2);
    s_rr(&m, CF_DNS_TYPE_A, 4);
    s_put(&m, "\x7f\x00\x00\x01", 4);
    cf_dns_answer_t *a = cf_dns_answer_parse(m.b, m.n, 7, "example.test", CF_DNS_TYPE_A, &err);
    assert_non_null(a);
    assert_int_equal(cf_dns_answer_count(a), 1);
    size_t vlen;
    assert_memory_equal(cf_dns_answer_value(a, 0, &vlen), "\x7f\x00\x00\x01", 4);
    assert_int_equal(vlen, 4);
    cf_dns_answer_destroy(&a);
}

static void test_nxdomain(void **state)
{
    cf_dns_answer_t *a =
        s_parse_ok(s_nxdomain, 0x3456, "_acme-challenge.nothing.test", CF_DNS_TYPE_TXT);
    assert_int_equal(cf_dns_answer_rcode(a), CF_DNS_RCODE_NXDOMAIN);
    assert_int_equal(cf_dns_answer_count(a), 0);
    cf_dns_answer_destroy(&a);
    /* SERVFAIL: parsed, the caller reads the RCODE. */
    s_msg_t m;
    s_header(&m, 7, CF_DNS_RCODE_SERVFAIL, 0, S_NAME, CF_DNS_TYPE_TXT);
    cf_error_t err = {0};
    a = s_parse_msg(&m, 7, S_NAME, CF_DNS_TYPE_TXT, &err);
    assert_non_null(a);
    assert_int_equal(cf_dns_answer_rcode(a), CF_DNS_RCODE_SERVFAIL);
    cf_dns_answer_destroy(&a);
}

/* A CAA property as RFC 8659 4.1 writes it: flags, tag length, tag, value. */
static size_t s_caa_rdata(uint8_t *out, uint8_t flags, uint8_t tag_len, const char *tag,
                          const char *value)
{
    out[0] = flags;
    out[1] = tag_len;
    memcpy(out + 2, tag, strlen(tag));
    memcpy(out + 2 + strlen(tag), value, strlen(value));
    return 2 + strlen(tag) + strlen(value);
}

static void s_assert_caa(cf_dns_answer_t *a, size_t i, uint8_t flags, const char *tag,
                         const char *value)
{
    size_t len;
    const uint8_t *rdata = cf_dns_answer_value(a, i, &len);
    assert_non_null(rdata);
    cf_dns_caa_t caa;
    cf_error_t err = {0};
    assert_int_equal(cf_dns_caa_parse(rdata, len, &caa, &err), 0);
    assert_int_equal(caa.flags, flags);
    assert_string_equal(caa.tag, tag);
    assert_int_equal(caa.value_len, strlen(value));
    assert_memory_equal(caa.value, value, caa.value_len);
}

/* Well-formed CAA answers from dnsmasq: each record's flags, tag and value; the critical flag
 * is read as it is (the validator decides what it means); a CNAME is followed. */
static void test_caa_records(void **state)
{
    cf_dns_answer_t *a = s_parse_ok(s_caa_two, 0x5678, "caa.example.test", CF_DNS_TYPE_CAA);
    assert_int_equal(cf_dns_answer_rcode(a), CF_DNS_RCODE_NOERROR);
    assert_int_equal(cf_dns_answer_count(a), 2);
    s_assert_caa(a, 0, 0, "issue", "other.example; account=1");
    s_assert_caa(a, 1, 0, "issue", "ca.example.test");
    cf_dns_answer_destroy(&a);
    a = s_parse_ok(s_caa_critical, 0x6789, "crit.example.test", CF_DNS_TYPE_CAA);
    assert_int_equal(cf_dns_answer_count(a), 2);
    s_assert_caa(a, 0, 0, "issue", "ca.example.test");
    s_assert_caa(a, 1, CF_DNS_CAA_CRITICAL, "tbs", "x");
    cf_dns_answer_destroy(&a);

    /* An empty value (RFC 8659 allows it: nobody may issue), a 15-letter tag, upper case. */
    uint8_t rdata[64];
    size_t n = s_caa_rdata(rdata, 0, 5, "ISSUE", "");
    cf_dns_caa_t caa;
    cf_error_t err = {0};
    assert_int_equal(cf_dns_caa_parse(rdata, n, &caa, &err), 0);
    assert_string_equal(caa.tag, "ISSUE");
    assert_int_equal(caa.value_len, 0);
    n = s_caa_rdata(rdata, 0, 15, "abcdefghijklmn5", ";");
    assert_int_equal(cf_dns_caa_parse(rdata, n, &caa, &err), 0);
    assert_string_equal(caa.tag, "abcdefghijklmn5");

    /* A CNAME to the name with the records, in a hand-made answer. */
    s_msg_t m;
    s_header(&m, 9, 0, 2, "alias.example.test", CF_DNS_TYPE_CAA);
    s_u16(&m, 0xc00c);
    s_rr(&m, CF_DNS_TYPE_CNAME, 18);
    s_name(&m, "caa.example.test");
    s_name(&m, "caa.example.test");
    n = s_caa_rdata(rdata, CF_DNS_CAA_CRITICAL, 5, "issue", "ca.example.test");
    s_rr(&m, CF_DNS_TYPE_CAA, (uint16_t)n);
    s_put(&m, rdata, n);
    a = s_parse_msg(&m, 9, "alias.example.test", CF_DNS_TYPE_CAA, &err);
    if (!a)
        fail_msg("%s: %s", err.code, err.message);
    assert_int_equal(cf_dns_answer_count(a), 1);
    s_assert_caa(a, 0, CF_DNS_CAA_CRITICAL, "issue", "ca.example.test");
    cf_dns_answer_destroy(&a);
}

/* One CAA record with RDATA in an answer for caa.example.test: the answer is refused whole. */
static void s_assert_caa_refused(const uint8_t *rdata, size_t n, const char *why)
{
    cf_dns_caa_t caa;
    cf_error_t err = {0};
    assert_int_equal(cf_dns_caa_parse(rdata, n, &caa, &err), -1);
    assert_string_equal(err.code, "malformed");
    if (!strstr(err.message, why))
        fail_msg("expected \"%s\" in \"%s\"", why, err.message);
    s_msg_t m;
    s_header(&m, 7, 0, 1, "caa.example.test", CF_DNS_TYPE_CAA);
    s_u16(&m, 0xc00c);
    s_rr(&m, CF_DNS_TYPE_CAA, (uint16_t)n);
    s_put(&m, rdata, n);
    memset(&err, 0, sizeof err);
    cf_dns_answer_t *a = s_parse_msg(&m, 7, "caa.example.test", CF_DNS_TYPE_CAA, &err);
    if (a) {
        cf_dns_answer_destroy(&a);
        fail_msg("an answer with a bad CAA record (%s) parsed", why);
    }
    assert_string_equal(err.code, "malformed");
}

static void test_caa_malformed(void **state)
{
    uint8_t rdata[64];
    /* Truncated: the tag length runs past the RDATA; no tag at all; nothing. */
    size_t n = s_caa_rdata(rdata, 0, 9, "issue", "");
    s_assert_caa_refused(rdata, n, "runs past");
    s_assert_caa_refused(rdata, 1, "no tag");
    s_assert_caa_refused(rdata, 0, "no tag");
    /* Zero-length tag. */
    n = s_caa_rdata(rdata, 0, 0, "", "ca.example.test");
    s_assert_caa_refused(rdata, n, "0 octets");
    /* Oversize tag: 16 letters. */
    n = s_caa_rdata(rdata, 0, 16, "abcdefghijklmnop", "ca.example.test");
    s_assert_caa_refused(rdata, n, "16 octets");
    n = s_caa_rdata(rdata, CF_DNS_CAA_CRITICAL, 255, "x", "");
    s_assert_caa_refused(rdata, n, "255 octets");
    /* A tag of other characters. */
    n = s_caa_rdata(rdata, 0, 6, "is-sue", "ca.example.test");
    s_assert_caa_refused(rdata, n, "0x2d");
    /* A SERVFAIL answer to a CAA question parses; the caller reads the RCODE. */
    s_msg_t m;
    s_header(&m, 7, CF_DNS_RCODE_SERVFAIL, 0, "caa.example.test", CF_DNS_TYPE_CAA);
    cf_error_t err = {0};
    cf_dns_answer_t *a = s_parse_msg(&m, 7, "caa.example.test", CF_DNS_TYPE_CAA, &err);
    assert_non_null(a);
    assert_int_equal(cf_dns_answer_rcode(a), CF_DNS_RCODE_SERVFAIL);
    assert_int_equal(cf_dns_answer_count(a), 0);
    cf_dns_answer_destroy(&a);
}

/* Every byte of the captured answers set to every value: answered or refused, never a crash,
 * and whatever parses holds values within the message's size. */
static void test_every_byte_flipped(void **state)
{
    const struct {
        const char *hex;
        uint16_t id;
        const char *name;
        uint16_t qtype;
    } cases[] = {
        {s_two_records, 0x1234, S_NAME, CF_DNS_TYPE_TXT},
        {s_cname_then_txt, 0x2345, "_acme-challenge.alias.test", CF_DNS_TYPE_TXT},
        {s_nxdomain, 0x3456, "_acme-challenge.nothing.test", CF_DNS_TYPE_TXT},
        {s_caa_two, 0x5678, "caa.example.test", CF_DNS_TYPE_CAA},
        {s_caa_critical, 0x6789, "crit.example.test", CF_DNS_TYPE_CAA},
    };
    size_t parsed = 0, refused = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t len;
        uint8_t *msg = s_unhex(cases[c].hex, &len);
        for (size_t i = 0; i < len; i++) {
            uint8_t keep = msg[i];
            for (int v = 0; v < 256; v++) {
                msg[i] = (uint8_t)v;
                cf_error_t err = {0};
                cf_dns_answer_t *a =
                    cf_dns_answer_parse(msg, len, cases[c].id, cases[c].name, cases[c].qtype, &err);
                if (!a) {
                    assert_true(err.code[0] != '\0');
                    refused++;
                    continue;
                }
                for (size_t k = 0; k < cf_dns_answer_count(a); k++) {
                    size_t vlen;
                    const uint8_t *value = cf_dns_answer_value(a, k, &vlen);
                    assert_non_null(value);
                    assert_true(vlen < len);
                    cf_dns_caa_t caa;
                    if (cases[c].qtype == CF_DNS_TYPE_CAA)
                        assert_int_equal(cf_dns_caa_parse(value, vlen, &caa, &err), 0);
                }
                cf_dns_answer_destroy(&a);
                parsed++;
            }
            msg[i] = keep;
        }
        free(msg);
    }
    assert_true(parsed > 0 && refused > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_query_bytes),        cmocka_unit_test(test_two_txt_records),
        cmocka_unit_test(test_cname_before_txt),   cmocka_unit_test(test_compression_pointers),
        cmocka_unit_test(test_cname_loop),         cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_wrong_answers),      cmocka_unit_test(test_nxdomain),
        cmocka_unit_test(test_caa_records),        cmocka_unit_test(test_caa_malformed),
        cmocka_unit_test(test_every_byte_flipped),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
