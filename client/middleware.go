package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
)

type claimsKey struct{}

// ClaimsFromContext returns the claims Middleware verified for this request.
func ClaimsFromContext(ctx context.Context) (*Claims, bool) {
	c, ok := ctx.Value(claimsKey{}).(*Claims)
	return c, ok
}

// NewContext returns ctx carrying c, as Middleware does; handy in tests of
// handlers that read ClaimsFromContext.
func NewContext(ctx context.Context, c *Claims) context.Context {
	return context.WithValue(ctx, claimsKey{}, c)
}

// Middleware admits requests with a valid "Authorization: Bearer" access
// token and puts its claims in the request context. Others get a 401
// problem+json with WWW-Authenticate (RFC 6750), or a 503 when the token's
// key could not be fetched: that token may be good, and a client told 401
// would throw it away.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" {
			w.Header().Set("WWW-Authenticate", `Bearer`)
			writeProblem(w, http.StatusUnauthorized, "invalid_token", "missing Authorization: Bearer header")
			return
		}
		c, err := v.Verify(r.Context(), tok)
		if err != nil {
			if errors.Is(err, ErrKeysUnavailable) {
				w.Header().Set("Retry-After", "5")
				writeProblem(w, http.StatusServiceUnavailable, "unavailable", "the signing keys cannot be fetched now")
				return
			}
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
			writeProblem(w, http.StatusUnauthorized, "invalid_token", err.Error())
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
	})
}

// writeProblem answers an RFC 9457 problem shaped like sessiond's own.
func writeProblem(w http.ResponseWriter, status int, code, detail string) {
	w.Header().Set("Content-Type", "application/problem+json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct {
		Type   string `json:"type"`
		Title  string `json:"title"`
		Status int    `json:"status"`
		Detail string `json:"detail,omitempty"`
		Code   string `json:"code"`
	}{"urn:sessiond:problem:" + code, http.StatusText(status), status, detail, code})
}
