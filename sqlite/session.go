package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/sessiond/sessiond"
)

// sessionColumns is every column of sessions, in the order scanSession reads.
const sessionColumns = `id, user_id, refresh_hash, prev_hash, generation, rotated_at, created_at, last_used_at, expires_at, user_agent, ip`

// scanSession reads one row of sessionColumns.
func scanSession(row interface{ Scan(...any) error }) (*sessiond.Session, error) {
	var (
		s                          sessiond.Session
		gen                        int64
		rotated                    sql.NullInt64
		created, lastUsed, expires int64
	)
	if err := row.Scan(&s.ID, &s.UserID, &s.RefreshHash, &s.PrevHash, &gen, &rotated,
		&created, &lastUsed, &expires, &s.UserAgent, &s.IP); err != nil {
		return nil, err
	}
	s.Generation = uint64(gen)
	s.RotatedAt = fromNullMicros(rotated)
	s.CreatedAt = fromMicros(created)
	s.LastUsedAt = fromMicros(lastUsed)
	s.ExpiresAt = fromMicros(expires)
	return &s, nil
}

const (
	lockUser = `SELECT 1 FROM users WHERE id = ?`

	userSessionsForEviction = `SELECT id, created_at, last_used_at, expires_at FROM sessions WHERE user_id = ?`

	deleteSessionByID = `DELETE FROM sessions WHERE id = ?`

	insertSession = `INSERT INTO sessions (` + sessionColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
)

// CreateSession stores s in one write transaction that deletes the user's
// expired sessions and evicts the least recently used live ones beyond the
// cap (sessiond.Evictions). The transaction is BEGIN IMMEDIATE on the single
// writer connection, so it holds the database's write lock from its first
// read: two logins of one user cannot both count the same sessions.
func (db *DB) CreateSession(ctx context.Context, s *sessiond.Session, now time.Time, p sessiond.Policy) ([]string, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, sessiond.Unavailable("create session", err)
	}
	defer tx.Rollback()

	var one int
	err = tx.QueryRowContext(ctx, lockUser, s.UserID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "user not found")
	}
	if err != nil {
		return nil, sessiond.Unavailable("create session", fmt.Errorf("lock user: %w", err))
	}
	existing, err := sessionsForEviction(ctx, tx, s.UserID)
	if err != nil {
		return nil, sessiond.Unavailable("create session", err)
	}
	expired, evicted := sessiond.Evictions(existing, now, p)
	for _, id := range append(expired, evicted...) {
		if _, err := tx.ExecContext(ctx, deleteSessionByID, id); err != nil {
			return nil, sessiond.Unavailable("create session", fmt.Errorf("delete session: %w", err))
		}
	}
	if err := insertSessionRow(ctx, tx, s); err != nil {
		return nil, sessiond.Unavailable("create session", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, sessiond.Unavailable("create session", fmt.Errorf("commit: %w", err))
	}
	return evicted, nil
}

