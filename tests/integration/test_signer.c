/* The signer end to end: a real broker and signer processes, PostgreSQL and Redis on loopback.
 * CA hierarchies of every key type that `openssl verify -x509_strict` accepts, with the
 * extensions of the profile and the CA's URLs; path length and name constraints; bad input
 * refused with its specific error and nothing written; and a signer killed with SIGKILL in the
 * middle of 5,000 issuances: every job answered once, one certificate per job, no serial twice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <openssl/dsa.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cf_client.h"
#include "cf_msgpack.h"
#include "cf_pg.h"
#include "cf_test.h"
#include "cf_test_fleet.h"
#include "cf_test_jobs.h"
#include "cf_x509_ext.h"

#define S_HOST "127.0.0.1:8080"

typedef struct {
    cf_test_fleet_t fleet; /* folder, database, config, keys, endpoint */
    pid_t broker;          /* broker pid */
    pid_t signers[4];      /* signer pids (0: not running) */
    int nsigners;          /* how many slots used */
    cf_client_t *client;   /* for one job at a time */
} s_fleet_t;

/* ---- the fleet ---------------------------------------------------------------------- */

static void s_write_config(s_fleet_t *f)
{
    assert_int_equal(cf_test_fleet_write_config(&f->fleet, "[broker]\nqueue_max = 10000\n"
                                                           "[ca]\ndefault_hostname = " S_HOST "\n"),
                     0);
}

static pid_t s_start(s_fleet_t *f, const char *prog, const char *log)
{
    pid_t pid = cf_test_fleet_start(&f->fleet, prog, log);
    assert_true(pid > 0);
    return pid;
}

/* Wait until the broker reports N workers. */
static void s_wait_workers(s_fleet_t *f, int n)
{
    if (cf_test_fleet_wait_workers(&f->fleet, n, 10000) != 0)
        fail_msg("broker never reported %d workers", n);
}

static int s_setup(void **state)
{
    s_fleet_t *f = calloc(1, sizeof *f);
    assert_int_equal(cf_test_fleet_init(&f->fleet, "signer"), 0);
    *state = f;
    return 0;
}

static int s_teardown(void **state)
{
    s_fleet_t *f = *state;
    cf_client_destroy(&f->client);
    for (int i = 0; i < f->nsigners; i++)
        if (f->signers[i] > 0)
            cf_test_kill(f->signers[i], SIGTERM);
    if (f->broker > 0)
        cf_test_kill(f->broker, SIGTERM);
    /* A process that a sanitizer stopped, or that leaked, says so in its log: that fails. */
    int reports = cf_test_fleet_cleanup(&f->fleet);
    free(f);
    assert_int_equal(reports, 0);
    return 0;
}

static void s_start_fleet(s_fleet_t *f, int nsigners)
{
    s_write_config(f);
    f->broker = s_start(f, "certfleet-broker", "broker.log");
    for (int i = 0; i < nsigners; i++) {
        char log[32];
        snprintf(log, sizeof log, "signer%d.log", i);
        f->signers[i] = s_start(f, "certfleet-signer", log);
    }
    f->nsigners = nsigners;
    s_wait_workers(f, nsigners);
    f->client = cf_client_new(f->fleet.endpoint);
    /* Key generation (DSA parameters, RSA) may take seconds; a resend is harmless (same id). */
    cf_client_set_timeout(f->client, 10000);
    cf_client_set_attempts(f->client, 6);
}

static long s_count(s_fleet_t *f, const char *sql)
{
    cf_pg_t *pg = cf_pg_new(f->fleet.conninfo);
    PGresult *res = cf_pg_exec_params(pg, sql, 0, NULL, NULL, NULL, 0);
    if (!res)
        fail_msg("%s: %s", sql, cf_pg_errstr(pg));
    long n = atol(PQgetvalue(res, 0, 0));
    PQclear(res);
    cf_pg_destroy(&pg);
    return n;
}

static void s_sql(s_fleet_t *f, const char *sql)
{
    cf_pg_t *pg = cf_pg_new(f->fleet.conninfo);
    if (cf_pg_exec(pg, sql) != 0)
        fail_msg("%s: %s", sql, cf_pg_errstr(pg));
    cf_pg_destroy(&pg);
}

/* ---- jobs --------------------------------------------------------------------------- */

/* One job; PARAMS is consumed. Caller owns the reply. */
static cf_reply_t *s_call(s_fleet_t *f, const char *type, json_t *params, const void *csr,
                          size_t csr_len)
{
    return cf_test_call(f->client, type, params, csr, csr_len);
}

#define s_assert_ok cf_test_assert_ok

/* The certificate in the reply's "der" (caller owns). */
static X509 *s_reply_cert(const cf_reply_t *r)
{
    const msgpack_object *der = cf_msgpack_map_get(cf_reply_result(r), "der");
    assert_non_null(der);
    assert_int_equal(der->type, MSGPACK_OBJECT_BIN);
    const unsigned char *p = (const unsigned char *)der->via.bin.ptr;
    X509 *cert = d2i_X509(NULL, &p, (long)der->via.bin.size);
    assert_non_null(cert);
    return cert;
}

/* The reply's str KEY (caller frees). */
static char *s_reply_str(const cf_reply_t *r, const char *key)
{
    const msgpack_object *o = cf_msgpack_map_get(cf_reply_result(r), key);
    assert_non_null(o);
    char *s = cf_msgpack_strdup(o);
    assert_non_null(s);
    return s;
}

/* ca.init that must succeed; the CA certificate (caller owns). */
static X509 *s_ca_init(s_fleet_t *f, json_t *params)
{
    char what[128];
    snprintf(what, sizeof what, "ca.init \"%s\"",
             json_string_value(json_object_get(params, "name")));
    cf_reply_t *r = s_call(f, "ca.init", params, NULL, 0);
    s_assert_ok(r, what);
    X509 *cert = s_reply_cert(r);
    cf_reply_destroy(&r);
    return cert;
}

/* ---- keys, CSRs, files ---------------------------------------------------------------- */

/* A key of TYPE: "RSA", "DSA", "EC" (PARAM the curve), "ED25519", "ED448". */
static EVP_PKEY *s_keygen(const char *type, const char *param)
{
    EVP_PKEY *key = NULL;
    if (strcmp(type, "RSA") == 0) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    } else if (strcmp(type, "EC") == 0) {
        key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", param);
    } else if (strcmp(type, "DSA") == 0) {
        /* DSA needs its domain parameters first. */
        EVP_PKEY_CTX *pctx = EVP_PKEY_CTX_new_from_name(NULL, "DSA", NULL);
        EVP_PKEY *params = NULL;
        assert_non_null(pctx);
        assert_int_equal(EVP_PKEY_paramgen_init(pctx), 1);
        assert_int_equal(EVP_PKEY_CTX_set_dsa_paramgen_bits(pctx, 2048), 1);
        assert_int_equal(EVP_PKEY_paramgen(pctx, &params), 1);
        EVP_PKEY_CTX *kctx = EVP_PKEY_CTX_new_from_pkey(NULL, params, NULL);
        assert_int_equal(EVP_PKEY_keygen_init(kctx), 1);
        assert_int_equal(EVP_PKEY_keygen(kctx, &key), 1);
        EVP_PKEY_CTX_free(kctx);
        EVP_PKEY_free(params);
        EVP_PKEY_CTX_free(pctx);
    } else {
        key = EVP_PKEY_Q_keygen(NULL, NULL, type);
    }
    assert_non_null(key);
    return key;
}

