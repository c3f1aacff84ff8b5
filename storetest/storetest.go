// Package storetest is the behavioural contract of sessiond.Store: one suite,
// written against the interface, that every store (sqlite, postgres) runs
// against fresh databases of its own, so both stores are proven by the same
// tests (the ory/kratos persistence-test pattern).
//
// Start reading at Run; each subtest names the rule it proves, and the files
// follow the interfaces: user.go, session.go, refresh.go, key.go, attempt.go.
// Logins, refreshes and logouts are package auth's algorithms on the store's
// unit of work (sessiond.Tx); algorithms.go gives them to the suite as
// methods of the store, so each test still reads as a call on the store it
// proves, and events.go proves their events commit with their changes.
// The suite never sleeps: every expiry decision is driven by the now values it
// passes in, all offsets from the fixed instant t0.
package storetest

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// opener makes a new, migrated, empty store for one test.
type opener = func(t *testing.T) store

// Run runs the store contract against fresh stores made by open. Each call of
// open must return a NEW, migrated, empty database, cleaned up by t.Cleanup.
func Run(t *testing.T, openStore func(t *testing.T) sessiond.Store) {
	open := func(t *testing.T) store { return store{openStore(t)} }
	for _, g := range []struct {
		name string
		run  func(t *testing.T, open opener)
	}{
		{"users", testUsers},
		{"user_rows", testUserRows},
		{"errors", testErrors},
		{"permanent_errors", testPermanentErrors},
		{"create_session", testCreateSession},
		{"refresh_session", testRefreshSession},
		{"end_session_by_refresh", testEndSessionByRefresh},
		{"live_and_list", testLiveAndList},
		{"delete_sessions", testDeleteSessions},
		{"delete_expired_sessions", testDeleteExpiredSessions},
		{"keys", testKeys},
		{"key_schedule", testKeySchedule},
		{"secrets", testSecrets},
		{"reseal", testReseal},
		{"attempts", testAttempts},
		{"outbox", testOutbox},
		{"events", testEvents},
		{"admin", testAdmin},
		{"account_tokens", testAccountTokens},
		{"account_changes", testAccountChanges},
		{"mfa", testMFA},
		{"dpop_proofs", testDPoPProofs},
		{"dpop_binding", testDPoPBinding},
	} {
		t.Run(g.name, func(t *testing.T) { g.run(t, open) })
	}
}

// t0 is the suite's fixed epoch. It carries a non-zero microsecond part so
// that a store truncating to milliseconds or seconds fails the round trips.
var t0 = sessiond.Now(time.Date(2030, 1, 2, 3, 4, 5, 678912000, time.UTC))

// at returns t0 plus d.
func at(d time.Duration) time.Time { return t0.Add(d) }

const day = 24 * time.Hour

// policy is the suite's default: the documented defaults, small enough numbers to
// reason about.
func policy() sessiond.Policy {
	return sessiond.Policy{MaxSessions: 5, SessionTTL: 30 * day, IdleTTL: 7 * day, Rotate: true, ReuseGrace: 10 * time.Second, AccessTTL: 15 * time.Minute}
}

// ctx is the test's context, canceled when the test ends.
func ctx(t *testing.T) context.Context { return t.Context() }

// wantCode fails t unless err carries code.
func wantCode(t *testing.T, err error, code string) {
	t.Helper()
	if got := sessiond.ErrorCode(err); got != code {
		t.Errorf("got code %q (err %v), want %q", got, err, code)
	}
}

// mustOK fails t now if err is not nil.
func mustOK(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// diffSession lists the fields in which got differs from want; times must be
// equal AND in UTC, because the contract promises UTC values.
func diffSession(got, want *sessiond.Session) []string {
	var d []string
	str := func(name, g, w string) {
		if g != w {
			d = append(d, fmt.Sprintf("%s: got %q, want %q", name, g, w))
		}
	}
	byt := func(name string, g, w []byte) {
		if !bytes.Equal(g, w) {
			d = append(d, fmt.Sprintf("%s: got %x, want %x", name, g, w))
		}
	}
	tim := func(name string, g, w time.Time) {
		if !g.Equal(w) || (!g.IsZero() && g.Location() != time.UTC) {
			d = append(d, fmt.Sprintf("%s: got %v, want %v", name, g, w))
		}
	}
	str("ID", got.ID, want.ID)
	str("UserID", got.UserID, want.UserID)
	byt("RefreshHash", got.RefreshHash, want.RefreshHash)
	byt("PrevHash", got.PrevHash, want.PrevHash)
	if got.Generation != want.Generation {
		d = append(d, fmt.Sprintf("Generation: got %d, want %d", got.Generation, want.Generation))
	}
	tim("RotatedAt", got.RotatedAt, want.RotatedAt)
	tim("CreatedAt", got.CreatedAt, want.CreatedAt)
	tim("LastUsedAt", got.LastUsedAt, want.LastUsedAt)
	tim("ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	str("UserAgent", got.UserAgent, want.UserAgent)
	str("IP", got.IP, want.IP)
	str("DPoPJKT", got.DPoPJKT, want.DPoPJKT)
	return d
}

// wantSession fails t unless got equals want field by field.
func wantSession(t *testing.T, got, want *sessiond.Session) {
	t.Helper()
	if got == nil {
		t.Errorf("got nil session, want %s", want.ID)
		return
	}
	if d := diffSession(got, want); len(d) > 0 {
		t.Errorf("session %s differs:\n\t%s", want.ID, strings.Join(d, "\n\t"))
	}
}

// ids returns the ids of sessions, in order.
func ids(sessions []sessiond.Session) []string {
	out := make([]string, len(sessions))
	for i := range sessions {
		out[i] = sessions[i].ID
	}
	return out
}

// wantIDs fails t unless got and want hold the same ids in the same order.
func wantIDs(t *testing.T, what string, got, want []string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

// sorted returns a sorted copy of s, for comparing sets of ids.
func sorted(s []string) []string {
	c := slices.Clone(s)
	slices.Sort(c)
	return c
}
