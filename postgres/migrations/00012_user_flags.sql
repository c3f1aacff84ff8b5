-- What an operator may set on a user (disabled, email_verified), and what a
-- session keeps of how its user signed in, so that every refresh issues the
-- same amr and auth_time claims as the login did.

-- +goose Up
ALTER TABLE users ADD COLUMN email_verified BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false;
-- amr is a comma-separated list of RFC 8176 values ("pwd", "ext"); empty for
-- sessions made before it was kept. auth_time NULL means the session's
-- created_at.
ALTER TABLE sessions ADD COLUMN amr TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN auth_time TIMESTAMPTZ NULL;

-- +goose Down
ALTER TABLE sessions DROP COLUMN auth_time;
ALTER TABLE sessions DROP COLUMN amr;
ALTER TABLE users DROP COLUMN disabled;
ALTER TABLE users DROP COLUMN email_verified;
