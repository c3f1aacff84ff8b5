-- Passkeys (WebAuthn discoverable credentials) and the challenges of
-- ceremonies in progress. A challenge lives in the database so that any
-- instance can finish a ceremony another began; it is deleted when used.

-- +goose Up
CREATE TABLE passkeys (
    id              TEXT    PRIMARY KEY,
    user_id         TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   BLOB    NOT NULL UNIQUE,
    name            TEXT    NOT NULL,
    record          BLOB    NOT NULL,
    sign_count      INTEGER NOT NULL CHECK (sign_count >= 0),
    backup_eligible INTEGER NOT NULL,
    backup_state    INTEGER NOT NULL,
    clone_warning   INTEGER NOT NULL DEFAULT 0,
    created_at      INTEGER NOT NULL,
    last_used_at    INTEGER NULL
) STRICT;
CREATE INDEX passkeys_user_id ON passkeys (user_id);

CREATE TABLE passkey_challenges (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('register', 'login')),
    user_id    TEXT    NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT    NULL,
    state      BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CHECK (expires_at >= created_at),
    CHECK ((kind = 'register') = (user_id IS NOT NULL))
) STRICT;
-- The sweep deletes expired challenges.
CREATE INDEX passkey_challenges_expires_at ON passkey_challenges (expires_at);

-- +goose Down
DROP TABLE passkey_challenges;
DROP TABLE passkeys;
