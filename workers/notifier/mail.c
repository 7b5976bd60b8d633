/* Expiry mail: address checks and the message itself (RFC 5322 headers, a plain-text UTF-8
 * body). Text that comes from certificates (the CN) or from operators (a watcher's name) is
 * never put into a header raw: it is RFC 2047-encoded unless it is plain printable ASCII. */
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_msgpack.h"
#include "notify.h"

/* True when S is printable ASCII (no controls, nothing above 0x7e). */
static bool s_plain(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++)
        if (*p < 0x20 || *p > 0x7e)
            return false;
    return true;
}

void notify_mail_subject(const notify_mail_t *m, char *out, size_t len)
{
    int64_t left = m->expires - m->now;
    int64_t days = left > 0 ? left / 86400 : 0;
    /* The CN is the name a reader knows; a certificate without one is named by its serial. */
    char name[160];
    if (m->cn && *m->cn)
        snprintf(name, sizeof name, "%.120s", m->cn);
    else
        snprintf(name, sizeof name, "%s", m->serial);
    if (days == 0)
        snprintf(out, len, "Certificate %s expires within a day", name);
    else
        snprintf(out, len, "Certificate %s expires in %lld day%s", name, (long long)days,
                 days == 1 ? "" : "s");
}

/* Write TEXT as a header value to F: as is when plain ASCII, else as RFC 2047 "B" encoded
 * words of at most 45 bytes each (whole UTF-8 characters), folded onto continuation lines. */
static void s_header_text(FILE *f, const char *text)
{
    if (s_plain(text)) {
        fputs(text, f);
        return;
    }
    size_t len = strlen(text), pos = 0;
    while (pos < len) {
        size_t n = len - pos > 45 ? 45 : len - pos;
        /* Never split a UTF-8 sequence between two encoded words. */
        while (n > 1 && pos + n < len && ((unsigned char)text[pos + n] & 0xc0) == 0x80)
            n--;
        char *b64 = cf_base64_encode(text + pos, n);
        fprintf(f, "%s=?UTF-8?B?%s?=", pos ? "\r\n " : "", b64 ? b64 : "");
        free(b64);
        pos += n;
    }
}

/* TEXT in the body: controls (CR and LF included) become "?". */
static void s_body_text(FILE *f, const char *text, size_t max)
{
    for (size_t i = 0; text[i] && i < max; i++) {
        unsigned char c = (unsigned char)text[i];
        fputc(c < 0x20 || c == 0x7f ? '?' : c, f);
    }
}

/* SERIAL as "0A:1B:..." into OUT. */
static void s_colons(const char *serial, char *out, size_t len)
{
    size_t o = 0, n = strlen(serial);
    for (size_t i = 0; i < n && o + 4 < len; i++) {
        if (i && i % 2 == 0)
            out[o++] = ':';
        out[o++] = serial[i];
    }
    out[o] = '\0';
}

char *notify_mail_compose(const notify_mail_t *m, size_t *len)
{
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f)
        return NULL;
    char subject[256], date[64], not_after[64], serial[128];
    notify_mail_subject(m, subject, sizeof subject);
    time_t now = (time_t)m->now, exp = (time_t)m->expires;
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    gmtime_r(&exp, &tm);
    strftime(not_after, sizeof not_after, "%Y-%m-%d %H:%M:%S UTC", &tm);
    s_colons(m->serial, serial, sizeof serial);
    unsigned char rnd[12];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0, sizeof rnd);
    fprintf(f, "From: %s\r\nTo: ", m->from);
    if (m->to_name && *m->to_name && s_plain(m->to_name) && !strpbrk(m->to_name, "\"\\")) {
        fprintf(f, "\"%s\" ", m->to_name);
    } else if (m->to_name && *m->to_name) {
        s_header_text(f, m->to_name);
        fputc(' ', f);
    }
    fprintf(f, "<%s>\r\nSubject: ", m->to);
    s_header_text(f, subject);
    fprintf(f, "\r\nDate: %s\r\nMessage-ID: <", date);
    for (size_t i = 0; i < sizeof rnd; i++)
        fprintf(f, "%02x", rnd[i]);
    fprintf(f, ".%s@%s>\r\n", m->serial, m->from_domain);
    fprintf(f, "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n"
               "Content-Transfer-Encoding: 8bit\r\nAuto-Submitted: auto-generated\r\n\r\n");
    fputs("Hello", f);
    if (m->to_name && *m->to_name) {
        fputc(' ', f);
        s_body_text(f, m->to_name, 200);
    }
    fputs(",\r\n\r\n", f);
    fputs("a certificate you watch is about to expire:\r\n\r\n", f);
    fputs("  Common name:            ", f);
    s_body_text(f, m->cn && *m->cn ? m->cn : "-", 400);
    fprintf(f,
            "\r\n  Serial:                 %s\r\n"
            "  Certificate authority:  %s\r\n"
            "  Expires (not after):    %s\r\n\r\n",
            serial, m->ca, not_after);
    fprintf(f,
            "To renew it, make a new key and certificate signing request and have it signed\r\n"
            "before then, for example with\r\n\r\n"
            "  certfleet cert sign --ca %s --csr new.csr --watch %s\r\n\r\n"
            "or let your ACME client renew it. Then install the new certificate where this one\r\n"
            "is used.\r\n\r\n"
            "You get this mail because %s watches this certificate. To stop these mails\r\n"
            "for it, ask your certificate authority's operators to run\r\n\r\n"
            "  certfleet watcher remove %s --cert %s\r\n\r\n"
            "-- \r\ncertfleet\r\n",
            m->ca, m->to, m->to, m->to, m->serial);
    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = size;
    return buf;
}
