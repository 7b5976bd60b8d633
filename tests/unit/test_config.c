/* cf_config: how a process reads its config. A file of [sections] and "key = value" lines,
 * every key overridable by CERTFLEET_<SECTION>_<KEY>, every lookup with a safe default; a
 * file we do not understand is refused with its line number. Reads as cf_config's usage
 * example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "cf_config.h"
#include "cf_log.h"

/* Write TEXT to a fresh temporary file and put its name in PATH (caller unlinks). */
static void s_write_temp(char path[64], const char *text)
{
    snprintf(path, 64, "/tmp/cf_test_config_XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    size_t len = strlen(text);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    close(fd);
}

/* Load TEXT as a config file; NULL when refused (the reason in ERRBUF). */
static cf_config_t *s_load_text(const char *text, char *errbuf, size_t errlen)
{
    char path[64];
    s_write_temp(path, text);
    cf_config_t *cfg = cf_config_load(path, errbuf, errlen);
    unlink(path);
    return cfg;
}

static void test_config_parses_sections_and_comments(void **state)
{
    char err[256] = "";
    cf_config_t *cfg = s_load_text("# a comment\n"
                                   "; another comment\n"
                                   "\n"
                                   "[broker]\n"
                                   "endpoint = tcp://127.0.0.1:5555\n"
                                   "   # an indented comment\n"
                                   "name=broker-1\n"
                                   "[signer]\n"
                                   "  endpoint   =   tcp://127.0.0.1:6666   \n"
                                   "motd = \"  keeps its blanks \"\n"
                                   "empty =\n",
                                   err, sizeof err);
    assert_non_null(cfg);
    assert_string_equal(err, "");
    assert_non_null(cf_config_path(cfg));
    assert_string_equal(cf_config_get(cfg, "broker", "endpoint", NULL), "tcp://127.0.0.1:5555");
    assert_string_equal(cf_config_get(cfg, "broker", "name", NULL), "broker-1");
    /* The same key in two sections is two keys. */
    assert_string_equal(cf_config_get(cfg, "signer", "endpoint", NULL), "tcp://127.0.0.1:6666");
    assert_string_equal(cf_config_get(cfg, "signer", "motd", NULL), "  keeps its blanks ");
    assert_string_equal(cf_config_get(cfg, "signer", "empty", "dflt"), "");
    /* Names match without regard to case, as the environment variables do. */
    assert_string_equal(cf_config_get(cfg, "BROKER", "Endpoint", NULL), "tcp://127.0.0.1:5555");
    /* Comments are not keys; an absent key gives the default. */
    assert_string_equal(cf_config_get(cfg, "broker", "missing", "fallback"), "fallback");
    assert_null(cf_config_get(cfg, "nosuch", "endpoint", NULL));
    cf_config_destroy(&cfg);
    assert_null(cfg);
    cf_config_destroy(&cfg); /* destroying NULL is fine */
}

/* Each malformed file is refused, and the error names the line. */
static void test_config_refuses_malformed_lines(void **state)
{
    static const struct {
        const char *text; /* file contents */
        const char *want; /* expected in the error */
    } cases[] = {
        {"[a]\nx = 1\nthis line has no equals sign\n", "line 3: expected \"key = value\""},
        {"[a]\n[unterminated\n", "line 2: malformed section header"},
        {"[a] trailing\n", "line 1: malformed section header"},
        {"# fine\n[bad name]\n", "line 2: bad section name \"bad name\""},
        {"[a]\nbad key = 1\n", "line 2: bad key name \"bad key\""},
        {"[a]\n= value\n", "line 2: bad key name \"\""},
        {"# comment\nkey = value\n[a]\n", "line 2: key \"key\" outside a section"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char err[256] = "";
        cf_config_t *cfg = s_load_text(cases[i].text, err, sizeof err);
        assert_null(cfg);
        if (!strstr(err, cases[i].want))
            fail_msg("case %zu: error \"%s\" does not say \"%s\"", i, err, cases[i].want);
        assert_non_null(strstr(err, "config file \"/tmp/cf_test_config_"));
    }
}

static void test_config_missing_file(void **state)
{
    char err[256] = "";
    assert_null(cf_config_load("/nonexistent/certfleet.conf", err, sizeof err));
    assert_non_null(strstr(err, "could not open config file \"/nonexistent/certfleet.conf\""));
    assert_non_null(strstr(err, "No such file"));
}

/* Without a path the config comes from $CERTFLEET_CONFIG, and neither means empty. */
static void test_config_path_from_environment(void **state)
{
    char err[256] = "", path[64];
    unsetenv("CERTFLEET_CONFIG");
    cf_config_t *cfg = cf_config_load(NULL, err, sizeof err);
    assert_non_null(cfg);
    assert_null(cf_config_path(cfg));
    assert_string_equal(cf_config_get(cfg, "broker", "endpoint", "dflt"), "dflt");
    cf_config_destroy(&cfg);

    s_write_temp(path, "[broker]\nendpoint = from-env-file\n");
    setenv("CERTFLEET_CONFIG", path, 1);
    cfg = cf_config_load(NULL, err, sizeof err);
    unsetenv("CERTFLEET_CONFIG");
    unlink(path);
    assert_non_null(cfg);
    assert_string_equal(cf_config_path(cfg), path);
    assert_string_equal(cf_config_get(cfg, "broker", "endpoint", NULL), "from-env-file");
    cf_config_destroy(&cfg);
}

/* The environment beats the file, which beats the default. */
static void test_config_precedence(void **state)
{
    char err[256];
    cf_config_t *cfg = s_load_text("[ca-store]\nroot.dir = /from/file\n", err, sizeof err);
    assert_non_null(cfg);
    unsetenv("CERTFLEET_CA_STORE_ROOT_DIR");
    assert_string_equal(cf_config_get(cfg, "ca-store", "root.dir", "/dflt"), "/from/file");
    assert_string_equal(cf_config_get(cfg, "ca-store", "other", "/dflt"), "/dflt");

    /* Upper case, with '-' and '.' spelled '_'. */
    setenv("CERTFLEET_CA_STORE_ROOT_DIR", "/from/env", 1);
    setenv("CERTFLEET_CA_STORE_OTHER", "/env/only", 1);
    assert_string_equal(cf_config_get(cfg, "ca-store", "root.dir", "/dflt"), "/from/env");
    assert_string_equal(cf_config_get(cfg, "ca-store", "other", "/dflt"), "/env/only");
    /* An override works without any config object at all. */
    assert_string_equal(cf_config_get(NULL, "ca-store", "other", "/dflt"), "/env/only");
    unsetenv("CERTFLEET_CA_STORE_ROOT_DIR");
    unsetenv("CERTFLEET_CA_STORE_OTHER");
    assert_string_equal(cf_config_get(cfg, "ca-store", "root.dir", "/dflt"), "/from/file");
    cf_config_destroy(&cfg);
}

static void test_config_ints(void **state)
{
    char err[256];
    cf_config_t *cfg = s_load_text("[n]\n"
                                   "port = 5555\n"
                                   "negative = -42\n"
                                   "big = 9000000000\n"
                                   "word = many\n"
                                   "suffix = 10ms\n"
                                   "huge = 99999999999999999999999\n"
                                   "empty =\n",
                                   err, sizeof err);
    assert_non_null(cfg);
    assert_int_equal(cf_config_get_int(cfg, "n", "port", 1), 5555);
    assert_int_equal(cf_config_get_int(cfg, "n", "negative", 1), -42);
    assert_true(cf_config_get_int(cfg, "n", "big", 1) == INT64_C(9000000000));
    assert_int_equal(cf_config_get_int(cfg, "n", "absent", 7), 7);
    /* Not an integer: a warning in the log and the default. */
    assert_int_equal(cf_config_get_int(cfg, "n", "word", 7), 7);
    assert_int_equal(cf_config_get_int(cfg, "n", "suffix", 7), 7);
    assert_int_equal(cf_config_get_int(cfg, "n", "huge", 7), 7);
    assert_int_equal(cf_config_get_int(cfg, "n", "empty", 7), 7);
    /* The environment is parsed the same way. */
    setenv("CERTFLEET_N_PORT", "6000", 1);
    assert_int_equal(cf_config_get_int(cfg, "n", "port", 1), 6000);
    setenv("CERTFLEET_N_PORT", "6000x", 1);
    assert_int_equal(cf_config_get_int(cfg, "n", "port", 1), 1);
    unsetenv("CERTFLEET_N_PORT");
    cf_config_destroy(&cfg);
}

static void test_config_bools(void **state)
{
    char err[256];
    cf_config_t *cfg = s_load_text("[b]\n"
                                   "t1 = 1\nt2 = true\nt3 = YES\nt4 = on\n"
                                   "f1 = 0\nf2 = False\nf3 = no\nf4 = OFF\n"
                                   "bad = maybe\n",
                                   err, sizeof err);
    assert_non_null(cfg);
    const char *yes[] = {"t1", "t2", "t3", "t4"}, *no[] = {"f1", "f2", "f3", "f4"};
    for (int i = 0; i < 4; i++) {
        assert_true(cf_config_get_bool(cfg, "b", yes[i], false));
        assert_false(cf_config_get_bool(cfg, "b", no[i], true));
    }
    /* Absent or not a boolean: the default. */
    assert_true(cf_config_get_bool(cfg, "b", "absent", true));
    assert_false(cf_config_get_bool(cfg, "b", "absent", false));
    assert_true(cf_config_get_bool(cfg, "b", "bad", true));
    assert_false(cf_config_get_bool(cfg, "b", "bad", false));
    setenv("CERTFLEET_B_T1", "off", 1);
    assert_false(cf_config_get_bool(cfg, "b", "t1", true));
    unsetenv("CERTFLEET_B_T1");
    cf_config_destroy(&cfg);
}

/* cf_config_set adds or replaces a value in memory; the environment still wins. */
static void test_config_set(void **state)
{
    cf_config_t *cfg = cf_config_new();
    assert_non_null(cfg);
    assert_null(cf_config_path(cfg));
    assert_string_equal(cf_config_get(cfg, "worker", "threads", "1"), "1");
    assert_int_equal(cf_config_set(cfg, "worker", "threads", "4"), 0);
    assert_int_equal(cf_config_get_int(cfg, "worker", "threads", 1), 4);
    assert_int_equal(cf_config_set(cfg, "WORKER", "Threads", "8"), 0);
    assert_int_equal(cf_config_get_int(cfg, "worker", "threads", 1), 8);
    setenv("CERTFLEET_WORKER_THREADS", "16", 1);
    assert_int_equal(cf_config_get_int(cfg, "worker", "threads", 1), 16);
    unsetenv("CERTFLEET_WORKER_THREADS");

    /* A value set over one from the file replaces it. */
    char err[256];
    cf_config_t *file = s_load_text("[worker]\nthreads = 2\n", err, sizeof err);
    assert_non_null(file);
    assert_int_equal(cf_config_set(file, "worker", "threads", "3"), 0);
    assert_string_equal(cf_config_get(file, "worker", "threads", NULL), "3");
    cf_config_destroy(&file);
    cf_config_destroy(&cfg);
}

int main(void)
{
    /* The warnings for bad values are expected; keep the output for failures. */
    cf_log_init("test_config", CF_LOG_ERROR, false);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_parses_sections_and_comments),
        cmocka_unit_test(test_config_refuses_malformed_lines),
        cmocka_unit_test(test_config_missing_file),
        cmocka_unit_test(test_config_path_from_environment),
        cmocka_unit_test(test_config_precedence),
        cmocka_unit_test(test_config_ints),
        cmocka_unit_test(test_config_bools),
        cmocka_unit_test(test_config_set),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
