/* cf_keystore: the "storages" and "db" key backends and the per-process key cache (see
 * cf_keystore.h). */
#include "cf_keystore.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "cf_key.h"
#include "cf_log.h"

#define S_KEY_FILE_MAX (1024 * 1024) /* a key file bigger than this is not a key file */
#define S_MAC_LEN      32

/* One loaded key. */
typedef struct s_entry_t {
    char *backend;                   /* backend name */
    char *key_id;                    /* key id */
    EVP_PKEY *key;                   /* the key (one reference owned here) */
    bool encrypted;                  /* stored encrypted: a password is checked on every use */
    unsigned char pw_mac[S_MAC_LEN]; /* HMAC-SHA256 of that password under mac_key */
    struct s_entry_t *next;          /* next entry */
} s_entry_t;

struct _cf_keystore_t {
    cf_config_t *cfg;                 /* borrowed: [keys] settings */
    cf_pg_t *pg;                      /* borrowed: the db backend's connection, or NULL */
    s_entry_t *cache;                 /* loaded keys; a worker has a handful, a list will do */
    unsigned char mac_key[S_MAC_LEN]; /* random per process: keys the cached password MACs */
};

cf_keystore_t *cf_keystore_new(cf_config_t *cfg, cf_pg_t *pg)
{
    cf_keystore_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->cfg = cfg;
    self->pg = pg;
    if (RAND_bytes(self->mac_key, sizeof self->mac_key) != 1) {
        free(self);
        return NULL;
    }
    return self;
}

static void s_entry_free(s_entry_t *e)
{
    free(e->backend);
    free(e->key_id);
    EVP_PKEY_free(e->key);
    OPENSSL_cleanse(e->pw_mac, sizeof e->pw_mac);
    free(e);
}

void cf_keystore_destroy(cf_keystore_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_keystore_t *self = *self_p;
    s_entry_t *e = self->cache;
    while (e) {
        s_entry_t *next = e->next;
        s_entry_free(e);
        e = next;
    }
    OPENSSL_cleanse(self->mac_key, sizeof self->mac_key);
    free(self);
    *self_p = NULL;
}

/* ---------------------------------------------------------------- helpers */

static bool s_known_backend(const char *backend, cf_error_t *err)
{
    if (backend && (strcmp(backend, "storages") == 0 || strcmp(backend, "db") == 0))
        return true;
    cf_error_set(err, "unknown_backend", "key_backend",
                 "unknown key backend \"%.40s\": must be \"storages\" or \"db\"",
                 backend ? backend : "");
    return false;
}

static bool s_valid_id(const char *key_id, cf_error_t *err)
{
    size_t len = key_id ? strlen(key_id) : 0;
    bool ok = len > 0 && len <= CF_KEYSTORE_ID_MAX;
    for (size_t i = 0; ok && i < len; i++)
        if ((unsigned char)key_id[i] < 0x20 || key_id[i] == 0x7f)
            ok = false;
    if (!ok)
        cf_error_set(err, "invalid_value", "key_id",
                     "key id must be 1 to %d characters without control characters",
                     CF_KEYSTORE_ID_MAX);
    return ok;
}

/* Rewrite err's message as "could not VERB private key "ID": <message>". */
static void s_error_key(cf_error_t *err, const char *verb, const char *key_id)
{
    if (!err)
        return;
    char msg[CF_ERROR_MESSAGE_MAX];
    snprintf(msg, sizeof msg, "%s", err->message);
    snprintf(err->message, sizeof err->message, "could not %s private key \"%s\": %s", verb, key_id,
             msg);
}

static int s_mac(cf_keystore_t *self, const char *password, unsigned char out[S_MAC_LEN])
{
    size_t outlen = 0;
    const char *pw = password ? password : "";
    unsigned char *r =
        EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, self->mac_key, sizeof self->mac_key,
                  (const unsigned char *)pw, strlen(pw), out, S_MAC_LEN, &outlen);
    return r && outlen == S_MAC_LEN ? 0 : -1;
}

