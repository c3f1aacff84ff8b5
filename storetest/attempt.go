package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// window is the suite's throttling window (the documented default).
const window = 15 * time.Minute

// record adds one failure to each key at now.
func record(t *testing.T, st sessiond.Store, now time.Time, keys ...string) {
	t.Helper()
	mustOK(t, st.RecordLoginFailure(ctx(t), keys, now, window), "RecordLoginFailure")
}

// failures returns the keys' counters as of now.
func failures(t *testing.T, st sessiond.Store, now time.Time, keys ...string) []sessiond.LoginFailures {
	t.Helper()
	got, err := st.LoginFailures(ctx(t), keys, now, window)
	mustOK(t, err, "LoginFailures")
	return got
}

// fail returns the counter of key with count failures in the window opened
// at start (the zero time when count is 0).
func fail(key string, count int, start time.Time) sessiond.LoginFailures {
	return sessiond.LoginFailures{Key: key, Count: count, WindowStart: start}
}

// wantFailures fails t unless got equals want element by element; a
// WindowStart must be equal and in UTC.
func wantFailures(t *testing.T, got, want []sessiond.LoginFailures) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d counters %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Key != w.Key || g.Count != w.Count || !g.WindowStart.Equal(w.WindowStart) ||
			(!g.WindowStart.IsZero() && g.WindowStart.Location() != time.UTC) {
			t.Errorf("counter %d: got %+v, want %+v", i, g, w)
		}
	}
}

