package auth

import (
	"context"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/password"
)

// The user half of sessiond.AdminService: what operators and trusted
// backends do to accounts and sessions. Every change is one transaction
// with its events, and each event names the admin key in data.actor.

// Page sizes of Users.
const (
	DefaultUserPage = 50
	MaxUserPage     = 500
)

// actor is the Origin of an admin call: its events carry data.actor.
func actor(a sessiond.Actor) Origin { return Origin{Actor: a.KeyName} }

// Users lists users in id order after q.Cursor, or finds the one with
// the exact (normalized) email q.Email.
func (s *Service) Users(ctx context.Context, q sessiond.UserQuery) ([]sessiond.User, string, error) {
	switch {
	case q.Limit < 0 || q.Limit > MaxUserPage:
		return nil, "", sessiond.Errorf(sessiond.CodeInvalidRequest, "limit must be 1 to %d", MaxUserPage)
	case q.Limit == 0:
		q.Limit = DefaultUserPage
	}
	if q.Email != "" {
		u, err := s.store.UserByEmail(ctx, NormalizeEmail(q.Email))
		if sessiond.ErrorCode(err) == sessiond.CodeNotFound {
			return []sessiond.User{}, "", nil
		}
		if err != nil {
			return nil, "", err
		}
		return []sessiond.User{*u}, "", nil
	}
	// One more than asked says whether there is a next page.
	users, err := s.store.Users(ctx, q.Cursor, q.Limit+1)
	if err != nil {
		return nil, "", err
	}
	next := ""
	if len(users) > q.Limit {
		users = users[:q.Limit]
		next = users[len(users)-1].ID
	}
	return users, next, nil
}

// CreateUser creates or imports a user: with a password, checked like a
// signup's, or with the hash another system kept (argon2id or bcrypt),
// which the user's next login replaces with this server's argon2id.
func (s *Service) CreateUser(ctx context.Context, a sessiond.Actor, nu sessiond.NewUser) (*sessiond.User, error) {
	email := NormalizeEmail(nu.Email)
	if err := validateEmail(email); err != nil {
		return nil, err
	}
	var hash string
	switch {
	case (nu.Password == "") == (nu.PasswordHash == ""):
		return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "give exactly one of password and password_hash")
	case nu.PasswordHash != "":
		if err := password.CheckImported(nu.PasswordHash); err != nil {
			return nil, sessiond.Errorf(sessiond.CodeInvalidRequest, "password_hash is not a supported hash (argon2id or bcrypt $2a$/$2b$/$2y$ PHC string): %v", err)
		}
		hash = nu.PasswordHash
	default:
		pw := normalizePassword(nu.Password)
		if err := s.checkPassword(pw, email); err != nil {
			return nil, err
		}
		var err error
		if hash, err = s.hasher.Hash(ctx, pw); err != nil {
			return nil, err
		}
	}
	now := s.now()
	u := &sessiond.User{ID: sessiond.NewID(), Email: email, PasswordHash: hash, CreatedAt: now, EmailVerified: nu.EmailVerified}
	o := actor(a)
	err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
		if err := tx.InsertUser(u); err != nil {
			return err
		}
		return record(tx, now, o.event(sessiond.EventUserCreated, u.ID, "", nil))
	})
	if err != nil {
		return nil, err
	}
	return u, nil
}

// User returns one user. CodeNotFound.
func (s *Service) User(ctx context.Context, id string) (*sessiond.User, error) {
	return s.store.UserByID(ctx, id)
}

