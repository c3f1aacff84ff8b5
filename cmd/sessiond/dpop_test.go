package main

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/dpop"
	"github.com/sessiond/sessiond/internal/app"
)

// Device-bound sessions (DPoP, RFC 9449) end to end: proofs are signed
// with package dpop's Key, the client half of the protocol, against the
// public URL the test servers are configured with (not the httptest
// address they are reached at), on every store.

// proofFor signs a proof by k for method and path at e's public URL, at
// e's clock; at, when set, is the access token it goes with, nonce the
// server's.
func (e *testEnv) proofFor(k *dpop.Key, method, path, at, nonce string) string {
	e.t.Helper()
	return e.proofAt(k, method, e.cfg.PublicBaseURL()+path, at, nonce, e.clock.Now())
}

func (e *testEnv) proofAt(k *dpop.Key, method, url, at, nonce string, now time.Time) string {
	e.t.Helper()
	p, err := k.Proof(dpop.Claims{Method: method, URL: url, AccessToken: at, Nonce: nonce, Now: now})
	if err != nil {
		e.t.Fatal(err)
	}
	return p
}

// callWith sends v as JSON with the headers h.
func (e *testEnv) callWith(method, path string, v any, h map[string]string) *response {
	e.t.Helper()
	var body []byte
	ct := ""
	if v != nil {
		body, _ = json.Marshal(v)
		ct = "application/json"
	}
	return e.request(method, path, ct, body, h)
}

func dpopHeader(proof string) map[string]string {
	if proof == "" {
		return map[string]string{}
	}
	return map[string]string{"DPoP": proof}
}

// loginDPoP logs email in with a proof by k and returns the tokens of the
// bound session, checking the answer says so.
func (e *testEnv) loginDPoP(email string, k *dpop.Key) tokens {
	e.t.Helper()
	r := e.callWith("POST", "/v1/login", map[string]string{"email": email, "password": testPassword},
		dpopHeader(e.proofFor(k, "POST", "/v1/login", "", ""))).want(e.t, 200, "")
	if r.Body["token_type"] != "DPoP" {
		e.t.Fatalf("login with a proof: got token_type %v, want DPoP", r.Body["token_type"])
	}
	return tokens{AT: r.str("access_token"), RT: r.str("refresh_token"), SID: r.str("session_id")}
}

// refreshDPoP refreshes rt with proof ("" for none).
func (e *testEnv) refreshDPoP(rt, proof string) *response {
	e.t.Helper()
	return e.callWith("POST", "/v1/refresh", map[string]string{"refresh_token": rt}, dpopHeader(proof))
}

// generation is the stored generation of session id.
func (e *testEnv) generation(id string) uint64 {
	e.t.Helper()
	s, err := e.app.Store.Session(context.Background(), id)
	if err != nil || s == nil {
		e.t.Fatalf("session %s: %v, %v", id, s, err)
	}
	return s.Generation
}

