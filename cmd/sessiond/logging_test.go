package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
)

// TestRootRedirectsToAccountPage: opening the server's address in a
// browser lands on the account page; without the page, "/" stays a 404.
func TestRootRedirectsToAccountPage(t *testing.T) {
	for _, tt := range []struct {
		cookieMode bool
		want       int
	}{{true, http.StatusFound}, {false, http.StatusNotFound}} {
		e := newTestEnv(t, "sqlite:"+filepath.Join(t.TempDir(), "s.db"), func(c *app.Config) { c.CookieMode = tt.cookieMode })
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Accept", "text/html")
		rec := httptest.NewRecorder()
		e.app.Handler.ServeHTTP(rec, req)
		if rec.Code != tt.want {
			t.Errorf("cookie mode %v: GET / got %d, want %d", tt.cookieMode, rec.Code, tt.want)
		}
		if tt.want == http.StatusFound && rec.Header().Get("Location") != "/account/" {
			t.Errorf("Location %q, want /account/", rec.Header().Get("Location"))
		}
	}
}

// canceledPing fails its Ping the way a store does when the request's
// context ended: unavailable, wrapping context.Canceled.
type canceledPing struct{ app.Store }

func (s canceledPing) Ping(ctx context.Context) error {
	<-ctx.Done()
	return sessiond.Unavailable("ping database", ctx.Err())
}

// newLoggedApp is an App on a fresh SQLite database whose log, at INFO and
// above, goes to the returned buffer.
func newLoggedApp(t *testing.T, configure func(*app.Config), wrap func(app.Store) app.Store) (*app.App, *syncBuffer) {
	t.Helper()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "s.db")
	cfg.PasswordHash = fastHash
	if configure != nil {
		configure(&cfg)
	}
	db, err := app.OpenStore(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	var s app.Store = db
	if wrap != nil {
		s = wrap(db)
	}
	logs := &syncBuffer{}
	a, err := app.New(context.Background(), cfg, s, slog.New(slog.NewJSONHandler(logs, nil)), sessiond.SystemClock)
	if err != nil {
		t.Fatal(err)
	}
	return a, logs
}

// TestClientHangUpIsNotAnError: a request abandoned because the client went
// away logs no ERROR line.
func TestClientHangUpIsNotAnError(t *testing.T) {
	a, logs := newLoggedApp(t, nil, func(s app.Store) app.Store { return canceledPing{s} })
	ctx, cancel := context.WithCancel(context.Background())
	req := httptest.NewRequest("GET", "/readyz", nil).WithContext(ctx)
	time.AfterFunc(10*time.Millisecond, cancel)
	a.Handler.ServeHTTP(httptest.NewRecorder(), req)
	if strings.Contains(logs.String(), `"level":"ERROR"`) {
		t.Fatalf("a client hanging up was logged as an error:\n%s", logs.String())
	}
}

// TestEvictionAtLoginIsNotLoggedAtInfo: logging in beyond the cap evicts,
// as designed, and writes nothing at INFO.
func TestEvictionAtLoginIsNotLoggedAtInfo(t *testing.T) {
	a, logs := newLoggedApp(t, func(c *app.Config) { c.Policy.MaxSessions = 1 }, nil)
	srv := httptest.NewServer(a.Handler)
	defer srv.Close()
	body := `{"email":"cap@example.com","password":"correct horse battery staple"}`
	for i, path := range []string{"/v1/signup", "/v1/login", "/v1/login", "/v1/login"} {
		resp, err := http.Post(srv.URL+path, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Fatalf("step %d %s: %d", i, path, resp.StatusCode)
		}
	}
	if strings.Contains(logs.String(), "evicted") {
		t.Fatalf("eviction logged at INFO or above:\n%s", logs.String())
	}
}
