-- One-time tokens of account mail (email verification, password reset),
-- and the outbox index that lets a worker claim by channel. Only the
-- SHA-256 of a token is kept: a dump holds no usable link.

-- +goose Up
CREATE TABLE account_tokens (
    hash       BLOB    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('verify_email', 'reset_password')),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NULL,
    CHECK (expires_at >= created_at)
) STRICT;
-- A newer token supersedes the user's older ones of its kind.
CREATE INDEX account_tokens_user_id_kind ON account_tokens (user_id, kind);
-- The sweep deletes expired tokens.
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);

-- A worker claims only the channels it can send: mail waiting for an SMTP
-- server must not lie in the way of its webhook claims.
CREATE INDEX outbox_status_channel_next_attempt_at ON outbox (status, channel, next_attempt_at);

-- +goose Down
DROP INDEX outbox_status_channel_next_attempt_at;
DROP TABLE account_tokens;
