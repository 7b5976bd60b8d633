/* cf_dns: a DNS query builder and a bounded answer parser (RFC 1035, EDNS0 of RFC 6891). */
#include "cf_dns.h"

#include <stdlib.h>
#include <string.h>

#define S_HEADER   12
#define S_NAME_MAX 255 /* octets of a name in wire form, the root label included */
#define S_RR_MIN   11  /* the smallest resource record: root name, type, class, ttl, rdlength */

typedef struct {
    uint8_t *data; /* the value (owned), a NUL after LEN bytes */
    size_t len;    /* its length */
} s_value_t;

struct _cf_dns_answer_t {
    int rcode;         /* RCODE of the header */
    bool truncated;    /* TC bit */
    s_value_t *values; /* the records of the asked type that answer the name */
    size_t count;      /* how many */
};

/* A name in canonical wire form: length-prefixed labels, lower case, ending in the root. */
typedef struct {
    uint8_t octets[S_NAME_MAX]; /* the name */
    size_t len;                 /* octets used, the root label included */
} s_name_t;

/* A CNAME or a record of the asked type, as found in the answer section. */
typedef struct {
    s_name_t owner;  /* the record's name */
    uint16_t type;   /* CF_DNS_TYPE_* */
    size_t rdata;    /* offset of RDATA in the message */
    size_t rdlength; /* its length */
    s_name_t target; /* CNAME only: where it points */
} s_rr_t;

static uint16_t s_u16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

static uint8_t s_lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c - 'A' + 'a') : c;
}

/* Dotted text to canonical wire form. 0 or -1 when it is no valid name. */
static int s_name_from_text(const char *text, s_name_t *out)
{
    size_t n = strlen(text);
    if (n > 0 && text[n - 1] == '.')
        n--;
    if (n == 0 || n > 253)
        return -1;
    size_t o = 0, label = 0;
    out->octets[o++] = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = (uint8_t)text[i];
        if (c == '.') {
            if (out->octets[label] == 0)
                return -1;
            label = o;
            out->octets[o++] = 0;
            continue;
        }
        /* No escapes and no spaces: names here come from ACME identifiers. */
        if (c <= 0x20 || c >= 0x7f || c == '\\' || out->octets[label] == 63)
            return -1;
        out->octets[label]++;
        out->octets[o++] = s_lower(c);
    }
    if (out->octets[label] == 0)
        return -1;
    out->octets[o++] = 0;
    out->len = o;
    return 0;
}

static bool s_name_equal(const s_name_t *a, const s_name_t *b)
{
    return a->len == b->len && memcmp(a->octets, b->octets, a->len) == 0;
}

/* Read the name at *POS into OUT and move *POS past it as written there (a pointer counts
 * two octets). Every compression pointer must point before the run of labels it ends, so
 * that the positions read keep going down after each jump and no input can loop. 0 or -1. */
static int s_read_name(const uint8_t *msg, size_t len, size_t *pos, s_name_t *out, cf_error_t *err)
{
    size_t p = *pos, run = *pos, end = 0, o = 0;
    bool jumped = false;
    for (;;) {
        if (p >= len) {
            cf_error_set(err, "truncated", "", "the answer ends inside a name");
            return -1;
        }
        uint8_t c = msg[p];
        if ((c & 0xc0) == 0xc0) {
            if (p + 1 >= len) {
                cf_error_set(err, "truncated", "", "the answer ends inside a name");
                return -1;
            }
            size_t target = ((size_t)(c & 0x3f) << 8) | msg[p + 1];
            if (target >= run) {
                cf_error_set(err, "malformed", "",
                             "a compression pointer at offset %zu does not point backwards", p);
                return -1;
            }
            if (!jumped)
                end = p + 2;
            jumped = true;
            p = run = target;
            continue;
        }
        if (c & 0xc0) {
            cf_error_set(err, "malformed", "", "unknown label type 0x%02x at offset %zu", c, p);
            return -1;
        }
        if (c == 0) {
            out->octets[o++] = 0;
            p++;
            break;
        }
        if (p + 1 + c > len) {
            cf_error_set(err, "truncated", "", "the answer ends inside a label");
            return -1;
        }
        if (o + 1 + c + 1 > S_NAME_MAX) {
            cf_error_set(err, "malformed", "", "a name is longer than 255 octets");
            return -1;
        }
        out->octets[o++] = c;
        for (size_t i = 0; i < c; i++)
            out->octets[o++] = s_lower(msg[p + 1 + i]);
        p += 1 + (size_t)c;
    }
    out->len = o;
    *pos = jumped ? end : p;
    return 0;
}

