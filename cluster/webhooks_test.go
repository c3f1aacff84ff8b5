package cluster_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sessiond/sessiond/internal/pgtest"
)

// adminKey makes an admin key with the sessiond binary, as an operator
// would, and returns it.
func adminKey(t *testing.T, dbURL, name string) string {
	t.Helper()
	cmd := exec.Command(sessiondBin, "admin-keys", "create", name)
	cmd.Env = append(baseEnv(), "SESSIOND_DATABASE_URL="+dbURL)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("admin-keys create: %v", err)
	}
	key, _, _ := strings.Cut(string(out), "\n")
	return key
}

// countingReceiver is a webhook receiver that hangs the first hang requests
// until their sender goes away, answers every other one 204, and counts
// per webhook-id the attempts and the most that were ever in flight at once.
type countingReceiver struct {
	*httptest.Server
	mu       sync.Mutex
	hang     int
	hung     chan struct{} // receives once per hung request
	attempts map[string]int
	inFlight map[string]int
	maxIn    map[string]int
}

func newCountingReceiver(t *testing.T, hang int) *countingReceiver {
	c := &countingReceiver{hang: hang, hung: make(chan struct{}, hang),
		attempts: map[string]int{}, inFlight: map[string]int{}, maxIn: map[string]int{}}
	c.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		id := r.Header.Get("webhook-id")
		c.mu.Lock()
		c.attempts[id]++
		c.inFlight[id]++
		c.maxIn[id] = max(c.maxIn[id], c.inFlight[id])
		hang := c.hang > 0
		if hang {
			c.hang--
		}
		c.mu.Unlock()
		defer func() {
			c.mu.Lock()
			c.inFlight[id]--
			c.mu.Unlock()
		}()
		if hang {
			c.hung <- struct{}{}
			<-r.Context().Done() // the sending instance died, or gave up
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(c.Close)
	return c
}

// TestWebhooksSurviveKill9: an instance is killed with SIGKILL while it
// holds two deliveries mid-send (claimed, sent, never recorded) and more
// are pending behind them. Two other instances take over: every event is
// delivered at least once, and no delivery was ever in flight twice at the
// same time, across all three instances.
func TestWebhooksSurviveKill9(t *testing.T) {
	db := pgtest.URL(t)
	settings := map[string]string{"SESSIOND_DATABASE_URL": db, "SESSIOND_WEBHOOK_ALLOW_PRIVATE": "true"}
	a := startInstance(t, "instance-a", settings)
	key := adminKey(t, db, "ops")
	// The worker runs at most two sends per endpoint: with both hung, every
	// later delivery waits, pending, until another instance takes it.
	recv := newCountingReceiver(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()

	r := call(ctx, "POST", a.URL+"/admin/v1/webhooks", key, map[string]any{"url": recv.URL, "events": []string{"admin.request"}})
	if r.Status != http.StatusCreated {
		t.Fatalf("create webhook: %s", r)
	}
	var hook struct{ ID string }
	json.Unmarshal(r.Body, &hook)
	const calls = 20
	for range calls {
		if r := call(ctx, "GET", a.URL+"/admin/v1/webhooks", key, nil); r.Status != http.StatusOK {
			t.Fatalf("list webhooks: %s", r)
		}
	}
	for range 2 {
		select {
		case <-recv.hung:
		case <-ctx.Done():
			t.Fatal("instance a never sent the first two deliveries")
		}
	}
	a.Kill9()

	startCluster(t, 2, settings)
	want := queryStrings(t, db, `SELECT event_id FROM outbox WHERE target = $1`, hook.ID)
	if len(want) != calls+1 {
		t.Fatalf("got %d deliveries, want one per admin call after the create (%d) and the create's own", len(want), calls+1)
	}
	// The two hung deliveries wait out their lease (a minute) first.
	for {
		pending := queryStrings(t, db, `SELECT event_id FROM outbox WHERE target = $1 AND status <> 'delivered'`, hook.ID)
		if len(pending) == 0 {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("%d deliveries still not delivered: %v", len(pending), pending)
		}
		time.Sleep(250 * time.Millisecond)
	}
	recv.mu.Lock()
	defer recv.mu.Unlock()
	for _, id := range want {
		if recv.attempts[id] < 1 {
			t.Errorf("event %s: never received", id)
		}
		if recv.maxIn[id] > 1 {
			t.Errorf("event %s: %d sends in flight at once", id, recv.maxIn[id])
		}
	}
	resent := 0
	for _, n := range recv.attempts {
		if n > 1 {
			resent++
		}
	}
	if resent < 2 {
		t.Errorf("%d deliveries were sent more than once, want at least the 2 cut off by the kill", resent)
	}
}
