package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

// Tx runs fn in one READ COMMITTED transaction (inTx), so fn runs again
// after a deadlock or serialization failure. Consistency comes from the
// row locks the statements take: LockUser's FOR UPDATE serializes the
// logins and changes of one user across instances, and
// SessionsForEviction locks the sessions it counts.
func (db *DB) Tx(ctx context.Context, fn sessiond.TxFunc) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	err := db.inTx(ctx, func(t pgx.Tx) error { return fn(&tx{ctx: ctx, tx: t}) })
	return storeError("transaction", err)
}

// tx is a sessiond.Tx on a pgx.Tx.
type tx struct {
	ctx context.Context
	tx  pgx.Tx
}

var _ sessiond.Tx = (*tx)(nil)

func (t *tx) exec(query string, args ...any) (int64, error) {
	tag, err := t.tx.Exec(t.ctx, query, args...)
	return tag.RowsAffected(), err
}

// ids runs a statement that returns one text column.
func (t *tx) ids(query string, args ...any) ([]string, error) {
	rows, err := t.tx.Query(t.ctx, query, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// sessionRow runs a statement returning sessionColumns; nil if no row.
func (t *tx) sessionRow(query string, args ...any) (*sessiond.Session, error) {
	s, err := scanSession(t.tx.QueryRow(t.ctx, query, args...))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return s, err
}

// userColumns is every column of users, in the order scanUser reads.
const userColumns = `id, email, password_hash, created_at, email_verified, disabled`

const (
	// lockUser serializes the logins of one user, so that counting their
	// sessions and inserting one is atomic across instances (invariant 1),
	// and a disable waits for a login in progress (or the login for it).
	lockUser = `SELECT ` + userColumns + ` FROM users WHERE id = $1 FOR UPDATE`

	insertUser = `INSERT INTO users (` + userColumns + `) VALUES ($1, $2, $3, $4, $5, $6)`

	setPasswordHash = `UPDATE users SET password_hash = $2 WHERE id = $1`

	setUserFlags = `UPDATE users SET disabled = $2, email_verified = $3 WHERE id = $1`

	setEmail = `UPDATE users SET email = $2, email_verified = $3 WHERE id = $1`

	// Sessions go with their user (ON DELETE CASCADE).
	deleteUser = `DELETE FROM users WHERE id = $1`
)

// emailConstraint is the unique constraint on users.email, named in
// 00001_init.sql so that a taken email is told apart from any other
// unique violation.
const emailConstraint = "users_email_key"

func (t *tx) LockUser(id string) (*sessiond.User, error) {
	return scanUser(t.tx.QueryRow(t.ctx, lockUser, id))
}

func (t *tx) InsertUser(u *sessiond.User) error {
	_, err := t.exec(insertUser, u.ID, u.Email, u.PasswordHash, u.CreatedAt, u.EmailVerified, u.Disabled)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == emailConstraint {
		return errEmailTaken()
	}
	return err
}

func errEmailTaken() error {
	return sessiond.Errorf(sessiond.CodeEmailTaken, "the email address is already registered")
}

func (t *tx) SetPasswordHash(userID, hash string) error {
	_, err := t.exec(setPasswordHash, userID, hash)
	return err
}

func (t *tx) SetUserFlags(u *sessiond.User) error {
	_, err := t.exec(setUserFlags, u.ID, u.Disabled, u.EmailVerified)
	return err
}

func (t *tx) SetEmail(userID, email string, verified bool) error {
	_, err := t.exec(setEmail, userID, email, verified)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == emailConstraint {
		return errEmailTaken()
	}
	return err
}

func (t *tx) DeleteUser(id string) error {
	n, err := t.exec(deleteUser, id)
	if err == nil && n == 0 {
		return errUserNotFound()
	}
	return err
}

func errUserNotFound() error { return sessiond.Errorf(sessiond.CodeNotFound, "user not found") }

const (
	// sessionsForEviction locks the user's sessions too: a refresh that
	// commits first is then seen with its new last_used_at (and another
	// session is evicted), and one that comes later waits and finds its
	// session gone. Without the lock, READ COMMITTED would let a login evict
	// a session from its stale snapshot just after that session's refresh
	// succeeded: refreshed and evicted both.
	sessionsForEviction = `SELECT id, created_at, last_used_at, expires_at FROM sessions WHERE user_id = $1 FOR UPDATE`

	insertSession = `INSERT INTO sessions (` + sessionColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

	deleteSessions = `DELETE FROM sessions WHERE id = ANY($1) RETURNING id`

	// The statements that apply a refresh verdict act only on the row the
	// verdict was made on: the same generation and current hash and, for a
	// deletion, the same last use (a concurrent refresh may have revived
	// an idle session). When another request changed the row in between
	// they match nothing, and the attempt is decided again.
	// $1 session id, $2 generation, $3 current hash as read.
	rotateIfUnchanged = `UPDATE sessions
		SET refresh_hash = $4, prev_hash = refresh_hash, generation = generation + 1, rotated_at = $5, last_used_at = $5
		WHERE id = $1 AND generation = $2 AND refresh_hash = $3
		RETURNING ` + sessionColumns

	// stampIfUnchanged never moves last_used_at back: a grace-window twin
	// may carry an instant a little older than the rotation it follows.
	stampIfUnchanged = `UPDATE sessions SET last_used_at = GREATEST(last_used_at, $4)
		WHERE id = $1 AND generation = $2 AND refresh_hash = $3
		RETURNING ` + sessionColumns

	deleteSessionIfUnchanged = `DELETE FROM sessions
		WHERE id = $1 AND generation = $2 AND refresh_hash = $3 AND last_used_at = $4`

	deleteUserSession = `DELETE FROM sessions WHERE id = $1 AND user_id = $2`

	deleteUserSessions = `DELETE FROM sessions WHERE user_id = $1 RETURNING id`
)

func (t *tx) SessionsForEviction(userID string) ([]sessiond.Session, error) {
	rows, err := t.tx.Query(t.ctx, sessionsForEviction, userID)
	if err != nil {
		return nil, fmt.Errorf("select user sessions: %w", err)
	}
	sessions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessiond.Session, error) {
		var s sessiond.Session
		err := row.Scan(&s.ID, &s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt)
		s.CreatedAt, s.LastUsedAt, s.ExpiresAt = sessiond.Now(s.CreatedAt), sessiond.Now(s.LastUsedAt), sessiond.Now(s.ExpiresAt)
		return s, err
	})
	if err != nil {
		return nil, fmt.Errorf("select user sessions: %w", err)
	}
	return sessions, nil
}

