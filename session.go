package sessiond

import (
	"context"
	"crypto/subtle"
	"sort"
	"time"
)

// Session is one login: the row behind a refresh token.
type Session struct {
	ID     string
	UserID string
	// RefreshHash is the SHA-256 of the current refresh token's secret part;
	// the token itself is never stored.
	RefreshHash []byte
	// PrevHash is the SHA-256 of the immediately superseded secret (nil until
	// the first rotation); RotatedAt is when it was superseded. Generation
	// counts rotations: the current token carries it, see refresh.go.
	PrevHash   []byte
	Generation uint64
	RotatedAt  time.Time

	CreatedAt  time.Time
	LastUsedAt time.Time
	ExpiresAt  time.Time // absolute expiry: CreatedAt + session TTL
	UserAgent  string
	IP         string

	// AMR is how the user proved who they are at login (RFC 8176 values:
	// "pwd", "ext", ...), and AuthTime when; every access token of the
	// session carries both. A zero AuthTime means CreatedAt.
	AMR      []string
	AuthTime time.Time

	// DPoPJKT is the RFC 7638 thumbprint of the key the session is bound
	// to (DPoP, RFC 9449): every refresh of it needs a proof by that key.
	// Empty for an unbound session. Set at login and never changed.
	DPoPJKT string
}

// DPoPAllows reports whether a request whose DPoP proof was made with the
// key of thumbprint jkt ("" for a request without a proof) may use s: any
// request may use an unbound session, only one with the bound key's proof
// a bound one.
func (s *Session) DPoPAllows(jkt string) bool {
	return s.DPoPJKT == "" || subtle.ConstantTimeCompare([]byte(s.DPoPJKT), []byte(jkt)) == 1
}

// Policy is the part of the configuration that decides about sessions.
type Policy struct {
	MaxSessions int           // live sessions per user
	SessionTTL  time.Duration // absolute lifetime from login
	IdleTTL     time.Duration // lifetime since LastUsedAt
	Rotate      bool          // rotate the refresh token on every refresh
	ReuseGrace  time.Duration // how long a just-superseded token still works
	// AccessTTL is the access-token lifetime. A client needs a refresh about
	// once per access token, so it bounds how many generations a real
	// session can advance in its lifetime (MaxAncestorSteps).
	AccessTTL time.Duration
}

// DefaultPolicy is the documented defaults (docs/API.md, "Configuration").
func DefaultPolicy() Policy {
	return Policy{MaxSessions: 5, SessionTTL: 720 * time.Hour, IdleTTL: 168 * time.Hour, Rotate: true, ReuseGrace: 10 * time.Second, AccessTTL: 15 * time.Minute}
}

// IdleCutoff is the LastUsedAt at or before which a session is idle-expired at now.
// Stores pass it into queries so that SQL and Live agree to the microsecond.
func (p Policy) IdleCutoff(now time.Time) time.Time { return now.Add(-p.IdleTTL) }

// Live reports whether s can still be used at now: before its absolute expiry
// and used within the idle TTL.
func (s *Session) Live(now time.Time, p Policy) bool {
	return now.Before(s.ExpiresAt) && s.LastUsedAt.After(p.IdleCutoff(now))
}

// AuthTimeOrCreated is when the session's user last proved who they are:
// AuthTime, or the login itself for a session from before it was kept.
func (s *Session) AuthTimeOrCreated() time.Time {
	if s.AuthTime.IsZero() {
		return s.CreatedAt
	}
	return s.AuthTime
}

// Deadline is when s expires if it is not used again: the earlier of its
// absolute and idle expiry.
func (s *Session) Deadline(p Policy) time.Time {
	idle := s.LastUsedAt.Add(p.IdleTTL)
	if idle.Before(s.ExpiresAt) {
		return idle
	}
	return s.ExpiresAt
}

