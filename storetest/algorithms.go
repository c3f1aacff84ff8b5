package storetest

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/auth"
)

// store is a store under test, with the session algorithms of package auth
// as methods: what a login, a refresh and the logouts do, each in the
// store's transactions and with its statements.
type store struct{ sessiond.Store }

// eventClock stamps the events of the calls that take no instant of their
// own: an hour into the suite's time, after every login the tests make
// before they log out.
func eventClock() time.Time { return at(time.Hour) }

func (s store) CreateSession(ctx context.Context, sess *sessiond.Session, now time.Time, p sessiond.Policy) ([]string, error) {
	return auth.CreateSession(ctx, s.Store, sess, now, p, sessiond.MethodPassword, auth.Origin{})
}

func (s store) RefreshSession(ctx context.Context, a *sessiond.RefreshAttempt, now time.Time, p sessiond.Policy) (*sessiond.Session, error) {
	return auth.RefreshSession(ctx, s.Store, a, now, p, auth.Origin{})
}

func (s store) EndSessionByRefresh(ctx context.Context, a *sessiond.RefreshAttempt, p sessiond.Policy) error {
	return auth.EndSessionByRefresh(ctx, s.Store, a, eventClock(), p, auth.Origin{})
}

func (s store) DeleteSession(ctx context.Context, userID, id string) error {
	return auth.EndSession(ctx, s.Store, userID, id, sessiond.EndRevoked, eventClock(), auth.Origin{})
}

func (s store) DeleteUserSessions(ctx context.Context, userID string) (int, error) {
	return auth.EndUserSessions(ctx, s.Store, userID, sessiond.EndLogoutAll, eventClock(), auth.Origin{})
}