int cf_dns_query_build(uint8_t *buf, size_t cap, uint16_t id, const char *name, uint16_t qtype)
{
    s_name_t qname;
    if (!buf || !name || s_name_from_text(name, &qname) != 0)
        return -1;
    size_t need = S_HEADER + qname.len + 4 + 11;
    if (cap < need)
        return -1;
    uint8_t *p = buf;
    /* id, flags (RD), QDCOUNT 1, ANCOUNT 0, NSCOUNT 0, ARCOUNT 1 (the OPT record) */
    const uint8_t header[S_HEADER] = {
        (uint8_t)(id >> 8), (uint8_t)id, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 1};
    memcpy(p, header, sizeof header);
    p += sizeof header;
    memcpy(p, qname.octets, qname.len);
    p += qname.len;
    *p++ = (uint8_t)(qtype >> 8);
    *p++ = (uint8_t)qtype;
    *p++ = 0;
    *p++ = CF_DNS_CLASS_IN;
    /* OPT: root owner, type 41, class = UDP payload size, extended rcode/version/flags 0. */
    const uint8_t opt[11] = {0, 0, 41, CF_DNS_EDNS_SIZE >> 8, CF_DNS_EDNS_SIZE & 0xff, 0, 0, 0,
                             0, 0, 0};
    memcpy(p, opt, sizeof opt);
    p += sizeof opt;
    return (int)(p - buf);
}

/* TXT RDATA: one or more character-strings, each a length octet and that many octets, filling
 * RDLENGTH exactly. Their concatenation into OUT (a new buffer). 0 or -1. */
static int s_txt_join(const uint8_t *rdata, size_t rdlength, s_value_t *out, cf_error_t *err)
{
    out->data = malloc(rdlength + 1);
    if (!out->data) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    size_t q = 0, o = 0;
    if (rdlength == 0)
        goto bad;
    while (q < rdlength) {
        size_t l = rdata[q];
        if (q + 1 + l > rdlength)
            goto bad;
        memcpy(out->data + o, rdata + q + 1, l);
        o += l;
        q += 1 + l;
    }
    out->data[o] = '\0';
    out->len = o;
    return 0;
bad:
    free(out->data);
    out->data = NULL;
    cf_error_set(err, "malformed", "", "a TXT record's strings do not fill its length");
    return -1;
}

