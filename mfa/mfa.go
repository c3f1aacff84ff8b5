// Package mfa is sessiond's second factors without storage: TOTP
// (RFC 6238: HMAC-SHA-1, 6 digits, 30-second steps, on pquerna/otp) and
// recovery codes. It generates secrets and codes, and verifies a presented
// code, telling which time step it matched so that the caller can refuse a
// step used before (the replay guard is the store's conditional update, see
// package auth). Start at NewKey and Verify.
package mfa

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"fmt"
	"image/png"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"
)

// The TOTP parameters, pinned: every authenticator app supports them, and
// a code is only ever checked with them.
const (
	Period     = 30 * time.Second
	Digits     = 6
	SecretSize = 20 // bytes: 160 bits, RFC 4226's recommendation for SHA-1
	// Skew is how many steps either side of now a code may be from: a
	// phone's clock a little off, or a code typed as it rolled over.
	Skew = 1
	// RecoveryCodes is how many recovery codes a set holds.
	RecoveryCodes = 10
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// Key is a new TOTP secret and how to hand it to an authenticator app.
type Key struct {
	Secret []byte // the raw secret: what is stored, sealed
	Text   string // its base32 form, for typing into an app
	URL    string // the otpauth:// URL a QR code carries
	// QR is a PNG of the QR code of URL.
	QR []byte
}

// NewKey returns a fresh random key for account at issuer.
func NewKey(issuer, account string) (*Key, error) {
	k, err := totp.Generate(totp.GenerateOpts{
		Issuer: issuer, AccountName: account, Period: uint(Period / time.Second),
		SecretSize: SecretSize, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1,
	})
	if err != nil {
		return nil, fmt.Errorf("generate totp key: %w", err)
	}
	secret, err := b32.DecodeString(k.Secret())
	if err != nil {
		return nil, fmt.Errorf("decode totp secret: %w", err)
	}
	img, err := k.Image(256, 256)
	if err != nil {
		return nil, fmt.Errorf("totp qr code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, fmt.Errorf("totp qr code: %w", err)
	}
	return &Key{Secret: secret, Text: k.Secret(), URL: k.URL(), QR: buf.Bytes()}, nil
}

// Step is the TOTP time step t falls in.
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Verdict is what Verify found a code to be.
type Verdict int

const (
	Wrong    Verdict = iota // no step near now has this code
	Accepted                // a step after the last used one has it
	Replayed                // only a step already used has it
)

// Verify checks code against secret for the steps within Skew of now and
// returns the step it matched: the earliest after lastStep (the last step
// the user had a code accepted for; 0 for none). Every candidate is
// computed and compared in constant time, whatever matches.
func Verify(secret []byte, code string, now time.Time, lastStep int64) (int64, Verdict) {
	code = strings.Join(strings.Fields(code), "")
	if len(code) != Digits || strings.Trim(code, "0123456789") != "" {
		return 0, Wrong
	}
	text := b32.EncodeToString(secret)
	opts := hotp.ValidateOpts{Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	cur := Step(now)
	var found int64
	verdict := Wrong
	for s := cur - Skew; s <= cur+Skew; s++ {
		want, err := hotp.GenerateCodeCustom(text, uint64(s), opts)
		if err != nil {
			continue
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) != 1 {
			continue
		}
		switch {
		case s > lastStep && verdict != Accepted:
			found, verdict = s, Accepted
		case s <= lastStep && verdict == Wrong:
			verdict = Replayed
		}
	}
	return found, verdict
}

// Recovery codes are 80 random bits each, written as 16 base32 letters and
// digits in groups of four ("k7q2-m4xa-..."): high-entropy, so a plain
// SHA-256 is a safe way to store them (no password hashing needed), and
// long enough that guessing one is hopeless within the login throttle.
const recoveryBytes = 10

var recoveryEncoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// NewRecoveryCodes returns a fresh set of RecoveryCodes codes.
func NewRecoveryCodes() []string {
	out := make([]string, RecoveryCodes)
	for i := range out {
		b := make([]byte, recoveryBytes)
		rand.Read(b) // never fails (crypto/rand, Go 1.24+)
		s := recoveryEncoding.EncodeToString(b)
		out[i] = s[0:4] + "-" + s[4:8] + "-" + s[8:12] + "-" + s[12:16]
	}
	return out
}

// NormalizeRecoveryCode is the canonical form of a code as a person may
// type it (any case, with or without dashes and spaces); false if it
// cannot be a recovery code.
func NormalizeRecoveryCode(s string) (string, bool) {
	s = strings.ToLower(strings.NewReplacer("-", "", " ", "", "\t", "").Replace(s))
	if len(s) != 16 {
		return "", false
	}
	if _, err := recoveryEncoding.DecodeString(s); err != nil {
		return "", false
	}
	return s, true
}

// HashRecoveryCode is the stored form of a normalized code of user userID:
// bound to the user, so that a hash copied to another user matches nothing.
func HashRecoveryCode(userID, normalized string) []byte {
	h := sha256.New()
	h.Write([]byte("sessiond recovery code v1\x00"))
	h.Write([]byte(userID))
	h.Write([]byte{0})
	h.Write([]byte(normalized))
	return h.Sum(nil)
}

// MatchRecoveryCode returns the index in hashes of h, or -1, comparing
// with every hash in constant time.
func MatchRecoveryCode(hashes [][]byte, h []byte) int {
	found := -1
	for i, c := range hashes {
		if subtle.ConstantTimeCompare(c, h) == 1 && found < 0 {
			found = i
		}
	}
	return found
}
