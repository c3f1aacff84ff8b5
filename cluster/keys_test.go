package cluster_test

import (
	"context"
	"net/http"
	"os/exec"
	"regexp"
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/seal"
)

// rotateKey runs `sessiond keys rotate` on db with the given activation
// delay (and further SESSIOND_* settings as KEY=VALUE) and returns the new kid.
func rotateKey(t *testing.T, db string, activateAfter time.Duration, env ...string) string {
	t.Helper()
	cmd := exec.Command(sessiondBin, "keys", "rotate", "-activate-after", activateAfter.String())
	cmd.Env = append(append(baseEnv(), "SESSIOND_DATABASE_URL="+db), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("sessiond keys rotate: %v: %s", err, out)
	}
	m := regexp.MustCompile(`new current signing key (\S+);`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("sessiond keys rotate printed %q, want the new kid", out)
	}
	return string(m[1])
}

// TestKeyRotationNeverRefusedAcrossInstances: two instances on one
// database that reload their keys at different times (every 1s and every
// 6s). Across a rotation, each keeps issuing ATs that the other verifies:
// not one AT of either is ever refused by the other, and no instance signs
// with a key that either instance's JWKS lacks. Both end up signing with the
// new key. Secrets are encrypted at rest, so the key the CLI rotates in is
// sealed and every process opens it.
func TestKeyRotationNeverRefusedAcrossInstances(t *testing.T) {
	db := pgtest.URL(t)
	encryptionKey := seal.Generate()
	fast := startInstance(t, "fast-reload", map[string]string{"SESSIOND_DATABASE_URL": db, "SESSIOND_KEY_RELOAD": "1s", "SESSIOND_ENCRYPTION_KEY": encryptionKey})
	slow := startInstance(t, "slow-reload", map[string]string{"SESSIOND_DATABASE_URL": db, "SESSIOND_KEY_RELOAD": "6s", "SESSIOND_ENCRYPTION_KEY": encryptionKey})
	ins := []*instance{fast, slow}
	email, password := signup(t, fast.URL)
	rts := make([]string, len(ins))
	for i, in := range ins {
		rts[i] = mustLogin(t, in.URL, email, password).RefreshToken
	}
	oldKids := jwksKids(t, fast.URL)
	if len(oldKids) != 1 {
		t.Fatalf("kids before rotation: got %v, want one", oldKids)
	}

	// The activation delay must exceed the slowest reload; 6s + margin.
	const activateAfter = 9 * time.Second
	newKid := rotateKey(t, db, activateAfter, "SESSIOND_ENCRYPTION_KEY="+encryptionKey)
	deadline := time.Now().Add(activateAfter + 30*time.Second)

	ctx := context.Background()
	signedNew := make([]int, len(ins))
	checked, refused := 0, 0
	// Keep going until each instance has signed with the new key a few
	// times, so the switch of the slow instance is crossed too.
	for signedNew[0] < 3 || signedNew[1] < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: ATs signed with the new key by each instance %v, want both switched", activateAfter+30*time.Second, signedNew)
		}
		for i, in := range ins {
			r := refresh(ctx, in.URL, rts[i])
			if r.Status != http.StatusOK {
				t.Fatalf("refresh on %s: got %v, want 200", in.name, r)
			}
			tk, err := r.tokens()
			if err != nil {
				t.Fatal(err)
			}
			rts[i] = tk.RefreshToken
			kid := atKid(t, tk.AccessToken)
			if kid == newKid {
				signedNew[i]++
			} else if kid != oldKids[0] {
				t.Fatalf("%s signed with %s, neither the old nor the new key", in.name, kid)
			}
			for _, other := range ins {
				if got := jwksKids(t, other.URL); !slices.Contains(got, kid) {
					t.Errorf("%s signed with %s, which %s does not publish (%v)", in.name, kid, other.name, got)
				}
				checked++
				if r := call(ctx, "GET", other.URL+"/v1/me", tk.AccessToken, nil); r.Status != http.StatusOK {
					refused++
					t.Errorf("AT of %s (kid %s) on %s: got %v, want 200", in.name, kid, other.name, r)
				}
			}
		}
		if refused > 5 {
			t.Fatalf("%d of %d ATs refused; stopping", refused, checked)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Logf("%d cross-instance verifications, %d refused; ATs by the new key %v", checked, refused, signedNew)
	checkInvariants(t, db, 5, defaultIdle)
}