func edKey(t *testing.T) *dpop.Key {
	t.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k, err := dpop.KeyFrom(priv)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func cnfJKT(t *testing.T, at string) (string, bool) {
	t.Helper()
	cnf, ok := atClaims(t, at)["cnf"].(map[string]any)
	if !ok {
		return "", false
	}
	jkt, _ := cnf["jkt"].(string)
	return jkt, true
}

func TestDPoPLogin(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		for _, tc := range []struct {
			name      string
			mode      sessiond.DPoPMode
			key       *dpop.Key // nil: no proof
			wantCode  string    // "" for 200
			wantBound bool
		}{
			{"optional with an ES256 proof", sessiond.DPoPOptional, dpop.NewKey(), "", true},
			{"optional with an EdDSA proof", sessiond.DPoPOptional, edKey(t), "", true},
			{"optional without a proof", sessiond.DPoPOptional, nil, "", false},
			{"required without a proof", sessiond.DPoPRequired, nil, sessiond.CodeInvalidDPoPProof, false},
			{"required with a proof", sessiond.DPoPRequired, dpop.NewKey(), "", true},
			{"off ignores the proof", sessiond.DPoPOff, dpop.NewKey(), "", false},
		} {
			t.Run(tc.name, func(t *testing.T) {
				e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.DPoP = string(tc.mode) })
				e.signup("ada@example.com")
				h := map[string]string{}
				if tc.key != nil {
					h = dpopHeader(e.proofFor(tc.key, "POST", "/v1/login", "", ""))
				}
				r := e.callWith("POST", "/v1/login", map[string]string{"email": "ada@example.com", "password": testPassword}, h)
				if tc.wantCode != "" {
					r.want(t, 401, tc.wantCode)
					if n := len(e.liveSessions("ada@example.com")); n != 0 {
						t.Errorf("got %d sessions after a refused login, want 0", n)
					}
					return
				}
				r.want(t, 200, "")
				at := r.str("access_token")
				jkt, hasCnf := cnfJKT(t, at)
				wantType := "Bearer"
				if tc.wantBound {
					wantType = "DPoP"
					if jkt != tc.key.Thumbprint() {
						t.Errorf("cnf.jkt: got %q, want the key's thumbprint %q", jkt, tc.key.Thumbprint())
					}
				} else if hasCnf {
					t.Errorf("unbound session's AT: got cnf %v, want none", atClaims(t, at)["cnf"])
				}
				if r.Body["token_type"] != wantType {
					t.Errorf("token_type: got %v, want %s", r.Body["token_type"], wantType)
				}
				ss := e.liveSessions("ada@example.com")
				if len(ss) != 1 || (ss[0].DPoPJKT != "") != tc.wantBound {
					t.Errorf("stored session: got %+v, want one, bound %v", ss, tc.wantBound)
				}
				ev := e.lastEvent("ada@example.com", "session.created")
				if ev.Data["device_bound"] != tc.wantBound {
					t.Errorf("session.created data: got %v, want device_bound %v", ev.Data, tc.wantBound)
				}
				h = map[string]string{"Authorization": "Bearer " + at}
				if tc.wantBound {
					h = map[string]string{"Authorization": "DPoP " + at, "DPoP": e.proofFor(tc.key, "GET", "/v1/sessions", at, "")}
				}
				list := e.callWith("GET", "/v1/sessions", nil, h).want(t, 200, "")
				if s := list.Body["sessions"].([]any)[0].(map[string]any); s["device_bound"] != tc.wantBound {
					t.Errorf("GET /v1/sessions: got %v, want device_bound %v", s, tc.wantBound)
				}
				admin := e.adminKey("backend")
				list = e.call("GET", "/admin/v1/users/"+e.userID("ada@example.com")+"/sessions", nil, admin).want(t, 200, "")
				if s := list.Body["sessions"].([]any)[0].(map[string]any); s["device_bound"] != tc.wantBound {
					t.Errorf("admin session list: got %v, want device_bound %v", s, tc.wantBound)
				}
			})
		}
	})
}

