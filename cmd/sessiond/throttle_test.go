package main

import (
	"strconv"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/app"
)

func (e *testEnv) loginWith(email, pw, ip string) *response {
	e.t.Helper()
	return e.request("POST", "/v1/login", "application/json",
		[]byte(`{"email":"`+email+`","password":"`+pw+`"}`), map[string]string{"X-Forwarded-For": ip})
}

func TestLoginThrottling(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		url := dbURL(t)
		configure := func(c *app.Config) {
			c.LoginMaxFailures = 3
			c.LoginMaxIPFail = 5
			c.LoginWindow = 10 * time.Minute
			c.TrustedProxies = "127.0.0.1" // so each test request can name its client IP
		}
		e := newTestEnv(t, url, configure)
		// A second instance on the same database: the counts are shared.
		e2 := e.newPeerEnv()
		e.signup("victim@example.com")
		e.signup("other@example.com")

		t.Run("per email, across instances", func(t *testing.T) {
			for i, inst := range []*testEnv{e, e2, e} {
				inst.loginWith("victim@example.com", "wrong password "+strconv.Itoa(i), "203.0.113."+strconv.Itoa(i)).want(t, 401, "invalid_credentials")
			}
			hashes := e.app.Hasher.Computed() + e2.app.Hasher.Computed()
			for _, inst := range []*testEnv{e, e2} {
				r := inst.loginWith("victim@example.com", testPassword, "198.51.100.1").want(t, 429, "too_many_attempts")
				ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
				if err != nil || ra < 1 || ra > 600 {
					t.Fatalf("Retry-After: got %q, want 1..600 seconds", r.Header.Get("Retry-After"))
				}
			}
			if got := e.app.Hasher.Computed() + e2.app.Hasher.Computed(); got != hashes {
				t.Fatalf("throttled logins computed %d password hashes, want 0", got-hashes)
			}
			e.loginWith("other@example.com", testPassword, "198.51.100.1").want(t, 200, "")
		})
		t.Run("window ends", func(t *testing.T) {
			e.clock.Advance(10*time.Minute + time.Second)
			e.loginWith("victim@example.com", testPassword, "198.51.100.2").want(t, 200, "")
		})
		t.Run("success clears the email count", func(t *testing.T) {
			for range 2 {
				e.loginWith("victim@example.com", "wrong password x", "198.51.100.3").want(t, 401, "invalid_credentials")
			}
			e.loginWith("victim@example.com", testPassword, "198.51.100.3").want(t, 200, "")
			for range 2 {
				e.loginWith("victim@example.com", "wrong password y", "198.51.100.4").want(t, 401, "invalid_credentials")
			}
			e.loginWith("victim@example.com", testPassword, "198.51.100.4").want(t, 200, "")
		})
		t.Run("per IP, across emails", func(t *testing.T) {
			e.clock.Advance(11 * time.Minute)
			for i := range 5 {
				e.loginWith("nobody"+strconv.Itoa(i)+"@example.com", "wrong password z", "192.0.2.9").want(t, 401, "invalid_credentials")
			}
			e.loginWith("other@example.com", testPassword, "192.0.2.9").want(t, 429, "too_many_attempts")
			e.loginWith("other@example.com", testPassword, "192.0.2.10").want(t, 200, "")
		})
	})
}
