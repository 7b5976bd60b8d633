/* Fuzz target: the frames of the fabric beyond the envelope, read from peers. The broker
 * reads the status and error code of every reply a worker sends (for its metrics) without
 * decoding the rest; a worker reads the broker's authorization frame of a REQUEST (the
 * client's allowed CAs) and checks a job against it. Neither may crash, leak or allow what
 * the frame does not allow. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cf_curve.h"
#include "cf_job.h"
#include "cf_metrics.h"

/* A job naming the CA "root", and the CAs with ACME: every other name. */
static const uint8_t s_job[] = {
    0x84,                                                                             /* map of 4 */
    0xa1, 'v', 0x01,                                                                  /* v: 1 */
    0xa2, 'i', 'd',  0xc4, 0x10, 1,    2,    3,    4,   5,   6,    7,   8,   9,   10, /* id: bin 16
                                                                                       */
    11,   12,  13,   14,   15,   16,                                                  /* */
    0xa4, 't', 'y',  'p',  'e',  0xa9, 'c',  'r',  'l', '.', 'b',  'u', 'i', 'l', 'd', 0xa6,
    'p',  'a', 'r',  'a',  'm',  's',  0x81, 0xa2, 'c', 'a', 0xa4, 'r', 'o', 'o', 't',
};

static int s_acme(void *arg, const char *ca)
{
    (void)arg;
    return strcmp(ca, "root") != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char outcome[64];
    cf_metrics_reply_outcome(data, size, outcome, sizeof outcome);
    /* The outcome becomes a label value: only [a-z0-9_] or the fixed words. */
    for (const char *p = outcome; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_'))
            abort();

    static cf_job_t *job;
    if (!job) {
        cf_error_t err = {0};
        uint8_t id[CF_JOB_ID_SIZE];
        bool has_id;
        job = cf_job_decode(s_job, sizeof s_job, &err, id, &has_id);
        if (!job)
            abort();
    }
    cf_error_t err = {0};
    int rc = cf_curve_check_auth(data, size, job, s_acme, NULL, &err);
    /* "root" has no ACME here: a frame that allows it only through "@acme" must refuse. */
    if (rc != 0 && rc != -1)
        abort();
    if (rc == -1 && strcmp(err.code, "forbidden") != 0)
        abort();
    return 0;
}
