package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// sessionColumns is every column of sessions, in the order scanSession reads.
const sessionColumns = `id, user_id, refresh_hash, prev_hash, generation, rotated_at, created_at, last_used_at, expires_at, user_agent, ip, amr, auth_time, dpop_jkt`

// scanSession reads one row of sessionColumns.
func scanSession(row interface{ Scan(...any) error }) (*sessiond.Session, error) {
	var (
		s                          sessiond.Session
		gen                        int64
		rotated, authTime          sql.NullInt64
		created, lastUsed, expires int64
		amr                        string
		jkt                        sql.NullString
	)
	if err := row.Scan(&s.ID, &s.UserID, &s.RefreshHash, &s.PrevHash, &gen, &rotated,
		&created, &lastUsed, &expires, &s.UserAgent, &s.IP, &amr, &authTime, &jkt); err != nil {
		return nil, err
	}
	s.Generation = uint64(gen)
	s.RotatedAt = fromNullMicros(rotated)
	s.CreatedAt = fromMicros(created)
	s.LastUsedAt = fromMicros(lastUsed)
	s.ExpiresAt = fromMicros(expires)
	s.AMR = splitAMR(amr)
	s.AuthTime = fromNullMicros(authTime)
	s.DPoPJKT = jkt.String
	return &s, nil
}

// amr is stored as a comma-separated list: RFC 8176 values hold no commas.
func joinAMR(amr []string) string { return strings.Join(amr, ",") }

func splitAMR(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

const (
	// refreshRotate is the fast path of a refresh with rotation: one
	// statement that succeeds only for the current, live token, presented
	// with a proof by the session's key if it is bound.
	refreshRotate = `UPDATE sessions
SET refresh_hash = ?, prev_hash = ?, generation = generation + 1, rotated_at = ?, last_used_at = ?
WHERE id = ? AND generation = ? AND refresh_hash = ? AND expires_at > ? AND last_used_at > ?
  AND (dpop_jkt IS NULL OR dpop_jkt = ?)
RETURNING ` + sessionColumns

	// refreshStamp is the fast path without rotation.
	refreshStamp = `UPDATE sessions SET last_used_at = ?
WHERE id = ? AND generation = ? AND refresh_hash = ? AND expires_at > ? AND last_used_at > ?
  AND (dpop_jkt IS NULL OR dpop_jkt = ?)
RETURNING ` + sessionColumns

	sessionByID = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = ?`
)

// RefreshCurrent is the common case of a refresh, the current token of a
// live session: one UPDATE ... RETURNING on the writer, outside any
// explicit transaction. nil if the token is anything else.
func (db *DB) RefreshCurrent(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	// No stored generation exceeds MaxInt64; refusing here also keeps a
	// client-chosen number from reaching the driver, which rejects it.
	if a.Generation > math.MaxInt64 || len(a.Hash) == 0 {
		return nil, nil
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	query := refreshStamp
	args := []any{micros(now), a.SessionID, int64(a.Generation), a.Hash, micros(now), micros(p.IdleCutoff(now)), a.DPoPJKT}
	if p.Rotate {
		query = refreshRotate
		args = append([]any{nullBytes(a.NextHash), a.Hash, micros(now)}, args...)
	}
	st, err := db.wstmts.on(ctx, db.w, query)
	if err != nil {
		return nil, storeError("refresh session", err)
	}
	s, err := scanSession(st.QueryRowContext(ctx, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError("refresh session", err)
	}
	return s, nil
}

// Session reads a session from the read pool, outside any transaction, so
// that a refresh's slow path classifies its token while the single writer
// goes on with other work; nil if there is none.
func (db *DB) Session(ctx context.Context, id string) (*sessiond.Session, error) {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	st, err := db.rstmts.on(ctx, db.r, sessionByID)
	if err != nil {
		return nil, storeError("get session", err)
	}
	s, err := scanSession(st.QueryRowContext(ctx, id))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError("get session", fmt.Errorf("select session: %w", err))
	}
	return s, nil
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
		return nil, errSessionNotFound()
	}
	if err != nil {
		return nil, storeError("get session", err)
	}
	return s, nil
}

func errSessionNotFound() error { return sessiond.Errorf(sessiond.CodeNotFound, "session not found") }

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
