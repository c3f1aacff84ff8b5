package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/internal/loadgen"
)

// TestBenchCommand drives an in-process sessiond with every op for a moment:
// requests succeed, refresh tokens chain without a single reuse error.
func TestBenchCommand(t *testing.T) {
	// Every bench request comes from one IP; signups by the thousand are
	// the point here, not an abuse.
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) { c.SignupRate = 1_000_000 })
	for _, op := range loadgen.Ops {
		t.Run(op, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"bench", "-url", e.srv.URL, "-op", op, "-c", "4", "-d", "300ms", "-json"}, getenvFrom(nil), &out, io.Discard)
			if err != nil {
				t.Fatal(err)
			}
			var r loadgen.Result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatalf("-json output %q: %v", out.String(), err)
			}
			if r.Requests == 0 || r.OK != r.Requests || len(r.Errors) != 0 {
				t.Fatalf("got %d requests, %d ok, errors %v; want all ok", r.Requests, r.OK, r.Errors)
			}
			if r.P50 <= 0 || r.P99 < r.P50 || r.Max < r.P99 {
				t.Fatalf("percentiles out of order: %+v", r)
			}
		})
	}
	var human bytes.Buffer
	if err := run(context.Background(), []string{"bench", "-url", e.srv.URL, "-c", "2", "-d", "100ms"}, getenvFrom(nil), &human, io.Discard); err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(human.Bytes(), []byte("req/s")) || !bytes.Contains(human.Bytes(), []byte("p99")) {
		t.Fatalf("summary lacks req/s or p99: %s", human.String())
	}
}

// TestBenchDPoP: with -dpop every worker's session is bound to its key,
// and its refreshes and calls, proved each time, succeed, with and without
// server nonces.
func TestBenchDPoP(t *testing.T) {
	for _, nonce := range []bool{false, true} {
		t.Run(fmt.Sprintf("nonce=%v", nonce), func(t *testing.T) {
			// The proofs are made for -url, so it is the public URL.
			var h atomic.Pointer[http.Handler]
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*h.Load()).ServeHTTP(w, r) }))
			defer srv.Close()
			e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) {
				c.PublicURL, c.Issuer, c.DPoPNonce, c.DPoP = srv.URL, srv.URL, nonce, "required"
			})
			h.Store(&e.app.Handler)
			for _, op := range []string{"refresh", "me", "mixed"} {
				var out bytes.Buffer
				err := run(context.Background(), []string{"bench", "-url", srv.URL, "-dpop", "-op", op, "-c", "2", "-d", "300ms", "-json"}, getenvFrom(nil), &out, io.Discard)
				if err != nil {
					t.Fatalf("%s: %v", op, err)
				}
				var r loadgen.Result
				if err := json.Unmarshal(out.Bytes(), &r); err != nil {
					t.Fatalf("-json output %q: %v", out.String(), err)
				}
				if !r.DPoP || r.Requests == 0 || r.OK != r.Requests || len(r.Errors) != 0 {
					t.Fatalf("%s: got dpop %v, %d requests, %d ok, errors %v; want all ok", op, r.DPoP, r.Requests, r.OK, r.Errors)
				}
			}
		})
	}
}

