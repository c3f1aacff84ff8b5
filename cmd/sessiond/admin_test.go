package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessiond/sessiond/internal/app"
	"github.com/sessiond/sessiond/seal"
)

// adminCLI runs `sessiond admin-keys args…` on e's database.
func (e *testEnv) adminCLI(args ...string) (stdout string, err error) {
	e.t.Helper()
	var out bytes.Buffer
	err = run(context.Background(), append([]string{"admin-keys"}, args...),
		getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": e.cfg.DatabaseURL}), &out, io.Discard)
	return out.String(), err
}

// adminKey makes an admin key named name through the CLI and returns it.
func (e *testEnv) adminKey(name string) string {
	e.t.Helper()
	out, err := e.adminCLI("create", name)
	if err != nil {
		e.t.Fatalf("admin-keys create %s: %v", name, err)
	}
	key, _, _ := strings.Cut(out, "\n")
	if !strings.HasPrefix(key, "sdadm_") || len(key) < len("sdadm_")+43 {
		e.t.Fatalf("admin-keys create: first line %q, want sdadm_ and at least 256 bits of base64url", key)
	}
	return key
}

// deliver runs the outbox worker, as serve does, until the test ends.
func (e *testEnv) deliver() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { e.app.DeliverOutbox(ctx); close(done) }()
	e.t.Cleanup(func() { cancel(); <-done })
}

func TestAdminKeysCommand(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		key := e.adminKey("ops")
		if other := e.adminKey("backend"); other == key {
			t.Fatalf("two keys are equal")
		}
		if _, err := e.adminCLI("create", "ops"); err == nil || !strings.Contains(err.Error(), "exists") {
			t.Errorf("second create of ops: got %v, want an error saying it exists", err)
		}
		if _, err := e.adminCLI("create", "bad name"); err == nil {
			t.Errorf("create with a space in the name: got no error")
		}
		e.call("GET", "/admin/v1/webhooks", nil, key).want(t, 200, "")

		out, err := e.adminCLI("list")
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		lines := strings.Split(strings.TrimSpace(out), "\n")
		if len(lines) != 3 || !strings.HasPrefix(lines[1], "ops ") || !strings.HasPrefix(lines[2], "backend ") {
			t.Fatalf("list: got\n%s\nwant a header, ops, backend", out)
		}
		if strings.Contains(out, key) {
			t.Errorf("list shows the key itself")
		}
		if f := strings.Fields(lines[1]); len(f) != 4 || f[2] == "-" || f[3] != "-" {
			t.Errorf("ops: got %q, want a last use and no revocation", lines[1])
		}

		if _, err := e.adminCLI("revoke", "ops"); err != nil {
			t.Fatalf("revoke: %v", err)
		}
		e.call("GET", "/admin/v1/webhooks", nil, key).want(t, 401, "invalid_token")
		if _, err := e.adminCLI("revoke", "nobody"); err == nil {
			t.Errorf("revoke of an unknown key: got no error")
		}
		out, _ = e.adminCLI("list")
		if f := strings.Fields(strings.Split(out, "\n")[1]); len(f) != 4 || f[3] == "-" {
			t.Errorf("ops after revoke: got %q, want a revocation time", f)
		}
	})
}

