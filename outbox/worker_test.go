package outbox_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/internal/pgtest"
	"github.com/sessiond/sessiond/outbox"
	"github.com/sessiond/sessiond/postgres"
	"github.com/sessiond/sessiond/sqlite"
)

type store interface {
	sessiond.OutboxStore
	sessiond.EventStore
}

// backend opens n stores on one fresh database, as n instances would.
type backend struct {
	name string
	open func(t *testing.T, n int) []store
}

func backends(t *testing.T) []backend {
	b := []backend{{"sqlite", func(t *testing.T, n int) []store {
		path := filepath.Join(t.TempDir(), "sessiond.db")
		var out []store
		for range n {
			db, err := sqlite.Open(t.Context(), path, sqlite.Options{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			t.Cleanup(func() { db.Close() })
			if err := db.Migrate(t.Context()); err != nil {
				t.Fatalf("Migrate: %v", err)
			}
			out = append(out, db)
		}
		return out
	}}}
	if os.Getenv(pgtest.EnvURL) != "" {
		b = append(b, backend{"postgres", func(t *testing.T, n int) []store {
			url := pgtest.URL(t)
			var out []store
			for range n {
				db, err := postgres.Open(context.Background(), url, postgres.Options{})
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				t.Cleanup(func() { db.Close() })
				if err := db.Migrate(context.Background()); err != nil {
					t.Fatalf("Migrate: %v", err)
				}
				out = append(out, db)
			}
			return out
		}})
	}
	return b
}

// httpSender POSTs a message's payload to the URL of its target, with the
// message id in a header: the test's stand-in for package webhook.
type httpSender struct{ urls map[string]string }

func (s httpSender) Send(ctx context.Context, m sessiond.OutboxMessage) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.urls[m.Target], bytes.NewReader(m.Payload))
	if err != nil {
		return outbox.Permanent("bad request", err)
	}
	req.Header.Set("X-Message-Id", m.ID)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return outbox.Retry(fmt.Sprintf("HTTP %d", resp.StatusCode), nil)
	}
	return nil
}

func insert(t *testing.T, s store, target string, n int) []*sessiond.OutboxMessage {
	t.Helper()
	var msgs []*sessiond.OutboxMessage
	now := sessiond.SystemClock()
	for i := range n {
		msgs = append(msgs, &sessiond.OutboxMessage{ID: sessiond.NewID(), Channel: sessiond.ChannelWebhook, Target: target,
			EventID: sessiond.NewID(), Payload: []byte(`{}`), CreatedAt: now, NextAttemptAt: now.Add(time.Duration(i) * time.Microsecond)})
	}
	if err := s.InsertOutbox(t.Context(), msgs...); err != nil {
		t.Fatalf("InsertOutbox: %v", err)
	}
	return msgs
}

// start runs w until the test ends, and waits for it to return.
func start(t *testing.T, w *outbox.Worker) context.CancelFunc {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return cancel
}

// eventually fails t unless cond comes true within a generous bound; the
// bound only keeps a broken worker from hanging the test.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 30s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func quick(attempts int) (time.Duration, bool) { return 10 * time.Millisecond, attempts >= 5 }

func TestRetriesUntilDelivered(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t, 1)[0]
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if calls.Add(1) <= 2 {
					w.WriteHeader(http.StatusInternalServerError)
					return
				}
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			reg := prometheus.NewRegistry()
			metrics, err := outbox.NewMetrics(reg)
			if err != nil {
				t.Fatalf("NewMetrics: %v", err)
			}
			m := insert(t, s, "a", 1)[0]
			w := outbox.New(s, map[string]outbox.Sender{sessiond.ChannelWebhook: httpSender{map[string]string{"a": srv.URL}}},
				outbox.Options{Backoff: quick, Metrics: metrics})
			stop := start(t, w)

			var d []sessiond.Delivery
			// Until the worker has counted the outcome too: stopping it the
			// moment the row reads delivered can cancel the call that
			// recorded it before its answer is back.
			eventually(t, "delivered", func() bool {
				d, err = s.WebhookDeliveries(t.Context(), "a", 10)
				return err == nil && len(d) == 1 && d[0].Status != sessiond.OutboxPending && deliveries(t, reg, "delivered") == 1
			})
			stop()
			if got := calls.Load(); got != 3 {
				t.Errorf("receiver calls: got %d, want 3", got)
			}
			if d[0].EventID != m.EventID || d[0].Status != sessiond.OutboxDelivered || d[0].Attempts != 3 || d[0].LastStatus != "delivered" {
				t.Errorf("delivery: got %+v, want delivered after 3 attempts", d[0])
			}
			for outcome, want := range map[string]float64{"retry": 2, "delivered": 1, "failed": 0} {
				if got := deliveries(t, reg, outcome); got != want {
					t.Errorf("deliveries{outcome=%q}: got %v, want %v", outcome, got, want)
				}
			}
		})
	}
}

