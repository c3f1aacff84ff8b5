-- Events, webhook endpoints and the outbox of deliveries. Times are INTEGER
-- Unix microseconds (UTC), like every time in this schema.

-- +goose Up
CREATE TABLE events (
    id          TEXT    PRIMARY KEY,
    type        TEXT    NOT NULL,
    occurred_at INTEGER NOT NULL,
    user_id     TEXT    NOT NULL DEFAULT '',
    session_id  TEXT    NOT NULL DEFAULT '',
    ip          TEXT    NOT NULL DEFAULT '',
    user_agent  TEXT    NOT NULL DEFAULT '',
    data        TEXT    NOT NULL DEFAULT '{}' -- a JSON object
) STRICT;
-- Listing in order (newest last, after a cursor), by user, by type; the
-- retention sweep deletes by occurred_at through the first.
CREATE INDEX events_occurred_at_id ON events (occurred_at, id);
CREATE INDEX events_user_id ON events (user_id, occurred_at, id);
CREATE INDEX events_type ON events (type, occurred_at, id);

CREATE TABLE webhook_endpoints (
    id         TEXT    PRIMARY KEY,
    url        TEXT    NOT NULL,
    events     TEXT    NOT NULL, -- a JSON array of event types, or ["*"]
    -- The whsec_ signing secret. It is a secret: shown once, at creation,
    -- and never logged.
    secret     TEXT    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

CREATE TABLE outbox (
    id              TEXT    PRIMARY KEY,
    channel         TEXT    NOT NULL CHECK (channel IN ('webhook', 'mail')),
    target          TEXT    NOT NULL,
    event_id        TEXT    NOT NULL,
    payload         BLOB    NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_owner     TEXT    NULL,
    lease_until     INTEGER NULL,
    created_at      INTEGER NOT NULL,
    last_attempt_at INTEGER NULL,
    last_status     TEXT    NOT NULL DEFAULT ''
) STRICT;
-- The claim: pending messages in due order.
CREATE INDEX outbox_status_next_attempt_at ON outbox (status, next_attempt_at);
-- One delivery of an event per target; redelivery finds it by this.
CREATE UNIQUE INDEX outbox_channel_target_event_id ON outbox (channel, target, event_id);
-- An endpoint's deliveries, newest first.
CREATE INDEX outbox_channel_target_created_at ON outbox (channel, target, created_at);

-- +goose Down
DROP TABLE outbox;
DROP TABLE webhook_endpoints;
DROP TABLE events;
