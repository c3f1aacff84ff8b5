package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// TestLeastPrivilegeRoles runs sessiond on PostgreSQL through the two roles
// docs/OPERATIONS.md tells operators to create, on a database where PUBLIC
// has been stripped of every privilege: an owner role that owns sessiond's
// schema and nothing else (enough for `sessiond migrate` and for a serve
// that migrates at start), and an app role with only CONNECT, USAGE on the
// schema and DML on its tables (enough for a serve on a migrated schema).
func TestLeastPrivilegeRoles(t *testing.T) {
	base := os.Getenv(pgtest.EnvURL)
	if base == "" {
		t.Skip(pgtest.EnvURL + " not set; skipping PostgreSQL tests")
	}
	var b [6]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])
	owner, appRole := "sessiond_owner_"+suffix, "sessiond_app_"+suffix
	// Roles are global to the server: dropped after the database is (the
	// cleanups run in reverse), since a role that owns objects cannot go.
	t.Cleanup(func() {
		for _, r := range []string{appRole, owner} {
			superExec(t, base, "DROP ROLE IF EXISTS "+r)
		}
	})
	dbURL := pgtest.URL(t)
	dbName := dbURL[strings.LastIndex(dbURL, "/")+1:]
	if i := strings.IndexByte(dbName, '?'); i >= 0 {
		dbName = dbName[:i]
	}

	// The set-up of docs/OPERATIONS.md, "Database and roles", verbatim but
	// for the names.
	setup := []string{
		"CREATE ROLE " + owner + " LOGIN",
		"CREATE ROLE " + appRole + " LOGIN",
		"REVOKE ALL ON DATABASE " + dbName + " FROM PUBLIC",
		"REVOKE ALL ON SCHEMA public FROM PUBLIC",
		"GRANT CONNECT ON DATABASE " + dbName + " TO " + owner + ", " + appRole,
		"CREATE SCHEMA sessiond AUTHORIZATION " + owner,
		"ALTER ROLE " + owner + " IN DATABASE " + dbName + " SET search_path = sessiond",
		"ALTER ROLE " + appRole + " IN DATABASE " + dbName + " SET search_path = sessiond",
		"GRANT USAGE ON SCHEMA sessiond TO " + appRole,
		"ALTER DEFAULT PRIVILEGES FOR ROLE " + owner + " IN SCHEMA sessiond GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO " + appRole,
	}
	for _, sql := range setup {
		superExec(t, dbURL, sql)
	}
	ownerURL, appURL := withUser(t, dbURL, owner), withUser(t, dbURL, appRole)

	// Neither role can do more than intended: the app role cannot create
	// anything, the owner role cannot touch the public schema.
	wantDenied(t, appURL, "CREATE TABLE sessiond.intruder (x int)")
	wantDenied(t, ownerURL, "CREATE TABLE public.intruder (x int)")

	t.Run("role=owner/migrate", func(t *testing.T) {
		var out, errOut strings.Builder
		env := map[string]string{"SESSIOND_DATABASE_URL": ownerURL}
		if err := run(context.Background(), []string{"migrate"}, func(k string) string { return env[k] }, &out, &errOut); err != nil {
			t.Fatalf("migrate as the owner role: %v (%s)", err, errOut.String())
		}
	})
	// serve through each role: start (which migrates, or finds nothing to
	// migrate), create the first key and secret, sign up, log in, refresh.
	for _, role := range []struct{ name, url string }{{"app", appURL}, {"owner", ownerURL}} {
		t.Run("role="+role.name+"/serve", func(t *testing.T) {
			e := newTestEnv(t, role.url, nil)
			email := role.name + "@example.com"
			e.signup(email)
			tok := e.login(email)
			r := e.refresh(tok.RT).want(t, 200, "")
			e.call("GET", "/v1/me", nil, r.str("access_token")).want(t, 200, "")
			e.call("POST", "/v1/logout", map[string]string{"refresh_token": r.str("refresh_token")}, "").want(t, 204, "")
		})
	}
	// The tables were created by the owner role, in its schema, not public.
	var n int
	queryRow(t, dbURL, `SELECT count(*) FROM pg_tables WHERE schemaname = 'sessiond' AND tableowner = '`+owner+`'`, &n)
	if n < 5 {
		t.Fatalf("got %d tables owned by %s in schema sessiond, want the whole schema (≥ 5)", n, owner)
	}
	queryRow(t, dbURL, `SELECT count(*) FROM pg_tables WHERE schemaname = 'public'`, &n)
	if n != 0 {
		t.Fatalf("got %d tables in schema public, want 0", n)
	}
}

// withUser replaces the user of a postgres:// URL (the test server trusts
// local connections, so no password is needed).
func connect(t *testing.T, url string) (*pgx.Conn, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn, ctx
}

func superExec(t *testing.T, url, sql string) {
	t.Helper()
	conn, ctx := connect(t, url)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func queryRow(t *testing.T, url, sql string, dst ...any) {
	t.Helper()
	conn, ctx := connect(t, url)
	if err := conn.QueryRow(ctx, sql).Scan(dst...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// wantDenied fails t unless sql is refused for lack of privilege (42501).
func wantDenied(t *testing.T, url, sql string) {
	t.Helper()
	conn, ctx := connect(t, url)
	_, err := conn.Exec(ctx, sql)
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
		t.Fatalf("%s: got %v, want permission denied (42501)", sql, err)
	}
}
