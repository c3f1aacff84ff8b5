// Package loadgen drives a running sessiond over HTTP and measures it: the
// engine of `sessiond bench`. Each worker owns one user and one session and
// chains the refresh tokens it gets back, as a real client with rotation on
// does; with Options.DPoP each is a device whose session is bound to its
// own key, proving every refresh and call. Start at Run.
package loadgen

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/sessiond/sessiond/dpop"
)

// Ops are the operations Run can drive.
var Ops = []string{"signup", "login", "refresh", "me", "mixed"}

// Options say what to drive and how hard.
type Options struct {
	URL         string        // base URL of sessiond
	Op          string        // one of Ops
	Concurrency int           // workers
	Duration    time.Duration // measured time, after set-up
	// Progress, when set, gets a live line about once a second.
	Progress io.Writer
	// Cleanup removes what the run made once it is over: with AdminKey,
	// every user it signed up (DELETE /admin/v1/users/{id}, which ends their
	// sessions too); without, only their sessions (POST /v1/logout-all),
	// since the public API cannot delete a user.
	Cleanup bool
	// AdminKey is an admin API key, for Cleanup to delete users with.
	AdminKey string
	// DPoP makes every worker a device with its own P-256 key: its login
	// binds its session to the key (RFC 9449), and every refresh and
	// access-token call carries a fresh proof, for htu URL and the path,
	// so URL must be the public URL sessiond is configured with. Server
	// nonces are taken from the answers and used.
	DPoP bool
}

// Result is what a run measured.
type Result struct {
	Op          string  `json:"op"`
	DPoP        bool    `json:"dpop"`
	Concurrency int     `json:"concurrency"`
	Seconds     float64 `json:"seconds"`
	// Requests counts the requests sessiond answered, whatever the status;
	// RPS is their rate. Requests that got no answer (connection refused or
	// reset, timeout) are ConnectionErrors, also counted in Errors.
	Requests         int64            `json:"requests"`
	OK               int64            `json:"ok"`
	ConnectionErrors int64            `json:"connection_errors"`
	RPS              float64          `json:"rps"`
	P50              float64          `json:"p50_ms"`
	P90              float64          `json:"p90_ms"`
	P99              float64          `json:"p99_ms"`
	Max              float64          `json:"max_ms"`
	Errors           map[string]int64 `json:"errors"` // "401 invalid_refresh_token": count
	// Users is how many users the run signed up (as bench-RUN-N@example.com),
	// and SessionsEnded how many of their sessions Cleanup ended.
	Users         int    `json:"users"`
	UserPattern   string `json:"user_pattern"`
	SessionsEnded int    `json:"sessions_ended"`
	// UsersDeleted counts the users Cleanup deleted (with an admin key).
	UsersDeleted int `json:"users_deleted"`
}

// Attempts is every request made in the measured part, answered or not.
func (r *Result) Attempts() int64 { return r.Requests + r.ConnectionErrors }

// worker is one simulated client.
type worker struct {
	c        *http.Client
	base     string
	email    string
	password string
	at, rt   string
	seq      int
	lat      []time.Duration
	errs     map[string]int64
	ok       int64
	connErrs int64
	users    int      // signed up by this worker
	userIDs  []string // of those users, for Cleanup to delete
	// key, with Options.DPoP, is the worker's device key, and nonce the
	// server's latest DPoP nonce.
	key   *dpop.Key
	nonce string
}

