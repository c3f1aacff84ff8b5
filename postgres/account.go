package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

const (
	// A user has at most one token of a kind: the newest.
	deleteUserAccountTokens = `DELETE FROM account_tokens WHERE user_id = $1 AND kind = $2`

	insertAccountToken = `INSERT INTO account_tokens (hash, kind, user_id, email, new_email, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7)`

	// One statement tests and sets used_at under the row's lock, so of
	// concurrent consumers of one token exactly one gets a row back: the
	// others wait for it and then find used_at set.
	consumeAccountToken = `UPDATE account_tokens SET used_at = $1
WHERE hash = $2 AND kind = $3 AND used_at IS NULL AND expires_at > $1
RETURNING hash, kind, user_id, email, new_email, created_at, expires_at, used_at`

	deleteUnusedAccountTokens = `DELETE FROM account_tokens WHERE user_id = $1 AND kind = $2 AND used_at IS NULL`

	// A mail row is the user's by its address or by the event that caused
	// it (an email change's mail goes to an address not yet theirs).
	deleteUserMail = `DELETE FROM outbox WHERE channel = 'mail'
AND (target = $1 OR event_id IN (SELECT id FROM events WHERE user_id = $2))`
)

func (t *tx) InsertAccountToken(a *sessiond.AccountToken) error {
	if _, err := t.exec(deleteUserAccountTokens, a.UserID, a.Kind); err != nil {
		return err
	}
	_, err := t.exec(insertAccountToken, a.Hash, a.Kind, a.UserID, a.Email, a.NewEmail, sessiond.Now(a.CreatedAt), sessiond.Now(a.ExpiresAt))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeForeignKeyViolation {
		return errUserNotFound()
	}
	return err
}

func (t *tx) ConsumeAccountToken(kind string, hash []byte, now time.Time) (*sessiond.AccountToken, error) {
	var a sessiond.AccountToken
	var used *time.Time
	err := t.tx.QueryRow(t.ctx, consumeAccountToken, sessiond.Now(now), hash, kind).
		Scan(&a.Hash, &a.Kind, &a.UserID, &a.Email, &a.NewEmail, &a.CreatedAt, &a.ExpiresAt, &used)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	a.CreatedAt, a.ExpiresAt = sessiond.Now(a.CreatedAt), sessiond.Now(a.ExpiresAt)
	if used != nil {
		a.UsedAt = sessiond.Now(*used)
	}
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
	SELECT hash FROM account_tokens WHERE expires_at <= $1 LIMIT $2)`

// DeleteExpiredAccountTokens deletes one batch of tokens expired by now.
func (db *DB) DeleteExpiredAccountTokens(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteExpiredAccountTokens, "delete expired account tokens", now, limit)
}

// deleteExpired runs one batch statement of the sweep, query taking the
// cutoff ($1) and the batch size ($2), and returns how many rows it
// touched; a limit below 1 touches none. op names it in errors.
func (db *DB) deleteExpired(ctx context.Context, query, op string, now time.Time, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	tag, err := db.exec(ctx, query, sessiond.Now(now), limit)
	if err != nil {
		return 0, storeError(op, err)
	}
	return int(tag.RowsAffected()), nil
}
