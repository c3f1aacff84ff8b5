package storetest

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// newKey returns a signing key named kid created at created; the key bytes
// are random stand-ins, since stores only keep them.
func newKey(kid string, created time.Time) *sessiond.SigningKey {
	return &sessiond.SigningKey{ID: kid, Algorithm: "EdDSA", PrivateKey: randomSecret(), PublicKey: randomSecret(), CreatedAt: created, ActivatesAt: created}
}

// wantKey fails t unless got equals want.
func wantKey(t *testing.T, got, want *sessiond.SigningKey) {
	t.Helper()
	if got.ID != want.ID || got.Algorithm != want.Algorithm ||
		!bytes.Equal(got.PrivateKey, want.PrivateKey) || !bytes.Equal(got.PublicKey, want.PublicKey) ||
		!got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC ||
		!got.ActivatesAt.Equal(want.ActivatesAt) || got.ActivatesAt.Location() != time.UTC ||
		!got.RetiredAt.Equal(want.RetiredAt) || (!got.RetiredAt.IsZero() && got.RetiredAt.Location() != time.UTC) {
		t.Errorf("key: got %+v, want %+v", *got, *want)
	}
}

func testKeys(t *testing.T, open opener) {
	t.Run("EnsureCurrentKey keeps the first key", func(t *testing.T) {
		st := open(t)
		k1 := newKey("k1", t0)
		got, err := st.EnsureCurrentKey(ctx(t), k1)
		mustOK(t, err, "EnsureCurrentKey")
		wantKey(t, got, k1)
		got, err = st.EnsureCurrentKey(ctx(t), newKey("k2", at(time.Hour)))
		mustOK(t, err, "EnsureCurrentKey")
		wantKey(t, got, k1)
		keys, err := st.ListKeys(ctx(t))
		mustOK(t, err, "ListKeys")
		if len(keys) != 1 {
			t.Errorf("keys: got %d, want 1", len(keys))
		}
	})

	t.Run("EnsureCurrentKey concurrent callers get one key", func(t *testing.T) {
		st := open(t)
		const callers = 10
		var wg sync.WaitGroup
		got := make([]*sessiond.SigningKey, callers)
		errs := make([]error, callers)
		for i := range callers {
			wg.Go(func() {
				got[i], errs[i] = st.EnsureCurrentKey(ctx(t), newKey(fmt.Sprintf("k%02d", i), t0))
			})
		}
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if got[i].ID != got[0].ID {
				t.Errorf("caller %d: got kid %s, want %s", i, got[i].ID, got[0].ID)
			}
		}
		keys, err := st.ListKeys(ctx(t))
		mustOK(t, err, "ListKeys")
		if len(keys) != 1 || keys[0].ID != got[0].ID || !keys[0].Current() {
			t.Errorf("keys: got %v, want only the current %s", keys, got[0].ID)
		}
	})

	t.Run("RotateKey retires the current key; ListKeys is newest first", func(t *testing.T) {
		st := open(t)
		k1 := newKey("k1", t0)
		_, err := st.EnsureCurrentKey(ctx(t), k1)
		mustOK(t, err, "EnsureCurrentKey")

		k2 := newKey("k2", at(time.Hour))
		mustOK(t, st.RotateKey(ctx(t), k2, k2.CreatedAt), "RotateKey")
		// Same creation instant as k2: the larger kid counts as newer.
		// No activation given: it signs from the rotation on.
		k3 := newKey("k3", at(time.Hour))
		k3.ActivatesAt = time.Time{}
		mustOK(t, st.RotateKey(ctx(t), k3, at(2*time.Hour)), "RotateKey")
		k3.ActivatesAt = at(2 * time.Hour)

		cur, err := st.EnsureCurrentKey(ctx(t), newKey("k4", at(3*time.Hour)))
		mustOK(t, err, "EnsureCurrentKey")
		wantKey(t, cur, k3)

		k1.RetiredAt = at(time.Hour)
		k2.RetiredAt = at(2 * time.Hour)
		keys, err := st.ListKeys(ctx(t))
		mustOK(t, err, "ListKeys")
		want := []*sessiond.SigningKey{k3, k2, k1}
		if len(keys) != len(want) {
			t.Fatalf("keys: got %d, want %d", len(keys), len(want))
		}
		for i := range want {
			wantKey(t, &keys[i], want[i])
		}
	})
}

