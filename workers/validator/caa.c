/* CAA (RFC 8659; RFC 8555 7.1.3 and 8, problem "caa"): after a challenge has passed and before
 * its authorization becomes valid, the CAA records of the name must allow the CA to issue.
 *
 * The relevant RRset is found by climbing from the name to its parents, one label at a time,
 * up to and including the top-level domain; the first level with CAA records holds it, and
 * when every level is empty (NOERROR without records, or NXDOMAIN) any CA may issue. The
 * resolver follows CNAMEs of each name it is asked about (cf_dns follows them in the answer);
 * the climb goes over the parents of the name asked for, never of an alias's target
 * (RFC 8659 section 3). Any lookup that fails (no answer in time, SERVFAIL, REFUSED, an answer
 * that does not parse) refuses: a CA must not issue when it cannot tell. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "cf_log.h"
#include "validator.h"

#define S_SHOWN 3 /* records quoted in a refusal's detail */

/* Tags with a meaning somewhere (RFC 8659, RFC 9495, CA/Browser Forum BR 3.2.2.8): the
 * critical flag on any other tag refuses issuance (RFC 8659 4.1). */
static const char *const s_known_tags[] = {"issue",    "issuewild",    "iodef",        "issuemail",
                                           "issuevmc", "contactemail", "contactphone", NULL};

static bool s_known(const char *tag)
{
    for (size_t i = 0; s_known_tags[i]; i++)
        if (strcasecmp(tag, s_known_tags[i]) == 0)
            return true;
    return false;
}

/* The issuer-domain-name of an issue or issuewild value (RFC 8659 4.2): what comes before
 * ";", without the spaces and tabs around it. Empty (";" or "") names no CA. */
static void s_issuer_domain(const cf_dns_caa_t *caa, const char **start, size_t *len)
{
    const uint8_t *p = caa->value, *end = caa->value + caa->value_len;
    const uint8_t *semi = memchr(p, ';', caa->value_len);
    if (semi)
        end = semi;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end[-1] == ' ' || end[-1] == '\t'))
        end--;
    *start = (const char *)p;
    *len = (size_t)(end - p);
}

/* IDENTITY (the CA's, without a final dot) equals the issuer domain, case-insensitively; a
 * final dot on the record's domain is ignored. */
static bool s_names_ca(const cf_dns_caa_t *caa, const char *identity, size_t identity_len)
{
    const char *domain;
    size_t len;
    s_issuer_domain(caa, &domain, &len);
    if (len > 0 && domain[len - 1] == '.')
        len--;
    return len > 0 && len == identity_len && strncasecmp(domain, identity, len) == 0;
}

/* The records of ANSWER as text for a refusal: `0 issue "ca.example"`, the first few. */
static void s_describe(const cf_dns_answer_t *answer, char *out, size_t outlen)
{
    size_t count = cf_dns_answer_count(answer), used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < count && i < S_SHOWN; i++) {
        size_t len;
        const uint8_t *rdata = cf_dns_answer_value(answer, i, &len);
        cf_dns_caa_t caa;
        if (cf_dns_caa_parse(rdata, len, &caa, NULL) != 0)
            continue;
        char value[100];
        validator_quote(value, sizeof value, caa.value, caa.value_len, 64);
        int n = snprintf(out + used, outlen - used, "%s%u %s %s", used ? ", " : "",
                         (unsigned)caa.flags, caa.tag, value);
        if (n < 0 || (size_t)n >= outlen - used)
            break;
        used += (size_t)n;
    }
    if (count > S_SHOWN && used + 6 < outlen)
        snprintf(out + used, outlen - used, ", ...");
}

/* What a detail names: `"*.a.example"`, or `"www.a.example" (records at "a.example")` when
 * the set was found at a parent. */
static void s_subject(char *out, size_t len, const validator_check_t *check, bool wildcard,
                      const char *owner)
{
    if (strcmp(owner, check->name) == 0)
        snprintf(out, len, "\"%s%s\"", wildcard ? "*." : "", check->name);
    else
        snprintf(out, len, "\"%s%s\" (records at its parent \"%s\")", wildcard ? "*." : "",
                 check->name, owner);
}

