/* cf_log: one level-gated logging API writing text or JSON lines on stderr, and the [AUDIT]
 * lines every issuance, revocation and signing writes. stderr is sent to a temporary file
 * for each test and read back. Reads as cf_log's usage example. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <regex.h>

#include "cf_config.h"
#include "cf_log.h"

/* stderr as it was, while a test captures it. */
typedef struct {
    int saved;     /* dup of the real stderr */
    char path[64]; /* file stderr goes to */
} s_capture_t;

static void s_capture_start(s_capture_t *c)
{
    fflush(stderr);
    snprintf(c->path, sizeof c->path, "/tmp/cf_test_log_XXXXXX");
    int fd = mkstemp(c->path);
    assert_true(fd >= 0);
    c->saved = dup(STDERR_FILENO);
    assert_true(c->saved >= 0);
    assert_true(dup2(fd, STDERR_FILENO) >= 0);
    close(fd);
}

/* Restore stderr and return what was written to it (caller frees). */
static char *s_capture_end(s_capture_t *c)
{
    fflush(stderr);
    dup2(c->saved, STDERR_FILENO);
    close(c->saved);
    FILE *f = fopen(c->path, "rb");
    assert_non_null(f);
    char *buf = calloc(1, 65536);
    assert_non_null(buf);
    size_t n = fread(buf, 1, 65535, f);
    buf[n] = '\0';
    fclose(f);
    unlink(c->path);
    return buf;
}

static int s_count_lines(const char *text)
{
    int n = 0;
    for (; *text; text++)
        n += *text == '\n';
    return n;
}

/* Arguments of a message below the level are never evaluated: a costly argument (a hex dump,
 * a certificate's subject) costs nothing when the line is not written. */
static void test_log_gating_skips_arguments(void **state)
{
    int evaluated = 0, after_low, after_high;
    bool enabled[4];
    s_capture_t cap;
    s_capture_start(&cap);
    cf_log_init("gate", CF_LOG_WARN, false);
    for (int lvl = CF_LOG_ERROR; lvl <= CF_LOG_DEBUG; lvl++)
        enabled[lvl] = cf_log_enabled((cf_log_level_t)lvl);
    cf_log_debug("debug %d", ++evaluated);
    cf_log_info("info %d", ++evaluated);
    after_low = evaluated;
    cf_log_warn("warn %d", ++evaluated);
    cf_log_error("error %d", ++evaluated);
    after_high = evaluated;
    cf_log_init("gate", CF_LOG_DEBUG, false);
    cf_log_debug("debug %d", ++evaluated);
    char *out = s_capture_end(&cap);
    assert_true(enabled[CF_LOG_ERROR] && enabled[CF_LOG_WARN]);
    assert_false(enabled[CF_LOG_INFO] || enabled[CF_LOG_DEBUG]);
    assert_int_equal(after_low, 0);
    assert_int_equal(after_high, 2);
    assert_int_equal(evaluated, 3);
    assert_int_equal(s_count_lines(out), 3);
    assert_null(strstr(out, "info "));
    assert_non_null(strstr(out, "WARN warn 1\n"));
    assert_non_null(strstr(out, "ERROR error 2\n"));
    assert_non_null(strstr(out, "DEBUG debug 3 ("));
    free(out);
}

/* A text line: "<UTC time> <proc>[<pid>] <LEVEL> <message>"; debug lines say where from. */
static void test_log_text_format(void **state)
{
    s_capture_t cap;
    s_capture_start(&cap);
    cf_log_init("certfleet-test", CF_LOG_DEBUG, false);
    cf_log_info("issued certificate for \"%s\"", "example.com");
    cf_log_debug("a debug line");
    /* A message cannot start a line of its own. */
    cf_log_warn("first\nsecond\tthird\x01");
    char *out = s_capture_end(&cap);
    assert_int_equal(s_count_lines(out), 3);

    char want[256];
    snprintf(want, sizeof want,
             "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z "
             "certfleet-test\\[%d\\] INFO issued certificate for \"example\\.com\"\n",
             (int)getpid());
    regex_t re;
    assert_int_equal(regcomp(&re, want, REG_EXTENDED | REG_NEWLINE), 0);
    assert_int_equal(regexec(&re, out, 0, NULL, 0), 0);
    regfree(&re);
    assert_non_null(strstr(out, " DEBUG a debug line (" __FILE__ ":"));
    assert_non_null(strstr(out, " WARN first\\nsecond\\tthird\\x01\n"));
    free(out);
}

/* A JSON line: one object per line with ts, level, proc, pid and msg; debug lines add src.
 * Whatever the message holds, the line stays valid JSON. */
static void test_log_json_format(void **state)
{
    s_capture_t cap;
    s_capture_start(&cap);
    cf_log_init("certfleet-json", CF_LOG_DEBUG, true);
    cf_log_error("could not load private key for CA \"%s\": %s", "root", "bad decrypt");
    cf_log_info("line\nbreak, tab\t, bad utf-8 \xff\xfe, backslash \\");
    cf_log_debug("debug %d", 42);
    char *out = s_capture_end(&cap);
    assert_int_equal(s_count_lines(out), 3);

    static const char *const levels[] = {"ERROR", "INFO", "DEBUG"};
    char *save = NULL;
    int i = 0;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save), i++) {
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (!obj)
            fail_msg("line %d is not JSON (%s): %s", i, jerr.text, line);
        assert_true(json_is_string(json_object_get(obj, "ts")));
        assert_int_equal(strlen(json_string_value(json_object_get(obj, "ts"))), 24);
        assert_string_equal(json_string_value(json_object_get(obj, "level")), levels[i]);
        assert_string_equal(json_string_value(json_object_get(obj, "proc")), "certfleet-json");
        assert_int_equal(json_integer_value(json_object_get(obj, "pid")), getpid());
        assert_true(json_is_string(json_object_get(obj, "msg")));
        assert_null(json_object_get(obj, "audit"));
        const char *msg = json_string_value(json_object_get(obj, "msg"));
        if (i == 0)
            assert_string_equal(msg, "could not load private key for CA \"root\": bad decrypt");
        if (i == 1)
            assert_string_equal(
                msg, "line\nbreak, tab\t, bad utf-8 \xef\xbf\xbd\xef\xbf\xbd, backslash \\");
        if (i == 2) {
            assert_string_equal(msg, "debug 42");
            assert_non_null(strstr(json_string_value(json_object_get(obj, "src")), __FILE__));
        }
        json_decref(obj);
    }
    assert_int_equal(i, 3);
    free(out);
}

