package storetest

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"

	"github.com/sessiond/sessiond"
)

// chainKey stands in for the server secret that package token derives
// refresh-token secrets with; the suite must not depend on package token.
var chainKey = []byte("storetest: fixed refresh-chain key")

// derive is one rotation step: secret_{n+1} = HMAC-SHA256(key, secret_n).
func derive(secret []byte) []byte {
	m := hmac.New(sha256.New, chainKey)
	m.Write(secret)
	return m.Sum(nil)
}

func sum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// chain models the refresh tokens of one session the way package token mints
// them: a random secret_0, each later secret derived from the one before.
type chain struct {
	sessionID string
	secret0   []byte
}

func newChain(sessionID string) *chain {
	return &chain{sessionID: sessionID, secret0: randomSecret()}
}

// secret returns secret_n.
func (c *chain) secret(n uint64) []byte {
	s := c.secret0
	for range n {
		s = derive(s)
	}
	return s
}

// hash returns SHA-256(secret_n), what the store keeps for generation n.
func (c *chain) hash(n uint64) []byte { return sum(c.secret(n)) }

// attempt is the RefreshAttempt of presenting RT_n = (session, n, secret_n).
func (c *chain) attempt(n uint64) *sessiond.RefreshAttempt {
	s := c.secret(n)
	return attemptOf(c.sessionID, n, s)
}

// attemptOf builds the attempt for an arbitrary presented secret, so tests
// can forge tokens that name a real session.
func attemptOf(sessionID string, n uint64, secret []byte) *sessiond.RefreshAttempt {
	return &sessiond.RefreshAttempt{
		SessionID:  sessionID,
		Generation: n,
		Hash:       sum(secret),
		NextHash:   sum(derive(secret)),
		IsAncestor: func(steps uint64, hash []byte) bool {
			s := secret
			for range steps {
				s = derive(s)
			}
			return bytes.Equal(sum(s), hash)
		},
	}
}

// randomSecret returns 32 random bytes.
func randomSecret() []byte {
	b := make([]byte, 32)
	rand.Read(b)
	return b
}
