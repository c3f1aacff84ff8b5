package cluster_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// pgVersion is the PostgreSQL major version whose Debian cluster tools
// (pg_createcluster, pg_ctlcluster, pg_dropcluster) the outage and failover
// tests use to make throwaway clusters, never touching the shared server.
const pgVersion = "15"

// pgServer is a throwaway PostgreSQL cluster of this test.
type pgServer struct {
	t    *testing.T
	name string
	port int
}

// requireClusterTools skips t unless it can make throwaway clusters: root
// (pg_createcluster runs initdb as postgres and writes /etc/postgresql) and
// the Debian cluster tools with PostgreSQL 15. Like every test here, it
// needs SESSIOND_TEST_POSTGRES_URL too, so that `go test ./...` on a
// machine without PostgreSQL stays quiet.
func requireClusterTools(t *testing.T) {
	t.Helper()
	if os.Getenv(pgtest.EnvURL) == "" {
		t.Skip(pgtest.EnvURL + " not set; skipping PostgreSQL tests")
	}
	if os.Geteuid() != 0 {
		t.Skip("throwaway PostgreSQL clusters need root (pg_createcluster); skipping")
	}
	for _, tool := range []string{"pg_createcluster", "pg_ctlcluster", "pg_dropcluster", "runuser"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not found (Debian's postgresql-common); skipping", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/postgresql/" + pgVersion + "/bin/pg_basebackup"); err != nil {
		t.Skipf("PostgreSQL %s binaries not found; skipping", pgVersion)
	}
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func run(t *testing.T, name string, args ...string) {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
}

// newPGServer creates (but does not start) a cluster on a free port with
// trust authentication on 127.0.0.1, replication included, and drops it
// when t ends, whatever happened.
func newPGServer(t *testing.T, role string) *pgServer {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	s := &pgServer{t: t, name: "sessiond_" + role + "_" + hex.EncodeToString(b[:]), port: freePort(t)}
	t.Cleanup(func() {
		out, err := exec.Command("pg_dropcluster", "--stop", pgVersion, s.name).CombinedOutput()
		if err != nil {
			t.Errorf("pg_dropcluster %s: %v\n%s", s.name, err, out)
		}
	})
	run(t, "pg_createcluster", pgVersion, s.name, "--port", strconv.Itoa(s.port), "--start-conf", "manual")
	hba := "local all all trust\nhost all all 127.0.0.1/32 trust\n" +
		"local replication all trust\nhost replication all 127.0.0.1/32 trust\n"
	s.writeConf("pg_hba.conf", hba)
	// Small, and quick to give up on a dead peer.
	s.writeConf("conf.d/sessiond-test.conf", "listen_addresses = '127.0.0.1'\nmax_connections = 60\n"+
		"shared_buffers = 16MB\nwal_sender_timeout = 5s\nwal_receiver_timeout = 5s\n")
	return s
}

func (s *pgServer) confDir() string { return filepath.Join("/etc/postgresql", pgVersion, s.name) }

func (s *pgServer) dataDir() string { return filepath.Join("/var/lib/postgresql", pgVersion, s.name) }

func (s *pgServer) writeConf(name, text string) {
	s.t.Helper()
	if err := os.WriteFile(filepath.Join(s.confDir(), name), []byte(text), 0o644); err != nil {
		s.t.Fatal(err)
	}
}

func (s *pgServer) ctl(action string, args ...string) {
	s.t.Helper()
	run(s.t, "pg_ctlcluster", append([]string{"--skip-systemctl-redirect", pgVersion, s.name, action}, args...)...)
}

// Start starts the cluster and waits until it accepts connections.
func (s *pgServer) Start() {
	s.t.Helper()
	s.ctl("start")
	deadline := time.Now().Add(30 * time.Second)
	for {
		conn, err := pgx.Connect(context.Background(), s.URL("postgres"))
		if err == nil {
			conn.Close(context.Background())
			return
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("%s does not accept connections: %v", s.name, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the cluster; mode is pg_ctl's: fast, or immediate for a crash.
func (s *pgServer) Stop(mode string) { s.ctl("stop", "-m", mode) }

// URL is the address of database db on this cluster.
func (s *pgServer) URL(db string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable&connect_timeout=2", s.port, db)
}

// Exec runs statements on database db.
func (s *pgServer) Exec(db, sql string) {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, s.URL(db))
	if err != nil {
		s.t.Fatalf("connect to %s: %v", s.name, err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		s.t.Fatalf("%s on %s: %v", sql, s.name, err)
	}
}

// outageAllowed is what a client may see while the database comes and
// goes: 200, or 503 unavailable; never a 401 for a token it was just given,
// never a 500, never no answer.
func outageAllowed(op string, in *instance, r reply) bool {
	return r.Status == http.StatusOK || (r.Status == http.StatusServiceUnavailable && r.Code == "unavailable")
}

// waitReady polls /readyz of every instance until each answers want, and
// returns how long that took; it fails after d.
func waitReady(t *testing.T, ins []*instance, want int, d time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	for _, in := range ins {
		for {
			r := call(context.Background(), "GET", in.URL+"/readyz", "", nil)
			if r.Status == want && (want == http.StatusOK || r.Code == "unavailable") {
				break
			}
			if r.Status != http.StatusOK && r.Status != http.StatusServiceUnavailable {
				t.Fatalf("%s /readyz: got %v, want 200 or 503", in.name, r)
			}
			if time.Since(start) > d {
				t.Fatalf("%s /readyz still %v after %v, want %d", in.name, r, d, want)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return time.Since(start)
}

// TestDatabaseOutage stops PostgreSQL in the middle of a load on two
// instances and starts it again: meanwhile requests are answered 503
// unavailable within the request deadline and /readyz reports not ready;
// service resumes by itself within seconds of the database's return, with
// no restart, and every acknowledged login and refresh is stored.
func TestDatabaseOutage(t *testing.T) {
	requireClusterTools(t)
	pg := newPGServer(t, "outage")
	pg.Start()
	pg.Exec("postgres", "CREATE DATABASE sessiond")
	db := pg.URL("sessiond")
	ins := startCluster(t, 2, faultSettings(db))
	l := startLoad(t, loadUsers(t, ins[0].URL, 4), func() []*instance { return ins }, outageAllowed)
	l.waitOKs(100, 30*time.Second)

	pg.Stop("fast")
	stopped := time.Now()
	took := waitReady(t, ins, http.StatusServiceUnavailable, 10*time.Second)
	t.Logf("/readyz reported 503 on every instance %v after the stop", took.Round(time.Millisecond))
	for _, in := range ins {
		r := login(context.Background(), in.URL, "nobody@example.com", "whatever-password")
		if r.Status != http.StatusServiceUnavailable || r.Code != "unavailable" {
			t.Errorf("%s: login during the outage: got %v, want 503 unavailable", in.name, r)
		}
	}
	time.Sleep(2*time.Second - time.Since(stopped)) // let the load meet the outage a while

	pg.Start()
	started := time.Now()
	took = waitReady(t, ins, http.StatusOK, 15*time.Second)
	l.waitOKs(50, 15*time.Second)
	for _, in := range ins {
		for !l.okSince(in.name, started) {
			if time.Since(started) > 15*time.Second {
				t.Fatalf("%s answered no 200 within 15s of the database's return", in.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	t.Logf("ready again %v after the database started; load served again %v after",
		took.Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
	acked := l.check()
	checkAcked(t, acked, storedPostgres(t, db, acked))
	checkInvariants(t, db, 1000, defaultIdle)
}

// TestFailover runs sessiond on a primary with a synchronous standby and a
// multi-host URL, stops the primary under load (as a crash: immediate) and
// promotes the standby: sessiond follows the new primary within seconds
// with no restart, answers only 200 or 503 meanwhile (never 500, never 401),
// and every login and refresh acknowledged before, during and after the
// switch is on the new primary.
func TestFailover(t *testing.T) {
	requireClusterTools(t)
	primary := newPGServer(t, "primary")
	standby := newPGServer(t, "standby")
	primary.Start()
	primary.Exec("postgres", "CREATE DATABASE sessiond")

	// Seed the standby from the primary; -R makes it a standby of it.
	// pg_basebackup wants an empty directory, and as postgres it cannot
	// create one in /var/lib/postgresql/15, so the contents go, not the
	// directory.
	entries, err := os.ReadDir(standby.dataDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(standby.dataDir(), e.Name())); err != nil {
			t.Fatal(err)
		}
	}
	run(t, "runuser", "-u", "postgres", "--", "/usr/lib/postgresql/"+pgVersion+"/bin/pg_basebackup",
		"-h", "127.0.0.1", "-p", strconv.Itoa(primary.port), "-U", "postgres",
		"-D", standby.dataDir(), "-R", "-X", "stream", "-c", "fast")
	standby.Start()
	// Synchronous from now on: a commit returns only once the standby has
	// it, which is what makes "acknowledged" mean "on the new primary".
	primary.Exec("postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'")
	primary.Exec("postgres", "SELECT pg_reload_conf()")
	deadline := time.Now().Add(30 * time.Second)
	for {
		var state string
		rows := queryStrings(t, primary.URL("postgres"), `SELECT sync_state FROM pg_stat_replication`)
		if len(rows) > 0 {
			state = rows[0]
		}
		if state == "sync" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("standby not synchronous after 30s (sync_state %q)", state)
		}
		time.Sleep(100 * time.Millisecond)
	}

	multi := fmt.Sprintf("postgres://postgres@127.0.0.1:%d,127.0.0.1:%d/sessiond?sslmode=disable&connect_timeout=2&target_session_attrs=read-write",
		primary.port, standby.port)
	settings := faultSettings(multi)
	// A refresh whose answer is lost in the switch is retried with the same
	// token; the grace window must outlast the switch for that retry to be
	// answered 200, so it is widened here from the default 10s.
	settings["SESSIOND_REUSE_GRACE"] = "1m"
	ins := startCluster(t, 2, settings)
	var switching atomic.Bool
	l := startLoad(t, loadUsers(t, ins[0].URL, 4), func() []*instance { return ins }, func(op string, in *instance, r reply) bool {
		if r.Status == http.StatusServiceUnavailable {
			return r.Code == "unavailable" && switching.Load() || op == "login" && r.Code == "unavailable"
		}
		return r.Status == http.StatusOK
	})
	l.waitOKs(100, 30*time.Second)

	switching.Store(true)
	primary.Stop("immediate")
	stopped := time.Now()
	standby.ctl("promote")
	waitReady(t, ins, http.StatusOK, 20*time.Second)
	t.Logf("every instance ready on the new primary %v after the old one stopped", time.Since(stopped).Round(time.Millisecond))
	for _, in := range ins {
		for !l.okSince(in.name, stopped) {
			if time.Since(stopped) > 20*time.Second {
				t.Fatalf("%s answered no 200 within 20s of the failover", in.name)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	l.waitOKs(50, 15*time.Second)
	acked := l.check()

	newPrimary := standby.URL("sessiond")
	checkAcked(t, acked, storedPostgres(t, newPrimary, acked))
	checkInvariants(t, newPrimary, 1000, defaultIdle)
}
