/* cf_test_metrics: requests to metrics ports and series values (cf_test_metrics.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cf_test_metrics.h"

typedef struct {
    char *data; /* what came so far, NUL-terminated, or NULL */
    size_t len; /* its length */
} s_body_t;

static size_t s_collect(char *ptr, size_t size, size_t n, void *arg)
{
    s_body_t *b = arg;
    char *data = realloc(b->data, b->len + size * n + 1);
    assert_non_null(data);
    memcpy(data + b->len, ptr, size * n);
    b->data = data;
    b->len += size * n;
    b->data[b->len] = '\0';
    return size * n;
}

long cf_test_http(int port, const char *method, const char *path, char **body, char *ctype,
                  size_t ctype_len)
{
    CURL *curl = curl_easy_init();
    assert_non_null(curl);
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d%s", port, path);
    s_body_t b = {NULL, 0};
    curl_easy_setopt(curl, CURLOPT_URL, url);
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
    if (strcmp(method, "POST") == 0)
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, "x=1");
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s_collect);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
    long status = -1;
    if (curl_easy_perform(curl) == CURLE_OK)
        curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (ctype) {
        char *ct = NULL;
        if (status >= 0)
            curl_easy_getinfo(curl, CURLINFO_CONTENT_TYPE, &ct);
        snprintf(ctype, ctype_len, "%s", ct ? ct : "");
    }
    curl_easy_cleanup(curl);
    if (body)
        *body = b.data ? b.data : strdup("");
    else
        free(b.data);
    return status;
}

char *cf_test_scrape(int port)
{
    char *text = NULL;
    long status = cf_test_http(port, "GET", "/metrics", &text, NULL, 0);
    if (status != 200) {
        free(text);
        fail_msg("GET /metrics on port %d answered %ld, not 200", port, status);
    }
    return text;
}

double cf_test_metric_value(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtod(p + n + 1, NULL);
    }
    return 0;
}
