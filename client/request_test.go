package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"errors"
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

// testPublicURL is the URL the protected service is reached at in these tests.
const testPublicURL = "https://notes.example.test"

// boundClaims are goodClaims with the cnf of key: a token bound to it.
func boundClaims(now time.Time, key *dpop.Key) map[string]any {
	c := goodClaims(now)
	c["cnf"] = map[string]string{"jkt": key.Thumbprint()}
	return c
}

func proof(t testing.TB, key *dpop.Key, method, url, at string, now time.Time) string {
	t.Helper()
	p, err := key.Proof(dpop.Claims{Method: method, URL: url, AccessToken: at, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func edDPoPKey(t testing.TB) *dpop.Key {
	t.Helper()
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	k, err := dpop.KeyFrom(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// request builds a request to target (a path, as a server sees it) with
// the given Authorization and DPoP headers ("" for none).
func request(method, target, auth string, proofs ...string) *http.Request {
	r := httptest.NewRequest(method, target, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	for _, p := range proofs {
		r.Header.Add("DPoP", p)
	}
	return r
}

// TestVerifyRequest: a bound token is accepted only as DPoP with a proof
// by its key for this very request and token; an unbound one only as
// Bearer. Every refusal has the reason that names it.
func TestVerifyRequest(t *testing.T) {
	j := newJWKSServer(t)
	now := time.Now()
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{PublicURL: testPublicURL + "/",
		Now: func() time.Time { return now }, MinRefetchInterval: time.Hour})
	k1 := j.key("k1")
	key, other := dpop.NewKey(), edDPoPKey(t)
	bound := sign(k1, goodHeader(), boundClaims(now, key))
	boundEd := sign(k1, goodHeader(), boundClaims(now, other))
	otherBound := sign(k1, goodHeader(), with(boundClaims(now, key), "jti", "j2"))
	unbound := sign(k1, goodHeader(), goodClaims(now))
	expired := sign(k1, goodHeader(), with(with(boundClaims(now, key), "iat", now.Add(-time.Hour).Unix()), "exp", now.Add(-time.Minute).Unix()))
	notes := testPublicURL + "/notes"

	tests := []struct {
		name string
		req  func() *http.Request
		want error
	}{
		{"bound, DPoP with a good proof", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", notes, bound, now))
		}, nil},
		{"bound to an Ed25519 key", func() *http.Request {
			return request("GET", "/notes", "DPoP "+boundEd, proof(t, other, "GET", notes, boundEd, now))
		}, nil},
		{"lower-case scheme", func() *http.Request {
			return request("GET", "/notes", "dpop "+bound, proof(t, key, "GET", notes, bound, now))
		}, nil},
		{"query ignored", func() *http.Request {
			return request("GET", "/notes?page=2", "DPoP "+bound, proof(t, key, "GET", notes+"?page=3", bound, now))
		}, nil},
		{"escaped path", func() *http.Request {
			return request("DELETE", "/notes/a%2Fb", "DPoP "+bound, proof(t, key, "DELETE", notes+"/a%2Fb", bound, now))
		}, nil},
		{"Host header differs from the public URL", func() *http.Request {
			r := request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", notes, bound, now))
			r.Host = "evil.example"
			return r
		}, nil},
		{"proof for the Host header instead of the public URL", func() *http.Request {
			r := request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", "http://evil.example/notes", bound, now))
			r.Host = "evil.example"
			return r
		}, client.ErrDPoP},
		{"unbound, Bearer", func() *http.Request { return request("GET", "/notes", "Bearer "+unbound) }, nil},
		{"unbound, Bearer, with a stray proof", func() *http.Request {
			return request("GET", "/notes", "Bearer "+unbound, proof(t, key, "GET", notes, unbound, now))
		}, nil},

		{"bound, as Bearer", func() *http.Request { return request("GET", "/notes", "Bearer "+bound) }, client.ErrDPoP},
		{"bound, as Bearer with a good proof", func() *http.Request {
			return request("GET", "/notes", "Bearer "+bound, proof(t, key, "GET", notes, bound, now))
		}, client.ErrDPoP},
		{"bound, no proof", func() *http.Request { return request("GET", "/notes", "DPoP "+bound) }, client.ErrDPoP},
		{"bound, empty proof", func() *http.Request { return request("GET", "/notes", "DPoP "+bound, "") }, client.ErrDPoP},
		{"bound, two proofs", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", notes, bound, now), proof(t, key, "GET", notes, bound, now))
		}, client.ErrDPoP},
		{"proof by another key", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, other, "GET", notes, bound, now))
		}, client.ErrDPoP},
		{"ath of another token", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", notes, otherBound, now))
		}, client.ErrDPoP},
		{"no ath", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", notes, "", now))
		}, client.ErrDPoP},
		{"htu of another origin", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", "https://other.example.test/notes", bound, now))
		}, client.ErrDPoP},
		{"htu of another path", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", testPublicURL+"/admin", bound, now))
		}, client.ErrDPoP},
		{"htu over http", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", "http://notes.example.test/notes", bound, now))
		}, client.ErrDPoP},
		{"wrong htm", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "POST", notes, bound, now))
		}, client.ErrDPoP},
		{"proof two minutes old", func() *http.Request {
			return request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", notes, bound, now.Add(-2*time.Minute)))
		}, client.ErrDPoP},
		{"proof not a JWS", func() *http.Request { return request("GET", "/notes", "DPoP "+bound, "a.b") }, client.ErrDPoP},
		{"unbound, as DPoP with a proof", func() *http.Request {
			return request("GET", "/notes", "DPoP "+unbound, proof(t, key, "GET", notes, unbound, now))
		}, client.ErrDPoP},
		{"expired bound token with a good proof", func() *http.Request {
			return request("GET", "/notes", "DPoP "+expired, proof(t, key, "GET", notes, expired, now))
		}, client.ErrExpired},
		{"cnf without jkt", func() *http.Request {
			tok := sign(k1, goodHeader(), with(goodClaims(now), "cnf", map[string]string{"x5t#S256": "abc"}))
			return request("GET", "/notes", "DPoP "+tok, proof(t, key, "GET", notes, tok, now))
		}, client.ErrMalformed},
		{"cnf not an object", func() *http.Request {
			return request("GET", "/notes", "Bearer "+sign(k1, goodHeader(), with(goodClaims(now), "cnf", "jkt")))
		}, client.ErrMalformed},
		{"no Authorization", func() *http.Request { return request("GET", "/notes", "") }, client.ErrNoToken},
		{"Basic", func() *http.Request { return request("GET", "/notes", "Basic YTpi") }, client.ErrNoToken},
		{"DPoP without a token", func() *http.Request { return request("GET", "/notes", "DPoP ") }, client.ErrNoToken},
		{"two Authorization headers", func() *http.Request {
			r := request("GET", "/notes", "Bearer "+unbound)
			r.Header.Add("Authorization", "Bearer "+unbound)
			return r
		}, client.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.VerifyRequest(tt.req())
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if c.UserID != "user-1" {
					t.Fatalf("got claims %+v, want user-1's", c)
				}
				return
			}
			var ve *client.VerifyError
			if !errors.As(err, &ve) || ve.Reason != tt.want || c != nil {
				t.Fatalf("got %v, %T %v; want no claims and a *client.VerifyError with reason %v", c, err, err, tt.want)
			}
		})
	}
}

