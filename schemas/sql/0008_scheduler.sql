-- certfleet-scheduler (docs/scheduler.md): one row per (task, period) that a leader claimed
-- before submitting that period's jobs. The primary key is what makes a period run once: the
-- leader inserts with ON CONFLICT DO NOTHING and submits only when its insert won.
-- period is floor(unix seconds / interval_s); jobs and failures are filled in when the last
-- reply came (finished_at), error holds the first failure.
CREATE TABLE scheduler_runs (
    task         text NOT NULL,
    period       bigint NOT NULL CHECK (period >= 0),
    interval_s   integer NOT NULL CHECK (interval_s > 0),
    scheduler    text NOT NULL,
    fence        bigint NOT NULL,
    submitted_at timestamptz NOT NULL DEFAULT now(),
    finished_at  timestamptz,
    jobs         integer NOT NULL DEFAULT 0,
    failures     integer NOT NULL DEFAULT 0,
    error        text NOT NULL DEFAULT '',
    PRIMARY KEY (task, period)
);
CREATE INDEX scheduler_runs_submitted_at ON scheduler_runs (submitted_at);

-- The newest leader's fencing token (Redis "fence:scheduler"): a claim raises it and is refused
-- when its token is lower, so a leader whose lock lapsed while it stalled cannot claim after a
-- newer leader did. One row.
CREATE TABLE scheduler_fence (
    id         boolean PRIMARY KEY DEFAULT true CHECK (id),
    fence      bigint NOT NULL,
    scheduler  text NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO scheduler_fence (id, fence, scheduler) VALUES (true, 0, '');
