-- Switchboard core schema (SQLite). Times are milliseconds since the Unix epoch; flags are
-- 0/1 integers so the same queries read identically on PostgreSQL and SQLite.

CREATE TABLE server_secrets (
    name  TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE companies (
    id               INTEGER PRIMARY KEY,
    name             TEXT NOT NULL,
    email            TEXT NOT NULL,
    city             TEXT,
    timezone         TEXT NOT NULL,
    accepts_messages BIGINT NOT NULL DEFAULT 1,
    created_at       BIGINT NOT NULL
);
CREATE INDEX companies_lower_name ON companies (lower(name));

CREATE TABLE branches (
    id         INTEGER PRIMARY KEY,
    company_id BIGINT NOT NULL REFERENCES companies (id),
    name       TEXT NOT NULL,
    city       TEXT NOT NULL,
    timezone   TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX branches_company ON branches (company_id);

CREATE TABLE operators (
    id            INTEGER PRIMARY KEY,
    company_id    BIGINT NOT NULL REFERENCES companies (id),
    name          TEXT NOT NULL,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    CONSTRAINT operators_email_key UNIQUE (email)
);
CREATE INDEX operators_company ON operators (company_id);

-- No rows for an operator = the operator works for the whole company.
CREATE TABLE operator_branches (
    operator_id BIGINT NOT NULL REFERENCES operators (id),
    branch_id   BIGINT NOT NULL REFERENCES branches (id),
    PRIMARY KEY (operator_id, branch_id)
);
CREATE INDEX operator_branches_branch ON operator_branches (branch_id);

CREATE TABLE customers (
    id         INTEGER PRIMARY KEY,
    name       TEXT NOT NULL,
    city       TEXT,
    timezone   TEXT,
    email      TEXT,
    created_at BIGINT NOT NULL
);

-- One conversation per customer and company (and branch); branch_key is branch_id or 0 so the
-- unique constraint also holds for conversations without a branch.
CREATE TABLE conversations (
    id                   INTEGER PRIMARY KEY,
    customer_id          BIGINT NOT NULL REFERENCES customers (id),
    company_id           BIGINT NOT NULL REFERENCES companies (id),
    branch_id            BIGINT REFERENCES branches (id),
    branch_key           BIGINT NOT NULL,
    created_at           BIGINT NOT NULL,
    last_message_at      BIGINT,
    customer_read_id     BIGINT NOT NULL DEFAULT 0,
    company_read_id      BIGINT NOT NULL DEFAULT 0,
    customer_unread      BIGINT NOT NULL DEFAULT 0,
    company_unread       BIGINT NOT NULL DEFAULT 0,
    awaiting_reply_since BIGINT,
    CONSTRAINT conversations_pair_key UNIQUE (customer_id, company_id, branch_key)
);
CREATE INDEX conversations_company ON conversations (company_id, last_message_at);

CREATE TABLE messages (
    id              INTEGER PRIMARY KEY,
    conversation_id BIGINT NOT NULL REFERENCES conversations (id),
    sender_kind     TEXT NOT NULL,
    sender_id       BIGINT NOT NULL,
    sender_name     TEXT NOT NULL,
    text            TEXT NOT NULL,
    client_msg_id   TEXT,
    created_at      BIGINT NOT NULL,
    CONSTRAINT messages_client_msg_id_key UNIQUE (conversation_id, sender_kind, sender_id, client_msg_id)
);
CREATE INDEX messages_history ON messages (conversation_id, id);

-- Every principal's ordered event stream. last_seq is bumped in the transaction that appends,
-- which makes seq gap-free; retained_after is the seq below which events were trimmed.
CREATE TABLE inboxes (
    inbox_key      TEXT PRIMARY KEY,
    last_seq       BIGINT NOT NULL DEFAULT 0,
    retained_after BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE inbox_events (
    inbox_key  TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    event_type TEXT NOT NULL,
    data       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (inbox_key, seq)
);
