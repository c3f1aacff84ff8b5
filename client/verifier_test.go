package client_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/token"
)

// jwksServer publishes Ed25519 keys by kid and counts its fetches.
type jwksServer struct {
	mu      sync.Mutex
	keys    map[string]ed25519.PrivateKey
	fetches atomic.Int64
	srv     *httptest.Server
}

func newJWKSServer(t testing.TB) *jwksServer {
	t.Helper()
	j := &jwksServer{keys: map[string]ed25519.PrivateKey{}}
	j.addKey("k1")
	j.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		j.fetches.Add(1)
		j.mu.Lock()
		defer j.mu.Unlock()
		var doc struct {
			Keys []map[string]string `json:"keys"`
		}
		for kid, k := range j.keys {
			doc.Keys = append(doc.Keys, map[string]string{"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": kid,
				"x": base64.RawURLEncoding.EncodeToString(k.Public().(ed25519.PublicKey))})
		}
		w.Header().Set("Content-Type", "application/jwk-set+json")
		json.NewEncoder(w).Encode(doc)
	}))
	t.Cleanup(j.srv.Close)
	return j
}

func (j *jwksServer) addKey(kid string) {
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	j.mu.Lock()
	j.keys[kid] = k
	j.mu.Unlock()
}

func (j *jwksServer) key(kid string) ed25519.PrivateKey {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.keys[kid]
}

