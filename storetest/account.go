package storetest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// testAccountTokens proves the one-time tokens of account mail: stored and
// consumed once, before expiry; superseded by a newer one of the kind;
// deleted with the user's unused ones; single use under concurrency.
func testAccountTokens(t *testing.T, open opener) {
	token := func(u *sessiond.User, kind, secret string, created time.Time) *sessiond.AccountToken {
		h := sha256.Sum256([]byte(secret))
		return &sessiond.AccountToken{Hash: h[:], Kind: kind, UserID: u.ID, Email: u.Email, CreatedAt: created, ExpiresAt: created.Add(30 * time.Minute)}
	}
	insert := func(t *testing.T, st store, tokens ...*sessiond.AccountToken) {
		t.Helper()
		err := st.Tx(ctx(t), func(tx sessiond.Tx) error {
			for _, a := range tokens {
				if err := tx.InsertAccountToken(a); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatalf("InsertAccountToken: %v", err)
		}
	}
	consume := func(t *testing.T, st store, a *sessiond.AccountToken, now time.Time) *sessiond.AccountToken {
		t.Helper()
		var got *sessiond.AccountToken
		err := st.Tx(ctx(t), func(tx sessiond.Tx) error {
			var err error
			got, err = tx.ConsumeAccountToken(a.Kind, a.Hash, now)
			return err
		})
		if err != nil {
			t.Fatalf("ConsumeAccountToken: %v", err)
		}
		return got
	}

	t.Run("consume once before expiry", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		a := token(u, sessiond.TokenResetPassword, "one", t0)
		insert(t, st, a)
		wrongKind := *a
		wrongKind.Kind = sessiond.TokenVerifyEmail
		if got := consume(t, st, &wrongKind, at(time.Minute)); got != nil {
			t.Errorf("consumed as the other kind: %+v", got)
		}
		got := consume(t, st, a, at(time.Minute))
		if got == nil || !bytes.Equal(got.Hash, a.Hash) || got.UserID != u.ID || got.Email != u.Email ||
			!got.CreatedAt.Equal(a.CreatedAt) || !got.ExpiresAt.Equal(a.ExpiresAt) || !got.UsedAt.Equal(at(time.Minute)) {
			t.Fatalf("consume: got %+v, want the token, used at %v", got, at(time.Minute))
		}
		if got := consume(t, st, a, at(2*time.Minute)); got != nil {
			t.Errorf("second consume: got %+v, want nil", got)
		}
		b := token(u, sessiond.TokenVerifyEmail, "two", t0)
		insert(t, st, b)
		if got := consume(t, st, b, b.ExpiresAt); got != nil {
			t.Errorf("consume at expiry: got %+v, want nil", got)
		}
	})
	t.Run("a newer token supersedes", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		older, newer := token(u, sessiond.TokenResetPassword, "older", t0), token(u, sessiond.TokenResetPassword, "newer", at(time.Second))
		verify := token(u, sessiond.TokenVerifyEmail, "verify", t0)
		insert(t, st, older, verify)
		insert(t, st, newer)
		if got := consume(t, st, older, at(time.Minute)); got != nil {
			t.Errorf("superseded token consumed: %+v", got)
		}
		if got := consume(t, st, verify, at(time.Minute)); got == nil {
			t.Errorf("a token of another kind was superseded")
		}
		if got := consume(t, st, newer, at(time.Minute)); got == nil {
			t.Errorf("newest token not consumed")
		}
	})
	t.Run("delete unused", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		a := token(u, sessiond.TokenResetPassword, "one", t0)
		insert(t, st, a)
		if err := st.Tx(ctx(t), func(tx sessiond.Tx) error { return tx.DeleteAccountTokens(u.ID, sessiond.TokenResetPassword) }); err != nil {
			t.Fatal(err)
		}
		if got := consume(t, st, a, at(time.Minute)); got != nil {
			t.Errorf("deleted token consumed: %+v", got)
		}
	})
	t.Run("sweep", func(t *testing.T) {
		st := open(t)
		as, ok := st.Store.(sessiond.AdminStore)
		if !ok {
			t.Skip("store has no DeleteExpiredAccountTokens")
		}
		u := newUser(t, st, "ada@example.com")
		old, live := token(u, sessiond.TokenResetPassword, "old", t0), token(u, sessiond.TokenVerifyEmail, "live", at(time.Hour))
		insert(t, st, old, live)
		n, err := as.DeleteExpiredAccountTokens(ctx(t), at(time.Hour), 10)
		if err != nil || n != 1 {
			t.Fatalf("DeleteExpiredAccountTokens: got %d, %v; want 1", n, err)
		}
		if got := consume(t, st, live, at(time.Hour+time.Minute)); got == nil {
			t.Errorf("the live token was swept")
		}
	})
	t.Run("unknown user", func(t *testing.T) {
		st := open(t)
		a := token(&sessiond.User{ID: sessiond.NewID(), Email: "x@example.com"}, sessiond.TokenResetPassword, "x", t0)
		err := st.Tx(ctx(t), func(tx sessiond.Tx) error { return tx.InsertAccountToken(a) })
		wantCode(t, err, sessiond.CodeNotFound)
	})
	t.Run("single use under concurrency", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		a := token(u, sessiond.TokenResetPassword, "one", t0)
		insert(t, st, a)
		const n = 8
		var mu sync.Mutex
		won, failed := 0, 0
		var wg sync.WaitGroup
		for range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var got *sessiond.AccountToken
				err := st.Tx(ctx(t), func(tx sessiond.Tx) error {
					var err error
					got, err = tx.ConsumeAccountToken(a.Kind, a.Hash, at(time.Minute))
					return err
				})
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err != nil:
					failed++
				case got != nil:
					won++
				}
			}()
		}
		wg.Wait()
		if won != 1 || failed != 0 {
			t.Errorf("got %d consumers, %d errors; want exactly 1 and none", won, failed)
		}
	})
}

