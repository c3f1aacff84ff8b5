package sessiond_test

import (
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

func TestNextAttempt(t *testing.T) {
	const (
		h = time.Hour
		m = time.Minute
		s = time.Second
	)
	for _, tc := range []struct {
		attempts int
		jitter   float64
		want     time.Duration
		giveUp   bool
	}{
		{1, 0.5, 5 * s, false},
		{1, 0, 4 * s, false},                           // -20%
		{1, 0.999999, 6*s - 5*time.Microsecond, false}, // just under +20%
		{2, 0.5, 30 * s, false},
		{3, 0.5, 2 * m, false},
		{4, 0.5, 10 * m, false},
		{5, 0.5, h, false},
		{6, 0.5, 6 * h, false},
		{7, 0.5, 6 * h, false},
		{8, 0.5, 6 * h, false}, // the waits so far add up to 19h12m35s
		{9, 0.5, 0, true},      // another 6h would pass 24h
		{9, 0, 0, true},        // jitter does not buy an attempt
		{50, 0.5, 0, true},
		{0, 0.5, 5 * s, false}, // nonsense counts as the first
	} {
		d, giveUp := sessiond.NextAttempt(tc.attempts, func() float64 { return tc.jitter })
		if giveUp != tc.giveUp || (d-tc.want).Abs() > 10*time.Microsecond {
			t.Errorf("NextAttempt(%d, %v): got %v, %v, want %v, %v", tc.attempts, tc.jitter, d, giveUp, tc.want, tc.giveUp)
		}
	}
}

func TestNextAttemptStaysInADay(t *testing.T) {
	// With the largest jitter, the last attempt still comes within the
	// retry window plus the spread of the waits.
	var total time.Duration
	n := 1
	for ; ; n++ {
		d, giveUp := sessiond.NextAttempt(n, func() float64 { return 0.5 })
		if giveUp {
			break
		}
		total += d
	}
	if total > sessiond.RetryWindow {
		t.Errorf("nominal waits add up to %v, want at most %v", total, sessiond.RetryWindow)
	}
	if n != 9 {
		t.Errorf("gave up at attempt %d, want 9", n)
	}
}
