/* cf_secret: a secret kept in a file (a key password, the SMTP password): its first line, read
 * the same careful way everywhere. */
#ifndef CF_SECRET_H
#define CF_SECRET_H

#include <stddef.h>

#include "cf_error.h"

/* A secret file bigger than this is not a secret file. */
#define CF_SECRET_FILE_MAX 4096

/* The first line of the regular file PATH (without "\n" or "\r\n"), NUL-terminated; its length
 * in *LEN when LEN is not NULL. A warning is logged when group or others may read the file.
 * The caller wipes (OPENSSL_cleanse) and frees it. NULL with ERR (code
 * "password_unavailable") when the file cannot be opened or read, is not a regular file, or
 * is larger than CF_SECRET_FILE_MAX; every copy made here is wiped. */
char *cf_secret_file_read(const char *path, size_t *len, cf_error_t *err);

#endif
