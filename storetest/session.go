package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// setupPolicy lets tests insert sessions without CreateSession deleting or
// evicting any of them: a huge cap and idle TTL. Absolute expiry still comes
// from each session's own ExpiresAt.
func setupPolicy() sessiond.Policy {
	p := policy()
	p.MaxSessions = 1000
	p.IdleTTL = 100 * 365 * day
	return p
}

// newSession builds (does not store) a session of u logged in at created,
// with the refresh chain whose generation 0 it holds.
func newSession(u *sessiond.User, created time.Time) (*sessiond.Session, *chain) {
	id := sessiond.NewID()
	c := newChain(id)
	return &sessiond.Session{
		ID:          id,
		UserID:      u.ID,
		RefreshHash: c.hash(0),
		CreatedAt:   created,
		LastUsedAt:  created,
		ExpiresAt:   created.Add(policy().SessionTTL),
		UserAgent:   "storetest/1.0",
		IP:          "192.0.2.1",
	}, c
}

// create stores s with setupPolicy at now and expects nothing evicted.
func create(t *testing.T, st store, s *sessiond.Session, now time.Time) {
	t.Helper()
	evicted, err := st.CreateSession(ctx(t), s, now, setupPolicy())
	mustOK(t, err, "CreateSession")
	if len(evicted) != 0 {
		t.Fatalf("setup CreateSession evicted %v, want none", evicted)
	}
}

// list returns the ids of u's live sessions at now, most recently used first.
func list(t *testing.T, st store, u *sessiond.User, now time.Time, p sessiond.Policy) []string {
	t.Helper()
	got, err := st.ListSessions(ctx(t), u.ID, now, p)
	mustOK(t, err, "ListSessions")
	return ids(got)
}

func testCreateSession(t *testing.T, open opener) {
	t.Run("under the cap nothing is evicted", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "u@example.com")
		p := policy()
		var want []string
		for i := range p.MaxSessions {
			now := at(time.Duration(i) * time.Minute)
			s, _ := newSession(u, now)
			evicted, err := st.CreateSession(ctx(t), s, now, p)
			mustOK(t, err, "CreateSession")
			if len(evicted) != 0 {
				t.Errorf("login %d: got evicted %v, want none", i, evicted)
			}
			want = append([]string{s.ID}, want...)
		}
		wantIDs(t, "live sessions", list(t, st, u, at(time.Hour), p), want)
	})

	t.Run("eviction", testEviction(open))

	t.Run("timestamps round-trip to the microsecond in UTC", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "u@example.com")
		s, _ := newSession(u, at(1234567*time.Microsecond))
		s.LastUsedAt = at(2345678 * time.Microsecond)
		s.ExpiresAt = at(30*day + 1*time.Microsecond)
		s.UserAgent, s.IP = "Mozilla/5.0 (X11; Linux x86_64) ünïcode", "2001:db8::1"
		create(t, st, s, s.CreatedAt)
		got, err := st.LiveSession(ctx(t), u.ID, s.ID, at(time.Hour), policy())
		mustOK(t, err, "LiveSession")
		wantSession(t, got, s)
		all, err := st.ListSessions(ctx(t), u.ID, at(time.Hour), policy())
		mustOK(t, err, "ListSessions")
		if len(all) != 1 {
			t.Fatalf("got %d sessions, want 1", len(all))
		}
		wantSession(t, &all[0], s)
	})

	t.Run("user gone is not found", func(t *testing.T) {
		st := open(t)
		u := &sessiond.User{ID: sessiond.NewID()}
		s, _ := newSession(u, t0)
		_, err := st.CreateSession(ctx(t), s, t0, policy())
		wantCode(t, err, sessiond.CodeNotFound)
	})

	t.Run("concurrent logins of one user keep the cap", func(t *testing.T) {
		st := open(t)
		u := newUser(t, st, "u@example.com")
		p := policy()
		const logins = 50
		var wg sync.WaitGroup
		errs := make([]error, logins)
		for i := range logins {
			wg.Go(func() {
				now := at(time.Duration(i) * time.Millisecond)
				s, _ := newSession(u, now)
				_, errs[i] = st.CreateSession(ctx(t), s, now, p)
			})
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("login %d: got %v, want success", i, err)
			}
		}
		if got := list(t, st, u, at(time.Second), p); len(got) != p.MaxSessions {
			t.Errorf("live sessions: got %d, want %d", len(got), p.MaxSessions)
		}
		// Not even expired rows may pile up: the cap holds for stored rows.
		if n, err := st.DeleteUserSessions(ctx(t), u.ID); err != nil || n != p.MaxSessions {
			t.Errorf("stored sessions: got %d (err %v), want %d", n, err, p.MaxSessions)
		}
	})
}

