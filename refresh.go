package sessiond

import (
	"crypto/subtle"
	"fmt"
	"time"
)

// Refresh-token rotation.
//
// A refresh token names its session and its generation and carries a secret:
// RT_n = (session id, n, secret_n). The database keeps only SHA-256(secret_n)
// of the current generation and of the one before it. Each rotation derives
// the next secret from the presented one with a MAC under a server secret:
//
//	secret_{n+1} = HMAC-SHA256(server secret, secret_n)
//
// That one choice gives every property docs/API.md promises while the database
// holds only hashes:
//   - two tabs (or a retried request) presenting RT_n inside the grace window
//     recompute the very RT_{n+1} the first request got, so they converge on
//     one token instead of forking the session;
//   - an older RT_k is recognised as this session's ancestor, not a guess, by
//     deriving forward n-k times and comparing with the stored hash: theft is
//     detected without keeping a history of old hashes, and a forged token
//     that merely names a session id cannot end that session;
//   - a database dump yields hashes only, and without the server secret even
//     a stolen old token cannot be walked forward to the current one.
//
// Package token implements the encoding and derivation; this file holds the
// decision. Stores make it on a row read with nothing locked, since the
// ancestor walk may cost thousands of HMACs, and then apply it only if the
// row is still the one they read.

// RefreshAttempt is a presented refresh token, pre-digested by package token
// so that stores never see the token itself.
type RefreshAttempt struct {
	SessionID  string
	Generation uint64
	// Hash is SHA-256 of the presented secret; NextHash is SHA-256 of the
	// secret derived from it, which a rotation stores as the new current one.
	Hash     []byte
	NextHash []byte
	// IsAncestor reports whether deriving steps times from the presented
	// secret yields a secret with SHA-256 equal to hash.
	IsAncestor func(steps uint64, hash []byte) bool
	// DPoPJKT is the thumbprint of the key whose DPoP proof came with the
	// token, verified and new; "" when none did. A bound session refreshes
	// only with its own key's (Session.DPoPAllows).
	DPoPJKT string
}

// RefreshVerdict is what a presented refresh token is to its session.
type RefreshVerdict int

const (
	// RefreshInvalid: not a token of this session's chain (or no session).
	RefreshInvalid RefreshVerdict = iota
	// RefreshCurrent: the current token; refresh and rotate.
	RefreshCurrent
	// RefreshGrace: the token just superseded, inside the grace window;
	// answer with the current token, do not rotate again.
	RefreshGrace
	// RefreshReused: the superseded token after the window, or an older
	// ancestor: treat as theft and end the session.
	RefreshReused
	// RefreshExpired: a valid token of a session past its idle or absolute expiry.
	RefreshExpired
)

func (v RefreshVerdict) String() string {
	return [...]string{"invalid", "current", "grace", "reused", "expired"}[v]
}

// AncestorWalkCeiling is the most derivation steps any ancestor check
// performs, whatever the policy: the worst case of one request's work.
const AncestorWalkCeiling = 1 << 16

// Margins of MaxAncestorSteps over one refresh per access token: clients
// refresh ahead of expiry, retry, and several tabs of one browser session
// may each refresh on their own timer; and a short session still gets a
// useful depth.
const (
	ancestorStepsFactor = 4
	ancestorStepsSlack  = 64
)

// MaxAncestorSteps bounds the ancestor walk of ClassifyRefresh: a token
// more generations behind its session than this is refused as invalid
// without deriving anything. A session lives at most SessionTTL and a client
// needs about one refresh per AccessTTL, so a real session's tokens are never
// much further apart than SessionTTL/AccessTTL generations; the bound allows
// ancestorStepsFactor times that plus ancestorStepsSlack, and never more
// than AncestorWalkCeiling. Without an AccessTTL or SessionTTL it is the
// ceiling.
func (p Policy) MaxAncestorSteps() uint64 {
	if p.AccessTTL <= 0 || p.SessionTTL <= 0 {
		return AncestorWalkCeiling
	}
	perTTL := uint64(p.SessionTTL / p.AccessTTL)
	if p.SessionTTL%p.AccessTTL != 0 {
		perTTL++
	}
	if perTTL > AncestorWalkCeiling { // also keeps the product from overflowing
		return AncestorWalkCeiling
	}
	return min(perTTL*ancestorStepsFactor+ancestorStepsSlack, AncestorWalkCeiling)
}

// ClassifyRefresh decides what a presents to s at now. All hash comparisons
// are constant-time.
func ClassifyRefresh(s *Session, a *RefreshAttempt, now time.Time, p Policy) RefreshVerdict {
	if s == nil || s.ID != a.SessionID {
		return RefreshInvalid
	}
	var v RefreshVerdict
	switch {
	case a.Generation == s.Generation:
		if !equalHash(a.Hash, s.RefreshHash) {
			return RefreshInvalid
		}
		v = RefreshCurrent
	case a.Generation+1 == s.Generation:
		if !equalHash(a.Hash, s.PrevHash) {
			return RefreshInvalid
		}
		// The derived secret must be the one stored: otherwise the server
		// secret changed, and the current token cannot be given back.
		if p.ReuseGrace > 0 && !now.After(s.RotatedAt.Add(p.ReuseGrace)) && equalHash(a.NextHash, s.RefreshHash) {
			v = RefreshGrace
		} else {
			v = RefreshReused
		}
	case a.Generation < s.Generation:
		steps := s.Generation - a.Generation
		if steps > p.MaxAncestorSteps() || a.IsAncestor == nil || !a.IsAncestor(steps, s.RefreshHash) {
			return RefreshInvalid
		}
		v = RefreshReused
	default:
		return RefreshInvalid
	}
	if v != RefreshReused && !s.Live(now, p) {
		return RefreshExpired
	}
	return v
}

func equalHash(a, b []byte) bool {
	return len(a) > 0 && subtle.ConstantTimeCompare(a, b) == 1
}

// RefreshReuse is the cause wrapped in a CodeRefreshTokenReused error: which
// session reuse detection ended, whose it was, and the generations involved,
// so that the attack can be reported to (and about) the right account.
type RefreshReuse struct {
	UserID    string
	SessionID string
	// Presented is the generation of the reused token; Current the
	// session's generation when it was ended.
	Presented, Current uint64
}

func (r *RefreshReuse) Error() string {
	return fmt.Sprintf("refresh token of generation %d reused; session %s of user %s (at generation %d) ended",
		r.Presented, r.SessionID, r.UserID, r.Current)
}

// ErrRefreshReused is the error a store returns after ending s because a
// was a reused token of it.
func ErrRefreshReused(s *Session, a *RefreshAttempt) *Error {
	return &Error{
		Code:    CodeRefreshTokenReused,
		Message: "the refresh token was already used; the session has been ended",
		Err:     &RefreshReuse{UserID: s.UserID, SessionID: s.ID, Presented: a.Generation, Current: s.Generation},
	}
}
