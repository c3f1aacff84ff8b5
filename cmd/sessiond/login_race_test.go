package main

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/app"
)

// changeFirstStore commits a password change of user, once armed, just
// before the next transaction begins: the moment between a login's
// password check and its transaction, where a reset or a change made
// elsewhere lands.
type changeFirstStore struct {
	app.Store
	armed  *atomic.Bool
	userID *string
}

func (s changeFirstStore) Tx(ctx context.Context, fn sessiond.TxFunc) error {
	if s.armed.CompareAndSwap(true, false) {
		err := s.Store.Tx(ctx, func(tx sessiond.Tx) error {
			if _, err := tx.DeleteUserSessions(*s.userID); err != nil {
				return err
			}
			return tx.SetPasswordHash(*s.userID, "$argon2id$v=19$m=64,t=1,p=1$c2FsdHNhbHRzYWx0c2FsdA$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g")
		})
		if err != nil {
			return err
		}
	}
	return s.Store.Tx(ctx, fn)
}

// TestLoginRacingPasswordChange: a login whose password checked out
// against the hash of before a change that committed in the meantime
// opens no session: the change ended every session, and the old
// password must not make a new one.
func TestLoginRacingPasswordChange(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		cfg := app.DefaultConfig()
		cfg.DatabaseURL = dbURL(t)
		cfg.PublicURL, cfg.Issuer = "https://sessiond.test", "https://sessiond.test"
		cfg.PasswordHash = fastHash
		cfg.HashWait = time.Minute
		if err := cfg.Validate(); err != nil {
			t.Fatal(err)
		}
		var armed atomic.Bool
		var userID string
		e := newTestEnvWith(t, cfg, func(s app.Store) app.Store {
			return changeFirstStore{Store: s, armed: &armed, userID: &userID}
		}, nil)
		e.signup("ada@example.com")
		u, err := e.app.Store.UserByEmail(context.Background(), "ada@example.com")
		if err != nil {
			t.Fatal(err)
		}
		userID = u.ID

		armed.Store(true)
		loginWith(e, "ada@example.com", testPassword).want(t, 401, "invalid_credentials")
		if armed.Load() {
			t.Fatal("the change did not run between the password check and the login's transaction")
		}
		ss, err := e.app.Store.ListSessions(context.Background(), u.ID, time.Now(), cfg.Policy)
		if err != nil {
			t.Fatal(err)
		}
		if len(ss) != 0 {
			t.Errorf("sessions after a login that raced a password change: got %d, want 0", len(ss))
		}
	})
}