// testEviction proves invariant 2: a login beyond the cap evicts the live
// session least recently used (ties: oldest created_at, then smallest id);
// expired sessions are deleted first and do not count.
func testEviction(open opener) func(t *testing.T) {
	type row struct {
		id                string // suffix of a fixed UUID, so id order is known
		created, lastUsed time.Duration
		expires           time.Duration // 0: created + SessionTTL
	}
	now := at(10 * day)
	cases := []struct {
		name         string
		max          int
		existing     []row
		wantEvicted  []string
		wantDeleted  []string // expired rows that must be gone, not reported
		wantRemained []string // besides the new session
	}{
		{
			name: "oldest last_used_at",
			existing: []row{
				{"a", 0, 9 * day, 0}, {"b", 0, 8 * day, 0}, {"c", 0, 5 * day, 0},
				{"d", 0, 9*day + time.Hour, 0}, {"e", 0, 6 * day, 0},
			},
			wantEvicted:  []string{"c"},
			wantRemained: []string{"a", "b", "d", "e"},
		},
		{
			name: "tie on last_used_at broken by older created_at",
			existing: []row{
				{"a", time.Hour, 5 * day, 0}, {"b", 0, 5 * day, 0}, {"c", 0, 6 * day, 0},
				{"d", 0, 7 * day, 0}, {"e", 0, 8 * day, 0},
			},
			wantEvicted:  []string{"b"},
			wantRemained: []string{"a", "c", "d", "e"},
		},
		{
			name: "tie on last_used_at and created_at broken by smaller id",
			existing: []row{
				{"b", 0, 5 * day, 0}, {"a", 0, 5 * day, 0}, {"c", 0, 6 * day, 0},
				{"d", 0, 7 * day, 0}, {"e", 0, 8 * day, 0},
			},
			wantEvicted:  []string{"a"},
			wantRemained: []string{"b", "c", "d", "e"},
		},
		{
			name: "expired sessions go first and do not count",
			existing: []row{
				{"a", 0, 3 * day, 0},                       // idle: last used 7 days before now
				{"b", 0, 9 * day, 10 * day},                // absolute: expires exactly now
				{"c", 0, 5 * day, 0}, {"d", 0, 6 * day, 0}, // live
				{"e", 0, 7 * day, 0}, {"f", 0, 8 * day, 0},
			},
			wantDeleted:  []string{"a", "b"},
			wantRemained: []string{"c", "d", "e", "f"},
		},
		{
			name: "expired and live evicted together",
			existing: []row{
				{"a", 0, 2 * day, 0}, // idle-expired, though least recently used
				{"b", 0, 4 * day, 0}, {"c", 0, 5 * day, 0}, {"d", 0, 6 * day, 0},
				{"e", 0, 7 * day, 0}, {"f", 0, 8 * day, 0},
			},
			wantEvicted:  []string{"b"},
			wantDeleted:  []string{"a"},
			wantRemained: []string{"c", "d", "e", "f"},
		},
		{
			name: "cap lowered evicts several",
			max:  3,
			existing: []row{
				{"a", 0, 9 * day, 0}, {"b", 0, 8 * day, 0}, {"c", 0, 5 * day, 0},
				{"d", 0, 9*day + time.Hour, 0}, {"e", 0, 6 * day, 0},
			},
			wantEvicted:  []string{"c", "e", "b"},
			wantRemained: []string{"a", "d"},
		},
	}
	fixedID := func(suffix string) string {
		return fmt.Sprintf("00000000-0000-4000-8000-%012s", suffix)
	}
	fixedIDs := func(suffixes []string) []string {
		out := make([]string, len(suffixes))
		for i, s := range suffixes {
			out[i] = fixedID(s)
		}
		return out
	}
	return func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				st := open(t)
				u := newUser(t, st, "u@example.com")
				for _, r := range tc.existing {
					s, _ := newSession(u, at(r.created))
					s.ID = fixedID(r.id)
					s.LastUsedAt = at(r.lastUsed)
					if r.expires != 0 {
						s.ExpiresAt = at(r.expires)
					}
					create(t, st, s, at(r.created))
				}
				p := policy()
				if tc.max != 0 {
					p.MaxSessions = tc.max
				}
				s, _ := newSession(u, now)
				s.ID = fixedID("ffff")
				evicted, err := st.CreateSession(ctx(t), s, now, p)
				mustOK(t, err, "CreateSession")
				wantIDs(t, "evicted", sorted(evicted), sorted(fixedIDs(tc.wantEvicted)))

				// What is left, even to a lenient policy, is the new
				// session and the survivors: evicted and expired rows are
				// deleted, not merely hidden.
				wantLeft := sorted(append(fixedIDs(tc.wantRemained), s.ID))
				left := sorted(list(t, st, u, t0, setupPolicy()))
				wantIDs(t, "remaining", left, wantLeft)
				for _, id := range fixedIDs(tc.wantDeleted) {
					if slices.Contains(left, id) {
						t.Errorf("expired session %s: still stored, want deleted", id)
					}
				}
				if got := list(t, st, u, now, p); len(got) > p.MaxSessions {
					t.Errorf("live after login: got %d, want at most %d", len(got), p.MaxSessions)
				}
			})
		}
	}
}

