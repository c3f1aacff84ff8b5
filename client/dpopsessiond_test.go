package client_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/dpop"
	"github.com/sessiond/sessiond/internal/app"
)

// notesService is a notes-like service behind Verifier.Middleware that
// answers with the caller's user id and key thumbprint.
func notesService(t *testing.T, jwksURL string) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	v := newTestVerifier(t, jwksURL, &client.VerifierOptions{PublicURL: "http://" + srv.Listener.Addr().String()})
	srv.Config.Handler = v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := client.ClaimsFromContext(r.Context())
		w.Write([]byte(c.UserID + " " + c.JKT))
	}))
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

func get(t *testing.T, hc *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := hc.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestClientDPoPSessiond: against a real sessiond, a Client with a key
// logs in bound to it (token type DPoP, cnf.jkt its thumbprint), refreshes,
// lists its sessions, and a service behind Verifier.Middleware accepts its
// HTTPClient's requests. A copy of its refresh token used with another key,
// or with none, is refused with invalid_dpop_proof, and the owner's session
// goes on; its bound access token as Bearer is refused.
func TestClientDPoPSessiond(t *testing.T) {
	s := startSessiond(t, time.Minute)
	ctx := context.Background()
	notes := notesService(t, s.jwksURL())
	key := dpop.NewKey()
	c := client.New(s.srv.URL, &client.Options{DPoP: key, TokenOrigins: []string{notes.URL}})
	if _, err := c.Signup(ctx, "bound@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	tok, err := c.Login(ctx, "bound@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" {
		t.Fatalf("login with a key: got token type %q, want DPoP", tok.TokenType)
	}
	v := newTestVerifier(t, s.jwksURL(), &client.VerifierOptions{PublicURL: "https://notes.test"})
	if _, err := v.Verify(ctx, tok.AccessToken); !errors.Is(err, client.ErrDPoP) {
		t.Fatalf("Verify of the bound token alone: got %v, want ErrDPoP", err)
	}
	req := httptest.NewRequest("GET", "https://notes.test/notes", nil)
	proof, err := key.Proof(dpop.Claims{Method: "GET", URL: "https://notes.test/notes", AccessToken: tok.AccessToken})
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "DPoP "+tok.AccessToken)
	req.Header.Set(dpop.Header, proof)
	claims, err := v.VerifyRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	if claims.JKT != key.Thumbprint() {
		t.Fatalf("the access token's cnf.jkt: got %q, want the key's thumbprint %q", claims.JKT, key.Thumbprint())
	}

	refreshed, err := c.Refresh(ctx)
	if err != nil {
		t.Fatalf("refresh with the key: %v", err)
	}
	if refreshed.TokenType != "DPoP" || refreshed.RefreshToken == tok.RefreshToken {
		t.Fatalf("refresh: got type %q, RT rotated %v; want DPoP and a new RT", refreshed.TokenType, refreshed.RefreshToken != tok.RefreshToken)
	}
	ss, err := c.Sessions(ctx)
	if err != nil {
		t.Fatalf("sessions with the bound token: %v", err)
	}
	if len(ss) != 1 || !ss[0].Current || ss[0].SessionID != tok.SessionID {
		t.Fatalf("got sessions %+v, want this one", ss)
	}
	hc := c.HTTPClient()
	for i := range 2 {
		if status, body := get(t, hc, notes.URL+"/notes"); status != 200 || body != claims.UserID+" "+key.Thumbprint() {
			t.Fatalf("notes, request %d: got %d %q, want 200 with the user and the key", i+1, status, body)
		}
	}

	// The bound access token alone, as Bearer, is worth nothing.
	for _, url := range []string{s.srv.URL + "/v1/me", notes.URL + "/notes"} {
		req, _ := http.NewRequest("GET", url, nil)
		req.Header.Set("Authorization", "Bearer "+c.Tokens().AccessToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 {
			t.Fatalf("%s with the bound token as Bearer: got %d, want 401", url, resp.StatusCode)
		}
	}

	// A copied refresh token: another key's proof, or none.
	for _, thiefKey := range []*dpop.Key{dpop.NewKey(), nil} {
		thief := client.New(s.srv.URL, &client.Options{DPoP: thiefKey})
		thief.Resume(c.Tokens().RefreshToken)
		var e *client.Error
		if _, err := thief.Refresh(ctx); !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_dpop_proof" {
			t.Fatalf("the RT with key %v: got %v, want 401 invalid_dpop_proof", thiefKey != nil, err)
		}
	}
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatalf("the owner after the thieves: %v", err)
	}
	if status, _ := get(t, hc, notes.URL+"/notes"); status != 200 {
		t.Fatalf("notes after the thieves: got %d, want 200", status)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("logout with the key: %v", err)
	}
	if _, err := c.Sessions(ctx); !errors.Is(err, client.ErrNoSession) {
		t.Fatalf("after logout: got %v, want %v", err, client.ErrNoSession)
	}
}

