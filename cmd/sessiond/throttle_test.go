package main

import (
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/app"
)

func (e *testEnv) loginWith(email, pw, ip string) *response {
	e.t.Helper()
	return e.loginDevice(email, pw, ip, "")
}

// loginDevice logs in from ip, sending device as the device token when set.
func (e *testEnv) loginDevice(email, pw, ip, device string) *response {
	e.t.Helper()
	body := map[string]string{"email": email, "password": pw}
	if device != "" {
		body["device_token"] = device
	}
	raw, _ := json.Marshal(body)
	return e.request("POST", "/v1/login", "application/json", raw, map[string]string{"X-Forwarded-For": ip})
}

// wantRetryAfter fails t unless r says to retry in 1..max seconds, and
// returns how many.
func wantRetryAfter(t *testing.T, r *response, max time.Duration) int {
	t.Helper()
	ra, err := strconv.Atoi(r.Header.Get("Retry-After"))
	if err != nil || ra < 1 || time.Duration(ra)*time.Second > max {
		t.Fatalf("Retry-After: got %q, want 1..%v seconds", r.Header.Get("Retry-After"), max.Seconds())
	}
	return ra
}

// throttled is the configuration of the throttling tests: small limits, and
// each request names its client IP through the trusted proxy 127.0.0.1.
func throttled(pair, account, ip int) func(c *app.Config) {
	return func(c *app.Config) {
		c.LoginMaxFailures = pair
		c.LoginMaxAccountFailures = account
		c.LoginMaxIPFail = ip
		c.LoginWindow = 10 * time.Minute
		c.TrustedProxies = "127.0.0.1"
	}
}

func TestLoginThrottling(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), throttled(3, 100, 5))
		// A second instance on the same database: the counts are shared.
		e2 := e.newPeerEnv()
		e.signup("victim@example.com")
		e.signup("other@example.com")

		t.Run("per email and IP, across instances", func(t *testing.T) {
			for i, inst := range []*testEnv{e, e2, e} {
				inst.loginWith("victim@example.com", "wrong password "+strconv.Itoa(i), "203.0.113.1").want(t, 401, "invalid_credentials")
			}
			hashes := e.app.Hasher.Computed() + e2.app.Hasher.Computed()
			for _, inst := range []*testEnv{e, e2} {
				r := inst.loginWith("victim@example.com", testPassword, "203.0.113.1").want(t, 429, "too_many_attempts")
				wantRetryAfter(t, r, 10*time.Minute)
			}
			if got := e.app.Hasher.Computed() + e2.app.Hasher.Computed(); got != hashes {
				t.Fatalf("throttled logins computed %d password hashes, want 0", got-hashes)
			}
			e.loginWith("other@example.com", testPassword, "203.0.113.1").want(t, 200, "")
			// The owner elsewhere is not locked out.
			e2.loginWith("victim@example.com", testPassword, "198.51.100.1").want(t, 200, "")
		})
		t.Run("window ends", func(t *testing.T) {
			e.clock.Advance(10*time.Minute + time.Second)
			e.loginWith("victim@example.com", testPassword, "203.0.113.1").want(t, 200, "")
		})
		t.Run("success clears the pair count", func(t *testing.T) {
			for range 2 {
				e.loginWith("victim@example.com", "wrong password x", "198.51.100.3").want(t, 401, "invalid_credentials")
			}
			e.loginWith("victim@example.com", testPassword, "198.51.100.3").want(t, 200, "")
			for range 2 {
				e.loginWith("victim@example.com", "wrong password y", "198.51.100.3").want(t, 401, "invalid_credentials")
			}
			e.loginWith("victim@example.com", testPassword, "198.51.100.3").want(t, 200, "")
		})
		t.Run("per IP, across emails", func(t *testing.T) {
			e.clock.Advance(11 * time.Minute)
			for i := range 5 {
				e.loginWith("nobody"+strconv.Itoa(i)+"@example.com", "wrong password z", "192.0.2.9").want(t, 401, "invalid_credentials")
			}
			e.loginWith("other@example.com", testPassword, "192.0.2.9").want(t, 429, "too_many_attempts")
			e.loginWith("other@example.com", testPassword, "192.0.2.10").want(t, 200, "")
		})
		t.Run("IPv6 clients count by their /64", func(t *testing.T) {
			for _, ip := range []string{"2001:db8:1:2::1", "2001:db8:1:2::2", "2001:db8:1:2:ffff::3"} {
				e.loginWith("victim@example.com", "wrong password v6", ip).want(t, 401, "invalid_credentials")
			}
			e.loginWith("victim@example.com", testPassword, "2001:db8:1:2:abcd::9").want(t, 429, "too_many_attempts")
			e.loginWith("victim@example.com", testPassword, "2001:db8:1:3::1").want(t, 200, "")
		})
		t.Run("a client that keeps failing waits longer each time", func(t *testing.T) {
			const ip = "203.0.113.77"
			var waits []int
			for range 3 {
				for range 3 {
					e.loginWith("victim@example.com", "wrong password w", ip).want(t, 401, "invalid_credentials")
				}
				r := e.loginWith("victim@example.com", "wrong password w", ip).want(t, 429, "too_many_attempts")
				wait := wantRetryAfter(t, r, 40*time.Minute)
				waits = append(waits, wait)
				e.clock.Advance(time.Duration(wait) * time.Second)
			}
			// 10, 20, 40 minutes: each used-up window doubles the next.
			if !(waits[0] <= 600 && waits[1] > 600 && waits[1] <= 1200 && waits[2] > 1200) {
				t.Fatalf("Retry-After of three used-up windows: got %v seconds, want about 600, 1200, 2400", waits)
			}
		})
	})
}

