package outbox

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	"github.com/sessiond/sessiond"
)

// Options tune a Worker; the zero value of each field means its default.
type Options struct {
	// Owner names this worker in the leases it takes; default a random id.
	// Two workers must never share one.
	Owner string
	// Clock is the time source of leases and schedules; default the system
	// clock.
	Clock sessiond.Clock
	// Concurrency bounds the sends in flight overall; default 16.
	Concurrency int
	// PerTarget bounds the sends in flight to one target, so that a slow
	// or dead receiver holds at most this many slots; default 2.
	PerTarget int
	// SendTimeout bounds one send; default 10s.
	SendTimeout time.Duration
	// Lease is how long a claim holds a message; default 1 minute. It must
	// outlast a send and the recording of its outcome, so it is raised to
	// at least twice SendTimeout.
	Lease time.Duration
	// PollMin and PollMax bound the wait between claims when there is
	// nothing to do: the wait starts at PollMin and doubles while idle.
	// PollMax is how late the worker sees messages another instance
	// inserted without a Notify; defaults 50ms and 2s.
	PollMin, PollMax time.Duration
	// Backoff decides the wait after a failed attempt; default
	// sessiond.NextAttempt with random jitter.
	Backoff func(attempts int) (delay time.Duration, giveUp bool)
	// NotifyDelay is how long the worker waits after a Notify before it
	// claims; default 50ms. The request that committed a message notifies
	// before its response is written, and a claim and send started at once
	// would run alongside that response and lengthen it: a request that
	// queued mail (forgot, for an address with an account) would take
	// measurably longer than one that did not, which tells an observer
	// whether the address has an account. Waiting moves the delivery past
	// the response.
	NotifyDelay time.Duration
	// Metrics, if set, receives the worker's figures.
	Metrics *Metrics
	// Logger receives failures of the store; default none.
	Logger *slog.Logger
}