// TestDPoPLoginProofBeforePassword: a login with a bad proof is refused
// before its password is hashed, and its proof is never accepted twice.
func TestDPoPLoginProofBeforePassword(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/sessiond.db", nil)
	e.signup("ada@example.com")
	k := dpop.NewKey()
	before := e.app.Hasher.Computed()
	for _, proof := range []string{
		e.proofAt(k, "POST", e.srv.URL+"/v1/login", "", "", e.clock.Now()), // the address it was reached at, not the public URL
		e.proofFor(k, "PUT", "/v1/login", "", ""),
		"not.a.proof",
	} {
		e.callWith("POST", "/v1/login", map[string]string{"email": "ada@example.com", "password": "wrong password, not hers"},
			dpopHeader(proof)).want(t, 401, sessiond.CodeInvalidDPoPProof)
	}
	if got := e.app.Hasher.Computed(); got != before {
		t.Errorf("password hashes: got %d more, want none for logins with bad proofs", got-before)
	}
	good := e.proofFor(k, "POST", "/v1/login", "", "")
	login := map[string]string{"email": "ada@example.com", "password": testPassword}
	e.callWith("POST", "/v1/login", login, dpopHeader(good)).want(t, 200, "")
	e.callWith("POST", "/v1/login", login, dpopHeader(good)).want(t, 401, sessiond.CodeInvalidDPoPProof)
	// Two DPoP headers are refused (RFC 9449 §4.3).
	req, _ := http.NewRequest("POST", e.srv.URL+"/v1/login", strings.NewReader(`{"email":"ada@example.com","password":"`+testPassword+`"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Add("DPoP", e.proofFor(k, "POST", "/v1/login", "", ""))
	req.Header.Add("DPoP", e.proofFor(k, "POST", "/v1/login", "", ""))
	resp, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("two DPoP headers: got %d, want 401", resp.StatusCode)
	}
}

// TestDPoPRefreshRefused: every refresh of a bound session without a good
// proof by its key is 401 invalid_dpop_proof and leaves the session as it
// was; a good one refreshes it afterwards.
func TestDPoPRefreshRefused(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		peer := e.newPeerEnv() // a second instance on the same database
		e.signup("ada@example.com")
		k := dpop.NewKey()
		tok := e.loginDPoP("ada@example.com", k)
		rt := tok.RT
		// refreshed refreshes with a good proof at e and returns the new RT.
		refreshed := func(t *testing.T, proof string) string {
			t.Helper()
			r := e.refreshDPoP(rt, proof).want(t, 200, "")
			if r.Body["token_type"] != "DPoP" {
				t.Errorf("refresh of a bound session: got token_type %v, want DPoP", r.Body["token_type"])
			}
			if jkt, _ := cnfJKT(t, r.str("access_token")); jkt != k.Thumbprint() {
				t.Errorf("refreshed AT: got cnf.jkt %q, want %q", jkt, k.Thumbprint())
			}
			return r.str("refresh_token")
		}
		for _, tc := range []struct {
			name string
			// bad returns the instance and the proof of the refused refresh;
			// it may use a proof first, for the replays.
			bad func(t *testing.T) (*testEnv, string)
		}{
			{"no proof", func(t *testing.T) (*testEnv, string) { return e, "" }},
			{"another key's proof", func(t *testing.T) (*testEnv, string) {
				return e, e.proofFor(dpop.NewKey(), "POST", "/v1/refresh", "", "")
			}},
			{"the same proof twice", func(t *testing.T) (*testEnv, string) {
				p := e.proofFor(k, "POST", "/v1/refresh", "", "")
				rt = refreshed(t, p)
				return e, p
			}},
			{"the same proof at another instance", func(t *testing.T) (*testEnv, string) {
				p := e.proofFor(k, "POST", "/v1/refresh", "", "")
				rt = refreshed(t, p)
				return peer, p
			}},
			{"a stale iat", func(t *testing.T) (*testEnv, string) {
				return e, e.proofAt(k, "POST", e.cfg.PublicBaseURL()+"/v1/refresh", "", "", e.clock.Now().Add(-dpop.Window-time.Second))
			}},
			{"an iat in the future", func(t *testing.T) (*testEnv, string) {
				return e, e.proofAt(k, "POST", e.cfg.PublicBaseURL()+"/v1/refresh", "", "", e.clock.Now().Add(time.Minute))
			}},
			{"a wrong htu", func(t *testing.T) (*testEnv, string) {
				return e, e.proofAt(k, "POST", "https://elsewhere.test/v1/refresh", "", "", e.clock.Now())
			}},
			{"the htu of the Host header", func(t *testing.T) (*testEnv, string) {
				return e, e.proofAt(k, "POST", e.srv.URL+"/v1/refresh", "", "", e.clock.Now())
			}},
			{"the htu of another endpoint", func(t *testing.T) (*testEnv, string) {
				return e, e.proofFor(k, "POST", "/v1/logout", "", "")
			}},
			{"a wrong htm", func(t *testing.T) (*testEnv, string) {
				return e, e.proofFor(k, "GET", "/v1/refresh", "", "")
			}},
			{"a proof with an ath", func(t *testing.T) (*testEnv, string) {
				// Made for a resource request, not a refresh; still a
				// proof by the key for this request: accepted.
				return nil, e.proofFor(k, "POST", "/v1/refresh", tok.AT, "")
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				at, proof := tc.bad(t)
				if at == nil {
					rt = refreshed(t, proof)
					return
				}
				gen := e.generation(tok.SID)
				at.refreshDPoP(rt, proof).want(t, 401, sessiond.CodeInvalidDPoPProof)
				if got := e.generation(tok.SID); got != gen {
					t.Errorf("generation: got %d after the refused refresh, want %d", got, gen)
				}
				rt = refreshed(t, e.proofFor(k, "POST", "/v1/refresh", "", ""))
				if got := e.generation(tok.SID); got != gen+1 {
					t.Errorf("generation: got %d after a good refresh, want %d", got, gen+1)
				}
			})
		}
	})
}

// TestDPoPStolenRefreshToken: a thief holding the session's old refresh
// tokens but not its key can neither refresh nor end it; reuse detection
// does not fire for him, so he cannot log the owner out.
func TestDPoPStolenRefreshToken(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		k := dpop.NewKey()
		tok := e.loginDPoP("ada@example.com", k)
		rts := []string{tok.RT}
		for range 2 {
			r := e.refreshDPoP(rts[len(rts)-1], e.proofFor(k, "POST", "/v1/refresh", "", "")).want(t, 200, "")
			rts = append(rts, r.str("refresh_token"))
		}
		thief := dpop.NewKey()
		for i, rt := range rts { // the ancestors would be reuse; the current one is just refused
			for _, proof := range []string{"", e.proofFor(thief, "POST", "/v1/refresh", "", "")} {
				e.refreshDPoP(rt, proof).want(t, 401, sessiond.CodeInvalidDPoPProof)
			}
			for _, proof := range []string{"", e.proofFor(thief, "POST", "/v1/logout", "", "")} {
				e.callWith("POST", "/v1/logout", map[string]string{"refresh_token": rt}, dpopHeader(proof)).
					want(t, 401, sessiond.CodeInvalidDPoPProof)
			}
			if n := len(e.liveSessions("ada@example.com")); n != 1 {
				t.Fatalf("after the thief's tries with RT %d: got %d sessions, want the owner's 1", i, n)
			}
		}
		if n := e.countEvents("session.ended"); n != 0 {
			t.Errorf("session.ended events: got %d, want none", n)
		}
		r := e.refreshDPoP(rts[2], e.proofFor(k, "POST", "/v1/refresh", "", "")).want(t, 200, "")
		// The owner, with the key, logs out.
		e.callWith("POST", "/v1/logout", map[string]string{"refresh_token": r.str("refresh_token")},
			dpopHeader(e.proofFor(k, "POST", "/v1/logout", "", ""))).want(t, 204, "")
		if n := len(e.liveSessions("ada@example.com")); n != 0 {
			t.Errorf("after the owner's logout: got %d sessions, want 0", n)
		}
	})
}

// TestDPoPCookieMode: in cookie mode the refresh token is a cookie and the
// proof a header, and a bound session's cookie without the key is refused
// without clearing it.
func TestDPoPCookieMode(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/sessiond.db", nil)
	e.signup("ada@example.com")
	k := dpop.NewKey()
	browser := func(rt, proof string) map[string]string {
		h := map[string]string{"X-Sessiond-Cookie": "1", "X-Sessiond-CSRF": "1", "Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin"}
		if rt != "" {
			h["Cookie"] = "__Host-sessiond_rt=" + rt
		}
		if proof != "" {
			h["DPoP"] = proof
		}
		return h
	}
	login := e.request("POST", "/v1/login", "application/json",
		[]byte(`{"email":"ada@example.com","password":"`+testPassword+`"}`), browser("", e.proofFor(k, "POST", "/v1/login", "", ""))).want(t, 200, "")
	if login.Body["token_type"] != "DPoP" {
		t.Fatalf("cookie-mode login with a proof: got token_type %v, want DPoP", login.Body["token_type"])
	}
	rt, _ := cookieRT(t, login)
	r := e.request("POST", "/v1/refresh", "", nil, browser(rt, "")).want(t, 401, sessiond.CodeInvalidDPoPProof)
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "__Host-sessiond_rt" {
			t.Errorf("refused refresh set the cookie %+v, want it left alone", c)
		}
	}
	r = e.request("POST", "/v1/refresh", "", nil, browser(rt, e.proofFor(k, "POST", "/v1/refresh", "", ""))).want(t, 200, "")
	rt, _ = cookieRT(t, r)
	e.request("POST", "/v1/logout", "", nil, browser(rt, "")).want(t, 401, sessiond.CodeInvalidDPoPProof)
	e.request("POST", "/v1/logout", "", nil, browser(rt, e.proofFor(k, "POST", "/v1/logout", "", ""))).want(t, 204, "")
}

// TestDPoPOwnEndpoints: sessiond's own endpoints take a bound access token
// only with the DPoP scheme and a proof by its key for it and the request.
func TestDPoPOwnEndpoints(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		e.signup("bob@example.com")
		k := dpop.NewKey()
		tok := e.loginDPoP("ada@example.com", k)
		other := e.loginDPoP("ada@example.com", k) // a second session of the same key
		plain := e.login("bob@example.com")

		e.callWith("GET", "/v1/me", nil, map[string]string{"Authorization": "DPoP " + tok.AT,
			"DPoP": e.proofFor(k, "GET", "/v1/me", tok.AT, "")}).want(t, 200, "")
		list := e.callWith("GET", "/v1/sessions", nil, map[string]string{"Authorization": "dpop " + tok.AT,
			"DPoP": e.proofFor(k, "GET", "/v1/sessions", tok.AT, "")}).want(t, 200, "")
		if n := len(list.Body["sessions"].([]any)); n != 2 {
			t.Errorf("GET /v1/sessions: got %d sessions, want 2", n)
		}

		replayed := e.proofFor(k, "GET", "/v1/me", tok.AT, "")
		e.callWith("GET", "/v1/me", nil, map[string]string{"Authorization": "DPoP " + tok.AT, "DPoP": replayed}).want(t, 200, "")
		for _, tc := range []struct {
			name, auth, proof, code string
		}{
			{"bound token as Bearer", "Bearer " + tok.AT, "", sessiond.CodeInvalidToken},
			{"bound token as Bearer with a proof", "Bearer " + tok.AT, e.proofFor(k, "GET", "/v1/me", tok.AT, ""), sessiond.CodeInvalidToken},
			{"unbound token as DPoP", "DPoP " + plain.AT, e.proofFor(k, "GET", "/v1/me", plain.AT, ""), sessiond.CodeInvalidToken},
			{"DPoP without a proof", "DPoP " + tok.AT, "", sessiond.CodeInvalidDPoPProof},
			{"a proof without ath", "DPoP " + tok.AT, e.proofFor(k, "GET", "/v1/me", "", ""), sessiond.CodeInvalidDPoPProof},
			{"a proof with another token's ath", "DPoP " + tok.AT, e.proofFor(k, "GET", "/v1/me", other.AT, ""), sessiond.CodeInvalidDPoPProof},
			{"another key's proof", "DPoP " + tok.AT, e.proofFor(dpop.NewKey(), "GET", "/v1/me", tok.AT, ""), sessiond.CodeInvalidDPoPProof},
			{"a proof for another path", "DPoP " + tok.AT, e.proofFor(k, "GET", "/v1/sessions", tok.AT, ""), sessiond.CodeInvalidDPoPProof},
			{"a proof for another method", "DPoP " + tok.AT, e.proofFor(k, "DELETE", "/v1/me", tok.AT, ""), sessiond.CodeInvalidDPoPProof},
			{"a replayed proof", "DPoP " + tok.AT, replayed, sessiond.CodeInvalidDPoPProof},
		} {
			t.Run(tc.name, func(t *testing.T) {
				h := map[string]string{"Authorization": tc.auth}
				if tc.proof != "" {
					h["DPoP"] = tc.proof
				}
				r := e.callWith("GET", "/v1/me", nil, h).want(t, 401, tc.code)
				challenges := strings.Join(r.Header.Values("WWW-Authenticate"), "\n")
				if !strings.Contains(challenges, `DPoP error="`+tc.code+`"`) || !strings.Contains(challenges, `algs="ES256 EdDSA"`) {
					t.Errorf("WWW-Authenticate: got %q, want the DPoP challenge with error %q", challenges, tc.code)
				}
				if tc.code == sessiond.CodeInvalidToken && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), `Bearer error="invalid_token"`) {
					t.Errorf("WWW-Authenticate: got %q, want the Bearer challenge too", challenges)
				}
			})
		}

		// A path with a parameter, and logout-all, with proofs.
		e.callWith("DELETE", "/v1/sessions/"+other.SID, nil, map[string]string{"Authorization": "DPoP " + tok.AT,
			"DPoP": e.proofFor(k, "DELETE", "/v1/sessions/"+other.SID, tok.AT, "")}).want(t, 204, "")
		e.callWith("POST", "/v1/logout-all", nil, map[string]string{"Authorization": "Bearer " + tok.AT}).want(t, 401, sessiond.CodeInvalidToken)
		e.callWith("POST", "/v1/logout-all", nil, map[string]string{"Authorization": "DPoP " + tok.AT,
			"DPoP": e.proofFor(k, "POST", "/v1/logout-all", tok.AT, "")}).want(t, 204, "")
		if n := len(e.liveSessions("ada@example.com")); n != 0 {
			t.Errorf("after logout-all: got %d sessions, want 0", n)
		}
	})
}

// TestDPoPAdminSession: a backend relays its client's proof, made for the
// backend's own URL, and the session it opens is bound to the client's key.
func TestDPoPAdminSession(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		admin := e.adminKey("backend")
		path := "/admin/v1/users/" + e.userID("ada@example.com") + "/sessions"
		k := edKey(t)
		const backend = "https://app.example.com/sso/callback"
		for _, tc := range []struct {
			name string
			body map[string]string
			code string
		}{
			{"the proof for another URL", map[string]string{"dpop_proof": e.proofAt(k, "POST", backend, "", "", e.clock.Now()), "dpop_htu": "https://app.example.com/other"}, sessiond.CodeInvalidDPoPProof},
			{"the proof for another method", map[string]string{"dpop_proof": e.proofAt(k, "GET", backend, "", "", e.clock.Now()), "dpop_htu": backend}, sessiond.CodeInvalidDPoPProof},
			{"a proof without its URL", map[string]string{"dpop_proof": e.proofAt(k, "POST", backend, "", "", e.clock.Now())}, sessiond.CodeInvalidRequest},
			{"a URL without a proof", map[string]string{"dpop_htu": backend}, sessiond.CodeInvalidRequest},
			{"a method that is none", map[string]string{"dpop_proof": e.proofAt(k, "POST", backend, "", "", e.clock.Now()), "dpop_htu": backend, "dpop_htm": "post it"}, sessiond.CodeInvalidRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				status := 401
				if tc.code == sessiond.CodeInvalidRequest {
					status = 400
				}
				e.call("POST", path, tc.body, admin).want(t, status, tc.code)
			})
		}
		proof := e.proofAt(k, "GET", backend, "", "", e.clock.Now())
		r := e.call("POST", path, map[string]string{"dpop_proof": proof, "dpop_htu": backend, "dpop_htm": "GET"}, admin).want(t, 200, "")
		if r.Body["token_type"] != "DPoP" {
			t.Fatalf("admin session with a proof: got token_type %v, want DPoP", r.Body["token_type"])
		}
		if jkt, _ := cnfJKT(t, r.str("access_token")); jkt != k.Thumbprint() {
			t.Errorf("cnf.jkt: got %q, want %q", jkt, k.Thumbprint())
		}
		e.call("POST", path, map[string]string{"dpop_proof": proof, "dpop_htu": backend, "dpop_htm": "GET"}, admin).want(t, 401, sessiond.CodeInvalidDPoPProof)
		// The client refreshes at sessiond itself, with the same key.
		e.refreshDPoP(r.str("refresh_token"), "").want(t, 401, sessiond.CodeInvalidDPoPProof)
		e.refreshDPoP(r.str("refresh_token"), e.proofFor(k, "POST", "/v1/refresh", "", "")).want(t, 200, "")
	})
}

// TestDPoPConcurrentSameProof: of concurrent refreshes that each carry the
// same proof, at most one succeeds, on one instance or two.
func TestDPoPConcurrentSameProof(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.Policy.ReuseGrace = time.Minute })
		peer := e.newPeerEnv()
		e.signup("ada@example.com")
		k := dpop.NewKey()
		tok := e.loginDPoP("ada@example.com", k)
		proof := e.proofFor(k, "POST", "/v1/refresh", "", "")
		body, _ := json.Marshal(map[string]string{"refresh_token": tok.RT})
		const n = 8
		statuses := make([]int, n)
		codes := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			srv := e.srv
			if i%2 == 1 {
				srv = peer.srv
			}
			wg.Go(func() {
				req, _ := http.NewRequest("POST", srv.URL+"/v1/refresh", bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("DPoP", proof)
				resp, err := srv.Client().Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				defer resp.Body.Close()
				raw, _ := io.ReadAll(resp.Body)
				var p struct{ Code string }
				json.Unmarshal(raw, &p)
				statuses[i], codes[i] = resp.StatusCode, p.Code
			})
		}
		wg.Wait()
		ok := 0
		for i := range n {
			switch {
			case statuses[i] == 200:
				ok++
			case statuses[i] == 401 && codes[i] == sessiond.CodeInvalidDPoPProof:
			default:
				t.Errorf("refresh %d: got %d %q, want 200 or 401 %s", i, statuses[i], codes[i], sessiond.CodeInvalidDPoPProof)
			}
		}
		if ok != 1 {
			t.Errorf("refreshes that succeeded: got %d of %d, want exactly 1", ok, n)
		}
		if got := e.generation(tok.SID); got != 1 {
			t.Errorf("generation: got %d, want 1", got)
		}
	})
}

// TestDPoPNonceAcrossInstances: with nonces on, a proof without one is
// answered 401 use_dpop_nonce with a DPoP-Nonce header, and that nonce
// works at another instance sharing the database.
func TestDPoPNonceAcrossInstances(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.DPoPNonce = true })
		peer := e.newPeerEnv()
		e.signup("ada@example.com")
		k := dpop.NewKey()
		login := map[string]string{"email": "ada@example.com", "password": testPassword}
		r := e.callWith("POST", "/v1/login", login, dpopHeader(e.proofFor(k, "POST", "/v1/login", "", ""))).
			want(t, 401, sessiond.CodeUseDPoPNonce)
		nonce := r.Header.Get("DPoP-Nonce")
		if nonce == "" {
			t.Fatalf("use_dpop_nonce answer: no DPoP-Nonce header")
		}
		e.callWith("POST", "/v1/login", login, dpopHeader(e.proofFor(k, "POST", "/v1/login", "", "a made-up nonce"))).
			want(t, 401, sessiond.CodeUseDPoPNonce)
		r = peer.callWith("POST", "/v1/login", login, dpopHeader(peer.proofFor(k, "POST", "/v1/login", "", nonce))).want(t, 200, "")
		if r.Body["token_type"] != "DPoP" {
			t.Fatalf("login with the nonce: got token_type %v, want DPoP", r.Body["token_type"])
		}
		if r.Header.Get("DPoP-Nonce") == "" {
			t.Errorf("answer to a request with a proof: no DPoP-Nonce header")
		}
		rt, at := r.str("refresh_token"), r.str("access_token")
		// Refresh and the own endpoints need it too.
		e.refreshDPoP(rt, e.proofFor(k, "POST", "/v1/refresh", "", "")).want(t, 401, sessiond.CodeUseDPoPNonce)
		r = e.refreshDPoP(rt, e.proofFor(k, "POST", "/v1/refresh", "", nonce)).want(t, 200, "")
		at = r.str("access_token")
		me := peer.callWith("GET", "/v1/me", nil, map[string]string{"Authorization": "DPoP " + at,
			"DPoP": peer.proofFor(k, "GET", "/v1/me", at, "")}).want(t, 401, sessiond.CodeUseDPoPNonce)
		if !strings.Contains(strings.Join(me.Header.Values("WWW-Authenticate"), "\n"), `DPoP error="use_dpop_nonce"`) {
			t.Errorf("WWW-Authenticate: got %q, want the DPoP challenge with use_dpop_nonce", me.Header.Values("WWW-Authenticate"))
		}
		peer.callWith("GET", "/v1/me", nil, map[string]string{"Authorization": "DPoP " + at,
			"DPoP": peer.proofFor(k, "GET", "/v1/me", at, me.Header.Get("DPoP-Nonce"))}).want(t, 200, "")
		// A nonce two periods old is stale.
		e.clock.Advance(2*app.DPoPNoncePeriod + time.Second)
		e.refreshDPoP(rt, e.proofFor(k, "POST", "/v1/refresh", "", nonce)).want(t, 401, sessiond.CodeUseDPoPNonce)
	})
}

// TestDPoPLoginSecondStepAndPasskey: the request that completes a login
// with a second factor binds the session, and so does a passkey login.
func TestDPoPLoginSecondStepAndPasskey(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		s := e.login("ada@example.com")
		a := newSoftAuthenticator(t, testOrigin, testRPID)
		e.registerPasskey(a, s.AT, "Laptop").want(t, 201, "")
		secret, _ := e.enrolTOTP(s.AT)
		k := dpop.NewKey()

		{ // the second factor
			tok := loginWith(e, "ada@example.com", testPassword).want(t, 403, "mfa_required").str("mfa_token")
			body := map[string]string{"mfa_token": tok, "code": e.totpCode(secret, 0)}
			// A bad proof is refused before the code is looked at: the
			// code and the token's attempts stay unspent.
			e.callWith("POST", "/v1/login/mfa", body, dpopHeader(e.proofFor(k, "POST", "/v1/login", "", ""))).
				want(t, 401, sessiond.CodeInvalidDPoPProof)
			r := e.callWith("POST", "/v1/login/mfa", body, dpopHeader(e.proofFor(k, "POST", "/v1/login/mfa", "", ""))).want(t, 200, "")
			if r.Body["token_type"] != "DPoP" {
				t.Fatalf("second step with a proof: got token_type %v, want DPoP", r.Body["token_type"])
			}
			if jkt, _ := cnfJKT(t, r.str("access_token")); jkt != k.Thumbprint() {
				t.Errorf("cnf.jkt: got %q, want %q", jkt, k.Thumbprint())
			}
			if ev := e.lastEvent("ada@example.com", "session.created"); ev.Data["device_bound"] != true || ev.Data["method"] != "mfa" {
				t.Errorf("session.created data: got %v, want method mfa, device_bound", ev.Data)
			}
			e.refreshDPoP(r.str("refresh_token"), "").want(t, 401, sessiond.CodeInvalidDPoPProof)
			e.refreshDPoP(r.str("refresh_token"), e.proofFor(k, "POST", "/v1/refresh", "", "")).want(t, 200, "")
		}
		{ // a passkey login
			a.counter++
			id, opts := e.beginPasskeyLogin()
			body := map[string]any{"challenge_id": id, "credential": a.get(opts)}
			e.callWith("POST", "/v1/login/passkey/finish", body, dpopHeader(e.proofFor(k, "GET", "/v1/login/passkey/finish", "", ""))).
				want(t, 401, sessiond.CodeInvalidDPoPProof)
			r := e.callWith("POST", "/v1/login/passkey/finish", body, dpopHeader(e.proofFor(k, "POST", "/v1/login/passkey/finish", "", ""))).want(t, 200, "")
			if r.Body["token_type"] != "DPoP" {
				t.Fatalf("passkey login with a proof: got token_type %v, want DPoP", r.Body["token_type"])
			}
			if jkt, _ := cnfJKT(t, r.str("access_token")); jkt != k.Thumbprint() {
				t.Errorf("cnf.jkt: got %q, want %q", jkt, k.Thumbprint())
			}
		}
	})
}

// TestDPoPModes: off binds no new session but keeps the bindings made
// before; required refuses an admin-created session without a proof too.
func TestDPoPModes(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		k := dpop.NewKey()
		tok := e.loginDPoP("ada@example.com", k)

		off := e.cfg
		off.DPoP = string(sessiond.DPoPOff)
		o := newTestEnvWith(t, off, nil, e.clock) // another instance, on the same database, with DPoP off
		o.refreshDPoP(tok.RT, "").want(t, 401, sessiond.CodeInvalidDPoPProof)
		o.callWith("GET", "/v1/me", nil, map[string]string{"Authorization": "Bearer " + tok.AT}).want(t, 401, sessiond.CodeInvalidToken)
		r := o.refreshDPoP(tok.RT, o.proofFor(k, "POST", "/v1/refresh", "", "")).want(t, 200, "")
		if r.Body["token_type"] != "DPoP" {
			t.Errorf("refresh of a bound session with DPoP off: got token_type %v, want DPoP", r.Body["token_type"])
		}

		required := e.cfg
		required.DPoP = string(sessiond.DPoPRequired)
		q := newTestEnvWith(t, required, nil, e.clock)
		admin := q.adminKey("backend")
		path := "/admin/v1/users/" + q.userID("ada@example.com") + "/sessions"
		q.call("POST", path, map[string]string{"user_agent": "Backend/1"}, admin).want(t, 401, sessiond.CodeInvalidDPoPProof)
		const backend = "https://app.example.com/sso"
		q.call("POST", path, map[string]string{"dpop_proof": q.proofAt(k, "POST", backend, "", "", q.clock.Now()), "dpop_htu": backend}, admin).want(t, 200, "")
	})
}

// TestDPoPUnboundSessionWithProofs: a proof with the refresh or logout of
// an unbound session is checked, and binds nothing.
func TestDPoPUnboundSessionWithProofs(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		e.signup("ada@example.com")
		tok := e.login("ada@example.com")
		k := dpop.NewKey()
		e.refreshDPoP(tok.RT, e.proofFor(k, "POST", "/v1/elsewhere", "", "")).want(t, 401, sessiond.CodeInvalidDPoPProof)
		r := e.refreshDPoP(tok.RT, e.proofFor(k, "POST", "/v1/refresh", "", "")).want(t, 200, "")
		if _, has := cnfJKT(t, r.str("access_token")); has || r.Body["token_type"] != "Bearer" {
			t.Errorf("refresh of an unbound session with a proof: got token_type %v, cnf %v; want Bearer, none", r.Body["token_type"], has)
		}
		// Still unbound: it refreshes without a proof.
		r = e.refreshDPoP(r.str("refresh_token"), "").want(t, 200, "")
		e.callWith("POST", "/v1/logout", map[string]string{"refresh_token": r.str("refresh_token")},
			dpopHeader("garbage")).want(t, 401, sessiond.CodeInvalidDPoPProof)
		e.callWith("POST", "/v1/logout", map[string]string{"refresh_token": r.str("refresh_token")},
			dpopHeader(e.proofFor(k, "POST", "/v1/logout", "", ""))).want(t, 204, "")
	})
}