// testAccountChanges proves the statements of the changes a user makes to
// their own account: an email change's token keeps its new address, the
// address changes only to a free one, a session's auth time is stamped,
// and a user's mail rows are deleted, no one else's.
func testAccountChanges(t *testing.T, open opener) {
	t.Run("change_email token keeps its new address", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		h := sha256.Sum256([]byte("change"))
		a := &sessiond.AccountToken{Hash: h[:], Kind: sessiond.TokenChangeEmail, UserID: u.ID, Email: u.Email,
			NewEmail: "lovelace@example.org", CreatedAt: t0, ExpiresAt: at(time.Hour)}
		mustOK(t, st.Tx(ctx(t), func(tx sessiond.Tx) error { return tx.InsertAccountToken(a) }), "InsertAccountToken")
		var got *sessiond.AccountToken
		mustOK(t, st.Tx(ctx(t), func(tx sessiond.Tx) error {
			var err error
			got, err = tx.ConsumeAccountToken(sessiond.TokenChangeEmail, a.Hash, at(time.Minute))
			return err
		}), "ConsumeAccountToken")
		if got == nil || got.NewEmail != a.NewEmail || got.Email != u.Email || got.Kind != sessiond.TokenChangeEmail {
			t.Errorf("consume: got %+v, want the token with new address %s", got, a.NewEmail)
		}
	})
	t.Run("set email", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		newUser(t, st, "bob@example.com")
		err := st.Tx(ctx(t), func(tx sessiond.Tx) error { return tx.SetEmail(u.ID, "bob@example.com", true) })
		wantCode(t, err, sessiond.CodeEmailTaken)
		mustOK(t, st.Tx(ctx(t), func(tx sessiond.Tx) error { return tx.SetEmail(u.ID, "lovelace@example.org", true) }), "SetEmail")
		got, err := st.UserByEmail(ctx(t), "lovelace@example.org")
		if err != nil || got.ID != u.ID || !got.EmailVerified {
			t.Errorf("UserByEmail after SetEmail: got %+v, %v; want %s, verified", got, err, u.ID)
		}
		_, err = st.UserByEmail(ctx(t), "ada@example.com")
		wantCode(t, err, sessiond.CodeNotFound)
	})
	t.Run("set auth time", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		other := newUser(t, st, "bob@example.com")
		s, _ := newSession(u, t0)
		create(t, st, s, t0)
		var ok, wrong bool
		mustOK(t, st.Tx(ctx(t), func(tx sessiond.Tx) error {
			var err error
			if wrong, err = tx.SetAuthTime(other.ID, s.ID, at(time.Hour)); err != nil {
				return err
			}
			ok, err = tx.SetAuthTime(u.ID, s.ID, at(time.Minute))
			return err
		}), "SetAuthTime")
		if !ok || wrong {
			t.Errorf("SetAuthTime: got %v for the owner, %v for another user; want true, false", ok, wrong)
		}
		got, err := st.LiveSession(ctx(t), u.ID, s.ID, at(2*time.Minute), policy())
		if err != nil || !got.AuthTime.Equal(at(time.Minute)) {
			t.Errorf("session after SetAuthTime: got %+v, %v; want auth time %v", got, err, at(time.Minute))
		}
	})
	t.Run("delete user mail", func(t *testing.T) {
		st := open(t)
		pm, ok := st.Store.(interface {
			PendingMail(ctx context.Context, limit int) ([]sessiond.OutboxMessage, error)
		})
		if !ok {
			t.Skip("store has no PendingMail")
		}
		u := newUser(t, st, "ada@example.com")
		ev := &sessiond.Event{ID: sessiond.NewEventID(t0), Type: sessiond.EventEmailVerificationSent, OccurredAt: t0, UserID: u.ID}
		mail := func(to, eventID string) *sessiond.OutboxMessage {
			return &sessiond.OutboxMessage{ID: sessiond.NewID(), Channel: sessiond.ChannelMail, Target: to, EventID: eventID,
				Payload: []byte(`{}`), CreatedAt: t0, NextAttemptAt: t0}
		}
		toHer, aboutHer, other := mail(u.Email, sessiond.NewID()), mail("lovelace@example.org", ev.ID), mail("bob@example.com", sessiond.NewID())
		hook := &sessiond.OutboxMessage{ID: sessiond.NewID(), Channel: sessiond.ChannelWebhook, Target: sessiond.NewID(), EventID: ev.ID,
			Payload: []byte(`{}`), CreatedAt: t0, NextAttemptAt: t0}
		var n int
		mustOK(t, st.Tx(ctx(t), func(tx sessiond.Tx) error {
			if err := tx.InsertEvent(ev); err != nil {
				return err
			}
			return tx.InsertOutbox(toHer, aboutHer, other, hook)
		}), "insert")
		mustOK(t, st.Tx(ctx(t), func(tx sessiond.Tx) error {
			var err error
			n, err = tx.DeleteUserMail(u.ID, u.Email)
			return err
		}), "DeleteUserMail")
		left, err := pm.PendingMail(ctx(t), 10)
		mustOK(t, err, "PendingMail")
		if n != 2 || len(left) != 1 || left[0].ID != other.ID {
			t.Errorf("DeleteUserMail: deleted %d, left %+v; want 2 deleted and only bob's mail left", n, left)
		}
	})
}
