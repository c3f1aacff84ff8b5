package sessiond

import (
	"context"
	"time"
)

// Outbox channels: how a message leaves.
const (
	ChannelWebhook = "webhook" // Target is a webhook endpoint id
	ChannelMail    = "mail"    // Target is a mail address
)

// Outbox message statuses. A message is pending until it is delivered or
// its retries run out (failed); an operator may set either back to pending.
const (
	OutboxPending   = "pending"
	OutboxDelivered = "delivered"
	OutboxFailed    = "failed"
)

// OutboxMessage is one delivery of one event over one channel to one
// target. It is written in the transaction that records the event and sent
// afterwards by the outbox worker, at least once.
type OutboxMessage struct {
	ID      string
	Channel string // ChannelWebhook or ChannelMail
	Target  string // the webhook endpoint id, or the mail address
	EventID string
	Payload []byte // what is sent: for a webhook, the event's JSON
	// Attempts counts the sends tried so far.
	Attempts      int
	Status        string // OutboxPending, OutboxDelivered or OutboxFailed
	NextAttemptAt time.Time
	CreatedAt     time.Time
	// LastAttemptAt and LastStatus describe the latest attempt, zero before
	// the first. LastStatus is short and operator-facing: "HTTP 500",
	// "timeout", "connection refused", "delivered".
	LastAttemptAt time.Time
	LastStatus    string
	// ExpiresAt, when set, is when the message stops being worth sending:
	// the expiry of the token its payload carries. From then on no worker
	// claims it, and the sweep fails it (LastStatus OutboxExpired) and
	// erases its payload, so that an undelivered token does not outlive
	// its use in the database. Zero: the message never expires.
	ExpiresAt time.Time
}

// OutboxExpired is the LastStatus of a message the sweep failed because
// it expired before it could be delivered.
const OutboxExpired = "expired"

// OutboxClaim asks for due messages under a lease.
type OutboxClaim struct {
	// Owner names the claiming worker; only it may record the outcome
	// while the lease lasts.
	Owner string
	Now   time.Time
	// Lease is how long the claim holds. A worker that crashed is taken
	// over once it ends, so it must outlast a send by a margin.
	Lease time.Duration
	Limit int
	// SkipTargets are targets the worker has no capacity for: their
	// messages stay unclaimed for another worker, or a later claim.
	SkipTargets []string
	// Channels, when set, limits the claim to messages of these channels:
	// those the worker has a sender for. A message of another channel
	// stays pending, its attempts untouched, until a worker that can send
	// it comes (mail waits so while no SMTP server is configured).
	Channels []string
}

// OutboxAttempt is the outcome of one send, as the worker decided it.
type OutboxAttempt struct {
	ID string
	At time.Time
	// Status is OutboxDelivered, OutboxFailed (given up), or OutboxPending
	// (to be retried at NextAttemptAt).
	Status        string
	NextAttemptAt time.Time
	LastStatus    string
}

// OutboxStats summarises the pending messages, for metrics and for the
// worker to know when to look again.
type OutboxStats struct {
	Pending int
	// PendingMail is how many of Pending are of ChannelMail.
	PendingMail   int
	OldestPending time.Time // created_at of the oldest pending message; zero if none
	NextDue       time.Time // earliest next_attempt_at of a pending message; zero if none
}

// ErrLeaseLost is returned by RecordOutboxAttempt when the caller's lease
// has ended or another worker has taken the message over: the outcome is
// dropped, and the message's current owner decides its fate.
var ErrLeaseLost = &Error{Code: CodeNotFound, Message: "outbox lease lost"}

