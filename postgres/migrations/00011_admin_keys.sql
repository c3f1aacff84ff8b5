-- +goose Up
-- Admin API keys. Only the SHA-256 of a key is stored; the key is shown
-- once, when it is made. A revoked key keeps its row, so that its name in
-- old events still means one key and cannot be reused.
CREATE TABLE admin_keys (
    name         TEXT COLLATE "C" PRIMARY KEY,
    hash         BYTEA NOT NULL UNIQUE,
    created_at   TIMESTAMPTZ NOT NULL,
    revoked_at   TIMESTAMPTZ NULL,
    last_used_at TIMESTAMPTZ NULL
);

-- +goose Down
DROP TABLE admin_keys;
