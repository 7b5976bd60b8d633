/* cf_ca: load certificate authorities and answer django-ca's read-side questions. */
#include "cf_ca.h"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static const char *const s_sign_columns[] = {
    "sign_authority_information_access", "sign_certificate_policies",
    "sign_crl_distribution_points", "sign_issuer_alternative_name", NULL};

/* The hex text of a bytea column as row_to_json shows it: "\\x3082..". */
static X509 *s_der_from_json(const json_t *v)
{
    const char *hex = json_string_value(v);
    if (!hex || strncmp(hex, "\\x", 2) != 0)
        return NULL;
    hex += 2;
    size_t n = strlen(hex) / 2;
    unsigned char *der = malloc(n ? n : 1);
    if (!der)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int hi = OPENSSL_hexchar2int((unsigned char)hex[2 * i]);
        int lo = OPENSSL_hexchar2int((unsigned char)hex[2 * i + 1]);
        if (hi < 0 || lo < 0) {
            free(der);
            return NULL;
        }
        der[i] = (unsigned char)(hi << 4 | lo);
    }
    const unsigned char *p = der;
    X509 *cert = d2i_X509(NULL, &p, (long)n);
    free(der);
    return cert;
}

static int64_t s_time(const json_t *v)
{
    /* row_to_json gives timestamptz as ISO 8601 with an offset: "2026-11-23T15:00:00+00:00". */
    const char *s = json_string_value(v);
    if (!s)
        return 0;
    struct tm tm = {0};
    const char *rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
    if (!rest)
        return 0;
    int64_t t = (int64_t)timegm(&tm);
    while (*rest == '.' || (*rest >= '0' && *rest <= '9'))
        rest++;
    if (*rest == '+' || *rest == '-') {
        int hh = 0, mm = 0;
        sscanf(rest + 1, "%2d:%2d", &hh, &mm);
        int off = hh * 3600 + mm * 60;
        t += *rest == '+' ? -off : off;
    }
    return t;
}

static void s_copy(char *dst, size_t len, const json_t *v)
{
    snprintf(dst, len, "%s", json_is_string(v) ? json_string_value(v) : "");
}

static cf_ca_t *s_load(cf_pg_t *pg, const char *sql, const char *param, const char *what,
                       cf_error_t *err)
{
    const char *values[1] = {param};
    PGresult *res = cf_pg_exec_params(pg, sql, 1, values, NULL, NULL, 0);
    if (!res) {
        cf_error_set(err, "unavailable", "", "could not load certificate authority: %s",
                     cf_pg_errstr(pg));
        return NULL;
    }
    if (PQntuples(res) != 1) {
        PQclear(res);
        cf_error_set(err, "unknown_ca", "ca", "certificate authority \"%s\" does not exist", what);
        return NULL;
    }
    json_error_t jerr;
    json_t *row = json_loads(PQgetvalue(res, 0, 0), 0, &jerr);
    PQclear(res);
    cf_ca_t *self = calloc(1, sizeof *self);
    if (!row || !self) {
        json_decref(row);
        free(self);
        cf_error_set(err, "internal", "", "could not read certificate authority \"%s\"", what);
        return NULL;
    }
    self->row = row;
    self->id = json_integer_value(json_object_get(row, "id"));
    s_copy(self->name, sizeof self->name, json_object_get(row, "name"));
    s_copy(self->serial, sizeof self->serial, json_object_get(row, "serial"));
    self->cert = s_der_from_json(json_object_get(row, "der"));
    self->parent_id = json_integer_value(json_object_get(row, "parent_id"));
    s_copy(self->key_backend, sizeof self->key_backend, json_object_get(row, "key_backend"));
    self->key_backend_options = json_incref(json_object_get(row, "key_backend_options"));
    s_copy(self->key_type, sizeof self->key_type, json_object_get(row, "key_type"));
    s_copy(self->algorithm, sizeof self->algorithm, json_object_get(row, "algorithm"));
    json_t *pl = json_object_get(row, "path_length");
    self->path_length = json_is_integer(pl) ? (int)json_integer_value(pl) : -1;
    self->sign_extensions = json_array();
    for (const char *const *c = s_sign_columns; *c; c++) {
        json_t *ext = json_object_get(row, *c);
        if (json_is_object(ext))
            json_array_append(self->sign_extensions, ext);
    }
    json_t *host = json_object_get(row, "default_hostname");
    self->default_hostname = json_is_string(host) ? strdup(json_string_value(host)) : NULL;
    self->enabled = json_is_true(json_object_get(row, "enabled"));
    self->revoked = json_is_true(json_object_get(row, "revoked"));
    self->acme_enabled = json_is_true(json_object_get(row, "acme_enabled"));
    self->crl_shards = (int)json_integer_value(json_object_get(row, "crl_shards"));
    self->ocsp_response_validity =
        (int)json_integer_value(json_object_get(row, "ocsp_response_validity"));
    self->ocsp_responder_key_validity =
        (int)json_integer_value(json_object_get(row, "ocsp_responder_key_validity"));
    self->valid_from = s_time(json_object_get(row, "valid_from"));
    self->expires = s_time(json_object_get(row, "expires"));
    if (!self->cert) {
        cf_ca_destroy(&self);
        cf_error_set(err, "internal", "ca", "certificate of \"%s\" does not parse", what);
        return NULL;
    }
    return self;
}

cf_ca_t *cf_ca_load(cf_pg_t *pg, const char *name, cf_error_t *err)
{
    return s_load(pg, "SELECT row_to_json(c)::text FROM certificate_authorities c WHERE name = $1",
                  name, name, err);
}

