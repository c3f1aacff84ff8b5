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
	totpFactor = `SELECT user_id, secret, created_at, confirmed_at, last_step FROM totp_factors WHERE user_id = ?`

	// A confirmed factor is never replaced by an enrolment: the upsert
	// matches only a pending one, and a confirmed row makes it a no-op.
	putPendingTOTP = `INSERT INTO totp_factors (user_id, secret, created_at, confirmed_at, last_step)
VALUES (?, ?, ?, NULL, 0)
ON CONFLICT (user_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_step = 0
WHERE totp_factors.confirmed_at IS NULL`

	confirmTOTP = `UPDATE totp_factors SET confirmed_at = ?, last_step = ?
WHERE user_id = ? AND secret = ? AND confirmed_at IS NULL AND last_step < ?`

	// The replay guard: one statement tests and sets the step.
	useTOTPStep = `UPDATE totp_factors SET last_step = ?
WHERE user_id = ? AND confirmed_at IS NOT NULL AND last_step < ?`

	deleteTOTP          = `DELETE FROM totp_factors WHERE user_id = ?`
	deleteRecoveryCodes = `DELETE FROM recovery_codes WHERE user_id = ?`
	insertRecoveryCode  = `INSERT INTO recovery_codes (user_id, hash, created_at) VALUES (?, ?, ?)`
	recoveryCodes       = `SELECT hash FROM recovery_codes WHERE user_id = ? AND used_at IS NULL ORDER BY hash`
	useRecoveryCode     = `UPDATE recovery_codes SET used_at = ? WHERE user_id = ? AND hash = ? AND used_at IS NULL`

	insertMFAChallenge = `INSERT INTO mfa_challenges (hash, user_id, created_at, expires_at, attempts) VALUES (?, ?, ?, ?, 0)`

	mfaChallenge = `SELECT hash, user_id, created_at, expires_at, attempts FROM mfa_challenges
WHERE hash = ? AND expires_at > ? AND attempts < ?`

	spendMFAAttempt = `UPDATE mfa_challenges SET attempts = attempts + 1
WHERE hash = ? AND expires_at > ? AND attempts < ?
RETURNING hash, user_id, created_at, expires_at, attempts`

	deleteMFAChallenge = `DELETE FROM mfa_challenges WHERE hash = ?`

	setSessionAuth = `UPDATE sessions SET amr = ?, auth_time = ? WHERE id = ? AND user_id = ?`

	allTOTPSecrets   = `SELECT user_id, secret FROM totp_factors ORDER BY user_id`
	updateTOTPSecret = `UPDATE totp_factors SET secret = ? WHERE user_id = ?`
)

// ResealTOTPSecrets hands every TOTP factor's stored secret, pending or
// confirmed, to reseal and stores what it returns.
func (db *DB) ResealTOTPSecrets(ctx context.Context, reseal func(sessiond.StoredSecret) ([]byte, error)) (int, error) {
	return db.reseal(ctx, "reseal totp secrets", reseal,
		sealedColumn{kind: sessiond.SecretKindTOTP, sel: allTOTPSecrets, upd: updateTOTPSecret})
}

func (t *tx) TOTPFactor(userID string) (*sessiond.TOTPFactor, error) {
	var f sessiond.TOTPFactor
	var created int64
	var confirmed sql.NullInt64
	err := t.queryRow(totpFactor, userID).Scan(&f.UserID, &f.Secret, &created, &confirmed, &f.LastStep)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	f.CreatedAt, f.ConfirmedAt = fromMicros(created), fromNullMicros(confirmed)
	return &f, nil
}

func (t *tx) PutPendingTOTP(f *sessiond.TOTPFactor) (bool, error) {
	n, err := t.exec(putPendingTOTP, f.UserID, f.Secret, micros(f.CreatedAt))
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return false, errUserNotFound()
	}
	return n == 1, err
}

func (t *tx) ConfirmTOTP(userID string, secret []byte, step int64, now time.Time) (bool, error) {
	n, err := t.exec(confirmTOTP, micros(now), step, userID, secret, step)
	return n == 1, err
}

func (t *tx) UseTOTPStep(userID string, step int64) (bool, error) {
	n, err := t.exec(useTOTPStep, step, userID, step)
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
		_, err := t.exec(insertRecoveryCode, userID, h, micros(now))
		if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
			return errUserNotFound()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) RecoveryCodes(userID string) ([][]byte, error) {
	rows, err := t.query(recoveryCodes, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out [][]byte
	for rows.Next() {
		var h []byte
		if err := rows.Scan(&h); err != nil {
			return nil, err
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

func (t *tx) UseRecoveryCode(userID string, hash []byte, now time.Time) (bool, error) {
	n, err := t.exec(useRecoveryCode, micros(now), userID, hash)
	return n == 1, err
}

func (t *tx) InsertMFAChallenge(c *sessiond.MFAChallenge) error {
	_, err := t.exec(insertMFAChallenge, c.Hash, c.UserID, micros(c.CreatedAt), micros(c.ExpiresAt))
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
		return errUserNotFound()
	}
	return err
}

func scanMFAChallenge(row *sql.Row) (*sessiond.MFAChallenge, error) {
	var c sessiond.MFAChallenge
	var created, expires int64
	err := row.Scan(&c.Hash, &c.UserID, &created, &expires, &c.Attempts)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt = fromMicros(created), fromMicros(expires)
	return &c, nil
}

func (t *tx) MFAChallenge(hash []byte, now time.Time) (*sessiond.MFAChallenge, error) {
	return scanMFAChallenge(t.queryRow(mfaChallenge, hash, micros(now), sessiond.MFAChallengeAttempts))
}

func (t *tx) SpendMFAAttempt(hash []byte, now time.Time, max int) (*sessiond.MFAChallenge, error) {
	return scanMFAChallenge(t.queryRow(spendMFAAttempt, hash, micros(now), max))
}

func (t *tx) DeleteMFAChallenge(hash []byte) (bool, error) {
	n, err := t.exec(deleteMFAChallenge, hash)
	return n == 1, err
}

func (t *tx) SetSessionAuth(userID, sessionID string, amr []string, at time.Time) (bool, error) {
	n, err := t.exec(setSessionAuth, joinAMR(amr), micros(at), sessionID, userID)
	return n == 1, err
}

const deleteExpiredMFAChallenges = `DELETE FROM mfa_challenges WHERE hash IN (
	SELECT hash FROM mfa_challenges WHERE expires_at <= ? LIMIT ?)`

// DeleteExpiredMFAChallenges deletes one batch of unfinished logins
// expired by now.
func (db *DB) DeleteExpiredMFAChallenges(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteExpiredMFAChallenges, "delete expired mfa challenges", now, limit)
}