func TestGivesUpAfterTheSchedule(t *testing.T) {
	s := backends(t)[0].open(t, 1)[0]
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		w.WriteHeader(http.StatusBadGateway)
	}))
	defer srv.Close()
	insert(t, s, "a", 1)
	w := outbox.New(s, map[string]outbox.Sender{sessiond.ChannelWebhook: httpSender{map[string]string{"a": srv.URL}}}, outbox.Options{Backoff: quick})
	start(t, w)
	var d []sessiond.Delivery
	eventually(t, "given up", func() bool {
		var err error
		d, err = s.WebhookDeliveries(t.Context(), "a", 10)
		return err == nil && len(d) == 1 && d[0].Status != sessiond.OutboxPending
	})
	if d[0].Status != sessiond.OutboxFailed || d[0].Attempts != 5 || d[0].LastStatus != "HTTP 502" {
		t.Errorf("delivery: got %+v, want failed after 5 attempts with HTTP 502", d[0])
	}
	if got := calls.Load(); got != 5 {
		t.Errorf("receiver calls: got %d, want 5", got)
	}
}

// deliveries reads sessiond_outbox_deliveries_total{outcome} from reg.
func deliveries(t *testing.T, reg *prometheus.Registry, outcome string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	v := 0.0
	for _, f := range families {
		if f.GetName() != "sessiond_outbox_deliveries_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					v += m.GetCounter().GetValue()
				}
			}
		}
	}
	return v
}

func TestDeadTargetDoesNotDelayOthers(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t, 1)[0]
			var (
				deadNow, deadMax atomic.Int32
				live             atomic.Int32
			)
			// The dead receiver answers nothing until the request is
			// abandoned, which happens only when the worker stops.
			dead := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := deadNow.Add(1)
				for {
					m := deadMax.Load()
					if n <= m || deadMax.CompareAndSwap(m, n) {
						break
					}
				}
				// The server notices an abandoned request only once it
				// has read the body.
				io.Copy(io.Discard, r.Body)
				<-r.Context().Done()
				deadNow.Add(-1)
			}))
			defer dead.Close()
			alive := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				live.Add(1)
				w.WriteHeader(http.StatusOK)
			}))
			defer alive.Close()

			// The dead target's messages are due first and outnumber the
			// worker's slots.
			insert(t, s, "dead", 10)
			insert(t, s, "live", 5)
			w := outbox.New(s, map[string]outbox.Sender{sessiond.ChannelWebhook: httpSender{map[string]string{"dead": dead.URL, "live": alive.URL}}},
				outbox.Options{Concurrency: 4, PerTarget: 2, SendTimeout: 10 * time.Minute, Backoff: quick})
			stop := start(t, w)
			// Stop the worker before the servers close: the dead one's
			// handlers return only once their requests are abandoned.
			defer stop()
			eventually(t, "live target's 5 messages delivered while the dead one hangs", func() bool { return live.Load() == 5 })
			if got := deadMax.Load(); got > 2 {
				t.Errorf("sends in flight to the dead target: got %d at once, want at most 2", got)
			}
		})
	}
}

func TestWorkersDeliverEachMessageOnce(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			stores := b.open(t, 2)
			var (
				mu    sync.Mutex
				count = map[string]int{}
			)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				count[r.Header.Get("X-Message-Id")]++
				mu.Unlock()
				w.WriteHeader(http.StatusNoContent)
			}))
			defer srv.Close()
			urls := map[string]string{}
			var total int
			for i := range 6 {
				target := fmt.Sprintf("t%d", i)
				urls[target] = srv.URL
				total += len(insert(t, stores[0], target, 25))
			}
			for i, s := range stores {
				start(t, outbox.New(s, map[string]outbox.Sender{sessiond.ChannelWebhook: httpSender{urls}},
					outbox.Options{Owner: fmt.Sprintf("w%d", i), Backoff: quick}))
			}
			eventually(t, "every message delivered", func() bool {
				st, err := stores[0].OutboxStats(t.Context())
				return err == nil && st.Pending == 0
			})
			mu.Lock()
			defer mu.Unlock()
			if len(count) != total {
				t.Errorf("distinct messages received: got %d, want %d", len(count), total)
			}
			for id, n := range count {
				if n != 1 {
					t.Errorf("message %s received %d times, want 1", id, n)
				}
			}
		})
	}
}

