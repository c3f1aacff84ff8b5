package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"
)

var now = time.Unix(1_800_000_000, 0)

const target = "https://auth.example.com/v1/refresh"

// forge signs header and claims as given, so that a test can build any
// proof, well formed or not, with k's private key.
func forge(t *testing.T, k *Key, header, claims map[string]any) string {
	t.Helper()
	h, _ := json.Marshal(header)
	c, _ := json.Marshal(claims)
	input := b64(h) + "." + b64(c)
	sig, err := k.sign([]byte(input))
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + b64(sig)
}

func goodHeader(k *Key) map[string]any {
	var jwk map[string]any
	json.Unmarshal(k.jwk, &jwk)
	return map[string]any{"typ": "dpop+jwt", "alg": k.alg, "jwk": jwk}
}

func goodClaims() map[string]any {
	return map[string]any{"jti": "id-1", "htm": "POST", "htu": target, "iat": now.Unix()}
}

func edKey(t *testing.T) *Key {
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	k, err := KeyFrom(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestVerifyAcceptsGoodProofs(t *testing.T) {
	for _, k := range []*Key{NewKey(), edKey(t)} {
		p, err := k.Proof(Claims{Method: "POST", URL: target + "?x=1#f", Now: now, AccessToken: "at", Nonce: "n1"})
		if err != nil {
			t.Fatal(err)
		}
		got, err := Verify(p, Request{Method: "POST", URL: target, Now: now.Add(30 * time.Second), AccessToken: "at",
			Nonce: func(n string) bool { return n == "n1" }})
		if err != nil {
			t.Fatalf("%s: %v", k.alg, err)
		}
		if got.Thumbprint != k.Thumbprint() || got.ID == "" || !got.IssuedAt.Equal(now) || got.Nonce != "n1" {
			t.Errorf("%s: got %+v", k.alg, got)
		}
	}
	// RFC 9864's fully specified name of EdDSA over Ed25519.
	k := edKey(t)
	h := goodHeader(k)
	h["alg"] = "Ed25519"
	if _, err := Verify(forge(t, k, h, goodClaims()), Request{Method: "POST", URL: target, Now: now}); err != nil {
		t.Errorf("alg Ed25519: %v", err)
	}
}

// TestThumbprintRFC7638 checks the thumbprint against RFC 7638 §3.1's
// example method on an EC key computed independently, and RFC 8037
// Appendix A.3's Ed25519 example.
func TestThumbprintRFC7638(t *testing.T) {
	raw := json.RawMessage(`{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}`)
	k, err := parseJWK(raw)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := k.thumbprint(), "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Errorf("Ed25519 thumbprint %s, want %s (RFC 8037 A.3)", got, want)
	}
	key := NewKey()
	var m map[string]string
	json.Unmarshal(key.jwk, &m)
	canon := `{"crv":"P-256","kty":"EC","x":"` + m["x"] + `","y":"` + m["y"] + `"}`
	sum := sha256.Sum256([]byte(canon))
	if key.Thumbprint() != base64.RawURLEncoding.EncodeToString(sum[:]) {
		t.Error("EC thumbprint is not SHA-256 of the canonical members")
	}
}

// TestVerifyRefuses is RFC 9449 §4.3, one failing case per check, and the
// key and algorithm attacks of RFC 8725 §2.1–2.2, 3.1–3.2.
func TestVerifyRefuses(t *testing.T) {
	k := NewKey()
	other := NewKey()
	ed := edKey(t)
	req := Request{Method: "POST", URL: target, Now: now}
	mod := func(fh func(map[string]any), fc func(map[string]any)) string {
		h, c := goodHeader(k), goodClaims()
		if fh != nil {
			fh(h)
		}
		if fc != nil {
			fc(c)
		}
		return forge(t, k, h, c)
	}
	good := mod(nil, nil)
	parts := strings.Split(good, ".")
	hs256 := func() string {
		// alg confusion: an HMAC keyed with the public key's JSON.
		h := goodHeader(k)
		h["alg"] = "HS256"
		hb, _ := json.Marshal(h)
		cb, _ := json.Marshal(goodClaims())
		in := b64(hb) + "." + b64(cb)
		m := hmac.New(sha256.New, k.jwk)
		m.Write([]byte(in))
		return in + "." + b64(m.Sum(nil))
	}()
	var otherJWK map[string]any
	json.Unmarshal(other.jwk, &otherJWK)
	var edJWK map[string]any
	json.Unmarshal(ed.jwk, &edJWK)
	priv := func() map[string]any {
		var m map[string]any
		json.Unmarshal(k.jwk, &m)
		d := k.signer.(*ecdsa.PrivateKey).D.FillBytes(make([]byte, 32))
		m["d"] = b64(d)
		return m
	}()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)

	cases := []struct {
		name  string
		proof string
		req   func(*Request)
	}{
		{"not a JWS", "abc", nil},
		{"JWE-shaped (five parts)", good + ".x.y", nil},
		{"header not base64url", "!!!." + parts[1] + "." + parts[2], nil},
		{"header not JSON", b64([]byte("nope")) + "." + parts[1] + "." + parts[2], nil},
		{"too large", mod(nil, func(c map[string]any) { c["pad"] = strings.Repeat("a", MaxProofSize) }), nil},
		{"typ missing", mod(func(h map[string]any) { delete(h, "typ") }, nil), nil},
		{"typ JWT", mod(func(h map[string]any) { h["typ"] = "JWT" }, nil), nil},
		{"typ at+jwt", mod(func(h map[string]any) { h["typ"] = "at+jwt" }, nil), nil},
		{"alg none", func() string {
			h := goodHeader(k)
			h["alg"] = "none"
			hb, _ := json.Marshal(h)
			cb, _ := json.Marshal(goodClaims())
			return b64(hb) + "." + b64(cb) + "."
		}(), nil},
		{"alg HS256 keyed by the public key", hs256, nil},
		{"alg RS256", mod(func(h map[string]any) { h["alg"] = "RS256" }, nil), nil},
		{"alg ES384", mod(func(h map[string]any) { h["alg"] = "ES384" }, nil), nil},
		{"alg EdDSA with an EC key", mod(func(h map[string]any) { h["alg"] = "EdDSA" }, nil), nil},
		{"alg ES256 with an Ed25519 key", func() string {
			h := goodHeader(ed)
			h["alg"] = "ES256"
			return forge(t, ed, h, goodClaims())
		}(), nil},
		{"crit", mod(func(h map[string]any) { h["crit"] = []string{"exp"} }, nil), nil},
		{"jwk missing", mod(func(h map[string]any) { delete(h, "jwk") }, nil), nil},
		{"jwk with private d", mod(func(h map[string]any) { h["jwk"] = priv }, nil), nil},
		{"jwk symmetric", mod(func(h map[string]any) { h["jwk"] = map[string]any{"kty": "oct", "k": "c2VjcmV0"} }, nil), nil},
		{"jwk RSA", mod(func(h map[string]any) { h["jwk"] = map[string]any{"kty": "RSA", "n": "AQAB", "e": "AQAB"} }, nil), nil},
		{"jwk P-384", mod(func(h map[string]any) {
			raw, _ := p384.PublicKey.Bytes()
			h["jwk"] = map[string]any{"kty": "EC", "crv": "P-384", "x": b64(raw[1:49]), "y": b64(raw[49:])}
		}, nil), nil},
		{"jwk point not on the curve", mod(func(h map[string]any) {
			j := goodHeader(k)["jwk"].(map[string]any)
			j["y"] = b64(make([]byte, 32))
			h["jwk"] = j
		}, nil), nil},
		{"jwk padded coordinate", mod(func(h map[string]any) {
			j := goodHeader(k)["jwk"].(map[string]any)
			j["x"] = j["x"].(string) + "="
			h["jwk"] = j
		}, nil), nil},
		{"signed by another key than the jwk's", mod(func(h map[string]any) { h["jwk"] = otherJWK }, nil), nil},
		{"Ed25519 jwk, P-256 signature", mod(func(h map[string]any) { h["jwk"] = edJWK; h["alg"] = "EdDSA" }, nil), nil},
		{"signature altered", parts[0] + "." + parts[1] + "." + b64(make([]byte, 64)), nil},
		{"signature missing", parts[0] + "." + parts[1] + ".", nil},
		{"claims altered after signing", parts[0] + "." + b64([]byte(`{"jti":"x","htm":"POST","htu":"`+target+`","iat":1800000000}`)) + "." + parts[2], nil},
		{"jti missing", mod(nil, func(c map[string]any) { delete(c, "jti") }), nil},
		{"jti too long", mod(nil, func(c map[string]any) { c["jti"] = strings.Repeat("j", MaxIDLength+1) }), nil},
		{"htm missing", mod(nil, func(c map[string]any) { delete(c, "htm") }), nil},
		{"htm GET for POST", mod(nil, func(c map[string]any) { c["htm"] = "GET" }), nil},
		{"htm lower case", mod(nil, func(c map[string]any) { c["htm"] = "post" }), nil},
		{"htu missing", mod(nil, func(c map[string]any) { delete(c, "htu") }), nil},
		{"htu other path", mod(nil, func(c map[string]any) { c["htu"] = "https://auth.example.com/v1/login" }), nil},
		{"htu other host", mod(nil, func(c map[string]any) { c["htu"] = "https://evil.example/v1/refresh" }), nil},
		{"htu other scheme", mod(nil, func(c map[string]any) { c["htu"] = "http://auth.example.com/v1/refresh" }), nil},
		{"htu other port", mod(nil, func(c map[string]any) { c["htu"] = "https://auth.example.com:8443/v1/refresh" }), nil},
		{"htu relative", mod(nil, func(c map[string]any) { c["htu"] = "/v1/refresh" }), nil},
		{"htu with userinfo", mod(nil, func(c map[string]any) { c["htu"] = "https://u@auth.example.com/v1/refresh" }), nil},
		{"iat missing", mod(nil, func(c map[string]any) { delete(c, "iat") }), nil},
		{"iat a string", mod(nil, func(c map[string]any) { c["iat"] = "1800000000" }), nil},
		{"iat stale", mod(nil, func(c map[string]any) { c["iat"] = now.Add(-Window).Unix() }), nil},
		{"iat in the future", mod(nil, func(c map[string]any) { c["iat"] = now.Add(Leeway + time.Second).Unix() }), nil},
		{"iat negative", mod(nil, func(c map[string]any) { c["iat"] = -1 }), nil},
		{"ath missing with an access token", good, func(r *Request) { r.AccessToken = "at" }},
		{"ath of another token", mod(nil, func(c map[string]any) { c["ath"] = AccessTokenHash("other") }), func(r *Request) { r.AccessToken = "at" }},
		{"nonce too long", mod(nil, func(c map[string]any) { c["nonce"] = strings.Repeat("n", MaxNonceLength+1) }), nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := req
			if c.req != nil {
				c.req(&r)
			}
			_, err := Verify(c.proof, r)
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("got %v, want ErrInvalid", err)
			}
		})
	}
	// And the unmodified proof passes, so each case failed for its own change.
	if _, err := Verify(good, req); err != nil {
		t.Fatalf("the unmodified proof: %v", err)
	}
}

