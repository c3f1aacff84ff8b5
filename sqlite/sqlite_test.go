package sqlite_test

import (
	"crypto/sha256"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/auth"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/storetest"
)

// open returns a new, migrated store on a fresh file, closed at cleanup.
func open(tb testing.TB) *sqlite.DB {
	tb.Helper()
	db, err := sqlite.Open(tb.Context(), filepath.Join(tb.TempDir(), "sessiond.db"), sqlite.Options{})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(func() { db.Close() })
	if err := db.Migrate(tb.Context()); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return db
}

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) sessiond.Store { return open(t) })
}

func TestMigrateIsIdempotent(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessiond.db")
	for i := range 2 {
		db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		if err := db.Migrate(t.Context()); err != nil {
			t.Errorf("Migrate %d: got %v, want nil", i, err)
		}
		if err := db.Migrate(t.Context()); err != nil {
			t.Errorf("Migrate %d again: got %v, want nil", i, err)
		}
		db.Close()
	}
}

// TestConcurrentMigrationsOfAFreshFile: many openers of one fresh file
// (each its own connections, as separate processes have) migrating at
// once all succeed, and leave one schema.
func TestConcurrentMigrationsOfAFreshFile(t *testing.T) {
	const rounds, openers = 4, 24
	for round := range rounds {
		path := filepath.Join(t.TempDir(), "sessiond.db")
		errs := make([]error, openers)
		var wg sync.WaitGroup
		for i := range openers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
				if err != nil {
					errs[i] = err
					return
				}
				defer db.Close()
				errs[i] = db.Migrate(t.Context())
			}()
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("round %d, opener %d: got %v, want nil", round, i, err)
			}
		}
	}
}

func TestOpenRejectsMemory(t *testing.T) {
	if _, err := sqlite.Open(t.Context(), ":memory:", sqlite.Options{}); err == nil {
		t.Errorf("got nil error, want one: writer and readers cannot share an in-memory database")
	}
}

// fixture is a user with a stored session and the means to refresh it.
type fixture struct {
	user    *sessiond.User
	policy  sessiond.Policy
	now     time.Time
	session *sessiond.Session
	secret  []byte
}

func sum(b []byte) []byte { h := sha256.Sum256(b); return h[:] }

// next stands in for package token's derivation; the store only compares hashes.
func next(secret []byte) []byte { return sum(append([]byte("next:"), secret...)) }

func attempt(id string, gen uint64, secret []byte) *sessiond.RefreshAttempt {
	return &sessiond.RefreshAttempt{SessionID: id, Generation: gen, Hash: sum(secret), NextHash: sum(next(secret))}
}

func newUser(tb testing.TB, db *sqlite.DB, now time.Time) *sessiond.User {
	tb.Helper()
	u := &sessiond.User{ID: sessiond.NewID(), Email: sessiond.NewID() + "@example.com", PasswordHash: "x", CreatedAt: now}
	if err := db.CreateUser(tb.Context(), u); err != nil {
		tb.Fatalf("CreateUser: %v", err)
	}
	return u
}

func newSession(u *sessiond.User, now time.Time, p sessiond.Policy) (*sessiond.Session, []byte) {
	secret := []byte(sessiond.NewID())
	return &sessiond.Session{
		ID: sessiond.NewID(), UserID: u.ID, RefreshHash: sum(secret),
		CreatedAt: now, LastUsedAt: now, ExpiresAt: now.Add(p.SessionTTL),
	}, secret
}

// TestConcurrentWritesAndReadsNeverBusy hammers one store with logins,
// refreshes and listings from many goroutines: the single writer connection
// must serialize the writes so that no call ever fails, in particular not
// with SQLITE_BUSY ("database is locked").
func TestConcurrentWritesAndReadsNeverBusy(t *testing.T) {
	db := open(t)
	p := sessiond.DefaultPolicy()
	now := sessiond.Now(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	const workers, ops = 8, 50
	var wg sync.WaitGroup
	errs := make(chan error, workers*ops)
	for w := range workers {
		u := newUser(t, db, now)
		wg.Go(func() {
			ctx := t.Context()
			var sessions []*sessiond.Session
			secrets := map[string][]byte{}
			for i := range ops {
				at := now.Add(time.Duration(w*ops+i) * time.Millisecond)
				switch i % 3 {
				case 0:
					s, secret := newSession(u, at, p)
					if _, err := auth.CreateSession(ctx, db, s, at, p, sessiond.MethodPassword, auth.Origin{}); err != nil {
						errs <- fmt.Errorf("worker %d CreateSession: %w", w, err)
						continue
					}
					sessions = append(sessions, s)
					secrets[s.ID] = secret
				case 1:
					if len(sessions) == 0 {
						continue
					}
					// The newest session is never evicted by this worker's
					// own logins (cap 5, LRU), so its refresh must succeed.
					s := sessions[len(sessions)-1]
					got, err := auth.RefreshSession(ctx, db, attempt(s.ID, s.Generation, secrets[s.ID]), at, p, auth.Origin{})
					if err != nil {
						errs <- fmt.Errorf("worker %d RefreshSession: %w", w, err)
						continue
					}
					*s = *got
					secrets[s.ID] = next(secrets[s.ID])
				case 2:
					if _, err := db.ListSessions(ctx, u.ID, at, p); err != nil {
						errs <- fmt.Errorf("worker %d ListSessions: %w", w, err)
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// BenchmarkRefreshSession measures the fast path: a rotating refresh of the
// current token, one UPDATE ... RETURNING.
func BenchmarkRefreshSession(b *testing.B) {
	db := open(b)
	p := sessiond.DefaultPolicy()
	now := sessiond.Now(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	u := newUser(b, db, now)
	s, secret := newSession(u, now, p)
	if _, err := auth.CreateSession(b.Context(), db, s, now, p, sessiond.MethodPassword, auth.Origin{}); err != nil {
		b.Fatalf("CreateSession: %v", err)
	}
	gen := uint64(0)
	b.ResetTimer()
	for i := range b.N {
		at := now.Add(time.Duration(i+1) * time.Microsecond)
		if _, err := auth.RefreshSession(b.Context(), db, attempt(s.ID, gen, secret), at, p, auth.Origin{}); err != nil {
			b.Fatalf("RefreshSession: %v", err)
		}
		gen++
		secret = next(secret)
	}
}

// BenchmarkCreateSession measures a login transaction at the cap of 5, so
// every iteration also evicts one session.
func BenchmarkCreateSession(b *testing.B) {
	db := open(b)
	p := sessiond.DefaultPolicy()
	now := sessiond.Now(time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC))
	u := newUser(b, db, now)
	b.ResetTimer()
	for i := range b.N {
		at := now.Add(time.Duration(i) * time.Microsecond)
		s, _ := newSession(u, at, p)
		if _, err := auth.CreateSession(b.Context(), db, s, at, p, sessiond.MethodPassword, auth.Origin{}); err != nil {
			b.Fatalf("CreateSession: %v", err)
		}
	}
}