cf_dns_answer_t *cf_dns_answer_parse(const uint8_t *msg, size_t len, uint16_t id, const char *name,
                                     uint16_t qtype, cf_error_t *err)
{
    s_name_t qname, found;
    s_rr_t *rrs = NULL;
    cf_dns_answer_t *self = NULL;
    if (!msg || !name || s_name_from_text(name, &qname) != 0) {
        cf_error_set(err, "malformed", "", "the question is not a valid name");
        return NULL;
    }
    if (len < S_HEADER) {
        cf_error_set(err, "truncated", "", "the answer is shorter than a DNS header");
        return NULL;
    }
    /* The id first: answers that are not ours are dropped before anything else is read. */
    if (s_u16(msg) != id) {
        cf_error_set(err, "wrong_id", "", "the answer has id %u, not %u", s_u16(msg), id);
        return NULL;
    }
    uint16_t flags = s_u16(msg + 2);
    uint16_t qdcount = s_u16(msg + 4), ancount = s_u16(msg + 6);
    if (!(flags & 0x8000) || ((flags >> 11) & 0xf) != 0 || qdcount != 1) {
        cf_error_set(err, "wrong_question", "",
                     "not a response to one standard query (flags 0x%04x, %u questions)", flags,
                     qdcount);
        return NULL;
    }
    size_t pos = S_HEADER;
    if (s_read_name(msg, len, &pos, &found, err) != 0)
        return NULL;
    if (pos + 4 > len) {
        cf_error_set(err, "truncated", "", "the answer ends inside the question");
        return NULL;
    }
    if (!s_name_equal(&found, &qname) || s_u16(msg + pos) != qtype ||
        s_u16(msg + pos + 2) != CF_DNS_CLASS_IN) {
        cf_error_set(err, "wrong_question", "", "the answer is for another question");
        return NULL;
    }
    pos += 4;
    self = calloc(1, sizeof *self);
    if (!self)
        goto oom;
    self->rcode = flags & 0xf;
    self->truncated = (flags & 0x0200) != 0;
    /* A truncated answer's records may be cut anywhere: the caller asks again over TCP. */
    if (self->truncated || ancount == 0)
        return self;
    /* Every record takes at least S_RR_MIN octets: a count the bytes cannot hold is refused
     * before anything is allocated for it. */
    if ((size_t)ancount > (len - pos) / S_RR_MIN) {
        cf_error_set(err, "truncated", "", "the answer claims %u records in %zu octets", ancount,
                     len - pos);
        goto fail;
    }
    rrs = calloc(ancount, sizeof *rrs);
    if (!rrs)
        goto oom;
    size_t nrr = 0;
    for (uint16_t i = 0; i < ancount; i++) {
        s_rr_t *rr = &rrs[nrr];
        if (s_read_name(msg, len, &pos, &rr->owner, err) != 0)
            goto fail;
        if (pos + 10 > len) {
            cf_error_set(err, "truncated", "", "the answer ends inside record %u", i);
            goto fail;
        }
        uint16_t type = s_u16(msg + pos), klass = s_u16(msg + pos + 2);
        size_t rdlength = s_u16(msg + pos + 8);
        pos += 10;
        if (rdlength > len - pos) {
            cf_error_set(err, "truncated", "", "the data of record %u runs past the answer", i);
            goto fail;
        }
        size_t rdata = pos;
        pos += rdlength;
        if (klass != CF_DNS_CLASS_IN || (type != qtype && type != CF_DNS_TYPE_CNAME))
            continue;
        rr->type = type;
        rr->rdata = rdata;
        rr->rdlength = rdlength;
        if (type == CF_DNS_TYPE_CNAME && qtype != CF_DNS_TYPE_CNAME) {
            /* The target may use pointers into the rest of the message, but what is written
             * in the record must end exactly with its RDATA. */
            size_t tpos = rdata;
            if (s_read_name(msg, rdata + rdlength, &tpos, &rr->target, err) != 0 ||
                tpos != rdata + rdlength) {
                cf_error_set(err, "malformed", "", "record %u is not a well-formed CNAME", i);
                goto fail;
            }
        } else if (type == CF_DNS_TYPE_CAA) {
            /* Checked here so that a CAA answer either parses whole or fails closed. */
            cf_dns_caa_t caa;
            cf_error_t why = {0};
            if (cf_dns_caa_parse(msg + rdata, rdlength, &caa, &why) != 0) {
                cf_error_set(err, "malformed", "", "record %u: %s", i, why.message);
                goto fail;
            }
        } else if ((type == CF_DNS_TYPE_A && rdlength != 4) ||
                   (type == CF_DNS_TYPE_AAAA && rdlength != 16)) {
            cf_error_set(err, "malformed", "", "record %u has an address of %zu octets", i,
                         rdlength);
            goto fail;
        }
        nrr++;
    }
    /* Follow the CNAME chain from the question; the records of the last name answer it. */
    const s_name_t *current = &qname;
    for (int hops = 0;; hops++) {
        const s_rr_t *next = NULL;
        for (size_t i = 0; i < nrr && qtype != CF_DNS_TYPE_CNAME; i++)
            if (rrs[i].type == CF_DNS_TYPE_CNAME && s_name_equal(&rrs[i].owner, current)) {
                next = &rrs[i];
                break;
            }
        if (!next)
            break;
        if (hops == CF_DNS_MAX_CNAMES) {
            cf_error_set(err, "malformed", "", "more than %d CNAMEs, or a CNAME loop",
                         CF_DNS_MAX_CNAMES);
            goto fail;
        }
        current = &next->target;
    }
    size_t matches = 0;
    for (size_t i = 0; i < nrr; i++)
        if (rrs[i].type == qtype && s_name_equal(&rrs[i].owner, current))
            matches++;
    if (matches > 0 && !(self->values = calloc(matches, sizeof *self->values)))
        goto oom;
    for (size_t i = 0; i < nrr; i++) {
        if (rrs[i].type != qtype || !s_name_equal(&rrs[i].owner, current))
            continue;
        s_value_t *v = &self->values[self->count];
        if (qtype == CF_DNS_TYPE_TXT) {
            if (s_txt_join(msg + rrs[i].rdata, rrs[i].rdlength, v, err) != 0)
                goto fail;
        } else {
            if (!(v->data = malloc(rrs[i].rdlength + 1)))
                goto oom;
            memcpy(v->data, msg + rrs[i].rdata, rrs[i].rdlength);
            v->data[rrs[i].rdlength] = '\0';
            v->len = rrs[i].rdlength;
        }
        self->count++;
    }
    free(rrs);
    return self;
oom:
    cf_error_set(err, "internal", "", "out of memory");
fail:
    free(rrs);
    cf_dns_answer_destroy(&self);
    return NULL;
}

