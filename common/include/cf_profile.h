/* cf_profile: certificate profiles, JSON files in [ca] profiles_dir (default schemas/profiles):
 *   {"description": str, "expires": days, "extensions": [extension models],
 *    "add_crl_url": bool, "add_ocsp_url": bool, "add_issuer_url": bool,
 *    "add_issuer_alternative_name": bool, "cn_in_san": bool}
 * The add_* flags default to true, cn_in_san to true. The default profile is [ca]
 * default_profile ("webserver"). */
#ifndef CF_PROFILE_H
#define CF_PROFILE_H

#include <jansson.h>

#include "cf_config.h"
#include "cf_error.h"

/* The profile NAME (NULL: the default), validated, its extensions normalised; caller owns.
 * NULL + err ("unknown_profile", field "params.profile"). */
json_t *cf_profile_load(cf_config_t *cfg, const char *name, cf_error_t *err);
/* The name of the default profile. */
const char *cf_profile_default(cf_config_t *cfg);

#endif
