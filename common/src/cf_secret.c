/* cf_secret: see cf_secret.h. */
#include "cf_secret.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "cf_log.h"

char *cf_secret_file_read(const char *path, size_t *len_out, cf_error_t *err)
{
    char *secret = NULL;
    char buf[CF_SECRET_FILE_MAX + 1];
    size_t len = 0;
    struct stat st;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0 || fstat(fd, &st) != 0) {
        cf_error_set(err, "password_unavailable", "", "could not open password file \"%s\": %s",
                     path, strerror(errno));
        goto out;
    }
    if (!S_ISREG(st.st_mode) || st.st_size > CF_SECRET_FILE_MAX) {
        cf_error_set(err, "password_unavailable", "",
                     "password file \"%s\" is not a regular file of at most %d bytes", path,
                     CF_SECRET_FILE_MAX);
        goto out;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        cf_log_warn("password file \"%s\" can be read by group or others: use mode 0600", path);
    while (len < CF_SECRET_FILE_MAX) {
        ssize_t n = read(fd, buf + len, CF_SECRET_FILE_MAX - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cf_error_set(err, "password_unavailable", "", "could not read password file \"%s\": %s",
                         path, strerror(errno));
            goto out;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    /* The first line: editors and `echo` end files with a newline that is not part of it. */
    char *nl = memchr(buf, '\n', len);
    if (nl)
        len = (size_t)(nl - buf);
    if (len > 0 && buf[len - 1] == '\r')
        len--;
    if (!(secret = malloc(len + 1))) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    memcpy(secret, buf, len);
    secret[len] = '\0';
    if (len_out)
        *len_out = len;
out:
    OPENSSL_cleanse(buf, sizeof buf);
    if (fd >= 0)
        close(fd);
    return secret;
}
