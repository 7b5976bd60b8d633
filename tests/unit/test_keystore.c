/* cf_keystore: the "storages" backend in a temporary directory (files 0600, no overwrite,
 * no path escapes), the per-process cache and its password check, passwords from the job,
 * the environment and files, and the "db" backend against a real PostgreSQL (skipped when
 * CERTFLEET_TEST_PG is not set). Reads as cf_keystore's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ftw.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>

#include "cf_config.h"
#include "cf_key.h"
#include "cf_keystore.h"
#include "cf_pg.h"
#include "cf_test.h"

/* What every test gets. */
typedef struct {
    char dir[64];         /* temporary directory of this test */
    char keys[128];       /* storages_dir inside it (not created yet) */
    cf_config_t *cfg;     /* config pointing at it */
    cf_keystore_t *store; /* keystore without a database */
} s_env_t;

static int s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    return remove(path);
}

static int s_setup(void **state)
{
    s_env_t *env = calloc(1, sizeof *env);
    snprintf(env->dir, sizeof env->dir, "/tmp/cf_test_keystore_XXXXXX");
    if (!mkdtemp(env->dir))
        return -1;
    snprintf(env->keys, sizeof env->keys, "%s/var/keys", env->dir);
    env->cfg = cf_config_new();
    cf_config_set(env->cfg, "keys", "storages_dir", env->keys);
    env->store = cf_keystore_new(env->cfg, NULL);
    *state = env;
    return env->store ? 0 : -1;
}

