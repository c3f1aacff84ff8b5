package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer that a server goroutine writes while the
// test reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// served is a `sessiond serve` running through run.
type served struct {
	url    string
	stderr *syncBuffer
	stop   func() error
}

// startServe runs `sessiond serve` with env (plus a free port) until the
// test ends or stop is called, and waits for it to listen.
func startServe(t *testing.T, env map[string]string) *served {
	t.Helper()
	env["SESSIOND_ADDR"] = "127.0.0.1:0"
	ctx, cancel := context.WithCancel(context.Background())
	stdoutR, stdoutW := io.Pipe()
	stderr := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"serve"}, getenvFrom(env), stdoutW, stderr); stdoutW.Close() }()
	line, err := bufio.NewReader(stdoutR).ReadString('\n')
	if err != nil {
		cancel()
		t.Fatalf("serve did not start: %v; it said %s (error %v)", err, stderr.String(), <-done)
	}
	go io.Copy(io.Discard, stdoutR)
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() { cancel(); runErr = <-done })
		return runErr
	}
	t.Cleanup(func() { stop() })
	return &served{url: strings.TrimSpace(strings.TrimPrefix(line, "sessiond listening on ")), stderr: stderr, stop: stop}
}

func wantOneLine(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want one saying %q", parts)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("error spans lines: %q", err)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error %q does not say %q", err, p)
		}
	}
}

// TestCommandsOnExistingDataRefuseToCreateADatabase: keys run against a
// SQLite path that does not exist (here a relative one, as when run from
// the wrong directory) fail with one line naming the absolute path and how
// to point at the right database, and leave no file behind.
func TestCommandsOnExistingDataRefuseToCreateADatabase(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	for _, args := range [][]string{{"keys", "rotate"}, {"keys", "list"},
		{"admin-keys", "create", "ops"}, {"admin-keys", "list"}, {"admin-keys", "revoke", "ops"}} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), args, getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": "sqlite:sessiond.db"}), &out, io.Discard)
			wantOneLine(t, err, filepath.Join(dir, "sessiond.db"), "SESSIOND_DATABASE_URL", "-database-url")
			if _, err := os.Stat(filepath.Join(dir, "sessiond.db")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("a database file was created: %v", err)
			}
			if strings.Contains(out.String(), "new current signing key") {
				t.Errorf("claimed a rotation: %s", out.String())
			}
		})
	}
}

