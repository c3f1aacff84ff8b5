package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/httpapi"
)

// rotatingAuth is stubAuth with real refresh-token bookkeeping: each
// refresh supersedes the RT it was given, and logout ends it.
type rotatingAuth struct {
	stubAuth
	mu     sync.Mutex
	n      int
	live   map[string]bool
	issued time.Time
}

func newRotatingAuth() *rotatingAuth {
	return &rotatingAuth{live: map[string]bool{}, issued: time.Now().UTC().Truncate(time.Second)}
}

func (a *rotatingAuth) mint() *sessiond.Tokens {
	a.n++
	rt := fmt.Sprintf("rt-%d", a.n)
	a.live[rt] = true
	return &sessiond.Tokens{IssuedAt: a.issued, AccessToken: "at", AccessExpiresAt: a.issued.Add(15 * time.Minute),
		RefreshToken: rt, RefreshExpiresAt: a.issued.Add(time.Hour), SessionID: "s"}
}

func (a *rotatingAuth) Login(context.Context, string, string, sessiond.ClientInfo) (*sessiond.Tokens, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.mint(), nil
}

func (a *rotatingAuth) Refresh(_ context.Context, rt string, _ sessiond.DPoPProof) (*sessiond.Tokens, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.live[rt] {
		return nil, sessiond.Errorf(sessiond.CodeInvalidRefreshToken, "unknown refresh token")
	}
	delete(a.live, rt)
	return a.mint(), nil
}

func (a *rotatingAuth) LogoutRefresh(_ context.Context, rt string, _ sessiond.DPoPProof) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.live[rt] {
		return sessiond.Errorf(sessiond.CodeInvalidRefreshToken, "unknown refresh token")
	}
	delete(a.live, rt)
	return nil
}

const allowedOrigin = "https://app.example.com"

func newCookieServer(t *testing.T, b httpapi.Browser) (*httptest.Server, *rotatingAuth) {
	t.Helper()
	auth := newRotatingAuth()
	srv := httptest.NewServer(httpapi.NewServer(httpapi.Deps{Auth: auth, JWKS: stubJWKS{}, Ready: stubPinger{}, Browser: b}))
	t.Cleanup(srv.Close)
	return srv, auth
}

var cookieMode = httpapi.Browser{CookieMode: true, AllowedOrigins: []string{allowedOrigin}}

// send posts body (if any) to path with the headers and cookie value given.
func send(t *testing.T, srv *httptest.Server, method, path, body string, header map[string]string, cookies ...*http.Cookie) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	for _, c := range cookies {
		req.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

var browserHeaders = map[string]string{"X-Sessiond-Cookie": "1", "X-Sessiond-CSRF": "1"}

// cookieLogin logs in with cookie mode and returns the cookie for path.
func cookieLogin(t *testing.T, srv *httptest.Server) *http.Cookie {
	t.Helper()
	resp := send(t, srv, "POST", "/v1/login", `{"email":"a@example.com","password":"p"}`, browserHeaders)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("login: got status %d, want 200", resp.StatusCode)
	}
	return cookieAt(t, resp, "/")
}

func cookieAt(t *testing.T, resp *http.Response, path string) *http.Cookie {
	t.Helper()
	for _, c := range resp.Cookies() {
		if c.Path == path {
			return c
		}
	}
	t.Fatalf("no Set-Cookie with Path=%s among %q", path, resp.Header.Values("Set-Cookie"))
	return nil
}

func problemCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var p struct{ Code string }
	json.NewDecoder(resp.Body).Decode(&p)
	return p.Code
}

