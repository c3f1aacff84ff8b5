package client_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
)

func loggedIn(t *testing.T, s *sessiondServer, email string, opts *client.Options) *client.Client {
	t.Helper()
	ctx := context.Background()
	c := client.New(s.srv.URL, opts)
	if _, err := c.Signup(ctx, email, testPassword); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, email, testPassword); err != nil {
		t.Fatal(err)
	}
	return c
}

// TestClientCalls: Login, Sessions, RevokeSession, Refresh and Logout
// against a real sessiond, and errors that carry the problem code.
func TestClientCalls(t *testing.T) {
	s := startSessiond(t, time.Minute)
	ctx := context.Background()
	a := loggedIn(t, s, "calls@example.com", nil)
	b := client.New(s.srv.URL, nil)
	if _, err := b.Login(ctx, "calls@example.com", testPassword); err != nil {
		t.Fatal(err)
	}

	ss, err := a.Sessions(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 2 || ss[0].SessionID != b.Tokens().SessionID || ss[1].SessionID != a.Tokens().SessionID || !ss[1].Current {
		t.Fatalf("got sessions %+v, want b's then a's (current)", ss)
	}

	rtBefore := a.Tokens().RefreshToken
	tok, err := a.Refresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken == rtBefore || tok.SessionID != a.Tokens().SessionID {
		t.Fatalf("refresh: got RT unchanged=%v, session %q; want a rotated RT for %q", tok.RefreshToken == rtBefore, tok.SessionID, a.Tokens().SessionID)
	}

	if err := a.RevokeSession(ctx, b.Tokens().SessionID); err != nil {
		t.Fatal(err)
	}
	var e *client.Error
	if _, err := b.Refresh(ctx); !errors.As(err, &e) || e.Status != 401 || e.Code == "" {
		t.Fatalf("refresh of a revoked session: got %v, want a 401 *client.Error with a code", err)
	}
	if _, err := b.Sessions(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("after a refused RT: got %v, want %v", err, client.ErrNoSession)
	}
	if err := a.RevokeSession(ctx, "00000000-0000-4000-8000-000000000000"); !errors.As(err, &e) || e.Code != "not_found" || e.Status != 404 {
		t.Fatalf("revoke unknown: got %v, want 404 not_found", err)
	}

	if err := a.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := client.New(s.srv.URL, nil).Login(ctx, "calls@example.com", "wrong password!!"); !errors.As(err, &e) || e.Code != "invalid_credentials" || e.Detail == "" {
		t.Fatalf("bad login: got %v, want invalid_credentials with a detail", err)
	}
}

// TestClientSingleFlightRefresh: 20 concurrent requests with an expired AT
// cause exactly one /v1/refresh, and all succeed with the new AT.
func TestClientSingleFlightRefresh(t *testing.T) {
	s := startSessiond(t, 2*time.Second)
	s.delayRefresh = 100 * time.Millisecond // so every request surely overlaps it
	var persisted []string
	var mu sync.Mutex
	c := loggedIn(t, s, "flight@example.com", &client.Options{OnTokens: func(t client.Tokens) {
		mu.Lock()
		persisted = append(persisted, t.RefreshToken)
		mu.Unlock()
	}})
	first := c.Tokens()
	time.Sleep(time.Until(first.AccessExpiresAt))
	s.refreshes.Store(0)

	hc := c.HTTPClient()
	getAllOK(t, hc, s.srv.URL+"/v1/me", 20)
	if got := s.refreshes.Load(); got != 1 {
		t.Fatalf("refresh calls: got %d, want 1", got)
	}
	now := c.Tokens()
	if now.AccessToken == first.AccessToken || now.RefreshToken == first.RefreshToken {
		t.Fatal("got the old tokens after the refresh, want a new AT and a rotated RT")
	}
	mu.Lock()
	defer mu.Unlock()
	if len(persisted) != 2 || persisted[0] != first.RefreshToken || persisted[1] != now.RefreshToken {
		t.Fatalf("OnTokens saw %d RTs, want 2: the login's and the rotated one", len(persisted))
	}
}

// TestClientRetriesOn401: a refused AT is refreshed once and the request,
// body included, is sent again; a body that cannot be replayed is not.
func TestClientRetriesOn401(t *testing.T) {
	s := startSessiond(t, time.Minute)
	var refused string
	var mu sync.Mutex
	var seen []string
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		seen = append(seen, string(body))
		mu.Unlock()
		if r.Header.Get("Authorization") == "Bearer "+refused {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			w.WriteHeader(401)
			return
		}
		w.Write(body)
	}))
	defer api.Close()
	c := loggedIn(t, s, "retry@example.com", &client.Options{TokenOrigins: []string{api.URL}})
	refused = c.Tokens().AccessToken
	hc := c.HTTPClient()

	resp, err := hc.Post(api.URL, "text/plain", strings.NewReader("hello"))
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(got) != "hello" {
		t.Fatalf("got %d %q, want 200 \"hello\"", resp.StatusCode, got)
	}
	if n := s.refreshes.Load(); n != 1 || len(seen) != 2 || seen[1] != "hello" {
		t.Fatalf("got %d refreshes and bodies %q, want 1 and the body sent twice", n, seen)
	}

	// A body without GetBody cannot be sent again: the 401 is the answer.
	refused = c.Tokens().AccessToken
	req, _ := http.NewRequest("POST", api.URL, io.NopCloser(bytes.NewReader([]byte("once"))))
	resp, err = hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 || s.refreshes.Load() != 1 {
		t.Fatalf("unreplayable body: got %d after %d refreshes, want 401 and still 1", resp.StatusCode, s.refreshes.Load())
	}
}

// TestClientResume: a Client given a saved RT refreshes on its first request.
func TestClientResume(t *testing.T) {
	s := startSessiond(t, time.Minute)
	saved := loggedIn(t, s, "resume@example.com", nil).Tokens().RefreshToken
	c := client.New(s.srv.URL, nil)
	c.Resume(saved)
	ss, err := c.Sessions(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || s.refreshes.Load() != 1 || c.Tokens().RefreshToken == saved {
		t.Fatalf("got %d sessions, %d refreshes; want 1, 1 and a rotated RT", len(ss), s.refreshes.Load())
	}
}

// getAllOK sends n concurrent GETs of url through hc and wants every one
// answered 200.
func getAllOK(t *testing.T, hc *http.Client, url string, n int) {
	t.Helper()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			resp, err := hc.Get(url)
			if err != nil {
				t.Error(err)
				return
			}
			resp.Body.Close()
			if resp.StatusCode != 200 {
				t.Errorf("GET %s: got %d, want 200", url, resp.StatusCode)
			}
		})
	}
	wg.Wait()
}