static s_entry_t *s_cache_find(cf_keystore_t *self, const char *backend, const char *key_id)
{
    for (s_entry_t *e = self->cache; e; e = e->next)
        if (strcmp(e->backend, backend) == 0 && strcmp(e->key_id, key_id) == 0)
            return e;
    return NULL;
}

/* File name of a key in storages_dir: the id with everything but [A-Za-z0-9._-] as '_' and
 * no leading dot (temporary files start with one). */
static void s_file_name(char *out, size_t outlen, const char *key_id)
{
    size_t n = 0;
    for (const char *p = key_id; *p && n + 5 < outlen; p++) {
        char c = *p;
        bool keep = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '-' || c == '_' || (c == '.' && n > 0);
        out[n++] = keep ? c : '_';
    }
    snprintf(out + n, outlen - n, ".pem");
}

/* A relative path inside storages_dir: no absolute path, no "..", no empty component. */
static bool s_safe_path(const char *path, size_t len)
{
    if (len == 0 || len != strlen(path) || path[0] == '/' || len > 255)
        return false;
    const char *p = path;
    while (*p) {
        const char *slash = strchr(p, '/');
        size_t n = slash ? (size_t)(slash - p) : strlen(p);
        if (n == 0 || (n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return false;
        p += n;
        if (*p == '/')
            p++;
    }
    return true;
}

/* mkdir -p DIR, new directories 0700. */
static int s_mkdirs(const char *dir)
{
    char path[PATH_MAX];
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return -1;
    for (char *p = path + 1; *p; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(path, 0700) != 0 && errno != EEXIST)
            return -1;
        *p = '/';
    }
    if (mkdir(path, 0700) != 0 && errno != EEXIST)
        return -1;
    struct stat st;
    if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

static const char *s_storages_dir(cf_keystore_t *self)
{
    return cf_config_get(self->cfg, "keys", "storages_dir", "/var/lib/certfleet/keys");
}

/* ---------------------------------------------------------------- storages */

static int s_write_all(int fd, const char *data, size_t len)
{
    while (len > 0) {
        ssize_t n = write(fd, data, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return -1;
        data += n;
        len -= (size_t)n;
    }
    return 0;
}

static int s_storages_store(cf_keystore_t *self, const char *key_id, const unsigned char *der,
                            size_t len, bool encrypted, json_t **options_out, cf_error_t *err)
{
    int rc = -1;
    int fd = -1;
    char *pem = NULL;
    long pemlen = 0;
    char name[CF_KEYSTORE_ID_MAX + 8];
    char tmp[PATH_MAX];
    char final[PATH_MAX];
    bool tmp_made = false;
    const char *dir = s_storages_dir(self);
    BIO *bio = BIO_new(BIO_s_secmem());

    s_file_name(name, sizeof name, key_id);
    if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX", dir, name) >= (int)sizeof tmp ||
        snprintf(final, sizeof final, "%s/%s", dir, name) >= (int)sizeof final) {
        cf_error_set(err, "storage_error", "", "path of key directory \"%s\" is too long", dir);
        goto out;
    }
    if (s_mkdirs(dir) != 0) {
        cf_error_set(err, "storage_error", "", "could not create key directory \"%s\": %s", dir,
                     strerror(errno));
        goto out;
    }
    /* PEM, as django-ca writes its key files: `openssl pkey -in FILE` reads them. */
    if (!bio ||
        PEM_write_bio(bio, encrypted ? "ENCRYPTED PRIVATE KEY" : "PRIVATE KEY", "", der,
                      (long)len) <= 0 ||
        (pemlen = BIO_get_mem_data(bio, &pem)) <= 0) {
        cf_error_set(err, "internal", "", "could not encode private key as PEM");
        cf_error_add_openssl(err);
        goto out;
    }
    /* mkstemp creates the file 0600; the key is complete and on disk before link() makes it
     * visible under its name, and link() (unlike rename()) never replaces an existing key. */
    fd = mkstemp(tmp);
    if (fd < 0) {
        cf_error_set(err, "storage_error", "", "could not create file in \"%s\": %s", dir,
                     strerror(errno));
        goto out;
    }
    tmp_made = true;
    if (fchmod(fd, 0600) != 0 || s_write_all(fd, pem, (size_t)pemlen) != 0 || fsync(fd) != 0) {
        cf_error_set(err, "storage_error", "", "could not write key file \"%s\": %s", name,
                     strerror(errno));
        goto out;
    }
    if (close(fd) != 0) {
        fd = -1;
        cf_error_set(err, "storage_error", "", "could not write key file \"%s\": %s", name,
                     strerror(errno));
        goto out;
    }
    fd = -1;
    if (link(tmp, final) != 0) {
        if (errno == EEXIST)
            cf_error_set(err, "key_exists", "key_id", "key file \"%s\" already exists", name);
        else
            cf_error_set(err, "storage_error", "", "could not create key file \"%s\": %s", name,
                         strerror(errno));
        goto out;
    }
    /* The directory entry must be durable too, or a crash could lose a key whose CA was
     * committed. */
    int dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    *options_out = json_pack("{s:s}", "path", name);
    if (!*options_out) {
        cf_error_set(err, "internal", "", "out of memory");
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_made)
        unlink(tmp);
    BIO_free(bio); /* a secure-heap BIO: wiped on free */
    return rc;
}

/* The bytes of a key file (caller owns, wipe and free) or NULL + err. */
static unsigned char *s_storages_read(cf_keystore_t *self, const char *key_id,
                                      const json_t *options, size_t *len, cf_error_t *err)
{
    char name[CF_KEYSTORE_ID_MAX + 8];
    char path[PATH_MAX];
    const char *rel = name;
    unsigned char *data = NULL;
    size_t used = 0;
    struct stat st;
    const char *dir = s_storages_dir(self);

    json_t *p = options ? json_object_get(options, "path") : NULL;
    if (p) {
        if (!json_is_string(p) || !s_safe_path(json_string_value(p), json_string_length(p))) {
            cf_error_set(err, "invalid_value", "options.path",
                         "key path must be a relative path inside the key directory");
            return NULL;
        }
        rel = json_string_value(p);
    } else {
        s_file_name(name, sizeof name, key_id);
    }
    if (snprintf(path, sizeof path, "%s/%s", dir, rel) >= (int)sizeof path) {
        cf_error_set(err, "storage_error", "", "key path \"%s\" is too long", rel);
        return NULL;
    }
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            cf_error_set(err, "key_not_found", "", "key file \"%s\" does not exist", rel);
        else
            cf_error_set(err, "storage_error", "", "could not open key file \"%s\": %s", rel,
                         strerror(errno));
        return NULL;
    }
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > S_KEY_FILE_MAX) {
        cf_error_set(err, "invalid_key", "",
                     "key file \"%s\" is not a regular file of at most %d bytes", rel,
                     S_KEY_FILE_MAX);
        goto fail;
    }
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        cf_log_warn("key file \"%s\" can be read by group or others: use mode 0600", path);
    data = malloc((size_t)st.st_size + 1);
    if (!data) {
        cf_error_set(err, "internal", "", "out of memory");
        goto fail;
    }
    while (used <= (size_t)st.st_size) {
        ssize_t n = read(fd, data + used, (size_t)st.st_size + 1 - used);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            cf_error_set(err, "storage_error", "", "could not read key file \"%s\": %s", rel,
                         strerror(errno));
            goto fail;
        }
        if (n == 0)
            break;
        used += (size_t)n;
    }
    close(fd);
    *len = used;
    return data;