// wantKeys fails t unless the store's keys, newest first, are want.
func wantKeys(t *testing.T, st store, want ...*sessiond.SigningKey) {
	t.Helper()
	keys, err := st.ListKeys(ctx(t))
	mustOK(t, err, "ListKeys")
	if len(keys) != len(want) {
		t.Fatalf("keys: got %d, want %d", len(keys), len(want))
	}
	for i := range want {
		wantKey(t, &keys[i], want[i])
	}
}

func testKeySchedule(t *testing.T, open opener) {
	t.Run("RotateKey publishes a key before it signs and retires the old one at its activation", func(t *testing.T) {
		st := open(t)
		k1 := newKey("k1", t0)
		_, err := st.EnsureCurrentKey(ctx(t), k1)
		mustOK(t, err, "EnsureCurrentKey")
		k2 := newKey("k2", at(time.Hour))
		k2.ActivatesAt = at(time.Hour + sessiond.KeyActivationDelay)
		mustOK(t, st.RotateKey(ctx(t), k2, at(time.Hour)), "RotateKey")
		k1.RetiredAt = k2.ActivatesAt
		wantKeys(t, st, k2, k1)

		// An emergency rotation that signs at once overtakes the pending
		// k2, which then never signs, and retires k1 early.
		k3 := newKey("k3", at(time.Hour+time.Minute))
		mustOK(t, st.RotateKey(ctx(t), k3, k3.CreatedAt), "RotateKey")
		k1.RetiredAt, k2.RetiredAt = k3.ActivatesAt, k3.ActivatesAt
		wantKeys(t, st, k3, k2, k1)
		sched := sessiond.KeySchedule{AccessTTL: 15 * time.Minute}
		keys, err := st.ListKeys(ctx(t))
		mustOK(t, err, "ListKeys")
		for _, now := range []time.Time{k3.ActivatesAt, at(time.Hour + sessiond.KeyActivationDelay)} {
			if got := sched.Signer(keys, now); got == nil || got.ID != "k3" {
				t.Errorf("signer at %v: got %v, want k3", now, got)
			}
		}
	})

	t.Run("EraseRetiredKeys erases the private part of keys retired by the cutoff only", func(t *testing.T) {
		st := open(t)
		k1 := newKey("k1", t0)
		_, err := st.EnsureCurrentKey(ctx(t), k1)
		mustOK(t, err, "EnsureCurrentKey")
		k2 := newKey("k2", at(time.Hour))
		mustOK(t, st.RotateKey(ctx(t), k2, k2.CreatedAt), "RotateKey")
		k3 := newKey("k3", at(2*time.Hour))
		mustOK(t, st.RotateKey(ctx(t), k3, k3.CreatedAt), "RotateKey")
		k1.RetiredAt, k2.RetiredAt = at(time.Hour), at(2*time.Hour)

		n, err := st.EraseRetiredKeys(ctx(t), at(time.Hour))
		mustOK(t, err, "EraseRetiredKeys")
		if n != 1 {
			t.Errorf("erased: got %d, want 1", n)
		}
		k1.PrivateKey = []byte{}
		wantKeys(t, st, k3, k2, k1)
		if n, err := st.EraseRetiredKeys(ctx(t), at(time.Hour)); err != nil || n != 0 {
			t.Errorf("erase again: got %d, %v, want 0, nil", n, err)
		}
		// The current key is never erased, whatever the cutoff.
		n, err = st.EraseRetiredKeys(ctx(t), at(1000*time.Hour))
		mustOK(t, err, "EraseRetiredKeys")
		if n != 1 {
			t.Errorf("erased: got %d, want 1 (k2)", n)
		}
		k2.PrivateKey = []byte{}
		wantKeys(t, st, k3, k2, k1)
	})
}

func testSecrets(t *testing.T, open opener) {
	t.Run("EnsureSecret keeps the first value", func(t *testing.T) {
		st := open(t)
		v1 := randomSecret()
		for _, v := range [][]byte{v1, randomSecret()} {
			got, err := st.EnsureSecret(ctx(t), "refresh", v)
			mustOK(t, err, "EnsureSecret")
			if !bytes.Equal(got, v1) {
				t.Errorf("got %x, want %x", got, v1)
			}
		}
		// Names are independent.
		v2 := randomSecret()
		got, err := st.EnsureSecret(ctx(t), "other", v2)
		mustOK(t, err, "EnsureSecret")
		if !bytes.Equal(got, v2) {
			t.Errorf("other: got %x, want %x", got, v2)
		}
	})

	t.Run("EnsureSecret concurrent callers get one value", func(t *testing.T) {
		st := open(t)
		const callers = 10
		var wg sync.WaitGroup
		got := make([][]byte, callers)
		errs := make([]error, callers)
		for i := range callers {
			wg.Go(func() { got[i], errs[i] = st.EnsureSecret(ctx(t), "refresh", randomSecret()) })
		}
		wg.Wait()
		for i := range callers {
			if errs[i] != nil {
				t.Fatalf("caller %d: %v", i, errs[i])
			}
			if !bytes.Equal(got[i], got[0]) {
				t.Errorf("caller %d: got %x, want %x", i, got[i], got[0])
			}
		}
	})
}

