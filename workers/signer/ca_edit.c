/* ca.edit: change the settings of a CA that are not part of its certificate (django-ca's
 * edit_ca): whether it is enabled, its website, terms of service and CAA identity, the ACME
 * switches and profile, api_enabled, the OCSP validities, and the sign_* extensions it adds to what
 * it signs (a model, or null to add none). Only the settings given are touched; the reply lists the
 * ones that changed with their old and new values. Signers read a CA row again after [signer]
 * cache_ms, so an edit reaches issuance that much later. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_log.h"
#include "cf_msgpack.h"
#include "cf_params.h"
#include "signer.h"

/* The settings ca.edit changes, with their column types. */
static const struct {
    const char *key;  /* param and column name */
    const char *type; /* the cast of its value in the UPDATE */
} s_columns[] = {{"enabled", "boolean"},
                 {"website", "text"},
                 {"terms_of_service", "text"},
                 {"caa", "text"},
                 {"acme_enabled", "boolean"},
                 {"acme_registration", "boolean"},
                 {"acme_requires_contact", "boolean"},
                 {"acme_profile", "text"},
                 {"api_enabled", "boolean"},
                 {"ocsp_responder_key_validity", "integer"},
                 {"ocsp_response_validity", "integer"},
                 {"sign_authority_information_access", "jsonb"},
                 {"sign_certificate_policies", "jsonb"},
                 {"sign_crl_distribution_points", "jsonb"},
                 {"sign_issuer_alternative_name", "jsonb"},
                 {NULL, NULL}};

/* The wanted value of every setting given in PARAMS, as it will be stored (new reference):
 * acme_profile "" becomes null, sign_* models are normalised. NULL + err on bad input. */
static json_t *s_wanted(cf_handler_ctx_t *ctx, const json_t *params, cf_error_t *err)
{
    if (signer_ca_options_check(params, err) != 0)
        return NULL;
    json_t *want = json_object();
    for (int i = 0; s_columns[i].key; i++) {
        const char *key = s_columns[i].key;
        json_t *v = json_object_get(params, key);
        if (!v)
            continue;
        if (strncmp(key, "sign_", 5) == 0) {
            int k = 0;
            while (strcmp(signer_sign_keys[k], key) != 0)
                k++;
            json_t *m = json_is_null(v) ? json_null() : signer_sign_extension(params, k, err);
            if (!m)
                goto fail;
            json_object_set_new(want, key, m);
        } else if (strcmp(key, "acme_profile") == 0) {
            const char *name = json_is_string(v) ? json_string_value(v) : "";
            if (*name && !signer_profile(ctx, name, err)) {
                snprintf(err->field, sizeof err->field, "params.acme_profile");
                goto fail;
            }
            json_object_set_new(want, key, *name ? json_string(name) : json_null());
        } else {
            /* Each setting's own JSON type: PostgreSQL would cast "yes" to a boolean. */
            const char *type = s_columns[i].type;
            bool ok = strcmp(type, "boolean") == 0   ? json_is_boolean(v)
                      : strcmp(type, "integer") == 0 ? json_is_integer(v)
                                                     : json_is_string(v);
            if (!ok) {
                cf_error_set(err, "invalid_type", "", "\"%s\" must be %s", key,
                             strcmp(type, "boolean") == 0   ? "true or false"
                             : strcmp(type, "integer") == 0 ? "an integer"
                                                            : "a string");
                snprintf(err->field, sizeof err->field, "params.%s", key);
                goto fail;
            }
            json_object_set(want, key, v);
        }
    }
    if (json_object_size(want) == 0) {
        cf_error_set(err, "invalid_value", "params",
                     "nothing to change: give at least one setting besides \"ca\"");
        goto fail;
    }
    return want;
fail:
    json_decref(want);
    return NULL;
}

