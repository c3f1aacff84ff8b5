// Package outbox delivers what the stores' outbox holds: a Worker, run on
// every instance, claims due messages under a lease, hands each to the
// Sender registered for its channel, and records the outcome, retrying
// failures on sessiond.NextAttempt's schedule. Delivery is at least once:
// a message whose outcome was not recorded (a crash, a shutdown mid-send)
// is sent again when its lease ends, so receivers deduplicate by event id.
//
// Start reading at Worker.Run. The package knows nothing of HTTP or mail:
// package webhook provides the webhook Sender.
package outbox

import (
	"context"
	"errors"

	"github.com/sessiond/sessiond"
)

// Sender delivers one message over its channel. A nil error means
// delivered; any other error is retried on the schedule, unless it is
// Permanent. Send must respect ctx, which carries the per-send timeout.
type Sender interface {
	Send(ctx context.Context, m sessiond.OutboxMessage) error
}

// Error is a failed send as a Sender describes it.
type Error struct {
	// Status is the short operator-facing outcome stored as the
	// message's last status: "HTTP 500", "timeout", "connection refused".
	Status string
	// Permanent failures are not retried: the message is failed at once.
	Permanent bool
	Err       error
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Status + ": " + e.Err.Error()
	}
	return e.Status
}

func (e *Error) Unwrap() error { return e.Err }

// Retry reports a failure worth trying again, described by status.
func Retry(status string, err error) error { return &Error{Status: status, Err: err} }

// Permanent reports a failure no retry can mend, described by status.
func Permanent(status string, err error) error {
	return &Error{Status: status, Permanent: true, Err: err}
}

// maxStatus bounds a stored status, which may come from an error's text.
const maxStatus = 200

// classify turns a Sender's error into the stored status and whether to
// retry.
func classify(err error) (status string, permanent bool) {
	var e *Error
	switch {
	case errors.As(err, &e):
		status, permanent = e.Status, e.Permanent
	case errors.Is(err, context.DeadlineExceeded):
		status = "timeout"
	default:
		status = err.Error()
	}
	if len(status) > maxStatus {
		status = status[:maxStatus]
	}
	return status, permanent
}
