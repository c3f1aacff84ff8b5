package auth

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"time"

	"github.com/sessiond/sessiond"
)

// Throttle limits failed logins per email and per client IP. A zero
// MaxFailures turns throttling off.
type Throttle struct {
	MaxFailures   int // per email per window
	MaxIPFailures int // per client IP per window; higher, as many users may share an IP
	Window        time.Duration
}

// throttleKey names a counter without storing the email or IP itself.
type throttleKey struct {
	key string
	max int
}

func counterKey(kind, value string) string {
	h := sha256.Sum256([]byte(kind + ":" + value))
	return kind + ":" + hex.EncodeToString(h[:16])
}

// throttleKeys returns the email's counter first, then the IP's.
func (s *Service) throttleKeys(email, ip string) []throttleKey {
	if s.throttle.MaxFailures <= 0 {
		return nil
	}
	keys := []throttleKey{{counterKey("email", email), s.throttle.MaxFailures}}
	if ip != "" && s.throttle.MaxIPFailures > 0 {
		keys = append(keys, throttleKey{counterKey("ip", ip), s.throttle.MaxIPFailures})
	}
	return keys
}

func names(keys []throttleKey) []string {
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = k.key
	}
	return out
}

// checkThrottle refuses a login while any of its counters is at its limit;
// a refused login costs no password hashing. It returns the email's count.
func (s *Service) checkThrottle(ctx context.Context, keys []throttleKey) (int, error) {
	if len(keys) == 0 {
		return 0, nil
	}
	now := s.now()
	counts, err := s.store.LoginFailures(ctx, names(keys), now, s.throttle.Window)
	if err != nil {
		return 0, err
	}
	var wait time.Duration
	for i, c := range counts {
		if limited, d := c.Throttled(keys[i].max, s.throttle.Window, now); limited && d > wait {
			wait = d
		}
	}
	if wait == 0 {
		return counts[0].Count, nil
	}
	s.logger.LogAttrs(ctx, slog.LevelWarn, "login throttled", slog.Duration("retry_after", wait))
	return 0, &sessiond.Error{
		Code:       sessiond.CodeTooManyAttempts,
		Message:    "too many failed logins; try again later",
		RetryAfter: wait,
	}
}

func (s *Service) recordFailure(ctx context.Context, keys []throttleKey) error {
	if len(keys) == 0 {
		return nil
	}
	return s.store.RecordLoginFailure(ctx, names(keys), s.now(), s.throttle.Window)
}

// clearFailures forgets the email's failures after a successful login; the
// IP's stay, so one good account cannot launder guesses at others. With no
// failures on record it costs nothing.
func (s *Service) clearFailures(ctx context.Context, keys []throttleKey, failures int) error {
	if failures == 0 {
		return nil
	}
	return s.store.ClearLoginFailures(ctx, keys[0].key)
}
