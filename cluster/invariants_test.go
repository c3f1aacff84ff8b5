package cluster_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"math/rand/v2"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// defaultIdle is the default idle lifetime (docs/API.md), for the invariant query.
const defaultIdle = 168 * time.Hour

// pgCluster starts n instances on a fresh database of the shared test
// server and returns the database URL and the instances.
func pgCluster(t *testing.T, n int, settings map[string]string) (string, []*instance) {
	t.Helper()
	db := pgtest.URL(t)
	s := map[string]string{"SESSIOND_DATABASE_URL": db}
	for k, v := range settings {
		s[k] = v
	}
	return db, startCluster(t, n, s)
}

// liveSessionIDs returns the user's sessions in eviction order (least
// recently used first).
func liveSessionIDs(t testing.TB, db, email string) []string {
	t.Helper()
	return queryStrings(t, db, `
		SELECT s.id FROM sessions s JOIN users u ON u.id = s.user_id
		WHERE u.email = $1 AND s.expires_at > now()
		ORDER BY s.last_used_at, s.created_at, s.id`, email)
}

// TestConcurrentLoginsKeepTheCap sends 200 logins for one user at once,
// spread over three instances: afterwards exactly max_sessions sessions are
// live, each of them one the client was answered 200 for, and every other
// acknowledged login was evicted cleanly (its refresh token is refused).
func TestConcurrentLoginsKeepTheCap(t *testing.T) {
	const logins, maxSessions = 200, 5
	db, ins := pgCluster(t, 3, map[string]string{"SESSIOND_MAX_SESSIONS": strconv.Itoa(maxSessions)})
	email, password := signup(t, ins[0].URL)

	acked := make([]tokens, logins)
	errs := make([]string, logins)
	busy := 0
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			base := ins[i%len(ins)].URL
			// A 503 is the bounded password hasher shedding load (200
			// argon2 hashes on two cores); a client retries it.
			for range 200 {
				r := login(context.Background(), base, email, password)
				if r.Status == http.StatusServiceUnavailable && r.Code == "unavailable" {
					mu.Lock()
					busy++
					mu.Unlock()
					time.Sleep(time.Duration(50+rand.IntN(200)) * time.Millisecond)
					continue
				}
				if r.Status != http.StatusOK {
					errs[i] = r.String()
					return
				}
				tk, err := r.tokens()
				if err != nil {
					errs[i] = err.Error()
				}
				acked[i] = tk
				return
			}
			errs[i] = "still busy after 200 tries"
		})
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("login %d: got %s, want 200", i, e)
		}
	}
	if t.Failed() {
		return
	}
	t.Logf("%d logins answered 200 after %d busy 503s", logins, busy)

	live := liveSessionIDs(t, db, email)
	if len(live) != maxSessions {
		t.Errorf("live sessions: got %d, want %d", len(live), maxSessions)
	}
	byID := map[string]tokens{}
	for _, tk := range acked {
		if _, dup := byID[tk.SessionID]; dup {
			t.Errorf("session %s answered to two logins", tk.SessionID)
		}
		byID[tk.SessionID] = tk
	}
	for _, id := range live {
		if _, ok := byID[id]; !ok {
			t.Errorf("live session %s was never answered to the client", id)
		}
	}
	// Every acknowledged login is either live (its RT works) or was
	// evicted whole (its RT is refused as unknown, not half-present).
	for i, tk := range acked {
		r := refresh(context.Background(), ins[i%len(ins)].URL, tk.RefreshToken)
		isLive := slices.Contains(live, tk.SessionID)
		switch {
		case isLive && r.Status != http.StatusOK:
			t.Errorf("refresh of live session %s: got %v, want 200", tk.SessionID, r)
		case !isLive && (r.Status != http.StatusUnauthorized || r.Code != "invalid_refresh_token"):
			t.Errorf("refresh of evicted session %s: got %v, want 401 invalid_refresh_token", tk.SessionID, r)
		}
	}
	checkInvariants(t, db, maxSessions, defaultIdle)
}

