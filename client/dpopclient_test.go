package client_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/dpop"
)

// dpopAuthority is a small stand-in for sessiond's token endpoints that
// binds sessions as RFC 9449 says, checking each proof with package dpop:
// enough to see what the Client sends before a real sessiond can bind.
// Its access tokens are real, signed with the jwksServer's key k1, so a
// Verifier accepts them.
type dpopAuthority struct {
	j   *jwksServer
	srv *httptest.Server
	ttl time.Duration

	mu       sync.Mutex
	nonce    string            // when set, proofs must carry it; every answer gives it
	sessions map[string]string // RT → the jkt it is bound to ("" unbound)
	ats      map[string]string // AT → its jkt
	jtis     map[[32]byte]bool
	seen     []seenProof
	// bindLogin false answers login as an unbound Bearer session even with a proof.
	bindLogin bool

	refreshes atomic.Int64
}

type seenProof struct {
	method, path, auth, thumbprint, nonce string
}

func newDPoPAuthority(t *testing.T, ttl time.Duration) *dpopAuthority {
	t.Helper()
	a := &dpopAuthority{j: newJWKSServer(t), ttl: ttl, sessions: map[string]string{}, ats: map[string]string{},
		jtis: map[[32]byte]bool{}, bindLogin: true}
	a.srv = httptest.NewServer(http.HandlerFunc(a.serve))
	t.Cleanup(a.srv.Close)
	return a
}

func (a *dpopAuthority) setNonce(n string) {
	a.mu.Lock()
	a.nonce = n
	a.mu.Unlock()
}

func (a *dpopAuthority) proofs() []seenProof {
	a.mu.Lock()
	defer a.mu.Unlock()
	return append([]seenProof(nil), a.seen...)
}

func problem(w http.ResponseWriter, status int, code string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]any{"type": "urn:sessiond:problem:" + code, "status": status, "code": code, "detail": code})
}

// proof checks r's proof, if any, for the token at ("" for none) and
// returns its thumbprint ("" without a proof); ok false means it answered.
func (a *dpopAuthority) proof(w http.ResponseWriter, r *http.Request, at string) (thumb string, ok bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.nonce != "" {
		w.Header().Set(dpop.NonceHeader, a.nonce)
	}
	p, err := dpop.FromRequest(r)
	if err != nil {
		problem(w, 401, "invalid_dpop_proof")
		return "", false
	}
	if p == "" {
		return "", true
	}
	req := dpop.Request{Method: r.Method, URL: a.srv.URL + r.URL.Path, AccessToken: at, Now: time.Now()}
	if a.nonce != "" {
		n := a.nonce
		req.Nonce = func(s string) bool { return s == n }
	}
	got, err := dpop.Verify(p, req)
	if errors.Is(err, dpop.ErrUseNonce) {
		problem(w, 401, "use_dpop_nonce")
		return "", false
	}
	if err != nil || a.jtis[got.ReplayKey()] {
		problem(w, 401, "invalid_dpop_proof")
		return "", false
	}
	a.jtis[got.ReplayKey()] = true
	a.seen = append(a.seen, seenProof{r.Method, r.URL.Path, r.Header.Get("Authorization"), got.Thumbprint, got.Nonce})
	return got.Thumbprint, true
}

func (a *dpopAuthority) tokens(w http.ResponseWriter, jkt string) {
	now := time.Now()
	claims := goodClaims(now)
	claims["exp"] = now.Add(a.ttl).Unix()
	var jti [16]byte
	rand.Read(jti[:])
	claims["jti"] = base64.RawURLEncoding.EncodeToString(jti[:])
	typ := "Bearer"
	if jkt != "" {
		claims["cnf"] = map[string]string{"jkt": jkt}
		typ = "DPoP"
	}
	at := sign(a.j.key("k1"), goodHeader(), claims)
	rand.Read(jti[:])
	rt := base64.RawURLEncoding.EncodeToString(jti[:])
	a.mu.Lock()
	a.sessions[rt], a.ats[at] = jkt, jkt
	a.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"access_token": at, "token_type": typ, "expires_in": int(a.ttl / time.Second),
		"refresh_token": rt, "refresh_expires_in": 3600, "session_id": "session-1"})
}

