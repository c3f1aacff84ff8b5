// Package sqlite is sessiond's embedded store: sessiond.Store on
// modernc.org/sqlite (pure Go, no cgo) in WAL mode, with its schema in
// embedded goose migrations (migrations/*.sql).
//
// Start reading at Open for how connections are set up, then tx.go: Tx
// runs one unit of work on the writer, and the type tx holds its named
// statements, each SQL a constant beside the method that runs it. The
// algorithms that compose them (the session cap at login, refresh-token
// verdicts, logouts, and the events they record) are package auth's,
// written once for both stores. session.go holds what runs outside a
// transaction: the refresh fast path (RefreshCurrent, one prepared
// statement), reads and the expiry sweep. The behaviour is specified by the
// interfaces in the root package and proven by package storetest, which
// this package's tests run.
//
// SQLite allows one writer at a time. Rather than let concurrent writers
// collide and fail with SQLITE_BUSY, DB keeps two pools on the same file: a
// writer with a single connection, through which every write and every
// read-modify-write transaction goes (so writes queue inside the process, in
// database/sql, bounded by the caller's context), and a read-only pool for
// pure reads, which WAL lets run alongside the writer.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/pressly/goose/v3"
	"github.com/sessiond/sessiond"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune a DB.
type Options struct {
	// QueryTimeout is the deadline applied to every store method's context;
	// 0 means 5s.
	QueryTimeout time.Duration
}

// DefaultQueryTimeout is the QueryTimeout used when Options leaves it 0.
const DefaultQueryTimeout = 5 * time.Second

// readers is the size of the read pool. Reads are short index lookups; a few
// connections let them overlap with each other and with the writer.
const readers = 4

// DB is a sessiond.Store on one SQLite database file.
type DB struct {
	w       *sql.DB // the one writer connection: every write goes here
	r       *sql.DB // read-only pool for pure reads
	timeout time.Duration
	path    string // of the database file, for the migration lock
	// wstmts and rstmts are the prepared hot statements of each pool.
	wstmts, rstmts stmts
	// txStmts are the statements of Tx, once prepared (prepareTx).
	txStmts atomic.Pointer[map[string]*sql.Stmt]
}

var _ sessiond.Store = (*DB)(nil)

// Open opens (creating if needed) the database file at path. It does not
// migrate; call Migrate. path is a file path; ":memory:" is not supported,
// since the writer and the readers must share one database.
func Open(ctx context.Context, path string, opt Options) (*DB, error) {
	if path == "" || path == ":memory:" {
		return nil, fmt.Errorf("open sqlite: need a file path, got %q", path)
	}
	if opt.QueryTimeout == 0 {
		opt.QueryTimeout = DefaultQueryTimeout
	}
	common := url.Values{}
	// busy_timeout still matters: another process (sessiond migrate, the
	// sqlite3 shell) may hold the write lock for a moment.
	common.Add("_pragma", "busy_timeout(10000)")
	common.Add("_pragma", "foreign_keys(1)")
	common.Add("_pragma", "synchronous(NORMAL)")

	wq := cloneValues(common)
	wq.Add("_pragma", "journal_mode(WAL)")
	// BEGIN IMMEDIATE: a transaction takes the write lock when it starts, not
	// at its first write, so a read-modify-write can never fail half-way on
	// a lock upgrade, and it sees no one else's write between read and write.
	wq.Set("_txlock", "immediate")
	w, err := sql.Open("sqlite", dsn(path, wq))
	if err != nil {
		return nil, fmt.Errorf("open sqlite writer: %w", err)
	}
	w.SetMaxOpenConns(1)
	w.SetMaxIdleConns(1)
	w.SetConnMaxIdleTime(0)
	w.SetConnMaxLifetime(0)
	// Connect the writer first: it switches the file to WAL, which the
	// readers rely on to read while a write is in progress. Setting the
	// journal mode needs the lock that another process's migration holds
	// (see migrationLock), and SQLite reports that busy at once rather than
	// through busy_timeout: try again for a while.
	for deadline := time.Now().Add(time.Minute); ; {
		err := w.PingContext(ctx)
		if err == nil {
			break
		}
		if !isBusy(err) || ctx.Err() != nil || time.Now().After(deadline) {
			w.Close()
			return nil, fmt.Errorf("open sqlite writer: %w", err)
		}
		select {
		case <-ctx.Done():
		case <-time.After(50 * time.Millisecond):
		}
	}

	rq := cloneValues(common)
	// The read pool refuses writes, so a write routed here by mistake fails
	// loudly instead of racing the writer for the lock.
	rq.Add("_pragma", "query_only(1)")
	r, err := sql.Open("sqlite", dsn(path, rq))
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	r.SetMaxOpenConns(readers)
	r.SetMaxIdleConns(readers)
	if err := r.PingContext(ctx); err != nil {
		w.Close()
		r.Close()
		return nil, fmt.Errorf("open sqlite readers: %w", err)
	}
	return &DB{w: w, r: r, timeout: opt.QueryTimeout, path: path}, nil
}

