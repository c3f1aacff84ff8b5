package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"time"

	sqlite3 "modernc.org/sqlite/lib"

	"github.com/sessiond/sessiond"
)

// Tx runs fn in one transaction on the single writer connection. The
// writer begins every transaction IMMEDIATE (see Open), so the transaction
// holds the database's write lock from its first statement: a login reads
// the sessions it counts with no other write in between, which is what
// keeps the cap atomic.
func (db *DB) Tx(ctx context.Context, fn sessiond.TxFunc) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	prepared := db.prepareTx(ctx)
	t, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return storeError("begin transaction", err)
	}
	defer t.Rollback()
	if err := fn(&tx{ctx: ctx, tx: t, prepared: prepared}); err != nil {
		return storeError("transaction", err)
	}
	if err := t.Commit(); err != nil {
		return storeError("commit transaction", err)
	}
	return nil
}

// txStatements are the statements of tx. Unprepared, SQLite parses each
// anew, which made a login's transaction four times as long on the single
// writer. They cannot be prepared inside a transaction, which holds the
// writer's one connection, nor at Open, before the schema exists; so the
// first transaction prepares them all, before it begins.
var txStatements = []string{
	lockUser, insertUser, setPasswordHash, setUserFlags, deleteUser,
	sessionsForEviction, insertSession, deleteSessions, sessionByID,
	rotateIfUnchanged, stampIfUnchanged, deleteSessionIfUnchanged,
	deleteUserSession, deleteUserSessions,
	insertEvent, webhookSubscribers, insertOutbox,
	totpFactor, insertMFAChallenge, // every login asks whether a second factor is owed
}

// prepareTx returns txStatements prepared on the writer, or nil (the
// statements then run unprepared) if they could not all be prepared yet.
func (db *DB) prepareTx(ctx context.Context) map[string]*sql.Stmt {
	if m := db.txStmts.Load(); m != nil {
		return *m
	}
	m := make(map[string]*sql.Stmt, len(txStatements))
	for _, q := range txStatements {
		st, err := db.wstmts.on(ctx, db.w, q)
		if err != nil {
			return nil
		}
		m[q] = st
	}
	db.txStmts.Store(&m)
	return m
}

// tx is a sessiond.Tx on an *sql.Tx of the writer.
type tx struct {
	ctx      context.Context
	tx       *sql.Tx
	prepared map[string]*sql.Stmt
}

// stmt is query prepared for this transaction, if it was prepared.
func (t *tx) stmt(query string) *sql.Stmt {
	if st, ok := t.prepared[query]; ok {
		return t.tx.StmtContext(t.ctx, st)
	}
	return nil
}

var _ sessiond.Tx = (*tx)(nil)