// TestBenchCountsOnlyAnsweredRequests: a server that stops answering after
// some measured requests (it hangs up on every later connection) is
// reported as the requests it answered plus connection errors, and the
// command fails exactly when most requests did (always, when it answers
// none).
func TestBenchCountsOnlyAnsweredRequests(t *testing.T) {
	for _, answered := range []int64{64, 0} {
		t.Run(fmt.Sprintf("answered=%d", answered), func(t *testing.T) {
			e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", nil)
			const workers, setup = 2, 2 * 2 // signup and login per worker
			var served, hungUp atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if served.Add(1) > setup+answered {
					hungUp.Add(1)
					if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
						conn.Close()
					}
					return
				}
				e.app.Handler.ServeHTTP(w, r)
			}))
			defer srv.Close()
			var out bytes.Buffer
			err := run(context.Background(), []string{"bench", "-url", srv.URL, "-op", "me", "-c", strconv.Itoa(workers), "-d", "1s", "-json", "-cleanup=false"}, getenvFrom(nil), &out, io.Discard)
			var r loadgen.Result
			if jerr := json.Unmarshal(out.Bytes(), &r); jerr != nil {
				t.Fatalf("-json output %q: %v (run: %v)", out.String(), jerr, err)
			}
			// What the server did, against what bench says; a request cut
			// off by the end of the run is in neither of bench's counts.
			gotAnswers := served.Load() - hungUp.Load() - setup
			if r.Requests > gotAnswers || r.Requests < gotAnswers-workers || r.OK != r.Requests {
				t.Errorf("bench counted %d requests answered (%d ok); the server answered %d", r.Requests, r.OK, gotAnswers)
			}
			// net/http retries a GET once on a fresh connection when a
			// reused one is closed before any answer, so the server may
			// hang up on up to two tries of one failed request.
			if r.ConnectionErrors > hungUp.Load() || 2*r.ConnectionErrors < hungUp.Load()-workers || r.Errors["connection closed"] != r.ConnectionErrors {
				t.Errorf("bench counted %d connection errors (errors %v); the server hung up on %d", r.ConnectionErrors, r.Errors, hungUp.Load())
			}
			if answered == 0 && r.ConnectionErrors == 0 {
				t.Fatal("no request was made")
			}
			if r.Requests > 0 {
				if want := float64(r.Requests) / r.Seconds; r.RPS != want {
					t.Errorf("req/s %v, want answered requests per second %v", r.RPS, want)
				}
			}
			mostFailed := r.ConnectionErrors > r.Requests
			if mostFailed != (err != nil) || err != nil && !strings.Contains(err.Error(), "requests failed") {
				t.Errorf("%d answered, %d not: got error %v, want one exactly when most failed", r.Requests, r.ConnectionErrors, err)
			}
		})
	}
}

// TestBenchCleanup: with -cleanup (the default) and an admin key, the users
// bench made are gone afterwards; without a key they stay with no session
// left; with -cleanup=false they keep their sessions.
func TestBenchCleanup(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", nil)
	key := e.adminKey("bench")
	for _, tt := range []struct {
		name         string
		flag         string
		env          map[string]string
		wantUsers    bool
		wantSessions bool
	}{
		{"admin key", "-cleanup=true", map[string]string{benchAdminKeyEnv: key}, false, false},
		{"no admin key", "-cleanup=true", nil, true, false},
		{"no cleanup", "-cleanup=false", map[string]string{benchAdminKeyEnv: key}, true, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			if err := run(context.Background(), []string{"bench", "-url", e.srv.URL, "-op", "refresh", "-c", "3", "-d", "200ms", "-json", tt.flag}, getenvFrom(tt.env), &out, io.Discard); err != nil {
				t.Fatal(err)
			}
			var r loadgen.Result
			if err := json.Unmarshal(out.Bytes(), &r); err != nil {
				t.Fatal(err)
			}
			if r.Users != 3 {
				t.Fatalf("got %d users, want 3", r.Users)
			}
			if want := map[bool]int{false: 3, true: 0}[tt.wantUsers]; r.UsersDeleted != want {
				t.Errorf("got %d users deleted, want %d", r.UsersDeleted, want)
			}
			for i := range 3 {
				email := strings.Replace(strings.TrimPrefix(r.UserPattern, "*"), "*", strconv.Itoa(i), 1)
				_, err := e.app.Store.UserByEmail(context.Background(), email)
				if exists := err == nil; exists != tt.wantUsers {
					t.Fatalf("%s exists: %v (%v); want %v", email, exists, err, tt.wantUsers)
				}
				if !tt.wantUsers {
					continue
				}
				if got := len(e.liveSessions(email)); (got > 0) != tt.wantSessions {
					t.Errorf("%s has %d live sessions; want sessions left: %v", email, got, tt.wantSessions)
				}
			}
		})
	}
}