/* A DER CSR for CN signed by KEY (caller frees with OPENSSL_free). */
static unsigned char *s_csr(EVP_PKEY *key, const char *cn, size_t *len)
{
    X509_REQ *req = X509_REQ_new();
    assert_int_equal(X509_REQ_set_version(req, 0), 1);
    X509_NAME *name = X509_REQ_get_subject_name(req);
    assert_int_equal(X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8,
                                                (const unsigned char *)"certfleet test", -1, -1, 0),
                     1);
    assert_int_equal(
        X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, (const unsigned char *)cn, -1, -1, 0),
        1);
    assert_int_equal(X509_REQ_set_pubkey(req, key), 1);
    /* EdDSA signs without a separate digest. */
    const EVP_MD *md =
        EVP_PKEY_is_a(key, "ED25519") || EVP_PKEY_is_a(key, "ED448") ? NULL : EVP_sha256();
    assert_true(X509_REQ_sign(req, key, md) > 0);
    unsigned char *der = NULL;
    int n = i2d_X509_REQ(req, &der);
    assert_true(n > 0);
    X509_REQ_free(req);
    *len = (size_t)n;
    return der;
}

static void s_write_pem(const char *dir, const char *file, X509 *cert, char *path, size_t len)
{
    snprintf(path, len, "%s/%s", dir, file);
    FILE *out = fopen(path, "w");
    assert_non_null(out);
    assert_int_equal(PEM_write_X509(out, cert), 1);
    fclose(out);
}

/* `openssl verify -x509_strict` of LEAF against ROOT and INTER; its exit status. */
static int s_openssl_verify(s_fleet_t *f, const char *tag, X509 *root, X509 *inter, X509 *leaf)
{
    char rp[400], ip[400], lp[400], file[128], cmd[1400];
    snprintf(file, sizeof file, "%s-root.pem", tag);
    s_write_pem(f->fleet.dir, file, root, rp, sizeof rp);
    snprintf(file, sizeof file, "%s-inter.pem", tag);
    s_write_pem(f->fleet.dir, file, inter, ip, sizeof ip);
    snprintf(file, sizeof file, "%s-leaf.pem", tag);
    s_write_pem(f->fleet.dir, file, leaf, lp, sizeof lp);
    snprintf(cmd, sizeof cmd,
             "openssl verify -x509_strict -CAfile '%s' -untrusted '%s' '%s' >'%s/%s-verify.out' "
             "2>&1",
             rp, ip, lp, f->fleet.dir, tag);
    int status = system(cmd);
    if (status != 0) {
        snprintf(cmd, sizeof cmd, "cat '%s/%s-verify.out' >&2", f->fleet.dir, tag);
        if (system(cmd) != 0)
            fprintf(stderr, "could not show the output of openssl verify\n");
    }
    return status;
}

/* Files in the key storage: a refused ca.init must leave no key behind. */
static int s_key_files(s_fleet_t *f)
{
    DIR *d = opendir(f->fleet.keys);
    if (!d)
        return 0;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(d);
    return n;
}

/* ---- extensions ----------------------------------------------------------------------- */

static json_t *s_exts(X509 *cert)
{
    cf_error_t err = {0};
    json_t *exts = cf_extensions_from_cert(cert, &err);
    if (!exts)
        fail_msg("cf_extensions_from_cert: %s at \"%s\": %s", err.code, err.field, err.message);
    return exts;
}

static json_t *s_find(const json_t *exts, const char *type)
{
    json_t *e = cf_extensions_find(exts, type);
    if (!e) {
        char *text = json_dumps(exts, JSON_COMPACT);
        fail_msg("no \"%s\" in %s", type, text);
    }
    return e;
}

static void s_assert_json(const json_t *have, const char *want_text)
{
    json_error_t jerr;
    json_t *want = json_loads(want_text, 0, &jerr);
    assert_non_null(want);
    if (!json_equal(have, want)) {
        char *text = json_dumps(have, JSON_COMPACT);
        fail_msg("have %s, want %s", text, want_text);
    }
    json_decref(want);
}

/* The URI of the access description with ACCESS_METHOD in an AIA model, or NULL. */
static const char *s_aia_uri(const json_t *aia, const char *access_method)
{
    size_t i;
    json_t *d;
    json_array_foreach(json_object_get(aia, "value"), i, d)
    {
        if (strcmp(json_string_value(json_object_get(d, "access_method")), access_method) == 0)
            return json_string_value(
                json_object_get(json_object_get(d, "access_location"), "value"));
    }
    return NULL;
}

/* The first full_name URI of a CRL distribution points model. */
static const char *s_crldp_uri(const json_t *crldp)
{
    json_t *dp = json_array_get(json_object_get(crldp, "value"), 0);
    json_t *gn = json_array_get(json_object_get(dp, "full_name"), 0);
    assert_string_equal(json_string_value(json_object_get(gn, "type")), "URI");
    return json_string_value(json_object_get(gn, "value"));
}

/* ---- 1. every key type: root -> intermediate -> leaf, verified by openssl ------------- */

typedef struct {
    const char *tag;       /* CA name part */
    const char *key_type;  /* ca.init key_type */
    int key_size;          /* RSA/DSA */
    const char *curve;     /* EC */
    const char *algorithm; /* NULL: the default / none */
    int md_nid;            /* the digest the signatures must use (NID_undef: EdDSA) */
    const char *gen_type;  /* s_keygen type of the CSR's key */
    const char *gen_param; /* s_keygen parameter */
} s_case_t;

static void s_check_leaf(X509 *leaf, X509 *inter, const char *inter_name, const char *cn)
{
    json_t *exts = s_exts(leaf);
    json_t *e = s_find(exts, "key_usage");
    assert_true(json_is_true(json_object_get(e, "critical")));
    s_assert_json(json_object_get(e, "value"),
                  "[\"digital_signature\", \"key_agreement\", \"key_encipherment\"]");
    e = s_find(exts, "extended_key_usage");
    assert_false(json_is_true(json_object_get(e, "critical")));
    s_assert_json(json_object_get(e, "value"), "[\"1.3.6.1.5.5.7.3.1\"]");
    e = s_find(exts, "basic_constraints");
    assert_true(json_is_true(json_object_get(e, "critical")));
    s_assert_json(json_object_get(e, "value"), "{\"ca\": false, \"path_length\": null}");
    /* AKI is the intermediate's SKI. */
    json_t *inter_exts = s_exts(inter);
    const char *ski =
        json_string_value(json_object_get(s_find(inter_exts, "subject_key_identifier"), "value"));
    assert_non_null(ski);
    e = s_find(exts, "authority_key_identifier");
    assert_string_equal(
        json_string_value(json_object_get(json_object_get(e, "value"), "key_identifier")), ski);
    s_find(exts, "subject_key_identifier");
    /* The CN is in the SAN. */
    e = s_find(exts, "subject_alternative_name");
    json_t *dns = json_pack("{s:s, s:s}", "type", "DNS", "value", cn);
    bool found = false;
    size_t i;
    json_t *gn;
    json_array_foreach(json_object_get(e, "value"), i, gn) found = found || json_equal(gn, dns);
    json_decref(dns);
    assert_true(found);
    /* The intermediate's URLs under default_hostname. */
    char want[256];
    snprintf(want, sizeof want, "http://" S_HOST "/crl/%s.crl", inter_name);
    assert_string_equal(s_crldp_uri(s_find(exts, "crl_distribution_points")), want);
    e = s_find(exts, "authority_information_access");
    snprintf(want, sizeof want, "http://" S_HOST "/ocsp/%s/", inter_name);
    assert_non_null(s_aia_uri(e, "1.3.6.1.5.5.7.48.1"));
    assert_string_equal(s_aia_uri(e, "1.3.6.1.5.5.7.48.1"), want);
    snprintf(want, sizeof want, "http://" S_HOST "/ca/%s.der", inter_name);
    assert_non_null(s_aia_uri(e, "1.3.6.1.5.5.7.48.2"));
    assert_string_equal(s_aia_uri(e, "1.3.6.1.5.5.7.48.2"), want);
    json_decref(inter_exts);
    json_decref(exts);
}

