package storetest

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// window is the suite's base throttling window (the default login window).
const window = 15 * time.Minute

// limit is a counter with max attempts per window and at most maxLevel
// doublings.
func limit(key string, max, maxLevel int) sessiond.AttemptLimit {
	return sessiond.AttemptLimit{Key: key, Max: max, Window: window, MaxLevel: maxLevel}
}

// reserve reserves one attempt on every limit at now.
func reserve(t *testing.T, st store, now time.Time, limits ...sessiond.AttemptLimit) ([]sessiond.AttemptCount, bool) {
	t.Helper()
	counts, ok, err := st.ReserveAttempts(ctx(t), limits, now)
	mustOK(t, err, "ReserveAttempts")
	if len(counts) != len(limits) {
		t.Fatalf("got %d counts, want %d", len(counts), len(limits))
	}
	return counts, ok
}

// wantCount fails t unless c is key's count n at level, its window ending at end.
func wantCount(t *testing.T, c sessiond.AttemptCount, key string, n, level int, end time.Time) {
	t.Helper()
	if c.Key != key || c.Count != n || c.Level != level || !c.WindowEnd.Equal(end) || c.WindowEnd.Location() != time.UTC {
		t.Errorf("got %+v, want key %s count %d level %d window end %v (UTC)", c, key, n, level, end)
	}
}

func testAttempts(t *testing.T, open opener) {
	t.Run("attempts in a window accumulate up to the limit, then are refused without counting", func(t *testing.T) {
		st := open(t)
		for i := 1; i <= 3; i++ {
			c, ok := reserve(t, st, at(time.Duration(i)*time.Minute), limit("k", 3, 0))
			if !ok {
				t.Fatalf("attempt %d refused, want allowed", i)
			}
			wantCount(t, c[0], "k", i, 0, at(time.Minute+window))
		}
		for range 2 {
			c, ok := reserve(t, st, at(window), limit("k", 3, 0)) // the window's last instant but one
			if ok {
				t.Fatal("attempt 4 allowed, want refused")
			}
			wantCount(t, c[0], "k", 4, 0, at(time.Minute+window)) // 4 again: the refusal did not count
			refused, wait := sessiond.AttemptsRefused([]sessiond.AttemptLimit{limit("k", 3, 0)}, c, at(window))
			if !refused || wait != time.Minute {
				t.Errorf("AttemptsRefused: got %v, %v, want true, 1m", refused, wait)
			}
		}
	})

	t.Run("a refusal by one counter changes none of the others", func(t *testing.T) {
		st := open(t)
		reserve(t, st, t0, limit("pair", 1, 0))
		c, ok := reserve(t, st, at(time.Second), limit("ip", 10, 0), limit("pair", 1, 0), limit("account", 10, 0))
		if ok {
			t.Fatal("allowed with pair over its limit")
		}
		wantCount(t, c[0], "ip", 1, 0, at(time.Second+window))
		wantCount(t, c[1], "pair", 2, 0, at(window))
		// Had the refused reservation counted, ip and account would be at 2.
		c, ok = reserve(t, st, at(2*time.Second), limit("ip", 10, 0), limit("account", 10, 0))
		if !ok {
			t.Fatal("refused, want allowed")
		}
		wantCount(t, c[0], "ip", 1, 0, at(2*time.Second+window))
		wantCount(t, c[1], "account", 1, 0, at(2*time.Second+window))
	})

	t.Run("a window that was used up doubles the next, up to MaxLevel; one that was not resets", func(t *testing.T) {
		st := open(t)
		l := limit("k", 2, 2)
		now := t0
		// use fills the current window and opens the next after it ended,
		// wanting that window's level.
		use := func(wantLevel int) {
			t.Helper()
			c, ok := reserve(t, st, now, l)
			if !ok {
				t.Fatalf("first attempt of a new window refused: %+v", c)
			}
			wantCount(t, c[0], "k", 1, wantLevel, now.Add(window<<wantLevel))
			end := c[0].WindowEnd
			reserve(t, st, now, l)
			if _, ok := reserve(t, st, now, l); ok {
				t.Fatal("third attempt allowed, want refused")
			}
			now = end // the window has ended at its end
		}
		for _, level := range []int{0, 1, 2, 2} { // capped at MaxLevel 2
			use(level)
		}
		// One attempt only in a level-2 window: the next starts at level 0.
		c, _ := reserve(t, st, now, l)
		wantCount(t, c[0], "k", 1, 2, now.Add(window<<2))
		end := c[0].WindowEnd
		c, _ = reserve(t, st, end, l)
		wantCount(t, c[0], "k", 1, 0, end.Add(window))
	})

	t.Run("concurrent reservations: exactly Max of them succeed", func(t *testing.T) {
		st := open(t)
		const callers, max = 30, 5
		var wg sync.WaitGroup
		oks := make([]bool, callers)
		errs := make([]error, callers)
		for i := range callers {
			// Two shared counters, named in either order: callers lock the
			// same rows and must neither lose an increment nor deadlock.
			limits := []sessiond.AttemptLimit{limit("pair", max, 3), limit("ip", 100, 0)}
			if i%2 == 1 {
				slices.Reverse(limits)
			}
			now := at(time.Duration(i) * time.Millisecond)
			wg.Go(func() { _, oks[i], errs[i] = st.ReserveAttempts(ctx(t), limits, now) })
		}
		wg.Wait()
		allowed := 0
		for i, err := range errs {
			if err != nil {
				t.Errorf("caller %d: %v", i, err)
			}
			if oks[i] {
				allowed++
			}
		}
		if allowed != max {
			t.Errorf("allowed: got %d, want %d", allowed, max)
		}
		c, _ := reserve(t, st, at(time.Second), limit("ip", 100, 0))
		if c[0].Count != max+1 {
			t.Errorf("ip counter: got %d, want %d (only the allowed reservations counted)", c[0].Count, max+1)
		}
	})

	t.Run("ReleaseAttempts gives back an attempt of the same window only", func(t *testing.T) {
		st := open(t)
		l := limit("k", 2, 0)
		first, _ := reserve(t, st, t0, l)
		reserve(t, st, t0, l)
		mustOK(t, st.ReleaseAttempts(ctx(t), first), "ReleaseAttempts")
		c, ok := reserve(t, st, at(time.Minute), l)
		if !ok {
			t.Fatal("refused after a release, want allowed")
		}
		wantCount(t, c[0], "k", 2, 0, at(window))
		// A release of the ended window's count leaves the new one alone.
		next, _ := reserve(t, st, at(window), l)
		wantCount(t, next[0], "k", 1, 0, at(2*window))
		mustOK(t, st.ReleaseAttempts(ctx(t), c), "ReleaseAttempts of an old window")
		c, _ = reserve(t, st, at(window+time.Second), l)
		wantCount(t, c[0], "k", 2, 0, at(2*window))
		// Releasing an unknown counter is no error.
		mustOK(t, st.ReleaseAttempts(ctx(t), []sessiond.AttemptCount{{Key: "unknown", Count: 1, WindowEnd: t0}}), "ReleaseAttempts of an unknown counter")
	})

	t.Run("ClearAttempts forgets only its counter", func(t *testing.T) {
		st := open(t)
		reserve(t, st, t0, limit("a", 1, 0), limit("b", 1, 0))
		mustOK(t, st.ClearAttempts(ctx(t), "a"), "ClearAttempts")
		mustOK(t, st.ClearAttempts(ctx(t), "unknown"), "ClearAttempts of an unknown counter")
		c, _ := reserve(t, st, at(time.Minute), limit("a", 1, 0))
		wantCount(t, c[0], "a", 1, 0, at(time.Minute+window))
		if _, ok := reserve(t, st, at(time.Minute), limit("b", 1, 0)); ok {
			t.Error("b allowed after clearing a, want refused")
		}
	})

	t.Run("a counter named twice is an error, not two attempts", func(t *testing.T) {
		st := open(t)
		_, _, err := st.ReserveAttempts(ctx(t), []sessiond.AttemptLimit{limit("k", 5, 0), limit("k", 5, 0)}, t0)
		if err == nil {
			t.Fatal("got no error")
		}
	})

	testDeleteStaleAttempts(t, open)
}