// Run sets up one user and session per worker, then drives opt.Op for
// opt.Duration and returns the figures of the measured part only.
func Run(ctx context.Context, opt Options) (*Result, error) {
	if !slices.Contains(Ops, opt.Op) {
		return nil, fmt.Errorf("unknown op %q (want one of %v)", opt.Op, Ops)
	}
	if opt.Concurrency < 1 || opt.Duration <= 0 {
		return nil, errors.New("concurrency and duration must be positive")
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second}).DialContext,
		MaxIdleConns:        opt.Concurrency * 2,
		MaxIdleConnsPerHost: opt.Concurrency * 2,
		IdleConnTimeout:     time.Minute,
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	run := randomHex(4)

	workers := make([]*worker, opt.Concurrency)
	var setup sync.WaitGroup
	setupErr := make(chan error, opt.Concurrency)
	for i := range workers {
		w := &worker{c: client, base: opt.URL, email: fmt.Sprintf("bench-%s-%d@example.com", run, i),
			password: "bench horse battery " + run, errs: map[string]int64{}}
		if opt.DPoP {
			w.key = dpop.NewKey()
		}
		workers[i] = w
		setup.Add(1)
		go func() {
			defer setup.Done()
			if err := w.setUp(ctx, opt.Op); err != nil {
				setupErr <- err
			}
		}()
	}
	setup.Wait()
	close(setupErr)
	if err := <-setupErr; err != nil {
		if opt.Cleanup {
			cleanUp(ctx, workers)
		}
		return nil, fmt.Errorf("set up: %w", err)
	}

	var done atomic.Int64
	var failed atomic.Int64
	runCtx, cancel := context.WithTimeout(ctx, opt.Duration)
	defer cancel()
	stopProgress := progress(opt.Progress, &done, &failed)
	start := time.Now()
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for runCtx.Err() == nil {
				t := time.Now()
				ok, answered := w.do(runCtx, opt.Op)
				if runCtx.Err() != nil && !ok {
					break // cut off by the end of the run, not a failure
				}
				if answered {
					w.lat = append(w.lat, time.Since(t))
					done.Add(1)
				}
				if !ok {
					failed.Add(1)
				}
				if !answered {
					// Nothing listens, or it hangs up: pause rather than
					// spin on instant refusals.
					select {
					case <-runCtx.Done():
					case <-time.After(10 * time.Millisecond):
					}
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	stopProgress()
	r := summarize(opt, workers, elapsed)
	r.UserPattern = "*bench-" + run + "-*@example.com"
	if opt.Cleanup && opt.AdminKey != "" {
		r.UsersDeleted = deleteUsers(ctx, workers, opt.AdminKey)
	} else if opt.Cleanup {
		r.SessionsEnded = cleanUp(ctx, workers)
	}
	return r, nil
}

// cleanUp ends every session of every worker's user and returns how many,
// also after ctx ended (an interrupted run cleans up too), within a bound.
func cleanUp(ctx context.Context, workers []*worker) int {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	var ended atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		if w.at == "" {
			continue
		}
		wg.Go(func() {
			_, err := w.callAsDevice(ctx, "POST", "/v1/logout-all", nil, w.at, http.StatusNoContent)
			var se *statusError
			if errors.As(err, &se) && se.status == http.StatusUnauthorized {
				// The access token expired during a long run: a fresh one.
				if w.login(ctx) == nil {
					_, err = w.callAsDevice(ctx, "POST", "/v1/logout-all", nil, w.at, http.StatusNoContent)
				}
			}
			if err == nil {
				ended.Add(1)
			}
		})
	}
	wg.Wait()
	return int(ended.Load())
}

