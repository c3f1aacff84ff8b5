package storetest

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// refreshFixture is one stored session and the refresh chain it was minted with.
type refreshFixture struct {
	st store
	u  *sessiond.User
	s  *sessiond.Session // as stored at login
	c  *chain
}

func newRefreshFixture(t *testing.T, open opener) *refreshFixture {
	t.Helper()
	st := open(t)
	u := newUser(t, st, "u@example.com")
	s, c := newSession(u, t0)
	create(t, st, s, t0)
	return &refreshFixture{st: st, u: u, s: s, c: c}
}

// refresh presents generation gen at now and fails t on any error.
func (f *refreshFixture) refresh(t *testing.T, gen uint64, now time.Time, p sessiond.Policy) *sessiond.Session {
	t.Helper()
	got, err := f.st.RefreshSession(ctx(t), f.c.attempt(gen), now, p)
	mustOK(t, err, "RefreshSession")
	return got
}

// stored returns the session as the store now holds it (live at at(time.Hour)
// under setupPolicy, so any stored row is found).
func (f *refreshFixture) stored(t *testing.T) (*sessiond.Session, error) {
	t.Helper()
	return f.st.LiveSession(ctx(t), f.u.ID, f.s.ID, t0, setupPolicy())
}

// wantStored fails t unless the stored session equals want.
func (f *refreshFixture) wantStored(t *testing.T, want *sessiond.Session) {
	t.Helper()
	got, err := f.stored(t)
	mustOK(t, err, "LiveSession")
	wantSession(t, got, want)
}

// wantGone fails t unless the session is deleted.
func (f *refreshFixture) wantGone(t *testing.T) {
	t.Helper()
	_, err := f.stored(t)
	wantCode(t, err, sessiond.CodeNotFound)
	if got := list(t, f.st, f.u, t0, setupPolicy()); len(got) != 0 {
		t.Errorf("stored sessions: got %v, want none", got)
	}
}

// rotated is f.s after its generation-gen token was rotated at now.
func (f *refreshFixture) rotated(gen uint64, now time.Time) *sessiond.Session {
	want := *f.s
	want.Generation = gen + 1
	want.RefreshHash = f.c.hash(gen + 1)
	want.PrevHash = f.c.hash(gen)
	want.RotatedAt = now
	want.LastUsedAt = now
	return &want
}

