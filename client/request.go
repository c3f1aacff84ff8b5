package client

import (
	"crypto/subtle"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/sessiond/sessiond/dpop"
)

// checkPublicURL validates VerifierOptions.PublicURL and returns it without
// a trailing slash ("" stays "": DPoP-bound tokens are then refused).
func checkPublicURL(s string) (string, error) {
	if s == "" {
		return "", nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", fmt.Errorf("PublicURL %q must be an absolute http or https URL without query or fragment", s)
	}
	return strings.TrimRight(s, "/"), nil
}

// Schemes of the Authorization header (RFC 6750, RFC 9449 §7.1).
const (
	schemeBearer = "Bearer"
	schemeDPoP   = "DPoP"
)

// authorization splits the request's one Authorization header into its
// scheme (Bearer or DPoP, as written here whatever the case sent) and
// token. A request without the header has neither; one with two headers,
// another scheme or an empty token is refused.
func authorization(r *http.Request) (scheme, tok string, err error) {
	vals := r.Header.Values("Authorization")
	switch len(vals) {
	case 0:
		return "", "", refuse(ErrNoToken, "no Authorization header")
	case 1:
	default:
		return "", "", refuse(ErrMalformed, "more than one Authorization header")
	}
	s, t, _ := strings.Cut(vals[0], " ")
	t = strings.TrimLeft(t, " ")
	switch {
	case strings.EqualFold(s, schemeBearer):
		scheme = schemeBearer
	case strings.EqualFold(s, schemeDPoP):
		scheme = schemeDPoP
	default:
		return "", "", refuse(ErrNoToken, "the Authorization scheme is neither Bearer nor DPoP")
	}
	if t == "" {
		return "", "", refuse(ErrNoToken, "empty "+scheme+" token")
	}
	return scheme, t, nil
}

// VerifyRequest checks the access token of r's Authorization header and,
// for a DPoP-bound token, its proof, and returns the token's claims or a
// *VerifyError saying why not.
//
// An unbound token comes as "Bearer <token>" (a DPoP header beside it is
// ignored). A bound one (cnf.jkt) must come as "DPoP <token>" with exactly
// one DPoP header holding a proof by the key of that thumbprint, made for
// this request (htm r.Method, htu VerifierOptions.PublicURL + r.URL's
// path, never the Host header), for this token (ath), at most a minute
// old, and not accepted before by this Verifier. A bound token as Bearer,
// an unbound one as DPoP, and any bound token when PublicURL is not
// configured are refused with ErrDPoP.
//
// Proofs are remembered in this process only: a service of several
// instances catches a proof replayed to the instance that saw it, and
// relies on the one-minute window elsewhere.
func (v *Verifier) VerifyRequest(r *http.Request) (*Claims, error) {
	scheme, tok, err := authorization(r)
	if err != nil {
		return nil, err
	}
	c, err := v.verifyToken(r.Context(), tok)
	if err != nil {
		return nil, err
	}
	switch {
	case !c.Bound() && scheme == schemeDPoP:
		return nil, refuse(ErrDPoP, "the token is not DPoP-bound: send it as Bearer")
	case !c.Bound():
		return c, nil
	case scheme != schemeDPoP:
		return nil, refuse(ErrDPoP, "the token is DPoP-bound: send it as DPoP with a proof")
	case v.publicURL == "":
		return nil, refuse(ErrDPoP, "this service is not configured to check DPoP proofs (its verifier has no PublicURL)")
	}
	proof, err := dpop.FromRequest(r)
	if err != nil {
		return nil, &VerifyError{Reason: ErrDPoP, Err: err}
	}
	if proof == "" {
		return nil, refuse(ErrDPoP, "no DPoP proof")
	}
	now := v.now()
	p, err := dpop.Verify(proof, dpop.Request{Method: r.Method, URL: v.publicURL + r.URL.EscapedPath(), AccessToken: tok, Now: now})
	if err != nil {
		return nil, &VerifyError{Reason: ErrDPoP, Err: err}
	}
	if subtle.ConstantTimeCompare([]byte(p.Thumbprint), []byte(c.JKT)) != 1 {
		return nil, refuse(ErrDPoP, "the proof is signed by another key than the token is bound to")
	}
	// Last, so that only proofs good in every other way take a place.
	if !v.replays.Accept(p, now) {
		return nil, refuse(ErrDPoP, "the proof was used before (or too many recent proofs to remember)")
	}
	return c, nil
}