/* True when this OpenSSL can verify signatures of CERT's algorithm: OpenSSL 3.0 signs with
 * ecdsa-with-SHA3-* but only 3.2 added those OIDs to the table that verification looks up. */
static bool s_sig_known(X509 *cert)
{
    int mdnid, pknid;
    return OBJ_find_sigid_algs(X509_get_signature_nid(cert), &mdnid, &pknid) == 1;
}

/* The signature of CERT checked with ISSUER's key and MD over the TBS, the way a verifier
 * does, for algorithms that OpenSSL's X.509 verification does not know (see s_sig_known). */
static void s_verify_by_hand(X509 *cert, X509 *issuer, const EVP_MD *md, const char *what)
{
    const ASN1_BIT_STRING *sig;
    const X509_ALGOR *alg;
    X509_get0_signature(&sig, &alg, cert);
    unsigned char *tbs = NULL;
    int n = i2d_re_X509_tbs(cert, &tbs);
    assert_true(n > 0);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_int_equal(EVP_DigestVerifyInit(ctx, NULL, md, NULL, X509_get0_pubkey(issuer)), 1);
    if (EVP_DigestVerify(ctx, sig->data, (size_t)sig->length, tbs, (size_t)n) != 1)
        fail_msg("%s: signature does not verify", what);
    EVP_MD_CTX_free(ctx);
    OPENSSL_free(tbs);
    /* X509_check_issued would compare the signature algorithm with the key: unknown here. */
    assert_int_equal(X509_NAME_cmp(X509_get_issuer_name(cert), X509_get_subject_name(issuer)), 0);
}

static void s_assert_md(X509 *cert, int md_nid, const char *what)
{
    int mdnid = NID_undef, pknid = NID_undef;
    int sig = X509_get_signature_nid(cert);
    if (sig == NID_ecdsa_with_SHA3_256 && !s_sig_known(cert))
        mdnid = NID_sha3_256;
    else if (OBJ_find_sigid_algs(sig, &mdnid, &pknid) != 1)
        fail_msg("%s: unknown signature algorithm %s", what, OBJ_nid2sn(sig));
    if (mdnid != md_nid)
        fail_msg("%s signed with %s, want %s", what, OBJ_nid2sn(mdnid), OBJ_nid2sn(md_nid));
}

static void s_run_case(s_fleet_t *f, const s_case_t *k)
{
    char root_name[64], inter_name[64], cn[128];
    snprintf(root_name, sizeof root_name, "root-%s", k->tag);
    snprintf(inter_name, sizeof inter_name, "inter-%s", k->tag);
    snprintf(cn, sizeof cn, "www.%s.example.com", k->tag);
    json_t *p =
        json_pack("{s:s, s:s, s:s}", "name", root_name, "subject", "", "key_type", k->key_type);
    json_t *subject = json_pack("[{s:s, s:s}, {s:s, s:s}]", "oid", "O", "value", "certfleet test",
                                "oid", "CN", "value", root_name);
    json_object_set_new(p, "subject", subject);
    if (k->key_size)
        json_object_set_new(p, "key_size", json_integer(k->key_size));
    if (k->curve)
        json_object_set_new(p, "elliptic_curve", json_string(k->curve));
    if (k->algorithm)
        json_object_set_new(p, "algorithm", json_string(k->algorithm));
    json_t *ip = json_deep_copy(p);
    X509 *root = s_ca_init(f, p);
    json_object_set_new(ip, "name", json_string(inter_name));
    char subject_text[128];
    snprintf(subject_text, sizeof subject_text, "/O=certfleet test/CN=%s", inter_name);
    json_object_set_new(ip, "subject", json_string(subject_text));
    json_object_set_new(ip, "parent", json_string(root_name));
    X509 *inter = s_ca_init(f, ip);
    s_assert_md(root, k->md_nid, root_name);
    s_assert_md(inter, k->md_nid, inter_name);
    /* The intermediate carries the root's URLs (CA-scope CRL). */
    json_t *iexts = s_exts(inter);
    char want[256];
    snprintf(want, sizeof want, "http://" S_HOST "/crl/%s/ca.crl", root_name);
    assert_string_equal(s_crldp_uri(s_find(iexts, "crl_distribution_points")), want);
    json_t *bc = s_find(iexts, "basic_constraints");
    assert_true(json_is_true(json_object_get(bc, "critical")));
    assert_true(json_is_true(json_object_get(json_object_get(bc, "value"), "ca")));
    json_decref(iexts);

    EVP_PKEY *key = s_keygen(k->gen_type, k->gen_param);
    size_t csr_len;
    unsigned char *csr = s_csr(key, cn, &csr_len);
    json_t *lp = json_pack("{s:s, s:s}", "ca", inter_name, "profile", "webserver");
    if (k->algorithm)
        json_object_set_new(lp, "algorithm", json_string(k->algorithm));
    cf_reply_t *r = s_call(f, "cert.issue", lp, csr, csr_len);
    s_assert_ok(r, "cert.issue");
    X509 *leaf = s_reply_cert(r);
    /* The reply's chain: the intermediate first, then the root. */
    const msgpack_object *chain = cf_msgpack_map_get(cf_reply_result(r), "chain");
    assert_non_null(chain);
    assert_int_equal(chain->via.array.size, 2);
    const unsigned char *cp = (const unsigned char *)chain->via.array.ptr[0].via.bin.ptr;
    X509 *c0 = d2i_X509(NULL, &cp, (long)chain->via.array.ptr[0].via.bin.size);
    assert_non_null(c0);
    assert_int_equal(X509_cmp(c0, inter), 0);
    X509_free(c0);
    char *serial = s_reply_str(r, "serial");
    cf_reply_destroy(&r);
    s_assert_md(leaf, k->md_nid, "leaf");
    assert_int_equal(X509_check_private_key(leaf, key), 1);
    if (s_sig_known(leaf)) {
        assert_int_equal(s_openssl_verify(f, k->tag, root, inter, leaf), 0);
    } else {
        fprintf(stderr, "%s: this OpenSSL cannot verify %s: checking the signatures by hand\n",
                k->tag, OBJ_nid2sn(X509_get_signature_nid(leaf)));
        s_verify_by_hand(root, root, EVP_get_digestbynid(k->md_nid), root_name);
        s_verify_by_hand(inter, root, EVP_get_digestbynid(k->md_nid), inter_name);
        s_verify_by_hand(leaf, inter, EVP_get_digestbynid(k->md_nid), "leaf");
    }
    s_check_leaf(leaf, inter, inter_name, cn);
    /* The row is there, under the intermediate, with the reply's serial. */
    char sql[400];
    snprintf(sql, sizeof sql,
             "SELECT count(*) FROM certificates c JOIN certificate_authorities a ON a.id = "
             "c.ca_id WHERE a.name = '%s' AND c.serial = '%s' AND c.cn = '%s'",
             inter_name, serial, cn);
    assert_int_equal(s_count(f, sql), 1);
    free(serial);
    OPENSSL_free(csr);
    EVP_PKEY_free(key);
    X509_free(leaf);
    X509_free(inter);
    X509_free(root);
}