// dsn builds a modernc.org/sqlite file: URI. The path is escaped because
// SQLite parses it as a URI, where '?', '#' and '%' are special.
func dsn(path string, q url.Values) string {
	esc := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23").Replace(path)
	return "file:" + esc + "?" + q.Encode()
}

func cloneValues(v url.Values) url.Values {
	c := url.Values{}
	for k, vs := range v {
		c[k] = append([]string(nil), vs...)
	}
	return c
}

// Migrate applies the embedded migrations that the database lacks. It is
// idempotent. It runs on the writer, so it queues behind (and ahead of) the
// store's own writes instead of failing on the lock.
//
// It is also safe to run from several processes at once (two instances
// starting, or `sessiond migrate` beside one): goose reads the schema
// version before it begins each migration's transaction, so two processes
// could both find a fresh file at version 0 and the second fail on
// "table users already exists". goose has no locker for SQLite, and the
// lock cannot be taken in the database itself, since every migration needs
// its write lock; so Migrate holds an exclusive lock on a file of its own
// beside the database (PATH-migrate.lock) for the whole run. SQLite takes
// that lock with the operating system, which drops it if the process dies.
func (db *DB) Migrate(ctx context.Context) error {
	unlock, err := lockForMigration(ctx, db.path+"-migrate.lock")
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	defer unlock()
	fsys, err := fs.Sub(migrations, "migrations")
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	p, err := goose.NewProvider(goose.DialectSQLite3, db.w, fsys)
	if err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	if _, err := p.Up(ctx); err != nil {
		return fmt.Errorf("migrate sqlite: %w", err)
	}
	return nil
}

// lockForMigration holds an exclusive lock on the SQLite file at path until
// the returned function is called, waiting for another holder as long as
// ctx allows.
func lockForMigration(ctx context.Context, path string) (unlock func(), err error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(1000)")
	q.Add("_pragma", "journal_mode(DELETE)") // a plain file lock, not WAL's shared memory
	ldb, err := sql.Open("sqlite", dsn(path, q))
	if err != nil {
		return nil, fmt.Errorf("open migration lock: %w", err)
	}
	// Connecting sets the journal mode, which needs the lock too: while
	// another process migrates, it is as busy as BEGIN below.
	var conn *sql.Conn
	for {
		conn, err = ldb.Conn(ctx)
		if err == nil {
			break
		}
		if !isBusy(err) || ctx.Err() != nil {
			ldb.Close()
			return nil, fmt.Errorf("open migration lock: %w", err)
		}
	}
	for {
		_, err = conn.ExecContext(ctx, "BEGIN EXCLUSIVE")
		if err == nil {
			break
		}
		if !isBusy(err) || ctx.Err() != nil {
			conn.Close()
			ldb.Close()
			return nil, fmt.Errorf("take migration lock: %w", err)
		}
		// busy_timeout waited a second; another process is migrating.
	}
	return func() {
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		conn.Close()
		ldb.Close()
	}, nil
}

// isBusy reports SQLITE_BUSY (any extended code): another connection holds
// the lock that busy_timeout waited for.
func isBusy(err error) bool {
	var e *sqlite.Error
	return errors.As(err, &e) && e.Code()&0xff == sqlite3.SQLITE_BUSY
}

// Ping reports whether the database answers. It asks the read pool, so a
// long write does not make the instance look unready.
func (db *DB) Ping(ctx context.Context) error {
	ctx, cancel := db.ctx(ctx)
	defer cancel()
	if err := db.r.PingContext(ctx); err != nil {
		return sessiond.Unavailable("ping sqlite", err)
	}
	return nil
}

// Close closes both pools.
func (db *DB) Close() error {
	db.wstmts.close()
	db.rstmts.close()
	return errors.Join(db.r.Close(), db.w.Close())
}

// ctx applies the query timeout.
func (db *DB) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, db.timeout)
}

// dbtx is what the lowercase helpers need, so that one helper runs on a pool
// or inside a transaction (sqlc's DBTX).
type dbtx interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// isConstraint reports whether err is an SQLite constraint violation with
// one of the given extended result codes.
func isConstraint(err error, codes ...int) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	for _, c := range codes {
		if e.Code() == c {
			return true
		}
	}
	return false
}

// Times are stored as INTEGER Unix microseconds; NULL is the zero time.

func micros(t time.Time) int64 { return t.UnixMicro() }

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromMicros(us int64) time.Time { return sessiond.Now(time.UnixMicro(us)) }

func fromNullMicros(us sql.NullInt64) time.Time {
	if !us.Valid {
		return time.Time{}
	}
	return fromMicros(us.Int64)
}

// nullBytes stores an empty slice as NULL.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