func b64json(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// sign makes a compact JWS of header and claims with key (nil: unsigned garbage).
func sign(key ed25519.PrivateKey, header, claims map[string]any) string {
	input := b64json(header) + "." + b64json(claims)
	sig := make([]byte, ed25519.SignatureSize)
	if key != nil {
		sig = ed25519.Sign(key, []byte(input))
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func goodHeader() map[string]any { return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "k1"} }

func goodClaims(now time.Time) map[string]any {
	return map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "user-1", "sid": "session-1",
		"iat": now.Unix(), "exp": now.Add(15 * time.Minute).Unix(), "jti": "j1"}
}

func newTestVerifier(t *testing.T, url string, opts *client.VerifierOptions) *client.Verifier {
	t.Helper()
	v, err := client.NewVerifier(context.Background(), url, testIssuer, testAudience, opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(v.Close)
	return v
}

// TestVerify: a good token yields its claims; every way of being bad is
// refused with the reason that names it.
func TestVerify(t *testing.T) {
	j := newJWKSServer(t)
	now := time.Now()
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{Leeway: 5 * time.Second, Now: func() time.Time { return now }, MinRefetchInterval: time.Hour})
	k1 := j.key("k1")
	with := func(m map[string]any, k string, val any) map[string]any {
		if val == nil {
			delete(m, k)
		} else {
			m[k] = val
		}
		return m
	}
	tests := []struct {
		name  string
		token string
		want  error
	}{
		{"good", sign(k1, goodHeader(), goodClaims(now)), nil},
		{"typ with media type prefix", sign(k1, with(goodHeader(), "typ", "application/at+jwt"), goodClaims(now)), nil},
		{"aud as array", sign(k1, goodHeader(), with(goodClaims(now), "aud", []string{"other", testAudience})), nil},
		{"expired within leeway", sign(k1, goodHeader(), with(goodClaims(now), "exp", now.Add(-4*time.Second).Unix())), nil},
		{"expired", sign(k1, goodHeader(), with(goodClaims(now), "exp", now.Add(-6*time.Second).Unix())), client.ErrExpired},
		{"nbf ahead", sign(k1, goodHeader(), with(goodClaims(now), "nbf", now.Add(time.Minute).Unix())), client.ErrNotYetValid},
		{"issued in the future", sign(k1, goodHeader(), with(goodClaims(now), "iat", now.Add(time.Minute).Unix())), client.ErrNotYetValid},
		{"wrong issuer", sign(k1, goodHeader(), with(goodClaims(now), "iss", "https://evil.test")), client.ErrIssuer},
		{"wrong audience", sign(k1, goodHeader(), with(goodClaims(now), "aud", "other")), client.ErrAudience},
		{"no exp", sign(k1, goodHeader(), with(goodClaims(now), "exp", nil)), client.ErrMissingClaim},
		{"no sid", sign(k1, goodHeader(), with(goodClaims(now), "sid", nil)), client.ErrMissingClaim},
		{"no sub", sign(k1, goodHeader(), with(goodClaims(now), "sub", nil)), client.ErrMissingClaim},
		{"no iat", sign(k1, goodHeader(), with(goodClaims(now), "iat", nil)), client.ErrMissingClaim},
		{"valid until 2100", sign(k1, goodHeader(), with(goodClaims(now), "exp", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix())), client.ErrLifetime},
		{"exp beyond year 9999", sign(k1, goodHeader(), with(with(goodClaims(now), "iat", 1e300), "exp", 1e300)), client.ErrMalformed},
		{"negative iat", sign(k1, goodHeader(), with(goodClaims(now), "iat", -1)), client.ErrMalformed},
		{"auth_time beyond year 9999", sign(k1, goodHeader(), with(goodClaims(now), "auth_time", 1e300)), client.ErrMalformed},
		{"amr not an array", sign(k1, goodHeader(), with(goodClaims(now), "amr", "pwd")), client.ErrMalformed},
		{"alg none", strings.Split(sign(k1, with(goodHeader(), "alg", "none"), goodClaims(now)), ".")[0] + "." + b64json(goodClaims(now)) + ".", client.ErrAlgorithm},
		{"alg HS256", sign(k1, with(goodHeader(), "alg", "HS256"), goodClaims(now)), client.ErrAlgorithm},
		{"typ JWT", sign(k1, with(goodHeader(), "typ", "JWT"), goodClaims(now)), client.ErrType},
		{"no typ", sign(k1, with(goodHeader(), "typ", nil), goodClaims(now)), client.ErrType},
		{"crit", sign(k1, with(goodHeader(), "crit", []string{"exp"}), goodClaims(now)), client.ErrMalformed},
		{"no kid", sign(k1, with(goodHeader(), "kid", nil), goodClaims(now)), client.ErrUnknownKey},
		{"unknown kid", sign(k1, with(goodHeader(), "kid", "nope"), goodClaims(now)), client.ErrUnknownKey},
		{"bad signature", sign(nil, goodHeader(), goodClaims(now)), client.ErrSignature},
		{"other key", func() string {
			_, k, _ := ed25519.GenerateKey(rand.Reader)
			return sign(k, goodHeader(), goodClaims(now))
		}(), client.ErrSignature},
		{"two parts", "a.b", client.ErrMalformed},
		{"four parts", sign(k1, goodHeader(), goodClaims(now)) + ".x", client.ErrMalformed},
		{"header not base64", "!!." + b64json(goodClaims(now)) + ".sig", client.ErrMalformed},
		{"header not an object", base64.RawURLEncoding.EncodeToString([]byte("[1]")) + ".e30.sig", client.ErrMalformed},
		{"claims not JSON", func() string {
			in := b64json(goodHeader()) + "." + base64.RawURLEncoding.EncodeToString([]byte("{nope"))
			return in + "." + base64.RawURLEncoding.EncodeToString(ed25519.Sign(k1, []byte(in)))
		}(), client.ErrMalformed},
		{"exp a string", sign(k1, goodHeader(), with(goodClaims(now), "exp", "tomorrow")), client.ErrMalformed},
		{"too long", strings.Repeat("a", 9000), client.ErrMalformed},
		{"signature too long", sign(k1, goodHeader(), goodClaims(now)) + "AAAA", client.ErrMalformed},
		{"signature too short", func() string { s := sign(k1, goodHeader(), goodClaims(now)); return s[:len(s)-4] }(), client.ErrMalformed},
		{"signature with stray bits", func() string {
			s := sign(k1, goodHeader(), goodClaims(now))
			return s[:len(s)-1] + flipLowBits(s[len(s)-1:])
		}(), client.ErrMalformed},
		{"header too long", sign(k1, with(goodHeader(), "pad", strings.Repeat("x", 1024)), goodClaims(now)), client.ErrMalformed},
		{"claims too long", sign(k1, goodHeader(), with(goodClaims(now), "pad", strings.Repeat("x", 6000))), client.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), tt.token)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("got error %v, want none", err)
				}
				if c.UserID != "user-1" || c.SessionID != "session-1" || c.KeyID != "k1" {
					t.Fatalf("got claims %+v, want user-1, session-1, k1", c)
				}
				return
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("got error %v, want %v", err, tt.want)
			}
			var ve *client.VerifyError
			if !errors.As(err, &ve) || ve.Reason != tt.want {
				t.Fatalf("got %T %v, want *client.VerifyError with reason %v", err, err, tt.want)
			}
		})
	}
}

