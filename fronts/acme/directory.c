/* directory: the directory object of RFC 8555 7.1.1 with the CA's meta data (django-ca's
 * website, terms_of_service and caa fields), and newNonce (7.2), whose nonce is the
 * Replay-Nonce header every reply carries. */
#include <stdio.h>
#include <string.h>

#include "acme.h"

void acme_directory(acme_req_t *req)
{
    char url[5][ACME_URL_MAX + 16];
    static const char *const paths[5] = {"new-nonce", "new-account", "new-order", "revoke-cert",
                                         "key-change"};
    for (int i = 0; i < 5; i++)
        snprintf(url[i], sizeof url[i], "%s/%s", req->ca_url, paths[i]);
    json_t *meta = json_pack("{s:b}", "externalAccountRequired", 0);
    if (meta && req->ca.terms_of_service[0])
        json_object_set_new(meta, "termsOfService", json_string(req->ca.terms_of_service));
    if (meta && req->ca.website[0])
        json_object_set_new(meta, "website", json_string(req->ca.website));
    if (meta && req->ca.caa[0])
        json_object_set_new(meta, "caaIdentities", json_pack("[s]", req->ca.caa));
    json_t *dir = meta ? json_pack("{s:s, s:s, s:s, s:s, s:s, s:o}", "newNonce", url[0],
                                   "newAccount", url[1], "newOrder", url[2], "revokeCert", url[3],
                                   "keyChange", url[4], "meta", meta)
                       : NULL;
    acme_reply_json(req, MHD_HTTP_OK, dir);
}

void acme_new_nonce(acme_req_t *req)
{
    /* RFC 8555 7.2: HEAD answers 200, GET 204; the nonce itself comes with every reply. */
    bool head = strcmp(req->method, MHD_HTTP_METHOD_HEAD) == 0;
    /* Made here rather than by the reply, so that a client that came for a nonce and
     * cannot get one (Redis down) is told so. */
    if (acme_nonce_new(req->store, req->srv->settings.nonce_ttl_s, req->reply.nonce,
                       sizeof req->reply.nonce) != 0) {
        acme_problem(req, "serverInternal", MHD_HTTP_SERVICE_UNAVAILABLE,
                     "no nonce can be issued now");
        return;
    }
    acme_reply_empty(req, head ? MHD_HTTP_OK : MHD_HTTP_NO_CONTENT);
}
