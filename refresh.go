package sessiond

import (
	"crypto/subtle"
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
// decision, which the stores apply inside their transactions.

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

// maxAncestorSteps bounds the work of recognising an ancestor: a token more
// generations back than this is refused as invalid without deriving.
const maxAncestorSteps = 1 << 16

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
		if steps > maxAncestorSteps || a.IsAncestor == nil || !a.IsAncestor(steps, s.RefreshHash) {
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
