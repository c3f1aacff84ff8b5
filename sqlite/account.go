package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sessiond/sessiond"
)

const (
	// A user has at most one token of a kind: the newest.
	deleteUserAccountTokens = `DELETE FROM account_tokens WHERE user_id = ? AND kind = ?`

	insertAccountToken = `INSERT INTO account_tokens (hash, kind, user_id, email, new_email, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, ?, ?)`

	// One statement tests and sets used_at, so of concurrent consumers of
	// one token exactly one gets a row back.
	consumeAccountToken = `UPDATE account_tokens SET used_at = ?
WHERE hash = ? AND kind = ? AND used_at IS NULL AND expires_at > ?
RETURNING hash, kind, user_id, email, new_email, created_at, expires_at, used_at`

	deleteUnusedAccountTokens = `DELETE FROM account_tokens WHERE user_id = ? AND kind = ? AND used_at IS NULL`

	// A mail row is the user's by its address or by the event that caused
	// it (an email change's mail goes to an address not yet theirs).
	deleteUserMail = `DELETE FROM outbox WHERE channel = 'mail'
AND (target = ? OR event_id IN (SELECT id FROM events WHERE user_id = ?))`
)

func (t *tx) InsertAccountToken(a *sessiond.AccountToken) error {
	if _, err := t.exec(deleteUserAccountTokens, a.UserID, a.Kind); err != nil {
		return err
	}
	_, err := t.exec(insertAccountToken, a.Hash, a.Kind, a.UserID, a.Email, a.NewEmail, micros(a.CreatedAt), micros(a.ExpiresAt))
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return errUserNotFound()
	}
	return err
}

func (t *tx) ConsumeAccountToken(kind string, hash []byte, now time.Time) (*sessiond.AccountToken, error) {
	var a sessiond.AccountToken
	var created, expires int64
	var used sql.NullInt64
	err := t.queryRow(consumeAccountToken, micros(now), hash, kind, micros(now)).
		Scan(&a.Hash, &a.Kind, &a.UserID, &a.Email, &a.NewEmail, &created, &expires, &used)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.CreatedAt, a.ExpiresAt, a.UsedAt = fromMicros(created), fromMicros(expires), fromNullMicros(used)
	return &a, nil
}

func (t *tx) DeleteAccountTokens(userID, kind string) error {
	_, err := t.exec(deleteUnusedAccountTokens, userID, kind)
	return err
}

func (t *tx) DeleteUserMail(userID, address string) (int, error) {
	n, err := t.exec(deleteUserMail, address, userID)
	return int(n), err
}

const deleteExpiredAccountTokens = `DELETE FROM account_tokens WHERE hash IN (
	SELECT hash FROM account_tokens WHERE expires_at <= ? LIMIT ?)`

// DeleteExpiredAccountTokens deletes one batch of tokens expired by now.
func (db *DB) DeleteExpiredAccountTokens(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteExpiredAccountTokens, "delete expired account tokens", now, limit)
}

// deleteExpired runs query, a DELETE of one batch of rows expired by now
// (its parameters: now, then limit), and returns how many it deleted: the
// sweep of account tokens, MFA challenges, passkey challenges and DPoP
// proofs alike.
func (db *DB) deleteExpired(ctx context.Context, query, op string, now time.Time, limit int) (int, error) {
	if limit < 1 { // SQLite reads a negative LIMIT as "no limit"
		return 0, nil
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, query, micros(sessiond.Now(now)), limit)
	if err != nil {
		return 0, storeError(op, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeError(op, err)
	}
	return int(n), nil
}