func TestAdminAuthentication(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", nil)
	key := e.adminKey("ops")
	revoked := e.adminKey("old")
	if _, err := e.adminCLI("revoke", "old"); err != nil {
		t.Fatal(err)
	}
	e.signup("ada@example.com")
	at := e.login("ada@example.com").AT
	for _, tc := range []struct{ name, header string }{
		{"no header", ""},
		{"other scheme", "Basic " + key},
		{"unknown key", "Bearer sdadm_" + strings.Repeat("A", 43)},
		{"key with a character changed", "Bearer " + key[:len(key)-1] + string(rune('A'+(key[len(key)-1]-'A'+1)%26))},
		{"revoked key", "Bearer " + revoked},
		{"a user's access token", "Bearer " + at},
		{"empty bearer", "Bearer "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := map[string]string{}
			if tc.header != "" {
				h["Authorization"] = tc.header
			}
			for _, p := range []string{"/admin/v1/events", "/admin/v1/webhooks"} {
				r := e.request("GET", p, "", nil, h).want(t, 401, "invalid_token")
				if got := r.Header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
					t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
				}
			}
		})
	}

	// Every admitted call is an admin.request event naming its key.
	e.call("GET", "/admin/v1/webhooks", nil, key).want(t, 200, "")
	e.call("DELETE", "/admin/v1/webhooks/"+"00000000-0000-4000-8000-000000000000", nil, key).want(t, 404, "not_found")
	r := e.call("GET", "/admin/v1/events?type=admin.request", nil, key).want(t, 200, "")
	events, _ := r.Body["events"].([]any)
	if len(events) != 2 {
		t.Fatalf("got %d admin.request events, want 2 (the refused calls are not recorded): %s", len(events), r.Raw)
	}
	for i, want := range []map[string]any{
		{"actor": "ops", "method": "GET", "path": "/admin/v1/webhooks", "status": float64(200)},
		{"actor": "ops", "method": "DELETE", "path": "/admin/v1/webhooks/00000000-0000-4000-8000-000000000000", "status": float64(404)},
	} {
		data, _ := events[i].(map[string]any)["data"].(map[string]any)
		for k, v := range want {
			if data[k] != v {
				t.Errorf("event %d: data.%s: got %v, want %v", i, k, data[k], v)
			}
		}
	}
}

func TestAdminBadInput(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) { c.WebhookAllowPrivate = true })
	key := e.adminKey("ops")
	h := map[string]string{"Authorization": "Bearer " + key}
	for _, tc := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/admin/v1/events?limit=0", "", 400, "invalid_request"},
		{"GET", "/admin/v1/events?limit=201", "", 400, "invalid_request"},
		{"GET", "/admin/v1/events?limit=x", "", 400, "invalid_request"},
		{"GET", "/admin/v1/events?type=nope", "", 400, "invalid_request"},
		{"GET", "/admin/v1/events?after=nope", "", 400, "invalid_request"},
		{"GET", "/admin/v1/events?after=00000000-0000-4000-8000-000000000000", "", 400, "invalid_request"},
		{"GET", "/admin/v1/events?user_id=%00", "", 400, "invalid_request"},
		{"POST", "/admin/v1/webhooks", `{"url":"http://127.0.0.1:1/"}`, 400, "invalid_request"},
		{"POST", "/admin/v1/webhooks", `{"url":"http://127.0.0.1:1/","events":[]}`, 400, "invalid_request"},
		{"POST", "/admin/v1/webhooks", `{"url":"http://127.0.0.1:1/","events":["nope"]}`, 400, "invalid_request"},
		{"POST", "/admin/v1/webhooks", `{"url":"http://127.0.0.1:1/","events":["*","user.created"]}`, 400, "invalid_request"},
		{"POST", "/admin/v1/webhooks", `{"url":"ftp://example.com/","events":["*"]}`, 400, "invalid_request"},
		{"POST", "/admin/v1/webhooks", `{"url":"http://` + strings.Repeat("a", 2100) + `/","events":["*"]}`, 400, "invalid_request"},
		{"POST", "/admin/v1/webhooks", `{"url":1,"events":["*"]}`, 400, "invalid_request"},
		{"DELETE", "/admin/v1/webhooks/nope", "", 404, "not_found"},
		{"DELETE", "/admin/v1/webhooks/%00", "", 404, "not_found"},
		{"GET", "/admin/v1/webhooks/00000000-0000-4000-8000-000000000000/deliveries", "", 404, "not_found"},
		{"POST", "/admin/v1/webhooks/00000000-0000-4000-8000-000000000000/redeliver", `{"event_id":"00000000-0000-4000-8000-000000000000"}`, 404, "not_found"},
		{"POST", "/admin/v1/webhooks/00000000-0000-4000-8000-000000000000/redeliver", `{"event_id":"x"}`, 400, "invalid_request"},
		{"PATCH", "/admin/v1/users/00000000-0000-4000-8000-000000000000", `{}`, 400, "invalid_request"},
		{"POST", "/admin/v1/users", `{"email":"a@example.com"}`, 400, "invalid_request"},
		{"POST", "/admin/v1/users", `{"email":"a@example.com","password":"x","password_hash":"y"}`, 400, "invalid_request"},
		{"POST", "/admin/v1/users/00000000-0000-4000-8000-000000000000/sessions", `{"ip":"not an ip"}`, 400, "invalid_request"},
		{"GET", "/admin/v1/users/nope", "", 404, "not_found"},
		{"GET", "/admin/v1/users?limit=-1", "", 400, "invalid_request"},
	} {
		t.Run(tc.method+" "+tc.path, func(t *testing.T) {
			ct := ""
			if tc.body != "" {
				ct = "application/json"
			}
			e.request(tc.method, tc.path, ct, []byte(tc.body), h).want(t, tc.status, tc.code)
		})
	}
}

