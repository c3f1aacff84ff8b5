package storetest

import (
	"testing"

	"github.com/sessiond/sessiond"
)

func testUsers(t *testing.T, open func(t *testing.T) sessiond.Store) {
	t.Run("create and get", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "alice@example.com")
		byEmail, err := st.UserByEmail(ctx(t), "alice@example.com")
		if err != nil {
			t.Fatalf("UserByEmail: %v", err)
		}
		byID, err := st.UserByID(ctx(t), u.ID)
		if err != nil {
			t.Fatalf("UserByID: %v", err)
		}
		for _, got := range []*sessiond.User{byEmail, byID} {
			if *got != *u {
				t.Errorf("got %+v, want %+v", *got, *u)
			}
		}
	})
	t.Run("duplicate email", func(t *testing.T) {
		st := open(t)
		newUser(t, st, "bob@example.com")
		err := st.CreateUser(ctx(t), &sessiond.User{ID: sessiond.NewID(), Email: "bob@example.com", PasswordHash: "x", CreatedAt: t0})
		wantCode(t, err, sessiond.CodeEmailTaken)
	})
	t.Run("not found", func(t *testing.T) {
		st := open(t)
		_, err := st.UserByEmail(ctx(t), "nobody@example.com")
		wantCode(t, err, sessiond.CodeNotFound)
		_, err = st.UserByID(ctx(t), sessiond.NewID())
		wantCode(t, err, sessiond.CodeNotFound)
	})
}

// newUser stores a user with the given email, created at t0.
func newUser(t *testing.T, st sessiond.Store, email string) *sessiond.User {
	t.Helper()
	u := &sessiond.User{ID: sessiond.NewID(), Email: email, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", CreatedAt: t0}
	if err := st.CreateUser(ctx(t), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// wantCode fails t unless err carries code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := sessiond.ErrorCode(err); got != code {
		t.Errorf("got code %q (%v), want %q", got, err, code)
	}
}
