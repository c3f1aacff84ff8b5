package client_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
)

// TestClaimsHelpers: HasAMR, UsedSecondFactor and AuthenticatedWithin read
// amr and auth_time.
func TestClaimsHelpers(t *testing.T) {
	now := time.Now()
	for _, c := range []struct {
		name                string
		amr                 []string
		authTime            time.Time
		second, recent, otp bool
	}{
		{"password", []string{"pwd"}, now.Add(-time.Minute), false, true, false},
		{"totp", []string{"pwd", "otp"}, now.Add(-time.Minute), true, true, true},
		{"passkey", []string{"hwk", "user"}, now.Add(-time.Hour), true, false, false},
		{"old token", nil, time.Time{}, false, false, false},
		{"future auth_time", []string{"pwd"}, now.Add(time.Hour), false, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			cl := &client.Claims{AMR: c.amr, AuthTime: c.authTime}
			if got := cl.UsedSecondFactor(); got != c.second {
				t.Errorf("UsedSecondFactor: got %v, want %v", got, c.second)
			}
			if got := cl.AuthenticatedWithin(10*time.Minute, now); got != c.recent {
				t.Errorf("AuthenticatedWithin: got %v, want %v", got, c.recent)
			}
			if got := cl.HasAMR("otp"); got != c.otp {
				t.Errorf("HasAMR(otp): got %v, want %v", got, c.otp)
			}
		})
	}
}

// TestRequire: a route behind Require answers 403 reauthentication_required
// with an RFC 9470 challenge unless the claims meet every requirement.
func TestRequire(t *testing.T) {
	now := time.Now()
	h := client.Require(client.SecondFactor(), client.AuthenticatedWithin(10*time.Minute))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ok")) }))
	for _, c := range []struct {
		name      string
		claims    *client.Claims
		status    int
		challenge string
	}{
		{"both", &client.Claims{AMR: []string{"pwd", "otp"}, AuthTime: now}, 200, ""},
		{"no second factor", &client.Claims{AMR: []string{"pwd"}, AuthTime: now}, 403, `error="insufficient_user_authentication"`},
		{"too old", &client.Claims{AMR: []string{"pwd", "otp"}, AuthTime: now.Add(-time.Hour)}, 403, "max_age=600"},
		{"no claims", nil, 401, "Bearer"},
	} {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/billing", nil)
			if c.claims != nil {
				req = req.WithContext(client.NewContext(req.Context(), c.claims))
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != c.status {
				t.Fatalf("got status %d, want %d: %s", w.Code, c.status, w.Body)
			}
			if c.status == 200 {
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); !strings.Contains(got, c.challenge) {
				t.Errorf("WWW-Authenticate: got %q, want it to contain %q", got, c.challenge)
			}
			var p struct{ Code string }
			json.Unmarshal(w.Body.Bytes(), &p)
			want := map[int]string{401: "invalid_token", 403: "reauthentication_required"}[c.status]
			if p.Code != want || w.Header().Get("Content-Type") != "application/problem+json" {
				t.Errorf("got %s %q, want a problem with code %s", w.Header().Get("Content-Type"), w.Body, want)
			}
		})
	}
}

// TestRequireThroughMiddleware: amr and auth_time of a real token reach
// Require through Verifier.Middleware.
func TestRequireThroughMiddleware(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{MinRefetchInterval: time.Hour})
	h := v.Middleware(client.Require(client.AMR("otp"), client.AuthenticatedWithin(5*time.Minute))(
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {})))
	for _, c := range []struct {
		name   string
		amr    []string
		status int
	}{{"otp", []string{"pwd", "otp"}, 200}, {"pwd", []string{"pwd"}, 403}} {
		t.Run(c.name, func(t *testing.T) {
			claims := goodClaims(time.Now())
			claims["amr"], claims["auth_time"] = c.amr, time.Now().Add(-time.Minute).Unix()
			req := httptest.NewRequest("GET", "/", nil)
			req.Header.Set("Authorization", "Bearer "+sign(j.key("k1"), goodHeader(), claims))
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != c.status {
				t.Fatalf("got status %d, want %d: %s", w.Code, c.status, w.Body)
			}
		})
	}
}
