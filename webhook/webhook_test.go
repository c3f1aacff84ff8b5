package webhook_test

import (
	"context"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/outbox"
	"github.com/sessiond/sessiond/webhook"
)

// endpoints is an in-memory webhook.Endpoints.
type endpoints map[string]*sessiond.WebhookEndpoint

func (e endpoints) WebhookEndpoint(_ context.Context, id string) (*sessiond.WebhookEndpoint, error) {
	if w, ok := e[id]; ok {
		return w, nil
	}
	return nil, sessiond.Errorf(sessiond.CodeNotFound, "webhook endpoint not found")
}

// received is one request as a receiver saw it.
type received struct {
	header http.Header
	body   []byte
}

// receiver records requests and answers status.
func receiver(t *testing.T, status int) (*httptest.Server, func() []received) {
	t.Helper()
	var (
		mu  sync.Mutex
		got []received
	)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, received{r.Header.Clone(), body})
		mu.Unlock()
		w.WriteHeader(status)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []received { mu.Lock(); defer mu.Unlock(); return append([]received(nil), got...) }
}

func message(target string) sessiond.OutboxMessage {
	return sessiond.OutboxMessage{ID: sessiond.NewID(), Channel: sessiond.ChannelWebhook, Target: target,
		EventID: sessiond.NewID(), Payload: []byte(`{"id":"e","type":"user.created"}`)}
}

func TestNewSecret(t *testing.T) {
	s := webhook.NewSecret()
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(s, "whsec_"))
	if !strings.HasPrefix(s, "whsec_") || err != nil || len(key) != 32 {
		t.Errorf("got %q (%v), want whsec_ and the base64 of 32 bytes", s, err)
	}
	if webhook.NewSecret() == s {
		t.Errorf("two secrets are equal")
	}
}

func TestSignatureVerifiesWithReferenceLibrary(t *testing.T) {
	srv, got := receiver(t, http.StatusNoContent)
	secret := webhook.NewSecret()
	s := webhook.NewSender(endpoints{"a": {ID: "a", URL: srv.URL, Secret: secret}}, webhook.Options{AllowPrivate: true})
	m := message("a")
	if err := s.Send(t.Context(), m); err != nil {
		t.Fatalf("Send: %v", err)
	}
	reqs := got()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatalf("NewWebhook: %v", err)
	}
	if err := wh.Verify(r.body, r.header); err != nil {
		t.Errorf("Verify: %v", err)
	}
	if got := r.header.Get("webhook-id"); got != m.EventID {
		t.Errorf("webhook-id: got %q, want the event id %q", got, m.EventID)
	}
	if got := r.header.Get("Content-Type"); got != "application/json" {
		t.Errorf("Content-Type: got %q, want application/json", got)
	}
	if string(r.body) != string(m.Payload) {
		t.Errorf("body: got %s, want %s", r.body, m.Payload)
	}
	other, _ := standardwebhooks.NewWebhook(webhook.NewSecret())
	if err := other.Verify(r.body, r.header); err == nil {
		t.Errorf("Verify under another secret: got nil, want an error")
	}
}

