/* Fuzz target: the DNS answer parser (cf_dns) on untrusted bytes, as the validator reads them
 * from a resolver or from whoever spoofs one. The answer is parsed against a few questions
 * (the id is taken from the input, so that the fuzzer reaches past the id check at once);
 * whatever parses is walked, CAA records through cf_dns_caa_parse, and the input itself is
 * also parsed as CAA RDATA. Must never crash, leak, loop or read outside the input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cf_dns.h"

static const struct {
    const char *name;
    uint16_t qtype;
} s_questions[] = {
    {"_acme-challenge.example.test", CF_DNS_TYPE_TXT},
    {"_acme-challenge.alias.test", CF_DNS_TYPE_TXT},
    {"_acme-challenge.big.test", CF_DNS_TYPE_TXT},
    {"_acme-challenge.nothing.test", CF_DNS_TYPE_TXT},
    {"example.test", CF_DNS_TYPE_A},
    {"example.test", CF_DNS_TYPE_AAAA},
    {"caa.example.test", CF_DNS_TYPE_CAA},
    {"crit.example.test", CF_DNS_TYPE_CAA},
    {"alias.example.test", CF_DNS_TYPE_CAA},
};

/* A CAA property must lie inside the record it came from, its tag 1 to 15 letters or digits. */
static void s_check_caa(const uint8_t *rdata, size_t len, bool must_parse)
{
    cf_dns_caa_t caa;
    cf_error_t err = {0};
    if (cf_dns_caa_parse(rdata, len, &caa, &err) != 0) {
        if (must_parse || err.code[0] == '\0')
            abort();
        return;
    }
    size_t tag_len = strlen(caa.tag);
    if (tag_len == 0 || tag_len > CF_DNS_CAA_TAG_MAX || caa.value < rdata ||
        caa.value + caa.value_len != rdata + len || 2 + tag_len + caa.value_len != len)
        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint16_t id = size >= 2 ? (uint16_t)((data[0] << 8) | data[1]) : 0;
    for (size_t q = 0; q < sizeof s_questions / sizeof s_questions[0]; q++) {
        cf_error_t err = {0};
        cf_dns_answer_t *a =
            cf_dns_answer_parse(data, size, id, s_questions[q].name, s_questions[q].qtype, &err);
        if (!a)
            continue;
        size_t total = 0;
        for (size_t i = 0; i < cf_dns_answer_count(a); i++) {
            size_t len;
            const uint8_t *v = cf_dns_answer_value(a, i, &len);
            if (!v || v[len] != 0 || len > size)
                abort();
            /* cf_dns_answer_parse refuses a CAA answer with a record that does not parse. */
            if (s_questions[q].qtype == CF_DNS_TYPE_CAA)
                s_check_caa(v, len, true);
            total += len;
        }
        if (total > size)
            abort();
        (void)cf_dns_answer_rcode(a);
        (void)cf_dns_answer_truncated(a);
        cf_dns_answer_destroy(&a);
    }
    s_check_caa(data, size, false);
    /* The query builder on the input as a name. */
    char name[300];
    size_t n = size < sizeof name - 1 ? size : sizeof name - 1;
    memcpy(name, data, n);
    name[n] = '\0';
    uint8_t query[CF_DNS_QUERY_MAX];
    int qlen = cf_dns_query_build(query, sizeof query, id, name, CF_DNS_TYPE_TXT);
    if (qlen > (int)sizeof query)
        abort();
    return 0;
}
