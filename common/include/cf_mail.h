/* cf_mail: the one rule for mail addresses certfleet accepts (watchers, the notifier's
 * sender), shared by cert.issue, the notifier and the certfleet command (docs/notify.md). */
#ifndef CF_MAIL_H
#define CF_MAIL_H

#include <stdbool.h>

/* A plausible addr-spec: ASCII local@domain, at most 254 characters, a dot-atom local part
 * of at most 64 (quoted local parts are refused: no mail system needs them), a domain of at
 * least two dotted letter-digit-hyphen labels of at most 63 (or "localhost"); no spaces,
 * controls, CR or LF. False for NULL. */
bool cf_mail_addr_valid(const char *addr);

#endif
