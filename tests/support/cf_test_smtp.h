/* cf_test_smtp: a small SMTP server on loopback for tests (RFC 5321's minimum: 220, EHLO/HELO,
 * MAIL, RCPT, DATA, RSET, NOOP, QUIT; no STARTTLS, no AUTH). It runs in threads of the test,
 * takes many connections at once, records every mail it accepts, can refuse chosen
 * recipients, and can be stopped (connections are then refused) and started again on the same
 * port. */
#ifndef CF_TEST_SMTP_H
#define CF_TEST_SMTP_H

#include <stddef.h>

typedef struct _cf_test_smtp_t cf_test_smtp_t;

/* One accepted mail. */
typedef struct {
    char *from; /* the MAIL FROM address, without <> */
    char *rcpt; /* the RCPT TO addresses, without <>, joined by "," */
    char *data; /* the message as received, dot-stuffing undone, CRLF kept */
} cf_test_smtp_mail_t;

/* A server listening on a free port of 127.0.0.1 (caller destroys); NULL on failure. */
cf_test_smtp_t *cf_test_smtp_new(void);
/* Stop it, close every connection, free the mails. */
void cf_test_smtp_destroy(cf_test_smtp_t **self_p);
/* Its port. */
int cf_test_smtp_port(cf_test_smtp_t *self);
/* Close the listener and every open connection: new connections are refused. 0 or -1. */
int cf_test_smtp_stop(cf_test_smtp_t *self);
/* Listen again on the same port. 0 or -1. */
int cf_test_smtp_start(cf_test_smtp_t *self);
/* Answer RCPT TO:<ADDR> with 550 from now on (compared without regard to case). */
void cf_test_smtp_refuse(cf_test_smtp_t *self, const char *addr);
/* How many mails were accepted so far. */
size_t cf_test_smtp_count(cf_test_smtp_t *self);
/* A copy of mail I (caller frees with cf_test_smtp_mail_free); 0, or -1 when there is none. */
int cf_test_smtp_mail(cf_test_smtp_t *self, size_t i, cf_test_smtp_mail_t *out);
void cf_test_smtp_mail_free(cf_test_smtp_mail_t *mail);

#endif
