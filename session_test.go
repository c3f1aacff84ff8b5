package sessiond_test

import (
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

var t0 = time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)

func sess(id string, created, used time.Duration) sessiond.Session {
	return sessiond.Session{
		ID: id, CreatedAt: t0.Add(created), LastUsedAt: t0.Add(used),
		ExpiresAt: t0.Add(created + 720*time.Hour),
	}
}

func TestEvictions(t *testing.T) {
	p := sessiond.DefaultPolicy()
	p.MaxSessions = 3
	now := t0.Add(time.Hour)
	idleExpired := sessiond.Session{ID: "idle", CreatedAt: t0.Add(-200 * time.Hour), LastUsedAt: t0.Add(-190 * time.Hour), ExpiresAt: t0.Add(500 * time.Hour)}
	absExpired := sessiond.Session{ID: "abs", CreatedAt: t0.Add(-800 * time.Hour), LastUsedAt: now.Add(-time.Minute), ExpiresAt: t0.Add(-80 * time.Hour)}

	tests := []struct {
		name        string
		existing    []sessiond.Session
		wantExpired []string
		wantEvicted []string
	}{
		{"empty", nil, nil, nil},
		{"room left", []sessiond.Session{sess("a", 0, 0), sess("b", 1, 1)}, nil, nil},
		{"full: least recently used goes, not oldest created",
			[]sessiond.Session{sess("a", 0, 30*time.Minute), sess("b", 1, 2), sess("c", 2, 40*time.Minute)}, nil, []string{"b"}},
		{"tie on last use: oldest created goes",
			[]sessiond.Session{sess("a", 5, 10), sess("b", 3, 10), sess("c", 4, 20)}, nil, []string{"b"}},
		{"tie on both: smallest id goes",
			[]sessiond.Session{sess("z", 3, 10), sess("y", 3, 10), sess("c", 4, 20)}, nil, []string{"y"}},
		{"expired go first and do not count",
			[]sessiond.Session{idleExpired, sess("a", 0, 0), absExpired, sess("b", 1, 1)}, []string{"idle", "abs"}, nil},
		{"over the cap (cap lowered): evict down to cap-1",
			[]sessiond.Session{sess("a", 0, 5), sess("b", 1, 4), sess("c", 2, 3), sess("d", 3, 2), sess("e", 4, 1)}, nil, []string{"e", "d", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			expired, evicted := sessiond.Evictions(tt.existing, now, p)
			if !slices.Equal(expired, tt.wantExpired) {
				t.Errorf("expired: got %v, want %v", expired, tt.wantExpired)
			}
			if !slices.Equal(evicted, tt.wantEvicted) {
				t.Errorf("evicted: got %v, want %v", evicted, tt.wantEvicted)
			}
		})
	}
}

func TestSessionLive(t *testing.T) {
	p := sessiond.DefaultPolicy()
	s := sessiond.Session{CreatedAt: t0, LastUsedAt: t0, ExpiresAt: t0.Add(p.SessionTTL)}
	tests := []struct {
		name string
		now  time.Time
		want bool
	}{
		{"fresh", t0.Add(time.Second), true},
		{"just before idle expiry", t0.Add(p.IdleTTL - time.Microsecond), true},
		{"at idle expiry", t0.Add(p.IdleTTL), false},
		{"after absolute expiry even if used", t0.Add(p.SessionTTL), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.Live(tt.now, p); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	used := s
	used.LastUsedAt = t0.Add(700 * time.Hour)
	if got, want := used.Deadline(p), used.ExpiresAt; !got.Equal(want) {
		t.Errorf("deadline near absolute expiry: got %v, want %v", got, want)
	}
	if got, want := s.Deadline(p), t0.Add(p.IdleTTL); !got.Equal(want) {
		t.Errorf("deadline of an idle session: got %v, want %v", got, want)
	}
}

func TestSortMostRecentlyUsed(t *testing.T) {
	ss := []sessiond.Session{sess("a", 0, 1), sess("b", 1, 3), sess("c", 2, 2)}
	sessiond.SortMostRecentlyUsed(ss)
	var got []string
	for _, s := range ss {
		got = append(got, s.ID)
	}
	if want := []string{"b", "c", "a"}; !slices.Equal(got, want) {
		t.Errorf("got %v, want %v", got, want)
	}
}

func TestSweepExpired(t *testing.T) {
	p := sessiond.DefaultPolicy()
	now := t0.Add(time.Hour)
	tests := []struct {
		name              string
		absolute, idle    int // rows available of each kind
		limit, want       int
		wantIdleRequested int // n passed for idle; -1: idle not asked
	}{
		{"absolute fills the batch", 10, 10, 5, 5, -1},
		{"idle tops it up", 3, 10, 5, 5, 2},
		{"fewer than the limit", 1, 1, 5, 2, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			idleAsked := -1
			got, err := sessiond.SweepExpired(now, p, tt.limit, func(kind sessiond.Expiry, cutoff time.Time, n int) (int, error) {
				if kind == sessiond.ExpiredAbsolute {
					if !cutoff.Equal(now) {
						t.Errorf("absolute cutoff: got %v, want %v", cutoff, now)
					}
					return min(n, tt.absolute), nil
				}
				if !cutoff.Equal(p.IdleCutoff(now)) {
					t.Errorf("idle cutoff: got %v, want %v", cutoff, p.IdleCutoff(now))
				}
				idleAsked = n
				return min(n, tt.idle), nil
			})
			if err != nil || got != tt.want || idleAsked != tt.wantIdleRequested {
				t.Errorf("got %d, %v (idle asked %d), want %d (idle asked %d)", got, err, idleAsked, tt.want, tt.wantIdleRequested)
			}
		})
	}
}

func TestDPoPAllows(t *testing.T) {
	const a, b = "key-a-thumbprint", "key-b-thumbprint"
	for _, tc := range []struct {
		bound, presented string
		want             bool
	}{
		{"", "", true}, // unbound, no proof
		{"", a, true},  // unbound, a proof binds nothing
		{a, a, true},   // the bound key
		{a, "", false}, // no proof
		{a, b, false},  // another key
		{a, a[:4], false},
	} {
		s := &sessiond.Session{DPoPJKT: tc.bound}
		if got := s.DPoPAllows(tc.presented); got != tc.want {
			t.Errorf("bound to %q, presented %q: got %v, want %v", tc.bound, tc.presented, got, tc.want)
		}
	}
}
