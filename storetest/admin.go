package storetest

import (
	"bytes"
	"slices"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

func openAdmin(t *testing.T, open opener) sessiond.AdminStore {
	t.Helper()
	s, ok := open(t).Store.(sessiond.AdminStore)
	if !ok {
		t.Fatalf("store does not implement sessiond.AdminStore")
	}
	return s
}

func eventIDs(es []sessiond.Event) []string {
	out := make([]string, len(es))
	for i := range es {
		out[i] = es[i].ID
	}
	return out
}

func testAdmin(t *testing.T, open opener) {
	t.Run("admin keys: create, find by hash, touch, revoke", func(t *testing.T) {
		s := openAdmin(t, open)
		_, hash := sessiond.NewAdminKey()
		mustOK(t, s.CreateAdminKey(ctx(t), &sessiond.AdminKey{Name: "ops", Hash: hash, CreatedAt: t0}), "CreateAdminKey")
		_, other := sessiond.NewAdminKey()
		wantCode(t, s.CreateAdminKey(ctx(t), &sessiond.AdminKey{Name: "ops", Hash: other, CreatedAt: t0}), sessiond.CodeInvalidRequest)
		k, err := s.AdminKeyByHash(ctx(t), hash)
		mustOK(t, err, "AdminKeyByHash")
		if k.Name != "ops" || !bytes.Equal(k.Hash, hash) || !k.CreatedAt.Equal(t0) || !k.RevokedAt.IsZero() || !k.LastUsedAt.IsZero() {
			t.Errorf("got %+v, want ops created at t0, never used, not revoked", k)
		}
		_, err = s.AdminKeyByHash(ctx(t), other)
		wantCode(t, err, sessiond.CodeNotFound)

		mustOK(t, s.TouchAdminKey(ctx(t), "ops", at(time.Hour)), "TouchAdminKey")
		mustOK(t, s.TouchAdminKey(ctx(t), "ops", at(time.Minute)), "TouchAdminKey (earlier)")
		mustOK(t, s.RevokeAdminKey(ctx(t), "ops", at(2*time.Hour)), "RevokeAdminKey")
		mustOK(t, s.RevokeAdminKey(ctx(t), "ops", at(3*time.Hour)), "RevokeAdminKey again")
		wantCode(t, s.RevokeAdminKey(ctx(t), "nobody", at(time.Hour)), sessiond.CodeNotFound)
		keys, err := s.AdminKeys(ctx(t))
		mustOK(t, err, "AdminKeys")
		if len(keys) != 1 || !keys[0].LastUsedAt.Equal(at(time.Hour)) || !keys[0].RevokedAt.Equal(at(2*time.Hour)) {
			t.Errorf("got %+v, want one key last used at t0+1h, revoked at t0+2h", keys)
		}
	})

	t.Run("events: filters, oldest first, after a cursor", func(t *testing.T) {
		s := openAdmin(t, open)
		var all []string
		for i, e := range []struct{ user, typ string }{
			{"u1", sessiond.EventUserCreated}, {"u2", sessiond.EventUserCreated},
			{"u1", sessiond.EventSessionCreated}, {"u1", sessiond.EventSessionEnded}, {"", sessiond.EventAdminRequest},
		} {
			ev := &sessiond.Event{ID: sessiond.NewID(), Type: e.typ, OccurredAt: at(time.Duration(i) * time.Second), UserID: e.user,
				Data: map[string]any{"n": float64(i)}}
			mustOK(t, s.InsertEvent(ctx(t), ev), "InsertEvent")
			all = append(all, ev.ID)
		}
		list := func(q sessiond.EventQuery) []sessiond.Event {
			t.Helper()
			if q.Limit == 0 {
				q.Limit = 100
			}
			got, err := s.ListEvents(ctx(t), q)
			mustOK(t, err, "ListEvents")
			return got
		}
		got := list(sessiond.EventQuery{})
		wantIDs(t, "all", eventIDs(got), all)
		if len(got) > 0 && (!got[0].OccurredAt.Equal(t0) || got[0].UserID != "u1" || got[0].Data["n"] != float64(0)) {
			t.Errorf("first event: got %+v, want u1 at t0 with data n=0", got[0])
		}
		wantIDs(t, "user u1", eventIDs(list(sessiond.EventQuery{UserID: "u1"})), []string{all[0], all[2], all[3]})
		wantIDs(t, "type user.created", eventIDs(list(sessiond.EventQuery{Type: sessiond.EventUserCreated})), all[:2])
		wantIDs(t, "u1 after the first", eventIDs(list(sessiond.EventQuery{UserID: "u1", After: all[0], Limit: 1})), all[2:3])
		wantIDs(t, "after the last", eventIDs(list(sessiond.EventQuery{After: all[4]})), nil)
		_, err := s.ListEvents(ctx(t), sessiond.EventQuery{After: sessiond.NewID(), Limit: 10})
		wantCode(t, err, sessiond.CodeInvalidRequest)

		n, err := s.DeleteEventsBefore(ctx(t), at(2*time.Second), 1)
		mustOK(t, err, "DeleteEventsBefore")
		if n != 1 {
			t.Errorf("DeleteEventsBefore limit 1: got %d, want 1", n)
		}
		n, err = s.DeleteEventsBefore(ctx(t), at(2*time.Second), 10)
		mustOK(t, err, "DeleteEventsBefore")
		if n != 1 {
			t.Errorf("DeleteEventsBefore: got %d, want 1", n)
		}
		wantIDs(t, "after the sweep", eventIDs(list(sessiond.EventQuery{})), all[2:])
	})

	t.Run("webhook endpoints: list, delete with pending deliveries, reseal", func(t *testing.T) {
		s := openAdmin(t, open)
		a := &sessiond.WebhookEndpoint{ID: sessiond.NewID(), URL: "https://a.example/hook", Events: []string{"*"}, Secret: "whsec_a", CreatedAt: t0}
		b := &sessiond.WebhookEndpoint{ID: sessiond.NewID(), URL: "https://b.example/hook", Events: []string{sessiond.EventUserCreated}, Secret: "whsec_b", CreatedAt: at(time.Second)}
		mustOK(t, s.CreateWebhookEndpoint(ctx(t), a), "CreateWebhookEndpoint")
		mustOK(t, s.CreateWebhookEndpoint(ctx(t), b), "CreateWebhookEndpoint")
		eps, err := s.WebhookEndpoints(ctx(t))
		mustOK(t, err, "WebhookEndpoints")
		if len(eps) != 2 || eps[0].ID != a.ID || eps[1].ID != b.ID || !slices.Equal(eps[1].Events, b.Events) || eps[0].Secret != "whsec_a" {
			t.Fatalf("got %+v, want a then b", eps)
		}

		pending, done := newMessage(a.ID, t0), newMessage(a.ID, t0)
		mustOK(t, s.InsertOutbox(ctx(t), pending, done), "InsertOutbox")
		c := claim(t, s, "w", t0, 10)
		for _, m := range c {
			if m.ID == done.ID {
				mustOK(t, s.RecordOutboxAttempt(ctx(t), "w", sessiond.OutboxAttempt{ID: m.ID, At: t0, Status: sessiond.OutboxDelivered, LastStatus: "delivered"}), "RecordOutboxAttempt")
			}
		}
		mustOK(t, s.ReleaseOutbox(ctx(t), "w", []string{pending.ID}), "ReleaseOutbox")
		mustOK(t, s.DeleteWebhookEndpoint(ctx(t), a.ID), "DeleteWebhookEndpoint")
		wantCode(t, s.DeleteWebhookEndpoint(ctx(t), a.ID), sessiond.CodeNotFound)
		_, err = s.WebhookEndpoint(ctx(t), a.ID)
		wantCode(t, err, sessiond.CodeNotFound)
		ds, err := s.WebhookDeliveries(ctx(t), a.ID, 10)
		mustOK(t, err, "WebhookDeliveries")
		if len(ds) != 1 || ds[0].EventID != done.EventID {
			t.Errorf("deliveries after delete: got %+v, want only the delivered one", ds)
		}
		n, err := s.DeleteFinishedOutboxBefore(ctx(t), at(time.Hour), 10)
		mustOK(t, err, "DeleteFinishedOutboxBefore")
		if n != 1 {
			t.Errorf("DeleteFinishedOutboxBefore: got %d, want 1", n)
		}

		var seen []string
		n, err = s.ResealWebhookSecrets(ctx(t), func(v sessiond.StoredSecret) ([]byte, error) {
			if v.Kind != sessiond.SecretKindWebhook {
				t.Errorf("kind: got %q, want %q", v.Kind, sessiond.SecretKindWebhook)
			}
			seen = append(seen, v.Name+"="+string(v.Value))
			return []byte("resealed"), nil
		})
		mustOK(t, err, "ResealWebhookSecrets")
		if n != 1 || !slices.Equal(seen, []string{b.ID + "=whsec_b"}) {
			t.Errorf("reseal: got %d %v, want 1 [b=whsec_b]", n, seen)
		}
		w, err := s.WebhookEndpoint(ctx(t), b.ID)
		mustOK(t, err, "WebhookEndpoint")
		if w.Secret != "resealed" {
			t.Errorf("secret after reseal: got %q, want resealed", w.Secret)
		}
	})
}
