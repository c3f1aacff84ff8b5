package main

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
)

// TestSeedScenario is the seed article's story over HTTP: the sixth login
// evicts the first session, and after a refresh the next login evicts the
// least recently used session, not the oldest created one.
func TestSeedScenario(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		const email = "ada@example.com"
		e.signup(email)

		var s []tokens
		for range 5 {
			s = append(s, e.login(email))
		}
		if got := len(e.liveSessions(email)); got != 5 {
			t.Fatalf("after 5 logins: got %d live sessions, want 5", got)
		}
		s = append(s, e.login(email))
		e.refresh(s[0].RT).want(t, 401, "invalid_refresh_token")
		e.call("GET", "/v1/me", nil, s[0].AT).want(t, 401, "invalid_token")
		live := e.liveSessions(email)
		if len(live) != 5 {
			t.Fatalf("after the 6th login: got %d live sessions, want 5", len(live))
		}
		for _, ls := range live {
			if ls.ID == s[0].SID {
				t.Fatalf("the first session %s survived the 6th login", s[0].SID)
			}
		}

		// Refresh the oldest remaining session (s[1]): it becomes the most
		// recently used, and its new AT works.
		before := sessionByID(t, e.liveSessions(email), s[1].SID).LastUsedAt
		r := e.refresh(s[1].RT).want(t, 200, "")
		after := sessionByID(t, e.liveSessions(email), s[1].SID).LastUsedAt
		if !after.After(before) {
			t.Fatalf("refresh did not move last_used_at forward: before %v, after %v", before, after)
		}
		me := e.call("GET", "/v1/me", nil, r.str("access_token")).want(t, 200, "")
		if me.str("email") != email || me.str("session_id") != s[1].SID {
			t.Fatalf("/v1/me: got %s, want %s in session %s", me.Raw, email, s[1].SID)
		}
		s[1].RT = r.str("refresh_token")

		// The next login evicts s[2], the least recently used, not s[1],
		// the oldest created.
		e.login(email)
		e.refresh(s[2].RT).want(t, 401, "invalid_refresh_token")
		e.refresh(s[1].RT).want(t, 200, "")
		if got := len(e.liveSessions(email)); got != 5 {
			t.Fatalf("at the end: got %d live sessions, want 5", got)
		}
	})
}

// TestConcurrentLogins fires 50 logins for one user at once: invariants 1-2
// leave exactly max_sessions live sessions.
func TestConcurrentLogins(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		// Each login reserves a throttle attempt until its password has
		// checked out, so 50 at once from one client need a pair limit of 50.
		e := newTestEnv(t, dbURL(t), func(c *app.Config) {
			c.LoginMaxFailures = 50
			c.LoginMaxAccountFailures = 50
			c.LoginMaxIPFail = 50
		})
		const email = "grace@example.com"
		e.signup(email)
		var wg sync.WaitGroup
		statuses := make([]int, 50)
		for i := range statuses {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.request("POST", "/v1/login", "application/json",
					[]byte(`{"email":"`+email+`","password":"`+testPassword+`"}`), nil)
				statuses[i] = r.Status
			}()
		}
		wg.Wait()
		for i, s := range statuses {
			if s != 200 {
				t.Errorf("login %d: got status %d, want 200", i, s)
			}
		}
		if got, want := len(e.liveSessions(email)), e.cfg.Policy.MaxSessions; got != want {
			t.Fatalf("got %d live sessions, want %d", got, want)
		}
	})
}

// TestAccessTokenThroughJWKS verifies an AT with nothing but the published
// JWKS, then shows that sessiond refuses tampered and expired tokens.
func TestAccessTokenThroughJWKS(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("alan@example.com")
		tok := e.login("alan@example.com")

		jwks := e.request("GET", "/.well-known/jwks.json", "", nil, nil).want(t, 200, "")
		var doc struct {
			Keys []map[string]string `json:"keys"`
		}
		if err := json.Unmarshal(jwks.Raw, &doc); err != nil {
			t.Fatal(err)
		}
		parts := strings.Split(tok.AT, ".")
		if len(parts) != 3 {
			t.Fatalf("AT has %d parts, want 3", len(parts))
		}
		var header map[string]any
		decodeSegment(t, parts[0], &header)
		if header["alg"] != "EdDSA" || header["typ"] != "at+jwt" {
			t.Fatalf("header: got %v, want alg EdDSA, typ at+jwt", header)
		}
		var pub ed25519.PublicKey
		for _, k := range doc.Keys {
			if _, private := k["d"]; private {
				t.Fatalf("JWKS publishes a private key: %v", k)
			}
			if k["kid"] == header["kid"] && k["kty"] == "OKP" && k["crv"] == "Ed25519" {
				x, err := base64.RawURLEncoding.DecodeString(k["x"])
				if err != nil {
					t.Fatal(err)
				}
				pub = ed25519.PublicKey(x)
			}
		}
		if pub == nil {
			t.Fatalf("JWKS %s has no Ed25519 key with kid %v", jwks.Raw, header["kid"])
		}
		sig, err := base64.RawURLEncoding.DecodeString(parts[2])
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(pub, []byte(parts[0]+"."+parts[1]), sig) {
			t.Fatal("the AT's signature does not verify with the JWKS key")
		}
		var claims map[string]any
		decodeSegment(t, parts[1], &claims)
		for _, c := range []string{"iss", "aud", "sub", "sid", "iat", "exp", "jti"} {
			if _, ok := claims[c]; !ok {
				t.Errorf("claim %q missing from %v", c, claims)
			}
		}
		if claims["sid"] != tok.SID || claims["iss"] != e.cfg.Issuer {
			t.Errorf("claims: got %v, want sid %s and iss %s", claims, tok.SID, e.cfg.Issuer)
		}

		e.call("GET", "/v1/me", nil, tok.AT).want(t, 200, "")
		bad := map[string]string{
			"tampered signature": parts[0] + "." + parts[1] + "." + flipLast(parts[2]),
			"alg none":           segment(t, map[string]any{"alg": "none", "typ": "at+jwt", "kid": header["kid"]}) + "." + parts[1] + ".",
			"changed claims":     parts[0] + "." + segment(t, withClaim(claims, "sub", "someone-else")) + "." + parts[2],
			"not a JWT":          "abc",
		}
		for name, at := range bad {
			t.Run(name, func(t *testing.T) {
				r := e.call("GET", "/v1/me", nil, at).want(t, 401, "invalid_token")
				if got := r.Header.Get("WWW-Authenticate"); got != `Bearer error="invalid_token"` {
					t.Errorf("WWW-Authenticate: got %q", got)
				}
			})
		}
		e.clock.Advance(e.cfg.AccessTTL + time.Minute)
		e.call("GET", "/v1/me", nil, tok.AT).want(t, 401, "invalid_token")
	})
}

