package sessiond

import (
	"context"
	"time"
)

// SigningKey is an Ed25519 key that signs access tokens. Keys live in the
// database so that every instance sharing it signs and publishes the same set.
//
// A key's life has four stages, all decided by KeySchedule from its times:
// published but not yet signing (CreatedAt to ActivatesAt), so that every
// instance and every verifier's JWKS cache learns it first; signing
// (ActivatesAt to RetiredAt); published only (RetiredAt until every token it
// signed has expired); and erased (its private part deleted, its row kept).
type SigningKey struct {
	ID          string // the JWS "kid"
	Algorithm   string // "EdDSA"
	PrivateKey  []byte // Ed25519 seed (32 bytes); empty once erased
	PublicKey   []byte // Ed25519 public key (32 bytes)
	CreatedAt   time.Time
	ActivatesAt time.Time // signs from then on; zero: from CreatedAt
	RetiredAt   time.Time // zero while no later key supersedes it
}

// Current reports whether k is the newest key, the one no rotation has
// superseded yet. It signs from ActivatesAt on.
func (k *SigningKey) Current() bool { return k.RetiredAt.IsZero() }

// Erased reports whether k's private part has been deleted.
func (k *SigningKey) Erased() bool { return len(k.PrivateKey) == 0 }

// activation is when k starts signing.
func (k *SigningKey) activation() time.Time {
	if k.ActivatesAt.IsZero() {
		return k.CreatedAt
	}
	return k.ActivatesAt
}

// KeyActivationDelay is how long a rotated-in key is only published before it
// signs. It must cover the longest key reload of any instance (at most one
// minute, SESSIOND_KEY_RELOAD) plus the JWKS cache lifetime of verifiers
// (client.Verifier refreshes every five minutes), with room for clock skew
// and a slow reload: 1m + 5m + 4m.
const KeyActivationDelay = 10 * time.Minute

// RetiredKeyMargin keeps a retired key published a little longer than the
// longest-lived token it signed: an instance may go on signing with it until
// its next key reload (at most a minute), and clocks of instances and
// verifiers differ.
const RetiredKeyMargin = 2 * time.Minute

// KeySchedule is the pure rule of key rotation: which key signs and which
// keys are published at an instant, for access tokens that live AccessTTL.
type KeySchedule struct {
	AccessTTL time.Duration
}

// SignsAt reports whether k may sign at t: it has a private part, has
// activated, and has not retired.
func (s KeySchedule) SignsAt(k *SigningKey, t time.Time) bool {
	return !k.Erased() && !t.Before(k.activation()) && (k.RetiredAt.IsZero() || t.Before(k.RetiredAt))
}

// PublishedAt reports whether k belongs in the JWKS at t: from its creation
// (before it signs) until every token it can have signed has expired.
func (s KeySchedule) PublishedAt(k *SigningKey, t time.Time) bool {
	return k.RetiredAt.IsZero() || t.Before(s.PublishedUntil(k))
}

// PublishedUntil is when a retired k leaves the JWKS; zero for the current key.
func (s KeySchedule) PublishedUntil(k *SigningKey) time.Time {
	if k.RetiredAt.IsZero() {
		return time.Time{}
	}
	return k.RetiredAt.Add(s.AccessTTL + RetiredKeyMargin)
}

// ErasableAt reports whether k's private part should be deleted at t: no
// token it signed is alive any more, so nothing needs it, and a database
// dump should not hold it.
func (s KeySchedule) ErasableAt(k *SigningKey, t time.Time) bool {
	return !k.Erased() && !s.PublishedAt(k, t)
}

// Signer returns the key that signs at t, nil if there is none. Of several
// keys that may sign (an emergency rotation activated while a planned one
// was pending), the one activated last wins. Should none be active (this
// instance's clock runs behind the one that rotated), the earliest pending
// key that has not retired signs, so that an instance never stops issuing
// tokens over clock skew.
func (s KeySchedule) Signer(keys []SigningKey, t time.Time) *SigningKey {
	var best *SigningKey
	for i := range keys {
		k := &keys[i]
		if s.SignsAt(k, t) && (best == nil || newerActivation(k, best)) {
			best = k
		}
	}
	if best != nil {
		return best
	}
	for i := range keys {
		k := &keys[i]
		if k.Erased() || (!k.RetiredAt.IsZero() && !t.Before(k.RetiredAt)) {
			continue
		}
		if best == nil || k.activation().Before(best.activation()) {
			best = k
		}
	}
	return best
}

// newerActivation orders keys by activation, then creation, then kid.
func newerActivation(a, b *SigningKey) bool {
	if !a.activation().Equal(b.activation()) {
		return a.activation().After(b.activation())
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.After(b.CreatedAt)
	}
	return a.ID > b.ID
}

// Published returns the keys of the JWKS at t, in the order given.
func (s KeySchedule) Published(keys []SigningKey, t time.Time) []SigningKey {
	var out []SigningKey
	for i := range keys {
		if s.PublishedAt(&keys[i], t) {
			out = append(out, keys[i])
		}
	}
	return out
}

// Stored secret kinds, as StoredSecret.Kind names them.
const (
	SecretKindSigningKey = "signing_key" // a SigningKey's private part; Name is the kid
	SecretKindServer     = "secret"      // a server secret of EnsureSecret; Name is its name
)

// StoredSecret is one secret value as the database holds it (sealed or in
// the clear), for re-encryption.
type StoredSecret struct {
	Kind  string // SecretKindSigningKey, SecretKindServer, SecretKindWebhook or SecretKindTOTP
	Name  string
	Value []byte
}

// KeyStore persists signing keys and server secrets.
type KeyStore interface {
	// EnsureCurrentKey stores k as the current key unless there already is
	// one, and returns the current key; concurrent callers on one database
	// all get the same key.
	EnsureCurrentKey(ctx context.Context, k *SigningKey) (*SigningKey, error)
	// RotateKey makes k the current key, signing from k.ActivatesAt (now if
	// zero). Every key that would sign past that instant retires then, so
	// that the signing periods of keys never overlap.
	RotateKey(ctx context.Context, k *SigningKey, now time.Time) error
	// ListKeys returns every key, newest first.
	ListKeys(ctx context.Context) ([]SigningKey, error)
	// EraseRetiredKeys deletes the private part of every key retired at or
	// before cutoff, and returns how many it erased.
	EraseRetiredKeys(ctx context.Context, cutoff time.Time) (int, error)
	// EnsureSecret stores value under name unless a value exists, and returns
	// the stored value; concurrent callers all get the same one.
	EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error)
	// ResealSecrets hands every stored secret (server secrets and the
	// private parts of unerased keys) to reseal and stores what it returns
	// in its place (nil: keep), in one transaction that holds them locked;
	// it returns how many it replaced. An error from reseal rolls back all.
	ResealSecrets(ctx context.Context, reseal func(StoredSecret) ([]byte, error)) (int, error)
}
