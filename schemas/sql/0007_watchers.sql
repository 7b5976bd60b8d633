-- Watchers (django-ca's Watcher): mail addresses told when the certificates they watch are
-- about to expire, and the record of every expiry notice (docs/notify.md).

-- One row per address. Addresses match without regard to case (the unique index on
-- lower(mail)); the spelling first given is kept. The CHECK is the last line of defence: the
-- signer and the CLI refuse a bad address with a clear message before it gets here.
CREATE TABLE watchers (
    id          bigserial PRIMARY KEY,
    mail        text NOT NULL CHECK (length(mail) BETWEEN 3 AND 254
                                     AND mail ~ '^[^@[:space:][:cntrl:]]+@[^@[:space:][:cntrl:]]+$'),
    name        text NOT NULL DEFAULT '' CHECK (length(name) <= 200 AND name !~ '[[:cntrl:]]'),
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX watchers_mail ON watchers (lower(mail));

-- Which watcher watches which certificate. Removing a watcher or a certificate removes its
-- links (and its notices, below).
CREATE TABLE certificate_watchers (
    certificate_id  bigint NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    watcher_id      bigint NOT NULL REFERENCES watchers (id) ON DELETE CASCADE,
    created_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (certificate_id, watcher_id)
);
CREATE INDEX certificate_watchers_watcher ON certificate_watchers (watcher_id);

-- One row per (certificate, watcher, threshold in days) once that threshold was due: the
-- primary key is what keeps a notice from going out twice. status: pending (due, not yet
-- mailed), sent, failed (the mail server refused or could not be reached; tried again from
-- next_attempt on until the certificate expires), skipped (a notice for fewer days was due
-- at the same time or later, so this one is never mailed).
CREATE TABLE expiry_notices (
    certificate_id  bigint NOT NULL REFERENCES certificates (id) ON DELETE CASCADE,
    watcher_id      bigint NOT NULL REFERENCES watchers (id) ON DELETE CASCADE,
    threshold_days  integer NOT NULL CHECK (threshold_days BETWEEN 1 AND 3650),
    status          text NOT NULL DEFAULT 'pending'
                    CHECK (status IN ('pending', 'sent', 'failed', 'skipped')),
    attempts        integer NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    next_attempt    timestamptz NOT NULL DEFAULT now(),
    last_error      text NOT NULL DEFAULT '',
    sent_at         timestamptz,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (certificate_id, watcher_id, threshold_days)
);
-- The notifier looks for notices still to mail; sent and skipped ones are history.
CREATE INDEX expiry_notices_open ON expiry_notices (next_attempt)
    WHERE status IN ('pending', 'failed');
CREATE INDEX expiry_notices_watcher ON expiry_notices (watcher_id);
