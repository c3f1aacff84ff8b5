package app

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/seal"
)

// SealKeys parses the encryption keys of SESSIOND_ENCRYPTION_KEY or the
// file SESSIOND_ENCRYPTION_KEY_FILE names; nil when neither is set.
func (c *Config) SealKeys() (*seal.Keyring, error) {
	s := c.EncryptionKey
	if c.EncryptionKeyFile != "" {
		if s != "" {
			return nil, fmt.Errorf("%s and %s_FILE are both set; set one", seal.Setting, seal.Setting)
		}
		b, err := os.ReadFile(c.EncryptionKeyFile)
		if err != nil {
			return nil, fmt.Errorf("%s_FILE: %v", seal.Setting, err)
		}
		s = strings.TrimSpace(string(b))
		if s == "" {
			return nil, fmt.Errorf("%s_FILE: %s is empty", seal.Setting, c.EncryptionKeyFile)
		}
	}
	k, err := seal.Parse(s)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", seal.Setting, err)
	}
	return k, nil
}

// sealedStore is the one place where stored secrets are sealed and opened:
// every signing key's private part and every server secret (EnsureSecret)
// pass through it on their way into and out of the database, so the stores
// stay unaware of encryption and a secret added later is sealed by just
// storing it with EnsureSecret.
type sealedStore struct {
	Store
	keys *seal.Keyring
	// clear counts values read in the clear while a key is set: a database
	// from before encryption, until `sessiond secrets reencrypt`.
	clear atomic.Int64
}

// Sealed returns db with its stored secrets sealed and opened under cfg's
// encryption keys, as New uses it, for commands that write keys or
// secrets without an App (`sessiond keys rotate`).
func Sealed(db Store, cfg Config) (Store, error) {
	keys, err := cfg.SealKeys()
	if err != nil {
		return nil, err
	}
	return withSealing(db, keys), nil
}

// withSealing wraps db unless it is wrapped already.
func withSealing(db Store, keys *seal.Keyring) *sealedStore {
	if s, ok := db.(*sealedStore); ok {
		return s
	}
	return &sealedStore{Store: db, keys: keys}
}

// keyContext and secretContext are the associated data a value is sealed
// for: what it is, so that a value moved to another row does not open.
func keyContext(kid string) string     { return sessiond.SecretKindSigningKey + "/" + kid }
func secretContext(name string) string { return sessiond.SecretKindServer + "/" + name }

func (s *sealedStore) open(context string, stored []byte) ([]byte, error) {
	p, sealed, err := s.keys.Open(context, stored)
	if err != nil {
		return nil, err
	}
	if !sealed && s.keys.Enabled() {
		s.clear.Add(1)
	}
	return p, nil
}

func (s *sealedStore) sealKey(k *sessiond.SigningKey) *sessiond.SigningKey {
	c := *k
	c.PrivateKey = s.keys.Seal(keyContext(k.ID), k.PrivateKey)
	return &c
}

func (s *sealedStore) openKey(k *sessiond.SigningKey) error {
	if k.Erased() {
		return nil
	}
	p, err := s.open(keyContext(k.ID), k.PrivateKey)
	if err != nil {
		return err
	}
	k.PrivateKey = p
	return nil
}

func (s *sealedStore) EnsureCurrentKey(ctx context.Context, k *sessiond.SigningKey) (*sessiond.SigningKey, error) {
	cur, err := s.Store.EnsureCurrentKey(ctx, s.sealKey(k))
	if err != nil {
		return nil, err
	}
	if err := s.openKey(cur); err != nil {
		return nil, err
	}
	return cur, nil
}

func (s *sealedStore) RotateKey(ctx context.Context, k *sessiond.SigningKey, now time.Time) error {
	return s.Store.RotateKey(ctx, s.sealKey(k), now)
}

func (s *sealedStore) ListKeys(ctx context.Context) ([]sessiond.SigningKey, error) {
	keys, err := s.Store.ListKeys(ctx)
	if err != nil {
		return nil, err
	}
	for i := range keys {
		if err := s.openKey(&keys[i]); err != nil {
			return nil, err
		}
	}
	return keys, nil
}

func (s *sealedStore) EnsureSecret(ctx context.Context, name string, value []byte) ([]byte, error) {
	stored, err := s.Store.EnsureSecret(ctx, name, s.keys.Seal(secretContext(name), value))
	if err != nil {
		return nil, err
	}
	return s.open(secretContext(name), stored)
}

// PoolStats forwards the wrapped store's pool statistics, for metrics.
func (s *sealedStore) PoolStats() []sessiond.PoolStats {
	if p, ok := s.Store.(interface{ PoolStats() []sessiond.PoolStats }); ok {
		return p.PoolStats()
	}
	return nil
}

// ReencryptSecrets seals every stored secret (webhook endpoints' signing
// secrets and TOTP factors' secrets included) under the newest key of
// cfg's SESSIOND_ENCRYPTION_KEY: values in the clear, and values sealed
// under an older key. Every value is opened first, so a value no
// configured key opens (a missing old key, tampering) stops it with
// nothing of its kind changed. It returns how many values it rewrote.
func ReencryptSecrets(ctx context.Context, db Store, cfg Config) (int, error) {
	keys, err := cfg.SealKeys()
	if err != nil {
		return 0, err
	}
	if !keys.Enabled() {
		return 0, fmt.Errorf("%s is not set: there is no key to encrypt with", seal.Setting)
	}
	raw := Store(db)
	if s, ok := db.(*sealedStore); ok {
		raw = s.Store
	}
	// The signing keys and server secrets go last: New opens them at
	// start and refuses a database they do not open under, so while
	// anything before them is not resealed yet, a start without the old
	// key is refused too, and running the command again finishes the job.
	total := 0
	for _, step := range []func(context.Context, func(sessiond.StoredSecret) ([]byte, error)) (int, error){
		raw.ResealWebhookSecrets,
		raw.ResealTOTPSecrets,
		raw.ResealSecrets,
	} {
		n, err := step(ctx, func(v sessiond.StoredSecret) ([]byte, error) { return reseal(keys, v) })
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// reseal is ReencryptSecrets' step for one stored value: the value sealed
// under the newest key, or nil when it is sealed by it already.
func reseal(keys *seal.Keyring, v sessiond.StoredSecret) ([]byte, error) {
	var context string
	switch v.Kind {
	case sessiond.SecretKindWebhook:
		return resealWebhookSecret(keys, v)
	case sessiond.SecretKindTOTP:
		context = sessiond.TOTPSecretContext(v.Name)
	case sessiond.SecretKindServer:
		context = secretContext(v.Name)
	case sessiond.SecretKindSigningKey:
		context = keyContext(v.Name)
	default:
		return nil, fmt.Errorf("reseal: unknown kind of secret %q", v.Kind)
	}
	p, _, err := keys.Open(context, v.Value)
	if err != nil {
		return nil, err
	}
	if keys.SealedByNewest(v.Value) {
		return nil, nil
	}
	return keys.Seal(context, p), nil
}

// sealError returns the *seal.Error in err's chain, so that a refusal to
// start is the one line that names SESSIOND_ENCRYPTION_KEY.
func sealError(err error) error {
	var se *seal.Error
	if errors.As(err, &se) {
		return se
	}
	return err
}
