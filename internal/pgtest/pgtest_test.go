package pgtest_test

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
)

func TestURLCreatesFreshDatabase(t *testing.T) {
	var url1, url2 string
	t.Run("create", func(t *testing.T) {
		url1 = pgtest.URL(t)
		url2 = pgtest.URL(t)
		if url1 == url2 {
			t.Fatalf("got the same URL twice: %s", url1)
		}
		for _, u := range []string{url1, url2} {
			conn, err := pgx.Connect(context.Background(), u)
			if err != nil {
				t.Fatalf("connect to %s: %v", u, err)
			}
			var db string
			var tables int
			if err := conn.QueryRow(context.Background(), "SELECT current_database(), (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')").Scan(&db, &tables); err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(db, "sessiond_test_") || !strings.Contains(u, "/"+db) {
				t.Errorf("got database %q for URL %s, want a fresh sessiond_test_ database", db, u)
			}
			if tables != 0 {
				t.Errorf("got %d tables, want 0", tables)
			}
			// Left open on purpose: cleanup must drop the database anyway.
			_ = conn
		}
	})
	if url1 == "" {
		t.Skip(pgtest.EnvURL + " not set; skipping PostgreSQL tests")
	}
	// The subtest has finished, so its cleanups dropped both databases.
	base := os.Getenv(pgtest.EnvURL)
	conn, err := pgx.Connect(context.Background(), base)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, u := range []string{url1, url2} {
		name := u[strings.LastIndex(u, "/")+1:]
		name, _, _ = strings.Cut(name, "?")
		var n int
		if err := conn.QueryRow(context.Background(), "SELECT count(*) FROM pg_database WHERE datname = $1", name).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("got %d databases named %s after cleanup, want 0", n, name)
		}
	}
}
