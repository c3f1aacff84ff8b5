-- Passkey challenges for a known user: the second step of a password
-- login (kind mfa, bound to the mfa_token's hash in session_id) and a
-- reauthentication (kind reauth, bound to the session). Only a usernameless
-- login's challenge has no user. SQLite cannot change a CHECK in place; the
-- table holds only ceremonies of the last few minutes, so it is made anew
-- and ceremonies in progress across the upgrade begin again.

-- +goose Up
DROP TABLE passkey_challenges;
CREATE TABLE passkey_challenges (
    id         TEXT    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('register', 'login', 'mfa', 'reauth')),
    user_id    TEXT    NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT    NULL,
    state      BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    CHECK (expires_at >= created_at),
    CHECK ((kind = 'login') = (user_id IS NULL))
) STRICT;
CREATE INDEX passkey_challenges_expires_at ON passkey_challenges (expires_at);

-- +goose Down
DROP TABLE passkey_challenges;
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
CREATE INDEX passkey_challenges_expires_at ON passkey_challenges (expires_at);