fail:
    if (data) {
        OPENSSL_cleanse(data, used);
        free(data);
    }
    close(fd);
    return NULL;
}

/* ---------------------------------------------------------------- db */

static int s_db_store(cf_keystore_t *self, const char *key_id, const unsigned char *der, size_t len,
                      json_t **options_out, cf_error_t *err)
{
    if (!self->pg) {
        cf_error_set(err, "database_error", "", "key backend \"db\" has no database connection");
        return -1;
    }
    if (len > INT_MAX) {
        cf_error_set(err, "invalid_key", "", "private key is too big");
        return -1;
    }
    const char *values[] = {key_id, (const char *)der};
    const int lengths[] = {0, (int)len};
    const int formats[] = {0, 1};
    /* No BEGIN here: in the caller's transaction when one is open, so that a CA and its key
     * are committed (or rolled back) together. */
    PGresult *res =
        cf_pg_exec_params(self->pg, "INSERT INTO private_keys (id, pkcs8) VALUES ($1, $2)", 2,
                          values, lengths, formats, 0);
    if (!res) {
        if (strcmp(cf_pg_sqlstate(self->pg), "23505") == 0) {
            cf_error_set(err, "key_exists", "key_id", "private key \"%s\" already exists", key_id);
        } else {
            cf_log_error("could not store private key \"%s\": %s", key_id, cf_pg_errstr(self->pg));
            cf_error_set(err, "database_error", "", "could not store private key \"%s\"", key_id);
        }
        return -1;
    }
    PQclear(res);
    *options_out = json_object();
    if (!*options_out) {
        cf_error_set(err, "internal", "", "out of memory");
        return -1;
    }
    return 0;
}