static int s_teardown(void **state)
{
    s_env_t *env = *state;
    cf_keystore_destroy(&env->store);
    assert_null(env->store);
    cf_config_destroy(&env->cfg);
    nftw(env->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
    free(env);
    return 0;
}

static EVP_PKEY *s_key(const char *type)
{
    cf_key_params_t params;
    cf_error_t err = {0};
    assert_int_equal(cf_key_params_init(&params, NULL, type, 0, NULL, &err), 0);
    EVP_PKEY *key = cf_key_generate(&params, &err);
    assert_non_null(key);
    return key;
}

static void s_store_ok(cf_keystore_t *ks, const char *backend, const char *id, EVP_PKEY *key,
                       const char *password, json_t **options)
{
    cf_error_t err = {0};
    if (cf_keystore_store(ks, backend, id, key, password, options, &err) != 0)
        fail_msg("%s: %s", err.code, err.message);
}

static void s_expect(EVP_PKEY *key, const cf_error_t *err, const char *code, const char *field)
{
    if (key)
        fail_msg("expected %s, got a key", code);
    assert_string_equal(err->code, code);
    if (field)
        assert_string_equal(err->field, field);
}

/* ------------------------------------------------------------------ storages */

static void test_storages_store_load(void **state)
{
    s_env_t *env = *state;
    EVP_PKEY *key = s_key("EC");
    json_t *options = NULL;
    cf_error_t err = {0};
    s_store_ok(env->store, "storages", "root", key, "s3cret", &options);
    assert_string_equal(json_string_value(json_object_get(options, "path")), "root.pem");

    /* The directory is made 0700, the file is 0600, PEM, and nothing else is left behind. */
    struct stat st;
    char path[256];
    assert_int_equal(stat(env->keys, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0700);
    snprintf(path, sizeof path, "%s/root.pem", env->keys);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    FILE *f = fopen(path, "r");
    char line[64] = "";
    assert_non_null(fgets(line, sizeof line, f));
    fclose(f);
    assert_string_equal(line, "-----BEGIN ENCRYPTED PRIVATE KEY-----\n");
    char cmd[300];
    snprintf(cmd, sizeof cmd, "test $(ls -A %s | wc -l) -eq 1", env->keys);
    assert_int_equal(system(cmd), 0);

    /* A fresh process (keystore) loads it, then serves it from its cache. */
    cf_password_t *pw = cf_password_new("s3cret");
    EVP_PKEY *loaded = cf_keystore_load(env->store, "storages", "root", options, pw, &err);
    if (!loaded)
        fail_msg("%s", err.message);
    assert_int_equal(EVP_PKEY_eq(key, loaded), 1);
    assert_int_equal(cf_keystore_cached(env->store), 1);
    EVP_PKEY *again = cf_keystore_load(env->store, "storages", "root", options, pw, &err);
    assert_ptr_equal(again, loaded);
    EVP_PKEY_free(again);

    /* Even from the cache, an encrypted key needs its password. */
    cf_password_t *wrong = cf_password_new("guess");
    s_expect(cf_keystore_load(env->store, "storages", "root", options, wrong, &err), &err,
             "wrong_password", "password");
    assert_null(strstr(err.message, "guess"));
    assert_non_null(strstr(err.message, "\"root\""));
    s_expect(cf_keystore_load(env->store, "storages", "root", options, NULL, &err), &err,
             "wrong_password", "password");

    /* The same checks on a cold load (the file, not the cache). */
    cf_keystore_forget(env->store, "storages", "root");
    assert_int_equal(cf_keystore_cached(env->store), 0);
    s_expect(cf_keystore_load(env->store, "storages", "root", options, wrong, &err), &err,
             "wrong_password", "password");
    assert_int_equal(cf_keystore_cached(env->store), 0);
    assert_true(cf_keystore_usable(env->store, "storages", "root", NULL, pw, &err));
    assert_false(cf_keystore_usable(env->store, "storages", "root", NULL, wrong, &err));

    cf_password_free(&pw);
    cf_password_free(&wrong);
    assert_null(pw);
    EVP_PKEY_free(loaded);
    json_decref(options);
    EVP_PKEY_free(key);
}

static void test_storages_unencrypted(void **state)
{
    s_env_t *env = *state;
    EVP_PKEY *key = s_key("Ed25519");
    json_t *options = NULL;
    cf_error_t err = {0};
    s_store_ok(env->store, "storages", "plain", key, NULL, &options);
    EVP_PKEY *loaded = cf_keystore_load(env->store, "storages", "plain", options, NULL, &err);
    assert_non_null(loaded);
    assert_int_equal(EVP_PKEY_eq(key, loaded), 1);
    EVP_PKEY_free(loaded);
    /* A password (say a general password_env) does not stop an unencrypted key. */
    cf_password_t *pw = cf_password_new("anything");
    loaded = cf_keystore_load(env->store, "storages", "plain", options, pw, &err);
    assert_non_null(loaded);
    EVP_PKEY_free(loaded);
    cf_password_free(&pw);
    json_decref(options);
    EVP_PKEY_free(key);
}

static void test_storages_no_overwrite(void **state)
{
    s_env_t *env = *state;
    EVP_PKEY *a = s_key("EC");
    EVP_PKEY *b = s_key("EC");
    json_t *options = NULL;
    cf_error_t err = {0};
    s_store_ok(env->store, "storages", "ca-1", a, "pw", &options);
    json_decref(options);
    assert_int_equal(cf_keystore_store(env->store, "storages", "ca-1", b, "pw", &options, &err),
                     -1);
    assert_string_equal(err.code, "key_exists");
    assert_null(options);

    cf_password_t *pw = cf_password_new("pw");
    EVP_PKEY *loaded = cf_keystore_load(env->store, "storages", "ca-1", NULL, pw, &err);
    assert_non_null(loaded);
    assert_int_equal(EVP_PKEY_eq(a, loaded), 1); /* the first key survived */
    EVP_PKEY_free(loaded);
    cf_password_free(&pw);
    EVP_PKEY_free(a);
    EVP_PKEY_free(b);
}

static void test_storages_paths(void **state)
{
    s_env_t *env = *state;
    EVP_PKEY *key = s_key("EC");
    json_t *options = NULL;
    cf_error_t err = {0};

    /* Key ids become safe file names inside storages_dir. */
    s_store_ok(env->store, "storages", "../evil/ID x", key, NULL, &options);
    const char *path = json_string_value(json_object_get(options, "path"));
    assert_null(strchr(path, '/'));
    assert_true(path[0] != '.');
    char full[256];
    snprintf(full, sizeof full, "%s/%s", env->keys, path);
    assert_int_equal(access(full, R_OK), 0);
    json_decref(options);

    /* Options from a job cannot leave the directory. */
    const char *bad[] = {"../x.pem", "/etc/passwd", "a/../../b", "", "./x", NULL};
    for (int i = 0; bad[i]; i++) {
        json_t *o = json_pack("{s:s}", "path", bad[i]);
        cf_error_clear(&err);
        s_expect(cf_keystore_load(env->store, "storages", "x", o, NULL, &err), &err,
                 "invalid_value", "options.path");
        json_decref(o);
    }
    json_t *o = json_pack("{s:i}", "path", 5);
    s_expect(cf_keystore_load(env->store, "storages", "x", o, NULL, &err), &err, "invalid_value",
             "options.path");
    json_decref(o);

    /* Missing and corrupt files. */
    s_expect(cf_keystore_load(env->store, "storages", "nope", NULL, NULL, &err), &err,
             "key_not_found", NULL);
    assert_non_null(strstr(err.message, "\"nope\""));
    snprintf(full, sizeof full, "%s/junk.pem", env->keys);
    FILE *f = fopen(full, "w");
    fputs("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", f);
    fclose(f);
    s_expect(cf_keystore_load(env->store, "storages", "junk", NULL, NULL, &err), &err,
             "invalid_key", NULL);

    /* Key ids must be sane. */
    s_expect(cf_keystore_load(env->store, "storages", "", NULL, NULL, &err), &err, "invalid_value",
             "key_id");
    s_expect(cf_keystore_load(env->store, "storages", "a\nb", NULL, NULL, &err), &err,
             "invalid_value", "key_id");
    assert_int_equal(ERR_peek_error(), 0);
    EVP_PKEY_free(key);
}

static void test_unknown_backend(void **state)
{
    s_env_t *env = *state;
    EVP_PKEY *key = s_key("EC");
    json_t *options = NULL;
    cf_error_t err = {0};
    assert_int_equal(cf_keystore_store(env->store, "hsm", "k", key, "pw", &options, &err), -1);
    assert_string_equal(err.code, "unknown_backend");
    assert_string_equal(err.field, "key_backend");
    s_expect(cf_keystore_load(env->store, "hsm", "k", NULL, NULL, &err), &err, "unknown_backend",
             "key_backend");
    s_expect(cf_keystore_load(env->store, NULL, "k", NULL, NULL, &err), &err, "unknown_backend",
             "key_backend");
    assert_false(cf_keystore_usable(env->store, "Storages", "k", NULL, NULL, &err));
    assert_string_equal(err.code, "unknown_backend");
    EVP_PKEY_free(key);
}

/* ------------------------------------------------------------------ passwords */

static void s_write(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void test_password_sources(void **state)
{
    s_env_t *env = *state;
    cf_error_t err = {0};
    char file[128];
    char general[128];
    snprintf(file, sizeof file, "%s/root.pw", env->dir);
    snprintf(general, sizeof general, "%s/general.pw", env->dir);
    s_write(file, "from-file\n", 0600);
    s_write(general, "general-file\r\nsecond line\n", 0600);

    /* Nothing configured: no password. */
    cf_password_t *pw = cf_password_resolve(env->cfg, "root", NULL, &err);
    assert_non_null(pw);
    assert_null(cf_password_value(pw));
    assert_string_equal(cf_password_source(pw), "none");
    cf_password_free(&pw);

    /* General file, general environment variable, per-key file, per-key variable: each
     * more specific source wins over the ones before. */
    cf_config_set(env->cfg, "keys", "password_file", general);
    pw = cf_password_resolve(env->cfg, "root", NULL, &err);
    assert_string_equal(cf_password_value(pw), "general-file");
    cf_password_free(&pw);

    setenv("CF_TEST_GENERAL_PW", "general-env", 1);
    cf_config_set(env->cfg, "keys", "password_env", "CF_TEST_GENERAL_PW");
    pw = cf_password_resolve(env->cfg, "root", NULL, &err);
    assert_string_equal(cf_password_value(pw), "general-env");
    assert_non_null(strstr(cf_password_source(pw), "CF_TEST_GENERAL_PW"));
    cf_password_free(&pw);

    cf_config_set(env->cfg, "keys", "password_file_root", file);
    pw = cf_password_resolve(env->cfg, "root", NULL, &err);
    assert_string_equal(cf_password_value(pw), "from-file");
    assert_null(strstr(cf_password_source(pw), "from-file"));
    cf_password_free(&pw);

    setenv("CF_TEST_ROOT_PW", "from-env", 1);
    cf_config_set(env->cfg, "keys", "password_env_root", "CF_TEST_ROOT_PW");
    pw = cf_password_resolve(env->cfg, "root", NULL, &err);
    assert_string_equal(cf_password_value(pw), "from-env");
    cf_password_free(&pw);

    /* An unset variable falls through to the next source. */
    unsetenv("CF_TEST_ROOT_PW");
    pw = cf_password_resolve(env->cfg, "root", NULL, &err);
    assert_string_equal(cf_password_value(pw), "from-file");
    cf_password_free(&pw);

    /* The job's password comes first of all. */
    pw = cf_password_resolve(env->cfg, "root", "from-job", &err);
    assert_string_equal(cf_password_value(pw), "from-job");
    assert_string_equal(cf_password_source(pw), "job");
    cf_password_free(&pw);

    /* Another key gets the general settings; ids map to config keys ('-' as '_'), and the
     * environment overrides config as everywhere (CERTFLEET_KEYS_PASSWORD_ENV_INTER_CA). */
    pw = cf_password_resolve(env->cfg, "other", NULL, &err);
    assert_string_equal(cf_password_value(pw), "general-env");
    cf_password_free(&pw);
    setenv("CF_TEST_INTER_PW", "inter", 1);
    setenv("CERTFLEET_KEYS_PASSWORD_ENV_INTER_CA", "CF_TEST_INTER_PW", 1);
    pw = cf_password_resolve(env->cfg, "inter-ca", NULL, &err);
    assert_string_equal(cf_password_value(pw), "inter");
    cf_password_free(&pw);
    unsetenv("CERTFLEET_KEYS_PASSWORD_ENV_INTER_CA");

    /* A configured file that cannot be read is an error, not "no password". */
    cf_config_set(env->cfg, "keys", "password_file_gone", "/nonexistent/pw");
    assert_null(cf_password_resolve(env->cfg, "gone", NULL, &err));
    assert_string_equal(err.code, "password_unavailable");

    /* A key stored with the per-key password loads with the resolved one. */
    EVP_PKEY *key = s_key("EC");
    json_t *options = NULL;
    s_store_ok(env->store, "storages", "root", key, "from-file", &options);
    pw = cf_password_resolve(env->cfg, "root", NULL, &err);
    EVP_PKEY *loaded = cf_keystore_load(env->store, "storages", "root", options, pw, &err);
    assert_non_null(loaded);
    assert_int_equal(EVP_PKEY_eq(key, loaded), 1);
    EVP_PKEY_free(loaded);
    cf_password_free(&pw);
    json_decref(options);
    EVP_PKEY_free(key);
    unsetenv("CF_TEST_GENERAL_PW");
    unsetenv("CF_TEST_INTER_PW");
}

/* ------------------------------------------------------------------ db */

static void test_db_backend(void **state)
{
    if (!getenv("CERTFLEET_TEST_PG"))
        skip();
    s_env_t *env = *state;
    char conninfo[1024];
    char dir[512];
    int applied = 0;
    cf_error_t err = {0};
    assert_int_equal(cf_test_pg_create_db("cf_test_keystore", conninfo, sizeof conninfo), 0);
    cf_pg_t *pg = cf_pg_new(conninfo);
    snprintf(dir, sizeof dir, "%s/schemas/sql", cf_test_source_dir());
    if (cf_pg_migrate(pg, dir, &applied) != 0)
        fail_msg("migrate: %s", cf_pg_errstr(pg));
    cf_keystore_t *ks = cf_keystore_new(env->cfg, pg);
    EVP_PKEY *key = s_key("RSA");
    json_t *options = NULL;

    /* No password, no db storage: a database dump must not leak keys. */
    assert_int_equal(cf_keystore_store(ks, "db", "root", key, NULL, &options, &err), -1);
    assert_string_equal(err.code, "password_required");
    assert_string_equal(err.field, "password");

    s_store_ok(ks, "db", "root", key, "db-secret", &options);
    assert_true(json_is_object(options));
    PGresult *res = cf_pg_exec_params(pg,
                                      "SELECT octet_length(pkcs8) FROM private_keys "
                                      "WHERE id = 'root'",
                                      0, NULL, NULL, NULL, 0);
    assert_non_null(res);
    assert_int_equal(PQntuples(res), 1);
    assert_true(atoi(PQgetvalue(res, 0, 0)) > 1000);
    PQclear(res);

    /* Another worker process loads it. */
    cf_keystore_t *other = cf_keystore_new(env->cfg, pg);
    cf_password_t *pw = cf_password_new("db-secret");
    cf_password_t *wrong = cf_password_new("nope");
    s_expect(cf_keystore_load(other, "db", "root", options, wrong, &err), &err, "wrong_password",
             "password");
    EVP_PKEY *loaded = cf_keystore_load(other, "db", "root", options, pw, &err);
    if (!loaded)
        fail_msg("%s", err.message);
    assert_int_equal(EVP_PKEY_eq(key, loaded), 1);
    EVP_PKEY_free(loaded);
    assert_true(cf_keystore_usable(other, "db", "root", NULL, pw, &err));
    s_expect(cf_keystore_load(other, "db", "missing", NULL, pw, &err), &err, "key_not_found", NULL);
    /* Same id in the other backend is another key. */
    s_expect(cf_keystore_load(other, "storages", "root", NULL, pw, &err), &err, "key_not_found",
             NULL);

    /* Duplicate ids are refused. */
    json_t *dup = NULL;
    assert_int_equal(cf_keystore_store(ks, "db", "root", key, "x", &dup, &err), -1);
    assert_string_equal(err.code, "key_exists");

    /* The key is part of the caller's transaction: rolled back with it, committed with it. */
    json_t *o2 = NULL;
    assert_int_equal(cf_pg_begin(pg), 0);
    s_store_ok(ks, "db", "child", key, "pw2", &o2);
    json_decref(o2);
    assert_int_equal(cf_pg_rollback(pg), 0);
    cf_password_t *pw2 = cf_password_new("pw2");
    s_expect(cf_keystore_load(other, "db", "child", NULL, pw2, &err), &err, "key_not_found", NULL);
    assert_int_equal(cf_pg_begin(pg), 0);
    s_store_ok(ks, "db", "child", key, "pw2", &o2);
    json_decref(o2);
    assert_int_equal(cf_pg_commit(pg), 0);
    loaded = cf_keystore_load(other, "db", "child", NULL, pw2, &err);
    assert_non_null(loaded);
    EVP_PKEY_free(loaded);

    /* Unencrypted only when the operator says so. */
    cf_config_set(env->cfg, "keys", "allow_unencrypted_db", "true");
    s_store_ok(ks, "db", "plain", key, NULL, &o2);
    json_decref(o2);
    loaded = cf_keystore_load(other, "db", "plain", NULL, NULL, &err);
    assert_non_null(loaded);
    EVP_PKEY_free(loaded);
    cf_config_set(env->cfg, "keys", "allow_unencrypted_db", "false");

    cf_password_free(&pw);
    cf_password_free(&pw2);
    cf_password_free(&wrong);
    cf_keystore_destroy(&other);
    cf_keystore_destroy(&ks);
    json_decref(options);
    EVP_PKEY_free(key);
    cf_pg_destroy(&pg);
    cf_test_pg_drop_db(conninfo);
}

static void test_db_without_connection(void **state)
{
    s_env_t *env = *state;
    EVP_PKEY *key = s_key("EC");
    json_t *options = NULL;
    cf_error_t err = {0};
    assert_int_equal(cf_keystore_store(env->store, "db", "k", key, "pw", &options, &err), -1);
    assert_string_equal(err.code, "database_error");
    s_expect(cf_keystore_load(env->store, "db", "k", NULL, NULL, &err), &err, "database_error",
             NULL);
    EVP_PKEY_free(key);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_storages_store_load, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_storages_unencrypted, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_storages_no_overwrite, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_storages_paths, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_unknown_backend, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_password_sources, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_db_backend, s_setup, s_teardown),
        cmocka_unit_test_setup_teardown(test_db_without_connection, s_setup, s_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
