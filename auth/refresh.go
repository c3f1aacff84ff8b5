package auth

import (
	"context"
	"errors"
	"time"

	"github.com/sessiond/sessiond"
)

// decideAttempts bounds how often one refresh or logout is decided again
// because its session changed between the read and the write. Only requests
// for that same session can change it, so a legitimate race settles in two.
const decideAttempts = 3

// errKeptChanging is the cause when decideAttempts ran out.
var errKeptChanging = errors.New("the session changed on every attempt")

var errInvalidRefresh = sessiond.Errorf(sessiond.CodeInvalidRefreshToken, "the refresh token is not valid")

// RefreshSession is the refresh algorithm: it applies a (see
// sessiond.ClassifyRefresh) and returns the session as it now is.
//
// The common case, the current token of a live session, is one statement
// (Store.RefreshCurrent). Any other token (a twin inside the grace window,
// a reused, expired or invalid one) is classified on the session read with
// nothing held: the ancestor walk may cost p.MaxAncestorSteps HMACs, and no
// lock or transaction waits for them. A transaction then applies the
// verdict with statements that match only the row as read; when another
// request changed it in between they match nothing and the attempt is
// decided again. Reuse ends the session and records session.ended (reason
// reuse_detected) in that transaction.
//
// A session bound to a DPoP key refreshes only when a.DPoPJKT is that
// key's thumbprint: the fast path's statement matches no other attempt,
// and the slow path refuses one on the row read, before classifying it,
// with CodeInvalidDPoPProof and the session untouched.
//
// Codes: CodeInvalidDPoPProof; CodeInvalidRefreshToken; CodeSessionExpired and
// CodeRefreshTokenReused, both after deleting the session (the latter
// wrapping a *sessiond.RefreshReuse).
func RefreshSession(ctx context.Context, st sessiond.Store, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy, o Origin) (*sessiond.Session, error) {
	if s, err := st.RefreshCurrent(ctx, a, now, p); err != nil || s != nil {
		return s, err
	}
	for range decideAttempts {
		s, err := st.Session(ctx, a.SessionID)
		if err != nil {
			return nil, err
		}
		// Before any verdict: without the bound key, even a reused token
		// must not end the session (its thief could end the owner's).
		if err := checkBinding(s, a.DPoPJKT); err != nil {
			return nil, err
		}
		v := sessiond.ClassifyRefresh(s, a, now, p)
		if v == sessiond.RefreshInvalid {
			return nil, errInvalidRefresh
		}
		var out *sessiond.Session
		var done bool
		err = st.Tx(ctx, func(tx sessiond.Tx) error {
			var err error
			out, done = nil, false
			switch v {
			case sessiond.RefreshCurrent:
				// The fast path raced with another change of the row.
				if p.Rotate {
					out, err = tx.RotateIfUnchanged(s, a.NextHash, now)
				} else {
					out, err = tx.StampIfUnchanged(s, now)
				}
				done = out != nil
			case sessiond.RefreshGrace:
				// The twin of a request that already rotated: same
				// generation, so both end up holding the one current token.
				out, err = tx.StampIfUnchanged(s, now)
				done = out != nil
			default: // reused or expired: the session ends
				done, err = tx.DeleteIfUnchanged(s)
				if err == nil && done && v == sessiond.RefreshReused {
					err = o.ended(tx, now, s.UserID, []string{s.ID}, sessiond.EndReuseDetected)
				}
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		if !done {
			continue
		}
		switch v {
		case sessiond.RefreshReused:
			return nil, sessiond.ErrRefreshReused(s, a)
		case sessiond.RefreshExpired:
			return nil, sessiond.Errorf(sessiond.CodeSessionExpired, "the session has expired")
		}
		return out, nil
	}
	return nil, sessiond.Unavailable("refresh session", errKeptChanging)
}

// EndSessionByRefresh is the logout by refresh token: it deletes the
// session the token belongs to, as long as the token is of that session's
// chain (current, superseded or an ancestor within p.MaxAncestorSteps,
// expired or not), and records session.ended (reason logout).
// CodeInvalidRefreshToken otherwise, deleting nothing, so that a token that
// merely names a session id cannot end it. As in RefreshSession, the walk
// runs with nothing held. A bound session ends only for a.DPoPJKT its
// key's (CodeInvalidDPoPProof otherwise), so that a stolen token cannot
// end it.
func EndSessionByRefresh(ctx context.Context, st sessiond.Store, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy, o Origin) error {
	for range decideAttempts {
		s, err := st.Session(ctx, a.SessionID)
		if err != nil {
			return err
		}
		if err := checkBinding(s, a.DPoPJKT); err != nil {
			return err
		}
		// Whatever the instant, ClassifyRefresh answers RefreshInvalid
		// exactly when a is not of s's chain (within p's walk); every other
		// verdict only says what to do with a token of it, and a logout
		// ends the session anyway.
		if s == nil || sessiond.ClassifyRefresh(s, a, s.CreatedAt, p) == sessiond.RefreshInvalid {
			return errInvalidRefresh
		}
		var deleted bool
		err = st.Tx(ctx, func(tx sessiond.Tx) error {
			var err error
			if deleted, err = tx.DeleteIfUnchanged(s); err != nil || !deleted {
				return err
			}
			return o.ended(tx, now, s.UserID, []string{s.ID}, sessiond.EndLogout)
		})
		if err != nil {
			return err
		}
		if deleted {
			return nil
		}
	}
	return sessiond.Unavailable("end session", errKeptChanging)
}