static unsigned char *s_db_read(cf_keystore_t *self, const char *key_id, size_t *len,
                                cf_error_t *err)
{
    if (!self->pg) {
        cf_error_set(err, "database_error", "", "key backend \"db\" has no database connection");
        return NULL;
    }
    const char *values[] = {key_id};
    PGresult *res = cf_pg_exec_params(self->pg, "SELECT pkcs8 FROM private_keys WHERE id = $1", 1,
                                      values, NULL, NULL, 1);
    if (!res) {
        cf_log_error("could not read private key \"%s\": %s", key_id, cf_pg_errstr(self->pg));
        cf_error_set(err, "database_error", "", "could not read private key from the database");
        return NULL;
    }
    unsigned char *data = NULL;
    if (PQntuples(res) != 1) {
        cf_error_set(err, "key_not_found", "", "no row for it in table \"private_keys\"");
    } else {
        size_t n = (size_t)PQgetlength(res, 0, 0);
        data = malloc(n + 1);
        if (data) {
            memcpy(data, PQgetvalue(res, 0, 0), n);
            *len = n;
        } else {
            cf_error_set(err, "internal", "", "out of memory");
        }
        /* libpq's copy may be an unencrypted key (allow_unencrypted_db): wipe it. */
        OPENSSL_cleanse(PQgetvalue(res, 0, 0), n);
    }
    PQclear(res);
    return data;
}

/* ---------------------------------------------------------------- store and load */

int cf_keystore_store(cf_keystore_t *self, const char *backend, const char *key_id,
                      const EVP_PKEY *key, const char *password, json_t **options_out,
                      cf_error_t *err)
{
    unsigned char *der = NULL;
    size_t len = 0;
    int rc = -1;
    *options_out = NULL;
    if (!s_known_backend(backend, err) || !s_valid_id(key_id, err))
        return -1;
    bool encrypted = password && *password;
    bool db = strcmp(backend, "db") == 0;
    /* A database is dumped, replicated and backed up far more widely than a key directory:
     * an unencrypted key there leaks with every copy. */
    if (db && !encrypted && !cf_config_get_bool(self->cfg, "keys", "allow_unencrypted_db", false)) {
        cf_error_set(err, "password_required", "password",
                     "key backend \"db\" requires a password (unless keys.allow_unencrypted_db "
                     "is set)");
        return -1;
    }
    if (cf_key_to_pkcs8(key, password, &der, &len, err) != 0)
        goto out;
    if (db)
        rc = s_db_store(self, key_id, der, len, options_out, err);
    else
        rc = s_storages_store(self, key_id, der, len, encrypted, options_out, err);
    if (rc == 0) {
        if (!encrypted)
            cf_log_warn("private key \"%s\" stored unencrypted in backend \"%s\"", key_id, backend);
        else
            cf_log_info("stored private key \"%s\" in backend \"%s\"", key_id, backend);
    }
out:
    if (rc != 0)
        s_error_key(err, "store", key_id);
    cf_key_der_free(&der, len);
    return rc;
}

/* Decode DATA, telling whether it was encrypted. A first attempt without a password costs
 * nothing and says which it is, so that the cache knows whether to check passwords. */
