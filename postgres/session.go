package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
)

// sessionColumns is every column of sessions, in the order scanSession reads.
const sessionColumns = `id, user_id, refresh_hash, prev_hash, generation, rotated_at, created_at, last_used_at, expires_at, user_agent, ip`

const (
	// lockUser serializes the logins of one user, so that counting their
	// sessions and inserting one is atomic across instances (invariant 1).
	lockUser = `SELECT id FROM users WHERE id = $1 FOR UPDATE`

	// userSessionsForEviction locks the user's sessions too: a refresh
	// that commits first is then seen with its new last_used_at (and another
	// session is evicted), and one that comes later waits and finds its
	// session gone. Without the lock, READ COMMITTED would let a login evict
	// a session from its stale snapshot just after that session's refresh
	// succeeded: refreshed and evicted both.
	userSessionsForEviction = `SELECT id, created_at, last_used_at, expires_at FROM sessions WHERE user_id = $1 FOR UPDATE`

	deleteSessionsByID = `DELETE FROM sessions WHERE id = ANY($1)`

	insertSession = `INSERT INTO sessions (` + sessionColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`
)

// CreateSession stores s for s.UserID in one transaction with the user row
// locked: it deletes the user's expired sessions and evicts live ones
// (sessiond.Evictions) so that with s at most p.MaxSessions are live, and
// returns the ids of the evicted live sessions. CodeNotFound if the user is
// gone.
func (db *DB) CreateSession(ctx context.Context, s *sessiond.Session, now time.Time, p sessiond.Policy) ([]string, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	var evicted []string
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		evicted, err = createSession(ctx, tx, s, now, p)
		return err
	})
	if err != nil {
		return nil, storeError("create session", err)
	}
	return evicted, nil
}

func createSession(ctx context.Context, tx pgx.Tx, s *sessiond.Session, now time.Time, p sessiond.Policy) ([]string, error) {
	var id string
	if err := tx.QueryRow(ctx, lockUser, s.UserID).Scan(&id); err != nil {
		if errors.Is(err, pgx.ErrNoRows) {
			return nil, sessiond.Errorf(sessiond.CodeNotFound, "no such user")
		}
		return nil, fmt.Errorf("lock user: %w", err)
	}
	existing, err := sessionsForEviction(ctx, tx, s.UserID)
	if err != nil {
		return nil, err
	}
	expired, evicted := sessiond.Evictions(existing, now, p)
	if gone := append(expired, evicted...); len(gone) > 0 {
		if _, err := tx.Exec(ctx, deleteSessionsByID, gone); err != nil {
			return nil, fmt.Errorf("delete evicted sessions: %w", err)
		}
	}
	_, err = tx.Exec(ctx, insertSession,
		s.ID, s.UserID, s.RefreshHash, s.PrevHash, int64(s.Generation), nullTime(s.RotatedAt),
		s.CreatedAt, s.LastUsedAt, s.ExpiresAt, s.UserAgent, s.IP)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == codeForeignKeyViolation {
		// Unreachable while the user row is locked; kept so that the
		// answer stays right if the lock is ever dropped.
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "no such user")
	}
	if err != nil {
		return nil, fmt.Errorf("insert session: %w", err)
	}
	return evicted, nil
}

func sessionsForEviction(ctx context.Context, tx pgx.Tx, userID string) ([]sessiond.Session, error) {
	rows, err := tx.Query(ctx, userSessionsForEviction, userID)
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

// The fast path of RefreshSession: one statement that succeeds exactly when
// the presented token is the current one of a live session, which is nearly
// every refresh. $1 session id, $2 generation, $3 hash, $4 now, $5 idle
// cutoff, $6 next hash.
const (
	refreshRotate = `UPDATE sessions
		SET refresh_hash = $6, prev_hash = $3, generation = generation + 1, rotated_at = $4, last_used_at = $4
		WHERE id = $1 AND generation = $2 AND refresh_hash = $3 AND expires_at > $4 AND last_used_at > $5
		RETURNING ` + sessionColumns

	refreshStamp = `UPDATE sessions
		SET last_used_at = $4
		WHERE id = $1 AND generation = $2 AND refresh_hash = $3 AND expires_at > $4 AND last_used_at > $5
		RETURNING ` + sessionColumns
)

// The slow path, for everything else. The session is read without a lock
// and classified with nothing held; the statements that apply the verdict
// then act only on the row the verdict was made on: the same generation and
// current hash and, for a deletion, the same last use (a concurrent refresh
// may have revived an idle session). When another request changed the row
// in between they match nothing, and the attempt is decided again.
// $1 session id, $2 generation, $3 current hash as read.
const (
	sessionByID = `SELECT ` + sessionColumns + ` FROM sessions WHERE id = $1`

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
)

// decideAttempts bounds how often one refresh or logout is decided again
// because its session changed between the read and the write. Only requests
// for that same session can change it, so a legitimate race settles in two.
const decideAttempts = 3

// errKeptChanging is the cause when decideAttempts ran out.
var errKeptChanging = errors.New("the session changed on every attempt")

// RefreshSession applies a refresh attempt (sessiond.ClassifyRefresh) and
// returns the session as it now is. A current token of a live session is
// handled by one UPDATE ... RETURNING, one round trip without an explicit
// transaction. Any other token (a twin request inside the grace window, a
// reused, expired or invalid one) is classified on the row read without a
// lock, holding neither a row lock nor a transaction while the ancestor
// walk derives up to p.MaxAncestorSteps HMACs; one statement then applies
// the verdict if the row is unchanged. Codes: CodeInvalidRefreshToken,
// CodeSessionExpired and CodeRefreshTokenReused (both after deleting the
// session).
func (db *DB) RefreshSession(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	s, err := db.refreshFast(ctx, a, now, p)
	if err != nil {
		return nil, storeError("refresh session", err)
	}
	if s != nil {
		return s, nil
	}
	for range decideAttempts {
		s, done, err := db.refreshSlow(ctx, a, now, p)
		if err != nil {
			return nil, storeError("refresh session", err)
		}
		if done {
			return s, nil
		}
	}
	return nil, sessiond.Unavailable("refresh session", errKeptChanging)
}

// refreshFast returns the refreshed session, or nil if the token is not the
// current one of a live session.
func (db *DB) refreshFast(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	// Generations are stored as BIGINT; a claimed one beyond that cannot be
	// current, and the slow path refuses it.
	if a.Generation > math.MaxInt64 {
		return nil, nil
	}
	query, args := refreshStamp, []any{a.SessionID, int64(a.Generation), a.Hash, now, p.IdleCutoff(now)}
	if p.Rotate {
		query, args = refreshRotate, append(args, a.NextHash)
	}
	s, err := db.queryRow(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("refresh current session: %w", err)
	}
	return s, nil
}

// refreshSlow reads the session, classifies a with nothing held, and
// applies the verdict if the row is still as read. done is false when it
// was not: decide again. A refused token is an error (a *sessiond.Error).
func (db *DB) refreshSlow(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (out *sessiond.Session, done bool, err error) {
	s, err := db.queryRow(ctx, sessionByID, a.SessionID)
	if err != nil {
		return nil, false, fmt.Errorf("select session: %w", err)
	}
	switch v := sessiond.ClassifyRefresh(s, a, now, p); v {
	case sessiond.RefreshCurrent:
		// The fast path missed a current token: it raced with another
		// change of the row. Do what it would have done.
		if p.Rotate {
			out, err = db.queryRow(ctx, rotateIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, a.NextHash, now)
		} else {
			out, err = db.queryRow(ctx, stampIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, now)
		}
		if err != nil {
			return nil, false, fmt.Errorf("refresh session: %w", err)
		}
		return out, out != nil, nil
	case sessiond.RefreshGrace:
		// A twin of the request that rotated: it gets the same, current
		// generation, and the session is not rotated again.
		out, err = db.queryRow(ctx, stampIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, now)
		if err != nil {
			return nil, false, fmt.Errorf("stamp session: %w", err)
		}
		return out, out != nil, nil
	case sessiond.RefreshReused, sessiond.RefreshExpired:
		deleted, err := db.deleteIfUnchanged(ctx, s)
		if err != nil || !deleted {
			return nil, false, err
		}
		if v == sessiond.RefreshReused {
			return nil, true, sessiond.ErrRefreshReused(s, a)
		}
		return nil, true, sessiond.Errorf(sessiond.CodeSessionExpired, "the session has expired")
	default:
		return nil, true, sessiond.Errorf(sessiond.CodeInvalidRefreshToken, "the refresh token is not valid")
	}
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

// deleteIfUnchanged deletes s if the row is still as it was read, and
// reports whether it did.
func (db *DB) deleteIfUnchanged(ctx context.Context, s *sessiond.Session) (bool, error) {
	tag, err := db.exec(ctx, deleteSessionIfUnchanged, s.ID, int64(s.Generation), s.RefreshHash, s.LastUsedAt)
	if err != nil {
		return false, fmt.Errorf("delete session: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// EndSessionByRefresh deletes the session a refresh token belongs to, as long
// as the token is of that session's chain (current, superseded or an
// ancestor within p.MaxAncestorSteps, expired or not).
// CodeInvalidRefreshToken otherwise, deleting nothing, so that a token that
// merely names a session id cannot end it. As in RefreshSession, the walk
// runs with nothing held.
func (db *DB) EndSessionByRefresh(ctx context.Context, a *sessiond.RefreshAttempt, p sessiond.Policy) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	for range decideAttempts {
		s, err := db.queryRow(ctx, sessionByID, a.SessionID)
		if err != nil {
			return storeError("end session", fmt.Errorf("select session: %w", err))
		}
		// Whatever the instant, ClassifyRefresh answers RefreshInvalid
		// exactly when a is not of s's chain (within p's walk); every other
		// verdict only says what to do with a token of it, and a logout
		// ends the session anyway.
		if s == nil || sessiond.ClassifyRefresh(s, a, s.CreatedAt, p) == sessiond.RefreshInvalid {
			return sessiond.Errorf(sessiond.CodeInvalidRefreshToken, "the refresh token is not valid")
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
		return nil, sessiond.Errorf(sessiond.CodeNotFound, "no such session")
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

const (
	deleteUserSession  = `DELETE FROM sessions WHERE id = $1 AND user_id = $2`
	deleteUserSessions = `DELETE FROM sessions WHERE user_id = $1`
)

// DeleteSession deletes the user's session id. CodeNotFound if the user has
// no such session.
func (db *DB) DeleteSession(ctx context.Context, userID, id string) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	tag, err := db.exec(ctx, deleteUserSession, id, userID)
	if err != nil {
		return storeError("delete session", err)
	}
	if tag.RowsAffected() == 0 {
		return sessiond.Errorf(sessiond.CodeNotFound, "no such session")
	}
	return nil
}

// DeleteUserSessions deletes every session of the user and returns how many.
func (db *DB) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	tag, err := db.exec(ctx, deleteUserSessions, userID)
	if err != nil {
		return 0, storeError("delete user sessions", err)
	}
	return int(tag.RowsAffected()), nil
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
	)
	err := row.Scan(&s.ID, &s.UserID, &s.RefreshHash, &s.PrevHash, &generation, &rotatedAt,
		&s.CreatedAt, &s.LastUsedAt, &s.ExpiresAt, &s.UserAgent, &s.IP)
	if err != nil {
		return nil, err
	}
	s.Generation = uint64(generation)
	s.RotatedAt = fromNull(rotatedAt)
	s.CreatedAt, s.LastUsedAt, s.ExpiresAt = sessiond.Now(s.CreatedAt), sessiond.Now(s.LastUsedAt), sessiond.Now(s.ExpiresAt)
	return &s, nil
}
