package cluster_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// faultSettings are the settings of the fault tests: no eviction, so that
// every acknowledged session must still be there at the end, and a short
// database deadline, so that an outage is answered quickly.
func faultSettings(dbURL string) map[string]string {
	return map[string]string{
		"SESSIOND_DATABASE_URL": dbURL,
		"SESSIOND_MAX_SESSIONS": "1000",
		"SESSIOND_DB_TIMEOUT":   "2s",
	}
}

// TestKill9MidLoad kills one of three instances with SIGKILL in the middle
// of a login/refresh load. The other two keep answering; every login and
// refresh that was answered 200 is in the database, and nothing is
// half-written.
func TestKill9MidLoad(t *testing.T) {
	db := pgtest.URL(t)
	ins := startCluster(t, 3, faultSettings(db))
	victim := ins[0]
	var killed atomic.Bool
	targets := func() []*instance {
		if killed.Load() {
			return ins[1:] // the load balancer has noticed
		}
		return ins
	}
	allowed := func(op string, in *instance, r reply) bool {
		switch {
		case r.Status == http.StatusOK:
			return true
		case r.Err != nil:
			// Only requests in flight to the killed instance go unanswered.
			return in == victim && killed.Load()
		}
		// A busy password hasher may shed a login.
		return op == "login" && r.Status == http.StatusServiceUnavailable && r.Code == "unavailable"
	}
	l := startLoad(t, loadUsers(t, ins[1].URL, 6), targets, allowed)
	l.waitOKs(150, 30*time.Second)

	killed.Store(true)
	victim.Kill9()
	killedAt := time.Now()
	l.waitOKs(150, 30*time.Second)
	for _, in := range ins[1:] {
		if !l.okSince(in.name, killedAt) {
			t.Errorf("%s answered no 200 after the kill", in.name)
		}
	}
	acked := l.check()

	checkAcked(t, acked, storedPostgres(t, db, acked))
	checkInvariants(t, db, 1000, defaultIdle)
	// And from the client's side: every last acknowledged token still
	// works (a lost rotation is inside the grace window).
	for id, a := range acked {
		if r := refresh(context.Background(), ins[1].URL, a.rt); r.Status != http.StatusOK {
			t.Errorf("session %s: refresh with the last acknowledged token: got %v, want 200", id, r)
		}
	}
}

// TestSQLiteKill9DuringWrites kills the only instance on an SQLite
// database with SIGKILL during a write load and starts it again on the
// same file: the database opens clean (integrity_check ok, migrations
// fine) and every acknowledged session is there with its token.
func TestSQLiteKill9DuringWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sessiond.db")
	settings := faultSettings("sqlite:" + path)
	in := startInstance(t, "sqlite", settings)
	var killed atomic.Bool
	allowed := func(op string, _ *instance, r reply) bool {
		switch {
		case r.Status == http.StatusOK:
			return true
		case r.Err != nil:
			return killed.Load()
		}
		return op == "login" && r.Status == http.StatusServiceUnavailable && r.Code == "unavailable"
	}
	l := startLoad(t, loadUsers(t, in.URL, 4), func() []*instance { return []*instance{in} }, allowed)
	l.waitOKs(200, 30*time.Second)
	killed.Store(true)
	in.Kill9()
	acked := l.check()

	again := startInstance(t, "sqlite-restarted", settings)
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var integrity string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&integrity); err != nil || integrity != "ok" {
		t.Fatalf("integrity_check: got %q, %v, want ok", integrity, err)
	}
	stored := map[string]storedSession{}
	rows, err := db.Query(`SELECT id, generation, refresh_hash, prev_hash FROM sessions`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var s storedSession
		if err := rows.Scan(&id, &s.generation, &s.refreshHash, &s.prevRT); err != nil {
			t.Fatal(err)
		}
		stored[id] = s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	checkAcked(t, acked, stored)
	for id, a := range acked {
		if r := refresh(context.Background(), again.URL, a.rt); r.Status != http.StatusOK {
			t.Errorf("session %s after the restart: refresh with the last acknowledged token: got %v, want 200", id, r)
		}
	}
}

// TestStalledConnectionsAreCut opens connections that send part of a
// request header and then nothing (slowloris): the server still answers
// others meanwhile, and cuts each stalled connection after its header read
// timeout (5s, cmd/sessiond/serve.go) instead of holding it open.
func TestStalledConnectionsAreCut(t *testing.T) {
	t.Parallel() // it mostly waits
	in := startInstance(t, "slowloris", map[string]string{"SESSIOND_DATABASE_URL": "sqlite:" + filepath.Join(t.TempDir(), "s.db")})
	addr := in.URL[len("http://"):]
	const stalled = 64
	conns := make([]net.Conn, stalled)
	for i := range conns {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if _, err := io.WriteString(c, "POST /v1/login HTTP/1.1\r\nHost: sessiond\r\nContent-Type: applica"); err != nil {
			t.Fatal(err)
		}
		conns[i] = c
	}
	opened := time.Now()
	if r := call(context.Background(), "GET", in.URL+"/healthz", "", nil); r.Status != http.StatusOK {
		t.Fatalf("healthz beside %d stalled connections: got %v, want 200", stalled, r)
	}
	const within = 5*time.Second + 3*time.Second // the timeout, plus slack
	for i, c := range conns {
		c.SetReadDeadline(opened.Add(within))
		b, err := io.ReadAll(c)
		if errors.Is(err, os.ErrDeadlineExceeded) {
			t.Fatalf("stalled connection %d still open %v later", i, within)
		}
		// Go's server closes the connection, at most after a 408.
		if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 408")) {
			t.Errorf("stalled connection %d: got %q, want it closed", i, b)
		}
	}
	t.Logf("%d stalled connections cut %v after they stalled", stalled, time.Since(opened).Round(100*time.Millisecond))
}
