package cluster_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

// ackedSession is what a client was told about a session: its id and the
// refresh token of the last 200 it got for it.
type ackedSession struct {
	id, rt string
}

// load is a login/refresh load from several workers, each a user logging
// in and then refreshing its newest session, over the instances targets
// returns at the moment of each request. It records every answer.
type load struct {
	t       *testing.T
	targets func() []*instance
	// allowed says whether an answer is acceptable at this point of the
	// test; every other answer is a failure.
	allowed func(op string, in *instance, r reply) bool

	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu       sync.Mutex
	sessions map[string]*ackedSession
	counts   map[string]int
	bad      []string
	lastOK   map[string]time.Time // instance name -> time of its last 200
}

// maxRequestTime is how long any single request may take, outage or not:
// the store's deadline (SESSIOND_DB_TIMEOUT, 2s in the fault tests) plus
// hashing and scheduling on a loaded machine.
const maxRequestTime = 8 * time.Second

// refreshesPerLogin is how many refreshes a worker makes per login.
const refreshesPerLogin = 8

// startLoad starts one worker per user.
func startLoad(t *testing.T, users [][2]string, targets func() []*instance, allowed func(op string, in *instance, r reply) bool) *load {
	ctx, cancel := context.WithCancel(context.Background())
	l := &load{t: t, targets: targets, allowed: allowed, cancel: cancel,
		sessions: map[string]*ackedSession{}, counts: map[string]int{}, lastOK: map[string]time.Time{}}
	for w, u := range users {
		l.wg.Go(func() { l.work(ctx, w, u[0], u[1]) })
	}
	t.Cleanup(l.stop)
	return l
}

func (l *load) work(ctx context.Context, w int, email, password string) {
	var cur *ackedSession
	refreshes := 0
	for k := w; ctx.Err() == nil; k++ {
		ins := l.targets()
		in := ins[k%len(ins)]
		op := "refresh"
		if cur == nil || refreshes >= refreshesPerLogin {
			op = "login"
		}
		rctx, cancel := context.WithTimeout(ctx, 2*maxRequestTime)
		start := time.Now()
		var r reply
		if op == "login" {
			r = login(rctx, in.URL, email, password)
		} else {
			r = refresh(rctx, in.URL, cur.rt)
		}
		took := time.Since(start)
		cancel()
		if ctx.Err() != nil {
			return // stopped mid-request: the answer is the test's doing
		}
		var tk tokens
		if r.Status == http.StatusOK {
			var err error
			if tk, err = r.tokens(); err != nil {
				r.Status, r.Err = 0, err
			}
		}
		l.record(op, in, r, took)
		switch {
		case r.Status == http.StatusOK && op == "login":
			cur, refreshes = &ackedSession{id: tk.SessionID, rt: tk.RefreshToken}, 0
			l.mu.Lock()
			l.sessions[cur.id] = cur
			l.mu.Unlock()
		case r.Status == http.StatusOK:
			l.mu.Lock()
			cur.rt = tk.RefreshToken
			l.mu.Unlock()
			refreshes++
		case r.Status == http.StatusUnauthorized:
			cur = nil // recorded as bad; start over rather than loop on it
		default:
			// Unavailable or unreachable: back off a little, as a client
			// would, and retry the same token.
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func (l *load) record(op string, in *instance, r reply, took time.Duration) {
	key := op + " "
	switch {
	case r.Err != nil:
		key += "unanswered"
	case r.Code != "":
		key += fmt.Sprintf("%d %s", r.Status, r.Code)
	default:
		key += fmt.Sprint(r.Status)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.counts[key]++
	if r.Status == http.StatusOK {
		l.lastOK[in.name] = time.Now()
	}
	if !l.allowed(op, in, r) || took > maxRequestTime {
		if len(l.bad) < 20 {
			l.bad = append(l.bad, fmt.Sprintf("%s on %s after %v: %v", op, in.name, took.Round(time.Millisecond), r))
		}
	}
}

// stop ends the load and waits for the workers.
func (l *load) stop() {
	l.cancel()
	l.wg.Wait()
}

// oks returns how many 200s the load has had so far.
func (l *load) oks() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.counts["login 200"] + l.counts["refresh 200"]
}

// okSince reports whether instance name answered 200 after t.
func (l *load) okSince(name string, t time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lastOK[name].After(t)
}

// waitOKs waits until the load has had n more 200s, or fails after d.
func (l *load) waitOKs(n int, d time.Duration) {
	l.t.Helper()
	want := l.oks() + n
	deadline := time.Now().Add(d)
	for l.oks() < want {
		if time.Now().After(deadline) {
			l.t.Fatalf("load: fewer than %d answers of 200 within %v: %v", n, d, l.summary())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// check stops the load and fails the test for every answer not allowed.
func (l *load) check() map[string]*ackedSession {
	l.t.Helper()
	l.stop()
	l.t.Logf("answers: %s", l.summary())
	for _, b := range l.bad {
		l.t.Errorf("unexpected answer: %s", b)
	}
	return l.sessions
}

func (l *load) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var parts []string
	for k, v := range l.counts {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, v))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// storedSession is a session row as far as the acknowledgement check needs.
type storedSession struct {
	generation          int64
	refreshHash, prevRT []byte
}

// rtGeneration is the generation a refresh token carries.
func rtGeneration(t testing.TB, rt string) int64 {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(rt)
	if err != nil || len(raw) != 56 {
		t.Fatalf("refresh token %q: not the 56-byte layout (%v)", rt, err)
	}
	return int64(binary.BigEndian.Uint64(raw[16:24]))
}

// checkAcked fails t unless every acknowledged session is stored, with
// the acknowledged refresh token current, or superseded by exactly one
// rotation whose answer the client may have lost (a request cut by a
// crash or an outage after its commit).
func checkAcked(t testing.TB, acked map[string]*ackedSession, stored map[string]storedSession) {
	t.Helper()
	if len(acked) == 0 {
		t.Fatal("no session was acknowledged; the load did nothing")
	}
	lost := 0
	for id, a := range acked {
		s, ok := stored[id]
		if !ok {
			t.Errorf("acknowledged session %s is not in the database", id)
			continue
		}
		h, gen := rtHash(t, a.rt), rtGeneration(t, a.rt)
		switch {
		case s.generation == gen && bytes.Equal(s.refreshHash, h):
		case s.generation == gen+1 && bytes.Equal(s.prevRT, h):
			lost++
		default:
			t.Errorf("session %s: stored generation %d, acknowledged generation %d: the acknowledged token is neither current nor just superseded", id, s.generation, gen)
		}
	}
	t.Logf("%d acknowledged sessions all stored; %d rotated once more by a request whose answer was lost", len(acked), lost)
}

// storedPostgres reads the sessions of ids from PostgreSQL at url.
func storedPostgres(t testing.TB, url string, acked map[string]*ackedSession) map[string]storedSession {
	t.Helper()
	var ids []string
	for id := range acked {
		ids = append(ids, id)
	}
	rows := query(t, url, `SELECT id, generation, refresh_hash, prev_hash FROM sessions WHERE id = ANY($1)`, ids)
	defer rows.Close()
	out := map[string]storedSession{}
	for rows.Next() {
		var id string
		var s storedSession
		if err := rows.Scan(&id, &s.generation, &s.refreshHash, &s.prevRT); err != nil {
			t.Fatal(err)
		}
		out[id] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// loadUsers signs up n users through base.
func loadUsers(t testing.TB, base string, n int) [][2]string {
	t.Helper()
	users := make([][2]string, n)
	for i := range users {
		e, p := signup(t, base)
		users[i] = [2]string{e, p}
	}
	return users
}
