/* cf_mail: see cf_mail.h. */
#include "cf_mail.h"

#include <string.h>

/* RFC 5322 atext, the characters a local part may hold besides inner dots. */
static bool s_atext(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

static bool s_ldh(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

bool cf_mail_addr_valid(const char *addr)
{
    size_t len = addr ? strlen(addr) : 0;
    const char *at = addr ? strrchr(addr, '@') : NULL;
    if (len < 3 || len > 254 || !at || at == addr || at - addr > 64)
        return false;
    /* Local part: dot-atoms only (quoted local parts are refused: no mail system needs them). */
    if (addr[0] == '.' || at[-1] == '.')
        return false;
    for (const char *p = addr; p < at; p++) {
        if (*p == '.' ? p[1] == '.' : !s_atext((unsigned char)*p))
            return false;
    }
    const char *domain = at + 1;
    if (strcmp(domain, "localhost") == 0)
        return true;
    int labels = 0;
    const char *label = domain;
    for (const char *p = domain;; p++) {
        if (*p == '.' || *p == '\0') {
            size_t n = (size_t)(p - label);
            if (n == 0 || n > 63 || label[0] == '-' || p[-1] == '-')
                return false;
            labels++;
            if (*p == '\0')
                break;
            label = p + 1;
        } else if (!s_ldh((unsigned char)*p)) {
            return false;
        }
    }
    return labels >= 2;
}
