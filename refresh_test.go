package sessiond_test

import (
	"bytes"
	"errors"
	"slices"
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

func TestMaxAncestorSteps(t *testing.T) {
	tests := []struct {
		name                  string
		sessionTTL, accessTTL time.Duration
		want                  uint64
	}{
		{"defaults: 2880 access tokens a session", 720 * time.Hour, 15 * time.Minute, 2880*4 + 64},
		{"a partial last access token counts", time.Hour + time.Second, 15 * time.Minute, 5*4 + 64},
		{"access as long as the session", time.Hour, time.Hour, 1*4 + 64},
		{"short access tokens hit the ceiling", 720 * time.Hour, time.Second, sessiond.AncestorWalkCeiling},
		{"just under the ceiling", 16368 * time.Minute, time.Minute, 16368*4 + 64},
		{"just over it", 16369 * time.Minute, time.Minute, sessiond.AncestorWalkCeiling},
		{"huge ratio does not overflow", 1 << 62, 1, sessiond.AncestorWalkCeiling},
		{"no access TTL: the ceiling", 720 * time.Hour, 0, sessiond.AncestorWalkCeiling},
		{"no session TTL: the ceiling", 0, 15 * time.Minute, sessiond.AncestorWalkCeiling},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := sessiond.Policy{SessionTTL: tt.sessionTTL, AccessTTL: tt.accessTTL}
			if got := p.MaxAncestorSteps(); got != tt.want {
				t.Errorf("got %d, want %d", got, tt.want)
			}
		})
	}
	if got, want := sessiond.DefaultPolicy().MaxAncestorSteps(), uint64(2880*4+64); got != want {
		t.Errorf("DefaultPolicy: got %d, want %d", got, want)
	}
}

func TestClassifyRefreshWalksNoFurtherThanTheBound(t *testing.T) {
	p := sessiond.DefaultPolicy()
	bound := p.MaxAncestorSteps()
	now := t0.Add(time.Hour)
	// A session refreshed far more often than once per access token.
	s := &sessiond.Session{
		ID: "s", Generation: 100_000, RefreshHash: []byte("current"), PrevHash: []byte("previous"),
		RotatedAt: now.Add(-time.Hour), CreatedAt: t0, LastUsedAt: now.Add(-time.Second), ExpiresAt: t0.Add(p.SessionTTL),
	}
	tests := []struct {
		name      string
		gen       uint64
		wantSteps []uint64 // the walks asked for
		want      sessiond.RefreshVerdict
	}{
		{"at the bound: walked", s.Generation - bound, []uint64{bound}, sessiond.RefreshReused},
		{"one beyond: refused without walking", s.Generation - bound - 1, nil, sessiond.RefreshInvalid},
		{"generation 0: refused without walking", 0, nil, sessiond.RefreshInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var steps []uint64
			a := &sessiond.RefreshAttempt{SessionID: "s", Generation: tt.gen, Hash: []byte("old"), NextHash: []byte("next"),
				IsAncestor: func(n uint64, _ []byte) bool { steps = append(steps, n); return true }}
			if got := sessiond.ClassifyRefresh(s, a, now, p); got != tt.want {
				t.Errorf("verdict: got %v, want %v", got, tt.want)
			}
			if !slices.Equal(steps, tt.wantSteps) {
				t.Errorf("walks: got %v, want %v", steps, tt.wantSteps)
			}
		})
	}
}

func TestErrRefreshReusedNamesTheUser(t *testing.T) {
	s := &sessiond.Session{ID: "s1", UserID: "u1", Generation: 7}
	err := error(sessiond.ErrRefreshReused(s, &sessiond.RefreshAttempt{SessionID: "s1", Generation: 3}))
	if got := sessiond.ErrorCode(err); got != sessiond.CodeRefreshTokenReused {
		t.Errorf("code: got %q, want %q", got, sessiond.CodeRefreshTokenReused)
	}
	var r *sessiond.RefreshReuse
	if !errors.As(err, &r) {
		t.Fatalf("got %v, want it to wrap a *RefreshReuse", err)
	}
	if want := (sessiond.RefreshReuse{UserID: "u1", SessionID: "s1", Presented: 3, Current: 7}); *r != want {
		t.Errorf("got %+v, want %+v", *r, want)
	}
}
