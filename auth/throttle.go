package auth

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"log/slog"
	"net/netip"
	"time"

	"github.com/sessiond/sessiond"
)

// Throttle limits logins and signups (see the package doc). A zero
// MaxFailures turns login throttling off, a zero SignupsPerHour signup
// limiting.
type Throttle struct {
	// MaxFailures is the hard limit per (email, client) pair per Window: a
	// client is its IP (its /64 for IPv6), or its device token.
	MaxFailures int
	// MaxAccountFailures is the ceiling per email over all clients without
	// a device token; much higher, so no single client can reach it.
	MaxAccountFailures int
	// MaxIPFailures is the limit per client IP across all emails; higher
	// than MaxFailures, as many users may share an IP.
	MaxIPFailures int
	Window        time.Duration
	// SignupsPerHour is the limit of signups per client IP.
	SignupsPerHour int
	// Secret (at least 32 bytes, the same on every instance) keys the
	// counters and signs device tokens.
	Secret []byte
}

// pairMaxLevel lets a pair's window double six times after used-up windows:
// up to 64 windows (16 hours at the default 15 minutes) between bursts of
// MaxFailures guesses.
const pairMaxLevel = 6

// DeviceTokenTTL is how long a device token exempts its device from the
// per-email ceiling; every successful login issues a fresh one.
const DeviceTokenTTL = 90 * 24 * time.Hour

// MaxDeviceTokenSize bounds what a device token may be; a real one is 75
// characters.
const MaxDeviceTokenSize = 128

const (
	deviceIDLen  = 16
	deviceExpLen = 8
	deviceLen    = deviceIDLen + deviceExpLen + sha256.Size
)

var deviceEncoding = base64.RawURLEncoding.Strict()

// throttleKeys are the two keys derived from Throttle.Secret, so that a
// counter name can never be replayed as a device token's MAC or back.
type throttleKeys struct {
	counter, device []byte
}

func deriveThrottleKeys(secret []byte) throttleKeys {
	sub := func(label string) []byte {
		m := hmac.New(sha256.New, secret)
		m.Write([]byte(label))
		return m.Sum(nil)
	}
	return throttleKeys{counter: sub("sessiond attempt counters v1"), device: sub("sessiond device tokens v1")}
}

// counterKey names a counter by a MAC of what it counts, so the table holds
// neither emails nor IPs, and a dump cannot be reversed by hashing every
// IPv4 address without the secret. parts are joined with NUL, which neither
// an email nor an IP contains.
func (s *Service) counterKey(kind string, parts ...string) string {
	m := hmac.New(sha256.New, s.keys.counter)
	m.Write([]byte(kind))
	for _, p := range parts {
		m.Write([]byte{0})
		m.Write([]byte(p))
	}
	return kind + ":" + hex.EncodeToString(m.Sum(nil)[:16])
}

// clientKey is what counts as one client address: an IPv4 address, or the
// /64 of an IPv6 one, since one subscriber usually gets a whole /64 and
// could otherwise take a fresh address for every guess.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}

// loginLimits are the counters a login reserves, the pair's first. With a
// valid device token the pair is (email, device) and neither the per-email
// ceiling nor the per-IP limit applies: the device has proven an earlier
// login for this email, which a guesser spraying the account cannot.
func (s *Service) loginLimits(email, ip, device string) []sessiond.AttemptLimit {
	t := s.throttle
	if t.MaxFailures <= 0 {
		return nil
	}
	if device != "" {
		return []sessiond.AttemptLimit{{Key: s.counterKey("device", email, device), Max: t.MaxFailures, Window: t.Window, MaxLevel: pairMaxLevel}}
	}
	client := clientKey(ip)
	limits := []sessiond.AttemptLimit{{Key: s.counterKey("pair", email, client), Max: t.MaxFailures, Window: t.Window, MaxLevel: pairMaxLevel}}
	if t.MaxAccountFailures > 0 {
		limits = append(limits, sessiond.AttemptLimit{Key: s.counterKey("email", email), Max: t.MaxAccountFailures, Window: t.Window})
	}
	if ip != "" && t.MaxIPFailures > 0 {
		limits = append(limits, sessiond.AttemptLimit{Key: s.counterKey("ip", client), Max: t.MaxIPFailures, Window: t.Window})
	}
	return limits
}