func (a *dpopAuthority) serve(w http.ResponseWriter, r *http.Request) {
	var body struct {
		RefreshToken string `json:"refresh_token"`
	}
	json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&body)
	switch r.URL.Path {
	case "/v1/login":
		thumb, ok := a.proof(w, r, "")
		if !ok {
			return
		}
		if !a.bindLogin {
			thumb = ""
		}
		a.tokens(w, thumb)
	case "/v1/refresh", "/v1/logout":
		if r.URL.Path == "/v1/refresh" {
			a.refreshes.Add(1)
		}
		thumb, ok := a.proof(w, r, "")
		if !ok {
			return
		}
		a.mu.Lock()
		jkt, known := a.sessions[body.RefreshToken]
		if known && jkt == thumb || known && jkt == "" {
			delete(a.sessions, body.RefreshToken)
		}
		a.mu.Unlock()
		switch {
		case !known:
			problem(w, 401, "invalid_refresh_token")
		case jkt != "" && thumb != jkt:
			problem(w, 401, "invalid_dpop_proof")
		case r.URL.Path == "/v1/logout":
			w.WriteHeader(204)
		default:
			a.tokens(w, jkt)
		}
	default: // an endpoint that takes the access token
		scheme, at, _ := strings.Cut(r.Header.Get("Authorization"), " ")
		a.mu.Lock()
		jkt, known := a.ats[at]
		a.mu.Unlock()
		if !known {
			problem(w, 401, "invalid_token")
			return
		}
		thumb, ok := a.proof(w, r, at)
		switch {
		case !ok:
		case jkt == "" && scheme == "Bearer", jkt != "" && scheme == "DPoP" && thumb == jkt:
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(`{"sessions": []}`))
		case jkt != "":
			problem(w, 401, "invalid_dpop_proof")
		default:
			problem(w, 401, "invalid_token")
		}
	}
}

// TestClientDPoP: with a key, Login, Refresh, Sessions, RevokeSession,
// LogoutAll and Logout each send one fresh proof by it for their own
// method and URL, those that present the access token as "DPoP" with its
// hash; a notes service behind Verifier.Middleware accepts the Transport's
// requests. The authority checks every proof and refuses a replay.
func TestClientDPoP(t *testing.T) {
	a := newDPoPAuthority(t, time.Minute)
	key := dpop.NewKey()
	notes := httptest.NewUnstartedServer(nil)
	notesURL := "http://" + notes.Listener.Addr().String()
	v := newTestVerifier(t, a.j.srv.URL, &client.VerifierOptions{PublicURL: notesURL})
	notes.Config.Handler = v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := client.ClaimsFromContext(r.Context())
		body, _ := io.ReadAll(r.Body)
		w.Write([]byte(c.JKT + " " + string(body)))
	}))
	notes.Start()
	t.Cleanup(notes.Close)
	ctx := context.Background()
	c := client.New(a.srv.URL, &client.Options{DPoP: key, TokenOrigins: []string{notes.URL}})
	tok, err := c.Login(ctx, "a@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "DPoP" {
		t.Fatalf("login: got token type %q, want DPoP", tok.TokenType)
	}
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeSession(ctx, "s2"); err != nil {
		t.Fatal(err)
	}

	hc := c.HTTPClient()
	for i := range 3 { // a fresh proof each time: the Verifier refuses a replay
		resp, err := hc.Post(notes.URL+"/notes", "text/plain", strings.NewReader("hello"))
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(got) != key.Thumbprint()+" hello" {
			t.Fatalf("notes, request %d: got %d %q, want 200 and the key's thumbprint", i+1, resp.StatusCode, got)
		}
	}

	at := c.Tokens().AccessToken
	if err := c.LogoutAll(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, "a@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}

	want := []struct{ method, path, scheme string }{
		{"POST", "/v1/login", ""}, {"POST", "/v1/refresh", ""}, {"GET", "/v1/sessions", "DPoP"},
		{"DELETE", "/v1/sessions/s2", "DPoP"}, {"POST", "/v1/logout-all", "DPoP"}, {"POST", "/v1/login", ""}, {"POST", "/v1/logout", ""},
	}
	got := a.proofs()
	if len(got) != len(want) {
		t.Fatalf("got %d proofs %+v, want %d", len(got), got, len(want))
	}
	for i, w := range want {
		g := got[i]
		scheme, _, _ := strings.Cut(g.auth, " ")
		if g.method != w.method || g.path != w.path || scheme != w.scheme || g.thumbprint != key.Thumbprint() {
			t.Errorf("proof %d: got %s %s with Authorization scheme %q by %s; want %s %s, %q, by the Client's key",
				i+1, g.method, g.path, scheme, g.thumbprint, w.method, w.path, w.scheme)
		}
	}
	if got[4].auth != "DPoP "+at {
		t.Errorf("logout-all: got Authorization %q, want the bound access token as DPoP", got[4].auth)
	}
}

