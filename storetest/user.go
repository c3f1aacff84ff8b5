package storetest

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

func testUsers(t *testing.T, open opener) {
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
			if got.CreatedAt.Location() != time.UTC {
				t.Errorf("CreatedAt location: got %v, want UTC", got.CreatedAt.Location())
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
func newUser(t *testing.T, st store, email string) *sessiond.User {
	t.Helper()
	u := &sessiond.User{ID: sessiond.NewID(), Email: email, PasswordHash: "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA", CreatedAt: t0}
	if err := st.CreateUser(ctx(t), u); err != nil {
		t.Fatalf("CreateUser(%s): %v", email, err)
	}
	return u
}

// testErrors proves that a failing database call is reported as unavailable,
// never as a domain answer: a client told "not found" or "invalid token"
// would throw its valid token away.
func testErrors(t *testing.T, open opener) {
	st := open(t)
	u := newUser(t, st, "carol@example.com")
	s, c := newSession(u, t0)
	create(t, st, s, t0)

	canceled, cancel := context.WithCancel(ctx(t))
	cancel()
	p := policy()
	calls := []struct {
		name string
		call func(ctx context.Context) error
	}{
		{"Ping", func(ctx context.Context) error { return st.Ping(ctx) }},
		{"UserByID", func(ctx context.Context) error { _, err := st.UserByID(ctx, u.ID); return err }},
		{"UserByEmail", func(ctx context.Context) error { _, err := st.UserByEmail(ctx, u.Email); return err }},
		{"CreateSession", func(ctx context.Context) error {
			s2, _ := newSession(u, at(time.Hour))
			_, err := st.CreateSession(ctx, s2, at(time.Hour), p)
			return err
		}},
		{"RefreshSession", func(ctx context.Context) error {
			_, err := st.RefreshSession(ctx, c.attempt(0), at(time.Hour), p)
			return err
		}},
		{"EndSessionByRefresh", func(ctx context.Context) error { return st.EndSessionByRefresh(ctx, c.attempt(0), p) }},
		{"LiveSession", func(ctx context.Context) error {
			_, err := st.LiveSession(ctx, u.ID, s.ID, at(time.Hour), p)
			return err
		}},
		{"ListSessions", func(ctx context.Context) error { _, err := st.ListSessions(ctx, u.ID, at(time.Hour), p); return err }},
		{"DeleteSession", func(ctx context.Context) error { return st.DeleteSession(ctx, u.ID, s.ID) }},
		{"ListKeys", func(ctx context.Context) error { _, err := st.ListKeys(ctx); return err }},
		{"EraseRetiredKeys", func(ctx context.Context) error { _, err := st.EraseRetiredKeys(ctx, t0); return err }},
		{"ResealSecrets", func(ctx context.Context) error {
			_, err := st.ResealSecrets(ctx, func(sessiond.StoredSecret) ([]byte, error) { return nil, nil })
			return err
		}},
		{"ReserveAttempts", func(ctx context.Context) error {
			_, _, err := st.ReserveAttempts(ctx, []sessiond.AttemptLimit{{Key: "k", Max: 1, Window: time.Minute}}, t0)
			return err
		}},
		{"ReleaseAttempts", func(ctx context.Context) error {
			return st.ReleaseAttempts(ctx, []sessiond.AttemptCount{{Key: "k", Count: 1, WindowEnd: t0}})
		}},
		{"ClearAttempts", func(ctx context.Context) error { return st.ClearAttempts(ctx, "k") }},
		{"DeleteStaleAttempts", func(ctx context.Context) error {
			_, err := st.DeleteStaleAttempts(ctx, t0, 10)
			return err
		}},
	}
	mustOK(t, st.Ping(ctx(t)), "Ping")
	for _, tc := range calls {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, tc.call(canceled), sessiond.CodeUnavailable)
		})
	}
	// Nothing above may have acted: the session is still there, unchanged.
	got, err := st.LiveSession(ctx(t), u.ID, s.ID, at(time.Hour), p)
	mustOK(t, err, "LiveSession")
	wantSession(t, got, s)
}

// testUserRows: the flags an operator sets round-trip through the unit of
// work, users list in id order after a cursor, deleting a user takes their
// sessions, and both stores word their answers alike.
func testUserRows(t *testing.T, open opener) {
	t.Run("flags", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "flags@example.com")
		if u.Disabled || u.EmailVerified {
			t.Fatalf("new user: got disabled %v, email_verified %v, want both false", u.Disabled, u.EmailVerified)
		}
		mustOK(t, st.Tx(ctx(t), func(tx sessiond.Tx) error {
			got, err := tx.LockUser(u.ID)
			if err != nil {
				return err
			}
			got.Disabled, got.EmailVerified = true, true
			if err := tx.SetUserFlags(got); err != nil {
				return err
			}
			return tx.SetPasswordHash(u.ID, "$argon2id$new")
		}), "Tx")
		got, err := st.UserByID(ctx(t), u.ID)
		mustOK(t, err, "UserByID")
		if !got.Disabled || !got.EmailVerified || got.PasswordHash != "$argon2id$new" {
			t.Errorf("got %+v, want disabled, verified, the new hash", got)
		}
	})
	t.Run("list", func(t *testing.T) {
		st := open(t)
		var want []string
		for _, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
			want = append(want, newUser(t, st, email).ID)
		}
		slices.Sort(want)
		first, err := st.Users(ctx(t), "", 2)
		mustOK(t, err, "Users")
		rest, err := st.Users(ctx(t), first[len(first)-1].ID, 2)
		mustOK(t, err, "Users")
		var got []string
		for _, u := range append(first, rest...) {
			got = append(got, u.ID)
		}
		wantIDs(t, "users", got, want)
		none, err := st.Users(ctx(t), "", 0)
		mustOK(t, err, "Users")
		if len(none) != 0 {
			t.Errorf("limit 0: got %d users, want none", len(none))
		}
	})
	t.Run("delete", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "gone@example.com")
		s, _ := newSession(u, t0)
		create(t, st, s, t0)
		mustOK(t, st.Tx(ctx(t), func(tx sessiond.Tx) error { return tx.DeleteUser(u.ID) }), "DeleteUser")
		wantCode(t, st.Tx(ctx(t), func(tx sessiond.Tx) error { return tx.DeleteUser(u.ID) }), sessiond.CodeNotFound)
		got, err := st.Session(ctx(t), s.ID)
		mustOK(t, err, "Session")
		if got != nil {
			t.Errorf("the deleted user's session is still there")
		}
	})
	t.Run("messages agree", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "msg@example.com")
		for _, tc := range []struct {
			name string
			err  error
			want string
		}{
			{"unknown user", func() error { _, err := st.UserByID(ctx(t), "nobody"); return err }(), "user not found"},
			{"unknown session", func() error { _, err := st.LiveSession(ctx(t), u.ID, "none", t0, policy()); return err }(), "session not found"},
			{"taken email", st.CreateUser(ctx(t), &sessiond.User{ID: sessiond.NewID(), Email: u.Email, PasswordHash: "x", CreatedAt: t0}), "the email address is already registered"},
			{"login of a gone user", func() error {
				s, _ := newSession(&sessiond.User{ID: "nobody"}, t0)
				_, err := st.CreateSession(ctx(t), s, t0, policy())
				return err
			}(), "user not found"},
		} {
			var e *sessiond.Error
			if !errors.As(tc.err, &e) || e.Message != tc.want {
				t.Errorf("%s: got %v, want message %q", tc.name, tc.err, tc.want)
			}
		}
	})
}