// TestCookieLoginSetsHostOnlyHttpOnlySecureStrictCookie: one cookie, with
// the __Host- prefix and what it demands (Secure, Path=/, no Domain), so no
// other host or port of the site can plant or overwrite it.
func TestCookieLoginSetsHostOnlyHttpOnlySecureStrictCookie(t *testing.T) {
	for _, tc := range []struct {
		name     string
		browser  httpapi.Browser
		wantName string
		secure   bool
	}{
		{"secure", cookieMode, "__Host-sessiond_rt", true},
		{"insecure localhost development", httpapi.Browser{CookieMode: true, InsecureCookie: true}, "sessiond_rt", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, auth := newCookieServer(t, tc.browser)
			resp := send(t, srv, "POST", "/v1/login", `{"email":"a@example.com","password":"p"}`, browserHeaders)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("got status %d, want 200", resp.StatusCode)
			}
			var body map[string]any
			json.NewDecoder(resp.Body).Decode(&body)
			if _, has := body["refresh_token"]; has {
				t.Errorf("got refresh_token %v in the body, want it only in the cookie", body["refresh_token"])
			}
			if body["access_token"] != "at" {
				t.Errorf("got access_token %v, want at in the body", body["access_token"])
			}
			cookies := resp.Cookies()
			if len(cookies) != 1 {
				t.Fatalf("got %d cookies, want 1: %q", len(cookies), resp.Header.Values("Set-Cookie"))
			}
			if raw := resp.Header.Get("Set-Cookie"); strings.Contains(strings.ToLower(raw), "domain=") {
				t.Errorf("got Set-Cookie %q, want no Domain (a host-only cookie)", raw)
			}
			wantExpires := auth.issued.Add(time.Hour)
			for _, c := range cookies {
				if c.Name != tc.wantName || c.Value != "rt-1" || c.Path != "/" || c.Domain != "" {
					t.Errorf("got cookie %s=%s Path=%s Domain=%q, want %s=rt-1 Path=/ and no Domain", c.Name, c.Value, c.Path, c.Domain, tc.wantName)
				}
				if !c.HttpOnly || c.Secure != tc.secure || c.SameSite != http.SameSiteStrictMode {
					t.Errorf("got HttpOnly=%v Secure=%v SameSite=%v, want true %v Strict", c.HttpOnly, c.Secure, c.SameSite, tc.secure)
				}
				if !c.Expires.Equal(wantExpires) || c.MaxAge != 3600 {
					t.Errorf("got Expires=%v Max-Age=%d, want %v and 3600 (the session's deadline)", c.Expires, c.MaxAge, wantExpires)
				}
			}
		})
	}
}

func TestCookieRefreshRotatesTheCookie(t *testing.T) {
	srv, _ := newCookieServer(t, cookieMode)
	first := cookieLogin(t, srv)

	resp := send(t, srv, "POST", "/v1/refresh", "", map[string]string{"X-Sessiond-CSRF": "1"}, first)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("refresh with the cookie: got status %d (%s), want 200", resp.StatusCode, problemCode(t, resp))
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	if _, has := body["refresh_token"]; has {
		t.Errorf("got refresh_token in the body of a cookie refresh, want it only in the cookie")
	}
	second := cookieAt(t, resp, "/")
	if second.Value == first.Value || second.Value != "rt-2" {
		t.Errorf("got cookie %q after refresh, want the rotated rt-2", second.Value)
	}

	// The superseded cookie is refused, and the browser told to forget it.
	resp = send(t, srv, "POST", "/v1/refresh", "", map[string]string{"X-Sessiond-CSRF": "1"}, first)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("refresh with the old cookie: got status %d, want 401", resp.StatusCode)
	}
	if c := cookieAt(t, resp, "/"); c.MaxAge >= 0 {
		t.Errorf("got Max-Age %d on the refused cookie, want it cleared", c.MaxAge)
	}

	resp = send(t, srv, "POST", "/v1/refresh", "{}", map[string]string{"X-Sessiond-CSRF": "1"}, second)
	if resp.StatusCode != http.StatusOK {
		t.Errorf("refresh with the new cookie and an empty JSON body: got status %d, want 200", resp.StatusCode)
	}
}

func TestCookieLogoutEndsTheSessionAndClearsTheCookie(t *testing.T) {
	srv, auth := newCookieServer(t, cookieMode)
	c := cookieLogin(t, srv)

	resp := send(t, srv, "POST", "/v1/logout", "", map[string]string{"X-Sessiond-CSRF": "1"}, c)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("got status %d (%s), want 204", resp.StatusCode, problemCode(t, resp))
	}
	if auth.live[c.Value] {
		t.Errorf("got the session still live after logout, want it ended")
	}
	if got := cookieAt(t, resp, "/"); got.Value != "" || got.MaxAge >= 0 {
		t.Errorf("got cookie %q Max-Age %d, want it cleared", got.Value, got.MaxAge)
	}

	// Logging out again with the stale cookie still clears it.
	resp = send(t, srv, "POST", "/v1/logout", "", map[string]string{"X-Sessiond-CSRF": "1"}, c)
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("second logout: got status %d, want 401", resp.StatusCode)
	}
	if got := cookieAt(t, resp, "/"); got.MaxAge >= 0 {
		t.Errorf("second logout: got Max-Age %d, want the cookie cleared", got.MaxAge)
	}
}

