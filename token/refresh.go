package token

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"

	"github.com/sessiond/sessiond"
)

// Refresh token layout: session UUID, big-endian generation, secret.
const (
	rtIDLen     = 16
	rtGenLen    = 8
	rtSecretLen = 32
	rtLen       = rtIDLen + rtGenLen + rtSecretLen
)

// MaxRefreshTokenSize bounds what Attempt will look at; a real token is 75
// characters.
const MaxRefreshTokenSize = 256

// minServerSecret is the shortest server secret NewRefresher accepts: the
// HMAC key must be as strong as the 256-bit secrets it derives.
const minServerSecret = 32

var rtEncoding = base64.RawURLEncoding.Strict()

// Refresher mints refresh tokens and digests presented ones into
// sessiond.RefreshAttempt values. Token n+1's secret is HMAC-SHA256 under
// the server secret of token n's, so rotation can be recomputed (the grace
// window) and ancestry checked (reuse detection) while the database keeps
// only SHA-256 hashes; see the root package's refresh.go.
type Refresher struct {
	secret []byte
}

// NewRefresher returns a Refresher deriving under secret, which must be at
// least 32 bytes and must be the same on every instance sharing a database.
func NewRefresher(secret []byte) (*Refresher, error) {
	if len(secret) < minServerSecret {
		return nil, fmt.Errorf("new refresher: server secret of %d bytes, want at least %d", len(secret), minServerSecret)
	}
	return &Refresher{secret: append([]byte(nil), secret...)}, nil
}

// Mint returns a new generation-0 refresh token for the session, with a
// 256-bit secret from crypto/rand, and the SHA-256 of that secret for the
// store. sessionID must be a canonical lower-case UUID (sessiond.NewID).
func (r *Refresher) Mint(sessionID string) (token string, hash []byte, err error) {
	id, ok := parseUUID(sessionID)
	if !ok {
		return "", nil, internal("mint refresh token", fmt.Errorf("session id %q is not a canonical UUID", sessionID))
	}
	var secret [rtSecretLen]byte
	rand.Read(secret[:]) // never fails (crypto/rand, Go 1.24+)
	sum := sha256.Sum256(secret[:])
	return encodeRT(&id, 0, secret[:]), sum[:], nil
}

// Attempt digests a presented refresh token into a sessiond.RefreshAttempt
// and also returns next, the token of the following generation, which is
// what a rotation hands out. Malformed input, including anything over 256
// characters, is a *sessiond.Error with CodeInvalidRefreshToken.
func (r *Refresher) Attempt(token string) (a *sessiond.RefreshAttempt, next string, err error) {
	if len(token) > MaxRefreshTokenSize || rtEncoding.DecodedLen(len(token)) != rtLen {
		return nil, "", invalidRefresh(errors.New("wrong length"))
	}
	var raw [rtLen]byte
	if _, err := rtEncoding.Decode(raw[:], []byte(token)); err != nil {
		return nil, "", invalidRefresh(fmt.Errorf("decode: %w", err))
	}
	var id [rtIDLen]byte
	copy(id[:], raw[:rtIDLen])
	gen := binary.BigEndian.Uint64(raw[rtIDLen:])
	if gen == ^uint64(0) {
		return nil, "", invalidRefresh(errors.New("generation out of range"))
	}
	secret := raw[rtIDLen+rtGenLen:]
	nextSecret := derive(hmac.New(sha256.New, r.secret), append([]byte(nil), secret...))
	hash := sha256.Sum256(secret)
	nextHash := sha256.Sum256(nextSecret)
	a = &sessiond.RefreshAttempt{
		SessionID:  sessiond.FormatUUID(id),
		Generation: gen,
		Hash:       hash[:],
		NextHash:   nextHash[:],
		IsAncestor: r.isAncestor(append([]byte(nil), secret...)),
	}
	return a, encodeRT(&id, gen+1, nextSecret), nil
}

// isAncestor returns the RefreshAttempt.IsAncestor check for a presented
// secret: derive steps times, then compare SHA-256 with want. It refuses
// more than sessiond.AncestorWalkCeiling steps on its own, whatever the
// caller's policy.
func (r *Refresher) isAncestor(secret []byte) func(steps uint64, want []byte) bool {
	return func(steps uint64, want []byte) bool {
		if steps > sessiond.AncestorWalkCeiling || len(want) != sha256.Size {
			return false
		}
		s := secret
		if steps > 0 {
			mac := hmac.New(sha256.New, r.secret)
			s = append([]byte(nil), secret...)
			for range steps {
				s = derive(mac, s)
			}
		}
		sum := sha256.Sum256(s)
		return subtle.ConstantTimeCompare(sum[:], want) == 1
	}
}

// derive returns the next secret: HMAC-SHA256 of s under the server secret
// (mac). It overwrites s with the result, so the ancestor walk allocates
// nothing per step.
func derive(mac hash.Hash, s []byte) []byte {
	mac.Reset()
	mac.Write(s)
	return mac.Sum(s[:0])
}

func encodeRT(id *[rtIDLen]byte, gen uint64, secret []byte) string {
	var raw [rtLen]byte
	copy(raw[:], id[:])
	binary.BigEndian.PutUint64(raw[rtIDLen:], gen)
	copy(raw[rtIDLen+rtGenLen:], secret)
	return rtEncoding.EncodeToString(raw[:])
}

func invalidRefresh(err error) *sessiond.Error {
	return &sessiond.Error{Code: sessiond.CodeInvalidRefreshToken, Message: "malformed refresh token", Err: err}
}

// parseUUID parses the canonical lower-case form sessiond.NewID produces; any
// other spelling is refused so that a session id survives the round trip
// through a token byte for byte.
func parseUUID(s string) (id [rtIDLen]byte, ok bool) {
	if len(s) != 36 || s[8] != '-' || s[13] != '-' || s[18] != '-' || s[23] != '-' {
		return id, false
	}
	hexs := s[0:8] + s[9:13] + s[14:18] + s[19:23] + s[24:]
	if _, err := hex.Decode(id[:], []byte(hexs)); err != nil {
		return id, false
	}
	return id, sessiond.FormatUUID(id) == s
}