func TestWebhookPrivateURLRefused(t *testing.T) {
	receiver := httptest.NewServer(http.NotFoundHandler())
	defer receiver.Close()
	body := map[string]any{"url": receiver.URL + "/hook", "events": []string{"*"}}
	for _, tc := range []struct {
		allow bool
		want  int
	}{{false, 400}, {true, 201}} {
		t.Run("allow_private="+strconv.FormatBool(tc.allow), func(t *testing.T) {
			e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) { c.WebhookAllowPrivate = tc.allow })
			key := e.adminKey("ops")
			for _, u := range []string{receiver.URL + "/hook", "http://localhost:9/", "http://169.254.169.254/latest/meta-data", "http://[::1]:9/", "http://10.0.0.1/"} {
				body["url"] = u
				r := e.call("POST", "/admin/v1/webhooks", body, key)
				if r.Status != tc.want {
					t.Errorf("%s: got %d %s, want %d", u, r.Status, r.Raw, tc.want)
				}
				if tc.want == 201 && !strings.HasPrefix(r.str("secret"), "whsec_") {
					t.Errorf("%s: secret %q, want whsec_…", u, r.str("secret"))
				}
			}
			list := e.call("GET", "/admin/v1/webhooks", nil, key).want(t, 200, "")
			if strings.Contains(string(list.Raw), "whsec_") {
				t.Errorf("the list shows a secret: %s", list.Raw)
			}
		})
	}
}

// hookReceiver is a Standard Webhooks receiver that fails the first
// failFirst attempts of every message and records every request.
type hookReceiver struct {
	*httptest.Server
	failFirst int
	mu        sync.Mutex
	got       map[string][]http.Header // by webhook-id
	bodies    map[string][]byte
	order     []string
}

func newHookReceiver(t *testing.T, failFirst int) *hookReceiver {
	h := &hookReceiver{failFirst: failFirst, got: map[string][]http.Header{}, bodies: map[string][]byte{}}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		id := r.Header.Get("webhook-id")
		h.mu.Lock()
		h.got[id] = append(h.got[id], r.Header.Clone())
		h.bodies[id] = body
		if len(h.got[id]) == 1 {
			h.order = append(h.order, id)
		}
		n := len(h.got[id])
		h.mu.Unlock()
		if n <= h.failFirst {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookReceiver) attempts(id string) []http.Header {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]http.Header(nil), h.got[id]...)
}

func (h *hookReceiver) first() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.order) == 0 {
		return ""
	}
	return h.order[0]
}

// waitAttempts waits until message id (or, with id "", the first message)
// has had n attempts, moving e's clock a retry step forward while it
// waits; it returns the id.
func (h *hookReceiver) waitAttempts(t *testing.T, e *testEnv, id string, n int) string {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		cur := id
		if cur == "" {
			cur = h.first()
		}
		if cur != "" && len(h.attempts(cur)) >= n {
			return cur
		}
		time.Sleep(50 * time.Millisecond)
		e.clock.Advance(10 * time.Second)
	}
	t.Fatalf("message %q did not get %d attempts in time", id, n)
	return ""
}