// flipLowBits changes the last character of an unpadded base64url
// signature into one that decodes to the same bytes only in a lax decoder.
func flipLowBits(c string) string {
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	return string(alphabet[strings.Index(alphabet, c)|1])
}

// overlong is a token of the published kid k1 whose signature segment is n
// characters long: the shape that made Verify decode past its buffer.
func overlong(k1 ed25519.PrivateKey, now time.Time, n int) string {
	tok := sign(k1, goodHeader(), goodClaims(now))
	return tok[:strings.LastIndexByte(tok, '.')+1] + strings.Repeat("A", n)
}

// TestVerifyOverlongSignature: a published kid with a signature segment of
// any wrong length is refused as malformed, not a panic that would drop
// the connection of every request carrying it.
func TestVerifyOverlongSignature(t *testing.T) {
	j := newJWKSServer(t)
	now := time.Now()
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{MinRefetchInterval: time.Hour})
	for _, n := range []int{0, 85, 87, 88, 89, 90, 100, 200, 1000, 7000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			c, err := v.Verify(context.Background(), overlong(j.key("k1"), now, n))
			if !errors.Is(err, client.ErrMalformed) || c != nil {
				t.Fatalf("got %v, %v; want no claims and %v", c, err, client.ErrMalformed)
			}
		})
	}
}

// TestVerifyMaxLifetime: a token meant to live longer than MaxLifetime is
// refused even though its key signed it and it has not expired; the default
// is 24h.
func TestVerifyMaxLifetime(t *testing.T) {
	j := newJWKSServer(t)
	now := time.Now()
	claims := func(life time.Duration) map[string]any {
		c := goodClaims(now)
		c["exp"] = now.Add(life).Unix()
		return c
	}
	tests := []struct {
		name string
		max  time.Duration
		life time.Duration
		want error
	}{
		{"default, 24h", 0, 24 * time.Hour, nil},
		{"default, 24h and a second", 0, 24*time.Hour + time.Second, client.ErrLifetime},
		{"default, until 2100", 0, time.Until(time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)), client.ErrLifetime},
		{"15m, 15m", 15 * time.Minute, 15 * time.Minute, nil},
		{"15m, 16m", 15 * time.Minute, 16 * time.Minute, client.ErrLifetime},
		{"48h, 36h", 48 * time.Hour, 36 * time.Hour, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{MaxLifetime: tt.max, MinRefetchInterval: time.Hour})
			_, err := v.Verify(context.Background(), sign(j.key("k1"), goodHeader(), claims(tt.life)))
			if !errors.Is(err, tt.want) {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

// TestVerifierRefetchRateLimited: a flood of tokens with forged kids makes
// at most one JWKS fetch per MinRefetchInterval, and concurrent lookups of
// an unknown kid share one fetch.
func TestVerifierRefetchRateLimited(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{MinRefetchInterval: time.Hour})
	if got := j.fetches.Load(); got != 1 {
		t.Fatalf("fetches at start: got %d, want 1", got)
	}
	now := time.Now()
	var wg sync.WaitGroup
	for i := range 200 {
		wg.Go(func() {
			tok := sign(j.key("k1"), map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": fmt.Sprintf("forged-%d", i)}, goodClaims(now))
			if _, err := v.Verify(context.Background(), tok); !errors.Is(err, client.ErrUnknownKey) {
				t.Errorf("got %v, want %v", err, client.ErrUnknownKey)
			}
		})
	}
	wg.Wait()
	// The first forged kid may trigger no refetch at all (the start fetch is
	// recent), so zero extra fetches is fine too; more than zero is not.
	if got := j.fetches.Load(); got != 1 {
		t.Fatalf("fetches after 200 forged kids: got %d, want 1", got)
	}
}

// TestVerifierSingleFlight: concurrent tokens with a newly published kid
// cause one JWKS fetch, and all of them verify.
func TestVerifierSingleFlight(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{MinRefetchInterval: time.Nanosecond})
	j.addKey("k2")
	tok := sign(j.key("k2"), map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": "k2"}, goodClaims(time.Now()))
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			<-start
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Errorf("got %v, want no error", err)
			}
		})
	}
	close(start)
	wg.Wait()
	// One fetch at start, then one (or, if a late verifier came after the
	// first refetch finished, none: the key was known by then).
	if got := j.fetches.Load(); got != 2 {
		t.Fatalf("fetches: got %d, want 2 (start and one shared refetch)", got)
	}
}