// TestSameRefreshTokenOnEveryInstance presents one refresh token to all
// three instances at once, three times each: invariant 4 of docs/API.md says
// every request succeeds inside the grace window and all converge on one
// new token; the session is rotated once and not duplicated.
func TestSameRefreshTokenOnEveryInstance(t *testing.T) {
	const rounds, perInstance = 25, 3
	db, ins := pgCluster(t, 3, nil)
	email, password := signup(t, ins[0].URL)
	conn := connect(t, db)

	for round := range rounds {
		tk := mustLogin(t, ins[round%3].URL, email, password)
		n := len(ins) * perInstance
		replies := make([]reply, n)
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				<-start
				replies[i] = refresh(context.Background(), ins[i%len(ins)].URL, tk.RefreshToken)
			})
		}
		close(start)
		wg.Wait()
		var next string
		for i, r := range replies {
			if r.Status != http.StatusOK {
				t.Fatalf("round %d: refresh %d: got %v, want 200", round, i, r)
			}
			got, err := r.tokens()
			if err != nil {
				t.Fatal(err)
			}
			if next == "" {
				next = got.RefreshToken
			}
			if got.RefreshToken != next || got.SessionID != tk.SessionID {
				t.Fatalf("round %d: refresh %d got session %s token %.12s…, want session %s token %.12s… like the others",
					round, i, got.SessionID, got.RefreshToken, tk.SessionID, next)
			}
		}
		var count, generation int
		var hash []byte
		err := conn.QueryRow(context.Background(),
			`SELECT count(*) OVER (), generation, refresh_hash FROM sessions WHERE id = $1`, tk.SessionID).Scan(&count, &generation, &hash)
		if err != nil {
			t.Fatalf("round %d: session row: %v", round, err)
		}
		if count != 1 || generation != 1 || string(hash) != string(rtHash(t, next)) {
			t.Fatalf("round %d: rows %d generation %d: got hash %x, want 1 row, generation 1, hash %x", round, count, generation, hash, rtHash(t, next))
		}
	}
	checkInvariants(t, db, 5, defaultIdle)
}

// jwksKids returns the kids an instance publishes.
func jwksKids(t testing.TB, base string) []string {
	t.Helper()
	r := call(context.Background(), "GET", base+"/.well-known/jwks.json", "", nil)
	if r.Status != http.StatusOK {
		t.Fatalf("jwks: got %v, want 200", r)
	}
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil {
		t.Fatalf("jwks: %v", err)
	}
	var kids []string
	for _, k := range doc.Keys {
		kids = append(kids, k.Kid)
	}
	slices.Sort(kids)
	return kids
}