func testRefreshSession(t *testing.T, open opener) {
	p := policy()
	now1 := at(time.Hour)

	t.Run("current rotates and stamps last_used_at", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		want := f.rotated(0, now1)
		wantSession(t, f.refresh(t, 0, now1, p), want)
		f.wantStored(t, want)

		// The new token is the current one from now on.
		now2 := now1.Add(time.Hour)
		want2 := f.rotated(1, now2)
		wantSession(t, f.refresh(t, 1, now2, p), want2)
		f.wantStored(t, want2)
	})

	t.Run("grace returns the current generation and stamps last_used_at", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		f.refresh(t, 0, now1, p)
		for _, d := range []time.Duration{0, time.Second, p.ReuseGrace} { // the window includes its end
			now := now1.Add(d)
			want := f.rotated(0, now1)
			want.LastUsedAt = now
			wantSession(t, f.refresh(t, 0, now, p), want)
			f.wantStored(t, want)
		}
	})

	t.Run("grace never moves last_used_at back", func(t *testing.T) {
		// A twin that read the clock just before the rotation committed.
		f := newRefreshFixture(t, open)
		f.refresh(t, 0, now1, p)
		want := f.rotated(0, now1)
		wantSession(t, f.refresh(t, 0, now1.Add(-time.Millisecond), p), want)
		f.wantStored(t, want)
	})

	t.Run("superseded after grace is reuse and ends the session", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		f.refresh(t, 0, now1, p)
		_, err := f.st.RefreshSession(ctx(t), f.c.attempt(0), now1.Add(p.ReuseGrace+time.Microsecond), p)
		wantCode(t, err, sessiond.CodeRefreshTokenReused)
		f.wantGone(t)
		// The thief's twin, the current token, is dead too.
		_, err = f.st.RefreshSession(ctx(t), f.c.attempt(1), now1.Add(p.ReuseGrace+time.Second), p)
		wantCode(t, err, sessiond.CodeInvalidRefreshToken)
	})

	t.Run("grandparent is reuse and ends the session", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		f.refresh(t, 0, now1, p)
		f.refresh(t, 1, now1.Add(time.Second), p)
		_, err := f.st.RefreshSession(ctx(t), f.c.attempt(0), now1.Add(2*time.Second), p)
		wantCode(t, err, sessiond.CodeRefreshTokenReused)
		f.wantGone(t)
	})

	t.Run("reuse error names the session's user", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			gen  uint64 // presented after two rotations
			now  time.Time
		}{
			{"superseded after grace", 1, now1.Add(time.Second + p.ReuseGrace + time.Microsecond)},
			{"ancestor", 0, now1.Add(2 * time.Second)},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newRefreshFixture(t, open)
				f.refresh(t, 0, now1, p)
				f.refresh(t, 1, now1.Add(time.Second), p)
				_, err := f.st.RefreshSession(ctx(t), f.c.attempt(tc.gen), tc.now, p)
				wantCode(t, err, sessiond.CodeRefreshTokenReused)
				var r *sessiond.RefreshReuse
				if !errors.As(err, &r) {
					t.Fatalf("got %v, want it to wrap a *sessiond.RefreshReuse", err)
				}
				want := sessiond.RefreshReuse{UserID: f.u.ID, SessionID: f.s.ID, Presented: tc.gen, Current: 2}
				if *r != want {
					t.Errorf("got %+v, want %+v", *r, want)
				}
			})
		}
	})

	t.Run("ancestor beyond the policy's walk bound is invalid without walking", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		p := p
		p.AccessTTL = p.SessionTTL // the smallest bound: one access token a session
		bound := p.MaxAncestorSteps()
		now := now1
		for gen := range bound + 1 {
			now = now.Add(time.Second)
			f.refresh(t, gen, now, p)
		}
		before, err := f.stored(t)
		mustOK(t, err, "LiveSession")

		tooOld := f.c.attempt(0) // a real ancestor, bound+1 generations back
		walked := false
		walk := tooOld.IsAncestor
		tooOld.IsAncestor = func(steps uint64, hash []byte) bool { walked = true; return walk(steps, hash) }
		_, err = f.st.RefreshSession(ctx(t), tooOld, now, p)
		wantCode(t, err, sessiond.CodeInvalidRefreshToken)
		if walked {
			t.Errorf("the store walked %d generations, more than the bound %d", bound+1, bound)
		}
		err = f.st.EndSessionByRefresh(ctx(t), tooOld, p)
		wantCode(t, err, sessiond.CodeInvalidRefreshToken)
		f.wantStored(t, before)

		// One generation nearer is within the bound: reuse.
		_, err = f.st.RefreshSession(ctx(t), f.c.attempt(1), now, p)
		wantCode(t, err, sessiond.CodeRefreshTokenReused)
		f.wantGone(t)
	})

	t.Run("ancestor walk holds no lock", func(t *testing.T) {
		// While a reused token's walk runs, another user logs in and the
		// session's owner refreshes with the current token. Both need the
		// writer (SQLite) or the session's row (PostgreSQL): if the walk
		// held either, they could only fail when their context ends, since
		// the walk waits for them in turn. The owner's refresh changes the
		// row under the walk, so the verdict must be made again on the new
		// row, and still end the session.
		now := now1.Add(2 * time.Second)
		for _, tc := range []struct {
			name    string
			present func(f *refreshFixture, a *sessiond.RefreshAttempt) error
			want    string
		}{
			{"refresh", func(f *refreshFixture, a *sessiond.RefreshAttempt) error {
				_, err := f.st.RefreshSession(ctx(t), a, now, p)
				return err
			}, sessiond.CodeRefreshTokenReused},
			{"logout", func(f *refreshFixture, a *sessiond.RefreshAttempt) error {
				return f.st.EndSessionByRefresh(ctx(t), a, p)
			}, ""},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newRefreshFixture(t, open)
				f.refresh(t, 0, now1, p)
				f.refresh(t, 1, now1.Add(time.Second), p) // now at generation 2
				other := newUser(t, f.st, "other@example.com")

				stolen := f.c.attempt(0)
				walk := stolen.IsAncestor
				var walks []uint64
				var loginErr, ownerErr error
				stolen.IsAncestor = func(steps uint64, hash []byte) bool {
					walks = append(walks, steps)
					if len(walks) == 1 {
						// Shorter than the stores' own 5s query timeout, which
						// would otherwise break a lock held by the walker.
						hctx, cancel := context.WithTimeout(ctx(t), 3*time.Second)
						defer cancel()
						s2, _ := newSession(other, now)
						_, loginErr = f.st.CreateSession(hctx, s2, now, p)
						_, ownerErr = f.st.RefreshSession(hctx, f.c.attempt(2), now, p)
					}
					return walk(steps, hash)
				}
				wantCode(t, tc.present(f, stolen), tc.want)
				if loginErr != nil {
					t.Errorf("another user's login during the walk: got %v, want success", loginErr)
				}
				if ownerErr != nil {
					t.Errorf("the owner's refresh during the walk: got %v, want success", ownerErr)
				}
				// The first walk was from generation 2, the second from the
				// owner's generation 3.
				if want := []uint64{2, 3}; !slices.Equal(walks, want) {
					t.Errorf("walks: got %v, want %v", walks, want)
				}
				f.wantGone(t)
				if got := list(t, f.st, other, now, p); len(got) != 1 {
					t.Errorf("other user's sessions: got %d, want 1", len(got))
				}
			})
		}
	})

	t.Run("forged tokens are invalid and change nothing", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		f.refresh(t, 0, now1, p)
		f.refresh(t, 1, now1.Add(time.Second), p) // now at generation 2
		before, err := f.stored(t)
		mustOK(t, err, "LiveSession")
		for _, tc := range []struct {
			name string
			a    *sessiond.RefreshAttempt
		}{
			{"forged current", attemptOf(f.s.ID, 2, randomSecret())},
			{"forged previous", attemptOf(f.s.ID, 1, randomSecret())},
			{"forged ancestor", attemptOf(f.s.ID, 0, randomSecret())},
			{"future generation", attemptOf(f.s.ID, 3, f.c.secret(3))},
			{"real secret, wrong generation", attemptOf(f.s.ID, 1, f.c.secret(2))},
			{"unknown session", attemptOf(sessiond.NewID(), 2, f.c.secret(2))},
			{"no hash", &sessiond.RefreshAttempt{SessionID: f.s.ID, Generation: 2}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := f.st.RefreshSession(ctx(t), tc.a, now1.Add(2*time.Second), p)
				wantCode(t, err, sessiond.CodeInvalidRefreshToken)
				f.wantStored(t, before)
			})
		}
	})

	t.Run("expired", func(t *testing.T) {
		for _, tc := range []struct {
			name    string
			rotate  bool
			lastUse time.Duration // a refresh before the failing one; 0: none
			now     time.Duration
		}{
			{"idle, exactly at the cutoff", true, 0, p.IdleTTL},
			{"idle, after a refresh", true, day, day + p.IdleTTL + time.Second},
			// With an idle TTL longer than the session's life, only the
			// absolute expiry can end it.
			{"absolute, exactly at expiry", true, p.SessionTTL - time.Hour, p.SessionTTL},
			{"absolute, rotation off", false, p.SessionTTL - time.Hour, p.SessionTTL + time.Hour},
		} {
			t.Run(tc.name, func(t *testing.T) {
				f := newRefreshFixture(t, open)
				p := p
				p.Rotate = tc.rotate
				if tc.now >= p.SessionTTL {
					p.IdleTTL = 2 * p.SessionTTL
				}
				if tc.lastUse != 0 {
					f.refresh(t, 0, at(tc.lastUse), p)
				}
				gen := uint64(0)
				if tc.rotate && tc.lastUse != 0 {
					gen = 1
				}
				_, err := f.st.RefreshSession(ctx(t), f.c.attempt(gen), at(tc.now), p)
				wantCode(t, err, sessiond.CodeSessionExpired)
				f.wantGone(t)
			})
		}
	})

	t.Run("rotation off keeps the token and stamps last_used_at", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		p := p
		p.Rotate = false
		for _, now := range []time.Time{now1, now1.Add(time.Minute)} {
			want := *f.s
			want.LastUsedAt = now
			wantSession(t, f.refresh(t, 0, now, p), &want)
			f.wantStored(t, &want)
		}
	})

	t.Run("concurrent refreshes of one token converge", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		const tabs = 10
		var wg sync.WaitGroup
		got := make([]*sessiond.Session, tabs)
		errs := make([]error, tabs)
		for i := range tabs {
			wg.Go(func() {
				now := now1.Add(time.Duration(i) * time.Millisecond)
				got[i], errs[i] = f.st.RefreshSession(ctx(t), f.c.attempt(0), now, p)
			})
		}
		wg.Wait()
		for i := range tabs {
			if errs[i] != nil {
				t.Errorf("refresh %d: got %v, want success", i, errs[i])
				continue
			}
			if got[i].Generation != 1 || !equalBytes(got[i].RefreshHash, f.c.hash(1)) {
				t.Errorf("refresh %d: got generation %d hash %x, want generation 1 hash %x",
					i, got[i].Generation, got[i].RefreshHash, f.c.hash(1))
			}
		}
		all, err := f.st.ListSessions(ctx(t), f.u.ID, now1, p)
		mustOK(t, err, "ListSessions")
		if len(all) != 1 {
			t.Fatalf("stored sessions: got %d, want 1", len(all))
		}
		if all[0].Generation != 1 || !equalBytes(all[0].PrevHash, f.c.hash(0)) {
			t.Errorf("stored: got generation %d prev %x, want generation 1 prev %x", all[0].Generation, all[0].PrevHash, f.c.hash(0))
		}
	})
}

