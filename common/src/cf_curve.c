/* cf_curve: a process's CURVE keys, the grants of client and worker keys, and the broker's
 * table of them (docs/security.md). */
#include "cf_curve.h"

#include <czmq.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "cf_log.h"
#include "cf_msgpack.h"

#define S_ZAP_DOMAIN "certfleet"
#define S_KEY_TXT    40 /* a Z85 CURVE key */
#define S_CA_MAX     64 /* longest CA name */

/* ---- a process's keys -------------------------------------------------------------------- */

struct _cf_curve_t {
    cf_curve_side_t side;           /* client (DEALER) or server (the broker's ROUTER) */
    bool insecure;                  /* plain TCP: nothing is applied */
    zcert_t *cert;                  /* own certificate, with its secret key */
    char server_key[S_KEY_TXT + 1]; /* client side: the broker's public key */
    char *clients_dir;              /* server side: the allow-list directory */
};

static bool s_z85_key_valid(const char *txt)
{
    uint8_t bin[32];
    return txt && strlen(txt) == S_KEY_TXT && zmq_z85_decode(bin, txt) != NULL;
}

/* Load a certificate with its secret key from PATH. NULL with ERR. */
static zcert_t *s_load_secret(const char *path, const char *setting, char *err, size_t errlen)
{
    struct stat st;
    errno = 0;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "could not read [curve] %s \"%s\": %s", setting, path,
                 errno ? strerror(errno) : "not a file");
        return NULL;
    }
    zcert_t *cert = zcert_load(path);
    if (!cert) {
        snprintf(err, errlen, "[curve] %s \"%s\" is not a CURVE certificate", setting, path);
        return NULL;
    }
    static const uint8_t zero[32] = {0};
    if (memcmp(zcert_secret_key(cert), zero, sizeof zero) == 0) {
        snprintf(err, errlen,
                 "[curve] %s \"%s\" holds no secret key (it is a public certificate; the secret "
                 "one is the .key file)",
                 setting, path);
        zcert_destroy(&cert);
        return NULL;
    }
    /* Why only a warning: a key readable by others is a mistake to fix, not a reason to
     * leave the fabric down. */
    if (st.st_mode & (S_IRWXG | S_IRWXO))
        cf_log_warn("secret key file \"%s\" can be read by other users (chmod 600 it)", path);
    return cert;
}

void cf_curve_destroy(cf_curve_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_curve_t *self = *self_p;
    zcert_destroy(&self->cert);
    free(self->clients_dir);
    free(self);
    *self_p = NULL;
}