func TestResentMessageIsSignedAfresh(t *testing.T) {
	srv, got := receiver(t, http.StatusNoContent)
	secret := webhook.NewSecret()
	now := time.Now()
	var calls atomic.Int64
	clock := func() time.Time { return now.Add(time.Duration(calls.Add(1)) * 3 * time.Second) }
	s := webhook.NewSender(endpoints{"a": {ID: "a", URL: srv.URL, Secret: secret}}, webhook.Options{AllowPrivate: true, Clock: clock})
	m := message("a")
	for range 2 {
		if err := s.Send(t.Context(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	reqs := got()
	wh, _ := standardwebhooks.NewWebhook(secret)
	ts := make([]int64, len(reqs))
	for i, r := range reqs {
		if err := wh.Verify(r.body, r.header); err != nil {
			t.Errorf("attempt %d: Verify: %v", i+1, err)
		}
		ts[i], _ = strconv.ParseInt(r.header.Get("webhook-timestamp"), 10, 64)
	}
	if len(reqs) != 2 {
		t.Fatalf("got %d requests, want 2", len(reqs))
	}
	if ts[1]-ts[0] != 3 {
		t.Errorf("timestamps: got %d then %d, want the second 3s later", ts[0], ts[1])
	}
	if reqs[0].header.Get("webhook-signature") == reqs[1].header.Get("webhook-signature") {
		t.Errorf("the resent message carries the first attempt's signature")
	}
	if reqs[0].header.Get("webhook-id") != reqs[1].header.Get("webhook-id") {
		t.Errorf("webhook-id changed across attempts")
	}
}

func TestSendOutcomes(t *testing.T) {
	ok, _ := receiver(t, http.StatusOK)
	accepted, _ := receiver(t, http.StatusAccepted)
	failing, _ := receiver(t, http.StatusInternalServerError)
	missing, _ := receiver(t, http.StatusNotFound)
	hit, hits := receiver(t, http.StatusOK)
	redirect := httptest.NewServer(http.RedirectHandler(hit.URL, http.StatusFound))
	t.Cleanup(redirect.Close)
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		<-r.Context().Done()
	}))
	t.Cleanup(slow.Close)
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	secret := webhook.NewSecret()
	eps := endpoints{}
	for id, url := range map[string]string{"ok": ok.URL, "accepted": accepted.URL, "failing": failing.URL, "missing": missing.URL,
		"redirect": redirect.URL, "slow": slow.URL, "closed": closed.URL, "ftp": "ftp://example.com/"} {
		eps[id] = &sessiond.WebhookEndpoint{ID: id, URL: url, Secret: secret}
	}
	eps["badsecret"] = &sessiond.WebhookEndpoint{ID: "badsecret", URL: ok.URL, Secret: "whsec_!!"}
	s := webhook.NewSender(eps, webhook.Options{AllowPrivate: true, Timeout: 200 * time.Millisecond})
	for _, tc := range []struct {
		target    string
		status    string // "" for delivered
		permanent bool
	}{
		{"ok", "", false},
		{"accepted", "", false},
		{"failing", "HTTP 500", false},
		{"missing", "HTTP 404", false},
		{"redirect", "HTTP 302", false},
		{"slow", "timeout", false},
		{"closed", "connection refused", false},
		{"gone", "endpoint deleted", true},
		{"ftp", "URL refused", true},
		{"badsecret", "bad secret", true},
	} {
		t.Run(tc.target, func(t *testing.T) {
			err := s.Send(t.Context(), message(tc.target))
			if tc.status == "" {
				if err != nil {
					t.Errorf("got %v, want delivered", err)
				}
				return
			}
			var e *outbox.Error
			if !errors.As(err, &e) || e.Status != tc.status || e.Permanent != tc.permanent {
				t.Errorf("got %#v (%v), want status %q, permanent %v", e, err, tc.status, tc.permanent)
			}
		})
	}
	if n := len(hits()); n != 0 {
		t.Errorf("redirect target got %d requests, want 0: redirects must not be followed", n)
	}
}

// resolver answers from a table.
type resolver map[string][]netip.Addr

func (r resolver) LookupNetIP(_ context.Context, _, host string) ([]netip.Addr, error) {
	if a, ok := r[host]; ok {
		return a, nil
	}
	return nil, errors.New("no such host")
}

