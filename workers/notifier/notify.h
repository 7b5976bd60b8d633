/* The notifier worker: notify.expiring, expiry mail to the watchers of certificates
 * (docs/notify.md). It is one of the two workers that open outbound connections (CONVENTIONS.md
 * rule 15): to the mail server, over SMTP with libcurl (smtp.c). mail.c writes the messages;
 * notify_expiring.c reads and writes the notices in PostgreSQL. */
#ifndef CF_NOTIFY_H
#define CF_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cf_worker.h"

#define NOTIFY_THRESHOLDS_MAX 32   /* thresholds of one job */
#define NOTIFY_DAYS_MAX       3650 /* the largest threshold, in days */
#define NOTIFY_ERROR_MAX      400  /* a send error as kept in expiry_notices.last_error */

/* [smtp] settings, read on the first job. */
typedef struct {
    char *url;         /* smtp://HOST[:PORT] or smtps://HOST[:PORT] (smtp://127.0.0.1:25) */
    char *from;        /* the From header as configured ("ca@example.com" or "CA <ca@...>") */
    char *from_addr;   /* its address alone, for MAIL FROM */
    char *from_domain; /* its domain, for Message-ID */
    int use_ssl;       /* CURLUSESSL_NONE, _TRY or _ALL ([smtp] starttls none|try|required) */
    char *username;    /* AUTH user, or NULL */
    char *password;    /* first line of [smtp] password_file, or NULL; wiped on exit */
    char *ca_file;     /* CA certificates for the server's TLS certificate, or NULL */
    int timeout_ms;    /* one mail in all, connecting included (10000) */
    char error[256];   /* why the settings cannot send mail; "" when they can */
} notify_smtp_config_t;

/* The process's state, handed to cf_worker_main. */
typedef struct {
    bool loaded;                           /* settings read */
    notify_smtp_config_t smtp;             /* [smtp] */
    int thresholds[NOTIFY_THRESHOLDS_MAX]; /* [notify] thresholds, largest first */
    size_t nthresholds;                    /* how many */
    int retry_s;                           /* [notify] retry_s: wait after a failed send */
} notify_state_t;

/* The settings, read on the first job (borrowed from the state). */
notify_state_t *notify_state(cf_handler_ctx_t *ctx);
/* Free the state (at exit); the password is wiped. */
void notify_state_destroy(notify_state_t *state);
/* Parse "30,14,7" into OUT (room for NOTIFY_THRESHOLDS_MAX), sorted largest first, without
 * duplicates. The count, or -1 when TEXT is not such a list. */
int notify_parse_thresholds(const char *text, int *out);

/* One expiry mail. */
typedef struct {
    const char *from;        /* the From header value */
    const char *from_domain; /* for Message-ID */
    const char *to;          /* the watcher's address */
    const char *to_name;     /* the watcher's name, or "" */
    const char *cn;          /* the certificate's common name, or "" */
    const char *serial;      /* upper-case hex, no colons */
    const char *ca;          /* the CA's name */
    int64_t expires;         /* not-after, Unix s */
    int64_t now;             /* Unix s, for Date and the days left */
} notify_mail_t;

/* The whole message, headers and body, with CRLF line ends (caller frees); *LEN its length.
 * NULL when out of memory. */
char *notify_mail_compose(const notify_mail_t *mail, size_t *len);
/* The subject line as sent before any encoding ("Certificate example.com expires in 3
 * days"), into OUT. */
void notify_mail_subject(const notify_mail_t *mail, char *out, size_t len);

/* An SMTP session for one job: one libcurl handle, so that its connection is used for many
 * mails. */
typedef struct _notify_smtp_t notify_smtp_t;

/* A session with CONFIG (borrowed, must outlive it); WORKER gets keepalives while a mail is on
 * its way. NULL when out of memory. */
notify_smtp_t *notify_smtp_new(const notify_smtp_config_t *config, cf_worker_t *worker);
void notify_smtp_destroy(notify_smtp_t **self_p);

enum {
    NOTIFY_SENT = 0,           /* the server accepted the mail */
    NOTIFY_REFUSED = -1,       /* the server refused this mail (sender, recipient, data) */
    NOTIFY_SERVER_FAILED = -2, /* the server could not be reached or used (connect, TLS, login,
                                * timeout): later mails of the job would fail the same way */
};
/* Send MSG (LEN bytes) to RCPT. NOTIFY_SENT, or NOTIFY_REFUSED / NOTIFY_SERVER_FAILED with the
 * reason in ERRBUF. */
int notify_smtp_send(notify_smtp_t *self, const char *rcpt, const char *msg, size_t len,
                     char *errbuf, size_t errlen);

int notify_expiring(cf_handler_ctx_t *ctx, const cf_job_t *job, msgpack_packer *result,
                    cf_error_t *err);

#endif
