package dpop

import (
	"sync"
	"time"
)

// ReplayCache remembers the proofs a process has accepted until they
// expire, for a verifier that has no shared store: a service behind one
// instance, or one that accepts that a proof replayed to another instance
// is not caught there. It holds at most a fixed number of proofs; when it
// is full of unexpired ones it refuses new proofs rather than forget one
// early (which would let it be replayed).
type ReplayCache struct {
	mu   sync.Mutex
	max  int
	seen map[[32]byte]time.Time
	// next is the earliest expiry in seen, so that most calls skip the sweep.
	next time.Time
}

// NewReplayCache returns a cache of at most max proofs (10 000 when max ≤ 0).
func NewReplayCache(max int) *ReplayCache {
	if max <= 0 {
		max = 10000
	}
	return &ReplayCache{max: max, seen: make(map[[32]byte]time.Time)}
}

// Accept records p at now and reports whether it is new. False means a
// replay, or a full cache.
func (c *ReplayCache) Accept(p *Proof, now time.Time) bool {
	key, exp := p.ReplayKey(), p.Expires()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.next.IsZero() && !now.Before(c.next) {
		c.next = time.Time{}
		for k, e := range c.seen {
			if !now.Before(e) {
				delete(c.seen, k)
			} else if c.next.IsZero() || e.Before(c.next) {
				c.next = e
			}
		}
	}
	if e, ok := c.seen[key]; ok && now.Before(e) {
		return false
	}
	if len(c.seen) >= c.max {
		return false
	}
	c.seen[key] = exp
	if c.next.IsZero() || exp.Before(c.next) {
		c.next = exp
	}
	return true
}
