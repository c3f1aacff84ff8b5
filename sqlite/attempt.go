package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// reserveAttempt adds one attempt to counter ?1 at ?2 (now) with base
// window ?3 (microseconds), limit ?4 and at most ?5 doublings, and returns
// the counter. A first attempt opens a window of the base length; an attempt
// in the current window increments it; an attempt after the window ended
// opens a new one, twice as long as the last if the last was used up (count
// reached the limit), else of the base length again. One statement, so it is
// atomic per counter.
const reserveAttempt = `INSERT INTO login_attempts (key, count, level, window_end, forget_at)
VALUES (?1, 1, 0, ?2 + ?3, ?2 + 2 * ?3)
ON CONFLICT (key) DO UPDATE SET
	count = CASE WHEN login_attempts.window_end <= ?2 THEN 1 ELSE login_attempts.count + 1 END,
	level = CASE WHEN login_attempts.window_end <= ?2 THEN ` + nextLevel + ` ELSE login_attempts.level END,
	window_end = CASE WHEN login_attempts.window_end <= ?2 THEN ?2 + (?3 << ` + nextLevel + `) ELSE login_attempts.window_end END,
	forget_at = CASE WHEN login_attempts.window_end <= ?2 THEN ?2 + 2 * (?3 << ` + nextLevel + `) ELSE login_attempts.forget_at END
RETURNING count, level, window_end`

// nextLevel is the level of the window that follows the stored one.
const nextLevel = `(CASE WHEN login_attempts.count >= ?4 THEN min(login_attempts.level + 1, ?5) ELSE 0 END)`

// ReserveAttempts adds one attempt to each counter in one transaction and
// rolls it back if any counter went over its limit.
func (db *DB) ReserveAttempts(ctx context.Context, limits []sessiond.AttemptLimit, now time.Time) ([]sessiond.AttemptCount, bool, error) {
	if len(limits) == 0 {
		return nil, true, nil
	}
	if err := distinctKeys(limits); err != nil {
		return nil, false, err
	}
	now = sessiond.Now(now)
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	// The writer's transactions are BEGIN IMMEDIATE: reservations queue
	// behind other writes, one at a time, rather than fail on a lock upgrade.
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return nil, false, storeError("reserve attempts", err)
	}
	defer tx.Rollback()
	counts := make([]sessiond.AttemptCount, len(limits))
	for i, l := range limits {
		var end int64
		c := &counts[i]
		c.Key = l.Key
		err := tx.QueryRowContext(ctx, reserveAttempt, l.Key, micros(now), l.Window.Microseconds(), l.Max, l.MaxLevel).
			Scan(&c.Count, &c.Level, &end)
		if err != nil {
			return nil, false, storeError("reserve attempts", fmt.Errorf("upsert attempt: %w", err))
		}
		c.WindowEnd = fromMicros(end)
	}
	if refused, _ := sessiond.AttemptsRefused(limits, counts, now); refused {
		return counts, false, nil // the deferred rollback undoes every increment
	}
	if err := tx.Commit(); err != nil {
		return nil, false, storeError("reserve attempts", fmt.Errorf("commit: %w", err))
	}
	return counts, true, nil
}

// distinctKeys refuses a reservation naming a counter twice: the second
// increment would count one attempt twice.
func distinctKeys(limits []sessiond.AttemptLimit) error {
	keys := make([]string, len(limits))
	for i, l := range limits {
		keys[i] = l.Key
	}
	if len(distinct(keys)) != len(keys) {
		return fmt.Errorf("reserve attempts: a counter named twice in %s", strings.Join(keys, ", "))
	}
	return nil
}

// releaseAttempt gives back one attempt of counter ?1 if its window still
// ends at ?2, the end the reservation saw.
const releaseAttempt = `UPDATE login_attempts SET count = count - 1 WHERE key = ? AND window_end = ? AND count > 0`

// ReleaseAttempts gives back one attempt of each counter still in the
// window its count was reserved in.
func (db *DB) ReleaseAttempts(ctx context.Context, counts []sessiond.AttemptCount) error {
	if len(counts) == 0 {
		return nil
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return storeError("release attempts", err)
	}
	defer tx.Rollback()
	for _, c := range counts {
		if _, err := tx.ExecContext(ctx, releaseAttempt, c.Key, micros(c.WindowEnd)); err != nil {
			return storeError("release attempts", fmt.Errorf("update attempt: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return storeError("release attempts", fmt.Errorf("commit: %w", err))
	}
	return nil
}

const clearAttempts = `DELETE FROM login_attempts WHERE key = ?`

// ClearAttempts forgets the counter key.
func (db *DB) ClearAttempts(ctx context.Context, key string) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	if _, err := db.w.ExecContext(ctx, clearAttempts, key); err != nil {
		return storeError("clear attempts", err)
	}
	return nil
}

// deleteStaleAttempts deletes one batch of counters forgotten by ? (now).
// The writer runs one statement at a time, so concurrent sweeps cannot
// delete a row twice.
const deleteStaleAttempts = `DELETE FROM login_attempts WHERE key IN (
	SELECT key FROM login_attempts WHERE forget_at <= ? LIMIT ?)`

// DeleteStaleAttempts deletes at most limit counters forgotten by now and
// returns how many; a limit below 1 deletes nothing.
func (db *DB) DeleteStaleAttempts(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit < 1 { // SQLite reads a negative LIMIT as "no limit"
		return 0, nil
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, deleteStaleAttempts, micros(sessiond.Now(now)), limit)
	if err != nil {
		return 0, storeError("delete stale attempts", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeError("delete stale attempts", err)
	}
	return int(n), nil
}

// distinct returns keys sorted and without repeats.
func distinct(keys []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(keys)))
}