// TestMigrateCreatesAndSaysWhere: migrate is the command that may create a
// database, and names it by its absolute path.
func TestMigrateCreatesAndSaysWhere(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	env := getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": "sqlite:new.db"})
	var out bytes.Buffer
	if err := run(context.Background(), []string{"migrate"}, env, &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	abs := filepath.Join(dir, "new.db")
	if !strings.Contains(out.String(), "created database "+abs) {
		t.Fatalf("migrate said %q, want it to name the created %s", out.String(), abs)
	}
	out.Reset()
	if err := run(context.Background(), []string{"keys", "list"}, env, &out, io.Discard); err != nil {
		t.Fatalf("keys list on the migrated database: %v", err)
	}
}

// TestServeLogsAbsoluteDatabasePathAndLocksIt: serve names the absolute
// SQLite path; a second serve on the same file refuses with one line, while
// migrate and keys still work beside the first.
func TestServeLogsAbsoluteDatabasePathAndLocksIt(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	env := map[string]string{"SESSIOND_DATABASE_URL": "sqlite:s.db"}
	first := startServe(t, env)
	abs := filepath.Join(dir, "s.db")
	if !strings.Contains(first.stderr.String(), `"database":"`+abs+`"`) {
		t.Errorf("serve log does not name %s:\n%s", abs, first.stderr.String())
	}

	err := run(context.Background(), []string{"serve"}, getenvFrom(map[string]string{
		"SESSIOND_DATABASE_URL": "sqlite:" + abs, "SESSIOND_ADDR": "127.0.0.1:0"}), io.Discard, io.Discard)
	wantOneLine(t, err, "another sessiond serves "+abs, "PostgreSQL")

	for _, args := range [][]string{{"migrate"}, {"keys", "rotate"}, {"keys", "list"}} {
		if err := run(context.Background(), args, getenvFrom(env), io.Discard, io.Discard); err != nil {
			t.Errorf("%v beside a running serve: %v", args, err)
		}
	}
	if err := first.stop(); err != nil {
		t.Fatal(err)
	}
	// The lock goes with the server.
	second := startServe(t, map[string]string{"SESSIOND_DATABASE_URL": "sqlite:" + abs})
	if err := second.stop(); err != nil {
		t.Fatal(err)
	}
}

// TestPublicURLAndIssuer: the issuer comes from SESSIOND_PUBLIC_URL, whose
// default is http:// + the listen address; settings that would give
// instances different or unusable issuers are refused naming it.
func TestPublicURLAndIssuer(t *testing.T) {
	pg := "postgres://u@db.example.com/sessiond"
	tests := []struct {
		name       string
		env        map[string]string
		wantIssuer string // "" when an error naming SESSIOND_PUBLIC_URL is wanted
	}{
		{"default", nil, "http://127.0.0.1:8080"},
		{"public URL", map[string]string{"SESSIOND_PUBLIC_URL": "https://auth.example.com/"}, "https://auth.example.com"},
		{"public URL with a path", map[string]string{"SESSIOND_PUBLIC_URL": "https://example.com/auth"}, "https://example.com/auth"},
		{"issuer overrides", map[string]string{"SESSIOND_PUBLIC_URL": "https://auth.example.com", "SESSIOND_ISSUER": "urn:sessiond"}, "urn:sessiond"},
		{"postgres with public URL", map[string]string{"SESSIOND_DATABASE_URL": pg, "SESSIOND_PUBLIC_URL": "https://auth.example.com"}, "https://auth.example.com"},
		{"wildcard with public URL", map[string]string{"SESSIOND_ADDR": "0.0.0.0:8080", "SESSIOND_PUBLIC_URL": "http://localhost:8080"}, "http://localhost:8080"},
		{"postgres without public URL", map[string]string{"SESSIOND_DATABASE_URL": pg}, ""},
		{"postgres with only an issuer", map[string]string{"SESSIOND_DATABASE_URL": pg, "SESSIOND_ISSUER": "https://a.example.com"}, ""},
		{"port only", map[string]string{"SESSIOND_ADDR": ":8080"}, ""},
		{"IPv4 wildcard", map[string]string{"SESSIOND_ADDR": "0.0.0.0:8080"}, ""},
		{"IPv6 wildcard", map[string]string{"SESSIOND_ADDR": "[::]:8080"}, ""},
		{"wildcard public URL", map[string]string{"SESSIOND_PUBLIC_URL": "http://0.0.0.0:8080"}, ""},
		{"relative", map[string]string{"SESSIOND_PUBLIC_URL": "auth.example.com"}, ""},
		{"other scheme", map[string]string{"SESSIOND_PUBLIC_URL": "ftp://auth.example.com"}, ""},
		{"query", map[string]string{"SESSIOND_PUBLIC_URL": "https://auth.example.com/?x=1"}, ""},
		{"fragment", map[string]string{"SESSIOND_PUBLIC_URL": "https://auth.example.com/#x"}, ""},
		{"user", map[string]string{"SESSIOND_PUBLIC_URL": "https://me@auth.example.com"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parseConfig(newFlagSet("serve", io.Discard), nil, getenvFrom(tt.env))
			if tt.wantIssuer == "" {
				wantOneLine(t, err, "SESSIOND_PUBLIC_URL")
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Issuer != tt.wantIssuer {
				t.Errorf("issuer: got %q, want %q", cfg.Issuer, tt.wantIssuer)
			}
		})
	}
	// The operator commands do not serve, and need no public URL.
	if _, err := parseConfig(newFlagSet("keys list", io.Discard), nil, getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": pg})); err != nil {
		t.Errorf("keys list on PostgreSQL without a public URL: %v", err)
	}
}

// TestBadValuesSayWhatIsExpected: a value that does not parse, in a
// variable or a flag, gets one line saying what was wanted, and the
// program prints nothing else (no usage).
func TestBadValuesSayWhatIsExpected(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"duration word", map[string]string{"SESSIOND_ACCESS_TTL": "banana"}, nil, `SESSIOND_ACCESS_TTL="banana": want a Go duration such as 15m or 900s`},
		{"duration without unit", map[string]string{"SESSIOND_ACCESS_TTL": "900"}, nil, `SESSIOND_ACCESS_TTL="900": want a Go duration such as 15m or 900s`},
		{"boolean", map[string]string{"SESSIOND_ROTATE_REFRESH": "yes please"}, nil, `SESSIOND_ROTATE_REFRESH="yes please": want true or false`},
		{"integer", map[string]string{"SESSIOND_MAX_SESSIONS": "five"}, nil, `SESSIOND_MAX_SESSIONS="five": want a whole number`},
		{"duration flag", nil, []string{"-access-ttl", "900"}, `-access-ttl="900": want a Go duration such as 15m or 900s`},
		{"boolean flag", nil, []string{"-rotate-refresh=maybe"}, `-rotate-refresh="maybe": want true or false`},
		{"integer flag", nil, []string{"-max-sessions", "x"}, `-max-sessions="x": want a whole number`},
		{"migrate flag", nil, []string{"migrate", "-db-timeout", "soon"}, `-db-timeout="soon": want a Go duration such as 15m or 900s`},
		{"bench flag", nil, []string{"bench", "-c", "many"}, `-c="many": want a whole number`},
		{"unknown flag", nil, []string{"-max-session", "3"}, `-max-session`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, getenvFrom(tt.env), &stdout, &stderr)
			wantOneLine(t, err, tt.want)
			if stdout.Len()+stderr.Len() > 0 {
				t.Errorf("printed besides the error:\n%s%s", stdout.String(), stderr.String())
			}
		})
	}
}

