/* The scheduler's tasks: for each periodic job type, the jobs one period submits
 * (docs/scheduler.md "What is scheduled"). A task reads PostgreSQL only; submitting, counting
 * and recording are the scheduler's. */
#ifndef SCHED_TASKS_H
#define SCHED_TASKS_H

#include <stddef.h>
#include <stdint.h>

#include "cf_config.h"
#include "cf_job.h"
#include "cf_pg.h"

/* One job of a period. */
typedef struct {
    uint8_t
        id[CF_JOB_ID_SIZE]; /* derived from (task, CA, scope, shard, period): see sched_job_id */
    char what[192];         /* for logs, e.g. crl.build "root" user/0 */
    unsigned char *params;  /* the packed msgpack params map (owned) */
    size_t params_len;      /* its length */
} sched_job_t;

/* The jobs of one period of one task. */
typedef struct {
    sched_job_t *items; /* the jobs */
    size_t n;           /* how many */
    size_t cap;         /* allocated */
} sched_jobs_t;

/* Read what the task needs from PG and append its jobs for PERIOD to JOBS. 0, or -1 with the
 * reason in ERR. */
typedef int(sched_build_fn)(cf_pg_t *pg, cf_config_t *config, int64_t period, sched_jobs_t *jobs,
                            char *err, size_t errlen);

typedef struct {
    const char *name;         /* task name, also the job type it submits, e.g. "crl.build" */
    const char *interval_key; /* its [scheduler] interval setting */
    int64_t interval_default; /* seconds; 0 turns the task off */
    sched_build_fn *build;    /* makes a period's jobs */
} sched_task_def_t;

/* Every task, ended by a NULL name. */
extern const sched_task_def_t sched_tasks[];

/* The job id of (TASK, CA_ID, SCOPE, SHARD, PERIOD): the first 16 bytes of SHA-256 of
 * "certfleet-scheduler:TASK:CA_ID:SCOPE:SHARD:PERIOD" (CA_ID 0 and SCOPE "" when the job is not
 * about a CA), so that a resend, a restarted or a second scheduler can never make a second job
 * of one period. */
void sched_job_id(const char *task, int64_t ca_id, const char *scope, int shard, int64_t period,
                  uint8_t id[CF_JOB_ID_SIZE]);

/* Free the jobs' params and empty the list (it stays usable). */
void sched_jobs_reset(sched_jobs_t *jobs);

#endif