static void test_every_key_type_verifies(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 1);
    static const s_case_t cases[] = {
        {"rsa-sha256", "RSA", 2048, NULL, "SHA-256", NID_sha256, "RSA", NULL},
        {"rsa-sha3-256", "RSA", 2048, NULL, "SHA3/256", NID_sha3_256, "RSA", NULL},
        {"rsa-default", "RSA", 2048, NULL, NULL, NID_sha512, "EC", "P-256"},
        {"dsa", "DSA", 2048, NULL, NULL, NID_sha256, "DSA", NULL},
        {"p256-sha384", "EC", 0, "secp256r1", "SHA-384", NID_sha384, "EC", "P-256"},
        {"p256-sha3-256", "EC", 0, "secp256r1", "SHA3/256", NID_sha3_256, "EC", "P-256"},
        {"p384-sha512", "EC", 0, "secp384r1", "SHA-512", NID_sha512, "EC", "P-384"},
        {"p384-sha256", "EC", 0, "secp384r1", "SHA-256", NID_sha256, "RSA", NULL},
        {"ed25519", "Ed25519", 0, NULL, NULL, NID_undef, "ED25519", NULL},
        {"ed448", "Ed448", 0, NULL, NULL, NID_undef, "ED448", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        s_run_case(f, &cases[i]);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificate_authorities"), 20);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), 10);
}

/* ---- 2. path length and name constraints --------------------------------------------- */

static void s_expect_error(s_fleet_t *f, const char *type, json_t *params, const void *csr,
                           size_t csr_len, const char *code, const char *field);

static json_t *s_ec_ca(const char *name, const char *parent, int path_length)
{
    json_t *p = json_pack("{s:s, s:s, s:s}", "name", name, "subject", "", "key_type", "EC");
    char subject[128];
    snprintf(subject, sizeof subject, "CN=%s,O=certfleet test", name);
    json_object_set_new(p, "subject", json_string(subject));
    if (parent)
        json_object_set_new(p, "parent", json_string(parent));
    if (path_length >= 0)
        json_object_set_new(p, "path_length", json_integer(path_length));
    return p;
}

static void s_assert_path_length(X509 *cert, int path_length)
{
    json_t *exts = s_exts(cert);
    json_t *bc = s_find(exts, "basic_constraints");
    assert_true(json_is_true(json_object_get(bc, "critical")));
    json_t *v = json_object_get(bc, "value");
    assert_true(json_is_true(json_object_get(v, "ca")));
    if (path_length < 0)
        assert_true(json_is_null(json_object_get(v, "path_length")));
    else
        assert_int_equal(json_integer_value(json_object_get(v, "path_length")), path_length);
    json_decref(exts);
}

static void test_path_length_and_name_constraints(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 1);
    /* Path length 0: no intermediate below it at all. */
    X509 *root0 = s_ca_init(f, s_ec_ca("root0", NULL, 0));
    s_assert_path_length(root0, 0);
    s_expect_error(f, "ca.init", s_ec_ca("below0", "root0", -1), NULL, 0, "path_length_exceeded",
                   "params.parent");
    s_expect_error(f, "ca.init", s_ec_ca("below0", "root0", 0), NULL, 0, "path_length_exceeded",
                   "params.parent");
    /* Path length 1: one level, whose own path length must be 0. */
    X509 *root1 = s_ca_init(f, s_ec_ca("root1", NULL, 1));
    s_assert_path_length(root1, 1);
    s_expect_error(f, "ca.init", s_ec_ca("inter1", "root1", 1), NULL, 0, "path_length_exceeded",
                   "params.path_length");
    s_expect_error(f, "ca.init", s_ec_ca("inter1", "root1", 5), NULL, 0, "path_length_exceeded",
                   "params.path_length");
    X509 *inter1 = s_ca_init(f, s_ec_ca("inter1", "root1", 0));
    s_assert_path_length(inter1, 0);
    /* Two levels below a root of path length 1 are too many, even without a path length. */
    s_expect_error(f, "ca.init", s_ec_ca("deep", "inter1", -1), NULL, 0, "path_length_exceeded",
                   "params.parent");
    /* Without a path length below a root of path length 1: still only one level. */
    X509 *inter1b = s_ca_init(f, s_ec_ca("inter1b", "root1", -1));
    s_expect_error(f, "ca.init", s_ec_ca("deep", "inter1b", -1), NULL, 0, "path_length_exceeded",
                   "params.parent");

    /* Name constraints given in "extensions" end up in the CA certificate. */
    json_t *p = s_ec_ca("nc-root", NULL, -1);
    json_error_t jerr;
    json_t *nc =
        json_loads("[{\"type\": \"name_constraints\", \"value\": {"
                   "\"permitted_subtrees\": [{\"type\": \"DNS\", \"value\": \"example.com\"}],"
                   "\"excluded_subtrees\": [{\"type\": \"DNS\", \"value\": "
                   "\"bad.example.com\"}]}}]",
                   0, &jerr);
    assert_non_null(nc);
    json_object_set_new(p, "extensions", nc);
    X509 *nc_root = s_ca_init(f, p);
    json_t *exts = s_exts(nc_root);
    json_t *e = s_find(exts, "name_constraints");
    assert_true(json_is_true(json_object_get(e, "critical")));
    s_assert_json(json_object_get(e, "value"),
                  "{\"permitted_subtrees\": [{\"type\": \"DNS\", \"value\": \"example.com\"}],"
                  "\"excluded_subtrees\": [{\"type\": \"DNS\", \"value\": \"bad.example.com\"}]}");
    json_decref(exts);
    /* ... and OpenSSL enforces them on what is issued below. */
    X509 *nc_inter = s_ca_init(f, s_ec_ca("nc-inter", "nc-root", -1));
    EVP_PKEY *key = s_keygen("EC", "P-256");
    static const struct {
        const char *cn;
        int ok;
    } leaves[] = {{"www.example.com", 1}, {"www.bad.example.com", 0}, {"www.example.org", 0}};
    for (size_t i = 0; i < sizeof leaves / sizeof leaves[0]; i++) {
        size_t len;
        unsigned char *csr = s_csr(key, leaves[i].cn, &len);
        /* PEM text this time: the other spelling of "csr". */
        X509_REQ *req = NULL;
        const unsigned char *cp = csr;
        assert_non_null(req = d2i_X509_REQ(NULL, &cp, (long)len));
        BIO *bio = BIO_new(BIO_s_mem());
        assert_int_equal(PEM_write_bio_X509_REQ(bio, req), 1);
        char *pem;
        long pem_len = BIO_get_mem_data(bio, &pem);
        json_t *lp = json_pack("{s:s, s:s%}", "ca", "nc-inter", "csr", pem, (size_t)pem_len);
        cf_reply_t *r = s_call(f, "cert.issue", lp, NULL, 0);
        s_assert_ok(r, "cert.issue below name constraints");
        X509 *leaf = s_reply_cert(r);
        cf_reply_destroy(&r);
        char tag[32];
        snprintf(tag, sizeof tag, "nc%zu", i);
        int status = s_openssl_verify(f, tag, nc_root, nc_inter, leaf);
        if (leaves[i].ok)
            assert_int_equal(status, 0);
        else
            assert_int_not_equal(status, 0);
        X509_free(leaf);
        BIO_free(bio);
        X509_REQ_free(req);
        OPENSSL_free(csr);
    }
    EVP_PKEY_free(key);
    X509_free(nc_inter);
    X509_free(nc_root);
    X509_free(inter1b);
    X509_free(inter1);
    X509_free(root1);
    X509_free(root0);
}

/* ---- 3. bad input: the specific error, and nothing written ----------------------------- */

