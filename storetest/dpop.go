package storetest

import (
	"crypto/sha256"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// proofKey names a proof as dpop.Proof.ReplayKey does: 32 bytes.
func proofKey(name string) []byte {
	k := sha256.Sum256([]byte(name))
	return k[:]
}

func testDPoPProofs(t *testing.T, open opener) {
	t.Run("a proof is accepted once", func(t *testing.T) {
		st := open(t)
		exp := at(time.Minute)
		for i, tc := range []struct {
			key  string
			want bool
		}{
			{"a", true},
			{"a", false}, // the replay
			{"b", true},  // another proof
			{"a", false}, // still remembered
		} {
			got, err := st.AcceptDPoPProof(ctx(t), proofKey(tc.key), exp)
			mustOK(t, err, "AcceptDPoPProof")
			if got != tc.want {
				t.Errorf("accept %d (%s): got %v, want %v", i, tc.key, got, tc.want)
			}
		}
	})

	t.Run("concurrent accepts of one proof: exactly one is new", func(t *testing.T) {
		st := open(t)
		var wg sync.WaitGroup
		var fresh atomic.Int32
		for range 16 {
			wg.Go(func() {
				ok, err := st.AcceptDPoPProof(ctx(t), proofKey("same"), at(time.Minute))
				if err != nil {
					t.Errorf("AcceptDPoPProof: %v", err)
				}
				if ok {
					fresh.Add(1)
				}
			})
		}
		wg.Wait()
		if n := fresh.Load(); n != 1 {
			t.Errorf("new: got %d of 16, want 1", n)
		}
	})

	t.Run("the sweep deletes expired proofs only", func(t *testing.T) {
		st := open(t)
		now := at(time.Hour)
		for i := range 5 { // expired: at or before now
			_, err := st.AcceptDPoPProof(ctx(t), proofKey("old"+string(rune('0'+i))), now.Add(-time.Duration(i)*time.Second))
			mustOK(t, err, "AcceptDPoPProof")
		}
		_, err := st.AcceptDPoPProof(ctx(t), proofKey("live"), now.Add(time.Microsecond))
		mustOK(t, err, "AcceptDPoPProof")
		for i, want := range []int{3, 2, 0} {
			n, err := st.DeleteExpiredDPoPProofs(ctx(t), now, 3)
			mustOK(t, err, "DeleteExpiredDPoPProofs")
			if n != want {
				t.Errorf("sweep %d: got %d deleted, want %d", i, n, want)
			}
		}
		// The live one is still remembered; an expired one is forgotten.
		again, err := st.AcceptDPoPProof(ctx(t), proofKey("live"), now.Add(time.Minute))
		mustOK(t, err, "AcceptDPoPProof")
		if again {
			t.Error("unexpired proof: accepted again after the sweep, want refused")
		}
		again, err = st.AcceptDPoPProof(ctx(t), proofKey("old0"), now.Add(time.Minute))
		mustOK(t, err, "AcceptDPoPProof")
		if !again {
			t.Error("swept proof: refused, want forgotten")
		}
	})

	t.Run("concurrent sweepers", func(t *testing.T) {
		st := open(t)
		for i := range 20 {
			_, err := st.AcceptDPoPProof(ctx(t), proofKey(string(rune('A'+i))), at(0))
			mustOK(t, err, "AcceptDPoPProof")
		}
		total := sweepConcurrently(t, func() (int, error) { return st.DeleteExpiredDPoPProofs(ctx(t), at(time.Second), 3) })
		if total != 20 {
			t.Errorf("deleted: got %d, want 20", total)
		}
	})
}

const (
	jktA = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I" // RFC 9449's example thumbprint
	jktB = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs" // RFC 7638's
)

// boundFixture is a refresh fixture whose session is bound to jktA.
func boundFixture(t *testing.T, open opener) *refreshFixture {
	t.Helper()
	st := open(t)
	u := newUser(t, st, "u@example.com")
	s, c := newSession(u, t0)
	s.DPoPJKT = jktA
	create(t, st, s, t0)
	return &refreshFixture{st: st, u: u, s: s, c: c}
}

// withKey is a's attempt as presented with a proof by the key jkt.
func withKey(a *sessiond.RefreshAttempt, jkt string) *sessiond.RefreshAttempt {
	a.DPoPJKT = jkt
	return a
}

func testDPoPBinding(t *testing.T, open opener) {
	p := policy()
	now1 := at(time.Hour)

	t.Run("every read returns the binding", func(t *testing.T) {
		f := boundFixture(t, open)
		got, err := f.st.Session(ctx(t), f.s.ID)
		mustOK(t, err, "Session")
		wantSession(t, got, f.s)
		f.wantStored(t, f.s) // LiveSession
		all, err := f.st.ListSessions(ctx(t), f.u.ID, t0, p)
		mustOK(t, err, "ListSessions")
		if len(all) != 1 || all[0].DPoPJKT != jktA {
			t.Errorf("ListSessions: got %+v, want the one session bound to %s", all, jktA)
		}
		// The fast path's statement returns it as well.
		got, err = f.st.RefreshCurrent(ctx(t), withKey(f.c.attempt(0), jktA), now1, p)
		mustOK(t, err, "RefreshCurrent")
		want := f.rotated(0, now1)
		wantSession(t, got, want)
	})

	t.Run("the fast path matches only the bound key", func(t *testing.T) {
		for _, jkt := range []string{"", jktB} {
			f := boundFixture(t, open)
			got, err := f.st.RefreshCurrent(ctx(t), withKey(f.c.attempt(0), jkt), now1, p)
			mustOK(t, err, "RefreshCurrent")
			if got != nil {
				t.Errorf("key %q: got session %+v, want no match", jkt, got)
			}
			f.wantStored(t, f.s)
		}
	})

	// Every kind of token of a bound session, presented without its key,
	// is refused before it is classified: the session is not refreshed,
	// and not ended even for a token that would be reuse.
	for _, tc := range []struct {
		name string
		gen  uint64 // presented after two rotations, at now1 + 1m + 1h
	}{
		{"current", 2},
		{"superseded after grace", 1},
		{"ancestor", 0},
	} {
		t.Run("without the key: "+tc.name+" token", func(t *testing.T) {
			for _, jkt := range []string{"", jktB} {
				f := boundFixture(t, open)
				f.refreshWith(t, 0, now1, p, jktA)
				f.refreshWith(t, 1, now1.Add(time.Minute), p, jktA)
				before, err := f.stored(t)
				mustOK(t, err, "LiveSession")
				later := now1.Add(time.Minute + time.Hour)
				_, err = f.st.RefreshSession(ctx(t), withKey(f.c.attempt(tc.gen), jkt), later, p)
				wantCode(t, err, sessiond.CodeInvalidDPoPProof)
				f.wantStored(t, before)
				err = f.st.EndSessionByRefresh(ctx(t), withKey(f.c.attempt(tc.gen), jkt), p)
				wantCode(t, err, sessiond.CodeInvalidDPoPProof)
				f.wantStored(t, before)
				// The owner, with the key, goes on.
				got, err := f.st.RefreshSession(ctx(t), withKey(f.c.attempt(2), jktA), later, p)
				mustOK(t, err, "RefreshSession with the key")
				wantSession(t, got, f.rotated(2, later))
			}
		})
	}

	t.Run("with the key, reuse still ends the session", func(t *testing.T) {
		f := boundFixture(t, open)
		f.refreshWith(t, 0, now1, p, jktA)
		f.refreshWith(t, 1, now1.Add(time.Minute), p, jktA)
		_, err := f.st.RefreshSession(ctx(t), withKey(f.c.attempt(0), jktA), now1.Add(2*time.Minute), p)
		wantCode(t, err, sessiond.CodeRefreshTokenReused)
		f.wantGone(t)
	})

	t.Run("with the key, logout ends the session", func(t *testing.T) {
		f := boundFixture(t, open)
		mustOK(t, f.st.EndSessionByRefresh(ctx(t), withKey(f.c.attempt(0), jktA), p), "EndSessionByRefresh")
		f.wantGone(t)
	})

	t.Run("a proof on an unbound session binds nothing", func(t *testing.T) {
		f := newRefreshFixture(t, open)
		got := f.refreshWith(t, 0, now1, p, jktB)
		want := f.rotated(0, now1)
		wantSession(t, got, want)
		f.wantStored(t, want)
		// And the session goes on without one.
		wantSession(t, f.refresh(t, 1, now1.Add(time.Second), p), f.rotated(1, now1.Add(time.Second)))
	})

	t.Run("concurrent refreshes without the key change nothing", func(t *testing.T) {
		f := boundFixture(t, open)
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				jkt := []string{"", jktB}[i%2]
				_, err := f.st.RefreshSession(ctx(t), withKey(f.c.attempt(0), jkt), now1, p)
				if sessiond.ErrorCode(err) != sessiond.CodeInvalidDPoPProof {
					t.Errorf("got %v, want %s", err, sessiond.CodeInvalidDPoPProof)
				}
			})
		}
		wg.Wait()
		f.wantStored(t, f.s)
	})
}

// refreshWith presents generation gen with a proof by key jkt at now and
// fails t on any error.
func (f *refreshFixture) refreshWith(t *testing.T, gen uint64, now time.Time, p sessiond.Policy, jkt string) *sessiond.Session {
	t.Helper()
	got, err := f.st.RefreshSession(ctx(t), withKey(f.c.attempt(gen), jkt), now, p)
	mustOK(t, err, "RefreshSession")
	return got
}
