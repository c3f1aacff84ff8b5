package token_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/token"
)

func TestSignVerifyRoundtrip(t *testing.T) {
	f := newFixture(t)
	tok, exp, err := f.issuer.Sign(testUser, testSession, t0.Add(500*time.Millisecond), sessionEnd)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(testTTL); !exp.Equal(want) {
		t.Fatalf("got expiresAt %v, want %v", exp, want)
	}
	c, err := f.verifier.Verify(tok)
	if err != nil {
		t.Fatalf("got %v, want nil", err)
	}
	if c.Issuer != testIssuer || c.Subject != testUser || c.SessionID != testSession {
		t.Errorf("got iss %q sub %q sid %q, want %q %q %q", c.Issuer, c.Subject, c.SessionID, testIssuer, testUser, testSession)
	}
	if len(c.Audience) != 1 || c.Audience[0] != testAudience {
		t.Errorf("got aud %q, want [%q]", c.Audience, testAudience)
	}
	if !c.IssuedAt.Equal(t0) || !c.ExpiresAt.Equal(exp) {
		t.Errorf("got iat %v exp %v, want %v %v", c.IssuedAt, c.ExpiresAt, t0, exp)
	}
	if len(c.ID) < 22 {
		t.Errorf("got jti %q, want at least 128 random bits", c.ID)
	}
	if other, _ := f.verifier.Verify(f.sign(t)); other == nil || other.ID == c.ID {
		t.Errorf("got a repeated jti %q, want a fresh one per token", c.ID)
	}
}

// TestTokenWireFormat pins the header and claim names other services read.
func TestTokenWireFormat(t *testing.T) {
	f := newFixture(t)
	parts := strings.Split(f.sign(t), ".")
	if len(parts) != 3 {
		t.Fatalf("got %d segments, want 3", len(parts))
	}
	var header map[string]any
	decodeSegment(t, parts[0], &header)
	if want := f.validHeader(); len(header) != 3 || header["alg"] != want["alg"] || header["typ"] != want["typ"] || header["kid"] != want["kid"] {
		t.Errorf("got header %v, want %v", header, want)
	}
	var claims map[string]any
	decodeSegment(t, parts[1], &claims)
	for _, name := range []string{"iss", "aud", "sub", "sid", "iat", "exp", "jti"} {
		if _, ok := claims[name]; !ok {
			t.Errorf("got claims %v, want %q among them", claims, name)
		}
	}
	if aud, ok := claims["aud"].(string); !ok || aud != testAudience {
		t.Errorf("got aud %#v, want the string %q", claims["aud"], testAudience)
	}
}

func decodeSegment(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

// TestVerifyThroughJWKS verifies a token the way another service would:
// with nothing but the published document.
func TestVerifyThroughJWKS(t *testing.T) {
	f := newFixture(t)
	tok := f.sign(t)
	var doc struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(f.keys.JWKS(), &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Keys) != 1 {
		t.Fatalf("got %d keys, want 1", len(doc.Keys))
	}
	jwk := doc.Keys[0]
	want := map[string]string{"kty": "OKP", "crv": "Ed25519", "kid": f.key.ID, "alg": "EdDSA", "use": "sig"}
	for name, v := range want {
		if jwk[name] != v {
			t.Errorf("got %s %q, want %q", name, jwk[name], v)
		}
	}
	if _, ok := jwk["d"]; ok {
		t.Fatalf("got a private key member in the JWKS, want public keys only")
	}
	x, err := base64.RawURLEncoding.DecodeString(jwk["x"])
	if err != nil || len(x) != ed25519.PublicKeySize {
		t.Fatalf("got x %q (%v), want a base64url Ed25519 key", jwk["x"], err)
	}
	i := strings.LastIndexByte(tok, '.')
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		t.Fatal(err)
	}
	if !ed25519.Verify(ed25519.PublicKey(x), []byte(tok[:i]), sig) {
		t.Fatalf("got a signature the published key refuses, want it accepted")
	}
	if got := token.Thumbprint(ed25519.PublicKey(x)); got != jwk["kid"] {
		t.Fatalf("got thumbprint %q, want kid %q", got, jwk["kid"])
	}
}

