/* cf_config: one INI-style config file per process, every key overridable by the
 * environment variable CERTFLEET_<SECTION>_<KEY> (upper case), safe defaults in code.
 *
 *   # comment            ; comment
 *   [broker]
 *   endpoint = tcp://127.0.0.1:5555
 */
#ifndef CF_CONFIG_H
#define CF_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _cf_config_t cf_config_t;

/* An empty config: every lookup falls back to the environment, then the default. */
cf_config_t *cf_config_new(void);
/* Load PATH; a NULL path means $CERTFLEET_CONFIG, and neither means an empty config.
 * Returns NULL and writes why into ERRBUF when the file is unreadable or malformed. */
cf_config_t *cf_config_load(const char *path, char *errbuf, size_t errlen);
void cf_config_destroy(cf_config_t **self_p);

/* Value of SECTION.KEY: environment override first, then the file, then DFLT (borrowed). */
const char *cf_config_get(cf_config_t *self, const char *section, const char *key,
                          const char *dflt);
/* Integer value; a value that is not an integer logs a warning and gives DFLT. */
int64_t cf_config_get_int(cf_config_t *self, const char *section, const char *key, int64_t dflt);
/* Boolean value: 1/0, true/false, yes/no, on/off. */
bool cf_config_get_bool(cf_config_t *self, const char *section, const char *key, bool dflt);
/* Set a value in memory (tests, command-line flags). Returns 0 or -1. */
int cf_config_set(cf_config_t *self, const char *section, const char *key, const char *value);
/* The file this config came from, or NULL. */
const char *cf_config_path(cf_config_t *self);

#endif