// OutboxStore is what the outbox worker needs of a store.
type OutboxStore interface {
	// InsertOutbox stores new messages (status pending, zero attempts).
	// A second message for the same channel, target and event is refused
	// with CodeInvalidRequest.
	InsertOutbox(ctx context.Context, msgs ...*OutboxMessage) error
	// ClaimOutbox leases up to c.Limit pending messages whose
	// next_attempt_at has come, that have not expired at c.Now, and whose
	// previous lease, if any, has ended, oldest due first. Concurrent claims never return one message
	// twice while its lease lasts.
	ClaimOutbox(ctx context.Context, c OutboxClaim) ([]OutboxMessage, error)
	// ReleaseOutbox ends owner's leases on ids at once, untouched, so that
	// the messages are due again without waiting for the lease to run out.
	ReleaseOutbox(ctx context.Context, owner string, ids []string) error
	// RecordOutboxAttempt stores the outcome of one attempt, counts it, and
	// ends the lease: only while owner holds an unexpired lease on the
	// message (at a.At), else ErrLeaseLost.
	RecordOutboxAttempt(ctx context.Context, owner string, a OutboxAttempt) error
	// OutboxStats summarises the pending messages.
	OutboxStats(ctx context.Context) (OutboxStats, error)
}

// WebhookEndpoint is an operator's subscription: events of Events (or "*"
// for all) are POSTed to URL, signed with Secret.
type WebhookEndpoint struct {
	ID        string
	URL       string
	Events    []string
	Secret    string // whsec_…: a secret; shown once, at creation
	CreatedAt time.Time
}

// Delivery is one outbox message as an operator sees it in the admin API.
type Delivery struct {
	EventID       string
	Status        string
	Attempts      int
	LastAttemptAt time.Time
	LastStatus    string
}

// EventStore records events and the deliveries they cause, and lets
// operators inspect and replay webhook deliveries.
type EventStore interface {
	// InsertEvent stores e; a second event with its id is refused with
	// CodeInvalidRequest.
	InsertEvent(ctx context.Context, e *Event) error
	// Events lists at most q.Limit events oldest first (by occurred_at,
	// then id): those after the event q.After if it is set, of q.UserID and
	// of q.Type where set.
	Events(ctx context.Context, q EventQuery) ([]Event, error)
	// CreateWebhookEndpoint stores a new endpoint.
	CreateWebhookEndpoint(ctx context.Context, w *WebhookEndpoint) error
	// WebhookEndpoint returns the endpoint id; CodeNotFound if none.
	WebhookEndpoint(ctx context.Context, id string) (*WebhookEndpoint, error)
	// WebhookDeliveries lists the newest (at most limit) deliveries to
	// endpoint id, newest first.
	WebhookDeliveries(ctx context.Context, id string, limit int) ([]Delivery, error)
	// RedeliverOutbox sets the delivery of eventID over channel to target
	// back to pending, due at now, with its attempts reset so that it gets
	// a full schedule of retries again. A delivery still pending is left
	// as it is. CodeNotFound if there is no such delivery.
	RedeliverOutbox(ctx context.Context, channel, target, eventID string, now time.Time) error
	// PendingMail lists at most limit mail messages still pending, oldest
	// first, for an operator without an SMTP server.
	PendingMail(ctx context.Context, limit int) ([]OutboxMessage, error)
}

// retrySchedule is the nominal wait after each failed attempt; the last
// entry repeats.
var retrySchedule = []time.Duration{
	5 * time.Second, 30 * time.Second, 2 * time.Minute, 10 * time.Minute,
	time.Hour, 6 * time.Hour,
}

// RetryWindow bounds how long a message is retried: the nominal waits of
// the schedule never add up to more than this.
const RetryWindow = 24 * time.Hour

// NextAttempt is the retry rule. Given the number of attempts made so far
// (at least 1) and a source of uniform numbers in [0, 1), it returns how
// long to wait before the next attempt, or giveUp once the schedule's total
// wait would pass RetryWindow. The waits are about 5s, 30s, 2m, 10m, 1h,
// then every 6h, each spread by ±20% so that messages that failed together
// (a receiver's outage) do not retry in lockstep. Giving up is decided on
// the nominal waits, so jitter never changes how many attempts a message
// gets: nine, the last about 19h after the first.
func NextAttempt(attempts int, jitter func() float64) (delay time.Duration, giveUp bool) {
	if attempts < 1 {
		attempts = 1
	}
	var total time.Duration
	for i := range attempts {
		total += retryStep(i)
	}
	if total > RetryWindow {
		return 0, true
	}
	d := retryStep(attempts - 1)
	f := 0.8 + 0.4*jitter()
	return time.Duration(float64(d) * f), false
}

func retryStep(i int) time.Duration {
	return retrySchedule[min(i, len(retrySchedule)-1)]
}
