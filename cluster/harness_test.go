// Package cluster_test proves sessiond's multi-instance and fault promises
// with the real binary on real processes: it builds cmd/sessiond
// once, starts several `sessiond serve` processes on one database, drives
// them over HTTP, kills them, and stops and fails over PostgreSQL clusters
// of its own.
//
// Start reading at harness_test.go (processes, HTTP client, the invariant
// query), then invariants_test.go (concurrency across instances),
// races_test.go (looped races), retry_test.go (40001/40P01), faults_test.go
// (kill -9, slow clients, SQLite) and pgcluster_test.go (outage and
// failover on throwaway PostgreSQL clusters). Everything is gated on
// SESSIOND_TEST_POSTGRES_URL, except the SQLite and slow-client tests.
package cluster_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// sessiondBin is the sessiond executable every test runs, built once by TestMain.
var sessiondBin string

func TestMain(m *testing.M) {
	os.Exit(runMain(m))
}

func runMain(m *testing.M) int {
	if os.Getenv(pgtest.EnvURL) == "" {
		fmt.Println("pgtest: " + pgtest.EnvURL + " not set: this package's PostgreSQL tests skip")
	}
	dir, err := os.MkdirTemp("", "sessiond-cluster-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster tests:", err)
		return 1
	}
	defer os.RemoveAll(dir)
	sessiondBin = filepath.Join(dir, "sessiond")
	// Built without -race even under `go test -race`: the server's own
	// races are the unit and end-to-end tests' business, and an
	// instrumented argon2 would make every login here several times slower.
	// The environment's own build settings (CGO_ENABLED included) are kept,
	// so that this build reuses what `go vet` compiled before the tests
	// rather than compiling every dependency once more.
	build := exec.Command("go", "build", "-o", sessiondBin, "github.com/sessiond/sessiond/cmd/sessiond")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster tests: build sessiond:", err)
		return 1
	}
	return m.Run()
}

// issuer is the iss claim every instance of a test shares, as instances
// behind one load balancer must.
const issuer = "https://sessiond.cluster.test"

// instance is one running `sessiond serve` process.
type instance struct {
	t      testing.TB
	name   string
	URL    string // http://127.0.0.1:PORT
	cmd    *exec.Cmd
	stderr *syncBuffer
	exited chan struct{} // closed when the process has been reaped
}

// syncBuffer is a bytes.Buffer safe for the process's writer goroutine and
// the test's reader.
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

// baseEnv is the environment of every instance: the parent's, without any
// SESSIOND_ setting that could leak in from the developer's shell.
func baseEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SESSIOND_") {
			env = append(env, kv)
		}
	}
	return env
}

// startInstance starts `sessiond serve` on a free port of 127.0.0.1 with the
// given SESSIOND_* settings (on top of a listen address, the issuer and a
// one-second key reload) and waits until it listens. The process is
// stopped when t ends; its log is shown if t failed.
func startInstance(t testing.TB, name string, settings map[string]string) *instance {
	t.Helper()
	in, err := launch(t, name, settings)
	if err != nil {
		t.Fatal(err)
	}
	return in
}

// startCluster starts n instances on one database at once, so that they
// also race to migrate it and to create its first signing key.
func startCluster(t testing.TB, n int, settings map[string]string) []*instance {
	t.Helper()
	out := make([]*instance, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { out[i], errs[i] = launch(t, fmt.Sprintf("instance-%d", i), settings) })
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// launch is startInstance without failing t, so that it may run on any
// goroutine (t.Cleanup and t.Logf are safe there, t.Fatal is not).
func launch(t testing.TB, name string, settings map[string]string) (*instance, error) {
	env := append(baseEnv(),
		"SESSIOND_ADDR=127.0.0.1:0",
		"SESSIOND_ISSUER="+issuer,
		"SESSIOND_PUBLIC_URL="+issuer,
		"SESSIOND_KEY_RELOAD=1s",
		// Every request comes from 127.0.0.1, and each login holds a
		// throttle attempt until its password checks out: the load and race
		// scenarios sign up and log in far beyond what one real client
		// would. A scenario's own settings still win (exec keeps the last).
		"SESSIOND_SIGNUP_RATE=1000000",
		"SESSIOND_LOGIN_MAX_FAILURES=1000",
		"SESSIOND_LOGIN_MAX_ACCOUNT_FAILURES=1000",
		"SESSIOND_LOGIN_MAX_IP_FAILURES=1000",
	)
	for k, v := range settings {
		env = append(env, k+"="+v)
	}
	cmd := exec.Command(sessiondBin, "serve")
	cmd.Env = env
	in := &instance{t: t, name: name, cmd: cmd, stderr: &syncBuffer{}, exited: make(chan struct{})}
	cmd.Stderr = in.stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: stdout pipe: %w", name, err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("%s: start: %w", name, err)
	}
	go func() {
		cmd.Wait()
		close(in.exited)
	}()
	t.Cleanup(func() {
		in.Stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", name, tail(in.stderr.String(), 4000))
		}
	})

	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if a, ok := strings.CutPrefix(sc.Text(), "sessiond listening on "); ok {
				select {
				case addr <- a:
				default:
				}
			}
		}
	}()
	select {
	case in.URL = <-addr:
		return in, nil
	case <-in.exited:
		return nil, fmt.Errorf("%s exited before listening: %s", name, tail(in.stderr.String(), 2000))
	case <-time.After(60 * time.Second):
		return nil, fmt.Errorf("%s did not listen within 60s: %s", name, tail(in.stderr.String(), 2000))
	}
}