// TestHelp: every command's -h (and help COMMAND) prints that command's own
// help to stdout and nothing to stderr, and counts as success.
func TestHelp(t *testing.T) {
	tests := []struct {
		args      []string
		want      []string
		wantNot   []string
		isFlagSet bool // -h makes run return flag.ErrHelp
	}{
		{[]string{"-h"}, []string{"sessiond keys rotate", "sessiond version"}, nil, true},
		{[]string{"help"}, []string{"sessiond keys rotate", "sessiond version"}, nil, false},
		{[]string{"serve", "-h"}, []string{"Usage: sessiond [serve]", "-max-sessions", "[SESSIOND_PUBLIC_URL]"}, nil, true},
		{[]string{"migrate", "-h"}, []string{"Usage: sessiond migrate", "-database-url"}, []string{"-max-sessions"}, true},
		{[]string{"keys", "-h"}, []string{"Usage: sessiond keys rotate|list", "rotate", "list"}, nil, true},
		{[]string{"keys", "rotate", "-h"}, []string{"Usage: sessiond keys rotate", "-key-reload"}, []string{"-max-sessions", "Usage: sessiond keys list"}, true},
		{[]string{"keys", "list", "-h"}, []string{"Usage: sessiond keys list", "-database-url"}, []string{"-max-sessions", "sessiond bench"}, true},
		{[]string{"bench", "-h"}, []string{"Usage: sessiond bench", "-cleanup", "-op", "SESSIOND_BENCH_ADMIN_KEY"}, []string{"[SESSIOND_"}, true},
		{[]string{"version", "-h"}, []string{"Usage: sessiond version"}, nil, true},
		{[]string{"help", "keys", "list"}, []string{"Usage: sessiond keys list", "-database-url"}, []string{"-max-sessions"}, false},
		{[]string{"help", "bench"}, []string{"Usage: sessiond bench", "-cleanup"}, nil, false},
		{[]string{"admin-keys", "-h"}, []string{"Usage: sessiond admin-keys create NAME|list|revoke NAME", "revoke NAME"}, nil, true},
		{[]string{"admin-keys", "create", "-h"}, []string{"Usage: sessiond admin-keys create NAME", "-database-url"}, []string{"-max-sessions"}, true},
		{[]string{"admin-keys", "list", "-h"}, []string{"Usage: sessiond admin-keys list", "-database-url"}, []string{"-max-sessions"}, true},
		{[]string{"admin-keys", "revoke", "-h"}, []string{"Usage: sessiond admin-keys revoke NAME", "-database-url"}, []string{"-max-sessions"}, true},
		{[]string{"help", "admin-keys", "create"}, []string{"Usage: sessiond admin-keys create NAME", "-db-timeout"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(context.Background(), tt.args, getenvFrom(nil), &stdout, &stderr)
			if tt.isFlagSet && !errors.Is(err, flag.ErrHelp) || !tt.isFlagSet && err != nil {
				t.Fatalf("got error %v, want success", err)
			}
			if stderr.Len() > 0 {
				t.Errorf("help went to stderr: %s", stderr.String())
			}
			for _, w := range tt.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("help lacks %q:\n%s", w, stdout.String())
				}
			}
			for _, w := range tt.wantNot {
				if strings.Contains(stdout.String(), w) {
					t.Errorf("help has %q:\n%s", w, stdout.String())
				}
			}
		})
	}
}