// TestBearerLogoutClearsTheCookie: a logout with the Authorization header
// from a browser holding the cookie ends the session and clears the cookie.
func TestBearerLogoutClearsTheCookie(t *testing.T) {
	srv, _ := newCookieServer(t, cookieMode)
	c := cookieLogin(t, srv)
	resp := send(t, srv, "POST", "/v1/logout", "", map[string]string{"Authorization": "Bearer good"}, c)
	if resp.StatusCode != http.StatusNoContent {
		t.Fatalf("got status %d (%s), want 204", resp.StatusCode, problemCode(t, resp))
	}
	if got := cookieAt(t, resp, "/"); got.Name != "__Host-sessiond_rt" || got.Value != "" || got.MaxAge >= 0 {
		t.Errorf("got cookie %s=%q Max-Age %d, want __Host-sessiond_rt cleared", got.Name, got.Value, got.MaxAge)
	}
	// Without the cookie, nothing is set.
	resp = send(t, srv, "POST", "/v1/logout", "", map[string]string{"Authorization": "Bearer good"})
	if resp.StatusCode != http.StatusNoContent || len(resp.Cookies()) != 0 {
		t.Errorf("got %d with Set-Cookie %q, want 204 and none", resp.StatusCode, resp.Header.Values("Set-Cookie"))
	}
}

// TestLegacySecureCookieIsClearedNotUsed: a browser still holding the
// __Secure- cookie of earlier versions (which any host of the site could
// have planted) is not signed in with it; every cookie-mode endpoint tells
// the browser to drop it, at both paths it was set with.
func TestLegacySecureCookieIsClearedNotUsed(t *testing.T) {
	legacy := &http.Cookie{Name: "__Secure-sessiond_rt", Value: "rt-1"}
	for _, tc := range []struct{ path, body string }{
		{"/v1/refresh", ""},
		{"/v1/logout", ""},
		{"/v1/login", `{"email":"a@example.com","password":"p"}`},
	} {
		t.Run(tc.path, func(t *testing.T) {
			srv, auth := newCookieServer(t, cookieMode)
			cookieLogin(t, srv) // mints rt-1, which the legacy cookie holds
			resp := send(t, srv, "POST", tc.path, tc.body, browserHeaders, legacy)
			if tc.path != "/v1/login" && resp.StatusCode/100 == 2 {
				t.Errorf("got status %d, want the legacy cookie not used", resp.StatusCode)
			}
			if tc.path != "/v1/login" && !auth.live["rt-1"] {
				t.Errorf("got rt-1 used up, want the legacy cookie ignored")
			}
			cleared := map[string]bool{}
			for _, c := range resp.Cookies() {
				if c.Name == legacy.Name && c.MaxAge < 0 {
					cleared[c.Path] = true
				}
			}
			if !cleared["/v1/refresh"] || !cleared["/v1/logout"] {
				t.Errorf("got Set-Cookie %q, want %s cleared at /v1/refresh and /v1/logout", resp.Header.Values("Set-Cookie"), legacy.Name)
			}
			if raw := strings.Join(resp.Header.Values("Set-Cookie"), "\n"); strings.Count(raw, "__Secure-sessiond_rt=; Path=/v1/") != 2 || strings.Count(raw, "; Secure") < 2 {
				t.Errorf("got Set-Cookie %q, want both deletions Secure (browsers ignore a __Secure- cookie without it)", raw)
			}
		})
	}
}

// TestDevelopmentCookieMovesToRootPath: on plain-http development the old
// and the new cookie are both sessiond_rt, so the old one is used once and
// replaced: the refresh sets Path=/ and clears the two old paths, which
// would otherwise be sent first, with a superseded token, ever after.
func TestDevelopmentCookieMovesToRootPath(t *testing.T) {
	srv, _ := newCookieServer(t, httpapi.Browser{CookieMode: true, InsecureCookie: true})
	old := cookieLogin(t, srv) // rt-1, as the earlier version's /v1/refresh cookie would hold it
	resp := send(t, srv, "POST", "/v1/refresh", "", map[string]string{"X-Sessiond-CSRF": "1"}, old)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got status %d (%s), want 200", resp.StatusCode, problemCode(t, resp))
	}
	got := map[string]string{}
	for _, c := range resp.Cookies() {
		if c.Name == "sessiond_rt" {
			if c.MaxAge < 0 {
				got[c.Path] = "cleared"
			} else {
				got[c.Path] = c.Value
			}
		}
	}
	if got["/"] != "rt-2" || got["/v1/refresh"] != "cleared" || got["/v1/logout"] != "cleared" {
		t.Errorf("got cookies by path %v, want / = rt-2 and /v1/refresh, /v1/logout cleared", got)
	}
}