func TestTakesOverAnExpiredLease(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t, 1)[0]
			past := sessiond.SystemClock().Add(-3 * time.Minute)
			m := &sessiond.OutboxMessage{ID: sessiond.NewID(), Channel: sessiond.ChannelWebhook, Target: "a",
				EventID: sessiond.NewID(), Payload: []byte(`{}`), CreatedAt: past}
			if err := s.InsertOutbox(t.Context(), m); err != nil {
				t.Fatalf("InsertOutbox: %v", err)
			}
			// An instance claimed it two minutes ago and crashed.
			claimed, err := s.ClaimOutbox(t.Context(), sessiond.OutboxClaim{Owner: "crashed", Now: sessiond.SystemClock().Add(-2 * time.Minute), Lease: time.Minute, Limit: 1})
			if err != nil || len(claimed) != 1 {
				t.Fatalf("ClaimOutbox: got %d, %v, want the message", len(claimed), err)
			}
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { calls.Add(1) }))
			defer srv.Close()
			start(t, outbox.New(s, map[string]outbox.Sender{sessiond.ChannelWebhook: httpSender{map[string]string{"a": srv.URL}}}, outbox.Options{Backoff: quick}))
			eventually(t, "delivered after the crashed instance's lease", func() bool {
				d, err := s.WebhookDeliveries(t.Context(), "a", 10)
				return err == nil && len(d) == 1 && d[0].Status == sessiond.OutboxDelivered
			})
			if got := calls.Load(); got != 1 {
				t.Errorf("receiver calls: got %d, want 1", got)
			}
			err = s.RecordOutboxAttempt(t.Context(), "crashed", sessiond.OutboxAttempt{ID: m.ID, At: sessiond.SystemClock(), Status: sessiond.OutboxFailed})
			if err != sessiond.ErrLeaseLost {
				t.Errorf("crashed owner records: got %v, want ErrLeaseLost", err)
			}
		})
	}
}

func TestShutdownReleasesInterruptedSends(t *testing.T) {
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) {
			s := b.open(t, 1)[0]
			m := insert(t, s, "a", 1)[0]
			hit := make(chan struct{}, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				io.Copy(io.Discard, r.Body)
				hit <- struct{}{}
				<-r.Context().Done()
			}))
			defer srv.Close()
			reg := prometheus.NewRegistry()
			metrics, err := outbox.NewMetrics(reg)
			if err != nil {
				t.Fatalf("NewMetrics: %v", err)
			}
			w := outbox.New(s, map[string]outbox.Sender{sessiond.ChannelWebhook: httpSender{map[string]string{"a": srv.URL}}},
				outbox.Options{SendTimeout: time.Hour, Metrics: metrics})
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			go func() { w.Run(ctx); close(done) }()
			select {
			case <-hit:
			case <-time.After(30 * time.Second):
				t.Fatalf("no send within 30s")
			}
			cancel()
			<-done // Run returns although the receiver never answered

			// The interrupted send is not an attempt, and the message is
			// free for the next worker at once, not after its lease.
			got, err := s.ClaimOutbox(t.Context(), sessiond.OutboxClaim{Owner: "next", Now: sessiond.SystemClock(), Lease: time.Minute, Limit: 10})
			if err != nil || len(got) != 1 || got[0].ID != m.ID || got[0].Attempts != 0 {
				t.Errorf("claim after shutdown: got %+v, %v, want %s with 0 attempts", got, err, m.ID)
			}
			for _, outcome := range []string{"delivered", "retry", "failed", "lease_lost"} {
				if n := deliveries(t, reg, outcome); n != 0 {
					t.Errorf("deliveries{outcome=%q}: got %v, want 0", outcome, n)
				}
			}
		})
	}
}

func TestMetricsDescribeThePending(t *testing.T) {
	s := backends(t)[0].open(t, 1)[0]
	insert(t, s, "a", 3)
	reg := prometheus.NewRegistry()
	metrics, err := outbox.NewMetrics(reg)
	if err != nil {
		t.Fatalf("NewMetrics: %v", err)
	}
	// No sender for the channel: every attempt fails and is retried in
	// an hour, so the three stay pending.
	start(t, outbox.New(s, nil, outbox.Options{Metrics: metrics, Backoff: func(int) (time.Duration, bool) { return time.Hour, false }}))
	eventually(t, "pending gauge at 3", func() bool { return gauge(t, reg, "sessiond_outbox_pending") == 3 })
	if age := gauge(t, reg, "sessiond_outbox_oldest_pending_seconds"); age < 0 {
		t.Errorf("oldest pending age: got %v, want >= 0", age)
	}
	eventually(t, "3 retries counted", func() bool { return deliveries(t, reg, "retry") == 3 })
	d, err := s.WebhookDeliveries(t.Context(), "a", 10)
	if err != nil || len(d) != 3 || d[0].LastStatus != "no sender for channel webhook" {
		t.Errorf("deliveries: got %+v, %v, want 3 with the missing sender as last status", d, err)
	}
}

func gauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatalf("Gather: %v", err)
	}
	for _, f := range families {
		if f.GetName() == name {
			return f.GetMetric()[0].GetGauge().GetValue()
		}
	}
	return -1
}
