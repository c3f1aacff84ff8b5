package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/dpop"
)

// dpopDeps is what the handlers that take DPoP proofs (RFC 9449) share.
type dpopDeps struct {
	// publicURL is the URL clients reach sessiond at, without a trailing
	// slash: a proof's htu is it and the request's path.
	publicURL string
	// nonce is the server nonce for the client's next proof; nil or ""
	// when nonces are off.
	nonce func() string
}

func newDPoPDeps(d Deps) dpopDeps {
	return dpopDeps{publicURL: strings.TrimSuffix(d.PublicURL, "/"), nonce: d.DPoPNonce}
}

// proof is the request's DPoP proof and what it must match: its method and
// the public URL of its path, built from configuration, never from the
// Host header a client chose. A request with more than one DPoP header is
// refused (RFC 9449 §4.3).
func (dp dpopDeps) proof(r *http.Request) (sessiond.DPoPProof, error) {
	p, err := dpop.FromRequest(r)
	if err != nil {
		return sessiond.DPoPProof{}, &sessiond.Error{Code: sessiond.CodeInvalidDPoPProof, Message: "DPoP proof: " + dpopDetail(err), Err: err}
	}
	return sessiond.DPoPProof{Proof: p, Method: r.Method, URL: dp.publicURL + r.URL.EscapedPath()}, nil
}

func dpopDetail(err error) string {
	var e *dpop.Error
	if errors.As(err, &e) {
		return e.Detail
	}
	return err.Error()
}

// dpopNonces gives every response to a request that carries a DPoP proof
// the server's current nonce, when nonces are on, so that the client's
// next proof can carry it (RFC 9449 §8); a use_dpop_nonce refusal thereby
// carries the nonce to retry with.
func dpopNonces(dp dpopDeps, next http.Handler) http.Handler {
	if dp.nonce == nil {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.Header.Values(dpop.Header)) > 0 {
			if n := dp.nonce(); n != "" {
				w.Header().Set(dpop.NonceHeader, n)
			}
		}
		next.ServeHTTP(w, r)
	})
}

// setDPoPChallenge adds the DPoP scheme's WWW-Authenticate challenge
// (RFC 9449 §7.1) for a refusal with code, after any Bearer one.
func setDPoPChallenge(w http.ResponseWriter, code, detail string) {
	w.Header().Add("WWW-Authenticate", dpop.Challenge(code, detail))
}
