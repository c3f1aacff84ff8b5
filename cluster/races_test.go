package cluster_test

import (
	"context"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// raceIterations is how often each race is run, split over raceWorkers
// users racing side by side. Each iteration costs one login (one argon2
// hash at the real cost), which is what bounds the count.
func raceIterations() int {
	if short() {
		return 24
	}
	return 200
}

const raceWorkers = 4

// race runs a and b at the same moment and waits for both.
func race(a, b func()) {
	start := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() { <-start; a() })
	wg.Go(func() { <-start; b() })
	close(start)
	wg.Wait()
}

// sessionRows counts the rows of session id.
func sessionRows(t testing.TB, db, id string) int {
	t.Helper()
	return len(queryStrings(t, db, `SELECT id FROM sessions WHERE id = $1`, id))
}

// eachWorker runs f for raceWorkers users in parallel, each with its own
// share of raceIterations, and reports how often each outcome occurred.
func eachWorker(t *testing.T, ins []*instance, f func(w int, email, password string, iterations int, outcome func(string))) {
	t.Helper()
	var mu sync.Mutex
	outcomes := map[string]int{}
	users := make([][2]string, raceWorkers)
	for w := range users {
		e, p := signup(t, ins[w%len(ins)].URL)
		users[w] = [2]string{e, p}
	}
	var wg sync.WaitGroup
	for w := range raceWorkers {
		wg.Go(func() {
			f(w, users[w][0], users[w][1], raceIterations()/raceWorkers, func(o string) {
				mu.Lock()
				outcomes[o]++
				mu.Unlock()
			})
		})
	}
	wg.Wait()
	t.Logf("outcomes over %d iterations: %v", raceIterations(), outcomes)
}

// TestRefreshRacingEndOfSession races a refresh of a session against
// ending it, by logout-all and by DELETE /v1/sessions/{id}, each request on
// a different instance. Whichever wins, afterwards no refresh token of the
// session works, not even one minted by a refresh that won the race, and
// the row is gone.
func TestRefreshRacingEndOfSession(t *testing.T) {
	for _, end := range []string{"logout-all", "delete"} {
		t.Run("end="+end, func(t *testing.T) {
			db, ins := pgCluster(t, 3, nil)
			var failed atomic.Bool
			eachWorker(t, ins, func(w int, email, password string, n int, outcome func(string)) {
				// The delete is made from a second session of the user, as
				// from another device.
				var control tokens
				if end == "delete" {
					control = mustLogin(t, ins[w%3].URL, email, password)
				}
				for i := range n {
					if failed.Load() {
						return
					}
					a, b, c := ins[(w+i)%3], ins[(w+i+1)%3], ins[(w+i+2)%3]
					tk := mustLogin(t, a.URL, email, password)
					var rr, er reply
					race(func() { rr = refresh(context.Background(), b.URL, tk.RefreshToken) },
						func() {
							if end == "logout-all" {
								er = call(context.Background(), "POST", c.URL+"/v1/logout-all", tk.AccessToken, nil)
							} else {
								er = call(context.Background(), "DELETE", c.URL+"/v1/sessions/"+tk.SessionID, control.AccessToken, nil)
							}
						})
					if er.Status != http.StatusNoContent {
						t.Errorf("iteration %d: %s: got %v, want 204", i, end, er)
						failed.Store(true)
						return
					}
					rts := []string{tk.RefreshToken}
					switch {
					case rr.Status == http.StatusOK:
						outcome("refreshed, then ended")
						next, err := rr.tokens()
						if err != nil {
							t.Error(err)
						}
						rts = append(rts, next.RefreshToken)
					case rr.Status == http.StatusUnauthorized && rr.Code == "invalid_refresh_token":
						outcome("ended, then refresh refused")
					default:
						t.Errorf("iteration %d: racing refresh: got %v, want 200 or 401 invalid_refresh_token", i, rr)
						failed.Store(true)
						return
					}
					for j, rt := range rts {
						if r := refresh(context.Background(), ins[(w+i+j)%3].URL, rt); r.Status != http.StatusUnauthorized {
							t.Errorf("iteration %d: refresh token %d of the ended session: got %v, want 401", i, j, r)
							failed.Store(true)
						}
					}
					if n := sessionRows(t, db, tk.SessionID); n != 0 {
						t.Errorf("iteration %d: ended session has %d rows, want 0", i, n)
						failed.Store(true)
					}
				}
			})
			checkInvariants(t, db, 5, defaultIdle)
		})
	}
}

