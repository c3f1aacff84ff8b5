package sessiond

import (
	"context"
	"time"
)

// Actor is who made an admin call: the name of the admin key it presented.
// Every change made through the admin API records it in its event's
// data.actor, so an audit can answer "which key did this".
type Actor struct {
	KeyName string
}

// AdminKey is a credential of the admin API. Only the SHA-256 of the key
// is stored; the key itself is shown once, when it is made.
type AdminKey struct {
	Name       string
	Hash       []byte // SHA-256 of the whole key
	CreatedAt  time.Time
	RevokedAt  time.Time // zero while the key is valid
	LastUsedAt time.Time // zero before its first use
}

// UserQuery selects users for the admin list: one exact (normalized)
// email, or a page of every user in id order after Cursor.
type UserQuery struct {
	Email  string
	Limit  int
	Cursor string
}

// NewUser is an account an operator creates or imports: with Password
// (checked like a signup's), or with PasswordHash, an argon2id or bcrypt
// PHC string from another system that is rehashed at the next login.
type NewUser struct {
	Email         string
	Password      string
	PasswordHash  string
	EmailVerified bool
}

// UserPatch changes what an operator may change; nil leaves a field as it is.
type UserPatch struct {
	Disabled      *bool
	EmailVerified *bool
}

// EventQuery selects events for the admin list, oldest first: those after
// the event id After, optionally of one user and one type.
type EventQuery struct {
	UserID string
	Type   string
	After  string
	Limit  int
}

// AdminService is the admin API's use cases, implemented by package auth.
// Each change it makes commits together with its events, which carry the
// actor.
type AdminService interface {
	// Users lists users (or finds one by exact email); next is the cursor
	// of the following page, empty at the end.
	Users(ctx context.Context, q UserQuery) (users []User, next string, err error)
	// CreateUser creates or imports a user. CodeInvalidEmail,
	// CodeWeakPassword, CodeEmailTaken, CodeInvalidRequest (neither or both
	// of password and hash, or a hash that is not a supported PHC string).
	CreateUser(ctx context.Context, a Actor, u NewUser) (*User, error)
	// User returns one user. CodeNotFound.
	User(ctx context.Context, id string) (*User, error)
	// UpdateUser applies p. Disabling ends every session of the user in
	// the same transaction. CodeNotFound.
	UpdateUser(ctx context.Context, a Actor, id string, p UserPatch) (*User, error)
	// DeleteUser removes the user and everything of theirs. CodeNotFound.
	DeleteUser(ctx context.Context, a Actor, id string) error
	// UserSessions lists the user's live sessions, most recently used
	// first. CodeNotFound for an unknown user.
	UserSessions(ctx context.Context, id string) ([]Session, error)
	// EndUserSessions ends every session of the user. CodeNotFound.
	EndUserSessions(ctx context.Context, a Actor, id string) error
	// EndSession ends one session. CodeNotFound.
	EndSession(ctx context.Context, a Actor, sessionID string) error
	// CreateSession opens a session for a user the calling backend
	// authenticated by its own means, through the same cap and eviction as
	// a login; its access tokens carry amr ["ext"]. CodeNotFound,
	// CodeAccountDisabled.
	CreateSession(ctx context.Context, a Actor, userID string, c ClientInfo) (*Tokens, error)

	// Events lists events oldest first; next is the id to pass as After
	// for the following page, empty at the end.
	Events(ctx context.Context, q EventQuery) (events []Event, next string, err error)
	// CreateWebhook registers an endpoint; its Secret is set and returned
	// only here. CodeInvalidRequest for a bad URL or an unknown event type.
	CreateWebhook(ctx context.Context, a Actor, url string, events []string) (*WebhookEndpoint, error)
	// Webhooks lists the endpoints, without their secrets.
	Webhooks(ctx context.Context) ([]WebhookEndpoint, error)
	// DeleteWebhook removes an endpoint and its pending deliveries. CodeNotFound.
	DeleteWebhook(ctx context.Context, a Actor, id string) error
	// WebhookDeliveries lists an endpoint's newest deliveries. CodeNotFound.
	WebhookDeliveries(ctx context.Context, id string) ([]Delivery, error)
	// Redeliver sends an event to an endpoint again. CodeNotFound.
	Redeliver(ctx context.Context, a Actor, webhookID, eventID string) error
}