void cf_dns_answer_destroy(cf_dns_answer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_dns_answer_t *self = *self_p;
    for (size_t i = 0; i < self->count; i++)
        free(self->values[i].data);
    free(self->values);
    free(self);
    *self_p = NULL;
}

int cf_dns_answer_rcode(const cf_dns_answer_t *self)
{
    return self->rcode;
}

bool cf_dns_answer_truncated(const cf_dns_answer_t *self)
{
    return self->truncated;
}

size_t cf_dns_answer_count(const cf_dns_answer_t *self)
{
    return self->count;
}

const uint8_t *cf_dns_answer_value(const cf_dns_answer_t *self, size_t i, size_t *len)
{
    if (i >= self->count) {
        if (len)
            *len = 0;
        return NULL;
    }
    if (len)
        *len = self->values[i].len;
    return self->values[i].data;
}

int cf_dns_caa_parse(const uint8_t *rdata, size_t len, cf_dns_caa_t *out, cf_error_t *err)
{
    memset(out, 0, sizeof *out);
    if (!rdata || len < 2) {
        cf_error_set(err, "malformed", "", "a CAA record of %zu octets has no tag", len);
        return -1;
    }
    size_t tag_len = rdata[1];
    if (tag_len == 0 || tag_len > CF_DNS_CAA_TAG_MAX) {
        cf_error_set(err, "malformed", "", "a CAA tag of %zu octets (1 to %d allowed)", tag_len,
                     CF_DNS_CAA_TAG_MAX);
        return -1;
    }
    if (2 + tag_len > len) {
        cf_error_set(err, "malformed", "", "a CAA tag runs past its record");
        return -1;
    }
    for (size_t i = 0; i < tag_len; i++) {
        uint8_t c = rdata[2 + i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))) {
            cf_error_set(err, "malformed", "", "a CAA tag holds the octet 0x%02x", c);
            return -1;
        }
        out->tag[i] = (char)c;
    }
    out->tag[tag_len] = '\0';
    out->flags = rdata[0];
    out->value = rdata + 2 + tag_len;
    out->value_len = len - 2 - tag_len;
    return 0;
}
