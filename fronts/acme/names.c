/* names: the DNS identifiers this CA accepts in orders and CSRs: host names of LDH labels
 * (RFC 1123, RFC 5890 A-labels pass as LDH), compared in lower case, with at least two
 * labels and a last label that is not all digits (no bare TLDs, no IPv4 addresses), and "*."
 * as the whole leftmost label for a wildcard (RFC 8555 7.1.3). */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "acme.h"

int acme_name_check(const char *name, char out[ACME_NAME_MAX], char *why, size_t whylen)
{
    size_t n = strlen(name);
    if (n == 0 || n > ACME_NAME_MAX - 1) {
        snprintf(why, whylen, "a DNS name has 1 to %d characters", ACME_NAME_MAX - 1);
        return -1;
    }
    for (size_t i = 0; i <= n; i++)
        out[i] = (char)tolower((unsigned char)name[i]);
    const char *p = out;
    if (strncmp(p, "*.", 2) == 0)
        p += 2;
    int labels = 0;
    bool all_digits = false;
    while (*p) {
        size_t len = strcspn(p, ".");
        if (len == 0 || len > 63) {
            snprintf(why, whylen, "labels have 1 to 63 characters");
            return -1;
        }
        all_digits = true;
        for (size_t i = 0; i < len; i++) {
            unsigned char c = (unsigned char)p[i];
            if (c == '*') {
                snprintf(why, whylen, "a wildcard must be the whole leftmost label (\"*.\")");
                return -1;
            }
            if (!(isdigit(c) || (c >= 'a' && c <= 'z') || c == '-')) {
                snprintf(why, whylen, "labels hold only letters, digits and hyphens");
                return -1;
            }
            if (!isdigit(c))
                all_digits = false;
        }
        if (p[0] == '-' || p[len - 1] == '-') {
            snprintf(why, whylen, "a label may not start or end with a hyphen");
            return -1;
        }
        labels++;
        p += len;
        if (*p == '.') {
            p++;
            if (*p == '\0') {
                snprintf(why, whylen, "a name may not end with a dot");
                return -1;
            }
        }
    }
    if (labels < 2) {
        snprintf(why, whylen, "a name needs at least two labels");
        return -1;
    }
    if (all_digits) {
        snprintf(why, whylen,
                 "the last label may not be all digits (IP addresses are not DNS "
                 "identifiers)");
        return -1;
    }
    return 0;
}