func testEndSessionByRefresh(t *testing.T, open opener) {
	p := policy()
	now1 := at(time.Hour)
	for _, tc := range []struct {
		name    string
		present func(f *refreshFixture) *sessiond.RefreshAttempt
		want    string // "" ends the session
	}{
		{"current token", func(f *refreshFixture) *sessiond.RefreshAttempt { return f.c.attempt(2) }, ""},
		{"superseded token", func(f *refreshFixture) *sessiond.RefreshAttempt { return f.c.attempt(1) }, ""},
		{"ancestor token", func(f *refreshFixture) *sessiond.RefreshAttempt { return f.c.attempt(0) }, ""},
		{"forged hash", func(f *refreshFixture) *sessiond.RefreshAttempt { return attemptOf(f.s.ID, 2, randomSecret()) }, sessiond.CodeInvalidRefreshToken},
		{"forged ancestor", func(f *refreshFixture) *sessiond.RefreshAttempt { return attemptOf(f.s.ID, 0, randomSecret()) }, sessiond.CodeInvalidRefreshToken},
		{"unknown session", func(f *refreshFixture) *sessiond.RefreshAttempt {
			return attemptOf(sessiond.NewID(), 2, f.c.secret(2))
		}, sessiond.CodeInvalidRefreshToken},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newRefreshFixture(t, open)
			f.refresh(t, 0, now1, p)
			f.refresh(t, 1, now1.Add(time.Minute), p) // generation 2
			before, err := f.stored(t)
			mustOK(t, err, "LiveSession")
			err = f.st.EndSessionByRefresh(ctx(t), tc.present(f), p)
			wantCode(t, err, tc.want)
			if tc.want == "" {
				f.wantGone(t)
			} else {
				f.wantStored(t, before)
			}
		})
	}
}

func equalBytes(a, b []byte) bool { return string(a) == string(b) }
