// Package sessiond is the vocabulary of the session service: users, sessions,
// signing keys, the store interfaces that persist them, the error codes of the
// HTTP contract, and the pure rules (is a session live, which session a login
// evicts, what a presented refresh token is to its session).
//
// It imports only the standard library. Start reading at session.go for the
// session cap and refresh.go for refresh-token rotation; tx.go is the unit of
// work (Store.Tx and the named statements of Tx) through which the use cases
// in package auth apply these rules and record events (event.go) in one
// transaction; the SQL lives in packages sqlite and postgres.
package sessiond

import (
	"context"
	"time"
)

// Clock returns the current time. The service takes every expiry decision from
// one Clock and passes the instant into store calls, so that tests can move
// time and no decision mixes the application's clock with the database's.
type Clock func() time.Time

// SystemClock is the wall clock, truncated to the microsecond both stores keep.
func SystemClock() time.Time { return Now(time.Now()) }

// Now truncates t to the microsecond precision that both stores keep, so a
// time read back from a store compares equal to the one written.
func Now(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

// Store is everything sessiond persists, implemented by packages sqlite and
// postgres and proven by package storetest.
type Store interface {
	UserStore
	SessionStore
	KeyStore
	AttemptStore
	DPoPStore
	TxStore
	// Ping reports whether the database answers; CodeUnavailable if not.
	Ping(ctx context.Context) error
	// Close releases the database.
	Close() error
}

// PoolStats describes one database connection pool, for metrics.
type PoolStats struct {
	Name     string // "primary"; SQLite: "writer", "reader"
	Max      int
	Open     int
	InUse    int
	Idle     int
	Waits    int64         // acquisitions that had to wait, in total
	WaitTime time.Duration // time spent waiting, in total
}