func TestVerifyHTUNormalization(t *testing.T) {
	k := NewKey()
	for _, htu := range []string{
		"https://AUTH.example.com/v1/refresh",
		"HTTPS://auth.example.com:443/v1/refresh",
		"https://auth.example.com/v1/refresh?a=b",
		"https://auth.example.com/v1/refresh#frag",
	} {
		c := goodClaims()
		c["htu"] = htu
		if _, err := Verify(forge(t, k, goodHeader(k), c), Request{Method: "POST", URL: target, Now: now}); err != nil {
			t.Errorf("%s: %v", htu, err)
		}
	}
}

func TestVerifyNonce(t *testing.T) {
	k := NewKey()
	n := NewNonces([]byte(strings.Repeat("s", 32)), time.Minute)
	check := func(nonce string) bool { return n.Valid(nonce, now) }
	for _, c := range []struct {
		name  string
		nonce string
		want  error
	}{
		{"missing", "", ErrUseNonce},
		{"wrong", "bogus", ErrUseNonce},
		{"previous period", n.Issue(now.Add(-time.Minute)), nil},
		{"two periods old", n.Issue(now.Add(-2 * time.Minute)), ErrUseNonce},
		{"of another secret", NewNonces([]byte(strings.Repeat("t", 32)), time.Minute).Issue(now), ErrUseNonce},
		{"current", n.Issue(now), nil},
	} {
		p, _ := k.Proof(Claims{Method: "POST", URL: target, Now: now, Nonce: c.nonce})
		_, err := Verify(p, Request{Method: "POST", URL: target, Now: now, Nonce: check})
		if c.want == nil && err != nil || c.want != nil && !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
	}
	if NewNonces([]byte("a"), time.Minute).Issue(now) != NewNonces([]byte("a"), time.Minute).Issue(now) {
		t.Error("two instances with one secret issue different nonces")
	}
}

