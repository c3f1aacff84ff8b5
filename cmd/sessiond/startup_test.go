package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// pgExec runs statements on the database at dbURL.
func pgExec(t *testing.T, dbURL string, stmts ...string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func withUser(t *testing.T, dbURL, user string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(user)
	return u.String()
}

func withDBName(t *testing.T, dbURL, name string) string {
	t.Helper()
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + name
	return u.String()
}

// TestStartRefusesMisconfiguredDatabase: a database failure that waiting
// cannot cure (no privilege on the schema, an unknown role, a database that
// does not exist) ends the start at once with one line naming what is
// missing, instead of being retried as "temporarily unavailable".
func TestStartRefusesMisconfiguredDatabase(t *testing.T) {
	if os.Getenv(pgtest.EnvURL) == "" {
		t.Skip(pgtest.EnvURL + " not set; skipping PostgreSQL tests")
	}
	var b [6]byte
	rand.Read(b[:])
	suffix := hex.EncodeToString(b[:])

	fresh := pgtest.URL(t)
	role := "sessiond_noprivs_" + suffix
	pgExec(t, fresh, "CREATE ROLE "+role+" LOGIN", "REVOKE CREATE ON SCHEMA public FROM PUBLIC")
	t.Cleanup(func() { pgExec(t, os.Getenv(pgtest.EnvURL), "DROP ROLE IF EXISTS "+role) })

	tests := []struct {
		name  string
		dbURL string
		want  []string
	}{
		{"no privilege on the schema", withUser(t, fresh, role), []string{"lacks a privilege", "SQLSTATE 42501", "GRANT CREATE ON SCHEMA public"}},
		{"unknown role", withUser(t, fresh, "sessiond_nosuchrole_"+suffix), []string{"authentication failed", "SQLSTATE 28000", "SESSIOND_DATABASE_URL"}},
		{"no such database", withDBName(t, fresh, "sessiond_nosuchdb_"+suffix), []string{"does not exist", "SQLSTATE 3D000", "createdb"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr syncBuffer
			err := run(context.Background(), []string{"serve"}, getenvFrom(map[string]string{
				"SESSIOND_DATABASE_URL":  tt.dbURL,
				"SESSIOND_PUBLIC_URL":    "http://127.0.0.1:8080",
				"SESSIOND_ADDR":          "127.0.0.1:0",
				"SESSIOND_START_TIMEOUT": "1m",
			}), io.Discard, &stderr)
			wantOneLine(t, err, tt.want...)
			if strings.Contains(err.Error(), "temporarily unavailable") {
				t.Errorf("called temporary: %v", err)
			}
			if strings.Contains(stderr.String(), "retrying") {
				t.Errorf("retried a permanent failure:\n%s", stderr.String())
			}
		})
	}
}
