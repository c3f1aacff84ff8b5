package auth

import (
	"context"
	"crypto/subtle"
	"errors"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/dpop"
)

// DPoP configures device-bound sessions (RFC 9449).
type DPoP struct {
	// Mode is how logins treat proofs; empty means sessiond.DPoPOptional.
	Mode sessiond.DPoPMode
	// Nonces, when set, are required in every proof (RFC 9449 §8): a proof
	// without the current one fails with CodeUseDPoPNonce, and the client
	// retries with the nonce of the answer's DPoP-Nonce header.
	Nonces *dpop.Nonces
}

// DPoPNonce is the server nonce a response should carry for the client's
// next proof; "" when nonces are off.
func (s *Service) DPoPNonce() string {
	if s.dpop.Nonces == nil {
		return ""
	}
	return s.dpop.Nonces.Issue(s.clock())
}

var errDPoPReplayed = sessiond.Errorf(sessiond.CodeInvalidDPoPProof, "this DPoP proof was used before; make a new one for every request")

// acceptProof verifies p for a request whose access token is at ("" for
// none) and records it, so that it is never accepted again on any
// instance. A request without a proof gets nil and no error: whether it
// needed one is the caller's to say. Cheap next to a password hash: one
// signature check and one statement.
func (s *Service) acceptProof(ctx context.Context, p sessiond.DPoPProof, at string) (*dpop.Proof, error) {
	if p.Proof == "" {
		return nil, nil
	}
	now := s.clock()
	req := dpop.Request{Method: p.Method, URL: p.URL, AccessToken: at, Now: now}
	if n := s.dpop.Nonces; n != nil {
		req.Nonce = func(nonce string) bool { return n.Valid(nonce, now) }
	}
	proof, err := dpop.Verify(p.Proof, req)
	if err != nil {
		return nil, proofError(err)
	}
	key := proof.ReplayKey()
	fresh, err := s.store.AcceptDPoPProof(ctx, key[:], proof.Expires())
	if err != nil {
		return nil, err
	}
	if !fresh {
		return nil, errDPoPReplayed
	}
	return proof, nil
}

// proofError is the sessiond error of a proof dpop.Verify refused.
func proofError(err error) error {
	var e *dpop.Error
	if !errors.As(err, &e) {
		return &sessiond.Error{Code: sessiond.CodeInvalidDPoPProof, Message: "invalid DPoP proof", Err: err}
	}
	code := sessiond.CodeInvalidDPoPProof
	if errors.Is(err, dpop.ErrUseNonce) {
		code = sessiond.CodeUseDPoPNonce
	}
	return &sessiond.Error{Code: code, Message: "DPoP proof: " + e.Detail, Err: err}
}

var errDPoPRequired = sessiond.Errorf(sessiond.CodeInvalidDPoPProof, "this server signs in only devices that prove a key: send a DPoP proof with the login")

// bindingKey is the thumbprint a new session is bound to: that of the
// login's proof, verified and recorded, or "" for an unbound session. It
// runs before any password is hashed, so a bad proof costs no hash.
func (s *Service) bindingKey(ctx context.Context, c sessiond.ClientInfo) (string, error) {
	switch s.dpop.Mode {
	case sessiond.DPoPOff:
		return "", nil
	case sessiond.DPoPRequired:
		if c.DPoP.Proof == "" {
			return "", errDPoPRequired
		}
	}
	return s.proofKey(ctx, c.DPoP)
}

// proofKey is the thumbprint of the request's proof, verified and
// recorded; "" for none. On a refresh or a logout by refresh token a proof
// is checked even when the session turns out unbound, and then binds
// nothing.
func (s *Service) proofKey(ctx context.Context, p sessiond.DPoPProof) (string, error) {
	proof, err := s.acceptProof(ctx, p, "")
	if err != nil || proof == nil {
		return "", err
	}
	return proof.Thumbprint, nil
}

// errDPoPKey refuses a bound session's refresh or logout without a proof
// by its key; the session is left as it was.
var errDPoPKey = sessiond.Errorf(sessiond.CodeInvalidDPoPProof, "this session is bound to a key: send a DPoP proof made with it")

// checkBinding refuses s to a request whose proof's key is jkt ("" for
// none) unless s is unbound or bound to that key. Package auth's
// algorithms call it on the row read, before anything is decided, so that
// a refresh token presented without the key never counts as reuse and
// never ends or changes the session.
func checkBinding(s *sessiond.Session, jkt string) error {
	if s == nil || s.DPoPAllows(jkt) {
		return nil
	}
	return errDPoPKey
}

// authenticateDPoP checks the scheme and the proof of an access token
// whose claims bound it to jkt ("" for a bearer token): a bound token only
// with the DPoP scheme and a proof by its key that carries the token's
// hash, an unbound one only as Bearer.
func (s *Service) authenticateDPoP(ctx context.Context, at, jkt string, p *sessiond.DPoPProof) error {
	switch {
	case p == nil && jkt == "":
		return nil
	case p == nil:
		return sessiond.Errorf(sessiond.CodeInvalidToken, "this token is bound to a key: send it as \"Authorization: DPoP <token>\" with a DPoP proof")
	case jkt == "":
		return sessiond.Errorf(sessiond.CodeInvalidToken, "this token is not bound to a key: send it as \"Authorization: Bearer <token>\"")
	case p.Proof == "":
		return sessiond.Errorf(sessiond.CodeInvalidDPoPProof, "the DPoP scheme needs a DPoP proof header")
	}
	proof, err := s.acceptProof(ctx, *p, at)
	if err != nil {
		return err
	}
	if subtle.ConstantTimeCompare([]byte(proof.Thumbprint), []byte(jkt)) != 1 {
		return sessiond.Errorf(sessiond.CodeInvalidDPoPProof, "the DPoP proof is not made with the key the token is bound to")
	}
	return nil
}
