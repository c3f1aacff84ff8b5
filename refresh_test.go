package sessiond_test

import (
	"bytes"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

func TestClassifyRefresh(t *testing.T) {
	p := sessiond.DefaultPolicy()
	h := func(b byte) []byte { return bytes.Repeat([]byte{b}, 32) }
	// The session is at generation 5: current hash 5, previous hash 4,
	// rotated a second before now. The chain's ancestors are hashes 0-3.
	now := t0.Add(time.Hour)
	s := &sessiond.Session{
		ID: "s", Generation: 5, RefreshHash: h(5), PrevHash: h(4), RotatedAt: now.Add(-time.Second),
		CreatedAt: t0, LastUsedAt: now.Add(-time.Second), ExpiresAt: t0.Add(p.SessionTTL),
	}
	ancestor := func(steps uint64, hash []byte) bool { return true }
	notAncestor := func(steps uint64, hash []byte) bool { return false }
	at := func(gen uint64, hash, next []byte, anc func(uint64, []byte) bool) *sessiond.RefreshAttempt {
		return &sessiond.RefreshAttempt{SessionID: "s", Generation: gen, Hash: hash, NextHash: next, IsAncestor: anc}
	}
	expired := *s
	expired.LastUsedAt = now.Add(-p.IdleTTL)

	tests := []struct {
		name string
		s    *sessiond.Session
		a    *sessiond.RefreshAttempt
		now  time.Time
		want sessiond.RefreshVerdict
	}{
		{"current", s, at(5, h(5), h(6), nil), now, sessiond.RefreshCurrent},
		{"current hash, wrong generation", s, at(6, h(5), h(6), nil), now, sessiond.RefreshInvalid},
		{"forged hash for a real session", s, at(5, h(9), h(6), nil), now, sessiond.RefreshInvalid},
		{"other session", s, &sessiond.RefreshAttempt{SessionID: "t", Generation: 5, Hash: h(5)}, now, sessiond.RefreshInvalid},
		{"no session", nil, at(5, h(5), h(6), nil), now, sessiond.RefreshInvalid},
		{"parent inside grace", s, at(4, h(4), h(5), nil), now, sessiond.RefreshGrace},
		{"parent at the end of grace", s, at(4, h(4), h(5), nil), s.RotatedAt.Add(p.ReuseGrace), sessiond.RefreshGrace},
		{"parent after grace", s, at(4, h(4), h(5), nil), s.RotatedAt.Add(p.ReuseGrace + time.Microsecond), sessiond.RefreshReused},
		{"parent whose derivation differs (secret changed)", s, at(4, h(4), h(7), nil), now, sessiond.RefreshReused},
		{"parent with wrong hash", s, at(4, h(3), h(5), nil), now, sessiond.RefreshInvalid},
		{"grandparent inside grace", s, at(3, h(3), h(4), ancestor), now, sessiond.RefreshReused},
		{"claimed ancestor that is not", s, at(2, h(2), h(3), notAncestor), now, sessiond.RefreshInvalid},
		{"current of an expired session", &expired, at(5, h(5), h(6), nil), now, sessiond.RefreshExpired},
		{"forged for an expired session", &expired, at(5, h(8), h(6), nil), now, sessiond.RefreshInvalid},
		{"empty hash never matches", &sessiond.Session{ID: "s", ExpiresAt: now.Add(time.Hour), LastUsedAt: now}, at(0, nil, nil, nil), now, sessiond.RefreshInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sessiond.ClassifyRefresh(tt.s, tt.a, tt.now, p); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}

	noGrace := p
	noGrace.ReuseGrace = 0
	if got := sessiond.ClassifyRefresh(s, at(4, h(4), h(5), nil), now, noGrace); got != sessiond.RefreshReused {
		t.Errorf("parent with grace 0: got %v, want %v", got, sessiond.RefreshReused)
	}
}

func TestNewID(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := sessiond.NewID()
		if len(id) != 36 || id[14] != '4' || id[8] != '-' {
			t.Fatalf("got %q, want a version 4 UUID", id)
		}
		if seen[id] {
			t.Fatalf("duplicate id %q", id)
		}
		seen[id] = true
	}
}