/* Run a job that must fail with CODE at FIELD and write nothing: no CA, no certificate, no
 * key file, no ok row; at most its own error row in job_results. PARAMS is consumed. */
static void s_expect_error(s_fleet_t *f, const char *type, json_t *params, const void *csr,
                           size_t csr_len, const char *code, const char *field)
{
    long cas = s_count(f, "SELECT count(*) FROM certificate_authorities");
    long certs = s_count(f, "SELECT count(*) FROM certificates");
    long oks = s_count(f, "SELECT count(*) FROM job_results WHERE status = 'ok'");
    long rows = s_count(f, "SELECT count(*) FROM job_results");
    int keys = s_key_files(f);
    char *text = json_dumps(params, JSON_COMPACT);
    cf_reply_t *r = s_call(f, type, params, csr, csr_len);
    if (cf_reply_ok(r))
        fail_msg("%s %s succeeded, want %s at \"%s\"", type, text, code, field);
    const cf_error_t *e = cf_reply_error(r);
    if (strcmp(e->code, code) != 0 || strcmp(e->field, field) != 0)
        fail_msg("%s %s: %s at \"%s\" (%s), want %s at \"%s\"", type, text, e->code, e->field,
                 e->message, code, field);
    cf_reply_destroy(&r);
    free(text);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificate_authorities"), cas);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), certs);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results WHERE status = 'ok'"), oks);
    long rows_after = s_count(f, "SELECT count(*) FROM job_results");
    assert_true(rows_after == rows || rows_after == rows + 1);
    assert_int_equal(s_key_files(f), keys);
}

static json_t *s_issue(const char *ca)
{
    return json_pack("{s:s}", "ca", ca);
}

/* Good and bad jobs sent at once, so that the signer runs them in shared transactions: each
 * gets its own answer, and exactly the good ones are written. */
static void s_mixed_batch(s_fleet_t *f, const unsigned char *csr, size_t len)
{
    enum { N = 30 };
    static const char *const want[] = {NULL, "unknown_field", "invalid_csr",
                                       NULL, "ca_disabled",   "unknown_ca"};
    const int kinds = (int)(sizeof want / sizeof want[0]);
    long certs = s_count(f, "SELECT count(*) FROM certificates");
    long oks = s_count(f, "SELECT count(*) FROM job_results WHERE status = 'ok'");
    long errors = s_count(f, "SELECT count(*) FROM job_results WHERE status = 'error'");
    unsigned char *broken = malloc(len);
    memcpy(broken, csr, len);
    broken[len - 1] ^= 0x01;
    char ids[N][2 * CF_JOB_ID_SIZE + 1];
    int good = 0;
    for (int i = 0; i < N; i++) {
        int kind = i % kinds;
        char subject[64];
        snprintf(subject, sizeof subject, "CN=batch-%d.example.com", i);
        json_t *p = json_pack("{s:s, s:s}", "ca",
                              kind == 4   ? "off"
                              : kind == 5 ? "nope"
                                          : "good",
                              "subject", subject);
        if (kind == 1)
            json_object_set_new(p, "colour", json_string("blue"));
        good += want[kind] == NULL;
        msgpack_sbuffer buf;
        msgpack_sbuffer_init(&buf);
        cf_test_pack_params(&buf, p, kind == 2 ? broken : csr, len);
        json_decref(p);
        uint8_t id[CF_JOB_ID_SIZE];
        assert_int_equal(cf_client_send(f->client, NULL, "cert.issue", buf.data, buf.size, 0, id),
                         0);
        cf_job_id_hex(id, ids[i]);
        msgpack_sbuffer_destroy(&buf);
    }
    free(broken);
    for (int n = 0; n < N; n++) {
        cf_reply_t *r = cf_client_recv(f->client, 30000);
        assert_non_null(r);
        char hex[2 * CF_JOB_ID_SIZE + 1];
        cf_job_id_hex(cf_reply_id(r), hex);
        int i = -1;
        for (int k = 0; k < N && i < 0; k++)
            if (strcmp(ids[k], hex) == 0)
                i = k;
        if (i < 0) {
            fail_msg("a reply for job %s: not sent, or answered before", hex);
            continue;
        }
        ids[i][0] = '\0'; /* answered */
        const char *code = want[i % kinds];
        if (!code)
            s_assert_ok(r, "good job among bad ones");
        else if (cf_reply_ok(r))
            fail_msg("job %d succeeded, want %s", i, code);
        else
            assert_string_equal(cf_reply_error(r)->code, code);
        cf_reply_destroy(&r);
    }
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), certs + good);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results WHERE status = 'ok'"),
                     oks + good);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results WHERE status = 'error'"),
                     errors + N - good);
}

