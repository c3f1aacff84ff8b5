-- What an operator may set on a user (disabled, email_verified), and what a
-- session keeps of how its user signed in, so that every refresh issues the
-- same amr and auth_time claims as the login did.

-- +goose Up
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0 CHECK (email_verified IN (0, 1));
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1));
-- amr is a comma-separated list of RFC 8176 values ("pwd", "ext"); empty for
-- sessions made before it was kept. auth_time is Unix microseconds; NULL
-- means the session's created_at.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN auth_time INTEGER;

-- +goose Down
ALTER TABLE sessions DROP COLUMN auth_time;
ALTER TABLE sessions DROP COLUMN amr;
ALTER TABLE users DROP COLUMN disabled;
ALTER TABLE users DROP COLUMN email_verified;
