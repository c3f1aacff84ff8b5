package auth_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/password"
)

// TestAccessTokenNeverOutlivesSession: a refresh a minute before the
// session's absolute expiry yields an AT whose exp is that expiry, not
// now + the access TTL, and whose expires_in says so.
func TestAccessTokenNeverOutlivesSession(t *testing.T) {
	ctx := context.Background()
	var mu sync.Mutex
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }

	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "sessiond.db")
	cfg.Issuer = "https://sessiond.test"
	cfg.AccessTTL = 15 * time.Minute
	cfg.Policy.SessionTTL = time.Hour
	cfg.Policy.IdleTTL = time.Hour
	cfg.PasswordHash = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	a, err := app.New(ctx, cfg, db, slog.New(slog.DiscardHandler), clock)
	if err != nil {
		t.Fatal(err)
	}
	call := func(method, path, bearer string, body any, out any) {
		t.Helper()
		var b []byte
		if body != nil {
			b, _ = json.Marshal(body)
		}
		req := httptest.NewRequest(method, path, bytes.NewReader(b))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		w := httptest.NewRecorder()
		a.Handler.ServeHTTP(w, req)
		if w.Code >= 300 {
			t.Fatalf("%s %s: got %d %s", method, path, w.Code, w.Body)
		}
		if out != nil {
			if err := json.Unmarshal(w.Body.Bytes(), out); err != nil {
				t.Fatalf("%s %s: %v", method, path, err)
			}
		}
	}
	type tokens struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
		ExpiresIn    int64  `json:"expires_in"`
	}
	creds := map[string]string{"email": "clamp@example.com", "password": "correct horse battery staple"}
	call("POST", "/v1/signup", "", creds, nil)
	var login tokens
	call("POST", "/v1/login", "", creds, &login)
	if got, want := expClaim(t, login.AccessToken), now.Add(cfg.AccessTTL); !got.Equal(want) {
		t.Fatalf("at login: got exp %v, want %v (the access TTL)", got, want)
	}
	var list struct {
		Sessions []struct {
			ExpiresAt time.Time `json:"expires_at"`
		} `json:"sessions"`
	}
	call("GET", "/v1/sessions", login.AccessToken, nil, &list)
	if len(list.Sessions) != 1 {
		t.Fatalf("got %d sessions, want 1", len(list.Sessions))
	}
	expiresAt := list.Sessions[0].ExpiresAt

	advance(cfg.Policy.SessionTTL - time.Minute)
	var late tokens
	call("POST", "/v1/refresh", "", map[string]string{"refresh_token": login.RefreshToken}, &late)
	if got := expClaim(t, late.AccessToken); !got.Equal(expiresAt) {
		t.Fatalf("a minute before the session ends: got exp %v, want the session's expires_at %v, not %v",
			got, expiresAt, clock().Add(cfg.AccessTTL))
	}
	if late.ExpiresIn != 60 {
		t.Fatalf("got expires_in %d, want 60", late.ExpiresIn)
	}
}

// expClaim reads an AT's exp claim.
func expClaim(t *testing.T, at string) time.Time {
	t.Helper()
	parts := strings.Split(at, ".")
	if len(parts) != 3 {
		t.Fatalf("got AT %q, want a compact JWS", at)
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var c struct{ Exp int64 }
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	return time.Unix(c.Exp, 0).UTC()
}
