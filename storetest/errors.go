package storetest

import (
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// testPermanentErrors: a write that violates a constraint the caller should
// have kept is a bug, reported as CodeInternal by every store alike, never
// as CodeUnavailable (an outage a client should wait out and retry).
func testPermanentErrors(t *testing.T, open opener) {
	for _, tc := range []struct {
		name string
		call func(t *testing.T, st store) error
	}{
		{"RotateKey with a kid already taken", func(t *testing.T, st store) error {
			_, err := st.EnsureCurrentKey(ctx(t), newKey("k1", t0))
			mustOK(t, err, "EnsureCurrentKey")
			mustOK(t, st.RotateKey(ctx(t), newKey("k2", at(time.Hour)), at(time.Hour)), "RotateKey")
			return st.RotateKey(ctx(t), newKey("k1", at(2*time.Hour)), at(2*time.Hour))
		}},
		{"RotateKey with the current kid", func(t *testing.T, st store) error {
			_, err := st.EnsureCurrentKey(ctx(t), newKey("k1", t0))
			mustOK(t, err, "EnsureCurrentKey")
			return st.RotateKey(ctx(t), newKey("k1", at(time.Hour)), at(time.Hour))
		}},
		{"CreateUser with a user id already taken", func(t *testing.T, st store) error {
			u := newUser(t, st, "first@example.com")
			return st.CreateUser(ctx(t), &sessiond.User{ID: u.ID, Email: "second@example.com", PasswordHash: u.PasswordHash, CreatedAt: t0})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.call(t, open(t)), sessiond.CodeInternal)
		})
	}

	t.Run("RotateKey with a taken kid changes nothing", func(t *testing.T) {
		st := open(t)
		k1 := newKey("k1", t0)
		_, err := st.EnsureCurrentKey(ctx(t), k1)
		mustOK(t, err, "EnsureCurrentKey")
		wantCode(t, st.RotateKey(ctx(t), newKey("k1", at(time.Hour)), at(time.Hour)), sessiond.CodeInternal)
		keys, err := st.ListKeys(ctx(t))
		mustOK(t, err, "ListKeys")
		if len(keys) != 1 {
			t.Fatalf("keys: got %d, want 1", len(keys))
		}
		wantKey(t, &keys[0], k1)
	})
}
