package sessiond

import (
	"context"
	"time"
)

// Login throttling counts failed logins per key (an email, a client IP) in
// the database, so the limit holds across instances sharing it.
//
// A key's window opens at its first failure and lasts Window; failures in
// it count toward the limit, and a failure after it opens a new window.

// LoginFailures is a key's count in its current window.
type LoginFailures struct {
	Key         string
	Count       int
	WindowStart time.Time // zero when Count is zero
}

// Throttled reports whether a key with these failures is refused at now,
// and for how long.
func (f LoginFailures) Throttled(max int, window time.Duration, now time.Time) (bool, time.Duration) {
	if f.Count < max {
		return false, 0
	}
	wait := f.WindowStart.Add(window).Sub(now)
	return wait > 0, wait
}

// AttemptStore persists the failed-login counters. Keys are opaque strings
// (package auth hashes them, so the table holds no emails or IPs).
type AttemptStore interface {
	// LoginFailures returns each key's count in its window as of now (a
	// window that ended at or before now counts zero), in the order of keys.
	LoginFailures(ctx context.Context, keys []string, now time.Time, window time.Duration) ([]LoginFailures, error)
	// RecordLoginFailure adds one failure to each key at now, opening a new
	// window where the last one ended; atomic per key under concurrency.
	RecordLoginFailure(ctx context.Context, keys []string, now time.Time, window time.Duration) error
	// ClearLoginFailures forgets the failures of key.
	ClearLoginFailures(ctx context.Context, key string) error
	// DeleteStaleLoginFailures deletes at most limit counters whose window
	// ended before now, and returns how many.
	DeleteStaleLoginFailures(ctx context.Context, now time.Time, window time.Duration, limit int) (int, error)
}