// refusal is a token Verify must refuse, with the message it must give.
type refusal struct {
	name    string
	token   string
	message string
}

// refusals are every attack and malformation Verify must refuse; the fuzz
// test starts from them too.
func refusals(t testing.TB, f *fixture) []refusal {
	signed := ed25519Signer(f.key)
	good := f.sign(t)
	with := func(name string, v any) map[string]any {
		c := validClaims()
		if v == nil {
			delete(c, name)
		} else {
			c[name] = v
		}
		return c
	}
	header := func(name string, v any) map[string]any {
		h := f.validHeader()
		if v == nil {
			delete(h, name)
		} else {
			h[name] = v
		}
		return h
	}
	stranger := seededKey(2, t0)
	return []refusal{
		{"tampered signature", tamper(good, len(good)-5), "bad signature"},
		{"signature of another key", forge(t, f.validHeader(), validClaims(), ed25519Signer(stranger)), "bad signature"},
		{"empty signature", forge(t, f.validHeader(), validClaims(), nil), "bad signature"},
		{"changed claims", swapClaims(t, good, with("sub", "someone-else")), "bad signature"},
		{"alg none", forge(t, header("alg", "none"), validClaims(), nil), "algorithm not allowed"},
		{"alg HS256 keyed with the public key", forge(t, header("alg", "HS256"), validClaims(), hs256Signer(f.key.PublicKey)), "algorithm not allowed"},
		{"alg HS256 keyed with the JWK x", forge(t, header("alg", "HS256"), validClaims(), hs256Signer([]byte(base64.RawURLEncoding.EncodeToString(f.key.PublicKey)))), "algorithm not allowed"},
		{"alg RS256", forge(t, header("alg", "RS256"), validClaims(), signed), "algorithm not allowed"},
		{"alg unknown", forge(t, header("alg", "Ed448"), validClaims(), signed), "unsupported algorithm"},
		{"alg missing", forge(t, header("alg", nil), validClaims(), signed), "unsupported algorithm"},
		{"typ JWT", forge(t, header("typ", "JWT"), validClaims(), signed), "wrong token type"},
		{"typ missing", forge(t, header("typ", nil), validClaims(), signed), "wrong token type"},
		{"kid unknown", forge(t, header("kid", stranger.ID), validClaims(), ed25519Signer(stranger)), "unknown key id"},
		{"kid missing", forge(t, header("kid", nil), validClaims(), signed), "missing key id"},
		{"kid not a string", forge(t, header("kid", 7), validClaims(), signed), "missing key id"},
		{"header jku", forge(t, header("jku", "https://evil.test/jwks"), validClaims(), signed), "forbidden header jku"},
		{"header x5u", forge(t, header("x5u", "https://evil.test/cert"), validClaims(), signed), "forbidden header x5u"},
		{"header jwk", forge(t, header("jwk", map[string]string{"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}), validClaims(), signed), "forbidden header jwk"},
		{"header x5c", forge(t, header("x5c", []string{"MIIB"}), validClaims(), signed), "forbidden header x5c"},
		{"header crit", forge(t, header("crit", []string{"exp"}), validClaims(), signed), "forbidden header crit"},
		{"cnf without jkt", forge(t, f.validHeader(), with("cnf", map[string]string{}), signed), "cnf claim without jkt"},
		{"cnf with an empty jkt", forge(t, f.validHeader(), with("cnf", map[string]string{"jkt": ""}), signed), "cnf claim without jkt"},
		{"expired", forge(t, f.validHeader(), with("exp", t0.Add(-31*time.Second).Unix()), signed), "token expired"},
		{"exp missing", forge(t, f.validHeader(), with("exp", nil), signed), "missing exp claim"},
		{"exp not a number", forge(t, f.validHeader(), with("exp", "tomorrow"), signed), "malformed token"},
		{"iat missing", forge(t, f.validHeader(), with("iat", nil), signed), "missing iat claim"},
		{"iat in the future", forge(t, f.validHeader(), with("iat", t0.Add(time.Minute).Unix()), signed), "token issued in the future"},
		{"nbf in the future", forge(t, f.validHeader(), with("nbf", t0.Add(time.Minute).Unix()), signed), "token not valid yet"},
		{"sub missing", forge(t, f.validHeader(), with("sub", nil), signed), "missing sub claim"},
		{"sid missing", forge(t, f.validHeader(), with("sid", nil), signed), "missing sid claim"},
		{"wrong issuer", forge(t, f.validHeader(), with("iss", "https://evil.test"), signed), "wrong issuer"},
		{"iss missing", forge(t, f.validHeader(), with("iss", nil), signed), "missing iss claim"},
		{"wrong audience", forge(t, f.validHeader(), with("aud", "another-service"), signed), "wrong audience"},
		{"wrong audiences", forge(t, f.validHeader(), with("aud", []string{"a", "b"}), signed), "wrong audience"},
		{"aud missing", forge(t, f.validHeader(), with("aud", nil), signed), "missing aud claim"},
		{"lifetime over the access TTL and leeway", forge(t, f.validHeader(), with("exp", t0.Add(testTTL+31*time.Second).Unix()), signed), "token lifetime too long"},
		{"valid until 2100", forge(t, f.validHeader(), with("exp", time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC).Unix()), signed), "token lifetime too long"},
		{"iat zero", forge(t, f.validHeader(), with("iat", 0), signed), "token lifetime too long"},
		{"signature 200 characters", good[:strings.LastIndexByte(good, '.')+1] + strings.Repeat("A", 200), "bad signature"},
		{"signature one byte long", good + "AA", "bad signature"},
		{"too large", forge(t, f.validHeader(), with("pad", strings.Repeat("x", 4096)), signed), "token too large"},
		{"empty", "", "malformed token"},
		{"two segments", good[:strings.LastIndexByte(good, '.')], "malformed token"},
		{"four segments", good + ".AAAA", "malformed token"},
		{"padded signature", good + "==", "malformed token"},
		{"not base64", "!!!." + good[strings.IndexByte(good, '.')+1:], "malformed token"},
		{"header not JSON", base64.RawURLEncoding.EncodeToString([]byte("nope")) + good[strings.IndexByte(good, '.'):], "malformed token"},
	}
}

func TestVerifyRefuses(t *testing.T) {
	f := newFixture(t)
	tests := refusals(t, f)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := f.verifier.Verify(tt.token)
			if c != nil {
				t.Fatalf("got claims %+v, want nil", c)
			}
			e := wantCode(t, err, sessiond.CodeInvalidToken)
			if e.Message != tt.message {
				t.Fatalf("got message %q (%v), want %q", e.Message, err, tt.message)
			}
		})
	}
}