/* Decide on the relevant RRset ANSWER found at OWNER. 1 allowed, 0 refused (PROBLEM set). */
static int s_decide(const validator_check_t *check, const char *owner,
                    const cf_dns_answer_t *answer, const char *identity, bool wildcard,
                    validator_problem_t *problem)
{
    size_t count = cf_dns_answer_count(answer);
    size_t identity_len = strlen(identity);
    if (identity_len > 0 && identity[identity_len - 1] == '.')
        identity_len--;
    bool any_issuewild = false;
    cf_dns_caa_t caa;
    char found[400], subject[600];
    s_subject(subject, sizeof subject, check, wildcard, owner);
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const uint8_t *rdata = cf_dns_answer_value(answer, i, &len);
        /* cf_dns_answer_parse accepted every record of a CAA answer. */
        if (cf_dns_caa_parse(rdata, len, &caa, NULL) != 0)
            continue;
        if ((caa.flags & CF_DNS_CAA_CRITICAL) && !s_known(caa.tag)) {
            s_describe(answer, found, sizeof found);
            validator_problem(problem, "caa",
                              "CAA for %s forbids issuance: the unknown property \"%s\" is "
                              "marked critical; found %s",
                              subject, caa.tag, found);
            return 0;
        }
        if (strcasecmp(caa.tag, "issuewild") == 0)
            any_issuewild = true;
    }
    /* A wildcard goes by issuewild when there is any, else by issue (RFC 8659 4.3). */
    const char *tag = wildcard && any_issuewild ? "issuewild" : "issue";
    bool any = false;
    for (size_t i = 0; i < count; i++) {
        size_t len;
        const uint8_t *rdata = cf_dns_answer_value(answer, i, &len);
        if (cf_dns_caa_parse(rdata, len, &caa, NULL) != 0 || strcasecmp(caa.tag, tag) != 0)
            continue;
        any = true;
        if (s_names_ca(&caa, identity, identity_len))
            return 1;
    }
    /* Records without any property of the tag that counts (iodef alone, say) restrict
     * nobody (RFC 8659 4.2 and 4.3). */
    if (!any)
        return 1;
    s_describe(answer, found, sizeof found);
    validator_problem(problem, "caa",
                      "CAA for %s forbids issuance by \"%.*s\": no %s property names it; found %s",
                      subject, (int)identity_len, identity, tag, found);
    return 0;
}

int validator_caa(const validator_check_t *check, const char *identity, bool wildcard,
                  validator_problem_t *problem, cf_error_t *err)
{
    const char *level = check->name;
    while (level && *level) {
        cf_dns_answer_t *answer = NULL;
        validator_problem_t lookup = {0};
        int rc = validator_dns_query(check, level, CF_DNS_TYPE_CAA, &answer, &lookup, err);
        if (rc < 0)
            return -1;
        char subject[600];
        s_subject(subject, sizeof subject, check, wildcard, level);
        if (rc == 0) {
            validator_problem(problem, "caa",
                              "CAA for %s could not be checked, which forbids issuance: %s",
                              subject, lookup.detail);
            return 0;
        }
        int rcode = cf_dns_answer_rcode(answer);
        if (rcode != CF_DNS_RCODE_NOERROR && rcode != CF_DNS_RCODE_NXDOMAIN) {
            validator_problem(problem, "caa",
                              "CAA for %s could not be checked, which forbids issuance: the "
                              "resolver answered %s",
                              subject, validator_rcode_name(rcode));
            cf_dns_answer_destroy(&answer);
            return 0;
        }
        if (cf_dns_answer_count(answer) > 0) {
            rc = s_decide(check, level, answer, identity, wildcard, problem);
            cf_dns_answer_destroy(&answer);
            return rc;
        }
        cf_dns_answer_destroy(&answer);
        level = strchr(level, '.');
        if (level)
            level++;
    }
    return 1;
}
