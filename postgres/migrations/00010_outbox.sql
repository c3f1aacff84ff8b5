-- +goose Up
-- Events, webhook endpoints and the outbox of deliveries.
CREATE TABLE events (
    id          TEXT COLLATE "C" PRIMARY KEY,
    type        TEXT NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    user_id     TEXT COLLATE "C" NOT NULL DEFAULT '',
    session_id  TEXT COLLATE "C" NOT NULL DEFAULT '',
    ip          TEXT NOT NULL DEFAULT '',
    user_agent  TEXT NOT NULL DEFAULT '',
    data        JSONB NOT NULL DEFAULT '{}'
);
-- Listing in order (newest last, after a cursor), by user, by type; the
-- retention sweep deletes by occurred_at through the first.
CREATE INDEX events_occurred_at_id_idx ON events (occurred_at, id);
CREATE INDEX events_user_id_idx ON events (user_id, occurred_at, id);
CREATE INDEX events_type_idx ON events (type, occurred_at, id);

CREATE TABLE webhook_endpoints (
    id         TEXT COLLATE "C" PRIMARY KEY,
    url        TEXT NOT NULL,
    events     TEXT[] NOT NULL, -- event types, or {'*'}
    -- The whsec_ signing secret. It is a secret: shown once, at creation,
    -- and never logged.
    secret     TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE outbox (
    id              TEXT COLLATE "C" PRIMARY KEY,
    channel         TEXT NOT NULL CHECK (channel IN ('webhook', 'mail')),
    target          TEXT COLLATE "C" NOT NULL,
    event_id        TEXT COLLATE "C" NOT NULL,
    payload         BYTEA NOT NULL,
    status          TEXT NOT NULL CHECK (status IN ('pending', 'delivered', 'failed')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    lease_owner     TEXT NULL,
    lease_until     TIMESTAMPTZ NULL,
    created_at      TIMESTAMPTZ NOT NULL,
    last_attempt_at TIMESTAMPTZ NULL,
    last_status     TEXT NOT NULL DEFAULT ''
);
-- The claim: pending messages in due order.
CREATE INDEX outbox_status_next_attempt_at_idx ON outbox (status, next_attempt_at);
-- One delivery of an event per target; redelivery finds it by this. Named,
-- because InsertOutbox recognises a duplicate by this constraint.
CREATE UNIQUE INDEX outbox_channel_target_event_id_key ON outbox (channel, target, event_id);
-- An endpoint's deliveries, newest first.
CREATE INDEX outbox_channel_target_created_at_idx ON outbox (channel, target, created_at);

-- +goose Down
DROP TABLE outbox;
DROP TABLE webhook_endpoints;
DROP TABLE events;
