package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/postgres"
)

// TestStoreErrorClassifiesByCode causes real PostgreSQL errors on a migrated
// database through a raw connection and checks what the store boundary makes
// of each: SQLSTATE classes 23 and 42 (the statement's fault) are internal,
// outages are unavailable.
func TestStoreErrorClassifiesByCode(t *testing.T) {
	url := pgtest.URL(t)
	db := openURL(t, url, postgres.Options{})
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	if _, err := conn.Exec(t.Context(), `INSERT INTO users (id, email, password_hash, created_at) VALUES ('u1', 'a@example.com', 'x', now())`); err != nil {
		t.Fatal(err)
	}
	exec := func(q string, args ...any) func(t *testing.T) error {
		return func(t *testing.T) error { _, err := conn.Exec(t.Context(), q, args...); return err }
	}
	const insertSession = `INSERT INTO sessions (id, user_id, refresh_hash, created_at, last_used_at, expires_at)
		VALUES ($1, $2, '\x00', $3, now(), $4)`
	now := time.Now()

	tests := []struct {
		name  string
		cause func(t *testing.T) error
		want  string
	}{
		{"primary key violation", exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('u1', 'b@example.com', 'x', now())`), sessiond.CodeInternal},
		{"foreign key violation", exec(insertSession, "s1", "nobody", now, now), sessiond.CodeInternal},
		{"check violation", exec(insertSession, "s1", "u1", now, now.Add(-time.Hour)), sessiond.CodeInternal},
		{"not null violation", exec(`INSERT INTO users (id, email, password_hash, created_at) VALUES ('u3', NULL, 'x', now())`), sessiond.CodeInternal},
		{"syntax error", exec(`SELEC 1`), sessiond.CodeInternal},
		{"undefined table", exec(`SELECT * FROM no_such_table`), sessiond.CodeInternal},
		{"insufficient privilege", func(t *testing.T) error {
			// Roles are per cluster: a name of this test's own, dropped after.
			role := "sessiond_noperm_" + strings.ReplaceAll(sessiond.NewID(), "-", "")
			if _, err := conn.Exec(t.Context(), `CREATE ROLE `+role+` NOLOGIN`); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { conn.Exec(context.Background(), `DROP ROLE `+role) })
			tx, err := conn.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(t.Context(), `SET LOCAL ROLE `+role); err != nil {
				t.Fatal(err)
			}
			_, err = tx.Exec(t.Context(), `SELECT id FROM users`)
			return err
		}, sessiond.CodeInternal},
		// A client can put a NUL byte in a text parameter (a session id in
		// a URL path): class 22 must not become a 500.
		{"data exception", exec(`SELECT id FROM sessions WHERE id = $1`, "a\x00b"), sessiond.CodeUnavailable},
		{"unreachable server", func(t *testing.T) error {
			_, err := pgx.Connect(t.Context(), "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2")
			return err
		}, sessiond.CodeUnavailable},
		{"canceled context", func(t *testing.T) error {
			ctx, cancel := context.WithCancel(t.Context())
			cancel()
			_, err := db.UserByID(ctx, "u1")
			return err
		}, sessiond.CodeUnavailable},
		{"statement timeout", func(t *testing.T) error {
			tx, err := conn.Begin(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			defer tx.Rollback(context.Background())
			if _, err := tx.Exec(t.Context(), `SET LOCAL statement_timeout = '10ms'`); err != nil {
				t.Fatal(err)
			}
			_, err = tx.Exec(t.Context(), `SELECT pg_sleep(1)`)
			return err
		}, sessiond.CodeUnavailable},
		// Conflicts still left after the retries (TestRetry drives those).
		{"serialization failure", func(*testing.T) error { return &pgconn.PgError{Code: "40001"} }, sessiond.CodeUnavailable},
		{"deadlock", func(*testing.T) error { return &pgconn.PgError{Code: "40P01"} }, sessiond.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cause := tt.cause(t)
			if cause == nil {
				t.Fatal("the statement succeeded; want an error to classify")
			}
			if got := sessiond.ErrorCode(postgres.StoreError("op", cause)); got != tt.want {
				t.Errorf("got code %q (cause %v), want %q", got, cause, tt.want)
			}
		})
	}
}
