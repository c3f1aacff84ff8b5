package postgres_test

import (
	"context"
	"crypto/rand"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/auth"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/storetest"
)

// open returns a migrated store on a fresh database.
func open(t testing.TB, opt postgres.Options) *postgres.DB {
	t.Helper()
	db := openURL(t, pgtest.URL(t), opt)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return db
}

// openURL opens a store on url, closed when t ends.
func openURL(t testing.TB, url string, opt postgres.Options) *postgres.DB {
	t.Helper()
	db, err := postgres.Open(context.Background(), url, opt)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestStore(t *testing.T) {
	// Skip once here rather than in each of the suite's subtests.
	if os.Getenv(pgtest.EnvURL) == "" {
		t.Skip(pgtest.EnvURL + " not set; skipping PostgreSQL tests")
	}
	storetest.Run(t, func(t *testing.T) sessiond.Store {
		return open(t, postgres.Options{})
	})
}

func TestMigrateConcurrentAndIdempotent(t *testing.T) {
	url := pgtest.URL(t)
	// Twenty instances starting at once against one fresh database: goose's
	// advisory lock lets one migrate while the others wait and find the
	// schema current. Every third has a pool of one connection, which the
	// migration lock itself occupies.
	dbs := make([]*postgres.DB, 20)
	for i := range dbs {
		dbs[i] = openURL(t, url, postgres.Options{MaxConns: int32(i%3 + 1)})
	}
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Go(func() { errs[i] = db.Migrate(t.Context()) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("instance %d: Migrate: got %v, want nil", i, err)
		}
	}
	if err := dbs[0].Migrate(t.Context()); err != nil {
		t.Errorf("second Migrate: got %v, want nil", err)
	}
	// The schema is there and the pool survived the migration's *sql.DB.
	u := &sessiond.User{ID: sessiond.NewID(), Email: "a@example.com", PasswordHash: "x", CreatedAt: sessiond.SystemClock()}
	if err := dbs[1].CreateUser(t.Context(), u); err != nil {
		t.Fatalf("CreateUser after Migrate: %v", err)
	}
	if _, err := dbs[0].UserByID(t.Context(), u.ID); err != nil {
		t.Errorf("UserByID after Migrate: got %v, want nil", err)
	}
}

func TestOpenMultiHostURL(t *testing.T) {
	url := pgtest.URL(t)
	// Put a host that refuses connections in front of the real one: pgx
	// must fall through to the second, as after a failover.
	scheme, rest, ok := strings.Cut(url, "://")
	if !ok {
		t.Skipf("%s is not a URL; cannot build a multi-host form", pgtest.EnvURL)
	}
	authority, path, _ := strings.Cut(rest, "/")
	userinfo, hosts, hasUser := strings.Cut(authority, "@")
	if !hasUser {
		userinfo, hosts = "", authority
	} else {
		userinfo += "@"
	}
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	multi := scheme + "://" + userinfo + "127.0.0.1:1," + hosts + "/" + path + sep + "target_session_attrs=read-write"

	db := openURL(t, multi, postgres.Options{})
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate via %s: %v", multi, err)
	}
	if err := db.Ping(t.Context()); err != nil {
		t.Errorf("Ping via %s: got %v, want nil", multi, err)
	}
}

// TestPoolSize: the pool is DefaultMaxConns (16) unless the URL's
// pool_max_conns or Options.MaxConns says otherwise. Open does not connect,
// so no server is needed.
func TestPoolSize(t *testing.T) {
	for _, tc := range []struct {
		name, url string
		opt       postgres.Options
		want      int
	}{
		{"default", "postgres://u@127.0.0.1:1/db", postgres.Options{}, 16},
		{"url", "postgres://u@127.0.0.1:1/db?pool_max_conns=3", postgres.Options{}, 3},
		{"keyword/value", "host=127.0.0.1 port=1 user=u dbname=db pool_max_conns=5", postgres.Options{}, 5},
		{"options win", "postgres://u@127.0.0.1:1/db?pool_max_conns=3", postgres.Options{MaxConns: 7}, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			db := openURL(t, tc.url, tc.opt)
			if got := db.PoolStats()[0].Max; got != tc.want {
				t.Errorf("got pool size %d, want %d", got, tc.want)
			}
		})
	}
	if postgres.DefaultMaxConns != 16 {
		t.Errorf("got DefaultMaxConns %d, want the documented 16", postgres.DefaultMaxConns)
	}
}

func TestOpenRejectsBadURLWithoutLeakingPassword(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:hunter2hunter2@127.0.0.1:notaport/db", postgres.Options{})
	if err == nil {
		t.Fatal("got nil error, want a parse error")
	}
	if strings.Contains(err.Error(), "hunter2hunter2") {
		t.Errorf("got error %q, want it without the password", err)
	}
}

func TestDatabaseDownIsUnavailable(t *testing.T) {
	// Nothing listens on port 1; Open must still succeed (the pool dials
	// lazily) and every call must say unavailable, never not found.
	db := openURL(t, "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", postgres.Options{})
	ctx := t.Context()
	calls := []struct {
		name string
		call func() error
	}{
		{"Ping", func() error { return db.Ping(ctx) }},
		{"UserByID", func() error { _, err := db.UserByID(ctx, "u"); return err }},
		{"RefreshSession", func() error {
			a := &sessiond.RefreshAttempt{SessionID: "s", Hash: []byte("h"), NextHash: []byte("n")}
			_, err := db.RefreshCurrent(ctx, a, sessiond.SystemClock(), sessiond.DefaultPolicy())
			return err
		}},
		{"EnsureSecret", func() error { _, err := db.EnsureSecret(ctx, "n", []byte("v")); return err }},
		{"Migrate", func() error { return db.Migrate(ctx) }},
	}
	for _, tc := range calls {
		if got := sessiond.ErrorCode(tc.call()); got != sessiond.CodeUnavailable {
			t.Errorf("%s: got code %q, want %q", tc.name, got, sessiond.CodeUnavailable)
		}
	}
}

