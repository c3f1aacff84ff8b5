package sessiond

import (
	"encoding/json"
	"fmt"
	"time"
)

// Event records one state change that matters to an operator. It is written
// in the same transaction as the change, so an event exists exactly when its
// change committed, and it is the body of every webhook delivery.
type Event struct {
	ID         string
	Type       string
	OccurredAt time.Time
	UserID     string
	SessionID  string
	IP         string
	UserAgent  string
	// Data holds what is particular to the type, e.g. "reason" of
	// session.ended; nil or empty when there is nothing.
	Data map[string]any
}

// Event types. A subscriber filters on these; the set only grows.
const (
	EventUserCreated            = "user.created"
	EventUserUpdated            = "user.updated" // data: what changed (disabled, email_verified, email)
	EventUserDeleted            = "user.deleted"
	EventSessionCreated         = "session.created" // data.method: a SessionMethod
	EventSessionEnded           = "session.ended"   // data.reason: an EndReason
	EventLoginFailed            = "login.failed"    // known users only; data.reason
	EventPasswordChanged        = "password.changed"
	EventPasswordResetRequested = "password.reset_requested"
	EventPasswordReset          = "password.reset"
	EventEmailVerificationSent  = "email.verification_sent"
	EventEmailVerified          = "email.verified"
	EventMFAEnabled             = "mfa.enabled"
	EventMFADisabled            = "mfa.disabled"
	EventPasskeyAdded           = "passkey.added"
	EventPasskeyRemoved         = "passkey.removed"
	EventAdminRequest           = "admin.request" // data: actor, method, path, status
)

// EventTypes lists every event type, for validating a webhook subscription.
var EventTypes = []string{
	EventUserCreated, EventUserUpdated, EventUserDeleted,
	EventSessionCreated, EventSessionEnded, EventLoginFailed,
	EventPasswordChanged, EventPasswordResetRequested, EventPasswordReset,
	EventEmailVerificationSent, EventEmailVerified,
	EventMFAEnabled, EventMFADisabled, EventPasskeyAdded, EventPasskeyRemoved,
	EventAdminRequest,
}

// Why a session ended: data.reason of session.ended.
const (
	EndLogout          = "logout"
	EndLogoutAll       = "logout_all"
	EndRevoked         = "revoked" // the user ended it from another of their sessions
	EndEvicted         = "evicted"
	EndReuseDetected   = "reuse_detected"
	EndPasswordChanged = "password_changed"
	EndPasswordReset   = "password_reset"
	EndUserDisabled    = "user_disabled"
	EndUserDeleted     = "user_deleted"
	EndAdmin           = "admin" // an operator or a backend, through the admin API
)

// How a session was created: data.method of session.created.
const (
	MethodPassword = "password"
	MethodPasskey  = "passkey"
	MethodMFA      = "mfa"
	MethodExternal = "external"
)

// eventTimeLayout is RFC 3339 with exactly six fractional digits: the
// microsecond precision the stores keep, at a fixed width so that the text
// sorts like the instant.
const eventTimeLayout = "2006-01-02T15:04:05.000000Z07:00"

type eventJSON struct {
	ID         string         `json:"id"`
	Type       string         `json:"type"`
	OccurredAt string         `json:"occurred_at"`
	UserID     string         `json:"user_id,omitempty"`
	SessionID  string         `json:"session_id,omitempty"`
	IP         string         `json:"ip,omitempty"`
	UserAgent  string         `json:"user_agent,omitempty"`
	Data       map[string]any `json:"data,omitempty"`
}

// MarshalJSON writes the event's public form: members that do not apply are
// absent, and occurred_at is UTC RFC 3339 with microseconds.
func (e Event) MarshalJSON() ([]byte, error) {
	return json.Marshal(eventJSON{
		ID: e.ID, Type: e.Type, OccurredAt: Now(e.OccurredAt).Format(eventTimeLayout),
		UserID: e.UserID, SessionID: e.SessionID, IP: e.IP, UserAgent: e.UserAgent, Data: e.Data,
	})
}

// UnmarshalJSON reads the form MarshalJSON writes.
func (e *Event) UnmarshalJSON(b []byte) error {
	var j eventJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	t, err := time.Parse(time.RFC3339Nano, j.OccurredAt)
	if err != nil {
		return fmt.Errorf("parse occurred_at: %w", err)
	}
	*e = Event{ID: j.ID, Type: j.Type, OccurredAt: Now(t), UserID: j.UserID, SessionID: j.SessionID,
		IP: j.IP, UserAgent: j.UserAgent, Data: j.Data}
	return nil
}
