-- Admin API keys. Only the SHA-256 of a key is stored; the key is shown
-- once, when it is made. A revoked key keeps its row, so that its name in
-- old events still means one key and cannot be reused.

-- +goose Up
CREATE TABLE admin_keys (
    name         TEXT    PRIMARY KEY,
    hash         BLOB    NOT NULL UNIQUE,
    created_at   INTEGER NOT NULL,
    revoked_at   INTEGER NULL,
    last_used_at INTEGER NULL
) STRICT;

-- +goose Down
DROP TABLE admin_keys;