func TestValidateURL(t *testing.T) {
	r := resolver{
		"public.example":  {netip.MustParseAddr("93.184.215.14")},
		"rebind.example":  {netip.MustParseAddr("93.184.215.14"), netip.MustParseAddr("127.0.0.1")},
		"private.example": {netip.MustParseAddr("10.1.2.3")},
		"mapped.example":  {netip.MustParseAddr("::ffff:192.168.1.1")},
	}
	for _, tc := range []struct {
		url          string
		ok, okPublic bool // accepted with allow-private, without
	}{
		{"https://public.example/hook", true, true},
		{"http://public.example:8080/hook", true, true},
		{"https://93.184.215.14/hook", true, true},
		{"https://[2606:2800:220:1:248:1893:25c8:1946]/", true, true},
		{"http://127.0.0.1", true, false},
		{"http://127.0.0.1:9000/hook", true, false},
		{"http://[::1]", true, false},
		{"http://169.254.169.254/latest/meta-data", true, false},
		{"http://10.0.0.1", true, false},
		{"http://172.16.0.1", true, false},
		{"http://192.168.0.1", true, false},
		{"http://[fc00::1]", true, false},
		{"http://[fe80::1]", true, false},
		{"http://[::ffff:127.0.0.1]", true, false},
		{"http://[::ffff:10.0.0.1]", true, false},
		{"http://[::127.0.0.1]", true, false},
		{"http://0.0.0.0", true, false},
		{"http://0.1.2.3", true, false},
		{"http://[::]", true, false},
		{"http://100.64.0.1", true, false},
		{"http://224.0.0.1", true, false},
		{"http://255.255.255.255", true, false},
		{"http://localhost", true, false},
		{"http://LOCALHOST.:8080", true, false},
		{"http://api.localhost", true, false},
		{"http://rebind.example", true, false},
		{"http://private.example", true, false},
		{"http://mapped.example", true, false},
		{"http://unknown.example", true, false},
		{"ftp://public.example/", false, false},
		{"file:///etc/passwd", false, false},
		{"javascript:alert(1)", false, false},
		{"http://", false, false},
		{"http:///path", false, false},
		{"/relative", false, false},
		{"::not a url", false, false},
	} {
		for _, allow := range []bool{true, false} {
			want := tc.okPublic
			if allow {
				want = tc.ok
			}
			err := webhook.ValidateURL(t.Context(), tc.url, allow, r)
			if (err == nil) != want {
				t.Errorf("ValidateURL(%q, allowPrivate=%v): got %v, want accepted %v", tc.url, allow, err, want)
			}
			if err != nil && sessiond.ErrorCode(err) != sessiond.CodeInvalidRequest {
				t.Errorf("ValidateURL(%q): got code %q, want %q", tc.url, sessiond.ErrorCode(err), sessiond.CodeInvalidRequest)
			}
		}
	}
}

// TestDialRefusesInternalAddress proves the check at connect time: the
// sender leaves names to the dialer, so "localhost" stands for any name
// whose DNS answer became internal after the endpoint was registered (DNS
// rebinding), and the dialer refuses the 127.0.0.1 it resolves to.
func TestDialRefusesInternalAddress(t *testing.T) {
	srv, got := receiver(t, http.StatusOK)
	port := srv.URL[strings.LastIndex(srv.URL, ":")+1:]
	eps := endpoints{
		"name":    {ID: "name", URL: "http://localhost:" + port, Secret: webhook.NewSecret()},
		"literal": {ID: "literal", URL: srv.URL, Secret: webhook.NewSecret()},
	}
	s := webhook.NewSender(eps, webhook.Options{})
	for _, tc := range []struct {
		target, status string
		permanent      bool
	}{
		{"name", "address refused", false},
		{"literal", "URL refused", true},
	} {
		err := s.Send(t.Context(), message(tc.target))
		var e *outbox.Error
		if !errors.As(err, &e) || e.Status != tc.status || e.Permanent != tc.permanent {
			t.Errorf("%s: got %v, want status %q, permanent %v", tc.target, err, tc.status, tc.permanent)
		}
	}
	if n := len(got()); n != 0 {
		t.Errorf("receiver got %d requests, want 0", n)
	}
	// The same endpoints are reached when private addresses are allowed.
	if err := webhook.NewSender(eps, webhook.Options{AllowPrivate: true}).Send(t.Context(), message("name")); err != nil {
		t.Errorf("with AllowPrivate: got %v, want delivered", err)
	}
}
