package storetest

import (
	"bytes"
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
