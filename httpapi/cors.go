package httpapi

import (
	"net/http"
	"strings"

	"github.com/sessiond/sessiond/dpop"
)

// corsAllowHeaders are the request headers a page on an allowed origin may send.
var corsAllowHeaders = strings.Join([]string{"Authorization", "Content-Type", HeaderCSRF, HeaderCookieMode, dpop.Header}, ", ")

// corsExposeHeaders are the response headers such a page may read: a
// DPoP client needs the nonce for its next proof and the challenge that
// says why a proof was refused.
var corsExposeHeaders = strings.Join([]string{"Retry-After", "X-Request-Id", dpop.NonceHeader, "WWW-Authenticate"}, ", ")

// cors answers CORS for the allowed origins only, with credentials, so a
// web app on another origin can use cookie mode and the Bearer endpoints.
// Any other origin gets no CORS headers, so its page cannot read answers,
// and a refused preflight means its browser never sends the real request
// (which is what makes HeaderCSRF a CSRF defence). Same-origin requests
// need none of this.
func cors(b Browser, next http.Handler) http.Handler {
	if len(b.AllowedOrigins) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if !strings.HasPrefix(r.URL.Path, "/v1/") {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		allowed := origin != "" && b.allowedOrigin(origin)
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			w.Header().Add("Vary", "Access-Control-Request-Method")
			w.Header().Add("Vary", "Access-Control-Request-Headers")
			if !allowed {
				// No CORS headers: the browser refuses the real request.
				w.WriteHeader(http.StatusForbidden)
				return
			}
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE")
			h.Set("Access-Control-Allow-Headers", corsAllowHeaders)
			h.Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		if allowed {
			h := w.Header()
			h.Set("Access-Control-Allow-Origin", origin)
			h.Set("Access-Control-Allow-Credentials", "true")
			h.Set("Access-Control-Expose-Headers", corsExposeHeaders)
		}
		next.ServeHTTP(w, r)
	})
}
