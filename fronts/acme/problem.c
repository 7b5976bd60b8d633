/* problem: RFC 7807 problem documents with the ACME error types of RFC 8555 6.7 and the HTTP
 * status each usually goes with (as Boulder and Pebble answer them). */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "acme.h"
#include "cf_log.h"

#define S_URN "urn:ietf:params:acme:error:"

static const struct {
    const char *type;    /* without the URN prefix */
    unsigned int status; /* its usual HTTP status */
} s_types[] = {
    {"accountDoesNotExist", 400},
    {"alreadyRevoked", 400},
    {"badCSR", 400},
    {"badNonce", 400},
    {"badPublicKey", 400},
    {"badRevocationReason", 400},
    {"badSignatureAlgorithm", 400},
    {"caa", 403},
    {"compound", 403},
    {"connection", 400},
    {"dns", 400},
    {"externalAccountRequired", 403},
    {"incorrectResponse", 403},
    {"invalidContact", 400},
    {"malformed", 400},
    {"orderNotReady", 403},
    {"rateLimited", 429},
    {"rejectedIdentifier", 400},
    {"serverInternal", 500},
    {"tls", 400},
    {"unauthorized", 403},
    {"unsupportedContact", 400},
    {"unsupportedIdentifier", 400},
    {"userActionRequired", 403},
    {NULL, 0},
};

unsigned int acme_problem_status(const char *type)
{
    for (size_t i = 0; s_types[i].type; i++)
        if (strcmp(s_types[i].type, type) == 0)
            return s_types[i].status;
    return 400;
}

json_t *acme_problem_new(const char *type, unsigned int status, const char *detail)
{
    char urn[128];
    snprintf(urn, sizeof urn, S_URN "%s", type);
    return json_pack("{s:s, s:s, s:i}", "type", urn, "detail", detail, "status",
                     (int)(status ? status : acme_problem_status(type)));
}

void acme_problem_send(acme_req_t *req, json_t *problem)
{
    if (!problem) {
        acme_reply_bytes(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/problem+json", "{}", 2);
        return;
    }
    unsigned int status = (unsigned int)json_integer_value(json_object_get(problem, "status"));
    char *text = json_dumps(problem, JSON_COMPACT);
    json_decref(problem);
    if (!text) {
        acme_reply_bytes(req, MHD_HTTP_INTERNAL_SERVER_ERROR, "application/problem+json", "{}", 2);
        return;
    }
    acme_reply_bytes(req, status ? status : 400, "application/problem+json", text, strlen(text));
    free(text);
}

void acme_problem(acme_req_t *req, const char *type, unsigned int status, const char *fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    cf_log_debug("%s %s: %s: %s", req->method, req->url, type, detail);
    acme_problem_send(req, acme_problem_new(type, status, detail));
}

void acme_internal(acme_req_t *req)
{
    acme_problem(req, "serverInternal", 0, "the server could not answer this request now");
}