cf_ca_t *cf_ca_load_id(cf_pg_t *pg, int64_t id, cf_error_t *err)
{
    char text[32];
    snprintf(text, sizeof text, "%lld", (long long)id);
    return s_load(
        pg, "SELECT row_to_json(c)::text FROM certificate_authorities c WHERE id = $1::bigint",
        text, text, err);
}

void cf_ca_destroy(cf_ca_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    cf_ca_t *self = *self_p;
    X509_free(self->cert);
    json_decref(self->key_backend_options);
    json_decref(self->sign_extensions);
    json_decref(self->row);
    free(self->default_hostname);
    free(self);
    *self_p = NULL;
}

void cf_ca_key_id(const cf_ca_t *self, char *out, size_t len)
{
    snprintf(out, len, "ca-%s-%s", self->name, self->serial);
}

STACK_OF(X509) * cf_ca_bundle(cf_pg_t *pg, const cf_ca_t *self, cf_error_t *err)
{
    STACK_OF(X509) *chain = sk_X509_new_null();
    X509_up_ref(self->cert);
    sk_X509_insert(chain, self->cert, 0);
    int64_t parent = self->parent_id;
    for (int depth = 0; parent && depth < 32; depth++) {
        cf_ca_t *p = cf_ca_load_id(pg, parent, err);
        if (!p) {
            sk_X509_pop_free(chain, X509_free);
            return NULL;
        }
        X509_up_ref(p->cert);
        sk_X509_insert(chain, p->cert, 0);
        parent = p->parent_id;
        cf_ca_destroy(&p);
    }
    return chain;
}

int64_t cf_ca_root_id(cf_pg_t *pg, const cf_ca_t *self, cf_error_t *err)
{
    int64_t id = self->id, parent = self->parent_id;
    for (int depth = 0; parent && depth < 32; depth++) {
        cf_ca_t *p = cf_ca_load_id(pg, parent, err);
        if (!p)
            return -1;
        id = p->id;
        parent = p->parent_id;
        cf_ca_destroy(&p);
    }
    return id;
}

int cf_ca_max_path_length(cf_pg_t *pg, const cf_ca_t *self, cf_error_t *err)
{
    /* Each level above SELF uses one step of that CA's allowance. */
    int best = self->path_length;
    int64_t parent = self->parent_id;
    for (int depth = 1; parent && depth < 32; depth++) {
        cf_ca_t *p = cf_ca_load_id(pg, parent, err);
        if (!p)
            break;
        if (p->path_length >= 0) {
            int allowed = p->path_length - depth;
            if (best < 0 || allowed < best)
                best = allowed;
        }
        parent = p->parent_id;
        cf_ca_destroy(&p);
    }
    return best;
}

bool cf_ca_allows_intermediate(cf_pg_t *pg, const cf_ca_t *self)
{
    cf_error_t err;
    int max = cf_ca_max_path_length(pg, self, &err);
    return max < 0 || max > 0;
}

int cf_ca_check_usable(const cf_ca_t *self, int64_t now, cf_error_t *err)
{
    if (!self->enabled) {
        cf_error_set(err, "ca_disabled", "ca", "certificate authority \"%s\" is disabled",
                     self->name);
        return -1;
    }
    if (self->revoked) {
        cf_error_set(err, "ca_revoked", "ca", "certificate authority \"%s\" is revoked",
                     self->name);
        return -1;
    }
    if (now >= self->expires) {
        cf_error_set(err, "ca_expired", "ca", "certificate authority \"%s\" has expired",
                     self->name);
        return -1;
    }
    if (now < self->valid_from) {
        cf_error_set(err, "ca_not_yet_valid", "ca", "certificate authority \"%s\" is not yet valid",
                     self->name);
        return -1;
    }
    return 0;
}

char *cf_serial_hex(const ASN1_INTEGER *serial)
{
    BIGNUM *bn = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = bn ? BN_bn2hex(bn) : NULL;
    BN_free(bn);
    if (!hex)
        return NULL;
    char *out = strdup(hex);
    OPENSSL_free(hex);
    return out;
}

EVP_PKEY *cf_ca_private_key(const cf_ca_t *self, cf_config_t *cfg, cf_keystore_t *keystore,
                            const char *job_password, cf_error_t *err)
{
    char key_id[160];
    cf_ca_key_id(self, key_id, sizeof key_id);
    cf_password_t *pw = cf_password_resolve(cfg, key_id, job_password, err);
    if (!pw)
        return NULL;
    EVP_PKEY *key =
        cf_keystore_load(keystore, self->key_backend, key_id, self->key_backend_options, pw, err);
    cf_password_free(&pw);
    if (!key && strcmp(err->code, "wrong_password") == 0)
        snprintf(err->field, sizeof err->field, "params.password");
    return key;
}

char *cf_ca_url_issuer(const char *host, const char *ca_name)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "http://%s/ca/%s.der", host, ca_name);
    return strdup(buf);
}

char *cf_ca_url_crl(const char *host, const char *ca_name, int shard)
{
    char buf[1024];
    if (shard < 0)
        snprintf(buf, sizeof buf, "http://%s/crl/%s.crl", host, ca_name);
    else
        snprintf(buf, sizeof buf, "http://%s/crl/%s/%d.crl", host, ca_name, shard);
    return strdup(buf);
}

char *cf_ca_url_crl_ca(const char *host, const char *ca_name)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "http://%s/crl/%s/ca.crl", host, ca_name);
    return strdup(buf);
}

char *cf_ca_url_ocsp(const char *host, const char *ca_name)
{
    char buf[1024];
    snprintf(buf, sizeof buf, "http://%s/ocsp/%s/", host, ca_name);
    return strdup(buf);
}
