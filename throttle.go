package sessiond

import (
	"context"
	"time"
)

// Attempt counters limit what a client may try per window: logins per
// (email, client) pair, per email from everyone, per client IP, and signups
// per client IP. They live in the database, so a limit holds across every
// instance sharing it.
//
// An attempt is reserved before any work is done for it: one atomic
// increment per counter, and if any counter then exceeds its limit, none
// of them changes and the attempt is refused. So no number of concurrent
// requests gets more attempts checked than the limit allows. An attempt that
// turns out not to be a failure (a successful login, an outage) gives its
// reservation back with ReleaseAttempts.
//
// A counter's window opens at its first attempt. When a window ends with
// its limit used up, the next window is twice as long (up to MaxLevel
// doublings): a client that keeps exhausting its attempts is refused for
// longer and longer, while one that stops starts over at the base window
// once its counter has been forgotten, one window after it ended.

// AttemptLimit asks to reserve one attempt on the counter Key.
type AttemptLimit struct {
	Key      string // opaque; package auth makes it a MAC, so no email or IP is stored
	Max      int    // attempts allowed per window
	Window   time.Duration
	MaxLevel int // how many times the window may double; 0: never
}

// AttemptCount is a counter's state after a reservation.
type AttemptCount struct {
	Key       string
	Count     int       // attempts in the window, the one reserved included
	Level     int       // the window is Window << Level long
	WindowEnd time.Time // when the window ends
}

// AttemptsRefused reports whether an attempt with these counts (in the
// order of limits) is refused at now, and for how long: until the latest
// window among the counters over their limit ends.
func AttemptsRefused(limits []AttemptLimit, counts []AttemptCount, now time.Time) (bool, time.Duration) {
	refused, wait := false, time.Duration(0)
	for i, l := range limits {
		if i >= len(counts) || counts[i].Count <= l.Max {
			continue
		}
		refused = true
		wait = max(wait, counts[i].WindowEnd.Sub(now))
	}
	return refused, wait
}

// AttemptStore persists the attempt counters.
type AttemptStore interface {
	// ReserveAttempts adds one attempt at now to each counter of limits and
	// returns their counts in the order of limits. If any count exceeds its
	// Max (see AttemptsRefused), no counter changes and ok is false. Atomic
	// under any concurrency: of n concurrent reservations on a counter with
	// Max m in one window, exactly min(n, m) succeed.
	ReserveAttempts(ctx context.Context, limits []AttemptLimit, now time.Time) (counts []AttemptCount, ok bool, err error)
	// ReleaseAttempts gives back one attempt of each counter, if its window
	// is still the one the count was reserved in.
	ReleaseAttempts(ctx context.Context, counts []AttemptCount) error
	// ClearAttempts forgets the counter key.
	ClearAttempts(ctx context.Context, key string) error
	// DeleteStaleAttempts deletes at most limit counters forgotten by now
	// (one window after theirs ended) and returns how many.
	DeleteStaleAttempts(ctx context.Context, now time.Time, limit int) (int, error)
}
