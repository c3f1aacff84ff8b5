package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/sessiond/sessiond"
)

// Cookie mode (docs/API.md "Cookie mode") keeps a browser's refresh token out of reach of
// scripts: login and refresh deliver it in an HttpOnly cookie instead of the
// JSON body, and refresh and logout read it back from there. The access
// token stays in the body: the page keeps it in memory only.
//
// A client asks for cookie mode per request with the header
// X-Sessiond-Cookie: 1; refresh and logout use the cookie by themselves when
// the body holds no token. Every request that sets or uses the cookie must
// pass checkCSRF.

const (
	// HeaderCookieMode asks login (or refresh) to deliver the RT as a cookie.
	HeaderCookieMode = "X-Sessiond-Cookie"
	// HeaderCSRF must accompany every request that sets or uses the cookie.
	// A page on another origin can send a custom header only after a CORS
	// preflight that sessiond answers for the allowed origins alone, so its
	// presence proves the request was not forged by a form or a plain link.
	HeaderCSRF = "X-Sessiond-CSRF"

	// codeCrossSite refuses a cookie-mode request that failed the CSRF check.
	codeCrossSite = "cross_site_request"
	// codeCookieModeOff refuses a request for cookie mode when it is disabled.
	codeCookieModeOff = "cookie_mode_disabled"
)

// The cookie has Path=/ and no Domain because the __Host- prefix demands
// both: browsers then refuse any such cookie not set by this very host over
// HTTPS, so a page on a sibling host or another port can neither plant an RT
// of its choosing nor overwrite the user's (RFC 6265bis §4.1.3.2). The price
// is that every endpoint receives the cookie; only refresh and logout read
// it, and those pass checkCSRF first.
const cookiePath = "/"

// legacyCookiePaths are where earlier versions set the RT cookie, as
// __Secure-sessiond_rt (sessiond_rt in development), once per endpoint.
// A __Secure- cookie is never read any more: any host of the site could
// have planted it. A request that still carries one gets
// it cleared, so the browser is signed out once instead of sending a stale
// cookie ahead of the new one (longer paths come first) for its lifetime.
var legacyCookiePaths = [...]string{"/v1/refresh", "/v1/logout"}

// Browser configures cookie mode and CORS.
type Browser struct {
	// CookieMode lets clients ask for the RT as a cookie.
	CookieMode bool
	// InsecureCookie drops the Secure attribute and the __Host- prefix:
	// for development on http://localhost only (the config validates that).
	// Its zero value is the safe one.
	InsecureCookie bool
	// AllowedOrigins are the other origins (scheme://host[:port]) whose pages
	// may call the API with credentials. The server's own origin always may.
	AllowedOrigins []string
}

// CookieName is the refresh-token cookie's name under these settings: with
// Secure, the __Host- prefix (see cookiePath); plain http cannot have it.
func (b Browser) CookieName() string {
	if b.InsecureCookie {
		return "sessiond_rt"
	}
	return "__Host-sessiond_rt"
}

// legacyCookieName is the name earlier versions gave the cookie.
func (b Browser) legacyCookieName() string {
	if b.InsecureCookie {
		return "sessiond_rt"
	}
	return "__Secure-sessiond_rt"
}

// DeviceCookieName is the device token's cookie (see the auth package doc):
// read only by /v1/login, where it exempts this browser from the per-email
// login ceiling once it has logged in to that email. It is host-only
// (__Host-, so Path=/) for the reason the RT cookie is: a page on a sibling
// host or another port could otherwise overwrite it and take the owner's
// exemption away, leaving the owner to the ceiling an attacker can fill.
func (b Browser) DeviceCookieName() string {
	if b.InsecureCookie {
		return "sessiond_device"
	}
	return "__Host-sessiond_device"
}

// deviceCookiePath is "/", as the __Host- prefix requires.
const deviceCookiePath = "/"

