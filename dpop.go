package sessiond

import (
	"context"
	"time"
)

// Device-bound sessions (DPoP, RFC 9449).
//
// A login that carries a DPoP proof binds its session to the proof's key:
// the session keeps the key's thumbprint (Session.DPoPJKT), its access
// tokens carry it as cnf.jkt, and every refresh, every logout by refresh
// token and every use of its access tokens on sessiond's own endpoints
// needs a fresh proof by that key. A stolen refresh token or access token is
// then useless without the key, which a careful client cannot even export.
// Package auth verifies proofs (package dpop does the checks of one proof)
// and records each accepted one through DPoPStore, so that none is
// accepted twice on any instance sharing the database.

// DPoPMode is how logins treat DPoP proofs (SESSIOND_DPOP).
type DPoPMode string

const (
	// DPoPOptional binds a session when its login carries a proof.
	DPoPOptional DPoPMode = "optional"
	// DPoPRequired refuses a login without a proof.
	DPoPRequired DPoPMode = "required"
	// DPoPOff ignores proofs on login, so no new session is bound; a
	// session bound before still needs its proofs, since a binding is never
	// dropped.
	DPoPOff DPoPMode = "off"
)

// DPoPProof is the DPoP proof a request carried and what it must match.
type DPoPProof struct {
	// Proof is the compact JWS of the DPoP header; "" when the request
	// carried none.
	Proof string
	// Method and URL are the request the proof must be for: the method, and
	// the URL the client reached the endpoint at (the configured public URL
	// and the request's path, never a Host header the client chose).
	Method string
	URL    string
}

// DPoPStore remembers accepted proofs, so that a proof is accepted once
// across every instance sharing the database.
type DPoPStore interface {
	// AcceptDPoPProof records the proof named key (what dpop.Proof's
	// ReplayKey returns) until expires and reports whether it was new. One
	// statement: of any number of concurrent callers with one key, on any
	// instances, exactly one is told true.
	AcceptDPoPProof(ctx context.Context, key []byte, expires time.Time) (bool, error)
	// DeleteExpiredDPoPProofs deletes at most limit proofs expired by now
	// and returns how many it deleted.
	DeleteExpiredDPoPProofs(ctx context.Context, now time.Time, limit int) (int, error)
}
