package auth

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
)

// Sessions returns the principal's live sessions, most recently used first.
func (s *Service) Sessions(ctx context.Context, p *sessiond.Principal) ([]sessiond.Session, error) {
	return s.store.ListSessions(ctx, p.UserID, s.now(), s.policy)
}

// RevokeSession ends one of the principal's sessions. Another user's session
// id is CodeNotFound, exactly like an unknown one, so ids reveal nothing.
func (s *Service) RevokeSession(ctx context.Context, p *sessiond.Principal, id string) error {
	return EndSession(ctx, s.store, p.UserID, id, sessiond.EndRevoked, s.now(), Origin{})
}

// LogoutAll ends every session of the principal's user.
func (s *Service) LogoutAll(ctx context.Context, p *sessiond.Principal) error {
	n, err := EndUserSessions(ctx, s.store, p.UserID, sessiond.EndLogoutAll, s.now(), Origin{})
	if err == nil {
		s.logger.InfoContext(ctx, "logged out everywhere", "user_id", p.UserID, "sessions", n)
	}
	return err
}

// Logout ends the principal's session.
func (s *Service) Logout(ctx context.Context, p *sessiond.Principal) error {
	err := EndSession(ctx, s.store, p.UserID, p.SessionID, sessiond.EndLogout, s.now(), Origin{})
	if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
		// Ended concurrently: the caller's wish holds either way.
		return nil
	}
	return err
}

// EndSession deletes the user's session id and records session.ended with
// reason, in one transaction. CodeNotFound if the user has no such session.
func EndSession(ctx context.Context, st sessiond.Store, userID, id, reason string, now time.Time, o Origin) error {
	return st.Tx(ctx, func(tx sessiond.Tx) error {
		ok, err := tx.DeleteUserSession(userID, id)
		if err != nil {
			return err
		}
		if !ok {
			return errSessionNotFound
		}
		return o.ended(tx, now, userID, []string{id}, reason)
	})
}

var errSessionNotFound = sessiond.Errorf(sessiond.CodeNotFound, "session not found")

// EndUserSessions deletes every session of the user, records a
// session.ended with reason for each, and returns how many there were.
func EndUserSessions(ctx context.Context, st sessiond.Store, userID, reason string, now time.Time, o Origin) (int, error) {
	var n int
	err := st.Tx(ctx, func(tx sessiond.Tx) error {
		ids, err := o.endAll(tx, now, userID, reason)
		n = len(ids)
		return err
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}