// reserve reserves one attempt on every limit before any hashing; a refused
// attempt is an error with code and a Retry-After, and has cost nothing.
func (s *Service) reserve(ctx context.Context, limits []sessiond.AttemptLimit, code, message string) ([]sessiond.AttemptCount, error) {
	if len(limits) == 0 {
		return nil, nil
	}
	now := s.now()
	counts, ok, err := s.store.ReserveAttempts(ctx, limits, now)
	if err != nil {
		return nil, err
	}
	if ok {
		return counts, nil
	}
	_, wait := sessiond.AttemptsRefused(limits, counts, now)
	wait = max(wait, time.Second)
	s.logger.LogAttrs(ctx, slog.LevelWarn, "attempt refused", slog.String("code", code), slog.Duration("retry_after", wait))
	return nil, &sessiond.Error{Code: code, Message: message, RetryAfter: wait}
}

// release gives back reservations of an attempt that was no failure: an
// outage or a cancellation is not a guess. It runs even if ctx ended.
func (s *Service) release(ctx context.Context, counts []sessiond.AttemptCount) {
	if len(counts) == 0 {
		return
	}
	if err := s.store.ReleaseAttempts(context.WithoutCancel(ctx), counts); err != nil {
		s.logger.LogAttrs(ctx, slog.LevelWarn, "attempts not given back", slog.String("error", err.Error()))
	}
}

// loginSucceeded forgets the pair's failures and gives back the login's
// own reservation of the others: the email's and the IP's earlier failures
// stay, so neither the owner's login resets the ceiling for a guesser, nor
// one good account launders an IP's guesses at others.
func (s *Service) loginSucceeded(ctx context.Context, counts []sessiond.AttemptCount) error {
	if len(counts) == 0 {
		return nil
	}
	if err := s.store.ClearAttempts(ctx, counts[0].Key); err != nil {
		return err
	}
	return s.store.ReleaseAttempts(ctx, counts[1:])
}

// issueDeviceToken returns a device token for email, valid until exp:
// a random id, exp, and an HMAC of email, id and exp.
func (s *Service) issueDeviceToken(email string, now time.Time) (string, time.Time) {
	exp := now.Add(DeviceTokenTTL).Truncate(time.Second)
	var raw [deviceLen]byte
	rand.Read(raw[:deviceIDLen]) // never fails (crypto/rand, Go 1.24+)
	binary.BigEndian.PutUint64(raw[deviceIDLen:], uint64(exp.Unix()))
	copy(raw[deviceIDLen+deviceExpLen:], s.deviceMAC(email, raw[:deviceIDLen+deviceExpLen]))
	return deviceEncoding.EncodeToString(raw[:]), exp
}

func (s *Service) deviceMAC(email string, idExp []byte) []byte {
	m := hmac.New(sha256.New, s.keys.device)
	m.Write([]byte(email))
	m.Write([]byte{0})
	m.Write(idExp)
	return m.Sum(nil)
}

// deviceID returns the id of tok if it is a device token for email that
// has not expired at now, else "". Anything else a client sends is simply
// no proof: the login goes on as from an unknown device.
func (s *Service) deviceID(tok, email string, now time.Time) string {
	if tok == "" || len(tok) > MaxDeviceTokenSize || deviceEncoding.DecodedLen(len(tok)) != deviceLen {
		return ""
	}
	var raw [deviceLen]byte
	if _, err := deviceEncoding.Decode(raw[:], []byte(tok)); err != nil {
		return ""
	}
	if !hmac.Equal(raw[deviceIDLen+deviceExpLen:], s.deviceMAC(email, raw[:deviceIDLen+deviceExpLen])) {
		return ""
	}
	exp := binary.BigEndian.Uint64(raw[deviceIDLen:])
	if exp > uint64(1<<62) || !now.Before(time.Unix(int64(exp), 0)) {
		return ""
	}
	return hex.EncodeToString(raw[:deviceIDLen])
}

// signupLimits is the one counter a signup from ip reserves.
func (s *Service) signupLimits(ip string) []sessiond.AttemptLimit {
	if s.throttle.SignupsPerHour <= 0 || ip == "" {
		return nil
	}
	return []sessiond.AttemptLimit{{Key: s.counterKey("signup", clientKey(ip)), Max: s.throttle.SignupsPerHour, Window: time.Hour}}
}