func with(m map[string]any, k string, val any) map[string]any {
	m[k] = val
	return m
}

// TestVerifyRequestClaims: a bound token's claims name its key, and a
// proof refused by package dpop is wrapped so that errors.Is sees both.
func TestVerifyRequestClaims(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{PublicURL: testPublicURL})
	now := time.Now()
	key := dpop.NewKey()
	bound := sign(j.key("k1"), goodHeader(), boundClaims(now, key))
	c, err := v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", testPublicURL+"/notes", bound, now)))
	if err != nil {
		t.Fatal(err)
	}
	if !c.Bound() || c.JKT != key.Thumbprint() {
		t.Fatalf("got JKT %q (bound %v), want %q", c.JKT, c.Bound(), key.Thumbprint())
	}
	c, err = v.VerifyRequest(request("GET", "/notes", "Bearer "+sign(j.key("k1"), goodHeader(), goodClaims(now))))
	if err != nil || c.Bound() || c.JKT != "" {
		t.Fatalf("unbound: got %+v, %v; want claims without JKT", c, err)
	}
	_, err = v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, proof(t, key, "PUT", testPublicURL+"/notes", bound, now)))
	if !errors.Is(err, client.ErrDPoP) || !errors.Is(err, dpop.ErrInvalid) {
		t.Fatalf("wrong htm: got %v, want both %v and %v", err, client.ErrDPoP, dpop.ErrInvalid)
	}
}

