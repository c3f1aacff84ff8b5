package auth

import (
	"context"

	"github.com/sessiond/sessiond"
)

// Sessions returns the principal's live sessions, most recently used first.
func (s *Service) Sessions(ctx context.Context, p *sessiond.Principal) ([]sessiond.Session, error) {
	return s.store.ListSessions(ctx, p.UserID, s.now(), s.policy)
}

// RevokeSession ends one of the principal's sessions. Another user's session
// id is CodeNotFound, exactly like an unknown one, so ids reveal nothing.
func (s *Service) RevokeSession(ctx context.Context, p *sessiond.Principal, id string) error {
	return s.store.DeleteSession(ctx, p.UserID, id)
}

// LogoutAll ends every session of the principal's user.
func (s *Service) LogoutAll(ctx context.Context, p *sessiond.Principal) error {
	n, err := s.store.DeleteUserSessions(ctx, p.UserID)
	if err == nil {
		s.logger.InfoContext(ctx, "logged out everywhere", "user_id", p.UserID, "sessions", n)
	}
	return err
}