func (t *tx) InsertSession(s *sessiond.Session) error {
	if s.Generation > math.MaxInt64 {
		return fmt.Errorf("insert session: generation %d out of range", s.Generation)
	}
	_, err := t.exec(insertSession,
		s.ID, s.UserID, s.RefreshHash, s.PrevHash, int64(s.Generation), nullTime(s.RotatedAt),
		s.CreatedAt, s.LastUsedAt, s.ExpiresAt, s.UserAgent, s.IP, strings.Join(s.AMR, ","), nullTime(s.AuthTime), nullString(s.DPoPJKT))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeForeignKeyViolation {
		return errUserNotFound()
	}
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

func (t *tx) DeleteSessions(ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	out, err := t.ids(deleteSessions, ids)
	if err != nil {
		return nil, fmt.Errorf("delete sessions: %w", err)
	}
	return out, nil
}

func (t *tx) SessionByID(id string) (*sessiond.Session, error) {
	return t.sessionRow(sessionByID, id)
}

func (t *tx) RotateIfUnchanged(s *sessiond.Session, next []byte, now time.Time) (*sessiond.Session, error) {
	return t.sessionRow(rotateIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, next, now)
}

func (t *tx) StampIfUnchanged(s *sessiond.Session, now time.Time) (*sessiond.Session, error) {
	return t.sessionRow(stampIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, now)
}

func (t *tx) DeleteIfUnchanged(s *sessiond.Session) (bool, error) {
	n, err := t.exec(deleteSessionIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, s.LastUsedAt)
	return n == 1, err
}

func (t *tx) DeleteUserSession(userID, id string) (bool, error) {
	n, err := t.exec(deleteUserSession, id, userID)
	return n == 1, err
}

func (t *tx) DeleteUserSessions(userID string) ([]string, error) {
	return t.ids(deleteUserSessions, userID)
}

const (
	insertEvent = `INSERT INTO events (id, type, occurred_at, user_id, session_id, ip, user_agent, data)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`

	webhookSubscribers = `SELECT id FROM webhook_endpoints WHERE events && ARRAY[$1, '*']::text[] ORDER BY id`

	insertOutbox = `INSERT INTO outbox (id, channel, target, event_id, payload, status, attempts, next_attempt_at, created_at, expires_at)
VALUES ($1, $2, $3, $4, $5, 'pending', 0, $6, $7, $8)`
)

// outboxUnique is the constraint that makes one delivery per channel,
// target and event.
const outboxUnique = "outbox_channel_target_event_id_key"

func (t *tx) InsertEvent(e *sessiond.Event) error {
	data := []byte("{}")
	if len(e.Data) > 0 {
		var err error
		if data, err = json.Marshal(e.Data); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	_, err := t.exec(insertEvent, e.ID, e.Type, sessiond.Now(e.OccurredAt), e.UserID, e.SessionID, e.IP, e.UserAgent, string(data))
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation {
		return sessiond.Errorf(sessiond.CodeInvalidRequest, "event %s exists", e.ID)
	}
	return err
}

func (t *tx) WebhookSubscribers(eventType string) ([]string, error) {
	return t.ids(webhookSubscribers, eventType)
}

// InsertOutbox stores msgs as pending with no attempts. A zero
// NextAttemptAt means due at CreatedAt.
func (t *tx) InsertOutbox(msgs ...*sessiond.OutboxMessage) error {
	for _, m := range msgs {
		next := m.NextAttemptAt
		if next.IsZero() {
			next = m.CreatedAt
		}
		var expires any
		if !m.ExpiresAt.IsZero() {
			expires = sessiond.Now(m.ExpiresAt)
		}
		_, err := t.exec(insertOutbox, m.ID, m.Channel, m.Target, m.EventID, m.Payload, sessiond.Now(next), sessiond.Now(m.CreatedAt), expires)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == codeUniqueViolation && pgErr.ConstraintName == outboxUnique {
			return sessiond.Errorf(sessiond.CodeInvalidRequest, "a delivery of event %s to this target exists", m.EventID)
		}
		if err != nil {
			return fmt.Errorf("insert outbox: %w", err)
		}
	}
	return nil
}