func TestWebhookRetriedAndSignedAfresh(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), func(c *app.Config) { c.WebhookAllowPrivate = true })
		key := e.adminKey("ops")
		recv := newHookReceiver(t, 2)
		created := e.call("POST", "/admin/v1/webhooks", map[string]any{"url": recv.URL, "events": []string{"admin.request"}}, key).want(t, 201, "")
		hookID, secret := created.str("id"), created.str("secret")
		e.deliver()

		// The creating call's own admin.request is the first message.
		id := recv.waitAttempts(t, e, "", 3)
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			t.Fatal(err)
		}
		recv.mu.Lock()
		body := recv.bodies[id]
		recv.mu.Unlock()
		if !strings.Contains(string(body), `"path":"/admin/v1/webhooks"`) || !strings.Contains(string(body), `"actor":"ops"`) {
			t.Errorf("body: got %s, want the admin.request of the create call", body)
		}
		hs := recv.attempts(id)
		seen := map[string]bool{}
		for i, h := range hs[:3] {
			if err := wh.Verify(body, h); err != nil {
				t.Errorf("attempt %d: Verify: %v", i+1, err)
			}
			if h.Get("webhook-id") != id {
				t.Errorf("attempt %d: webhook-id %q, want %q", i+1, h.Get("webhook-id"), id)
			}
			sig := h.Get("webhook-timestamp") + " " + h.Get("webhook-signature")
			if seen[sig] {
				t.Errorf("attempt %d repeats an earlier attempt's timestamp and signature %s", i+1, sig)
			}
			seen[sig] = true
		}

		delivered := func(want int) {
			t.Helper()
			deadline := time.Now().Add(10 * time.Second)
			for {
				r := e.call("GET", "/admin/v1/webhooks/"+hookID+"/deliveries", nil, key).want(t, 200, "")
				ds, _ := r.Body["deliveries"].([]any)
				for _, d := range ds {
					d := d.(map[string]any)
					if d["event_id"] == id && d["status"] == "delivered" && d["attempts"] == float64(want) && d["last_status"] == "delivered" {
						return
					}
				}
				if time.Now().After(deadline) {
					t.Fatalf("no delivery of %s delivered after %d attempts: %s", id, want, r.Raw)
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		delivered(3)
		m := e.metrics()
		for _, want := range []string{
			`sessiond_outbox_deliveries_total{channel="webhook",outcome="retry"}`,
			`sessiond_outbox_deliveries_total{channel="webhook",outcome="delivered"}`,
			"sessiond_outbox_pending ", "sessiond_outbox_oldest_pending_seconds ",
		} {
			if !strings.Contains(m, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}

		// Redeliver sends it again, signed for the new attempt, with a
		// fresh count.
		e.call("POST", "/admin/v1/webhooks/"+hookID+"/redeliver", map[string]string{"event_id": id}, key).want(t, 202, "")
		recv.waitAttempts(t, e, id, 4)
		if err := wh.Verify(body, recv.attempts(id)[3]); err != nil {
			t.Errorf("redelivery: Verify: %v", err)
		}
		delivered(1)

		e.call("DELETE", "/admin/v1/webhooks/"+hookID, nil, key).want(t, 204, "")
		e.call("DELETE", "/admin/v1/webhooks/"+hookID, nil, key).want(t, 404, "not_found")
		e.call("GET", "/admin/v1/webhooks/"+hookID+"/deliveries", nil, key).want(t, 404, "not_found")
	})
}

func TestAdminEventsPaging(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", nil)
	key := e.adminKey("ops")
	for range 5 {
		e.call("GET", "/admin/v1/webhooks", nil, key).want(t, 200, "")
	}
	// Each listing is itself an event, after the five.
	var ids []string
	cursor := ""
	for page := 0; page < 10; page++ {
		p := "/admin/v1/events?type=admin.request&limit=2"
		if cursor != "" {
			p += "&after=" + cursor
		}
		r := e.call("GET", p, nil, key).want(t, 200, "")
		for _, ev := range r.Body["events"].([]any) {
			ids = append(ids, ev.(map[string]any)["id"].(string))
		}
		next, _ := r.Body["next_cursor"].(string)
		if next == "" {
			break
		}
		cursor = next
	}
	seen := map[string]bool{}
	for _, id := range ids {
		if seen[id] {
			t.Errorf("event %s listed twice", id)
		}
		seen[id] = true
	}
	if len(ids) < 5 {
		t.Errorf("paged through %d events, want at least the 5 listings", len(ids))
	}
}

// TestWebhookSecretsSealedAtRest: with SESSIOND_ENCRYPTION_KEY, a webhook
// secret is stored sealed, and `sessiond secrets reencrypt` seals the ones
// stored in the clear and moves sealed ones to the newest key.
func TestWebhookSecretsSealedAtRest(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		url := dbURL(t)
		allow := func(c *app.Config) { c.WebhookAllowPrivate = true }
		e := newTestEnv(t, url, allow)
		key := e.adminKey("ops")
		clear := e.call("POST", "/admin/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/a", "events": []string{"*"}}, key).want(t, 201, "")

		raw, err := app.OpenStore(context.Background(), e.cfg)
		if err != nil {
			t.Fatal(err)
		}
		defer raw.Close()
		stored := func(id string) string {
			t.Helper()
			w, err := raw.WebhookEndpoint(context.Background(), id)
			if err != nil {
				t.Fatal(err)
			}
			return w.Secret
		}
		if got := stored(clear.str("id")); got != clear.str("secret") {
			t.Fatalf("without a key: stored %q, want the secret in the clear", got)
		}

		old, cur := seal.Generate(), seal.Generate()
		reencrypt := func(keys string, want string) {
			t.Helper()
			var out bytes.Buffer
			err := run(context.Background(), []string{"secrets", "reencrypt"},
				getenvFrom(map[string]string{"SESSIOND_DATABASE_URL": url, "SESSIOND_ENCRYPTION_KEY": keys}), &out, io.Discard)
			if err != nil || !strings.HasPrefix(out.String(), want) {
				t.Fatalf("reencrypt: got %q, %v; want %q", out.String(), err, want)
			}
		}
		reencrypt(old, "re-encrypted 4 secrets") // signing key, two MAC secrets, the webhook's
		if got := stored(clear.str("id")); !strings.HasPrefix(got, "sdseal1:") || strings.Contains(got, clear.str("secret")[6:]) {
			t.Fatalf("after reencrypt: stored %q, want it sealed", got)
		}

		cfg := e.cfg
		cfg.EncryptionKey = old
		e2 := newTestEnvWith(t, cfg, nil, nil)
		sealed := e2.call("POST", "/admin/v1/webhooks", map[string]any{"url": "http://127.0.0.1:9/b", "events": []string{"*"}}, key).want(t, 201, "")
		if got := stored(sealed.str("id")); !strings.HasPrefix(got, "sdseal1:") {
			t.Fatalf("created with a key: stored %q, want it sealed", got)
		}

		reencrypt(cur+","+old, "re-encrypted 5 secrets")
		cfg.EncryptionKey = cur
		e3 := newTestEnvWith(t, cfg, nil, nil)
		for _, w := range []*response{clear, sealed} {
			got, err := e3.app.Store.WebhookEndpoint(context.Background(), w.str("id"))
			if err != nil || got.Secret != w.str("secret") {
				t.Errorf("under the new key alone: got %v, %v; want the secret shown at creation", got, err)
			}
		}
	})
}