// jwksFirstKid returns the first kid of an instance's JWKS: the key it
// signs with.
func jwksFirstKid(t testing.TB, base string) string {
	t.Helper()
	r := call(context.Background(), "GET", base+"/.well-known/jwks.json", "", nil)
	var doc struct {
		Keys []struct {
			Kid string `json:"kid"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(r.Body, &doc); err != nil || len(doc.Keys) == 0 {
		t.Fatalf("jwks: got %v, want keys", r)
	}
	return doc.Keys[0].Kid
}

// atKid returns the kid in an access token's header.
func atKid(t testing.TB, at string) string {
	t.Helper()
	h, _, _ := strings.Cut(at, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("access token header: %v", err)
	}
	var hdr struct{ Kid string }
	if err := json.Unmarshal(raw, &hdr); err != nil {
		t.Fatalf("access token header: %v", err)
	}
	return hdr.Kid
}

// TestKeyRotationReachesEveryInstance rotates the signing key with the CLI
// and shows every instance publishing the new key within the reload
// interval (1s here) and signing with it after the activation delay (2s
// here), and every AT, signed by any instance with the old key or the new,
// accepted by every instance.
func TestKeyRotationReachesEveryInstance(t *testing.T) {
	// Room for the six logins below, so that none is evicted.
	db, ins := pgCluster(t, 3, map[string]string{"SESSIOND_MAX_SESSIONS": "10"})
	email, password := signup(t, ins[0].URL)

	before := jwksKids(t, ins[0].URL)
	if len(before) != 1 {
		t.Fatalf("kids before rotation: got %v, want one key", before)
	}
	for _, in := range ins[1:] {
		if got := jwksKids(t, in.URL); !slices.Equal(got, before) {
			t.Fatalf("%s publishes %v, want %v like instance-0", in.name, got, before)
		}
	}
	var ats []string
	for _, in := range ins {
		ats = append(ats, mustLogin(t, in.URL, email, password).AccessToken)
	}

	const activateAfter = 2 * time.Second
	kid := rotateKey(t, db, activateAfter)
	rotated := time.Now()

	// Reload is every 1s; allow for a loaded machine, but not much more.
	const within = 4 * time.Second
	for _, in := range ins {
		for !slices.Contains(jwksKids(t, in.URL), kid) {
			if time.Since(rotated) > within {
				t.Fatalf("%s does not publish %s %v after the rotation", in.name, kid, within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	t.Logf("every instance publishes the new key %v after the rotation", time.Since(rotated).Round(time.Millisecond))
	// The signing key leads the JWKS: wait for the switch, one reload after
	// the activation.
	for _, in := range ins {
		for jwksFirstKid(t, in.URL) != kid {
			if time.Since(rotated) > activateAfter+within {
				t.Fatalf("%s does not sign with %s %v after the rotation", in.name, kid, activateAfter+within)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	for _, in := range ins {
		if got := jwksKids(t, in.URL); !slices.Contains(got, before[0]) {
			t.Errorf("%s dropped the retired key: got %v, want it kept until its tokens expire", in.name, got)
		}
		at := mustLogin(t, in.URL, email, password).AccessToken
		if got := atKid(t, at); got != kid {
			t.Errorf("%s signs with %s, want the new key %s", in.name, got, kid)
		}
		ats = append(ats, at)
	}
	for i, at := range ats {
		for _, in := range ins {
			if r := call(context.Background(), "GET", in.URL+"/v1/me", at, nil); r.Status != http.StatusOK {
				t.Errorf("AT %d (kid %s) on %s: got %v, want 200", i, atKid(t, at), in.name, r)
			}
		}
	}
	checkInvariants(t, db, 10, defaultIdle)
}

// TestThrottleSharedAcrossInstances spreads failed logins over three
// instances: the shared counter trips the limit on every instance, for
// the right password too.
func TestThrottleSharedAcrossInstances(t *testing.T) {
	const maxFailures = 4
	db, ins := pgCluster(t, 3, map[string]string{"SESSIOND_LOGIN_MAX_FAILURES": strconv.Itoa(maxFailures)})
	email, password := signup(t, ins[0].URL)
	for i := range maxFailures {
		r := login(context.Background(), ins[i%3].URL, email, "wrong-"+password)
		if r.Status != http.StatusUnauthorized || r.Code != "invalid_credentials" {
			t.Fatalf("failure %d on %s: got %v, want 401 invalid_credentials", i, ins[i%3].name, r)
		}
	}
	for _, in := range ins {
		for _, pw := range []string{"wrong-" + password, password} {
			req, _ := http.NewRequest("POST", in.URL+"/v1/login",
				strings.NewReader(`{"email":"`+email+`","password":"`+pw+`"}`))
			req.Header.Set("Content-Type", "application/json")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
				t.Errorf("%s after %d failures elsewhere: got %d Retry-After %q, want 429 with Retry-After",
					in.name, maxFailures, resp.StatusCode, resp.Header.Get("Retry-After"))
			}
		}
	}
	checkInvariants(t, db, 5, defaultIdle)
}

// short reports whether the looped tests should run few iterations.
func short() bool { return testing.Short() || os.Getenv("SESSIOND_CLUSTER_SHORT") != "" }
