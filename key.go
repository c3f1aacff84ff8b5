package sessiond

import (
	"context"
	"time"
)

// SigningKey is an Ed25519 key that signs access tokens. Keys live in the
// database so that every instance sharing it signs and publishes the same set.
type SigningKey struct {
	ID         string // the JWS "kid"
	Algorithm  string // "EdDSA"
	PrivateKey []byte // Ed25519 seed (32 bytes)
	PublicKey  []byte // Ed25519 public key (32 bytes)
	CreatedAt  time.Time
	RetiredAt  time.Time // zero while the key is current
}

// Current reports whether k is the key new tokens are signed with.
func (k *SigningKey) Current() bool { return k.RetiredAt.IsZero() }

// KeyStore persists signing keys and server secrets.
type KeyStore interface {
	// EnsureCurrentKey stores k as the current key unless there already is
	// one, and returns the current key; concurrent callers on one database
	// all get the same key.
	EnsureCurrentKey(ctx context.Context, k *SigningKey) (*SigningKey, error)
	// RotateKey retires the current key at now and makes k current.
	RotateKey(ctx context.Context, k *SigningKey, now time.Time) error
	// ListKeys returns every key, newest first.
	ListKeys(ctx context.Context) ([]SigningKey, error)
	// EnsureSecret stores value under name unless a value exists, and returns
	// the stored value; concurrent callers all get the same one.
	EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error)
}