// TestRefreshOfLRURacingEvictingLogin races a refresh of a user's least
// recently used session against a login that must evict one, on different
// instances. Either the refresh won (it answered 200, the session is live
// and another was evicted) or the login did (the session is gone and its
// refresh was refused); never both, and the user has exactly max_sessions
// live sessions after every round.
func TestRefreshOfLRURacingEvictingLogin(t *testing.T) {
	const maxSessions = 3
	db, ins := pgCluster(t, 3, map[string]string{"SESSIOND_MAX_SESSIONS": strconv.Itoa(maxSessions)})
	var failed atomic.Bool
	var loginTime atomic.Int64 // of the last login, in nanoseconds
	loginTime.Store(int64(50 * time.Millisecond))
	eachWorker(t, ins, func(w int, email, password string, n int, outcome func(string)) {
		rts := map[string]string{} // session id -> its current refresh token
		for range maxSessions {
			tk := mustLogin(t, ins[w%3].URL, email, password)
			rts[tk.SessionID] = tk.RefreshToken
		}
		for i := range n {
			if failed.Load() {
				return
			}
			before := liveSessionIDs(t, db, email)
			if len(before) != maxSessions {
				t.Errorf("iteration %d: live sessions before: got %d, want %d", i, len(before), maxSessions)
				failed.Store(true)
				return
			}
			lru := before[0]
			b, c := ins[(w+i)%3], ins[(w+i+1)%3]
			var rr, lr reply
			// A login spends tens of milliseconds hashing before it reaches
			// the database, a refresh none: delaying the refresh by a random
			// share of that makes either order, and the overlap, common.
			delay := time.Duration(rand.IntN(int(loginTime.Load()*3/2) + 1))
			race(func() {
				time.Sleep(delay)
				rr = refresh(context.Background(), b.URL, rts[lru])
			},
				func() {
					for {
						start := time.Now()
						lr = login(context.Background(), c.URL, email, password)
						loginTime.Store(int64(time.Since(start)))
						if lr.Status != http.StatusServiceUnavailable {
							return
						}
					}
				})
			if lr.Status != http.StatusOK {
				t.Errorf("iteration %d: login: got %v, want 200", i, lr)
				failed.Store(true)
				return
			}
			newTk, err := lr.tokens()
			if err != nil {
				t.Error(err)
				return
			}
			rts[newTk.SessionID] = newTk.RefreshToken
			after := liveSessionIDs(t, db, email)
			lruLive := slices.Contains(after, lru)
			switch {
			case len(after) != maxSessions:
				t.Errorf("iteration %d: live sessions after: got %d %v, want %d", i, len(after), after, maxSessions)
			case !slices.Contains(after, newTk.SessionID):
				t.Errorf("iteration %d: the new session %s is not live", i, newTk.SessionID)
			case rr.Status == http.StatusOK && lruLive:
				outcome("refreshed; another evicted")
				next, err := rr.tokens()
				if err != nil {
					t.Error(err)
				}
				rts[lru] = next.RefreshToken
			case rr.Status == http.StatusOK && !lruLive:
				t.Errorf("iteration %d: session %s was refreshed (200) and evicted both", i, lru)
			case rr.Status == http.StatusUnauthorized && !lruLive:
				outcome("evicted; refresh refused")
			default:
				t.Errorf("iteration %d: refresh of LRU %s: got %v with the session live=%v, want 200 and live, or 401 and evicted", i, lru, rr, lruLive)
			}
			if t.Failed() {
				failed.Store(true)
				return
			}
			for id := range rts {
				if !slices.Contains(after, id) {
					delete(rts, id)
				}
			}
		}
	})
	checkInvariants(t, db, maxSessions, defaultIdle)
}