func testLoginFailures(t *testing.T, open opener) {
	t.Run("failures in a window accumulate", func(t *testing.T) {
		st := open(t)
		record(t, st, t0, "k")
		record(t, st, at(time.Minute), "k")
		last := t0.Add(window - time.Microsecond) // the window's last instant
		record(t, st, last, "k")
		wantFailures(t, failures(t, st, last, "k"), []sessiond.LoginFailures{fail("k", 3, t0)})
	})

	t.Run("a failure after the window ended opens a new window", func(t *testing.T) {
		for _, d := range []time.Duration{window, window + time.Hour} { // at the end, and long after
			t.Run(d.String(), func(t *testing.T) {
				st := open(t)
				record(t, st, t0, "k")
				record(t, st, at(time.Minute), "k")
				record(t, st, at(d), "k")
				wantFailures(t, failures(t, st, at(d), "k"), []sessiond.LoginFailures{fail("k", 1, at(d))})
				// The new window counts on from there.
				record(t, st, at(d+time.Minute), "k")
				wantFailures(t, failures(t, st, at(d+time.Minute), "k"), []sessiond.LoginFailures{fail("k", 2, at(d))})
			})
		}
	})

	t.Run("LoginFailures keeps key order; ended windows and unknown keys count zero", func(t *testing.T) {
		st := open(t)
		record(t, st, t0, "a")
		record(t, st, t0, "a")
		record(t, st, at(10*time.Minute), "b")
		keys := []string{"c", "b", "a", "b"} // c unknown; b twice
		for _, tc := range []struct {
			name string
			now  time.Time
			want []sessiond.LoginFailures
		}{
			{"both windows open", t0.Add(window - time.Microsecond),
				[]sessiond.LoginFailures{fail("c", 0, time.Time{}), fail("b", 1, at(10*time.Minute)), fail("a", 2, t0), fail("b", 1, at(10*time.Minute))}},
			{"a's window ended at now", at(window),
				[]sessiond.LoginFailures{fail("c", 0, time.Time{}), fail("b", 1, at(10*time.Minute)), fail("a", 0, time.Time{}), fail("b", 1, at(10*time.Minute))}},
			{"both ended", at(10*time.Minute + window),
				[]sessiond.LoginFailures{fail("c", 0, time.Time{}), fail("b", 0, time.Time{}), fail("a", 0, time.Time{}), fail("b", 0, time.Time{})}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				wantFailures(t, failures(t, st, tc.now, keys...), tc.want)
			})
		}
		t.Run("no keys", func(t *testing.T) {
			wantFailures(t, failures(t, st, t0), nil)
		})
	})

	t.Run("RecordLoginFailure of several keys counts each once", func(t *testing.T) {
		st := open(t)
		record(t, st, t0, "email", "ip")
		record(t, st, at(time.Minute), "ip", "other", "ip") // a key named twice is one failure
		wantFailures(t, failures(t, st, at(time.Minute), "email", "ip", "other"), []sessiond.LoginFailures{
			fail("email", 1, t0), fail("ip", 2, t0), fail("other", 1, at(time.Minute)),
		})
	})

	t.Run("ClearLoginFailures resets only its key", func(t *testing.T) {
		st := open(t)
		record(t, st, t0, "a", "b")
		record(t, st, t0, "a", "b")
		mustOK(t, st.ClearLoginFailures(ctx(t), "a"), "ClearLoginFailures")
		mustOK(t, st.ClearLoginFailures(ctx(t), "unknown"), "ClearLoginFailures of an unknown key")
		wantFailures(t, failures(t, st, at(time.Minute), "a", "b"), []sessiond.LoginFailures{fail("a", 0, time.Time{}), fail("b", 2, t0)})
		// A cleared key starts a new window at its next failure.
		record(t, st, at(time.Minute), "a")
		wantFailures(t, failures(t, st, at(time.Minute), "a"), []sessiond.LoginFailures{fail("a", 1, at(time.Minute))})
	})

	t.Run("concurrent failures of one key each count once", func(t *testing.T) {
		st := open(t)
		const callers = 20
		var wg sync.WaitGroup
		errs := make([]error, callers)
		for i := range callers {
			// Two shared keys, named in either order: callers lock the same
			// rows and must neither lose an increment nor deadlock.
			keys := []string{"email", "ip"}
			if i%2 == 1 {
				slices.Reverse(keys)
			}
			now := at(time.Duration(i) * time.Millisecond)
			wg.Go(func() { errs[i] = st.RecordLoginFailure(ctx(t), keys, now, window) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
		}
		got := failures(t, st, at(time.Second), "email", "ip")
		for _, f := range got {
			if f.Count != callers {
				t.Errorf("%s: got count %d, want %d", f.Key, f.Count, callers)
			}
		}
	})

	testDeleteStaleLoginFailures(t, open)
}

func testDeleteStaleLoginFailures(t *testing.T, open opener) {
	now := at(time.Hour)
	// setup stores stale counters (windows that ended at or before now,
	// half of them exactly at now) and two live ones, and returns the keys
	// of the live ones.
	setup := func(t *testing.T, st sessiond.Store, stale int) []string {
		for i := range stale {
			start := now.Add(-window) // ended at now
			if i%2 == 1 {
				start = now.Add(-window - time.Duration(i)*time.Minute)
			}
			record(t, st, start, fmt.Sprintf("stale%02d", i))
		}
		record(t, st, now.Add(-window+time.Microsecond), "live1")
		record(t, st, now, "live2")
		return []string{"live1", "live2"}
	}
	// wantLeft fails t unless exactly the keys live are stored: every other
	// key was deleted, not merely outside its window.
	wantLeft := func(t *testing.T, st sessiond.Store, stale int, live []string) {
		t.Helper()
		keys := slices.Clone(live)
		for i := range stale {
			keys = append(keys, fmt.Sprintf("stale%02d", i))
		}
		// Asked as of long before, every stored counter shows its count.
		var left []string
		for _, f := range failures(t, st, now.Add(-24*time.Hour), keys...) {
			if f.Count > 0 {
				left = append(left, f.Key)
			}
		}
		wantIDs(t, "left", sorted(left), sorted(live))
	}

	t.Run("DeleteStaleLoginFailures deletes only ended windows, at most limit", func(t *testing.T) {
		st := open(t)
		live := setup(t, st, 5)
		n, err := st.DeleteStaleLoginFailures(ctx(t), now, window, 0)
		mustOK(t, err, "DeleteStaleLoginFailures")
		if n != 0 {
			t.Errorf("limit 0: got %d deleted, want 0", n)
		}
		for i, want := range []int{3, 2, 0} {
			n, err := st.DeleteStaleLoginFailures(ctx(t), now, window, 3)
			mustOK(t, err, "DeleteStaleLoginFailures")
			if n != want {
				t.Errorf("sweep %d: got %d deleted, want %d", i, n, want)
			}
		}
		wantLeft(t, st, 5, live)
	})

	t.Run("concurrent sweepers delete each stale counter once", func(t *testing.T) {
		st := open(t)
		live := setup(t, st, 20)
		total := sweepConcurrently(t, func() (int, error) { return st.DeleteStaleLoginFailures(ctx(t), now, window, 3) })
		if total != 20 {
			t.Errorf("deleted: got %d, want 20", total)
		}
		wantLeft(t, st, 20, live)
	})
}