// setDeviceCookie delivers t's device token, expiring with it.
func (b Browser) setDeviceCookie(w http.ResponseWriter, t *sessiond.Tokens) {
	if t.DeviceToken == "" {
		return
	}
	http.SetCookie(w, &http.Cookie{
		Name: b.DeviceCookieName(), Value: t.DeviceToken, Path: deviceCookiePath,
		Expires: t.DeviceExpiresAt.UTC(), MaxAge: max(int(seconds(t.DeviceExpiresAt.Sub(t.IssuedAt))), 1),
		HttpOnly: true, Secure: !b.InsecureCookie, SameSite: http.SameSiteStrictMode,
	})
}

// deviceCookie is the request's device token cookie, if cookie mode is on.
// It is only a claim to be checked by auth: a forged one is no proof.
func (b Browser) deviceCookie(r *http.Request) string {
	return b.cookieValue(r, b.DeviceCookieName())
}

// setRefreshCookies delivers t's RT, expiring when the session would.
func (b Browser) setRefreshCookies(w http.ResponseWriter, t *sessiond.Tokens) {
	maxAge := int(seconds(t.RefreshExpiresAt.Sub(t.IssuedAt)))
	if maxAge < 1 {
		maxAge = 1
	}
	http.SetCookie(w, &http.Cookie{
		Name: b.CookieName(), Value: t.RefreshToken, Path: cookiePath,
		Expires: t.RefreshExpiresAt.UTC().Truncate(time.Second), MaxAge: maxAge,
		HttpOnly: true, Secure: !b.InsecureCookie, SameSite: http.SameSiteStrictMode,
	})
}

// clearRefreshCookies tells the browser to drop the cookie.
func (b Browser) clearRefreshCookies(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{
		Name: b.CookieName(), Value: "", Path: cookiePath, MaxAge: -1,
		HttpOnly: true, Secure: !b.InsecureCookie, SameSite: http.SameSiteStrictMode,
	})
}

// clearLegacyCookies drops the cookies of legacyCookiePaths when the request
// to login, refresh or logout carries one. (In development both generations
// are named sessiond_rt, so the old ones are cleared whenever the request
// has a sessiond_rt; the one in use is then the old one, the first sent,
// and its RT still works, so the browser moves to Path=/ without noticing.)
func (b Browser) clearLegacyCookies(w http.ResponseWriter, r *http.Request) {
	if _, err := r.Cookie(b.legacyCookieName()); err != nil || !b.CookieMode {
		return
	}
	for _, p := range legacyCookiePaths {
		http.SetCookie(w, &http.Cookie{
			Name: b.legacyCookieName(), Value: "", Path: p, MaxAge: -1,
			HttpOnly: true, Secure: !b.InsecureCookie, SameSite: http.SameSiteStrictMode,
		})
	}
}

// hasRefreshCookie reports whether the request carries the cookie.
func (b Browser) hasRefreshCookie(r *http.Request) bool {
	_, err := r.Cookie(b.CookieName())
	return b.CookieMode && err == nil
}

// refreshCookie is the request's RT cookie, if cookie mode is on.
func (b Browser) refreshCookie(r *http.Request) string {
	return b.cookieValue(r, b.CookieName())
}

// cookieValue is the value of the request's cookie name, if cookie mode is
// on and the value is no longer than a token can be; "" otherwise.
func (b Browser) cookieValue(r *http.Request, name string) string {
	if !b.CookieMode {
		return ""
	}
	c, err := r.Cookie(name)
	if err != nil || len(c.Value) > maxTokenLen {
		return ""
	}
	return c.Value
}

// wantsCookie reports whether the request asks for cookie mode.
func wantsCookie(r *http.Request) bool { return r.Header.Get(HeaderCookieMode) == "1" }

