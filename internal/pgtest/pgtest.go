// Package pgtest gives each test its own empty PostgreSQL database.
//
// Tests that need PostgreSQL call URL; it skips the test unless
// SESSIOND_TEST_POSTGRES_URL names a server the tests may create and drop
// databases on, so `go test ./...` stays green on a machine without one.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL is the environment variable naming the PostgreSQL server used by
// tests, e.g. postgres://postgres@127.0.0.1:5432/test?sslmode=disable. Its
// database is only used to connect; every test gets a fresh one beside it.
const EnvURL = "SESSIOND_TEST_POSTGRES_URL"

// Main runs a package's tests, saying first, in one line, when
// SESSIOND_TEST_POSTGRES_URL is unset and so the package's PostgreSQL tests
// will skip. Call it from the TestMain of every package with PostgreSQL
// tests. (go test over several packages shows a passing package's output
// only with -v; test.sh, which runs the suite, says it too.)
func Main(m *testing.M) {
	if os.Getenv(EnvURL) == "" {
		fmt.Println("pgtest: " + EnvURL + " not set: this package's PostgreSQL tests skip")
	}
	os.Exit(m.Run())
}

// URL creates a fresh, uniquely named database on the server named by
// SESSIOND_TEST_POSTGRES_URL, drops it again (even with connections still
// open) when t and its subtests finish, and returns its URL: the same host,
// user and options with the database name replaced. It skips t when the
// variable is unset.
func URL(t testing.TB) string {
	t.Helper()
	base := os.Getenv(EnvURL)
	if base == "" {
		t.Skip(EnvURL + " not set; skipping PostgreSQL tests")
	}
	var b [8]byte
	rand.Read(b[:])
	name := "sessiond_test_" + hex.EncodeToString(b[:])

	// The name is lowercase hex, so quoting is for form only.
	exec(t, base, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize())
	t.Cleanup(func() {
		exec(t, base, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)")
	})
	return withDatabase(base, name)
}

// exec runs one statement on its own connection to base: CREATE and DROP
// DATABASE cannot run inside a transaction or on a pool shared with the test.
func exec(t testing.TB, base, sql string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		t.Fatalf("connect to %s: %v", EnvURL, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// withDatabase returns connString with its database replaced by name. It
// edits the URL as text rather than through net/url, which rejects the
// multi-host form (postgres://h1:5432,h2:5433/db) that pgx accepts; a
// keyword/value string gets a dbname setting appended, and the last one wins.
func withDatabase(connString, name string) string {
	scheme, rest, isURL := strings.Cut(connString, "://")
	if !isURL {
		return connString + " dbname=" + name
	}
	query := ""
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		rest, query = rest[:i], rest[i:]
	}
	// The authority may hold '@' and ':' but never '/', so the first '/'
	// starts the path (the database name).
	authority, _, _ := strings.Cut(rest, "/")
	return scheme + "://" + authority + "/" + name + query
}
