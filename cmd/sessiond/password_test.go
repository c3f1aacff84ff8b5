package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/auth"
	"github.com/sessiond/sessiond/internal/app"
)

func TestPasswordRules(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", nil)
	signup := func(email, pw string) *response {
		return e.call("POST", "/v1/signup", map[string]string{"email": email, "password": pw}, "")
	}
	weak := []struct{ name, email, pw, why string }{
		{"common password", "w1@example.com", "password1234", "common"},
		{"keyboard walk", "w2@example.com", "qwertyuiopasdf", ""},
		{"repeated", "w3@example.com", "aaaaaaaaaaaaaaaa", ""},
		{"made of the email", "ada.lovelace@example.com", "adalovelace2026", "email"},
	}
	for _, tt := range weak {
		t.Run(tt.name, func(t *testing.T) {
			r := signup(tt.email, tt.pw).want(t, 422, "weak_password")
			if !strings.Contains(r.str("detail"), "too easy to guess") || !strings.Contains(r.str("detail"), tt.why) {
				t.Errorf("detail %q does not say why (%q)", r.str("detail"), tt.why)
			}
		})
	}

	// NFKC: a password typed with full-width letters and a decomposed accent
	// is the same password as its plain form, for length and for login.
	fancy := "ｃｏｒｒｅｃｔ horse battery stáple" // full-width letters; á as a + U+0301
	plain := "correct horse battery stáple" // á precomposed
	signup("nfkc@example.com", fancy).want(t, 201, "")
	e.call("POST", "/v1/login", map[string]string{"email": "nfkc@example.com", "password": plain}, "").want(t, 200, "")

	// Length counts code points after normalization: 12 two-byte runes pass.
	signup("runes@example.com", "ĳŀŉſǆǉǌǳʼnŉſé").want(t, 201, "")

	// The minimum score is configurable.
	lax := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) { c.PasswordMinScore = 0 })
	lax.call("POST", "/v1/signup", map[string]string{"email": "lax@example.com", "password": "password1234"}, "").want(t, 201, "")
}

// TestSweeper deletes expired sessions in batches and leaves live ones.
func TestSweeper(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.Policy.MaxSessions = 1000 })
		e.signup("sweep@example.com")
		u, err := e.app.Store.UserByEmail(context.Background(), "sweep@example.com")
		if err != nil {
			t.Fatal(err)
		}
		old := e.clock.Now().Add(-400 * 24 * time.Hour)
		p := e.cfg.Policy
		p.MaxSessions = 2000
		for i := range app.SweepBatch*2 + 7 {
			s := &sessiond.Session{ID: sessiond.NewID(), UserID: u.ID, RefreshHash: []byte(strings.Repeat("h", 31) + string(rune('a'+i%26))),
				CreatedAt: old, LastUsedAt: old, ExpiresAt: old.Add(p.SessionTTL)}
			// Created as of long ago, so the cap's own cleanup leaves them be.
			if _, err := auth.CreateSession(context.Background(), e.app.Store, s, old, p, sessiond.MethodPassword, auth.Origin{}); err != nil {
				t.Fatal(err)
			}
		}
		e.signup("live@example.com") // a login of sweep@ itself would drop its expired sessions
		live := e.login("live@example.com")
		n, err := e.app.SweepOnce(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n != app.SweepBatch*2+7 {
			t.Fatalf("swept %d sessions, want %d", n, app.SweepBatch*2+7)
		}
		e.refresh(live.RT).want(t, 200, "")
	})
}

// panickingStore panics where a bug would.
type panickingStore struct{ app.Store }

func (panickingStore) LiveSession(context.Context, string, string, time.Time, sessiond.Policy) (*sessiond.Session, error) {
	panic("bug")
}

// TestRecovery: a panic becomes a logged 500 problem and is counted; the
// server goes on serving.
func TestRecovery(t *testing.T) {
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + t.TempDir() + "/s.db"
	cfg.PasswordHash = fastHash
	e := newTestEnvWith(t, cfg, func(s app.Store) app.Store { return panickingStore{s} }, nil)
	e.signup("panic@example.com")
	at := e.login("panic@example.com").AT
	e.call("GET", "/v1/me", nil, at).want(t, 500, "internal")
	if got := e.panics(); got != 1 {
		t.Fatalf("panics counted: got %v, want 1", got)
	}
	e.request("GET", "/healthz", "", nil, nil).want(t, 200, "")
}

// panics reads sessiond_http_panics_total from /metrics.
func (e *testEnv) panics() float64 {
	e.t.Helper()
	for _, line := range strings.Split(e.metrics(), "\n") {
		if v, ok := strings.CutPrefix(line, "sessiond_http_panics_total "); ok {
			var f float64
			for _, c := range v {
				if c >= '0' && c <= '9' {
					f = f*10 + float64(c-'0')
				}
			}
			return f
		}
	}
	e.t.Fatal("no sessiond_http_panics_total in /metrics")
	return 0
}