// checkCSRF admits a request that sets or uses the cookie only if it carries
// HeaderCSRF and, when it comes from a browser, from the server's own origin
// or an allowed one. http.CrossOriginProtection reads Sec-Fetch-Site, then
// falls back to comparing Origin with Host; requests with neither come from
// non-browser clients, which cannot be made to forge anything.
func (b Browser) checkCSRF(cop *http.CrossOriginProtection, r *http.Request) error {
	if !b.CookieMode {
		return sessiond.Errorf(codeCookieModeOff, "cookie mode is disabled on this server")
	}
	if r.Header.Get(HeaderCSRF) != "1" {
		return sessiond.Errorf(codeCrossSite, "a request using the session cookie must carry the header %s: 1", HeaderCSRF)
	}
	if r.Header.Get("Origin") == "null" {
		return sessiond.Errorf(codeCrossSite, "requests from an opaque origin may not use the session cookie")
	}
	if err := cop.Check(r); err != nil {
		return sessiond.Errorf(codeCrossSite, "origin %q may not use the session cookie", r.Header.Get("Origin"))
	}
	return nil
}

// newCrossOriginProtection trusts the allowed origins; Validate has checked them.
func (b Browser) newCrossOriginProtection() *http.CrossOriginProtection {
	cop := http.NewCrossOriginProtection()
	for _, o := range b.AllowedOrigins {
		_ = cop.AddTrustedOrigin(o)
	}
	return cop
}

// tokenBody is the token response of cookie mode: the RT is in the cookie,
// so it is left out of the body, which scripts can read.
func tokenBody(t *sessiond.Tokens, viaCookie bool) tokenResponse {
	resp := newTokenResponse(t)
	if viaCookie {
		resp.RefreshToken = ""
		resp.DeviceToken = ""
	}
	return resp
}

// optionalRefresh is refreshRequest without its requirement, for requests
// that may carry the RT in the cookie instead.
type optionalRefresh struct {
	RefreshToken string `json:"refresh_token"`
}

func (optionalRefresh) valid() error { return nil }

// bodyOrCookieToken finds the RT of a refresh or logout: the body's, or,
// when the body has none and the cookie is there, the cookie's after the
// CSRF check. ok is false when neither applies; the caller then decodes the
// body strictly, so such requests get the errors they always got.
func (b Browser) bodyOrCookieToken(cop *http.CrossOriginProtection, w http.ResponseWriter, r *http.Request) (tok string, viaCookie, ok bool, err error) {
	cookie := b.refreshCookie(r)
	if cookie == "" {
		return "", false, false, nil
	}
	if r.ContentLength != 0 {
		req, err := decode[optionalRefresh](w, r)
		if err != nil {
			return "", false, true, err
		}
		if req.RefreshToken != "" {
			return req.RefreshToken, false, true, nil
		}
	}
	if err := b.checkCSRF(cop, r); err != nil {
		return "", true, true, err
	}
	return cookie, true, true, nil
}

// clearsCookie reports whether a failed cookie refresh or logout means the
// cookie is of no more use, so the browser should forget it.
func clearsCookie(err error) bool {
	switch sessiond.ErrorCode(err) {
	case sessiond.CodeInvalidRefreshToken, sessiond.CodeRefreshTokenReused, sessiond.CodeSessionExpired:
		return true
	}
	return false
}

// browserDeps is what the cookie-aware handlers share.
type browserDeps struct {
	logger *slog.Logger
	b      Browser
	cop    *http.CrossOriginProtection
	// dp serves DPoP proofs, which the same handlers take (dpop.go).
	dp dpopDeps
}

func newBrowserDeps(d Deps) browserDeps {
	return browserDeps{logger: d.Logger, b: d.Browser, cop: d.Browser.newCrossOriginProtection(), dp: newDPoPDeps(d)}
}

// allowedOrigin reports whether origin may make credentialed CORS requests;
// the comparison is exact, after lower-casing, as browsers send origins.
func (b Browser) allowedOrigin(origin string) bool {
	origin = strings.ToLower(origin)
	for _, o := range b.AllowedOrigins {
		if strings.ToLower(o) == origin {
			return true
		}
	}
	return false
}
