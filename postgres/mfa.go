package postgres

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

const (
	totpFactor = `SELECT user_id, secret, created_at, confirmed_at, last_step FROM totp_factors WHERE user_id = $1`

	// A confirmed factor is never replaced by an enrolment: the upsert
	// matches only a pending one, and a confirmed row makes it a no-op.
	putPendingTOTP = `INSERT INTO totp_factors (user_id, secret, created_at, confirmed_at, last_step)
VALUES ($1, $2, $3, NULL, 0)
ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_step = 0
WHERE totp_factors.confirmed_at IS NULL`

	confirmTOTP = `UPDATE totp_factors SET confirmed_at = $1, last_step = $2
WHERE user_id = $3 AND secret = $4 AND confirmed_at IS NULL AND last_step < $2`

	// The replay guard: one statement tests and sets the step under the
	// row's lock; a concurrent use of the same step waits for it, then
	// finds last_step no longer below its own.
	useTOTPStep = `UPDATE totp_factors SET last_step = $1
WHERE user_id = $2 AND confirmed_at IS NOT NULL AND last_step < $1`

	deleteTOTP          = `DELETE FROM totp_factors WHERE user_id = $1`
	deleteRecoveryCodes = `DELETE FROM recovery_codes WHERE user_id = $1`
	insertRecoveryCode  = `INSERT INTO recovery_codes (user_id, hash, created_at) VALUES ($1, $2, $3)`
	recoveryCodes       = `SELECT hash FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL ORDER BY hash`
	useRecoveryCode     = `UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND hash = $3 AND used_at IS NULL`

	insertMFAChallenge = `INSERT INTO mfa_challenges (hash, user_id, created_at, expires_at, attempts) VALUES ($1, $2, $3, $4, 0)`

	mfaChallenge = `SELECT hash, user_id, created_at, expires_at, attempts FROM mfa_challenges
WHERE hash = $1 AND expires_at > $2 AND attempts < $3`

	spendMFAAttempt = `UPDATE mfa_challenges SET attempts = attempts + 1
WHERE hash = $1 AND expires_at > $2 AND attempts < $3
RETURNING hash, user_id, created_at, expires_at, attempts`

	deleteMFAChallenge = `DELETE FROM mfa_challenges WHERE hash = $1`

	setSessionAuth = `UPDATE sessions SET amr = $1, auth_time = $2 WHERE id = $3 AND user_id = $4`
)

const (
	// Locked until commit, so that an enrolment replacing a pending
	// secret meanwhile waits instead of being overwritten with the old
	// secret resealed.
	allTOTPSecrets   = `SELECT user_id, secret FROM totp_factors ORDER BY user_id FOR UPDATE`
	updateTOTPSecret = `UPDATE totp_factors SET secret = $1 WHERE user_id = $2`
)

// ResealTOTPSecrets hands every TOTP factor's stored secret, pending or
// confirmed, to reseal and stores what it returns.
func (db *DB) ResealTOTPSecrets(ctx context.Context, reseal func(sessiond.StoredSecret) ([]byte, error)) (int, error) {
	return db.reseal(ctx, "reseal totp secrets", reseal,
		sealedColumn{kind: sessiond.SecretKindTOTP, sel: allTOTPSecrets, upd: updateTOTPSecret})
}

func isForeignKey(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == codeForeignKeyViolation
}

func (t *tx) TOTPFactor(userID string) (*sessiond.TOTPFactor, error) {
	var f sessiond.TOTPFactor
	var confirmed *time.Time
	err := t.tx.QueryRow(t.ctx, totpFactor, userID).Scan(&f.UserID, &f.Secret, &f.CreatedAt, &confirmed, &f.LastStep)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f.CreatedAt = sessiond.Now(f.CreatedAt)
	if confirmed != nil {
		f.ConfirmedAt = sessiond.Now(*confirmed)
	}
	return &f, nil
}

