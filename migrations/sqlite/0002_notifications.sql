-- Cascade notifications. notification_jobs is both the transactional outbox (written in the
-- transaction that writes the message) and, without RabbitMQ, the job queue itself.

CREATE TABLE notification_jobs (
    -- AUTOINCREMENT: an id is never used twice, so the relay's delete after a broker confirm
    -- cannot hit a newer job that reused the id of a consumed one.
    id              INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    message_id      BIGINT NOT NULL REFERENCES messages (id),
    -- 'customer' (recipient_id = customer id) or 'company' (recipient_id = company id)
    recipient_kind  TEXT NOT NULL,
    recipient_id    BIGINT NOT NULL,
    -- 'first' or 'escalation'
    stage           TEXT NOT NULL,
    run_at          BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,
    -- A worker holds the job until then; a crashed worker's job comes back afterwards.
    locked_until    BIGINT NOT NULL DEFAULT 0,
    created_at      BIGINT NOT NULL
);
CREATE INDEX notification_jobs_due ON notification_jobs (run_at);

-- Every decision the worker made. The unique key makes a step happen at most once, even when
-- a job is run again after a crash.
CREATE TABLE notification_log (
    id              INTEGER PRIMARY KEY,
    conversation_id BIGINT NOT NULL,
    message_id      BIGINT NOT NULL,
    recipient_kind  TEXT NOT NULL,
    recipient_id    BIGINT NOT NULL,
    stage           TEXT NOT NULL,
    -- 'browser', 'push', 'email', or 'none' when suppressed
    channel         TEXT NOT NULL,
    -- 'sent', 'suppressed', 'failed'
    status          TEXT NOT NULL,
    detail          TEXT NOT NULL,
    created_at      BIGINT NOT NULL,
    CONSTRAINT notification_log_step_key UNIQUE (message_id, recipient_kind, recipient_id, stage, channel)
);
CREATE INDEX notification_log_conversation ON notification_log (conversation_id, recipient_kind, recipient_id, channel, created_at);

-- A recipient's own switches; no row = the defaults (everything on, quiet 22:00–08:00).
CREATE TABLE notification_settings (
    recipient_kind TEXT NOT NULL,
    recipient_id   BIGINT NOT NULL,
    email          BIGINT NOT NULL DEFAULT 1,
    push           BIGINT NOT NULL DEFAULT 1,
    quiet_start    BIGINT,
    quiet_end      BIGINT,
    PRIMARY KEY (recipient_kind, recipient_id)
);

-- Browsers and devices bound for Web Push (RFC 8030/8291), per customer or operator.
CREATE TABLE push_subscriptions (
    id             INTEGER PRIMARY KEY,
    principal_kind TEXT NOT NULL,
    principal_id   BIGINT NOT NULL,
    endpoint       TEXT NOT NULL,
    p256dh         TEXT NOT NULL,
    auth           TEXT NOT NULL,
    created_at     BIGINT NOT NULL,
    CONSTRAINT push_subscriptions_endpoint_key UNIQUE (endpoint)
);
CREATE INDEX push_subscriptions_principal ON push_subscriptions (principal_kind, principal_id);