// TestEventRetention: the sweep deletes events older than
// SESSIOND_EVENT_RETENTION; a cursor naming a deleted event is refused
// with 400, so that a poller knows to start again.
func TestEventRetention(t *testing.T) {
	e := newTestEnv(t, "sqlite:"+t.TempDir()+"/s.db", func(c *app.Config) { c.EventRetention = 24 * time.Hour })
	key := e.adminKey("ops")
	e.call("GET", "/admin/v1/webhooks", nil, key).want(t, 200, "")
	r := e.call("GET", "/admin/v1/events", nil, key).want(t, 200, "")
	old := r.Body["events"].([]any)[0].(map[string]any)["id"].(string)

	e.clock.Advance(23 * time.Hour)
	if _, err := e.app.SweepOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.call("GET", "/admin/v1/events?after="+old, nil, key).want(t, 200, "")

	e.clock.Advance(2 * time.Hour)
	if _, err := e.app.SweepOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	e.call("GET", "/admin/v1/events?after="+old, nil, key).want(t, 400, "invalid_request")
	r = e.call("GET", "/admin/v1/events", nil, key).want(t, 200, "")
	for _, ev := range r.Body["events"].([]any) {
		if ev.(map[string]any)["id"] == old {
			t.Errorf("event %s outlived the retention", old)
		}
	}
	if n := len(r.Body["events"].([]any)); n != 2 {
		t.Errorf("got %d events, want the 2 calls made after the first day", n)
	}
}