// UpdateUser applies p under the user's lock. Disabling ends every session
// of the user in the same transaction (reason user_disabled): once it has
// returned, no refresh of theirs succeeds and no login opens a session.
func (s *Service) UpdateUser(ctx context.Context, a sessiond.Actor, id string, p sessiond.UserPatch) (*sessiond.User, error) {
	now := s.now()
	o := actor(a)
	var out *sessiond.User
	err := s.store.Tx(ctx, func(tx sessiond.Tx) error {
		u, err := tx.LockUser(id)
		if err != nil {
			return err
		}
		changed := map[string]any{}
		if p.Disabled != nil && *p.Disabled != u.Disabled {
			u.Disabled = *p.Disabled
			changed["disabled"] = u.Disabled
		}
		if p.EmailVerified != nil && *p.EmailVerified != u.EmailVerified {
			u.EmailVerified = *p.EmailVerified
			changed["email_verified"] = u.EmailVerified
		}
		out = u
		if len(changed) == 0 {
			return nil
		}
		if err := tx.SetUserFlags(u); err != nil {
			return err
		}
		if err := record(tx, now, o.event(sessiond.EventUserUpdated, u.ID, "", changed)); err != nil {
			return err
		}
		if _, ok := changed["disabled"]; !ok || !u.Disabled {
			return nil
		}
		_, err = o.endAll(tx, now, u.ID, sessiond.EndUserDisabled)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DeleteUser removes the user and everything of theirs (deleteUser, which
// a user's own deletion shares); their sessions end (reason user_deleted).
func (s *Service) DeleteUser(ctx context.Context, a sessiond.Actor, id string) error {
	now := s.now()
	o := actor(a)
	return s.store.Tx(ctx, func(tx sessiond.Tx) error { return deleteUser(tx, now, o, id) })
}

// UserSessions lists the user's live sessions, most recently used first.
// CodeNotFound for an unknown user.
func (s *Service) UserSessions(ctx context.Context, id string) ([]sessiond.Session, error) {
	if _, err := s.store.UserByID(ctx, id); err != nil {
		return nil, err
	}
	return s.store.ListSessions(ctx, id, s.now(), s.policy)
}

// EndUserSessions ends every session of the user (reason admin).
// CodeNotFound for an unknown user.
func (s *Service) EndUserSessions(ctx context.Context, a sessiond.Actor, id string) error {
	now := s.now()
	o := actor(a)
	return s.store.Tx(ctx, func(tx sessiond.Tx) error {
		if _, err := tx.LockUser(id); err != nil {
			return err
		}
		_, err := o.endAll(tx, now, id, sessiond.EndAdmin)
		return err
	})
}

// EndSession ends one session, whoever's it is (reason admin). CodeNotFound.
func (s *Service) EndSession(ctx context.Context, a sessiond.Actor, sessionID string) error {
	now := s.now()
	o := actor(a)
	return s.store.Tx(ctx, func(tx sessiond.Tx) error {
		sess, err := tx.SessionByID(sessionID)
		if err != nil {
			return err
		}
		if sess == nil {
			return errSessionNotFound
		}
		ok, err := tx.DeleteUserSession(sess.UserID, sess.ID)
		if err != nil {
			return err
		}
		if !ok {
			return errSessionNotFound
		}
		return o.ended(tx, now, sess.UserID, []string{sess.ID}, sessiond.EndAdmin)
	})
}

// CreateSession opens a session for a user the calling backend
// authenticated by its own means: the login's cap and eviction
// (CreateSession's algorithm), session.created with method external, and
// access tokens with amr ["ext"]. CodeNotFound, CodeAccountDisabled.
func (s *Service) CreateSession(ctx context.Context, a sessiond.Actor, userID string, c sessiond.ClientInfo) (*sessiond.Tokens, error) {
	// The backend relays its client's proof, made for the backend's own
	// URL (c.DPoP says which), to bind the session to the client's key.
	jkt, err := s.bindingKey(ctx, c)
	if err != nil {
		return nil, err
	}
	now := s.now()
	o := origin(c)
	o.Actor = a.KeyName
	sess := &sessiond.Session{
		ID: sessiond.NewID(), UserID: userID, CreatedAt: now, LastUsedAt: now,
		ExpiresAt: now.Add(s.policy.SessionTTL), UserAgent: o.UserAgent, IP: c.IP,
		AMR: []string{"ext"}, AuthTime: now, DPoPJKT: jkt,
	}
	rt, hash, err := s.refresher.Mint(sess.ID)
	if err != nil {
		return nil, err
	}
	sess.RefreshHash = hash
	var evicted []string
	err = s.store.Tx(ctx, func(tx sessiond.Tx) error {
		var err error
		_, evicted, err = openSession(tx, sess, now, s.policy, sessiond.MethodExternal, o)
		return err
	})
	if err != nil {
		return nil, err
	}
	if len(evicted) > 0 {
		s.events.SessionsEvicted(len(evicted))
	}
	return s.tokens(sess, rt, now)
}
