package client_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
	"github.com/sessiond/sessiond/dpop"
)

// reasons are every refusal Verify may give.
var reasons = []error{client.ErrMalformed, client.ErrAlgorithm, client.ErrType, client.ErrUnknownKey,
	client.ErrSignature, client.ErrExpired, client.ErrNotYetValid, client.ErrIssuer, client.ErrAudience,
	client.ErrMissingClaim, client.ErrLifetime, client.ErrKeysUnavailable, client.ErrNoToken, client.ErrDPoP}

// FuzzVerify: whatever the input, Verify returns claims or a *VerifyError
// with one of the documented reasons, never panics, gives the same answer
// the second time (when the header may come from its cache), and accepts
// only tokens whose signature the published key makes good.
func FuzzVerify(f *testing.F) {
	// A key and a clock that are the same in every run, so that the corpus
	// stays meaningful when replayed.
	k1 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	j := newJWKSServer(f)
	j.mu.Lock()
	j.keys["k1"] = k1
	j.mu.Unlock()
	v, err := client.NewVerifier(context.Background(), j.srv.URL, testIssuer, testAudience,
		&client.VerifierOptions{Now: func() time.Time { return now }, MinRefetchInterval: time.Hour, RefreshInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)

	good := sign(k1, goodHeader(), goodClaims(now))
	with := func(m map[string]any, k string, val any) map[string]any { m[k] = val; return m }
	h64, rest, _ := strings.Cut(good, ".")
	p64, s64, _ := strings.Cut(rest, ".")
	for _, seed := range []string{
		good,
		sign(k1, with(goodHeader(), "typ", "application/at+jwt"), goodClaims(now)),
		sign(k1, goodHeader(), with(goodClaims(now), "aud", []string{"x", testAudience})),
		sign(k1, goodHeader(), with(goodClaims(now), "nbf", now.Unix())),
		// Tampered: claims, header, signature bits.
		h64 + "." + b64json(with(goodClaims(now), "sub", "someone-else")) + "." + s64,
		b64json(with(goodHeader(), "alg", "none")) + "." + p64 + ".",
		b64json(with(goodHeader(), "alg", "HS256")) + "." + p64 + "." + s64,
		b64json(with(goodHeader(), "kid", "k2")) + "." + p64 + "." + s64,
		b64json(with(goodHeader(), "crit", []string{"exp"})) + "." + p64 + "." + s64,
		good[:len(good)-2] + "AA",
		sign(nil, goodHeader(), goodClaims(now)),
		// Signed but wrong in its claims.
		sign(k1, goodHeader(), with(goodClaims(now), "exp", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix())),
		sign(k1, goodHeader(), with(goodClaims(now), "exp", now.Add(-time.Hour).Unix())),
		sign(k1, goodHeader(), with(goodClaims(now), "iat", 1e300)),
		sign(k1, goodHeader(), with(goodClaims(now), "iss", "https://evil.test")),
		sign(k1, goodHeader(), with(goodClaims(now), "aud", 7)),
		// Over-long and short segments.
		h64 + "." + p64 + "." + strings.Repeat("A", 200),
		h64 + "." + p64 + "." + s64 + "AA",
		h64 + "." + p64 + "." + s64[:85],
		b64json(with(goodHeader(), "pad", strings.Repeat("x", 800))) + "." + p64 + "." + s64,
		h64 + "." + base64.RawURLEncoding.EncodeToString(bytes.Repeat([]byte{'{'}, 6000)) + "." + s64,
		h64 + "." + p64 + "." + s64 + ".",
		"", ".", "..", "a.b.c", h64 + "..",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := v.Verify(context.Background(), tok)
		c2, err2 := v.Verify(context.Background(), tok)
		if (err == nil) != (err2 == nil) || (err != nil && !errors.Is(err2, err.(*client.VerifyError).Reason)) {
			t.Fatalf("Verify(%q) twice: got %v, then %v", tok, err, err2)
		}
		if err != nil {
			var ve *client.VerifyError
			if !errors.As(err, &ve) || !known(ve.Reason) {
				t.Fatalf("Verify(%q): got %T %v, want a *client.VerifyError with a documented reason", tok, err, err)
			}
			if c != nil || c2 != nil {
				t.Fatalf("Verify(%q): claims %+v returned with error %v", tok, c, err)
			}
			return
		}
		// Accepted: the key must have signed exactly this signing input.
		i := strings.LastIndexByte(tok, '.')
		sig, derr := base64.RawURLEncoding.Strict().DecodeString(tok[i+1:])
		if derr != nil || !ed25519.Verify(k1.Public().(ed25519.PublicKey), []byte(tok[:i]), sig) {
			t.Fatalf("Verify(%q) accepted a token whose signature does not check out", tok)
		}
		if c.UserID == "" || c.SessionID == "" || c.Issuer != testIssuer || c.KeyID != "k1" ||
			c.UserID != c2.UserID || c.SessionID != c2.SessionID || !c.ExpiresAt.Equal(c2.ExpiresAt) {
			t.Fatalf("Verify(%q): got claims %+v, then %+v", tok, c, c2)
		}
	})
}