func TestQueryTimeoutIsUnavailable(t *testing.T) {
	url := pgtest.URL(t)
	db := openURL(t, url, postgres.Options{QueryTimeout: 300 * time.Millisecond})
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	now := sessiond.SystemClock()
	u := &sessiond.User{ID: sessiond.NewID(), Email: "a@example.com", PasswordHash: "x", CreatedAt: now}
	if err := db.CreateUser(t.Context(), u); err != nil {
		t.Fatal(err)
	}

	// Another connection holds the user's row lock, so a login waits on it
	// until the store's own deadline fires.
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	tx, err := conn.Begin(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(t.Context(), "SELECT id FROM users WHERE id = $1 FOR UPDATE", u.ID); err != nil {
		t.Fatal(err)
	}

	s := &sessiond.Session{ID: sessiond.NewID(), UserID: u.ID, RefreshHash: []byte("h"), CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(time.Hour)}
	start := time.Now()
	_, err = auth.CreateSession(t.Context(), db, s, now, sessiond.DefaultPolicy(), sessiond.MethodPassword, auth.Origin{})
	if got := sessiond.ErrorCode(err); got != sessiond.CodeUnavailable {
		t.Errorf("got code %q (err %v), want %q", got, err, sessiond.CodeUnavailable)
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("CreateSession returned after %v, want about the 300ms QueryTimeout", elapsed)
	}
}

// benchUser creates a user in db.
func benchUser(b *testing.B, db *postgres.DB) *sessiond.User {
	b.Helper()
	u := &sessiond.User{ID: sessiond.NewID(), Email: sessiond.NewID() + "@example.com", PasswordHash: "x", CreatedAt: sessiond.SystemClock()}
	if err := db.CreateUser(context.Background(), u); err != nil {
		b.Fatal(err)
	}
	return u
}

func randomHash() []byte {
	h := make([]byte, 32)
	rand.Read(h)
	return h
}

// BenchmarkRefreshSession measures the fast path: every refresh presents the
// current token and rotates it.
func BenchmarkRefreshSession(b *testing.B) {
	db := open(b, postgres.Options{})
	u := benchUser(b, db)
	p := sessiond.DefaultPolicy()
	now := sessiond.SystemClock()
	s := &sessiond.Session{ID: sessiond.NewID(), UserID: u.ID, RefreshHash: randomHash(), CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(p.SessionTTL)}
	if _, err := auth.CreateSession(context.Background(), db, s, now, p, sessiond.MethodPassword, auth.Origin{}); err != nil {
		b.Fatal(err)
	}
	cur := s.RefreshHash
	var gen uint64
	for b.Loop() {
		now = now.Add(time.Millisecond)
		next := randomHash()
		got, err := auth.RefreshSession(context.Background(), db, &sessiond.RefreshAttempt{SessionID: s.ID, Generation: gen, Hash: cur, NextHash: next}, now, p, auth.Origin{})
		if err != nil {
			b.Fatal(err)
		}
		gen++
		if got.Generation != gen {
			b.Fatalf("got generation %d, want %d", got.Generation, gen)
		}
		cur = next
	}
}

// BenchmarkCreateSession measures a login at the cap of 5: after the first
// few, every call evicts one session in its transaction.
func BenchmarkCreateSession(b *testing.B) {
	db := open(b, postgres.Options{})
	u := benchUser(b, db)
	p := sessiond.DefaultPolicy()
	now := sessiond.SystemClock()
	for b.Loop() {
		now = now.Add(time.Millisecond)
		s := &sessiond.Session{ID: sessiond.NewID(), UserID: u.ID, RefreshHash: randomHash(), CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(p.SessionTTL)}
		if _, err := auth.CreateSession(context.Background(), db, s, now, p, sessiond.MethodPassword, auth.Origin{}); err != nil {
			b.Fatal(err)
		}
	}
}

func TestRetry(t *testing.T) {
	tests := []struct {
		name      string
		failures  []string // SQLSTATE of each failing attempt, in order
		wantCalls int
		wantCode  string // of the error at the store boundary; "" for success
	}{
		{"success", nil, 1, ""},
		{"deadlock then success", []string{"40P01"}, 2, ""},
		{"serialization failures then success", []string{"40001", "40001"}, 3, ""},
		{"gives up after three attempts", []string{"40001", "40P01", "40001", "40001"}, 3, sessiond.CodeUnavailable},
		{"other errors are not retried", []string{"23505"}, 1, sessiond.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := postgres.Retry(t.Context(), func() error {
				calls++
				if calls <= len(tt.failures) {
					return &pgconn.PgError{Code: tt.failures[calls-1]}
				}
				return nil
			})
			if calls != tt.wantCalls {
				t.Errorf("got %d calls, want %d", calls, tt.wantCalls)
			}
			if got := sessiond.ErrorCode(postgres.StoreError("op", err)); got != tt.wantCode {
				t.Errorf("got code %q (err %v), want %q", got, err, tt.wantCode)
			}
		})
	}
}

func TestStoreErrorKeepsDomainErrors(t *testing.T) {
	want := sessiond.Errorf(sessiond.CodeNotFound, "no such user")
	if got := postgres.StoreError("op", want); got != error(want) {
		t.Errorf("got %v, want %v", got, want)
	}
	if got := postgres.StoreError("op", nil); got != nil {
		t.Errorf("got %v, want nil", got)
	}
}
