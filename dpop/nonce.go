package dpop

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// Nonces are server nonces (RFC 9449 §8) that need no storage: a nonce is a
// time period's number and a MAC of it under a secret every instance
// shares, so each instance issues the same nonce within a period and
// accepts one of the current or the previous period. A proof can then be
// no older than two periods however its "iat" was set.
type Nonces struct {
	key    []byte
	period time.Duration
}

// NewNonces returns nonces under secret (at least 32 bytes, shared by every
// instance) that rotate every period.
func NewNonces(secret []byte, period time.Duration) *Nonces {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte("sessiond dpop nonce"))
	return &Nonces{key: m.Sum(nil), period: period}
}

// Issue is the nonce of now's period.
func (n *Nonces) Issue(now time.Time) string { return n.of(uint64(now.UnixNano() / int64(n.period))) }

// Valid reports whether nonce is the current or the previous period's.
func (n *Nonces) Valid(nonce string, now time.Time) bool {
	cur := uint64(now.UnixNano() / int64(n.period))
	for _, p := range [...]uint64{cur, cur - 1} {
		if subtle.ConstantTimeCompare([]byte(nonce), []byte(n.of(p))) == 1 {
			return true
		}
	}
	return false
}

func (n *Nonces) of(period uint64) string {
	var b [8 + 16]byte
	binary.BigEndian.PutUint64(b[:8], period)
	m := hmac.New(sha256.New, n.key)
	m.Write(b[:8])
	copy(b[8:], m.Sum(nil))
	return base64.RawURLEncoding.EncodeToString(b[:])
}
