-- The initial schema. Times are INTEGER Unix microseconds (UTC), the precision
-- sessiond.Now keeps; NULL stands for the zero time (not rotated, not retired).
-- STRICT tables make SQLite refuse a value of the wrong type instead of
-- storing it as whatever it is.

-- +goose Up
CREATE TABLE users (
    id            TEXT    PRIMARY KEY,
    email         TEXT    NOT NULL UNIQUE,
    password_hash TEXT    NOT NULL,
    created_at    INTEGER NOT NULL
) STRICT;

CREATE TABLE sessions (
    id           TEXT    PRIMARY KEY,
    user_id      TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    refresh_hash BLOB    NOT NULL,
    prev_hash    BLOB,
    generation   INTEGER NOT NULL DEFAULT 0,
    rotated_at   INTEGER,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    user_agent   TEXT    NOT NULL DEFAULT '',
    ip           TEXT    NOT NULL DEFAULT '',
    CHECK (expires_at >= created_at)
) STRICT;

-- Login (eviction) and listing read one user's sessions by recency.
CREATE INDEX sessions_user_id_last_used_at ON sessions (user_id, last_used_at);
-- The expiry sweeper finds rows past either expiry.
CREATE INDEX sessions_expires_at ON sessions (expires_at);
CREATE INDEX sessions_last_used_at ON sessions (last_used_at);

CREATE TABLE signing_keys (
    kid         TEXT    PRIMARY KEY,
    alg         TEXT    NOT NULL,
    private_key BLOB    NOT NULL,
    public_key  BLOB    NOT NULL,
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER
) STRICT;

-- At most one current key: every unretired row has the same indexed value
-- (1), so a second one violates uniqueness. This is what makes
-- EnsureCurrentKey race-safe across instances.
CREATE UNIQUE INDEX signing_keys_one_current ON signing_keys ((retired_at IS NULL)) WHERE retired_at IS NULL;

CREATE TABLE secrets (
    name       TEXT    PRIMARY KEY,
    value      BLOB    NOT NULL,
    created_at INTEGER NOT NULL
) STRICT;

-- +goose Down
DROP TABLE secrets;
DROP TABLE signing_keys;
DROP TABLE sessions;
DROP TABLE users;