func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, getenvFrom(nil), &out, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "sessiond ") || !strings.Contains(out.String(), "go1.") {
		t.Fatalf("got %q, want the module and Go versions", out.String())
	}
}

// TestMisspelledVariableWarns: an unknown SESSIOND_* variable gets one WARN
// line naming the closest known setting; known ones and SESSIOND_TEST_* get
// none.
func TestMisspelledVariableWarns(t *testing.T) {
	fs := newFlagSet("serve", io.Discard)
	if _, err := parseConfig(fs, nil, getenvFrom(nil)); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, nil))
	warnUnknownEnv(logger, []string{
		"SESSIOND_MAX_SESION=3", "SESSIOND_ACESS_TTL=1m", "SESSIOND_MAX_SESSIONS=3",
		"SESSIOND_TEST_POSTGRES_URL=x", "SESSIOND_ENCRYPTION_KEY=k", "HOME=/root", "SESSIOND_PUBLICURL=https://a.example.com",
	}, knownEnv(fs))
	lines := strings.Split(strings.TrimSpace(logs.String()), "\n")
	want := map[string]string{"SESSIOND_MAX_SESION": "SESSIOND_MAX_SESSIONS", "SESSIOND_ACESS_TTL": "SESSIOND_ACCESS_TTL", "SESSIOND_PUBLICURL": "SESSIOND_PUBLIC_URL"}
	if len(lines) != len(want) {
		t.Fatalf("got %d lines, want %d:\n%s", len(lines), len(want), logs.String())
	}
	for i, name := range []string{"SESSIOND_MAX_SESION", "SESSIOND_ACESS_TTL", "SESSIOND_PUBLICURL"} {
		if !strings.Contains(lines[i], "level=WARN") || !strings.Contains(lines[i], "variable="+name) || !strings.Contains(lines[i], "did_you_mean="+want[name]) {
			t.Errorf("line %d: got %q, want a WARN naming %s and %s", i, lines[i], name, want[name])
		}
	}
}

// TestServeWarnsOfMisspelledVariable: the warning is logged at start, from
// the process environment.
func TestServeWarnsOfMisspelledVariable(t *testing.T) {
	t.Setenv("SESSIOND_MAX_SESION", "3")
	s := startServe(t, map[string]string{"SESSIOND_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "s.db")})
	if got := s.stderr.String(); !strings.Contains(got, `"level":"WARN"`) || !strings.Contains(got, `"did_you_mean":"SESSIOND_MAX_SESSIONS"`) {
		t.Fatalf("no warning in the log:\n%s", got)
	}
}

func TestLevenshtein(t *testing.T) {
	for _, tt := range []struct {
		a, b string
		want int
	}{{"", "", 0}, {"abc", "", 3}, {"", "ab", 2}, {"kitten", "sitting", 3}, {"SESSIOND_ADDR", "SESSIOND_ADDR", 0}, {"flaw", "lawn", 2}} {
		if got := levenshtein(tt.a, tt.b); got != tt.want {
			t.Errorf("levenshtein(%q, %q): got %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

// TestStartWaitsForUnreachableDatabase: nothing listens at the database's
// address: serve says in the log that it retries, then gives up after its
// start timeout with one line.
func TestStartWaitsForUnreachableDatabase(t *testing.T) {
	var stderr syncBuffer
	start := time.Now()
	err := run(context.Background(), []string{"serve"}, getenvFrom(map[string]string{
		"SESSIOND_DATABASE_URL":  "postgres://sessiond@127.0.0.1:1/sessiond?sslmode=disable&connect_timeout=2",
		"SESSIOND_PUBLIC_URL":    "http://127.0.0.1:8080",
		"SESSIOND_START_TIMEOUT": "1500ms",
	}), io.Discard, &stderr)
	wantOneLine(t, err, "still unreachable", "SESSIOND_START_TIMEOUT")
	if !strings.Contains(stderr.String(), "database unreachable; retrying") {
		t.Errorf("the log does not say it retries:\n%s", stderr.String())
	}
	if time.Since(start) < time.Second {
		t.Errorf("gave up after %v, before its start timeout", time.Since(start))
	}
}