// lessRecentlyUsed orders sessions for eviction: oldest LastUsedAt first,
// then oldest CreatedAt, then smallest ID (docs/API.md, invariant 2).
func lessRecentlyUsed(a, b *Session) bool {
	if !a.LastUsedAt.Equal(b.LastUsedAt) {
		return a.LastUsedAt.Before(b.LastUsedAt)
	}
	if !a.CreatedAt.Equal(b.CreatedAt) {
		return a.CreatedAt.Before(b.CreatedAt)
	}
	return a.ID < b.ID
}

// Evictions decides what a login must delete from a user's existing sessions
// so that, with the new one, at most p.MaxSessions are live: every expired
// session, then live ones least recently used first. It returns the ids of
// both groups; stores delete them all in the login's transaction.
func Evictions(existing []Session, now time.Time, p Policy) (expired, evicted []string) {
	live := make([]*Session, 0, len(existing))
	for i := range existing {
		s := &existing[i]
		if s.Live(now, p) {
			live = append(live, s)
		} else {
			expired = append(expired, s.ID)
		}
	}
	excess := len(live) - (p.MaxSessions - 1)
	if excess <= 0 {
		return expired, nil
	}
	sort.Slice(live, func(i, j int) bool { return lessRecentlyUsed(live[i], live[j]) })
	for _, s := range live[:excess] {
		evicted = append(evicted, s.ID)
	}
	return expired, evicted
}

// SortMostRecentlyUsed orders sessions for listing: most recently used first.
func SortMostRecentlyUsed(sessions []Session) {
	sort.Slice(sessions, func(i, j int) bool { return lessRecentlyUsed(&sessions[j], &sessions[i]) })
}

// SessionStore is what the stores offer about sessions outside a unit of
// work (Tx): reads, the refresh fast path and the background sweep. Every
// method that decides on expiry takes now from the caller's clock. Logins,
// logouts and the refresh slow path are package auth's algorithms on Tx.
type SessionStore interface {
	// RefreshCurrent is the fast path of a refresh, one statement: if a is
	// the current token of a live session, it stamps LastUsedAt with now
	// and, when p.Rotate, advances the token to a.NextHash, and returns
	// the session as it now is. nil, and no error, for any other token:
	// the caller then reads the session (Session) and classifies a
	// (ClassifyRefresh) with nothing held.
	RefreshCurrent(ctx context.Context, a *RefreshAttempt, now time.Time, p Policy) (*Session, error)

	// Session returns session id outside any transaction, from wherever
	// reads are cheapest; nil, and no error, if there is none.
	Session(ctx context.Context, id string) (*Session, error)

	// LiveSession returns the user's session id if it is live at now.
	// CodeNotFound if it does not exist, belongs to another user or expired.
	LiveSession(ctx context.Context, userID, id string, now time.Time, p Policy) (*Session, error)

	// ListSessions returns the user's live sessions, most recently used first.
	ListSessions(ctx context.Context, userID string, now time.Time, p Policy) ([]Session, error)

	// DeleteExpiredSessions deletes at most limit sessions expired at now and
	// returns how many it deleted.
	DeleteExpiredSessions(ctx context.Context, now time.Time, p Policy, limit int) (int, error)
}

// Expiry names the two ways a session expires, for the sweeper.
type Expiry int

const (
	ExpiredAbsolute Expiry = iota // expires_at <= cutoff
	ExpiredIdle                   // last_used_at <= cutoff
)

// SweepExpired fills one batch of at most limit deletions: sessions past
// their absolute expiry first, then idle ones. del deletes at most n sessions
// of one kind at or before cutoff and reports how many it deleted; stores
// give it one indexed statement per kind.
func SweepExpired(now time.Time, p Policy, limit int, del func(kind Expiry, cutoff time.Time, n int) (int, error)) (int, error) {
	total := 0
	for _, k := range []struct {
		kind   Expiry
		cutoff time.Time
	}{{ExpiredAbsolute, now}, {ExpiredIdle, p.IdleCutoff(now)}} {
		if total >= limit {
			break
		}
		n, err := del(k.kind, k.cutoff, limit-total)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}