// TestClientDPoPNonce: an answer that asks for a nonce is followed by one
// more try with it, body and all; a nonce an answer gives is used from
// then on; a server that keeps asking gets no second retry.
func TestClientDPoPNonce(t *testing.T) {
	a := newDPoPAuthority(t, time.Minute)
	a.setNonce("n1")
	ctx := context.Background()
	c := client.New(a.srv.URL, &client.Options{DPoP: dpop.NewKey()})
	if _, err := c.Login(ctx, "a@example.com", testPassword); err != nil {
		t.Fatalf("login with a nonce required: %v", err)
	}
	if _, err := c.Sessions(ctx); err != nil {
		t.Fatalf("sessions: %v", err)
	}
	a.setNonce("n2") // the server moved on: the next call is refused once
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatalf("refresh after the nonce changed: %v", err)
	}
	var nonces []string
	for _, p := range a.proofs() {
		nonces = append(nonces, p.path+":"+p.nonce)
	}
	if want := "/v1/login:n1 /v1/sessions:n1 /v1/refresh:n2"; strings.Join(nonces, " ") != want {
		t.Fatalf("accepted proofs: got %q, want %q", nonces, want)
	}

	// A service that asks for a nonce every time: one retry, then its answer.
	var calls atomic.Int64
	var bodies sync.Map
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := calls.Add(1)
		b, _ := io.ReadAll(r.Body)
		bodies.Store(n, string(b)+" "+r.Header.Get("DPoP"))
		w.Header().Set("DPoP-Nonce", "api-"+string(rune('0'+n)))
		w.Header().Set("WWW-Authenticate", dpop.Challenge("use_dpop_nonce", ""))
		w.WriteHeader(401)
	}))
	defer api.Close()
	c = client.New(a.srv.URL, &client.Options{DPoP: dpop.NewKey(), TokenOrigins: []string{api.URL}})
	a.setNonce("")
	if _, err := c.Login(ctx, "a@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	refreshes := a.refreshes.Load()
	resp, err := c.HTTPClient().Post(api.URL, "text/plain", strings.NewReader("body"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	b1, _ := bodies.Load(int64(1))
	b2, _ := bodies.Load(int64(2))
	if resp.StatusCode != 401 || calls.Load() != 2 || a.refreshes.Load() != refreshes {
		t.Fatalf("got %d after %d calls and %d refreshes, want 401 after 2 calls and no refresh", resp.StatusCode, calls.Load(), a.refreshes.Load()-refreshes)
	}
	if !strings.HasPrefix(b2.(string), "body ") || b1.(string) == b2.(string) {
		t.Fatalf("the retry: got %q after %q, want the same body with a new proof", b2, b1)
	}
	if p := decodeProof(t, strings.TrimPrefix(b2.(string), "body ")); p["nonce"] != "api-1" {
		t.Fatalf("the retry's proof: got nonce %v, want api-1", p["nonce"])
	}
}

func decodeProof(t *testing.T, proof string) map[string]any {
	t.Helper()
	parts := strings.Split(proof, ".")
	if len(parts) != 3 {
		t.Fatalf("proof %q is not a JWS", proof)
	}
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestClientDPoPRefusedProofKeepsSession: a refresh whose proof sessiond
// refuses (another key's) leaves the Client's tokens alone, since the
// session survives; the RT copied to a Client of another key is refused.
func TestClientDPoPRefusedProofKeepsSession(t *testing.T) {
	a := newDPoPAuthority(t, time.Minute)
	ctx := context.Background()
	c := client.New(a.srv.URL, &client.Options{DPoP: dpop.NewKey()})
	if _, err := c.Login(ctx, "a@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	thief := client.New(a.srv.URL, &client.Options{DPoP: dpop.NewKey()})
	thief.Resume(c.Tokens().RefreshToken)
	var e *client.Error
	if _, err := thief.Refresh(ctx); !errors.As(err, &e) || e.Status != 401 || e.Code != "invalid_dpop_proof" {
		t.Fatalf("refresh with another key: got %v, want 401 invalid_dpop_proof", err)
	}
	if thief.Tokens().RefreshToken == "" {
		t.Fatal("after a refused proof the Client forgot its RT, want it kept: the session survives")
	}
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatalf("the key's owner, after the thief's try: %v", err)
	}
}

// TestClientDPoPUnboundServer: a server that answers a login with a proof
// by Bearer tokens gets its access token as Bearer, without proofs.
func TestClientDPoPUnboundServer(t *testing.T) {
	a := newDPoPAuthority(t, time.Minute)
	a.bindLogin = false
	ctx := context.Background()
	c := client.New(a.srv.URL, &client.Options{DPoP: dpop.NewKey()})
	if tok, err := c.Login(ctx, "a@example.com", testPassword); err != nil || tok.TokenType != "Bearer" {
		t.Fatalf("login: got %+v, %v; want Bearer tokens", tok, err)
	}
	if _, err := c.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
	for _, p := range a.proofs() {
		if p.path == "/v1/sessions" {
			t.Fatalf("got a proof with the Bearer token %q, want none", p.auth)
		}
	}
}

// TestClientWithoutKeySendsNoProof: a Client without a key sends no DPoP
// header at all.
func TestClientWithoutKeySendsNoProof(t *testing.T) {
	a := newDPoPAuthority(t, time.Minute)
	ctx := context.Background()
	c := client.New(a.srv.URL, nil)
	if tok, err := c.Login(ctx, "a@example.com", testPassword); err != nil || tok.TokenType != "Bearer" {
		t.Fatalf("login: got %+v, %v; want Bearer tokens", tok, err)
	}
	if _, err := c.Refresh(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Sessions(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Logout(ctx); err != nil {
		t.Fatal(err)
	}
	if p := a.proofs(); len(p) != 0 {
		t.Fatalf("got proofs %+v, want none", p)
	}
}

// TestClientDPoPSingleFlight: 20 concurrent requests with an expired bound
// AT cause one refresh, and each request carries its own proof.
func TestClientDPoPSingleFlight(t *testing.T) {
	a := newDPoPAuthority(t, 2*time.Second)
	c := client.New(a.srv.URL, &client.Options{DPoP: dpop.NewKey()})
	if _, err := c.Login(context.Background(), "a@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Until(c.Tokens().AccessExpiresAt))
	hc := c.HTTPClient()
	getAllOK(t, hc, a.srv.URL+"/v1/me", 20)
	if n := a.refreshes.Load(); n != 1 {
		t.Fatalf("refreshes: got %d, want 1", n)
	}
	me := 0
	for _, p := range a.proofs() {
		if p.path == "/v1/me" {
			me++
		}
	}
	if me != 20 {
		t.Fatalf("accepted proofs for /v1/me: got %d, want 20 (each request its own)", me)
	}
}