static EVP_PKEY *s_decode(const unsigned char *data, size_t len, const char *password,
                          bool *encrypted, cf_error_t *err)
{
    cf_error_t first;
    cf_error_clear(&first);
    *encrypted = false;
    EVP_PKEY *key = cf_key_from_pkcs8(data, len, NULL, &first);
    if (key)
        return key;
    if (strcmp(first.code, "wrong_password") != 0) {
        if (err)
            *err = first;
        return NULL;
    }
    *encrypted = true;
    if (!password) {
        if (err)
            *err = first;
        return NULL;
    }
    return cf_key_from_pkcs8(data, len, password, err);
}

EVP_PKEY *cf_keystore_load(cf_keystore_t *self, const char *backend, const char *key_id,
                           const json_t *options, const cf_password_t *password, cf_error_t *err)
{
    if (!s_known_backend(backend, err) || !s_valid_id(key_id, err))
        return NULL;
    const char *pw = cf_password_value(password);

    s_entry_t *hit = s_cache_find(self, backend, key_id);
    if (hit) {
        if (hit->encrypted) {
            unsigned char mac[S_MAC_LEN];
            if (!pw) {
                cf_error_set(err, "wrong_password", "password",
                             "could not load private key \"%s\": private key is encrypted and "
                             "no password was given",
                             key_id);
                return NULL;
            }
            if (s_mac(self, pw, mac) != 0 || CRYPTO_memcmp(mac, hit->pw_mac, S_MAC_LEN) != 0) {
                cf_error_set(err, "wrong_password", "password",
                             "could not load private key \"%s\": could not decrypt private "
                             "key: wrong password",
                             key_id);
                return NULL;
            }
        }
        EVP_PKEY_up_ref(hit->key);
        return hit->key;
    }

    size_t len = 0;
    unsigned char *data = strcmp(backend, "db") == 0
                              ? s_db_read(self, key_id, &len, err)
                              : s_storages_read(self, key_id, options, &len, err);
    if (!data) {
        s_error_key(err, "load", key_id);
        return NULL;
    }
    bool encrypted = false;
    EVP_PKEY *key = s_decode(data, len, pw, &encrypted, err);
    OPENSSL_cleanse(data, len);
    free(data);
    if (!key) {
        s_error_key(err, "load", key_id);
        return NULL;
    }

    s_entry_t *e = calloc(1, sizeof *e);
    if (e) {
        e->backend = strdup(backend);
        e->key_id = strdup(key_id);
        e->encrypted = encrypted;
    }
    if (!e || !e->backend || !e->key_id || (encrypted && s_mac(self, pw, e->pw_mac) != 0)) {
        /* Not cached is not fatal: the key is still good for this job. */
        if (e)
            s_entry_free(e);
        cf_log_warn("could not cache private key \"%s\"", key_id);
        ERR_clear_error();
        return key;
    }
    EVP_PKEY_up_ref(key);
    e->key = key;
    e->next = self->cache;
    self->cache = e;
    cf_log_info("loaded %s private key \"%s\" from backend \"%s\" (password from %s)",
                cf_key_type_name(key) ? cf_key_type_name(key) : "unknown", key_id, backend,
                encrypted ? cf_password_source(password) : "none: not encrypted");
    return key;
}

bool cf_keystore_usable(cf_keystore_t *self, const char *backend, const char *key_id,
                        const json_t *options, const cf_password_t *password, cf_error_t *err)
{
    EVP_PKEY *key = cf_keystore_load(self, backend, key_id, options, password, err);
    EVP_PKEY_free(key);
    return key != NULL;
}

void cf_keystore_forget(cf_keystore_t *self, const char *backend, const char *key_id)
{
    for (s_entry_t **pp = &self->cache; *pp; pp = &(*pp)->next) {
        s_entry_t *e = *pp;
        if (strcmp(e->backend, backend) == 0 && strcmp(e->key_id, key_id) == 0) {
            *pp = e->next;
            s_entry_free(e);
            return;
        }
    }
}

size_t cf_keystore_cached(cf_keystore_t *self)
{
    size_t n = 0;
    for (s_entry_t *e = self->cache; e; e = e->next)
        n++;
    return n;
}
