package sqlite_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/sqlite"
)

// TestStoreErrorClassifiesByCode causes real SQLite errors on a migrated
// database through raw connections and checks what the store boundary makes
// of each: the statement's fault is internal, the database's state is
// unavailable.
func TestStoreErrorClassifiesByCode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessiond.db")
	db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	db.Close()
	raw := func(t *testing.T, pragmas string) *sql.DB {
		t.Helper()
		c, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)"+pragmas)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	conn := raw(t, "")
	if _, err := conn.Exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('u1', 'a@example.com', 'x', 0)`); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) func(t *testing.T) error {
		return func(t *testing.T) error { _, err := conn.Exec(q, args...); return err }
	}
	const insertSession = `INSERT INTO sessions (id, user_id, refresh_hash, created_at, last_used_at, expires_at) VALUES (?, ?, x'00', ?, 0, ?)`

	tests := []struct {
		name  string
		cause func(t *testing.T) error
		want  string
	}{
		{"primary key violation", exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('u1', 'b@example.com', 'x', 0)`), sessiond.CodeInternal},
		{"unique violation", exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('u2', 'a@example.com', 'x', 0)`), sessiond.CodeInternal},
		{"foreign key violation", exec(insertSession, "s1", "nobody", 0, 1), sessiond.CodeInternal},
		{"check violation", exec(insertSession, "s1", "u1", 10, 1), sessiond.CodeInternal},
		{"not null violation", exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('u3', NULL, 'x', 0)`), sessiond.CodeInternal},
		{"wrong type in a STRICT table", exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('u4', 'c@example.com', 'x', 'noon')`), sessiond.CodeInternal},
		{"syntax error", exec(`SELEC 1`), sessiond.CodeInternal},
		{"no such table", exec(`SELECT * FROM no_such_table`), sessiond.CodeInternal},
		{"busy past the busy timeout", func(t *testing.T) error {
			holder := raw(t, "&_txlock=immediate")
			tx, err := holder.Begin() // BEGIN IMMEDIATE: holds the write lock
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback()
			_, err = raw(t, "&_pragma=busy_timeout(20)").Exec(`DELETE FROM users WHERE id = 'nobody'`)
			return err
		}, sessiond.CodeUnavailable},
		{"closed database", func(t *testing.T) error {
			c := raw(t, "")
			c.Close()
			_, err := c.Exec(`SELECT 1`)
			return err
		}, sessiond.CodeUnavailable},
		{"canceled context", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := conn.ExecContext(ctx, `SELECT 1`)
			return err
		}, sessiond.CodeUnavailable},
		{"deadline passed", func(t *testing.T) error {
			ctx, cancel := context.WithDeadline(t.Context(), time.Now().Add(-time.Second))
			defer cancel()
			_, err := conn.ExecContext(ctx, `SELECT 1`)
			return err
		}, sessiond.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cause := tt.cause(t)
			if cause == nil {
				t.Fatal("the statement succeeded; want an error to classify")
			}
			if got := sessiond.ErrorCode(sqlite.StoreError("op", cause)); got != tt.want {
				t.Errorf("got code %q (cause %v), want %q", got, cause, tt.want)
			}
		})
	}

	t.Run("domain errors pass through", func(t *testing.T) {
		want := sessiond.Errorf(sessiond.CodeNotFound, "no such user")
		if got := sqlite.StoreError("op", want); got != error(want) {
			t.Errorf("got %v, want %v", got, want)
		}
		if got := sqlite.StoreError("op", nil); got != nil {
			t.Errorf("got %v, want nil", got)
		}
	})
}