// TestVerifierBackgroundRefresh: keys are refetched on the interval, so a
// key removed from the JWKS stops verifying without any unknown kid.
func TestVerifierBackgroundRefresh(t *testing.T) {
	j := newJWKSServer(t)
	newTestVerifier(t, j.srv.URL, &client.VerifierOptions{RefreshInterval: 20 * time.Millisecond})
	deadline := time.Now().Add(5 * time.Second)
	for j.fetches.Load() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("fetches: got %d in 5s, want at least 3 at a 20ms interval", j.fetches.Load())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestNewVerifierFailsFast: a JWKS that cannot be fetched stops the service at start.
func TestNewVerifierFailsFast(t *testing.T) {
	srv := httptest.NewServer(http.NotFoundHandler())
	defer srv.Close()
	if _, err := client.NewVerifier(context.Background(), srv.URL, testIssuer, testAudience, nil); err == nil {
		t.Fatal("got no error for a JWKS answering 404, want one")
	}
}

// TestVerifierKeyRotation: against a real sessiond, tokens signed before
// and after a key rotation both verify, with no restart of the verifier.
func TestVerifierKeyRotation(t *testing.T) {
	s := startSessiond(t, time.Minute)
	ctx := context.Background()
	v := newTestVerifier(t, s.jwksURL(), &client.VerifierOptions{MinRefetchInterval: time.Millisecond})
	c := client.New(s.srv.URL, nil)
	if _, err := c.Signup(ctx, "rotate@example.com", testPassword); err != nil {
		t.Fatal(err)
	}
	before, err := c.Login(ctx, "rotate@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cb, err := v.Verify(ctx, before.AccessToken)
	if err != nil {
		t.Fatalf("before rotation: %v", err)
	}

	// What `sessiond keys rotate` does, then the reload every instance makes.
	k, err := token.GenerateKey(time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.app.Store.RotateKey(ctx, k, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.app.LoadKeys(ctx); err != nil {
		t.Fatal(err)
	}
	after, err := c.Login(ctx, "rotate@example.com", testPassword)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := v.Verify(ctx, after.AccessToken)
	if err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if ca.KeyID == cb.KeyID || ca.KeyID != k.ID {
		t.Fatalf("kid after rotation: got %q, want the new key %q (before: %q)", ca.KeyID, k.ID, cb.KeyID)
	}
	if ca.SessionID != after.SessionID || ca.UserID != cb.UserID {
		t.Fatalf("claims: got session %q user %q, want %q and %q", ca.SessionID, ca.UserID, after.SessionID, cb.UserID)
	}
	if _, err := v.Verify(ctx, before.AccessToken); err != nil {
		t.Fatalf("a token of the retired key: got %v, want it still valid", err)
	}
}

// TestVerifyAMR: amr and auth_time, when present, reach the caller, so a
// service can ask for a recent or a strong sign-in.
func TestVerifyAMR(t *testing.T) {
	j := newJWKSServer(t)
	now := time.Now()
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{Now: func() time.Time { return now }})
	claims := goodClaims(now)
	claims["amr"] = []string{"pwd", "otp"}
	claims["auth_time"] = now.Add(-time.Minute).Unix()
	c, err := v.Verify(context.Background(), sign(j.key("k1"), goodHeader(), claims))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(c.AMR, " ") != "pwd otp" || c.AuthTime.Unix() != now.Add(-time.Minute).Unix() {
		t.Errorf("got amr %v auth_time %v, want [pwd otp] %v", c.AMR, c.AuthTime, now.Add(-time.Minute))
	}
	c, err = v.Verify(context.Background(), sign(j.key("k1"), goodHeader(), goodClaims(now)))
	if err != nil {
		t.Fatal(err)
	}
	if c.AMR != nil || !c.AuthTime.IsZero() {
		t.Errorf("got amr %v auth_time %v, want both empty for a token without them", c.AMR, c.AuthTime)
	}
}
