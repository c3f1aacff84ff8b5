package token

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/sessiond/sessiond"
)

// Algorithm is the only JWS algorithm sessiond signs and accepts.
const Algorithm = "EdDSA"

// RetiredKeyMargin is sessiond.RetiredKeyMargin, kept here for callers of
// this package.
const RetiredKeyMargin = sessiond.RetiredKeyMargin

// Keyring holds the keys an instance signs with and publishes. It is safe for
// concurrent use: Set builds an immutable snapshot and swaps it in atomically,
// so Sign, Verify and JWKS never take a lock.
type Keyring struct {
	accessTTL time.Duration
	set       atomic.Pointer[keyset]
}

// keyset is one immutable snapshot of a Keyring.
type keyset struct {
	current *key
	byID    map[string]*key
	jwks    []byte
}

// key is a signing key prepared for use: the private key expanded once, the
// encoded JWS header computed once.
type key struct {
	id      string
	private ed25519.PrivateKey // nil for retired keys
	public  ed25519.PublicKey
	header  string // base64url of the JWS header naming this key
}

// emptyJWKS is published before the first Set.
var emptyJWKS = []byte(`{"keys":[]}`)

// NewKeyring returns an empty Keyring for access tokens that live accessTTL;
// it signs nothing until Set installs a current key.
func NewKeyring(accessTTL time.Duration) *Keyring {
	return &Keyring{accessTTL: accessTTL}
}

// Set installs keys as read from the store, as sessiond.KeySchedule decides
// at now: the key that signs at now signs, and every published key (a new
// key before it activates, retired keys until every token they signed has
// expired) verifies and is in the JWKS. It is an error if no key signs at
// now or if a published key is malformed; the previous keys then stay
// installed.
//
// The signing key is chosen at each Set, so an instance switches to a newly
// activated key at its first reload after the activation; the schedule's
// margins allow for that.
func (k *Keyring) Set(keys []sessiond.SigningKey, now time.Time) error {
	sched := sessiond.KeySchedule{AccessTTL: k.accessTTL}
	signer := sched.Signer(keys, now)
	if signer == nil {
		return fmt.Errorf("set keys: no signing key at %v", now)
	}
	ks := &keyset{byID: make(map[string]*key, len(keys))}
	var others []*key
	for i := range keys {
		sk := &keys[i]
		signs := sk == signer
		if !signs && !sched.PublishedAt(sk, now) {
			continue
		}
		e, err := prepareKey(sk, signs)
		if err != nil {
			return fmt.Errorf("set keys: %w", err)
		}
		if _, dup := ks.byID[e.id]; dup {
			return fmt.Errorf("set keys: duplicate key id %q", e.id)
		}
		ks.byID[e.id] = e
		if signs {
			ks.current = e
			continue
		}
		others = append(others, e)
	}
	doc, err := encodeJWKS(append([]*key{ks.current}, others...))
	if err != nil {
		return fmt.Errorf("set keys: %w", err)
	}
	ks.jwks = doc
	k.set.Store(ks)
	return nil
}

// prepareKey checks sk and expands it for verifying, and for signing if signs.
func prepareKey(sk *sessiond.SigningKey, signs bool) (*key, error) {
	if sk.ID == "" {
		return nil, fmt.Errorf("key without id")
	}
	if sk.Algorithm != Algorithm {
		return nil, fmt.Errorf("key %q: algorithm %q, want %q", sk.ID, sk.Algorithm, Algorithm)
	}
	if len(sk.PublicKey) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("key %q: public key of %d bytes", sk.ID, len(sk.PublicKey))
	}
	e := &key{id: sk.ID, public: ed25519.PublicKey(append([]byte(nil), sk.PublicKey...))}
	if signs {
		if len(sk.PrivateKey) != ed25519.SeedSize {
			return nil, fmt.Errorf("key %q: private key of %d bytes, want a %d-byte seed", sk.ID, len(sk.PrivateKey), ed25519.SeedSize)
		}
		e.private = ed25519.NewKeyFromSeed(sk.PrivateKey)
		// A mismatched pair would sign tokens that the published key refuses.
		if !e.public.Equal(e.private.Public()) {
			return nil, fmt.Errorf("key %q: public key does not match private key", sk.ID)
		}
		h, err := json.Marshal(struct {
			Alg string `json:"alg"`
			Typ string `json:"typ"`
			Kid string `json:"kid"`
		}{Algorithm, accessTokenType, sk.ID})
		if err != nil {
			return nil, fmt.Errorf("encode header: %w", err)
		}
		e.header = base64.RawURLEncoding.EncodeToString(h)
	}
	return e, nil
}

// jwk is one public key of the JWKS document (RFC 7517, RFC 8037).
type jwk struct {
	Kty string `json:"kty"`
	Crv string `json:"crv"`
	X   string `json:"x"`
	Kid string `json:"kid"`
	Alg string `json:"alg"`
	Use string `json:"use"`
}

func encodeJWKS(keys []*key) ([]byte, error) {
	doc := struct {
		Keys []jwk `json:"keys"`
	}{Keys: make([]jwk, 0, len(keys))}
	for _, e := range keys {
		doc.Keys = append(doc.Keys, jwk{
			Kty: "OKP", Crv: "Ed25519", X: base64.RawURLEncoding.EncodeToString(e.public),
			Kid: e.id, Alg: Algorithm, Use: "sig",
		})
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("encode jwks: %w", err)
	}
	return b, nil
}

// JWKS returns the pre-encoded RFC 7517 document of the published public
// keys, current first. The caller must not modify it.
func (k *Keyring) JWKS() []byte {
	if ks := k.set.Load(); ks != nil {
		return ks.jwks
	}
	return emptyJWKS
}

// CurrentKeyID returns the kid that signs now, or "" before Set.
func (k *Keyring) CurrentKeyID() string {
	if ks := k.set.Load(); ks != nil {
		return ks.current.id
	}
	return ""
}

// current returns the signing key, nil before Set.
func (k *Keyring) current() *key {
	if ks := k.set.Load(); ks != nil {
		return ks.current
	}
	return nil
}

// lookup returns the published key named kid, nil if there is none.
func (k *Keyring) lookup(kid string) *key {
	if ks := k.set.Load(); ks != nil {
		return ks.byID[kid]
	}
	return nil
}

// GenerateKey makes a new Ed25519 signing key created at now. Its kid is the
// RFC 7638 JWK thumbprint of the public key, so that a kid names exactly one
// key on every instance without coordination.
func GenerateKey(now time.Time) (*sessiond.SigningKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate key: %w", err)
	}
	return &sessiond.SigningKey{
		ID:         Thumbprint(pub),
		Algorithm:  Algorithm,
		PrivateKey: priv.Seed(),
		PublicKey:  []byte(pub),
		CreatedAt:  now,
	}, nil
}

// Thumbprint returns the RFC 7638 JWK thumbprint (SHA-256, base64url without
// padding) of an Ed25519 public key, as RFC 8037 §A.3 defines it for OKP keys.
func Thumbprint(pub ed25519.PublicKey) string {
	// The required members in lexicographic order, no whitespace (RFC 7638 §3.2).
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + base64.RawURLEncoding.EncodeToString(pub) + `"}`))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}