// TestVerifyRequestReplay: a proof is accepted once; the same proof again
// is refused, also when many requests carry it at once, and a fresh proof
// of the same key and token still passes.
func TestVerifyRequestReplay(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{PublicURL: testPublicURL})
	now := time.Now()
	key := dpop.NewKey()
	bound := sign(j.key("k1"), goodHeader(), boundClaims(now, key))
	url := testPublicURL + "/notes"
	p := proof(t, key, "GET", url, bound, now)
	if _, err := v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, p)); err != nil {
		t.Fatalf("first use: %v", err)
	}
	if _, err := v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, p)); !errors.Is(err, client.ErrDPoP) {
		t.Fatalf("second use: got %v, want %v", err, client.ErrDPoP)
	}
	if _, err := v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", url, bound, now))); err != nil {
		t.Fatalf("a fresh proof: %v", err)
	}

	p = proof(t, key, "GET", url, bound, now)
	var accepted, refused atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 20 {
		wg.Go(func() {
			<-start
			_, err := v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, p))
			switch {
			case err == nil:
				accepted.Add(1)
			case errors.Is(err, client.ErrDPoP):
				refused.Add(1)
			default:
				t.Errorf("got %v, want none or %v", err, client.ErrDPoP)
			}
		})
	}
	close(start)
	wg.Wait()
	if accepted.Load() != 1 || refused.Load() != 19 {
		t.Fatalf("one proof in 20 concurrent requests: %d accepted, %d refused; want 1 and 19", accepted.Load(), refused.Load())
	}
}

// TestVerifyRequestReplayCacheBounded: with room for three proofs, a
// fourth fresh one is refused while the three are unexpired, rather than
// one of them forgotten; once they expire there is room again.
func TestVerifyRequestReplayCacheBounded(t *testing.T) {
	j := newJWKSServer(t)
	var clock atomic.Pointer[time.Time]
	start := time.Now()
	clock.Store(&start)
	now := func() time.Time { return *clock.Load() }
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{PublicURL: testPublicURL, DPoPReplayCacheSize: 3, Now: now,
		MaxLifetime: time.Hour})
	key := dpop.NewKey()
	claims := boundClaims(start, key)
	claims["exp"] = start.Add(time.Hour).Unix()
	bound := sign(j.key("k1"), goodHeader(), claims)
	send := func() error {
		_, err := v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", testPublicURL+"/notes", bound, now())))
		return err
	}
	for i := range 3 {
		if err := send(); err != nil {
			t.Fatalf("proof %d: %v", i+1, err)
		}
	}
	if err := send(); !errors.Is(err, client.ErrDPoP) {
		t.Fatalf("a fourth proof with the cache full: got %v, want %v", err, client.ErrDPoP)
	}
	later := start.Add(dpop.Window + dpop.Leeway + time.Second)
	clock.Store(&later)
	if err := send(); err != nil {
		t.Fatalf("after the first three expired: %v", err)
	}
}

// TestVerifyRequestWithoutPublicURL: a Verifier that does not know its own
// URL refuses bound tokens, whatever Host says, and still takes unbound ones.
func TestVerifyRequestWithoutPublicURL(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, nil)
	now := time.Now()
	key := dpop.NewKey()
	bound := sign(j.key("k1"), goodHeader(), boundClaims(now, key))
	r := request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", "http://example.com/notes", bound, now))
	_, err := v.VerifyRequest(r)
	if !errors.Is(err, client.ErrDPoP) || !strings.Contains(err.Error(), "PublicURL") {
		t.Fatalf("bound token: got %v, want %v naming PublicURL", err, client.ErrDPoP)
	}
	if _, err := v.VerifyRequest(request("GET", "/notes", "Bearer "+sign(j.key("k1"), goodHeader(), goodClaims(now)))); err != nil {
		t.Fatalf("unbound token: %v", err)
	}
}

