package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

// passkeyColumns is every column of passkeys, in the order scanPasskey
// reads.
const passkeyColumns = `id, user_id, credential_id, name, record, sign_count, backup_eligible, backup_state, clone_warning, created_at, last_used_at`

// credentialIDConstraint is the unique constraint on passkeys.credential_id.
const credentialIDConstraint = "passkeys_credential_id_key"

const (
	insertPasskeyChallenge = `INSERT INTO passkey_challenges (id, kind, user_id, session_id, state, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`

	// Deleting is consuming: of concurrent finishes of one ceremony
	// exactly one gets the row; the others wait for its lock and then
	// find it gone.
	consumePasskeyChallenge = `DELETE FROM passkey_challenges WHERE id = $1 AND kind = $2 AND expires_at > $3
RETURNING id, kind, user_id, session_id, state, created_at, expires_at`

	userPasskeys = `SELECT ` + passkeyColumns + ` FROM passkeys WHERE user_id = $1 ORDER BY created_at, id`

	// FOR UPDATE: two logins with one passkey, on any instances, check
	// and advance its signature counter one after the other.
	passkeyByCredentialID = `SELECT ` + passkeyColumns + ` FROM passkeys WHERE credential_id = $1 FOR UPDATE`

	insertPasskey = `INSERT INTO passkeys (` + passkeyColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

	updatePasskeyUse = `UPDATE passkeys SET record = $2, sign_count = $3, backup_state = $4, clone_warning = $5, last_used_at = $6
WHERE id = $1`

	renamePasskey = `UPDATE passkeys SET name = $3 WHERE id = $1 AND user_id = $2 RETURNING ` + passkeyColumns

	deletePasskey = `DELETE FROM passkeys WHERE id = $1 AND user_id = $2 RETURNING ` + passkeyColumns
)

func scanPasskey(row pgx.Row) (*sessiond.Passkey, error) {
	var p sessiond.Passkey
	var signCount int64
	var lastUsed *time.Time
	err := row.Scan(&p.ID, &p.UserID, &p.CredentialID, &p.Name, &p.Record, &signCount,
		&p.BackupEligible, &p.BackupState, &p.CloneWarning, &p.CreatedAt, &lastUsed)
	if err != nil {
		return nil, err
	}
	p.SignCount = uint32(signCount)
	p.CreatedAt, p.LastUsedAt = sessiond.Now(p.CreatedAt), fromNull(lastUsed)
	return &p, nil
}

// passkeyRow runs a statement returning passkeyColumns; nil if no row.
func (t *tx) passkeyRow(query string, args ...any) (*sessiond.Passkey, error) {
	p, err := scanPasskey(t.tx.QueryRow(t.ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
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
		sessiond.Now(c.CreatedAt), sessiond.Now(c.ExpiresAt))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeForeignKeyViolation {
		return errUserNotFound()
	}
	return err
}

func (t *tx) ConsumePasskeyChallenge(id, kind string, now time.Time) (*sessiond.PasskeyChallenge, error) {
	var c sessiond.PasskeyChallenge
	var userID, sessionID *string
	err := t.tx.QueryRow(t.ctx, consumePasskeyChallenge, id, kind, sessiond.Now(now)).
		Scan(&c.ID, &c.Kind, &userID, &sessionID, &c.State, &c.CreatedAt, &c.ExpiresAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if userID != nil {
		c.UserID = *userID
	}
	if sessionID != nil {
		c.SessionID = *sessionID
	}
	c.CreatedAt, c.ExpiresAt = sessiond.Now(c.CreatedAt), sessiond.Now(c.ExpiresAt)
	return &c, nil
}

func (t *tx) UserPasskeys(userID string) ([]sessiond.Passkey, error) {
	rows, err := t.tx.Query(t.ctx, userPasskeys, userID)
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
		p.BackupEligible, p.BackupState, p.CloneWarning, sessiond.Now(p.CreatedAt), nullTime(p.LastUsedAt))
	var pgErr *pgconn.PgError
	switch {
	case !errors.As(err, &pgErr):
	case pgErr.Code == codeForeignKeyViolation:
		return errUserNotFound()
	case pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == credentialIDConstraint:
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "this passkey is registered already")
	}
	return err
}

func (t *tx) UpdatePasskeyUse(p *sessiond.Passkey) error {
	_, err := t.exec(updatePasskeyUse, p.ID, p.Record, int64(p.SignCount), p.BackupState, p.CloneWarning, nullTime(p.LastUsedAt))
	return err
}

func (t *tx) RenamePasskey(userID, id, name string) (*sessiond.Passkey, error) {
	return t.passkeyRow(renamePasskey, id, userID, name)
}

func (t *tx) DeletePasskey(userID, id string) (*sessiond.Passkey, error) {
	return t.passkeyRow(deletePasskey, id, userID)
}

const deleteExpiredPasskeyChallenges = `DELETE FROM passkey_challenges WHERE id IN (
	SELECT id FROM passkey_challenges WHERE expires_at <= $1 LIMIT $2)`

// DeleteExpiredPasskeyChallenges deletes one batch of challenges expired
// by now.
func (db *DB) DeleteExpiredPasskeyChallenges(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteExpiredPasskeyChallenges, "delete expired passkey challenges", now, limit)
}
