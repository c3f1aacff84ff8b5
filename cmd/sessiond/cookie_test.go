package main

import (
	"net/http"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/app"
)

// cookieRT is the RT of a cookie-mode answer, from its Set-Cookie;
// cleared reports the cookie being deleted.
func cookieRT(t *testing.T, r *response) (rt string, cleared bool) {
	t.Helper()
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == "__Host-sessiond_rt" && c.Path == "/" {
			return c.Value, c.MaxAge < 0
		}
	}
	t.Fatalf("no refresh cookie in %q", r.Header.Values("Set-Cookie"))
	return "", false
}

// TestCookieModeRotationOnEachStore runs cookie-mode refreshes against the
// real service: the cookie rotates, two tabs refreshing with the same
// cookie converge on one RT, and an older cookie is reuse, which ends the
// session and clears the cookie.
func TestCookieModeRotationOnEachStore(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.Policy.ReuseGrace = time.Minute })
		e.signup("ada@example.com")
		browser := map[string]string{"X-Sessiond-Cookie": "1", "X-Sessiond-CSRF": "1", "Origin": e.srv.URL, "Sec-Fetch-Site": "same-origin"}
		withCookie := func(rt string) map[string]string {
			h := map[string]string{"Cookie": "__Host-sessiond_rt=" + rt}
			for k, v := range browser {
				h[k] = v
			}
			return h
		}
		login := e.request("POST", "/v1/login", "application/json",
			[]byte(`{"email":"ada@example.com","password":"`+testPassword+`"}`), browser).want(t, 200, "")
		if _, has := login.Body["refresh_token"]; has {
			t.Errorf("got refresh_token in the body of a cookie-mode login, want it only in the cookie")
		}
		rt1, _ := cookieRT(t, login)

		r := e.request("POST", "/v1/refresh", "", nil, withCookie(rt1)).want(t, 200, "")
		rt2, _ := cookieRT(t, r)
		if rt2 == rt1 {
			t.Fatalf("got the same RT after a refresh, want it rotated")
		}
		// The other tab, still holding rt1 inside the grace window, gets rt2 too.
		r = e.request("POST", "/v1/refresh", "", nil, withCookie(rt1)).want(t, 200, "")
		if got, _ := cookieRT(t, r); got != rt2 {
			t.Errorf("twin refresh: got a different RT, want the session's current one")
		}
		r = e.request("POST", "/v1/refresh", "", nil, withCookie(rt2)).want(t, 200, "")
		rt3, _ := cookieRT(t, r)

		// rt1 is now two generations old: theft.
		r = e.request("POST", "/v1/refresh", "", nil, withCookie(rt1)).want(t, 401, "refresh_token_reused")
		if _, cleared := cookieRT(t, r); !cleared {
			t.Errorf("got the cookie kept after reuse, want it cleared")
		}
		e.request("POST", "/v1/refresh", "", nil, withCookie(rt3)).want(t, 401, "")
		if n := len(e.liveSessions("ada@example.com")); n != 0 {
			t.Errorf("got %d live sessions after reuse, want 0", n)
		}
	})
}

func TestAccountPageIsServedWithItsHeaders(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/sessiond.db", nil)
	r := e.request("GET", "/account/", "", nil, nil)
	if r.Status != 200 {
		t.Fatalf("got status %d, want 200", r.Status)
	}
	for h, want := range map[string]string{
		"X-Frame-Options": "DENY", "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer",
	} {
		if got := r.Header.Get(h); got != want {
			t.Errorf("got %s %q, want %q", h, got, want)
		}
	}
	if csp := r.Header.Get("Content-Security-Policy"); csp == "" {
		t.Errorf("got no Content-Security-Policy, want one allowing only the page's own files")
	}

	off := newTestEnv(t, "sqlite:"+t.TempDir()+"/sessiond.db", func(c *app.Config) { c.CookieMode = false })
	// Straight through the client: api/openapi.yaml describes the page as on.
	resp, err := off.srv.Client().Get(off.srv.URL + "/account/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Errorf("with cookie mode off: got status %d for /account/, want 404", resp.StatusCode)
	}
}
