-- Second factors: a user's TOTP factor (its secret sealed under the
-- encryption key when one is set), their recovery codes (only hashes), and
-- the logins waiting for a second factor (only the mfa_token's SHA-256).

-- +goose Up
CREATE TABLE totp_factors (
    user_id      TEXT    PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BLOB    NOT NULL,
    created_at   INTEGER NOT NULL,
    -- NULL while the enrolment waits for its first code.
    confirmed_at INTEGER NULL,
    -- The last time step a code was accepted for: older and equal steps
    -- are replays.
    last_step    INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE recovery_codes (
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BLOB    NOT NULL,
    created_at INTEGER NOT NULL,
    used_at    INTEGER NULL,
    PRIMARY KEY (user_id, hash)
) STRICT;

CREATE TABLE mfa_challenges (
    hash       BLOB    PRIMARY KEY,
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    CHECK (expires_at >= created_at)
) STRICT;
-- Deleting a user finds its challenges; the sweep finds expired ones.
CREATE INDEX mfa_challenges_user_id ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_at ON mfa_challenges (expires_at);

-- +goose Down
DROP TABLE mfa_challenges;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