// deleteUsers deletes every user the run signed up through the admin API
// and returns how many, like cleanUp also after ctx ended, within a bound.
func deleteUsers(ctx context.Context, workers []*worker, adminKey string) int {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	var deleted atomic.Int64
	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Go(func() {
			for _, id := range w.userIDs {
				if _, err := w.call(ctx, "DELETE", "/admin/v1/users/"+url.PathEscape(id), nil, adminKey, http.StatusNoContent); err == nil {
					deleted.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return int(deleted.Load())
}

func summarize(opt Options, workers []*worker, elapsed time.Duration) *Result {
	r := &Result{Op: opt.Op, DPoP: opt.DPoP, Concurrency: opt.Concurrency, Seconds: elapsed.Seconds(), Errors: map[string]int64{}}
	var all []time.Duration
	for _, w := range workers {
		all = append(all, w.lat...)
		r.OK += w.ok
		r.ConnectionErrors += w.connErrs
		r.Users += w.users
		for k, v := range w.errs {
			r.Errors[k] += v
		}
	}
	r.Requests = int64(len(all))
	r.RPS = float64(r.Requests) / elapsed.Seconds()
	slices.Sort(all)
	pct := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		i := int(p*float64(len(all))+0.5) - 1
		return ms(all[max(0, min(i, len(all)-1))])
	}
	r.P50, r.P90, r.P99 = pct(0.50), pct(0.90), pct(0.99)
	if len(all) > 0 {
		r.Max = ms(all[len(all)-1])
	}
	return r
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// progress prints a live line every second until stopped.
func progress(w io.Writer, done, failed *atomic.Int64) (stop func()) {
	if w == nil {
		return func() {}
	}
	quit := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(time.Second)
		defer t.Stop()
		var last int64
		for {
			select {
			case <-quit:
				fmt.Fprint(w, "\r\033[K")
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(w, "\r\033[K%d requests, %d req/s, %d errors", n, n-last, failed.Load())
				last = n
			}
		}
	}()
	return func() { close(quit); <-finished }
}

// setUp gives the worker its user and session. Many workers signing up at
// once meet sessiond's bounded password hashing: like a client, they retry
// a 503 after a pause.
func (w *worker) setUp(ctx context.Context, op string) error {
	if op == "signup" {
		return nil
	}
	return retryBusy(ctx, func() error {
		body, err := w.call(ctx, "POST", "/v1/signup", map[string]string{"email": w.email, "password": w.password}, "", http.StatusCreated)
		var se *statusError
		if errors.As(err, &se) && se.code == "email_taken" {
			return nil // an earlier try got through after all
		}
		if err == nil {
			w.signedUp(body)
		}
		return err
	}, func() error { return w.login(ctx) })
}

// signedUp counts a user the worker made and keeps its id for Cleanup.
func (w *worker) signedUp(body []byte) {
	w.users++
	var u struct {
		UserID string `json:"user_id"`
	}
	if json.Unmarshal(body, &u) == nil && u.UserID != "" {
		w.userIDs = append(w.userIDs, u.UserID)
	}
}

// retryBusy runs each step, retrying one that gets 503 for up to a minute.
func retryBusy(ctx context.Context, steps ...func() error) error {
	for _, step := range steps {
		deadline := time.Now().Add(time.Minute)
		for {
			err := step()
			var se *statusError
			if err == nil || !errors.As(err, &se) || se.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
				if err != nil {
					return err
				}
				break
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
}

func (w *worker) login(ctx context.Context) error {
	body, err := w.callAsDevice(ctx, "POST", "/v1/login", map[string]string{"email": w.email, "password": w.password}, "", http.StatusOK)
	if err != nil {
		return err
	}
	return w.takeTokens(body)
}

func (w *worker) takeTokens(body []byte) error {
	var t struct {
		AccessToken  string `json:"access_token"`
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &t); err != nil || t.AccessToken == "" || t.RefreshToken == "" {
		return fmt.Errorf("token response %q: %v", body, err)
	}
	w.at, w.rt = t.AccessToken, t.RefreshToken
	return nil
}

// do performs one operation and reports whether it succeeded and whether
// sessiond answered at all; failures are counted by status and code, or as
// connection errors.
func (w *worker) do(ctx context.Context, op string) (ok, answered bool) {
	if op == "mixed" {
		// A client's day: mostly API calls, a refresh every few, a login now and then.
		switch w.seq++; {
		case w.seq%20 == 0:
			op = "login"
		case w.seq%4 == 0:
			op = "refresh"
		default:
			op = "me"
		}
	}
	var err error
	switch op {
	case "signup":
		w.seq++
		var body []byte
		body, err = w.call(ctx, "POST", "/v1/signup", map[string]string{"email": fmt.Sprintf("%d.%s", w.seq, w.email), "password": w.password}, "", http.StatusCreated)
		if err == nil {
			w.signedUp(body)
		}
	case "login":
		err = w.login(ctx)
	case "refresh":
		var body []byte
		if body, err = w.callAsDevice(ctx, "POST", "/v1/refresh", map[string]string{"refresh_token": w.rt}, "", http.StatusOK); err == nil {
			err = w.takeTokens(body)
		}
	case "me":
		_, err = w.callAsDevice(ctx, "GET", "/v1/me", nil, w.at, http.StatusOK)
	}
	if err != nil {
		var se *statusError
		if errors.As(err, &se) {
			w.errs[se.key()]++
			if se.status == http.StatusUnauthorized && op != "signup" {
				w.login(ctx) // a lost session: start a new one, as a client would
			}
			return false, true
		}
		if ctx.Err() == nil {
			w.errs[connectionError(err)]++
			w.connErrs++
		}
		return false, false
	}
	w.ok++
	return true, true
}

// connectionError names a request that got no answer, in a few stable
// words rather than the error text with its addresses and ports.
func connectionError(err error) string {
	var ne net.Error
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed"
	case errors.As(err, &ne) && ne.Timeout():
		return "connection timeout"
	}
	return "connection error"
}

// statusError is an unexpected HTTP answer.
type statusError struct {
	status int
	code   string
}

func (e *statusError) Error() string { return e.key() }
func (e *statusError) key() string   { return strconv.Itoa(e.status) + " " + e.code }

// call sends one request, with bearer (an access token or an admin key)
// as a Bearer token when it is set, and wants the status want.
func (w *worker) call(ctx context.Context, method, path string, body any, bearer string, want int) ([]byte, error) {
	return w.send(ctx, method, path, body, bearer, want, false)
}

// callAsDevice is call for the requests a device-bound client proves
// (login, refresh, its access token's): with Options.DPoP, it sends a
// fresh proof by the worker's key and the access token with the DPoP
// scheme, and retries once with the server's nonce when one is required.
func (w *worker) callAsDevice(ctx context.Context, method, path string, body any, at string, want int) ([]byte, error) {
	return w.send(ctx, method, path, body, at, want, w.key != nil)
}

func (w *worker) send(ctx context.Context, method, path string, body any, bearer string, want int, prove bool) ([]byte, error) {
	var b []byte
	if body != nil {
		b, _ = json.Marshal(body)
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, w.base+path, bytes.NewReader(b))
		if err != nil {
			return nil, err
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		scheme := "Bearer "
		if prove {
			proof, err := w.key.Proof(dpop.Claims{Method: method, URL: w.base + path, AccessToken: bearer, Nonce: w.nonce})
			if err != nil {
				return nil, err
			}
			req.Header.Set(dpop.Header, proof)
			scheme = "DPoP "
		}
		if bearer != "" {
			req.Header.Set("Authorization", scheme+bearer)
		}
		resp, err := w.c.Do(req)
		if err != nil {
			return nil, err
		}
		out, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			return nil, err
		}
		if n := resp.Header.Get(dpop.NonceHeader); n != "" {
			w.nonce = n
		}
		if resp.StatusCode == want {
			return out, nil
		}
		var p struct {
			Code string `json:"code"`
		}
		json.Unmarshal(out, &p)
		if prove && attempt == 0 && p.Code == "use_dpop_nonce" && w.nonce != "" {
			continue // the nonce is new or rotated: once more with it
		}
		return nil, &statusError{status: resp.StatusCode, code: p.Code}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}
