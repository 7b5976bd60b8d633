/* What the ocsp handlers share: the keystore, params, and the cache of loaded responders. */
#include <czmq.h>
#include <stdio.h>

#include "cf_log.h"
#include "cf_msgpack.h"
#include "ocsp.h"

cf_keystore_t *ocsp_keystore(cf_handler_ctx_t *ctx)
{
    ocsp_state_t *state = ctx->state;
    if (!state->keystore)
        state->keystore = cf_keystore_new(ctx->config, ctx->pg);
    return state->keystore;
}

json_t *ocsp_params(const cf_job_t *job, cf_error_t *err)
{
    json_t *params = cf_msgpack_to_json(cf_job_params(job), err);
    if (!params)
        cf_error_prefix_field(err, "params");
    return params;
}

static void s_responder_free(void **item)
{
    cf_ocsp_responder_destroy((cf_ocsp_responder_t **)item);
}

cf_ocsp_responder_t *ocsp_responder(cf_handler_ctx_t *ctx, const cf_ca_t *ca, int64_t now,
                                    cf_error_t *err)
{
    ocsp_state_t *state = ctx->state;
    if (!state->responders) {
        if (!(state->responders = zhashx_new())) {
            cf_error_set(err, "internal", "", "out of memory");
            return NULL;
        }
        zhashx_set_destructor(state->responders, s_responder_free);
    }
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)ca->id);
    /* One cheap query per job tells whether a newer responder was made (by any worker). */
    int64_t current = 0;
    if (cf_ocsp_responder_current(ctx->pg, ca->id, now, &current, err) != 0)
        return NULL;
    cf_ocsp_responder_t *r = zhashx_lookup(state->responders, key);
    if (r && r->id == current && r->expires > now)
        return r;
    zhashx_delete(state->responders, key);
    if (current == 0) {
        cf_error_set(err, "no_responder", "params.ca",
                     "certificate authority \"%s\" has no valid OCSP responder certificate (run "
                     "ocsp.keygen)",
                     ca->name);
        return NULL;
    }
    if (!(r = cf_ocsp_responder_load(ctx->pg, ctx->config, ocsp_keystore(ctx), ca, err)))
        return NULL;
    zhashx_insert(state->responders, key, r);
    cf_log_info("loaded OCSP responder %lld of \"%s\"", (long long)r->id, ca->name);
    return r;
}

void ocsp_state_destroy(ocsp_state_t *state)
{
    zhashx_destroy((zhashx_t **)&state->responders);
    cf_keystore_destroy(&state->keystore);
}
