/* cf_test_metrics: what tests of the metrics port repeat: a request with libcurl to a port on
 * loopback, a scrape of /metrics, and the value of one series in the exposition text. The
 * caller runs curl_global_init once. */
#ifndef CF_TEST_METRICS_H
#define CF_TEST_METRICS_H

#include <stddef.h>

/* METHOD PATH on 127.0.0.1:PORT (HEAD asks for no body, POST sends a small form): the status,
 * or -1 when nothing answers. The body into *BODY when BODY is not NULL (caller frees; "" when
 * there is none), the Content-Type into CTYPE when it is not NULL. */
long cf_test_http(int port, const char *method, const char *path, char **body, char *ctype,
                  size_t ctype_len);
/* GET /metrics on PORT, which must answer 200: the text (caller frees). */
char *cf_test_scrape(int port);
/* The value of SERIES (name and labels exactly as exposed) in the exposition TEXT; 0 when it
 * is not there (a counter that never moved is not registered yet). */
double cf_test_metric_value(const char *text, const char *series);

#endif
