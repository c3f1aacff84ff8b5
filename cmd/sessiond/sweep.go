package main

import (
	"context"
	"time"
)

// sweepBatch bounds each delete, so no statement holds locks for long and
// sweepers on several instances interleave instead of queueing.
const sweepBatch = 500

// sweep deletes expired sessions and stale login-failure counters every
// interval, in small batches, until none are left.
func (a *app) sweep(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			n, err := a.sweepOnce(ctx)
			switch {
			case err != nil && ctx.Err() == nil:
				a.logger.Warn("sweeping expired sessions", "error", err, "deleted", n)
			case n > 0:
				a.logger.Info("swept expired sessions", "deleted", n)
			}
		}
	}
}

// sweepOnce runs batches until a batch comes back short, and returns how
// many sessions it deleted.
func (a *app) sweepOnce(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := a.store.DeleteExpiredSessions(ctx, a.clock(), a.policy, sweepBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < sweepBatch {
			break
		}
		// Yield between batches: the sweeper must not crowd out refreshes.
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	for ctx.Err() == nil {
		n, err := a.store.DeleteStaleLoginFailures(ctx, a.clock(), a.window, sweepBatch)
		if err != nil {
			return total, err
		}
		if n < sweepBatch {
			break
		}
	}
	return total, ctx.Err()
}