// Stop ends the process gracefully (SIGTERM), killing it after 10s.
func (in *instance) Stop() {
	select {
	case <-in.exited:
		return
	default:
	}
	in.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-in.exited:
	case <-time.After(10 * time.Second):
		in.cmd.Process.Kill()
		<-in.exited
	}
}

// Kill9 ends the process with SIGKILL, as a crash or the OOM killer would,
// and waits until it is gone.
func (in *instance) Kill9() {
	in.cmd.Process.Kill()
	<-in.exited
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// client is the HTTP client of every test: bounded by a request timeout, so
// that a hang is a failure and not a stuck test.
var client = &http.Client{
	Timeout: 15 * time.Second,
	Transport: &http.Transport{
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	},
}

// reply is an HTTP answer: the status, the problem code of an error, and
// the decoded body.
type reply struct {
	Status int
	Code   string
	Body   []byte
	Err    error // a transport error (refused, reset, timeout): no answer
}

// tokens is the token response of login and refresh.
type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
	SessionID    string `json:"session_id"`
}

func call(ctx context.Context, method, url, bearer string, body any) reply {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return reply{Err: err}
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return reply{Err: err}
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := client.Do(req)
	if err != nil {
		return reply{Err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	r := reply{Status: resp.StatusCode, Body: b, Err: err}
	if resp.StatusCode >= 400 {
		var p struct{ Code string }
		json.Unmarshal(b, &p)
		r.Code = p.Code
	}
	return r
}

func (r reply) tokens() (tokens, error) {
	var tk tokens
	if err := json.Unmarshal(r.Body, &tk); err != nil {
		return tk, fmt.Errorf("decode token response: %w", err)
	}
	if tk.AccessToken == "" || tk.RefreshToken == "" || tk.SessionID == "" {
		return tk, fmt.Errorf("incomplete token response %s", r.Body)
	}
	return tk, nil
}

func (r reply) String() string {
	if r.Err != nil {
		return "error: " + r.Err.Error()
	}
	return fmt.Sprintf("%d %s %s", r.Status, r.Code, bytes.TrimSpace(r.Body))
}

func login(ctx context.Context, base, email, password string) reply {
	return call(ctx, "POST", base+"/v1/login", "", map[string]string{"email": email, "password": password})
}

func refresh(ctx context.Context, base, rt string) reply {
	return call(ctx, "POST", base+"/v1/refresh", "", map[string]string{"refresh_token": rt})
}

// newPassword returns a password sessiond's strength rules accept.
func newPassword() string {
	var b [12]byte
	rand.Read(b[:])
	return "Cluster-" + hex.EncodeToString(b[:])
}

// signup creates a user through base and returns its email and password.
func signup(t testing.TB, base string) (email, password string) {
	t.Helper()
	var b [6]byte
	rand.Read(b[:])
	email, password = "u"+hex.EncodeToString(b[:])+"@example.com", newPassword()
	r := call(context.Background(), "POST", base+"/v1/signup", "", map[string]string{"email": email, "password": password})
	if r.Status != http.StatusCreated {
		t.Fatalf("signup: got %v, want 201", r)
	}
	return email, password
}

// mustLogin logs in through base, retrying a busy 503 (the password hasher
// is bounded, and a client is expected to retry after Retry-After).
func mustLogin(t testing.TB, base, email, password string) tokens {
	t.Helper()
	var r reply
	for range 50 {
		r = login(context.Background(), base, email, password)
		if r.Status != http.StatusServiceUnavailable {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if r.Status != http.StatusOK {
		t.Fatalf("login: got %v, want 200", r)
	}
	tk, err := r.tokens()
	if err != nil {
		t.Fatal(err)
	}
	return tk
}

// rtHash is what the database stores for a refresh token: the SHA-256 of
// its secret part (token/refresh.go: 16-byte session id, 8-byte
// generation, 32-byte secret, base64url).
func rtHash(t testing.TB, rt string) []byte {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(rt)
	if err != nil || len(raw) != 56 {
		t.Fatalf("refresh token %q: not the 56-byte layout (%v)", rt, err)
	}
	sum := sha256.Sum256(raw[24:])
	return sum[:]
}

// connect opens a direct connection for the test's own queries.
func connect(t testing.TB, url string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// query runs one query on a connection of its own, closed at once, so that
// helpers called in loops do not pile up connections.
func query(t testing.TB, url, sql string, args ...any) pgx.Rows {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	rows, err := conn.Query(context.Background(), sql, args...)
	if err != nil {
		conn.Close(context.Background())
		t.Fatalf("%s: %v", sql, err)
	}
	return &closingRows{Rows: rows, conn: conn}
}

// closingRows closes its connection with the rows.
type closingRows struct {
	pgx.Rows
	conn *pgx.Conn
}

func (r *closingRows) Close() {
	r.Rows.Close()
	r.conn.Close(context.Background())
}

// queryStrings returns the first column of every row, as text.
func queryStrings(t testing.TB, url, sql string, args ...any) []string {
	t.Helper()
	rows := query(t, url, sql, args...)
	defer rows.Close()
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return out
}

// invariantChecks are the queries that must return no rows after every
// scenario; each names the invariant it checks. $1 is the session cap, $2
// the idle lifetime in seconds.
var invariantChecks = []struct{ name, sql string }{
	{"live sessions per user <= max_sessions", `
		SELECT user_id || ': ' || count(*) FROM sessions
		WHERE expires_at > now() AND last_used_at > now() - make_interval(secs => $2)
		GROUP BY user_id HAVING count(*) > $1`},
	{"every session has one current refresh hash of 32 bytes", `
		SELECT id FROM sessions WHERE refresh_hash IS NULL OR length(refresh_hash) <> 32`},
	{"no refresh hash is current for two sessions", `
		SELECT encode(refresh_hash, 'hex') || ': ' || count(*) FROM sessions
		GROUP BY refresh_hash HAVING count(*) > 1`},
	{"no current hash is another session's superseded one", `
		SELECT a.id FROM sessions a JOIN sessions b ON a.refresh_hash = b.prev_hash AND a.id <> b.id`},
	{"a rotated session has its superseded hash; a fresh one has none", `
		SELECT id FROM sessions WHERE (generation = 0) <> (prev_hash IS NULL)
		OR (generation = 0) <> (rotated_at IS NULL) OR generation < 0`},
	{"no orphan sessions", `
		SELECT s.id FROM sessions s LEFT JOIN users u ON u.id = s.user_id WHERE u.id IS NULL`},
	{"expires_at >= created_at and last_used_at >= created_at", `
		SELECT id FROM sessions WHERE expires_at < created_at OR last_used_at < created_at`},
	{"exactly one current signing key", `
		SELECT count(*)::text FROM signing_keys WHERE retired_at IS NULL HAVING count(*) <> 1`},
	{"no attempt counter below zero, or forgotten before its window ends", `
		SELECT key FROM login_attempts WHERE count < 0 OR level < 0 OR forget_at < window_end`},
}

// checkInvariants runs invariantChecks on the database at url.
func checkInvariants(t testing.TB, url string, maxSessions int, idle time.Duration) {
	t.Helper()
	conn := connect(t, url)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for _, c := range invariantChecks {
		args := []any{maxSessions, idle.Seconds()}
		if !strings.Contains(c.sql, "$2") {
			args = nil
		}
		rows, err := conn.Query(ctx, c.sql, args...)
		if err != nil {
			t.Errorf("invariant %q: %v", c.name, err)
			continue
		}
		bad, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Errorf("invariant %q: %v", c.name, err)
			continue
		}
		if len(bad) > 0 {
			t.Errorf("invariant %q broken by %d rows, e.g. %v", c.name, len(bad), bad[:min(len(bad), 5)])
		}
	}
}
