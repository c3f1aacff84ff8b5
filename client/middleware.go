package client

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"

	"github.com/sessiond/sessiond/dpop"
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

// Middleware admits requests that VerifyRequest accepts — an unbound
// access token as "Authorization: Bearer", a DPoP-bound one as
// "Authorization: DPoP" with its proof — and puts the claims in the request
// context. Others get a 401 problem+json with WWW-Authenticate: a Bearer
// challenge (RFC 6750) for a missing or bad Bearer token, a DPoP challenge
// (RFC 9449 §7.1: error="invalid_token" for a bad token sent as DPoP,
// error="invalid_dpop_proof" and problem code invalid_dpop_proof for a
// refused proof or a token sent with the wrong scheme). When the token's
// key could not be fetched the answer is 503: that token may be good, and
// a client told 401 would throw it away.
func (v *Verifier) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := v.VerifyRequest(r)
		if err != nil {
			v.writeRefusal(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(NewContext(r.Context(), c)))
	})
}

// writeRefusal answers a request VerifyRequest refused with err.
func (v *Verifier) writeRefusal(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, ErrKeysUnavailable):
		w.Header().Set("Retry-After", "5")
		writeProblem(w, http.StatusServiceUnavailable, "unavailable", "the signing keys cannot be fetched now")
		return
	case errors.Is(err, ErrNoToken):
		w.Header().Set("WWW-Authenticate", `Bearer`)
		if v.publicURL != "" {
			// This service takes DPoP-bound tokens too (RFC 9449 §7.1).
			w.Header().Add("WWW-Authenticate", dpop.Challenge("", ""))
		}
		writeProblem(w, http.StatusUnauthorized, "invalid_token", "missing Authorization: Bearer header")
		return
	case errors.Is(err, ErrDPoP):
		w.Header().Set("WWW-Authenticate", dpop.Challenge("invalid_dpop_proof", ""))
		writeProblem(w, http.StatusUnauthorized, "invalid_dpop_proof", err.Error())
		return
	}
	if scheme, _, aerr := authorization(r); aerr == nil && scheme == schemeDPoP {
		w.Header().Set("WWW-Authenticate", dpop.Challenge("invalid_token", ""))
	} else {
		w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	}
	writeProblem(w, http.StatusUnauthorized, "invalid_token", err.Error())
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
