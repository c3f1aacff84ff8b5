package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sessiond/sessiond"
)

// passkeyColumns is every column of passkeys, in the order scanPasskey
// reads.
const passkeyColumns = `id, user_id, credential_id, name, record, sign_count, backup_eligible, backup_state, clone_warning, created_at, last_used_at`

const (
	insertPasskeyChallenge = `INSERT INTO passkey_challenges (id, kind, user_id, session_id, state, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`

	// Deleting is consuming: of concurrent finishes of one ceremony
	// exactly one gets the row.
	consumePasskeyChallenge = `DELETE FROM passkey_challenges WHERE id = ? AND kind = ? AND expires_at > ?
RETURNING id, kind, user_id, session_id, state, created_at, expires_at`

	userPasskeys = `SELECT ` + passkeyColumns + ` FROM passkeys WHERE user_id = ? ORDER BY created_at, id`

	// The transaction holds the write lock: what this returns stays
	// current until the transaction ends.
	passkeyByCredentialID = `SELECT ` + passkeyColumns + ` FROM passkeys WHERE credential_id = ?`

	insertPasskey = `INSERT INTO passkeys (` + passkeyColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	updatePasskeyUse = `UPDATE passkeys SET record = ?, sign_count = ?, backup_state = ?, clone_warning = ?, last_used_at = ?
WHERE id = ?`

	renamePasskey = `UPDATE passkeys SET name = ? WHERE id = ? AND user_id = ? RETURNING ` + passkeyColumns

	deletePasskey = `DELETE FROM passkeys WHERE id = ? AND user_id = ? RETURNING ` + passkeyColumns
)

func scanPasskey(row interface{ Scan(...any) error }) (*sessiond.Passkey, error) {
	var p sessiond.Passkey
	var signCount, created int64
	var lastUsed sql.NullInt64
	err := row.Scan(&p.ID, &p.UserID, &p.CredentialID, &p.Name, &p.Record, &signCount,
		&p.BackupEligible, &p.BackupState, &p.CloneWarning, &created, &lastUsed)
	if err != nil {
		return nil, err
	}
	p.SignCount = uint32(signCount)
	p.CreatedAt, p.LastUsedAt = fromMicros(created), fromNullMicros(lastUsed)
	return &p, nil
}

// passkeyRow runs a statement returning passkeyColumns; nil if no row.
func (t *tx) passkeyRow(query string, args ...any) (*sessiond.Passkey, error) {
	p, err := scanPasskey(t.queryRow(query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return p, err
}

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (t *tx) InsertPasskeyChallenge(c *sessiond.PasskeyChallenge) error {
	_, err := t.exec(insertPasskeyChallenge, c.ID, c.Kind, nullString(c.UserID), nullString(c.SessionID), c.State,
		micros(c.CreatedAt), micros(c.ExpiresAt))
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return errUserNotFound()
	}
	return err
}

func (t *tx) ConsumePasskeyChallenge(id, kind string, now time.Time) (*sessiond.PasskeyChallenge, error) {
	var c sessiond.PasskeyChallenge
	var userID, sessionID sql.NullString
	var created, expires int64
	err := t.queryRow(consumePasskeyChallenge, id, kind, micros(now)).
		Scan(&c.ID, &c.Kind, &userID, &sessionID, &c.State, &created, &expires)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.UserID, c.SessionID = userID.String, sessionID.String
	c.CreatedAt, c.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &c, nil
}

func (t *tx) UserPasskeys(userID string) ([]sessiond.Passkey, error) {
	rows, err := t.query(userPasskeys, userID)
	if err != nil {
		return nil, fmt.Errorf("select passkeys: %w", err)
	}
	defer rows.Close()
	var out []sessiond.Passkey
	for rows.Next() {
		p, err := scanPasskey(rows)
		if err != nil {
			return nil, fmt.Errorf("scan passkey: %w", err)
		}
		out = append(out, *p)
	}
	return out, rows.Err()
}

func (t *tx) PasskeyByCredentialID(credentialID []byte) (*sessiond.Passkey, error) {
	return t.passkeyRow(passkeyByCredentialID, credentialID)
}

func (t *tx) InsertPasskey(p *sessiond.Passkey) error {
	_, err := t.exec(insertPasskey, p.ID, p.UserID, p.CredentialID, p.Name, p.Record, int64(p.SignCount),
		p.BackupEligible, p.BackupState, p.CloneWarning, micros(p.CreatedAt), nullMicros(p.LastUsedAt))
	switch {
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY):
		return errUserNotFound()
	case isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE):
		// credential_id is the table's one UNIQUE constraint besides the
		// primary key, which is a fresh random id.
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "this passkey is registered already")
	}
	return err
}

func (t *tx) UpdatePasskeyUse(p *sessiond.Passkey) error {
	_, err := t.exec(updatePasskeyUse, p.Record, int64(p.SignCount), p.BackupState, p.CloneWarning, nullMicros(p.LastUsedAt), p.ID)
	return err
}

func (t *tx) RenamePasskey(userID, id, name string) (*sessiond.Passkey, error) {
	return t.passkeyRow(renamePasskey, name, id, userID)
}

func (t *tx) DeletePasskey(userID, id string) (*sessiond.Passkey, error) {
	return t.passkeyRow(deletePasskey, id, userID)
}

const deleteExpiredPasskeyChallenges = `DELETE FROM passkey_challenges WHERE id IN (
	SELECT id FROM passkey_challenges WHERE expires_at <= ? LIMIT ?)`

// DeleteExpiredPasskeyChallenges deletes one batch of challenges expired
// by now.
func (db *DB) DeleteExpiredPasskeyChallenges(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteExpiredPasskeyChallenges, "delete expired passkey challenges", now, limit)
}