func TestCookieRequestsNeedCSRFProtection(t *testing.T) {
	cases := []struct {
		name   string
		header map[string]string
		want   int
	}{
		{"missing CSRF header", map[string]string{"Origin": "SELF", "Sec-Fetch-Site": "same-origin"}, http.StatusForbidden},
		{"CSRF header with a wrong value", map[string]string{"X-Sessiond-CSRF": "yes", "Sec-Fetch-Site": "same-origin"}, http.StatusForbidden},
		{"cross-site by Sec-Fetch-Site", map[string]string{"X-Sessiond-CSRF": "1", "Origin": "https://evil.example", "Sec-Fetch-Site": "cross-site"}, http.StatusForbidden},
		{"same-site but not an allowed origin", map[string]string{"X-Sessiond-CSRF": "1", "Origin": "https://other.example.com", "Sec-Fetch-Site": "same-site"}, http.StatusForbidden},
		{"cross-site by Origin alone (older browsers)", map[string]string{"X-Sessiond-CSRF": "1", "Origin": "https://evil.example"}, http.StatusForbidden},
		{"opaque origin", map[string]string{"X-Sessiond-CSRF": "1", "Origin": "null"}, http.StatusForbidden},
		{"same origin", map[string]string{"X-Sessiond-CSRF": "1", "Origin": "SELF", "Sec-Fetch-Site": "same-origin"}, 0},
		{"same origin by Origin alone", map[string]string{"X-Sessiond-CSRF": "1", "Origin": "SELF"}, 0},
		{"allowed origin", map[string]string{"X-Sessiond-CSRF": "1", "Origin": allowedOrigin, "Sec-Fetch-Site": "cross-site"}, 0},
		{"not a browser", map[string]string{"X-Sessiond-CSRF": "1"}, 0},
	}
	endpoints := []struct {
		path string
		ok   int
	}{
		{"/v1/refresh", http.StatusOK},
		{"/v1/logout", http.StatusNoContent},
		{"/v1/login", http.StatusOK},
	}
	for _, ep := range endpoints {
		for _, tc := range cases {
			t.Run(ep.path+"/"+tc.name, func(t *testing.T) {
				srv, _ := newCookieServer(t, cookieMode)
				c := cookieLogin(t, srv)
				header := map[string]string{}
				for k, v := range tc.header {
					if v == "SELF" {
						v = srv.URL
					}
					header[k] = v
				}
				body := ""
				if ep.path == "/v1/login" {
					header["X-Sessiond-Cookie"] = "1"
					body = `{"email":"a@example.com","password":"p"}`
				}
				resp := send(t, srv, "POST", ep.path, body, header, c)
				want := tc.want
				if want == 0 {
					want = ep.ok
				}
				if resp.StatusCode != want {
					t.Fatalf("got status %d, want %d", resp.StatusCode, want)
				}
				if want == http.StatusForbidden {
					if got := problemCode(t, resp); got != "cross_site_request" {
						t.Errorf("got code %q, want cross_site_request", got)
					}
					if len(resp.Cookies()) != 0 {
						t.Errorf("got Set-Cookie %q on a refused request, want none", resp.Header.Values("Set-Cookie"))
					}
				}
			})
		}
	}
}

func TestBodyTokenNeedsNoCSRFHeader(t *testing.T) {
	srv, _ := newCookieServer(t, cookieMode)
	c := cookieLogin(t, srv)
	// A body token is not ambient authority: a forger would have to know it.
	resp := send(t, srv, "POST", "/v1/refresh", `{"refresh_token":"`+c.Value+`"}`, map[string]string{"Origin": "https://evil.example"}, c)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("got status %d, want 200", resp.StatusCode)
	}
	var body map[string]any
	json.NewDecoder(resp.Body).Decode(&body)
	if body["refresh_token"] != "rt-2" {
		t.Errorf("got refresh_token %v in the body, want rt-2 (no cookie mode asked)", body["refresh_token"])
	}
	if len(resp.Cookies()) != 0 {
		t.Errorf("got Set-Cookie %q, want none", resp.Header.Values("Set-Cookie"))
	}
}