// TestConcurrentGuessesReserveBeforeHashing fires 30 wrong guesses for one
// email from one client at once against a limit of 5: at most 5 passwords
// are hashed, the rest get 429 with Retry-After, on both stores.
func TestConcurrentGuessesReserveBeforeHashing(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), throttled(5, 100, 100))
		e.signup("target@example.com")
		before := e.app.Hasher.Computed()
		const guesses = 30
		var wg sync.WaitGroup
		got := make([]*http.Response, guesses)
		errs := make([]error, guesses)
		for i := range guesses {
			wg.Go(func() {
				req, _ := http.NewRequest("POST", e.srv.URL+"/v1/login",
					strings.NewReader(`{"email":"target@example.com","password":"wrong guess `+strconv.Itoa(i)+`"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", "203.0.113.5")
				got[i], errs[i] = e.srv.Client().Do(req)
				if errs[i] == nil {
					got[i].Body.Close()
				}
			})
		}
		wg.Wait()
		checked, refused := 0, 0
		for i, r := range got {
			if errs[i] != nil {
				t.Fatalf("guess %d: %v", i, errs[i])
			}
			switch r.StatusCode {
			case 401:
				checked++
			case 429:
				refused++
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("guess %d: 429 without Retry-After", i)
				}
			default:
				t.Errorf("guess %d: got status %d, want 401 or 429", i, r.StatusCode)
			}
		}
		hashes := e.app.Hasher.Computed() - before
		if hashes > 5 || checked > 5 || checked+refused != guesses {
			t.Fatalf("got %d hashes, %d checked, %d refused; want at most 5 hashes and checks, the rest refused", hashes, checked, refused)
		}
	})
}

// TestOwnerNotLockedOut is the lockout a guesser could once force on any
// account: it now holds the guesser alone, and the per-email ceiling holds
// a guesser spraying from many IPs but not the owner's known device.
func TestOwnerNotLockedOut(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), throttled(3, 6, 100))
		const owner = "owner@example.com"
		e.signup(owner)

		// The owner logs in once from home: the answer carries a device token.
		device := e.loginWith(owner, testPassword, "198.51.100.7").want(t, 200, "").str("device_token")
		if device == "" {
			t.Fatal("login returned no device_token")
		}

		// An attacker at one IP exhausts the owner's email there.
		const attacker = "203.0.113.66"
		for range 3 {
			e.loginWith(owner, "guess guess guess", attacker).want(t, 401, "invalid_credentials")
		}
		e.loginWith(owner, "guess guess guess", attacker).want(t, 429, "too_many_attempts")

		t.Run("the owner from another IP logs in", func(t *testing.T) {
			e.loginWith(owner, testPassword, "198.51.100.8").want(t, 200, "")
		})
		t.Run("the attacker stays refused, even with the right password", func(t *testing.T) {
			e.loginWith(owner, "guess guess guess", attacker).want(t, 429, "too_many_attempts")
			e.loginWith(owner, testPassword, attacker).want(t, 429, "too_many_attempts")
		})
		t.Run("spraying from many IPs is held by the per-email ceiling", func(t *testing.T) {
			// 3 failures are counted already; 3 more from fresh IPs reach 6.
			for i := range 3 {
				e.loginWith(owner, "spray spray spray", "192.0.2."+strconv.Itoa(10+i)).want(t, 401, "invalid_credentials")
			}
			before := e.app.Hasher.Computed()
			e.loginWith(owner, "spray spray spray", "192.0.2.99").want(t, 429, "too_many_attempts")
			// A client without proof is held too, whatever it knows.
			e.loginWith(owner, testPassword, "192.0.2.100").want(t, 429, "too_many_attempts")
			if got := e.app.Hasher.Computed() - before; got != 0 {
				t.Fatalf("refused logins computed %d hashes, want 0", got)
			}
		})
		t.Run("a forged or foreign device token is no proof", func(t *testing.T) {
			other := "other@example.com"
			e.signup(other)
			foreign := e.loginWith(other, testPassword, "198.51.100.9").want(t, 200, "").str("device_token")
			for _, tok := range []string{foreign, device[:len(device)-2] + "AA", "not a token", strings.Repeat("x", 5000)} {
				e.loginDevice(owner, testPassword, "198.51.100.9", tok).want(t, 429, "too_many_attempts")
			}
		})
		t.Run("the owner's device gets in past the ceiling", func(t *testing.T) {
			r := e.loginDevice(owner, testPassword, "192.0.2.101", device).want(t, 200, "")
			if r.str("device_token") == "" {
				t.Fatal("login returned no fresh device_token")
			}
			// Even at the attacker's IP: the device counts on its own.
			e.loginDevice(owner, testPassword, attacker, device).want(t, 200, "")
		})
		t.Run("in cookie mode the device token is an HttpOnly cookie", func(t *testing.T) {
			h := map[string]string{"X-Forwarded-For": "192.0.2.102", "X-Sessiond-Cookie": "1", "X-Sessiond-CSRF": "1"}
			body := []byte(`{"email":"` + owner + `","password":"` + testPassword + `"}`)
			r := e.request("POST", "/v1/login", "application/json", body, h).want(t, 429, "too_many_attempts")
			h["Cookie"] = e.cfg.Browser().DeviceCookieName() + "=" + device
			r = e.request("POST", "/v1/login", "application/json", body, h).want(t, 200, "")
			if r.str("device_token") != "" {
				t.Errorf("cookie mode: device_token in the body %s, want it only in the cookie", r.Raw)
			}
			var cookie *http.Cookie
			for _, c := range (&http.Response{Header: r.Header}).Cookies() {
				if c.Name == e.cfg.Browser().DeviceCookieName() {
					cookie = c
				}
			}
			if cookie == nil || !cookie.HttpOnly || !cookie.Secure || cookie.Path != "/" || cookie.Domain != "" || !strings.HasPrefix(cookie.Name, "__Host-") || cookie.SameSite != http.SameSiteStrictMode || cookie.Value == "" {
				t.Fatalf("device cookie: got %+v, want __Host-, HttpOnly, Secure, SameSite=Strict, Path=/", cookie)
			}
			h["Cookie"] = cookie.Name + "=" + cookie.Value
			e.request("POST", "/v1/login", "application/json", body, h).want(t, 200, "")
		})
	})
}

// TestSignupRateLimit: signups per client IP are limited, before hashing.
func TestSignupRateLimit(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) {
			c.SignupRate = 3
			c.TrustedProxies = "127.0.0.1"
		})
		signup := func(email, ip string) *response {
			body, _ := json.Marshal(map[string]string{"email": email, "password": testPassword})
			return e.request("POST", "/v1/signup", "application/json", body, map[string]string{"X-Forwarded-For": ip})
		}
		signup("a@example.com", "203.0.113.1").want(t, 201, "")
		signup("b@example.com", "203.0.113.1").want(t, 201, "")
		signup("a@example.com", "203.0.113.1").want(t, 409, "email_taken") // counts too: it probes
		before := e.app.Hasher.Computed()
		r := signup("c@example.com", "203.0.113.1").want(t, 429, "rate_limited")
		wantRetryAfter(t, r, time.Hour)
		if got := e.app.Hasher.Computed() - before; got != 0 {
			t.Fatalf("a refused signup computed %d hashes, want 0", got)
		}
		signup("c@example.com", "203.0.113.2").want(t, 201, "")
		e.clock.Advance(time.Hour)
		signup("d@example.com", "203.0.113.1").want(t, 201, "")
	})
}
