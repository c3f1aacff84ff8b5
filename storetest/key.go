package storetest

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// newKey returns a signing key named kid created at created; the key bytes
// are random stand-ins, since stores only keep them.
func newKey(kid string, created time.Time) *sessiond.SigningKey {
	return &sessiond.SigningKey{ID: kid, Algorithm: "EdDSA", PrivateKey: randomSecret(), PublicKey: randomSecret(), CreatedAt: created}
}

// wantKey fails t unless got equals want.
func wantKey(t *testing.T, got, want *sessiond.SigningKey) {
	t.Helper()
	if got.ID != want.ID || got.Algorithm != want.Algorithm ||
		!bytes.Equal(got.PrivateKey, want.PrivateKey) || !bytes.Equal(got.PublicKey, want.PublicKey) ||
		!got.CreatedAt.Equal(want.CreatedAt) || got.CreatedAt.Location() != time.UTC ||
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
		k3 := newKey("k3", at(time.Hour))
		mustOK(t, st.RotateKey(ctx(t), k3, at(2*time.Hour)), "RotateKey")

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
