package auth

import (
	"context"
	"time"

	"github.com/sessiond/sessiond"
)

// CreateSession is the login algorithm, the one place the session cap is
// applied: in one transaction it locks the user, deletes the user's expired
// sessions and the least recently used live ones beyond p.MaxSessions
// (sessiond.Evictions), inserts s, and records session.created (data.method
// method, device_bound whether s is bound to a DPoP key) and a
// session.ended (reason evicted) per eviction. It returns the
// ids of the evicted live sessions. CodeNotFound if the user is gone,
// CodeAccountDisabled if it is disabled.
func CreateSession(ctx context.Context, st sessiond.Store, s *sessiond.Session, now time.Time, p sessiond.Policy, method string, o Origin) (evicted []string, err error) {
	err = st.Tx(ctx, func(tx sessiond.Tx) error {
		_, evicted, err = openSession(tx, s, now, p, method, o)
		return err
	})
	if err != nil {
		return nil, err
	}
	return evicted, nil
}

// openSession is CreateSession's body, for use cases that do more in the
// same transaction. It returns the user as locked.
func openSession(tx sessiond.Tx, s *sessiond.Session, now time.Time, p sessiond.Policy, method string, o Origin) (*sessiond.User, []string, error) {
	return openSessionEvent(tx, s, now, p, o.event(sessiond.EventSessionCreated, s.UserID, s.ID, map[string]any{"method": method}), o)
}

// openSessionEvent is openSession recording created, a session.created
// event of o for s, whose data the caller chose.
func openSessionEvent(tx sessiond.Tx, s *sessiond.Session, now time.Time, p sessiond.Policy, created sessiond.Event, o Origin) (*sessiond.User, []string, error) {
	u, err := tx.LockUser(s.UserID)
	if err != nil {
		return nil, nil, err
	}
	// Checked under the lock: a disable that commits first has ended every
	// session, and this login must not open a new one after it.
	if u.Disabled {
		return u, nil, errDisabled
	}
	existing, err := tx.SessionsForEviction(s.UserID)
	if err != nil {
		return nil, nil, err
	}
	expired, evict := sessiond.Evictions(existing, now, p)
	if _, err := tx.DeleteSessions(append(expired, evict...)); err != nil {
		return nil, nil, err
	}
	if err := tx.InsertSession(s); err != nil {
		return nil, nil, err
	}
	// The evicted sessions end at the login's hand, so their events carry
	// the login's client.
	if err := o.ended(tx, now, s.UserID, evict, sessiond.EndEvicted); err != nil {
		return nil, nil, err
	}
	created.IP, created.UserAgent = s.IP, s.UserAgent
	data := make(map[string]any, len(created.Data)+1)
	for k, v := range created.Data {
		data[k] = v
	}
	data["device_bound"] = s.DPoPJKT != ""
	created.Data = data
	if err := record(tx, now, created); err != nil {
		return nil, nil, err
	}
	return u, evict, nil
}

var errDisabled = sessiond.Errorf(sessiond.CodeAccountDisabled, "this account has been disabled")