/* An audit line is written whatever the level: "[AUDIT] event key=value ...", values with
 * blanks, quotes or '=' in double quotes so that the line splits unambiguously. */
static void test_log_audit_text(void **state)
{
    s_capture_t cap;
    s_capture_start(&cap);
    cf_log_init("certfleet-signer", CF_LOG_ERROR, false);
    cf_audit("cert.issue", "ca", "root", "subject", "CN=my host", "serial", "01ab", "note",
             "say \"hi\"", "empty", "", "missing", NULL, NULL);
    cf_audit("crl.sign", NULL);
    char *out = s_capture_end(&cap);
    assert_int_equal(s_count_lines(out), 2);
    char want[128];
    snprintf(want, sizeof want, "certfleet-signer[%d] [AUDIT] cert.issue ", (int)getpid());
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "[AUDIT] cert.issue ca=root subject=\"CN=my host\" serial=01ab "
                                "note=\"say \\\"hi\\\"\" empty=\"\" missing=\"\"\n"));
    assert_non_null(strstr(out, "[AUDIT] crl.sign\n"));
    free(out);
}

static void test_log_audit_json(void **state)
{
    s_capture_t cap;
    s_capture_start(&cap);
    cf_log_init("certfleet-signer", CF_LOG_ERROR, true);
    cf_audit("cert.revoke", "ca", "root", "reason", "key compromise", NULL);
    char *out = s_capture_end(&cap);
    assert_int_equal(s_count_lines(out), 1);
    json_error_t jerr;
    json_t *obj = json_loads(out, 0, &jerr);
    if (!obj)
        fail_msg("audit line is not JSON (%s): %s", jerr.text, out);
    assert_true(json_is_true(json_object_get(obj, "audit")));
    assert_true(json_is_string(json_object_get(obj, "ts")));
    assert_string_equal(json_string_value(json_object_get(obj, "proc")), "certfleet-signer");
    assert_int_equal(json_integer_value(json_object_get(obj, "pid")), getpid());
    assert_string_equal(json_string_value(json_object_get(obj, "event")), "cert.revoke");
    assert_string_equal(json_string_value(json_object_get(obj, "ca")), "root");
    assert_string_equal(json_string_value(json_object_get(obj, "reason")), "key compromise");
    json_decref(obj);
    free(out);
}

/* A message far longer than a line is cut, and the JSON line stays valid. */
static void test_log_long_message(void **state)
{
    size_t len = 20000;
    char *big = malloc(len + 1);
    assert_non_null(big);
    for (size_t i = 0; i < len; i++)
        big[i] = (char)(i % 7 == 0 ? '"' : 'a');
    big[len] = '\0';
    s_capture_t cap;
    s_capture_start(&cap);
    cf_log_init("long", CF_LOG_INFO, true);
    cf_log_info("%s", big);
    cf_audit("big", "value", big, "after", "x", NULL);
    char *out = s_capture_end(&cap);
    assert_int_equal(s_count_lines(out), 2);
    char *save = NULL;
    for (char *line = strtok_r(out, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        json_error_t jerr;
        json_t *obj = json_loads(line, 0, &jerr);
        if (!obj)
            fail_msg("cut line is not JSON: %s", jerr.text);
        json_decref(obj);
    }
    free(out);
    free(big);
}

/* cf_log_configure reads [log] level and format. */
static void test_log_configure(void **state)
{
    cf_config_t *cfg = cf_config_new();
    assert_int_equal(cf_config_set(cfg, "log", "level", "debug"), 0);
    assert_int_equal(cf_config_set(cfg, "log", "format", "json"), 0);
    s_capture_t cap;
    s_capture_start(&cap);
    cf_log_configure(cfg, "configured");
    bool debug_on = cf_log_enabled(CF_LOG_DEBUG);
    cf_log_info("hello");
    assert_int_equal(cf_config_set(cfg, "log", "level", "loud"), 0);
    assert_int_equal(cf_config_set(cfg, "log", "format", "text"), 0);
    cf_log_configure(cfg, "configured");
    bool info_after = cf_log_enabled(CF_LOG_INFO), debug_after = cf_log_enabled(CF_LOG_DEBUG);
    char *out = s_capture_end(&cap);
    assert_true(debug_on);
    /* An unknown level falls back to info, and says so. */
    assert_true(info_after);
    assert_false(debug_after);
    assert_non_null(strstr(out, "{\"ts\":"));
    assert_non_null(strstr(out, "\"proc\":\"configured\""));
    assert_non_null(strstr(out, "WARN unknown log level \"loud\", using \"info\""));
    free(out);
    cf_config_destroy(&cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_log_gating_skips_arguments),
        cmocka_unit_test(test_log_text_format),
        cmocka_unit_test(test_log_json_format),
        cmocka_unit_test(test_log_audit_text),
        cmocka_unit_test(test_log_audit_json),
        cmocka_unit_test(test_log_long_message),
        cmocka_unit_test(test_log_configure),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