func sessionsForEviction(ctx context.Context, q dbtx, userID string) ([]sessiond.Session, error) {
	rows, err := q.QueryContext(ctx, userSessionsForEviction, userID)
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

func insertSessionRow(ctx context.Context, q dbtx, s *sessiond.Session) error {
	if s.Generation > math.MaxInt64 {
		return fmt.Errorf("insert session: generation %d out of range", s.Generation)
	}
	_, err := q.ExecContext(ctx, insertSession, s.ID, s.UserID, s.RefreshHash, nullBytes(s.PrevHash),
		int64(s.Generation), nullMicros(s.RotatedAt), micros(s.CreatedAt), micros(s.LastUsedAt),
		micros(s.ExpiresAt), s.UserAgent, s.IP)
	if err != nil {
		return fmt.Errorf("insert session: %w", err)
	}
	return nil
}

const (
	// refreshRotate is the fast path of a refresh with rotation: one
	// statement that succeeds only for the current, live token.
	refreshRotate = `UPDATE sessions
SET refresh_hash = ?, prev_hash = ?, generation = generation + 1, rotated_at = ?, last_used_at = ?
WHERE id = ? AND generation = ? AND refresh_hash = ? AND expires_at > ? AND last_used_at > ?
RETURNING ` + sessionColumns

	// refreshStamp is the fast path without rotation.
	refreshStamp = `UPDATE sessions SET last_used_at = ?
WHERE id = ? AND generation = ? AND refresh_hash = ? AND expires_at > ? AND last_used_at > ?
RETURNING ` + sessionColumns

	sessionByID = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = ?`

	rotateSessionByID = `UPDATE sessions
SET refresh_hash = ?, prev_hash = refresh_hash, generation = generation + 1, rotated_at = ?, last_used_at = ?
WHERE id = ?
RETURNING ` + sessionColumns

	// stampSessionByID never moves last_used_at back: a grace-window twin
	// may carry an instant a little older than the rotation it follows.
	stampSessionByID = `UPDATE sessions SET last_used_at = MAX(last_used_at, ?) WHERE id = ? RETURNING ` + sessionColumns
)

// RefreshSession applies a refresh attempt. The common case, the current
// token of a live session, is one UPDATE ... RETURNING on the writer; only
// when that matches no row does it open a transaction to find out why
// (sessiond.ClassifyRefresh) and act on the verdict.
func (db *DB) RefreshSession(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	// No stored generation exceeds MaxInt64; refusing here also keeps a
	// client-chosen number from reaching the driver, which rejects it.
	if a.Generation > math.MaxInt64 || len(a.Hash) == 0 {
		return nil, invalidRefreshToken()
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()

	query := refreshStamp
	args := []any{micros(now), a.SessionID, int64(a.Generation), a.Hash, micros(now), micros(p.IdleCutoff(now))}
	if p.Rotate {
		query = refreshRotate
		args = append([]any{nullBytes(a.NextHash), a.Hash, micros(now)}, args...)
	}
	st, err := db.wstmts.on(ctx, db.w, query)
	if err != nil {
		return nil, sessiond.Unavailable("refresh session", err)
	}
	s, err := scanSession(st.QueryRowContext(ctx, args...))
	if err == nil {
		return s, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.Unavailable("refresh session", err)
	}
	return db.refreshSlow(ctx, a, now, p)
}

// refreshSlow decides a refresh the fast path did not match, inside a write
// transaction so that the verdict and its effect see the same row.
func (db *DB) refreshSlow(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, sessiond.Unavailable("refresh session", err)
	}
	defer tx.Rollback()

	s, err := scanSession(tx.QueryRowContext(ctx, sessionByID, a.SessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, invalidRefreshToken()
	}
	if err != nil {
		return nil, sessiond.Unavailable("refresh session", fmt.Errorf("select session: %w", err))
	}

	var (
		out    *sessiond.Session
		result error
	)
	switch v := sessiond.ClassifyRefresh(s, a, now, p); v {
	case sessiond.RefreshCurrent:
		if p.Rotate {
			out, err = scanSession(tx.QueryRowContext(ctx, rotateSessionByID, nullBytes(a.NextHash), micros(now), micros(now), s.ID))
		} else {
			out, err = scanSession(tx.QueryRowContext(ctx, stampSessionByID, micros(now), s.ID))
		}
	case sessiond.RefreshGrace:
		// The twin of a request that already rotated: same generation, so
		// both end up holding the one current token.
		out, err = scanSession(tx.QueryRowContext(ctx, stampSessionByID, micros(now), s.ID))
	case sessiond.RefreshReused:
		_, err = tx.ExecContext(ctx, deleteSessionByID, s.ID)
		result = sessiond.Errorf(sessiond.CodeRefreshTokenReused, "refresh token was already used; the session has been ended")
	case sessiond.RefreshExpired:
		_, err = tx.ExecContext(ctx, deleteSessionByID, s.ID)
		result = sessiond.Errorf(sessiond.CodeSessionExpired, "session has expired")
	default:
		return nil, invalidRefreshToken()
	}
	if err != nil {
		return nil, sessiond.Unavailable("refresh session", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, sessiond.Unavailable("refresh session", fmt.Errorf("commit: %w", err))
	}
	if result != nil {
		return nil, result
	}
	return out, nil
}

func invalidRefreshToken() error {
	return sessiond.Errorf(sessiond.CodeInvalidRefreshToken, "refresh token is invalid")
}

// EndSessionByRefresh deletes the session the token belongs to, if the token
// is of that session's chain: any verdict of ClassifyRefresh but invalid.
// Expiry and grace do not matter to a logout, so the policy and instant
// passed to ClassifyRefresh are placeholders.
func (db *DB) EndSessionByRefresh(ctx context.Context, a *sessiond.RefreshAttempt) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return sessiond.Unavailable("end session", err)
	}
	defer tx.Rollback()

	s, err := scanSession(tx.QueryRowContext(ctx, sessionByID, a.SessionID))
	if errors.Is(err, sql.ErrNoRows) {
		return invalidRefreshToken()
	}
	if err != nil {
		return sessiond.Unavailable("end session", fmt.Errorf("select session: %w", err))
	}
	if sessiond.ClassifyRefresh(s, a, s.CreatedAt, sessiond.Policy{}) == sessiond.RefreshInvalid {
		return invalidRefreshToken()
	}
	if _, err := tx.ExecContext(ctx, deleteSessionByID, s.ID); err != nil {
		return sessiond.Unavailable("end session", fmt.Errorf("delete session: %w", err))
	}
	if err := tx.Commit(); err != nil {
		return sessiond.Unavailable("end session", fmt.Errorf("commit: %w", err))
	}
	return nil
}

const liveSession = `SELECT ` + sessionColumns + ` FROM sessions
WHERE id = ? AND user_id = ? AND expires_at > ? AND last_used_at > ?`

// LiveSession returns the user's session id if it is live at now. CodeNotFound.
func (db *DB) LiveSession(ctx context.Context, userID, id string, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	st, err := db.rstmts.on(ctx, db.r, liveSession)
	if err != nil {
		return nil, sessiond.Unavailable("get session", err)
	}
	s, err := scanSession(st.QueryRowContext(ctx, id, userID, micros(now), micros(p.IdleCutoff(now))))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "session not found")
	}
	if err != nil {
		return nil, sessiond.Unavailable("get session", err)
	}
	return s, nil
}

const listSessions = `SELECT ` + sessionColumns + ` FROM sessions
WHERE user_id = ? AND expires_at > ? AND last_used_at > ?
ORDER BY last_used_at DESC, created_at DESC, id DESC`

// ListSessions returns the user's live sessions, most recently used first.
func (db *DB) ListSessions(ctx context.Context, userID string, now time.Time, p sessiond.Policy) ([]sessiond.Session, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, listSessions, userID, micros(now), micros(p.IdleCutoff(now)))
	if err != nil {
		return nil, sessiond.Unavailable("list sessions", err)
	}
	defer rows.Close()
	out := []sessiond.Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, sessiond.Unavailable("list sessions", err)
		}
		out = append(out, *s)
	}
	if err := rows.Err(); err != nil {
		return nil, sessiond.Unavailable("list sessions", err)
	}
	return out, nil
}

const deleteUserSession = `DELETE FROM sessions WHERE id = ? AND user_id = ?`

// DeleteSession deletes the user's session id. CodeNotFound if the user has
// no such session (including when it is someone else's).
func (db *DB) DeleteSession(ctx context.Context, userID, id string) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, deleteUserSession, id, userID)
	if err != nil {
		return sessiond.Unavailable("delete session", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return sessiond.Unavailable("delete session", err)
	}
	if n == 0 {
		return sessiond.Errorf(sessiond.CodeNotFound, "session not found")
	}
	return nil
}

const deleteUserSessions = `DELETE FROM sessions WHERE user_id = ?`

// DeleteUserSessions deletes every session of the user and returns how many.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, deleteUserSessions, userID)
	if err != nil {
		return 0, sessiond.Unavailable("delete user sessions", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, sessiond.Unavailable("delete user sessions", err)
	}
	return int(n), nil
}

// deleteExpired and deleteIdle each delete a bounded batch, so a sweep after
// a long outage holds the write lock for one short statement at a time. They
// are two statements rather than one with OR, each ordered by its column,
// so that each walks its own index (expires_at, last_used_at) and stops
// after the batch instead of scanning the table.
const (
	deleteExpired = `DELETE FROM sessions WHERE id IN (
    SELECT id FROM sessions WHERE expires_at <= ? ORDER BY expires_at LIMIT ?)`
	deleteIdle = `DELETE FROM sessions WHERE id IN (
    SELECT id FROM sessions WHERE last_used_at <= ? ORDER BY last_used_at LIMIT ?)`
)

// DeleteExpiredSessions deletes at most limit sessions expired at now and
// returns how many it deleted.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time, p sessiond.Policy, limit int) (int, error) {
	if limit <= 0 { // SQLite reads a negative LIMIT as "no limit"
		return 0, nil
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	return sessiond.SweepExpired(now, p, limit, func(kind sessiond.Expiry, cutoff time.Time, n int) (int, error) {
		query := deleteExpired
		if kind == sessiond.ExpiredIdle {
			query = deleteIdle
		}
		res, err := db.w.ExecContext(ctx, query, micros(cutoff), n)
		if err != nil {
			return 0, sessiond.Unavailable("delete expired sessions", err)
		}
		n64, err := res.RowsAffected()
		if err != nil {
			return 0, sessiond.Unavailable("delete expired sessions", err)
		}
		return int(n64), nil
	})
}
