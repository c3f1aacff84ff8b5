-- Device-bound sessions (DPoP): the thumbprint of the key a session is
-- bound to (NULL: unbound; set at login, never changed), and the proofs
-- accepted until they expire, so that none is accepted twice. A proof is
-- named by a SHA-256 of its key's thumbprint and its jti.

-- +goose Up
ALTER TABLE sessions ADD COLUMN dpop_jkt TEXT NULL CHECK (dpop_jkt <> '');
CREATE TABLE dpop_proofs (
    key        BLOB    PRIMARY KEY CHECK (length(key) = 32),
    expires_at INTEGER NOT NULL
) STRICT, WITHOUT ROWID;
CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);

-- +goose Down
DROP TABLE dpop_proofs;
ALTER TABLE sessions DROP COLUMN dpop_jkt;