static void test_bad_input_writes_nothing(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 1);
    X509 *root = s_ca_init(f, s_ec_ca("good", NULL, -1));
    json_t *p = s_ec_ca("locked", NULL, -1);
    json_object_set_new(p, "password", json_string("secret"));
    X509_free(s_ca_init(f, p));
    p = s_ec_ca("ed", NULL, -1);
    json_object_set_new(p, "key_type", json_string("Ed25519"));
    X509_free(s_ca_init(f, p));
    X509_free(s_ca_init(f, s_ec_ca("off", NULL, -1)));
    s_sql(f, "UPDATE certificate_authorities SET enabled = false WHERE name = 'off'");
    time_t short_made = time(NULL);
    p = s_ec_ca("short", NULL, -1);
    json_object_set_new(p, "expires", json_integer((json_int_t)short_made + 2));
    X509_free(s_ca_init(f, p));

    EVP_PKEY *key = s_keygen("EC", "P-256");
    size_t len;
    unsigned char *csr = s_csr(key, "www.example.com", &len);

    /* cert.issue */
    unsigned char *broken = malloc(len);
    memcpy(broken, csr, len);
    broken[len - 1] ^= 0x01; /* the last byte of the signature */
    s_expect_error(f, "cert.issue", s_issue("good"), broken, len, "invalid_csr", "params.csr");
    s_expect_error(f, "cert.issue", s_issue("good"), "not a CSR", 9, "invalid_csr", "params.csr");
    s_expect_error(f, "cert.issue", s_issue("good"), csr, len - 1, "invalid_csr", "params.csr");
    free(broken);
    s_expect_error(f, "cert.issue", s_issue("nope"), csr, len, "unknown_ca", "params.ca");
    p = s_issue("good");
    json_object_set_new(p, "profile", json_string("nope"));
    s_expect_error(f, "cert.issue", p, csr, len, "unknown_profile", "params.profile");
    p = s_issue("good");
    json_object_set_new(p, "profile", json_string("../profiles/webserver"));
    s_expect_error(f, "cert.issue", p, csr, len, "unknown_profile", "params.profile");
    p = s_issue("locked");
    json_object_set_new(p, "password", json_string("wrong"));
    s_expect_error(f, "cert.issue", p, csr, len, "wrong_password", "params.password");
    s_expect_error(f, "cert.issue", s_issue("locked"), csr, len, "wrong_password",
                   "params.password");
    /* The right password works; the key is cached now, and the wrong one still fails. */
    p = s_issue("locked");
    json_object_set_new(p, "password", json_string("secret"));
    cf_reply_t *r = s_call(f, "cert.issue", p, csr, len);
    s_assert_ok(r, "cert.issue with the right password");
    cf_reply_destroy(&r);
    p = s_issue("locked");
    json_object_set_new(p, "password", json_string("wrong"));
    s_expect_error(f, "cert.issue", p, csr, len, "wrong_password", "params.password");
    s_expect_error(f, "cert.issue", s_issue("locked"), csr, len, "wrong_password",
                   "params.password");
    json_error_t jerr;
    p = s_issue("good");
    json_object_set_new(p, "extensions",
                        json_loads("[{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, "
                                   "\"path_length\": null}}]",
                                   0, &jerr));
    s_expect_error(f, "cert.issue", p, csr, len, "extension_not_allowed",
                   "params.extensions[0].type");
    p = s_issue("good");
    json_object_set_new(
        p, "extensions",
        json_loads("[{\"type\": \"key_usage\", \"value\": [\"digital_signature\"]}, {\"type\": "
                   "\"name_constraints\", \"value\": {\"permitted_subtrees\": [{\"type\": "
                   "\"DNS\", \"value\": \"example.com\"}]}}]",
                   0, &jerr));
    s_expect_error(f, "cert.issue", p, csr, len, "extension_not_allowed",
                   "params.extensions[1].type");
    p = s_issue("good");
    json_object_set_new(p, "expires", json_integer((json_int_t)time(NULL) + 20 * 365 * 86400LL));
    s_expect_error(f, "cert.issue", p, csr, len, "invalid_value", "params.expires");
    p = s_issue("ed");
    json_object_set_new(p, "algorithm", json_string("SHA-256"));
    s_expect_error(f, "cert.issue", p, csr, len, "invalid_value", "params.algorithm");
    p = s_issue("good");
    json_object_set_new(p, "algorithm", json_string("MD5"));
    s_expect_error(f, "cert.issue", p, csr, len, "invalid_value", "params.algorithm");
    p = s_issue("good");
    json_object_set_new(p, "bogus", json_integer(1));
    s_expect_error(f, "cert.issue", p, csr, len, "unknown_field", "params.bogus");
    s_expect_error(f, "cert.issue", s_issue("good"), NULL, 0, "missing_field", "params.csr");
    s_expect_error(f, "cert.issue", json_object(), csr, len, "missing_field", "params.ca");
    s_expect_error(f, "cert.issue", s_issue("off"), csr, len, "ca_disabled", "params.ca");

    /* ca.init */
    s_expect_error(f, "ca.init", s_ec_ca("good", NULL, -1), NULL, 0, "ca_exists", "params.name");
    s_expect_error(f, "ca.init", s_ec_ca("child", "nope", -1), NULL, 0, "unknown_ca",
                   "params.parent");
    p = s_ec_ca("child", "locked", -1);
    json_object_set_new(p, "parent_password", json_string("wrong"));
    s_expect_error(f, "ca.init", p, NULL, 0, "wrong_password", "params.parent_password");
    s_expect_error(f, "ca.init", s_ec_ca("child", "off", -1), NULL, 0, "ca_disabled",
                   "params.parent");
    p = s_ec_ca("child", "good", -1);
    json_object_set_new(p, "extensions",
                        json_loads("[{\"type\": \"basic_constraints\", \"value\": {\"ca\": true, "
                                   "\"path_length\": 3}}]",
                                   0, &jerr));
    s_expect_error(f, "ca.init", p, NULL, 0, "extension_not_allowed", "params.extensions");
    p = s_ec_ca("child", "good", -1);
    json_object_set_new(p, "expires", json_integer((json_int_t)time(NULL) + 20 * 365 * 86400LL));
    s_expect_error(f, "ca.init", p, NULL, 0, "invalid_value", "params.expires");
    p = s_ec_ca("child", NULL, -1);
    json_object_set_new(p, "key_type", json_string("Ed25519"));
    json_object_set_new(p, "algorithm", json_string("SHA-256"));
    s_expect_error(f, "ca.init", p, NULL, 0, "invalid_value", "params.algorithm");
    p = s_ec_ca("child", "ed", -1);
    json_object_set_new(p, "algorithm", json_string("SHA-256"));
    s_expect_error(f, "ca.init", p, NULL, 0, "invalid_value", "params.algorithm");
    p = s_ec_ca("bad name!", NULL, -1);
    s_expect_error(f, "ca.init", p, NULL, 0, "invalid_value", "params.name");
    p = s_ec_ca("child", NULL, -1);
    json_object_set_new(p, "bogus", json_true());
    s_expect_error(f, "ca.init", p, NULL, 0, "unknown_field", "params.bogus");
    p = s_ec_ca("child", NULL, -1);
    json_object_del(p, "name");
    s_expect_error(f, "ca.init", p, NULL, 0, "missing_field", "params.name");
    p = s_ec_ca("child", NULL, -1);
    json_object_del(p, "subject");
    s_expect_error(f, "ca.init", p, NULL, 0, "missing_field", "params.subject");
    /* Key parameters and backends: the errors name the job's field. */
    p = s_ec_ca("child", NULL, -1);
    json_object_set_new(p, "key_type", json_string("ElGamal"));
    s_expect_error(f, "ca.init", p, NULL, 0, "invalid_value", "params.key_type");
    p = s_ec_ca("child", NULL, -1);
    json_object_set_new(p, "key_type", json_string("RSA"));
    json_object_set_new(p, "key_size", json_integer(3000));
    s_expect_error(f, "ca.init", p, NULL, 0, "invalid_value", "params.key_size");
    p = s_ec_ca("child", NULL, -1);
    json_object_set_new(p, "elliptic_curve", json_string("secp1r1"));
    s_expect_error(f, "ca.init", p, NULL, 0, "invalid_value", "params.elliptic_curve");
    p = s_ec_ca("child", NULL, -1);
    json_object_set_new(p, "key_backend", json_string("hsm"));
    s_expect_error(f, "ca.init", p, NULL, 0, "unknown_backend", "params.key_backend");
    p = s_ec_ca("child", NULL, -1);
    json_object_set_new(p, "key_backend", json_string("db"));
    s_expect_error(f, "ca.init", p, NULL, 0, "password_required", "params.password");
    assert_int_equal(s_count(f, "SELECT count(*) FROM private_keys"), 0);
    /* The "db" backend with a password: the key is in PostgreSQL and signs with it. */
    p = s_ec_ca("in-db", NULL, -1);
    json_object_set_new(p, "key_backend", json_string("db"));
    json_object_set_new(p, "password", json_string("db secret"));
    X509_free(s_ca_init(f, p));
    assert_int_equal(s_count(f, "SELECT count(*) FROM private_keys"), 1);
    s_expect_error(f, "cert.issue", s_issue("in-db"), csr, len, "wrong_password",
                   "params.password");
    p = s_issue("in-db");
    json_object_set_new(p, "password", json_string("db secret"));
    r = s_call(f, "cert.issue", p, csr, len);
    s_assert_ok(r, "cert.issue with a key in the database");
    cf_reply_destroy(&r);

    s_mixed_batch(f, csr, len);

    /* The short-lived CA has expired by now (and the signer's CA cache has turned over). */
    time_t wait_until = short_made + 3;
    while (time(NULL) < wait_until)
        usleep(100 * 1000);
    s_expect_error(f, "cert.issue", s_issue("short"), csr, len, "ca_expired", "params.ca");
    s_expect_error(f, "ca.init", s_ec_ca("child", "short", -1), NULL, 0, "ca_expired",
                   "params.parent");
    /* An expiry set in the database takes effect too. */
    r = s_call(f, "cert.issue", s_issue("good"), csr, len);
    s_assert_ok(r, "cert.issue before expiry");
    cf_reply_destroy(&r);
    s_sql(f, "UPDATE certificate_authorities SET expires = now() - interval '1 day' "
             "WHERE name = 'good'");
    usleep(1100 * 1000); /* [signer] cache_ms */
    s_expect_error(f, "cert.issue", s_issue("good"), csr, len, "ca_expired", "params.ca");

    /* Only the good issuances were written. */
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), 3 + 10);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificate_authorities"), 6);
    OPENSSL_free(csr);
    EVP_PKEY_free(key);
    X509_free(root);
}

