/* cf_profile: load and validate certificate profiles. */
#include "cf_profile.h"

#include <ctype.h>
#include <string.h>

#include "cf_x509_ext.h"

const char *cf_profile_default(cf_config_t *cfg)
{
    return cf_config_get(cfg, "ca", "default_profile", "webserver");
}

json_t *cf_profile_load(cf_config_t *cfg, const char *name, cf_error_t *err)
{
    if (!name || !*name)
        name = cf_profile_default(cfg);
    for (const char *p = name; *p; p++) {
        if (!isalnum((unsigned char)*p) && *p != '_' && *p != '-') {
            cf_error_set(err, "unknown_profile", "params.profile", "profile \"%s\" does not exist",
                         name);
            return NULL;
        }
    }
    const char *dir = cf_config_get(cfg, "ca", "profiles_dir", CF_SOURCE_DIR "/schemas/profiles");
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.json", dir, name);
    json_error_t jerr;
    json_t *profile = json_load_file(path, 0, &jerr);
    if (!profile) {
        cf_error_set(err, "unknown_profile", "params.profile", "profile \"%s\" does not exist",
                     name);
        return NULL;
    }
    json_t *exts = json_object_get(profile, "extensions");
    json_t *empty = exts ? NULL : json_array();
    json_t *parsed = cf_extensions_parse(exts ? exts : empty, err);
    json_decref(empty);
    json_t *expires = json_object_get(profile, "expires");
    if (!parsed || (expires && (!json_is_integer(expires) || json_integer_value(expires) <= 0))) {
        if (parsed)
            cf_error_set(err, "invalid_profile", "params.profile",
                         "profile \"%s\": \"expires\" must be a positive number of days", name);
        else
            cf_error_set(err, "invalid_profile", "params.profile", "profile \"%s\" is invalid: %s",
                         name, err->message);
        json_decref(parsed);
        json_decref(profile);
        return NULL;
    }
    json_object_set_new(profile, "extensions", parsed);
    json_object_set_new(profile, "name", json_string(name));
    static const char *const flags[] = {"add_crl_url",    "add_ocsp_url",
                                        "add_issuer_url", "add_issuer_alternative_name",
                                        "cn_in_san",      NULL};
    for (const char *const *f = flags; *f; f++)
        if (!json_is_boolean(json_object_get(profile, *f)))
            json_object_set_new(profile, *f, json_true());
    if (!expires)
        json_object_set_new(profile, "expires", json_integer(365));
    return profile;
}