// FuzzVerifyRequest: whatever the Authorization and DPoP headers, and
// however many, VerifyRequest returns claims or a *VerifyError with a
// documented reason and never panics; it accepts a bound token only with a
// proof by its key for this request, once, and an unbound one only as Bearer.
func FuzzVerifyRequest(f *testing.F) {
	k1 := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{1}, ed25519.SeedSize))
	key, err := dpop.KeyFrom(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{2}, ed25519.SeedSize)))
	if err != nil {
		f.Fatal(err)
	}
	now := time.Now()
	j := newJWKSServer(f)
	j.mu.Lock()
	j.keys["k1"] = k1
	j.mu.Unlock()
	v, err := client.NewVerifier(context.Background(), j.srv.URL, testIssuer, testAudience,
		&client.VerifierOptions{PublicURL: testPublicURL, Now: func() time.Time { return now }, MinRefetchInterval: time.Hour, RefreshInterval: -1})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(v.Close)
	bound := sign(k1, goodHeader(), boundClaims(now, key))
	unbound := sign(k1, goodHeader(), goodClaims(now))
	good := proof(f, key, "GET", testPublicURL+"/notes", bound, now)
	for _, seed := range [][3]string{
		{"DPoP " + bound, good, ""},
		{"dpop  " + bound, good, ""},
		{"Bearer " + bound, good, ""},
		{"Bearer " + unbound, "", ""},
		{"DPoP " + unbound, proof(f, key, "GET", testPublicURL+"/notes", unbound, now), ""},
		{"DPoP " + bound, good, good},
		{"DPoP " + bound, good[:len(good)-3], ""},
		{"DPoP " + bound, "a.b.c", ""},
		{"DPoP", "", ""},
		{"Bearer ", "", ""},
		{"", good, ""},
		{"Basic YTpi", "", ""},
	} {
		f.Add(seed[0], seed[1], seed[2])
	}
	f.Fuzz(func(t *testing.T, auth, proof1, proof2 string) {
		r := httptest.NewRequest("GET", "/notes", nil)
		r.Header["Authorization"] = []string{auth}
		for _, p := range []string{proof1, proof2} {
			if p != "" {
				r.Header.Add("DPoP", p)
			}
		}
		c, err := v.VerifyRequest(r)
		if err != nil {
			var ve *client.VerifyError
			if !errors.As(err, &ve) || !known(ve.Reason) || c != nil {
				t.Fatalf("VerifyRequest(%q, %q, %q): got %+v, %T %v; want a *client.VerifyError with a documented reason", auth, proof1, proof2, c, err, err)
			}
			return
		}
		scheme, _, _ := strings.Cut(auth, " ")
		switch {
		case c.Bound() && (!strings.EqualFold(scheme, "DPoP") || c.JKT != key.Thumbprint() || proof2 != "" || proof1 == ""):
			t.Fatalf("VerifyRequest(%q, %q, %q): accepted a bound token without one proof by its key as DPoP", auth, proof1, proof2)
		case !c.Bound() && !strings.EqualFold(scheme, "Bearer"):
			t.Fatalf("VerifyRequest(%q, %q, %q): accepted an unbound token as %q", auth, proof1, proof2, scheme)
		}
		if c.Bound() {
			if _, err := v.VerifyRequest(r); !errors.Is(err, client.ErrDPoP) {
				t.Fatalf("VerifyRequest(%q, %q, %q) again: got %v, want the replay refused", auth, proof1, proof2, err)
			}
		}
	})
}

func known(reason error) bool {
	for _, r := range reasons {
		if reason == r {
			return true
		}
	}
	return false
}
