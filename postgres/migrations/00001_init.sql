-- +goose Up
-- Ids compare in byte order (COLLATE "C") so that ORDER BY id agrees with
-- Go's string order, which the eviction and listing tie-breaks use.
CREATE TABLE users (
    id            TEXT COLLATE "C" PRIMARY KEY,
    email         TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    created_at    TIMESTAMPTZ NOT NULL,
    -- Named, because CreateUser recognises a taken email by this constraint.
    CONSTRAINT users_email_key UNIQUE (email)
);

CREATE TABLE sessions (
    id           TEXT COLLATE "C" PRIMARY KEY,
    user_id      TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash BYTEA NOT NULL,
    prev_hash    BYTEA NULL,
    generation   BIGINT NOT NULL DEFAULT 0,
    rotated_at   TIMESTAMPTZ NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    last_used_at TIMESTAMPTZ NOT NULL,
    expires_at   TIMESTAMPTZ NOT NULL,
    user_agent   TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT '',
    CHECK (expires_at >= created_at)
);
-- A user's sessions, in eviction/listing order.
CREATE INDEX sessions_user_id_last_used_at_idx ON sessions (user_id, last_used_at);
-- The expiry sweeper looks sessions up by either deadline.
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);
CREATE INDEX sessions_last_used_at_idx ON sessions (last_used_at);

CREATE TABLE signing_keys (
    kid         TEXT COLLATE "C" PRIMARY KEY,
    alg         TEXT NOT NULL,
    private_key BYTEA NOT NULL,
    public_key  BYTEA NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL,
    retired_at  TIMESTAMPTZ NULL
);
-- At most one current key: concurrent EnsureCurrentKey calls race on this index.
CREATE UNIQUE INDEX signing_keys_one_current_idx ON signing_keys ((true)) WHERE retired_at IS NULL;

CREATE TABLE secrets (
    name       TEXT PRIMARY KEY,
    value      BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);

-- +goose Down
DROP TABLE secrets;
DROP TABLE signing_keys;
DROP TABLE sessions;
DROP TABLE users;
