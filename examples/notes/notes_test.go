package main

// An internal test: a command's handlers cannot be imported from outside.

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/password"
)

// TestNotesBesideSessiond runs sessiond and the notes service on loopback,
// logs in with the client, uses the notes API, lets the 2-second access
// token expire, and checks that the client refreshed it by itself.
func TestNotesBesideSessiond(t *testing.T) {
	ctx := context.Background()
	cfg := app.DefaultConfig()
	cfg.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "sessiond.db")
	cfg.Issuer = "https://sessiond.test"
	cfg.AccessTTL = 2 * time.Second
	cfg.PasswordHash = password.Params{Memory: 64, Iterations: 1, Parallelism: 1, SaltLength: 16, KeyLength: 32}
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	db, err := app.OpenStore(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	a, err := app.New(ctx, cfg, db, slog.New(slog.DiscardHandler), time.Now)
	if err != nil {
		t.Fatal(err)
	}
	var refreshes atomic.Int64
	sessiond := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/refresh" {
			refreshes.Add(1)
		}
		a.Handler.ServeHTTP(w, r)
	}))
	defer sessiond.Close()

	// The notes service: the five lines of client's example, in newServer.
	// Leeway 0 so that the service refuses an expired token at once.
	v, err := client.NewVerifier(ctx, sessiond.URL+"/.well-known/jwks.json", cfg.Issuer, cfg.Audience, &client.VerifierOptions{Leeway: -1})
	if err != nil {
		t.Fatal(err)
	}
	defer v.Close()
	notes := httptest.NewServer(newServer(v))
	defer notes.Close()

	// The user.
	c := client.New(sessiond.URL, &client.Options{TokenOrigins: []string{notes.URL}})
	if _, err := c.Signup(ctx, "notes@example.com", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "notes@example.com", "correct horse battery staple"); err != nil {
		t.Fatal(err)
	}
	hc := c.HTTPClient()
	post := func(text string) {
		t.Helper()
		resp, err := hc.Post(notes.URL+"/notes", "application/json", strings.NewReader(`{"text":"`+text+`"}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated {
			t.Fatalf("POST /notes: got %d, want 201", resp.StatusCode)
		}
	}
	list := func() []string {
		t.Helper()
		resp, err := hc.Get(notes.URL + "/notes")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			t.Fatalf("GET /notes: got %d, want 200: %s", resp.StatusCode, b)
		}
		var out struct{ Notes []struct{ Text string } }
		json.NewDecoder(resp.Body).Decode(&out)
		var texts []string
		for _, n := range out.Notes {
			texts = append(texts, n.Text)
		}
		return texts
	}

	post("first")
	if got := list(); len(got) != 1 || got[0] != "first" {
		t.Fatalf("got notes %q, want [first]", got)
	}
	if n := refreshes.Load(); n != 0 {
		t.Fatalf("refreshes before expiry: got %d, want 0", n)
	}
	before := c.Tokens().AccessToken

	// Without the client the service refuses the expired token...
	time.Sleep(time.Until(c.Tokens().AccessExpiresAt) + 100*time.Millisecond)
	req, _ := http.NewRequest("GET", notes.URL+"/notes", nil)
	req.Header.Set("Authorization", "Bearer "+before)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("expired token sent by hand: got %d, want 401", resp.StatusCode)
	}
	// ...and with it the same requests just work.
	post("second")
	if got := list(); len(got) != 2 || got[1] != "second" {
		t.Fatalf("got notes %q, want [first second]", got)
	}
	if n := refreshes.Load(); n != 1 {
		t.Fatalf("refreshes after expiry: got %d, want 1", n)
	}
	if c.Tokens().AccessToken == before {
		t.Fatal("the client still holds the expired token")
	}

	// Without a token there are no notes.
	resp, err = http.Get(notes.URL + "/notes")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") == "" {
		t.Fatalf("no token: got %d, want 401 with WWW-Authenticate", resp.StatusCode)
	}
}
