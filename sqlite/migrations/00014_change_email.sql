-- Email changes: a token of kind change_email carries, besides the address
-- it was issued under (email, which voids it once the user's address is
-- another), the address the change goes to (new_email). SQLite cannot
-- alter a CHECK constraint, so the table is rebuilt; nothing refers to it.

-- +goose Up
CREATE TABLE account_tokens_new (
    hash       BLOB    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('verify_email', 'reset_password', 'change_email')),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    new_email  TEXT    NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NULL,
    CHECK (expires_at >= created_at),
    CHECK ((kind = 'change_email') = (new_email <> ''))
) STRICT;
INSERT INTO account_tokens_new (hash, kind, user_id, email, created_at, expires_at, used_at)
    SELECT hash, kind, user_id, email, created_at, expires_at, used_at FROM account_tokens;
DROP TABLE account_tokens;
ALTER TABLE account_tokens_new RENAME TO account_tokens;
CREATE INDEX account_tokens_user_id_kind ON account_tokens (user_id, kind);
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);

-- +goose Down
CREATE TABLE account_tokens_old (
    hash       BLOB    PRIMARY KEY,
    kind       TEXT    NOT NULL CHECK (kind IN ('verify_email', 'reset_password')),
    user_id    TEXT    NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    email      TEXT    NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    used_at    INTEGER NULL,
    CHECK (expires_at >= created_at)
) STRICT;
INSERT INTO account_tokens_old (hash, kind, user_id, email, created_at, expires_at, used_at)
    SELECT hash, kind, user_id, email, created_at, expires_at, used_at FROM account_tokens
    WHERE kind <> 'change_email';
DROP TABLE account_tokens;
ALTER TABLE account_tokens_old RENAME TO account_tokens;
CREATE INDEX account_tokens_user_id_kind ON account_tokens (user_id, kind);
CREATE INDEX account_tokens_expires_at ON account_tokens (expires_at);
