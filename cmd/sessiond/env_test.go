package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/password"
)

// fakeClock moves one millisecond on every reading, so that every event in
// a test has its own instant, and jumps on Advance.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(time.Millisecond)
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// testEnv is a sessiond on a fresh database behind an httptest server.
type testEnv struct {
	t     *testing.T
	cfg   app.Config
	app   *app.App
	srv   *httptest.Server
	clock *fakeClock
}

// fastHash keeps argon2 cheap in tests; its real cost is benchmarked.
var fastHash = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}

// eachStore runs f once per database, as subtests named database=….
func eachStore(t *testing.T, f func(t *testing.T, dbURL func(t *testing.T) string)) {
	t.Run("database=sqlite", func(t *testing.T) {
		f(t, func(t *testing.T) string { return "sqlite:" + filepath.Join(t.TempDir(), "sessiond.db") })
	})
	t.Run("database=postgres", func(t *testing.T) {
		f(t, func(t *testing.T) string { return pgtest.URL(t) })
	})
}

func newTestEnv(t *testing.T, dbURL string, configure func(*app.Config)) *testEnv {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = dbURL
	cfg.PublicURL = "https://sessiond.test"
	cfg.Issuer = "https://sessiond.test"
	cfg.PasswordHash = fastHash
	cfg.HashWait = time.Minute
	if configure != nil {
		configure(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	return newTestEnvWith(t, cfg, nil, nil)
}

// newPeerEnv is a second instance on e's database and clock, configured alike.
func (e *testEnv) newPeerEnv() *testEnv {
	e.t.Helper()
	return newTestEnvWith(e.t, e.cfg, nil, e.clock)
}

// newTestEnvWith builds the env on cfg; wrap, when set, wraps the store;
// clock, when set, is shared with another env.
func newTestEnvWith(t *testing.T, cfg app.Config, wrap func(app.Store) app.Store, clock *fakeClock) *testEnv {
	t.Helper()
	return newTestEnvLogged(t, cfg, wrap, clock, nil)
}

// newTestEnvLogged is newTestEnvWith that also writes every log line, at
// DEBUG and above, to logs when it is set.
func newTestEnvLogged(t *testing.T, cfg app.Config, wrap func(app.Store) app.Store, clock *fakeClock, logs io.Writer) *testEnv {
	t.Helper()
	ctx := context.Background()
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var s app.Store = db
	if wrap != nil {
		s = wrap(db)
	}
	if clock == nil {
		clock = &fakeClock{now: time.Now().UTC()} // near the real time, which the CLI uses
	}
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(&testWriter{t}, nil))
	}
	if logs != nil {
		w := logs
		if testing.Verbose() {
			w = io.MultiWriter(logs, &testWriter{t})
		}
		logger = slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	a, err := app.New(ctx, cfg, s, logger, func() time.Time { return sessiond.Now(clock.Now()) })
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(a.Handler)
	if l, ok := publicListeners.LoadAndDelete(cfg.PublicURL); ok {
		srv.Listener.Close()
		srv.Listener = l.(net.Listener)
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return &testEnv{t: t, cfg: cfg, app: a, srv: srv, clock: clock}
}

// publicListeners are the listeners reservePublicURL made, by their URL.
var publicListeners sync.Map

// reservePublicURL listens on a free loopback port and returns its URL; the
// next test env whose public URL it is serves on that listener. The browser
// tests use it: the account page binds its session with DPoP proofs that
// name the URL of each request (htu), which sessiond checks against its
// public URL, so the page must be where that URL says, as in production.
func reservePublicURL(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	u := "http://" + l.Addr().String()
	publicListeners.Store(u, l)
	t.Cleanup(func() {
		if l, ok := publicListeners.LoadAndDelete(u); ok {
			l.(net.Listener).Close()
		}
	})
	return u
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// response is a decoded answer.
type response struct {
	Status int
	Header http.Header
	Body   map[string]any
	Raw    []byte
}

func (r *response) str(key string) string {
	s, _ := r.Body[key].(string)
	return s
}

// request sends a raw request; body is sent as is with contentType.
func (e *testEnv) request(method, path, contentType string, body []byte, header map[string]string) *response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	checkSpec(e.t, req, body, resp, raw) // every exchange must match api/openapi.yaml
	r := &response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
	if len(raw) > 0 && strings.Contains(resp.Header.Get("Content-Type"), "json") {
		if err := json.Unmarshal(raw, &r.Body); err != nil {
			e.t.Fatalf("%s %s: response is not JSON: %v: %s", method, path, err, raw)
		}
	}
	return r
}

// call sends v as JSON, with a Bearer token when at is not empty.
func (e *testEnv) call(method, path string, v any, at string) *response {
	e.t.Helper()
	var body []byte
	ct := ""
	if v != nil {
		body, _ = json.Marshal(v)
		ct = "application/json"
	}
	h := map[string]string{}
	if at != "" {
		h["Authorization"] = "Bearer " + at
	}
	return e.request(method, path, ct, body, h)
}

// want fails the test unless r has the status (and, for errors, the code).
func (r *response) want(t *testing.T, status int, code string) *response {
	t.Helper()
	if r.Status != status {
		t.Fatalf("got status %d, want %d: %s", r.Status, status, r.Raw)
	}
	if code != "" {
		if got := r.str("code"); got != code {
			t.Fatalf("got code %q, want %q: %s", got, code, r.Raw)
		}
		if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
			t.Fatalf("got Content-Type %q, want application/problem+json", ct)
		}
	}
	return r
}

const testPassword = "correct horse battery staple"

func (e *testEnv) signup(email string) {
	e.t.Helper()
	e.call("POST", "/v1/signup", map[string]string{"email": email, "password": testPassword}, "").want(e.t, 201, "")
}

// tokens is a token response.
type tokens struct{ AT, RT, SID string }

func (e *testEnv) login(email string) tokens {
	e.t.Helper()
	r := e.call("POST", "/v1/login", map[string]string{"email": email, "password": testPassword}, "").want(e.t, 200, "")
	p := e.cfg.Policy
	wantRefresh := min(p.IdleTTL, p.SessionTTL)
	if r.Body["token_type"] != "Bearer" || r.Body["expires_in"] != e.cfg.AccessTTL.Seconds() || r.Body["refresh_expires_in"] != wantRefresh.Seconds() {
		e.t.Fatalf("token response %s: want token_type Bearer, expires_in %v, refresh_expires_in %v",
			r.Raw, e.cfg.AccessTTL.Seconds(), wantRefresh.Seconds())
	}
	return tokens{AT: r.str("access_token"), RT: r.str("refresh_token"), SID: r.str("session_id")}
}

func (e *testEnv) refresh(rt string) *response {
	e.t.Helper()
	return e.call("POST", "/v1/refresh", map[string]string{"refresh_token": rt}, "")
}

// liveSessions reads the user's live sessions straight from the store.
func (e *testEnv) liveSessions(email string) []sessiond.Session {
	e.t.Helper()
	ctx := context.Background()
	u, err := e.app.Store.UserByEmail(ctx, email)
	if err != nil {
		e.t.Fatal(err)
	}
	ss, err := e.app.Store.ListSessions(ctx, u.ID, e.clock.Now(), e.cfg.Policy)
	if err != nil {
		e.t.Fatal(err)
	}
	return ss
}
