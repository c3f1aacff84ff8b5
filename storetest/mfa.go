package storetest

import (
	"crypto/sha256"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// testMFA proves the second-factor statements: an enrolment never replaces
// a confirmed factor; a step is accepted once, also concurrently; a
// recovery code is used once; an MFA challenge counts its attempts up to
// the maximum and is swept when expired; resealing rewrites every
// factor's secret, pending ones too, or none.
func testMFA(t *testing.T, open opener) {
	tx := func(t *testing.T, st store, fn sessiond.TxFunc) {
		t.Helper()
		if err := st.Tx(ctx(t), fn); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("enrol and confirm", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		tx(t, st, func(tx sessiond.Tx) error {
			for _, secret := range []string{"first", "second"} {
				ok, err := tx.PutPendingTOTP(&sessiond.TOTPFactor{UserID: u.ID, Secret: []byte(secret), CreatedAt: t0})
				if err != nil || !ok {
					t.Fatalf("PutPendingTOTP(%s): got %v, %v; want stored", secret, ok, err)
				}
			}
			if ok, err := tx.ConfirmTOTP(u.ID, []byte("first"), 10, at(time.Minute)); err != nil || ok {
				t.Fatalf("ConfirmTOTP with the replaced secret: got %v, %v; want false", ok, err)
			}
			if ok, err := tx.ConfirmTOTP(u.ID, []byte("second"), 10, at(time.Minute)); err != nil || !ok {
				t.Fatalf("ConfirmTOTP: got %v, %v; want true", ok, err)
			}
			if ok, err := tx.PutPendingTOTP(&sessiond.TOTPFactor{UserID: u.ID, Secret: []byte("third"), CreatedAt: t0}); err != nil || ok {
				t.Fatalf("PutPendingTOTP over a confirmed factor: got %v, %v; want false", ok, err)
			}
			f, err := tx.TOTPFactor(u.ID)
			if err != nil || !f.Active() || string(f.Secret) != "second" || f.LastStep != 10 || !f.ConfirmedAt.Equal(at(time.Minute)) {
				t.Fatalf("TOTPFactor: got %+v, %v", f, err)
			}
			for _, c := range []struct {
				step int64
				want bool
			}{{10, false}, {9, false}, {11, true}, {11, false}, {13, true}} {
				if ok, err := tx.UseTOTPStep(u.ID, c.step); err != nil || ok != c.want {
					t.Fatalf("UseTOTPStep(%d): got %v, %v; want %v", c.step, ok, err, c.want)
				}
			}
			if ok, err := tx.DeleteTOTP(u.ID); err != nil || !ok {
				t.Fatalf("DeleteTOTP: got %v, %v", ok, err)
			}
			f, err = tx.TOTPFactor(u.ID)
			if err != nil || f != nil {
				t.Fatalf("after DeleteTOTP: got %+v, %v; want none", f, err)
			}
			return nil
		})
	})
	t.Run("a step once under concurrency", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		tx(t, st, func(tx sessiond.Tx) error {
			if _, err := tx.PutPendingTOTP(&sessiond.TOTPFactor{UserID: u.ID, Secret: []byte("s"), CreatedAt: t0}); err != nil {
				return err
			}
			_, err := tx.ConfirmTOTP(u.ID, []byte("s"), 1, t0)
			return err
		})
		const n = 8
		var wg sync.WaitGroup
		wins := make([]bool, n)
		for i := range n {
			wg.Go(func() {
				err := st.Tx(ctx(t), func(tx sessiond.Tx) error {
					var err error
					wins[i], err = tx.UseTOTPStep(u.ID, 5)
					return err
				})
				if err != nil {
					t.Error(err)
				}
			})
		}
		wg.Wait()
		if got := countTrue(wins); got != 1 {
			t.Fatalf("concurrent uses of one step: %d succeeded, want 1", got)
		}
	})
	t.Run("recovery codes", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		h := func(s string) []byte { b := sha256.Sum256([]byte(s)); return b[:] }
		tx(t, st, func(tx sessiond.Tx) error {
			if err := tx.ReplaceRecoveryCodes(u.ID, [][]byte{h("a"), h("b")}, t0); err != nil {
				return err
			}
			if ok, err := tx.UseRecoveryCode(u.ID, h("a"), at(time.Minute)); err != nil || !ok {
				t.Fatalf("UseRecoveryCode: got %v, %v; want true", ok, err)
			}
			if ok, err := tx.UseRecoveryCode(u.ID, h("a"), at(time.Minute)); err != nil || ok {
				t.Fatalf("UseRecoveryCode again: got %v, %v; want false", ok, err)
			}
			left, err := tx.RecoveryCodes(u.ID)
			if err != nil || len(left) != 1 || string(left[0]) != string(h("b")) {
				t.Fatalf("RecoveryCodes: got %d, %v; want b alone", len(left), err)
			}
			if err := tx.ReplaceRecoveryCodes(u.ID, [][]byte{h("c")}, t0); err != nil {
				return err
			}
			if ok, err := tx.UseRecoveryCode(u.ID, h("b"), at(time.Minute)); err != nil || ok {
				t.Fatalf("a code of the old set: got %v, %v; want false", ok, err)
			}
			return nil
		})
	})
	t.Run("ResealTOTPSecrets sees pending and confirmed factors and stores what it returns", func(t *testing.T) {
		st := open(t)
		as, ok := st.Store.(sessiond.AdminStore)
		if !ok {
			t.Skip("store has no ResealTOTPSecrets")
		}
		ada, bob := newUser(t, st, "ada@example.com"), newUser(t, st, "bob@example.com")
		tx(t, st, func(tx sessiond.Tx) error {
			for _, u := range []*sessiond.User{ada, bob} {
				if _, err := tx.PutPendingTOTP(&sessiond.TOTPFactor{UserID: u.ID, Secret: []byte("s-" + u.Email), CreatedAt: t0}); err != nil {
					return err
				}
			}
			_, err := tx.ConfirmTOTP(ada.ID, []byte("s-"+ada.Email), 7, t0)
			return err
		})
		secrets := func() map[string]string {
			got := map[string]string{}
			tx(t, st, func(tx sessiond.Tx) error {
				for _, u := range []*sessiond.User{ada, bob} {
					f, err := tx.TOTPFactor(u.ID)
					if err != nil {
						return err
					}
					got[u.ID] = string(f.Secret)
				}
				return nil
			})
			return got
		}
		boom := errors.New("boom")
		calls := 0
		_, err := as.ResealTOTPSecrets(ctx(t), func(v sessiond.StoredSecret) ([]byte, error) {
			if calls++; calls == 2 {
				return nil, boom
			}
			return []byte("replaced"), nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("a failing reseal: got %v, want its error", err)
		}
		if got := secrets(); got[ada.ID] != "s-ada@example.com" || got[bob.ID] != "s-bob@example.com" {
			t.Fatalf("after a failing reseal: got %v, want both unchanged", got)
		}

		seen := map[string]string{}
		n, err := as.ResealTOTPSecrets(ctx(t), func(v sessiond.StoredSecret) ([]byte, error) {
			if v.Kind != sessiond.SecretKindTOTP {
				t.Errorf("kind: got %q, want %q", v.Kind, sessiond.SecretKindTOTP)
			}
			seen[v.Name] = string(v.Value)
			if v.Name == bob.ID {
				return nil, nil
			}
			return append([]byte("new:"), v.Value...), nil
		})
		mustOK(t, err, "ResealTOTPSecrets")
		if n != 1 || len(seen) != 2 || seen[ada.ID] != "s-ada@example.com" || seen[bob.ID] != "s-bob@example.com" {
			t.Fatalf("reseal: got %d replaced, saw %v; want 1, both factors by user id", n, seen)
		}
		if got := secrets(); got[ada.ID] != "new:s-ada@example.com" || got[bob.ID] != "s-bob@example.com" {
			t.Errorf("after reseal: got %v, want ada's replaced, bob's kept", got)
		}
		// The factor is otherwise untouched: still confirmed, same step.
		tx(t, st, func(tx sessiond.Tx) error {
			f, err := tx.TOTPFactor(ada.ID)
			if err != nil || !f.Active() || f.LastStep != 7 {
				t.Errorf("ada's factor after reseal: got %+v, %v; want confirmed at step 7", f, err)
			}
			return err
		})
	})
	t.Run("challenge attempts and sweep", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "ada@example.com")
		hash := sha256.Sum256([]byte("token"))
		c := &sessiond.MFAChallenge{Hash: hash[:], UserID: u.ID, CreatedAt: t0, ExpiresAt: at(5 * time.Minute)}
		tx(t, st, func(tx sessiond.Tx) error {
			if err := tx.InsertMFAChallenge(c); err != nil {
				return err
			}
			for i := 1; i <= 3; i++ {
				got, err := tx.SpendMFAAttempt(c.Hash, at(time.Minute), 3)
				if err != nil || got == nil || got.Attempts != i || got.UserID != u.ID {
					t.Fatalf("attempt %d: got %+v, %v", i, got, err)
				}
			}
			if got, err := tx.SpendMFAAttempt(c.Hash, at(time.Minute), 3); err != nil || got != nil {
				t.Fatalf("attempt beyond the maximum: got %+v, %v; want none", got, err)
			}
			if got, err := tx.MFAChallenge(c.Hash, at(5*time.Minute)); err != nil || got != nil {
				t.Fatalf("at expiry: got %+v, %v; want none", got, err)
			}
			return nil
		})
		as, ok := st.Store.(sessiond.AdminStore)
		if !ok {
			t.Skip("store has no DeleteExpiredMFAChallenges")
		}
		if n, err := as.DeleteExpiredMFAChallenges(ctx(t), at(4*time.Minute), 10); err != nil || n != 0 {
			t.Fatalf("sweep before expiry: got %d, %v; want 0", n, err)
		}
		if n, err := as.DeleteExpiredMFAChallenges(ctx(t), at(5*time.Minute), 10); err != nil || n != 1 {
			t.Fatalf("sweep at expiry: got %d, %v; want 1", n, err)
		}
	})
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}
