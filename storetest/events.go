package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"github.com/sessiond/sessiond"
)

// userEvents returns u's events, oldest first, as (type, reason) pairs for
// comparing, and the events themselves.
func userEvents(t *testing.T, st store, u *sessiond.User) ([]string, []sessiond.Event) {
	t.Helper()
	es, ok := st.Store.(sessiond.EventStore)
	if !ok {
		t.Fatalf("store does not implement sessiond.EventStore")
	}
	events, err := es.Events(ctx(t), sessiond.EventQuery{UserID: u.ID, Limit: 1000})
	mustOK(t, err, "Events")
	var kinds []string
	for _, e := range events {
		k := e.Type
		if r, ok := e.Data["reason"]; ok {
			k += ":" + r.(string)
		}
		if m, ok := e.Data["method"]; ok {
			k += ":" + m.(string)
		}
		kinds = append(kinds, k)
	}
	return kinds, events
}

// testEvents: every change the session algorithms make records its event
// in the change's transaction, and each event is queued for every webhook
// endpoint subscribed to it.
func testEvents(t *testing.T, open opener) {
	capOne := policy()
	capOne.MaxSessions = 1
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, st store, u *sessiond.User, s *sessiond.Session, c *chain)
		want   []string // after the login's session.created
	}{
		{"login", func(*testing.T, store, *sessiond.User, *sessiond.Session, *chain) {}, nil},
		{"eviction", func(t *testing.T, st store, u *sessiond.User, _ *sessiond.Session, _ *chain) {
			s2, _ := newSession(u, at(time.Minute))
			_, err := st.CreateSession(ctx(t), s2, at(time.Minute), capOne)
			mustOK(t, err, "CreateSession")
		}, []string{"session.ended:evicted", "session.created:password"}},
		{"logout by refresh token", func(t *testing.T, st store, _ *sessiond.User, _ *sessiond.Session, c *chain) {
			mustOK(t, st.EndSessionByRefresh(ctx(t), c.attempt(0), policy()), "EndSessionByRefresh")
		}, []string{"session.ended:logout"}},
		{"revoke", func(t *testing.T, st store, u *sessiond.User, s *sessiond.Session, _ *chain) {
			mustOK(t, st.DeleteSession(ctx(t), u.ID, s.ID), "DeleteSession")
		}, []string{"session.ended:revoked"}},
		{"logout everywhere", func(t *testing.T, st store, u *sessiond.User, _ *sessiond.Session, _ *chain) {
			_, err := st.DeleteUserSessions(ctx(t), u.ID)
			mustOK(t, err, "DeleteUserSessions")
		}, []string{"session.ended:logout_all"}},
		{"reuse", func(t *testing.T, st store, _ *sessiond.User, _ *sessiond.Session, c *chain) {
			_, err := st.RefreshSession(ctx(t), c.attempt(0), at(time.Minute), policy())
			mustOK(t, err, "RefreshSession")
			_, err = st.RefreshSession(ctx(t), c.attempt(0), at(time.Hour), policy())
			wantCode(t, err, sessiond.CodeRefreshTokenReused)
		}, []string{"session.ended:reuse_detected"}},
		{"refresh and expiry are not evented", func(t *testing.T, st store, _ *sessiond.User, _ *sessiond.Session, c *chain) {
			_, err := st.RefreshSession(ctx(t), c.attempt(0), at(time.Minute), policy())
			mustOK(t, err, "RefreshSession")
			_, err = st.RefreshSession(ctx(t), c.attempt(1), at(60*day), policy())
			wantCode(t, err, sessiond.CodeSessionExpired)
		}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := open(t)
			u := newUser(t, st, "events@example.com")
			s, c := newSession(u, t0)
			_, err := st.CreateSession(ctx(t), s, t0, policy())
			mustOK(t, err, "CreateSession")
			tc.change(t, st, u, s, c)
			got, events := userEvents(t, st, u)
			wantIDs(t, "events", got, append([]string{"session.created:password"}, tc.want...))
			if len(events) == 0 {
				return
			}
			e := events[0]
			if e.SessionID != s.ID || e.IP != s.IP || e.UserAgent != s.UserAgent || !e.OccurredAt.Equal(t0) {
				t.Errorf("session.created: got %+v, want session %s, ip %s, user agent %s at %v", e, s.ID, s.IP, s.UserAgent, t0)
			}
			for _, e := range events {
				if len(e.ID) != 36 || e.ID[14] != '7' {
					t.Errorf("event id %q: want a version 7 UUID", e.ID)
				}
			}
		})
	}

	t.Run("subscribed endpoints get a delivery", func(t *testing.T) {
		st := open(t)
		out := openOutboxOf(t, st)
		for id, types := range map[string][]string{
			"wh-created": {sessiond.EventSessionCreated},
			"wh-all":     {"*"},
			"wh-other":   {sessiond.EventUserDeleted},
		} {
			mustOK(t, out.CreateWebhookEndpoint(ctx(t), &sessiond.WebhookEndpoint{ID: id, URL: "https://example.com/" + id, Events: types, Secret: "whsec_x", CreatedAt: t0}), "CreateWebhookEndpoint")
		}
		u := newUser(t, st, "hooks@example.com")
		s, _ := newSession(u, t0)
		_, err := st.CreateSession(ctx(t), s, t0, policy())
		mustOK(t, err, "CreateSession")
		_, events := userEvents(t, st, u)
		if len(events) != 1 {
			t.Fatalf("events: got %d, want 1", len(events))
		}
		for target, want := range map[string]int{"wh-created": 1, "wh-all": 1, "wh-other": 0} {
			d := deliveries(t, out, target)
			if len(d) != want {
				t.Errorf("deliveries to %s: got %d, want %d", target, len(d), want)
				continue
			}
			if want == 1 && (d[0].EventID != events[0].ID || d[0].Status != sessiond.OutboxPending) {
				t.Errorf("delivery to %s: got %+v, want event %s pending", target, d[0], events[0].ID)
			}
		}
		msgs := claim(t, out, "w", at(time.Hour), 10)
		for _, m := range msgs {
			var e sessiond.Event
			if err := json.Unmarshal(m.Payload, &e); err != nil || e.ID != events[0].ID || e.Type != sessiond.EventSessionCreated {
				t.Errorf("payload to %s: got %s (%v), want the event's JSON", m.Target, m.Payload, err)
			}
		}
	})

	// FailedChangeLeavesNoEvent: a statement that fails after the event was
	// written rolls back the change, the event and its deliveries alike.
	t.Run("FailedChangeLeavesNoEvent", func(t *testing.T) {
		for _, tc := range []struct {
			name   string
			change func(t *testing.T, st store, u *sessiond.User) error
		}{
			{"login", func(t *testing.T, st store, u *sessiond.User) error {
				s, _ := newSession(u, at(time.Minute))
				_, err := st.CreateSession(ctx(t), s, at(time.Minute), policy())
				return err
			}},
			{"logout everywhere", func(t *testing.T, st store, u *sessiond.User) error {
				_, err := st.DeleteUserSessions(ctx(t), u.ID)
				return err
			}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				st := open(t)
				out := openOutboxOf(t, st)
				mustOK(t, out.CreateWebhookEndpoint(ctx(t), &sessiond.WebhookEndpoint{ID: "wh", URL: "https://example.com/", Events: []string{"*"}, Secret: "whsec_x", CreatedAt: t0}), "CreateWebhookEndpoint")
				u := newUser(t, st, "fail@example.com")
				s, _ := newSession(u, t0)
				create(t, st, s, t0)
				before, _ := userEvents(t, st, u)
				beforeDeliveries := len(deliveries(t, out, "wh"))

				failing := store{failingOutbox{st.Store}}
				if err := tc.change(t, failing, u); err == nil {
					t.Fatalf("the change succeeded although its outbox row could not be written")
				}
				wantIDs(t, "sessions", list(t, st, u, at(time.Minute), setupPolicy()), []string{s.ID})
				after, _ := userEvents(t, st, u)
				wantIDs(t, "events", after, before)
				if got := len(deliveries(t, out, "wh")); got != beforeDeliveries {
					t.Errorf("deliveries: got %d, want %d", got, beforeDeliveries)
				}
			})
		}
	})
}

// openOutboxOf returns st's outbox side.
func openOutboxOf(t *testing.T, st store) outboxStore {
	t.Helper()
	out, ok := st.Store.(outboxStore)
	if !ok {
		t.Fatalf("store does not implement sessiond.OutboxStore and sessiond.EventStore")
	}
	return out
}

var errInjected = errors.New("injected failure")

// failingOutbox is a store whose transactions fail at their first outbox
// row, after the event that caused it was written.
type failingOutbox struct{ sessiond.Store }

func (f failingOutbox) Tx(ctx context.Context, fn sessiond.TxFunc) error {
	return f.Store.Tx(ctx, func(tx sessiond.Tx) error { return fn(failingTx{tx}) })
}

type failingTx struct{ sessiond.Tx }

func (failingTx) InsertOutbox(...*sessiond.OutboxMessage) error { return errInjected }
