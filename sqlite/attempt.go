package sqlite

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// A key's window has ended at now when window_start + window <= now. Every
// statement below compares window_start with the cutoff now - window,
// computed in Go, so that the arithmetic stays out of SQL and the index on
// window_start serves the sweep.

// recordLoginFailure adds one failure to key ?1 at ?2 (now), given the cutoff
// ?3 (now - window): a first failure inserts count 1; a failure in the
// current window increments it; a failure after the window ended opens a new
// window at now with count 1. One statement, so it is atomic per key.
const recordLoginFailure = `INSERT INTO login_failures (key, count, window_start) VALUES (?1, 1, ?2)
ON CONFLICT (key) DO UPDATE SET
	count = CASE WHEN login_failures.window_start <= ?3 THEN 1 ELSE login_failures.count + 1 END,
	window_start = CASE WHEN login_failures.window_start <= ?3 THEN excluded.window_start ELSE login_failures.window_start END`

// RecordLoginFailure adds one failure to each key at now, opening a new
// window where the last one ended. All keys change in one transaction; a key
// listed twice counts once.
func (db *DB) RecordLoginFailure(ctx context.Context, keys []string, now time.Time, window time.Duration) error {
	if len(keys) == 0 {
		return nil
	}
	now = sessiond.Now(now)
	cutoff := now.Add(-window)
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	// The writer's transactions are BEGIN IMMEDIATE: the upserts queue
	// behind other writes rather than fail on a lock upgrade.
	tx, err := db.w.BeginTx(ctx, nil)
	if err != nil {
		return storeError("record login failure", err)
	}
	defer tx.Rollback()
	for _, key := range distinct(keys) {
		if _, err := tx.ExecContext(ctx, recordLoginFailure, key, micros(now), micros(cutoff)); err != nil {
			return storeError("record login failure", fmt.Errorf("upsert login failure: %w", err))
		}
	}
	if err := tx.Commit(); err != nil {
		return storeError("record login failure", fmt.Errorf("commit: %w", err))
	}
	return nil
}

// loginFailuresPrefix selects the counters in their window (window_start
// after the cutoff ?) of the keys whose placeholders follow: LoginFailures
// appends one "?" per key and the closing parenthesis.
const loginFailuresPrefix = `SELECT key, count, window_start FROM login_failures WHERE window_start > ? AND key IN (`

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
	uniq := distinct(keys)
	query := loginFailuresPrefix + strings.Repeat("?, ", len(uniq)-1) + "?)"
	args := make([]any, 0, 1+len(uniq))
	args = append(args, micros(sessiond.Now(now).Add(-window)))
	for _, key := range uniq {
		args = append(args, key)
	}

	ctx, cancel := db.ctx(ctx)
	defer cancel()
	rows, err := db.r.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, storeError("get login failures", err)
	}
	defer rows.Close()
	found := make(map[string]sessiond.LoginFailures, len(uniq))
	for rows.Next() {
		var (
			f     sessiond.LoginFailures
			start int64
		)
		if err := rows.Scan(&f.Key, &f.Count, &start); err != nil {
			return nil, storeError("get login failures", err)
		}
		f.WindowStart = fromMicros(start)
		found[f.Key] = f
	}
	if err := rows.Err(); err != nil {
		return nil, storeError("get login failures", err)
	}
	for i, key := range keys {
		if f, ok := found[key]; ok {
			out[i] = f
		}
	}
	return out, nil
}

const clearLoginFailures = `DELETE FROM login_failures WHERE key = ?`

// ClearLoginFailures forgets the failures of key.
func (db *DB) ClearLoginFailures(ctx context.Context, key string) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	if _, err := db.w.ExecContext(ctx, clearLoginFailures, key); err != nil {
		return storeError("clear login failures", err)
	}
	return nil
}

// deleteStaleLoginFailures deletes one batch of counters whose window ended
// (window_start at or before the cutoff ?). The writer runs one statement at
// a time, so concurrent sweeps cannot delete a row twice.
const deleteStaleLoginFailures = `DELETE FROM login_failures WHERE key IN (
	SELECT key FROM login_failures WHERE window_start <= ? LIMIT ?)`

// DeleteStaleLoginFailures deletes at most limit counters whose window ended
// at or before now and returns how many; a limit below 1 deletes nothing.
func (db *DB) DeleteStaleLoginFailures(ctx context.Context, now time.Time, window time.Duration, limit int) (int, error) {
	if limit < 1 { // SQLite reads a negative LIMIT as "no limit"
		return 0, nil
	}
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	res, err := db.w.ExecContext(ctx, deleteStaleLoginFailures, micros(sessiond.Now(now).Add(-window)), limit)
	if err != nil {
		return 0, storeError("delete stale login failures", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, storeError("delete stale login failures", err)
	}
	return int(n), nil
}

// distinct returns keys sorted and without repeats: a key named twice is one
// counter, and one IN placeholder.
func distinct(keys []string) []string {
	return slices.Compact(slices.Sorted(slices.Values(keys)))
}
