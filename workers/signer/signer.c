/* Helpers every signer handler uses: params, CA keys, subjects. */
#include <string.h>

#include "cf_x509_name.h"
#include "signer.h"

cf_keystore_t *signer_keystore(cf_handler_ctx_t *ctx)
{
    signer_t *state = ctx->state;
    if (!state->keystore)
        state->keystore = cf_keystore_new(ctx->config, ctx->pg);
    return state->keystore;
}

json_t *signer_params(const cf_job_t *job, cf_error_t *err)
{
    json_t *params = cf_msgpack_to_json(cf_job_params(job), err);
    if (!params)
        cf_error_prefix_field(err, "params");
    return params;
}

EVP_PKEY *signer_ca_key(cf_handler_ctx_t *ctx, const cf_ca_t *ca, const char *job_password,
                        cf_error_t *err)
{
    char key_id[160];
    cf_ca_key_id(ca, key_id, sizeof key_id);
    cf_password_t *pw = cf_password_resolve(ctx->config, key_id, job_password, err);
    if (!pw)
        return NULL;
    EVP_PKEY *key = cf_keystore_load(signer_keystore(ctx), ca->key_backend, key_id,
                                     ca->key_backend_options, pw, err);
    cf_password_free(&pw);
    if (!key && strcmp(err->code, "wrong_password") == 0)
        snprintf(err->field, sizeof err->field, "params.password");
    return key;
}

json_t *signer_subject(const json_t *value, const char *field, cf_error_t *err)
{
    json_t *name = json_is_string(value) ? cf_name_from_string(json_string_value(value), err)
                                         : cf_name_parse(value, err);
    if (!name)
        cf_error_prefix_field(err, field);
    return name;
}

void signer_pack_der(msgpack_packer *pk, X509 *cert)
{
    unsigned char *der = NULL;
    int len = i2d_X509(cert, &der);
    if (len < 0) {
        msgpack_pack_nil(pk);
        return;
    }
    msgpack_pack_bin(pk, (size_t)len);
    msgpack_pack_bin_body(pk, der, (size_t)len);
    OPENSSL_free(der);
}
