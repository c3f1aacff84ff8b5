package sessiond

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"time"
)

// AdminKeyPrefix starts every admin key, so that a key pasted into the wrong
// place (a log, a ticket) is recognisable and secret scanners can match it.
const AdminKeyPrefix = "sdadm_"

// NewAdminKey returns a fresh admin key (AdminKeyPrefix and the base64url of
// 32 random bytes) and the hash to store for it.
func NewAdminKey() (key string, hash []byte) {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand, Go 1.24+)
	key = AdminKeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	return key, HashAdminKey(key)
}

// HashAdminKey is what the database holds of an admin key. A key carries
// 256 random bits, so a fast hash is enough: there is nothing to guess.
func HashAdminKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// maxAdminKeyName bounds a key's name, which appears in every event the
// key causes.
const maxAdminKeyName = 64

// ValidAdminKeyName reports whether name may name an admin key: 1 to 64
// letters, digits, '.', '_' or '-', so that it reads well in an audit and
// needs no quoting in a shell. CodeInvalidRequest otherwise.
func ValidAdminKeyName(name string) error {
	if name == "" || len(name) > maxAdminKeyName {
		return Errorf(CodeInvalidRequest, "an admin key's name must have 1 to %d characters", maxAdminKeyName)
	}
	if strings.IndexFunc(name, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}) >= 0 {
		return Errorf(CodeInvalidRequest, "an admin key's name may hold only letters, digits, '.', '_' and '-'")
	}
	return nil
}

// AdminKeyStore persists admin keys.
type AdminKeyStore interface {
	// CreateAdminKey stores k. CodeInvalidRequest if its name is taken,
	// revoked keys included, so that a name in the audit trail means one key.
	CreateAdminKey(ctx context.Context, k *AdminKey) error
	// AdminKeys lists every key, revoked ones too, oldest first.
	AdminKeys(ctx context.Context) ([]AdminKey, error)
	// AdminKeyByHash returns the key with that hash. CodeNotFound.
	AdminKeyByHash(ctx context.Context, hash []byte) (*AdminKey, error)
	// RevokeAdminKey revokes the key named name at now; a revoked key
	// stays revoked at its first revocation time. CodeNotFound.
	RevokeAdminKey(ctx context.Context, name string, now time.Time) error
	// TouchAdminKey sets the key's last use to now unless it is later.
	TouchAdminKey(ctx context.Context, name string, now time.Time) error
}

// SecretKindWebhook is a webhook endpoint's signing secret, as StoredSecret
// names it; Name is the endpoint id.
const SecretKindWebhook = "webhook_secret"

// AdminStore is what the admin API's use cases need of a store besides
// Store: the events and webhook endpoints to list and change, and the keys
// that authenticate the calls.
type AdminStore interface {
	EventStore
	OutboxStore
	AdminKeyStore
	// ListEvents returns at most q.Limit events matching q's user and
	// type, oldest first (by occurred_at, then id), after the event
	// q.After if it is set. CodeInvalidRequest if q.After names no event
	// (never issued, or swept by retention).
	ListEvents(ctx context.Context, q EventQuery) ([]Event, error)
	// WebhookEndpoints lists every endpoint, oldest first, with secrets.
	WebhookEndpoints(ctx context.Context) ([]WebhookEndpoint, error)
	// DeleteWebhookEndpoint removes endpoint id and its pending
	// deliveries. CodeNotFound.
	DeleteWebhookEndpoint(ctx context.Context, id string) error
	// DeleteExpiredAccountTokens deletes at most limit account tokens
	// expired by now, used or not, and returns how many.
	DeleteExpiredAccountTokens(ctx context.Context, now time.Time, limit int) (int, error)
	// DeleteExpiredMFAChallenges deletes at most limit MFA challenges
	// (unfinished logins) expired at now and returns how many it deleted.
	DeleteExpiredMFAChallenges(ctx context.Context, now time.Time, limit int) (int, error)
	// ExpireOutbox fails at most limit pending outbox messages that have
	// expired by now and are under no live lease: status failed, last
	// status OutboxExpired, payload erased. It returns how many.
	ExpireOutbox(ctx context.Context, now time.Time, limit int) (int, error)
	// DeleteEventsBefore deletes at most limit events that occurred
	// before cutoff, and returns how many.
	DeleteEventsBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// DeleteFinishedOutboxBefore deletes at most limit delivered or
	// failed outbox messages created before cutoff, and returns how many.
	DeleteFinishedOutboxBefore(ctx context.Context, cutoff time.Time, limit int) (int, error)
	// ResealWebhookSecrets is ResealSecrets for the endpoints' signing
	// secrets (Kind SecretKindWebhook, Name the endpoint id, Value the
	// stored text).
	ResealWebhookSecrets(ctx context.Context, reseal func(StoredSecret) ([]byte, error)) (int, error)
	// ResealTOTPSecrets is ResealSecrets for the TOTP factors' secrets,
	// pending ones included (Kind SecretKindTOTP, Name the user id).
	ResealTOTPSecrets(ctx context.Context, reseal func(StoredSecret) ([]byte, error)) (int, error)
}

// AdminAuthenticator admits admin API calls and records them.
type AdminAuthenticator interface {
	// AuthenticateAdmin returns the actor of a presented admin key.
	// CodeInvalidToken for an unknown or revoked key.
	AuthenticateAdmin(ctx context.Context, key string) (Actor, error)
	// RecordAdminRequest records one admin call as an EventAdminRequest.
	RecordAdminRequest(ctx context.Context, r AdminRequest) error
}

// AdminRequest is one admin API call, as its event records it.
type AdminRequest struct {
	Actor     Actor
	Method    string
	Path      string
	Status    int
	IP        string
	UserAgent string
}
