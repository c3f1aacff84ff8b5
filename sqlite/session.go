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
		return nil, storeError("create session", err)
	}
	defer tx.Rollback()

	var one int
	err = tx.QueryRowContext(ctx, lockUser, s.UserID).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "user not found")
	}
	if err != nil {
		return nil, storeError("create session", fmt.Errorf("lock user: %w", err))
	}
	existing, err := sessionsForEviction(ctx, tx, s.UserID)
	if err != nil {
		return nil, storeError("create session", err)
	}
	expired, evicted := sessiond.Evictions(existing, now, p)
	for _, id := range append(expired, evicted...) {
		if _, err := tx.ExecContext(ctx, deleteSessionByID, id); err != nil {
			return nil, storeError("create session", fmt.Errorf("delete session: %w", err))
		}
	}
	if err := insertSessionRow(ctx, tx, s); err != nil {
		return nil, storeError("create session", err)
	}
	if err := tx.Commit(); err != nil {
		return nil, storeError("create session", fmt.Errorf("commit: %w", err))
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

	// The statements that apply a verdict act only on the row the verdict
	// was made on: the same generation and current hash and, for a
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
)

// decideAttempts bounds how often one refresh or logout is decided again
// because its session changed between the read and the write. Only requests
// for that same session can change it, so a legitimate race settles in two.
const decideAttempts = 3

// errKeptChanging is the cause when decideAttempts ran out.
var errKeptChanging = errors.New("the session changed on every attempt")

// RefreshSession applies a refresh attempt. The common case, the current
// token of a live session, is one UPDATE ... RETURNING on the writer. Only
// when that matches no row is the session read, from the read pool, and
// classified (sessiond.ClassifyRefresh) with nothing held: the ancestor walk
// of an old or forged token costs up to p.MaxAncestorSteps HMACs, and the
// single writer must not wait for them. The verdict is then applied by one
// statement that matches only the row as read.
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
	s, err := db.writeRow(ctx, query, args...)
	if err != nil {
		return nil, storeError("refresh session", err)
	}
	if s != nil {
		return s, nil
	}
	for range decideAttempts {
		s, err := db.readSession(ctx, a.SessionID)
		if err != nil {
			return nil, storeError("refresh session", err)
		}
		var out *sessiond.Session
		switch v := sessiond.ClassifyRefresh(s, a, now, p); v {
		case sessiond.RefreshCurrent:
			// The fast path raced with another change of the row.
			if p.Rotate {
				out, err = db.writeRow(ctx, rotateIfUnchanged, nullBytes(a.NextHash), micros(now), micros(now), s.ID, int64(s.Generation), s.RefreshHash)
			} else {
				out, err = db.writeRow(ctx, stampIfUnchanged, micros(now), s.ID, int64(s.Generation), s.RefreshHash)
			}
		case sessiond.RefreshGrace:
			// The twin of a request that already rotated: same generation,
			// so both end up holding the one current token.
			out, err = db.writeRow(ctx, stampIfUnchanged, micros(now), s.ID, int64(s.Generation), s.RefreshHash)
		case sessiond.RefreshReused, sessiond.RefreshExpired:
			var deleted bool
			deleted, err = db.deleteIfUnchanged(ctx, s)
			if err == nil && deleted {
				if v == sessiond.RefreshReused {
					return nil, sessiond.ErrRefreshReused(s, a)
				}
				return nil, sessiond.Errorf(sessiond.CodeSessionExpired, "session has expired")
			}
		default:
			return nil, invalidRefreshToken()
		}
		if err != nil {
			return nil, storeError("refresh session", err)
		}
		if out != nil {
			return out, nil
		}
	}
	return nil, sessiond.Unavailable("refresh session", errKeptChanging)
}

// readSession reads a session from the read pool, outside any transaction;
// nil if there is none.
func (db *DB) readSession(ctx context.Context, id string) (*sessiond.Session, error) {
	st, err := db.rstmts.on(ctx, db.r, sessionByID)
	if err != nil {
		return nil, err
	}
	s, err := scanSession(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("select session: %w", err)
	}
	return s, nil
}

// writeRow runs one UPDATE ... RETURNING on the writer; nil if it matched no row.
func (db *DB) writeRow(ctx context.Context, query string, args ...any) (*sessiond.Session, error) {
	st, err := db.wstmts.on(ctx, db.w, query)
	if err != nil {
		return nil, err
	}
	s, err := scanSession(st.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("update session: %w", err)
	}
	return s, nil
}

// deleteIfUnchanged deletes s if the row is still as it was read, and
// reports whether it did.
func (db *DB) deleteIfUnchanged(ctx context.Context, s *sessiond.Session) (bool, error) {
	res, err := db.w.ExecContext(ctx, deleteSessionIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, micros(s.LastUsedAt))
	if err != nil {
		return false, fmt.Errorf("delete session: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete session: %w", err)
	}
	return n == 1, nil
}

func invalidRefreshToken() error {
	return sessiond.Errorf(sessiond.CodeInvalidRefreshToken, "refresh token is invalid")
}

// EndSessionByRefresh deletes the session the token belongs to, if the token
// is of that session's chain: any verdict of ClassifyRefresh but invalid.
// Expiry and grace do not matter to a logout, so the instant passed to
// ClassifyRefresh is a placeholder; p bounds the ancestor walk, which runs
// with nothing held, as in RefreshSession.
func (db *DB) EndSessionByRefresh(ctx context.Context, a *sessiond.RefreshAttempt, p sessiond.Policy) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	for range decideAttempts {
		s, err := db.readSession(ctx, a.SessionID)
		if err != nil {
			return storeError("end session", err)
		}
		if s == nil || sessiond.ClassifyRefresh(s, a, s.CreatedAt, p) == sessiond.RefreshInvalid {
			return invalidRefreshToken()
		}
		deleted, err := db.deleteIfUnchanged(ctx, s)
		if err != nil {
			return storeError("end session", err)
		}
		if deleted {
			return nil
		}
	}
	return sessiond.Unavailable("end session", errKeptChanging)
}

const liveSession = `SELECT ` + sessionColumns + ` FROM sessions
WHERE id = ? AND user_id = ? AND expires_at > ? AND last_used_at > ?`

// LiveSession returns the user's session id if it is live at now. CodeNotFound.
func (db *DB) LiveSession(ctx context.Context, userID, id string, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	st, err := db.rstmts.on(ctx, db.r, liveSession)
	if err != nil {
		return nil, storeError("get session", err)
	}
	s, err := scanSession(st.QueryRowContext(ctx, id, userID, micros(now), micros(p.IdleCutoff(now))))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "session not found")
	}
	if err != nil {
		return nil, storeError("get session", err)
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
		return nil, storeError("list sessions", err)
	}
	defer rows.Close()
	out := []sessiond.Session{}
	for rows.Next() {
		s, err := scanSession(rows)
		if err != nil {
			return nil, storeError("list sessions", err)
		}
		out = append(out, *s)
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("list sessions", err)
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
		return storeError("delete session", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return storeError("delete session", err)
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
		return 0, storeError("delete user sessions", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeError("delete user sessions", err)
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
			return 0, storeError("delete expired sessions", err)
		}
		n64, err := res.RowsAffected()
		if err != nil {
			return 0, storeError("delete expired sessions", err)
		}
		return int(n64), nil
	})
}
