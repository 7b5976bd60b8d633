-- Job results: exactly-once in effect (DESIGN.md "Delivery"). A worker writes the reply of a
-- job in the same transaction as the job's own work; a repeated job id gets this stored reply
-- and does not run again.
CREATE TABLE job_results (
    id          bytea PRIMARY KEY CHECK (octet_length(id) = 16),
    type        text NOT NULL,
    status      text NOT NULL CHECK (status IN ('ok', 'error')),
    reply       bytea NOT NULL,          -- the whole reply envelope, MessagePack
    worker      text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX job_results_created_at ON job_results (created_at);