cf_curve_t *cf_curve_new_client(const char *secret_key_file, const char *broker_public_key,
                                char *err, size_t errlen)
{
    if (!s_z85_key_valid(broker_public_key)) {
        snprintf(err, errlen, "the broker's public key must be 40 characters of Z85");
        return NULL;
    }
    zcert_t *cert = s_load_secret(secret_key_file, "secret_key_file", err, errlen);
    if (!cert)
        return NULL;
    cf_curve_t *self = calloc(1, sizeof *self);
    if (!self) {
        zcert_destroy(&cert);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->side = CF_CURVE_CLIENT;
    self->cert = cert;
    memcpy(self->server_key, broker_public_key, S_KEY_TXT + 1);
    return self;
}

/* The broker's public key from [curve] broker_public_key or broker_public_key_file. */
static int s_broker_key(cf_config_t *config, char out[S_KEY_TXT + 1], char *err, size_t errlen)
{
    const char *txt = cf_config_get(config, "curve", "broker_public_key", NULL);
    const char *file = cf_config_get(config, "curve", "broker_public_key_file", NULL);
    if (txt && *txt) {
        if (!s_z85_key_valid(txt)) {
            snprintf(err, errlen, "[curve] broker_public_key must be 40 characters of Z85");
            return -1;
        }
        memcpy(out, txt, S_KEY_TXT + 1);
        return 0;
    }
    if (!file || !*file) {
        snprintf(err, errlen,
                 "no CURVE keys: set [curve] secret_key_file and broker_public_key (or "
                 "broker_public_key_file), or [curve] insecure = true for plain TCP");
        return -1;
    }
    if (access(file, R_OK) != 0) {
        snprintf(err, errlen, "could not read [curve] broker_public_key_file \"%s\": %s", file,
                 strerror(errno));
        return -1;
    }
    zcert_t *cert = zcert_load(file);
    if (!cert) {
        snprintf(err, errlen, "[curve] broker_public_key_file \"%s\" is not a CURVE certificate",
                 file);
        return -1;
    }
    snprintf(out, S_KEY_TXT + 1, "%s", zcert_public_txt(cert));
    zcert_destroy(&cert);
    return 0;
}

cf_curve_t *cf_curve_new(cf_config_t *config, cf_curve_side_t side, char *err, size_t errlen)
{
    cf_curve_t *self = NULL;
    if (cf_config_get_bool(config, "curve", "insecure", false)) {
        self = calloc(1, sizeof *self);
        if (!self) {
            snprintf(err, errlen, "out of memory");
            return NULL;
        }
        self->side = side;
        self->insecure = true;
        return self;
    }
    const char *secret = cf_config_get(config, "curve", "secret_key_file", NULL);
    if (side == CF_CURVE_CLIENT) {
        char server_key[S_KEY_TXT + 1];
        if (!secret || !*secret) {
            snprintf(err, errlen,
                     "no CURVE keys: set [curve] secret_key_file and broker_public_key (or "
                     "broker_public_key_file), or [curve] insecure = true for plain TCP");
            return NULL;
        }
        if (s_broker_key(config, server_key, err, errlen) != 0)
            return NULL;
        return cf_curve_new_client(secret, server_key, err, errlen);
    }
    const char *dir = cf_config_get(config, "curve", "clients_dir", NULL);
    if (!secret || !*secret || !dir || !*dir) {
        snprintf(err, errlen,
                 "no CURVE keys: set [curve] secret_key_file and clients_dir, or [curve] "
                 "insecure = true for plain TCP");
        return NULL;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(err, errlen, "[curve] clients_dir \"%s\" is not a directory", dir);
        return NULL;
    }
    zcert_t *cert = s_load_secret(secret, "secret_key_file", err, errlen);
    if (!cert)
        return NULL;
    self = calloc(1, sizeof *self);
    if (self)
        self->clients_dir = strdup(dir);
    if (!self || !self->clients_dir) {
        zcert_destroy(&cert);
        cf_curve_destroy(&self);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    self->side = CF_CURVE_SERVER;
    self->cert = cert;
    return self;
}

bool cf_curve_insecure(const cf_curve_t *self)
{
    return self->insecure;
}

const char *cf_curve_public_key(const cf_curve_t *self)
{
    return self->cert ? zcert_public_txt(self->cert) : NULL;
}

const char *cf_curve_clients_dir(const cf_curve_t *self)
{
    return self->clients_dir;
}

int cf_curve_apply(const cf_curve_t *self, void *socket)
{
    if (self->insecure)
        return 0;
    zcert_apply(self->cert, socket);
    void *raw = zsock_resolve(socket);
    if (self->side == CF_CURVE_SERVER) {
        int on = 1;
        if (zmq_setsockopt(raw, ZMQ_CURVE_SERVER, &on, sizeof on) != 0)
            return -1;
        return zmq_setsockopt(raw, ZMQ_ZAP_DOMAIN, S_ZAP_DOMAIN, strlen(S_ZAP_DOMAIN));
    }
    return zmq_setsockopt(raw, ZMQ_CURVE_SERVERKEY, self->server_key, S_KEY_TXT);
}

/* ---- grants --------------------------------------------------------------------------------- */

struct _cf_grant_t {
    char *name;    /* who, for messages and logs */
    bool client;   /* may submit jobs */
    bool worker;   /* may serve jobs */
    char **types;  /* job type patterns: "cert.issue", "cert.*", "*" */
    size_t ntypes; /* how many */
    char **cas;    /* CA entries as written: names, "*", "@acme" */
    size_t ncas;   /* how many */
    bool all_cas;  /* "*" among them */
    bool acme;     /* "@acme" among them */
};

static void s_strv_free(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Split a comma list into trimmed, non-empty items. 0 or -1 (out of memory). */
static int s_split(const char *text, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (!text)
        return 0;
    size_t cap = 1;
    for (const char *p = text; *p; p++)
        cap += *p == ',';
    char **v = calloc(cap, sizeof *v);
    if (!v)
        return -1;
    const char *p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *a = p, *b = end;
        while (a < b && (*a == ' ' || *a == '\t'))
            a++;
        while (b > a && (b[-1] == ' ' || b[-1] == '\t'))
            b--;
        if (b > a) {
            v[*n] = strndup(a, (size_t)(b - a));
            if (!v[*n]) {
                s_strv_free(v, *n);
                return -1;
            }
            (*n)++;
        }
        p = *end ? end + 1 : end;
    }
    *out = v;
    return 0;
}

static bool s_type_pattern_valid(const char *p)
{
    size_t len = strlen(p);
    if (strcmp(p, "*") == 0)
        return true;
    if (len > 2 && len <= CF_JOB_TYPE_MAX && strcmp(p + len - 2, ".*") == 0) {
        /* A prefix is valid when a type could follow it: "crl.*" as "crl.x". */
        char probe[CF_JOB_TYPE_MAX + 1];
        memcpy(probe, p, len + 1);
        probe[len - 1] = 'x';
        return cf_job_type_valid(probe, len);
    }
    return cf_job_type_valid(p, len);
}

static bool s_ca_name_valid(const char *s, size_t len)
{
    if (len == 0 || len > S_CA_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-')))
            return false;
    }
    return true;
}

void cf_grant_destroy(cf_grant_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_grant_t *self = *self_p;
    free(self->name);
    s_strv_free(self->types, self->ntypes);
    s_strv_free(self->cas, self->ncas);
    free(self);
    *self_p = NULL;
}

cf_grant_t *cf_grant_new(const char *name, const char *role, const char *job_types, const char *cas,
                         char *err, size_t errlen)
{
    cf_grant_t *self = calloc(1, sizeof *self);
    char **roles = NULL;
    size_t nroles = 0;
    if (!self)
        goto oom;
    self->name = strdup(name && *name ? name : "?");
    if (!self->name || s_split(role, &roles, &nroles) != 0 ||
        s_split(job_types, &self->types, &self->ntypes) != 0 ||
        s_split(cas, &self->cas, &self->ncas) != 0)
        goto oom;
    if (nroles == 0) {
        snprintf(err, errlen, "key \"%s\" has no role (client, worker or \"client,worker\")",
                 self->name);
        goto fail;
    }
    for (size_t i = 0; i < nroles; i++) {
        if (strcmp(roles[i], "client") == 0)
            self->client = true;
        else if (strcmp(roles[i], "worker") == 0)
            self->worker = true;
        else {
            snprintf(err, errlen,
                     "key \"%s\": unknown role \"%s\" (client, worker or \"client,worker\")",
                     self->name, roles[i]);
            goto fail;
        }
    }
    for (size_t i = 0; i < self->ntypes; i++) {
        if (!s_type_pattern_valid(self->types[i])) {
            snprintf(err, errlen,
                     "key \"%s\": job type pattern \"%s\" is not a job type, a prefix like "
                     "\"cert.*\" or \"*\"",
                     self->name, self->types[i]);
            goto fail;
        }
    }
    for (size_t i = 0; i < self->ncas; i++) {
        const char *c = self->cas[i];
        if (strcmp(c, "*") == 0)
            self->all_cas = true;
        else if (strcmp(c, "@acme") == 0)
            self->acme = true;
        else if (!s_ca_name_valid(c, strlen(c))) {
            snprintf(err, errlen, "key \"%s\": \"%s\" is not a CA name, \"*\" or \"@acme\"",
                     self->name, c);
            goto fail;
        }
    }
    s_strv_free(roles, nroles);
    return self;
oom:
    snprintf(err, errlen, "out of memory");
fail:
    s_strv_free(roles, nroles);
    cf_grant_destroy(&self);
    return NULL;
}

const char *cf_grant_name(const cf_grant_t *self)
{
    return self->name;
}

bool cf_grant_is_client(const cf_grant_t *self)
{
    return self->client;
}

bool cf_grant_is_worker(const cf_grant_t *self)
{
    return self->worker;
}

bool cf_grant_allows_type(const cf_grant_t *self, const char *type)
{
    /* Why always: status and ping prove the path works and reveal no CA data. */
    if (strcmp(type, "broker.status") == 0 || strcmp(type, "sys.ping") == 0)
        return true;
    for (size_t i = 0; i < self->ntypes; i++) {
        const char *p = self->types[i];
        size_t len = strlen(p);
        if (strcmp(p, "*") == 0 || strcmp(p, type) == 0)
            return true;
        /* "cert.*" is the prefix "cert." and matches "cert.issue", not "cert" or "certx.y". */
        if (len > 2 && strcmp(p + len - 2, ".*") == 0 && strncmp(p, type, len - 1) == 0 &&
            type[len - 1] != '\0')
            return true;
    }
    return false;
}

cf_grant_ca_t cf_grant_ca(const cf_grant_t *self, const char *ca)
{
    if (self->all_cas)
        return CF_GRANT_CA_ALLOW;
    for (size_t i = 0; i < self->ncas; i++)
        if (strcmp(self->cas[i], ca) == 0)
            return CF_GRANT_CA_ALLOW;
    return self->acme ? CF_GRANT_CA_ACME : CF_GRANT_CA_DENY;
}

typedef struct {
    const char *field;           /* "params.ca", "params.name", "params.parent" */
    const msgpack_object *value; /* its value (never nil) */
} s_ca_param_t;

/* The params of JOB that name a CA: ca in every job type, name and parent in ca.init and
 * ca.import. A nil value counts as absent. Returns how many (at most 3). */
static size_t s_ca_params(const cf_job_t *job, s_ca_param_t out[3])
{
    static const char *const keys[] = {"ca", "name", "parent"};
    const msgpack_object *params = cf_job_params(job);
    const char *type = cf_job_type(job);
    bool names_ca = strcmp(type, "ca.init") == 0 || strcmp(type, "ca.import") == 0;
    size_t n = 0;
    if (!params || params->type != MSGPACK_OBJECT_MAP)
        return 0;
    for (size_t i = 0; i < 3; i++) {
        if (i > 0 && !names_ca)
            break;
        const msgpack_object *v = cf_msgpack_map_get(params, keys[i]);
        if (!v || v->type == MSGPACK_OBJECT_NIL)
            continue;
        out[n].field = i == 0 ? "params.ca" : i == 1 ? "params.name" : "params.parent";
        out[n].value = v;
        n++;
    }
    return n;
}

/* The CA name in V, copied into OUT; false when V is not a str holding a CA name. */
static bool s_ca_text(const msgpack_object *v, char out[S_CA_MAX + 1])
{
    if (v->type != MSGPACK_OBJECT_STR || !s_ca_name_valid(v->via.str.ptr, v->via.str.size))
        return false;
    memcpy(out, v->via.str.ptr, v->via.str.size);
    out[v->via.str.size] = '\0';
    return true;
}

/* Refuse a restricted client's cert.revoke that names no CA: it could reach any CA's
 * certificates. True (ERR set) when refused. */
static bool s_needs_ca(const char *client, const cf_job_t *job, size_t nparams, cf_error_t *err)
{
    if (nparams > 0 || strcmp(cf_job_type(job), "cert.revoke") != 0)
        return false;
    cf_error_set(err, "forbidden", "params.ca",
                 "client \"%s\" may use only some CAs and must name the CA in params.ca", client);
    return true;
}

int cf_grant_authorize(const cf_grant_t *self, const cf_job_t *job, bool *acme_check,
                       cf_error_t *err)
{
    const char *type = cf_job_type(job);
    *acme_check = false;
    if (!self->client) {
        cf_error_set(err, "forbidden", "", "key \"%s\" may not submit jobs (it is not a client)",
                     self->name);
        return -1;
    }
    if (!cf_grant_allows_type(self, type)) {
        cf_error_set(err, "forbidden", "type", "client \"%s\" may not submit jobs of type \"%s\"",
                     self->name, type);
        return -1;
    }
    if (self->all_cas || strcmp(type, "broker.status") == 0 || strcmp(type, "sys.ping") == 0)
        return 0;
    s_ca_param_t params[3];
    size_t n = s_ca_params(job, params);
    if (s_needs_ca(self->name, job, n, err))
        return -1;
    for (size_t i = 0; i < n; i++) {
        char ca[S_CA_MAX + 1];
        if (!s_ca_text(params[i].value, ca)) {
            cf_error_set(err, "forbidden", params[i].field,
                         "client \"%s\" may use only some CAs and %s does not name one", self->name,
                         params[i].field);
            return -1;
        }
        cf_grant_ca_t verdict = cf_grant_ca(self, ca);
        if (verdict == CF_GRANT_CA_DENY) {
            cf_error_set(err, "forbidden", params[i].field, "client \"%s\" may not use CA \"%s\"",
                         self->name, ca);
            return -1;
        }
        if (verdict == CF_GRANT_CA_ACME)
            *acme_check = true;
    }
    return 0;
}

int cf_grant_pack_auth(const cf_grant_t *self, msgpack_sbuffer *buf)
{
    msgpack_packer pk;
    msgpack_packer_init(&pk, buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 2);
    cf_msgpack_pack_cstr(&pk, "client");
    cf_msgpack_pack_cstr(&pk, self->name);
    cf_msgpack_pack_cstr(&pk, "cas");
    msgpack_pack_array(&pk, self->ncas);
    for (size_t i = 0; i < self->ncas; i++)
        cf_msgpack_pack_cstr(&pk, self->cas[i]);
    return 0;
}

/* True when the array CAS holds the str TEXT. */
static bool s_array_has(const msgpack_object *cas, const char *text)
{
    size_t len = strlen(text);
    for (uint32_t i = 0; i < cas->via.array.size; i++) {
        const msgpack_object *o = &cas->via.array.ptr[i];
        if (o->type == MSGPACK_OBJECT_STR && o->via.str.size == len &&
            memcmp(o->via.str.ptr, text, len) == 0)
            return true;
    }
    return false;
}

int cf_curve_check_auth(const void *frame, size_t len, const cf_job_t *job, cf_curve_acme_fn *acme,
                        void *arg, cf_error_t *err)
{
    msgpack_unpacked u;
    cf_error_t perr = {0};
    if (cf_msgpack_unpack(frame, len, NULL, &u, &perr) != 0) {
        cf_error_set(err, "forbidden", "", "the broker's authorization of this job is unreadable");
        return -1;
    }
    int rc = -1;
    const msgpack_object *cas = cf_msgpack_map_get(&u.data, "cas");
    char *client = cf_msgpack_strdup(cf_msgpack_map_get(&u.data, "client"));
    if (!client || !cas || cas->type != MSGPACK_OBJECT_ARRAY) {
        cf_error_set(err, "forbidden", "", "the broker's authorization of this job is unreadable");
        goto out;
    }
    if (s_array_has(cas, "*")) {
        rc = 0;
        goto out;
    }
    s_ca_param_t params[3];
    size_t n = s_ca_params(job, params);
    if (s_needs_ca(client, job, n, err))
        goto out;
    for (size_t i = 0; i < n; i++) {
        char ca[S_CA_MAX + 1];
        if (!s_ca_text(params[i].value, ca)) {
            cf_error_set(err, "forbidden", params[i].field,
                         "client \"%s\" may use only some CAs and %s does not name one", client,
                         params[i].field);
            goto out;
        }
        if (s_array_has(cas, ca))
            continue;
        int enabled = s_array_has(cas, "@acme") ? acme(arg, ca) : 0;
        if (enabled < 0) {
            cf_error_set(err, "unavailable", "", "the database is unavailable");
            rc = -2;
            goto out;
        }
        if (enabled == 0) {
            cf_error_set(err, "forbidden", params[i].field,
                         "client \"%s\" may not use CA \"%s\" (only CAs with ACME enabled)", client,
                         ca);
            goto out;
        }
    }
    rc = 0;
out:
    free(client);
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* ---- the broker's grant table ------------------------------------------------------------- */

struct _cf_grants_t {
    char *dir;            /* the allow-list directory */
    zhashx_t *grants;     /* public key (Z85) -> cf_grant_t */
    uint64_t fingerprint; /* of the directory's names, sizes and times at the last load */
    bool loaded;          /* a load happened */
};

static void s_grant_free(void **item)
{
    cf_grant_destroy((cf_grant_t **)item);
}

cf_grants_t *cf_grants_new(const char *dir)
{
    cf_grants_t *self = calloc(1, sizeof *self);
    if (!self)
        return NULL;
    self->dir = strdup(dir);
    self->grants = zhashx_new();
    if (!self->dir || !self->grants) {
        cf_grants_destroy(&self);
        return NULL;
    }
    zhashx_set_destructor(self->grants, s_grant_free);
    return self;
}

void cf_grants_destroy(cf_grants_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_grants_t *self = *self_p;
    zhashx_destroy(&self->grants);
    free(self->dir);
    free(self);
    *self_p = NULL;
}

static uint64_t s_fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *p = data;
    for (size_t i = 0; i < len; i++) {
        h ^= p[i];
        h *= 1099511628211ULL;
    }
    return h;
}

/* The files of the directory that count as certificates: regular, not hidden (as czmq's
 * certificate store, which zauth uses, reads them). */
static bool s_cert_file(const char *dir, const struct dirent *e, char *path, size_t len,
                        struct stat *st)
{
    if (e->d_name[0] == '.')
        return false;
    snprintf(path, len, "%s/%s", dir, e->d_name);
    return stat(path, st) == 0 && S_ISREG(st->st_mode);
}

/* A fingerprint of what the directory holds; order-independent (sum of per-file hashes). */
static int s_fingerprint(const char *dir, uint64_t *out)
{
    DIR *d = opendir(dir);
    if (!d)
        return -1;
    uint64_t sum = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (!s_cert_file(dir, e, path, sizeof path, &st))
            continue;
        uint64_t h = 14695981039346656037ULL;
        h = s_fnv(h, e->d_name, strlen(e->d_name));
        h = s_fnv(h, &st.st_size, sizeof st.st_size);
        h = s_fnv(h, &st.st_mtim, sizeof st.st_mtim);
        h = s_fnv(h, &st.st_ino, sizeof st.st_ino);
        sum += h;
    }
    closedir(d);
    *out = sum;
    return 0;
}

/* Read at most this much of a file in clients_dir: a certificate is a few hundred bytes. */
#define S_CERT_MAX 65536

/* Add the grant of the public certificate PATH (file name FILE) to TABLE, or log why not.
 * The file is parsed here rather than with zcert_load, which leaks on a file that is not a
 * certificate (czmq 4.2); the format is the same zconfig text. */
static void s_load_grant(zhashx_t *table, const char *path, const char *file)
{
    FILE *in = fopen(path, "r");
    char *text = in ? calloc(1, S_CERT_MAX + 1) : NULL;
    size_t n = text ? fread(text, 1, S_CERT_MAX, in) : 0;
    if (in)
        fclose(in);
    zconfig_t *root = n > 0 && n < S_CERT_MAX ? zconfig_str_load(text) : NULL;
    free(text);
    const char *key = root ? zconfig_get(root, "curve/public-key", NULL) : NULL;
    if (!s_z85_key_valid(key)) {
        cf_log_warn("skipped \"%s\" in [curve] clients_dir: not a CURVE certificate", path);
        zconfig_destroy(&root);
        return;
    }
    char err[256] = "";
    const char *name = zconfig_get(root, "metadata/name", NULL);
    cf_grant_t *grant =
        cf_grant_new(name && *name ? name : file, zconfig_get(root, "metadata/role", NULL),
                     zconfig_get(root, "metadata/job_types", NULL),
                     zconfig_get(root, "metadata/cas", NULL), err, sizeof err);
    if (!grant)
        cf_log_warn("key in \"%s\" has no rights: %s", path, err);
    else if (zhashx_insert(table, key, grant) != 0) {
        cf_log_warn("skipped \"%s\": its key is already in [curve] clients_dir", path);
        cf_grant_destroy(&grant);
    }
    zconfig_destroy(&root);
}

int cf_grants_refresh(cf_grants_t *self)
{
    uint64_t fp;
    if (s_fingerprint(self->dir, &fp) != 0) {
        cf_log_warn("could not read [curve] clients_dir \"%s\": %s (keeping %zu keys)", self->dir,
                    strerror(errno), zhashx_size(self->grants));
        return -1;
    }
    if (self->loaded && fp == self->fingerprint)
        return 0;
    DIR *d = opendir(self->dir);
    if (!d)
        return -1;
    zhashx_t *fresh = zhashx_new();
    if (!fresh) {
        closedir(d);
        return -1;
    }
    zhashx_set_destructor(fresh, s_grant_free);
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        char path[4096];
        struct stat st;
        if (!s_cert_file(self->dir, e, path, sizeof path, &st))
            continue;
        s_load_grant(fresh, path, e->d_name);
    }
    closedir(d);
    zhashx_destroy(&self->grants);
    self->grants = fresh;
    self->fingerprint = fp;
    self->loaded = true;
    cf_log_info("loaded %zu keys from [curve] clients_dir \"%s\"", zhashx_size(fresh), self->dir);
    return 1;
}

const cf_grant_t *cf_grants_lookup(cf_grants_t *self, const char *public_key)
{
    return public_key ? zhashx_lookup(self->grants, public_key) : NULL;
}

size_t cf_grants_size(cf_grants_t *self)
{
    return zhashx_size(self->grants);
}

int cf_curve_check_client(cf_config_t *config, const char *program)
{
    char err[512] = "";
    cf_curve_t *curve = cf_curve_new(config, CF_CURVE_CLIENT, err, sizeof err);
    if (!curve) {
        cf_log_error("%s cannot reach the broker: %s", program, err);
        return -1;
    }
    cf_curve_destroy(&curve);
    return 0;
}