/* ---- 4. a signer killed during 5,000 issuances --------------------------------------- */

#define S_BULK_THREADS 2
#define S_BULK_JOBS    2500 /* per thread */
#define S_BULK_WINDOW  8

typedef struct {
    char id[2 * CF_JOB_ID_SIZE + 1]; /* job id, hex */
    char serial[48];                 /* the reply's serial ("" until answered) */
} s_issued_t;

typedef struct {
    const char *endpoint;
    const unsigned char *csr; /* shared, read-only */
    size_t csr_len;
    int thread;
    s_issued_t *jobs; /* S_BULK_JOBS, in the order sent */
    int ok;           /* ok replies */
    int other;        /* error replies */
    int unknown;      /* replies for ids not sent, or a second reply for one */
    char first_error[300];
} s_bulk_t;

static int s_issued_cmp(const void *a, const void *b)
{
    return strcmp(((const s_issued_t *)a)->id, ((const s_issued_t *)b)->id);
}

static void *s_bulk(void *arg)
{
    s_bulk_t *b = arg;
    cf_client_t *c = cf_client_new(b->endpoint);
    cf_client_set_timeout(c, 2000);
    cf_client_set_attempts(c, 60);
    int sent = 0, done = 0;
    while (done < S_BULK_JOBS) {
        while (sent < S_BULK_JOBS && (int)cf_client_pending(c) < S_BULK_WINDOW) {
            msgpack_sbuffer buf;
            msgpack_sbuffer_init(&buf);
            msgpack_packer pk;
            msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
            char subject[96];
            snprintf(subject, sizeof subject, "CN=host-%d-%d.example.com", b->thread, sent);
            msgpack_pack_map(&pk, 3);
            cf_msgpack_pack_cstr(&pk, "ca");
            cf_msgpack_pack_cstr(&pk, "bulk");
            cf_msgpack_pack_cstr(&pk, "subject");
            cf_msgpack_pack_cstr(&pk, subject);
            cf_msgpack_pack_cstr(&pk, "csr");
            msgpack_pack_bin(&pk, b->csr_len);
            msgpack_pack_bin_body(&pk, b->csr, b->csr_len);
            uint8_t id[CF_JOB_ID_SIZE];
            cf_client_send(c, NULL, "cert.issue", buf.data, buf.size, 0, id);
            cf_job_id_hex(id, b->jobs[sent].id);
            msgpack_sbuffer_destroy(&buf);
            sent++;
        }
        cf_reply_t *r = cf_client_recv(c, 120000);
        if (!r)
            break;
        done++;
        char hex[2 * CF_JOB_ID_SIZE + 1] = "";
        if (cf_reply_id(r))
            cf_job_id_hex(cf_reply_id(r), hex);
        s_issued_t *slot = NULL;
        /* Replies come back near the order sent, except after the kill: search backwards. */
        for (int i = sent - 1; i >= 0 && !slot; i--)
            if (strcmp(b->jobs[i].id, hex) == 0)
                slot = &b->jobs[i];
        if (cf_reply_ok(r)) {
            b->ok++;
            const msgpack_object *s = cf_msgpack_map_get(cf_reply_result(r), "serial");
            if (!slot || slot->serial[0] || !s || s->type != MSGPACK_OBJECT_STR ||
                s->via.str.size >= sizeof slot->serial)
                b->unknown++;
            else
                memcpy(slot->serial, s->via.str.ptr, s->via.str.size);
        } else {
            if (!b->other)
                snprintf(b->first_error, sizeof b->first_error, "%s: %s", cf_reply_error(r)->code,
                         cf_reply_error(r)->message);
            b->other++;
        }
        cf_reply_destroy(&r);
    }
    cf_client_destroy(&c);
    return NULL;
}

static void test_kill_signer_mid_issuance(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 2);
    json_t *p = s_ec_ca("bulk", NULL, -1);
    json_object_set_new(p, "elliptic_curve", json_string("secp256r1"));
    json_object_set_new(p, "algorithm", json_string("SHA-256"));
    X509 *ca = s_ca_init(f, p);
    EVP_PKEY *key = s_keygen("EC", "P-256");
    size_t len;
    unsigned char *csr = s_csr(key, "bulk.example.com", &len);

    pthread_t threads[S_BULK_THREADS];
    s_bulk_t bulk[S_BULK_THREADS];
    for (int t = 0; t < S_BULK_THREADS; t++) {
        bulk[t] = (s_bulk_t){.endpoint = f->fleet.endpoint,
                             .csr = csr,
                             .csr_len = len,
                             .thread = t,
                             .jobs = calloc(S_BULK_JOBS, sizeof(s_issued_t))};
        pthread_create(&threads[t], NULL, s_bulk, &bulk[t]);
    }
    /* Mid-run: one signer dies without a word, a fresh one takes its place. */
    usleep(1000 * 1000);
    long before_kill = s_count(f, "SELECT count(*) FROM certificates");
    cf_test_kill(f->signers[0], SIGKILL);
    f->signers[0] = 0;
    f->signers[2] = s_start(f, "certfleet-signer", "signer2.log");
    f->nsigners = 3;
    int ok = 0;
    for (int t = 0; t < S_BULK_THREADS; t++) {
        pthread_join(threads[t], NULL);
        ok += bulk[t].ok;
        if (bulk[t].other)
            fprintf(stderr, "client %d: %d errors, first: %s\n", t, bulk[t].other,
                    bulk[t].first_error);
        assert_int_equal(bulk[t].unknown, 0);
    }
    fprintf(stderr, "%ld certificates when the signer was killed\n", before_kill);
    const int total = S_BULK_THREADS * S_BULK_JOBS;
    assert_int_equal(ok, total);
    assert_true(before_kill < total);

    /* Every job answered once with a serial, and the table says the same. */
    s_issued_t *all = calloc(total, sizeof *all);
    for (int t = 0; t < S_BULK_THREADS; t++) {
        memcpy(all + t * S_BULK_JOBS, bulk[t].jobs, S_BULK_JOBS * sizeof *all);
        free(bulk[t].jobs);
    }
    qsort(all, total, sizeof *all, s_issued_cmp);
    for (int i = 0; i < total; i++) {
        assert_true(all[i].serial[0] != '\0');
        if (i > 0)
            assert_string_not_equal(all[i - 1].id, all[i].id);
    }
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificates"), total);
    assert_int_equal(s_count(f, "SELECT count(DISTINCT serial) FROM certificates"), total);
    assert_int_equal(s_count(f, "SELECT count(DISTINCT job_id) FROM certificates"), total);
    assert_int_equal(
        s_count(f, "SELECT count(*) FROM job_results WHERE type = 'cert.issue' AND status = 'ok'"),
        total);
    assert_int_equal(s_count(f, "SELECT count(*) FROM job_results WHERE type = 'cert.issue'"),
                     total);
    cf_pg_t *pg = cf_pg_new(f->fleet.conninfo);
    PGresult *res =
        cf_pg_exec_params(pg, "SELECT encode(job_id, 'hex'), serial FROM certificates ORDER BY 1",
                          0, NULL, NULL, NULL, 0);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), total);
    for (int i = 0; i < total; i++) {
        if (strcmp(PQgetvalue(res, i, 0), all[i].id) != 0 ||
            strcmp(PQgetvalue(res, i, 1), all[i].serial) != 0)
            fail_msg("row %d: job %s serial %s, reply: job %s serial %s", i, PQgetvalue(res, i, 0),
                     PQgetvalue(res, i, 1), all[i].id, all[i].serial);
    }
    PQclear(res);
    /* Each row's job_results reply is the job's own: same id, ok. */
    assert_int_equal(
        s_count(f, "SELECT count(*) FROM certificates c JOIN job_results j ON j.id = c.job_id "
                   "WHERE j.status = 'ok'"),
        total);
    cf_pg_destroy(&pg);
    free(all);
    OPENSSL_free(csr);
    EVP_PKEY_free(key);
    X509_free(ca);
}

