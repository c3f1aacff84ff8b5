package postgres

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
)

// reserveAttempt adds one attempt to counter $1 at $2 (now) with base
// window $3 (microseconds), limit $4 and at most $5 doublings, and returns
// the counter. A first attempt opens a window of the base length; an attempt
// in the current window increments it; an attempt after the window ended
// opens a new one, twice as long as the last if the last was used up (count
// reached the limit), else of the base length again. ON CONFLICT DO UPDATE
// locks the row until the transaction ends, so concurrent reservations of
// one counter queue and each sees the count the one before left.
const reserveAttempt = `INSERT INTO login_attempts (key, count, level, window_end, forget_at)
	VALUES ($1, 1, 0, $2::timestamptz + $3::bigint * interval '1 microsecond', $2::timestamptz + 2 * $3::bigint * interval '1 microsecond')
	ON CONFLICT (key) DO UPDATE SET
		count = CASE WHEN login_attempts.window_end <= $2 THEN 1 ELSE login_attempts.count + 1 END,
		level = CASE WHEN login_attempts.window_end <= $2 THEN ` + nextLevel + ` ELSE login_attempts.level END,
		window_end = CASE WHEN login_attempts.window_end <= $2
			THEN $2::timestamptz + ($3::bigint << ` + nextLevel + `) * interval '1 microsecond'
			ELSE login_attempts.window_end END,
		forget_at = CASE WHEN login_attempts.window_end <= $2
			THEN $2::timestamptz + 2 * ($3::bigint << ` + nextLevel + `) * interval '1 microsecond'
			ELSE login_attempts.forget_at END
	RETURNING count, level, window_end`

// nextLevel is the level of the window that follows the stored one.
const nextLevel = `(CASE WHEN login_attempts.count >= $4::integer THEN LEAST(login_attempts.level + 1, $5::integer) ELSE 0 END)`

// errRefused rolls a refused reservation back; it never leaves this file.
var errRefused = errors.New("attempt refused")

// ReserveAttempts adds one attempt to each counter in one transaction and
// rolls it back if any counter went over its limit.
func (db *DB) ReserveAttempts(ctx context.Context, limits []sessiond.AttemptLimit, now time.Time) ([]sessiond.AttemptCount, bool, error) {
	if len(limits) == 0 {
		return nil, true, nil
	}
	// In key order, so that two reservations locking the same counters lock
	// them in the same order and cannot deadlock each other.
	order := make([]int, len(limits))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(limits[a].Key, limits[b].Key) })
	for i := 1; i < len(order); i++ {
		if limits[order[i]].Key == limits[order[i-1]].Key {
			return nil, false, fmt.Errorf("reserve attempts: counter %s named twice", limits[order[i]].Key)
		}
	}
	now = sessiond.Now(now)
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	counts := make([]sessiond.AttemptCount, len(limits))
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		for _, i := range order {
			l, c := limits[i], &counts[i]
			c.Key = l.Key
			err := tx.QueryRow(ctx, reserveAttempt, l.Key, now, l.Window.Microseconds(), l.Max, l.MaxLevel).
				Scan(&c.Count, &c.Level, &c.WindowEnd)
			if err != nil {
				return fmt.Errorf("upsert attempt: %w", err)
			}
			c.WindowEnd = sessiond.Now(c.WindowEnd)
		}
		if refused, _ := sessiond.AttemptsRefused(limits, counts, now); refused {
			return errRefused // inTx rolls back every increment
		}
		return nil
	})
	if errors.Is(err, errRefused) {
		return counts, false, nil
	}
	if err != nil {
		return nil, false, storeError("reserve attempts", err)
	}
	return counts, true, nil
}

// releaseAttempt gives back one attempt of counter $1 if its window still
// ends at $2, the end the reservation saw.
const releaseAttempt = `UPDATE login_attempts SET count = count - 1 WHERE key = $1 AND window_end = $2 AND count > 0`

// ReleaseAttempts gives back one attempt of each counter still in the
// window its count was reserved in.
func (db *DB) ReleaseAttempts(ctx context.Context, counts []sessiond.AttemptCount) error {
	if len(counts) == 0 {
		return nil
	}
	sorted := slices.SortedFunc(slices.Values(counts), func(a, b sessiond.AttemptCount) int { return cmp.Compare(a.Key, b.Key) })
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		for _, c := range sorted {
			if _, err := tx.Exec(ctx, releaseAttempt, c.Key, c.WindowEnd); err != nil {
				return fmt.Errorf("update attempt: %w", err)
			}
		}
		return nil
	})
	return storeError("release attempts", err)
}

const clearAttempts = `DELETE FROM login_attempts WHERE key = $1`

// ClearAttempts forgets the counter key.
func (db *DB) ClearAttempts(ctx context.Context, key string) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	_, err := db.exec(ctx, clearAttempts, key)
	return storeError("clear attempts", err)
}

// deleteStaleAttempts deletes one batch of counters forgotten by $1 (now).
// SKIP LOCKED lets sweepers on several instances share the work, and leaves
// alone a counter that a reservation is updating right now (its window may
// be reopening).
const deleteStaleAttempts = `DELETE FROM login_attempts WHERE key IN (
		SELECT key FROM login_attempts
		WHERE forget_at <= $1
		LIMIT $2
		FOR UPDATE SKIP LOCKED)`

// DeleteStaleAttempts deletes at most limit counters forgotten by now and
// returns how many; a limit below 1 deletes nothing.
func (db *DB) DeleteStaleAttempts(ctx context.Context, now time.Time, limit int) (int, error) {
	return db.deleteExpired(ctx, deleteStaleAttempts, "delete stale attempts", now, limit)
}