/* A value as the text PostgreSQL casts to its column's type (caller frees), NULL for null. */
static char *s_sql_value(const json_t *v)
{
    if (json_is_null(v))
        return NULL;
    if (json_is_string(v))
        return strdup(json_string_value(v));
    if (json_is_boolean(v))
        return strdup(json_is_true(v) ? "true" : "false");
    return json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
}

int signer_ca_edit(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                   cf_error_t *err)
{
    int rc = -1;
    json_t *params = signer_params(job, err), *want = NULL, *old = NULL, *changed = json_object();
    PGresult *res = NULL;
    const char *name;
    const char *args[32];
    char *texts[32] = {NULL};
    char sql[2048];
    int n = 0;
    /* The params it takes: "ca" and the settings. */
    const char *allowed[sizeof s_columns / sizeof s_columns[0] + 1] = {"ca"};
    for (size_t i = 0; s_columns[i].key; i++)
        allowed[i + 1] = s_columns[i].key;
    if (!params || cf_params_check_keys(params, allowed, err) ||
        cf_params_str(params, "ca", true, NULL, &name, err) || !(want = s_wanted(ctx, params, err)))
        goto out;
    /* FOR UPDATE: two edits at once each see what the other changed. */
    const char *v[1] = {name};
    res = cf_pg_exec_params(ctx->pg,
                            "SELECT row_to_json(c)::text FROM certificate_authorities c "
                            "WHERE name = $1 FOR UPDATE",
                            1, v, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not read certificate authority \"%s\": %s",
                     name, cf_pg_errstr(ctx->pg));
        rc = CF_HANDLER_ABORT;
        goto out;
    }
    if (PQntuples(res) != 1) {
        cf_error_set(err, "unknown_ca", "params.ca", "certificate authority \"%s\" does not exist",
                     name);
        goto out;
    }
    if (!(old = json_loads(PQgetvalue(res, 0, 0), 0, NULL))) {
        cf_error_set(err, "internal", "", "could not read certificate authority \"%s\"", name);
        goto out;
    }
    int len = snprintf(sql, sizeof sql, "UPDATE certificate_authorities SET updated_at = now()");
    args[n++] = name;
    for (int i = 0; s_columns[i].key; i++) {
        const char *key = s_columns[i].key;
        json_t *now = json_object_get(want, key), *was = json_object_get(old, key);
        /* jsonb compares as a value. */
        if (!now || json_equal(now, was ? was : json_null()))
            continue;
        json_object_set_new(changed, key,
                            json_pack("{s:O, s:O}", "old", was ? was : json_null(), "new", now));
        texts[n] = s_sql_value(now);
        args[n] = texts[n];
        n++;
        len += snprintf(sql + len, sizeof sql - (size_t)len, ", %s = $%d::%s", key, n,
                        s_columns[i].type);
    }
    snprintf(sql + len, sizeof sql - (size_t)len, " WHERE name = $1");
    if (n > 1) {
        PQclear(res);
        if (!(res = cf_pg_exec_params(ctx->pg, sql, n, args, NULL, NULL, 0))) {
            cf_error_set(err, "unavailable", "",
                         "could not update certificate authority \"%s\": %s", name,
                         cf_pg_errstr(ctx->pg));
            rc = CF_HANDLER_ABORT;
            goto out;
        }
        char keys[600] = "";
        const char *k;
        json_t *c;
        json_object_foreach(changed, k, c)
        {
            size_t at = strlen(keys);
            snprintf(keys + at, sizeof keys - at, "%s%s", at ? "," : "", k);
        }
        cf_audit("ca.edit", "ca", name, "changed", keys, NULL);
    }
    msgpack_pack_map(result, 2);
    cf_msgpack_pack_cstr(result, "ca");
    cf_msgpack_pack_cstr(result, name);
    cf_msgpack_pack_cstr(result, "changed");
    cf_json_to_msgpack(changed, result);
    rc = 0;
out:
    for (int i = 0; i < n; i++)
        free(texts[i]);
    PQclear(res);
    json_decref(old);
    json_decref(want);
    json_decref(changed);
    json_decref(params);
    return rc;
}
