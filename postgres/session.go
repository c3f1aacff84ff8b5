package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
)

// sessionColumns is every column of sessions, in the order scanSession reads.
const sessionColumns = `id, user_id, refresh_hash, prev_hash, generation, rotated_at, created_at, last_used_at, expires_at, user_agent, ip, amr, auth_time, dpop_jkt`

// The fast path of a refresh: one statement that succeeds exactly when
// the presented token is the current one of a live session, which is nearly
// every refresh; a bound session's only with a proof by its key. $1
// session id, $2 generation, $3 hash, $4 now, $5 idle cutoff, $6 the
// proof's key thumbprint (” for none), $7 next hash.
const (
	refreshRotate = `UPDATE sessions
		SET refresh_hash = $7, prev_hash = $3, generation = generation + 1, rotated_at = $4, last_used_at = $4
		WHERE id = $1 AND generation = $2 AND refresh_hash = $3 AND expires_at > $4 AND last_used_at > $5
		  AND (dpop_jkt IS NULL OR dpop_jkt = $6)
		RETURNING ` + sessionColumns

	refreshStamp = `UPDATE sessions
		SET last_used_at = $4
		WHERE id = $1 AND generation = $2 AND refresh_hash = $3 AND expires_at > $4 AND last_used_at > $5
		  AND (dpop_jkt IS NULL OR dpop_jkt = $6)
		RETURNING ` + sessionColumns
)

// RefreshCurrent handles a current token of a live session by one UPDATE
// ... RETURNING, one round trip without an explicit transaction. nil for
// any other token.
func (db *DB) RefreshCurrent(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	// Generations are stored as BIGINT; a claimed one beyond that cannot be
	// current.
	if a.Generation > math.MaxInt64 || len(a.Hash) == 0 {
		return nil, nil
	}
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	query, args := refreshStamp, []any{a.SessionID, int64(a.Generation), a.Hash, now, p.IdleCutoff(now), a.DPoPJKT}
	if p.Rotate {
		query, args = refreshRotate, append(args, a.NextHash)
	}
	s, err := db.queryRow(ctx, query, args...)
	if err != nil {
		return nil, storeError("refresh session", fmt.Errorf("refresh current session: %w", err))
	}
	return s, nil
}

const sessionByID = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1`

// Session reads session id without a lock or transaction; nil if none.
func (db *DB) Session(ctx context.Context, id string) (*sessiond.Session, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	s, err := db.queryRow(ctx, sessionByID, id)
	if err != nil {
		return nil, storeError("get session", fmt.Errorf("select session: %w", err))
	}
	return s, nil
}

// queryRow runs one statement returning sessionColumns outside a
// transaction, retried like exec; nil if it matched no row.
func (db *DB) queryRow(ctx context.Context, sql string, args ...any) (*sessiond.Session, error) {
	var s *sessiond.Session
	err := retry(ctx, func() error {
		var err error
		s, err = scanSession(db.pool.QueryRow(ctx, sql, args...))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	return s, err
}

// liveCondition keeps the sessions live at $2 (now) with idle cutoff $3; it
// is sessiond.(*Session).Live in SQL.
const liveCondition = `expires_at > $2 AND last_used_at > $3`

const (
	liveSession = `SELECT ` + sessionColumns + ` FROM sessions
		WHERE user_id = $1 AND ` + liveCondition + ` AND id = $4`

	listSessions = `SELECT ` + sessionColumns + ` FROM sessions
		WHERE user_id = $1 AND ` + liveCondition + `
		ORDER BY last_used_at DESC, created_at DESC, id DESC`
)

// LiveSession returns the user's session id if it is live at now.
// CodeNotFound if it does not exist, belongs to another user or expired.
func (db *DB) LiveSession(ctx context.Context, userID, id string, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	s, err := scanSession(db.pool.QueryRow(ctx, liveSession, userID, now, p.IdleCutoff(now), id))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "session not found")
	}
	if err != nil {
		return nil, storeError("get session", err)
	}
	return s, nil
}

// ListSessions returns the user's live sessions, most recently used first.
func (db *DB) ListSessions(ctx context.Context, userID string, now time.Time, p sessiond.Policy) ([]sessiond.Session, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, listSessions, userID, now, p.IdleCutoff(now))
	if err != nil {
		return nil, storeError("list sessions", err)
	}
	sessions, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (sessiond.Session, error) {
		s, err := scanSession(row)
		if err != nil {
			return sessiond.Session{}, err
		}
		return *s, nil
	})
	if err != nil {
		return nil, storeError("list sessions", err)
	}
	return sessions, nil
}

// deleteExpiredSessions deletes one batch. SKIP LOCKED lets sweepers on
// several instances share the work instead of queueing behind each other,
// and leaves alone rows a login or refresh is deciding about right now.
// Two statements rather than one with OR, each ordered by the column it
// filters on, so that each walks its own index (expires_at, last_used_at)
// and stops after the batch: without the order, a table whose expired rows
// sat at the end of the heap was swept by sequential scans of 5M rows per
// batch (docs/BENCHMARKS.md, "Scale").
const (
	deleteExpired = `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions
		WHERE expires_at <= $1
		ORDER BY expires_at
		LIMIT $2
		FOR UPDATE SKIP LOCKED)`
	deleteIdle = `DELETE FROM sessions WHERE id IN (
		SELECT id FROM sessions
		WHERE last_used_at <= $1
		ORDER BY last_used_at
		LIMIT $2
		FOR UPDATE SKIP LOCKED)`
)

// DeleteExpiredSessions deletes at most limit sessions expired at now and
// returns how many it deleted; a limit below 1 deletes nothing.
func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time, p sessiond.Policy, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	return sessiond.SweepExpired(now, p, limit, func(kind sessiond.Expiry, cutoff time.Time, n int) (int, error) {
		query := deleteExpired
		if kind == sessiond.ExpiredIdle {
			query = deleteIdle
		}
		tag, err := db.exec(ctx, query, cutoff, n)
		if err != nil {
			return 0, storeError("delete expired sessions", err)
		}
		return int(tag.RowsAffected()), nil
	})
}

// scanSession reads one row of sessionColumns.
func scanSession(row pgx.Row) (*sessiond.Session, error) {
	var (
		s          sessiond.Session
		generation int64
		rotatedAt  *time.Time
		amr        string
		authTime   *time.Time
		jkt        *string
	)
	err := row.Scan(&s.ID, &s.UserID, &s.RefreshHash, &s.PrevHash, &generation, &rotatedAt,
		&s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt, &s.UserAgent, &s.IP, &amr, &authTime, &jkt)
	if err != nil {
		return nil, err
	}
	s.Generation = uint64(generation)
	s.RotatedAt = fromNull(rotatedAt)
	s.AuthTime = fromNull(authTime)
	if jkt != nil {
		s.DPoPJKT = *jkt
	}
	if amr != "" {
		s.AMR = strings.Split(amr, ",")
	}
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt = sessiond.Now(s.CreatedAt), sessiond.Now(s.LastUsedAt), sessiond.Now(s.ExpiresAt)
	return &s, nil
}