func (o *Options) defaults() {
	if o.Owner == "" {
		o.Owner = sessiond.NewID()
	}
	if o.Clock == nil {
		o.Clock = sessiond.SystemClock
	}
	if o.Concurrency <= 0 {
		o.Concurrency = 16
	}
	if o.PerTarget <= 0 {
		o.PerTarget = 2
	}
	if o.SendTimeout <= 0 {
		o.SendTimeout = 10 * time.Second
	}
	if o.Lease <= 0 {
		o.Lease = time.Minute
	}
	o.Lease = max(o.Lease, 2*o.SendTimeout)
	if o.PollMin <= 0 {
		o.PollMin = 50 * time.Millisecond
	}
	if o.PollMax <= 0 {
		o.PollMax = 2 * time.Second
	}
	o.PollMax = max(o.PollMax, o.PollMin)
	if o.NotifyDelay <= 0 {
		o.NotifyDelay = 50 * time.Millisecond
	}
	if o.Backoff == nil {
		o.Backoff = func(attempts int) (time.Duration, bool) { return sessiond.NextAttempt(attempts, rand.Float64) }
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// recordTimeout bounds writing an outcome, which happens even while the
// worker shuts down: a send that completed should not be repeated.
const recordTimeout = 5 * time.Second

// Worker delivers outbox messages. Run it on every instance; the leases
// keep any two workers from sending one message at the same time.
type Worker struct {
	store   sessiond.OutboxStore
	senders map[string]Sender
	// channels are the keys of senders: the worker claims only their
	// messages.
	channels []string
	opt      Options
	wake     chan struct{} // Notify: messages committed
	freed    chan struct{} // a send finished: a slot is free

	mu       sync.Mutex
	inflight map[string]int // sends in flight per target
	total    int
}

// New returns a worker that claims from store and sends each message with
// senders[m.Channel].
func New(store sessiond.OutboxStore, senders map[string]Sender, opt Options) *Worker {
	opt.defaults()
	channels := make([]string, 0, len(senders))
	for ch := range senders {
		channels = append(channels, ch)
	}
	slices.Sort(channels)
	return &Worker{store: store, senders: senders, channels: channels, opt: opt, wake: make(chan struct{}, 1), freed: make(chan struct{}, 1), inflight: map[string]int{}}
}

// Notify wakes the worker to claim at once: call it after committing
// outbox messages, so that they leave without waiting for the next poll.
func (w *Worker) Notify() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends, then waits for the sends in flight (which
// ctx's end also cancels) and returns. A send cut short by the end is not
// counted: its lease is released, and it is sent again later.
func (w *Worker) Run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	idle := w.opt.PollMin
	var statsAt time.Time
	for ctx.Err() == nil {
		claimed, full, err := w.fill(ctx, &wg)
		if (claimed > 0 || full) && w.opt.Clock().Sub(statsAt) >= w.opt.PollMax {
			// Busy rounds refresh the gauges too, at most once a PollMax.
			statsAt = w.opt.Clock()
			w.stats(ctx)
		}
		var wait time.Duration
		switch {
		case err != nil:
			if ctx.Err() == nil {
				w.opt.Logger.Error("outbox claim failed", "err", err)
			}
			wait, idle = idle, min(2*idle, w.opt.PollMax)
		case full:
			// Every slot is busy: a finished send wakes us.
			wait, idle = w.opt.PollMax, w.opt.PollMin
		case claimed > 0:
			// There may be more due right now.
			idle = w.opt.PollMin
			continue
		default:
			wait, idle = idle, min(2*idle, w.opt.PollMax)
			statsAt = w.opt.Clock()
			if due := w.stats(ctx); !due.IsZero() {
				if d := due.Sub(w.opt.Clock()); d > 0 {
					wait = min(wait, d)
				}
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
		case <-w.wake:
			idle = w.opt.PollMin
			t.Stop()
			t = time.NewTimer(w.opt.NotifyDelay)
			select {
			case <-ctx.Done():
			case <-t.C:
			}
		case <-w.freed:
			idle = w.opt.PollMin
		case <-t.C:
		}
		t.Stop()
	}
}

// fill claims as many due messages as there are free slots, skipping the
// targets whose slots are all taken, and starts a send for each. A claimed
// message whose target filled up within the batch is released at once, so
// that no message waits on a slow target under this worker's lease.
func (w *Worker) fill(ctx context.Context, wg *sync.WaitGroup) (claimed int, full bool, err error) {
	w.mu.Lock()
	free := w.opt.Concurrency - w.total
	var skip []string
	for target, n := range w.inflight {
		if n >= w.opt.PerTarget {
			skip = append(skip, target)
		}
	}
	w.mu.Unlock()
	if free <= 0 {
		return 0, true, nil
	}
	msgs, err := w.store.ClaimOutbox(ctx, sessiond.OutboxClaim{
		Owner: w.opt.Owner, Now: w.opt.Clock(), Lease: w.opt.Lease, Limit: free, SkipTargets: skip,
		Channels: w.channels,
	})
	if err != nil {
		return 0, false, err
	}
	var release []string
	w.mu.Lock()
	for _, m := range msgs {
		if w.inflight[m.Target] >= w.opt.PerTarget {
			release = append(release, m.ID)
			continue
		}
		w.inflight[m.Target]++
		w.total++
		wg.Go(func() { w.deliver(ctx, m) })
	}
	full = w.total >= w.opt.Concurrency
	w.mu.Unlock()
	if len(release) > 0 {
		if err := w.store.ReleaseOutbox(context.WithoutCancel(ctx), w.opt.Owner, release); err != nil {
			w.opt.Logger.Error("outbox release failed", "err", err)
		}
	}
	return len(msgs) - len(release), full, nil
}

// deliver sends m and records the outcome, then frees m's slot.
func (w *Worker) deliver(ctx context.Context, m sessiond.OutboxMessage) {
	defer func() {
		w.mu.Lock()
		if w.inflight[m.Target]--; w.inflight[m.Target] == 0 {
			delete(w.inflight, m.Target)
		}
		w.total--
		w.mu.Unlock()
		select {
		case w.freed <- struct{}{}:
		default:
		}
	}()
	err := w.send(ctx, m)
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), recordTimeout)
	defer cancel()
	if err != nil && ctx.Err() != nil {
		// Cut short by shutdown: not the receiver's fault, not an attempt.
		if err := w.store.ReleaseOutbox(rctx, w.opt.Owner, []string{m.ID}); err != nil {
			w.opt.Logger.Error("outbox release failed", "id", m.ID, "err", err)
		}
		return
	}
	a := sessiond.OutboxAttempt{ID: m.ID, At: w.opt.Clock(), Status: sessiond.OutboxDelivered, LastStatus: "delivered"}
	outcome := outcomeDelivered
	if err != nil {
		status, permanent := classify(err)
		a.LastStatus = status
		delay, giveUp := w.opt.Backoff(m.Attempts + 1)
		if permanent || giveUp {
			a.Status, outcome = sessiond.OutboxFailed, outcomeFailed
		} else {
			a.Status, a.NextAttemptAt, outcome = sessiond.OutboxPending, a.At.Add(delay), outcomeRetry
		}
	}
	switch err := w.store.RecordOutboxAttempt(rctx, w.opt.Owner, a); {
	case errors.Is(err, sessiond.ErrLeaseLost):
		outcome = outcomeLeaseLost
	case err != nil:
		// The lease runs out and the message is sent again: at least once.
		w.opt.Logger.Error("outbox record failed", "id", m.ID, "err", err)
		return
	}
	if w.opt.Metrics != nil {
		w.opt.Metrics.count(m.Channel, outcome)
	}
}

func (w *Worker) send(ctx context.Context, m sessiond.OutboxMessage) error {
	s, ok := w.senders[m.Channel]
	if !ok {
		return Retry("no sender for channel "+m.Channel, nil)
	}
	ctx, cancel := context.WithTimeout(ctx, w.opt.SendTimeout)
	defer cancel()
	return s.Send(ctx, m)
}

// stats refreshes the gauges and returns when the next pending message is
// due (zero if none, or if the store did not answer).
func (w *Worker) stats(ctx context.Context) time.Time {
	st, err := w.store.OutboxStats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			w.opt.Logger.Error("outbox stats failed", "err", err)
		}
		return time.Time{}
	}
	if m := w.opt.Metrics; m != nil {
		m.pending.Set(float64(st.Pending))
		m.mailPending.Set(float64(st.PendingMail))
		age := 0.0
		if !st.OldestPending.IsZero() {
			age = max(0, w.opt.Clock().Sub(st.OldestPending).Seconds())
		}
		m.oldest.Set(age)
	}
	return st.NextDue
}
