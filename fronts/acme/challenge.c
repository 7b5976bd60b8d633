/* challenge: the challenge URL (RFC 8555 7.5.1). POST-as-GET reads it; a POST of "{}" asks
 * for validation: a pending challenge of a pending, unexpired authorization (of a pending
 * order) becomes processing and an acme.validate job goes to the validator, which writes the
 * verdict into PostgreSQL itself. With challenge_wait_ms (off by default) the POST waits for
 * that verdict without holding its HTTP thread (park.c), so that a quick validation is
 * answered valid or invalid at once and the client's first poll finds it done; past the wait,
 * or without it, it answers processing and the client polls. A challenge already processing gets
 * its job sent again (the validator is idempotent and locks per challenge, so this only heals a job
 * lost on the way); a valid or invalid one is answered as it is. */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "acme.h"
#include "cf_job.h"
#include "cf_log.h"
#include "cf_msgpack.h"

#define S_SQL_LOAD                                                                                 \
    "SELECT ch.id, ch.slug, ch.type, ch.status, ch.token, floor(extract(epoch FROM"                \
    " ch.validated)), ch.error::text, z.slug FROM acme_challenges ch JOIN acme_authorizations z"   \
    " ON z.id = ch.authorization_id WHERE ch.slug = $1"
/* One challenge per authorization at a time, and only while everything above is pending. */
#define S_SQL_START                                                                                \
    "UPDATE acme_challenges SET status = 'processing' WHERE id = $1 AND status = 'pending'"        \
    " AND NOT EXISTS (SELECT 1 FROM acme_challenges c WHERE c.authorization_id = $2 AND"           \
    " c.id <> $1 AND c.status IN ('processing', 'valid')) AND EXISTS (SELECT 1 FROM"               \
    " acme_authorizations z JOIN acme_orders o ON o.id = z.order_id WHERE z.id = $2 AND"           \
    " z.status = 'pending' AND z.expires > now() AND o.status = 'pending')"

typedef struct {
    int64_t id;                   /* acme_challenges.id */
    char slug[ACME_SLUG_MAX];     /* its slug */
    char type[16];                /* http-01, dns-01, tls-alpn-01 */
    char status[ACME_STATUS_MAX]; /* pending, processing, valid, invalid */
    char token[ACME_SLUG_MAX];    /* its token */
    int64_t validated;            /* Unix s, 0 when not */
    char *error;                  /* problem document as JSON text, or NULL (owned) */
    acme_authz_t authz;           /* its authorization */
} s_chall_t;

/* The challenge SLUG of the request's CA. 1, 0 none, -1 store error. */
static int s_load(acme_req_t *req, const char *slug, s_chall_t *out)
{
    memset(out, 0, sizeof *out);
    const char *v[] = {slug};
    PGresult *res =
        acme_sql(req->store, "acme_chall_load", S_SQL_LOAD, 1, v, NULL, NULL, "read a challenge");
    if (!res)
        return -1;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return 0;
    }
    out->id = acme_int(res, 0, 0);
    snprintf(out->slug, sizeof out->slug, "%s", PQgetvalue(res, 0, 1));
    snprintf(out->type, sizeof out->type, "%s", PQgetvalue(res, 0, 2));
    snprintf(out->status, sizeof out->status, "%s", PQgetvalue(res, 0, 3));
    snprintf(out->token, sizeof out->token, "%s", PQgetvalue(res, 0, 4));
    out->validated = acme_int(res, 0, 5);
    if (!PQgetisnull(res, 0, 6))
        out->error = strdup(PQgetvalue(res, 0, 6));
    char authz_slug[ACME_SLUG_MAX];
    snprintf(authz_slug, sizeof authz_slug, "%s", PQgetvalue(res, 0, 7));
    PQclear(res);
    /* The authorization lookup is scoped to the request's CA: another CA's challenge is
     * "not found" here. */
    int rc = acme_authz_load(req, authz_slug, &out->authz);
    if (rc != 1) {
        free(out->error);
        out->error = NULL;
    }
    return rc;
}

static void s_reply(acme_req_t *req, const s_chall_t *ch)
{
    acme_object_url(req, "authz", ch->authz.slug, NULL, req->reply.link_up);
    acme_reply_json(req, MHD_HTTP_OK,
                    acme_challenge_json(req, ch->slug, ch->type, ch->status, ch->token,
                                        ch->validated, ch->error));
}