func TestFromRequest(t *testing.T) {
	r, _ := http.NewRequest("POST", target, nil)
	if p, err := FromRequest(r); p != "" || err != nil {
		t.Errorf("none: %q %v", p, err)
	}
	r.Header.Add(Header, "a")
	if p, err := FromRequest(r); p != "a" || err != nil {
		t.Errorf("one: %q %v", p, err)
	}
	r.Header.Add(Header, "b")
	if _, err := FromRequest(r); !errors.Is(err, ErrInvalid) {
		t.Errorf("two headers: %v", err)
	}
}

func TestReplayCache(t *testing.T) {
	c := NewReplayCache(2)
	k := NewKey()
	proof := func(at time.Time) *Proof {
		s, _ := k.Proof(Claims{Method: "GET", URL: target, Now: at})
		p, err := Verify(s, Request{Method: "GET", URL: target, Now: at})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := proof(now), proof(now)
	if !c.Accept(a, now) || c.Accept(a, now) {
		t.Fatal("a proof is accepted once")
	}
	same := *a
	same.Thumbprint = NewKey().Thumbprint()
	if !c.Accept(&same, now) {
		t.Fatal("another key's proof with the same jti is not a replay")
	}
	if c.Accept(b, now) {
		t.Fatal("a full cache accepted a proof instead of refusing")
	}
	later := now.Add(Window + Leeway)
	if !c.Accept(proof(later), later) {
		t.Fatal("expired entries were not swept")
	}
}

func TestChallenge(t *testing.T) {
	if got, want := Challenge("invalid_dpop_proof", `bad "x"`), `DPoP error="invalid_dpop_proof", error_description="bad 'x'", algs="ES256 EdDSA"`; got != want {
		t.Errorf("got %s", got)
	}
	if got := Challenge("", ""); got != `DPoP algs="ES256 EdDSA"` {
		t.Errorf("got %s", got)
	}
}
