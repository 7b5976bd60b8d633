/* ca_cache: the list of CAs (id, name, certificate and the SHA-1 hashes a CertID names them
 * by), read from PostgreSQL at most once per ca_cache_ms and shared by every thread as
 * reference-counted snapshots, so that a reload never waits for readers nor they for it. */
#include <arpa/inet.h>
#include <openssl/evp.h>
#include <openssl/x509.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cf_log.h"
#include "ocspd.h"

/* After a failed reload, wait this long before the next try (PostgreSQL may be down). */
#define S_RETRY_MS 1000

struct _ocspd_ca_set_t {
    int refs;        /* references held (the cache's own included), under the cache's lock */
    size_t count;    /* number of CAs */
    ocspd_ca_t *cas; /* the CAs */
};

struct _ocspd_cas_t {
    pthread_mutex_t lock;    /* guards everything below */
    ocspd_ca_set_t *current; /* the newest snapshot, or NULL before the first load */
    int64_t ttl_ms;          /* ca_cache_ms */
    int64_t fresh_until;     /* monotonic ms after which current is reloaded */
    bool loading;            /* a thread is reloading: others keep using current */
};

static int64_t s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void s_set_free(ocspd_ca_set_t *set)
{
    if (!set)
        return;
    for (size_t i = 0; i < set->count; i++) {
        free(set->cas[i].name);
        free(set->cas[i].der);
    }
    free(set->cas);
    free(set);
}

/* Fill CA from a certificate; -1 when the DER is not a certificate. */
static int s_ca_hashes(ocspd_ca_t *ca)
{
    const unsigned char *p = ca->der;
    X509 *cert = d2i_X509(NULL, &p, (long)ca->der_len);
    unsigned int n1 = 0, n2 = 0;
    /* RFC 6960 4.1.1: the hash of the issuer's DN (DER) and of its subjectPublicKey bits. */
    int ok = cert &&
             X509_NAME_digest(X509_get_subject_name(cert), EVP_sha1(), ca->name_hash, &n1) &&
             X509_pubkey_digest(cert, EVP_sha1(), ca->key_hash, &n2) && n1 == 20 && n2 == 20;
    X509_free(cert);
    return ok ? 0 : -1;
}

static int64_t s_int8(const char *p)
{
    uint32_t hi, lo;
    memcpy(&hi, p, 4);
    memcpy(&lo, p + 4, 4);
    return (int64_t)(((uint64_t)ntohl(hi) << 32) | ntohl(lo));
}

/* A new snapshot from PostgreSQL, or NULL. */
static ocspd_ca_set_t *s_load(ocspd_store_t *store)
{
    PGresult *res = ocspd_store_cas(store);
    if (!res)
        return NULL;
    int rows = PQntuples(res);
    ocspd_ca_set_t *set = calloc(1, sizeof *set);
    if (!set || !(set->cas = calloc(rows > 0 ? (size_t)rows : 1, sizeof *set->cas))) {
        free(set);
        PQclear(res);
        return NULL;
    }
    set->refs = 1;
    for (int i = 0; i < rows; i++) {
        ocspd_ca_t *ca = &set->cas[set->count];
        int name_len = PQgetlength(res, i, 1), der_len = PQgetlength(res, i, 2);
        if (PQgetlength(res, i, 0) != 8 || der_len <= 0)
            continue;
        ca->id = s_int8(PQgetvalue(res, i, 0));
        ca->name = strndup(PQgetvalue(res, i, 1), (size_t)name_len);
        ca->der = malloc((size_t)der_len);
        if (!ca->name || !ca->der) {
            free(ca->name);
            free(ca->der);
            s_set_free(set);
            PQclear(res);
            return NULL;
        }
        memcpy(ca->der, PQgetvalue(res, i, 2), (size_t)der_len);
        ca->der_len = (size_t)der_len;
        if (s_ca_hashes(ca) != 0) {
            cf_log_warn("CA \"%s\" has no readable certificate, not served", ca->name);
            free(ca->name);
            free(ca->der);
            memset(ca, 0, sizeof *ca);
            continue;
        }
        set->count++;
    }
    PQclear(res);
    return set;
}

ocspd_cas_t *ocspd_cas_new(int64_t ttl_ms)
{
    ocspd_cas_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    if (pthread_mutex_init(&self->lock, NULL) != 0) {
        free(self);
        return NULL;
    }
    self->ttl_ms = ttl_ms;
    return self;
}

void ocspd_cas_destroy(ocspd_cas_t **self_p)
{
    ocspd_cas_t *self = *self_p;
    if (!self)
        return;
    /* Every reader is gone (the daemon is stopped): only the cache's reference is left. */
    s_set_free(self->current);
    pthread_mutex_destroy(&self->lock);
    free(self);
    *self_p = NULL;
}

/* Drop one reference; the caller holds the lock. */
static void s_unref(ocspd_ca_set_t *set)
{
    if (set && --set->refs == 0)
        s_set_free(set);
}

ocspd_ca_set_t *ocspd_cas_acquire(ocspd_cas_t *self, ocspd_store_t *store)
{
    pthread_mutex_lock(&self->lock);
    ocspd_ca_set_t *set = self->current;
    bool reload = false;
    /* One thread reloads while the others keep answering from the old snapshot; with no
     * snapshot at all yet, every thread tries, as it has nothing else to answer from. */
    if (!set || (s_now_ms() >= self->fresh_until && !self->loading)) {
        reload = true;
        self->loading = true;
    }
    if (set)
        set->refs++;
    pthread_mutex_unlock(&self->lock);
    if (!reload)
        return set;

    /* The query runs without the lock: a slow PostgreSQL must not stop the other threads. */
    ocspd_ca_set_t *fresh = store ? s_load(store) : NULL;
    pthread_mutex_lock(&self->lock);
    self->loading = false;
    if (fresh) {
        s_unref(self->current);
        self->current = fresh;
        self->fresh_until = s_now_ms() + self->ttl_ms;
        fresh->refs++;
        s_unref(set);
        set = fresh;
    } else {
        self->fresh_until = s_now_ms() + (self->ttl_ms < S_RETRY_MS ? self->ttl_ms : S_RETRY_MS);
        if (!set && self->current) { /* another thread loaded one meanwhile */
            set = self->current;
            set->refs++;
        }
    }
    pthread_mutex_unlock(&self->lock);
    if (!fresh)
        cf_log_warn("could not reload the CA list%s", set ? ", keeping the previous one" : "");
    return set;
}

void ocspd_cas_release(ocspd_cas_t *self, ocspd_ca_set_t **set_p)
{
    if (!*set_p)
        return;
    pthread_mutex_lock(&self->lock);
    s_unref(*set_p);
    pthread_mutex_unlock(&self->lock);
    *set_p = NULL;
}

const ocspd_ca_t *ocspd_ca_find_name(const ocspd_ca_set_t *set, const char *name, size_t len)
{
    for (size_t i = 0; i < set->count; i++)
        if (strlen(set->cas[i].name) == len && memcmp(set->cas[i].name, name, len) == 0)
            return &set->cas[i];
    return NULL;
}

const ocspd_ca_t *ocspd_ca_find_hashes(const ocspd_ca_set_t *set, const unsigned char *name_hash,
                                       const unsigned char *key_hash)
{
    for (size_t i = 0; i < set->count; i++)
        if (memcmp(set->cas[i].key_hash, key_hash, 20) == 0 &&
            memcmp(set->cas[i].name_hash, name_hash, 20) == 0)
            return &set->cas[i];
    return NULL;
}
