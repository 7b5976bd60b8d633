/* cf_log: the one logging API. Level-gated (arguments below the level are never
 * evaluated), text or JSON lines on stderr, plus the [AUDIT] log that every issuance,
 * revocation, CRL, OCSP signing and challenge verdict writes. The logger is per process
 * state by nature (as Redis's serverLog); it is set once at start by cf_log_configure. */
#ifndef CF_LOG_H
#define CF_LOG_H

#include <stdbool.h>

#include "cf_config.h"

typedef enum {
    CF_LOG_ERROR = 0,
    CF_LOG_WARN = 1,
    CF_LOG_INFO = 2,
    CF_LOG_DEBUG = 3,
} cf_log_level_t;

/* Set the process name, level and format (json=false: text lines). */
void cf_log_init(const char *ident, cf_log_level_t level, bool json);
/* Read [log] level (error|warn|info|debug, default info) and format (text|json). */
void cf_log_configure(cf_config_t *cfg, const char *ident);
/* True when messages of LEVEL are written. */
bool cf_log_enabled(cf_log_level_t level);
/* Write one line; use the macros below instead. */
void cf_log_write(cf_log_level_t level, const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Write one [AUDIT] line: EVENT then key, value string pairs, ended by NULL. Always written,
 * whatever the level. Example: cf_audit ("cert.issue", "ca", name, "serial", hex, NULL); */
void cf_audit(const char *event, ...) __attribute__((sentinel));

#define CF_LOG_AT(lvl, ...)                                                                        \
    do {                                                                                           \
        if (cf_log_enabled(lvl))                                                                   \
            cf_log_write(lvl, __FILE__, __LINE__, __VA_ARGS__);                                    \
    } while (0)
#define cf_log_error(...) CF_LOG_AT(CF_LOG_ERROR, __VA_ARGS__)
#define cf_log_warn(...)  CF_LOG_AT(CF_LOG_WARN, __VA_ARGS__)
#define cf_log_info(...)  CF_LOG_AT(CF_LOG_INFO, __VA_ARGS__)
#define cf_log_debug(...) CF_LOG_AT(CF_LOG_DEBUG, __VA_ARGS__)

#endif