/* The end of a challenge POST parked for its acme.validate: answer with the challenge as it
 * is now (the validator has written its verdict, or it is still processing). */
static void s_submit_resume(acme_req_t *req, const cf_reply_t *reply)
{
    (void)reply; /* the verdict is in PostgreSQL; the reply only says it is there */
    s_chall_t ch;
    int found = s_load(req, req->slug, &ch);
    if (found != 1) {
        acme_internal(req);
        return;
    }
    s_reply(req, &ch);
    free(ch.error);
}

/* Send acme.validate for the challenge. With challenge_wait_ms the request is parked until
 * the verdict (1: s_submit_resume answers); else, or when it cannot be parked, the job goes
 * out on the thread's client without waiting (0: the caller answers now). */
static int s_submit(acme_req_t *req, const s_chall_t *ch)
{
    msgpack_sbuffer buf;
    msgpack_sbuffer_init(&buf);
    msgpack_packer pk;
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 1);
    cf_msgpack_pack_cstr(&pk, "challenge");
    cf_msgpack_pack_cstr(&pk, ch->slug);
    uint64_t deadline = cf_now_ms() + (uint64_t)req->srv->settings.validate_deadline_s * 1000;
    int64_t wait = req->srv->settings.challenge_wait_ms;
    int parked = wait > 0 && acme_park(req, NULL, "acme.validate", buf.data, buf.size, deadline,
                                       wait, s_submit_resume, NULL, NULL) == 0;
    cf_client_t *client = parked ? NULL : acme_store_client(req->store);
    if (!parked && (!client || cf_client_send(client, NULL, "acme.validate", buf.data, buf.size,
                                              deadline, NULL) != 0))
        cf_log_error("could not send acme.validate for challenge \"%s\"; it is sent again when "
                     "the client posts to it",
                     ch->slug);
    else
        cf_log_info("challenge \"%s\" (%s) of \"%s\" sent for validation", ch->slug, ch->type,
                    ch->authz.value);
    msgpack_sbuffer_destroy(&buf);
    return parked;
}

void acme_challenge_post(acme_req_t *req)
{
    s_chall_t ch;
    int found = s_load(req, req->slug, &ch);
    if (found < 0) {
        acme_internal(req);
        return;
    }
    if (found == 0) {
        acme_problem(req, "malformed", MHD_HTTP_NOT_FOUND, "no such challenge");
        return;
    }
    if (ch.authz.account_id != req->account.id) {
        acme_problem(req, "unauthorized", 0, "the challenge belongs to another account");
        goto out;
    }
    if (acme_post_as_get(req)) {
        s_reply(req, &ch);
        goto out;
    }
    if (!acme_payload(req))
        goto out;
    if (strcmp(ch.status, "processing") == 0) {
        if (s_submit(req, &ch))
            goto out;
    } else if (strcmp(ch.status, "pending") == 0) {
        if (strcmp(ch.authz.status, "expired") == 0) {
            acme_problem(req, "malformed", 0, "the authorization has expired");
            goto out;
        }
        if (strcmp(ch.authz.status, "pending") != 0) {
            acme_problem(req, "malformed", 0, "the authorization is %s", ch.authz.status);
            goto out;
        }
        char id[24], authz_id[24];
        snprintf(id, sizeof id, "%lld", (long long)ch.id);
        snprintf(authz_id, sizeof authz_id, "%lld", (long long)ch.authz.id);
        const char *v[] = {id, authz_id};
        PGresult *res = acme_sql(req->store, "acme_chall_start", S_SQL_START, 2, v, NULL, NULL,
                                 "start a challenge");
        if (!res) {
            acme_internal(req);
            goto out;
        }
        bool started = PQcmdTuples(res)[0] == '1';
        PQclear(res);
        if (!started) {
            /* Another request moved it first, or a sibling challenge is under way. */
            free(ch.error);
            found = s_load(req, req->slug, &ch);
            if (found != 1) {
                acme_internal(req);
                return;
            }
            if (strcmp(ch.status, "pending") == 0) {
                acme_problem(req, "malformed", 0,
                             "another challenge of this authorization is being validated, or "
                             "its order is no longer pending");
                goto out;
            }
        } else {
            snprintf(ch.status, sizeof ch.status, "processing");
            if (s_submit(req, &ch))
                goto out;
        }
    }
    s_reply(req, &ch);
out:
    free(ch.error);
}