func TestCookieModeOff(t *testing.T) {
	srv, _ := newCookieServer(t, httpapi.Browser{})
	resp := send(t, srv, "POST", "/v1/login", `{"email":"a@example.com","password":"p"}`, browserHeaders)
	if got := problemCode(t, resp); resp.StatusCode != http.StatusBadRequest || got != "cookie_mode_disabled" {
		t.Errorf("login asking for a cookie: got %d %s, want 400 cookie_mode_disabled", resp.StatusCode, got)
	}
	// A cookie is not even looked at: the body is required as before.
	resp = send(t, srv, "POST", "/v1/refresh", "", map[string]string{"X-Sessiond-CSRF": "1"},
		&http.Cookie{Name: "__Host-sessiond_rt", Value: "rt-1"})
	if got := problemCode(t, resp); resp.StatusCode != http.StatusBadRequest || got != "invalid_request" {
		t.Errorf("refresh with only a cookie: got %d %s, want 400 invalid_request", resp.StatusCode, got)
	}
}

func TestCORS(t *testing.T) {
	srv, _ := newCookieServer(t, cookieMode)
	preflight := func(origin string) *http.Response {
		return send(t, srv, "OPTIONS", "/v1/refresh", "", map[string]string{
			"Origin": origin, "Access-Control-Request-Method": "POST",
			"Access-Control-Request-Headers": "content-type, x-sessiond-csrf",
		})
	}
	t.Run("preflight from an allowed origin", func(t *testing.T) {
		resp := preflight(allowedOrigin)
		h := resp.Header
		if resp.StatusCode != http.StatusNoContent {
			t.Errorf("got status %d, want 204", resp.StatusCode)
		}
		if got := h.Get("Access-Control-Allow-Origin"); got != allowedOrigin {
			t.Errorf("got Access-Control-Allow-Origin %q, want %q", got, allowedOrigin)
		}
		if got := h.Get("Access-Control-Allow-Credentials"); got != "true" {
			t.Errorf("got Access-Control-Allow-Credentials %q, want true", got)
		}
		for _, want := range []string{"X-Sessiond-CSRF", "DPoP", "Authorization"} {
			if got := h.Get("Access-Control-Allow-Headers"); !slices.Contains(strings.Split(got, ", "), want) {
				t.Errorf("got Access-Control-Allow-Headers %q, want %s among them", got, want)
			}
		}
		if got := h.Get("Access-Control-Allow-Methods"); !strings.Contains(got, "POST") {
			t.Errorf("got Access-Control-Allow-Methods %q, want POST among them", got)
		}
	})
	t.Run("preflight from another origin", func(t *testing.T) {
		resp := preflight("https://evil.example")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("got status %d, want 403", resp.StatusCode)
		}
		for _, h := range []string{"Access-Control-Allow-Origin", "Access-Control-Allow-Credentials", "Access-Control-Allow-Headers"} {
			if got := resp.Header.Get(h); got != "" {
				t.Errorf("got %s %q, want none", h, got)
			}
		}
	})
	t.Run("actual request", func(t *testing.T) {
		for origin, want := range map[string]string{allowedOrigin: allowedOrigin, "https://evil.example": ""} {
			resp := send(t, srv, "POST", "/v1/signup", `{"email":"a@example.com","password":"p"}`, map[string]string{"Origin": origin})
			if got := resp.Header.Get("Access-Control-Allow-Origin"); got != want {
				t.Errorf("origin %s: got Access-Control-Allow-Origin %q, want %q", origin, got, want)
			}
			if !strings.Contains(strings.Join(resp.Header.Values("Vary"), ","), "Origin") {
				t.Errorf("origin %s: got Vary %q, want Origin", origin, resp.Header.Values("Vary"))
			}
			if want == "" {
				continue
			}
			// A DPoP client reads the nonce for its next proof, and the
			// challenge that says why a proof was refused.
			exposed := strings.Split(resp.Header.Get("Access-Control-Expose-Headers"), ", ")
			for _, h := range []string{"DPoP-Nonce", "WWW-Authenticate", "Retry-After"} {
				if !slices.Contains(exposed, h) {
					t.Errorf("got Access-Control-Expose-Headers %q, want %s among them", exposed, h)
				}
			}
		}
	})
}