func (t *tx) PutPendingTOTP(f *sessiond.TOTPFactor) (bool, error) {
	n, err := t.exec(putPendingTOTP, f.UserID, f.Secret, sessiond.Now(f.CreatedAt))
	if isForeignKey(err) {
		return false, errUserNotFound()
	}
	return n == 1, err
}

func (t *tx) ConfirmTOTP(userID string, secret []byte, step int64, now time.Time) (bool, error) {
	n, err := t.exec(confirmTOTP, sessiond.Now(now), step, userID, secret)
	return n == 1, err
}

func (t *tx) UseTOTPStep(userID string, step int64) (bool, error) {
	n, err := t.exec(useTOTPStep, step, userID)
	return n == 1, err
}

func (t *tx) DeleteTOTP(userID string) (bool, error) {
	if _, err := t.exec(deleteRecoveryCodes, userID); err != nil {
		return false, err
	}
	n, err := t.exec(deleteTOTP, userID)
	return n == 1, err
}

func (t *tx) ReplaceRecoveryCodes(userID string, hashes [][]byte, now time.Time) error {
	if _, err := t.exec(deleteRecoveryCodes, userID); err != nil {
		return err
	}
	for _, h := range hashes {
		_, err := t.exec(insertRecoveryCode, userID, h, sessiond.Now(now))
		if isForeignKey(err) {
			return errUserNotFound()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) RecoveryCodes(userID string) ([][]byte, error) {
	rows, err := t.tx.Query(t.ctx, recoveryCodes, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[[]byte])
}

func (t *tx) UseRecoveryCode(userID string, hash []byte, now time.Time) (bool, error) {
	n, err := t.exec(useRecoveryCode, sessiond.Now(now), userID, hash)
	return n == 1, err
}

func (t *tx) InsertMFAChallenge(c *sessiond.MFAChallenge) error {
	_, err := t.exec(insertMFAChallenge, c.Hash, c.UserID, sessiond.Now(c.CreatedAt), sessiond.Now(c.ExpiresAt))
	if isForeignKey(err) {
		return errUserNotFound()
	}
	return err
}

func (t *tx) mfaChallengeRow(query string, args ...any) (*sessiond.MFAChallenge, error) {
	var c sessiond.MFAChallenge
	err := t.tx.QueryRow(t.ctx, query, args...).Scan(&c.Hash, &c.UserID, &c.CreatedAt, &c.ExpiresAt, &c.Attempts)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt = sessiond.Now(c.CreatedAt), sessiond.Now(c.ExpiresAt)
	return &c, nil
}

func (t *tx) MFAChallenge(hash []byte, now time.Time) (*sessiond.MFAChallenge, error) {
	return t.mfaChallengeRow(mfaChallenge, hash, sessiond.Now(now), sessiond.MFAChallengeAttempts)
}

func (t *tx) SpendMFAAttempt(hash []byte, now time.Time, max int) (*sessiond.MFAChallenge, error) {
	return t.mfaChallengeRow(spendMFAAttempt, hash, sessiond.Now(now), max)
}

func (t *tx) DeleteMFAChallenge(hash []byte) (bool, error) {
	n, err := t.exec(deleteMFAChallenge, hash)
	return n == 1, err
}

func (t *tx) SetSessionAuth(userID, sessionID string, amr []string, at time.Time) (bool, error) {
	n, err := t.exec(setSessionAuth, strings.Join(amr, ","), sessiond.Now(at), sessionID, userID)
	return n == 1, err
}

const deleteExpiredMFAChallenges = `DELETE FROM mfa_challenges WHERE hash IN (
	SELECT hash FROM mfa_challenges WHERE expires_at <= $1 LIMIT $2)`

// DeleteExpiredMFAChallenges deletes one batch of unfinished logins
// expired by now.
func (db *DB) DeleteExpiredMFAChallenges(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteExpiredMFAChallenges, "delete expired mfa challenges", now, limit)
}
