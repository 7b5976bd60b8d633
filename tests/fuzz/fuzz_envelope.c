/* Fuzz target: the job envelope and reply decoders on untrusted bytes (what the broker and
 * workers read from the network). Must never crash, leak, or allocate beyond the limits. */
#include <stdint.h>
#include <stdlib.h>

#include "cf_job.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cf_error_t err = {0};
    uint8_t id[CF_JOB_ID_SIZE];
    bool has_id;
    cf_job_t *job = cf_job_decode(data, size, &err, id, &has_id);
    if (job) {
        /* Walk the params the way handlers do. */
        cf_msgpack_map_get(cf_job_params(job), "ca");
        json_t *j = cf_msgpack_to_json(cf_job_params(job), &err);
        json_decref(j);
        cf_job_destroy(&job);
    }
    cf_reply_t *reply = cf_reply_decode(data, size, &err);
    if (reply) {
        json_t *j = cf_reply_to_json(reply);
        json_decref(j);
        cf_reply_destroy(&reply);
    }
    return 0;
}
