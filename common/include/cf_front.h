/* cf_front: what the HTTP fronts (certfleet-acme, certfleet-ocspd) share around
 * libmicrohttpd: the command line and config of a front's main, the listen address
 * "HOST:PORT" ("[v6]:PORT", "*:PORT" for every address), a logger for MHD's own messages,
 * the daemon's start with the fronts' connection limits, and a bounded request body. */
#ifndef CF_FRONT_H
#define CF_FRONT_H

#include <microhttpd.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "cf_config.h"

/* Parse --config FILE and --help (WHAT: one line for the help), load the config and set up
 * logging for PROGRAM. The config (caller owns), or NULL with *EXIT_CODE set (0 after
 * --help, 2 for a bad argument, 1 for a config that cannot be read; the reason printed). */
cf_config_t *cf_front_init(int argc, char **argv, const char *program, const char *what,
                           int *exit_code);

/* The integer setting [SECTION] KEY (DFLT when absent) into *OUT when it lies within
 * [LO, HI]; -1 (logged, naming the setting) outside. */
int cf_front_setting(cf_config_t *cfg, const char *section, const char *key, int64_t dflt,
                     int64_t lo, int64_t hi, int64_t *out);

/* Resolve LISTEN into ADDR; *V6 says whether it is IPv6. 0 or -1. */
int cf_front_listen_addr(const char *listen, struct sockaddr_storage *addr, bool *v6);

/* For MHD_OPTION_EXTERNAL_LOGGER: MHD's messages as warnings of our log. */
void cf_front_mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* How a front's daemon listens and limits its connections (the front's own settings). */
typedef struct {
    const char *listen;          /* HOST:PORT */
    int threads;                 /* thread pool size */
    int connection_timeout_s;    /* idle connections are closed after it */
    size_t connection_memory;    /* per-connection memory limit of MHD */
    int max_connections;         /* connections in all */
    int per_ip_connection_limit; /* connections per client address, 0: no limit */
    bool suspend_resume; /* handlers may suspend their connection (MHD_suspend_connection) */
} cf_front_daemon_t;

/* Start MHD on S->listen (an internal epoll thread pool, address reuse, MHD's messages in our
 * log) with ACCESS and COMPLETED (both called with CLS). The daemon, or NULL (logged). */
struct MHD_Daemon *cf_front_daemon_start(const cf_front_daemon_t *s,
                                         MHD_AccessHandlerCallback access,
                                         MHD_RequestCompletedCallback completed, void *cls);

/* A request body collected from MHD's pieces, never above a bound. */
typedef struct {
    unsigned char *data; /* read so far (NULL while empty) */
    size_t len;          /* its length */
    size_t cap;          /* allocated */
    size_t dropped;      /* bytes thrown away past the bound */
    bool too_large;      /* the body went past the bound: answer 413 */
} cf_front_body_t;

/* Bytes a client may go on sending past the bound before the connection is closed. */
#define CF_FRONT_DROP_MAX (1024 * 1024)

/* Append DATA[0..SIZE) to B unless that passes MAX (then too_large, the bytes dropped). 0, or
 * -1 when out of memory or past CF_FRONT_DROP_MAX dropped bytes (close the connection). */
int cf_front_body_take(cf_front_body_t *b, const char *data, size_t size, size_t max);
/* Free what B holds. */
void cf_front_body_free(cf_front_body_t *b);

#endif
