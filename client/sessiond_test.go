package client_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/password"
)

const (
	testIssuer   = "https://sessiond.test"
	testAudience = "sessiond"
	testPassword = "correct horse battery staple"
)

// sessiondServer is a whole sessiond on SQLite in a temporary directory,
// served on loopback, counting the /v1/refresh calls it answers.
type sessiondServer struct {
	app       *app.App
	srv       *httptest.Server
	refreshes atomic.Int64
	// delayRefresh, when set, holds each /v1/refresh that long, so that
	// concurrent callers surely overlap it.
	delayRefresh time.Duration
}

// startSessiond starts one with the given access token lifetime, its
// configuration changed by configure.
func startSessiond(t *testing.T, accessTTL time.Duration, configure ...func(*app.Config)) *sessiondServer {
	t.Helper()
	ctx := context.Background()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "sessiond.db")
	cfg.Issuer = testIssuer
	cfg.Audience = testAudience
	cfg.AccessTTL = accessTTL
	cfg.PasswordHash = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	cfg.HashWait = time.Minute
	// The listener first, so that the public URL (which DPoP proofs name)
	// is the one the tests reach.
	s := &sessiondServer{}
	s.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/refresh" {
			s.refreshes.Add(1)
			time.Sleep(s.delayRefresh)
		}
		s.app.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(s.srv.Close)
	cfg.PublicURL = "http://" + s.srv.Listener.Addr().String()
	for _, f := range configure {
		f(&cfg)
	}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := app.New(ctx, cfg, db, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	s.app = a
	s.srv.Start()
	t.Cleanup(s.srv.Close) // again, so that it closes before the store (Close is idempotent)
	return s
}

func (s *sessiondServer) jwksURL() string { return s.srv.URL + "/.well-known/jwks.json" }
