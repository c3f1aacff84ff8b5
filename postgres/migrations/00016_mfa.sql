-- Second factors: a user's TOTP factor (its secret sealed under the
-- encryption key when one is set), their recovery codes (only hashes), and
-- the logins waiting for a second factor (only the mfa_token's SHA-256).

-- +goose Up
CREATE TABLE totp_factors (
    user_id      TEXT COLLATE "C" PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret       BYTEA NOT NULL,
    created_at   TIMESTAMPTZ NOT NULL,
    -- NULL while the enrolment waits for its first code.
    confirmed_at TIMESTAMPTZ NULL,
    -- The last time step a code was accepted for: older and equal steps
    -- are replays.
    last_step    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE recovery_codes (
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    hash       BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    used_at    TIMESTAMPTZ NULL,
    PRIMARY KEY (user_id, hash)
);

CREATE TABLE mfa_challenges (
    hash       BYTEA PRIMARY KEY,
    user_id    TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    CHECK (expires_at >= created_at)
);
-- Deleting a user finds its challenges; the sweep finds expired ones.
CREATE INDEX mfa_challenges_user_id_idx ON mfa_challenges (user_id);
CREATE INDEX mfa_challenges_expires_at_idx ON mfa_challenges (expires_at);

-- +goose Down
DROP TABLE mfa_challenges;
DROP TABLE recovery_codes;
DROP TABLE totp_factors;
