package app

import (
	"context"
	"time"
)

// SweepBatch bounds each delete, so no statement holds locks for long and
// sweepers on several instances interleave instead of queueing.
const SweepBatch = 500

// Sweep deletes expired sessions, forgotten attempt counters, expired
// account tokens, unfinished MFA logins, passkey challenges, DPoP proofs
// past their window, and events
// past their retention, and fails mail whose token expired before it was
// sent, every interval, in small batches, until none are left.
func (a *App) Sweep(ctx context.Context, interval time.Duration) {
	every(ctx, interval, func() {
		n, err := a.SweepOnce(ctx)
		switch {
		case err != nil && ctx.Err() == nil:
			a.logger.Warn("sweeping expired sessions", "error", err, "deleted", n)
		case n > 0:
			a.logger.Info("swept expired sessions", "deleted", n)
		}
	})
}

// SweepOnce runs batches until a batch comes back short, and returns how
// many sessions it deleted.
func (a *App) SweepOnce(ctx context.Context) (int, error) {
	total := 0
	for ctx.Err() == nil {
		n, err := a.Store.DeleteExpiredSessions(ctx, a.clock(), a.policy, SweepBatch)
		total += n
		if err != nil {
			return total, err
		}
		if n < SweepBatch {
			break
		}
		// Yield between batches: the sweeper must not crowd out refreshes.
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	for ctx.Err() == nil {
		n, err := a.Store.DeleteStaleAttempts(ctx, a.clock(), SweepBatch)
		if err != nil {
			return total, err
		}
		if n < SweepBatch {
			break
		}
	}
	for _, del := range []func(context.Context, time.Time, int) (int, error){
		a.Store.DeleteExpiredAccountTokens, a.Store.DeleteExpiredMFAChallenges, a.Store.DeleteExpiredPasskeyChallenges,
		a.Store.DeleteExpiredDPoPProofs,
	} {
		for ctx.Err() == nil {
			n, err := del(ctx, a.clock(), SweepBatch)
			if err != nil {
				return total, err
			}
			if n < SweepBatch {
				break
			}
		}
	}
	if err := a.expireOutbox(ctx); err != nil {
		return total, err
	}
	if err := a.sweepEvents(ctx); err != nil {
		return total, err
	}
	return total, ctx.Err()
}

// sweepEvents deletes events, and delivered or failed outbox messages,
// older than the retention, in batches like the sessions. Pending messages
// stay whatever their age: the worker still owes them.
func (a *App) sweepEvents(ctx context.Context) error {
	if a.retention <= 0 {
		return nil
	}
	for _, del := range []func(context.Context, time.Time, int) (int, error){
		a.Store.DeleteEventsBefore, a.Store.DeleteFinishedOutboxBefore,
	} {
		for ctx.Err() == nil {
			n, err := del(ctx, a.clock().Add(-a.retention), SweepBatch)
			if err != nil {
				return err
			}
			if n < SweepBatch {
				break
			}
			select {
			case <-ctx.Done():
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	return nil
}

// expireOutbox fails the pending messages whose expiry has passed (mail
// whose token expired while no SMTP server took it) and erases their
// payload, the token: an undelivered link must not outlive its use in the
// database any more than a delivered one does.
func (a *App) expireOutbox(ctx context.Context) error {
	for ctx.Err() == nil {
		n, err := a.Store.ExpireOutbox(ctx, a.clock(), SweepBatch)
		a.outboxMetrics.MailExpired(n)
		if err != nil {
			return err
		}
		if n > 0 {
			a.logger.Info("failed mail whose link expired unsent", "count", n)
		}
		if n < SweepBatch {
			return nil
		}
		select {
		case <-ctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
	}
	return nil
}