/* ---- 5. ca.edit ------------------------------------------------------------------------ */

/* The CA row of NAME as JSON text (caller frees). */
static char *s_ca_row(s_fleet_t *f, const char *name)
{
    cf_pg_t *pg = cf_pg_new(f->fleet.conninfo);
    char sql[256];
    snprintf(sql, sizeof sql,
             "SELECT row_to_json(c)::text FROM certificate_authorities c WHERE name = '%s'", name);
    char *row = cf_test_query(pg, sql);
    cf_pg_destroy(&pg);
    return row;
}

/* ca.edit that must fail with CODE at FIELD and leave the row of "edited" as it was. */
static void s_edit_refused(s_fleet_t *f, json_t *params, const char *code, const char *field)
{
    char *before = s_ca_row(f, "edited");
    s_expect_error(f, "ca.edit", params, NULL, 0, code, field);
    char *after = s_ca_row(f, "edited");
    assert_string_equal(before, after);
    free(before);
    free(after);
}

/* Issue from "edited" until the signer's cached row has caught up with an edit (the cache
 * lives [signer] cache_ms): until the certificate has an issuerAltName, or has none. */
static X509 *s_issue_until(s_fleet_t *f, bool want_ian)
{
    EVP_PKEY *key = s_keygen("EC", "P-256");
    size_t len;
    unsigned char *csr = s_csr(key, "edit.example.com", &len);
    X509 *cert = NULL;
    for (int i = 0; i < 50; i++) {
        X509_free(cert);
        cf_reply_t *r = s_call(f, "cert.issue", s_issue("edited"), csr, len);
        s_assert_ok(r, "cert.issue from an edited CA");
        cert = s_reply_cert(r);
        cf_reply_destroy(&r);
        bool has = X509_get_ext_by_NID(cert, NID_issuer_alt_name, -1) >= 0;
        if (has == want_ian)
            break;
        usleep(200 * 1000);
    }
    free(csr);
    EVP_PKEY_free(key);
    assert_int_equal(X509_get_ext_by_NID(cert, NID_issuer_alt_name, -1) >= 0, want_ian);
    return cert;
}

static void test_ca_edit(void **state)
{
    s_fleet_t *f = *state;
    s_start_fleet(f, 1);
    X509_free(s_ca_init(f, s_ec_ca("edited", NULL, -1)));
    const char *ian = "{\"type\": \"issuer_alternative_name\", \"value\": [{\"type\": \"URI\","
                      " \"value\": \"https://ca.example.test/\"}]}";

    /* Bad input: the error names the field, the row stays as it was. */
    s_edit_refused(f, json_object(), "missing_field", "params.ca");
    s_edit_refused(f, json_pack("{s:s}", "ca", "edited"), "invalid_value", "params");
    s_edit_refused(f, json_pack("{s:s, s:b}", "ca", "nope", "enabled", 0), "unknown_ca",
                   "params.ca");
    s_edit_refused(f, json_pack("{s:s, s:s}", "ca", "edited", "colour", "blue"), "unknown_field",
                   "params.colour");
    s_edit_refused(f, json_pack("{s:s, s:s}", "ca", "edited", "enabled", "yes"), "invalid_type",
                   "params.enabled");
    s_edit_refused(f, json_pack("{s:s, s:n}", "ca", "edited", "website"), "invalid_type",
                   "params.website");
    s_edit_refused(f, json_pack("{s:s, s:i}", "ca", "edited", "ocsp_response_validity", 10),
                   "invalid_value", "params.ocsp_response_validity");
    s_edit_refused(f, json_pack("{s:s, s:s}", "ca", "edited", "acme_profile", "nope"),
                   "unknown_profile", "params.acme_profile");
    json_t *p = json_pack("{s:s}", "ca", "edited");
    json_object_set_new(p, "sign_certificate_policies", json_loads(ian, 0, NULL));
    s_edit_refused(f, p, "invalid_value", "params.sign_certificate_policies");
    s_edit_refused(f,
                   json_pack("{s:s, s:{s:s, s:[{s:s, s:s}]}}", "ca", "edited",
                             "sign_issuer_alternative_name", "type", "issuer_alternative_name",
                             "value", "type", "URI", "value", "not a uri"),
                   "invalid_uri", "params.sign_issuer_alternative_name.value[0].value");

    /* An edit: the reply lists what changed, old and new; the row has it. */
    p = json_pack("{s:s, s:s, s:b, s:s, s:i}", "ca", "edited", "website", "https://ca.example.test",
                  "acme_enabled", 1, "acme_profile", "server", "ocsp_response_validity", 43200);
    json_object_set_new(p, "sign_issuer_alternative_name", json_loads(ian, 0, NULL));
    cf_reply_t *r = s_call(f, "ca.edit", p, NULL, 0);
    s_assert_ok(r, "ca.edit");
    json_t *doc = cf_reply_to_json(r);
    json_t *changed = json_object_get(json_object_get(doc, "result"), "changed");
    assert_int_equal(json_object_size(changed), 5);
    json_t *w = json_object_get(changed, "website");
    assert_string_equal(json_string_value(json_object_get(w, "old")), "");
    assert_string_equal(json_string_value(json_object_get(w, "new")), "https://ca.example.test");
    assert_true(json_is_null(json_object_get(json_object_get(changed, "acme_profile"), "old")));
    assert_int_equal(json_integer_value(json_object_get(
                         json_object_get(changed, "ocsp_response_validity"), "new")),
                     43200);
    json_decref(doc);
    cf_reply_destroy(&r);
    assert_int_equal(s_count(f, "SELECT count(*) FROM certificate_authorities WHERE name = "
                                "'edited' AND website = 'https://ca.example.test' AND "
                                "acme_enabled AND acme_profile = 'server' AND "
                                "ocsp_response_validity = 43200 AND "
                                "sign_issuer_alternative_name IS NOT NULL"),
                     1);
    /* The same edit again changes nothing. */
    p = json_pack("{s:s, s:s}", "ca", "edited", "website", "https://ca.example.test");
    r = s_call(f, "ca.edit", p, NULL, 0);
    s_assert_ok(r, "ca.edit again");
    doc = cf_reply_to_json(r);
    assert_int_equal(json_object_size(json_object_get(json_object_get(doc, "result"), "changed")),
                     0);
    json_decref(doc);
    cf_reply_destroy(&r);
    /* What the CA signs carries the sign_* extension; null removes it again. */
    X509_free(s_issue_until(f, true));
    r = s_call(f, "ca.edit",
               json_pack("{s:s, s:n}", "ca", "edited", "sign_issuer_alternative_name"), NULL, 0);
    s_assert_ok(r, "ca.edit removing a sign extension");
    cf_reply_destroy(&r);
    X509_free(s_issue_until(f, false));
}

int main(void)
{
    CF_TEST_NEEDS_SERVICES();
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_every_key_type_verifies, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_path_length_and_name_constraints, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_bad_input_writes_nothing, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_kill_signer_mid_issuance, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_ca_edit, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
