package postgres

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond"
)

// A key's window has ended at now when window_start + window <= now. Every
// statement below compares window_start with the cutoff now - window,
// computed in Go rather than with interval arithmetic, so that the index on
// window_start serves the sweep and no time comes from the database.

// recordLoginFailure adds one failure to key $1 at $2 (now), given the
// cutoff $3 (now - window): a first failure inserts count 1; a failure in the
// current window increments it; a failure after the window ended opens a new
// window at now with count 1. ON CONFLICT DO UPDATE locks the row, so
// concurrent failures of one key each count exactly once.
const recordLoginFailure = `INSERT INTO login_failures (key, count, window_start) VALUES ($1, 1, $2)
	ON CONFLICT (key) DO UPDATE SET
		count = CASE WHEN login_failures.window_start <= $3 THEN 1 ELSE login_failures.count + 1 END,
		window_start = CASE WHEN login_failures.window_start <= $3 THEN excluded.window_start ELSE login_failures.window_start END`

// RecordLoginFailure adds one failure to each key at now, opening a new
// window where the last one ended. All keys change in one transaction; a key
// listed twice counts once.
func (db *DB) RecordLoginFailure(ctx context.Context, keys []string, now time.Time, window time.Duration) error {
	if len(keys) == 0 {
		return nil
	}
	now = sessiond.Now(now)
	cutoff := now.Add(-window)
	// Sorted, so that two calls locking the same keys lock them in the same
	// order and cannot deadlock each other.
	uniq := distinct(keys)
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	err := db.inTx(ctx, func(tx pgx.Tx) error {
		for _, key := range uniq {
			if _, err := tx.Exec(ctx, recordLoginFailure, key, now, cutoff); err != nil {
				return fmt.Errorf("upsert login failure: %w", err)
			}
		}
		return nil
	})
	return storeError("record login failure", err)
}

// loginFailures selects the counters of the keys $1 still in their window
// (window_start after the cutoff $2).
const loginFailures = `SELECT key, count, window_start FROM login_failures WHERE key = ANY($1) AND window_start > $2`

// LoginFailures returns each key's count in its window as of now, in the
// order of keys; a key with no counter, or whose window ended at or before
// now, has count zero and a zero WindowStart.
func (db *DB) LoginFailures(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]sessiond.LoginFailures, error) {
	out := make([]sessiond.LoginFailures, len(keys))
	for i, key := range keys {
		out[i].Key = key
	}
	if len(keys) == 0 {
		return out, nil
	}
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	rows, err := db.pool.Query(ctx, loginFailures, distinct(keys), sessiond.Now(now).Add(-window))
	if err != nil {
		return nil, storeError("get login failures", err)
	}
	found := make(map[string]sessiond.LoginFailures, len(keys))
	var f sessiond.LoginFailures
	_, err = pgx.ForEachRow(rows, []any{&f.Key, &f.Count, &f.WindowStart}, func() error {
		f.WindowStart = sessiond.Now(f.WindowStart)
		found[f.Key] = f
		return nil
	})
	if err != nil {
		return nil, storeError("get login failures", err)
	}
	for i, key := range keys {
		if f, ok := found[key]; ok {
			out[i] = f
		}
	}
	return out, nil
}

const clearLoginFailures = `DELETE FROM login_failures WHERE key = $1`

// ClearLoginFailures forgets the failures of key.
func (db *DB) ClearLoginFailures(ctx context.Context, key string) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	_, err := db.exec(ctx, clearLoginFailures, key)
	return storeError("clear login failures", err)
}

// deleteStaleLoginFailures deletes one batch of counters whose window ended
// (window_start at or before the cutoff $1). SKIP LOCKED lets sweepers on
// several instances share the work, and leaves alone a counter that a login
// failure is updating right now (its window may be reopening).
const deleteStaleLoginFailures = `DELETE FROM login_failures WHERE key IN (
		SELECT key FROM login_failures
		WHERE window_start <= $1
		LIMIT $2
		FOR UPDATE SKIP LOCKED)`

// DeleteStaleLoginFailures deletes at most limit counters whose window ended
// at or before now and returns how many; a limit below 1 deletes nothing.
func (db *DB) DeleteStaleLoginFailures(ctx context.Context, now time.Time, window time.Duration, limit int) (int, error) {
	if limit < 1 {
		return 0, nil
	}
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	tag, err := db.exec(ctx, deleteStaleLoginFailures, sessiond.Now(now).Add(-window), limit)
	if err != nil {
		return 0, storeError("delete stale login failures", err)
	}
	return int(tag.RowsAffected()), nil
}

// distinct returns keys sorted and without repeats: a key named twice is one
// counter.
func distinct(keys []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(keys)))
}