func testLiveAndList(t *testing.T, open opener) {
	st := open(t)
	alice := newUser(t, st, "alice@example.com")
	bob := newUser(t, st, "bob@example.com")
	p := policy()
	now := at(p.IdleTTL + 30*time.Minute) // idle cutoff: t0+30m

	mk := func(u *sessiond.User, id string, created, lastUsed time.Duration) *sessiond.Session {
		s, _ := newSession(u, at(created))
		if id != "" {
			s.ID = id
		}
		s.LastUsedAt = at(lastUsed)
		return s
	}
	s1 := mk(alice, "", time.Hour, 3*time.Hour)
	s2 := mk(alice, "", time.Hour, 2*time.Hour)
	s3 := mk(alice, "", 0, 2*time.Hour)                                   // same last use as s2, older
	s4 := mk(alice, "00000000-0000-4000-8000-00000000000a", 0, time.Hour) // same last use and
	s5 := mk(alice, "00000000-0000-4000-8000-00000000000b", 0, time.Hour) // creation: id decides
	idle := mk(alice, "", 0, 0)                                           // last used at the cutoff
	absolute := mk(alice, "", 0, 4*time.Hour)                             // expires exactly at now
	absolute.ExpiresAt = now
	theirs := mk(bob, "", 0, 5*time.Hour)
	for _, s := range []*sessiond.Session{s5, s1, idle, s3, theirs, s4, absolute, s2} {
		create(t, st, s, t0)
	}

	t.Run("ListSessions: live only, most recently used first", func(t *testing.T) {
		got, err := st.ListSessions(ctx(t), alice.ID, now, p)
		mustOK(t, err, "ListSessions")
		wantIDs(t, "alice", ids(got), []string{s1.ID, s2.ID, s3.ID, s5.ID, s4.ID})
		if len(got) > 0 {
			wantSession(t, &got[0], s1)
		}
		wantIDs(t, "bob", list(t, st, bob, now, p), []string{theirs.ID})
		if got := list(t, st, &sessiond.User{ID: sessiond.NewID()}, now, p); len(got) != 0 {
			t.Errorf("unknown user: got %v, want none", got)
		}
	})

	t.Run("LiveSession", func(t *testing.T) {
		got, err := st.LiveSession(ctx(t), alice.ID, s1.ID, now, p)
		mustOK(t, err, "LiveSession")
		wantSession(t, got, s1)
		for _, tc := range []struct {
			name       string
			userID, id string
		}{
			{"idle-expired", alice.ID, idle.ID},
			{"absolute-expired", alice.ID, absolute.ID},
			{"another user's", alice.ID, theirs.ID},
			{"mine, asked for as another user", bob.ID, s1.ID},
			{"unknown", alice.ID, sessiond.NewID()},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, err := st.LiveSession(ctx(t), tc.userID, tc.id, now, p)
				wantCode(t, err, sessiond.CodeNotFound)
			})
		}
	})
}

