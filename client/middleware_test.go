package client_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/sessiond/sessiond/client"
)

// TestMiddleware: a good token reaches the handler with its claims in the
// context; a missing or bad one gets a 401 problem with WWW-Authenticate.
func TestMiddleware(t *testing.T) {
	j := newJWKSServer(t)
	v := newTestVerifier(t, j.srv.URL, &client.VerifierOptions{MinRefetchInterval: time.Hour})
	h := v.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, ok := client.ClaimsFromContext(r.Context())
		if !ok {
			t.Error("no claims in the context")
			return
		}
		w.Write([]byte(c.UserID))
	}))
	good := sign(j.key("k1"), goodHeader(), goodClaims(time.Now()))
	expired := sign(j.key("k1"), goodHeader(), map[string]any{"iss": testIssuer, "aud": testAudience, "sub": "u", "sid": "s",
		"iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-time.Minute).Unix()})
	tests := []struct {
		name, auth string
		status     int
		challenge  string
	}{
		{"good", "Bearer " + good, 200, ""},
		{"lower-case scheme", "bearer " + good, 200, ""},
		{"missing", "", 401, `Bearer`},
		{"Basic", "Basic YTpi", 401, `Bearer`},
		{"expired", "Bearer " + expired, 401, `Bearer error="invalid_token"`},
		{"garbage", "Bearer x.y.z", 401, `Bearer error="invalid_token"`},
		{"over-long signature", "Bearer " + overlong(j.key("k1"), time.Now(), 200), 401, `Bearer error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := httptest.NewRequest("GET", "/", nil)
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tt.status {
				t.Fatalf("got status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == 200 {
				if w.Body.String() != "user-1" {
					t.Fatalf("got body %q, want the claims' user id", w.Body)
				}
				return
			}
			if got := w.Header().Get("WWW-Authenticate"); got != tt.challenge {
				t.Fatalf("got WWW-Authenticate %q, want %q", got, tt.challenge)
			}
			var p struct {
				Code   string
				Status int
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/problem+json" {
				t.Fatalf("got Content-Type %q, want application/problem+json", ct)
			}
			if err := json.Unmarshal(w.Body.Bytes(), &p); err != nil || p.Code != "invalid_token" || p.Status != 401 {
				t.Fatalf("got problem %s, want code invalid_token, status 401", w.Body)
			}
		})
	}
}
