package token_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/token"
)

const (
	testIssuer   = "https://sessiond.test"
	testAudience = "sessiond"
	testTTL      = 15 * time.Minute
	testUser     = "2b0c4a5e-8f1d-4c7a-9e3b-6d5f4a3b2c1d"
	testSession  = "7f9e8d7c-6b5a-4938-8271-605f4e3d2c1b"
)

// t0 is the fixed instant the tests sign and verify at.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// sessionEnd is the absolute expiry of the session the tests sign for: far
// enough that the access TTL decides exp.
var sessionEnd = t0.Add(720 * time.Hour)

// fixture is a keyring with one current key, an issuer and a verifier whose
// clock tests can move.
type fixture struct {
	key      *sessiond.SigningKey
	keys     *token.Keyring
	issuer   *token.Issuer
	verifier *token.Verifier
	now      time.Time
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	k := seededKey(1, t0.Add(-time.Hour))
	f := &fixture{key: k, keys: token.NewKeyring(testTTL), now: t0}
	if err := f.keys.Set([]sessiond.SigningKey{*k}, t0); err != nil {
		t.Fatal(err)
	}
	f.issuer = token.NewIssuer(f.keys, testIssuer, testAudience, testTTL)
	f.verifier = token.NewVerifier(f.keys, testIssuer, testAudience, func() time.Time { return f.now }, 30*time.Second)
	return f
}

func mustKey(t testing.TB, now time.Time) *sessiond.SigningKey {
	t.Helper()
	k, err := token.GenerateKey(now)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// seededKey is a signing key that is the same in every run, so that fuzz
// corpus entries signed with it stay meaningful when replayed.
func seededKey(seed byte, now time.Time) *sessiond.SigningKey {
	priv := ed25519.NewKeyFromSeed(bytes.Repeat([]byte{seed}, ed25519.SeedSize))
	pub := priv.Public().(ed25519.PublicKey)
	return &sessiond.SigningKey{ID: token.Thumbprint(pub), Algorithm: token.Algorithm,
		PrivateKey: priv.Seed(), PublicKey: pub, CreatedAt: now}
}

func (f *fixture) sign(t testing.TB) string {
	t.Helper()
	tok, _, err := f.issuer.Sign(testUser, testSession, t0, sessionEnd)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// validClaims are the claims Sign would write at t0.
func validClaims() map[string]any {
	return map[string]any{
		"iss": testIssuer, "aud": testAudience, "sub": testUser, "sid": testSession,
		"iat": t0.Unix(), "exp": t0.Add(testTTL).Unix(), "jti": "test-jti",
	}
}

func (f *fixture) validHeader() map[string]any {
	return map[string]any{"alg": "EdDSA", "typ": "at+jwt", "kid": f.key.ID}
}

// forge builds a compact JWS from header and claims, signed by sign over the
// signing input (nil sign: empty signature).
func forge(t testing.TB, header, claims map[string]any, sign func(input []byte) []byte) string {
	t.Helper()
	enc := base64.RawURLEncoding
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := enc.EncodeToString(h) + "." + enc.EncodeToString(c)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(input))
	}
	return input + "." + enc.EncodeToString(sig)
}

func ed25519Signer(k *sessiond.SigningKey) func([]byte) []byte {
	priv := ed25519.NewKeyFromSeed(k.PrivateKey)
	return func(input []byte) []byte { return ed25519.Sign(priv, input) }
}

func hs256Signer(secret []byte) func([]byte) []byte {
	return func(input []byte) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write(input)
		return m.Sum(nil)
	}
}

// wantCode fails unless err is a *sessiond.Error with code.
func wantCode(t testing.TB, err error, code string) *sessiond.Error {
	t.Helper()
	var e *sessiond.Error
	if !errors.As(err, &e) {
		t.Fatalf("got error %v, want *sessiond.Error with code %q", err, code)
	}
	if e.Code != code {
		t.Fatalf("got code %q (%v), want %q", e.Code, err, code)
	}
	return e
}
