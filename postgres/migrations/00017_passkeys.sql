-- Passkeys (WebAuthn discoverable credentials) and the challenges of
-- ceremonies in progress. A challenge lives in the database so that any
-- instance can finish a ceremony another began; it is deleted when used.

-- +goose Up
CREATE TABLE passkeys (
    id              TEXT COLLATE "C" PRIMARY KEY,
    user_id         TEXT COLLATE "C" NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id   BYTEA NOT NULL,
    name            TEXT NOT NULL,
    record          BYTEA NOT NULL,
    sign_count      BIGINT NOT NULL CHECK (sign_count >= 0 AND sign_count <= 4294967295),
    backup_eligible BOOLEAN NOT NULL,
    backup_state    BOOLEAN NOT NULL,
    clone_warning   BOOLEAN NOT NULL DEFAULT false,
    created_at      TIMESTAMPTZ NOT NULL,
    last_used_at    TIMESTAMPTZ NULL,
    CONSTRAINT passkeys_credential_id_key UNIQUE (credential_id)
);
CREATE INDEX passkeys_user_id_idx ON passkeys (user_id);

CREATE TABLE passkey_challenges (
    id         TEXT COLLATE "C" PRIMARY KEY,
    kind       TEXT NOT NULL CHECK (kind IN ('register', 'login')),
    user_id    TEXT COLLATE "C" NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id TEXT COLLATE "C" NULL,
    state      BYTEA NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    CHECK (expires_at >= created_at),
    CHECK ((kind = 'register') = (user_id IS NOT NULL))
);
-- The sweep deletes expired challenges.
CREATE INDEX passkey_challenges_expires_at_idx ON passkey_challenges (expires_at);

-- +goose Down
DROP TABLE passkey_challenges;
DROP TABLE passkeys;