func testDeleteStaleAttempts(t *testing.T, open opener) {
	now := at(3 * time.Hour)
	// setup stores stale counters (forgotten at or before now, half of them
	// exactly at now: a window ends at start+window and is forgotten one
	// window later) and two live ones, and returns the live keys.
	setup := func(t *testing.T, st store, stale int) []string {
		for i := range stale {
			start := now.Add(-2 * window)
			if i%2 == 1 {
				start = start.Add(-time.Duration(i) * time.Minute)
			}
			reserve(t, st, start, limit(fmt.Sprintf("stale%02d", i), 5, 0))
		}
		reserve(t, st, now.Add(-2*window+time.Microsecond), limit("live1", 5, 0))
		reserve(t, st, now, limit("live2", 5, 0))
		return []string{"live1", "live2"}
	}
	// wantLeft fails t unless exactly the keys live are stored: a cleared
	// or swept counter starts over at count 1 and level 0.
	wantLeft := func(t *testing.T, st store, stale int, live []string) {
		t.Helper()
		keys := slices.Clone(live)
		for i := range stale {
			keys = append(keys, fmt.Sprintf("stale%02d", i))
		}
		var left []string
		for _, k := range keys {
			// Asked before every window ended, a stored counter counts on.
			c, _ := reserve(t, st, now.Add(-4*window), limit(k, 100, 0))
			if c[0].Count > 1 {
				left = append(left, k)
			}
		}
		wantIDs(t, "left", sorted(left), sorted(live))
	}

	t.Run("DeleteStaleAttempts deletes only forgotten counters, at most limit", func(t *testing.T) {
		st := open(t)
		live := setup(t, st, 5)
		n, err := st.DeleteStaleAttempts(ctx(t), now, 0)
		mustOK(t, err, "DeleteStaleAttempts")
		if n != 0 {
			t.Errorf("limit 0: got %d deleted, want 0", n)
		}
		for i, want := range []int{3, 2, 0} {
			n, err := st.DeleteStaleAttempts(ctx(t), now, 3)
			mustOK(t, err, "DeleteStaleAttempts")
			if n != want {
				t.Errorf("sweep %d: got %d deleted, want %d", i, n, want)
			}
		}
		wantLeft(t, st, 5, live)
	})

	t.Run("concurrent sweepers delete each stale counter once", func(t *testing.T) {
		st := open(t)
		live := setup(t, st, 20)
		total := sweepConcurrently(t, func() (int, error) { return st.DeleteStaleAttempts(ctx(t), now, 3) })
		if total != 20 {
			t.Errorf("deleted: got %d, want 20", total)
		}
		wantLeft(t, st, 20, live)
	})
}
