/* cf_dns: the little DNS (RFC 1035) the validator needs: a recursive query for one name and
 * type, and a bounded parser of the answer that follows CNAMEs and hands back the records of
 * the asked type (TXT as the concatenation of each record's character-strings). The parser
 * reads untrusted bytes: every length is checked against the message, compression pointers
 * must point before the name that uses them (so that they cannot loop), names are at most
 * 255 octets, and CNAME chains at most CF_DNS_MAX_CNAMES long. No sockets here: the caller
 * sends and receives (workers/validator/dns01.c).
 *
 *   uint8_t q[CF_DNS_QUERY_MAX];
 *   int qlen = cf_dns_query_build (q, sizeof q, id, "_acme-challenge.example.org",
 * CF_DNS_TYPE_TXT);
 *   ... send q, receive msg ...
 *   cf_dns_answer_t *a = cf_dns_answer_parse (msg, len, id, name, CF_DNS_TYPE_TXT, &err);
 *   for (size_t i = 0; a && i < cf_dns_answer_count (a); i++)
 *       value = cf_dns_answer_value (a, i, &vlen);
 *
 * CAA (RFC 8659): an answer to a CAA question holds only records whose RDATA
 * cf_dns_caa_parse accepts (else the whole answer is "malformed"); the caller reads each
 * record's flags, tag and value with it.
 */
#ifndef CF_DNS_H
#define CF_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_error.h"

#define CF_DNS_TYPE_A     1
#define CF_DNS_TYPE_CNAME 5
#define CF_DNS_TYPE_TXT   16
#define CF_DNS_TYPE_AAAA  28
#define CF_DNS_TYPE_CAA   257
#define CF_DNS_CLASS_IN   1

#define CF_DNS_RCODE_NOERROR  0
#define CF_DNS_RCODE_SERVFAIL 2
#define CF_DNS_RCODE_NXDOMAIN 3

#define CF_DNS_QUERY_MAX  300  /* header, the longest name, question, EDNS record */
#define CF_DNS_EDNS_SIZE  1232 /* the UDP payload size a query offers (DNS flag day 2020) */
#define CF_DNS_MAX_CNAMES 8    /* CNAMEs followed before an answer counts as malformed */

#define CF_DNS_CAA_TAG_MAX  15   /* the longest CAA tag (RFC 8659 4.1.1) */
#define CF_DNS_CAA_CRITICAL 0x80 /* the CAA "issuer critical" flag */

/* One CAA property (RFC 8659 4.1). */
typedef struct {
    uint8_t flags;                    /* CF_DNS_CAA_CRITICAL, other bits reserved */
    char tag[CF_DNS_CAA_TAG_MAX + 1]; /* as written (letters and digits), NUL-terminated */
    const uint8_t *value;             /* borrowed from the RDATA; any octets */
    size_t value_len;                 /* its length (may be 0) */
} cf_dns_caa_t;

typedef struct _cf_dns_answer_t cf_dns_answer_t;

/* Write a query for NAME (dotted text, a final dot allowed, no escapes) and QTYPE with id ID,
 * recursion desired and an EDNS0 record offering CF_DNS_EDNS_SIZE, into BUF. Returns its
 * length, or -1 when NAME is not a valid name (an empty or 64+ octet label, over 253
 * characters, spaces or control characters) or CAP is too small. */
int cf_dns_query_build(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype);

/* Parse the answer MSG (LEN bytes) to the query for NAME and QTYPE with id ID. NULL + err when
 * it is not that answer: "wrong_id" (another id), "wrong_question" (not a response, not a
 * standard query, or another question), "truncated" (the bytes end inside a record),
 * "malformed" (bad lengths, labels or pointers, a CNAME loop). A truncated (TC) answer parses
 * to an answer with no records and cf_dns_answer_truncated true. Caller owns the answer. */
cf_dns_answer_t *cf_dns_answer_parse(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                                     uint16_t qtype, cf_error_t *err);
void cf_dns_answer_destroy(cf_dns_answer_t **self_p);

/* The RCODE (CF_DNS_RCODE_*). */
int cf_dns_answer_rcode(const cf_dns_answer_t *self);
/* True when the TC bit was set: ask again over TCP. */
bool cf_dns_answer_truncated(const cf_dns_answer_t *self);
/* How many records of the asked type answer the name (after following CNAMEs). */
size_t cf_dns_answer_count(const cf_dns_answer_t *self);
/* Record I: for TXT its character-strings joined, for A and AAAA the 4 or 16 address bytes,
 * else the raw RDATA. Borrowed, NUL-terminated after LEN bytes (it may hold NUL bytes). */
const uint8_t *cf_dns_answer_value(const cf_dns_answer_t *self, size_t i, size_t *len);

/* Parse CAA RDATA (LEN octets): a flags octet, a tag length of 1 to CF_DNS_CAA_TAG_MAX, a tag
 * of ASCII letters and digits, and the value, which is the rest. OUT borrows from RDATA.
 * 0, or -1 with err "malformed" (empty, tag length 0 or over 15, a tag running past the
 * RDATA or holding other characters). */
int cf_dns_caa_parse(const uint8_t *rdata, size_t len, cf_dns_caa_t *out, cf_error_t *err);

#endif