// TestRotation covers the rotation rules of docs/API.md over HTTP.
func TestRotation(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		t.Run("concurrent refreshes converge", func(t *testing.T) {
			e := newTestEnv(t, dbURL(t), nil)
			e.signup("tabs@example.com")
			rt0 := e.login("tabs@example.com").RT
			var wg sync.WaitGroup
			got := make([]*response, 2)
			for i := range got {
				wg.Add(1)
				go func() { defer wg.Done(); got[i] = e.refresh(rt0) }()
			}
			wg.Wait()
			for _, r := range got {
				r.want(t, 200, "")
			}
			rt1 := got[0].str("refresh_token")
			if rt1 == rt0 || got[1].str("refresh_token") != rt1 {
				t.Fatalf("got refresh tokens %q and %q from %q, want one new token", rt1, got[1].str("refresh_token"), rt0)
			}
			// A retry inside the window gets the same token too.
			if r := e.refresh(rt0).want(t, 200, ""); r.str("refresh_token") != rt1 {
				t.Fatalf("retry in grace: got %q, want %q", r.str("refresh_token"), rt1)
			}
			rt2 := e.refresh(rt1).want(t, 200, "").str("refresh_token")
			if rt2 == rt1 {
				t.Fatal("a refresh with the current token did not rotate")
			}
			e.refresh(rt2).want(t, 200, "")
		})
		t.Run("grandparent inside the window ends the session", func(t *testing.T) {
			e := newTestEnv(t, dbURL(t), nil)
			e.signup("thief@example.com")
			tok := e.login("thief@example.com")
			rt1 := e.refresh(tok.RT).want(t, 200, "").str("refresh_token")
			rt2 := e.refresh(rt1).want(t, 200, "").str("refresh_token")
			e.refresh(tok.RT).want(t, 401, "refresh_token_reused")
			e.refresh(rt2).want(t, 401, "invalid_refresh_token")
			e.call("GET", "/v1/me", nil, tok.AT).want(t, 401, "invalid_token")
		})
		t.Run("parent after the window ends the session", func(t *testing.T) {
			e := newTestEnv(t, dbURL(t), nil)
			e.signup("late@example.com")
			rt0 := e.login("late@example.com").RT
			rt1 := e.refresh(rt0).want(t, 200, "").str("refresh_token")
			e.clock.Advance(e.cfg.Policy.ReuseGrace + time.Second)
			e.refresh(rt0).want(t, 401, "refresh_token_reused")
			e.refresh(rt1).want(t, 401, "invalid_refresh_token")
		})
		t.Run("rotation off keeps one token", func(t *testing.T) {
			e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.Policy.Rotate = false })
			e.signup("plain@example.com")
			rt := e.login("plain@example.com").RT
			for range 3 {
				e.clock.Advance(time.Minute)
				if got := e.refresh(rt).want(t, 200, "").str("refresh_token"); got != rt {
					t.Fatalf("got %q, want the same token %q", got, rt)
				}
			}
		})
		t.Run("idle and absolute expiry", func(t *testing.T) {
			e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.Policy.IdleTTL = time.Hour; c.Policy.SessionTTL = 3 * time.Hour })
			e.signup("idle@example.com")
			rt := e.login("idle@example.com").RT
			e.clock.Advance(time.Hour + time.Second)
			e.refresh(rt).want(t, 401, "session_expired")
			e.refresh(rt).want(t, 401, "invalid_refresh_token")

			rt = e.login("idle@example.com").RT
			for range 4 { // used every 50 minutes: never idle, but 3h is the limit
				e.clock.Advance(50 * time.Minute)
				r := e.refresh(rt)
				if r.Status != 200 {
					r.want(t, 401, "session_expired")
					return
				}
				rt = r.str("refresh_token")
			}
			t.Fatal("a session used within its idle TTL outlived its absolute TTL")
		})
	})
}

func sessionByID(t *testing.T, ss []sessiond.Session, id string) sessiond.Session {
	t.Helper()
	for _, s := range ss {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("session %s is not live", id)
	return sessiond.Session{}
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

func segment(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func withClaim(c map[string]any, k string, v any) map[string]any {
	out := map[string]any{}
	for key, val := range c {
		out[key] = val
	}
	out[k] = v
	return out
}

func flipLast(s string) string {
	if s[len(s)-2] == 'A' {
		return s[:len(s)-2] + "B" + s[len(s)-1:]
	}
	return s[:len(s)-2] + "A" + s[len(s)-1:]
}
