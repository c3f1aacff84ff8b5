-- Publish first, sign later: a rotated-in key is published at once and signs
-- only from activates_at (Unix microseconds, UTC), once every instance and
-- verifier has had time to load it. Existing keys signed from their creation.
-- private_key becomes empty once a retired key's tokens have all expired
-- (EraseRetiredKeys); it and secrets.value may hold a sealed (encrypted)
-- value, which the application tells apart by its prefix.

-- +goose Up
ALTER TABLE signing_keys ADD COLUMN activates_at INTEGER NOT NULL DEFAULT 0;
UPDATE signing_keys SET activates_at = created_at;

-- +goose Down
ALTER TABLE signing_keys DROP COLUMN activates_at;