func testDeleteSessions(t *testing.T, open opener) {
	t.Run("DeleteSession of another user's session is not found and deletes nothing", func(t *testing.T) {
		st := open(t)
		alice := newUser(t, st, "alice@example.com")
		bob := newUser(t, st, "bob@example.com")
		s, _ := newSession(alice, t0)
		create(t, st, s, t0)

		wantCode(t, st.DeleteSession(ctx(t), bob.ID, s.ID), sessiond.CodeNotFound)
		wantIDs(t, "alice after bob's attempt", list(t, st, alice, t0, policy()), []string{s.ID})

		mustOK(t, st.DeleteSession(ctx(t), alice.ID, s.ID), "DeleteSession")
		wantIDs(t, "alice after her own delete", list(t, st, alice, t0, policy()), []string{})
		wantCode(t, st.DeleteSession(ctx(t), alice.ID, s.ID), sessiond.CodeNotFound)
	})

	t.Run("DeleteUserSessions deletes only that user's", func(t *testing.T) {
		st := open(t)
		alice := newUser(t, st, "alice@example.com")
		bob := newUser(t, st, "bob@example.com")
		for range 3 {
			s, _ := newSession(alice, t0)
			create(t, st, s, t0)
		}
		theirs, _ := newSession(bob, t0)
		create(t, st, theirs, t0)

		n, err := st.DeleteUserSessions(ctx(t), alice.ID)
		mustOK(t, err, "DeleteUserSessions")
		if n != 3 {
			t.Errorf("deleted: got %d, want 3", n)
		}
		wantIDs(t, "alice", list(t, st, alice, t0, policy()), []string{})
		wantIDs(t, "bob", list(t, st, bob, t0, policy()), []string{theirs.ID})
		n, err = st.DeleteUserSessions(ctx(t), alice.ID)
		mustOK(t, err, "DeleteUserSessions")
		if n != 0 {
			t.Errorf("deleted again: got %d, want 0", n)
		}
	})
}

func testDeleteExpiredSessions(t *testing.T, open opener) {
	p := policy()
	now := at(10 * day) // idle cutoff: t0+3d

	// setup stores, for two users, the expired and live sessions of the sweep
	// at now and returns the ids of the live ones.
	setup := func(t *testing.T, st store, expiredPerUser int) (live []string, alice, bob *sessiond.User) {
		alice = newUser(t, st, "alice@example.com")
		bob = newUser(t, st, "bob@example.com")
		for _, u := range []*sessiond.User{alice, bob} {
			for i := range expiredPerUser {
				s, _ := newSession(u, t0)
				switch i % 3 {
				case 0: // absolute, at the boundary
					s.LastUsedAt, s.ExpiresAt = at(9*day), now
				case 1: // idle, at the boundary
					s.LastUsedAt = at(3 * day)
				case 2:
					s.LastUsedAt = at(day)
				}
				create(t, st, s, t0)
			}
			a, _ := newSession(u, t0)
			a.LastUsedAt, a.ExpiresAt = at(9*day), now.Add(time.Microsecond)
			b, _ := newSession(u, t0)
			b.LastUsedAt = at(3*day + time.Microsecond)
			create(t, st, a, t0)
			create(t, st, b, t0)
			live = append(live, a.ID, b.ID)
		}
		return live, alice, bob
	}
	stored := func(t *testing.T, st store, users ...*sessiond.User) []string {
		var all []string
		for _, u := range users {
			all = append(all, list(t, st, u, t0, setupPolicy())...)
		}
		return sorted(all)
	}

	t.Run("limit bounds each sweep", func(t *testing.T) {
		st := open(t)
		live, alice, bob := setup(t, st, 3) // 6 expired
		for i, want := range []int{4, 2, 0} {
			n, err := st.DeleteExpiredSessions(ctx(t), now, p, 4)
			mustOK(t, err, "DeleteExpiredSessions")
			if n != want {
				t.Errorf("sweep %d: got %d deleted, want %d", i, n, want)
			}
		}
		wantIDs(t, "left", stored(t, st, alice, bob), sorted(live))
	})

	t.Run("concurrent sweepers", func(t *testing.T) {
		st := open(t)
		live, alice, bob := setup(t, st, 10) // 20 expired
		total := sweepConcurrently(t, func() (int, error) { return st.DeleteExpiredSessions(ctx(t), now, p, 3) })
		if total != 20 {
			t.Errorf("deleted: got %d, want 20", total)
		}
		wantIDs(t, "left", stored(t, st, alice, bob), sorted(live))
	})
}

// sweepConcurrently runs del from 4 goroutines at once, each until it
// deletes nothing, and returns how many rows they deleted in all.
func sweepConcurrently(t *testing.T, del func() (int, error)) int {
	t.Helper()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int
	)
	for range 4 {
		wg.Go(func() {
			for {
				n, err := del()
				if err != nil {
					t.Errorf("sweep: %v", err)
					return
				}
				mu.Lock()
				total += n
				mu.Unlock()
				if n == 0 {
					return
				}
			}
		})
	}
	wg.Wait()
	return total
}
