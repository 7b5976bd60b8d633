/* cf_front: what the HTTP fronts (certfleet-acme, certfleet-ocspd) share around
 * libmicrohttpd: the command line and config of a front's main, the listen address
 * "HOST:PORT" ("[v6]:PORT", "*:PORT" for every address), and a logger for MHD's own
 * messages. No MHD types here: the library does not link libmicrohttpd. */
#ifndef CF_FRONT_H
#define CF_FRONT_H

#include <stdarg.h>
#include <stdbool.h>
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

#endif
