package webhook_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/sessiond/sessiond"
	"github.com/sessiond/sessiond/outbox"
	"github.com/sessiond/sessiond/sqlite"
	"github.com/sessiond/sessiond/webhook"
)

// TestWorkerDeliversSignedEvent runs the pieces together as serve will: an
// endpoint and an event's outbox row in the store, the outbox worker with
// this package's Sender, and a receiver that verifies with the reference
// library and gets the event's JSON.
func TestWorkerDeliversSignedEvent(t *testing.T) {
	db, err := sqlite.Open(t.Context(), filepath.Join(t.TempDir(), "sessiond.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer db.Close()
	if err := db.Migrate(t.Context()); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	secret := webhook.NewSecret()
	verifier, _ := standardwebhooks.NewWebhook(secret)
	got := make(chan sessiond.Event, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := verifier.Verify(body, r.Header); err != nil {
			t.Errorf("Verify: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var e sessiond.Event
		if err := json.Unmarshal(body, &e); err != nil {
			t.Errorf("event JSON: %v", err)
		}
		got <- e
	}))
	defer srv.Close()

	now := sessiond.SystemClock()
	ep := &sessiond.WebhookEndpoint{ID: sessiond.NewID(), URL: srv.URL, Events: []string{"*"}, Secret: secret, CreatedAt: now}
	if err := db.CreateWebhookEndpoint(t.Context(), ep); err != nil {
		t.Fatalf("CreateWebhookEndpoint: %v", err)
	}
	e := sessiond.Event{ID: sessiond.NewID(), Type: sessiond.EventSessionEnded, OccurredAt: now, UserID: "u", SessionID: "s",
		Data: map[string]any{"reason": sessiond.EndAdmin}}
	payload, _ := json.Marshal(e)
	if err := db.InsertEvent(t.Context(), &e); err != nil {
		t.Fatalf("InsertEvent: %v", err)
	}
	if err := db.InsertOutbox(t.Context(), &sessiond.OutboxMessage{ID: sessiond.NewID(), Channel: sessiond.ChannelWebhook,
		Target: ep.ID, EventID: e.ID, Payload: payload, CreatedAt: now}); err != nil {
		t.Fatalf("InsertOutbox: %v", err)
	}

	w := outbox.New(db, map[string]outbox.Sender{sessiond.ChannelWebhook: webhook.NewSender(db, webhook.Options{AllowPrivate: true})}, outbox.Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	select {
	case r := <-got:
		if r.ID != e.ID || r.Type != e.Type || !r.OccurredAt.Equal(e.OccurredAt) || r.Data["reason"] != sessiond.EndAdmin {
			t.Errorf("received %+v, want %+v", r, e)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("no delivery within 30s")
	}
}