// TestNewVerifierPublicURL: a PublicURL that is not an absolute http(s) URL
// without query stops the service at start.
func TestNewVerifierPublicURL(t *testing.T) {
	j := newJWKSServer(t)
	for _, u := range []string{"notes.example.test", "/notes", "ftp://notes.example.test", "https://notes.example.test/?a=1",
		"https://notes.example.test/#x", "https://user@notes.example.test", "https://"} {
		t.Run(u, func(t *testing.T) {
			if v, err := client.NewVerifier(context.Background(), j.srv.URL, testIssuer, testAudience, &client.VerifierOptions{PublicURL: u}); err == nil {
				v.Close()
				t.Fatalf("got no error, want one")
			}
		})
	}
	for _, u := range []string{"https://notes.example.test", "http://127.0.0.1:8081/", "https://example.test/notes-api"} {
		v, err := client.NewVerifier(context.Background(), j.srv.URL, testIssuer, testAudience, &client.VerifierOptions{PublicURL: u})
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		v.Close()
	}
}

// TestVerifyRequestPathPrefix: behind a proxy that strips a prefix, the
// PublicURL carries it, and the proof's htu is the URL the client used.
func TestVerifyRequestPathPrefix(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{PublicURL: "https://example.test/notes-api"})
	now := time.Now()
	key := dpop.NewKey()
	bound := sign(j.key("k1"), goodHeader(), boundClaims(now, key))
	if _, err := v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", "https://example.test/notes-api/notes", bound, now))); err != nil {
		t.Fatal(err)
	}
	if _, err := v.VerifyRequest(request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", "https://example.test/notes", bound, now))); !errors.Is(err, client.ErrDPoP) {
		t.Fatalf("htu without the prefix: got %v, want %v", err, client.ErrDPoP)
	}
}

// TestMiddlewareDPoP: the Middleware admits a bound token with its proof,
// and answers DPoP failures with a DPoP challenge and code
// invalid_dpop_proof, a bad token sent as DPoP with a DPoP invalid_token
// challenge, and a request without a token with both schemes offered.
func TestMiddlewareDPoP(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{PublicURL: testPublicURL, MinRefetchInterval: time.Hour})
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, _ := client.ClaimsFromContext(r.Context())
		w.Write([]byte(c.UserID + " " + c.JKT))
	}))
	now := time.Now()
	key := dpop.NewKey()
	bound := sign(j.key("k1"), goodHeader(), boundClaims(now, key))
	expired := sign(j.key("k1"), goodHeader(), with(with(boundClaims(now, key), "iat", now.Add(-time.Hour).Unix()), "exp", now.Add(-time.Minute).Unix()))
	url := testPublicURL + "/notes"
	tests := []struct {
		name       string
		req        *http.Request
		status     int
		challenges []string
		code       string
	}{
		{"good", request("GET", "/notes", "DPoP "+bound, proof(t, key, "GET", url, bound, now)), 200, nil, ""},
		{"bound as Bearer", request("GET", "/notes", "Bearer "+bound), 401,
			[]string{`DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"`}, "invalid_dpop_proof"},
		{"no proof", request("GET", "/notes", "DPoP "+bound), 401,
			[]string{`DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"`}, "invalid_dpop_proof"},
		{"proof by another key", request("GET", "/notes", "DPoP "+bound, proof(t, dpop.NewKey(), "GET", url, bound, now)), 401,
			[]string{`DPoP error="invalid_dpop_proof", algs="ES256 EdDSA"`}, "invalid_dpop_proof"},
		{"expired token as DPoP", request("GET", "/notes", "DPoP "+expired, proof(t, key, "GET", url, expired, now)), 401,
			[]string{`DPoP error="invalid_token", algs="ES256 EdDSA"`}, "invalid_token"},
		{"missing", request("GET", "/notes", ""), 401, []string{`Bearer`, `DPoP algs="ES256 EdDSA"`}, "invalid_token"},
		{"garbage Bearer", request("GET", "/notes", "Bearer x.y.z"), 401, []string{`Bearer error="invalid_token"`}, "invalid_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			h.ServeHTTP(w, tt.req)
			if w.Code != tt.status {
				t.Fatalf("got status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 200 {
				if want := "user-1 " + key.Thumbprint(); w.Body.String() != want {
					t.Fatalf("got body %q, want %q", w.Body, want)
				}
				return
			}
			if got := w.Header().Values("WWW-Authenticate"); strings.Join(got, "|") != strings.Join(tt.challenges, "|") {
				t.Fatalf("got WWW-Authenticate %q, want %q", got, tt.challenges)
			}
			var p struct {
				Code   string
				Status int
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code != tt.code || p.Status != 401 {
				t.Fatalf("got problem %s, want code %s, status 401", w.Body, tt.code)
			}
		})
	}
}