// TestClientDPoPSessiondSingleFlight: with a key, 20 concurrent requests
// with an expired bound access token cause one refresh, and all succeed.
func TestClientDPoPSessiondSingleFlight(t *testing.T) {
	s := startSessiond(t, 2*time.Second)
	s.delayRefresh = 100 * time.Millisecond
	c := loggedIn(t, s, "flight-dpop@example.com", &client.Options{DPoP: dpop.NewKey()})
	if c.Tokens().TokenType != "DPoP" {
		t.Fatalf("got token type %q, want DPoP", c.Tokens().TokenType)
	}
	time.Sleep(time.Until(c.Tokens().AccessExpiresAt))
	s.refreshes.Store(0)
	hc := c.HTTPClient()
	getAllOK(t, hc, s.srv.URL+"/v1/me", 20)
	if got := s.refreshes.Load(); got != 1 {
		t.Fatalf("refresh calls: got %d, want 1", got)
	}
}

// countingTransport counts the requests it carries by path.
type countingTransport struct {
	mu    sync.Mutex
	paths map[string]int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.paths[r.URL.Path]++
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) count(path string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.paths[path]
}

// TestClientDPoPSessiondNonce: with server nonces on, the first login is
// refused with use_dpop_nonce and retried once with the nonce; every later
// call carries the nonce the last answer gave and goes through at once.
func TestClientDPoPSessiondNonce(t *testing.T) {
	s := startSessiond(t, time.Minute, func(c *app.Config) { c.DPoPNonce = true })
	ctx := context.Background()
	ct := &countingTransport{paths: map[string]int{}}
	c := client.New(s.srv.URL, &client.Options{DPoP: dpop.NewKey(), HTTPClient: &http.Client{Transport: ct}})
	if _, err := c.Signup(ctx, "nonce@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	if tok, err := c.Login(ctx, "nonce@example.com", testPassword); err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("login: got %+v, %v; want DPoP tokens", tok, err)
	}
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatalf("refresh: %v", err)
	}
	if _, err := c.Sessions(ctx); err != nil {
		t.Fatalf("sessions: %v", err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatalf("logout: %v", err)
	}
	for path, want := range map[string]int{"/v1/login": 2, "/v1/refresh": 1, "/v1/sessions": 1, "/v1/logout": 1} {
		if got := ct.count(path); got != want {
			t.Errorf("%s: got %d requests, want %d", path, got, want)
		}
	}
}

// TestClientDPoPSessiondRequired: a sessiond that requires DPoP logs in a
// Client with a key and refuses one without.
func TestClientDPoPSessiondRequired(t *testing.T) {
	s := startSessiond(t, time.Minute, func(c *app.Config) { c.DPoP = string(sessiond.DPoPRequired) })
	ctx := context.Background()
	c := client.New(s.srv.URL, nil)
	if _, err := c.Signup(ctx, "required@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	var e *client.Error
	if _, err := c.Login(ctx, "required@example.com", testPassword); !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_dpop_proof" {
		t.Fatalf("login without a key: got %v, want 401 invalid_dpop_proof", err)
	}
	c = client.New(s.srv.URL, &client.Options{DPoP: edDPoPKey(t)})
	if tok, err := c.Login(ctx, "required@example.com", testPassword); err != nil || tok.TokenType != "DPoP" {
		t.Fatalf("login with an Ed25519 key: got %+v, %v; want DPoP tokens", tok, err)
	}
	if _, err := c.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
}

// TestClientDPoPSessiondOff: a sessiond with DPoP off answers a Client with
// a key with Bearer tokens, and the Client goes on with them: refreshes
// (with proofs, which an unbound session does not need) and Bearer calls.
func TestClientDPoPSessiondOff(t *testing.T) {
	s := startSessiond(t, time.Minute, func(c *app.Config) { c.DPoP = string(sessiond.DPoPOff) })
	ctx := context.Background()
	c := loggedIn(t, s, "off@example.com", &client.Options{DPoP: dpop.NewKey()})
	if typ := c.Tokens().TokenType; typ != "Bearer" {
		t.Fatalf("login: got token type %q, want Bearer", typ)
	}
	if tok, err := c.Refresh(ctx); err != nil || tok.TokenType != "Bearer" {
		t.Fatalf("refresh: got %+v, %v; want Bearer tokens", tok, err)
	}
	if _, err := c.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
}
