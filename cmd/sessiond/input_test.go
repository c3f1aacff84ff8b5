package main

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
)

// TestBadInput: every malformed request gets its coded 4xx, never a 500,
// and loses nothing.
func TestBadInput(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", nil)
	e.signup("taken@example.com")
	rt := e.login("taken@example.com").RT
	big := `{"email":"` + strings.Repeat("a", 70<<10) + `"}`

	tests := []struct {
		name, method, path, ct, body string
		header                       map[string]string
		status                       int
		code                         string
	}{
		{"malformed JSON", "POST", "/v1/login", "application/json", `{"email":`, nil, 400, "invalid_request"},
		{"not an object", "POST", "/v1/login", "application/json", `[1,2]`, nil, 400, "invalid_request"},
		{"wrong type", "POST", "/v1/signup", "application/json", `{"email":1,"password":"x"}`, nil, 400, "invalid_request"},
		{"missing field", "POST", "/v1/login", "application/json", `{"email":"a@example.com"}`, nil, 400, "invalid_request"},
		{"empty body", "POST", "/v1/refresh", "application/json", ``, nil, 400, "invalid_request"},
		{"trailing data", "POST", "/v1/refresh", "application/json", `{"refresh_token":"x"} {}`, nil, 400, "invalid_request"},
		{"null", "POST", "/v1/refresh", "application/json", `null`, nil, 400, "invalid_request"},
		{"too large", "POST", "/v1/signup", "application/json", big, nil, 413, "request_too_large"},
		{"not JSON", "POST", "/v1/login", "text/plain", `email=a`, nil, 415, "unsupported_media_type"},
		{"form", "POST", "/v1/signup", "application/x-www-form-urlencoded", `email=a`, nil, 415, "unsupported_media_type"},
		{"invalid email", "POST", "/v1/signup", "application/json", `{"email":"not-an-email","password":"` + testPassword + `"}`, nil, 422, "invalid_email"},
		{"display-name email", "POST", "/v1/signup", "application/json", `{"email":"Ada <ada@example.com>","password":"` + testPassword + `"}`, nil, 422, "invalid_email"},
		{"short password", "POST", "/v1/signup", "application/json", `{"email":"new@example.com","password":"short"}`, nil, 422, "weak_password"},
		{"11 code points", "POST", "/v1/signup", "application/json", `{"email":"new@example.com","password":"ééééééééééé"}`, nil, 422, "weak_password"},
		{"129 characters", "POST", "/v1/signup", "application/json", `{"email":"new@example.com","password":"` + strings.Repeat("x", 129) + `"}`, nil, 422, "weak_password"},
		{"email taken (case and space differ)", "POST", "/v1/signup", "application/json", `{"email":" Taken@Example.com ","password":"` + testPassword + `"}`, nil, 409, "email_taken"},
		{"wrong password", "POST", "/v1/login", "application/json", `{"email":"taken@example.com","password":"wrong password!!"}`, nil, 401, "invalid_credentials"},
		{"unknown email", "POST", "/v1/login", "application/json", `{"email":"nobody@example.com","password":"wrong password!!"}`, nil, 401, "invalid_credentials"},
		{"garbage refresh token", "POST", "/v1/refresh", "application/json", `{"refresh_token":"garbage"}`, nil, 401, "invalid_refresh_token"},
		{"huge refresh token", "POST", "/v1/refresh", "application/json", `{"refresh_token":"` + strings.Repeat("A", 4000) + `"}`, nil, 401, "invalid_refresh_token"},
		{"no Authorization", "GET", "/v1/me", "", ``, nil, 401, "invalid_token"},
		{"Basic auth", "GET", "/v1/me", "", ``, map[string]string{"Authorization": "Basic YTpi"}, 401, "invalid_token"},
		{"empty Bearer", "GET", "/v1/me", "", ``, map[string]string{"Authorization": "Bearer "}, 401, "invalid_token"},
		{"oversized Bearer", "GET", "/v1/me", "", ``, map[string]string{"Authorization": "Bearer " + strings.Repeat("a", 5000)}, 401, "invalid_token"},
		{"logout with a bad Bearer", "POST", "/v1/logout", "", ``, map[string]string{"Authorization": "Bearer x.y.z"}, 401, "invalid_token"},
		{"unknown path", "GET", "/v1/nothing", "", ``, nil, 404, "not_found"},
		{"wrong method", "GET", "/v1/login", "", ``, nil, 405, "method_not_allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.request(tt.method, tt.path, tt.ct, []byte(tt.body), tt.header)
			r.want(t, tt.status, tt.code)
			for _, k := range []string{"type", "title", "status", "detail", "code"} {
				if _, ok := r.Body[k]; !ok {
					t.Errorf("problem lacks %q: %s", k, r.Raw)
				}
			}
		})
	}
	// Nothing was lost on the way: the account and its session still work,
	// and the recovery middleware was never needed.
	e.refresh(rt).want(t, 200, "")
	if got := e.panics(); got != 0 {
		t.Fatalf("bad input caused %v panics, want 0", got)
	}
}

func TestLogout(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("bye@example.com")
		a, b := e.login("bye@example.com"), e.login("bye@example.com")

		e.call("POST", "/v1/logout", nil, a.AT).want(t, 204, "")
		e.call("GET", "/v1/me", nil, a.AT).want(t, 401, "invalid_token")
		e.refresh(a.RT).want(t, 401, "invalid_refresh_token")

		e.call("POST", "/v1/logout", map[string]string{"refresh_token": b.RT}, "").want(t, 204, "")
		e.call("GET", "/v1/me", nil, b.AT).want(t, 401, "invalid_token")
		e.call("POST", "/v1/logout", map[string]string{"refresh_token": b.RT}, "").want(t, 401, "invalid_refresh_token")
		if got := len(e.liveSessions("bye@example.com")); got != 0 {
			t.Fatalf("got %d live sessions, want 0", got)
		}
	})
}

// failingStore answers every session read with a database failure.
type failingStore struct {
	app.Store
}

var errDown = errors.New("connection refused")

func (f failingStore) LiveSession(ctx context.Context, userID, id string, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	return nil, sessiond.Unavailable("live session", errDown)
}

func (f failingStore) RefreshCurrent(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	return nil, sessiond.Unavailable("refresh session", errDown)
}

func (f failingStore) Ping(ctx context.Context) error { return sessiond.Unavailable("ping", errDown) }

// TestDatabaseErrorIsNot401: a failing database must not make clients
// throw away valid tokens.
func TestDatabaseErrorIsNot401(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + t.TempDir() + "/s.db"
	cfg.PasswordHash = fastHash
	healthy := newTestEnvWith(t, cfg, nil, nil)
	healthy.signup("db@example.com")
	tok := healthy.login("db@example.com")

	e := newTestEnvWith(t, cfg, func(s app.Store) app.Store { return failingStore{s} }, nil)
	r := e.call("GET", "/v1/me", nil, tok.AT).want(t, 503, "unavailable")
	if strings.Contains(string(r.Raw), "connection refused") {
		t.Errorf("the problem leaks the database error: %s", r.Raw)
	}
	e.refresh(tok.RT).want(t, 503, "unavailable")
	e.request("GET", "/readyz", "", nil, nil).want(t, 503, "unavailable")
	healthy.request("GET", "/readyz", "", nil, nil).want(t, 200, "")
}