func (t *tx) exec(query string, args ...any) (int64, error) {
	var res sql.Result
	var err error
	if st := t.stmt(query); st != nil {
		res, err = st.ExecContext(t.ctx, args...)
	} else {
		res, err = t.tx.ExecContext(t.ctx, query, args...)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ids runs a statement that returns one text column.
func (t *tx) ids(query string, args ...any) ([]string, error) {
	rows, err := t.query(query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}

func (t *tx) query(query string, args ...any) (*sql.Rows, error) {
	if st := t.stmt(query); st != nil {
		return st.QueryContext(t.ctx, args...)
	}
	return t.tx.QueryContext(t.ctx, query, args...)
}

func (t *tx) queryRow(query string, args ...any) *sql.Row {
	if st := t.stmt(query); st != nil {
		return st.QueryRowContext(t.ctx, args...)
	}
	return t.tx.QueryRowContext(t.ctx, query, args...)
}

// sessionRow runs a statement returning sessionColumns; nil if no row.
func (t *tx) sessionRow(query string, args ...any) (*sessiond.Session, error) {
	s, err := scanSession(t.queryRow(query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	return s, err
}

// userColumns is every column of users, in the order scanUser reads.
const userColumns = `id, email, password_hash, created_at, email_verified, disabled`

const (
	// The transaction already holds the write lock; this read is the
	// user's existence check, and what it returns is current.
	lockUser = `SELECT ` + userColumns + ` FROM users WHERE id = ?`

	insertUser = `INSERT INTO users (` + userColumns + `) VALUES (?, ?, ?, ?, ?, ?)`

	setPasswordHash = `UPDATE users SET password_hash = ? WHERE id = ?`

	setUserFlags = `UPDATE users SET disabled = ?, email_verified = ? WHERE id = ?`

	setEmail = `UPDATE users SET email = ?, email_verified = ? WHERE id = ?`

	// Sessions go with their user (ON DELETE CASCADE).
	deleteUser = `DELETE FROM users WHERE id = ?`
)

func (t *tx) LockUser(id string) (*sessiond.User, error) {
	return scanUser(t.queryRow(lockUser, id))
}

func (t *tx) InsertUser(u *sessiond.User) error {
	_, err := t.exec(insertUser, u.ID, u.Email, u.PasswordHash, micros(u.CreatedAt), u.EmailVerified, u.Disabled)
	// email is the table's one UNIQUE constraint; a clash on the id (the
	// primary key) is a caller's bug, left to storeError.
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
		return errEmailTaken()
	}
	return err
}

func errEmailTaken() error {
	return sessiond.Errorf(sessiond.CodeEmailTaken, "the email address is already registered")
}

func (t *tx) SetPasswordHash(userID, hash string) error {
	_, err := t.exec(setPasswordHash, hash, userID)
	return err
}

func (t *tx) SetUserFlags(u *sessiond.User) error {
	_, err := t.exec(setUserFlags, u.Disabled, u.EmailVerified, u.ID)
	return err
}

func (t *tx) SetEmail(userID, email string, verified bool) error {
	_, err := t.exec(setEmail, email, verified, userID)
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_UNIQUE) {
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
	sessionsForEviction = `SELECT id, created_at, last_used_at, expires_at FROM sessions WHERE user_id = ?`

	insertSession = `INSERT INTO sessions (` + sessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`

	// The ids come as one JSON array, so that the statement stays one
	// constant whatever their number.
	deleteSessions = `DELETE FROM sessions WHERE id IN (SELECT value FROM json_each(?)) RETURNING id`

	// The statements that apply a refresh verdict act only on the row the
	// verdict was made on: the same generation and current hash and, for a
	// deletion, the same last use (a concurrent refresh may have revived an
	// idle session). When another request changed the row in between they
	// match nothing, and the attempt is decided again on the new row.
	rotateIfUnchanged = `UPDATE sessions
SET refresh_hash = ?, prev_hash = refresh_hash, generation = generation + 1, rotated_at = ?, last_used_at = ?
WHERE id = ? AND generation = ? AND refresh_hash = ?
RETURNING ` + sessionColumns

	// stampIfUnchanged never moves last_used_at back: a grace-window twin
	// may carry an instant a little older than the rotation it follows.
	stampIfUnchanged = `UPDATE sessions SET last_used_at = MAX(last_used_at, ?)
WHERE id = ? AND generation = ? AND refresh_hash = ?
RETURNING ` + sessionColumns

	deleteSessionIfUnchanged = `DELETE FROM sessions WHERE id = ? AND generation = ? AND refresh_hash = ? AND last_used_at = ?`

	deleteUserSession = `DELETE FROM sessions WHERE id = ? AND user_id = ?`

	deleteUserSessions = `DELETE FROM sessions WHERE user_id = ? RETURNING id`
)

func (t *tx) SessionsForEviction(userID string) ([]sessiond.Session, error) {
	rows, err := t.query(sessionsForEviction, userID)
	if err != nil {
		return nil, fmt.Errorf("select sessions: %w", err)
	}
	defer rows.Close()
	var out []sessiond.Session
	for rows.Next() {
		var s sessiond.Session
		var created, lastUsed, expires int64
		if err := rows.Scan(&s.ID, &created, &lastUsed, &expires); err != nil {
			return nil, fmt.Errorf("scan session: %w", err)
		}
		s.CreatedAt, s.LastUsedAt, s.ExpiresAt = fromMicros(created), fromMicros(lastUsed), fromMicros(expires)
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("select sessions: %w", err)
	}
	return out, nil
}

func (t *tx) InsertSession(s *sessiond.Session) error {
	if s.Generation > math.MaxInt64 {
		return fmt.Errorf("insert session: generation %d out of range", s.Generation)
	}
	_, err := t.exec(insertSession, s.ID, s.UserID, s.RefreshHash, nullBytes(s.PrevHash),
		int64(s.Generation), nullMicros(s.RotatedAt), micros(s.CreatedAt), micros(s.LastUsedAt),
		micros(s.ExpiresAt), s.UserAgent, s.IP, joinAMR(s.AMR), nullMicros(s.AuthTime), nullString(s.DPoPJKT))
	if isConstraint(err, sqlite3.SQLITE_CONSTRAINT_FOREIGNKEY) {
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
	list, err := json.Marshal(ids)
	if err != nil {
		return nil, err
	}
	out, err := t.ids(deleteSessions, string(list))
	if err != nil {
		return nil, fmt.Errorf("delete sessions: %w", err)
	}
	return out, nil
}

func (t *tx) SessionByID(id string) (*sessiond.Session, error) {
	return t.sessionRow(sessionByID, id)
}

func (t *tx) RotateIfUnchanged(s *sessiond.Session, next []byte, now time.Time) (*sessiond.Session, error) {
	return t.sessionRow(rotateIfUnchanged, nullBytes(next), micros(now), micros(now), s.ID, int64(s.Generation), s.RefreshHash)
}

func (t *tx) StampIfUnchanged(s *sessiond.Session, now time.Time) (*sessiond.Session, error) {
	return t.sessionRow(stampIfUnchanged, micros(now), s.ID, int64(s.Generation), s.RefreshHash)
}

func (t *tx) DeleteIfUnchanged(s *sessiond.Session) (bool, error) {
	n, err := t.exec(deleteSessionIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, micros(s.LastUsedAt))
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
VALUES (?, ?, ?, ?, ?, ?, ?, ?)`

	webhookSubscribers = `SELECT id FROM webhook_endpoints
WHERE EXISTS (SELECT 1 FROM json_each(webhook_endpoints.events) WHERE value IN (?, '*'))
ORDER BY id`

	insertOutbox = `INSERT INTO outbox (id, channel, target, event_id, payload, status, attempts, next_attempt_at, created_at, expires_at)
VALUES (?, ?, ?, ?, ?, 'pending', 0, ?, ?, ?)`
)

func (t *tx) InsertEvent(e *sessiond.Event) error {
	data := []byte("{}")
	if len(e.Data) > 0 {
		var err error
		if data, err = json.Marshal(e.Data); err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
	}
	_, err := t.exec(insertEvent, e.ID, e.Type, micros(e.OccurredAt), e.UserID, e.SessionID, e.IP, e.UserAgent, string(data))
	if isUniqueViolation(err) {
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
		_, err := t.exec(insertOutbox, m.ID, m.Channel, m.Target, m.EventID, m.Payload, micros(next), micros(m.CreatedAt), nullMicros(m.ExpiresAt))
		if isUniqueViolation(err) {
			return sessiond.Errorf(sessiond.CodeInvalidRequest, "a delivery of event %s to this target exists", m.EventID)
		}
		if err != nil {
			return err
		}
		m.Status, m.Attempts, m.NextAttemptAt = sessiond.OutboxPending, 0, sessiond.Now(next)
	}
	return nil
}