// TestAdminUsers drives the user half of the admin API through the real
// service on both stores: create, find, disable (which ends the sessions
// and refuses login), a backend-made session, ending sessions, delete; the
// changes' events name the actor.
func TestAdminUsers(t *testing.T) {
	eachStore(t, func(t *testing.T, dbURL func(t *testing.T) string) {
		e := newTestEnv(t, dbURL(t), nil)
		key := e.adminKey("ops")
		u := e.call("POST", "/admin/v1/users", map[string]any{"email": " Grace@Example.com", "password": testPassword, "email_verified": true}, key).want(t, 201, "")
		id := u.str("user_id")
		if u.str("email") != "grace@example.com" || u.Body["email_verified"] != true || u.Body["disabled"] != false {
			t.Fatalf("created: got %s", u.Raw)
		}
		e.call("POST", "/admin/v1/users", map[string]any{"email": "grace@example.com", "password": testPassword}, key).want(t, 409, "email_taken")
		found := e.call("GET", "/admin/v1/users?email=grace@example.com", nil, key).want(t, 200, "")
		if us := found.Body["users"].([]any); len(us) != 1 || us[0].(map[string]any)["user_id"] != id {
			t.Fatalf("find by email: got %s", found.Raw)
		}
		e.call("GET", "/admin/v1/users/"+id, nil, key).want(t, 200, "")

		s := e.login("grace@example.com")
		sess := e.call("GET", "/admin/v1/users/"+id+"/sessions", nil, key).want(t, 200, "")
		if ss := sess.Body["sessions"].([]any); len(ss) != 1 || ss[0].(map[string]any)["session_id"] != s.SID {
			t.Fatalf("sessions: got %s, want the login's", sess.Raw)
		}
		ext := e.call("POST", "/admin/v1/users/"+id+"/sessions", map[string]string{"user_agent": "SSO bridge", "ip": "192.0.2.9"}, key).want(t, 200, "")
		e.call("GET", "/v1/me", nil, ext.str("access_token")).want(t, 200, "")
		e.call("DELETE", "/admin/v1/sessions/"+ext.str("session_id"), nil, key).want(t, 204, "")
		e.call("GET", "/v1/me", nil, ext.str("access_token")).want(t, 401, "invalid_token")
		e.call("DELETE", "/admin/v1/sessions/"+ext.str("session_id"), nil, key).want(t, 404, "not_found")

		p := e.call("PATCH", "/admin/v1/users/"+id, map[string]any{"disabled": true}, key).want(t, 200, "")
		if p.Body["disabled"] != true {
			t.Fatalf("patch: got %s", p.Raw)
		}
		e.refresh(s.RT).want(t, 401, "")
		e.call("POST", "/v1/login", map[string]string{"email": "grace@example.com", "password": testPassword}, "").want(t, 403, "account_disabled")
		e.call("POST", "/admin/v1/users/"+id+"/sessions", nil, key).want(t, 403, "account_disabled")
		e.call("PATCH", "/admin/v1/users/"+id, map[string]any{"disabled": false}, key).want(t, 200, "")
		e.login("grace@example.com")
		e.call("DELETE", "/admin/v1/users/"+id+"/sessions", nil, key).want(t, 204, "")
		if n := len(e.liveSessions("grace@example.com")); n != 0 {
			t.Errorf("after ending every session: %d live", n)
		}

		ev := e.call("GET", "/admin/v1/events?user_id="+id+"&limit=200", nil, key).want(t, 200, "")
		actors := 0
		for _, x := range ev.Body["events"].([]any) {
			if d, _ := x.(map[string]any)["data"].(map[string]any); d["actor"] == "ops" {
				actors++
			}
		}
		if actors == 0 {
			t.Errorf("no event of the user names the actor: %s", ev.Raw)
		}

		e.call("DELETE", "/admin/v1/users/"+id, nil, key).want(t, 204, "")
		e.call("GET", "/admin/v1/users/"+id, nil, key).want(t, 404, "not_found")
		e.call("DELETE", "/admin/v1/users/"+id, nil, key).want(t, 404, "not_found")
	})
}