func testReseal(t *testing.T, open opener) {
	// setup stores secrets a and b and keys k1 (erased) and k2 (current).
	setup := func(t *testing.T) (store, map[string][]byte) {
		st := open(t)
		vals := map[string][]byte{}
		for _, name := range []string{"a", "b"} {
			v, err := st.EnsureSecret(ctx(t), name, randomSecret())
			mustOK(t, err, "EnsureSecret")
			vals["secret/"+name] = v
		}
		k1 := newKey("k1", t0)
		_, err := st.EnsureCurrentKey(ctx(t), k1)
		mustOK(t, err, "EnsureCurrentKey")
		k2 := newKey("k2", at(time.Hour))
		mustOK(t, st.RotateKey(ctx(t), k2, k2.CreatedAt), "RotateKey")
		_, err = st.EraseRetiredKeys(ctx(t), at(time.Hour))
		mustOK(t, err, "EraseRetiredKeys")
		vals["signing_key/k2"] = k2.PrivateKey
		return st, vals
	}
	// stored reads every stored secret back through ResealSecrets.
	stored := func(t *testing.T, st store) map[string][]byte {
		t.Helper()
		got := map[string][]byte{}
		_, err := st.ResealSecrets(ctx(t), func(s sessiond.StoredSecret) ([]byte, error) {
			got[s.Kind+"/"+s.Name] = bytes.Clone(s.Value)
			return nil, nil
		})
		mustOK(t, err, "ResealSecrets")
		return got
	}

	t.Run("ResealSecrets sees every secret and unerased key and stores what it returns", func(t *testing.T) {
		st, vals := setup(t)
		got := stored(t, st)
		if len(got) != len(vals) {
			t.Fatalf("secrets handed over: got %d %v, want %d (the erased key left out)", len(got), got, len(vals))
		}
		for k, v := range vals {
			if !bytes.Equal(got[k], v) {
				t.Errorf("%s: got %x, want %x", k, got[k], v)
			}
		}
		n, err := st.ResealSecrets(ctx(t), func(s sessiond.StoredSecret) ([]byte, error) {
			if s.Name == "b" {
				return nil, nil
			}
			return append([]byte("new:"), s.Value...), nil
		})
		mustOK(t, err, "ResealSecrets")
		if n != 2 {
			t.Errorf("replaced: got %d, want 2", n)
		}
		got = stored(t, st)
		for k, v := range vals {
			want := append([]byte("new:"), v...)
			if k == "secret/b" {
				want = v
			}
			if !bytes.Equal(got[k], want) {
				t.Errorf("%s after reseal: got %x, want %x", k, got[k], want)
			}
		}
		// EnsureSecret returns the resealed value.
		v, err := st.EnsureSecret(ctx(t), "a", randomSecret())
		mustOK(t, err, "EnsureSecret")
		if !bytes.Equal(v, got["secret/a"]) {
			t.Errorf("EnsureSecret after reseal: got %x, want %x", v, got["secret/a"])
		}
	})

	t.Run("ResealSecrets changes nothing when reseal fails", func(t *testing.T) {
		st, vals := setup(t)
		boom := errors.New("boom")
		calls := 0
		_, err := st.ResealSecrets(ctx(t), func(s sessiond.StoredSecret) ([]byte, error) {
			calls++
			if calls == len(vals) {
				return nil, boom
			}
			return []byte("replaced"), nil
		})
		if !errors.Is(err, boom) {
			t.Fatalf("got %v, want the reseal error", err)
		}
		got := stored(t, st)
		for k, v := range vals {
			if !bytes.Equal(got[k], v) {
				t.Errorf("%s: got %x, want it unchanged %x", k, got[k], v)
			}
		}
	})
}