// tamper flips one character of tok at i, keeping it base64url.
func tamper(tok string, i int) string {
	b := []byte(tok)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}

// swapClaims replaces the claims segment of a signed token, keeping its
// header and signature.
func swapClaims(t testing.TB, tok string, claims map[string]any) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString(c) + "." + parts[2]
}

func TestVerifyLeeway(t *testing.T) {
	f := newFixture(t)
	signed := ed25519Signer(f.key)
	tests := []struct {
		name string
		now  time.Time
		ok   bool
	}{
		{"fresh", t0, true},
		{"just before exp", t0.Add(testTTL - time.Second), true},
		{"expired inside leeway", t0.Add(testTTL + 29*time.Second), true},
		{"expired past leeway", t0.Add(testTTL + 30*time.Second), false},
		{"issued slightly in the future", t0.Add(-29 * time.Second), true},
	}
	tok := forge(t, f.validHeader(), validClaims(), signed)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.now = tt.now
			_, err := f.verifier.Verify(tok)
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestVerifyMaxLifetime: exp - iat may reach the access TTL plus the
// leeway (30s here) and no more, however far from expiry the token is.
func TestVerifyMaxLifetime(t *testing.T) {
	f := newFixture(t)
	signed := ed25519Signer(f.key)
	tests := []struct {
		name string
		life time.Duration
		ok   bool
	}{
		{"the access TTL", testTTL, true},
		{"TTL and leeway", testTTL + 30*time.Second, true},
		{"a second more", testTTL + 31*time.Second, false},
		{"a day", 24 * time.Hour, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := validClaims()
			c["exp"] = t0.Add(tt.life).Unix()
			_, err := f.verifier.Verify(forge(t, f.validHeader(), c, signed))
			if (err == nil) != tt.ok {
				t.Fatalf("got %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestSignNeverOutlivesSession: exp is the TTL after now, or the session's
// absolute expiry if that comes first, in the returned time and the claim.
func TestSignNeverOutlivesSession(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name     string
		notAfter time.Time
		want     time.Time
	}{
		{"session outlives the TTL", sessionEnd, t0.Add(testTTL)},
		{"session ends at the TTL", t0.Add(testTTL), t0.Add(testTTL)},
		{"session ends in a minute", t0.Add(time.Minute), t0.Add(time.Minute)},
		{"session ends in a minute and a half second", t0.Add(time.Minute + 500*time.Millisecond), t0.Add(time.Minute)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, exp, err := f.issuer.Sign(testUser, testSession, t0, tt.notAfter)
			if err != nil {
				t.Fatal(err)
			}
			if !exp.Equal(tt.want) {
				t.Fatalf("got expiresAt %v, want %v", exp, tt.want)
			}
			var claims struct{ Exp int64 }
			decodeSegment(t, strings.Split(tok, ".")[1], &claims)
			if claims.Exp != tt.want.Unix() {
				t.Fatalf("got exp claim %d, want %d", claims.Exp, tt.want.Unix())
			}
		})
	}
	if _, _, err := f.issuer.Sign(testUser, testSession, t0, time.Time{}); err == nil {
		t.Fatal("got a token for a session without expiry, want an error")
	}
	// The session ends within the second it is now: exp would not be after
	// now, and expires_in would be 0. The session is as good as over.
	for _, left := range []time.Duration{800 * time.Millisecond, 0, -time.Minute} {
		_, _, err := f.issuer.Sign(testUser, testSession, t0.Add(100*time.Millisecond), t0.Add(100*time.Millisecond+left))
		wantCode(t, err, sessiond.CodeSessionExpired)
	}
}

// TestVerifyAcceptsMediaType: RFC 9068 §4 lets typ be the full media type.
func TestVerifyAcceptsMediaType(t *testing.T) {
	f := newFixture(t)
	for _, typ := range []string{"at+jwt", "application/at+jwt", "AT+JWT"} {
		h := f.validHeader()
		h["typ"] = typ
		if _, err := f.verifier.Verify(forge(t, h, validClaims(), ed25519Signer(f.key))); err != nil {
			t.Errorf("typ %q: got %v, want nil", typ, err)
		}
	}
}

func TestConcurrentSignVerifySet(t *testing.T) {
	f := newFixture(t)
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 50 {
				tok, _, err := f.issuer.Sign(testUser, testSession, t0, sessionEnd)
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := f.verifier.Verify(tok); err != nil {
					t.Error(err)
					return
				}
				_ = f.keys.JWKS()
			}
		})
	}
	// Every key retired at t0 stays published, so every token verifies.
	wg.Go(func() {
		all := []sessiond.SigningKey{*f.key}
		for range 20 {
			next, err := token.GenerateKey(t0)
			if err != nil {
				t.Error(err)
				return
			}
			all[0].RetiredAt = t0
			all = append([]sessiond.SigningKey{*next}, all...)
			if err := f.keys.Set(all, t0); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
}

func BenchmarkSign(b *testing.B) {
	f := newFixture(b)
	for b.Loop() {
		if _, _, err := f.issuer.Sign(testUser, testSession, t0, sessionEnd); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	f := newFixture(b)
	tok := f.sign(b)
	for b.Loop() {
		if _, err := f.verifier.Verify(tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBareEd25519Verify is the floor under BenchmarkVerify: the
// signature check alone, on the same token's signing input.
func BenchmarkBareEd25519Verify(b *testing.B) {
	f := newFixture(b)
	tok := f.sign(b)
	i := strings.LastIndexByte(tok, '.')
	input := []byte(tok[:i])
	sig, err := base64.RawURLEncoding.DecodeString(tok[i+1:])
	if err != nil {
		b.Fatal(err)
	}
	pub := ed25519.PublicKey(f.key.PublicKey)
	for b.Loop() {
		if !ed25519.Verify(pub, input, sig) {
			b.Fatal("signature refused")
		}
	}
}

// TestSignSubjectAMR: amr and auth_time travel as RFC 8176 / OIDC claims
// when the session knows them, and are absent, not zero, when it does not.
func TestSignSubjectAMR(t *testing.T) {
	f := newFixture(t)
	authAt := t0.Add(-time.Hour)
	cases := []struct {
		name     string
		sub      token.Subject
		wantAMR  []string
		wantAuth time.Time
	}{
		{"password", token.Subject{UserID: testUser, SessionID: testSession, NotAfter: sessionEnd, AMR: []string{"pwd"}, AuthTime: authAt}, []string{"pwd"}, authAt},
		{"external", token.Subject{UserID: testUser, SessionID: testSession, NotAfter: sessionEnd, AMR: []string{"ext"}, AuthTime: authAt}, []string{"ext"}, authAt},
		{"neither", token.Subject{UserID: testUser, SessionID: testSession, NotAfter: sessionEnd}, nil, time.Time{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			tok, _, err := f.issuer.SignSubject(tc.sub, t0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := f.verifier.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Join(c.AMR, ",") != strings.Join(tc.wantAMR, ",") || !c.AuthTime.Equal(tc.wantAuth) {
				t.Errorf("got amr %v auth_time %v, want %v %v", c.AMR, c.AuthTime, tc.wantAMR, tc.wantAuth)
			}
			var claims map[string]any
			decodeSegment(t, strings.Split(tok, ".")[1], &claims)
			_, hasAMR := claims["amr"]
			_, hasAuth := claims["auth_time"]
			if hasAMR != (tc.wantAMR != nil) || hasAuth != !tc.wantAuth.IsZero() {
				t.Errorf("got claims %v, want amr and auth_time present only when known", claims)
			}
		})
	}
}

// TestSignSubjectDPoP: a token of a DPoP-bound session carries
// "cnf":{"jkt":…} and verification returns the thumbprint; an unbound
// one has no cnf at all.
func TestSignSubjectDPoP(t *testing.T) {
	f := newFixture(t)
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	for _, tc := range []struct {
		name string
		jkt  string
	}{
		{"bound", jkt},
		{"unbound", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tok, _, err := f.issuer.SignSubject(token.Subject{UserID: testUser, SessionID: testSession, NotAfter: sessionEnd, DPoPJKT: tc.jkt}, t0)
			if err != nil {
				t.Fatal(err)
			}
			c, err := f.verifier.Verify(tok)
			if err != nil {
				t.Fatal(err)
			}
			if c.DPoPJKT != tc.jkt {
				t.Errorf("verified DPoPJKT: got %q, want %q", c.DPoPJKT, tc.jkt)
			}
			var claims map[string]any
			decodeSegment(t, strings.Split(tok, ".")[1], &claims)
			cnf, has := claims["cnf"]
			switch {
			case tc.jkt == "" && has:
				t.Errorf("unbound token: got cnf %v, want none", cnf)
			case tc.jkt != "" && !reflect.DeepEqual(cnf, map[string]any{"jkt": tc.jkt}):
				t.Errorf("bound token: got cnf %v, want {jkt: %s}", cnf, tc.jkt)
			}
		})
	}
}
