// Package postgres is sessiond's production store: sessiond.Store on
// PostgreSQL through pgx/v5, for any number of sessiond instances sharing one
// database.
//
// Start reading at Open and DB, then tx.go: Tx runs one unit of work in a
// READ COMMITTED transaction, and the type tx holds its named statements,
// each SQL a constant beside the method that runs it. The algorithms that
// compose them (the session cap at login, refresh-token verdicts, logouts,
// and the events they record) are package auth's, written once for both
// stores; the consistency they need comes from the row locks the
// statements take (LockUser and SessionsForEviction are FOR UPDATE).
// session.go holds what runs outside a transaction: the refresh fast path
// (RefreshCurrent, one statement), reads and the expiry sweep. The schema
// is migrations/*.sql, applied by Migrate. Package storetest is the proof
// that this store keeps the contract.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/sessiond/sessiond"
)

// Options tunes a DB.
type Options struct {
	// QueryTimeout is the deadline applied to every store method's context;
	// 0 means 5s.
	QueryTimeout time.Duration
	// MaxConns caps the connection pool; 0 means the URL's
	// pool_max_conns, or DefaultMaxConns if the URL sets none.
	MaxConns int32
}

const defaultQueryTimeout = 5 * time.Second

// DefaultMaxConns is the pool size when neither Options nor the URL's
// pool_max_conns sets one. pgx's own default, the greater of 4 and the CPU
// count, left the database waiting on the pool: at 16 concurrent refreshes
// on two cores, 16 connections served 1.4x the refreshes of 4, and 32 no
// more than 16 (docs/OPERATIONS.md, "Sizing the connection pools"). An idle
// pool holds no connections beyond those it has used.
const DefaultMaxConns = 16

// DB is a sessiond.Store on a PostgreSQL connection pool. It is safe for
// concurrent use.
type DB struct {
	pool    *pgxpool.Pool
	timeout time.Duration
}

var _ sessiond.Store = (*DB)(nil)

// Open returns a DB for the postgres:// URL (or keyword/value string) url.
// Every form pgx accepts works, including several hosts with
// target_session_attrs (postgres://h1:5432,h2:5433/db?target_session_attrs=read-write),
// so that a failover is followed by reconnecting. Open does not connect: the
// pool dials lazily, so a database that is down at start makes store calls
// fail with CodeUnavailable until it returns. It does not migrate either;
// call Migrate.
func Open(ctx context.Context, url string, opt Options) (*DB, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		// pgconn redacts the password from the error text.
		return nil, fmt.Errorf("parse postgres url: %w", err)
	}
	switch {
	case opt.MaxConns > 0:
		cfg.MaxConns = opt.MaxConns
	case !strings.Contains(url, "pool_max_conns"):
		cfg.MaxConns = DefaultMaxConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres pool: %w", err)
	}
	timeout := opt.QueryTimeout
	if timeout <= 0 {
		timeout = defaultQueryTimeout
	}
	return &DB{pool: pool, timeout: timeout}, nil
}

// Close closes the pool, waiting for connections in use to be returned.
func (db *DB) Close() error {
	db.pool.Close()
	return nil
}

// Ping reports whether the database answers. CodeUnavailable if not.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := db.withTimeout(ctx)
	defer cancel()
	if err := db.pool.Ping(ctx); err != nil {
		return sessiond.Unavailable("ping database", err)
	}
	return nil
}

//go:embed migrations/*.sql
var migrations embed.FS

// Migrate brings the schema up to date with the embedded migrations. It is
// idempotent, and safe to run from several instances at once: goose holds a
// PostgreSQL advisory lock (per database) for the duration. It is not bound
// by Options.QueryTimeout, since migrations may legitimately take longer;
// bound it through ctx.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("open migrations: %w", err)
	}
	// The default probe retries the lock every 5s; 1s keeps a second
	// instance starting beside a migrating one from idling. 300 tries keep
	// the default's five-minute patience.
	locker, err := lock.NewPostgresSessionLocker(lock.WithLockTimeout(1, 300))
	if err != nil {
		return fmt.Errorf("create migration lock: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer sqlDB.Close()
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys, goose.WithSessionLocker(locker))
	if err != nil {
		return fmt.Errorf("create migration provider: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return sessiond.Unavailable("migrate database", err)
	}
	return nil
}

// withTimeout applies Options.QueryTimeout to a store method's context.
func (db *DB) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, db.timeout)
}

// maxAttempts bounds how often a transaction that lost a serialization
// failure or a deadlock is run again before giving up as unavailable.
const maxAttempts = 3

// retry runs fn, running it again when PostgreSQL aborted it with a
// serialization failure (40001) or a deadlock (40P01): the transaction had no
// effect and another attempt is expected to succeed. The short random pause
// keeps the conflicting transactions from colliding again in lockstep.
func retry(ctx context.Context, fn func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		err = fn()
		if !retryable(err) || attempt == maxAttempts {
			return err
		}
		pause := time.Duration(attempt)*5*time.Millisecond + rand.N(10*time.Millisecond)
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return err
		}
	}
}

func retryable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == codeSerializationFailure || pgErr.Code == codeDeadlockDetected)
}

// SQLSTATE codes this package acts on (PostgreSQL, Appendix A).
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
)

// inTx runs fn in one READ COMMITTED transaction, committing if fn returns
// nil, and runs the whole transaction again on a serialization failure or
// deadlock (retry). fn must therefore only set its results, not act on them.
// Consistency comes from the row locks each method takes (FOR UPDATE), not
// from the isolation level.
func (db *DB) inTx(ctx context.Context, fn func(tx pgx.Tx) error) error {
	return retry(ctx, func() error {
		tx, err := db.pool.Begin(ctx)
		if err != nil {
			return fmt.Errorf("begin transaction: %w", err)
		}
		// After Commit this is a no-op; on a canceled ctx pgx closes the
		// connection, which rolls back too.
		defer tx.Rollback(ctx)
		if err := fn(tx); err != nil {
			return err
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("commit transaction: %w", err)
		}
		return nil
	})
}

// exec runs one statement outside a transaction, retried like inTx: a
// DELETE of several rows can deadlock with a login deleting some of them.
func (db *DB) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	var tag pgconn.CommandTag
	err := retry(ctx, func() error {
		var err error
		tag, err = db.pool.Exec(ctx, sql, args...)
		return err
	})
	return tag, err
}

// nullTime maps the zero time to NULL, the schema's "not yet" for
// rotated_at and retired_at.
func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

// fromNull maps a scanned nullable timestamp back: NULL is the zero time.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return sessiond.Now(*t)
}
