// Package seal encrypts server secrets at rest: signing keys' private parts,
// the refresh-token MAC secret, and any other secret the application stores.
// A Keyring parsed from SESSIOND_ENCRYPTION_KEY seals each value with
// AES-256-GCM under its newest key, bound to what the value is (the context,
// such as "signing_key/<kid>") as associated data, so a sealed value copied
// into another row does not open there.
//
// A sealed value is Prefix, the 8-byte id of the key that sealed it, a
// 12-byte random nonce, and the ciphertext with its tag. Values without the
// prefix are in the clear (a database from before encryption was set up).
// Start reading at Keyring.Seal and Keyring.Open.
package seal

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// Setting is the environment variable operators set; errors name it.
const Setting = "SESSIOND_ENCRYPTION_KEY"

// Prefix starts every sealed value. The secrets sealed here are random
// bytes, so a clear value starts with these eight bytes with probability
// 2^-64; a sealed value is also longer than any clear one (Overhead).
const Prefix = "\x00sdseal1"

const (
	keySize   = 32
	idSize    = 8
	nonceSize = 12
	tagSize   = 16
	// Overhead is how much longer a sealed value is than its plaintext.
	Overhead = len(Prefix) + idSize + nonceSize + tagSize
)

// ErrNoKey is returned by Open for a sealed value when no key is configured.
var ErrNoKey = errors.New("no encryption key configured")

// Error is a failure to open a sealed value: no key, no key with its id, or
// a value that fails authentication. Its message names Setting, so that
// sessiond refuses to start with one clear line.
type Error struct {
	Context string // what the value is, e.g. "secret/refresh_token_mac"
	Err     error
}

func (e *Error) Error() string {
	switch {
	case errors.Is(e.Err, ErrNoKey):
		return fmt.Sprintf("%s: the database's secrets are encrypted (%s); set %s or %s_FILE to the key that encrypted them", Setting, e.Context, Setting, Setting)
	case errors.Is(e.Err, errUnknownKey):
		return fmt.Sprintf("%s: none of the configured keys is the one that encrypted %s; add that key (comma-separated, newest first)", Setting, e.Context)
	}
	return fmt.Sprintf("%s: %s does not decrypt: %v", Setting, e.Context, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }

var (
	errUnknownKey = errors.New("no configured key has the id the value was sealed with")
	errTampered   = errors.New("authentication failed: the stored value was altered, or sealed under another key")
)

// Keyring is the parsed SESSIOND_ENCRYPTION_KEY: the newest key seals, every
// key opens. A nil *Keyring seals nothing and opens only clear values. It is
// safe for concurrent use.
type Keyring struct {
	keys []sealKey // newest first
}

type sealKey struct {
	id   [idSize]byte
	aead cipher.AEAD
}

// Parse reads comma-separated keys, newest first, each 32 bytes in
// base64url (padding optional; standard base64 is accepted too). An empty
// s gives a nil Keyring. Errors never quote the key material.
func Parse(s string) (*Keyring, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	k := &Keyring{}
	seen := map[[idSize]byte]bool{}
	for i, f := range strings.Split(s, ",") {
		raw, err := decodeKey(strings.TrimSpace(f))
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", i+1, err)
		}
		sk, err := newSealKey(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %v", i+1, err)
		}
		if seen[sk.id] {
			return nil, fmt.Errorf("key %d: the same key is listed twice", i+1)
		}
		seen[sk.id] = true
		k.keys = append(k.keys, sk)
	}
	return k, nil
}

func decodeKey(s string) ([]byte, error) {
	if s == "" {
		return nil, errors.New("empty (a stray comma?)")
	}
	for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.StdEncoding} {
		if b, err := enc.Strict().DecodeString(s); err == nil {
			if len(b) != keySize {
				return nil, fmt.Errorf("%d bytes, want %d random bytes (openssl rand -base64 32)", len(b), keySize)
			}
			return b, nil
		}
	}
	return nil, errors.New("not base64url")
}

func newSealKey(raw []byte) (sealKey, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return sealKey{}, fmt.Errorf("new cipher: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealKey{}, fmt.Errorf("new gcm: %w", err)
	}
	// The id names the key without revealing it: a domain-separated hash,
	// of which a dump shows only 64 bits.
	sum := sha256.Sum256(append([]byte("sessiond seal key id\x00"), raw...))
	sk := sealKey{aead: aead}
	copy(sk.id[:], sum[:idSize])
	return sk, nil
}

// Enabled reports whether k has a key, so that new values are sealed.
func (k *Keyring) Enabled() bool { return k != nil && len(k.keys) > 0 }

// Len is how many keys k has.
func (k *Keyring) Len() int {
	if k == nil {
		return 0
	}
	return len(k.keys)
}

// IsSealed reports whether stored is a sealed value rather than one in the clear.
func IsSealed(stored []byte) bool {
	return len(stored) >= Overhead && bytes.HasPrefix(stored, []byte(Prefix))
}

// Seal encrypts plaintext under the newest key for context (what the value
// is, e.g. "signing_key/<kid>"). Without a key it returns plaintext as is.
func (k *Keyring) Seal(context string, plaintext []byte) []byte {
	if !k.Enabled() {
		return plaintext
	}
	sk := k.keys[0]
	out := make([]byte, 0, len(plaintext)+Overhead)
	out = append(out, Prefix...)
	out = append(out, sk.id[:]...)
	header := len(out)
	out = out[:header+nonceSize]
	rand.Read(out[header:]) // never fails (crypto/rand, Go 1.24+)
	nonce := out[header:]
	return sk.aead.Seal(out, nonce, plaintext, additionalData(out[:header], context))
}

// additionalData binds a sealed value to its header (so the key id cannot
// be swapped) and to what it is.
func additionalData(header []byte, context string) []byte {
	return append(append(append([]byte(nil), header...), 0), context...)
}

// Open returns the plaintext of stored, a value Seal made for context or
// one in the clear, and whether it was sealed. A sealed value that no
// configured key opens is an *Error.
func (k *Keyring) Open(context string, stored []byte) (plaintext []byte, sealed bool, err error) {
	if !IsSealed(stored) {
		return stored, false, nil
	}
	if !k.Enabled() {
		return nil, true, &Error{Context: context, Err: ErrNoKey}
	}
	header := stored[:len(Prefix)+idSize]
	id := stored[len(Prefix) : len(Prefix)+idSize]
	nonce := stored[len(header) : len(header)+nonceSize]
	for _, sk := range k.keys {
		if !bytes.Equal(sk.id[:], id) {
			continue
		}
		p, err := sk.aead.Open(nil, nonce, stored[len(header)+nonceSize:], additionalData(header, context))
		if err != nil {
			return nil, true, &Error{Context: context, Err: errTampered}
		}
		return p, true, nil
	}
	return nil, true, &Error{Context: context, Err: errUnknownKey}
}

// SealedByNewest reports whether stored is sealed under k's newest key, so
// that re-encryption can skip it.
func (k *Keyring) SealedByNewest(stored []byte) bool {
	return k.Enabled() && IsSealed(stored) && bytes.Equal(stored[len(Prefix):len(Prefix)+idSize], k.keys[0].id[:])
}

// Generate returns a new random key in the form Parse reads.
func Generate() string {
	b := make([]byte, keySize)
	rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}
